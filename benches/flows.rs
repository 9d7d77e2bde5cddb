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

use lbconsole::apply::plan_firewall;
use lbconsole::config;
use lbconsole::config::model::flows::RuleAction;
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

    // One flow in the middle turns its first rule from `match` to `ignore`
    // and back, on every run: each apply changes one flow among 10,000.
    let mut edited = flows_config.clone();
    let middle = edited.flows.len() / 2;
    let rule = &mut edited.flows[middle].rules[0];
    rule.action = match rule.action {
        RuleAction::Match => RuleAction::Ignore,
        RuleAction::Ignore => RuleAction::Match,
    };
    let versions = [flows_config.clone(), edited];
    let mut turn = 0;
    let mut next_version = || {
        turn += 1;
        &versions[turn % 2]
    };
    // Through `apply`'s planning: observe, render, diff, one transaction.
    let one_flow = median_of(APPLY_RUNS, || {
        let version = next_version();
        runtime.block_on(async {
            let op = plan_firewall(&mut nft, version, lvs)
                .await
                .expect("a plan")
                .expect("a change");
            assert!(matches!(op, FirewallOp::Update(_)), "not an update: {op}");
            nft.execute(&op).await.expect("nft takes the update");
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
    // Candidate carrier: our own printer to nft's text syntax. Loaded by
    // `nft -f`, the table must list exactly as the JSON batch's does.
    let printed_ruleset = |ruleset: &flows::Ruleset| {
        lbconsole::plan::nft_text::print(&ruleset.batch).expect("printable")
    };
    let printed = dir.join("flows-bench-printed.nft");
    fs::write(&printed, printed_ruleset(&ruleset)).expect("write the printed script");
    let status = Command::new("nft")
        .arg("-f")
        .arg(&printed)
        .status()
        .expect("nft -f");
    assert!(status.success(), "nft -f refused the printed ruleset");
    let listed = Command::new("nft")
        .args(["list", "table", "inet", flows::TABLE])
        .output()
        .expect("nft list")
        .stdout;
    assert!(
        listed == text.as_bytes(),
        "the printed ruleset lists differently from the JSON one"
    );
    let print_times = median_of(RENDER_RUNS, || {
        black_box(printed_ruleset(black_box(&ruleset)));
    });
    let text_carrier = median_of(APPLY_RUNS, || {
        let ruleset = flows::render(flows_config, lvs).expect("a ruleset");
        let mut child = Command::new("nft")
            .args(["-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft -f -");
        use std::io::Write as _;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(printed_ruleset(&ruleset).as_bytes())
            .expect("write to nft");
        assert!(child.wait().expect("nft").success(), "nft -f - refused");
    });
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
        "  lbconsole re-apply check, nothing changed (ruleset generation + record + render + compare): median {:.1} ms",
        ms(unchanged)
    );
    println!(
        "  lbconsole change of one flow (observe + render + diff + update): median {:.1} ms = {:.3} x the full apply",
        ms(one_flow),
        one_flow.as_secs_f64() / ours.as_secs_f64()
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
    println!(
        "  print to nft text (pure): median {:.1} ms",
        ms(print_times)
    );
    println!(
        "  candidate: render + print + nft -f - (text carrier): median {:.1} ms, ratio to nft -f = {:.2}",
        ms(text_carrier),
        text_carrier.as_secs_f64() / theirs.as_secs_f64()
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
