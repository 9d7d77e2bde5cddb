//! systemd's notify protocol (`sd_notify(3)`): a datagram of `KEY=VALUE`
//! lines to the socket in `NOTIFY_SOCKET`. The daemon says `READY=1` once it
//! serves, and `WATCHDOG=1` only while its checks progress, so that with
//! `WatchdogSec=` systemd restarts a daemon whose checker froze.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// The service manager's socket, when the daemon runs under one.
pub struct Notifier {
    socket: UnixDatagram,
    address: SocketAddr,
    /// How often systemd wants `WATCHDOG=1`; `None` when it wants none.
    pub watchdog: Option<Duration>,
}

impl Notifier {
    /// From the environment systemd sets; `None` outside systemd.
    pub fn from_env() -> io::Result<Option<Notifier>> {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        let path = path.to_string_lossy().into_owned();
        let address = match path.strip_prefix('@') {
            Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
            None => SocketAddr::from_pathname(&path)?,
        };
        // Only for this process: a child (keepalived) must not answer for it.
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .filter(|_| {
                std::env::var("WATCHDOG_PID")
                    .map_or(true, |pid| pid == std::process::id().to_string())
            })
            .and_then(|usec| usec.parse().ok())
            .map(Duration::from_micros);
        // Never blocking: a manager slow to read must not stall the daemon's
        // loop (a notification it misses is logged).
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        Ok(Some(Notifier {
            socket,
            address,
            watchdog,
        }))
    }

    pub fn send(&self, state: &str) -> io::Result<()> {
        self.socket
            .send_to_addr(state.as_bytes(), &self.address)
            .map(|_| ())
    }
}
