//! The converters, against fixtures and a corpus of published configurations.
//!
//! - `tests/convert/{keepalived,ipvsadm,ldirectord}/CASE/`: the source file
//!   (`keepalived.conf`, `ipvsadm.txt` or `ldirectord.cf`, and what it
//!   includes), and what the conversion must give: `lvs.conf`, `flows.conf` when
//!   the source needs flows, `vrrp.conf` when it runs VRRP, and `report.txt`
//!   (the report, then `check:` and each diagnostic of `lbconsole check`).
//!   Where the case has an appliance's `network.conf`, `network.merged` is it
//!   with `vrrp.conf` merged in, as `lbconsole import` merges it. `UPDATE_FIXTURES=1 cargo test --test
//!   convert` writes them instead: review the diff.
//! - `tests/convert/corpus/{keepalived,ipvsadm,ldirectord}/`: files as people
//!   publish them (`SOURCES.md` says where each comes from, and its licence).
//!   Each converts without a panic into files that `check` accepts, and a
//!   snapshot keeps the output stable.

use std::path::{Path, PathBuf};

use lbconsole::cli::convert::report_text;
use lbconsole::convert::{self, DiskFiles, Options, Outcome, Source};

const SOURCES: [(Source, &str, &str); 3] = [
    (Source::Keepalived, "keepalived", "keepalived.conf"),
    (Source::Ipvsadm, "ipvsadm", "ipvsadm.txt"),
    (Source::Ldirectord, "ldirectord", "ldirectord.cf"),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/convert")
}

fn run(source: Source, path: &Path, relative_to: &Path) -> Outcome {
    let options = Options {
        instance: std::fs::read_to_string(path.with_file_name("instance"))
            .ok()
            .map(|id| id.trim().to_owned()),
    };
    let conversion = convert::convert(source, path, &DiskFiles, &options)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let shown = path.strip_prefix(relative_to).unwrap_or(path);
    let mut outcome = conversion.outcome(source, &shown.display().to_string());
    // Places are named as the file was given, here absolutely: the expected
    // files name them relative to the fixture, wherever the tree is.
    let prefix = format!("{}/", relative_to.display());
    for line in &mut outcome.report {
        *line = line.replace(&prefix, "");
    }
    outcome.lvs = outcome.lvs.replace(&prefix, "");
    outcome.flows = outcome.flows.map(|flows| flows.replace(&prefix, ""));
    outcome.vrrp = outcome.vrrp.map(|vrrp| vrrp.replace(&prefix, ""));
    outcome
}

fn cases(kind: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root().join(kind)) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a fixture entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_fixture_converts_to_its_expected_files_and_report() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut failures = Vec::new();
    let mut count = 0;
    for (source, kind, file) in SOURCES {
        for dir in cases(kind) {
            count += 1;
            let outcome = run(source, &dir.join(file), &dir);
            let expected = [
                ("lvs.conf", Some(outcome.lvs.clone())),
                ("flows.conf", outcome.flows.clone()),
                ("vrrp.conf", outcome.vrrp.clone()),
                ("network.merged", merged_network(&dir, &outcome)),
                ("report.txt", Some(report_text(&outcome))),
            ];
            for (name, got) in expected {
                let path = dir.join(name);
                if update {
                    match &got {
                        Some(text) => std::fs::write(&path, text).expect("a fixture"),
                        None => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                    continue;
                }
                let want = std::fs::read_to_string(&path).ok();
                if want != got {
                    failures.push(format!(
                        "{}: expected\n{}\ngot\n{}",
                        path.display(),
                        want.as_deref().unwrap_or("(no file)"),
                        got.as_deref().unwrap_or("(no file)")
                    ));
                }
            }
        }
    }
    assert!(count > 0, "no fixture under {}", root().display());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The fixture's `network.conf` (an appliance's own) with the conversion's
/// `vrrp.conf` merged in, as `lbconsole import` merges it; it must pass
/// `check` with the converted lvs.conf and flows.conf.
fn merged_network(dir: &Path, outcome: &Outcome) -> Option<String> {
    let network = std::fs::read_to_string(dir.join("network.conf")).ok()?;
    let merged = lbconsole::config::merge::merge_vrrp(&network, outcome.vrrp.as_deref()?)
        .unwrap_or_else(|error| panic!("{}: {error:?}", dir.display()));
    let checked = lbconsole::config::check(lbconsole::config::Sources {
        network: merged.as_bytes(),
        flows: outcome.flows.as_deref().unwrap_or("").as_bytes(),
        lvs: outcome.lvs.as_bytes(),
    });
    assert!(
        !checked.has_errors(),
        "{}: the merged network.conf fails check: {:?}\n{merged}",
        dir.display(),
        checked.diagnostics
    );
    Some(merged)
}

#[test]
fn every_published_configuration_converts_into_files_that_check_accepts() {
    let corpus = root().join("corpus");
    for (source, kind, _) in SOURCES {
        let Ok(entries) = std::fs::read_dir(corpus.join(kind)) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|entry| entry.expect("a corpus entry").path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for path in files {
            let outcome = run(source, &path, &corpus);
            assert!(
                !outcome.has_errors,
                "{}: check refuses the conversion:\n{}\n{}",
                path.display(),
                outcome.check.join("\n"),
                outcome.lvs
            );
            let name = path.strip_prefix(&corpus).expect("in the corpus");
            let mut shown = format!("==> lvs.conf <==\n{}", outcome.lvs);
            if let Some(flows) = &outcome.flows {
                shown.push_str(&format!("==> flows.conf <==\n{flows}"));
            }
            if let Some(vrrp) = &outcome.vrrp {
                shown.push_str(&format!("==> vrrp.conf <==\n{vrrp}"));
            }
            shown.push_str(&format!("==> report <==\n{}", report_text(&outcome)));
            insta::assert_snapshot!(name.display().to_string().replace('/', "__"), shown);
        }
    }
}
