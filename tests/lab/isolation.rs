//! The lab's own promises: each test has a network namespace of its own, commands it
//! spawns run there, and nothing is left behind.

use std::fs;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use crate::support::{Lab, assert_same_kernel, wait_until};

/// The network namespace of the calling thread, as `net:[INODE]`.
fn thread_netns() -> String {
    fs::read_link("/proc/thread-self/ns/net")
        .expect("read this thread's netns")
        .to_string_lossy()
        .into_owned()
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn spawned_commands_run_in_the_tests_namespace() {
    let outside = thread_netns();
    let lab = Lab::new("spawned");
    let inside = thread_netns();
    assert_ne!(inside, outside);
    assert_eq!(lab.sh("readlink /proc/self/ns/net").trim(), inside);
    // Only `lo`, up, and `/sys` shows this namespace, not the VM's.
    let links = lab.ip(&["-o", "link", "show"]);
    assert_eq!(links.lines().count(), 1, "{links}");
    assert!(links.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{links}");
    lab.ip(&["link", "add", "dummy7", "type", "dummy"]);
    assert!(lab.try_sh("test -e /sys/class/net/dummy7").success());
    assert!(std::path::Path::new("/sys/class/net/dummy7").exists());
    // A named namespace is another one again, and reachable by its name.
    let peer = lab.netns("peer");
    let peer_ns = peer.sh("readlink /proc/self/ns/net");
    assert_ne!(peer_ns.trim(), inside);
    assert_ne!(peer_ns.trim(), outside);
    let name = peer.name().to_owned();
    let cwd = std::env::current_dir().unwrap();
    drop(lab);
    assert_eq!(thread_netns(), outside);
    assert!(!std::path::Path::new("/sys/class/net/dummy7").exists());
    assert_eq!(std::env::current_dir().unwrap(), cwd);
    let names = fs::read_dir("/run/netns")
        .map(|dir| dir.map(|e| e.unwrap().file_name()).collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(!names.iter().any(|n| *n == *name), "{name} is left behind");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn two_tests_may_use_the_same_interface_names_at_once() {
    let barrier = Arc::new(Barrier::new(2));
    let tests: Vec<_> = (0..2)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let lab = Lab::new(&format!("same-names{i}"));
                let peer = lab.netns("peer");
                lab.veth("eth1", "p1", &peer);
                lab.ip(&["link", "add", "bond0", "type", "bond"]);
                lab.ip(&["link", "set", "eth1", "master", "bond0"]);
                let address = format!("198.51.100.{}/24", 10 + i);
                lab.ip(&["addr", "add", &address, "dev", "bond0"]);
                barrier.wait(); // both exist now
                let addresses = lab.ip(&["-o", "-4", "addr", "show", "dev", "bond0"]);
                barrier.wait();
                (lab.dump(), addresses, address)
            })
        })
        .collect();
    for test in tests {
        let (dump, addresses, address) = test.join().expect("the test thread passes");
        assert!(addresses.contains(&address), "{addresses}");
        assert_eq!(addresses.lines().count(), 1, "{addresses}");
        assert_eq!(dump.links.as_array().unwrap().len(), 3, "{dump:?}");
    }
    // Nothing of theirs is in this thread's namespace, the VM's.
    assert!(!std::path::Path::new("/sys/class/net/bond0").exists());
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_unchanged_kernel_dumps_the_same_twice() {
    let lab = Lab::new("dump");
    let peer = lab.netns("peer");
    lab.veth("eth1", "p1", &peer);
    lab.veth("eth2", "p2", &peer);
    peer.bridge("br0", &["p1", "p2"]);
    lab.ip(&["link", "add", "br1", "type", "bridge"]);
    lab.ip(&["link", "add", "bond0", "type", "bond", "mode", "802.3ad"]);
    lab.ip(&["link", "set", "eth1", "master", "bond0"]);
    lab.ip(&["link", "set", "eth2", "master", "br1"]);
    lab.ip(&[
        "link", "add", "link", "bond0", "name", "vlan100", "type", "vlan", "id", "100",
    ]);
    for link in ["bond0", "br1", "eth2", "vlan100"] {
        lab.ip(&["link", "set", link, "up"]);
    }
    lab.ip(&["addr", "add", "198.51.100.1/24", "dev", "vlan100"]);
    lab.ip(&[
        "route",
        "add",
        "default",
        "via",
        "198.51.100.254",
        "table",
        "200",
    ]);
    lab.ip(&["rule", "add", "fwmark", "200", "table", "200"]);
    // Without an LACP partner (a bridge does not forward LACPDUs) the slave's
    // 802.3ad port goes `expired` and, 3 s (the short timeout) later, `defaulted`
    // and `in_sync`: the kernel changes by itself until then. The bond gets its
    // carrier then, and the bond's and the VLAN's operstate follow up to a second
    // later (the kernel's link watch runs at most once a second).
    let settled = || {
        let state =
            &lab.link("eth1")["linkinfo"]["info_slave_data"]["ad_actor_oper_port_state_str"];
        state
            .as_array()
            .is_some_and(|s| s.contains(&"in_sync".into()) && !s.contains(&"expired".into()))
            && ["bond0", "vlan100"]
                .iter()
                .all(|link| lab.link(link)["operstate"] == "UP")
    };
    assert!(
        wait_until(Duration::from_secs(10), settled),
        "{:#?}",
        lab.dump()
    );
    let first = lab.dump();
    thread::sleep(Duration::from_secs(2));
    assert_same_kernel(&first, &lab.dump());
    lab.ip(&["link", "set", "vlan100", "mtu", "1400"]);
    let changed = first.diff(&lab.dump());
    // The link and its entry in `ip addr`: nothing else.
    assert_eq!(
        changed,
        "-links[vlan100].mtu = 1500\n+links[vlan100].mtu = 1400\n\
         -addresses[vlan100].mtu = 1500\n+addresses[vlan100].mtu = 1400\n"
    );
}
