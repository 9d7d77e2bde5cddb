//! Flows found by verdict-map lookup (`plan::flow_match`) on the real kernel,
//! asserted by TCP connections: a port permitted by a looked-up flow is
//! reachable, a deny drops, a later flow whose key overlaps an earlier one's
//! gets the earlier flow's verdict, and the flows' counters still count.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::support::{Lab, Netns, wait_until};

const FLOWS: &str = "\
flow web permit
    match proto tcp dst 192.168.0.1 dstport 8080
flow api permit
    match proto tcp dst 192.168.0.1 dstport 8081
    match proto tcp dst 192.168.0.1 dstport 8181
flow blocked deny
    match proto tcp dst 192.168.0.1 dstport 8082
# Overlaps web and api: a new map starts here.
flow wide deny
    match proto tcp dst 192.168.0.0/24 dstport 8080:8090
# Overlaps wide, so wide (earlier) decides 8085.
flow late permit
    match proto tcp dst 192.168.0.1 dstport 8085
flow other permit
    match proto tcp dst 192.168.0.1 dstport 9000
flow range permit
    match proto tcp dst 192.168.0.0/28 dstport 7000:7010
flow alltherest deny
    match
";

/// Every port the test asks about, served by the appliance itself.
const PORTS: [u16; 9] = [8080, 8081, 8181, 8082, 8083, 8085, 9000, 9001, 7005];

/// Listens on every port in the lab's namespace, accepting and closing.
fn serve(ports: &[u16]) {
    for &port in ports {
        let listener = TcpListener::bind(("0.0.0.0", port)).expect("listen");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
    }
}

/// Whether a new TCP connection from `client` to the appliance's port opens.
fn reachable(client: &Netns, port: u16) -> bool {
    client
        .thread(move || {
            let at = SocketAddr::from(([192, 168, 0, 1], port));
            TcpStream::connect_timeout(&at, Duration::from_secs(2)).is_ok()
        })
        .join()
        .expect("the client thread")
}

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

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn looked_up_flows_keep_the_first_match_of_the_file() {
    let lab = Lab::new("flow-match");
    let client = lab.netns("client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "192.168.0.50/24", "dev", "c1"]);
    lab.write_config(
        "service network eth1\n    ip address 192.168.0.1/24\n",
        "",
        "",
    );
    assert!(lab.lbconsole(&["apply"]).success());
    serve(&PORTS);
    assert!(
        wait_until(Duration::from_secs(20), || reachable(&client, 8080)),
        "the appliance does not answer before any flow"
    );

    lab.write_config(
        "service network eth1\n    ip address 192.168.0.1/24\n",
        FLOWS,
        "",
    );
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "apply: {run}");
    let incoming = lab.sh("nft list chain inet lbconsole incoming");
    // web+api+blocked in one map; wide alone is walked; late+other+range in a
    // second map, with intervals (a prefix and a port range).
    assert_eq!(incoming.matches(" vmap {").count(), 2, "{incoming}");
    assert!(incoming.contains("jump in-wide"), "{incoming}");
    assert!(
        incoming.contains("192.168.0.0/28 . 7000-7010 : jump in-range"),
        "{incoming}"
    );

    let expected = [
        (8080, true, "web"),
        (8081, true, "api"),
        (8181, true, "api, second key"),
        (8082, false, "blocked"),
        (8083, false, "wide"),
        (8085, false, "late, but wide comes first"),
        (9000, true, "other"),
        (7005, true, "range"),
        (9001, false, "alltherest"),
    ];
    for (port, open, why) in expected {
        assert_eq!(reachable(&client, port), open, "port {port}: {why}");
    }

    // The map's jump is counted in the flow's chain, each rule by itself.
    assert!(packets(&lab, "web", None) >= 1);
    assert!(packets(&lab, "web", Some(1)) >= 1);
    assert!(packets(&lab, "api", Some(2)) >= 1);
    assert_eq!(packets(&lab, "late", None), 0);
    assert!(packets(&lab, "wide", Some(1)) >= 1);
}
