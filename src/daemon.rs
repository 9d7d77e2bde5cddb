//! `lbconsole daemon`: applies the saved configuration at boot, then stays up,
//! checking the real servers of the running configuration and taking them out of
//! IPVS and back (`health`). Each tick it rolls back an unconfirmed apply whose
//! guard died, and follows the running configuration when an apply changed it.
//! SIGHUP applies the saved configuration again; SIGTERM and SIGINT end it.
//! When the running `network.conf` has `vrrp` lines it runs keepalived
//! (`ha::supervisor`) and, with a `sync-iface`, the kernel's IPVS sync
//! daemons, and stops them when it ends.
//!
//! Everything it has to say goes to the log (tracing), one line per problem: a
//! daemon has nobody to answer.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};

use crate::apply::Progress;
use crate::config::ConfigFile;
use crate::config::Severity;
use crate::config::model::LvsConfig;
use crate::config::parse::{parse_lvs, parse_network};
use crate::confirm::{self, ApplyRequest};
use crate::events;
use crate::ha;
use crate::ha::supervisor::{self, Supervisor};
use crate::health;
use crate::health::publish::{self, HealthSource, Publisher};
use crate::health::record::Pulse;
use crate::health::run::HealthChecker;
use crate::kernel::{
    FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend, SyncDaemon,
    ensure_sync_daemons,
};
use crate::metrics::gather::Gatherer;
use crate::metrics::serve::{self, MetricsServer};
use crate::notify::Notifier;
use crate::operate;
use crate::plan::overrides::Overrides;
use crate::store::lock::Lock;
use crate::store::overrides;
use crate::store::{ConfigFiles, PendingApply, Settings, Store, StoreError, atomic};

/// The daemon's lock in the state dir.
pub const DAEMON_LOCK: &str = "daemon.lock";

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
    let _one_daemon = claim_state_dir(store.state_dir())?;
    tracing::info!(config_dir = %store.config_dir().display(), "lbconsole daemon starting");
    health::run::raise_open_file_limit();
    // Nothing is checked yet: every server starts up.
    apply_saved(store, &mut connect, "boot", HealthSource::Known(Vec::new())).await;
    let mut health = HealthChecker::new(None);
    let mut checked = None;
    let mut overrides = Overriding::default();
    overrides.follow(store, &mut health).await;
    follow_running(store, &mut connect, &mut health, &mut checked).await;
    let mut pair = Pair::new(store.state_dir()).await;
    pair.follow(store, &mut connect).await;
    let publisher = Publisher::start(store.state_dir(), &health.report())
        .inspect_err(|error| {
            tracing::error!(
                "health: cannot listen on {}: {error}; `status` shows no health",
                publish::socket_path(store.state_dir()).display()
            );
        })
        .ok();
    let (_metrics, mut gatherer) = match start_metrics(store, &health) {
        Some((server, feed)) => (Some(server), Some(Gatherer::new(feed, store))),
        None => (None, None),
    };
    set_records(gatherer.as_ref(), &health);
    let mut watchdog = Watchdog::new(
        Notifier::from_env()
            .inspect_err(|error| tracing::error!("systemd: NOTIFY_SOCKET: {error}"))
            .ok()
            .flatten(),
    );
    watchdog.notify("READY=1");
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            () = wanted(gatherer.as_mut()) => {
                if let Some(gatherer) = gatherer.as_mut() {
                    gatherer.refresh(store, &mut connect, &health).await;
                }
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => {
                let reports = HealthSource::Known(health.report());
                apply_saved(store, &mut connect, "reload", reports).await;
                if follow_running(store, &mut connect, &mut health, &mut checked).await {
                    publish(publisher.as_ref(), &health);
                    set_records(gatherer.as_ref(), &health);
                }
                pair.follow(store, &mut connect).await;
                // An unchanged lvs.conf is not reloaded, but the apply may have
                // put back servers that health keeps out.
                health.tick().await;
            }
            _ = tick.tick() => {
                roll_back_abandoned(store, &mut connect, &health).await;
                if follow_running(store, &mut connect, &mut health, &mut checked).await {
                    publish(publisher.as_ref(), &health);
                    set_records(gatherer.as_ref(), &health);
                }
                overrides.follow(store, &mut health).await;
                overrides.finish_drains(store, &mut connect, &mut health).await;
                pair.follow(store, &mut connect).await;
                let healthy = pair
                    .vrrp
                    .tracks_health()
                    .then(|| supervisor::every_director_up(&health.report()));
                pair.vrrp.tick(healthy).await;
                health.tick().await;
                #[cfg(feature = "fake-kernel")]
                if store.state_dir().join(FREEZE_CHECKER).exists() {
                    health.freeze();
                }
                watchdog.tick(&health.heartbeat().pulse());
            }
            notice = pair.vrrp.next_notice() => pair.vrrp.handle(notice),
            report = health.next_report() => {
                // An override set since the last tick must not be undone.
                overrides.follow(store, &mut health).await;
                health.handle(report).await;
                for change in health.take_changes() {
                    events::record(store.state_dir(), &change);
                }
                publish(publisher.as_ref(), &health);
            }
        }
    }
    tracing::info!("lbconsole daemon stopping");
    pair.stop(&mut connect).await;
    drop(publisher);
    Ok(())
}

/// Serves the metrics on `metrics.sock`, and on TCP where `lbconsole.toml`
/// says; `None`, logged, when it cannot: the daemon runs on without them.
fn start_metrics<I: IpvsBackend>(
    store: &Store,
    health: &HealthChecker<I>,
) -> Option<(MetricsServer, serve::Feed)> {
    let socket = serve::socket_path(store.state_dir());
    let listen = Settings::load(store.config_dir())
        .inspect_err(|error| {
            tracing::error!("metrics: {error}; served on {} only", socket.display())
        })
        .ok()
        .and_then(|settings| settings.metrics_listen);
    let start = |tcp| MetricsServer::start(store.state_dir(), tcp, health.heartbeat());
    let started = match listen.map(|address| (address, start(Some(address)))) {
        Some((address, Ok(started))) => {
            tracing::info!(
                "metrics: serving GET /metrics on {} and http://{address}",
                socket.display()
            );
            return Some(started);
        }
        // The socket alone rather than nothing.
        Some((_, Err(error))) => {
            tracing::error!("metrics: {error}; served on {} only", socket.display());
            start(None)
        }
        None => start(None),
    };
    started
        .inspect(|_| tracing::info!("metrics: serving GET /metrics on {}", socket.display()))
        .inspect_err(|error| tracing::error!("metrics: {error}; no metrics are served"))
        .ok()
}

/// Tells `checker.sock` the servers the checker now checks.
fn set_records<N, I, W>(gatherer: Option<&Gatherer<N, I, W>>, health: &HealthChecker<I>)
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
{
    if let Some(gatherer) = gatherer {
        gatherer.set_records(health.records());
    }
}

/// Until a scrape wants fresh metrics; never without a metrics server.
async fn wanted<N, I, W>(gatherer: Option<&mut Gatherer<N, I, W>>)
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
{
    match gatherer {
        Some(gatherer) => gatherer.wanted().await,
        None => std::future::pending().await,
    }
}

/// A file whose presence makes a test build's daemon stop its checks, as a
/// frozen checker would: the watchdog's test.
#[cfg(feature = "fake-kernel")]
pub const FREEZE_CHECKER: &str = "test-freeze-checker";

/// Pets systemd's watchdog while the checks progress, never for a stalled
/// checker: then systemd restarts the daemon when `WatchdogSec=` runs out. A
/// stall is logged when it begins and when it ends, not at every tick.
struct Watchdog {
    notifier: Option<Notifier>,
    stalled: bool,
    /// The last notification did not go out (a manager not reading): the
    /// failure is logged once, not at every tick.
    unsent: bool,
}

impl Watchdog {
    fn new(notifier: Option<Notifier>) -> Watchdog {
        Watchdog {
            notifier,
            stalled: false,
            unsent: false,
        }
    }

    fn notify(&mut self, state: &str) {
        let Some(notifier) = &self.notifier else {
            return;
        };
        match notifier.send(state) {
            Err(error) if !self.unsent => {
                tracing::warn!("systemd: cannot send {state}: {error}; said once until one goes");
                self.unsent = true;
            }
            Err(_) => {}
            Ok(()) if self.unsent => {
                tracing::info!("systemd: notifications go through again");
                self.unsent = false;
            }
            Ok(()) => {}
        }
    }

    fn tick(&mut self, pulse: &Pulse) {
        let watched = self.notifier.as_ref().is_some_and(|n| n.watchdog.is_some());
        if pulse.stalled && !self.stalled {
            let systemd = if watched {
                "; systemd's watchdog is left to fire"
            } else {
                ""
            };
            tracing::error!(
                "health: checker stalled, no check completed for {} s while checks are due{systemd}",
                pulse.quiet.as_secs()
            );
        } else if !pulse.stalled && self.stalled {
            tracing::info!(
                "health: checker going again, {} check(s) done",
                pulse.completed
            );
        }
        self.stalled = pulse.stalled;
        if watched && !pulse.stalled {
            self.notify("WATCHDOG=1");
        }
    }
}

/// Takes `STATE_DIR/daemon.lock` for the daemon's whole life, before it
/// applies or listens: a second daemon on the same state dir would replace the
/// first one's health socket and remove it when it ends.
fn claim_state_dir(state_dir: &Path) -> Result<Lock, StoreError> {
    let path = state_dir.join(DAEMON_LOCK);
    let write_error = |source| StoreError::Write {
        path: path.clone(),
        source,
    };
    atomic::create_dir_all(state_dir).map_err(write_error)?;
    let Some(lock) = Lock::try_acquire(&path).map_err(write_error)? else {
        return Err(StoreError::DaemonRunning {
            state_dir: state_dir.to_owned(),
            holder: Lock::holder(&path),
        });
    };
    lock.record_holder().map_err(write_error)?;
    Ok(lock)
}

/// Applies the saved configuration, all or nothing, and logs the outcome. An
/// apply waiting for confirmation is left to its guard: applying over it would
/// take away what the administrator is trying out.
async fn apply_saved<N, I, W, F, Fut>(
    store: &Store,
    connect: &mut F,
    why: &str,
    health: HealthSource,
) where
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
            for note in plan.override_notes() {
                tracing::info!("{why} apply: {note}");
            }
        }
    };
    let request = ApplyRequest {
        health,
        ..ApplyRequest::default()
    };
    let result = confirm::apply(store, &request, &mut kernel, &mut progress).await;
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

async fn roll_back_abandoned<N, I, W, F, Fut>(
    store: &Store,
    connect: &mut F,
    health: &HealthChecker<I>,
) where
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
            let health = HealthSource::Known(health.report());
            if let Err(error) = confirm::roll_back_abandoned(store, &mut kernel, &health).await {
                tracing::error!("rollback of an unconfirmed apply: {error}");
            }
        }
        Err(error) => tracing::error!("rollback of an unconfirmed apply: {error}"),
    }
}

/// Checks the servers of the running `lvs.conf` when it differs from `checked`
/// (the text the checker last loaded); whether it loaded one. Without a running
/// configuration nothing is checked.
async fn follow_running<N, I, W, F, Fut>(
    store: &Store,
    connect: &mut F,
    health: &mut HealthChecker<I>,
    checked: &mut Option<Vec<u8>>,
) -> bool
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
{
    let text = match running_file(store, ConfigFile::Lvs) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!("health: {error}");
            return false;
        }
    };
    if checked.as_ref() == Some(&text) {
        return false;
    }
    // The running configuration passed validation when it was applied.
    let (config, _) = parse_lvs(&text);
    if !health.has_ipvs() && config != LvsConfig::default() {
        match connect().await.and_then(|kernel| kernel.ipvs) {
            Ok(ipvs) => health.set_ipvs(ipvs),
            Err(error) => {
                tracing::error!("health: {error}; servers are checked but IPVS is not changed")
            }
        }
    }
    health.load(&config).await;
    *checked = Some(text);
    true
}

/// One file of the running configuration; empty when nothing was applied.
fn running_file(store: &Store, file: ConfigFile) -> Result<Vec<u8>, StoreError> {
    let running = ConfigFiles::read_running(store.state_dir())?;
    Ok(running.map_or_else(Vec::new, |files| files.get(file).to_vec()))
}

/// Tells the readers of the health socket what the checker knows now.
fn publish<I: IpvsBackend>(publisher: Option<&Publisher>, health: &HealthChecker<I>) {
    if let Some(publisher) = publisher {
        publisher.publish(&health.report());
    }
}

/// The operators' overrides, as the daemon follows them: read from the state
/// dir each tick (a `server` command changed the kernel already; the checker
/// must not undo it), and drains finished when their server has no active
/// connection left or their deadline passed.
#[derive(Default)]
struct Overriding {
    in_force: Overrides,
    /// Whether the last failure to read them was logged.
    told_failure: bool,
}

impl Overriding {
    async fn follow<I: IpvsBackend>(&mut self, store: &Store, health: &mut HealthChecker<I>) {
        match overrides::read(store.state_dir()) {
            Ok(read) => {
                self.told_failure = false;
                health.set_overrides(&read).await;
                self.in_force = read;
            }
            Err(error) => {
                if !self.told_failure {
                    tracing::error!("overrides: {error}; the last ones read stay in force");
                    self.told_failure = true;
                }
            }
        }
    }

    async fn finish_drains<N, I, W, F, Fut>(
        &mut self,
        store: &Store,
        connect: &mut F,
        health: &mut HealthChecker<I>,
    ) where
        N: NetworkBackend,
        I: IpvsBackend,
        W: FirewallBackend,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
    {
        if !operate::draining(&self.in_force) {
            return;
        }
        let mut ipvs = match connect().await.and_then(|kernel| kernel.ipvs) {
            Ok(ipvs) => ipvs,
            Err(error) => {
                tracing::error!("overrides: {error}; drains not followed");
                return;
            }
        };
        let observed = match ipvs.observe().await {
            Ok(observed) => observed,
            Err(error) => {
                tracing::error!("overrides: {error}; drains not followed");
                return;
            }
        };
        match operate::finish_drains(store, &mut ipvs, &observed).await {
            Ok(finished) if finished.is_empty() => {}
            Ok(finished) => {
                for o in &finished {
                    tracing::info!(
                        director = o.director,
                        server = o.server,
                        "overrides: server {} of {} drained (drain by {}): disabled",
                        o.server,
                        o.director,
                        o.by
                    );
                }
                self.follow(store, health).await;
            }
            Err(error) => tracing::error!("overrides: finishing a drain: {error}"),
        }
    }
}

/// The HA side of the daemon: keepalived and the IPVS sync daemons, as the
/// running `network.conf` asks.
struct Pair {
    vrrp: Supervisor,
    /// The `network.conf` text last followed.
    followed: Option<Vec<u8>>,
    wanted_sync: Vec<SyncDaemon>,
    /// The sync daemons this daemon made run; `None` until it succeeded, and
    /// retried each tick until then.
    running_sync: Option<Vec<SyncDaemon>>,
    /// Whether the last failure to start them was logged.
    told_sync_failure: bool,
}

impl Pair {
    async fn new(state_dir: &Path) -> Self {
        Self {
            vrrp: Supervisor::new(state_dir).await,
            followed: None,
            wanted_sync: Vec::new(),
            // Sync daemons that run while the configuration wants none are
            // someone else's: left alone.
            running_sync: Some(Vec::new()),
            told_sync_failure: false,
        }
    }

    /// Follows the running `network.conf` when it differs from the text last
    /// followed; without a running configuration nothing runs.
    async fn follow<N, I, W, F, Fut>(&mut self, store: &Store, connect: &mut F)
    where
        N: NetworkBackend,
        I: IpvsBackend,
        W: FirewallBackend,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
    {
        let text = match running_file(store, ConfigFile::Network) {
            Ok(text) => text,
            Err(error) => {
                tracing::error!("vrrp: {error}");
                return;
            }
        };
        if self.followed.as_ref() != Some(&text) {
            // The running configuration passed validation when it was applied.
            let (network, _) = parse_network(&text);
            self.vrrp.follow(&network).await;
            let wanted = ha::sync_daemons(&network);
            if wanted != self.wanted_sync {
                self.wanted_sync = wanted;
                self.told_sync_failure = false;
            }
            self.followed = Some(text);
        }
        if self.running_sync.as_ref() != Some(&self.wanted_sync) {
            let wanted = self.wanted_sync.clone();
            self.ensure_sync(connect, wanted).await;
        }
    }

    async fn ensure_sync<N, I, W, F, Fut>(&mut self, connect: &mut F, wanted: Vec<SyncDaemon>)
    where
        N: NetworkBackend,
        I: IpvsBackend,
        W: FirewallBackend,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
    {
        let result = match connect().await.and_then(|kernel| kernel.ipvs) {
            Ok(mut ipvs) => ensure_sync_daemons(&mut ipvs, &wanted).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                match wanted.first() {
                    Some(daemon) => tracing::info!(
                        "ipvs sync: master and backup sync daemons on {} (sync id {})",
                        daemon.interface,
                        daemon.sync_id
                    ),
                    None => tracing::info!("ipvs sync: sync daemons stopped"),
                }
                self.running_sync = Some(wanted);
                self.told_sync_failure = false;
            }
            Err(error) => {
                if !self.told_sync_failure {
                    tracing::error!("ipvs sync: {error}; trying again each second");
                    self.told_sync_failure = true;
                }
                self.running_sync = None;
            }
        }
    }

    /// Stops keepalived, which takes its addresses along, and the sync daemons.
    async fn stop<N, I, W, F, Fut>(&mut self, connect: &mut F)
    where
        N: NetworkBackend,
        I: IpvsBackend,
        W: FirewallBackend,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
    {
        self.vrrp.stop().await;
        if self
            .running_sync
            .as_ref()
            .is_none_or(|running| !running.is_empty())
        {
            self.told_sync_failure = false;
            self.ensure_sync(connect, Vec::new()).await;
        }
    }
}
