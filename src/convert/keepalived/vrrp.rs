//! keepalived's `vrrp_instance` blocks as network.conf's `vrrp` lines: the
//! interface's `vrrp id`, `vrrp prio` and `vrrp address` lines, and the
//! `service vrrp` section (peers, advert, preempt, the connection sync
//! interface). They go to `vrrp.conf`, which `lbconsole import` merges into
//! the saved network.conf: the interfaces' own addresses are the box's, not
//! keepalived's.

use std::net::IpAddr;

use crate::config::model::network::{Interface, InterfaceVrrp, VrrpService};
use crate::config::model::types::{IfName, IpNet, Loc, Spanned};
use crate::convert::{Conversion, Converted, NoteKind};

use super::checks::{bad_value, missing_value};
use super::lexer::Node;

/// Tracking keepalived does that lbconsole does from its own checks.
const TRACKING: &str = "lbconsole's VRRP follows the directors' servers instead (`track-health on` in network.conf's `service vrrp`)";

/// Keywords of a `vrrp_instance` that lbconsole leaves out, and why.
const LEFT_OUT: &[(&str, &str)] = &[
    ("track_script", TRACKING),
    ("track_interface", TRACKING),
    ("track_process", TRACKING),
    ("track_file", TRACKING),
    ("track_bfd", TRACKING),
    (
        "notify_master",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "notify_backup",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "notify_fault",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "notify_stop",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "notify",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "notify_deleted",
        "lbconsole records each VRRP change in its events (`lbconsole events`); it runs no scripts",
    ),
    (
        "smtp_alert",
        "lbconsole sends no mail; its events are in the journal",
    ),
    (
        "authentication",
        "VRRPv3, which lbconsole's keepalived speaks, has no authentication",
    ),
    (
        "unicast_src_ip",
        "keepalived sends from the interface's own `ip address`",
    ),
    (
        "mcast_src_ip",
        "keepalived sends from the interface's own `ip address`",
    ),
    (
        "preempt_delay",
        "lbconsole's keepalived takes the addresses back at once (`preempt on`) or never (`preempt off`)",
    ),
    (
        "virtual_routes",
        "routes belong in network.conf (`ip route`), on both appliances",
    ),
    (
        "virtual_rules",
        "policy rules belong in flows.conf (`table`), on both appliances",
    ),
    (
        "use_vmac",
        "lbconsole's keepalived moves the addresses, not a virtual MAC",
    ),
    (
        "vmac_xmit_base",
        "lbconsole's keepalived moves the addresses, not a virtual MAC",
    ),
];

/// keepalived's own VRRP tuning, which lbconsole's keepalived runs with its
/// defaults.
const TUNING: &[&str] = &[
    "version",
    "garp_master_delay",
    "garp_master_repeat",
    "garp_master_refresh",
    "garp_master_refresh_repeat",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "dont_track_primary",
    "skip_check_adv_addr",
    "strict_mode",
    "accept",
    "no_accept",
    "debug",
    "native_ipv6",
    "kernel_rx_buf_size",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "check_unicast_src",
    "track_src_ip",
    "mcast_dst_ip",
    "ha_suspend",
];

/// The interfaces' `vrrp` lines and the `service vrrp` section being built.
#[derive(Debug, Default)]
pub struct Vrrp {
    /// Each converted instance's interface, its `vrrp id` and its name, in
    /// the order of `Conversion::vrrp`.
    instances: Vec<(IfName, u32, String)>,
    /// The first instance that set the advert interval or preemption, and
    /// its setting.
    advert: Option<(String, Spanned<u32>)>,
    preempt: Option<(String, bool)>,
}

impl Vrrp {
    /// One `vrrp_instance NAME { … }`.
    pub fn instance(&mut self, node: &Node, out: &mut Conversion) {
        let name = node.arg(0).unwrap_or("").to_owned();
        let child = |keyword: &str| node.children().iter().find(|c| c.keyword() == keyword);
        let Some(interface) = child("interface") else {
            out.note(
                &node.place,
                NoteKind::Error,
                format!("{}: no `interface`; left out", node.text()),
            );
            return;
        };
        let Some(interface_name) = interface.arg(0).and_then(|n| IfName::new(n).ok()) else {
            bad_value(interface, out, "an interface name");
            return;
        };
        let Some(id_node) = child("virtual_router_id") else {
            out.note(
                &node.place,
                NoteKind::Error,
                format!("{}: no `virtual_router_id`; left out", node.text()),
            );
            return;
        };
        let Some(id) = id_node
            .arg(0)
            .and_then(|id| id.parse::<u32>().ok())
            .filter(|id| InterfaceVrrp::ID_RANGE.contains(id))
        else {
            bad_value(id_node, out, "a virtual router id 1-255");
            return;
        };
        let mut vrrp = InterfaceVrrp {
            id: Some(Spanned::unplaced(id)),
            prio: None,
            addresses: Vec::new(),
            loc: Loc::default(),
        };
        let mut service = VrrpService::default();
        for child in node.children() {
            self.statement(child, &name, &interface_name, &mut vrrp, &mut service, out);
        }
        self.add_service(service, node, out);
        self.add_instance(node, &name, interface_name, vrrp, out);
    }

    fn statement(
        &mut self,
        node: &Node,
        instance: &str,
        interface: &IfName,
        vrrp: &mut InterfaceVrrp,
        service: &mut VrrpService,
        out: &mut Conversion,
    ) {
        match node.keyword() {
            "interface" | "virtual_router_id" => {}
            "priority" => match node.arg(0).and_then(|p| p.parse::<u32>().ok()) {
                Some(255) => {
                    out.note(
                        &node.place,
                        NoteKind::Approximated,
                        "`priority 255` makes keepalived the owner of the addresses; lbconsole's highest is `vrrp prio 254`, which still wins against any lower one",
                    );
                    vrrp.prio = Some(Spanned::unplaced(254));
                }
                Some(prio) if InterfaceVrrp::PRIO_RANGE.contains(&prio) => {
                    vrrp.prio = Some(Spanned::unplaced(prio));
                }
                _ => bad_value(node, out, "a priority 1-255"),
            },
            "state" => out.note(
                &node.place,
                NoteKind::Approximated,
                format!(
                    "`{}`: the appliance with the higher `vrrp prio` becomes master; the starting state is not written",
                    node.text()
                ),
            ),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                if node.keyword() == "virtual_ipaddress_excluded" {
                    out.note(
                        &node.place,
                        NoteKind::Approximated,
                        "virtual_ipaddress_excluded: the addresses move with the others and are also listed in the adverts",
                    );
                }
                for address in node.children() {
                    if let Some(address) = vip(address, interface, out) {
                        vrrp.addresses.push(Spanned::unplaced(address));
                    }
                }
            }
            "advert_int" => match node.arg(0).and_then(|s| s.parse::<f64>().ok()) {
                Some(seconds) if seconds > 0.0 && seconds <= 40.0 => {
                    let ms = (seconds * 1000.0).round() as u32;
                    shared(
                        &mut self.advert,
                        &mut service.advert_ms,
                        Spanned::unplaced(ms),
                        instance,
                        node,
                        out,
                    );
                }
                _ => bad_value(node, out, "an interval in seconds"),
            },
            "nopreempt" => {
                shared(&mut self.preempt, &mut service.preempt, false, instance, node, out);
            }
            "preempt" => {}
            "unicast_peer" => {
                for peer in node.children() {
                    match peer.keyword().parse::<IpAddr>() {
                        Ok(address) => service.peers.push(Spanned::unplaced(address)),
                        Err(_) => bad_value(peer, out, "a peer's address"),
                    }
                }
            }
            "lvs_sync_daemon_interface" => sync_interface(node, service, out),
            keyword => match LEFT_OUT.iter().find(|(name, _)| *name == keyword) {
                Some((_, reason)) => out.note(
                    &node.place,
                    NoteKind::Dropped,
                    format!("`{}`: {reason}", node.text()),
                ),
                None if TUNING.contains(&keyword) => out.note(
                    &node.place,
                    NoteKind::Dropped,
                    format!(
                        "`{}`: keepalived's own VRRP tuning; lbconsole runs keepalived with its defaults",
                        node.text()
                    ),
                ),
                None => out.note(
                    &node.place,
                    NoteKind::Unknown,
                    format!("`{keyword}` in vrrp_instance: unknown keyword; left out"),
                ),
            },
        }
    }

    fn add_service(&mut self, service: VrrpService, node: &Node, out: &mut Conversion) {
        let converted = out.vrrp_service.get_or_insert_with(|| Converted {
            from: node.place.clone(),
            what: node.text(),
            value: VrrpService::default(),
        });
        let mine = &mut converted.value;
        for peer in service.peers {
            if !mine.peers.iter().any(|p| p.value == peer.value) {
                mine.peers.push(peer);
            }
        }
        mine.advert_ms = mine.advert_ms.or(service.advert_ms);
        mine.preempt = mine.preempt.or(service.preempt);
        if mine.sync_iface.is_none() {
            mine.sync_iface = service.sync_iface;
        }
    }

    fn add_instance(
        &mut self,
        node: &Node,
        name: &str,
        interface: IfName,
        vrrp: InterfaceVrrp,
        out: &mut Conversion,
    ) {
        let id = vrrp.id.map_or(0, |id| id.value);
        let earlier = self
            .instances
            .iter()
            .position(|(other, _, _)| *other == interface);
        let Some(index) = earlier else {
            self.instances
                .push((interface.clone(), id, name.to_owned()));
            let mut converted = Interface::new(Spanned::unplaced(interface));
            converted.vrrp = Some(vrrp);
            out.vrrp.push(Converted {
                from: node.place.clone(),
                what: node.text(),
                value: converted,
            });
            return;
        };
        let (_, first_id, first) = self.instances[index].clone();
        let families = |v: &InterfaceVrrp| {
            v.addresses
                .iter()
                .map(|a| a.family())
                .collect::<std::collections::BTreeSet<_>>()
        };
        let (twin, same_prio) = {
            let target = out.vrrp[index].value.vrrp.as_ref();
            let target = target.expect("a converted instance has vrrp lines");
            (
                first_id == id && families(target).is_disjoint(&families(&vrrp)),
                vrrp.prio.is_none() || target.prio.map(|p| p.value) == vrrp.prio.map(|p| p.value),
            )
        };
        // keepalived needs an instance per address family; lbconsole's one
        // `vrrp id` runs both, so an IPv6 twin of the same id is exact.
        if !twin {
            out.note(
                &node.place,
                NoteKind::Approximated,
                format!(
                    "{}: `{interface}` already has {first} (vrrp id {first_id}); lbconsole runs one VRRP instance per interface, so its addresses join {first}'s and move with them",
                    node.text()
                ),
            );
        }
        if !same_prio {
            out.note(
                &node.place,
                NoteKind::Approximated,
                format!("{}: {first}'s priority is the one written", node.text()),
            );
        }
        let target = out.vrrp[index].value.vrrp.as_mut();
        let target = target.expect("a converted instance has vrrp lines");
        for address in vrrp.addresses {
            if !target.addresses.iter().any(|a| a.value == address.value) {
                target.addresses.push(address);
            }
        }
    }
}

/// A setting `service vrrp` holds once for every instance: the `first`
/// instance's stays, another instance's that differs is reported.
fn shared<T: PartialEq + Clone>(
    first: &mut Option<(String, T)>,
    slot: &mut Option<T>,
    value: T,
    instance: &str,
    node: &Node,
    out: &mut Conversion,
) {
    match first {
        Some((first, kept)) if first != instance => {
            if *kept != value {
                out.note(
                    &node.place,
                    NoteKind::Approximated,
                    format!(
                        "`{}`: lbconsole's instances share one `service vrrp`; {first}'s setting is the one written",
                        node.text()
                    ),
                );
            }
        }
        _ => {
            *first = Some((instance.to_owned(), value.clone()));
            *slot = Some(value);
        }
    }
}

/// `lvs_sync_daemon IF …` (global_defs) or `lvs_sync_daemon_interface IF`:
/// the interface the kernel's IPVS connection sync runs on.
pub fn sync_interface(node: &Node, service: &mut VrrpService, out: &mut Conversion) {
    match node.arg(0).map(IfName::new) {
        Some(Ok(interface)) => {
            if node.args().len() > 1 {
                out.note(
                    &node.place,
                    NoteKind::Approximated,
                    format!(
                        "`{}`: lbconsole's connection sync runs on {interface} with the kernel's defaults (sync id, message size, port, group)",
                        node.text()
                    ),
                );
            }
            service.sync_iface = Some(Spanned::unplaced(interface));
        }
        Some(Err(_)) => bad_value(node, out, "an interface name"),
        None => missing_value(node, out),
    }
}

/// One line of `virtual_ipaddress { … }`: `A[/P] [dev IF] [label …]…`. An
/// address without a prefix is a host address, as keepalived adds it.
fn vip(node: &Node, interface: &IfName, out: &mut Conversion) -> Option<IpNet> {
    let written = node.keyword();
    let address = match written.split_once('/') {
        Some((address, prefix)) => address
            .parse::<IpAddr>()
            .ok()
            .zip(prefix.parse::<u8>().ok())
            .and_then(|(address, prefix)| IpNet::new(address, prefix)),
        None => written.parse::<IpAddr>().ok().map(IpNet::host),
    };
    let Some(address) = address else {
        bad_value(node, out, "an address A or A/P");
        return None;
    };
    let own_device = ["dev".to_owned(), interface.to_string()];
    if !node.args().is_empty() && node.args() != own_device {
        out.note(
            &node.place,
            NoteKind::Approximated,
            format!(
                "`{}`: {address} is added on {interface} with the kernel's defaults; `{}` is not kept",
                node.text(),
                node.args().join(" ")
            ),
        );
    }
    Some(address)
}
