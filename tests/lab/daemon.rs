//! `lbconsole daemon` on the real kernel: the boot apply is all or nothing, says
//! each problem in one log line, and the daemon keeps running either way.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{Lab, wait_until};

pub(crate) fn start_daemon(lab: &Lab) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lbconsole"))
        .arg("daemon")
        .arg("--config-dir")
        .arg(lab.config_dir())
        .arg("--state-dir")
        .arg(lab.state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon")
}

/// SIGTERM, then the daemon's exit status and log.
pub(crate) fn stop_daemon(mut daemon: Child) -> (Option<i32>, String) {
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let status = daemon.wait().expect("the daemon ends");
    let mut log = String::new();
    daemon
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("the log");
    (status.code(), log)
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
    let applied = wait_until(Duration::from_secs(10), || {
        has_address(&lab, "eth1", "198.51.100.1/24")
    });
    let (code, log) = stop_daemon(daemon);
    assert!(applied, "the boot apply did not happen:\n{log}");
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
    std::thread::sleep(Duration::from_secs(3));
    let after = lab.dump();
    let (code, log) = stop_daemon(daemon);
    crate::support::assert_same_kernel(&before, &after);
    assert_eq!(code, Some(0), "the daemon did not keep running:\n{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{log}");
    assert!(errors[0].contains("boot apply: "), "{log}");
    assert!(errors[0].contains("eth9"), "{log}");
}
