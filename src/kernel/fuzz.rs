//! Fuzz targets for every decoder of what the kernel sends: the netlink frame
//! walk, attribute walk and extended acknowledgement (`nlwire`), the IPVS
//! service, destination, stats, info, timeouts, sync daemon and family
//! decoders, and the rtnetlink side's reading of dumped links, addresses,
//! routes and rules.
//!
//! They run on stable Rust inside the normal tests (`cargo test --lib
//! kernel::fuzz`, a few seconds at proptest's default 256 cases each). Each
//! target takes arbitrary bytes, or valid frames damaged the way a parser
//! breaks: cut short, lengths rewritten (`nlmsg_len`, `nla_len`), garbage
//! inside a nest, an attribute repeated thousands of times. No input may
//! panic, and an undamaged frame reads as what was written. For a longer run:
//!
//! ```text
//! PROPTEST_CASES=200000 cargo test --release --lib kernel::fuzz
//! ```

use std::net::Ipv4Addr;

use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::rule::{RuleAttribute, RuleMessage};
use netlink_packet_route::{AddressFamily, IpProtocol};
use proptest::collection::vec;
use proptest::prelude::*;
use rtnetlink::packet_core::{Emitable, ParseableParametrized};

use super::ipvs::consts::{
    IPVS_VERSION, cmd, cmd_attr, dest_attr, info_attr, stats_attr, svc_attr,
};
use super::ipvs::decode::{
    ServiceEntry, parse_daemon, parse_dest, parse_info, parse_service, parse_timeouts,
};
use super::ipvs::family::parse_family_id;
use super::ipvs::fixtures::{
    A, family, inet, ip_address, kernel_daemon, kernel_message, netmask, service_key, u16v, u32v,
};
use super::netlink::{assemble, mark_rule};
use super::nlwire::{
    Body, Frame, GENL_HDRLEN, NLA_TYPE_MASK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_DONE, NLMSG_ERROR,
    NLMSG_HDRLEN, NLMSGERR_ATTR_MSG, align, extack_message, frames, genl_table, table, walk,
};
use super::samples::{self, FAMILY, NLM_F_MULTI, address, netlink};
use super::{DestStatus, Stats, SyncDaemon, SyncRole};
use crate::config::model::types::Family;
use crate::plan::ipvs::{FLAG_ONEPACKET, FLAG_PERSISTENT, Forward, ServiceKey, ServiceSettings};
use crate::plan::network::ROUTE_PROTOCOL;

/// rtnetlink's message types, as `RouteNetlinkMessage` takes them.
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const RTM_NEWRULE: u16 = 32;

/// What breaks a parser that trusts its input.
#[derive(Debug, Clone)]
enum Damage {
    /// The frame cut short.
    Cut(usize),
    /// One byte changed.
    Byte(usize, u8),
    /// A 16-bit field rewritten where attribute headers are (`nla_len` at a
    /// multiple of 4, `nla_type` 2 further).
    Short(usize, u16),
    /// A 32-bit field rewritten at a multiple of 4 (`nlmsg_len`, an errno,
    /// a counter, the echoed request's length).
    Long(usize, u32),
    /// Garbage put in: inside a nest, it is a nest of garbage.
    Insert(usize, Vec<u8>),
    /// A stretch of the frame repeated: an attribute thousands of times.
    Repeat(usize, usize, u16),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Damage::Byte(at, value)),
        (any::<usize>(), edge_u16()).prop_map(|(at, value)| Damage::Short(at, value)),
        (any::<usize>(), edge_u32()).prop_map(|(at, value)| Damage::Long(at, value)),
        (any::<usize>(), vec(any::<u8>(), 1..24)).prop_map(|(at, b)| Damage::Insert(at, b)),
        (any::<usize>(), 4..24usize, 2..3000u16).prop_map(|(at, n, k)| Damage::Repeat(at, n, k)),
    ]
}

/// Lengths where the bounds checks are: nothing, too small for a header,
/// just past the end, the largest there is; and any other.
fn edge_u16() -> impl Strategy<Value = u16> {
    prop_oneof![
        prop::sample::select(vec![0, 1, 3, 4, 5, 8, 16, 20, 0x7fff, 0xfffc, 0xffff]),
        any::<u16>(),
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        prop::sample::select(vec![
            0,
            3,
            4,
            15,
            16,
            17,
            20,
            0x7fff_ffff,
            0xffff_fffc,
            u32::MAX
        ]),
        any::<u32>(),
    ]
}

fn damaged(mut frame: Vec<u8>, damages: &[Damage]) -> Vec<u8> {
    for damage in damages {
        if frame.is_empty() {
            break;
        }
        let len = frame.len();
        match damage {
            Damage::Cut(at) => frame.truncate(at % len),
            Damage::Byte(at, value) => frame[at % len] = *value,
            Damage::Short(at, value) => {
                let at = (at % len) & !1;
                if at + 2 <= len {
                    frame[at..at + 2].copy_from_slice(&value.to_ne_bytes());
                }
            }
            Damage::Long(at, value) => {
                let at = (at % len) & !3;
                if at + 4 <= len {
                    frame[at..at + 4].copy_from_slice(&value.to_ne_bytes());
                }
            }
            Damage::Insert(at, bytes) => {
                let at = at % (len + 1);
                frame.splice(at..at, bytes.iter().copied());
            }
            Damage::Repeat(at, n, times) => {
                let start = (at % len) & !3;
                let end = (start + n).min(len);
                let stretch = frame[start..end].to_vec();
                let copies = stretch.repeat(usize::from(*times));
                frame.splice(end..end, copies);
            }
        }
    }
    frame
}

// --- IPVS ---------------------------------------------------------------------------

/// Every IPVS decoder on every data message of `datagram`, as the backend
/// reads a dump or a query's answer; the refusals' texts too.
fn read_ipvs(datagram: &[u8]) {
    for frame in frames(datagram) {
        match frame {
            Ok(Frame {
                body: Body::Data(payload),
                ..
            }) => {
                let _ = parse_service(payload);
                let _ = parse_dest(payload, Family::Ipv4);
                let _ = parse_dest(payload, Family::Ipv6);
                let _ = parse_info(payload);
                let _ = parse_timeouts(payload);
                let _ = parse_family_id(payload);
                let _ = parse_daemon(payload);
            }
            Ok(Frame {
                body: Body::Refused(refusal) | Body::Done(Some(refusal)),
                ..
            }) => {
                let _ = refusal.to_string();
            }
            Ok(_) | Err(_) => {}
        }
    }
}

/// `STATS64`: every counter 64 bits.
fn stats64(kind: u16, stats: &Stats) -> A {
    let counters = [
        (stats_attr::CONNS, stats.connections),
        (stats_attr::INPKTS, stats.packets_in),
        (stats_attr::OUTPKTS, stats.packets_out),
        (stats_attr::INBYTES, stats.bytes_in),
        (stats_attr::OUTBYTES, stats.bytes_out),
        (stats_attr::CPS, stats.connections_per_second),
        (stats_attr::INPPS, stats.packets_in_per_second),
        (stats_attr::OUTPPS, stats.packets_out_per_second),
        (stats_attr::INBPS, stats.bytes_in_per_second),
        (stats_attr::OUTBPS, stats.bytes_out_per_second),
    ];
    A::N(
        kind,
        counters
            .iter()
            .map(|&(k, v)| A::V(k, v.to_ne_bytes().to_vec()))
            .collect(),
    )
}

fn stats() -> impl Strategy<Value = Stats> {
    any::<[u64; 10]>().prop_map(|c| Stats {
        connections: c[0],
        packets_in: c[1],
        packets_out: c[2],
        bytes_in: c[3],
        bytes_out: c[4],
        connections_per_second: c[5],
        packets_in_per_second: c[6],
        packets_out_per_second: c[7],
        bytes_in_per_second: c[8],
        bytes_out_per_second: c[9],
    })
}

/// A service as a dump reports it, and the entry it must read as. `flags` is
/// what the kernel reports: ours, its own hashed bit, and others.
fn dumped_service() -> impl Strategy<Value = (Vec<u8>, ServiceEntry)> {
    service_key()
        .prop_flat_map(|key| (Just(key), netmask(key.family())))
        .prop_flat_map(|(key, netmask)| {
            (
                Just((key, netmask)),
                "[a-z]{1,15}",
                any::<u32>(),
                any::<u32>(),
                stats(),
            )
        })
        .prop_map(|((key, netmask), scheduler, flags, timeout, stats)| {
            let mut service = vec![u16v(svc_attr::AF, key.family().af())];
            let fwmark_protocol = match key {
                ServiceKey::Vip {
                    protocol,
                    address,
                    port,
                } => {
                    service.push(u16v(svc_attr::PROTOCOL, protocol));
                    service.push(inet(svc_attr::ADDR, address));
                    service.push(A::V(svc_attr::PORT, port.to_be_bytes().to_vec()));
                    0
                }
                ServiceKey::Fwmark { mark, .. } => {
                    service.push(u32v(svc_attr::FWMARK, mark));
                    crate::plan::ipvs::TCP
                }
            };
            service.extend([
                A::V(svc_attr::SCHED_NAME, format!("{scheduler}\0").into_bytes()),
                A::V(
                    svc_attr::FLAGS,
                    [flags.to_ne_bytes(), u32::MAX.to_ne_bytes()].concat(),
                ),
                u32v(svc_attr::TIMEOUT, timeout),
                A::V(svc_attr::NETMASK, netmask.kernel_value().to_vec()),
                stats64(svc_attr::STATS64, &stats),
            ]);
            let frame = kernel_message(1, cmd::NEW_SERVICE, &[A::N(cmd_attr::SERVICE, service)]);
            let flags = flags & !0x2; // IP_VS_SVC_F_HASHED: the kernel's bookkeeping
            let entry = ServiceEntry {
                key,
                settings: ServiceSettings {
                    scheduler,
                    flags: flags & (FLAG_PERSISTENT | FLAG_ONEPACKET),
                    timeout,
                    netmask,
                    fwmark_protocol,
                },
                flags,
                stats,
            };
            (frame, entry)
        })
}

/// A destination as a dump reports it, the family of its service, and the
/// status it must read as. Its own family is said, or (as before Linux 3.18)
/// left to be the service's.
fn dumped_dest() -> impl Strategy<Value = (Vec<u8>, Family, DestStatus)> {
    let forward = prop::sample::select(vec![Forward::Masquerade, Forward::Tunnel, Forward::Route]);
    (
        ip_address(),
        family(),
        any::<bool>(),
        any::<u16>(),
        forward,
        any::<[u32; 4]>(),
        stats(),
    )
        .prop_map(
            |(
                address,
                other_family,
                said,
                port,
                forward,
                [weight, active, inactive, persistent],
                stats,
            )| {
                // Unsaid, the family is the service's.
                let service_family = if said {
                    other_family
                } else {
                    Family::of(address)
                };
                let mut dest = vec![
                    inet(dest_attr::ADDR, address),
                    A::V(dest_attr::PORT, port.to_be_bytes().to_vec()),
                    u32v(dest_attr::FWD_METHOD, forward.kernel_value()),
                    u32v(dest_attr::WEIGHT, weight),
                    u32v(dest_attr::U_THRESH, 0),
                    u32v(dest_attr::L_THRESH, 0),
                    u32v(dest_attr::ACTIVE_CONNS, active),
                    u32v(dest_attr::INACT_CONNS, inactive),
                    u32v(dest_attr::PERSIST_CONNS, persistent),
                ];
                if said {
                    dest.push(u16v(dest_attr::ADDR_FAMILY, Family::of(address).af()));
                }
                dest.push(stats64(dest_attr::STATS64, &stats));
                let frame = kernel_message(2, cmd::NEW_DEST, &[A::N(cmd_attr::DEST, dest)]);
                let status = DestStatus {
                    address,
                    port,
                    forward,
                    weight,
                    active_connections: active,
                    inactive_connections: inactive,
                    persistent_connections: persistent,
                    stats,
                };
                (frame, service_family, status)
            },
        )
}

fn attribute(kind: u16, value: &[u8]) -> Vec<u8> {
    let mut out = [((4 + value.len()) as u16).to_ne_bytes(), kind.to_ne_bytes()].concat();
    out.extend_from_slice(value);
    out.resize(align(out.len()), 0);
    out
}

/// The body of a refusal with an extended acknowledgement: the errno, the
/// request echoed (its header only when `capped`), the text.
fn refusal_body(errno: i32, request: &[u8], capped: bool, text: &str) -> Vec<u8> {
    let mut body = (-errno).to_ne_bytes().to_vec();
    body.extend_from_slice(if capped {
        &request[..NLMSG_HDRLEN]
    } else {
        request
    });
    body.extend(attribute(2, &40u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
    body.extend(attribute(NLMSGERR_ATTR_MSG, format!("{text}\0").as_bytes()));
    body
}

/// Any answer the IPVS backend reads, undamaged.
fn ipvs_answer() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        dumped_service().prop_map(|(frame, _)| frame),
        dumped_dest().prop_map(|(frame, ..)| frame),
        any::<[u32; 2]>().prop_map(|[version, size]| kernel_message(
            3,
            cmd::GET_INFO,
            &[
                u32v(info_attr::VERSION, version),
                u32v(info_attr::CONN_TAB_SIZE, size)
            ]
        )),
        any::<[u32; 3]>().prop_map(|[tcp, fin, udp]| kernel_message(
            4,
            cmd::GET_CONFIG,
            &[
                u32v(cmd_attr::TIMEOUT_TCP, tcp),
                u32v(cmd_attr::TIMEOUT_TCP_FIN, fin),
                u32v(cmd_attr::TIMEOUT_UDP, udp)
            ]
        )),
        (1..200i32, any::<bool>(), "[ -~]{0,40}").prop_map(|(errno, capped, text)| {
            let request = netlink(FAMILY, 5, 9, &[cmd::NEW_SERVICE, IPVS_VERSION, 0, 0]);
            let flags = NLM_F_ACK_TLVS | if capped { NLM_F_CAPPED } else { 0 };
            netlink(
                NLMSG_ERROR,
                flags,
                9,
                &refusal_body(errno, &request, capped, &text),
            )
        }),
        any::<i32>().prop_map(|errno| netlink(NLMSG_DONE, NLM_F_MULTI, 10, &errno.to_ne_bytes())),
        (1..=2u32, "[a-z0-9.]{1,15}", any::<u8>()).prop_map(|(state, name, id)| kernel_daemon(
            11,
            state,
            &name,
            u32::from(id)
        )),
    ]
}

/// An extended acknowledgement's text as the reader gives it back.
fn extack_text(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('.');
    (!text.is_empty()).then(|| text.to_owned())
}

// --- rtnetlink ------------------------------------------------------------------------

/// A dump as `observe` reads it: the sample links (bond, slaves, VLANs, veth,
/// foreign links), addresses, routes of our protocol and others, a mark rule
/// of ours.
fn rtnetlink_dump() -> (
    Vec<LinkMessage>,
    Vec<AddressMessage>,
    Vec<RouteMessage>,
    Vec<RuleMessage>,
) {
    let links = samples::links();
    let addresses = vec![
        address(4, "192.0.2.1/24"),
        address(5, "10.0.0.1/8"),
        address(1, "127.0.0.1/8"),
    ];
    let route = |table: u32, protocol: u8, destination: [u8; 4], gateway: Option<[u8; 4]>| {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = u8::try_from(table).unwrap_or(252);
        message.header.kind = RouteType::Unicast;
        message.header.protocol = RouteProtocol::from(protocol);
        message.header.destination_prefix_length = 24;
        message.attributes = vec![
            RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::from(destination))),
            RouteAttribute::Oif(4),
            RouteAttribute::Table(table),
        ];
        if let Some(gateway) = gateway {
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::from(
                    gateway,
                ))));
        }
        message
    };
    let routes = vec![
        route(
            1000,
            ROUTE_PROTOCOL,
            [198, 51, 100, 0],
            Some([192, 0, 2, 253]),
        ),
        route(254, 2, [192, 0, 2, 0], None),
        route(200, ROUTE_PROTOCOL, [203, 0, 113, 0], None),
    ];
    let mut rule = RuleMessage::default();
    rule.header.family = AddressFamily::Inet;
    rule.attributes = vec![
        RuleAttribute::Protocol(RouteProtocol::from(ROUTE_PROTOCOL)),
        RuleAttribute::FwMark(0x200),
        RuleAttribute::Table(200),
        RuleAttribute::Priority(crate::plan::flows::RULE_PRIORITY),
    ];
    let mut other = RuleMessage::default();
    other.header.family = AddressFamily::Inet;
    other.header.table = 254;
    other.attributes = vec![RuleAttribute::IpProtocol(IpProtocol::Tcp)];
    (links, addresses, routes, vec![rule, other])
}

fn emitted(message: &impl Emitable) -> Vec<u8> {
    let mut bytes = vec![0; message.buffer_len()];
    message.emit(&mut bytes);
    bytes
}

/// Every message of the dump as bytes, with its rtnetlink type.
fn rtnetlink_seeds() -> Vec<(u16, Vec<u8>)> {
    let (links, addresses, routes, rules) = rtnetlink_dump();
    let mut seeds = Vec::new();
    seeds.extend(links.iter().map(|m| (RTM_NEWLINK, emitted(m))));
    seeds.extend(addresses.iter().map(|m| (RTM_NEWADDR, emitted(m))));
    seeds.extend(routes.iter().map(|m| (RTM_NEWROUTE, emitted(m))));
    seeds.extend(rules.iter().map(|m| (RTM_NEWRULE, emitted(m))));
    seeds
}

/// The bytes read as rtnetlink reads an answer, then as `observe` reads the
/// messages: what it would do with a dump holding this one message.
fn read_rtnetlink(kind: u16, bytes: &[u8]) {
    let Ok(message) = RouteNetlinkMessage::parse_with_param(bytes, kind) else {
        return;
    };
    let (mut links, mut addresses, mut routes) = (Vec::new(), Vec::new(), Vec::new());
    match message {
        RouteNetlinkMessage::NewLink(link) => links.push(link),
        RouteNetlinkMessage::NewAddress(address) => addresses.push(address),
        RouteNetlinkMessage::NewRoute(route) => routes.push(route),
        RouteNetlinkMessage::NewRule(rule) => {
            let _ = mark_rule(&rule);
        }
        _ => {}
    }
    // With the seed dump's links, so that names, masters and parents resolve.
    let (mut seed_links, ..) = rtnetlink_dump();
    seed_links.extend(links.iter().cloned());
    let _ = assemble(links, addresses.clone(), routes.clone());
    let _ = assemble(seed_links, addresses, routes);
}

proptest! {
    /// Any bytes, as a datagram and as a payload, through every decoder.
    #[test]
    fn any_bytes_read_without_panicking(bytes in vec(any::<u8>(), 0..600), capped in any::<bool>()) {
        read_ipvs(&bytes);
        let _ = parse_service(&bytes);
        let _ = parse_dest(&bytes, Family::Ipv4);
        let _ = parse_dest(&bytes, Family::Ipv6);
        let _ = parse_info(&bytes);
        let _ = parse_timeouts(&bytes);
        let _ = parse_family_id(&bytes);
        let _ = parse_daemon(&bytes);
        let _ = walk(&bytes, |_, _| {});
        let _ = table::<16>(&bytes);
        let _ = genl_table::<16>(&bytes);
        let _ = extack_message(&bytes, capped);
        for kind in [RTM_NEWLINK, RTM_NEWADDR, RTM_NEWROUTE, RTM_NEWRULE] {
            read_rtnetlink(kind, &bytes);
        }
    }

    /// A dumped sync daemon reads back as it was written.
    #[test]
    fn a_dumped_sync_daemon_reads_as_written(
        master in any::<bool>(),
        interface in "[a-z0-9.@-]{1,15}",
        sync_id in any::<u8>(),
    ) {
        let (state, role) = if master { (1, SyncRole::Master) } else { (2, SyncRole::Backup) };
        let frame = kernel_daemon(1, state, &interface, u32::from(sync_id));
        let payload = &frame[NLMSG_HDRLEN..];
        prop_assert_eq!(parse_daemon(payload), Ok(SyncDaemon { role, interface, sync_id }));
    }

    /// IPVS answers, several to a datagram, damaged.
    #[test]
    fn damaged_ipvs_answers_read_without_panicking(
        answers in vec(ipvs_answer(), 1..4),
        damages in vec(damage(), 1..5),
    ) {
        read_ipvs(&damaged(answers.concat(), &damages));
        for answer in answers {
            let answer = damaged(answer, &damages);
            read_ipvs(&answer);
            // The payload alone, as the decoders get it.
            if let Some(payload) = answer.get(NLMSG_HDRLEN..) {
                let _ = parse_service(payload);
                let _ = parse_dest(payload, Family::Ipv4);
                let _ = parse_dest(payload, Family::Ipv6);
                let _ = parse_info(payload);
                let _ = parse_timeouts(payload);
                let _ = parse_family_id(payload);
                let _ = parse_daemon(payload);
            }
        }
    }

    /// A service, a destination, a refusal and a dump's end in one
    /// datagram read back as they were written, in order.
    #[test]
    fn valid_ipvs_answers_read_as_written(
        (service, entry) in dumped_service(),
        (dest, service_family, status) in dumped_dest(),
        errno in 1..4096i32,
        capped in any::<bool>(),
        text in "[ -~]{0,60}",
    ) {
        let request = netlink(FAMILY, 5, 7, &[cmd::NEW_DEST, IPVS_VERSION, 0, 0]);
        let flags = NLM_F_ACK_TLVS | if capped { NLM_F_CAPPED } else { 0 };
        let refusal = netlink(NLMSG_ERROR, flags, 7, &refusal_body(errno, &request, capped, &text));
        let done = netlink(NLMSG_DONE, NLM_F_MULTI, 8, &0i32.to_ne_bytes());
        let datagram = [service, dest, refusal, done].concat();
        let read: Vec<Frame<'_>> = frames(&datagram).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read.len(), 4);
        let Body::Data(payload) = read[0].body else { panic!("{:?}", read[0]) };
        prop_assert_eq!(parse_service(payload), Ok(Some(entry)));
        let Body::Data(payload) = read[1].body else { panic!("{:?}", read[1]) };
        prop_assert_eq!(parse_dest(payload, service_family), Ok(Some(status)));
        let Body::Refused(refusal) = &read[2].body else { panic!("{:?}", read[2]) };
        prop_assert_eq!(refusal.errno, errno);
        prop_assert_eq!(&refusal.detail, &extack_text(&text));
        prop_assert_eq!(&read[3].body, &Body::Done(None));
        prop_assert_eq!(read.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 2, 7, 8]);
    }

    /// Attributes, flat and nested, walk back as they were written; the
    /// flag bits of a type are not part of it.
    #[test]
    fn attributes_walk_back_as_written(
        attrs in vec((any::<u16>(), vec(any::<u8>(), 0..40)), 0..24),
    ) {
        let flat: Vec<A> = attrs.iter().map(|(k, v)| A::V(*k, v.clone())).collect();
        let message = kernel_message(1, cmd::NEW_SERVICE, &[A::N(7, flat.clone())]);
        let [Ok(Frame { body: Body::Data(payload), .. })] =
            frames(&message).collect::<Vec<_>>()[..] else { panic!("one data message") };
        let top = genl_table::<8>(payload).unwrap();
        let nested = top[7].expect("the nest");
        let mut read = Vec::new();
        walk(nested, |kind, value| read.push((kind, value.to_vec()))).unwrap();
        let written: Vec<(usize, Vec<u8>)> = attrs
            .iter()
            .map(|(k, v)| (usize::from(k & NLA_TYPE_MASK), v.clone()))
            .collect();
        prop_assert_eq!(read, written);
        prop_assert_eq!(&payload[..GENL_HDRLEN], &[cmd::NEW_SERVICE, IPVS_VERSION, 0, 0][..]);
    }

    /// An extended acknowledgement gives its text back, whatever the echoed
    /// request's length, and nothing but a text or none once damaged.
    #[test]
    fn extended_acks_read_back_and_never_panic(
        request_body in vec(any::<u8>(), 0..64),
        capped in any::<bool>(),
        text in "[ -~]{0,80}",
        damages in vec(damage(), 0..4),
    ) {
        let request = netlink(FAMILY, 5, 1, &request_body);
        let body = refusal_body(1, &request, capped, &text);
        prop_assert_eq!(extack_message(&body[4..], capped), extack_text(&text));
        let _ = extack_message(&damaged(body[4..].to_vec(), &damages), capped);
    }

    /// rtnetlink answers, damaged, as `observe` reads them.
    #[test]
    fn damaged_rtnetlink_answers_read_without_panicking(
        seed in any::<prop::sample::Index>(),
        damages in vec(damage(), 1..5),
    ) {
        let seeds = rtnetlink_seeds();
        let (kind, bytes) = &seeds[seed.index(seeds.len())];
        read_rtnetlink(*kind, &damaged(bytes.clone(), &damages));
    }
}

/// The dump as bytes reads as the dump: the observation is the one of the
/// messages themselves.
#[test]
fn valid_rtnetlink_answers_read_as_the_messages() {
    let (links, addresses, routes, rules) = rtnetlink_dump();
    let parse = |kind: u16, message: &dyn Fn() -> Vec<u8>| {
        RouteNetlinkMessage::parse_with_param(&message(), kind).expect("parses")
    };
    let mut read = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for link in &links {
        let RouteNetlinkMessage::NewLink(link) = parse(RTM_NEWLINK, &|| emitted(link)) else {
            panic!("a link");
        };
        read.0.push(link);
    }
    for address in &addresses {
        let RouteNetlinkMessage::NewAddress(address) = parse(RTM_NEWADDR, &|| emitted(address))
        else {
            panic!("an address");
        };
        read.1.push(address);
    }
    for route in &routes {
        let RouteNetlinkMessage::NewRoute(route) = parse(RTM_NEWROUTE, &|| emitted(route)) else {
            panic!("a route");
        };
        read.2.push(route);
    }
    for rule in &rules {
        let RouteNetlinkMessage::NewRule(rule) = parse(RTM_NEWRULE, &|| emitted(rule)) else {
            panic!("a rule");
        };
        read.3.push(rule);
    }
    let expected = assemble(links, addresses, routes);
    assert_eq!(expected.links.len(), 8);
    assert!(expected.state.links.contains_key("bond0"));
    assert_eq!(assemble(read.0, read.1, read.2), expected);
    let marks: Vec<_> = rules.iter().filter_map(mark_rule).collect();
    assert_eq!(marks.len(), 1);
    assert_eq!(
        read.3.iter().filter_map(mark_rule).collect::<Vec<_>>(),
        marks
    );
}
