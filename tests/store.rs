//! The versioned store as an administrator meets it: the real binary saving,
//! restoring, importing — killed half-way, racing a colleague — and what it
//! prints.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use lbconsole::store::{ConfigFiles, StoreError};

mod common;

use common::Dirs;

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A valid configuration whose three files all carry `tag`, so a mixture of two
/// versions is visible in every file.
fn config(tag: u32) -> ConfigFiles {
    ConfigFiles {
        network: format!(
            "# {tag}\nservice network eth1\n    ip address 192.0.2.{}/24\n",
            tag % 250 + 1
        )
        .into_bytes(),
        flows: format!(
            "# {tag}\nflow f{tag} permit\n    match proto tcp dstport {}\n",
            tag % 60000 + 1
        )
        .into_bytes(),
        lvs: format!(
            "# {tag}\ndirector web 198.51.100.10:80 TCP\n    server a 203.0.113.1 weight {}\n",
            tag % 1000
        )
        .into_bytes(),
    }
}

/// A small deterministic pseudo-random sequence (xorshift), seeded by the clock
/// and printed, so a failure can be replayed.
struct Random(u64);

impl Random {
    fn new() -> Random {
        let seed = std::env::var("LBCONSOLE_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            });
        eprintln!("seed {seed} (LBCONSOLE_TEST_SEED replays it)");
        Random(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_at_any_point_a_restore_leaves_a_complete_version_200_times() {
    let dirs = Dirs::new("kill");
    let (a, b) = (config(1), config(2));
    dirs.write_files(&a);
    dirs.ok(&["save"]);
    dirs.write_files(&b);
    dirs.ok(&["save"]);
    // How long one restore takes, to spread the kills over all of it.
    let started = Instant::now();
    dirs.ok(&["restore", "1"]);
    let span = started.elapsed().as_micros().max(1000) as u64 * 3 / 2;
    let mut random = Random::new();
    let (mut killed, mut finished) = (0, 0);
    for _ in 0..200 {
        let store = dirs.store();
        let latest = store.latest().expect("latest");
        let target = if store.version(latest).expect("newest") == a {
            "2"
        } else {
            "1"
        };
        let mut child = dirs
            .command(&["restore", target])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(random.below(span)));
        match child.try_wait().expect("try_wait") {
            Some(_) => finished += 1,
            None => {
                child.kill().expect("SIGKILL");
                killed += 1;
            }
        }
        child.wait().expect("reap");

        // Every version in the history is complete and one of the two.
        let store = dirs.store();
        let latest = store.latest().expect("latest");
        for n in 1..=latest {
            let files = store.version(n).expect("a complete version");
            assert!(
                files == a || files == b,
                "version {n} is a mixture: {files:?}"
            );
            store.meta(n).expect("its meta");
        }
        // The saved configuration loads as the newest version, whole.
        let saved = store.saved().expect("loads");
        assert!(
            saved.files == a || saved.files == b,
            "saved is a mixture: {:?}",
            saved.files
        );
        assert_eq!(saved.version, store.latest().expect("latest"));
        assert_eq!(
            ConfigFiles::read(&dirs.config()).expect("config dir"),
            saved.files
        );
        assert_eq!(saved.meta.expect("meta").origin.name(), "restore");
    }
    eprintln!("{killed} restores killed before they finished, {finished} finished before the kill");
    assert!(
        killed >= 20,
        "too few kills landed ({killed}) to mean anything"
    );
    // Nothing left behind by the killed writers once the store was opened again.
    let leftovers: Vec<String> = std::fs::read_dir(dirs.state().join("history"))
        .expect("history")
        .chain(std::fs::read_dir(dirs.config()).expect("config"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert_eq!(leftovers, Vec::<String>::new());
}

#[test]
fn two_writers_racing_500_times_never_lose_an_update() {
    let dirs = Dirs::new("race");
    dirs.write_files(&config(0));
    dirs.ok(&["save"]);
    let archives: Vec<PathBuf> = (0..2)
        .map(|writer| dirs.root.join(format!("writer{writer}.toml")))
        .collect();
    let mut wins = [0, 0];
    for round in 0..500u32 {
        let version = dirs.store().latest().expect("latest");
        // Both start from the same version, each with its own change.
        for (writer, archive) in archives.iter().enumerate() {
            write_archive(archive, &config(round * 2 + writer as u32 + 1));
        }
        let children: Vec<_> = archives
            .iter()
            .map(|archive| {
                dirs.command(&[
                    "import",
                    archive.to_str().expect("UTF-8"),
                    "--expect-version",
                    &version.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
            })
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().expect("wait"))
            .collect();
        let winners: Vec<usize> = (0..2).filter(|&w| outputs[w].status.success()).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} writers succeeded from version {version}",
            winners.len()
        );
        let (winner, loser) = (winners[0], 1 - winners[0]);
        wins[winner] += 1;
        assert_eq!(
            stderr(&outputs[loser]),
            format!(
                "lbconsole: configuration changed by alice at {} (version {}); reload or merge\n",
                dirs.store().meta(version + 1).expect("meta").time,
                version + 1
            )
        );
        let store = dirs.store();
        assert_eq!(store.latest().expect("latest"), version + 1);
        assert_eq!(
            store.saved().expect("saved").files,
            config(round * 2 + winner as u32 + 1),
            "round {round}: the saved configuration is not the winner's"
        );
    }
    eprintln!("writer 0 won {} rounds, writer 1 won {}", wins[0], wins[1]);
    assert_eq!(dirs.store().history().expect("history").len(), 501);
}

fn write_archive(path: &Path, files: &ConfigFiles) {
    let text = |bytes: &[u8]| toml_string(std::str::from_utf8(bytes).expect("UTF-8"));
    let archive = format!(
        "format = \"lbconsole-archive\"\nformat_version = 1\nexported = \"2025-01-01T00:00:00Z\"\nversion = 1\nuser = \"bob\"\nsummary = \"\"\n\n[files]\n\"network.conf\" = {}\n\"flows.conf\" = {}\n\"lvs.conf\" = {}\n",
        text(&files.network),
        text(&files.flows),
        text(&files.lvs)
    );
    std::fs::write(path, archive).expect("archive");
}

fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a JSON string is a TOML basic string")
}

#[test]
fn a_save_from_a_stale_version_is_refused_and_writes_nothing() {
    let dirs = Dirs::new("stale");
    dirs.write_files(&config(1));
    assert_eq!(
        dirs.ok(&["save", "-m", "first"]),
        "saved version 1: first: network.conf: +interface eth1; flows.conf: +flow f1; lvs.conf: +director web\n"
    );
    dirs.write_files(&config(2));
    let output = dirs.run(&["save", "--expect-version", "0"]);
    assert_eq!(output.status.code(), Some(1));
    let time = dirs.store().meta(1).expect("meta").time;
    assert_eq!(
        stderr(&output),
        format!(
            "lbconsole: configuration changed by alice at {time} (version 1); reload or merge\n"
        )
    );
    assert_eq!(dirs.store().latest().expect("latest"), 1);

    // The console's path: it loaded version 1, someone edited the files by hand
    // meanwhile; its save is refused rather than undoing the hand edit.
    let store = dirs.store();
    let error = store.save(&config(3), 1, None).expect_err("stale");
    let StoreError::Stale { version: 2, .. } = error else {
        panic!("not stale at version 2: {error}");
    };
    let history = dirs.ok(&["history"]);
    assert!(history.contains("hand edit  network.conf: ~interface eth1; flows.conf: +flow f2, -flow f1; lvs.conf: ~director web"), "{history}");
    assert_eq!(store.saved().expect("saved").files, config(2));
    let meta = store
        .save(&config(3), 2, Some("from the console"))
        .expect("saves from version 2");
    assert_eq!(meta.number, 3);
    assert_eq!(
        ConfigFiles::read(&dirs.config()).expect("config"),
        config(3)
    );
}

#[test]
fn history_diff_restore_export_and_import_round_trip() {
    let dirs = Dirs::new("roundtrip");
    dirs.write_files(&config(1));
    dirs.ok(&["save"]);
    dirs.write_files(&config(2));
    assert_eq!(
        dirs.ok(&["save", "--expect-version", "1"])
            .lines()
            .next()
            .map(|l| l.starts_with("saved version 2: ")),
        Some(true)
    );
    assert_eq!(dirs.ok(&["save"]), "no changes since version 2\n");

    let diff = dirs.ok(&["diff", "1", "2"]);
    assert!(
        diff.starts_with(
            "--- version 1/network.conf\n+++ version 2/network.conf\n@@ -1,3 +1,3 @@\n-# 1\n+# 2\n"
        ),
        "{diff}"
    );
    assert!(
        diff.contains("--- version 1/lvs.conf\n+++ version 2/lvs.conf\n"),
        "{diff}"
    );
    assert_eq!(
        dirs.ok(&["diff", "2", "saved"]),
        "no differences between version 2 and saved\n"
    );

    assert_eq!(
        dirs.ok(&["restore", "1", "--expect-version", "2"])
            .lines()
            .count(),
        1
    );
    assert_eq!(
        ConfigFiles::read(&dirs.config()).expect("config"),
        config(1)
    );
    let history = dirs.ok(&["history"]);
    let origins: Vec<&str> = history
        .lines()
        .map(|l| l.split_whitespace().nth(3).unwrap_or(""))
        .collect();
    assert_eq!(origins, ["save", "save", "restore"], "{history}");
    assert!(history.lines().all(|l| l.contains(" alice ")), "{history}");

    let archive = dirs.root.join("backup.toml");
    assert_eq!(
        dirs.ok(&["export", archive.to_str().expect("UTF-8")]),
        format!("exported version 3 to {}\n", archive.display())
    );
    let elsewhere = Dirs::new("roundtrip-import");
    let imported = elsewhere.ok(&["import", archive.to_str().expect("UTF-8")]);
    assert!(
        imported.starts_with("saved version 1: import of "),
        "{imported}"
    );
    assert_eq!(elsewhere.store().saved().expect("saved").files, config(1));
    let json: serde_json::Value =
        serde_json::from_str(&elsewhere.ok(&["history", "--json"])).expect("JSON");
    assert_eq!(json["versions"][0]["origin"], "import");
    assert_eq!(json["versions"][0]["user"], "alice");
}

#[test]
fn an_invalid_archive_is_refused_with_its_diagnostics() {
    let dirs = Dirs::new("invalid");
    dirs.write_files(&config(1));
    dirs.ok(&["save"]);
    let archive = dirs.root.join("bad.toml");
    let mut bad = config(2);
    bad.lvs = b"director web 198.51.100.10:80 TCP\n    balance leastcon\n".to_vec();
    write_archive(&archive, &bad);
    let path = archive.to_str().expect("UTF-8");
    let output = dirs.run(&["import", path]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "{path}/lvs.conf:2:13: error: unknown scheduler `leastcon` (did you mean `leastconn`?)\n\
             lbconsole: the configuration has 1 error; nothing was imported (first: lvs.conf:2:13: error: unknown scheduler `leastcon` (did you mean `leastconn`?))\n"
        )
    );
    assert_eq!(dirs.store().latest().expect("latest"), 1);
    assert_eq!(
        ConfigFiles::read(&dirs.config()).expect("config"),
        config(1)
    );

    std::fs::write(&archive, "format = \"zip\"\n").expect("not an archive");
    let output = dirs.run(&["import", path]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).starts_with(&format!("lbconsole: {path}: ")),
        "{}",
        stderr(&output)
    );
}

#[test]
fn confirm_without_a_pending_apply_says_so() {
    let dirs = Dirs::new("confirm");
    let output = dirs.run(&["confirm"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "lbconsole: no apply is waiting for confirmation\n"
    );
}

#[test]
fn files_and_directories_of_the_store_are_0640_and_0750_and_a_config_file_keeps_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dirs = Dirs::new("modes");
    dirs.write_files(&config(1));
    dirs.ok(&["save"]);
    dirs.write_files(&config(2));
    dirs.ok(&["save"]);
    let lvs = dirs.config().join("lvs.conf");
    std::fs::set_permissions(&lvs, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    dirs.ok(&["restore", "1"]);
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dirs.state()), 0o750);
    assert_eq!(mode(&dirs.state().join("history/00000003")), 0o750);
    assert_eq!(mode(&dirs.state().join("history/00000003/lvs.conf")), 0o640);
    assert_eq!(
        mode(&lvs),
        0o600,
        "the administrator's mode, kept by the restore"
    );
}

/// Which version runs is the store's answer, for `status` and the console alike:
/// edits applied unsaved run no version until they are saved as one.
#[test]
fn edits_applied_unsaved_run_the_version_they_are_saved_as() {
    let dirs = Dirs::new("running-version");
    let store = dirs.store();
    assert_eq!(store.running_version().expect("nothing applied"), None);
    store.save(&config(1), 0, None).expect("version 1");
    config(2)
        .write_running(&dirs.state())
        .expect("edits applied unsaved");
    assert_eq!(store.running_version().expect("unsaved edits run"), None);
    store.save(&config(2), 1, None).expect("version 2");
    assert_eq!(store.running_version().expect("saved afterwards"), Some(2));
    store.save(&config(3), 2, None).expect("version 3");
    assert_eq!(store.running_version().expect("an older save runs"), None);
}

/// The console writes an appliance's first configuration: until a version
/// exists a missing config dir is an empty one; afterwards it is the error every
/// command gives.
#[test]
fn a_missing_config_dir_is_an_empty_first_configuration_only_before_any_save() {
    let dirs = Dirs::new("first-configuration");
    let store = dirs.store();
    let _ = std::fs::remove_dir_all(dirs.config());
    let first = store.saved_or_first().expect("a new appliance");
    assert_eq!((first.version, first.files), (0, ConfigFiles::default()));
    store.save(&config(1), 0, None).expect("the first save");
    std::fs::remove_dir_all(dirs.config()).expect("config dir removed");
    let error = store.saved_or_first().expect_err("a lost config dir");
    assert!(matches!(error, StoreError::NoDir { .. }), "{error}");
}
