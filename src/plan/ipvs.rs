//! The LB Layer4 tab's kernel state: IPVS virtual services and their real servers,
//! the state `lvs.conf` asks for, and the operations between them.
//!
//! lbconsole owns the whole IPVS table: a service the file does not describe is
//! deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Serialize, Serializer};

use crate::config::model::LvsConfig;
use crate::config::model::lvs::{Director, ForwardMode, Scheduler, Server, ServiceProtocol};
use crate::config::model::types::{Family, prefix_to_mask};

/// IPPROTO_TCP and IPPROTO_UDP, as IPVS keys services.
pub const TCP: u16 = 6;
pub const UDP: u16 = 17;

/// The kernel's scheduler flag `IP_VS_SVC_F_PERSISTENT`.
pub const FLAG_PERSISTENT: u32 = 0x0001;
/// The kernel's scheduler flag `IP_VS_SVC_F_ONEPACKET`.
pub const FLAG_ONEPACKET: u32 = 0x0004;

/// Firewall marks of directors without a VIP are taken from this range, so that
/// Flows can tell them from its own marks (routing tables).
pub const DIRECTOR_MARKS: std::ops::RangeInclusive<u32> = 0x0001_0000..=0x0001_ffff;

/// How IPVS identifies a virtual service. A service belongs to one address
/// family (`IPVS_SVC_ATTR_AF`): a VIP's own, or for a firewall mark the
/// family of the packets it takes (IPVS looks an fwmark service up by family
/// and mark, so one mark may have a service in each family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKey {
    /// An address, port (0: every port) and protocol.
    Vip {
        protocol: u16,
        address: IpAddr,
        port: u16,
    },
    /// A firewall mark, set by a flow, on packets of `family`.
    Fwmark { mark: u32, family: Family },
}

impl ServiceKey {
    /// The family of the packets the service takes (`IPVS_SVC_ATTR_AF`).
    pub fn family(&self) -> Family {
        match *self {
            Self::Vip { address, .. } => Family::of(address),
            Self::Fwmark { family, .. } => family,
        }
    }
}

/// `tcp 192.0.2.10:80`, `tcp [2001:db8::10]:80`, `fwmark 0x10001` (IPv4),
/// `fwmark 0x10001 IPv6`.
impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Vip {
                protocol,
                address,
                port,
            } => write!(
                f,
                "{} {}",
                protocol_name(protocol),
                SocketAddr::new(address, port)
            ),
            Self::Fwmark {
                mark,
                family: Family::Ipv4,
            } => write!(f, "fwmark {mark:#x}"),
            Self::Fwmark {
                mark,
                family: Family::Ipv6,
            } => write!(f, "fwmark {mark:#x} IPv6"),
        }
    }
}

fn protocol_name(protocol: u16) -> &'static str {
    match protocol {
        TCP => "tcp",
        UDP => "udp",
        _ => "proto?",
    }
}

/// The persistence netmask as the kernel keeps it (`IPVS_SVC_ATTR_NETMASK`):
/// connections from clients within one netmask go to one real server. An
/// IPv4 service keeps a dotted mask; an IPv6 one a prefix length, which the
/// kernel insists is 1-128 (so 128 when the service is not persistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    Ipv4(Ipv4Addr),
    Ipv6(u8),
}

impl Netmask {
    /// The netmask of a `prefix`-bit network of `family` (at most the
    /// family's longest prefix).
    pub fn prefix(family: Family, prefix: u8) -> Self {
        match family {
            Family::Ipv4 => Self::Ipv4(prefix_to_mask(prefix.min(32))),
            Family::Ipv6 => Self::Ipv6(prefix.min(128)),
        }
    }

    /// One client per group: the netmask of a service that is not persistent.
    pub fn host(family: Family) -> Self {
        Self::prefix(family, family.max_prefix())
    }

    pub fn family(self) -> Family {
        match self {
            Self::Ipv4(_) => Family::Ipv4,
            Self::Ipv6(_) => Family::Ipv6,
        }
    }

    /// The attribute's value: an IPv4 mask in network order; an IPv6 prefix
    /// length as a host-order number (the kernel reads the same `__be32` field
    /// as one: `(__force __u32) svc->netmask`).
    pub fn kernel_value(self) -> [u8; 4] {
        match self {
            Self::Ipv4(mask) => mask.octets(),
            Self::Ipv6(prefix) => u32::from(prefix).to_ne_bytes(),
        }
    }

    /// The netmask the kernel reports for a service of `family`; `None` for
    /// an IPv6 prefix length beyond 128.
    pub fn from_kernel(family: Family, value: [u8; 4]) -> Option<Self> {
        match family {
            Family::Ipv4 => Some(Self::Ipv4(Ipv4Addr::from(value))),
            Family::Ipv6 => u8::try_from(u32::from_ne_bytes(value))
                .ok()
                .filter(|&prefix| prefix <= 128)
                .map(Self::Ipv6),
        }
    }
}

/// `255.255.255.0` for IPv4, `/64` for IPv6, as `ipvsadm -Ln` shows them
/// (but for the slash, which tells a prefix from a mask).
impl fmt::Display for Netmask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4(mask) => write!(f, "{mask}"),
            Self::Ipv6(prefix) => write!(f, "/{prefix}"),
        }
    }
}

impl Serialize for Netmask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A virtual service's settings (everything but its key and destinations).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceSettings {
    /// The kernel's scheduler name: `wrr`, `wlc`, `sh`, …
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags lbconsole sets (persistent, one-packet).
    pub flags: u32,
    /// Persistence timeout in seconds (meaningful when persistent).
    pub timeout: u32,
    /// Persistence netmask, of the service's family (the host's when not
    /// persistent).
    pub netmask: Netmask,
    /// The protocol of an fwmark service (IPVS keeps one); for a VIP it is in the key.
    pub fwmark_protocol: u16,
}

impl fmt::Display for ServiceSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scheduler {}", self.scheduler)?;
        if self.flags & FLAG_PERSISTENT != 0 {
            write!(f, ", persistent {}s netmask {}", self.timeout, self.netmask)?;
        }
        if self.flags & FLAG_ONEPACKET != 0 {
            f.write_str(", one-packet")?;
        }
        Ok(())
    }
}

/// How IPVS forwards to a real server (`IP_VS_CONN_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Forward {
    /// `IP_VS_CONN_F_MASQ` (0): NAT.
    Masquerade,
    /// `IP_VS_CONN_F_TUNNEL` (2): IP-in-IP.
    Tunnel,
    /// `IP_VS_CONN_F_DROUTE` (3): direct routing ("gateway").
    Route,
}

impl Forward {
    pub fn kernel_value(self) -> u32 {
        match self {
            Self::Masquerade => 0,
            Self::Tunnel => 2,
            Self::Route => 3,
        }
    }

    pub fn from_kernel(value: u32) -> Option<Self> {
        match value & 0x7 {
            0 => Some(Self::Masquerade),
            2 => Some(Self::Tunnel),
            3 => Some(Self::Route),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Masquerade => "masq",
            Self::Tunnel => "tunnel",
            Self::Route => "route",
        }
    }
}

/// A real server as IPVS keys it within a service. Its family is its
/// address's (`IPVS_DEST_ATTR_ADDR_FAMILY`); the kernel takes one of the other
/// family than the service's only in tunnel mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DestKey {
    pub address: IpAddr,
    pub port: u16,
}

impl DestKey {
    pub fn family(&self) -> Family {
        Family::of(self.address)
    }
}

/// `10.0.0.1:80`, `[2001:db8::11]:80`.
impl fmt::Display for DestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SocketAddr::new(self.address, self.port))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DestSettings {
    pub forward: Forward,
    pub weight: u32,
}

impl fmt::Display for DestSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} weight {}", self.forward.name(), self.weight)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub settings: ServiceSettings,
    pub destinations: BTreeMap<DestKey, DestSettings>,
}

/// The whole IPVS table, as far as planning is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpvsState {
    pub services: BTreeMap<ServiceKey, Service>,
}

/// One IPVS change. Each carries what it replaces, so it has an exact inverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum IpvsOp {
    /// A new service with its destinations (one service message, then one per
    /// destination).
    AddService { key: ServiceKey, service: Service },
    /// Deletes a service and, with it, its destinations; `service` is what it
    /// was, to put it back.
    DeleteService { key: ServiceKey, service: Service },
    EditService {
        key: ServiceKey,
        from: ServiceSettings,
        to: ServiceSettings,
    },
    AddDest {
        service: ServiceKey,
        dest: DestKey,
        settings: DestSettings,
    },
    DeleteDest {
        service: ServiceKey,
        dest: DestKey,
        settings: DestSettings,
    },
    EditDest {
        service: ServiceKey,
        dest: DestKey,
        from: DestSettings,
        to: DestSettings,
    },
}

impl IpvsOp {
    /// What the plan says beside the operation, when its effect is not obvious.
    pub fn note(&self) -> Option<&'static str> {
        match self {
            // The kernel unbinds the old scheduler, waits for RCU, then binds the
            // new one: SYNs that arrive in between find none and are refused.
            Self::EditService { from, to, .. } if from.scheduler != to.scheduler => {
                Some("new connections are refused for a moment while the scheduler changes")
            }
            _ => None,
        }
    }

    pub fn inverse(&self) -> Self {
        match self.clone() {
            Self::AddService { key, service } => Self::DeleteService { key, service },
            Self::DeleteService { key, service } => Self::AddService { key, service },
            Self::EditService { key, from, to } => Self::EditService {
                key,
                from: to,
                to: from,
            },
            Self::AddDest {
                service,
                dest,
                settings,
            } => Self::DeleteDest {
                service,
                dest,
                settings,
            },
            Self::DeleteDest {
                service,
                dest,
                settings,
            } => Self::AddDest {
                service,
                dest,
                settings,
            },
            Self::EditDest {
                service,
                dest,
                from,
                to,
            } => Self::EditDest {
                service,
                dest,
                from: to,
                to: from,
            },
        }
    }
}

impl fmt::Display for IpvsOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddService { key, service } => write!(
                f,
                "add service {key} ({}) with {} real server(s)",
                service.settings,
                service.destinations.len()
            ),
            Self::DeleteService { key, .. } => write!(f, "delete service {key}"),
            Self::EditService { key, from, to } => {
                write!(f, "set service {key}: {from} -> {to}")
            }
            Self::AddDest {
                service,
                dest,
                settings,
            } => write!(f, "add real server {dest} to {service} ({settings})"),
            Self::DeleteDest { service, dest, .. } => {
                write!(f, "delete real server {dest} from {service}")
            }
            Self::EditDest {
                service,
                dest,
                from,
                to,
            } => write!(f, "set real server {dest} of {service}: {from} -> {to}"),
        }
    }
}

/// The kernel scheduler for a director, as documented in the README. It
/// depends on the `balance` line alone: changing a service's scheduler refuses
/// new connections for a moment, so a weight change (or the health checker's
/// weight 0) must never change it. `roundrobin` is `wrr`, which with equal
/// weights is round robin; `leastconn` is weighted (`wlc`); `srcdst` is `sh` —
/// within one VIP the destination is fixed, so hashing source and destination
/// picks the same server as hashing the source.
pub fn kernel_scheduler(director: &Director) -> &'static str {
    match director.scheduler() {
        Scheduler::RoundRobin => "wrr",
        Scheduler::LeastConn => "wlc",
        Scheduler::LocalityBased => "lblc",
        Scheduler::LocalityBasedReplication => "lblcr",
        Scheduler::Source | Scheduler::SrcDst => "sh",
        Scheduler::Dest => "dh",
        Scheduler::ShortestExpected => "sed",
        Scheduler::NeverQueue => "nq",
        Scheduler::Maglev => "mh",
        Scheduler::WeightedFailover => "fo",
        Scheduler::Overflow => "ovf",
        Scheduler::Twos => "twos",
    }
}

/// The firewall mark of every director without a VIP: a stable hash of its
/// name into [`DIRECTOR_MARKS`], the next free slot on a collision (directors
/// taken in name order), so a mark does not move when other directors change.
pub fn director_marks(config: &LvsConfig) -> BTreeMap<String, u32> {
    let slots = DIRECTOR_MARKS.end() - DIRECTOR_MARKS.start() + 1;
    let mut names: Vec<&str> = config
        .directors
        .iter()
        .filter(|d| d.service.is_none())
        .map(|d| d.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut taken = std::collections::BTreeSet::new();
    let mut marks = BTreeMap::new();
    for name in names {
        let mut slot = fnv1a(name.as_bytes()) % slots;
        while !taken.insert(slot) {
            slot = (slot + 1) % slots;
        }
        marks.insert(name.to_owned(), DIRECTOR_MARKS.start() + slot);
    }
    marks
}

/// FNV-1a: a fixed hash (std's is randomised per process).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &b| {
        (hash ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The key of the service a director becomes: its VIP, or its firewall mark.
pub fn service_key(director: &Director, marks: &BTreeMap<String, u32>) -> ServiceKey {
    match &director.service {
        Some(vip) => ServiceKey::Vip {
            protocol: match vip.protocol() {
                ServiceProtocol::Tcp => TCP,
                ServiceProtocol::Udp => UDP,
            },
            address: vip.address,
            port: vip.port.map_or(0, |p| p.get()),
        },
        None => ServiceKey::Fwmark {
            mark: marks.get(director.name.as_str()).copied().unwrap_or(0),
            family: director.family(),
        },
    }
}

/// Which director each service belongs to, for `status`.
pub fn service_names(config: &LvsConfig) -> BTreeMap<ServiceKey, String> {
    let marks = director_marks(config);
    config
        .directors
        .iter()
        .map(|d| (service_key(d, &marks), d.name.to_string()))
        .collect()
}

/// A real server as IPVS keys it. Only NAT rewrites the port; direct routing and
/// tunnels deliver to the service's own port (0: every port).
pub fn dest_key(forward: Forward, server: &Server, service_port: u16) -> DestKey {
    let port = match forward {
        Forward::Masquerade => server.port.map_or(service_port, |p| p.get()),
        Forward::Route | Forward::Tunnel => service_port,
    };
    DestKey {
        address: server.address,
        port,
    }
}

/// How a director's real servers are reached, as IPVS names it.
pub fn forward(director: &Director) -> Forward {
    match director.forward_mode() {
        ForwardMode::Nat => Forward::Masquerade,
        ForwardMode::Gateway => Forward::Route,
        ForwardMode::Tunnel => Forward::Tunnel,
    }
}

/// The IPVS table `lvs.conf` asks for. Sorry servers are in the table with
/// weight 0, out of rotation, until the health checker brings them in.
pub fn desired(config: &LvsConfig) -> IpvsState {
    let marks = director_marks(config);
    let mut state = IpvsState::default();
    for director in &config.directors {
        let key = service_key(director, &marks);
        let (service_port, fwmark_protocol) = match key {
            ServiceKey::Vip { port, .. } => (port, 0),
            ServiceKey::Fwmark { .. } => (0, TCP),
        };
        let persistence = director.persistence.as_ref();
        let mut flags = 0;
        if persistence.is_some() {
            flags |= FLAG_PERSISTENT;
        }
        if director.onepacket {
            flags |= FLAG_ONEPACKET;
        }
        let settings = ServiceSettings {
            scheduler: kernel_scheduler(director).to_owned(),
            flags,
            timeout: persistence.map_or(0, |p| p.timeout()),
            netmask: persistence.and_then(|p| p.netmask).map_or_else(
                || Netmask::host(key.family()),
                |prefix| Netmask::prefix(key.family(), prefix),
            ),
            fwmark_protocol,
        };
        let forward = forward(director);
        let destinations = director
            .servers
            .iter()
            .map(|server| {
                let weight = if server.sorry {
                    0
                } else {
                    u32::from(server.weight())
                };
                (
                    dest_key(forward, server, service_port),
                    DestSettings { forward, weight },
                )
            })
            .collect();
        state.services.insert(
            key,
            Service {
                settings,
                destinations,
            },
        );
    }
    state
}

/// The operations from `observed` to `desired`: deletions first, then edits,
/// then additions. Unchanged services and destinations are not touched, so
/// their connections live on; a weight change is one edit.
pub fn diff(observed: &IpvsState, desired: &IpvsState) -> Vec<IpvsOp> {
    let mut deletions = Vec::new();
    let mut edits = Vec::new();
    let mut additions = Vec::new();
    for (key, service) in &observed.services {
        if !desired.services.contains_key(key) {
            deletions.push(IpvsOp::DeleteService {
                key: *key,
                service: service.clone(),
            });
        }
    }
    for (key, want) in &desired.services {
        let Some(have) = observed.services.get(key) else {
            additions.push(IpvsOp::AddService {
                key: *key,
                service: want.clone(),
            });
            continue;
        };
        if have.settings != want.settings {
            edits.push(IpvsOp::EditService {
                key: *key,
                from: have.settings.clone(),
                to: want.settings.clone(),
            });
        }
        for (dest, settings) in &have.destinations {
            match want.destinations.get(dest) {
                None => deletions.push(IpvsOp::DeleteDest {
                    service: *key,
                    dest: *dest,
                    settings: *settings,
                }),
                Some(to) if to != settings => edits.push(IpvsOp::EditDest {
                    service: *key,
                    dest: *dest,
                    from: *settings,
                    to: *to,
                }),
                Some(_) => {}
            }
        }
        for (dest, settings) in &want.destinations {
            if !have.destinations.contains_key(dest) {
                additions.push(IpvsOp::AddDest {
                    service: *key,
                    dest: *dest,
                    settings: *settings,
                });
            }
        }
    }
    deletions.extend(edits);
    deletions.extend(additions);
    deletions
}

/// The IPVS table in outline: every service's settings (one cheap dump of the
/// services), and the destinations of a chosen few.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpvsOutline {
    pub settings: BTreeMap<ServiceKey, ServiceSettings>,
    /// The chosen services that exist, whole.
    pub detail: IpvsState,
}

impl IpvsOutline {
    /// Whether the kernel's services are those of `applied` (the table the last
    /// apply left), key for key and setting for setting. Destinations are not
    /// compared: the kernel has no cheap way to count them.
    pub fn agrees_with(&self, applied: &IpvsState) -> bool {
        self.settings.len() == applied.services.len()
            && self.settings.iter().zip(&applied.services).all(
                |((have_key, have), (want_key, want))| {
                    have_key == want_key && *have == want.settings
                },
            )
    }
}

/// The services a change from `applied` to `wanted` touches: added, removed,
/// or with other settings or destinations.
pub fn touched(applied: &IpvsState, wanted: &IpvsState) -> BTreeSet<ServiceKey> {
    let removed = applied
        .services
        .keys()
        .filter(|key| !wanted.services.contains_key(key));
    let changed = wanted
        .services
        .iter()
        .filter(|(key, service)| applied.services.get(key) != Some(service))
        .map(|(key, _)| key);
    removed.chain(changed).copied().collect()
}

/// The services of `state` that `keys` names.
pub fn only(state: &IpvsState, keys: &BTreeSet<ServiceKey>) -> IpvsState {
    IpvsState {
        services: state
            .services
            .iter()
            .filter(|(key, _)| keys.contains(key))
            .map(|(key, service)| (*key, service.clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply;
    use crate::config::parse::parse_lvs;
    use crate::kernel::IpvsBackend;
    use crate::kernel::fake::FakeIpvs;

    fn lvs(text: &str) -> LvsConfig {
        let (config, diagnostics) = parse_lvs(text.as_bytes());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        config
    }

    fn examples() -> LvsConfig {
        lvs(&std::fs::read_to_string("examples/lvs.conf").expect("examples/lvs.conf"))
    }

    fn vip(protocol: u16, address: &str, port: u16) -> ServiceKey {
        ServiceKey::Vip {
            protocol,
            address: address.parse().expect("an address"),
            port,
        }
    }

    fn dest(address: &str, port: u16) -> DestKey {
        DestKey {
            address: address.parse().expect("an address"),
            port,
        }
    }

    #[test]
    fn the_examples_become_the_ipvs_table_the_reference_describes() {
        let config = examples();
        let table = desired(&config);
        let mark = director_marks(&config)["maildirect"];
        assert!(DIRECTOR_MARKS.contains(&mark));

        let mail = &table.services[&ServiceKey::Fwmark {
            mark,
            family: Family::Ipv4,
        }];
        assert_eq!(mail.settings.scheduler, "wrr", "weights 3 and 1 differ");
        assert_eq!(mail.destinations[&dest("10.0.1.11", 0)].weight, 3);

        let web = &table.services[&vip(TCP, "192.168.0.10", 80)];
        assert_eq!(web.settings.scheduler, "wlc");
        assert_eq!(web.settings.flags, FLAG_PERSISTENT);
        assert_eq!(web.settings.timeout, 300);
        assert_eq!(
            web.settings.netmask,
            Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(
            web.destinations[&dest("10.0.2.99", 8080)],
            DestSettings {
                forward: Forward::Masquerade,
                weight: 0
            },
            "a sorry server waits at weight 0"
        );

        let dns = &table.services[&vip(UDP, "192.168.0.11", 53)];
        assert_eq!(
            (dns.settings.scheduler.as_str(), dns.settings.flags),
            ("sh", FLAG_ONEPACKET)
        );
        assert!(dns.destinations.contains_key(&dest("10.0.3.11", 53)));

        let app = &table.services[&vip(TCP, "192.168.0.12", 443)];
        assert_eq!(app.settings.scheduler, "lblc");
        assert_eq!(
            app.destinations[&dest("10.0.4.11", 443)].forward,
            Forward::Route
        );
    }

    #[test]
    fn a_weight_change_is_one_edit_of_one_real_server() {
        let before = desired(&lvs(
            "director web 10.0.0.1:80\n balance leastconn\n server a 10.0.1.1 weight 3\n server b 10.0.1.2 weight 1\n",
        ));
        let after = desired(&lvs(
            "director web 10.0.0.1:80\n balance leastconn\n server a 10.0.1.1 weight 3\n server b 10.0.1.2 weight 2\n",
        ));
        let ops = diff(&before, &after);
        assert_eq!(ops.len(), 1);
        assert_eq!(
            ops[0].to_string(),
            "set real server 10.0.1.2:80 of tcp 10.0.0.1:80: masq weight 1 -> masq weight 2"
        );
        assert_eq!(diff(&after, &after), []);
    }

    #[test]
    fn roundrobin_is_wrr_whatever_the_weights_so_a_weight_change_keeps_the_scheduler() {
        let plan = |from: &str, to: &str| -> Vec<String> {
            diff(&desired(&lvs(from)), &desired(&lvs(to)))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let equal = "director web 10.0.0.1:80\n balance roundrobin\n server a 10.0.1.1\n server b 10.0.1.2\n server s 10.0.1.3 sorry\n";
        let unequal = equal.replace("10.0.1.1\n", "10.0.1.1 weight 3\n");
        let drained = equal.replace("10.0.1.1\n", "10.0.1.1 weight 0\n");
        let removed = equal.replace(" server a 10.0.1.1\n", "");
        for config in [equal, &unequal, &drained, &removed] {
            let table = desired(&lvs(config));
            let service = table.services.values().next().expect("a service");
            assert_eq!(service.settings.scheduler, "wrr", "{config}");
        }
        assert_eq!(
            plan(equal, &unequal),
            ["set real server 10.0.1.1:80 of tcp 10.0.0.1:80: masq weight 1 -> masq weight 3"]
        );
        assert_eq!(
            plan(equal, &drained),
            ["set real server 10.0.1.1:80 of tcp 10.0.0.1:80: masq weight 1 -> masq weight 0"]
        );
        assert_eq!(
            plan(&drained, &removed),
            ["delete real server 10.0.1.1:80 from tcp 10.0.0.1:80"]
        );
    }

    #[test]
    fn a_balance_change_says_that_new_connections_are_refused_for_a_moment() {
        let web = |lines: &str| {
            desired(&lvs(&format!(
                "director web 10.0.0.1:80\n{lines} server a 10.0.1.1\n"
            )))
        };
        let plan = |from: &IpvsState, to: &IpvsState| {
            apply::Plan {
                ipvs: diff(from, to),
                ..apply::Plan::default()
            }
            .to_string()
        };
        let roundrobin = web(" balance roundrobin\n");
        let leastconn = web(" balance leastconn\n");
        assert_eq!(
            plan(&roundrobin, &leastconn),
            "set service tcp 10.0.0.1:80: scheduler wrr -> scheduler wlc  \
             (new connections are refused for a moment while the scheduler changes)\n"
        );
        let persistent = web(" balance leastconn\n option persistence\n");
        assert_eq!(
            plan(&leastconn, &persistent),
            "set service tcp 10.0.0.1:80: scheduler wlc -> scheduler wlc, persistent 300s \
             netmask 255.255.255.255\n",
            "the same scheduler stays bound: nothing is refused"
        );
    }

    #[test]
    fn ipv6_keys_read_with_brackets_and_their_family() {
        let web = vip(TCP, "2001:db8::10", 80);
        assert_eq!(web.to_string(), "tcp [2001:db8::10]:80");
        assert_eq!(web.family(), Family::Ipv6);
        assert_eq!(vip(UDP, "192.0.2.1", 53).family(), Family::Ipv4);
        let real = dest("2001:db8:1::11", 8080);
        assert_eq!(real.to_string(), "[2001:db8:1::11]:8080");
        assert_eq!(real.family(), Family::Ipv6);
        let mark = |family| ServiceKey::Fwmark {
            mark: 0x1_0001,
            family,
        };
        assert_eq!(mark(Family::Ipv4).to_string(), "fwmark 0x10001");
        assert_eq!(mark(Family::Ipv6).to_string(), "fwmark 0x10001 IPv6");
        assert_ne!(
            mark(Family::Ipv4),
            mark(Family::Ipv6),
            "IPVS keeps a mark's service per family"
        );
    }

    #[test]
    fn the_persistence_netmask_is_a_mask_for_ipv4_and_a_prefix_length_for_ipv6() {
        assert_eq!(
            Netmask::prefix(Family::Ipv4, 24),
            Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0))
        );
        assert_eq!(Netmask::prefix(Family::Ipv6, 64), Netmask::Ipv6(64));
        assert_eq!(
            Netmask::host(Family::Ipv4),
            Netmask::Ipv4(Ipv4Addr::BROADCAST)
        );
        assert_eq!(
            Netmask::host(Family::Ipv6),
            Netmask::Ipv6(128),
            "the kernel refuses an IPv6 service with prefix length 0"
        );
        assert_eq!(Netmask::prefix(Family::Ipv6, 200), Netmask::Ipv6(128));
        assert_eq!(
            Netmask::Ipv4(Ipv4Addr::new(255, 255, 255, 0)).kernel_value(),
            [255, 255, 255, 0]
        );
        assert_eq!(Netmask::Ipv6(64).kernel_value(), 64u32.to_ne_bytes());
        for netmask in [
            Netmask::Ipv6(0),
            Netmask::Ipv6(64),
            Netmask::Ipv6(128),
            Netmask::Ipv4(Ipv4Addr::new(255, 0, 255, 0)),
        ] {
            assert_eq!(
                Netmask::from_kernel(netmask.family(), netmask.kernel_value()),
                Some(netmask)
            );
        }
        assert_eq!(
            Netmask::from_kernel(Family::Ipv6, 129u32.to_ne_bytes()),
            None
        );
        assert_eq!(Netmask::Ipv6(64).to_string(), "/64");
        assert_eq!(
            serde_json::to_string(&Netmask::Ipv4(Ipv4Addr::BROADCAST)).unwrap(),
            "\"255.255.255.255\""
        );
    }

    /// An IPv6 table, built as an IPv6 `lvs.conf` will give it.
    fn ipv6_web(weight_b: u32) -> IpvsState {
        let settings = ServiceSettings {
            scheduler: "wrr".to_owned(),
            flags: FLAG_PERSISTENT,
            timeout: 300,
            netmask: Netmask::prefix(Family::Ipv6, 64),
            fwmark_protocol: 0,
        };
        let masq = |weight| DestSettings {
            forward: Forward::Masquerade,
            weight,
        };
        let mut state = IpvsState::default();
        state.services.insert(
            vip(TCP, "2001:db8::10", 80),
            Service {
                settings,
                destinations: [
                    (dest("2001:db8:1::11", 8080), masq(3)),
                    (dest("2001:db8:1::12", 8080), masq(weight_b)),
                ]
                .into_iter()
                .collect(),
            },
        );
        state
    }

    #[test]
    fn an_ipv6_weight_change_is_one_edit_that_reads_with_brackets() {
        let ops = diff(&ipv6_web(1), &ipv6_web(2));
        let shown: Vec<String> = ops.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "set real server [2001:db8:1::12]:8080 of tcp [2001:db8::10]:80: masq weight 1 -> \
              masq weight 2"
            ]
        );
        let added: Vec<String> = diff(&IpvsState::default(), &ipv6_web(1))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            added,
            [
                "add service tcp [2001:db8::10]:80 (scheduler wrr, persistent 300s netmask /64) \
              with 2 real server(s)"
            ]
        );
    }

    #[test]
    fn the_fake_kernel_takes_a_real_server_of_the_other_family_in_tunnel_mode_only() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let web = vip(TCP, "192.0.2.10", 80);
        let mut kernel = FakeIpvs {
            state: desired(&lvs("director web 192.0.2.10:80\n server a 10.0.1.1\n")),
            ..FakeIpvs::default()
        };
        let add = |forward| IpvsOp::AddDest {
            service: web,
            dest: dest("2001:db8:1::11", 80),
            settings: DestSettings { forward, weight: 1 },
        };
        let results = runtime.block_on(kernel.execute(&[
            add(Forward::Masquerade),
            add(Forward::Route),
            add(Forward::Tunnel),
        ]));
        let refused: Vec<bool> = results.iter().map(Result::is_err).collect();
        assert_eq!(refused, [true, true, false]);
        let six = vip(TCP, "2001:db8::10", 80);
        let prefix_0 = IpvsOp::AddService {
            key: six,
            service: Service {
                settings: ServiceSettings {
                    scheduler: "wlc".to_owned(),
                    flags: FLAG_PERSISTENT,
                    timeout: 300,
                    netmask: Netmask::Ipv6(0),
                    fwmark_protocol: 0,
                },
                destinations: BTreeMap::new(),
            },
        };
        let results = runtime.block_on(kernel.execute(&[prefix_0]));
        assert!(results[0].is_err(), "an IPv6 prefix length of 0 is refused");
        assert!(!kernel.state.services.contains_key(&six));
    }

    #[test]
    fn the_examples_fwmark_director_is_an_ipv4_service_like_its_servers() {
        let config = examples();
        let director = config.director("maildirect").expect("maildirect");
        assert_eq!(director.family(), Family::Ipv4);
        let mark = director_marks(&config)["maildirect"];
        assert_eq!(
            service_key(director, &director_marks(&config)),
            ServiceKey::Fwmark {
                mark,
                family: Family::Ipv4
            }
        );
    }

    #[test]
    fn a_directors_mark_does_not_move_when_other_directors_come_and_go() {
        let one = director_marks(&lvs("director mail\n server a 10.0.1.1\n"));
        let many = director_marks(&lvs(
            "director mail\n server a 10.0.1.1\ndirector imap\n server b 10.0.1.2\ndirector web 10.0.0.1:80\n server c 10.0.1.3\n",
        ));
        assert_eq!(one["mail"], many["mail"]);
        assert_ne!(many["mail"], many["imap"]);
        assert!(
            !many.contains_key("web"),
            "a director with a VIP needs no mark"
        );
    }

    #[test]
    fn in_gateway_and_tunnel_mode_a_real_server_gets_the_service_port() {
        let table = desired(&lvs(
            "director web 10.0.0.1:80\n mode gateway\n server a 10.0.1.1:8080\n",
        ));
        let service = &table.services[&vip(TCP, "10.0.0.1", 80)];
        assert!(service.destinations.contains_key(&dest("10.0.1.1", 80)));
    }

    #[test]
    fn a_refusal_at_any_operation_leaves_the_table_as_it_was() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let from = desired(&examples());
        let to = desired(&lvs(
            "director web 192.168.0.10:80 TCP\n balance roundrobin\n server web1 10.0.2.11:8080 weight 5\n server web3 10.0.2.13:8080\n\ndirector new 192.168.0.20:443\n server n1 10.0.5.1\n server n2 10.0.5.2\n",
        ));
        let ops = diff(&from, &to);
        assert!(ops.len() >= 6, "{ops:#?}");
        for fail_at in 0..ops.len() {
            let mut kernel = FakeIpvs {
                state: from.clone(),
                fail_at: Some(fail_at),
                ..FakeIpvs::default()
            };
            let result = runtime.block_on(apply::execute_ipvs(&mut kernel, &ops));
            assert!(result.is_err(), "operation {fail_at} did not fail");
            assert_eq!(
                kernel.state, from,
                "failing at operation {fail_at}: {}",
                ops[fail_at]
            );
        }
        let mut kernel = FakeIpvs {
            state: from,
            ..FakeIpvs::default()
        };
        runtime
            .block_on(apply::execute_ipvs(&mut kernel, &ops))
            .expect("applies");
        assert_eq!(kernel.state, to);
    }

    const THREE: &str = "director a 192.0.2.1:80 TCP\n server a1 10.0.1.1 weight 1\n server a2 10.0.1.2 weight 2\n\ndirector b 192.0.2.2:80 TCP\n server b1 10.0.2.1 weight 1\n server b2 10.0.2.2 weight 2\n\ndirector c\n balance source\n server c1 10.0.3.1\n";

    /// Plans `next` on `kernel` the way `apply` does after `applied` ran.
    fn plan_after(kernel: &mut FakeIpvs, applied: &LvsConfig, next: &LvsConfig) -> Vec<IpvsOp> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(apply::plan_ipvs(
                kernel,
                next,
                Some(applied),
                &[],
                &Default::default(),
            ))
            .expect("a plan")
    }

    #[test]
    fn one_weight_changed_reads_only_its_own_service() {
        let applied = lvs(THREE);
        let next = lvs(&THREE.replace("a2 10.0.1.2 weight 2", "a2 10.0.1.2 weight 7"));
        let mut kernel = FakeIpvs {
            state: desired(&applied),
            ..FakeIpvs::default()
        };
        let ops = plan_after(&mut kernel, &applied, &next);
        assert_eq!(ops, diff(&desired(&applied), &desired(&next)));
        assert_eq!(ops.len(), 1, "{ops:#?}");
        assert_eq!(kernel.observed, 0, "the whole table was read");
        assert_eq!(
            kernel.outlined,
            [BTreeSet::from([vip(TCP, "192.0.2.1", 80)])]
        );
    }

    #[test]
    fn a_touched_service_is_planned_from_what_the_kernel_has_and_the_others_wait() {
        let applied = lvs(THREE);
        let next = lvs(&THREE.replace("a2 10.0.1.2 weight 2", "a2 10.0.1.2 weight 7"));
        let mut kernel = FakeIpvs {
            state: desired(&applied),
            ..FakeIpvs::default()
        };
        // By hand, since the last apply: a1 of the touched service and b1 of
        // another get other weights.
        let set_weight = |kernel: &mut FakeIpvs, service: ServiceKey, server: &str| {
            let settings = kernel
                .state
                .services
                .get_mut(&service)
                .expect("the service");
            let dest = settings
                .destinations
                .get_mut(&dest(server, 80))
                .expect("the server");
            dest.weight = 4;
        };
        set_weight(&mut kernel, vip(TCP, "192.0.2.1", 80), "10.0.1.1");
        set_weight(&mut kernel, vip(TCP, "192.0.2.2", 80), "10.0.2.1");
        let ops = plan_after(&mut kernel, &applied, &next);
        let hand = kernel.state.clone();
        let all = diff(&hand, &desired(&next));
        assert_eq!(all.len(), 3, "{all:#?}");
        let mut of_a = all.clone();
        of_a.retain(|op| op.to_string().contains("192.0.2.1"));
        assert_eq!(ops, of_a, "the touched service, both of its differences");
        carry_out(&mut kernel, &ops);
        // The next apply of the same file reads the whole table: b1 comes back.
        let again = plan_reading_all(&mut kernel, &next);
        assert_eq!(kernel.observed, 1);
        assert_eq!(again.len(), 1, "{again:#?}");
        assert!(again[0].to_string().contains("10.0.2.1"), "{}", again[0]);
    }

    fn carry_out(kernel: &mut FakeIpvs, ops: &[IpvsOp]) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(apply::execute_ipvs(kernel, ops))
            .expect("applies");
    }

    /// The plan of a re-apply: nothing known of the last apply.
    fn plan_reading_all(kernel: &mut FakeIpvs, next: &LvsConfig) -> Vec<IpvsOp> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime
            .block_on(apply::plan_ipvs(
                kernel,
                next,
                None,
                &[],
                &Default::default(),
            ))
            .expect("a plan")
    }

    #[test]
    fn services_other_than_the_last_apply_left_mean_the_whole_table_is_read() {
        let applied = lvs(THREE);
        let next = lvs(&THREE.replace("a2 10.0.1.2 weight 2", "a2 10.0.1.2 weight 7"));
        let hand_changes: [fn(&mut IpvsState); 3] = [
            |state| {
                state.services.remove(&vip(TCP, "192.0.2.2", 80));
            },
            |state| {
                let b = state
                    .services
                    .get_mut(&vip(TCP, "192.0.2.2", 80))
                    .expect("b");
                b.settings.scheduler = "rr".to_owned();
            },
            |state| {
                let mut stray = state.services[&vip(TCP, "192.0.2.2", 80)].clone();
                stray.destinations.clear();
                state.services.insert(vip(UDP, "192.0.2.9", 53), stray);
            },
        ];
        for (index, hand_change) in hand_changes.iter().enumerate() {
            let mut kernel = FakeIpvs {
                state: desired(&applied),
                ..FakeIpvs::default()
            };
            hand_change(&mut kernel.state);
            let ops = plan_after(&mut kernel, &applied, &next);
            assert_eq!(kernel.observed, 1, "hand change {index}: not read whole");
            assert_eq!(
                ops,
                diff(&kernel.state, &desired(&next)),
                "hand change {index}"
            );
        }
    }

    #[test]
    fn from_the_table_the_last_apply_left_the_partial_plan_is_the_whole_plan() {
        let example = std::fs::read_to_string("examples/lvs.conf").expect("examples/lvs.conf");
        let changes = [
            example.replace("weight 3 check", "weight 5 check"),
            example.replace(
                "balance leastconn\n    mode nat",
                "balance roundrobin\n    mode nat",
            ),
            example.replace("timeout 300", "timeout 60"),
            example.replace("    server dns2 10.0.3.12 check\n", ""),
            example.replace("director app ", "director gone "),
            format!("{example}\ndirector extra 192.0.2.50:8443 TCP\n    server x1 10.0.9.1\n"),
            example.replace("director maildirect\n", "director maildirect2\n"),
            String::new(),
        ];
        let applied = examples();
        for (index, change) in changes.iter().enumerate() {
            let next = lvs(change);
            let mut kernel = FakeIpvs {
                state: desired(&applied),
                ..FakeIpvs::default()
            };
            let ops = plan_after(&mut kernel, &applied, &next);
            assert_eq!(
                ops,
                diff(&desired(&applied), &desired(&next)),
                "change {index}"
            );
            carry_out(&mut kernel, &ops);
            assert_eq!(kernel.state, desired(&next), "change {index}");
        }
    }
}
