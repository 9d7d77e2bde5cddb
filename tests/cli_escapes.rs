//! Text from files, the kernel and the environment reaches the administrator's
//! terminal escaped: a control character is shown as `\u001b`, never obeyed.

use std::path::Path;

use lbconsole::cli;
use lbconsole::kernel::fake::{FakeFirewall, FakeIpvs, FakeKernel};
use lbconsole::kernel::{Kernel, SyncDaemon, SyncRole};
use lbconsole::store::Store;
use lbconsole::text::EscapingWriter;

/// An OSC sequence that retitles the terminal: harmless to obey, easy to spot.
const RETITLE: &str = "\u{1b}]0;pwned\u{7}";
/// The same, as the CLI shows it.
const RETITLE_SHOWN: &str = r"\u001b]0;pwned\u0007";

mod common;

use common::Dirs;

/// The text, after checking that a terminal would obey nothing in it: no C0
/// control but newline and tab, no DEL, no C1 control, no bidi override.
fn safe(bytes: &[u8]) -> String {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 output");
    let unsafe_char = text.chars().find(|&c| {
        (c.is_control() && c != '\n' && c != '\t')
            || ('\u{202a}'..='\u{202e}').contains(&c)
            || ('\u{2066}'..='\u{2069}').contains(&c)
    });
    assert_eq!(unsafe_char, None, "unsafe character in {text:?}");
    text
}

fn archive(exported: &str) -> String {
    format!(
        "format = \"lbconsole-archive\"\nformat_version = 1\nexported = \"{exported}\"\n\
         version = 3\nuser = \"mallory\\u001b[2J\"\nsummary = \"x\\u001b[8m\"\n\n\
         [files]\n\"network.conf\" = \"\"\n\"flows.conf\" = \"\"\n\"lvs.conf\" = \"# imported\\n\"\n"
    )
}

#[test]
fn an_archives_escapes_are_shown_escaped_by_import_and_history() {
    let dirs = Dirs::new("import");
    let path = dirs.root.join("from\u{1b}[31mred.toml");
    std::fs::write(&path, archive(r"\u001b]0;pwned\u0007\n   7  forged")).expect("write archive");
    let imported = dirs.run(&["import", path.to_str().expect("UTF-8 path")]);
    assert!(imported.status.success(), "{imported:?}");
    let imported = safe(&imported.stdout);
    assert!(imported.contains(RETITLE_SHOWN), "{imported}");
    assert!(imported.contains(r"from\u001b[31mred.toml"), "{imported}");
    assert_eq!(imported.lines().count(), 1, "{imported}");

    let history = dirs.run(&["history"]);
    let history = safe(&history.stdout);
    assert!(history.contains(RETITLE_SHOWN), "{history}");
    assert_eq!(history.lines().count(), 1, "{history}");
}

#[test]
fn history_json_stays_valid_and_keeps_what_was_given() {
    let dirs = Dirs::new("json");
    // ESC, DEL, a C1 control (CSI) and a right-to-left override.
    let path = dirs.root.join("archive.toml");
    std::fs::write(&path, archive(r"\u001b\u007f\u009b\u202e")).expect("write archive");
    assert!(
        dirs.run(&["import", path.to_str().expect("UTF-8 path")])
            .status
            .success()
    );
    let output = dirs.run(&["history", "--json"]);
    let text = safe(&output.stdout);
    let report: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let summary = report["versions"][0]["summary"].as_str().expect("summary");
    assert!(
        summary.contains("\u{1b}\u{7f}\u{9b}\u{202e}"),
        "the record keeps what was given: {summary:?}"
    );
}

#[test]
fn a_save_message_and_sudo_user_are_shown_escaped_one_line_per_version() {
    let dirs = Dirs::new("save");
    dirs.write("lvs.conf", "# one\n");
    let message = format!("fix{RETITLE}\n   9  forged line");
    let saved = dirs.run_as(&format!("eve{RETITLE}"), &["save", "-m", &message]);
    assert!(saved.status.success(), "{saved:?}");
    let saved = safe(&saved.stdout);
    assert!(saved.contains(&format!("fix{RETITLE_SHOWN}")), "{saved}");
    assert_eq!(saved.lines().count(), 1, "{saved}");

    let history = safe(&dirs.run(&["history"]).stdout);
    assert!(
        history.contains(&format!("eve{RETITLE_SHOWN}")),
        "{history}"
    );
    assert!(
        history.contains(&format!(r"fix{RETITLE_SHOWN}\u000a   9  forged line")),
        "{history}"
    );
    assert_eq!(history.lines().count(), 1, "{history}");
}

#[test]
fn diff_shows_a_comments_escapes_and_keeps_lines_and_tabs() {
    let dirs = Dirs::new("diff");
    dirs.write("lvs.conf", "# one\n");
    assert!(dirs.run(&["save"]).status.success());
    dirs.write("lvs.conf", &format!("# two {RETITLE}\tend\r\n"));
    let output = dirs.run(&["diff", "1", "saved"]);
    assert!(output.status.success(), "{output:?}");
    let diff = safe(&output.stdout);
    assert!(
        diff.contains(&format!("+# two {RETITLE_SHOWN}\tend\\u000d\n")),
        "{diff}"
    );
    assert!(diff.contains("-# one\n"), "{diff}");
}

#[test]
fn an_archives_toml_error_says_where_and_never_quotes_the_line() {
    let dirs = Dirs::new("toml-error");
    let path = dirs.root.join("broken.toml");
    std::fs::write(
        &path,
        format!("format = \"lbconsole-archive\"\nexported = {RETITLE}\n"),
    )
    .expect("write archive");
    let output = dirs.run(&["import", path.to_str().expect("UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let error = safe(&output.stderr);
    assert!(error.starts_with("lbconsole: "), "{error}");
    // The file may be anyone's (`import /etc/shadow`): where, never what.
    assert!(
        error.contains("broken.toml: line 2, column 13: "),
        "{error}"
    );
    assert!(!error.contains("pwned"), "{error}");
}

#[test]
fn a_path_in_an_error_is_shown_escaped() {
    let dirs = Dirs::new("path-error");
    let missing = Path::new("/nonexistent").join(format!("x{RETITLE}.toml"));
    let output = dirs.run(&["import", missing.to_str().expect("UTF-8 path")]);
    assert_eq!(output.status.code(), Some(1));
    let error = safe(&output.stderr);
    assert!(error.contains(&format!("x{RETITLE_SHOWN}.toml")), "{error}");
}

/// `status` needs a kernel: a fake one whose link has a crafted name, printed
/// through the writer `main` puts around stdout.
fn status(dirs: &Dirs, format: cli::Format) -> Vec<u8> {
    let store = Store::open(&dirs.config(), &dirs.root.join("state")).expect("store");
    let mut kernel = Kernel {
        network: FakeKernel::with_veths(&[&format!("eth0{RETITLE}")]),
        // The kernel keeps any interface name a sync daemon was started with.
        ipvs: Ok(FakeIpvs {
            sync: [SyncRole::Master, SyncRole::Backup]
                .map(|role| SyncDaemon {
                    role,
                    interface: format!("e{RETITLE}"),
                    sync_id: 51,
                })
                .to_vec(),
            ..FakeIpvs::default()
        }),
        firewall: FakeFirewall::default(),
    };
    let mut out = Vec::new();
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(cli::status(
            &mut kernel,
            &store,
            format,
            &mut EscapingWriter::new(&mut out),
        ))
        .expect("status");
    out
}

#[test]
fn status_shows_a_links_escapes_in_text_and_keeps_them_in_json() {
    let dirs = Dirs::new("status");
    let text = safe(&status(&dirs, cli::Format::Text));
    assert!(text.contains(&format!("eth0{RETITLE_SHOWN}")), "{text}");

    let json = safe(&status(&dirs, cli::Format::Json));
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(report["links"][0]["name"], format!("eth0{RETITLE}"));
}

#[test]
fn status_shows_the_sync_daemons_escaped_in_text_and_as_they_are_in_json() {
    let dirs = Dirs::new("status-sync");
    let text = safe(&status(&dirs, cli::Format::Text));
    assert!(
        text.contains(&format!(
            "  connection sync: master and backup on e{RETITLE_SHOWN}, sync id 51\n"
        )),
        "{text}"
    );

    let json = safe(&status(&dirs, cli::Format::Json));
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert_eq!(
        report["sync_daemons"],
        serde_json::json!([
            {"role": "master", "interface": format!("e{RETITLE}"), "sync_id": 51},
            {"role": "backup", "interface": format!("e{RETITLE}"), "sync_id": 51},
        ])
    );
}
