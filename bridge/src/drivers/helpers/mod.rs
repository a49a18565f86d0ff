//! Hearth-owned helper entities (`[[select]]`, `[[number]]`): HA's
//! `input_select` and `input_number`, but exposed through MQTT discovery as
//! HA's `select` and `number` (HA docs "MQTT Select", "MQTT Number"), so
//! HA, plugins and scripts share one value (e.g. who sits at an outlet, a
//! user's daily energy limit).
//!
//! There is no device behind them: the state is what was last commanded,
//! set by this driver once the router accepted the call (the option is one
//! of the options, the value within `min..max` and rounded to the step:
//! [`crate::entity::accepts`]). The restore machinery keeps it across
//! restarts; a saved state wins over the config's `initial`.
//!
//! Services (HA's names): `select.select_option` {option},
//! `select.select_next` / `select_previous` (cycling, HA's default) /
//! `select_first` / `select_last`; `number.set_value` {value}.

pub mod config;

use super::DriverContext;
use crate::entity::{
    Component, Device, DriverCommand, EntitySpec, InputSpec, SafetyEnvelope, ServiceError,
};
use config::{NumberConfig, SelectConfig};
use serde_json::{Map, Value};
use std::collections::HashMap;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The helpers' device id (reserved when helpers are configured).
pub const DEVICE: &str = "helpers";
const OWNER: &str = "helpers";

/// `select`: its options; `number`: nothing (the router checked the value).
enum Helper {
    Select(Vec<String>),
    Number,
}

/// HA's state of a number: Python's `str(float)` (`21.0`, `0.5`).
pub fn number_state(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// The entity of a `[[select]]`.
pub fn select_spec(s: &SelectConfig) -> EntitySpec {
    let mut spec =
        EntitySpec::new(DEVICE, &format!("select_{}", s.id), Component::Select).named(&s.name);
    spec.entity_id = config::entity_id("select", &s.id);
    spec.input = Some(InputSpec::Select {
        options: s.options.clone(),
    });
    spec.icon = s.icon.clone();
    spec
}

/// The entity of a `[[number]]`.
pub fn number_spec(n: &NumberConfig) -> EntitySpec {
    let mut spec =
        EntitySpec::new(DEVICE, &format!("number_{}", n.id), Component::Number).named(&n.name);
    spec.entity_id = config::entity_id("number", &n.id);
    spec.input = Some(InputSpec::Number {
        min: n.min,
        max: n.max,
        step: n.step,
        mode: n.mode.as_str().into(),
    });
    spec.unit = n.unit_of_measurement.clone();
    spec.icon = n.icon.clone();
    spec
}

/// Registers every helper at its initial state and serves their commands.
pub fn spawn(
    selects: &[SelectConfig],
    numbers: &[NumberConfig],
    ctx: &DriverContext,
) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(
        OWNER,
        Device {
            id: DEVICE.into(),
            name: "Hearth helpers".into(),
            manufacturer: "Hearth".into(),
            model: "Helpers".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    let (tx, mut commands) = mpsc::channel::<DriverCommand>(16);
    let mut helpers = HashMap::new();
    let mut initial = Vec::new();
    for s in selects {
        let spec = select_spec(s);
        initial.push((spec.entity_id.clone(), s.initial_option().to_string()));
        helpers.insert(spec.entity_id.clone(), Helper::Select(s.options.clone()));
        ctx.store.upsert_entity(spec)?;
    }
    for n in numbers {
        let spec = number_spec(n);
        initial.push((spec.entity_id.clone(), number_state(n.initial_value())));
        helpers.insert(spec.entity_id.clone(), Helper::Number);
        ctx.store.upsert_entity(spec)?;
    }
    ctx.store.set_availability(DEVICE, true);
    for (entity_id, state) in initial {
        ctx.store.set_state(&entity_id, state, Map::new())?;
        ctx.router
            .register(&entity_id, tx.clone(), SafetyEnvelope::default());
    }
    let store = ctx.store.clone();
    let mut shutdown = ctx.shutdown.clone();
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(cmd) = commands.recv() => {
                    let current = store.get(&cmd.entity_id).map(|s| s.state).unwrap_or_default();
                    let result = match helpers.get(&cmd.entity_id) {
                        Some(h) => next_state(h, &current, &cmd.service, &cmd.data)
                            .map_err(|reason| ServiceError::Driver {
                                entity: cmd.entity_id.clone(),
                                reason,
                            })
                            .and_then(|state| {
                                store.set_state(&cmd.entity_id, state, Map::new()).map_err(|e| {
                                    ServiceError::Driver { entity: cmd.entity_id.clone(), reason: e.to_string() }
                                })
                            }),
                        None => Err(ServiceError::UnknownEntity(cmd.entity_id.clone())),
                    };
                    let _ = cmd.reply.send(result);
                }
                _ = shutdown.wait() => break,
            }
        }
    }))
}

/// The state a command leaves; the router has already checked its data.
fn next_state(
    helper: &Helper,
    current: &str,
    service: &str,
    data: &Map<String, Value>,
) -> Result<String, String> {
    match (helper, service) {
        (Helper::Select(options), _) => {
            let at = options.iter().position(|o| o == current);
            let last = options.len().saturating_sub(1);
            let i = match service {
                "select_option" => {
                    let asked = data
                        .get("option")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    options
                        .iter()
                        .position(|o| o == asked)
                        .ok_or_else(|| format!("option `{asked}` is not one of the options"))?
                }
                "select_first" => 0,
                "select_last" => last,
                "select_next" => at.map_or(0, |i| if i >= last { 0 } else { i + 1 }),
                "select_previous" => at.map_or(last, |i| if i == 0 { last } else { i - 1 }),
                other => return Err(format!("a select does not handle `{other}`")),
            };
            options
                .get(i)
                .cloned()
                .ok_or_else(|| "a select without options".to_string())
        }
        (Helper::Number, "set_value") => data
            .get("value")
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
            .map(number_state)
            .ok_or_else(|| "set_value without a finite value".to_string()),
        (Helper::Number, other) => Err(format!("a number does not handle `{other}`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { unreachable!() };
        m
    }

    #[test]
    fn select_services_move_through_the_options_and_cycle() {
        let h = Helper::Select(vec!["a".into(), "b".into(), "c".into()]);
        let go = |cur: &str, service: &str| next_state(&h, cur, service, &Map::new()).unwrap();
        assert_eq!(go("a", "select_next"), "b");
        assert_eq!(go("c", "select_next"), "a");
        assert_eq!(go("a", "select_previous"), "c");
        assert_eq!(go("b", "select_first"), "a");
        assert_eq!(go("a", "select_last"), "c");
        let picked = next_state(&h, "a", "select_option", &data(json!({"option": "c"})));
        assert_eq!(picked.unwrap(), "c");
        assert!(next_state(&h, "a", "select_option", &data(json!({"option": "z"}))).is_err());
    }

    #[test]
    fn numbers_are_shown_as_ha_shows_floats() {
        assert_eq!(number_state(21.0), "21.0");
        assert_eq!(number_state(0.5), "0.5");
        let n = next_state(
            &Helper::Number,
            "1.0",
            "set_value",
            &data(json!({"value": 7})),
        );
        assert_eq!(n.unwrap(), "7.0");
    }
}
