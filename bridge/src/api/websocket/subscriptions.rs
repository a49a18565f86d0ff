//! Subscription tasks: one per `subscribe_events` / `subscribe_entities`,
//! each with its own queue from the entity store (or the event bus), so a
//! subscription sees every change after it started, in order. Each turns
//! events into HA messages and queues them on the connection without
//! waiting; a full queue drops the connection (see `connection`).

use super::connection::Conn;
use super::protocol;
use super::session::Session;
use crate::api::ha;
use crate::api::registry::Registry;
use crate::entity::{StateChanged, StoreEvent};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::AbortHandle;

/// `subscribe_events`: `state_changed` from the store, everything else from
/// the API's event bus; `None` means all event types.
pub fn events(s: &Session, sub: u64, event_type: Option<String>) -> AbortHandle {
    let want_state = event_type.as_deref().is_none_or(|t| t == "state_changed");
    let want_bus = event_type.as_deref() != Some("state_changed");
    let (mut store_rx, mut reg) = match want_state.then(|| s.api.store.subscribe()) {
        Some((snapshot, rx)) => (Some(rx), Registry::from_snapshot(&snapshot)),
        None => (None, Registry::default()),
    };
    let mut bus_rx = want_bus.then(|| s.api.bus.subscribe());
    let conn = s.conn.clone();
    let clock = s.api.store.clock();
    tokio::spawn(async move {
        loop {
            let msg = tokio::select! {
                ev = async { store_rx.as_mut()?.recv().await }, if store_rx.is_some() => match ev {
                    Some(_) if behind(&conn, sub, store_rx.as_ref().map_or(0, |r| r.len())) => break,
                    Some(StoreEvent::StateChanged(sc)) => ha::state_changed(&presented(&reg, &sc), clock.now_ms()),
                    Some(other) => {
                        reg.observe(&other);
                        continue;
                    }
                    None => break,
                },
                ev = async { bus_rx.as_mut().expect("guarded").recv().await }, if bus_rx.is_some() => match ev {
                    Ok(e) if event_type.as_deref().is_none_or(|t| t == e.event_type) => {
                        ha::event(&e.event_type, e.data.clone(), &e.context, e.time_fired_ms)
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(n)) => {
                        conn.fail(
                            "subscription fell behind: client too slow",
                            format!("subscription {sub} fell {n} events behind"),
                        );
                        break;
                    }
                    Err(RecvError::Closed) => break,
                },
            };
            if !conn.send(protocol::event(sub, msg)) {
                break;
            }
        }
    })
    .abort_handle()
}

/// `subscribe_entities`: the result, then `{"a": …}` with every current
/// state (or those in `filter`), then `a` (new), `c` (diff) and `r`
/// (removed) messages as HA's `_forward_entity_changes` sends them.
pub fn entities(s: &Session, sub: u64, filter: Option<Vec<String>>) -> AbortHandle {
    let filter: Option<HashSet<String>> = filter.map(|f| f.into_iter().collect());
    let wanted = move |id: &str| filter.as_ref().is_none_or(|f| f.contains(id));
    let (snapshot, mut rx) = s.api.store.subscribe();
    let mut reg = Registry::from_snapshot(&snapshot);
    let conn = s.conn.clone();
    conn.send(protocol::result(sub, Value::Null));
    let mut known = HashSet::new();
    let mut initial = Map::new();
    for (spec, state) in &snapshot.entities {
        if let Some(state) = state.as_ref().filter(|_| wanted(&spec.entity_id)) {
            known.insert(spec.entity_id.clone());
            initial.insert(
                spec.entity_id.clone(),
                ha::compressed_state(&reg.present(state)),
            );
        }
    }
    conn.send(protocol::event(sub, json!({"a": initial})));
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if behind(&conn, sub, rx.len()) {
                break;
            }
            reg.observe(&ev);
            let msg = match ev {
                StoreEvent::StateChanged(sc) if wanted(&sc.entity_id) => {
                    match (&sc.old_state, &sc.new_state) {
                        (Some(old), Some(new)) if known.contains(&sc.entity_id) => {
                            // The registry adds the same attributes to both
                            // sides, so the raw states give the same diff.
                            json!({"c": {sc.entity_id.clone(): ha::state_diff(old, new)}})
                        }
                        (_, Some(new)) => {
                            known.insert(sc.entity_id.clone());
                            json!({"a": {sc.entity_id.clone(): ha::compressed_state(&reg.present(new))}})
                        }
                        (_, None) if known.remove(&sc.entity_id) => json!({"r": [sc.entity_id]}),
                        (_, None) => continue,
                    }
                }
                StoreEvent::EntityRemoved(spec) if known.remove(&spec.entity_id) => {
                    json!({"r": [spec.entity_id]})
                }
                _ => continue,
            };
            if !conn.send(protocol::event(sub, msg)) {
                break;
            }
        }
    })
    .abort_handle()
}

/// Changes waiting in the store's queue are bounded too, or a subscription
/// that cannot keep up would pile them up there without limit. They are
/// shared pointers, not serialized messages, so the bound is looser than
/// the send queue's: a burst (a batch of imports, a restart) is absorbed.
const STORE_BACKLOG_FACTOR: usize = 16;

fn behind(conn: &Conn, sub: u64, waiting: usize) -> bool {
    let limit = conn.capacity() * STORE_BACKLOG_FACTOR;
    if waiting <= limit {
        return false;
    }
    conn.fail(
        "subscription fell behind: client too slow",
        format!("subscription {sub} is {waiting} state changes behind (limit {limit})"),
    );
    true
}

/// A state change with both states as HA shows them.
fn presented(reg: &Registry, sc: &StateChanged) -> StateChanged {
    StateChanged {
        entity_id: sc.entity_id.clone(),
        old_state: sc.old_state.as_ref().map(|s| reg.present(s)),
        new_state: sc.new_state.as_ref().map(|s| reg.present(s)),
    }
}
