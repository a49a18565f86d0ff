//! Shared fixtures: the contract's house (issue 15), a clock on the plan
//! grid, forecasts and output helpers.
#![allow(dead_code)]

use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::{Output, Sample};

/// 2026-01-01T00:00:00Z, the harness's clock at start (a step boundary).
pub const T0: i64 = 1_767_225_600_000;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;
/// One plan step of 1800 s.
pub const STEP: i64 = 30 * MIN;

pub fn washing_machine() -> Value {
    json!({"id": "washing_machine", "kind": "sequence", "switch": "switch.washing_machine",
        "power": "sensor.washing_machine_power", "ready": "binary_sensor.washing_machine_ready",
        "deadline": "sensor.washing_machine_deadline",
        "profile_w": [2000, 2000, 300, 300, 600, 100], "profile_step_s": 900, "fixed_start": "19:00"})
}

pub fn water_heater() -> Value {
    json!({"id": "water_heater", "kind": "thermal", "switch": "switch.water_heater",
        "power": "sensor.water_heater_power", "nominal_w": 2400,
        "temperature": "sensor.water_heater_temperature", "volume_l": 200, "loss_w_per_k": 1.8,
        "ambient_c": 18, "max_c": 65,
        "ready": [{"at": "06:30", "min_c": 50}, {"at": "19:30", "min_c": 50}],
        "draws": [{"at": "07:00", "wh": 3500}, {"at": "20:00", "wh": 3500}],
        "fixed_on": [["22:00", "06:00"]]})
}

pub fn ev() -> Value {
    json!({"id": "ev", "kind": "battery", "switch": "switch.ev", "power": "sensor.ev_power",
        "soc": "sensor.ev_battery", "plugged": "binary_sensor.ev_plugged",
        "deadline": "sensor.ev_departure", "capacity_wh": 40000, "max_w": 3700,
        "target_pct": 80, "efficiency": 0.9, "fixed_start": "18:00"})
}

/// A config with these loads, UTC local time, 24 h of 30 min steps.
pub fn config(loads: Vec<Value>) -> Value {
    json!({"step_s": 1800, "horizon_h": 24, "objective": "cost", "import_limit_w": 12000,
        "export_price": 0.04, "base_load_w": 400, "utc_offset_min": 0, "replan_s": 300,
        "node_limit": 20000, "tariff_period": "sensor.tariff_period", "expose_problem": true,
        "loads": loads})
}

/// A step series: `values[k]` from `T0 + k × STEP`.
pub fn series(values: &[f64]) -> Vec<Sample> {
    values
        .iter()
        .enumerate()
        .map(|(k, v)| Sample {
            time_ms: T0 + k as i64 * STEP,
            value: *v,
        })
        .collect()
}

/// 48 h of a price: `base` except `cheap` at the given steps.
pub fn prices(base: f64, cheap: f64, cheap_steps: std::ops::Range<usize>) -> Vec<f64> {
    (0..96)
        .map(|k| {
            if cheap_steps.contains(&k) {
                cheap
            } else {
                base
            }
        })
        .collect()
}

/// `2026-01-01T00:00:00Z` + `ms`, as RFC 3339.
pub fn iso(ms: i64) -> String {
    hearth_plugin_sdk::time::format_rfc3339(ms, 0)
}

/// The service calls of `out`, as `service entity`.
pub fn calls(out: &Output) -> Vec<String> {
    out.calls()
        .iter()
        .map(|c| format!("{} {}", c.service, c.entity_ids.join(",")))
        .collect()
}

/// The attributes of entity `id` in `out`.
pub fn attrs(out: &Output, id: &str) -> Option<Value> {
    let e = out.entities().iter().find(|e| e.object_id == id)?;
    hearth_plugin_sdk::serde_json::from_str(&e.attributes).ok()
}

pub fn state(out: &Output, id: &str) -> Option<String> {
    out.entities()
        .iter()
        .find(|e| e.object_id == id)
        .map(|e| e.state.clone())
}
