//! `lbconsole apply` as the CLI runs it, against the in-memory kernels: what it
//! prints, and what it refuses before touching anything.

use std::path::Path;

use lbconsole::cli::{self, CommandError};
use lbconsole::confirm::ApplyRequest;
use lbconsole::kernel::KernelError;
use lbconsole::kernel::fake::{FakeIpvs, FakeKernel};

/// The sandbox's interfaces: four veths, up, unaddressed.
fn sandbox() -> FakeKernel {
    FakeKernel::with_veths(&["eth0", "eth1", "eth2", "eth3"])
}

fn no_ipvs() -> Result<FakeIpvs, KernelError> {
    Err(KernelError::Unavailable("IPVS is not available".to_owned()))
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
    kernel: &mut FakeKernel,
    ipvs: Result<FakeIpvs, KernelError>,
) -> (Result<(), CommandError>, String) {
    let mut out = Vec::new();
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
        .block_on(cli::apply(
            config_dir,
            state_dir,
            &ApplyRequest::default(),
            kernel,
            ipvs,
            &mut out,
            &mut Vec::new(),
        ));
    (result, String::from_utf8(out).expect("UTF-8"))
}

#[test]
fn directors_without_ipvs_are_refused_before_anything_changes() {
    let state = TempDir::new("refused-state");
    let mut kernel = sandbox();
    let (result, out) = run(Path::new("examples"), &state.0, &mut kernel, no_ipvs());
    let error = result.expect_err("no IPVS");
    assert_eq!(
        error.to_string(),
        "lvs.conf has 4 directors, but IPVS is not available; nothing was applied"
    );
    assert_eq!(kernel.executed, 0);
    assert_eq!(out, "");
}

#[test]
fn a_network_only_config_applies_without_ipvs_and_then_has_no_changes() {
    let (config, state) = (TempDir::new("net-config"), TempDir::new("net-state"));
    std::fs::write(
        config.0.join("network.conf"),
        "service network eth1\n    ip address 192.168.161.10/24\n    ip route default 192.168.161.1 table 200\n",
    )
    .expect("network.conf");
    let mut kernel = sandbox();
    let (result, out) = run(&config.0, &state.0, &mut kernel, no_ipvs());
    result.expect("applies");
    assert_eq!(
        out,
        "add address 192.168.161.10/24 to eth1\nadd route default via 192.168.161.1 dev eth1 table 200\napplied 2 changes\n"
    );
    let (result, out) = run(&config.0, &state.0, &mut kernel, no_ipvs());
    result.expect("applies");
    assert_eq!(out, "no changes\n");
}
