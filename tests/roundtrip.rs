//! Round trips through the canonical printer and the three parsers.
//!
//! The property: for every configuration `c` the language can express,
//! `parse(print(c)) == c` with no diagnostics, and printing is a fixed point:
//! `print(parse(print(c))) == print(c)`. The generators cover every field and
//! every enum variant of the model, within the ranges the parsers accept.

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lbconsole::config::model::flows::{
    Condition, Conditions, Direction, Flow, FlowsConfig, ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES,
    Policy, Rule, RuleAction,
};
use lbconsole::config::model::lvs::{
    CheckMethod, CheckParams, Director, ForwardMode, HttpCheck, LvsConfig, Persistence, Scheduler,
    Server, ServiceProtocol, VirtualService,
};
use lbconsole::config::model::network::{
    Bond, BondMode, Interface, InterfaceVrrp, LacpRate, LinkKind, NetworkConfig, Route,
    RouteDestination, Vlan, VrrpService, XmitHashPolicy,
};
use lbconsole::config::model::types::{
    DirectorName, FlowName, IfName, IpNet, Loc, Port, PortRange, Protocol, ServerName, Spanned,
    TableId,
};
use lbconsole::config::{Config, Diagnostic, keywords, parse, print};
use proptest::collection::vec;
use proptest::option::of as maybe;
use proptest::prelude::*;
use proptest::sample::select;

// ---------------------------------------------------------------------------
// Names and values
// ---------------------------------------------------------------------------

/// Words of the language that are also valid names: a name that reads like a
/// keyword must still land where the printer put it. Every keyword, from the
/// table the parsers and the highlighter use.
fn keywords() -> Vec<&'static str> {
    keywords::all().collect()
}

/// A name of type `T` from `pattern`, or now and then a keyword that `T` accepts.
fn name<T: TryFrom<String> + Debug + 'static>(pattern: &'static str) -> BoxedStrategy<T> {
    prop_oneof![
        4 => pattern,
        1 => select(keywords()).prop_map(str::to_owned),
    ]
    .prop_filter_map("not a valid name", |text| T::try_from(text).ok())
    .boxed()
}

fn if_name() -> BoxedStrategy<IfName> {
    name("[A-Za-z0-9._-]{1,15}")
}

fn flow_name() -> BoxedStrategy<FlowName> {
    name("[A-Za-z0-9_-]{1,27}")
}

fn director_name() -> BoxedStrategy<DirectorName> {
    name("[A-Za-z0-9._-]{1,40}")
}

fn server_name() -> BoxedStrategy<ServerName> {
    name("[A-Za-z0-9._-]{1,40}")
}

fn ipv4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        4 => any::<u32>().prop_map(Ipv4Addr::from),
        1 => select(vec![Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST, Ipv4Addr::LOCALHOST]),
    ]
}

fn ipv6() -> impl Strategy<Value = Ipv6Addr> {
    prop_oneof![
        4 => any::<u128>().prop_map(Ipv6Addr::from),
        // Runs of zero groups, which print shortened with `::`.
        2 => (any::<u16>(), any::<u16>(), 0..8usize).prop_map(|(first, last, zeros)| {
            let mut groups = [0u16; 8];
            groups[0] = first;
            groups[7.min(zeros.max(1))] = last;
            Ipv6Addr::from(groups)
        }),
        1 => select(vec![
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::LOCALHOST,
            "fe80::1".parse().expect("an address"),
            "::ffff:10.0.0.1".parse().expect("an address"),
        ]),
    ]
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        3 => ipv4().prop_map(IpAddr::V4),
        2 => ipv6().prop_map(IpAddr::V6),
    ]
}

fn ip_net() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        3 => (ipv4(), 0..=32u8).prop_map(|(addr, prefix)| IpNet { addr: addr.into(), prefix }),
        2 => (ipv6(), 0..=128u8).prop_map(|(addr, prefix)| IpNet { addr: addr.into(), prefix }),
    ]
}

fn port() -> impl Strategy<Value = Port> {
    prop_oneof![
        3 => 1..=u16::MAX,
        1 => select(vec![1, 22, 80, 443, u16::MAX]),
    ]
    .prop_map(|p| Port::new(p).expect("port is not 0"))
}

fn port_range() -> impl Strategy<Value = PortRange> {
    prop_oneof![
        port().prop_map(PortRange::single),
        (port(), port())
            .prop_map(|(a, b)| PortRange::new(a.min(b), a.max(b)).expect("first <= last")),
    ]
}

fn table_id() -> impl Strategy<Value = TableId> {
    prop_oneof![
        1..=252u32,
        Just(TableId::MAIN),
        256..=u32::MAX,
        select(vec![1, 100, 200, 252, 256, u32::MAX]),
    ]
    .prop_map(|id| TableId::new(id).expect("not a reserved table"))
}

fn unplaced<T: Debug>(strategy: impl Strategy<Value = T>) -> impl Strategy<Value = Spanned<T>> {
    strategy.prop_map(Spanned::unplaced)
}

// ---------------------------------------------------------------------------
// network.conf
// ---------------------------------------------------------------------------

/// Bonding delays are milliseconds the kernel keeps in an `int`.
fn milliseconds() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..=i32::MAX as u32,
        select(vec![0, 100, 1000, i32::MAX as u32])
    ]
}

fn bond() -> impl Strategy<Value = Bond> {
    (
        maybe(select(BondMode::ALL.to_vec())),
        maybe(milliseconds()),
        maybe(milliseconds()),
        maybe(milliseconds()),
        maybe(unplaced(if_name())),
        maybe(select(XmitHashPolicy::ALL.to_vec())),
        maybe(select(vec![LacpRate::Slow, LacpRate::Fast])),
        vec(unplaced(if_name()), 0..4),
    )
        .prop_map(
            |(mode, miimon, updelay, downdelay, primary, xmit_hash_policy, lacp_rate, slaves)| {
                Bond {
                    mode,
                    miimon,
                    updelay,
                    downdelay,
                    primary,
                    xmit_hash_policy,
                    lacp_rate,
                    slaves,
                    loc: Loc::default(),
                }
            },
        )
}

fn vlan() -> impl Strategy<Value = Vlan> {
    (unplaced(Vlan::ID_RANGE), unplaced(if_name())).prop_map(|(id, parent)| Vlan { id, parent })
}

fn link_kind() -> impl Strategy<Value = LinkKind> {
    prop_oneof![
        Just(LinkKind::Ethernet),
        bond().prop_map(LinkKind::Bonding),
        vlan().prop_map(LinkKind::Vlan),
    ]
}

fn route() -> impl Strategy<Value = Route> {
    (
        prop_oneof![
            Just(RouteDestination::Default),
            ip_net().prop_map(RouteDestination::Net),
        ],
        ip(),
        maybe(unplaced(table_id())),
    )
        .prop_map(|(destination, gateway, table)| Route {
            destination,
            gateway,
            table,
            loc: Loc::default(),
        })
}

/// The parser takes any number; the ranges are the validator's.
fn vrrp_number() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => InterfaceVrrp::ID_RANGE,
        1 => any::<u32>(),
        1 => select(vec![0, 1, 100, 254, 255, u32::MAX]),
    ]
}

/// An interface's `vrrp` lines: at least one, since none means no `vrrp` at all.
fn interface_vrrp() -> impl Strategy<Value = InterfaceVrrp> {
    (
        maybe(unplaced(vrrp_number())),
        maybe(unplaced(vrrp_number())),
        vec(unplaced(ip_net()), 0..4),
    )
        .prop_filter("some vrrp line", |(id, prio, addresses)| {
            id.is_some() || prio.is_some() || !addresses.is_empty()
        })
        .prop_map(|(id, prio, addresses)| InterfaceVrrp {
            id,
            prio,
            addresses,
            loc: Loc::default(),
        })
}

fn interface() -> impl Strategy<Value = Interface> {
    (
        unplaced(if_name()),
        link_kind(),
        maybe(unplaced(prop_oneof![
            68..=65_535u32,
            select(vec![68, 1500, 9000, 65_535])
        ])),
        maybe(any::<bool>()),
        vec(unplaced(ip_net()), 0..4),
        vec(route(), 0..4),
        prop_oneof![2 => Just(None), 1 => interface_vrrp().prop_map(Some)],
    )
        .prop_map(
            |(name, kind, mtu, auto, addresses, routes, vrrp)| Interface {
                name,
                kind,
                mtu,
                auto,
                addresses,
                routes,
                vrrp,
            },
        )
}

fn vrrp_service() -> impl Strategy<Value = VrrpService> {
    (
        maybe(unplaced(if_name())),
        vec(unplaced(ip()), 0..3),
        maybe(any::<bool>()),
        maybe(unplaced(prop_oneof![
            any::<u32>(),
            VrrpService::ADVERT_RANGE_MS,
        ])),
        maybe(any::<bool>()),
    )
        .prop_map(
            |(sync_iface, peers, track_health, advert_ms, preempt)| VrrpService {
                sync_iface,
                peers,
                track_health,
                advert_ms,
                preempt,
                loc: Loc::default(),
            },
        )
}

fn network_config() -> impl Strategy<Value = NetworkConfig> {
    (
        vec(interface(), 0..5),
        prop_oneof![2 => Just(None), 1 => vrrp_service().prop_map(Some)],
    )
        .prop_map(|(interfaces, vrrp)| NetworkConfig { interfaces, vrrp })
}

// ---------------------------------------------------------------------------
// flows.conf
// ---------------------------------------------------------------------------

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Permit),
        Just(Policy::Deny),
        director_name().prop_map(Policy::Director),
        Just(Policy::Skip),
        table_id().prop_map(Policy::Table),
    ]
}

fn condition<T: Debug>(
    value: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<Condition<T>>> {
    maybe(
        (any::<bool>(), value).prop_map(|(negated, value)| Condition {
            negated,
            value,
            loc: Loc::default(),
        }),
    )
}

fn conditions() -> impl Strategy<Value = Conditions> {
    (
        condition(if_name()),
        condition(select(vec![
            Protocol::Tcp,
            Protocol::Udp,
            Protocol::Icmp,
            Protocol::Icmpv6,
        ])),
        condition(ip_net()),
        condition(ip_net()),
        condition(port_range()),
        condition(port_range()),
        condition(any::<u8>()),
    )
        .prop_map(|(iface, proto, src, dst, srcport, dstport, mut icmptype)| {
            // A type number the parser would place in the other ICMP family's
            // table is refused, as it should be; keep to ones it accepts.
            let icmpv6 = proto.as_ref().is_some_and(|p| p.value == Protocol::Icmpv6);
            if let Some(t) = &mut icmptype
                && is_other_family_type(t.value, icmpv6)
            {
                t.value = 200;
            }
            Conditions {
                iface,
                proto,
                src,
                dst,
                srcport,
                dstport,
                icmptype,
            }
        })
}

fn is_other_family_type(code: u8, icmpv6: bool) -> bool {
    let (own, other) = if icmpv6 {
        (ICMPV6_TYPE_NAMES, ICMP_TYPE_NAMES)
    } else {
        (ICMP_TYPE_NAMES, ICMPV6_TYPE_NAMES)
    };
    !own.iter().any(|&(_, c)| c == code) && other.iter().any(|&(_, c)| c == code)
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        select(vec![RuleAction::Match, RuleAction::Ignore]),
        conditions(),
    )
        .prop_map(|(action, conditions)| Rule {
            action,
            conditions,
            loc: Loc::default(),
        })
}

fn flow() -> impl Strategy<Value = Flow> {
    (
        select(vec![Direction::In, Direction::Out]),
        unplaced(flow_name()),
        unplaced(policy()),
        vec(rule(), 0..4),
    )
        .prop_map(|(direction, name, policy, rules)| Flow {
            direction,
            name,
            policy,
            rules,
        })
}

fn flows_config() -> impl Strategy<Value = FlowsConfig> {
    vec(flow(), 0..5).prop_map(|flows| FlowsConfig { flows })
}

// ---------------------------------------------------------------------------
// lvs.conf
// ---------------------------------------------------------------------------

fn virtual_service() -> impl Strategy<Value = VirtualService> {
    (
        ip(),
        maybe(port()),
        maybe(select(vec![ServiceProtocol::Tcp, ServiceProtocol::Udp])),
    )
        .prop_map(|(address, port, protocol)| VirtualService {
            address,
            port,
            protocol,
        })
}

fn seconds() -> impl Strategy<Value = u32> {
    prop_oneof![1..=86_400u32, select(vec![1, 10, 86_400])]
}

fn count() -> impl Strategy<Value = u32> {
    prop_oneof![1..=1000u32, select(vec![1, 1000])]
}

fn check_params() -> impl Strategy<Value = CheckParams> {
    (
        maybe(seconds()),
        maybe(seconds()),
        maybe(unplaced(ip())),
        maybe(unplaced(port())),
        maybe(count()),
        maybe(count()),
        any::<bool>(),
    )
        .prop_map(
            |(timeout, interval, source, port, rise, fall, inhibit)| CheckParams {
                timeout,
                interval,
                source,
                port,
                rise,
                fall,
                inhibit,
                loc: Loc::default(),
            },
        )
}

/// Free text in one token: no whitespace (it would split the token), no `#` (it
/// starts a comment) and no control character (the lexer rejects those).
/// Mostly printable ASCII, sometimes any other Unicode.
const URI_ASCII: &str = r#"/[!-"$-~]{0,20}"#;
const URI_ANY: &str = r"/[^\s#\p{Cc}]{0,8}";
const VHOST_ASCII: &str = r#"[!-"$-~]{1,20}"#;
const VHOST_ANY: &str = r"[^\s#\p{Cc}]{1,8}";

fn http_check() -> impl Strategy<Value = HttpCheck> {
    let uri = prop_oneof![3 => URI_ASCII, 1 => URI_ANY];
    let vhost = prop_oneof![
        3 => VHOST_ASCII.boxed(),
        1 => VHOST_ANY.boxed(),
        1 => select(keywords()).prop_map(str::to_owned).boxed(),
    ];
    (
        maybe(uri),
        maybe(prop_oneof![100..=599u16, select(vec![100, 200, 599])]),
        maybe(vhost),
    )
        .prop_map(|(uri, statuscode, vhost)| HttpCheck {
            uri,
            statuscode,
            vhost,
        })
}

fn check_method() -> impl Strategy<Value = CheckMethod> {
    prop_oneof![
        http_check().prop_map(CheckMethod::Http),
        Just(CheckMethod::Tcp),
        maybe(if_name()).prop_map(|iface| CheckMethod::Arp { iface }),
        Just(CheckMethod::Icmp),
    ]
}

fn persistence() -> impl Strategy<Value = Persistence> {
    (maybe(seconds()), maybe(0..=32u8)).prop_map(|(timeout, netmask)| Persistence {
        timeout,
        netmask,
        netmask_loc: Loc::default(),
    })
}

fn server() -> impl Strategy<Value = Server> {
    (
        unplaced(server_name()),
        ip(),
        maybe(port()),
        maybe(prop_oneof![any::<u16>(), select(vec![0, 1, u16::MAX])]),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(name, address, port, weight, check, sorry)| Server {
            name,
            address,
            port,
            weight,
            check,
            sorry,
            loc: Loc::default(),
        })
}

fn director() -> impl Strategy<Value = Director> {
    (
        unplaced(director_name()),
        maybe(unplaced(virtual_service())),
        maybe(unplaced(select(Scheduler::ALL.to_vec()))),
        maybe(select(ForwardMode::ALL.to_vec())),
        prop_oneof![1 => Just(CheckParams::default()), 3 => check_params()],
        maybe(unplaced(check_method())),
        maybe(persistence()),
        any::<bool>(),
        vec(server(), 0..4),
    )
        .prop_map(
            |(name, service, balance, mode, check, adv_check, persistence, onepacket, servers)| {
                Director {
                    name,
                    service,
                    balance,
                    mode,
                    check,
                    adv_check,
                    persistence,
                    onepacket,
                    servers,
                    onepacket_loc: Loc::default(),
                }
            },
        )
}

fn lvs_config() -> impl Strategy<Value = LvsConfig> {
    vec(director(), 0..4).prop_map(|directors| LvsConfig { directors })
}

fn config() -> impl Strategy<Value = Config> {
    (network_config(), flows_config(), lvs_config()).prop_map(|(network, flows, lvs)| Config {
        network,
        flows,
        lvs,
    })
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

/// `parse(print(value)) == value` without diagnostics, and `print` is a fixed point.
fn round_trip<T: PartialEq + Debug>(
    value: &T,
    print: fn(&T) -> String,
    parse: fn(&[u8]) -> (T, Vec<Diagnostic>),
) -> Result<(), TestCaseError> {
    let printed = print(value);
    let (parsed, diagnostics) = parse(printed.as_bytes());
    let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    prop_assert!(
        diagnostics.is_empty(),
        "printed text does not parse cleanly:\n{printed}\n{messages:#?}"
    );
    prop_assert_eq!(&parsed, value, "printed text:\n{}", printed);
    let reprinted = print(&parsed);
    prop_assert_eq!(reprinted, printed, "printing is not stable");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_config_survives_print_and_parse(config in config()) {
        round_trip(&config.network, print::network, parse::parse_network)?;
        round_trip(&config.flows, print::flows, parse::parse_flows)?;
        round_trip(&config.lvs, print::lvs, parse::parse_lvs)?;
        let [network, flows, lvs] = print::all(&config);
        prop_assert_eq!(network, print::network(&config.network));
        prop_assert_eq!(flows, print::flows(&config.flows));
        prop_assert_eq!(lvs, print::lvs(&config.lvs));
    }
}

// ---------------------------------------------------------------------------
// Concrete round trips an administrator would recognise
// ---------------------------------------------------------------------------

fn clean<T>((value, diagnostics): (T, Vec<Diagnostic>)) -> T {
    let messages: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    assert!(messages.is_empty(), "unexpected diagnostics: {messages:#?}");
    value
}

fn network(text: &str) -> NetworkConfig {
    clean(parse::parse_network(text.as_bytes()))
}

fn flows(text: &str) -> FlowsConfig {
    clean(parse::parse_flows(text.as_bytes()))
}

fn lvs(text: &str) -> LvsConfig {
    clean(parse::parse_lvs(text.as_bytes()))
}

#[test]
fn seed_outflow_with_its_rule_on_the_header_line() {
    let config = flows("outflow return-eth1 table 200 match iface eth1\n");
    let expected = FlowsConfig {
        flows: vec![Flow {
            direction: Direction::Out,
            name: Spanned::unplaced(FlowName::new("return-eth1").unwrap()),
            policy: Spanned::unplaced(Policy::Table(TableId::new(200).unwrap())),
            rules: vec![Rule {
                action: RuleAction::Match,
                conditions: Conditions {
                    iface: Some(Condition {
                        negated: false,
                        value: IfName::new("eth1").unwrap(),
                        loc: Loc::default(),
                    }),
                    ..Conditions::default()
                },
                loc: Loc::default(),
            }],
        }],
    };
    assert_eq!(config, expected);
    assert_eq!(
        print::flows(&config),
        "outflow return-eth1 table 200\n    match iface eth1\n"
    );
}

#[test]
fn seed_flows_print_one_rule_per_line() {
    let text = "flow ping permit\n\
                match proto icmp dst 192.168.0.1 icmptype 0\n\
                ignore not src 192.168.0.0/24\n\
                match proto icmp dst 192.168.0.1\n\
                flow mail director maildirect\n\
                match proto tcp dst 192.168.0.2 dstport 110\n\
                outflow return-eth1 table 200 match proto tcp src 192.168.161.0/24 srcport 80\n\
                flow alltherest deny\n\
                match\n";
    let config = flows(text);
    assert_eq!(config.flows.len(), 4);
    assert_eq!(
        print::flows(&config),
        "flow ping permit\n    \
             match proto icmp dst 192.168.0.1 icmptype 0\n    \
             ignore not src 192.168.0.0/24\n    \
             match proto icmp dst 192.168.0.1\n\
         \n\
         flow mail director maildirect\n    \
             match proto tcp dst 192.168.0.2 dstport 110\n\
         \n\
         outflow return-eth1 table 200\n    \
             match proto tcp src 192.168.161.0/24 srcport 80\n\
         \n\
         flow alltherest deny\n    \
             match\n"
    );
}

#[test]
fn flow_without_a_policy_is_printed_as_skip() {
    let config = flows("flow maintenance\nmatch proto tcp dstport 1024:65535\n");
    assert_eq!(config.flows[0].policy.value, Policy::Skip);
    let printed = print::flows(&config);
    assert_eq!(
        printed,
        "flow maintenance skip\n    match proto tcp dstport 1024:65535\n"
    );
    assert_eq!(flows(&printed), config);
}

#[test]
fn icmp_type_names_and_protocol_case_are_normalised() {
    let config = flows("flow ping permit\n  match proto ICMP icmptype echo-request\n");
    assert_eq!(
        print::flows(&config),
        "flow ping permit\n    match proto icmp icmptype 8\n"
    );
}

#[test]
fn seed_interface_with_a_dotted_netmask_and_a_table_route() {
    let config = network(
        "service network eth1\nip address 192.168.161.10/255.255.255.0\nip route default 192.168.161.1 table 200\n",
    );
    assert_eq!(
        config.interfaces[0].addresses[0].value,
        IpNet::new(Ipv4Addr::new(192, 168, 161, 10).into(), 24).unwrap()
    );
    assert_eq!(
        print::network(&config),
        "service network eth1\n    ip address 192.168.161.10/24\n    ip route default 192.168.161.1 table 200\n"
    );
}

#[test]
fn design_example_bond_and_vlan_print_canonically() {
    let text = "service network bond0\n\
                type bonding\n\
                bonding mode 4\n\
                bonding lacp-rate 1\n\
                bonding xmit-hash-policy layer3+4\n\
                slave eth1 eth2\n\
                ip address 172.16.100.5/24\n\
                ip route 10.1.0.0/16 172.16.100.1\n\
                ip route 10.2.0.7/32 172.16.100.1\n\
                service network vlan100\n\
                vlan id 100 parent bond0\n\
                type vlan\n\
                mtu 1500\n\
                auto yes\n";
    let config = network(text);
    let printed = print::network(&config);
    assert_eq!(
        printed,
        "service network bond0\n    \
             type bonding\n    \
             bonding mode 802.3ad\n    \
             bonding xmit-hash-policy layer3+4\n    \
             bonding lacp-rate fast\n    \
             slave eth1 eth2\n    \
             ip address 172.16.100.5/24\n    \
             ip route 10.1.0.0/16 172.16.100.1\n    \
             ip route 10.2.0.7 172.16.100.1\n\
         \n\
         service network vlan100\n    \
             type vlan\n    \
             vlan id 100 parent bond0\n    \
             mtu 1500\n    \
             auto on\n"
    );
    assert_eq!(network(&printed), config);
}

#[test]
fn ipvs_scheduler_names_print_as_the_reference_spells_them() {
    for (written, printed) in [
        ("wlc", "leastconn"),
        ("rr", "roundrobin"),
        ("sh", "source"),
        ("sed", "shortestexpected"),
        ("nq", "neverqueue"),
        ("lblcr", "leastconn localitybased replication"),
        ("least-connections", "leastconn"),
    ] {
        let config = lvs(&format!("director web\n    balance {written}\n"));
        assert_eq!(
            print::lvs(&config),
            format!("director web\n    balance {printed}\n")
        );
    }
}

#[test]
fn seed_style_director_prints_canonically() {
    let text = "director dns 10.0.0.53:0 udp\n\
                balance leastconn localitybased\n\
                option onepacket\n\
                check interval 5 inhibit\n\
                check fall 3 rise 2\n\
                option persistence netmask 255.255.255.0 timeout 600\n\
                option httpcheck vhost example.com uri /health statuscode 204\n\
                server ns1 10.0.1.1:53 weight 0 sorry check\n\
                server ns2 10.0.1.2\n";
    let config = lvs(text);
    let printed = print::lvs(&config);
    assert_eq!(
        printed,
        "director dns 10.0.0.53 UDP\n    \
             balance leastconn localitybased\n    \
             check interval 5 rise 2 fall 3 inhibit\n    \
             option persistence timeout 600 netmask 255.255.255.0\n    \
             option httpcheck uri /health statuscode 204 vhost example.com\n    \
             option onepacket\n    \
             server ns1 10.0.1.1:53 weight 0 check sorry\n    \
             server ns2 10.0.1.2\n"
    );
    assert_eq!(lvs(&printed), config);
}

#[test]
fn ha_pair_example_prints_canonically_with_service_vrrp_last() {
    let text = "service vrrp\n\
                preempt yes\n\
                peer 10.0.0.3\n\
                sync-iface eth1\n\
                advert 1000\n\
                track-health on\n\
                peer 2001:db8::3\n\
                service network eth0\n\
                vrrp address 10.0.0.100/255.255.255.0\n\
                vrrp prio 150\n\
                ip address 10.0.0.2/24\n\
                vrrp id 51\n\
                vrrp address 2001:db8::100/64\n";
    let config = network(text);
    let printed = print::network(&config);
    assert_eq!(
        printed,
        "service network eth0\n    \
             ip address 10.0.0.2/24\n    \
             vrrp id 51\n    \
             vrrp prio 150\n    \
             vrrp address 10.0.0.100/24\n    \
             vrrp address 2001:db8::100/64\n\
         \n\
         service vrrp\n    \
             sync-iface eth1\n    \
             peer 10.0.0.3\n    \
             peer 2001:db8::3\n    \
             track-health on\n    \
             advert 1000\n    \
             preempt on\n"
    );
    assert_eq!(network(&printed), config);
}
