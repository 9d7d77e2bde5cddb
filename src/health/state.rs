//! The pure part of the health checker: which servers are checked and how, each
//! server's up/down state machine, and the IPVS table that the servers' health
//! asks for. No I/O here: `run.rs` feeds results in and sends the operations out.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::publish::ServerReport;
use crate::config::model::LvsConfig;
use crate::config::model::lvs::CheckMethod;
use crate::plan::ipvs::{
    DestKey, IpvsOp, IpvsState, Service, ServiceKey, dest_key, diff, director_marks, forward,
    service_key,
};
use crate::plan::overrides::{Hold, Overrides};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Down => "down",
        })
    }
}

/// One server's state: up or down, and how many consecutive results have
/// disagreed with it. A server changes state after `fall` failures in a row
/// when up, `rise` successes in a row when down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHealth {
    health: Health,
    streak: u32,
}

impl ServerHealth {
    /// A server starts up: the apply has just put it in IPVS, and taking it out
    /// takes `fall` failed checks, as in keepalived.
    pub fn new() -> Self {
        Self {
            health: Health::Up,
            streak: 0,
        }
    }

    /// A server in a known state, as the daemon reported it.
    pub fn known(health: Health) -> Self {
        Self { health, streak: 0 }
    }

    pub fn health(&self) -> Health {
        self.health
    }

    /// Counts one check result; returns the new state when this result changes it.
    pub fn record(&mut self, success: bool, rise: u32, fall: u32) -> Option<Health> {
        let agrees = success == (self.health == Health::Up);
        if agrees {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = match self.health {
            Health::Up => fall,
            Health::Down => rise,
        };
        if self.streak < needed.max(1) {
            return None;
        }
        self.streak = 0;
        self.health = match self.health {
            Health::Up => Health::Down,
            Health::Down => Health::Up,
        };
        Some(self.health)
    }
}

impl Default for ServerHealth {
    fn default() -> Self {
        Self::new()
    }
}

/// What a check sends to a server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Probe {
    /// A TCP connection that is established in time.
    Tcp { port: u16 },
    /// `GET uri` over HTTP/1.1, answered with `status`.
    Http {
        port: u16,
        uri: String,
        vhost: Option<String>,
        status: u16,
    },
    /// An ICMP echo request, answered in time.
    Icmp,
    /// An ARP who-has for the server's address, answered in time, sent on
    /// `iface` or else on the interface whose subnet holds the address.
    Arp { iface: Option<String> },
}

/// One server's check, everything that decides its result: a server whose
/// check is unchanged by a reload keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Check {
    pub address: IpAddr,
    pub probe: Probe,
    pub source: Option<IpAddr>,
    pub interval: Duration,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
}

/// Checks start on a grid of this step within their interval: those of one
/// step start together, at one wake of the checker, rather than each at its own
/// millisecond. A wake is a system call and, where the clock has no vDSO, a
/// clock read as well; at thousands of servers they were much of the cost.
pub const START_STEP: Duration = Duration::from_millis(50);

impl Check {
    /// When, within each interval, this check runs: a stable spread of the
    /// servers over the steps of the interval, so that they are not all checked
    /// at once.
    pub fn offset(&self, service: &ServiceKey, dest: &DestKey) -> Duration {
        let text = format!("{service} {dest} {:?}", self.probe);
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let steps = self.interval.as_millis() / START_STEP.as_millis();
        let step = u32::try_from(u128::from(hash) % steps.max(1)).unwrap_or(0);
        START_STEP * step
    }
}

/// A real or sorry server of a director, as the health checker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub director: String,
    pub server: String,
    pub service: ServiceKey,
    pub dest: DestKey,
    /// The configured weight; a sorry server's weight when it takes the traffic.
    pub weight: u32,
    pub sorry: bool,
    /// Down means weight 0 rather than out of IPVS.
    pub inhibit: bool,
    /// `None`: not checked, always up.
    pub check: Option<Check>,
    /// An operator's override, above the configuration.
    pub hold: Option<Hold>,
}

impl Member {
    pub fn id(&self) -> (ServiceKey, DestKey) {
        (self.service, self.dest)
    }
}

/// The servers of a configuration, and why some that ask for a check cannot have one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    pub members: Vec<Member>,
    pub warnings: Vec<String>,
}

/// Every server of every director. A server is checked when it says `check`
/// and is not a sorry server (the last resort is not taken away).
pub fn roster(config: &LvsConfig) -> Roster {
    let marks = director_marks(config);
    let mut roster = Roster::default();
    for director in &config.directors {
        let service = service_key(director, &marks);
        let service_port = match service {
            ServiceKey::Vip { port, .. } => port,
            ServiceKey::Fwmark { .. } => 0,
        };
        let forward = forward(director);
        let params = &director.check;
        let method = director.check_method();
        for server in &director.servers {
            let dest = dest_key(forward, server, service_port);
            let check = if server.check && !server.sorry {
                let port = params
                    .port
                    .as_ref()
                    .map(|p| p.value.get())
                    .or(server.port.map(|p| p.get()))
                    .unwrap_or(service_port);
                let probe = match &method {
                    CheckMethod::Tcp => Some(Probe::Tcp { port }),
                    CheckMethod::Http(http) => Some(Probe::Http {
                        port,
                        uri: http.uri().to_owned(),
                        vhost: http.vhost.clone(),
                        status: http.statuscode(),
                    }),
                    CheckMethod::Icmp => Some(Probe::Icmp),
                    CheckMethod::Arp { iface } => Some(Probe::Arp {
                        iface: iface.as_ref().map(|name| name.as_str().to_owned()),
                    }),
                };
                let probe = probe.filter(|probe| match probe {
                    Probe::Tcp { port } | Probe::Http { port, .. } if *port == 0 => {
                        roster.warnings.push(format!(
                            "director {} server {}: {} needs a port (server, service or `check port`); the server is not checked",
                            director.name.as_str(),
                            server.name.as_str(),
                            method.keyword()
                        ));
                        false
                    }
                    _ => true,
                });
                probe.map(|probe| Check {
                    address: server.address,
                    probe,
                    source: params.source.as_ref().map(|s| s.value),
                    interval: Duration::from_secs(u64::from(params.interval().max(1))),
                    timeout: Duration::from_secs(u64::from(params.timeout().max(1))),
                    rise: params.rise(),
                    fall: params.fall(),
                })
            } else {
                None
            };
            roster.members.push(Member {
                director: director.name.as_str().to_owned(),
                server: server.name.as_str().to_owned(),
                service,
                dest,
                weight: u32::from(server.weight()),
                sorry: server.sorry,
                inhibit: params.inhibit,
                check,
                hold: None,
            });
        }
    }
    roster
}

/// One probe run for every member that asks for it: a server that several
/// directors check the same way (address, port, kind and parameters: the whole
/// [`Check`]) is probed once and the result counts for each of them, where
/// keepalived probes it once per director (keepalived issue #2358).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedCheck {
    pub check: Check,
    /// The members the probe decides, by index, in roster order.
    pub members: Vec<usize>,
}

/// The probes that check `members`, in the order of each one's first member.
pub fn shared_checks(members: &[Member]) -> Vec<SharedCheck> {
    let mut by_check: HashMap<&Check, usize> = HashMap::new();
    let mut shared: Vec<SharedCheck> = Vec::new();
    for (index, member) in members.iter().enumerate() {
        let Some(check) = &member.check else {
            continue;
        };
        match by_check.entry(check) {
            Entry::Occupied(entry) => shared[*entry.get()].members.push(index),
            Entry::Vacant(entry) => {
                entry.insert(shared.len());
                shared.push(SharedCheck {
                    check: check.clone(),
                    members: vec![index],
                });
            }
        }
    }
    shared
}

/// The states to start a new roster with: a member whose service, address, port
/// and check are unchanged keeps its state; any other starts afresh. The members
/// of one of `shared` start in one state, since one count of results decides
/// them all: a kept state before a fresh start, the first member's before the
/// others'.
pub fn carry_over(
    old: &[Member],
    old_health: &[ServerHealth],
    new: &[Member],
    shared: &[SharedCheck],
) -> Vec<ServerHealth> {
    let kept: HashMap<_, _> = old
        .iter()
        .zip(old_health)
        .map(|(member, health)| ((member.id(), member.check.clone()), *health))
        .collect();
    let mut health: Vec<Option<ServerHealth>> = new
        .iter()
        .map(|member| kept.get(&(member.id(), member.check.clone())).copied())
        .collect();
    for probe in shared {
        let state = probe.members.iter().find_map(|&index| health[index]);
        for &index in &probe.members {
            health[index] = state;
        }
    }
    health.into_iter().map(Option::unwrap_or_default).collect()
}

/// The IPVS table that `desired` (what the configuration asks for) becomes with
/// the servers' health (see [`service_with_health`]).
pub fn with_health(desired: &IpvsState, members: &[Member], health: &[ServerHealth]) -> IpvsState {
    let mut servers: BTreeMap<ServiceKey, Vec<(&Member, &ServerHealth)>> = BTreeMap::new();
    for (member, state) in members.iter().zip(health) {
        servers
            .entry(member.service)
            .or_default()
            .push((member, state));
    }
    let mut table = desired.clone();
    for (key, service) in &mut table.services {
        if let Some(servers) = servers.get(key) {
            *service = service_with_health(service, servers);
        }
    }
    table
}

/// One service's real servers as health and the operators' overrides leave
/// them:
/// - `disable` takes a server out, `drain` holds it at weight 0, whatever its
///   health;
/// - otherwise a real server that is down leaves, or stays at weight 0 with
///   `inhibit`; one that is up gets its weight, an override's before the
///   configuration's;
/// - a sorry server gets its weight (at least 1) while no real server of its
///   director is up with a weight, and 0 otherwise.
///
/// `servers` are the service's members with their state.
pub fn service_with_health(desired: &Service, servers: &[(&Member, &ServerHealth)]) -> Service {
    let takes_traffic = |member: &Member, state: &ServerHealth| match member.hold {
        Some(hold) if hold.keeps_out() => false,
        Some(Hold::Weight { weight }) => weight > 0 && state.health() == Health::Up,
        _ => member.weight > 0 && state.health() == Health::Up,
    };
    let real_up = servers
        .iter()
        .any(|(member, state)| !member.sorry && takes_traffic(member, state));
    let mut service = desired.clone();
    for (member, state) in servers {
        let weight = match member.hold {
            Some(Hold::Disable) => None,
            Some(Hold::Drain { .. }) => Some(0),
            Some(Hold::Weight { weight }) if member.sorry => Some(if real_up { 0 } else { weight }),
            None if member.sorry => Some(if real_up { 0 } else { member.weight.max(1) }),
            _ if state.health() == Health::Down => member.inhibit.then_some(0),
            Some(Hold::Weight { weight }) => Some(weight),
            None => continue,
        };
        match weight {
            Some(weight) => {
                if let Some(dest) = service.destinations.get_mut(&member.dest) {
                    dest.weight = weight;
                }
            }
            None => {
                service.destinations.remove(&member.dest);
            }
        }
    }
    service
}

/// Gives each member the override `overrides` holds for its server.
pub fn hold(members: &mut [Member], overrides: &Overrides) {
    for member in members {
        member.hold = overrides
            .get(&member.director, &member.server)
            .map(|o| o.hold);
    }
}

/// The IPVS table an apply leaves: what `config` asks for, with the operators'
/// `overrides`, and with the servers the daemon reports down kept as their
/// health left them. An apply that put them
/// back would send clients to dead servers until the checker's next pass took
/// them out again. A server counts as reported when its director, name, address
/// and port match; any other, new or unknown, is up, as a reload would start it.
pub fn with_reported_health(
    desired: &IpvsState,
    config: &LvsConfig,
    reports: &[ServerReport],
    overrides: &Overrides,
) -> IpvsState {
    let down: HashSet<(&str, &str, IpAddr, u16)> = reports
        .iter()
        .filter(|report| report.checked && report.health == Health::Down)
        .map(|report| {
            (
                report.director.as_str(),
                report.server.as_str(),
                report.address,
                report.port,
            )
        })
        .collect();
    if down.is_empty() && overrides.is_empty() {
        return desired.clone();
    }
    let mut members = roster(config).members;
    hold(&mut members, overrides);
    let health: Vec<ServerHealth> = members
        .iter()
        .map(|member| {
            let key = (
                member.director.as_str(),
                member.server.as_str(),
                member.dest.address,
                member.dest.port,
            );
            if member.check.is_some() && down.contains(&key) {
                ServerHealth::known(Health::Down)
            } else {
                ServerHealth::new()
            }
        })
        .collect();
    with_health(desired, &members, &health)
}

/// The real-server operations that take the observed table to `wanted`. Only
/// services present in both are touched, and only their real servers: adding or
/// changing services is the apply's business, not the health checker's.
pub fn dest_ops(observed: &IpvsState, wanted: &IpvsState) -> Vec<IpvsOp> {
    let mut have = IpvsState::default();
    let mut want = IpvsState::default();
    for (key, service) in &observed.services {
        if let Some(wanted_service) = wanted.services.get(key) {
            have.services.insert(*key, service.clone());
            let mut wanted_service = wanted_service.clone();
            wanted_service.settings = service.settings.clone();
            want.services.insert(*key, wanted_service);
        }
    }
    diff(&have, &want)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::parse::parse_lvs;
    use crate::plan::ipvs::{DestSettings, Forward, desired};
    use crate::plan::overrides::Override;
    use std::net::Ipv4Addr;

    pub(crate) fn lvs(text: &str) -> LvsConfig {
        let (config, diagnostics) = parse_lvs(text.as_bytes());
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        config
    }

    const WEB: &str = "director web 10.0.0.1:80\n\
        check interval 2 rise 2 fall 3\n\
        option httpcheck uri /health statuscode 204 vhost example.com\n\
        server a 10.0.1.1:8080 weight 3 check\n\
        server b 10.0.1.2:8080 weight 2 check\n\
        server sorry 10.0.1.9:8080 sorry\n";

    fn vip() -> ServiceKey {
        ServiceKey::Vip {
            protocol: 6,
            address: Ipv4Addr::new(10, 0, 0, 1).into(),
            port: 80,
        }
    }

    fn dest(last: u8) -> DestKey {
        DestKey {
            address: Ipv4Addr::new(10, 0, 1, last).into(),
            port: 8080,
        }
    }

    fn weights(table: &IpvsState) -> Vec<(u8, u32)> {
        table.services[&vip()]
            .destinations
            .iter()
            .map(|(d, s)| {
                let IpAddr::V4(address) = d.address else {
                    panic!("an IPv4 real server: {d}");
                };
                (address.octets()[3], s.weight)
            })
            .collect()
    }

    fn down() -> ServerHealth {
        ServerHealth::known(Health::Down)
    }

    #[test]
    fn a_server_goes_down_after_fall_failures_in_a_row_and_up_after_rise_successes() {
        let mut health = ServerHealth::new();
        assert_eq!(health.record(false, 2, 3), None);
        assert_eq!(health.record(false, 2, 3), None);
        assert_eq!(health.record(false, 2, 3), Some(Health::Down));
        assert_eq!(health.health(), Health::Down);
        assert_eq!(health.record(false, 2, 3), None, "already down");
        assert_eq!(health.record(true, 2, 3), None);
        assert_eq!(health.record(true, 2, 3), Some(Health::Up));
        assert_eq!(health.record(true, 2, 3), None, "already up");
    }

    #[test]
    fn a_success_between_failures_starts_the_count_again() {
        let mut health = ServerHealth::new();
        health.record(false, 1, 2);
        health.record(true, 1, 2);
        assert_eq!(health.record(false, 1, 2), None);
        assert_eq!(health.record(false, 1, 2), Some(Health::Down));
        health.record(true, 3, 2);
        health.record(false, 3, 2);
        health.record(true, 3, 2);
        health.record(true, 3, 2);
        assert_eq!(health.health(), Health::Down, "a failure broke the rise");
        assert_eq!(health.record(true, 3, 2), Some(Health::Up));
    }

    #[test]
    fn rise_and_fall_of_zero_act_as_one() {
        let mut health = ServerHealth::new();
        assert_eq!(health.record(false, 0, 0), Some(Health::Down));
        assert_eq!(health.record(true, 0, 0), Some(Health::Up));
    }

    #[test]
    fn the_roster_carries_the_directors_check_to_each_checked_server() {
        let roster = roster(&lvs(WEB));
        assert!(roster.warnings.is_empty());
        let a = &roster.members[0];
        assert_eq!((a.director.as_str(), a.server.as_str()), ("web", "a"));
        assert_eq!((a.service, a.dest, a.weight), (vip(), dest(1), 3));
        assert_eq!(
            a.check,
            Some(Check {
                address: Ipv4Addr::new(10, 0, 1, 1).into(),
                probe: Probe::Http {
                    port: 8080,
                    uri: "/health".into(),
                    vhost: Some("example.com".into()),
                    status: 204,
                },
                source: None,
                interval: Duration::from_secs(2),
                timeout: Duration::from_secs(1),
                rise: 2,
                fall: 3,
            })
        );
        let sorry = &roster.members[2];
        assert!(sorry.sorry);
        assert_eq!(sorry.check, None, "the sorry server is not checked");
    }

    #[test]
    fn check_port_and_source_override_and_icmp_is_the_default() {
        let roster = roster(&lvs("director d 10.0.0.1:80\n\
             check port 81 source 10.0.0.5 timeout 3\n\
             option tcpcheck\n\
             server a 10.0.1.1 check\n\
             director e 10.0.0.2:80\n\
             server b 10.0.1.2 check\n\
             server c 10.0.1.3\n"));
        let a = roster.members[0].check.as_ref().expect("checked");
        assert_eq!(a.probe, Probe::Tcp { port: 81 });
        assert_eq!(a.source, Some(Ipv4Addr::new(10, 0, 0, 5).into()));
        assert_eq!(a.timeout, Duration::from_secs(3));
        assert_eq!(a.interval, Duration::from_secs(10));
        let b = roster.members[1].check.as_ref().expect("checked");
        assert_eq!(b.probe, Probe::Icmp);
        assert_eq!(b.timeout, Duration::from_secs(5), "half the interval");
        assert_eq!(roster.members[2].check, None, "no `check`, not checked");
    }

    #[test]
    fn a_check_that_cannot_run_is_a_warning_and_the_server_stays_in() {
        let roster = roster(&lvs("director d 10.0.0.1\n\
             option tcpcheck\n\
             server a 10.0.1.1 check\n\
             director e 10.0.0.2:80\n\
             option arpcheck iface eth1\n\
             server b 10.0.1.2 check\n"));
        assert_eq!(roster.members[0].check, None);
        assert_eq!(roster.warnings.len(), 1, "{:?}", roster.warnings);
        assert!(roster.warnings[0].contains("needs a port"));
        let b = roster.members[1]
            .check
            .as_ref()
            .expect("arpcheck needs no port");
        assert_eq!(
            b.probe,
            Probe::Arp {
                iface: Some("eth1".into())
            }
        );
    }

    #[test]
    fn checks_are_spread_over_the_interval_and_stay_put() {
        let roster = roster(&lvs(WEB));
        let offsets: Vec<Duration> = roster.members[..2]
            .iter()
            .map(|m| {
                m.check
                    .as_ref()
                    .expect("checked")
                    .offset(&m.service, &m.dest)
            })
            .collect();
        assert!(offsets.iter().all(|o| *o < Duration::from_secs(2)));
        assert!(
            offsets
                .iter()
                .all(|o| (o.as_millis() % START_STEP.as_millis()) == 0),
            "on the grid, to start together: {offsets:?}"
        );
        assert_ne!(offsets[0], offsets[1]);
        let again = &roster.members[0];
        assert_eq!(
            again
                .check
                .as_ref()
                .expect("checked")
                .offset(&again.service, &again.dest),
            offsets[0]
        );
    }

    #[test]
    fn all_up_is_the_table_the_configuration_asks_for() {
        let config = lvs(WEB);
        let roster = roster(&config);
        let health = vec![ServerHealth::new(); 3];
        assert_eq!(
            with_health(&desired(&config), &roster.members, &health),
            desired(&config)
        );
    }

    #[test]
    fn a_down_server_leaves_ipvs_and_the_others_keep_their_weight() {
        let config = lvs(WEB);
        let roster = roster(&config);
        let health = vec![down(), ServerHealth::new(), ServerHealth::new()];
        let table = with_health(&desired(&config), &roster.members, &health);
        assert_eq!(weights(&table), vec![(2, 2), (9, 0)]);
    }

    #[test]
    fn with_inhibit_a_down_server_stays_at_weight_zero() {
        let config = lvs(&WEB.replace("fall 3\n", "fall 3 inhibit\n"));
        let roster = roster(&config);
        assert!(roster.members[0].inhibit);
        let health = vec![down(), ServerHealth::new(), ServerHealth::new()];
        let table = with_health(&desired(&config), &roster.members, &health);
        assert_eq!(weights(&table), vec![(1, 0), (2, 2), (9, 0)]);
    }

    #[test]
    fn the_sorry_server_takes_the_traffic_only_while_no_real_server_is_up() {
        let config = lvs(WEB);
        let roster = roster(&config);
        let all_down = vec![down(), down(), ServerHealth::new()];
        let table = with_health(&desired(&config), &roster.members, &all_down);
        assert_eq!(weights(&table), vec![(9, 1)], "sorry at weight 1");

        let inhibit = lvs(&WEB
            .replace("fall 3\n", "fall 3 inhibit\n")
            .replace("sorry\n", "weight 5 sorry\n"));
        let members = super::roster(&inhibit).members;
        let table = with_health(&desired(&inhibit), &members, &all_down);
        assert_eq!(
            weights(&table),
            vec![(1, 0), (2, 0), (9, 5)],
            "real servers at weight 0 are not up; the sorry server has its own weight"
        );
    }

    #[test]
    fn a_real_server_of_weight_zero_does_not_keep_the_sorry_server_out() {
        let config = lvs(&WEB.replace("weight 2 check", "weight 0"));
        let roster = roster(&config);
        let health = vec![down(), ServerHealth::new(), ServerHealth::new()];
        let table = with_health(&desired(&config), &roster.members, &health);
        assert_eq!(weights(&table), vec![(2, 0), (9, 1)]);
    }

    fn held(config: &LvsConfig, holds: &[(&str, Hold)]) -> Vec<Member> {
        let mut overrides = Overrides::default();
        for (server, hold) in holds {
            overrides.set(Override {
                director: "web".into(),
                server: (*server).into(),
                hold: *hold,
                by: "alice".into(),
                at: 0,
                note: None,
            });
        }
        let mut members = roster(config).members;
        super::hold(&mut members, &overrides);
        members
    }

    #[test]
    fn drain_and_disable_beat_health_and_health_beats_a_weight() {
        let config = lvs(WEB);
        let up = vec![ServerHealth::new(); 3];
        let members = held(
            &config,
            &[("a", Hold::Drain { deadline: None }), ("b", Hold::Disable)],
        );
        let table = with_health(&desired(&config), &members, &up);
        assert_eq!(
            weights(&table),
            vec![(1, 0), (9, 1)],
            "a healthy drained server stays at 0, a disabled one out; the sorry server takes over"
        );

        let members = held(&config, &[("a", Hold::Weight { weight: 5 })]);
        let table = with_health(&desired(&config), &members, &up);
        assert_eq!(weights(&table), vec![(1, 5), (2, 2), (9, 0)]);
        let a_down = vec![down(), ServerHealth::new(), ServerHealth::new()];
        let table = with_health(&desired(&config), &members, &a_down);
        assert_eq!(
            weights(&table),
            vec![(2, 2), (9, 0)],
            "down: out, whatever its weight"
        );
        let inhibit = lvs(&WEB.replace("fall 3\n", "fall 3 inhibit\n"));
        let members = held(&inhibit, &[("a", Hold::Weight { weight: 5 })]);
        let table = with_health(&desired(&inhibit), &members, &a_down);
        assert_eq!(
            weights(&table),
            vec![(1, 0), (2, 2), (9, 0)],
            "down with inhibit: 0"
        );
    }

    #[test]
    fn a_sorry_server_follows_its_rule_with_its_overridden_weight() {
        let config = lvs(WEB);
        let up = vec![ServerHealth::new(); 3];
        let members = held(
            &config,
            &[
                ("a", Hold::Disable),
                ("b", Hold::Weight { weight: 0 }),
                ("sorry", Hold::Weight { weight: 4 }),
            ],
        );
        let table = with_health(&desired(&config), &members, &up);
        assert_eq!(weights(&table), vec![(2, 0), (9, 4)]);
        let members = held(&config, &[("sorry", Hold::Disable)]);
        let table = with_health(&desired(&config), &members, &up);
        assert_eq!(weights(&table), vec![(1, 3), (2, 2)]);
    }

    #[test]
    fn an_apply_keeps_out_the_servers_the_daemon_reports_down_and_no_other() {
        let config = lvs(WEB);
        let report = |server: &str, last: u8, health: Health| ServerReport {
            director: "web".into(),
            server: server.into(),
            address: Ipv4Addr::new(10, 0, 1, last).into(),
            port: 8080,
            checked: true,
            sorry: false,
            health,
        };
        let both_down = [report("a", 1, Health::Down), report("b", 2, Health::Down)];
        let table = with_reported_health(
            &desired(&config),
            &config,
            &both_down,
            &Overrides::default(),
        );
        assert_eq!(weights(&table), vec![(9, 1)], "the sorry server takes over");

        let up = [report("a", 1, Health::Down), report("b", 2, Health::Up)];
        let table = with_reported_health(&desired(&config), &config, &up, &Overrides::default());
        assert_eq!(weights(&table), vec![(2, 2), (9, 0)]);

        // A server whose address changed is new to the checker: up, as a reload
        // would start it; so is one the report names under another director.
        let moved = lvs(&WEB.replace("10.0.1.1:8080", "10.0.1.3:8080"));
        let table = with_reported_health(&desired(&moved), &moved, &up, &Overrides::default());
        assert_eq!(weights(&table), vec![(2, 2), (3, 3), (9, 0)]);
        let elsewhere = [ServerReport {
            director: "mail".into(),
            ..report("a", 1, Health::Down)
        }];
        let table = with_reported_health(
            &desired(&config),
            &config,
            &elsewhere,
            &Overrides::default(),
        );
        assert_eq!(weights(&table), weights(&desired(&config)));
    }

    #[test]
    fn going_down_and_back_is_one_delete_then_one_add_with_the_configured_weight() {
        let config = lvs(WEB);
        let roster = roster(&config);
        let all_up = desired(&config);
        let health = vec![down(), ServerHealth::new(), ServerHealth::new()];
        let without_a = with_health(&all_up, &roster.members, &health);
        let settings = DestSettings {
            forward: Forward::Masquerade,
            weight: 3,
        };
        assert_eq!(
            dest_ops(&all_up, &without_a),
            vec![IpvsOp::DeleteDest {
                service: vip(),
                dest: dest(1),
                settings
            }]
        );
        assert_eq!(
            dest_ops(&without_a, &all_up),
            vec![IpvsOp::AddDest {
                service: vip(),
                dest: dest(1),
                settings
            }]
        );
    }

    #[test]
    fn health_never_adds_or_edits_services() {
        let config = lvs(WEB);
        let roster = roster(&config);
        let mut wanted = with_health(
            &desired(&config),
            &roster.members,
            &[down(), down(), ServerHealth::new()],
        );
        assert!(dest_ops(&IpvsState::default(), &wanted).is_empty());
        let mut observed = desired(&config);
        observed
            .services
            .get_mut(&vip())
            .expect("web")
            .settings
            .scheduler = "rr".into();
        wanted
            .services
            .get_mut(&vip())
            .expect("web")
            .settings
            .scheduler = "wlc".into();
        let ops = dest_ops(&observed, &wanted);
        assert!(
            ops.iter()
                .all(|op| matches!(op, IpvsOp::DeleteDest { .. } | IpvsOp::EditDest { .. })),
            "{ops:?}"
        );
        assert_eq!(ops.len(), 3, "two deletions and the sorry server's weight");
    }

    #[test]
    fn a_reload_keeps_the_state_of_unchanged_servers_only() {
        let config = lvs(WEB);
        let old = roster(&config).members;
        let old_health = vec![down(), down(), ServerHealth::new()];
        let changed = lvs(&WEB
            .replace("10.0.1.2:8080 weight 2", "10.0.1.2:8081 weight 2")
            .replace("weight 3", "weight 7"));
        let new = roster(&changed).members;
        let health = carry_over(&old, &old_health, &new, &shared_checks(&new));
        assert_eq!(
            health[0].health(),
            Health::Down,
            "a weight change keeps a down server down"
        );
        assert_eq!(health[1].health(), Health::Up, "a new port is a new server");

        let new_check = lvs(&WEB.replace("rise 2", "rise 1"));
        let new = roster(&new_check).members;
        let health = carry_over(&old, &old_health, &new, &shared_checks(&new));
        assert_eq!(
            health[0].health(),
            Health::Up,
            "a changed check starts afresh"
        );
    }

    /// Two directors over the same two servers, checked alike but for `b`'s
    /// port in the second director; a third director checks `a` otherwise.
    const SHARED: &str = "director web 10.0.0.1:80\n\
        check interval 2\n\
        option tcpcheck\n\
        server a 10.0.1.1:8080 check\n\
        server b 10.0.1.2:8080 check\n\
        director web-tls 10.0.0.1:443\n\
        check interval 2\n\
        option tcpcheck\n\
        server a2 10.0.1.1:8080 check\n\
        server b2 10.0.1.2:8443 check\n\
        server sorry 10.0.1.9:8080 sorry\n\
        director web-slow 10.0.0.2:80\n\
        check interval 2 timeout 2\n\
        option tcpcheck\n\
        server a3 10.0.1.1:8080 check\n";

    #[test]
    fn a_server_checked_alike_by_several_directors_is_probed_once() {
        let members = roster(&lvs(SHARED)).members;
        let shared = shared_checks(&members);
        let groups: Vec<Vec<&str>> = shared
            .iter()
            .map(|probe| {
                probe
                    .members
                    .iter()
                    .map(|&index| members[index].server.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(
            groups,
            [vec!["a", "a2"], vec!["b"], vec!["b2"], vec!["a3"]],
            "same address, port, kind and parameters share; another port or timeout does not; the sorry server is not checked"
        );
        assert_eq!(Some(&shared[0].check), members[0].check.as_ref());
    }

    #[test]
    fn the_members_of_one_probe_start_in_one_state_a_kept_one_first() {
        let one = "director web 10.0.0.1:80\n\
            check interval 2\n\
            option tcpcheck\n\
            server a 10.0.1.1:8080 check\n";
        let old = roster(&lvs(one)).members;
        // `a` was down; a new director now checks the same server alike and
        // comes first: it starts down too rather than take `a` back up.
        let two = format!(
            "director first 10.0.0.3:80\n\
             check interval 2\n\
             option tcpcheck\n\
             server n 10.0.1.1:8080 check\n{one}"
        );
        let new = roster(&lvs(&two)).members;
        let health = carry_over(&old, &[down()], &new, &shared_checks(&new));
        assert_eq!(health, [down(), down()]);
        // Nothing kept: all start afresh, up.
        let health = carry_over(&[], &[], &new, &shared_checks(&new));
        assert_eq!(health, [ServerHealth::new(), ServerHealth::new()]);
    }
}
