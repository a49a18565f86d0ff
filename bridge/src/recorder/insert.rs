//! Rows into SQL: one transaction per batch, with the entity and
//! attribute ids cached between batches (forgotten after a rollback or a
//! purge, which may have removed the rows they point to).

use super::AlertRecord;
use super::queue::{EventRow, Row, StateRow};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction, params};
use std::collections::HashMap;

/// Cached attribute sets before the cache starts over (bounds its memory).
const MAX_CACHED_ATTRIBUTES: usize = 20_000;

#[derive(Default)]
pub struct Inserter {
    entity_ids: HashMap<String, i64>,
    attributes: HashMap<String, i64>,
}

/// Whether an error is about the database as a whole (full disk, I/O,
/// locks, a damaged file): the batch is kept and retried. Other errors are
/// about one row and would fail forever.
pub fn is_transient(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(
            ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::ReadOnly
                | ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::OutOfMemory
                | ErrorCode::PermissionDenied
                | ErrorCode::DatabaseCorrupt
                | ErrorCode::NotADatabase
                | ErrorCode::FileLockingProtocolFailed
        )
    )
}

/// FNV-1a, 64 bits: stable across builds (std's hasher is not), so the
/// hashes stored in `attributes.hash` stay valid after an upgrade.
pub fn fnv1a(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

impl Inserter {
    /// Drops cached ids (after a rollback or a purge).
    pub fn forget_ids(&mut self) {
        self.entity_ids.clear();
        self.attributes.clear();
    }

    /// Writes `rows` in one transaction; rolls back on the first error.
    pub fn write_batch(&mut self, conn: &mut Connection, rows: &[Row]) -> rusqlite::Result<()> {
        let result = (|| {
            let tx = conn.transaction()?;
            for row in rows {
                self.write(&tx, row)?;
            }
            tx.commit()
        })();
        if result.is_err() {
            // The transaction rolled back (dropping it does); ids it
            // created are gone.
            self.forget_ids();
        }
        result
    }

    pub fn write(&mut self, tx: &Transaction<'_>, row: &Row) -> rusqlite::Result<()> {
        match row {
            Row::State(s) => self.state(tx, s),
            Row::Entity {
                entity_id,
                state_class,
                unit,
            } => {
                tx.prepare_cached(
                    "INSERT INTO entities (entity_id, state_class, unit) VALUES (?1, ?2, ?3)
                     ON CONFLICT(entity_id) DO UPDATE SET state_class = excluded.state_class, unit = excluded.unit",
                )?
                .execute(params![entity_id, state_class, unit])?;
                Ok(())
            }
            Row::Event(e) => event(tx, e),
            Row::Alert(a) => alert(tx, a),
            Row::Usage { ledger, baseline } => {
                if let Some(l) = ledger {
                    crate::usage::ledger::insert(tx, l)?;
                }
                crate::usage::baseline::upsert(tx, baseline)
            }
        }
    }

    fn metadata_id(&mut self, tx: &Transaction<'_>, entity_id: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.entity_ids.get(entity_id) {
            return Ok(*id);
        }
        let found: Option<i64> = tx
            .prepare_cached("SELECT metadata_id FROM entities WHERE entity_id = ?1")?
            .query_row([entity_id], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO entities (entity_id) VALUES (?1)")?
                    .execute([entity_id])?;
                tx.last_insert_rowid()
            }
        };
        self.entity_ids.insert(entity_id.to_string(), id);
        Ok(id)
    }

    fn attributes_id(&mut self, tx: &Transaction<'_>, json: String) -> rusqlite::Result<i64> {
        if let Some(id) = self.attributes.get(&json) {
            return Ok(*id);
        }
        let hash = fnv1a(&json);
        let found: Option<i64> = tx
            .prepare_cached(
                "SELECT attributes_id FROM attributes WHERE hash = ?1 AND shared_attrs = ?2",
            )?
            .query_row(params![hash, json], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                tx.prepare_cached("INSERT INTO attributes (hash, shared_attrs) VALUES (?1, ?2)")?
                    .execute(params![hash, json])?;
                tx.last_insert_rowid()
            }
        };
        if self.attributes.len() >= MAX_CACHED_ATTRIBUTES {
            self.attributes.clear();
        }
        self.attributes.insert(json, id);
        Ok(id)
    }

    fn state(&mut self, tx: &Transaction<'_>, row: &StateRow) -> rusqlite::Result<()> {
        let mid = self.metadata_id(tx, &row.entity_id)?;
        let Some(s) = &row.state else {
            tx.prepare_cached(
                "INSERT INTO states (metadata_id, last_changed_ms, last_updated_ms) VALUES (?1, ?2, ?2)",
            )?
            .execute(params![mid, row.time_ms])?;
            return Ok(());
        };
        if row.initial {
            // A state the store already had when the recorder started: it
            // may be recorded already (a recorder restarted on the same store).
            let seen: Option<i64> = tx
                .prepare_cached(
                    "SELECT 1 FROM states WHERE metadata_id = ?1 AND last_updated_ms = ?2 AND state = ?3",
                )?
                .query_row(params![mid, s.last_updated, s.state], |r| r.get(0))
                .optional()?;
            if seen.is_some() {
                return Ok(());
            }
        }
        let json = serde_json::Value::Object(s.attributes.clone()).to_string();
        let aid = self.attributes_id(tx, json)?;
        let value = s.number();
        tx.prepare_cached(
            "INSERT INTO states (metadata_id, state, value, attributes_id, last_changed_ms, last_updated_ms,
                                 context_id, context_user_id, context_parent_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            mid,
            s.state,
            value,
            aid,
            s.last_changed,
            s.last_updated,
            s.context.id,
            s.context.user_id,
            s.context.parent_id
        ])?;
        Ok(())
    }
}

fn event(tx: &Transaction<'_>, e: &EventRow) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (event_type, data, origin, time_fired_ms, context_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        e.event_type,
        e.data.to_string(),
        e.origin,
        e.time_ms,
        e.context_id
    ])?;
    Ok(())
}

fn alert(tx: &Transaction<'_>, a: &AlertRecord) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO alerts (time_ms, source, key, severity, status, message, entity_id, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        a.time_ms,
        a.source,
        a.key,
        a.severity,
        a.status,
        a.message,
        a.entity_id,
        a.data.to_string()
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (isthe.com/chongo/tech/comp/fnv).
        assert_eq!(fnv1a("") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a("a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a("foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
