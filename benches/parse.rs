//! Times `config::check` on a large generated configuration.
//!
//! `cargo bench --bench parse`. Plain std timing: a few warm-up runs, then the
//! minimum, median and maximum of the measured ones.

mod generate;

use std::hint::black_box;
use std::time::{Duration, Instant};

use lbconsole::config::{self, Severity, Sources};

const WARM_UP_RUNS: usize = 3;
const MEASURED_RUNS: usize = 20;
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

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
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
}
