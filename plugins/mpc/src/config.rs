//! The plugin's JSON config: names, units and defaults (the contract with
//! the bridge's sidecar files and the docs).

use crate::model::Params;
use crate::qp;
use serde::Deserialize;

/// Config of the MPC heating controller. Every field but `sensor` and
/// `valve` has a default; unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Room air temperature entity, °C (e.g. `sensor.house_temperature`).
    pub sensor: String,
    /// Valve entity (e.g. `valve.house_heating`); Home Assistant valve with
    /// attribute `current_position` 0–100.
    pub valve: String,
    /// Outdoor temperature entity, °C; when absent, Ta(now) is the
    /// `outdoor-temperature` forecast in force now.
    #[serde(default)]
    pub outdoor_sensor: Option<String>,
    /// Heating power at 100 % valve, W.
    #[serde(default = "d_heater_w")]
    pub heater_w: f64,
    /// Comfort band, °C (soft).
    #[serde(default = "d_comfort_low")]
    pub comfort_low_c: f64,
    /// Comfort band, °C (soft).
    #[serde(default = "d_comfort_high")]
    pub comfort_high_c: f64,
    /// Constraint tightening, K: the plan keeps its prediction at or above
    /// `comfort_low_c + comfort_margin_c`, so that the room stays above
    /// `comfort_low_c` (the floor comfort is judged by) despite what the
    /// model still gets wrong: the sensor's quantisation and noise, the
    /// emitter's lag the model does not have, and the transient error
    /// before the disturbance estimate has caught up with a change. Default
    /// 0.3 K: about three times the RMSE of a good fit's one-step
    /// prediction. It costs the energy of holding the room that much
    /// warmer (≈ 0.3 K × UA, 1–2 % of a winter day's heating). 0 = plan on
    /// the floor itself. Must be ≥ 0 and leave the band non-empty.
    #[serde(default = "d_comfort_margin")]
    pub comfort_margin_c: f64,
    /// Penalty below the band, € per K·h.
    #[serde(default = "d_under")]
    pub under_penalty_eur_per_kh: f64,
    /// Penalty above the band, € per K·h. Default 0.5: a quarter of the
    /// under-heating penalty, yet dearer than what storing heat above 28 °C
    /// saves on a Tempo red day (≈ 0.5 €/kWh between HC and HP); at 0.05
    /// the plan pre-heated a red night to 29 °C.
    #[serde(default = "d_over")]
    pub over_penalty_eur_per_kh: f64,
    /// Room temperature wanted at the horizon's end, °C (soft).
    #[serde(default = "d_terminal")]
    pub terminal_c: f64,
    /// Penalty per K below `terminal_c` at the horizon's end, €/K.
    #[serde(default = "d_terminal_penalty")]
    pub terminal_penalty_eur_per_k: f64,
    /// Horizon, h.
    #[serde(default = "d_horizon")]
    pub horizon_h: f64,
    /// Step of the horizon, the tick period and the history grid, min.
    #[serde(default = "d_step")]
    pub step_min: f64,
    /// Largest valve change per step, % (100 = none).
    #[serde(default = "d_ramp")]
    pub max_ramp_pct: f64,
    /// Valve bounds, %.
    #[serde(default)]
    pub valve_min_pct: f64,
    /// Valve bounds, %.
    #[serde(default = "d_valve_max")]
    pub valve_max_pct: f64,
    /// Fallback thermostat: valve 100 % below this, °C.
    #[serde(default = "d_fb_on")]
    pub fallback_on_below_c: f64,
    /// Fallback thermostat: valve 0 % above this, °C.
    #[serde(default = "d_fb_off")]
    pub fallback_off_above_c: f64,
    /// Valve position while the room sensor is unavailable, %.
    #[serde(default = "d_sensorless")]
    pub fallback_sensorless_pct: f64,
    /// Fit window, h.
    #[serde(default = "d_history")]
    pub history_h: f64,
    /// First fit once this much history is recorded, h.
    #[serde(default = "d_min_history")]
    pub min_history_h: f64,
    /// Refit period, h.
    #[serde(default = "d_refit")]
    pub refit_every_h: f64,
    /// Initial model parameters (commissioning); with them the MPC runs from
    /// the start.
    #[serde(default)]
    pub model: Option<Params>,
    /// The horizon solver: `banded` (default, [`qp::ipm`]) or `clarabel`
    /// (the general solver used before issue 19; kept to compare plans
    /// and timings in the same run, `benches/simulate.rs`).
    #[serde(default)]
    pub solver: SolverChoice,
}

fn d_heater_w() -> f64 {
    6000.0
}
fn d_comfort_low() -> f64 {
    19.0
}
fn d_comfort_high() -> f64 {
    28.0
}
fn d_comfort_margin() -> f64 {
    0.3
}
fn d_under() -> f64 {
    2.0
}
fn d_over() -> f64 {
    0.5
}
fn d_terminal() -> f64 {
    20.0
}
fn d_terminal_penalty() -> f64 {
    5.0
}
fn d_horizon() -> f64 {
    24.0
}
fn d_step() -> f64 {
    15.0
}
fn d_ramp() -> f64 {
    100.0
}
fn d_valve_max() -> f64 {
    100.0
}
fn d_fb_on() -> f64 {
    19.5
}
fn d_fb_off() -> f64 {
    20.5
}
fn d_sensorless() -> f64 {
    30.0
}
fn d_history() -> f64 {
    72.0
}
fn d_min_history() -> f64 {
    24.0
}
fn d_refit() -> f64 {
    24.0
}

/// [`Config::solver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SolverChoice {
    /// [`qp::Solver::Banded`].
    #[default]
    Banded,
    /// [`qp::Solver::Clarabel`].
    Clarabel,
}

/// Most horizon steps (fuel: a solve grows roughly linearly with N).
pub const MAX_STEPS: usize = 1000;
/// Most history samples kept.
pub const MAX_HISTORY: usize = 5000;

impl Config {
    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [
            ("heater_w", self.heater_w),
            ("comfort_low_c", self.comfort_low_c),
            ("comfort_high_c", self.comfort_high_c),
            ("comfort_margin_c", self.comfort_margin_c),
            ("under_penalty_eur_per_kh", self.under_penalty_eur_per_kh),
            ("over_penalty_eur_per_kh", self.over_penalty_eur_per_kh),
            ("terminal_c", self.terminal_c),
            (
                "terminal_penalty_eur_per_k",
                self.terminal_penalty_eur_per_k,
            ),
            ("horizon_h", self.horizon_h),
            ("step_min", self.step_min),
            ("max_ramp_pct", self.max_ramp_pct),
            ("valve_min_pct", self.valve_min_pct),
            ("valve_max_pct", self.valve_max_pct),
            ("fallback_on_below_c", self.fallback_on_below_c),
            ("fallback_off_above_c", self.fallback_off_above_c),
            ("fallback_sensorless_pct", self.fallback_sensorless_pct),
            ("history_h", self.history_h),
            ("min_history_h", self.min_history_h),
            ("refit_every_h", self.refit_every_h),
        ];
        for (k, v) in finite {
            if !v.is_finite() {
                return Err(format!("config: `{k}` must be a finite number"));
            }
        }
        let check = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("config: {msg}"))
            }
        };
        check(!self.sensor.is_empty(), "`sensor` is empty")?;
        check(!self.valve.is_empty(), "`valve` is empty")?;
        check(self.heater_w > 0.0, "`heater_w` must be > 0 W")?;
        check(
            self.comfort_low_c < self.comfort_high_c,
            "`comfort_low_c` must be below `comfort_high_c`",
        )?;
        check(
            self.comfort_margin_c >= 0.0
                && self.comfort_low_c + self.comfort_margin_c < self.comfort_high_c,
            "`comfort_margin_c` must be ≥ 0 and keep `comfort_low_c + comfort_margin_c` below `comfort_high_c`",
        )?;
        check(
            self.under_penalty_eur_per_kh >= 0.0
                && self.over_penalty_eur_per_kh >= 0.0
                && self.terminal_penalty_eur_per_k >= 0.0,
            "penalties must be ≥ 0",
        )?;
        check(
            (1.0..=240.0).contains(&self.step_min),
            "`step_min` must be within 1–240 min",
        )?;
        check(
            self.horizon_h * 60.0 >= self.step_min,
            "`horizon_h` must cover at least one step",
        )?;
        check(
            self.steps() <= MAX_STEPS,
            &format!("`horizon_h`/`step_min` gives more than {MAX_STEPS} steps"),
        )?;
        check(
            0.0 <= self.valve_min_pct
                && self.valve_min_pct < self.valve_max_pct
                && self.valve_max_pct <= 100.0,
            "need 0 ≤ `valve_min_pct` < `valve_max_pct` ≤ 100",
        )?;
        check(self.max_ramp_pct > 0.0, "`max_ramp_pct` must be > 0")?;
        check(
            self.fallback_on_below_c < self.fallback_off_above_c,
            "`fallback_on_below_c` must be below `fallback_off_above_c`",
        )?;
        check(
            (0.0..=100.0).contains(&self.fallback_sensorless_pct),
            "`fallback_sensorless_pct` must be within 0–100",
        )?;
        check(
            0.0 < self.min_history_h && self.min_history_h <= self.history_h,
            "need 0 < `min_history_h` ≤ `history_h`",
        )?;
        check(
            self.history_h * 60.0 / self.step_min <= MAX_HISTORY as f64,
            &format!("`history_h`/`step_min` gives more than {MAX_HISTORY} samples"),
        )?;
        check(self.refit_every_h > 0.0, "`refit_every_h` must be > 0")?;
        if let Some(p) = &self.model {
            check(
                p.is_valid(),
                "`model` parameters must be finite and positive",
            )?;
        }
        Ok(())
    }

    /// Step, ms.
    pub fn step_ms(&self) -> i64 {
        (self.step_min * 60_000.0).round() as i64
    }

    /// Step, s.
    pub fn step_s(&self) -> f64 {
        self.step_min * 60.0
    }

    /// Horizon steps N.
    pub fn steps(&self) -> usize {
        (self.horizon_h * 60.0 / self.step_min).round().max(1.0) as usize
    }

    /// Steps in one hour (at least 1), for "the prediction in one hour".
    pub fn steps_per_hour(&self) -> usize {
        (60.0 / self.step_min).round().max(1.0) as usize
    }

    /// The horizon problem's settings (valve in fractions; the lower comfort
    /// bound tightened by `comfort_margin_c`).
    pub fn qp_settings(&self) -> qp::Settings {
        qp::Settings {
            heater_w: self.heater_w,
            comfort_low_c: self.comfort_low_c + self.comfort_margin_c,
            comfort_high_c: self.comfort_high_c,
            under_eur_per_kh: self.under_penalty_eur_per_kh,
            over_eur_per_kh: self.over_penalty_eur_per_kh,
            terminal_c: Some(self.terminal_c),
            terminal_eur_per_k: self.terminal_penalty_eur_per_k,
            u_min: self.valve_min_pct / 100.0,
            u_max: self.valve_max_pct / 100.0,
            ramp: self.max_ramp_pct / 100.0,
            ..qp::Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Config, String> {
        let c: Config = hearth_plugin_sdk::parse_config(v)?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn defaults_and_errors() {
        let c = parse(json!({"sensor": "sensor.t", "valve": "valve.v"})).unwrap();
        assert_eq!((c.heater_w, c.steps(), c.step_ms()), (6000.0, 96, 900_000));
        assert_eq!(
            (c.comfort_low_c, c.comfort_high_c, c.terminal_c),
            (19.0, 28.0, 20.0)
        );
        assert_eq!(c.fallback_sensorless_pct, 30.0);
        assert_eq!(c.comfort_margin_c, 0.3);
        assert!((c.qp_settings().comfort_low_c - 19.3).abs() < 1e-12);
        let e = parse(json!({"sensor": "s", "valve": "v", "comfort_margin_c": -0.1})).unwrap_err();
        assert!(e.contains("comfort_margin_c"), "{e}");
        assert!(c.model.is_none() && c.outdoor_sensor.is_none());
        let e = parse(json!({"sensor": "s", "valve": "v", "colour": 1})).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        let e = parse(json!({"valve": "v"})).unwrap_err();
        assert!(e.contains("sensor"), "{e}");
        let e = parse(json!({"sensor": "s", "valve": "v", "comfort_low_c": 30.0})).unwrap_err();
        assert!(e.contains("comfort_low_c"), "{e}");
        let e = parse(json!({"sensor": "s", "valve": "v", "step_min": 0.0})).unwrap_err();
        assert!(e.contains("step_min"), "{e}");
        let m = json!({"c_i": 4e6, "c_e": 4e7, "r_ie": 0.0015, "r_ea": 0.005, "a_w": 3.0});
        let c = parse(json!({"sensor": "s", "valve": "v", "model": m})).unwrap();
        assert_eq!(c.model.unwrap().r_ia, None);
        let bad = json!({"c_i": -1.0, "c_e": 4e7, "r_ie": 0.0015, "r_ea": 0.005});
        assert!(parse(json!({"sensor": "s", "valve": "v", "model": bad})).is_err());
    }
}
