//! One foreign discovery config, read the way Home Assistant reads it
//! (HA docs "MQTT Discovery" and homeassistant/components/mqtt/{discovery,
//! abbreviations,entity}.py): abbreviated keys expanded, `~` substituted
//! in topics, the entity id derived as HA derives it.
//!
//! Entity id: `default_entity_id` (HA ≥ 2025.10, `<domain>.<slug>`), else
//! `<domain>.<slug(object_id)>` (the older key), else, since the entity has
//! a name relative to its device (HA's `has_entity_name`),
//! `<domain>.<slug(device name + " " + entity name)>`; `name: null` is the
//! device's main feature (`slug(device name)`), a missing `name` is HA's
//! default (`MQTT Sensor`, `MQTT Binary sensor`). Without a device, the
//! entity name alone. `slug` is HA's `slugify`: lower case, every run of
//! other characters than `a-z0-9` becomes `_`, trimmed.

use super::template::Template;
use crate::entity::Component;
use serde_json::{Map, Value};

/// What a config topic names.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigTopic {
    pub component: String,
    pub node_id: Option<String>,
    pub object_id: String,
}

/// `<prefix>/<component>/[<node_id>/]<object_id>/config`.
pub fn parse_topic(topic: &str) -> Option<ConfigTopic> {
    let parts: Vec<&str> = topic.split('/').collect();
    let n = parts.len();
    if n < 4 || parts[n - 1] != "config" {
        return None;
    }
    // From the end: object_id, node_id (when five levels or more),
    // component; the prefix is the rest.
    let object_id = parts[n - 2].to_string();
    let (component, node_id) = if n >= 5 {
        (parts[n - 4].to_string(), Some(parts[n - 3].to_string()))
    } else {
        (parts[n - 3].to_string(), None)
    };
    Some(ConfigTopic {
        component,
        node_id,
        object_id,
    })
}

/// How several availability topics combine (HA's `availability_mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AvailabilityMode {
    /// Available when every topic says so.
    All,
    /// Available when one topic says so.
    Any,
    /// The last message on any of them decides (HA's default).
    Latest,
}

/// One availability topic and its payloads.
#[derive(Debug, Clone, PartialEq)]
pub struct Availability {
    pub topic: String,
    pub available: String,
    pub not_available: String,
    pub template: Option<Template>,
}

/// The device a foreign entity belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignDevice {
    /// Its first identifier (or connection, or the node id): the mirror's key.
    pub identifier: String,
    pub name: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub sw_version: Option<String>,
}

/// A foreign entity as its config describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    pub component: Component,
    pub entity_id: String,
    /// Entity name; `None`: the device's main feature.
    pub name: Option<String>,
    pub unique_id: Option<String>,
    pub device: Option<ForeignDevice>,
    pub state_topic: String,
    /// `Err((template, why))`: not in the supported subset; the entity
    /// stays `unknown`.
    pub template: Result<Template, (String, String)>,
    pub unit: Option<String>,
    pub device_class: Option<String>,
    pub state_class: Option<String>,
    pub entity_category: Option<String>,
    pub availability: Vec<Availability>,
    pub availability_mode: AvailabilityMode,
    /// binary_sensor: the payloads for `on` and `off` (after the template).
    pub payload_on: String,
    pub payload_off: String,
}

/// HA's abbreviations (homeassistant/components/mqtt/abbreviations.py),
/// the ones a read-only sensor can carry.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("avty", "availability"),
    ("avty_mode", "availability_mode"),
    ("avty_t", "availability_topic"),
    ("avty_tpl", "availability_template"),
    ("def_ent_id", "default_entity_id"),
    ("dev", "device"),
    ("dev_cla", "device_class"),
    ("ent_cat", "entity_category"),
    ("obj_id", "object_id"),
    ("pl_avail", "payload_available"),
    ("pl_not_avail", "payload_not_available"),
    ("pl_off", "payload_off"),
    ("pl_on", "payload_on"),
    ("stat_cla", "state_class"),
    ("stat_t", "state_topic"),
    ("t", "topic"),
    ("uniq_id", "unique_id"),
    ("unit_of_meas", "unit_of_measurement"),
    ("val_tpl", "value_template"),
];
const DEVICE_ABBREVIATIONS: &[(&str, &str)] = &[
    ("cns", "connections"),
    ("ids", "identifiers"),
    ("mf", "manufacturer"),
    ("mdl", "model"),
    ("sw", "sw_version"),
];

fn expand(obj: &mut Map<String, Value>, table: &[(&str, &str)]) {
    for (short, long) in table {
        if !obj.contains_key(*long)
            && let Some(v) = obj.remove(*short)
        {
            obj.insert((*long).into(), v);
        }
    }
}

/// `~` at the start or end of a topic is the config's base topic.
fn with_base(topic: &str, base: Option<&str>) -> String {
    match base {
        Some(b) if topic.starts_with('~') => format!("{b}{}", &topic[1..]),
        Some(b) if topic.ends_with('~') => format!("{}{b}", &topic[..topic.len() - 1]),
        _ => topic.to_string(),
    }
}

/// HA's `slugify` (see [`crate::slug::slugify`]).
pub fn slug(s: &str) -> String {
    match crate::slug::slugify(s) {
        t if t.is_empty() => "unknown".into(),
        t => t,
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn template(v: Option<&Value>) -> Result<Template, (String, String)> {
    match v.and_then(Value::as_str) {
        None => Ok(Template::identity()),
        Some(t) => Template::parse(t).map_err(|why| (t.to_string(), why)),
    }
}

/// Reads one config payload (not empty: an empty payload removes). The
/// error says what is wrong, without the topic (the caller adds it).
pub fn parse(topic: &ConfigTopic, payload: &[u8]) -> Result<Discovered, String> {
    let component = match Component::parse(&topic.component) {
        Some(c @ (Component::Sensor | Component::BinarySensor)) => c,
        _ => {
            return Err(format!(
                "component `{}` is not mirrored (only sensor and binary_sensor, read-only)",
                topic.component
            ));
        }
    };
    let mut obj = match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(o)) => o,
        Ok(_) => return Err("expected a JSON object".into()),
        Err(e) => {
            return Err(format!(
                "not JSON ({e}): {}",
                crate::broker::excerpt(payload)
            ));
        }
    };
    expand(&mut obj, ABBREVIATIONS);
    let base = obj.get("~").and_then(Value::as_str).map(String::from);
    let base = base.as_deref();
    let state_topic = obj
        .get("state_topic")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| with_base(t, base))
        .ok_or("missing `state_topic` (a string)")?;
    if !rumqttc::valid_topic(&state_topic) {
        return Err(format!(
            "`state_topic` `{state_topic}` is not a valid MQTT topic"
        ));
    }
    let device = match obj.get_mut("device") {
        Some(Value::Object(d)) => {
            expand(d, DEVICE_ABBREVIATIONS);
            let first = |k: &str| -> Option<String> {
                match d.get(k)? {
                    Value::String(s) => Some(s.clone()),
                    Value::Array(a) => a.iter().find_map(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        // connections: [["mac", "…"]]
                        Value::Array(pair) => pair
                            .iter()
                            .filter_map(Value::as_str)
                            .next_back()
                            .map(String::from),
                        _ => None,
                    }),
                    _ => None,
                }
            };
            let identifier = first("identifiers")
                .or_else(|| first("connections"))
                .or_else(|| topic.node_id.clone())
                .unwrap_or_else(|| topic.object_id.clone());
            Some(ForeignDevice {
                identifier,
                name: text(d.get("name")),
                manufacturer: text(d.get("manufacturer")),
                model: text(d.get("model")),
                sw_version: text(d.get("sw_version")),
            })
        }
        Some(Value::Null) | None => None,
        Some(_) => return Err("`device` must be an object".into()),
    };
    let name = match obj.get("name") {
        None => Some(
            match component {
                Component::BinarySensor => "MQTT Binary sensor",
                _ => "MQTT Sensor",
            }
            .to_string(),
        ),
        Some(Value::Null) => None,
        Some(v) => Some(text(Some(v)).ok_or("`name` must be a string or null")?),
    };
    let domain = component.as_str();
    let entity_id = if let Some(d) = obj.get("default_entity_id").and_then(Value::as_str) {
        let (dom, object) = d
            .split_once('.')
            .ok_or_else(|| format!("`default_entity_id` `{d}` is not `<domain>.<id>`"))?;
        if dom != domain {
            return Err(format!(
                "`default_entity_id` `{d}` is not in domain `{domain}`"
            ));
        }
        format!("{domain}.{}", slug(object))
    } else if let Some(o) = text(obj.get("object_id")) {
        format!("{domain}.{}", slug(&o))
    } else {
        let device_name = device.as_ref().and_then(|d| d.name.clone());
        let full = match (device_name, &name) {
            (Some(d), Some(n)) => format!("{d} {n}"),
            (Some(d), None) => d,
            (None, Some(n)) => n.clone(),
            (None, None) => topic.object_id.clone(),
        };
        format!("{domain}.{}", slug(&full))
    };
    let availability = availability(&obj, base)?;
    let availability_mode = match obj.get("availability_mode").and_then(Value::as_str) {
        None | Some("latest") => AvailabilityMode::Latest,
        Some("all") => AvailabilityMode::All,
        Some("any") => AvailabilityMode::Any,
        Some(other) => {
            return Err(format!(
                "`availability_mode` `{other}`: expected all, any or latest"
            ));
        }
    };
    Ok(Discovered {
        component,
        entity_id,
        name,
        unique_id: text(obj.get("unique_id")),
        device,
        state_topic,
        template: template(obj.get("value_template")),
        unit: text(obj.get("unit_of_measurement")),
        device_class: text(obj.get("device_class")),
        state_class: text(obj.get("state_class")),
        entity_category: text(obj.get("entity_category")),
        availability,
        availability_mode,
        payload_on: text(obj.get("payload_on")).unwrap_or_else(|| "ON".into()),
        payload_off: text(obj.get("payload_off")).unwrap_or_else(|| "OFF".into()),
    })
}

/// `availability_topic` or the `availability` list (HA refuses both).
fn availability(obj: &Map<String, Value>, base: Option<&str>) -> Result<Vec<Availability>, String> {
    let default_on = text(obj.get("payload_available")).unwrap_or_else(|| "online".into());
    let default_off = text(obj.get("payload_not_available")).unwrap_or_else(|| "offline".into());
    let tpl = |v: Option<&Value>| -> Result<Option<Template>, String> {
        match v.and_then(Value::as_str) {
            None => Ok(None),
            Some(t) => Template::parse(t)
                .map(Some)
                .map_err(|why| format!("availability template `{t}`: {why}")),
        }
    };
    let checked = |t: String| -> Result<String, String> {
        if rumqttc::valid_topic(&t) {
            Ok(t)
        } else {
            Err(format!(
                "availability topic `{t}` is not a valid MQTT topic"
            ))
        }
    };
    match (obj.get("availability_topic"), obj.get("availability")) {
        (Some(_), Some(_)) => Err("`availability_topic` and `availability` are exclusive".into()),
        (Some(t), None) => {
            let t = t.as_str().ok_or("`availability_topic` must be a string")?;
            Ok(vec![Availability {
                topic: checked(with_base(t, base))?,
                available: default_on,
                not_available: default_off,
                template: tpl(obj.get("availability_template"))?,
            }])
        }
        (None, Some(Value::Array(list))) => list
            .iter()
            .map(|e| {
                let mut e = e
                    .as_object()
                    .cloned()
                    .ok_or("`availability` entries must be objects")?;
                expand(&mut e, ABBREVIATIONS);
                let t = e
                    .get("topic")
                    .and_then(Value::as_str)
                    .ok_or("`availability` entry without `topic`")?;
                Ok(Availability {
                    topic: checked(with_base(t, base))?,
                    available: text(e.get("payload_available"))
                        .unwrap_or_else(|| default_on.clone()),
                    not_available: text(e.get("payload_not_available"))
                        .unwrap_or_else(|| default_off.clone()),
                    template: tpl(e.get("value_template"))?,
                })
            })
            .collect(),
        (None, Some(_)) => Err("`availability` must be a list".into()),
        (None, None) => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> ConfigTopic {
        parse_topic("homeassistant/sensor/laptop-7/laptop-7_battery/config").unwrap()
    }

    /// HASS.Agent's battery sensor, as it publishes it.
    const HASS_AGENT: &str = r#"{
        "name": "Battery",
        "unique_id": "laptop-7_battery_charge_remaining_percentage",
        "state_topic": "homeassistant/sensor/laptop-7/laptop-7_battery/state",
        "value_template": "{{ value_json.battery_charge_remaining_percentage | int }}",
        "unit_of_measurement": "%",
        "device_class": "battery",
        "state_class": "measurement",
        "availability_topic": "homeassistant/sensor/laptop-7/availability",
        "device": {"identifiers": ["hass.agent-laptop-7"], "manufacturer": "HASS.Agent Team",
                   "model": "Microsoft Windows 11", "name": "laptop-7", "sw_version": "2.1.1"}
    }"#;

    #[test]
    fn topics_with_and_without_node_id() {
        assert_eq!(
            topic(),
            ConfigTopic {
                component: "sensor".into(),
                node_id: Some("laptop-7".into()),
                object_id: "laptop-7_battery".into()
            }
        );
        let t = parse_topic("homeassistant/binary_sensor/door/config").unwrap();
        assert_eq!((t.component.as_str(), t.node_id), ("binary_sensor", None));
        assert!(parse_topic("homeassistant/sensor/x/state").is_none());
    }

    #[test]
    fn a_hass_agent_battery_sensor() {
        let d = parse(&topic(), HASS_AGENT.as_bytes()).unwrap();
        assert_eq!(d.entity_id, "sensor.laptop_7_battery");
        assert_eq!(d.name.as_deref(), Some("Battery"));
        assert_eq!(d.unit.as_deref(), Some("%"));
        assert_eq!(d.device_class.as_deref(), Some("battery"));
        assert_eq!(d.device.as_ref().unwrap().identifier, "hass.agent-laptop-7");
        assert_eq!(d.availability.len(), 1);
        assert_eq!(d.availability[0].available, "online");
        assert_eq!(
            d.template
                .unwrap()
                .render(r#"{"battery_charge_remaining_percentage": 87.0}"#),
            Ok("87".into())
        );
    }

    #[test]
    fn entity_ids_as_ha_derives_them() {
        let id = |json: &str| parse(&topic(), json.as_bytes()).map(|d| d.entity_id);
        let st = r#""state_topic": "s""#;
        assert_eq!(
            id(&format!(
                r#"{{{st}, "object_id": "Laptop 7 Battery", "name": "x"}}"#
            ))
            .unwrap(),
            "sensor.laptop_7_battery"
        );
        assert_eq!(
            id(&format!(
                r#"{{{st}, "default_entity_id": "sensor.lt7_bat", "object_id": "o"}}"#
            ))
            .unwrap(),
            "sensor.lt7_bat"
        );
        assert_eq!(
            id(&format!(
                r#"{{{st}, "name": null, "dev": {{"name": "Laptop 7"}}}}"#
            ))
            .unwrap(),
            "sensor.laptop_7"
        );
        assert_eq!(id(&format!("{{{st}}}")).unwrap(), "sensor.mqtt_sensor");
        assert_eq!(
            id(&format!(r#"{{{st}, "name": "Bätterie level"}}"#)).unwrap(),
            "sensor.b_tterie_level"
        );
        let e = id(&format!(r#"{{{st}, "default_entity_id": "switch.x"}}"#)).unwrap_err();
        assert!(e.contains("switch.x"), "{e}");
    }

    #[test]
    fn abbreviations_base_topic_and_availability_list() {
        let d = parse(
            &topic(),
            br#"{"~": "agents/lt7", "stat_t": "~/battery", "val_tpl": "{{ value }}",
                "unit_of_meas": "%", "dev_cla": "battery", "uniq_id": "u1",
                "avty": [{"t": "~/lwt", "pl_avail": "up", "pl_not_avail": "down"},
                         {"topic": "agents/bridge"}],
                "avty_mode": "all",
                "dev": {"ids": "lt7", "name": "LT7"}}"#,
        )
        .unwrap();
        assert_eq!(d.state_topic, "agents/lt7/battery");
        assert_eq!(d.unit.as_deref(), Some("%"));
        assert_eq!(d.availability[0].topic, "agents/lt7/lwt");
        assert_eq!(d.availability[0].available, "up");
        assert_eq!(d.availability[1].not_available, "offline");
        assert_eq!(d.availability_mode, AvailabilityMode::All);
        assert_eq!(d.entity_id, "sensor.lt7_mqtt_sensor");
        assert_eq!(d.device.unwrap().identifier, "lt7");
    }

    #[test]
    fn malformed_configs_say_what_is_wrong() {
        let e = parse(&topic(), b"{\"name\": ").unwrap_err();
        assert!(e.starts_with("not JSON"), "{e}");
        let e = parse(&topic(), b"[1]").unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
        let e = parse(&topic(), br#"{"name": "Battery"}"#).unwrap_err();
        assert!(e.contains("missing `state_topic`"), "{e}");
        let e = parse(&topic(), br#"{"state_topic": "a/+/b"}"#).unwrap_err();
        assert!(e.contains("a/+/b"), "{e}");
        let e = parse(
            &parse_topic("homeassistant/switch/n/o/config").unwrap(),
            br#"{"state_topic": "s"}"#,
        )
        .unwrap_err();
        assert!(e.contains("`switch` is not mirrored"), "{e}");
        let e = parse(
            &topic(),
            br#"{"state_topic": "s", "availability_topic": "a", "availability": []}"#,
        )
        .unwrap_err();
        assert!(e.contains("exclusive"), "{e}");
    }

    #[test]
    fn an_unsupported_template_is_named_and_the_entity_kept() {
        let d = parse(
            &topic(),
            br#"{"state_topic": "s", "value_template": "{{ value_json.a * 100 }}"}"#,
        )
        .unwrap();
        let (t, why) = d.template.unwrap_err();
        assert_eq!(t, "{{ value_json.a * 100 }}");
        assert!(!why.is_empty());
    }
}
