//! The Network tab against the real kernel: bonds, VLANs, addresses and routes.

use std::time::Duration;

use crate::support::{Lab, wait_until};

/// The lab end to end: a bond of two veths whose peers share a bridge in a peer
/// namespace carries a ping across.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_active_backup_bond_over_veths_reaches_its_peer() {
    let lab = Lab::new("bond-smoke");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.veth("eth2", "p2", &peer);
    peer.bridge("br0", &["p1", "p2"]);
    peer.ip(&["addr", "add", "198.51.100.2/24", "dev", "br0"]);

    lab.ip(&[
        "link",
        "add",
        "bond0",
        "type",
        "bond",
        "mode",
        "active-backup",
        "miimon",
        "100",
    ]);
    lab.ip(&["link", "set", "eth1", "master", "bond0"]);
    lab.ip(&["link", "set", "eth2", "master", "bond0"]);
    lab.ip(&["addr", "add", "198.51.100.1/24", "dev", "bond0"]);
    lab.ip(&["link", "set", "bond0", "up"]);

    assert!(
        wait_until(Duration::from_secs(10), || lab.ping(None, "198.51.100.2")),
        "no answer from the peer across the bond: {:#?}",
        lab.dump()
    );
    assert!(lab.ping(Some(&peer), "198.51.100.1"));
    let bond = lab.link("bond0");
    assert_eq!(bond["linkinfo"]["info_kind"], "bond");
    assert_eq!(bond["linkinfo"]["info_data"]["mode"], "active-backup");
    assert_eq!(bond["linkinfo"]["info_data"]["miimon"], 100);
    assert_eq!(lab.link("eth1")["master"], "bond0");
    assert_eq!(lab.link("eth2")["master"], "bond0");
}
