//! A large configuration that a real appliance could carry, built in memory.
//!
//! The output is deterministic (a fixed-seed generator picks the variety), so two
//! runs time the same text. It is meant to be free of errors: every name a file
//! refers to is defined, and every address that must be unique is. A diagnostic
//! on it is a generator bug or a validator bug, never noise.
//!
//! Address plan:
//! - `192.168.0.0/16` on `bond0`: VIPs from `192.168.1.1`, hosts that flows permit
//!   from `192.168.64.1`, flow-only service addresses from `192.168.128.1`.
//! - `10.0.0.0/12` on VLAN `bond1.100`: real servers, one address each, from `10.1.0.1`.
//! - routing tables 200-203, one default route each, for `table N` flows.

use std::fmt::Write;
use std::net::Ipv4Addr;

/// How big a configuration to build.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub directors: usize,
    pub servers_per_director: usize,
    pub flows: usize,
}

impl Shape {
    /// About 126,000 lines: 2,000 directors of 40 servers, 10,000 flows.
    pub const LARGE: Self = Self {
        directors: 2_000,
        servers_per_director: 40,
        flows: 10_000,
    };
}

/// The text of the three files.
#[derive(Debug, Clone, Default)]
pub struct Generated {
    pub network: String,
    pub flows: String,
    pub lvs: String,
}

impl Generated {
    pub fn lines(&self) -> usize {
        [&self.network, &self.flows, &self.lvs]
            .iter()
            .map(|text| text.lines().count())
            .sum()
    }
}

pub fn generate(shape: &Shape) -> Generated {
    let plan = Plan::new(shape);
    let mut random = SplitMix64(0x1bc0_75e5);
    Generated {
        network: network(),
        flows: flows(&plan, &mut random),
        lvs: lvs(&plan, &mut random),
    }
}

/// Routing tables defined in `network.conf`, each by one `ip route default … table N`.
const TABLES: [u32; 4] = [200, 201, 202, 203];

/// The interface real servers are reached through, for `option arpcheck iface`.
const SERVER_IFACE: &str = "bond1.100";

// Where each kind of address starts; each is handed out host by host.
const VIPS: [u8; 4] = [192, 168, 1, 0];
const FLOW_SERVICES: [u8; 4] = [192, 168, 128, 0];
const PERMITTED_HOSTS: [u8; 4] = [192, 168, 64, 0];
const SERVERS: [u8; 4] = [10, 1, 0, 0];
/// The last address of the servers' subnet, `10.0.0.0/12`.
const SERVERS_LAST: [u8; 4] = [10, 15, 255, 254];

fn network() -> String {
    // Physical ports carry no address: they are bond slaves.
    let mut out = String::new();
    for port in ["eth0", "eth1", "eth2", "eth3"] {
        let _ = writeln!(out, "service network {port}\n    auto on\n");
    }
    out.push_str(
        "\
service network eth4
    ip address 198.51.100.10/24
    ip route default 198.51.100.1 table 203

service network bond0
    type bonding
    bonding mode active-backup
    bonding miimon 100
    bonding primary eth0
    slave eth0 eth1
    ip address 192.168.0.5/16
    ip route default 192.168.0.1

service network bond1
    type bonding
    bonding mode 802.3ad
    bonding xmit-hash-policy layer3+4
    bonding lacp-rate fast
    slave eth2 eth3
    mtu 9000

service network bond1.100
    type vlan
    vlan id 100 parent bond1
    ip address 10.0.0.1/12
    ip route default 10.0.0.254 table 200

service network bond1.200
    type vlan
    vlan id 200 parent bond1
    mtu 1500
    ip address 172.16.0.5/24
    ip route 172.17.0.0/16 172.16.0.1
    ip route default 172.16.0.1 table 201

service network bond1.300
    type vlan
    vlan id 300 parent bond1
    ip address 203.0.113.5/255.255.255.0
    ip route default 203.0.113.1 table 202
",
    );
    out
}

/// Which directors exist, and which of them flows must reach.
struct Plan {
    shape: Shape,
    /// Directors without a VIP, by index; each needs at least one `director` flow.
    flow_only: Vec<usize>,
}

impl Plan {
    fn new(shape: &Shape) -> Self {
        let flow_only: Vec<usize> = (0..shape.directors)
            .filter(|&d| !Self::has_vip(d))
            .collect();
        let director_flows = (0..shape.flows)
            .filter(|&i| FlowKind::of(i) == FlowKind::Director)
            .count();
        assert!(
            flow_only.is_empty() || director_flows >= flow_only.len(),
            "{} flows hold {director_flows} `director` flows, too few for {} flow-only directors",
            shape.flows,
            flow_only.len(),
        );
        let servers = shape.directors * shape.servers_per_director;
        assert!(
            servers == 0 || hosts(SERVERS, servers - 1) <= Ipv4Addr::from(SERVERS_LAST),
            "{servers} servers do not fit in the servers' subnet"
        );
        Self {
            shape: *shape,
            flow_only,
        }
    }

    /// Even directors have a VIP; odd ones are reached only through flows.
    fn has_vip(director: usize) -> bool {
        director.is_multiple_of(2)
    }

    fn director_name(director: usize) -> String {
        if Self::has_vip(director) {
            format!("web-{director:04}")
        } else {
            format!("fwm-{director:04}")
        }
    }

    /// The service port of a director: its VIP's, or the port its flows match.
    fn service_port(director: usize) -> u16 {
        const PORTS: [u16; 8] = [80, 443, 25, 110, 143, 993, 3306, 8443];
        PORTS[director / 2 % PORTS.len()]
    }

    /// One of the `/24`s the real servers sit in, by any index.
    fn server_net(&self, index: usize) -> Ipv4Addr {
        let servers = self.shape.directors * self.shape.servers_per_director;
        let nets = servers.div_ceil(254).max(1);
        nth(SERVERS, index % nets * 256)
    }

    /// The address a flow-only director's flows match; one per director.
    fn flow_service_address(&self, director: usize) -> Ipv4Addr {
        let position = self
            .flow_only
            .binary_search(&director)
            .expect("a flow-only director");
        hosts(FLOW_SERVICES, position)
    }
}

fn lvs(plan: &Plan, random: &mut SplitMix64) -> String {
    const BALANCE: [&str; 9] = [
        "roundrobin",
        "leastconn",
        "source",
        "srcdst",
        "leastconn localitybased",
        "shortestexpected",
        "neverqueue",
        "mh",
        "dest",
    ];
    const MODES: [&str; 3] = ["nat", "gateway", "tunnel"];
    let shape = &plan.shape;
    let mut out = String::with_capacity(shape.directors * (shape.servers_per_director + 5) * 48);
    let mut vips = 0;
    for d in 0..shape.directors {
        if d > 0 {
            out.push('\n');
        }
        let name = Plan::director_name(d);
        let service_port = Plan::service_port(d);
        let _ = write!(out, "director {name}");
        if Plan::has_vip(d) {
            let _ = write!(out, " {}:{service_port} TCP", hosts(VIPS, vips));
            vips += 1;
        }
        out.push('\n');
        let _ = writeln!(out, "    balance {}", BALANCE[d % BALANCE.len()]);
        let mode = MODES[d / 3 % MODES.len()];
        let _ = writeln!(out, "    mode {mode}");

        // Only NAT can send to another port; direct routing and tunnels keep the
        // packet's own, so their servers are written without one.
        let server_port = (mode == "nat").then_some(if d % 4 == 1 { 8080 } else { service_port });
        let option = match d % 5 {
            0 => "tcpcheck".to_owned(),
            1 => format!("httpcheck uri /health statuscode 200 vhost {name}.example.com"),
            2 => "persistence timeout 300 netmask 255.255.255.0".to_owned(),
            3 => format!("arpcheck iface {SERVER_IFACE}"),
            _ => "icmpcheck".to_owned(),
        };
        let connects = d % 5 < 2;
        let interval = [5, 10, 15, 30][d % 4];
        let _ = write!(
            out,
            "    check interval {interval} timeout {}",
            interval / 2
        );
        if connects && server_port.is_none() {
            let _ = write!(out, " port {service_port}");
        }
        if d % 3 == 0 {
            out.push_str(" rise 2 fall 3");
        }
        out.push('\n');
        let _ = writeln!(out, "    option {option}");

        for s in 0..shape.servers_per_director {
            let address = hosts(SERVERS, d * shape.servers_per_director + s);
            let _ = write!(out, "    server app{:02} {address}", s + 1);
            if let Some(port) = server_port {
                let _ = write!(out, ":{port}");
            }
            let sorry = d % 4 == 0 && s + 1 == shape.servers_per_director;
            if sorry {
                out.push_str(" weight 1 sorry\n");
            } else {
                let _ = writeln!(out, " weight {} check", 1 + random.below(100));
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlowKind {
    Permit,
    Deny,
    Director,
    Table,
}

impl FlowKind {
    /// The mix, repeating every ten flows: permits and directors dominate.
    fn of(index: usize) -> Self {
        const CYCLE: [FlowKind; 10] = [
            FlowKind::Director,
            FlowKind::Permit,
            FlowKind::Permit,
            FlowKind::Deny,
            FlowKind::Director,
            FlowKind::Permit,
            FlowKind::Table,
            FlowKind::Permit,
            FlowKind::Deny,
            FlowKind::Table,
        ];
        CYCLE[index % CYCLE.len()]
    }
}

fn flows(plan: &Plan, random: &mut SplitMix64) -> String {
    let mut out = String::with_capacity(plan.shape.flows * 110);
    let mut director_flows = 0;
    for i in 0..plan.shape.flows {
        if i > 0 {
            out.push('\n');
        }
        match FlowKind::of(i) {
            FlowKind::Director => {
                if plan.flow_only.is_empty() {
                    permit(&mut out, i, random);
                    continue;
                }
                let d = plan.flow_only[director_flows % plan.flow_only.len()];
                director_flows += 1;
                let dst = plan.flow_service_address(d);
                let port = Plan::service_port(d);
                let _ = writeln!(out, "flow lvs-{i:05} director {}", Plan::director_name(d));
                let _ = writeln!(out, "    match proto tcp dst {dst} dstport {port}");
                if i % 3 == 0 {
                    let _ = writeln!(
                        out,
                        "    match proto tcp dst {dst} dstport {}:{}",
                        8000 + i % 50,
                        8100 + i % 50
                    );
                }
            }
            FlowKind::Permit => permit(&mut out, i, random),
            FlowKind::Deny => {
                let _ = writeln!(out, "flow block-{i:05} deny");
                let net = client_net(random);
                if i % 2 == 0 {
                    let _ = writeln!(out, "    match src {net}");
                } else {
                    let _ = writeln!(
                        out,
                        "    match proto udp src {net} dstport {}",
                        [53, 123, 161, 1900][i % 4]
                    );
                    let _ = writeln!(out, "    match proto tcp src {net} dstport 1:1023");
                }
            }
            FlowKind::Table => {
                // Return traffic of the servers leaves through its own gateway.
                let keyword = if i % 4 == 1 { "outflow" } else { "flow" };
                let table = TABLES[i % TABLES.len()];
                let servers = plan.server_net(i);
                let _ = writeln!(out, "{keyword} route-{i:05} table {table}");
                let _ = writeln!(
                    out,
                    "    match proto tcp src {servers}/24 srcport {}",
                    [80, 443, 8080][i % 3]
                );
            }
        }
    }
    out
}

fn permit(out: &mut String, i: usize, random: &mut SplitMix64) {
    let host = hosts(PERMITTED_HOSTS, i % 5_000);
    let _ = writeln!(out, "flow allow-{i:05} permit");
    match i % 3 {
        0 => {
            let _ = writeln!(out, "    ignore not src 192.168.0.0/16");
            let _ = writeln!(out, "    match proto tcp dst {host} dstport 22");
        }
        1 => {
            let _ = writeln!(
                out,
                "    match proto udp src {} dst {host} dstport 53",
                client_net(random)
            );
        }
        _ => {
            let _ = writeln!(out, "    match proto icmp dst {host} icmptype echo-request");
            let _ = writeln!(out, "    match proto tcp dst {host} dstport 443");
        }
    }
}

/// A client network somewhere on the Internet, as a `/24`.
fn client_net(random: &mut SplitMix64) -> String {
    const FIRST_OCTETS: [u64; 6] = [23, 45, 81, 100, 151, 185];
    let first = FIRST_OCTETS[random.below(FIRST_OCTETS.len() as u64) as usize];
    format!("{first}.{}.{}.0/24", random.below(256), random.below(256))
}

/// The `n`th address after `first`.
fn nth(first: [u8; 4], n: usize) -> Ipv4Addr {
    let n = u32::try_from(n).expect("an IPv4 offset");
    Ipv4Addr::from(u32::from(Ipv4Addr::from(first)) + n)
}

/// The `n`th host address after the network `first` (a `.0`), skipping `.0` and
/// `.255` so that every one looks like a host: 254 per `/24`.
fn hosts(first: [u8; 4], n: usize) -> Ipv4Addr {
    nth(first, n / 254 * 256 + 1 + n % 254)
}

/// A tiny, fixed-seed generator: variety without a dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}
