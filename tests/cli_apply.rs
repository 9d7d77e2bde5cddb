//! `lbconsole apply` as the CLI runs it, against the in-memory kernels: what it
//! prints, and what it refuses before touching anything.

use std::path::Path;

use lbconsole::apply::{ApplyError, TearDown};
use lbconsole::cli::{self, CommandError};
use lbconsole::confirm::{ApplyRequest, ConfirmError};
use lbconsole::events::{self, EventKind};
use lbconsole::kernel::fake::{FakeFirewall, FakeIpvs, FakeKernel};
use lbconsole::kernel::{Cause, Kernel, KernelError};

type Fake = Kernel<FakeKernel, FakeIpvs, FakeFirewall>;

/// The sandbox's interfaces (four veths, up, unaddressed), IPVS and nft.
fn sandbox() -> Fake {
    Kernel {
        network: FakeKernel::with_veths(&["eth0", "eth1", "eth2", "eth3"]),
        ipvs: Ok(FakeIpvs::default()),
        firewall: FakeFirewall::default(),
    }
}

/// The sandbox on a kernel without the `ip_vs` module.
fn sandbox_without_ipvs() -> Fake {
    Kernel {
        ipvs: Err(KernelError::Unavailable("IPVS is not available".to_owned())),
        ..sandbox()
    }
}

/// A directory of its own for each test, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("lbconsole-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(
    config_dir: &Path,
    state_dir: &Path,
    kernel: &mut Fake,
) -> (Result<(), CommandError>, String) {
    run_request(config_dir, state_dir, kernel, &ApplyRequest::default())
}

fn run_request(
    config_dir: &Path,
    state_dir: &Path,
    kernel: &mut Fake,
    request: &ApplyRequest,
) -> (Result<(), CommandError>, String) {
    let mut out = Vec::new();
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(cli::apply(
            config_dir,
            state_dir,
            request,
            kernel,
            &mut out,
            &mut Vec::new(),
        ));
    (result, String::from_utf8(out).expect("UTF-8"))
}

#[test]
fn directors_without_ipvs_are_refused_before_anything_changes() {
    let state = TempDir::new("refused-state");
    let mut kernel = sandbox_without_ipvs();
    let (result, out) = run(Path::new("examples"), &state.0, &mut kernel);
    let error = result.expect_err("no IPVS");
    assert_eq!(
        error.to_string(),
        "lvs.conf has 4 directors, but IPVS is not available; nothing was applied"
    );
    assert_eq!(kernel.network.executed, 0);
    assert_eq!(kernel.firewall.executed, 0);
    assert_eq!(out, "");
}

/// The console refused this long before `lbconsole apply` did: both now ask the
/// same preflight, so both refuse with the same sentence, a dry run included.
#[test]
fn bonds_without_the_bonding_module_are_refused_as_the_console_refuses_them() {
    let state = TempDir::new("no-bonding-state");
    let mut kernel = sandbox();
    kernel.network.missing_modules = vec!["bonding"];
    let console_sentence = "network.conf has bonds, but this kernel has no bonding module loaded \
         (modprobe bonding); nothing was applied";
    for dry_run in [true, false] {
        let request = ApplyRequest {
            dry_run,
            ..ApplyRequest::default()
        };
        let (result, out) = run_request(Path::new("examples"), &state.0, &mut kernel, &request);
        let error = result.expect_err("no bonding module");
        assert_eq!(error.to_string(), console_sentence, "dry run: {dry_run}");
        assert_eq!(out, "", "dry run: {dry_run}");
    }
    assert_eq!(kernel.network.executed, 0);
    assert_eq!(kernel.firewall.executed, 0);
    assert!(!state.0.join("running").exists());
}

#[test]
fn a_network_only_config_applies_without_ipvs_and_then_has_no_changes() {
    let (config, state) = (TempDir::new("net-config"), TempDir::new("net-state"));
    std::fs::write(
        config.0.join("network.conf"),
        "service network eth1\n    ip address 192.168.161.10/24\n    ip route default 192.168.161.1 table 200\n",
    )
    .expect("network.conf");
    let mut kernel = sandbox_without_ipvs();
    let (result, out) = run(&config.0, &state.0, &mut kernel);
    result.expect("applies");
    assert_eq!(
        out,
        "add address 192.168.161.10/24 to eth1\nadd route default via 192.168.161.1 dev eth1 table 200\napplied 2 changes\n"
    );
    let (result, out) = run(&config.0, &state.0, &mut kernel);
    result.expect("applies");
    assert_eq!(out, "no changes\n");
}

#[test]
fn the_examples_apply_flows_rules_and_services_and_then_have_no_changes() {
    let state = TempDir::new("examples-state");
    let mut kernel = sandbox();
    let (result, out) = run(Path::new("examples"), &state.0, &mut kernel);
    result.expect("applies");
    assert!(
        out.contains("add rule fwmark 0x200c8 lookup 200 priority 1000\n"),
        "{out}"
    );
    assert!(
        out.contains("install nftables table inet lbconsole (12 chains, 38 rules)\n"),
        "{out}"
    );
    let running = std::fs::read(state.0.join("running/flows.conf")).expect("running flows");
    assert_eq!(
        running,
        std::fs::read("examples/flows.conf").expect("flows.conf")
    );
    let (result, out) = run(Path::new("examples"), &state.0, &mut kernel);
    result.expect("applies");
    assert_eq!(out, "no changes\n");
    let log = events::read(&state.0, 10).expect("the event log");
    let texts: Vec<&str> = log.events.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(
        log.events.len(),
        1,
        "an apply that changes nothing is no event: {texts:?}"
    );
    assert_eq!(log.events[0].kind, EventKind::Apply);
    assert!(log.events[0].by.is_some());
    assert!(
        texts[0].starts_with("applied version 1: ") && texts[0].ends_with(" changes"),
        "{texts:?}"
    );
}

#[test]
fn a_ruleset_nft_refuses_undoes_the_services_and_the_network() {
    let state = TempDir::new("nft-refused-state");
    let mut kernel = sandbox();
    kernel.firewall.fail_at = Some(0);
    let before = (
        kernel.network.state.clone(),
        kernel.ipvs.as_ref().map(|i| i.state.clone()).ok(),
    );
    let (result, _) = run(Path::new("examples"), &state.0, &mut kernel);
    let error = result.expect_err("nft refuses");
    assert!(
        error.to_string().starts_with(
            "install nftables table inet lbconsole (12 chains, 38 rules): injected failure; the "
        ),
        "{error}"
    );
    let after = (
        kernel.network.state.clone(),
        kernel.ipvs.as_ref().map(|i| i.state.clone()).ok(),
    );
    assert_eq!(before, after);
    assert_eq!(kernel.firewall.table, None);
    assert!(!state.0.join("running/flows.conf").exists());
    let log = events::read(&state.0, 10).expect("the event log");
    assert_eq!(log.events.len(), 1);
    assert!(
        log.events[0]
            .text
            .starts_with("applying version 1 failed and was undone: install nftables table"),
        "{}",
        log.events[0].text
    );
}

#[test]
fn skipped_flows_leave_no_table_and_removing_the_flows_removes_it() {
    let (config, state) = (TempDir::new("skip-config"), TempDir::new("skip-state"));
    let flows = config.0.join("flows.conf");
    std::fs::write(&flows, "flow off skip\n    match proto tcp\n").expect("flows.conf");
    let mut kernel = sandbox();
    let (result, out) = run(&config.0, &state.0, &mut kernel);
    result.expect("applies");
    assert_eq!(out, "no changes\n");
    std::fs::write(&flows, "flow web permit\n    match proto tcp dstport 80\n")
        .expect("flows.conf");
    let (result, _) = run(&config.0, &state.0, &mut kernel);
    result.expect("applies");
    assert!(kernel.firewall.table.is_some());
    std::fs::write(&flows, "").expect("flows.conf");
    // Nothing would be left running: that takes `--yes`.
    let (result, _) = run(&config.0, &state.0, &mut kernel);
    assert!(
        matches!(
            result,
            Err(CommandError::Confirm(ConfirmError::Apply(
                ApplyError::TearsDown { changes: 1 }
            )))
        ),
        "{result:?}"
    );
    assert!(kernel.firewall.table.is_some());
    let yes = ApplyRequest {
        tear_down: TearDown::Allow,
        ..ApplyRequest::default()
    };
    let (result, out) = run_request(&config.0, &state.0, &mut kernel, &yes);
    result.expect("applies");
    assert_eq!(
        out,
        "remove nftables table inet lbconsole\napplied 1 change\n"
    );
    assert_eq!(kernel.firewall.table, None);
}

/// A process without CAP_NET_ADMIN is refused before the first change, and a
/// kernel that says EPERM halfway is recognised as the same cause.
#[test]
fn an_unprivileged_apply_is_refused_before_anything_changes() {
    let state = TempDir::new("unprivileged-state");
    let mut kernel = sandbox();
    kernel.network.unprivileged = true;
    let (result, out) = run(Path::new("examples"), &state.0, &mut kernel);
    let error = result.expect_err("unprivileged");
    assert_eq!(
        error.to_string(),
        "changing the kernel needs CAP_NET_ADMIN, which this process lacks (run lbconsole as root); nothing was applied"
    );
    let CommandError::Confirm(ConfirmError::Apply(error)) = error else {
        panic!("not an apply error: {error:?}");
    };
    assert!(error.is_permission_denied());
    assert_eq!(kernel.network.executed, 0);
    assert!(out.ends_with("\n") && !out.contains("applied"), "{out}");

    let refused = ApplyError::RolledBack {
        error: KernelError::Operation {
            op: "add address 192.0.2.1/24 to eth1".to_owned(),
            cause: Cause::Kernel {
                errno: 1,
                extack: None,
            },
        },
        undone: 0,
    };
    assert!(refused.is_permission_denied() && !refused.is_unavailable());
}

/// With a confirm timeout, a configuration the kernel cannot run is refused
/// before the confirm guard starts: no guard process, no pending apply.
#[test]
fn a_refused_guarded_apply_starts_no_guard() {
    let state = TempDir::new("refused-guarded-state");
    let mut kernel = sandbox();
    kernel.network.missing_modules = vec!["bonding"];
    let request = ApplyRequest {
        confirm_timeout: Some(60),
        ..ApplyRequest::default()
    };
    let (result, _) = run_request(Path::new("examples"), &state.0, &mut kernel, &request);
    assert_eq!(
        result.expect_err("no bonding module").to_string(),
        "network.conf has bonds, but this kernel has no bonding module loaded \
         (modprobe bonding); nothing was applied"
    );
    assert!(!state.0.join("pending.toml").exists());
    assert!(!state.0.join("guard.log").exists(), "a guard was started");
}
