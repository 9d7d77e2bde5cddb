//! `lbconsole sync` over real ssh: lb1 (the test's namespace) and lb2 (a
//! namespace running sshd with lb2's directories) joined by a veth; keys made
//! by the test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use lbconsole::ha::peer::{self, PeerError};
use lbconsole::store::{ConfigFiles, Settings, Store};

use crate::support::{Lab, Netns, Run, lbconsole_binary, wait_until};

const LB1_NETWORK: &str = "# lb1\nservice network eth1\n    ip address 10.0.0.2/24\n";
const LB2_NETWORK: &str = "# lb2\nservice network p1\n    ip address 10.0.0.3/24\n";
/// lb1's director; lb2 has an older one (weight 1).
const LB1_LVS: &str =
    "director web 10.0.0.100:80 TCP\n    balance roundrobin\n    server a 10.0.0.50:80 weight 2\n";
const LB2_LVS: &str =
    "director web 10.0.0.100:80 TCP\n    balance roundrobin\n    server a 10.0.0.50:80 weight 1\n";
/// A flow that lets ssh through, whatever else the flows do.
const LB1_FLOWS: &str = "flow ssh permit\n    match proto tcp dstport 22\n";

/// The peer: its namespace, its directories and its sshd.
struct Peer {
    netns: Netns,
    config: PathBuf,
    state: PathBuf,
    sshd_log: PathBuf,
    _sshd: crate::support::Background,
}

impl Peer {
    fn lbconsole(&self, args: &[&str]) -> Run {
        Run::of(
            Command::new(lbconsole_binary())
                .args(args)
                .env("LBCONSOLE_CONFIG_DIR", &self.config)
                .env("LBCONSOLE_STATE_DIR", &self.state),
        )
    }

    fn saved(&self) -> (u64, ConfigFiles) {
        let saved = Store::open(&self.config, &self.state)
            .and_then(|store| store.saved())
            .expect("lb2's saved configuration");
        (saved.version, saved.files)
    }
}

fn keygen(path: &Path) {
    Run::of(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "lab", "-f"])
            .arg(path),
    )
    .expect_success();
}

/// lb1 and lb2 saved once each, sshd listening in lb2, lb1's settings reaching
/// it with the test's key.
fn pair(lab: &Lab) -> Peer {
    let netns = lab.netns("lb2");
    lab.veth("eth1", "p1", &netns);
    lab.ip(&["addr", "add", "10.0.0.2/24", "dev", "eth1"]);
    lab.ip(&["link", "set", "eth1", "up"]);
    netns.ip(&["addr", "add", "10.0.0.3/24", "dev", "p1"]);
    netns.ip(&["link", "set", "p1", "up"]);

    let root = lab
        .config_dir()
        .parent()
        .expect("the lab's root")
        .join("lb2");
    let (config, state, ssh) = (
        root.join("lb2-config"),
        root.join("lb2-state"),
        root.join("ssh"),
    );
    for dir in [&config, &state, &ssh] {
        fs::create_dir_all(dir).expect("create a directory");
    }
    lab.write_config(LB1_NETWORK, LB1_FLOWS, LB1_LVS);
    for (name, text) in [
        ("network.conf", LB2_NETWORK),
        ("flows.conf", ""),
        ("lvs.conf", LB2_LVS),
    ] {
        fs::write(config.join(name), text).expect("write lb2's config");
    }

    let (host_key, client_key) = (ssh.join("host_key"), ssh.join("client_key"));
    keygen(&host_key);
    keygen(&client_key);
    let authorized = ssh.join("authorized_keys");
    fs::copy(client_key.with_extension("pub"), &authorized).expect("authorize the key");
    let host_public = fs::read_to_string(host_key.with_extension("pub")).expect("host key");
    let known_hosts = ssh.join("known_hosts");
    fs::write(&known_hosts, format!("10.0.0.3 {host_public}")).expect("known_hosts");
    // The VM emulates its CPU: OpenSSH's default post-quantum key exchange
    // (sntrup761) costs seconds there, curve25519 alone does not.
    let sshd_config = ssh.join("sshd_config");
    fs::write(
        &sshd_config,
        format!(
            "ListenAddress 10.0.0.3:22\n\
             HostKey {}\n\
             PidFile none\n\
             AuthorizedKeysFile {}\n\
             StrictModes no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             KexAlgorithms curve25519-sha256\n\
             SetEnv LBCONSOLE_CONFIG_DIR={} LBCONSOLE_STATE_DIR={}\n",
            host_key.display(),
            authorized.display(),
            config.display(),
            state.display()
        ),
    )
    .expect("sshd_config");
    // sshd's privilege separation directory.
    fs::create_dir_all("/run/sshd").expect("/run/sshd");
    // virtme-init locks every account of the VM in /etc/shadow (`root:!`), and
    // sshd without PAM refuses a locked account even with a key. The test's
    // mount namespace is a slave of the VM's: this bind mount stays in it.
    let shadow = ssh.join("shadow");
    fs::write(&shadow, "root:*:::::::\n").expect("shadow");
    lab.sh(&format!("mount --bind {} /etc/shadow", shadow.display()));
    let sshd = netns.spawn(&format!(
        "exec /usr/sbin/sshd -D -e -f {} 2>{}",
        sshd_config.display(),
        ssh.join("sshd.log").display()
    ));
    assert!(
        wait_until(Duration::from_secs(10), || netns.listens(22)),
        "sshd does not listen in lb2: {}",
        fs::read_to_string(ssh.join("sshd.log")).unwrap_or_default()
    );
    // A key exchange costs seconds in the emulated VM: the test's ssh shares
    // one connection between its calls, as an administrator's ssh_config may.
    fs::write(
        lab.config_dir().join("lbconsole.toml"),
        format!(
            "ssh = \"ssh -F /dev/null -l root -i {} -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes \
             -o ControlMaster=auto -o ControlPath={}/mux-%C -o ControlPersist=15\"\n\
             peer_command = \"{}\"\n",
            client_key.display(),
            known_hosts.display(),
            ssh.display(),
            lbconsole_binary().display()
        ),
    )
    .expect("lb1's settings");

    lab.lbconsole(&["save"]).expect_success();
    let peer = Peer {
        netns,
        config,
        state,
        sshd_log: ssh.join("sshd.log"),
        _sshd: sshd,
    };
    peer.lbconsole(&["save"]).expect_success();
    peer
}

#[test]
#[ignore]
fn sync_over_ssh_saves_and_applies_lvs_and_flows_on_the_peer_and_refuses_a_stale_base() {
    let started = Instant::now();
    let lab = Lab::new("sync");
    let lb2 = pair(&lab);
    eprintln!("pair ready after {:?}", started.elapsed());
    let (first, _) = lb2.saved();

    // A stale base: lb1 reads lb2's version, lb2 saves another, lb1 pushes.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let lb1_store = Store::open(lab.config_dir(), lab.state_dir()).expect("lb1's store");
    let settings = Settings::load(lab.config_dir()).expect("lb1's settings");
    let comparison = runtime
        .block_on(peer::compare(&lb1_store, &settings, Some("10.0.0.3")))
        .unwrap_or_else(|error| {
            let log = fs::read_to_string(&lb2.sshd_log).unwrap_or_default();
            panic!("lb1 cannot read lb2 over ssh: {error}\nsshd's log:\n{log}")
        });
    assert_eq!(comparison.peer_version, first);
    assert!(
        comparison
            .diff
            .contains("-    server a 10.0.0.50:80 weight 1\n"),
        "{}",
        comparison.diff
    );
    fs::write(
        lb2.config.join("flows.conf"),
        "flow web permit\n    match proto tcp dstport 80\n",
    )
    .expect("edit lb2");
    lb2.lbconsole(&["save"]).expect_success();
    let before = lb2.saved();
    let error = runtime
        .block_on(peer::push(&settings, &comparison, true))
        .expect_err("a stale base is refused");
    assert!(matches!(error, PeerError::Peer { .. }), "{error:?}");
    let sentence = error.to_string();
    assert!(
        sentence.starts_with("10.0.0.3: configuration changed by ")
            && sentence.ends_with(&format!("(version {}); reload or merge", first + 1)),
        "{sentence}"
    );
    assert_eq!(lb2.saved(), before, "lb2 wrote nothing");
    eprintln!("stale base refused after {:?}", started.elapsed());

    // The sync itself, applied by lb2.
    let synced = lab
        .lbconsole(&["sync", "--to", "10.0.0.3", "--apply"])
        .expect_success();
    eprintln!("{synced}");
    assert!(
        synced.contains("--- 10.0.0.3/lvs.conf\n+++ saved/lvs.conf\n"),
        "{synced}"
    );
    assert!(
        synced.contains(&format!("10.0.0.3: saved version {}: ", first + 2)),
        "{synced}"
    );
    let (version, files) = lb2.saved();
    assert_eq!(version, first + 2, "one version more");
    assert_eq!(files.lvs, LB1_LVS.as_bytes());
    assert_eq!(files.flows, LB1_FLOWS.as_bytes());
    assert_eq!(
        files.network,
        LB2_NETWORK.as_bytes(),
        "network.conf is never synced"
    );
    let ipvs = Run::of(lb2.netns.command("ipvsadm").arg("-Ln")).expect_success();
    let weight = ipvs
        .lines()
        .find(|line| line.contains("-> 10.0.0.50:80"))
        .and_then(|line| line.split_whitespace().nth(3));
    // roundrobin with weights is IPVS's `wrr`.
    assert!(ipvs.contains("TCP  10.0.0.100:80 wrr"), "{ipvs}");
    assert_eq!(weight, Some("2"), "lb2 runs lb1's director:\n{ipvs}");

    eprintln!("synced and applied after {:?}", started.elapsed());
    let again = lab
        .lbconsole(&["sync", "--to", "10.0.0.3"])
        .expect_success();
    assert_eq!(
        again,
        format!(
            "10.0.0.3 already has this box's lvs.conf and flows.conf (version {})\n",
            first + 2
        )
    );
    assert_eq!(lb2.saved().0, first + 2, "nothing was written");
    eprintln!("nothing to do after {:?}", started.elapsed());
}
