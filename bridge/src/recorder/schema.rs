//! The database file: connection settings and schema (version 1).
//!
//! Connections use WAL with `synchronous = NORMAL`: a commit appends to the
//! write-ahead log without waiting for fsync, so a crash of the process
//! (even SIGKILL mid-transaction) loses nothing committed, and a power loss
//! may lose the last commits but never corrupts the file (WAL frames are
//! checksummed; a torn tail is ignored on recovery). `FULL` would fsync
//! every commit — a cost per commit the recorder does not need for history.
//! WAL also lets readers run while the writer writes.
//!
//! Tables (times are ms since the Unix epoch, UTC):
//! - `schema_version(version, applied_ms)`
//! - `entities(metadata_id, entity_id UNIQUE, state_class, unit)`: one row per
//!   entity ever recorded (HA's `states_meta` + the statistics metadata).
//! - `attributes(attributes_id, hash, shared_attrs)`: distinct attribute
//!   sets as JSON, shared by states (HA's `state_attributes`): a sensor's
//!   attributes rarely change, so each is stored once.
//! - `states(state_id, metadata_id, state, value, attributes_id,
//!   last_changed_ms, last_updated_ms, context_id, context_user_id,
//!   context_parent_id)`: every state change; `value` is the state as a
//!   number when it is one; `state` NULL marks the entity's removal.
//! - `events(event_id, event_type, data, origin, time_fired_ms, context_id)`
//! - `alerts(alert_id, time_ms, source, key, severity, status, message,
//!   entity_id, data)`
//! - `statistics(metadata_id, start_ms, mean, min, max, state, sum)`: one
//!   row per entity and hour (HA's long-term statistics).
//! - `recorder_meta(key, value)`: bookkeeping (`statistics_until_ms`).
//! - `usage_ledger(user, hour_ms, date, period, wh, eur)`: billing
//!   ([`crate::usage::ledger`]).
//! - `usage_baseline(entity_id, wh, updated_ms)`: each outlet's counter
//!   value the ledger counted up to ([`crate::usage::baseline`]).

use super::RecorderError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE entities (
    metadata_id INTEGER PRIMARY KEY,
    entity_id TEXT NOT NULL UNIQUE,
    state_class TEXT,
    unit TEXT
);
CREATE TABLE attributes (
    attributes_id INTEGER PRIMARY KEY,
    hash INTEGER NOT NULL,
    shared_attrs TEXT NOT NULL
);
CREATE INDEX ix_attributes_hash ON attributes(hash);
CREATE TABLE states (
    state_id INTEGER PRIMARY KEY,
    metadata_id INTEGER NOT NULL,
    state TEXT,
    value REAL,
    attributes_id INTEGER,
    last_changed_ms INTEGER NOT NULL,
    last_updated_ms INTEGER NOT NULL,
    context_id TEXT,
    context_user_id TEXT,
    context_parent_id TEXT
);
CREATE INDEX ix_states_entity_time ON states(metadata_id, last_updated_ms);
CREATE INDEX ix_states_time ON states(last_updated_ms);
CREATE INDEX ix_states_attributes ON states(attributes_id);
CREATE TABLE events (
    event_id INTEGER PRIMARY KEY,
    event_type TEXT NOT NULL,
    data TEXT NOT NULL,
    origin TEXT NOT NULL,
    time_fired_ms INTEGER NOT NULL,
    context_id TEXT
);
CREATE INDEX ix_events_type_time ON events(event_type, time_fired_ms);
CREATE INDEX ix_events_time ON events(time_fired_ms);
CREATE TABLE alerts (
    alert_id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    entity_id TEXT,
    data TEXT NOT NULL
);
CREATE INDEX ix_alerts_time ON alerts(time_ms);
CREATE TABLE statistics (
    metadata_id INTEGER NOT NULL,
    start_ms INTEGER NOT NULL,
    mean REAL,
    min REAL,
    max REAL,
    state REAL,
    sum REAL,
    PRIMARY KEY (metadata_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX ix_statistics_start ON statistics(start_ms);
CREATE TABLE recorder_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
";

/// How long a connection waits for a lock (a checkpoint, another process
/// holding the file) before reporting busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> RecorderError + '_ {
    move |e| RecorderError::db(path, e)
}

/// The writer's connection: WAL, `synchronous = NORMAL`, schema created or
/// checked.
pub fn open_writer(path: &Path) -> Result<Connection, RecorderError> {
    let e = db_err(path);
    let conn = Connection::open(path).map_err(&e)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&e)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |r| r.get(0))
        .map_err(&e)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RecorderError::db(
            path,
            format!(
                "could not switch to WAL (journal_mode is {mode}); is the file on a network filesystem?"
            ),
        ));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&e)?;
    conn.set_prepared_statement_cache_capacity(32);
    migrate(&conn, path)?;
    // Outside the versioned schema: files of any version 1 get it.
    conn.execute_batch(crate::usage::ledger::CREATE_TABLE)
        .map_err(&e)?;
    conn.execute_batch(crate::usage::baseline::CREATE_TABLE)
        .map_err(&e)?;
    Ok(conn)
}

/// A read connection (opened on demand; the writer created the schema).
pub fn open_reader(path: &Path) -> Result<Connection, RecorderError> {
    let e = db_err(path);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(&e)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&e)?;
    // Readers never write; `query_only` makes sure.
    conn.pragma_update(None, "query_only", true).map_err(&e)?;
    Ok(conn)
}

fn migrate(conn: &Connection, path: &Path) -> Result<(), RecorderError> {
    let e = db_err(path);
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)",
    )
    .map_err(&e)?;
    let version: Option<i64> = conn
        .query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))
        .map_err(&e)?;
    match version {
        Some(v) if v == SCHEMA_VERSION => Ok(()),
        Some(v) if v > SCHEMA_VERSION => Err(RecorderError::db(
            path,
            format!(
                "schema version {v} is newer than this Hearth supports ({SCHEMA_VERSION}); use a newer Hearth or another [recorder] path"
            ),
        )),
        Some(v) => Err(RecorderError::db(
            path,
            format!("unknown schema version {v} (expected {SCHEMA_VERSION})"),
        )),
        None => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let sql = format!(
                "BEGIN; {SCHEMA_V1} INSERT INTO schema_version VALUES ({SCHEMA_VERSION}, {now}); COMMIT;"
            );
            conn.execute_batch(&sql).map_err(|err| {
                let _ = conn.execute_batch("ROLLBACK");
                e(err)
            })
        }
    }
}

/// `PRAGMA integrity_check`'s answer (`ok` when the file is sound).
pub fn integrity_check(conn: &Connection) -> rusqlite::Result<String> {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
}
