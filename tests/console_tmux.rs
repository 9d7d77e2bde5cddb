//! The real binary in a real terminal: `lbconsole --sandbox` in tmux, driven
//! with send-keys and read with capture-pane. Type a director with a typo, see
//! the diagnostic, fix it, apply (without IPVS in the kernel: see the module
//! named), then apply and save a network change and see the state line follow
//! and the new version in the Setup tab's history.
//! Needs tmux (tests/run installs it) and root or unprivileged user namespaces.
//! The live demo of the example needs a kernel with IPVS: tests/lab/sandbox.rs.

use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Self {
        let session = format!("lbconsole-{name}-{}", std::process::id());
        let status = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &session,
                "-x",
                "100",
                "-y",
                "30",
                command,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is installed (tests/run installs it)");
        assert!(status.success());
        Self { session }
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["send-keys", "-t", &self.session])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn text(&self, text: &str) {
        let status = Command::new("tmux")
            .args(["send-keys", "-l", "-t", &self.session, text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Waits until the screen satisfies `test`; fails with the screen after 30 s
    /// (the sandbox's start and an apply take seconds on a busy two-core host).
    /// The screen once `test` holds on it and it is whole: tmux may be captured
    /// half-way through a frame, so the same screen must be seen twice in a row.
    fn wait(&self, what: &str, test: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        let mut previous = String::new();
        loop {
            let screen = self.screen();
            if test(&screen) && screen == previous {
                return screen;
            }
            previous = screen.clone();
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "waited for {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait(text, |screen| screen.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

fn host_addresses() -> String {
    let output = Command::new("ip")
        .args(["-br", "address"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn edit_apply_and_save_in_the_sandbox() {
    let seed = std::env::temp_dir().join(format!("lbconsole-tmux-seed-{}", std::process::id()));
    std::fs::create_dir_all(&seed).unwrap();
    std::fs::write(
        seed.join("network.conf"),
        "service network eth0\n    ip address 192.168.0.1/24\n    ip route default 192.168.0.254\n\n\
         service network eth1\n    ip address 192.168.161.10/24\n",
    )
    .unwrap();
    std::fs::write(seed.join("lvs.conf"), "# directors\n").unwrap();
    let host_before = host_addresses();
    let command = format!(
        "{} --sandbox --config-dir {}; echo console exited $?; sleep 30",
        env!("CARGO_BIN_EXE_lbconsole"),
        seed.display()
    );
    let tmux = Tmux::start("e2e", &command);
    // A seeded sandbox runs no demo; on a kernel that lacks what the example
    // needs, the first screen names the command that runs it on one that has it.
    let first = tmux.wait("the sandbox's banner", |s| {
        s.contains("sandbox: own network namespace") || s.contains("sandbox: no IPVS")
    });
    if first.contains("sandbox: no IPVS") {
        tmux.wait_for("tests/lab/console");
    }
    tmux.wait_for("eth0     up");

    // A director with a typo in its scheduler, on the LB Layer4 tab.
    tmux.keys(&["F3"]);
    tmux.wait_for("lvs.conf");
    tmux.keys(&["G", "i", "End", "Enter"]);
    tmux.text("director shop 192.168.0.1:80 TCP");
    tmux.keys(&["Enter"]);
    tmux.text("    balance roundrobn");
    tmux.wait_for("unknown scheduler `roundrobn` (did you mean `roundrobin`?)");
    tmux.keys(&["BSpace"]);
    tmux.text("in");
    tmux.wait("the diagnostic to go", |s| {
        !s.contains("roundrobn") && s.contains(" valid")
    });

    // Apply: this kernel may have no IPVS; then the console names the module.
    tmux.keys(&["Escape"]);
    tmux.wait_for(" VIEW ");
    tmux.keys(&["a"]);
    let screen = tmux.wait("the plan or the refusal", |s| {
        s.contains("Cannot apply") || s.contains("kernel operation(s)?")
    });
    if screen.contains("Cannot apply") {
        assert!(
            screen.contains("lvs.conf has 1 director, but IPVS is not available"),
            "{screen}"
        );
        assert!(screen.contains("modprobe ip_vs"), "{screen}");
        assert!(first.contains("sandbox: no IPVS"), "{first}");
        tmux.keys(&["Escape"]);
        tmux.wait("the dialog to close", |s| !s.contains("Cannot apply"));
    } else {
        assert!(
            screen.contains("add service tcp 192.168.0.1:80"),
            "{screen}"
        );
        tmux.keys(&["y"]);
        tmux.wait_for("shop tcp 192.168.0.1:80");
    }

    // Throw the director away, and add an address on the Network tab.
    tmux.keys(&["r"]);
    tmux.wait_for("Throw away the edits of lvs.conf");
    tmux.keys(&["y"]);
    tmux.wait_for("reloaded the saved files");
    tmux.keys(&["F1"]);
    tmux.wait_for("network.conf");
    tmux.keys(&["g", "i", "End", "Enter"]);
    tmux.text("    ip address 192.168.0.50/24");
    tmux.wait_for("unsaved:network");
    tmux.keys(&["Escape"]);
    tmux.wait_for(" VIEW ");
    tmux.keys(&["a"]);
    let plan = tmux.wait_for("kernel operation(s)?");
    assert!(
        plan.contains("add address 192.168.0.50/24 to eth0"),
        "{plan}"
    );
    tmux.keys(&["y"]);
    tmux.wait_for("applied ");
    tmux.wait_for("  192.168.0.50/24");
    // Guarded: a countdown until confirmed (F6), or the guard undoes it.
    tmux.wait_for(" CONFIRM ");
    tmux.keys(&["F6"]);
    tmux.wait_for("confirmed the apply");
    let screen = tmux.wait("the countdown to go", |s| !s.contains(" CONFIRM "));
    assert!(screen.contains("  192.168.0.50/24"), "{screen}");
    let screen = tmux.wait_for(" running ");
    assert!(screen.contains("unsaved:network"), "{screen}");

    // Save: the diff first, then the state line says saved.
    tmux.keys(&["C-s"]);
    let diff = tmux.wait_for("Save these changes?");
    assert!(diff.contains("+    ip address 192.168.0.50/24"), "{diff}");
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("saved as version 2 in ");
    assert!(screen.contains(" v2 saved | running "), "{screen}");

    // The Setup tab lists the new version, saved and running, above the
    // hand edit the seed was recorded as; `d` shows what it changed.
    tmux.keys(&["F4"]);
    let setup = tmux.wait_for("History: 2 versions, newest first");
    assert!(
        setup.contains("[saved] [running] saved from the console"),
        "{setup}"
    );
    assert!(setup.contains(" hand edit "), "{setup}");
    tmux.keys(&["d"]);
    let diff = tmux.wait_for("Version 2: what changed from version 1");
    assert!(diff.contains("+    ip address 192.168.0.50/24"), "{diff}");
    tmux.keys(&["Escape"]);
    tmux.wait("the diff to close", |s| !s.contains("what changed from"));

    // Nothing unsaved or unapplied: quitting does not ask.
    tmux.keys(&["q"]);
    tmux.wait_for("console exited 0");
    assert_eq!(
        host_addresses(),
        host_before,
        "the host's interfaces were touched"
    );
    assert!(!host_addresses().contains("192.168.0.50"));
    std::fs::remove_dir_all(&seed).unwrap();
}
