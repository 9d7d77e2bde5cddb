//! The transaction: observe the kernel, plan, execute; on any failure undo what
//! was done, newest first, so the kernel ends exactly where it started.

use std::fmt;

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::model::{FlowsConfig, LvsConfig, NetworkConfig};
use crate::config::{self, Diagnostic, Severity};
use crate::health::publish::ServerReport;
use crate::health::state::with_reported_health;
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend};
use crate::plan::Step;
use crate::plan::flows::{self, FirewallOp, MarkRule};
use crate::plan::ipvs::{self, IpvsOp};
use crate::plan::network::{self, PlanError};
use crate::plan::overrides::{Override, Overrides};
use crate::store::{ConfigFiles, StoreError, plural};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the configuration has {}; nothing was applied (see `lbconsole check`)", plural(*.0, "error"))]
    Invalid(usize),
    #[error("lvs.conf has {}, but {error}; nothing was applied", plural(*directors, "director"))]
    NoIpvs {
        directors: usize,
        error: KernelError,
    },
    #[error("flows.conf has {}, but {error}; nothing was applied", plural(*flows, "flow"))]
    NoFirewall { flows: usize, error: KernelError },
    #[error(
        "the configuration has no service, flow or address, so this apply would remove everything lbconsole runs ({}); nothing was applied (`lbconsole apply --yes` does it)",
        plural(*changes, "change")
    )]
    TearsDown { changes: usize },
    #[error(
        "network.conf has {what}, but this kernel has no {module} module loaded (modprobe {module}); nothing was applied"
    )]
    NoModule {
        module: &'static str,
        what: &'static str,
    },
    #[error(
        "changing the kernel needs CAP_NET_ADMIN, which this process lacks (run lbconsole as root); nothing was applied"
    )]
    NotPermitted,
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{error}; the {undone} change(s) made before it were undone")]
    RolledBack { error: KernelError, undone: usize },
    #[error(
        "{error}; undoing the changes made before it failed as well ({}), so the kernel is part-way",
        undo_failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    UndoFailed {
        error: KernelError,
        undo_failures: Vec<KernelError>,
    },
}

impl ApplyError {
    /// The kernel error that stopped the apply, if one did.
    pub fn kernel_error(&self) -> Option<&KernelError> {
        match self {
            Self::Kernel(error)
            | Self::RolledBack { error, .. }
            | Self::UndoFailed { error, .. }
            | Self::NoIpvs { error, .. }
            | Self::NoFirewall { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Refused for want of privilege: by preflight, or by the kernel (`EPERM`).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Self::NotPermitted)
            || self
                .kernel_error()
                .is_some_and(KernelError::is_permission_denied)
    }

    /// Refused because the kernel lacks a facility (a module, IPVS, nft).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::NoModule { .. } | Self::NoIpvs { .. } | Self::NoFirewall { .. }
        ) || self.kernel_error().is_some_and(KernelError::is_unavailable)
    }
}

/// Whether an apply may take away everything lbconsole runs. A plan that
/// would leave lbconsole running nothing at all (every service, flow and
/// address gone) is refused unless the administrator said so: an empty
/// configuration is far more often a mistake than a wish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TearDown {
    #[default]
    Refuse,
    /// `--yes`, the console's confirmed preview, or a rollback to what ran before.
    Allow,
}

/// What [`plan`] reports while it works, in this order.
#[derive(Debug)]
pub enum Progress<'a> {
    /// Every problem found in the configuration (warnings only, when it goes on).
    Checked(&'a [Diagnostic]),
    /// The plan, before any of it is carried out (or instead, on a dry run).
    Planned(&'a Plan),
}

/// What one apply brings the kernel to.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub files: &'a ConfigFiles,
    /// The configuration that may have put things in the kernel before (what
    /// runs now, or what a rollback takes out): addresses it put on interfaces
    /// `files` no longer names are removed.
    pub hand_back: Option<&'a ConfigFiles>,
    /// What the daemon reports of the real servers: one it keeps out of IPVS
    /// stays out (see [`with_reported_health`]).
    pub health: &'a [ServerReport],
    /// The operators' overrides, above the configuration.
    pub overrides: &'a Overrides,
}

/// The one way a configuration reaches the kernel — `apply`, the confirm guard's
/// rollback, the daemon's boot apply and the console all come through here:
/// [`plan`], then [`execute_and_record`].
pub async fn apply<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    target: Target<'_>,
    tear_down: TearDown,
    state_dir: &Path,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Plan, ApplyError> {
    let plan = plan(kernel, target, progress).await?;
    execute_and_record(kernel, &plan, tear_down, target.files, state_dir).await?;
    Ok(plan)
}

/// [`execute`]s `plan`, then records `files`, what it was planned from, as
/// what runs in `STATE_DIR/running/`.
pub async fn execute_and_record<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    plan: &Plan,
    tear_down: TearDown,
    files: &ConfigFiles,
    state_dir: &Path,
) -> Result<(), ApplyError> {
    execute(kernel, plan, tear_down).await?;
    files.write_running(state_dir)?;
    Ok(())
}

/// Refuses a plan that tears everything down unless `tear_down` allows it, and
/// any change by a process that may not change the kernel. Changes nothing:
/// callers may ask before they start anything (the confirm guard).
pub fn permit<N: NetworkBackend>(
    network: &N,
    plan: &Plan,
    tear_down: TearDown,
) -> Result<(), ApplyError> {
    if plan.tears_down && tear_down == TearDown::Refuse {
        return Err(ApplyError::TearsDown {
            changes: plan.len(),
        });
    }
    if !plan.is_empty() && !network.may_change() {
        return Err(ApplyError::NotPermitted);
    }
    Ok(())
}

/// Validates the target, checks that this kernel can run it ([`preflight`]) and
/// plans it against the observed kernel; changes nothing. This is what a dry run
/// and the console's preview show. IPVS may be missing from `kernel`: an error
/// only when `lvs.conf` has directors; nft likewise only when a flow is not
/// `skip`.
pub async fn plan<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    target: Target<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Plan, ApplyError> {
    let checked = config::check(target.files.sources());
    progress(Progress::Checked(&checked.diagnostics));
    let errors = checked.count(Severity::Error);
    if errors > 0 {
        return Err(ApplyError::Invalid(errors));
    }
    let config = &checked.config;
    preflight(&config.network, &kernel.network)?;
    // Only the network part of what ran matters to the plan (its addresses are
    // handed back); parsing the rest would cost as much as the new config.
    let previous = target
        .hand_back
        .map(|files| config::parse::parse_network(&files.network).0);
    let mut plan = Plan {
        network: plan_network(
            &mut kernel.network,
            &config.network,
            previous.as_ref(),
            flows::mark_rules(&config.flows),
        )
        .await?,
        ..Plan::default()
    };
    let (overrides, dropped) = target.overrides.split_by(&config.lvs);
    match kernel.ipvs.as_mut() {
        Ok(backend) => {
            let applied = target
                .hand_back
                .and_then(|files| last_lvs(files, target.files));
            plan.ipvs = plan_ipvs(
                backend,
                &config.lvs,
                applied.as_ref(),
                target.health,
                &overrides,
            )
            .await?
        }
        Err(_) if config.lvs.directors.is_empty() => {}
        Err(error) => {
            return Err(ApplyError::NoIpvs {
                directors: config.lvs.directors.len(),
                error: error.clone(),
            });
        }
    }
    let active_flows = config.flows.active().count();
    plan.firewall = match plan_firewall(&mut kernel.firewall, &config.flows, &config.lvs).await {
        Ok(step) => step,
        Err(ApplyError::Kernel(_)) if active_flows == 0 => None,
        Err(ApplyError::Kernel(error @ KernelError::Unavailable(_))) => {
            return Err(ApplyError::NoFirewall {
                flows: active_flows,
                error,
            });
        }
        Err(error) => return Err(error),
    };
    plan.tears_down = plan.takes_away_something() && runs_nothing(config);
    plan.overrides = overrides.servers;
    plan.dropped_overrides = dropped;
    progress(Progress::Planned(&plan));
    Ok(plan)
}

/// Refuses a configuration this kernel cannot run before anything is planned:
/// bonds or VLANs without the module for them, naming it, rather than letting
/// the kernel answer "not supported" halfway through. (Such links cannot exist
/// without their module, so the plan would create them.)
pub fn preflight<N: NetworkBackend>(network: &NetworkConfig, kernel: &N) -> Result<(), ApplyError> {
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
    match needs
        .into_iter()
        .find(|&(module, _, needed)| needed && !kernel.has_module(module))
    {
        Some((module, what, _)) => Err(ApplyError::NoModule { module, what }),
        None => Ok(()),
    }
}

/// Carries `plan` out as one transaction: on any failure what was done is
/// undone, newest first, so the kernel ends exactly where it started. What
/// [`permit`] refuses is not tried.
pub async fn execute<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    kernel: &mut Kernel<N, I, F>,
    plan: &Plan,
    tear_down: TearDown,
) -> Result<(), ApplyError> {
    permit(&kernel.network, plan, tear_down)?;
    let firewall = plan.firewall.is_some().then_some(&mut kernel.firewall);
    execute_parts(
        &mut kernel.network,
        kernel.ipvs.as_mut().ok(),
        firewall,
        plan,
    )
    .await
}

/// Everything one apply changes, in order: the network first (an IPVS service
/// may need its VIP's address; a flow's mark its routing rule), then the IPVS
/// table (a flow's mark needs its fwmark service), then the flows' nft table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub network: Vec<Step>,
    pub ipvs: Vec<IpvsOp>,
    pub firewall: Option<FirewallOp>,
    /// The plan takes away addresses, services or the flows' table, and
    /// leaves lbconsole running none of them.
    pub tears_down: bool,
    /// The overrides the IPVS part was planned with.
    pub overrides: Vec<Override>,
    /// The overrides of servers the configuration no longer has: the apply
    /// removes them.
    pub dropped_overrides: Vec<Override>,
}

/// A configuration with no director, no active flow and no address: applied, it
/// takes away everything lbconsole owns.
fn runs_nothing(config: &config::model::Config) -> bool {
    config.lvs.directors.is_empty()
        && config.flows.active().next().is_none()
        && config
            .network
            .interfaces
            .iter()
            .all(|interface| interface.addresses.is_empty())
}

impl Plan {
    /// What the overrides do to this apply, one line each, for a dry run, the
    /// console's preview and the daemon's log.
    pub fn override_notes(&self) -> Vec<String> {
        let held = self.overrides.iter().map(ToString::to_string);
        held.chain(self.dropped_notes()).collect()
    }

    /// One line per override the apply removes.
    pub fn dropped_notes(&self) -> impl Iterator<Item = String> + '_ {
        self.dropped_overrides.iter().map(|o| {
            format!(
                "override removed: lvs.conf no longer has server {} of {} ({} by {})",
                o.server,
                o.director,
                o.hold.name(),
                o.by
            )
        })
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.network.len() + self.ipvs.len() + usize::from(self.firewall.is_some())
    }

    /// Whether it removes an address, an IPVS service or our nft table: what
    /// lbconsole runs, as opposed to links it merely shapes.
    fn takes_away_something(&self) -> bool {
        self.network
            .iter()
            .any(|step| matches!(step.op, network::NetOp::RemoveAddress { .. }))
            || self
                .ipvs
                .iter()
                .any(|op| matches!(op, IpvsOp::DeleteService { .. }))
            || self
                .firewall
                .as_ref()
                .is_some_and(|op| matches!(op, FirewallOp::Remove))
    }
}

impl fmt::Display for Plan {
    /// One operation per line, as `apply --dry-run` prints it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.network {
            writeln!(f, "{step}")?;
        }
        for op in &self.ipvs {
            match op.note() {
                Some(note) => writeln!(f, "{op}  ({note})")?,
                None => writeln!(f, "{op}")?,
            }
        }
        if let Some(op) = &self.firewall {
            writeln!(f, "{op}")?;
        }
        Ok(())
    }
}

/// The steps that would bring the kernel's links, addresses, routes and our
/// policy routing `rules` to `config`. `previous` is the configuration applied
/// last time, whose addresses are handed back from interfaces the new one no
/// longer names.
pub async fn plan_network<B: NetworkBackend>(
    backend: &mut B,
    config: &NetworkConfig,
    previous: Option<&NetworkConfig>,
    rules: BTreeSet<MarkRule>,
) -> Result<Vec<Step>, ApplyError> {
    let observed = backend.observe().await?;
    let mut desired = network::desired(config, previous, &observed.state)?;
    desired.rules = rules;
    Ok(network::diff(&observed.state, &desired))
}

/// The change that would bring our nft table to the flows; `None` when the
/// table already is what the flows ask for. It needs no undo: nft sends it as
/// one transaction, and nothing of the apply runs after it.
pub async fn plan_firewall<B: FirewallBackend>(
    backend: &mut B,
    flows: &FlowsConfig,
    lvs: &LvsConfig,
) -> Result<Option<FirewallOp>, ApplyError> {
    let observed = backend.observe().await?;
    let desired = flows::render(flows, lvs);
    Ok(flows::diff(observed.as_ref(), desired.as_ref()))
}

/// The `lvs.conf` of `applied`, the configuration the last apply brought the
/// kernel to, when `next` changes it; `None` when it does not (a re-apply reads
/// the whole table) or when it no longer parses.
fn last_lvs(applied: &ConfigFiles, next: &ConfigFiles) -> Option<LvsConfig> {
    if applied.lvs == next.lvs {
        return None;
    }
    let (lvs, diagnostics) = config::parse::parse_lvs(&applied.lvs);
    let clean = diagnostics.iter().all(|d| d.severity != Severity::Error);
    clean.then_some(lvs)
}

/// The operations that would bring the IPVS table to `config` with the
/// operators' `overrides`, leaving the servers `health` reports down as the
/// health checker left them.
///
/// With `applied`, the configuration the last apply brought the kernel to,
/// only the services the change touches are read whole, after a check that
/// the kernel's services (keys and settings, one dump) are still those the
/// last apply left. The plan of a touched service is exact whatever happened
/// to it since; a hand change to the destinations of another one waits for
/// the next whole read. The whole table is read when there is no `applied`,
/// when the change touches nothing of `lvs.conf`, or when the check finds other
/// services.
pub async fn plan_ipvs<B: IpvsBackend>(
    backend: &mut B,
    config: &LvsConfig,
    applied: Option<&LvsConfig>,
    health: &[ServerReport],
    overrides: &Overrides,
) -> Result<Vec<IpvsOp>, ApplyError> {
    let wanted = with_reported_health(&ipvs::desired(config), config, health, overrides);
    if let Some(applied) = applied {
        let before = with_reported_health(&ipvs::desired(applied), applied, health, overrides);
        let touched = ipvs::touched(&before, &wanted);
        if !touched.is_empty() {
            let outline = backend.observe_outline(&touched).await?;
            if outline.agrees_with(&before) {
                return Ok(ipvs::diff(&outline.detail, &ipvs::only(&wanted, &touched)));
            }
            tracing::info!(
                "the IPVS services are not those the last apply left; reading the whole table"
            );
        }
    }
    let observed = backend.observe().await?;
    Ok(ipvs::diff(&observed.state, &wanted))
}

/// Executes `steps` in order; on the first failure, executes the inverses of the
/// steps already done in reverse order and reports what failed.
pub async fn execute_network<B: NetworkBackend>(
    backend: &mut B,
    steps: &[Step],
) -> Result<(), ApplyError> {
    for (index, step) in steps.iter().enumerate() {
        let Err(error) = backend.execute(&step.op).await else {
            continue;
        };
        tracing::warn!(%error, step = %step, "apply failed; undoing {index} step(s)");
        let undo_failures = undo_network(backend, &steps[..index]).await;
        return Err(verdict(error, index, undo_failures));
    }
    Ok(())
}

async fn undo_network<B: NetworkBackend>(backend: &mut B, done: &[Step]) -> Vec<KernelError> {
    let mut failures = Vec::new();
    for step in done.iter().rev() {
        if let Err(error) = backend.execute(&step.op.inverse()).await {
            failures.push(error);
        }
    }
    failures
}

/// Executes `ops` as one batch; if any is refused, undoes the ones that were
/// carried out (newest first, again as one batch).
pub async fn execute_ipvs<B: IpvsBackend>(
    backend: &mut B,
    ops: &[IpvsOp],
) -> Result<(), ApplyError> {
    match try_ipvs(backend, ops).await {
        Ok(()) => Ok(()),
        Err((error, undone, undo_failures)) => Err(verdict(error, undone, undo_failures)),
    }
}

/// The first refusal, how many operations were undone, and what failed to undo.
type IpvsFailure = (KernelError, usize, Vec<KernelError>);

async fn try_ipvs<B: IpvsBackend>(backend: &mut B, ops: &[IpvsOp]) -> Result<(), IpvsFailure> {
    let results = backend.execute(ops).await;
    let mut first_error = None;
    let mut undo = Vec::new();
    for (op, result) in ops.iter().zip(results) {
        match result {
            Ok(()) => undo.push(op.inverse()),
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    let Some(error) = first_error else {
        return Ok(());
    };
    tracing::warn!(%error, "IPVS apply failed; undoing {} operation(s)", undo.len());
    undo.reverse();
    let undo_failures = backend
        .execute(&undo)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    Err((error, undo.len(), undo_failures))
}

/// Executes the whole plan: the network, then IPVS, then the nft table. If a
/// later part is refused, the parts before it are undone, newest first.
/// `ipvs` and `firewall` may be `None` only when the plan has nothing for them.
async fn execute_parts<N: NetworkBackend, I: IpvsBackend, F: FirewallBackend>(
    network: &mut N,
    mut ipvs: Option<&mut I>,
    firewall: Option<&mut F>,
    plan: &Plan,
) -> Result<(), ApplyError> {
    execute_network(network, &plan.network).await?;
    if let Some(ipvs) = ipvs.as_deref_mut()
        && !plan.ipvs.is_empty()
        && let Err((error, undone, mut undo_failures)) = try_ipvs(ipvs, &plan.ipvs).await
    {
        undo_failures.extend(undo_network(network, &plan.network).await);
        return Err(verdict(error, undone + plan.network.len(), undo_failures));
    }
    let (Some(op), Some(firewall)) = (&plan.firewall, firewall) else {
        return Ok(());
    };
    let Err(error) = firewall.execute(op).await else {
        return Ok(());
    };
    // nft's batch is one transaction: the old table is still in place.
    tracing::warn!(%error, "nft refused the flows; undoing the rest of the apply");
    let mut undo_failures = Vec::new();
    let mut undone = plan.network.len();
    if let Some(ipvs) = ipvs {
        let undo: Vec<IpvsOp> = plan.ipvs.iter().rev().map(IpvsOp::inverse).collect();
        undone += undo.len();
        undo_failures.extend(
            ipvs.execute(&undo)
                .await
                .into_iter()
                .filter_map(Result::err),
        );
    }
    undo_failures.extend(undo_network(network, &plan.network).await);
    Err(verdict(error, undone, undo_failures))
}

fn verdict(error: KernelError, undone: usize, undo_failures: Vec<KernelError>) -> ApplyError {
    if undo_failures.is_empty() {
        ApplyError::RolledBack { error, undone }
    } else {
        ApplyError::UndoFailed {
            error,
            undo_failures,
        }
    }
}
