//! The kernel's IPVS connection-sync daemons: what runs, and making it what a
//! configuration wants.
//!
//! A network namespace has at most one master (it sends the connections of
//! this box, as multicast on its interface) and one backup (it learns those of
//! the peer from that interface), each with an interface and a sync id; both
//! may run at once, which is how an HA pair runs them: each box sends its own
//! connections and learns the other's, so nothing changes on failover. The
//! kernel cannot change a running daemon: a different one is stopped, then
//! started anew.

use std::fmt;

use serde::Serialize;

use crate::kernel::{Cause, IpvsBackend, KernelError};

/// A sync daemon's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncRole {
    /// Sends this box's connections.
    Master,
    /// Learns the peer's connections.
    Backup,
}

impl SyncRole {
    pub fn name(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Backup => "backup",
        }
    }
}

impl fmt::Display for SyncRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One sync daemon: its role, the interface it sends or listens on, and the
/// sync id that tells the pair's messages from other pairs' on that link.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct SyncDaemon {
    pub role: SyncRole,
    pub interface: String,
    pub sync_id: u8,
}

impl fmt::Display for SyncDaemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the IPVS {} sync daemon on {} (sync id {})",
            self.role, self.interface, self.sync_id
        )
    }
}

/// `IP_VS_IFNAME_MAXLEN` less its NUL, as the kernel's policy has it.
const IFNAME_MAX: usize = 15;

/// Why `interface` cannot be a sync daemon's interface, before the kernel is
/// asked: it takes an interface name of 1-15 bytes without a NUL.
pub fn interface_problem(interface: &str) -> Option<String> {
    if interface.is_empty() {
        Some("an empty interface name".to_owned())
    } else if interface.len() > IFNAME_MAX {
        Some(format!(
            "`{interface}` is not an interface name: it has {} bytes, an interface name at most {IFNAME_MAX}",
            interface.len()
        ))
    } else if interface.contains('\0') {
        Some("the interface name holds a NUL byte".to_owned())
    } else {
        None
    }
}

/// Makes the running sync daemons exactly `wanted` (stops those that differ,
/// starts the missing): idempotent. `wanted` empty stops both.
pub async fn ensure_sync_daemons<I: IpvsBackend>(
    ipvs: &mut I,
    wanted: &[SyncDaemon],
) -> Result<(), KernelError> {
    for role in [SyncRole::Master, SyncRole::Backup] {
        if wanted.iter().filter(|daemon| daemon.role == role).count() > 1 {
            return Err(KernelError::Operation {
                op: format!("start the IPVS {role} sync daemon"),
                cause: Cause::Other(format!(
                    "more than one {role} sync daemon wanted; the kernel runs one"
                )),
            });
        }
    }
    let running = ipvs.sync_daemons().await?;
    for daemon in &running {
        if !wanted.contains(daemon) {
            ipvs.stop_sync_daemon(daemon.role).await?;
        }
    }
    for daemon in wanted {
        if !running.contains(daemon) {
            ipvs.start_sync_daemon(daemon).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::fake::FakeIpvs;

    fn daemon(role: SyncRole, interface: &str, sync_id: u8) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: interface.to_owned(),
            sync_id,
        }
    }

    fn run<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
            .block_on(future)
    }

    #[test]
    fn ensuring_starts_what_is_missing_and_twice_changes_nothing() {
        let mut ipvs = FakeIpvs::default();
        let wanted = [
            daemon(SyncRole::Master, "eth1", 51),
            daemon(SyncRole::Backup, "eth1", 51),
        ];
        run(ensure_sync_daemons(&mut ipvs, &wanted)).expect("started");
        assert_eq!(ipvs.sync, wanted);
        assert_eq!(ipvs.sync_changes, 2);
        run(ensure_sync_daemons(&mut ipvs, &wanted)).expect("nothing to do");
        assert_eq!(ipvs.sync_changes, 2, "a running daemon was touched");
    }

    #[test]
    fn a_daemon_that_differs_is_restarted_and_the_other_kept() {
        let mut ipvs = FakeIpvs {
            sync: vec![
                daemon(SyncRole::Master, "eth1", 51),
                daemon(SyncRole::Backup, "eth1", 51),
            ],
            ..FakeIpvs::default()
        };
        let wanted = [
            daemon(SyncRole::Master, "eth1", 52),
            daemon(SyncRole::Backup, "eth1", 51),
        ];
        run(ensure_sync_daemons(&mut ipvs, &wanted)).expect("changed");
        let mut running = ipvs.sync.clone();
        running.sort_by_key(|d| d.role);
        assert_eq!(running, wanted);
        // The master stopped and started again; the backup untouched.
        assert_eq!(ipvs.sync_changes, 2);
    }

    #[test]
    fn nothing_wanted_stops_both() {
        let mut ipvs = FakeIpvs {
            sync: vec![
                daemon(SyncRole::Backup, "eth1", 51),
                daemon(SyncRole::Master, "eth2", 7),
            ],
            ..FakeIpvs::default()
        };
        run(ensure_sync_daemons(&mut ipvs, &[])).expect("stopped");
        assert!(ipvs.sync.is_empty());
        run(ensure_sync_daemons(&mut ipvs, &[])).expect("nothing to do");
        assert_eq!(ipvs.sync_changes, 2);
    }

    #[test]
    fn two_daemons_of_one_role_are_refused_before_anything_changes() {
        let mut ipvs = FakeIpvs::default();
        let wanted = [
            daemon(SyncRole::Backup, "eth1", 51),
            daemon(SyncRole::Backup, "eth2", 51),
        ];
        let error = run(ensure_sync_daemons(&mut ipvs, &wanted)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "start the IPVS backup sync daemon: more than one backup sync daemon wanted; \
             the kernel runs one"
        );
        assert!(ipvs.sync.is_empty());
    }

    #[test]
    fn a_refusal_is_a_sentence_about_the_daemon() {
        let mut ipvs = FakeIpvs::default();
        let master = daemon(SyncRole::Master, "eth1", 51);
        run(ipvs.start_sync_daemon(&master)).expect("started");
        let error = run(ipvs.start_sync_daemon(&master)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "start the IPVS master sync daemon on eth1 (sync id 51): a master sync daemon is \
             already running"
        );
        let error = run(ipvs.stop_sync_daemon(SyncRole::Backup)).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "stop the IPVS backup sync daemon: no backup sync daemon is running"
        );
    }

    #[test]
    fn an_interface_name_the_kernel_cannot_take_is_told_apart() {
        assert_eq!(interface_problem("eth1"), None);
        assert_eq!(interface_problem("a-fifteen-chars"), None);
        assert_eq!(
            interface_problem("sixteen-chars-ab").as_deref(),
            Some(
                "`sixteen-chars-ab` is not an interface name: it has 16 bytes, an interface \
                 name at most 15"
            )
        );
        assert!(interface_problem("").is_some());
        assert!(interface_problem("et\0h").is_some());
    }

    #[test]
    fn the_daemons_serialize_as_status_json_has_them() {
        let json = serde_json::to_string(&[
            daemon(SyncRole::Master, "eth1", 51),
            daemon(SyncRole::Backup, "eth1", 51),
        ])
        .expect("JSON");
        assert_eq!(
            json,
            r#"[{"role":"master","interface":"eth1","sync_id":51},{"role":"backup","interface":"eth1","sync_id":51}]"#
        );
    }
}
