//! Confirm-or-rollback on the real kernel: an apply that takes an address away,
//! made from a "session" that then dies (SIGHUP and SIGKILL to its whole process
//! group, as when SSH drops), comes undone at the deadline; a confirmed one stays;
//! and when the guard itself is killed, `status` rolls back in its place.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Lab, wait_until};

const BOTH: &str = "\
service network eth1
    ip address 198.51.100.1/24
    ip address 198.51.100.5/24
";

const ONE: &str = "\
service network eth1
    ip address 198.51.100.1/24
";

/// A lab with `eth1` (a veth, IPv4 only) carrying both addresses, applied and
/// unguarded; the config dir then says `ONE`.
fn lab_with_both_addresses(name: &str) -> Lab {
    let lab = Lab::new(name);
    lab.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
    lab.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.write_config(BOTH, "", "");
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "first apply: {run}");
    assert!(has_second_address(&lab));
    lab.write_config(ONE, "", "");
    lab
}

fn has_second_address(lab: &Lab) -> bool {
    lab.ip(&["-4", "-o", "addr", "show", "dev", "eth1"])
        .contains("198.51.100.5/24")
}

fn guard_log(lab: &Lab) -> String {
    std::fs::read_to_string(lab.state_dir().join("guard.log")).unwrap_or_default()
}

/// Runs `lbconsole apply --confirm-timeout S` in a shell that stays behind
/// afterwards, like a login session, in a process group of its own; returns once
/// the apply has said how long is left, with the group's id.
fn apply_in_a_session(lab: &Lab, timeout: u64) -> i32 {
    let script = format!(
        "{} apply --confirm-timeout {timeout} --config-dir {} --state-dir {} && exec sleep 60",
        env!("CARGO_BIN_EXE_lbconsole"),
        lab.config_dir().display(),
        lab.state_dir().display()
    );
    let mut session = Command::new("sh")
        .args(["-c", &script])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the session");
    let mut output = String::new();
    let mut lines = BufReader::new(session.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("read the apply's output");
        output.push_str(&line);
        output.push('\n');
        if line.starts_with("confirm within") {
            break;
        }
    }
    assert!(
        output
            .contains("remove address 198.51.100.5/24 from eth1\napplied 1 change\nconfirm within"),
        "the guarded apply printed:\n{output}"
    );
    let group = session.id() as i32;
    // The session is reaped by whoever: the test only needs it dead.
    std::thread::spawn(move || session.wait());
    group
}

/// What a dropped SSH connection does to a session, and then some.
fn kill_session(group: i32) {
    // SAFETY: kill(2) on a process group this test created.
    unsafe {
        libc::kill(-group, libc::SIGHUP);
        libc::kill(-group, libc::SIGKILL);
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn confirm_timeout_brings_a_removed_address_back_after_the_session_is_killed() {
    let lab = lab_with_both_addresses("confirm-rollback");
    let group = apply_in_a_session(&lab, 3);
    kill_session(group);
    assert!(
        !has_second_address(&lab),
        "the apply did not take the address away"
    );

    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(
        status.contains("pending apply by ")
            && status.contains(" s left to confirm with `lbconsole confirm`"),
        "{status}"
    );
    let second = lab.lbconsole(&["apply"]);
    assert_eq!(second.code(), Some(1), "{second}");
    assert!(
        second.stderr.starts_with("lbconsole: an apply by ")
            && second.stderr.contains(" is waiting for confirmation (")
            && second
                .stderr
                .ends_with(" s left); run `lbconsole confirm` or wait for the rollback\n"),
        "{second}"
    );

    assert!(
        wait_until(Duration::from_secs(8), || has_second_address(&lab)),
        "the address did not come back; guard log:\n{}",
        guard_log(&lab)
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(!status.contains("pending apply"), "{status}");
    assert!(
        status.contains("(restored the previous configuration)"),
        "{status}"
    );
    let confirm = lab.lbconsole(&["confirm"]);
    assert!(
        confirm
            .stderr
            .starts_with("lbconsole: no apply is waiting for confirmation (the apply by "),
        "{confirm}"
    );
    // What runs is the old configuration again: applying it changes nothing.
    lab.write_config(BOTH, "", "");
    assert_eq!(lab.lbconsole(&["apply"]).expect_success(), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn confirm_within_the_timeout_keeps_the_change() {
    let lab = lab_with_both_addresses("confirm-keep");
    let group = apply_in_a_session(&lab, 3);
    kill_session(group);
    let confirm = lab.lbconsole(&["confirm"]).expect_success();
    assert!(confirm.starts_with("confirmed the apply by "), "{confirm}");
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !has_second_address(&lab),
        "the confirmed change was rolled back; guard log:\n{}",
        guard_log(&lab)
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(!status.contains("pending apply"), "{status}");
    assert!(!status.contains("last rollback"), "{status}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn confirm_status_rolls_back_when_the_guard_itself_was_killed() {
    let lab = lab_with_both_addresses("confirm-guard-dies");
    // Long enough for the kill and a `status` (which reads IPVS and nft, slow
    // under the VM's emulation) to happen before the deadline.
    let group = apply_in_a_session(&lab, 10);
    kill_session(group);
    let guards = guard_pids(&lab);
    assert_eq!(guards.len(), 1, "one guard expected: {guards:?}");
    // SAFETY: kill(2) on the guard this test's apply started.
    unsafe { libc::kill(guards[0], libc::SIGKILL) };
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(status.contains("its guard is gone"), "{status}");
    std::thread::sleep(Duration::from_millis(10_500));
    assert!(
        !has_second_address(&lab),
        "nobody should have rolled back yet"
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(
        has_second_address(&lab),
        "status did not roll back:\n{status}"
    );
    assert!(
        status.contains("(restored the previous configuration)"),
        "{status}"
    );
}

/// The guards started for this lab: processes whose command line is
/// `lbconsole ... --state-dir STATE_DIR guard ...`.
fn guard_pids(lab: &Lab) -> Vec<i32> {
    let state_dir = lab.state_dir().display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == "guard") && args.contains(&state_dir) {
            pids.push(pid);
        }
    }
    pids
}
