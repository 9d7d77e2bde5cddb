//! The metrics benchmark: how fast the release daemon answers `GET /metrics`
//! while it checks 200 servers every second, against Prometheus's own
//! `/metrics` (the Go client every exporter uses) in the same VM run, plain
//! and gzipped as Prometheus scrapes; then 200 scrapes a second for 10 s, the
//! issue's load. It asserts that every
//! scrape is answered in full and every server stays in IPVS, never the time.

use std::fmt::Write;
use std::io::{self, Read, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{
    FIRST_PORT, SERVERS_ADDRESS, real_server_count, serve_backends, start_release_daemon, stop,
    usage,
};
use crate::metrics::{is_lbconsoles, prometheus_bin, scrape_load, scrape_over_tcp, value};
use crate::support::{Lab, resident_kib, wait_until};

const DIRECTORS: u16 = 20;
const SERVERS_EACH: u16 = 10;
/// Where each serves its metrics: the lab's own loopback.
const LBCONSOLE: &str = "127.0.0.1:9712";
const PROMETHEUS: &str = "127.0.0.1:9090";
/// Scrapers at once in the closed loop, each opening a new connection as
/// soon as its last scrape was answered.
const SCRAPERS: u32 = 4;
const WINDOW: Duration = Duration::from_secs(10);

/// Twenty directors of ten servers each, every server checked every second.
fn checked_farm() -> String {
    let mut lvs = String::new();
    for director in 0..DIRECTORS {
        let _ = writeln!(
            lvs,
            "director d{director} 10.98.0.{}:80 TCP\n    balance roundrobin\n    check interval 1 timeout 1\n    option tcpcheck",
            director + 1
        );
        for server in 0..SERVERS_EACH {
            let port = FIRST_PORT + director * SERVERS_EACH + server;
            let _ = writeln!(lvs, "    server s{server} {SERVERS_ADDRESS}:{port} check");
        }
    }
    lvs
}

/// What a closed loop of scrapes measured.
struct Rate {
    per_second: f64,
    /// The server's CPU time per scrape, over what it spends idle.
    cpu_ms: f64,
    failed: usize,
    median: Duration,
    p99: Duration,
    bytes: usize,
}

/// One scrape: the bytes on the wire and the answer's text.
type Scrape = fn(&str) -> io::Result<(usize, String)>;

fn plain(address: &str) -> io::Result<(usize, String)> {
    scrape_over_tcp(address).map(|answer| (answer.len(), answer))
}

/// A scrape that takes gzip, as Prometheus's: the head and the inflated body
/// (one gzip member, read as curl reads it; Prometheus's own answer comes in
/// chunks).
fn gzipped(address: &str) -> io::Result<(usize, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(
        b"GET /metrics HTTP/1.1\r\nHost: lab\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let end = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no head"))?;
    let head = String::from_utf8_lossy(&answer[..end + 4]).into_owned();
    if !head.contains("Content-Encoding: gzip") {
        return Err(io::Error::other(format!("not gzip: {head}")));
    }
    let body = &answer[end + 4..];
    let body = if head.contains("Transfer-Encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text)?;
    Ok((answer.len(), head + &text))
}

/// The body of a chunked answer (RFC 9112, 7.1).
fn dechunk(mut chunked: &[u8]) -> io::Result<Vec<u8>> {
    let broken = || io::Error::other("a broken chunk");
    let mut body = Vec::new();
    loop {
        let line_end = chunked
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(broken)?;
        let size = String::from_utf8_lossy(&chunked[..line_end]);
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| broken())?;
        chunked = &chunked[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(chunked.get(..size).ok_or_else(broken)?);
        chunked = chunked.get(size + 2..).ok_or_else(broken)?;
    }
}

/// The server `pid`: what it costs without scrapes, in clock ticks a second.
/// The scrapers share the VM's CPUs with it, so the rate they reach tells
/// their cost too; its CPU time per scrape is its own.
struct Server {
    address: &'static str,
    pid: u32,
    idle_ticks: f64,
}

impl Server {
    fn measured(address: &'static str, pid: u32) -> Server {
        let before = usage(&[pid]).0;
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(5));
        let idle_ticks = (usage(&[pid]).0 - before) as f64 / start.elapsed().as_secs_f64();
        Server {
            address,
            pid,
            idle_ticks,
        }
    }
}

/// `SCRAPERS` threads scrape `server` back to back for `WINDOW`, each scrape
/// on a new connection; `answered` tells a whole answer.
fn closed_loop(server: &Server, scrape: Scrape, answered: fn(&str) -> bool) -> Rate {
    let address = server.address;
    let ticks = usage(&[server.pid]).0;
    let start = Instant::now();
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut latencies, mut failed, mut bytes) = (Vec::new(), 0, 0);
                while start.elapsed() < WINDOW {
                    let began = Instant::now();
                    match scrape(address) {
                        Ok((wire, answer)) if answered(&answer) => {
                            latencies.push(began.elapsed());
                            bytes = wire;
                        }
                        _ => failed += 1,
                    }
                }
                (latencies, failed, bytes)
            })
        })
        .collect();
    let (mut latencies, mut failed, mut bytes) = (Vec::new(), 0, 0);
    for scraper in scrapers {
        let (some, their_failed, their_bytes) = scraper.join().expect("a scraper");
        latencies.extend(some);
        failed += their_failed;
        bytes = bytes.max(their_bytes);
    }
    let seconds = start.elapsed().as_secs_f64();
    let busy = (usage(&[server.pid]).0 - ticks) as f64 - server.idle_ticks * seconds;
    // Clock ticks are hundredths of a second.
    let cpu_ms = busy.max(0.0) * 10.0 / latencies.len().max(1) as f64;
    latencies.sort();
    let at = |share: f64| {
        latencies
            .get(((latencies.len() as f64 * share) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    Rate {
        per_second: latencies.len() as f64 / seconds,
        cpu_ms,
        failed,
        median: at(0.5),
        p99: at(0.99),
        bytes,
    }
}

fn report(who: &str, rate: &Rate) {
    println!(
        "bench: {who} ({} bytes): {:.0} scrapes/s from {SCRAPERS} scrapers, {:.2} ms of its CPU each, median {:.1} ms, p99 {:.1} ms, {} failed",
        rate.bytes,
        rate.per_second,
        rate.cpu_ms,
        rate.median.as_secs_f64() * 1000.0,
        rate.p99.as_secs_f64() * 1000.0,
        rate.failed
    );
}

fn is_prometheus(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 200 OK") && answer.contains("prometheus_build_info")
}

/// The checks lbconsole's daemon has done, as its metrics say.
fn checks_done() -> Option<f64> {
    scrape_over_tcp(LBCONSOLE)
        .ok()
        .and_then(|answer| value(&answer, "lbconsole_checks_total", &[]))
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run bench:: --nocapture)"]
fn metrics_scrapes_against_prometheus() {
    let lab = Lab::new("bench-metrics");
    lab.sh("ip link set lo up");
    lab.ip(&["addr", "add", &format!("{SERVERS_ADDRESS}/32"), "dev", "lo"]);
    let servers = usize::from(DIRECTORS * SERVERS_EACH);
    serve_backends(DIRECTORS * SERVERS_EACH, 0);
    lab.write_config("", "", &checked_farm());
    std::fs::write(
        lab.config_dir().join("lbconsole.toml"),
        format!("metrics_listen = \"{LBCONSOLE}\"\n"),
    )
    .expect("lbconsole.toml");

    let (daemon, log) = start_release_daemon(&lab);
    let checking = wait_until(Duration::from_secs(120), || {
        real_server_count(&lab) == servers
            && checks_done().is_some_and(|checks| checks >= servers as f64)
    });
    assert!(
        checking,
        "the daemon never checked every server:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // A real Prometheus, scraping lbconsole every second as it would in use.
    let config = lab.state_dir().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n\
             scrape_configs:\n  - job_name: lbconsole\n    static_configs:\n      - targets: ['{LBCONSOLE}']\n"
        ),
    )
    .expect("prometheus.yml");
    let prometheus = lab.spawn(&format!(
        "exec {}/prometheus --config.file={} --storage.tsdb.path={} \
         --web.listen-address={PROMETHEUS} --log.level=warn",
        prometheus_bin(),
        config.display(),
        lab.state_dir().join("prometheus").display()
    ));
    let serving = wait_until(Duration::from_secs(90), || {
        scrape_over_tcp(PROMETHEUS).is_ok_and(|answer| is_prometheus(&answer))
    });
    assert!(serving, "Prometheus never served its /metrics");

    let (lbconsole, prometheus) = (
        Server::measured(LBCONSOLE, daemon.id()),
        Server::measured(PROMETHEUS, prometheus.id()),
    );
    let mut failed_ours = 0;
    for (how, scrape) in [("plain", plain as Scrape), ("gzip", gzipped)] {
        let ours = closed_loop(&lbconsole, scrape, is_lbconsoles);
        report(&format!("lbconsole daemon /metrics, {how}"), &ours);
        let theirs = closed_loop(&prometheus, scrape, is_prometheus);
        report(&format!("prometheus /metrics, {how}"), &theirs);
        println!(
            "bench: {how}, lbconsole / prometheus: scrapes/s {:.2}, CPU per scrape {:.2}",
            ours.per_second / theirs.per_second,
            ours.cpu_ms / theirs.cpu_ms
        );
        failed_ours += ours.failed;
    }

    // The load: 200 scrapes a second for 10 s, paced, gzipped as
    // Prometheus scrapes.
    let resident = resident_kib(daemon.id());
    let checks = checks_done().expect("lbconsole_checks_total");
    let started = Instant::now();
    let (answered, failed) = scrape_load(LBCONSOLE, 200, 10, |address| {
        gzipped(address).is_ok_and(|(_, answer)| is_lbconsoles(&answer))
    });
    let elapsed = started.elapsed().as_secs_f64();
    let checked = checks_done().expect("lbconsole_checks_total") - checks;
    let grown = resident_kib(daemon.id()).saturating_sub(resident);
    println!(
        "bench: 200 scrapes/s for 10 s: {answered} answered in {elapsed:.1} s ({:.0}/s), {failed} failed; {checked} checks ({} due); resident +{grown} KiB",
        f64::from(answered) / elapsed,
        servers as f64 * elapsed.floor()
    );
    let in_ipvs = real_server_count(&lab);
    stop(daemon);
    assert_eq!((failed_ours, failed), (0, 0), "scrapes of lbconsole failed");
    assert_eq!(in_ipvs, servers, "servers left IPVS during the scrapes");
}
