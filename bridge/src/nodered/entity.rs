//! Node-RED's entities: what `nodered/discovery` creates, the states
//! `nodered/entity` sets (the companion's rules for each component), and
//! the router's commands for its switches and buttons.

use crate::api::calls::Failure;
use crate::api::websocket::protocol::{ERR_INVALID_FORMAT, ERR_NOT_FOUND};
use crate::entity::{Component, Device, DriverCommand, EntitySpec, SafetyEnvelope, ServiceError};
use serde_json::{Map, Value, json};

use super::{DEVICE, ERR_NOT_SUPPORTED, NodeRed, OWNER, Sink, VERSION};
use crate::slug::slugify as slug;

/// HA's limit on a state's length; the companion's sensor cuts there.
const MAX_STATE_CHARS: usize = 255;
/// `nodered/discovery`'s fields.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub server_id: String,
    pub node_id: String,
    pub component: String,
    pub config: Map<String, Value>,
    pub state: Option<Value>,
    pub attributes: Option<Map<String, Value>>,
    /// `true`: remove the entity; `"change_entity_type"`: remove it and
    /// create it again as `component`.
    pub remove: Option<Value>,
    pub device_info: Option<Map<String, Value>>,
}

pub(super) struct Entry {
    entity_id: String,
    component: Component,
    /// The subscription of a switch or button, with its token.
    sink: Option<(u64, Sink)>,
}
/// Most entities Node-RED may create (all its clients together): each is
/// a store entity, announced over MQTT; a flow gone wrong must not grow
/// the store without end.
pub const MAX_ENTITIES: usize = 1000;
fn unique_id(server_id: &str, node_id: &str) -> String {
    format!("nodered-{server_id}-{node_id}")
}

fn component_of(name: &str) -> Result<Component, Failure> {
    match name {
        "sensor" => Ok(Component::Sensor),
        "binary_sensor" => Ok(Component::BinarySensor),
        "switch" => Ok(Component::Switch),
        "button" => Ok(Component::Button),
        "number" | "select" | "text" | "time" => Err(Failure::new(
            ERR_NOT_SUPPORTED,
            format!(
                "Hearth's Node-RED companion does not create {name} entities (sensor, binary_sensor, switch and button only)"
            ),
        )),
        other => Err(Failure::new(
            ERR_INVALID_FORMAT,
            format!("unknown component `{other}` @ data['component']"),
        )),
    }
}

/// A JSON state as HA shows it (Python's `str()` of the value).
fn text_state(v: &Value) -> String {
    let s = match v {
        Value::Null => "unknown".to_string(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    s.chars().take(MAX_STATE_CHARS).collect()
}

/// The companion's binary sensor rule (`_evaluate_sensor_state`).
fn binary_state(v: &Value) -> &'static str {
    const ON: [&str; 8] = [
        "1", "true", "yes", "enable", "on", "open", "home", "unlocked",
    ];
    match v {
        Value::Null => "unknown",
        Value::Bool(b) => on_off(*b),
        Value::String(s) => on_off(ON.contains(&s.trim().to_lowercase().as_str())),
        Value::Number(n) => on_off(n.as_f64() != Some(0.0)),
        _ => "off",
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn state_for(component: Component, v: &Value) -> String {
    match component {
        Component::BinarySensor => binary_state(v).into(),
        // The switch's `is_on` is the value Node-RED sends (a boolean).
        Component::Switch => match v {
            Value::Null => "unknown".into(),
            other => binary_state(other).into(),
        },
        _ => text_state(v),
    }
}

fn str_of<'a>(m: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
}
impl NodeRed {
    /// `nodered/discovery`: creates, updates or removes an entity. For a
    /// switch or a button, `sink` (the discovery message's subscription)
    /// receives its commands; the token it returns is what
    /// [`detach`](Self::detach) takes when that subscription ends.
    pub fn discover(&self, d: Discovery, sink: Option<Sink>) -> Result<Option<u64>, Failure> {
        let uid = unique_id(&d.server_id, &d.node_id);
        match &d.remove {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::String(s)) if s == "change_entity_type" => {
                self.remove(&uid);
                let d = Discovery { remove: None, ..d };
                return self.discover(d, sink);
            }
            Some(_) => {
                self.remove(&uid);
                return Ok(None);
            }
        }
        let component = component_of(&d.component)?;
        {
            let inner = self.lock();
            if !inner.entities.contains_key(&uid) && inner.entities.len() >= MAX_ENTITIES {
                return Err(Failure::new(
                    ERR_INVALID_FORMAT,
                    format!(
                        "Hearth takes at most {MAX_ENTITIES} Node-RED entities; remove one first"
                    ),
                ));
            }
        }
        let existing = self
            .lock()
            .entities
            .get(&uid)
            .map(|e| (e.entity_id.clone(), e.component));
        if let Some((_, c)) = &existing
            && *c != component
        {
            // A node whose entity type changed without saying so.
            self.remove(&uid);
        }
        let existing = existing.filter(|(_, c)| *c == component);
        let device_id = self.device(&d)?;
        let name = str_of(&d.config, "name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("nodered {}", d.node_id));
        let entity_id = match &existing {
            Some((id, _)) => id.clone(),
            None => self.free_entity_id(component, &name),
        };
        let key = slug(&format!("{}_{}", d.server_id, d.node_id));
        let mut spec = EntitySpec::new(&device_id, &key, component).named(&name);
        spec.entity_id = entity_id.clone();
        spec.icon = str_of(&d.config, "icon").map(str::to_string);
        spec.device_class = str_of(&d.config, "device_class").map(str::to_string);
        if component == Component::Sensor {
            spec.unit = str_of(&d.config, "unit_of_measurement").map(str::to_string);
            spec.state_class = str_of(&d.config, "state_class").map(str::to_string);
        }
        spec.entity_category = match str_of(&d.config, "entity_category") {
            Some("diagnostic") => Some("diagnostic".into()),
            Some("config") if component != Component::Sensor => Some("config".into()),
            _ => None,
        };
        if let Some((old, _)) = &existing
            && self
                .store
                .spec(old)
                .is_some_and(|s| s.device_id != device_id)
        {
            // Moved to another device: the store keys entities by device.
            self.store.remove_entity(old);
        }
        self.store.upsert_entity(spec).map_err(store_failure)?;
        let bidirectional = matches!(component, Component::Switch | Component::Button);
        if bidirectional {
            self.router
                .register(&entity_id, self.commands.clone(), SafetyEnvelope::default());
        }
        let token = {
            let mut inner = self.lock();
            inner.next_token += 1;
            let token = inner.next_token;
            let entry = inner.entities.entry(uid).or_insert(Entry {
                entity_id: entity_id.clone(),
                component,
                sink: None,
            });
            entry.entity_id = entity_id.clone();
            entry.component = component;
            match (bidirectional, sink) {
                (true, Some(sink)) => {
                    entry.sink = Some((token, sink));
                    Some(token)
                }
                _ => None,
            }
        };
        // The state: the message's, else what the entity showed (a button
        // keeps its last press; a switch that came back after a lost
        // connection shows what Node-RED sends next).
        let current = self.store.get(&entity_id);
        let state = match (&d.state, component) {
            (_, Component::Button) => current
                .as_ref()
                .map(|s| s.state.clone())
                .filter(|s| s != crate::entity::store::UNAVAILABLE)
                .unwrap_or_else(|| "unknown".into()),
            (Some(v), c) => state_for(c, v),
            (None, _) => current
                .as_ref()
                .map(|s| s.state.clone())
                .filter(|s| s != crate::entity::store::UNAVAILABLE)
                .unwrap_or_else(|| "unknown".into()),
        };
        let attributes = match d.attributes {
            Some(a) => a,
            None => current.map(|s| s.attributes).unwrap_or_default(),
        };
        self.store
            .set_state(&entity_id, state, attributes)
            .map_err(store_failure)?;
        Ok(token)
    }

    /// The device an entity goes on (created on first use).
    fn device(&self, d: &Discovery) -> Result<String, Failure> {
        let info = d.device_info.as_ref();
        let (id, device) = match info.and_then(|i| str_of(i, "id")) {
            Some(node) => {
                let info = info.expect("checked");
                let id = format!("nodered-{}", slug(node).replace('_', "-"));
                let device = Device {
                    id: id.clone(),
                    name: str_of(info, "name").unwrap_or("Node-RED device").into(),
                    manufacturer: str_of(info, "manufacturer").unwrap_or("Node-RED").into(),
                    model: str_of(info, "model").unwrap_or("Node-RED device").into(),
                    sw_version: str_of(info, "sw_version").map(str::to_string),
                    via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
                };
                (id, device)
            }
            None => (
                DEVICE.to_string(),
                Device {
                    id: DEVICE.into(),
                    name: "Node-RED".into(),
                    manufacturer: "Node-RED".into(),
                    model: "Node-RED companion (Hearth)".into(),
                    sw_version: Some(VERSION.into()),
                    via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
                },
            ),
        };
        self.store
            .upsert_device(OWNER, device)
            .map_err(store_failure)?;
        Ok(id)
    }

    /// `<component>.<slug of name>`, with `_2`, `_3`… when taken (HA's rule).
    fn free_entity_id(&self, component: Component, name: &str) -> String {
        let base = match slug(name) {
            s if s.is_empty() || s == "unknown" => "nodered".to_string(),
            s => s,
        };
        let base = format!("{}.{base}", component.as_str());
        let mut candidate = base.clone();
        let mut n = 2;
        while self.store.spec(&candidate).is_some() {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        candidate
    }

    fn remove(&self, uid: &str) {
        let Some(entry) = self.lock().entities.remove(uid) else {
            return;
        };
        self.router.unregister(&entry.entity_id);
        self.store.remove_entity(&entry.entity_id);
    }

    /// The subscription that registered a switch or button ended (Node-RED
    /// unsubscribed or disconnected): the entity is unavailable until it
    /// registers again. A later registration's token is left alone.
    pub fn detach(&self, server_id: &str, node_id: &str, token: u64) {
        let entity_id = {
            let mut inner = self.lock();
            let Some(e) = inner.entities.get_mut(&unique_id(server_id, node_id)) else {
                return;
            };
            if e.sink.as_ref().is_none_or(|(t, _)| *t != token) {
                return;
            }
            e.sink = None;
            e.entity_id.clone()
        };
        let attrs = self
            .store
            .get(&entity_id)
            .map(|s| s.attributes)
            .unwrap_or_default();
        let _ = self
            .store
            .set_state(&entity_id, crate::entity::store::UNAVAILABLE, attrs);
    }

    /// `nodered/entity`: a new state and attributes. Like the companion, a
    /// message for an entity it does not know changes nothing (`false`).
    pub fn update(
        &self,
        server_id: &str,
        node_id: &str,
        state: &Value,
        attributes: Map<String, Value>,
    ) -> Result<bool, Failure> {
        let Some((entity_id, component)) = self
            .lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| (e.entity_id.clone(), e.component))
        else {
            return Ok(false);
        };
        let state = match component {
            Component::Button => self
                .store
                .get(&entity_id)
                .map(|s| s.state)
                .unwrap_or_else(|| "unknown".into()),
            c => state_for(c, state),
        };
        self.store
            .set_state(&entity_id, state, attributes)
            .map_err(store_failure)?;
        Ok(true)
    }

    /// `nodered/entity/update_config`: name and icon.
    pub fn update_config(
        &self,
        server_id: &str,
        node_id: &str,
        config: &Map<String, Value>,
    ) -> Result<(), Failure> {
        let Some(entity_id) = self
            .lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| e.entity_id.clone())
        else {
            return Err(Failure::new(
                ERR_NOT_FOUND,
                format!("no Node-RED entity for node {node_id} of server {server_id}"),
            ));
        };
        let Some(spec) = self.store.spec(&entity_id) else {
            return Ok(());
        };
        let mut spec = (*spec).clone();
        if let Some(name) = str_of(config, "name") {
            spec.name = Some(name.into());
        }
        if let Some(icon) = str_of(config, "icon") {
            spec.icon = Some(icon.into());
        }
        self.store.upsert_entity(spec).map_err(store_failure)
    }

    /// The entity Node-RED created for a node, if any.
    pub fn entity_of(&self, server_id: &str, node_id: &str) -> Option<String> {
        self.lock()
            .entities
            .get(&unique_id(server_id, node_id))
            .map(|e| e.entity_id.clone())
    }
    /// A switch or button command from the router.
    pub(super) fn command(&self, cmd: &DriverCommand) -> Result<(), ServiceError> {
        let found = self
            .lock()
            .entities
            .values()
            .find(|e| e.entity_id == cmd.entity_id)
            .map(|e| (e.component, e.sink.as_ref().map(|(_, s)| s.clone())));
        let Some((component, sink)) = found else {
            return Err(ServiceError::UnknownEntity(cmd.entity_id.clone()));
        };
        let Some(sink) = sink else {
            return Err(ServiceError::Unavailable(cmd.entity_id.clone()));
        };
        match (component, cmd.service.as_str()) {
            (Component::Switch, service @ ("turn_on" | "turn_off" | "toggle")) => {
                let on = match service {
                    "turn_on" => true,
                    "turn_off" => false,
                    _ => self
                        .store
                        .get(&cmd.entity_id)
                        .is_none_or(|s| s.state != "on"),
                };
                sink(json!({"type": "state_changed", "state": on}));
                Ok(())
            }
            (Component::Button, "press") => {
                let now = self.store.clock().now_ms();
                let attrs = self
                    .store
                    .get(&cmd.entity_id)
                    .map(|s| s.attributes)
                    .unwrap_or_default();
                self.store
                    .set_state(&cmd.entity_id, crate::clock::iso8601(now), attrs)
                    .map_err(|e| ServiceError::Driver {
                        entity: cmd.entity_id.clone(),
                        reason: e.to_string(),
                    })?;
                let snap = self.store.snapshot();
                let reg = crate::api::registry::Registry::from_snapshot(&snap);
                let entity = self
                    .store
                    .get(&cmd.entity_id)
                    .map(|s| crate::api::ha::state(&reg.present(&s)))
                    .unwrap_or(Value::Null);
                sink(json!({"type": "automation_triggered", "data": {"entity": entity}}));
                Ok(())
            }
            (_, service) => Err(ServiceError::Validation(format!(
                "{}: Node-RED's {} entities do not take {service}",
                cmd.entity_id,
                component.as_str()
            ))),
        }
    }
}

fn store_failure(e: crate::entity::store::StoreError) -> Failure {
    Failure::new("home_assistant_error", e.to_string())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_follow_the_companion() {
        assert_eq!(slug("Laptop 01: battery %"), "laptop_01_battery");
        assert_eq!(text_state(&json!(21.5)), "21.5");
        assert_eq!(text_state(&json!(true)), "True");
        assert_eq!(text_state(&Value::Null), "unknown");
        assert_eq!(binary_state(&json!("Open")), "on");
        assert_eq!(binary_state(&json!("closed")), "off");
        assert_eq!(binary_state(&json!(0)), "off");
        assert_eq!(state_for(Component::Switch, &json!(true)), "on");
        assert_eq!(text_state(&json!("x".repeat(300))).len(), MAX_STATE_CHARS);
    }
}
