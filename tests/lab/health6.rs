//! The health checks against an IPv6 server on the real kernel, called as the
//! daemon calls them: tcpcheck, httpcheck, icmpcheck (ICMPv6 echo) and
//! arpcheck (neighbour solicitation) see a live server up, a killed service
//! down for its TCP checks only, and a server whose link is gone down for all.
//! A Linux target drops a solicitation whose hop limit is not 255, so every
//! arpcheck that passes shows that ours are sent so; a forged advertisement
//! shows that one received with another hop limit does not count.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use lbconsole::health::checks::{self, CheckError};
use lbconsole::health::state::{Check, Probe};

use crate::support::{Lab, Netns, wait_until};

const HERE: &str = "2001:db8:1::1";
/// A second address of ours on the server's link, for `check source`.
const SOURCE: &str = "2001:db8:1::5";
const SERVER: &str = "2001:db8:1::2";

/// Answers every connection on [SERVER]:80 with 200 and appends the peer's
/// address and the request to the file named by its argument.
const SERVER_PY: &str = r#"
import socket, sys
s = socket.create_server(("2001:db8:1::2", 80), family=socket.AF_INET6)
while True:
    c, peer = s.accept()
    request = c.recv(4096)
    with open(sys.argv[1], "ab") as log:
        log.write(peer[0].encode() + b"\n" + request)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    c.close()
"#;

/// An address nobody holds, for which the responder below advertises.
const FORGED: &str = "2001:db8:1::66";

/// Answers each solicitation for [FORGED] on s1 with an advertisement sent
/// with the hop limit written in the file named by its first argument; it
/// writes the file named by its second once it listens.
const RESPONDER_PY: &str = r#"
import socket, sys
hops_file, ready = sys.argv[1], sys.argv[2]
target = socket.inet_pton(socket.AF_INET6, "2001:db8:1::66")
group = socket.inet_pton(socket.AF_INET6, "ff02::1:ff00:66")
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
index = socket.if_nametoindex("s1")
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, group + index.to_bytes(4, sys.byteorder))
open(ready, "w").close()
while True:
    message, peer = s.recvfrom(1500)
    if len(message) < 24 or message[0] != 135 or message[8:24] != target:
        continue
    hops = int(open(hops_file).read())
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, hops)
    option = bytes([2, 1, 2, 0, 0, 0, 0, 0x66])
    s.sendto(bytes([136, 0, 0, 0, 0x60, 0, 0, 0]) + target + option, peer)
"#;

fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().expect("an IPv6 address"))
}

fn check(probe: Probe, source: Option<&str>) -> Check {
    Check {
        address: v6(SERVER),
        probe,
        source: source.map(v6),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        rise: 1,
        fall: 1,
    }
}

/// The test's namespace with [HERE] and [SOURCE] on eth1, and the server's
/// namespace with [SERVER] on s1, the other end of eth1.
fn link() -> (Lab, Netns) {
    let lab = Lab::new("health6");
    let server = lab.netns("srv6");
    lab.sysctl("net/ipv6/conf/all/disable_ipv6", "0");
    server.sh("echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6");
    lab.veth("eth1", "s1", &server);
    lab.ip(&["link", "set", "eth1", "up"]);
    for address in [HERE, SOURCE] {
        let prefix = format!("{address}/64");
        lab.ip(&["addr", "add", &prefix, "dev", "eth1", "nodad"]);
    }
    let prefix = format!("{SERVER}/64");
    server.ip(&["addr", "add", &prefix, "dev", "s1", "nodad"]);
    (lab, server)
}

/// Runs each check as the daemon does: what each said.
fn run_all(checks: &[(&str, Check)]) -> Vec<(String, Result<(), String>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    checks
        .iter()
        .map(|(name, check)| {
            let result = runtime.block_on(checks::run(check));
            if let Err(CheckError::Local(error)) = &result {
                panic!("{name}: the check did not run: {error}");
            }
            (name.to_string(), result.map_err(|error| error.to_string()))
        })
        .collect()
}

fn all_up(checks: &[(&str, Check)]) -> bool {
    run_all(checks).iter().all(|(_, result)| result.is_ok())
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn ipv6_checks_see_a_live_server_a_killed_service_and_a_link_gone() {
    let start = std::time::Instant::now();
    let (lab, server) = link();
    let log = lab.state_dir().join("requests");
    let hops = lab.state_dir().join("hops");
    let ready = lab.state_dir().join("ready");
    std::fs::write(&hops, "255").expect("the hop limit");
    // Both start at once: python starts slowly in the VM.
    let service = server.spawn(&format!("exec python3 -c '{SERVER_PY}' {}", log.display()));
    let _responder = server.spawn(&format!(
        "exec python3 -c '{RESPONDER_PY}' {} {}",
        hops.display(),
        ready.display()
    ));
    assert!(
        wait_until(Duration::from_secs(20), || server.listens(80)),
        "the IPv6 server did not start"
    );
    assert!(
        wait_until(Duration::from_secs(20), || ready.exists()),
        "the responder did not start"
    );
    let tcp = check(Probe::Tcp { port: 80 }, None);
    let http = check(
        Probe::Http {
            port: 80,
            uri: "/health".into(),
            vhost: None,
            status: 200,
        },
        Some(SOURCE),
    );
    let icmp = check(Probe::Icmp, Some(SOURCE));
    let ns = check(Probe::Arp { iface: None }, None);
    let ns_sourced = check(Probe::Arp { iface: None }, Some(SOURCE));
    let named = check(
        Probe::Arp {
            iface: Some("eth1".into()),
        },
        None,
    );
    let stack = [
        ("icmpcheck", icmp),
        ("arpcheck", ns),
        ("arpcheck from the source", ns_sourced),
        ("arpcheck on eth1", named),
    ];
    let service_checks = [("tcpcheck", tcp), ("httpcheck", http)];
    let every: Vec<(&str, Check)> = service_checks.iter().chain(&stack).cloned().collect();

    let up = run_all(&every);
    assert!(
        up.iter().all(|(_, result)| result.is_ok()),
        "a live server: {up:?}"
    );
    let requests = std::fs::read_to_string(&log).expect("the server's log");
    assert!(
        requests.contains(&format!("{SOURCE}\nGET /health HTTP/1.1\r\n")),
        "httpcheck comes from its check source: {requests}"
    );
    assert!(
        requests.contains("\r\nHost: [2001:db8:1::2]\r\n"),
        "the Host header brackets the address: {requests}"
    );

    drop(service);
    let killed = run_all(&every);
    for (name, result) in &killed[..2] {
        assert_eq!(
            result.as_ref().map_err(String::as_str),
            Err("Connection refused (os error 111)"),
            "{name} with the service killed"
        );
    }
    assert!(
        killed[2..].iter().all(|(_, result)| result.is_ok()),
        "the server's stack still answers: {killed:?}"
    );

    let forged = [(
        "arpcheck of a forged neighbour",
        Check {
            address: v6(FORGED),
            ..check(Probe::Arp { iface: None }, None)
        },
    )];
    let on_link = run_all(&forged);
    assert_eq!(on_link[0].1, Ok(()), "an advertisement with hop limit 255");
    std::fs::write(&hops, "64").expect("the hop limit");
    let forwarded = run_all(&forged);
    assert_eq!(
        forwarded[0].1,
        Err("no answer within 1s".into()),
        "the same with hop limit 64, as a router forwards it"
    );

    server.ip(&["link", "set", "s1", "down"]);
    let gone = run_all(&stack);
    for (name, result) in &gone {
        assert_eq!(
            result.as_ref().map_err(String::as_str),
            Err("no answer within 1s"),
            "{name} with the server's link down"
        );
    }

    // Down, the link lost its IPv6 addresses (`keep_addr_on_down` is off): the
    // server comes back as after a reboot.
    server.ip(&["link", "set", "s1", "up"]);
    server.ip(&["addr", "add", &format!("{SERVER}/64"), "dev", "s1", "nodad"]);
    assert!(
        wait_until(Duration::from_secs(10), || all_up(&stack)),
        "the link is back: {:?}",
        run_all(&stack)
    );
    eprintln!(
        "health6: {:?}; killed {killed:?}; link down {gone:?}",
        start.elapsed()
    );
}
