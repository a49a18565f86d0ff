//! Retention: states, events and alerts older than `keep_days`, hourly
//! statistics older than `statistics_keep_days`, and attribute sets no
//! state uses any more. Deletes go in chunks, each its own transaction, so
//! readers and the next commit never wait long. Freed pages are reused by
//! later rows (the file does not shrink; no VACUUM).

use rusqlite::Connection;

/// Rows deleted per transaction.
const CHUNK: usize = 10_000;

/// What a maintenance run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Maintenance {
    pub hours_compiled: usize,
    pub statistics_rows: usize,
    pub states_purged: usize,
    pub events_purged: usize,
    pub alerts_purged: usize,
    pub attributes_purged: usize,
    pub statistics_purged: usize,
}

/// Deletes in chunks until nothing matches; `select` picks the ids of
/// at most `LIMIT ?2` rows older than `?1`.
fn chunked(
    conn: &Connection,
    table: &str,
    id: &str,
    select: &str,
    before: i64,
) -> rusqlite::Result<usize> {
    let sql = format!("DELETE FROM {table} WHERE {id} IN ({select})");
    let mut total = 0;
    loop {
        let n = conn.execute(&sql, rusqlite::params![before, CHUNK as i64])?;
        total += n;
        if n < CHUNK {
            return Ok(total);
        }
    }
}

/// Purges rows older than `before_ms` (states, events, alerts) and
/// statistics older than `statistics_before_ms`. The newest state of each
/// entity stays whatever its age: it is what the entity was at any later
/// start time.
pub fn purge(
    conn: &Connection,
    before_ms: i64,
    statistics_before_ms: i64,
) -> rusqlite::Result<Maintenance> {
    let states_purged = chunked(
        conn,
        "states",
        "state_id",
        "SELECT state_id FROM states WHERE last_updated_ms < ?1 AND state_id NOT IN (
             SELECT (SELECT s.state_id FROM states s WHERE s.metadata_id = e.metadata_id
                     ORDER BY s.last_updated_ms DESC, s.state_id DESC LIMIT 1)
             FROM entities e) LIMIT ?2",
        before_ms,
    )?;
    let events_purged = chunked(
        conn,
        "events",
        "event_id",
        "SELECT event_id FROM events WHERE time_fired_ms < ?1 LIMIT ?2",
        before_ms,
    )?;
    let alerts_purged = chunked(
        conn,
        "alerts",
        "alert_id",
        "SELECT alert_id FROM alerts WHERE time_ms < ?1 LIMIT ?2",
        before_ms,
    )?;
    let mut attributes_purged = 0;
    if states_purged > 0 {
        attributes_purged = conn.execute(
            "DELETE FROM attributes WHERE attributes_id NOT IN
                 (SELECT attributes_id FROM states WHERE attributes_id IS NOT NULL)",
            [],
        )?;
    }
    let statistics_purged = conn.execute(
        "DELETE FROM statistics WHERE start_ms < ?1",
        [statistics_before_ms],
    )?;
    Ok(Maintenance {
        states_purged,
        events_purged,
        alerts_purged,
        attributes_purged,
        statistics_purged,
        ..Maintenance::default()
    })
}
