//! The canonical printer: one statement per line, four-space indents, a blank line
//! between sections, defaults left unwritten. `parse(print(c)) == c` for every
//! configuration; comments and layout are not part of the model, so printing a
//! file normalises it.

use std::fmt::Write;

use super::model::Config;
use super::model::flows::{Condition, Flow, FlowsConfig, Policy, Rule};
use super::model::lvs::{CheckMethod, Director, LvsConfig, Server};
use super::model::network::{
    Interface, InterfaceVrrp, LinkKind, NetworkConfig, RouteDestination, VrrpService,
};
use super::model::types::{Family, endpoint, prefix_to_mask};

const INDENT: &str = "    ";

/// The three files' texts, in the order network, flows, lvs.
pub fn all(config: &Config) -> [String; 3] {
    [
        network(&config.network),
        flows(&config.flows),
        lvs(&config.lvs),
    ]
}

pub fn network(config: &NetworkConfig) -> String {
    let mut out = sections(&config.interfaces, interface);
    if let Some(service) = &config.vrrp {
        if !out.is_empty() {
            out.push('\n');
        }
        vrrp_service(&mut out, service);
    }
    out
}

pub fn flows(config: &FlowsConfig) -> String {
    sections(&config.flows, flow)
}

pub fn lvs(config: &LvsConfig) -> String {
    sections(&config.directors, director)
}

fn sections<T>(items: &[T], print: fn(&mut String, &T)) -> String {
    let mut out = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        print(&mut out, item);
    }
    out
}

// `write!` to a String cannot fail; the results below are discarded on purpose.

pub fn interface(out: &mut String, interface: &Interface) {
    let _ = writeln!(out, "service network {}", interface.name.value);
    match &interface.kind {
        LinkKind::Ethernet => {}
        LinkKind::Bonding(bond) => {
            let _ = writeln!(out, "{INDENT}type bonding");
            if let Some(mode) = bond.mode {
                let _ = writeln!(out, "{INDENT}bonding mode {}", mode.keyword());
            }
            for (keyword, value) in [
                ("miimon", bond.miimon),
                ("updelay", bond.updelay),
                ("downdelay", bond.downdelay),
            ] {
                if let Some(ms) = value {
                    let _ = writeln!(out, "{INDENT}bonding {keyword} {ms}");
                }
            }
            if let Some(primary) = &bond.primary {
                let _ = writeln!(out, "{INDENT}bonding primary {}", primary.value);
            }
            if let Some(policy) = bond.xmit_hash_policy {
                let _ = writeln!(out, "{INDENT}bonding xmit-hash-policy {}", policy.keyword());
            }
            if let Some(rate) = bond.lacp_rate {
                let _ = writeln!(out, "{INDENT}bonding lacp-rate {}", rate.keyword());
            }
            if !bond.slaves.is_empty() {
                let names: Vec<&str> = bond.slaves.iter().map(|s| s.as_str()).collect();
                let _ = writeln!(out, "{INDENT}slave {}", names.join(" "));
            }
        }
        LinkKind::Vlan(vlan) => {
            let _ = writeln!(out, "{INDENT}type vlan");
            let _ = writeln!(
                out,
                "{INDENT}vlan id {} parent {}",
                vlan.id.value, vlan.parent.value
            );
        }
    }
    if let Some(mtu) = interface.mtu.map(|m| m.value) {
        let _ = writeln!(out, "{INDENT}mtu {mtu}");
    }
    if let Some(auto) = interface.auto {
        let _ = writeln!(out, "{INDENT}auto {}", if auto { "on" } else { "off" });
    }
    for address in &interface.addresses {
        let _ = writeln!(out, "{INDENT}ip address {}", address.value);
    }
    for route in &interface.routes {
        let destination = match route.destination {
            RouteDestination::Default => "default".to_owned(),
            RouteDestination::Net(net) => net.shortest(),
        };
        let _ = write!(out, "{INDENT}ip route {destination} {}", route.gateway);
        if let Some(table) = &route.table {
            let _ = write!(out, " table {}", table.value);
        }
        out.push('\n');
    }
    if let Some(vrrp) = &interface.vrrp {
        vrrp_lines(out, vrrp, INDENT);
    }
}

/// An interface's `vrrp` lines, each after `indent`.
pub fn vrrp_lines(out: &mut String, vrrp: &InterfaceVrrp, indent: &str) {
    if let Some(id) = &vrrp.id {
        let _ = writeln!(out, "{indent}vrrp id {}", id.value);
    }
    if let Some(prio) = &vrrp.prio {
        let _ = writeln!(out, "{indent}vrrp prio {}", prio.value);
    }
    for address in &vrrp.addresses {
        let _ = writeln!(out, "{indent}vrrp address {}", address.value);
    }
}

pub fn vrrp_service(out: &mut String, service: &VrrpService) {
    let on_off = |on: bool| if on { "on" } else { "off" };
    out.push_str("service vrrp\n");
    if let Some(interface) = &service.sync_iface {
        let _ = writeln!(out, "{INDENT}sync-iface {}", interface.value);
    }
    for peer in &service.peers {
        let _ = writeln!(out, "{INDENT}peer {}", peer.value);
    }
    if let Some(on) = service.track_health {
        let _ = writeln!(out, "{INDENT}track-health {}", on_off(on));
    }
    if let Some(advert) = &service.advert_ms {
        let _ = writeln!(out, "{INDENT}advert {}", advert.value);
    }
    if let Some(on) = service.preempt {
        let _ = writeln!(out, "{INDENT}preempt {}", on_off(on));
    }
}

pub fn flow(out: &mut String, flow: &Flow) {
    let policy = match &flow.policy.value {
        Policy::Permit => "permit".to_owned(),
        Policy::Deny => "deny".to_owned(),
        Policy::Skip => "skip".to_owned(),
        Policy::Director(name) => format!("director {name}"),
        Policy::Table(id) => format!("table {id}"),
    };
    let _ = writeln!(
        out,
        "{} {} {policy}",
        flow.direction.keyword(),
        flow.name.value
    );
    for rule in &flow.rules {
        out.push_str(INDENT);
        self::rule(out, rule);
        out.push('\n');
    }
}

fn rule(out: &mut String, rule: &Rule) {
    out.push_str(rule.action.keyword());
    let c = &rule.conditions;
    condition(out, "iface", c.iface.as_ref());
    condition(
        out,
        "proto",
        c.proto
            .as_ref()
            .map(|p| p.map_ref(|p| p.keyword()))
            .as_ref(),
    );
    condition(
        out,
        "src",
        c.src.as_ref().map(|n| n.map_ref(|n| n.shortest())).as_ref(),
    );
    condition(
        out,
        "dst",
        c.dst.as_ref().map(|n| n.map_ref(|n| n.shortest())).as_ref(),
    );
    condition(out, "srcport", c.srcport.as_ref());
    condition(out, "dstport", c.dstport.as_ref());
    condition(out, "icmptype", c.icmptype.as_ref());
}

fn condition<T: std::fmt::Display>(out: &mut String, key: &str, condition: Option<&Condition<T>>) {
    if let Some(condition) = condition {
        let not = if condition.negated { "not " } else { "" };
        let _ = write!(out, " {not}{key} {}", condition.value);
    }
}

pub fn director(out: &mut String, director: &Director) {
    let _ = write!(out, "director {}", director.name.value);
    if let Some(service) = &director.service {
        let _ = write!(out, " {}", endpoint(service.address, service.port));
        if let Some(protocol) = service.protocol {
            let _ = write!(out, " {}", protocol.keyword());
        }
    }
    out.push('\n');
    if let Some(balance) = &director.balance {
        let _ = writeln!(out, "{INDENT}balance {}", balance.keyword());
    }
    if let Some(mode) = director.mode {
        let _ = writeln!(out, "{INDENT}mode {}", mode.keyword());
    }
    let check = &director.check;
    if !check.is_unset() {
        let _ = write!(out, "{INDENT}check");
        for (key, value) in [("timeout", check.timeout), ("interval", check.interval)] {
            if let Some(value) = value {
                let _ = write!(out, " {key} {value}");
            }
        }
        if let Some(source) = &check.source {
            let _ = write!(out, " source {}", source.value);
        }
        if let Some(port) = &check.port {
            let _ = write!(out, " port {}", port.value);
        }
        for (key, value) in [("rise", check.rise), ("fall", check.fall)] {
            if let Some(value) = value {
                let _ = write!(out, " {key} {value}");
            }
        }
        if check.inhibit {
            out.push_str(" inhibit");
        }
        out.push('\n');
    }
    if let Some(persistence) = &director.persistence {
        let _ = write!(out, "{INDENT}option persistence");
        if let Some(timeout) = persistence.timeout {
            let _ = write!(out, " timeout {timeout}");
        }
        match (persistence.netmask, director.family()) {
            (Some(prefix), Family::Ipv4) => {
                let _ = write!(out, " netmask {}", prefix_to_mask(prefix));
            }
            (Some(prefix), Family::Ipv6) => {
                let _ = write!(out, " netmask {prefix}");
            }
            (None, _) => {}
        }
        out.push('\n');
    }
    if let Some(method) = &director.adv_check {
        let _ = write!(out, "{INDENT}option {}", method.keyword());
        match &method.value {
            CheckMethod::Http(http) => {
                if let Some(uri) = &http.uri {
                    let _ = write!(out, " uri {uri}");
                }
                if let Some(code) = http.statuscode {
                    let _ = write!(out, " statuscode {code}");
                }
                if let Some(vhost) = &http.vhost {
                    let _ = write!(out, " vhost {vhost}");
                }
            }
            CheckMethod::Arp { iface: Some(iface) } => {
                let _ = write!(out, " iface {iface}");
            }
            CheckMethod::Arp { iface: None } | CheckMethod::Tcp | CheckMethod::Icmp => {}
        }
        out.push('\n');
    }
    if director.onepacket {
        let _ = writeln!(out, "{INDENT}option onepacket");
    }
    for server in &director.servers {
        self::server(out, server);
    }
}

fn server(out: &mut String, server: &Server) {
    let _ = write!(
        out,
        "{INDENT}server {} {}",
        server.name.value,
        endpoint(server.address, server.port)
    );
    if let Some(weight) = server.weight {
        let _ = write!(out, " weight {weight}");
    }
    if server.check {
        out.push_str(" check");
    }
    if server.sorry {
        out.push_str(" sorry");
    }
    out.push('\n');
}
