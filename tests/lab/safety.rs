//! A typo or a careless hand on the real kernel: a mistyped or missing config
//! dir, or files emptied by mistake, never take down what runs; the confirm
//! guard's log is never a link and never world-readable.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::daemon::{start_daemon, stop_daemon};
use crate::support::Lab;

const NETWORK: &str = "service network eth1\n    ip address 198.51.100.1/24\n";
const FLOWS: &str = "flow web permit\n    match proto tcp dstport 80\n";
const LVS: &str =
    "director web 198.51.100.10:80 TCP\n    balance roundrobin\n    server a 198.51.100.2:80\n";

/// The lab with eth1, the configuration above applied, and what runs.
fn applied(name: &str) -> (Lab, String) {
    let lab = Lab::new(name);
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.write_config(NETWORK, FLOWS, LVS);
    lab.lbconsole(&["apply"]).expect_success();
    let running = runs(&lab);
    assert!(
        running.contains("198.51.100.1/24")
            && running.contains("198.51.100.10:80")
            && running.contains("table inet lbconsole"),
        "{running}"
    );
    (lab, running)
}

/// The address of eth1, the IPVS table and our nft table: what a teardown takes.
fn runs(lab: &Lab) -> String {
    let address = lab.ip(&["-4", "-o", "addr", "show", "dev", "eth1"]);
    let ipvs = lab.sh("ipvsadm -Ln");
    let nft = lab.sh("nft list tables");
    format!("{address}{ipvs}{nft}")
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_mistyped_config_dir_is_an_error_and_the_kernel_keeps_running() {
    let (lab, running) = applied("typo");
    let typo = format!("{}g", lab.config_dir().display());
    let run = crate::support::Run::of(
        std::process::Command::new(crate::support::lbconsole_binary())
            .args(["apply", "--config-dir", &typo, "--state-dir"])
            .arg(lab.state_dir()),
    );
    assert_eq!(run.code(), Some(1), "{run:?}");
    assert_eq!(
        run.stderr,
        format!(
            "lbconsole: the config directory {typo} does not exist; nothing was done (check --config-dir or LBCONSOLE_CONFIG_DIR)\n"
        )
    );
    assert_eq!(runs(&lab), running);
    // No version that deletes everything was recorded either.
    assert_eq!(
        lab.lbconsole(&["history"]).expect_success().lines().count(),
        1
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_daemon_whose_config_dir_is_gone_applies_nothing_at_boot() {
    let (lab, running) = applied("daemon-moved");
    let moved = lab.config_dir().with_extension("moved");
    std::fs::rename(lab.config_dir(), &moved).expect("mv cfg cfg.moved");
    let daemon = start_daemon(&lab);
    daemon.wait_for_lines(
        "does not exist; nothing was done",
        1,
        Duration::from_secs(30),
    );
    let after = runs(&lab);
    let (code, log) = stop_daemon(daemon);
    assert_eq!(after, running, "{log}");
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("boot apply: remove"), "{log}");
    std::fs::rename(&moved, lab.config_dir()).expect("mv back");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn emptied_files_take_everything_down_only_with_yes() {
    let (lab, running) = applied("empty");
    lab.write_config("", "", "");
    let refused = lab.lbconsole(&["apply"]);
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    assert!(
        refused.stderr.starts_with(
            "lbconsole: the configuration has no service, flow or address, so this apply would remove everything lbconsole runs (3 changes); nothing was applied (`lbconsole apply --yes` does it)"
        ),
        "{}",
        refused.stderr
    );
    assert_eq!(runs(&lab), running);
    // The daemon, which has nobody to ask, refuses too.
    let daemon = start_daemon(&lab);
    daemon.wait_for_lines(
        "would remove everything lbconsole runs",
        1,
        Duration::from_secs(30),
    );
    let (_, log) = stop_daemon(daemon);
    assert_eq!(runs(&lab), running, "{log}");

    let plan = lab.lbconsole(&["apply", "--yes"]).expect_success();
    assert!(plan.ends_with("applied 3 changes\n"), "{plan}");
    let after = runs(&lab);
    assert!(!after.contains("198.51.100.1/24"), "{after}");
    assert!(!after.contains("198.51.100.10:80"), "{after}");
    assert!(!after.contains("lbconsole"), "{after}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn the_guard_log_is_0640_under_umask_000_and_never_a_link() {
    let (lab, _) = applied("guard-log");
    lab.write_config(NETWORK, "", LVS);
    let binary = crate::support::lbconsole_binary().display().to_string();
    let apply = format!(
        "umask 000 && {binary} apply --confirm-timeout 10 --config-dir {} --state-dir {}",
        lab.config_dir().display(),
        lab.state_dir().display()
    );
    lab.sh(&apply);
    let log = lab.state_dir().join("guard.log");
    let mode = std::fs::metadata(&log)
        .expect("guard.log")
        .permissions()
        .mode()
        & 0o777;
    lab.lbconsole(&["confirm"]).expect_success();
    assert_eq!(mode, 0o640);

    std::fs::remove_file(&log).expect("rm guard.log");
    let elsewhere = lab.state_dir().with_extension("appended");
    std::os::unix::fs::symlink(&elsewhere, &log).expect("ln -s");
    lab.write_config(NETWORK, FLOWS, LVS);
    let before = runs(&lab);
    let refused = lab.lbconsole(&["apply", "--confirm-timeout", "10"]);
    assert_eq!(refused.code(), Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("cannot start the confirm guard: cannot open")
            && refused.stderr.contains("nothing was applied"),
        "{}",
        refused.stderr
    );
    assert!(
        !elsewhere.exists(),
        "guard.log was written through the link"
    );
    assert_eq!(runs(&lab), before);
}
