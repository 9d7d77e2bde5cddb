//! Everything the console does to the world: read and save the config dir, read
//! the kernel, plan and apply. The UI sends [`Request`]s and gets [`Action`]s
//! back, so it never waits on the disk or the kernel. Load and save go through
//! the versioned store; Apply through the same path as `lbconsole apply`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::app::Action;
use crate::apply::{self, Progress};
use crate::config::model::NetworkConfig;
use crate::config::{self, ConfigFile};
use crate::confirm::{self, ApplyRequest};
use crate::health::publish::HealthSource;
use crate::kernel::{
    FirewallBackend, IpvsBackend, Kernel, LinkStatus, NetworkBackend, ServiceStatus,
};
use crate::plan::ipvs::ServiceKey;
use crate::store::{ConfigFiles, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub state_dir: PathBuf,
}

/// The files as saved in the config dir, and as last applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    pub saved: ConfigFiles,
    pub running: Option<ConfigFiles>,
}

/// The saved configuration (a hand edit of the config dir recorded as a version
/// first) and the running copy. A config dir that does not exist yet, or holds
/// none of the files, is an empty configuration: the console is where one
/// writes the first.
pub fn load(paths: &Paths) -> Result<Loaded, StoreError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let saved = match store.saved() {
        Ok(saved) => saved.files,
        Err(StoreError::Empty { .. }) => ConfigFiles::default(),
        Err(StoreError::Dir { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            ConfigFiles::default()
        }
        Err(error) => return Err(error),
    };
    let running = store.running()?;
    Ok(Loaded { saved, running })
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
pub fn save(paths: &Paths, files: &ConfigFiles, expected: &ConfigFiles) -> Result<(), SaveError> {
    let store = Store::open(&paths.config_dir, &paths.state_dir)?;
    let saved = store.saved()?;
    if let Some(file) = ConfigFile::ALL
        .into_iter()
        .find(|&file| saved.files.get(file) != expected.get(file))
    {
        return Err(SaveError::Stale(file));
    }
    store.save(files, saved.version, Some("saved from the console"))?;
    Ok(())
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
    pub services: Result<Vec<ServiceStatus>, String>,
    /// `None` until the firewall backend reports counters.
    pub flows: Option<Vec<FlowCounter>>,
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
    Observe,
    Facts,
    Plan(ConfigFiles),
    Apply(ConfigFiles),
    Save {
        files: ConfigFiles,
        expected: ConfigFiles,
    },
    Reload,
    /// Keep the apply that waits for confirmation.
    Confirm,
}

/// Owns the kernel backends and the paths; answers one request at a time.
pub struct Engine<N, I, F> {
    pub kernel: Kernel<N, I, F>,
    pub paths: Paths,
    /// Seconds an Apply waits for Confirm before the guard restores what ran
    /// (`confirm_timeout` of `lbconsole.toml`); `None` applies unguarded, as the
    /// tests that drive the engine inside their own binary do.
    pub confirm_timeout: Option<u64>,
    /// Whether a kernel module is loaded: [`module_loaded`], or a stand-in in tests.
    pub modules: fn(&str) -> bool,
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
        match request {
            Request::Observe => Action::Observed(Box::new(self.observe().await)),
            Request::Facts => Action::Facts(Box::new(self.facts())),
            Request::Plan(files) => Action::Planned(self.plan(&files).await),
            Request::Apply(files) => Action::Applied(self.apply(&files).await),
            Request::Save { files, expected } => Action::Saved(
                save(&self.paths, &files, &expected)
                    .map(|()| files)
                    .map_err(|e| e.to_string()),
            ),
            Request::Reload => {
                Action::Reloaded(Box::new(load(&self.paths).map_err(|e| e.to_string())))
            }
            Request::Confirm => Action::Confirmed(
                Store::open(&self.paths.config_dir, &self.paths.state_dir)
                    .map_err(confirm::ConfirmError::from)
                    .and_then(|store| confirm::confirm(&store))
                    .map(|pending| format!("confirmed the apply of {}", pending.applied_at))
                    .map_err(|e| e.to_string()),
            ),
        }
    }

    pub async fn observe(&mut self) -> Live {
        let kernel = &mut self.kernel;
        let links = kernel
            .network
            .observe()
            .await
            .map(|o| o.links)
            .map_err(|e| e.to_string());
        let services = match &mut kernel.ipvs {
            Ok(backend) => backend
                .observe()
                .await
                .map(|o| o.services)
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        let flows = kernel.firewall.counters().await.ok().map(|counters| {
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
        Live {
            links,
            services,
            flows,
        }
    }

    /// The plan that would bring the kernel to `files`, refused as `apply`
    /// refuses it (errors, a missing module).
    async fn plan(&mut self, files: &ConfigFiles) -> Result<PlanPreview, String> {
        let running =
            ConfigFiles::read_running(&self.paths.state_dir).map_err(|e| e.to_string())?;
        let plan = apply::apply_files(
            files,
            running.as_ref(),
            &self.paths.state_dir,
            &mut self.kernel,
            true,
            &HealthSource::Daemon.reports(&self.paths.state_dir),
            &mut |_| {},
        )
        .await
        .map_err(|e| e.to_string())?;
        self.refuse_missing_modules(files)?;
        Ok(PlanPreview {
            operations: plan.to_string().lines().map(str::to_owned).collect(),
        })
    }

    /// Carries the plan out as one transaction, through the store like
    /// `lbconsole apply`, which plans again (the kernel may have moved since
    /// the preview).
    async fn apply(&mut self, files: &ConfigFiles) -> Result<Applied, String> {
        self.refuse_missing_modules(files)?;
        let store = Store::open(&self.paths.config_dir, &self.paths.state_dir)
            .map_err(|e| e.to_string())?;
        let request = ApplyRequest {
            files: Some(files.clone()),
            confirm_timeout: self.confirm_timeout,
            ..ApplyRequest::default()
        };
        let applied = confirm::apply(&store, &request, &mut self.kernel, &mut |_: Progress<
            '_,
        >| {})
        .await
        .map_err(|e| e.to_string())?;
        Ok(Applied {
            changes: applied.plan.len(),
            running: files.clone(),
            confirm_within: applied.pending.map(|pending| pending.seconds_left()),
        })
    }

    fn refuse_missing_modules(&self, files: &ConfigFiles) -> Result<(), String> {
        let (network, _) = config::parse::parse_network(&files.network);
        missing_modules(&network, self.modules)
    }

    fn facts(&self) -> Facts {
        let read = |path: &str| {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_owned())
                .unwrap_or_else(|_| "unknown".to_owned())
        };
        let module = |name: &str, missing: &str| {
            if (self.modules)(name) {
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

/// Whether the running kernel has module `name` loaded (or built in).
pub fn module_loaded(name: &str) -> bool {
    Path::new("/sys/module").join(name).exists()
}

/// Refuses a configuration with bonds or VLANs on a kernel without the module
/// for them, naming it, rather than letting the kernel answer "not supported"
/// halfway through. (Such links cannot exist without their module, so the plan
/// would create them.) `loaded` says whether a module is loaded.
pub fn missing_modules(
    network: &NetworkConfig,
    loaded: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let needs = [
        (
            "bonding",
            "bonds",
            network.interfaces.iter().any(|i| i.bond().is_some()),
        ),
        (
            "8021q",
            "VLANs",
            network.interfaces.iter().any(|i| i.vlan().is_some()),
        ),
    ];
    for (module, what, needed) in needs {
        if needed && !loaded(module) {
            return Err(format!(
                "network.conf has {what}, but this kernel has no {module} module loaded \
                 (modprobe {module}); nothing was applied"
            ));
        }
    }
    Ok(())
}

/// Director names by IPVS service, for the LB Layer4 pane.
pub fn director_names(checked: &config::Checked) -> BTreeMap<ServiceKey, String> {
    crate::plan::ipvs::service_names(&checked.config.lvs)
}
