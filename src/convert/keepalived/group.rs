//! `virtual_server_group`: its addresses as flow rules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::model::types::{IpNet, Port};
use crate::convert::{Conversion, NoteKind, Place};

use super::lexer::Node;

/// A group's entries, read once whatever number of virtual servers use it.
#[derive(Debug, Clone)]
pub struct Group {
    pub place: Place,
    /// Each address entry as exact CIDR blocks, its port (none: every
    /// port), and where it was written.
    pub addresses: Vec<(Vec<IpNet>, Option<Port>, Place)>,
    /// `fwmark N` entries and where they were written.
    pub fwmarks: Vec<(u32, Place)>,
}

/// Reads the entries of `virtual_server_group NAME { … }`; bad ones are
/// reported and left out.
pub fn read(node: &Node, out: &mut Conversion) -> Group {
    let mut group = Group {
        place: node.place.clone(),
        addresses: Vec::new(),
        fwmarks: Vec::new(),
    };
    for entry in node.children() {
        if entry.block.is_some() {
            out.note(
                &entry.place,
                NoteKind::Error,
                format!(
                    "`{}` in a virtual_server_group takes no block; left out",
                    entry.text()
                ),
            );
            continue;
        }
        if entry.keyword() == "fwmark" {
            match entry.arg(0).and_then(|n| n.parse::<u32>().ok()) {
                Some(mark) => group.fwmarks.push((mark, entry.place.clone())),
                None => out.note(
                    &entry.place,
                    NoteKind::Error,
                    format!("`{}`: not a firewall mark; left out", entry.text()),
                ),
            }
            continue;
        }
        let port = match entry.arg(0) {
            None => Some(None),
            Some(text) => text.parse::<u16>().ok().map(Port::new),
        };
        match (address_range(entry.keyword()), port) {
            (Some((first, last)), Some(port)) => {
                group
                    .addresses
                    .push((cidr_blocks(first, last), port, entry.place.clone()));
            }
            _ => out.note(
                &entry.place,
                NoteKind::Error,
                format!(
                    "`{}`: not an address, range (10.0.0.1-10) or prefix with a port; left out",
                    entry.text()
                ),
            ),
        }
    }
    group
}

/// `10.0.0.1`, `10.0.0.1-10` (the last byte's range), `2001:db8::1-1f` (the
/// last group's, in hex) or `10.0.0.0/29`: the first and last address.
fn address_range(text: &str) -> Option<(IpAddr, IpAddr)> {
    if let Some((address, prefix)) = text.split_once('/') {
        let address: IpAddr = address.parse().ok()?;
        let prefix: u8 = prefix.parse().ok()?;
        let net = IpNet::new(address, prefix)?;
        let host_bits = u32::from(max_prefix(address) - net.prefix);
        let last = to_number(address) | low_mask(host_bits);
        return Some((address, from_number(address, last)));
    }
    let Some((first, end)) = text.split_once('-') else {
        let address = text.parse().ok()?;
        return Some((address, address));
    };
    let first: IpAddr = first.parse().ok()?;
    let (end, low_bits) = match first {
        IpAddr::V4(_) => (u128::from(end.parse::<u8>().ok()?), 8),
        IpAddr::V6(_) => (u128::from(u16::from_str_radix(end, 16).ok()?), 16),
    };
    let start = to_number(first);
    let last = (start >> low_bits << low_bits) | end;
    (last >= start).then(|| (first, from_number(first, last)))
}

fn max_prefix(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn to_number(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address of `like`'s family; the number fits it, as it comes from one.
fn from_number(like: IpAddr, number: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(u32::try_from(number).unwrap_or(u32::MAX))),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(number)),
    }
}

/// The `bits` lowest bits set.
fn low_mask(bits: u32) -> u128 {
    1u128.checked_shl(bits).map_or(u128::MAX, |n| n - 1)
}

/// The fewest CIDR blocks that cover exactly `first` to `last`.
fn cidr_blocks(first: IpAddr, last: IpAddr) -> Vec<IpNet> {
    let bits = u32::from(max_prefix(first));
    let mut blocks = Vec::new();
    let mut start = to_number(first);
    let end = to_number(last);
    loop {
        // The largest aligned block at `start` that ends by `end`.
        let mut size_bits = start.trailing_zeros().min(bits);
        while size_bits > 0 && start | low_mask(size_bits) > end {
            size_bits -= 1;
        }
        let prefix = u8::try_from(bits - size_bits).unwrap_or(0);
        if let Some(net) = IpNet::new(from_number(first, start), prefix) {
            blocks.push(net);
        }
        let block_last = start | low_mask(size_bits);
        if block_last >= end {
            break;
        }
        start = block_last + 1;
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(text: &str) -> Vec<String> {
        let (first, last) = address_range(text).expect("a range");
        cidr_blocks(first, last)
            .iter()
            .map(IpNet::shortest)
            .collect()
    }

    #[test]
    fn ranges_become_exact_blocks() {
        assert_eq!(blocks("10.0.0.1"), ["10.0.0.1"]);
        assert_eq!(
            blocks("10.0.0.1-10"),
            [
                "10.0.0.1",
                "10.0.0.2/31",
                "10.0.0.4/30",
                "10.0.0.8/31",
                "10.0.0.10"
            ]
        );
        assert_eq!(blocks("10.0.0.0-255"), ["10.0.0.0/24"]);
        assert_eq!(blocks("10.0.0.8/29"), ["10.0.0.8/29"]);
        assert_eq!(
            blocks("2001:db8::a-f"),
            ["2001:db8::a/127", "2001:db8::c/126"]
        );
        assert_eq!(blocks("0.0.0.0/0"), ["0.0.0.0/0"]);
        assert!(address_range("10.0.0.9-3").is_none());
        assert!(address_range("10.0.0.1-300").is_none());
    }
}
