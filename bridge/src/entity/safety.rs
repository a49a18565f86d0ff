//! Per-entity safety envelope, enforced in the host between the service
//! router and the drivers, whatever a plugin (or anyone) asks.
//!
//! - `temperature_c`: a commanded `temperature` is clamped into the device's
//!   range (°C), with a warning naming the asked and applied values.
//! - `position_percent`: a commanded valve `position` (HA's
//!   `valve.set_valve_position`) is clamped into the range (%, e.g. 0–100,
//!   or a minimum opening kept for frost protection), with a warning naming
//!   the asked and applied values. HA's own service schema refuses values
//!   outside 0–100; Hearth clamps instead, so a plugin whose optimiser
//!   returns 100.000001 still opens the valve fully.
//! - `min_off_s`: a compressor must stay off this long before it may start
//!   again (anti-short-cycle); an early `turn_on` is refused. Turning off is
//!   always allowed: stopping is the safe direction.

use super::{EntityStore, ServiceCall, ServiceError};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SafetyEnvelope {
    /// (min, max) °C for a `temperature` field.
    pub temperature_c: Option<(f64, f64)>,
    /// (min, max) % for a `position` field (valves).
    pub position_percent: Option<(f64, f64)>,
    /// s an entity must have been `off` before `turn_on`/`toggle` may start it.
    pub min_off_s: Option<f64>,
    /// What happens to the entity when the plugin driving it faults.
    pub on_controller_fault: FaultAction,
}

/// The safe state of an entity whose controller faulted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FaultAction {
    /// Keep the last command (an AC keeps cooling at its last setpoint).
    #[default]
    Hold,
    /// Turn the entity off.
    TurnOff,
}

impl SafetyEnvelope {
    /// Returns the (possibly clamped) service data, or refuses the call.
    pub fn apply(
        &self,
        store: &EntityStore,
        entity_id: &str,
        call: &ServiceCall,
    ) -> Result<Map<String, Value>, ServiceError> {
        let mut data = call.data.clone();
        if let (Some((lo, hi)), Some(asked)) = (
            self.temperature_c,
            data.get("temperature").and_then(Value::as_f64),
        ) {
            let applied = asked.clamp(lo, hi);
            if applied != asked {
                tracing::warn!(
                    source = %call.source,
                    "{entity_id}: temperature {asked} °C is outside the safe range {lo}–{hi} °C; sending {applied} °C"
                );
                data.insert("temperature".into(), applied.into());
            }
        }
        if let (Some((lo, hi)), Some(asked)) = (
            self.position_percent,
            data.get("position").and_then(Value::as_f64),
        ) {
            let applied = asked.clamp(lo, hi);
            if applied != asked {
                tracing::warn!(
                    source = %call.source,
                    "{entity_id}: position {asked} % is outside the safe range {lo}–{hi} %; sending {applied} %"
                );
                data.insert("position".into(), applied.into());
            }
        }
        if let Some(min_off) = self.min_off_s {
            let starts = matches!(call.service.as_str(), "turn_on" | "toggle");
            if let Some(state) = store.get(entity_id).filter(|s| starts && s.state == "off") {
                let off_for_s = (store.clock().now_ms() - state.last_changed) as f64 / 1000.0;
                if off_for_s < min_off {
                    return Err(ServiceError::Refused {
                        entity: entity_id.into(),
                        reason: format!(
                            "off for {off_for_s:.0} s, must stay off {min_off:.0} s before restarting"
                        ),
                    });
                }
            }
        }
        Ok(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::entity::{CallSource, Component, Device, EntitySpec};
    use serde_json::json;

    fn store_with_switch(state: &str) -> std::sync::Arc<EntityStore> {
        let store = EntityStore::new(Clock::real());
        let device = Device {
            id: "ac".into(),
            name: "AC".into(),
            manufacturer: "t".into(),
            model: "t".into(),
            sw_version: None,
            via_device: None,
        };
        store.upsert_device("t", device).unwrap();
        store
            .upsert_entity(EntitySpec::new("ac", "power", Component::Switch))
            .unwrap();
        store
            .set_state("switch.ac_power", state, Map::new())
            .unwrap();
        store
    }

    #[test]
    fn temperature_is_clamped_into_range() {
        let store = store_with_switch("off");
        let env = SafetyEnvelope {
            temperature_c: Some((16.0, 30.0)),
            ..Default::default()
        };
        let Value::Object(data) = json!({"temperature": 5.0}) else {
            unreachable!()
        };
        let call = ServiceCall::new(
            "climate",
            "set_temperature",
            "climate.ac",
            data,
            CallSource::Plugin("p".into()),
        );
        let out = env.apply(&store, "climate.ac", &call).unwrap();
        assert_eq!(out["temperature"], json!(16.0));
    }

    #[test]
    fn valve_position_is_clamped_into_range() {
        let store = store_with_switch("off");
        let env = SafetyEnvelope {
            position_percent: Some((0.0, 100.0)),
            ..Default::default()
        };
        for (asked, applied) in [(150.0, 100.0), (-5.0, 0.0), (70.0, 70.0)] {
            let Value::Object(data) = json!({"position": asked}) else {
                unreachable!()
            };
            let call = ServiceCall::new(
                "valve",
                "set_valve_position",
                "valve.v",
                data,
                CallSource::Internal,
            );
            let out = env.apply(&store, "valve.v", &call).unwrap();
            assert_eq!(out["position"].as_f64(), Some(applied), "asked {asked}");
        }
    }

    #[test]
    fn restart_too_soon_is_refused_but_stop_is_not() {
        let env = SafetyEnvelope {
            min_off_s: Some(180.0),
            ..Default::default()
        };
        let store = store_with_switch("off");
        let on = ServiceCall::new(
            "switch",
            "turn_on",
            "switch.ac_power",
            Map::new(),
            CallSource::Internal,
        );
        assert!(matches!(
            env.apply(&store, "switch.ac_power", &on),
            Err(ServiceError::Refused { .. })
        ));
        let store = store_with_switch("on");
        let off = ServiceCall::new(
            "switch",
            "turn_off",
            "switch.ac_power",
            Map::new(),
            CallSource::Internal,
        );
        assert!(env.apply(&store, "switch.ac_power", &off).is_ok());
        // Keep-alive: turn_on while already on is not a restart.
        assert!(env.apply(&store, "switch.ac_power", &on).is_ok());
    }
}
