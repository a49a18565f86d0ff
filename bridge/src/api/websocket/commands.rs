//! HA's core commands (`websocket_api/commands.py`): `ping`,
//! `supported_features`, `get_states`, `get_config`, `get_services`,
//! `call_service` (targets resolved by [`crate::areas::places`]),
//! `render_template` ([`crate::template::subscription`]), `fire_event`,
//! `subscribe_events`, `subscribe_entities`, `unsubscribe_events`,
//! `auth/current_user`.

use super::protocol::{self, Command, ERR_HOME_ASSISTANT_ERROR, ERR_NOT_FOUND, Fields, strings};
use super::session::Session;
use super::subscriptions;
use crate::api::calls::{self, Dialect, Failure};
use crate::api::events::BusEvent;
use crate::api::ha;
use crate::entity::Context;
use crate::entity::limits;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

pub type Outcome = Result<(), Failure>;

/// Service calls one connection may have running at once; a script cannot
/// flood drivers' queues (which MQTT and plugins share).
pub const MAX_CALLS_IN_FLIGHT: usize = 16;

/// `None` for a command this module does not know.
pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    let id = cmd.id;
    Some(match cmd.kind.as_str() {
        "ping" => Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
            s.conn.send(protocol::pong(id));
        }),
        "supported_features" => supported_features(s, cmd),
        "get_states" => answer(s, cmd, &[], |s| Value::Array(s.api.states())),
        "get_config" => answer(s, cmd, &[], |s| s.api.config()),
        "get_services" => answer(s, cmd, &[], |_| ha::services()),
        "auth/current_user" => answer(s, cmd, &[], |s| {
            json!({
                "id": s.token.id,
                "name": s.token.name,
                "is_owner": true,
                "is_admin": true,
                "credentials": [],
                "mfa_modules": [],
            })
        }),
        "call_service" => call_service(s, cmd),
        "render_template" => crate::template::subscription::handle(s, cmd),
        "fire_event" => fire_event(s, cmd),
        "subscribe_events" => subscribe_events(s, cmd),
        "subscribe_entities" => subscribe_entities(s, cmd),
        "unsubscribe_events" => unsubscribe(s, cmd),
        _ => return None,
    })
}

/// A command without parameters answered with one result.
fn answer(
    s: &Session,
    cmd: &Command,
    allowed: &[&str],
    f: impl FnOnce(&Session) -> Value,
) -> Outcome {
    Fields::new(&cmd.msg, allowed)?;
    s.conn.send(protocol::result(cmd.id, f(s)));
    Ok(())
}

fn supported_features(s: &Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["features"])?;
    let features = f.object("features")?;
    let coalesce = features
        .and_then(|m| m.get("coalesce_messages"))
        .is_some_and(|v| v.as_u64().is_some_and(|n| n > 0) || v == &Value::Bool(true));
    s.conn.coalesce.store(coalesce, Ordering::Relaxed);
    s.conn.send(protocol::result(cmd.id, Value::Null));
    Ok(())
}

/// A `call_service` command's fields, checked as HA's schema checks them.
pub struct CallRequest {
    pub domain: String,
    pub service: String,
    pub return_response: bool,
    /// `service_data` without its `entity_id` (moved to `target`).
    pub data: serde_json::Map<String, Value>,
    pub target: crate::areas::places::Target,
}

/// Reads a `call_service` command (no bridge needed: the fuzz target
/// `websocket_frame` calls it too).
pub fn call_request(cmd: &Command) -> Result<CallRequest, Failure> {
    let f = Fields::new(
        &cmd.msg,
        &[
            "domain",
            "service",
            "service_data",
            "target",
            "return_response",
        ],
    )?;
    let domain = f.required_str("domain")?.to_string();
    let service = f.required_str("service")?.to_string();
    let return_response = f.bool("return_response")?;
    let mut data = f.object("service_data")?.cloned().unwrap_or_default();
    let mut target = crate::areas::places::Target {
        entity_ids: strings(data.remove("entity_id").as_ref(), "service_data.entity_id")?
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(t) = f.object("target")? {
        for (key, value) in t {
            let ids = strings(Some(value), &format!("target.{key}"))?.unwrap_or_default();
            match key.as_str() {
                "entity_id" => target.entity_ids.extend(ids),
                "device_id" => target.device_ids.extend(ids),
                "area_id" => target.area_ids.extend(ids),
                "floor_id" => target.floor_ids.extend(ids),
                "label_id" => target.label_ids.extend(ids),
                other => {
                    return Err(Failure::from(format!(
                        "extra keys not allowed @ data['target']['{other}']"
                    )));
                }
            }
        }
    }
    Ok(CallRequest {
        domain,
        service,
        return_response,
        data,
        target,
    })
}

fn call_service(s: &mut Session, cmd: &Command) -> Outcome {
    let CallRequest {
        domain,
        service,
        return_response,
        data,
        target,
    } = call_request(cmd)?;
    // HA's async_extract_referenced_entity_ids (crate::areas::places).
    let entity_ids = s
        .api
        .places()
        .resolve(&domain, &target)
        .map_err(|m| Failure::new(ERR_NOT_FOUND, m))?;
    calls::check_service(&domain, &service, return_response)?;
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            ERR_HOME_ASSISTANT_ERROR,
            format!("{MAX_CALLS_IN_FLIGHT} service calls of this connection are still running; wait for their results"),
        )
    })?;
    let (api, token, conn, id) = (s.api.clone(), s.token.clone(), s.conn.clone(), cmd.id);
    // Calls wait for drivers (up to 10 s); the connection keeps serving.
    // They end with the session (aborted), like its subscriptions.
    while s.calls.try_join_next().is_some() {}
    s.calls.spawn(async move {
        let _permit = permit;
        let dialect = Dialect::WebSocket;
        match calls::run(&api, &token, &domain, &service, entity_ids, data, dialect).await {
            Ok(ctx) => conn.send(protocol::result(id, json!({"context": ha::context(&ctx)}))),
            Err(f) => conn.send(f.answer(id)),
        };
    });
    Ok(())
}

fn fire_event(s: &Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["event_type", "event_data"])?;
    let event_type = f.required_str("event_type")?;
    if event_type == "state_changed" {
        // Subscribers must be able to trust it: only the store fires it.
        return Err(Failure::from(
            "state_changed is fired by the bridge only; change states with call_service @ data['event_type']".to_string(),
        ));
    }
    // HA's limits (entity::limits): a type the recorder's column holds,
    // data its recorder keeps. Refused, named, never cut.
    limits::chars(event_type, limits::MAX_EVENT_TYPE_CHARS, || {
        "event_type".into()
    })
    .map_err(too_long)?;
    let data = f.object("event_data")?;
    if let Some(data) = data {
        limits::json_bytes(data, limits::MAX_EVENT_DATA_BYTES, || "event_data".into())
            .map_err(too_long)?;
    }
    let data = data.cloned().unwrap_or_default();
    let context = Context::new(Some(s.token.id.clone()));
    s.api.bus.fire(BusEvent {
        event_type: event_type.into(),
        data: Value::Object(data),
        context: context.clone(),
        time_fired_ms: s.api.store.clock().now_ms(),
    });
    s.conn.send(protocol::result(
        cmd.id,
        json!({"context": ha::context(&context)}),
    ));
    Ok(())
}

/// HA answers `MaxLengthExceeded` (a `HomeAssistantError`) with
/// `home_assistant_error`.
fn too_long(e: limits::TooLong) -> Failure {
    Failure::new(ERR_HOME_ASSISTANT_ERROR, e.to_string())
}

fn subscribe_events(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["event_type"])?;
    let event_type = f.str("event_type")?.map(str::to_string);
    // `*` is HA's MATCH_ALL.
    let event_type = event_type.filter(|t| t != "*");
    s.conn.send(protocol::result(cmd.id, Value::Null));
    let task = subscriptions::events(s, cmd.id, event_type);
    s.subscriptions.insert(cmd.id, task);
    Ok(())
}

fn subscribe_entities(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["entity_ids"])?;
    let filter = f.strings("entity_ids")?;
    let task = subscriptions::entities(s, cmd.id, filter);
    s.subscriptions.insert(cmd.id, task);
    Ok(())
}

fn unsubscribe(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["subscription"])?;
    let sub = f.u64("subscription")?;
    match s.subscriptions.remove(&sub) {
        Some(task) => {
            task.abort();
            s.conn.send(protocol::result(cmd.id, Value::Null));
            Ok(())
        }
        None => Err(Failure::new(ERR_NOT_FOUND, "Subscription not found.")),
    }
}
