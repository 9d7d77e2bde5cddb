//! Every word of the three languages, in one place. The parsers match and
//! suggest from these tables, the console's highlighter colours [`is_keyword`]
//! words, and the round-trip test uses [`all`] as names that must survive.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::config::model::lvs::{ForwardMode, Scheduler};
use crate::config::model::network::{BondMode, LacpRate, XmitHashPolicy};

/// `network.conf`.
pub mod network {
    /// What a line of a `service network` section may start with.
    pub const STATEMENTS: &[&str] = &[
        "service", "type", "bonding", "slave", "vlan", "mtu", "auto", "ip", "vrrp",
    ];
    pub const TYPES: &[&str] = &["ethernet", "bonding", "vlan"];
    pub const BONDING_OPTIONS: &[&str] = &[
        "mode",
        "miimon",
        "updelay",
        "downdelay",
        "primary",
        "xmit-hash-policy",
        "lacp-rate",
    ];
    /// What follows `vrrp` in a `service network` section.
    pub const VRRP_OPTIONS: &[&str] = &["id", "prio", "address"];
    /// What a line of the `service vrrp` section may start with.
    pub const VRRP_STATEMENTS: &[&str] = &[
        "service",
        "sync-iface",
        "peer",
        "track-health",
        "advert",
        "preempt",
    ];
    /// The other words: `service network`, `vlan id … parent …`, `ip address`,
    /// `ip route … table …`, `auto on|off`.
    pub const WORDS: &[&str] = &[
        "network", "id", "parent", "address", "route", "default", "table", "on", "off",
    ];
}

/// `flows.conf` (the flowmgr syntax).
pub mod flows {
    pub const STATEMENTS: &[&str] = &["flow", "outflow", "match", "ignore"];
    pub const POLICIES: &[&str] = &["permit", "deny", "director", "skip", "table"];
    pub const CONDITIONS: &[&str] = &[
        "iface", "proto", "src", "dst", "srcport", "dstport", "icmptype", "not",
    ];
    pub const PROTOCOLS: &[&str] = &["tcp", "udp", "icmp", "icmpv6"];
}

/// `lvs.conf`.
pub mod lvs {
    /// What a line of a director may start with.
    pub const STATEMENTS: &[&str] = &["director", "balance", "mode", "check", "option", "server"];
    pub const OPTIONS: &[&str] = &[
        "persistence",
        "httpcheck",
        "tcpcheck",
        "arpcheck",
        "icmpcheck",
        "onepacket",
    ];
    pub const CHECK_PARAMS: &[&str] = &[
        "timeout", "interval", "source", "port", "rise", "fall", "inhibit",
    ];
    pub const SERVER_FLAGS: &[&str] = &["weight", "check", "sorry"];
    /// The other words: `director NAME ADDRESS:PORT TCP|UDP`, `persistence …
    /// netmask …`, `httpcheck uri … statuscode … vhost …`.
    pub const WORDS: &[&str] = &["TCP", "UDP", "netmask", "uri", "statuscode", "vhost"];
}

/// Words after which the next word (or every word, after `slave`) is a name.
pub const NAMING: &[&str] = &[
    "network",
    "flow",
    "outflow",
    "director",
    "server",
    "slave",
    "primary",
    "parent",
    "iface",
    "sync-iface",
];

/// Every keyword of the three languages, value names included (bond modes,
/// schedulers, forwarding modes); a word may appear more than once.
pub fn all() -> impl Iterator<Item = &'static str> {
    let tables = [
        network::STATEMENTS,
        network::TYPES,
        network::BONDING_OPTIONS,
        network::VRRP_OPTIONS,
        network::VRRP_STATEMENTS,
        network::WORDS,
        flows::STATEMENTS,
        flows::POLICIES,
        flows::CONDITIONS,
        flows::PROTOCOLS,
        lvs::STATEMENTS,
        lvs::OPTIONS,
        lvs::CHECK_PARAMS,
        lvs::SERVER_FLAGS,
        lvs::WORDS,
    ];
    let values = BondMode::ALL
        .into_iter()
        .map(BondMode::keyword)
        .chain(XmitHashPolicy::ALL.into_iter().map(XmitHashPolicy::keyword))
        .chain([LacpRate::Slow, LacpRate::Fast].map(LacpRate::keyword))
        .chain(ForwardMode::ALL.into_iter().map(ForwardMode::keyword))
        .chain(Scheduler::NAMES.iter().map(|&(name, _)| name));
    tables.into_iter().flatten().copied().chain(values)
}

/// Whether `word` is a keyword of any of the three languages.
pub fn is_keyword(word: &str) -> bool {
    static KEYWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| all().collect());
    KEYWORDS.contains(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_names_and_every_table_are_keywords() {
        for word in [
            "service",
            "ignore",
            "onepacket",
            "802.3ad",
            "wlc",
            "nat",
            "vhost",
            "vrrp",
            "track-health",
        ] {
            assert!(is_keyword(word), "{word}");
        }
        assert!(!is_keyword("web"));
    }
}
