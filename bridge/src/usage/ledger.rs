//! The billing ledger: table `usage_ledger` in the recorder's database,
//! one row per user × local hour × tariff period with the Wh used and the
//! € they cost. Rows are queued like the recorder's other rows (never
//! dropped, written at shutdown) and added to on conflict, so any range can
//! be re-billed from it.

use rusqlite::{Connection, Transaction, params};

/// Created with the recorder's schema (idempotent: older files get it too).
pub const CREATE_TABLE: &str = "
CREATE TABLE IF NOT EXISTS usage_ledger (
    user TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    date TEXT NOT NULL,
    period TEXT NOT NULL,
    wh REAL NOT NULL,
    eur REAL NOT NULL,
    PRIMARY KEY (user, hour_ms, period)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_usage_ledger_date ON usage_ledger(date);
";

/// An increment of a user's use.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRow {
    /// A user id, or [`super::NOBODY`] for an outlet nobody held.
    pub user: String,
    /// Start of the local hour (ms since the epoch).
    pub hour_ms: i64,
    /// The local date of that hour, `YYYY-MM-DD`.
    pub date: String,
    /// `HP` or `HC`.
    pub period: String,
    pub wh: f64,
    pub eur: f64,
}

/// Adds a row (in the writer's transaction).
pub fn insert(tx: &Transaction<'_>, row: &LedgerRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO usage_ledger (user, hour_ms, date, period, wh, eur) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user, hour_ms, period) DO UPDATE SET wh = wh + excluded.wh, eur = eur + excluded.eur",
    )?
    .execute(params![row.user, row.hour_ms, row.date, row.period, row.wh, row.eur])?;
    Ok(())
}

/// Whether the file has a ledger (a database from before usage metering,
/// or of a bridge that never ran it, has none).
pub fn exists(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'usage_ledger'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n > 0)
}

/// (Wh, €) of `user` in hours starting at or after `from_ms`.
pub fn totals_since(conn: &Connection, user: &str, from_ms: i64) -> rusqlite::Result<(f64, f64)> {
    conn.query_row(
        "SELECT coalesce(sum(wh), 0), coalesce(sum(eur), 0) FROM usage_ledger WHERE user = ?1 AND hour_ms >= ?2",
        params![user, from_ms],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Rows of hours starting in `[from_ms, to_ms)`, by hour, user and period.
pub fn per_hour(conn: &Connection, from_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<LedgerRow>> {
    let mut stmt = conn.prepare(
        "SELECT user, hour_ms, date, period, wh, eur FROM usage_ledger
         WHERE hour_ms >= ?1 AND hour_ms < ?2 ORDER BY hour_ms, user, period",
    )?;
    let rows = stmt.query_map(params![from_ms, to_ms], |r| {
        Ok(LedgerRow {
            user: r.get(0)?,
            hour_ms: r.get(1)?,
            date: r.get(2)?,
            period: r.get(3)?,
            wh: r.get(4)?,
            eur: r.get(5)?,
        })
    })?;
    rows.collect()
}

/// A user's use on one local date in one tariff period.
#[derive(Debug, Clone, PartialEq)]
pub struct DayRow {
    pub user: String,
    /// `YYYY-MM-DD`, local.
    pub date: String,
    /// `HP` or `HC`.
    pub period: String,
    pub wh: f64,
    pub eur: f64,
}

/// Rows with local dates in `from..=to` (`YYYY-MM-DD`), summed per user,
/// date and tariff period.
pub fn per_day(conn: &Connection, from: &str, to: &str) -> rusqlite::Result<Vec<DayRow>> {
    let mut stmt = conn.prepare(
        "SELECT user, date, period, sum(wh), sum(eur) FROM usage_ledger
         WHERE date >= ?1 AND date <= ?2 GROUP BY user, date, period ORDER BY user, date, period",
    )?;
    let rows = stmt.query_map(params![from, to], |r| {
        Ok(DayRow {
            user: r.get(0)?,
            date: r.get(1)?,
            period: r.get(2)?,
            wh: r.get(3)?,
            eur: r.get(4)?,
        })
    })?;
    rows.collect()
}
