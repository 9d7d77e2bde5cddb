//! IPVS over IPv6 on the real kernel, with real traffic: AF_INET6 services in
//! NAT, direct routing and tunnel mode, an IPv6 fwmark service, and real
//! servers of the other family than their service's. Each table goes in
//! through the product's own path: the desired IPVS state, `plan::ipvs::diff`
//! against what the backend observes, and `apply::execute_ipvs`. (`lvs.conf`
//! does not take IPv6 on this branch yet, so the desired state is built here
//! as the planner will build it from an IPv6 `lvs.conf`.)
//!
//! Every IPv6 address lives in namespaces the test creates; duplicate address
//! detection is off there (and `nodad` on each address), so that no address
//! waits as `tentative`.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lbconsole::apply;
use lbconsole::config::model::types::Family;
use lbconsole::kernel::IpvsBackend;
use lbconsole::kernel::ipvs::IpvsNetlink;
use lbconsole::plan::ipvs::{
    DestKey, DestSettings, Forward, IpvsOp, IpvsState, Netmask, Service, ServiceKey,
    ServiceSettings, TCP, diff,
};
use tokio::runtime::Runtime;

use crate::apply_lvs::{ipvsadm_table, tally};
use crate::ipvs_backend::{lab_and_runtime, with_ipvs};
use crate::support::{Lab, Netns};

/// A namespace whose new links skip duplicate address detection.
pub(crate) fn netns6(lab: &Lab, name: &str) -> Netns {
    let netns = lab.netns(name);
    netns.sh("sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0");
    netns
}

/// An HTTP/1.1 server (keep-alive) on `[::]:80` of a namespace, answering
/// every request with its name: on every address there, so also on a VIP that
/// direct routing or a tunnel delivers to it. It runs on threads of the test
/// binary (a program's start costs seconds in the VM) and stops when dropped.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    accepting: Option<thread::JoinHandle<()>>,
}

pub(crate) fn serve(backend: &Netns, name: &'static str) -> Server {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let (ready, listening) = mpsc::channel();
    let accepting = backend.thread(move || {
        let listener = TcpListener::bind("[::]:80").expect("bind [::]:80");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let _ = ready.send(());
        while !stopped.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    thread::spawn(move || answer(stream, name));
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    listening
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{name} does not listen"));
    Server {
        stop,
        accepting: Some(accepting),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.join();
        }
    }
}

/// Answers each request of one connection with `name`, until the client
/// closes it (or is silent for 10 s).
fn answer(stream: TcpStream, name: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    loop {
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {}
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
            name.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// A connection from the calling thread's namespace, bounded by 3 s.
fn connect(to: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    Ok(stream)
}

/// One `GET /` on `stream`: the body of the answer.
fn ask(stream: &TcpStream) -> io::Result<String> {
    let mut writer = stream;
    writer.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")?;
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.strip_prefix("Content-Length: ") {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// `count` new connections from `client` to `to`, one request each: the
/// backends' answers (empty where one failed).
pub(crate) fn fetch(client: &Netns, to: &str, count: usize) -> Vec<String> {
    let to: SocketAddr = to.parse().expect("a socket address");
    client
        .thread(move || {
            (0..count)
                .map(|_| connect(to).and_then(|s| ask(&s)).unwrap_or_default())
                .collect()
        })
        .join()
        .expect("the client")
}

fn address(text: &str) -> IpAddr {
    text.parse().expect("an address")
}

fn vip(text: &str) -> ServiceKey {
    ServiceKey::Vip {
        protocol: TCP,
        address: address(text),
        port: 80,
    }
}

fn dest(text: &str, port: u16) -> DestKey {
    DestKey {
        address: address(text),
        port,
    }
}

/// An IPv6 service that is not persistent, as the planner makes one.
fn settings(scheduler: &str, family: Family) -> ServiceSettings {
    ServiceSettings {
        scheduler: scheduler.to_owned(),
        flags: 0,
        timeout: 0,
        netmask: Netmask::host(family),
        fwmark_protocol: 0,
    }
}

fn service(
    settings: ServiceSettings,
    forward: Forward,
    destinations: &[(DestKey, u32)],
) -> Service {
    Service {
        settings,
        destinations: destinations
            .iter()
            .map(|&(dest, weight)| (dest, DestSettings { forward, weight }))
            .collect(),
    }
}

/// Brings the kernel's IPVS table to `desired` the way an apply does: observe,
/// diff, execute (undoing on a refusal). Returns the plan, as it reads.
fn apply_table(runtime: &Runtime, desired: &IpvsState) -> Vec<String> {
    with_ipvs(runtime, async |ipvs: &mut IpvsNetlink| {
        let observed = ipvs.observe().await.expect("observe");
        let ops = diff(&observed.state, desired);
        apply::execute_ipvs(ipvs, &ops).await.expect("apply");
        assert_eq!(
            ipvs.observe().await.expect("observe").state,
            *desired,
            "the kernel's table reads back as applied"
        );
        ops.iter().map(ToString::to_string).collect()
    })
}

/// NAT, IPv6: the client (2001:db8::2) on eth1 reaches VIPs 2001:db8::10
/// (weights 3 and 1) and 2001:db8::20 (marked by nft, an IPv6 fwmark
/// service) on the director; web1 and web2 (2001:db8:N::2 on ethN+1) route
/// back through it. Then a weight change keeps an open connection where it is.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_ipv6_nat_vip_splits_30_to_10_and_a_weight_change_keeps_an_open_connection() {
    let (lab, runtime) = lab_and_runtime("ipvs6-nat");
    lab.sysctl("net/ipv6/conf/all/forwarding", "1");
    let client = netns6(&lab, "client");
    lab.veth("eth1", "c1", &client);
    lab.ip(&["link", "set", "eth1", "up"]);
    for local in ["2001:db8::1/64", "2001:db8::10/64", "2001:db8::20/64"] {
        lab.ip(&["-6", "addr", "add", local, "dev", "eth1", "nodad"]);
    }
    client.ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "c1", "nodad"]);
    client.ip(&["-6", "route", "add", "default", "via", "2001:db8::1"]);
    let mut servers = Vec::new();
    for n in 1..=2 {
        let backend = netns6(&lab, &format!("web{n}"));
        let (here, there) = (format!("eth{}", n + 1), format!("b{n}"));
        lab.veth(&here, &there, &backend);
        lab.ip(&["link", "set", &here, "up"]);
        let director = format!("2001:db8:{n}::1");
        lab.ip(&[
            "-6",
            "addr",
            "add",
            &format!("{director}/64"),
            "dev",
            &here,
            "nodad",
        ]);
        let own = format!("2001:db8:{n}::2/64");
        backend.ip(&["-6", "addr", "add", &own, "dev", &there, "nodad"]);
        backend.ip(&["-6", "route", "add", "default", "via", &director]);
        servers.push(serve(&backend, ["web1", "web2"][n - 1]));
    }

    let web = vip("2001:db8::10");
    let mark = ServiceKey::Fwmark {
        mark: 0x1_0001,
        family: Family::Ipv6,
    };
    let (web1, web2) = (dest("2001:db8:1::2", 80), dest("2001:db8:2::2", 80));
    let table = |weight2| IpvsState {
        services: BTreeMap::from([
            (
                web,
                service(
                    settings("wrr", Family::Ipv6),
                    Forward::Masquerade,
                    &[(web1, 3), (web2, weight2)],
                ),
            ),
            (
                mark,
                service(
                    ServiceSettings {
                        fwmark_protocol: TCP,
                        ..settings("wrr", Family::Ipv6)
                    },
                    Forward::Masquerade,
                    &[(web1, 1), (web2, 1)],
                ),
            ),
        ]),
    };
    let plan = apply_table(&runtime, &table(1));
    assert_eq!(
        plan,
        [
            "add service tcp [2001:db8::10]:80 (scheduler wrr) with 2 real server(s)",
            "add service fwmark 0x10001 IPv6 (scheduler wrr) with 2 real server(s)",
        ]
    );
    assert_eq!(
        ipvsadm_table(&lab),
        [
            [
                "TCP [2001:db8::10]:80 wrr",
                "-> [2001:db8:1::2]:80 Masq 3 0 0",
                "-> [2001:db8:2::2]:80 Masq 1 0 0",
            ],
            [
                "FWM 65537 IPv6 wrr",
                "-> [2001:db8:1::2]:80 Masq 1 0 0",
                "-> [2001:db8:2::2]:80 Masq 1 0 0",
            ],
        ]
    );

    let answers = fetch(&client, "[2001:db8::10]:80", 40);
    let counts = tally(&answers);
    assert_eq!(
        (counts.get("web1"), counts.get("web2")),
        (Some(&30), Some(&10)),
        "{answers:?}"
    );

    // Flows will set the mark on IPv6 packets; here the test does.
    lab.sh(
        "nft add table ip6 t && nft add chain ip6 t pre '{ type filter hook prerouting priority \
         mangle; }' && nft add rule ip6 t pre ip6 daddr 2001:db8::20 tcp dport 80 meta mark set \
         0x10001",
    );
    let answers = fetch(&client, "[2001:db8::20]:80", 4);
    let counts = tally(&answers);
    assert_eq!(
        (counts.get("web1"), counts.get("web2")),
        (Some(&2), Some(&2)),
        "{answers:?}"
    );

    // One connection open over the VIP, asked once before the weight change
    // and once after.
    let (answers, answered) = mpsc::channel();
    let (go, going) = mpsc::channel::<()>();
    let open = client.thread(move || -> io::Result<()> {
        let stream = connect("[2001:db8::10]:80".parse().expect("an address"))?;
        let _ = answers.send(ask(&stream)?);
        let _ = going.recv_timeout(Duration::from_secs(30));
        let _ = answers.send(ask(&stream)?);
        Ok(())
    });
    let first = answered
        .recv_timeout(Duration::from_secs(10))
        .expect("the first answer");
    assert!(first == "web1" || first == "web2", "{first}");
    let plan = apply_table(&runtime, &table(5));
    assert_eq!(
        plan,
        [
            "set real server [2001:db8:2::2]:80 of tcp [2001:db8::10]:80: masq weight 1 -> masq \
          weight 5"
        ]
    );
    go.send(()).expect("the client waits");
    let second = answered.recv_timeout(Duration::from_secs(10));
    let outcome = open.join().expect("the client");
    assert_eq!(
        second.as_deref(),
        Ok(first.as_str()),
        "the open connection did not survive the weight change, or moved: {outcome:?}"
    );
    drop(servers);
}

/// Direct routing and a tunnel, IPv6: the client, the director and both real
/// servers share one link (the director's bridge), as direct routing needs.
/// web1 holds the DR VIP 2001:db8::10 on `lo`; web2 takes IPv6-in-IPv6 on an
/// ip6tnl device and holds the tunnel VIP 2001:db8::11 on `lo`. Both answer
/// the client directly, from the VIP.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn ipv6_gateway_and_tunnel_services_forward_by_route_and_tunnel() {
    let (lab, runtime) = lab_and_runtime("ipvs6-modes");
    let client = netns6(&lab, "client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "c1", "nodad"]);
    let web1 = netns6(&lab, "web1");
    lab.veth("eth2", "b1", &web1);
    web1.ip(&["-6", "addr", "add", "2001:db8::21/64", "dev", "b1", "nodad"]);
    web1.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8::10/128",
        "dev",
        "lo",
        "nodad",
    ]);
    let web2 = netns6(&lab, "web2");
    lab.veth("eth3", "b2", &web2);
    web2.ip(&["-6", "addr", "add", "2001:db8::22/64", "dev", "b2", "nodad"]);
    web2.ip(&[
        "-6",
        "addr",
        "add",
        "2001:db8::11/128",
        "dev",
        "lo",
        "nodad",
    ]);
    web2.ip(&[
        "link",
        "add",
        "tun6",
        "type",
        "ip6tnl",
        "mode",
        "ip6ip6",
        "local",
        "2001:db8::22",
    ]);
    web2.ip(&["link", "set", "tun6", "up"]);
    lab.ip(&[
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
        "forward_delay",
        "0",
    ]);
    for port in ["eth1", "eth2", "eth3"] {
        lab.ip(&["link", "set", port, "master", "br0", "up"]);
    }
    lab.ip(&["link", "set", "br0", "up"]);
    lab.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "br0", "nodad"]);
    // The VIPs take traffic but are never a source: the tunnel's outer
    // packets come from 2001:db8::1, not from a VIP that web2 holds itself
    // (ip6tnl drops a packet whose outer source is one of its own addresses).
    for local in ["2001:db8::10/64", "2001:db8::11/64"] {
        lab.ip(&[
            "-6",
            "addr",
            "add",
            local,
            "dev",
            "br0",
            "nodad",
            "preferred_lft",
            "0",
        ]);
    }
    let servers = [serve(&web1, "web1"), serve(&web2, "web2")];

    let (dr, tunnel) = (vip("2001:db8::10"), vip("2001:db8::11"));
    let desired = IpvsState {
        services: BTreeMap::from([
            (
                dr,
                service(
                    settings("wlc", Family::Ipv6),
                    Forward::Route,
                    &[(dest("2001:db8::21", 80), 1)],
                ),
            ),
            (
                tunnel,
                service(
                    settings("wlc", Family::Ipv6),
                    Forward::Tunnel,
                    &[(dest("2001:db8::22", 80), 1)],
                ),
            ),
        ]),
    };
    apply_table(&runtime, &desired);
    assert_eq!(
        ipvsadm_table(&lab),
        [
            [
                "TCP [2001:db8::10]:80 wlc",
                "-> [2001:db8::21]:80 Route 1 0 0"
            ],
            [
                "TCP [2001:db8::11]:80 wlc",
                "-> [2001:db8::22]:80 Tunnel 1 0 0"
            ],
        ]
    );
    assert_eq!(
        fetch(&client, "[2001:db8::10]:80", 3),
        ["web1", "web1", "web1"]
    );
    // And with curl, as an administrator would check it.
    assert_eq!(
        client.sh("curl -g -6 -s --max-time 3 'http://[2001:db8::10]/'"),
        "web1"
    );
    let answers = fetch(&client, "[2001:db8::11]:80", 3);
    assert_eq!(
        answers,
        ["web2", "web2", "web2"],
        "web2: {}director: {}",
        web2.sh("ip -s -d link show tun6; ip -6 addr; ip -6 route"),
        lab.sh("ip -6 addr show br0; ipvsadm -Ln --stats")
    );
    // The tunnel carried them: web2's ip6tnl device received the packets.
    let received = web2.sh("cat /sys/class/net/tun6/statistics/rx_packets");
    assert!(
        received.trim().parse::<u64>().is_ok_and(|n| n >= 3),
        "tun6 received {received}"
    );
    drop(servers);
}

/// Mixed families: the kernel takes an IPv6 real server behind an IPv4
/// service, and an IPv4 one behind an IPv6 service, in tunnel mode only; the
/// backend sends each real server's own family and reads it back.
#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_real_server_of_the_other_family_is_taken_in_tunnel_mode_only() {
    let (lab, runtime) = lab_and_runtime("ipvs6-mixed");
    let four = vip("192.0.2.10");
    let six = vip("2001:db8::10");
    let desired = IpvsState {
        services: BTreeMap::from([
            (
                four,
                service(
                    settings("wlc", Family::Ipv4),
                    Forward::Tunnel,
                    &[(dest("2001:db8:1::11", 80), 1), (dest("10.0.1.2", 80), 2)],
                ),
            ),
            (
                six,
                service(
                    ServiceSettings {
                        flags: lbconsole::plan::ipvs::FLAG_PERSISTENT,
                        timeout: 300,
                        netmask: Netmask::prefix(Family::Ipv6, 64),
                        ..settings("wlc", Family::Ipv6)
                    },
                    Forward::Tunnel,
                    &[(dest("10.0.1.3", 80), 1)],
                ),
            ),
        ]),
    };
    apply_table(&runtime, &desired);
    let table = ipvsadm_table(&lab);
    assert_eq!(
        table[0],
        [
            "TCP 192.0.2.10:80 wlc",
            "-> 10.0.1.2:80 Tunnel 2 0 0",
            "-> [2001:db8:1::11]:80 Tunnel 1 0 0",
        ],
        "{table:?}"
    );
    assert_eq!(
        table[1],
        [
            "TCP [2001:db8::10]:80 wlc persistent 300 mask 64",
            "-> 10.0.1.3:80 Tunnel 1 0 0",
        ],
        "{table:?}"
    );
    let refused = with_ipvs(&runtime, async |ipvs: &mut IpvsNetlink| {
        let ops: Vec<IpvsOp> = [Forward::Masquerade, Forward::Route]
            .into_iter()
            .map(|forward| IpvsOp::AddDest {
                service: four,
                dest: dest("2001:db8:1::12", 80),
                settings: DestSettings { forward, weight: 1 },
            })
            .collect();
        let results = ipvs.execute(&ops).await;
        let reasons: Vec<String> = results
            .iter()
            .map(|r| {
                r.as_ref()
                    .map_or_else(ToString::to_string, |()| "ok".into())
            })
            .collect();
        assert_eq!(ipvs.observe().await.expect("observe").state, desired);
        reasons
    });
    assert_eq!(
        refused,
        [
            "add real server [2001:db8:1::12]:80 to tcp 192.0.2.10:80 (masq weight 1): \
             invalid request: Invalid argument (os error 22)",
            "add real server [2001:db8:1::12]:80 to tcp 192.0.2.10:80 (route weight 1): \
             invalid request: Invalid argument (os error 22)",
        ]
    );
}
