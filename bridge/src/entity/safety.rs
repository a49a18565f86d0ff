//! Per-entity safety envelope, enforced in the host between the service
//! router and the drivers, whatever a plugin (or anyone) asks.
//!
//! - `temperature_c`: a commanded `temperature` outside the device's range
//!   (°C) is refused, naming the range.
//! - `position_percent`: a commanded valve `position` (HA's
//!   `valve.set_valve_position`) outside the range (%, e.g. a minimum
//!   opening kept for frost protection) is refused, naming the range.
//!
//!   Both used to clamp; a caller was then told "success" for a target it
//!   did not get (issue 12). The router checks what the entity advertises
//!   first ([`super::accepts`]); these ranges are the device's own limits,
//!   kept here as the last check before the driver even when narrower.
//! - `min_off_s`: a compressor must stay off this long before it may start
//!   again (anti-short-cycle); an early `turn_on` is refused. Turning off is
//!   always allowed: stopping is the safe direction.

use super::accepts::{Allowed, Refusal, Rule};
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
    /// Returns the service data to send (`data`, as the router accepted
    /// it), or refuses the call.
    pub fn apply(
        &self,
        store: &EntityStore,
        entity_id: &str,
        call: &ServiceCall,
        data: Map<String, Value>,
    ) -> Result<Map<String, Value>, ServiceError> {
        // `open_valve` and `close_valve` command a position too: 100 % and
        // 0 % (a frost-protection minimum must not be closed past).
        let implied_position = match call.service.as_str() {
            "open_valve" => Some(Value::from(100.0)),
            "close_valve" => Some(Value::from(0.0)),
            _ => None,
        };
        let ranges = [
            ("temperature", self.temperature_c, "°C", None),
            (
                "position",
                self.position_percent,
                "%",
                implied_position.as_ref(),
            ),
        ];
        for (field, range, unit, implied) in ranges {
            if let (Some((min, max)), Some(asked)) = (range, data.get(field).or(implied))
                && !asked.as_f64().is_some_and(|x| (min..=max).contains(&x))
            {
                return Err(ServiceError::NotAccepted(Box::new(Refusal {
                    entity: entity_id.into(),
                    field: field.into(),
                    value: asked.to_string(),
                    allowed: Allowed::Range { min, max, unit },
                    rule: Rule::SafetyEnvelope,
                })));
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
    use crate::entity::{CallSource, Component, EntitySpec};
    use serde_json::json;

    fn store_with_switch(state: &str) -> std::sync::Arc<EntityStore> {
        let store = crate::entity::fixtures::store_with_device("ac");
        store
            .upsert_entity(EntitySpec::new("ac", "power", Component::Switch))
            .unwrap();
        store
            .set_state("switch.ac_power", state, Map::new())
            .unwrap();
        store
    }

    #[test]
    fn values_outside_the_envelope_are_refused_not_clamped() {
        let store = store_with_switch("off");
        let env = SafetyEnvelope {
            temperature_c: Some((16.0, 30.0)),
            position_percent: Some((10.0, 100.0)),
            ..Default::default()
        };
        let cases = [
            ("temperature", json!(5.0), false),
            ("temperature", json!(30.0), true),
            ("position", json!(150), false),
            ("position", json!(5), false),
            ("position", json!(70), true),
        ];
        for (field, asked, ok) in cases {
            let mut data = Map::new();
            data.insert(field.into(), asked.clone());
            let call = ServiceCall::new(
                "x",
                "y",
                "x.e",
                data.clone(),
                CallSource::Plugin("p".into()),
            );
            match env.apply(&store, "x.e", &call, data) {
                Ok(out) => {
                    assert!(ok, "{field} {asked} passed");
                    assert_eq!(out[field], asked);
                }
                Err(ServiceError::NotAccepted(r)) => {
                    assert!(!ok, "{field} {asked} refused: {r}");
                    assert_eq!(r.rule, Rule::SafetyEnvelope);
                    assert_eq!(r.field, field);
                }
                Err(e) => panic!("{e}"),
            }
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
            env.apply(&store, "switch.ac_power", &on, Map::new()),
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
        assert!(
            env.apply(&store, "switch.ac_power", &off, Map::new())
                .is_ok()
        );
        // Keep-alive: turn_on while already on is not a restart.
        assert!(
            env.apply(&store, "switch.ac_power", &on, Map::new())
                .is_ok()
        );
    }
}
