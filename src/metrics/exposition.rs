//! The Prometheus text exposition format (version 0.0.4) of what the daemon
//! knows: pure, from a [`Sample`] the daemon gathers. Every metric is named
//! `lbconsole_…`, counters end in `_total`, times are in seconds, sizes in
//! bytes; a server is labelled `director`, `server`, `vip` and `family`.

use std::collections::HashMap;
use std::fmt::Write;

use crate::config::model::flows::Direction;
use crate::config::model::types::Family;
use crate::ha::status::{VrrpState, VrrpStatus};
use crate::health::record::{LATENCY_BUCKETS, Pulse};
use crate::health::run::ServerMetrics;
use crate::health::state::Health;
use crate::kernel::{ServiceStatus, Stats};
use crate::plan::flows::FlowCounter;
use crate::plan::ipvs::{DestKey, ServiceKey};

/// What the daemon knows at one moment, for one exposition.
#[derive(Debug, Default)]
pub struct Sample<'a> {
    pub servers: Vec<ServerMetrics<'a>>,
    /// IPVS as read; `None` when it could not be read.
    pub services: Option<&'a [ServiceStatus]>,
    /// Our nft table's counters; `None` when they could not be read.
    pub flows: Option<&'a [FlowCounter]>,
    pub versions: Versions,
    pub vrrp: Option<&'a VrrpStatus>,
}

/// The configuration's versions and what became of its applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    /// `None` when the store could not be read.
    pub saved: Option<u64>,
    pub running: Option<u64>,
    pub pending: bool,
    /// Since the daemon started.
    pub applies: u64,
    pub rollbacks: u64,
}

/// One metric family: its name, type and help line.
struct Metric {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

const fn metric(name: &'static str, kind: &'static str, help: &'static str) -> Metric {
    Metric { name, kind, help }
}

const SERVER_UP: Metric = metric(
    "lbconsole_server_up",
    "gauge",
    "Whether the real server is up as its health check sees it (1) or down (0); unchecked servers are up.",
);
const SERVER_CHECKED: Metric = metric(
    "lbconsole_server_checked",
    "gauge",
    "Whether the real server has a health check.",
);
const CHECK_DURATION: Metric = metric(
    "lbconsole_server_check_duration_seconds",
    "histogram",
    "How long each health check of the real server took, failed ones included.",
);
const STATE_CHANGES: Metric = metric(
    "lbconsole_server_state_changes_total",
    "counter",
    "Times the real server went up or down since the daemon started.",
);
const LAST_CHANGE: Metric = metric(
    "lbconsole_server_last_change_timestamp_seconds",
    "gauge",
    "When the real server last went up or down, in seconds since the epoch.",
);
const CONFIGURED_WEIGHT: Metric = metric(
    "lbconsole_server_configured_weight",
    "gauge",
    "The real server's weight in lvs.conf.",
);
const WEIGHT: Metric = metric(
    "lbconsole_server_weight",
    "gauge",
    "The real server's weight in IPVS now (0 when it is out of IPVS).",
);
const OVERRIDE: Metric = metric(
    "lbconsole_server_override",
    "gauge",
    "An operator's override of the real server (drain, disable, weight) in force.",
);
const SERVERS_UP: Metric = metric(
    "lbconsole_director_servers_up",
    "gauge",
    "Real servers of the director that are up (sorry servers not counted).",
);
const SERVERS: Metric = metric(
    "lbconsole_director_servers",
    "gauge",
    "Real servers of the director (sorry servers not counted).",
);
const IPVS_UP: Metric = metric(
    "lbconsole_ipvs_up",
    "gauge",
    "Whether IPVS could be read for this exposition.",
);
const ACTIVE: Metric = metric(
    "lbconsole_server_active_connections",
    "gauge",
    "Established connections to the real server, as IPVS counts them.",
);
const INACTIVE: Metric = metric(
    "lbconsole_server_inactive_connections",
    "gauge",
    "Connections to the real server in any other state, as IPVS counts them.",
);
const SERVICE_COUNTERS: [Metric; 5] = [
    metric(
        "lbconsole_director_connections_total",
        "counter",
        "Connections IPVS scheduled for the director.",
    ),
    metric(
        "lbconsole_director_incoming_packets_total",
        "counter",
        "Packets from clients to the director.",
    ),
    metric(
        "lbconsole_director_outgoing_packets_total",
        "counter",
        "Packets from the real servers back to clients through the director.",
    ),
    metric(
        "lbconsole_director_incoming_bytes_total",
        "counter",
        "Bytes from clients to the director.",
    ),
    metric(
        "lbconsole_director_outgoing_bytes_total",
        "counter",
        "Bytes from the real servers back to clients through the director.",
    ),
];
const SERVER_COUNTERS: [Metric; 5] = [
    metric(
        "lbconsole_server_connections_total",
        "counter",
        "Connections IPVS scheduled to the real server.",
    ),
    metric(
        "lbconsole_server_incoming_packets_total",
        "counter",
        "Packets from clients to the real server.",
    ),
    metric(
        "lbconsole_server_outgoing_packets_total",
        "counter",
        "Packets from the real server back to clients.",
    ),
    metric(
        "lbconsole_server_incoming_bytes_total",
        "counter",
        "Bytes from clients to the real server.",
    ),
    metric(
        "lbconsole_server_outgoing_bytes_total",
        "counter",
        "Bytes from the real server back to clients.",
    ),
];
const FLOWS_UP: Metric = metric(
    "lbconsole_flows_up",
    "gauge",
    "Whether the nft table's counters could be read for this exposition.",
);
const FLOW_PACKETS: Metric = metric(
    "lbconsole_flow_packets_total",
    "counter",
    "Packets that matched the flow.",
);
const FLOW_BYTES: Metric = metric(
    "lbconsole_flow_bytes_total",
    "counter",
    "Bytes that matched the flow.",
);
const RULE_PACKETS: Metric = metric(
    "lbconsole_flow_rule_packets_total",
    "counter",
    "Packets that matched one rule of the flow (rule: its place in the flow, from 1).",
);
const RULE_BYTES: Metric = metric(
    "lbconsole_flow_rule_bytes_total",
    "counter",
    "Bytes that matched one rule of the flow.",
);
const SAVED_VERSION: Metric = metric(
    "lbconsole_saved_version",
    "gauge",
    "The number of the saved configuration's version.",
);
const RUNNING_VERSION: Metric = metric(
    "lbconsole_running_version",
    "gauge",
    "The number of the version the kernel runs (0: an unsaved or no configuration).",
);
const PENDING: Metric = metric(
    "lbconsole_apply_pending",
    "gauge",
    "Whether an apply waits for confirmation.",
);
const APPLIES: Metric = metric(
    "lbconsole_applies_total",
    "counter",
    "Applies since the daemon started, failed ones included.",
);
const ROLLBACKS: Metric = metric(
    "lbconsole_rollbacks_total",
    "counter",
    "Unconfirmed applies rolled back since the daemon started.",
);
const VRRP_STATE: Metric = metric(
    "lbconsole_vrrp_state",
    "gauge",
    "The VRRP instance's state as keepalived reports it: 1 for the state it is in.",
);
const VRRP_PRIORITY: Metric = metric(
    "lbconsole_vrrp_priority",
    "gauge",
    "The VRRP instance's priority as keepalived last reported it.",
);
const VRRP_CONFIGURED_PRIORITY: Metric = metric(
    "lbconsole_vrrp_configured_priority",
    "gauge",
    "The VRRP instance's priority in network.conf.",
);
const CHECKS: Metric = metric(
    "lbconsole_checks_total",
    "counter",
    "Health checks completed since the daemon started: the checker's heartbeat.",
);
const QUIET: Metric = metric(
    "lbconsole_checker_seconds_since_last_check",
    "gauge",
    "Seconds since a health check last completed (or since checks became due).",
);
const STALLED: Metric = metric(
    "lbconsole_checker_stalled",
    "gauge",
    "1 when checks are due and none completed for two intervals: the checker is frozen.",
);

const VRRP_STATES: [VrrpState; 5] = [
    VrrpState::Init,
    VrrpState::Backup,
    VrrpState::Master,
    VrrpState::Fault,
    VrrpState::Stop,
];

/// The families written so far, each with its samples, in first-use order:
/// the format wants a family's samples together.
#[derive(Default)]
struct Exposition {
    families: Vec<(&'static Metric, String)>,
    index: HashMap<&'static str, usize>,
}

type Labels<'a> = [(&'a str, &'a str)];

impl Exposition {
    fn add(&mut self, metric: &'static Metric, labels: &Labels<'_>, value: impl Into<f64>) {
        self.add_suffixed(metric, "", labels, value.into());
    }

    fn add_suffixed(
        &mut self,
        metric: &'static Metric,
        suffix: &str,
        labels: &Labels<'_>,
        value: f64,
    ) {
        let slot = *self.index.entry(metric.name).or_insert_with(|| {
            self.families.push((metric, String::new()));
            self.families.len() - 1
        });
        let out = &mut self.families[slot].1;
        out.push_str(metric.name);
        out.push_str(suffix);
        if !labels.is_empty() {
            out.push('{');
            for (index, (name, value)) in labels.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{name}=\"{}\"", escape(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", number(value));
    }

    fn finish(self, out: &mut String) {
        for (metric, samples) in self.families {
            let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
            let _ = writeln!(out, "# TYPE {} {}", metric.name, metric.kind);
            out.push_str(&samples);
        }
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        value.to_string()
    }
}

fn family_label(family: Family) -> &'static str {
    match family {
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    }
}

fn flag(on: bool) -> f64 {
    if on { 1.0 } else { 0.0 }
}

/// Counters are u64; a float holds them exactly up to 2^53, years of traffic.
#[allow(clippy::cast_precision_loss)]
fn count(value: u64) -> f64 {
    value as f64
}

fn stats_values(stats: &Stats) -> [u64; 5] {
    [
        stats.connections,
        stats.packets_in,
        stats.packets_out,
        stats.bytes_in,
        stats.bytes_out,
    ]
}

/// The exposition of everything in `sample`.
pub fn render(sample: &Sample<'_>) -> String {
    let mut exposition = Exposition::default();
    servers(&mut exposition, sample);
    directors(&mut exposition, sample);
    flows(&mut exposition, sample.flows);
    versions(&mut exposition, &sample.versions);
    if let Some(vrrp) = sample.vrrp {
        vrrp_instances(&mut exposition, vrrp);
    }
    let mut out = String::new();
    exposition.finish(&mut out);
    out
}

/// The checker's heartbeat, rendered when it is read rather than when the
/// rest was: it must show a frozen checker even if nothing else is refreshed.
pub fn render_pulse(pulse: &Pulse) -> String {
    let mut exposition = Exposition::default();
    exposition.add(&CHECKS, &[], count(pulse.completed));
    exposition.add(&QUIET, &[], pulse.quiet.as_secs_f64());
    exposition.add(&STALLED, &[], flag(pulse.stalled));
    let mut out = String::new();
    exposition.finish(&mut out);
    out
}

fn servers(exposition: &mut Exposition, sample: &Sample<'_>) {
    let dest = |service: &ServiceKey, dest: &DestKey| {
        let services = sample.services?;
        services
            .iter()
            .filter(|s| s.key == *service)
            .flat_map(|s| &s.destinations)
            .find(|d| d.key() == *dest)
    };
    for server in &sample.servers {
        let member = server.member;
        let vip = member.service.to_string();
        let labels = [
            ("director", member.director.as_str()),
            ("server", member.server.as_str()),
            ("vip", vip.as_str()),
            ("family", family_label(member.service.family())),
        ];
        exposition.add(&SERVER_UP, &labels, flag(server.health == Health::Up));
        exposition.add(&SERVER_CHECKED, &labels, flag(server.latencies.is_some()));
        if let Some(latencies) = &server.latencies {
            let bounds = LATENCY_BUCKETS.iter().map(|b| number(*b));
            let bounds = bounds.chain(["+Inf".to_owned()]);
            for (bound, total) in bounds.zip(latencies.cumulative()) {
                let mut bucket = labels.to_vec();
                bucket.push(("le", bound.as_str()));
                exposition.add_suffixed(&CHECK_DURATION, "_bucket", &bucket, count(total));
            }
            exposition.add_suffixed(&CHECK_DURATION, "_sum", &labels, latencies.sum_seconds);
            exposition.add_suffixed(&CHECK_DURATION, "_count", &labels, count(latencies.count));
        }
        exposition.add(&STATE_CHANGES, &labels, count(server.transitions.count));
        if server.transitions.count > 0 {
            let seconds = count(server.transitions.last_ms) / 1000.0;
            exposition.add(&LAST_CHANGE, &labels, seconds);
        }
        exposition.add(&CONFIGURED_WEIGHT, &labels, member.weight);
        if let Some(hold) = member.hold {
            let mut held = labels.to_vec();
            held.push(("override", hold.name()));
            exposition.add(&OVERRIDE, &held, 1);
        }
        if sample.services.is_none() {
            continue;
        }
        let Some(status) = dest(&member.service, &member.dest) else {
            exposition.add(&WEIGHT, &labels, 0);
            continue;
        };
        exposition.add(&WEIGHT, &labels, status.weight);
        exposition.add(&ACTIVE, &labels, status.active_connections);
        exposition.add(&INACTIVE, &labels, status.inactive_connections);
        for (metric, value) in SERVER_COUNTERS.iter().zip(stats_values(&status.stats)) {
            exposition.add(metric, &labels, count(value));
        }
    }
}

fn directors(exposition: &mut Exposition, sample: &Sample<'_>) {
    // (director, service) in the configuration's order, with (servers, up).
    type Counted<'a> = ((&'a str, ServiceKey), (u32, u32));
    let mut directors: Vec<Counted<'_>> = Vec::new();
    for server in sample.servers.iter().filter(|s| !s.member.sorry) {
        let key = (server.member.director.as_str(), server.member.service);
        let slot = match directors.iter().position(|(k, _)| *k == key) {
            Some(slot) => slot,
            None => {
                directors.push((key, (0, 0)));
                directors.len() - 1
            }
        };
        let (all, up) = &mut directors[slot].1;
        *all += 1;
        *up += u32::from(server.health == Health::Up);
    }
    exposition.add(&IPVS_UP, &[], flag(sample.services.is_some()));
    for ((director, service), (all, up)) in directors {
        let vip = service.to_string();
        let labels = [
            ("director", director),
            ("vip", vip.as_str()),
            ("family", family_label(service.family())),
        ];
        exposition.add(&SERVERS_UP, &labels, up);
        exposition.add(&SERVERS, &labels, all);
        let status = sample
            .services
            .and_then(|services| services.iter().find(|s| s.key == service));
        if let Some(status) = status {
            for (metric, value) in SERVICE_COUNTERS.iter().zip(stats_values(&status.stats)) {
                exposition.add(metric, &labels, count(value));
            }
        }
    }
}

fn flows(exposition: &mut Exposition, flows: Option<&[FlowCounter]>) {
    exposition.add(&FLOWS_UP, &[], flag(flows.is_some()));
    for counter in flows.unwrap_or_default() {
        let direction = match counter.direction {
            Direction::In => "in",
            Direction::Out => "out",
        };
        let base = [("flow", counter.flow.as_str()), ("direction", direction)];
        match counter.rule {
            None => {
                exposition.add(&FLOW_PACKETS, &base, count(counter.packets));
                exposition.add(&FLOW_BYTES, &base, count(counter.bytes));
            }
            Some(rule) => {
                let rule = rule.to_string();
                let labels = [base[0], base[1], ("rule", rule.as_str())];
                exposition.add(&RULE_PACKETS, &labels, count(counter.packets));
                exposition.add(&RULE_BYTES, &labels, count(counter.bytes));
            }
        }
    }
}

fn versions(exposition: &mut Exposition, versions: &Versions) {
    if let Some(saved) = versions.saved {
        exposition.add(&SAVED_VERSION, &[], count(saved));
    }
    exposition.add(&RUNNING_VERSION, &[], count(versions.running.unwrap_or(0)));
    exposition.add(&PENDING, &[], flag(versions.pending));
    exposition.add(&APPLIES, &[], count(versions.applies));
    exposition.add(&ROLLBACKS, &[], count(versions.rollbacks));
}

fn vrrp_instances(exposition: &mut Exposition, vrrp: &VrrpStatus) {
    for instance in &vrrp.instances {
        let vrid = instance.vrid.to_string();
        let labels = [
            ("instance", instance.name.as_str()),
            ("interface", instance.interface.as_str()),
            ("vrid", vrid.as_str()),
            ("family", family_label(instance.family)),
        ];
        for state in VRRP_STATES {
            let mut stated = labels.to_vec();
            stated.push(("state", state.name()));
            exposition.add(&VRRP_STATE, &stated, flag(instance.state == state));
        }
        exposition.add(&VRRP_PRIORITY, &labels, instance.priority);
        exposition.add(
            &VRRP_CONFIGURED_PRIORITY,
            &labels,
            instance.configured_priority,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::record::ProbeRecord;
    use crate::health::run::Transitions;
    use crate::health::state::Member;
    use crate::kernel::DestStatus;
    use crate::plan::ipvs::Forward;
    use crate::plan::overrides::Hold;
    use std::time::Duration;

    fn member(server: &str, address: &str, weight: u32, hold: Option<Hold>) -> Member {
        Member {
            director: "web".into(),
            server: server.into(),
            service: ServiceKey::Vip {
                protocol: 6,
                address: "198.51.100.10".parse().expect("vip"),
                port: 80,
            },
            dest: DestKey {
                address: address.parse().expect("address"),
                port: 80,
            },
            weight,
            sorry: false,
            inhibit: false,
            check: None,
            hold,
        }
    }

    #[test]
    fn an_exposition_names_every_server_director_flow_and_version() {
        let up = member("web1", "10.0.1.2", 3, None);
        let down = member("web\"2", "10.0.2.2", 1, Some(Hold::Weight { weight: 5 }));
        let record = ProbeRecord::default();
        record.note(Duration::from_micros(700), None);
        record.note(Duration::from_millis(30), Some("refused".into()));
        let services = [ServiceStatus {
            key: up.service,
            scheduler: "wrr".into(),
            flags: 0,
            timeout: 0,
            stats: Stats {
                connections: 40,
                bytes_in: 4000,
                ..Stats::default()
            },
            destinations: vec![DestStatus {
                address: up.dest.address,
                port: 80,
                forward: Forward::Masquerade,
                weight: 3,
                active_connections: 2,
                inactive_connections: 7,
                persistent_connections: 0,
                stats: Stats {
                    connections: 40,
                    ..Stats::default()
                },
            }],
        }];
        let flows = [
            FlowCounter {
                direction: Direction::In,
                flow: "web".into(),
                rule: None,
                packets: 12,
                bytes: 1200,
            },
            FlowCounter {
                direction: Direction::In,
                flow: "web".into(),
                rule: Some(1),
                packets: 10,
                bytes: 1000,
            },
        ];
        let sample = Sample {
            servers: vec![
                ServerMetrics {
                    member: &up,
                    health: Health::Up,
                    latencies: Some(record.latencies()),
                    transitions: Transitions::default(),
                },
                ServerMetrics {
                    member: &down,
                    health: Health::Down,
                    latencies: None,
                    transitions: Transitions {
                        count: 3,
                        last_ms: 1_764_000_000_500,
                    },
                },
            ],
            services: Some(&services),
            flows: Some(&flows),
            versions: Versions {
                saved: Some(7),
                running: Some(6),
                pending: true,
                applies: 2,
                rollbacks: 1,
            },
            vrrp: None,
        };
        insta::assert_snapshot!(render(&sample));
    }
}
