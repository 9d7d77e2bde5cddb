//! Syntax colours for the three files: keywords, the names sections and servers
//! are given, addresses, numbers and comments. Works one line at a time, so only
//! the lines on screen are ever coloured, whatever the size of the buffer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

use crate::config::keywords::{NAMING, is_keyword};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Keyword,
    Name,
    Address,
    Number,
    Comment,
    Text,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum NamesAhead {
    No,
    One,
    All,
}

/// Splits `line` into coloured ranges of character indices, covering the line.
pub fn spans(line: &str) -> Vec<(Range<usize>, Kind)> {
    let mut result = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut index = 0;
    // After `slave` every word is a name; after another naming word, one is.
    let mut names_ahead = NamesAhead::No;
    while index < chars.len() {
        let c = chars[index];
        if c == '#' {
            result.push((index..chars.len(), Kind::Comment));
            break;
        }
        if c.is_whitespace() {
            let start = index;
            while index < chars.len() && chars[index].is_whitespace() {
                index += 1;
            }
            result.push((start..index, Kind::Text));
            continue;
        }
        let start = index;
        while index < chars.len() && !chars[index].is_whitespace() && chars[index] != '#' {
            index += 1;
        }
        let word: String = chars[start..index].iter().collect();
        let kind = classify(&word, names_ahead != NamesAhead::No);
        names_ahead = match (names_ahead, word.as_str()) {
            (NamesAhead::All, _) | (_, "slave") => NamesAhead::All,
            (NamesAhead::No, word) if NAMING.contains(&word) => NamesAhead::One,
            _ => NamesAhead::No,
        };
        result.push((start..index, kind));
    }
    result
}

fn classify(word: &str, names_follow: bool) -> Kind {
    if is_address(word) {
        Kind::Address
    } else if word.bytes().all(|b| b.is_ascii_digit()) {
        Kind::Number
    } else if names_follow {
        Kind::Name
    } else if is_keyword(word) {
        Kind::Keyword
    } else {
        Kind::Text
    }
}

/// An address of either family as the files write them: `10.0.0.1`, with
/// `/prefix`, `/mask` or `:port` after it; `2001:db8::5`, with `/prefix`, or in
/// brackets with `:port` after them (`[2001:db8::10]:80`). The text before the
/// `/` must be an address as std reads it (`::`, `fe80::1`, `::ffff:10.0.0.1`).
fn is_address(word: &str) -> bool {
    if let Some(inner) = word.strip_prefix('[') {
        return inner.split_once(']').is_some_and(|(host, rest)| {
            host.parse::<Ipv6Addr>().is_ok() && (rest.is_empty() || rest.starts_with(':'))
        });
    }
    let host = word.split('/').next().unwrap_or_default();
    host.parse::<IpAddr>().is_ok()
        || host
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.parse::<Ipv4Addr>().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(line: &str) -> Vec<(String, Kind)> {
        let chars: Vec<char> = line.chars().collect();
        spans(line)
            .into_iter()
            .filter(|(_, kind)| *kind != Kind::Text)
            .map(|(range, kind)| (chars[range].iter().collect(), kind))
            .collect()
    }

    #[test]
    fn colours_keywords_names_addresses_numbers_and_comments() {
        assert_eq!(
            kinds("director web 192.168.0.10:80 TCP # the farm"),
            vec![
                ("director".into(), Kind::Keyword),
                ("web".into(), Kind::Name),
                ("192.168.0.10:80".into(), Kind::Address),
                ("TCP".into(), Kind::Keyword),
                ("# the farm".into(), Kind::Comment),
            ]
        );
        assert_eq!(
            kinds("    slave eth2 eth3"),
            vec![
                ("slave".into(), Kind::Keyword),
                ("eth2".into(), Kind::Name),
                ("eth3".into(), Kind::Name),
            ]
        );
        assert_eq!(
            kinds("bonding miimon 100"),
            vec![
                ("bonding".into(), Kind::Keyword),
                ("miimon".into(), Kind::Keyword),
                ("100".into(), Kind::Number),
            ]
        );
    }

    #[test]
    fn the_ha_pair_lines_are_coloured_like_the_others() {
        assert_eq!(
            kinds("    sync-iface vrrp"),
            vec![
                ("sync-iface".into(), Kind::Keyword),
                ("vrrp".into(), Kind::Name)
            ]
        );
        assert_eq!(
            kinds("vrrp address 2001:db8::100/64"),
            vec![
                ("vrrp".into(), Kind::Keyword),
                ("address".into(), Kind::Keyword),
                ("2001:db8::100/64".into(), Kind::Address),
            ]
        );
        assert_eq!(
            kinds("track-health on"),
            vec![
                ("track-health".into(), Kind::Keyword),
                ("on".into(), Kind::Keyword)
            ]
        );
    }

    #[test]
    fn ipv6_literals_are_addresses_as_ipv4_ones_are() {
        for word in [
            "2001:db8::5/64",
            "[2001:db8::10]:80",
            "[2001:db8:1::11]:8080",
            "fe80::1",
            "::",
            "::1/128",
            "::ffff:10.0.0.1",
            "2001:db8:1234:5678:9abc:def0:1234:5678",
            "10.0.0.1",
            "10.0.0.1:80",
            "192.168.161.10/255.255.255.0",
        ] {
            assert_eq!(
                kinds(word),
                vec![(word.to_owned(), Kind::Address)],
                "{word}"
            );
        }
        for word in [
            "2001:db8::5::1",
            "[2001:db8::10",
            "[10.0.0.1]:80",
            "db8:",
            "80",
            "a:b",
        ] {
            assert_ne!(
                kinds(word).first().map(|k| k.1),
                Some(Kind::Address),
                "{word}"
            );
        }
        assert_eq!(
            kinds("    match proto icmpv6 src 2001:db8::/32 icmptype 128"),
            vec![
                ("match".into(), Kind::Keyword),
                ("proto".into(), Kind::Keyword),
                ("icmpv6".into(), Kind::Keyword),
                ("src".into(), Kind::Keyword),
                ("2001:db8::/32".into(), Kind::Address),
                ("icmptype".into(), Kind::Keyword),
                ("128".into(), Kind::Number),
            ]
        );
        assert_eq!(
            kinds("director web6 [2001:db8::10]:80 TCP"),
            vec![
                ("director".into(), Kind::Keyword),
                ("web6".into(), Kind::Name),
                ("[2001:db8::10]:80".into(), Kind::Address),
                ("TCP".into(), Kind::Keyword),
            ]
        );
    }

    #[test]
    fn spans_cover_the_line_exactly() {
        for line in ["", "  x  ", "ip address 10.0.0.1/16#c", "é ü #ß"] {
            let mut next = 0;
            for (range, _) in spans(line) {
                assert_eq!(range.start, next, "{line:?}");
                next = range.end;
            }
            assert_eq!(next, line.chars().count(), "{line:?}");
        }
    }
}
