//! What HA shows in a state's attributes but Hearth keeps in the entity's
//! spec: `friendly_name` (device name + entity name, HA's
//! `has_entity_name` rule), `unit_of_measurement`, `device_class`,
//! `state_class`, and a climate's `hvac_modes`, `min_temp`, `max_temp`,
//! `target_temp_step`. The API adds them to every state it sends, so
//! clients see what HA's own states carry. Attributes a driver set win.

use crate::entity::store::Snapshot;
use crate::entity::{EntitySpec, State, StoreEvent};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct Registry {
    specs: HashMap<String, Arc<EntitySpec>>,
    device_names: HashMap<String, String>,
}

impl Registry {
    pub fn from_snapshot(s: &Snapshot) -> Self {
        Registry {
            specs: s
                .entities
                .iter()
                .map(|(spec, _)| (spec.entity_id.clone(), spec.clone()))
                .collect(),
            device_names: s
                .devices
                .iter()
                .map(|(d, _)| (d.id.clone(), d.name.clone()))
                .collect(),
        }
    }

    /// Keeps up with the store (for long-lived subscriptions).
    pub fn observe(&mut self, ev: &StoreEvent) {
        match ev {
            StoreEvent::EntityAdded(spec) => {
                self.specs.insert(spec.entity_id.clone(), spec.clone());
            }
            StoreEvent::EntityRemoved(spec) => {
                self.specs.remove(&spec.entity_id);
            }
            StoreEvent::DeviceAdded(d) => {
                self.device_names.insert(d.id.clone(), d.name.clone());
            }
            StoreEvent::DeviceRemoved(d) => {
                self.device_names.remove(&d.id);
            }
            _ => {}
        }
    }

    /// The state with the spec's attributes added.
    pub fn present(&self, state: &State) -> State {
        let Some(spec) = self.specs.get(&state.entity_id) else {
            return state.clone();
        };
        let mut attrs = Map::new();
        let device = self.device_names.get(&spec.device_id);
        let friendly = match (device, &spec.name) {
            (Some(d), Some(n)) => format!("{d} {n}"),
            (Some(d), None) => d.clone(),
            (None, Some(n)) => n.clone(),
            (None, None) => state.entity_id.clone(),
        };
        attrs.insert("friendly_name".into(), json!(friendly));
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                attrs.insert(k.into(), v);
            }
        };
        put("unit_of_measurement", spec.unit.as_ref().map(|u| json!(u)));
        put("device_class", spec.device_class.as_ref().map(|c| json!(c)));
        put("state_class", spec.state_class.as_ref().map(|c| json!(c)));
        if let Some(c) = &spec.climate {
            put("hvac_modes", Some(json!(c.modes)));
            put("min_temp", Some(json!(c.min_temp)));
            put("max_temp", Some(json!(c.max_temp)));
            put("target_temp_step", Some(json!(c.temp_step)));
        }
        match &spec.input {
            Some(crate::entity::InputSpec::Select { options }) => {
                put("options", Some(json!(options)));
            }
            Some(crate::entity::InputSpec::Number {
                min,
                max,
                step,
                mode,
            }) => {
                put("min", Some(json!(min)));
                put("max", Some(json!(max)));
                put("step", Some(json!(step)));
                put("mode", Some(json!(mode)));
            }
            None => {}
        }
        put("icon", spec.icon.as_ref().map(|i| json!(i)));
        attrs.extend(state.attributes.clone());
        State {
            attributes: attrs,
            ..state.clone()
        }
    }
}
