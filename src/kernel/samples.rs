//! Kernel messages that more than one test module reads: the link dump that
//! `netlink`'s tests observe and `fuzz` damages, and neli's builders for the
//! attributes the hand-written encoders are checked against. One copy, so
//! that a fixture fixed in one place is fixed for every test that uses it.

use std::io::Cursor;
use std::net::Ipv4Addr;

use neli::ToBytes;
use neli::genl::{AttrTypeBuilder, Nlattr, NlattrBuilder};
use neli::types::Buffer;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::{
    BondLacpRate, BondMode as KernelBondMode, BondPortState, BondXmitHashPolicy, InfoBond,
    InfoBondPort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, MiiStatus, State,
};
use rtnetlink::AddressMessageBuilder;

use super::nlwire::{NLMSG_HDRLEN, align};
use crate::plan::network::OWNED_ALIAS;

/// Any generic netlink family id (from `NLMSG_MIN_TYPE` on): data messages
/// are told apart by type only.
pub(super) const FAMILY: u16 = 0x20;
/// `NLM_F_MULTI`: how the kernel marks the messages of a dump.
pub(super) const NLM_F_MULTI: u16 = 0x2;

/// A link as a dump reports it, MTU 1500, with `attributes` after the name,
/// MTU and operational state.
pub(super) fn link(
    index: u32,
    name: &str,
    up: bool,
    attributes: Vec<LinkAttribute>,
) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    if up {
        message.header.flags = LinkFlags::Up;
    }
    message.attributes = vec![
        LinkAttribute::IfName(name.to_owned()),
        LinkAttribute::Mtu(1500),
        LinkAttribute::OperState(if up { State::Up } else { State::Down }),
    ];
    message.attributes.extend(attributes);
    message
}

/// An IPv4 address as the kernel reports one added with `brd +`.
pub(super) fn address(index: u32, text: &str) -> AddressMessage {
    let (addr, prefix) = text.split_once('/').expect("ADDRESS/PREFIX");
    AddressMessageBuilder::<Ipv4Addr>::new()
        .index(index)
        .address(
            addr.parse().expect("an IPv4 address"),
            prefix.parse().expect("a prefix length"),
        )
        .build()
}

/// The links of a host lbconsole manages: a VLAN listed before its parent
/// bond of two slaves, a loopback, a veth, and two links that are someone
/// else's: a VLAN whose parent lives in another namespace and a bond in a
/// mode lbconsole does not know.
pub(super) fn links() -> Vec<LinkMessage> {
    let port = |state: u8, failures: u32| {
        LinkAttribute::LinkInfo(vec![
            LinkInfo::PortKind(InfoPortKind::Bond),
            LinkInfo::PortData(InfoPortData::BondPort(vec![
                InfoBondPort::BondPortState(BondPortState::from(state)),
                InfoBondPort::MiiStatus(MiiStatus::Up),
                InfoBondPort::LinkFailureCount(failures),
            ])),
        ])
    };
    vec![
        link(
            5,
            "bond0.10",
            true,
            vec![
                LinkAttribute::IfAlias(OWNED_ALIAS.to_owned()),
                LinkAttribute::Link(4),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(10)])),
                ]),
            ],
        ),
        link(1, "lo", true, vec![]),
        link(
            2,
            "eth0",
            true,
            vec![LinkAttribute::Controller(4), port(0, 0)],
        ),
        link(
            3,
            "eth1",
            true,
            vec![LinkAttribute::Controller(4), port(1, 2)],
        ),
        link(
            4,
            "bond0",
            true,
            vec![
                LinkAttribute::IfAlias(OWNED_ALIAS.to_owned()),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Bond),
                    LinkInfo::Data(InfoData::Bond(vec![
                        InfoBond::Mode(KernelBondMode::ActiveBackup),
                        InfoBond::ActivePort(2),
                        InfoBond::MiiMon(100),
                        InfoBond::UpDelay(1000),
                        InfoBond::DownDelay(500),
                        InfoBond::Primary(2),
                        InfoBond::XmitHashPolicy(BondXmitHashPolicy::Layer2),
                        InfoBond::AdLacpRate(BondLacpRate::Slow),
                    ])),
                ]),
            ],
        ),
        link(
            6,
            "veth0",
            false,
            vec![
                LinkAttribute::IfAlias(OWNED_ALIAS.to_owned()),
                LinkAttribute::Link(7),
                LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Veth)]),
            ],
        ),
        // A VLAN whose parent lives in another namespace, and a bond in a
        // mode lbconsole does not know: both are someone else's.
        link(
            8,
            "vlan9",
            false,
            vec![
                LinkAttribute::IfAlias(OWNED_ALIAS.to_owned()),
                LinkAttribute::Link(2),
                LinkAttribute::LinkNetNsId(1),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Vlan),
                    LinkInfo::Data(InfoData::Vlan(vec![InfoVlan::Id(9)])),
                ]),
            ],
        ),
        link(
            9,
            "bond9",
            false,
            vec![
                LinkAttribute::IfAlias(OWNED_ALIAS.to_owned()),
                LinkAttribute::LinkInfo(vec![
                    LinkInfo::Kind(InfoKind::Bond),
                    LinkInfo::Data(InfoData::Bond(vec![InfoBond::Mode(KernelBondMode::Other(
                        9,
                    ))])),
                ]),
            ],
        ),
    ]
}

/// A netlink message of any type around `body`, padded to 4 bytes.
pub(super) fn netlink(kind: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    out.resize(align(out.len()), 0);
    out
}

/// An attribute as neli builds it.
pub(super) fn neli_attr(kind: u16, payload: &[u8]) -> Nlattr<u16, Buffer> {
    NlattrBuilder::default()
        .nla_type(AttrTypeBuilder::default().nla_type(kind).build().unwrap())
        .nla_payload(payload)
        .build()
        .unwrap()
}

/// The bytes neli writes for `attr`.
pub(super) fn neli_bytes(attr: Nlattr<u16, Buffer>) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    attr.to_bytes(&mut bytes).unwrap();
    bytes.into_inner()
}
