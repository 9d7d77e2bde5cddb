//! keepalived under `lbconsole daemon`: started when the running
//! `network.conf` has `vrrp` lines, given a new configuration with SIGHUP,
//! restarted (after a growing pause) when it dies, stopped with SIGTERM when
//! the daemon ends, and told to stop by the kernel (PR_SET_PDEATHSIG) when the
//! daemon is killed outright. What keepalived reports on its notify fifo
//! becomes `STATE_DIR/vrrp/status.toml`.
//!
//! Every file lives in `STATE_DIR/vrrp/`, so two appliances (two state dirs,
//! two network namespaces) can run side by side on one machine.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::net::unix::pipe;
use tokio::process::{Child, Command};

use crate::config::model::network::NetworkConfig;
use crate::events::{self, Event, EventKind};
use crate::health::publish::ServerReport;
use crate::health::state::Health;
use crate::store::atomic;
use crate::sys::{self, Signal};

use super::keepalived::{self, Files, Instance, Notice};
use super::status::{self, InstanceStatus, Keepalived, VrrpState, VrrpStatus};

const CONFIG: &str = "keepalived.conf";
const PID: &str = "keepalived.pid";
const VRRP_PID: &str = "vrrp.pid";
const NOTIFY_FIFO: &str = "notify.fifo";
const HEALTH: &str = "health";

/// Where Debian installs it, for a daemon started with a PATH without sbin.
const SBIN: &str = "/usr/sbin/keepalived";

/// What `status` says when keepalived is not installed.
const INSTALL: &str = "install keepalived (the Debian package): VRRP does not run without it";

/// How long keepalived has to remove its addresses and leave after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The pause before the first restart, doubled after each quick death.
const FIRST_RESTART: Duration = Duration::from_secs(1);
const LONGEST_RESTART: Duration = Duration::from_secs(60);
/// A keepalived that ran this long before dying is restarted at once again.
const STEADY: Duration = Duration::from_secs(60);

/// keepalived's process and what it reported.
pub struct Supervisor {
    state_dir: PathBuf,
    dir: PathBuf,
    /// The generated configuration keepalived runs or will run; `None` when
    /// the running `network.conf` has no instance.
    config: Option<String>,
    tracks_health: bool,
    child: Option<Running>,
    /// When to start keepalived again, after it died or could not start.
    restart_at: Option<Instant>,
    restart_pause: Duration,
    notices: Option<Lines<BufReader<pipe::Receiver>>>,
    /// The last value written to the health file.
    healthy: Option<bool>,
    status: VrrpStatus,
    told_missing: bool,
}

struct Running {
    child: Child,
    pid: u32,
    since: Instant,
}

impl Supervisor {
    /// A supervisor of `state_dir`'s keepalived, with none running: one that a
    /// killed daemon left behind is stopped first.
    pub async fn new(state_dir: &Path) -> Self {
        let dir = state_dir.join(status::DIR);
        for pid_file in [PID, VRRP_PID] {
            stop_stale(&dir.join(pid_file), &dir.join(CONFIG)).await;
        }
        Self {
            state_dir: state_dir.to_owned(),
            dir,
            config: None,
            tracks_health: false,
            child: None,
            restart_at: None,
            restart_pause: FIRST_RESTART,
            notices: None,
            healthy: None,
            status: VrrpStatus::default(),
            told_missing: false,
        }
    }

    /// Runs what `network` asks for: keepalived stops when it has no
    /// instance, starts when it has some, and reloads when its generated
    /// configuration changed.
    pub async fn follow(&mut self, network: &NetworkConfig) {
        let instances = keepalived::instances(network);
        if instances.is_empty() {
            self.stop().await;
            self.config = None;
            self.status = VrrpStatus::default();
            if let Err(error) = status::remove(&self.state_dir) {
                tracing::error!(
                    "vrrp: cannot remove {}: {error}",
                    status::path(&self.state_dir).display()
                );
            }
            return;
        }
        let service = network.vrrp.clone().unwrap_or_default();
        self.tracks_health = service.tracks_health();
        self.status.peers = service.peers.iter().map(|peer| peer.value).collect();
        self.status.healthy = self.healthy.filter(|_| self.tracks_health);
        self.status.instances = merge(&self.status.instances, &instances);
        let config = match self.generate(network) {
            Ok(config) => config,
            Err(reason) => {
                tracing::error!("vrrp: {reason}");
                self.stop().await;
                self.config = None;
                self.status.keepalived = Keepalived::Down { reason };
                self.publish();
                return;
            }
        };
        if self.config.as_ref() == Some(&config) {
            self.publish();
            return;
        }
        if let Err(error) = atomic::write_file(
            &self.dir.join(CONFIG),
            config.as_bytes(),
            atomic::Scratch::Unrecorded,
        ) {
            tracing::error!(
                "vrrp: cannot write {}: {error}",
                self.dir.join(CONFIG).display()
            );
            self.publish();
            return;
        }
        self.config = Some(config);
        match &self.child {
            Some(running) => {
                tracing::info!("vrrp: network.conf changed, keepalived reloads its configuration");
                if let Err(error) = sys::send_signal(running.pid, Signal::Hangup) {
                    tracing::error!("vrrp: cannot reload keepalived: {error}");
                }
            }
            None => {
                self.restart_at = Some(Instant::now());
                self.restart_pause = FIRST_RESTART;
            }
        }
        self.tick(None).await;
    }

    /// The files keepalived needs, and its configuration.
    fn generate(&mut self, network: &NetworkConfig) -> Result<String, String> {
        atomic::create_dir_all(&self.dir)
            .map_err(|error| format!("cannot create {}: {error}", self.dir.display()))?;
        if self.tracks_health && self.healthy.is_none() {
            // Every server counts as up until the checker says otherwise.
            self.write_health(true);
        }
        let (fifo, health) = (self.dir.join(NOTIFY_FIFO), self.dir.join(HEALTH));
        let (Some(notify_fifo), Some(health)) = (fifo.to_str(), health.to_str()) else {
            return Err(format!("{} is not UTF-8", self.dir.display()));
        };
        keepalived::generate(
            network,
            Files {
                notify_fifo,
                health,
            },
        )
        .map_err(|e| e.to_string())
    }

    /// Whether the running configuration has `track-health on`: the daemon
    /// then gives [`Self::tick`] the servers' health.
    pub fn tracks_health(&self) -> bool {
        self.config.is_some() && self.tracks_health
    }

    /// Once a second: notices a dead keepalived, starts it when due, and with
    /// `track-health on` writes `healthy` (`None`: not known) to the file
    /// keepalived tracks.
    pub async fn tick(&mut self, healthy: Option<bool>) {
        if self.config.is_none() {
            return;
        }
        if let Some(healthy) = healthy.filter(|_| self.tracks_health) {
            if self.healthy != Some(healthy) {
                self.write_health(healthy);
            }
            // Apart from the file: starting keepalived writes it (every server
            // counts as up) before the checker has said anything.
            if self.status.healthy != Some(healthy) {
                self.status.healthy = Some(healthy);
                self.publish();
            }
        }
        if let Some(running) = &mut self.child {
            match running.child.try_wait() {
                Ok(None) => return,
                Ok(Some(exit)) => {
                    let ran = running.since.elapsed();
                    self.child = None;
                    self.died(exit, ran);
                }
                Err(error) => {
                    tracing::error!("vrrp: cannot tell whether keepalived runs: {error}");
                    return;
                }
            }
        }
        if self.restart_at.is_some_and(|at| at <= Instant::now()) {
            self.start();
        }
    }

    fn died(&mut self, exit: ExitStatus, ran: Duration) {
        if ran >= STEADY {
            self.restart_pause = FIRST_RESTART;
        }
        let reason = format!(
            "keepalived exited ({exit}); restarting it in {} s",
            self.restart_pause.as_secs()
        );
        tracing::error!("vrrp: {reason}");
        self.schedule_restart();
        self.status.keepalived = Keepalived::Down { reason };
        self.set_all(VrrpState::Stop);
        self.publish();
    }

    fn schedule_restart(&mut self) {
        self.restart_at = Some(Instant::now() + self.restart_pause);
        self.restart_pause = (self.restart_pause * 2).min(LONGEST_RESTART);
    }

    fn start(&mut self) {
        self.restart_at = None;
        if self.notices.is_none() {
            match open_fifo(&self.dir.join(NOTIFY_FIFO)) {
                Ok(reader) => self.notices = Some(reader),
                Err(error) => tracing::error!(
                    "vrrp: cannot read {}: {error}; states are not known",
                    self.dir.join(NOTIFY_FIFO).display()
                ),
            }
        }
        let path = |name| self.dir.join(name);
        let mut command = Command::new(binary());
        command
            .arg("--vrrp")
            .arg("--dont-fork")
            .arg("--log-console")
            .arg("--no-syslog")
            .arg("--use-file")
            .arg(path(CONFIG))
            .arg("--pid")
            .arg(path(PID))
            .arg("--vrrp_pid")
            .arg(path(VRRP_PID))
            .stdin(Stdio::null());
        // keepalived's own children stop when it does; this makes it stop
        // when the daemon is killed, so that no keepalived runs unsupervised.
        sys::terminate_with_parent_on_exec(command.as_std_mut());
        match command.spawn() {
            Ok(child) => {
                let pid = child.id().unwrap_or_default();
                tracing::info!("vrrp: keepalived started (pid {pid})");
                self.told_missing = false;
                self.child = Some(Running {
                    child,
                    pid,
                    since: Instant::now(),
                });
                self.status.keepalived = Keepalived::Running { pid };
                self.set_all(VrrpState::Init);
            }
            Err(error) => {
                let reason = if error.kind() == io::ErrorKind::NotFound {
                    INSTALL.to_owned()
                } else {
                    format!("keepalived cannot start: {error}")
                };
                if !self.told_missing {
                    tracing::error!("vrrp: {reason}");
                }
                self.told_missing = error.kind() == io::ErrorKind::NotFound;
                self.schedule_restart();
                self.status.keepalived = Keepalived::Down { reason };
            }
        }
        self.publish();
    }

    /// The next line keepalived writes on its notify fifo about an instance;
    /// never, while there is no fifo to read. Cancel-safe.
    pub async fn next_notice(&mut self) -> Notice {
        loop {
            let Some(lines) = &mut self.notices else {
                return std::future::pending().await;
            };
            match lines.next_line().await {
                Ok(Some(line)) => {
                    if let Some(notice) = keepalived::parse_notice(&line) {
                        return notice;
                    }
                }
                // Read and written here, the fifo has no end.
                Ok(None) => self.notices = None,
                Err(error) => {
                    tracing::error!("vrrp: reading the notify fifo: {error}");
                    // The next start opens it again.
                    self.notices = None;
                }
            }
        }
    }

    /// Records what keepalived reported, and logs a change of state.
    pub fn handle(&mut self, notice: Notice) {
        let Some(instance) = self
            .status
            .instances
            .iter_mut()
            .find(|instance| instance.name == notice.instance)
        else {
            return;
        };
        let state = notice.state.unwrap_or(instance.state);
        if instance.state == state && instance.priority == notice.priority {
            return;
        }
        if instance.state != state {
            tracing::info!(
                "vrrp {}: {} -> {} (prio {})",
                instance.name,
                instance.state.name(),
                state.name(),
                notice.priority
            );
            instance.since = now();
            events::record(
                &self.state_dir,
                &Event::new(
                    EventKind::Vrrp,
                    format!(
                        "vrrp instance {} on {}: {} -> {} (priority {})",
                        instance.name,
                        instance.interface,
                        instance.state.name(),
                        state.name(),
                        notice.priority
                    ),
                ),
            );
        } else {
            tracing::info!(
                "vrrp {}: {}, prio {} -> {}",
                instance.name,
                instance.state.name(),
                instance.priority,
                notice.priority
            );
        }
        instance.state = state;
        instance.priority = notice.priority;
        self.publish();
    }

    /// Stops keepalived, which removes its addresses as it leaves: SIGTERM,
    /// then SIGKILL when it does not go in time.
    pub async fn stop(&mut self) {
        self.restart_at = None;
        let Some(mut running) = self.child.take() else {
            return;
        };
        tracing::info!("vrrp: stopping keepalived (pid {})", running.pid);
        if let Err(error) = sys::send_signal(running.pid, Signal::Terminate) {
            tracing::error!("vrrp: cannot stop keepalived: {error}");
        }
        match tokio::time::timeout(STOP_TIMEOUT, running.child.wait()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!("vrrp: waiting for keepalived: {error}"),
            Err(_) => {
                tracing::error!(
                    "vrrp: keepalived did not stop within {} s; killing it",
                    STOP_TIMEOUT.as_secs()
                );
                let _ = running.child.kill().await;
            }
        }
        self.status.keepalived = Keepalived::Down {
            reason: "stopped by the daemon".to_owned(),
        };
        self.set_all(VrrpState::Stop);
        self.publish();
    }

    fn set_all(&mut self, state: VrrpState) {
        let since = now();
        for instance in &mut self.status.instances {
            if instance.state != state {
                instance.state = state;
                instance.priority = instance.configured_priority;
                instance.since = since;
            }
        }
    }

    fn write_health(&mut self, healthy: bool) {
        let path = self.dir.join(HEALTH);
        let value: &[u8] = if healthy { b"0\n" } else { b"1\n" };
        match atomic::write_file(&path, value, atomic::Scratch::Unrecorded) {
            Ok(()) => {
                if self.healthy.is_some() {
                    match healthy {
                        true => tracing::info!(
                            "vrrp: every director has a server up again; the priority is restored"
                        ),
                        false => tracing::warn!(
                            "vrrp: a director has no server up; the priority drops below the peer's"
                        ),
                    }
                }
                self.healthy = Some(healthy);
            }
            Err(error) => tracing::error!("vrrp: cannot write {}: {error}", path.display()),
        }
    }

    fn publish(&self) {
        if let Err(error) = status::write(&self.state_dir, &self.status) {
            tracing::error!(
                "vrrp: cannot write {}: {error}",
                status::path(&self.state_dir).display()
            );
        }
    }
}

/// With `track-health on`: whether every director in the health checker's
/// report has a real server up (a sorry server does not count: the peer may
/// still reach real ones).
pub fn every_director_up(reports: &[ServerReport]) -> bool {
    let up: HashSet<&str> = reports
        .iter()
        .filter(|report| !report.sorry && report.health == Health::Up)
        .map(|report| report.director.as_str())
        .collect();
    reports
        .iter()
        .all(|report| up.contains(report.director.as_str()))
}

/// The instances of `wanted`, keeping what was known of those that ran
/// already (same name and router id).
fn merge(known: &[InstanceStatus], wanted: &[Instance]) -> Vec<InstanceStatus> {
    wanted
        .iter()
        .map(|instance| {
            let before = known
                .iter()
                .find(|k| k.name == instance.name && k.vrid == instance.vrid);
            InstanceStatus {
                name: instance.name.clone(),
                interface: instance.interface.clone(),
                family: instance.family,
                vrid: instance.vrid,
                state: before.map_or(VrrpState::Init, |b| b.state),
                configured_priority: instance.priority,
                priority: before.map_or(instance.priority, |b| b.priority),
                addresses: instance.addresses.clone(),
                since: before.map_or_else(now, |b| b.since),
            }
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("keepalived"))
            .find(|path| path.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from(SBIN))
}

/// Opens the notify fifo (made first when missing) for reading and writing:
/// with a writer of its own, the reader never sees an end between two
/// keepalived processes.
fn open_fifo(path: &Path) -> io::Result<Lines<BufReader<pipe::Receiver>>> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if std::os::unix::fs::FileTypeExt::is_fifo(&metadata.file_type()) => {}
        Ok(_) => {
            std::fs::remove_file(path)?;
            sys::make_fifo(path, 0o600)?;
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => sys::make_fifo(path, 0o600)?,
        Err(error) => return Err(error),
    }
    let receiver = pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(path)?;
    Ok(BufReader::new(receiver).lines())
}

/// Stops the keepalived whose pid `pid_file` names, when it is one of this
/// state dir's (its command line names `config`): a daemon killed before it
/// could stop it left it behind.
async fn stop_stale(pid_file: &Path, config: &Path) {
    let Some(pid) = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
    else {
        return;
    };
    if !is_our_keepalived(pid, config) {
        return;
    }
    tracing::warn!("vrrp: stopping keepalived (pid {pid}) that a previous daemon left");
    let _ = sys::send_signal(pid, Signal::Terminate);
    let deadline = Instant::now() + STOP_TIMEOUT;
    while is_our_keepalived(pid, config) {
        if Instant::now() >= deadline {
            let _ = sys::send_signal(pid, Signal::Kill);
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether process `pid` runs keepalived from `config`.
fn is_our_keepalived(pid: u32, config: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut args = cmdline.split(|&byte| byte == 0);
    let program = args.next().unwrap_or_default();
    let config = config.as_os_str().as_encoded_bytes();
    program.ends_with(b"keepalived") && args.any(|arg| arg == config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(director: &str, sorry: bool, health: Health) -> ServerReport {
        ServerReport {
            director: director.to_owned(),
            server: "s".to_owned(),
            address: "10.1.0.10".parse().unwrap(),
            port: 80,
            checked: true,
            sorry,
            health,
        }
    }

    #[test]
    fn a_director_with_only_down_or_sorry_servers_is_not_up() {
        let web_up = report("web", false, Health::Up);
        let web_down = report("web", false, Health::Down);
        let mail_down = report("mail", false, Health::Down);
        let mail_sorry = report("mail", true, Health::Up);
        assert!(every_director_up(&[]));
        assert!(every_director_up(&[web_up.clone(), web_down.clone()]));
        assert!(!every_director_up(&[web_up.clone(), mail_down.clone()]));
        assert!(!every_director_up(&[web_up, mail_down, mail_sorry]));
        assert!(!every_director_up(&[web_down]));
    }

    #[test]
    fn a_stranger_is_not_taken_for_our_keepalived() {
        let config = Path::new("/nonexistent/vrrp/keepalived.conf");
        assert!(!is_our_keepalived(std::process::id(), config));
        assert!(!is_our_keepalived(u32::MAX, config));
    }
}
