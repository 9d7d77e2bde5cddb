//! Renders and applies 10,000 flows, and compares with `nft -f` loading the
//! same ruleset as text, and with the JSON carrier lbconsole used before, in
//! the same run.
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
const APPLY_RUNS: usize = 9;

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

    runtime
        .block_on(nft.execute(&FirewallOp::Install(ruleset.clone())))
        .expect("nft takes the ruleset");
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
    // The JSON carrier, as lbconsole sent batches before: loaded that way,
    // the table must list exactly as after the text lbconsole sends now.
    let status = Command::new("nft")
        .args(["-j", "-f"])
        .arg(&json)
        .status()
        .expect("nft -j -f");
    assert!(status.success(), "nft -j -f refused the batch");
    let listed = Command::new("nft")
        .args(["list", "table", "inet", flows::TABLE])
        .output()
        .expect("nft list")
        .stdout;
    assert!(
        listed == text.as_bytes(),
        "the JSON batch lists differently from the printed one"
    );
    let empty = dir.join("flows-bench-empty.nft");
    fs::write(&empty, "").expect("write an empty script");
    let print_times = median_of(RENDER_RUNS, || {
        black_box(lbconsole::plan::nft_text::print(black_box(&ruleset.batch)).expect("printable"));
    });

    // nft's times vary by a fifth from one load to the next on this
    // machine, so each round loads all four ways back to back and the ratios
    // are taken within a round.
    let mut rounds = Vec::new();
    for round in 0..=APPLY_RUNS {
        let ours = timed(|| {
            runtime.block_on(async {
                let ruleset = flows::render(flows_config, lvs).expect("a ruleset");
                nft.execute(&FirewallOp::Install(ruleset))
                    .await
                    .expect("nft takes the ruleset");
            });
        });
        let json_carrier = timed(|| {
            let ruleset = flows::render(flows_config, lvs).expect("a ruleset");
            runtime
                .block_on(nftables::helper::apply_ruleset_async(&ruleset.batch))
                .expect("nft -j -f takes the batch");
        });
        let nft_json = timed(|| run_nft(&["-j", "-f"], &json));
        let theirs = timed(|| run_nft(&["-f"], &script));
        let start_up = timed(|| run_nft(&["-f"], &empty));
        // The first round warms the caches up.
        if round > 0 {
            rounds.push([ours, json_carrier, nft_json, theirs, start_up]);
        }
    }
    let column = |index: usize| median(rounds.iter().map(|round| round[index].as_secs_f64()));
    let ratio = |index: usize| {
        median(
            rounds
                .iter()
                .map(|round| round[index].as_secs_f64() / round[3].as_secs_f64()),
        )
    };
    let ours = column(0);

    println!(
        "  table inet {}: {chains} chains, {rules} rules, {} lines as text",
        flows::TABLE,
        text.lines().count()
    );
    println!(
        "  print to nft text (pure): median {:.1} ms",
        ms(print_times)
    );
    println!(
        "  {} rounds; median time, and median of the ratios to nft -f within a round:",
        rounds.len()
    );
    for (index, what) in [
        "lbconsole: render + print + nft -f - (one transaction)",
        "JSON carrier (before): render + nft -j -f - (one transaction)",
        "nft -j -f, the same batch from a file (nft's JSON parser alone)",
        "nft -f, the same ruleset as text (nft's listing)",
        "nft -f of an empty file (start-up, all libnftables in process could save)",
    ]
    .iter()
    .enumerate()
    {
        println!(
            "    {what}: {:.1} ms = {:.3} x nft -f",
            column(index) * 1e3,
            ratio(index)
        );
    }
    println!(
        "  lbconsole re-apply check, nothing changed (ruleset generation + record + render + compare): median {:.1} ms = {:.3} x the full apply",
        ms(unchanged),
        unchanged.as_secs_f64() / ours
    );
    println!(
        "  lbconsole change of one flow (observe + render + diff + update): median {:.1} ms = {:.3} x the full apply",
        ms(one_flow),
        one_flow.as_secs_f64() / ours
    );
}

fn run_nft(args: &[&str], file: &Path) {
    let status = Command::new("nft")
        .args(args)
        .arg(file)
        .status()
        .expect("nft");
    assert!(status.success(), "nft {args:?} {} refused", file.display());
}

fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
