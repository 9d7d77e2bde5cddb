//! The daemon's Prometheus metrics on the real kernel, with real traffic:
//! `promtool` accepts the exposition, IPVS's own counters move by the requests
//! sent, a killed backend moves its state metrics, and a real Prometheus
//! server scraping the daemon answers a query with the servers' state.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::apply_lvs::{Farm, farm};
use crate::daemon::{Daemon, start_daemon_with, stop_daemon};
use crate::health::{LVS, URL};
use crate::support::{resident_kib, wait_until};

/// Where the daemon serves its metrics over TCP: the lab's own loopback.
const LISTEN: &str = "127.0.0.1:9712";

/// The directory of `prometheus` and `promtool` (`tests/lab/run` unpacks
/// Debian's package there).
pub(crate) fn prometheus_bin() -> String {
    std::env::var("LBCONSOLE_PROMETHEUS_BIN")
        .expect("LBCONSOLE_PROMETHEUS_BIN: tests/lab/run sets it")
}

/// A daemon serving metrics on `LISTEN` too, whose checker has run, under
/// a service manager's notify socket (the test's, as systemd's would be,
/// asking for the watchdog every 30 s).
fn scraped_farm(name: &str) -> (Farm, Daemon, UnixDatagram) {
    let farm = farm(name, 3);
    farm.lab.sh("ip link set lo up");
    let network =
        std::fs::read_to_string(farm.lab.config_dir().join("network.conf")).expect("network.conf");
    farm.lab.write_config(&network, "", LVS);
    std::fs::write(
        farm.lab.config_dir().join("lbconsole.toml"),
        format!("metrics_listen = \"{LISTEN}\"\n"),
    )
    .expect("lbconsole.toml");
    let path = farm.lab.state_dir().join("notify.sock");
    let manager = UnixDatagram::bind(&path).expect("the notify socket");
    manager
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("a read timeout");
    let daemon = start_daemon_with(
        &farm.lab,
        &[
            ("NOTIFY_SOCKET", path.as_os_str()),
            ("WATCHDOG_USEC", "30000000".as_ref()),
        ],
    );
    let checked = wait_until(Duration::from_secs(90), || {
        value(&scrape(&farm), "lbconsole_checks_total", &[]).is_some_and(|checks| checks >= 2.0)
    });
    assert!(
        checked,
        "the daemon's checker does not run:\n{}",
        daemon.log()
    );
    (farm, daemon, manager)
}

/// The notifications the daemon sent within `within`.
fn notifications(manager: &UnixDatagram, within: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut received = Vec::new();
    let mut datagram = [0; 4096];
    while start.elapsed() < within {
        if let Ok(read) = manager.recv(&mut datagram) {
            received.push(String::from_utf8_lossy(&datagram[..read]).into_owned());
        }
    }
    received
}

/// One scrape over TCP, as Prometheus does it.
fn scrape(farm: &Farm) -> String {
    farm.lab
        .try_sh(&format!("curl -s --max-time 5 http://{LISTEN}/metrics"))
        .stdout
}

/// The value of the sample of `name` whose labels include `labels`.
pub(crate) fn value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, number) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name
            && labels
                .iter()
                .all(|(label, value)| rest.contains(&format!("{label}=\"{value}\"")));
        matches.then(|| number.parse().ok()).flatten()
    })
}

fn server(name: &str) -> [(&str, &str); 2] {
    [("director", "web"), ("server", name)]
}

/// The director's and each real server's connections, as IPVS counts them.
fn connections(exposition: &str) -> (f64, f64) {
    let of = |name: &str, labels: &[(&str, &str)]| {
        value(exposition, name, labels).unwrap_or_else(|| panic!("no {name}:\n{exposition}"))
    };
    let director = of(
        "lbconsole_director_connections_total",
        &[("director", "web")],
    );
    let servers = ["web1", "web2", "web3"]
        .iter()
        .map(|name| of("lbconsole_server_connections_total", &server(name)))
        .sum();
    (director, servers)
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn promtool_accepts_the_metrics_and_ipvs_counts_every_request_and_every_state_change() {
    let (mut farm, daemon, manager) = scraped_farm("metrics");
    // The service manager hears READY=1, then WATCHDOG=1 at each tick.
    let heard = notifications(&manager, Duration::from_secs(3));
    assert_eq!(
        heard.first().map(String::as_str),
        Some("READY=1"),
        "{heard:?}"
    );
    assert!(
        heard.iter().filter(|n| *n == "WATCHDOG=1").count() >= 2,
        "{heard:?}"
    );
    let bin = prometheus_bin();

    let exposition = scrape(&farm);
    let socket = farm.lab.state_dir().join("metrics.sock");
    let over_socket = farm.lab.sh(&format!(
        "curl -s --max-time 5 --unix-socket {} http://lbconsole/metrics",
        socket.display()
    ));
    assert!(
        over_socket.contains("lbconsole_server_up{"),
        "the state dir's socket serves the metrics too:\n{over_socket}"
    );
    let path = farm.lab.state_dir().join("scrape.txt");
    std::fs::write(&path, &exposition).expect("scrape.txt");
    let lint = farm.lab.try_sh(&format!(
        "{bin}/promtool check metrics < {}",
        path.display()
    ));
    assert!(
        lint.success(),
        "promtool refuses the exposition: {lint}\n{exposition}"
    );
    let refused = farm.lab.try_sh(&format!(
        "curl -s -o /dev/null -w '%{{http_code}}' -X POST http://{LISTEN}/metrics; \
         curl -s -o /dev/null -w ' %{{http_code}}' http://{LISTEN}/"
    ));
    assert_eq!(refused.stdout, "405 404", "only GET /metrics is served");
    // gzip, as Prometheus asks for it: one member curl reads whole, the
    // heartbeat at its end.
    let gzipped = farm.lab.sh(&format!(
        "curl -s --max-time 5 -D {head} --compressed http://{LISTEN}/metrics",
        head = farm.lab.state_dir().join("gzip-head.txt").display()
    ));
    let head = std::fs::read_to_string(farm.lab.state_dir().join("gzip-head.txt"))
        .expect("the gzip answer's head");
    assert!(
        head.contains("Content-Encoding: gzip")
            && value(&gzipped, "lbconsole_server_up", &server("web1")) == Some(1.0)
            && gzipped.ends_with("lbconsole_checker_stalled 0\n"),
        "the gzip answer:\n{head}\n{gzipped}"
    );

    let before = connections(&exposition);
    let answers = farm.fetch(URL, 40);
    assert_eq!(answers.iter().filter(|a| a.starts_with("web")).count(), 40);
    // Counters are read at most once a second.
    std::thread::sleep(Duration::from_millis(1100));
    let after = connections(&scrape(&farm));
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (40.0, 40.0),
        "40 requests are 40 connections of the director and of its servers"
    );

    // 200 scrapes a second for 10 s: every one answered, the checks on
    // schedule (two servers every second), the daemon no bigger.
    scrape_load(LISTEN, 200, 1, scraped_whole);
    let resident = resident_kib(daemon.id());
    let checks = value(&scrape(&farm), "lbconsole_checks_total", &[]).expect("checks");
    let started = Instant::now();
    let (answered, failed) = scrape_load(LISTEN, 200, 10, scraped_whole);
    let elapsed = started.elapsed().as_secs_f64();
    let checked = value(&scrape(&farm), "lbconsole_checks_total", &[]).expect("checks") - checks;
    let grown = resident_kib(daemon.id()).saturating_sub(resident);
    eprintln!(
        "metrics: {answered} scrapes in {elapsed:.1} s, {failed} failed; \
         {checked} checks (2 per second due); resident +{grown} KiB"
    );
    assert_eq!(failed, 0, "{failed} of {answered} scrapes failed");
    assert!(
        checked >= 2.0 * elapsed.floor() - 2.0,
        "{checked} checks in {elapsed:.1} s"
    );
    assert!(grown < 4096, "the daemon grew by {grown} KiB");

    let web1 = server("web1");
    assert_eq!(value(&exposition, "lbconsole_server_up", &web1), Some(1.0));
    assert_eq!(
        value(&exposition, "lbconsole_server_state_changes_total", &web1),
        Some(0.0)
    );
    farm.stop(1);
    let down = wait_until(Duration::from_secs(15), || {
        value(&scrape(&farm), "lbconsole_server_up", &web1) == Some(0.0)
    });
    assert!(down, "web1 stays up in the metrics:\n{}", scrape(&farm));
    let exposition = scrape(&farm);
    assert_eq!(
        value(&exposition, "lbconsole_server_state_changes_total", &web1),
        Some(1.0)
    );
    assert!(
        value(
            &exposition,
            "lbconsole_server_last_change_timestamp_seconds",
            &web1
        )
        .is_some()
    );
    assert_eq!(
        value(
            &exposition,
            "lbconsole_director_servers_up",
            &[("director", "web")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&exposition, "lbconsole_server_weight", &web1),
        Some(0.0)
    );
    assert_eq!(
        value(&exposition, "lbconsole_checker_stalled", &[]),
        Some(0.0)
    );
    let checks = value(
        &exposition,
        "lbconsole_server_check_duration_seconds_count",
        &web1,
    );
    assert!(checks.is_some_and(|count| count >= 2.0), "{exposition}");

    // The history behind the state: web1's last checks, failed ones with why.
    let history = farm.lab.lbconsole(&["status", "--server", "web/web1"]);
    assert!(history.success(), "{history}");
    assert!(
        history.stdout.contains("  passed  ") && history.stdout.contains("  failed  "),
        "{history}"
    );
    assert!(history.stdout.contains("checker alive"), "{history}");
    let unknown = farm.lab.lbconsole(&["status", "--server", "web/web9"]);
    assert!(!unknown.success(), "{unknown}");
    assert!(
        unknown.stderr.contains("no server web/web9")
            && unknown.stderr.contains("web/web1, web/web2, web/web3"),
        "{unknown}"
    );

    // A real Prometheus, on the lab's loopback, scraping every second.
    let data = farm.lab.state_dir().join("prometheus");
    let config = farm.lab.state_dir().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: lbconsole\n    static_configs:\n      - targets: ['{LISTEN}']\n"
        ),
    )
    .expect("prometheus.yml");
    let _prometheus = farm.lab.spawn(&format!(
        "exec {bin}/prometheus --config.file={} --storage.tsdb.path={} \
         --web.listen-address=127.0.0.1:9090 --log.level=warn",
        config.display(),
        data.display()
    ));
    let query =
        "curl -s --max-time 5 'http://127.0.0.1:9090/api/v1/query?query=lbconsole_server_up'";
    let mut answer = String::new();
    let answered = wait_until(Duration::from_secs(90), || {
        answer = farm.lab.try_sh(query).stdout;
        up_by_server(&answer) == ["web1 0", "web2 1", "web3 1"]
    });
    assert!(answered, "Prometheus answers {answer}");

    // A frozen checker: the test build stops its checks when told.
    std::fs::write(farm.lab.state_dir().join("test-freeze-checker"), "").expect("freeze");
    let frozen = Instant::now();
    let mut status = String::new();
    let stalled = wait_until(Duration::from_secs(30), || {
        status = farm.lab.lbconsole(&["status"]).stdout;
        status.contains("checker stalled: no check completed for")
    });
    assert!(stalled, "status never says the checker stalled:\n{status}");
    // A tick to see the file, two intervals (1 s) without a check, a status run.
    let within = frozen.elapsed();
    assert_eq!(
        value(&scrape(&farm), "lbconsole_checker_stalled", &[]),
        Some(1.0)
    );
    eprintln!("metrics: stalled reported {within:?} after the freeze");
    // No WATCHDOG=1 once stalled: what a tick had sent before is read out,
    // then the manager hears nothing for 3 s (systemd would restart the
    // daemon when WatchdogSec ran out).
    let _ = notifications(&manager, Duration::from_millis(1500));
    let heard = notifications(&manager, Duration::from_secs(3));
    assert!(heard.is_empty(), "a stalled checker still pets: {heard:?}");

    // Those seconds more of the stall are still one line in the log, not one
    // a tick. A loaded VM may have starved the checker for two seconds
    // before: a real stall too, logged when it began and when it ended.
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let stalls: Vec<usize> = log
        .split("health: checker going again")
        .map(|between| between.matches("health: checker stalled").count())
        .collect();
    assert!(
        stalls.iter().all(|&lines| lines == 1),
        "one log line for each stall, {stalls:?}:\n{log}"
    );
    // The manager read nothing for seconds on end, so its queue filled up:
    // the daemon says so once, not at every tick.
    assert_eq!(
        log.matches("systemd: cannot send WATCHDOG=1").count(),
        1,
        "one log line for a manager that does not read:\n{log}"
    );
}

/// `rate` scrapes a second of `address` for `seconds`, each a new
/// connection, from four threads; `scraped` scrapes once and tells whether
/// the answer came whole: (scrapes answered in full, scrapes that failed).
pub(crate) fn scrape_load(
    address: &'static str,
    rate: u32,
    seconds: u32,
    scraped: fn(&str) -> bool,
) -> (u32, u32) {
    const THREADS: u32 = 4;
    let start = Instant::now();
    let each = Duration::from_secs(1) * THREADS / rate;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            std::thread::spawn(move || {
                let first = start + Duration::from_secs(1) * thread / rate;
                let (mut answered, mut failed) = (0, 0);
                for n in 0..rate * seconds / THREADS {
                    let due = first + each * n;
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    if scraped(address) {
                        answered += 1;
                    } else {
                        failed += 1;
                    }
                }
                (answered, failed)
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().expect("a scraper"))
        .fold((0, 0), |(a, f), (answered, failed)| {
            (a + answered, f + failed)
        })
}

/// One `GET /metrics` of `address` on a connection of its own, as
/// Prometheus scrapes: the whole answer, within 5 s.
pub(crate) fn scrape_over_tcp(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

fn scraped_whole(address: &str) -> bool {
    scrape_over_tcp(address).is_ok_and(|answer| is_lbconsoles(&answer))
}

/// Whether `answer` is lbconsole's exposition up to the heartbeat, its last
/// family.
pub(crate) fn is_lbconsoles(answer: &str) -> bool {
    answer.starts_with("HTTP/1.1 200 OK") && answer.contains("lbconsole_checker_stalled")
}

/// `server value` of each series of a Prometheus query's answer, sorted.
fn up_by_server(answer: &str) -> Vec<String> {
    let Ok(answer) = serde_json::from_str::<serde_json::Value>(answer) else {
        return Vec::new();
    };
    let mut found: Vec<String> = answer["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|series| {
            format!(
                "{} {}",
                series["metric"]["server"].as_str().unwrap_or("?"),
                series["value"][1].as_str().unwrap_or("?")
            )
        })
        .collect();
    found.sort();
    found
}
