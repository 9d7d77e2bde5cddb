//! The daemon publishes the servers' health on a unix socket in the state
//! directory: a client connects and reads one JSON document, the daemon closes.
//! `status` and the console read it from there.

use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};

use super::state::Health;

/// The socket's name in the state directory.
pub const SOCKET: &str = "health.sock";

/// How long a reader may take, on either side.
const TIMEOUT: Duration = Duration::from_secs(2);

/// One server as the daemon sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerReport {
    pub director: String,
    pub server: String,
    pub address: Ipv4Addr,
    pub port: u16,
    /// A server that is not checked is always up.
    pub checked: bool,
    pub sorry: bool,
    pub health: Health,
}

pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

/// Listens on the socket, replacing one a previous daemon left behind.
pub fn bind(state_dir: &Path) -> io::Result<UnixListener> {
    let path = socket_path(state_dir);
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    UnixListener::bind(path)
}

/// Sends `servers` to a client on a task of its own, so that a slow reader
/// never holds up the daemon.
pub fn send(mut stream: UnixStream, servers: &[ServerReport]) {
    let document = match serde_json::to_vec(servers) {
        Ok(document) => document,
        Err(error) => {
            tracing::error!("health: cannot encode the servers' health: {error}");
            return;
        }
    };
    tokio::spawn(async move {
        let written = tokio::time::timeout(TIMEOUT, stream.write_all(&document)).await;
        if !matches!(written, Ok(Ok(()))) {
            tracing::debug!("health: a reader of {SOCKET} went away");
        }
    });
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
                    tracing::warn!(
                        "health: cannot read {}: {error}; the apply counts every server as up",
                        socket_path(state_dir).display()
                    );
                    None
                })
                .unwrap_or_default(),
        }
    }
}

/// The daemon's report; `None` when no daemon is listening.
pub fn read(state_dir: &Path) -> io::Result<Option<Vec<ServerReport>>> {
    let mut stream = match std::os::unix::net::UnixStream::connect(socket_path(state_dir)) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut document = Vec::new();
    stream.read_to_end(&mut document)?;
    serde_json::from_slice(&document)
        .map(Some)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reader_gets_what_the_daemon_publishes_and_none_without_a_daemon() {
        let dir = std::env::temp_dir().join(format!("lbconsole-health-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        assert!(read(&dir).expect("no socket is no daemon").is_none());

        let servers = vec![ServerReport {
            director: "web".into(),
            server: "a".into(),
            address: Ipv4Addr::new(10, 0, 1, 1),
            port: 80,
            checked: true,
            sorry: false,
            health: Health::Down,
        }];
        let listener = bind(&dir).expect("listen");
        let reader = tokio::task::spawn_blocking({
            let dir = dir.clone();
            move || read(&dir)
        });
        let (stream, _) = listener.accept().await.expect("a reader");
        send(stream, &servers);
        let got = reader.await.expect("the reader").expect("a report");
        assert_eq!(got, Some(servers));

        drop(listener);
        assert!(read(&dir).expect("a stale socket").is_none());
        let _ = bind(&dir).expect("a stale socket is replaced");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
