//! Confirm-or-rollback on the real kernel: an apply that takes an address away,
//! made from a "session" that then dies (SIGHUP and SIGKILL to its whole process
//! group, as when SSH drops), comes undone at the deadline; a confirmed one stays;
//! and when the guard itself is killed, `status` rolls back in its place.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Lab, wait_until};

/// The confirm timeout for applies in a VM where one `status` takes `status`.
/// What a test must do before the deadline — the rest of the guarded apply
/// (the deadline counts from before it changes anything), a kill, a `status`,
/// another apply — costs about three `status` runs: six leave room for the VM
/// to slow down further meanwhile. A busy host slows the VM down many times
/// (measured: a `status` of 15 s where it usually takes about 1 s), so a fixed
/// timeout is either too short there or needlessly long elsewhere.
fn confirm_timeout(status: Duration) -> u64 {
    (status.as_secs_f64() * 6.0).ceil().max(10.0) as u64
}

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
/// unguarded; the config dir then says `ONE`. With it, the confirm timeout for
/// this VM as it runs now.
fn lab_with_both_addresses(name: &str) -> (Lab, u64) {
    let lab = Lab::new(name);
    lab.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
    lab.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.write_config(BOTH, "", "");
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "first apply: {run}");
    assert!(has_second_address(&lab));
    // The first `status` in a fresh VM loads the IPVS and nftables modules, which
    // takes many seconds under emulation: not while a deadline runs. The second
    // tells how fast the VM runs now.
    lab.lbconsole(&["status"]).expect_success();
    let started = Instant::now();
    lab.lbconsole(&["status"]).expect_success();
    let timeout = confirm_timeout(started.elapsed());
    eprintln!(
        "confirm: a status takes {:.1} s: confirm timeout {timeout} s",
        started.elapsed().as_secs_f64()
    );
    lab.write_config(ONE, "", "");
    (lab, timeout)
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
/// the apply has said how long is left, with the group's id and the latest the
/// deadline can be (the apply set it before it said so).
fn apply_in_a_session(lab: &Lab, timeout: u64) -> (i32, Instant) {
    let script = format!(
        "{} apply --confirm-timeout {timeout} --config-dir {} --state-dir {} && exec sleep 60",
        crate::support::lbconsole_binary().display(),
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
    let deadline = Instant::now() + Duration::from_secs(timeout);
    assert!(
        output
            .contains("remove address 198.51.100.5/24 from eth1\napplied 1 change\nconfirm within"),
        "the guarded apply printed:\n{output}"
    );
    let group = session.id() as i32;
    // The session is reaped by whoever: the test only needs it dead.
    std::thread::spawn(move || session.wait());
    (group, deadline)
}

/// Sleeps until `deadline` has passed by half a second.
fn sleep_past(deadline: Instant) {
    let until = deadline + Duration::from_millis(500);
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
}

/// Whether process `pid` has ended (gone, or a zombie, which holds no locks).
/// kill(2) only sends the signal: the process ends when it next runs.
fn ended(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        // `pid (comm) STATE ...`: the state follows the last `)`.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
    })
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
    let (lab, timeout) = lab_with_both_addresses("confirm-rollback");
    let (group, deadline) = apply_in_a_session(&lab, timeout);
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
    eprintln!(
        "confirm: the checks before the deadline ended {:.1} s before it",
        deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    );
    assert_eq!(second.code(), Some(1), "{second}");
    assert!(
        second.stderr.starts_with("lbconsole: an apply by ")
            && second.stderr.contains(" is waiting for confirmation (")
            && second
                .stderr
                .ends_with(" s left); run `lbconsole confirm` or wait for the rollback\n"),
        "{second}"
    );

    // The guard rolls back at the deadline with a whole apply: give it another
    // timeout's time.
    assert!(
        wait_until(
            deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(timeout),
            || has_second_address(&lab)
        ),
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
    let (lab, timeout) = lab_with_both_addresses("confirm-keep");
    let (group, deadline) = apply_in_a_session(&lab, timeout);
    kill_session(group);
    let confirm = lab.lbconsole(&["confirm"]).expect_success();
    assert!(confirm.starts_with("confirmed the apply by "), "{confirm}");
    // The guard sees the confirmation and exits; past the deadline nothing
    // rolls back.
    assert!(
        wait_until(Duration::from_secs(timeout), || guard_pids(&lab)
            .into_iter()
            .all(ended)),
        "the guard did not exit after the confirmation; guard log:\n{}",
        guard_log(&lab)
    );
    sleep_past(deadline);
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
    let (lab, timeout) = lab_with_both_addresses("confirm-guard-dies");
    let (group, deadline) = apply_in_a_session(&lab, timeout);
    kill_session(group);
    let guards = guard_pids(&lab);
    assert_eq!(guards.len(), 1, "one guard expected: {guards:?}");
    // SAFETY: kill(2) on the guard this test's apply started.
    unsafe { libc::kill(guards[0], libc::SIGKILL) };
    // Its lock goes only when it has died.
    assert!(
        wait_until(Duration::from_secs(timeout), || ended(guards[0])),
        "the guard did not die"
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    eprintln!(
        "confirm: the checks before the deadline ended {:.1} s before it",
        deadline
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
    );
    assert!(status.contains("its guard is gone"), "{status}");
    sleep_past(deadline);
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
