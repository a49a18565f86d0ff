//! The sink's disk buffer: every line of line protocol is stored here
//! before any attempt to send it, and deleted only once the server has
//! answered 2xx for it.
//!
//! A SQLite file (`<data-dir>/influx-buffer.db`, WAL) with two tables:
//!
//! - `points(seq, line)`: the lines waiting, `seq` strictly increasing
//!   (`AUTOINCREMENT`, so a number is never reused even after the table
//!   empties: "delete through `seq`" can never hit a newer line). The
//!   sender takes the oldest lines by `seq`, so delivery is in order, and
//!   the order survives a restart.
//! - `rejected(id, at_ms, error, lines)`: batches the server refused as
//!   malformed (HTTP 400/413/422), kept for inspection with `sqlite3`
//!   instead of being retried forever or dropped silently; only the last
//!   [`KEEP_REJECTED`] batches are kept.
//!
//! The buffer is bounded: past `max_points` lines the *oldest* are
//! dropped (recent data is what a dashboard shows first), and the caller
//! is told how many so it can warn and count them. Lines of the batch
//! being sent are never dropped: they are about to be delivered, and
//! dropping them would count as lost points that were not.
//!
//! `synchronous = NORMAL`: a commit survives the bridge crashing or being
//! killed; only a power cut can lose the last commits (WAL's trade-off:
//! `FULL` would fsync on every append).

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// Rejected batches kept in the `rejected` table.
pub const KEEP_REJECTED: i64 = 100;

/// The file name under the data directory.
pub const FILE_NAME: &str = "influx-buffer.db";

/// Lines read for one POST, oldest first.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `seq` of the first and last line.
    pub first: i64,
    pub last: i64,
    /// Number of lines.
    pub count: usize,
    /// The lines joined by `\n` (the request body).
    pub body: String,
}

impl Batch {
    /// The first line, for error messages.
    pub fn first_line(&self) -> &str {
        self.body.lines().next().unwrap_or("")
    }
}

pub struct Buffer {
    conn: Connection,
    path: PathBuf,
    len: u64,
    max_points: u64,
    /// `seq` of the last line of the batch being sent, if any.
    in_flight: Option<i64>,
}

impl Buffer {
    /// Opens (or creates) the buffer file. Lines left by an earlier run stay
    /// and are sent first. If there are more than `max_points` (the limit
    /// was lowered), the oldest are dropped; the second value says how many.
    pub fn open(path: &Path, max_points: u64) -> anyhow::Result<(Buffer, u64)> {
        let ctx = || format!("InfluxDB disk buffer {}", path.display());
        let conn = Connection::open(path).with_context(ctx)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .with_context(ctx)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .with_context(ctx)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .with_context(ctx)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS points (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 line TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS rejected (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 at_ms INTEGER NOT NULL,
                 error TEXT NOT NULL,
                 lines TEXT NOT NULL);",
        )
        .with_context(|| format!("{}: expected a Hearth buffer (SQLite)", ctx()))?;
        let len: i64 = conn
            .query_row("SELECT count(*) FROM points", [], |r| r.get(0))
            .with_context(ctx)?;
        let mut buffer = Buffer {
            conn,
            path: path.to_path_buf(),
            len: len.max(0) as u64,
            max_points: max_points.max(1),
            in_flight: None,
        };
        let dropped = buffer.enforce_bound()?;
        Ok((buffer, dropped))
    }

    /// Lines waiting (including the batch being sent).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn err(&self, what: &str) -> String {
        format!("InfluxDB disk buffer {}: {what}", self.path.display())
    }

    /// Stores `lines` after every line already there, in one transaction.
    /// Returns how many of the oldest lines were dropped to stay within
    /// the bound.
    pub fn append(&mut self, lines: &[String]) -> anyhow::Result<u64> {
        if lines.is_empty() {
            return Ok(0);
        }
        let write = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut insert = tx.prepare_cached("INSERT INTO points (line) VALUES (?1)")?;
                for l in lines {
                    insert.execute([l])?;
                }
            }
            tx.commit()
        };
        write(&mut self.conn)
            .with_context(|| self.err(&format!("appending {} lines", lines.len())))?;
        self.len += lines.len() as u64;
        self.enforce_bound()
    }

    /// Drops the oldest lines not in flight until at most `max_points`
    /// remain (the batch in flight may keep it above by at most a batch).
    fn enforce_bound(&mut self) -> anyhow::Result<u64> {
        if self.len <= self.max_points {
            return Ok(0);
        }
        let excess = (self.len - self.max_points) as i64;
        let after = self.in_flight.unwrap_or(i64::MIN);
        let n = self
            .conn
            .execute(
                "DELETE FROM points WHERE seq IN
                     (SELECT seq FROM points WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
                params![after, excess],
            )
            .with_context(|| self.err("dropping the oldest lines"))? as u64;
        self.len -= n.min(self.len);
        Ok(n)
    }

    /// The oldest `max_lines` lines, marked in flight until
    /// [`Buffer::delivered`], [`Buffer::set_aside`] or [`Buffer::release`].
    pub fn oldest(&mut self, max_lines: usize) -> anyhow::Result<Option<Batch>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq, line FROM points ORDER BY seq LIMIT ?1")?;
        let mut rows = stmt.query([max_lines as i64])?;
        let mut batch: Option<Batch> = None;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let line: String = row.get(1)?;
            match &mut batch {
                None => {
                    batch = Some(Batch {
                        first: seq,
                        last: seq,
                        count: 1,
                        body: line,
                    })
                }
                Some(b) => {
                    b.last = seq;
                    b.count += 1;
                    b.body.push('\n');
                    b.body.push_str(&line);
                }
            }
        }
        drop(rows);
        drop(stmt);
        self.in_flight = batch.as_ref().map(|b| b.last);
        Ok(batch)
    }

    /// The server took `batch`: its lines go.
    pub fn delivered(&mut self, batch: &Batch) -> anyhow::Result<()> {
        let n = self
            .conn
            .execute(
                "DELETE FROM points WHERE seq BETWEEN ?1 AND ?2",
                params![batch.first, batch.last],
            )
            .with_context(|| self.err("deleting delivered lines"))? as u64;
        self.len -= n.min(self.len);
        self.in_flight = None;
        // Appends made while it was in flight may have been held above the
        // bound by it.
        self.enforce_bound()?;
        Ok(())
    }

    /// The server refused `batch` as malformed: it moves to `rejected` with
    /// the server's `error`, in one transaction.
    pub fn set_aside(&mut self, batch: &Batch, error: &str, now_ms: i64) -> anyhow::Result<()> {
        let move_aside = |conn: &mut Connection| -> rusqlite::Result<u64> {
            let tx = conn.transaction()?;
            let n = tx.execute(
                "DELETE FROM points WHERE seq BETWEEN ?1 AND ?2",
                params![batch.first, batch.last],
            )? as u64;
            tx.execute(
                "INSERT INTO rejected (at_ms, error, lines) VALUES (?1, ?2, ?3)",
                params![now_ms, error, batch.body],
            )?;
            tx.execute(
                "DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?1",
                [KEEP_REJECTED],
            )?;
            tx.commit()?;
            Ok(n)
        };
        let n = move_aside(&mut self.conn)
            .with_context(|| self.err("moving a rejected batch aside"))?;
        self.len -= n.min(self.len);
        self.in_flight = None;
        self.enforce_bound()?;
        Ok(())
    }

    /// The batch was not delivered and stays first in line.
    pub fn release(&mut self) {
        self.in_flight = None;
    }

    /// Rejected batches kept: (error, lines), oldest first.
    pub fn rejected(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT error, lines FROM rejected ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Every line waiting, oldest first (tests and diagnostics).
    pub fn lines(&self) -> anyhow::Result<Vec<String>> {
        let mut stmt = self.conn.prepare("SELECT line FROM points ORDER BY seq")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(rows)
    }

    /// The newest `seq` ever used (0 for a new file).
    pub fn last_seq(&self) -> anyhow::Result<i64> {
        let seq: Option<i64> = self
            .conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'points'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(seq.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(range: std::ops::Range<u32>) -> Vec<String> {
        range.map(|i| format!("m value={i} {i}")).collect()
    }

    #[test]
    fn batches_come_oldest_first_and_go_only_when_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (mut b, dropped) = Buffer::open(&path, 1000).unwrap();
        assert_eq!(dropped, 0);
        b.append(&lines(0..10)).unwrap();
        let first = b.oldest(4).unwrap().unwrap();
        assert_eq!(first.count, 4);
        assert_eq!(first.first_line(), "m value=0 0");
        // Not delivered: the same batch again.
        b.release();
        let again = b.oldest(4).unwrap().unwrap();
        assert_eq!((again.first, again.last), (first.first, first.last));
        b.delivered(&again).unwrap();
        assert_eq!(b.len(), 6);
        // A restart keeps the rest, in order.
        drop(b);
        let (b, _) = Buffer::open(&path, 1000).unwrap();
        assert_eq!(b.lines().unwrap(), lines(4..10));
    }

    #[test]
    fn full_buffers_drop_the_oldest_but_never_the_batch_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = Buffer::open(&dir.path().join(FILE_NAME), 5).unwrap();
        assert_eq!(b.append(&lines(0..3)).unwrap(), 0);
        assert_eq!(b.append(&lines(3..7)).unwrap(), 2);
        assert_eq!(b.lines().unwrap(), lines(2..7));
        let batch = b.oldest(2).unwrap().unwrap(); // lines 2 and 3
        // Full again: 4 and 5 go, the batch in flight stays.
        assert_eq!(b.append(&lines(7..9)).unwrap(), 2);
        assert_eq!(
            b.lines().unwrap(),
            [
                "m value=2 2",
                "m value=3 3",
                "m value=6 6",
                "m value=7 7",
                "m value=8 8"
            ]
        );
        b.delivered(&batch).unwrap();
        assert_eq!(b.lines().unwrap(), lines(6..9));
        assert_eq!(b.len(), 3);
    }

    #[test]
    fn sequence_numbers_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = Buffer::open(&dir.path().join(FILE_NAME), 100).unwrap();
        b.append(&lines(0..3)).unwrap();
        let batch = b.oldest(10).unwrap().unwrap();
        b.delivered(&batch).unwrap();
        assert!(b.is_empty());
        b.append(&lines(3..4)).unwrap();
        let next = b.oldest(10).unwrap().unwrap();
        assert!(next.first > batch.last, "{next:?} after {batch:?}");
        assert_eq!(b.last_seq().unwrap(), next.last);
    }

    #[test]
    fn rejected_batches_move_aside_and_only_the_last_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut b, _) = Buffer::open(&dir.path().join(FILE_NAME), 10_000).unwrap();
        b.append(&lines(0..(KEEP_REJECTED as u32 + 5))).unwrap();
        for i in 0..(KEEP_REJECTED + 3) {
            let batch = b.oldest(1).unwrap().unwrap();
            b.set_aside(&batch, &format!("bad {i}"), 0).unwrap();
        }
        assert_eq!(b.len(), 2);
        let rejected = b.rejected().unwrap();
        assert_eq!(rejected.len(), KEEP_REJECTED as usize);
        assert_eq!(
            rejected[0],
            ("bad 3".to_string(), "m value=3 3".to_string())
        );
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let e = format!("{:#}", Buffer::open(&path, 10).err().unwrap());
        assert!(e.contains(FILE_NAME), "{e}");
    }

    #[test]
    fn lowering_the_bound_drops_the_oldest_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let (mut b, _) = Buffer::open(&path, 100).unwrap();
        b.append(&lines(0..10)).unwrap();
        drop(b);
        let (b, dropped) = Buffer::open(&path, 4).unwrap();
        assert_eq!(dropped, 6);
        assert_eq!(b.lines().unwrap(), lines(6..10));
    }
}
