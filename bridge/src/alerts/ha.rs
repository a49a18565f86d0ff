//! Alerts as Home Assistant entities, on the bridge's device:
//! - `event.bridge_alerts` fires `raised`, `repeated` or `cleared` with each
//!   notification (the alert's fields are the event's attributes), for
//!   automations ("when an alert is raised, flash the lights");
//! - `binary_sensor.<object id>_alert` (device class `problem`) per entity
//!   alerts are about, on while any alert on it is active, so a dashboard
//!   shows the problem next to the entity and it survives HA restarts
//!   (its state is retained). `binary_sensor.<domain>_<object id>_alert`
//!   if the short name belongs to something else.

use super::model::{Alert, Notification, NotifyKind};
use crate::clock::iso8601;
use crate::discovery::payload::BRIDGE_DEVICE;
use crate::entity::{Component, EntitySpec, EntityStore};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The `event_types` of the alert event entity.
pub const EVENT_TYPES: [&str; 3] = ["raised", "repeated", "cleared"];
const EVENT_KEY: &str = "alerts";

pub struct HaEntities {
    store: Arc<EntityStore>,
    event_entity: String,
    /// Watched entity → its problem sensor's entity id.
    sensors: Mutex<BTreeMap<String, String>>,
}

impl HaEntities {
    /// Registers the event entity on the bridge's device (which must exist).
    pub fn attach(store: Arc<EntityStore>) -> anyhow::Result<HaEntities> {
        let spec = EntitySpec::new(BRIDGE_DEVICE, EVENT_KEY, Component::Event)
            .named("Alerts")
            .events(&EVENT_TYPES);
        let event_entity = spec.entity_id.clone();
        store
            .upsert_entity(spec)
            .map_err(|e| anyhow::anyhow!("alert event entity: {e}"))?;
        Ok(HaEntities {
            store,
            event_entity,
            sensors: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn event_entity(&self) -> &str {
        &self.event_entity
    }

    /// Fires the event entity: its state is the time, HA's way.
    pub fn fire(&self, n: &Notification) {
        let a = &n.alert;
        let event_type = match n.kind {
            NotifyKind::Raised => "raised",
            NotifyKind::Repeated => "repeated",
            NotifyKind::Resolved => "cleared",
        };
        let mut attrs = Map::new();
        attrs.insert("event_type".into(), json!(event_type));
        attrs.insert("alert_id".into(), json!(a.id));
        attrs.insert("source".into(), json!(a.source));
        // Not `entity_id`: HA reads that attribute as a group's members.
        attrs.insert("alert_entity".into(), json!(a.entity_id));
        attrs.insert("severity".into(), json!(a.severity.as_str()));
        attrs.insert("title".into(), json!(a.title));
        attrs.insert("message".into(), json!(a.message));
        attrs.insert("count".into(), json!(a.count));
        let now = self.store.clock().now_ms();
        if let Err(e) = self
            .store
            .set_state(&self.event_entity, iso8601(now), attrs)
        {
            tracing::warn!("alert event entity: {e}");
        }
    }

    /// Sets the problem sensor of `watched` from the alerts about it
    /// (creating the sensor on first use).
    pub fn refresh(&self, watched: &str, alerts: &[&Alert]) {
        let Some(sensor) = self.sensor_for(watched) else {
            return;
        };
        let active: Vec<&&Alert> = alerts.iter().filter(|a| a.active).collect();
        // The one shown: the worst active alert, else the latest one.
        let shown = active
            .iter()
            .max_by_key(|a| (a.severity, a.last_seen_ms))
            .copied()
            .or_else(|| alerts.iter().max_by_key(|a| a.last_seen_ms));
        let mut attrs = Map::new();
        attrs.insert("watched_entity".into(), json!(watched));
        attrs.insert("active_alerts".into(), json!(active.len()));
        if let Some(a) = shown {
            attrs.insert("alert_id".into(), json!(a.id));
            attrs.insert("title".into(), json!(a.title));
            attrs.insert("message".into(), json!(a.message));
            attrs.insert("severity".into(), json!(a.severity.as_str()));
            attrs.insert("count".into(), json!(a.count));
            attrs.insert("first_seen".into(), json!(iso8601(a.first_seen_ms)));
            attrs.insert("last_seen".into(), json!(iso8601(a.last_seen_ms)));
            attrs.insert("acknowledged".into(), Value::Bool(a.acknowledged));
        }
        let state = if active.is_empty() { "off" } else { "on" };
        if let Err(e) = self.store.set_state(&sensor, state, attrs) {
            tracing::warn!("alert sensor of {watched}: {e}");
        }
    }

    /// The watched entity's name as HA shows it, so the sensor reads
    /// "Server room Temperature alert", not "sensor.server_room_temperature
    /// alert": its device's name and its own, as `api::registry` presents
    /// them (`friendly_name`); the entity id when the store does not know it.
    fn friendly_name(&self, watched: &str) -> String {
        let Some(spec) = self.store.spec(watched) else {
            return watched.to_string();
        };
        let device = self
            .store
            .device(&spec.device_id)
            .map(|(d, _)| d.name.clone());
        match (device, &spec.name) {
            (Some(d), Some(n)) => format!("{d} {n}"),
            (Some(d), None) => d,
            (None, Some(n)) => n.clone(),
            (None, None) => watched.to_string(),
        }
    }

    /// The problem sensor's entity id, registered on first use.
    fn sensor_for(&self, watched: &str) -> Option<String> {
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = sensors.get(watched) {
            return Some(id.clone());
        }
        let (domain, object) = watched.split_once('.')?;
        // Keys are unique per watched entity (they name MQTT topics); the
        // entity id is the short, expected one unless that is taken.
        let key = format!("alert_{domain}_{object}");
        let mut candidates = [
            format!("binary_sensor.{object}_alert"),
            format!("binary_sensor.{domain}_{object}_alert"),
        ]
        .into_iter();
        let id = candidates.find(|id| {
            self.store
                .spec(id)
                .is_none_or(|s| s.device_id == BRIDGE_DEVICE && s.key == key)
        })?;
        let mut spec = EntitySpec::new(BRIDGE_DEVICE, &key, Component::BinarySensor)
            .named(&format!("{} alert", self.friendly_name(watched)))
            .class("problem");
        spec.entity_id = id.clone();
        match self.store.upsert_entity(spec) {
            Ok(()) => {
                sensors.insert(watched.to_string(), id.clone());
                Some(id)
            }
            Err(e) => {
                tracing::warn!("alert sensor of {watched}: {e}");
                None
            }
        }
    }
}
