//! The IPVS benchmark (not a test: it asserts the table, never the time). It runs
//! only when asked: `tests/lab/run bench:: --nocapture`.
//!
//! In one VM run, on the same table of 1,000 services × 50 real servers:
//! `ipvsadm -R` from scratch, one `ipvsadm -Sn` dump, `lbconsole apply` from
//! scratch, and `lbconsole apply` after one weight changed (observe the one
//! service it touches, plan, apply), started over 9p and from a copy on the
//! VM's own file system.
//!
//! The health checks: 10,000 TCP and 2,000 HTTP backends on one address, checked
//! by the release `lbconsole daemon`, then by Debian's keepalived with the same
//! servers and timings; the CPU time and resident memory of each over the same
//! window. It asserts that every server stays up, never the time.

use std::fmt::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Lab, Run, resident_kib, wait_until};

mod scrapes;

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

/// The release build of lbconsole that `tests/lab/run bench::` built.
fn bench_binary() -> String {
    std::env::var("LBCONSOLE_BENCH_BINARY").expect(
        "LBCONSOLE_BENCH_BINARY: run the benchmark with `tests/lab/run bench:: --nocapture`",
    )
}

/// Runs the release build of lbconsole that `tests/lab/run bench::` built.
fn lbconsole(lab: &Lab, args: &[&str]) -> Run {
    lbconsole_at(bench_binary(), lab, args)
}

fn lbconsole_at(binary: impl AsRef<std::ffi::OsStr>, lab: &Lab, args: &[&str]) -> Run {
    Run::of(
        Command::new(binary)
            .args(args)
            .arg("--config-dir")
            .arg(lab.config_dir())
            .arg("--state-dir")
            .arg(lab.state_dir()),
    )
}

/// Starts the release `lbconsole daemon` on the lab's directories; its log is
/// the path returned.
fn start_release_daemon(lab: &Lab) -> (Child, std::path::PathBuf) {
    crate::daemon::spawn_daemon(std::ffi::OsStr::new(&bench_binary()), lab, &[])
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
    let (run, unchanged) = timed(
        "lbconsole apply, nothing changed (reads the whole table)",
        || lbconsole(&lab, &["apply"]),
    );
    assert_eq!(run.stdout, "no changes\n");

    // The lab starts lbconsole from the host's files over 9p, whose pages this
    // guest reads again at each start: the same binary copied to the VM's own
    // file system starts as an installed one does.
    let copy = lab.state_dir().join("lbconsole");
    std::fs::copy(bench_binary(), &copy).expect("a copy of lbconsole");
    let installed = |args: &[&str]| lbconsole_at(&copy, &lab, args);
    let (copy_median, copy_p90) = one_weight_rounds(&lab, &installed);
    assert_eq!(
        lab.sh("ipvsadm -Sn"),
        dump.replace(
            "-r 10.200.0.10:8080 -m -w 1",
            &format!("-r 10.200.0.10:8080 -m -w {}", weight_after(ROUNDS))
        ),
        "lbconsole left another table"
    );
    profile_one_weight(&lab, &copy);
    // Where the time goes: starting, and checking the 51,000-line lvs.conf.
    rounds("lbconsole --version, the copy", || {
        assert!(Run::of(Command::new(&copy).arg("--version")).success());
    });
    rounds("lbconsole check, the copy", || {
        assert!(installed(&["check"]).success());
    });
    let mut dumps: Vec<Duration> = (0..3)
        .map(|_| timed("ipvsadm -Sn, one dump", || lab.sh("ipvsadm -Sn")).1)
        .collect();
    dumps.push(dump_time);
    dumps.sort();
    let dump_median = dumps[dumps.len() / 2];

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("bench: {SERVICES} services x {SERVERS} real servers ({entries} entries)");
    println!(
        "bench: from scratch, lbconsole / ipvsadm -R = {:.2} (target <= 0.5)",
        ratio(scratch, restore)
    );
    println!(
        "bench: one weight, lbconsole over 9p / ipvsadm -Sn (median of 4: {:.2} s) = {:.2}; \
         lbconsole's copy / ipvsadm -Sn: median {:.3}, p90 {:.3} (target <= 0.1); \
         unchanged apply {:.2} s",
        dump_median.as_secs_f64(),
        ratio(one_weight, dump_median),
        ratio(copy_median, dump_median),
        ratio(copy_p90, dump_median),
        unchanged.as_secs_f64()
    );
}

/// Whether `perf` runs here; says so when it does not, so a profile that is
/// missing from the output is explained.
fn perf_available() -> bool {
    let available = Run::of(Command::new("perf").arg("--version")).success();
    if !available {
        println!("bench: no profile: perf is not installed (Debian package linux-perf)");
    }
    available
}

/// Where one more one-weight apply spends its time: `perf record` of the
/// copy, and the functions with the most samples in them and under them.
fn profile_one_weight(lab: &Lab, copy: &std::path::Path) {
    if !perf_available() {
        return;
    }
    let (from, to) = (weight_after(ROUNDS), weight_after(ROUNDS + 1));
    lab.write_config("", "", &table(to).0);
    let data = lab.state_dir().join("one-weight.perf");
    let run = Run::of(
        Command::new("perf")
            .args(["record", "-q", "-F", "2000", "-g", "-o"])
            .arg(&data)
            .arg("--")
            .arg(copy)
            .arg("apply")
            .arg("--config-dir")
            .arg(lab.config_dir())
            .arg("--state-dir")
            .arg(lab.state_dir()),
    );
    assert!(
        run.stdout
            .contains(&format!("masq weight {from} -> masq weight {to}")),
        "{run}"
    );
    let report = lab.sh(&format!(
        "perf report -q -i {} --children --sort sym -g none --percent-limit 4 --stdio 2>/dev/null | head -40",
        data.display()
    ));
    println!("bench: profile of one one-weight apply (with children, self):\n{report}");
    lab.write_config("", "", &table(from).0);
    assert!(lbconsole_at(copy, lab, &["apply"]).success());
}

/// The weight of d0/r0 after `round` rounds of [`one_weight_rounds`].
fn weight_after(round: usize) -> u16 {
    if round.is_multiple_of(2) { 9 } else { 1 }
}

/// `lbconsole apply` by `lbconsole` after one weight changed, `ROUNDS` times
/// (d0/r0's weight going 9, 1, 9, …, the file written before the clock starts);
/// prints and returns the median and p90.
fn one_weight_rounds(lab: &Lab, lbconsole: &dyn Fn(&[&str]) -> Run) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (1..=ROUNDS)
        .map(|round| {
            let (from, to) = (weight_after(round - 1), weight_after(round));
            lab.write_config("", "", &table(to).0);
            let start = Instant::now();
            let run = lbconsole(&["apply"]);
            let elapsed = start.elapsed();
            assert_eq!(
                run.stdout,
                format!(
                    "set real server 10.200.0.10:8080 of tcp 10.100.0.1:80: \
                     masq weight {from} -> masq weight {to}\napplied 1 change\n"
                ),
                "{}",
                run.stderr
            );
            elapsed
        })
        .collect();
    let (median, p90) = median_p90(&mut samples);
    println!(
        "bench: lbconsole apply, one weight changed, the copy: median {:.1} ms, p90 {:.1} ms ({ROUNDS} rounds)",
        millis(median),
        millis(p90)
    );
    (median, p90)
}

const TCP_SERVERS: u16 = 10_000;
const HTTP_SERVERS: u16 = 2_000;
const FIRST_PORT: u16 = 20_000;
/// How often every server is checked. Under the VM's software emulation
/// neither checker can open 12,000 connections a second (at 2,000 a second each
/// took half the emulated CPU), so the benchmark spreads them over a longer
/// interval, the same for both; `BENCH_CHECK_INTERVAL` sets another.
const DEFAULT_INTERVAL: u64 = 10;
/// Each check's timeout: generous, since the emulated CPU is shared with the
/// listeners.
const CHECK_TIMEOUT: u64 = 3;
const CPU_WINDOW: Duration = Duration::from_secs(60);
const SERVERS_ADDRESS: &str = "10.99.0.1";

/// Serves, on a thread of its own, `tcp` ports from `FIRST_PORT` that accept
/// and close and then `http` ports that answer any request with `200 OK`. It
/// runs in the test's namespace, which the new thread inherits.
fn serve_backends(tcp: u16, http: u16) {
    // The listeners, and the daemon and keepalived, which inherit the limit.
    let limit = libc::rlimit {
        rlim_cur: 65_536,
        rlim_max: 65_536,
    };
    // SAFETY: setrlimit(2) with a struct we own; the lab runs as root.
    assert_eq!(
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) },
        0,
        "raising the limit of open files"
    );
    let listeners: Vec<(std::net::TcpListener, bool)> = (0..tcp + http)
        .map(|n| {
            let listener = std::net::TcpListener::bind((SERVERS_ADDRESS, FIRST_PORT + n))
                .expect("a backend's port");
            listener.set_nonblocking(true).expect("non-blocking");
            (listener, n >= tcp)
        })
        .collect();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("the backends' runtime");
        runtime.block_on(async move {
            for (listener, http) in listeners {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        if http {
                            tokio::spawn(answer_ok(stream));
                        }
                    }
                });
            }
            std::future::pending::<()>().await;
        });
    });
}

/// Reads a request's head and answers `200 OK`.
async fn answer_ok(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0; 2048];
    let mut len = 0;
    while !head[..len].windows(4).any(|w| w == b"\r\n\r\n") && len < head.len() {
        match stream.read(&mut head[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => len += read,
        }
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await;
}

/// Clock ticks of user and system time, and resident kilobytes, of `pids`.
fn usage(pids: &[u32]) -> (u64, u64) {
    let mut ticks = 0;
    let mut rss = 0;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
            .split(' ')
            .collect();
        ticks +=
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        rss += resident_kib(*pid);
    }
    (ticks, rss)
}

/// The whole machine's busy clock ticks (all but idle and iowait), from /proc/stat.
fn machine_busy() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .expect("the cpu line")
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().expect("a tick count"))
        .collect();
    fields.iter().sum::<u64>() - fields[3] - fields[4]
}

/// What one checker cost over the window.
struct Cost {
    /// CPU seconds per second of the checker's own processes.
    cpu: f64,
    /// CPU seconds per second of the whole VM: the checker, the backends, and
    /// the kernel's work for both, wherever the kernel charged it.
    machine: f64,
    /// Peak resident MiB.
    mib: f64,
}

/// What `pids` cost over the window.
fn measure(what: &str, pids: impl Fn() -> Vec<u32>) -> Cost {
    let (before, _) = usage(&pids());
    let machine_before = machine_busy();
    let start = Instant::now();
    let mut peak = 0;
    while start.elapsed() < CPU_WINDOW {
        std::thread::sleep(Duration::from_secs(1));
        peak = peak.max(usage(&pids()).1);
    }
    let (after, _) = usage(&pids());
    let seconds = start.elapsed().as_secs_f64();
    let cost = Cost {
        cpu: (after - before) as f64 / 100.0 / seconds,
        machine: (machine_busy() - machine_before) as f64 / 100.0 / seconds,
        mib: peak as f64 / 1024.0,
    };
    println!(
        "bench: {what}: {:.1} % CPU, {:.1} MiB resident; the whole VM {:.1} % CPU",
        cost.cpu * 100.0,
        cost.mib,
        cost.machine * 100.0
    );
    cost
}

fn real_server_count(lab: &Lab) -> usize {
    lab.sh("ipvsadm -Ln")
        .lines()
        .filter(|l| l.starts_with("  -> ") && !l.contains("RemoteAddress"))
        .count()
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = vec![parent];
    let children = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default();
    pids.extend(
        children
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok()),
    );
    pids
}

fn stop(mut child: Child) {
    // SAFETY: kill(2) on a process this benchmark started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

/// The same servers and checks as `lvs.conf` and as `keepalived.conf`.
fn checked_servers(interval: u64) -> (String, String) {
    let mut lvs = format!(
        "director tcp 10.98.0.1:80 TCP\n    balance roundrobin\n    check interval {interval} timeout {CHECK_TIMEOUT}\n    option tcpcheck\n"
    );
    let mut keepalived = format!(
        "global_defs {{\n  router_id bench\n}}\nvirtual_server 10.98.0.1 80 {{\n  delay_loop {interval}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    );
    for n in 0..TCP_SERVERS {
        let port = FIRST_PORT + n;
        let _ = writeln!(lvs, "    server t{n} {SERVERS_ADDRESS}:{port} check");
        let _ = writeln!(
            keepalived,
            "  real_server {SERVERS_ADDRESS} {port} {{\n    weight 1\n    TCP_CHECK {{\n      connect_timeout {CHECK_TIMEOUT}\n    }}\n  }}"
        );
    }
    let _ = write!(
        lvs,
        "director web 10.98.0.2:80 TCP\n    balance roundrobin\n    check interval {interval} timeout {CHECK_TIMEOUT}\n    option httpcheck uri / statuscode 200\n"
    );
    let _ = write!(
        keepalived,
        "}}\nvirtual_server 10.98.0.2 80 {{\n  delay_loop {interval}\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n"
    );
    for n in TCP_SERVERS..TCP_SERVERS + HTTP_SERVERS {
        let port = FIRST_PORT + n;
        let _ = writeln!(lvs, "    server h{n} {SERVERS_ADDRESS}:{port} check");
        let _ = writeln!(
            keepalived,
            "  real_server {SERVERS_ADDRESS} {port} {{\n    weight 1\n    HTTP_GET {{\n      url {{\n        path /\n        status_code 200\n      }}\n      connect_timeout {CHECK_TIMEOUT}\n    }}\n  }}"
        );
    }
    keepalived.push_str("}\n");
    (lvs, keepalived)
}

/// Waits until every server is in IPVS, then lets the checks run a while.
fn wait_for_every_server(lab: &Lab, who: &str, log: &std::path::Path) {
    let servers = usize::from(TCP_SERVERS + HTTP_SERVERS);
    let all_in = wait_until(Duration::from_secs(300), || {
        real_server_count(lab) == servers
    });
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        all_in,
        "{who}: {} of {servers} real servers in IPVS; its log ends:\n{}",
        real_server_count(lab),
        lines[lines.len().saturating_sub(20)..].join("\n")
    );
    std::thread::sleep(Duration::from_secs(10));
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run bench:: --nocapture)"]
fn checker_cpu_against_keepalived() {
    let interval = std::env::var("BENCH_CHECK_INTERVAL")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(DEFAULT_INTERVAL);
    let lab = Lab::new("bench-health");
    lab.ip(&["addr", "add", &format!("{SERVERS_ADDRESS}/32"), "dev", "lo"]);
    serve_backends(TCP_SERVERS, HTTP_SERVERS);
    let (lvs, keepalived) = checked_servers(interval);
    lab.write_config("", "", &lvs);
    let servers = usize::from(TCP_SERVERS + HTTP_SERVERS);

    let (daemon, log) = start_release_daemon(&lab);
    wait_for_every_server(&lab, "lbconsole", &log);
    let pid = daemon.id();
    let ours = measure("lbconsole daemon", || vec![pid]);
    profile("the lbconsole daemon", &lab, &[pid]);
    let our_count = real_server_count(&lab);
    stop(daemon);
    lab.sh("ipvsadm -C");

    let conf = lab.state_dir().join("keepalived.conf");
    std::fs::write(&conf, keepalived).expect("keepalived.conf");
    let log = lab.state_dir().join("keepalived.log");
    let keepalived = Command::new("keepalived")
        .args(["--dont-fork", "--check", "--log-console", "--use-file"])
        .arg(&conf)
        .arg("--pid")
        .arg(lab.state_dir().join("keepalived.pid"))
        .arg("--checkers_pid")
        .arg(lab.state_dir().join("checkers.pid"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("keepalived's log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("keepalived");
    wait_for_every_server(&lab, "keepalived", &log);
    let parent = keepalived.id();
    let theirs = measure("keepalived", || children_of(parent));
    profile("keepalived", &lab, &children_of(parent));
    let their_count = real_server_count(&lab);
    stop(keepalived);

    println!(
        "bench: {TCP_SERVERS} TCP + {HTTP_SERVERS} HTTP servers every {interval} s, lbconsole / keepalived: CPU {:.2} (target <= 0.7), the whole VM {:.2}, memory {:.1} / {:.1} MiB",
        ours.cpu / theirs.cpu,
        ours.machine / theirs.machine,
        ours.mib,
        theirs.mib
    );
    // Every server stays healthy throughout: a server either checker took out
    // of IPVS at any time of its run is a false down.
    // `server t1 (10.99.0.1:20001) of director tcp is down: …`
    let our_downs = false_downs(&lab.state_dir().join("daemon.log"), |line| {
        between(line, "server ", " is down").and_then(|text| between(text, "(", ")"))
    });
    // `Removing service [10.99.0.1]:tcp:20001 from VS [10.98.0.1]:tcp:80`
    let their_downs = false_downs(&lab.state_dir().join("keepalived.log"), |line| {
        between(line, "Removing service ", " from VS")
    });
    for (who, downs, count) in [
        ("lbconsole", &our_downs, our_count),
        ("keepalived", &their_downs, their_count),
    ] {
        println!(
            "bench: {who}: {} of {servers} healthy servers marked down over its run, {count} in IPVS at the end{}",
            downs.len(),
            downs
                .first()
                .map(|line| format!(", such as: {line}"))
                .unwrap_or_default()
        );
    }
    assert!(
        our_downs.is_empty() && our_count == servers,
        "lbconsole marked healthy servers down; {our_count} of {servers} in IPVS at the end:\n{}",
        our_downs[..our_downs.len().min(5)].join("\n")
    );
}

/// Where a checker's CPU goes: `perf record -g` of `pids` for 10 s; the
/// system calls and functions with the most samples in and under them, and
/// under themselves alone. Nothing when perf is not installed.
fn profile(who: &str, lab: &Lab, pids: &[u32]) {
    if !perf_available() {
        return;
    }
    let data = lab.state_dir().join("checker.perf");
    let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
    let recorded = Run::of(
        Command::new("perf")
            .args(["record", "-q", "-g", "-F", "999", "-o"])
            .arg(&data)
            .args(["-p", &pids.join(","), "--", "sleep", "10"]),
    );
    assert!(recorded.success(), "{recorded}");
    let report = |options: &str, limit: usize| {
        lab.sh(&format!(
            "perf report -q -i {} {options} -g none --percent-limit 1 --stdio 2>/dev/null | grep -v '^$' | head -{limit}",
            data.display()
        ))
    };
    println!(
        "bench: profile of {who} over 10 s, by binary:\n{}\nsystem calls, with what runs under them:\n{}\nby function, self:\n{}",
        report("--no-children --sort dso", 5),
        report("--children --sort sym", 60)
            .lines()
            .filter(|line| line.contains("sys_"))
            .collect::<Vec<_>>()
            .join("\n"),
        report("--no-children --sort dso,sym", 25)
    );
}

/// One line of `log` for each server it says was taken out: `server` names the
/// server a line takes out, if it does.
fn false_downs(log: &std::path::Path, server: impl Fn(&str) -> Option<&str>) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut downs = std::collections::BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = server(line) {
            downs.entry(name).or_insert(line);
        }
    }
    downs.into_values().map(str::to_owned).collect()
}

/// The text of `line` between `before` and the next `after`.
fn between<'a>(line: &'a str, before: &str, after: &str) -> Option<&'a str> {
    let start = line.find(before)? + before.len();
    let len = line[start..].find(after)?;
    Some(&line[start..start + len])
}

const DIRECTORS: usize = 1_000;
const ROUNDS: usize = 20;

/// The median and the 90th percentile (nearest rank) of `samples`.
fn median_p90(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let rank = |p: usize| samples[(samples.len() * p).div_ceil(100).max(1) - 1];
    (rank(50), rank(90))
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `run` `ROUNDS` times and prints its median and p90.
fn rounds(what: &str, mut run: impl FnMut()) -> (Duration, Duration) {
    let mut samples: Vec<Duration> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    let (median, p90) = median_p90(&mut samples);
    println!(
        "bench: {what}: median {:.1} ms, p90 {:.1} ms ({ROUNDS} rounds)",
        millis(median),
        millis(p90)
    );
    (median, p90)
}

fn ipvsadm(args: &[&str]) -> Run {
    Run::of(Command::new("ipvsadm").args(args))
}

/// Taking one server out and back as an operator would: `lbconsole server
/// weight D/S 0` then `lbconsole server enable D/S` (the whole commands: start,
/// lock, the running config, IPVS, the override file, the event), against
/// `ipvsadm -e … -w 0` then `-w 1`, which records and checks nothing; on a
/// table of 1,000 directors of 2 servers applied by lbconsole.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run bench:: --nocapture)"]
fn server_override_against_ipvsadm() {
    let lab = Lab::new("bench-override");
    let mut lvs = String::new();
    for d in 0..DIRECTORS {
        let _ = writeln!(
            lvs,
            "director d{d} 10.{}.{}.1:80 TCP\n    balance roundrobin",
            100 + d / 250,
            d % 250
        );
        for r in 0..2 {
            let _ = writeln!(
                lvs,
                "    server r{r} 10.{}.{}.{}:8080 weight 1",
                200 + d / 250,
                d % 250,
                10 + r
            );
        }
    }
    lab.write_config("", "", &lvs);
    let run = lbconsole(&lab, &["apply"]);
    assert!(run.success(), "{run}");
    let table = lab.sh("ipvsadm -Sn");
    assert_eq!(table.lines().count(), DIRECTORS * 3);

    // d500 is 10.102.0.1:80; its r1 10.202.0.11:8080.
    let (vip, rip) = ("10.102.0.1:80", "10.202.0.11:8080");
    let out_and_back = |first: &[&str], second: &[&str], run: &dyn Fn(&[&str]) -> Run| {
        for args in [first, second] {
            let done = run(args);
            assert!(done.success(), "{done}");
        }
    };
    let weight_0 = ["server", "weight", "d500/r1", "0"];
    let enable = ["server", "enable", "d500/r1"];
    let ours = |args: &[&str]| lbconsole(&lab, args);
    let (our_median, our_p90) = rounds(
        "lbconsole server weight d500/r1 0, then server enable d500/r1",
        || out_and_back(&weight_0, &enable, &ours),
    );
    let held = lbconsole(&lab, &weight_0);
    assert_eq!(
        held.stdout.lines().next(),
        Some(
            "set real server 10.202.0.11:8080 of tcp 10.102.0.1:80: masq weight 1 -> masq weight 0"
        ),
        "{held}"
    );
    assert!(lbconsole(&lab, &enable).success());
    assert_eq!(lab.sh("ipvsadm -Sn"), table, "lbconsole left another table");

    // The lab starts lbconsole from the host's files over 9p, whose pages
    // this guest reads again at each start (14 MB, against ipvsadm's 78 KB):
    // the same binary copied to the VM's own file system starts as an
    // installed one does.
    let binary = bench_binary();
    let copy = lab.state_dir().join("lbconsole");
    std::fs::copy(&binary, &copy).expect("a copy of lbconsole");
    println!(
        "bench: file systems of lbconsole, its copy and ipvsadm: {}",
        lab.sh(&format!(
            "stat -f -c %T {binary} {} $(command -v ipvsadm) | paste -sd ' '",
            copy.display()
        ))
        .trim()
    );
    let installed = |args: &[&str]| lbconsole_at(&copy, &lab, args);
    let (copy_median, copy_p90) =
        rounds("the same, lbconsole copied to the VM's file system", || {
            out_and_back(&weight_0, &enable, &installed)
        });
    assert_eq!(lab.sh("ipvsadm -Sn"), table, "lbconsole left another table");

    let theirs = |args: &[&str]| ipvsadm(args);
    let (their_median, their_p90) = rounds(
        &format!("ipvsadm -e -t {vip} -r {rip} -m -w 0, then -w 1"),
        || {
            out_and_back(
                &["-e", "-t", vip, "-r", rip, "-m", "-w", "0"],
                &["-e", "-t", vip, "-r", rip, "-m", "-w", "1"],
                &theirs,
            )
        },
    );
    assert_eq!(lab.sh("ipvsadm -Sn"), table, "ipvsadm left another table");

    // Starting a process, what each command pays before its work.
    rounds("lbconsole --version", || {
        assert!(Run::of(Command::new(&binary).arg("--version")).success());
    });
    rounds("lbconsole --version, the copy", || {
        assert!(Run::of(Command::new(&copy).arg("--version")).success());
    });
    rounds("ipvsadm --version", || {
        assert!(ipvsadm(&["--version"]).success());
    });

    let rows = 2 * DIRECTORS;
    let (list_median, _) = rounds("lbconsole server list --json", || {
        let run = lbconsole(&lab, &["server", "list", "--json"]);
        assert!(run.success(), "{run}");
        assert_eq!(run.stdout.matches("\"director\"").count(), rows);
    });
    let (ln_median, _) = rounds("ipvsadm -Ln", || {
        let run = ipvsadm(&["-Ln"]);
        assert!(run.success(), "{run}");
        assert_eq!(run.stdout.matches("  -> ").count(), rows + 1);
    });

    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("bench: {DIRECTORS} directors x 2 servers");
    println!(
        "bench: out and back, lbconsole / ipvsadm: median {:.2}, p90 {:.2}; lbconsole's copy / ipvsadm: median {:.2}, p90 {:.2}",
        ratio(our_median, their_median),
        ratio(our_p90, their_p90),
        ratio(copy_median, their_median),
        ratio(copy_p90, their_p90)
    );
    println!(
        "bench: server list --json / ipvsadm -Ln: median {:.2}",
        ratio(list_median, ln_median)
    );
}

const FLOWS: usize = 10_000;
/// The port flow N (from 1) permits on the appliance.
const FIRST_FLOW_PORT: u16 = 20_000;
const MATCH_ROUNDS: usize = 3;
const MATCH_ROUND: Duration = Duration::from_secs(3);

/// 10,000 flows, each permitting one TCP port of the appliance, then a deny.
fn many_flows() -> String {
    let mut flows = String::new();
    for n in 1..=FLOWS {
        let port = FIRST_FLOW_PORT as usize + n;
        let _ = writeln!(
            flows,
            "flow f{n} permit\n    match proto tcp dst 192.168.0.1 dstport {port}"
        );
    }
    flows.push_str("flow alltherest deny\n    match\n");
    flows
}

/// New TCP connections to `port` from `client` for `MATCH_ROUND`, one after
/// another: connect (1 s at most), wait for the server's close, close.
/// Returns (connections per second, failures).
fn connection_rate(client: &crate::support::Netns, port: u16) -> (f64, usize) {
    use std::io::Read;
    client
        .thread(move || {
            let at = std::net::SocketAddr::from(([192, 168, 0, 1], port));
            let (mut done, mut failed) = (0usize, 0usize);
            let start = Instant::now();
            while start.elapsed() < MATCH_ROUND {
                match std::net::TcpStream::connect_timeout(&at, Duration::from_secs(1)) {
                    Ok(mut stream) => {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                        match stream.read(&mut [0u8; 1]) {
                            Ok(0) => done += 1,
                            _ => failed += 1,
                        }
                    }
                    Err(_) => failed += 1,
                }
            }
            (done as f64 / start.elapsed().as_secs_f64(), failed)
        })
        .join()
        .expect("the client thread")
}

/// The medians over `MATCH_ROUNDS` alternating rounds to the ports of flow 1
/// and of the last flow: (first, last, failures).
fn first_against_last(client: &crate::support::Netns, what: &str) -> (f64, f64, usize) {
    let (mut first, mut last, mut failures) = (Vec::new(), Vec::new(), 0);
    for _ in 0..MATCH_ROUNDS {
        for (rates, n) in [(&mut first, 1), (&mut last, FLOWS)] {
            let (rate, failed) = connection_rate(client, FIRST_FLOW_PORT + n as u16);
            rates.push(rate);
            failures += failed;
        }
    }
    let median = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (first, last) = (median(&mut first), median(&mut last));
    println!(
        "bench: {what}: flow 1 {first:.0} conn/s, flow {FLOWS} {last:.0} conn/s, last/first {:.2}, failures {failures}",
        last / first
    );
    (first, last, failures)
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run bench:: --nocapture)"]
fn flow_matching() {
    let lab = Lab::new("bench-flows");
    let client = lab.netns("client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "192.168.0.50/24", "dev", "c1"]);
    // Tens of thousands of short connections: ephemeral ports and the
    // conntrack entries of closed connections must not run out.
    client.sh("sysctl -qw net.ipv4.ip_local_port_range='1024 65000' net.ipv4.tcp_tw_reuse=1");
    let network = "service network eth1\n    ip address 192.168.0.1/24\n";
    let flows = many_flows();
    lab.write_config(network, &flows, "");
    let ((), _) = timed("lbconsole apply, 10,000 flows", || {
        let run = lbconsole(&lab, &["apply"]);
        assert!(run.success(), "{run}");
    });
    // conntrack is loaded now that our table uses it.
    lab.sysctl("net/netfilter/nf_conntrack_tcp_timeout_time_wait", "1");
    for n in [1, FLOWS] {
        let listener =
            std::net::TcpListener::bind(("0.0.0.0", FIRST_FLOW_PORT + n as u16)).expect("listen");
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
    }
    let incoming = lab.sh("nft list chain inet lbconsole incoming");
    assert_eq!(
        incoming.matches(" vmap {").count(),
        1,
        "one map for 10,000 flows"
    );

    let (first, last, failures) = first_against_last(&client, "looked up");
    assert!(first > 0.0 && last > 0.0);

    // The same flows walked one by one, as before the lookup (loaded with
    // `nft -j -f`, since lbconsole renders lookups).
    let config = {
        let files = lbconsole::store::ConfigFiles::read(lab.config_dir()).expect("config");
        lbconsole::config::check(files.sources()).config
    };
    let walked = lbconsole::plan::flows::render_with(
        &config.flows,
        &config.lvs,
        lbconsole::plan::flow_match::Matching::Walk,
    )
    .expect("a ruleset");
    let file = lab.state_dir().join("walked.json");
    std::fs::write(&file, serde_json::to_vec(&walked.batch).expect("JSON")).expect("write");
    let ((), _) = timed("nft -j -f, 10,000 flows walked", || {
        let run = Run::of(Command::new("nft").arg("-j").arg("-f").arg(&file));
        assert!(run.success(), "{run}");
    });
    let incoming = lab.sh("nft list chain inet lbconsole incoming");
    assert_eq!(incoming.matches(" vmap {").count(), 0);
    let (walked_first, walked_last, walked_failures) = first_against_last(&client, "walked");
    assert!(walked_first > 0.0 && walked_last > 0.0);

    println!(
        "bench: flow {FLOWS} looked up / walked: {:.2}; flow 1 looked up / walked: {:.2}; failures {}",
        last / walked_last,
        first / walked_first,
        failures + walked_failures
    );
}
