//! An EV on a plug-switched charger (a contactor or a smart plug in front
//! of a 3.7 kW wallbox): it arrives every day at `arrive_at` with
//! `arrive_pct`, leaves at the next `depart_at`, and charges at `max_w`
//! from the wall (`max_w × efficiency` into the battery) while plugged,
//! its relay on and below 100 %. The last step before 100 % draws only
//! what fills it. On departure it is judged at `target_pct` or not (by the
//! house), and comes back the next evening at `arrive_pct` again.

use super::LocalTime;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EvSpec {
    pub arrive_at: LocalTime,
    pub depart_at: LocalTime,
    pub arrive_pct: f64,
    pub capacity_wh: f64,
    pub max_w: f64,
    pub efficiency: f64,
    pub target_pct: f64,
}

impl Default for EvSpec {
    fn default() -> Self {
        EvSpec {
            arrive_at: LocalTime::hm(18, 0),
            depart_at: LocalTime::hm(7, 0),
            arrive_pct: 30.0,
            capacity_wh: 40_000.0,
            max_w: 3700.0,
            efficiency: 0.9,
            target_pct: 80.0,
        }
    }
}

impl EvSpec {
    pub fn check(&self) -> Result<(), String> {
        if !(self.capacity_wh.is_finite() && self.capacity_wh > 0.0) {
            return Err("`ev.capacity_wh` must be > 0".into());
        }
        if !(self.max_w.is_finite() && self.max_w > 0.0) {
            return Err("`ev.max_w` must be > 0".into());
        }
        if !(self.efficiency > 0.0 && self.efficiency <= 1.0) {
            return Err("`ev.efficiency` must be in (0, 1]".into());
        }
        for (what, v) in [
            ("arrive_pct", self.arrive_pct),
            ("target_pct", self.target_pct),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`ev.{what}` must be 0–100 %"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub spec: EvSpec,
    pub plugged: bool,
    pub soc_pct: f64,
    pub departure_ms: Option<i64>,
    /// It charged during the last step.
    pub charging: bool,
    pub power_w: f64,
    /// From the wall, Wh.
    pub energy_wh: f64,
    /// Charging runs begun.
    pub starts: u64,
    /// Charging stopped by the relay while plugged and below the target.
    pub splits: u64,
}

impl Ev {
    pub fn new(spec: EvSpec) -> Self {
        Ev {
            soc_pct: spec.arrive_pct,
            spec,
            plugged: false,
            departure_ms: None,
            charging: false,
            power_w: 0.0,
            energy_wh: 0.0,
            starts: 0,
            splits: 0,
        }
    }

    pub fn arrive(&mut self, departure_ms: i64) {
        self.plugged = true;
        self.soc_pct = self.spec.arrive_pct;
        self.departure_ms = Some(departure_ms);
        self.charging = false;
    }

    /// Leaves; returns its battery, %.
    pub fn depart(&mut self) -> f64 {
        self.plugged = false;
        self.departure_ms = None;
        self.charging = false;
        self.power_w = 0.0;
        self.soc_pct
    }

    /// One step of `dt_s` with the relay `on`; returns the wall power, W.
    pub fn step(&mut self, relay_on: bool, dt_s: f64) -> f64 {
        let can = self.plugged && relay_on && self.soc_pct < 100.0;
        if self.plugged && !relay_on && self.charging && self.soc_pct < self.spec.target_pct {
            self.splits += 1;
        }
        if can && !self.charging {
            self.starts += 1;
        }
        self.charging = can;
        if !can {
            self.power_w = 0.0;
            return 0.0;
        }
        let s = &self.spec;
        let room_wh = (100.0 - self.soc_pct) / 100.0 * s.capacity_wh;
        let wall_wh = (s.max_w * dt_s / 3600.0).min(room_wh / s.efficiency);
        self.soc_pct += wall_wh * s.efficiency / s.capacity_wh * 100.0;
        if self.soc_pct >= 100.0 - 1e-9 {
            self.soc_pct = 100.0;
        }
        self.energy_wh += wall_wh;
        self.power_w = wall_wh * 3600.0 / dt_s;
        self.power_w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_charges_at_max_w_times_efficiency_and_stops_at_full() {
        let mut ev = Ev::new(EvSpec::default());
        assert_eq!(ev.step(true, 60.0), 0.0, "not plugged");
        ev.arrive(i64::MAX);
        assert_eq!(ev.step(true, 3600.0), 3700.0);
        // 3.7 kWh × 0.9 = 3.33 kWh of 40 kWh = 8.325 points.
        assert!((ev.soc_pct - 38.325).abs() < 1e-9, "{}", ev.soc_pct);
        let mut steps = 0;
        while ev.step(true, 60.0) > 0.0 {
            steps += 1;
            assert!(steps < 100_000);
        }
        assert_eq!(ev.soc_pct, 100.0);
        assert_eq!(ev.step(true, 60.0), 0.0, "full: draws nothing");
        // Wall energy = battery energy / efficiency.
        let battery_wh = (100.0 - 30.0) / 100.0 * 40_000.0;
        assert!((ev.energy_wh - battery_wh / 0.9).abs() < 1e-6);
        assert_eq!((ev.starts, ev.splits), (1, 0));
    }

    #[test]
    fn the_relay_off_below_target_is_a_split() {
        let mut ev = Ev::new(EvSpec::default());
        ev.arrive(i64::MAX);
        ev.step(true, 600.0);
        ev.step(false, 600.0);
        ev.step(true, 600.0);
        assert_eq!((ev.starts, ev.splits), (2, 1));
        assert_eq!(ev.depart(), ev.soc_pct);
        assert!(!ev.plugged);
    }
}
