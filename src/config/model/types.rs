//! Value types shared by the three files: names, addresses, ports, locations.
//! Each is parsed once at the edge and trusted afterwards.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// Where a value was written: 1-based line and column (in characters).
///
/// A location never takes part in equality or hashing, so a configuration equals
/// itself wherever its text sits — `parse(print(c)) == c` compares meaning, not layout.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub const fn new(line: u32, col: u32) -> Self {
        Self { line, col }
    }
}

impl PartialEq for Loc {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Loc {}

impl std::hash::Hash for Loc {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

/// A value with the place it was written. Serializes as the bare value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Spanned<T> {
    pub value: T,
    #[serde(skip)]
    pub loc: Loc,
}

impl<T> Spanned<T> {
    pub const fn new(value: T, loc: Loc) -> Self {
        Self { value, loc }
    }

    /// A value built in code rather than read from a file.
    pub fn unplaced(value: T) -> Self {
        Self {
            value,
            loc: Loc::default(),
        }
    }
}

impl<T> Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The rules a kind of name follows, as the reference documents them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRules {
    pub what: &'static str,
    pub max_len: Option<usize>,
    pub allows_dot: bool,
    pub charset_text: &'static str,
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $rules:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub const RULES: NameRules = $rules;

            pub fn new(text: &str) -> Result<Self, String> {
                check_name(text, &Self::RULES).map(|()| Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(text: String) -> Result<Self, String> {
                check_name(&text, &Self::RULES).map(|()| Self(text))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(
    /// A Linux interface name: at most 15 characters (IFNAMSIZ - 1).
    IfName,
    NameRules {
        what: "interface name",
        max_len: Some(15),
        allows_dot: true,
        charset_text: "letters, digits, `.`, `-` and `_`",
    }
);

name_type!(
    /// A flow or outflow name: alphanumerics, `-` and `_`, at most 27 characters.
    FlowName,
    NameRules {
        what: "flow name",
        max_len: Some(27),
        allows_dot: false,
        charset_text: "letters, digits, `-` and `_`",
    }
);

name_type!(
    /// A director (farm) name: alphanumerics, dot, dash and underscore.
    DirectorName,
    NameRules {
        what: "director name",
        max_len: None,
        allows_dot: true,
        charset_text: "letters, digits, `.`, `-` and `_`",
    }
);

name_type!(
    /// A real server's name inside its director.
    ServerName,
    NameRules {
        what: "server name",
        max_len: None,
        allows_dot: true,
        charset_text: "letters, digits, `.`, `-` and `_`",
    }
);

/// Stands in for a name that could not be read, so a section's body can still be checked.
pub(crate) trait Placeholder {
    fn placeholder() -> Self;
}

impl Placeholder for IfName {
    fn placeholder() -> Self {
        Self("-".to_owned())
    }
}

impl Placeholder for DirectorName {
    fn placeholder() -> Self {
        Self("-".to_owned())
    }
}

fn check_name(text: &str, rules: &NameRules) -> Result<(), String> {
    if text.is_empty() {
        return Err(format!("{} is empty", rules.what));
    }
    if let Some(bad) = text.chars().find(|&c| {
        !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || (c == '.' && rules.allows_dot))
    }) {
        return Err(format!(
            "{} `{text}` contains `{bad}`; use only {}",
            rules.what, rules.charset_text
        ));
    }
    if rules.allows_dot && (text == "." || text == "..") {
        return Err(format!("{} cannot be `{text}`", rules.what));
    }
    if let Some(max) = rules.max_len
        && text.len() > max
    {
        return Err(format!(
            "{} `{text}` is {} characters long; the limit is {max}",
            rules.what,
            text.len()
        ));
    }
    Ok(())
}

/// An address family. A director, a route or a flow rule belongs to one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::Ipv4,
            IpAddr::V6(_) => Self::Ipv6,
        }
    }

    /// The longest prefix an address of this family has.
    pub fn max_prefix(self) -> u8 {
        match self {
            Self::Ipv4 => 32,
            Self::Ipv6 => 128,
        }
    }

    /// As administrators say it: `IPv4`, `IPv6`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        }
    }

    /// The kernel's number (`AF_INET`, `AF_INET6`).
    pub fn af(self) -> u16 {
        match self {
            Self::Ipv4 => 2,
            Self::Ipv6 => 10,
        }
    }

    /// The unspecified address: the destination of a default route.
    pub fn unspecified(self) -> IpAddr {
        match self {
            Self::Ipv4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Self::Ipv6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 or IPv6 address with a prefix length, e.g. `172.16.100.5/24` or
/// `2001:db8::5/64`. The address may have host bits set: an interface address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        (prefix <= Family::of(addr).max_prefix()).then_some(Self { addr, prefix })
    }

    /// The address alone: `/32` or `/128`.
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix: Family::of(addr).max_prefix(),
        }
    }

    /// `0.0.0.0/0` or `::/0`.
    pub fn any(family: Family) -> Self {
        Self {
            addr: family.unspecified(),
            prefix: 0,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    /// As `lvs.conf` and `flows.conf` write it: a host without its prefix.
    pub fn shortest(&self) -> String {
        if self.is_host() {
            self.addr.to_string()
        } else {
            self.to_string()
        }
    }

    pub fn is_host(&self) -> bool {
        self.prefix == self.family().max_prefix()
    }

    /// The network address: the address with its host bits cleared.
    pub fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(addr) => IpAddr::V4(Ipv4Addr::from(u32::from(addr) & v4_mask(self.prefix))),
            IpAddr::V6(addr) => IpAddr::V6(Ipv6Addr::from(u128::from(addr) & v6_mask(self.prefix))),
        }
    }

    pub fn has_host_bits(&self) -> bool {
        self.network() != self.addr
    }

    /// Whether `addr` lies in this network; never for an address of the other family.
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family()
            && IpNet {
                addr,
                prefix: self.prefix,
            }
            .network()
                == self.network()
    }
}

fn v4_mask(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn v6_mask(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` needs a prefix length"))?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{addr}` is not an IP address"))?;
        let max = Family::of(addr).max_prefix();
        prefix
            .parse()
            .ok()
            .and_then(|p| IpNet::new(addr, p))
            .ok_or_else(|| format!("`{prefix}` is not a prefix length 0-{max}"))
    }
}

impl From<IpNet> for String {
    fn from(net: IpNet) -> String {
        net.to_string()
    }
}

pub fn prefix_to_mask(prefix: u8) -> Ipv4Addr {
    Ipv4Addr::from(v4_mask(prefix))
}

/// The prefix length of a contiguous dotted netmask, or `None` for a mask with holes.
pub fn mask_to_prefix(mask: Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let prefix = bits.leading_ones();
    (bits.checked_shl(prefix).unwrap_or(0) == 0).then_some(prefix as u8)
}

/// `10.0.0.1:80`, `[2001:db8::1]:80`, or the bare address without a port, as
/// `lvs.conf` writes a VIP or a server.
pub fn endpoint(address: IpAddr, port: Option<Port>) -> String {
    port.map_or(address.to_string(), |p| {
        std::net::SocketAddr::new(address, p.get()).to_string()
    })
}

/// A TCP or UDP port, 1-65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub struct Port(u16);

impl Port {
    pub fn new(port: u16) -> Option<Self> {
        (port != 0).then_some(Self(port))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl TryFrom<u16> for Port {
    type Error = String;
    fn try_from(port: u16) -> Result<Self, String> {
        Self::new(port).ok_or_else(|| "port 0 is not a port".to_owned())
    }
}

impl From<Port> for u16 {
    fn from(port: Port) -> u16 {
        port.0
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A port or an inclusive range `first:last` with `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    first: Port,
    last: Port,
}

impl PortRange {
    pub fn new(first: Port, last: Port) -> Option<Self> {
        (first <= last).then_some(Self { first, last })
    }

    pub fn single(port: Port) -> Self {
        Self {
            first: port,
            last: port,
        }
    }

    pub fn first(&self) -> Port {
        self.first
    }

    pub fn last(&self) -> Port {
        self.last
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}:{}", self.first, self.last)
        }
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let port = |t: &str| {
            t.parse::<u16>()
                .ok()
                .and_then(Port::new)
                .ok_or_else(|| format!("`{t}` is not a port 1-65535"))
        };
        match text.split_once(':') {
            None => port(&text).map(Self::single),
            Some((a, b)) => Self::new(port(a)?, port(b)?)
                .ok_or_else(|| format!("port range `{text}` ends before it starts")),
        }
    }
}

impl From<PortRange> for String {
    fn from(range: PortRange) -> String {
        range.to_string()
    }
}

/// A routing table id. 0, 253 and 255 are the kernel's own; 254 is `main`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct TableId(u32);

impl TableId {
    pub const MAIN: u32 = 254;

    pub fn new(id: u32) -> Result<Self, String> {
        match id {
            0 => Err("table 0 is not a table (it means \"unspecified\")".to_owned()),
            253 => Err("table 253 is the kernel's `default` table".to_owned()),
            255 => Err("table 255 is the kernel's `local` table".to_owned()),
            _ => Ok(Self(id)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for TableId {
    type Error = String;
    fn try_from(id: u32) -> Result<Self, String> {
        Self::new(id)
    }
}

impl From<TableId> for u32 {
    fn from(id: TableId) -> u32 {
        id.0
    }
}

impl fmt::Display for TableId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A layer-4 protocol a director or a flow rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

impl Protocol {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Icmp => "icmp",
            Self::Icmpv6 => "icmpv6",
        }
    }

    /// The family an ICMP protocol belongs to; TCP and UDP run over both.
    pub fn family(self) -> Option<Family> {
        match self {
            Self::Icmp => Some(Family::Ipv4),
            Self::Icmpv6 => Some(Family::Ipv6),
            Self::Tcp | Self::Udp => None,
        }
    }

    pub fn is_icmp(self) -> bool {
        matches!(self, Self::Icmp | Self::Icmpv6)
    }

    pub fn has_ports(self) -> bool {
        matches!(self, Self::Tcp | Self::Udp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_masks_convert_only_when_contiguous() {
        assert_eq!(mask_to_prefix("255.255.255.0".parse().unwrap()), Some(24));
        assert_eq!(mask_to_prefix("255.255.255.255".parse().unwrap()), Some(32));
        assert_eq!(mask_to_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(mask_to_prefix("255.0.255.0".parse().unwrap()), None);
        for prefix in 0..=32 {
            assert_eq!(mask_to_prefix(prefix_to_mask(prefix)), Some(prefix));
        }
    }

    #[test]
    fn networks_of_either_family_hold_only_their_own_addresses() {
        let net = |t: &str| IpNet::try_from(t.to_owned()).expect("a network");
        let v6 = net("2001:db8::5/64");
        assert_eq!(v6.network(), "2001:db8::".parse::<IpAddr>().unwrap());
        assert!(v6.has_host_bits());
        assert!(v6.contains("2001:db8::ffff".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(!net("0.0.0.0/0").contains("::1".parse().unwrap()));
        assert!(net("::/0").contains("2001:db8::1".parse().unwrap()));
        assert!(net("10.0.0.0/8").contains("10.1.2.3".parse().unwrap()));
        assert_eq!(net("2001:db8::1/128").shortest(), "2001:db8::1");
        assert_eq!(IpNet::any(Family::Ipv6).to_string(), "::/0");
        assert!(IpNet::try_from("2001:db8::/129".to_owned()).is_err());
        assert!(IpNet::new("10.0.0.1".parse().unwrap(), 33).is_none());
    }

    #[test]
    fn names_follow_their_documented_rules() {
        assert!(FlowName::new("return-eth1").is_ok());
        assert!(FlowName::new("a.b").is_err());
        assert!(FlowName::new(&"x".repeat(28)).is_err());
        assert!(FlowName::new(&"x".repeat(27)).is_ok());
        assert!(IfName::new("bond0.100.backup").is_err());
        assert!(IfName::new("eth/0").is_err());
        assert!(IfName::new("bond0.100").is_ok());
        assert!(DirectorName::new("web.farm_1").is_ok());
        assert!(DirectorName::new("web farm").is_err());
    }

    #[test]
    fn location_is_ignored_by_equality() {
        let a = Spanned::new(1, Loc::new(1, 1));
        let b = Spanned::new(1, Loc::new(9, 9));
        assert_eq!(a, b);
        assert_ne!(a, Spanned::new(2, Loc::new(1, 1)));
    }
}
