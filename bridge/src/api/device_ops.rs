//! Devices found on the network ([`crate::lan`]) as requests with JSON
//! arguments, shared by the WebSocket API (`hearth/devices/pending|adopt`),
//! MQTT requests (`<base>/bridge/request/device/<op>`) and so the CLI
//! (`hearth device pending|adopt`):
//!
//! | op | arguments | result |
//! |---|---|---|
//! | `pending` | — | `[{id, kind, address, model, name, mac, firmware, found_by, first_seen, last_seen, …}]` |
//! | `adopt` | `id` (`device_id` over the WebSocket API, where `id` is the message's), `name`?, `options`? (the table's driver keys; `options.id` renames the device) | `{id, pending_id, kind, name, config_file}` |
//!
//! Adopting an id that is not pending, or a device already configured, is
//! refused with the reason; so is every op while `[lan_discovery]` is off.

use super::calls::Failure;
use super::websocket::protocol::{ERR_HOME_ASSISTANT_ERROR, ERR_INVALID_FORMAT, ERR_NOT_FOUND};
use crate::lan::{Lan, adopt::AdoptRequest};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Pending,
    Adopt,
}

impl Op {
    pub const ALL: [(&'static str, Op); 2] = [("pending", Op::Pending), ("adopt", Op::Adopt)];

    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().find(|(n, _)| *n == name).map(|(_, op)| *op)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoArgs {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AdoptArgs {
    /// `device_id` over the WebSocket API, where `id` is the message's.
    #[serde(alias = "device_id")]
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
}

fn args<T: serde::de::DeserializeOwned>(op: &str, args: Map<String, Value>) -> Result<T, Failure> {
    serde_json::from_value(Value::Object(args)).map_err(|e| {
        Failure::new(
            ERR_INVALID_FORMAT,
            format!("device {op} request: {e} (expected {{\"id\": \"…\", \"name\"?: \"…\", \"options\"?: {{…}}}})"),
        )
    })
}

/// Runs one operation.
pub async fn run(
    lan: Option<Arc<Lan>>,
    op: Op,
    request: Map<String, Value>,
) -> Result<Value, Failure> {
    let lan = lan.ok_or_else(|| {
        Failure::new(
            ERR_NOT_FOUND,
            "LAN discovery is off: set `[lan_discovery] enabled = true` in the config file",
        )
    })?;
    match op {
        Op::Pending => {
            args::<NoArgs>("pending", request)?;
            Ok(lan.pending.to_json())
        }
        Op::Adopt => {
            let a: AdoptArgs = args("adopt", request)?;
            if lan.pending.get(&a.id).is_none() {
                let ids: Vec<String> = lan.pending.list().into_iter().map(|d| d.id).collect();
                return Err(Failure::new(
                    ERR_NOT_FOUND,
                    format!("no pending device `{}`; pending: {ids:?}", a.id),
                ));
            }
            let req = AdoptRequest {
                name: a.name,
                options: a.options.unwrap_or_default(),
            };
            lan.adopt(&a.id, req)
                .await
                .map_err(|e| Failure::new(ERR_HOME_ASSISTANT_ERROR, e))
        }
    }
}
