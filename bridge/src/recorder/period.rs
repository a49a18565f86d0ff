//! HA's `GET /api/history/period[/<start>]` (REST API docs and
//! `components/history`): the query string, and the answer — one list per
//! entity (in the order asked, entities without states left out) of
//! `{entity_id, state, attributes, last_changed, last_updated}`.
//!
//! Parameters: `filter_entity_id=a,b` (required, as in HA since 2021.12),
//! `end_time` (default start + 1 day), `minimal_response` (states between
//! the first and the last as `{state, last_changed}` only),
//! `no_attributes`, `significant_changes_only` (default on; `=0` for every
//! change), `skip_initial_state` (no state in force at the start). The
//! start defaults to one day ago. A start after the clock's now still
//! returns the rows recorded there (HA answers `[]`; Hearth's simulated
//! clock can be behind rows a faster earlier run wrote), without a start
//! state.

use super::RecorderError;
use super::query::{NEED_ATTRIBUTE_DOMAINS, Reader, StateRecord, StatesQuery};
use crate::clock::iso8601;
use crate::entity::domain_of;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, PartialEq)]
pub struct PeriodRequest {
    pub entity_ids: Vec<String>,
    /// ms since the Unix epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub query: StatesQuery,
    pub minimal: bool,
}

/// A time as HA's `parse_datetime` takes it: RFC 3339 / ISO 8601 with an
/// offset, or without one (then UTC). A `+` that URL decoding turned into a
/// space is put back.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    let fixed = text.replace(' ', "+");
    for t in [text, fixed.as_str()] {
        if let Ok(ts) = t.parse::<jiff::Timestamp>() {
            return Some(ts.as_millisecond());
        }
    }
    let civil = text.parse::<jiff::civil::DateTime>().ok()?;
    civil
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// `domain.object_id` with lower-case letters, digits and `_` (HA's
/// `valid_entity_id`).
fn valid_entity_id(id: &str) -> bool {
    let ok = |s: &str| {
        !s.is_empty()
            && !s.starts_with('_')
            && !s.ends_with('_')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    matches!(id.split_once('.'), Some((d, o)) if ok(d) && ok(o))
}

/// Parses a request: `start` is the path after `/api/history/period`
/// (empty or `/<time>`, percent-encoded), `query` the query string.
/// `Ok(None)` is no longer answered (a start in the future is queried
/// without its start state, so recorded rows are never hidden); the
/// `Option` stays for callers. `Err`: the message for a 400.
pub fn parse(start: &str, query: &str, now_ms: i64) -> Result<Option<PeriodRequest>, String> {
    let start = start.trim_start_matches('/');
    let start_ms = if start.is_empty() {
        now_ms - DAY_MS
    } else {
        let decoded = percent_encoding::percent_decode_str(start).decode_utf8_lossy();
        parse_time(&decoded).ok_or_else(|| {
            format!(
                "Invalid datetime: `{decoded}` (expected ISO 8601 like 2026-11-21T10:00:00+00:00)"
            )
        })?
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let has = |k: &str| get(k).is_some();
    let ids = get("filter_entity_id").unwrap_or("").trim().to_lowercase();
    let entity_ids: Vec<String> = ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if entity_ids.is_empty() {
        return Err("filter_entity_id is missing".into());
    }
    if let Some(bad) = entity_ids.iter().find(|id| !valid_entity_id(id)) {
        return Err(format!(
            "Invalid filter_entity_id: `{bad}` (expected <domain>.<object_id>, comma separated)"
        ));
    }
    // HA answers `[]` for a start in the future. Hearth's clock can be
    // behind rows it already holds (a demo restarted at wall time after
    // running ahead at `--speed`), so such a start is queried too, without
    // the state "in force" at a time that has not come.
    let future = start_ms > now_ms;
    let end_ms = match get("end_time") {
        Some(t) => parse_time(t).ok_or_else(|| {
            format!("Invalid end_time: `{t}` (expected ISO 8601 like 2026-11-21T10:00:00+00:00, URL-encoded)")
        })?,
        None => start_ms + DAY_MS,
    };
    Ok(Some(PeriodRequest {
        entity_ids,
        start_ms,
        end_ms,
        query: StatesQuery {
            include_start_state: !has("skip_initial_state") && !future,
            significant_only: get("significant_changes_only") != Some("0"),
            no_attributes: has("no_attributes"),
        },
        minimal: has("minimal_response"),
    }))
}

/// One state as HA's history shows it.
pub fn full(r: &StateRecord) -> Value {
    json!({
        "entity_id": r.entity_id,
        "state": r.state,
        "attributes": r.attributes,
        "last_changed": iso8601(r.last_changed),
        "last_updated": iso8601(r.last_updated),
    })
}

/// The answer's JSON for the states of each entity.
pub fn render(results: &[(String, Vec<StateRecord>)], minimal: bool) -> Value {
    let lists: Vec<Value> = results
        .iter()
        .filter(|(_, states)| !states.is_empty())
        .map(|(id, states)| {
            let keep_all = !minimal || NEED_ATTRIBUTE_DOMAINS.contains(&domain_of(id));
            let last = states.len() - 1;
            let items: Vec<Value> = states
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    if keep_all || i == 0 || i == last {
                        full(r)
                    } else {
                        json!({"state": r.state, "last_changed": iso8601(r.last_changed)})
                    }
                })
                .collect();
            Value::Array(items)
        })
        .collect();
    Value::Array(lists)
}

/// Runs a parsed request against the database (blocking).
pub fn answer(reader: &Reader, req: &PeriodRequest) -> Result<Value, RecorderError> {
    let mut results = Vec::with_capacity(req.entity_ids.len());
    for id in &req.entity_ids {
        if results.iter().any(|(seen, _): &(String, _)| seen == id) {
            continue;
        }
        let states = reader.states(id, req.start_ms, req.end_ms, req.query)?;
        results.push((id.clone(), states));
    }
    Ok(render(&results, req.minimal))
}

/// Answers `GET /api/history/period<start>?<query>`: (HTTP status, JSON
/// body). The database is read off the async runtime.
pub async fn respond(
    recorder: Option<std::sync::Arc<super::Recorder>>,
    now_ms: i64,
    start: &str,
    query: &str,
) -> (u16, Value) {
    let req = match parse(start, query, now_ms) {
        Ok(Some(r)) => r,
        Ok(None) => return (200, json!([])),
        Err(m) => return (400, json!({ "message": m })),
    };
    let Some(recorder) = recorder else {
        return (
            404,
            json!({"message": "History needs the recorder, which is off ([recorder] enabled = false)."}),
        );
    };
    match tokio::task::spawn_blocking(move || answer(recorder.reader(), &req)).await {
        Ok(Ok(v)) => (200, v),
        Ok(Err(e)) => (500, json!({ "message": e.to_string() })),
        Err(e) => (
            500,
            json!({ "message": format!("history query failed: {e}") }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    fn parameters_follow_ha() {
        let r = parse("", "filter_entity_id=sensor.a,Sensor.B", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(r.entity_ids, ["sensor.a", "sensor.b"]);
        assert_eq!((r.start_ms, r.end_ms), (NOW - DAY_MS, NOW));
        assert!(r.query.include_start_state && r.query.significant_only);
        assert!(!r.minimal && !r.query.no_attributes);
        let r = parse(
            "/2025-12-31T01:00:00%2B01:00",
            "filter_entity_id=sensor.a&end_time=2025-12-31T06:00:00+01:00&minimal_response&no_attributes&significant_changes_only=0&skip_initial_state",
            NOW,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.start_ms, NOW - DAY_MS);
        assert_eq!(r.end_ms, NOW - DAY_MS + 5 * 3_600_000);
        assert!(r.minimal && r.query.no_attributes);
        assert!(!r.query.significant_only && !r.query.include_start_state);
        // A start without offset is UTC.
        let r = parse("/2025-12-31T00:00:00", "filter_entity_id=sensor.a", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(r.start_ms, NOW - DAY_MS);
        // A start after now is still queried (rows may exist there after a
        // clock overlap), without a start state.
        let r = parse("/2027-01-01T00:00:00Z", "filter_entity_id=sensor.a", NOW)
            .unwrap()
            .unwrap();
        assert_eq!(r.start_ms, NOW + 365 * DAY_MS);
        assert!(!r.query.include_start_state);
    }

    #[test]
    fn bad_parameters_name_the_input() {
        assert_eq!(
            parse("", "", NOW).unwrap_err(),
            "filter_entity_id is missing"
        );
        let e = parse("/yesterday", "filter_entity_id=sensor.a", NOW).unwrap_err();
        assert!(
            e.starts_with("Invalid datetime") && e.contains("yesterday"),
            "{e}"
        );
        let e = parse("", "filter_entity_id=sensor.a,li-ght.x", NOW).unwrap_err();
        assert!(e.contains("li-ght.x"), "{e}");
        let e = parse("", "filter_entity_id=sensor.a&end_time=soon", NOW).unwrap_err();
        assert!(
            e.starts_with("Invalid end_time") && e.contains("soon"),
            "{e}"
        );
    }

    #[test]
    fn minimal_answers_keep_first_and_last_whole() {
        let rec = |s: &str, t: i64| StateRecord {
            entity_id: "sensor.a".into(),
            state: s.into(),
            attributes: serde_json::Map::new(),
            last_changed: t,
            last_updated: t,
        };
        let v = render(
            &[
                (
                    "sensor.a".into(),
                    vec![rec("1", 0), rec("2", 1000), rec("3", 2000)],
                ),
                ("sensor.none".into(), vec![]),
            ],
            true,
        );
        let list = v.as_array().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0][0]["entity_id"], "sensor.a");
        assert_eq!(
            list[0][1],
            json!({"state": "2", "last_changed": "1970-01-01T00:00:01.000+00:00"})
        );
        assert_eq!(list[0][2]["attributes"], json!({}));
    }
}
