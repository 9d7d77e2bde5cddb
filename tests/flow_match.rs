//! Flows found by lookup decide every packet exactly as flows walked in file
//! order do: both renderings of random `flows.conf` files are run by a small
//! evaluator of the nftables subset we render, on random packets, and must
//! agree on the verdict and the marks.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use nftables::expr::{Expression, MetaKey, NamedExpression, Payload, SetItem, Verdict};
use nftables::schema::{NfCmd, NfListObject, NfObject};
use nftables::stmt::{Operator, Statement};
use proptest::prelude::*;

use lbconsole::config;
use lbconsole::plan::flow_match::Matching;
use lbconsole::plan::flows::{self, Ruleset};
use lbconsole::store::ConfigFiles;

fn with_flows(text: &str) -> Option<config::model::Config> {
    let files = ConfigFiles::read(Path::new("examples")).expect("examples");
    let mut config = config::check(files.sources()).config;
    let (flows, diagnostics) = config::parse::parse_flows(text.as_bytes());
    config.flows = flows;
    diagnostics.is_empty().then_some(config)
}

fn render(config: &config::model::Config, matching: Matching) -> Option<Ruleset> {
    flows::render_with(&config.flows, &config.lvs, matching)
}

/// What the evaluator needs to know of a packet and its connection.
#[derive(Debug, Clone)]
struct Packet {
    protocol: &'static str,
    saddr: IpAddr,
    daddr: IpAddr,
    sport: u32,
    dport: u32,
    icmp_type: u32,
    iifname: &'static str,
    oifname: &'static str,
    established: bool,
    mark: u32,
    ct_mark: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Accept,
    Drop,
}

/// The verdict of a base chain and the marks the packet and its connection
/// leave with.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    decision: Decision,
    mark: u32,
    ct_mark: u32,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(&'static str),
    Number(u32),
    Address(IpAddr),
}

/// The chains and named sets of a batch.
struct Table<'a> {
    chains: HashMap<&'a str, Vec<&'a [Statement<'static>]>>,
    sets: HashMap<&'a str, &'a [Expression<'static>]>,
    lookups: usize,
}

/// Where a rule leaves the packet.
enum Next {
    Rule,
    Return,
    Final(Decision),
}

impl<'a> Table<'a> {
    fn of(ruleset: &'a Ruleset) -> Self {
        let mut table = Table {
            chains: HashMap::new(),
            sets: HashMap::new(),
            lookups: 0,
        };
        for object in ruleset.batch.objects.iter() {
            match object {
                NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(rule))) => {
                    table
                        .chains
                        .entry(rule.chain.as_ref())
                        .or_default()
                        .push(rule.expr.as_ref());
                    table.lookups += rule
                        .expr
                        .iter()
                        .filter(|s| matches!(s, Statement::VerdictMap(_)))
                        .count();
                }
                NfObject::CmdObject(NfCmd::Add(NfListObject::Set(set))) => {
                    table
                        .sets
                        .insert(set.name.as_ref(), set.elem.as_deref().unwrap_or_default());
                }
                _ => {}
            }
        }
        table
    }

    fn run(&self, base: &str, packet: &Packet) -> Outcome {
        let mut packet = packet.clone();
        let decision = self.chain(base, &mut packet).unwrap_or(Decision::Accept);
        Outcome {
            decision,
            mark: packet.mark,
            ct_mark: packet.ct_mark,
        }
    }

    /// `None` when the chain returns or ends.
    fn chain(&self, name: &str, packet: &mut Packet) -> Option<Decision> {
        for rule in self.chains.get(name).into_iter().flatten() {
            match self.rule(rule, packet) {
                Next::Rule => {}
                Next::Return => return None,
                Next::Final(decision) => return Some(decision),
            }
        }
        None
    }

    fn rule(&self, statements: &[Statement<'static>], packet: &mut Packet) -> Next {
        for statement in statements {
            match statement {
                Statement::Match(m) => {
                    let Some(values) = load(&m.left, packet) else {
                        return Next::Rule;
                    };
                    let found = self.matches(&values, &m.right);
                    let holds = match m.op {
                        Operator::EQ | Operator::IN => found,
                        Operator::NEQ => !found,
                        other => panic!("operator {other:?} is not rendered"),
                    };
                    if !holds {
                        return Next::Rule;
                    }
                }
                Statement::Counter(_) => {}
                Statement::Accept(_) => return Next::Final(Decision::Accept),
                Statement::Drop(_) => return Next::Final(Decision::Drop),
                Statement::Return(_) => return Next::Return,
                Statement::Jump(target) => return self.jump(&target.target, packet),
                Statement::Mangle(mangle) => {
                    let value = match load(&mangle.value, packet).as_deref() {
                        Some([Value::Number(n)]) => *n,
                        other => panic!("mangle value {other:?}"),
                    };
                    match load_key(&mangle.key) {
                        "meta mark" => packet.mark = value,
                        "ct mark" => packet.ct_mark = value,
                        other => panic!("mangle of {other}"),
                    }
                }
                Statement::VerdictMap(map) => {
                    let Some(values) = load(&map.key, packet) else {
                        return Next::Rule;
                    };
                    let Expression::Named(NamedExpression::Set(items)) = &map.data else {
                        panic!("a named verdict map is not rendered");
                    };
                    let targets: Vec<&str> = items
                        .iter()
                        .filter_map(|item| match item {
                            SetItem::Mapping(key, Expression::Verdict(Verdict::Jump(t)))
                                if self.matches(&values, key) =>
                            {
                                Some(t.target.as_ref())
                            }
                            _ => None,
                        })
                        .collect();
                    // The kernel keeps one element per key: two that overlap
                    // would make the winner the map's choice, not the file's.
                    assert!(targets.len() <= 1, "overlapping keys: {targets:?}");
                    match targets.first() {
                        Some(target) => return self.jump(target, packet),
                        None => return Next::Rule,
                    }
                }
                other => panic!("statement {other:?} is not rendered"),
            }
        }
        Next::Rule
    }

    fn jump(&self, target: &str, packet: &mut Packet) -> Next {
        match self.chain(target, packet) {
            Some(decision) => Next::Final(decision),
            None => Next::Rule,
        }
    }

    fn matches(&self, values: &[Value], right: &Expression<'static>) -> bool {
        match right {
            Expression::String(name) if name.starts_with('@') => self.sets[&name[1..]]
                .iter()
                .any(|element| self.matches(values, element)),
            Expression::Named(NamedExpression::Concat(parts)) => {
                values.len() == parts.len() && values.iter().zip(parts).all(|(v, p)| fits(v, p))
            }
            Expression::List(items) => items.iter().any(|item| self.matches(values, item)),
            Expression::Named(NamedExpression::Set(items)) => items.iter().any(|item| match item {
                SetItem::Element(element) => self.matches(values, element),
                other => panic!("set item {other:?}"),
            }),
            single => values.len() == 1 && fits(&values[0], single),
        }
    }
}

fn load_key(expression: &Expression<'static>) -> &'static str {
    match expression {
        Expression::Named(NamedExpression::Meta(meta)) if meta.key == MetaKey::Mark => "meta mark",
        Expression::Named(NamedExpression::CT(ct)) if ct.key == "mark" => "ct mark",
        other => panic!("key {other:?}"),
    }
}

/// The packet's value of a left-hand expression; `None` where nft's implicit
/// dependency (the family, the transport protocol) fails.
fn load(expression: &Expression<'static>, packet: &Packet) -> Option<Vec<Value>> {
    let v4 = packet.saddr.is_ipv4();
    let value = match expression {
        Expression::Named(NamedExpression::Concat(parts)) => {
            return parts
                .iter()
                .map(|part| load(part, packet))
                .collect::<Option<Vec<_>>>()
                .map(|parts| parts.concat());
        }
        Expression::Named(NamedExpression::Meta(meta)) => match meta.key {
            MetaKey::L4proto => Value::Text(packet.protocol),
            MetaKey::Nfproto => Value::Text(if v4 { "ipv4" } else { "ipv6" }),
            MetaKey::Iifname => Value::Text(packet.iifname),
            MetaKey::Oifname => Value::Text(packet.oifname),
            MetaKey::Mark => Value::Number(packet.mark),
            other => panic!("meta {other:?}"),
        },
        Expression::Named(NamedExpression::CT(ct)) => match ct.key.as_ref() {
            "state" => Value::Text(if packet.established {
                "established"
            } else {
                "new"
            }),
            "mark" => Value::Number(packet.ct_mark),
            other => panic!("ct {other}"),
        },
        Expression::BinaryOperation(operation) => match operation.as_ref() {
            nftables::expr::BinaryOperation::AND(left, Expression::Number(mask)) => {
                match load(left, packet)?.as_slice() {
                    [Value::Number(n)] => Value::Number(n & mask),
                    other => panic!("AND of {other:?}"),
                }
            }
            other => panic!("operation {other:?}"),
        },
        Expression::Named(NamedExpression::Payload(Payload::PayloadField(field))) => {
            let transport = matches!(packet.protocol, "tcp" | "udp");
            match (field.protocol.as_ref(), field.field.as_ref()) {
                ("ip", "saddr") if v4 => Value::Address(packet.saddr),
                ("ip", "daddr") if v4 => Value::Address(packet.daddr),
                ("ip6", "saddr") if !v4 => Value::Address(packet.saddr),
                ("ip6", "daddr") if !v4 => Value::Address(packet.daddr),
                ("ip" | "ip6", _) => return None,
                (proto, port) if proto == packet.protocol || (proto == "th" && transport) => {
                    match port {
                        "sport" => Value::Number(packet.sport),
                        "dport" => Value::Number(packet.dport),
                        other => panic!("{proto} {other}"),
                    }
                }
                ("icmp", "type") if packet.protocol == "icmp" => Value::Number(packet.icmp_type),
                ("icmpv6", "type") if packet.protocol == "ipv6-icmp" => {
                    Value::Number(packet.icmp_type)
                }
                ("tcp" | "udp" | "th" | "icmp" | "icmpv6", _) => return None,
                (proto, field) => panic!("payload {proto} {field}"),
            }
        }
        Expression::Number(n) => Value::Number(*n),
        other => panic!("left side {other:?}"),
    };
    Some(vec![value])
}

/// Whether one value fits one element of a right-hand side.
fn fits(value: &Value, right: &Expression<'static>) -> bool {
    match (value, right) {
        (Value::Text(text), Expression::String(s)) => text == s,
        (Value::Address(addr), Expression::String(s)) => s.parse::<IpAddr>().ok() == Some(*addr),
        (Value::Address(addr), Expression::Named(NamedExpression::Prefix(prefix))) => {
            let Expression::String(network) = prefix.addr.as_ref() else {
                panic!("prefix {prefix:?}");
            };
            let network: IpAddr = network.parse().expect("an address");
            let net = lbconsole::config::model::types::IpNet::new(network, prefix.len as u8)
                .expect("a prefix");
            net.contains(*addr)
        }
        (Value::Number(n), Expression::Number(m)) => n == m,
        (Value::Number(n), Expression::Range(range)) => match &range.range {
            [Expression::Number(first), Expression::Number(last)] => first <= n && n <= last,
            other => panic!("range {other:?}"),
        },
        (Value::Number(n), Expression::String(name)) => {
            let named = [
                "nd-router-solicit",
                "nd-router-advert",
                "nd-neighbor-solicit",
                "nd-neighbor-advert",
                "nd-redirect",
            ];
            named.iter().position(|t| t == name).map(|i| 133 + i as u32) == Some(*n)
        }
        _ => false,
    }
}

/// Small domains, so that random flows and packets meet often.
const ADDRESSES: [&str; 7] = [
    "10.0.0.1",
    "10.0.0.2",
    "10.0.0.0/30",
    "10.0.1.0/24",
    "2001:db8::1",
    "2001:db8::/126",
    "2001:db8::5",
];
const PORTS: [&str; 5] = ["80", "81", "80:81", "443", "22:80"];

fn simple_rule() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["tcp", "udp"]),
        prop::sample::select(ADDRESSES.to_vec()),
        prop::sample::select(PORTS.to_vec()),
    )
        .prop_map(|(proto, dst, port)| format!("match proto {proto} dst {dst} dstport {port}"))
}

fn other_rule() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "ignore src 10.0.0.9",
        "ignore not src 192.168.0.0/24",
        "match proto tcp dstport 80",
        "match not proto udp",
        "match proto icmp dst 10.0.0.1",
        "match proto icmpv6 icmptype 128",
        "match proto tcp dst 10.0.0.1 not dstport 80",
        "match proto udp not dst 10.0.0.0/30 dstport 53",
        "match iface eth1",
        "match proto tcp src 10.0.0.9 dst 10.0.0.2 dstport 80",
        "match",
    ])
    .prop_map(str::to_owned)
}

fn flow() -> impl Strategy<Value = (bool, &'static str, Vec<String>)> {
    (
        prop::bool::weighted(0.85),
        prop::sample::select(vec![
            "permit",
            "deny",
            "table 200",
            "director maildirect",
            "skip",
        ]),
        prop::collection::vec(prop_oneof![6 => simple_rule(), 1 => other_rule()], 1..4),
    )
}

fn flows_text(flows: &[(bool, &'static str, Vec<String>)]) -> String {
    let mut text = String::new();
    for (index, (incoming, policy, rules)) in flows.iter().enumerate() {
        let keyword = if *incoming { "flow" } else { "outflow" };
        text.push_str(&format!("{keyword} f{index} {policy}\n"));
        for rule in rules {
            text.push_str(&format!("    {rule}\n"));
        }
    }
    text
}

fn packet() -> impl Strategy<Value = Packet> {
    (
        prop::bool::ANY,
        prop::sample::select(vec!["tcp", "udp", "icmp"]),
        0..3usize,
        0..4usize,
        prop::sample::select(vec![22u32, 53, 79, 80, 81, 82, 443]),
        prop::sample::select(vec![1000u32, 80]),
        prop::sample::select(vec![0u32, 8, 128, 135]),
        prop::sample::select(vec!["eth1", "eth2"]),
        prop::bool::ANY,
        prop::sample::select(vec![0u32, 0x2_00c8]),
    )
        .prop_map(
            |(v4, protocol, source, dest, dport, sport, icmp_type, iface, established, ct_mark)| {
                let (sources, dests): (&[&str], &[&str]) = if v4 {
                    (
                        &["10.0.0.9", "192.168.0.7", "203.0.113.1"],
                        &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.1.200"],
                    )
                } else {
                    (
                        &["2001:db8::9", "fe80::1", "2001:db8:1::1"],
                        &["2001:db8::1", "2001:db8::3", "2001:db8::5", "2001:db8::9"],
                    )
                };
                Packet {
                    protocol: match (protocol, v4) {
                        ("icmp", false) => "ipv6-icmp",
                        (other, _) => other,
                    },
                    saddr: sources[source].parse().expect("an address"),
                    daddr: dests[dest].parse().expect("an address"),
                    sport,
                    dport,
                    icmp_type,
                    iifname: iface,
                    oifname: iface,
                    established,
                    mark: 0,
                    ct_mark,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn looked_up_flows_decide_every_packet_as_walked_flows_do(
        flows in prop::collection::vec(flow(), 1..12),
        packets in prop::collection::vec(packet(), 40),
    ) {
        let text = flows_text(&flows);
        let Some(config) = with_flows(&text) else {
            return Err(TestCaseError::reject("not valid flows"));
        };
        let (Some(walked), Some(looked_up)) =
            (render(&config, Matching::Walk), render(&config, Matching::Lookup))
        else {
            return Ok(());
        };
        let (walked, looked_up) = (Table::of(&walked), Table::of(&looked_up));
        prop_assert_eq!(walked.lookups, 0);
        for packet in &packets {
            for base in ["incoming", "outgoing"] {
                prop_assert_eq!(
                    walked.run(base, packet),
                    looked_up.run(base, packet),
                    "{} of {:?} with\n{}", base, packet, text
                );
            }
        }
    }
}

fn tcp_to(daddr: &str, dport: u32) -> Packet {
    Packet {
        protocol: "tcp",
        saddr: "203.0.113.1".parse().expect("an address"),
        daddr: daddr.parse().expect("an address"),
        sport: 40000,
        dport,
        icmp_type: 0,
        iifname: "eth2",
        oifname: "eth2",
        established: false,
        mark: 0,
        ct_mark: 0,
    }
}

#[test]
fn a_later_overlapping_flow_never_wins_over_an_earlier_one() {
    let config = with_flows(
        "flow one permit\n    match proto tcp dst 10.0.0.1 dstport 80\n\
         flow two permit\n    match proto tcp dst 10.0.0.2 dstport 80\n\
         flow later deny\n    match proto tcp dst 10.0.0.0/24 dstport 1:1024\n\
         flow other permit\n    match proto tcp dst 10.0.0.3 dstport 2000\n",
    )
    .expect("valid flows");
    let ruleset = render(&config, Matching::Lookup).expect("a ruleset");
    let table = Table::of(&ruleset);
    assert_eq!(table.lookups, 2, "one map for one+two, one for later+other");
    let decision = |daddr, dport| table.run("incoming", &tcp_to(daddr, dport)).decision;
    assert_eq!(decision("10.0.0.1", 80), Decision::Accept);
    assert_eq!(decision("10.0.0.2", 80), Decision::Accept);
    assert_eq!(decision("10.0.0.1", 81), Decision::Drop);
    assert_eq!(decision("10.0.0.3", 2000), Decision::Accept);
    assert_eq!(
        decision("10.0.0.3", 3000),
        Decision::Accept,
        "no flow: policy"
    );
}

#[test]
fn the_examples_mail_ports_are_looked_up_and_marked_for_their_director() {
    let files = ConfigFiles::read(Path::new("examples")).expect("examples");
    let config = config::check(files.sources()).config;
    let ruleset = render(&config, Matching::Lookup).expect("a ruleset");
    let table = Table::of(&ruleset);
    assert_eq!(table.lookups, 1);
    let marked = table.run("incoming", &tcp_to("192.168.0.2", 25));
    let walked = Table::of(&render(&config, Matching::Walk).expect("a ruleset"))
        .run("incoming", &tcp_to("192.168.0.2", 25));
    assert_eq!(marked, walked);
    assert_eq!(marked.decision, Decision::Accept);
    assert_ne!(marked.mark, 0);
    assert_eq!(
        table.run("incoming", &tcp_to("192.168.0.2", 26)).decision,
        Decision::Drop,
        "alltherest deny"
    );
}

#[test]
fn status_reads_a_looked_up_flows_counters_by_comment() {
    let config = with_flows(
        "flow one permit\n    match proto tcp dst 10.0.0.1 dstport 80\n\
         flow two permit\n    match proto tcp dst 10.0.0.2 dstport 80\n",
    )
    .expect("valid flows");
    let ruleset = render(&config, Matching::Lookup).expect("a ruleset");
    // Through JSON and back, as the kernel's listing comes.
    let listing: nftables::schema::Nftables =
        serde_json::from_str(&serde_json::to_string(&ruleset.batch).expect("JSON"))
            .expect("a listing");
    let counted: Vec<(String, Option<usize>)> = flows::counters(&listing)
        .into_iter()
        .map(|counter| (counter.flow, counter.rule))
        .collect();
    assert_eq!(
        counted,
        [
            ("one".to_owned(), None),
            ("one".to_owned(), Some(1)),
            ("two".to_owned(), None),
            ("two".to_owned(), Some(1)),
        ]
    );
}
