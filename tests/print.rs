//! The canonical printer on the shipped examples: what `print` makes of a real
//! configuration is reviewed as a snapshot, and reading it back changes nothing.

use lbconsole::config::{self, Sources, print};

fn examples() -> [Vec<u8>; 3] {
    ["network.conf", "flows.conf", "lvs.conf"]
        .map(|name| std::fs::read(format!("examples/{name}")).expect("example file"))
}

#[test]
fn printing_the_examples_gives_the_canonical_form() {
    let [network, flows, lvs] = examples();
    let checked = config::check(Sources {
        network: &network,
        flows: &flows,
        lvs: &lvs,
    });
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let [network, flows, lvs] = print::all(&checked.config);
    insta::assert_snapshot!("network", network);
    insta::assert_snapshot!("flows", flows);
    insta::assert_snapshot!("lvs", lvs);

    let reread = config::check(Sources {
        network: network.as_bytes(),
        flows: flows.as_bytes(),
        lvs: lvs.as_bytes(),
    });
    assert!(reread.diagnostics.is_empty(), "{:?}", reread.diagnostics);
    assert_eq!(reread.config, checked.config);
}
