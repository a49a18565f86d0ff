//! HA's `history/history_during_period` over the recorder, for HA's
//! frontend and clients such as home-assistant-js-websocket.
//!
//! Request (HA core `components/history/websocket_api.py`,
//! `ws_get_history_during_period`): `start_time` (required), `end_time`,
//! `entity_ids` (required list, as in current HA), `include_start_time_state`
//! (default true), `significant_changes_only` (default true),
//! `minimal_response`, `no_attributes` (default false). Times are ISO 8601;
//! without an offset they are UTC (HA: its configured time zone). A bad time
//! answers `invalid_start_time` / `invalid_end_time`; a start in the future
//! answers `{}`. `end_time` is exclusive and defaults to no bound.
//!
//! Result: `{entity_id: [compressed state]}` (entities without states left
//! out), a compressed state being `{"s", "a", "lu", "lc"}` as HA's
//! `row_to_compressed_state` (`recorder/models/state.py`): `lu`/`lc` in
//! float seconds, `lc` only when it differs from `lu`. With
//! `minimal_response` (HA's `_sorted_states_to_dict`,
//! `recorder/history/modern.py`) the first state is whole (without `a` when
//! `no_attributes`) and the later ones are `{"s", "lu"}`, repeats of the
//! same state left out; `NEED_ATTRIBUTE_DOMAINS` keep whole states. With
//! `no_attributes` only, `a` is `{}` (as HA's rows without attributes).
//!
//! With the recorder off the command answers `not_found` naming the
//! setting: memory only keeps numeric samples, not states.

use super::commands::Outcome;
use super::protocol::{self, Command, ERR_HOME_ASSISTANT_ERROR, ERR_NOT_FOUND, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::entity::domain_of;
use crate::recorder::period::parse_time;
use crate::recorder::query::{NEED_ATTRIBUTE_DOMAINS, Reader, StateRecord, StatesQuery};
use serde_json::{Map, Value, json};

pub const ERR_INVALID_START_TIME: &str = "invalid_start_time";
pub const ERR_INVALID_END_TIME: &str = "invalid_end_time";

const FIELDS: &[&str] = &[
    "start_time",
    "end_time",
    "entity_ids",
    "include_start_time_state",
    "significant_changes_only",
    "minimal_response",
    "no_attributes",
];

/// `None` for a command this module does not know.
pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        "history/history_during_period" => during_period(s, cmd),
        "history/stream" => super::history_stream::stream(s, cmd),
        _ => return None,
    })
}

/// A parsed `history/history_during_period`.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub entity_ids: Vec<String>,
    /// ms since the Unix epoch; `end_ms` exclusive.
    pub start_ms: i64,
    pub end_ms: i64,
    pub query: StatesQuery,
    pub minimal: bool,
}

fn flag(msg: &Map<String, Value>, name: &str, default: bool) -> Result<bool, Failure> {
    match msg.get(name) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(Failure::from(format!(
            "expected bool for dictionary value @ data['{name}']"
        ))),
    }
}

/// Parses the command's fields. `Ok(None)` is no longer answered: a start
/// in the future is queried without its start state, so recorded rows are
/// never hidden.
pub fn parse(msg: &Map<String, Value>, now_ms: i64) -> Result<Option<Request>, Failure> {
    let f = Fields::new(msg, FIELDS)?;
    let start_text = f.required_str("start_time")?;
    let end_text = f.str("end_time")?;
    let entity_ids = match msg.get("entity_ids") {
        None => {
            return Err(Failure::from(
                "required key not provided @ data['entity_ids']".to_string(),
            ));
        }
        Some(Value::Array(items)) => {
            let mut ids: Vec<String> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Some(id) = item.as_str() else {
                    return Err(Failure::from(format!(
                        "expected str for item {i} of the list @ data['entity_ids']"
                    )));
                };
                // HA lower-cases the ids (`get_significant_states_with_session`).
                let id = id.trim().to_lowercase();
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            ids
        }
        Some(_) => {
            return Err(Failure::from(
                "expected a list of entity ids @ data['entity_ids']".to_string(),
            ));
        }
    };
    if entity_ids.is_empty() {
        return Err(Failure::from(
            "expected at least one entity id @ data['entity_ids']".to_string(),
        ));
    }
    let include_start_state = flag(msg, "include_start_time_state", true)?;
    let significant_only = flag(msg, "significant_changes_only", true)?;
    let minimal = flag(msg, "minimal_response", false)?;
    let no_attributes = flag(msg, "no_attributes", false)?;
    let start_ms = parse_time(start_text).ok_or_else(|| {
        Failure::new(
            ERR_INVALID_START_TIME,
            format!(
                "Invalid start_time: `{start_text}` (expected ISO 8601 like 2026-11-21T10:00:00+00:00)"
            ),
        )
    })?;
    // As HA: an empty end_time is no end_time.
    let end_ms = match end_text.filter(|t| !t.is_empty()) {
        None => i64::MAX,
        Some(t) => parse_time(t).ok_or_else(|| {
            Failure::new(
                ERR_INVALID_END_TIME,
                format!(
                    "Invalid end_time: `{t}` (expected ISO 8601 like 2026-11-21T10:00:00+00:00)"
                ),
            )
        })?,
    };
    // HA answers `{}` for a start in the future; Hearth's clock can be
    // behind rows it holds (a demo restarted at wall time after running
    // ahead), so such a start is queried too, without a start state.
    let future = start_ms > now_ms;
    Ok(Some(Request {
        entity_ids,
        start_ms,
        end_ms,
        query: StatesQuery {
            include_start_state: include_start_state && !future,
            significant_only,
            no_attributes,
        },
        minimal,
    }))
}

/// ms since the epoch as HA's float seconds.
fn seconds(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

/// HA's `row_to_compressed_state`.
fn compressed(r: &StateRecord, with_attributes: bool) -> Value {
    let mut m = Map::new();
    m.insert("s".into(), json!(r.state));
    if with_attributes {
        m.insert("a".into(), Value::Object(r.attributes.clone()));
    }
    m.insert("lu".into(), seconds(r.last_updated));
    if r.last_changed != r.last_updated {
        m.insert("lc".into(), seconds(r.last_changed));
    }
    Value::Object(m)
}

/// The result for the states of each entity (HA's `_sorted_states_to_dict`
/// with `compressed_state_format`).
pub fn render(results: &[(String, Vec<StateRecord>)], minimal: bool, no_attributes: bool) -> Value {
    let mut out = Map::new();
    for (id, states) in results {
        let Some((first, rest)) = states.split_first() else {
            continue;
        };
        let list: Vec<Value> = if !minimal || NEED_ATTRIBUTE_DOMAINS.contains(&domain_of(id)) {
            states.iter().map(|r| compressed(r, true)).collect()
        } else {
            let mut list = vec![compressed(first, !no_attributes)];
            let mut prev = &first.state;
            for r in rest {
                if r.state != *prev {
                    list.push(json!({"s": r.state, "lu": seconds(r.last_updated)}));
                    prev = &r.state;
                }
            }
            list
        };
        out.insert(id.clone(), Value::Array(list));
    }
    Value::Object(out)
}

/// Runs a parsed request against the database (blocking).
pub fn answer(reader: &Reader, req: &Request) -> Result<Value, crate::recorder::RecorderError> {
    let mut results = Vec::with_capacity(req.entity_ids.len());
    for id in &req.entity_ids {
        results.push((
            id.clone(),
            reader.states(id, req.start_ms, req.end_ms, req.query)?,
        ));
    }
    Ok(render(&results, req.minimal, req.query.no_attributes))
}

fn during_period(s: &mut Session, cmd: &Command) -> Outcome {
    let Some(req) = parse(&cmd.msg, s.api.store.clock().now_ms())? else {
        s.conn.send(protocol::result(cmd.id, json!({})));
        return Ok(());
    };
    let Some(recorder) = s.api.recorder.clone() else {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            "history/history_during_period needs the recorder, which is off ([recorder] enabled = false)",
        ));
    };
    // The recorder reads a disk: off the connection's loop, like calls.
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let (conn, id) = (s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    s.calls.spawn(async move {
        let _permit = permit;
        let q = tokio::task::spawn_blocking(move || answer(recorder.reader(), &req)).await;
        match q {
            Ok(Ok(v)) => conn.send(protocol::result(id, v)),
            Ok(Err(e)) => conn.send(protocol::error(
                json!(id),
                ERR_HOME_ASSISTANT_ERROR,
                &e.to_string(),
            )),
            Err(e) => conn.send(protocol::error(
                json!(id),
                ERR_HOME_ASSISTANT_ERROR,
                &format!("history query failed: {e}"),
            )),
        };
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn msg(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn fields_follow_ha() {
        let r = parse(
            &msg(json!({"id": 1, "type": "history/history_during_period",
                "start_time": "2025-12-31T00:00:00Z", "entity_ids": ["Sensor.A", "sensor.a"]})),
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.entity_ids, ["sensor.a"]);
        assert_eq!((r.start_ms, r.end_ms), (NOW - 86_400_000, i64::MAX));
        assert!(r.query.include_start_state && r.query.significant_only);
        assert!(!r.minimal && !r.query.no_attributes);
        let future = msg(json!({"start_time": "2027-01-01T00:00:00Z", "entity_ids": ["a.b"]}));
        let r = parse(&future, NOW).unwrap().unwrap();
        assert!(
            !r.query.include_start_state,
            "rows after now are read, no start state"
        );
        let bad = |v: Value| parse(&msg(v), NOW).unwrap_err();
        let e = bad(json!({"start_time": "yesterday", "entity_ids": ["a.b"]}));
        assert_eq!(e.code, ERR_INVALID_START_TIME);
        assert!(e.message.contains("yesterday"), "{}", e.message);
        let e = bad(
            json!({"start_time": "2025-12-31T00:00:00Z", "end_time": "soon",
                           "entity_ids": ["a.b"]}),
        );
        assert_eq!(e.code, ERR_INVALID_END_TIME);
        let e = bad(json!({"start_time": "2025-12-31T00:00:00Z"}));
        assert!(e.message.contains("entity_ids"), "{}", e.message);
        let e = bad(json!({"start_time": "2025-12-31T00:00:00Z", "entity_ids": "a.b"}));
        assert!(e.message.contains("entity_ids"), "{}", e.message);
        let e = bad(
            json!({"start_time": "2025-12-31T00:00:00Z", "entity_ids": ["a.b"],
                           "minimal_response": 1}),
        );
        assert!(e.message.contains("minimal_response"), "{}", e.message);
    }

    #[test]
    fn minimal_response_compresses_like_ha() {
        let rec = |s: &str, lc: i64, lu: i64| StateRecord {
            entity_id: "sensor.a".into(),
            state: s.into(),
            attributes: msg(json!({"unit_of_measurement": "W"})),
            last_changed: lc,
            last_updated: lu,
        };
        let states = vec![rec("1", 0, 500), rec("1", 0, 1000), rec("2", 1500, 1500)];
        let v = render(&[("sensor.a".into(), states.clone())], false, false);
        assert_eq!(
            v["sensor.a"][0],
            json!({"s": "1", "a": {"unit_of_measurement": "W"}, "lu": 0.5, "lc": 0.0})
        );
        assert_eq!(v["sensor.a"].as_array().unwrap().len(), 3);
        let v = render(&[("sensor.a".into(), states.clone())], true, true);
        assert_eq!(
            v["sensor.a"],
            json!([{"s": "1", "lu": 0.5, "lc": 0.0}, {"s": "2", "lu": 1.5}])
        );
        let v = render(&[("climate.a".into(), states)], true, true);
        assert_eq!(v["climate.a"][2]["a"]["unit_of_measurement"], "W");
        assert_eq!(
            render(&[("sensor.b".into(), vec![])], false, false),
            json!({})
        );
    }
}
