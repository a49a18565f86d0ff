//! A storage water heater: one fully mixed tank (a single temperature),
//! an on/off element behind the relay and the tank's own thermostat, a
//! standing loss to the room, and hot-water draws.
//!
//! - Heat capacity `C = volume_l × 1.163 Wh/(L·K)` (water: 4186 J/(kg·K)
//!   × 1 kg/L ÷ 3600 s/h = 1.163 Wh/(L·K)).
//! - The thermostat opens at `max_c` and closes again 2 K below it
//!   (`hysteresis_k`); the element draws `element_w` when the relay is on
//!   and the thermostat closed.
//! - Losses `loss_w_per_k × (T − ambient_c)`.
//! - A draw is litres of 40 °C mixed water (a shower) made from the tank
//!   and cold water at `cold_c`; the heat it takes from the tank is
//!   `litres × 1.163 × (40 − cold_c)` Wh, spread evenly over `minutes`.
//!   (A fully mixed tank below 40 °C still gives that heat: the shower is
//!   cold then, which the `ready` checks count.)
//! - Explicit Euler at the simulator's step:
//!   `T += (P_element − loss − P_draw) × Δt_h / C`. At 60 s and 2.4 kW the
//!   tank moves ≈ 0.17 K per step, so the thermostat overshoots by less.

use super::LocalTime;
use serde::Deserialize;

/// Wh per litre per kelvin of water.
pub const WH_PER_L_K: f64 = 1.163;
/// Temperature of the mixed water a draw delivers, °C.
pub const MIXED_C: f64 = 40.0;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WaterHeaterSpec {
    pub volume_l: f64,
    pub element_w: f64,
    /// The tank thermostat's setpoint, °C.
    pub max_c: f64,
    pub hysteresis_k: f64,
    pub loss_w_per_k: f64,
    /// The room around the tank, °C.
    pub ambient_c: f64,
    /// Mains water, °C.
    pub cold_c: f64,
    /// Tank at the start, °C.
    pub initial_c: f64,
    /// Hot-water draws, every day.
    pub draws: Vec<Draw>,
    /// The tank must be at least `min_c` at each `at`, every day.
    pub ready: Vec<Ready>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Draw {
    pub at: LocalTime,
    /// Litres of mixed water at 40 °C.
    pub litres: f64,
    #[serde(default = "ten")]
    pub minutes: f64,
}

fn ten() -> f64 {
    10.0
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub at: LocalTime,
    pub min_c: f64,
}

impl Default for WaterHeaterSpec {
    fn default() -> Self {
        WaterHeaterSpec {
            volume_l: 200.0,
            element_w: 2400.0,
            max_c: 65.0,
            hysteresis_k: 2.0,
            loss_w_per_k: 1.8,
            ambient_c: 18.0,
            cold_c: 12.0,
            initial_c: 55.0,
            draws: Vec::new(),
            ready: Vec::new(),
        }
    }
}

impl WaterHeaterSpec {
    pub fn check(&self) -> Result<(), String> {
        let pos = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("`water_heater.{what}` must be > 0, got {v}"))
            }
        };
        pos("volume_l", self.volume_l)?;
        pos("element_w", self.element_w)?;
        if !(self.loss_w_per_k.is_finite() && self.loss_w_per_k >= 0.0) {
            return Err("`water_heater.loss_w_per_k` must be ≥ 0".into());
        }
        if !(self.hysteresis_k.is_finite() && self.hysteresis_k >= 0.0) {
            return Err("`water_heater.hysteresis_k` must be ≥ 0".into());
        }
        for d in &self.draws {
            pos("draws.litres", d.litres)?;
            pos("draws.minutes", d.minutes)?;
        }
        for v in [self.max_c, self.ambient_c, self.cold_c, self.initial_c] {
            if !v.is_finite() {
                return Err("`water_heater` temperatures must be numbers".into());
            }
        }
        Ok(())
    }

    /// Heat capacity, Wh/K.
    pub fn capacity_wh_per_k(&self) -> f64 {
        self.volume_l * WH_PER_L_K
    }

    /// Heat one draw takes from the tank, Wh.
    pub fn draw_wh(&self, d: &Draw) -> f64 {
        d.litres * WH_PER_L_K * (MIXED_C - self.cold_c)
    }

    /// Heat drawn at local time of day `s` (s after midnight), W.
    pub fn draw_w_at(&self, s: f64) -> f64 {
        self.draws
            .iter()
            .filter(|d| {
                let a = d.at.minutes as f64 * 60.0;
                s >= a && s < a + d.minutes * 60.0
            })
            .map(|d| self.draw_wh(d) / (d.minutes / 60.0))
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct WaterHeater {
    pub spec: WaterHeaterSpec,
    pub temp_c: f64,
    /// The thermostat is closed (it calls for heat).
    pub calling: bool,
    /// Electrical power over the last step, W.
    pub power_w: f64,
    /// Electricity in, Wh (also the heat in: a resistive element).
    pub energy_wh: f64,
    pub lost_wh: f64,
    pub drawn_wh: f64,
    /// Heating runs begun (the element went from off to on).
    pub starts: u64,
}

impl WaterHeater {
    pub fn new(spec: WaterHeaterSpec) -> Self {
        WaterHeater {
            temp_c: spec.initial_c,
            calling: spec.initial_c < spec.max_c,
            spec,
            power_w: 0.0,
            energy_wh: 0.0,
            lost_wh: 0.0,
            drawn_wh: 0.0,
            starts: 0,
        }
    }

    /// One step of `dt_s` with the relay `on` and `draw_w` of heat taken
    /// by hot water; returns the electrical power, W.
    pub fn step(&mut self, relay_on: bool, draw_w: f64, dt_s: f64) -> f64 {
        let s = &self.spec;
        if self.temp_c >= s.max_c {
            self.calling = false;
        } else if self.temp_c < s.max_c - s.hysteresis_k {
            self.calling = true;
        }
        let p = if relay_on && self.calling {
            s.element_w
        } else {
            0.0
        };
        if p > 0.0 && self.power_w == 0.0 {
            self.starts += 1;
        }
        let dt_h = dt_s / 3600.0;
        let loss_w = s.loss_w_per_k * (self.temp_c - s.ambient_c);
        self.temp_c += (p - loss_w - draw_w) * dt_h / s.capacity_wh_per_k();
        self.power_w = p;
        self.energy_wh += p * dt_h;
        self.lost_wh += loss_w * dt_h;
        self.drawn_wh += draw_w * dt_h;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WaterHeaterSpec {
        WaterHeaterSpec {
            initial_c: 45.0,
            draws: vec![Draw {
                at: LocalTime::hm(7, 0),
                litres: 100.0,
                minutes: 10.0,
            }],
            ..WaterHeaterSpec::default()
        }
    }

    #[test]
    fn the_tank_balances_heat_in_losses_and_draws() {
        let s = spec();
        let c = s.capacity_wh_per_k();
        let mut w = WaterHeater::new(s.clone());
        // 6 h in 1 min steps: heating, a shower at 07:00, losses.
        for k in 0..360 {
            let sec = 6.0 * 3600.0 + k as f64 * 60.0;
            w.step(k < 200, s.draw_w_at(sec), 60.0);
        }
        assert!(w.energy_wh > 1000.0 && w.drawn_wh > 1000.0, "{w:?}");
        // Draw heat = 100 L × 1.163 × (40 − 12) = 3256.4 Wh.
        assert!((w.drawn_wh - 3256.4).abs() < 0.1, "{}", w.drawn_wh);
        let stored = c * (w.temp_c - 45.0);
        let balance = w.energy_wh - w.lost_wh - w.drawn_wh;
        assert!((stored - balance).abs() < 1e-6, "{stored} vs {balance}");
        assert!(w.lost_wh > 0.0);
    }

    #[test]
    fn the_thermostat_cuts_at_max_and_waits_for_the_hysteresis() {
        let mut w = WaterHeater::new(WaterHeaterSpec {
            initial_c: 64.95,
            loss_w_per_k: 30.0,
            ..WaterHeaterSpec::default()
        });
        assert_eq!(w.step(true, 0.0, 60.0), 2400.0);
        assert!(w.temp_c >= 65.0);
        // Open: cools without heating until below 63 °C.
        let mut off_steps = 0;
        while w.step(true, 0.0, 60.0) == 0.0 {
            off_steps += 1;
            assert!(off_steps < 10_000);
        }
        assert!(w.temp_c < 63.1 && off_steps > 5, "{} {off_steps}", w.temp_c);
        assert_eq!(w.starts, 2);
        // Relay off: never heats.
        let mut cold = WaterHeater::new(WaterHeaterSpec::default());
        cold.temp_c = 30.0;
        assert_eq!(cold.step(false, 0.0, 60.0), 0.0);
    }
}
