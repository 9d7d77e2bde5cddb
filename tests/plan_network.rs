//! The Network planner against the in-memory kernel: the plan's order, that a
//! second apply has nothing to do, and that a failure at any step is undone
//! exactly. (The same claims are tested on the real kernel in the lab.)

use lbconsole::apply::{self, ApplyError};
use lbconsole::config::model::NetworkConfig;
use lbconsole::config::model::types::{Family, IpNet};
use lbconsole::config::parse::parse_network;
use lbconsole::kernel::NetworkBackend;
use lbconsole::kernel::fake::FakeKernel;
use lbconsole::plan::network::{self, LinkType, RouteEntry};
use lbconsole::plan::{NetworkState, Step};

/// The sandbox's interfaces: four veths, up, unaddressed.
fn sandbox() -> FakeKernel {
    FakeKernel::with_veths(&["eth0", "eth1", "eth2", "eth3"])
}

fn network(text: &str) -> NetworkConfig {
    let (config, diagnostics) = parse_network(text.as_bytes());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    config
}

fn examples() -> NetworkConfig {
    network(&std::fs::read_to_string("examples/network.conf").expect("examples/network.conf"))
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

fn plan(
    kernel: &mut FakeKernel,
    config: &NetworkConfig,
    previous: Option<&NetworkConfig>,
) -> Vec<Step> {
    block_on(apply::plan_network(
        kernel,
        config,
        previous,
        Default::default(),
    ))
    .expect("a plan")
}

fn printed(steps: &[Step]) -> String {
    steps.iter().map(|s| format!("{s}\n")).collect()
}

/// Applies `config` to `kernel` for real (no injected failure).
fn apply(kernel: &mut FakeKernel, config: &NetworkConfig, previous: Option<&NetworkConfig>) {
    let steps = plan(kernel, config, previous);
    block_on(apply::execute_network(kernel, &steps)).expect("apply succeeds");
}

const VARIANTS: &[(&str, &str)] = &[
    ("empty", ""),
    (
        "bond",
        "service network bond0\n type bonding\n bonding mode active-backup\n bonding primary eth2\n slave eth2 eth3\n ip address 172.16.100.5/24\n ip route default 172.16.100.1 table 200\n",
    ),
    (
        "bond-lacp",
        "service network bond0\n type bonding\n bonding mode 802.3ad\n bonding lacp-rate fast\n bonding xmit-hash-policy layer3+4\n slave eth2 eth3\n mtu 9000\n ip address 172.16.100.5/24\n",
    ),
    (
        "bond-one-slave-vlan",
        "service network bond0\n type bonding\n slave eth2\n ip address 172.16.100.6/24\nservice network vlan100\n type vlan\n vlan id 100 parent bond0\n ip address 10.0.0.1/16\n ip route 10.200.0.0/16 10.0.0.254\n",
    ),
    (
        "bond-readdressed",
        "service network bond0\n type bonding\n bonding mode active-backup\n bonding primary eth2\n slave eth2 eth3\n ip address 172.16.100.7/24\n ip route default 172.16.100.1 table 200\n",
    ),
    (
        "bond-slaves-with-sections",
        "service network eth2\n\nservice network bond0\n type bonding\n bonding mode active-backup\n bonding primary eth2\n slave eth2 eth3\n ip address 172.16.100.5/24\n\nservice network eth3\n auto off\n",
    ),
    (
        "eth-only",
        "service network eth2\n mtu 1400\n ip address 172.16.100.5/24\n ip route default 172.16.100.1\nservice network eth3\n auto off\n",
    ),
];

#[test]
fn first_apply_of_the_examples_creates_in_kernel_order() {
    let mut kernel = sandbox();
    let steps = plan(&mut kernel, &examples(), None);
    insta::assert_snapshot!(printed(&steps));
}

#[test]
fn a_second_apply_of_the_same_config_has_nothing_to_do() {
    let mut kernel = sandbox();
    apply(&mut kernel, &examples(), None);
    assert_eq!(plan(&mut kernel, &examples(), Some(&examples())), []);
}

#[test]
fn changing_the_bond_mode_recreates_the_bond_and_says_why() {
    let [before, after] = [VARIANTS[1].1, VARIANTS[2].1].map(network);
    let mut kernel = sandbox();
    apply(&mut kernel, &before, None);
    insta::assert_snapshot!(printed(&plan(&mut kernel, &after, Some(&before))));
}

#[test]
fn removing_the_bond_releases_its_slaves_then_deletes_it() {
    let before = network(VARIANTS[1].1);
    let mut kernel = sandbox();
    apply(&mut kernel, &before, None);
    let steps = plan(&mut kernel, &network(""), Some(&before));
    insta::assert_snapshot!(printed(&steps));
}

#[test]
fn changing_one_address_touches_only_that_address() {
    let before =
        network("service network eth0\n ip address 10.0.0.1/24\n ip address 10.0.1.1/24\n");
    let after = network("service network eth0\n ip address 10.0.0.1/24\n ip address 10.0.2.1/24\n");
    let mut kernel = sandbox();
    apply(&mut kernel, &before, None);
    assert_eq!(
        printed(&plan(&mut kernel, &after, Some(&before))),
        "remove address 10.0.1.1/24 from eth0\nadd address 10.0.2.1/24 to eth0\n"
    );
}

#[test]
fn every_transition_converges_and_a_failure_at_any_step_is_undone() {
    for (from_name, from) in VARIANTS {
        for (to_name, to) in VARIANTS {
            let (from, to) = (network(from), network(to));
            let mut kernel = sandbox();
            apply(&mut kernel, &from, None);
            let before = kernel.state.clone();
            let steps = plan(&mut kernel, &to, Some(&from));

            for fail_at in 0..steps.len() {
                let mut failing = FakeKernel::new(before.clone());
                failing.fail_at = Some(fail_at);
                let result = block_on(apply::execute_network(&mut failing, &steps));
                assert!(
                    matches!(result, Err(ApplyError::RolledBack { undone, .. }) if undone == fail_at),
                    "{from_name} -> {to_name}, failing at step {fail_at}: {result:?}\n{}",
                    printed(&steps)
                );
                assert_eq!(
                    failing.state,
                    before,
                    "{from_name} -> {to_name}: failing at step {fail_at} left the kernel changed\n{}",
                    printed(&steps)
                );
            }

            block_on(apply::execute_network(&mut kernel, &steps))
                .unwrap_or_else(|e| panic!("{from_name} -> {to_name}: {e}\n{}", printed(&steps)));
            assert_eq!(
                plan(&mut kernel, &to, Some(&to)),
                [],
                "{from_name} -> {to_name} did not converge"
            );
        }
    }
}

#[test]
fn a_missing_slave_is_refused_before_anything_changes() {
    let config = network("service network bond0\n type bonding\n slave eth2 eth9\n");
    let mut kernel = sandbox();
    let error = block_on(apply::plan_network(
        &mut kernel,
        &config,
        None,
        Default::default(),
    ))
    .expect_err("eth9 is missing");
    assert_eq!(error.to_string(), "interface eth9 does not exist");
    assert_eq!(kernel.executed, 0);
}

#[test]
fn a_bond_lbconsole_did_not_create_is_not_taken_over() {
    let mut state = sandbox().state;
    let mut foreign = state.links["eth0"].clone();
    foreign.kind = LinkType::Other("bridge".to_owned());
    state.links.insert("br0".to_owned(), foreign);
    let config = network("service network br0\n type bonding\n slave eth2\n");
    let mut kernel = FakeKernel::new(state);
    let error = block_on(apply::plan_network(
        &mut kernel,
        &config,
        None,
        Default::default(),
    ))
    .expect_err("br0 is foreign");
    assert_eq!(
        error.to_string(),
        "br0 exists as a bridge link that lbconsole did not create; rename the section or delete the link"
    );
}

/// An IPv6 variant: the links and IPv4 of `config`, plus IPv6 addresses and
/// routes, and links held down. (`network.conf` takes IPv6 once the model
/// does; until then the plan's own types carry it.)
struct V6 {
    name: &'static str,
    config: &'static str,
    addresses: &'static [(&'static str, &'static str)],
    /// Table, destination, gateway, device.
    routes: &'static [(u32, &'static str, &'static str, &'static str)],
    down: &'static [&'static str],
}

const BOND: &str = "service network bond0\n type bonding\n bonding mode active-backup\n slave eth2 eth3\n ip address 172.16.100.5/24\n";

const V6_VARIANTS: &[V6] = &[
    V6 {
        name: "empty",
        config: "",
        addresses: &[],
        routes: &[],
        down: &[],
    },
    V6 {
        name: "bond6",
        config: BOND,
        addresses: &[("bond0", "2001:db8::5/64")],
        routes: &[
            (200, "::/0", "2001:db8::1", "bond0"),
            (254, "2001:db8:100::/48", "fe80::fe", "bond0"),
        ],
        down: &[],
    },
    V6 {
        name: "bond6-vlan",
        config: "service network bond0\n type bonding\n bonding mode active-backup\n slave eth2 eth3\n ip address 172.16.100.5/24\nservice network vlan100\n type vlan\n vlan id 100 parent bond0\n",
        addresses: &[
            ("bond0", "2001:db8::5/64"),
            ("vlan100", "2001:db8:64::1/64"),
            ("vlan100", "2001:db8:65::1/64"),
        ],
        routes: &[
            (200, "::/0", "2001:db8::1", "bond0"),
            (254, "2001:db8:200::/48", "2001:db8:64::fe", "vlan100"),
        ],
        down: &[],
    },
    V6 {
        name: "bond6-readdressed",
        config: BOND,
        addresses: &[("bond0", "2001:db8::7/64")],
        routes: &[(200, "::/0", "2001:db8::1", "bond0")],
        down: &[],
    },
    V6 {
        name: "eth1-up",
        config: "service network eth1\n ip address 10.0.0.1/24\n",
        addresses: &[("eth1", "2001:db8:1::1/64"), ("eth1", "2001:db8:2::1/64")],
        routes: &[(254, "2001:db8:300::/48", "2001:db8:1::fe", "eth1")],
        down: &[],
    },
    V6 {
        name: "eth1-down",
        config: "service network eth1\n auto off\n ip address 10.0.0.1/24\n",
        addresses: &[("eth1", "2001:db8:1::1/64"), ("eth1", "2001:db8:2::1/64")],
        routes: &[],
        down: &["eth1"],
    },
];

fn net(text: &str) -> IpNet {
    IpNet::try_from(text.to_owned()).expect("an address with its prefix")
}

/// The state `variant` asks for on `kernel` as it is now.
fn desired6(kernel: &mut FakeKernel, variant: &V6) -> NetworkState {
    let observed = block_on(kernel.observe()).expect("observe").state;
    let mut desired = network::desired(&network(variant.config), None, &observed).expect("desired");
    // What an earlier variant gave in IPv6 is handed back, as `previous` does.
    for link in desired.links.values_mut() {
        link.addresses.retain(|a| a.family() == Family::Ipv4);
    }
    for (link, address) in variant.addresses {
        let link = desired.links.get_mut(*link).expect("a link of the variant");
        link.addresses.insert(net(address));
    }
    for (table, destination, gateway, device) in variant.routes {
        desired.routes.insert(RouteEntry {
            table: *table,
            destination: net(destination),
            gateway: gateway.parse().expect("a gateway"),
            device: (*device).to_owned(),
        });
    }
    for link in variant.down {
        desired.links.get_mut(*link).expect("a link").up = false;
    }
    desired
}

fn plan6(kernel: &mut FakeKernel, variant: &V6) -> Vec<Step> {
    let desired = desired6(kernel, variant);
    network::diff(&kernel.state, &desired)
}

fn apply6(kernel: &mut FakeKernel, variant: &V6) {
    let steps = plan6(kernel, variant);
    block_on(apply::execute_network(kernel, &steps))
        .unwrap_or_else(|e| panic!("{}: {e}\n{}", variant.name, printed(&steps)));
}

#[test]
fn ipv6_addresses_and_routes_are_planned_like_ipv4_ones() {
    let mut kernel = sandbox();
    let steps = plan6(&mut kernel, &V6_VARIANTS[1]);
    assert_eq!(
        printed(&steps),
        "create bond bond0 (mode active-backup, miimon 100, updelay 1000, downdelay 1000)\n\
         set eth2 down  (a slave goes down before it is enslaved)\n\
         enslave eth2 to bond0\n\
         set eth3 down  (a slave goes down before it is enslaved)\n\
         enslave eth3 to bond0\n\
         set bond0 up\n\
         add address 172.16.100.5/24 to bond0\n\
         add address 2001:db8::5/64 to bond0\n\
         add route default via 2001:db8::1 dev bond0 table 200\n\
         add route 2001:db8:100::/48 via fe80::fe dev bond0\n"
    );
}

#[test]
fn every_ipv6_transition_converges_and_a_failure_at_any_step_is_undone() {
    for from in V6_VARIANTS {
        for to in V6_VARIANTS {
            let mut kernel = sandbox();
            apply6(&mut kernel, from);
            let before = kernel.state.clone();
            let steps = plan6(&mut kernel, to);
            let (from, to) = (from.name, to);

            for fail_at in 0..steps.len() {
                let mut failing = FakeKernel::new(before.clone());
                failing.fail_at = Some(fail_at);
                let result = block_on(apply::execute_network(&mut failing, &steps));
                assert!(
                    matches!(result, Err(ApplyError::RolledBack { undone, .. }) if undone == fail_at),
                    "{from} -> {}, failing at step {fail_at}: {result:?}\n{}",
                    to.name,
                    printed(&steps)
                );
                assert_eq!(
                    failing.state,
                    before,
                    "{from} -> {}: failing at step {fail_at} left the kernel changed\n{}",
                    to.name,
                    printed(&steps)
                );
            }

            block_on(apply::execute_network(&mut kernel, &steps))
                .unwrap_or_else(|e| panic!("{from} -> {}: {e}\n{}", to.name, printed(&steps)));
            assert_eq!(
                plan6(&mut kernel, to),
                [],
                "{from} -> {} did not converge",
                to.name
            );
        }
    }
}

/// The kernel drops a link's IPv6 addresses when it goes down: the plan takes
/// them off and puts them back itself, so that the plan says so and an undo
/// restores them.
#[test]
fn a_link_going_down_keeps_its_ipv6_addresses_as_steps_of_the_plan() {
    let mut kernel = sandbox();
    apply6(&mut kernel, &V6_VARIANTS[4]);
    assert_eq!(
        printed(&plan6(&mut kernel, &V6_VARIANTS[5])),
        "remove route 2001:db8:300::/48 via 2001:db8:1::fe dev eth1\n\
         remove address 2001:db8:1::1/64 from eth1\n\
         remove address 2001:db8:2::1/64 from eth1\n\
         set eth1 down\n\
         add address 2001:db8:1::1/64 to eth1\n\
         add address 2001:db8:2::1/64 to eth1\n"
    );
    apply6(&mut kernel, &V6_VARIANTS[5]);
    let eth1 = &kernel.state.links["eth1"];
    assert!(!eth1.up);
    assert!(eth1.addresses.contains(&net("2001:db8:2::1/64")));
}

#[test]
fn an_address_another_host_has_fails_the_apply_which_rolls_back() {
    let mut kernel = sandbox();
    let steps = plan6(&mut kernel, &V6_VARIANTS[1]);
    let before = kernel.state.clone();
    kernel.duplicates.insert("2001:db8::5".parse().unwrap());
    let error = block_on(apply::execute_network(&mut kernel, &steps)).expect_err("DAD fails");
    assert!(
        matches!(&error, ApplyError::RolledBack { undone: 7, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with(
            "add address 2001:db8::5/64 to bond0: another host on the link of bond0 already \
             has 2001:db8::5 (duplicate address detection failed: the kernel marked \
             2001:db8::5/64 dadfailed) (the address was removed again)"
        ),
        "{error}"
    );
    assert_eq!(kernel.state, before);
}

/// The front of an HA pair: its own addresses, and a VIP of each family.
const HA_FRONT: &str = "service network eth0\n ip address 10.0.0.2/24\n ip address 2001:db8::2/64\n vrrp id 51\n vrrp address 10.0.0.100/24\n vrrp address 2001:db8::100/64\n";

/// What keepalived does on the master: adds the VIP, here with a prefix of
/// its own choosing.
fn keepalived_adds(kernel: &mut FakeKernel, link: &str, address: &str) {
    let address: IpNet = address.to_owned().try_into().expect("an address");
    kernel
        .state
        .links
        .get_mut(link)
        .expect("the link exists")
        .addresses
        .insert(address);
}

#[test]
fn a_vip_is_never_added_and_one_keepalived_holds_is_not_drift() {
    let config = network(HA_FRONT);
    let mut kernel = sandbox();
    let steps = plan(&mut kernel, &config, None);
    assert_eq!(
        printed(&steps),
        "add address 10.0.0.2/24 to eth0\nadd address 2001:db8::2/64 to eth0\n"
    );
    block_on(apply::execute_network(&mut kernel, &steps)).expect("apply succeeds");
    keepalived_adds(&mut kernel, "eth0", "10.0.0.100/32");
    keepalived_adds(&mut kernel, "eth0", "2001:db8::100/64");
    assert_eq!(plan(&mut kernel, &config, Some(&config)), []);
    assert_eq!(plan(&mut kernel, &config, None), []);
}

#[test]
fn removing_vrrp_lines_leaves_the_vips_keepalived_still_holds() {
    let before = network(HA_FRONT);
    let mut kernel = sandbox();
    apply(&mut kernel, &before, None);
    keepalived_adds(&mut kernel, "eth0", "10.0.0.100/24");
    keepalived_adds(&mut kernel, "eth0", "2001:db8::100/64");
    let without_vips =
        network("service network eth0\n ip address 10.0.0.2/24\n ip address 2001:db8::2/64\n");
    assert_eq!(plan(&mut kernel, &without_vips, Some(&before)), []);
    // Without the section, its own addresses are handed back, the VIPs not.
    assert_eq!(
        printed(&plan(&mut kernel, &network(""), Some(&before))),
        "remove address 10.0.0.2/24 from eth0\nremove address 2001:db8::2/64 from eth0\n"
    );
}

#[test]
fn a_recreated_bond_neither_removes_nor_adds_its_vip() {
    let vrrp = " vrrp id 51\n vrrp address 172.16.100.100/24\n";
    let before = network(&format!("{}{vrrp}", VARIANTS[1].1));
    let after = network(&format!("{}{vrrp}", VARIANTS[2].1));
    let mut kernel = sandbox();
    apply(&mut kernel, &before, None);
    keepalived_adds(&mut kernel, "bond0", "172.16.100.100/24");
    let steps = printed(&plan(&mut kernel, &after, Some(&before)));
    assert!(steps.contains("delete bond bond0"), "{steps}");
    assert!(!steps.contains("172.16.100.100"), "{steps}");
}
