//! The default detector (`method = "conformal"`): several views of the
//! stream, each ranked against the stream's own history, so that a score
//! means the same thing on every stream whatever its scale, noise or shape.
//!
//! Each sample is scored first and learned afterwards (a sample is never
//! compared with itself). The nonconformity measures:
//!
//! 1. **Pattern** — the mean distance of the last `shingle` values to their
//!    `neighbours` nearest matches among the last `memory` patterns
//!    ([`Shingles`]; KNN-CAD's nonconformity): a spike, a new shape, a new
//!    level.
//! 2. **Coarse pattern** — the same over block means (`block` samples per
//!    block, `coarse_shingle` blocks): a change in the slow shape (a flat
//!    stretch in a daily wave, a burst lasting hours). Scored at each block's
//!    end.
//! 3. **Time of day** — the distance of the value to its usual value at this
//!    time of day ([`DayProfile`], `buckets` slots, half-life
//!    `season_half_life_days`), in units of that slot's own deviation (at
//!    least a quarter of the level's), so a quiet night is judged by night
//!    standards.
//! 4. **Day residual** — the block's mean signed departure from those usual
//!    values, in the same units: a sustained departure from the daily shape
//!    that no single sample shows (a missing daily peak).
//! 5. **Level** — the distance to a robust exponentially weighted mean
//!    (Huber-clipped, half-life `level_half_life` samples).
//! 6. **Duty cycle**, for an appliance's power only (`kind = "power"`) — how
//!    long (in time) the value has stayed on one side of its level, against
//!    the lengths of its past runs: a compressor that never starts again, or
//!    never stops. Also judged between samples ([`Conformal::idle`], the
//!    plugin's tick), since a plug that keeps reading 0 W sends nothing.
//!    For cycling appliances: a steady load's runs are short and noisy.
//!
//! Each measure is turned into a p-value by its own [`Calibrator`]
//! (conformal rank, exponential tail beyond the largest values, the tail's
//! scale at least the stream kind's resolution, [`Floor`]: a tick of a quiet
//! sensor beyond anything seen is a modest surprise, not an extreme one).
//! A calibrator ranks against values learned a pattern's length ago or
//! more, so an unfolding event is judged against what came before it, not
//! against its own first samples. The sample's p-value is the smallest,
//! times the number of measures (Bonferroni: several looks at the same
//! sample), times `max(1, PRIOR_SAMPLES / n)` while the stream is young
//! (little history makes a rank optimistic).
//!
//! **Score**: `-log10(p) / 10`, clamped to `[0, 1]`: nominally 0.3 means
//! "one chance in 1000 under this stream's own history". The same threshold
//! thus means about the same rarity on every stream (the aim of Numenta's
//! anomaly likelihood, Ahmad et al. 2017, reached by ranks instead of a
//! Gaussian fit): near the default threshold, quiet streams of any scale
//! cross it at similar rates (tests/calibration.rs). Far out the nominal
//! probabilities are too small: the tail is extrapolated from the three
//! largest values ([`crate::calibrate::TAIL`] says by how much).
//!
//! **Only news scores** (as in the forest method): the published score is
//! the raw one when its evidence (capped at [`PEAK_CAP_DECADES`]) exceeds the
//! peak of earlier evidence, which holds for `hold` samples after the last
//! news and then decays with half-life `refractory` samples; else 0. An
//! anomaly is reported at its onset and once, and a lasting change does not
//! keep firing while the measures learn it (ARTime's masking after a
//! detection, Hampton 2022, does the same job).
//!
//! The first `warmup` samples, and the first `warmup_hours` of sample time,
//! are learned but score 0.
//!
//! Irregular input: a value that is not a finite number, or a sample older
//! than the last one, is skipped (score 0, nothing learned). Equal
//! timestamps are accepted. A gap — a time step more than [`GAP_FACTOR`]
//! times the typical one — keeps everything learned but restarts the
//! patterns and the current block, so no pattern spans the gap; the
//! level and time-of-day views score the first sample after it.
//!
//! Memory per stream is fixed by the tuning ([`Conformal::state_bytes`]:
//! about 131 KB with the defaults), whatever the length of the stream.

use crate::calibrate::Calibrator;
use crate::codec::{Reader, Writer};
use crate::detector::{Floor, Scored, Skip, admit};
use crate::neighbours::Shingles;
use crate::season::{DayProfile, HUBER_K, MAD_TO_SIGMA};
use crate::stats::decades;

/// A time step this many times the typical one is a gap.
pub const GAP_FACTOR: f64 = 10.0;
/// Evidence is capped here (decades) before the news test: beyond one in
/// 10¹⁰ an anomaly is not "more news", and an uncapped peak would mute the
/// stream for thousands of samples after one huge event.
pub const PEAK_CAP_DECADES: f64 = 10.0;
/// The score is `decades / SCORE_DECADES`.
pub const SCORE_DECADES: f64 = 10.0;
/// While fewer samples than this are learned, p-values are inflated by
/// `PRIOR_SAMPLES / n`: a rank among 300 values is a weaker claim than the
/// same rank among 3000.
pub const PRIOR_SAMPLES: f64 = 1000.0;
/// Completed runs the duty-cycle measure ranks against.
const RUN_HISTORY: usize = 1000;
/// Samples the level is learned without clipping (to set its scale).
const LEVEL_FREE_SAMPLES: u64 = 30;
/// A time-of-day slot's deviation is at least this fraction of the level's:
/// a slot learnt from a few quiet samples does not make every wiggle an
/// anomaly.
const SLOT_FLOOR: f64 = 0.25;
/// The measures of every stream (Bonferroni factor; one more with the duty
/// cycle).
const MEASURES: f64 = 5.0;
/// The duty-cycle measure ranks `ln(1 + run length in s)` (a run is timed,
/// not counted: a plug that keeps reading 0 W sends no new state); its
/// tail's scale is at least 0.1: a run 10 % longer than the longest seen is
/// e times less likely, one twice as long e⁷ (an appliance's cycles vary by
/// some 10 %).
const RUN_RESOLUTION: f64 = 0.1;

fn run_measure(ms: i64) -> f64 {
    (1.0 + ms.max(0) as f64 / 1000.0).ln()
}

/// Tuning of the conformal method (the `[conformal]` config table; every
/// default was chosen on all NAB categories at once, see BENCHMARKS.md).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Samples learned before scoring, and at least this much sample time
    /// (h): a stream is not judged before its day has been seen once.
    pub warmup: u32,
    pub warmup_hours: f64,
    /// Values per pattern (measure 1). 3 and 4 score alike on NAB, 6 a
    /// little lower (a short spike weighs less in a wider pattern).
    pub shingle: usize,
    /// Patterns kept to compare with (measure 1), samples.
    pub memory: usize,
    /// Nearest patterns averaged (measures 1 and 2); 1 and 2 score alike
    /// on NAB.
    pub neighbours: usize,
    /// Samples per block (measures 2 and 4).
    pub block: usize,
    /// Blocks per coarse pattern, and coarse patterns kept.
    pub coarse_shingle: usize,
    pub coarse_memory: usize,
    /// Past values each calibrator ranks against (per-block measures keep
    /// `calibration / block`).
    pub calibration: usize,
    /// Time-of-day slots and their half-life (days of sample time).
    pub buckets: usize,
    pub season_half_life_days: f64,
    /// Half-life of the level (measure 5), samples.
    pub level_half_life: f64,
    /// After news, the peak holds `hold` samples, then halves every
    /// `refractory` samples.
    pub hold: u32,
    pub refractory: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            warmup: 150,
            warmup_hours: 24.0,
            shingle: 4,
            memory: 512,
            neighbours: 1,
            block: 12,
            coarse_shingle: 8,
            coarse_memory: 512,
            calibration: 8000,
            buckets: 48,
            season_half_life_days: 14.0,
            level_half_life: 2000.0,
            hold: 50,
            refractory: 150.0,
        }
    }
}

fn alpha(half_life: f64) -> f64 {
    if half_life > 0.0 {
        1.0 - 0.5f64.powf(1.0 / half_life)
    } else {
        1.0
    }
}

/// One stream's conformal detector.
#[derive(Debug, Clone)]
pub struct Conformal {
    tuning: Tuning,
    floor: Floor,
    duty_cycle: bool,
    keep_peak: f64,
    /// Valid samples learned.
    n: u64,
    first_t: Option<i64>,
    last_t: Option<i64>,
    /// Typical time step (ms), exponentially weighted.
    step_ms: f64,
    fine: Shingles,
    fine_cal: Calibrator,
    coarse: Shingles,
    coarse_cal: Calibrator,
    /// The current block: sum and count of values, and of day residuals.
    block_sum: f64,
    block_n: usize,
    residual_sum: f64,
    residual_sigma: f64,
    residual_n: usize,
    day: DayProfile,
    day_cal: Calibrator,
    residual_cal: Calibrator,
    level_mean: f64,
    level_mad: f64,
    level_cal: Calibrator,
    /// When the value last moved to its current side of the level (ms),
    /// and that side (+1 above, -1 below, 0 unknown).
    run_start: i64,
    side: i8,
    run_cal: Calibrator,
    peak: f64,
    since_news: u32,
}

impl Conformal {
    /// A fresh detector; `duty_cycle` adds measure 6 (for appliances'
    /// power: see the module docs).
    pub fn new(tuning: &Tuning, floor: Floor, duty_cycle: bool) -> Conformal {
        let t = tuning;
        let block = t.block.max(1);
        let per_block = (t.calibration / block).max(1);
        Conformal {
            tuning: t.clone(),
            floor,
            duty_cycle,
            keep_peak: 1.0 - alpha(t.refractory),
            n: 0,
            first_t: None,
            last_t: None,
            step_ms: 0.0,
            fine: Shingles::new(t.shingle, t.memory),
            fine_cal: Calibrator::delayed(t.calibration, t.shingle),
            coarse: Shingles::new(t.coarse_shingle, t.coarse_memory),
            coarse_cal: Calibrator::delayed(per_block, t.coarse_shingle),
            block_sum: 0.0,
            block_n: 0,
            residual_sum: 0.0,
            residual_sigma: 0.0,
            residual_n: 0,
            day: DayProfile::new(t.buckets, t.season_half_life_days),
            day_cal: Calibrator::delayed(t.calibration, t.block),
            residual_cal: Calibrator::delayed(per_block, t.coarse_shingle),
            level_mean: 0.0,
            level_mad: 0.0,
            level_cal: Calibrator::delayed(t.calibration, t.block),
            run_start: 0,
            side: 0,
            // Completed runs are far fewer than samples.
            run_cal: Calibrator::new(RUN_HISTORY),
            peak: 0.0,
            since_news: u32::MAX,
        }
    }

    /// Bytes of learned state: what [`Conformal::write`] writes (fixed by
    /// the tuning).
    pub fn state_bytes(&self) -> usize {
        let mut w = Writer::default();
        self.write(&mut w);
        w.0.len()
    }

    fn level_sigma(&self) -> f64 {
        MAD_TO_SIGMA * self.level_mad
    }

    /// Scores the sample `(t_ms, value)` and learns from it; `None` is a
    /// value that is not a number.
    pub fn update(&mut self, t_ms: i64, value: Option<f64>) -> Scored {
        let x = match admit(value, t_ms, self.last_t) {
            Ok(x) => x,
            Err(skipped) => return skipped,
        };
        let mut after_gap = false;
        if let Some(last) = self.last_t {
            let dt = t_ms.saturating_sub(last) as f64;
            after_gap = self.n >= 3 && self.step_ms > 0.0 && dt > GAP_FACTOR * self.step_ms;
            if after_gap {
                self.fine.restart();
                self.coarse.restart();
                self.block_sum = 0.0;
                self.block_n = 0;
                self.residual_sum = 0.0;
                self.residual_sigma = 0.0;
                self.residual_n = 0;
            }
            // The typical step, a geometric mean that gaps move too (a
            // lasting change of reporting rate, or a burst of fast first
            // samples, must not make every later step a gap), by 1 % of
            // their log: a day's outage of 5-minute samples moves it 6 %.
            if dt > 0.0 {
                self.step_ms = if self.step_ms <= 0.0 {
                    dt
                } else {
                    (self.step_ms.ln() + 0.01 * (dt.ln() - self.step_ms.ln())).exp()
                };
            }
        }
        self.last_t = Some(t_ms);
        let first = *self.first_t.get_or_insert(t_ms);
        let band = self.floor.at(self.level_mean);
        let mut p = 1.0f64;

        // 1. Pattern.
        let fine_q = self.fine.push(x);
        let fine_d = fine_q.as_deref().and_then(|q| {
            self.fine
                .distance(q, self.tuning.neighbours, self.tuning.shingle)
        });
        if let Some(d) = fine_d {
            let res = band * (self.tuning.shingle as f64).sqrt();
            p = p.min(self.fine_cal.p_value(d, res));
        }

        // 3. Time of day (its residual feeds 4 at the block's end).
        let slot = self.day.slot_of(t_ms);
        let mut day_d = None;
        if let Some((mean, sigma)) = self.day.expected(slot) {
            let sigma = sigma
                .max(SLOT_FLOOR * self.level_sigma())
                .max(f64::MIN_POSITIVE);
            self.residual_sum += x.clamp(-1e300, 1e300) - mean;
            self.residual_sigma += sigma;
            self.residual_n += 1;
            let d = (x - mean).abs() / sigma;
            p = p.min(self.day_cal.p_value(d, band / sigma));
            day_d = Some(d);
        }

        // 2 and 4, when a block ends (sums of values within ±1e300 stay
        // finite, so the state always saves).
        self.block_sum += x.clamp(-1e300, 1e300);
        self.block_n += 1;
        let mut coarse = None;
        if self.block_n >= self.tuning.block.max(1) {
            let mean = self.block_sum / self.block_n as f64;
            if let Some(q) = self.coarse.push(mean) {
                let d =
                    self.coarse
                        .distance(&q, self.tuning.neighbours, self.tuning.coarse_shingle);
                if let Some(d) = d {
                    let res = band * (self.tuning.coarse_shingle as f64).sqrt();
                    p = p.min(self.coarse_cal.p_value(d, res));
                }
                coarse = Some((q, d));
            }
            if self.residual_n == self.block_n {
                let sg = self.residual_sigma / self.residual_n as f64;
                let d = (self.residual_sum / self.residual_n as f64).abs() / sg;
                p = p.min(self.residual_cal.p_value(d, band / sg));
                self.residual_cal.learn(d);
            }
            self.block_sum = 0.0;
            self.block_n = 0;
            self.residual_sum = 0.0;
            self.residual_sigma = 0.0;
            self.residual_n = 0;
        }

        // 5. Level.
        let level_d = (self.n > 0).then(|| (x - self.level_mean).abs());
        if let Some(d) = level_d {
            p = p.min(self.level_cal.p_value(d, band));
        }

        // 6. Duty cycle (power streams): how long the value has stayed on
        //    one side of its level, against the lengths of past runs.
        if self.duty_cycle && self.n > 0 {
            let dev = x - self.level_mean;
            let side = if dev > band {
                1
            } else if dev < -band {
                -1
            } else {
                self.side
            };
            if side != self.side {
                // A run ended: its length joins the history of runs.
                if self.side != 0 {
                    self.run_cal
                        .learn(run_measure(t_ms.saturating_sub(self.run_start)));
                }
                self.side = side;
                self.run_start = t_ms;
            }
            p = p.min(self.run_p(t_ms));
        }
        let measures = if self.duty_cycle {
            MEASURES + 1.0
        } else {
            MEASURES
        };

        // The sample's evidence and its news.
        let young = (PRIOR_SAMPLES / (self.n as f64 + 1.0)).max(1.0);
        let p = (p * measures * young).min(1.0);
        let dec = decades(p);

        // Learn.
        if let Some(d) = day_d {
            self.day_cal.learn(d);
        }
        self.day.learn(slot, x, self.step_ms);
        if let Some((q, d)) = coarse {
            if let Some(d) = d {
                self.coarse_cal.learn(d);
            }
            self.coarse.learn(&q);
        }
        if let Some(d) = fine_d {
            self.fine_cal.learn(d);
        }
        if let Some(q) = fine_q {
            self.fine.learn(&q);
        }
        if let Some(d) = level_d {
            self.level_cal.learn(d);
        }
        self.learn_level(x);
        self.n = self.n.saturating_add(1);

        let warming = self.warming(t_ms, first);
        Scored {
            after_gap,
            ..self.judge(dec, warming)
        }
    }

    /// The duty-cycle p-value of the run still open at `now_ms`.
    fn run_p(&self, now_ms: i64) -> f64 {
        if self.side == 0 {
            return 1.0;
        }
        self.run_cal.p_value(
            run_measure(now_ms.saturating_sub(self.run_start)),
            RUN_RESOLUTION,
        )
    }

    /// Judges the open run at `now_ms` without a new sample (the host's
    /// tick): a power stream that stopped changing still ages its run.
    /// `None` unless the detector has the duty-cycle measure, is past its
    /// warm-up and `now_ms` is after its last sample.
    pub fn idle(&mut self, now_ms: i64) -> Option<Scored> {
        let last = self.last_t?;
        let first = self.first_t?;
        if !self.duty_cycle || now_ms <= last || self.warming(now_ms, first) {
            return None;
        }
        let young = (PRIOR_SAMPLES / (self.n as f64 + 1.0)).max(1.0);
        let p = (self.run_p(now_ms) * (MEASURES + 1.0) * young).min(1.0);
        Some(self.judge(decades(p), false))
    }

    fn warming(&self, t_ms: i64, first: i64) -> bool {
        self.n <= u64::from(self.tuning.warmup)
            || (t_ms.saturating_sub(first) as f64) < self.tuning.warmup_hours * 3_600_000.0
    }

    /// The news test on a sample's evidence (decades); updates the peak.
    fn judge(&mut self, dec: f64, warming: bool) -> Scored {
        let raw = (dec / SCORE_DECADES).clamp(0.0, 1.0);
        let prior = if self.since_news < self.tuning.hold {
            self.peak
        } else {
            self.peak * self.keep_peak
        };
        let evidence = dec.min(PEAK_CAP_DECADES);
        self.peak = evidence.max(prior);
        let news = evidence > prior;
        self.since_news = if news {
            0
        } else {
            self.since_news.saturating_add(1)
        };
        Scored {
            score: if news && !warming { raw } else { 0.0 },
            likelihood: if warming { 0.0 } else { raw },
            raw,
            skipped: warming.then_some(Skip::WarmingUp),
            after_gap: false,
        }
    }

    fn learn_level(&mut self, x: f64) {
        if self.n == 0 {
            self.level_mean = x;
            return;
        }
        let w = alpha(self.tuning.level_half_life).max(1.0 / (self.n as f64 + 1.0));
        let limit = if self.n < LEVEL_FREE_SAMPLES {
            f64::INFINITY
        } else {
            HUBER_K * self.level_sigma().max(1e-9)
        };
        let r = (x - self.level_mean).clamp(-limit, limit);
        self.level_mean = (self.level_mean + w * r).clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
        self.level_mad = (self.level_mad + w * (r.abs() - self.level_mad)).min(f64::MAX / 4.0);
    }

    /// A fingerprint of the state's layout: a saved state only fits a
    /// detector with the same one.
    pub fn layout(&self) -> u64 {
        let t = &self.tuning;
        let mut h =
            crate::hst::fnv1a("hearth-anomaly-detector/conformal") ^ u64::from(self.duty_cycle);
        for v in [
            t.shingle,
            t.memory,
            t.block,
            t.coarse_shingle,
            t.coarse_memory,
            t.calibration,
            t.buckets,
        ] {
            h = (h ^ v as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Appends the learned state; its size depends only on the tuning.
    pub fn write(&self, w: &mut Writer) {
        w.u64(self.layout());
        w.u64(self.n);
        w.i64(self.first_t.unwrap_or(0));
        w.u8(u8::from(self.last_t.is_some()));
        w.i64(self.last_t.unwrap_or(0));
        w.f64(self.step_ms);
        self.fine.write(w);
        self.fine_cal.write(w);
        self.coarse.write(w);
        self.coarse_cal.write(w);
        w.f64(self.block_sum);
        w.u32(self.block_n as u32);
        w.f64(self.residual_sum);
        w.f64(self.residual_sigma);
        w.u32(self.residual_n as u32);
        self.day.write(w);
        self.day_cal.write(w);
        self.residual_cal.write(w);
        w.f64(self.level_mean);
        w.f64(self.level_mad);
        self.level_cal.write(w);
        w.i64(self.run_start);
        w.u8(self.side as u8);
        self.run_cal.write(w);
        w.f64(self.peak);
        w.u32(self.since_news);
    }

    /// Reads what [`Conformal::write`] wrote into this (fresh) detector's
    /// shape; on error the detector is unchanged.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        if r.u64()? != self.layout() {
            return Err("saved with another method or pattern/block/calibration sizes".into());
        }
        let mut d = self.clone();
        d.n = r.u64()?;
        let first = r.i64()?;
        let has_t = r.u8()? != 0;
        let t = r.i64()?;
        d.last_t = has_t.then_some(t);
        d.first_t = has_t.then_some(first);
        d.step_ms = r.finite()?;
        d.fine.read(r)?;
        d.fine_cal.read(r)?;
        d.coarse.read(r)?;
        d.coarse_cal.read(r)?;
        d.block_sum = r.finite()?;
        d.block_n = r.index(d.tuning.block.max(1))?;
        d.residual_sum = r.finite()?;
        d.residual_sigma = r.finite()?;
        d.residual_n = r.index(d.tuning.block.max(1) + 1)?;
        d.day.read(r)?;
        d.day_cal.read(r)?;
        d.residual_cal.read(r)?;
        d.level_mean = r.finite()?;
        d.level_mad = r.finite()?;
        d.level_cal.read(r)?;
        d.run_start = r.i64()?;
        d.side = match r.u8()? as i8 {
            s @ -1..=1 => s,
            s => return Err(format!("run side {s}: expected -1, 0 or 1")),
        };
        d.run_cal.read(r)?;
        d.peak = r.finite()?;
        d.since_news = r.u32()?;
        *self = d;
        Ok(())
    }
}
