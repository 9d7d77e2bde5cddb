//! The Network tab's kernel state: links, addresses and routes as the kernel holds
//! them, the state `network.conf` asks for, and the ordered operations between them.
//!
//! Ownership: bonds and VLANs that lbconsole creates carry the ifalias
//! [`OWNED_ALIAS`]; routes carry the route protocol [`ROUTE_PROTOCOL`]. An interface
//! named in `network.conf` has exactly the addresses listed there, IPv4 and IPv6;
//! the kernel's own IPv6 addresses and routes (link-local, autoconfigured) are
//! not in the state a plan compares, so they are never removed. Nothing else is
//! touched: a route of another protocol, a link we did not create and that the
//! file does not name, an address on an interface the file never named.
//!
//! The `vrrp address`es are keepalived's: it adds them on the master and takes
//! them off the backup. A plan never adds or removes an address equal to one
//! (whatever its prefix), neither those of the file nor those of the file
//! applied before, which keepalived may still hold until it reloads.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::model::NetworkConfig;
use crate::config::model::network::{BondMode, Interface, LacpRate, LinkKind, XmitHashPolicy};
use crate::config::model::types::{Family, IpNet, TableId};
use crate::plan::flows::MarkRule;

/// The ifalias that marks a link as created by lbconsole.
pub const OWNED_ALIAS: &str = "lbconsole";
/// The route protocol number (`ip route … proto 202`) that marks our routes.
pub const ROUTE_PROTOCOL: u8 = 202;

/// What the plan compares: every link the kernel has, and the routes that are ours.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkState {
    pub links: BTreeMap<String, Link>,
    pub routes: BTreeSet<RouteEntry>,
    /// Our `ip rule fwmark … lookup N` rules (the flows' `table N`).
    pub rules: BTreeSet<MarkRule>,
    /// The addresses keepalived owns, by link; only a desired state has them.
    /// The diff leaves an address of the kernel's equal to one of these alone.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keepalived: BTreeMap<String, BTreeSet<IpAddr>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub kind: LinkType,
    /// How the rest of the system knows the link besides its name; observed,
    /// never planned, only kept (see [`Identity`]).
    pub identity: Identity,
    /// Created by lbconsole (carries [`OWNED_ALIAS`]).
    pub owned: bool,
    pub master: Option<String>,
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// The addresses an administrator gave it, of both families; never the
    /// kernel's own (IPv6 link-local and autoconfigured ones), which no plan
    /// sees.
    pub addresses: BTreeSet<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkType {
    Bond(BondSettings),
    Vlan {
        id: u16,
        parent: String,
    },
    /// Anything we do not create: a NIC (empty kind), a veth, a bridge, …
    Other(String),
}

/// What identifies a link besides its name: its interface index and its MAC
/// address. A link that is recreated — on purpose, or by an undo — gets both
/// back, so rules that match by index and neighbours' ARP caches stay right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    pub index: Option<u32>,
    pub mac: Option<MacAddress>,
}

/// A link-layer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The bond options lbconsole sets, with the kernel's values where the file is silent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BondSettings {
    pub mode: BondMode,
    pub miimon: u32,
    pub updelay: u32,
    pub downdelay: u32,
    pub primary: Option<String>,
    pub xmit_hash_policy: XmitHashPolicy,
    pub lacp_rate: LacpRate,
}

impl BondSettings {
    /// What the kernel would report for the bond `network.conf` describes. The
    /// kernel keeps delays as whole multiples of miimon, and ignores options that
    /// do not belong to the mode, so those are normalised here the same way.
    fn desired(bond: &crate::config::model::network::Bond) -> Self {
        let mode = bond.mode();
        let miimon = bond.miimon();
        let delay = |ms: u32| ms.checked_div(miimon).map_or(0, |n| n * miimon);
        Self {
            mode,
            miimon,
            updelay: delay(bond.updelay()),
            downdelay: delay(bond.downdelay()),
            primary: bond
                .primary
                .as_ref()
                .filter(|_| mode.uses_primary())
                .map(|p| p.value.to_string()),
            xmit_hash_policy: bond
                .xmit_hash_policy
                .filter(|_| mode.uses_xmit_hash())
                .unwrap_or(XmitHashPolicy::Layer2),
            lacp_rate: bond
                .lacp_rate
                .filter(|_| mode == BondMode::Lacp)
                .unwrap_or(LacpRate::Slow),
        }
    }

    /// Whether the kernel can move from `self` to `to` on a live bond.
    /// The mode and the LACP rate change only while the bond is down and empty.
    fn changes_live(&self, to: &Self) -> bool {
        self.mode == to.mode && self.lacp_rate == to.lacp_rate
    }
}

impl fmt::Display for BondSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mode {}, miimon {}, updelay {}, downdelay {}",
            self.mode.keyword(),
            self.miimon,
            self.updelay,
            self.downdelay
        )?;
        if let Some(primary) = &self.primary {
            write!(f, ", primary {primary}")?;
        }
        if self.mode.uses_xmit_hash() {
            write!(f, ", xmit-hash-policy {}", self.xmit_hash_policy.keyword())?;
        }
        if self.mode == BondMode::Lacp {
            write!(f, ", lacp-rate {}", self.lacp_rate.keyword())?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct RouteEntry {
    pub table: u32,
    /// `0.0.0.0/0` or `::/0` for a default route: the gateway's family.
    pub destination: IpNet,
    pub gateway: IpAddr,
    pub device: String,
}

impl fmt::Display for RouteEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.destination.prefix == 0 {
            f.write_str("default")?;
        } else {
            write!(f, "{}", self.destination)?;
        }
        write!(f, " via {} dev {}", self.gateway, self.device)?;
        if self.table != TableId::MAIN {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

/// One kernel operation. Each carries what it replaces, so it has an exact inverse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "op")]
pub enum NetOp {
    /// Creates a link, down and at the default MTU; later steps raise and size it.
    /// `identity` is the index and address it had before, when it is recreated.
    CreateLink {
        name: String,
        link: NewLink,
        identity: Identity,
    },
    /// Deletes a link lbconsole created; `link` and `identity` are what it was,
    /// to recreate it.
    DeleteLink {
        name: String,
        link: NewLink,
        identity: Identity,
    },
    SetBond {
        name: String,
        from: BondSettings,
        to: BondSettings,
    },
    /// Enslaves (`to` a bond) or releases (`to` none). A release carries the
    /// bond's address as it was, because the kernel gives a bond a random one
    /// when its last slave leaves; enslaving with `master_mac` first puts that
    /// address back, so undoing a release restores the bond's and its slaves'.
    /// Likewise `slave_down`: the slave was down in its bond (`auto off`), which
    /// an enslave, opening the slave, must restore.
    SetMaster {
        name: String,
        from: Option<String>,
        to: Option<String>,
        master_mac: Option<MacAddress>,
        slave_down: bool,
    },
    SetMtu {
        name: String,
        from: u32,
        to: u32,
    },
    SetUp {
        name: String,
        up: bool,
    },
    /// An IPv6 address is added only once the kernel's duplicate address
    /// detection has accepted it (see `kernel::netlink`).
    AddAddress {
        name: String,
        address: IpNet,
    },
    RemoveAddress {
        name: String,
        address: IpNet,
    },
    AddRoute {
        route: RouteEntry,
    },
    RemoveRoute {
        route: RouteEntry,
    },
    AddRule {
        rule: MarkRule,
    },
    RemoveRule {
        rule: MarkRule,
    },
}

impl NetOp {
    /// The operation that undoes this one.
    pub fn inverse(&self) -> Self {
        match self.clone() {
            Self::CreateLink {
                name,
                link,
                identity,
            } => Self::DeleteLink {
                name,
                link,
                identity,
            },
            Self::DeleteLink {
                name,
                link,
                identity,
            } => Self::CreateLink {
                name,
                link,
                identity,
            },
            Self::SetBond { name, from, to } => Self::SetBond {
                name,
                from: to,
                to: from,
            },
            Self::SetMaster {
                name,
                from,
                to,
                master_mac,
                slave_down,
            } => Self::SetMaster {
                name,
                from: to,
                to: from,
                master_mac,
                slave_down,
            },
            Self::SetMtu { name, from, to } => Self::SetMtu {
                name,
                from: to,
                to: from,
            },
            Self::SetUp { name, up } => Self::SetUp { name, up: !up },
            Self::AddAddress { name, address } => Self::RemoveAddress { name, address },
            Self::RemoveAddress { name, address } => Self::AddAddress { name, address },
            Self::AddRoute { route } => Self::RemoveRoute { route },
            Self::RemoveRoute { route } => Self::AddRoute { route },
            Self::AddRule { rule } => Self::RemoveRule { rule },
            Self::RemoveRule { rule } => Self::AddRule { rule },
        }
    }
}

impl fmt::Display for NetOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateLink {
                name,
                link,
                identity,
            } => {
                match link {
                    NewLink::Bond(settings) => write!(f, "create bond {name} ({settings}")?,
                    NewLink::Vlan { id, parent } => {
                        write!(f, "create vlan {name} (id {id} on {parent}")?
                    }
                }
                match identity.mac {
                    Some(mac) => write!(f, ", address {mac})"),
                    None => f.write_str(")"),
                }
            }
            Self::DeleteLink {
                name,
                link: NewLink::Bond(_),
                ..
            } => write!(f, "delete bond {name}"),
            Self::DeleteLink {
                name,
                link: NewLink::Vlan { .. },
                ..
            } => write!(f, "delete vlan {name}"),
            Self::SetBond { name, from, to } => write!(f, "set bond {name}: {from} -> {to}"),
            Self::SetMaster { name, from, to, .. } => match (from, to) {
                (_, Some(to)) => write!(f, "enslave {name} to {to}"),
                (Some(from), None) => write!(f, "release {name} from {from}"),
                (None, None) => write!(f, "release {name}"),
            },
            Self::SetMtu { name, from, to } => write!(f, "set {name} mtu {from} -> {to}"),
            Self::SetUp { name, up } => write!(f, "set {name} {}", if *up { "up" } else { "down" }),
            Self::AddAddress { name, address } => write!(f, "add address {address} to {name}"),
            Self::RemoveAddress { name, address } => {
                write!(f, "remove address {address} from {name}")
            }
            Self::AddRoute { route } => write!(f, "add route {route}"),
            Self::RemoveRoute { route } => write!(f, "remove route {route}"),
            Self::AddRule { rule } => write!(f, "add {rule}"),
            Self::RemoveRule { rule } => write!(f, "remove {rule}"),
        }
    }
}

/// The kinds of link lbconsole creates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NewLink {
    Bond(BondSettings),
    Vlan { id: u16, parent: String },
}

impl NewLink {
    fn of(kind: &LinkType) -> Option<Self> {
        match kind {
            LinkType::Bond(settings) => Some(Self::Bond(settings.clone())),
            LinkType::Vlan { id, parent } => Some(Self::Vlan {
                id: *id,
                parent: parent.clone(),
            }),
            LinkType::Other(_) => None,
        }
    }
}

/// A step of the plan: the operation, and why, when that is not obvious.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub op: NetOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if let Some(note) = &self.note {
            write!(f, "  ({note})")?;
        }
        Ok(())
    }
}

/// Why `network.conf` cannot be applied to this kernel at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("interface {0} does not exist")]
    Missing(String),
    #[error(
        "{name} exists as a {kind} link that lbconsole did not create; rename the section or delete the link"
    )]
    Foreign { name: String, kind: String },
    #[error("{name} is a {kind} link, not an ethernet interface; it cannot be a bond slave")]
    NotEnslavable { name: String, kind: String },
}

/// The state `network.conf` asks for, given what the kernel has now.
///
/// `previous` is the network config applied last time (if any): interfaces it
/// named and the current one does not are handed back — their addresses go.
pub fn desired(
    config: &NetworkConfig,
    previous: Option<&NetworkConfig>,
    observed: &NetworkState,
) -> Result<NetworkState, PlanError> {
    let mut desired = NetworkState {
        keepalived: keepalived_addresses(config, previous),
        ..NetworkState::default()
    };
    let keepalived_owns = |name: &str, address: &IpNet| {
        desired
            .keepalived
            .get(name)
            .is_some_and(|vips| vips.contains(&address.addr))
    };
    // Links the file does not name: ours are deleted, the rest stay as they are,
    // minus what an earlier apply put on them.
    for (name, link) in &observed.links {
        if link.owned || config.interface(name).is_some() || config.bond_of(name).is_some() {
            continue;
        }
        let mut kept = link.clone();
        if let Some(before) = previous.and_then(|p| p.interface(name)) {
            for address in &before.addresses {
                kept.addresses.remove(&address.value);
            }
        }
        kept.addresses.retain(|a| !keepalived_owns(name, a));
        if kept
            .master
            .as_ref()
            .is_some_and(|m| observed.links.get(m).is_some_and(|l| l.owned))
        {
            kept.master = None;
        }
        desired.links.insert(name.clone(), kept);
    }
    // Every section's own link first, then the bonds take their slaves: a slave's
    // section says only whether it is up, whichever comes first in the file.
    for interface in &config.interfaces {
        let link = desired_link(interface, observed)?;
        desired
            .links
            .insert(interface.name.as_str().to_owned(), link);
    }
    for interface in &config.interfaces {
        let name = interface.name.as_str();
        if let Some(bond) = interface.bond() {
            for slave in &bond.slaves {
                let slave_name = slave.as_str();
                let own_section = config.interface(slave_name);
                let mut slave_link = match desired.links.remove(slave_name) {
                    Some(link) => link,
                    None => observed_ethernet(slave_name, observed)?.clone(),
                };
                if let LinkType::Other(kind) = &slave_link.kind
                    && kind != "veth"
                    && !kind.is_empty()
                {
                    return Err(PlanError::NotEnslavable {
                        name: slave_name.to_owned(),
                        kind: kind.clone(),
                    });
                }
                slave_link.master = Some(name.to_owned());
                // `auto off` in a slave's own section keeps it enslaved but down,
                // out of the bond's use (a port taken out for maintenance).
                slave_link.up = own_section.is_none_or(Interface::is_up);
                // The kernel gives a slave its bond's MTU; doing it as a step of the
                // plan is what lets a rollback give the old MTU back.
                slave_link.mtu = interface.mtu.map_or(DEFAULT_MTU, |m| m.value);
                slave_link.addresses.clear();
                desired.links.insert(slave_name.to_owned(), slave_link);
            }
        }
        for route in &interface.routes {
            desired.routes.insert(RouteEntry {
                table: route.table.as_ref().map_or(TableId::MAIN, |t| t.get()),
                destination: route.destination_net(),
                gateway: route.gateway,
                device: name.to_owned(),
            });
        }
    }
    Ok(desired)
}

/// The `vrrp address`es of `config` and of `previous`, by interface.
fn keepalived_addresses(
    config: &NetworkConfig,
    previous: Option<&NetworkConfig>,
) -> BTreeMap<String, BTreeSet<IpAddr>> {
    let mut owned: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    for interface in previous
        .into_iter()
        .chain([config])
        .flat_map(|c| &c.interfaces)
    {
        if let Some(vrrp) = &interface.vrrp
            && !vrrp.addresses.is_empty()
        {
            owned
                .entry(interface.name.as_str().to_owned())
                .or_default()
                .extend(vrrp.addresses.iter().map(|a| a.addr));
        }
    }
    owned
}

/// The MTU of a link lbconsole creates when the file names none.
pub const DEFAULT_MTU: u32 = 1500;

fn observed_ethernet<'a>(name: &str, observed: &'a NetworkState) -> Result<&'a Link, PlanError> {
    let link = observed
        .links
        .get(name)
        .ok_or_else(|| PlanError::Missing(name.to_owned()))?;
    match &link.kind {
        LinkType::Other(_) => Ok(link),
        LinkType::Bond(_) | LinkType::Vlan { .. } if link.owned => Ok(link),
        LinkType::Bond(_) => Err(PlanError::Foreign {
            name: name.to_owned(),
            kind: "bond".to_owned(),
        }),
        LinkType::Vlan { .. } => Err(PlanError::Foreign {
            name: name.to_owned(),
            kind: "vlan".to_owned(),
        }),
    }
}

fn desired_link(interface: &Interface, observed: &NetworkState) -> Result<Link, PlanError> {
    let name = interface.name.as_str();
    let existing = observed.links.get(name);
    let kind = match &interface.kind {
        LinkKind::Ethernet => observed_ethernet(name, observed)?.kind.clone(),
        LinkKind::Bonding(bond) => LinkType::Bond(BondSettings::desired(bond)),
        LinkKind::Vlan(vlan) => LinkType::Vlan {
            id: vlan.id.value,
            parent: vlan.parent.value.to_string(),
        },
    };
    let created = !matches!(interface.kind, LinkKind::Ethernet);
    if created
        && let Some(existing) = existing
        && !existing.owned
    {
        let kind = match &existing.kind {
            LinkType::Bond(_) => "bond".to_owned(),
            LinkType::Vlan { .. } => "vlan".to_owned(),
            LinkType::Other(kind) if kind.is_empty() => "physical".to_owned(),
            LinkType::Other(kind) => kind.clone(),
        };
        return Err(PlanError::Foreign {
            name: name.to_owned(),
            kind,
        });
    }
    let mtu = interface
        .mtu
        .map(|m| m.value)
        .or(existing.filter(|_| !created).map(|l| l.mtu))
        .unwrap_or(DEFAULT_MTU);
    Ok(Link {
        kind,
        identity: existing.map(|l| l.identity).unwrap_or_default(),
        owned: created,
        master: None,
        mtu,
        up: interface.is_up(),
        addresses: interface.addresses.iter().map(|a| a.value).collect(),
    })
}

/// The ordered steps from `observed` to `desired`. Empty when nothing differs.
///
/// Order: routes and addresses go first, then links that must go (VLANs before
/// their parents, slaves released before their bond), then links are created
/// (bonds before VLANs), changed, enslaved (a slave goes down first), raised,
/// addressed, and routed.
pub fn diff(observed: &NetworkState, desired: &NetworkState) -> Vec<Step> {
    let mut steps = Vec::new();
    let step = |op| Step { op, note: None };

    for route in observed.routes.difference(&desired.routes) {
        steps.push(step(NetOp::RemoveRoute {
            route: route.clone(),
        }));
    }

    // Links to delete: ours that are no longer wanted, or wanted with a kind the
    // kernel cannot change in place.
    let mut recreate: BTreeMap<&str, String> = BTreeMap::new();
    for (name, link) in &observed.links {
        if !link.owned {
            continue;
        }
        match desired.links.get(name) {
            None => {
                recreate.insert(name, String::new());
            }
            Some(want) => {
                if let Some(reason) = why_recreate(&link.kind, &want.kind) {
                    recreate.insert(name, reason);
                }
            }
        }
    }
    // A VLAN whose parent is recreated goes with it.
    for (name, link) in &observed.links {
        if let LinkType::Vlan { parent, .. } = &link.kind
            && recreate.contains_key(parent.as_str())
            && !recreate.contains_key(name.as_str())
        {
            recreate.insert(name, format!("its parent {parent} is recreated"));
        }
    }

    for (name, link) in &observed.links {
        let want = desired.links.get(name);
        let going = recreate.contains_key(name.as_str());
        let vips = desired.keepalived.get(name);
        for address in &link.addresses {
            if vips.is_some_and(|v| v.contains(&address.addr)) {
                continue; // keepalived's; a link that goes takes it along
            }
            if going || !want.is_some_and(|w| w.addresses.contains(address)) {
                steps.push(step(NetOp::RemoveAddress {
                    name: name.clone(),
                    address: *address,
                }));
            }
        }
    }

    // Slaves leave their bond when their master changes or goes. The kernel
    // closes a slave as it releases it.
    let mut released: BTreeSet<&str> = BTreeSet::new();
    for (name, link) in &observed.links {
        let Some(master) = &link.master else { continue };
        let want_master = desired.links.get(name).and_then(|w| w.master.as_ref());
        if want_master != Some(master) || recreate.contains_key(master.as_str()) {
            if !observed.links.get(master).is_some_and(|m| m.owned) && want_master.is_none() {
                continue; // enslaved to something we do not manage
            }
            steps.push(step(NetOp::SetMaster {
                name: name.clone(),
                from: Some(master.clone()),
                to: None,
                master_mac: observed.links.get(master).and_then(|m| m.identity.mac),
                slave_down: !link.up,
            }));
            released.insert(name);
        }
    }

    // Delete: VLANs first, so no parent goes while a child still stands on it.
    let deletions = recreate
        .iter()
        .filter_map(|(name, reason)| observed.links.get(*name).map(|l| (*name, reason, l)));
    let (vlans, others): (Vec<_>, Vec<_>) =
        deletions.partition(|(_, _, l)| matches!(l.kind, LinkType::Vlan { .. }));
    for (name, reason, link) in vlans.into_iter().chain(others) {
        let Some(kind) = NewLink::of(&link.kind) else {
            continue;
        };
        if link.up {
            steps.push(step(NetOp::SetUp {
                name: name.to_owned(),
                up: false,
            }));
        }
        if link.mtu != DEFAULT_MTU {
            // Recreation starts from the default MTU; restoring it on undo needs a step.
            steps.push(step(NetOp::SetMtu {
                name: name.to_owned(),
                from: link.mtu,
                to: DEFAULT_MTU,
            }));
        }
        steps.push(Step {
            op: NetOp::DeleteLink {
                name: name.to_owned(),
                link: kind,
                identity: link.identity,
            },
            note: (!reason.is_empty()).then(|| format!("recreated: {reason}")),
        });
    }

    // The state each link is in once the deletions are done.
    let current = |name: &str| -> Option<&Link> {
        if recreate.contains_key(name) {
            None
        } else {
            observed.links.get(name)
        }
    };

    // Create: bonds, then VLANs (whose parent may be a new bond).
    let creations: Vec<(&String, &Link)> = desired
        .links
        .iter()
        .filter(|(name, want)| want.owned && current(name).is_none())
        .collect();
    let (new_vlans, new_bonds): (Vec<_>, Vec<_>) = creations
        .iter()
        .partition(|(_, w)| matches!(w.kind, LinkType::Vlan { .. }));
    for (name, want) in new_bonds.into_iter().chain(new_vlans) {
        if let Some(link) = NewLink::of(&want.kind) {
            // A recreated link keeps its index and address.
            let identity = observed
                .links
                .get(name.as_str())
                .map(|l| l.identity)
                .unwrap_or_default();
            steps.push(step(NetOp::CreateLink {
                name: (*name).clone(),
                link,
                identity,
            }));
        }
    }
    // Every desired link's state right after creation (created links start down,
    // at the default MTU, with no master and no addresses).
    let start = |name: &str| -> (u32, bool, Option<String>) {
        match current(name) {
            Some(link) if released.contains(name) => (link.mtu, false, None),
            Some(link) => (link.mtu, link.up, link.master.clone()),
            None => (DEFAULT_MTU, false, None),
        }
    };

    for (name, want) in &desired.links {
        if let (Some(link), LinkType::Bond(to)) = (current(name), &want.kind)
            && let LinkType::Bond(from) = &link.kind
            && from != to
        {
            steps.push(step(NetOp::SetBond {
                name: name.clone(),
                from: from.clone(),
                to: to.clone(),
            }));
        }
    }

    // MTUs: bonds and parents before the links on top of them.
    let mut by_depth: Vec<(&String, &Link)> = desired.links.iter().collect();
    by_depth.sort_by_key(|(_, l)| match l.kind {
        LinkType::Bond(_) => 0,
        LinkType::Other(_) => 1,
        LinkType::Vlan { .. } => 2,
    });
    for (name, want) in &by_depth {
        let (mtu, _, _) = start(name);
        if mtu != want.mtu {
            steps.push(step(NetOp::SetMtu {
                name: (*name).clone(),
                from: mtu,
                to: want.mtu,
            }));
        }
    }

    for (name, want) in &desired.links {
        let (_, up, master) = start(name);
        if let Some(to) = &want.master
            && master.as_ref() != Some(to)
        {
            if up {
                steps.push(Step {
                    op: NetOp::SetUp {
                        name: name.clone(),
                        up: false,
                    },
                    note: Some("a slave goes down before it is enslaved".to_owned()),
                });
            }
            steps.push(step(NetOp::SetMaster {
                name: name.clone(),
                from: None,
                to: Some(to.clone()),
                master_mac: None,
                slave_down: false,
            }));
        }
    }

    let mut toggled: BTreeSet<&str> = BTreeSet::new();
    for (name, want) in &by_depth {
        let (_, up, master) = start(name);
        // A bond opens a slave as it enslaves it.
        let enslaved_now = want.master.is_some() && master != want.master;
        if (up || enslaved_now) != want.up {
            steps.push(step(NetOp::SetUp {
                name: (*name).clone(),
                up: want.up,
            }));
            toggled.insert(name.as_str());
        }
    }

    // The kernel drops every IPv6 address of a link that goes down (unless
    // `keep_addr_on_down` is set), and an undo takes down a link the plan
    // raised. The IPv6 addresses that a link going up or down keeps are taken
    // off before and put back after, as steps of their own, so that the plan
    // and its undo both restore them.
    let moved = |name: &str, address: &IpNet| {
        address.family() == Family::Ipv6
            && toggled.contains(name)
            && current(name).is_some_and(|l| l.addresses.contains(address))
    };
    let disturbed_addresses: Vec<Step> = desired
        .links
        .iter()
        .flat_map(|(name, want)| {
            want.addresses
                .iter()
                .filter(|a| moved(name, a))
                .map(|address| {
                    step(NetOp::RemoveAddress {
                        name: name.clone(),
                        address: *address,
                    })
                })
        })
        .collect();

    for (name, want) in &desired.links {
        let have = current(name).map(|l| &l.addresses);
        for address in &want.addresses {
            if !have.is_some_and(|h| h.contains(address)) || moved(name, address) {
                steps.push(step(NetOp::AddAddress {
                    name: name.clone(),
                    address: *address,
                }));
            }
        }
    }

    // The kernel drops a gateway route when its link goes down, loses an
    // address or goes away. Routes that stay wanted on such a link are taken
    // out first and put back last, as steps of their own, so the plan says so
    // and an undo restores them.
    let disturbed: BTreeSet<String> = steps
        .iter()
        .chain(&disturbed_addresses)
        .filter_map(|s| match &s.op {
            NetOp::RemoveAddress { name, .. }
            | NetOp::DeleteLink { name, .. }
            | NetOp::SetMaster { name, .. }
            | NetOp::SetUp { name, up: false } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let disturbed_routes: Vec<Step> = observed
        .routes
        .intersection(&desired.routes)
        .filter(|r| disturbed.contains(&r.device))
        .map(|r| step(NetOp::RemoveRoute { route: r.clone() }))
        .collect();
    for route in &desired.routes {
        if disturbed.contains(&route.device) || !observed.routes.contains(route) {
            steps.push(step(NetOp::AddRoute {
                route: route.clone(),
            }));
        }
    }
    let first_non_route = steps
        .iter()
        .position(|s| !matches!(s.op, NetOp::RemoveRoute { .. }))
        .unwrap_or(steps.len());
    steps.splice(
        first_non_route..first_non_route,
        disturbed_routes.into_iter().chain(disturbed_addresses),
    );
    // Rules name a table number, not a link: they can change at any point.
    for rule in observed.rules.difference(&desired.rules) {
        steps.push(step(NetOp::RemoveRule { rule: *rule }));
    }
    for rule in desired.rules.difference(&observed.rules) {
        steps.push(step(NetOp::AddRule { rule: *rule }));
    }
    steps
}

fn why_recreate(have: &LinkType, want: &LinkType) -> Option<String> {
    match (have, want) {
        (LinkType::Bond(from), LinkType::Bond(to)) if !from.changes_live(to) => {
            Some(if from.mode != to.mode {
                format!(
                    "a bond's mode cannot change while it is up ({} -> {})",
                    from.mode.keyword(),
                    to.mode.keyword()
                )
            } else {
                format!(
                    "a bond's lacp-rate cannot change while it is up ({} -> {})",
                    from.lacp_rate.keyword(),
                    to.lacp_rate.keyword()
                )
            })
        }
        (LinkType::Vlan { id: a, parent: p }, LinkType::Vlan { id: b, parent: q })
            if a != b || p != q =>
        {
            Some(format!(
                "a VLAN's id and parent are fixed (id {a} on {p} -> id {b} on {q})"
            ))
        }
        (LinkType::Bond(_), LinkType::Bond(_)) | (LinkType::Vlan { .. }, LinkType::Vlan { .. }) => {
            None
        }
        _ => Some("its type changes".to_owned()),
    }
}
