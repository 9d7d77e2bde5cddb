//! The health checker on tokio: one task per checked server sends its results
//! here; a result that changes a server's state changes IPVS at once, as
//! real-server operations only (the apply owns the services). A change costs
//! the operations of the servers it concerns, not a read of the whole table: at
//! thousands of servers, reading IPVS back on every change is most of the work.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::checks::{self, CheckError};
use super::publish::ServerReport;
use super::record::{Heartbeat, Latencies, ProbeRecord, unix_ms};
use super::state::{self, Check, Health, Member, ServerHealth, SharedCheck};
use crate::config::model::LvsConfig;
use crate::events::{Event, EventKind};
use crate::kernel::IpvsBackend;
use crate::metrics::checker::Records;
use crate::plan::ipvs::{IpvsOp, IpvsState, Service, ServiceKey, desired};
use crate::plan::overrides::Overrides;

/// Results waiting to be counted; a full queue slows the checks down rather
/// than growing.
const QUEUE: usize = 4096;

/// While health keeps the table from what the configuration asks for, every
/// this many ticks the checker reads IPVS back and puts right what someone
/// changed by hand. An apply needs no such pass: it leaves down servers out,
/// and the reload that follows it reads the table.
const RESYNC_TICKS: u32 = 10;

/// Changes of state kept for the event log until taken.
const MAX_CHANGES: usize = 1000;

/// A server's change of state, found by its check task. The task counts its
/// own results against rise and fall, so that only changes wake the checker:
/// at thousands of checks a second, a message per check is most of the work
/// outside the kernel.
#[derive(Debug)]
pub struct Report {
    /// Reports of a previous configuration are ignored.
    generation: u64,
    /// The probe, in `probes`, whose members changed.
    probe: usize,
    health: Health,
    /// What the check that took the server down said.
    reason: Option<String>,
}

pub struct HealthChecker<I> {
    ipvs: Option<I>,
    desired: IpvsState,
    members: Vec<Member>,
    health: Vec<ServerHealth>,
    /// The members each probe decides, by index: one probe per server checked
    /// alike, whichever directors share it.
    probes: Vec<Vec<usize>>,
    /// The members of each service, by index.
    by_service: HashMap<ServiceKey, Vec<usize>>,
    /// What IPVS holds of those services: read at each load and resync, kept
    /// up to date by each change since. `None` until read.
    known: Option<IpvsState>,
    /// The services whose table health makes differ from the configuration's.
    deviating: BTreeSet<ServiceKey>,
    /// The operators' overrides, above the configuration and (drain, disable)
    /// above health.
    overrides: Overrides,
    ticks: u32,
    generation: u64,
    tasks: Vec<JoinHandle<()>>,
    sender: mpsc::Sender<Report>,
    receiver: mpsc::Receiver<Report>,
    /// Changes of state for the event log, until the daemon takes them; the
    /// newest [`MAX_CHANGES`] when nobody does.
    changes: VecDeque<Event>,
    /// Each probe's check and results, by probe: a reload that keeps a check
    /// keeps its results.
    records: Vec<(Check, Arc<ProbeRecord>)>,
    /// The probe of each member, by index; `None` when it is not checked.
    probe_of: Vec<Option<usize>>,
    heartbeat: Arc<Heartbeat>,
    /// Changes of state per (director, server) since the daemon started.
    transitions: HashMap<(String, String), Transitions>,
}

/// How often a server changed state, and when it last did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Transitions {
    pub count: u64,
    /// Milliseconds since the Unix epoch; 0 when it never changed.
    pub last_ms: u64,
}

/// One server as the metrics show it.
#[derive(Debug, Clone)]
pub struct ServerMetrics<'a> {
    pub member: &'a Member,
    pub health: Health,
    /// `None` for a server that is not checked.
    pub latencies: Option<Latencies>,
    pub transitions: Transitions,
}

impl<I: IpvsBackend> HealthChecker<I> {
    /// A checker with nothing to check; without IPVS it keeps the servers'
    /// state but changes nothing.
    pub fn new(ipvs: Option<I>) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Self {
            ipvs,
            desired: IpvsState::default(),
            members: Vec::new(),
            health: Vec::new(),
            probes: Vec::new(),
            by_service: HashMap::new(),
            known: None,
            deviating: BTreeSet::new(),
            overrides: Overrides::default(),
            ticks: 0,
            generation: 0,
            tasks: Vec::new(),
            sender,
            receiver,
            changes: VecDeque::new(),
            records: Vec::new(),
            probe_of: Vec::new(),
            heartbeat: Arc::default(),
            transitions: HashMap::new(),
        }
    }

    /// The checker's heartbeat, which its readers share.
    pub fn heartbeat(&self) -> Arc<Heartbeat> {
        Arc::clone(&self.heartbeat)
    }

    /// Every server with its state, check latencies and changes of state.
    pub fn server_metrics(&self) -> impl Iterator<Item = ServerMetrics<'_>> {
        self.servers()
            .zip(&self.probe_of)
            .map(|((member, health), probe)| ServerMetrics {
                member,
                health,
                latencies: probe.map(|probe| self.records[probe].1.latencies()),
                transitions: self
                    .transitions
                    .get(&(member.director.clone(), member.server.clone()))
                    .copied()
                    .unwrap_or_default(),
            })
    }

    /// Stops every check, as a frozen checker would (the watchdog's test).
    #[cfg(feature = "fake-kernel")]
    pub fn freeze(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }

    /// Each server's record of results, for `checker.sock`.
    pub fn records(&self) -> Records {
        self.members
            .iter()
            .zip(&self.probe_of)
            .map(|(member, probe)| {
                let record = probe.map(|probe| Arc::clone(&self.records[probe].1));
                ((member.director.clone(), member.server.clone()), record)
            })
            .collect()
    }

    /// The changes of state since the last call, oldest first, for the event log.
    pub fn take_changes(&mut self) -> Vec<Event> {
        self.changes.drain(..).collect()
    }

    pub fn has_ipvs(&self) -> bool {
        self.ipvs.is_some()
    }

    pub fn set_ipvs(&mut self, ipvs: I) {
        self.ipvs = Some(ipvs);
    }

    pub fn ipvs(&self) -> Option<&I> {
        self.ipvs.as_ref()
    }

    /// Each server with its state.
    pub fn servers(&self) -> impl Iterator<Item = (&Member, Health)> {
        self.members
            .iter()
            .zip(&self.health)
            .map(|(member, health)| (member, health.health()))
    }

    /// What the daemon publishes for `status`.
    pub fn report(&self) -> Vec<ServerReport> {
        self.servers()
            .map(|(member, health)| ServerReport {
                director: member.director.clone(),
                server: member.server.clone(),
                address: member.dest.address,
                port: member.dest.port,
                checked: member.check.is_some(),
                sorry: member.sorry,
                health,
            })
            .collect()
    }

    /// Checks the servers of `config` from now on. A server whose address, port
    /// and check are unchanged keeps its state; IPVS is brought in line at once.
    pub async fn load(&mut self, config: &LvsConfig) {
        let mut roster = state::roster(config);
        state::hold(&mut roster.members, &self.overrides);
        for warning in &roster.warnings {
            tracing::warn!("health: {warning}");
        }
        let shared = state::shared_checks(&roster.members);
        let health = state::carry_over(&self.members, &self.health, &roster.members, &shared);
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.generation += 1;
        self.probes.clear();
        let mut kept: HashMap<Check, Arc<ProbeRecord>> = self.records.drain(..).collect();
        let mut probe_of = vec![None; roster.members.len()];
        // One clock read for all: the checks of one step of the grid start at
        // the very same instant, hence at one wake.
        let now = Instant::now();
        for (probe, SharedCheck { check, members }) in shared.into_iter().enumerate() {
            // The first member names the probe and gives its state (they all
            // start in one).
            let lead = members[0];
            let member = &roster.members[lead];
            let first = now + check.offset(&member.service, &member.dest);
            let record = kept.remove(&check).unwrap_or_default();
            self.records.push((check.clone(), Arc::clone(&record)));
            self.tasks.push(spawn_check(
                Report {
                    generation: self.generation,
                    probe,
                    health: health[lead].health(),
                    reason: None,
                },
                health[lead],
                check,
                first,
                Recorders {
                    sender: self.sender.clone(),
                    record,
                    heartbeat: Arc::clone(&self.heartbeat),
                },
            ));
            for &index in &members {
                probe_of[index] = Some(probe);
            }
            self.probes.push(members);
        }
        self.probe_of = probe_of;
        self.heartbeat.expect(
            self.records
                .iter()
                .map(|(check, _)| check.interval.max(check.timeout))
                .min(),
        );
        self.by_service.clear();
        for (index, member) in roster.members.iter().enumerate() {
            self.by_service
                .entry(member.service)
                .or_default()
                .push(index);
        }
        self.members = roster.members;
        self.health = health;
        self.desired = desired(config);
        let down = self.servers().filter(|(_, h)| *h == Health::Down).count();
        let checked: usize = self.probes.iter().map(Vec::len).sum();
        tracing::info!(
            "health: checking {checked} of {} server(s), {down} down; {} probe(s)",
            self.members.len(),
            self.tasks.len()
        );
        self.reconcile().await;
    }

    /// Takes `overrides` in place of those in force; when they differ, brings
    /// IPVS in line at once. Whether they differed.
    pub async fn set_overrides(&mut self, overrides: &Overrides) -> bool {
        if *overrides == self.overrides {
            return false;
        }
        self.overrides = overrides.clone();
        state::hold(&mut self.members, &self.overrides);
        self.reconcile().await;
        true
    }

    /// The next check result.
    pub async fn next_report(&mut self) -> Report {
        // The checker holds a sender, so the channel never closes.
        match self.receiver.recv().await {
            Some(report) => report,
            None => std::future::pending().await,
        }
    }

    /// Counts `report` and every other result already waiting, then changes
    /// the services whose servers changed state, in one batch.
    pub async fn handle(&mut self, report: Report) {
        let mut changed = BTreeSet::new();
        self.record(report, &mut changed);
        while let Ok(report) = self.receiver.try_recv() {
            self.record(report, &mut changed);
        }
        if !changed.is_empty() {
            self.change(&changed).await;
        }
    }

    /// Once a second: every [`RESYNC_TICKS`] while health keeps servers out (or
    /// a sorry server in), makes sure IPVS still shows it.
    pub async fn tick(&mut self) {
        self.ticks += 1;
        if self.ticks >= RESYNC_TICKS && !self.deviating.is_empty() {
            self.reconcile().await;
        }
    }

    /// Takes in one probe's change of state for each member it decides; adds
    /// their services to `changed`.
    fn record(&mut self, report: Report, changed: &mut BTreeSet<ServiceKey>) {
        if report.generation != self.generation {
            return;
        }
        for &index in &self.probes[report.probe] {
            let member = &self.members[index];
            let before = self.health[index].health();
            self.health[index] = ServerHealth::known(report.health);
            changed.insert(member.service);
            if before == report.health {
                continue;
            }
            let reason = report
                .reason
                .as_ref()
                .filter(|_| report.health == Health::Down)
                .map(|reason| format!(": {reason}"))
                .unwrap_or_default();
            let transitions = self
                .transitions
                .entry((member.director.clone(), member.server.clone()))
                .or_default();
            transitions.count += 1;
            transitions.last_ms = unix_ms(SystemTime::now());
            if self.changes.len() >= MAX_CHANGES {
                self.changes.pop_front();
            }
            let text = format!(
                "server {} ({}) of director {} is {}{reason}",
                member.server, member.dest, member.director, report.health
            );
            match report.health {
                Health::Down => tracing::warn!(
                    director = member.director,
                    server = member.server,
                    "health: {text}"
                ),
                Health::Up => tracing::info!(
                    director = member.director,
                    server = member.server,
                    "health: {text}"
                ),
            }
            self.changes.push_back(
                Event::new(EventKind::Health, text).server(&member.director, &member.server),
            );
        }
    }

    /// The table of one service that the configuration and its servers' health
    /// ask for; `None` for a service the configuration does not have.
    fn wanted(&self, key: &ServiceKey) -> Option<Service> {
        let desired = self.desired.services.get(key)?;
        let servers: Vec<(&Member, &ServerHealth)> = self
            .by_service
            .get(key)
            .into_iter()
            .flatten()
            .map(|&index| (&self.members[index], &self.health[index]))
            .collect();
        Some(state::service_with_health(desired, &servers))
    }

    /// Changes the real servers of `services` from what IPVS is known to hold
    /// to what their health asks for. Should an operation be refused (someone
    /// else changed the table), reads the whole table back and starts over.
    async fn change(&mut self, services: &BTreeSet<ServiceKey>) {
        let Some(known) = self.known.as_ref() else {
            return self.reconcile().await;
        };
        let mut have = IpvsState::default();
        let mut want = IpvsState::default();
        for key in services {
            if let (Some(held), Some(wanted)) = (known.services.get(key), self.wanted(key)) {
                have.services.insert(*key, held.clone());
                want.services.insert(*key, wanted);
            }
        }
        for (key, wanted) in &want.services {
            if self.desired.services.get(key) == Some(wanted) {
                self.deviating.remove(key);
            } else {
                self.deviating.insert(*key);
            }
        }
        let ops = state::dest_ops(&have, &want);
        if self.execute(&ops).await {
            let known = self.known.get_or_insert_default();
            for (key, mut wanted) in want.services {
                if let Some(held) = known.services.get_mut(&key) {
                    wanted.settings = held.settings.clone();
                    *held = wanted;
                }
            }
        } else {
            self.reconcile().await;
        }
    }

    /// Reads IPVS and takes it to the table the configuration and the servers'
    /// health ask for.
    async fn reconcile(&mut self) {
        self.ticks = 0;
        let wanted = state::with_health(&self.desired, &self.members, &self.health);
        self.deviating = wanted
            .services
            .iter()
            .filter(|&(key, service)| self.desired.services.get(key) != Some(service))
            .map(|(key, _)| *key)
            .collect();
        let Some(ipvs) = self.ipvs.as_mut() else {
            return;
        };
        let observed = match ipvs.observe().await {
            Ok(observation) => observation.state,
            Err(error) => {
                tracing::error!("health: {error}; IPVS not changed");
                self.known = None;
                return;
            }
        };
        let ops = state::dest_ops(&observed, &wanted);
        self.known = if self.execute(&ops).await {
            // What health touches of the table now matches `wanted`.
            let mut known = observed;
            for (key, held) in &mut known.services {
                if let Some(wanted) = wanted.services.get(key) {
                    held.destinations = wanted.destinations.clone();
                }
            }
            Some(known)
        } else {
            None
        };
    }

    /// Carries out `ops`, logging each; whether all succeeded.
    async fn execute(&mut self, ops: &[IpvsOp]) -> bool {
        let Some(ipvs) = self.ipvs.as_mut() else {
            return true;
        };
        if ops.is_empty() {
            return true;
        }
        let results = ipvs.execute(ops).await;
        let mut all = true;
        for (op, result) in ops.iter().zip(results) {
            match result {
                Ok(()) => tracing::info!("health: {op}"),
                Err(error) => {
                    tracing::error!("health: {error}");
                    all = false;
                }
            }
        }
        all
    }
}

impl<I> Drop for HealthChecker<I> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Raises this process's limit of open files to its hard limit: each check
/// holds a socket for up to its timeout, so a few thousand servers need more
/// than the usual soft limit of 1,024.
pub fn raise_open_file_limit() {
    let raised = crate::sys::open_file_limits().and_then(|(soft, hard)| {
        if soft >= hard {
            Ok(soft)
        } else {
            crate::sys::set_open_file_limits(hard, hard).map(|()| hard)
        }
    });
    match raised {
        Ok(limit) => tracing::debug!("health: up to {limit} open files"),
        Err(error) => tracing::warn!("health: cannot raise the limit of open files: {error}"),
    }
}

/// Where a check task puts what it finds: changes of state to the checker,
/// every result to its record, every completion to the heartbeat.
struct Recorders {
    sender: mpsc::Sender<Report>,
    record: Arc<ProbeRecord>,
    heartbeat: Arc<Heartbeat>,
}

/// The task that checks one server every interval from `first`, from state
/// `health`; `report` names the server in what it sends.
fn spawn_check(
    report: Report,
    mut health: ServerHealth,
    check: Check,
    first: Instant,
    recorders: Recorders,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Starts are reckoned from the first one, so that the checks of one
        // step of the grid stay at one wake; each check's timeout runs from
        // its own sending (`checks::run`).
        let mut start = first;
        loop {
            tokio::time::sleep_until(start).await;
            // Boxed: the probe's state lives only while it runs, so that thousands
            // of waiting tasks stay small.
            let began = Instant::now();
            let result = Box::pin(checks::run(&check)).await;
            if !matches!(result, Err(CheckError::Local(_))) {
                let failure = result.as_ref().err().map(ToString::to_string);
                recorders.record.note(began.elapsed(), failure);
                recorders.heartbeat.beat();
            }
            start += check.interval;
            if matches!(result, Err(CheckError::Timeout(_))) {
                // A timeout longer than the interval delays the next check
                // rather than bunching them.
                start = start.max(Instant::now());
            }
            let Some(changed) = count(&mut health, &check, &result) else {
                continue;
            };
            let report = Report {
                health: changed,
                reason: result.err().map(|error| error.to_string()),
                ..report
            };
            if recorders.sender.send(report).await.is_err() {
                break;
            }
        }
    })
}

/// Counts one result of `check`; the server's new state when this result
/// changes it. A check that could not run (no socket to be had) says nothing of
/// the server and does not count.
fn count(
    health: &mut ServerHealth,
    check: &Check,
    result: &Result<(), CheckError>,
) -> Option<Health> {
    match result {
        Err(error @ CheckError::Local(_)) => {
            tracing::warn!("health: {} not checked: {error}", check.address);
            None
        }
        Err(error) => {
            tracing::debug!("health: {}: {error}", check.address);
            health.record(false, check.rise, check.fall)
        }
        Ok(()) => health.record(true, check.rise, check.fall),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::state::Probe;
    use crate::health::state::tests::lvs;
    use crate::kernel::fake::FakeIpvs;
    use crate::plan::ipvs::ServiceKey;
    use std::net::Ipv4Addr;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn config(up: u16, down: u16) -> LvsConfig {
        config_weighted(up, down, 4)
    }

    fn config_weighted(up: u16, down: u16, weight: u16) -> LvsConfig {
        lvs(&format!(
            "director web 10.0.0.1:80\n\
             check interval 1 timeout 1\n\
             option tcpcheck\n\
             server up 127.0.0.1:{up} weight {weight} check\n\
             server down 127.0.0.1:{down} weight 2 check\n\
             server sorry 127.0.0.9:80 sorry\n"
        ))
    }

    /// The real servers' ports and weights in the fake IPVS.
    fn table(checker: &HealthChecker<FakeIpvs>) -> Vec<(u16, u32)> {
        let ipvs = checker.ipvs().expect("ipvs");
        let service = &ipvs.state.services[&ServiceKey::Vip {
            protocol: 6,
            address: "10.0.0.1".parse().expect("address"),
            port: 80,
        }];
        let mut table: Vec<(u16, u32)> = service
            .destinations
            .iter()
            .map(|(dest, settings)| (dest.port, settings.weight))
            .collect();
        table.sort_unstable();
        table
    }

    fn sorted(mut table: Vec<(u16, u32)>) -> Vec<(u16, u32)> {
        table.sort_unstable();
        table
    }

    async fn run_until(
        checker: &mut HealthChecker<FakeIpvs>,
        done: impl Fn(&HealthChecker<FakeIpvs>) -> bool,
    ) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !done(checker) {
                let report = checker.next_report().await;
                checker.handle(report).await;
            }
        })
        .await
        .expect("the checker gets there within 5 s");
    }

    async fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        listener.local_addr().expect("address").port()
    }

    /// A checker over the server `live` listens for and a dead one, once the
    /// dead one is out of IPVS; the two ports.
    async fn one_dead(live: &TcpListener) -> (HealthChecker<FakeIpvs>, u16, u16) {
        let up = live.local_addr().expect("address").port();
        let down = closed_port().await;
        let config = config(up, down);
        let ipvs = FakeIpvs {
            state: desired(&config),
            ..FakeIpvs::default()
        };
        let mut checker = HealthChecker::new(Some(ipvs));
        checker.load(&config).await;
        run_until(&mut checker, |c| table(c).len() == 2).await;
        (checker, up, down)
    }

    /// A checker too busy to start a check until well after its timeout
    /// would have passed still gives the server its whole timeout: a server
    /// that answers within it is up.
    #[tokio::test]
    async fn a_check_started_late_gives_the_server_its_whole_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let port = listener.local_addr().expect("address").port();
        let answer_after = Duration::from_millis(300);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = [0; 1024];
                    let _ = stream.read(&mut request).await;
                    tokio::time::sleep(answer_after).await;
                    let _ = stream.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
                });
            }
        });
        let check = Check {
            address: Ipv4Addr::LOCALHOST.into(),
            probe: Probe::Http {
                port,
                uri: "/".into(),
                vhost: None,
                status: 200,
            },
            source: None,
            interval: Duration::from_secs(10),
            timeout: Duration::from_millis(500),
            rise: 1,
            fall: 1,
        };
        let overdue = Instant::now() - 2 * check.timeout;
        let (sender, mut receiver) = mpsc::channel(1);
        let report = Report {
            generation: 0,
            probe: 0,
            health: Health::Down,
            reason: None,
        };
        let record = Arc::new(ProbeRecord::default());
        let heartbeat = Arc::new(Heartbeat::default());
        let task = spawn_check(
            report,
            ServerHealth::known(Health::Down),
            check,
            overdue,
            Recorders {
                sender,
                record: Arc::clone(&record),
                heartbeat: Arc::clone(&heartbeat),
            },
        );
        let report = tokio::time::timeout(Duration::from_secs(5), receiver.recv())
            .await
            .expect("a report within 5 s")
            .expect("a report");
        task.abort();
        assert_eq!(report.health, Health::Up, "{:?}", report.reason);
        let recent = record.recent();
        assert_eq!(recent.len(), 1, "the check is recorded: {recent:?}");
        assert!(recent[0].passed);
        assert_eq!(heartbeat.pulse().completed, 1, "and beats the heartbeat");
    }

    #[tokio::test]
    async fn a_dead_server_leaves_ipvs_and_comes_back_when_it_listens_again() {
        let live = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let (mut checker, up, down) = one_dead(&live).await;
        assert_eq!(table(&checker), sorted(vec![(80, 0), (up, 4)]));
        let observed = checker.ipvs().expect("ipvs").observed;
        let changes = checker.take_changes();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].server.as_deref(), Some("down"));
        assert!(
            changes[0].text.starts_with(&format!(
                "server down (127.0.0.1:{down}) of director web is down: "
            )),
            "the change says why: {}",
            changes[0].text
        );
        assert!(checker.take_changes().is_empty(), "taken once");

        let revived = TcpListener::bind(("127.0.0.1", down))
            .await
            .expect("listen");
        run_until(&mut checker, |c| table(c).len() == 3).await;
        assert_eq!(table(&checker), sorted(vec![(80, 0), (up, 4), (down, 2)]));
        drop(revived);
        drop(live);
        run_until(&mut checker, |c| table(c) == [(80, 1)]).await;
        assert_eq!(
            checker.ipvs().expect("ipvs").observed,
            observed,
            "changes go by what the checker knows, without reading the table"
        );
    }

    #[tokio::test]
    async fn one_probe_of_a_server_two_directors_share_takes_it_out_of_both() {
        let down = closed_port().await;
        let config = lvs(&format!(
            "director web 10.0.0.1:80\n\
             check interval 1 timeout 1\n\
             option tcpcheck\n\
             server a 127.0.0.1:{down} check\n\
             director api 10.0.0.2:80\n\
             check interval 1 timeout 1\n\
             option tcpcheck\n\
             server b 127.0.0.1:{down} check\n"
        ));
        let ipvs = FakeIpvs {
            state: desired(&config),
            ..FakeIpvs::default()
        };
        let mut checker = HealthChecker::new(Some(ipvs));
        checker.load(&config).await;
        assert_eq!(checker.tasks.len(), 1, "one probe for both");
        run_until(&mut checker, |c| {
            c.ipvs()
                .expect("ipvs")
                .state
                .services
                .values()
                .all(|service| service.destinations.is_empty())
        })
        .await;
        let servers: Vec<_> = checker
            .take_changes()
            .into_iter()
            .map(|change| change.server)
            .collect();
        assert_eq!(servers, [Some("a".to_owned()), Some("b".to_owned())]);
    }

    #[test]
    fn a_check_that_could_not_open_a_socket_does_not_count() {
        let config = config(1, 2);
        let check = state::roster(&config).members[0]
            .check
            .clone()
            .expect("checked");
        let mut health = ServerHealth::new();
        let local = Err(CheckError::Local(std::io::Error::from_raw_os_error(
            libc::EMFILE,
        )));
        assert_eq!(
            count(&mut health, &check, &local),
            None,
            "fall 1, yet no change"
        );
        let timeout = Err(CheckError::Timeout(Duration::from_secs(1)));
        assert_eq!(
            count(&mut health, &check, &timeout),
            Some(Health::Down),
            "a real failure counts"
        );
        assert_eq!(count(&mut health, &check, &Ok(())), Some(Health::Up));
    }

    #[tokio::test]
    async fn a_reload_keeps_a_down_server_down_and_an_apply_that_undid_it_is_corrected() {
        let live = TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let (mut checker, up, down) = one_dead(&live).await;
        let config = config(up, down);

        // An apply puts every server back; the reload keeps the state and takes
        // the dead one out again before any check has run.
        checker.ipvs.as_mut().expect("ipvs").state = desired(&config);
        let reweighted = config_weighted(up, down, 5);
        checker.load(&reweighted).await;
        assert_eq!(table(&checker), sorted(vec![(80, 0), (up, 5)]));

        // Someone puts the server back by hand: the next resync takes it out.
        checker.ipvs.as_mut().expect("ipvs").state = desired(&reweighted);
        for _ in 0..RESYNC_TICKS {
            checker.tick().await;
        }
        assert_eq!(table(&checker), sorted(vec![(80, 0), (up, 5)]));
    }
}
