//! The checks themselves, on tokio, for IPv4 and IPv6 servers: a TCP connect, an
//! HTTP/1.1 GET, an ICMP or ICMPv6 echo, an ARP who-has (in `arp.rs`) or a
//! neighbour solicitation (in `ndisc.rs`).
//! Every check has a hard timeout, reads at most [`HTTP_READ_LIMIT`] bytes, and
//! marks its sockets with [`HEALTH_CHECK_MARK`] so that the flows' outgoing chain
//! lets them through untouched.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::state::{Check, Probe};
use super::sys::{self, SocketAddress, bind, receive_datagram, register, send_datagram, socket};
use super::{arp, ndisc};
use crate::config::model::types::Family;
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
    /// `check source` of one family for a server of the other.
    #[error("the check source {address} is not an {} address like the server {server}", Family::of(*.server).name())]
    SourceFamily { address: IpAddr, server: IpAddr },
}

/// Runs one check to its end or until its timeout, counted from now, when
/// the probe is sent. A checker too busy to start a check on time sends it
/// late, and the server still gets its whole timeout: the checker's own
/// lateness is never counted as the server's silence.
pub async fn run(check: &Check) -> Result<(), CheckError> {
    match tokio::time::timeout(check.timeout, probe(check)).await {
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
                None => host_header(check.address, *port),
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
        Probe::Arp { iface } => {
            let iface = iface.as_deref();
            match (check.address, source(check)?) {
                (IpAddr::V4(target), Some(IpAddr::V4(source))) => {
                    arp::probe(target, Some(source), iface).await
                }
                (IpAddr::V6(target), Some(IpAddr::V6(source))) => {
                    ndisc::probe(target, Some(source), iface).await
                }
                (IpAddr::V4(target), _) => arp::probe(target, None, iface).await,
                (IpAddr::V6(target), _) => ndisc::probe(target, None, iface).await,
            }
        }
    }
}

/// The check's `source`, which must be of the server's family.
fn source(check: &Check) -> Result<Option<IpAddr>, CheckError> {
    match check.source {
        Some(source) if Family::of(source) != Family::of(check.address) => {
            Err(CheckError::SourceFamily {
                address: source,
                server: check.address,
            })
        }
        source => Ok(source),
    }
}

/// The `Host` header that names `address` and `port` (RFC 7230 §5.4): an
/// IPv6 address in brackets, the port left out when it is HTTP's own.
pub fn host_header(address: IpAddr, port: u16) -> String {
    let host = match address {
        IpAddr::V4(address) => address.to_string(),
        IpAddr::V6(address) => format!("[{address}]"),
    };
    if port == 80 {
        host
    } else {
        format!("{host}:{port}")
    }
}

async fn connect(check: &Check, port: u16) -> Result<TcpStream, CheckError> {
    let socket = match check.address {
        IpAddr::V4(_) => TcpSocket::new_v4(),
        IpAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(CheckError::Local)?;
    mark(socket.as_fd());
    if let Some(source) = source(check)? {
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
pub(super) fn mark(fd: BorrowedFd<'_>) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if let Err(error) = sys::set_mark(fd, HEALTH_CHECK_MARK)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!("health checks cannot set SO_MARK ({error}); flows may filter them");
    }
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;
const ECHO_PAYLOAD: &[u8; 16] = b"lbconsole-health";

/// An echo request of `family`'s ICMP. An ICMP one carries its checksum; an
/// ICMPv6 one leaves it zero, for the kernel computes it on both the ping and
/// the raw ICMPv6 socket (RFC 3542 §3.1), over a pseudo-header with the source
/// address it picks.
pub fn echo_request(family: Family, id: u16, seq: u16) -> Vec<u8> {
    let kind = match family {
        Family::Ipv4 => ICMP_ECHO_REQUEST,
        Family::Ipv6 => ICMPV6_ECHO_REQUEST,
    };
    let mut packet = vec![kind, 0, 0, 0];
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(ECHO_PAYLOAD);
    if family == Family::Ipv4 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
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

/// Whether `message` (the ICMP or ICMPv6 message, without IP header) answers
/// our echo request `seq`; `id` is checked when the socket is raw (a ping
/// socket's identifier is the kernel's, and only its own replies reach it).
pub fn is_echo_reply(message: &[u8], family: Family, id: Option<u16>, seq: u16) -> bool {
    let reply = match family {
        Family::Ipv4 => ICMP_ECHO_REPLY,
        Family::Ipv6 => ICMPV6_ECHO_REPLY,
    };
    message.len() >= 8
        && message[0] == reply
        && message[1] == 0
        && id.is_none_or(|id| message[4..6] == id.to_be_bytes())
        && message[6..8] == seq.to_be_bytes()
}

/// A socket address of one family, read back to the `IpAddr` it holds.
trait EchoAddress: SocketAddress {
    fn address(&self) -> IpAddr;
}

impl EchoAddress for libc::sockaddr_in {
    fn address(&self) -> IpAddr {
        Ipv4Addr::from(u32::from_be(self.sin_addr.s_addr)).into()
    }
}

impl EchoAddress for libc::sockaddr_in6 {
    fn address(&self) -> IpAddr {
        Ipv6Addr::from(self.sin6_addr.s6_addr).into()
    }
}

fn sockaddr_v4(address: Ipv4Addr) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(address).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// An IPv6 socket address; `scope` is the interface of a link-local one.
pub(super) fn sockaddr_v6(address: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    libc::sockaddr_in6 {
        sin6_family: libc::AF_INET6 as libc::sa_family_t,
        sin6_port: 0,
        sin6_flowinfo: 0,
        sin6_addr: libc::in6_addr {
            s6_addr: address.octets(),
        },
        sin6_scope_id: scope,
    }
}

/// An echo request over an unprivileged ping socket, or a raw socket when the
/// ping socket is not allowed (`net.ipv4.ping_group_range`, which governs
/// ICMPv6 ping sockets too).
async fn ping(check: &Check) -> Result<(), CheckError> {
    let (domain, protocol) = match check.address {
        IpAddr::V4(_) => (libc::AF_INET, libc::IPPROTO_ICMP),
        IpAddr::V6(_) => (libc::AF_INET6, libc::IPPROTO_ICMPV6),
    };
    let icmp_socket = |kind| socket(domain, kind, protocol);
    let (fd, raw) = match icmp_socket(libc::SOCK_DGRAM) {
        Ok(fd) => (fd, false),
        Err(_) => (
            icmp_socket(libc::SOCK_RAW).map_err(CheckError::Local)?,
            true,
        ),
    };
    mark(fd.as_fd());
    match (check.address, source(check)?) {
        (IpAddr::V4(server), source) => {
            if let Some(IpAddr::V4(source)) = source {
                bind(&fd, &sockaddr_v4(source))?;
            }
            echo(check, fd, raw, sockaddr_v4(server)).await
        }
        (IpAddr::V6(server), source) => {
            if let Some(IpAddr::V6(source)) = source {
                bind(&fd, &sockaddr_v6(source, 0))?;
            }
            echo(check, fd, raw, sockaddr_v6(server, 0)).await
        }
    }
}

/// Sends the echo request on `fd` (`raw`, or a ping socket) to `target` and
/// waits for its reply from the server.
async fn echo<A: EchoAddress>(
    check: &Check,
    fd: OwnedFd,
    raw: bool,
    target: A,
) -> Result<(), CheckError> {
    static SEQUENCE: AtomicU16 = AtomicU16::new(0);
    let family = Family::of(check.address);
    let id = std::process::id() as u16;
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = echo_request(family, id, seq);
    let socket = register(fd)?;
    send_datagram(&socket, &request, &target).await?;
    let mut buffer = [0u8; 1500];
    loop {
        let (len, from) = receive_datagram::<A>(&socket, &mut buffer).await?;
        if from.address() != check.address {
            continue;
        }
        let message = if raw && family == Family::Ipv4 {
            // A raw IPv4 socket hands over the IP header too (a raw IPv6 one
            // does not).
            let header = usize::from(buffer[0] & 0x0f) * 4;
            buffer.get(header..len).unwrap_or_default()
        } else {
            &buffer[..len]
        };
        if is_echo_reply(message, family, raw.then_some(id), seq) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn check(probe: Probe) -> Check {
        Check {
            address: Ipv4Addr::LOCALHOST.into(),
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
        serve_on(Ipv4Addr::LOCALHOST.into(), answer).await
    }

    async fn serve_on(address: IpAddr, answer: Vec<u8>) -> (u16, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind((address, 0)).await.expect("listen");
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
        let v4 = Family::Ipv4;
        let request = echo_request(v4, 0x1234, 7);
        assert_eq!(
            checksum(&request),
            0,
            "a packet with its checksum sums to zero"
        );
        assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
        let mut reply = request.clone();
        reply[0] = ICMP_ECHO_REPLY;
        assert!(is_echo_reply(&reply, v4, Some(0x1234), 7));
        assert!(is_echo_reply(&reply, v4, None, 7));
        assert!(!is_echo_reply(&reply, v4, Some(0x1235), 7));
        assert!(!is_echo_reply(&reply, v4, None, 8));
        assert!(
            !is_echo_reply(&request, v4, None, 7),
            "our own request is no reply"
        );
        assert!(!is_echo_reply(&reply[..6], v4, None, 7));
        assert!(
            !is_echo_reply(&reply, Family::Ipv6, None, 7),
            "an ICMP reply is no ICMPv6 one"
        );
    }

    #[test]
    fn an_icmpv6_echo_request_leaves_its_checksum_to_the_kernel_and_its_reply_is_recognised() {
        let v6 = Family::Ipv6;
        let request = echo_request(v6, 0x1234, 7);
        assert_eq!(&request[..8], &[128, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(&request[8..], ECHO_PAYLOAD);
        let mut reply = request.clone();
        reply[0] = ICMPV6_ECHO_REPLY;
        assert!(is_echo_reply(&reply, v6, Some(0x1234), 7));
        assert!(!is_echo_reply(&reply, v6, Some(0x4321), 7));
        assert!(!is_echo_reply(&reply, v6, None, 6));
        assert!(!is_echo_reply(&request, v6, None, 7), "our own request");
        assert!(
            !is_echo_reply(&reply, Family::Ipv4, None, 7),
            "an ICMPv6 reply is no ICMP one"
        );
        let mut error = reply.clone();
        error[1] = 1;
        assert!(!is_echo_reply(&error, v6, None, 7), "code 0 only");
    }

    #[test]
    fn the_host_header_brackets_an_ipv6_server_and_names_a_port_other_than_80() {
        let v4: IpAddr = "192.0.2.7".parse().expect("address");
        let v6: IpAddr = "2001:db8::7".parse().expect("address");
        assert_eq!(host_header(v4, 80), "192.0.2.7");
        assert_eq!(host_header(v4, 8080), "192.0.2.7:8080");
        assert_eq!(host_header(v6, 80), "[2001:db8::7]");
        assert_eq!(host_header(v6, 8080), "[2001:db8::7]:8080");
    }

    #[tokio::test]
    async fn a_check_source_of_the_other_family_fails_every_check_with_the_reason() {
        for probe in [
            Probe::Tcp { port: 1 },
            Probe::Icmp,
            Probe::Arp { iface: None },
        ] {
            let check = Check {
                address: Ipv6Addr::LOCALHOST.into(),
                source: Some(Ipv4Addr::LOCALHOST.into()),
                ..check(probe)
            };
            let error = run(&check).await.expect_err("mixed families");
            assert_eq!(
                error.to_string(),
                "the check source 127.0.0.1 is not an IPv6 address like the server ::1"
            );
        }
    }

    #[tokio::test]
    async fn tcp_check_passes_on_a_listener_and_fails_on_a_closed_port() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        run(&check(Probe::Tcp { port })).await.expect("up");
        drop(listener);
        let error = run(&check(Probe::Tcp { port })).await.expect_err("down");
        assert!(matches!(error, CheckError::Io(_)), "{error}");
    }

    #[tokio::test]
    async fn http_check_sends_the_uri_and_vhost_and_expects_the_status() {
        let (port, server) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        run(&http(port, 200)).await.expect("up");
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
        let error = run(&http(port, 200)).await.expect_err("503");
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
        let error = run(&http(port, 200)).await.expect_err("garbage");
        assert!(matches!(error, CheckError::Malformed(_)), "{error}");

        let (port, _server) = serve(Vec::new()).await;
        let error = run(&http(port, 200)).await.expect_err("silent");
        assert!(matches!(error, CheckError::Timeout(_)), "{error}");

        let (port, _server) = serve(vec![b'H'; 1 << 20]).await;
        let error = run(&http(port, 200)).await.expect_err("huge");
        assert!(matches!(error, CheckError::Malformed(_)), "{error}");
    }

    fn v6(probe: Probe) -> Check {
        Check {
            address: Ipv6Addr::LOCALHOST.into(),
            ..check(probe)
        }
    }

    #[tokio::test]
    async fn tcp_check_over_ipv6_passes_on_a_listener_and_fails_on_a_closed_port() {
        let listener = TcpListener::bind("[::1]:0").await.expect("listen on ::1");
        let port = listener.local_addr().expect("address").port();
        let sourced = Check {
            source: Some(Ipv6Addr::LOCALHOST.into()),
            ..v6(Probe::Tcp { port })
        };
        run(&sourced).await.expect("up, from ::1");
        drop(listener);
        let error = run(&v6(Probe::Tcp { port })).await.expect_err("down");
        assert!(matches!(error, CheckError::Io(_)), "{error}");
    }

    #[tokio::test]
    async fn http_check_over_ipv6_names_the_bracketed_server_in_the_host_header() {
        let (port, server) = serve_on(
            Ipv6Addr::LOCALHOST.into(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )
        .await;
        let check = v6(Probe::Http {
            port,
            uri: "/".into(),
            vhost: None,
            status: 200,
        });
        run(&check).await.expect("up");
        let request = server.await.expect("the request");
        assert!(
            request.contains(&format!("\r\nHost: [::1]:{port}\r\n")),
            "{request}"
        );
    }

    #[tokio::test]
    async fn icmpv6_check_answers_on_loopback() {
        run(&v6(Probe::Icmp))
            .await
            .expect("loopback answers ICMPv6 pings");
    }

    #[tokio::test]
    async fn icmp_check_answers_on_loopback() {
        run(&check(Probe::Icmp))
            .await
            .expect("loopback answers pings");
    }
}
