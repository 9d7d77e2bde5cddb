//! The daemon's health checks on the real kernel, with real backends: killing a
//! backend takes it out of IPVS within fall × interval, starting it again brings
//! it back after rise successes, and the sorry server takes the traffic only while
//! every real server is down.

use std::time::{Duration, Instant};

use crate::apply_lvs::{Farm, farm, ipvsadm_table};
use crate::daemon::{Daemon, start_daemon, stop_daemon};
use crate::support::{resident_kib, wait_until};

/// Two real servers checked over HTTP every second, and web3 as the sorry server.
pub(crate) const LVS: &str = "director web 198.51.100.10:80 TCP\n\
    balance roundrobin\n\
    check interval 1 timeout 1 rise 2 fall 2\n\
    option httpcheck uri / statuscode 200\n\
    server web1 10.0.1.2:80 check\n\
    server web2 10.0.2.2:80 check\n\
    server web3 10.0.3.2:80 sorry\n";

pub(crate) const URL: &str = "http://198.51.100.10/";

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
    servers_health(&status)
}

/// Whether the daemon publishes its servers' health, which it does once its
/// checker runs (IPVS shows the boot apply's table before that).
fn checker_runs(farm: &Farm) -> bool {
    let run = farm.lab.lbconsole(&["status", "--json"]);
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .is_ok_and(|status| status["health"]["daemon"] == true)
}

fn servers_health(status: &serde_json::Value) -> Vec<String> {
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

/// Every server in: web1 and web2 in rotation, the sorry server web3 waiting.
const ALL: [&str; 3] = ["10.0.1.2:80 1", "10.0.2.2:80 1", "10.0.3.2:80 0"];

/// Three backends checked as `lvs` says by a daemon whose checker runs.
fn checked_farm(name: &str, lvs: &str) -> (Farm, Daemon) {
    let farm = farm(name, 3);
    write_lvs(&farm, lvs);
    let daemon = start_daemon(&farm.lab);
    wait_for_checker(&farm, &daemon);
    wait_for(&farm, &ALL, Duration::from_secs(10));
    (farm, daemon)
}

/// Waits until the daemon's checker runs. The boot apply puts every server in
/// before it starts, so a table with every server says nothing of it: what a
/// test times or waits for after this must not include the daemon's start,
/// which in a fresh, busy VM includes loading the IPVS modules (seen: no table
/// change within 20 s of the start, in a VM where a `status` took 15 s).
fn wait_for_checker(farm: &Farm, daemon: &Daemon) {
    assert!(
        wait_until(Duration::from_secs(90), || checker_runs(farm)),
        "the daemon publishes no health:\n{}",
        daemon.log()
    );
}

/// The line the checker logs when it (re)loads the three-server `LVS`, with
/// `down` servers kept down.
fn checking(down: usize) -> String {
    format!("health: checking 2 of 3 server(s), {down} down")
}

fn write_lvs(farm: &Farm, lvs: &str) {
    let network =
        std::fs::read_to_string(farm.lab.config_dir().join("network.conf")).expect("network.conf");
    farm.lab.write_config(&network, "", lvs);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_killed_backend_leaves_ipvs_comes_back_and_the_sorry_server_is_the_last_resort() {
    let (mut farm, daemon) = checked_farm("health-http", LVS);
    // The daemon's reaction is timed by its log line, which it writes as it
    // changes IPVS: polling a file, not `ipvsadm` runs, each of which takes a
    // while in a slow VM and would be counted against the daemon.
    let web1 = |state: &str| format!("server web1 (10.0.1.2:80) of director web is {state}");
    let lines = |text: &str| daemon.log().matches(text).count();

    let earlier = lines(&web1("down"));
    farm.stop(1);
    let out = daemon.wait_for_lines(&web1("down"), earlier + 1, Duration::from_secs(10));
    wait_for(
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
    let down = format!("{}: ", web1("down"));
    let run = farm.lab.lbconsole(&["events", "--json"]);
    assert!(run.success(), "{run}");
    let listed: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let listed = listed.as_array().expect("an array");
    let newest_health = listed
        .iter()
        .find(|event| event["kind"] == "health")
        .unwrap_or_else(|| panic!("no health event: {listed:?}"));
    let text = newest_health["text"].as_str().expect("a text");
    assert!(
        text.starts_with(&down) && text.len() > down.len(),
        "the event log says web1 went down and why: {text}"
    );
    assert_eq!(newest_health["server"], "web1");
    assert!(
        listed.iter().any(|event| event["kind"] == "apply"),
        "the boot apply is an event too: {listed:?}"
    );

    let earlier = lines(&web1("up"));
    farm.start(1);
    let back = daemon.wait_for_lines(&web1("up"), earlier + 1, Duration::from_secs(10));
    wait_for(&farm, &ALL, Duration::from_secs(10));
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
    wait_for_checker(&farm, &daemon);
    wait_for(&farm, &["10.0.3.2:80 1"], Duration::from_secs(10));
    assert_eq!(farm.fetch(URL, 2), vec!["web3"; 2]);
    let (_, log) = stop_daemon(daemon);
    assert!(log.contains("HTTP status 200, expected 204"), "{log}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn with_inhibit_a_down_server_stays_at_weight_zero_and_a_reload_keeps_it_down() {
    let lvs = LVS.replace("fall 2\n", "fall 2 inhibit\n");
    let (mut farm, daemon) = checked_farm("health-inhibit", &lvs);
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
    // The reload's apply sets the table before the checker reloads: wait for
    // the checker's reload itself, which must carry web1's state over.
    daemon.wait_for_lines(&checking(1), 1, Duration::from_secs(20));
    // Longer than fall × interval: a check task restarted as up would have
    // fallen again by then.
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

/// A backend that misbehaves on `address` and `port`, as `mode` says: `slow`
/// answers 200 after 3 s, `garbage` sends endless bytes that are not HTTP,
/// `reset` resets every connection at once.
const ROGUE: &str = r#"
import socket, struct, sys, threading, time
mode, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind((address, port))
listener.listen(64)
def serve(conn):
    try:
        if mode == "slow":
            time.sleep(3)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
        elif mode == "garbage":
            while True:
                conn.sendall(b"\x00garbage, no status line " * 4096)
        elif mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
    except OSError:
        pass
while True:
    conn, _ = listener.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// Where the rogue listens in web1's namespace while port 80 is diverted to it.
const ROGUE_PORT: u16 = 8080;

/// Sends the new connections to backend `n`'s port 80 to `port` instead, in one
/// nftables transaction: from one packet to the next the checker meets the
/// other server, and never a closed port in between (connections already open
/// stay where they are).
fn divert(farm: &Farm, n: usize, port: u16) {
    farm.backend(n).sh(&format!(
        "nft 'add table ip divert; \
         add chain ip divert prerouting {{ type nat hook prerouting priority dstnat; }}; \
         add rule ip divert prerouting tcp dport 80 redirect to :{port}'"
    ));
}

/// Ends [`divert`]: new connections reach port 80 itself again, at once.
fn undivert(farm: &Farm, n: usize) {
    farm.backend(n).sh("nft delete table ip divert");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn slow_garbage_and_resetting_backends_are_down_and_the_daemon_stays_small() {
    let (farm, daemon) = checked_farm("health-rogue", LVS);
    let without_web1 = ["10.0.2.2:80 1", "10.0.3.2:80 0"];
    let before = resident_kib(daemon.id());
    let down = "server web1 (10.0.1.2:80) of director web is down";
    // The rogue takes web1's place without a gap: were port 80 closed for a
    // moment (a server stopped, the next one not yet listening), the checker
    // could see `Connection refused` fall times and web1 would be down for
    // that reason instead.
    for (round, (mode, reason)) in [
        ("slow", "no answer within 1s"),
        ("garbage", "not an HTTP response"),
        ("reset", "Connection reset by peer"),
    ]
    .into_iter()
    .enumerate()
    {
        let _rogue = farm.backend(1).spawn(&format!(
            "exec python3 -c '{ROGUE}' {mode} 10.0.1.2 {ROGUE_PORT}"
        ));
        assert!(
            wait_until(Duration::from_secs(20), || farm
                .backend(1)
                .listens(ROGUE_PORT)),
            "the {mode} rogue did not start"
        );
        divert(&farm, 1, ROGUE_PORT);
        wait_for(&farm, &without_web1, Duration::from_secs(15));
        daemon.wait_for_lines(down, round + 1, Duration::from_secs(5));
        let log = daemon.log();
        let fell = log.lines().filter(|l| l.contains(down)).nth(round);
        assert!(
            fell.is_some_and(|line| line.contains(&format!("{down}: {reason}"))),
            "{mode}: web1 is not down for `{reason}`:\n{log}"
        );
        assert_eq!(farm.fetch(URL, 2), vec!["web2"; 2], "{mode}");
        // The real server has listened all along.
        undivert(&farm, 1);
        wait_for(&farm, &ALL, Duration::from_secs(15));
    }
    let after = resident_kib(daemon.id());
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert_eq!(log.matches(down).count(), 3, "{log}");
    assert!(
        after < before + 4096,
        "the daemon grew from {before} KiB to {after} KiB"
    );
    eprintln!("health: resident {before} KiB before, {after} KiB after");
}

/// Holds two keep-alive connections to the VIP and, once `go` exists, sends a
/// second request on each; prints `server port` per answer into `out`.
const KEEP_ALIVE_CLIENT: &str = r#"
import http.client, os, sys, time
go, out = sys.argv[1], sys.argv[2]
conns = [http.client.HTTPConnection("198.51.100.10", 80, timeout=5) for _ in range(2)]
def ask(c):
    c.request("GET", "/")
    body = c.getresponse().read().decode()
    return "%s %d" % (body, c.sock.getsockname()[1])
first = [ask(c) for c in conns]
open(out + ".tmp", "w").write("\n".join(first) + "\n")
os.rename(out + ".tmp", out)
while not os.path.exists(go):
    time.sleep(0.1)
second = [ask(c) for c in conns]
open(out + ".tmp", "w").write("\n".join(first + second) + "\n")
os.rename(out + ".tmp", out)
"#;

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn with_inhibit_an_established_connection_to_a_down_server_goes_on() {
    let farm = farm("health-keep", 2);
    // The check is on port 81, so that it can fail while port 80 serves.
    let checked = |n: usize| {
        farm.backend(n).spawn(&format!(
            "exec python3 -c 'import socket\ns = socket.create_server((\"10.0.{n}.2\", 81))\nwhile True: s.accept()[0].close()'"
        ))
    };
    let check_web1 = checked(1);
    let _check_web2 = checked(2);
    // Listening before the daemon starts: python starts slowly in the VM, and
    // fall refused checks would take a server out before the test begins.
    for n in 1..=2 {
        assert!(
            wait_until(Duration::from_secs(20), || farm.backend(n).listens(81)),
            "web{n}'s check port did not open"
        );
    }
    write_lvs(
        &farm,
        "director web 198.51.100.10:80 TCP\n\
         balance roundrobin\n\
         check interval 1 timeout 1 port 81 fall 2 inhibit\n\
         option tcpcheck\n\
         server web1 10.0.1.2:80 check\n\
         server web2 10.0.2.2:80 check\n",
    );
    let daemon = start_daemon(&farm.lab);
    wait_for_checker(&farm, &daemon);
    wait_for(
        &farm,
        &["10.0.1.2:80 1", "10.0.2.2:80 1"],
        Duration::from_secs(10),
    );
    let go = farm.lab.state_dir().join("go");
    let out = farm.lab.state_dir().join("answers");
    let _client = farm.client.spawn(&format!(
        "exec python3 -c '{KEEP_ALIVE_CLIENT}' {} {}",
        go.display(),
        out.display()
    ));
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    // Python starts slowly in a busy VM.
    assert!(wait_until(Duration::from_secs(20), || read()
        .lines()
        .count()
        == 2));
    let mut first: Vec<String> = read().lines().map(str::to_owned).collect();
    first.sort();
    assert!(
        first[0].starts_with("web1 ") && first[1].starts_with("web2 "),
        "round robin gives one connection to each: {first:?}"
    );

    drop(check_web1);
    wait_for(
        &farm,
        &["10.0.1.2:80 0", "10.0.2.2:80 1"],
        Duration::from_secs(10),
    );
    assert_eq!(
        farm.fetch(URL, 2),
        vec!["web2"; 2],
        "no new connection to web1"
    );
    std::fs::write(&go, "").expect("go");
    assert!(wait_until(Duration::from_secs(20), || read()
        .lines()
        .count()
        == 4));
    let answers: Vec<String> = read().lines().map(str::to_owned).collect();
    let mut second = answers[2..].to_vec();
    second.sort();
    assert_eq!(
        second, first,
        "each connection answered by the same server on the same port"
    );
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_apply_while_a_server_is_down_leaves_it_out_and_keeps_the_others_state() {
    let (mut farm, daemon) = checked_farm("health-apply", LVS);
    farm.stop(1);
    wait_for(
        &farm,
        &["10.0.2.2:80 1", "10.0.3.2:80 0"],
        Duration::from_secs(10),
    );

    // web2's weight changes by `lbconsole apply`, not by a signal: the apply
    // must not put web1 back, and the daemon's reload must keep it down.
    write_lvs(
        &farm,
        &LVS.replace("10.0.2.2:80 check", "10.0.2.2:80 weight 3 check"),
    );
    let run = farm.lab.lbconsole(&["apply"]);
    assert!(run.success(), "{run}");
    assert!(!run.stdout.contains("10.0.1.2"), "{}", run.stdout);
    let changed = ["10.0.2.2:80 3", "10.0.3.2:80 0"];
    assert_eq!(real_servers(&farm), changed, "right after the apply");
    // The daemon reloads the checker at its next tick after the apply: wait for
    // that reload rather than for a time, then give a check task restarted in
    // the wrong state longer than fall × interval to show it.
    daemon.wait_for_lines(&checking(1), 1, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(real_servers(&farm), changed, "after the daemon reloaded");
    assert_eq!(published_health(&farm), ["web1 down", "web2 up", "web3 up"]);

    farm.start(1);
    wait_for(
        &farm,
        &["10.0.1.2:80 1", "10.0.2.2:80 3", "10.0.3.2:80 0"],
        Duration::from_secs(10),
    );
    let (_, log) = stop_daemon(daemon);
    for (line, count) in [
        ("server web1 (10.0.1.2:80) of director web is down", 1),
        ("server web2 (10.0.2.2:80) of director web is down", 0),
    ] {
        assert_eq!(log.matches(line).count(), count, "`{line}` in:\n{log}");
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn arpcheck_takes_out_a_server_whose_link_is_gone_and_brings_it_back() {
    let farm = farm("health-arp", 2);
    write_lvs(
        &farm,
        "director web 198.51.100.10:80 TCP\n\
         balance roundrobin\n\
         check interval 1 timeout 1\n\
         option arpcheck\n\
         server web1 10.0.1.2:80 check\n\
         server web2 10.0.2.2:80 check\n",
    );
    let daemon = start_daemon(&farm.lab);
    let both = ["10.0.1.2:80 1", "10.0.2.2:80 1"];
    wait_for_checker(&farm, &daemon);
    wait_for(&farm, &both, Duration::from_secs(10));
    // Without its address web1 answers no who-has, though its link is up.
    farm.backend(1)
        .ip(&["addr", "del", "10.0.1.2/24", "dev", "b1"]);
    wait_for(&farm, &["10.0.2.2:80 1"], Duration::from_secs(10));
    farm.backend(1)
        .ip(&["addr", "add", "10.0.1.2/24", "dev", "b1"]);
    wait_for(&farm, &both, Duration::from_secs(10));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains("server web1 (10.0.1.2:80) of director web is down: no answer within 1s"),
        "{log}"
    );
}
