//! `arpcheck`: an ARP who-has for the server's address, broadcast on the link
//! that reaches it; any reply from that address in time is a success. It tells
//! that the server's network stack is on the link, not that a service answers:
//! the check for servers that must not be probed on a port. An IPv6 server is
//! asked by neighbour solicitation instead (`ndisc.rs`), which shares the
//! interface list here.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::OwnedFd;

use super::checks::CheckError;
use super::sys::{self, Family, bind, receive_datagram, register, send_datagram, socket};
use crate::config::model::types::IpNet;

const ETH_P_ARP: u16 = 0x0806;
const ARP_REQUEST: u16 = 1;
const ARP_REPLY: u16 = 2;
/// An ARP packet for IPv4 over Ethernet, without the Ethernet header.
const ARP_LEN: usize = 28;

/// An interface as far as ARP and neighbour discovery need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    /// `None` on links without Ethernet addresses (loopback, tunnels).
    pub mac: Option<[u8; 6]>,
    /// Each address, of either family, with its prefix length.
    pub addresses: Vec<IpNet>,
}

impl Interface {
    /// Its IPv4 addresses with their prefix lengths.
    fn ipv4(&self) -> impl Iterator<Item = (Ipv4Addr, u8)> + '_ {
        self.addresses.iter().filter_map(|net| match net.addr {
            IpAddr::V4(address) => Some((address, net.prefix)),
            IpAddr::V6(_) => None,
        })
    }
}

/// Where the who-has goes out and what it says of the asker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub index: u32,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
}

fn contains((network, prefix): (Ipv4Addr, u8), address: Ipv4Addr) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(network) & mask == u32::from(address) & mask
}

/// Picks the interface (`iface`, or the one whose subnet holds `target`) and the
/// sender address (`source`, or that interface's address in the target's subnet,
/// or its first).
pub fn sender(
    interfaces: &[Interface],
    target: Ipv4Addr,
    iface: Option<&str>,
    source: Option<Ipv4Addr>,
) -> Result<Sender, String> {
    let interface = match iface {
        Some(name) => interfaces
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| format!("no interface {name}"))?,
        None => interfaces
            .iter()
            .find(|i| i.mac.is_some() && i.ipv4().any(|a| contains(a, target)))
            .ok_or_else(|| format!("no interface has a subnet holding {target}"))?,
    };
    let mac = interface
        .mac
        .ok_or_else(|| format!("{} has no Ethernet address to ask from", interface.name))?;
    let address = source
        .or_else(|| {
            let on_link = interface.ipv4().find(|&a| contains(a, target));
            on_link.or(interface.ipv4().next()).map(|a| a.0)
        })
        .ok_or_else(|| format!("{} has no IPv4 address to ask from", interface.name))?;
    Ok(Sender {
        index: interface.index,
        mac,
        address,
    })
}

/// A who-has for `target` from `sender`, as it goes after the Ethernet header.
pub fn request(sender: &Sender, target: Ipv4Addr) -> [u8; ARP_LEN] {
    let mut packet = [0; ARP_LEN];
    packet[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    packet[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    packet[4] = 6;
    packet[5] = 4;
    packet[6..8].copy_from_slice(&ARP_REQUEST.to_be_bytes());
    packet[8..14].copy_from_slice(&sender.mac);
    packet[14..18].copy_from_slice(&sender.address.octets());
    // The target's hardware address stays zero: that is the question.
    packet[24..28].copy_from_slice(&target.octets());
    packet
}

/// Whether `packet` is an ARP reply telling where `target` is.
pub fn is_reply_from(packet: &[u8], target: Ipv4Addr) -> bool {
    packet.len() >= ARP_LEN
        && packet[0..6] == [0, 1, 8, 0, 6, 4]
        && packet[6..8] == ARP_REPLY.to_be_bytes()
        && packet[14..18] == target.octets()
}

/// Sends a who-has for `target` from `source` (or the address [`sender`]
/// picks) and waits for its reply (the caller holds the timeout).
pub async fn probe(
    target: Ipv4Addr,
    source: Option<Ipv4Addr>,
    iface: Option<&str>,
) -> Result<(), CheckError> {
    let interfaces = interfaces().map_err(CheckError::Local)?;
    let sender = sender(&interfaces, target, iface, source)
        .map_err(|why| CheckError::Io(io::Error::other(why)))?;
    let socket = register(packet_socket(sender.index).map_err(CheckError::Local)?)?;
    let broadcast = link_address(sender.index, [0xff; 6]);
    send_datagram(&socket, &request(&sender, target), &broadcast).await?;
    let mut buffer = [0u8; 128];
    loop {
        let (len, _) = receive_datagram::<libc::sockaddr_ll>(&socket, &mut buffer).await?;
        if is_reply_from(&buffer[..len], target) {
            return Ok(());
        }
    }
}

fn link_address(index: u32, mac: [u8; 6]) -> libc::sockaddr_ll {
    let mut address = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ETH_P_ARP.to_be(),
        sll_ifindex: index as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 6,
        sll_addr: [0; 8],
    };
    address.sll_addr[..6].copy_from_slice(&mac);
    address
}

/// A packet socket that sends and receives ARP on interface `index` only.
fn packet_socket(index: u32) -> io::Result<OwnedFd> {
    let fd = socket(
        libc::AF_PACKET,
        libc::SOCK_DGRAM,
        i32::from(ETH_P_ARP.to_be()),
    )?;
    bind(&fd, &link_address(index, [0; 6]))?;
    Ok(fd)
}

/// The machine's interfaces with their Ethernet, IPv4 and IPv6 addresses.
pub(super) fn interfaces() -> io::Result<Vec<Interface>> {
    let mut interfaces: Vec<Interface> = Vec::new();
    for entry in sys::interface_addresses()? {
        let position = match interfaces.iter().position(|i| i.name == entry.name) {
            Some(position) => position,
            None => {
                interfaces.push(Interface {
                    name: entry.name,
                    index: 0,
                    mac: None,
                    addresses: Vec::new(),
                });
                interfaces.len() - 1
            }
        };
        let interface = &mut interfaces[position];
        match entry.address {
            Family::Link {
                index,
                length,
                hardware,
            } => {
                interface.index = index;
                if length == 6 && hardware[..6] != [0; 6] {
                    interface.mac = hardware[..6].try_into().ok();
                }
            }
            Family::Ipv4 {
                address,
                netmask: Some(mask),
            } => {
                let prefix = u32::from(mask).count_ones() as u8;
                interface
                    .addresses
                    .extend(IpNet::new(address.into(), prefix));
            }
            Family::Ipv6 {
                address,
                prefix: Some(prefix),
                ..
            } => {
                interface
                    .addresses
                    .extend(IpNet::new(address.into(), prefix));
            }
            _ => {}
        }
    }
    Ok(interfaces)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A link with a MAC and these addresses; ndisc's tests share it.
    pub(in crate::health) fn eth(name: &str, index: u32, addresses: &[(&str, u8)]) -> Interface {
        Interface {
            name: name.into(),
            index,
            mac: Some([2, 0, 0, 0, 0, index as u8]),
            addresses: addresses
                .iter()
                .map(|(a, p)| IpNet::new(a.parse().expect("address"), *p).expect("a prefix"))
                .collect(),
        }
    }

    fn interfaces() -> Vec<Interface> {
        vec![
            Interface {
                mac: None,
                ..eth("lo", 1, &[("127.0.0.1", 8)])
            },
            // An IPv6 address first: ARP asks from an IPv4 one all the same.
            eth("eth0", 2, &[("2001:db8:2::1", 64), ("192.0.2.1", 24)]),
            eth("eth1", 3, &[("10.0.9.1", 24), ("10.0.1.1", 24)]),
        ]
    }

    #[test]
    fn the_link_is_the_one_whose_subnet_holds_the_server_unless_named() {
        let target: Ipv4Addr = "10.0.1.2".parse().expect("address");
        let sender = sender(&interfaces(), target, None, None).expect("a link");
        assert_eq!(sender.index, 3);
        assert_eq!(
            sender.address,
            Ipv4Addr::new(10, 0, 1, 1),
            "the on-link one"
        );

        let named = super::sender(&interfaces(), target, Some("eth0"), None).expect("eth0");
        assert_eq!(
            (named.index, named.address),
            (2, Ipv4Addr::new(192, 0, 2, 1))
        );
        let source = Some(Ipv4Addr::new(10, 0, 9, 1));
        let sourced = super::sender(&interfaces(), target, None, source).expect("a link");
        assert_eq!(sourced.address, Ipv4Addr::new(10, 0, 9, 1));

        let far = Ipv4Addr::new(203, 0, 113, 5);
        assert_eq!(
            super::sender(&interfaces(), far, None, None),
            Err("no interface has a subnet holding 203.0.113.5".into())
        );
        assert_eq!(
            super::sender(&interfaces(), target, Some("eth7"), None),
            Err("no interface eth7".into())
        );
        assert_eq!(
            super::sender(&interfaces(), target, Some("lo"), None),
            Err("lo has no Ethernet address to ask from".into())
        );
    }

    #[test]
    fn a_who_has_and_the_reply_that_answers_it() {
        let sender = Sender {
            index: 3,
            mac: [2, 0, 0, 0, 0, 3],
            address: Ipv4Addr::new(10, 0, 1, 1),
        };
        let target = Ipv4Addr::new(10, 0, 1, 2);
        let request = request(&sender, target);
        assert_eq!(
            request,
            [
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 3, 10, 0, 1, 1, 0, 0, 0, 0, 0, 0, 10, 0, 1,
                2
            ]
        );
        // The reply swaps the roles: the target tells its hardware address.
        let mut reply = [0u8; ARP_LEN];
        reply[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        reply[6..8].copy_from_slice(&ARP_REPLY.to_be_bytes());
        reply[8..14].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        reply[14..18].copy_from_slice(&target.octets());
        reply[18..24].copy_from_slice(&sender.mac);
        reply[24..28].copy_from_slice(&sender.address.octets());
        assert!(is_reply_from(&reply, target));
        assert!(!is_reply_from(&reply, Ipv4Addr::new(10, 0, 1, 3)));
        assert!(!is_reply_from(&request, target), "a request is no answer");
        assert!(!is_reply_from(&reply[..20], target));
    }
}
