//! Hearth's own commands, under `hearth/`:
//! - `hearth/plugins/list|load|swap|unload|logs`: the plugin lifecycle, with
//!   the arguments and results of [`plugin_ops`](crate::api::plugin_ops)
//!   (e.g. `{"id": 5, "type": "hearth/plugins/swap", "name": "thermostat",
//!   "wasm": "builtin:custom-strategy"}`).
//! - `hearth/devices/list` → `[{id, name, manufacturer, model, sw_version,
//!   via_device, available, entities: [entity_id]}]`
//! - `hearth/history` `{entity_id, start_time, end_time?}` (RFC 3339) →
//!   `{entity_id, source, samples: [{time, value}]}`: numeric samples from
//!   the store's recent memory (4096 per entity) until the recorder keeps
//!   them in SQLite.

use super::commands::Outcome;
use super::protocol::{self, Command, ERR_NOT_FOUND, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::api::plugin_ops;
use crate::clock::iso8601;
use serde_json::{Value, json};

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        kind if kind.starts_with("hearth/plugins/") => {
            let op = plugin_ops::Op::parse(&kind["hearth/plugins/".len()..])?;
            plugin(s, cmd, op)
        }
        "hearth/devices/list" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            s.conn.send(protocol::result(cmd.id, devices(s)));
        }),
        "hearth/history" => history(s, cmd),
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

fn history(s: &Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["entity_id", "start_time", "end_time"])?;
    let entity_id = f.required_str("entity_id")?;
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
    if s.api.store.spec(entity_id).is_none() {
        return Err(Failure::new(
            ERR_NOT_FOUND,
            format!("entity `{entity_id}` not found"),
        ));
    }
    let samples: Vec<Value> = s
        .api
        .store
        .history(entity_id, start, end)
        .into_iter()
        .map(|(t, v)| json!({"time": iso8601(t), "value": v}))
        .collect();
    s.conn.send(protocol::result(
        cmd.id,
        json!({"entity_id": entity_id, "source": "memory", "samples": samples}),
    ));
    Ok(())
}
