//! Hearth's own commands, under `hearth/`:
//! - `hearth/plugins/list` → `[{name, plugin, version, wit, status, reads,
//!   drives, calls, faults, restarts, last_fault, skipped_events}]`
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
use crate::clock::iso8601;
use serde_json::{Value, json};

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        "hearth/plugins/list" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            let list = (s.api.plugins)();
            s.conn.send(protocol::result(cmd.id, json!(list)));
        }),
        "hearth/devices/list" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            s.conn.send(protocol::result(cmd.id, devices(s)));
        }),
        "hearth/history" => history(s, cmd),
        _ => return None,
    })
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
