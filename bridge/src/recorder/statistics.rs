//! Hourly statistics (HA's long-term statistics shape), compiled from the
//! states before they are purged:
//! - numeric entities (state_class `measurement`, or none): time-weighted
//!   `mean`, `min`, `max` of the values in force during the hour (a value
//!   counts for as long as it held; `unavailable` and other non-numbers
//!   count for nothing);
//! - energy meters and other totals (state_class `total` /
//!   `total_increasing`): `state` (the reading at the end of the hour) and
//!   `sum` (the growth since the recorder first saw the meter). For
//!   `total_increasing` a reading lower than the one before is a meter
//!   reset: the new reading counts as growth from zero, as HA does.

use rusqlite::{Connection, OptionalExtension, params};
use std::time::Duration;

pub const HOUR_MS: i64 = 3_600_000;

/// Hours compiled per maintenance run at most, so catching up after a long
/// stop does not hold the writer for long (the rest follows next loop).
pub const MAX_HOURS_PER_RUN: usize = 48;

const META_UNTIL: &str = "statistics_until_ms";

pub fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// ms (clock time) an hour waits after its end before it is compiled:
/// rows of its last moments may still be queued.
pub fn grace_ms(commit_interval: Duration) -> i64 {
    2 * commit_interval.as_millis() as i64 + 30_000
}

/// When the hour running at `now_ms` can be compiled.
pub fn next_due(now_ms: i64, commit_interval: Duration) -> i64 {
    floor_hour(now_ms) + HOUR_MS + grace_ms(commit_interval)
}

/// Time-weighted mean, min and max over `[start, end)`: `carried` is the
/// value in force at `start` (the last state before it), `rows` the
/// (time, value) changes inside, in order; `None` values are gaps. `None`
/// when no number held for any time.
pub fn hour_stats(
    carried: Option<f64>,
    rows: &[(i64, Option<f64>)],
    start: i64,
    end: i64,
) -> Option<(f64, f64, f64)> {
    let (mut acc, mut dur) = (0.0, 0i64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut cur = carried;
    let mut t = start;
    let mut hold = |v: Option<f64>, from: i64, to: i64| {
        if let Some(v) = v
            && to > from
        {
            acc += v * (to - from) as f64;
            dur += to - from;
            min = min.min(v);
            max = max.max(v);
        }
    };
    for &(ts, v) in rows {
        let ts = ts.clamp(start, end);
        hold(cur, t, ts);
        cur = v;
        t = ts;
    }
    hold(cur, t, end);
    (dur > 0).then(|| (acc / dur as f64, min, max))
}

/// Growth of a meter over `values` starting from `baseline` (the reading
/// before), and the last reading.
pub fn meter_growth(baseline: Option<f64>, values: &[f64], increasing: bool) -> (f64, Option<f64>) {
    let mut prev = baseline;
    let mut growth = 0.0;
    for &v in values {
        if let Some(p) = prev {
            growth += if increasing && v < p { v } else { v - p };
        }
        prev = Some(v);
    }
    (growth, prev)
}

fn meta_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row(
        "SELECT value FROM recorder_meta WHERE key = ?1",
        [key],
        |r| r.get(0),
    )
    .optional()
}

/// Compiles every complete hour not compiled yet (at most
/// [`MAX_HOURS_PER_RUN`], none older than `keep_ms`). Returns (hours,
/// statistics rows written).
pub fn compile(
    conn: &Connection,
    now_ms: i64,
    commit_interval: Duration,
    keep_ms: i64,
) -> rusqlite::Result<(usize, usize)> {
    let limit = floor_hour(now_ms - grace_ms(commit_interval));
    let from = match meta_get(conn, META_UNTIL)? {
        Some(until) => until,
        None => {
            let oldest: Option<i64> =
                conn.query_row("SELECT min(last_updated_ms) FROM states", [], |r| r.get(0))?;
            match oldest {
                Some(t) => floor_hour(t),
                None => return Ok((0, 0)),
            }
        }
    };
    let mut hour = from.max(floor_hour(now_ms - keep_ms));
    let entities: Vec<(i64, Option<String>)> = conn
        .prepare("SELECT metadata_id, state_class FROM entities")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let (mut hours, mut rows) = (0, 0);
    while hour + HOUR_MS <= limit && hours < MAX_HOURS_PER_RUN {
        let tx = conn.unchecked_transaction()?;
        for (mid, class) in &entities {
            rows += compile_one(&tx, *mid, class.as_deref(), hour)?;
        }
        tx.execute(
            "INSERT INTO recorder_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![META_UNTIL, hour + HOUR_MS],
        )?;
        tx.commit()?;
        hour += HOUR_MS;
        hours += 1;
    }
    Ok((hours, rows))
}

fn compile_one(
    conn: &Connection,
    mid: i64,
    class: Option<&str>,
    hour: i64,
) -> rusqlite::Result<usize> {
    let end = hour + HOUR_MS;
    // The value in force at the start: the last row before it (a
    // non-number or a removal holds no value).
    let carried: Option<f64> = conn
        .prepare_cached(
            "SELECT value FROM states WHERE metadata_id = ?1 AND last_updated_ms < ?2
             ORDER BY last_updated_ms DESC, state_id DESC LIMIT 1",
        )?
        .query_row(params![mid, hour], |r| r.get::<_, Option<f64>>(0))
        .optional()?
        .flatten();
    let inside: Vec<(i64, Option<f64>)> = conn
        .prepare_cached(
            "SELECT last_updated_ms, value FROM states
             WHERE metadata_id = ?1 AND last_updated_ms >= ?2 AND last_updated_ms < ?3
             ORDER BY last_updated_ms, state_id",
        )?
        .query_map(params![mid, hour, end], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    if carried.is_none() && inside.iter().all(|(_, v)| v.is_none()) {
        return Ok(0);
    }
    let insert = "INSERT INTO statistics (metadata_id, start_ms, mean, min, max, state, sum)
                  VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                  ON CONFLICT(metadata_id, start_ms) DO UPDATE SET mean = excluded.mean,
                  min = excluded.min, max = excluded.max, state = excluded.state, sum = excluded.sum";
    match class {
        Some(c @ ("total" | "total_increasing")) => {
            let prev: Option<(Option<f64>, Option<f64>)> = conn
                .prepare_cached(
                    "SELECT state, sum FROM statistics WHERE metadata_id = ?1 AND start_ms < ?2
                     ORDER BY start_ms DESC LIMIT 1",
                )?
                .query_row(params![mid, hour], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (prev_state, prev_sum) = prev.unwrap_or((None, None));
            let baseline = carried.or(prev_state);
            let values: Vec<f64> = inside.iter().filter_map(|(_, v)| *v).collect();
            let (growth, last) = meter_growth(baseline, &values, c == "total_increasing");
            let Some(last) = last else { return Ok(0) };
            let sum = prev_sum.unwrap_or(0.0) + growth;
            conn.prepare_cached(insert)?.execute(params![
                mid,
                hour,
                None::<f64>,
                None::<f64>,
                None::<f64>,
                last,
                sum
            ])?;
            Ok(1)
        }
        _ => match hour_stats(carried, &inside, hour, end) {
            Some((mean, min, max)) => {
                conn.prepare_cached(insert)?.execute(params![
                    mid,
                    hour,
                    mean,
                    min,
                    max,
                    None::<f64>,
                    None::<f64>
                ])?;
                Ok(1)
            }
            None => Ok(0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_is_weighted_by_how_long_each_value_held() {
        // 10 for the first quarter (carried in), 20 for half, gap, 40 last 15 min.
        let q = HOUR_MS / 4;
        let rows = [(q, Some(20.0)), (3 * q, None), (3 * q + 1, Some(40.0))];
        let (mean, min, max) = hour_stats(Some(10.0), &rows, 0, HOUR_MS).unwrap();
        let expected =
            (10.0 * q as f64 + 20.0 * (2 * q) as f64 + 40.0 * (q - 1) as f64) / (4 * q - 1) as f64;
        assert!((mean - expected).abs() < 1e-9, "{mean} vs {expected}");
        assert_eq!((min, max), (10.0, 40.0));
        assert_eq!(hour_stats(None, &[(5, None)], 0, HOUR_MS), None);
        // A value replaced at the very start counts for nothing.
        assert_eq!(
            hour_stats(Some(99.0), &[(0, Some(1.0))], 0, HOUR_MS),
            Some((1.0, 1.0, 1.0))
        );
    }

    #[test]
    fn meters_grow_and_resets_count_from_zero() {
        assert_eq!(
            meter_growth(Some(100.0), &[101.0, 103.5], true),
            (3.5, Some(103.5))
        );
        // total_increasing: 103 → 2 is a reset; growth 2 then 1.
        assert_eq!(
            meter_growth(Some(103.0), &[2.0, 3.0], true),
            (3.0, Some(3.0))
        );
        // total: a decrease is negative growth.
        assert_eq!(meter_growth(Some(10.0), &[7.0], false), (-3.0, Some(7.0)));
        assert_eq!(meter_growth(None, &[5.0, 6.0], true), (1.0, Some(6.0)));
    }
}
