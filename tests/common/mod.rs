//! A config dir and a state dir of one host test, and the real binary run on
//! them. Each test binary that says `mod common;` uses a part of this.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use lbconsole::store::{ConfigFiles, Store};

/// Long enough for any one command on a loaded machine; a command still running
/// then is hung (a FIFO read blocking forever is one of the things tested).
const HUNG: Duration = Duration::from_secs(60);

/// A config dir and a state dir of their own, removed when dropped.
pub struct Dirs {
    pub root: PathBuf,
}

impl Dirs {
    pub fn new(name: &str) -> Dirs {
        let root =
            std::env::temp_dir().join(format!("lbconsole-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("config")).expect("config dir");
        Dirs { root }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("config")
    }

    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    pub fn store(&self) -> Store {
        Store::open(&self.config(), &self.state()).expect("store")
    }

    /// Writes one file of the config dir.
    pub fn write(&self, name: &str, text: &str) {
        std::fs::write(self.config().join(name), text).expect("write config");
    }

    /// Writes the three files of the config dir.
    pub fn write_files(&self, files: &ConfigFiles) {
        for (name, bytes) in files.named() {
            std::fs::write(self.config().join(name), bytes).expect("write config");
        }
    }

    /// The binary with this test's directories, acting as `alice`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lbconsole"));
        command
            .args(args)
            .env("LBCONSOLE_CONFIG_DIR", self.config())
            .env("LBCONSOLE_STATE_DIR", self.state())
            .env("SUDO_USER", "alice")
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary as `user`; fails the test when it hangs.
    pub fn run_as(&self, user: &str, args: &[&str]) -> Output {
        let mut child = self
            .command(args)
            .env("SUDO_USER", user)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("lbconsole runs");
        let started = Instant::now();
        while child.try_wait().expect("try_wait").is_none() {
            if started.elapsed() > HUNG {
                let _ = child.kill();
                panic!("lbconsole {args:?} hung for {HUNG:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().expect("output")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_as("alice", args)
    }

    /// Stdout of a command that must succeed.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "lbconsole {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("UTF-8")
    }

    /// The error of a command that must be refused (exit status 1).
    pub fn refused(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "lbconsole {args:?}: {output:?}"
        );
        String::from_utf8(output.stderr).expect("UTF-8")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
