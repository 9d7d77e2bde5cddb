//! What the daemon knows of keepalived and its VRRP instances, as `status`,
//! the console and the Setup tab read it: `STATE_DIR/vrrp/status.toml`, written
//! by `lbconsole daemon` on every change keepalived reports.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::config::model::types::{Family, IpNet};

/// The file's place under the state dir.
pub const STATUS_FILE: &str = "vrrp/status.toml";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VrrpStatus {
    pub keepalived: Keepalived,
    /// One per VRRP instance: an interface's IPv4 addresses and its IPv6 ones
    /// are two instances (keepalived runs one family per instance).
    #[serde(default)]
    pub instances: Vec<InstanceStatus>,
    /// With `track-health on`: whether every director has a server up. While
    /// not, this box's priority is lowered below its peer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// `peer` lines of `service vrrp`.
    #[serde(default)]
    pub peers: Vec<IpAddr>,
}

/// keepalived's process, as the daemon that supervises it sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum Keepalived {
    /// No `vrrp` line in network.conf: nothing to run.
    #[default]
    NotConfigured,
    Running {
        pid: u32,
    },
    /// It could not start or it died; `reason` is one sentence ("install keepalived").
    Down {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InstanceStatus {
    /// The instance's name in the generated keepalived.conf.
    pub name: String,
    pub interface: String,
    pub family: Family,
    pub vrid: u32,
    pub state: VrrpState,
    /// The priority written in network.conf.
    pub configured_priority: u32,
    /// The priority keepalived reported last (lowered while health is tracked
    /// and bad).
    pub priority: u32,
    pub addresses: Vec<IpNet>,
    /// When the instance entered `state`, seconds since the Unix epoch.
    pub since: u64,
}

/// keepalived's instance states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VrrpState {
    /// Started, nothing reported yet.
    Init,
    Backup,
    Master,
    Fault,
    Stop,
}

impl VrrpState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Backup => "BACKUP",
            Self::Master => "MASTER",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        }
    }
}
