//! The daemon's side of the metrics: when a scrape wants a fresh exposition,
//! reads IPVS, the nft counters, the store and keepalived's state, and
//! renders them with the checker's servers.

use std::future::Future;

use super::exposition::{self, Sample, Versions};
use super::serve::Feed;
use crate::events::{EventKind, Follower};
use crate::ha::status;
use crate::health::run::HealthChecker;
use crate::kernel::{FirewallBackend, IpvsBackend, Kernel, KernelError, NetworkBackend};
use crate::store::{PendingApply, Store};

/// Keeps the kernel connection and the event log's reading between scrapes.
pub struct Gatherer<N, I, W> {
    feed: Feed,
    kernel: Option<Kernel<N, I, W>>,
    events: Follower,
    applies: u64,
    rollbacks: u64,
}

impl<N: NetworkBackend, I: IpvsBackend, W: FirewallBackend> Gatherer<N, I, W> {
    /// Counts applies and rollbacks from now: those already in the log came
    /// before this daemon.
    pub fn new(feed: Feed, store: &Store) -> Self {
        let mut events = Follower::new(store.state_dir());
        if let Err(error) = events.poll() {
            tracing::warn!("metrics: {error}; applies are counted from the next readable event");
        }
        Self {
            feed,
            kernel: None,
            events,
            applies: 0,
            rollbacks: 0,
        }
    }

    /// Answers `checker.sock` with these servers' results from now on.
    pub fn set_records(&self, records: crate::metrics::checker::Records) {
        self.feed.set_records(records);
    }

    /// Until a scrape wants a fresh exposition.
    pub async fn wanted(&mut self) {
        self.feed.wanted().await;
    }

    /// Makes a fresh exposition, unless one was made within the second.
    pub async fn refresh<F, Fut>(
        &mut self,
        store: &Store,
        connect: &mut F,
        health: &HealthChecker<impl IpvsBackend>,
    ) where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Kernel<N, I, W>, KernelError>>,
    {
        if self.feed.is_fresh() {
            return;
        }
        if self.kernel.is_none() {
            match connect().await {
                Ok(kernel) => self.kernel = Some(kernel),
                Err(error) => tracing::warn!("metrics: {error}; no IPVS or flow counters"),
            }
        }
        let (mut services, mut flows) = (None, None);
        if let Some(kernel) = self.kernel.as_mut() {
            let read = match kernel.ipvs.as_mut() {
                Ok(ipvs) => ipvs.observe().await.map(|observed| observed.services),
                Err(error) => Err(error.clone()),
            };
            match read {
                Ok(read) => services = Some(read),
                Err(error) => tracing::debug!("metrics: IPVS: {error}"),
            }
            match kernel.firewall.counters().await {
                Ok(read) => flows = Some(read),
                Err(error) => tracing::debug!("metrics: flows: {error}"),
            }
            if services.is_none() {
                // Read again from a new connection next time: this one may be broken.
                self.kernel = None;
            }
        }
        self.count_events();
        let vrrp = status::read(store.state_dir()).unwrap_or_else(|error| {
            tracing::debug!("metrics: {error}");
            None
        });
        let sample = Sample {
            servers: health.server_metrics().collect(),
            services: services.as_deref(),
            flows: flows.as_deref(),
            versions: Versions {
                saved: store.latest().ok(),
                running: store.running_version().ok().flatten(),
                pending: matches!(PendingApply::read(store.state_dir()), Ok(Some(_))),
                applies: self.applies,
                rollbacks: self.rollbacks,
            },
            vrrp: vrrp.as_ref(),
        };
        self.feed.publish(exposition::render(&sample));
    }

    fn count_events(&mut self) {
        match self.events.poll() {
            Ok(log) => {
                for event in log.events {
                    match event.kind {
                        EventKind::Apply => self.applies += 1,
                        EventKind::Rollback => self.rollbacks += 1,
                        _ => {}
                    }
                }
            }
            Err(error) => tracing::debug!("metrics: {error}"),
        }
    }
}
