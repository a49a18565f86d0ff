//! What the IR air-conditioner drivers ([`super::tasmota_ir`],
//! [`super::broadlink`]) share: the host safety envelope they register,
//! and the `climate` state they publish.
//!
//! - Envelope: the climate's `temperature` within (min, max) °C, the power
//!   switch's `min_off_s` compressor protection (an early `turn_on` is
//!   refused by the router, see [`crate::entity::SafetyEnvelope`]).
//! - State: hvac mode, target (°C), current temperature from the room
//!   sensor (°C), `hvac_action` from the AC's power sensor (W): `off`,
//!   `idle` (powered but under `running_power_w`), or the mode's action
//!   (`cooling`, `heating`, `drying`, `fan`).

use super::DriverContext;
use crate::entity::{DriverCommand, EntityStore, SafetyEnvelope};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

/// Registers the climate (temperature range) and power switch
/// (`min_off_s`) with the router's safety envelope.
pub fn register(
    ctx: &DriverContext,
    climate_id: &str,
    switch_id: &str,
    tx: mpsc::Sender<DriverCommand>,
    temp_range_c: (f64, f64),
    min_off_s: f64,
) {
    let range = SafetyEnvelope {
        temperature_c: Some(temp_range_c),
        ..Default::default()
    };
    ctx.router.register(climate_id, tx.clone(), range);
    ctx.router.register(
        switch_id,
        tx,
        SafetyEnvelope {
            min_off_s: Some(min_off_s),
            ..Default::default()
        },
    );
}

/// HA's `hvac_action` for a mode, the remote's power and the AC's draw (W).
pub fn hvac_action(
    mode: &str,
    power_on: bool,
    watts: Option<f64>,
    running_power_w: f64,
) -> &'static str {
    match (mode, power_on, watts) {
        ("off", _, _) => "off",
        (_, false, _) => "idle",
        (_, true, Some(w)) if w < running_power_w => "idle",
        ("heat", ..) => "heating",
        ("dry", ..) => "drying",
        ("fan_only", ..) => "fan",
        _ => "cooling",
    }
}

/// One IR climate as it stands.
pub struct ClimateView<'a> {
    pub modes: &'a [String],
    pub mode: &'a str,
    pub power_on: bool,
    /// °C
    pub min_temp: f64,
    /// °C
    pub max_temp: f64,
    /// °C
    pub target: f64,
    pub temperature_sensor: Option<&'a str>,
    pub power_sensor: Option<&'a str>,
    /// W
    pub running_power_w: f64,
}

/// The climate entity's attributes (HA's names).
pub fn climate_attrs(store: &EntityStore, v: &ClimateView) -> Map<String, Value> {
    let read = |id: Option<&str>| id.and_then(|s| store.get(s)).and_then(|s| s.number());
    let current = read(v.temperature_sensor);
    let watts = read(v.power_sensor);
    let mut attrs = Map::new();
    attrs.insert("hvac_modes".into(), json!(v.modes));
    attrs.insert("min_temp".into(), json!(v.min_temp));
    attrs.insert("max_temp".into(), json!(v.max_temp));
    attrs.insert("temperature".into(), json!(v.target));
    attrs.insert("current_temperature".into(), json!(current));
    attrs.insert(
        "hvac_action".into(),
        json!(hvac_action(v.mode, v.power_on, watts, v.running_power_w)),
    );
    attrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hvac_action_follows_mode_power_and_draw() {
        assert_eq!(hvac_action("off", true, Some(900.0), 300.0), "off");
        assert_eq!(hvac_action("cool", false, None, 300.0), "idle");
        assert_eq!(hvac_action("cool", true, Some(40.0), 300.0), "idle");
        assert_eq!(hvac_action("cool", true, Some(900.0), 300.0), "cooling");
        assert_eq!(hvac_action("heat", true, None, 300.0), "heating");
    }
}
