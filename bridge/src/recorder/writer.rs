//! The writer thread: owns the write connection, commits the queue once per
//! commit interval, keeps rows the database refuses and retries them, and
//! runs statistics and purges between commits.

use super::insert::{self, Inserter};
use super::purge::{self, Maintenance};
use super::queue::{Command, EARLY_COMMIT_ROWS, EventRow, Reply, Row, Shared};
use super::{CommitSample, RecorderError, statistics};
use crate::clock::iso8601;
use crate::entity::EntityStore;
use rusqlite::Connection;
use serde_json::{Map, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// First retry after a refused write; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle writer looks at the clock for due maintenance.
const IDLE_TICK: Duration = Duration::from_secs(1);
/// Rows per transaction at most: when rows arrive faster than they are
/// written, commits follow each other in batches of this size rather than
/// growing (a commit's latency stays bounded; larger batches gain little).
pub const MAX_BATCH: usize = 2 * EARLY_COMMIT_ROWS;
/// SQLite's largest `max_page_count`: "no cap".
const NO_PAGE_CAP: i64 = 4_294_967_294;

pub struct WriterOptions {
    pub path: PathBuf,
    pub commit_interval: Duration,
    pub keep_days: u32,
    pub statistics_keep_days: u32,
    /// ms of clock time between purges.
    pub purge_interval_ms: i64,
}

/// The database refuses writes since `since_ms`.
struct Failing {
    error: String,
    since_ms: i64,
    /// Dropped-row count last shown on the problem entity.
    shown_dropped: u64,
}

struct Writer {
    conn: Connection,
    opts: WriterOptions,
    shared: Arc<Shared>,
    store: Arc<EntityStore>,
    problem: Option<String>,
    inserter: Inserter,
    /// Rows pushed and settled (committed, or rejected on their own).
    settled: u64,
    flushes: Vec<(u64, Reply<()>)>,
    failing: Option<Failing>,
    backoff: Duration,
    next_attempt: Instant,
    last_commit: Instant,
    next_purge_ms: i64,
    /// Clock time (ms) after which the next hour can be compiled.
    next_statistics_ms: i64,
}

pub fn spawn(
    conn: Connection,
    opts: WriterOptions,
    shared: Arc<Shared>,
    store: Arc<EntityStore>,
    problem: Option<String>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let now = store.clock().now_ms();
    let w = Writer {
        conn,
        opts,
        shared,
        store,
        problem,
        inserter: Inserter::default(),
        settled: 0,
        flushes: Vec::new(),
        failing: None,
        backoff: FIRST_BACKOFF,
        next_attempt: Instant::now(),
        last_commit: Instant::now(),
        next_purge_ms: now,
        next_statistics_ms: now,
    };
    std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || w.run())
}

impl Writer {
    fn path(&self) -> String {
        self.opts.path.display().to_string()
    }

    fn run(mut self) {
        loop {
            let (batch, commands, stop) = self.wait();
            let mut force = false;
            let mut other = Vec::new();
            for c in commands {
                match c {
                    Command::Flush { upto, reply } => {
                        self.flushes.push((upto, reply));
                        force = true;
                    }
                    c => other.push(c),
                }
            }
            if !batch.is_empty() {
                self.commit(batch);
            } else if force {
                self.answer_flushes(None);
            }
            for c in other {
                self.command(c);
            }
            if stop {
                self.finish();
                return;
            }
            self.maintain_if_due();
        }
    }

    /// Blocks until a batch is due (interval passed, many rows, a
    /// command, stop) and takes it.
    fn wait(&mut self) -> (Vec<Row>, Vec<Command>, bool) {
        let shared = self.shared.clone();
        let mut q = shared.lock();
        let started = Instant::now();
        loop {
            if q.stop || !q.commands.is_empty() {
                break;
            }
            let now = Instant::now();
            if !q.rows.is_empty() {
                let due = if self.failing.is_some() {
                    self.next_attempt
                } else {
                    self.last_commit + self.opts.commit_interval
                };
                // Many rows waiting, or a flush waiting for the rest of
                // its rows (batches are capped): no need to wait.
                let early = self.failing.is_none()
                    && (q.rows.len() >= EARLY_COMMIT_ROWS || !self.flushes.is_empty());
                if now >= due || early {
                    break;
                }
                let timeout = (due - now).min(IDLE_TICK);
                q = shared
                    .wake
                    .wait_timeout(q, timeout)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            } else {
                if now >= started + IDLE_TICK {
                    // Idle: let the caller look at maintenance.
                    break;
                }
                q = shared
                    .wake
                    .wait_timeout(q, IDLE_TICK)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
        let commands = std::mem::take(&mut q.commands);
        let take = self.failing.is_none()
            || Instant::now() >= self.next_attempt
            || commands.iter().any(|c| matches!(c, Command::Flush { .. }))
            || q.stop;
        let n = if take { q.rows.len().min(MAX_BATCH) } else { 0 };
        let batch: Vec<Row> = q.rows.drain(..n).collect();
        q.in_flight = batch.len();
        (batch, commands, q.stop)
    }

    fn commit(&mut self, batch: Vec<Row>) {
        let started = Instant::now();
        self.last_commit = started;
        let result = self.inserter.write_batch(&mut self.conn, &batch);
        match result {
            Ok(()) => {
                let n = batch.len();
                self.settled += n as u64;
                let micros = started.elapsed().as_micros() as u64;
                self.shared.sample(CommitSample { rows: n, micros });
                {
                    let mut s = self.shared.stats_mut();
                    s.committed_rows += n as u64;
                    s.commits += 1;
                }
                self.shared.lock().in_flight = 0;
                self.recovered();
                self.answer_flushes(None);
            }
            Err(e) if insert::is_transient(&e) => {
                self.requeue(batch);
                self.refused(&e.to_string());
            }
            Err(e) => {
                tracing::warn!(
                    "recorder: {}: a batch of {} rows failed ({e}); writing its rows one by one",
                    self.path(),
                    batch.len()
                );
                self.commit_one_by_one(batch);
            }
        }
    }

    /// After a row-level error: each row in its own transaction; rows
    /// SQLite refuses on their own are counted and logged, a database-wide
    /// error puts the rest back.
    fn commit_one_by_one(&mut self, batch: Vec<Row>) {
        let mut rows = batch.into_iter();
        while let Some(row) = rows.next() {
            match self
                .inserter
                .write_batch(&mut self.conn, std::slice::from_ref(&row))
            {
                Ok(()) => {
                    self.settled += 1;
                    self.shared.stats_mut().committed_rows += 1;
                }
                Err(e) if insert::is_transient(&e) => {
                    let rest: Vec<Row> = std::iter::once(row).chain(rows).collect();
                    self.requeue(rest);
                    self.refused(&e.to_string());
                    return;
                }
                Err(e) => {
                    self.settled += 1;
                    self.shared.stats_mut().rejected_rows += 1;
                    tracing::error!(
                        "recorder: {}: SQLite refused a row ({}): {e}",
                        self.path(),
                        describe(&row)
                    );
                }
            }
            self.shared.lock().in_flight -= 1;
        }
        self.shared.stats_mut().commits += 1;
        self.recovered();
        self.answer_flushes(None);
    }

    /// Puts rows back at the head of the queue, in order.
    fn requeue(&self, rows: Vec<Row>) {
        let mut q = self.shared.lock();
        q.in_flight = 0;
        for r in rows.into_iter().rev() {
            q.rows.push_front(r);
        }
    }

    /// The database refused a write: log (once per error), raise the
    /// problem entity, answer waiting flushes, schedule a retry.
    fn refused(&mut self, error: &str) {
        let now = self.store.clock().now_ms();
        let queued = self.shared.stats().queued;
        let dropped = self.shared.stats().dropped_rows;
        let changed = self.failing.as_ref().is_none_or(|f| f.error != error);
        if changed {
            tracing::error!(
                "recorder: cannot write to {}: {error}; {queued} rows kept in memory (up to max_queue) and retried; the bridge keeps running",
                self.path()
            );
            self.backoff = FIRST_BACKOFF;
        } else {
            tracing::debug!("recorder: retry failed: {error}");
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
        let since_ms = self.failing.as_ref().map_or(now, |f| f.since_ms);
        let shown = self.failing.as_ref().map_or(u64::MAX, |f| f.shown_dropped);
        if changed || shown != dropped {
            self.show_problem(true, error, since_ms, dropped);
        }
        self.failing = Some(Failing {
            error: error.to_string(),
            since_ms,
            shown_dropped: dropped,
        });
        self.shared.stats_mut().failing = Some(error.to_string());
        self.next_attempt = Instant::now() + self.backoff;
        self.answer_flushes(Some(error));
    }

    /// A commit went through: clear the problem, record drops.
    fn recovered(&mut self) {
        let (dropped, first, last) = {
            let mut q = self.shared.lock();
            let d = (q.outage_dropped, q.outage_first_ms, q.outage_last_ms);
            q.outage_dropped = 0;
            d
        };
        if dropped > 0 {
            tracing::error!(
                "recorder: {dropped} state rows and events were dropped between {} and {} (queue full while {} refused writes)",
                iso8601(first),
                iso8601(last),
                self.path()
            );
            self.shared.push_one(Row::Event(EventRow {
                event_type: "recorder_rows_dropped".into(),
                data: json!({"count": dropped, "first": iso8601(first), "last": iso8601(last)}),
                origin: "LOCAL",
                time_ms: self.store.clock().now_ms(),
                context_id: None,
            }));
        }
        let Some(f) = self.failing.take() else {
            return;
        };
        self.shared.stats_mut().failing = None;
        self.backoff = FIRST_BACKOFF;
        tracing::info!(
            "recorder: writes to {} succeed again (refused since {}: {})",
            self.path(),
            iso8601(f.since_ms),
            f.error
        );
        let dropped = self.shared.stats().dropped_rows;
        self.show_problem(false, &f.error, f.since_ms, dropped);
    }

    fn show_problem(&self, on: bool, error: &str, since_ms: i64, dropped: u64) {
        self.alert_problem(on, error, dropped);
        let Some(id) = &self.problem else {
            return;
        };
        let mut attrs = Map::new();
        attrs.insert("path".into(), self.path().into());
        if on {
            attrs.insert("error".into(), error.into());
            attrs.insert("since".into(), iso8601(since_ms).into());
        } else {
            attrs.insert("last_error".into(), error.into());
        }
        attrs.insert("dropped_rows".into(), dropped.into());
        let _ = self
            .store
            .set_state(id, if on { "on" } else { "off" }, attrs);
    }

    /// Raises or clears the problem alert (with or without the entity).
    fn alert_problem(&self, on: bool, error: &str, dropped: u64) {
        let alert = &self.shared.problem_alert;
        if on {
            let queued = self.shared.stats().queued;
            alert.raise(
                &self.path(),
                error,
                queued,
                self.shared.max_queue(),
                dropped,
            );
        } else {
            alert.clear();
        }
    }

    /// Answers the flushes whose rows are all committed, or all of them
    /// with the write error.
    fn answer_flushes(&mut self, error: Option<&str>) {
        let settled = self.settled;
        let path = self.opts.path.clone();
        let flushes = std::mem::take(&mut self.flushes);
        for (upto, reply) in flushes {
            match error {
                Some(e) => {
                    let _ = reply.send(Err(RecorderError::db(&path, e)));
                }
                None if upto <= settled => {
                    let _ = reply.send(Ok(()));
                }
                None => self.flushes.push((upto, reply)),
            }
        }
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Flush { .. } => {}
            Command::Maintain(reply) => {
                let result = self.maintain(true);
                let _ = reply.send(result);
            }
            Command::LimitPages(pages, reply) => {
                let cap = pages.map_or(NO_PAGE_CAP, |p| p.min(NO_PAGE_CAP as u64) as i64);
                let r = self
                    .conn
                    .pragma_update_and_check(None, "max_page_count", cap, |r| r.get::<_, i64>(0))
                    .map(|n| n.max(0) as u64)
                    .map_err(|e| RecorderError::db(&self.opts.path, e));
                let _ = reply.send(r);
            }
        }
    }

    fn maintain_if_due(&mut self) {
        if self.failing.is_some() {
            return;
        }
        let now = self.store.clock().now_ms();
        if now < self.next_purge_ms && now < self.next_statistics_ms {
            return;
        }
        if let Err(e) = self.maintain(false) {
            tracing::warn!("recorder: maintenance: {e}; trying again later");
        }
    }

    /// Hourly statistics, then the purge when it is due (or `force`d).
    /// What is queued is committed first, so statistics see it.
    fn maintain(&mut self, force: bool) -> Result<Maintenance, RecorderError> {
        let now = self.store.clock().now_ms();
        loop {
            let batch = self.take_batch();
            if batch.is_empty() {
                break;
            }
            self.commit(batch);
            if self.failing.is_some() {
                break;
            }
        }
        let mut m = Maintenance::default();
        let keep_stats_ms = i64::from(self.opts.statistics_keep_days) * 86_400_000;
        let (hours, rows) =
            statistics::compile(&self.conn, now, self.opts.commit_interval, keep_stats_ms)
                .map_err(|e| RecorderError::db(&self.opts.path, e))?;
        m.hours_compiled = hours;
        m.statistics_rows = rows;
        self.next_statistics_ms = if hours >= statistics::MAX_HOURS_PER_RUN {
            now
        } else {
            statistics::next_due(now, self.opts.commit_interval)
        };
        if force || now >= self.next_purge_ms {
            let keep_ms = i64::from(self.opts.keep_days) * 86_400_000;
            let p = purge::purge(&self.conn, now - keep_ms, now - keep_stats_ms)
                .map_err(|e| RecorderError::db(&self.opts.path, e));
            // Purged attribute sets may be in the cache.
            self.inserter.forget_ids();
            let p = p?;
            m.states_purged = p.states_purged;
            m.events_purged = p.events_purged;
            m.alerts_purged = p.alerts_purged;
            m.attributes_purged = p.attributes_purged;
            m.statistics_purged = p.statistics_purged;
            self.next_purge_ms = now + self.opts.purge_interval_ms;
        }
        Ok(m)
    }

    /// Takes the next batch (up to [`MAX_BATCH`] rows).
    fn take_batch(&self) -> Vec<Row> {
        let mut q = self.shared.lock();
        let n = q.rows.len().min(MAX_BATCH);
        let b: Vec<Row> = q.rows.drain(..n).collect();
        q.in_flight = b.len();
        b
    }

    /// Stop: one last attempt at what is queued.
    fn finish(&mut self) {
        loop {
            let batch = self.take_batch();
            if batch.is_empty() {
                break;
            }
            self.commit(batch);
            if self.failing.is_some() {
                break;
            }
        }
        let lost = self.shared.stats().queued;
        if lost > 0 {
            tracing::error!(
                "recorder: stopping with {lost} rows {} still refuses; they are lost",
                self.path()
            );
        }
        let error = self.failing.as_ref().map(|f| f.error.clone());
        self.answer_flushes(Some(error.as_deref().unwrap_or("the recorder has stopped")));
    }
}

fn describe(row: &Row) -> String {
    match row {
        Row::State(s) => format!("state of {}", s.entity_id),
        Row::Entity { entity_id, .. } => format!("metadata of {entity_id}"),
        Row::Event(e) => format!("event {}", e.event_type),
        Row::Alert(a) => format!("alert {} from {}", a.key, a.source),
        Row::Usage { ledger, baseline } => match ledger {
            Some(u) => format!("usage of {} at {}", u.user, u.hour_ms),
            None => format!("usage baseline of {}", baseline.entity_id),
        },
    }
}
