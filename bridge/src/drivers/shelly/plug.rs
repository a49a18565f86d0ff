//! What the driver knows of one plug and writes to the store: the switch,
//! the meters (created on their first reading: unmetered models have
//! none), the `problem` binary sensor (the status's `errors`), the limit
//! sensors, and the device's availability.

use super::ShellyConfig;
use super::http::{DeviceInfo, ShellyError};
use super::limits::{self, Limits};
use crate::drivers::DriverContext;
use crate::drivers::shelly_rpc::OutletStatus;
use crate::entity::{Component, Device, EntitySpec, format_number};
use crate::logging::Throttle;
use serde_json::{Map, Value};
use std::sync::Arc;

pub(super) const OWNER: &str = "shelly";
use crate::drivers::FAILURES_BEFORE_OFFLINE as FAILURES_BEFORE_UNAVAILABLE;

/// (key, name, device class, unit, state class, decimals) of each meter.
const METERS: [(&str, &str, &str, &str, &str, usize); 4] = [
    ("power", "Power", "power", "W", "measurement", 1),
    ("voltage", "Voltage", "voltage", "V", "measurement", 1),
    ("current", "Current", "current", "A", "measurement", 3),
    ("energy", "Energy", "energy", "Wh", "total_increasing", 1),
];

pub(super) struct Plug {
    pub cfg: ShellyConfig,
    pub ctx: DriverContext,
    pub switch_entity: String,
    problem_entity: String,
    status: OutletStatus,
    /// HTTP failures in a row.
    failures: u32,
    /// Why the device said it is offline (`<prefix>/online` = false).
    mqtt_offline: Option<String>,
    bad_input: Arc<Throttle>,
}

pub(super) fn device(cfg: &ShellyConfig, info: Option<&DeviceInfo>) -> Device {
    Device {
        id: cfg.id.clone(),
        name: cfg.name.clone(),
        manufacturer: "Shelly".into(),
        model: info
            .and_then(|i| i.model.clone().or(i.app.clone()))
            .unwrap_or_else(|| "Gen2 plug".into()),
        sw_version: info.and_then(|i| i.ver.clone()),
        via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
    }
}

impl Plug {
    /// Registers the device and its fixed entities.
    pub fn new(cfg: ShellyConfig, ctx: &DriverContext) -> anyhow::Result<Plug> {
        ctx.store.upsert_device(OWNER, device(&cfg, None))?;
        let mut switch = EntitySpec::new(&cfg.id, "switch", Component::Switch).class("outlet");
        switch.entity_id = format!("switch.{}", cfg.id.replace('-', "_"));
        let switch_entity = switch.entity_id.clone();
        ctx.store.upsert_entity(switch)?;
        let problem = EntitySpec::new(&cfg.id, "problem", Component::BinarySensor)
            .named("Problem")
            .class("problem")
            .diagnostic();
        let problem_entity = problem.entity_id.clone();
        ctx.store.upsert_entity(problem)?;
        if cfg.power_limit_w.is_some() || cfg.current_limit_a.is_some() {
            for spec in limits::entities(&cfg.id) {
                ctx.store.upsert_entity(spec)?;
            }
        }
        Ok(Plug {
            cfg,
            ctx: ctx.clone(),
            switch_entity,
            problem_entity,
            status: OutletStatus::default(),
            failures: 0,
            mqtt_offline: None,
            bad_input: Throttle::new("bad input"),
        })
    }

    pub fn name(&self) -> &str {
        &self.cfg.name
    }

    /// A malformed frame from `source` (a topic), throttled; ignored.
    pub fn warn(&self, source: &str, e: &dyn std::fmt::Display, payload: &[u8]) {
        if self.bad_input.admit(source) {
            tracing::warn!(
                "shelly `{}` {source}: {e} (payload `{}`); ignored, last good state kept",
                self.cfg.id,
                crate::broker::excerpt(payload)
            );
        }
    }

    /// Overlays a (partial) status and writes what is known.
    pub fn apply(&mut self, patch: &OutletStatus) {
        self.status.merge(patch);
        let s = &self.status;
        let store = &self.ctx.store;
        if let Some(on) = s.output {
            let _ = store.set_state(
                &self.switch_entity,
                if on { "on" } else { "off" },
                Map::new(),
            );
        }
        let values = [s.apower, s.voltage, s.current, s.energy_wh];
        for ((key, name, class, unit, state_class, decimals), value) in
            METERS.into_iter().zip(values)
        {
            let Some(v) = value else { continue };
            let spec = EntitySpec::new(&self.cfg.id, key, Component::Sensor)
                .named(name)
                .class(class)
                .measured(unit, state_class);
            let id = spec.entity_id.clone();
            if store.spec(&id).is_none() {
                let _ = store.upsert_entity(spec);
            }
            let _ = store.set_state(&id, format_number(v, decimals), Map::new());
        }
        if let Some(errors) = &s.errors {
            let mut attrs = Map::new();
            attrs.insert(
                "errors".into(),
                Value::Array(errors.iter().cloned().map(Value::String).collect()),
            );
            let on = !errors.is_empty();
            let was_on = store
                .get(&self.problem_entity)
                .is_some_and(|st| st.state == "on");
            if on && !was_on {
                tracing::warn!(
                    "Shelly `{}` reports {}: the device switched its relay off by itself",
                    self.name(),
                    errors.join(", ")
                );
            }
            let _ = store.set_state(&self.problem_entity, if on { "on" } else { "off" }, attrs);
        }
    }

    fn available(&self) -> bool {
        self.failures < FAILURES_BEFORE_UNAVAILABLE && self.mqtt_offline.is_none()
    }

    fn publish_availability(&self, before: bool) {
        let now = self.available();
        if now != before {
            if now {
                tracing::info!("Shelly `{}` is reachable again", self.name());
            } else {
                tracing::warn!(
                    "Shelly `{}` is offline ({}): its entities are unavailable",
                    self.name(),
                    self.mqtt_offline
                        .clone()
                        .unwrap_or_else(|| format!("{} HTTP polls failed in a row", self.failures))
                );
            }
        }
        self.ctx.store.set_availability(&self.cfg.id, now);
    }

    /// An HTTP answer: the device is there (whatever its MQTT link says).
    pub fn http_ok(&mut self) {
        let before = self.available();
        self.failures = 0;
        self.mqtt_offline = None;
        self.publish_availability(before);
    }

    pub fn http_failed(&mut self, e: &ShellyError) {
        let before = self.available();
        self.failures += 1;
        tracing::warn!("Shelly `{}`: {e}", self.name());
        self.publish_availability(before);
    }

    /// `<prefix>/online`, or any push frame (`true`).
    pub fn mqtt_online(&mut self, online: bool, why: &str) {
        let before = self.available();
        if online {
            self.mqtt_offline = None;
            self.failures = 0;
        } else {
            self.mqtt_offline = Some(why.to_string());
        }
        self.publish_availability(before);
    }

    pub fn is_mqtt_offline(&self) -> bool {
        self.mqtt_offline.is_some()
    }

    /// The limits the device reports.
    pub fn show_limits(&self, got: Limits) {
        let [p, a] = limits::entities(&self.cfg.id);
        for (spec, value, decimals) in [(p, got.power_limit_w, 1), (a, got.current_limit_a, 2)] {
            let store = &self.ctx.store;
            if store.spec(&spec.entity_id).is_none() {
                let _ = store.upsert_entity(spec.clone());
            }
            let state = value.map_or("unknown".to_string(), |v| format_number(v, decimals));
            let _ = store.set_state(&spec.entity_id, state, Map::new());
        }
    }
}
