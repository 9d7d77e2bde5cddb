//! Addresses in the live panes' narrow columns. Every pane shows an address as
//! std's `Display` writes it, which for IPv6 is already the shortest form
//! (RFC 5952: `::` for the longest run of zero groups, lowercase, no leading
//! zeros). Where a column is still too narrow, [`fit`] takes whole groups out
//! of the middle of the address and puts `…` in their place: the start (the
//! site's prefix) and the last group (the host) stay, and no group, prefix
//! length or port is ever cut in two.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Stands for the groups [`fit`] took out.
pub const ELISION: char = '…';

/// An address and port as they are written: `10.0.2.11:8080`,
/// `[2001:db8::11]:8080`. Takes either family's address type.
pub fn host_port(address: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(address.into(), port)
}

/// `text` in at most `width` columns. When it is wider, its longest address
/// (`2001:db8::5`, with a `/prefix`, in `[…]:port`, or `a.b.c.d:port`) loses
/// as few middle groups as make it fit, replaced by `…`; everything else in
/// `text` is kept. When even the address's first and last groups alone do not
/// fit, only the last group stays (`…:5678/128`), and the caller's wrapping
/// takes over. Text without an address is given back as it is.
pub fn fit(text: &str, width: usize) -> Cow<'_, str> {
    let length = text.chars().count();
    if length <= width {
        return Cow::Borrowed(text);
    }
    let Some(core) = longest_address(text) else {
        return Cow::Borrowed(text);
    };
    let address = &text[core.clone()];
    // Every group boundary but the last: the address is cut after one of them.
    let separators: Vec<usize> = address
        .match_indices([':', '.'])
        .map(|(at, _)| at)
        .collect();
    let Some((&last, before)) = separators.split_last() else {
        return Cow::Borrowed(text);
    };
    let tail = &address[last..];
    // `…` and the tail, after `head`: the heads from the longest down, then none.
    let heads = before
        .iter()
        .rev()
        .map(|&at| &address[..=at])
        .chain(std::iter::once(""));
    let address_length = address.chars().count();
    // Longest first; each one shorter than the address, or nothing is gained.
    let candidates: Vec<String> = heads
        .map(|head| format!("{head}{ELISION}{tail}"))
        .filter(|short| short.chars().count() < address_length)
        .collect();
    let others = length - address_length;
    let Some(chosen) = candidates
        .iter()
        .find(|short| others + short.chars().count() <= width)
        .or(candidates.last())
    else {
        return Cow::Borrowed(text);
    };
    Cow::Owned(format!(
        "{}{chosen}{}",
        &text[..core.start],
        &text[core.end..]
    ))
}

/// The byte range of the longest address among `text`'s words, the address
/// alone: without its brackets, `/prefix` or `:port`.
fn longest_address(text: &str) -> Option<std::ops::Range<usize>> {
    let mut offset = 0;
    let mut best: Option<std::ops::Range<usize>> = None;
    for word in text.split(' ') {
        if let Some(range) = address_in(word) {
            let range = offset + range.start..offset + range.end;
            if best.as_ref().is_none_or(|b| range.len() > b.len()) {
                best = Some(range);
            }
        }
        offset += word.len() + 1;
    }
    best
}

/// Where the address is in `word`, if `word` is one as the panes write them.
fn address_in(word: &str) -> Option<std::ops::Range<usize>> {
    if let Some(inner) = word.strip_prefix('[') {
        let close = inner.find(']')?;
        inner[..close].parse::<Ipv6Addr>().ok()?;
        return Some(1..1 + close);
    }
    let host = word.split('/').next().unwrap_or(word);
    if host.parse::<IpAddr>().is_ok() {
        return Some(0..host.len());
    }
    // `a.b.c.d:port`: only IPv4 is written without brackets before a port.
    let (host, port) = word.rsplit_once(':')?;
    (host.parse::<Ipv4Addr>().is_ok() && port.parse::<u16>().is_ok()).then_some(0..host.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: &str = "2001:db8:1234:5678:9abc:def0:1234:5678";

    fn fitted(text: &str, width: usize) -> String {
        fit(text, width).into_owned()
    }

    #[test]
    fn what_fits_is_left_alone() {
        assert_eq!(fitted("2001:db8::5/64", 14), "2001:db8::5/64");
        assert_eq!(fitted("192.168.0.1/24", 40), "192.168.0.1/24");
        assert_eq!(
            fitted("no address here at all", 4),
            "no address here at all"
        );
    }

    #[test]
    fn a_long_address_keeps_its_start_and_last_group_around_the_elision() {
        let text = format!("{LONG}/128");
        assert_eq!(fitted(&text, 30), "2001:db8:1234:5678:…:5678/128");
        assert_eq!(fitted(&text, 24), "2001:db8:1234:…:5678/128");
        assert_eq!(fitted(&text, 20), "2001:db8:…:5678/128");
        assert_eq!(fitted(&text, 15), "2001:…:5678/128");
    }

    #[test]
    fn the_port_and_brackets_stay_whole() {
        let text = format!("tcp [{LONG}]:8080");
        assert_eq!(fitted(&text, 28), "tcp [2001:db8:…:5678]:8080");
        assert_eq!(
            fitted("[2001:db8:aa:bb::11]:8080", 20),
            "[2001:db8:…:11]:8080"
        );
        assert_eq!(fitted("[2001:db8:aa:bb::11]:8080", 19), "[2001:…:11]:8080");
        assert_eq!(fitted("192.168.100.200:65535", 19), "192.168.….200:65535");
    }

    #[test]
    fn too_narrow_for_even_two_groups_keeps_the_last_one() {
        let text = format!("{LONG}/128");
        assert_eq!(fitted(&text, 3), "…:5678/128");
        assert_eq!(fitted("fe80::1/64", 5), "…:1/64");
    }

    #[test]
    fn no_group_is_ever_cut_in_two() {
        let addresses = [
            format!("{LONG}/128"),
            "2001:db8::10".to_owned(),
            "[2001:db8:1::11]:8080".to_owned(),
            "::ffff:10.0.0.1".to_owned(),
            "fe80::1ff:fe23:4567:890a/64".to_owned(),
            "192.168.161.10/24".to_owned(),
            format!("web6 tcp [{LONG}]:80 w2"),
        ];
        for text in &addresses {
            for width in 0..text.len() + 2 {
                let short = fitted(text, width);
                // What is left of the address are whole groups of the original.
                for piece in short.split(ELISION) {
                    for group in piece
                        .split([':', '.', '[', ']', '/', ' '])
                        .filter(|g| !g.is_empty())
                    {
                        assert!(
                            text.split([':', '.', '[', ']', '/', ' '])
                                .any(|g| g == group),
                            "{text:?} at {width}: {short:?} has {group:?}"
                        );
                    }
                }
                if short != *text {
                    assert!(
                        short.contains(ELISION) && short.chars().count() < text.chars().count(),
                        "{text:?} at {width}: {short:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_longest_address_of_the_text_is_the_one_shortened() {
        assert_eq!(
            fitted("10.0.0.1 via 2001:db8:aaaa:bbbb::1", 24),
            "10.0.0.1 via 2001:…:1"
        );
    }

    #[test]
    fn the_shortest_form_is_what_display_gives() {
        let address: IpAddr = "2001:0db8:0000:0000:0000:0000:0000:0010".parse().unwrap();
        assert_eq!(address.to_string(), "2001:db8::10");
        assert_eq!(host_port(address, 80).to_string(), "[2001:db8::10]:80");
        assert_eq!(
            host_port(Ipv4Addr::new(10, 0, 2, 11), 8080).to_string(),
            "10.0.2.11:8080"
        );
    }
}
