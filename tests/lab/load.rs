//! Applies under continuous real load: clients open a new TCP connection for
//! every HTTP request to a `balance roundrobin` NAT VIP, 50 a second, and count
//! the requests that fail, while the test changes the configuration. A user sees
//! zero failures: an apply that does not change a director's `balance` line never
//! changes its service's kernel scheduler (which refuses new connections for a
//! moment), and a real server leaves only after it was drained.
//!
//! How the series is kept honest:
//! - Every request has a connection of its own and 3 s for all of it (connect,
//!   send, read to the end); a failure is any error, that timeout, or an answer
//!   that is not `200` with a backend's name. The clients count every request,
//!   so a stalled load cannot pass: the total must be at least 80 % of 50/s × the
//!   time it ran. (3 s lets a SYN the kernel dropped be sent again once, after
//!   1 s: the emulated lab CPU is slow, and lbconsole's faults show as refusals.)
//! - The clients and the backends are threads of the test, each in the client's
//!   or its backend's network namespace: native code, so that the emulated CPU
//!   keeps up with the load and the figures measure the kernel, not an
//!   interpreter.
//! - After each step the test waits until the clients have made another 25
//!   requests, so connections arrive right after every change, where a refused
//!   burst would be. The refusal window of a scheduler swap is short, so a run
//!   may miss it: the tests also check that no apply's plan sets the loaded
//!   service itself.
//! - A server is removed as an administrator would: first drained (weight 0 by an
//!   apply), then, once IPVS lists no connection to it still in its handshake or
//!   established (`ipvsadm -Lnc`: every request it took has been answered),
//!   removed. With NAT, removing a server whose connections still carry requests
//!   breaks them: the kernel drops their packets. That is what removing means,
//!   not a fault of lbconsole, so the series never does it.
//! - With `lbconsole daemon`, the flapping server's health check fails while its
//!   traffic is still answered: an nft rule in its namespace resets the
//!   connections that come from the director's own address (the checks), while
//!   the clients' connections, which NAT leaves with the client's address, are
//!   answered all along. (A server whose backend itself dies fails the requests
//!   already sent to it before any checker can notice; that is not lbconsole's
//!   doing.) The director says `inhibit`, so a failing server stays in IPVS at
//!   weight 0 and its established connections go on; each flap waits until IPVS
//!   shows the server out or back. The check takes two failures in a row, so
//!   that a healthy server is not taken out when the host leaves the emulated
//!   CPU idle for a second: with every server at weight 0, IPVS would refuse
//!   clients, rightly.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::apply_lvs::{Farm, farm, ipvsadm_table};
use crate::daemon::{Daemon, start_daemon, stop_daemon};
use crate::support::{Lab, Run, lbconsole_binary, wait_until};

/// New connections per second.
const RATE: f64 = 50.0;

/// Client threads the rate is spread over: a slow request delays only its own.
const CLIENTS: u32 = 5;

/// The time a request has, from connect to the end of its answer.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Requests the clients make after each step before the next one.
const AFTER_EACH_STEP: u64 = 25;

/// How long the lab may take to do what a step waits for. The emulated CPU is
/// slow: one `lbconsole apply` alone takes several seconds there.
const SLOW: Duration = Duration::from_secs(60);

/// The loaded VIP.
const VIP: &str = "198.51.100.10:80";

/// [`lbconsole_binary`] with `args` and the lab's config and state dirs.
fn command(lab: &Lab, args: &[&str]) -> Command {
    let mut command = Command::new(lbconsole_binary());
    command
        .args(args)
        .arg("--config-dir")
        .arg(lab.config_dir())
        .arg("--state-dir")
        .arg(lab.state_dir())
        .env_remove("LBCONSOLE_CONFIG_DIR")
        .env_remove("LBCONSOLE_STATE_DIR");
    command
}

/// Writes `lvs` (keeping `network.conf`), applies it and returns the plan.
fn apply(farm: &Farm, lvs: &str) -> String {
    let lab = &farm.lab;
    let network =
        std::fs::read_to_string(lab.config_dir().join("network.conf")).expect("network.conf");
    lab.write_config(&network, "", lvs);
    let run = Run::of(&mut command(lab, &["apply"]));
    assert!(run.success(), "apply: {run}");
    run.stdout
}

/// Moves this thread into the network namespace `ip netns` knows as `name`.
fn enter(name: &str) {
    let path = format!("/run/netns/{name}");
    let netns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: setns(2) on a descriptor that is open for the duration of the call.
    if unsafe { libc::setns(netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        panic!("setns {path}: {}", std::io::Error::last_os_error());
    }
}

/// Backend threads answering HTTP on port 80 of the farm's backends, one thread
/// each, in place of the farm's own servers; stopped when dropped.
struct Backends {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Backends {
    /// Replaces the servers of backends 1..=`count` and waits until each answers.
    fn start(farm: &mut Farm, count: usize) -> Backends {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for n in 1..=count {
            farm.stop(n);
            let netns = farm.backend(n).name().to_owned();
            let stop = stop.clone();
            threads.push(thread::spawn(move || {
                enter(&netns);
                serve(&format!("10.0.{n}.2:80"), &format!("web{n}"), &stop);
            }));
        }
        let backends = Backends { stop, threads };
        for n in 1..=count {
            let answers = || {
                farm.lab
                    .try_sh(&format!("curl -s --max-time 2 http://10.0.{n}.2/"))
                    .stdout
                    == format!("web{n}")
            };
            assert!(wait_until(SLOW, answers), "backend web{n} does not answer");
        }
        backends
    }
}

impl Drop for Backends {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Answers each connection to `address` with `name` (after reading the
/// request, or at once if none comes within a second: a health check's bare
/// connect), until `stop`. A request that does not say `Connection: close` is
/// kept alive: its connection goes on, on a thread of its own. The others are
/// answered here, one after the other, as the emulated CPU affords.
fn serve(address: &str, name: &str, stop: &AtomicBool) {
    let listener = TcpListener::bind(address).unwrap_or_else(|e| panic!("bind {address}: {e}"));
    while !stop.load(Ordering::Relaxed) {
        let mut ready = libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd; 100 ms, to see `stop`.
        if unsafe { libc::poll(&mut ready, 1, 100) } <= 0 {
            continue;
        }
        let Ok((mut stream, _)) = listener.accept() else {
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        if answer(&mut stream, name, Wait::OneSecond) == Answered::KeptAlive {
            let name = name.to_owned();
            thread::spawn(move || {
                while answer(&mut stream, &name, Wait::UntilClosed) == Answered::KeptAlive {}
            });
        }
    }
}

#[derive(PartialEq)]
enum Answered {
    Closed,
    KeptAlive,
}

/// How long a request may take to come.
#[derive(PartialEq)]
enum Wait {
    /// A new connection's: then it is answered anyway (a check's bare connect).
    OneSecond,
    /// A kept-alive connection's next request: as long as the client likes.
    UntilClosed,
}

/// Reads one request from `stream` and answers it with `name`.
fn answer(stream: &mut TcpStream, name: &str, wait: Wait) -> Answered {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer) {
            Ok(0) => return Answered::Closed,
            Ok(read) => request.extend_from_slice(&buffer[..read]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && (wait == Wait::UntilClosed || !request.is_empty()) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
    let kept = !text.is_empty() && !text.contains("connection: close");
    let answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{name}",
        name.len(),
        if kept { "keep-alive" } else { "close" }
    );
    match stream.write_all(answer.as_bytes()) {
        Ok(()) if kept => Answered::KeptAlive,
        _ => Answered::Closed,
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    answered: u64,
    /// Each failed request: when it was sent (seconds since the epoch) and why.
    failures: Vec<(f64, String)>,
    /// Answers per backend.
    backends: BTreeMap<String, u64>,
    /// When the latest request each backend answered was sent.
    last_sent: BTreeMap<String, f64>,
    /// Requests slower than a second, with when they were sent.
    slow: Vec<(f64, Duration)>,
    slowest: Duration,
}

impl Tally {
    fn total(&self) -> u64 {
        self.answered + self.failures.len() as u64
    }
}

/// The client threads, in the farm's client namespace, sending [`RATE`]
/// requests a second to [`VIP`] until [`Load::finish`].
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    began: Instant,
}

impl Load {
    /// Starts the clients and waits until they have had 50 answers.
    fn start(farm: &Farm) -> Load {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let began = Instant::now();
        let period = Duration::from_secs_f64(f64::from(CLIENTS) / RATE);
        let threads = (0..CLIENTS)
            .map(|n| {
                let netns = farm.client.name().to_owned();
                let (tally, stop) = (tally.clone(), stop.clone());
                // The clients take turns: client n starts n/RATE seconds in.
                let first = began + Duration::from_secs_f64(f64::from(n) / RATE);
                thread::spawn(move || {
                    enter(&netns);
                    send(first, period, &tally, &stop);
                })
            })
            .collect();
        let load = Load {
            tally,
            stop,
            threads,
            began,
        };
        assert!(
            wait_until(SLOW, || load.total() >= 50),
            "the load did not get going: {} requests",
            load.total()
        );
        load
    }

    /// When the latest request `backend` answered was sent.
    fn last_sent(&self, backend: &str) -> Option<f64> {
        self.tally
            .lock()
            .expect("the tally")
            .last_sent
            .get(backend)
            .copied()
    }

    /// Requests made so far.
    fn total(&self) -> u64 {
        self.tally.lock().expect("the tally").total()
    }

    /// Waits until the clients have made `more` requests from now on.
    fn wait_for_requests(&self, more: u64) {
        let target = self.total() + more;
        assert!(
            wait_until(SLOW, || self.total() >= target),
            "the load stalled at {} requests",
            self.total()
        );
    }

    /// Stops the clients; what they saw, and for how long.
    fn finish(mut self) -> (Tally, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        let elapsed = self.began.elapsed();
        for thread in self.threads.drain(..) {
            thread.join().expect("a client thread");
        }
        let tally = std::mem::take(&mut *self.tally.lock().expect("the tally"));
        (tally, elapsed)
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One client: a request every `period` from `first` on, until `stop`. A late
/// client does not burst to catch up.
fn send(first: Instant, period: Duration, tally: &Mutex<Tally>, stop: &AtomicBool) {
    let vip: SocketAddr = VIP.parse().expect("an address");
    let mut due = first;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        } else if now - due > period {
            due = now;
        }
        let sent = wall_clock();
        let started = Instant::now();
        let result = request(vip);
        let took = started.elapsed();
        let mut tally = tally.lock().expect("the tally");
        tally.slowest = tally.slowest.max(took);
        if took >= Duration::from_secs(1) {
            tally.slow.push((sent, took));
        }
        match result {
            Ok(backend) => {
                tally.answered += 1;
                tally.last_sent.insert(backend.clone(), sent);
                *tally.backends.entry(backend).or_default() += 1;
            }
            Err(why) => tally.failures.push((sent, why)),
        }
        drop(tally);
        due += period;
    }
}

/// One request on a new connection; the backend that answered, or why not.
fn request(vip: SocketAddr) -> Result<String, String> {
    let deadline = Instant::now() + TIMEOUT;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| format!("no answer within {TIMEOUT:?}"))
    };
    let mut stream =
        TcpStream::connect_timeout(&vip, left()?).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_write_timeout(Some(left()?))
        .and_then(|()| {
            stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: close\r\n\r\n")
        })
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    loop {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| format!("read: {e}"))?;
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => answer.extend_from_slice(&buffer[..read]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") && body.starts_with("web") => {
            Ok(body.to_owned())
        }
        _ => Err(format!("answer {answer:?}")),
    }
}

/// Seconds since the epoch: the clients' and the steps' common clock.
fn wall_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
}

/// What the test did and when, to tell which step a failed request followed.
#[derive(Default)]
struct Steps {
    done: Vec<(f64, String)>,
    plans: Vec<String>,
}

impl Steps {
    /// Notes that `what` starts now.
    fn start(&mut self, what: impl Into<String>) {
        let what = what.into();
        let at = wall_clock();
        if let Some((before, last)) = self.done.last() {
            eprintln!("load: `{last}` took {:.1} s", at - before);
        }
        self.done.push((at, what));
    }

    /// The step that was under way at `sent`.
    fn at(&self, sent: f64) -> &str {
        self.done
            .iter()
            .rev()
            .find(|(at, _)| *at <= sent)
            .map_or("the start", |(_, what)| what.as_str())
    }

    /// The failed requests of `tally`, counted by the step they followed.
    fn failures(&self, tally: &Tally) -> String {
        let mut by_step: Vec<(&str, Vec<&str>)> = Vec::new();
        for (sent, why) in &tally.failures {
            let step = self.at(*sent);
            match by_step.iter_mut().find(|(s, _)| *s == step) {
                Some((_, whys)) => whys.push(why),
                None => by_step.push((step, vec![why])),
            }
        }
        by_step
            .iter()
            .map(|(step, whys)| {
                format!(
                    "  after `{step}`: {} failed, first: {}\n",
                    whys.len(),
                    whys[0]
                )
            })
            .collect()
    }

    /// The requests of `tally` that took a second or more, with their step.
    fn slow(&self, tally: &Tally) -> String {
        tally
            .slow
            .iter()
            .map(|(sent, took)| format!("  after `{}`: {took:.1?}\n", self.at(*sent)))
            .collect()
    }
}

/// Zero failed requests, and as many requests as the rate promises (80 %).
/// `context` is shown with the failures: what else may explain them.
#[track_caller]
fn assert_no_request_failed(
    tally: &Tally,
    elapsed: Duration,
    steps: &Steps,
    context: impl FnOnce() -> String,
) {
    let seconds = elapsed.as_secs_f64();
    eprintln!(
        "load: {} of {} requests failed in {seconds:.1} s ({:.0}/s), {} slower than 1 s, \
         slowest {:.2?}, answers {:?}\n{}",
        tally.failures.len(),
        tally.total(),
        tally.total() as f64 / seconds,
        tally.slow.len(),
        tally.slowest,
        tally.backends,
        steps.slow(tally)
    );
    if !tally.failures.is_empty() {
        panic!(
            "{} of {} requests failed:\n{}{}",
            tally.failures.len(),
            tally.total(),
            steps.failures(tally),
            context()
        );
    }
    let expected = RATE * seconds;
    assert!(
        tally.total() as f64 >= 0.8 * expected,
        "only {} requests in {seconds:.1} s, expected about {expected:.0}",
        tally.total()
    );
}

/// The check of the directors in the test with `lbconsole daemon`: a TCP connect
/// every 2 s (1 s to answer), down after two failures in a row, up after one
/// success, and a failing server stays at weight 0. Two failures, so that a
/// moment when the emulated CPU does not run does not take a server out.
const CHECK: &str = "    check interval 2 rise 1 fall 2 inhibit\n    option tcpcheck\n";

/// `lvs.conf`: the loaded director `web` with `servers` (backend, weight),
/// checked with [`CHECK`] when `checked`, then `others`.
fn lvs(servers: &[(usize, u16)], checked: bool, others: &str) -> String {
    let mut text = format!("director web {VIP} TCP\n    balance roundrobin\n    mode nat\n");
    if checked {
        text.push_str(CHECK);
    }
    for (n, weight) in servers {
        let check = if checked { " check" } else { "" };
        text.push_str(&format!(
            "    server web{n} 10.0.{n}.2:80 weight {weight}{check}\n"
        ));
    }
    text.push_str(others);
    text
}

/// Two more directors on the same backends: one with a VIP, one without (an
/// fwmark service).
const OTHERS: &str = "
director other 198.51.100.11:80 TCP
    balance roundrobin
    server o1 10.0.1.2:80
    server o2 10.0.2.2:80

director marked
    balance leastconn
    server m1 10.0.1.2:80
";

/// [`OTHERS`] changed: weights, a scheduler, a server more.
const OTHERS_CHANGED: &str = "
director other 198.51.100.11:80 TCP
    balance source
    server o1 10.0.1.2:80 weight 2
    server o2 10.0.2.2:80

director marked
    balance leastconn
    server m1 10.0.1.2:80
    server m2 10.0.2.2:80
";

/// One step of a series.
enum Step {
    /// Applies `lvs(servers, checked, others)`.
    Apply {
        what: &'static str,
        servers: &'static [(usize, u16)],
        others: &'static str,
    },
    /// Waits until no connection to backend N still carries a request.
    Drained(usize),
    /// Makes backend N's health check fail (true) or pass again (false).
    CheckFails(usize, bool),
    /// Waits until IPVS shows backend N inhibited (true) or back (false).
    Inhibited(usize, bool),
}

const EQUAL: &[(usize, u16)] = &[(1, 1), (2, 1), (3, 1)];

/// Weights change (1 → 2 → 1 → 3 → 1, as in the report of issue 13); web4
/// joins, is drained and leaves; two other directors come, change and go.
fn series() -> Vec<Step> {
    use Step::*;
    vec![
        Apply {
            what: "web2 weight 2",
            servers: &[(1, 1), (2, 2), (3, 1)],
            others: "",
        },
        Apply {
            what: "web2 weight 1",
            servers: EQUAL,
            others: "",
        },
        Apply {
            what: "web2 weight 3",
            servers: &[(1, 1), (2, 3), (3, 1)],
            others: "",
        },
        Apply {
            what: "web2 weight 1 again",
            servers: EQUAL,
            others: "",
        },
        Apply {
            what: "add web4",
            servers: &[(1, 1), (2, 1), (3, 1), (4, 1)],
            others: "",
        },
        Apply {
            what: "drain web4",
            servers: &[(1, 1), (2, 1), (3, 1), (4, 0)],
            others: "",
        },
        Drained(4),
        Apply {
            what: "remove web4",
            servers: EQUAL,
            others: "",
        },
        Apply {
            what: "add directors other and marked",
            servers: EQUAL,
            others: OTHERS,
        },
        Apply {
            what: "change directors other and marked",
            servers: EQUAL,
            others: OTHERS_CHANGED,
        },
        Apply {
            what: "remove directors other and marked",
            servers: EQUAL,
            others: "",
        },
    ]
}

/// [`series`] with backend 3's health check flapping between the steps: out
/// and back three times, once failing right before an apply.
fn series_with_flaps() -> Vec<Step> {
    use Step::*;
    let mut steps = series().into_iter();
    let mut take = |n: usize| steps.by_ref().take(n).collect::<Vec<_>>();
    let mut all = vec![CheckFails(3, true), Inhibited(3, true)];
    all.extend(take(2));
    all.extend([CheckFails(3, false), Inhibited(3, false)]);
    all.extend(take(1));
    // The checker takes web3 out while the next apply runs.
    all.push(CheckFails(3, true));
    all.extend(take(1));
    all.push(Inhibited(3, true));
    all.extend(take(2));
    all.extend([CheckFails(3, false), Inhibited(3, false)]);
    all.extend(take(2));
    all.extend([CheckFails(3, true), Inhibited(3, true)]);
    all.extend(take(2));
    all.extend([CheckFails(3, false), Inhibited(3, false)]);
    all.extend(steps);
    all
}

/// Runs `steps` while `load` runs; `checked`: the directors have [`CHECK`].
fn run(farm: &Farm, load: &Load, steps: &[Step], checked: bool) -> Steps {
    let mut log = Steps::default();
    for step in steps {
        match step {
            Step::Apply {
                what,
                servers,
                others,
            } => {
                log.start(*what);
                let plan = apply(farm, &lvs(servers, checked, others));
                log.plans.push(format!("{what}:\n{plan}"));
            }
            Step::Drained(n) => {
                log.start(format!("wait until web{n} is drained"));
                let dest = format!("10.0.{n}.2:80");
                assert!(
                    wait_until(SLOW, || requests_in_flight(&farm.lab, &dest) == 0),
                    "web{n} still has requests: {}",
                    farm.lab.sh("ipvsadm -Lnc")
                );
            }
            Step::CheckFails(n, fails) => {
                log.start(format!(
                    "web{n}'s check {}",
                    if *fails { "fails" } else { "passes" }
                ));
                check_fails(farm, *n, *fails);
            }
            Step::Inhibited(n, inhibited) => {
                log.start(format!(
                    "wait until web{n} is {}",
                    if *inhibited { "inhibited" } else { "back" }
                ));
                let dest = format!("10.0.{n}.2:80");
                assert!(
                    wait_until(SLOW, || weight(&farm.lab, &dest)
                        .is_some_and(|w| (w == 0) == *inhibited)),
                    "web{n} did not go {}: {:?}",
                    if *inhibited { "out" } else { "back" },
                    ipvsadm_table(&farm.lab)
                );
            }
        }
        load.wait_for_requests(AFTER_EACH_STEP);
    }
    log.start("the end of the series");
    log
}

/// What refused connections in the lab: IPVS answers a connection it has no
/// real server for with ICMP port unreachable; a backend with no listener
/// answers with a reset.
fn refusals(farm: &Farm, backends: usize) -> String {
    let counters = "nstat -asz IcmpOutDestUnreachs TcpOutRsts | grep -v '^#'";
    let mut out = format!("director: {}", farm.lab.sh(counters).replace('\n', "; "));
    for n in 1..=backends {
        out.push_str(&format!(
            "\nweb{n}: {}",
            farm.backend(n).sh(counters).replace('\n', "; ")
        ));
    }
    out.push('\n');
    out
}

/// How many connections IPVS sent to `dest` may still carry a request: those in
/// their handshake or established. A backend closes only after its answer and a
/// client only after reading it, so a connection past that (FIN_WAIT,
/// TIME_WAIT, …) has had its answer.
fn requests_in_flight(lab: &Lab, dest: &str) -> usize {
    lab.sh("ipvsadm -Lnc")
        .lines()
        .filter(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() == 6
                && words[5] == dest
                && matches!(
                    words[2],
                    "NONE" | "SYN_SENT" | "SYN_RECV" | "SYNACK" | "ESTABLISHED"
                )
        })
        .count()
}

/// The weight of real server `dest` of the loaded VIP.
fn weight(lab: &Lab, dest: &str) -> Option<u32> {
    let table = ipvsadm_table(lab);
    let service = table.iter().find(|s| s[0].split(' ').nth(1) == Some(VIP))?;
    service[1..].iter().find_map(|line| {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["->", address, _, weight, ..] if address == dest => weight.parse().ok(),
            _ => None,
        }
    })
}

/// Asserts that no apply touched the loaded service itself.
#[track_caller]
fn assert_service_never_set(steps: &Steps) {
    let edit = format!("set service tcp {VIP}");
    for plan in &steps.plans {
        assert!(!plan.contains(&edit), "{plan}");
    }
}

/// Makes backend `n`'s health check fail (`true`) or pass: an nft table in its
/// namespace resets the connections that come from the director's own address
/// on its link (the checks); the clients' connections, which NAT leaves with the
/// client's address, are answered all along.
fn check_fails(farm: &Farm, n: usize, fails: bool) {
    let backend = farm.backend(n);
    if fails {
        backend.sh(&format!(
            "nft add table inet flap && \
             nft add chain inet flap input '{{ type filter hook input priority 0; }}' && \
             nft add rule inet flap input ip saddr 10.0.{n}.1 tcp dport 80 reject with tcp reset"
        ));
    } else {
        backend.sh("nft delete table inet flap");
    }
}

/// Starts `lbconsole daemon` and waits until it checks the servers and publishes
/// their health.
fn start_checking(lab: &Lab) -> Daemon {
    let daemon = start_daemon(lab);
    let socket = lbconsole::health::publish::socket_path(lab.state_dir());
    assert!(
        wait_until(SLOW, || socket.exists()),
        "the daemon did not start checking:\n{}",
        daemon.log()
    );
    daemon
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn weight_server_and_director_changes_under_load_fail_no_request() {
    let mut farm = farm("load-applies", 4);
    let _backends = Backends::start(&mut farm, 4);
    apply(&farm, &lvs(EQUAL, false, ""));
    let load = Load::start(&farm);
    let steps = run(&farm, &load, &series(), false);
    let (tally, elapsed) = load.finish();
    assert_no_request_failed(&tally, elapsed, &steps, || refusals(&farm, 4));
    assert!(
        tally.backends.get("web4").is_some_and(|&n| n > 0),
        "web4 took no request while it was in: {:?}",
        tally.backends
    );
    assert_service_never_set(&steps);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn draining_then_removing_a_server_under_load_fails_no_request() {
    use Step::*;
    let mut farm = farm("load-drain", 3);
    let _backends = Backends::start(&mut farm, 3);
    apply(&farm, &lvs(EQUAL, false, ""));
    let load = Load::start(&farm);
    let steps = run(
        &farm,
        &load,
        &[
            Apply {
                what: "drain web3",
                servers: &[(1, 1), (2, 1), (3, 0)],
                others: "",
            },
            Drained(3),
            Apply {
                what: "remove web3",
                servers: &[(1, 1), (2, 1)],
                others: "",
            },
        ],
        false,
    );
    let (tally, elapsed) = load.finish();
    assert_no_request_failed(&tally, elapsed, &steps, || refusals(&farm, 3));
    assert_service_never_set(&steps);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn applies_while_a_health_check_flaps_under_load_fail_no_request() {
    let mut farm = farm("load-flaps", 4);
    let _backends = Backends::start(&mut farm, 4);
    apply(&farm, &lvs(EQUAL, true, ""));
    let daemon = start_checking(&farm.lab);
    let load = Load::start(&farm);
    let steps = run(&farm, &load, &series_with_flaps(), true);
    let (tally, elapsed) = load.finish();
    let (code, log) = stop_daemon(daemon);
    let health: String = log
        .lines()
        .filter(|line| line.contains("health: server "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_no_request_failed(&tally, elapsed, &steps, || {
        format!("{}the daemon:\n{health}", refusals(&farm, 4))
    });
    assert_eq!(code, Some(0), "{log}");
    assert!(
        log.matches("server web3 (10.0.3.2:80) of director web is down")
            .count()
            >= 3,
        "{log}"
    );
    assert_service_never_set(&steps);
}

/// A client connection kept alive in the client's namespace, on a thread that
/// sends a request each time it is asked to.
struct KeptAlive {
    asks: std::sync::mpsc::Sender<()>,
    answers: std::sync::mpsc::Receiver<Result<String, String>>,
    thread: Option<JoinHandle<()>>,
}

impl KeptAlive {
    /// Opens connections to `vip` until one is answered by `backend`, and keeps
    /// that one.
    fn open_to(farm: &Farm, vip: &str, backend: &str) -> KeptAlive {
        let (asks, asked) = std::sync::mpsc::channel::<()>();
        let (answer, answers) = std::sync::mpsc::channel();
        let (netns, vip, backend) = (
            farm.client.name().to_owned(),
            vip.parse::<SocketAddr>().expect("a VIP"),
            backend.to_owned(),
        );
        let thread = thread::spawn(move || {
            enter(&netns);
            let mut kept = None;
            for _ in 0..30 {
                let Ok(mut stream) = TcpStream::connect_timeout(&vip, TIMEOUT) else {
                    continue;
                };
                if ask(&mut stream).as_deref() == Ok(backend.as_str()) {
                    kept = Some(stream);
                    break;
                }
            }
            let Some(mut stream) = kept else {
                let _ = answer.send(Err(format!("no connection reached {backend}")));
                return;
            };
            let _ = answer.send(Ok(backend));
            while asked.recv().is_ok() {
                if answer.send(ask(&mut stream)).is_err() {
                    break;
                }
            }
        });
        let kept = KeptAlive {
            asks,
            answers,
            thread: Some(thread),
        };
        let opened = kept
            .answers
            .recv_timeout(SLOW)
            .expect("the kept-alive client");
        opened.expect("a kept-alive connection");
        kept
    }

    /// Another request on the same connection; who answered.
    fn again(&self) -> Result<String, String> {
        self.asks.send(()).map_err(|e| e.to_string())?;
        self.answers.recv_timeout(SLOW).map_err(|e| e.to_string())?
    }

    /// Closes the connection.
    fn close(mut self) {
        let (asks, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.asks, asks));
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the kept-alive client");
        }
    }
}

/// One keep-alive request on `stream`; the backend that answered.
fn ask(stream: &mut TcpStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"))
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    let mut buffer = [0; 1024];
    loop {
        let read = stream.read(&mut buffer).map_err(|e| format!("read: {e}"))?;
        if read == 0 {
            return Err("closed".to_owned());
        }
        answer.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| format!("answer {text:?}"))?;
            if body.len() >= length {
                return Ok(body[..length].to_owned());
            }
        }
    }
}

/// `lbconsole server ARGS…`, which must succeed; what it printed.
fn server(lab: &Lab, args: &[&str]) -> String {
    let mut full = vec!["server"];
    full.extend_from_slice(args);
    let run = Run::of(&mut command(lab, &full));
    assert!(run.success(), "server {args:?}: {run}");
    run.stdout
}

/// `server list --json`: the row of DIRECTOR/SERVER.
fn listed(lab: &Lab, target: &str) -> serde_json::Value {
    let rows: serde_json::Value =
        serde_json::from_str(&server(lab, &["list", "--json"])).expect("JSON");
    let (director, name) = target.split_once('/').expect("DIRECTOR/SERVER");
    rows.as_array()
        .expect("rows")
        .iter()
        .find(|row| row["director"] == director && row["server"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{target} not listed: {rows}"))
}

/// A director with persistence on the same backends, unchecked.
const STICKY: &str = "
director sticky 198.51.100.20:80 TCP
    balance roundrobin
    option persistence timeout 300
    server s1 10.0.1.2:80
    server s2 10.0.2.2:80
    server s3 10.0.3.2:80
";

/// Issue 18's drain, end to end on the real kernel: persistence first (a
/// drained server's templates expire, so its persistent client goes
/// elsewhere), then under load with the daemon checking: `server drain`
/// sends web1 no new connection while a kept-alive one on it is still
/// answered; when that closes web1 becomes disabled. It stays out across an
/// apply of another director, its passing health check and a daemon restart,
/// and `enable` brings it back at its configured weight. A `weight 5` on web2
/// yields to health (weight 0 by `inhibit` while down) and comes back at 5.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_server_drained_under_load_fails_no_request_and_stays_out_until_enabled() {
    let mut farm = farm("load-override", 3);
    let _backends = Backends::start(&mut farm, 3);
    let lab = &farm.lab;
    apply(&farm, &lvs(EQUAL, true, &format!("{OTHERS}{STICKY}")));

    // Persistence: the client sticks to one server, drained it goes elsewhere.
    let sticky = || farm.client.sh("curl -s --max-time 3 http://198.51.100.20/");
    let first = sticky();
    assert_eq!(sticky(), first, "persistence keeps the client on {first}");
    let held = format!("sticky/s{}", &first["web".len()..]);
    server(lab, &["drain", &held]);
    assert_eq!(
        lab.sh("cat /proc/sys/net/ipv4/vs/expire_quiescent_template")
            .trim(),
        "1"
    );
    let after = sticky();
    assert!(
        after.starts_with("web") && after != first,
        "a drained server's persistent client went to {after:?}, not elsewhere"
    );
    server(lab, &["enable", &held]);

    let daemon = start_checking(lab);
    let load = Load::start(&farm);
    let mut steps = Steps::default();
    let kept = KeptAlive::open_to(&farm, VIP, "web1");
    steps.start("server drain web/web1");
    let said = server(lab, &["drain", "web/web1", "--note", "kernel upgrade"]);
    assert!(said.contains("server web1 of web drained by "), "{said}");
    let drained_at = wall_clock();
    steps.start("load while web1 drains");
    load.wait_for_requests(50);
    assert_eq!(
        kept.again(),
        Ok("web1".to_owned()),
        "the kept-alive connection"
    );
    let row = listed(lab, "web/web1");
    assert_eq!(row["override"]["state"], "drain", "{row}");
    assert_eq!(row["ipvs_weight"], 0, "{row}");
    assert!(row["active_connections"].as_u64() >= Some(1), "{row}");
    assert!(
        load.last_sent("web1").is_none_or(|sent| sent < drained_at),
        "web1 took a new connection after the drain"
    );

    steps.start("close the kept-alive connection");
    kept.close();
    // The file, not `server list`: a process every 50 ms would starve the
    // emulated CPU that the load needs.
    let overrides = lbconsole::store::overrides::path(lab.state_dir());
    let disabled = wait_until(SLOW, || {
        std::fs::read_to_string(&overrides).is_ok_and(|text| text.contains("state = \"disable\""))
    });
    assert!(disabled, "web1 not disabled:\n{}", daemon.log());
    assert_eq!(listed(lab, "web/web1")["override"]["state"], "disable");
    assert_eq!(
        weight(lab, "10.0.1.2:80"),
        None,
        "a disabled server is out of IPVS"
    );

    steps.start("apply another director");
    apply(
        &farm,
        &lvs(EQUAL, true, &format!("{OTHERS_CHANGED}{STICKY}")),
    );
    steps.start("web2 at weight 5, then its check fails");
    server(lab, &["weight", "web/web2", "5"]);
    assert_eq!(weight(lab, "10.0.2.2:80"), Some(5));
    check_fails(&farm, 2, true);
    let inhibited = wait_until(SLOW, || weight(lab, "10.0.2.2:80") == Some(0));
    assert!(inhibited, "down beats weight 5:\n{}", daemon.log());
    steps.start("web2's check passes");
    check_fails(&farm, 2, false);
    let back = wait_until(SLOW, || weight(lab, "10.0.2.2:80") == Some(5));
    assert!(
        back,
        "web2 back at its override's weight:\n{}",
        daemon.log()
    );
    assert_eq!(
        weight(lab, "10.0.1.2:80"),
        None,
        "web1 stays out, healthy or not"
    );
    load.wait_for_requests(25);
    let (tally, elapsed) = load.finish();
    assert_no_request_failed(&tally, elapsed, &steps, || refusals(&farm, 3));

    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
    let daemon = start_checking(lab);
    assert_eq!(
        weight(lab, "10.0.1.2:80"),
        None,
        "still out after a restart"
    );
    assert_eq!(
        weight(lab, "10.0.2.2:80"),
        Some(5),
        "still 5 after a restart"
    );
    server(lab, &["enable", "web/web1"]);
    server(lab, &["enable", "web/web2"]);
    assert_eq!(weight(lab, "10.0.1.2:80"), Some(1));
    assert_eq!(weight(lab, "10.0.2.2:80"), Some(1));
    let (code, log) = stop_daemon(daemon);
    assert_eq!(code, Some(0), "{log}");
}
