//! What the LB Layer4 pane's sparklines draw: the last minutes of IPVS's own
//! per-second rates, one sample per live poll, kept per virtual service and
//! per real server. A service or server missing from a poll loses its
//! history, so one that comes back starts afresh instead of joining its old
//! line across the gap; so does everything when IPVS cannot be read.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::kernel::{ServiceStatus, Stats};
use crate::plan::ipvs::{DestKey, ServiceKey};

/// How far back the sparklines look.
pub const WINDOW: Duration = Duration::from_secs(180);

/// Samples in [`WINDOW`] at one per live poll.
pub const SAMPLES: usize = (WINDOW.as_secs() / super::LIVE_REFRESH.as_secs()) as usize;

/// One poll's rates of a service or a real server, as IPVS estimates them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub connections: u64,
    /// In and out together.
    pub bytes: u64,
}

impl From<&Stats> for Rate {
    fn from(stats: &Stats) -> Self {
        Self {
            connections: stats.connections_per_second,
            bytes: stats
                .bytes_in_per_second
                .saturating_add(stats.bytes_out_per_second),
        }
    }
}

/// One service's or server's samples, oldest first; the newest is of the
/// last poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    samples: VecDeque<Rate>,
}

impl History {
    pub fn samples(&self) -> &VecDeque<Rate> {
        &self.samples
    }

    pub fn latest(&self) -> Option<Rate> {
        self.samples.back().copied()
    }

    fn push(&mut self, rate: Rate, capacity: usize) {
        while self.samples.len() >= capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(rate);
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    capacity: usize,
    /// Polls recorded, the last one included: every history ends at this
    /// poll, so sparklines of different lengths line up on the right.
    polls: u64,
    services: BTreeMap<ServiceKey, History>,
    servers: BTreeMap<(ServiceKey, DestKey), History>,
}

impl Default for Rates {
    fn default() -> Self {
        Self::new(SAMPLES)
    }
}

impl Rates {
    /// Histories of at most `capacity` samples (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            polls: 0,
            services: BTreeMap::new(),
            servers: BTreeMap::new(),
        }
    }

    /// Adds one poll: the services IPVS has, or `None` when it could not be read.
    pub fn record(&mut self, services: Option<&[ServiceStatus]>) {
        self.polls += 1;
        let (mut services_before, mut servers_before) = (
            std::mem::take(&mut self.services),
            std::mem::take(&mut self.servers),
        );
        for service in services.unwrap_or_default() {
            let mut history = services_before.remove(&service.key).unwrap_or_default();
            history.push(Rate::from(&service.stats), self.capacity);
            self.services.insert(service.key, history);
            for dest in &service.destinations {
                let key = (service.key, dest.key());
                let mut history = servers_before.remove(&key).unwrap_or_default();
                history.push(Rate::from(&dest.stats), self.capacity);
                self.servers.insert(key, history);
            }
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of the last poll, which every history's newest sample is of.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    pub fn service(&self, key: &ServiceKey) -> Option<&History> {
        self.services.get(key)
    }

    pub fn server(&self, service: &ServiceKey, dest: &DestKey) -> Option<&History> {
        self.servers.get(&(*service, *dest))
    }
}

/// The director whose section of lvs.conf holds line `row`: the name after
/// the last `director` at or above it.
pub fn director_at(lines: &[String], row: usize) -> Option<&str> {
    lines
        .get(..=row.min(lines.len().checked_sub(1)?))?
        .iter()
        .rev()
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("director"))
                .then(|| words.next())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::kernel::DestStatus;
    use crate::plan::ipvs::Forward;

    fn vip(last: u8) -> ServiceKey {
        ServiceKey::Vip {
            protocol: 6,
            address: IpAddr::from([192, 168, 0, last]),
            port: 80,
        }
    }

    fn stats(connections: u64, bytes_in: u64, bytes_out: u64) -> Stats {
        Stats {
            connections_per_second: connections,
            bytes_in_per_second: bytes_in,
            bytes_out_per_second: bytes_out,
            ..Stats::default()
        }
    }

    fn dest(last: u8, connections: u64) -> DestStatus {
        DestStatus {
            address: IpAddr::from([10, 0, 2, last]),
            port: 8080,
            forward: Forward::Masquerade,
            weight: 1,
            active_connections: 0,
            inactive_connections: 0,
            persistent_connections: 0,
            stats: stats(connections, 0, 0),
        }
    }

    fn service(key: ServiceKey, connections: u64, dests: Vec<DestStatus>) -> ServiceStatus {
        ServiceStatus {
            key,
            scheduler: "wlc".to_owned(),
            flags: 0,
            timeout: 0,
            stats: stats(connections, 1000, 500),
            destinations: dests,
        }
    }

    fn connections(history: Option<&History>) -> Vec<u64> {
        history
            .map(|h| h.samples().iter().map(|r| r.connections).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_history_keeps_the_newest_samples_in_order_up_to_its_capacity() {
        let mut rates = Rates::new(3);
        for n in 1..=5 {
            rates.record(Some(&[service(vip(10), n, Vec::new())]));
        }
        assert_eq!(connections(rates.service(&vip(10))), [3, 4, 5]);
        assert_eq!(rates.polls(), 5);
        let latest = rates.service(&vip(10)).and_then(History::latest);
        assert_eq!(
            latest,
            Some(Rate {
                connections: 5,
                bytes: 1500
            })
        );
    }

    #[test]
    fn each_service_and_server_has_its_own_history() {
        let mut rates = Rates::new(10);
        for n in 0..2 {
            rates.record(Some(&[
                service(vip(10), n, vec![dest(11, 10 + n), dest(12, 20 + n)]),
                service(vip(11), 100 + n, vec![dest(11, 30 + n)]),
            ]));
        }
        assert_eq!(connections(rates.service(&vip(10))), [0, 1]);
        assert_eq!(connections(rates.service(&vip(11))), [100, 101]);
        let server = |service: ServiceKey, last: u8| {
            connections(rates.server(&service, &dest(last, 0).key()))
        };
        assert_eq!(server(vip(10), 11), [10, 11]);
        assert_eq!(server(vip(10), 12), [20, 21]);
        // The same real server behind another service counts apart.
        assert_eq!(server(vip(11), 11), [30, 31]);
    }

    #[test]
    fn what_disappears_comes_back_without_its_old_history() {
        let mut rates = Rates::new(10);
        let both = |n| {
            [
                service(vip(10), n, vec![dest(11, n), dest(12, n)]),
                service(vip(11), n, Vec::new()),
            ]
        };
        rates.record(Some(&both(1)));
        rates.record(Some(&[service(vip(10), 2, vec![dest(12, 2)])]));
        assert_eq!(rates.service(&vip(11)), None);
        assert_eq!(rates.server(&vip(10), &dest(11, 0).key()), None);
        rates.record(Some(&both(3)));
        assert_eq!(connections(rates.service(&vip(10))), [1, 2, 3]);
        assert_eq!(connections(rates.service(&vip(11))), [3]);
        assert_eq!(connections(rates.server(&vip(10), &dest(11, 0).key())), [3]);
        assert_eq!(
            connections(rates.server(&vip(10), &dest(12, 0).key())),
            [1, 2, 3]
        );
        // IPVS unreadable: nothing is known of what happened meanwhile.
        rates.record(None);
        assert_eq!(rates.service(&vip(10)), None);
        rates.record(Some(&both(5)));
        assert_eq!(connections(rates.service(&vip(10))), [5]);
        assert_eq!(rates.polls(), 5);
    }

    #[test]
    fn the_director_is_the_one_whose_section_holds_the_line() {
        let lines: Vec<String> = [
            "# directors",
            "director web 192.168.0.10:80 TCP",
            "    server web1 10.0.2.11:8080",
            "",
            "  director   mail",
            "    server mail1 10.0.1.11",
        ]
        .map(str::to_owned)
        .to_vec();
        assert_eq!(director_at(&lines, 0), None);
        assert_eq!(director_at(&lines, 1), Some("web"));
        assert_eq!(director_at(&lines, 3), Some("web"));
        assert_eq!(director_at(&lines, 5), Some("mail"));
        assert_eq!(director_at(&lines, 99), Some("mail"));
        assert_eq!(director_at(&[], 0), None);
    }
}
