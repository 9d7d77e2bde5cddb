//! `lbconsole apply` and `status` for the Network tab, on the real kernel with real
//! traffic: bonds of every mode over veths whose peers sit on a bridge in a peer
//! namespace, failover, a VLAN on the bond, a route in table 200, changes and
//! removals, and failures that must leave the kernel exactly as it was.

use std::time::Duration;

use lbconsole::apply;
use lbconsole::config::parse::parse_network;
use lbconsole::kernel::netlink::NetlinkBackend;
use lbconsole::kernel::{Cause, KernelError, NetworkBackend, Observation};
use lbconsole::plan::NetOp;

use crate::support::{Lab, Netns, assert_same_kernel, wait_until};

/// A lab whose namespace has IPv4 only (lbconsole manages IPv4; IPv6 link-local
/// addresses would come and go with every up/down and blur the comparisons), and
/// `pairs` veths `eth1..` whose peers `p1..` sit on bridge `br0` in namespace `peer`,
/// which answers at 198.51.100.2/24.
fn bridged_lab(name: &str, pairs: usize) -> (Lab, Netns) {
    let lab = Lab::new(name);
    lab.sysctl("net/ipv6/conf/all/disable_ipv6", "1");
    lab.sysctl("net/ipv6/conf/default/disable_ipv6", "1");
    let peer = lab.netns("peer");
    let ports: Vec<String> = (1..=pairs).map(|i| format!("p{i}")).collect();
    for (i, port) in ports.iter().enumerate() {
        lab.veth(&format!("eth{}", i + 1), port, &peer);
    }
    let ports: Vec<&str> = ports.iter().map(String::as_str).collect();
    peer.bridge("br0", &ports);
    peer.ip(&["addr", "add", "198.51.100.2/24", "dev", "br0"]);
    (lab, peer)
}

fn apply_ok(lab: &Lab) -> String {
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "apply failed: {run}");
    run.stdout.clone()
}

const ACTIVE_BACKUP: &str = "\
service network bond0
    type bonding
    bonding mode active-backup
    bonding primary eth1
    bonding miimon 100
    bonding updelay 0
    bonding downdelay 200
    slave eth1 eth2
    ip address 198.51.100.1/24
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn active_backup_bond_keeps_traffic_flowing_when_the_primary_link_dies() {
    fails_over_and_stays_applied("failover", ACTIVE_BACKUP);
}

/// Many administrators list every port, a bond's slaves included; a slave's own
/// section, before or after its bond, must not keep it out of the bond.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_bond_whose_slaves_have_sections_of_their_own_enslaves_them_and_fails_over() {
    let slaves = "service network eth1\n\nservice network eth2\n";
    fails_over_and_stays_applied("failover-after", &format!("{ACTIVE_BACKUP}\n{slaves}"));
    fails_over_and_stays_applied("failover-before", &format!("{slaves}\n{ACTIVE_BACKUP}"));
}

/// Applies `network` (an active-backup bond0 over eth1 and eth2), checks traffic
/// crosses it, pulls the primary's cable, checks traffic crosses the backup, and
/// that a second apply has nothing to do.
fn fails_over_and_stays_applied(name: &str, network: &str) {
    let (lab, peer) = bridged_lab(name, 2);
    lab.write_config(network, "", "");

    let plan = apply_ok(&lab);
    assert!(
        plan.contains("create bond bond0 (mode active-backup"),
        "{plan}"
    );
    assert!(plan.contains("enslave eth1 to bond0"), "{plan}");
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "198.51.100.2")),
        "no answer across the bond"
    );
    // Traffic may flow through whichever slave came up first before the bond
    // settles on its primary.
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.link("bond0")["linkinfo"]["info_data"]["active_slave"] == "eth1"
        }),
        "the primary eth1 did not become the active slave: {}",
        lab.lbconsole(&["status"]).stdout
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(
        status.contains("bond active-backup  (lbconsole)"),
        "{status}"
    );
    assert!(status.contains("active slave eth1"), "{status}");
    assert!(status.contains("198.51.100.1/24"), "{status}");

    // The primary's cable is pulled: the peer end goes down, and so does eth1's carrier.
    peer.ip(&["link", "set", "p1", "down"]);
    assert!(
        wait_until(Duration::from_secs(10), || {
            lab.link("bond0")["linkinfo"]["info_data"]["active_slave"] == "eth2"
        }),
        "the bond did not fail over: {}",
        lab.lbconsole(&["status"]).stdout
    );
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "198.51.100.2")),
        "no answer after failover"
    );
    let json: serde_json::Value =
        serde_json::from_str(&lab.lbconsole(&["status", "--json"]).expect_success()).expect("JSON");
    let bond = json["links"]
        .as_array()
        .and_then(|links| links.iter().find(|l| l["name"] == "bond0"))
        .expect("bond0 in status");
    assert_eq!(bond["bond"]["active_slave"], "eth2");
    let eth1 = bond["bond"]["slaves"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == "eth1"))
        .expect("eth1 listed as a slave");
    assert_eq!(eth1["mii_status"], "down");

    assert_eq!(apply_ok(&lab), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn bonds_of_every_mode_show_their_options_in_ip_link() {
    let (lab, _peer) = bridged_lab("bond-modes", 6);
    lab.write_config(
        "\
service network bond1
    type bonding
    bonding mode 802.3ad
    bonding lacp-rate fast
    bonding xmit-hash-policy layer3+4
    bonding miimon 50
    bonding updelay 100
    bonding downdelay 150
    slave eth1 eth2

service network bond2
    type bonding
    bonding mode 0
    bonding miimon 100
    slave eth3 eth4

service network bond3
    type bonding
    bonding mode balance-xor
    bonding xmit-hash-policy layer2+3
    slave eth5 eth6
    mtu 9000
",
        "",
        "",
    );
    apply_ok(&lab);

    let data = |bond: &str| lab.link(bond)["linkinfo"]["info_data"].clone();
    let lacp = data("bond1");
    assert_eq!(lacp["mode"], "802.3ad");
    assert_eq!(lacp["ad_lacp_rate"], "fast");
    assert_eq!(lacp["xmit_hash_policy"], "layer3+4");
    assert_eq!(lacp["miimon"], 50);
    assert_eq!(lacp["updelay"], 100);
    assert_eq!(lacp["downdelay"], 150);
    let round_robin = data("bond2");
    assert_eq!(round_robin["mode"], "balance-rr");
    assert_eq!(round_robin["updelay"], 1000);
    let xor = data("bond3");
    assert_eq!(xor["mode"], "balance-xor");
    assert_eq!(xor["xmit_hash_policy"], "layer2+3");
    assert_eq!(lab.link("bond3")["mtu"], 9000);
    assert_eq!(lab.link("eth6")["mtu"], 9000);
    for (slave, bond) in [
        ("eth1", "bond1"),
        ("eth2", "bond1"),
        ("eth3", "bond2"),
        ("eth6", "bond3"),
    ] {
        assert_eq!(lab.link(slave)["master"], bond, "{slave}");
    }
    assert_eq!(lab.link("bond1")["ifalias"], "lbconsole");
    assert_eq!(apply_ok(&lab), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_vlan_on_the_bond_carries_tagged_traffic() {
    let (lab, peer) = bridged_lab("vlan", 2);
    peer.ip(&[
        "link", "add", "link", "br0", "name", "br0.100", "type", "vlan", "id", "100",
    ]);
    peer.ip(&["addr", "add", "203.0.113.2/24", "dev", "br0.100"]);
    peer.ip(&["link", "set", "br0.100", "up"]);
    lab.write_config(
        &format!(
            "{ACTIVE_BACKUP}
service network vlan100
    type vlan
    vlan id 100 parent bond0
    ip address 203.0.113.1/24
"
        ),
        "",
        "",
    );
    apply_ok(&lab);
    let vlan = lab.link("vlan100");
    assert_eq!(vlan["linkinfo"]["info_kind"], "vlan");
    assert_eq!(vlan["linkinfo"]["info_data"]["id"], 100);
    assert_eq!(vlan["link"], "bond0");
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "203.0.113.2")),
        "no answer over VLAN 100"
    );
    assert_eq!(apply_ok(&lab), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_route_in_table_200_carries_traffic_to_its_gateway() {
    let (lab, peer) = bridged_lab("table200", 1);
    // Behind the gateway: an address only table 200 knows the way to.
    peer.ip(&["addr", "add", "192.0.2.1/32", "dev", "lo"]);
    lab.write_config(
        "\
service network eth1
    ip address 198.51.100.1/24
    ip route default 198.51.100.2 table 200
",
        "",
        "",
    );
    let before = lab.dump();
    let dry_run = lab.lbconsole(&["apply", "--dry-run"]).expect_success();
    assert_eq!(
        dry_run,
        "set eth1 up\nadd address 198.51.100.1/24 to eth1\nadd route default via 198.51.100.2 dev eth1 table 200\n"
    );
    assert_same_kernel(&before, &lab.dump());
    let plan = apply_ok(&lab);
    assert!(
        plan.contains("add route default via 198.51.100.2 dev eth1 table 200"),
        "{plan}"
    );
    let routes = lab.ip(&["-j", "route", "show", "table", "200"]);
    let routes: serde_json::Value = serde_json::from_str(&routes).expect("JSON");
    assert_eq!(routes[0]["dst"], "default");
    assert_eq!(routes[0]["gateway"], "198.51.100.2");
    assert_eq!(routes[0]["protocol"], "202");

    assert!(
        !lab.ping(None, "192.0.2.1"),
        "reached 192.0.2.1 without table 200"
    );
    // Flows will add such rules; here the test does, to send traffic through table 200.
    lab.ip(&["rule", "add", "to", "192.0.2.1", "lookup", "200"]);
    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "192.0.2.1")),
        "no answer through table 200"
    );
    let status = lab.lbconsole(&["status"]).expect_success();
    assert!(
        status.contains("table 200\n    default via 198.51.100.2 dev eth1  (lbconsole)"),
        "{status}"
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn changing_and_removing_sections_changes_only_what_differs() {
    let (lab, _peer) = bridged_lab("changes", 3);
    // An interface the file never names, with an address and a route of someone
    // else's: lbconsole must leave them alone whatever it does.
    lab.ip(&["link", "set", "eth3", "up"]);
    assert!(wait_until(
        Duration::from_secs(10),
        || lab.link("eth3")["operstate"] == "UP"
    ));
    lab.ip(&["addr", "add", "192.0.2.10/24", "dev", "eth3"]);
    lab.ip(&[
        "route",
        "add",
        "203.0.113.0/24",
        "via",
        "192.0.2.1",
        "table",
        "300",
    ]);
    let foreign = |lab: &Lab| {
        (
            lab.ip(&["-j", "addr", "show", "dev", "eth3"]),
            lab.ip(&["-j", "route", "show", "table", "300"]),
        )
    };
    let untouched = foreign(&lab);
    lab.write_config(ACTIVE_BACKUP, "", "");
    apply_ok(&lab);

    // The mode cannot change live: the bond is recreated, and the plan says why.
    let lacp = ACTIVE_BACKUP
        .replace("active-backup", "802.3ad")
        .replace("    bonding primary eth1\n", "");
    lab.write_config(&lacp, "", "");
    let plan = apply_ok(&lab);
    assert!(
        plan.contains("delete bond bond0  (recreated: a bond's mode cannot change"),
        "{plan}"
    );
    assert_eq!(
        lab.link("bond0")["linkinfo"]["info_data"]["mode"],
        "802.3ad"
    );
    assert_eq!(apply_ok(&lab), "no changes\n");

    // A new address: one address out, one in, nothing else.
    lab.write_config(&lacp.replace("198.51.100.1/24", "198.51.100.7/24"), "", "");
    let plan = apply_ok(&lab);
    assert_eq!(
        plan,
        "remove address 198.51.100.1/24 from bond0\nadd address 198.51.100.7/24 to bond0\napplied 2 changes\n"
    );

    // The section goes: the slaves are released and the bond deleted. With the
    // address goes everything lbconsole runs, which takes `--yes`.
    lab.write_config("", "", "");
    lab.lbconsole(&["apply", "--yes"]).expect_success();
    assert!(!lab.has_link("bond0"));
    assert!(lab.link("eth1")["master"].is_null());
    assert!(lab.link("eth2")["master"].is_null());
    assert_eq!(foreign(&lab), untouched);
    assert_eq!(apply_ok(&lab), "no changes\n");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_missing_slave_is_refused_with_one_sentence_and_nothing_changes() {
    let (lab, _peer) = bridged_lab("missing", 2);
    lab.write_config(
        &ACTIVE_BACKUP.replace("slave eth1 eth2", "slave eth1 eth2 eth9"),
        "",
        "",
    );
    let before = lab.dump();
    let run = lab.lbconsole(&["apply"]);
    assert_eq!(run.code(), Some(1));
    assert_eq!(run.stderr, "lbconsole: interface eth9 does not exist\n");
    assert_same_kernel(&before, &lab.dump());
    let dry = lab.lbconsole(&["apply", "--dry-run"]);
    assert_eq!(dry.code(), Some(1));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_kernel_refusal_mid_plan_is_undone() {
    let (lab, _peer) = bridged_lab("refusal", 2);
    // The kernel refuses a VLAN larger than its parent, after the bond and the
    // VLAN have been created: both must go again.
    lab.write_config(
        &format!("{ACTIVE_BACKUP}\nservice network vlan100\n    type vlan\n    vlan id 100 parent bond0\n    mtu 9000\n"),
        "",
        "",
    );
    let before = lab.dump();
    let run = lab.lbconsole(&["apply"]);
    assert_eq!(run.code(), Some(1), "{run}");
    assert!(
        run.stderr
            .starts_with("lbconsole: set vlan100 mtu 1500 -> 9000: ")
            && run
                .stderr
                .trim_end()
                .ends_with("change(s) made before it were undone"),
        "{}",
        run.stderr
    );
    assert_same_kernel(&before, &lab.dump());
}

/// The real backend, failing on purpose at one operation.
pub(crate) struct FailAt {
    pub(crate) inner: NetlinkBackend,
    pub(crate) fail_at: usize,
    pub(crate) executed: usize,
}

impl NetworkBackend for FailAt {
    async fn observe(&mut self) -> Result<Observation, KernelError> {
        self.inner.observe().await
    }

    async fn execute(&mut self, op: &NetOp) -> Result<(), KernelError> {
        self.executed += 1;
        if self.executed == self.fail_at + 1 {
            return Err(KernelError::Operation {
                op: op.to_string(),
                cause: Cause::Other("injected failure".to_owned()),
            });
        }
        self.inner.execute(op).await
    }

    fn has_module(&self, name: &str) -> bool {
        self.inner.has_module(name)
    }

    fn may_change(&self) -> bool {
        self.inner.may_change()
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_failure_at_any_step_leaves_the_kernel_exactly_as_it_was() {
    let (lab, _peer) = bridged_lab("every-step", 3);
    // eth3 joins the bond in `to` only. A link that has never been up shows the
    // placeholder qdisc `noop` until the kernel first opens it and attaches the
    // default one, which nothing can take back; a real NIC has been up, so this
    // one is opened once before the comparison starts.
    lab.ip(&["link", "set", "eth3", "up"]);
    lab.ip(&["link", "set", "eth3", "down"]);
    let from = format!(
        "{ACTIVE_BACKUP}    ip route default 198.51.100.254 table 200\n\nservice network vlan100\n    type vlan\n    vlan id 100 parent bond0\n    ip address 203.0.113.1/24\n"
    );
    let to = "\
service network bond0
    type bonding
    bonding mode 802.3ad
    slave eth2 eth3
    mtu 1400
    ip address 198.51.100.7/24
    ip route default 198.51.100.254 table 200

service network eth1
    ip address 192.0.2.1/24
";
    lab.write_config(&from, "", "");
    apply_ok(&lab);
    let (from, to) = (network(&from), network(to));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let steps = runtime.block_on(async {
        let mut backend = NetlinkBackend::connect().await.expect("netlink");
        apply::plan_network(&mut backend, &to, Some(&from), Default::default())
            .await
            .expect("a plan")
    });
    assert!(steps.len() > 10, "a plan worth breaking: {steps:#?}");
    // Carrier, operstate and the active slave follow a change by themselves, some
    // of it up to a second later (the kernel's link watch): compare settled
    // states, each time.
    let settled = || {
        let links = ["bond0", "vlan100", "eth1", "eth2"];
        links.iter().all(|link| lab.has_link(link))
            && links.iter().all(|link| lab.link(link)["operstate"] == "UP")
            && lab.link("bond0")["linkinfo"]["info_data"]["active_slave"] == "eth1"
            && ["eth1", "eth2"]
                .iter()
                .all(|slave| lab.link(slave)["linkinfo"]["info_slave_data"]["mii_status"] == "UP")
    };
    assert!(
        wait_until(Duration::from_secs(10), settled),
        "{:#?}",
        lab.dump()
    );
    let before = lab.dump();
    for fail_at in 0..steps.len() {
        let result = runtime.block_on(async {
            let mut backend = FailAt {
                inner: NetlinkBackend::connect().await.expect("netlink"),
                fail_at,
                executed: 0,
            };
            apply::execute_network(&mut backend, &steps).await
        });
        assert!(result.is_err(), "step {fail_at} did not fail");
        // Not asserted: when it does not settle, the diff below says why.
        let _ = wait_until(Duration::from_secs(10), settled);
        let after = lab.dump();
        assert!(
            before == after,
            "failing at step {fail_at} ({}) changed the kernel:\n{}",
            steps[fail_at],
            before.diff(&after)
        );
    }
}

fn network(text: &str) -> lbconsole::config::model::NetworkConfig {
    let (config, diagnostics) = parse_network(text.as_bytes());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    config
}
