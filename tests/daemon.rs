//! `lbconsole daemon` on the host. Each daemon runs in a network namespace of
//! its own (`unshare --net`, in a user namespace where the test is not root),
//! so that its boot apply, of an empty configuration, touches nothing of the
//! machine's.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lbconsole::health::publish;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lbconsole-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    dir
}

/// A daemon on `dir`'s config and state dirs, its log (stderr) in `log`.
fn start_daemon(dir: &Path, log: &str) -> Child {
    Command::new("unshare")
        .args(["--net", "--map-root-user", "--"])
        .arg(env!("CARGO_BIN_EXE_lbconsole"))
        .arg("daemon")
        .arg("--config-dir")
        .arg(dir.join("config"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(dir.join(log)).expect("a log"))
        .spawn()
        .expect("unshare runs the daemon")
}

fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The daemon's exit status once it ended by itself within `within`; killed
/// and `None` otherwise.
fn ended(daemon: &mut Child, within: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(within, || {
        status = daemon.try_wait().expect("the daemon's status");
        status.is_some()
    });
    if status.is_none() {
        let _ = daemon.kill();
        let _ = daemon.wait();
    }
    status
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start_and_leaves_the_first_alone() {
    let dir = scratch("two-daemons");
    let state_dir = dir.join("state");
    let socket = publish::socket_path(&state_dir);
    let read_log = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();

    let mut first = start_daemon(&dir, "first.log");
    assert!(
        wait_until(Duration::from_secs(60), || socket.exists()),
        "the first daemon does not listen:\n{}",
        read_log("first.log")
    );
    let listening = std::fs::metadata(&socket).expect("the socket").ino();

    let mut second = start_daemon(&dir, "second.log");
    let status = ended(&mut second, Duration::from_secs(20));
    let said = read_log("second.log");
    println!("second daemon: {status:?}: {said}");
    let first_alive = matches!(first.try_wait(), Ok(None));
    let socket_kept = std::fs::metadata(&socket).map(|m| m.ino()).ok() == Some(listening);
    let answers = publish::read(&state_dir);
    let _ = first.kill();
    let _ = first.wait();

    let status = status.expect("the second daemon kept running");
    assert!(!status.success(), "the second daemon ended with {status}");
    assert_eq!(
        said.trim(),
        format!(
            "lbconsole: another lbconsole daemon (pid {}) runs on {}; stop it first, or give \
             this one another --state-dir",
            first.id(),
            state_dir.display()
        )
    );
    assert!(first_alive, "the first daemon ended");
    assert!(socket_kept, "the first daemon's socket was replaced");
    assert!(
        matches!(answers, Ok(Some(_))),
        "the first daemon no longer answers: {answers:?}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A machine without keepalived: the daemon, asked for VRRP, says once what to
/// install, in its log and in `vrrp/status.toml`, and runs the rest (its
/// health socket answers). keepalived is hidden by a private mount namespace
/// in which /usr/sbin holds every program but keepalived.
#[test]
fn without_keepalived_the_daemon_says_what_to_install_and_runs_the_rest() {
    let dir = scratch("no-keepalived");
    let (config_dir, state_dir) = (dir.join("config"), dir.join("state"));
    std::fs::create_dir_all(&config_dir).expect("the config dir");
    std::fs::write(
        config_dir.join("network.conf"),
        "service network eth0\n    ip address 10.0.0.2/24\n    vrrp id 51\n    \
         vrrp address 10.0.0.100/24\n",
    )
    .expect("network.conf");
    for file in ["flows.conf", "lvs.conf"] {
        std::fs::write(config_dir.join(file), "").expect("a config file");
    }
    let sbin = dir.join("sbin");
    std::fs::create_dir_all(&sbin).expect("a mount point");
    let script = r#"
        set -e
        ip link add eth0 type veth peer name eth9
        ip link set eth9 up
        mount --bind /usr/sbin "$1"
        mount -t tmpfs none /usr/sbin
        for program in "$1"/*; do
            [ "${program##*/}" = keepalived ] || ln -s "$program" /usr/sbin/
        done
        exec "$2" daemon --config-dir "$3" --state-dir "$4"
    "#;
    let log = dir.join("daemon.log");
    let mut daemon = Command::new("unshare")
        .args([
            "--net",
            "--mount",
            "--map-root-user",
            "--",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(&sbin)
        .arg(env!("CARGO_BIN_EXE_lbconsole"))
        .arg(&config_dir)
        .arg(&state_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&log).expect("a log"))
        .spawn()
        .expect("unshare runs the daemon");
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let reason = || match lbconsole::ha::status::read(&state_dir) {
        Ok(Some(status)) => match status.keepalived {
            lbconsole::ha::status::Keepalived::Down { reason } => Some(reason),
            _ => None,
        },
        _ => None,
    };
    let told = wait_until(Duration::from_secs(60), || reason().is_some());
    // A few more ticks: the sentence is not repeated.
    std::thread::sleep(Duration::from_secs(3));
    let health = publish::read(&state_dir);
    let while_alive = reason();
    let alive = matches!(daemon.try_wait(), Ok(None));
    let _ = daemon.kill();
    let _ = daemon.wait();
    let log = said();

    assert!(told, "no reason in vrrp/status.toml:\n{log}");
    let install = "install keepalived (the Debian package): VRRP does not run without it";
    assert_eq!(while_alive.as_deref(), Some(install));
    // What the killed daemon left is not believed.
    assert_eq!(
        reason().as_deref(),
        Some(lbconsole::ha::status::NO_DAEMON),
        "a dead daemon's status"
    );
    assert_eq!(log.matches(install).count(), 1, "said once:\n{log}");
    assert!(alive, "the daemon ended:\n{log}");
    assert!(
        matches!(health, Ok(Some(_))),
        "the health socket does not answer: {health:?}\n{log}"
    );
    std::fs::remove_dir_all(&dir).expect("clean up");
}
