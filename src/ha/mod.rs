//! The HA pair: two appliances as one. keepalived runs VRRP from a file this
//! module generates, the kernel's IPVS sync daemon carries the connections,
//! and `ssh` carries `lvs.conf` and `flows.conf` to the peer. Nothing here
//! speaks a protocol of its own.

pub mod keepalived;
pub mod peer;
pub mod status;
pub mod supervisor;

use crate::config::model::network::NetworkConfig;
use crate::kernel::{SyncDaemon, SyncRole};

/// The IPVS sync daemons `network` asks for: with a `sync-iface`, a master
/// (this box's connections) and a backup (the peer's) on it, so that neither
/// changes on failover, with the lowest `vrrp id` as the pair's sync id. None
/// without a `sync-iface` or a `vrrp id`.
pub fn sync_daemons(network: &NetworkConfig) -> Vec<SyncDaemon> {
    let Some(interface) = network
        .vrrp
        .as_ref()
        .and_then(|vrrp| vrrp.sync_iface.as_ref())
    else {
        return Vec::new();
    };
    let lowest_id = network
        .interfaces
        .iter()
        .filter_map(|interface| interface.vrrp.as_ref()?.id.as_ref())
        .filter_map(|id| u8::try_from(id.value).ok())
        .min();
    let Some(sync_id) = lowest_id else {
        return Vec::new();
    };
    [SyncRole::Master, SyncRole::Backup]
        .map(|role| SyncDaemon {
            role,
            interface: interface.value.to_string(),
            sync_id,
        })
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_network;

    #[test]
    fn a_sync_iface_runs_a_master_and_a_backup_with_the_lowest_vrrp_id() {
        let (network, diagnostics) = parse_network(
            b"service network eth0\n    ip address 10.0.0.2/24\n    vrrp id 52\n    vrrp prio 100\n    vrrp address 10.0.0.100/24\n\
              service network eth1\n    ip address 10.1.0.2/24\n    vrrp id 7\n    vrrp prio 100\n    vrrp address 10.1.0.1/24\n\
              service vrrp\n    sync-iface eth1\n",
        );
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let daemon = |role| SyncDaemon {
            role,
            interface: "eth1".to_owned(),
            sync_id: 7,
        };
        assert_eq!(
            sync_daemons(&network),
            vec![daemon(SyncRole::Master), daemon(SyncRole::Backup)]
        );
    }

    #[test]
    fn no_sync_iface_runs_no_sync_daemon() {
        let (network, _) = parse_network(
            b"service network eth0\n    ip address 10.0.0.2/24\n    vrrp id 52\n    vrrp prio 100\n    vrrp address 10.0.0.100/24\n\
              service vrrp\n    peer 10.0.0.3\n",
        );
        assert_eq!(sync_daemons(&network), Vec::new());
    }
}
