//! What the IPVS encoder's, decoder's and fuzz tests all write and read:
//! sample services, and messages built the way the kernel builds its answers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;

use super::consts::{IPVS_VERSION, cmd, cmd_attr, daemon_attr};
use crate::config::model::types::Family;
use crate::kernel::nlwire::Writer;
use crate::kernel::samples::{FAMILY, NLM_F_MULTI};
use crate::plan::ipvs::{FLAG_PERSISTENT, Netmask, ServiceKey, ServiceSettings, TCP};

pub(in crate::kernel) fn vip() -> ServiceKey {
    ServiceKey::Vip {
        protocol: TCP,
        address: Ipv4Addr::new(198, 51, 100, 10).into(),
        port: 80,
    }
}

/// `2001:db8::10`, port 80, TCP.
pub(in crate::kernel) fn vip6() -> ServiceKey {
    ServiceKey::Vip {
        protocol: TCP,
        address: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10).into(),
        port: 80,
    }
}

pub(in crate::kernel) fn persistent() -> ServiceSettings {
    ServiceSettings {
        scheduler: "wlc".to_owned(),
        flags: FLAG_PERSISTENT,
        timeout: 300,
        netmask: Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)),
        fwmark_protocol: 0,
    }
}

/// [`persistent`] for an IPv6 service: clients grouped by /64.
pub(in crate::kernel) fn persistent6() -> ServiceSettings {
    ServiceSettings {
        netmask: Netmask::Ipv6(64),
        ..persistent()
    }
}

/// Any IPv4 or IPv6 address.
pub(in crate::kernel) fn ip_address() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a))),
        any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a))),
    ]
}

pub(in crate::kernel) fn family() -> impl Strategy<Value = Family> {
    prop_oneof![Just(Family::Ipv4), Just(Family::Ipv6)]
}

/// Any netmask a service of `family` may have.
pub(in crate::kernel) fn netmask(family: Family) -> BoxedStrategy<Netmask> {
    match family {
        Family::Ipv4 => any::<u32>()
            .prop_map(|m| Netmask::Ipv4(Ipv4Addr::from(m)))
            .boxed(),
        Family::Ipv6 => (0..=128u8).prop_map(Netmask::Ipv6).boxed(),
    }
}

/// Any service key: a virtual address (IPv4 or IPv6) of any protocol, or any
/// firewall mark but 0 (which is no mark) of either family.
pub(in crate::kernel) fn service_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (any::<u16>(), ip_address(), any::<u16>()).prop_map(|(protocol, address, port)| {
            ServiceKey::Vip {
                protocol,
                address,
                port,
            }
        }),
        (1..=u32::MAX, family()).prop_map(|(mark, family)| ServiceKey::Fwmark { mark, family }),
    ]
}

/// An attribute of a kernel answer: a value, or a nest of attributes.
#[derive(Debug, Clone)]
pub(in crate::kernel) enum A {
    V(u16, Vec<u8>),
    N(u16, Vec<A>),
}

fn put(writer: &mut Writer<'_>, attrs: &[A]) {
    for attr in attrs {
        match attr {
            A::V(kind, value) => writer.put(*kind, value).expect("fits"),
            A::N(kind, children) => {
                let nest = writer.begin_nest(*kind);
                put(writer, children);
                writer.end_nest(nest).expect("fits");
            }
        }
    }
}

/// A message as the kernel sends one in a dump: header, generic header,
/// attributes.
pub(in crate::kernel) fn kernel_message(seq: u32, command: u8, attrs: &[A]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut writer = Writer::genl(&mut out, FAMILY, NLM_F_MULTI, seq, command, IPVS_VERSION);
    put(&mut writer, attrs);
    writer.finish().expect("fits");
    out
}

pub(in crate::kernel) fn u16v(kind: u16, value: u16) -> A {
    A::V(kind, value.to_ne_bytes().to_vec())
}

pub(in crate::kernel) fn u32v(kind: u16, value: u32) -> A {
    A::V(kind, value.to_ne_bytes().to_vec())
}

pub(in crate::kernel) fn u64v(kind: u16, value: u64) -> A {
    A::V(kind, value.to_ne_bytes().to_vec())
}

/// An `nf_inet_addr`: 16 bytes, of which IPv4 uses 4.
pub(in crate::kernel) fn inet(kind: u16, address: impl Into<IpAddr>) -> A {
    let mut value = match address.into() {
        IpAddr::V4(address) => address.octets().to_vec(),
        IpAddr::V6(address) => address.octets().to_vec(),
    };
    value.resize(16, 0);
    A::V(kind, value)
}

/// A sync daemon as the kernel dumps one (`ip_vs_genl_fill_daemon`): its
/// state, interface and sync id, then the UDP payload size, multicast port,
/// TTL and IPv4 group that lbconsole leaves at the kernel's defaults.
pub(in crate::kernel) fn kernel_daemon(
    seq: u32,
    state: u32,
    interface: &str,
    sync_id: u32,
) -> Vec<u8> {
    let mut name = interface.as_bytes().to_vec();
    name.push(0);
    kernel_message(
        seq,
        cmd::NEW_DAEMON,
        &[A::N(
            cmd_attr::DAEMON,
            vec![
                u32v(daemon_attr::STATE, state),
                A::V(daemon_attr::MCAST_IFN, name),
                u32v(daemon_attr::SYNC_ID, sync_id),
                u16v(4, 1472),    // IPVS_DAEMON_ATTR_SYNC_MAXLEN
                u16v(8, 8848),    // IPVS_DAEMON_ATTR_MCAST_PORT
                A::V(9, vec![1]), // IPVS_DAEMON_ATTR_MCAST_TTL
                A::V(5, Ipv4Addr::new(224, 0, 0, 81).octets().to_vec()), // MCAST_GROUP
            ],
        )],
    )
}
