//! keepalived's side of the pair, pure: the `keepalived.conf` lbconsole
//! generates from `network.conf`, and the lines keepalived writes on its
//! notify fifo. `supervisor` runs the process.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::config::model::network::{Interface, NetworkConfig, VrrpService};
use crate::config::model::types::{Family, IpNet};

use super::status::VrrpState;

/// The name of the one sync group: every instance of a box fails over together.
pub const SYNC_GROUP: &str = "lbconsole";

/// The name of the health track file in the generated configuration.
const HEALTH_TRACK: &str = "lbconsole_health";

/// Added to the priority while the health file holds `1`. keepalived clamps
/// an effective priority to 1..=254, so -253 takes any configured priority
/// (at most 254) down to 1, below any peer's; -254 and lower would put the
/// instance in FAULT instead, which would leave the addresses to nobody when
/// both boxes lose their servers.
const UNHEALTHY_WEIGHT: i32 = -253;

/// One VRRP instance: an interface's `vrrp` lines of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `IFNAME` for IPv4, `IFNAME-6` for IPv6.
    pub name: String,
    pub interface: String,
    pub family: Family,
    pub vrid: u32,
    pub priority: u32,
    pub addresses: Vec<IpNet>,
    /// The peers inside one of the interface's subnets of this family; none
    /// means multicast adverts.
    pub peers: Vec<IpAddr>,
    /// The interface's own address the unicast adverts leave from: the one
    /// whose subnet holds the first peer.
    pub source: Option<IpAddr>,
}

/// The instances `network` asks for, in the file's order, IPv4 before IPv6 on
/// one interface. An interface's `vrrp` lines without an id, a priority or an
/// address make none: the validator reports them.
pub fn instances(network: &NetworkConfig) -> Vec<Instance> {
    let peers: Vec<IpAddr> = network
        .vrrp
        .as_ref()
        .map(|service| service.peers.iter().map(|peer| peer.value).collect())
        .unwrap_or_default();
    let mut instances = Vec::new();
    for interface in &network.interfaces {
        let Some(vrrp) = &interface.vrrp else {
            continue;
        };
        let (Some(vrid), Some(priority)) = (vrrp.id, vrrp.prio) else {
            continue;
        };
        for family in [Family::Ipv4, Family::Ipv6] {
            let addresses: Vec<IpNet> = vrrp
                .addresses
                .iter()
                .map(|address| address.value)
                .filter(|address| address.family() == family)
                .collect();
            if addresses.is_empty() {
                continue;
            }
            let (peers, source) = unicast(interface, family, &peers);
            instances.push(Instance {
                name: instance_name(interface.name.as_str(), family),
                interface: interface.name.to_string(),
                family,
                vrid: vrid.value,
                priority: priority.value,
                addresses,
                peers,
                source,
            });
        }
    }
    instances
}

fn instance_name(interface: &str, family: Family) -> String {
    match family {
        Family::Ipv4 => interface.to_owned(),
        Family::Ipv6 => format!("{interface}-6"),
    }
}

/// The peers that lie in one of `interface`'s subnets of `family`, and the
/// interface's address in the first one's subnet.
fn unicast(
    interface: &Interface,
    family: Family,
    peers: &[IpAddr],
) -> (Vec<IpAddr>, Option<IpAddr>) {
    let subnet_of = |peer: IpAddr| {
        interface
            .addresses
            .iter()
            .map(|address| address.value)
            .find(|address| address.family() == family && address.contains(peer))
    };
    let reachable: Vec<IpAddr> = peers
        .iter()
        .copied()
        .filter(|&peer| subnet_of(peer).is_some())
        .collect();
    let source = reachable
        .first()
        .and_then(|&peer| subnet_of(peer))
        .map(|a| a.addr);
    (reachable, source)
}

/// Where the generated configuration points keepalived: files of the state
/// dir's `vrrp/`.
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    pub notify_fifo: &'a str,
    pub health: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// keepalived's parser splits words on blanks and reads `#`, `!`, `"`,
    /// `$`, `{` and `}` specially, with no escape: a path holding any such
    /// character would be read as something else.
    #[error(
        "keepalived cannot be given the path `{path}`: use a state dir whose path has only letters, digits and `/._+-`"
    )]
    UnsafePath { path: String },
}

/// `keepalived.conf` for `network`'s instances.
pub fn generate(network: &NetworkConfig, files: Files<'_>) -> Result<String, GenerateError> {
    for path in [files.notify_fifo, files.health] {
        check_path(path)?;
    }
    let service = network.vrrp.clone().unwrap_or_default();
    let instances = instances(network);
    let mut text = String::from(
        "# Generated by lbconsole from network.conf; lbconsole rewrites it on every change.\n\n",
    );
    // The router id only names this box in keepalived's own messages; its
    // first instance's source or interface address tells the two apart.
    let router_id = router_id(network);
    let _ = writeln!(
        text,
        "global_defs {{\n    router_id {router_id}\n    vrrp_version 3\n    \
         # No script runs (states come through the fifo); naming the user\n    \
         # keeps keepalived from looking for `keepalived_script`.\n    \
         script_user root\n    notify_fifo {}\n}}\n",
        files.notify_fifo
    );
    if service.tracks_health() {
        let _ = writeln!(
            text,
            "# `1` while a director has no server up: the priority then drops to 1\n\
             # (keepalived clamps it), below the peer's.\n\
             track_file {HEALTH_TRACK} {{\n    file \"{}\"\n    weight {UNHEALTHY_WEIGHT}\n}}\n",
            files.health
        );
    }
    // keepalived drops a group of one instance, with a warning.
    if instances.len() > 1 {
        let _ = writeln!(text, "vrrp_sync_group {SYNC_GROUP} {{\n    group {{");
        for instance in &instances {
            let _ = writeln!(text, "        {}", instance.name);
        }
        text.push_str("    }\n");
        if service.tracks_health() {
            // Every instance tracks the same file with the same weight, so the
            // group's members never disagree.
            text.push_str("    sync_group_tracking_weight\n");
        }
        text.push_str("}\n\n");
    }
    for instance in &instances {
        write_instance(&mut text, instance, &service);
    }
    Ok(text)
}

fn router_id(network: &NetworkConfig) -> String {
    network
        .interfaces
        .iter()
        .filter(|interface| interface.vrrp.is_some())
        .flat_map(|interface| &interface.addresses)
        .next()
        .map_or_else(
            || "lbconsole".to_owned(),
            |a| format!("lbconsole-{}", a.value.addr),
        )
}

fn write_instance(text: &mut String, instance: &Instance, service: &VrrpService) {
    let _ = writeln!(
        text,
        "vrrp_instance {} {{\n    state BACKUP\n    interface {}\n    virtual_router_id {}\n    \
         priority {}\n    advert_int {}",
        instance.name,
        instance.interface,
        instance.vrid,
        instance.priority,
        seconds(service.advert_ms())
    );
    if !service.preempts() {
        text.push_str("    nopreempt\n");
    }
    // MASTER_PRIORITY / BACKUP_PRIORITY lines on the fifo: the tracked
    // health's effect shows in `status`.
    text.push_str("    notify_priority_changes true\n");
    if let Some(source) = instance.source {
        let _ = writeln!(text, "    unicast_src_ip {source}");
    }
    if !instance.peers.is_empty() {
        text.push_str("    unicast_peer {\n");
        for peer in &instance.peers {
            let _ = writeln!(text, "        {peer}");
        }
        text.push_str("    }\n");
    }
    text.push_str("    virtual_ipaddress {\n");
    for address in &instance.addresses {
        let _ = writeln!(text, "        {address} dev {}", instance.interface);
    }
    text.push_str("    }\n");
    if service.tracks_health() {
        let _ = writeln!(text, "    track_file {{\n        {HEALTH_TRACK}\n    }}");
    }
    text.push_str("}\n\n");
}

/// `advert_int` counts seconds, with hundredths in VRRPv3: 1000 → `1`, 1500 → `1.5`.
fn seconds(ms: u32) -> String {
    let whole = ms / 1000;
    let fraction = ms % 1000;
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:03}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

fn check_path(path: &str) -> Result<(), GenerateError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._+-".contains(c);
    if path.is_empty() || !path.chars().all(safe) {
        return Err(GenerateError::UnsafePath {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// One line of the notify fifo about an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub instance: String,
    pub state: VrrpState,
    pub priority: u32,
}

/// `INSTANCE "eth0" MASTER 150` → the notice; `None` for a group's line, a
/// master's report of a lower-priority advert, or anything unknown.
pub fn parse_notice(line: &str) -> Option<Notice> {
    let rest = line.trim_end().strip_prefix("INSTANCE \"")?;
    let (instance, rest) = rest.split_once('"')?;
    let mut words = rest.split_whitespace();
    let state = match words.next()? {
        "MASTER" | "MASTER_PRIORITY" => VrrpState::Master,
        "BACKUP" | "BACKUP_PRIORITY" => VrrpState::Backup,
        "FAULT" => VrrpState::Fault,
        // A reload that drops an instance reports it deleted: it runs no more.
        "STOP" | "DELETED" => VrrpState::Stop,
        _ => return None,
    };
    let priority = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some(Notice {
        instance: instance.to_owned(),
        state,
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::network::InterfaceVrrp;
    use crate::config::model::types::{IfName, Spanned};

    fn net(text: &str) -> Spanned<IpNet> {
        Spanned::unplaced(IpNet::try_from(text.to_owned()).unwrap())
    }

    fn interface(name: &str, addresses: &[&str], vrrp: Option<(u32, u32, &[&str])>) -> Interface {
        let mut interface = Interface::new(Spanned::unplaced(IfName::new(name).unwrap()));
        interface.addresses = addresses.iter().map(|a| net(a)).collect();
        interface.vrrp = vrrp.map(|(id, prio, addresses)| InterfaceVrrp {
            id: Some(Spanned::unplaced(id)),
            prio: Some(Spanned::unplaced(prio)),
            addresses: addresses.iter().map(|a| net(a)).collect(),
            ..InterfaceVrrp::default()
        });
        interface
    }

    fn pair(service: VrrpService) -> NetworkConfig {
        NetworkConfig {
            interfaces: vec![
                interface(
                    "eth0",
                    &["10.0.0.2/24", "2001:db8::2/64"],
                    Some((51, 150, &["10.0.0.100/24", "2001:db8::100/64"])),
                ),
                interface("eth1", &["10.1.0.2/24"], Some((52, 150, &["10.1.0.1/24"]))),
                interface("eth2", &["10.2.0.2/24"], None),
            ],
            vrrp: Some(service),
        }
    }

    const FILES: Files<'static> = Files {
        notify_fifo: "/var/lib/lbconsole/vrrp/notify.fifo",
        health: "/var/lib/lbconsole/vrrp/health",
    };

    #[test]
    fn a_pair_with_health_tracking_and_a_peer_on_the_front_link() {
        let service = VrrpService {
            peers: vec![Spanned::unplaced("10.0.0.3".parse().unwrap())],
            track_health: Some(true),
            advert_ms: Some(Spanned::unplaced(500)),
            ..VrrpService::default()
        };
        let text = generate(&pair(service), FILES).unwrap();
        assert_eq!(
            text,
            r#"# Generated by lbconsole from network.conf; lbconsole rewrites it on every change.

global_defs {
    router_id lbconsole-10.0.0.2
    vrrp_version 3
    # No script runs (states come through the fifo); naming the user
    # keeps keepalived from looking for `keepalived_script`.
    script_user root
    notify_fifo /var/lib/lbconsole/vrrp/notify.fifo
}

# `1` while a director has no server up: the priority then drops to 1
# (keepalived clamps it), below the peer's.
track_file lbconsole_health {
    file "/var/lib/lbconsole/vrrp/health"
    weight -253
}

vrrp_sync_group lbconsole {
    group {
        eth0
        eth0-6
        eth1
    }
    sync_group_tracking_weight
}

vrrp_instance eth0 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    notify_priority_changes true
    unicast_src_ip 10.0.0.2
    unicast_peer {
        10.0.0.3
    }
    virtual_ipaddress {
        10.0.0.100/24 dev eth0
    }
    track_file {
        lbconsole_health
    }
}

vrrp_instance eth0-6 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.5
    notify_priority_changes true
    virtual_ipaddress {
        2001:db8::100/64 dev eth0
    }
    track_file {
        lbconsole_health
    }
}

vrrp_instance eth1 {
    state BACKUP
    interface eth1
    virtual_router_id 52
    priority 150
    advert_int 0.5
    notify_priority_changes true
    virtual_ipaddress {
        10.1.0.1/24 dev eth1
    }
    track_file {
        lbconsole_health
    }
}

"#
        );
    }

    #[test]
    fn preempt_off_is_nopreempt_and_one_instance_makes_no_group() {
        let network = NetworkConfig {
            interfaces: vec![interface(
                "eth0",
                &["10.0.0.2/24"],
                Some((7, 100, &["10.0.0.100/24"])),
            )],
            vrrp: Some(VrrpService {
                preempt: Some(false),
                ..VrrpService::default()
            }),
        };
        let text = generate(&network, FILES).unwrap();
        assert!(text.contains("    advert_int 1\n    nopreempt\n"), "{text}");
        assert!(!text.contains("vrrp_sync_group"), "{text}");
        assert!(!text.contains("track_file"), "{text}");
        assert!(!text.contains("unicast"), "{text}");
    }

    #[test]
    fn an_ipv6_peer_goes_to_the_ipv6_instance_only() {
        let service = VrrpService {
            peers: vec![
                Spanned::unplaced("2001:db8::3".parse().unwrap()),
                Spanned::unplaced("192.168.9.9".parse().unwrap()),
            ],
            ..VrrpService::default()
        };
        let instances = instances(&pair(service));
        let peers: Vec<(&str, Vec<IpAddr>, Option<IpAddr>)> = instances
            .iter()
            .map(|i| (i.name.as_str(), i.peers.clone(), i.source))
            .collect();
        assert_eq!(
            peers,
            vec![
                ("eth0", vec![], None),
                (
                    "eth0-6",
                    vec!["2001:db8::3".parse().unwrap()],
                    Some("2001:db8::2".parse().unwrap())
                ),
                ("eth1", vec![], None),
            ]
        );
    }

    #[test]
    fn a_path_keepalived_would_misread_is_refused() {
        for path in [
            "/state dir/vrrp/health",
            "/st#te/health",
            "/a\"b",
            "/$X/h",
            "/a{b}",
        ] {
            let files = Files {
                notify_fifo: FILES.notify_fifo,
                health: path,
            };
            assert_eq!(
                generate(&pair(VrrpService::default()), files),
                Err(GenerateError::UnsafePath {
                    path: path.to_owned()
                })
            );
        }
    }

    #[test]
    fn advert_intervals_are_written_in_seconds() {
        let cases = [
            (1000, "1"),
            (1500, "1.5"),
            (10, "0.01"),
            (250, "0.25"),
            (40950, "40.95"),
        ];
        for (ms, text) in cases {
            assert_eq!(seconds(ms), text);
        }
    }

    #[test]
    fn notify_lines_become_states_and_priorities() {
        let notice = |instance: &str, state, priority| {
            Some(Notice {
                instance: instance.to_owned(),
                state,
                priority,
            })
        };
        assert_eq!(
            parse_notice("INSTANCE \"eth0\" MASTER 150\n"),
            notice("eth0", VrrpState::Master, 150)
        );
        assert_eq!(
            parse_notice("INSTANCE \"eth0-6\" BACKUP_PRIORITY 1"),
            notice("eth0-6", VrrpState::Backup, 1)
        );
        assert_eq!(
            parse_notice("INSTANCE \"eth1\" FAULT 0"),
            notice("eth1", VrrpState::Fault, 0)
        );
        assert_eq!(
            parse_notice("INSTANCE \"eth1\" DELETED 0"),
            notice("eth1", VrrpState::Stop, 0)
        );
        for ignored in [
            "GROUP \"lbconsole\" MASTER 0",
            "INSTANCE \"eth0\" MASTER_RX_LOWER_PRI 150",
            "INSTANCE \"eth0\" MASTER",
            "INSTANCE \"eth0\" MASTER x",
            "INSTANCE \"eth0\" MASTER 1 2",
            "INSTANCE eth0 MASTER 1",
            "",
        ] {
            assert_eq!(parse_notice(ignored), None, "{ignored}");
        }
    }
}
