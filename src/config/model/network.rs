//! `network.conf`: one `service network IF` section per interface.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::types::{Family, IfName, IpNet, Loc, Spanned, TableId};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    pub interfaces: Vec<Interface>,
    /// `service vrrp`: this box is one of an HA pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<VrrpService>,
}

impl NetworkConfig {
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name.as_str() == name)
    }

    /// The bond that enslaves `name`, if any.
    pub fn bond_of(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| {
            i.bond()
                .is_some_and(|b| b.slaves.iter().any(|s| s.as_str() == name))
        })
    }

    /// Every VRRP instance keepalived runs for this box: one per interface and
    /// family of its `vrrp address` lines, in file order, IPv4 first. An
    /// interface without `vrrp id` (which the validator refuses) has none.
    pub fn vrrp_instances(&self) -> Vec<VrrpInstance<'_>> {
        let mut instances = Vec::new();
        for interface in &self.interfaces {
            let Some(vrrp) = &interface.vrrp else {
                continue;
            };
            let Some(id) = vrrp.id() else {
                continue;
            };
            for family in [Family::Ipv4, Family::Ipv6] {
                let addresses: Vec<IpNet> = vrrp
                    .addresses
                    .iter()
                    .map(|a| a.value)
                    .filter(|a| a.family() == family)
                    .collect();
                if !addresses.is_empty() {
                    instances.push(VrrpInstance {
                        interface,
                        family,
                        id,
                        prio: vrrp.prio(),
                        addresses,
                    });
                }
            }
        }
        instances
    }

    /// The `vrrp address`es of interface `name`: keepalived's, never the
    /// network engine's.
    pub fn vips_of<'a>(&'a self, name: &str) -> impl Iterator<Item = IpNet> + 'a {
        self.interface(name)
            .and_then(|i| i.vrrp.as_ref())
            .into_iter()
            .flat_map(|v| v.addresses.iter().map(|a| a.value))
    }

    /// The IPVS connection sync id: the lowest `vrrp id` of the box.
    pub fn sync_id(&self) -> Option<u32> {
        self.interfaces
            .iter()
            .filter_map(|i| i.vrrp.as_ref()?.id())
            .min()
    }

    /// Every table id that some route fills.
    pub fn route_tables(&self) -> impl Iterator<Item = TableId> + '_ {
        self.interfaces
            .iter()
            .flat_map(|i| &i.routes)
            .filter_map(|r| r.table.as_ref().map(|t| t.value))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Interface {
    pub name: Spanned<IfName>,
    pub kind: LinkKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<Spanned<u32>>,
    /// `auto on|off`: bring the link up on apply. Unset means on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Spanned<IpNet>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// The interface's `vrrp` lines: one VRRP instance that keepalived runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp: Option<InterfaceVrrp>,
}

impl Interface {
    pub fn new(name: Spanned<IfName>) -> Self {
        Self {
            name,
            kind: LinkKind::Ethernet,
            mtu: None,
            auto: None,
            addresses: Vec::new(),
            routes: Vec::new(),
            vrrp: None,
        }
    }

    pub fn bond(&self) -> Option<&Bond> {
        match &self.kind {
            LinkKind::Bonding(bond) => Some(bond),
            _ => None,
        }
    }

    pub fn vlan(&self) -> Option<&Vlan> {
        match &self.kind {
            LinkKind::Vlan(vlan) => Some(vlan),
            _ => None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.auto.unwrap_or(true)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum LinkKind {
    Ethernet,
    Bonding(Bond),
    Vlan(Vlan),
}

impl LinkKind {
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Ethernet => "ethernet",
            Self::Bonding(_) => "bonding",
            Self::Vlan(_) => "vlan",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Bond {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<BondMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub miimon: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updelay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downdelay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary: Option<Spanned<IfName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xmit_hash_policy: Option<XmitHashPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lacp_rate: Option<LacpRate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub slaves: Vec<Spanned<IfName>>,
    /// Where the first bonding-specific line sits, for diagnostics.
    #[serde(skip)]
    pub loc: Loc,
}

impl Bond {
    /// The reference's default mode.
    pub const DEFAULT_MODE: BondMode = BondMode::ActiveBackup;
    /// The reference's default up and down delays, in milliseconds.
    pub const DEFAULT_DELAY_MS: u32 = 1000;
    /// Link monitoring interval when none is written. The reference leaves it
    /// unstated; without MII monitoring the bond never notices a dead slave and
    /// the delays above mean nothing, so we monitor every 100 ms.
    pub const DEFAULT_MIIMON_MS: u32 = 100;

    pub fn mode(&self) -> BondMode {
        self.mode.unwrap_or(Self::DEFAULT_MODE)
    }

    pub fn miimon(&self) -> u32 {
        self.miimon.unwrap_or(Self::DEFAULT_MIIMON_MS)
    }

    pub fn updelay(&self) -> u32 {
        self.updelay.unwrap_or(Self::DEFAULT_DELAY_MS)
    }

    pub fn downdelay(&self) -> u32 {
        self.downdelay.unwrap_or(Self::DEFAULT_DELAY_MS)
    }
}

/// The seven Linux bonding modes, numbered as the kernel numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BondMode {
    #[serde(rename = "balance-rr")]
    BalanceRr,
    #[serde(rename = "active-backup")]
    ActiveBackup,
    #[serde(rename = "balance-xor")]
    BalanceXor,
    #[serde(rename = "broadcast")]
    Broadcast,
    #[serde(rename = "802.3ad")]
    Lacp,
    #[serde(rename = "balance-tlb")]
    BalanceTlb,
    #[serde(rename = "balance-alb")]
    BalanceAlb,
}

impl BondMode {
    pub const ALL: [Self; 7] = [
        Self::BalanceRr,
        Self::ActiveBackup,
        Self::BalanceXor,
        Self::Broadcast,
        Self::Lacp,
        Self::BalanceTlb,
        Self::BalanceAlb,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::BalanceRr => "balance-rr",
            Self::ActiveBackup => "active-backup",
            Self::BalanceXor => "balance-xor",
            Self::Broadcast => "broadcast",
            Self::Lacp => "802.3ad",
            Self::BalanceTlb => "balance-tlb",
            Self::BalanceAlb => "balance-alb",
        }
    }

    /// The kernel's mode number (`mode=N`).
    pub fn number(self) -> u8 {
        Self::ALL.iter().position(|&m| m == self).unwrap_or(0) as u8
    }

    pub fn from_keyword(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.keyword() == text)
            .or_else(|| {
                text.parse::<usize>()
                    .ok()
                    .and_then(|n| Self::ALL.get(n).copied())
            })
    }

    /// Only these modes have a primary slave.
    pub fn uses_primary(self) -> bool {
        matches!(
            self,
            Self::ActiveBackup | Self::BalanceTlb | Self::BalanceAlb
        )
    }

    /// Only these modes pick a slave by hashing.
    pub fn uses_xmit_hash(self) -> bool {
        matches!(self, Self::BalanceXor | Self::Lacp | Self::BalanceTlb)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum XmitHashPolicy {
    #[serde(rename = "layer2")]
    Layer2,
    #[serde(rename = "layer3+4")]
    Layer34,
    #[serde(rename = "layer2+3")]
    Layer23,
    #[serde(rename = "encap2+3")]
    Encap23,
    #[serde(rename = "encap3+4")]
    Encap34,
    #[serde(rename = "vlan+srcmac")]
    VlanSrcMac,
}

impl XmitHashPolicy {
    /// In the kernel's numbering (`xmit_hash_policy=N`).
    pub const ALL: [Self; 6] = [
        Self::Layer2,
        Self::Layer34,
        Self::Layer23,
        Self::Encap23,
        Self::Encap34,
        Self::VlanSrcMac,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Self::Layer2 => "layer2",
            Self::Layer34 => "layer3+4",
            Self::Layer23 => "layer2+3",
            Self::Encap23 => "encap2+3",
            Self::Encap34 => "encap3+4",
            Self::VlanSrcMac => "vlan+srcmac",
        }
    }

    pub fn from_keyword(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.keyword() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LacpRate {
    Slow,
    Fast,
}

impl LacpRate {
    pub fn keyword(self) -> &'static str {
        match self {
            Self::Slow => "slow",
            Self::Fast => "fast",
        }
    }

    pub fn from_keyword(text: &str) -> Option<Self> {
        match text {
            "slow" | "0" => Some(Self::Slow),
            "fast" | "1" => Some(Self::Fast),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vlan {
    pub id: Spanned<u16>,
    pub parent: Spanned<IfName>,
}

impl Vlan {
    pub const ID_RANGE: std::ops::RangeInclusive<u16> = 1..=4094;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub destination: RouteDestination,
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<Spanned<TableId>>,
    #[serde(skip)]
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteDestination {
    Default,
    #[serde(untagged)]
    Net(IpNet),
}

impl Route {
    /// The network the route leads to; `default` is `0.0.0.0/0` or `::/0` by the
    /// gateway's family.
    pub fn destination_net(&self) -> IpNet {
        match self.destination {
            RouteDestination::Default => IpNet::any(self.family()),
            RouteDestination::Net(net) => net,
        }
    }

    pub fn family(&self) -> Family {
        Family::of(self.gateway)
    }
}

/// `vrrp id N`, `vrrp prio N` and `vrrp address A/P` of one interface. The
/// addresses belong to keepalived, which adds them on the master: the network
/// engine never adds or removes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InterfaceVrrp {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prio: Option<Spanned<u32>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Spanned<IpNet>>,
    /// Where the first `vrrp` line sits, for diagnostics.
    #[serde(skip)]
    pub loc: Loc,
}

impl InterfaceVrrp {
    pub const ID_RANGE: std::ops::RangeInclusive<u32> = 1..=255;
    pub const PRIO_RANGE: std::ops::RangeInclusive<u32> = 1..=254;
    /// keepalived's default priority when `vrrp prio` is not written.
    pub const DEFAULT_PRIO: u32 = 100;

    pub fn id(&self) -> Option<u32> {
        self.id.map(|id| id.value)
    }

    pub fn prio(&self) -> u32 {
        self.prio.map_or(Self::DEFAULT_PRIO, |p| p.value)
    }
}

/// One keepalived `vrrp_instance`: the VIPs of one family on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance<'a> {
    pub interface: &'a Interface,
    pub family: Family,
    pub id: u32,
    pub prio: u32,
    pub addresses: Vec<IpNet>,
}

impl VrrpInstance<'_> {
    /// keepalived's name for it: the interface's (`eth0`), with `-6` for the
    /// IPv6 instance (`eth0-6`).
    pub fn name(&self) -> String {
        match self.family {
            Family::Ipv4 => self.interface.name.value.to_string(),
            Family::Ipv6 => format!("{}-6", self.interface.name.value),
        }
    }

    /// The peers this instance sends its adverts to: those in a subnet of its
    /// interface of its family. Empty means multicast.
    pub fn unicast_peers(&self, service: &VrrpService) -> Vec<IpAddr> {
        service
            .peers
            .iter()
            .map(|p| p.value)
            .filter(|&peer| {
                Family::of(peer) == self.family
                    && self.interface.addresses.iter().any(|a| a.contains(peer))
            })
            .collect()
    }
}

/// `service vrrp`: what the two appliances of a pair share.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct VrrpService {
    /// `sync-iface IF`: the link the kernel's IPVS connection sync runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_iface: Option<Spanned<IfName>>,
    /// `peer ADDR`, repeatable: the other appliance. An instance sends unicast
    /// adverts to the peers inside its interface's subnets (multicast when
    /// none is); `lbconsole sync` uses the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<Spanned<IpAddr>>,
    /// `track-health on|off`: lower the priority while a director has no server up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_health: Option<bool>,
    /// `advert MS`: the advertisement interval in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advert_ms: Option<Spanned<u32>>,
    /// `preempt on|off`: a box of higher priority takes the addresses back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preempt: Option<bool>,
    /// Where `service vrrp` is, for diagnostics.
    #[serde(skip)]
    pub loc: Loc,
}

impl VrrpService {
    /// keepalived's and ALOHA's default: one advertisement a second.
    pub const DEFAULT_ADVERT_MS: u32 = 1000;
    /// VRRPv3 counts in centiseconds, on 12 bits.
    pub const ADVERT_RANGE_MS: std::ops::RangeInclusive<u32> = 10..=40950;

    pub fn advert_ms(&self) -> u32 {
        self.advert_ms.map_or(Self::DEFAULT_ADVERT_MS, |a| a.value)
    }

    pub fn tracks_health(&self) -> bool {
        self.track_health.unwrap_or(false)
    }

    pub fn preempts(&self) -> bool {
        self.preempt.unwrap_or(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse::parse_network;

    fn network(text: &str) -> NetworkConfig {
        let (config, diagnostics) = parse_network(text.as_bytes());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        config
    }

    const PAIR: &str = "service network eth0\n ip address 10.0.0.2/24\n ip address 2001:db8::2/64\n vrrp id 51\n vrrp prio 150\n vrrp address 2001:db8::100/64\n vrrp address 10.0.0.100/24\nservice network eth1\n ip address 10.1.0.2/24\n vrrp id 12\n vrrp address 10.1.0.1/24\nservice network eth2\n ip address 10.2.0.2/24\nservice vrrp\n peer 2001:db8::3\n peer 10.9.0.3\n peer 10.1.0.3\n";

    #[test]
    fn each_interface_and_family_is_one_instance_ipv4_first() {
        let config = network(PAIR);
        let instances = config.vrrp_instances();
        let summary: Vec<(String, u32, u32, Vec<String>)> = instances
            .iter()
            .map(|i| {
                let addresses = i.addresses.iter().map(ToString::to_string).collect();
                (i.name(), i.id, i.prio, addresses)
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("eth0".into(), 51, 150, vec!["10.0.0.100/24".into()]),
                ("eth0-6".into(), 51, 150, vec!["2001:db8::100/64".into()]),
                (
                    "eth1".into(),
                    12,
                    InterfaceVrrp::DEFAULT_PRIO,
                    vec!["10.1.0.1/24".into()]
                ),
            ]
        );
        assert_eq!(config.sync_id(), Some(12));
        assert_eq!(config.vips_of("eth0").count(), 2);
        assert_eq!(config.vips_of("eth2").count(), 0);
    }

    #[test]
    fn an_instance_adverts_by_unicast_to_the_peers_on_its_subnets() {
        let config = network(PAIR);
        let service = config.vrrp.as_ref().expect("service vrrp");
        let peers: Vec<Vec<String>> = config
            .vrrp_instances()
            .iter()
            .map(|i| {
                i.unicast_peers(service)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            })
            .collect();
        assert_eq!(
            peers,
            [
                Vec::<String>::new(),
                vec!["2001:db8::3".to_owned()],
                vec!["10.1.0.3".to_owned()],
            ]
        );
    }

    #[test]
    fn service_vrrp_defaults_follow_keepalived() {
        let service = VrrpService::default();
        assert_eq!(service.advert_ms(), 1000);
        assert!(service.preempts());
        assert!(!service.tracks_health());
        assert_eq!(network("").sync_id(), None);
    }
}
