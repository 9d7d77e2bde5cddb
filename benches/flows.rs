//! Renders and applies 10,000 flows, and compares with `nft -f` loading the
//! same ruleset as text, in the same run.
//!
//! `cargo bench --bench flows`, as root: the bench moves itself into a fresh
//! network namespace (`unshare(CLONE_NEWNET)`) so the host's own ruleset is
//! never touched, and needs `nft` (Debian package nftables).

mod generate;

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lbconsole::config;
use lbconsole::kernel::FirewallBackend;
use lbconsole::kernel::nft::NftBackend;
use lbconsole::plan::flows::{self, FirewallOp};

const RENDER_RUNS: usize = 10;
const APPLY_RUNS: usize = 5;

fn main() {
    let generated = generate::generate(&generate::Shape::LARGE);
    let checked = config::check(config::Sources {
        network: generated.network.as_bytes(),
        flows: generated.flows.as_bytes(),
        lvs: generated.lvs.as_bytes(),
    });
    assert!(!checked.has_errors(), "generator bug: errors in the config");
    let (flows_config, lvs) = (&checked.config.flows, &checked.config.lvs);
    println!(
        "flows: {} flows and outflows, {} rules (config of {} lines)",
        flows_config.flows.len(),
        flows_config
            .flows
            .iter()
            .map(|f| f.rules.len())
            .sum::<usize>(),
        generated.lines()
    );

    let render_times = median_of(RENDER_RUNS, || {
        black_box(flows::render(black_box(flows_config), black_box(lvs)));
    });
    println!("  render (pure): median {:.2} ms", ms(render_times));

    // SAFETY: called before this process starts any thread that touches the
    // network; the new namespace is this process's alone.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        println!(
            "  apply skipped: cannot enter a fresh network namespace ({}); run as root",
            std::io::Error::last_os_error()
        );
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let mut nft = NftBackend::new();
    let ruleset = flows::render(flows_config, lvs).expect("a ruleset");
    let chains = ruleset.rule_counts.len();
    let rules: usize = ruleset.rule_counts.values().sum();

    let ours = median_of(APPLY_RUNS, || {
        runtime.block_on(async {
            let ruleset = flows::render(flows_config, lvs).expect("a ruleset");
            nft.execute(&FirewallOp::Install(ruleset))
                .await
                .expect("nft takes the ruleset");
        });
    });
    let unchanged = median_of(APPLY_RUNS, || {
        runtime.block_on(async {
            let observed = nft.observe().await.expect("observe").expect("a table");
            let desired = flows::render(flows_config, lvs);
            assert!(flows::diff(Some(&observed), desired.as_ref()).is_none());
        });
    });

    let text = String::from_utf8(
        Command::new("nft")
            .args(["list", "table", "inet", flows::TABLE])
            .output()
            .expect("nft list")
            .stdout,
    )
    .expect("UTF-8");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("flows-bench.nft");
    fs::write(
        &script,
        format!(
            "add table inet {0}\ndelete table inet {0}\n{text}",
            flows::TABLE
        ),
    )
    .expect("write the nft script");
    let json = dir.join("flows-bench.json");
    fs::write(&json, serde_json::to_string(&ruleset.batch).expect("JSON")).expect("write JSON");
    let nft_json = median_of(APPLY_RUNS, || {
        let status = Command::new("nft")
            .args(["-j", "-f"])
            .arg(&json)
            .status()
            .expect("nft -j -f");
        assert!(status.success(), "nft -j -f refused the batch");
    });
    let theirs = median_of(APPLY_RUNS, || {
        let status = Command::new("nft")
            .arg("-f")
            .arg(&script)
            .status()
            .expect("nft -f");
        assert!(status.success(), "nft -f refused its own listing");
    });

    println!(
        "  table inet {}: {chains} chains, {rules} rules, {} lines as text",
        flows::TABLE,
        text.lines().count()
    );
    println!(
        "  lbconsole render + apply (nft -j -f, one transaction): median {:.1} ms",
        ms(ours)
    );
    println!(
        "  lbconsole re-apply check, nothing changed (nft -j list chains + render): median {:.1} ms",
        ms(unchanged)
    );
    println!(
        "  nft -j -f, the same batch from a file (nft's JSON parser alone): median {:.1} ms",
        ms(nft_json)
    );
    println!(
        "  nft -f, the same ruleset as text: median {:.1} ms",
        ms(theirs)
    );
    println!(
        "  ratio: lbconsole / nft -f = {:.2}",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median time of `runs` calls of `f`, after one warm-up call.
fn median_of(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}
