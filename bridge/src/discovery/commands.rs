//! HA's command topics → service calls. The discovery configs tell HA to
//! publish:
//! - switch: `ON` / `OFF` (and `TOGGLE`) on `hearth/<device>/<key>/set`;
//! - climate: `{"hvac_mode": "cool"}` or `{"temperature": 22.5}` on the same
//!   topic (HA's `mode_command_template` / `temperature_command_template`);
//! - valve (`reports_position: true`): the position `0`–`100` (HA sends
//!   `100`/`0` for open/close too), or `STOP`; `OPEN`/`CLOSE` are accepted
//!   as well (what HA sends to valves without positions).
//!
//! Anything else is logged with the topic, what was expected and what came:
//! a payload that is not UTF-8, or a climate object with keys other than
//! `hvac_mode` and `temperature`, is refused here. Values (ranges, modes,
//! the temperature step) are checked by the service router, as for every
//! other source, which logs a refusal naming what the entity accepts.

use super::Topics;
use crate::broker::{Message, MqttLink};
use crate::entity::{CallSource, Component, EntityStore, ServiceCall, ServiceRouter, StoreEvent};
use crate::shutdown::Shutdown;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// Why a command payload was not understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("{topic}: no entity `{key}` on device `{device}` accepts commands")]
    UnknownTarget {
        topic: String,
        device: String,
        key: String,
    },
    #[error("{topic}: expected {expected}, got `{got}`")]
    BadPayload {
        topic: String,
        expected: &'static str,
        got: String,
    },
}

const VALVE_EXPECTED: &str = "a position 0-100, OPEN, CLOSE or STOP";

const CLIMATE_EXPECTED: &str =
    r#"a JSON object like {"temperature": 22.5} or {"hvac_mode": "cool"}"#;

/// The keys HA's climate command templates render; any other is refused
/// (as HA's service schemas refuse extra keys).
const CLIMATE_KEYS: [&str; 2] = ["hvac_mode", "temperature"];

/// Turns one command message into service calls.
pub fn parse_command(
    topic: &str,
    component: Component,
    entity_id: &str,
    payload: &[u8],
) -> Result<Vec<ServiceCall>, CommandError> {
    let bad = |expected| CommandError::BadPayload {
        topic: topic.into(),
        expected,
        got: crate::broker::excerpt(payload),
    };
    let Ok(text) = std::str::from_utf8(payload) else {
        return Err(bad("UTF-8 text"));
    };
    let call = |domain: &str, service: &str, data: Map<String, Value>| {
        ServiceCall::new(domain, service, entity_id, data, CallSource::Mqtt)
    };
    match component {
        Component::Switch => {
            let service = match text.trim().to_ascii_uppercase().as_str() {
                "ON" => "turn_on",
                "OFF" => "turn_off",
                "TOGGLE" => "toggle",
                _ => return Err(bad("ON, OFF or TOGGLE")),
            };
            Ok(vec![call("switch", service, Map::new())])
        }
        Component::Climate => {
            let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
                return Err(bad(CLIMATE_EXPECTED));
            };
            if obj.keys().any(|k| !CLIMATE_KEYS.contains(&k.as_str())) {
                return Err(bad(
                    r#"only the keys "hvac_mode" and "temperature" (an unknown key came)"#,
                ));
            }
            let mut calls = Vec::new();
            if let Some(mode) = obj.get("hvac_mode") {
                let mut data = Map::new();
                data.insert("hvac_mode".into(), mode.clone());
                calls.push(call("climate", "set_hvac_mode", data));
            }
            if let Some(t) = obj.get("temperature") {
                let mut data = Map::new();
                data.insert("temperature".into(), t.clone());
                calls.push(call("climate", "set_temperature", data));
            }
            if calls.is_empty() {
                return Err(bad(CLIMATE_EXPECTED));
            }
            Ok(calls)
        }
        Component::Valve => {
            let word = text.trim();
            let (service, data) = match word.to_ascii_uppercase().as_str() {
                "OPEN" => ("open_valve", Map::new()),
                "CLOSE" => ("close_valve", Map::new()),
                "STOP" => ("stop_valve", Map::new()),
                _ => {
                    // HA renders a whole number; keep it one in the call.
                    let position: Value = match word.parse::<i64>() {
                        Ok(p) => p.into(),
                        Err(_) => word
                            .parse::<f64>()
                            .ok()
                            .filter(|p| p.is_finite())
                            .ok_or_else(|| bad(VALVE_EXPECTED))?
                            .into(),
                    };
                    let mut data = Map::new();
                    // The router refuses a position outside 0–100.
                    data.insert("position".into(), position);
                    ("set_valve_position", data)
                }
            };
            Ok(vec![call("valve", service, data)])
        }
        // HA publishes the option as it is (command_template `{{ value }}`);
        // the router refuses one that is not among the options.
        Component::Select => {
            let mut data = Map::new();
            data.insert("option".into(), text.into());
            Ok(vec![call("select", "select_option", data)])
        }
        Component::Number => {
            let word = text.trim();
            let value: Value = match word.parse::<i64>() {
                Ok(v) => v.into(),
                Err(_) => word
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| bad("a number"))?
                    .into(),
            };
            let mut data = Map::new();
            // The router refuses a value outside min..max.
            data.insert("value".into(), value);
            Ok(vec![call("number", "set_value", data)])
        }
        // HA docs "MQTT Button": `payload_press`, default `PRESS`.
        Component::Button => match text.trim() {
            "PRESS" => Ok(vec![call("button", "press", Map::new())]),
            _ => Err(bad("PRESS")),
        },
        Component::Sensor | Component::BinarySensor | Component::Event => {
            Err(bad("nothing: this entity is read-only"))
        }
    }
}

/// Subscribes to every command topic and forwards calls to the router.
pub fn spawn(
    link: &MqttLink,
    topics: Topics,
    store: Arc<EntityStore>,
    router: Arc<ServiceRouter>,
    mut shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let mut commands = link.subscribe(&topics.command_filter())?;
    Ok(tokio::spawn(async move {
        let bad_input = crate::logging::Throttle::new("bad input");
        let (snapshot, mut events) = store.subscribe();
        let mut targets: HashMap<(String, String), (String, Component)> = HashMap::new();
        for (spec, _) in snapshot.entities {
            targets.insert(
                (spec.device_id.clone(), spec.key.clone()),
                (spec.entity_id.clone(), spec.component),
            );
        }
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(StoreEvent::EntityAdded(s)) => {
                        targets.insert((s.device_id.clone(), s.key.clone()), (s.entity_id.clone(), s.component));
                    }
                    Some(StoreEvent::EntityRemoved(s)) => {
                        targets.remove(&(s.device_id.clone(), s.key.clone()));
                    }
                    Some(_) => {}
                    None => break,
                },
                msg = commands.recv() => {
                    let Some(msg) = msg else { break };
                    handle(&topics, &targets, &router, &bad_input, msg).await;
                }
                _ = shutdown.wait() => break,
            }
        }
    }))
}

async fn handle(
    topics: &Topics,
    targets: &HashMap<(String, String), (String, Component)>,
    router: &Arc<ServiceRouter>,
    bad_input: &crate::logging::Throttle,
    msg: Message,
) {
    let source = crate::logging::rate::topic_source(&msg.topic);
    if msg.retain {
        // A retained command would replay at every restart: ignore it.
        if bad_input.admit(source) {
            tracing::warn!("{}: ignoring a retained command", msg.topic);
        }
        return;
    }
    let Some((device, key)) = topics.parse_command(&msg.topic) else {
        return;
    };
    let result = match targets.get(&(device.to_string(), key.to_string())) {
        None => Err(CommandError::UnknownTarget {
            topic: msg.topic.clone(),
            device: device.into(),
            key: key.into(),
        }),
        Some((entity_id, component)) => {
            parse_command(&msg.topic, *component, entity_id, &msg.payload)
        }
    };
    match result {
        Ok(calls) => {
            for call in calls {
                tracing::info!(
                    "Home Assistant asks {}.{} on {} {}",
                    call.domain,
                    call.service,
                    call.entity_ids.join(","),
                    serde_json::Value::Object(call.data.clone())
                );
                // Each call on its own task: one slow driver must not hold
                // up commands for other devices. The router logs refusals.
                let router = router.clone();
                tokio::spawn(async move {
                    let _ = router.call(call).await;
                });
            }
        }
        Err(e) => {
            if bad_input.admit(source) {
                tracing::warn!("{e}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn climate_and_switch_payloads_become_service_calls() {
        let calls = parse_command(
            "t",
            Component::Climate,
            "climate.ac",
            br#"{"temperature": 22.5}"#,
        )
        .unwrap();
        assert_eq!(
            (calls[0].domain.as_str(), calls[0].service.as_str()),
            ("climate", "set_temperature")
        );
        assert_eq!(calls[0].data["temperature"], 22.5);
        let calls = parse_command(
            "t",
            Component::Climate,
            "climate.ac",
            br#"{"hvac_mode": "off"}"#,
        )
        .unwrap();
        assert_eq!(calls[0].service, "set_hvac_mode");
        let calls = parse_command("t", Component::Switch, "switch.p", b"off").unwrap();
        assert_eq!(calls[0].service, "turn_off");
    }

    #[test]
    fn valve_payloads_become_service_calls() {
        let one = |payload: &[u8]| {
            let mut calls = parse_command("t", Component::Valve, "valve.v", payload).unwrap();
            assert_eq!(calls.len(), 1);
            calls.remove(0)
        };
        let c = one(b"70");
        assert_eq!(
            (c.domain.as_str(), c.service.as_str()),
            ("valve", "set_valve_position")
        );
        assert_eq!(c.data["position"], 70);
        assert_eq!(one(b"70.5").data["position"], 70.5);
        assert_eq!(one(b"STOP").service, "stop_valve");
        assert_eq!(one(b"open").service, "open_valve");
        assert_eq!(one(b"CLOSE").service, "close_valve");
        let e = parse_command("t", Component::Valve, "valve.v", b"half").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("t: expected {VALVE_EXPECTED}, got `half`")
        );
        assert!(parse_command("t", Component::Valve, "valve.v", b"NaN").is_err());
    }

    #[test]
    fn select_and_number_payloads_become_service_calls() {
        let c = parse_command("t", Component::Select, "select.seat", b"Ana B").unwrap();
        assert_eq!(
            (c[0].domain.as_str(), c[0].service.as_str()),
            ("select", "select_option")
        );
        assert_eq!(c[0].data["option"], "Ana B");
        let c = parse_command("t", Component::Number, "number.limit", b"7.5").unwrap();
        assert_eq!(
            (c[0].domain.as_str(), c[0].service.as_str()),
            ("number", "set_value")
        );
        assert_eq!(c[0].data["value"], 7.5);
        for bad in [&b"seven"[..], b"NaN", b"inf", b""] {
            let e = parse_command("t", Component::Number, "number.limit", bad).unwrap_err();
            assert!(e.to_string().contains("expected a number"), "{e}");
        }
    }

    #[test]
    fn bad_payloads_name_topic_and_expectation() {
        let e = parse_command(
            "hearth/ac/climate/set",
            Component::Climate,
            "climate.ac",
            b"{not json",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("hearth/ac/climate/set: expected {CLIMATE_EXPECTED}, got `{{not json`")
        );
        assert!(parse_command("t", Component::Switch, "switch.p", b"MAYBE").is_err());
        for payload in [
            &br#"{"temperature": 22, "fan": "max"}"#[..],
            br#"{"temperature": 22, "entity_id": "climate.other"}"#,
        ] {
            let e = parse_command("t", Component::Climate, "climate.ac", payload).unwrap_err();
            assert!(e.to_string().contains("unknown key"), "{e}");
        }
        for component in [Component::Climate, Component::Switch, Component::Valve] {
            let e = parse_command("t", component, "x.y", b"{\"temperature\": 2\xff}").unwrap_err();
            assert!(e.to_string().contains("expected UTF-8 text"), "{e}");
        }
        assert!(parse_command("t", Component::Sensor, "sensor.x", b"1").is_err());
    }
}
