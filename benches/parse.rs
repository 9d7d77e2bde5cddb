//! Times `config::check` on a large generated configuration.
//!
//! `cargo bench --bench parse`. Plain std timing: a few warm-up runs, then the
//! minimum, median and maximum of the measured ones.
//!
//! The same run times the peer tool, keepalived, validating the LVS part rendered
//! as `keepalived.conf`, against `config::check` on `lvs.conf` alone.

mod generate;
mod keepalived;

use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use lbconsole::config::{self, Severity, Sources};

const WARM_UP_RUNS: usize = 3;
const MEASURED_RUNS: usize = 20;
/// keepalived runs: one process each, so fewer.
const KEEPALIVED_RUNS: usize = 3;
/// Errors shown when the generated configuration is not clean.
const ERRORS_SHOWN: usize = 10;

fn main() {
    let generated = generate::generate(&generate::Shape::LARGE);
    let sources = Sources {
        network: generated.network.as_bytes(),
        flows: generated.flows.as_bytes(),
        lvs: generated.lvs.as_bytes(),
    };

    let checked = config::check(sources);
    let errors: Vec<_> = checked
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .collect();
    if !errors.is_empty() {
        eprintln!(
            "the generated configuration has {} errors; the first ones:",
            errors.len()
        );
        for error in errors.iter().take(ERRORS_SHOWN) {
            eprintln!("  {error}");
        }
        panic!("generator bug: the benchmark configuration must be free of errors");
    }

    let times = time_check(sources);
    println!(
        "config::check: {} lines ({} network, {} flows, {} lvs; {} bytes)",
        generated.lines(),
        generated.network.lines().count(),
        generated.flows.lines().count(),
        generated.lvs.lines().count(),
        sources.network.len() + sources.flows.len() + sources.lvs.len(),
    );
    println!(
        "  {MEASURED_RUNS} runs after {WARM_UP_RUNS} warm-up: min {:.2} ms, median {:.2} ms, max {:.2} ms",
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
    );
    println!(
        "  diagnostics: {} ({} errors, {} warnings)",
        checked.diagnostics.len(),
        checked.count(Severity::Error),
        checked.count(Severity::Warning),
    );

    compare_with_keepalived(&generated, &checked);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `config::check` on `sources`: warm-up runs, then the measured ones, sorted.
fn time_check(sources: Sources<'_>) -> Vec<Duration> {
    for _ in 0..WARM_UP_RUNS {
        black_box(config::check(black_box(sources)));
    }
    let mut times: Vec<Duration> = (0..MEASURED_RUNS)
        .map(|_| {
            let start = Instant::now();
            let checked = config::check(black_box(sources));
            let elapsed = start.elapsed();
            drop(black_box(checked));
            elapsed
        })
        .collect();
    times.sort();
    times
}

/// Times `keepalived --config-test` on the LVS part and `config::check` on
/// `lvs.conf` alone, and prints the ratio; one line instead when keepalived is
/// missing or does not accept the rendered file.
fn compare_with_keepalived(generated: &generate::Generated, checked: &config::Checked) {
    let skip = |reason: &str| println!("keepalived comparison skipped: {reason}");
    let Some(program) = keepalived::find() else {
        skip(&format!(
            "`{}` is not installed (apt-get install -y keepalived)",
            keepalived::PROGRAM
        ));
        return;
    };
    let rendered = keepalived::render(&checked.config.lvs);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("keepalived-bench.conf");
    let empty = dir.join("keepalived-empty.conf");
    for (path, text) in [(&file, rendered.text.as_str()), (&empty, "")] {
        if let Err(e) = fs::write(path, text) {
            skip(&format!("cannot write {}: {e}", path.display()));
            return;
        }
    }
    let (theirs, start_up) = match (
        median_config_test(&program, &file),
        median_config_test(&program, &empty),
    ) {
        (Ok(theirs), Ok(start_up)) => (theirs, start_up),
        (Err(reason), _) | (_, Err(reason)) => {
            skip(&reason);
            return;
        }
    };

    let lvs_only = Sources {
        lvs: generated.lvs.as_bytes(),
        ..Sources::default()
    };
    let ours = time_check(lvs_only);
    let ours = ours[ours.len() / 2];
    let lvs_checked = config::check(lvs_only);

    let directors = &checked.config.lvs.directors;
    let servers: usize = directors.iter().map(|d| d.servers.len()).sum();
    println!(
        "keepalived: `{} {}`",
        program.display(),
        keepalived::config_test_args(&file).join(" "),
    );
    println!(
        "  rendered: {} lines, {} bytes; {} virtual_server, {} real_server, {} sorry_server; \
         accepted without a message",
        rendered.text.lines().count(),
        rendered.text.len(),
        thousands(rendered.virtual_servers),
        thousands(rendered.real_servers),
        thousands(rendered.sorry_servers),
    );
    println!(
        "  keepalived start-up alone (empty file): median {:.2} ms ({KEEPALIVED_RUNS} runs)",
        ms(start_up),
    );
    println!(
        "  lbconsole check of lvs.conf alone: {} lines; {} diagnostics ({} errors, {} warnings: \
         no network.conf or flows.conf to refer to)",
        generated.lvs.lines().count(),
        lvs_checked.diagnostics.len(),
        lvs_checked.count(Severity::Error),
        lvs_checked.count(Severity::Warning),
    );
    println!(
        "keepalived --config-test on the same {} virtual servers x {} real servers: \
         median {:.2} ms ({KEEPALIVED_RUNS} runs); lbconsole check of lvs.conf alone: \
         median {:.2} ms ({MEASURED_RUNS} runs); lbconsole is {:.1} x faster",
        thousands(directors.len()),
        servers / directors.len().max(1),
        ms(theirs),
        ms(ours),
        theirs.as_secs_f64() / ours.as_secs_f64(),
    );
}

/// The median of [`KEEPALIVED_RUNS`] config tests of `file`, or why one failed.
fn median_config_test(program: &Path, file: &Path) -> Result<Duration, String> {
    let mut times = (0..KEEPALIVED_RUNS)
        .map(|_| keepalived::config_test(program, file))
        .collect::<Result<Vec<_>, _>>()?;
    times.sort();
    Ok(times[times.len() / 2])
}

/// `79500` as `79,500`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}
