//! Reproducible arrivals: `count` laptops per open day, drawn from a
//! seeded generator (fastrand's wyrand: the same seed gives the same day
//! on every machine), each with its nameplate drawn from the ranges.

use super::laptop::LaptopSpec;
use serde::Deserialize;

/// `[laptops]` in a coworking scenario. Ranges are `[low, high]`, drawn
/// uniformly.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArrivalSpec {
    pub seed: u64,
    /// Laptops per open day.
    pub count: usize,
    /// Arrival, hours after the day's opening.
    pub arrive_after_open_h: [f64; 2],
    /// Stay, h (cut at closing).
    pub stay_h: [f64; 2],
    pub capacity_wh: [f64; 2],
    /// Constant-power charge, W into the battery.
    pub charge_w: [f64; 2],
    pub use_w: [f64; 2],
    pub initial_pct: [f64; 2],
    pub power_factor: [f64; 2],
    pub efficiency: f64,
    pub target_pct: f64,
    /// Share of users who tell when they leave (0–1): their seat's
    /// departure sensor gives it, as a booking app or a script would.
    pub departure_declared_share: f64,
    /// How far off a declared departure is, ± min (uniform): people
    /// leave early or late.
    pub departure_error_min: f64,
}

impl Default for ArrivalSpec {
    fn default() -> Self {
        ArrivalSpec {
            seed: 14,
            count: 20,
            arrive_after_open_h: [0.0, 5.0],
            stay_h: [2.0, 9.0],
            capacity_wh: [50.0, 99.0],
            charge_w: [60.0, 180.0],
            use_w: [10.0, 45.0],
            initial_pct: [5.0, 70.0],
            power_factor: [0.9, 0.98],
            efficiency: 0.9,
            target_pct: 80.0,
            departure_declared_share: 0.0,
            departure_error_min: 0.0,
        }
    }
}

impl ArrivalSpec {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.departure_declared_share) {
            return Err(format!(
                "`laptops.departure_declared_share` must be 0–1, got {}",
                self.departure_declared_share
            ));
        }
        if !(self.departure_error_min.is_finite() && self.departure_error_min >= 0.0) {
            return Err(format!(
                "`laptops.departure_error_min` must be ≥ 0 min, got {}",
                self.departure_error_min
            ));
        }
        for (what, [lo, hi]) in [
            ("arrive_after_open_h", self.arrive_after_open_h),
            ("stay_h", self.stay_h),
            ("capacity_wh", self.capacity_wh),
            ("charge_w", self.charge_w),
            ("use_w", self.use_w),
            ("initial_pct", self.initial_pct),
            ("power_factor", self.power_factor),
        ] {
            if !(lo.is_finite() && hi.is_finite() && lo <= hi && lo >= 0.0) {
                return Err(format!(
                    "`laptops.{what}` must be [low, high] with 0 ≤ low ≤ high, got [{lo}, {hi}]"
                ));
            }
        }
        Ok(())
    }

    /// The laptops of the open blocks `[open_ms, close_ms)`, one batch of
    /// `count` per block, each leaving by its block's close.
    pub fn draw(&self, blocks: &[(i64, i64)]) -> Vec<LaptopSpec> {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let mut pick = |[lo, hi]: [f64; 2]| lo + (hi - lo) * rng.f64();
        // Declarations have their own stream: the laptops of a seed stay
        // the same whatever is declared.
        let mut declare = fastrand::Rng::with_seed(self.seed ^ 0xdec1_a4ed);
        let mut out = Vec::new();
        for (d, &(open, close)) in blocks.iter().enumerate() {
            for k in 0..self.count {
                let arrive = open + (pick(self.arrive_after_open_h) * 3.6e6) as i64;
                let stay = (pick(self.stay_h) * 3.6e6) as i64;
                let leave = (arrive + stay).min(close);
                let spec = LaptopSpec {
                    name: format!("d{}-l{:02}", d + 1, k + 1),
                    capacity_wh: pick(self.capacity_wh).round(),
                    charge_w: pick(self.charge_w).round(),
                    use_w: pick(self.use_w).round(),
                    efficiency: self.efficiency,
                    power_factor: (pick(self.power_factor) * 100.0).round() / 100.0,
                    initial_pct: pick(self.initial_pct).round(),
                    target_pct: self.target_pct,
                    arrive_ms: arrive,
                    leave_ms: leave,
                    declared_leave_ms: None,
                };
                let (told, error) = (declare.f64(), declare.f64() * 2.0 - 1.0);
                let spec = LaptopSpec {
                    declared_leave_ms: (told < self.departure_declared_share)
                        .then(|| leave + (error * self.departure_error_min * 60_000.0) as i64),
                    ..spec
                };
                if arrive < close && spec.check().is_ok() {
                    out.push(spec);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_day() {
        let spec = ArrivalSpec::default();
        let blocks = [(0, 11 * 3_600_000)];
        let a = spec.draw(&blocks);
        assert_eq!(a.len(), 20);
        assert_eq!(a, spec.draw(&blocks));
        let other = ArrivalSpec { seed: 15, ..spec };
        assert_ne!(a, other.draw(&blocks));
        assert!(
            a.iter()
                .all(|l| l.leave_ms <= 11 * 3_600_000 && l.arrive_ms >= 0)
        );
    }

    #[test]
    fn declarations_do_not_change_the_laptops() {
        let blocks = [(0, 11 * 3_600_000)];
        let none = ArrivalSpec::default().draw(&blocks);
        let told = ArrivalSpec {
            departure_declared_share: 1.0,
            departure_error_min: 20.0,
            ..ArrivalSpec::default()
        }
        .draw(&blocks);
        assert!(none.iter().all(|l| l.declared_leave_ms.is_none()));
        assert_eq!(told.len(), none.len());
        for (t, n) in told.iter().zip(&none) {
            let d = t.declared_leave_ms.expect("every one told");
            assert!((d - t.leave_ms).abs() <= 20 * 60_000, "{t:?}");
            let same = LaptopSpec {
                declared_leave_ms: None,
                ..t.clone()
            };
            assert_eq!(&same, n);
        }
        // Some are off by more than a minute: the error is applied.
        assert!(
            told.iter()
                .any(|l| (l.declared_leave_ms.unwrap() - l.leave_ms).abs() > 60_000)
        );
    }
}
