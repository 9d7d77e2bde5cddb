//! `config::check` on arbitrary bytes, and the printer's round trip on whatever
//! checks clean.
//!
//! The input is the three files joined by NUL bytes: network.conf, then flows.conf,
//! then lvs.conf (a missing part is an empty file; later NULs stay in lvs.conf).

#![no_main]

use lbconsole::config::{self, Sources};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |&b| b == 0);
    let mut part = || parts.next().unwrap_or_default();
    let sources = Sources {
        network: part(),
        flows: part(),
        lvs: part(),
    };
    let checked = config::check(sources);
    if checked.has_errors() {
        return;
    }

    let printed = config::print::all(&checked.config);
    let rechecked = config::check(Sources {
        network: printed[0].as_bytes(),
        flows: printed[1].as_bytes(),
        lvs: printed[2].as_bytes(),
    });
    assert!(
        !rechecked.has_errors(),
        "the printed form of a valid configuration has errors: {:#?}\nprinted: {printed:#?}",
        rechecked.diagnostics,
    );
    assert!(
        rechecked.config == checked.config,
        "printing changed the configuration\nprinted: {printed:#?}\nbefore: {:#?}\nafter: {:#?}",
        checked.config,
        rechecked.config,
    );
    assert_eq!(
        config::print::all(&rechecked.config),
        printed,
        "printing is not idempotent"
    );
});
