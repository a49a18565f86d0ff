//! A plugin's presence in Home Assistant: the device `plugin-<name>` with the
//! host's `status` and `fault` entities and the entities the plugin declares.
//! They reach HA through MQTT discovery like any device's; a swap adds and
//! removes declared entities to match the new plugin, and an unload removes
//! the device (empty retained configs).

use super::engine::wit;
use crate::entity::{Component, Device, EntitySpec, EntityStore, entity_id_for};
use serde_json::{Map, Value};
use std::sync::Arc;

pub struct OwnedEntities {
    pub store: Arc<EntityStore>,
    pub device_id: String,
    name: String,
    decls: Vec<wit::EntityDecl>,
}

impl OwnedEntities {
    pub fn new(store: Arc<EntityStore>, name: &str) -> Self {
        OwnedEntities {
            store,
            device_id: device_id(name),
            name: name.into(),
            decls: Vec::new(),
        }
    }

    /// Registers the device and the entities `desc` declares; on a swap,
    /// removes the previous plugin's entities the new one does not declare.
    /// Declarations were checked by `prepare`.
    pub fn sync(&mut self, desc: &wit::Description) -> anyhow::Result<()> {
        let device = Device {
            id: self.device_id.clone(),
            name: format!("Hearth plugin {}", self.name),
            manufacturer: "Hearth".into(),
            model: format!("{} controller (WASM)", desc.name),
            sw_version: Some(desc.version.clone()),
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        };
        self.store.upsert_device("plugins", device)?;
        if self.decls.is_empty() {
            let status = EntitySpec::new(&self.device_id, "status", Component::Sensor)
                .named("Status")
                .diagnostic();
            let fault = EntitySpec::new(&self.device_id, "fault", Component::BinarySensor)
                .named("Fault")
                .class("problem");
            self.store.upsert_entity(status)?;
            self.store.upsert_entity(fault)?;
        }
        for old in &self.decls {
            if desc
                .entities
                .iter()
                .all(|d| (&d.object_id, &d.component) != (&old.object_id, &old.component))
                && let Some(c) = Component::parse(&old.component)
            {
                self.store
                    .remove_entity(&entity_id_for(c, &self.device_id, &old.object_id));
            }
        }
        let mut fresh_problems = Vec::new();
        for decl in &desc.entities {
            let Some(component) = Component::parse(&decl.component) else {
                continue;
            };
            let mut spec =
                EntitySpec::new(&self.device_id, &decl.object_id, component).named(&decl.name);
            spec.device_class = decl.device_class.clone();
            spec.unit = decl.unit_of_measurement.clone();
            spec.state_class = decl.state_class.clone();
            let existed = self
                .decls
                .iter()
                .any(|d| d.object_id == decl.object_id && d.component == decl.component);
            self.store.upsert_entity(spec)?;
            if component == Component::BinarySensor && !existed {
                fresh_problems.push(decl.object_id.clone());
            }
        }
        self.decls = desc.entities.clone();
        // A new binary sensor starts `off` (no problem) rather than unknown.
        for id in fresh_problems {
            self.set(&id, "off", Map::new());
        }
        Ok(())
    }

    pub fn declares(&self, key: &str) -> bool {
        self.decls.iter().any(|d| d.object_id == key)
    }

    /// Sets one of the device's entities (host's or declared).
    pub fn set(&self, key: &str, state: &str, attrs: Map<String, Value>) {
        let component = match key {
            "status" => Some(Component::Sensor),
            "fault" => Some(Component::BinarySensor),
            _ => self
                .decls
                .iter()
                .find(|d| d.object_id == key)
                .and_then(|d| Component::parse(&d.component)),
        };
        let Some(component) = component else {
            return;
        };
        let entity_id = entity_id_for(component, &self.device_id, key);
        if let Err(e) = self.store.set_state(&entity_id, state, attrs) {
            // Refused (e.g. a state past entity::limits): said, once a
            // minute per plugin, not dropped silently.
            static REFUSED: std::sync::LazyLock<Arc<crate::logging::Throttle>> =
                std::sync::LazyLock::new(|| crate::logging::Throttle::new("refused plugin states"));
            if REFUSED.admit(&self.device_id) {
                tracing::warn!("{}: {e}", self.device_id);
            }
        }
    }

    /// Removes the device and all its entities (unload).
    pub fn remove(&self) {
        self.store.remove_device(&self.device_id);
    }
}

pub fn device_id(name: &str) -> String {
    format!("plugin-{name}")
}
