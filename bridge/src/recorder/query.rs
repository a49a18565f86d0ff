//! Reading history: a few pooled read connections (WAL lets them read
//! while the writer commits), used by the APIs and, through the store's
//! [`HistoryArchive`] hook, by the plugins' `history` import.

use super::RecorderError;
use super::schema;
use crate::entity::domain_of;
use crate::entity::samples;
use crate::entity::store::HistoryArchive;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Mutex;

/// Read connections kept open for reuse.
const POOL: usize = 4;

/// Most states one query returns; a wider range is an error asking for a
/// narrower one (instead of building an answer of unbounded size).
pub const MAX_STATES: usize = 1_000_000;

/// Most samples the plugins' `history` import gets from the database in
/// one call (the newest ones): the call runs inside a plugin's tick, and
/// 50 000 samples are ≈ 0.8 MB of guest memory.
pub const MAX_PLUGIN_SAMPLES: usize = 50_000;

/// HA's `SIGNIFICANT_DOMAINS`: every attribute change of these is
/// significant, not only a change of the state string.
pub const SIGNIFICANT_DOMAINS: &[&str] = &[
    "climate",
    "device_tracker",
    "humidifier",
    "thermostat",
    "water_heater",
];

/// HA's `NEED_ATTRIBUTE_DOMAINS`: their states keep attributes even in
/// minimal or attribute-less answers.
pub const NEED_ATTRIBUTE_DOMAINS: &[&str] = &[
    "climate",
    "humidifier",
    "input_datetime",
    "thermostat",
    "water_heater",
];

/// A recorded state.
#[derive(Debug, Clone, PartialEq)]
pub struct StateRecord {
    pub entity_id: String,
    pub state: String,
    pub attributes: Map<String, Value>,
    /// ms since the Unix epoch.
    pub last_changed: i64,
    pub last_updated: i64,
}

/// Which states a history query returns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatesQuery {
    /// Also the state in force at the start (its times moved to the start,
    /// as HA does).
    pub include_start_state: bool,
    /// Only changes of the state string (all changes for
    /// [`SIGNIFICANT_DOMAINS`]).
    pub significant_only: bool,
    /// Attributes left out (`{}`), except for [`NEED_ATTRIBUTE_DOMAINS`].
    pub no_attributes: bool,
}

/// An hour of statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsRow {
    /// ms since the Unix epoch: the hour's start.
    pub start_ms: i64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub state: Option<f64>,
    pub sum: Option<f64>,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    pub event_type: String,
    pub data: Value,
    pub origin: String,
    pub time_ms: i64,
}

pub struct Reader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
}

fn parse_attributes(text: Option<String>) -> Map<String, Value> {
    // A damaged attribute row shows as no attributes rather than an error.
    match text.and_then(|t| serde_json::from_str(&t).ok()) {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

impl Reader {
    pub fn new(path: PathBuf) -> Reader {
        Reader {
            path,
            pool: Mutex::new(Vec::new()),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RecorderError> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => schema::open_reader(&self.path)?,
        };
        let result = f(&conn).map_err(|e| RecorderError::db(&self.path, e));
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < POOL {
            pool.push(conn);
        }
        result
    }

    fn metadata_id(conn: &Connection, entity_id: &str) -> rusqlite::Result<Option<i64>> {
        conn.prepare_cached("SELECT metadata_id FROM entities WHERE entity_id = ?1")?
            .query_row([entity_id], |r| r.get(0))
            .optional()
    }

    /// Whether the database has ever recorded `entity_id`.
    pub fn knows(&self, entity_id: &str) -> Result<bool, RecorderError> {
        self.with(|c| Ok(Self::metadata_id(c, entity_id)?.is_some()))
    }

    /// States of `entity_id` with `start_ms <= last_updated < end_ms`,
    /// oldest first.
    pub fn states(
        &self,
        entity_id: &str,
        start_ms: i64,
        end_ms: i64,
        q: StatesQuery,
    ) -> Result<Vec<StateRecord>, RecorderError> {
        let domain = domain_of(entity_id);
        let significant_only = q.significant_only && !SIGNIFICANT_DOMAINS.contains(&domain);
        let no_attributes = q.no_attributes && !NEED_ATTRIBUTE_DOMAINS.contains(&domain);
        let result = self.with(|c| {
            let Some(mid) = Self::metadata_id(c, entity_id)? else {
                return Ok(Ok(Vec::new()));
            };
            let mut out = Vec::new();
            let record = |state: String, attrs: Option<String>, lc: i64, lu: i64| StateRecord {
                entity_id: entity_id.to_string(),
                state,
                attributes: if no_attributes {
                    Map::new()
                } else {
                    parse_attributes(attrs)
                },
                last_changed: lc,
                last_updated: lu,
            };
            if q.include_start_state {
                let first: Option<(Option<String>, Option<String>)> = c
                    .prepare_cached(
                        "SELECT s.state, a.shared_attrs FROM states s
                         LEFT JOIN attributes a ON a.attributes_id = s.attributes_id
                         WHERE s.metadata_id = ?1 AND s.last_updated_ms < ?2
                         ORDER BY s.last_updated_ms DESC, s.state_id DESC LIMIT 1",
                    )?
                    .query_row(params![mid, start_ms], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((Some(state), attrs)) = first {
                    out.push(record(state, attrs, start_ms, start_ms));
                }
            }
            let mut stmt = c.prepare_cached(
                "SELECT s.state, a.shared_attrs, s.last_changed_ms, s.last_updated_ms FROM states s
                 LEFT JOIN attributes a ON a.attributes_id = s.attributes_id
                 WHERE s.metadata_id = ?1 AND s.last_updated_ms >= ?2 AND s.last_updated_ms < ?3
                 ORDER BY s.last_updated_ms, s.state_id",
            )?;
            let mut rows = stmt.query(params![mid, start_ms, end_ms])?;
            while let Some(r) = rows.next()? {
                let state: Option<String> = r.get(0)?;
                let (lc, lu): (i64, i64) = (r.get(2)?, r.get(3)?);
                let Some(state) = state else { continue };
                if significant_only && lc != lu {
                    continue;
                }
                if out.len() == MAX_STATES {
                    return Ok(Err(format!(
                        "more than {MAX_STATES} states of {entity_id} in the range; ask for a shorter one"
                    )));
                }
                out.push(record(state, r.get(1)?, lc, lu));
            }
            Ok(Ok(out))
        })?;
        result.map_err(|m| RecorderError::db(&self.path, m))
    }

    /// Samples `(time ms, value)` with `start_ms <= t < end_ms`, oldest
    /// first; the newest `limit` when there are more. Numeric states are
    /// their number; the two states of a binary domain (`switch` `on`/`off`,
    /// `valve` `open`/`closed` …) are 1/0, as the entity store's memory
    /// serves them ([`crate::entity::samples`]).
    pub fn samples(
        &self,
        entity_id: &str,
        start_ms: i64,
        end_ms: i64,
        limit: usize,
    ) -> Result<Vec<(i64, f64)>, RecorderError> {
        // The binary words go in as parameters (NULL, for a domain without
        // them, matches no state), so one cached statement serves all.
        let words = samples::binary_words(domain_of(entity_id));
        let (one, zero) = (words.map(|w| w.0), words.map(|w| w.1));
        self.with(|c| {
            let Some(mid) = Self::metadata_id(c, entity_id)? else {
                return Ok(Vec::new());
            };
            let mut v: Vec<(i64, f64)> = c
                .prepare_cached(
                    "SELECT last_updated_ms,
                            CASE WHEN value IS NOT NULL THEN value
                                 WHEN state = ?5 THEN 1.0 ELSE 0.0 END
                     FROM states
                     WHERE metadata_id = ?1 AND last_updated_ms >= ?2 AND last_updated_ms < ?3
                       AND (value IS NOT NULL OR state IN (?5, ?6))
                     ORDER BY last_updated_ms DESC, state_id DESC LIMIT ?4",
                )?
                .query_map(
                    params![mid, start_ms, end_ms, limit as i64, one, zero],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .collect::<rusqlite::Result<_>>()?;
            v.reverse();
            Ok(v)
        })
    }

    /// Hourly statistics of `entity_id` whose hour starts in `[start_ms, end_ms)`.
    pub fn statistics(
        &self,
        entity_id: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<StatisticsRow>, RecorderError> {
        self.with(|c| {
            let Some(mid) = Self::metadata_id(c, entity_id)? else {
                return Ok(Vec::new());
            };
            c.prepare_cached(
                "SELECT start_ms, mean, min, max, state, sum FROM statistics
                 WHERE metadata_id = ?1 AND start_ms >= ?2 AND start_ms < ?3 ORDER BY start_ms",
            )?
            .query_map(params![mid, start_ms, end_ms], |r| {
                Ok(StatisticsRow {
                    start_ms: r.get(0)?,
                    mean: r.get(1)?,
                    min: r.get(2)?,
                    max: r.get(3)?,
                    state: r.get(4)?,
                    sum: r.get(5)?,
                })
            })?
            .collect()
        })
    }

    /// Events (of one type, or all) fired in `[start_ms, end_ms)`.
    pub fn events(
        &self,
        event_type: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<RecordedEvent>, RecorderError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT event_type, data, origin, time_fired_ms FROM events
                 WHERE (?1 IS NULL OR event_type = ?1) AND time_fired_ms >= ?2 AND time_fired_ms < ?3
                 ORDER BY time_fired_ms, event_id",
            )?
            .query_map(params![event_type, start_ms, end_ms], |r| {
                let data: String = r.get(1)?;
                Ok(RecordedEvent {
                    event_type: r.get(0)?,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                    origin: r.get(2)?,
                    time_ms: r.get(3)?,
                })
            })?
            .collect()
        })
    }

    /// Alerts recorded in `[start_ms, end_ms)`.
    pub fn alerts(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<super::AlertRecord>, RecorderError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT time_ms, source, key, severity, status, message, entity_id, data FROM alerts
                 WHERE time_ms >= ?1 AND time_ms < ?2 ORDER BY time_ms, alert_id",
            )?
            .query_map(params![start_ms, end_ms], |r| {
                let data: String = r.get(7)?;
                Ok(super::AlertRecord {
                    time_ms: r.get(0)?,
                    source: r.get(1)?,
                    key: r.get(2)?,
                    severity: r.get(3)?,
                    status: r.get(4)?,
                    message: r.get(5)?,
                    entity_id: r.get(6)?,
                    data: serde_json::from_str(&data).unwrap_or(Value::Null),
                })
            })?
            .collect()
        })
    }
}

/// The newest time (ms since the Unix epoch) of any state or event in the
/// database at `path`; `None` when there is no database or it is empty.
/// A demo continues its simulated clock from here (see
/// [`crate::demo::resumed_clock`]).
pub fn last_recorded_ms(path: &std::path::Path) -> Result<Option<i64>, RecorderError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = schema::open_reader(path)?;
    conn.query_row(
        "SELECT MAX(t) FROM (SELECT MAX(last_updated_ms) AS t FROM states
                             UNION ALL SELECT MAX(time_fired_ms) FROM events)",
        [],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map_err(|e| RecorderError::db(path, e))
}

impl HistoryArchive for Reader {
    fn numeric(&self, entity_id: &str, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
        self.samples(entity_id, start_ms, end_ms, MAX_PLUGIN_SAMPLES)
            .unwrap_or_else(|e| {
                tracing::warn!("history of {entity_id} from the recorder: {e}");
                Vec::new()
            })
    }
}
