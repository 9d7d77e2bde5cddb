//! The kernel behind small traits. The real backends live here (`netlink.rs`
//! for rtnetlink, `ipvs/` for IPVS over generic netlink, `nft.rs`); each is
//! tested against a real kernel in the lab VM. `nlwire.rs` is netlink on the
//! wire, one copy for both netlink backends; `fuzz.rs` feeds every decoder of
//! the kernel's answers arbitrary and damaged frames.
//!
//! A failure is a [`KernelError`] with a typed [`Cause`] (the kernel's errno and
//! extended ack, a failed system call, a missing facility, nft's words), so
//! that a UI can react to one (`EPERM`: run as root) without parsing sentences.

#[cfg(any(test, feature = "fake-kernel"))]
pub mod fake;
#[cfg(test)]
mod fuzz;
pub mod host;
pub mod ipvs;
pub mod netlink;
pub mod nft;
pub mod nlwire;
#[cfg(test)]
mod samples;

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::model::types::IpNet;
use crate::plan::flows::{FirewallOp, FlowCounter, TableState};
use crate::plan::ipvs::{DestKey, Forward, IpvsOp, IpvsOutline, IpvsState, ServiceKey};
use crate::plan::{NetOp, NetworkState};

pub use ipvs::sync::{SyncDaemon, SyncRole, ensure_sync_daemons};

/// The three backends one apply drives. IPVS may be missing (no `ip_vs`
/// module), which matters only when `lvs.conf` has directors; nft reports its
/// own absence when it is asked.
pub struct Kernel<N, I, F> {
    pub network: N,
    pub ipvs: Result<I, KernelError>,
    pub firewall: F,
}

/// The real kernel's backends.
pub type RealKernel = Kernel<netlink::NetlinkBackend, ipvs::IpvsNetlink, nft::NftBackend>;

impl RealKernel {
    /// The real kernel: rtnetlink, IPVS over generic netlink, and `nft`.
    pub async fn connect() -> Result<Self, KernelError> {
        Ok(Self {
            network: netlink::NetlinkBackend::connect().await?,
            ipvs: ipvs::IpvsNetlink::connect().await,
            firewall: nft::NftBackend::new(),
        })
    }
}

/// Links, addresses and routes: what the Network tab programs.
pub trait NetworkBackend {
    /// Every link with its addresses, and the routes that are ours, for planning;
    /// plus the live facts `status` shows.
    fn observe(&mut self) -> impl Future<Output = Result<Observation, KernelError>>;

    /// Carries out one operation, as one request where the kernel allows it, so
    /// that a failed operation has changed nothing.
    fn execute(&mut self, op: &NetOp) -> impl Future<Output = Result<(), KernelError>>;

    /// Whether the kernel has module `name`, loaded or loadable on demand:
    /// bonds and VLANs need theirs.
    fn has_module(&self, name: &str) -> bool;

    /// Whether this process may change the kernel at all (`CAP_NET_ADMIN`).
    fn may_change(&self) -> bool;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Observation {
    pub state: NetworkState,
    pub links: Vec<LinkStatus>,
    /// Every unicast route of both families in every table but `local`, ours
    /// or not, less the kernel's IPv6 link-local ones (`fe80::/64` on every link).
    pub routes: Vec<RouteStatus>,
}

/// A link as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkStatus {
    pub name: String,
    pub index: u32,
    /// The kernel's kind (`bond`, `vlan`, `veth`, …); empty for a physical NIC.
    pub kind: String,
    /// `up`, `down`, `lowerlayerdown`, `unknown`, …
    pub oper_state: String,
    pub admin_up: bool,
    pub mtu: u32,
    pub master: Option<String>,
    pub owned: bool,
    /// The addresses of both families a plan manages (those of `Link::addresses`).
    ///
    /// [`Link::addresses`]: crate::plan::network::Link::addresses
    pub addresses: Vec<IpNet>,
    /// The kernel's own IPv6 addresses: link-local (`fe80::/10`) and those with
    /// a lifetime (SLAAC, privacy addresses). No plan adds or removes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kernel_addresses: Vec<IpNet>,
    /// IPv6 addresses of `addresses` that the kernel marks `dadfailed`: another
    /// host on the link has them, so this one does not use them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dad_failed: Vec<IpNet>,
    /// The link's `net.ipv6.conf.IF.accept_ra`, as the system set it (lbconsole
    /// never changes it): 0 ignores router advertisements, 1 accepts them
    /// unless the link forwards, 2 accepts them even then. `None` when the link
    /// has no IPv6 (`disable_ipv6`, or an MTU below 1280).
    pub accept_ra: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bond: Option<BondStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<VlanStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BondStatus {
    pub mode: String,
    pub active_slave: Option<String>,
    pub slaves: Vec<SlaveStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlaveStatus {
    pub name: String,
    /// `active` or `backup`.
    pub state: String,
    /// MII link status: `up`, `down`, `going-down`, `going-back`.
    pub mii_status: String,
    pub link_failures: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VlanStatus {
    pub id: u16,
    pub parent: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteStatus {
    pub table: u32,
    pub destination: IpNet,
    pub gateway: Option<IpAddr>,
    pub device: Option<String>,
    pub protocol: u8,
    /// Tagged with lbconsole's route protocol.
    pub ours: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("cannot open a netlink socket: {0}")]
    Connect(Cause),
    /// A kernel facility is missing (a module not loaded); the text says which
    /// and what to do.
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot read {what} from the kernel: {cause}")]
    Observe { what: &'static str, cause: Cause },
    /// `op` is the operation as the plan prints it; `cause` the kernel's answer.
    #[error("{op}: {cause}")]
    Operation { op: String, cause: Cause },
}

impl KernelError {
    /// Why it failed, where the kernel (or a tool in front of it) said.
    pub fn cause(&self) -> Option<&Cause> {
        match self {
            Self::Connect(cause) | Self::Observe { cause, .. } | Self::Operation { cause, .. } => {
                Some(cause)
            }
            Self::Unavailable(_) => None,
        }
    }

    /// The errno the kernel refused with (positive: `EPERM` is 1).
    pub fn errno(&self) -> Option<i32> {
        self.cause().and_then(Cause::errno)
    }

    /// Refused for want of privilege (`EPERM`, `EACCES`): lbconsole needs
    /// `CAP_NET_ADMIN`, so the user should run it as root.
    pub fn is_permission_denied(&self) -> bool {
        self.cause().is_some_and(Cause::is_permission_denied)
    }

    /// A facility is missing (a kernel module, the `nft` program), whatever
    /// was being done.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) => true,
            _ => self.cause().is_some_and(Cause::is_unavailable),
        }
    }
}

/// `EPERM` and `EACCES`.
const EPERM: i32 = 1;
const EACCES: i32 = 13;

/// Why the kernel, or the program in front of it, did not do what was asked.
/// Its `Display` is the sentence the user reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The kernel refused: its errno (positive), and its own words when it
    /// sent an extended acknowledgement.
    Kernel { errno: i32, extack: Option<String> },
    /// A system call of ours failed: a socket, a pipe, starting a program.
    Io { kind: io::ErrorKind, text: String },
    /// A facility is missing; the text says which and what to do.
    Unavailable(String),
    /// `nft` refused, in its own words (the first lines of its error output).
    Nft(String),
    /// Words without a cause to name: an answer that could not be read, a
    /// link that is not there.
    Other(String),
    /// The kernel's duplicate address detection found another host on the
    /// link answering for `address`, a new IPv6 address of `interface`.
    DuplicateAddress { interface: String, address: IpNet },
    /// `cause` where it happened: what it means here (`before`), what
    /// followed it, such as undoing the operation (`after`).
    Context {
        before: String,
        cause: Box<Cause>,
        after: String,
    },
}

impl Cause {
    pub fn io(error: &io::Error) -> Self {
        Self::Io {
            kind: error.kind(),
            text: error.to_string(),
        }
    }

    /// This cause with `before` and `after` it in the sentence.
    pub fn within(self, before: impl Into<String>, after: impl Into<String>) -> Self {
        Self::Context {
            before: before.into(),
            cause: Box::new(self),
            after: after.into(),
        }
    }

    /// The cause itself, without the context around it.
    pub fn root(&self) -> &Cause {
        match self {
            Self::Context { cause, .. } => cause.root(),
            other => other,
        }
    }

    /// The errno the kernel refused with.
    pub fn errno(&self) -> Option<i32> {
        match self.root() {
            Self::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    pub fn is_permission_denied(&self) -> bool {
        match self.root() {
            Self::Kernel { errno, .. } => matches!(*errno, EPERM | EACCES),
            Self::Io { kind, .. } => *kind == io::ErrorKind::PermissionDenied,
            _ => false,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self.root(), Self::Unavailable(_))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kernel { errno, extack } => {
                write!(f, "{}", io::Error::from_raw_os_error(*errno))?;
                if let Some(extack) = extack {
                    write!(f, ": {extack}")?;
                }
                Ok(())
            }
            Self::Io { text, .. }
            | Self::Unavailable(text)
            | Self::Nft(text)
            | Self::Other(text) => f.write_str(text),
            Self::DuplicateAddress { interface, address } => write!(
                f,
                "another host on the link of {interface} already has {} \
                 (duplicate address detection failed: the kernel marked {address} dadfailed)",
                address.addr
            ),
            Self::Context {
                before,
                cause,
                after,
            } => write!(f, "{before}{cause}{after}"),
        }
    }
}

impl From<nlwire::Refusal> for Cause {
    fn from(refusal: nlwire::Refusal) -> Self {
        Self::Kernel {
            errno: refusal.errno,
            extack: refusal.detail,
        }
    }
}

impl From<&str> for Cause {
    fn from(text: &str) -> Self {
        Self::Other(text.to_owned())
    }
}

impl From<String> for Cause {
    fn from(text: String) -> Self {
        Self::Other(text)
    }
}

/// Our nftables table: what the Flows tab programs.
pub trait FirewallBackend {
    /// The table's chains, for planning; `None` when there is no table.
    fn observe(&mut self) -> impl Future<Output = Result<Option<TableState>, KernelError>>;

    /// Packets and bytes per flow and per rule, for `status` (this reads every
    /// rule, so planning does not).
    fn counters(&mut self) -> impl Future<Output = Result<Vec<FlowCounter>, KernelError>>;

    /// Carries out `op` as one transaction: the table is replaced whole or not at all.
    fn execute(&mut self, op: &FirewallOp) -> impl Future<Output = Result<(), KernelError>>;
}

/// The IPVS table, over generic netlink: what the LB Layer4 tab programs.
pub trait IpvsBackend {
    /// Every virtual service with its destinations, for planning; plus the
    /// counters and rates `status` shows.
    fn observe(&mut self) -> impl Future<Output = Result<IpvsObservation, KernelError>>;

    /// The services of `keys` that exist, with their destinations, as
    /// `observe` has them: a change to one server need not read the whole
    /// table. By default, the whole table read and the rest left out.
    fn observe_services(
        &mut self,
        keys: &BTreeSet<ServiceKey>,
    ) -> impl Future<Output = Result<IpvsState, KernelError>> {
        async move {
            let mut state = self.observe().await?.state;
            state.services.retain(|key, _| keys.contains(key));
            Ok(state)
        }
    }

    /// Every service's settings, and the services of `keys` that exist with
    /// their destinations: what a plan needs to check the table's services
    /// against the last apply and change a few of them. By default, the whole
    /// table read.
    fn observe_outline(
        &mut self,
        keys: &BTreeSet<ServiceKey>,
    ) -> impl Future<Output = Result<IpvsOutline, KernelError>> {
        async move {
            let state = self.observe().await?.state;
            Ok(IpvsOutline {
                settings: state
                    .services
                    .iter()
                    .map(|(key, service)| (*key, service.settings.clone()))
                    .collect(),
                detail: crate::plan::ipvs::only(&state, keys),
            })
        }
    }

    /// Carries out `ops` in order and returns one result per operation. Each
    /// operation is all or nothing: if one of its messages is refused, the
    /// messages of that operation already carried out are undone before its
    /// error is returned. Many operations may go in one write, their
    /// acknowledgements read in bulk; an operation after a refused one is still
    /// attempted and reported.
    fn execute(&mut self, ops: &[IpvsOp]) -> impl Future<Output = Vec<Result<(), KernelError>>>;

    /// The connection-sync daemons running, the master first.
    fn sync_daemons(&mut self) -> impl Future<Output = Result<Vec<SyncDaemon>, KernelError>>;

    /// Starts `daemon`; refused when one of its role runs already.
    fn start_sync_daemon(
        &mut self,
        daemon: &SyncDaemon,
    ) -> impl Future<Output = Result<(), KernelError>>;

    /// Stops the daemon of `role`; refused when none runs.
    fn stop_sync_daemon(&mut self, role: SyncRole)
    -> impl Future<Output = Result<(), KernelError>>;

    /// Makes IPVS expire a persistence template whose real server has weight
    /// 0 (`net.ipv4.vs.expire_quiescent_template`), so that a drained
    /// server's persistent clients go elsewhere instead of keeping it busy for
    /// ever.
    fn expire_quiescent_templates(&mut self) -> impl Future<Output = Result<(), KernelError>>;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IpvsObservation {
    pub state: IpvsState,
    pub services: Vec<ServiceStatus>,
}

impl IpvsObservation {
    /// Real server `dest` of service `service`, with its counters; `None` when
    /// IPVS does not hold it.
    pub fn dest(&self, service: &ServiceKey, dest: &DestKey) -> Option<&DestStatus> {
        self.services
            .iter()
            .filter(|s| s.key == *service)
            .flat_map(|s| &s.destinations)
            .find(|d| d.key() == *dest)
    }
}

/// A virtual service as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceStatus {
    pub key: ServiceKey,
    pub scheduler: String,
    pub flags: u32,
    pub timeout: u32,
    pub stats: Stats,
    pub destinations: Vec<DestStatus>,
}

/// A real server as `status` shows it: IPv4 or IPv6, whatever its service's
/// family (a tunnel may cross families).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestStatus {
    pub address: IpAddr,
    pub port: u16,
    pub forward: Forward,
    pub weight: u32,
    pub active_connections: u32,
    pub inactive_connections: u32,
    pub persistent_connections: u32,
    pub stats: Stats,
}

impl DestStatus {
    /// The real server as IPVS keys it; its `Display` puts an IPv6 address in
    /// brackets: `[2001:db8::11]:80`.
    pub fn key(&self) -> DestKey {
        DestKey {
            address: self.address,
            port: self.port,
        }
    }
}

/// IPVS counters (`IPVS_STATS_ATTR_*`): totals and per-second rates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub connections: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connections_per_second: u64,
    pub packets_in_per_second: u64,
    pub packets_out_per_second: u64,
    pub bytes_in_per_second: u64,
    pub bytes_out_per_second: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(errno: i32, extack: Option<&str>) -> Cause {
        Cause::Kernel {
            errno,
            extack: extack.map(str::to_owned),
        }
    }

    #[test]
    fn a_cause_reads_as_the_sentence_it_always_was() {
        let exists = refused(17, Some("Service exists"));
        assert_eq!(
            exists.to_string(),
            "File exists (os error 17): Service exists"
        );
        let error = KernelError::Operation {
            op: "add real server 10.0.0.1:80".to_owned(),
            cause: exists
                .within("real server 10.0.0.1:80: ", "")
                .within("", " (the new service was deleted again)"),
        };
        assert_eq!(
            error.to_string(),
            "add real server 10.0.0.1:80: real server 10.0.0.1:80: File exists (os error 17): \
             Service exists (the new service was deleted again)"
        );
        assert_eq!(error.errno(), Some(17));
        assert!(!error.is_permission_denied());
        let broken = KernelError::Observe {
            what: "the IPVS services",
            cause: Cause::io(&io::Error::from_raw_os_error(104))
                .within("cannot read the kernel's answer: ", ""),
        };
        assert_eq!(
            broken.to_string(),
            "cannot read the IPVS services from the kernel: cannot read the kernel's answer: \
             Connection reset by peer (os error 104)"
        );
        assert_eq!(broken.errno(), None);
    }

    #[test]
    fn a_ui_can_tell_a_missing_privilege_and_a_missing_facility() {
        let eperm = KernelError::Operation {
            op: "flush the IPVS table".to_owned(),
            cause: refused(1, None).within("not permitted (run it as root): ", ""),
        };
        assert!(eperm.is_permission_denied());
        assert_eq!(eperm.errno(), Some(1));
        let socket =
            KernelError::Connect(Cause::io(&io::Error::from(io::ErrorKind::PermissionDenied)));
        assert!(socket.is_permission_denied());
        let nft = KernelError::Operation {
            op: "install the flows".to_owned(),
            cause: Cause::Unavailable("the nft command is not installed".to_owned()),
        };
        assert!(nft.is_unavailable() && !nft.is_permission_denied());
        assert!(KernelError::Unavailable("IPVS is not available".to_owned()).is_unavailable());
        assert_eq!(
            Cause::from(nlwire::Refusal {
                errno: 3,
                detail: None
            }),
            refused(3, None)
        );
    }
}
