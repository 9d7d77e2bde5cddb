//! What the IPVS encoder's, decoder's and fuzz tests all write and read:
//! sample services, and messages built the way the kernel builds its answers.

use std::net::Ipv4Addr;

use proptest::prelude::*;

use super::consts::IPVS_VERSION;
use crate::kernel::nlwire::Writer;
use crate::kernel::samples::{FAMILY, NLM_F_MULTI};
use crate::plan::ipvs::{FLAG_PERSISTENT, ServiceKey, ServiceSettings, TCP};

pub(in crate::kernel) fn vip() -> ServiceKey {
    ServiceKey::Vip {
        protocol: TCP,
        address: Ipv4Addr::new(198, 51, 100, 10),
        port: 80,
    }
}

pub(in crate::kernel) fn persistent() -> ServiceSettings {
    ServiceSettings {
        scheduler: "wlc".to_owned(),
        flags: FLAG_PERSISTENT,
        timeout: 300,
        netmask: Ipv4Addr::new(255, 255, 255, 0),
        fwmark_protocol: 0,
    }
}

/// Any service key: a virtual address of any protocol, or any firewall mark
/// but 0 (which is no mark).
pub(in crate::kernel) fn service_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (any::<u16>(), any::<u32>(), any::<u16>()).prop_map(|(protocol, address, port)| {
            ServiceKey::Vip {
                protocol,
                address: Ipv4Addr::from(address),
                port,
            }
        }),
        (1..=u32::MAX).prop_map(|mark| ServiceKey::Fwmark { mark }),
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
pub(in crate::kernel) fn inet(kind: u16, address: Ipv4Addr) -> A {
    let mut value = address.octets().to_vec();
    value.resize(16, 0);
    A::V(kind, value)
}
