//! `lvs.conf`: LVS director sections, the LB Layer4 tab.
//!
//! Export names (serde) follow the appliance's L4 farm API where it has one
//! (`least-connections`, `hash-source`, `check-interval`, …).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::types::{DirectorName, Family, IfName, Loc, Port, ServerName, Spanned};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsConfig {
    pub directors: Vec<Director>,
}

impl LvsConfig {
    pub fn director(&self, name: &str) -> Option<&Director> {
        self.directors.iter().find(|d| d.name.as_str() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Director {
    pub name: Spanned<DirectorName>,
    /// Without a VIP the director is reached only through a flow (an fwmark service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Spanned<VirtualService>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Spanned<Scheduler>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ForwardMode>,
    #[serde(default, skip_serializing_if = "CheckParams::is_unset")]
    pub check: CheckParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adv_check: Option<Spanned<CheckMethod>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub onepacket: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
    /// Where `option onepacket` was written, for diagnostics.
    #[serde(skip)]
    pub onepacket_loc: Loc,
}

impl Director {
    pub fn new(name: Spanned<DirectorName>) -> Self {
        Self {
            name,
            service: None,
            balance: None,
            mode: None,
            check: CheckParams::default(),
            adv_check: None,
            persistence: None,
            onepacket: false,
            servers: Vec::new(),
            onepacket_loc: Loc::default(),
        }
    }

    /// The family of the director's IPVS service: its VIP's, or for a VIP-less
    /// director its first server's. A director with neither is IPv4.
    pub fn family(&self) -> Family {
        self.service
            .as_ref()
            .map(|s| s.value.address)
            .or_else(|| self.servers.first().map(|s| s.address))
            .map_or(Family::Ipv4, Family::of)
    }

    /// The reference: "leastconn … This is the default."
    pub fn scheduler(&self) -> Scheduler {
        self.balance
            .as_ref()
            .map_or(Scheduler::LeastConn, |b| b.value)
    }

    /// The L4 farm reference: destination IP masquerading by default.
    pub fn forward_mode(&self) -> ForwardMode {
        self.mode.unwrap_or(ForwardMode::Nat)
    }

    /// The reference: with no advanced check, ICMP checks are performed.
    pub fn check_method(&self) -> CheckMethod {
        self.adv_check
            .as_ref()
            .map_or(CheckMethod::Icmp, |m| m.value.clone())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VirtualService {
    pub address: IpAddr,
    /// No port intercepts every port of the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ServiceProtocol>,
}

impl VirtualService {
    /// The L4 farm reference: TCP is intercepted by default.
    pub fn protocol(&self) -> ServiceProtocol {
        self.protocol.unwrap_or(ServiceProtocol::Tcp)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceProtocol {
    Tcp,
    Udp,
}

impl ServiceProtocol {
    /// Written in capitals in `lvs.conf`, as the reference's syntax shows.
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        }
    }
}

/// A load-balancing algorithm, by the LB Layer4 reference's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    #[serde(rename = "roundrobin")]
    RoundRobin,
    #[serde(rename = "least-connections")]
    LeastConn,
    #[serde(rename = "locality-based")]
    LocalityBased,
    #[serde(rename = "locality-based-replication")]
    LocalityBasedReplication,
    #[serde(rename = "hash-source")]
    Source,
    #[serde(rename = "hash-source-dest")]
    SrcDst,
    #[serde(rename = "hash-destination")]
    Dest,
    #[serde(rename = "shortest-expected-delay")]
    ShortestExpected,
    #[serde(rename = "never-queue")]
    NeverQueue,
    #[serde(rename = "maglev")]
    Maglev,
    #[serde(rename = "weighted-failover")]
    WeightedFailover,
    #[serde(rename = "overflow")]
    Overflow,
    #[serde(rename = "weighted-twos")]
    Twos,
}

impl Scheduler {
    pub const ALL: [Self; 13] = [
        Self::RoundRobin,
        Self::LeastConn,
        Self::LocalityBased,
        Self::LocalityBasedReplication,
        Self::Source,
        Self::SrcDst,
        Self::Dest,
        Self::ShortestExpected,
        Self::NeverQueue,
        Self::Maglev,
        Self::WeightedFailover,
        Self::Overflow,
        Self::Twos,
    ];

    /// The canonical spelling in `lvs.conf` (possibly several words).
    pub fn keyword(self) -> &'static str {
        match self {
            Self::RoundRobin => "roundrobin",
            Self::LeastConn => "leastconn",
            Self::LocalityBased => "leastconn localitybased",
            Self::LocalityBasedReplication => "leastconn localitybased replication",
            Self::Source => "source",
            Self::SrcDst => "srcdst",
            Self::Dest => "dest",
            Self::ShortestExpected => "shortestexpected",
            Self::NeverQueue => "neverqueue",
            Self::Maglev => "mh",
            Self::WeightedFailover => "fo",
            Self::Overflow => "ovh",
            Self::Twos => "twos",
        }
    }

    /// Every one-word name the parser takes: the reference's names and spellings,
    /// the IPVS short names, and the L4 farm export names.
    pub const NAMES: &[(&'static str, Self)] = &[
        ("roundrobin", Self::RoundRobin),
        ("rr", Self::RoundRobin),
        ("wrr", Self::RoundRobin),
        ("leastconn", Self::LeastConn),
        ("lc", Self::LeastConn),
        ("wlc", Self::LeastConn),
        ("least-connections", Self::LeastConn),
        ("lblc", Self::LocalityBased),
        ("lblcr", Self::LocalityBasedReplication),
        ("source", Self::Source),
        ("sh", Self::Source),
        ("hash-source", Self::Source),
        ("srcdst", Self::SrcDst),
        ("hash-source-dest", Self::SrcDst),
        ("dest", Self::Dest),
        ("dh", Self::Dest),
        ("hash-destination", Self::Dest),
        ("shortestexpected", Self::ShortestExpected),
        ("shortexpdelay", Self::ShortestExpected),
        ("sed", Self::ShortestExpected),
        ("shortest-expected-delay", Self::ShortestExpected),
        ("neverqueue", Self::NeverQueue),
        ("nq", Self::NeverQueue),
        ("never-queue", Self::NeverQueue),
        ("mh", Self::Maglev),
        ("fo", Self::WeightedFailover),
        ("ovh", Self::Overflow),
        ("ovf", Self::Overflow),
        ("twos", Self::Twos),
    ];
}

/// How packets reach the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// Direct routing.
    Gateway,
    /// Destination masquerading.
    Nat,
    /// IP-in-IP encapsulation.
    Tunnel,
}

impl ForwardMode {
    pub const ALL: [Self; 3] = [Self::Gateway, Self::Nat, Self::Tunnel];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::Gateway => "gateway",
            Self::Nat => "nat",
            Self::Tunnel => "tunnel",
        }
    }
}

/// The `check` line(s): global check parameters of a director.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct CheckParams {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-timeout"
    )]
    pub timeout: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-interval"
    )]
    pub interval: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-source"
    )]
    pub source: Option<Spanned<IpAddr>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-port"
    )]
    pub port: Option<Spanned<Port>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-rise"
    )]
    pub rise: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "check-fall"
    )]
    pub fall: Option<u32>,
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        rename = "check-inhibit"
    )]
    pub inhibit: bool,
    /// Where the first `check` line sits, for diagnostics.
    #[serde(skip)]
    pub loc: Loc,
}

impl CheckParams {
    pub const DEFAULT_INTERVAL_S: u32 = 10;

    pub fn is_unset(&self) -> bool {
        *self == Self::default()
    }

    pub fn interval(&self) -> u32 {
        self.interval.unwrap_or(Self::DEFAULT_INTERVAL_S)
    }

    /// The reference: "The default is half of check interval" (at least one second).
    pub fn timeout(&self) -> u32 {
        self.timeout.unwrap_or((self.interval() / 2).max(1))
    }

    pub fn rise(&self) -> u32 {
        self.rise.unwrap_or(1)
    }

    pub fn fall(&self) -> u32 {
        self.fall.unwrap_or(1)
    }
}

/// The advanced check method (`option httpcheck|tcpcheck|arpcheck|icmpcheck`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "method")]
pub enum CheckMethod {
    Http(HttpCheck),
    Tcp,
    Arp {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iface: Option<IfName>,
    },
    Icmp,
}

impl CheckMethod {
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Http(_) => "httpcheck",
            Self::Tcp => "tcpcheck",
            Self::Arp { .. } => "arpcheck",
            Self::Icmp => "icmpcheck",
        }
    }

    /// Whether the check connects to a port (so `check port` means something).
    pub fn uses_port(&self) -> bool {
        matches!(self, Self::Http(_) | Self::Tcp)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpCheck {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "status-code"
    )]
    pub statuscode: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
}

impl HttpCheck {
    pub fn uri(&self) -> &str {
        self.uri.as_deref().unwrap_or("/")
    }

    pub fn statuscode(&self) -> u16 {
        self.statuscode.unwrap_or(200)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Persistence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// The netmask as a prefix length: written dotted in `lvs.conf` for an IPv4
    /// director, as a number 0-128 for an IPv6 one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<u8>,
    /// Where the netmask was written, for diagnostics.
    #[serde(skip)]
    pub netmask_loc: Loc,
}

impl Persistence {
    pub const DEFAULT_TIMEOUT_S: u32 = 300;

    pub fn timeout(&self) -> u32 {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT_S)
    }

    /// Clients whose addresses share this many leading bits stick together; by
    /// default each address on its own.
    pub fn netmask_prefix(&self, family: Family) -> u8 {
        self.netmask.unwrap_or(family.max_prefix())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    pub name: Spanned<ServerName>,
    pub address: IpAddr,
    /// No port: the packet's own destination port is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub check: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sorry: bool,
    /// Where the address was written, for diagnostics.
    #[serde(skip)]
    pub loc: Loc,
}

impl Server {
    /// IPVS's default weight.
    pub fn weight(&self) -> u16 {
        self.weight.unwrap_or(1)
    }
}
