//! The stream's usual value at each time of day: `buckets` UTC slots, each
//! a robust exponentially weighted mean and mean absolute deviation with a
//! half-life in days of sample time (so the memory is in days whatever the
//! sampling rate). Updates are clipped at [`HUBER_K`] deviations (Huber),
//! so one odd day barely moves a slot while a lasting change is followed.
//!
//! Memory: 20 bytes per slot (saved: count, mean, deviation). Owned by
//! [`crate::conformal`] (measures 3 and 4).

use crate::codec::{Reader, Writer};

/// Residuals are clipped at this many deviations when learning.
pub const HUBER_K: f64 = 3.0;
/// Mean absolute deviation → standard deviation for a normal law (√(π/2)).
pub const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// A slot is used once it has seen this many samples.
const MIN_SAMPLES: u32 = 3;
const DAY_MS: f64 = 86_400_000.0;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Slot {
    n: u32,
    mean: f64,
    mad: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DayProfile {
    slots: Vec<Slot>,
    half_life_days: f64,
}

impl DayProfile {
    pub fn new(buckets: usize, half_life_days: f64) -> DayProfile {
        DayProfile {
            slots: vec![Slot::default(); buckets.max(1)],
            half_life_days,
        }
    }

    /// The slot of a time (ms since the epoch, UTC).
    pub fn slot_of(&self, t_ms: i64) -> usize {
        let k = self.slots.len();
        ((t_ms.rem_euclid(86_400_000) as f64 / DAY_MS) * k as f64) as usize % k
    }

    /// The slot's usual value and deviation (σ from the MAD), once it has
    /// seen enough samples.
    pub fn expected(&self, slot: usize) -> Option<(f64, f64)> {
        let s = self.slots[slot];
        (s.n >= MIN_SAMPLES).then_some((s.mean, MAD_TO_SIGMA * s.mad))
    }

    /// Learns `x` in `slot`; `step_ms` is the stream's typical time step,
    /// which turns the half-life in days into one in samples of the slot.
    pub fn learn(&mut self, slot: usize, x: f64, step_ms: f64) {
        let per_slot_per_day = DAY_MS / step_ms.max(1.0) / self.slots.len() as f64;
        let half_life = (self.half_life_days * per_slot_per_day).max(1.0);
        let alpha = 1.0 - 0.5f64.powf(1.0 / half_life);
        let s = &mut self.slots[slot];
        s.n = s.n.saturating_add(1);
        if s.n == 1 {
            s.mean = x;
            s.mad = 0.0;
            return;
        }
        let w = alpha.max(1.0 / f64::from(s.n));
        // The first few samples set the scale: no clipping yet.
        let limit = if s.n <= MIN_SAMPLES {
            f64::INFINITY
        } else {
            HUBER_K * (MAD_TO_SIGMA * s.mad).max(f64::MIN_POSITIVE)
        };
        let r = (x - s.mean).clamp(-limit, limit);
        s.mean = (s.mean + w * r).clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
        s.mad = (s.mad + w * (r.abs() - s.mad)).min(f64::MAX / 4.0);
    }

    pub fn write(&self, w: &mut Writer) {
        for s in &self.slots {
            w.u32(s.n);
            w.f64(s.mean);
            w.f64(s.mad);
        }
    }

    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        let mut slots = self.slots.clone();
        for s in slots.iter_mut() {
            *s = Slot {
                n: r.u32()?,
                mean: r.finite()?,
                mad: r.finite()?,
            };
            if s.mad < 0.0 {
                return Err("negative deviation".into());
            }
        }
        self.slots = slots;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_daily_shape_and_resists_one_odd_day() {
        let mut p = DayProfile::new(24, 7.0);
        let hour = 3_600_000i64;
        for day in 0..10 {
            for h in 0..24 {
                let t = day * 24 * hour + h * hour;
                let odd = day == 9 && h == 12;
                let x = if odd { 1000.0 } else { h as f64 };
                p.learn(p.slot_of(t), x, hour as f64);
            }
        }
        let (m, _) = p.expected(p.slot_of(12 * hour)).unwrap();
        assert!((m - 12.0).abs() < 1.0, "{m}");
        let (m, _) = p.expected(p.slot_of(5 * hour)).unwrap();
        assert!((m - 5.0).abs() < 1e-9, "{m}");
    }
}
