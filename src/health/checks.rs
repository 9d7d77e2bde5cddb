//! The checks themselves, on tokio: a TCP connect, an HTTP/1.1 GET, an ICMP echo,
//! an ARP who-has (in `arp.rs`).
//! Every check has a hard timeout, reads at most [`HTTP_READ_LIMIT`] bytes, and
//! marks its sockets with [`HEALTH_CHECK_MARK`] so that the flows' outgoing chain
//! lets them through untouched.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use super::arp;
use super::state::{Check, Probe};
use super::sys::{self, bind, receive_datagram, register, send_datagram, socket};
use crate::plan::flows::HEALTH_CHECK_MARK;

/// An HTTP answer must show its status line within this many bytes.
pub const HTTP_READ_LIMIT: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Io(#[from] io::Error),
    /// This machine could not open a socket (out of descriptors, say): the
    /// check did not run, which says nothing of the server.
    #[error("cannot open a socket: {0}")]
    Local(io::Error),
    #[error("HTTP status {got}, expected {expected}")]
    Status { got: u16, expected: u16 },
    #[error("not an HTTP response: {0}")]
    Malformed(&'static str),
}

/// Runs one check to its end or until `deadline` (its start plus its timeout),
/// whichever comes first.
pub async fn run(check: &Check, deadline: Instant) -> Result<(), CheckError> {
    match tokio::time::timeout_at(deadline, probe(check)).await {
        Ok(result) => result,
        Err(_) => Err(CheckError::Timeout(check.timeout)),
    }
}

async fn probe(check: &Check) -> Result<(), CheckError> {
    match &check.probe {
        Probe::Tcp { port } => connect(check, *port).await.map(drop),
        Probe::Http {
            port,
            uri,
            vhost,
            status,
        } => {
            let mut stream = connect(check, *port).await?;
            let host = match vhost {
                Some(vhost) => vhost.clone(),
                None if *port == 80 => check.address.to_string(),
                None => format!("{}:{port}", check.address),
            };
            let request = format!(
                "GET {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lbconsole-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await?;
            let line = read_status_line(&mut stream).await?;
            let got = parse_status(&line)?;
            if got == *status {
                Ok(())
            } else {
                Err(CheckError::Status {
                    got,
                    expected: *status,
                })
            }
        }
        Probe::Icmp => ping(check).await,
        Probe::Arp { iface } => arp::probe(check, iface.as_deref()).await,
    }
}

async fn connect(check: &Check, port: u16) -> Result<TcpStream, CheckError> {
    let socket = TcpSocket::new_v4().map_err(CheckError::Local)?;
    mark(socket.as_fd());
    if let Some(source) = check.source {
        socket.bind(SocketAddr::from((source, 0)))?;
    }
    Ok(socket
        .connect(SocketAddr::from((check.address, port)))
        .await?)
}

/// Reads up to the end of the first line, never more than [`HTTP_READ_LIMIT`].
async fn read_status_line(stream: &mut TcpStream) -> Result<Vec<u8>, CheckError> {
    let mut buffer = vec![0; HTTP_READ_LIMIT];
    let mut len = 0;
    loop {
        if let Some(end) = buffer[..len].iter().position(|&b| b == b'\n') {
            buffer.truncate(end);
            return Ok(buffer);
        }
        if len == buffer.len() {
            return Err(CheckError::Malformed("no status line in the first 4 KiB"));
        }
        let read = stream.read(&mut buffer[len..]).await?;
        if read == 0 {
            return Err(CheckError::Malformed(
                "the connection closed before a status line",
            ));
        }
        len += read;
    }
}

/// The status code of `HTTP/1.x NNN reason`.
pub fn parse_status(line: &[u8]) -> Result<u16, CheckError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let rest = line.strip_prefix(b"HTTP/1.").ok_or(CheckError::Malformed(
        "the status line does not start with HTTP/1.",
    ))?;
    match rest {
        [minor, b' ', a, b, c, tail @ ..]
            if minor.is_ascii_digit()
                && [a, b, c].iter().all(|d| d.is_ascii_digit())
                && (tail.is_empty() || tail[0] == b' ') =>
        {
            Ok([a, b, c]
                .iter()
                .fold(0, |code, d| code * 10 + u16::from(**d - b'0')))
        }
        _ => Err(CheckError::Malformed("no three-digit status code")),
    }
}

/// Sets `SO_MARK`; without CAP_NET_ADMIN the check goes unmarked, which only
/// matters when a flow would catch it, and that is said once.
fn mark(fd: BorrowedFd<'_>) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(error) = sys::set_mark(fd, HEALTH_CHECK_MARK)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("health checks cannot set SO_MARK ({error}); flows may filter them");
    }
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ECHO_PAYLOAD: &[u8; 16] = b"lbconsole-health";

/// An ICMP echo request with its checksum.
pub fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut packet = vec![ICMP_ECHO_REQUEST, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(ECHO_PAYLOAD);
    let sum = checksum(&packet);
    packet[2..4].copy_from_slice(&sum.to_be_bytes());
    packet
}

/// The Internet checksum (RFC 1071).
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether `message` (the ICMP message, without IP header) answers our echo
/// request `seq`; `id` is checked when the socket is raw (a ping socket's
/// identifier is the kernel's, and only its own replies reach it).
pub fn is_echo_reply(message: &[u8], id: Option<u16>, seq: u16) -> bool {
    message.len() >= 8
        && message[0] == ICMP_ECHO_REPLY
        && id.is_none_or(|id| message[4..6] == id.to_be_bytes())
        && message[6..8] == seq.to_be_bytes()
}

fn sockaddr(address: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: address.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*address.ip()).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// An echo request over an unprivileged ping socket, or a raw socket when the
/// ping socket is not allowed (`net.ipv4.ping_group_range`).
async fn ping(check: &Check) -> Result<(), CheckError> {
    static SEQUENCE: AtomicU16 = AtomicU16::new(0);
    let icmp_socket = |kind| socket(libc::AF_INET, kind, libc::IPPROTO_ICMP);
    let (fd, raw) = match icmp_socket(libc::SOCK_DGRAM) {
        Ok(fd) => (fd, false),
        Err(_) => (
            icmp_socket(libc::SOCK_RAW).map_err(CheckError::Local)?,
            true,
        ),
    };
    mark(fd.as_fd());
    if let Some(source) = check.source {
        bind(&fd, &sockaddr(SocketAddrV4::new(source, 0)))?;
    }
    let id = std::process::id() as u16;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = echo_request(id, seq);
    let target = sockaddr(SocketAddrV4::new(check.address, 0));
    let socket = register(fd)?;
    send_datagram(&socket, &request, &target).await?;
    let mut buffer = [0u8; 1500];
    loop {
        let (len, from) = receive_datagram::<libc::sockaddr_in>(&socket, &mut buffer).await?;
        if Ipv4Addr::from(u32::from_be(from.sin_addr.s_addr)) != check.address {
            continue;
        }
        let message = if raw {
            // A raw socket hands over the IP header too.
            let header = usize::from(buffer[0] & 0x0f) * 4;
            buffer.get(header..len).unwrap_or_default()
        } else {
            &buffer[..len]
        };
        if is_echo_reply(message, raw.then_some(id), seq) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    async fn run_in_time(check: &Check) -> Result<(), CheckError> {
        run(check, Instant::now() + check.timeout).await
    }

    fn check(probe: Probe) -> Check {
        Check {
            address: Ipv4Addr::LOCALHOST,
            probe,
            source: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            rise: 1,
            fall: 1,
        }
    }

    fn http(port: u16, status: u16) -> Check {
        check(Probe::Http {
            port,
            uri: "/health?x=1".into(),
            vhost: Some("www.example.com".into()),
            status,
        })
    }

    /// A one-connection server that answers `answer` after reading the request,
    /// and hands the request back.
    async fn serve(answer: Vec<u8>) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buffer = [0; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = stream.read(&mut buffer).await.expect("read");
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buffer[..n]);
            }
            let _ = stream.write_all(&answer).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            String::from_utf8_lossy(&request).into_owned()
        });
        (port, task)
    }

    #[test]
    fn status_lines_are_read_strictly() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r").ok(), Some(200));
        assert_eq!(parse_status(b"HTTP/1.0 404").ok(), Some(404));
        for bad in [
            &b"HTTP/2 200 OK"[..],
            b"HTTP/1.1 20 OK",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 2x0 OK",
            b"<html>",
            b"",
        ] {
            assert!(
                parse_status(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn an_echo_request_carries_a_valid_checksum_and_its_reply_is_recognised() {
        let request = echo_request(0x1234, 7);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to zero"
        );
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        let mut reply = request.clone();
        reply[0] = ICMP_ECHO_REPLY;
        assert!(is_echo_reply(&reply, Some(0x1234), 7));
        assert!(is_echo_reply(&reply, None, 7));
        assert!(!is_echo_reply(&reply, Some(0x1235), 7));
        assert!(!is_echo_reply(&reply, None, 8));
        assert!(
            !is_echo_reply(&request, None, 7),
            "our own request is no reply"
        );
        assert!(!is_echo_reply(&reply[..6], None, 7));
    }

    #[tokio::test]
    async fn tcp_check_passes_on_a_listener_and_fails_on_a_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        run_in_time(&check(Probe::Tcp { port })).await.expect("up");
        drop(listener);
        let error = run_in_time(&check(Probe::Tcp { port }))
            .await
            .expect_err("down");
        assert!(matches!(error, CheckError::Io(_)), "{error}");
    }

    #[tokio::test]
    async fn http_check_sends_the_uri_and_vhost_and_expects_the_status() {
        let (port, server) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        run_in_time(&http(port, 200)).await.expect("up");
        let request = server.await.expect("the request");
        assert!(
            request.starts_with("GET /health?x=1 HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.contains("\r\nHost: www.example.com\r\n"),
            "{request}"
        );
        assert!(request.contains("\r\nConnection: close\r\n"), "{request}");
    }

    #[tokio::test]
    async fn http_check_fails_on_another_status_garbage_silence_or_a_huge_header() {
        let (port, _server) = serve(b"HTTP/1.1 503 Unavailable\r\n\r\n".to_vec()).await;
        let error = run_in_time(&http(port, 200)).await.expect_err("503");
        assert!(
            matches!(
                error,
                CheckError::Status {
                    got: 503,
                    expected: 200
                }
            ),
            "{error}"
        );

        let (port, _server) = serve(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()).await;
        let error = run_in_time(&http(port, 200)).await.expect_err("garbage");
        assert!(matches!(error, CheckError::Malformed(_)), "{error}");

        let (port, _server) = serve(Vec::new()).await;
        let error = run_in_time(&http(port, 200)).await.expect_err("silent");
        assert!(matches!(error, CheckError::Timeout(_)), "{error}");

        let (port, _server) = serve(vec![b'H'; 1 << 20]).await;
        let error = run_in_time(&http(port, 200)).await.expect_err("huge");
        assert!(matches!(error, CheckError::Malformed(_)), "{error}");
    }

    #[tokio::test]
    async fn icmp_check_answers_on_loopback() {
        run_in_time(&check(Probe::Icmp))
            .await
            .expect("loopback answers pings");
    }
}
