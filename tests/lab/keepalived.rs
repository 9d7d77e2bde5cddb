//! keepalived under `lbconsole daemon`, for one appliance: the daemon starts it
//! (and the IPVS sync daemons) from `network.conf`'s `vrrp` lines, `status`
//! shows what it reports, an apply leaves its address alone, and it never
//! outlives the daemon, even one killed with SIGKILL.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::daemon::{Daemon, start_daemon, stop_daemon};
use crate::support::{Lab, wait_until};

const NETWORK: &str = "service network eth0
    ip address 192.0.2.2/24
    vrrp id 51
    vrrp prio 150
    vrrp address 192.0.2.100/24
service vrrp
    sync-iface eth0
    advert 500
";

const VIP: &str = "192.0.2.100";

/// How long keepalived may take to become master once started: three adverts
/// (half a second each, to keep the test short) and the skew, with much room
/// for a VM that shares its host's CPUs.
const MASTER_WITHIN: Duration = Duration::from_secs(10);

/// How long keepalived may take to leave and take its address with it.
const GONE_WITHIN: Duration = Duration::from_secs(5);

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn keepalived_holds_the_vip_while_the_daemon_runs_and_never_outlives_it() {
    let lab = Lab::new("vrrp-one");
    let peer = lab.netns("vrrp-peer");
    lab.veth("eth0", "p0", &peer);
    peer.ip(&["link", "set", "p0", "up"]);
    lab.write_config(NETWORK, "", "");

    let daemon = start_daemon(&lab);
    let master = wait_for_master(&lab, &daemon);
    println!("keepalived master with the VIP in {master:?}");
    let log = daemon.log();
    let states = |l: &&str| l.contains("vrrp eth0:") || l.contains("keepalived started");
    for line in log.lines().filter(states) {
        println!("  {line}");
    }

    let sync = &status_json(&lab)["sync_daemons"];
    let expected = serde_json::json!([
        {"role": "master", "interface": "eth0", "sync_id": 51},
        {"role": "backup", "interface": "eth0", "sync_id": 51},
    ]);
    assert_eq!(sync, &expected, "{}", daemon.log());

    let applied = lab.lbconsole(&["apply"]);
    assert!(applied.success(), "{applied}");
    assert!(
        applied
            .stdout
            .contains("this box is MASTER of its VRRP pair"),
        "{applied}"
    );
    assert!(
        has_vip(&lab),
        "the apply removed keepalived's address:\n{applied}"
    );

    // SIGTERM: the daemon stops keepalived, which removes its address.
    let started = Instant::now();
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        wait_until(GONE_WITHIN, || keepalived_pids(lab.state_dir()).is_empty()
            && !has_vip(&lab)),
        "keepalived or its address outlived the daemon's SIGTERM: pids {:?}\n{log}",
        keepalived_pids(lab.state_dir())
    );
    println!(
        "SIGTERM: keepalived and the VIP gone in {:?}",
        started.elapsed()
    );
    let status = status_json(&lab);
    assert_eq!(
        status["vrrp"]["keepalived"]["reason"], "the daemon is not running",
        "{status:#}"
    );
    assert_eq!(
        status["vrrp"]["instances"][0]["state"], "STOP",
        "{status:#}"
    );

    // SIGKILL: nobody stops keepalived but the kernel (PR_SET_PDEATHSIG).
    let daemon = start_daemon(&lab);
    wait_for_master(&lab, &daemon);
    let pids = keepalived_pids(lab.state_dir());
    assert!(!pids.is_empty(), "{}", daemon.log());
    let started = Instant::now();
    let log = daemon.log();
    drop(daemon); // SIGKILL, then reaped
    assert!(
        wait_until(GONE_WITHIN, || keepalived_pids(lab.state_dir()).is_empty()
            && !has_vip(&lab)),
        "keepalived {:?} or its address outlived the daemon's SIGKILL (vip {}):\n{log}",
        keepalived_pids(lab.state_dir()),
        has_vip(&lab)
    );
    println!(
        "SIGKILL: keepalived ({} processes) and the VIP gone in {:?}",
        pids.len(),
        started.elapsed()
    );
}

/// Waits until the daemon has started keepalived (after its boot apply), then
/// until `status --json` says MASTER at priority 150 and the address is on
/// eth0; how long the latter took.
#[track_caller]
fn wait_for_master(lab: &Lab, daemon: &Daemon) -> Duration {
    daemon.wait_for_lines("vrrp: keepalived started", 1, Duration::from_secs(30));
    let start = Instant::now();
    let mut last = Value::Null;
    let master = wait_until(MASTER_WITHIN, || {
        last = status_json(lab);
        let instance = &last["vrrp"]["instances"][0];
        instance["state"] == "MASTER" && instance["priority"] == 150 && has_vip(lab)
    });
    assert!(
        master,
        "not MASTER with {VIP} within {MASTER_WITHIN:?}: vrrp {:#}\naddresses {}\n{}",
        last["vrrp"],
        lab.ip(&["-j", "addr", "show", "dev", "eth0"]),
        daemon.log()
    );
    let instance = &last["vrrp"]["instances"][0];
    assert_eq!(instance["name"], "eth0", "{last:#}");
    assert_eq!(instance["vrid"], 51, "{last:#}");
    assert_eq!(instance["configured-priority"], 150, "{last:#}");
    assert_eq!(last["vrrp"]["keepalived"]["state"], "running", "{last:#}");
    start.elapsed()
}

fn status_json(lab: &Lab) -> Value {
    let run = lab.lbconsole(&["status", "--json"]);
    assert!(run.success(), "{run}");
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"))
}

/// Whether `ip -j addr` shows the VIP on eth0.
fn has_vip(lab: &Lab) -> bool {
    let text = lab.ip(&["-j", "addr", "show", "dev", "eth0"]);
    let links: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    links[0]["addr_info"]
        .as_array()
        .is_some_and(|addresses| addresses.iter().any(|a| a["local"] == VIP))
}

/// The keepalived processes running this state dir's configuration.
fn keepalived_pids(state_dir: &Path) -> Vec<u32> {
    let config = state_dir.join("vrrp/keepalived.conf");
    let config = config.as_os_str().as_encoded_bytes();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let mut args = cmdline.split(|&b| b == 0);
                args.next()
                    .is_some_and(|program| program.ends_with(b"keepalived"))
                    && args.any(|arg| arg == config)
            })
        })
        .collect()
}
