//! The whole product over both families on the real kernel, through the real
//! binary: `lbconsole apply` of a network.conf, lvs.conf and flows.conf that
//! hold IPv4 and IPv6 side by side, and `lbconsole daemon` checking IPv6
//! servers. The appliance (the test's namespace) runs duplicate address
//! detection on the addresses the product adds, as a real one does; only the
//! client's and backends' namespaces skip it.
//!
//! The farm: a client on eth1 (198.51.100.2, 2001:db8::2), backends web1 and
//! web2 on eth2 and eth3 (10.0.N.2 and 2001:db8:N::2), each serving both
//! families on one dual-stack socket, and routing back through the appliance as
//! NAT needs.

use std::time::{Duration, Instant};

use crate::apply_lvs::{ipvsadm_table, tally};
use crate::daemon::{Daemon, start_daemon, stop_daemon};
use crate::ipvs6::{Server, fetch, netns6, serve};
use crate::support::{Lab, Netns, wait_until};

const NAMES: [&str; 2] = ["web1", "web2"];

const NETWORK: &str = "\
service network eth1
    ip address 198.51.100.1/24
    ip address 198.51.100.10/24
    ip address 2001:db8::1/64
    ip address 2001:db8::10/64
service network eth2
    ip address 10.0.1.1/24
    ip address 2001:db8:1::1/64
service network eth3
    ip address 10.0.2.1/24
    ip address 2001:db8:2::1/64
";

struct Farm {
    lab: Lab,
    client: Netns,
    backends: Vec<Netns>,
    /// Each backend's server; `None` while stopped.
    servers: Vec<Option<Server>>,
}

fn farm(name: &str) -> Farm {
    let lab = Lab::new(name);
    // `Lab::new` turns DAD off in the test's namespace; the appliance here
    // runs it, on the links created from now on.
    for conf in ["all", "default"] {
        lab.sysctl(&format!("net/ipv6/conf/{conf}/accept_dad"), "1");
    }
    lab.sysctl("net/ipv4/ip_forward", "1");
    lab.sysctl("net/ipv6/conf/all/forwarding", "1");
    let client = netns6(&lab, "client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "198.51.100.2/24", "dev", "c1"]);
    client.ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "c1", "nodad"]);
    client.ip(&["route", "add", "default", "via", "198.51.100.1"]);
    client.ip(&["-6", "route", "add", "default", "via", "2001:db8::1"]);
    let mut backends = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=2 {
        let backend = netns6(&lab, NAMES[n - 1]);
        let peer = format!("b{n}");
        lab.veth(&format!("eth{}", n + 1), &peer, &backend);
        backend.ip(&["addr", "add", &format!("10.0.{n}.2/24"), "dev", &peer]);
        let six = format!("2001:db8:{n}::2/64");
        backend.ip(&["-6", "addr", "add", &six, "dev", &peer, "nodad"]);
        backend.ip(&["route", "add", "default", "via", &format!("10.0.{n}.1")]);
        let director = format!("2001:db8:{n}::1");
        backend.ip(&["-6", "route", "add", "default", "via", &director]);
        servers.push(Some(serve(&backend, NAMES[n - 1])));
        backends.push(backend);
    }
    Farm {
        lab,
        client,
        backends,
        servers,
    }
}

impl Farm {
    fn stop(&mut self, n: usize) {
        self.servers[n - 1] = None;
    }

    fn start(&mut self, n: usize) {
        self.servers[n - 1] = Some(serve(&self.backends[n - 1], NAMES[n - 1]));
    }

    /// The real servers of the service whose `ipvsadm -Ln` line starts with
    /// `service`, as `address weight`.
    fn real_servers(&self, service: &str) -> Vec<String> {
        ipvsadm_table(&self.lab)
            .into_iter()
            .find(|lines| lines[0].starts_with(service))
            .map(|lines| {
                lines[1..]
                    .iter()
                    .map(|line| {
                        let words: Vec<&str> = line.split(' ').collect();
                        format!("{} {}", words[1], words[3])
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `service` has exactly the real servers `expected`.
    #[track_caller]
    fn wait_for(&self, service: &str, expected: &[&str], within: Duration) {
        let reached = wait_until(within, || self.real_servers(service) == expected);
        assert!(
            reached,
            "{service} did not reach {expected:?} within {within:?}: {:?}",
            self.real_servers(service)
        );
    }
}

/// Every IPv6 address the product added to `dev` has passed DAD: none left
/// tentative or failed, and none added `nodad`.
fn dad_done(lab: &Lab, dev: &str) -> String {
    let shown = lab.ip(&["-6", "addr", "show", "dev", dev, "scope", "global"]);
    for flag in ["tentative", "dadfailed", "nodad"] {
        assert!(!shown.contains(flag), "{dev}: {flag}\n{shown}");
    }
    shown
}

const DUAL_LVS: &str = "\
director web4 198.51.100.10:80 TCP
    balance roundrobin
    mode nat
    server web1 10.0.1.2:80 weight 3
    server web2 10.0.2.2:80 weight 1
director web6 [2001:db8::10]:80 TCP
    balance roundrobin
    mode nat
    server web1 [2001:db8:1::2]:80 weight 3
    server web2 [2001:db8:2::2]:80 weight 1
director flowed6
    balance roundrobin
    mode nat
    server web1 2001:db8:1::2
    server web2 2001:db8:2::2
";

const DUAL_FLOWS: &str = "\
flow to-flowed6 director flowed6
    match proto tcp dst 2001:db8:20::/64 dstport 80
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn one_apply_serves_an_ipv4_and_an_ipv6_vip_at_once_and_a_flow_directs_an_ipv6_range() {
    let start = Instant::now();
    let farm = farm("dual");
    let lab = &farm.lab;
    // The range the flow directs is routed to the appliance, which takes it
    // as its own (as the IPv4 flows test sends to one of its addresses):
    // IPVS sees a packet only on its way in to a local socket.
    lab.ip(&[
        "-6",
        "route",
        "add",
        "local",
        "2001:db8:20::/64",
        "dev",
        "lo",
    ]);
    lab.write_config(NETWORK, DUAL_FLOWS, DUAL_LVS);
    let applying = Instant::now();
    let run = lab.lbconsole(&["apply"]);
    let applied = applying.elapsed();
    assert!(run.success(), "apply: {run}");
    for step in [
        "add address 2001:db8::10/64 to eth1",
        "add address 2001:db8:2::1/64 to eth3",
        "add service tcp 198.51.100.10:80 (scheduler wrr) with 2 real server(s)",
        "add service tcp [2001:db8::10]:80 (scheduler wrr) with 2 real server(s)",
        "add service fwmark",
        "install nftables table inet lbconsole",
    ] {
        assert!(run.stdout.contains(step), "no `{step}` in:\n{}", run.stdout);
    }
    let eth1 = dad_done(lab, "eth1");
    assert!(eth1.contains("2001:db8::10/64"), "{eth1}");
    for dev in ["eth2", "eth3"] {
        dad_done(lab, dev);
    }
    let table = ipvsadm_table(lab);
    assert!(
        table.iter().any(|service| service[0].starts_with("FWM ")
            && service[0].contains(" IPv6 ")
            && service[1..]
                == [
                    "-> [2001:db8:1::2]:0 Masq 1 0 0",
                    "-> [2001:db8:2::2]:0 Masq 1 0 0"
                ]),
        "{table:?}"
    );

    // Both VIPs at once: 20 new connections to each, from two client threads.
    let (four, six) = std::thread::scope(|scope| {
        let four = scope.spawn(|| fetch(&farm.client, "198.51.100.10:80", 20));
        let six = scope.spawn(|| fetch(&farm.client, "[2001:db8::10]:80", 20));
        (
            four.join().expect("the IPv4 client"),
            six.join().expect("the IPv6 client"),
        )
    });
    for (family, answers) in [("IPv4", &four), ("IPv6", &six)] {
        let counts = tally(answers);
        assert_eq!(
            (counts.get("web1"), counts.get("web2")),
            (Some(&15), Some(&5)),
            "{family}: every connection answered, split 3:1: {answers:?}"
        );
    }

    // The flow: addresses of the range reach flowed6's servers, in turn.
    let mut flowed = fetch(&farm.client, "[2001:db8:20::80]:80", 2);
    flowed.extend(fetch(&farm.client, "[2001:db8:20::ffff]:80", 2));
    let counts = tally(&flowed);
    assert_eq!(
        (counts.get("web1"), counts.get("web2")),
        (Some(&2), Some(&2)),
        "{flowed:?}"
    );

    let status = lab.lbconsole(&["status"]).expect_success();
    for dev in ["eth1", "eth2", "eth3"] {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/accept_ra");
        let accept_ra = std::fs::read_to_string(&path).expect("accept_ra");
        let shown = format!("accept_ra {}", accept_ra.trim());
        assert!(
            status
                .lines()
                .any(|l| l.trim_start().starts_with(dev) && l.ends_with(&shown)),
            "{dev}: no `{shown}` in:\n{status}"
        );
    }
    let service = |director: &str, key: &str| {
        status
            .lines()
            .any(|l| l.trim_start().starts_with(&format!("{director} ")) && l.contains(key))
    };
    assert!(service("web6", "tcp [2001:db8::10]:80  wrr"), "{status}");
    assert!(service("web4", "tcp 198.51.100.10:80  wrr"), "{status}");
    assert!(service("flowed6", " IPv6  wrr"), "{status}");
    assert!(status.contains("-> [2001:db8:1::2]:80 "), "{status}");
    assert_eq!(lab.lbconsole(&["apply"]).expect_success(), "no changes\n");
    eprintln!(
        "dual_stack: apply {applied:?} (DAD included), whole test {:?}",
        start.elapsed()
    );
}

/// web6 checked over HTTP, near6 (same VIP, another port) by neighbour
/// solicitation, both over IPv6 and every second.
const CHECKED_LVS: &str = "\
director web6 [2001:db8::10]:80 TCP
    balance roundrobin
    check interval 1 timeout 1 rise 2 fall 2
    option httpcheck uri / statuscode 200
    server web1 [2001:db8:1::2]:80 check
    server web2 [2001:db8:2::2]:80 check
director near6 [2001:db8::10]:8080 TCP
    balance roundrobin
    check interval 1 timeout 1 rise 2 fall 2
    option arpcheck
    server web1 [2001:db8:1::2]:80 check
    server web2 [2001:db8:2::2]:80 check
";

const WEB6: &str = "TCP [2001:db8::10]:80 ";
const NEAR6: &str = "TCP [2001:db8::10]:8080 ";
const BOTH: [&str; 2] = ["[2001:db8:1::2]:80 1", "[2001:db8:2::2]:80 1"];

/// Waits until the daemon publishes health: its checker runs (the boot apply
/// fills IPVS before that, which tells nothing of the checker).
fn wait_for_checker(lab: &Lab, daemon: &Daemon) {
    let runs = || {
        let run = lab.lbconsole(&["status", "--json"]);
        serde_json::from_str::<serde_json::Value>(&run.stdout)
            .is_ok_and(|status| status["health"]["daemon"] == true)
    };
    assert!(
        wait_until(Duration::from_secs(90), runs),
        "the daemon publishes no health:\n{}",
        daemon.log()
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn the_daemon_takes_out_a_killed_ipv6_backend_and_one_whose_link_is_gone() {
    let start = Instant::now();
    let mut farm = farm("dual-health");
    farm.lab.write_config(NETWORK, "", CHECKED_LVS);
    let daemon = start_daemon(&farm.lab);
    daemon.wait_for_lines("boot apply: applied", 1, Duration::from_secs(60));
    wait_for_checker(&farm.lab, &daemon);
    farm.wait_for(WEB6, &BOTH, Duration::from_secs(10));
    farm.wait_for(NEAR6, &BOTH, Duration::from_secs(10));
    let line = |director: &str, n: usize, state: &str| {
        format!("server web{n} ([2001:db8:{n}::2]:80) of director {director} is {state}")
    };
    let lines = |text: &str| daemon.log().matches(text).count();

    // web1's service killed: out of web6 within fall × interval (+1 interval
    // until the first failed check), timed by the daemon's log line; its
    // stack still answers solicitations, so near6 keeps it.
    let earlier = lines(&line("web6", 1, "down"));
    farm.stop(1);
    let out = daemon.wait_for_lines(
        &line("web6", 1, "down"),
        earlier + 1,
        Duration::from_secs(10),
    );
    farm.wait_for(WEB6, &BOTH[1..], Duration::from_secs(10));
    assert!(out <= Duration::from_secs(4), "out after {out:?}");
    assert_eq!(fetch(&farm.client, "[2001:db8::10]:80", 4), ["web2"; 4]);
    assert_eq!(farm.real_servers(NEAR6), BOTH);

    let earlier = lines(&line("web6", 1, "up"));
    farm.start(1);
    let back = daemon.wait_for_lines(&line("web6", 1, "up"), earlier + 1, Duration::from_secs(10));
    farm.wait_for(WEB6, &BOTH, Duration::from_secs(10));
    assert!(back <= Duration::from_secs(4), "back after {back:?}");

    // web2's link gone: no advertisement answers near6's solicitations.
    let earlier = lines(&line("near6", 2, "down"));
    farm.backends[1].ip(&["link", "set", "b2", "down"]);
    let gone = daemon.wait_for_lines(
        &line("near6", 2, "down"),
        earlier + 1,
        Duration::from_secs(10),
    );
    farm.wait_for(NEAR6, &BOTH[..1], Duration::from_secs(10));
    assert!(gone <= Duration::from_secs(4), "gone after {gone:?}");
    // Down, the link lost its IPv6 address: back as after a reboot.
    farm.backends[1].ip(&["link", "set", "b2", "up"]);
    farm.backends[1].ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:2::2/64",
        "dev",
        "b2",
        "nodad",
    ]);
    farm.backends[1].ip(&["-6", "route", "replace", "default", "via", "2001:db8:2::1"]);
    farm.wait_for(NEAR6, &BOTH, Duration::from_secs(15));
    farm.wait_for(WEB6, &BOTH, Duration::from_secs(15));

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.contains(&format!(
            "{}: no answer within 1s",
            line("near6", 2, "down")
        )),
        "{log}"
    );
    assert_eq!(log.matches(&line("near6", 1, "down")).count(), 0, "{log}");
    eprintln!(
        "dual_stack health: out after {out:?}, back after {back:?}, link gone after {gone:?}; \
         whole test {:?}",
        start.elapsed()
    );
}
