//! History: every state change, event, alert and energy meter in SQLite
//! (`<data-dir>/hearth.db`), optionally mirrored to InfluxDB v2 (`influx`).
//!
//! How it fits together:
//! - [`feed`]: a task drains the entity store's subscription (and the API's
//!   event bus) into a bounded in-memory [`queue`]; nothing on the hot path
//!   touches the disk.
//! - [`writer`]: one thread owns the write connection and commits the
//!   queue in one transaction per `commit_interval_ms` ([`insert`] turns
//!   rows into SQL), compiles hourly [`statistics`] and [`purge`]s old rows.
//!   When the disk refuses a write (full, I/O error) the rows stay queued
//!   and are retried; the bridge keeps running,
//!   `binary_sensor.bridge_recorder_problem` says why and a critical alert
//!   is raised ([`problem`]).
//! - [`query`]: read connections (WAL lets them read while the writer
//!   writes) for `hearth/history`, `GET /api/history/period/…` ([`period`])
//!   and the plugins' `history` import (through the store's archive hook).
//!
//! The file layout is in [`schema`].
//!
//! # What a crash loses
//!
//! A state change is on disk at most `commit_interval_ms` (default 1 s)
//! **plus the duration of one commit** after the store announced it: the
//! writer takes the queue one interval after the previous commit started,
//! and a row that arrived just after that take waits for the next one. A
//! commit of a few thousand rows takes 10–100 ms on a 2-core machine
//! (`hearth_recorder_commit_duration_seconds` in `GET /metrics`). So a
//! `kill -9`, an OOM kill or a crash of the bridge loses at most the rows
//! of that window; what is committed survives (WAL, see [`schema`]), and
//! the file passes `PRAGMA integrity_check` (`tests/fault_storage.rs`
//! kills the real binary while it records ≈ 2 000 rows/s: the newest row
//! on disk was published ≈ 1 s before the kill, every older one is there).
//! This holds while the disk keeps up: rows that arrive faster than they
//! are written wait in the queue (bounded by `max_queue`) and the window
//! grows with it. A power loss may lose more: `synchronous = NORMAL` does
//! not fsync each commit ([`schema`]).

pub mod feed;
pub mod influx;
pub mod insert;
pub mod period;
pub mod problem;
pub mod purge;
pub mod query;
pub mod queue;
pub mod schema;
pub mod statistics;
pub mod writer;

use crate::entity::{Component, EntitySpec, EntityStore};
use queue::{Command, Row, Shared};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// File name of the database in the data directory.
pub const DB_FILE: &str = "hearth.db";

/// `[recorder]` in the bridge config.
///
/// ```toml
/// [recorder]
/// enabled = true               # false: no database, history from memory only
/// path = "/var/lib/hearth/hearth.db"   # default <data_dir>/hearth.db
/// commit_interval_ms = 1000    # ms between commits (HA's commit_interval: 1 s); 0 = at once
/// keep_days = 10               # days of states, events and alerts (HA's purge_keep_days)
/// statistics_keep_days = 365   # days of hourly statistics (mean/min/max, meters' state/sum)
/// purge_interval_s = 3600      # s between purges (clock time)
/// max_queue = 100000           # rows held in memory while the disk refuses writes
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecorderConfig {
    pub enabled: bool,
    /// Database file; default `<data_dir>/hearth.db`.
    pub path: Option<PathBuf>,
    /// ms between commits. Batching makes a commit cost the same for one
    /// row or thousands; 1 s is what HA does. A batch also commits early
    /// once [`queue::EARLY_COMMIT_ROWS`] rows wait, so bursts stay small.
    /// A crash loses at most this plus one commit (see "What a crash
    /// loses" in the module's documentation).
    pub commit_interval_ms: u64,
    /// Days of states, events and alerts kept. The newest state of each
    /// entity is kept whatever its age, so history at any start time still
    /// knows what the entity was.
    pub keep_days: u32,
    /// Days of hourly statistics kept.
    pub statistics_keep_days: u32,
    /// s (on the bridge's clock) between purges and statistics runs.
    pub purge_interval_s: u64,
    /// State rows and events held in memory while the database refuses
    /// writes. Past it, new state rows and events are dropped: counted, logged
    /// once per outage, shown on the problem entity (`dropped_rows`) and
    /// recorded as a `recorder_rows_dropped` event once writes succeed again
    /// (back-pressure would only move the pile into the store's unbounded
    /// subscriber queue). Registry changes and alerts are never dropped.
    pub max_queue: usize,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            enabled: true,
            path: None,
            commit_interval_ms: 1000,
            keep_days: 10,
            statistics_keep_days: 365,
            purge_interval_s: 3600,
            max_queue: 100_000,
        }
    }
}

impl RecorderConfig {
    /// Checks the keys; the error names the key and what was expected.
    pub fn check(&self) -> Result<(), RecorderError> {
        let bad = |key: &str, expected: &str, got: String| {
            Err(RecorderError::Config(format!(
                "[recorder] {key} = {got}: expected {expected}"
            )))
        };
        if self.commit_interval_ms > 60_000 {
            return bad(
                "commit_interval_ms",
                "0 to 60000 (ms)",
                self.commit_interval_ms.to_string(),
            );
        }
        if self.keep_days == 0 {
            return bad(
                "keep_days",
                "at least 1 (days; hourly statistics are compiled from the kept states)",
                "0".into(),
            );
        }
        if self.statistics_keep_days == 0 {
            return bad("statistics_keep_days", "at least 1 (days)", "0".into());
        }
        if self.purge_interval_s == 0 {
            return bad("purge_interval_s", "at least 1 (s)", "0".into());
        }
        if self.max_queue == 0 {
            return bad("max_queue", "at least 1 (rows)", "0".into());
        }
        Ok(())
    }

    /// The database file for a bridge whose data directory is `data_dir`.
    pub fn db_path(&self, data_dir: &Path) -> PathBuf {
        self.path.clone().unwrap_or_else(|| data_dir.join(DB_FILE))
    }
}

/// Recorder errors; each names the database file.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum RecorderError {
    #[error("{0}")]
    Config(String),
    #[error("recorder database {path}: {message}")]
    Database { path: String, message: String },
    #[error("recorder database {0}: the recorder has stopped")]
    Stopped(String),
}

impl RecorderError {
    pub fn db(path: &Path, e: impl std::fmt::Display) -> Self {
        RecorderError::Database {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}

/// An alert as the recorder keeps it: the columns every alert has, and the
/// whole alert (whatever model the alerts module uses) as JSON in `data`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// ms since the Unix epoch.
    pub time_ms: i64,
    /// Who raised it: a plugin's name, `thermostat`, `anomaly-detector`.
    pub source: String,
    /// The alert's identity (its de-duplication key).
    pub key: String,
    /// `info` | `warning` | `critical` (free text; not checked here).
    pub severity: String,
    /// `raised` | `updated` | `cleared` (free text).
    pub status: String,
    pub message: String,
    pub entity_id: Option<String>,
    pub data: Value,
}

/// Counters of a running recorder.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecorderStats {
    /// Rows (states, events, alerts) in committed transactions.
    pub committed_rows: u64,
    pub commits: u64,
    /// Rows waiting in memory, including a batch being written.
    pub queued: usize,
    /// Rows dropped because the queue was full (`max_queue`).
    pub dropped_rows: u64,
    /// Rows SQLite refused on their own (never expected; logged each).
    pub rejected_rows: u64,
    /// The write error while the database refuses writes.
    pub failing: Option<String>,
}

/// One commit: rows written and wall time of the transaction (µs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommitSample {
    pub rows: usize,
    pub micros: u64,
}

/// The running recorder.
pub struct Recorder {
    shared: Arc<Shared>,
    reader: Arc<query::Reader>,
    path: PathBuf,
    feed: feed::FeedHandle,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Entity the recorder reports write failures on, on the bridge device.
pub const PROBLEM_KEY: &str = "recorder_problem";

impl Recorder {
    /// Opens (or creates) the database at `path`, starts the writer thread
    /// and the task that feeds it from `store`. Needs a tokio runtime.
    /// A database that cannot be opened or is of a newer schema is an error
    /// naming the file; write failures later are not (they are retried).
    pub fn start(
        config: &RecorderConfig,
        path: PathBuf,
        store: Arc<EntityStore>,
    ) -> Result<Arc<Recorder>, RecorderError> {
        config.check()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| RecorderError::db(&path, e))?;
        }
        let conn = schema::open_writer(&path)?;
        let reader = Arc::new(query::Reader::new(path.clone()));
        let problem = register_problem_entity(&store, &path);
        let shared = Arc::new(Shared::new(
            config.max_queue,
            store.clock(),
            config.commit_interval_ms == 0,
        ));
        let writer = writer::spawn(
            conn,
            writer::WriterOptions {
                path: path.clone(),
                commit_interval: Duration::from_millis(config.commit_interval_ms),
                keep_days: config.keep_days,
                statistics_keep_days: config.statistics_keep_days,
                purge_interval_ms: config.purge_interval_s.saturating_mul(1000) as i64,
            },
            shared.clone(),
            store.clone(),
            problem,
        )
        .map_err(|e| RecorderError::db(&path, format!("starting the writer thread: {e}")))?;
        let feed = feed::spawn(store.clone(), shared.clone());
        store.attach_archive(reader.clone());
        tracing::info!(
            "recorder: {} (commit every {} ms, states kept {} days, statistics {} days)",
            path.display(),
            config.commit_interval_ms,
            config.keep_days,
            config.statistics_keep_days
        );
        Ok(Arc::new(Recorder {
            shared,
            reader,
            path,
            feed,
            writer: Mutex::new(Some(writer)),
        }))
    }

    /// The recorder a bridge runs with `config`, or `None` when
    /// `[recorder] enabled = false`.
    pub fn for_bridge(
        config: &RecorderConfig,
        data_dir: &Path,
        store: &Arc<EntityStore>,
    ) -> Result<Option<Arc<Recorder>>, RecorderError> {
        if !config.enabled {
            tracing::info!("recorder disabled: history comes from memory only");
            return Ok(None);
        }
        Recorder::start(config, config.db_path(data_dir), store.clone()).map(Some)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read access to the history.
    pub fn reader(&self) -> &Arc<query::Reader> {
        &self.reader
    }

    /// Records an event of the bridge's own (origin `LOCAL`), now.
    pub fn record_event(&self, event_type: &str, data: Value) {
        self.shared.push_one(Row::Event(queue::EventRow {
            event_type: event_type.into(),
            data,
            origin: "LOCAL",
            time_ms: self.reader_clock_now(),
            context_id: None,
        }));
    }

    /// Records an alert (never dropped, even when the queue is full).
    pub fn record_alert(&self, alert: AlertRecord) {
        self.shared.push_one(Row::Alert(alert));
    }

    /// Queues a billing increment, if any, with the outlet's counter value
    /// it counts up to; both commit in one transaction (never dropped, even
    /// when the queue is full).
    pub fn record_usage(
        &self,
        ledger: Option<crate::usage::ledger::LedgerRow>,
        baseline: crate::usage::baseline::Baseline,
    ) {
        self.shared.push_one(Row::Usage { ledger, baseline });
    }

    /// Records the events fired through the API (`fire_event`, origin
    /// `REMOTE`), until the bus closes.
    pub fn watch_bus(&self, bus: &crate::api::events::EventBus) {
        feed::watch_bus(bus.subscribe(), self.shared.clone());
    }

    /// Commits everything the store announced before this call. An error
    /// if the database refuses the write (the rows stay queued).
    pub async fn flush(&self) -> Result<(), RecorderError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.feed.flush(tx, &self.shared);
        rx.await
            .unwrap_or_else(|_| Err(RecorderError::Stopped(self.path.display().to_string())))
    }

    /// Compiles due hourly statistics and purges old rows now (instead of
    /// at the next `purge_interval_s`).
    pub async fn maintain(&self) -> Result<purge::Maintenance, RecorderError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared.command(Command::Maintain(tx));
        rx.await
            .unwrap_or_else(|_| Err(RecorderError::Stopped(self.path.display().to_string())))
    }

    pub fn stats(&self) -> RecorderStats {
        self.shared.stats()
    }

    /// Raises write failures as a critical alert on `hub` (source
    /// `bridge`, key `recorder_problem`) from now on, the current one
    /// included ([`problem`]).
    pub fn attach_alerts(&self, hub: Arc<crate::alerts::AlertHub>) {
        self.shared.problem_alert.attach(hub);
    }

    /// The latest commits (at most 100 000), oldest first.
    pub fn commit_samples(&self) -> Vec<CommitSample> {
        self.shared.commit_samples()
    }

    /// Calls `f` after every batch commit, on the writer thread (keep it
    /// quick: `GET /metrics` observes a histogram). One observer.
    pub fn observe_commits(&self, f: impl Fn(&CommitSample) + Send + Sync + 'static) {
        self.shared.observe_commits(Box::new(f));
    }

    /// Test hook: caps the database at `pages` pages (`PRAGMA
    /// max_page_count` on the writer's connection; SQLite then answers
    /// SQLITE_FULL exactly as for a full disk), or lifts the cap (`None`).
    /// Returns the page count now in effect.
    #[doc(hidden)]
    pub async fn limit_pages(&self, pages: Option<u64>) -> Result<u64, RecorderError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.shared.command(Command::LimitPages(pages, tx));
        rx.await
            .unwrap_or_else(|_| Err(RecorderError::Stopped(self.path.display().to_string())))
    }

    /// Writes what is queued and stops. Rows the database still refuses
    /// are lost then (logged with their count).
    pub async fn close(&self) {
        self.feed.stop(&self.shared).await;
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    fn reader_clock_now(&self) -> i64 {
        self.shared.now_ms()
    }
}

/// `binary_sensor.bridge_recorder_problem` on the bridge device, when the
/// store has one (a standalone store, as in benches, gets none).
fn register_problem_entity(store: &EntityStore, path: &Path) -> Option<String> {
    use crate::discovery::payload::BRIDGE_DEVICE;
    store.device(BRIDGE_DEVICE)?;
    let spec = EntitySpec::new(BRIDGE_DEVICE, PROBLEM_KEY, Component::BinarySensor)
        .named("Recorder problem")
        .class("problem")
        .diagnostic();
    let id = spec.entity_id.clone();
    store.upsert_entity(spec).ok()?;
    let mut attrs = serde_json::Map::new();
    attrs.insert("path".into(), path.display().to_string().into());
    let _ = store.set_state(&id, "off", attrs);
    Some(id)
}
