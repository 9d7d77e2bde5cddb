//! `flows.conf`: the flowmgr syntax, an ordered list of flows and outflows.

use serde::{Deserialize, Serialize};

use super::types::{
    DirectorName, Family, FlowName, IfName, IpNet, Loc, PortRange, Protocol, Spanned, TableId,
};

/// The highest table a flow can route to: the table number travels in the
/// packet's firewall mark, beside the directors' marks.
pub const MAX_FLOW_TABLE: u32 = 0xffff;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowsConfig {
    pub flows: Vec<Flow>,
}

impl FlowsConfig {
    /// The flows and outflows that take part: all but `skip`.
    pub fn active(&self) -> impl Iterator<Item = &Flow> {
        self.flows
            .iter()
            .filter(|flow| flow.policy.value != Policy::Skip)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    pub direction: Direction,
    pub name: Spanned<FlowName>,
    pub policy: Spanned<Policy>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// `flow` judges incoming packets, `outflow` locally generated and return traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[serde(rename = "flow")]
    In,
    #[serde(rename = "outflow")]
    Out,
}

impl Direction {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::In => "flow",
            Self::Out => "outflow",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    Permit,
    Deny,
    Director(DirectorName),
    /// The flow is left out; also the policy when none is written.
    Skip,
    Table(TableId),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub action: RuleAction,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// Matching packets take the flow's policy.
    Match,
    /// Matching packets leave this flow for the next one.
    Ignore,
}

impl RuleAction {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Match => "match",
            Self::Ignore => "ignore",
        }
    }
}

/// The conditions of one rule; all must hold. None at all matches every packet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iface: Option<Condition<IfName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proto: Option<Condition<Protocol>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<Condition<IpNet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<Condition<IpNet>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srcport: Option<Condition<PortRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dstport: Option<Condition<PortRange>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmptype: Option<Condition<u8>>,
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The one family this rule's addresses and protocol name, or `None` when it names
    /// none and so matches both. A rule that mixes families is the validator's to refuse.
    pub fn family(&self) -> Option<Family> {
        let addresses = [&self.src, &self.dst]
            .into_iter()
            .flatten()
            .map(|c| c.value.family());
        let protocol = self
            .proto
            .as_ref()
            .filter(|p| !p.negated)
            .and_then(|p| p.value.family());
        addresses.chain(protocol).next()
    }

    /// The protocol every matching packet is known to have.
    pub fn known_protocol(&self) -> Option<Protocol> {
        self.proto.as_ref().filter(|p| !p.negated).map(|p| p.value)
    }
}

/// One condition, possibly negated with `not`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition<T> {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
    pub value: T,
    #[serde(skip)]
    pub loc: Loc,
}

impl<T> Condition<T> {
    /// The same condition over a derived value (e.g. its printed form).
    pub fn map_ref<U>(&self, f: impl FnOnce(&T) -> U) -> Condition<U> {
        Condition {
            negated: self.negated,
            value: f(&self.value),
            loc: self.loc,
        }
    }
}

/// ICMP type names accepted beside numbers, as nft and iptables spell them.
pub const ICMP_TYPE_NAMES: &[(&str, u8)] = &[
    ("echo-reply", 0),
    ("destination-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("address-mask-request", 17),
    ("address-mask-reply", 18),
];

/// ICMPv6 type names accepted beside numbers under `proto icmpv6`, as nft spells them.
pub const ICMPV6_TYPE_NAMES: &[(&str, u8)] = &[
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-listener-query", 130),
    ("mld-listener-report", 131),
    ("mld-listener-done", 132),
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
    ("router-renumbering", 138),
    ("mld2-listener-report", 143),
];
