//! Each outlet's last counted counter value: table `usage_baseline` in the
//! recorder's database (outlet energy entity id → Wh). It is written in the
//! same row, hence the same transaction, as the ledger increment it ends
//! at, so after a restart the counter continues exactly where the ledger
//! stopped: state rows may be dropped while the database is down and the
//! store may hold a new reading before the usage task starts, so neither
//! the recorded history nor the store says what was already billed.

use rusqlite::{Connection, Transaction, params};
use std::collections::HashMap;

/// Created with the recorder's schema (idempotent: older files get it too).
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS usage_baseline (
    entity_id TEXT PRIMARY KEY NOT NULL,
    wh REAL NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// An outlet's counter value up to which the ledger has counted.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The outlet's energy entity (`sensor.*`, Wh, `total_increasing`).
    pub entity_id: String,
    /// Counter value, Wh.
    pub wh: f64,
    /// When the reading was taken (ms since the epoch).
    pub updated_ms: i64,
}

/// Sets an outlet's baseline (in the writer's transaction).
pub fn upsert(tx: &Transaction<'_>, b: &Baseline) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_baseline (entity_id, wh, updated_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (entity_id) DO UPDATE SET wh = excluded.wh, updated_ms = excluded.updated_ms",
    )?
    .execute(params![b.entity_id, b.wh, b.updated_ms])?;
    Ok(())
}

/// All baselines (entity id → Wh); empty for a file without the table.
pub fn load(conn: &Connection) -> rusqlite::Result<HashMap<String, f64>> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'usage_baseline'",
        [],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(HashMap::new());
    }
    let mut stmt = conn.prepare("SELECT entity_id, wh FROM usage_baseline")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}
