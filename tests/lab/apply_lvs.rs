//! `lbconsole apply` for the LB Layer4 tab on the real kernel, with real traffic: a
//! client namespace reaches a VIP on the test's namespace (the director), which
//! IPVS spreads over backend namespaces running small HTTP and UDP servers that
//! answer with their own name.

use std::path::PathBuf;
use std::time::Duration;

use lbconsole::apply;
use lbconsole::config::parse::parse_lvs;
use lbconsole::kernel::ipvs::IpvsNetlink;
use lbconsole::kernel::{Cause, IpvsBackend, IpvsObservation, KernelError, SyncDaemon, SyncRole};
use lbconsole::plan::ipvs::{IpvsOp, director_marks};
use lbconsole::plan::overrides::Overrides;

use crate::support::{Background, Lab, Netns, wait_until};

/// An HTTP/1.1 server (keep-alive) on port 80, and a UDP responder on port 53,
/// both answering with the backend's name.
const BACKEND: &str = r#"
import http.server, socket, sys, threading
name, address = sys.argv[1], sys.argv[2]
# Bound before the HTTP server, so a backend that answers HTTP (what the
# farm waits for) already has its UDP port too.
udp_socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp_socket.bind((address, 53))
def udp():
    while True:
        _, peer = udp_socket.recvfrom(512)
        udp_socket.sendto(name.encode(), peer)
threading.Thread(target=udp, daemon=True).start()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # health checks reset their connections once they have the status
Server((address, 80), Handler).serve_forever()
"#;

/// The director (the test's namespace) with a client on eth1 (198.51.100.0/24,
/// VIPs 198.51.100.10-20) and `backends` backends `web1..` on eth2.. (10.0.N.2,
/// director 10.0.N.1), each routing back through the director as NAT needs.
pub(crate) struct Farm {
    pub(crate) lab: Lab,
    pub(crate) client: Netns,
    backends: Vec<Netns>,
    /// The running server of each backend; `None` while stopped.
    servers: Vec<Option<Background>>,
}

pub(crate) fn farm(name: &str, backends: usize) -> Farm {
    let lab = Lab::new(name);
    lab.sysctl("net/ipv4/ip_forward", "1");
    let client = lab.netns("client");
    lab.veth("eth1", "c1", &client);
    client.ip(&["addr", "add", "198.51.100.2/24", "dev", "c1"]);
    client.ip(&["route", "add", "default", "via", "198.51.100.1"]);
    let mut namespaces = Vec::new();
    let mut servers = Vec::new();
    for n in 1..=backends {
        let backend = lab.netns(&format!("web{n}"));
        let peer = format!("b{n}");
        lab.veth(&format!("eth{}", n + 1), &peer, &backend);
        let address = format!("10.0.{n}.2");
        backend.ip(&["addr", "add", &format!("{address}/24"), "dev", &peer]);
        backend.ip(&["route", "add", "default", "via", &format!("10.0.{n}.1")]);
        servers.push(Some(serve(&backend, n)));
        namespaces.push(backend);
    }
    let mut network = String::from(
        "service network eth1\n    ip address 198.51.100.1/24\n    ip address 198.51.100.10/24\n    ip address 198.51.100.11/24\n    ip address 198.51.100.20/24\n",
    );
    for n in 1..=backends {
        network.push_str(&format!(
            "service network eth{}\n    ip address 10.0.{n}.1/24\n",
            n + 1
        ));
    }
    lab.write_config(&network, "", "");
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "network apply: {run}");
    let farm = Farm {
        lab,
        client,
        backends: namespaces,
        servers,
    };
    for n in 1..=backends {
        let address = format!("10.0.{n}.2");
        assert!(
            wait_until(Duration::from_secs(20), || farm.backend_answers(&address)),
            "backend web{n} did not come up"
        );
    }
    farm
}

/// Backend `n`'s servers, answering with `webN` on 10.0.N.2.
fn serve(backend: &Netns, n: usize) -> Background {
    backend.spawn(&format!(
        "exec python3 -c '{}' web{n} 10.0.{n}.2",
        BACKEND.replace('\'', "\"")
    ))
}

impl Farm {
    /// Kills backend `n`'s servers (1-based).
    pub(crate) fn stop(&mut self, n: usize) {
        self.servers[n - 1] = None;
    }

    /// Backend `n`'s namespace (1-based).
    pub(crate) fn backend(&self, n: usize) -> &Netns {
        &self.backends[n - 1]
    }

    /// Starts backend `n`'s servers again and waits until it answers.
    pub(crate) fn start(&mut self, n: usize) {
        // Whatever ran there goes first: the new server cannot bind while the
        // old one still listens (`x = Some(new)` would stop the old one only
        // after starting the new one).
        self.servers[n - 1] = None;
        self.servers[n - 1] = Some(serve(&self.backends[n - 1], n));
        let address = format!("10.0.{n}.2");
        assert!(
            wait_until(Duration::from_secs(20), || self.backend_answers(&address)),
            "backend web{n} did not come back"
        );
    }

    /// Writes `lvs` as lvs.conf (network.conf as it is) and applies it: the
    /// plan `apply` printed.
    pub(crate) fn configure(&self, lvs: &str) -> String {
        let network = std::fs::read_to_string(self.lab.config_dir().join("network.conf"))
            .expect("network.conf");
        self.lab.write_config(&network, "", lvs);
        let run = self.lab.lbconsole(&["apply"]);
        assert!(run.success(), "apply: {run}");
        run.stdout
    }

    /// Whether the director can fetch a page from a backend (it is listening).
    fn backend_answers(&self, address: &str) -> bool {
        self.lab
            .try_sh(&format!("curl -s --max-time 2 http://{address}/"))
            .success()
    }

    /// `count` new connections from the client to `url`; the backends' answers.
    pub(crate) fn fetch(&self, url: &str, count: usize) -> Vec<String> {
        let out = self.client.sh(&format!(
            "for i in $(seq {count}); do curl -s --max-time 3 {url}; echo; done"
        ));
        out.lines().map(str::to_owned).collect()
    }

    fn scratch(&self, name: &str) -> PathBuf {
        self.lab.state_dir().join(name)
    }
}

/// `ipvsadm -Ln` as words: each service line with the lines of its real servers.
pub(crate) fn ipvsadm_table(lab: &Lab) -> Vec<Vec<String>> {
    let text = lab.sh("ipvsadm -Ln");
    let mut services: Vec<Vec<String>> = Vec::new();
    for line in text.lines().skip(3) {
        let words = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.starts_with("  ->") {
            if let Some(service) = services.last_mut() {
                service.push(words);
            }
        } else {
            services.push(vec![words]);
        }
    }
    services
}

pub(crate) fn tally(answers: &[String]) -> std::collections::BTreeMap<&str, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for answer in answers {
        *counts.entry(answer.as_str()).or_default() += 1;
    }
    counts
}

const WEIGHTED: &str = "\
director web 198.51.100.10:80 TCP
    balance roundrobin
    mode nat
    server web1 10.0.1.2:80 weight 3
    server web2 10.0.2.2:80 weight 1
";

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn weights_3_and_1_split_40_new_connections_30_to_10() {
    let farm = farm("lvs-split", 2);
    let plan = farm.configure(WEIGHTED);
    assert!(
        plan.contains("add service tcp 198.51.100.10:80 (scheduler wrr) with 2 real server(s)"),
        "{plan}"
    );
    let answers = farm.fetch("http://198.51.100.10/", 40);
    let counts = tally(&answers);
    assert_eq!(counts.get("web1"), Some(&30), "{answers:?}");
    assert_eq!(counts.get("web2"), Some(&10), "{answers:?}");
    assert_eq!(
        farm.lab.lbconsole(&["apply"]).expect_success(),
        "no changes\n"
    );

    let status = farm.lab.lbconsole(&["status"]).expect_success();
    assert!(
        status
            .lines()
            .any(|l| l.trim_start().starts_with("web ") && l.contains("tcp 198.51.100.10:80  wrr")),
        "{status}"
    );
    assert!(status.contains("-> 10.0.1.2:80"), "{status}");
    // The kernel copies its per-CPU counters into what it reports every two
    // seconds (the rate estimator), so the total may lag the traffic briefly.
    let service = || {
        let json: serde_json::Value =
            serde_json::from_str(&farm.lab.lbconsole(&["status", "--json"]).expect_success())
                .expect("JSON");
        json["ipvs"]["services"][0].clone()
    };
    let connections = |service: &serde_json::Value| -> u64 {
        service["destinations"]
            .as_array()
            .expect("destinations")
            .iter()
            .map(|d| d["stats"]["connections"].as_u64().unwrap_or(0))
            .sum()
    };
    assert_eq!(service()["director"], "web");
    assert!(
        wait_until(Duration::from_secs(10), || connections(&service()) == 40),
        "{:#}",
        service()
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_weight_change_keeps_an_open_connection() {
    let farm = farm("lvs-weight", 2);
    farm.configure(WEIGHTED);
    let go = farm.scratch("go");
    let log = farm.scratch("client.log");
    let client = farm.client.spawn(&format!(
        "exec python3 -c '
import http.client, os, time
c = http.client.HTTPConnection(\"198.51.100.10\", 80, timeout=10)
c.request(\"GET\", \"/\"); first = c.getresponse().read().decode()
open(\"{log}\", \"w\").write(first + \"\\n\")
while not os.path.exists(\"{go}\"): time.sleep(0.1)
c.request(\"GET\", \"/\"); second = c.getresponse().read().decode()
open(\"{log}\", \"a\").write(second + \"\\n\")
'",
        log = log.display(),
        go = go.display()
    ));
    // Python starts slowly in a busy VM.
    assert!(wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.ends_with('\n'))
    }));
    let first = std::fs::read_to_string(&log).expect("first answer");

    let plan = farm.configure(&WEIGHTED.replace("weight 1", "weight 5"));
    assert_eq!(
        plan,
        "set real server 10.0.2.2:80 of tcp 198.51.100.10:80: masq weight 1 -> masq weight 5\napplied 1 change\n"
    );
    std::fs::write(&go, "").expect("go");
    // The client polls for `go` and asks again: seconds in a busy VM.
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::read_to_string(&log)
            .is_ok_and(|l| l.lines().count() == 2)),
        "the open connection did not survive the re-apply"
    );
    let answers = std::fs::read_to_string(&log).expect("answers");
    let lines: Vec<&str> = answers.lines().collect();
    assert_eq!(lines[0], first.trim_end());
    assert_eq!(
        lines[1], lines[0],
        "the kept connection moved to another backend"
    );
    drop(client);
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn persistence_keeps_one_client_on_one_backend() {
    let farm = farm("lvs-persist", 2);
    farm.configure(
        "director web 198.51.100.10:80 TCP\n    balance roundrobin\n    option persistence timeout 60\n    server web1 10.0.1.2:80\n    server web2 10.0.2.2:80\n",
    );
    let answers = farm.fetch("http://198.51.100.10/", 20);
    let counts = tally(&answers);
    assert_eq!(
        counts.len(),
        1,
        "one client went to several backends: {answers:?}"
    );
    assert_eq!(counts.values().sum::<usize>(), 20, "{answers:?}");
    assert_eq!(
        ipvsadm_table(&farm.lab)[0][0],
        "TCP 198.51.100.10:80 wrr persistent 60"
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_udp_service_answers_datagrams() {
    let farm = farm("lvs-udp", 2);
    farm.configure(
        "director dns 198.51.100.11:53 UDP\n    balance roundrobin\n    option onepacket\n    server dns1 10.0.1.2\n    server dns2 10.0.2.2\n",
    );
    let answers = farm.client.sh("exec python3 -c '
import socket
names = []
for i in range(10):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(b\"q\", (\"198.51.100.11\", 53))
    names.append(s.recv(512).decode())
print(\" \".join(names))
'");
    let names: Vec<&str> = answers.split_whitespace().collect();
    assert_eq!(names.len(), 10, "{answers}");
    assert!(
        names.contains(&"web1") && names.contains(&"web2"),
        "one-packet round robin uses both: {answers}"
    );
    assert_eq!(
        ipvsadm_table(&farm.lab)[0][0],
        "UDP 198.51.100.11:53 wrr ops"
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn an_fwmark_service_takes_the_packets_a_mark_sends_it() {
    let farm = farm("lvs-fwmark", 2);
    let lvs = "director mail\n    balance roundrobin\n    server m1 10.0.1.2:80\n    server m2 10.0.2.2:80\n";
    farm.configure(lvs);
    let (config, _) = parse_lvs(lvs.as_bytes());
    let mark = director_marks(&config)["mail"];
    // Flows will set this mark; here the test does, for one address and port.
    farm.lab.sh(&format!(
        "nft add table ip t && nft add chain ip t pre '{{ type filter hook prerouting priority mangle; }}' && nft add rule ip t pre ip daddr 198.51.100.20 tcp dport 80 meta mark set {mark:#x}"
    ));
    let answers = farm.fetch("http://198.51.100.20/", 10);
    let counts = tally(&answers);
    assert_eq!(
        (counts.get("web1"), counts.get("web2")),
        (Some(&5), Some(&5)),
        "{answers:?}"
    );
    assert_eq!(ipvsadm_table(&farm.lab)[0][0], format!("FWM {mark} wrr"));
    let status = farm.lab.lbconsole(&["status"]).expect_success();
    assert!(
        status.lines().any(|l| l.trim_start().starts_with("mail ")
            && l.contains(&format!("fwmark {mark:#x}  wrr"))),
        "{status}"
    );
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn gateway_and_tunnel_services_forward_by_route_and_tunnel() {
    let lab = Lab::new("lvs-modes");
    lab.write_config(
        "",
        "",
        "director dr 192.0.2.10:80 TCP\n    mode gateway\n    server a 10.0.1.2:8080\n\ndirector tun 192.0.2.11:80 TCP\n    mode tunnel\n    server b 10.0.2.2\n\ndirector nat 192.0.2.12:80 TCP\n    mode nat\n    server c 10.0.3.2:8080\n",
    );
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "{run}");
    assert_eq!(
        ipvsadm_table(&lab),
        [
            ["TCP 192.0.2.10:80 wlc", "-> 10.0.1.2:80 Route 1 0 0"],
            ["TCP 192.0.2.11:80 wlc", "-> 10.0.2.2:80 Tunnel 1 0 0"],
            ["TCP 192.0.2.12:80 wlc", "-> 10.0.3.2:8080 Masq 1 0 0"],
        ]
    );
}

/// `lvs.conf` with one director per scheduler name, on ports from 1000.
fn one_director_per_scheduler(names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                "director d{i} 192.0.2.1:{} TCP\n    balance {name}\n    server s 10.0.0.2\n\n",
                1000 + i
            )
        })
        .collect()
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn every_scheduler_name_is_accepted_by_the_kernel() {
    let lab = Lab::new("lvs-schedulers");
    // Every spelling lbconsole takes except `twos`, whose kernel module arrived in
    // Linux 6.2 (see the next test).
    let names = [
        "roundrobin",
        "leastconn",
        "leastconn localitybased",
        "leastconn localitybased replication",
        "source",
        "srcdst",
        "dest",
        "shortestexpected",
        "shortexpdelay",
        "neverqueue",
        "mh",
        "fo",
        "ovh",
        "rr",
        "wrr",
        "lc",
        "wlc",
        "lblc",
        "lblcr",
        "dh",
        "sh",
        "sed",
        "nq",
        "ovf",
    ];
    lab.write_config("", "", &one_director_per_scheduler(&names));
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "{run}");
    let table = ipvsadm_table(&lab);
    assert_eq!(table.len(), names.len(), "{table:?}");
    let kernel: std::collections::BTreeSet<&str> = table
        .iter()
        .filter_map(|service| service[0].split(' ').nth(2))
        .collect();
    let expected = [
        "dh", "fo", "lblc", "lblcr", "mh", "nq", "ovf", "sed", "sh", "wlc", "wrr",
    ];
    assert_eq!(kernel, expected.into_iter().collect(), "{table:?}");
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn twos_works_where_the_kernel_has_it_and_is_refused_plainly_where_not() {
    let lab = Lab::new("lvs-twos");
    lab.write_config("", "", &one_director_per_scheduler(&["roundrobin", "twos"]));
    let run = lab.lbconsole(&["apply"]);
    let module = lab.try_sh("modinfo ip_vs_twos").success();
    if module {
        assert!(run.success(), "{run}");
        assert_eq!(ipvsadm_table(&lab)[1][0], "TCP 192.0.2.1:1001 twos");
    } else {
        assert_eq!(run.code(), Some(1));
        assert!(
            run.stderr
                .contains("unknown scheduler `twos` (no ip_vs_twos module)")
                && run
                    .stderr
                    .contains("the 1 change(s) made before it were undone"),
            "{}",
            run.stderr
        );
        assert!(
            ipvsadm_table(&lab).is_empty(),
            "the roundrobin service was left behind"
        );
    }
}

/// The real IPVS backend, refusing one operation on purpose.
struct RefuseAt {
    inner: IpvsNetlink,
    refuse: usize,
}

impl IpvsBackend for RefuseAt {
    async fn observe(&mut self) -> Result<IpvsObservation, KernelError> {
        self.inner.observe().await
    }

    async fn execute(&mut self, ops: &[IpvsOp]) -> Vec<Result<(), KernelError>> {
        let refused = std::mem::replace(&mut self.refuse, usize::MAX);
        let mut results = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            results.push(if index == refused {
                Err(KernelError::Operation {
                    op: op.to_string(),
                    cause: Cause::Other("injected failure".to_owned()),
                })
            } else {
                self.inner.execute(std::slice::from_ref(op)).await.remove(0)
            });
        }
        results
    }

    async fn sync_daemons(&mut self) -> Result<Vec<SyncDaemon>, KernelError> {
        self.inner.sync_daemons().await
    }

    async fn start_sync_daemon(&mut self, daemon: &SyncDaemon) -> Result<(), KernelError> {
        self.inner.start_sync_daemon(daemon).await
    }

    async fn stop_sync_daemon(&mut self, role: SyncRole) -> Result<(), KernelError> {
        self.inner.stop_sync_daemon(role).await
    }

    async fn expire_quiescent_templates(&mut self) -> Result<(), KernelError> {
        self.inner.expire_quiescent_templates().await
    }
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_refusal_at_any_operation_leaves_the_ipvs_table_as_it_was() {
    let lab = Lab::new("lvs-undo");
    let from = "director web 192.0.2.10:80 TCP\n    balance roundrobin\n    server a 10.0.1.2 weight 3\n    server b 10.0.1.3\n\ndirector gone 192.0.2.11:80 TCP\n    server c 10.0.1.4\n\ndirector mail\n    server m 10.0.1.5\n";
    let to = "director web 192.0.2.10:80 TCP\n    balance roundrobin\n    server a 10.0.1.2\n    server d 10.0.1.6\n\ndirector new 192.0.2.12:443 TCP\n    option persistence\n    server e 10.0.1.7\n    server f 10.0.1.8\n\ndirector mail\n    balance source\n    server m 10.0.1.5\n";
    lab.write_config("", "", from);
    assert!(lab.lbconsole(&["apply"]).success());
    let before = lab.sh("ipvsadm -Sn");
    let (to, _) = parse_lvs(to.as_bytes());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let ops = runtime.block_on(async {
        let mut ipvs = IpvsNetlink::connect().await.expect("IPVS");
        apply::plan_ipvs(&mut ipvs, &to, None, &[], &Overrides::default())
            .await
            .expect("a plan")
    });
    assert!(ops.len() >= 6, "{ops:#?}");
    for refuse in 0..ops.len() {
        let result = runtime.block_on(async {
            let mut backend = RefuseAt {
                inner: IpvsNetlink::connect().await.expect("IPVS"),
                refuse,
            };
            apply::execute_ipvs(&mut backend, &ops).await
        });
        assert!(result.is_err(), "operation {refuse} was not refused");
        assert_eq!(
            lab.sh("ipvsadm -Sn"),
            before,
            "refusing {} changed the table",
            ops[refuse]
        );
    }
}

/// Four directors of every kind of key and setting (IPv4, IPv6 with
/// persistence, an fwmark), whose outline the kernel must give back as planned.
const PARTIAL: &str = "director a 192.0.2.1:80 TCP\n    server a1 10.0.1.1 weight 1\n    server a2 10.0.1.2 weight 2\n\ndirector b 192.0.2.2:80 TCP\n    balance roundrobin\n    server b1 10.0.2.1 weight 1\n    server b2 10.0.2.2 weight 2\n\ndirector c [2001:db8::1]:443 TCP\n    option persistence timeout 300\n    server c1 [2001:db8:1::1]:443\n\ndirector d\n    balance source\n    server d1 10.0.4.1\n";

/// `ipvsadm -Sn`'s `table` with the real server line of `server` (`-r
/// ADDRESS:PORT`) at weight `to`.
fn with_weight(table: &str, server: &str, to: u32) -> String {
    table
        .lines()
        .map(|line| match line.split_once(&format!("-r {server} ")) {
            Some((head, tail)) => {
                let (mode, _) = tail.split_once(" -w ").expect("a weight");
                format!("{head}-r {server} {mode} -w {to}\n")
            }
            None => format!("{line}\n"),
        })
        .collect()
}

#[test]
#[ignore = "lab: runs in the VM kernel (tests/lab/run)"]
fn a_hand_change_to_another_service_waits_for_the_next_whole_read() {
    let lab = Lab::new("lvs-partial");
    lab.write_config("", "", PARTIAL);
    assert!(lab.lbconsole(&["apply"]).success());
    let applied = lab.sh("ipvsadm -Sn");
    // By hand: a1 of the director the next change touches, b1 of another.
    lab.sh("ipvsadm -e -t 192.0.2.1:80 -r 10.0.1.1:80 -m -w 4");
    lab.sh("ipvsadm -e -t 192.0.2.2:80 -r 10.0.2.1:80 -m -w 4");

    let a2_at_7 = PARTIAL.replace("a2 10.0.1.2 weight 2", "a2 10.0.1.2 weight 7");
    lab.write_config("", "", &a2_at_7);
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "set real server 10.0.1.1:80 of tcp 192.0.2.1:80: masq weight 4 -> masq weight 1\n\
         set real server 10.0.1.2:80 of tcp 192.0.2.1:80: masq weight 2 -> masq weight 7\n\
         applied 2 changes\n",
        "the touched service is planned from what the kernel has"
    );
    let wanted = with_weight(&applied, "10.0.1.2:80", 7);
    assert_eq!(
        lab.sh("ipvsadm -Sn"),
        with_weight(&wanted, "10.0.2.1:80", 4),
        "only the touched service was read: b1 keeps its hand-set weight"
    );

    // The same file again: a re-apply reads the whole table.
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "set real server 10.0.2.1:80 of tcp 192.0.2.2:80: masq weight 4 -> masq weight 1\n\
         applied 1 change\n"
    );
    assert_eq!(lab.sh("ipvsadm -Sn"), wanted);

    // A hand change to a service's settings fails the check of the services:
    // the next change reads the whole table, so b2's hand-set weight goes too.
    lab.sh("ipvsadm -E -t 192.0.2.2:80 -s sh");
    lab.sh("ipvsadm -e -t 192.0.2.2:80 -r 10.0.2.2:80 -m -w 5");
    lab.write_config("", "", PARTIAL);
    let run = lab.lbconsole(&["apply"]);
    assert!(run.success(), "{}", run.stderr);
    assert_eq!(lab.sh("ipvsadm -Sn"), applied, "{}", run.stdout);
    assert_eq!(run.stdout.lines().last(), Some("applied 3 changes"));
}
