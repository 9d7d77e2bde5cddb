//! The Flows tab over IPv6 on the real kernel, asserted by traffic: a permit
//! for one IPv6 address and port beside one for IPv4 and a `deny` for the rest,
//! in one table (dual stack); ICMPv6 echo permitted by its type; neighbour
//! discovery alive behind the deny; an outflow whose IPv6 replies leave through
//! a second gateway by an `ip -6 rule fwmark`; counters counting IPv6 packets.
//!
//! `lbconsole apply` does not put IPv6 addresses or routes on links yet (the
//! network engine is IPv4 only on this branch), so the tests add them with
//! `ip -6`; the flows themselves go through the product.
//!
//! Time: the VM starts a Python or lbconsole process in seconds, so probes go
//! in batches (one process, one thread per connection) and counters are read
//! once per step.

use std::time::Duration;

use crate::support::{Lab, Netns, wait_until};

/// Answers every TCP connection on each port given, with NAME, then closes
/// it; on `::` over IPv4 too.
const SERVER: &str = r#"
import socket, sys, threading
name, address = sys.argv[1], sys.argv[2]
def tcp(s):
    while True:
        c, _ = s.accept()
        c.sendall(name.encode())
        c.close()
# Every port listens before any answers, so one that answers (what the tests
# wait for) means all of them do.
listening = [
    socket.create_server((address, int(port)), family=socket.AF_INET6, dualstack_ipv6=address == "::")
    for port in sys.argv[3:]
]
for s in listening:
    threading.Thread(target=tcp, args=(s,), daemon=True).start()
threading.Event().wait()
"#;

/// Connects to each `HOST,PORT[,SOURCE]` at once and prints one line per
/// target, in order: the answer, or `-` when none came within 2 s.
const PROBE: &str = r#"
import socket, sys, threading
targets = [arg.split(",") for arg in sys.argv[1:]]
answers = ["-"] * len(targets)
def ask(i, host, port, source=None):
    try:
        s = socket.create_connection((host, int(port)), timeout=2, source_address=(source, 0) if source else None)
        answers[i] = s.recv(64).decode() or "-"
    except OSError:
        pass
threads = [threading.Thread(target=ask, args=(i, *t)) for i, t in enumerate(targets)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("\n".join(answers))
"#;

fn python(script: &str) -> String {
    format!("exec python3 -c '{}'", script.replace('\'', "\""))
}

/// What each `HOST,PORT[,SOURCE]` answered a connection from `netns`: the
/// server's name, or `None`.
fn ask(netns: &Netns, targets: &[&str]) -> Vec<Option<String>> {
    let out = netns.sh(&format!("{} {}", python(PROBE), targets.join(" ")));
    let answers: Vec<Option<String>> = out
        .lines()
        .map(|line| (line != "-").then(|| line.to_owned()))
        .collect();
    assert_eq!(answers.len(), targets.len(), "{out}");
    answers
}

fn apply(lab: &Lab) -> String {
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "apply: {run}");
    run.stdout
}

/// The packets each rule of each flow has counted, as (flow, rule, packets),
/// from one `status --json`.
fn counters(lab: &Lab) -> Vec<(String, u64, u64)> {
    let status: serde_json::Value =
        serde_json::from_str(&lab.lbconsole(&["status", "--json"]).expect_success())
            .expect("status JSON");
    status["flows"]["counters"]
        .as_array()
        .expect("counters")
        .iter()
        .filter_map(|c| {
            Some((
                c["flow"].as_str()?.to_owned(),
                c["rule"].as_u64()?,
                c["packets"].as_u64()?,
            ))
        })
        .collect()
}

fn packets(counters: &[(String, u64, u64)], flow: &str, rule: u64) -> u64 {
    counters
        .iter()
        .find(|(name, index, _)| name == flow && *index == rule)
        .map(|(_, _, packets)| *packets)
        .unwrap_or_else(|| panic!("no counter for {flow} rule {rule}: {counters:?}"))
}

/// Waits until each (flow, rule) has counted at least one packet since the
/// table was installed (a packet sent is counted once the appliance's softirq
/// has run, which a busy VM may delay).
fn counted(lab: &Lab, rules: &[(&str, u64)]) -> Vec<(String, u64, u64)> {
    let mut last = Vec::new();
    let seen = wait_until(Duration::from_secs(10), || {
        last = counters(lab);
        rules
            .iter()
            .all(|(flow, rule)| packets(&last, flow, *rule) >= 1)
    });
    assert!(seen, "{rules:?} counted nothing: {last:?}");
    last
}

fn ipv6_on(lab: &Lab, peers: &[&Netns]) {
    lab.sysctl("net/ipv6/conf/all/disable_ipv6", "0");
    for peer in peers {
        peer.sh("echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; \
             echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad");
    }
}

fn add6(lab: &Lab, address: &str, dev: &str) {
    lab.ip(&["-6", "addr", "add", address, "dev", dev, "nodad"]);
}

const DUAL_FLOWS: &str = "\
flow web6 permit
    match proto tcp dst 2001:db8::10 dstport 80
flow web4 permit
    match proto tcp dst 192.168.0.1 dstport 80
flow ping6 permit
    match proto icmpv6 icmptype echo-request
flow rest deny
    match
";

/// No ICMPv6 flow; the deny spares IPv4's ICMP, and so only IPv4's.
const PING4_FLOWS: &str = "\
flow web6 permit
    match proto tcp dst 2001:db8::10 dstport 80
flow rest deny
    match not proto icmp
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn ipv6_flows_permit_one_port_deny_the_rest_and_keep_neighbour_discovery() {
    let lab = Lab::new("flows6");
    let client = lab.netns("client6");
    ipv6_on(&lab, &[&client]);
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "192.168.0.50/24", "dev", "c1"]);
    client.ip(&["-6", "addr", "add", "2001:db8::50/64", "dev", "c1", "nodad"]);
    // No network.conf: eth1 is not lbconsole's, and flows alone are applied.
    lab.ip(&["addr", "add", "192.168.0.1/24", "dev", "eth1"]);
    lab.ip(&["link", "set", "eth1", "up"]);
    add6(&lab, "2001:db8::1/64", "eth1");
    add6(&lab, "2001:db8::10/64", "eth1");
    let _server = lab.spawn(&format!("{} appliance :: 80 8080", python(SERVER)));
    assert!(
        wait_until(Duration::from_secs(20), || {
            ask(&client, &["2001:db8::10,8080", "192.168.0.1,8080"])
                .iter()
                .all(Option::is_some)
        }),
        "the server did not come up"
    );

    lab.write_config("", DUAL_FLOWS, "");
    let plan = apply(&lab);
    assert!(
        plan.contains("install nftables table inet lbconsole"),
        "{plan}"
    );
    let appliance = Some("appliance".to_owned());
    // IPv6: the permitted address and port answer; another port, or the same
    // port of another address, falls to the deny. IPv4, judged in the same
    // table, alike.
    assert_eq!(
        ask(
            &client,
            &[
                "2001:db8::10,80",
                "2001:db8::10,8080",
                "2001:db8::1,80",
                "192.168.0.1,80",
                "192.168.0.1,8080",
            ]
        ),
        [appliance.clone(), None, None, appliance.clone(), None]
    );
    // ICMPv6 echo requests are permitted by type; the rule is IPv6's alone,
    // so an IPv4 echo request is denied.
    assert!(lab.ping(Some(&client), "2001:db8::10"));
    assert!(!lab.ping(Some(&client), "192.168.0.1"));
    // Each rule counted its IPv6 packets (the table is new: from zero).
    counted(&lab, &[("web6", 1), ("web4", 1), ("ping6", 1), ("rest", 1)]);

    // Neighbour discovery behind the deny: both sides forget each other, and
    // the next connection has to solicit and be advertised to again.
    client.ip(&["-6", "neigh", "flush", "dev", "c1"]);
    lab.ip(&["-6", "neigh", "flush", "dev", "eth1"]);
    let resolved = |netns: Option<&Netns>| {
        let args = ["-6", "neigh", "show", "dev"];
        let shown = match netns {
            Some(client) => client.ip(&[&args[..], &["c1"]].concat()),
            None => lab.ip(&[&args[..], &["eth1"]].concat()),
        };
        shown.contains(" lladdr ")
    };
    assert!(!resolved(Some(&client)) && !resolved(None));
    assert_eq!(ask(&client, &["2001:db8::10,80"]), [appliance]);
    assert!(resolved(Some(&client)) && resolved(None));

    // Without the ICMPv6 flow, the deny takes ICMPv6 echo requests too: they
    // are `not proto icmp`, which is no family's.
    lab.write_config("", PING4_FLOWS, "");
    apply(&lab);
    assert!(!lab.ping(Some(&client), "2001:db8::10"));
    assert!(lab.ping(Some(&client), "192.168.0.1"));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_ipv6_outflow_to_table_200_sends_replies_through_the_second_gateway() {
    let lab = Lab::new("flows6-out");
    // gw1: the main uplink; gw2: the second uplink, whose network
    // 2001:db8:5::/64 only gw2 reaches.
    let gw1 = lab.netns("gw1");
    let gw2 = lab.netns("gw2");
    ipv6_on(&lab, &[&gw1, &gw2]);
    lab.veth("eth1", "g2", &gw2);
    lab.veth("eth2", "g1", &gw1);
    gw1.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:9::1/64",
        "dev",
        "g1",
        "nodad",
    ]);
    gw2.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:161::1/64",
        "dev",
        "g2",
        "nodad",
    ]);
    gw2.ip(&["-6", "addr", "add", "2001:db8:5::5/128", "dev", "lo"]);
    // The product owns the addresses of the interfaces network.conf names, so
    // the IPv6 side is written there too: an address added by hand would be
    // taken away by the next apply.
    let network = "\
service network eth1
    ip address 192.168.161.10/24
    ip address 2001:db8:161::10/64
    ip route default 192.168.161.1 table 200
    ip route default 2001:db8:161::1 table 200
service network eth2
    ip address 10.9.0.10/24
    ip address 2001:db8:9::10/64
    ip route default 2001:db8:9::1
";
    lab.write_config(network, "", "");
    apply(&lab);
    let _server = lab.spawn(&format!("{} appliance 2001:db8:161::10 80", python(SERVER)));
    let appliance = Some("appliance".to_owned());
    // From gw2's own address the server answers; from 2001:db8:5::5, without
    // the outflow, the reply follows the main table to gw1 and is lost.
    let (direct, far) = ("2001:db8:161::10,80", "2001:db8:161::10,80,2001:db8:5::5");
    let mut answers = Vec::new();
    assert!(
        wait_until(Duration::from_secs(20), || {
            answers = ask(&gw2, &[direct, far]);
            answers[0].is_some()
        }),
        "the server did not come up"
    );
    assert_eq!(answers, [appliance.clone(), None]);

    lab.write_config(
        network,
        "outflow return-eth1 table 200\n    match proto tcp src 2001:db8:161::/64 srcport 80\n",
        "",
    );
    let plan = apply(&lab);
    assert!(
        plan.contains("add -6 rule fwmark 0x200c8 lookup 200 priority 1000"),
        "{plan}"
    );
    assert_eq!(ask(&gw2, &[far]), [appliance]);
    counted(&lab, &[("return-eth1", 1)]);
    let rules = lab.ip(&["-6", "rule", "show"]);
    assert!(
        rules.contains("fwmark 0x200c8 lookup 200 proto 202"),
        "{rules}"
    );

    // Taking the outflow away takes its rules with it, in both families.
    lab.write_config(network, "", "");
    apply(&lab);
    assert!(!lab.ip(&["-6", "rule", "show"]).contains("0x200c8"));
    assert!(!lab.ip(&["rule", "show"]).contains("0x200c8"));
}
