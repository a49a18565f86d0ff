//! The energy ledger: its own small SQLite file, `<data-dir>/energy.db`
//! (so it works with the recorder disabled and touches none of the
//! recorder's tables), in the shape of [`crate::usage::ledger`]:
//!
//! - `energy_ledger(quantity, hour_ms, date, period, wh, eur)`: one row per
//!   quantity (`grid_import`, `grid_export`, `solar`, `device:<entity>`)
//!   × local hour × tariff period, added to on conflict;
//! - `energy_baseline(entity_id, wh, updated_ms)`: each meter's reading
//!   (Wh) the ledger has counted up to, written in the same transaction
//!   as the increments, so after a restart each counter continues exactly
//!   where the ledger stopped: energy used while the bridge was down is
//!   counted once, at the first reading after start;
//! - `energy_tariff(id = 0, price, period, updated_ms)`: the last tariff
//!   seen, so that this energy is priced at it when the tariff entity has
//!   no price yet after a start.
//!
//! Rows are written in batches (every half second and at shutdown); a
//! crash loses at most the last batch *and* its baselines together, so
//! that energy is counted again from the older baseline, not lost.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;

pub const FILE: &str = "energy.db";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS energy_ledger (
    quantity TEXT NOT NULL,
    hour_ms INTEGER NOT NULL,
    date TEXT NOT NULL,
    period TEXT NOT NULL,
    wh REAL NOT NULL,
    eur REAL NOT NULL,
    PRIMARY KEY (quantity, hour_ms, period)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_energy_ledger_date ON energy_ledger(date);
CREATE TABLE IF NOT EXISTS energy_tariff (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    price REAL NOT NULL,
    period TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS energy_baseline (
    entity_id TEXT PRIMARY KEY NOT NULL,
    wh REAL NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// An increment of one quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub quantity: String,
    /// Start of the local hour (ms since the epoch).
    pub hour_ms: i64,
    /// Local date of that hour, `YYYY-MM-DD`.
    pub date: String,
    pub period: String,
    pub wh: f64,
    pub eur: f64,
}

/// A meter's reading the ledger counted up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub entity_id: String,
    pub wh: f64,
    pub updated_ms: i64,
}

pub struct Ledger {
    conn: Connection,
}

impl Ledger {
    /// Opens (creating) the ledger file.
    pub fn open(path: &Path) -> rusqlite::Result<Ledger> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Ledger { conn })
    }

    /// Opens an existing ledger file for reading only (`hearth/energy/summary`
    /// reads it while the energy task writes; WAL lets both run).
    pub fn open_read_only(path: &Path) -> rusqlite::Result<Ledger> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(Ledger { conn })
    }

    /// Increments and baselines (and the last tariff seen), in one
    /// transaction.
    pub fn write(
        &mut self,
        rows: &[Row],
        baselines: &[Baseline],
        tariff: Option<(f64, &str, i64)>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut add = tx.prepare_cached(
                "INSERT INTO energy_ledger (quantity, hour_ms, date, period, wh, eur) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (quantity, hour_ms, period) DO UPDATE SET wh = wh + excluded.wh, eur = eur + excluded.eur",
            )?;
            for r in rows {
                add.execute(params![
                    r.quantity, r.hour_ms, r.date, r.period, r.wh, r.eur
                ])?;
            }
            let mut base = tx.prepare_cached(
                "INSERT INTO energy_baseline (entity_id, wh, updated_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (entity_id) DO UPDATE SET wh = excluded.wh, updated_ms = excluded.updated_ms",
            )?;
            for b in baselines {
                base.execute(params![b.entity_id, b.wh, b.updated_ms])?;
            }
            if let Some((price, period, ms)) = tariff {
                tx.prepare_cached(
                    "INSERT INTO energy_tariff (id, price, period, updated_ms) VALUES (0, ?1, ?2, ?3)
                     ON CONFLICT (id) DO UPDATE SET price = excluded.price, period = excluded.period,
                     updated_ms = excluded.updated_ms",
                )?
                .execute(params![price, period, ms])?;
            }
        }
        tx.commit()
    }

    /// The last tariff written: (€/kWh, period).
    pub fn last_tariff(&self) -> rusqlite::Result<Option<(f64, String)>> {
        self.conn
            .query_row(
                "SELECT price, period FROM energy_tariff WHERE id = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
    }

    /// Every meter's baseline (entity id → Wh).
    pub fn baselines(&self) -> rusqlite::Result<HashMap<String, f64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT entity_id, wh FROM energy_baseline")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect()
    }

    /// (quantity, period, Wh, €) summed over hours starting at or after
    /// `from_ms` and before `to_ms`.
    pub fn totals(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Vec<(String, String, f64, f64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT quantity, period, sum(wh), sum(eur) FROM energy_ledger
             WHERE hour_ms >= ?1 AND hour_ms < ?2 GROUP BY quantity, period ORDER BY quantity, period",
        )?;
        let rows = stmt.query_map(params![from_ms, to_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect()
    }

    /// Rows of hours starting in `[from_ms, to_ms)`, by hour, quantity and period.
    pub fn hourly(&self, from_ms: i64, to_ms: i64) -> rusqlite::Result<Vec<Row>> {
        let mut stmt = self.conn.prepare(
            "SELECT quantity, hour_ms, date, period, wh, eur FROM energy_ledger
             WHERE hour_ms >= ?1 AND hour_ms < ?2 ORDER BY hour_ms, quantity, period",
        )?;
        let rows = stmt.query_map(params![from_ms, to_ms], |r| {
            Ok(Row {
                quantity: r.get(0)?,
                hour_ms: r.get(1)?,
                date: r.get(2)?,
                period: r.get(3)?,
                wh: r.get(4)?,
                eur: r.get(5)?,
            })
        })?;
        rows.collect()
    }

    /// Wh of `quantity` on the local date `date` (`YYYY-MM-DD`).
    pub fn day_wh(&self, quantity: &str, date: &str) -> rusqlite::Result<f64> {
        self.conn
            .query_row(
                "SELECT sum(wh) FROM energy_ledger WHERE quantity = ?1 AND date = ?2",
                params![quantity, date],
                |r| r.get::<_, Option<f64>>(0),
            )
            .optional()
            .map(|v| v.flatten().unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_add_up_and_baselines_replace() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(&dir.path().join(FILE)).unwrap();
        let row = |q: &str, hour_ms, period: &str, wh, eur| Row {
            quantity: q.into(),
            hour_ms,
            date: "2026-12-07".into(),
            period: period.into(),
            wh,
            eur,
        };
        let b = |wh| Baseline {
            entity_id: "sensor.grid_import_energy".into(),
            wh,
            updated_ms: 1,
        };
        l.write(
            &[
                row("grid_import", 0, "HC", 100.0, 0.02),
                row("grid_import", 0, "HC", 50.0, 0.01),
            ],
            &[b(150.0)],
            None,
        )
        .unwrap();
        assert_eq!(l.last_tariff().unwrap(), None);
        l.write(
            &[row("grid_import", 3_600_000, "HP", 10.0, 0.003)],
            &[b(160.0)],
            Some((0.3, "HP", 5)),
        )
        .unwrap();
        drop(l);
        let l = Ledger::open(&dir.path().join(FILE)).unwrap();
        assert_eq!(l.baselines().unwrap()["sensor.grid_import_energy"], 160.0);
        assert_eq!(l.last_tariff().unwrap(), Some((0.3, "HP".to_string())));
        let t = l.totals(0, i64::MAX).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!((t[0].1.as_str(), t[0].2), ("HC", 150.0));
        assert!((t[0].3 - 0.03).abs() < 1e-12);
        assert_eq!(l.totals(3_600_000, i64::MAX).unwrap().len(), 1);
        assert_eq!(l.day_wh("grid_import", "2026-12-07").unwrap(), 160.0);
        assert_eq!(l.day_wh("solar", "2026-12-07").unwrap(), 0.0);
    }
}
