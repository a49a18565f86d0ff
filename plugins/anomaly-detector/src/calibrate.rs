//! Conformal calibration of a nonconformity measure: the probability, under
//! the stream's own recent history, of a value at least this large.
//!
//! A measure (a distance, a deviation) means different things on different
//! streams; its rank among the stream's own past values does not: the
//! conformal p-value `(#{past ≥ s} + 1) / (n + 1)` is uniform when nothing
//! changes (Vovk, Gammerman & Shafer, *Algorithmic Learning in a Random
//! World*, 2005; the idea behind KNN-CAD's conformal scores, Burnaev &
//! Ishimtsev 2016). Beyond the largest values kept, the tail is extrapolated
//! with an exponential fitted to the top [`TAIL`] exceedances (peaks over
//! threshold, as SPOT does: Siffer et al., "Anomaly Detection in Streams
//! with Extreme Value Theory", KDD 2017), so "far beyond anything seen" is
//! a smaller probability than "just beyond".
//!
//! Memory: a ring of the last `capacity` values and a FIFO of `delay`
//! pending ones, 4 bytes each. Owned by [`crate::conformal`], one per
//! measure.

use crate::codec::{Reader, Writer};

/// Exceedances the exponential tail is fitted to. Few: the tail measures how
/// far a value lies beyond the stream's very largest ones, in units of
/// their spacing (on NAB, 3 scores 66–70 where 10 scores 60–64 and 40
/// scores 60; chosen on every category). The price is a tail that is not
/// calibrated far out: three close top values make a value just beyond them
/// look extreme. On iid Gaussian noise (8 × 20 000 samples) scores ≥ 0.5
/// come at 0.2 per 1000 where "one in 10⁵" means 0.01, and a score of 1
/// appears in 3 of the 8 streams. Flooring the tail's scale by the bulk's
/// spread fixes that (0.03 per 1000) but costs 5 NAB points: NAB rewards
/// this aggressiveness. Near the alert threshold the rates do match across
/// streams (tests/calibration.rs).
pub const TAIL: usize = 3;
/// The 90th percentile (a gate: below it no rank is computed) is refreshed
/// every this many values (a selection over the ring, O(capacity)); the
/// tail's top values are kept exact at every value.
const REFRESH: u32 = 256;
/// Values a calibrator needs before it gives any p-value below 1.
const MIN_VALUES: usize = 4 * TAIL;

#[derive(Debug, Clone, PartialEq)]
pub struct Calibrator {
    /// Values learned but not yet ranked against (a FIFO of `delay`).
    pending: Vec<f32>,
    pending_pos: usize,
    pending_len: usize,
    ring: Vec<f32>,
    pos: usize,
    len: usize,
    /// The `TAIL` largest values kept, largest first (−∞ while fewer).
    top: [f32; TAIL],
    /// The 90th percentile: at or below it the p-value is not computed
    /// (it is ≥ 0.1, far from anything that scores).
    q90: f64,
    stale: u32,
}

impl Calibrator {
    pub fn new(capacity: usize) -> Calibrator {
        Calibrator::delayed(capacity, 0)
    }

    /// A calibrator that ranks against values learned at least `delay`
    /// values ago: an unfolding event's own values do not calibrate it
    /// away (the exclusion zone of the nearest-neighbour search, applied to
    /// the ranking).
    pub fn delayed(capacity: usize, delay: usize) -> Calibrator {
        Calibrator {
            pending: vec![0.0; delay],
            pending_pos: 0,
            pending_len: 0,
            ring: vec![0.0; capacity.max(MIN_VALUES)],
            pos: 0,
            len: 0,
            top: [f32::NEG_INFINITY; TAIL],
            q90: f64::INFINITY,
            stale: 0,
        }
    }

    /// `P(S ≥ s)` under the kept history; 1 while fewer than `4·TAIL`
    /// values are kept, and for `s ≤ 0`. Beyond the largest values the
    /// tail's scale is at least `resolution` (the measure's value of one
    /// sensor resolution step): a value a hair above a constant history is
    /// not a one-in-10³⁰⁰ event.
    pub fn p_value(&self, s: f64, resolution: f64) -> f64 {
        let n = self.len;
        if n < MIN_VALUES || !s.is_finite() || s <= 0.0 {
            return 1.0;
        }
        let u = f64::from(self.top[TAIL - 1]);
        if s <= u {
            if s <= self.q90 {
                return 1.0;
            }
            let c = self.ring[..n]
                .iter()
                .filter(|&&v| f64::from(v) >= s)
                .count();
            return (c as f64 + 1.0) / (n as f64 + 1.0);
        }
        let p_u = TAIL as f64 / (n as f64 + 1.0);
        let beta = self.top.iter().map(|&t| f64::from(t) - u).sum::<f64>() / TAIL as f64;
        let scale = beta.max(resolution);
        if scale <= 0.0 {
            // The top values are all equal (a measure that was constant)
            // and no resolution is known: anything above is beyond the
            // whole history.
            return p_u / (n as f64 + 1.0);
        }
        p_u * (-(s - u) / scale).exp()
    }

    /// Keeps `s` (non-finite values are ignored).
    pub fn learn(&mut self, s: f64) {
        if !s.is_finite() {
            return;
        }
        let mut v = s.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32;
        if !self.pending.is_empty() {
            let d = self.pending.len();
            let slot = self.pending_pos;
            let oldest = self.pending[slot];
            self.pending[slot] = v;
            self.pending_pos = (slot + 1) % d;
            if self.pending_len < d {
                self.pending_len += 1;
                return;
            }
            v = oldest;
        }
        let cap = self.ring.len();
        let evicted = (self.len == cap).then(|| self.ring[self.pos]);
        self.ring[self.pos] = v;
        self.pos = (self.pos + 1) % cap;
        self.len = (self.len + 1).min(cap);
        match evicted {
            // A top value left and a value at least as large came: swap
            // it in place (a constant stream never rescans).
            Some(e) if e >= self.top[TAIL - 1] && v >= e => {
                let i = self.top.iter().rposition(|&t| t == e).unwrap_or(TAIL - 1);
                self.top[i] = v;
                self.top.sort_by(|a, b| b.total_cmp(a));
            }
            // A top value left for a smaller one: rescan (rare, O(capacity)).
            Some(e) if e >= self.top[TAIL - 1] => self.rescan_top(),
            _ => self.insert_top(v),
        }
        self.stale += 1;
        if self.stale >= REFRESH || self.len <= MIN_VALUES {
            self.refresh_q90();
        }
    }

    fn insert_top(&mut self, v: f32) {
        if v > self.top[TAIL - 1] {
            let mut i = TAIL - 1;
            while i > 0 && self.top[i - 1] < v {
                self.top[i] = self.top[i - 1];
                i -= 1;
            }
            self.top[i] = v;
        }
    }

    fn rescan_top(&mut self) {
        self.top = [f32::NEG_INFINITY; TAIL];
        for i in 0..self.len {
            self.insert_top(self.ring[i]);
        }
    }

    fn refresh_q90(&mut self) {
        self.stale = 0;
        let n = self.len;
        if n < MIN_VALUES {
            return;
        }
        let mut v: Vec<f32> = self.ring[..n].to_vec();
        let k90 = (n * 9) / 10;
        let (_, q, _) = v.select_nth_unstable_by(k90, f32::total_cmp);
        self.q90 = f64::from(*q);
    }

    pub fn write(&self, w: &mut Writer) {
        for v in &self.pending {
            w.f32(*v);
        }
        w.u32(self.pending_pos as u32);
        w.u32(self.pending_len as u32);
        for v in &self.ring {
            w.f32(*v);
        }
        w.u32(self.pos as u32);
        w.u32(self.len as u32);
        // The gate as last refreshed (it may lag the ring by up to REFRESH
        // values): a restored calibrator continues exactly.
        w.f64(self.q90);
        w.u32(self.stale);
    }

    /// Reads what [`Calibrator::write`] wrote for a calibrator of the same
    /// capacity; on error `self` is unchanged.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        let mut c = self.clone();
        for v in c.pending.iter_mut() {
            *v = r.f32()?;
            if !v.is_finite() {
                return Err("non-finite calibration value".into());
            }
        }
        c.pending_pos = r.index(c.pending.len().max(1))?;
        c.pending_len = r.index(c.pending.len() + 1)?;
        for v in c.ring.iter_mut() {
            *v = r.f32()?;
            if !v.is_finite() {
                return Err("non-finite calibration value".into());
            }
        }
        c.pos = r.index(c.ring.len())?;
        c.len = r.index(c.ring.len() + 1)?;
        c.q90 = r.f64_or_inf()?;
        c.stale = r.u32()?.min(REFRESH);
        c.rescan_top();
        *self = c;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Calibrator {
        fn p_value_test(&self, s: f64) -> f64 {
            self.p_value(s, 0.0)
        }
    }

    #[test]
    fn p_value_is_the_rank_in_the_bulk_and_shrinks_beyond_the_maximum() {
        let mut c = Calibrator::new(1000);
        for i in 0..1000 {
            c.learn(f64::from(i));
        }
        // 950 … 999: 50 values ≥ 950.
        assert!((c.p_value_test(950.0) - 51.0 / 1001.0).abs() < 1e-12);
        // Below the 90th percentile: not computed.
        assert_eq!(c.p_value_test(100.0), 1.0);
        let beyond = c.p_value_test(1000.0);
        let far = c.p_value_test(2000.0);
        assert!(beyond < 3.0 / 1001.0, "{beyond}");
        assert!(far < beyond * 1e-10, "{far} vs {beyond}");
    }

    #[test]
    fn a_constant_history_makes_an_excess_improbable_by_resolution_steps() {
        let mut c = Calibrator::new(100);
        for _ in 0..100 {
            c.learn(0.0);
        }
        assert_eq!(c.p_value_test(0.0), 1.0);
        assert!(c.p_value_test(1e-6) < 1e-3);
        // With a resolution of 0.05: one step beyond is e⁻¹ of the tail's
        // base probability, ten steps e⁻¹⁰.
        let base = TAIL as f64 / 101.0;
        assert!((c.p_value(0.05, 0.05) - base * (-1.0f64).exp()).abs() < 1e-12);
        assert!((c.p_value(0.5, 0.05) - base * (-10.0f64).exp()).abs() < 1e-12);
    }

    #[test]
    fn too_few_values_give_no_evidence() {
        let mut c = Calibrator::new(100);
        for i in 0..(MIN_VALUES - 1) {
            c.learn(i as f64);
        }
        assert_eq!(c.p_value_test(1e9), 1.0);
    }

    #[test]
    fn a_delayed_calibrator_ranks_against_values_learned_delay_ago() {
        let mut c = Calibrator::delayed(100, 5);
        for _ in 0..100 {
            c.learn(1.0);
        }
        // Five large values learned: still pending, so 10 is beyond the
        // history; one more and the first enters the ranking.
        for _ in 0..5 {
            c.learn(10.0);
        }
        assert!(c.p_value_test(10.0) < 1e-3);
        c.learn(10.0);
        assert!(c.p_value_test(10.0) > 1e-3);
    }

    #[test]
    fn the_top_values_stay_exact_as_they_leave_the_ring() {
        let mut c = Calibrator::new(20);
        for i in 0..20 {
            c.learn(f64::from(i));
        }
        // 17, 18, 19 are the top; overwrite the ring with small values:
        // the top follows what is still kept.
        for _ in 0..18 {
            c.learn(0.5);
        }
        assert_eq!(c.top, [19.0, 18.0, 0.5]);
    }

    #[test]
    fn state_round_trips() {
        let mut c = Calibrator::new(64);
        for i in 0..100 {
            c.learn(f64::from(i % 17));
        }
        let mut w = Writer::default();
        c.write(&mut w);
        let mut d = Calibrator::new(64);
        d.read(&mut Reader::new(&w.0)).unwrap();
        assert_eq!(c.p_value_test(16.5), d.p_value_test(16.5));
        assert_eq!(c.p_value_test(30.0), d.p_value_test(30.0));
    }
}
