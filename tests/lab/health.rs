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

/// Each server's health in `lbconsole status --json`.
fn published_health(farm: &Farm) -> Vec<String> {
    let run = farm.lab.lbconsole(&["status", "--json"]);
    assert!(run.success(), "{run}");
    let status: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(status["health"]["daemon"], true, "{}", run.stdout);
    status["health"]["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|server| {
            format!(
                "{} {}",
                server["server"].as_str().expect("a name"),
                server["health"].as_str().expect("a state")
            )
        })
        .collect()
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
    assert_eq!(
        published_health(&farm),
        ["web1 down", "web2 up", "web3 up"],
        "status shows what the daemon publishes"
    );

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

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn with_inhibit_a_down_server_stays_at_weight_zero_and_a_reload_keeps_it_down() {
    let mut farm = farm("health-inhibit", 3);
    let lvs = LVS.replace("fall 2\n", "fall 2 inhibit\n");
    write_lvs(&farm, &lvs);
    let daemon = start_daemon(&farm.lab);
    wait_for(
        &farm,
        &["10.0.1.2:80 1", "10.0.2.2:80 1", "10.0.3.2:80 0"],
        Duration::from_secs(10),
    );
    farm.stop(1);
    let inhibited = ["10.0.1.2:80 0", "10.0.2.2:80 1", "10.0.3.2:80 0"];
    wait_for(&farm, &inhibited, Duration::from_secs(10));
    assert_eq!(farm.fetch(URL, 3), vec!["web2"; 3]);

    // web2's weight changes; web1 is unchanged and must stay down, not start
    // again as up and fall a second time.
    write_lvs(
        &farm,
        &lvs.replace("10.0.2.2:80 check", "10.0.2.2:80 weight 3 check"),
    );
    // SAFETY: kill(2) on the daemon this test started.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGHUP) };
    let reloaded = ["10.0.1.2:80 0", "10.0.2.2:80 3", "10.0.3.2:80 0"];
    wait_for(&farm, &reloaded, Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(real_servers(&farm), reloaded);

    let (_, log) = stop_daemon(daemon);
    assert_eq!(
        log.matches("server web1 (10.0.1.2:80) of director web is down")
            .count(),
        1,
        "{log}"
    );
}
