//! Confirm-or-rollback: an apply that the administrator must confirm within a
//! timeout, or the previous running configuration comes back — also when the
//! session that applied is gone.
//!
//! Before the kernel is touched, the apply is recorded as pending
//! (`STATE_DIR/pending/`, with what ran before) and a guard process is started in a
//! session of its own (`lbconsole guard`), so neither SIGHUP from a dropped SSH
//! connection nor a kill of the applying process reaches it. The guard waits for
//! the deadline; `lbconsole confirm` removes the record and the guard exits. At the
//! deadline the guard applies the previous configuration through
//! [`apply::apply`], like any apply. Should the guard itself die, `status`,
//! `apply` and the daemon find the expired record whose guard lock nobody holds and
//! roll back in its place.

use std::io::{BufRead, BufReader};

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::apply::{self, ApplyError, Plan, Progress, Target, TearDown};
use crate::events::{self, Event, EventKind};
use crate::health::publish::{HealthSource, ServerReport};
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend};
use crate::plan::overrides::Overrides;
use crate::store::archive::ArchiveFiles;
use crate::store::overrides;
use crate::store::pending::now_ms;
use crate::store::versions::{RollbackRecord, RunningRecord, current_user, now, rfc3339};
use crate::store::{ConfigFiles, Locked, PendingApply, Store, StoreError, plural};

/// How often the guard looks whether its apply was confirmed.
const POLL: Duration = Duration::from_millis(200);
/// How long the guard waits before trying a failed rollback again.
const RETRY: Duration = Duration::from_secs(10);
/// How long `apply` waits for the guard to say it is on watch.
const GUARD_START: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(
        "an apply by {user} at {applied_at} is waiting for confirmation ({left}); run `lbconsole confirm` or wait for the rollback"
    )]
    Pending {
        user: String,
        applied_at: String,
        left: String,
    },
    #[error("no apply is waiting for confirmation{}", last_rollback.as_ref().map(|r| format!(" (the apply by {} at {} was rolled back at {}: {})", r.applied_by, r.applied_at, r.time, r.outcome)).unwrap_or_default())]
    NothingPending {
        last_rollback: Option<RollbackRecord>,
    },
    #[error(
        "too late: the apply by {user} at {applied_at} passed its deadline {seconds} s ago and is being rolled back"
    )]
    TooLate {
        user: String,
        applied_at: String,
        seconds: u64,
    },
    #[error("cannot start the confirm guard: {0}; nothing was applied")]
    Guard(String),
}

fn left(pending: &PendingApply) -> String {
    if pending.expired() {
        "its deadline has passed".to_owned()
    } else {
        format!("{} s left", pending.seconds_left())
    }
}

/// What one apply is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ApplyRequest {
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Apply even a configuration that takes away everything lbconsole runs
    /// (`--yes`).
    pub tear_down: TearDown,
    /// Seconds to wait for `lbconsole confirm`; `None` applies without a guard.
    pub confirm_timeout: Option<u64>,
    /// Refuse unless the saved version is this one.
    pub expect_version: Option<u64>,
    /// Apply these files (the console's edited buffers, saved or not) instead
    /// of the saved configuration.
    pub files: Option<ConfigFiles>,
    /// Where to learn which servers the health checker keeps out.
    pub health: HealthSource,
}

/// What an apply did.
#[derive(Debug, Clone)]
pub struct Applied {
    pub plan: Plan,
    /// The saved version that was applied.
    pub version: u64,
    /// The apply waiting for confirmation; `None` without a timeout, on a dry run,
    /// or when nothing changed.
    pub pending: Option<PendingApply>,
}

/// `lbconsole apply` and the console's Apply: the saved configuration (a hand edit
/// of the config dir recorded first) to the kernel, guarded when a confirm timeout
/// is given. Refused while another apply waits for confirmation; one whose guard
/// died and whose deadline passed is rolled back first.
pub async fn apply<N: NetworkBackend, I: IpvsBackend, W: FirewallBackend>(
    store: &Store,
    request: &ApplyRequest,
    kernel: &mut Kernel<N, I, W>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Applied, ConfirmError> {
    let health = request.health.reports(store.state_dir());
    if request.dry_run {
        let files = match &request.files {
            Some(files) => files.clone(),
            None => store.peek()?,
        };
        let running = store.running()?;
        let overrides = overrides::read(store.state_dir())?;
        let target = Target {
            files: &files,
            hand_back: running.as_ref(),
            health: &health,
            overrides: &overrides,
        };
        let plan = apply::plan(kernel, target, progress).await?;
        return Ok(Applied {
            plan,
            version: store.latest()?,
            pending: None,
        });
    }
    let locked = store.lock()?;
    match PendingApply::read(store.state_dir())? {
        Some(pending) if pending.expired() && !PendingApply::guard_alive(store.state_dir())? => {
            tracing::warn!(applied_at = %pending.applied_at, "rolling back an unconfirmed apply whose guard is gone");
            roll_back(store, &locked, &pending, kernel, &health).await??;
        }
        Some(pending) => {
            return Err(ConfirmError::Pending {
                left: left(&pending),
                user: pending.user,
                applied_at: pending.applied_at,
            });
        }
        None => {}
    }
    let mut saved = store.sync_locked(&locked)?;
    store.check_expected(&saved, request.expect_version)?;
    if let Some(files) = request
        .files
        .as_ref()
        .filter(|&files| *files != saved.files)
    {
        // Edits not saved yet: what runs is no saved version.
        saved.files = files.clone();
        saved.version = 0;
    }
    let running = store.running()?;
    let overrides = overrides::read(store.state_dir())?;
    let target = Target {
        files: &saved.files,
        hand_back: running.as_ref(),
        health: &health,
        overrides: &overrides,
    };
    let plan = apply::plan(kernel, target, progress).await?;
    // What is refused before any change needs no guard, nor does a plan that
    // changes nothing: there would be nothing to roll back.
    apply::permit(&kernel.network, &plan, request.tear_down)?;
    let pending = match request.confirm_timeout {
        Some(timeout) if !plan.is_empty() => Some(start_guard(
            store,
            &locked,
            &saved.files,
            running.as_ref(),
            saved.version,
            timeout,
        )?),
        _ => None,
    };
    let result = apply::execute_and_record(
        kernel,
        &plan,
        request.tear_down,
        &saved.files,
        store.state_dir(),
    )
    .await;
    // The kernel part-way (the undo failed): the guard is to bring back what ran.
    let keep_pending = matches!(&result, Ok(()) | Err(ApplyError::UndoFailed { .. }));
    if pending.is_some() && !keep_pending {
        PendingApply::remove(&locked, store.state_dir())?;
    }
    record_apply(
        store,
        &plan,
        saved.version,
        pending.as_ref().filter(|_| keep_pending),
        &result,
    );
    result?;
    drop_overrides(store, &locked, &overrides, &plan)?;
    let mut state = store.state()?;
    state.running = Some(RunningRecord {
        version: (saved.version > 0).then_some(saved.version),
        time: now(),
        user: current_user(),
    });
    store.write_state(&locked, &state)?;
    Ok(Applied {
        plan,
        version: saved.version,
        pending: pending.filter(|_| keep_pending),
    })
}

/// Records in the event log what an apply that reached the kernel did: its
/// changes, or its failure and whether it was undone.
fn record_apply(
    store: &Store,
    plan: &Plan,
    version: u64,
    pending: Option<&PendingApply>,
    result: &Result<(), ApplyError>,
) {
    let what = match version {
        0 => "the edited files (not saved)".to_owned(),
        n => format!("version {n}"),
    };
    let text = match result {
        Ok(()) if plan.is_empty() => return,
        Ok(()) => format!(
            "applied {what}: {}{}",
            plural(plan.len(), "change"),
            pending
                .map(|p| format!("; to be confirmed within {} s", p.timeout_seconds))
                .unwrap_or_default()
        ),
        Err(error @ ApplyError::UndoFailed { .. }) => {
            format!("applying {what} failed and undoing it failed too: {error}")
        }
        // The kernel changed; what runs could not be written down.
        Err(error @ ApplyError::Store(_)) => {
            format!("applied {what}, but recording it failed: {error}")
        }
        Err(error) => format!("applying {what} failed and was undone: {error}"),
    };
    events::record(
        store.state_dir(),
        &Event::new(EventKind::Apply, text).by(current_user()),
    );
}

/// Removes the overrides of servers the configuration `plan` applied no longer
/// has, saying so in the log.
fn drop_overrides(
    store: &Store,
    locked: &Locked,
    overrides: &Overrides,
    plan: &apply::Plan,
) -> Result<(), StoreError> {
    if plan.dropped_overrides.is_empty() {
        return Ok(());
    }
    for (note, dropped) in plan.dropped_notes().zip(&plan.dropped_overrides) {
        tracing::warn!("{note}");
        events::record(
            store.state_dir(),
            &Event::new(EventKind::Override, note).server(&dropped.director, &dropped.server),
        );
    }
    let kept = Overrides {
        version: overrides.version,
        servers: plan.overrides.clone(),
    };
    overrides::write(store, locked, &kept)?;
    Ok(())
}

/// Records the pending apply and starts its guard, which is on watch when this
/// returns.
fn start_guard(
    store: &Store,
    locked: &Locked,
    files: &ConfigFiles,
    running: Option<&ConfigFiles>,
    version: u64,
    timeout: u64,
) -> Result<PendingApply, ConfirmError> {
    let start = now_ms();
    let pending = PendingApply {
        id: format!("{start}-{}", std::process::id()),
        user: current_user(),
        applied_at: rfc3339((start / 1000) as i64),
        timeout_seconds: timeout,
        deadline_ms: deadline_ms(start, timeout),
        version: (version > 0).then_some(version),
        rollback_error: None,
        previous: running.map(ArchiveFiles::from_files),
        applied: ArchiveFiles::from_files(files),
    };
    pending.create(locked, store.state_dir())?;
    if let Err(error) = spawn_guard(store, &pending.id) {
        PendingApply::remove(locked, store.state_dir())?;
        return Err(ConfirmError::Guard(error));
    }
    Ok(pending)
}

/// The deadline of an apply started at `start_ms` with `timeout_seconds` to
/// confirm. Saturating: a timeout too large to add is the farthest deadline, never
/// one that wraps into the past and rolls the apply back at once.
fn deadline_ms(start_ms: u64, timeout_seconds: u64) -> u64 {
    start_ms.saturating_add(timeout_seconds.saturating_mul(1000))
}

/// Starts `lbconsole guard` detached: a new session (setsid), no terminal,
/// stdin and stdout from /dev/null once it has said `ready`, stderr to
/// `STATE_DIR/guard.log`.
fn spawn_guard(store: &Store, id: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find lbconsole itself: {e}"))?;
    let log_path = store.state_dir().join("guard.log");
    let log =
        open_log(&log_path).map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
    let mut command = Command::new(&exe);
    command
        .arg("--config-dir")
        .arg(store.config_dir())
        .arg("--state-dir")
        .arg(store.state_dir())
        .args(["guard", "--id", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    crate::sys::new_session_on_exec(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("no pipe from the guard")?;
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = sender.send(line);
        // Reap the guard when it ends, should this process outlive it (the console).
        let _ = child.wait();
    });
    match receiver.recv_timeout(GUARD_START) {
        Ok(line) if line.trim() == "ready" => Ok(()),
        Ok(_) => Err(format!(
            "it exited before it was on watch (see {})",
            log_path.display()
        )),
        Err(_) => Err(format!(
            "it did not report within {} s",
            GUARD_START.as_secs()
        )),
    }
}

/// The guard's log, appended to: 0640 whatever the umask (it names users and
/// addresses), never through a symbolic link, and only a regular file.
fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::store::atomic::FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let metadata = log.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other(format!(
            "it is {}, not a regular file",
            crate::store::atomic::special_kind(metadata.file_type())
        )));
    }
    if metadata.permissions().mode() & 0o7777 != crate::store::atomic::FILE_MODE {
        log.set_permissions(std::fs::Permissions::from_mode(
            crate::store::atomic::FILE_MODE,
        ))?;
    }
    Ok(log)
}

/// `lbconsole confirm`: keeps the pending apply. Refused after the deadline,
/// unless rolling back has failed (then confirming is the way to keep what runs).
pub fn confirm(store: &Store) -> Result<PendingApply, ConfirmError> {
    let locked = store.lock()?;
    let Some(pending) = PendingApply::read(store.state_dir())? else {
        return Err(ConfirmError::NothingPending {
            last_rollback: store.state()?.last_rollback,
        });
    };
    if pending.expired() && pending.rollback_error.is_none() {
        return Err(ConfirmError::TooLate {
            seconds: now_ms().saturating_sub(pending.deadline_ms) / 1000,
            user: pending.user,
            applied_at: pending.applied_at,
        });
    }
    PendingApply::remove(&locked, store.state_dir())?;
    tracing::info!(applied_at = %pending.applied_at, "apply confirmed");
    events::record(
        store.state_dir(),
        &Event::new(
            EventKind::Confirm,
            format!(
                "confirmed the apply by {} at {}",
                pending.user, pending.applied_at
            ),
        )
        .by(current_user()),
    );
    Ok(pending)
}

/// What a guard found when it stopped waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// Confirmed, or replaced by another apply: nothing to do.
    Done,
    /// The deadline passed unconfirmed: roll back.
    Expired,
}

/// The guard's start: takes the pending apply's guard lock (held until the
/// process exits) and checks that `id` is the pending apply. `None` when there is
/// nothing to guard (confirmed already, or another guard holds it).
pub fn take_watch(store: &Store, id: &str) -> Result<Option<crate::store::lock::Lock>, StoreError> {
    let Some(pending) = PendingApply::read(store.state_dir())? else {
        return Ok(None);
    };
    if pending.id != id {
        return Ok(None);
    }
    PendingApply::lock_guard(store.state_dir())
}

/// Waits until the pending apply `id` is confirmed (or replaced) or its deadline
/// passes.
pub fn watch(store: &Store, id: &str) -> Result<Watch, StoreError> {
    loop {
        match PendingApply::read(store.state_dir())? {
            Some(pending) if pending.id == id => {
                if pending.expired() {
                    return Ok(Watch::Expired);
                }
                std::thread::sleep(POLL.min(Duration::from_millis(pending.remaining_ms())));
            }
            _ => return Ok(Watch::Done),
        }
    }
}

/// Rolls back the pending apply `id` if it is still pending: the guard's work at
/// the deadline. Returns whether it is settled (rolled back, or confirmed in the
/// meantime); `false` when rolling back failed and should be tried again (the
/// error is logged and kept in the record for `status`).
pub async fn roll_back_expired<N: NetworkBackend, I: IpvsBackend, W: FirewallBackend>(
    store: &Store,
    id: &str,
    kernel: &mut Kernel<N, I, W>,
) -> Result<bool, StoreError> {
    let locked = store.lock()?;
    match PendingApply::read(store.state_dir())? {
        Some(pending) if pending.id == id => {
            let health = HealthSource::Daemon.reports(store.state_dir());
            let outcome = roll_back(store, &locked, &pending, kernel, &health).await?;
            Ok(outcome.is_ok())
        }
        _ => Ok(true),
    }
}

/// The guard: waits, and rolls back at the deadline, trying again every
/// [`RETRY`] while rolling back fails and nobody confirms. `connect` makes the
/// kernel backends for each attempt.
pub async fn guard<N, I, W, F, Fut>(
    store: &Store,
    id: &str,
    mut connect: F,
) -> Result<(), StoreError>
where
    N: NetworkBackend,
    I: IpvsBackend,
    W: FirewallBackend,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Kernel<N, I, W>, KernelError>>,
{
    loop {
        if watch(store, id)? == Watch::Done {
            tracing::info!(id, "confirmed; the guard exits");
            return Ok(());
        }
        let settled = match connect().await {
            Ok(mut kernel) => roll_back_expired(store, id, &mut kernel).await?,
            Err(error) => {
                tracing::error!(%error, "cannot reach the kernel to roll back");
                false
            }
        };
        if settled {
            return Ok(());
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// `lbconsole guard`: takes the watch over the pending apply `id`, tells the
/// process that started it (on stdout) that it is on watch, lets go of stdout,
/// and guards it ([`guard`]) over the real kernel. Ignores SIGHUP, which the
/// applying session's end would send.
pub async fn stand_guard(store: &Store, id: &str) -> Result<(), StoreError> {
    crate::sys::ignore_hangup();
    let Some(_watch) = take_watch(store, id)? else {
        tracing::info!(
            id,
            "nothing to guard: confirmed already, or guarded by another"
        );
        return Ok(());
    };
    tracing::info!(id, "on watch");
    // Not a message for a person: the line `spawn_guard` waits for.
    println!("ready");
    // The applying process reads one line and may be gone soon after: stdout is
    // pointed at /dev/null so that no later write can fail on a broken pipe.
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = crate::sys::redirect_stdout(&null);
    }
    guard(store, id, crate::kernel::RealKernel::connect).await
}

/// `status`, `apply` and the daemon: rolls back a pending apply whose deadline has
/// passed and whose guard is gone. Returns the pending apply still waiting, if any.
pub async fn roll_back_abandoned<N: NetworkBackend, I: IpvsBackend, W: FirewallBackend>(
    store: &Store,
    kernel: &mut Kernel<N, I, W>,
    health: &HealthSource,
) -> Result<Option<PendingApply>, StoreError> {
    let Some(pending) = PendingApply::read(store.state_dir())? else {
        return Ok(None);
    };
    if !pending.expired() || PendingApply::guard_alive(store.state_dir())? {
        return Ok(Some(pending));
    }
    let locked = store.lock()?;
    // Read again under the lock: a guard or another process may have been quicker.
    match PendingApply::read(store.state_dir())? {
        Some(pending) if pending.expired() && !PendingApply::guard_alive(store.state_dir())? => {
            tracing::warn!(applied_at = %pending.applied_at, "rolling back an unconfirmed apply whose guard is gone");
            let health = health.reports(store.state_dir());
            let outcome = roll_back(store, &locked, &pending, kernel, &health).await?;
            Ok(outcome.err().map(|_| pending))
        }
        other => Ok(other),
    }
}

/// Applies what ran before `pending` (nothing, if nothing had been applied),
/// handing back what `pending` applied, and records the outcome.
async fn roll_back<N: NetworkBackend, I: IpvsBackend, W: FirewallBackend>(
    store: &Store,
    locked: &Locked,
    pending: &PendingApply,
    kernel: &mut Kernel<N, I, W>,
    health: &[ServerReport],
) -> Result<Result<(), ApplyError>, StoreError> {
    let previous = pending.previous_files().unwrap_or_default();
    let applied = pending.applied_files();
    let overrides = overrides::read(store.state_dir())?;
    let target = Target {
        files: &previous,
        hand_back: Some(&applied),
        health,
        overrides: &overrides,
    };
    let result = apply::apply(
        kernel,
        target,
        // What ran before comes back, even when that was nothing.
        TearDown::Allow,
        store.state_dir(),
        &mut |progress| {
            if let Progress::Planned(plan) = progress {
                tracing::info!(changes = plan.len(), "rolling back:\n{plan}");
            }
        },
    )
    .await;
    let mut state = store.state()?;
    let outcome = match &result {
        Ok(_) => "restored the previous configuration".to_owned(),
        Err(error) => format!("rollback failed: {error}"),
    };
    events::record(
        store.state_dir(),
        &Event::new(
            EventKind::Rollback,
            format!(
                "the apply by {} at {} was not confirmed: {outcome}",
                pending.user, pending.applied_at
            ),
        ),
    );
    state.last_rollback = Some(RollbackRecord {
        time: now(),
        applied_by: pending.user.clone(),
        applied_at: pending.applied_at.clone(),
        outcome: outcome.clone(),
    });
    match result {
        Ok(plan) => {
            tracing::warn!(applied_at = %pending.applied_at, user = %pending.user, "unconfirmed apply rolled back; the overrides stay as they are");
            drop_overrides(store, locked, &overrides, &plan)?;
            PendingApply::remove(locked, store.state_dir())?;
            state.running = Some(RunningRecord {
                version: None,
                time: now(),
                user: format!("rollback of the apply by {}", pending.user),
            });
            store.write_state(locked, &state)?;
            Ok(Ok(()))
        }
        Err(error) => {
            tracing::error!(%error, "rolling back the unconfirmed apply failed");
            let mut failed = pending.clone();
            failed.rollback_error = Some(error.to_string());
            failed.update(locked, store.state_dir())?;
            store.write_state(locked, &state)?;
            Ok(Err(error))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_start_plus_the_timeout() {
        assert_eq!(deadline_ms(1_700_000_000_000, 60), 1_700_000_060_000);
    }

    #[test]
    fn a_timeout_too_large_to_add_gives_the_farthest_deadline_not_a_past_one() {
        let start = 1_700_000_000_000;
        assert_eq!(deadline_ms(start, u64::MAX), u64::MAX);
        assert_eq!(deadline_ms(start, u64::MAX / 1000), u64::MAX);
        assert_eq!(deadline_ms(u64::MAX, 10), u64::MAX);
    }
}
