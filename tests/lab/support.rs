//! What a kernel test needs: a network namespace of its own in the lab VM, config and
//! state directories, commands run in that namespace, peer namespaces to talk to, and
//! a snapshot of the kernel's network state to compare.
//!
//! ```ignore
//! let lab = Lab::new("bond-failover");          // this thread now has its own netns
//! let peer = lab.netns("peer");                 // a named namespace to talk to
//! lab.veth("eth1", "p1", &peer);                // eth1 here, p1 over there
//! peer.bridge("br0", &["p1"]);
//! peer.ip(&["addr", "add", "198.51.100.2/24", "dev", "br0"]);
//! lab.write_config(NETWORK, "", "");
//! let before = lab.dump();
//! assert!(lab.lbconsole(&["apply"]).success());
//! ```
//!
//! Isolation. [`Lab::new`] moves the calling thread (and so everything it spawns
//! afterwards: `ip`, `lbconsole`, threads) into a fresh network namespace, and into a
//! private mount namespace whose `/sys` is remounted so that `/sys/class/net` shows the
//! new namespace, as `ip netns exec` does. Two tests may create the same interface
//! names; the VM's own namespace is never touched. `Drop` deletes the named
//! namespaces, puts the thread back where it was and removes the directories; the
//! test's namespace and every interface in it vanish with the last reference.
//!
//! Things to know:
//! - One `Lab` per thread at a time (checked). Threads that existed before
//!   `Lab::new` stay outside; threads spawned afterwards by the test are inside.
//! - `/proc/net` follows the *process*, not the thread: from the test thread itself
//!   read `/proc/thread-self/net/...` (or run a command, which is its own process).
//! - A slave must be down to be enslaved ("Device can not be enslaved while up"):
//!   [`Lab::veth`] leaves the local end down for that reason.
//! - [`Lab::dump`] is `ip`'s JSON as it is, but for bridge timers (clocks), and IPv6
//!   duplicate address detection is off in the test's namespace (its `tentative`
//!   flag clears by itself). Carrier, bond and LACP states settle some time after a
//!   change: [`wait_until`] they have before comparing dumps.
//! - Addresses: any will do; traffic stays between this test's namespaces inside a
//!   VM that has no network device. The examples use the documentation ranges.
#![allow(dead_code)] // each test module uses a different part of the toolbox

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// One test's private corner of the lab VM. See the module documentation.
pub struct Lab {
    id: String,
    root: PathBuf,
    config_dir: PathBuf,
    state_dir: PathBuf,
    namespaces: RefCell<Vec<String>>,
    home: Home,
    /// A lab belongs to the thread it moved: not `Send`.
    _thread: PhantomData<*const ()>,
}

impl Lab {
    /// Moves this thread into a fresh network namespace with `lo` up, and makes the
    /// config and state directories. `name` is short and tells the test apart in
    /// names the VM sees (namespaces, directories).
    pub fn new(name: &str) -> Lab {
        assert!(
            !ACTIVE.get(),
            "one Lab per test thread: this thread already has one"
        );
        let home = Home::save();
        enter_fresh_namespaces();
        ACTIVE.set(true);

        let id = format!(
            "{name}-{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let root = std::env::temp_dir().join(format!("lbconsole-lab-{id}"));
        let lab = Lab {
            config_dir: root.join("config"),
            state_dir: root.join("state"),
            root,
            id,
            namespaces: RefCell::new(Vec::new()),
            home,
            _thread: PhantomData,
        };
        // From here on `Drop` undoes whatever is done.
        fs::create_dir_all(&lab.config_dir).expect("create the config dir");
        fs::create_dir_all(&lab.state_dir).expect("create the state dir");
        lab.ip(&["link", "set", "lo", "up"]);
        // IPv6 duplicate address detection marks every new link-local address
        // `tentative` for a second or so, then clears it by itself: a change that
        // nobody made, which would make two dumps differ. The test's namespace skips
        // it (nothing else here can hold the same address).
        for conf in ["all", "default"] {
            lab.sysctl(&format!("net/ipv6/conf/{conf}/accept_dad"), "0");
        }
        lab
    }

    /// The unique name of this lab (test name, process id, counter).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Runs `ip ARGS` in the test's namespace and returns its stdout; panics with
    /// stdout and stderr when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args).expect_success()
    }

    /// Runs `ip ARGS` in the test's namespace, failing or not.
    pub fn try_ip(&self, args: &[&str]) -> Run {
        Run::of(Command::new("ip").args(args))
    }

    /// Runs `sh -c SCRIPT` in the test's namespace and returns its stdout; panics
    /// with stdout and stderr when it fails.
    pub fn sh(&self, script: &str) -> String {
        self.try_sh(script).expect_success()
    }

    /// Runs `sh -c SCRIPT` in the test's namespace, failing or not.
    pub fn try_sh(&self, script: &str) -> Run {
        Run::of(Command::new("sh").args(["-c", script]))
    }

    /// Writes `VALUE` to `/proc/sys/net/...` of the test's namespace; `key` is the
    /// path below `/proc/sys/`, e.g. `net/ipv4/ip_forward`.
    pub fn sysctl(&self, key: &str, value: &str) {
        // /proc/sys/net belongs to the namespace of the thread that opens it: ours.
        let path = Path::new("/proc/sys").join(key);
        fs::write(&path, value).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Creates the named namespace `<lab id>-<name>` (with `lo` up), deleted when the
    /// lab is dropped.
    pub fn netns(&self, name: &str) -> Netns {
        let netns = Netns {
            name: format!("{}-{name}", self.id),
        };
        self.ip(&["netns", "add", &netns.name]);
        self.namespaces.borrow_mut().push(netns.name.clone());
        netns.ip(&["link", "set", "lo", "up"]);
        netns
    }

    /// Creates the named namespaces `<lab id>-<name>` for each of `names` with
    /// one `ip -batch` (each program's start costs about half a second in the
    /// VM), deleted when the lab is dropped. Unlike [`Lab::netns`], `lo` is
    /// left down: bring it up with each namespace's first commands.
    pub fn netns_many(&self, names: &[&str]) -> Vec<Netns> {
        let namespaces: Vec<Netns> = names
            .iter()
            .map(|name| Netns {
                name: format!("{}-{name}", self.id),
            })
            .collect();
        let batch: String = namespaces
            .iter()
            .map(|netns| format!("netns add {}\n", netns.name))
            .collect();
        self.ip_batch("netns-add", &batch);
        self.namespaces
            .borrow_mut()
            .extend(namespaces.iter().map(|netns| netns.name.clone()));
        namespaces
    }

    /// Runs `ip -batch` on `commands` (one `ip` command per line, without
    /// the `ip`) in the test's namespace; panics when one fails. `name` names
    /// the batch file in the lab's directory.
    pub fn ip_batch(&self, name: &str, commands: &str) {
        let file = self.root.join(format!("{name}.ip"));
        fs::write(&file, commands).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        self.ip(&["-batch", &file.to_string_lossy()]);
    }

    /// Creates a veth pair: `here` in the test's namespace, left down (a bond slave
    /// must be down to be enslaved), and `peer` in `netns`, up.
    pub fn veth(&self, here: &str, peer: &str, netns: &Netns) {
        self.ip(&[
            "link",
            "add",
            here,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            &netns.name,
        ]);
        netns.ip(&["link", "set", peer, "up"]);
    }

    /// The `ip -d -j link show dev NAME` object of one link; panics when it does not
    /// exist.
    pub fn link(&self, name: &str) -> Value {
        let links = json(&self.ip(&["-d", "-j", "link", "show", "dev", name]));
        links[0].clone()
    }

    /// Whether the link exists in the test's namespace.
    pub fn has_link(&self, name: &str) -> bool {
        self.try_ip(&["link", "show", "dev", name]).success()
    }

    /// Writes `network.conf`, `flows.conf` and `lvs.conf` into the config dir.
    pub fn write_config(&self, network: &str, flows: &str, lvs: &str) {
        for (file, text) in [
            ("network.conf", network),
            ("flows.conf", flows),
            ("lvs.conf", lvs),
        ] {
            fs::write(self.config_dir.join(file), text).expect("write the config");
        }
    }

    /// Runs the real `lbconsole` binary in the test's namespace with the test's
    /// `--config-dir` and `--state-dir` (and no settings from the environment).
    pub fn lbconsole(&self, args: &[&str]) -> Run {
        Run::of(
            Command::new(lbconsole_binary())
                .args(args)
                .arg("--config-dir")
                .arg(&self.config_dir)
                .arg("--state-dir")
                .arg(&self.state_dir)
                .env_remove("LBCONSOLE_CONFIG_DIR")
                .env_remove("LBCONSOLE_STATE_DIR"),
        )
    }

    /// The test namespace's whole network state, to compare with `==` (or
    /// [`assert_same_kernel`]).
    pub fn dump(&self) -> KernelDump {
        let mut links = json(&self.ip(&["-d", "-j", "link", "show"]));
        drop_clocks(&mut links);
        KernelDump {
            links,
            addresses: json(&self.ip(&["-j", "addr", "show"])),
            routes: json(&self.ip(&["-j", "route", "show", "table", "all"])),
            rules: json(&self.ip(&["-j", "rule", "show"])),
        }
    }

    /// Starts `sh -c SCRIPT` in the test's namespace in the background; it is
    /// killed when the returned handle is dropped.
    pub fn spawn(&self, script: &str) -> Background {
        Background::start(Command::new("sh").args(["-c", script]))
    }

    /// Whether one `ping -c 1 -W 1 ADDRESS` from `from` (a peer namespace, or the
    /// test's own namespace with `None`) gets an answer.
    pub fn ping(&self, from: Option<&Netns>, address: &str) -> bool {
        let ping = ["ping", "-n", "-q", "-c", "1", "-W", "1", address];
        let mut command = match from {
            None => Command::new(ping[0]),
            Some(netns) => netns.command(ping[0]),
        };
        Run::of(command.args(&ping[1..])).success()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // No panics here: this runs while a failed test unwinds. One `ip
        // -force -batch` deletes them all (a program's start is slow in the
        // VM), going on after a failure.
        let batch: String = self
            .namespaces
            .borrow()
            .iter()
            .rev()
            .map(|name| format!("netns delete {name}\n"))
            .collect();
        if !batch.is_empty() {
            let file = self.root.join("netns-delete.ip");
            let run = match fs::write(&file, batch) {
                Ok(()) => Some(Run::of(
                    Command::new("ip").args(["-force", "-batch"]).arg(&file),
                )),
                Err(e) => {
                    eprintln!("lab: cannot write {}: {e}", file.display());
                    None
                }
            };
            if let Some(run) = run.filter(|run| !run.success()) {
                eprintln!("lab: cannot delete every namespace: {run}");
            }
        }
        self.home.restore();
        ACTIVE.set(false);
        if let Err(e) = fs::remove_dir_all(&self.root) {
            eprintln!("lab: cannot remove {}: {e}", self.root.display());
        }
    }
}

/// A named network namespace (`ip netns`), created by [`Lab::netns`].
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The full name, as `ip netns` and `ip -n` know it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME PROGRAM`: add the arguments and run it.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `ip ARGS` in this namespace and returns its stdout; panics with stdout and
    /// stderr when it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        self.try_ip(args).expect_success()
    }

    pub fn try_ip(&self, args: &[&str]) -> Run {
        Run::of(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// Runs `sh -c SCRIPT` in this namespace and returns its stdout; panics with
    /// stdout and stderr when it fails.
    pub fn sh(&self, script: &str) -> String {
        self.try_sh(script).expect_success()
    }

    pub fn try_sh(&self, script: &str) -> Run {
        Run::of(self.command("sh").args(["-c", script]))
    }

    /// Creates bridge `name` (no STP: ports forward at once) with `ports`, all up.
    pub fn bridge(&self, name: &str, ports: &[&str]) {
        self.ip(&[
            "link",
            "add",
            name,
            "type",
            "bridge",
            "stp_state",
            "0",
            "forward_delay",
            "0",
        ]);
        for port in ports {
            self.ip(&["link", "set", port, "master", name, "up"]);
        }
        self.ip(&["link", "set", name, "up"]);
    }

    /// Whether a TCP socket listens on `port` in this namespace: a server is ready
    /// for connections once it does.
    pub fn listens(&self, port: u16) -> bool {
        !self
            .sh(&format!("ss -H -l -t -n 'sport = :{port}'"))
            .trim()
            .is_empty()
    }

    /// Starts `sh -c SCRIPT` in this namespace in the background (a server, say);
    /// it is killed when the returned handle is dropped.
    pub fn spawn(&self, script: &str) -> Background {
        Background::start(self.command("sh").args(["-c", script]))
    }

    /// Runs `f` on a new thread of the test binary inside this namespace: a
    /// server or client without starting a program (each start reads its
    /// files over the VM's uncached 9p, seconds for Python).
    pub fn thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> thread::JoinHandle<T> {
        let path = format!("/run/netns/{}", self.name);
        let netns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        thread::spawn(move || {
            setns(&netns, libc::CLONE_NEWNET).expect("enter the namespace");
            f()
        })
    }
}

/// An HTTP/1.1 server (keep-alive) on threads of the test binary in a
/// namespace, answering every request with its name: a real server's
/// behaviour without a program's start, which costs seconds in the VM.
/// Dropping it kills it: new connections are refused at once and open ones
/// are closed within 200 ms.
pub struct HttpServer {
    stop: Arc<AtomicBool>,
    accepting: Option<thread::JoinHandle<()>>,
}

impl HttpServer {
    /// Listens on `at` in `netns` (the address must be there) and returns once
    /// it does.
    pub fn start(netns: &Netns, at: SocketAddr, name: &str) -> HttpServer {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let name = Arc::<str>::from(name);
        let (ready, listening) = mpsc::channel();
        let accepting = netns.thread(move || {
            let listener = match TcpListener::bind(at) {
                Ok(listener) => listener,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(listener.set_nonblocking(true));
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (name, stopped) = (name.clone(), stopped.clone());
                        thread::spawn(move || answer(stream, &name, &stopped));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        match listening.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => HttpServer {
                stop,
                accepting: Some(accepting),
            },
            Ok(Err(e)) => panic!("listen on {at}: {e}"),
            Err(_) => panic!("no server on {at} within 10 s"),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Answers each request of one connection with `name` until the client closes
/// it, is silent for 5 minutes, or the server stops. The silence is long: a
/// test may keep a connection open across a failover and a failback, which
/// take tens of seconds in a slow VM, and the server must not be what closes it.
fn answer(stream: TcpStream, name: &str, stopped: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    // Short reads, so that a stopped server closes its connections soon.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut request = Vec::new();
    let mut chunk = [0; 4096];
    let mut silent_since = Instant::now();
    let mut writer = &stream;
    while !stopped.load(Ordering::Relaxed) && silent_since.elapsed() < Duration::from_secs(300) {
        match (&stream).read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                silent_since = Instant::now();
                request.extend_from_slice(&chunk[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        // A GET has no body: each blank line ends one request.
        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            request.drain(..end + 4);
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                name.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// Sends one `GET /` on a keep-alive connection and returns the body of the
/// answer (an [`HttpServer`]'s name). The stream's read timeout bounds it.
pub fn http_get(stream: &TcpStream) -> io::Result<String> {
    let mut writer = stream;
    writer.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n")?;
    let mut answer = Vec::new();
    let mut chunk = [0; 1024];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("Content-Length: "))
                .and_then(|value| value.trim().parse().ok())
                .ok_or_else(|| io::Error::other(format!("no Content-Length in {head:?}")))?;
            if answer.len() >= end + 4 + length {
                let body = &answer[end + 4..end + 4 + length];
                return Ok(String::from_utf8_lossy(body).into_owned());
            }
        }
        match (&*stream).read(&mut chunk)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => answer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A background process, killed on drop.
pub struct Background(Child);

impl Background {
    fn start(command: &mut Command) -> Background {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
        Background(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a command did: exit status, stdout and stderr (lossy UTF-8).
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Killed at [`RUN_LIMIT`]: it hung.
    pub timed_out: bool,
}

/// How long one command may take: far above any apply in the VM, so that a
/// hang fails its test with what the command printed so far, instead of
/// stopping the whole lab run at its timeout with nothing to show.
const RUN_LIMIT: Duration = Duration::from_secs(300);

impl Run {
    /// Runs the command to completion, or kills it at [`RUN_LIMIT`]; panics
    /// only when it cannot be started.
    pub fn of(command: &mut Command) -> Run {
        let shown = format!("{command:?}");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        let stdout = Collected::of(child.stdout.take());
        let stderr = Collected::of(child.stderr.take());
        let deadline = Instant::now() + RUN_LIMIT;
        let (status, timed_out) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (status, false),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = child.kill();
                    break (child.wait().expect("a killed child's status"), true);
                }
            }
        };
        Run {
            command: shown,
            status,
            // After a hang, a descendant may still hold the pipes: take what
            // came so far rather than wait for their end.
            stdout: stdout.text(!timed_out),
            stderr: stderr.text(!timed_out),
            timed_out,
        }
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code; `None` when a signal ended the command.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Stdout when the command succeeded; otherwise panics with everything.
    pub fn expect_success(self) -> String {
        assert!(self.success(), "command failed: {self}");
        self.stdout
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hung = if self.timed_out {
            format!(", killed after {} s", RUN_LIMIT.as_secs())
        } else {
            String::new()
        };
        write!(
            f,
            "{} ({}{hung})\n--- stdout\n{}--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// One pipe of a child, read on a thread of its own as it comes.
struct Collected {
    bytes: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Collected {
    fn of(pipe: Option<impl io::Read + Send + 'static>) -> Self {
        let bytes = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = pipe.map(|mut pipe| {
            let bytes = bytes.clone();
            thread::spawn(move || {
                let mut chunk = [0; 8192];
                while let Ok(n @ 1..) = pipe.read(&mut chunk) {
                    bytes
                        .lock()
                        .expect("pipe bytes")
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        Self { bytes, reader }
    }

    /// What was read; with `to_end`, after the pipe's end.
    fn text(mut self, to_end: bool) -> String {
        if let Some(reader) = self.reader.take().filter(|_| to_end) {
            let _ = reader.join();
        }
        String::from_utf8_lossy(&self.bytes.lock().expect("pipe bytes")).into_owned()
    }
}

/// A namespace's network state as `ip` reports it: `ip -d -j link show`,
/// `ip -j addr show`, `ip -j route show table all` (IPv4 and IPv6, every table) and
/// `ip -j rule show`. `Debug` prints it as JSON; [`KernelDump::diff`] shows what
/// changed.
#[derive(Clone, PartialEq)]
pub struct KernelDump {
    pub links: Value,
    pub addresses: Value,
    pub routes: Value,
    pub rules: Value,
}

impl KernelDump {
    fn sections(&self) -> [(&'static str, &Value); 4] {
        [
            ("links", &self.links),
            ("addresses", &self.addresses),
            ("routes", &self.routes),
            ("rules", &self.rules),
        ]
    }

    /// What differs from `other`, one leaf per line, `-` self and `+` other, named by
    /// its path: `-links[bond0].address = "7e:…"`; empty when the two are equal.
    pub fn diff(&self, other: &KernelDump) -> String {
        let mut out = String::new();
        for ((name, mine), (_, theirs)) in self.sections().into_iter().zip(other.sections()) {
            if mine != theirs {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                flatten(mine, name.to_owned(), &mut a);
                flatten(theirs, name.to_owned(), &mut b);
                out.push_str(&line_diff(&a, &b));
            }
        }
        out
    }
}

impl fmt::Debug for KernelDump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.sections() {
            writeln!(f, "--- {name}\n{}", pretty(value))?;
        }
        Ok(())
    }
}

/// Panics, showing only what changed, unless the two dumps are equal.
#[track_caller]
pub fn assert_same_kernel(before: &KernelDump, after: &KernelDump) {
    assert!(
        before == after,
        "the kernel's network state changed (- before, + after):\n{}",
        before.diff(after)
    );
}

/// The resident memory of process `pid` in KiB (`VmRSS`).
pub fn resident_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .expect("VmRSS")
}

/// Polls `condition` every 50 ms until it holds (true) or `timeout` has passed
/// (false, after one last try).
#[must_use]
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).expect("JSON prints")
}

/// The one normalisation of a dump. A bridge (and its ports) report timers —
/// `gc_timer`, `hello_timer`, `hold_timer`… — that count down by themselves, so two
/// dumps a second apart never agree. They are clocks, not configuration: drop every
/// `*_timer` of a bridge's `info_data` and a bridge port's `info_slave_data`.
/// Everything else is kept: `ip link` without `-s` prints no counters, and bond,
/// slave, carrier and 802.3ad states change only after something happened, though
/// not at once: give them time with [`wait_until`] before a dump that must match.
/// (Measured: an 802.3ad slave without an LACP partner shows `expired` for about 3 s
/// after it comes up, then `defaulted` and `in_sync` for good.)
fn drop_clocks(links: &mut Value) {
    let Some(links) = links.as_array_mut() else {
        return;
    };
    for link in links {
        let info = &mut link["linkinfo"];
        for (kind, data) in [
            ("info_kind", "info_data"),
            ("info_slave_kind", "info_slave_data"),
        ] {
            if info[kind] == "bridge"
                && let Some(data) = info[data].as_object_mut()
            {
                data.retain(|key, _| !key.ends_with("_timer"));
            }
        }
    }
}

/// One line per leaf of `value`, `path = JSON`, in order. An array element is named
/// by what names it in `ip`'s output (`ifname`, an address's `local/prefixlen`, a
/// route's `dst` and table, a rule's `priority`), else by its index.
fn flatten(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                flatten(value, format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                flatten(item, format!("{path}[{}]", element_name(item, index)), out);
            }
        }
        leaf => out.push(format!("{path} = {leaf}")),
    }
}

fn element_name(item: &Value, index: usize) -> String {
    let text = |key: &str| match &item[key] {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    if let Some(name) = text("ifname") {
        name
    } else if let (Some(local), Some(prefix)) = (text("local"), text("prefixlen")) {
        format!("{local}/{prefix}")
    } else if let Some(dst) = text("dst") {
        match text("table") {
            Some(table) => format!("{dst} table {table}"),
            None => dst,
        }
    } else if let Some(priority) = text("priority") {
        format!("priority {priority}")
    } else {
        index.to_string()
    }
}

/// A plain longest-common-subsequence diff: `-` lines only in `a`, `+` lines only in
/// `b`; unchanged lines are left out.
fn line_diff(a: &[String], b: &[String]) -> String {
    // lcs[i][j]: length of the common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// Where the thread was before `Lab::new`: its namespaces and working directory.
struct Home {
    net: File,
    mnt: File,
    cwd: PathBuf,
}

impl Home {
    fn save() -> Home {
        let open = |ns: &str| {
            let path = format!("/proc/thread-self/ns/{ns}");
            File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"))
        };
        Home {
            net: open("net"),
            mnt: open("mnt"),
            cwd: std::env::current_dir().expect("the working directory"),
        }
    }

    /// Back to the saved namespaces. The mount namespace refuses (EINVAL) while a
    /// thread the test spawned is still alive (they share the thread's filesystem
    /// context): then this thread stays in the private mount namespace, which is
    /// harmless as the test's thread ends with the test.
    fn restore(&self) {
        if let Err(e) = setns(&self.net, libc::CLONE_NEWNET) {
            eprintln!("lab: cannot return to the original network namespace: {e}");
        }
        if setns(&self.mnt, libc::CLONE_NEWNS).is_ok() {
            // Entering a mount namespace moves the working directory to its root.
            if let Err(e) = std::env::set_current_dir(&self.cwd) {
                eprintln!("lab: cannot return to {}: {e}", self.cwd.display());
            }
        }
    }
}

/// `unshare(CLONE_NEWNET | CLONE_NEWNS)` for this thread, then a fresh `/sys` for the
/// new network namespace, kept from propagating back to the VM (as `ip netns exec`).
fn enter_fresh_namespaces() {
    // SAFETY: unshare only changes this thread's namespaces.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        panic!(
            "unshare(CLONE_NEWNET | CLONE_NEWNS): {} (the lab tests run as root in the \
             lab VM: tests/lab/run)",
            io::Error::last_os_error()
        );
    }
    mount(None, "/", None, libc::MS_SLAVE | libc::MS_REC).expect("mount --make-rslave /");
    // SAFETY: a plain syscall on a valid C string.
    let sys = CString::new("/sys").expect("no NUL");
    if unsafe { libc::umount2(sys.as_ptr(), libc::MNT_DETACH) } != 0 {
        panic!("umount /sys: {}", io::Error::last_os_error());
    }
    mount(Some("sysfs"), "/sys", Some("sysfs"), 0).expect("mount a new /sys");
}

fn mount(
    source: Option<&str>,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
) -> io::Result<()> {
    let c = |s: &str| CString::new(s).expect("no NUL");
    let source = source.map(c);
    let target = c(target);
    let fstype = fstype.map(c);
    let ptr = |s: &Option<CString>| s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is a valid C string or null, as mount(2) allows.
    let result = unsafe {
        libc::mount(
            ptr(&source),
            target.as_ptr(),
            ptr(&fstype),
            flags,
            std::ptr::null(),
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn setns(file: &File, nstype: libc::c_int) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::setns(file.as_raw_fd(), nstype) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `lbconsole` the lab tests run: a copy without debug information in the
/// VM's own file system (memory), made once per run. The VM reads the host's
/// files over 9p without a cache, so each start of the 147 MB debug binary reads
/// it again: measured there, `apply --dry-run` took 12 s from the host's files
/// and 2 s from the copy.
pub fn lbconsole_binary() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let from = env!("CARGO_BIN_EXE_lbconsole");
        let to = std::env::temp_dir().join(format!("lbconsole-lab-{}", std::process::id()));
        let stripped = Command::new("objcopy")
            .args(["--strip-debug", from])
            .arg(&to)
            .status()
            .is_ok_and(|status| status.success());
        if !stripped {
            fs::copy(from, &to).expect("copy lbconsole");
        }
        to
    })
}

/// The diff itself is plain code: tested on the host.
#[test]
fn a_dump_diff_names_each_change_by_its_path() {
    let dump = |mtu: u32, master: Option<&str>| {
        let mut eth1 = serde_json::json!({"ifname": "eth1", "mtu": 1500, "flags": ["UP"]});
        if let Some(master) = master {
            eth1["master"] = master.into();
        }
        KernelDump {
            links: serde_json::json!([eth1, {"ifname": "bond0", "mtu": mtu}]),
            addresses: serde_json::json!([{"ifname": "bond0", "addr_info": [
                {"local": "198.51.100.1", "prefixlen": 24, "scope": "global"}]}]),
            routes: serde_json::json!([{"dst": "default", "table": "200", "gateway": "x"}]),
            rules: serde_json::json!([{"priority": 0, "table": "local"}]),
        }
    };
    assert_eq!(dump(1500, None).diff(&dump(1500, None)), "");
    assert_eq!(
        dump(1500, None).diff(&dump(9000, Some("bond0"))),
        "+links[eth1].master = \"bond0\"\n\
         -links[bond0].mtu = 1500\n\
         +links[bond0].mtu = 9000\n"
    );
    let mut other = dump(1500, None);
    other.addresses[0]["addr_info"][0]["scope"] = "link".into();
    other.routes[0]["gateway"] = "y".into();
    other.rules[0]["table"] = "main".into();
    assert_eq!(
        dump(1500, None).diff(&other),
        "-addresses[bond0].addr_info[198.51.100.1/24].scope = \"global\"\n\
         +addresses[bond0].addr_info[198.51.100.1/24].scope = \"link\"\n\
         -routes[default table 200].gateway = \"x\"\n\
         +routes[default table 200].gateway = \"y\"\n\
         -rules[priority 0].table = \"local\"\n\
         +rules[priority 0].table = \"main\"\n"
    );
}
