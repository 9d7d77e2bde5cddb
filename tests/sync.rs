//! `lbconsole sync` between two stores on this host: the peer is reached
//! through a stand-in for ssh that runs the remote command with the peer's
//! directories, as sshd's `SetEnv` does in the lab (tests/lab/sync.rs, real ssh).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use lbconsole::ha::peer::{self, PeerError};
use lbconsole::store::{ConfigFiles, Settings};

mod common;

use common::Dirs;

const LB1_NETWORK: &str = "# lb1\nservice network eth1\n    ip address 192.0.2.2/24\n";
const LB2_NETWORK: &str = "# lb2\nservice network eth1\n    ip address 192.0.2.3/24\n";
const NEW_LVS: &str = "director web 198.51.100.10:80 TCP\n    server a 203.0.113.1 weight 2\n";
const OLD_LVS: &str = "director web 198.51.100.10:80 TCP\n    server a 203.0.113.1 weight 1\n";
const NEW_FLOWS: &str = "flow ssh permit\n    match proto tcp dstport 22\n";

/// Two boxes: lb1 with a newer lvs.conf and a flow, lb2 with an older lvs.conf;
/// each its own network.conf, each saved once. lb1's settings reach lb2 through
/// the stand-in ssh.
struct Pair {
    lb1: Dirs,
    lb2: Dirs,
    ssh: PathBuf,
}

impl Pair {
    fn new(name: &str) -> Pair {
        let lb1 = Dirs::new(&format!("sync-{name}-lb1"));
        let lb2 = Dirs::new(&format!("sync-{name}-lb2"));
        lb1.write("network.conf", LB1_NETWORK);
        lb1.write("lvs.conf", NEW_LVS);
        lb1.write("flows.conf", NEW_FLOWS);
        lb2.write("network.conf", LB2_NETWORK);
        lb2.write("lvs.conf", OLD_LVS);
        lb2.write("flows.conf", "");
        lb1.ok(&["save"]);
        lb2.ok(&["save"]);
        let ssh = lb1.root.join("ssh");
        std::fs::write(
            &ssh,
            format!(
                "#!/bin/sh\n\
                 # ssh's options, then `--` and the peer; the rest is the remote command line.\n\
                 while [ \"$1\" != -- ]; do shift; done\n\
                 shift 2\n\
                 export LBCONSOLE_CONFIG_DIR='{}' LBCONSOLE_STATE_DIR='{}'\n\
                 exec sh -c \"$*\"\n",
                lb2.config().display(),
                lb2.state().display()
            ),
        )
        .expect("write the stand-in ssh");
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        lb1.write(
            "lbconsole.toml",
            &format!(
                "ssh = \"{}\"\npeer_command = \"{}\"\n",
                ssh.display(),
                env!("CARGO_BIN_EXE_lbconsole")
            ),
        );
        Pair { lb1, lb2, ssh }
    }

    fn settings(&self) -> Settings {
        Settings::load(&self.lb1.config()).expect("lb1's settings")
    }
}

fn saved(dirs: &Dirs) -> (u64, ConfigFiles) {
    let saved = dirs.store().saved().expect("saved");
    (saved.version, saved.files)
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).expect("read")
}

#[test]
fn sync_saves_lvs_and_flows_on_the_peer_keeps_its_network_and_then_has_nothing_to_do() {
    let pair = Pair::new("push");
    let dry = pair.lb1.ok(&["sync", "--to", "lb2", "--dry-run"]);
    assert!(
        dry.contains("--- lb2/lvs.conf\n+++ saved/lvs.conf\n"),
        "{dry}"
    );
    assert!(dry.contains("+flow ssh permit\n"), "{dry}");
    assert!(!dry.contains("network.conf"), "{dry}");
    assert!(
        dry.ends_with("dry run: nothing was sent to lb2 (its saved version is 1)\n"),
        "{dry}"
    );
    assert_eq!(saved(&pair.lb2).0, 1, "a dry run sends nothing");

    let synced = pair.lb1.ok(&["sync", "--to", "lb2"]);
    assert!(synced.contains("lb2: saved version 2: "), "{synced}");
    let config = pair.lb2.config();
    assert_eq!(read(&config, "lvs.conf"), NEW_LVS);
    assert_eq!(read(&config, "flows.conf"), NEW_FLOWS);
    assert_eq!(read(&config, "network.conf"), LB2_NETWORK);
    assert_eq!(saved(&pair.lb2).0, 2);

    let again = pair.lb1.ok(&["sync", "--to", "lb2"]);
    assert_eq!(
        again,
        "lb2 already has this box's lvs.conf and flows.conf (version 2)\n"
    );
    assert_eq!(saved(&pair.lb2).0, 2, "nothing was written");
}

#[test]
fn without_to_the_peer_is_the_first_peer_of_service_vrrp() {
    let pair = Pair::new("default-peer");
    pair.lb1.write(
        "network.conf",
        "service network eth1\n    ip address 192.0.2.2/24\n    vrrp id 51\n    \
         vrrp address 192.0.2.100/24\nservice vrrp\n    peer 192.0.2.3\n    peer 192.0.2.4\n",
    );
    pair.lb1.ok(&["save"]);
    let synced = pair.lb1.ok(&["sync"]);
    assert!(synced.contains("192.0.2.3: saved version 2: "), "{synced}");
    assert_eq!(read(&pair.lb2.config(), "lvs.conf"), NEW_LVS);
    assert_eq!(read(&pair.lb2.config(), "network.conf"), LB2_NETWORK);
}

#[tokio::test]
async fn a_push_from_a_stale_base_is_refused_by_the_peer_and_writes_nothing() {
    let pair = Pair::new("stale");
    let settings = pair.settings();
    let comparison = peer::compare(&pair.lb1.store(), &settings, Some("lb2"))
        .await
        .expect("compared");
    assert_eq!((comparison.local_version, comparison.peer_version), (1, 1));
    assert!(!comparison.in_step());
    // lb2 saves a version of its own after lb1 read it.
    pair.lb2.write(
        "flows.conf",
        "flow web permit\n    match proto tcp dstport 80\n",
    );
    pair.lb2.ok(&["save"]);
    let before = saved(&pair.lb2);
    let error = peer::push(&settings, &comparison, false)
        .await
        .expect_err("stale");
    assert!(matches!(error, PeerError::Peer { .. }), "{error:?}");
    let error = error.to_string();
    assert!(
        error.starts_with("lb2: configuration changed by "),
        "{error}"
    );
    assert!(error.ends_with("(version 2); reload or merge"), "{error}");
    assert_eq!(saved(&pair.lb2), before, "nothing was written");
}

#[test]
fn ssh_failures_are_one_sentence_with_the_line_that_says_why() {
    let pair = Pair::new("fail");
    let refused = pair.lb1.root.join("refused-ssh");
    std::fs::write(
        &refused,
        "#!/bin/sh\necho 'ssh: connect to host lb2 port 22: Connection refused' >&2\nexit 255\n",
    )
    .expect("write");
    std::fs::set_permissions(&refused, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let output = pair
        .lb1
        .command(&["sync", "--to", "lb2"])
        .env("LBCONSOLE_SSH", &refused)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "lbconsole: cannot reach lb2 over ssh: ssh: connect to host lb2 port 22: Connection refused\n"
    );

    pair.lb1.write(
        "lbconsole.toml",
        &format!(
            "ssh = \"{}\"\npeer_command = \"/nonexistent/lbconsole\"\n",
            pair.ssh.display()
        ),
    );
    let error = pair.lb1.refused(&["sync", "--to", "lb2"]);
    assert!(
        error.starts_with("lbconsole: lb2 cannot run `/nonexistent/lbconsole` ("),
        "{error}"
    );
    assert!(
        error.ends_with("); set peer_command in lbconsole.toml\n"),
        "{error}"
    );

    // No --to and no `peer` in network.conf.
    let error = pair.lb1.refused(&["sync"]);
    assert_eq!(
        error,
        "lbconsole: no peer to sync with: the saved network.conf has no `peer` in \
         `service vrrp`; add one, or name the peer with --to\n"
    );
    assert_eq!(saved(&pair.lb2).0, 1, "nothing reached lb2");
}

#[test]
fn an_unknown_setting_is_refused_by_name_before_ssh_runs() {
    let pair = Pair::new("settings");
    pair.lb1.write("lbconsole.toml", "ssh_command = \"ssh\"\n");
    let error = pair.lb1.refused(&["sync", "--to", "lb2"]);
    assert!(error.contains("unknown field `ssh_command`"), "{error}");
}
