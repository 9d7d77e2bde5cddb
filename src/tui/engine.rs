//! Everything the console does to the world: read and save the config dir, read
//! the kernel and the health daemon, plan and apply. The UI sends [`Request`]s
//! and gets [`Action`]s back, so it never waits on the disk or the kernel. Load,
//! save, history, restore, export and import go through the versioned store, on
//! tokio's blocking threads (the engine shares the UI's task, and an fsync may
//! take a while); Apply through the same path as `lbconsole apply`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::app::Action;
use super::{Looks, looks};
use crate::apply::{self, Progress};
use crate::cli::unified_diff;
use crate::config::{self, ConfigFile};
use crate::confirm::{self, ApplyRequest};
use crate::events;
use crate::ha::peer;
use crate::ha::status::{self, VrrpStatus};
use crate::health::publish::{HealthSource, ServerReport};
use crate::kernel::{
    FirewallBackend, IpvsBackend, Kernel, LinkStatus, NetworkBackend, RouteStatus, ServiceStatus,
    SyncDaemon,
};
use crate::metrics::checker::{self, CheckerReport};
use crate::observe;
use crate::operate::{self, Change, Target};
use crate::plan::ipvs::{DestKey, ServiceKey};
use crate::plan::overrides::{Hold, Overrides};
use crate::store::{self, ConfigFiles, Saved, Store, StoreError, VersionMeta, archive};
use crate::tui::pair::{self, Role};

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
}

/// The files as saved in the config dir, and as last applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub saved: ConfigFiles,
    /// The store's version of `saved`; 0 when nothing was saved yet.
    pub version: u64,
    pub running: Option<ConfigFiles>,
}

/// The saved configuration (a hand edit of the config dir recorded as a version
/// first, an appliance's first configuration empty: [`Store::saved_or_first`])
/// and the running copy.
pub fn load(paths: &Paths) -> Result<Loaded, StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let saved = store.saved_or_first()?;
    Ok(Loaded {
        saved: saved.files,
        version: saved.version,
        running: store.running()?,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Someone else saved since this console loaded the files.
    #[error("{} changed on disk since it was loaded; reload to see it (your edits are then lost)", .0.file_name())]
    Stale(ConfigFile),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Saves `files` as the next version, unless the saved configuration is no
/// longer `expected` (what this console loaded or last saved). The store checks
/// the version again under its lock, so a save racing this one is refused too.
pub fn save(
    paths: &Paths,
    files: &ConfigFiles,
    expected: &ConfigFiles,
) -> Result<Saved, SaveError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    // The first configuration of a new appliance: the save creates the files.
    let saved = store.saved_or_first()?;
    if let Some(file) = ConfigFile::ALL
        .into_iter()
        .find(|&file| saved.files.get(file) != expected.get(file))
    {
        return Err(SaveError::Stale(file));
    }
    let meta = store.save(files, saved.version, Some("saved from the console"))?;
    Ok(Saved {
        version: meta.number,
        files: files.clone(),
        meta: Some(meta),
    })
}

/// Why the store refused a change, as the console offers to go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Someone else saved first: reload, or go on editing.
    Stale(String),
    /// Anything else, with the configuration's problems one per line.
    Failed(String),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::Stale { .. } => Self::Stale(error.to_string()),
            StoreError::Invalid { diagnostics, .. } => {
                let mut text = format!("{error}\n");
                for diagnostic in diagnostics {
                    text.push_str(&format!("\n{diagnostic}"));
                }
                Self::Failed(text)
            }
            _ => Self::Failed(error.to_string()),
        }
    }
}

impl From<SaveError> for Refusal {
    fn from(error: SaveError) -> Self {
        match error {
            SaveError::Stale(_) => Self::Stale(error.to_string()),
            SaveError::Store(error) => error.into(),
        }
    }
}

/// The store's versions, for the Setup tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// Newest first.
    pub versions: Vec<VersionMeta>,
    /// The version the kernel runs, when what runs was a saved version.
    pub running: Option<u64>,
}

/// What a version is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffBase {
    /// The version before it.
    Previous,
    /// The console's buffers, saved or not.
    Edited(ConfigFiles),
}

/// A unified diff to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub title: String,
    /// Empty when the two sides are the same.
    pub text: String,
}

/// What an import would change, shown before it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPreview {
    pub path: PathBuf,
    /// The saved version the import replaces, which it must still be.
    pub replaces: u64,
    pub diff: Diff,
}

fn preview_import(
    paths: &Paths,
    path: PathBuf,
    expect_version: u64,
) -> Result<ImportPreview, StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let place = archive::Place::File(&path);
    let prepared = archive::prepare_import(&store, place, Some(expect_version))?;
    let from = format!("version {}", prepared.replaces);
    Ok(ImportPreview {
        diff: Diff {
            title: format!("Import {}?", path.display()),
            text: unified_diff(&prepared.before, &prepared.files, &from, "imported"),
        },
        replaces: prepared.replaces,
        path,
    })
}

/// A version that replaced the saved configuration (restore, import), and
/// the files as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    pub meta: VersionMeta,
    pub loaded: Loaded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingChange {
    Theme(String),
    Keymap(String),
    ConfirmTimeout(u64),
}

/// Runs store work on tokio's blocking threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn history(paths: &Paths) -> Result<History, StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let mut versions = store.history()?;
    versions.reverse();
    let running = store.running_version()?;
    Ok(History { versions, running })
}

fn diff(paths: &Paths, version: u64, base: DiffBase) -> Result<Diff, StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let files = store.version(version)?;
    let this = format!("version {version}");
    Ok(match base {
        DiffBase::Previous => {
            let (before, name) = match version.checked_sub(1).filter(|&n| n > 0) {
                Some(previous) => (store.version(previous)?, format!("version {previous}")),
                None => (ConfigFiles::default(), "nothing".to_owned()),
            };
            Diff {
                title: format!("Version {version}: what changed from {name}"),
                text: unified_diff(&before, &files, &name, &this),
            }
        }
        DiffBase::Edited(buffers) => Diff {
            title: format!("Version {version} against the edited files"),
            text: unified_diff(&files, &buffers, &this, "edited"),
        },
    })
}

/// Replaces the saved configuration by `change` (a restore, an import), then
/// loads the files as they are now.
fn replace(
    paths: &Paths,
    change: impl FnOnce(&Store) -> Result<VersionMeta, StoreError>,
) -> Result<NewVersion, Refusal> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let meta = change(&store)?;
    Ok(NewVersion {
        meta,
        loaded: load(paths)?,
    })
}

/// Exports the saved configuration; returns the version and where it went.
fn export(paths: &Paths, path: &Path) -> Result<(u64, PathBuf), StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let path = std::path::absolute(path).map_err(|source| StoreError::Write {
        path: path.to_owned(),
        source,
    })?;
    let version = archive::export(&store, archive::Place::File(&path))?;
    Ok((version, path))
}

/// The files an apply programs: all three.
pub const APPLIED_FILES: [ConfigFile; 3] = ConfigFile::ALL;

/// A flow's hit counter, as the Flows tab shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowCounter {
    pub flow: String,
    pub rule: String,
    pub packets: u64,
    pub bytes: u64,
}

/// What the kernel is doing, for the live panes. An `Err` is the sentence
/// saying why that part cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    pub links: Result<Vec<LinkStatus>, String>,
    /// Every route of every table, as the kernel has them (empty when the
    /// links cannot be read).
    pub routes: Vec<RouteStatus>,
    pub services: Result<Vec<ServiceStatus>, String>,
    /// The IPVS connection-sync daemons running, the master first.
    pub sync_daemons: Result<Vec<SyncDaemon>, String>,
    /// `None` until the firewall backend reports counters.
    pub flows: Option<Vec<FlowCounter>>,
    /// The servers' health as the daemon publishes it; `Ok(None)` when no
    /// daemon runs.
    pub health: Result<Option<Vec<ServerReport>>, String>,
    /// keepalived and its VRRP instances as the daemon publishes them;
    /// `Ok(None)` when no daemon wrote any.
    pub vrrp: Result<Option<VrrpStatus>, String>,
    /// The operators' drains, disables and weights (`STATE_DIR/overrides.toml`).
    pub overrides: Result<Overrides, String>,
    /// The newest events of the log, for the events pane.
    pub events: Result<events::Log, String>,
    /// Whether the checker is alive, and the last checks of the server asked for.
    pub checks: Checks,
}

/// The checker as `checker.sock` answers, for the server `of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    pub of: Option<Target>,
    /// `Ok(None)` when no daemon runs.
    pub report: Result<Option<CheckerReport>, String>,
}

/// How many of the newest events the events pane gets: more than a screen.
const EVENTS_SHOWN: usize = 200;

/// The VRRP status the daemon wrote in `state_dir`; `None` when there is none.
fn read_vrrp_status(state_dir: &Path) -> Result<Option<VrrpStatus>, String> {
    status::read(state_dir).map_err(|e| e.to_string())
}

/// Facts about the machine for the Setup tab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub hostname: String,
    pub kernel: String,
    /// `Ok` when available; otherwise what is missing and what to do.
    pub ipvs: Result<(), String>,
    pub bonding: Result<(), String>,
    pub nftables: Result<(), String>,
}

/// A plan shown before it is carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanPreview {
    /// One kernel operation per line, as `apply --dry-run` prints them.
    pub operations: Vec<String>,
    /// The plan takes away everything lbconsole runs; a yes to this preview is
    /// the administrator's say-so, as `--yes` is on the command line.
    pub tears_down: bool,
    /// The `vrrp` lines change: keepalived runs another configuration, even
    /// when no kernel operation is planned (the addresses are its own).
    pub changes_vrrp: bool,
    /// What this box is to its HA pair, and what the apply does to the pair.
    pub pair: Option<PairNote>,
}

/// What an apply means to the HA pair this box is one of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairNote {
    /// The master keeps serving: applying to the standby is normal.
    Backup,
    /// The change reloads keepalived on the box that holds the addresses.
    MasterChangesVrrp,
}

impl PairNote {
    /// The note for a box of `role` applying a plan that does or does not
    /// change its VRRP lines; none when there is nothing to say.
    pub fn of(role: Option<Role>, changes_vrrp: bool) -> Option<Self> {
        match role? {
            Role::Backup => Some(Self::Backup),
            Role::Master if changes_vrrp => Some(Self::MasterChangesVrrp),
            Role::Master => None,
        }
    }
}

/// The peer's saved `lvs.conf` and `flows.conf` against this box's
/// (network.conf is each box's own and never compared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerComparison {
    /// The peer as ssh is given it.
    pub peer: String,
    /// The peer's saved version, which a sync expects to replace.
    pub version: u64,
    /// A unified diff from the peer's files to this box's saved ones; empty
    /// when the two are in step.
    pub diff: String,
}

/// What the console last learnt of configuration sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerSync {
    Compared(PeerComparison),
    /// The peer saved this box's files; its report, as it wrote it.
    Synced {
        peer: String,
        report: String,
    },
    /// Why the peer could not be compared with, or refused the sync.
    Failed(String),
}

/// Why a plan or an apply did not happen. The cause stays typed so the
/// console can react to it; the text is the sentence `lbconsole apply` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub text: String,
    pub cause: FailureCause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureCause {
    /// This process may not change the kernel (no `CAP_NET_ADMIN`, `EPERM`).
    NotPermitted,
    /// The kernel lacks a module, IPVS or nft; the Setup tab says which.
    Unavailable,
    Other,
}

impl From<apply::ApplyError> for Failure {
    fn from(error: apply::ApplyError) -> Self {
        let cause = if error.is_permission_denied() {
            FailureCause::NotPermitted
        } else if error.is_unavailable() {
            FailureCause::Unavailable
        } else {
            FailureCause::Other
        };
        Self {
            text: error.to_string(),
            cause,
        }
    }
}

impl From<confirm::ConfirmError> for Failure {
    fn from(error: confirm::ConfirmError) -> Self {
        match error {
            confirm::ConfirmError::Apply(error) => error.into(),
            error => Self::other(error),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::other(error)
    }
}

impl Failure {
    fn other(error: impl std::fmt::Display) -> Self {
        Self {
            text: error.to_string(),
            cause: FailureCause::Other,
        }
    }
}

/// The outcome of an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub changes: usize,
    /// What is now recorded as running.
    pub running: ConfigFiles,
    /// Seconds left to confirm, when the apply is guarded and changed something.
    pub confirm_within: Option<u64>,
}

#[derive(Debug, Clone)]
pub enum Request {
    /// What runs, and the last checks of `checks_of` (the server selected in
    /// the LB Layer4 pane).
    Observe {
        checks_of: Option<Target>,
    },
    Facts,
    Plan(ConfigFiles),
    Apply {
        files: ConfigFiles,
        tear_down: apply::TearDown,
    },
    Save {
        files: ConfigFiles,
        expected: ConfigFiles,
    },
    Reload,
    /// Keep the apply that waits for confirmation.
    Confirm,
    History,
    Diff {
        version: u64,
        base: DiffBase,
    },
    /// Make `version` the saved configuration again, if the saved version is
    /// still `expect_version`.
    Restore {
        version: u64,
        expect_version: u64,
    },
    Export(PathBuf),
    /// What importing `path` would change, before asking, if the saved
    /// version is still `expect_version`.
    PreviewImport {
        path: PathBuf,
        expect_version: u64,
    },
    /// Save what `path` holds, if the saved version is still `expect_version`.
    Import {
        path: PathBuf,
        expect_version: u64,
    },
    /// Change one setting of `lbconsole.toml`.
    ChangeSetting(SettingChange),
    /// Compare the peer's saved files with this box's: the peer named, or
    /// the first `peer` of the saved network.conf.
    ComparePeer(Option<String>),
    /// Save this box's `lvs.conf` and `flows.conf` on the peer, if its saved
    /// version is still `expect_version` (the one compared).
    SyncPeer {
        peer: String,
        expect_version: u64,
    },
    /// Drain, disable, enable or reweight real servers, one after the other,
    /// as `lbconsole server …` does.
    Operate {
        targets: Vec<Target>,
        /// `None`: enable.
        hold: Option<Hold>,
        note: Option<String>,
    },
}

/// What became of one server's change: what it did, or the whole error.
pub type Operated = (Target, Result<(), String>);

/// Owns the kernel backends and the paths; answers one request at a time.
pub struct Engine<N, I, F> {
    pub kernel: Kernel<N, I, F>,
    pub paths: Paths,
    /// Seconds an Apply waits for Confirm before the guard restores what ran
    /// (`confirm_timeout` of `lbconsole.toml`); `None` applies unguarded, as the
    /// tests that drive the engine inside their own binary do.
    pub confirm_timeout: Option<u64>,
    /// Where the user's keymap and theme files are.
    pub user_dir: Option<PathBuf>,
    /// Whether the terminal gets no colours (themes are loaded for it).
    pub monochrome: bool,
    /// The last comparison with the peer: what a sync sends, once the
    /// administrator has seen its diff.
    pub peer_comparison: Option<peer::PeerComparison>,
}

impl<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend> Engine<N, I, F> {
    /// Answers requests until the console closes its end.
    pub async fn serve(
        mut self,
        mut requests: UnboundedReceiver<Request>,
        actions: UnboundedSender<Action>,
    ) {
        while let Some(request) = requests.recv().await {
            let action = self.answer(request).await;
            if actions.send(action).is_err() {
                break;
            }
        }
    }

    pub async fn answer(&mut self, request: Request) -> Action {
        let paths = self.paths.clone();
        match request {
            Request::Observe { checks_of } => {
                Action::Observed(Box::new(self.observe(checks_of).await))
            }
            Request::Facts => Action::Facts(Box::new(self.facts())),
            Request::Plan(files) => Action::Planned(self.plan(&files).await),
            Request::Apply { files, tear_down } => {
                Action::Applied(self.apply(&files, tear_down).await)
            }
            Request::Save { files, expected } => Action::Saved(
                blocking(move || save(&paths, &files, &expected).map_err(Refusal::from)).await,
            ),
            Request::Reload => Action::Reloaded(Box::new(
                blocking(move || load(&paths).map_err(|e| e.to_string())).await,
            )),
            Request::Confirm => Action::Confirmed(
                blocking(move || {
                    Store::open(&paths.config_dir, &paths.state_dir)
                        .map_err(confirm::ConfirmError::from)
                        .and_then(|store| confirm::confirm(&store))
                        .map(|pending| format!("confirmed the apply of {}", pending.applied_at))
                        .map_err(|e| e.to_string())
                })
                .await,
            ),
            Request::History => {
                Action::History(blocking(move || history(&paths).map_err(|e| e.to_string())).await)
            }
            Request::Diff { version, base } => Action::Diffed(
                blocking(move || diff(&paths, version, base).map_err(|e| e.to_string())).await,
            ),
            Request::Restore {
                version,
                expect_version,
            } => Action::Replaced(Box::new(
                blocking(move || replace(&paths, |store| store.restore(version, expect_version)))
                    .await,
            )),
            Request::Export(path) => Action::Exported(
                blocking(move || export(&paths, &path).map_err(|e| e.to_string())).await,
            ),
            Request::PreviewImport {
                path,
                expect_version,
            } => Action::ImportPreviewed(
                blocking(move || {
                    preview_import(&paths, path, expect_version).map_err(Refusal::from)
                })
                .await,
            ),
            Request::Import {
                path,
                expect_version,
            } => Action::Replaced(Box::new(
                blocking(move || {
                    replace(&paths, |store| {
                        archive::import(store, archive::Place::File(&path), Some(expect_version))
                    })
                })
                .await,
            )),
            Request::ChangeSetting(change) => {
                Action::LooksChanged(Box::new(self.change_setting(change).await))
            }
            Request::ComparePeer(to) => Action::PeerCompared(self.compare_with_peer(to).await),
            Request::SyncPeer {
                peer,
                expect_version,
            } => Action::PeerSynced {
                result: self.sync_peer(&peer, expect_version).await,
                peer,
            },
            Request::Operate {
                targets,
                hold,
                note,
            } => {
                let changes = targets
                    .into_iter()
                    .map(|target| Change {
                        target,
                        hold,
                        note: note.clone(),
                    })
                    .collect();
                Action::Operated {
                    hold,
                    outcomes: self.operate(changes).await,
                }
            }
        }
    }

    /// Carries out each change on its own: one refused leaves the others done.
    async fn operate(&mut self, changes: Vec<Change>) -> Vec<Operated> {
        let paths = self.paths.clone();
        let store = blocking(move || Store::open(&paths.config_dir, &paths.state_dir)).await;
        let mut outcomes = Vec::with_capacity(changes.len());
        for change in changes {
            let result = match (&store, self.kernel.ipvs.as_mut()) {
                (Err(error), _) => Err(error.to_string()),
                (_, Err(error)) => Err(error.to_string()),
                (Ok(store), Ok(ipvs)) => operate::change(store, ipvs, &change)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            };
            outcomes.push((change.target, result));
        }
        outcomes
    }

    /// Writes one setting to `lbconsole.toml`, once the keymap and theme it
    /// names load; the next Apply waits for its confirm timeout.
    async fn change_setting(&mut self, change: SettingChange) -> Result<Looks, String> {
        let (paths, user_dir, monochrome) =
            (self.paths.clone(), self.user_dir.clone(), self.monochrome);
        let looks = blocking(move || {
            let mut settings =
                store::Settings::load(&paths.config_dir).map_err(|e| e.to_string())?;
            match change {
                SettingChange::Theme(name) => settings.theme = Some(name),
                SettingChange::Keymap(name) => settings.keymap = Some(name),
                SettingChange::ConfirmTimeout(seconds) => {
                    store::settings::check_confirm_timeout(seconds)?;
                    settings.confirm_timeout = seconds;
                }
            }
            let mut problems = Vec::new();
            let looks = looks(settings, user_dir.as_deref(), monochrome, &mut problems);
            if !problems.is_empty() {
                return Err(problems.join("\n"));
            }
            looks
                .settings
                .write(&paths.config_dir)
                .map_err(|e| e.to_string())?;
            Ok(looks)
        })
        .await?;
        if let Some(timeout) = &mut self.confirm_timeout {
            *timeout = looks.settings.confirm_timeout;
        }
        Ok(looks)
    }

    /// The peer's saved lvs.conf and flows.conf against this box's, over ssh
    /// as `lbconsole sync --dry-run` reads them; kept for the sync that may
    /// follow.
    async fn compare_with_peer(&mut self, to: Option<String>) -> Result<PeerComparison, String> {
        self.peer_comparison = None;
        let paths = self.paths.clone();
        let (store, settings) = blocking(move || {
            let store = Store::open(&paths.config_dir, &paths.state_dir)?;
            let settings = store::Settings::load(&paths.config_dir)?;
            Ok::<_, StoreError>((store, settings))
        })
        .await
        .map_err(|e| e.to_string())?;
        let comparison = peer::compare(&store, &settings, to.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        let shown = PeerComparison {
            peer: comparison.peer.clone(),
            version: comparison.peer_version,
            diff: if comparison.in_step() {
                String::new()
            } else {
                comparison.diff.clone()
            },
        };
        self.peer_comparison = Some(comparison);
        Ok(shown)
    }

    /// Sends what the last comparison with `peer` showed, which the peer
    /// saves if its version is still `expect_version`; the peer's report.
    async fn sync_peer(&mut self, peer: &str, expect_version: u64) -> Result<String, String> {
        let comparison = self
            .peer_comparison
            .take()
            .filter(|c| c.peer == peer && c.peer_version == expect_version)
            .ok_or_else(|| {
                format!("nothing sent: compare with {peer} again, the diff shown is not the last")
            })?;
        let config_dir = self.paths.config_dir.clone();
        let settings = blocking(move || store::Settings::load(&config_dir))
            .await
            .map_err(|e| e.to_string())?;
        peer::push(&settings, &comparison, false)
            .await
            .map(|pushed| pushed.report)
            .map_err(|e| e.to_string())
    }

    /// What runs, read as `lbconsole status` reads it, for the live panes.
    pub async fn observe(&mut self, checks_of: Option<Target>) -> Live {
        let live = observe::observe(&mut self.kernel, &self.paths.state_dir).await;
        let flows = live.flows.ok().map(|counters| {
            counters
                .into_iter()
                .map(|counter| FlowCounter {
                    flow: format!("{} {}", counter.direction.keyword(), counter.flow),
                    rule: counter
                        .rule
                        .map_or_else(|| "entered".to_owned(), |rule| format!("rule {rule}")),
                    packets: counter.packets,
                    bytes: counter.bytes,
                })
                .collect()
        });
        let (links, routes) = match live.network {
            Ok(observed) => (Ok(observed.links), observed.routes),
            Err(error) => (Err(error.to_string()), Vec::new()),
        };
        let state_dir = self.paths.state_dir.clone();
        let (vrrp, overrides) = blocking(move || {
            (
                read_vrrp_status(&state_dir),
                store::overrides::read(&state_dir).map_err(|e| e.to_string()),
            )
        })
        .await;
        let events_dir = self.paths.state_dir.clone();
        let checks_dir = self.paths.state_dir.clone();
        let asked = checks_of.clone();
        let report = blocking(move || {
            let server = asked
                .as_ref()
                .map(|t| (t.director.as_str(), t.server.as_str()));
            checker::read(&checks_dir, server).map_err(|e| e.to_string())
        })
        .await;
        Live {
            links,
            routes,
            services: live.services.map_err(|e| e.to_string()),
            sync_daemons: live.sync_daemons.map_err(|e| e.to_string()),
            flows,
            health: live.health.map_err(|e| e.to_string()),
            vrrp,
            overrides,
            events: blocking(move || {
                events::read(&events_dir, EVENTS_SHOWN).map_err(|e| e.to_string())
            })
            .await,
            checks: Checks {
                of: checks_of,
                report,
            },
        }
    }

    /// Which servers the health daemon keeps out, asked off the UI's task (a
    /// busy daemon may take its socket's timeout to answer).
    async fn daemon_health(&self) -> Vec<ServerReport> {
        let state_dir = self.paths.state_dir.clone();
        blocking(move || HealthSource::Daemon.reports(&state_dir)).await
    }

    /// The plan that would bring the kernel to `files`, refused as `apply`
    /// refuses it (errors, a missing module).
    async fn plan(&mut self, files: &ConfigFiles) -> Result<PlanPreview, Failure> {
        let running = ConfigFiles::read_running(&self.paths.state_dir)?;
        let health = self.daemon_health().await;
        let overrides = crate::store::overrides::read(&self.paths.state_dir)?;
        let target = apply::Target {
            files,
            hand_back: running.as_ref(),
            health: &health,
            overrides: &overrides,
        };
        let plan = apply::plan(&mut self.kernel, target, &mut |_| {}).await?;
        let state_dir = self.paths.state_dir.clone();
        // A status that cannot be read says nothing of the role; the live
        // pane shows why.
        let role = blocking(move || read_vrrp_status(&state_dir))
            .await
            .ok()
            .flatten()
            .and_then(|status| pair::role(&status));
        let network = |files: &ConfigFiles| config::parse::parse_network(&files.network).0;
        let changes_vrrp =
            pair::vrrp_changed(running.as_ref().map(network).as_ref(), &network(files));
        Ok(PlanPreview {
            operations: plan.to_string().lines().map(str::to_owned).collect(),
            tears_down: plan.tears_down,
            changes_vrrp,
            pair: PairNote::of(role, changes_vrrp),
        })
    }

    /// Carries the plan out as one transaction, through the store like
    /// `lbconsole apply`, which plans again (the kernel may have moved since
    /// the preview).
    async fn apply(
        &mut self,
        files: &ConfigFiles,
        tear_down: apply::TearDown,
    ) -> Result<Applied, Failure> {
        let store = Store::open(&self.paths.config_dir, &self.paths.state_dir)?;
        let request = ApplyRequest {
            files: Some(files.clone()),
            confirm_timeout: self.confirm_timeout,
            tear_down,
            health: HealthSource::Known(self.daemon_health().await),
            ..ApplyRequest::default()
        };
        let applied = confirm::apply(&store, &request, &mut self.kernel, &mut |_: Progress<
            '_,
        >| {})
        .await?;
        Ok(Applied {
            changes: applied.plan.len(),
            running: files.clone(),
            confirm_within: applied.pending.map(|pending| pending.seconds_left()),
        })
    }

    fn facts(&self) -> Facts {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        let module = |name: &str, missing: &str| {
            if self.kernel.network.has_module(name) {
                Ok(())
            } else {
                Err(missing.to_owned())
            }
        };
        Facts {
            hostname: read("/proc/sys/kernel/hostname"),
            kernel: read("/proc/sys/kernel/osrelease"),
            ipvs: self
                .kernel
                .ipvs
                .as_ref()
                .map(|_| ())
                .map_err(|e| e.to_string()),
            bonding: module(
                "bonding",
                "no bonding: the bonding module is not loaded (modprobe bonding)",
            ),
            nftables: module(
                "nf_tables",
                "no nftables: the nf_tables module is not loaded (modprobe nf_tables)",
            ),
        }
    }
}

/// The directors and real servers of the edited lvs.conf, for the LB Layer4
/// pane (which names what IPVS shows) and the editor's gutter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directors {
    /// Director names by IPVS service.
    pub names: BTreeMap<ServiceKey, String>,
    pub servers: Vec<ServerLine>,
}

/// A real server of the edited lvs.conf: how IPVS keys it, and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub director: String,
    pub server: String,
    pub service: ServiceKey,
    pub dest: DestKey,
    /// The line of `server NAME`, from 1.
    pub line: u32,
}

/// Director and server names by IPVS service and destination.
pub fn director_names(checked: &config::Checked) -> Directors {
    use crate::plan::ipvs::{dest_key, director_marks, forward, service_key};
    let lvs = &checked.config.lvs;
    let marks = director_marks(lvs);
    let mut servers = Vec::new();
    for director in &lvs.directors {
        let service = service_key(director, &marks);
        let port = match service {
            ServiceKey::Vip { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        for server in &director.servers {
            servers.push(ServerLine {
                director: director.name.to_string(),
                server: server.name.to_string(),
                service,
                dest: dest_key(forward(director), server, port),
                line: server.name.loc.line,
            });
        }
    }
    Directors {
        names: crate::plan::ipvs::service_names(lvs),
        servers,
    }
}
