//! Hearth's own commands, under `hearth/`:
//! - `hearth/plugins/list|load|swap|unload|logs|config`: the plugin lifecycle, with
//!   the arguments and results of [`plugin_ops`](crate::api::plugin_ops)
//!   (e.g. `{"id": 5, "type": "hearth/plugins/swap", "name": "thermostat",
//!   "wasm": "builtin:custom-strategy"}`).
//! - `hearth/devices/list` → `[{id, name, manufacturer, model, sw_version,
//!   via_device, available, entities: [entity_id]}]`
//! - `hearth/devices/pending` → the devices found on the network and not
//!   adopted; `hearth/devices/adopt` `{device_id, name?, options?}` adopts one
//!   (arguments and results of [`device_ops`](crate::api::device_ops)).
//! - `hearth/history` `{entity_id, start_time, end_time?, kind?}` (RFC
//!   3339 times; `end_time` defaults to now, inclusive) → `{entity_id,
//!   source, <kind>}` where `kind` is
//!   - `samples` (default): `[{time, value}]`, the numeric states, from
//!     memory (the last 4096 per entity) and the recorder before that;
//!   - `states`: `[{entity_id, state, attributes, last_changed,
//!     last_updated}]`, every recorded change, the state in force at
//!     `start_time` first (HA's history shape);
//!   - `statistics`: `[{start, mean, min, max, state, sum}]`, the hourly
//!     statistics whose hour starts in the range.
//!
//!   `source` is `recorder` (SQLite, plus memory for samples not committed
//!   yet) or `memory` when the recorder is off (then only `samples`).
//! - `hearth/energy/summary` `{period?}` → the energy page's figures
//!   (shapes and units in [`energy`](super::energy)).
//! - `hearth/alerts/list` `{active_only?}` → `[alert]` (active first; the
//!   fields of [`Alert`](crate::alerts::Alert) plus `first_seen` and
//!   `last_seen` in RFC 3339).
//! - `hearth/alerts/acknowledge` `{alert_id}` → the alert: it is not
//!   notified again until it clears.

use super::commands::Outcome;
use super::protocol::{self, Command, ERR_NOT_FOUND, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::api::{device_ops, plugin_ops};
use crate::clock::iso8601;
use serde_json::{Value, json};

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        kind if kind.starts_with("hearth/plugins/") => {
            let op = plugin_ops::Op::parse(&kind["hearth/plugins/".len()..])?;
            plugin(s, cmd, op)
        }
        "hearth/devices/pending" => device(s, cmd, device_ops::Op::Pending),
        "hearth/devices/adopt" => device(s, cmd, device_ops::Op::Adopt),
        "hearth/devices/list" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            s.conn.send(protocol::result(cmd.id, devices(s)));
        }),
        "hearth/history" => history(s, cmd),
        "hearth/energy/summary" => super::energy::handle(s, cmd),
        "hearth/alerts/list" => alerts_list(s, cmd),
        "hearth/alerts/acknowledge" => alerts_acknowledge(s, cmd),
        _ => return None,
    })
}

/// Lifecycle operations can take a while (compiling); the connection keeps
/// serving meanwhile, and they are aborted with the session like calls.
fn plugin(s: &mut Session, cmd: &Command, op: plugin_ops::Op) -> Outcome {
    let mut request = cmd.msg.clone();
    request.remove("id");
    request.remove("type");
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let (manager, conn, id) = (s.api.plugins.clone(), s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    s.calls.spawn(async move {
        let _permit = permit;
        match plugin_ops::run(manager, op, request).await {
            Ok(v) => conn.send(protocol::result(id, v)),
            Err(f) => conn.send(protocol::error(json!(id), f.code, &f.message)),
        };
    });
    Ok(())
}

/// An adoption writes the config file and starts a driver: off the
/// connection's loop, like plugin operations.
fn device(s: &mut Session, cmd: &Command, op: device_ops::Op) -> Outcome {
    let mut request = cmd.msg.clone();
    request.remove("id");
    request.remove("type");
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let (lan, conn, id) = (s.api.lan.clone(), s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    s.calls.spawn(async move {
        let _permit = permit;
        match device_ops::run(lan, op, request).await {
            Ok(v) => conn.send(protocol::result(id, v)),
            Err(f) => conn.send(protocol::error(json!(id), f.code, &f.message)),
        };
    });
    Ok(())
}

fn devices(s: &Session) -> Value {
    let snap = s.api.store.snapshot();
    let list: Vec<Value> = snap
        .devices
        .iter()
        .map(|(d, available)| {
            let entities: Vec<&str> = snap
                .entities
                .iter()
                .filter(|(e, _)| e.device_id == d.id)
                .map(|(e, _)| e.entity_id.as_str())
                .collect();
            json!({
                "id": d.id,
                "name": d.name,
                "manufacturer": d.manufacturer,
                "model": d.model,
                "sw_version": d.sw_version,
                "via_device": d.via_device,
                "available": available,
                "entities": entities,
            })
        })
        .collect();
    Value::Array(list)
}

/// Parses an RFC 3339 time into ms since the epoch.
pub fn parse_time(text: &str, field: &str) -> Result<i64, Failure> {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| {
            Failure::from(format!(
                "expected an RFC 3339 time like 2026-11-21T10:00:00+00:00 ({e}) @ data['{field}']"
            ))
        })
}

fn history(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["entity_id", "start_time", "end_time", "kind"])?;
    let entity_id = f.required_str("entity_id")?.to_string();
    let start = parse_time(f.required_str("start_time")?, "start_time")?;
    let end = match f.str("end_time")? {
        Some(t) => parse_time(t, "end_time")?,
        None => s.api.store.clock().now_ms(),
    };
    if end < start {
        return Err(Failure::from(
            "end_time is before start_time @ data['end_time']".to_string(),
        ));
    }
    let kind = match f.str("kind")?.unwrap_or("samples") {
        k @ ("samples" | "states" | "statistics") => k.to_string(),
        other => {
            return Err(Failure::from(format!(
                "expected samples, states or statistics, got `{other}` @ data['kind']"
            )));
        }
    };
    let recorder = s.api.recorder.clone();
    if recorder.is_none() && kind != "samples" {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            format!(
                "`{kind}` history needs the recorder, which is off ([recorder] enabled = false)"
            ),
        ));
    }
    // The recorder reads a disk: off the connection's loop, like calls.
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let (store, conn, id) = (s.api.store.clone(), s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    s.calls.spawn(async move {
        let _permit = permit;
        let q = tokio::task::spawn_blocking(move || {
            history_query(&store, recorder.as_deref(), &entity_id, start, end, &kind)
        })
        .await
        .unwrap_or_else(|e| {
            Err(Failure::new(
                protocol::ERR_HOME_ASSISTANT_ERROR,
                format!("history query failed: {e}"),
            ))
        });
        match q {
            Ok(v) => conn.send(protocol::result(id, v)),
            Err(f) => conn.send(protocol::error(json!(id), f.code, &f.message)),
        };
    });
    Ok(())
}

/// The answer of `hearth/history` (blocking: reads the database).
fn history_query(
    store: &crate::entity::EntityStore,
    recorder: Option<&crate::recorder::Recorder>,
    entity_id: &str,
    start: i64,
    end: i64,
    kind: &str,
) -> Result<Value, Failure> {
    let db_failure = |e: crate::recorder::RecorderError| {
        Failure::new(protocol::ERR_HOME_ASSISTANT_ERROR, e.to_string())
    };
    let known = store.spec(entity_id).is_some()
        || match recorder {
            Some(r) => r.reader().knows(entity_id).map_err(db_failure)?,
            None => false,
        };
    if !known {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            format!("entity `{entity_id}` not found"),
        ));
    }
    let source = if recorder.is_some() {
        "recorder"
    } else {
        "memory"
    };
    let list: Vec<Value> = match (kind, recorder) {
        ("states", Some(r)) => {
            let q = crate::recorder::query::StatesQuery {
                include_start_state: true,
                significant_only: false,
                no_attributes: false,
            };
            r.reader()
                .states(entity_id, start, end.saturating_add(1), q)
                .map_err(db_failure)?
                .iter()
                .map(crate::recorder::period::full)
                .collect()
        }
        ("statistics", Some(r)) => r
            .reader()
            .statistics(entity_id, start, end.saturating_add(1))
            .map_err(db_failure)?
            .into_iter()
            .map(|h| {
                json!({"start": iso8601(h.start_ms), "mean": h.mean, "min": h.min,
                       "max": h.max, "state": h.state, "sum": h.sum})
            })
            .collect(),
        _ => store
            .history(entity_id, start, end)
            .into_iter()
            .map(|(t, v)| json!({"time": iso8601(t), "value": v}))
            .collect(),
    };
    Ok(json!({"entity_id": entity_id, "source": source, kind: list}))
}

/// An alert as the API shows it: its fields plus readable times.
fn alert_json(a: &crate::alerts::Alert) -> Value {
    let mut v = json!(a);
    v["first_seen"] = json!(iso8601(a.first_seen_ms));
    v["last_seen"] = json!(iso8601(a.last_seen_ms));
    v
}

fn alerts_list(s: &Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["active_only"])?;
    let active_only = f.bool("active_only")?;
    let list: Vec<Value> = s
        .api
        .alerts
        .list()
        .iter()
        .filter(|a| a.active || !active_only)
        .map(alert_json)
        .collect();
    s.conn.send(protocol::result(cmd.id, Value::Array(list)));
    Ok(())
}

fn alerts_acknowledge(s: &Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["alert_id"])?;
    let id = f.required_str("alert_id")?;
    let alert = s
        .api
        .alerts
        .acknowledge(id)
        .map_err(|e| Failure::new(ERR_NOT_FOUND, e.to_string()))?;
    s.conn.send(protocol::result(cmd.id, alert_json(&alert)));
    Ok(())
}
