//! What the subcommands print. `main.rs` parses arguments and calls these.

pub mod convert;
pub mod server;

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::apply::{ApplyError, Progress};
use crate::config::{self, Diagnostic, Severity};
use crate::confirm::{self, ApplyRequest, ConfirmError};
use crate::events::{self, Event};
use crate::ha;
use crate::ha::peer::{self, PeerError};
use crate::ha::status::{Keepalived, VrrpState, VrrpStatus};
use crate::health::publish::{HealthSource, ReadError, ServerReport};
use crate::kernel::{
    FirewallBackend, IpvsBackend, Kernel, LinkStatus, NetworkBackend, RouteStatus, ServiceStatus,
    SyncDaemon,
};
use crate::metrics::checker::{self, CheckerReport};
use crate::observe::observe;
use crate::plan::flows::{FlowCounter, MarkRule};
use crate::plan::ipvs;
use crate::plan::network::ROUTE_PROTOCOL;
use crate::store::versions::{RollbackRecord, RunningRecord, rfc3339};
use crate::store::{
    ConfigFiles, PendingApply, Settings, Store, StoreError, VersionMeta, archive, plural,
};
use crate::text::Printable;

/// Exit statuses of `lbconsole check`.
pub const EXIT_VALID: u8 = 0;
pub const EXIT_INVALID: u8 = 1;
pub const EXIT_UNREADABLE: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Serialize)]
struct CheckReport<'a> {
    config_dir: &'a Path,
    valid: bool,
    errors: usize,
    warnings: usize,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    path: String,
    #[serde(flatten)]
    diagnostic: &'a Diagnostic,
}

/// `lbconsole check`: validates the config dir and returns the exit status.
pub fn check(dir: &Path, format: Format, out: &mut dyn Write) -> Result<u8, StoreError> {
    let files = ConfigFiles::read(dir)?;
    let checked = config::check(files.sources());
    let errors = checked.count(Severity::Error);
    let warnings = checked.count(Severity::Warning);
    // A closed stdout (`| head`) is no reason to change the verdict.
    let _ = match format {
        Format::Text => write_text(dir, &checked.diagnostics, errors, warnings, out),
        Format::Json => {
            let report = CheckReport {
                config_dir: dir,
                valid: errors == 0,
                errors,
                warnings,
                diagnostics: checked
                    .diagnostics
                    .iter()
                    .map(|diagnostic| JsonDiagnostic {
                        path: dir.join(diagnostic.file.file_name()).display().to_string(),
                        diagnostic,
                    })
                    .collect(),
            };
            serde_json::to_writer_pretty(&mut *out, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
    };
    Ok(if errors == 0 {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn write_text(
    dir: &Path,
    diagnostics: &[Diagnostic],
    errors: usize,
    warnings: usize,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    for diagnostic in diagnostics {
        writeln!(out, "{}", diagnostic.display_in(dir))?;
    }
    let verdict = if errors == 0 { "valid" } else { "invalid" };
    writeln!(
        out,
        "{}: {verdict}, {} and {}",
        dir.display(),
        plural(errors, "error"),
        plural(warnings, "warning")
    )
}

/// Why a command that changes the kernel or the store did nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Confirm(#[from] ConfirmError),
    #[error(transparent)]
    Peer(#[from] PeerError),
    #[error(transparent)]
    Operate(Box<crate::operate::OperateError>),
    #[error(transparent)]
    Daemon(#[from] ReadError),
    #[error("no daemon is running: nothing is checked, there are no results")]
    NoDaemon,
    #[error("the daemon checks no server {director}/{server}: {known}")]
    NoServer {
        director: String,
        server: String,
        known: String,
    },
}

impl From<crate::operate::OperateError> for CommandError {
    fn from(error: crate::operate::OperateError) -> Self {
        Self::Operate(Box::new(error))
    }
}

impl From<crate::kernel::KernelError> for CommandError {
    fn from(error: crate::kernel::KernelError) -> Self {
        Self::Apply(ApplyError::Kernel(error))
    }
}

/// `lbconsole apply [--dry-run] [--confirm-timeout S] [--expect-version N]`:
/// brings the kernel to the saved configuration (the config dir). Prints the
/// plan, one operation per line, or `no changes`; with a confirm timeout, how
/// long is left to confirm.
///
/// IPVS may be missing from `kernel` (no `ip_vs` module): that is an error
/// only when `lvs.conf` has directors; nft likewise only for flows.
pub async fn apply<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    config_dir: &Path,
    state_dir: &Path,
    request: &ApplyRequest,
    kernel: &mut Kernel<N, I, F>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let store = Store::open(config_dir, state_dir)?;
    write_pair_role(state_dir, out);
    let mut progress = |progress: Progress<'_>| match progress {
        Progress::Checked(diagnostics) => {
            for diagnostic in diagnostics {
                let _ = writeln!(err, "{}", diagnostic.display_in(config_dir));
            }
        }
        Progress::Planned(plan) => {
            if plan.is_empty() {
                let _ = writeln!(out, "no changes");
            } else {
                let _ = write!(out, "{plan}");
            }
            for note in plan.override_notes() {
                let _ = writeln!(out, "note: {}", crate::text::printable(&note));
            }
        }
    };
    let applied = confirm::apply(&store, request, kernel, &mut progress).await?;
    if !request.dry_run && !applied.plan.is_empty() {
        let _ = writeln!(out, "applied {}", plural(applied.plan.len(), "change"));
    }
    if let Some(pending) = &applied.pending {
        let _ = writeln!(
            out,
            "confirm within {} s with `lbconsole confirm`, or the previous configuration comes back at {}",
            pending.seconds_left(),
            rfc3339((pending.deadline_ms / 1000) as i64)
        );
    }
    Ok(())
}

/// Says which box of an HA pair this apply changes: applying to the backup
/// is routine, applying to the master touches the traffic.
fn write_pair_role(state_dir: &Path, out: &mut dyn Write) {
    let role = ha::status::read(state_dir)
        .ok()
        .flatten()
        .and_then(|status| status.role());
    let _ = match role {
        Some(VrrpState::Master) => writeln!(
            out,
            "this box is MASTER of its VRRP pair: this apply changes the box that carries the traffic"
        ),
        Some(VrrpState::Backup) => writeln!(
            out,
            "this box is BACKUP of its VRRP pair: the master carries the traffic while this applies"
        ),
        _ => Ok(()),
    };
}

/// `lbconsole confirm`: keeps the apply that waits for confirmation.
pub fn confirm(store: &Store, out: &mut dyn Write) -> Result<(), CommandError> {
    let pending = confirm::confirm(store)?;
    let _ = writeln!(
        out,
        "confirmed the apply by {} at {}",
        Printable(&pending.user),
        pending.applied_at
    );
    Ok(())
}

/// `lbconsole save [--expect-version N] [--message TEXT]`: records the config dir
/// as the next version.
pub fn save(
    store: &Store,
    expect_version: Option<u64>,
    message: Option<&str>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    match store.save_config_dir(expect_version, message) {
        Ok((meta, true)) => {
            write_saved(out, &meta);
            Ok(())
        }
        Ok((meta, false)) => {
            let _ = writeln!(out, "no changes since version {}", meta.number);
            Ok(())
        }
        Err(error) => Err(with_diagnostics(error, store.config_dir(), err)),
    }
}

/// `saved version N: SUMMARY`; the summary may quote a message or an archive,
/// and is escaped to one line.
fn write_saved(out: &mut dyn Write, meta: &VersionMeta) {
    let _ = writeln!(
        out,
        "saved version {}: {}",
        meta.number,
        Printable(&meta.summary)
    );
}

/// Prints the diagnostics of a refused configuration, one per line.
fn with_diagnostics(error: StoreError, dir: &Path, err: &mut dyn Write) -> CommandError {
    if let StoreError::Invalid { diagnostics, .. } = &error {
        for diagnostic in diagnostics {
            let _ = writeln!(err, "{}", diagnostic.display_in(dir));
        }
    }
    error.into()
}

#[derive(Serialize)]
struct HistoryReport<'a> {
    versions: &'a [VersionMeta],
    /// What a hand edit of the config dir changed since the newest version,
    /// until a command that takes the store's lock records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    unrecorded_edit: Option<&'a str>,
}

/// `lbconsole history [--json]`: every version, oldest first, and a hand edit
/// not recorded yet. A read: it records nothing. A config dir that is missing
/// or holds none of the files is an error, after the versions are listed (they
/// are what `restore` brings back).
pub fn history(store: &Store, format: Format, out: &mut dyn Write) -> Result<(), CommandError> {
    let versions = store.history()?;
    let edit = store.unrecorded_edit();
    let unrecorded_edit = edit.as_ref().ok().and_then(Option::as_deref);
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(
            &mut *out,
            &HistoryReport {
                versions: &versions,
                unrecorded_edit,
            },
        )
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out)),
        Format::Text => write_history(&versions, unrecorded_edit, out),
    };
    edit?;
    Ok(())
}

/// One line per version: the user and summary come from the environment and
/// from archives, and are escaped so that neither can start a line of its own.
fn write_history(
    versions: &[VersionMeta],
    unrecorded_edit: Option<&str>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if versions.is_empty() && unrecorded_edit.is_none() {
        return writeln!(out, "nothing saved yet");
    }
    for meta in versions {
        writeln!(
            out,
            "{:>4}  {}  {:<12} {:<9}  {}",
            meta.number,
            meta.time,
            Printable(&meta.user),
            meta.origin.name(),
            Printable(&meta.summary)
        )?;
    }
    if let Some(summary) = unrecorded_edit {
        writeln!(
            out,
            "   -  {:<20}  {:<12} {:<9}  {} (recorded by the next save or apply)",
            "now",
            "config dir",
            "hand edit",
            Printable(summary)
        )?;
    }
    Ok(())
}

/// One side of `lbconsole diff`: a version number, `running` or `saved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Version(u64),
    Running,
    Saved,
}

impl std::str::FromStr for Side {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "running" => Ok(Self::Running),
            "saved" => Ok(Self::Saved),
            _ => text.parse().map(Self::Version).map_err(|_| {
                format!("`{text}` is neither a version number nor `running` or `saved`")
            }),
        }
    }
}

impl std::fmt::Display for Side {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Version(n) => write!(f, "version {n}"),
            Self::Running => f.write_str("running"),
            Self::Saved => f.write_str("saved"),
        }
    }
}

fn side_files(store: &Store, side: Side) -> Result<ConfigFiles, StoreError> {
    match side {
        Side::Version(n) => store.version(n),
        Side::Running => Ok(store.running()?.unwrap_or_default()),
        Side::Saved => store.peek(),
    }
}

/// `lbconsole diff [FROM] [TO]`: a unified diff of each file that differs;
/// FROM defaults to `running`, TO to `saved`.
pub fn diff(store: &Store, from: Side, to: Side, out: &mut dyn Write) -> Result<(), CommandError> {
    let (old, new) = (side_files(store, from)?, side_files(store, to)?);
    let text = unified_diff(&old, &new, &from.to_string(), &to.to_string());
    let _ = if text.is_empty() {
        writeln!(out, "no differences between {from} and {to}")
    } else {
        write!(out, "{text}")
    };
    Ok(())
}

/// The unified diff from `old` to `new`, file by file, headed `--- FROM/FILE`.
pub fn unified_diff(old: &ConfigFiles, new: &ConfigFiles, from: &str, to: &str) -> String {
    let mut text = String::new();
    for file in config::ConfigFile::ALL {
        let (a, b) = (old.get(file), new.get(file));
        if a == b {
            continue;
        }
        let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
        let name = file.file_name();
        text.push_str(
            &similar::TextDiff::from_lines(a.as_ref(), b.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&format!("{from}/{name}"), &format!("{to}/{name}"))
                .missing_newline_hint(true)
                .to_string(),
        );
    }
    text
}

/// `lbconsole restore N [--expect-version M]`: version N becomes the saved
/// configuration again, as a new version.
pub fn restore(
    store: &Store,
    number: u64,
    expect_version: Option<u64>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    match store.restore_checked(number, expect_version) {
        Ok(meta) => {
            write_saved(out, &meta);
            Ok(())
        }
        Err(error) => Err(with_diagnostics(error, store.config_dir(), err)),
    }
}

/// `lbconsole export FILE`: the saved configuration in one archive; `-` writes
/// it to stdout, and then the report goes to `err`.
pub fn export(
    store: &Store,
    path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let place = archive::Place::of(path);
    let version = archive::export(store, place)?;
    let _ = match place {
        archive::Place::File(path) => {
            writeln!(out, "exported version {version} to {}", path.display())
        }
        archive::Place::Standard => writeln!(err, "exported version {version} to stdout"),
    };
    Ok(())
}

/// `lbconsole import FILE [--expect-version N]`: the archive's configuration,
/// validated first, becomes the saved configuration as a new version. `-`
/// reads the archive from stdin.
pub fn import(
    store: &Store,
    path: &Path,
    expect_version: Option<u64>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<VersionMeta, CommandError> {
    match archive::import(store, archive::Place::of(path), expect_version) {
        Ok(meta) => {
            write_saved(out, &meta);
            Ok(meta)
        }
        Err(error) => Err(with_diagnostics(error, path, err)),
    }
}

/// `lbconsole import FILE --apply`: [`import`], then the version saved is
/// applied as `lbconsole apply` does, all or nothing. What `sync --apply` runs
/// on the peer.
pub async fn import_and_apply<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    store: &Store,
    path: &Path,
    expect_version: Option<u64>,
    kernel: &mut Kernel<N, I, F>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let meta = import(store, path, expect_version, out, err)?;
    let request = ApplyRequest {
        // Another save between the two is not applied unseen.
        expect_version: Some(meta.number),
        ..ApplyRequest::default()
    };
    apply(
        store.config_dir(),
        store.state_dir(),
        &request,
        kernel,
        out,
        err,
    )
    .await
}

/// `lbconsole sync [--to PEER] [--dry-run] [--apply]`: the diff of the peer's
/// saved lvs.conf and flows.conf to this box's, then, unless the peer is in
/// step or it is a dry run, the peer saves this box's (and applies them with
/// `apply`) if its saved version did not move meanwhile.
pub async fn sync(
    store: &Store,
    to: Option<&str>,
    dry_run: bool,
    apply: bool,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let settings = Settings::load(store.config_dir())?;
    let comparison = peer::compare(store, &settings, to).await?;
    let _ = write!(out, "{}", comparison.diff);
    if comparison.in_step() {
        let _ = writeln!(out, "{}", comparison.in_step_sentence());
        return Ok(());
    }
    if dry_run {
        let _ = writeln!(
            out,
            "dry run: nothing was sent to {} (its saved version is {})",
            comparison.peer, comparison.peer_version
        );
        return Ok(());
    }
    let pushed = peer::push(&settings, &comparison, apply).await?;
    for line in pushed.report.lines() {
        let _ = writeln!(out, "{}: {}", pushed.peer, Printable(line));
    }
    Ok(())
}

#[derive(Serialize)]
struct StatusReport<'a> {
    configuration: ConfigurationReport,
    /// The apply waiting for confirmation, if any.
    pending: Option<PendingReport>,
    links: &'a [LinkStatus],
    routes: &'a [RouteStatus],
    /// Our `ip rule fwmark … lookup N` rules.
    rules: Vec<MarkRule>,
    ipvs: IpvsReport<'a>,
    /// The IPVS connection-sync daemons running, the master first.
    sync_daemons: &'a [SyncDaemon],
    health: HealthReport,
    /// The operators' overrides in force (`lbconsole server`).
    overrides: Vec<crate::plan::overrides::Override>,
    #[serde(skip_serializing_if = "Option::is_none")]
    overrides_error: Option<String>,
    flows: FlowsReport,
    /// keepalived and its instances; null when no `vrrp` line runs.
    vrrp: Option<VrrpStatus>,
    /// Why the daemon's VRRP status could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    vrrp_error: Option<String>,
}

/// The servers' health as the daemon publishes it.
#[derive(Serialize)]
struct HealthReport {
    /// Whether a daemon answered.
    daemon: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    servers: Vec<ServerReport>,
    /// Whether the checker is alive; `None` without a daemon.
    checker: Option<CheckerReport>,
}

#[derive(Serialize)]
struct FlowsReport {
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Packets and bytes per flow (`rule` absent) and per rule.
    counters: Vec<FlowCounter>,
}

#[derive(Serialize)]
struct ConfigurationReport {
    /// The newest saved version; 0 when nothing was saved.
    saved_version: u64,
    running: Option<RunningRecord>,
    last_rollback: Option<RollbackRecord>,
}

#[derive(Serialize)]
struct PendingReport {
    user: String,
    applied_at: String,
    seconds_left: u64,
    /// Whether the guard process that will roll it back is alive.
    guard_alive: bool,
    rollback_error: Option<String>,
}

#[derive(Serialize)]
struct IpvsReport<'a> {
    available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    services: Vec<NamedService<'a>>,
    /// Why the sync daemons could not be read, IPVS being there.
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_error: Option<String>,
}

#[derive(Serialize)]
struct NamedService<'a> {
    /// The director of the running configuration this service belongs to.
    director: Option<&'a str>,
    #[serde(flatten)]
    service: &'a ServiceStatus,
}

/// `lbconsole status [--json]`: the saved and running versions and an apply
/// waiting for confirmation (with the seconds left); links with their state, bond
/// mode, active slave and each slave's state; addresses; routes per table; IPVS
/// services with their real servers, weights, connections and rates; our
/// routing rules, and the packets and bytes each flow and rule has taken. An
/// unconfirmed apply past its deadline whose guard died is rolled back first.
pub async fn status<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    store: &Store,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let pending = confirm::roll_back_abandoned(store, kernel, &HealthSource::Daemon).await?;
    let pending = match pending {
        Some(pending) => Some(PendingReport {
            guard_alive: PendingApply::guard_alive(store.state_dir())?,
            seconds_left: pending.seconds_left(),
            user: pending.user,
            applied_at: pending.applied_at,
            rollback_error: pending.rollback_error,
        }),
        None => None,
    };
    let state = store.state()?;
    let running_version = store.running_version()?;
    let configuration = ConfigurationReport {
        saved_version: store.latest()?,
        running: state.running.map(|running| RunningRecord {
            version: running_version,
            ..running
        }),
        last_rollback: state.last_rollback,
    };
    let live = observe(kernel, store.state_dir()).await;
    let observation = live.network?;
    let (services, counters) = (live.services, live.flows);
    let sync_daemons = live.sync_daemons;
    let names = ConfigFiles::read_running(store.state_dir())?
        .map(|running| ipvs::service_names(&config::parse::parse_lvs(&running.lvs).0))
        .unwrap_or_default();
    let overrides = crate::store::overrides::read(store.state_dir());
    let report = StatusReport {
        configuration,
        pending,
        links: &observation.links,
        routes: &observation.routes,
        rules: observation.state.rules.iter().copied().collect(),
        ipvs: IpvsReport {
            available: services.is_ok(),
            error: services.as_ref().err().map(ToString::to_string),
            services: services
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|service| NamedService {
                    director: names.get(&service.key).map(String::as_str),
                    service,
                })
                .collect(),
            sync_error: match (&services, &sync_daemons) {
                (Ok(_), Err(error)) => Some(error.to_string()),
                _ => None,
            },
        },
        sync_daemons: sync_daemons.as_deref().unwrap_or_default(),
        health: match live.health {
            Ok(servers) => HealthReport {
                daemon: servers.is_some(),
                error: None,
                servers: servers.unwrap_or_default(),
                checker: checker::read(store.state_dir(), None)
                    .inspect_err(|error| tracing::warn!("{error}"))
                    .ok()
                    .flatten(),
            },
            Err(error) => HealthReport {
                daemon: false,
                error: Some(error.to_string()),
                servers: Vec::new(),
                checker: None,
            },
        },
        overrides: overrides
            .as_ref()
            .map(|o| o.servers.clone())
            .unwrap_or_default(),
        overrides_error: overrides.as_ref().err().map(ToString::to_string),
        flows: FlowsReport {
            available: counters.is_ok(),
            error: counters.as_ref().err().map(ToString::to_string),
            counters: counters.unwrap_or_default(),
        },
        vrrp_error: live.vrrp.as_ref().err().map(ToString::to_string),
        vrrp: live.vrrp.ok().flatten(),
    };
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(&mut *out, &report)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        Format::Text => write_status(&report, out),
    };
    Ok(())
}

/// The users, from `SUDO_USER`, are escaped so that none starts a line of its own.
fn write_configuration(report: &StatusReport<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let configuration = &report.configuration;
    let mut line = match configuration.saved_version {
        0 => "Configuration: nothing saved".to_owned(),
        n => format!("Configuration: saved version {n}"),
    };
    match &configuration.running {
        Some(RunningRecord {
            version: Some(version),
            time,
            user,
        }) => line.push_str(&format!(
            "; running version {version}, applied by {} at {time}",
            Printable(user)
        )),
        Some(RunningRecord { time, user, .. }) => {
            line.push_str(&format!("; running since {time} ({})", Printable(user)))
        }
        None => line.push_str("; never applied"),
    }
    writeln!(out, "{line}")?;
    if let Some(pending) = &report.pending {
        let mut line = format!(
            "  pending apply by {} at {}: ",
            Printable(&pending.user),
            pending.applied_at
        );
        if pending.seconds_left > 0 {
            line.push_str(&format!(
                "{} s left to confirm with `lbconsole confirm`",
                pending.seconds_left
            ));
        } else {
            line.push_str("deadline passed, rolling back");
        }
        if let Some(error) = &pending.rollback_error {
            line.push_str(&format!("; the last rollback failed: {error}"));
        }
        if !pending.guard_alive {
            line.push_str(
                "; its guard is gone: the next `lbconsole status` or `apply` after the deadline, or the daemon, rolls it back",
            );
        }
        writeln!(out, "{line}")?;
    }
    if let Some(rollback) = &configuration.last_rollback {
        writeln!(
            out,
            "  last rollback at {}: the apply by {} at {} ({})",
            rollback.time,
            Printable(&rollback.applied_by),
            rollback.applied_at,
            rollback.outcome
        )?;
    }
    Ok(())
}

fn write_status(report: &StatusReport<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    write_configuration(report, out)?;
    let (links, routes) = (report.links, report.routes);
    writeln!(out, "Links")?;
    for link in links.iter().filter(|l| l.master.is_none()) {
        let kind = match (&link.bond, &link.vlan) {
            (Some(bond), _) => format!("bond {}", bond.mode),
            (_, Some(vlan)) => format!("vlan {} on {}", vlan.id, vlan.parent),
            _ if link.kind.is_empty() => "ethernet".to_owned(),
            _ => link.kind.clone(),
        };
        let addresses: Vec<String> = link.addresses.iter().map(ToString::to_string).collect();
        let owner = if link.owned { "  (lbconsole)" } else { "" };
        // Left as the system set it; shown because it decides whether routers
        // may add addresses and a default route of their own.
        let accept_ra = link
            .accept_ra
            .map_or(String::new(), |value| format!("  accept_ra {value}"));
        writeln!(
            out,
            "  {:<15} {:<6} mtu {:<5} {kind}{owner}{accept_ra}",
            link.name,
            state(link),
            link.mtu
        )?;
        if !addresses.is_empty() {
            writeln!(out, "  {:<15} {}", "", addresses.join(" "))?;
        }
        for (what, list) in [
            ("kernel's", &link.kernel_addresses),
            ("DAD failed", &link.dad_failed),
        ] {
            if !list.is_empty() {
                let list: Vec<String> = list.iter().map(ToString::to_string).collect();
                writeln!(out, "  {:<15} {what}: {}", "", list.join(" "))?;
            }
        }
        if let Some(bond) = &link.bond {
            if let Some(active) = &bond.active_slave {
                writeln!(out, "  {:<15} active slave {active}", "")?;
            }
            for slave in &bond.slaves {
                writeln!(
                    out,
                    "    slave {:<11} {:<6} mii {:<10} link failures {}",
                    slave.name, slave.state, slave.mii_status, slave.link_failures
                )?;
            }
        }
    }
    writeln!(out, "Routes (ours: proto {ROUTE_PROTOCOL})")?;
    let mut tables: Vec<u32> = routes.iter().map(|r| r.table).collect();
    tables.sort_unstable();
    tables.dedup();
    for table in tables {
        let name = if table == 254 {
            "main".to_owned()
        } else {
            table.to_string()
        };
        writeln!(out, "  table {name}")?;
        for route in routes.iter().filter(|r| r.table == table) {
            let destination = if route.destination.prefix == 0 {
                "default".to_owned()
            } else {
                route.destination.to_string()
            };
            let mut line = format!("    {destination}");
            if let Some(gateway) = route.gateway {
                line.push_str(&format!(" via {gateway}"));
            }
            if let Some(device) = &route.device {
                line.push_str(&format!(" dev {device}"));
            }
            line.push_str(if route.ours { "  (lbconsole)" } else { "" });
            writeln!(out, "{line}")?;
        }
    }
    if !report.rules.is_empty() {
        writeln!(out, "Rules (ours: proto {ROUTE_PROTOCOL})")?;
        for rule in &report.rules {
            writeln!(out, "  {rule}")?;
        }
    }
    write_ipvs(&report.ipvs, report.sync_daemons, out)?;
    write_health(&report.health, out)?;
    write_overrides(report, out)?;
    write_flows(&report.flows, out)?;
    write_vrrp(report.vrrp.as_ref(), report.vrrp_error.as_deref(), out)
}

/// Nothing when no `vrrp` line runs.
fn write_vrrp(
    vrrp: Option<&VrrpStatus>,
    error: Option<&str>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if let Some(error) = error {
        return writeln!(out, "VRRP\n  {error}");
    }
    let Some(vrrp) = vrrp else {
        return Ok(());
    };
    let keepalived = match &vrrp.keepalived {
        Keepalived::NotConfigured => "not configured".to_owned(),
        Keepalived::Running { pid } => format!("running (pid {pid})"),
        Keepalived::Down { reason } => format!("down: {reason}"),
    };
    writeln!(out, "VRRP (keepalived {keepalived})")?;
    for instance in &vrrp.instances {
        let addresses: Vec<String> = instance.addresses.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "  vrrp {} (vrid {}, {}): {}, prio {}/{}, {}",
            instance.interface,
            instance.vrid,
            instance.family.name(),
            instance.state.name(),
            instance.priority,
            instance.configured_priority,
            addresses.join(" ")
        )?;
    }
    if !vrrp.peers.is_empty() {
        let peers: Vec<String> = vrrp.peers.iter().map(ToString::to_string).collect();
        writeln!(out, "  peer {}", peers.join(" "))?;
    }
    match vrrp.healthy {
        Some(true) => writeln!(out, "  health tracked: every director has a server up"),
        Some(false) => writeln!(
            out,
            "  health tracked: a director has no server up, the priority is lowered"
        ),
        None => Ok(()),
    }
}

fn write_flows(flows: &FlowsReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Flows")?;
    if let Some(error) = &flows.error {
        return writeln!(out, "  {error}");
    }
    if flows.counters.is_empty() {
        return writeln!(out, "  no flows applied");
    }
    for counter in &flows.counters {
        let (indent, what) = match counter.rule {
            None => (
                "  ",
                format!("{} {}", counter.direction.keyword(), counter.flow),
            ),
            Some(rule) => ("    ", format!("rule {rule}")),
        };
        writeln!(
            out,
            "{indent}{what:<width$} {:>10} packets {:>12} bytes",
            counter.packets,
            counter.bytes,
            width = 32 - indent.len()
        )?;
    }
    Ok(())
}

/// Each override on a line; the note and user are the operators' text, escaped.
fn write_overrides(report: &StatusReport<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Overrides")?;
    if let Some(error) = &report.overrides_error {
        return writeln!(out, "  {error}");
    }
    if report.overrides.is_empty() {
        writeln!(out, "  none: every server as lvs.conf and health have it")?;
    }
    for o in &report.overrides {
        writeln!(out, "  {}", crate::text::printable(&o.to_string()))?;
    }
    Ok(())
}

fn write_health(health: &HealthReport, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "Health")?;
    if let Some(error) = &health.error {
        return writeln!(out, "  {error}");
    }
    if !health.daemon {
        return writeln!(out, "  no daemon running: servers are not checked");
    }
    if let Some(checker) = &health.checker {
        write_checker(checker, out)?;
    }
    if health.servers.is_empty() {
        writeln!(out, "  no servers")?;
    }
    for server in &health.servers {
        let state = match (server.sorry, server.checked) {
            (true, _) => "sorry server".to_owned(),
            (false, true) => server.health.to_string(),
            (false, false) => "not checked".to_owned(),
        };
        writeln!(
            out,
            "  {:<15} {:<15} {:<21} {state}",
            server.director,
            server.server,
            std::net::SocketAddr::new(server.address, server.port).to_string()
        )?;
    }
    Ok(())
}

fn write_checker(checker: &CheckerReport, out: &mut dyn Write) -> std::io::Result<()> {
    #[allow(clippy::cast_precision_loss)]
    let quiet = checker.quiet_ms as f64 / 1000.0;
    if checker.stalled {
        writeln!(
            out,
            "  checker stalled: no check completed for {quiet:.1} s while checks are due"
        )
    } else {
        writeln!(
            out,
            "  checker alive: {} check(s) done, the last {quiet:.1} s ago",
            checker.checks
        )
    }
}

/// `lbconsole status --server DIRECTOR/SERVER`: the server's last check
/// results as the daemon recorded them, oldest first.
pub fn server_checks(
    store: &Store,
    target: &crate::operate::Target,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), CommandError> {
    let (director, server) = (target.director.as_str(), target.server.as_str());
    let Some(report) = checker::read(store.state_dir(), Some((director, server)))? else {
        return Err(CommandError::NoDaemon);
    };
    let Some(history) = report.history.as_ref().filter(|_| report.known) else {
        let known = crate::health::publish::read(store.state_dir())
            .ok()
            .flatten()
            .unwrap_or_default()
            .iter()
            .map(|s| format!("{}/{}", s.director, s.server))
            .collect::<Vec<_>>();
        return Err(CommandError::NoServer {
            director: director.to_owned(),
            server: server.to_owned(),
            known: if known.is_empty() {
                "it checks none".to_owned()
            } else {
                format!("it has {}", known.join(", "))
            },
        });
    };
    let _ = match format {
        Format::Json => serde_json::to_writer_pretty(
            &mut *out,
            &ServerChecks {
                director,
                server,
                report: &report,
            },
        )
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out)),
        Format::Text => write_server_checks(director, server, &report, history, out),
    };
    Ok(())
}

#[derive(Serialize)]
struct ServerChecks<'a> {
    director: &'a str,
    server: &'a str,
    #[serde(flatten)]
    report: &'a CheckerReport,
}

/// One line per result; the reason is escaped: a server's answer may be in it.
fn write_server_checks(
    director: &str,
    server: &str,
    report: &CheckerReport,
    history: &[crate::health::record::CheckResult],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "Checks of {director}/{server}, oldest first")?;
    write_checker(report, out)?;
    if history.is_empty() {
        writeln!(out, "  no results: the server is not checked, or not yet")?;
    }
    for result in history {
        let at = rfc3339(i64::try_from(result.at_ms / 1000).unwrap_or(i64::MAX));
        let outcome = if result.passed { "passed" } else { "failed" };
        let reason = crate::text::printable(result.reason.as_deref().unwrap_or_default());
        writeln!(out, "  {at}  {outcome}  {}  {reason}", result.latency())?;
    }
    Ok(())
}

fn write_ipvs(
    ipvs: &IpvsReport<'_>,
    sync_daemons: &[SyncDaemon],
    out: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(out, "LVS")?;
    if let Some(error) = &ipvs.error {
        return writeln!(out, "  {error}");
    }
    if ipvs.services.is_empty() {
        writeln!(out, "  no virtual services")?;
    }
    for NamedService { director, service } in &ipvs.services {
        let persistent = if service.flags & ipvs::FLAG_PERSISTENT != 0 {
            format!("  persistent {}s", service.timeout)
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<15} {}  {}{persistent}  {} conn/s",
            director.unwrap_or("-"),
            service.key,
            service.scheduler,
            service.stats.connections_per_second
        )?;
        for dest in &service.destinations {
            writeln!(
                out,
                "    -> {:<21} {:<6} weight {:<5} active {:<5} inactive {:<5} {} conn/s",
                dest.key().to_string(),
                dest.forward.name(),
                dest.weight,
                dest.active_connections,
                dest.inactive_connections,
                dest.stats.connections_per_second
            )?;
        }
    }
    match &ipvs.sync_error {
        Some(error) => writeln!(out, "  connection sync: {error}"),
        None => writeln!(out, "  connection sync: {}", sync_summary(sync_daemons)),
    }
}

/// The sync daemons in a few words: `master and backup on eth1, sync id 51`
/// when both share an interface and id, as an HA pair runs them.
pub fn sync_summary(daemons: &[SyncDaemon]) -> String {
    match daemons {
        [] => "off".to_owned(),
        [first, second]
            if first.interface == second.interface && first.sync_id == second.sync_id =>
        {
            format!(
                "{} and {} on {}, sync id {}",
                first.role, second.role, first.interface, first.sync_id
            )
        }
        daemons => daemons
            .iter()
            .map(|d| format!("{} on {}, sync id {}", d.role, d.interface, d.sync_id))
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn state(link: &LinkStatus) -> &str {
    if link.admin_up {
        &link.oper_state
    } else {
        "down"
    }
}

/// How often `events --follow` looks for new events.
const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// An event as `events --json` prints it: its fields and its time in words.
#[derive(Serialize)]
struct JsonEvent<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a Event,
}

impl<'a> JsonEvent<'a> {
    fn of(event: &'a Event) -> Self {
        Self {
            time: rfc3339(event.at),
            event,
        }
    }
}

/// `lbconsole events [--json] [-n N]`: the newest N events, newest first;
/// damaged lines of the log are named on stderr and skipped.
pub fn events(
    state_dir: &Path,
    format: Format,
    newest: usize,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let log = events::read(state_dir, newest)?;
    write_damaged(&log.damaged, err);
    let _ = match format {
        Format::Json => {
            let shown: Vec<JsonEvent<'_>> = log.events.iter().map(JsonEvent::of).collect();
            serde_json::to_writer_pretty(&mut *out, &shown)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out))
        }
        Format::Text if log.events.is_empty() => writeln!(out, "no events yet"),
        Format::Text => log
            .events
            .iter()
            .try_for_each(|event| write_event(event, out)),
    };
    Ok(())
}

/// `lbconsole events --follow [--json] [-n N]`: the newest N events, oldest
/// first, then every new one as it is recorded, until interrupted (or stdout
/// closes). With `--json`, one object a line.
pub async fn follow_events(
    state_dir: &Path,
    format: Format,
    newest: usize,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), CommandError> {
    let mut follower = events::Follower::new(state_dir);
    let mut log = follower.poll()?;
    if log.events.len() < newest {
        let mut older = events::read_rotated(state_dir)?;
        older.events.append(&mut log.events);
        older.damaged.append(&mut log.damaged);
        log = older;
    }
    let skip = log.events.len().saturating_sub(newest);
    log.events.drain(..skip);
    loop {
        write_damaged(&log.damaged, err);
        let written = log.events.iter().try_for_each(|event| match format {
            Format::Json => serde_json::to_writer(&mut *out, &JsonEvent::of(event))
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Text => write_event(event, out),
        });
        if written.and_then(|()| out.flush()).is_err() {
            // Whoever read it is gone (`| head`).
            return Ok(());
        }
        tokio::time::sleep(FOLLOW_POLL).await;
        log = follower.poll()?;
    }
}

/// One event on one line: time, kind, who (`-` for the daemon), text.
fn write_event(event: &Event, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{} {:<8} {:<10} {}",
        rfc3339(event.at),
        event.kind.name(),
        Printable(event.by.as_deref().unwrap_or("-")),
        Printable(&event.text)
    )
}

fn write_damaged(damaged: &[String], err: &mut dyn Write) {
    for line in damaged {
        let _ = writeln!(err, "lbconsole: skipped {}", Printable(line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::types::{Family, IpNet};
    use crate::ha::status::InstanceStatus;
    use crate::kernel::SyncRole;

    #[test]
    fn status_shows_each_vrrp_instance_on_a_line() {
        let instance = |name: &str, family, state, priority, address: &str| InstanceStatus {
            name: name.to_owned(),
            interface: "eth0".to_owned(),
            family,
            vrid: 51,
            state,
            configured_priority: 150,
            priority,
            addresses: vec![IpNet::try_from(address.to_owned()).unwrap()],
            since: 0,
        };
        let vrrp = VrrpStatus {
            keepalived: Keepalived::Running { pid: 7 },
            instances: vec![
                instance(
                    "eth0",
                    Family::Ipv4,
                    VrrpState::Master,
                    150,
                    "10.0.0.100/24",
                ),
                instance(
                    "eth0-6",
                    Family::Ipv6,
                    VrrpState::Backup,
                    1,
                    "2001:db8::100/64",
                ),
            ],
            healthy: Some(false),
            peers: vec!["10.0.0.3".parse().unwrap()],
        };
        let mut out = Vec::new();
        write_vrrp(Some(&vrrp), None, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "VRRP (keepalived running (pid 7))\n\
             \x20 vrrp eth0 (vrid 51, IPv4): MASTER, prio 150/150, 10.0.0.100/24\n\
             \x20 vrrp eth0 (vrid 51, IPv6): BACKUP, prio 1/150, 2001:db8::100/64\n\
             \x20 peer 10.0.0.3\n\
             \x20 health tracked: a director has no server up, the priority is lowered\n"
        );
        let mut out = Vec::new();
        write_vrrp(None, None, &mut out).unwrap();
        assert!(out.is_empty());
    }

    fn daemon(role: SyncRole, interface: &str, sync_id: u8) -> SyncDaemon {
        SyncDaemon {
            role,
            interface: interface.to_owned(),
            sync_id,
        }
    }

    #[test]
    fn the_sync_daemons_read_in_a_few_words() {
        let master = daemon(SyncRole::Master, "eth1", 51);
        let backup = daemon(SyncRole::Backup, "eth1", 51);
        assert_eq!(sync_summary(&[]), "off");
        assert_eq!(
            sync_summary(&[master.clone(), backup.clone()]),
            "master and backup on eth1, sync id 51"
        );
        assert_eq!(
            sync_summary(std::slice::from_ref(&backup)),
            "backup on eth1, sync id 51"
        );
        let elsewhere = daemon(SyncRole::Backup, "eth2", 51);
        assert_eq!(
            sync_summary(&[master, elsewhere]),
            "master on eth1, sync id 51; backup on eth2, sync id 51"
        );
    }
}
