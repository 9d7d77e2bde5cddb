//! The nft ruleset and routing rules built from `flows.conf`, without a kernel:
//! what `lbconsole apply` sends, one nft command per line, and how planning
//! decides whether the kernel's table must change.

use std::collections::BTreeSet;
use std::path::Path;

use lbconsole::config;
use lbconsole::config::model::types::Family;
use lbconsole::plan::flows::{self, FirewallOp, MarkRule, TableState};
use lbconsole::plan::nft_text;
use lbconsole::store::ConfigFiles;

fn examples() -> config::model::Config {
    let files = ConfigFiles::read(Path::new("examples")).expect("examples");
    let checked = config::check(files.sources());
    assert!(!checked.has_errors());
    checked.config
}

fn with_flows(text: &str) -> config::model::Config {
    let mut config = examples();
    let (flows, diagnostics) = config::parse::parse_flows(text.as_bytes());
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    config.flows = flows;
    config
}

#[test]
fn the_examples_render_to_one_batch_that_replaces_our_table() {
    let config = examples();
    let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
    let lines: Vec<String> = ruleset
        .batch
        .objects
        .iter()
        .map(|object| serde_json::to_string(object).expect("JSON"))
        .collect();
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn only_table_policies_need_routing_rules() {
    let config = examples();
    assert_eq!(
        flows::mark_rules(&config.flows),
        BTreeSet::from([Family::Ipv4, Family::Ipv6].map(|family| MarkRule {
            family,
            mark: 0x200c8,
            table: 200
        }))
    );
}

#[test]
fn skipped_flows_render_to_no_table_at_all() {
    let config = with_flows("flow a skip\n    match proto tcp\noutflow b skip\n    match\n");
    assert_eq!(flows::render(&config.flows, &config.lvs), None);
    assert!(flows::mark_rules(&config.flows).is_empty());
}

#[test]
fn any_change_to_a_flow_changes_the_fingerprint() {
    let base = with_flows("flow web permit\n    match proto tcp dstport 80\n");
    let fingerprint = |config: &config::model::Config| {
        flows::render(&config.flows, &config.lvs)
            .expect("a ruleset")
            .fingerprint
    };
    let same = with_flows("flow web permit\n    match proto tcp dstport 80\n");
    assert_eq!(fingerprint(&base), fingerprint(&same));
    for changed in [
        "flow web deny\n    match proto tcp dstport 80\n",
        "flow web permit\n    match proto tcp dstport 81\n",
        "flow web permit\n    match proto tcp not dstport 80\n",
        "flow web permit\n    ignore proto tcp dstport 80\n",
        "flow www permit\n    match proto tcp dstport 80\n",
    ] {
        assert_ne!(
            fingerprint(&base),
            fingerprint(&with_flows(changed)),
            "{changed}"
        );
    }
}

#[test]
fn planning_trusts_the_objects_only_while_the_generation_is_ours() {
    let config = examples();
    let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
    let installed = TableState::known(ruleset.objects.clone(), 7);
    assert_eq!(flows::diff(Some(&installed), Some(&ruleset)), None);
    assert_eq!(flows::diff(None, None), None);
    assert_eq!(
        flows::diff(Some(&installed), None),
        Some(FirewallOp::Remove)
    );
    assert_eq!(
        flows::diff(None, Some(&ruleset)),
        Some(FirewallOp::Install(ruleset.clone()))
    );
    // The generation moved (a hand edit, another program): the chain list
    // still looks right, but only a full replace is sure to undo the edit.
    let edited_by_hand = TableState {
        objects: None,
        generation: Some(8),
        ..installed
    };
    assert_eq!(
        flows::diff(Some(&edited_by_hand), Some(&ruleset)),
        Some(FirewallOp::Install(ruleset))
    );
}

/// The update from the `before` flows to the `after` ones, as its changes and
/// its batch's commands (`flush chain in-web`, `add rule in-web`).
fn update(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
    let (before, after) = (with_flows(before), with_flows(after));
    let old = flows::render(&before.flows, &before.lvs).expect("a ruleset");
    let new = flows::render(&after.flows, &after.lvs).expect("a ruleset");
    let state = TableState::known(old.objects, 3);
    let Some(FirewallOp::Update(update)) = flows::diff(Some(&state), Some(&new)) else {
        panic!("not an update");
    };
    assert_eq!(update.generation, 3);
    let commands = update
        .batch
        .objects
        .iter()
        .map(|object| {
            let json = serde_json::to_value(object).expect("JSON");
            let (command, body) = json.as_object().expect("a command").iter().next().unwrap();
            let (kind, object) = body.as_object().unwrap().iter().next().unwrap();
            let name = object.get("chain").or(object.get("name")).unwrap();
            format!("{command} {kind} {}", name.as_str().unwrap())
        })
        .collect();
    (update.changes, commands)
}

const TWO_FLOWS: &str = "flow web permit\n    match proto tcp dstport 80\nflow ssh permit\n    match proto tcp dstport 22\n";

#[test]
fn changing_one_flow_refills_only_its_chain() {
    let (changes, commands) = update(
        TWO_FLOWS,
        "flow web permit\n    match proto tcp dstport 8080\nflow ssh permit\n    match proto tcp dstport 22\n",
    );
    let fingerprint_chains = changes
        .iter()
        .filter(|change| change.contains(" chain ruleset-"))
        .count();
    assert_eq!(fingerprint_chains, 2, "one added, one removed: {changes:?}");
    let ours = |text: &String| !text.contains("ruleset-");
    assert_eq!(
        changes.iter().filter(|c| ours(c)).collect::<Vec<_>>(),
        ["replace chain in-web"]
    );
    assert_eq!(
        commands.iter().filter(|c| ours(c)).collect::<Vec<_>>(),
        ["flush chain in-web", "add rule in-web"]
    );
}

#[test]
fn adding_and_removing_flows_changes_their_chains_and_the_jumps() {
    let (changes, commands) = update(
        TWO_FLOWS,
        "flow web permit\n    match proto tcp dstport 80\nflow dns permit\n    match proto udp dstport 53\n",
    );
    let named: Vec<&str> = changes
        .iter()
        .map(String::as_str)
        .filter(|change| !change.contains("ruleset-"))
        .collect();
    assert_eq!(
        named,
        [
            "replace chain incoming",
            "add chain in-dns",
            "remove chain in-ssh"
        ]
    );
    // The jump to the removed chain goes (incoming is flushed) before the
    // chain is deleted; the new chain exists before incoming jumps to it.
    let at = |wanted: &str| commands.iter().position(|c| c == wanted).unwrap();
    assert!(at("add chain in-dns") < at("flush chain incoming"));
    assert!(at("flush chain incoming") < at("add rule in-dns"));
    assert!(at("add rule incoming") < at("delete chain in-ssh"));
    assert!(at("flush chain in-ssh") < at("delete chain in-ssh"));
    assert!(
        !commands.iter().any(|c| c.ends_with(" in-web")),
        "{commands:?}"
    );
}

#[test]
fn a_changed_set_is_flushed_and_given_its_elements_again() {
    let (before, mut after) = (examples(), examples());
    let old = flows::render(&before.flows, &before.lvs).expect("a ruleset");
    after.lvs.directors.truncate(1);
    let new = flows::render(&after.flows, &after.lvs).expect("a ruleset");
    let state = TableState::known(old.objects, 1);
    let Some(FirewallOp::Update(update)) = flows::diff(Some(&state), Some(&new)) else {
        panic!("not an update");
    };
    let sets: Vec<&String> = update
        .changes
        .iter()
        .filter(|change| change.contains(" set "))
        .collect();
    assert!(!sets.is_empty(), "{:?}", update.changes);
    assert!(
        sets.iter()
            .all(|change| change.starts_with("replace set nat-"))
    );
    assert!(!update.changes.iter().any(|c| c.contains("chain in-")));
}

/// Two rules of `nft -j list table inet lbconsole` as nft 1.0.6 prints them.
const LISTING: &str = r#"{"nftables": [
  {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
  {"table": {"family": "inet", "name": "lbconsole", "handle": 1}},
  {"chain": {"family": "inet", "table": "lbconsole", "name": "incoming", "handle": 1, "type": "filter", "hook": "prerouting", "prio": -150, "policy": "accept"}},
  {"chain": {"family": "inet", "table": "lbconsole", "name": "in-ssh", "handle": 2}},
  {"chain": {"family": "inet", "table": "lbconsole", "name": "ruleset-0123456789abcdef", "handle": 3}},
  {"rule": {"family": "inet", "table": "lbconsole", "chain": "incoming", "handle": 4, "comment": "flow ssh",
    "expr": [{"counter": {"packets": 7, "bytes": 420}}, {"jump": {"target": "in-ssh"}}]}},
  {"rule": {"family": "inet", "table": "lbconsole", "chain": "in-ssh", "handle": 5, "comment": "flow ssh rule 2",
    "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}},
             {"counter": {"packets": 3, "bytes": 180}}, {"accept": null}]}},
  {"rule": {"family": "inet", "table": "lbconsole", "chain": "incoming", "handle": 6, "comment": "loopback",
    "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}
]}"#;

#[test]
fn counters_and_chains_are_read_back_from_nfts_listing() {
    let listing = serde_json::from_str(LISTING).expect("nft's JSON");
    let counters = flows::counters(&listing);
    let summary: Vec<(String, Option<usize>, u64, u64)> = counters
        .iter()
        .map(|c| (c.flow.clone(), c.rule, c.packets, c.bytes))
        .collect();
    assert_eq!(
        summary,
        [
            ("ssh".to_owned(), None, 7, 420),
            ("ssh".to_owned(), Some(2), 3, 180)
        ]
    );
    let state = TableState::from_listing(&listing).expect("our table");
    assert_eq!(state.fingerprint.as_deref(), Some("0123456789abcdef"));
    assert_eq!(state.chains.len(), 3);
}

/// Each rule of the flows' own chains as `comment: expression`, one a line.
fn flow_rules(text: &str) -> String {
    let config = with_flows(text);
    let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
    let json = serde_json::to_value(&ruleset.batch).expect("JSON");
    json["nftables"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(|command| {
            let rule = &command["add"]["rule"];
            let chain = rule["chain"].as_str()?;
            (chain.starts_with("in-") || chain.starts_with("out-")).then(|| {
                format!(
                    "{}: {}",
                    rule["comment"].as_str().unwrap_or(""),
                    rule["expr"]
                )
            })
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn ipv6_rules_match_their_own_family_and_rules_without_one_match_both() {
    let rules = flow_rules(
        "flow web6 permit\n    match proto tcp dst 2001:db8::10 dstport 80\n\
         flow net6 deny\n    match src 2001:db8:100::/48 not dst 2001:db8::/64\n\
         flow ping6 permit\n    match proto icmpv6 icmptype echo-request\n\
         flow ping4 permit\n    match proto icmp icmptype 8\n\
         flow rest deny\n    ignore not proto icmp\n    match\n\
         outflow return6 table 200\n    match proto tcp src 2001:db8::/64 srcport 80\n",
    );
    let line = |comment: &str| {
        rules
            .lines()
            .find(|line| line.starts_with(&format!("{comment}: ")))
            .unwrap_or_else(|| panic!("no {comment} in\n{rules}"))
            .to_owned()
    };
    // An address brings its family: no `meta nfproto` beside it.
    assert!(line("flow web6 rule 1").contains(r#""field":"daddr","protocol":"ip6""#));
    assert!(!line("flow web6 rule 1").contains("nfproto"));
    // An ICMP protocol alone is bound to its family; ICMPv6 types are ICMPv6's.
    assert!(line("flow ping6 rule 1").contains(r#""right":"ipv6""#));
    assert!(
        line("flow ping6 rule 1")
            .contains(r#""field":"type","protocol":"icmpv6"}},"op":"==","right":128"#)
    );
    assert!(line("flow ping4 rule 1").contains(r#""right":"ipv4""#));
    // `not proto icmp` is every other packet, IPv6 ones included.
    assert!(!line("flow rest rule 1").contains("nfproto"), "{rules}");
    insta::assert_snapshot!(rules);
}

#[test]
fn the_examples_print_as_nft_text_one_command_a_line() {
    let config = examples();
    let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
    let text = nft_text::print(&ruleset.batch).expect("printable");
    assert_eq!(text.lines().count(), ruleset.batch.objects.len());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "add table inet lbconsole");
    assert_eq!(lines[1], "delete table inet lbconsole");
    assert!(
        text.contains(
            "add chain inet lbconsole incoming { type filter hook prerouting priority -150; policy accept; }"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "add rule inet lbconsole incoming meta iifname == \"lo\" accept comment \"loopback\""
        ),
        "{text}"
    );
}

proptest::proptest! {
    /// Whatever valid names a flows.conf uses (and interface names), every
    /// value lands in the text as one token or one quoted string: the
    /// printer never has to escape anything.
    #[test]
    fn valid_names_print_without_escaping(
        name in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}",
        iface in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}",
    ) {
        let text = format!("flow {name} permit\n    match iface {iface} proto tcp dstport 80\n");
        let (flows_config, diagnostics) = config::parse::parse_flows(text.as_bytes());
        proptest::prop_assume!(diagnostics.is_empty());
        let config = config::model::Config { flows: flows_config, ..examples() };
        let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
        let printed = nft_text::print(&ruleset.batch).expect("printable");
        let rule = format!(
            "add rule inet lbconsole in-{name} meta iifname == \"{iface}\" meta l4proto == tcp tcp dport == 80 counter accept comment \"flow {name} rule 1\""
        );
        proptest::prop_assert!(printed.lines().any(|line| line == rule), "{}", printed);
        // Quotes only around interface names and comments.
        for line in printed.lines() {
            proptest::prop_assert!(line.matches('"').count() % 2 == 0);
        }
    }
}

#[test]
fn what_text_cannot_carry_safely_is_refused_not_escaped() {
    let config = with_flows("flow web permit\n    match iface eth0 proto tcp dstport 80\n");
    let ruleset = flows::render(&config.flows, &config.lvs).expect("a ruleset");
    let json = serde_json::to_string(&ruleset.batch).expect("JSON");
    for hostile in [
        json.replace("\"eth0\"", "\"eth0\\\" accept; flush ruleset; #\""),
        json.replace("flow web rule 1", "flow web\\\" drop comment \\\"x"),
        json.replace("\"lo\"", "\"lo accept\""),
    ] {
        let batch = serde_json::from_str(&hostile).expect("still a batch");
        assert!(nft_text::print(&batch).is_err(), "{hostile}");
    }
}
