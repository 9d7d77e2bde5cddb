//! What a typo, a careless administrator or a hostile file can do to the store:
//! the real binary against hostile archives (`tests/hostile/archives/`, each with
//! the exact error it gets) and hostile state-dir and config-dir layouts (built
//! below: symbolic links, FIFOs and devices do not live in git). Nothing here
//! touches the kernel; `tests/lab/safety.rs` applies on one.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use lbconsole::store::archive::Archive;
use lbconsole::store::{ConfigFiles, Store};

mod common;

use common::Dirs;

/// A small valid configuration saved as version 1.
fn saved(name: &str) -> Dirs {
    let dirs = Dirs::new(name);
    dirs.write(
        "lvs.conf",
        "director web 10.0.0.1:80 TCP\n    server a 10.0.1.1:80\n",
    );
    dirs.write("network.conf", "");
    dirs.write("flows.conf", "");
    dirs.ok(&["save"]);
    dirs
}

fn latest(dirs: &Dirs) -> u64 {
    dirs.store().latest().expect("latest")
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success());
}

#[test]
fn every_hostile_archive_is_refused_with_its_exact_error_and_saves_nothing() {
    let mut checked = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir("tests/hostile/archives")
        .expect("the fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for archive in entries {
        let dirs = saved("archive");
        let path = archive.to_str().expect("UTF-8 path");
        let expected = std::fs::read_to_string(archive.with_extension("expected"))
            .expect("each archive has its .expected error");
        let error = dirs.refused(&["import", path]).replace(path, "ARCHIVE");
        assert_eq!(error, expected, "{path}");
        assert_eq!(latest(&dirs), 1, "{path} saved a version");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} fixtures");
}

#[test]
fn every_prefix_of_an_export_is_refused_or_is_the_whole_configuration() {
    // The complete example configuration: a real export of some size.
    let dirs = Dirs::new("prefixes");
    for name in ["network.conf", "flows.conf", "lvs.conf"] {
        let text = std::fs::read_to_string(Path::new("examples").join(name)).expect("example");
        dirs.write(name, &text);
    }
    dirs.ok(&["save", "-m", "the examples"]);
    let export = dirs.root.join("export.toml");
    dirs.ok(&["export", export.to_str().expect("UTF-8")]);
    let bytes = std::fs::read(&export).expect("the export");
    let whole = Archive::parse(&export, &bytes).expect("the whole export");
    let (mut refused, mut whole_again) = (0, 0);
    for end in 0..bytes.len() {
        match Archive::parse(&export, &bytes[..end]) {
            Err(_) => refused += 1,
            Ok(archive) => {
                // Only a cut in the trailing newline loses nothing.
                assert_eq!(archive, whole, "the prefix of {end} bytes was accepted");
                whole_again += 1;
            }
        }
    }
    eprintln!(
        "{} prefixes: {refused} refused, {whole_again} whole",
        bytes.len()
    );
    assert!(whole_again <= 1, "{whole_again}");
    assert!(bytes.len() > 4000, "{}", bytes.len());
}

#[test]
fn a_missing_or_empty_config_dir_is_an_error_for_every_command_that_reads_it() {
    let dirs = saved("missing");
    let moved = dirs.root.join("config.moved");
    std::fs::rename(dirs.config(), &moved).expect("mv cfg cfg.moved");
    let missing = format!(
        "lbconsole: the config directory {} does not exist; nothing was done (check --config-dir or LBCONSOLE_CONFIG_DIR)\n",
        dirs.config().display()
    );
    for args in [&["save"][..], &["diff"], &["export", "-"]] {
        assert_eq!(dirs.refused(args), missing, "{args:?}");
    }
    // history lists the versions, which are what restore brings back, then fails.
    let output = dirs.run(&["history"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("   1  "));
    assert_eq!(String::from_utf8_lossy(&output.stderr), missing);
    assert_eq!(latest(&dirs), 1, "no version that deletes everything");

    std::fs::create_dir(dirs.config()).expect("an empty config dir");
    let empty = format!(
        "lbconsole: {} holds none of network.conf, flows.conf and lvs.conf; nothing was done (create them, even empty, to run an empty configuration)\n",
        dirs.config().display()
    );
    assert_eq!(dirs.refused(&["save"]), empty);
    assert_eq!(latest(&dirs), 1);

    // A lost config dir comes back with restore.
    std::fs::remove_dir(dirs.config()).expect("rmdir");
    dirs.ok(&["restore", "1"]);
    assert_eq!(
        ConfigFiles::read(&dirs.config()).expect("restored"),
        ConfigFiles::read(&moved).expect("the original")
    );
}

#[test]
fn export_refuses_devices_fifos_and_links_and_stdout_round_trips_through_import() {
    let dirs = saved("export");
    assert_eq!(
        dirs.refused(&["export", "/dev/null"]),
        "lbconsole: /dev/null is a character device, not a regular file; lbconsole reads and writes only regular files\n"
    );
    let null = std::fs::symlink_metadata("/dev/null").expect("/dev/null");
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &null.file_type()
    ));

    let victim = dirs.root.join("victim");
    std::fs::write(&victim, "keep").expect("victim");
    let link = dirs.root.join("link.toml");
    std::os::unix::fs::symlink(&victim, &link).expect("link");
    let error = dirs.refused(&["export", link.to_str().expect("UTF-8")]);
    assert!(error.ends_with("link.toml is a symbolic link, not a regular file; lbconsole reads and writes only regular files\n"), "{error}");
    assert_eq!(std::fs::read_to_string(&victim).expect("victim"), "keep");

    let fifo = dirs.root.join("fifo.toml");
    mkfifo(&fifo);
    let error = dirs.refused(&["export", fifo.to_str().expect("UTF-8")]);
    assert!(
        error.contains("fifo.toml is a FIFO, not a regular file"),
        "{error}"
    );

    // lbconsole export - | lbconsole import - (another appliance).
    let exported = dirs.run(&["export", "-"]);
    assert!(exported.status.success());
    let peer = Dirs::new("export-peer");
    let mut import = peer
        .command(&["import", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("import -");
    std::io::Write::write_all(&mut import.stdin.take().expect("stdin"), &exported.stdout)
        .expect("pipe");
    let imported = import.wait_with_output().expect("import -");
    assert!(imported.status.success(), "{imported:?}");
    assert!(String::from_utf8_lossy(&imported.stdout).contains("import of stdin"));
    assert_eq!(
        peer.store().version(1).expect("imported"),
        dirs.store().version(1).expect("exported")
    );
}

#[test]
fn a_fifo_anywhere_is_refused_at_once_instead_of_hanging_the_store() {
    let dirs = saved("fifo");
    let fifo = dirs.root.join("archive.toml");
    mkfifo(&fifo);
    let error = dirs.refused(&["import", fifo.to_str().expect("UTF-8")]);
    assert!(
        error.contains("archive.toml is a FIFO, not a regular file"),
        "{error}"
    );

    std::fs::remove_file(dirs.config().join("lvs.conf")).expect("rm");
    mkfifo(&dirs.config().join("lvs.conf"));
    for args in [&["save"][..], &["history"], &["export", "-"]] {
        let error = dirs.refused(args);
        assert!(
            error.contains("lvs.conf is a FIFO, not a regular file"),
            "{args:?}: {error}"
        );
    }
    let output = dirs.run(&["check"]);
    assert_eq!(output.status.code(), Some(2));

    let state_dirs = saved("fifo-state");
    mkfifo(&state_dirs.state().join("state.toml"));
    let error = state_dirs.refused(&["save"]);
    assert!(
        error.contains("state.toml is a FIFO, not a regular file"),
        "{error}"
    );
}

#[test]
fn a_running_link_out_of_the_state_dir_is_never_followed_or_deleted() {
    let dirs = saved("running-link");
    let victim = dirs.root.join("victimdir");
    std::fs::create_dir(&victim).expect("victim");
    std::fs::write(victim.join("precious"), "keep").expect("precious");
    let running = dirs.state().join("running");
    std::os::unix::fs::symlink(&victim, &running).expect("ln -s");
    let error = Store::open(&dirs.config(), &dirs.state())
        .expect("store")
        .running()
        .expect_err("a foreign link is not what runs");
    assert!(error.to_string().contains("it points to"), "{error}");
    // What an apply does once the kernel took the configuration.
    let files = ConfigFiles::read(&dirs.config()).expect("config");
    let _locked = dirs.store().lock().expect("lock");
    files.write_running(&dirs.state()).expect("running written");
    assert_eq!(
        std::fs::read_to_string(victim.join("precious")).expect("kept"),
        "keep"
    );
    assert_eq!(dirs.store().running().expect("ours again"), Some(files));
}

#[test]
fn lock_taking_commands_delete_only_what_lbconsole_wrote_and_history_writes_nothing() {
    let dirs = saved("foreign");
    let backup = dirs.state().join("running.bak");
    std::fs::create_dir(&backup).expect("an admin's backup");
    std::fs::write(backup.join("lvs.conf"), "mine").expect("backup file");
    let editor = dirs.config().join(".tmp-lvs.conf.swp");
    std::fs::write(&editor, "mine").expect("an editor's file");
    dirs.ok(&["save"]);
    dirs.ok(&["history"]);
    assert!(backup.join("lvs.conf").exists(), "running.bak was deleted");
    assert!(editor.exists(), ".tmp-* in the config dir was deleted");

    // history is a read: on a fresh state dir it creates nothing, and it
    // records no hand edit (it shows it).
    let fresh = Dirs::new("history-read");
    fresh.write("lvs.conf", "");
    assert_eq!(fresh.ok(&["history"]), "nothing saved yet\n");
    assert!(!fresh.state().exists(), "history created the state dir");
    dirs.write(
        "flows.conf",
        "flow web permit\n    match proto tcp dstport 80\n",
    );
    let history = dirs.ok(&["history"]);
    assert!(history.contains("hand edit  flows.conf: +flow web; network.conf, lvs.conf unchanged (recorded by the next save or apply)"), "{history}");
    assert_eq!(latest(&dirs), 1);
}

#[test]
fn state_dir_links_are_refused_not_followed() {
    let dirs = saved("links");
    let target = dirs.root.join("created-through-the-link");
    std::fs::remove_file(dirs.state().join("lock")).expect("rm lock");
    std::os::unix::fs::symlink(&target, dirs.state().join("lock")).expect("ln -s");
    let error = dirs.refused(&["save"]);
    assert!(error.contains("lock"), "{error}");
    assert!(!target.exists(), "the lock was created through the link");

    let dirs = saved("state-toml-link");
    let secret = dirs.root.join("secret");
    std::fs::write(&secret, "password = \"hunter2\"\nnot toml at all\n").expect("secret");
    std::os::unix::fs::symlink(&secret, dirs.state().join("state.toml")).expect("ln -s");
    let error = dirs.refused(&["save"]);
    assert!(error.contains("state.toml is a symbolic link"), "{error}");
    assert!(!error.contains("hunter2"));

    // An archive that is someone else's file: where the error is, never what.
    let shadow = dirs.root.join("shadow");
    std::fs::write(&shadow, "root:$6$c2VjcmV0$aGFzaA:19000:0:99999:7:::\n").expect("shadow");
    let error = dirs.refused(&["import", shadow.to_str().expect("UTF-8")]);
    assert!(error.contains("shadow: line 1, column "), "{error}");
    assert!(!error.contains("c2VjcmV0"), "{error}");
}

#[test]
fn a_symlinked_config_file_is_refused_by_restore_and_left_as_it_is() {
    let dirs = saved("config-link");
    dirs.write("lvs.conf", "");
    dirs.ok(&["save"]);
    let elsewhere = dirs.root.join("lvs.conf.real");
    std::fs::rename(dirs.config().join("lvs.conf"), &elsewhere).expect("mv");
    std::os::unix::fs::symlink(&elsewhere, dirs.config().join("lvs.conf")).expect("ln -s");
    let error = dirs.refused(&["restore", "1"]);
    assert!(
        error.contains(
            "lvs.conf is a symbolic link, not a regular file; lbconsole replaces only regular files"
        ),
        "{error}"
    );
    assert!(
        error.contains("the config directory was left as it was"),
        "{error}"
    );
    assert!(
        std::fs::symlink_metadata(dirs.config().join("lvs.conf"))
            .expect("link")
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&elsewhere).expect("target"), "");
    assert_eq!(latest(&dirs), 2, "the refused restore left a version");
    dirs.ok(&["history"]);
}

#[test]
fn a_restore_whose_rename_fails_leaves_the_old_files_and_a_usable_store() {
    // flows.conf bind-mounted over itself, in a mount namespace of the test's
    // own: renaming over a mount point fails with EBUSY.
    let dirs = saved("ebusy");
    dirs.write(
        "network.conf",
        "service network eth0\n    ip address 10.0.0.5/24\n",
    );
    dirs.write(
        "flows.conf",
        "flow web permit\n    match proto tcp dstport 80\n",
    );
    dirs.ok(&["save"]);
    let before = ConfigFiles::read(&dirs.config()).expect("version 2");
    let flows = dirs.config().join("flows.conf");
    let script = format!(
        "mount --bind {flows} {flows} && exec {exe} restore 1",
        flows = flows.display(),
        exe = env!("CARGO_BIN_EXE_lbconsole"),
    );
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("LBCONSOLE_CONFIG_DIR", dirs.config())
        .env("LBCONSOLE_STATE_DIR", dirs.state())
        .output()
        .expect("unshare (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("flows.conf: Device or resource busy")
            && stderr.contains("the config directory was left as it was, and nothing was saved"),
        "{stderr}"
    );
    assert_eq!(ConfigFiles::read(&dirs.config()).expect("config"), before);
    assert_eq!(latest(&dirs), 2);
    // The store works on: the same restore without the mount goes through.
    dirs.ok(&["restore", "1"]);
    assert_eq!(latest(&dirs), 3);
}

#[test]
fn a_history_at_the_largest_version_number_refuses_to_save() {
    let dirs = saved("overflow");
    let history = dirs.state().join("history");
    std::fs::rename(history.join("00000001"), history.join(u64::MAX.to_string()))
        .expect("renumber");
    std::fs::write(
        history.join(u64::MAX.to_string()).join("meta.toml"),
        format!(
            "number = {}\ntime = \"x\"\nuser = \"a\"\norigin = \"save\"\nsummary = \"s\"\n",
            i64::MAX
        ),
    )
    .expect("meta");
    dirs.write(
        "flows.conf",
        "flow web permit\n    match proto tcp dstport 80\n",
    );
    let error = dirs.refused(&["save"]);
    assert!(
        error.contains(
            "holds version 18446744073709551615, the largest number there can be; nothing was saved"
        ),
        "{error}"
    );
    assert!(!history.join("0").exists() && !history.join("00000000").exists());
}

#[test]
fn files_written_under_umask_000_are_still_0640() {
    // The umask is the process's: the binary runs with 000 in a shell.
    let dirs = Dirs::new("umask");
    dirs.write("lvs.conf", "");
    let output = Command::new("sh")
        .args([
            "-c",
            &format!("umask 000 && exec {} save", env!("CARGO_BIN_EXE_lbconsole")),
        ])
        .env("LBCONSOLE_CONFIG_DIR", dirs.config())
        .env("LBCONSOLE_STATE_DIR", dirs.state())
        .output()
        .expect("sh");
    assert!(output.status.success(), "{output:?}");
    let mode = |p: &Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&dirs.state().join("lock")), 0o640);
    assert_eq!(mode(&dirs.state().join("history/00000001/lvs.conf")), 0o640);
}
