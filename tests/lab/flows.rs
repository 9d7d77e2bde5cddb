//! `lbconsole apply` for the Flows tab on the real kernel, asserted by traffic:
//! the reference's examples (ssh only from the local network, DNS over UDP,
//! ping with `icmptype 0`, mail ports through one director, an outflow sending
//! replies through a second gateway), `alltherest deny` and a `skip` flow.

use std::process::Command;
use std::time::Duration;

use crate::support::{Background, Lab, Netns, Run, assert_same_kernel, wait_until};

/// Answers with NAME on every PROTO/PORT given: a TCP connection gets the name
/// and is closed; a UDP datagram gets the name back.
const SERVER: &str = r#"
import socket, sys, threading
name, address = sys.argv[1], sys.argv[2]
def tcp(s):
    while True:
        c, _ = s.accept()
        c.sendall(name.encode())
        c.close()
def udp(s):
    while True:
        _, peer = s.recvfrom(512)
        s.sendto(name.encode(), peer)
# Every port is bound before any answers, so one port that answers (what the
# tests wait for) means all of them are open.
serving = []
for spec in sys.argv[3:]:
    proto, port = spec.split("/")
    if proto == "tcp":
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, int(port)))
        s.listen(64)
        serving.append((tcp, s))
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, int(port)))
        serving.append((udp, s))
for serve, s in serving:
    threading.Thread(target=serve, args=(s,), daemon=True).start()
threading.Event().wait()
"#;

/// Asks PROTO HOST PORT [SOURCE] and prints the answer; exit 1 when none comes.
const PROBE: &str = r#"
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = (sys.argv[4], 0) if len(sys.argv) > 4 else None
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=2, source_address=source)
        print(s.recv(64).decode())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(2)
        if source:
            s.bind(source)
        s.sendto(b"?", (host, port))
        print(s.recvfrom(64)[0].decode())
except OSError as e:
    print(f"no answer ({e})")
    sys.exit(1)
"#;

/// Sends one ICMP message of TYPE (code 0, no payload) to HOST from a raw socket:
/// an echo reply nobody asked for, say.
const ICMP: &str = r#"
import socket, struct, sys
kind, host = int(sys.argv[1]), sys.argv[2]
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    total = (total >> 16) + (total & 0xffff)
    return ~(total + (total >> 16)) & 0xffff
header = struct.pack("!BBHHH", kind, 0, 0, 0x4242, 1)
packet = struct.pack("!BBHHH", kind, 0, checksum(header), 0x4242, 1)
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).sendto(packet, (host, 0))
"#;

fn python(script: &str) -> String {
    format!("exec python3 -c '{}'", script.replace('\'', "\""))
}

fn serve(netns: Option<&Netns>, lab: &Lab, name: &str, address: &str, ports: &str) -> Background {
    let script = format!("{} {name} {address} {ports}", python(SERVER));
    match netns {
        Some(netns) => netns.spawn(&script),
        None => lab.spawn(&script),
    }
}

/// The answer to one probe, or `None` when nothing came back.
fn ask(run: Run) -> Option<String> {
    run.success().then(|| run.stdout.trim().to_owned())
}

fn probe_args(proto: &str, host: &str, port: u16, source: Option<&str>) -> String {
    format!(
        "{} {proto} {host} {port} {}",
        python(PROBE),
        source.unwrap_or("")
    )
}

fn from(netns: &Netns, proto: &str, host: &str, port: u16) -> Option<String> {
    ask(netns.try_sh(&probe_args(proto, host, port, None)))
}

fn from_appliance(lab: &Lab, proto: &str, host: &str, port: u16) -> Option<String> {
    ask(lab.try_sh(&probe_args(proto, host, port, None)))
}

fn apply(lab: &Lab) -> String {
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "apply: {run}");
    run.stdout
}

/// The packets a flow (`rule` None) or one of its rules has counted, from
/// `status --json`.
fn packets(lab: &Lab, flow: &str, rule: Option<u64>) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&lab.lbconsole(&["status", "--json"]).expect_success())
            .expect("status JSON");
    status["flows"]["counters"]
        .as_array()
        .expect("counters")
        .iter()
        .find(|c| c["flow"] == flow && c["rule"].as_u64() == rule)
        .and_then(|c| c["packets"].as_u64())
        .unwrap_or_else(|| panic!("no counter for {flow} {rule:?}: {status:#}"))
}

const SEED_FLOWS: &str = "\
# Left out: were it a permit, ssh would be open to all; were it a deny, to none.
flow disabled skip
    match proto tcp dst 192.168.0.1 dstport 22
flow ssh permit
    ignore not src 192.168.0.0/24
    match proto tcp dst 192.168.0.1 dstport 22
flow dns permit
    match proto udp dst 192.168.0.1 dstport 53
flow ping permit
    match proto icmp dst 192.168.0.1 icmptype 0
    ignore not src 192.168.0.0/24
    match proto icmp dst 192.168.0.1
flow alltherest deny
    match
";

/// The appliance (the test's namespace) between a client on its own network
/// (`inside`, 192.168.0.50 on eth1) and one from elsewhere (`outside`,
/// 203.0.113.50 on eth2), serving ssh, DNS and two other ports itself.
struct Edge {
    lab: Lab,
    inside: Netns,
    outside: Netns,
    _servers: Vec<Background>,
}

fn edge(name: &str) -> Edge {
    let lab = Lab::new(name);
    let inside = lab.netns("inside");
    let outside = lab.netns("outside");
    lab.veth("eth1", "i1", &inside);
    lab.veth("eth2", "o1", &outside);
    inside.ip(&["addr", "add", "192.168.0.50/24", "dev", "i1"]);
    inside.ip(&["route", "add", "default", "via", "192.168.0.1"]);
    outside.ip(&["addr", "add", "203.0.113.50/24", "dev", "o1"]);
    outside.ip(&["route", "add", "default", "via", "203.0.113.1"]);
    lab.write_config(
        "service network eth1\n    ip address 192.168.0.1/24\nservice network eth2\n    ip address 203.0.113.1/24\n",
        "",
        "",
    );
    apply(&lab);
    let servers = vec![
        serve(
            None,
            &lab,
            "appliance",
            "0.0.0.0",
            "tcp/22 tcp/2222 udp/53 udp/5353",
        ),
        serve(Some(&outside), &lab, "outside", "203.0.113.50", "tcp/8000"),
    ];
    assert!(
        wait_until(Duration::from_secs(20), || {
            from(&outside, "tcp", "192.168.0.1", 22).is_some()
                && from(&outside, "udp", "192.168.0.1", 5353).is_some()
                && from_appliance(&lab, "tcp", "203.0.113.50", 8000).is_some()
        }),
        "the servers did not come up"
    );
    Edge {
        lab,
        inside,
        outside,
        _servers: servers,
    }
}

impl Edge {
    fn flows(&self, flows: &str) -> String {
        let network = std::fs::read_to_string(self.lab.config_dir().join("network.conf"))
            .expect("network.conf");
        self.lab.write_config(&network, flows, "");
        apply(&self.lab)
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn seed_flows_permit_ssh_dns_and_ping_as_written_and_deny_the_rest() {
    let edge = edge("flows-seed");
    let (lab, inside, outside) = (&edge.lab, &edge.inside, &edge.outside);
    let plan = edge.flows(SEED_FLOWS);
    assert!(
        plan.contains("install nftables table inet lbconsole"),
        "{plan}"
    );

    // ssh only from 192.168.0.0/24; the skipped flow changes nothing.
    assert_eq!(
        from(inside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
    assert_eq!(from(outside, "tcp", "192.168.0.1", 22), None);
    // DNS over UDP from anywhere; another UDP port from nowhere.
    assert_eq!(
        from(outside, "udp", "192.168.0.1", 53).as_deref(),
        Some("appliance")
    );
    assert_eq!(from(outside, "udp", "192.168.0.1", 5353), None);
    // Any ICMP from the local network, so ping works from inside only.
    assert!(lab.ping(Some(inside), "192.168.0.1"));
    assert!(!lab.ping(Some(outside), "192.168.0.1"));
    // alltherest: every other port is closed, even from inside.
    assert_eq!(from(inside, "tcp", "192.168.0.1", 2222), None);
    // Replies of the appliance's own connections are never denied.
    assert_eq!(
        from_appliance(lab, "tcp", "203.0.113.50", 8000).as_deref(),
        Some("outside")
    );
    assert!(lab.ping(None, "203.0.113.50"));

    // An echo reply nobody asked for is let in by `icmptype 0` from anywhere;
    // a timestamp request from outside falls through to alltherest.
    let (echo_replies, denied) = (
        packets(lab, "ping", Some(1)),
        packets(lab, "alltherest", Some(1)),
    );
    outside.sh(&format!("{} 0 192.168.0.1", python(ICMP)));
    outside.sh(&format!("{} 13 192.168.0.1", python(ICMP)));
    // Sent is not yet counted: the veth hands the packets to the appliance's
    // softirq, which a busy VM may run after `status` has read the counters.
    let counted = |flow: &str, before: u64| {
        wait_until(Duration::from_secs(10), || {
            packets(lab, flow, Some(1)) > before
        })
    };
    assert!(counted("ping", echo_replies) && counted("alltherest", denied));
    assert_eq!(packets(lab, "ping", Some(1)), echo_replies + 1);
    assert_eq!(packets(lab, "alltherest", Some(1)), denied + 1);

    // Counters per flow and rule; the skipped flow is not in the table.
    assert!(packets(lab, "ssh", None) >= 2);
    assert!(packets(lab, "ssh", Some(2)) >= 1);
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(status.contains("  flow ssh "), "{status}");
    assert!(!status.contains("disabled"), "{status}");

    assert_eq!(apply(lab), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn removing_the_flows_opens_the_ports_again_and_leaves_other_tables_alone() {
    let edge = edge("flows-remove");
    let (lab, outside) = (&edge.lab, &edge.outside);
    lab.sh("nft add table inet other; nft add chain inet other input '{ type filter hook input priority 0; }'");
    edge.flows(SEED_FLOWS);
    assert_eq!(from(outside, "tcp", "192.168.0.1", 22), None);
    assert_eq!(
        edge.flows(""),
        "remove nftables table inet lbconsole\napplied 1 change\n"
    );
    assert_eq!(
        from(outside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
    let tables = lab.sh("nft list tables");
    assert_eq!(tables.trim(), "table inet other", "{tables}");
}

/// `nft` as lbconsole runs it, except that every batch it is given on stdin
/// (nft text, or JSON) gets one more command the kernel refuses (a rule in a
/// chain that does not exist): the real kernel then has to throw the whole
/// transaction away.
const REFUSING_NFT: &str = r#"#!/usr/bin/env python3
import json, os, subprocess, sys
args = sys.argv[1:]
if args[-2:] == ["-f", "-"]:
    batch = sys.stdin.read()
    if "-j" in args:
        parsed = json.loads(batch)
        parsed["nftables"].append({"add": {"rule": {"family": "inet", "table": "lbconsole", "chain": "no-such-chain", "expr": [{"accept": None}]}}})
        batch = json.dumps(parsed)
    else:
        batch += "add rule inet lbconsole no-such-chain accept\n"
    sys.exit(subprocess.run(["/usr/sbin/nft"] + args, input=batch.encode()).returncode)
os.execv("/usr/sbin/nft", ["nft"] + args)
"#;

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_ruleset_the_kernel_refuses_leaves_the_old_flows_addresses_and_services() {
    let edge = edge("flows-refused");
    let (lab, inside, outside) = (&edge.lab, &edge.inside, &edge.outside);
    edge.flows(SEED_FLOWS);
    assert_eq!(
        from(inside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
    let (before, table, services) = (
        lab.dump(),
        lab.sh("nft list table inet lbconsole"),
        lab.sh("ipvsadm -Sn"),
    );

    let bin = lab.state_dir().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::write(bin.join("nft"), REFUSING_NFT).expect("nft wrapper");
    lab.sh(&format!("chmod +x {}/nft", bin.display()));
    // A second address, a director and other flows: all of it must be undone.
    lab.write_config(
        "service network eth1\n    ip address 192.168.0.1/24\n    ip address 192.168.0.9/24\nservice network eth2\n    ip address 203.0.113.1/24\n",
        "flow everything permit\n    match\n",
        "director web 192.168.0.9:80 TCP\n    mode nat\n    server web1 203.0.113.50:8000\n",
    );
    let run = Run::of(
        Command::new(crate::support::lbconsole_binary())
            .args(["apply", "--config-dir"])
            .arg(lab.config_dir())
            .arg("--state-dir")
            .arg(lab.state_dir())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            ),
    );
    assert!(!run.success(), "{run}");
    assert!(
        run.stderr.contains("update nftables table inet lbconsole")
            && run.stderr.contains("were undone"),
        "{run}"
    );
    assert_same_kernel(&before, &lab.dump());
    assert_eq!(lab.sh("ipvsadm -Sn"), services);
    assert_eq!(lab.sh("nft list table inet lbconsole"), table);
    // The old flows still decide.
    assert_eq!(from(outside, "tcp", "192.168.0.1", 22), None);
    assert_eq!(
        from(inside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
}

const MAIL_LVS: &str = "\
director maildirect
    balance roundrobin
    mode nat
    server mail1 10.0.1.2
    server mail2 10.0.2.2
";

const MAIL_FLOWS: &str = "\
flow mail director maildirect
    match proto tcp dst 192.168.0.2 dstport 110
    match proto tcp dst 192.168.0.2 dstport 143
    match proto tcp dst 192.168.0.2 dstport 25
flow alltherest deny
    match
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn mail_ports_25_110_and_143_all_reach_both_backends_of_one_director() {
    let lab = Lab::new("flows-mail");
    lab.sysctl("net/ipv4/ip_forward", "1");
    let client = lab.netns("client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "192.168.0.50/24", "dev", "c1"]);
    client.ip(&["route", "add", "default", "via", "192.168.0.1"]);
    let mut servers = vec![serve(None, &lab, "appliance", "0.0.0.0", "tcp/8080")];
    let mut network = String::from(
        "service network eth1\n    ip address 192.168.0.1/24\n    ip address 192.168.0.2/24\n",
    );
    for n in 1..=2 {
        let backend = lab.netns(&format!("mail{n}"));
        lab.veth(&format!("eth{}", n + 1), &format!("m{n}"), &backend);
        let address = format!("10.0.{n}.2");
        backend.ip(&[
            "addr",
            "add",
            &format!("{address}/24"),
            "dev",
            &format!("m{n}"),
        ]);
        backend.ip(&["route", "add", "default", "via", &format!("10.0.{n}.1")]);
        servers.push(serve(
            Some(&backend),
            &lab,
            &format!("mail{n}"),
            &address,
            "tcp/25 tcp/110 tcp/143 tcp/8080",
        ));
        network.push_str(&format!(
            "service network eth{}\n    ip address 10.0.{n}.1/24\n",
            n + 1
        ));
    }
    lab.write_config(&network, "", "");
    apply(&lab);
    assert!(
        wait_until(Duration::from_secs(20), || {
            from(&client, "tcp", "192.168.0.2", 8080).is_some()
                && (1..=2)
                    .all(|n| from_appliance(&lab, "tcp", &format!("10.0.{n}.2"), 143).is_some())
        }),
        "the servers did not come up"
    );
    // Without the flows, the mail ports are the appliance's own (closed).
    assert_eq!(from(&client, "tcp", "192.168.0.2", 25), None);

    lab.write_config(&network, MAIL_FLOWS, MAIL_LVS);
    let plan = apply(&lab);
    assert!(plan.contains("add service fwmark"), "{plan}");
    for port in [25, 110, 143] {
        let answers: Vec<Option<String>> = (0..4)
            .map(|_| from(&client, "tcp", "192.168.0.2", port))
            .collect();
        for backend in ["mail1", "mail2"] {
            assert!(
                answers.iter().any(|a| a.as_deref() == Some(backend)),
                "port {port}: {answers:?}"
            );
        }
    }
    // Any other port of the address is denied, though the appliance listens there.
    assert_eq!(from(&client, "tcp", "192.168.0.2", 8080), None);
    assert!(packets(&lab, "mail", Some(3)) >= 4);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_outflow_to_table_200_sends_replies_back_through_the_second_gateway() {
    let lab = Lab::new("flows-outflow");
    // gw1: the main uplink; gw2: the second uplink, whose network 172.16.5.0/24
    // only gw2 reaches.
    let gw1 = lab.netns("gw1");
    let gw2 = lab.netns("gw2");
    lab.veth("eth1", "g2", &gw2);
    lab.veth("eth2", "g1", &gw1);
    gw1.ip(&["addr", "add", "10.9.0.1/24", "dev", "g1"]);
    gw2.ip(&["addr", "add", "192.168.161.1/24", "dev", "g2"]);
    gw2.ip(&["addr", "add", "172.16.5.5/32", "dev", "lo"]);
    let network = "\
service network eth1
    ip address 192.168.161.10/24
    ip route default 192.168.161.1 table 200
service network eth2
    ip address 10.9.0.10/24
    ip route default 10.9.0.1
";
    lab.write_config(network, "", "");
    apply(&lab);
    // A reply leaving through its interface's own network is not what this
    // test is about: loose reverse-path filtering, as on a multi-homed host.
    lab.sysctl("net/ipv4/conf/all/rp_filter", "2");
    let _server = serve(None, &lab, "appliance", "192.168.161.10", "tcp/80");
    let fetch = || ask(gw2.try_sh(&probe_args("tcp", "192.168.161.10", 80, Some("172.16.5.5"))));
    assert!(
        wait_until(Duration::from_secs(20), || from(
            &gw2,
            "tcp",
            "192.168.161.10",
            80
        )
        .is_some()),
        "the server did not come up"
    );
    // Without the outflow the reply follows the main table to gw1 and is lost.
    assert_eq!(fetch(), None);

    lab.write_config(
        network,
        "outflow return-eth1 table 200\n    match proto tcp src 192.168.161.0/24 srcport 80\n",
        "",
    );
    let plan = apply(&lab);
    assert!(
        plan.contains("add rule fwmark 0x200c8 lookup 200 priority 1000"),
        "{plan}"
    );
    assert_eq!(fetch().as_deref(), Some("appliance"));
    assert!(packets(&lab, "return-eth1", Some(1)) >= 1);
    let rules = lab.ip(&["rule", "show"]);
    assert!(
        rules.contains("fwmark 0x200c8 lookup 200 proto 202"),
        "{rules}"
    );

    // Taking the outflow away takes its rule with it.
    lab.write_config(network, "", "");
    apply(&lab);
    assert_eq!(fetch(), None);
    assert!(!lab.ip(&["rule", "show"]).contains("0x200c8"));
}

const SSH_AND_DNS: &str = "\
flow ssh permit
    match proto tcp dst 192.168.0.1 dstport 22
flow dns permit
    match proto udp dst 192.168.0.1 dstport 53
flow alltherest deny
    match
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn changing_one_flow_keeps_the_counters_of_the_others() {
    let edge = edge("flows-by-difference");
    let (lab, outside) = (&edge.lab, &edge.outside);
    edge.flows(SSH_AND_DNS);
    for _ in 0..3 {
        assert_eq!(
            from(outside, "tcp", "192.168.0.1", 22).as_deref(),
            Some("appliance")
        );
    }
    let ssh_rule = packets(lab, "ssh", Some(1));
    let ssh_flow = packets(lab, "ssh", None);
    assert!(ssh_rule >= 3, "ssh counted {ssh_rule} packets");

    // dns's key is in the lookup map of `incoming`, so that chain changes too;
    // ssh's own chain, which holds its counters, does not.
    let changed = edge.flows(&SSH_AND_DNS.replace("dstport 53", "dstport 5353"));
    assert!(
        changed.starts_with("update nftables table inet lbconsole (")
            && changed.contains("replace chain in-dns")
            && !changed.contains("in-ssh"),
        "{changed}"
    );
    // The untouched flow's counters carry on from where they were.
    assert_eq!(packets(lab, "ssh", Some(1)), ssh_rule);
    assert!(packets(lab, "ssh", None) >= ssh_flow);
    // The changed flow does what it now says.
    assert_eq!(
        from(outside, "udp", "192.168.0.1", 5353).as_deref(),
        Some("appliance")
    );
    assert_eq!(from(outside, "udp", "192.168.0.1", 53), None);
    assert_eq!(
        from(outside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
    assert!(packets(lab, "ssh", Some(1)) > ssh_rule);

    // A flow added and one removed: their chains and the jumps change, the
    // other flows' rules keep counting.
    let ssh_rule = packets(lab, "ssh", Some(1));
    let changed = edge.flows(&SSH_AND_DNS.replace("flow dns permit", "flow mdns permit"));
    assert!(
        changed.contains("add chain in-mdns") && changed.contains("remove chain in-dns"),
        "{changed}"
    );
    assert_eq!(packets(lab, "ssh", Some(1)), ssh_rule);
    assert_eq!(
        from(outside, "udp", "192.168.0.1", 53).as_deref(),
        Some("appliance")
    );
    assert_eq!(
        edge.flows(&SSH_AND_DNS.replace("flow dns permit", "flow mdns permit")),
        "no changes\n"
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_rule_edited_by_hand_is_noticed_and_replaced_at_the_next_apply() {
    let edge = edge("flows-hand-edit");
    let (lab, outside) = (&edge.lab, &edge.outside);
    edge.flows(SSH_AND_DNS);
    assert_eq!(edge.flows(SSH_AND_DNS), "no changes\n");
    // Same chains, same names: only the rule inside differs.
    lab.sh("nft insert rule inet lbconsole in-ssh tcp dport 22 drop");
    assert_eq!(from(outside, "tcp", "192.168.0.1", 22), None);

    let applied = edge.flows(SSH_AND_DNS);
    assert!(
        applied.starts_with("install nftables table inet lbconsole"),
        "{applied}"
    );
    assert_eq!(
        from(outside, "tcp", "192.168.0.1", 22).as_deref(),
        Some("appliance")
    );
    let listing = lab.sh("nft list chain inet lbconsole in-ssh");
    assert!(!listing.contains("drop"), "{listing}");
    assert_eq!(edge.flows(SSH_AND_DNS), "no changes\n");
}
