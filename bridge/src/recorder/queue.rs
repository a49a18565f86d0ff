//! The in-memory queue between the producers (the feed task, alert and
//! event callers) and the writer thread, with its bound (`max_queue`) and
//! the writer's commands.

use super::purge::Maintenance;
use super::{AlertRecord, CommitSample, RecorderError, RecorderStats};
use crate::clock::Clock;
use crate::entity::State;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A batch commits before its interval ends once this many rows wait:
/// bursts become several mid-sized transactions instead of one huge one,
/// and the queue stays far below `max_queue` while the disk keeps up.
pub const EARLY_COMMIT_ROWS: usize = 10_000;

/// Commit samples kept for [`super::Recorder::commit_samples`].
const MAX_COMMIT_SAMPLES: usize = 100_000;

/// Something to write. Rows are complete in themselves (states carry the
/// attributes HA shows, presented when queued), so a batch can be retried
/// as it is.
pub enum Row {
    State(StateRow),
    /// An entity's statistics metadata (on registration or change).
    Entity {
        entity_id: String,
        state_class: Option<String>,
        unit: Option<String>,
    },
    Event(EventRow),
    Alert(AlertRecord),
    /// A billing increment ([`crate::usage::ledger`]), if any, and the
    /// outlet's counter value it counts up to ([`crate::usage::baseline`]),
    /// in one row so that they commit together; never dropped.
    Usage {
        ledger: Option<crate::usage::ledger::LedgerRow>,
        baseline: crate::usage::baseline::Baseline,
    },
}

impl Row {
    /// State rows and events may be dropped when the queue is full; entity
    /// metadata (which statistics need) and alerts may not.
    fn droppable(&self) -> bool {
        matches!(self, Row::State(_) | Row::Event(_))
    }
}

pub struct StateRow {
    pub entity_id: String,
    /// The new state with the attributes HA shows; `None`: the entity was removed.
    pub state: Option<State>,
    /// ms since the Unix epoch (of the removal; a state has its own times).
    pub time_ms: i64,
    /// A state the store had when the recorder subscribed: skipped if that
    /// very row is recorded already.
    pub initial: bool,
}

pub struct EventRow {
    pub event_type: String,
    pub data: Value,
    /// HA's origin: `LOCAL` (the bridge itself) or `REMOTE` (fired through the API).
    pub origin: &'static str,
    /// ms since the Unix epoch.
    pub time_ms: i64,
    pub context_id: Option<String>,
}

pub type Reply<T> = tokio::sync::oneshot::Sender<Result<T, RecorderError>>;

pub enum Command {
    /// Commit now; answer once the first `upto` rows ever pushed are committed.
    Flush {
        upto: u64,
        reply: Reply<()>,
    },
    Maintain(Reply<Maintenance>),
    LimitPages(Option<u64>, Reply<u64>),
}

#[derive(Default)]
pub struct Queue {
    pub rows: VecDeque<Row>,
    /// Rows the writer has taken and is writing.
    pub in_flight: usize,
    /// Rows accepted since start.
    pub pushed: u64,
    pub commands: Vec<Command>,
    pub stop: bool,
    /// Rows dropped since the last successful commit, and when (ms).
    pub outage_dropped: u64,
    pub outage_first_ms: i64,
    pub outage_last_ms: i64,
}

pub struct Shared {
    queue: Mutex<Queue>,
    pub wake: Condvar,
    max_queue: usize,
    /// Wake the writer on every push (`commit_interval_ms = 0`).
    immediate: bool,
    clock: Clock,
    stats: Mutex<RecorderStats>,
    samples: Mutex<VecDeque<CommitSample>>,
    /// Told of every commit (the metrics' commit time histogram).
    commit_observer: std::sync::OnceLock<CommitObserver>,
    /// Write failures as an alert ([`super::problem`]).
    pub problem_alert: super::problem::ProblemAlert,
}

/// What [`Shared::observe_commits`] takes.
pub type CommitObserver = Box<dyn Fn(&CommitSample) + Send + Sync>;

impl Shared {
    pub fn new(max_queue: usize, clock: Clock, immediate: bool) -> Shared {
        Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            max_queue,
            immediate,
            clock,
            stats: Mutex::new(RecorderStats::default()),
            samples: Mutex::new(VecDeque::new()),
            commit_observer: std::sync::OnceLock::new(),
            problem_alert: Default::default(),
        }
    }

    pub fn max_queue(&self) -> usize {
        self.max_queue
    }

    /// Calls `f` after every batch commit, on the writer thread (so `f`
    /// must be quick); one observer, the first set.
    pub fn observe_commits(&self, f: CommitObserver) {
        let _ = self.commit_observer.set(f);
    }

    pub fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panicking producer must not stop the recording.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn push_one(&self, row: Row) {
        self.push(std::iter::once(row));
    }

    /// Queues rows in order; drops droppable ones past `max_queue`.
    pub fn push(&self, rows: impl IntoIterator<Item = Row>) {
        let mut q = self.lock();
        if q.stop {
            let n = rows.into_iter().count();
            if n > 0 {
                tracing::warn!("recorder: stopped; {n} rows not recorded");
            }
            return;
        }
        let mut newly_dropped = 0u64;
        for row in rows {
            if row.droppable() && q.rows.len() + q.in_flight >= self.max_queue {
                newly_dropped += 1;
                continue;
            }
            q.rows.push_back(row);
            q.pushed += 1;
        }
        if newly_dropped > 0 {
            let now = self.now_ms();
            if q.outage_dropped == 0 {
                q.outage_first_ms = now;
                let failing = self.stats_mut().failing.clone().unwrap_or_default();
                tracing::error!(
                    "recorder: queue full ({} rows) while the database refuses writes ({failing}): dropping new state rows and events until it accepts them",
                    self.max_queue
                );
            }
            q.outage_dropped += newly_dropped;
            q.outage_last_ms = now;
            self.stats_mut().dropped_rows += newly_dropped;
        }
        if self.immediate || q.rows.len() >= EARLY_COMMIT_ROWS {
            self.wake.notify_one();
        }
    }

    pub fn command(&self, c: Command) {
        self.lock().commands.push(c);
        self.wake.notify_one();
    }

    /// Asks the writer to finish.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    pub fn stats_mut(&self) -> MutexGuard<'_, RecorderStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> RecorderStats {
        let mut s = self.stats_mut().clone();
        let q = self.lock();
        s.queued = q.rows.len() + q.in_flight;
        s
    }

    pub fn sample(&self, s: CommitSample) {
        if let Some(f) = self.commit_observer.get() {
            f(&s);
        }
        let mut v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() == MAX_COMMIT_SAMPLES {
            v.pop_front();
        }
        v.push_back(s);
    }

    pub fn commit_samples(&self) -> Vec<CommitSample> {
        let v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        v.iter().copied().collect()
    }
}
