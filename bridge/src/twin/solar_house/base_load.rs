//! Everything in the house that no controller moves: standby, a fridge
//! cycling, and the household's daily events (breakfast, lunch, lights
//! and TV, dinner). Deterministic: the same instant gives the same watts
//! whatever the controller. The noise-free profile is also the base-load
//! forecast; with `noise_pct > 0` the actual load is that profile times a
//! seeded Gaussian factor `1 + noise_pct/100 × N(0, 1)` (≥ 0) held for
//! `noise_hold_min`, drawn from `seed` and the block's index (so every
//! controller sees the same noise).

use super::{LocalTime, in_window};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BaseLoadSpec {
    /// Always on (routers, standby), W.
    pub standby_w: f64,
    /// The fridge's compressor, W, on `fridge_on_min` every `fridge_period_min`.
    pub fridge_w: f64,
    pub fridge_on_min: f64,
    pub fridge_period_min: f64,
    /// Daily events, each `w` from `from` to `to` (local).
    pub events: Vec<Event>,
    pub noise_pct: f64,
    pub noise_hold_min: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Event {
    #[serde(default)]
    pub name: String,
    pub from: LocalTime,
    pub to: LocalTime,
    pub w: f64,
}

impl Default for BaseLoadSpec {
    fn default() -> Self {
        let ev = |name: &str, from: (u32, u32), to: (u32, u32), w: f64| Event {
            name: name.into(),
            from: LocalTime::hm(from.0, from.1),
            to: LocalTime::hm(to.0, to.1),
            w,
        };
        BaseLoadSpec {
            standby_w: 120.0,
            fridge_w: 90.0,
            fridge_on_min: 15.0,
            fridge_period_min: 45.0,
            events: vec![
                ev("breakfast", (6, 45), (7, 45), 600.0),
                ev("lunch", (12, 0), (13, 0), 900.0),
                ev("lights and TV", (18, 0), (23, 0), 250.0),
                ev("dinner", (19, 0), (20, 0), 1500.0),
            ],
            noise_pct: 0.0,
            noise_hold_min: 5.0,
            seed: 1,
        }
    }
}

impl BaseLoadSpec {
    pub fn check(&self) -> Result<(), String> {
        for v in [self.standby_w, self.fridge_w, self.noise_pct] {
            if !(v.is_finite() && v >= 0.0) {
                return Err("`base_load` powers and noise must be ≥ 0".into());
            }
        }
        if !(self.fridge_period_min > 0.0 && self.noise_hold_min > 0.0) {
            return Err("`base_load.fridge_period_min` and `noise_hold_min` must be > 0".into());
        }
        if self.events.iter().any(|e| !(e.w.is_finite() && e.w >= 0.0)) {
            return Err("`base_load.events` powers must be ≥ 0".into());
        }
        Ok(())
    }

    /// The noise-free profile (the forecast) at `t_ms`, whose local time
    /// of day is `local_s`, W.
    pub fn profile_w(&self, t_ms: i64, local_s: f64) -> f64 {
        let period_ms = (self.fridge_period_min * 60_000.0) as i64;
        let fridge = if (t_ms.rem_euclid(period_ms.max(1)) as f64) < self.fridge_on_min * 60_000.0 {
            self.fridge_w
        } else {
            0.0
        };
        let events: f64 = self
            .events
            .iter()
            .filter(|e| in_window(local_s, e.from, e.to))
            .map(|e| e.w)
            .sum();
        self.standby_w + fridge + events
    }

    /// The actual load, W: the profile times the seeded noise factor.
    pub fn actual_w(&self, t_ms: i64, local_s: f64) -> f64 {
        let p = self.profile_w(t_ms, local_s);
        if self.noise_pct == 0.0 {
            return p;
        }
        let block = t_ms.div_euclid((self.noise_hold_min * 60_000.0) as i64);
        let mut rng = fastrand::Rng::with_seed(
            self.seed ^ (block as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let z = crate::twin::standard_normal(&mut rng);
        p * (1.0 + self.noise_pct / 100.0 * z).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_has_its_peaks_and_the_noise_is_seeded() {
        let s = BaseLoadSpec::default();
        let h = |x: f64| x * 3600.0;
        // 03:00: standby (+ fridge or not); 19:30: standby + lights + dinner.
        let night = s.profile_w(0, h(3.0));
        assert!(night == 120.0 || night == 210.0, "{night}");
        let dinner = s.profile_w(20 * 60_000, h(19.5));
        assert_eq!(dinner, 120.0 + 250.0 + 1500.0);
        // A day's energy, minute by minute.
        let day_wh: f64 = (0..1440)
            .map(|m| s.profile_w(m * 60_000, m as f64 * 60.0) / 60.0)
            .sum();
        assert!(
            (day_wh - (2880.0 + 720.0 + 600.0 + 900.0 + 1250.0 + 1500.0)).abs() < 1.0,
            "{day_wh}"
        );
        let noisy = BaseLoadSpec {
            noise_pct: 20.0,
            ..s.clone()
        };
        let a: Vec<f64> = (0..100)
            .map(|m| noisy.actual_w(m * 60_000, h(12.0)))
            .collect();
        let b: Vec<f64> = (0..100)
            .map(|m| noisy.actual_w(m * 60_000, h(12.0)))
            .collect();
        assert_eq!(a, b, "same seed, same noise");
        assert!(
            a.iter()
                .zip(0..)
                .any(|(w, m)| (*w - s.profile_w(m * 60_000, h(12.0))).abs() > 1.0)
        );
    }
}
