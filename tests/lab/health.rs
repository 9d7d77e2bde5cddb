//! The daemon's health checks on the real kernel, with real backends: killing a
//! backend takes it out of IPVS within fall × interval, starting it again brings
//! it back after rise successes, and the sorry server takes the traffic only while
//! every real server is down.

use std::time::{Duration, Instant};

use crate::apply_lvs::{Farm, farm, ipvsadm_table};
use crate::daemon::{start_daemon, stop_daemon};
use crate::support::wait_until;

/// Two real servers checked over HTTP every second, and web3 as the sorry server.
const LVS: &str = "director web 198.51.100.10:80 TCP\n\
    balance roundrobin\n\
    check interval 1 timeout 1 rise 2 fall 2\n\
    option httpcheck uri / statuscode 200\n\
    server web1 10.0.1.2:80 check\n\
    server web2 10.0.2.2:80 check\n\
    server web3 10.0.3.2:80 sorry\n";

const URL: &str = "http://198.51.100.10/";

/// The real servers of the only service, `address:port weight` each.
fn real_servers(farm: &Farm) -> Vec<String> {
    let table = ipvsadm_table(&farm.lab);
    table
        .first()
        .map(|service| {
            service[1..]
                .iter()
                .map(|line| {
                    let words: Vec<&str> = line.split(' ').collect();
                    format!("{} {}", words[1], words[3])
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the real servers are `expected`; how long that took.
fn wait_for(farm: &Farm, expected: &[&str], within: Duration) -> Duration {
    let start = Instant::now();
    let reached = wait_until(within, || real_servers(farm) == expected);
    assert!(
        reached,
        "IPVS did not reach {expected:?} within {within:?}: {:?}",
        real_servers(farm)
    );
    start.elapsed()
}

fn write_lvs(farm: &Farm, lvs: &str) {
    let network =
        std::fs::read_to_string(farm.lab.config_dir().join("network.conf")).expect("network.conf");
    farm.lab.write_config(&network, "", lvs);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_killed_backend_leaves_ipvs_comes_back_and_the_sorry_server_is_the_last_resort() {
    let mut farm = farm("health-http", 3);
    write_lvs(&farm, LVS);
    let daemon = start_daemon(&farm.lab);
    let all = ["10.0.1.2:80 1", "10.0.2.2:80 1", "10.0.3.2:80 0"];
    wait_for(&farm, &all, Duration::from_secs(10));

    farm.stop(1);
    let out = wait_for(
        &farm,
        &["10.0.2.2:80 1", "10.0.3.2:80 0"],
        Duration::from_secs(10),
    );
    // fall 2 × interval 1 s, plus up to one interval until the first failed check.
    assert!(out <= Duration::from_secs(4), "out after {out:?}");
    assert_eq!(farm.fetch(URL, 4), vec!["web2"; 4]);

    farm.start(1);
    let back = wait_for(&farm, &all, Duration::from_secs(10));
    assert!(back <= Duration::from_secs(4), "back after {back:?}");

    farm.stop(1);
    farm.stop(2);
    wait_for(&farm, &["10.0.3.2:80 1"], Duration::from_secs(10));
    assert_eq!(
        farm.fetch(URL, 3),
        vec!["web3"; 3],
        "the sorry server answers"
    );

    farm.start(2);
    wait_for(
        &farm,
        &["10.0.2.2:80 1", "10.0.3.2:80 0"],
        Duration::from_secs(10),
    );
    assert_eq!(farm.fetch(URL, 3), vec!["web2"; 3], "the sorry server left");

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("server web1 (10.0.1.2:80) of director web is down"),
        "{log}"
    );
    assert!(
        log.contains("server web1 (10.0.1.2:80) of director web is up"),
        "{log}"
    );
    eprintln!("health: out after {out:?}, back after {back:?}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_backend_answering_another_status_code_is_down() {
    let farm = farm("health-status", 3);
    write_lvs(&farm, &LVS.replace("statuscode 200", "statuscode 204"));
    let daemon = start_daemon(&farm.lab);
    wait_for(&farm, &["10.0.3.2:80 1"], Duration::from_secs(10));
    assert_eq!(farm.fetch(URL, 2), vec!["web3"; 2]);
    let (_, log) = stop_daemon(daemon);
    assert!(log.contains("HTTP status 200, expected 204"), "{log}");
}
