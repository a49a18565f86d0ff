//! MPC heating controller: a grey-box building model learned from the
//! recorded history, and an economic horizon plan for a heating valve.
//!
//! - [`model`]: the two-state TiTe model (Bacher & Madsen 2011) and its
//!   exact discretisation;
//! - [`fit`]: output-error least squares with argmin's Nelder–Mead;
//! - [`qp`]: the horizon LP/QP (energy price, soft comfort band with
//!   asymmetric penalty, ramp, terminal condition) solved by a banded
//!   interior point of ours (clarabel as the reference);
//! - [`observer`]: steady-state Kalman filter for the unmeasured envelope
//!   temperature;
//! - [`fallback`]: the hysteresis thermostat used whenever the MPC cannot
//!   run; [`forecast`]: resampling of the host's forecast series;
//!   [`history`]: the observation ring the fit learns from;
//! - [`controller`]: the decisions, without host calls (native tests);
//!   this file: the host glue (reads states and forecasts, logs).
//!
//! Entities (sensor components): `mode` (`mpc` / `fallback`, attribute
//! `reason`), `next_valve_position` (%, attributes `plan`, `step_min`),
//! `predicted_temperature` (°C in one hour, attribute `trajectory`),
//! `expected_cost` (€ of energy over the horizon), `model_rmse` (°C,
//! attributes the parameters with units).

pub mod config;
pub mod controller;
pub mod fallback;
pub mod fit;
pub mod forecast;
pub mod history;
pub mod model;
pub mod observer;
pub mod qp;

use config::Config;
use controller::{Core, Log, Readings, Saved, entity};
use hearth_plugin_sdk::serde_json::Value;
use hearth_plugin_sdk::{
    Change, Controller, Description, Output, Reading, State, export_controller, info, parse_config,
    restore_json, save_json, sensor, series, warn,
};

/// The plugin: the [`Core`] plus host access.
pub struct Mpc {
    core: Core,
}

fn emit(logs: Vec<Log>) {
    for l in logs {
        match l {
            Log::Info(m) => info(&m),
            Log::Warn(m) => warn(&m),
        }
    }
}

fn samples(series: &str, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
    hearth_plugin_sdk::forecast(series, start_ms, end_ms)
        .into_iter()
        .map(|s| (s.time_ms, s.value))
        .collect()
}

impl Mpc {
    fn readings(&self, now_ms: i64) -> Readings {
        let cfg = &self.core.cfg;
        let end = now_ms.saturating_add(cfg.steps() as i64 * cfg.step_ms());
        let valve = State::get(&cfg.valve);
        // A removed sensor entity is as unavailable as a dead one.
        let room = Reading::get(&cfg.sensor);
        Readings {
            now_ms,
            room_c: room.number(),
            room_why: room.why_not(),
            valve_pct: valve.and_then(|v| v.attr_f64("current_position")),
            outdoor_c: cfg
                .outdoor_sensor
                .as_deref()
                .and_then(State::get)
                .and_then(|s| s.number()),
            price: samples(series::PRICE, now_ms, end),
            ta: samples(series::OUTDOOR_TEMPERATURE, now_ms, end),
            isol: samples(series::SOLAR_IRRADIANCE, now_ms, end),
        }
    }
}

impl Controller for Mpc {
    fn init(config: Value) -> Result<Self, String> {
        let cfg: Config = parse_config(config)?;
        cfg.validate()?;
        Ok(Mpc {
            core: Core::new(cfg),
        })
    }

    fn describe(&self) -> Description {
        let cfg = &self.core.cfg;
        let mut reads = vec![cfg.sensor.clone(), cfg.valve.clone()];
        reads.extend(cfg.outdoor_sensor.clone());
        Description {
            name: "mpc".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads,
            drives: vec![cfg.valve.clone()],
            config_schema: "{}".into(),
            tick_period_ms: u32::try_from(cfg.step_ms()).unwrap_or(u32::MAX),
            entities: vec![
                sensor(entity::MODE, "Heating control mode"),
                sensor(entity::NEXT_VALVE, "Next valve position").unit("%"),
                sensor(entity::PREDICTED, "Predicted temperature in 1 h")
                    .unit("°C")
                    .device_class("temperature")
                    .state_class("measurement"),
                sensor(entity::COST, "Expected heating cost (horizon)")
                    .unit("€")
                    .device_class("monetary"),
                sensor(entity::RMSE, "Model RMSE")
                    .unit("°C")
                    .state_class("measurement"),
            ],
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        if change.entity_id != self.core.cfg.sensor {
            return; // the valve's echo and the outdoor sensor wait for the tick
        }
        let room = change.new.as_ref().and_then(State::number);
        self.core.on_room(hearth_plugin_sdk::now_ms(), room, out);
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        let r = self.readings(now_ms);
        let logs = self.core.tick(&r, out);
        emit(logs);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.core.save())
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Saved = restore_json(bytes)?;
        let logs = self.core.restore(saved)?;
        emit(logs);
        Ok(())
    }
}

export_controller!(Mpc);
