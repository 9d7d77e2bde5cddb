//! `lbconsole --sandbox` on the lab's kernel, in tmux, as a user sees it: the
//! example (with the sandbox's IPv6) applied at start, its servers answering
//! through the VIPs of both families, health with the one server that is down
//! on purpose, flow counters counting; and nothing left running once the
//! terminal is gone.
//!
//! Every step waits for the condition it asserts: the VM emulates its CPU, and
//! the debug build takes minutes to start the demo there.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{Lab, wait_until};

/// The console's start: the health daemon applies the example first.
const START: Duration = Duration::from_secs(600);
const SETTLE: Duration = Duration::from_secs(180);

/// The console in a terminal of its own; other lab tests drive it too.
pub(crate) struct Tmux {
    socket: String,
}

impl Tmux {
    /// A tmux server of its own (`-L`), one 120x45 window running `command`.
    pub(crate) fn start(name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("lbconsole-lab-{name}-{}", std::process::id()),
        };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "lab",
                "-x",
                "120",
                "-y",
                "45",
                command,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux is installed (tests/lab/run installs it)");
        assert!(status.success(), "tmux new-session: {status}");
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    pub(crate) fn keys(&self, keys: &[&str]) {
        let status = self
            .command()
            .args(["send-keys", "-t", "lab"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Types `text` as it is (`send-keys -l`): no key names in it.
    pub(crate) fn text(&self, text: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "lab", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub(crate) fn screen(&self) -> String {
        let output = self
            .command()
            .args(["capture-pane", "-p", "-t", "lab"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn pane_pid(&self) -> u32 {
        let output = self
            .command()
            .args(["display-message", "-p", "-t", "lab", "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("tmux names the pane's process")
    }

    /// Waits until the screen satisfies `test`; fails with the screen (and
    /// `context`) after `timeout`.
    pub(crate) fn wait(
        &self,
        timeout: Duration,
        what: &str,
        test: impl Fn(&str) -> bool,
    ) -> String {
        let mut screen = String::new();
        let held = wait_until(timeout, || {
            screen = self.screen();
            test(&screen)
        });
        assert!(held, "waited {timeout:?} for {what}:\n{screen}");
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The live pane's text of each screen line (right of the split).
pub(crate) fn pane(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .filter_map(|line| line.split_once('│').map(|(_, pane)| pane.trim_end()))
        .collect()
}

/// The packets the Flows pane shows for one rule of one flow.
fn packets(screen: &str, flow: &str, rule: &str) -> Option<u64> {
    let lines = pane(screen);
    let header = format!("flow {flow}");
    let rule = format!("  {rule} ");
    lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.trim() == header)
        .flat_map(|(at, _)| lines[at + 1..].iter().take_while(|l| l.starts_with("  ")))
        .find_map(|line| line.strip_prefix(&rule))
        .and_then(|counts| counts.split(" pkts").next())
        .and_then(|packets| packets.trim().parse().ok())
}

/// The processes whose command line mentions `text`.
fn processes_mentioning(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = entry.path().join("cmdline");
        if let Ok(bytes) = std::fs::read(cmdline) {
            let line = String::from_utf8_lossy(&bytes).replace('\0', " ");
            if line.contains(text) {
                found.push(format!("{}: {line}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

fn tally(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("demo-client.txt")).unwrap_or_default()
}

/// The tally's line about one target, e.g. `web http 192.168.0.10:80`.
fn tally_line<'t>(tally: &'t str, target: &str) -> &'t str {
    tally
        .lines()
        .find(|line| line.starts_with(&format!("{target} ")))
        .unwrap_or("")
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn the_sandbox_is_alive_servers_answer_one_is_down_and_flows_count() {
    let lab = Lab::new("sandbox");
    let tmp: PathBuf = lab.state_dir().with_file_name("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let command = format!(
        "TMPDIR={} exec {} --sandbox 2>{}",
        tmp.display(),
        crate::support::lbconsole_binary().display(),
        tmp.join("console.err").display()
    );
    let tmux = Tmux::start("sandbox", &command);
    let console = tmux.pane_pid();
    let dir = tmp.join(format!("lbconsole-sandbox-{console}"));

    // The first screen: the demo's banner, and the example running, its bond's
    // primary slave active and the other its backup.
    tmux.wait(START, "the live demo", |s| {
        s.contains("sandbox: live demo, web2 down on purpose") && s.contains(" running ")
    });
    tmux.wait(SETTLE, "the bond's slaves", |s| {
        s.contains("`-eth2   active  mii up") && s.contains("`-eth3   backup  mii up")
    });
    let daemons = processes_mentioning(&format!("daemon --config-dir {}", dir.display()));
    assert_eq!(daemons.len(), 1, "one health daemon: {daemons:?}");

    // LB Layer4: every checked server is up but web2, which has no host;
    // web6's two, checked over IPv6, among them.
    tmux.keys(&["F3"]);
    let screen = tmux.wait(SETTLE, "web2 down and the others up", |s| {
        let pane = pane(s).join("\n");
        pane.contains("down web2 10.0.2.12:8080 w0 (out)")
            && pane.matches("  down ").count() == 1
            && pane.matches("  up ").count() == 9
            && pane.contains("up web1 [2001:db8:100::2:11]:8080")
            && pane.contains("up sorry1 [2001:db8:100::2:99]:8080")
    });
    assert!(
        pane(&screen)
            .join("\n")
            .contains("sorry sorry1 10.0.2.99:8080"),
        "{screen}"
    );

    // The servers answer through the VIPs, as the demo client tallies it.
    let mut answers = String::new();
    let answered = wait_until(SETTLE, || {
        answers = tally(&dir);
        let mail: String = ["25", "110", "143"]
            .map(|port| tally_line(&answers, &format!("maildirect tcp 192.168.0.2:{port}")))
            .join("\n");
        tally_line(&answers, "web http 192.168.0.10:80").contains("web1 ")
            && mail.contains("mail1 ")
            && mail.contains("mail2 ")
            && ["dns1 ", "dns2 "]
                .iter()
                .any(|name| tally_line(&answers, "dns udp 192.168.0.11:53").contains(name))
            && ["app1 ", "app2 "]
                .iter()
                .any(|name| tally_line(&answers, "app tcp 192.168.0.12:443").contains(name))
            // The IPv6 director serves: round robin over both of its servers.
            && ["web1 ", "sorry1 "]
                .iter()
                .all(|name| tally_line(&answers, "web6 http [2001:db8::10]:80").contains(name))
    });
    assert!(
        answered,
        "the servers did not answer through the VIPs:\n{answers}"
    );
    assert!(
        tally_line(&answers, "blocked tcp 192.168.0.1:80").contains("dropped "),
        "flows.conf drops what no flow permits:\n{answers}"
    );

    // Flows: the counters count the client's traffic.
    tmux.keys(&["F2"]);
    let screen = tmux.wait(SETTLE, "the vips flow's counters", |s| {
        packets(s, "vips", "rule 1").is_some()
    });
    let before = packets(&screen, "vips", "rule 1").unwrap();
    tmux.wait(SETTLE, "the web VIP's counter to grow", |s| {
        packets(s, "vips", "rule 1").is_some_and(|now| now > before)
    });

    // The terminal goes away (SIGHUP): the console, its daemon and its
    // namespaces with it.
    let _ = tmux.command().arg("kill-server").status();
    let gone = wait_until(SETTLE, || {
        !Path::new(&format!("/proc/{console}")).exists()
            && processes_mentioning(&dir.display().to_string()).is_empty()
    });
    assert!(
        gone,
        "left running: {:?}",
        processes_mentioning(&dir.display().to_string())
    );
    drop(lab);
}

/// The screen parsing is plain code: tested on the host.
#[test]
fn the_flows_pane_is_read_by_flow_and_rule() {
    let screen = "x │flow mail\n\
                  y │  rule 1 14 pkts 840 bytes\n\
                  z │flow vips\n\
                  z │  entered 47 pkts 2554 bytes\n\
                  z │flow vips\n\
                  z │  rule 1 9 pkts 540 bytes\n\
                  z │  rule 2 6 pkts 246 bytes\n";
    assert_eq!(packets(screen, "vips", "rule 1"), Some(9));
    assert_eq!(packets(screen, "vips", "rule 2"), Some(6));
    assert_eq!(packets(screen, "mail", "rule 1"), Some(14));
    assert_eq!(packets(screen, "ssh", "rule 1"), None);
}
