//! The HA pair as this box can see it: its role from the VRRP status the
//! daemon publishes, the peer's state inferred from it, and whether a change
//! of network.conf touches what keepalived runs. Pure: the panes, the plan
//! dialog and the engine share these answers.

use crate::config::model::network::{NetworkConfig, VrrpService};
use crate::config::model::types::{Family, IpNet, Spanned};
use crate::ha::status::{InstanceStatus, Keepalived, VrrpState, VrrpStatus};

/// What this box is to the pair, as a whole sync group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It holds virtual addresses: changing its VRRP lines may move them.
    Master,
    /// The peer serves; this box stands by.
    Backup,
}

/// This box's role while keepalived runs and reports its instances. One
/// MASTER instance is enough to be master: the group moves as one, and a box
/// caught in a transition still serves what it holds. `None` while keepalived
/// is not running, or its instances are neither (INIT, FAULT, STOP).
pub fn role(status: &VrrpStatus) -> Option<Role> {
    if !matches!(status.keepalived, Keepalived::Running { .. }) {
        return None;
    }
    match status.role()? {
        VrrpState::Master => Some(Role::Master),
        VrrpState::Backup => Some(Role::Backup),
        VrrpState::Init | VrrpState::Fault | VrrpState::Stop => None,
    }
}

/// The peer's instance as far as this box can tell from its own: a backup
/// hears the master's adverts; a master cannot tell a quiet backup from a
/// missing peer; any other state says nothing about the peer.
pub fn peer_state(instance: &InstanceStatus) -> &'static str {
    match instance.state {
        VrrpState::Backup => "MASTER",
        VrrpState::Master => "BACKUP or absent",
        VrrpState::Init | VrrpState::Fault | VrrpState::Stop => "unknown",
    }
}

/// Whether `after` changes what keepalived runs compared with `before` (what
/// was applied; `None` when nothing was): an interface's `vrrp` id, prio or
/// addresses, or the `service vrrp` section. Where a line sits does not count.
pub fn vrrp_changed(before: Option<&NetworkConfig>, after: &NetworkConfig) -> bool {
    let empty = NetworkConfig::default();
    let before = before.unwrap_or(&empty);
    instances(before) != instances(after) || service(before) != service(after)
}

/// What keepalived runs of each instance: its name, family, id, prio (the
/// default when none is written) and addresses.
type Instance = (String, Family, u32, u32, Vec<IpNet>);

fn instances(network: &NetworkConfig) -> Vec<Instance> {
    let mut instances: Vec<Instance> = network
        .vrrp_instances()
        .iter()
        .map(|instance| {
            (
                instance.name(),
                instance.family,
                instance.id,
                instance.prio,
                instance.addresses.clone(),
            )
        })
        .collect();
    instances.sort();
    instances
}

/// `service vrrp` without the places of its lines.
fn service(network: &NetworkConfig) -> Option<VrrpService> {
    network.vrrp.as_ref().map(|service| VrrpService {
        sync_iface: service
            .sync_iface
            .clone()
            .map(|iface| Spanned::unplaced(iface.value)),
        peers: service
            .peers
            .iter()
            .map(|peer| Spanned::unplaced(peer.value))
            .collect(),
        advert_ms: service
            .advert_ms
            .map(|advert| Spanned::unplaced(advert.value)),
        loc: Default::default(),
        ..service.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::network::{Interface, InterfaceVrrp};
    use crate::config::model::types::{IfName, Loc};

    fn net(text: &str) -> IpNet {
        IpNet::try_from(text.to_owned()).unwrap()
    }

    fn instance(name: &str, state: VrrpState) -> InstanceStatus {
        InstanceStatus {
            name: name.to_owned(),
            interface: name.to_owned(),
            family: Family::Ipv4,
            vrid: 51,
            state,
            configured_priority: 150,
            priority: 150,
            addresses: vec![net("10.0.0.100/24")],
            since: 0,
        }
    }

    fn running(states: &[VrrpState]) -> VrrpStatus {
        VrrpStatus {
            keepalived: Keepalived::Running { pid: 7 },
            instances: states
                .iter()
                .enumerate()
                .map(|(at, &state)| instance(&format!("eth{at}"), state))
                .collect(),
            healthy: None,
            peers: Vec::new(),
        }
    }

    #[test]
    fn one_master_instance_makes_the_box_master() {
        use VrrpState::*;
        assert_eq!(role(&running(&[Master, Master])), Some(Role::Master));
        assert_eq!(role(&running(&[Backup, Master])), Some(Role::Master));
        assert_eq!(role(&running(&[Backup, Backup])), Some(Role::Backup));
        assert_eq!(role(&running(&[Backup, Fault])), None);
        assert_eq!(role(&running(&[])), None);
    }

    #[test]
    fn a_box_whose_keepalived_is_down_has_no_role() {
        let mut status = running(&[VrrpState::Master]);
        status.keepalived = Keepalived::Down {
            reason: "install keepalived".to_owned(),
        };
        assert_eq!(role(&status), None);
    }

    #[test]
    fn the_peer_is_master_while_this_box_hears_it_as_backup() {
        assert_eq!(peer_state(&instance("eth0", VrrpState::Backup)), "MASTER");
        assert_eq!(
            peer_state(&instance("eth0", VrrpState::Master)),
            "BACKUP or absent"
        );
        assert_eq!(peer_state(&instance("eth0", VrrpState::Fault)), "unknown");
    }

    fn network(id: u32, prio: u32, line: u32) -> NetworkConfig {
        let at = Loc::new(line, 5);
        let mut eth0 = Interface::new(Spanned::new(IfName::new("eth0").unwrap(), at));
        eth0.vrrp = Some(InterfaceVrrp {
            id: Some(Spanned::new(id, at)),
            prio: Some(Spanned::new(prio, at)),
            addresses: vec![Spanned::new(net("10.0.0.100/24"), at)],
            loc: at,
        });
        NetworkConfig {
            interfaces: vec![eth0],
            vrrp: Some(VrrpService {
                peers: vec![Spanned::new("10.0.0.3".parse().unwrap(), at)],
                loc: at,
                ..VrrpService::default()
            }),
        }
    }

    #[test]
    fn a_new_prio_or_id_changes_vrrp_and_a_moved_line_does_not() {
        let before = network(51, 150, 3);
        assert!(!vrrp_changed(Some(&before), &network(51, 150, 9)));
        assert!(vrrp_changed(Some(&before), &network(51, 100, 3)));
        assert!(vrrp_changed(Some(&before), &network(52, 150, 3)));
        assert!(vrrp_changed(None, &before));
        assert!(!vrrp_changed(None, &NetworkConfig::default()));
    }

    #[test]
    fn a_new_address_or_peer_changes_vrrp() {
        let before = network(51, 150, 3);
        let mut more = before.clone();
        more.interfaces[0]
            .vrrp
            .as_mut()
            .unwrap()
            .addresses
            .push(Spanned::unplaced(net("2001:db8::100/64")));
        assert!(vrrp_changed(Some(&before), &more));
        let mut peer = before.clone();
        peer.vrrp.as_mut().unwrap().peers[0] = Spanned::unplaced("10.0.0.4".parse().unwrap());
        assert!(vrrp_changed(Some(&before), &peer));
    }
}
