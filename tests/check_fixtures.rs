//! Every bad configuration in `tests/invalid_configs/` is a config directory with
//! the exact text `lbconsole check` must print for it (`expected.txt`): the error
//! messages are part of the interface. `BLESS=1 cargo test --test check_fixtures`
//! rewrites the expectations after a deliberate change; review the diff.

use std::path::{Path, PathBuf};

use lbconsole::cli::{self, EXIT_INVALID, EXIT_VALID, Format};

fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("tests/invalid_configs")
        .expect("tests/invalid_configs exists")
        .map(|entry| entry.expect("readable entry").path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn check_output(dir: &Path) -> (u8, String) {
    let mut out = Vec::new();
    let status = cli::check(dir, Format::Text, &mut out).expect("fixture dir is readable");
    (status, String::from_utf8(out).expect("check prints UTF-8"))
}

#[test]
fn each_invalid_config_prints_its_expected_diagnostics() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 20, "the fixtures are missing");
    let bless = std::env::var_os("BLESS").is_some();
    let mut mismatches = Vec::new();
    for dir in dirs {
        let (status, output) = check_output(&dir);
        let expected_path = dir.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &output).expect("write expected.txt");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} is missing", expected_path.display()));
        if output != expected {
            mismatches.push(format!(
                "{}:\n--- expected\n{expected}--- got\n{output}",
                dir.display()
            ));
        }
        let has_error = output.contains(": error: ");
        assert_eq!(
            status,
            if has_error { EXIT_INVALID } else { EXIT_VALID },
            "{}",
            dir.display()
        );
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_diagnostic_names_file_line_and_column() {
    for dir in fixture_dirs() {
        let (_, output) = check_output(&dir);
        let mut lines: Vec<&str> = output.lines().collect();
        let verdict = lines.pop().expect("a verdict line");
        assert!(verdict.contains("valid, "), "{verdict}");
        for line in lines {
            let prefix = format!("{}/", dir.display());
            let rest = line
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{line} does not start with {prefix}"));
            let mut parts = rest.splitn(4, ':');
            let file = parts.next().unwrap_or_default();
            assert!(
                ["network.conf", "flows.conf", "lvs.conf"].contains(&file),
                "{line}"
            );
            for number in [parts.next(), parts.next()] {
                let number: u32 = number
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("{line} has no line:column"));
                assert!(number >= 1, "{line}");
            }
        }
    }
}
