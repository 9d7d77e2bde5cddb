//! `lbconsole convert`, proved on the kernel. keepalived programs IPVS from a
//! fixture of `tests/convert/keepalived/`; lbconsole programs it from the
//! conversion, through the administrator's path (`convert --out`, `import`,
//! `apply`); the two `ipvsadm -Sn` dumps are equal. This runs for every fixture
//! whose report says nothing is approximated. And an `ipvsadm -Sn` dump comes
//! back unchanged from convert and apply.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lbconsole::convert::{self, DiskFiles, Options, Source};

use crate::support::{HttpServer, Lab, Netns, wait_until};

/// How long keepalived may take to program every server it starts with.
const PROGRAMMED_WITHIN: Duration = Duration::from_secs(30);

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/convert")
        .join(kind)
}

/// The fixtures whose IPVS table converts exactly. For keepalived: nothing
/// approximated or left out but the checks (which change nothing while every
/// server is up, as here) and blocks that are not LVS, nothing the
/// administrator must still do but write a `protocol`, no error and no
/// unknown keyword. For ipvsadm, whose every option is the table's: a report
/// with nothing in it.
fn exact_fixtures(kind: &str, source: &str) -> Vec<PathBuf> {
    let inexact = |line: &str| {
        if kind == "ipvsadm" {
            return !line.starts_with("check: ") || line.contains(": error: ");
        }
        let about_checks = |what: &str| what.to_lowercase().contains("check");
        let approximated = line
            .split_once(": approximated: ")
            .is_some_and(|(_, what)| !about_checks(what));
        // Left out: keepalived's blocks that are not LVS, and check settings,
        // leave the table alone; anything else (a flag, a threshold) changes it.
        let dropped = line.split_once(": dropped: ").is_some_and(|(_, what)| {
            !(about_checks(what)
                || ["global_defs", "vrrp_", "static_"]
                    .iter()
                    .any(|block| what.starts_with(block)))
        });
        // Writing `protocol` is a to-do that keeps keepalived's table.
        let to_do = line.contains(": to do: ") && !line.contains("no `protocol`: keepalived");
        approximated
            || dropped
            || to_do
            || [": error: ", ": unknown: "]
                .iter()
                .any(|kind| line.contains(kind))
            || (line.starts_with("check: ") && line.contains(": error: "))
    };
    let mut exact: Vec<PathBuf> = std::fs::read_dir(fixtures(kind))
        .expect("the fixtures")
        .map(|entry| entry.expect("a fixture").path())
        .filter(|dir| {
            let report = std::fs::read_to_string(dir.join("report.txt")).unwrap_or_default();
            dir.join(source).is_file() && !report.lines().any(inexact)
        })
        .collect();
    exact.sort();
    exact
}

/// `ipvsadm -Sn`, its lines sorted: IPVS lists services in hash order.
fn table(lab: &Lab) -> Vec<String> {
    let mut lines: Vec<String> = lab.sh("ipvsadm -Sn").lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

/// The real servers, up: each address on `p0` of a namespace of their own,
/// routed from the lab's `rs0`, with an [`HttpServer`] on each address and
/// port. Not on the lab's own `lo`: IPVS turns a local real server into
/// "local node" forwarding, which neither configuration asked for.
struct Backends {
    peer: Netns,
    serving: BTreeMap<SocketAddr, HttpServer>,
}

impl Backends {
    fn new(lab: &Lab) -> Backends {
        let peer = lab.netns("real");
        lab.veth("rs0", "p0", &peer);
        lab.ip_batch(
            "rs0",
            "link set rs0 up\naddr add 192.0.2.1/32 dev rs0\naddr add 2001:db8:ffff::1/128 dev rs0 nodad\n",
        );
        Backends {
            peer,
            serving: BTreeMap::new(),
        }
    }

    /// Serves each of `servers` not served yet.
    fn serve(&mut self, lab: &Lab, servers: &[SocketAddr]) {
        let (mut here, mut there) = (String::new(), String::new());
        let mut addresses: Vec<IpAddr> = servers.iter().map(SocketAddr::ip).collect();
        addresses.dedup();
        for address in addresses {
            let (prefix, flags) = if address.is_ipv4() {
                (32, "")
            } else {
                (128, " nodad")
            };
            let _ = writeln!(here, "route replace {address}/{prefix} dev rs0");
            let _ = writeln!(there, "addr replace {address}/{prefix} dev p0{flags}");
        }
        there.push_str("route replace 0.0.0.0/0 dev p0\nroute replace ::/0 dev p0\n");
        lab.ip_batch("routes", &here);
        let batch = lab.state_dir().join("real.ip");
        std::fs::write(&batch, there).expect("the servers' batch");
        self.peer.ip(&["-batch", &batch.display().to_string()]);
        for server in servers {
            if !self.serving.contains_key(server) {
                let up = HttpServer::start(&self.peer, *server, "real");
                self.serving.insert(*server, up);
            }
        }
    }
}

/// Every real server of the conversion, sorry servers included, with the
/// port it is reached on.
fn real_servers(config: &Path) -> Vec<SocketAddr> {
    let options = Options {
        instance: instance(config),
    };
    let conversion = convert::convert(Source::Keepalived, config, &DiskFiles, &options)
        .expect("the fixture converts");
    let mut servers = Vec::new();
    for director in &conversion.directors {
        let vip_port = director
            .value
            .service
            .as_ref()
            .and_then(|service| service.value.port)
            .map(|port| port.get());
        for server in &director.value.servers {
            if let Some(port) = server.port.map(|port| port.get()).or(vip_port) {
                servers.push(SocketAddr::new(server.address, port));
            }
        }
    }
    servers.sort();
    servers.dedup();
    servers
}

/// keepalived's `--config-id`, and lbconsole's `--instance`: the fixture's
/// `instance` file, when it has one.
fn instance(config: &Path) -> Option<String> {
    std::fs::read_to_string(config.with_file_name("instance"))
        .ok()
        .map(|id| id.trim().to_owned())
}

fn keepalived(lab: &Lab, config: &Path) -> Child {
    let mut command = Command::new("keepalived");
    if let Some(id) = instance(config) {
        command.args(["--config-id", &id]);
    }
    command
        .args(["--dont-fork", "--check", "--log-console", "--use-file"])
        .arg(config)
        .arg("--pid")
        .arg(lab.state_dir().join("keepalived.pid"))
        .arg("--checkers_pid")
        .arg(lab.state_dir().join("checkers.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("keepalived")
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on a process this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// `lbconsole convert --out`, `import` of that directory, `apply`.
fn convert_import_apply(lab: &Lab, source: &str, file: &Path) -> String {
    let out = lab
        .state_dir()
        .join(format!("converted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let (file, out_dir) = (file.display().to_string(), out.display().to_string());
    let mut args = vec!["convert", "--from", source, &file, "--out", &out_dir];
    let id = instance(Path::new(&file));
    if let Some(id) = &id {
        args.extend(["--instance", id]);
    }
    let converted = lab.lbconsole(&args);
    assert!(converted.success(), "{converted}");
    let imported = lab.lbconsole(&["import", &out.display().to_string()]);
    assert!(imported.success(), "{imported}");
    let applied = lab.lbconsole(&["apply"]);
    assert!(applied.success(), "{applied}");
    std::fs::remove_dir_all(&out).expect("remove the conversion");
    converted.stderr
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn keepalived_and_lbconsole_program_the_same_table_from_each_exact_fixture() {
    let lab = Lab::new("convert-keepalived");
    let exact = exact_fixtures("keepalived", "keepalived.conf");
    assert!(!exact.is_empty(), "no exact keepalived fixture");
    lab.write_config("", "", "");
    let mut backends = Backends::new(&lab);
    for dir in exact {
        let config = dir.join("keepalived.conf");
        let servers = real_servers(&config);
        backends.serve(&lab, &servers);
        let running = keepalived(&lab, &config);
        let mut theirs = Vec::new();
        // Every service and server in, and the table still for a second.
        let programmed = wait_until(PROGRAMMED_WITHIN, || {
            let now = table(&lab);
            let settled = now == theirs && now.len() > servers.len();
            theirs = now;
            std::thread::sleep(Duration::from_secs(1));
            settled
        });
        stop(running);
        assert!(
            programmed,
            "{}: keepalived programmed {theirs:#?}",
            dir.display()
        );
        lab.sh("ipvsadm -C");

        let report = convert_import_apply(&lab, "keepalived", &config);
        let ours = table(&lab);
        assert_eq!(
            ours,
            theirs,
            "{}: the tables differ; report:\n{report}",
            dir.display()
        );
        println!("{}: {} lines, the same", dir.display(), ours.len());
        lab.write_config("", "", "");
        let emptied = lab.lbconsole(&["apply", "--yes"]);
        assert!(emptied.success(), "{emptied}");
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_ipvsadm_dump_comes_back_identical_from_convert_and_apply() {
    let lab = Lab::new("convert-ipvsadm");
    let exact = exact_fixtures("ipvsadm", "ipvsadm.txt");
    assert!(!exact.is_empty(), "no exact ipvsadm fixture");
    lab.write_config("", "", "");
    for dir in exact {
        let restored = lab.try_sh(&format!(
            "ipvsadm -R < {}",
            dir.join("ipvsadm.txt").display()
        ));
        assert!(restored.success(), "{}: {restored}", dir.display());
        let dump = lab.state_dir().join("dump.txt");
        std::fs::write(&dump, lab.sh("ipvsadm -Sn")).expect("the dump");
        let before = table(&lab);
        lab.sh("ipvsadm -C");

        let report = convert_import_apply(&lab, "ipvsadm", &dump);
        assert_eq!(table(&lab), before, "{}: report:\n{report}", dir.display());
        println!("{}: {} lines, the same", dir.display(), before.len());
        lab.write_config("", "", "");
        let emptied = lab.lbconsole(&["apply", "--yes"]);
        assert!(emptied.success(), "{emptied}");
    }
}
