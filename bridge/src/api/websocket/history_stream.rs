//! HA's `history/stream`: the recorded states of some entities from
//! `start_time`, then their changes live, as HA's frontend (history panel,
//! more-info graphs) subscribes to them.
//!
//! Follows HA core `components/history/websocket_api.py` (`ws_stream`):
//! - the fields of `history/history_during_period` (see `history`);
//!   `invalid_start_time` for a start in the future, `invalid_end_time` for
//!   an end before the start;
//! - the result (`null`) first, then an event
//!   `{"states": {id: [compressed…]}, "start_time": s, "end_time": s}` with
//!   the recorded states (`end_time`: the last state's `lu`, or the period's
//!   end when there is none);
//! - with an `end_time` already past, that is all; otherwise the changes
//!   follow as `{"states": {id: [{"s", "a", "lu", "lc"}…]}}`, gathered for
//!   [`COALESCE`] (HA's `EVENT_COALESCE_TIME`), until `end_time` or
//!   `unsubscribe_events`. Changes of attributes only are left out with
//!   `significant_changes_only` or `minimal_response`, except in HA's
//!   `SIGNIFICANT_DOMAINS`; `a` is left out with `no_attributes`, except in
//!   `NEED_ATTRIBUTE_DOMAINS`.
//! - A client more than [`MAX_PENDING`] changes behind loses the stream
//!   (HA's `MAX_PENDING_HISTORY_STATES`), logged.
//!
//! No change is sent twice or missed at the switch from the database to
//! the live changes: the store subscription starts first, the recorder
//! commits what came before it, and a live change already in the answer
//! (the same entity, an older `lu`, or the same `lu` and a state recorded
//! at that ms) is skipped.

use super::history::{ERR_INVALID_END_TIME, ERR_INVALID_START_TIME, Request, parse, render};
use super::protocol::{self, Command, ERR_HOME_ASSISTANT_ERROR, ERR_NOT_FOUND};
use super::session::Session;
use crate::api::calls::Failure;
use crate::api::registry::Registry;
use crate::entity::{State, StoreEvent, domain_of};
use crate::recorder::query::{NEED_ATTRIBUTE_DOMAINS, SIGNIFICANT_DOMAINS, StateRecord};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::time::Duration;

/// HA's `EVENT_COALESCE_TIME`.
pub const COALESCE: Duration = Duration::from_millis(350);
/// HA's `MAX_PENDING_HISTORY_STATES`.
pub const MAX_PENDING: usize = 2048;

pub fn stream(s: &mut Session, cmd: &Command) -> super::commands::Outcome {
    let now = s.api.store.clock().now_ms();
    // The one-shot history reads a start after now (rows a faster earlier
    // run wrote); a stream of live changes from the future is HA's error.
    let Some(req) = parse(&cmd.msg, now)?.filter(|r| r.start_ms <= now) else {
        return Err(Failure::new(
            ERR_INVALID_START_TIME,
            "Invalid start_time: it is in the future",
        ));
    };
    if req.end_ms < req.start_ms {
        return Err(Failure::new(
            ERR_INVALID_END_TIME,
            "Invalid end_time: it is before start_time",
        ));
    }
    let Some(recorder) = s.api.recorder.clone() else {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            "history/stream needs the recorder, which is off ([recorder] enabled = false)",
        ));
    };
    let (sub, conn, clock) = (cmd.id, s.conn.clone(), s.api.store.clock());
    let past = req.end_ms <= now;
    // Subscribed before the database is read: nothing falls in between.
    let live = (!past).then(|| s.api.store.subscribe());
    // Read after subscribing: every change up to here is in the database
    // once flushed, and every later one is in the subscription (the
    // overlap is skipped, see `Answered`).
    let subscribed_at = clock.now_ms();
    conn.send(protocol::result(sub, Value::Null));
    let task = tokio::spawn(async move {
        let until = if past {
            req.end_ms
        } else {
            subscribed_at.saturating_add(1)
        };
        if !past && let Err(e) = recorder.flush().await {
            tracing::warn!("history/stream {sub}: the recorder could not commit: {e}");
        }
        let query = {
            let (reader, req) = (recorder.reader().clone(), req.clone());
            tokio::task::spawn_blocking(move || recorded(&reader, &req, until)).await
        };
        let recorded = match query {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                conn.send(protocol::error(json!(sub), ERR_HOME_ASSISTANT_ERROR, &e));
                return;
            }
            Err(e) => {
                let why = format!("history query failed: {e}");
                conn.send(protocol::error(json!(sub), ERR_HOME_ASSISTANT_ERROR, &why));
                return;
            }
        };
        let last = recorded
            .iter()
            .filter_map(|(_, list)| list.last().map(|r| r.last_updated))
            .max()
            .unwrap_or(until.min(req.end_ms));
        let states = render(&recorded, req.minimal, req.query.no_attributes);
        let first = json!({
            "states": states,
            "start_time": req.start_ms as f64 / 1000.0,
            "end_time": last as f64 / 1000.0,
        });
        if !conn.send(protocol::event(sub, first)) {
            return;
        }
        let Some((snapshot, mut rx)) = live else {
            return;
        };
        let mut reg = Registry::from_snapshot(&snapshot);
        let answered = Answered::of(&recorded);
        let end = req.end_ms;
        loop {
            let first = tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => ev,
                    None => return,
                },
                _ = sleep_until(&clock, end) => return,
            };
            // HA gathers a burst into one message.
            tokio::time::sleep(COALESCE).await;
            let mut batch = vec![first];
            while let Ok(ev) = rx.try_recv() {
                batch.push(ev);
            }
            let mut out: Map<String, Value> = Map::new();
            let mut pending = 0;
            for ev in batch {
                reg.observe(&ev);
                let StoreEvent::StateChanged(sc) = ev else {
                    continue;
                };
                if !req.entity_ids.contains(&sc.entity_id) {
                    continue;
                }
                let (Some(old), Some(new)) = (&sc.old_state, &sc.new_state) else {
                    continue;
                };
                if new.last_updated >= end || answered.has(new) || !wanted(&req, old, new) {
                    continue;
                }
                pending += 1;
                let item = compressed_live(&reg.present(new), req.query.no_attributes);
                match out.entry(new.entity_id.clone()) {
                    serde_json::map::Entry::Occupied(mut e) => {
                        if let Value::Array(list) = e.get_mut() {
                            list.push(item);
                        }
                    }
                    serde_json::map::Entry::Vacant(e) => {
                        e.insert(json!([item]));
                    }
                }
            }
            // Counted after the filter, as HA's queue holds only the
            // streamed entities' changes.
            if pending > MAX_PENDING {
                tracing::warn!(
                    "history/stream {sub}: {pending} changes in {COALESCE:?} (limit {MAX_PENDING}); stream ended"
                );
                return;
            }
            if !out.is_empty() && !conn.send(protocol::event(sub, json!({"states": out}))) {
                return;
            }
        }
    });
    s.subscriptions.insert(sub, task.abort_handle());
    Ok(())
}

/// The recorded states of each entity in `[start, until)`.
fn recorded(
    reader: &crate::recorder::query::Reader,
    req: &Request,
    until: i64,
) -> Result<Vec<(String, Vec<StateRecord>)>, String> {
    let mut out = Vec::with_capacity(req.entity_ids.len());
    for id in &req.entity_ids {
        let list = reader
            .states(id, req.start_ms, until.min(req.end_ms), req.query)
            .map_err(|e| e.to_string())?;
        out.push((id.clone(), list));
    }
    Ok(out)
}

/// What the recorded answer holds of each entity: its last `lu` and the
/// states recorded at that very ms. Changes committed between the
/// subscription and the read come live as well; they are skipped by this
/// (per entity, changes come in order, and the store never emits the same
/// state twice in a row).
struct Answered(HashMap<String, (i64, Vec<String>)>);

impl Answered {
    fn of(recorded: &[(String, Vec<StateRecord>)]) -> Answered {
        let mut map = HashMap::new();
        for (id, list) in recorded {
            let Some(last) = list.last().map(|r| r.last_updated) else {
                continue;
            };
            let at_last = list
                .iter()
                .filter(|r| r.last_updated == last)
                .map(|r| r.state.clone())
                .collect();
            map.insert(id.clone(), (last, at_last));
        }
        Answered(map)
    }

    /// The change is in the recorded answer already.
    fn has(&self, new: &State) -> bool {
        self.0.get(&new.entity_id).is_some_and(|(lu, states)| {
            new.last_updated < *lu || (new.last_updated == *lu && states.contains(&new.state))
        })
    }
}

/// HA's `_forward_state_events_filtered`.
fn wanted(req: &Request, old: &State, new: &State) -> bool {
    let attributes_only = new.state == old.state;
    let filtered = req.query.significant_only || req.minimal;
    !(filtered && attributes_only && !SIGNIFICANT_DOMAINS.contains(&domain_of(&new.entity_id)))
}

/// HA's `_history_compressed_state`.
fn compressed_live(state: &State, no_attributes: bool) -> Value {
    let mut m = Map::new();
    m.insert("s".into(), json!(state.state));
    if !no_attributes || NEED_ATTRIBUTE_DOMAINS.contains(&domain_of(&state.entity_id)) {
        m.insert("a".into(), Value::Object(state.attributes.clone()));
    }
    m.insert("lu".into(), json!(state.last_updated as f64 / 1000.0));
    if state.last_changed != state.last_updated {
        m.insert("lc".into(), json!(state.last_changed as f64 / 1000.0));
    }
    Value::Object(m)
}

/// Sleeps until the bridge's clock reads `end_ms` (forever for no end).
async fn sleep_until(clock: &crate::clock::Clock, end_ms: i64) {
    if end_ms == i64::MAX {
        return std::future::pending().await;
    }
    loop {
        let left = end_ms.saturating_sub(clock.now_ms());
        if left <= 0 {
            return;
        }
        // A manual clock moves by its owner (no wall time to wait for):
        // look again each second, as on any clock.
        let wall = match clock.wall(left as f64) {
            w if w.is_zero() && !clock.speed().is_finite() => Duration::from_secs(1),
            w => w.clamp(Duration::from_millis(1), Duration::from_secs(1)),
        };
        tokio::time::sleep(wall).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Context;

    fn state(id: &str, s: &str, lu: i64, lc: i64) -> State {
        State {
            entity_id: id.into(),
            state: s.into(),
            attributes: Map::from_iter([("unit_of_measurement".into(), json!("°C"))]),
            last_changed: lc,
            last_updated: lu,
            context: Context::new(None),
        }
    }

    #[test]
    fn live_states_are_compressed_like_ha() {
        let v = compressed_live(&state("sensor.t", "21.5", 2_000, 1_000), false);
        assert_eq!(
            v,
            json!({"s": "21.5", "a": {"unit_of_measurement": "°C"}, "lu": 2.0, "lc": 1.0})
        );
        let v = compressed_live(&state("sensor.t", "21.5", 2_000, 2_000), true);
        assert_eq!(v, json!({"s": "21.5", "lu": 2.0}));
        // climate keeps its attributes (NEED_ATTRIBUTE_DOMAINS).
        let v = compressed_live(&state("climate.ac", "cool", 2_000, 2_000), true);
        assert!(v.get("a").is_some());
    }

    #[test]
    fn a_change_in_the_recorded_answer_is_not_sent_again() {
        let rec = |s: &str, lu: i64| StateRecord {
            entity_id: "sensor.t".into(),
            state: s.into(),
            attributes: Map::new(),
            last_changed: lu,
            last_updated: lu,
        };
        // Two changes in the last ms: both were answered.
        let answered = Answered::of(&[(
            "sensor.t".to_string(),
            vec![rec("20.0", 1_000), rec("21.0", 2_000), rec("21.5", 2_000)],
        )]);
        assert!(answered.has(&state("sensor.t", "20.0", 1_000, 1_000)));
        assert!(answered.has(&state("sensor.t", "21.0", 2_000, 2_000)));
        assert!(answered.has(&state("sensor.t", "21.5", 2_000, 2_000)));
        assert!(!answered.has(&state("sensor.t", "21.6", 2_000, 2_000)));
        assert!(!answered.has(&state("sensor.t", "21.5", 2_001, 2_001)));
        assert!(!answered.has(&state("sensor.u", "1", 1, 1)));
    }
}
