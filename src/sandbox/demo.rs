//! The sandbox alive. Around the example configuration the demo builds what an
//! appliance would find in a rack, all in namespaces of the sandbox's own:
//!
//! - a switch in the peer namespace: the bond's two peers (eth2, eth3) bridged,
//!   carrying the real servers' VLAN 100, with the example's router 10.0.0.254
//!   (and 2001:db8:100::fe);
//! - the example's real servers (`lvs.conf`), each a namespace of its own on
//!   that VLAN, answering with its name: HTTP, a TCP greeting or a UDP datagram.
//!   [`DOWN_ON_PURPOSE`] has none, so health shows a server down. Those of the
//!   IPv6 director `web6` have an IPv6 address too and answer on both;
//! - a demo client at 192.168.0.254 and 2001:db8::fe (eth0's peer) that asks
//!   each VIP once a second and writes what answered to `demo-client.txt` in the
//!   sandbox dir;
//! - `lbconsole daemon` on the sandbox's dirs: it applies the example, as at an
//!   appliance's boot, and checks the servers.
//!
//! Servers and client are threads of the console, so they end with it however it
//! ends; the daemon is a child that the kernel kills when the console dies.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket,
};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SandboxError;
use super::netns::Netns;
use crate::health::publish;
use crate::store::ConfigFiles;

/// The example's server that has no host: health shows it down.
pub const DOWN_ON_PURPOSE: &str = "web2";

/// What a demo server answers on, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Any request: `200 OK`, the server's name as the body.
    Http(u16),
    /// On connect: the server's name, one line.
    Tcp(u16),
    /// Any datagram: the server's name.
    Udp(u16),
}

impl Service {
    fn port(self) -> u16 {
        match self {
            Self::Http(port) | Self::Tcp(port) | Self::Udp(port) => port,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::Tcp(_) => "tcp",
            Self::Udp(_) => "udp",
        }
    }
}

struct Host {
    name: &'static str,
    address: Ipv4Addr,
    /// On the VLAN's IPv6 network too (a server of the IPv6 director).
    ipv6: Option<Ipv6Addr>,
    services: &'static [Service],
    /// A direct-routing server holds its director's VIP (on `lo`) and answers
    /// clients through the router, not through the director.
    direct_vip: Option<Ipv4Addr>,
}

const MAIL: &[Service] = &[Service::Tcp(25), Service::Tcp(110), Service::Tcp(143)];

/// The sandbox's real servers (`lvs.conf`), but [`DOWN_ON_PURPOSE`] (a test
/// holds this table to the sandbox's configuration).
const HOSTS: [Host; 8] = [
    host("mail1", [10, 0, 1, 11], MAIL, None),
    host("mail2", [10, 0, 1, 12], MAIL, None),
    host("web1", [10, 0, 2, 11], &[Service::Http(8080)], None).ipv6(0x2_0011),
    host("sorry1", [10, 0, 2, 99], &[Service::Http(8080)], None).ipv6(0x2_0099),
    host("dns1", [10, 0, 3, 11], &[Service::Udp(53)], None),
    host("dns2", [10, 0, 3, 12], &[Service::Udp(53)], None),
    host("app1", [10, 0, 4, 11], &[Service::Tcp(443)], Some(APP_VIP)),
    host("app2", [10, 0, 4, 12], &[Service::Tcp(443)], Some(APP_VIP)),
];

const APP_VIP: [u8; 4] = [192, 168, 0, 12];

const fn host(
    name: &'static str,
    address: [u8; 4],
    services: &'static [Service],
    direct_vip: Option<[u8; 4]>,
) -> Host {
    Host {
        name,
        address: ip(address),
        ipv6: None,
        services,
        direct_vip: match direct_vip {
            Some(vip) => Some(ip(vip)),
            None => None,
        },
    }
}

impl Host {
    /// The host's IPv6 address on the VLAN's network: `host` is its last 32
    /// bits, written as the IPv4 address's last two numbers read in hex
    /// (10.0.2.11 is 2001:db8:100::2:11).
    const fn ipv6(mut self, host: u32) -> Host {
        let s = SERVERS6.segments();
        self.ipv6 = Some(Ipv6Addr::new(
            s[0],
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            (host >> 16) as u16,
            host as u16,
        ));
        self
    }
}

const fn ip(a: [u8; 4]) -> Ipv4Addr {
    Ipv4Addr::new(a[0], a[1], a[2], a[3])
}

/// The real servers' VLAN, its prefix, and the director's address on it
/// (`examples/network.conf`: vlan100 on bond0, 10.0.0.1/16): NAT servers
/// answer through the director.
const VLAN: u16 = 100;
const PREFIX: u8 = 16;
const DIRECTOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The example's router on the VLAN (`ip route 10.200.0.0/16 10.0.0.254`):
/// the peer namespace, where the client is.
const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);
/// The VLAN's IPv6 network (the sandbox's `ip address 2001:db8:100::1/64` on
/// vlan100), the director's address there and the router's
/// (`ip route 2001:db8:200::/48 2001:db8:100::fe`).
const SERVERS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);
const PREFIX6: u8 = 64;
const DIRECTOR6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 1);
const ROUTER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0xfe);

/// What the demo client asks each round: every VIP of the sandbox's
/// configuration, of both families.
const TARGETS: [(&str, Service, IpAddr); 7] = [
    ("web", Service::Http(80), v4([192, 168, 0, 10])),
    ("maildirect", Service::Tcp(25), v4([192, 168, 0, 2])),
    ("maildirect", Service::Tcp(110), v4([192, 168, 0, 2])),
    ("maildirect", Service::Tcp(143), v4([192, 168, 0, 2])),
    ("dns", Service::Udp(53), v4([192, 168, 0, 11])),
    ("app", Service::Tcp(443), v4(APP_VIP)),
    (
        "web6",
        Service::Http(80),
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10)),
    ),
];

const fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(ip(a))
}
/// Where no flow lets new traffic in (`flow alltherest deny`): the client
/// knocks every few rounds, so that the Flows tab shows a drop counted.
const BLOCKED: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(192, 168, 0, 1), 80);
const KNOCK_EVERY: u64 = 5;
const ROUND: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(2);
/// How long the daemon may take to apply the example (the lab VM is slow).
const DAEMON_START: Duration = Duration::from_secs(300);

pub const TALLY: &str = "demo-client.txt";
/// The demo client's addresses (eth0's peer), as the Setup tab and the tally
/// name them.
const CLIENT: &str = "192.168.0.254 and 2001:db8::fe";
pub const DAEMON_LOG: &str = "daemon.log";

pub struct Demo {
    /// The servers' namespaces (their threads keep them too).
    _hosts: Vec<Netns>,
    daemon: Child,
    stop: Arc<AtomicBool>,
    client: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl Demo {
    /// Builds the switch and the servers, starts the daemon and waits until it
    /// has applied the example, then starts the client. Must run on the main
    /// thread: the daemon is killed when the thread that started it ends.
    pub fn start(
        peer: &Netns,
        dir: &Path,
        config_dir: &Path,
        state_dir: &Path,
    ) -> Result<Demo, SandboxError> {
        switch(peer)?;
        let hosts = hosts(peer)?;
        serve(&hosts)?;
        let daemon = start_daemon(config_dir, state_dir, &dir.join(DAEMON_LOG))?;
        let mut demo = Demo {
            _hosts: hosts,
            daemon,
            stop: Arc::new(AtomicBool::new(false)),
            client: None,
            dir: dir.to_owned(),
        };
        demo.wait_for_daemon(state_dir)?;
        let peer = peer.try_clone().map_err(setup)?;
        let (tally, stop) = (dir.join(TALLY), demo.stop.clone());
        let state_dir = state_dir.to_owned();
        demo.client = Some(
            std::thread::Builder::new()
                .name("demo-client".to_owned())
                .spawn(move || {
                    wait_for_down_on_purpose(&state_dir, &stop);
                    client(&peer, &tally, &stop);
                })
                .map_err(setup)?,
        );
        Ok(demo)
    }

    /// The Setup tab's lines about the demo.
    pub fn details(&self) -> Vec<String> {
        let dir = self.dir.display();
        let dual: Vec<&str> = HOSTS
            .iter()
            .filter(|host| host.ipv6.is_some())
            .map(|host| host.name)
            .collect();
        vec![
            format!(
                "real servers: a namespace each on VLAN {VLAN}, answering with their names \
                 ({} over IPv6 too); {DOWN_ON_PURPOSE} has none: down on purpose",
                dual.join(" and ")
            ),
            format!(
                "demo client {CLIENT} asks each VIP once a second; what answered: \
                 {TALLY} in {dir}"
            ),
            format!(
                "lbconsole daemon applied the example and checks the servers; log: {DAEMON_LOG}"
            ),
        ]
    }

    /// Until the daemon listens for health readers, which it does once it has
    /// applied the example; then the example must be running.
    fn wait_for_daemon(&mut self, state_dir: &Path) -> Result<(), SandboxError> {
        let socket = publish::socket_path(state_dir);
        let log = self.dir.join(DAEMON_LOG);
        let deadline = Instant::now() + DAEMON_START;
        while !socket.exists() {
            if let Ok(Some(status)) = self.daemon.try_wait() {
                return Err(SandboxError::Setup(format!(
                    "lbconsole daemon ended ({status}); its log: {}",
                    log.display()
                )));
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Setup(format!(
                    "lbconsole daemon did not start within {DAEMON_START:?}; its log: {}",
                    log.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        match ConfigFiles::read_running(state_dir) {
            Ok(Some(_)) => Ok(()),
            _ => Err(SandboxError::Setup(format!(
                "lbconsole daemon could not apply the example; its log: {}",
                log.display()
            ))),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(client) = self.client.take() {
            let _ = client.join();
        }
        // SIGTERM: the daemon removes its socket and logs that it stops.
        let _ = crate::sys::terminate(&self.daemon);
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.daemon.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

fn setup(error: io::Error) -> SandboxError {
    SandboxError::Setup(error.to_string())
}

/// The peer namespace becomes the switch: eth2's and eth3's peers bridged,
/// VLAN 100 tagged on both, the router's addresses on the VLAN (the IPv6 one
/// `nodad`: usable at once, and nothing else claims it). Reverse-path
/// filtering is off there: answers come in where the switch would not route
/// back to their source (a direct-routing server's from its VIP, through the
/// VLAN; a one-packet NAT server's from its own address, through eth0's peer).
fn switch(peer: &Netns) -> Result<(), SandboxError> {
    let peers = super::PEERS.map(|peer| format!("peer-{}", peer.name));
    for conf in ["all", "default"]
        .into_iter()
        .chain(peers.iter().map(String::as_str))
    {
        peer.sysctl(&format!("net/ipv4/conf/{conf}/rp_filter"), "0")?;
    }
    let eth2 = super::PEERS
        .iter()
        .find_map(|peer| (peer.name == "eth2").then_some(peer.ipv4))
        .flatten()
        .unwrap_or("172.16.100.254/24");
    peer.batch(
        "ip",
        &format!(
            "address delete {eth2} dev peer-eth2\n\
             link add br0 type bridge vlan_filtering 1 stp_state 0 forward_delay 0\n\
             link set peer-eth2 master br0\n\
             link set peer-eth3 master br0\n\
             address add {eth2} dev br0\n\
             link set br0 up\n\
             link add link br0 name br0.{VLAN} type vlan id {VLAN}\n\
             address add {ROUTER}/{PREFIX} dev br0.{VLAN}\n\
             address add {ROUTER6}/{PREFIX6} dev br0.{VLAN} nodad\n\
             link set br0.{VLAN} up\n"
        ),
        None,
    )?;
    peer.batch(
        "bridge",
        &format!(
            "vlan add dev peer-eth2 vid {VLAN}\n\
             vlan add dev peer-eth3 vid {VLAN}\n\
             vlan add dev br0 vid {VLAN} self\n"
        ),
        None,
    )
}

/// One namespace per real server, its `eth0` plugged into the switch as an
/// untagged port of VLAN 100. An IPv6 server's address is `nodad` (usable at
/// once; nothing else on the VLAN claims it) and the director is its IPv6
/// gateway, as it is the IPv4 one of a NAT server.
fn hosts(peer: &Netns) -> Result<Vec<Netns>, SandboxError> {
    let mut namespaces = Vec::new();
    let (mut ports, mut vlans) = (String::new(), String::new());
    for host in &HOSTS {
        let netns = Netns::create().map_err(setup)?;
        let (name, address) = (host.name, host.address);
        let port = format!("sv-{name}");
        let mut script = format!(
            "link set lo up\n\
             link add eth0 type veth peer name {port} netns OTHER\n\
             address add {address}/{PREFIX} dev eth0\n\
             link set eth0 up\n"
        );
        match host.direct_vip {
            Some(vip) => {
                script.push_str(&format!("address add {vip}/32 dev lo\n"));
                script.push_str(&format!("route add default via {ROUTER}\n"));
            }
            None => script.push_str(&format!("route add default via {DIRECTOR}\n")),
        }
        if let Some(ipv6) = host.ipv6 {
            script.push_str(&format!(
                "address add {ipv6}/{PREFIX6} dev eth0 nodad\nroute add ::/0 via {DIRECTOR6}\n"
            ));
        }
        netns
            .batch("ip", &script, Some(peer))
            .map_err(|e| SandboxError::Setup(format!("server {name}: {e}")))?;
        ports.push_str(&format!("link set {port} master br0\nlink set {port} up\n"));
        vlans.push_str(&format!(
            "vlan add dev {port} vid {VLAN} pvid untagged\nvlan del dev {port} vid 1\n"
        ));
        namespaces.push(netns);
    }
    peer.batch("ip", &ports, None)?;
    peer.batch("bridge", &vlans, None)?;
    Ok(namespaces)
}

/// One thread per server and service, in the server's namespace; returns once
/// every one listens.
fn serve(namespaces: &[Netns]) -> Result<(), SandboxError> {
    let (ready, bound) = mpsc::channel();
    let mut started = 0;
    for (host, netns) in HOSTS.iter().zip(namespaces) {
        for &service in host.services {
            let netns = netns.try_clone().map_err(setup)?;
            let ready = ready.clone();
            let (name, address, dual) = (host.name, host.address, host.ipv6.is_some());
            std::thread::Builder::new()
                .name(format!("demo-{name}-{}", service.port()))
                .stack_size(256 * 1024)
                .spawn(move || {
                    let socket = netns
                        .enter()
                        .and_then(|()| Socket::bind(service, address, dual));
                    match socket {
                        Ok(socket) => {
                            let _ = ready.send(Ok(()));
                            socket.serve(name);
                        }
                        Err(error) => {
                            let _ = ready.send(Err(format!(
                                "server {name} {} {}: {error}",
                                service.label(),
                                service.port()
                            )));
                        }
                    }
                })
                .map_err(setup)?;
            started += 1;
        }
    }
    drop(ready);
    for _ in 0..started {
        match bound.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(SandboxError::Setup(error)),
            Err(_) => return Err(SandboxError::Setup("a demo server died".to_owned())),
        }
    }
    Ok(())
}

enum Socket {
    Http(TcpListener),
    Tcp(TcpListener),
    Udp(UdpSocket),
}

impl Socket {
    /// TCP listens on every address of the server's namespace (its own, and
    /// a direct-routing server's VIP); on `[::]` for a server with an IPv6
    /// address, which takes IPv4 too (a new namespace's `bindv6only` is 0).
    /// UDP answers from the server's IPv4 address.
    fn bind(service: Service, address: Ipv4Addr, dual: bool) -> io::Result<Socket> {
        let any = match dual {
            true => SocketAddr::from((Ipv6Addr::UNSPECIFIED, service.port())),
            false => SocketAddr::from((Ipv4Addr::UNSPECIFIED, service.port())),
        };
        Ok(match service {
            Service::Http(_) => Socket::Http(TcpListener::bind(any)?),
            Service::Tcp(_) => Socket::Tcp(TcpListener::bind(any)?),
            Service::Udp(port) => Socket::Udp(UdpSocket::bind((address, port))?),
        })
    }

    /// Answers, one request at a time, until the console ends.
    fn serve(self, name: &str) {
        let answer = format!("{name}\n");
        let (listener, http) = match self {
            Socket::Http(listener) => (listener, true),
            Socket::Tcp(listener) => (listener, false),
            Socket::Udp(socket) => {
                let mut datagram = [0u8; 512];
                loop {
                    match socket.recv_from(&mut datagram) {
                        Ok((_, from)) => {
                            let _ = socket.send_to(answer.as_bytes(), from);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            }
        };
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = if http {
                        answer_http(stream, &answer)
                    } else {
                        greet(stream, &answer)
                    };
                }
                // Out of descriptors, say: a pause, not a spin.
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Reads the request's head (whatever it asks) and answers `200 OK`.
fn answer_http(mut stream: TcpStream, body: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 4096 {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

fn greet(mut stream: TcpStream, line: &str) -> io::Result<()> {
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(line.as_bytes())
}

/// Starts `lbconsole daemon` on the sandbox's dirs, logging to `log`. It is
/// in a session of its own (the terminal's signals are the console's) and
/// dies with the thread that starts it.
fn start_daemon(config_dir: &Path, state_dir: &Path, log: &Path) -> Result<Child, SandboxError> {
    let executable = std::env::current_exe().map_err(setup)?;
    let log = File::create(log).map_err(setup)?;
    let parent = std::process::id();
    let mut command = Command::new(executable);
    command
        .arg("daemon")
        .arg("--config-dir")
        .arg(config_dir)
        .arg("--state-dir")
        .arg(state_dir)
        .env_remove("LBCONSOLE_CONFIG_DIR")
        .env_remove("LBCONSOLE_STATE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    super::sys::child_dies_with_parent_on_exec(&mut command, parent);
    command
        .spawn()
        .map_err(|e| SandboxError::Setup(format!("cannot start lbconsole daemon: {e}")))
}

/// Until the daemon has found [`DOWN_ON_PURPOSE`] down (its first check, in
/// seconds), or a minute at most. Sooner, the web director's persistence would
/// tie the client to it for five minutes: a persistence template outlives the
/// weight 0 that health gives a down server.
fn wait_for_down_on_purpose(state_dir: &Path, stop: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let reports = publish::read(state_dir).ok().flatten().unwrap_or_default();
        let down = reports.iter().any(|report| {
            report.server == DOWN_ON_PURPOSE && report.health == crate::health::state::Health::Down
        });
        if down {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// What the client got from one target, round after round.
#[derive(Default)]
struct Count {
    /// By the name that answered.
    answers: BTreeMap<String, u64>,
    failed: u64,
    last_failure: String,
}

/// The demo client, in the peer namespace until `stop`: each round asks every
/// target once, knocks where flows drop, and rewrites the tally.
fn client(peer: &Netns, tally: &Path, stop: &AtomicBool) {
    if let Err(error) = peer.enter() {
        let _ = std::fs::write(tally, format!("the demo client cannot start: {error}\n"));
        return;
    }
    let mut counts: Vec<Count> = TARGETS.iter().map(|_| Count::default()).collect();
    let mut knocks = Count::default();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        for ((_, service, address), count) in TARGETS.iter().zip(&mut counts) {
            let target = SocketAddr::new(*address, service.port());
            match ask(*service, target) {
                Ok(name) => *count.answers.entry(name).or_default() += 1,
                Err(error) => {
                    count.failed += 1;
                    count.last_failure = error.to_string();
                }
            }
        }
        if round.is_multiple_of(KNOCK_EVERY) {
            let outcome = match TcpStream::connect_timeout(&BLOCKED.into(), TIMEOUT / 4) {
                Ok(_) => "answered".to_owned(),
                Err(error) if error.kind() == io::ErrorKind::TimedOut => "dropped".to_owned(),
                Err(error) => error.to_string(),
            };
            *knocks.answers.entry(outcome).or_default() += 1;
        }
        round += 1;
        let text = tally_text(round, &counts, &knocks);
        let temporary = tally.with_extension("tmp");
        if std::fs::write(&temporary, text).is_ok() {
            let _ = std::fs::rename(&temporary, tally);
        }
        while started.elapsed() < ROUND && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One request: the name of the server that answered, and where the answer
/// came from when that is not where the request went.
fn ask(service: Service, target: SocketAddr) -> io::Result<String> {
    let mut answer = Vec::new();
    let mut elsewhere = None;
    match service {
        Service::Http(_) | Service::Tcp(_) => {
            let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            stream.set_write_timeout(Some(TIMEOUT))?;
            if let Service::Http(_) = service {
                stream.write_all(
                    b"GET / HTTP/1.1\r\nHost: www.example.com\r\n\
                      User-Agent: lbconsole-sandbox-demo\r\nConnection: close\r\n\r\n",
                )?;
            }
            stream.take(4096).read_to_end(&mut answer)?;
        }
        Service::Udp(_) => {
            // Not connected: an answer from another address is shown, not
            // dropped. (IPVS keeps no connection for a one-packet service, so
            // a NAT server's answer leaves with the server's own address.)
            let any = match target {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
            let socket = UdpSocket::bind((any, 0))?;
            socket.set_read_timeout(Some(TIMEOUT))?;
            socket.send_to(b"who are you?\n", target)?;
            let mut datagram = [0u8; 512];
            let (n, from) = socket.recv_from(&mut datagram)?;
            answer.extend_from_slice(&datagram[..n]);
            elsewhere = (from != target).then_some(from);
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let body = match service {
        Service::Http(_) => {
            if !text.starts_with("HTTP/1.1 200 ") {
                let status = text.lines().next().unwrap_or("nothing");
                return Err(io::Error::other(format!("HTTP answer: {status}")));
            }
            text.split_once("\r\n\r\n").map_or("", |(_, body)| body)
        }
        _ => &text,
    };
    let name: String = body.trim().chars().take(32).collect();
    match (name.as_str(), elsewhere) {
        ("", _) => Err(io::Error::other("an empty answer")),
        (_, Some(from)) => Ok(format!("{name} (from {from})")),
        (_, None) => Ok(name),
    }
}

fn tally_text(round: u64, counts: &[Count], knocks: &Count) -> String {
    let mut text = format!(
        "lbconsole sandbox: the demo client at {CLIENT} asks each VIP once a second \
         (round {round})\n"
    );
    let line = |text: &mut String, what: String, count: &Count| {
        let answered: u64 = count.answers.values().sum();
        let names: Vec<String> = count
            .answers
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let _ = write!(text, "{what:<34} {answered} answered: {}", names.join(", "));
        if count.failed > 0 {
            let _ = write!(
                text,
                "; {} failed, the last: {}",
                count.failed, count.last_failure
            );
        }
        text.push('\n');
    };
    for ((director, service, address), count) in TARGETS.iter().zip(counts) {
        let what = format!(
            "{director} {} {}",
            service.label(),
            SocketAddr::new(*address, service.port())
        );
        line(&mut text, what, count);
    }
    let knocked: Vec<String> = knocks
        .answers
        .iter()
        .map(|(outcome, n)| format!("{outcome} {n}"))
        .collect();
    let _ = writeln!(
        text,
        "{:<34} knocked every {KNOCK_EVERY} s, flows.conf drops it: {}",
        format!("blocked tcp {BLOCKED}"),
        knocked.join(", ")
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::flows::Policy;
    use crate::config::model::lvs::{ForwardMode, ServiceProtocol};
    use crate::config::parse::{parse_flows, parse_lvs};

    fn example(file: crate::config::ConfigFile) -> String {
        super::super::example::text(file).expect("the sandbox's configuration")
    }

    #[test]
    fn the_demo_runs_every_server_of_the_example_but_the_one_down_on_purpose() {
        let (lvs, _) = parse_lvs(example(crate::config::ConfigFile::Lvs).as_bytes());
        let mut seen = Vec::new();
        for director in &lvs.directors {
            let vip = director.service.as_ref().map(|s| s.value);
            for server in &director.servers {
                let name = server.name.value.as_str();
                seen.push(name.to_owned());
                let host = HOSTS.iter().find(|h| h.name == name);
                if name == DOWN_ON_PURPOSE {
                    assert!(host.is_none(), "{name} is down on purpose: no host");
                    assert!(server.check, "{name} is checked, so health shows it down");
                    continue;
                }
                let host = host.unwrap_or_else(|| panic!("no demo host for {name}"));
                let address = match server.address {
                    IpAddr::V4(_) => Some(IpAddr::V4(host.address)),
                    IpAddr::V6(_) => host.ipv6.map(IpAddr::V6),
                };
                assert_eq!(address, Some(server.address), "{name}");
                let port = server
                    .port
                    .or(vip.and_then(|v| v.port))
                    .map(|p| p.get())
                    .or(director.check.port.as_ref().map(|p| p.value.get()))
                    .unwrap_or_else(|| panic!("{name} has a port"));
                let udp = vip.is_some_and(|v| v.protocol() == ServiceProtocol::Udp);
                assert!(
                    host.services
                        .iter()
                        .any(|s| s.port() == port && matches!(s, Service::Udp(_)) == udp),
                    "{name} serves port {port}"
                );
                let direct = director.forward_mode() == ForwardMode::Gateway;
                assert_eq!(
                    host.direct_vip.map(std::net::IpAddr::V4),
                    direct.then(|| vip.unwrap().address),
                    "{name}"
                );
            }
        }
        for host in &HOSTS {
            assert!(
                seen.iter().any(|s| s == host.name),
                "{} is in lvs.conf",
                host.name
            );
        }
    }

    #[test]
    fn the_demo_client_asks_the_vips_of_the_example() {
        let (lvs, _) = parse_lvs(example(crate::config::ConfigFile::Lvs).as_bytes());
        let (flows, _) = parse_flows(example(crate::config::ConfigFile::Flows).as_bytes());
        for (director, service, address) in TARGETS {
            let port = service.port();
            let d = lvs.director(director).expect("the director exists");
            let by_vip = d.service.as_ref().is_some_and(|s| {
                s.value.address == address && s.value.port.map(|p| p.get()) == Some(port)
            });
            let by_flow = flows.flows.iter().any(|flow| {
                matches!(&flow.policy.value, Policy::Director(name) if name.as_str() == director)
                    && flow.rules.iter().any(|rule| {
                        let c = &rule.conditions;
                        c.dst.as_ref().is_some_and(|d| d.value.addr == address)
                            && c.dstport.as_ref().is_some_and(|p| {
                                p.value.first().get() <= port && port <= p.value.last().get()
                            })
                    })
            });
            assert!(
                by_vip || by_flow,
                "{director} is reached at {address}:{port}"
            );
        }
    }
}
