//! `lbconsole check` as a user runs it: the real binary, its output and exit status.

use std::process::{Command, Output};

fn lbconsole(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lbconsole"))
        .args(args)
        .env_remove("LBCONSOLE_CONFIG_DIR")
        .env_remove("LBCONSOLE_STATE_DIR")
        .output()
        .expect("lbconsole runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn the_shipped_examples_are_valid_without_warnings() {
    let output = lbconsole(&["check", "--config-dir", "examples"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        stdout(&output),
        "examples: valid, 0 errors and 0 warnings\n"
    );
}

#[test]
fn an_invalid_config_exits_1_with_its_diagnostics() {
    let output = lbconsole(&[
        "check",
        "--config-dir",
        "tests/invalid_configs/unknown-scheduler",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).starts_with(
        "tests/invalid_configs/unknown-scheduler/lvs.conf:2:13: error: unknown scheduler `leastcon` (did you mean `leastconn`?)\n"
    ));
}

#[test]
fn warnings_alone_keep_exit_status_0() {
    let output = lbconsole(&[
        "check",
        "--config-dir",
        "tests/invalid_configs/unused-fwmark-director",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains(": warning: director `maildirect` has no VIP"));
}

#[test]
fn an_unreadable_directory_exits_2_with_one_sentence() {
    let output = lbconsole(&["check", "--config-dir", "/nonexistent/lbconsole"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "lbconsole: the config directory /nonexistent/lbconsole does not exist; nothing was done (check --config-dir or LBCONSOLE_CONFIG_DIR)\n"
    );
}

#[test]
fn a_directory_without_config_files_exits_2() {
    let output = lbconsole(&["check", "--config-dir", "src"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("src holds none of network.conf, flows.conf and lvs.conf; nothing was done")
    );
}

#[test]
fn the_config_dir_comes_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_lbconsole"))
        .arg("check")
        .env(
            "LBCONSOLE_CONFIG_DIR",
            "tests/invalid_configs/outflow-director",
        )
        .output()
        .expect("lbconsole runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("outflow `back` cannot use `director web`"));
}

#[test]
fn json_output_carries_every_field_of_a_diagnostic() {
    let output = lbconsole(&[
        "check",
        "--config-dir",
        "tests/invalid_configs/flow-director-missing",
        "--format",
        "json",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["valid"], false);
    assert_eq!(report["errors"], 1);
    assert_eq!(report["warnings"], 1);
    let first = &report["diagnostics"][0];
    assert_eq!(first["file"], "flows.conf");
    assert_eq!(
        first["path"],
        "tests/invalid_configs/flow-director-missing/flows.conf"
    );
    assert_eq!(first["line"], 1);
    assert_eq!(first["column"], 20);
    assert_eq!(first["severity"], "error");
    assert_eq!(first["message"], "no director `maildirct` in lvs.conf");
    assert_eq!(first["hint"], "did you mean `maildirect`?");
}

#[test]
fn help_lists_the_check_command_and_global_options() {
    let output = lbconsole(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    for word in [
        "check",
        "--config-dir",
        "--state-dir",
        "LBCONSOLE_CONFIG_DIR",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

#[test]
fn a_file_too_large_to_be_a_config_is_refused_with_exit_2() {
    let dir = std::env::temp_dir().join(format!("lbconsole-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    // Sparse: takes no disk space, but reads as 65 MiB of zero bytes.
    std::fs::File::create(dir.join("lvs.conf"))
        .and_then(|f| f.set_len(65 << 20))
        .expect("sparse file");
    let output = lbconsole(&["check", "--config-dir", dir.to_str().expect("UTF-8 path")]);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("lvs.conf is larger than 64 MiB"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_confirm_timeout_outside_10_to_3600_seconds_is_refused_before_anything_runs() {
    // Should clap let one through, a dry run on nothing changes nothing.
    for seconds in ["18446744073709551615", "9", "3601", "0"] {
        let output = lbconsole(&[
            "apply",
            "--dry-run",
            "--config-dir",
            "/nonexistent/lbconsole",
            "--state-dir",
            "/nonexistent/lbconsole-state",
            "--confirm-timeout",
            seconds,
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{seconds}: {stderr}");
        assert!(stderr.contains("10..=3600"), "{seconds}: {stderr}");
    }
}

#[test]
fn events_json_lists_the_state_dirs_events_newest_first_and_names_a_damaged_line() {
    use lbconsole::events::{self, Event, EventKind};
    let root = std::env::temp_dir().join(format!("lbconsole-cli-events-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let state = root.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let state_arg = state.to_str().expect("UTF-8 path");
    let run = |args: &[&str]| {
        let mut all = vec!["--state-dir", state_arg];
        all.extend_from_slice(args);
        lbconsole(&all)
    };
    let empty = run(&["events"]);
    assert!(empty.status.success());
    assert_eq!(stdout(&empty), "no events yet\n");
    events::record(
        &state,
        &Event::new(EventKind::Apply, "applied version 2: 3 changes")
            .by("alice")
            .at(1_763_731_200),
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(events::path(&state))
        .and_then(|mut log| std::io::Write::write_all(&mut log, b"not an event\n"))
        .expect("damage the log");
    events::record(
        &state,
        &Event::new(
            EventKind::Health,
            "server web1 of web is down: connection refused\x1b[2J",
        )
        .server("web", "web1")
        .at(1_763_731_260),
    );
    let output = run(&["events", "--json"]);
    assert!(output.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let listed = listed.as_array().expect("an array");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["kind"], "health");
    assert_eq!(listed[0]["time"], "2025-11-21T13:21:00Z");
    assert_eq!(listed[0]["server"], "web1");
    assert_eq!(
        listed[0]["text"],
        "server web1 of web is down: connection refused\x1b[2J"
    );
    assert_eq!(listed[1]["kind"], "apply");
    assert_eq!(listed[1]["by"], "alice");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("skipped events.jsonl line 2"), "{stderr}");
    let text = stdout(&run(&["events", "-n", "1"]));
    assert_eq!(
        text,
        "2025-11-21T13:21:00Z health   -          server web1 of web is down: connection refused\\u001b[2J\n"
    );
    std::fs::remove_dir_all(&root).expect("clean up");
}
