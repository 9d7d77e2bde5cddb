//! The daemon publishes the servers' health on a unix socket in the state
//! directory: a client connects and reads one JSON document, the daemon closes.
//! `status`, `apply`, the console and the confirm guard read it from there.
//!
//! Readers never compete with the checks: the publisher answers them on a
//! thread and runtime of its own, from one document encoded when health
//! changes, to a bounded number of readers at a time.

use std::collections::VecDeque;
use std::fs::Permissions;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::state::Health;

/// The socket's name in the state directory.
pub const SOCKET: &str = "health.sock";

/// Who may read health: root and the state directory's group (`status` run by
/// an operator in that group), whatever the daemon's umask.
const SOCKET_MODE: u32 = 0o660;

/// How long the daemon gives a reader to take the whole document.
const WRITE_DEADLINE: Duration = Duration::from_secs(2);

/// How long a reader waits for the whole document, however it trickles in:
/// the daemon's own deadline and room for a busy machine.
const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Readers answered at once. `status`, the consoles, an apply and its guard
/// are a handful; each reader that does not read holds a socket buffer of the
/// kernel's memory (about 200 KiB) until the write deadline.
const MAX_READERS: usize = 128;

/// The most a reader takes in. A server is about 120 bytes of JSON, so a farm
/// of 12,000 servers (the most BENCHMARKS.md checks) is under 2 MiB: 32 MiB
/// leaves room for far larger farms or long names, and keeps `status` small
/// when something else answers on the socket.
const MAX_DOCUMENT: usize = 32 << 20;

/// Between two tries to accept after accept failed, typically for want of
/// file descriptors, which a retry at once would not find either.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);

/// One server as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReport {
    pub director: String,
    pub server: String,
    pub address: IpAddr,
    pub port: u16,
    /// A server that is not checked is always up.
    pub checked: bool,
    pub sorry: bool,
    pub health: Health,
}

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// The document readers get, encoded once for all of them.
type Document = Arc<Mutex<Arc<[u8]>>>;

/// The daemon's side of the socket: answers every reader with the servers'
/// health as last published. Stops and removes the socket when dropped.
pub struct Publisher {
    state_dir: PathBuf,
    document: Document,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Publisher {
    /// Listens on the socket, replacing one a previous daemon left behind, and
    /// answers with `servers` until told otherwise.
    pub fn start(state_dir: &Path, servers: &[ServerReport]) -> io::Result<Publisher> {
        let document = Arc::new(Mutex::new(encode(servers)?));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = bind(state_dir, SOCKET)?;
        let (stop, stopped) = oneshot::channel();
        let spawned = thread::Builder::new()
            .name("health-publisher".into())
            .spawn({
                let document = Arc::clone(&document);
                move || {
                    runtime.block_on(async {
                        tokio::select! {
                            () = serve(listener, document) => {}
                            _ = stopped => {}
                        }
                    });
                }
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(error) => {
                let _ = std::fs::remove_file(socket_path(state_dir));
                return Err(error);
            }
        };
        Ok(Publisher {
            state_dir: state_dir.to_owned(),
            document,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Answers with `servers` from now on; a reader being answered gets the
    /// document it started with.
    pub fn publish(&self, servers: &[ServerReport]) {
        match encode(servers) {
            Ok(document) => *lock(&self.document) = document,
            Err(error) => tracing::error!("health: {error}; readers get the previous health"),
        }
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(socket_path(&self.state_dir));
    }
}

fn encode(servers: &[ServerReport]) -> io::Result<Arc<[u8]>> {
    serde_json::to_vec(servers)
        .map(Arc::from)
        .map_err(|error| io::Error::other(format!("cannot encode the servers' health: {error}")))
}

/// The value behind `mutex`: a panic while it was held left data, not broken
/// invariants, for every mutex the daemon's threads share.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Listens on socket `name` of the state directory with [`SOCKET_MODE`]
/// whatever the umask: bound under a name of its own, given its mode, then
/// renamed over `name` (replacing one a killed daemon left behind). Nobody
/// finds the socket with another mode, and the umask, which is the whole
/// process's, is left alone.
pub fn bind(state_dir: &Path, name: &str) -> io::Result<std::os::unix::net::UnixListener> {
    let path = state_dir.join(name);
    let fresh = state_dir.join(format!(".{name}.{}", std::process::id()));
    match std::fs::remove_file(&fresh) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(&fresh)?;
    let placed = listener
        .set_nonblocking(true)
        .and_then(|()| std::fs::set_permissions(&fresh, Permissions::from_mode(SOCKET_MODE)))
        .and_then(|()| std::fs::rename(&fresh, &path));
    if let Err(error) = placed {
        let _ = std::fs::remove_file(&fresh);
        return Err(error);
    }
    Ok(listener)
}

/// Accepts readers until the runtime ends, each answered on a task of its
/// own. Beyond [`MAX_READERS`] the oldest reader is let go: it had the longest
/// to read, and a reader that reads is done within milliseconds, so idle
/// readers cannot keep one that reads from its answer.
async fn serve(listener: std::os::unix::net::UnixListener, document: Document) {
    let listener = match UnixListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!("health: cannot listen on {SOCKET}: {error}");
            return;
        }
    };
    let mut readers: VecDeque<AbortHandle> = VecDeque::with_capacity(MAX_READERS);
    let mut failing = false;
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if std::mem::take(&mut failing) {
                    tracing::info!("health: accepting readers of {SOCKET} again");
                }
                readers.retain(|reader| !reader.is_finished());
                if readers.len() >= MAX_READERS
                    && let Some(oldest) = readers.pop_front()
                {
                    oldest.abort();
                }
                let document = Arc::clone(&lock(&document));
                readers.push_back(tokio::spawn(answer(stream, document)).abort_handle());
            }
            Err(error) => {
                // The failed connection stays queued, so trying again at once
                // fails again at once.
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(
                        "health: cannot accept readers of {SOCKET}: {error}; trying again every {} ms",
                        ACCEPT_BACKOFF.as_millis()
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn answer(mut stream: UnixStream, document: Arc<[u8]>) {
    match tokio::time::timeout(WRITE_DEADLINE, stream.write_all(&document)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!("health: a reader of {SOCKET} went away: {error}"),
        Err(_) => tracing::debug!(
            "health: a reader of {SOCKET} did not read within {} s",
            WRITE_DEADLINE.as_secs()
        ),
    }
}

/// Where an apply learns which servers the health checker keeps out of IPVS.
#[derive(Debug, Clone, Default)]
pub enum HealthSource {
    /// Ask the daemon over its socket (no daemon: every server counts as up).
    #[default]
    Daemon,
    /// The daemon itself, which cannot ask its own socket while it applies.
    Known(Vec<ServerReport>),
}

impl HealthSource {
    pub fn reports(&self, state_dir: &Path) -> Vec<ServerReport> {
        match self {
            Self::Known(reports) => reports.clone(),
            Self::Daemon => read(state_dir)
                .unwrap_or_else(|error| {
                    tracing::warn!("health: {error}; the apply counts every server as up");
                    None
                })
                .unwrap_or_default(),
        }
    }
}

/// Why the daemon's answer could not be had; each names the socket.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{} sent more than {} MiB, more than any farm's health",
        path.display(),
        MAX_DOCUMENT >> 20
    )]
    TooLarge { path: PathBuf },
    #[error("{} sent no complete answer within {} s", path.display(), READ_DEADLINE.as_secs())]
    Deadline { path: PathBuf },
    #[error("{} sent what lbconsole does not read: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// The daemon's report; `None` when no daemon is listening. Takes at most
/// [`MAX_DOCUMENT`] bytes within [`READ_DEADLINE`] in all.
pub fn read(state_dir: &Path) -> Result<Option<Vec<ServerReport>>, ReadError> {
    let path = socket_path(state_dir);
    let Some(document) = ask(&path, b"")? else {
        return Ok(None);
    };
    serde_json::from_slice(&document)
        .map(Some)
        .map_err(|source| ReadError::Malformed { path, source })
}

/// Sends `request` to the daemon's socket `path` and reads its whole answer;
/// `None` when no daemon is listening. Takes at most [`MAX_DOCUMENT`] bytes
/// within [`READ_DEADLINE`] in all.
pub fn ask(path: &Path, request: &[u8]) -> Result<Option<Vec<u8>>, ReadError> {
    let path = path.to_owned();
    let deadline = Instant::now() + READ_DEADLINE;
    let io_error = |source| ReadError::Io {
        path: path.clone(),
        source,
    };
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(io_error(error)),
    };
    if !request.is_empty() {
        stream
            .set_write_timeout(Some(READ_DEADLINE))
            .map_err(io_error)?;
        stream.write_all(request).map_err(io_error)?;
    }
    let mut document = Vec::new();
    let mut chunk = vec![0; 64 << 10];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadError::Deadline { path });
        }
        stream.set_read_timeout(Some(left)).map_err(io_error)?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) if document.len() + read > MAX_DOCUMENT => {
                return Err(ReadError::TooLarge { path });
            }
            Ok(read) => document.extend_from_slice(&chunk[..read]),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ReadError::Deadline { path });
            }
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(Some(document))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener as StdListener, UnixStream as StdStream};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread;
    use std::time::Instant;

    use super::*;
    use crate::health::run::raise_open_file_limit;

    /// Set in a child process of this test binary that runs one test's part
    /// that changes the whole process (umask, the limit of open files).
    const CHILD: &str = "LBCONSOLE_PUBLISH_TEST_CHILD";

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lbc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a directory");
        dir
    }

    /// `count` servers, about 100 bytes each as JSON.
    fn farm(count: usize) -> Vec<ServerReport> {
        (0..count)
            .map(|n| ServerReport {
                director: format!("director{}", n / 10),
                server: format!("server{n}"),
                address: std::net::Ipv4Addr::from(0x0a00_0000 + n as u32).into(),
                port: 80,
                checked: true,
                sorry: false,
                health: if n % 7 == 0 { Health::Down } else { Health::Up },
            })
            .collect()
    }

    /// Runs `test` again in a child process of this test binary with [`CHILD`]
    /// set to `dir`; its output once it ended (within a minute).
    fn run_in_child(test: &str, dir: &Path) -> std::process::Child {
        Command::new(std::env::current_exe().expect("the test binary"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the child")
    }

    fn child_dir() -> Option<PathBuf> {
        std::env::var_os(CHILD).map(PathBuf::from)
    }

    /// Sets this process's soft limit of open files.
    fn set_open_file_limit(soft: u64) {
        let set = crate::sys::open_file_limits()
            .and_then(|(_, hard)| crate::sys::set_open_file_limits(soft.min(hard), hard));
        assert!(set.is_ok(), "setrlimit: {}", set.unwrap_err());
    }

    fn open_file_limit() -> u64 {
        let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
        limits
            .lines()
            .find_map(|line| line.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .expect("a limit of open files")
    }

    #[test]
    fn a_reader_gets_what_the_daemon_publishes_and_none_without_a_daemon() {
        let dir = scratch("publishes");
        assert!(read(&dir).expect("no socket is no daemon").is_none());
        // A daemon killed with SIGKILL leaves its socket behind.
        drop(StdListener::bind(socket_path(&dir)).expect("a stale socket"));
        assert!(read(&dir).expect("a stale socket").is_none());

        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let _inside = runtime.enter();
        let servers = farm(3);
        let publisher = Publisher::start(&dir, &servers).expect("a stale socket is replaced");
        let reader = thread::spawn({
            let dir = dir.clone();
            move || read(&dir)
        });
        runtime.block_on(tokio::time::sleep(Duration::from_millis(200)));
        assert_eq!(
            reader.join().expect("the reader").expect("a report"),
            Some(servers)
        );

        drop(publisher);
        assert!(
            !socket_path(&dir).exists(),
            "the daemon takes its socket away"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// What the checker's runtime does while the test runs: ticks, or hogs its
    /// thread as a checker busy with thousands of servers could.
    struct Checker {
        ticks: AtomicU64,
        hog: AtomicBool,
        hogging: AtomicBool,
        stop: AtomicBool,
    }

    #[test]
    fn thousands_of_idle_readers_starve_neither_the_checker_nor_a_reader_that_reads() {
        raise_open_file_limit();
        // Each idle reader costs this process two descriptors, its end and the daemon's.
        let idle = 2_000.min(open_file_limit().saturating_sub(512) / 2) as usize;
        assert!(
            idle >= 1_000,
            "only {idle} descriptors to spare for idle readers"
        );
        let dir = scratch("idle-readers");
        // Larger than a socket's buffer, so that a reader that does not read
        // holds up its write.
        let servers = farm(2_500);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let checker_runtime = runtime.handle().clone();
        let publisher = {
            let _inside = runtime.enter();
            Publisher::start(&dir, &servers).expect("listen")
        };
        let checker = Arc::new(Checker {
            ticks: AtomicU64::new(0),
            hog: AtomicBool::new(false),
            hogging: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let checker_thread = thread::spawn({
            let checker = Arc::clone(&checker);
            move || {
                runtime.block_on(async {
                    let mut tick = tokio::time::interval(Duration::from_millis(10));
                    while !checker.stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        checker.ticks.fetch_add(1, Ordering::Relaxed);
                        while checker.hog.load(Ordering::Relaxed) {
                            checker.hogging.store(true, Ordering::Relaxed);
                            thread::sleep(Duration::from_millis(10));
                        }
                    }
                })
            }
        });
        let ticks_advance = || {
            let before = checker.ticks.load(Ordering::Relaxed);
            wait_until(Duration::from_secs(20), || {
                checker.ticks.load(Ordering::Relaxed) >= before + 20
            })
        };

        let path = socket_path(&dir);
        let idle_readers: Vec<StdStream> = (0..idle)
            .map(|_| StdStream::connect(&path).expect("an idle reader connects"))
            .collect();
        assert_eq!(
            read(&dir).expect("a reader that reads gets an answer"),
            Some(servers.clone()),
            "with {idle} idle readers"
        );
        let changed = farm(2_400);
        publisher.publish(&changed);
        assert_eq!(
            read(&dir).expect("and the next one"),
            Some(changed.clone()),
            "the current document"
        );
        assert!(ticks_advance(), "the checker's runtime stands still");
        assert_eq!(
            checker_runtime.metrics().num_alive_tasks(),
            0,
            "readers are served on the checker's runtime"
        );

        checker.hog.store(true, Ordering::Relaxed);
        assert!(wait_until(Duration::from_secs(20), || checker
            .hogging
            .load(Ordering::Relaxed)));
        assert_eq!(
            read(&dir).expect("an answer while the checker is busy"),
            Some(changed),
            "with the checker's runtime busy"
        );
        checker.hog.store(false, Ordering::Relaxed);
        checker.stop.store(true, Ordering::Relaxed);
        checker_thread.join().expect("the checker");
        drop(idle_readers);
        drop(publisher);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done() {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    #[test]
    fn the_socket_is_0660_whatever_the_umask() {
        if let Some(dir) = child_dir() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let _inside = runtime.enter();
            for umask in [0o000, 0o077] {
                set_umask(umask);
                let publisher = Publisher::start(&dir, &[]).expect("listen");
                let mode = std::fs::metadata(socket_path(&dir))
                    .expect("the socket")
                    .permissions()
                    .mode();
                println!("socket mode under umask {umask:03o}: {:o}", mode & 0o7777);
                drop(publisher);
            }
            return;
        }
        let dir = scratch("mode");
        let output = run_in_child(
            "health::publish::tests::the_socket_is_0660_whatever_the_umask",
            &dir,
        )
        .wait_with_output()
        .expect("the child");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The harness prints `test NAME ... ` before the child's own lines.
        let modes: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.find("socket mode").map(|at| &line[at..]))
            .collect();
        assert_eq!(
            modes,
            [
                "socket mode under umask 000: 660",
                "socket mode under umask 077: 660"
            ]
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// Sets this process's umask (the child's: it is the whole process's).
    fn set_umask(mask: libc::mode_t) {
        crate::sys::set_umask(mask);
    }

    #[test]
    fn out_of_descriptors_the_publisher_waits_instead_of_spinning() {
        if let Some(dir) = child_dir() {
            tracing_subscriber::fmt()
                .with_writer(io::stderr)
                .with_target(false)
                .init();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let _inside = runtime.enter();
            let _publisher = Publisher::start(&dir, &farm(3)).expect("listen");
            set_open_file_limit(64);
            let hoard: Vec<std::fs::File> =
                std::iter::from_fn(|| std::fs::File::open("/dev/null").ok()).collect();
            println!("ready with {} descriptors hoarded", hoard.len());
            runtime.block_on(tokio::time::sleep(Duration::from_secs(3)));
            return;
        }
        let dir = scratch("emfile");
        let mut child = run_in_child(
            "health::publish::tests::out_of_descriptors_the_publisher_waits_instead_of_spinning",
            &dir,
        );
        // Kept open until the child ends: its test harness writes there too.
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = stdout
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("ready with"));
        assert!(ready, "the child did not get ready");
        // The child has no descriptor left for these.
        let _waiting: Vec<StdStream> = (0..5)
            .map(|_| StdStream::connect(socket_path(&dir)).expect("connect"))
            .collect();
        let output = child.wait_with_output().expect("the child");
        drop(stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines = stderr.lines().filter(|l| l.contains("health")).count();
        let first: Vec<&str> = stderr.lines().take(3).collect();
        println!("{lines} log line(s) in 3 s; first: {first:#?}");
        assert!(output.status.success(), "the child failed: {stderr}");
        assert!(
            (1..=5).contains(&lines),
            "{lines} log lines about accepting readers in 3 s out of descriptors: {first:#?}"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// A stand-in for the daemon that answers one reader with `chunk` after
    /// `chunk`, a `pause` apart, until it sent `limit` bytes or the reader went
    /// away; how many bytes it sent.
    fn fake_daemon(
        dir: &Path,
        chunk: Vec<u8>,
        pause: Duration,
        limit: u64,
    ) -> thread::JoinHandle<u64> {
        let listener = StdListener::bind(socket_path(dir)).expect("listen");
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().expect("a reader");
            let mut sent = 0;
            while sent < limit && stream.write_all(&chunk).is_ok() {
                sent += chunk.len() as u64;
                thread::sleep(pause);
            }
            sent
        })
    }

    #[test]
    fn a_socket_that_streams_without_end_is_cut_off_at_the_cap() {
        let dir = scratch("streams");
        // 256 MiB in all, so that a read without a cap ends too.
        let daemon = fake_daemon(&dir, vec![b' '; 1 << 20], Duration::ZERO, 256 << 20);
        let error = read(&dir).expect_err("no document").to_string();
        let sent = daemon.join().expect("the fake daemon");
        println!("{error}; {} MiB sent", sent >> 20);
        let path = socket_path(&dir).display().to_string();
        assert!(error.contains(&path) && error.contains("MiB"), "{error}");
        assert!(sent < 64 << 20, "{} MiB read", sent >> 20);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_socket_that_trickles_is_given_up_at_the_deadline() {
        let dir = scratch("trickles");
        // A byte every half second for 30 s: no read ever waits a second.
        let daemon = fake_daemon(&dir, b" ".to_vec(), Duration::from_millis(500), 60);
        let started = Instant::now();
        let error = read(&dir).expect_err("no document").to_string();
        let took = started.elapsed();
        println!("{error} (after {took:?})");
        let path = socket_path(&dir).display().to_string();
        assert!(
            error.contains(&path) && error.contains("within"),
            "{error} (after {took:?})"
        );
        daemon.join().expect("the fake daemon");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
