//! Meaning checks over a parsed configuration: what the parser cannot see from one
//! line — names that must exist in another file, duplicates, settings that the
//! kernel would refuse or silently ignore.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::ops::RangeInclusive;

use super::diagnostic::{ConfigFile, Diagnostic, Sink, did_you_mean};
use super::model::Config;
use super::model::flows::{Condition, Direction, Flow, MAX_FLOW_TABLE, Policy, Rule, RuleAction};
use super::model::lvs::{CheckMethod, Director, ForwardMode, ServiceProtocol};
use super::model::network::{Interface, InterfaceVrrp, LinkKind, NetworkConfig, VrrpService};
use super::model::types::{
    DirectorName, Family, IfName, IpNet, Loc, Protocol, Spanned, TableId, endpoint,
};

/// Which files parsed without errors. Warnings that something is missing (a bond
/// without slaves, a flow without rules, a director without servers) would only
/// echo a parse error in a file where the missing lines failed to parse.
#[derive(Debug, Clone, Copy)]
pub struct ParsedCleanly {
    pub network: bool,
    pub flows: bool,
    pub lvs: bool,
}

pub fn validate(config: &Config, clean: ParsedCleanly) -> Vec<Diagnostic> {
    let mut network = Sink::new(ConfigFile::Network);
    let mut flows = Sink::new(ConfigFile::Flows);
    let mut lvs = Sink::new(ConfigFile::Lvs);
    check_network(&config.network, clean.network, &mut network);
    check_flows(config, clean.flows, &mut flows);
    check_lvs(config, clean.lvs, &mut lvs);
    let mut all = network.diagnostics;
    all.extend(flows.diagnostics);
    all.extend(lvs.diagnostics);
    all
}

/// Remembers the first place each key was seen.
struct FirstSeen<K>(HashMap<K, Loc>);

impl<K: std::hash::Hash + Eq> FirstSeen<K> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    /// For `capacity` keys without growing: a director's servers, thousands of flows.
    fn with_capacity(capacity: usize) -> Self {
        Self(HashMap::with_capacity(capacity))
    }

    /// The line of an earlier sighting of `key`, recording this one if it is the first.
    fn earlier(&mut self, key: K, loc: Loc) -> Option<u32> {
        match self.0.entry(key) {
            std::collections::hash_map::Entry::Occupied(first) => Some(first.get().line),
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(loc);
                None
            }
        }
    }
}

fn check_network(network: &NetworkConfig, clean: bool, sink: &mut Sink) {
    let mut names = FirstSeen::new();
    for interface in &network.interfaces {
        if let Some(line) = names.earlier(interface.name.as_str(), interface.name.loc) {
            sink.error(
                interface.name.loc,
                format!(
                    "interface `{}` is already defined on line {line}",
                    interface.name.value
                ),
            );
        }
    }
    let mut enslaved = FirstSeen::new();
    let mut vlans = FirstSeen::new();
    for interface in &network.interfaces {
        match &interface.kind {
            LinkKind::Ethernet => {}
            LinkKind::Bonding(_) => check_bond(network, interface, clean, &mut enslaved, sink),
            LinkKind::Vlan(vlan) => {
                let parent = vlan.parent.as_str();
                if parent == interface.name.as_str() {
                    sink.error(
                        vlan.parent.loc,
                        format!("VLAN `{parent}` cannot be its own parent"),
                    );
                } else if let Some(bond) = network.bond_of(parent) {
                    sink.error_hint(
                        vlan.parent.loc,
                        format!("VLAN parent `{parent}` is a slave of `{}`", bond.name.value),
                        Some(format!("put the VLAN on `{}`", bond.name.value)),
                    );
                } else if network.interface(parent).is_none() {
                    sink.error_hint(
                        vlan.parent.loc,
                        format!("VLAN parent `{parent}` is not defined in network.conf"),
                        Some(format!("add `service network {parent}`")),
                    );
                }
                if let Some(line) = vlans.earlier((parent, vlan.id.value), vlan.id.loc) {
                    sink.error(
                        vlan.id.loc,
                        format!(
                            "VLAN {} on `{parent}` is already defined on line {line}",
                            vlan.id.value
                        ),
                    );
                }
            }
        }
    }
    check_addresses_and_routes(network, sink);
    check_vrrp(network, clean, sink);
}

fn check_bond<'a>(
    network: &'a NetworkConfig,
    bond_interface: &'a Interface,
    clean: bool,
    enslaved: &mut FirstSeen<&'a str>,
    sink: &mut Sink,
) {
    let Some(bond) = bond_interface.bond() else {
        return;
    };
    let bond_name = bond_interface.name.as_str();
    if clean && bond.slaves.is_empty() {
        sink.warning_hint(
            bond.loc,
            format!("bond `{bond_name}` has no slaves"),
            Some("add `slave IF …`".to_owned()),
        );
    }
    for slave in &bond.slaves {
        let name = slave.as_str();
        if name == bond_name {
            sink.error(
                slave.loc,
                format!("bond `{bond_name}` cannot enslave itself"),
            );
            continue;
        }
        if let Some(line) = enslaved.earlier(name, slave.loc) {
            sink.error(
                slave.loc,
                format!("`{name}` is already a slave on line {line}"),
            );
            continue;
        }
        let Some(section) = network.interface(name) else {
            continue;
        };
        if !matches!(section.kind, LinkKind::Ethernet) {
            sink.error(
                slave.loc,
                format!(
                    "`{name}` is a {} interface; only ethernet links can be bond slaves",
                    section.kind.keyword()
                ),
            );
        }
        for address in &section.addresses {
            sink.error_hint(
                address.loc,
                format!("`{name}` is a slave of `{bond_name}` and cannot carry an address"),
                Some(format!("put the address on `{bond_name}`")),
            );
        }
        for route in &section.routes {
            sink.error_hint(
                route.loc,
                format!("`{name}` is a slave of `{bond_name}` and cannot carry a route"),
                Some(format!("put the route on `{bond_name}`")),
            );
        }
        if let Some(vrrp) = &section.vrrp {
            sink.error_hint(
                vrrp.loc,
                format!("`{name}` is a slave of `{bond_name}` and cannot run VRRP"),
                Some(format!("put the `vrrp` lines on `{bond_name}`")),
            );
        }
        // The kernel gives every slave its bond's MTU and keeps them equal.
        if let Some(mtu) = &section.mtu {
            sink.error_hint(
                mtu.loc,
                format!("`{name}` is a slave of `{bond_name}` and takes the bond's MTU"),
                Some(format!("put `mtu {}` on `{bond_name}`", mtu.value)),
            );
        }
    }
    let mode = bond.mode();
    if let Some(primary) = &bond.primary {
        if !bond.slaves.iter().any(|s| s.value == primary.value) {
            let hint = did_you_mean(primary.as_str(), bond.slaves.iter().map(|s| s.as_str()))
                .or_else(|| Some(format!("add it to `slave` of `{bond_name}`")));
            sink.error_hint(
                primary.loc,
                format!(
                    "primary `{}` is not a slave of `{bond_name}`",
                    primary.value
                ),
                hint,
            );
        } else if !mode.uses_primary() {
            sink.warning(
                primary.loc,
                format!("`bonding primary` has no effect in mode {}", mode.keyword()),
            );
        }
    }
    if bond.xmit_hash_policy.is_some() && !mode.uses_xmit_hash() {
        sink.warning(
            bond.loc,
            format!(
                "`bonding xmit-hash-policy` has no effect in mode {}",
                mode.keyword()
            ),
        );
    }
    if bond.lacp_rate.is_some() && mode != super::model::network::BondMode::Lacp {
        sink.warning(
            bond.loc,
            format!(
                "`bonding lacp-rate` only applies to mode 802.3ad, not {}",
                mode.keyword()
            ),
        );
    }
    let miimon = bond.miimon();
    if miimon == 0 {
        sink.warning(
            bond.loc,
            format!("`bonding miimon 0` turns link monitoring off: `{bond_name}` never notices a dead slave"),
        );
    } else {
        for (what, delay) in [("updelay", bond.updelay()), ("downdelay", bond.downdelay())] {
            if delay % miimon != 0 {
                sink.warning(
                    bond.loc,
                    format!(
                        "{what} {delay} is not a multiple of miimon {miimon}; the kernel rounds it down to {}",
                        delay / miimon * miimon
                    ),
                );
            }
        }
    }
}

fn check_addresses_and_routes(network: &NetworkConfig, sink: &mut Sink) {
    let mut addresses = FirstSeen::new();
    let mut routes = FirstSeen::new();
    for interface in &network.interfaces {
        let name = interface.name.as_str();
        for address in &interface.addresses {
            if let Some(line) = addresses.earlier(address.addr, address.loc) {
                sink.error(
                    address.loc,
                    format!(
                        "address {} is already assigned on line {line}",
                        address.addr
                    ),
                );
            }
            if is_link_local(address.addr) {
                sink.error_hint(
                    address.loc,
                    format!(
                        "{} is link-local; the kernel gives every IPv6 link its own fe80:: address",
                        address.value
                    ),
                    Some("use a global or unique-local (fd00::/8) address".to_owned()),
                );
            }
        }
        if let Some(mtu) = &interface.mtu
            && mtu.value < IPV6_MIN_MTU
            && let Some(address) = interface
                .addresses
                .iter()
                .find(|a| a.family() == Family::Ipv6)
        {
            sink.error(
                address.loc,
                format!(
                    "`{name}` has mtu {}; the kernel turns IPv6 off below {IPV6_MIN_MTU}, so {} could not be added",
                    mtu.value, address.value
                ),
            );
        }
        let enslaved = network.bond_of(name).is_some();
        for route in &interface.routes {
            if !interface.is_up() {
                sink.error_hint(
                    route.loc,
                    format!(
                        "`{name}` is `auto off`; the kernel refuses routes on a link that is down"
                    ),
                    Some("remove the route or turn the interface on".to_owned()),
                );
            }
            let destination = route.destination_net();
            if destination.family() != route.family() {
                sink.error(
                    route.loc,
                    format!(
                        "route to {} network {destination} has {} gateway {}; a route and its gateway are one family",
                        destination.family(),
                        route.family(),
                        route.gateway
                    ),
                );
                continue;
            }
            if destination.has_host_bits() {
                sink.error_hint(
                    route.loc,
                    format!("route destination {destination} has host bits set"),
                    Some(format!(
                        "did you mean {}/{}?",
                        destination.network(),
                        destination.prefix
                    )),
                );
            }
            let table = route.table.as_ref().map_or(TableId::MAIN, |t| t.get());
            if let Some(line) = routes.earlier(
                (destination.network(), destination.prefix, table),
                route.loc,
            ) {
                sink.error(
                    route.loc,
                    format!(
                        "a route to {} in table {} is already defined on line {line}",
                        route_target(destination),
                        table_name(table)
                    ),
                );
            }
            if !enslaved
                && !is_link_local(route.gateway)
                && !interface
                    .addresses
                    .iter()
                    .any(|a| a.contains(route.gateway))
            {
                let hint = match interface
                    .addresses
                    .iter()
                    .find(|a| a.family() == route.family())
                {
                    None => format!("add an `ip address` on `{name}` in the gateway's subnet"),
                    Some(a) => format!("`{name}` has {}", a.value),
                };
                sink.error_hint(
                    route.loc,
                    format!(
                        "gateway {} is not in a subnet of `{name}`; the kernel would refuse this route",
                        route.gateway
                    ),
                    Some(hint),
                );
            }
        }
    }
}

/// The `vrrp` lines of each interface and the `service vrrp` section.
fn check_vrrp(network: &NetworkConfig, clean: bool, sink: &mut Sink) {
    let plain: HashMap<IpAddr, Loc> = network
        .interfaces
        .iter()
        .flat_map(|i| &i.addresses)
        .map(|a| (a.addr, a.loc))
        .collect();
    let mut vips = FirstSeen::new();
    for interface in &network.interfaces {
        let Some(vrrp) = &interface.vrrp else {
            continue;
        };
        let name = interface.name.as_str();
        match &vrrp.id {
            Some(id) => in_range(sink, "VRRP id", id, InterfaceVrrp::ID_RANGE),
            None if clean => sink.error_hint(
                vrrp.loc,
                format!("`{name}` has `vrrp` lines but no `vrrp id`"),
                Some("add `vrrp id N` (1-255), the same on both appliances".to_owned()),
            ),
            None => {}
        }
        if let Some(prio) = &vrrp.prio {
            in_range(sink, "VRRP priority", prio, InterfaceVrrp::PRIO_RANGE);
        }
        if clean && vrrp.addresses.is_empty() {
            sink.error_hint(
                vrrp.loc,
                format!("`{name}` has `vrrp` lines but no `vrrp address`"),
                Some(
                    "add the address that moves between the appliances: `vrrp address A/P`"
                        .to_owned(),
                ),
            );
        }
        let enslaved = network.bond_of(name).is_some();
        for vip in &vrrp.addresses {
            if let Some(line) = vips.earlier(vip.addr, vip.loc) {
                sink.error(
                    vip.loc,
                    format!(
                        "VIP {} is already a `vrrp address` on line {line}",
                        vip.addr
                    ),
                );
            } else if let Some(plain) = plain.get(&vip.addr) {
                sink.error_hint(
                    vip.loc,
                    format!(
                        "VIP {} is also an `ip address` on line {}",
                        vip.addr, plain.line
                    ),
                    Some("keepalived moves a VIP between the appliances; an `ip address` stays on one".to_owned()),
                );
            }
            let own = interface
                .addresses
                .iter()
                .filter(|a| a.family() == vip.family());
            if !enslaved && !own.clone().any(|a| a.contains(vip.addr)) {
                let hint = match own.clone().next() {
                    None => format!(
                        "add an {} `ip address` on `{name}` in the VIP's subnet",
                        vip.family()
                    ),
                    Some(a) => format!("`{name}` has {}", a.value),
                };
                sink.error_hint(
                    vip.loc,
                    format!("VIP {} is not in a subnet of `{name}`", vip.value),
                    Some(hint),
                );
            }
        }
    }
    if let Some(service) = &network.vrrp {
        check_vrrp_service(network, service, clean, sink);
    }
}

/// A number the parser took as it was written, checked against `range`.
fn in_range(sink: &mut Sink, what: &str, value: &Spanned<u32>, range: RangeInclusive<u32>) {
    if !range.contains(&value.value) {
        sink.error(
            value.loc,
            format!(
                "{what} {} is out of range {}-{}",
                value.value,
                range.start(),
                range.end()
            ),
        );
    }
}

fn check_vrrp_service(
    network: &NetworkConfig,
    service: &VrrpService,
    clean: bool,
    sink: &mut Sink,
) {
    if let Some(sync) = &service.sync_iface {
        let name = sync.as_str();
        match network.interface(name) {
            _ if let Some(bond) = network.bond_of(name) => sink.error_hint(
                sync.loc,
                format!(
                    "sync interface `{name}` is a slave of `{}`",
                    bond.name.value
                ),
                Some(format!("use `sync-iface {}`", bond.name.value)),
            ),
            None => {
                let hint = did_you_mean(name, network.interfaces.iter().map(|i| i.name.as_str()))
                    .or_else(|| Some(format!("add `service network {name}`")));
                sink.error_hint(
                    sync.loc,
                    format!("sync interface `{name}` is not defined in network.conf"),
                    hint,
                );
            }
            Some(interface)
                if !interface
                    .addresses
                    .iter()
                    .any(|a| a.family() == Family::Ipv4) =>
            {
                sink.error_hint(
                    sync.loc,
                    format!(
                        "sync interface `{name}` has no IPv4 address; the kernel's IPVS connection sync multicasts over IPv4 (224.0.0.81)"
                    ),
                    Some(format!("add an IPv4 `ip address` on `{name}`")),
                );
            }
            Some(_) => {}
        }
    }
    if let Some(advert) = &service.advert_ms {
        let range = VrrpService::ADVERT_RANGE_MS;
        if !range.contains(&advert.value) {
            sink.error(
                advert.loc,
                format!(
                    "advert {} ms is out of VRRPv3's range {}-{} ms",
                    advert.value,
                    range.start(),
                    range.end()
                ),
            );
        } else if advert.value % 10 != 0 {
            sink.error_hint(
                advert.loc,
                format!(
                    "advert {} ms is not a multiple of 10; VRRPv3 counts in hundredths of a second",
                    advert.value
                ),
                Some(format!("write `advert {}`", advert.value / 10 * 10)),
            );
        }
    }
    let mut peers = FirstSeen::new();
    for peer in &service.peers {
        if let Some(line) = peers.earlier(peer.value, peer.loc) {
            sink.error(
                peer.loc,
                format!("peer {} is already listed on line {line}", peer.value),
            );
            continue;
        }
        let own = network.interfaces.iter().find_map(|i| {
            let vips = i.vrrp.iter().flat_map(|v| &v.addresses);
            i.addresses
                .iter()
                .chain(vips)
                .find(|a| a.addr == peer.value)
                .map(|a| (i, a.loc.line))
        });
        if let Some((interface, line)) = own {
            sink.error_hint(
                peer.loc,
                format!(
                    "peer {} is an address of this appliance (`{}`, line {line})",
                    peer.value, interface.name.value
                ),
                Some("`peer` names the other appliance's own address".to_owned()),
            );
        }
    }
    if clean && !network.interfaces.iter().any(|i| i.vrrp.is_some()) {
        sink.warning_hint(
            service.loc,
            "`service vrrp` but no interface has `vrrp` lines; keepalived has nothing to run",
            Some(
                "add `vrrp id N` and `vrrp address A/P` to a `service network` section".to_owned(),
            ),
        );
    }
}

/// RFC 8200's minimum link MTU for IPv6.
const IPV6_MIN_MTU: u32 = 1280;

/// A link-local gateway (`fe80::/10`) is on its link by definition.
fn is_link_local(address: IpAddr) -> bool {
    matches!(address, IpAddr::V6(v6) if v6.is_unicast_link_local())
}

fn route_target(net: IpNet) -> String {
    if net.prefix == 0 {
        "default".to_owned()
    } else {
        net.to_string()
    }
}

fn table_name(id: u32) -> String {
    if id == TableId::MAIN {
        "main".to_owned()
    } else {
        id.to_string()
    }
}

fn check_flows(config: &Config, clean: bool, sink: &mut Sink) {
    let mut names = FirstSeen::with_capacity(config.flows.flows.len());
    let tables: HashSet<TableId> = config.network.route_tables().collect();
    // By name, the first of each: ten thousand flows may each name one of
    // thousands of directors.
    let mut directors: HashMap<&str, &Director> =
        HashMap::with_capacity(config.lvs.directors.len());
    for director in &config.lvs.directors {
        directors.entry(director.name.as_str()).or_insert(director);
    }
    // The first flow, per direction, that takes every packet before any later flow.
    let mut catch_all: [Option<&Flow>; 2] = [None, None];
    for flow in &config.flows.flows {
        if let Some(line) = names.earlier(flow.name.as_str(), flow.name.loc) {
            sink.error(
                flow.name.loc,
                format!(
                    "a flow named `{}` is already defined on line {line}",
                    flow.name.value
                ),
            );
        }
        match &flow.policy.value {
            Policy::Director(director) if flow.direction == Direction::Out => sink.error_hint(
                flow.policy.loc,
                format!(
                    "outflow `{}` cannot use `director {director}`",
                    flow.name.value
                ),
                Some("directors take incoming traffic: use `flow`".to_owned()),
            ),
            Policy::Director(director) if !directors.contains_key(director.as_str()) => {
                let hint = did_you_mean(
                    director.as_str(),
                    config.lvs.directors.iter().map(|d| d.name.as_str()),
                )
                .or_else(|| Some(format!("add `director {director}` to lvs.conf")));
                sink.error_hint(
                    flow.policy.loc,
                    format!("no director `{director}` in lvs.conf"),
                    hint,
                );
            }
            Policy::Director(director)
                if directors
                    .get(director.as_str())
                    .is_some_and(|d| d.service.is_some()) =>
            {
                sink.error_hint(
                    flow.policy.loc,
                    format!(
                        "director `{director}` has a VIP, so IPVS takes its traffic there, not from a flow"
                    ),
                    Some(format!(
                        "remove the VIP from `director {director}` in lvs.conf, or let its traffic through with `permit`"
                    )),
                );
            }
            Policy::Table(id) if id.get() > MAX_FLOW_TABLE => sink.error_hint(
                flow.policy.loc,
                format!("a flow can route to tables 1 to {MAX_FLOW_TABLE}, not {id}"),
                Some(
                    "the table number travels in the packet's mark; pick a smaller table"
                        .to_owned(),
                ),
            ),
            Policy::Table(id) if id.get() != TableId::MAIN && !tables.contains(id) => sink
                .error_hint(
                    flow.policy.loc,
                    format!("no route in network.conf fills table {id}"),
                    Some(format!(
                        "add `ip route default GATEWAY table {id}` to an interface"
                    )),
                ),
            _ => {}
        }
        let direction = usize::from(flow.direction == Direction::Out);
        if flow.policy.value != Policy::Skip {
            if let Some(earlier) = catch_all[direction] {
                sink.warning(
                    flow.name.loc,
                    format!(
                        "{} `{}` never sees a packet: `{}` on line {} takes every packet first",
                        flow.direction.keyword(),
                        flow.name.value,
                        earlier.name.value,
                        earlier.name.loc.line
                    ),
                );
            } else if flow
                .rules
                .first()
                .is_some_and(|r| r.action == RuleAction::Match && r.conditions.is_empty())
            {
                catch_all[direction] = Some(flow);
            }
            if clean && flow.rules.is_empty() {
                sink.warning_hint(
                    flow.name.loc,
                    format!(
                        "{} `{}` has no rules and matches nothing",
                        flow.direction.keyword(),
                        flow.name.value
                    ),
                    Some("add `match` to take every packet".to_owned()),
                );
            }
        }
        if let Policy::Director(name) = &flow.policy.value
            && let Some(director) = directors.get(name.as_str())
        {
            check_directed_family(flow, director, sink);
        }
        check_rules(&config.network, flow, sink);
    }
}

/// IPVS takes a marked packet only into a service of the packet's family.
fn check_directed_family(flow: &Flow, director: &Director, sink: &mut Sink) {
    let family = director.family();
    for rule in &flow.rules {
        if let Some(rule_family) = rule.conditions.family()
            && rule_family != family
            && rule.action == RuleAction::Match
        {
            sink.error(
                rule.loc,
                format!(
                    "this rule matches {rule_family} packets but director `{}` serves {family}; IPVS would never take them",
                    director.name.value
                ),
            );
        }
    }
}

fn check_rules(network: &NetworkConfig, flow: &Flow, sink: &mut Sink) {
    let mut bare: Option<&Rule> = None;
    for rule in &flow.rules {
        if let Some(earlier) = bare {
            sink.warning(
                rule.loc,
                format!(
                    "this rule is never reached: the bare `{}` on line {} takes every packet",
                    earlier.action.keyword(),
                    earlier.loc.line
                ),
            );
        } else if rule.conditions.is_empty() {
            bare = Some(rule);
        }
        let c = &rule.conditions;
        let proto = c.known_protocol();
        if let Some(icmptype) = &c.icmptype
            && !proto.is_some_and(Protocol::is_icmp)
        {
            sink.error(
                icmptype.loc,
                "`icmptype` needs `proto icmp` or `proto icmpv6` in the same rule",
            );
        }
        check_rule_family(rule, sink);
        for (key, port) in [("srcport", &c.srcport), ("dstport", &c.dstport)] {
            if let Some(port) = port
                && !proto.is_some_and(Protocol::has_ports)
            {
                sink.error(
                    port.loc,
                    format!("`{key}` needs `proto tcp` or `proto udp` in the same rule"),
                );
            }
        }
        for (key, net) in [("src", &c.src), ("dst", &c.dst)] {
            if let Some(Condition { value, loc, .. }) = net
                && value.has_host_bits()
            {
                sink.warning(
                    *loc,
                    format!(
                        "{key} {value} has host bits set; it matches {}/{}",
                        value.network(),
                        value.prefix
                    ),
                );
            }
        }
        if let Some(iface) = &c.iface
            && let Some(bond) = network.bond_of(iface.value.as_str())
        {
            sink.warning_hint(
                iface.loc,
                format!(
                    "`{}` is a slave of `{}`; its packets pass through the bond",
                    iface.value, bond.name.value
                ),
                Some(format!("match `iface {}`", bond.name.value)),
            );
        }
    }
}

/// A packet is IPv4 or IPv6, so a rule naming both can match nothing.
fn check_rule_family(rule: &Rule, sink: &mut Sink) {
    let c = &rule.conditions;
    let addresses = [("src", &c.src), ("dst", &c.dst)]
        .into_iter()
        .filter_map(|(key, net)| {
            net.as_ref()
                .map(|n| (Named::Address(key, n.value), n.value.family(), n.loc))
        });
    let protocol = c.proto.as_ref().filter(|p| !p.negated).and_then(|p| {
        p.value
            .family()
            .map(|family| (Named::Protocol(p.value), family, p.loc))
    });
    let mut first: Option<(Named, Family)> = None;
    for (what, family, loc) in addresses.chain(protocol) {
        match first {
            None => first = Some((what, family)),
            Some((earlier, earlier_family)) if earlier_family != family => {
                sink.error(
                    loc,
                    format!(
                        "`{what}` is {family} but `{earlier}` is {earlier_family}; a rule matches one family"
                    ),
                );
                return;
            }
            Some(_) => {}
        }
    }
}

/// A condition that names a family, as the rule wrote it; only spelled out in an error.
#[derive(Clone, Copy)]
enum Named {
    Address(&'static str, IpNet),
    Protocol(Protocol),
}

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Address(key, net) => write!(f, "{key} {}", net.shortest()),
            Self::Protocol(protocol) => write!(f, "proto {}", protocol.keyword()),
        }
    }
}

fn check_lvs(config: &Config, clean: bool, sink: &mut Sink) {
    let mut names = FirstSeen::with_capacity(config.lvs.directors.len());
    let mut services: HashMap<_, &Director> = HashMap::new();
    let directed: HashSet<&DirectorName> = config
        .flows
        .flows
        .iter()
        .filter_map(|f| match &f.policy.value {
            Policy::Director(d) => Some(d),
            _ => None,
        })
        .collect();
    let interface_addresses: Vec<IpAddr> = config
        .network
        .interfaces
        .iter()
        .flat_map(|i| i.addresses.iter().map(|a| a.addr))
        .collect();
    for director in &config.lvs.directors {
        let name = director.name.as_str();
        if let Some(line) = names.earlier(name, director.name.loc) {
            sink.error(
                director.name.loc,
                format!("a director named `{name}` is already defined on line {line}"),
            );
        }
        match &director.service {
            Some(service) if is_link_local(service.address) => sink.error(
                service.loc,
                format!(
                    "VIP {} is link-local; clients beyond the link could not reach it",
                    service.address
                ),
            ),
            Some(service) => {
                let key = (
                    service.address,
                    service.port.map_or(0, |p| p.get()),
                    service.protocol(),
                );
                if let Some(first) = services.get(&key) {
                    sink.error(
                        service.loc,
                        format!(
                            "{} is already the VIP of director `{}` on line {}",
                            describe_vip(director),
                            first.name.value,
                            first.name.loc.line
                        ),
                    );
                } else {
                    services.insert(key, director);
                }
            }
            None => {
                if clean && !directed.contains(&director.name.value) {
                    sink.warning_hint(
                        director.name.loc,
                        format!("director `{name}` has no VIP and no flow sends it traffic"),
                        Some(format!(
                            "add a VIP to its line, or `flow NAME director {name}` to flows.conf"
                        )),
                    );
                }
            }
        }
        let sync_iface = config
            .network
            .vrrp
            .as_ref()
            .and_then(|v| v.sync_iface.as_ref());
        check_servers(director, sync_iface, clean, sink);
        check_persistence(director, sink);
        check_health(config, director, &interface_addresses, sink);
        if director.onepacket
            && let Some(service) = &director.service
            && service.protocol() != ServiceProtocol::Udp
        {
            sink.error_hint(
                director.onepacket_loc,
                "`option onepacket` works only for UDP services",
                Some("add UDP to the director line".to_owned()),
            );
        }
    }
}

fn check_persistence(director: &Director, sink: &mut Sink) {
    let family = director.family();
    let Some(persistence) = &director.persistence else {
        return;
    };
    if family == Family::Ipv6 && persistence.netmask == Some(0) {
        sink.error(
            persistence.netmask_loc,
            "persistence prefix length 0 for an IPv6 director: IPVS takes 1-128",
        );
    }
    if let Some(prefix) = persistence.netmask
        && prefix > family.max_prefix()
    {
        sink.error(
            persistence.netmask_loc,
            format!(
                "persistence prefix length {prefix} is longer than an {family} address ({} bits)",
                family.max_prefix()
            ),
        );
    }
}

fn describe_vip(director: &Director) -> String {
    match &director.service {
        None => "no VIP".to_owned(),
        Some(service) => format!(
            "{} {}",
            endpoint(service.address, service.port),
            service.protocol().keyword()
        ),
    }
}

/// `sync_iface`: the IPVS connection sync runs (network.conf's `service vrrp`).
fn check_servers(
    director: &Director,
    sync_iface: Option<&Spanned<IfName>>,
    clean: bool,
    sink: &mut Sink,
) {
    let name = director.name.as_str();
    if director.servers.is_empty() {
        if !clean {
            return;
        }
        sink.warning(
            director.name.loc,
            format!("director `{name}` has no servers"),
        );
        return;
    }
    let vip_port = director.service.as_ref().and_then(|s| s.port);
    let family = director.family();
    let mut names = FirstSeen::with_capacity(director.servers.len());
    let mut endpoints = FirstSeen::with_capacity(director.servers.len());
    for server in &director.servers {
        if let Some(line) = names.earlier(server.name.as_str(), server.name.loc) {
            sink.error(
                server.name.loc,
                format!(
                    "a server named `{}` is already in `{name}` on line {line}",
                    server.name.value
                ),
            );
        }
        let port = server.port.or(vip_port);
        if let Some(line) = endpoints.earlier((server.address, port), server.loc) {
            sink.error(
                server.loc,
                format!(
                    "real server {} is already in `{name}` on line {line}",
                    endpoint(server.address, port)
                ),
            );
        }
        if is_link_local(server.address) {
            sink.error(
                server.loc,
                format!(
                    "server `{}` has link-local address {}; IPVS and the checks need an address that names no link",
                    server.name.value, server.address
                ),
            );
        }
        let mode = director.forward_mode();
        if Family::of(server.address) != family && mode != ForwardMode::Tunnel {
            sink.error_hint(
                server.loc,
                format!(
                    "server `{}` is {} but director `{name}` is {family}; IPVS mixes families only in tunnel mode",
                    server.name.value,
                    Family::of(server.address)
                ),
                Some(format!("give `{}` an {family} address, or use `mode tunnel`", server.name.value)),
            );
        } else if Family::of(server.address) != family
            && let Some(sync_iface) = sync_iface
        {
            sink.error_hint(
                server.loc,
                format!(
                    "server `{}` is {} but director `{name}` is {family}; the kernel refuses mixed families while its IPVS connection sync runs (`sync-iface {}` in network.conf)",
                    server.name.value,
                    Family::of(server.address),
                    sync_iface.value
                ),
                Some(format!("give `{}` an {family} address, or put the {} servers in a director of their own", server.name.value, Family::of(server.address))),
            );
        }
        if mode != ForwardMode::Nat
            && let (Some(port), Some(vip_port)) = (server.port, vip_port)
            && port != vip_port
        {
            sink.warning(
                server.loc,
                format!(
                    "in {} mode the server receives the VIP's port {vip_port}; port {port} is ignored",
                    mode.keyword()
                ),
            );
        }
    }
    if director.servers.iter().all(|s| s.sorry) {
        sink.warning(
            director.name.loc,
            format!("every server of `{name}` is a sorry server; nothing serves until one is not"),
        );
    }
}

fn check_health(
    config: &Config,
    director: &Director,
    interface_addresses: &[IpAddr],
    sink: &mut Sink,
) {
    let check = &director.check;
    let method = director.check_method();
    if let Some(port) = &check.port
        && !method.uses_port()
    {
        sink.warning(
            port.loc,
            format!(
                "`check port` has no effect with {}; it applies to tcpcheck and httpcheck",
                method.keyword()
            ),
        );
    }
    if check.timeout.is_some() && check.timeout() >= check.interval() {
        sink.warning(
            check.loc,
            format!(
                "check timeout {}s is not shorter than the interval {}s; checks will overlap",
                check.timeout(),
                check.interval()
            ),
        );
    }
    if let Some(source) = &check.source
        && Family::of(source.value) != director.family()
    {
        sink.error(
            source.loc,
            format!(
                "check source {} is {} but director `{}` is {}; a check leaves from the servers' family",
                source.value,
                Family::of(source.value),
                director.name.value,
                director.family()
            ),
        );
    } else if let Some(source) = &check.source
        && !interface_addresses.contains(&source.value)
    {
        sink.warning(
            source.loc,
            format!(
                "check source {} is not an address of any interface in network.conf",
                source.value
            ),
        );
    }
    if let Some(method) = &director.adv_check
        && let CheckMethod::Arp { iface: Some(iface) } = &method.value
        && config.network.interface(iface.as_str()).is_none()
    {
        sink.warning(
            method.loc,
            format!("arpcheck interface `{iface}` is not defined in network.conf"),
        );
    }
    let configured = !check.is_unset() || director.adv_check.is_some();
    if configured && !director.servers.is_empty() && !director.servers.iter().any(|s| s.check) {
        let loc = if check.is_unset() {
            director
                .adv_check
                .as_ref()
                .map_or(director.name.loc, |m| m.loc)
        } else {
            check.loc
        };
        sink.warning_hint(
            loc,
            format!(
                "no server of `{}` has `check`, so these checks never run",
                director.name.value
            ),
            Some("add `check` to the server lines".to_owned()),
        );
    }
}
