//! The IPVS benchmark (not a test: it asserts the table, never the time). It runs
//! only when asked: `tests/lab/run bench:: --nocapture`.
//!
//! In one VM run, on the same table of 1,000 services × 50 real servers:
//! `ipvsadm -R` from scratch, one `ipvsadm -Sn` dump, `lbconsole apply` from
//! scratch, and `lbconsole apply` after one weight changed (observe, plan, apply).

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Lab, Run};

const SERVICES: usize = 1_000;
const SERVERS: usize = 50;

/// The same table as `lvs.conf` and as `ipvsadm -R` input.
fn table(changed_weight: u16) -> (String, String) {
    let mut lvs = String::new();
    let mut ipvsadm = String::new();
    for s in 0..SERVICES {
        let vip = format!("10.{}.{}.1:80", 100 + s / 250, s % 250);
        let _ = writeln!(lvs, "director d{s} {vip} TCP\n    balance roundrobin");
        let _ = writeln!(ipvsadm, "-A -t {vip} -s wrr");
        for r in 0..SERVERS {
            let weight = if s == 0 && r == 0 {
                changed_weight
            } else {
                1 + (r % 5) as u16
            };
            let server = format!("10.{}.{}.{}:8080", 200 + s / 250, s % 250, 10 + r);
            let _ = writeln!(lvs, "    server r{r} {server} weight {weight}");
            let _ = writeln!(ipvsadm, "-a -t {vip} -r {server} -m -w {weight}");
        }
    }
    (lvs, ipvsadm)
}

/// Runs the release build of lbconsole that `tests/lab/run bench::` built.
fn lbconsole(lab: &Lab, args: &[&str]) -> Run {
    let binary = std::env::var("LBCONSOLE_BENCH_BINARY").expect(
        "LBCONSOLE_BENCH_BINARY: run the benchmark with `tests/lab/run bench:: --nocapture`",
    );
    Run::of(
        Command::new(binary)
            .args(args)
            .arg("--config-dir")
            .arg(lab.config_dir())
            .arg("--state-dir")
            .arg(lab.state_dir()),
    )
}

fn timed<T>(what: &str, work: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let result = work();
    let elapsed = start.elapsed();
    println!("bench: {what}: {:.2} s", elapsed.as_secs_f64());
    (result, elapsed)
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run bench:: --nocapture)"]
fn ipvs_apply_against_ipvsadm() {
    let lab = Lab::new("bench-ipvs");
    let (lvs, rules) = table(1);
    let rules_file = lab.state_dir().join("ipvsadm.rules");
    std::fs::write(&rules_file, &rules).expect("rules");
    let entries = SERVICES * (SERVERS + 1);

    let (_, restore) = timed("ipvsadm -R, from scratch", || {
        lab.sh(&format!("ipvsadm -R < {}", rules_file.display()))
    });
    let (dump, dump_time) = timed("ipvsadm -Sn, one dump", || lab.sh("ipvsadm -Sn"));
    assert_eq!(dump.lines().count(), entries);
    lab.sh("ipvsadm -C");

    lab.write_config("", "", &lvs);
    let (run, scratch) = timed("lbconsole apply, from scratch", || {
        lbconsole(&lab, &["apply"])
    });
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(
        lab.sh("ipvsadm -Sn"),
        dump,
        "lbconsole built another table than ipvsadm -R"
    );

    let (lvs, _) = table(9);
    lab.write_config("", "", &lvs);
    let (run, one_weight) = timed("lbconsole apply, one weight changed", || {
        lbconsole(&lab, &["apply"])
    });
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "set real server 10.200.0.10:8080 of tcp 10.100.0.1:80: masq weight 1 -> masq weight 9\napplied 1 change\n"
    );
    let (run, unchanged) = timed("lbconsole apply, nothing changed", || {
        lbconsole(&lab, &["apply"])
    });
    assert_eq!(run.stdout, "no changes\n");

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("bench: {SERVICES} services x {SERVERS} real servers ({entries} entries)");
    println!(
        "bench: from scratch, lbconsole / ipvsadm -R = {:.2} (target <= 0.5)",
        ratio(scratch, restore)
    );
    println!(
        "bench: one weight, lbconsole / ipvsadm -Sn = {:.2} (target <= 1.0); unchanged apply {:.2} s",
        ratio(one_weight, dump_time),
        unchanged.as_secs_f64()
    );
}
