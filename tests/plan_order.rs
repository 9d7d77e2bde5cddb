//! The desired state does not depend on the order of sections: `network.conf`'s
//! interfaces and `lvs.conf`'s directors are sets, written in whatever order an
//! administrator likes (a bond before or after its slaves' own sections). Flows are
//! not: they are an ordered list, the first match decides.

use lbconsole::apply;
use lbconsole::config::model::{LvsConfig, NetworkConfig};
use lbconsole::config::parse::{parse_flows, parse_lvs, parse_network};
use lbconsole::config::{self, Sources};
use lbconsole::kernel::fake::FakeKernel;
use lbconsole::plan::{Step, flows, ipvs};
use proptest::prelude::*;

const PORTS: [&str; 6] = ["eth0", "eth1", "eth2", "eth3", "eth4", "eth5"];

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

/// The plan from `kernel` to `config`, one line per step.
fn network_plan(kernel: &mut FakeKernel, config: &NetworkConfig) -> String {
    let steps = network_steps(kernel, config);
    steps.iter().map(|s| format!("{s}\n")).collect()
}

/// The steps from `kernel` to `config`.
fn network_steps(kernel: &mut FakeKernel, config: &NetworkConfig) -> Vec<Step> {
    block_on(apply::plan_network(
        kernel,
        config,
        None,
        Default::default(),
    ))
    .expect("a plan")
}

/// Plans `config` against `kernel` and carries the plan out.
fn apply_network(kernel: &mut FakeKernel, config: &NetworkConfig) {
    let steps = network_steps(kernel, config);
    block_on(apply::execute_network(kernel, &steps)).expect("applies");
}

fn ipvs_plan(config: &LvsConfig) -> String {
    let steps = ipvs::diff(&Default::default(), &ipvs::desired(config));
    steps.iter().map(|s| format!("{s}\n")).collect()
}

/// One `service network` section, and whether it is an empty section of a bond's
/// slave, which says nothing the bond does not say already.
#[derive(Debug, Clone)]
struct Section(String, bool);

/// A valid `network.conf` over [`PORTS`], as sections: up to two bonds over
/// disjoint ports, whose slaves may have sections of their own (empty, or
/// `auto off`), unbonded ports with an MTU and an address, and a VLAN on the
/// first bond or port.
fn network_sections() -> impl Strategy<Value = Vec<Section>> {
    (
        Just(PORTS.to_vec()).prop_shuffle(),
        0usize..=2,
        1usize..=2,
        1usize..=2,
        proptest::collection::vec((any::<bool>(), any::<bool>(), 0u8..4), PORTS.len()),
        any::<bool>(),
    )
        .prop_map(|(ports, bonds, first, second, choices, vlan)| {
            let mut sections = Vec::new();
            let mut taken = 0;
            let mut vlan_parent = None;
            for (index, size) in [first, second].into_iter().take(bonds).enumerate() {
                let slaves = &ports[taken..taken + size];
                taken += size;
                let name = format!("bond{index}");
                let mode = ["active-backup", "balance-rr", "802.3ad"][index + size - 1];
                let mut text = format!(
                    "service network {name}\n type bonding\n bonding mode {mode}\n slave {}\n ip address 10.{index}.0.1/24\n",
                    slaves.join(" ")
                );
                if mode == "active-backup" {
                    text.push_str(&format!(" bonding primary {}\n", slaves[0]));
                }
                if choices[index].0 {
                    text.push_str(" mtu 9000\n");
                }
                sections.push(Section(text, false));
                vlan_parent.get_or_insert(name);
                for (slave, (own_section, down, _)) in slaves.iter().zip(&choices[taken - size..]) {
                    if *own_section {
                        let auto = if *down { " auto off\n" } else { "" };
                        sections.push(Section(format!("service network {slave}\n{auto}"), !down));
                    }
                }
            }
            for (index, port) in ports[taken..].iter().enumerate() {
                let (own_section, down, mtu) = choices[taken + index];
                if !own_section {
                    continue;
                }
                let mut text = format!(
                    "service network {port}\n ip address 10.{}.0.1/24\n",
                    10 + index
                );
                if down {
                    text.push_str(" auto off\n");
                } else {
                    text.push_str(&format!(" ip route 10.{}.0.0/16 10.{}.0.254\n", 100 + index, 10 + index));
                }
                if mtu > 0 {
                    text.push_str(&format!(" mtu {}\n", 1400 + 100 * u32::from(mtu)));
                }
                sections.push(Section(text, false));
                vlan_parent.get_or_insert_with(|| (*port).to_owned());
            }
            if vlan && let Some(parent) = vlan_parent {
                sections.push(Section(format!(
                    "service network vlan7\n type vlan\n vlan id 7 parent {parent}\n ip address 10.77.0.1/24\n"
                ), false));
            }
            sections
        })
}

fn joined(sections: &[Section]) -> String {
    sections
        .iter()
        .map(|s| s.0.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` parses and validates without errors.
fn valid_network(text: &str) -> NetworkConfig {
    let checked = config::check(Sources {
        network: text.as_bytes(),
        ..Default::default()
    });
    assert!(!checked.has_errors(), "{text}\n{:?}", checked.diagnostics);
    checked.config.network
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn shuffled_network_sections_give_the_same_plan(
        (sections, shuffled) in network_sections()
            .prop_flat_map(|s| (Just(s.clone()), Just(s).prop_shuffle()))
    ) {
        let (written, reordered) = (joined(&sections), joined(&shuffled));
        let (config, config_reordered) = (valid_network(&written), valid_network(&reordered));
        let mut kernel = FakeKernel::with_veths(&PORTS);
        let plan = network_plan(&mut kernel.clone(), &config);
        prop_assert_eq!(&plan, &network_plan(&mut kernel.clone(), &config_reordered),
            "\n{}\n--- reordered ---\n{}", written, reordered);

        // Carried out, either order leaves nothing more to do.
        let steps = block_on(apply::plan_network(&mut kernel, &config, None, Default::default()))
            .expect("a plan");
        block_on(apply::execute_network(&mut kernel, &steps))
            .unwrap_or_else(|e| panic!("{e}\n{plan}"));
        prop_assert_eq!(network_plan(&mut kernel, &config_reordered), "",
            "\n{}\n--- reordered ---\n{}", written, reordered);
    }

    #[test]
    fn empty_sections_of_bond_slaves_change_nothing(sections in network_sections()) {
        let with = joined(&sections);
        let without: Vec<Section> = sections.into_iter().filter(|s| !s.1).collect();
        let without = joined(&without);
        let kernel = FakeKernel::with_veths(&PORTS);
        prop_assert_eq!(
            network_plan(&mut kernel.clone(), &valid_network(&with)),
            network_plan(&mut kernel.clone(), &valid_network(&without)),
            "\n{}\n--- without the slaves' empty sections ---\n{}", with, without
        );
    }

    #[test]
    fn shuffled_directors_give_the_same_ipvs_plan_and_ruleset(
        order in Just((0..example_lvs().directors.len()).collect::<Vec<_>>()).prop_shuffle()
    ) {
        let lvs = example_lvs();
        let mut reordered = lvs.clone();
        reordered.directors = order.iter().map(|&i| lvs.directors[i].clone()).collect();
        prop_assert_eq!(ipvs_plan(&lvs), ipvs_plan(&reordered));
        let flows = parse_flows(&read("examples/flows.conf")).0;
        prop_assert_eq!(flows::render(&flows, &lvs), flows::render(&flows, &reordered));
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn example_lvs() -> LvsConfig {
    parse_lvs(&read("examples/lvs.conf")).0
}

#[test]
fn slaves_with_sections_of_their_own_are_enslaved_before_or_after_their_bond() {
    let bond = "service network bond0\n type bonding\n bonding mode active-backup\n bonding primary eth1\n bonding miimon 100\n slave eth1 eth2\n ip address 172.16.100.5/24\n";
    let slaves = "service network eth1\n\nservice network eth2\n";
    for text in [format!("{bond}\n{slaves}"), format!("{slaves}\n{bond}")] {
        let config = parse_network(text.as_bytes()).0;
        let mut kernel = FakeKernel::with_veths(&PORTS);
        let plan = network_plan(&mut kernel, &config);
        assert!(plan.contains("enslave eth1 to bond0\n"), "{text}\n{plan}");
        assert!(plan.contains("enslave eth2 to bond0\n"), "{text}\n{plan}");
        apply_network(&mut kernel, &config);
        assert_eq!(kernel.state.links["eth1"].master.as_deref(), Some("bond0"));
        assert_eq!(network_plan(&mut kernel, &config), "", "{text}");
    }
}

#[test]
fn a_slave_section_with_auto_off_keeps_the_slave_enslaved_but_down() {
    let text = "service network eth2\n auto off\n\nservice network bond0\n type bonding\n slave eth1 eth2\n";
    let config = parse_network(text.as_bytes()).0;
    let mut kernel = FakeKernel::with_veths(&PORTS);
    apply_network(&mut kernel, &config);
    let eth2 = &kernel.state.links["eth2"];
    assert_eq!((eth2.master.as_deref(), eth2.up), (Some("bond0"), false));
    assert_eq!(network_plan(&mut kernel, &config), "");
}
