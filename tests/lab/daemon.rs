//! `lbconsole daemon` on the real kernel: the boot apply is all or nothing, says
//! each problem in one log line, and the daemon keeps running either way.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Lab, wait_until};

/// A running `lbconsole daemon` whose log (its stderr) goes to a file in the
/// state directory, so that a test can wait for a line while it runs. Killed
/// when dropped without [`stop_daemon`] (a failed test), so that it does not
/// go on checking through the rest of the suite.
pub(crate) struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `count` lines containing `text`; how long that
    /// took. Panics with the log after `within`.
    #[track_caller]
    pub(crate) fn wait_for_lines(&self, text: &str, count: usize, within: Duration) -> Duration {
        let start = std::time::Instant::now();
        let reached = wait_until(within, || {
            self.log().lines().filter(|l| l.contains(text)).count() >= count
        });
        assert!(
            reached,
            "no {count} line(s) with `{text}` in the daemon's log within {within:?}:\n{}",
            self.log()
        );
        start.elapsed()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub(crate) fn start_daemon(lab: &Lab) -> Daemon {
    start_daemon_with(lab, &[])
}

/// The daemon with these variables in its environment.
pub(crate) fn start_daemon_with(lab: &Lab, env: &[(&str, &std::ffi::OsStr)]) -> Daemon {
    let (child, log) = spawn_daemon(crate::support::lbconsole_binary().as_os_str(), lab, env);
    Daemon { child, log }
}

/// Starts `binary daemon` on the lab's directories with `env` added to its
/// environment; its log is the path returned.
pub(crate) fn spawn_daemon(
    binary: &std::ffi::OsStr,
    lab: &Lab,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Child, PathBuf) {
    let log = lab.state_dir().join("daemon.log");
    let child = Command::new(binary)
        .envs(env.iter().copied())
        .arg("daemon")
        .arg("--config-dir")
        .arg(lab.config_dir())
        .arg("--state-dir")
        .arg(lab.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("the daemon's log"))
        .spawn()
        .expect("start the daemon");
    (child, log)
}

/// SIGTERM, then the daemon's exit status and log.
pub(crate) fn stop_daemon(mut daemon: Daemon) -> (Option<i32>, String) {
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.child.wait().expect("the daemon ends");
    (status.code(), daemon.log())
}

fn has_address(lab: &Lab, dev: &str, address: &str) -> bool {
    lab.try_ip(&["-4", "-o", "addr", "show", "dev", dev])
        .stdout
        .contains(address)
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn daemon_applies_the_saved_configuration_at_start_and_stops_on_sigterm() {
    let lab = Lab::new("daemon-boot");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.write_config(
        "service network eth1\n    ip address 198.51.100.1/24\n",
        "",
        "",
    );
    let daemon = start_daemon(&lab);
    // The log says the apply is done: the address must be there by then.
    daemon.wait_for_lines("boot apply: applied", 1, Duration::from_secs(30));
    let applied = has_address(&lab, "eth1", "198.51.100.1/24");
    let (code, log) = stop_daemon(daemon);
    assert!(applied, "the boot apply did not add the address:\n{log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("boot apply: add address 198.51.100.1/24 to eth1"),
        "{log}"
    );
    assert!(log.contains("boot apply: applied 2 change(s)"), "{log}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn daemon_boot_apply_with_a_missing_interface_changes_nothing_and_keeps_running() {
    let lab = Lab::new("daemon-missing");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    // eth1 exists, eth9 does not: the address on eth1 must not stay either.
    lab.write_config(
        "service network eth1\n    ip address 198.51.100.1/24\nservice network eth9\n    ip address 203.0.113.1/24\n",
        "",
        "",
    );
    let before = lab.dump();
    let daemon = start_daemon(&lab);
    // The refusal is logged once the boot apply has undone what it did: compare
    // after that, not after a time that a slow VM may need more than.
    daemon.wait_for_lines("ERROR", 1, Duration::from_secs(30));
    let after = lab.dump();
    let (code, log) = stop_daemon(daemon);
    crate::support::assert_same_kernel(&before, &after);
    assert_eq!(code, Some(0), "the daemon did not keep running:\n{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains("boot apply: "), "{log}");
    assert!(errors[0].contains("eth9"), "{log}");
}
