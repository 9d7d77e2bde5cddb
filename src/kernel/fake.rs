//! An in-memory kernel for UI tests and for testing the planner's ordering: it
//! holds a [`NetworkState`] and carries out operations with the kernel's rules
//! that matter to a plan — a link is created down at MTU 1500, a slave must be
//! down to be enslaved and is opened by its bond, released slaves are closed, a
//! deleted link takes its addresses and routes with it, a gateway route needs its
//! link up with the gateway in one of its subnets (or, for IPv6, link-local) and
//! dies when either stops being true, a link that goes down loses its IPv6
//! addresses (`keep_addr_on_down` off, the kernel's default), and a new IPv6
//! address another host has fails duplicate address detection. It can be told
//! to fail at the n-th operation. The real kernel is tested in the lab, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::config::model::types::{Family, IpNet};
use crate::kernel::{
    Cause, DestStatus, FirewallBackend, IpvsBackend, IpvsObservation, KernelError, LinkStatus,
    NetworkBackend, Observation, ServiceStatus, Stats, SyncDaemon, SyncRole,
};
use crate::plan::flows::{FirewallOp, FlowCounter, TableState};
use crate::plan::ipvs::{
    DestKey, DestSettings, Forward, IpvsOp, IpvsOutline, IpvsState, Netmask, ServiceKey,
    ServiceSettings,
};
use crate::plan::network::{Link, LinkType, NetOp, NetworkState, NewLink};

#[derive(Debug, Clone, Default)]
pub struct FakeKernel {
    pub state: NetworkState,
    /// Fail the operation with this index (0-based, counted over the kernel's life).
    pub fail_at: Option<usize>,
    pub executed: usize,
    /// Kernel modules this kernel lacks (every other one is loaded).
    pub missing_modules: Vec<&'static str>,
    /// The process may not change this kernel (no `CAP_NET_ADMIN`).
    pub unprivileged: bool,
    /// IPv6 addresses other hosts on every link already have: adding one fails
    /// duplicate address detection (and leaves nothing, as the real backend).
    pub duplicates: BTreeSet<IpAddr>,
}

impl FakeKernel {
    pub fn new(state: NetworkState) -> Self {
        Self {
            state,
            fail_at: None,
            executed: 0,
            missing_modules: Vec::new(),
            unprivileged: false,
            duplicates: BTreeSet::new(),
        }
    }

    /// A kernel with these veths, up, unaddressed: the sandbox's interfaces.
    pub fn with_veths(names: &[&str]) -> Self {
        let mut state = NetworkState::default();
        for name in names {
            state.links.insert(
                (*name).to_owned(),
                Link {
                    kind: LinkType::Other("veth".to_owned()),
                    identity: Default::default(),
                    owned: false,
                    master: None,
                    mtu: 1500,
                    up: true,
                    addresses: Default::default(),
                },
            );
        }
        Self::new(state)
    }

    /// Carries out `op` on the in-memory state, or says why the kernel would refuse.
    pub fn apply(&mut self, op: &NetOp) -> Result<(), KernelError> {
        let index = self.executed;
        self.executed += 1;
        if self.fail_at == Some(index) {
            return Err(refuse(op, "injected failure"));
        }
        let links = &mut self.state.links;
        match op {
            NetOp::CreateLink {
                name,
                link: new,
                identity,
            } => {
                if links.contains_key(name) {
                    return Err(refuse(op, "File exists"));
                }
                let kind = match new {
                    NewLink::Bond(settings) => LinkType::Bond(settings.clone()),
                    NewLink::Vlan { id, parent } => {
                        if !links.contains_key(parent) {
                            return Err(refuse(op, &format!("interface {parent} does not exist")));
                        }
                        LinkType::Vlan {
                            id: *id,
                            parent: parent.clone(),
                        }
                    }
                };
                links.insert(
                    name.clone(),
                    Link {
                        kind,
                        identity: *identity,
                        owned: true,
                        master: None,
                        mtu: 1500,
                        up: false,
                        addresses: Default::default(),
                    },
                );
            }
            NetOp::DeleteLink { name, .. } => {
                if links.remove(name).is_none() {
                    return Err(refuse(op, &format!("interface {name} does not exist")));
                }
                for other in links.values_mut() {
                    if other.master.as_deref() == Some(name) {
                        other.master = None;
                        other.up = false;
                    }
                }
                links.retain(
                    |_, l| !matches!(&l.kind, LinkType::Vlan { parent, .. } if parent == name),
                );
                self.state.routes.retain(|r| &r.device != name);
            }
            NetOp::SetBond { name, to, .. } => {
                let target = links
                    .get_mut(name)
                    .ok_or_else(|| refuse(op, "No such device"))?;
                let LinkType::Bond(settings) = &mut target.kind else {
                    return Err(refuse(op, "Operation not supported"));
                };
                *settings = to.clone();
            }
            NetOp::SetMaster {
                name,
                to,
                slave_down,
                ..
            } => match to {
                Some(master) => {
                    let bond_mtu = match links.get(master) {
                        Some(Link {
                            kind: LinkType::Bond(_),
                            mtu,
                            ..
                        }) => *mtu,
                        _ => return Err(refuse(op, &format!("interface {master} is not a bond"))),
                    };
                    let slave = links
                        .get_mut(name)
                        .ok_or_else(|| refuse(op, "No such device"))?;
                    if slave.up {
                        return Err(refuse(op, "Device can not be enslaved while up"));
                    }
                    slave.master = Some(master.clone());
                    slave.mtu = bond_mtu;
                    slave.up = !slave_down;
                }
                None => {
                    let slave = links
                        .get_mut(name)
                        .ok_or_else(|| refuse(op, "No such device"))?;
                    slave.master = None;
                    slave.up = false;
                }
            },
            NetOp::SetMtu { name, to, .. } => {
                links
                    .get_mut(name)
                    .ok_or_else(|| refuse(op, "No such device"))?
                    .mtu = *to;
            }
            NetOp::SetUp { name, up } => {
                let target = links
                    .get_mut(name)
                    .ok_or_else(|| refuse(op, "No such device"))?;
                if target.up && !up {
                    target.addresses.retain(|a| a.family() == Family::Ipv4);
                }
                target.up = *up;
            }
            NetOp::AddAddress { name, address } => {
                let target = links
                    .get_mut(name)
                    .ok_or_else(|| refuse(op, "No such device"))?;
                if target.addresses.contains(address) {
                    return Err(refuse(op, "File exists"));
                }
                if address.family() == Family::Ipv6
                    && target.up
                    && self.duplicates.contains(&address.addr)
                {
                    return Err(KernelError::Operation {
                        op: op.to_string(),
                        cause: Cause::DuplicateAddress {
                            interface: name.clone(),
                            address: *address,
                        }
                        .within("", " (the address was removed again)"),
                    });
                }
                target.addresses.insert(*address);
            }
            NetOp::RemoveAddress { name, address } => {
                let target = links
                    .get_mut(name)
                    .ok_or_else(|| refuse(op, "No such device"))?;
                if !target.addresses.remove(address) {
                    return Err(refuse(op, "Cannot assign requested address"));
                }
            }
            NetOp::AddRoute { route } => {
                let device = links
                    .get(&route.device)
                    .ok_or_else(|| refuse(op, "No such device"))?;
                if !reachable(device, route.gateway) {
                    return Err(refuse(op, "Network is unreachable"));
                }
                if !self.state.routes.insert(route.clone()) {
                    return Err(refuse(op, "File exists"));
                }
            }
            NetOp::RemoveRoute { route } => {
                if !self.state.routes.remove(route) {
                    return Err(refuse(op, "No such process"));
                }
            }
            NetOp::AddRule { rule } => {
                if !self.state.rules.insert(*rule) {
                    return Err(refuse(op, "File exists"));
                }
            }
            NetOp::RemoveRule { rule } => {
                if !self.state.rules.remove(rule) {
                    return Err(refuse(op, "No such file or directory"));
                }
            }
        }
        // What the kernel does to gateway routes whose link went down or lost
        // the subnet of their gateway.
        let links = &self.state.links;
        self.state.routes.retain(|r| {
            links
                .get(&r.device)
                .is_some_and(|l| reachable(l, r.gateway))
        });
        Ok(())
    }
}

fn reachable(link: &Link, gateway: IpAddr) -> bool {
    let link_local = matches!(gateway, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    link.up && (link_local || link.addresses.iter().any(|a: &IpNet| a.contains(gateway)))
}

fn refuse(op: &impl std::fmt::Display, reason: &str) -> KernelError {
    KernelError::Operation {
        op: op.to_string(),
        cause: Cause::Other(reason.to_owned()),
    }
}

impl NetworkBackend for FakeKernel {
    fn has_module(&self, name: &str) -> bool {
        !self.missing_modules.contains(&name)
    }

    fn may_change(&self) -> bool {
        !self.unprivileged
    }

    async fn observe(&mut self) -> Result<Observation, KernelError> {
        let links = self
            .state
            .links
            .iter()
            .enumerate()
            .map(|(index, (name, link))| LinkStatus {
                name: name.clone(),
                index: index as u32 + 1,
                kind: match &link.kind {
                    LinkType::Bond(_) => "bond".to_owned(),
                    LinkType::Vlan { .. } => "vlan".to_owned(),
                    LinkType::Other(kind) => kind.clone(),
                },
                oper_state: if link.up { "up" } else { "down" }.to_owned(),
                admin_up: link.up,
                mtu: link.mtu,
                master: link.master.clone(),
                owned: link.owned,
                addresses: link.addresses.iter().copied().collect(),
                kernel_addresses: Vec::new(),
                dad_failed: Vec::new(),
                accept_ra: Some(1),
                bond: None,
                vlan: None,
            })
            .collect();
        Ok(Observation {
            state: self.state.clone(),
            links,
            // The routes it was given, as the real kernel lists ours.
            routes: (self.state.routes.iter())
                .map(|route| crate::kernel::RouteStatus {
                    table: route.table,
                    destination: route.destination,
                    gateway: Some(route.gateway),
                    device: Some(route.device.clone()),
                    protocol: crate::plan::network::ROUTE_PROTOCOL,
                    ours: true,
                })
                .collect(),
        })
    }

    async fn execute(&mut self, op: &NetOp) -> Result<(), KernelError> {
        self.apply(op)
    }
}

/// An in-memory IPVS table with the kernel's refusals (a service or real server
/// that exists already, or does not exist; a real server of the other family
/// than its service's but in tunnel mode; an IPv6 service whose persistence
/// prefix is not 1-128), failing on purpose at one operation.
#[derive(Debug, Clone, Default)]
pub struct FakeIpvs {
    pub state: IpvsState,
    /// Refuse the operation with this index (0-based, over the table's life).
    pub fail_at: Option<usize>,
    pub executed: usize,
    /// How many times the table was read whole.
    pub observed: usize,
    /// The services read whole by each outline (`observe_outline`).
    pub outlined: Vec<BTreeSet<ServiceKey>>,
    /// The connection-sync daemons running, in the order they started.
    pub sync: Vec<SyncDaemon>,
    /// How many sync daemons were started or stopped.
    pub sync_changes: usize,
    /// Whether templates of quiescent servers expire.
    pub expire_quiescent_templates: bool,
    /// The counters and rates a test gives a service, as traffic would; a
    /// service not named has those of a table no packet crossed.
    pub stats: BTreeMap<ServiceKey, Stats>,
    /// The same for a real server of a service.
    pub dest_stats: BTreeMap<(ServiceKey, DestKey), Stats>,
}

impl FakeIpvs {
    fn apply(&mut self, op: &IpvsOp) -> Result<(), KernelError> {
        let index = self.executed;
        self.executed += 1;
        if self.fail_at == Some(index) {
            return Err(refuse(op, "injected failure"));
        }
        let invalid = |valid: bool| {
            if valid {
                Ok(())
            } else {
                Err(refuse(op, "Invalid argument"))
            }
        };
        match op {
            IpvsOp::AddService { key, service } => {
                invalid(netmask_fits(key, &service.settings))?;
                for (dest, settings) in &service.destinations {
                    invalid(family_fits(key, dest, settings))?;
                }
            }
            IpvsOp::EditService { key, to, .. } => invalid(netmask_fits(key, to))?,
            IpvsOp::AddDest {
                service,
                dest,
                settings,
            }
            | IpvsOp::EditDest {
                service,
                dest,
                to: settings,
                ..
            } => invalid(family_fits(service, dest, settings))?,
            IpvsOp::DeleteService { .. } | IpvsOp::DeleteDest { .. } => {}
        }
        let services = &mut self.state.services;
        let missing = || refuse(op, "No such process");
        match op {
            IpvsOp::AddService { key, service } => {
                if services.insert(*key, service.clone()).is_some() {
                    return Err(refuse(op, "File exists"));
                }
            }
            IpvsOp::DeleteService { key, .. } => {
                services.remove(key).ok_or_else(missing)?;
            }
            IpvsOp::EditService { key, to, .. } => {
                services.get_mut(key).ok_or_else(missing)?.settings = to.clone();
            }
            IpvsOp::AddDest {
                service,
                dest,
                settings,
            } => {
                let service = services.get_mut(service).ok_or_else(missing)?;
                if service.destinations.insert(*dest, *settings).is_some() {
                    return Err(refuse(op, "File exists"));
                }
            }
            IpvsOp::DeleteDest { service, dest, .. } => {
                let service = services.get_mut(service).ok_or_else(missing)?;
                service.destinations.remove(dest).ok_or_else(missing)?;
            }
            IpvsOp::EditDest {
                service, dest, to, ..
            } => {
                let service = services.get_mut(service).ok_or_else(missing)?;
                *service.destinations.get_mut(dest).ok_or_else(missing)? = *to;
            }
        }
        Ok(())
    }
}

/// The kernel takes a real server of the other family than its service's in
/// tunnel mode only (`ip_vs_genl_set_cmd`).
fn family_fits(service: &ServiceKey, dest: &DestKey, settings: &DestSettings) -> bool {
    service.family() == dest.family() || settings.forward == Forward::Tunnel
}

/// An IPv6 service's netmask is a prefix length of 1-128 (`ip_vs_add_service`);
/// one of the other family would reach the kernel as a number it refuses, or
/// as the wrong mask.
fn netmask_fits(key: &ServiceKey, settings: &ServiceSettings) -> bool {
    settings.netmask.family() == key.family() && settings.netmask != Netmask::Ipv6(0)
}

impl IpvsBackend for FakeIpvs {
    async fn observe(&mut self) -> Result<IpvsObservation, KernelError> {
        self.observed += 1;
        // What `status` shows, with the counters a test gave.
        let services = self
            .state
            .services
            .iter()
            .map(|(key, service)| ServiceStatus {
                key: *key,
                scheduler: service.settings.scheduler.clone(),
                flags: service.settings.flags,
                timeout: service.settings.timeout,
                stats: self.stats.get(key).copied().unwrap_or_default(),
                destinations: service
                    .destinations
                    .iter()
                    .map(|(dest, settings)| DestStatus {
                        address: dest.address,
                        port: dest.port,
                        forward: settings.forward,
                        weight: settings.weight,
                        active_connections: 0,
                        inactive_connections: 0,
                        persistent_connections: 0,
                        stats: self
                            .dest_stats
                            .get(&(*key, *dest))
                            .copied()
                            .unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect();
        Ok(IpvsObservation {
            state: self.state.clone(),
            services,
        })
    }

    async fn observe_outline(
        &mut self,
        keys: &BTreeSet<ServiceKey>,
    ) -> Result<IpvsOutline, KernelError> {
        self.outlined.push(keys.clone());
        Ok(IpvsOutline {
            settings: self
                .state
                .services
                .iter()
                .map(|(key, service)| (*key, service.settings.clone()))
                .collect(),
            detail: crate::plan::ipvs::only(&self.state, keys),
        })
    }

    async fn execute(&mut self, ops: &[IpvsOp]) -> Vec<Result<(), KernelError>> {
        ops.iter().map(|op| self.apply(op)).collect()
    }

    async fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        let mut running = self.sync.clone();
        running.sort_by_key(|daemon| daemon.role);
        Ok(running)
    }

    async fn start_sync_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), KernelError> {
        let op = format!("start {daemon}");
        if let Some(problem) = crate::kernel::ipvs::sync::interface_problem(&daemon.interface) {
            return Err(refuse(&op, &problem));
        }
        if self.sync.iter().any(|running| running.role == daemon.role) {
            let reason = format!("a {} sync daemon is already running", daemon.role);
            return Err(refuse(&op, &reason));
        }
        self.sync.push(daemon.clone());
        self.sync_changes += 1;
        Ok(())
    }

    async fn stop_sync_daemon(&mut self, role: SyncRole) -> Result<(), KernelError> {
        let Some(at) = self.sync.iter().position(|running| running.role == role) else {
            let op = format!("stop the IPVS {role} sync daemon");
            return Err(refuse(&op, &format!("no {role} sync daemon is running")));
        };
        self.sync.remove(at);
        self.sync_changes += 1;
        Ok(())
    }

    async fn expire_quiescent_templates(&mut self) -> Result<(), KernelError> {
        self.expire_quiescent_templates = true;
        Ok(())
    }
}

/// An in-memory nft table: what was installed, with `nft`'s all-or-nothing
/// transactions, failing on purpose at one operation.
#[derive(Debug, Clone, Default)]
pub struct FakeFirewall {
    pub table: Option<TableState>,
    /// The installed table's counters, all zero: nothing passes a fake kernel.
    pub counters: Vec<FlowCounter>,
    /// Refuse the operation with this index (0-based, over the table's life).
    pub fail_at: Option<usize>,
    pub executed: usize,
}

impl FirewallBackend for FakeFirewall {
    async fn observe(&mut self) -> Result<Option<TableState>, KernelError> {
        Ok(self.table.clone())
    }

    async fn counters(&mut self) -> Result<Vec<FlowCounter>, KernelError> {
        Ok(self.counters.clone())
    }

    async fn execute(&mut self, op: &FirewallOp) -> Result<(), KernelError> {
        let index = self.executed;
        self.executed += 1;
        if self.fail_at == Some(index) {
            return Err(KernelError::Operation {
                op: op.to_string(),
                cause: Cause::Other("injected failure".to_owned()),
            });
        }
        // Each transaction moves the generation on, as nf_tables does.
        let generation = self
            .table
            .as_ref()
            .and_then(|state| state.generation)
            .unwrap_or(0)
            + 1;
        self.table = match op {
            FirewallOp::Install(ruleset)
            | FirewallOp::Update(crate::plan::flows::Update { ruleset, .. }) => {
                self.counters = crate::plan::flows::counters(&ruleset.batch);
                Some(TableState {
                    fingerprint: Some(ruleset.fingerprint.clone()),
                    chains: ruleset.rule_counts.keys().cloned().collect(),
                    objects: Some(ruleset.objects.clone()),
                    generation: Some(generation),
                })
            }
            FirewallOp::Remove => {
                self.counters.clear();
                None
            }
        };
        Ok(())
    }
}
