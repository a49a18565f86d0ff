//! Discovery configs and state payloads, as HA's MQTT integration reads them
//! (HA docs "MQTT Discovery"; platform pages `sensor`, `binary_sensor`,
//! `switch`, `climate`, `valve`, `select`, `number`).
//!
//! Device-based configs use HA's abbreviations for the top-level keys it
//! documents that way (`dev`, `o`, `cmps`, `p`); component configs use full
//! key names, which HA accepts everywhere.

use super::{Topics, units};
use crate::entity::{Component, Device, EntitySpec, InputSpec, State};
use serde_json::{Map, Value, json};

/// HA's `unique_id` and device identifier prefix.
pub const ID_PREFIX: &str = "hearth";
/// The bridge's own device id.
pub const BRIDGE_DEVICE: &str = "bridge";
/// What HA publishes on a valve's command topic for `valve.stop_valve`.
pub const VALVE_STOP: &str = "STOP";

/// The `unique_id` of a bridge with the default base topic (the API's
/// registries); discovery uses [`unique_id_in`].
pub fn unique_id(spec: &EntitySpec) -> String {
    format!("{ID_PREFIX}_{}_{}", spec.device_id, spec.key)
}

/// The `unique_id` this bridge announces (`hearth_<base>_…` with a base
/// topic other than `hearth`: [`Topics::id_prefix`]).
pub fn unique_id_in(topics: &Topics, spec: &EntitySpec) -> String {
    format!("{}_{}_{}", topics.id_prefix(), spec.device_id, spec.key)
}

pub fn device_identifier(device_id: &str) -> String {
    format!("{ID_PREFIX}_{device_id}")
}

/// `origin`: who publishes this config (HA shows it in the device page).
pub fn origin() -> Value {
    json!({
        "name": "Hearth",
        "sw_version": env!("CARGO_PKG_VERSION"),
        "support_url": "https://github.com/hearth-home/hearth",
    })
}

/// The `device` block (full key names).
pub fn device_block(topics: &Topics, device: &Device) -> Value {
    let id = |device_id: &str| format!("{}_{device_id}", topics.id_prefix());
    let mut d = json!({
        "identifiers": [id(&device.id)],
        "name": device.name,
        "manufacturer": device.manufacturer,
        "model": device.model,
    });
    if let Some(sw) = &device.sw_version {
        d["sw_version"] = json!(sw);
    }
    if let Some(via) = &device.via_device {
        d["via_device"] = json!(id(via));
    }
    d
}

/// Bridge state and, for other devices, the device's own availability;
/// an entity is available only when both say `online`.
pub fn availability(topics: &Topics, device_id: &str) -> (Value, &'static str) {
    let mut list = vec![json!({"topic": topics.bridge_state()})];
    if device_id != BRIDGE_DEVICE {
        list.push(json!({"topic": topics.availability(device_id)}));
    }
    (Value::Array(list), "all")
}

/// One entity's component config (without device/origin/availability).
/// Errors if HA would reject its unit/device-class pair.
pub fn component_config(topics: &Topics, spec: &EntitySpec) -> Result<Map<String, Value>, String> {
    let dev = spec.device_id.as_str();
    let key = spec.key.as_str();
    let mut c = Map::new();
    c.insert("unique_id".into(), json!(unique_id_in(topics, spec)));
    c.insert("default_entity_id".into(), json!(spec.entity_id));
    c.insert(
        "name".into(),
        spec.name.as_ref().map_or(Value::Null, |n| json!(n)),
    );
    c.insert(
        "json_attributes_topic".into(),
        json!(topics.attributes(dev, key)),
    );
    if let Some(cat) = &spec.entity_category {
        c.insert("entity_category".into(), json!(cat));
    }
    insert_opt(&mut c, "icon", &spec.icon);
    let state_topic = topics.state(dev, key);
    match spec.component {
        Component::Sensor => {
            units::check_sensor(
                spec.device_class.as_deref(),
                spec.unit.as_deref(),
                spec.state_class.as_deref(),
            )
            .map_err(|e| format!("{}: {e}", spec.entity_id))?;
            c.insert("state_topic".into(), json!(state_topic));
            insert_opt(&mut c, "device_class", &spec.device_class);
            insert_opt(&mut c, "unit_of_measurement", &spec.unit);
            insert_opt(&mut c, "state_class", &spec.state_class);
        }
        Component::BinarySensor => {
            units::check_binary_sensor(spec.device_class.as_deref())
                .map_err(|e| format!("{}: {e}", spec.entity_id))?;
            c.insert("state_topic".into(), json!(state_topic));
            insert_opt(&mut c, "device_class", &spec.device_class);
        }
        Component::Switch => {
            c.insert("state_topic".into(), json!(state_topic));
            c.insert("command_topic".into(), json!(topics.command(dev, key)));
            insert_opt(&mut c, "device_class", &spec.device_class);
        }
        Component::Valve => {
            // HA docs "MQTT Valve": with `reports_position` the position
            // (0–100) is published on `command_topic` (also for open/close),
            // `payload_stop` enables `valve.stop_valve`, and `state_topic`
            // takes `{"state": "opening", "position": 10}` or
            // `{"position": 10}` (see `state_payload`). `state_open` and
            // `state_closed` are not allowed with `reports_position`.
            c.insert("state_topic".into(), json!(state_topic));
            c.insert("command_topic".into(), json!(topics.command(dev, key)));
            c.insert("reports_position".into(), json!(true));
            c.insert("position_closed".into(), json!(0));
            c.insert("position_open".into(), json!(100));
            c.insert("payload_stop".into(), json!(VALVE_STOP));
            insert_opt(&mut c, "device_class", &spec.device_class);
        }
        Component::Event => {
            // HA docs "MQTT Event": `event_types` is required; the payload
            // is a JSON object with `event_type` (see `state_payload`).
            if spec.event_types.is_empty() {
                return Err(format!(
                    "{}: event entity without event_types",
                    spec.entity_id
                ));
            }
            c.insert("state_topic".into(), json!(state_topic));
            c.insert("event_types".into(), json!(spec.event_types));
        }
        Component::Select | Component::Number => input_config(&mut c, topics, spec)?,
        // HA docs "MQTT Button": a command topic only (HA keeps the time
        // of the last press itself); `payload_press` defaults to `PRESS`.
        Component::Button => {
            c.insert("command_topic".into(), json!(topics.command(dev, key)));
            insert_opt(&mut c, "device_class", &spec.device_class);
        }
        Component::Climate => {
            let climate = spec
                .climate
                .as_ref()
                .ok_or_else(|| format!("{}: climate entity without modes", spec.entity_id))?;
            let cmd = topics.command(dev, key);
            let fields = [
                ("mode_state_topic", json!(state_topic)),
                ("mode_state_template", json!("{{ value_json.mode }}")),
                ("mode_command_topic", json!(cmd)),
                (
                    "mode_command_template",
                    json!(r#"{"hvac_mode": "{{ value }}"}"#),
                ),
                ("modes", json!(climate.modes)),
                ("temperature_state_topic", json!(state_topic)),
                (
                    "temperature_state_template",
                    json!("{{ value_json.temperature }}"),
                ),
                ("temperature_command_topic", json!(cmd)),
                (
                    "temperature_command_template",
                    json!(r#"{"temperature": {{ value }}}"#),
                ),
                ("current_temperature_topic", json!(state_topic)),
                (
                    "current_temperature_template",
                    json!("{{ value_json.current_temperature }}"),
                ),
                ("action_topic", json!(state_topic)),
                ("action_template", json!("{{ value_json.action }}")),
                ("min_temp", json!(climate.min_temp)),
                ("max_temp", json!(climate.max_temp)),
                ("temp_step", json!(climate.temp_step)),
                ("temperature_unit", json!("C")),
                ("precision", json!(0.1)),
            ];
            c.extend(fields.into_iter().map(|(k, v)| (k.to_string(), v)));
        }
    }
    Ok(c)
}

/// HA docs "MQTT Select": `options` (required), the option as the state
/// and command payload. "MQTT Number": `min`, `max`, `step`, `mode`,
/// `unit_of_measurement`, the number as the state and command payload.
fn input_config(
    c: &mut Map<String, Value>,
    topics: &Topics,
    spec: &EntitySpec,
) -> Result<(), String> {
    let (dev, key) = (spec.device_id.as_str(), spec.key.as_str());
    c.insert("state_topic".into(), json!(topics.state(dev, key)));
    c.insert("command_topic".into(), json!(topics.command(dev, key)));
    match (&spec.input, spec.component) {
        (Some(InputSpec::Select { options }), Component::Select) if !options.is_empty() => {
            c.insert("options".into(), json!(options));
        }
        (
            Some(InputSpec::Number {
                min,
                max,
                step,
                mode,
            }),
            Component::Number,
        ) => {
            c.insert("min".into(), json!(min));
            c.insert("max".into(), json!(max));
            c.insert("step".into(), json!(step));
            c.insert("mode".into(), json!(mode));
            insert_opt(c, "unit_of_measurement", &spec.unit);
            insert_opt(c, "device_class", &spec.device_class);
        }
        _ => {
            return Err(format!(
                "{}: {} entity without its options or range",
                spec.entity_id,
                spec.component.as_str()
            ));
        }
    }
    Ok(())
}

fn insert_opt(c: &mut Map<String, Value>, key: &str, v: &Option<String>) {
    if let Some(v) = v {
        c.insert(key.into(), json!(v));
    }
}

/// `homeassistant/device/<id>/config`: the device, its availability and all
/// its components. `removed` lists (key, platform) of components to delete
/// (HA removes a component whose config is only `{"p": platform}`).
pub fn device_config(
    topics: &Topics,
    device: &Device,
    specs: &[&EntitySpec],
    removed: &[(String, Component)],
) -> (Value, Vec<String>) {
    let mut cmps = Map::new();
    let mut errors = Vec::new();
    for spec in specs {
        match component_config(topics, spec) {
            Ok(mut c) => {
                c.insert("p".into(), json!(spec.component.as_str()));
                cmps.insert(spec.key.clone(), Value::Object(c));
            }
            Err(e) => errors.push(e),
        }
    }
    for (key, component) in removed {
        cmps.entry(key.clone())
            .or_insert_with(|| json!({"p": component.as_str()}));
    }
    let (avty, mode) = availability(topics, &device.id);
    let mut dev = device_block(topics, device);
    // Device-based discovery documents the abbreviated device keys.
    abbreviate(&mut dev);
    let config = json!({
        "dev": dev,
        "o": origin(),
        "cmps": cmps,
        "availability": avty,
        "availability_mode": mode,
        "qos": 1,
    });
    (config, errors)
}

fn abbreviate(dev: &mut Value) {
    let Some(obj) = dev.as_object_mut() else {
        return;
    };
    for (long, short) in [
        ("identifiers", "ids"),
        ("manufacturer", "mf"),
        ("model", "mdl"),
        ("sw_version", "sw"),
    ] {
        if let Some(v) = obj.remove(long) {
            obj.insert(short.into(), v);
        }
    }
}

/// `homeassistant/<component>/<device>/<key>/config` (per-entity mode).
pub fn entity_config(topics: &Topics, device: &Device, spec: &EntitySpec) -> Result<Value, String> {
    let mut c = component_config(topics, spec)?;
    let (avty, mode) = availability(topics, &device.id);
    c.insert("device".into(), device_block(topics, device));
    c.insert("origin".into(), origin());
    c.insert("availability".into(), avty);
    c.insert("availability_mode".into(), json!(mode));
    c.insert("qos".into(), json!(1));
    Ok(Value::Object(c))
}

/// The state-topic payload for an entity's state; `None` when there is
/// nothing HA can show (unknown or unavailable: availability covers those).
pub fn state_payload(spec: &EntitySpec, state: &State) -> Option<String> {
    if matches!(state.state.as_str(), "unknown" | "unavailable")
        && spec.component != Component::Climate
    {
        return None;
    }
    match spec.component {
        Component::Sensor => {
            if spec.unit.is_some() && state.number().is_none() {
                return None; // HA would fail to parse a numeric sensor
            }
            Some(state.state.clone())
        }
        Component::Select => Some(state.state.clone()),
        Component::Number => state.number().map(|_| state.state.clone()),
        Component::BinarySensor | Component::Switch => match state.state.as_str() {
            "on" => Some("ON".into()),
            "off" => Some("OFF".into()),
            _ => None,
        },
        Component::Valve => {
            // HA resets `opening`/`closing` on a position-only update (at
            // 0 and 100 always; at intermediate positions since HA core
            // PR #165176, 2026.4; older HA shows `opening` until the next
            // movement ends at 0 or 100).
            let position = state
                .attributes
                .get("current_position")
                .filter(|p| p.is_number())
                .cloned()
                .or(match state.state.as_str() {
                    "closed" => Some(json!(0)),
                    "open" => Some(json!(100)),
                    _ => None,
                })?;
            let v = match state.state.as_str() {
                s @ ("opening" | "closing") => json!({"state": s, "position": position}),
                _ => json!({"position": position}),
            };
            Some(v.to_string())
        }
        Component::Event => {
            // The event's data are its attributes; HA wants `event_type`
            // among them (and makes the others the event's attributes).
            let attrs = &state.attributes;
            attrs
                .get("event_type")
                .and_then(Value::as_str)
                .filter(|t| spec.event_types.iter().any(|e| e == t))?;
            Some(Value::Object(attrs.clone()).to_string())
        }
        Component::Climate => {
            let a = &state.attributes;
            let v = json!({
                "mode": state.state,
                "temperature": a.get("temperature"),
                "current_temperature": a.get("current_temperature"),
                "action": a.get("hvac_action"),
            });
            Some(v.to_string())
        }
        // HA keeps a button's state (the last press) itself.
        Component::Button => None,
    }
}

/// Attributes HA shows on the entity (json_attributes_topic); HA's own
/// climate fields are already in the state payload.
pub fn attributes_payload(spec: &EntitySpec, state: &State) -> Option<String> {
    let mut attrs = state.attributes.clone();
    if spec.component == Component::Climate {
        for k in [
            "temperature",
            "current_temperature",
            "hvac_action",
            "hvac_modes",
            "min_temp",
            "max_temp",
        ] {
            attrs.remove(k);
        }
    }
    if spec.component == Component::Valve {
        attrs.remove("current_position");
    }
    if spec.component == Component::Event {
        return None; // the event payload carries them
    }
    (!attrs.is_empty()).then(|| Value::Object(attrs).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Context;

    fn valve_state(state: &str, position: Option<u8>) -> State {
        let mut attributes = Map::new();
        if let Some(p) = position {
            attributes.insert("current_position".into(), json!(p));
        }
        State {
            entity_id: "valve.house_heating".into(),
            state: state.into(),
            attributes,
            last_changed: 0,
            last_updated: 0,
            context: Context::default(),
        }
    }

    #[test]
    fn valve_config_reports_position_as_ha_documents() {
        let spec = EntitySpec::new("house", "heating", Component::Valve).named("Heating valve");
        let c = component_config(&Topics::default(), &spec).unwrap();
        assert_eq!(c["default_entity_id"], "valve.house_heating");
        assert_eq!(c["reports_position"], true);
        assert_eq!(c["command_topic"], "hearth/house/heating/set");
        assert_eq!(c["state_topic"], "hearth/house/heating/state");
        assert_eq!(c["payload_stop"], VALVE_STOP);
        // Not allowed together with reports_position.
        for k in [
            "state_open",
            "state_closed",
            "payload_open",
            "payload_close",
        ] {
            assert!(!c.contains_key(k), "{k}");
        }
    }

    #[test]
    fn select_and_number_configs_carry_has_keys() {
        let mut select = EntitySpec::new("helpers", "select_seat", Component::Select).named("Seat");
        select.entity_id = "select.seat".into();
        select.icon = Some("mdi:account".into());
        select.input = Some(InputSpec::Select {
            options: vec!["nobody".into(), "ana".into()],
        });
        let c = component_config(&Topics::default(), &select).unwrap();
        assert_eq!(c["default_entity_id"], "select.seat");
        assert_eq!(c["command_topic"], "hearth/helpers/select_seat/set");
        assert_eq!(c["state_topic"], "hearth/helpers/select_seat/state");
        assert_eq!(c["options"], json!(["nobody", "ana"]));
        assert_eq!(c["icon"], "mdi:account");

        let mut number = EntitySpec::new("helpers", "number_limit", Component::Number);
        number.unit = Some("kWh".into());
        number.input = Some(InputSpec::Number {
            min: 0.0,
            max: 20.0,
            step: 0.5,
            mode: "slider".into(),
        });
        let c = component_config(&Topics::default(), &number).unwrap();
        for (k, v) in [
            ("min", json!(0.0)),
            ("max", json!(20.0)),
            ("step", json!(0.5)),
            ("mode", json!("slider")),
            ("unit_of_measurement", json!("kWh")),
            ("command_topic", json!("hearth/helpers/number_limit/set")),
        ] {
            assert_eq!(c[k], v, "{k}");
        }
        assert!(!c.contains_key("icon"));
        // Without its options HA would refuse the config: Hearth does first.
        select.input = None;
        assert!(component_config(&Topics::default(), &select).is_err());
        let mut st = valve_state("21.5", None);
        assert_eq!(state_payload(&number, &st).as_deref(), Some("21.5"));
        st.state = "many".into();
        assert_eq!(state_payload(&number, &st), None);
    }

    #[test]
    fn valve_state_payload_carries_position_and_motion() {
        let spec = EntitySpec::new("house", "heating", Component::Valve);
        let p = |s, pos| state_payload(&spec, &valve_state(s, pos));
        assert_eq!(
            p("opening", Some(42)).as_deref(),
            Some(r#"{"position":42,"state":"opening"}"#)
        );
        assert_eq!(p("open", Some(70)).as_deref(), Some(r#"{"position":70}"#));
        assert_eq!(p("closed", None).as_deref(), Some(r#"{"position":0}"#));
        assert_eq!(p("unknown", None), None);
        assert_eq!(
            attributes_payload(&spec, &valve_state("open", Some(70))),
            None
        );
    }
}
