//! PURE: flows that a new packet reaches by one lookup instead of by walking
//! every flow before them.
//!
//! The base chains jump to each flow's chain in file order, so a packet that
//! only the 10,000th flow matches pays 10,000 jumps. A flow is *looked up*
//! instead when every rule of it is a `match` of exactly `proto tcp|udp`,
//! `dst` and `dstport`, none negated, and the `dst` has no host bits: such a
//! flow takes a packet exactly when one of its (protocol, address, port) keys
//! does, and whatever it decides ends the packet's walk (only `skip` flows
//! would not, and they render to nothing).
//!
//! Looked-up flows that follow each other (in one direction, walked flows
//! cutting the run) share an anonymous verdict map per family keyed on
//! `meta l4proto . ip daddr . th dport`, whose element jumps to the flow's
//! chain; the chain still checks its rules and counts them, so `status` reads
//! the same counters by comment, plus one that counts what the map sent it.
//! First-match order is kept because no two keys of one map overlap: where a
//! flow's key would overlap a key already in the map, a new map starts after
//! it, so an earlier flow's map is always looked up first. A flow whose own
//! keys overlap, and a run of one flow, are walked as before.

use nftables::expr::{Expression, NamedExpression, SetItem, Verdict};
use nftables::stmt::{JumpTarget, Statement, VerdictMap};

use crate::config::model::flows::{Conditions, Direction, Flow, RuleAction};
use crate::config::model::types::{Family, IpNet, PortRange, Protocol};

use super::flows::{address_protocol, l4proto, meta, network, payload, ports, string};

/// How the base chains reach the flows' chains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// One jump per flow, in file order: the plain rendering.
    Walk,
    /// Runs of simple flows through verdict maps (see the module doc).
    Lookup,
}

/// What the base chain of a flow's direction does to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    /// A jump to this flow's chain.
    Walk(&'a Flow),
    /// One verdict map per family for these flows (two or more, one direction).
    Lookup(Vec<&'a Flow>),
}

/// The flows as steps of their base chains, in file order of each step's
/// first flow (so chains, rules and counters are listed in file order).
pub fn steps<'a>(flows: impl IntoIterator<Item = &'a Flow>, matching: Matching) -> Vec<Step<'a>> {
    let mut steps = Vec::new();
    let mut incoming = Run::default();
    let mut outgoing = Run::default();
    for (position, flow) in flows.into_iter().enumerate() {
        let run = match flow.direction {
            Direction::In => &mut incoming,
            Direction::Out => &mut outgoing,
        };
        let keys = match matching {
            Matching::Lookup => lookup_keys(flow),
            Matching::Walk => None,
        };
        match keys {
            Some(keys) if !run.overlaps(&keys) => run.push(position, flow, keys),
            Some(keys) => {
                run.flush(&mut steps);
                run.push(position, flow, keys);
            }
            None => {
                run.flush(&mut steps);
                steps.push((position, Step::Walk(flow)));
            }
        }
    }
    incoming.flush(&mut steps);
    outgoing.flush(&mut steps);
    steps.sort_by_key(|(position, _)| *position);
    steps.into_iter().map(|(_, step)| step).collect()
}

/// The rule of a lookup step for one family: `None` when no flow of the step
/// has a key of that family.
pub fn dispatch(flows: &[&Flow], family: Family) -> Option<Statement<'static>> {
    let elements: Vec<SetItem<'static>> = flows
        .iter()
        .flat_map(|flow| {
            let chain = flow_chain(flow);
            lookup_keys(flow)
                .unwrap_or_default()
                .into_iter()
                .filter(move |key| key.dst.family() == family)
                .map(move |key| {
                    SetItem::Mapping(
                        Expression::Named(NamedExpression::Concat(vec![
                            string(l4proto(key.protocol)),
                            network(key.dst),
                            ports(key.dstport),
                        ])),
                        Expression::Verdict(Verdict::Jump(JumpTarget {
                            target: chain.clone().into(),
                        })),
                    )
                })
        })
        .collect();
    (!elements.is_empty()).then(|| {
        Statement::VerdictMap(VerdictMap {
            key: Expression::Named(NamedExpression::Concat(vec![
                meta(nftables::expr::MetaKey::L4proto),
                payload(address_protocol(family), "daddr"),
                payload("th", "dport"),
            ])),
            data: Expression::Named(NamedExpression::Set(elements)),
        })
    })
}

/// The comment on a lookup rule; not a flow's comment, so `status` skips it.
pub fn dispatch_comment(flows: &[&Flow], family: Family) -> String {
    let names: Vec<&str> = flows.iter().map(|flow| flow.name.as_str()).collect();
    format!(
        "lookup of {} flows, {} to {} ({family})",
        names.len(),
        names.first().unwrap_or(&""),
        names.last().unwrap_or(&"")
    )
}

/// The chain that holds a flow's rules: `in-NAME` or `out-NAME`.
pub fn flow_chain(flow: &Flow) -> String {
    match flow.direction {
        Direction::In => format!("in-{}", flow.name.as_str()),
        Direction::Out => format!("out-{}", flow.name.as_str()),
    }
}

/// What a simple `match` rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    protocol: Protocol,
    dst: IpNet,
    dstport: PortRange,
}

impl Key {
    fn of(conditions: &Conditions) -> Option<Self> {
        let Conditions {
            iface: None,
            proto: Some(proto),
            src: None,
            dst: Some(dst),
            srcport: None,
            dstport: Some(dstport),
            icmptype: None,
        } = conditions
        else {
            return None;
        };
        let plain = !(proto.negated || dst.negated || dstport.negated);
        let transport = matches!(proto.value, Protocol::Tcp | Protocol::Udp);
        // nft would store the network, not the address written: the map and
        // the flow's own rule could then disagree.
        (plain && transport && !dst.value.has_host_bits()).then_some(Self {
            protocol: proto.value,
            dst: dst.value,
            dstport: dstport.value,
        })
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.protocol == other.protocol
            && (self.dst.contains(other.dst.network()) || other.dst.contains(self.dst.network()))
            && self.dstport.first() <= other.dstport.last()
            && other.dstport.first() <= self.dstport.last()
    }
}

/// A flow's keys, when it can be looked up.
fn lookup_keys(flow: &Flow) -> Option<Vec<Key>> {
    let keys = flow
        .rules
        .iter()
        .map(|rule| match rule.action {
            RuleAction::Match => Key::of(&rule.conditions),
            RuleAction::Ignore => None,
        })
        .collect::<Option<Vec<Key>>>()?;
    let disjoint = keys
        .iter()
        .enumerate()
        .all(|(i, key)| keys[..i].iter().all(|earlier| !key.overlaps(earlier)));
    (!keys.is_empty() && disjoint).then_some(keys)
}

/// Looked-up flows waiting for the end of their run.
#[derive(Default)]
struct Run<'a> {
    /// Where the run's first flow is in the file.
    start: usize,
    flows: Vec<&'a Flow>,
    keys: Vec<Key>,
}

impl<'a> Run<'a> {
    fn overlaps(&self, keys: &[Key]) -> bool {
        keys.iter()
            .any(|key| self.keys.iter().any(|earlier| key.overlaps(earlier)))
    }

    fn push(&mut self, position: usize, flow: &'a Flow, keys: Vec<Key>) {
        if self.flows.is_empty() {
            self.start = position;
        }
        self.flows.push(flow);
        self.keys.extend(keys);
    }

    /// Ends the run: a map for two flows or more, a plain jump for one.
    fn flush(&mut self, steps: &mut Vec<(usize, Step<'a>)>) {
        self.keys.clear();
        match std::mem::take(&mut self.flows).as_slice() {
            [] => {}
            [flow] => steps.push((self.start, Step::Walk(flow))),
            flows => steps.push((self.start, Step::Lookup(flows.to_vec()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    use crate::config::parse::parse_flows;

    fn flows(text: &str) -> crate::config::model::flows::FlowsConfig {
        let (flows, diagnostics) = parse_flows(text.as_bytes());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        flows
    }

    fn net(text: &str) -> IpNet {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let addr: IpAddr = addr.parse().expect("an address");
        match prefix.parse() {
            Ok(prefix) => IpNet::new(addr, prefix).expect("a prefix"),
            Err(_) => IpNet::host(addr),
        }
    }

    fn shape(text: &str) -> Vec<String> {
        let config = flows(text);
        steps(config.active(), Matching::Lookup)
            .iter()
            .map(|step| match step {
                Step::Walk(flow) => flow.name.as_str().to_owned(),
                Step::Lookup(flows) => flows
                    .iter()
                    .map(|flow| flow.name.as_str())
                    .collect::<Vec<_>>()
                    .join("+"),
            })
            .collect()
    }

    #[test]
    fn a_run_of_simple_flows_is_one_lookup_and_other_flows_cut_it() {
        assert_eq!(
            shape(
                "flow a permit\n    match proto tcp dst 10.0.0.1 dstport 80\n\
                 flow b deny\n    match proto udp dst 2001:db8::1 dstport 53\n    match proto tcp dst 10.0.0.2 dstport 80:90\n\
                 outflow o permit\n    match proto tcp dst 10.0.0.1 dstport 80\n\
                 flow c permit\n    match proto tcp dst 10.0.0.0/24 dstport 22\n\
                 flow walked permit\n    ignore src 10.0.0.9\n    match proto tcp dst 10.0.0.1 dstport 81\n\
                 flow d permit\n    match proto tcp dst 10.0.0.3 dstport 80\n"
            ),
            ["a+b+c", "o", "walked", "d"]
        );
    }

    #[test]
    fn a_key_overlapping_an_earlier_one_starts_a_new_map() {
        assert_eq!(
            shape(
                "flow a permit\n    match proto tcp dst 10.0.0.0/24 dstport 80\n\
                 flow b permit\n    match proto tcp dst 10.0.1.1 dstport 80\n\
                 flow c deny\n    match proto tcp dst 10.0.0.7 dstport 70:80\n\
                 flow d deny\n    match proto udp dst 10.0.0.7 dstport 80\n"
            ),
            ["a+b", "c+d"]
        );
    }

    #[test]
    fn negated_or_extra_conditions_are_walked() {
        for rule in [
            "match proto tcp dst 10.0.0.1 not dstport 80",
            "match proto tcp not dst 10.0.0.1 dstport 80",
            "match not proto tcp dst 10.0.0.1 dstport 80",
            "match proto tcp src 10.0.0.2 dst 10.0.0.1 dstport 80",
            "match proto tcp dst 10.0.0.1 srcport 1 dstport 80",
            "match iface eth0 proto tcp dst 10.0.0.1 dstport 80",
            "match proto tcp dst 10.0.0.1",
            "match proto tcp dstport 80",
            "match",
        ] {
            let text = format!(
                "flow a permit\n    {rule}\nflow b permit\n    match proto tcp dst 10.0.9.1 dstport 80\n\
                 flow c permit\n    match proto tcp dst 10.0.9.2 dstport 80\n"
            );
            assert_eq!(shape(&text), ["a", "b+c"], "{rule}");
        }
    }

    #[test]
    fn keys_overlap_only_on_the_same_protocol_address_and_port() {
        let key = |protocol, dst, first: u16, last: u16| Key {
            protocol,
            dst: net(dst),
            dstport: PortRange::new(first.try_into().unwrap(), last.try_into().unwrap()).unwrap(),
        };
        let web = key(Protocol::Tcp, "10.0.0.0/24", 80, 90);
        assert!(web.overlaps(&key(Protocol::Tcp, "10.0.0.9", 90, 95)));
        assert!(key(Protocol::Tcp, "10.0.0.9", 70, 80).overlaps(&web));
        assert!(!web.overlaps(&key(Protocol::Udp, "10.0.0.9", 80, 80)));
        assert!(!web.overlaps(&key(Protocol::Tcp, "10.0.1.9", 80, 80)));
        assert!(!web.overlaps(&key(Protocol::Tcp, "10.0.0.9", 91, 99)));
        assert!(!web.overlaps(&key(Protocol::Tcp, "::a00:9", 80, 80)));
    }
}
