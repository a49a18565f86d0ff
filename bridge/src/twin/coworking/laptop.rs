//! A laptop on a charger: a battery (Wh), a charger that delivers a
//! constant power up to [`TAPER_FROM_PCT`] and tapers linearly to zero at
//! 100 % (the constant-current/constant-voltage profile of Li-ion packs,
//! seen from the wall as a power that falls above ~80 %), and a use power
//! drawn while the user works: from the wall when the outlet is live, from
//! the battery when not.
//!
//! Units: W, Wh, %, s. The outlet's current is the charger's input power
//! over `voltage × power_factor` (RMS current of a switched-mode supply).

use serde::Deserialize;

/// Above this state of charge the charger tapers (the CV phase), %.
pub const TAPER_FROM_PCT: f64 = 80.0;

/// A laptop's nameplate and its day.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LaptopSpec {
    pub name: String,
    /// Battery capacity, Wh (typ. 50–100 Wh).
    pub capacity_wh: f64,
    /// Charge power into the battery in the constant-power phase, W.
    pub charge_w: f64,
    /// What the laptop consumes while in use, W.
    pub use_w: f64,
    /// Charger efficiency, wall to DC (0–1].
    #[serde(default = "default_efficiency")]
    pub efficiency: f64,
    /// Charger power factor (0–1]: RMS current = P / (V · PF).
    #[serde(default = "default_power_factor")]
    pub power_factor: f64,
    /// Battery at arrival, %.
    pub initial_pct: f64,
    /// Charged enough at this level, %.
    #[serde(default = "default_target")]
    pub target_pct: f64,
    /// Arrival and departure, ms since the epoch.
    pub arrive_ms: i64,
    pub leave_ms: i64,
    /// When its user says it leaves, ms (None: not told).
    #[serde(default)]
    pub declared_leave_ms: Option<i64>,
}

fn default_efficiency() -> f64 {
    0.9
}
fn default_power_factor() -> f64 {
    0.95
}
fn default_target() -> f64 {
    80.0
}

impl LaptopSpec {
    /// Errors name the laptop and the field.
    pub fn check(&self) -> Result<(), String> {
        let n = &self.name;
        let pos = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(format!("laptop `{n}`: `{what}` must be > 0, got {v}"))
            }
        };
        pos("capacity_wh", self.capacity_wh)?;
        pos("charge_w", self.charge_w)?;
        pos("efficiency", self.efficiency)?;
        pos("power_factor", self.power_factor)?;
        if self.efficiency > 1.0 || self.power_factor > 1.0 {
            return Err(format!(
                "laptop `{n}`: `efficiency` and `power_factor` must be ≤ 1"
            ));
        }
        if !(self.use_w.is_finite() && self.use_w >= 0.0) {
            return Err(format!("laptop `{n}`: `use_w` must be ≥ 0 W"));
        }
        for (what, v) in [
            ("initial_pct", self.initial_pct),
            ("target_pct", self.target_pct),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("laptop `{n}`: `{what}` must be 0–100 %, got {v}"));
            }
        }
        if self.leave_ms <= self.arrive_ms {
            return Err(format!("laptop `{n}`: leaves before it arrives"));
        }
        Ok(())
    }
}

/// A laptop's battery as it goes.
#[derive(Debug, Clone)]
pub struct Laptop {
    pub spec: LaptopSpec,
    /// State of charge, %.
    pub soc_pct: f64,
    /// Lowest state of charge while plugged, %.
    pub min_plugged_pct: f64,
    /// Whether it ever had an outlet (a laptop that only queued has no
    /// lowest level while plugged).
    pub seated: bool,
    /// Wh taken from the wall.
    pub wall_wh: f64,
}

impl Laptop {
    pub fn new(spec: LaptopSpec) -> Self {
        let soc = spec.initial_pct;
        Laptop {
            spec,
            soc_pct: soc,
            min_plugged_pct: soc,
            seated: false,
            wall_wh: 0.0,
        }
    }

    /// Charge power into the battery at `soc_pct`, W: constant up to
    /// [`TAPER_FROM_PCT`], then linear down to 0 at 100 %.
    pub fn charge_power_w(&self) -> f64 {
        let s = &self.spec;
        if self.soc_pct >= 100.0 {
            0.0
        } else if self.soc_pct <= TAPER_FROM_PCT {
            s.charge_w
        } else {
            s.charge_w * (100.0 - self.soc_pct) / (100.0 - TAPER_FROM_PCT)
        }
    }

    /// What the charger would take from a live outlet now, W.
    pub fn wall_power_w(&self) -> f64 {
        (self.charge_power_w() + self.spec.use_w) / self.spec.efficiency
    }

    /// RMS current at `voltage_v` from a live outlet now, A.
    pub fn wall_current_a(&self, voltage_v: f64) -> f64 {
        self.wall_power_w() / (voltage_v * self.spec.power_factor)
    }

    /// `dt_s` seconds with the outlet live (`powered`) or not; returns the
    /// wall energy taken, Wh. Unpowered, the use drains the battery; an
    /// empty laptop sleeps (draws nothing).
    pub fn step(&mut self, powered: bool, dt_s: f64) -> f64 {
        let cap = self.spec.capacity_wh;
        let h = dt_s / 3600.0;
        let wh = if powered {
            let wall = self.wall_power_w() * h;
            self.soc_pct = (self.soc_pct + self.charge_power_w() * h / cap * 100.0).min(100.0);
            wall
        } else {
            self.soc_pct = (self.soc_pct - self.spec.use_w * h / cap * 100.0).max(0.0);
            0.0
        };
        self.min_plugged_pct = self.min_plugged_pct.min(self.soc_pct);
        self.wall_wh += wh;
        wh
    }

    /// `dt_s` seconds waiting for an outlet: the use drains the battery;
    /// not a level reached while plugged.
    pub fn wait(&mut self, dt_s: f64) {
        let drained = self.spec.use_w * dt_s / 3600.0 / self.spec.capacity_wh * 100.0;
        self.soc_pct = (self.soc_pct - drained).max(0.0);
    }

    /// Wall energy to cover the use while plugged and bring the battery
    /// from its arrival level to its target, Wh (the request).
    pub fn requested_wh(&self) -> f64 {
        let s = &self.spec;
        let stay_h = (s.leave_ms - s.arrive_ms) as f64 / 3.6e6;
        let charge = (s.target_pct - s.initial_pct).max(0.0) / 100.0 * s.capacity_wh;
        (charge + s.use_w * stay_h) / s.efficiency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LaptopSpec {
        LaptopSpec {
            name: "l".into(),
            capacity_wh: 60.0,
            charge_w: 60.0,
            use_w: 20.0,
            efficiency: 0.8,
            power_factor: 0.5,
            initial_pct: 50.0,
            target_pct: 80.0,
            arrive_ms: 0,
            leave_ms: 3_600_000,
            declared_leave_ms: None,
        }
    }

    #[test]
    fn constant_power_then_taper() {
        let mut l = Laptop::new(spec());
        assert_eq!(l.charge_power_w(), 60.0);
        // (60 + 20) / 0.8 = 100 W; / (230 · 0.5) = 0.87 A.
        assert!((l.wall_current_a(230.0) - 100.0 / 115.0).abs() < 1e-12);
        l.soc_pct = 90.0;
        assert!((l.charge_power_w() - 30.0).abs() < 1e-12);
        l.soc_pct = 100.0;
        assert_eq!(l.charge_power_w(), 0.0);
    }

    #[test]
    fn waiting_for_an_outlet_drains_but_is_no_level_while_plugged() {
        let mut l = Laptop::new(spec());
        // 20 W from 60 Wh for 18 min: −10 %, not a level reached plugged.
        for _ in 0..1080 {
            l.wait(1.0);
        }
        assert!((l.soc_pct - 40.0).abs() < 1e-9);
        assert!((l.min_plugged_pct - 50.0).abs() < 1e-9);
        assert_eq!(l.wall_wh, 0.0);
    }

    #[test]
    fn charges_when_powered_drains_when_not() {
        let mut l = Laptop::new(spec());
        // 60 W into 60 Wh for 6 min: +10 %; wall (60+20)/0.8·0.1 h = 10 Wh.
        let wh: f64 = (0..360).map(|_| l.step(true, 1.0)).sum();
        assert!((l.soc_pct - 60.0).abs() < 1e-9 && (wh - 10.0).abs() < 1e-9);
        // 20 W from 60 Wh for 18 min: −10 %.
        for _ in 0..1080 {
            l.step(false, 1.0);
        }
        assert!((l.soc_pct - 50.0).abs() < 1e-9);
        assert!((l.min_plugged_pct - 50.0).abs() < 1e-9);
        // The taper: from 79 % it never passes 100 %, and slows.
        l.soc_pct = 79.0;
        for _ in 0..36_000 {
            l.step(true, 1.0);
        }
        assert!(l.soc_pct > 99.0 && l.soc_pct <= 100.0, "{}", l.soc_pct);
    }
}
