//! Serves `GET /metrics` over HTTP/1.1 on the state directory's
//! `metrics.sock`, and on a TCP address when `lbconsole.toml` has
//! `metrics_listen`. The server runs on a thread and runtime of its own, as the
//! health publisher does: a scrape never waits for a check, and a check never
//! waits for a scrape.
//!
//! A scrape asks the daemon for a fresh exposition when the last one is a
//! second old or more, and waits for it a little; the daemon reads IPVS and
//! nft at most once a second however many scrape. The heartbeat part is
//! rendered by the server itself at each scrape, from the checker's atomics:
//! a frozen checker (or daemon loop) shows as stalled all the same. A client
//! that takes gzip, as Prometheus does, gets it (see [`super::gzip`]).

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;

use super::checker::{self, Records};
use super::exposition;
use super::gzip::{self, Deflated};
use crate::health::publish::{self, lock};
use crate::health::record::Heartbeat;

/// The socket's name in the state directory.
pub const SOCKET: &str = "metrics.sock";

/// An exposition younger than this is served as it is.
pub const FRESH_FOR: Duration = Duration::from_secs(1);

/// How long a scrape waits for the daemon's fresh exposition before it takes
/// the last one: a daemon busy applying answers late.
const REFRESH_WAIT: Duration = Duration::from_secs(2);

/// How long a client has to send its request and take the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// The longest request head read.
const MAX_REQUEST: usize = 8 << 10;

/// Clients answered at once; beyond, the oldest is let go.
const MAX_CLIENTS: usize = 64;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// The last exposition and when it was made.
#[derive(Debug)]
struct Latest {
    body: Arc<Body>,
    made: Option<Instant>,
}

/// An exposition, and its gzip blocks once a scrape has asked for them.
#[derive(Debug, Default)]
struct Body {
    text: String,
    deflated: OnceLock<Deflated>,
}

/// What the server and the daemon share.
#[derive(Debug)]
struct Shared {
    latest: Mutex<Latest>,
    heartbeat: Arc<Heartbeat>,
    /// Each server's check results, for `checker.sock`.
    records: Mutex<Arc<Records>>,
}

impl Latest {
    fn is_fresh(&self) -> bool {
        self.made.is_some_and(|made| made.elapsed() < FRESH_FOR)
    }
}

impl Shared {
    fn latest(&self) -> std::sync::MutexGuard<'_, Latest> {
        lock(&self.latest)
    }
}

/// The daemon's side: it learns when a scrape wants a fresh exposition and
/// hands it over.
pub struct Feed {
    shared: Arc<Shared>,
    wanted: mpsc::Receiver<()>,
    made: watch::Sender<u64>,
}

impl Feed {
    /// Until a scrape wants a fresh exposition.
    pub async fn wanted(&mut self) {
        if self.wanted.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }

    /// Whether the last exposition is still fresh: several scrapes may have
    /// asked for one.
    pub fn is_fresh(&self) -> bool {
        self.shared.latest().is_fresh()
    }

    /// Answers `checker.sock` with these servers' results from now on.
    pub fn set_records(&self, records: Records) {
        *lock(&self.shared.records) = Arc::new(records);
    }

    /// Serves `text` from now on.
    pub fn publish(&self, text: String) {
        *self.shared.latest() = Latest {
            body: Arc::new(Body {
                text,
                deflated: OnceLock::new(),
            }),
            made: Some(Instant::now()),
        };
        self.made.send_modify(|generation| *generation += 1);
    }
}

/// The running server; stops and removes its socket when dropped.
pub struct MetricsServer {
    state_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

/// What a scrape needs of the daemon.
#[derive(Clone)]
struct Source {
    shared: Arc<Shared>,
    want: mpsc::Sender<()>,
    made: watch::Receiver<u64>,
}

impl MetricsServer {
    /// Listens on `metrics.sock` and `checker.sock` in `state_dir`, and on
    /// `tcp` when given.
    pub fn start(
        state_dir: &Path,
        tcp: Option<SocketAddr>,
        heartbeat: Arc<Heartbeat>,
    ) -> io::Result<(MetricsServer, Feed)> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let tcp = tcp
            .map(|address| {
                let listener = std::net::TcpListener::bind(address).map_err(|error| {
                    io::Error::new(error.kind(), format!("cannot listen on {address}: {error}"))
                })?;
                listener.set_nonblocking(true)?;
                io::Result::Ok(listener)
            })
            .transpose()?;
        let unix = publish::bind(state_dir, SOCKET)?;
        let checker = publish::bind(state_dir, checker::SOCKET).inspect_err(|_| {
            let _ = std::fs::remove_file(socket_path(state_dir));
        })?;
        let shared = Arc::new(Shared {
            latest: Mutex::new(Latest {
                body: Arc::default(),
                made: None,
            }),
            heartbeat,
            records: Mutex::default(),
        });
        let (want, wanted) = mpsc::channel(1);
        let (made_sender, made) = watch::channel(0);
        let source = Source {
            shared: Arc::clone(&shared),
            want,
            made,
        };
        let (stop, stopped) = oneshot::channel();
        let spawned = thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                runtime.block_on(async {
                    tokio::select! {
                        () = serve(unix, tcp, checker, source) => {}
                        _ = stopped => {}
                    }
                });
            });
        let thread = match spawned {
            Ok(thread) => thread,
            Err(error) => {
                remove_sockets(state_dir);
                return Err(error);
            }
        };
        let server = MetricsServer {
            state_dir: state_dir.to_owned(),
            stop: Some(stop),
            thread: Some(thread),
        };
        let feed = Feed {
            shared,
            wanted,
            made: made_sender,
        };
        Ok((server, feed))
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        remove_sockets(&self.state_dir);
    }
}

fn remove_sockets(state_dir: &Path) {
    let _ = std::fs::remove_file(socket_path(state_dir));
    let _ = std::fs::remove_file(state_dir.join(checker::SOCKET));
}

async fn serve(
    unix: std::os::unix::net::UnixListener,
    tcp: Option<std::net::TcpListener>,
    checker: std::os::unix::net::UnixListener,
    source: Source,
) {
    let (unix, checker) = match (
        UnixListener::from_std(unix),
        UnixListener::from_std(checker),
    ) {
        (Ok(unix), Ok(checker)) => (unix, checker),
        (Err(error), _) | (_, Err(error)) => {
            return tracing::error!("metrics: cannot listen on {SOCKET}: {error}");
        }
    };
    let tcp = match tcp.map(TcpListener::from_std).transpose() {
        Ok(listener) => listener,
        Err(error) => return tracing::error!("metrics: cannot listen on TCP: {error}"),
    };
    let mut clients: VecDeque<AbortHandle> = VecDeque::with_capacity(MAX_CLIENTS);
    loop {
        let accepted = tokio::select! {
            accepted = unix.accept() => accepted.map(|(stream, _)| {
                tokio::spawn(answer(stream, source.clone()))
            }),
            accepted = accept_tcp(tcp.as_ref()) => accepted.map(|stream| {
                tokio::spawn(answer(stream, source.clone()))
            }),
            accepted = checker.accept() => accepted.map(|(stream, _)| {
                let heartbeat = Arc::clone(&source.shared.heartbeat);
                let records = Arc::clone(&lock(&source.shared.records));
                tokio::spawn(checker::answer(stream, heartbeat, move || records))
            }),
        };
        match accepted {
            Ok(client) => {
                clients.retain(|client| !client.is_finished());
                if clients.len() >= MAX_CLIENTS
                    && let Some(oldest) = clients.pop_front()
                {
                    oldest.abort();
                }
                clients.push_back(client.abort_handle());
            }
            Err(error) => {
                // Typically out of file descriptors: trying again at once
                // would fail again at once.
                tracing::warn!("metrics: cannot accept a scrape: {error}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

async fn accept_tcp(listener: Option<&TcpListener>) -> io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, source: Source) {
    let answered = tokio::time::timeout(CLIENT_DEADLINE, async {
        let head = read_head(&mut stream).await?;
        match route(&head) {
            Route::Metrics { gzip } => {
                let (body, pulse) = exposition_now(&source).await;
                if gzip {
                    let deflated = body.deflated.get_or_init(|| Deflated::of(&body.text));
                    let [header, blocks] = deflated.prefix();
                    let suffix = deflated.suffix(&pulse);
                    let length = header.len() + blocks.len() + suffix.len();
                    let head = response_head("200 OK", CONTENT_TYPE, Some("gzip"), length);
                    for part in [head.as_bytes(), header, blocks, &suffix] {
                        stream.write_all(part).await?;
                    }
                } else {
                    let length = body.text.len() + pulse.len();
                    let head = response_head("200 OK", CONTENT_TYPE, None, length);
                    for part in [&head, &body.text, &pulse] {
                        stream.write_all(part.as_bytes()).await?;
                    }
                }
            }
            Route::Refused(status) => {
                let body = format!("{status}\n");
                let head = response_head(status, "text/plain; charset=utf-8", None, body.len());
                stream.write_all(format!("{head}{body}").as_bytes()).await?;
            }
        }
        stream.shutdown().await
    })
    .await;
    match answered {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!("metrics: a scrape went away: {error}"),
        Err(_) => tracing::debug!(
            "metrics: a scrape took longer than {} s",
            CLIENT_DEADLINE.as_secs()
        ),
    }
}

/// The request head, up to its blank line; a head over [`MAX_REQUEST`] is cut
/// there (only its first line matters).
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0; 1024];
    while head.len() < MAX_REQUEST && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(head)
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `gzip`: the client takes a gzip answer.
    Metrics {
        gzip: bool,
    },
    Refused(&'static str),
}

/// Only `GET /metrics` (with or without a query) is served.
fn route(head: &[u8]) -> Route {
    let head = String::from_utf8_lossy(head);
    let line = head.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Route::Refused("400 Bad Request");
    };
    if !version.starts_with("HTTP/1.") {
        return Route::Refused("400 Bad Request");
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics {
            gzip: gzip::accepted(&head),
        },
        (_, "/metrics") => Route::Refused("405 Method Not Allowed"),
        _ => Route::Refused("404 Not Found"),
    }
}

fn response_head(
    status: &str,
    content_type: &str,
    encoding: Option<&str>,
    length: usize,
) -> String {
    let allow = if status.starts_with("405") {
        "Allow: GET\r\n"
    } else {
        ""
    };
    let encoding = encoding
        .map(|encoding| format!("Content-Encoding: {encoding}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {length}\r\n{allow}Connection: close\r\n\r\n"
    )
}

/// The daemon's exposition, fresh or as fresh as it gets within
/// [`REFRESH_WAIT`], and the heartbeat as of now, which ends it.
async fn exposition_now(source: &Source) -> (Arc<Body>, String) {
    // Marked before the age is read: an exposition made in between is seen.
    let mut made = source.made.clone();
    made.mark_unchanged();
    if !source.shared.latest().is_fresh() {
        // Full: another scrape has asked already; its answer serves both.
        let _ = source.want.try_send(());
        let _ = tokio::time::timeout(REFRESH_WAIT, made.changed()).await;
    }
    let body = Arc::clone(&source.shared.latest().body);
    let pulse = source.shared.heartbeat.pulse();
    (body, exposition::render_pulse(&pulse))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_served() {
        let plain = Route::Metrics { gzip: false };
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\n\r\n"), plain);
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), plain);
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nAccept-Encoding: gzip\r\n\r\n"),
            Route::Metrics { gzip: true }
        );
        assert_eq!(
            route(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Route::Refused("405 Method Not Allowed")
        );
        assert_eq!(
            route(b"GET / HTTP/1.1\r\n\r\n"),
            Route::Refused("404 Not Found")
        );
        assert_eq!(
            route(b"GET /metrics\r\n"),
            Route::Refused("400 Bad Request")
        );
        assert_eq!(
            route(b"\x00\xff garbage"),
            Route::Refused("400 Bad Request")
        );
    }
}
