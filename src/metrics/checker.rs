//! `checker.sock` in the state directory: whether the health checker is
//! alive, and one server's recent check results. A client writes one line,
//! `DIRECTOR/SERVER` or nothing, and reads one JSON [`CheckerReport`].
//! `status` asks it; the metrics thread answers, from the checker's atomics
//! and records, so that a frozen checker cannot keep the answer from coming.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::health::publish::{self, ReadError};
use crate::health::record::{CheckResult, Heartbeat, ProbeRecord};

/// The socket's name in the state directory.
pub const SOCKET: &str = "checker.sock";

/// The longest request line read.
const MAX_REQUEST: u64 = 1024;

/// How long a client has to send its line and take the answer.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);

/// Each server's record, by (director, server); `None` for one not checked.
pub type Records = HashMap<(String, String), Option<Arc<ProbeRecord>>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerReport {
    /// Checks completed since the daemon started.
    pub checks: u64,
    /// Milliseconds since a check last completed (or since checks became due).
    pub quiet_ms: u64,
    /// Checks are due and none completed for two intervals.
    pub stalled: bool,
    /// The asked server's last results, oldest first; `None` when no server
    /// was asked for or the daemon has no such server.
    #[serde(default)]
    pub history: Option<Vec<CheckResult>>,
    /// Whether the asked server is one the daemon has.
    #[serde(default)]
    pub known: bool,
}

/// The answer to the request `line` (`DIRECTOR/SERVER`, or empty).
pub fn report(line: &str, heartbeat: &Heartbeat, records: &Records) -> CheckerReport {
    let pulse = heartbeat.pulse();
    let asked = line
        .trim()
        .split_once('/')
        .and_then(|(director, server)| records.get(&(director.to_owned(), server.to_owned())));
    CheckerReport {
        checks: pulse.completed,
        quiet_ms: u64::try_from(pulse.quiet.as_millis()).unwrap_or(u64::MAX),
        stalled: pulse.stalled,
        history: asked.map(|record| record.as_ref().map(|r| r.recent()).unwrap_or_default()),
        known: asked.is_some(),
    }
}

/// Answers one client.
pub(super) async fn answer(
    stream: UnixStream,
    heartbeat: Arc<Heartbeat>,
    records: impl FnOnce() -> Arc<Records>,
) {
    let answered = tokio::time::timeout(CLIENT_DEADLINE, async {
        let (reader, mut writer) = stream.into_split();
        let mut line = String::new();
        let mut reader = BufReader::new(reader.take(MAX_REQUEST));
        reader.read_line(&mut line).await?;
        let report = report(&line, &heartbeat, &records());
        let json = serde_json::to_vec(&report).map_err(std::io::Error::other)?;
        writer.write_all(&json).await?;
        writer.shutdown().await
    })
    .await;
    if !matches!(answered, Ok(Ok(()))) {
        tracing::debug!("checker: a client of {SOCKET} went away or was too slow");
    }
}

/// Asks the daemon of `state_dir`, about `server` (director, server) when
/// given; `None` when no daemon listens.
pub fn read(
    state_dir: &Path,
    server: Option<(&str, &str)>,
) -> Result<Option<CheckerReport>, ReadError> {
    let path = state_dir.join(SOCKET);
    let request = match server {
        Some((director, server)) => format!("{director}/{server}\n"),
        None => "\n".to_owned(),
    };
    let Some(answer) = publish::ask(&path, request.as_bytes())? else {
        return Ok(None);
    };
    serde_json::from_slice(&answer)
        .map(Some)
        .map_err(|source| ReadError::Malformed { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_answered_with_its_results_and_an_unknown_one_as_unknown() {
        let heartbeat = Heartbeat::default();
        heartbeat.beat();
        let record = Arc::new(ProbeRecord::default());
        record.note(Duration::from_millis(2), Some("connection refused".into()));
        let records: Records = [
            (("web".into(), "web1".into()), Some(record)),
            (("web".into(), "web3".into()), None),
        ]
        .into();
        let asked = report("web/web1\n", &heartbeat, &records);
        assert_eq!(asked.checks, 1);
        assert!(asked.known && !asked.stalled);
        let history = asked.history.expect("a history");
        assert_eq!(history[0].reason.as_deref(), Some("connection refused"));
        let unchecked = report("web/web3", &heartbeat, &records);
        assert_eq!(
            (unchecked.known, unchecked.history),
            (true, Some(Vec::new()))
        );
        let unknown = report("web/nope", &heartbeat, &records);
        assert_eq!((unknown.known, unknown.history), (false, None));
        assert_eq!(report("", &heartbeat, &records).history, None);
    }
}
