//! The Node-RED companion's commands (hass-node-red's `websocket.py`), for
//! node-red-contrib-home-assistant-websocket: `nodered/version`,
//! `nodered/discovery`, `nodered/entity`, `nodered/entity/update_config`,
//! `nodered/webhook`, `nodered/device/remove`. Device actions and
//! triggers and sentences answer `not_supported`. The entities and
//! webhooks themselves live in [`crate::nodered`].

use super::commands::Outcome;
use super::protocol::{self, Command, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::nodered::{Discovery, ERR_NOT_SUPPORTED, NodeRed, Sink};
use serde_json::{Value, json};
use std::sync::Arc;

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        "nodered/version" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            s.conn
                .send(protocol::result(cmd.id, json!(crate::nodered::VERSION)));
        }),
        "nodered/discovery" => discovery(s, cmd),
        "nodered/entity" => entity(s, cmd),
        "nodered/entity/update_config" => update_config(s, cmd),
        "nodered/webhook" => webhook(s, cmd),
        "nodered/device/remove" => device_remove(s, cmd),
        "nodered/device/action"
        | "nodered/device/trigger"
        | "nodered/sentence"
        | "nodered/sentence_response" => Err(Failure::new(
            ERR_NOT_SUPPORTED,
            format!(
                "{} is not supported by Hearth's Node-RED companion (Hearth has no device automations or Assist); use the action and trigger-state nodes",
                cmd.kind
            ),
        )),
        _ => return None,
    })
}

/// Sends events on the subscription `id` of this connection.
fn sink(s: &Session, id: u64) -> Sink {
    let conn = s.conn.clone();
    Arc::new(move |event| {
        conn.send(protocol::event(id, event));
    })
}

/// Runs `on_end` when the subscription ends (`unsubscribe_events`, or the
/// connection closes: either aborts the task, which drops the guard).
fn subscription(s: &mut Session, id: u64, on_end: impl FnOnce() + Send + 'static) {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    let guard = Guard(Some(on_end));
    let task = tokio::spawn(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
    });
    if let Some(old) = s.subscriptions.insert(id, task.abort_handle()) {
        old.abort();
    }
}

fn discovery(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(
        &cmd.msg,
        &[
            "component",
            "server_id",
            "node_id",
            "config",
            "state",
            "attributes",
            "remove",
            "device_info",
            "device_trigger",
            "sub_type",
        ],
    )?;
    let d = Discovery {
        server_id: f.required_str("server_id")?.to_string(),
        node_id: f.required_str("node_id")?.to_string(),
        component: f.required_str("component")?.to_string(),
        config: f.object("config")?.cloned().unwrap_or_default(),
        state: cmd.msg.get("state").cloned(),
        attributes: f.object("attributes")?.cloned(),
        remove: cmd.msg.get("remove").cloned(),
        device_info: f.object("device_info")?.cloned(),
    };
    let (server, node) = (d.server_id.clone(), d.node_id.clone());
    let nodered: Arc<NodeRed> = s.api.nodered.clone();
    let token = nodered.discover(d, Some(sink(s, cmd.id)))?;
    s.conn.send(protocol::result(cmd.id, Value::Null));
    if let Some(token) = token {
        subscription(s, cmd.id, move || nodered.detach(&server, &node, token));
    }
    Ok(())
}

fn entity(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["server_id", "node_id", "state", "attributes"])?;
    let server = f.required_str("server_id")?;
    let node = f.required_str("node_id")?;
    let Some(state) = cmd.msg.get("state") else {
        return Err(Failure::from(
            "required key not provided @ data['state']".to_string(),
        ));
    };
    let attributes = f.object("attributes")?.cloned().unwrap_or_default();
    if !s.api.nodered.update(server, node, state, attributes)? {
        tracing::debug!(
            "nodered/entity for node {node} of server {server}, which is not registered"
        );
    }
    s.conn.send(protocol::result(cmd.id, Value::Null));
    Ok(())
}

fn update_config(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["server_id", "node_id", "config"])?;
    let server = f.required_str("server_id")?;
    let node = f.required_str("node_id")?;
    let config = f.object("config")?.cloned().unwrap_or_default();
    s.api.nodered.update_config(server, node, &config)?;
    s.conn.send(protocol::result(cmd.id, Value::Null));
    Ok(())
}

fn webhook(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(
        &cmd.msg,
        &[
            "server_id",
            "name",
            "webhook_id",
            "allowed_methods",
            "local_only",
        ],
    )?;
    f.required_str("server_id")?;
    f.required_str("name")?;
    let webhook_id = f.required_str("webhook_id")?.to_string();
    if webhook_id.is_empty() {
        return Err(Failure::from(
            "webhook_id must not be empty @ data['webhook_id']".to_string(),
        ));
    }
    let allowed = match f.strings("allowed_methods")? {
        None => None,
        Some(methods) => {
            let mut upper: Vec<String> = Vec::new();
            for m in methods {
                let m = m.to_uppercase();
                if !matches!(m.as_str(), "GET" | "HEAD" | "POST" | "PUT") {
                    return Err(Failure::from(format!(
                        "value must be one of ['GET', 'HEAD', 'POST', 'PUT'] @ data['allowed_methods']: {m}"
                    )));
                }
                if !upper.contains(&m) {
                    upper.push(m);
                }
            }
            Some(upper)
        }
    };
    // HA: `vol.Optional("local_only")`, a boolean; only `true` limits.
    let local_only = match cmd.msg.get("local_only") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Failure::from(
                "expected bool for dictionary value @ data['local_only']".to_string(),
            ));
        }
    };
    let nodered = s.api.nodered.clone();
    let token = nodered.hook(&webhook_id, allowed, local_only, sink(s, cmd.id))?;
    s.conn.send(protocol::result(cmd.id, Value::Null));
    subscription(s, cmd.id, move || nodered.unhook(&webhook_id, token));
    Ok(())
}

fn device_remove(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["node_id", "config"])?;
    f.required_str("node_id")?;
    // The companion detaches the device's entities and removes the device;
    // Hearth keeps entities on devices, so they stay where they are until
    // Node-RED removes them (`remove` in `nodered/discovery`).
    s.conn.send(protocol::result(cmd.id, Value::Null));
    Ok(())
}
