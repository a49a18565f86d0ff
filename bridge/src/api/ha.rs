//! Home Assistant's JSON shapes for states, events, services and config,
//! shared by the WebSocket and REST APIs. Sources: HA core
//! `homeassistant/core.py` (`State.as_dict`, `as_compressed_state`),
//! `components/websocket_api/messages.py` (`_state_diff`) and the
//! developer docs' "WebSocket API" and "REST API" pages.

use crate::clock::iso8601;
use crate::entity::service::{FieldKind, SERVICES};
use crate::entity::{Context, State, StateChanged};
use serde_json::{Map, Value, json};

/// The HA release whose protocol Hearth speaks. Clients pick code paths by
/// it: home-assistant-js-websocket uses `subscribe_entities` from 2022.4
/// and sends `supported_features` from 2022.9; Node-RED's HA nodes refuse
/// anything older than their minimum (2023.x); device-based MQTT discovery
/// is 2024.11. Everything those paths need is implemented here, so Hearth
/// reports 2025.1.0 (HA's `YYYY.M.P` form), newer than all of them.
pub const HA_VERSION: &str = "2025.1.0";

pub fn context(c: &Context) -> Value {
    json!({"id": c.id, "parent_id": c.parent_id, "user_id": c.user_id})
}

/// `State.as_dict()`.
pub fn state(s: &State) -> Value {
    let updated = iso8601(s.last_updated);
    json!({
        "entity_id": s.entity_id,
        "state": s.state,
        "attributes": s.attributes,
        "last_changed": iso8601(s.last_changed),
        // Hearth records a report only when something changed.
        "last_reported": updated,
        "last_updated": updated,
        "context": context(&s.context),
    })
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// A context as the compressed formats carry it: the bare id when it has no
/// parent or user.
fn compressed_context(c: &Context) -> Value {
    if c.parent_id.is_none() && c.user_id.is_none() {
        Value::String(c.id.clone())
    } else {
        context(c)
    }
}

/// `State.as_compressed_state` (`subscribe_entities`' `a` entries).
pub fn compressed_state(s: &State) -> Value {
    let mut m = Map::new();
    m.insert("s".into(), s.state.clone().into());
    m.insert("a".into(), Value::Object(s.attributes.clone()));
    m.insert("c".into(), compressed_context(&s.context));
    m.insert("lc".into(), seconds(s.last_changed).into());
    if s.last_updated != s.last_changed {
        m.insert("lu".into(), seconds(s.last_updated).into());
    }
    Value::Object(m)
}

/// `_state_diff`: `{"+": changed parts, "-": {"a": removed attribute keys}}`.
pub fn state_diff(old: &State, new: &State) -> Value {
    let mut add = Map::new();
    if old.state != new.state {
        add.insert("s".into(), new.state.clone().into());
    }
    if old.last_changed != new.last_changed {
        add.insert("lc".into(), seconds(new.last_changed).into());
    } else if old.last_updated != new.last_updated {
        add.insert("lu".into(), seconds(new.last_updated).into());
    }
    let (oc, nc) = (&old.context, &new.context);
    let mut ctx = Map::new();
    if oc.parent_id != nc.parent_id {
        ctx.insert("parent_id".into(), json!(nc.parent_id));
    }
    if oc.user_id != nc.user_id {
        ctx.insert("user_id".into(), json!(nc.user_id));
    }
    if oc.id != nc.id {
        if ctx.is_empty() {
            add.insert("c".into(), nc.id.clone().into());
        } else {
            ctx.insert("id".into(), nc.id.clone().into());
        }
    }
    if !ctx.is_empty() {
        add.insert("c".into(), Value::Object(ctx));
    }
    let mut diff = Map::new();
    if old.attributes != new.attributes {
        let changed: Map<String, Value> = new
            .attributes
            .iter()
            .filter(|(k, v)| old.attributes.get(*k) != Some(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !changed.is_empty() {
            add.insert("a".into(), Value::Object(changed));
        }
        let removed: Vec<&String> = old
            .attributes
            .keys()
            .filter(|k| !new.attributes.contains_key(*k))
            .collect();
        if !removed.is_empty() {
            diff.insert("-".into(), json!({"a": removed}));
        }
    }
    diff.insert("+".into(), Value::Object(add));
    Value::Object(diff)
}

/// An event as HA serialises it (`Event.as_dict`).
pub fn event(event_type: &str, data: Value, ctx: &Context, time_fired_ms: i64) -> Value {
    json!({
        "event_type": event_type,
        "data": data,
        "origin": "LOCAL",
        "time_fired": iso8601(time_fired_ms),
        "context": context(ctx),
    })
}

/// A `state_changed` event; `now_ms` dates a removal (no new state).
pub fn state_changed(ev: &StateChanged, now_ms: i64) -> Value {
    let (ctx, time) = match &ev.new_state {
        Some(n) => (n.context.clone(), n.last_updated),
        None => (Context::default(), now_ms),
    };
    event(
        "state_changed",
        json!({
            "entity_id": ev.entity_id,
            "old_state": ev.old_state.as_ref().map(state),
            "new_state": ev.new_state.as_ref().map(state),
        }),
        &ctx,
        time,
    )
}

fn title(service: &str) -> String {
    let mut s = service.replace('_', " ");
    if let Some(first) = s.get(0..1) {
        let upper = first.to_uppercase();
        s.replace_range(0..1, &upper);
    }
    s
}

/// `get_services`: `{domain: {service: {name, description, fields, target}}}`,
/// exactly the services the router handles.
pub fn services() -> Value {
    let mut domains = Map::new();
    for def in SERVICES {
        let fields: Map<String, Value> = def
            .fields
            .iter()
            .map(|f| {
                let selector = match f.kind {
                    FieldKind::Number | FieldKind::Float => json!({"number": {"mode": "box"}}),
                    FieldKind::Text => json!({"text": {}}),
                };
                (
                    f.name.to_string(),
                    json!({
                        "name": title(f.name),
                        "description": f.description,
                        "required": f.required,
                        "selector": selector,
                    }),
                )
            })
            .collect();
        let entry = json!({
            "name": title(def.service),
            "description": format!("{} on the targeted {} entities", title(def.service), def.domain),
            "fields": fields,
            "target": {"entity": [{"domain": [def.domain]}]},
        });
        domains
            .entry(def.domain)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("object")
            .insert(def.service.into(), entry);
    }
    Value::Object(domains)
}

/// `get_config` (`Config.as_dict`), for a bridge with no location.
pub fn config(components: Vec<String>, config_dir: &str) -> Value {
    json!({
        "latitude": 0.0,
        "longitude": 0.0,
        "elevation": 0,
        "radius": 100,
        "unit_system": {
            "length": "km",
            "accumulated_precipitation": "mm",
            "area": "m²",
            "mass": "g",
            "pressure": "Pa",
            "temperature": "°C",
            "volume": "L",
            "wind_speed": "m/s",
        },
        "location_name": "Hearth",
        "time_zone": "UTC",
        "components": components,
        "config_dir": config_dir,
        "allowlist_external_dirs": [],
        "allowlist_external_urls": [],
        "version": HA_VERSION,
        "hearth_version": env!("CARGO_PKG_VERSION"),
        "config_source": "yaml",
        "recovery_mode": false,
        "safe_mode": false,
        "state": "RUNNING",
        "external_url": null,
        "internal_url": null,
        "currency": "EUR",
        "country": null,
        "language": "en",
        "debug": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(state: &str, attrs: Value, lc: i64, lu: i64, ctx: &str) -> State {
        State {
            entity_id: "sensor.t".into(),
            state: state.into(),
            attributes: attrs.as_object().unwrap().clone(),
            last_changed: lc,
            last_updated: lu,
            context: Context {
                id: ctx.into(),
                parent_id: None,
                user_id: None,
            },
        }
    }

    #[test]
    fn compressed_state_omits_lu_when_equal() {
        let s = st(
            "21",
            json!({"unit_of_measurement": "°C"}),
            1_000,
            1_000,
            "C1",
        );
        assert_eq!(
            compressed_state(&s),
            json!({"s": "21", "a": {"unit_of_measurement": "°C"}, "c": "C1", "lc": 1.0})
        );
        let s = st("21", json!({}), 1_000, 2_500, "C1");
        assert_eq!(compressed_state(&s)["lu"], json!(2.5));
    }

    #[test]
    fn diff_follows_ha() {
        let old = st("21", json!({"a": 1, "b": 2}), 1_000, 1_000, "C1");
        let new = st("22", json!({"a": 1, "c": 3}), 2_000, 2_000, "C2");
        assert_eq!(
            state_diff(&old, &new),
            json!({"+": {"s": "22", "lc": 2.0, "c": "C2", "a": {"c": 3}}, "-": {"a": ["b"]}})
        );
        // Attributes only: last_updated moves, last_changed does not.
        let new = st("21", json!({"a": 2, "b": 2}), 1_000, 3_000, "C1");
        assert_eq!(
            state_diff(&old, &new),
            json!({"+": {"lu": 3.0, "a": {"a": 2}}})
        );
        let mut with_user = new.clone();
        with_user.context = Context {
            id: "C3".into(),
            parent_id: None,
            user_id: Some("tok".into()),
        };
        assert_eq!(
            state_diff(&old, &with_user)["+"]["c"],
            json!({"user_id": "tok", "id": "C3"})
        );
    }

    #[test]
    fn services_describe_the_router_table() {
        let s = services();
        assert_eq!(
            s["climate"]["set_temperature"]["fields"]["temperature"]["required"],
            json!(true)
        );
        assert_eq!(
            s["switch"]["toggle"]["target"],
            json!({"entity": [{"domain": ["switch"]}]})
        );
        let count: usize = s
            .as_object()
            .unwrap()
            .values()
            .map(|d| d.as_object().unwrap().len())
            .sum();
        assert_eq!(count, SERVICES.len());
    }
}
