//! What the checks did, kept where the metrics and `status` can read it
//! without a message per check: each probe's task writes its results into its
//! own [`ProbeRecord`] (latency histogram, recent results), and every task
//! beats the checker's one [`Heartbeat`]. Readers take a copy under the lock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Results kept per probe for `status --server` and the console.
pub const HISTORY: usize = 20;

/// Upper bounds, in seconds, of the latency histogram's buckets: from a
/// loopback connect (well under a millisecond) to the longest timeout.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    /// When it ended, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    pub passed: bool,
    pub latency_us: u64,
    /// Why it failed; `None` when it passed.
    pub reason: Option<String>,
}

impl CheckResult {
    /// As people read it: `0.4 ms`, `1000.0 ms`, right-aligned.
    pub fn latency(&self) -> String {
        #[allow(clippy::cast_precision_loss)]
        let ms = self.latency_us as f64 / 1000.0;
        format!("{ms:>8.1} ms")
    }
}

/// A latency histogram as Prometheus reads it: counts per bucket of
/// [`LATENCY_BUCKETS`] (not cumulative) and one over the last, their sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latencies {
    pub buckets: [u64; LATENCY_BUCKETS.len() + 1],
    pub sum_seconds: f64,
    pub count: u64,
}

impl Latencies {
    fn observe(&mut self, latency: Duration) {
        let seconds = latency.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[bucket] += 1;
        self.sum_seconds += seconds;
        self.count += 1;
    }

    /// The cumulative counts, one per bucket bound and `+Inf` last.
    pub fn cumulative(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().scan(0, |total, count| {
            *total += count;
            Some(*total)
        })
    }
}

#[derive(Debug, Default)]
struct Recorded {
    latencies: Latencies,
    recent: VecDeque<CheckResult>,
}

/// One probe's results, shared by its task (the writer) and the readers.
#[derive(Debug, Default)]
pub struct ProbeRecord {
    recorded: Mutex<Recorded>,
}

impl ProbeRecord {
    /// Takes in one result that counted (a check that could not run is not one).
    pub fn note(&self, latency: Duration, failure: Option<String>) {
        let result = CheckResult {
            at_ms: unix_ms(SystemTime::now()),
            passed: failure.is_none(),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            reason: failure,
        };
        let mut recorded = self.lock();
        recorded.latencies.observe(latency);
        if recorded.recent.len() >= HISTORY {
            recorded.recent.pop_front();
        }
        recorded.recent.push_back(result);
    }

    pub fn latencies(&self) -> Latencies {
        self.lock().latencies.clone()
    }

    /// The last [`HISTORY`] results, oldest first.
    pub fn recent(&self) -> Vec<CheckResult> {
        self.lock().recent.iter().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        super::publish::lock(&self.recorded)
    }
}

/// Proof that the checks progress: how many completed and when the last did,
/// and how long a healthy checker may go without one.
#[derive(Debug)]
pub struct Heartbeat {
    epoch: Instant,
    completed: AtomicU64,
    /// Milliseconds from `epoch` to the last completion, or to the moment
    /// checks became due when none has completed since.
    last_ms: AtomicU64,
    /// How long without a completion means stalled; 0 when nothing is checked.
    allowed_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            completed: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
            allowed_ms: AtomicU64::new(0),
        }
    }
}

/// The heartbeat as one read sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pulse {
    pub completed: u64,
    /// Since the last completion (or since checks became due).
    pub quiet: Duration,
    /// Checks are due and none completed for longer than allowed.
    pub stalled: bool,
}

impl Heartbeat {
    /// A check completed.
    pub fn beat(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.last_ms.store(self.since_epoch_ms(), Ordering::Relaxed);
    }

    /// Checks are due from now, the shortest every `shortest`: a checker that
    /// completes none for two of them (each at least its timeout) is stalled.
    /// `None`: nothing is checked, nothing can stall.
    pub fn expect(&self, shortest: Option<Duration>) {
        let allowed = shortest.map_or(0, |every| (2 * every).as_millis().max(1));
        self.last_ms.store(self.since_epoch_ms(), Ordering::Relaxed);
        self.allowed_ms.store(
            u64::try_from(allowed).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn pulse(&self) -> Pulse {
        let quiet_ms = self
            .since_epoch_ms()
            .saturating_sub(self.last_ms.load(Ordering::Relaxed));
        let allowed = self.allowed_ms.load(Ordering::Relaxed);
        Pulse {
            completed: self.completed.load(Ordering::Relaxed),
            quiet: Duration::from_millis(quiet_ms),
            stalled: allowed > 0 && quiet_ms > allowed,
        }
    }

    fn since_epoch_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_fall_in_the_first_bucket_that_holds_them_and_add_up() {
        let record = ProbeRecord::default();
        record.note(Duration::from_micros(300), None);
        record.note(Duration::from_millis(3), Some("refused".into()));
        record.note(Duration::from_secs(4), Some("timed out".into()));
        let latencies = record.latencies();
        let cumulative: Vec<u64> = latencies.cumulative().collect();
        assert_eq!(cumulative, [1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3]);
        assert_eq!(latencies.count, 3);
        assert!((latencies.sum_seconds - 4.0033).abs() < 1e-9);
    }

    #[test]
    fn the_history_keeps_the_newest_results_in_order() {
        let record = ProbeRecord::default();
        for index in 0..HISTORY + 5 {
            let failure = (index % 2 == 1).then(|| format!("failure {index}"));
            record.note(Duration::from_millis(1), failure);
        }
        let recent = record.recent();
        assert_eq!(recent.len(), HISTORY);
        assert_eq!(recent[0].reason.as_deref(), Some("failure 5"));
        assert!(recent[1].passed);
        assert!(
            recent[HISTORY - 1].passed,
            "the newest, number {}",
            HISTORY + 4
        );
        assert_eq!(
            recent[HISTORY - 2].reason.as_deref(),
            Some(format!("failure {}", HISTORY + 3).as_str())
        );
    }

    #[test]
    fn a_heartbeat_stalls_only_while_checks_are_due() {
        let heartbeat = Heartbeat::default();
        heartbeat.expect(None);
        std::thread::sleep(Duration::from_millis(5));
        assert!(!heartbeat.pulse().stalled, "nothing is checked");
        heartbeat.expect(Some(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(10));
        let pulse = heartbeat.pulse();
        assert!(pulse.stalled, "{pulse:?}");
        heartbeat.beat();
        let pulse = heartbeat.pulse();
        assert!(!pulse.stalled, "{pulse:?}");
        assert_eq!(pulse.completed, 1);
    }
}
