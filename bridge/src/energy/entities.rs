//! The energy device's entities (device id `energy`), today's figures as
//! HA's sensor docs want them
//! (<https://developers.home-assistant.io/docs/core/entity/sensor>:
//! device class `energy` takes state class `total` or `total_increasing`,
//! `monetary` only `total`; a `total_increasing` value that falls starts a
//! new meter cycle, so a daily total resetting at midnight is
//! `total_increasing`, as HA's own `utility_meter` publishes it;
//! `last_reset` = the day's start is set on every one of them):
//!
//! | entity | unit | device class | state class |
//! |---|---|---|---|
//! | `sensor.energy_grid_import_today` | kWh | energy | total_increasing |
//! | `sensor.energy_grid_export_today` | kWh | energy | total_increasing |
//! | `sensor.energy_solar_today` | kWh | energy | total_increasing |
//! | `sensor.energy_consumption_today` | kWh | energy | total_increasing |
//! | `sensor.energy_device_<object>_today` (per `devices` entry, `_energy` dropped) | kWh | energy | total_increasing |
//! | `sensor.energy_self_consumption_today` | % | — | measurement |
//! | `sensor.energy_self_sufficiency_today` | % | — | measurement |
//! | `sensor.energy_cost_today` | EUR | monetary | total |
//! | `sensor.energy_cost_<period>_today` (`hp`, `hc`, …) | EUR | monetary | total |

use super::config::period_key;
use crate::entity::{Component, Device, EntitySpec, EntityStore, entity_id_for, format_number};
use serde_json::{Map, Value};

/// Device id and owner of the energy entities.
pub const DEVICE: &str = "energy";

pub fn id(key: &str) -> String {
    entity_id_for(Component::Sensor, DEVICE, key)
}

/// `devices` entry → its key: `sensor.water_heater_energy` →
/// `device_water_heater_today`.
pub fn device_key(entity_id: &str) -> String {
    let object = entity_id.split_once('.').map_or(entity_id, |(_, o)| o);
    let object = object.strip_suffix("_energy").unwrap_or(object);
    format!("device_{object}_today")
}

pub fn cost_key(period: &str) -> String {
    format!("cost_{}_today", period_key(period))
}

fn kwh(key: &str, name: &str) -> EntitySpec {
    EntitySpec::new(DEVICE, key, Component::Sensor)
        .named(name)
        .class("energy")
        .measured("kWh", "total_increasing")
}

fn eur(key: &str, name: &str) -> EntitySpec {
    EntitySpec::new(DEVICE, key, Component::Sensor)
        .named(name)
        .class("monetary")
        .measured("EUR", "total")
}

fn pct(key: &str, name: &str) -> EntitySpec {
    let mut s = EntitySpec::new(DEVICE, key, Component::Sensor).named(name);
    s.unit = Some("%".into());
    s.state_class = Some("measurement".into());
    s
}

/// The device and its fixed entities, the devices' and the periods'.
pub fn register(store: &EntityStore, devices: &[String], periods: &[String]) -> anyhow::Result<()> {
    store.upsert_device(
        DEVICE,
        Device {
            id: DEVICE.into(),
            name: "Energy".into(),
            manufacturer: "Hearth".into(),
            model: "Energy accounting".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    for spec in [
        kwh("grid_import_today", "Grid import today"),
        kwh("grid_export_today", "Grid export today"),
        kwh("solar_today", "Solar production today"),
        kwh("consumption_today", "Consumption today"),
        pct("self_consumption_today", "Self-consumption today"),
        pct("self_sufficiency_today", "Self-sufficiency today"),
        eur("cost_today", "Cost today"),
    ] {
        store.upsert_entity(spec)?;
    }
    for d in devices {
        store.upsert_entity(kwh(&device_key(d), &format!("{d} today")))?;
    }
    for p in periods {
        register_period(store, p)?;
    }
    Ok(())
}

pub fn register_period(store: &EntityStore, period: &str) -> anyhow::Result<()> {
    store.upsert_entity(eur(&cost_key(period), &format!("Cost {period} today")))?;
    Ok(())
}

fn attrs(day_start_ms: i64) -> Map<String, Value> {
    let mut a = Map::new();
    a.insert(
        "last_reset".into(),
        Value::String(crate::clock::iso8601(day_start_ms)),
    );
    a
}

/// kWh with 3 decimals (Wh resolution).
pub fn set_kwh(store: &EntityStore, key: &str, wh: f64, day_start_ms: i64) {
    let _ = store.set_state(&id(key), format_number(wh / 1000.0, 3), attrs(day_start_ms));
}

/// € with 2 decimals.
pub fn set_eur(store: &EntityStore, key: &str, eur: f64, day_start_ms: i64) {
    let _ = store.set_state(&id(key), format_number(eur, 2), attrs(day_start_ms));
}

/// % with 1 decimal, or `unknown`.
pub fn set_pct(store: &EntityStore, key: &str, v: Option<f64>) {
    let state = v.map_or_else(|| "unknown".to_string(), |v| format_number(v, 1));
    let _ = store.set_state(&id(key), state, Map::new());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids() {
        assert_eq!(
            id(&device_key("sensor.water_heater_energy")),
            "sensor.energy_device_water_heater_today"
        );
        assert_eq!(
            device_key("sensor.ev_charger_kwh"),
            "device_ev_charger_kwh_today"
        );
        assert_eq!(id(&cost_key("HC")), "sensor.energy_cost_hc_today");
    }
}
