//! `lbconsole daemon`: applies the saved configuration at boot, then stays up. Its
//! loop does one thing per tick today — roll back an unconfirmed apply whose guard
//! died — and is where the health checks will run. SIGHUP applies the saved
//! configuration again; SIGTERM and SIGINT end it.
//!
//! Everything it has to say goes to the log (tracing), one line per problem: a
//! daemon has nobody to answer.

use std::future::Future;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::apply::Progress;
use crate::config::Severity;
use crate::confirm::{self, ApplyRequest};
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend};
use crate::store::{PendingApply, Store, StoreError};

/// How often the loop runs.
const TICK: Duration = Duration::from_secs(1);

/// Runs until SIGTERM or SIGINT. `connect` makes the kernel backends, each time
/// they are needed.
pub async fn run<N, I, W, F, Fut>(store: &Store, mut connect: F) -> Result<(), StoreError>
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
{
    let signal_error = |e: std::io::Error| StoreError::Write {
        path: "signal handler".into(),
        source: e,
    };
    let mut terminate = signal(SignalKind::terminate()).map_err(signal_error)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(signal_error)?;
    let mut hangup = signal(SignalKind::hangup()).map_err(signal_error)?;
    tracing::info!(config_dir = %store.config_dir().display(), "lbconsole daemon starting");
    apply_saved(store, &mut connect, "boot").await;
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => apply_saved(store, &mut connect, "reload").await,
            _ = tick.tick() => roll_back_abandoned(store, &mut connect).await,
        }
    }
    tracing::info!("lbconsole daemon stopping");
    Ok(())
}

/// Applies the saved configuration, all or nothing, and logs the outcome. An
/// apply waiting for confirmation is left to its guard: applying over it would
/// take away what the administrator is trying out.
async fn apply_saved<N, I, W, F, Fut>(store: &Store, connect: &mut F, why: &str)
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
{
    let mut kernel = match connect().await {
        Ok(backends) => backends,
        Err(error) => {
            tracing::error!("{why} apply: {error}; nothing was applied");
            return;
        }
    };
    let mut errors = Vec::new();
    let mut progress = |progress: Progress<'_>| match progress {
        Progress::Checked(diagnostics) => {
            for diagnostic in diagnostics {
                let line = diagnostic.display_in(store.config_dir()).to_string();
                match diagnostic.severity {
                    Severity::Error => errors.push(line),
                    Severity::Warning => tracing::warn!("{line}"),
                }
            }
        }
        Progress::Planned(plan) => {
            for line in plan.to_string().lines() {
                tracing::info!("{why} apply: {line}");
            }
        }
    };
    let result = confirm::apply(store, &ApplyRequest::default(), &mut kernel, &mut progress).await;
    for line in &errors {
        tracing::error!("{line}");
    }
    match result {
        Ok(applied) if applied.plan.is_empty() => {
            tracing::info!(version = applied.version, "{why} apply: no changes");
        }
        Ok(applied) => tracing::info!(
            version = applied.version,
            "{why} apply: applied {} change(s)",
            applied.plan.len()
        ),
        Err(error) => tracing::error!("{why} apply: {error}"),
    }
}

async fn roll_back_abandoned<N, I, W, F, Fut>(store: &Store, connect: &mut F)
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
{
    // Cheap first: a file read and a lock probe, no netlink, on every tick.
    let abandoned = match PendingApply::read(store.state_dir()) {
        Ok(Some(pending)) => {
            pending.expired() && !PendingApply::guard_alive(store.state_dir()).unwrap_or(true)
        }
        Ok(None) => false,
        Err(error) => {
            tracing::error!("{error}");
            false
        }
    };
    if !abandoned {
        return;
    }
    match connect().await {
        Ok(mut kernel) => {
            if let Err(error) = confirm::roll_back_abandoned(store, &mut kernel).await {
                tracing::error!("rollback of an unconfirmed apply: {error}");
            }
        }
        Err(error) => tracing::error!("rollback of an unconfirmed apply: {error}"),
    }
}
