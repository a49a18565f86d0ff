//! Devices, entities and states: the one model every part of Hearth speaks.
//! Names follow Home Assistant: an entity id is `<component>.<object_id>`;
//! a state is HA's state string plus attributes.

pub mod accepts;
pub mod context;
#[cfg(test)]
mod fixtures;
pub mod limits;
pub mod problem;
pub mod restore;
pub mod safety;
pub mod samples;
pub mod service;
pub mod store;

use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

pub use context::Context;
pub use safety::SafetyEnvelope;
pub use service::{CallSource, DriverCommand, ServiceCall, ServiceError, ServiceRouter};
pub use store::EntityStore;

/// HA entity components Hearth publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    Sensor,
    BinarySensor,
    Switch,
    Climate,
    /// HA's `valve` (2024.1+): `open`/`opening`/`closed`/`closing`, attribute
    /// `current_position` 0–100.
    Valve,
    /// HA's `event` (2023.8+): stateless; its state is the time of the last
    /// event, with `event_type` and the event's data as attributes. Hearth
    /// only publishes events (alerts), so plugins cannot declare one.
    Event,
    /// HA's `select`: the state is one of the entity's `options`.
    Select,
    /// HA's `number`: the state is a number within `min`..`max`.
    Number,
    /// HA's `button`: stateless; its state is the time of the last press
    /// (`button.press`). Node-RED's `ha-button` nodes create them
    /// ([`crate::nodered`]).
    Button,
}

impl Component {
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Sensor => "sensor",
            Component::BinarySensor => "binary_sensor",
            Component::Switch => "switch",
            Component::Climate => "climate",
            Component::Valve => "valve",
            Component::Event => "event",
            Component::Select => "select",
            Component::Number => "number",
            Component::Button => "button",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "sensor" => Component::Sensor,
            "binary_sensor" => Component::BinarySensor,
            "switch" => Component::Switch,
            "climate" => Component::Climate,
            "valve" => Component::Valve,
            "select" => Component::Select,
            "number" => Component::Number,
            _ => return None,
        })
    }
}

/// A physical or logical device: an HA device registry entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Device {
    /// `[a-z0-9_-]+`, unique in the bridge; used in topics (`hearth/<id>/…`).
    pub id: String,
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub sw_version: Option<String>,
    /// Device this one talks through (HA's `via_device`), e.g. the bridge.
    pub via_device: Option<String>,
}

/// Climate-specific facts for discovery.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClimateSpec {
    /// HA hvac modes offered, e.g. `["off", "cool"]`.
    pub modes: Vec<String>,
    /// °C
    pub min_temp: f64,
    /// °C
    pub max_temp: f64,
    /// °C
    pub temp_step: f64,
}

/// What a `select` or `number` accepts (HA docs "MQTT Select", "MQTT
/// Number"); [`accepts`] checks commands against it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSpec {
    /// The options, in the order HA shows them.
    Select { options: Vec<String> },
    /// Bounds inclusive, in the entity's unit; `mode` is HA's `box`,
    /// `slider` or `auto`.
    Number {
        min: f64,
        max: f64,
        step: f64,
        mode: String,
    },
}

/// An entity's static description (HA's entity registry + discovery facts).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntitySpec {
    /// `<component>.<object_id>`.
    pub entity_id: String,
    pub device_id: String,
    /// Key of the entity within its device; topics are `hearth/<device>/<key>/…`.
    pub key: String,
    /// Entity name; `None` means "the device's main feature" (HA names it after the device).
    pub name: Option<String>,
    pub component: Component,
    pub device_class: Option<String>,
    pub unit: Option<String>,
    pub state_class: Option<String>,
    /// `diagnostic` or `config`.
    pub entity_category: Option<String>,
    pub climate: Option<ClimateSpec>,
    /// An `event` entity's `event_types` (HA requires the list).
    pub event_types: Vec<String>,
    /// A `select`'s options or a `number`'s range.
    pub input: Option<InputSpec>,
    /// HA's `icon`, e.g. `mdi:account`.
    pub icon: Option<String>,
}

impl EntitySpec {
    /// A plain entity; `<component>.<device>_<key>` with `-` → `_`.
    pub fn new(device_id: &str, key: &str, component: Component) -> Self {
        EntitySpec {
            entity_id: entity_id_for(component, device_id, key),
            device_id: device_id.into(),
            key: key.into(),
            name: None,
            component,
            device_class: None,
            unit: None,
            state_class: None,
            entity_category: None,
            climate: None,
            event_types: Vec::new(),
            input: None,
            icon: None,
        }
    }

    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn class(mut self, device_class: &str) -> Self {
        self.device_class = Some(device_class.into());
        self
    }

    /// Unit and state class (a measured value).
    pub fn measured(mut self, unit: &str, state_class: &str) -> Self {
        self.unit = Some(unit.into());
        self.state_class = Some(state_class.into());
        self
    }

    /// The `event_types` an `event` entity fires.
    pub fn events(mut self, types: &[&str]) -> Self {
        self.event_types = types.iter().map(|t| t.to_string()).collect();
        self
    }

    pub fn diagnostic(mut self) -> Self {
        self.entity_category = Some("diagnostic".into());
        self
    }

    pub fn domain(&self) -> &str {
        self.component.as_str()
    }
}

/// `sensor.server_room_temperature` from (`sensor`, `server-room`, `temperature`).
pub fn entity_id_for(component: Component, device_id: &str, key: &str) -> String {
    let object = format!("{device_id}_{key}")
        .replace('-', "_")
        .to_lowercase();
    format!("{}.{object}", component.as_str())
}

/// The domain part of an entity id (`climate` of `climate.server_room_ac`).
pub fn domain_of(entity_id: &str) -> &str {
    entity_id.split_once('.').map_or("", |(d, _)| d)
}

/// An entity's current state, as HA shapes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct State {
    pub entity_id: String,
    /// HA state string: `"23.4"`, `"on"`, `"cool"`, `"unavailable"`.
    pub state: String,
    pub attributes: Map<String, Value>,
    /// ms since epoch, when `state` last changed.
    pub last_changed: i64,
    /// ms since epoch, when state or attributes last changed.
    pub last_updated: i64,
    /// What caused this state: the service call's context when one did.
    pub context: Context,
}

impl State {
    pub fn number(&self) -> Option<f64> {
        self.state.parse::<f64>().ok().filter(|v| v.is_finite())
    }
}

/// HA's `state_changed` event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateChanged {
    pub entity_id: String,
    pub old_state: Option<State>,
    pub new_state: Option<State>,
}

/// Everything the store announces, in the order it happened.
#[derive(Debug, Clone)]
pub enum StoreEvent {
    DeviceAdded(Arc<Device>),
    /// The device and all its entities are gone.
    DeviceRemoved(Arc<Device>),
    EntityAdded(Arc<EntitySpec>),
    EntityRemoved(Arc<EntitySpec>),
    Availability {
        device_id: String,
        available: bool,
    },
    StateChanged(Arc<StateChanged>),
}

/// Formats a number the way HA sensors show it (no trailing `.0` noise).
pub fn format_number(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_follow_ha() {
        assert_eq!(
            entity_id_for(Component::Sensor, "server-room", "temperature"),
            "sensor.server_room_temperature"
        );
        assert_eq!(domain_of("climate.server_room_ac"), "climate");
        assert_eq!(format_number(23.40, 2), "23.4");
        assert_eq!(format_number(24.0, 1), "24");
    }
}
