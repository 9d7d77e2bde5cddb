//! rtnetlink backend: see kernel/mod.rs for the contract.
//!
//! Every operation resolves the names it needs with a fresh `RTM_GETLINK`, then
//! sends one request, with two exceptions the kernel forces:
//!
//! - Creating a link: the kernel ignores `IFLA_IFALIAS` in a creating
//!   `RTM_NEWLINK`, so the [`OWNED_ALIAS`] is set by a second request. Should that
//!   fail, the new link is deleted again, so the failed operation leaves nothing.
//! - Changing a bond: the kernel applies the options of one request in its own
//!   fixed order and stops at the first it refuses, keeping the ones before; on
//!   a refusal the old values are sent back, so the operation changed nothing.
//!
//! What the kernel does by itself, which a plan relies on:
//!
//! - A bond's `primary` is kept by name: set before the slave is enslaved, the
//!   kernel records it and makes that slave primary when it joins; no request is
//!   needed after enslaving. The kernel only *reports* a primary while that
//!   slave is enslaved, so a fresh bond observes `primary: None` until then.
//! - The bond's up and down delays are kept in multiples of `miimon`; they are
//!   sent again whenever `miimon` changes, and never while it is 0 (the kernel
//!   refuses them then).
//! - Addresses are added as `ip addr add A/P dev X` adds them: local and peer
//!   address, universe scope, and no broadcast address.
//! - Removing the first IPv4 address of a subnet removes the others with it
//!   unless the interface promotes secondaries; before removing an IPv4 address
//!   from an interface (one `network.conf` names), `promote_secondaries` is
//!   turned on for it, so exactly the planned address goes.
//! - A new IPv6 address is `tentative` while the kernel's duplicate address
//!   detection (DAD) asks the link whether another host has it. Adding one
//!   returns only once DAD is over, waiting at most [`DAD_LIMIT`]: an address
//!   the kernel marks `dadfailed`, or one still tentative at the limit, is
//!   removed again and the operation fails (so the apply rolls back). On a link
//!   that is down DAD waits for the link: the address is added without waiting.
//! - The kernel's own IPv6 addresses and routes are not lbconsole's: link-local
//!   addresses (`fe80::/10`), addresses with a lifetime (SLAAC, privacy
//!   addresses: not `IFA_F_PERMANENT`), and the routes the kernel makes (of
//!   protocols other than ours; `fe80::/64`, multicast and local ones are left
//!   out of the observation altogether). A plan never sees them, so never
//!   removes them, and they are never a difference to apply.
//! - `accept_ra` is read per link from the link dump (`IFLA_INET6_CONF`, the
//!   value of `/proc/sys/net/ipv6/conf/IF/accept_ra`) and never written.
//! - A VLAN would inherit its parent's MTU; it is created at 1500 (or at the
//!   parent's MTU when that is lower), the MTU the plan assumes for a new link.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, BondLacpRate, BondMode as KernelBondMode, BondXmitHashPolicy,
    InfoBond, InfoBondPort, InfoData, InfoKind, InfoPortData, InfoVlan, LinkAttribute, LinkFlags,
    LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteType,
};
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{
    AddressMessageBuilder, Handle, LinkBond, LinkMessageBuilder, LinkUnspec, LinkVlan,
    RouteMessageBuilder,
};

use super::nlwire::extack_message;
use super::{
    BondStatus, Cause, KernelError, LinkStatus, NetworkBackend, Observation, RouteStatus,
    SlaveStatus, VlanStatus,
};
use crate::config::model::network::{BondMode, LacpRate, XmitHashPolicy};
use crate::config::model::types::{Family, IpNet};
use crate::plan::flows::{MarkRule, RULE_PRIORITY};
use crate::plan::network::{
    BondSettings, DEFAULT_MTU, Identity, Link, LinkType, MacAddress, NetOp, NewLink, OWNED_ALIAS,
    ROUTE_PROTOCOL, RouteEntry,
};

/// The kernel's `local` routing table: addresses and broadcasts, never ours.
const RT_TABLE_LOCAL: u32 = 255;
/// `ENODEV`, as the kernel answers a lookup of a link that does not exist.
const ENODEV: i32 = 19;

/// How long adding an IPv6 address waits for the kernel's duplicate address
/// detection. With the kernel's defaults DAD takes at most 2 s: a random delay
/// of up to `rtr_solicit_delay` (1 s), then `dad_transmits` (1) neighbour
/// solicitation answered by nobody for `retrans_time_ms` (1 s). The rest is for
/// a link whose carrier is still coming up (a bond just given its slaves).
pub const DAD_LIMIT: Duration = Duration::from_secs(5);
/// How often the address is looked at while DAD runs.
const DAD_POLL: Duration = Duration::from_millis(50);

/// Where the kernel's duplicate address detection stands for one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dad {
    /// `tentative`: still asking the link.
    Running,
    /// `dadfailed`: another host on the link has it.
    Failed,
    /// In use (or never checked: an IPv4 address, `nodad`).
    Done,
}

/// The rtnetlink connection; its socket is served by a task on the tokio runtime.
#[derive(Debug, Clone)]
pub struct NetlinkBackend {
    handle: Handle,
}

impl NetlinkBackend {
    pub async fn connect() -> Result<Self, KernelError> {
        let (mut connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| KernelError::Connect(Cause::io(&e)))?;
        // Extended acks add the kernel's own words to an errno ("Nexthop has
        // invalid gateway"). A kernel without them still answers with the errno.
        let _ = connection.socket_mut().socket_mut().set_ext_ack(true);
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// The link called `name`, looked up now.
    async fn lookup(&self, name: &str) -> Result<LinkMessage, Cause> {
        let missing = || Cause::Other(format!("interface {name} does not exist"));
        let mut reply = self.handle.link().get().match_name(name).execute();
        match reply.try_next().await {
            Ok(Some(link)) => Ok(link),
            Ok(None) => Err(missing()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -ENODEV => Err(missing()),
            Err(e) => Err(describe(e)),
        }
    }

    async fn index(&self, name: &str) -> Result<u32, Cause> {
        Ok(self.lookup(name).await?.header.index)
    }

    /// The index to send as a bond's `IFLA_BOND_PRIMARY`: 0 clears it.
    async fn primary_index(&self, primary: Option<&str>) -> Result<u32, Cause> {
        match primary {
            Some(name) => self.index(name).await,
            None => Ok(0),
        }
    }

    /// Sends a change (`ip link set`) of an existing link.
    async fn change(&self, message: LinkMessage) -> Result<(), Cause> {
        self.handle
            .link()
            .change(message)
            .execute()
            .await
            .map_err(describe)
    }

    /// Creates a link, then marks it as ours; a link that cannot be marked goes again.
    async fn create(&self, name: &str, message: LinkMessage) -> Result<(), Cause> {
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(describe)?;
        let alias = LinkUnspec::new_with_name(name).alias(OWNED_ALIAS).build();
        let Err(reason) = self.change(alias).await else {
            return Ok(());
        };
        let undo = self
            .handle
            .link()
            .del_with_message(LinkUnspec::new_with_name(name).build())
            .execute()
            .await;
        Err(match undo {
            Ok(()) => reason.within("", " (setting its ifalias; the new link was deleted again)"),
            Err(e) => reason.within(
                "",
                format!(
                    " (setting its ifalias; deleting the new link failed too: {})",
                    describe(e)
                ),
            ),
        })
    }

    /// Waits, at most [`DAD_LIMIT`], until the kernel's duplicate address
    /// detection is done with `address`, just added to link `name`. When it
    /// fails, or is still running at the limit, the address is removed again.
    async fn await_dad(&self, name: &str, index: u32, address: IpNet) -> Result<(), Cause> {
        // A link that is down starts DAD when it comes up: nothing to wait for.
        if !self
            .lookup(name)
            .await?
            .header
            .flags
            .contains(LinkFlags::Up)
        {
            return Ok(());
        }
        let deadline = Instant::now() + DAD_LIMIT;
        let failure = loop {
            match self.dad(index, address).await? {
                Some(Dad::Done) => return Ok(()),
                Some(Dad::Failed) => {
                    break Cause::DuplicateAddress {
                        interface: name.to_owned(),
                        address,
                    };
                }
                Some(Dad::Running) if Instant::now() >= deadline => {
                    break Cause::Other(format!(
                        "{address} on {name} is still tentative after {} s: duplicate address \
                         detection has not finished (has the link no carrier?)",
                        DAD_LIMIT.as_secs()
                    ));
                }
                Some(Dad::Running) => tokio::time::sleep(DAD_POLL).await,
                None => {
                    return Err(Cause::Other(format!(
                        "{address} disappeared from {name} during duplicate address detection"
                    )));
                }
            }
        };
        // The failed operation leaves nothing behind.
        let removed = self
            .handle
            .address()
            .del(address_message(index, address))
            .execute()
            .await;
        Err(match removed {
            Ok(()) => failure.within("", " (the address was removed again)"),
            Err(e) => failure.within(
                "",
                format!(" (removing the address failed too: {})", describe(e)),
            ),
        })
    }

    /// Where DAD stands for `address` on link `index`; `None` when the link
    /// does not have it.
    async fn dad(&self, index: u32, address: IpNet) -> Result<Option<Dad>, Cause> {
        let mut request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(address.addr);
        request.message_mut().header.family = AddressFamily::Inet6;
        let found: Vec<AddressMessage> = request.execute().try_collect().await.map_err(describe)?;
        Ok(found
            .iter()
            .find(|m| m.header.prefix_len == address.prefix)
            .map(|m| dad_state(address_flags(m))))
    }

    async fn carry_out(&self, op: &NetOp) -> Result<(), Cause> {
        match op {
            NetOp::CreateLink {
                name,
                link: NewLink::Bond(settings),
                identity,
            } => {
                let primary = match &settings.primary {
                    Some(primary) if settings.mode.uses_primary() => {
                        Some(self.index(primary).await?)
                    }
                    _ => None,
                };
                self.create(name, keeping(new_bond(name, settings, primary), identity))
                    .await
            }
            NetOp::CreateLink {
                name,
                link: NewLink::Vlan { id, parent },
                identity,
            } => {
                let parent = self.lookup(parent).await?;
                self.create(name, keeping(new_vlan(name, *id, &parent), identity))
                    .await
            }
            NetOp::DeleteLink { name, .. } => {
                let index = self.index(name).await?;
                self.handle
                    .link()
                    .del(index)
                    .execute()
                    .await
                    .map_err(describe)
            }
            NetOp::SetBond { name, from, to } => {
                let index = self.index(name).await?;
                let primary = if to.mode.uses_primary() && to.primary != from.primary {
                    Some(self.primary_index(to.primary.as_deref()).await?)
                } else {
                    None
                };
                let Err(reason) = self.change(bond_change(index, from, to, primary)).await else {
                    return Ok(());
                };
                // The kernel applies a request's bond options one by one and keeps
                // those before the one it refused: send the old values back, so
                // the failed operation has changed nothing.
                let primary = if from.mode.uses_primary() && to.primary != from.primary {
                    self.primary_index(from.primary.as_deref()).await.ok()
                } else {
                    None
                };
                if let Err(undo) = self.change(bond_change(index, to, from, primary)).await {
                    return Err(reason.within(
                        "",
                        format!("; restoring the options already changed failed too: {undo}"),
                    ));
                }
                Err(reason)
            }
            NetOp::SetMaster {
                name,
                to,
                master_mac,
                slave_down,
                ..
            } => {
                let index = self.index(name).await?;
                let link = LinkUnspec::new_with_index(index);
                let link = match to {
                    Some(master) => {
                        let bond = self.lookup(master).await?;
                        if let Some(mac) = master_mac
                            && link_mac(&bond) != Some(*mac)
                        {
                            let restore = LinkUnspec::new_with_index(bond.header.index)
                                .address(mac.0.to_vec())
                                .build();
                            self.change(restore).await?;
                        }
                        link.controller(bond.header.index)
                    }
                    None => link.nocontroller(),
                };
                self.change(link.build()).await?;
                // The bond opened the slave; one that was down in it goes down again.
                if to.is_some() && *slave_down {
                    let down = LinkUnspec::new_with_index(index).down().build();
                    if let Err(reason) = self.change(down).await {
                        let release = LinkUnspec::new_with_index(index).nocontroller().build();
                        if let Err(undo) = self.change(release).await {
                            return Err(reason.within(
                                "",
                                format!("; releasing it from its bond again failed too: {undo}"),
                            ));
                        }
                        return Err(reason);
                    }
                }
                Ok(())
            }
            NetOp::SetMtu { name, to, .. } => {
                let index = self.index(name).await?;
                self.change(LinkUnspec::new_with_index(index).mtu(*to).build())
                    .await
            }
            NetOp::SetUp { name, up } => {
                let link = LinkUnspec::new_with_index(self.index(name).await?);
                let link = if *up { link.up() } else { link.down() };
                self.change(link.build()).await
            }
            NetOp::AddAddress { name, address } => {
                let index = self.index(name).await?;
                let mut request = self
                    .handle
                    .address()
                    .add(index, address.addr, address.prefix);
                // The same message, less the broadcast address rtnetlink adds.
                *request.message_mut() = address_message(index, *address);
                request.execute().await.map_err(describe)?;
                if address.family() == Family::Ipv6 {
                    self.await_dad(name, index, *address).await?;
                }
                Ok(())
            }
            NetOp::RemoveAddress { name, address } => {
                let index = self.index(name).await?;
                if address.family() == Family::Ipv4 {
                    promote_secondaries(name).map_err(|e| {
                        Cause::io(&e).within("cannot turn on promote_secondaries: ", "")
                    })?;
                }
                self.handle
                    .address()
                    .del(address_message(index, *address))
                    .execute()
                    .await
                    .map_err(describe)
            }
            NetOp::AddRoute { route } => {
                let device = self.index(&route.device).await?;
                self.handle
                    .route()
                    .add(route_message(route, device)?)
                    .execute()
                    .await
                    .map_err(describe)
            }
            NetOp::RemoveRoute { route } => {
                let device = self.index(&route.device).await?;
                self.handle
                    .route()
                    .del(route_message(route, device)?)
                    .execute()
                    .await
                    .map_err(describe)
            }
            NetOp::AddRule { rule } => {
                let mut request = self.handle.rule().add();
                *request.message_mut() = rule_message(rule);
                request.execute().await.map_err(describe)
            }
            NetOp::RemoveRule { rule } => self
                .handle
                .rule()
                .del(rule_message(rule))
                .execute()
                .await
                .map_err(describe),
        }
    }
}

impl NetworkBackend for NetlinkBackend {
    fn has_module(&self, name: &str) -> bool {
        super::host::has_module(name)
    }

    fn may_change(&self) -> bool {
        super::host::has_net_admin()
    }

    async fn observe(&mut self) -> Result<Observation, KernelError> {
        let failed = |what: &'static str| {
            move |e: rtnetlink::Error| KernelError::Observe {
                what,
                cause: describe(e),
            }
        };
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(failed("links"))?;
        // No family: the addresses of both.
        let mut addresses = self.handle.address().get();
        addresses.message_mut().header.family = AddressFamily::Unspec;
        let addresses: Vec<AddressMessage> = addresses
            .execute()
            .try_collect()
            .await
            .map_err(failed("addresses"))?;
        let mut routes: Vec<RouteMessage> = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            // Table 0 and no other field set: every table, unfiltered.
            let mut dump = RouteMessage::default();
            dump.header.address_family = family;
            let mut of_family: Vec<RouteMessage> = self
                .handle
                .route()
                .get(dump)
                .execute()
                .try_collect()
                .await
                .map_err(failed("routes"))?;
            routes.append(&mut of_family);
        }
        let mut rules: Vec<RuleMessage> = Vec::new();
        for version in [rtnetlink::IpVersion::V4, rtnetlink::IpVersion::V6] {
            let dump: Vec<RuleMessage> = self
                .handle
                .rule()
                .get(version)
                .execute()
                .try_collect()
                .await
                .map_err(failed("rules"))?;
            rules.extend(dump);
        }
        let mut observation = assemble(links, addresses, routes);
        observation.state.rules = rules.iter().filter_map(mark_rule).collect();
        Ok(observation)
    }

    async fn execute(&mut self, op: &NetOp) -> Result<(), KernelError> {
        self.carry_out(op)
            .await
            .map_err(|cause| KernelError::Operation {
                op: op.to_string(),
                cause,
            })
    }
}

/// The kernel's answer: the errno, and the kernel's own message if it sent one.
fn describe(error: rtnetlink::Error) -> Cause {
    match error {
        rtnetlink::Error::NetlinkError(message) => Cause::Kernel {
            errno: message.raw_code().saturating_abs(),
            // rtnetlink's socket does not cap acknowledgements: the whole
            // request is echoed.
            extack: extack_message(&message.header, false),
        },
        other => Cause::Other(other.to_string()),
    }
}

/// `RTM_NEWLINK` creating a bond. `primary` is the primary slave's index, given
/// only for a mode that has one.
fn new_bond(name: &str, settings: &BondSettings, primary: Option<u32>) -> LinkMessage {
    let mut bond = LinkBond::new(name)
        .mode(KernelBondMode::from(settings.mode.number()))
        .miimon(settings.miimon);
    if settings.miimon > 0 {
        bond = bond.updelay(settings.updelay).downdelay(settings.downdelay);
    }
    bond = bond.xmit_hash_policy(BondXmitHashPolicy::from(xmit_hash_number(
        settings.xmit_hash_policy,
    )));
    if settings.mode == BondMode::Lacp {
        bond = bond.ad_lacp_rate(BondLacpRate::from(lacp_rate_number(settings.lacp_rate)));
    }
    if let Some(primary) = primary {
        bond = bond.primary(primary);
    }
    bond.build()
}

/// `RTM_NEWLINK` changing bond `index` from `from` to `to`: only what differs.
/// `primary` is the index to send as the primary (0 clears it), when it changes.
fn bond_change(
    index: u32,
    from: &BondSettings,
    to: &BondSettings,
    primary: Option<u32>,
) -> LinkMessage {
    let mut bond = LinkMessageBuilder::<LinkBond>::new_with_info_kind(InfoKind::Bond).index(index);
    if to.mode != from.mode {
        bond = bond.mode(KernelBondMode::from(to.mode.number()));
    }
    let miimon_changed = to.miimon != from.miimon;
    if miimon_changed {
        bond = bond.miimon(to.miimon);
    }
    if to.miimon > 0 {
        if miimon_changed || to.updelay != from.updelay {
            bond = bond.updelay(to.updelay);
        }
        if miimon_changed || to.downdelay != from.downdelay {
            bond = bond.downdelay(to.downdelay);
        }
    }
    if let Some(primary) = primary {
        bond = bond.primary(primary);
    }
    if to.xmit_hash_policy != from.xmit_hash_policy {
        bond = bond.xmit_hash_policy(BondXmitHashPolicy::from(xmit_hash_number(
            to.xmit_hash_policy,
        )));
    }
    if to.lacp_rate != from.lacp_rate {
        bond = bond.ad_lacp_rate(BondLacpRate::from(lacp_rate_number(to.lacp_rate)));
    }
    bond.build()
}

/// `RTM_NEWLINK` creating a VLAN on `parent`, at [`DEFAULT_MTU`] unless the
/// parent's MTU is lower (then the kernel's default, the parent's MTU).
fn link_mac(message: &LinkMessage) -> Option<MacAddress> {
    message.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok().map(MacAddress),
        _ => None,
    })
}

/// A creating request that asks for the link's former index and address, when it
/// had them (the kernel takes a requested index if it is free).
fn keeping(mut message: LinkMessage, identity: &Identity) -> LinkMessage {
    if let Some(index) = identity.index {
        message.header.index = index;
    }
    if let Some(MacAddress(bytes)) = identity.mac {
        message
            .attributes
            .push(LinkAttribute::Address(bytes.to_vec()));
    }
    message
}

fn new_vlan(name: &str, id: u16, parent: &LinkMessage) -> LinkMessage {
    let vlan = LinkVlan::new(name, parent.header.index, id);
    let parent_mtu = parent.attributes.iter().find_map(|a| match a {
        LinkAttribute::Mtu(mtu) => Some(*mtu),
        _ => None,
    });
    if parent_mtu.is_some_and(|mtu| mtu > DEFAULT_MTU) {
        vlan.mtu(DEFAULT_MTU).build()
    } else {
        vlan.build()
    }
}

/// An address as `ip addr add|del A/P dev X` sends it: local and peer address
/// the same, no broadcast.
fn address_message(index: u32, address: IpNet) -> AddressMessage {
    let mut message = match address.addr {
        IpAddr::V4(addr) => AddressMessageBuilder::<Ipv4Addr>::new()
            .index(index)
            .address(addr, address.prefix)
            .build(),
        IpAddr::V6(addr) => AddressMessageBuilder::<Ipv6Addr>::new()
            .index(index)
            .address(addr, address.prefix)
            .build(),
    };
    message
        .attributes
        .retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
    message
}

/// One of our routes, to add or to delete: unicast, universe scope, our
/// protocol (so that deleting matches it too), of its destination's family. A
/// table above 255 travels in `RTA_TABLE`.
fn route_message(route: &RouteEntry, device: u32) -> Result<RouteMessage, Cause> {
    if route.destination.family() != Family::of(route.gateway) {
        return Err(Cause::Other(format!(
            "route {route}: an {} destination needs an {} gateway",
            route.destination.family(),
            route.destination.family()
        )));
    }
    let builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.destination.network(), route.destination.prefix)
        .and_then(|b| b.gateway(route.gateway))
        .map_err(|e| Cause::Other(format!("route {route}: {e}")))?;
    Ok(builder
        .table_id(route.table)
        .protocol(RouteProtocol::from(ROUTE_PROTOCOL))
        .output_interface(device)
        .build())
}

/// One of our policy routing rules, to add or to delete; the protocol tags it
/// as ours, and deleting matches it too.
fn rule_message(rule: &MarkRule) -> RuleMessage {
    let mut message = RuleMessage::default();
    message.header.family = match rule.family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    };
    message.header.action = RuleAction::ToTable;
    message.attributes = vec![
        RuleAttribute::FwMark(rule.mark),
        RuleAttribute::Table(rule.table),
        RuleAttribute::Priority(RULE_PRIORITY),
        RuleAttribute::Protocol(RouteProtocol::from(ROUTE_PROTOCOL)),
    ];
    message
}

/// A rule of the dump that is ours: our protocol, a mark and a table.
pub(super) fn mark_rule(message: &RuleMessage) -> Option<MarkRule> {
    let (mut ours, mut mark, mut table) = (false, None, u32::from(message.header.table));
    for attribute in &message.attributes {
        match attribute {
            RuleAttribute::Protocol(protocol) => ours = u8::from(*protocol) == ROUTE_PROTOCOL,
            RuleAttribute::FwMark(value) => mark = Some(*value),
            RuleAttribute::Table(value) => table = *value,
            _ => {}
        }
    }
    ours.then_some(())?;
    let family = match message.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    Some(MarkRule {
        family,
        mark: mark?,
        table,
    })
}

fn bond_mode(number: u8) -> Option<BondMode> {
    BondMode::ALL.get(usize::from(number)).copied()
}

fn xmit_hash_policy(number: u8) -> Option<XmitHashPolicy> {
    XmitHashPolicy::ALL.get(usize::from(number)).copied()
}

fn xmit_hash_number(policy: XmitHashPolicy) -> u8 {
    match policy {
        XmitHashPolicy::Layer2 => 0,
        XmitHashPolicy::Layer34 => 1,
        XmitHashPolicy::Layer23 => 2,
        XmitHashPolicy::Encap23 => 3,
        XmitHashPolicy::Encap34 => 4,
        XmitHashPolicy::VlanSrcMac => 5,
    }
}

fn lacp_rate(number: u8) -> Option<LacpRate> {
    match number {
        0 => Some(LacpRate::Slow),
        1 => Some(LacpRate::Fast),
        _ => None,
    }
}

fn lacp_rate_number(rate: LacpRate) -> u8 {
    match rate {
        LacpRate::Slow => 0,
        LacpRate::Fast => 1,
    }
}

/// `IFLA_BOND_SLAVE_STATE`.
fn slave_state(number: u8) -> String {
    match number {
        0 => "active".to_owned(),
        1 => "backup".to_owned(),
        n => n.to_string(),
    }
}

/// `IFLA_BOND_SLAVE_MII_STATUS`: the kernel's `BOND_LINK_*`.
fn mii_status(number: u8) -> String {
    match number {
        0 => "up".to_owned(),
        1 => "going-down".to_owned(),
        2 => "down".to_owned(),
        3 => "going-back".to_owned(),
        n => n.to_string(),
    }
}

/// What one link message says, before indexes become names.
#[derive(Debug)]
struct LinkFacts {
    index: u32,
    name: String,
    kind: String,
    admin_up: bool,
    oper_state: String,
    mtu: u32,
    master: Option<u32>,
    alias: Option<String>,
    mac: Option<MacAddress>,
    /// `IFLA_LINK` (a VLAN's parent), when it is in this namespace.
    parent: Option<u32>,
    bond: Vec<InfoBond>,
    vlan_id: Option<u16>,
    port: Vec<InfoBondPort>,
    /// `net.ipv6.conf.IF.accept_ra`, when the link has IPv6.
    accept_ra: Option<u8>,
}

impl LinkFacts {
    fn of(message: LinkMessage) -> Self {
        let mut facts = Self {
            index: message.header.index,
            name: String::new(),
            kind: String::new(),
            admin_up: message.header.flags.contains(LinkFlags::Up),
            oper_state: "unknown".to_owned(),
            mtu: 0,
            master: None,
            alias: None,
            mac: None,
            parent: None,
            bond: Vec::new(),
            vlan_id: None,
            port: Vec::new(),
            accept_ra: None,
        };
        let mut parent_elsewhere = false;
        for attribute in message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => facts.name = name,
                LinkAttribute::Mtu(mtu) => facts.mtu = mtu,
                LinkAttribute::OperState(state) => {
                    facts.oper_state = state.to_string().to_lowercase();
                }
                LinkAttribute::Controller(index) => facts.master = Some(index).filter(|&i| i > 0),
                LinkAttribute::IfAlias(alias) => facts.alias = Some(alias),
                LinkAttribute::Address(bytes) => {
                    facts.mac = <[u8; 6]>::try_from(bytes).ok().map(MacAddress)
                }
                LinkAttribute::Link(index) => facts.parent = Some(index).filter(|&i| i > 0),
                LinkAttribute::LinkNetNsId(_) => parent_elsewhere = true,
                LinkAttribute::AfSpecUnspec(families) => {
                    facts.accept_ra = families.iter().find_map(|family| match family {
                        AfSpecUnspec::Inet6(inet6) => inet6.iter().find_map(|a| match a {
                            AfSpecInet6::DevConf(conf) => u8::try_from(conf.accept_ra).ok(),
                            _ => None,
                        }),
                        _ => None,
                    });
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => facts.kind = kind.to_string(),
                            LinkInfo::Data(InfoData::Bond(bond)) => facts.bond = bond,
                            LinkInfo::Data(InfoData::Vlan(vlan)) => {
                                facts.vlan_id = vlan.iter().find_map(|v| match v {
                                    InfoVlan::Id(id) => Some(*id),
                                    _ => None,
                                });
                            }
                            LinkInfo::PortData(InfoPortData::BondPort(port)) => facts.port = port,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if parent_elsewhere {
            facts.parent = None;
        }
        facts
    }
}

/// A bond's settings from its `IFLA_INFO_DATA`; `None` if the kernel reports a
/// mode, policy or rate that lbconsole does not know.
fn bond_settings(
    info: &[InfoBond],
    name_of: impl Fn(u32) -> Option<String>,
) -> Option<BondSettings> {
    let mut mode = None;
    let mut settings = BondSettings {
        mode: BondMode::BalanceRr,
        miimon: 0,
        updelay: 0,
        downdelay: 0,
        primary: None,
        xmit_hash_policy: XmitHashPolicy::Layer2,
        lacp_rate: LacpRate::Slow,
    };
    for option in info {
        match option {
            InfoBond::Mode(number) => mode = Some(bond_mode(u8::from(*number))?),
            InfoBond::MiiMon(ms) => settings.miimon = *ms,
            InfoBond::UpDelay(ms) => settings.updelay = *ms,
            InfoBond::DownDelay(ms) => settings.downdelay = *ms,
            InfoBond::Primary(index) => settings.primary = name_of(*index),
            InfoBond::XmitHashPolicy(policy) => {
                settings.xmit_hash_policy = xmit_hash_policy(u8::from(*policy))?;
            }
            InfoBond::AdLacpRate(rate) => settings.lacp_rate = lacp_rate(u8::from(*rate))?,
            _ => {}
        }
    }
    settings.mode = mode?;
    Some(settings)
}

fn slave_status(name: &str, port: &[InfoBondPort]) -> SlaveStatus {
    let mut slave = SlaveStatus {
        name: name.to_owned(),
        state: "unknown".to_owned(),
        mii_status: "unknown".to_owned(),
        link_failures: 0,
    };
    for attribute in port {
        match attribute {
            InfoBondPort::BondPortState(state) => slave.state = slave_state(u8::from(*state)),
            InfoBondPort::MiiStatus(status) => slave.mii_status = mii_status(u8::from(*status)),
            InfoBondPort::LinkFailureCount(count) => slave.link_failures = *count,
            _ => {}
        }
    }
    slave
}

/// What an address of the dump is to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// An administrator's (lbconsole's, or someone's by hand): planned.
    /// `dad_failed`: an IPv6 address another host on the link has.
    Admin { dad_failed: bool },
    /// The kernel's: an IPv6 link-local address, or one with a lifetime.
    Kernel,
}

/// The address flags: `IFA_FLAGS` when the kernel sends it (all 32 bits),
/// else the header's 8.
fn address_flags(message: &AddressMessage) -> AddressFlags {
    message
        .attributes
        .iter()
        .find_map(|a| match a {
            AddressAttribute::Flags(flags) => Some(*flags),
            _ => None,
        })
        .unwrap_or_else(|| AddressFlags::from_bits_retain(u32::from(message.header.flags.bits())))
}

fn dad_state(flags: AddressFlags) -> Dad {
    if flags.contains(AddressFlags::Dadfailed) {
        Dad::Failed
    } else if flags.contains(AddressFlags::Tentative) {
        Dad::Running
    } else {
        Dad::Done
    }
}

/// An address of a link, IPv4 or IPv6: its local address (the peer's is
/// `IFA_ADDRESS`), and whose it is.
fn link_address(message: &AddressMessage) -> Option<(IpNet, Owner)> {
    let family = match message.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let address = |local: bool| {
        message.attributes.iter().find_map(|a| match (a, local) {
            (AddressAttribute::Local(addr), true) | (AddressAttribute::Address(addr), false) => {
                Some(*addr).filter(|addr| Family::of(*addr) == family)
            }
            _ => None,
        })
    };
    let addr = address(true).or_else(|| address(false))?;
    let net = IpNet::new(addr, message.header.prefix_len)?;
    let flags = address_flags(message);
    let owner = match addr {
        IpAddr::V6(v6) if is_link_local(v6) || !flags.contains(AddressFlags::Permanent) => {
            Owner::Kernel
        }
        IpAddr::V6(_) => Owner::Admin {
            dad_failed: dad_state(flags) == Dad::Failed,
        },
        IpAddr::V4(_) => Owner::Admin { dad_failed: false },
    };
    Some((net, owner))
}

/// `fe80::/10`: the kernel gives every IPv6 link one of these.
fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

fn route_address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(addr) => Some(IpAddr::V4(*addr)),
        RouteAddress::Inet6(addr) => Some(IpAddr::V6(*addr)),
        _ => None,
    }
}

/// A unicast route of either family outside the `local` table, less the
/// kernel's IPv6 link-local ones.
fn route_status(
    message: &RouteMessage,
    name_of: impl Fn(u32) -> Option<String>,
) -> Option<RouteStatus> {
    let header = &message.header;
    let family = match header.address_family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    if header.kind != RouteType::Unicast {
        return None;
    }
    let mut table = u32::from(header.table);
    let mut destination = family.unspecified();
    let mut gateway = None;
    let mut device = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Table(id) => table = *id,
            RouteAttribute::Destination(addr) => destination = route_address(addr)?,
            RouteAttribute::Gateway(addr) => gateway = route_address(addr),
            RouteAttribute::Oif(index) => device = name_of(*index),
            _ => {}
        }
    }
    if table == RT_TABLE_LOCAL || Family::of(destination) != family {
        return None;
    }
    if let IpAddr::V6(v6) = destination
        && is_link_local(v6)
    {
        return None;
    }
    let protocol = u8::from(header.protocol);
    Some(RouteStatus {
        table,
        destination: IpNet::new(destination, header.destination_prefix_length)?,
        gateway: gateway.filter(|g| Family::of(*g) == family),
        device,
        protocol,
        ours: protocol == ROUTE_PROTOCOL,
    })
}

/// The observation the three dumps add up to.
pub(super) fn assemble(
    links: Vec<LinkMessage>,
    addresses: Vec<AddressMessage>,
    routes: Vec<RouteMessage>,
) -> Observation {
    let mut facts: Vec<LinkFacts> = links.into_iter().map(LinkFacts::of).collect();
    facts.sort_by_key(|f| f.index);
    let names: BTreeMap<u32, &str> = facts.iter().map(|f| (f.index, f.name.as_str())).collect();
    let name_of = |index: u32| names.get(&index).map(|name| (*name).to_owned());

    /// A link's addresses: the planned ones, which of them failed DAD, the kernel's.
    #[derive(Default)]
    struct Addresses {
        admin: BTreeSet<IpNet>,
        dad_failed: Vec<IpNet>,
        kernel: Vec<IpNet>,
    }
    let mut addresses_of: BTreeMap<u32, Addresses> = BTreeMap::new();
    for message in &addresses {
        let Some((address, owner)) = link_address(message) else {
            continue;
        };
        let of_link = addresses_of.entry(message.header.index).or_default();
        match owner {
            Owner::Admin { dad_failed } => {
                of_link.admin.insert(address);
                if dad_failed {
                    of_link.dad_failed.push(address);
                }
            }
            Owner::Kernel => of_link.kernel.push(address),
        }
    }

    let mut observation = Observation::default();
    for link in &facts {
        let addresses = addresses_of.remove(&link.index).unwrap_or_default();
        let kind = match link.kind.as_str() {
            "bond" => bond_settings(&link.bond, name_of).map(LinkType::Bond),
            "vlan" => link
                .vlan_id
                .zip(link.parent.and_then(name_of))
                .map(|(id, parent)| LinkType::Vlan { id, parent }),
            _ => None,
        }
        .unwrap_or_else(|| LinkType::Other(link.kind.clone()));
        let owned = link.alias.as_deref() == Some(OWNED_ALIAS)
            && matches!(kind, LinkType::Bond(_) | LinkType::Vlan { .. });
        let master = link.master.and_then(name_of);
        let bond = (link.kind == "bond").then(|| BondStatus {
            mode: link
                .bond
                .iter()
                .find_map(|o| match o {
                    InfoBond::Mode(mode) => Some(mode.to_string()),
                    _ => None,
                })
                .unwrap_or_default(),
            active_slave: link.bond.iter().find_map(|o| match o {
                InfoBond::ActivePort(index) => name_of(*index),
                _ => None,
            }),
            slaves: facts
                .iter()
                .filter(|s| s.master == Some(link.index) && !s.port.is_empty())
                .map(|s| slave_status(&s.name, &s.port))
                .collect(),
        });
        let vlan = match &kind {
            LinkType::Vlan { id, parent } => Some(VlanStatus {
                id: *id,
                parent: parent.clone(),
            }),
            _ => None,
        };
        observation.links.push(LinkStatus {
            name: link.name.clone(),
            index: link.index,
            kind: link.kind.clone(),
            oper_state: link.oper_state.clone(),
            admin_up: link.admin_up,
            mtu: link.mtu,
            master: master.clone(),
            owned,
            addresses: addresses.admin.iter().copied().collect(),
            kernel_addresses: addresses.kernel,
            dad_failed: addresses.dad_failed,
            accept_ra: link.accept_ra,
            bond,
            vlan,
        });
        observation.state.links.insert(
            link.name.clone(),
            Link {
                kind,
                identity: Identity {
                    index: Some(link.index),
                    mac: link.mac,
                },
                owned,
                master,
                mtu: link.mtu,
                up: link.admin_up,
                addresses: addresses.admin,
            },
        );
    }

    for route in routes.iter().filter_map(|r| route_status(r, name_of)) {
        if let (true, Some(gateway), Some(device)) = (route.ours, route.gateway, &route.device) {
            observation.state.routes.insert(RouteEntry {
                table: route.table,
                destination: route.destination,
                gateway,
                device: device.clone(),
            });
        }
        observation.routes.push(route);
    }
    observation.routes.sort_by_key(|r| r.table);
    observation
}

/// Makes the kernel promote a secondary address when the primary of its subnet
/// is removed, instead of removing the secondaries too (a per-namespace sysctl).
fn promote_secondaries(interface: &str) -> std::io::Result<()> {
    std::fs::write(
        format!("/proc/sys/net/ipv4/conf/{interface}/promote_secondaries"),
        "1",
    )
}

#[cfg(test)]
mod tests {
    use netlink_packet_route::address::AddressHeaderFlags;
    use netlink_packet_route::link::{BondPortState, Inet6DevConf, MiiStatus};

    use super::*;
    use crate::kernel::samples::{self, address, link};

    fn net(text: &str) -> IpNet {
        IpNet::try_from(text.to_owned()).unwrap()
    }

    fn settings() -> BondSettings {
        BondSettings {
            mode: BondMode::ActiveBackup,
            miimon: 100,
            updelay: 1000,
            downdelay: 500,
            primary: Some("eth0".to_owned()),
            xmit_hash_policy: XmitHashPolicy::Layer2,
            lacp_rate: LacpRate::Slow,
        }
    }

    fn route(
        table: u32,
        kind: RouteType,
        protocol: u8,
        attributes: Vec<RouteAttribute>,
    ) -> RouteMessage {
        let mut message = RouteMessage::default();
        message.header.address_family = AddressFamily::Inet;
        message.header.table = u8::try_from(table).unwrap_or(252);
        message.header.kind = kind;
        message.header.protocol = RouteProtocol::from(protocol);
        message.header.destination_prefix_length = 24;
        message.attributes = attributes;
        message.attributes.push(RouteAttribute::Table(table));
        message
    }

    fn bond_options(message: &LinkMessage) -> Vec<InfoBond> {
        message
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Bond(options)) => Some(options.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or_default()
    }

    #[test]
    fn numbers_are_the_kernels() {
        for (number, mode) in BondMode::ALL.into_iter().enumerate() {
            let number = u8::try_from(number).unwrap();
            assert_eq!(bond_mode(number), Some(mode));
            assert_eq!(
                KernelBondMode::from(mode.number()).to_string(),
                mode.keyword()
            );
        }
        for policy in XmitHashPolicy::ALL {
            assert_eq!(xmit_hash_policy(xmit_hash_number(policy)), Some(policy));
            let kernel = BondXmitHashPolicy::from(xmit_hash_number(policy));
            assert_eq!(kernel.to_string(), policy.keyword());
        }
        for rate in [LacpRate::Slow, LacpRate::Fast] {
            assert_eq!(lacp_rate(lacp_rate_number(rate)), Some(rate));
            let kernel = BondLacpRate::from(lacp_rate_number(rate));
            assert_eq!(kernel.to_string(), rate.keyword());
        }
        assert_eq!(bond_mode(7), None);
        assert_eq!(xmit_hash_policy(6), None);
        assert_eq!(lacp_rate(2), None);
    }

    #[test]
    fn slave_states() {
        let states: Vec<String> = (0..3).map(slave_state).collect();
        assert_eq!(states, ["active", "backup", "2"]);
        let mii: Vec<String> = (0..5).map(mii_status).collect();
        assert_eq!(mii, ["up", "going-down", "down", "going-back", "4"]);
        assert_eq!(u8::from(BondPortState::Backup), 1);
        assert_eq!(u8::from(MiiStatus::GoingBack), 3);
    }

    #[test]
    fn observation_from_dumps() {
        let links = samples::links();
        let mut v6 = address(4, "192.0.2.1/24");
        v6.header.family = AddressFamily::Inet6;
        let addresses = vec![
            address(4, "192.0.2.1/24"),
            address(4, "10.0.0.1/8"),
            address(1, "127.0.0.1/8"),
            v6,
        ];
        let gateway = |a: [u8; 4]| RouteAttribute::Gateway(RouteAddress::Inet(Ipv4Addr::from(a)));
        let destination =
            |a: [u8; 4]| RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::from(a)));
        let mut default = route(
            200,
            RouteType::Unicast,
            ROUTE_PROTOCOL,
            vec![gateway([192, 0, 2, 254]), RouteAttribute::Oif(4)],
        );
        default.header.destination_prefix_length = 0;
        let routes = vec![
            route(
                1000,
                RouteType::Unicast,
                ROUTE_PROTOCOL,
                vec![
                    destination([198, 51, 100, 0]),
                    gateway([192, 0, 2, 253]),
                    RouteAttribute::Oif(4),
                ],
            ),
            default,
            route(
                254,
                RouteType::Unicast,
                2,
                vec![destination([192, 0, 2, 0]), RouteAttribute::Oif(4)],
            ),
            route(
                254,
                RouteType::Unicast,
                ROUTE_PROTOCOL,
                vec![destination([203, 0, 113, 0]), RouteAttribute::Oif(4)],
            ),
            route(
                255,
                RouteType::Local,
                2,
                vec![destination([192, 0, 2, 1]), RouteAttribute::Oif(4)],
            ),
            route(
                255,
                RouteType::Unicast,
                2,
                vec![destination([192, 0, 2, 1]), RouteAttribute::Oif(4)],
            ),
            route(
                254,
                RouteType::BlackHole,
                ROUTE_PROTOCOL,
                vec![destination([10, 1, 0, 0])],
            ),
        ];

        let observation = assemble(links, addresses, routes);

        let state = &observation.state;
        assert_eq!(
            state.links["bond0"].kind,
            LinkType::Bond(BondSettings {
                primary: Some("eth0".to_owned()),
                ..settings()
            })
        );
        assert!(state.links["bond0"].owned);
        assert_eq!(
            state.links["bond0"].addresses,
            BTreeSet::from([net("10.0.0.1/8"), net("192.0.2.1/24")])
        );
        assert_eq!(
            state.links["bond0.10"].kind,
            LinkType::Vlan {
                id: 10,
                parent: "bond0".to_owned()
            }
        );
        assert!(state.links["bond0.10"].owned);
        assert_eq!(state.links["eth0"].master.as_deref(), Some("bond0"));
        assert_eq!(state.links["eth0"].kind, LinkType::Other(String::new()));
        assert!(!state.links["eth0"].owned);
        assert_eq!(
            state.links["veth0"].kind,
            LinkType::Other("veth".to_owned())
        );
        assert!(!state.links["veth0"].owned && !state.links["veth0"].up);
        assert_eq!(
            state.links["vlan9"].kind,
            LinkType::Other("vlan".to_owned())
        );
        assert!(!state.links["vlan9"].owned);
        assert_eq!(
            state.links["bond9"].kind,
            LinkType::Other("bond".to_owned())
        );
        assert!(!state.links["bond9"].owned);
        assert_eq!(
            state.routes,
            BTreeSet::from([
                RouteEntry {
                    table: 200,
                    destination: net("0.0.0.0/0"),
                    gateway: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
                    device: "bond0".to_owned()
                },
                RouteEntry {
                    table: 1000,
                    destination: net("198.51.100.0/24"),
                    gateway: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 253)),
                    device: "bond0".to_owned()
                },
            ])
        );

        let indexes: Vec<u32> = observation.links.iter().map(|l| l.index).collect();
        assert_eq!(indexes, [1, 2, 3, 4, 5, 6, 8, 9]);
        let bond = &observation.links[3];
        assert_eq!(
            (bond.kind.as_str(), bond.oper_state.as_str(), bond.admin_up),
            ("bond", "up", true)
        );
        assert_eq!(bond.addresses, [net("10.0.0.1/8"), net("192.0.2.1/24")]);
        assert_eq!(
            bond.bond,
            Some(BondStatus {
                mode: "active-backup".to_owned(),
                active_slave: Some("eth0".to_owned()),
                slaves: vec![
                    SlaveStatus {
                        name: "eth0".to_owned(),
                        state: "active".to_owned(),
                        mii_status: "up".to_owned(),
                        link_failures: 0
                    },
                    SlaveStatus {
                        name: "eth1".to_owned(),
                        state: "backup".to_owned(),
                        mii_status: "up".to_owned(),
                        link_failures: 2
                    },
                ],
            })
        );
        assert_eq!(
            observation.links[4].vlan,
            Some(VlanStatus {
                id: 10,
                parent: "bond0".to_owned()
            })
        );
        assert_eq!(observation.links[5].oper_state, "down");
        assert_eq!(observation.links[0].addresses, [net("127.0.0.1/8")]);

        let routes: Vec<(u32, String, u8, bool)> = observation
            .routes
            .iter()
            .map(|r| (r.table, r.destination.to_string(), r.protocol, r.ours))
            .collect();
        assert_eq!(
            routes,
            [
                (200, "0.0.0.0/0".to_owned(), ROUTE_PROTOCOL, true),
                (254, "192.0.2.0/24".to_owned(), 2, false),
                (254, "203.0.113.0/24".to_owned(), ROUTE_PROTOCOL, true),
                (1000, "198.51.100.0/24".to_owned(), ROUTE_PROTOCOL, true),
            ]
        );
        assert_eq!(observation.routes[1].device.as_deref(), Some("bond0"));
        assert_eq!(observation.routes[1].gateway, None);
    }

    /// An IPv6 address as the kernel reports it, with its `IFA_FLAGS`.
    fn address6(index: u32, text: &str, flags: AddressFlags) -> AddressMessage {
        let address = net(text);
        let mut message = address_message(index, address);
        message.attributes.push(AddressAttribute::Flags(flags));
        message
    }

    fn route6(
        table: u32,
        kind: RouteType,
        protocol: u8,
        destination: &str,
        gateway: Option<&str>,
    ) -> RouteMessage {
        let destination = net(destination);
        let mut message = route(table, kind, protocol, vec![RouteAttribute::Oif(4)]);
        message.header.address_family = AddressFamily::Inet6;
        message.header.destination_prefix_length = destination.prefix;
        message
            .attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                destination.addr,
            )));
        if let Some(gateway) = gateway {
            let gateway: IpAddr = gateway.parse().unwrap();
            message
                .attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        }
        message
    }

    #[test]
    fn the_kernels_own_ipv6_addresses_and_routes_are_never_planned() {
        let mut links = samples::links();
        let mut conf = Inet6DevConf::default();
        conf.accept_ra = 2;
        let bond = links
            .iter_mut()
            .find(|l| l.header.index == 4)
            .expect("bond0 is index 4");
        bond.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::DevConf(conf)],
            )]));
        let permanent = AddressFlags::Permanent;
        let addresses = vec![
            address(4, "192.0.2.1/24"),
            address6(4, "2001:db8::5/64", permanent),
            // The kernel's link-local address is permanent too.
            address6(4, "fe80::1/64", permanent),
            // SLAAC: a lifetime, and a privacy address made from it.
            address6(4, "2001:db8:1::abcd/64", AddressFlags::Managetempaddr),
            address6(4, "2001:db8:1::1234/64", AddressFlags::Secondary),
            address6(
                4,
                "2001:db8::dead/64",
                permanent | AddressFlags::Tentative | AddressFlags::Dadfailed,
            ),
        ];
        let routes = vec![
            route6(
                200,
                RouteType::Unicast,
                ROUTE_PROTOCOL,
                "::/0",
                Some("2001:db8::1"),
            ),
            route6(
                254,
                RouteType::Unicast,
                ROUTE_PROTOCOL,
                "2001:db8:100::/48",
                Some("fe80::fe"),
            ),
            route6(254, RouteType::Unicast, 2, "2001:db8::/64", None),
            route6(254, RouteType::Unicast, 2, "fe80::/64", None),
            route6(254, RouteType::Unicast, 9, "::/0", Some("fe80::1")),
            route6(255, RouteType::Multicast, 2, "ff00::/8", None),
            route6(255, RouteType::Local, 2, "2001:db8::5/128", None),
        ];

        let observation = assemble(links, addresses, routes);

        assert_eq!(
            observation.state.links["bond0"].addresses,
            BTreeSet::from([
                net("192.0.2.1/24"),
                net("2001:db8::5/64"),
                net("2001:db8::dead/64")
            ])
        );
        let status = observation
            .links
            .iter()
            .find(|l| l.name == "bond0")
            .expect("bond0");
        assert_eq!(
            status.kernel_addresses,
            [
                net("fe80::1/64"),
                net("2001:db8:1::abcd/64"),
                net("2001:db8:1::1234/64")
            ]
        );
        assert_eq!(status.dad_failed, [net("2001:db8::dead/64")]);
        assert_eq!(status.accept_ra, Some(2));
        assert!(
            observation
                .links
                .iter()
                .all(|l| l.name == "bond0" || l.accept_ra.is_none())
        );

        let gateway = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(
            observation.state.routes,
            BTreeSet::from([
                RouteEntry {
                    table: 200,
                    destination: net("::/0"),
                    gateway: gateway("2001:db8::1"),
                    device: "bond0".to_owned()
                },
                RouteEntry {
                    table: 254,
                    destination: net("2001:db8:100::/48"),
                    gateway: gateway("fe80::fe"),
                    device: "bond0".to_owned()
                },
            ])
        );
        let shown: Vec<(u32, String, Option<IpAddr>, bool)> = observation
            .routes
            .iter()
            .map(|r| (r.table, r.destination.to_string(), r.gateway, r.ours))
            .collect();
        assert_eq!(
            shown,
            [
                (200, "::/0".to_owned(), Some(gateway("2001:db8::1")), true),
                (
                    254,
                    "2001:db8:100::/48".to_owned(),
                    Some(gateway("fe80::fe")),
                    true
                ),
                (254, "2001:db8::/64".to_owned(), None, false),
                (254, "::/0".to_owned(), Some(gateway("fe80::1")), false),
            ]
        );
    }

    #[test]
    fn dad_is_read_from_the_address_flags() {
        let flags = |f: AddressFlags| dad_state(f);
        assert_eq!(flags(AddressFlags::Permanent), Dad::Done);
        assert_eq!(
            flags(AddressFlags::Permanent | AddressFlags::Tentative),
            Dad::Running
        );
        assert_eq!(
            flags(AddressFlags::Tentative | AddressFlags::Dadfailed),
            Dad::Failed
        );
        // Without IFA_FLAGS, the header's byte.
        let mut message = address_message(3, net("2001:db8::5/64"));
        message.header.flags = AddressHeaderFlags::Tentative | AddressHeaderFlags::Permanent;
        assert_eq!(dad_state(address_flags(&message)), Dad::Running);
        message
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Permanent));
        assert_eq!(dad_state(address_flags(&message)), Dad::Done);
    }

    #[test]
    fn ipv6_addresses_and_routes_go_as_ip_sends_them() {
        let message = address_message(3, net("2001:db8::5/64"));
        assert_eq!((message.header.index, message.header.prefix_len), (3, 64));
        assert_eq!(message.header.family, AddressFamily::Inet6);
        let local: IpAddr = "2001:db8::5".parse().unwrap();
        assert_eq!(
            message.attributes,
            [
                AddressAttribute::Address(local),
                AddressAttribute::Local(local)
            ]
        );

        let entry = RouteEntry {
            table: 200,
            destination: net("::/0"),
            gateway: "2001:db8::1".parse().unwrap(),
            device: "bond0".to_owned(),
        };
        let message = route_message(&entry, 4).unwrap();
        assert_eq!(message.header.address_family, AddressFamily::Inet6);
        assert_eq!(message.header.table, 200);
        assert_eq!(u8::from(message.header.protocol), ROUTE_PROTOCOL);
        assert_eq!(message.header.destination_prefix_length, 0);
        assert!(
            message
                .attributes
                .contains(&RouteAttribute::Gateway(RouteAddress::Inet6(
                    "2001:db8::1".parse().unwrap()
                )))
        );
        assert_eq!(
            route_status(&message, |_| Some("bond0".to_owned())).map(|r| r.destination),
            Some(net("::/0"))
        );
        let mixed = RouteEntry {
            gateway: "192.0.2.1".parse().unwrap(),
            ..entry
        };
        assert_eq!(
            route_message(&mixed, 4).unwrap_err().to_string(),
            "route default via 192.0.2.1 dev bond0 table 200: an IPv6 destination needs an IPv6 gateway"
        );
    }

    #[test]
    fn bond_creation_sends_what_the_mode_takes() {
        assert_eq!(
            bond_options(&new_bond("bond0", &settings(), Some(2))),
            [
                InfoBond::Mode(KernelBondMode::ActiveBackup),
                InfoBond::MiiMon(100),
                InfoBond::UpDelay(1000),
                InfoBond::DownDelay(500),
                InfoBond::XmitHashPolicy(BondXmitHashPolicy::Layer2),
                InfoBond::Primary(2),
            ]
        );
        let lacp = BondSettings {
            mode: BondMode::Lacp,
            miimon: 0,
            updelay: 0,
            downdelay: 0,
            primary: None,
            xmit_hash_policy: XmitHashPolicy::Layer34,
            lacp_rate: LacpRate::Fast,
        };
        let message = new_bond("bond1", &lacp, None);
        assert_eq!(
            bond_options(&message),
            [
                InfoBond::Mode(KernelBondMode::Ieee8023Ad),
                InfoBond::MiiMon(0),
                InfoBond::XmitHashPolicy(BondXmitHashPolicy::Layer34),
                InfoBond::AdLacpRate(BondLacpRate::Fast),
            ]
        );
        assert!(
            message
                .attributes
                .contains(&LinkAttribute::IfName("bond1".to_owned()))
        );
        assert!(!message.header.flags.contains(LinkFlags::Up));
    }

    #[test]
    fn bond_change_sends_only_what_changes() {
        let from = settings();
        let to = BondSettings {
            downdelay: 600,
            ..settings()
        };
        let message = bond_change(4, &from, &to, None);
        assert_eq!(message.header.index, 4);
        assert_eq!(bond_options(&message), [InfoBond::DownDelay(600)]);

        // The delays are multiples of miimon in the kernel: a new miimon sends them again.
        let to = BondSettings {
            miimon: 200,
            primary: None,
            ..settings()
        };
        assert_eq!(
            bond_options(&bond_change(4, &from, &to, Some(0))),
            [
                InfoBond::MiiMon(200),
                InfoBond::UpDelay(1000),
                InfoBond::DownDelay(500),
                InfoBond::Primary(0)
            ]
        );
        // Without monitoring the kernel refuses delays.
        let to = BondSettings {
            miimon: 0,
            updelay: 0,
            downdelay: 0,
            ..settings()
        };
        assert_eq!(
            bond_options(&bond_change(4, &from, &to, None)),
            [InfoBond::MiiMon(0)]
        );
        let to = BondSettings {
            xmit_hash_policy: XmitHashPolicy::Layer23,
            ..settings()
        };
        assert_eq!(
            bond_options(&bond_change(4, &from, &to, None)),
            [InfoBond::XmitHashPolicy(BondXmitHashPolicy::Layer23)]
        );
    }

    #[test]
    fn vlans_start_at_1500_or_below() {
        let mtu_of = |message: &LinkMessage| {
            message.attributes.iter().find_map(|a| match a {
                LinkAttribute::Mtu(mtu) => Some(*mtu),
                _ => None,
            })
        };
        let mut parent = link(4, "bond0", true, vec![]);
        parent
            .attributes
            .retain(|a| !matches!(a, LinkAttribute::Mtu(_)));
        parent.attributes.push(LinkAttribute::Mtu(9000));
        let vlan = new_vlan("bond0.10", 10, &parent);
        assert_eq!(mtu_of(&vlan), Some(1500));
        assert!(vlan.attributes.contains(&LinkAttribute::Link(4)));
        parent.attributes.push(LinkAttribute::Mtu(1400));
        parent.attributes.retain(|a| *a != LinkAttribute::Mtu(9000));
        assert_eq!(mtu_of(&new_vlan("bond0.10", 10, &parent)), None);
    }

    #[test]
    fn addresses_have_no_broadcast() {
        let message = address_message(3, net("192.0.2.1/24"));
        assert_eq!((message.header.index, message.header.prefix_len), (3, 24));
        assert_eq!(message.header.family, AddressFamily::Inet);
        let local = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(
            message.attributes,
            [
                AddressAttribute::Address(local),
                AddressAttribute::Local(local)
            ]
        );
        assert_eq!(
            link_address(&message),
            Some((net("192.0.2.1/24"), Owner::Admin { dad_failed: false }))
        );
    }

    #[test]
    fn routes_carry_table_and_protocol() {
        let entry = RouteEntry {
            table: 200,
            destination: net("198.51.100.7/24"),
            gateway: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254)),
            device: "bond0".to_owned(),
        };
        let message = route_message(&entry, 4).unwrap();
        assert_eq!(message.header.table, 200);
        assert_eq!(u8::from(message.header.protocol), ROUTE_PROTOCOL);
        assert_eq!(message.header.kind, RouteType::Unicast);
        assert_eq!(message.header.destination_prefix_length, 24);
        assert!(
            message
                .attributes
                .contains(&RouteAttribute::Destination(RouteAddress::Inet(
                    Ipv4Addr::new(198, 51, 100, 0)
                )))
        );
        assert!(message.attributes.contains(&RouteAttribute::Oif(4)));
        assert!(
            !message
                .attributes
                .iter()
                .any(|a| matches!(a, RouteAttribute::Table(_)))
        );

        let message = route_message(
            &RouteEntry {
                table: 1000,
                ..entry
            },
            4,
        )
        .unwrap();
        assert!(message.attributes.contains(&RouteAttribute::Table(1000)));
        assert_eq!(
            route_status(&message, |_| Some("bond0".to_owned())).map(|r| r.table),
            Some(1000)
        );
    }
}
