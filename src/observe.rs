//! What the kernel and the health daemon are doing now. `lbconsole status`
//! prints it and the console's live panes show it: both read it here, the same
//! way, so they cannot disagree.

use std::path::Path;

use crate::ha::status::{self, VrrpStatus};
use crate::health::publish::{self, ReadError, ServerReport};
use crate::kernel::{
    FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend, Observation, ServiceStatus,
    SyncDaemon,
};
use crate::plan::flows::FlowCounter;

/// Each part on its own: one that cannot be read says why, and the others
/// are still shown.
#[derive(Debug)]
pub struct Live {
    /// Links with their addresses, routes and our routing rules.
    pub network: Result<Observation, KernelError>,
    /// IPVS services with their real servers; the error says why IPVS is missing.
    pub services: Result<Vec<ServiceStatus>, KernelError>,
    /// The IPVS connection-sync daemons running, the master first.
    pub sync_daemons: Result<Vec<SyncDaemon>, KernelError>,
    /// Packets and bytes per flow and per rule of our nft table.
    pub flows: Result<Vec<FlowCounter>, KernelError>,
    /// The servers' health as the daemon publishes it in `state_dir`; `None`
    /// when no daemon runs.
    pub health: Result<Option<Vec<ServerReport>>, ReadError>,
    /// keepalived and its VRRP instances as the daemon last wrote them;
    /// `None` when no `vrrp` line runs.
    pub vrrp: Result<Option<VrrpStatus>, status::ReadError>,
}

/// Reads every part. The daemon's socket and files are read on tokio's
/// blocking threads: a busy daemon may take the socket's deadline to answer.
pub async fn observe<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    state_dir: &Path,
) -> Live {
    let network = kernel.network.observe().await;
    let (services, sync_daemons) = match kernel.ipvs.as_mut() {
        Ok(backend) => (
            backend.observe().await.map(|observed| observed.services),
            backend.sync_daemons().await,
        ),
        Err(error) => (Err(error.clone()), Err(error.clone())),
    };
    let flows = kernel.firewall.counters().await;
    let state_dir = state_dir.to_owned();
    let daemon =
        tokio::task::spawn_blocking(move || (publish::read(&state_dir), status::read(&state_dir)));
    let (health, vrrp) = match daemon.await {
        Ok(read) => read,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    };
    Live {
        network,
        services,
        sync_daemons,
        flows,
        health,
        vrrp,
    }
}
