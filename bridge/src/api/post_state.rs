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
//! At most [`MAX_POSTED`] entities can be created this way (400 past it).

use super::Api;
use super::auth::TokenInfo;
use super::rest::json;
use crate::entity::store::StoreError;
use crate::entity::{Component, Context, Device, EntitySpec, EntityStore};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

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

/// Entities a client may create through this endpoint, all tokens
/// together: the same order as the discovery mirror's cap
/// ([`crate::discovery::mirror::MAX_MIRRORED`]). Past it, a post creating
/// an entity is refused (400, naming the cap); posts updating one of the
/// existing entities still work.
pub const MAX_POSTED: usize = 512;

/// Serialises posts: the cap check and the creation are one step, and a
/// device is removed again only by the post that created it.
static POSTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether a post created its entity or updated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Posted {
    Created,
    Updated,
}

/// Answers one `POST /api/states/<entity_id>`.
pub fn answer(
    api: &Api,
    token: &TokenInfo,
    entity_id: &str,
    body: &Bytes,
) -> Response<Full<Bytes>> {
    let posted = match post(&api.store, &token.id, entity_id, body) {
        Ok(p) => p,
        Err(message) => return bad(&message),
    };
    let body = api.state(entity_id).unwrap_or(Value::Null);
    if posted == Posted::Updated {
        return json(StatusCode::OK, body);
    }
    let mut resp = json(StatusCode::CREATED, body);
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("/api/states/{entity_id}")) {
        resp.headers_mut().insert(hyper::header::LOCATION, v);
    }
    resp
}

/// The entities posted through this endpoint (on devices [`OWNER`] owns).
fn posted_entities(store: &EntityStore) -> usize {
    let snap = store.snapshot();
    let devices: HashSet<&str> = snap
        .devices
        .iter()
        .map(|(d, _)| d.id.as_str())
        .filter(|id| id.starts_with(DEVICE_PREFIX))
        .filter(|id| store.device_owner(id).as_deref() == Some(OWNER))
        .collect();
    snap.entities
        .iter()
        .filter(|(spec, _)| devices.contains(spec.device_id.as_str()))
        .count()
}

/// Each posted entity's device: `api-sensor-laptop_battery`.
const DEVICE_PREFIX: &str = "api-";

/// Registers the device, then the entity. A device this call created is
/// removed again when the entity is refused (its id taken meanwhile by
/// another source, a limit), so no empty device is left behind. Returns
/// whether the device was created.
fn register(store: &EntityStore, device: Device, spec: EntitySpec) -> Result<bool, StoreError> {
    let device_id = device.id.clone();
    let created = store.device_owner(&device_id).is_none();
    store.upsert_device(OWNER, device)?;
    if let Err(e) = store.upsert_entity(spec) {
        if created {
            store.remove_device(&device_id);
        }
        return Err(e);
    }
    Ok(created)
}

/// Checks a post and applies it to the store; the error is the message of
/// HA's 400 answer.
pub(crate) fn post(
    store: &EntityStore,
    user: &str,
    entity_id: &str,
    body: &Bytes,
) -> Result<Posted, String> {
    if !valid_entity_id(entity_id) {
        return Err("Invalid entity ID specified.".into());
    }
    let data: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return Err("Data should be a JSON object.".into()),
        Err(_) => return Err("Invalid JSON specified.".into()),
    };
    let state = match data.get("state") {
        None | Some(Value::Null) => return Err("No state specified.".into()),
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Some(_) => return Err("state must be a string (or a number).".into()),
    };
    let attributes = match data.get("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(a)) => a.clone(),
        Some(_) => return Err("attributes must be a JSON object.".into()),
    };
    let (domain, object) = entity_id.split_once('.').unwrap_or_default();
    let component = match Component::parse(domain) {
        Some(c @ (Component::Sensor | Component::BinarySensor)) => c,
        _ => {
            return Err(format!(
                "{entity_id}: domain `{domain}` is not accepted here (sensor or binary_sensor: a script posts readings, Hearth drives its own devices)."
            ));
        }
    };
    let _serial = POSTS.lock().unwrap_or_else(|e| e.into_inner());
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
            return Err(format!(
                "{entity_id} is {whose}: its state is what its source reports. HA would let a posted state overwrite it until the next report; Hearth keeps its sources' truth, so post to an entity id of your own."
            ));
        }
    } else if posted_entities(store) >= MAX_POSTED {
        return Err(format!(
            "{entity_id} not created: {MAX_POSTED} entities posted through the REST API exist already, Hearth's cap (MAX_POSTED). Posts to those entities still update them."
        ));
    }
    let text_attr = |k: &str| attributes.get(k).and_then(Value::as_str).map(String::from);
    let device_id = format!("{DEVICE_PREFIX}{}", entity_id.replace('.', "-"));
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
    let device = Device {
        id: device_id.clone(),
        name: object.into(),
        manufacturer: String::new(),
        model: "REST API".into(),
        sw_version: None,
        via_device: None,
    };
    let created = register(store, device, spec).map_err(|e| format!("{entity_id}: {e}"))?;
    // The token's id is the change's user, as HA's context.
    let ctx = Context::new(Some(user.to_string()));
    store.expect_change(entity_id, &ctx, attributes.keys().cloned().collect());
    let set = store.set_state(entity_id, state, attributes);
    store.forget_expected(entity_id, &ctx);
    if let Err(e) = set {
        if created {
            store.remove_device(&device_id);
        }
        return Err(e.to_string());
    }
    Ok(if existing.is_some() {
        Posted::Updated
    } else {
        Posted::Created
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::clock::Clock;

    fn body(v: Value) -> Bytes {
        Bytes::from(v.to_string())
    }

    fn device(id: &str) -> Device {
        Device {
            id: id.into(),
            name: id.into(),
            manufacturer: String::new(),
            model: "t".into(),
            sw_version: None,
            via_device: None,
        }
    }

    #[test]
    fn creations_past_the_cap_are_refused_naming_it_and_updates_still_work() {
        let store = EntityStore::new(Clock::real());
        let reading = body(json!({"state": "1"}));
        for i in 0..MAX_POSTED {
            let id = format!("sensor.p{i}");
            assert_eq!(
                post(&store, "u", &id, &reading),
                Ok(Posted::Created),
                "{id}"
            );
        }
        let e = post(&store, "u", "sensor.one_more", &reading).unwrap_err();
        assert!(
            e.contains(&MAX_POSTED.to_string()) && e.contains("cap"),
            "{e}"
        );
        assert!(store.spec("sensor.one_more").is_none());
        assert!(store.device_owner("api-sensor-one_more").is_none());
        assert_eq!(posted_entities(&store), MAX_POSTED);
        // Updates of the posted entities still work.
        let update = body(json!({"state": "2"}));
        assert_eq!(post(&store, "u", "sensor.p0", &update), Ok(Posted::Updated));
        assert_eq!(store.get("sensor.p0").unwrap().state, "2");
        // Entities of other owners do not count.
        store.upsert_device("t", device("other")).unwrap();
        let mut spec = EntitySpec::new("other", "x", Component::Sensor);
        spec.entity_id = "sensor.other_x".into();
        store.upsert_entity(spec).unwrap();
        assert_eq!(posted_entities(&store), MAX_POSTED);
    }

    #[test]
    fn a_refused_entity_leaves_no_device_behind() {
        let store = EntityStore::new(Clock::real());
        // Another foreign source holds the id (as when the mirror takes it
        // between the post's check and its registration).
        store
            .upsert_device(crate::discovery::mirror::OWNER, device("mirror-x"))
            .unwrap();
        let mut taken = EntitySpec::new("mirror-x", "x", Component::Sensor);
        taken.entity_id = "sensor.x".into();
        store.upsert_entity(taken).unwrap();
        let mut spec = EntitySpec::new("api-sensor-x", "x", Component::Sensor);
        spec.entity_id = "sensor.x".into();
        let e = register(&store, device("api-sensor-x"), spec).unwrap_err();
        assert!(matches!(e, StoreError::EntityIdTaken(..)), "{e}");
        assert!(
            store.device_owner("api-sensor-x").is_none(),
            "the device of the refused entity was left behind"
        );
        assert_eq!(store.spec("sensor.x").unwrap().device_id, "mirror-x");
        // A state refused on creation leaves nothing either.
        let long = body(json!({"state": "x".repeat(300)}));
        assert!(post(&store, "u", "sensor.long", &long).is_err());
        assert!(store.device_owner("api-sensor-long").is_none());
    }

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
