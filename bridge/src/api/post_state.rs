//! `POST /api/states/<entity_id>` (HA's REST API, developers.home-assistant.io
//! "REST API"): a script sets a state, `{"state": "87", "attributes": {…}}`.
//!
//! As HA: 201 Created with `Location: /api/states/<entity_id>` for a new
//! entity, 200 for an update, the state object as the body; 400 with a
//! message for a bad entity id or body. Unlike HA, which lets a posted
//! state overwrite any entity until its integration writes again, Hearth
//! refuses a state for an entity it owns (a driver's, a plugin's, a
//! mirrored one): their source's report is the truth Hearth acts on.
//!
//! Posted entities land in the entity store (plugins read them, the
//! recorder records them) under a device of their own owned by [`OWNER`],
//! a foreign owner: Hearth does not drive them, and does not announce them
//! to HA. Only `sensor` and `binary_sensor` ids are accepted (the domains
//! a reading has); `unit_of_measurement`, `device_class` and `state_class`
//! among the attributes describe the entity as a discovery config would.

use super::Api;
use super::auth::TokenInfo;
use super::rest::json;
use crate::entity::{Component, Context, Device, EntitySpec};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};

/// Owner of posted entities' devices.
pub const OWNER: &str = "foreign:rest";

/// HA's `valid_entity_id`: `<domain>.<object_id>`, each `[a-z0-9_]+`,
/// neither starting nor ending with `_`, no `__`.
pub fn valid_entity_id(id: &str) -> bool {
    let Some((domain, object)) = id.split_once('.') else {
        return false;
    };
    let part = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !p.starts_with('_')
            && !p.ends_with('_')
    };
    part(domain) && part(object) && !id[1..].contains("__")
}

fn bad(msg: &str) -> Response<Full<Bytes>> {
    json(StatusCode::BAD_REQUEST, json!({"message": msg}))
}

/// Answers one `POST /api/states/<entity_id>`.
pub fn answer(
    api: &Api,
    token: &TokenInfo,
    entity_id: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    if !valid_entity_id(entity_id) {
        return bad("Invalid entity ID specified.");
    }
    let data: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return bad("Data should be a JSON object."),
        Err(_) => return bad("Invalid JSON specified."),
    };
    let state = match data.get("state") {
        None | Some(Value::Null) => return bad("No state specified."),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Some(_) => return bad("state must be a string (or a number)."),
    };
    let attributes = match data.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return bad("attributes must be a JSON object."),
    };
    let (domain, object) = entity_id.split_once('.').unwrap_or_default();
    let component = match Component::parse(domain) {
        Some(c @ (Component::Sensor | Component::BinarySensor)) => c,
        _ => {
            return bad(&format!(
                "{entity_id}: domain `{domain}` is not accepted here (sensor or binary_sensor: a script posts readings, Hearth drives its own devices)."
            ));
        }
    };
    let store = &api.store;
    let existing = store.spec(entity_id);
    if let Some(spec) = &existing {
        let owner = store.device_owner(&spec.device_id).unwrap_or_default();
        if owner != OWNER {
            let whose = match owner.as_str() {
                crate::discovery::mirror::OWNER => {
                    "mirrored from its MQTT discovery config".to_string()
                }
                "plugins" => "a plugin's".to_string(),
                other => format!("driven by Hearth (`{other}`)"),
            };
            return bad(&format!(
                "{entity_id} is {whose}: its state is what its source reports. HA would let a posted state overwrite it until the next report; Hearth keeps its sources' truth, so post to an entity id of your own."
            ));
        }
    }
    let text_attr = |k: &str| attributes.get(k).and_then(Value::as_str).map(String::from);
    let device_id = format!("api-{}", entity_id.replace('.', "-"));
    let spec = EntitySpec {
        entity_id: entity_id.into(),
        device_id: device_id.clone(),
        key: object.into(),
        name: None,
        component,
        device_class: text_attr("device_class"),
        unit: text_attr("unit_of_measurement"),
        state_class: text_attr("state_class"),
        entity_category: None,
        climate: None,
        event_types: Vec::new(),
        input: None,
        icon: None,
    };
    let registered = store
        .upsert_device(
            OWNER,
            Device {
                id: device_id,
                name: object.into(),
                manufacturer: String::new(),
                model: "REST API".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .and_then(|()| store.upsert_entity(spec));
    if let Err(e) = registered {
        return bad(&format!("{entity_id}: {e}"));
    }
    // The token's id is the change's user, as HA's context.
    let ctx = Context::new(Some(token.id.clone()));
    store.expect_change(entity_id, &ctx, attributes.keys().cloned().collect());
    let set = store.set_state(entity_id, state, attributes);
    store.forget_expected(entity_id, &ctx);
    if let Err(e) = set {
        if existing.is_none() {
            store.remove_device(&format!("api-{}", entity_id.replace('.', "-")));
        }
        return bad(&e.to_string());
    }
    let body = api.state(entity_id).unwrap_or(Value::Null);
    if existing.is_some() {
        return json(StatusCode::OK, body);
    }
    let mut resp = json(StatusCode::CREATED, body);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("/api/states/{entity_id}")) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_as_ha_validates_them() {
        for ok in ["sensor.laptop_7_battery", "sensor.a", "binary_sensor.x1"] {
            assert!(valid_entity_id(ok), "{ok}");
        }
        for bad in [
            "sensor",
            "sensor.",
            ".x",
            "Sensor.x",
            "sensor.x_",
            "sensor._x",
            "sensor.a__b",
            "sensor.a.b",
            "sensor.a-b",
            "sensor.é",
        ] {
            assert!(!valid_entity_id(bad), "{bad}");
        }
    }
}
