//! `lbconsole server …` against the in-memory kernels: what an override does to
//! IPVS and to later applies, what it records, and what it refuses. The real
//! kernel under real load is tests/lab/overrides.rs.

use std::path::PathBuf;

use lbconsole::cli::{self, CommandError, Format};
use lbconsole::confirm::ApplyRequest;
use lbconsole::kernel::fake::{FakeFirewall, FakeIpvs, FakeKernel};
use lbconsole::kernel::{IpvsBackend, Kernel};
use lbconsole::operate::{self, Change};
use lbconsole::plan::overrides::Hold;
use lbconsole::store::{Store, overrides};

type Fake = Kernel<FakeKernel, FakeIpvs, FakeFirewall>;

const LVS: &str = "director web 10.0.0.1:80 TCP\n    server web1 10.0.1.1:80 weight 3\n    server web2 10.0.1.2:80 weight 2\n";

struct Dirs(PathBuf);

impl Dirs {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("lbconsole-server-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(path.join("config")).expect("config dir");
        std::fs::write(path.join("config/lvs.conf"), LVS).expect("lvs.conf");
        Self(path)
    }

    fn config(&self) -> PathBuf {
        self.0.join("config")
    }

    fn state(&self) -> PathBuf {
        self.0.join("state")
    }

    fn store(&self) -> Store {
        Store::open(&self.config(), &self.state()).expect("store")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kernel() -> Fake {
    Kernel {
        network: FakeKernel::with_veths(&["eth0"]),
        ipvs: Ok(FakeIpvs::default()),
        firewall: FakeFirewall::default(),
    }
}

fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(future)
}

fn apply(dirs: &Dirs, kernel: &mut Fake, dry_run: bool) -> String {
    let mut out = Vec::new();
    let request = ApplyRequest {
        dry_run,
        ..ApplyRequest::default()
    };
    block_on(cli::apply(
        &dirs.config(),
        &dirs.state(),
        &request,
        kernel,
        &mut out,
        &mut Vec::new(),
    ))
    .expect("applies");
    String::from_utf8(out).expect("UTF-8")
}

fn server(
    dirs: &Dirs,
    kernel: &mut Fake,
    target: &str,
    hold: Option<Hold>,
) -> Result<String, CommandError> {
    let change = Change {
        target: target.parse()?,
        hold,
        note: Some("kernel upgrade".into()),
    };
    let mut out = Vec::new();
    let ipvs = kernel.ipvs.as_mut().expect("IPVS");
    block_on(cli::server::change(&dirs.store(), ipvs, &change, &mut out))?;
    Ok(String::from_utf8(out).expect("UTF-8"))
}

/// The weight IPVS gives each real server, by the last byte of its address.
fn weights(kernel: &mut Fake) -> Vec<(u8, u32)> {
    let observed = block_on(kernel.ipvs.as_mut().expect("IPVS").observe()).expect("observe");
    observed
        .services
        .iter()
        .flat_map(|s| &s.destinations)
        .map(|d| match d.address {
            std::net::IpAddr::V4(a) => (a.octets()[3], d.weight),
            std::net::IpAddr::V6(_) => panic!("IPv4 servers"),
        })
        .collect()
}

fn list(dirs: &Dirs, kernel: &mut Fake) -> serde_json::Value {
    let mut out = Vec::new();
    let ipvs = kernel.ipvs.as_mut().map_err(|e| &*e);
    block_on(cli::server::list(
        &dirs.store(),
        ipvs,
        Format::Json,
        &mut out,
    ))
    .expect("lists");
    serde_json::from_slice(&out).expect("JSON")
}

#[test]
fn a_drained_server_stays_at_weight_zero_across_applies_until_enabled() {
    let dirs = Dirs::new("drain");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    assert_eq!(weights(&mut kernel), [(1, 3), (2, 2)]);

    let said = server(
        &dirs,
        &mut kernel,
        "web/web1",
        Some(Hold::Drain { deadline: None }),
    )
    .expect("drains");
    assert!(
        said.starts_with(
            "set real server 10.0.1.1:80 of tcp 10.0.0.1:80: masq weight 3 -> masq weight 0\n"
        ),
        "{said}"
    );
    assert!(
        said.contains("server web1 of web drained by ")
            && said.contains(": weight 0 until its connections end (kernel upgrade)\n"),
        "{said}"
    );
    assert!(
        said.ends_with("no daemon runs: the server stays at weight 0 until `lbconsole daemon` disables it, or `lbconsole server disable`\n"),
        "{said}"
    );
    assert_eq!(weights(&mut kernel), [(1, 0), (2, 2)]);
    assert!(
        kernel
            .ipvs
            .as_ref()
            .expect("IPVS")
            .expire_quiescent_templates,
        "persistence templates of a drained server expire"
    );
    let listed = list(&dirs, &mut kernel);
    assert_eq!(listed[0]["server"], "web1");
    assert_eq!(listed[0]["ipvs_weight"], 0);
    assert_eq!(listed[0]["weight"], 3);
    assert_eq!(listed[0]["override"]["state"], "drain");
    assert_eq!(listed[0]["override"]["note"], "kernel upgrade");
    assert_eq!(listed[1]["override"], serde_json::Value::Null);
    let mut text = Vec::new();
    let ipvs = kernel.ipvs.as_mut().map_err(|e| &*e);
    block_on(cli::server::list(
        &dirs.store(),
        ipvs,
        Format::Text,
        &mut text,
    ))
    .expect("lists");
    let text = String::from_utf8(text).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "SERVER    ADDRESS                WEIGHT   IPVS  ACTIVE  HEALTH OVERRIDE"
    );
    assert!(
        lines[1].starts_with(
            "web/web1  10.0.1.1:80                 3      0       0  -      drain by "
        ) && lines[1].ends_with(" (kernel upgrade)"),
        "{text}"
    );
    assert_eq!(
        lines[2],
        "web/web2  10.0.1.2:80                 2      2       0  -      -"
    );

    // An apply that changes another server keeps the drain, and says so.
    std::fs::write(
        dirs.config().join("lvs.conf"),
        LVS.replace("weight 2", "weight 4"),
    )
    .expect("lvs.conf");
    let plan = apply(&dirs, &mut kernel, true);
    assert!(
        plan.contains("note: server web1 of web drained by "),
        "{plan}"
    );
    apply(&dirs, &mut kernel, false);
    assert_eq!(weights(&mut kernel), [(1, 0), (2, 4)]);

    let said = server(&dirs, &mut kernel, "web/web1", None).expect("enables");
    assert!(
        said.contains("server web1 of web enabled: back to its configured weight"),
        "{said}"
    );
    assert_eq!(weights(&mut kernel), [(1, 3), (2, 4)]);
    let said = server(&dirs, &mut kernel, "web/web1", None).expect("nothing to do");
    assert_eq!(said, "web/web1 has no override: nothing to do\n");
    // Each change is an event, with who made it.
    let log = lbconsole::events::read(&dirs.state(), 10).expect("the event log");
    let overrides: Vec<&str> = log
        .events
        .iter()
        .filter(|e| e.kind == lbconsole::events::EventKind::Override)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(overrides.len(), 2, "{overrides:?}");
    assert!(
        overrides[0].starts_with("server web1 of web enabled"),
        "{overrides:?}"
    );
    assert!(
        overrides[1].starts_with("server web1 of web drained by "),
        "{overrides:?}"
    );
    assert!(
        log.events.iter().all(|e| e.by.is_some()),
        "{:?}",
        log.events
    );
}

#[test]
fn disable_takes_the_server_out_and_weight_sets_a_temporary_weight() {
    let dirs = Dirs::new("disable");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    server(&dirs, &mut kernel, "web/web2", Some(Hold::Disable)).expect("disables");
    server(
        &dirs,
        &mut kernel,
        "web/web1",
        Some(Hold::Weight { weight: 7 }),
    )
    .expect("weighs");
    assert_eq!(weights(&mut kernel), [(1, 7)]);
    let again = apply(&dirs, &mut kernel, false);
    assert!(
        again.starts_with("no changes\nnote: server web1 of web reweighted by "),
        "{again}"
    );
    assert!(
        again.contains("\nnote: server web2 of web disabled by "),
        "{again}"
    );
    let recorded = overrides::read(&dirs.state()).expect("overrides");
    assert_eq!(recorded.version, 2, "one version per write");
    assert_eq!(recorded.servers.len(), 2);
}

#[test]
fn removing_a_server_from_lvs_conf_removes_its_override_with_a_note() {
    let dirs = Dirs::new("removed");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    server(&dirs, &mut kernel, "web/web2", Some(Hold::Disable)).expect("disables");
    std::fs::write(
        dirs.config().join("lvs.conf"),
        "director web 10.0.0.1:80 TCP\n    server web1 10.0.1.1:80 weight 3\n",
    )
    .expect("lvs.conf");
    let plan = apply(&dirs, &mut kernel, true);
    assert!(
        plan.contains(
            "note: override removed: lvs.conf no longer has server web2 of web (disable by "
        ),
        "{plan}"
    );
    assert_eq!(
        overrides::read(&dirs.state()).expect("read").servers.len(),
        1,
        "a dry run keeps it"
    );
    apply(&dirs, &mut kernel, false);
    assert!(overrides::read(&dirs.state()).expect("read").is_empty());
}

#[test]
fn what_does_not_run_is_refused_by_name_and_nothing_is_recorded() {
    let dirs = Dirs::new("refused");
    let mut kernel = kernel();
    let error =
        server(&dirs, &mut kernel, "web/web1", Some(Hold::Disable)).expect_err("not applied");
    assert!(
        error.to_string().starts_with("nothing is applied yet"),
        "{error}"
    );
    apply(&dirs, &mut kernel, false);
    let error =
        server(&dirs, &mut kernel, "wbe/web1", Some(Hold::Disable)).expect_err("no director");
    assert_eq!(
        error.to_string(),
        "the running lvs.conf has no director `wbe`; did you mean `web`?"
    );
    let error = server(&dirs, &mut kernel, "web/web3", Some(Hold::Disable)).expect_err("no server");
    assert_eq!(
        error.to_string(),
        "director `web` has no server `web3`; did you mean `web1`?"
    );
    let error = server(&dirs, &mut kernel, "web1", Some(Hold::Disable)).expect_err("no slash");
    assert_eq!(
        error.to_string(),
        "`web1` names no server: write DIRECTOR/SERVER, as in web/web1"
    );
    assert!(!overrides::path(&dirs.state()).exists());
}

#[test]
fn an_ipvs_refusal_leaves_kernel_and_overrides_as_they_were() {
    let dirs = Dirs::new("kernel-refuses");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    server(
        &dirs,
        &mut kernel,
        "web/web2",
        Some(Hold::Weight { weight: 9 }),
    )
    .expect("weighs");
    let before = overrides::read(&dirs.state()).expect("read");
    let ipvs = kernel.ipvs.as_mut().expect("IPVS");
    ipvs.fail_at = Some(ipvs.executed);
    let error = server(&dirs, &mut kernel, "web/web1", Some(Hold::Disable)).expect_err("refused");
    assert!(
        error.to_string().starts_with("web/web1: ")
            && error
                .to_string()
                .ends_with("; the overrides were left as they were"),
        "{error}"
    );
    assert_eq!(weights(&mut kernel), [(1, 3), (2, 9)]);
    let after = overrides::read(&dirs.state()).expect("read");
    assert_eq!(after.servers, before.servers);
}

#[test]
fn a_drain_with_no_active_connection_left_becomes_disabled() {
    let dirs = Dirs::new("finish");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    server(
        &dirs,
        &mut kernel,
        "web/web1",
        Some(Hold::Drain { deadline: None }),
    )
    .expect("drains");
    let store = dirs.store();
    let ipvs = kernel.ipvs.as_mut().expect("IPVS");
    let observed = block_on(ipvs.observe()).expect("observe");
    let finished = block_on(operate::finish_drains(&store, ipvs, &observed)).expect("finishes");
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].hold, Hold::Disable);
    assert_eq!(finished[0].note.as_deref(), Some("kernel upgrade"));
    assert_eq!(weights(&mut kernel), [(2, 2)]);
}

#[test]
fn an_overrides_file_that_cannot_be_read_is_an_error_not_none() {
    let dirs = Dirs::new("unreadable");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    let path = overrides::path(&dirs.state());
    std::fs::write(&path, "version = \"x\"\n").expect("write");
    let error = server(&dirs, &mut kernel, "web/web1", Some(Hold::Disable)).expect_err("malformed");
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", path.display())),
        "{error}"
    );
    std::fs::remove_file(&path).expect("remove");
    std::os::unix::fs::symlink("/etc/passwd", &path).expect("symlink");
    let error = server(&dirs, &mut kernel, "web/web1", Some(Hold::Disable)).expect_err("a link");
    assert!(error.to_string().contains("a symbolic link"), "{error}");
    assert_eq!(weights(&mut kernel), [(1, 3), (2, 2)]);
}

/// A rollback restores the configuration, not the overrides: a server an
/// operator disabled stays out when an unconfirmed apply is rolled back.
#[test]
fn a_rollback_restores_the_configuration_and_keeps_the_overrides() {
    use lbconsole::health::publish::HealthSource;
    use lbconsole::store::archive::ArchiveFiles;
    use lbconsole::store::{ConfigFiles, PendingApply};

    let dirs = Dirs::new("rollback");
    let mut kernel = kernel();
    apply(&dirs, &mut kernel, false);
    let before = ConfigFiles::read_running(&dirs.state())
        .expect("running")
        .expect("applied");
    server(&dirs, &mut kernel, "web/web2", Some(Hold::Disable)).expect("disables");
    std::fs::write(
        dirs.config().join("lvs.conf"),
        LVS.replace("weight 3", "weight 5"),
    )
    .expect("lvs.conf");
    apply(&dirs, &mut kernel, false);
    assert_eq!(weights(&mut kernel), [(1, 5)]);
    // The apply was unconfirmed and its guard is gone: the deadline passed.
    let store = dirs.store();
    let pending = PendingApply {
        id: "test".into(),
        user: "alice".into(),
        applied_at: "2026-11-30T10:00:00Z".into(),
        timeout_seconds: 60,
        deadline_ms: 0,
        version: None,
        rollback_error: None,
        previous: Some(ArchiveFiles::from_files(&before)),
        applied: ArchiveFiles::from_files(
            &ConfigFiles::read_running(&dirs.state())
                .expect("running")
                .expect("applied"),
        ),
    };
    pending
        .create(&store.lock().expect("lock"), &dirs.state())
        .expect("pending");
    let waiting = block_on(lbconsole::confirm::roll_back_abandoned(
        &store,
        &mut kernel,
        &HealthSource::Known(Vec::new()),
    ))
    .expect("rolls back");
    assert!(waiting.is_none(), "rolled back");
    assert_eq!(
        weights(&mut kernel),
        [(1, 3)],
        "lvs.conf as before, web2 still out"
    );
    let kept = overrides::read(&dirs.state()).expect("read");
    assert_eq!(kept.servers.len(), 1);
    assert_eq!(kept.servers[0].hold, Hold::Disable);
}
