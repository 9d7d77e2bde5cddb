//! Configuration sync with the other appliance over the system's `ssh`:
//! `lbconsole sync` and the Setup tab.
//!
//! [`compare`] runs `ssh PEER lbconsole export -` and diffs the peer's saved
//! `lvs.conf` and `flows.conf` against this box's. [`push`] sends an archive of
//! this box's `lvs.conf` and `flows.conf` with the peer's OWN `network.conf`
//! (per box, never synced) to `ssh PEER lbconsole import - --expect-version V`,
//! V being the peer's version that was compared: a peer that saved since is
//! refused by the peer's own store with the usual stale-version sentence, and
//! the peer validates before it writes anything.
//!
//! ssh runs with `BatchMode=yes` (never a password prompt) and a connect
//! timeout, and each call has an overall deadline: a dead peer is an error, not
//! a hang. The ssh command and what the peer runs come from the settings.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::model::network::VrrpService;
use crate::config::parse::parse_network;
use crate::store::archive::Archive;
use crate::store::settings::SSH_ENV;
use crate::store::{ConfigFiles, Saved, Settings, Store, StoreError};

/// ssh's `ConnectTimeout`: an unreachable peer is reported after this long.
pub const CONNECT_TIMEOUT_S: u64 = 10;

/// The longest one ssh call may take, an apply on the peer included; it is
/// killed then.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// ssh's own exit status for its errors (connection, authentication).
const SSH_FAILED: i32 = 255;

/// The shell's exit statuses for a command it cannot find or run.
const COMMAND_NOT_RUN: [i32; 2] = [126, 127];

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "no peer to sync with: the saved network.conf has no `peer` in `service vrrp`; add one, or name the peer with --to"
    )]
    NoPeer,
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot run `{program}` to reach the peer: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cannot reach {peer} over ssh: {line}")]
    Ssh { peer: String, line: String },
    #[error("{peer} cannot run `{command}` ({line}); set peer_command in lbconsole.toml")]
    NoLbconsole {
        peer: String,
        command: String,
        line: String,
    },
    #[error("{peer}: {line}")]
    Peer { peer: String, line: String },
    #[error("ssh to {peer} did not finish within {} s and was stopped; {outcome}", DEADLINE.as_secs())]
    Timeout { peer: String, outcome: &'static str },
    #[error("{peer} did not send an lbconsole archive: {message}")]
    NotAnArchive { peer: String, message: String },
}

/// This box's saved `lvs.conf` and `flows.conf` against the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerComparison {
    /// The peer as ssh is given it.
    pub peer: String,
    /// This box's saved version; 0 when nothing was ever saved.
    pub local_version: u64,
    /// The peer's saved version when it was read; what [`push`] expects it to be.
    pub peer_version: u64,
    /// Unified, `--- PEER/FILE` to `+++ saved/FILE`; empty when in step.
    pub diff: String,
    /// What [`push`] sends; `None` when the peer already has it.
    outgoing: Option<Archive>,
}

impl PeerComparison {
    /// Whether the peer's saved lvs.conf and flows.conf are this box's.
    pub fn in_step(&self) -> bool {
        self.outgoing.is_none()
    }

    /// The sentence for a peer in step.
    pub fn in_step_sentence(&self) -> String {
        format!(
            "{} already has this box's lvs.conf and flows.conf (version {})",
            self.peer, self.peer_version
        )
    }
}

/// What [`push`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub peer: String,
    /// Whether anything was sent (not when the peer was in step).
    pub sent: bool,
    /// The peer's own report (`saved version N: …`, and the apply's lines), or
    /// the in-step sentence; one line each, as the peer wrote them.
    pub report: String,
}

/// Reads the peer's saved configuration and compares it with this box's. `to`
/// names the peer; without it, the first `peer` of `service vrrp` in this
/// box's saved network.conf.
pub async fn compare(
    store: &Store,
    settings: &Settings,
    to: Option<&str>,
) -> Result<PeerComparison, PeerError> {
    let local = saved(store).await?;
    let peer = match to {
        Some(peer) => peer.to_owned(),
        None => default_peer(&local.files).ok_or(PeerError::NoPeer)?,
    };
    let remote = remote_command(settings, &["export", "-"]);
    let exported = run(settings, &peer, &remote, None, "nothing was sent").await?;
    let archive = Archive::parse(Path::new("export"), &exported).map_err(|error| {
        PeerError::NotAnArchive {
            peer: peer.clone(),
            message: error.to_string(),
        }
    })?;
    comparison(peer, &local, archive)
}

/// Sends what `comparison` showed, unless the peer was in step, and has the
/// peer save it (and apply it with `apply`) if its saved version is still the
/// one compared.
pub async fn push(
    settings: &Settings,
    comparison: &PeerComparison,
    apply: bool,
) -> Result<Pushed, PeerError> {
    let peer = comparison.peer.clone();
    let Some(archive) = &comparison.outgoing else {
        return Ok(Pushed {
            report: comparison.in_step_sentence(),
            peer,
            sent: false,
        });
    };
    let input = archive.to_toml(Path::new("-"))?;
    let expect = comparison.peer_version.to_string();
    let mut words = vec!["import", "-", "--expect-version", &expect];
    if apply {
        words.push("--apply");
    }
    let remote = remote_command(settings, &words);
    let outcome = "the peer may have saved it or not: `lbconsole sync --dry-run` shows which";
    let report = run(settings, &peer, &remote, Some(input.as_bytes()), outcome).await?;
    Ok(Pushed {
        peer,
        sent: true,
        report: String::from_utf8_lossy(&report).trim_end().to_owned(),
    })
}

/// The saved configuration, read off the async runtime: the store takes a lock.
async fn saved(store: &Store) -> Result<Saved, PeerError> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.saved()).await {
        Ok(saved) => Ok(saved?),
        // Only a panic ends a blocking task early: it goes on here.
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

/// The first `peer` of `service vrrp` in `files`' network.conf.
pub fn default_peer(files: &ConfigFiles) -> Option<String> {
    first_peer(parse_network(&files.network).0.vrrp)
}

fn first_peer(vrrp: Option<VrrpService>) -> Option<String> {
    vrrp?.peers.first().map(|peer| peer.value.to_string())
}

/// The comparison of this box's saved configuration with the archive the peer
/// exported, and the archive to send when they differ: this box's lvs.conf and
/// flows.conf with the peer's network.conf.
pub fn comparison(
    peer: String,
    local: &Saved,
    theirs: Archive,
) -> Result<PeerComparison, PeerError> {
    let peer_version = theirs.version;
    let theirs = theirs.files.into_files();
    let outgoing = ConfigFiles {
        network: theirs.network.clone(),
        flows: local.files.flows.clone(),
        lvs: local.files.lvs.clone(),
    };
    let diff = crate::cli::unified_diff(&theirs, &outgoing, &peer, "saved");
    let outgoing = if outgoing == theirs {
        None
    } else {
        let sending = Saved {
            files: outgoing,
            ..local.clone()
        };
        Some(Archive::of(&sending, Path::new("-"))?)
    };
    Ok(PeerComparison {
        peer,
        local_version: local.version,
        peer_version,
        diff,
        outgoing,
    })
}

/// `peer_command` with `words` after it: what the peer's shell runs.
fn remote_command(settings: &Settings, words: &[&str]) -> Vec<String> {
    let mut command = settings.peer_command();
    command.extend(words.iter().map(|&word| word.to_owned()));
    command
}

/// The full command line: the ssh command, lbconsole's options, the peer and
/// the remote command. `--` keeps a peer named like an option a peer.
pub fn ssh_argv(ssh: &[String], peer: &str, remote: &[String]) -> Vec<String> {
    let mut argv = ssh.to_vec();
    argv.extend([
        "-o".to_owned(),
        "BatchMode=yes".to_owned(),
        "-o".to_owned(),
        format!("ConnectTimeout={CONNECT_TIMEOUT_S}"),
        "--".to_owned(),
        peer.to_owned(),
    ]);
    argv.extend(remote.iter().cloned());
    argv
}

/// Runs `remote` on `peer` over ssh with `input` on its stdin; its stdout. Any
/// failure is one sentence ending with the line that says why: ssh's own, the
/// peer's shell's, or the peer's lbconsole's. `outcome` says what a timeout
/// leaves behind.
async fn run(
    settings: &Settings,
    peer: &str,
    remote: &[String],
    input: Option<&[u8]>,
    outcome: &'static str,
) -> Result<Vec<u8>, PeerError> {
    let from_env = std::env::var(SSH_ENV).ok();
    let ssh = settings
        .ssh_command(from_env.as_deref())
        .map_err(PeerError::Settings)?;
    let argv = ssh_argv(&ssh, peer, remote);
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| PeerError::Spawn {
            program: argv[0].clone(),
            source,
        })?;
    let stdin = child.stdin.take();
    let feed = async move {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            // A peer that stops reading says why on stderr, and its exit
            // status counts: a broken pipe here adds nothing.
            let _ = stdin.write_all(input).await;
        }
    };
    let finished = tokio::time::timeout(DEADLINE, async {
        let ((), output) = tokio::join!(feed, child.wait_with_output());
        output
    })
    .await;
    let output = match finished {
        Err(_) => {
            return Err(PeerError::Timeout {
                peer: peer.to_owned(),
                outcome,
            });
        }
        Ok(output) => output.map_err(|source| PeerError::Spawn {
            program: argv[0].clone(),
            source,
        })?,
    };
    if output.status.success() {
        return Ok(output.stdout);
    }
    Err(failure(
        peer,
        &remote[0],
        output.status.code(),
        &output.stdout,
        &output.stderr,
    ))
}

/// The error for an ssh call that failed with exit status `code`.
pub fn failure(
    peer: &str,
    command: &str,
    code: Option<i32>,
    stdout: &[u8],
    stderr: &[u8],
) -> PeerError {
    let stderr = String::from_utf8_lossy(stderr);
    let line = last_line(&stderr).unwrap_or("no message").to_owned();
    let peer = peer.to_owned();
    match code {
        Some(SSH_FAILED) | None => PeerError::Ssh { peer, line },
        Some(code) if COMMAND_NOT_RUN.contains(&code) => PeerError::NoLbconsole {
            peer,
            command: command.to_owned(),
            line,
        },
        Some(_) => {
            let line = line.strip_prefix("lbconsole: ").unwrap_or(&line);
            // What the peer did before it failed (it saved, then the apply
            // failed) belongs in the sentence too.
            let line = match last_line(&String::from_utf8_lossy(stdout)) {
                Some(done) => format!("{done}; then: {line}"),
                None => line.to_owned(),
            };
            PeerError::Peer { peer, line }
        }
    }
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive_of(version: u64, network: &str, flows: &str, lvs: &str) -> Archive {
        Archive::of(&local(version, network, flows, lvs), Path::new("-")).expect("archive")
    }

    fn local(version: u64, network: &str, flows: &str, lvs: &str) -> Saved {
        Saved {
            version,
            files: ConfigFiles {
                network: network.into(),
                flows: flows.into(),
                lvs: lvs.into(),
            },
            meta: None,
        }
    }

    #[test]
    fn the_archive_sent_carries_this_boxs_lvs_and_flows_and_the_peers_network() {
        let theirs = archive_of(4, "# lb2\n", "old flows\n", "old lvs\n");
        let mine = local(9, "# lb1\n", "new flows\n", "new lvs\n");
        let comparison = comparison("10.0.0.3".into(), &mine, theirs).expect("compared");
        assert!(!comparison.in_step());
        assert_eq!((comparison.local_version, comparison.peer_version), (9, 4));
        let sent = comparison.outgoing.clone().expect("something to send");
        assert_eq!(sent.version, 9);
        assert_eq!(
            sent.files.into_files(),
            ConfigFiles {
                network: b"# lb2\n".to_vec(),
                flows: b"new flows\n".to_vec(),
                lvs: b"new lvs\n".to_vec(),
            }
        );
        // What is sent reads back as an archive with a good checksum.
        let text = comparison
            .outgoing
            .as_ref()
            .expect("outgoing")
            .to_toml(Path::new("-"))
            .expect("toml");
        Archive::parse(Path::new("-"), text.as_bytes()).expect("a valid archive");
        assert!(
            comparison
                .diff
                .contains("--- 10.0.0.3/lvs.conf\n+++ saved/lvs.conf\n"),
            "{}",
            comparison.diff
        );
        assert!(comparison.diff.contains("-old flows\n+new flows\n"));
        assert!(!comparison.diff.contains("network.conf"), "never synced");
    }

    #[test]
    fn a_peer_that_differs_only_in_network_conf_is_in_step() {
        let theirs = archive_of(4, "# lb2\n", "flows\n", "lvs\n");
        let mine = local(7, "# lb1\n", "flows\n", "lvs\n");
        let comparison = comparison("lb2".into(), &mine, theirs).expect("compared");
        assert!(comparison.in_step());
        assert_eq!(comparison.diff, "");
        assert_eq!(
            comparison.in_step_sentence(),
            "lb2 already has this box's lvs.conf and flows.conf (version 4)"
        );
    }

    #[tokio::test]
    async fn pushing_to_a_peer_in_step_sends_nothing() {
        let theirs = archive_of(4, "", "flows\n", "lvs\n");
        let comparison =
            comparison("lb2".into(), &local(1, "", "flows\n", "lvs\n"), theirs).expect("compared");
        // An ssh that cannot run: nothing may try to.
        let settings = Settings {
            ssh: Some("/nonexistent/ssh".into()),
            ..Settings::default()
        };
        let pushed = push(&settings, &comparison, true).await.expect("in step");
        assert!(!pushed.sent);
        assert_eq!(pushed.report, comparison.in_step_sentence());
    }

    #[test]
    fn ssh_gets_batch_mode_a_connect_timeout_and_the_remote_command() {
        let ssh = ["ssh", "-i", "/k"].map(str::to_owned);
        let settings = Settings {
            peer_command: Some("/usr/local/bin/lbconsole --config-dir /etc/lb".into()),
            ..Settings::default()
        };
        let remote = remote_command(&settings, &["export", "-"]);
        assert_eq!(
            ssh_argv(&ssh, "10.0.0.3", &remote).join(" "),
            "ssh -i /k -o BatchMode=yes -o ConnectTimeout=10 -- 10.0.0.3 \
             /usr/local/bin/lbconsole --config-dir /etc/lb export -"
        );
    }

    #[test]
    fn the_default_peer_is_the_first_of_service_vrrp() {
        use crate::config::model::types::Spanned;
        let files = ConfigFiles {
            network: b"service network eth0\n    ip address 10.0.0.2/24\n".to_vec(),
            ..ConfigFiles::default()
        };
        assert_eq!(default_peer(&files), None);
        assert_eq!(
            PeerError::NoPeer.to_string(),
            "no peer to sync with: the saved network.conf has no `peer` in `service vrrp`; \
             add one, or name the peer with --to"
        );
        // Until the language parses `service vrrp`, the model is built here.
        let vrrp = VrrpService {
            peers: vec![
                Spanned::unplaced("10.0.0.3".parse().expect("ip")),
                Spanned::unplaced("10.0.0.4".parse().expect("ip")),
            ],
            ..VrrpService::default()
        };
        assert_eq!(first_peer(Some(vrrp)).as_deref(), Some("10.0.0.3"));
    }

    #[test]
    fn each_failure_is_one_sentence_with_the_line_that_says_why() {
        let ssh = failure(
            "10.0.0.3",
            "lbconsole",
            Some(255),
            b"",
            b"Warning: something\nssh: connect to host 10.0.0.3 port 22: Connection refused\r\n",
        );
        assert_eq!(
            ssh.to_string(),
            "cannot reach 10.0.0.3 over ssh: ssh: connect to host 10.0.0.3 port 22: Connection refused"
        );
        let missing = failure(
            "lb2",
            "lbconsole",
            Some(127),
            b"",
            b"bash: line 1: lbconsole: command not found\n",
        );
        assert_eq!(
            missing.to_string(),
            "lb2 cannot run `lbconsole` (bash: line 1: lbconsole: command not found); \
             set peer_command in lbconsole.toml"
        );
        let stale = failure(
            "lb2",
            "lbconsole",
            Some(1),
            b"",
            b"lbconsole: configuration changed by root at T (version 5); reload or merge\n",
        );
        assert_eq!(
            stale.to_string(),
            "lb2: configuration changed by root at T (version 5); reload or merge"
        );
        let apply_failed = failure(
            "lb2",
            "lbconsole",
            Some(1),
            b"saved version 6: lvs.conf: +director web\n",
            b"lbconsole: cannot apply: no such device\n",
        );
        assert_eq!(
            apply_failed.to_string(),
            "lb2: saved version 6: lvs.conf: +director web; then: cannot apply: no such device"
        );
        assert_eq!(
            failure("lb2", "lbconsole", Some(255), b"", b"").to_string(),
            "cannot reach lb2 over ssh: no message"
        );
    }
}
