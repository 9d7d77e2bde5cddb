//! `arpcheck` for an IPv6 server: a Neighbor Solicitation (RFC 4861 §7.2.2)
//! for the server's address, sent to its solicited-node multicast address on
//! the link that reaches it, with our link-layer address; a Neighbor
//! Advertisement for that address in time is a success. Like ARP for IPv4, it
//! tells that the server's stack is on the link, not that a service answers.
//!
//! The socket is a raw ICMPv6 one rather than a packet socket: the kernel
//! writes the IPv6 header and the ICMPv6 checksum over the pseudo-header (which
//! needs the source address the kernel picks), maps the multicast destination
//! to its Ethernet address, filters the input down to advertisements
//! (`ICMP6_FILTER`) and reports each one's hop limit (`IPV6_RECVHOPLIMIT`), so
//! that the 255 RFC 4861 demands is both sent and checked, as ndisc6 does. A
//! packet socket would have us build and parse all of that by hand.

use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::os::fd::{AsFd, OwnedFd};

use super::arp::{Interface, interfaces};
use super::checks::{CheckError, mark, sockaddr_v6};
use super::sys::{bind, receive_message, register, send_datagram, set_option, socket};

const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The option that carries the sender's link-layer address (RFC 4861 §4.6.1).
const SOURCE_LINK_LAYER_ADDRESS: u8 = 1;
/// What every neighbour discovery message is sent with, and must arrive with:
/// proof that it was not forwarded by a router.
const HOP_LIMIT: u8 = 255;
/// A solicitation with its source link-layer address option.
const SOLICITATION_LEN: usize = 32;
/// An advertisement without options: header, flags and target.
const ADVERTISEMENT_LEN: usize = 24;
/// `ICMPV6_FILTER` of linux/icmpv6.h, which the libc crate lacks.
const ICMP6_FILTER: libc::c_int = 1;

/// Where the solicitation goes out and what it says of the asker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub index: u32,
    pub mac: [u8; 6],
    pub address: Ipv6Addr,
}

fn is_link_local(address: Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

fn ipv6(interface: &Interface) -> impl Iterator<Item = (Ipv6Addr, u8)> + '_ {
    interface.addresses.iter().filter_map(|net| match net.addr {
        IpAddr::V6(address) => Some((address, net.prefix)),
        IpAddr::V4(_) => None,
    })
}

fn holds((network, prefix): (Ipv6Addr, u8), address: Ipv6Addr) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(network) & mask == u128::from(address) & mask
}

/// Picks the link: `iface`, or the one `source` is an address of, or the one
/// with a prefix holding `target` (a link-local target, whose prefix every
/// link has, needs one of the first two). Then the address to ask from:
/// `source`, or the link's address in the target's prefix, or its link-local
/// address, or its first.
pub fn sender(
    interfaces: &[Interface],
    target: Ipv6Addr,
    iface: Option<&str>,
    source: Option<Ipv6Addr>,
) -> Result<Sender, String> {
    let interface = match (iface, source) {
        (Some(name), _) => interfaces
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| format!("no interface {name}"))?,
        (None, Some(source)) => interfaces
            .iter()
            .find(|i| ipv6(i).any(|(address, _)| address == source))
            .ok_or_else(|| format!("no interface has the check source {source}"))?,
        (None, None) if is_link_local(target) => {
            return Err(format!(
                "{target} is link-local: name its interface (`option arpcheck iface NAME`)"
            ));
        }
        (None, None) => interfaces
            .iter()
            .find(|i| {
                i.mac.is_some()
                    && ipv6(i).any(|a| !is_link_local(a.0) && a.1 > 0 && holds(a, target))
            })
            .ok_or_else(|| format!("no interface has a prefix holding {target}"))?,
    };
    let mac = interface
        .mac
        .ok_or_else(|| format!("{} has no Ethernet address to ask from", interface.name))?;
    let address = source
        .or_else(|| {
            let on_link = ipv6(interface).find(|&a| holds(a, target));
            let link_local = ipv6(interface).find(|a| is_link_local(a.0));
            on_link
                .or(link_local)
                .or(ipv6(interface).next())
                .map(|a| a.0)
        })
        .ok_or_else(|| format!("{} has no IPv6 address to ask from", interface.name))?;
    Ok(Sender {
        index: interface.index,
        mac,
        address,
    })
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1):
/// where a solicitation for it goes.
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let low = u128::from(target) & 0x00ff_ffff;
    Ipv6Addr::from(0xff02_0000_0000_0000_0000_0001_ff00_0000 | low)
}

/// A Neighbor Solicitation for `target` from `mac`, as ICMPv6 message. Its
/// checksum stays zero: the kernel computes it for a raw ICMPv6 socket
/// (RFC 3542 §3.1), over a pseudo-header with the source address it picks.
pub fn solicitation(target: Ipv6Addr, mac: [u8; 6]) -> [u8; SOLICITATION_LEN] {
    let mut packet = [0; SOLICITATION_LEN];
    packet[0] = NEIGHBOR_SOLICITATION;
    packet[8..24].copy_from_slice(&target.octets());
    packet[24] = SOURCE_LINK_LAYER_ADDRESS;
    packet[25] = 1; // in units of 8 bytes
    packet[26..32].copy_from_slice(&mac);
    packet
}

/// Whether `message` (the ICMPv6 message) is a Neighbor Advertisement for
/// `target` that arrived with hop limit 255; `hop_limit` is `None` when the
/// kernel did not say, and is then taken on trust.
pub fn is_advertisement_for(message: &[u8], target: Ipv6Addr, hop_limit: Option<u8>) -> bool {
    message.len() >= ADVERTISEMENT_LEN
        && message[0] == NEIGHBOR_ADVERTISEMENT
        && message[1] == 0
        && message[8..24] == target.octets()
        && hop_limit.is_none_or(|hops| hops == HOP_LIMIT)
}

/// Sends a solicitation for `target` from `source` (or the address [`sender`]
/// picks) and waits for its advertisement (the caller holds the timeout).
pub async fn probe(
    target: Ipv6Addr,
    source: Option<Ipv6Addr>,
    iface: Option<&str>,
) -> Result<(), CheckError> {
    let interfaces = interfaces().map_err(CheckError::Local)?;
    let sender = sender(&interfaces, target, iface, source)
        .map_err(|why| CheckError::Io(io::Error::other(why)))?;
    let fd = icmpv6_socket().map_err(CheckError::Local)?;
    // Bound to the asking address: the advertisement comes back to it, and a
    // link-local one (with its scope) ties the socket to the link as well.
    let scope = if is_link_local(sender.address) {
        sender.index
    } else {
        0
    };
    bind(&fd, &sockaddr_v6(sender.address, scope))?;
    let socket = register(fd)?;
    let destination = sockaddr_v6(solicited_node(target), sender.index);
    send_datagram(&socket, &solicitation(target, sender.mac), &destination).await?;
    let mut buffer = [0u8; 1500];
    loop {
        let (len, _, ancillary) =
            receive_message::<libc::sockaddr_in6>(&socket, &mut buffer).await?;
        let on_link = ancillary.index.is_none_or(|index| index == sender.index);
        if on_link && is_advertisement_for(&buffer[..len], target, ancillary.hop_limit) {
            return Ok(());
        }
    }
}

/// A raw ICMPv6 socket that sends with hop limit 255, receives advertisements
/// only, and is told each one's hop limit and interface.
fn icmpv6_socket() -> io::Result<OwnedFd> {
    let fd = socket(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)?;
    mark(fd.as_fd());
    let on = 1i32.to_ne_bytes();
    let hops = i32::from(HOP_LIMIT).to_ne_bytes();
    // Linux's filter: one bit per ICMPv6 type, set to block it.
    let mut filter = [u32::MAX; 8];
    let passed = usize::from(NEIGHBOR_ADVERTISEMENT);
    filter[passed / 32] &= !(1 << (passed % 32));
    let filter: Vec<u8> = filter.iter().flat_map(|w| w.to_ne_bytes()).collect();
    for (level, name, value) in [
        (libc::IPPROTO_ICMPV6, ICMP6_FILTER, &filter[..]),
        (libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops[..]),
        (libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops[..]),
        (libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &on[..]),
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &on[..]),
    ] {
        set_option(fd.as_fd(), level, name, value)?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::arp::tests::eth;

    fn interfaces() -> Vec<Interface> {
        vec![
            Interface {
                mac: None,
                ..eth("lo", 1, &[("127.0.0.1", 8), ("::1", 128)])
            },
            eth("eth0", 2, &[("192.0.2.1", 24), ("fe80::2", 64)]),
            eth(
                "eth1",
                3,
                &[
                    ("10.0.1.1", 24),
                    ("fe80::3", 64),
                    ("2001:db8:9::1", 64),
                    ("2001:db8:1::1", 64),
                ],
            ),
            eth("eth2", 4, &[("fe80::4", 64), ("2001:db8:2::1", 64)]),
        ]
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().expect("address")
    }

    #[test]
    fn the_link_is_the_one_whose_prefix_holds_the_server_unless_named_or_sourced() {
        let target = v6("2001:db8:1::2");
        let sender = sender(&interfaces(), target, None, None).expect("a link");
        assert_eq!(
            sender,
            Sender {
                index: 3,
                mac: [2, 0, 0, 0, 0, 3],
                address: v6("2001:db8:1::1"),
            },
            "eth1, from its address in the server's prefix"
        );

        let named = super::sender(&interfaces(), target, Some("eth0"), None).expect("eth0");
        assert_eq!(
            (named.index, named.address),
            (2, v6("fe80::2")),
            "no address of eth0 holds the server: its link-local one asks"
        );

        let source = Some(v6("2001:db8:2::1"));
        let sourced = super::sender(&interfaces(), target, None, source).expect("eth2");
        assert_eq!(
            (sourced.index, sourced.address),
            (4, v6("2001:db8:2::1")),
            "the check source's link"
        );
        let both = super::sender(
            &interfaces(),
            target,
            Some("eth1"),
            Some(v6("2001:db8:9::1")),
        )
        .expect("eth1");
        assert_eq!((both.index, both.address), (3, v6("2001:db8:9::1")));
    }

    #[test]
    fn a_server_no_link_reaches_is_refused_with_the_reason() {
        let cases = [
            (
                "2001:db8:77::5",
                None,
                None,
                "no interface has a prefix holding 2001:db8:77::5",
            ),
            (
                "fe80::9",
                None,
                None,
                "fe80::9 is link-local: name its interface (`option arpcheck iface NAME`)",
            ),
            ("2001:db8:1::2", Some("eth7"), None, "no interface eth7"),
            (
                "2001:db8:1::2",
                None,
                Some("2001:db8:5::1"),
                "no interface has the check source 2001:db8:5::1",
            ),
            (
                "::1",
                Some("lo"),
                None,
                "lo has no Ethernet address to ask from",
            ),
        ];
        for (target, iface, source, error) in cases {
            assert_eq!(
                sender(&interfaces(), v6(target), iface, source.map(v6)),
                Err(error.into()),
                "{target}"
            );
        }
        let mut bare = interfaces();
        bare[1]
            .addresses
            .retain(|net| net.family() == crate::config::model::types::Family::Ipv4);
        assert_eq!(
            sender(&bare, v6("2001:db8:1::2"), Some("eth0"), None),
            Err("eth0 has no IPv6 address to ask from".into())
        );
    }

    #[test]
    fn a_link_local_server_is_asked_on_the_named_link_from_its_link_local_address() {
        let sender = sender(&interfaces(), v6("fe80::99"), Some("eth2"), None).expect("eth2");
        assert_eq!((sender.index, sender.address), (4, v6("fe80::4")));
    }

    #[test]
    fn a_solicitation_goes_to_the_solicited_node_address_with_our_mac() {
        let target = v6("2001:db8:1::abcd:1234");
        assert_eq!(solicited_node(target), v6("ff02::1:ffcd:1234"));
        assert_eq!(solicited_node(v6("fe80::1")), v6("ff02::1:ff00:1"));
        let packet = solicitation(target, [2, 0, 0, 0, 0, 3]);
        assert_eq!(&packet[..8], &[135, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&packet[8..24], &target.octets());
        assert_eq!(&packet[24..], &[1, 1, 2, 0, 0, 0, 0, 3]);
    }

    #[test]
    fn only_an_advertisement_for_the_target_with_hop_limit_255_answers() {
        let target = v6("2001:db8:1::2");
        // Solicited and override flags, the target, its link-layer address.
        let mut advertisement = vec![136, 0, 0x12, 0x34, 0x60, 0, 0, 0];
        advertisement.extend_from_slice(&target.octets());
        advertisement.extend_from_slice(&[2, 1, 2, 0, 0, 0, 0, 9]);
        assert!(is_advertisement_for(&advertisement, target, Some(255)));
        assert!(
            is_advertisement_for(&advertisement, target, None),
            "a hop limit unread is taken on trust"
        );
        assert!(
            !is_advertisement_for(&advertisement, target, Some(254)),
            "forwarded by a router"
        );
        assert!(!is_advertisement_for(
            &advertisement,
            v6("2001:db8:1::3"),
            Some(255)
        ));
        assert!(!is_advertisement_for(
            &advertisement[..ADVERTISEMENT_LEN - 1],
            target,
            Some(255)
        ));
        let solicitation = solicitation(target, [2, 0, 0, 0, 0, 3]);
        assert!(
            !is_advertisement_for(&solicitation, target, Some(255)),
            "a solicitation is no answer"
        );
        let mut coded = advertisement.clone();
        coded[1] = 1;
        assert!(!is_advertisement_for(&coded, target, Some(255)));
    }
}
