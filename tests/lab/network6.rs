//! The Network tab's IPv6 on the real kernel, with real traffic: addresses on a
//! bond and a VLAN a client namespace reaches, a default route in table 200,
//! failures at every step that leave `ip -6` exactly as it was, and an address
//! another host already has, refused by duplicate address detection.
//!
//! `network.conf` takes IPv6 once the configuration model does; until then these
//! tests drive the library as the file will: the plan of an IPv4 `network.conf`
//! (bonds, VLANs, up and down) with IPv6 addresses and routes added to it, carried
//! out by the real rtnetlink backend.

use std::time::{Duration, Instant};

use lbconsole::apply;
use lbconsole::config::model::types::IpNet;
use lbconsole::config::parse::parse_network;
use lbconsole::kernel::netlink::NetlinkBackend;
use lbconsole::kernel::{Cause, KernelError, NetworkBackend, Observation};
use lbconsole::plan::network::{self, RouteEntry};
use lbconsole::plan::{NetworkState, Step};
use serde_json::Value;

use crate::apply_network::FailAt;
use crate::support::{Lab, Netns, wait_until};

/// What a plan should do besides an IPv4 `network.conf`.
struct Ipv6<'a> {
    /// Link and address.
    addresses: &'a [(&'a str, &'a str)],
    /// Table, destination, gateway, device.
    routes: &'a [(u32, &'a str, &'a str, &'a str)],
}

const BOND: &str = "\
service network bond0
    type bonding
    bonding mode active-backup
    bonding primary eth1
    bonding miimon 100
    bonding updelay 0
    bonding downdelay 0
    slave eth1 eth2

service network vlan100
    type vlan
    vlan id 100 parent bond0
";

fn net(text: &str) -> IpNet {
    IpNet::try_from(text.to_owned()).expect("an address with its prefix")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn observe() -> Observation {
    let mut backend = NetlinkBackend::connect().await.expect("netlink");
    backend.observe().await.expect("observe")
}

/// The state `config` and `v6` ask for, given the kernel now.
async fn desired(config: &str, v6: &Ipv6<'_>) -> NetworkState {
    let (config, diagnostics) = parse_network(config.as_bytes());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let observed = observe().await.state;
    let mut desired = network::desired(&config, None, &observed).expect("desired");
    for (link, address) in v6.addresses {
        let link = desired.links.get_mut(*link).expect("a link of the config");
        link.addresses.insert(net(address));
    }
    for (table, destination, gateway, device) in v6.routes {
        desired.routes.insert(RouteEntry {
            table: *table,
            destination: net(destination),
            gateway: gateway.parse().expect("a gateway"),
            device: (*device).to_owned(),
        });
    }
    desired
}

async fn plan(config: &str, v6: &Ipv6<'_>) -> Vec<Step> {
    let desired = desired(config, v6).await;
    network::diff(&observe().await.state, &desired)
}

async fn apply(config: &str, v6: &Ipv6<'_>) -> Vec<Step> {
    let steps = plan(config, v6).await;
    let mut backend = NetlinkBackend::connect().await.expect("netlink");
    apply::execute_network(&mut backend, &steps)
        .await
        .unwrap_or_else(|e| panic!("apply failed: {e}\n{steps:#?}"));
    steps
}

/// A lab with veths `eth1..=ethN` whose peers `p1..` sit on bridge `br0` of
/// namespace `peer`, which holds 2001:db8::2/64 on it and 2001:db8:64::2/64 on
/// its VLAN 100. The peer's addresses skip DAD, so they are usable at once.
fn bridged(name: &str, pairs: usize) -> (Lab, Netns) {
    let lab = Lab::new(name);
    let peer = lab.netns("peer");
    let ports: Vec<String> = (1..=pairs).map(|i| format!("p{i}")).collect();
    for (i, port) in ports.iter().enumerate() {
        lab.veth(&format!("eth{}", i + 1), port, &peer);
    }
    let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
    peer.bridge("br0", &ports);
    peer.ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "br0", "nodad"]);
    peer.ip(&[
        "link", "add", "link", "br0", "name", "br0.100", "type", "vlan", "id", "100",
    ]);
    peer.ip(&["link", "set", "br0.100", "up"]);
    peer.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8:64::2/64",
        "dev",
        "br0.100",
        "nodad",
    ]);
    (lab, peer)
}

/// The flags `ip -6 -j addr` shows for `address` on `link` (`tentative`,
/// `dadfailed`, …), or `None` when the link does not have it.
fn address_flags(lab: &Lab, link: &str, address: &str) -> Option<Vec<String>> {
    let shown: Value =
        serde_json::from_str(&lab.ip(&["-6", "-j", "addr", "show", "dev", link])).expect("JSON");
    let info = shown[0]["addr_info"]
        .as_array()?
        .iter()
        .find(|a| a["local"] == address)?;
    let flags = ["tentative", "dadfailed", "deprecated", "optimistic"];
    Some(
        flags
            .iter()
            .filter(|flag| info[**flag] == true)
            .map(|flag| (*flag).to_owned())
            .collect(),
    )
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_client_reaches_ipv6_on_a_bond_and_a_vlan_and_table_200_carries_traffic() {
    let (lab, peer) = bridged("ipv6-reach", 2);
    // Behind the gateway: an address only table 200 knows the way to.
    peer.ip(&["-6", "addr", "add", "2001:db8:ff::1/128", "dev", "lo"]);
    // The links the plan creates do their duplicate address detection, as on
    // an appliance: the apply waits it out.
    lab.sysctl("net/ipv6/conf/default/accept_dad", "1");
    let v6 = Ipv6 {
        addresses: &[
            ("bond0", "2001:db8::1/64"),
            ("vlan100", "2001:db8:64::1/64"),
        ],
        routes: &[(200, "::/0", "2001:db8::2", "bond0")],
    };
    let runtime = runtime();
    let started = Instant::now();
    let steps = runtime.block_on(apply(BOND, &v6));
    let took = started.elapsed();
    let printed: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert!(
        printed.contains(&"add address 2001:db8::1/64 to bond0".to_owned())
            && printed
                .contains(&"add route default via 2001:db8::2 dev bond0 table 200".to_owned()),
        "{printed:#?}"
    );
    // Done means DAD is over: no address is still tentative.
    assert_eq!(address_flags(&lab, "bond0", "2001:db8::1"), Some(vec![]));
    assert_eq!(
        address_flags(&lab, "vlan100", "2001:db8:64::1"),
        Some(vec![])
    );
    eprintln!("apply with DAD took {took:?}");

    assert!(
        wait_until(Duration::from_secs(10), || lab
            .ping(Some(&peer), "2001:db8::1")),
        "the client gets no answer from the bond's IPv6 address: {:#?}",
        lab.dump()
    );
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .ping(Some(&peer), "2001:db8:64::1")),
        "the client gets no answer over VLAN 100: {:#?}",
        lab.dump()
    );
    let routes: Value =
        serde_json::from_str(&lab.ip(&["-6", "-j", "route", "show", "table", "200"]))
            .expect("JSON");
    assert_eq!(routes[0]["dst"], "default");
    assert_eq!(routes[0]["gateway"], "2001:db8::2");
    assert_eq!(routes[0]["protocol"], "202");
    assert!(
        !lab.ping(None, "2001:db8:ff::1"),
        "reached 2001:db8:ff::1 without table 200"
    );
    // Flows will add such rules; here the test does, to send traffic through table 200.
    lab.ip(&["-6", "rule", "add", "to", "2001:db8:ff::1", "lookup", "200"]);
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "2001:db8:ff::1")),
        "no answer through table 200"
    );

    // The kernel's link-local addresses and routes are no difference to apply.
    let observation = runtime.block_on(observe());
    let bond = observation
        .links
        .iter()
        .find(|l| l.name == "bond0")
        .expect("bond0");
    assert!(
        bond.kernel_addresses
            .iter()
            .any(|a| a.addr.to_string().starts_with("fe80::")),
        "{bond:#?}"
    );
    assert_eq!(bond.addresses, [net("2001:db8::1/64")]);
    let accept_ra = lab.sh("cat /proc/sys/net/ipv6/conf/bond0/accept_ra");
    assert_eq!(
        bond.accept_ra.map(|v| v.to_string()),
        Some(accept_ra.trim().to_owned())
    );
    assert_eq!(runtime.block_on(plan(BOND, &v6)), []);
}

/// `ip -6 -d -j addr` and `ip -6 -d -j route show table all`.
fn ipv6_dump(lab: &Lab) -> (Value, Value) {
    let json = |text: String| serde_json::from_str(&text).expect("JSON");
    (
        json(lab.ip(&["-6", "-d", "-j", "addr", "show"])),
        json(lab.ip(&["-6", "-d", "-j", "route", "show", "table", "all"])),
    )
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_failure_at_any_step_of_an_ipv6_plan_leaves_ip_6_as_it_was() {
    let (lab, _peer) = bridged("ipv6-every-step", 3);
    // As in the IPv4 test: eth3 has been up once, as a real NIC has.
    lab.ip(&["link", "set", "eth3", "up"]);
    lab.ip(&["link", "set", "eth3", "down"]);
    let from = Ipv6 {
        addresses: &[
            ("bond0", "2001:db8::1/64"),
            ("vlan100", "2001:db8:64::1/64"),
        ],
        routes: &[
            (200, "::/0", "2001:db8::2", "bond0"),
            (254, "2001:db8:100::/48", "2001:db8:64::2", "vlan100"),
        ],
    };
    let runtime = runtime();
    runtime.block_on(apply(BOND, &from));

    // bond0 is readdressed (its route in table 200 goes and comes back),
    // vlan100 goes down (the kernel would drop its IPv6 address), eth3 joins
    // with an address and a route through a link-local gateway in table 300.
    let to_config = format!("{BOND}    auto off\n\nservice network eth3\n");
    let to = Ipv6 {
        addresses: &[
            ("bond0", "2001:db8::7/64"),
            ("vlan100", "2001:db8:64::1/64"),
            ("eth3", "2001:db8:3::1/64"),
        ],
        routes: &[
            (200, "::/0", "2001:db8::2", "bond0"),
            (300, "2001:db8:300::/48", "fe80::2", "eth3"),
        ],
    };
    let steps = runtime.block_on(plan(&to_config, &to));
    let printed: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert!(steps.len() >= 8, "a plan worth breaking: {printed:#?}");
    assert!(
        printed.contains(&"set vlan100 down".to_owned())
            && printed.contains(&"remove address 2001:db8:64::1/64 from vlan100".to_owned()),
        "{printed:#?}"
    );

    let settled = || {
        ["bond0", "vlan100"]
            .iter()
            .all(|link| lab.link(link)["operstate"] == "UP")
    };
    assert!(
        wait_until(Duration::from_secs(10), settled),
        "{:#?}",
        lab.dump()
    );
    let before = ipv6_dump(&lab);
    for fail_at in 0..steps.len() {
        let result = runtime.block_on(async {
            let mut backend = FailAt {
                inner: NetlinkBackend::connect().await.expect("netlink"),
                fail_at,
                executed: 0,
            };
            apply::execute_network(&mut backend, &steps).await
        });
        assert!(
            matches!(result, Err(apply::ApplyError::RolledBack { undone, .. }) if undone == fail_at),
            "step {fail_at}: {result:?}"
        );
        // Carrier follows a change by itself, a moment later: compare settled states.
        let _ = wait_until(Duration::from_secs(5), || ipv6_dump(&lab) == before);
        let after = ipv6_dump(&lab);
        assert!(
            before == after,
            "failing at step {fail_at} ({}) changed ip -6:\n--- before\n{:#}\n{:#}\n--- after\n{:#}\n{:#}",
            steps[fail_at],
            before.0,
            before.1,
            after.0,
            after.1
        );
    }
    // And the plan itself goes through.
    let mut backend = runtime
        .block_on(NetlinkBackend::connect())
        .expect("netlink");
    runtime
        .block_on(apply::execute_network(&mut backend, &steps))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        address_flags(&lab, "vlan100", "2001:db8:64::1"),
        Some(vec![])
    );
    assert_eq!(address_flags(&lab, "eth3", "2001:db8:3::1"), Some(vec![]));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_ipv6_address_another_host_has_fails_the_apply_which_rolls_back() {
    let lab = Lab::new("ipv6-dad");
    let other = lab.netns("other");
    lab.veth("eth1", "p1", &other);
    // The other host on the link already has 2001:db8::1.
    other.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "p1", "nodad"]);
    lab.sysctl("net/ipv6/conf/eth1/accept_dad", "1");
    let before = ipv6_dump(&lab);
    let v6 = Ipv6 {
        addresses: &[("eth1", "2001:db8::1/64")],
        routes: &[(254, "2001:db8:100::/48", "2001:db8::fe", "eth1")],
    };
    let runtime = runtime();
    let steps = runtime.block_on(plan("service network eth1\n", &v6));
    let printed: Vec<String> = steps.iter().map(ToString::to_string).collect();
    assert_eq!(
        printed,
        [
            "set eth1 up",
            "add address 2001:db8::1/64 to eth1",
            "add route 2001:db8:100::/48 via 2001:db8::fe dev eth1"
        ]
    );
    let started = Instant::now();
    let error = runtime
        .block_on(async {
            let mut backend = NetlinkBackend::connect().await.expect("netlink");
            apply::execute_network(&mut backend, &steps).await
        })
        .expect_err("DAD fails");
    eprintln!("the failing apply took {:?}", started.elapsed());
    assert_eq!(
        error.to_string(),
        "add address 2001:db8::1/64 to eth1: another host on the link of eth1 already has \
         2001:db8::1 (duplicate address detection failed: the kernel marked 2001:db8::1/64 \
         dadfailed) (the address was removed again); the 1 change(s) made before it were undone"
    );
    assert!(matches!(
        error
            .kernel_error()
            .and_then(KernelError::cause)
            .map(Cause::root),
        Some(Cause::DuplicateAddress { .. })
    ));
    assert_eq!(address_flags(&lab, "eth1", "2001:db8::1"), None);
    let _ = wait_until(Duration::from_secs(5), || ipv6_dump(&lab) == before);
    assert!(ipv6_dump(&lab) == before, "{:#?}", ipv6_dump(&lab));
}
