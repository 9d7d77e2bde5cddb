//! What the daemon knows of keepalived and its VRRP instances, as `status`,
//! the console and the Setup tab read it: `STATE_DIR/vrrp/status.toml`, written
//! by `lbconsole daemon` on every change keepalived reports.

use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::model::types::{Family, IpNet};
use crate::daemon::DAEMON_LOCK;
use crate::store::lock::Lock;
use crate::store::{Links, StoreError, atomic, read_capped};

/// keepalived's directory under the state dir: its configuration, pid files,
/// notify fifo and health track file, and this status.
pub const DIR: &str = "vrrp";

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

impl VrrpStatus {
    /// This box's part in the pair: MASTER when it holds an instance's
    /// addresses, BACKUP when every instance waits; `None` otherwise
    /// (starting, faulty, stopped, or no instance).
    pub fn role(&self) -> Option<VrrpState> {
        let states = || self.instances.iter().map(|instance| instance.state);
        if states().any(|state| state == VrrpState::Master) {
            Some(VrrpState::Master)
        } else if !self.instances.is_empty() && states().all(|state| state == VrrpState::Backup) {
            Some(VrrpState::Backup)
        } else {
            None
        }
    }
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

/// What `status` says of keepalived when no daemon supervises it.
pub const NO_DAEMON: &str = "the daemon is not running";

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    File(#[from] StoreError),
    #[error("{} is not the daemon's VRRP status: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: toml::de::Error,
    },
}

pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(STATUS_FILE)
}

/// The VRRP status the daemon wrote; `None` when it wrote none (no `vrrp`
/// line runs). The file outlives a daemon killed with SIGKILL, whose
/// keepalived then stops too: it is trusted only while the daemon holds its
/// lock, and otherwise keepalived is down and no instance runs.
pub fn read(state_dir: &Path) -> Result<Option<VrrpStatus>, ReadError> {
    let path = path(state_dir);
    let Some(bytes) = read_capped(&path, Links::Refuse)? else {
        return Ok(None);
    };
    let mut status: VrrpStatus = std::str::from_utf8(&bytes)
        .map_err(serde::de::Error::custom)
        .and_then(toml::from_str)
        .map_err(|source| ReadError::Malformed {
            path: path.clone(),
            source,
        })?;
    // A reader that may not probe the lock (an operator without write access
    // to the state dir) takes the file as it is.
    let daemon_alive = Lock::is_held(&state_dir.join(DAEMON_LOCK)).unwrap_or(true);
    if !daemon_alive {
        status.keepalived = Keepalived::Down {
            reason: NO_DAEMON.to_owned(),
        };
        for instance in &mut status.instances {
            instance.state = VrrpState::Stop;
        }
    }
    Ok(Some(status))
}

/// Replaces the status file, atomically: a reader sees the old status or the new.
pub fn write(state_dir: &Path, status: &VrrpStatus) -> io::Result<()> {
    let path = path(state_dir);
    let text = toml::to_string(status).map_err(io::Error::other)?;
    atomic::create_dir_all(&state_dir.join(DIR))?;
    atomic::write_file(&path, text.as_bytes(), atomic::Scratch::Unrecorded)
}

/// Removes the status file: no VRRP runs.
pub fn remove(state_dir: &Path) -> io::Result<()> {
    match std::fs::remove_file(path(state_dir)) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> VrrpStatus {
        VrrpStatus {
            keepalived: Keepalived::Running { pid: 42 },
            instances: vec![InstanceStatus {
                name: "eth0-6".to_owned(),
                interface: "eth0".to_owned(),
                family: Family::Ipv6,
                vrid: 51,
                state: VrrpState::Master,
                configured_priority: 150,
                priority: 1,
                addresses: vec![IpNet::try_from("2001:db8::100/64".to_owned()).unwrap()],
                since: 1_700_000_000,
            }],
            healthy: Some(false),
            peers: vec!["10.0.0.3".parse().unwrap()],
        }
    }

    #[test]
    fn the_daemons_status_reads_back_while_it_holds_its_lock() {
        let dir = tempfile_dir();
        let _daemon = Lock::try_acquire(&dir.join(DAEMON_LOCK)).unwrap().unwrap();
        write(&dir, &sample()).unwrap();
        assert_eq!(read(&dir).unwrap(), Some(sample()));
        remove(&dir).unwrap();
        assert_eq!(read(&dir).unwrap(), None);
    }

    #[test]
    fn without_the_daemon_keepalived_is_down_and_no_instance_runs() {
        let dir = tempfile_dir();
        write(&dir, &sample()).unwrap();
        let status = read(&dir).unwrap().unwrap();
        assert_eq!(
            status.keepalived,
            Keepalived::Down {
                reason: NO_DAEMON.to_owned()
            }
        );
        assert_eq!(status.instances[0].state, VrrpState::Stop);
    }

    #[test]
    fn a_box_is_master_with_one_master_instance_and_backup_with_all_backup() {
        let mut status = sample();
        assert_eq!(status.role(), Some(VrrpState::Master));
        status.instances.push(status.instances[0].clone());
        status.instances[0].state = VrrpState::Backup;
        assert_eq!(status.role(), Some(VrrpState::Master));
        status.instances[1].state = VrrpState::Backup;
        assert_eq!(status.role(), Some(VrrpState::Backup));
        status.instances[1].state = VrrpState::Fault;
        assert_eq!(status.role(), None);
        assert_eq!(VrrpStatus::default().role(), None);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "lbconsole-vrrp-status-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
