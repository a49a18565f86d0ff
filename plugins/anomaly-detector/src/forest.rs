//! The baseline detector (`method = "forest"`): the seed's robust z-scores
//! and streaming trees with Numenta's likelihood. One pass, no look-ahead,
//! fixed memory. Its trees are seeded by the config's `seed` (default
//! [`SEED`]), never by the entity id, so two streams with the same data
//! score alike; the score's spread over seeds is in BENCHMARKS.md.
//!
//! Each sample is scored first and learned afterwards (a sample is never
//! compared with itself), through five stages:
//!
//! 1. **Robust baselines** ([`Baseline`]): an exponentially weighted mean
//!    and mean absolute deviation of the value (half-life `level_half_life`
//!    samples), and the same per hour of the day (24 UTC buckets, half-life
//!    `SEASON_HALF_LIFE_DAYS` days of sample time, so the memory is in days
//!    whatever the sampling rate). Updates are clipped at `HUBER_K`
//!    deviations (Huber), so a spike barely moves a baseline while a lasting
//!    shift is followed. Deviations have a floor (per stream kind; a bucket's
//!    is also at least `SEASON_FLOOR` of the level's), so a constant signal
//!    has a finite z-score and a step off it a huge one. Surprise:
//!    `S_z = -log10(2 Q(|z|))` decades, the larger of the two baselines'.
//! 2. **Half-Space Trees** ([`crate::hst::Forest`], Tan, Ting & Liu 2011)
//!    over a shingle of the last `shingle` values, each squashed into
//!    `[0, 1]` through the level's z-score, with exponentially fading masses
//!    (memory `horizon` samples): a pattern in a sparse region (a flat
//!    stretch in a daily wave, a new level, a new shape) has a low mass.
//!    Surprise `S_h`: the normal tail of the log-mass against the log-masses
//!    seen so far, in decades. That reference learns each log-mass clipped
//!    at `HUBER_K` of its deviations, like the baselines, so the rare
//!    sparse patterns (the anomalies themselves) do not widen it and mute
//!    the next one.
//! 3. **Raw score** `raw = clamp((max(S_z, S_h) - 1) / 3, 0, 1)`: zero for
//!    anything more likely than 1 in 10, one at 1 in 10⁴, so the raw series
//!    is sparse on normal data.
//! 4. **Anomaly likelihood** (Ahmad, Lavin, Purdy & Agha 2017, Numenta's
//!    post-processing): the mean of the last `average` raw scores compared
//!    with the mean and deviation of that same average over the stream's
//!    history (exponentially weighted, half-life `history_half_life`
//!    samples; Numenta's floors of 0.03 on the mean and 0.0003 on the
//!    variance), in log form: `L = -log10(Q(z)) / 10` (1 = a one-in-10¹⁰
//!    event). A stream whose raw score is often high (a noisy sensor) thus
//!    needs a larger burst to stand out than a quiet one.
//! 5. **Only news scores**: the published score is `L` when it exceeds the
//!    decayed peak of earlier `L`s (half-life `refractory` samples), else 0.
//!    An anomaly is reported at its onset and once; a lasting one does not
//!    keep firing while the baselines catch up, and a second event soon
//!    after must be stronger than the first. ([`Scored::likelihood`] keeps
//!    `L` itself, which the alert's hysteresis uses to clear.)
//!
//! The first `warmup` samples are learned but score 0 (`skipped: warming
//! up`).
//!
//! Irregular input: a value that is not a finite number, or a sample older
//! than the last one, is skipped (score 0, nothing learned, the state is
//! untouched). Equal timestamps are accepted (a burst of updates in the same
//! millisecond). A gap — a time step more than `GAP_FACTOR` times the
//! typical one — keeps everything learned but restarts the shingle, so the
//! trees never see a pattern spliced across the gap; until it refills, only
//! the baselines score. The sample after a gap is scored like any other: a
//! value far from the baselines after an outage is reported.

use crate::codec::{Reader, Writer};
use crate::detector::{Floor, Scored, Skip, admit};
use crate::hst::{Forest, fnv1a};

use crate::stats::{Ewm, decades, normal_tail};

/// Residuals are clipped at this many deviations when learning a baseline.
const HUBER_K: f64 = 3.0;
/// Mean absolute deviation → standard deviation for a normal law (√(π/2)).
const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
/// A time step this many times the typical one is a gap.
const GAP_FACTOR: f64 = 10.0;
/// Time-of-day buckets.
const BUCKETS: usize = 24;
const BUCKET_MS: f64 = 86_400_000.0 / BUCKETS as f64;
/// A bucket scores once it has seen this many samples.
const BUCKET_MIN_SAMPLES: u64 = 6;
/// Half-life of the time-of-day buckets, days.
const SEASON_HALF_LIFE_DAYS: f64 = 3.0;
/// A bucket's deviation is at least this fraction of the level's: a bucket
/// learnt from a few quiet samples does not make every wiggle an anomaly.
const SEASON_FLOOR: f64 = 0.25;
/// The trees score once they hold this many (decayed) samples.
const MIN_TREE_MASS: f64 = 50.0;
/// Numenta's lower bounds on the likelihood's history (anomaly_likelihood.py).
const LIKELIHOOD_MIN_MEAN: f64 = 0.03;
const LIKELIHOOD_MIN_VAR: f64 = 0.0003;
/// The smallest relative deviation floor the z-scores use (0.1 % of the
/// level): without it a quiet generic stream's every wiggle is extreme.
pub const MIN_REL_FLOOR: f64 = 1e-3;
/// The trees' default seed.
pub const SEED: u64 = 0x4845_4152_5448_5f41; // "HEARTH_A"

/// Tuning shared by all streams (the `[forest]` config table, keys of the
/// same names). The defaults are the one parameter set used for every NAB
/// file.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tuning {
    /// Seeds the trees' random structure (not the entity id: two streams
    /// with the same data score alike).
    pub seed: u64,
    /// Samples learned before scoring.
    pub warmup: u32,
    /// Half-Space Trees: number of trees and their depth.
    pub trees: usize,
    pub depth: usize,
    /// Memory of the trees' masses, samples.
    pub horizon: u32,
    /// Values per pattern given to the trees. 10 (50 minutes of NAB's
    /// 5-minute samples): on NAB, 8 to 12 score alike and above 4 or 16,
    /// and a longer pattern makes the score less dependent on the trees'
    /// random seed (on the first, AWS-only dev subset: mean over 5 seeds
    /// 62.5, spread 2.3, against 58.5 and 3.5 with 4).
    pub shingle: usize,
    /// Half-life of the robust level and deviation, samples.
    pub level_half_life: f64,
    /// Half-life of the anomaly likelihood's history, samples.
    pub history_half_life: f64,
    /// Raw scores averaged by the likelihood.
    pub average: usize,
    /// Half-life of the peak a new score must exceed, samples.
    pub refractory: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            seed: SEED,
            warmup: 150,
            trees: 25,
            depth: 9,
            horizon: 1000,
            shingle: 10,
            level_half_life: 288.0,
            // Numenta's historic window (30 days of 5-minute samples).
            history_half_life: 8640.0,
            // Numenta's averaging window.
            average: 10,
            refractory: 400.0,
        }
    }
}

/// A robust exponentially weighted level (stage 1).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Baseline {
    n: u64,
    mean: f64,
    mad: f64,
}

impl Baseline {
    fn sigma(&self, floor: &Floor) -> f64 {
        (MAD_TO_SIGMA * self.mad).max(floor.at(self.mean))
    }

    fn z(&self, x: f64, floor: &Floor) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let z = (x - self.mean) / self.sigma(floor);
        if z.is_nan() { 0.0 } else { z }
    }

    fn learn(&mut self, x: f64, alpha: f64, floor: &Floor) {
        if self.n == 0 {
            *self = Baseline {
                n: 1,
                mean: x,
                mad: 0.0,
            };
            return;
        }
        let s = self.sigma(floor);
        self.n = self.n.saturating_add(1);
        let w = alpha.max(1.0 / self.n as f64);
        let r = (x - self.mean).clamp(-HUBER_K * s, HUBER_K * s);
        self.mean = (self.mean + w * r).clamp(-f64::MAX / 4.0, f64::MAX / 4.0);
        self.mad = (self.mad + w * (r.abs() - self.mad)).min(f64::MAX / 4.0);
    }

    fn write(&self, w: &mut Writer) {
        w.u64(self.n);
        w.f64(self.mean);
        w.f64(self.mad);
    }

    fn read(r: &mut Reader) -> Result<Baseline, String> {
        let b = Baseline {
            n: r.u64()?,
            mean: r.finite()?,
            mad: r.finite()?,
        };
        if b.mad < 0.0 {
            return Err("negative deviation".into());
        }
        Ok(b)
    }
}

fn bucket_of(t_ms: i64) -> usize {
    (t_ms.rem_euclid(86_400_000) as f64 / BUCKET_MS) as usize % BUCKETS
}

fn alpha(half_life: f64) -> f64 {
    if half_life > 0.0 {
        1.0 - 0.5f64.powf(1.0 / half_life)
    } else {
        1.0
    }
}

/// One stream's detector.
#[derive(Debug, Clone)]
pub struct Detector {
    seed: u64,
    tuning: Tuning,
    floor: Floor,
    alpha_level: f64,
    alpha_history: f64,
    keep_peak: f64,
    /// Valid samples learned.
    n: u64,
    last_t: Option<i64>,
    /// Typical time step (ms).
    step: Ewm,
    level: Baseline,
    season: [Baseline; BUCKETS],
    /// The last `shingle` values (ring) and how many are valid since the
    /// start or the last gap.
    recent: Vec<f64>,
    recent_pos: usize,
    recent_len: usize,
    forest: Forest,
    /// Log-masses seen by the trees.
    mass: Ewm,
    /// The last `average` raw scores (ring, filled from index 0).
    raws: Vec<f64>,
    raws_pos: usize,
    raws_len: usize,
    /// History of the averaged raw score.
    history: Ewm,
    /// Decayed maximum of the likelihood (stage 5).
    peak: f64,
}

impl Detector {
    /// A fresh detector whose trees grow from `tuning.seed`.
    pub fn new(tuning: &Tuning, floor: Floor) -> Detector {
        let seed = tuning.seed;
        let shingle = tuning.shingle.clamp(1, 64);
        let average = tuning.average.max(1);
        Detector {
            seed,
            forest: Forest::new(shingle, tuning.trees, tuning.depth, tuning.horizon, seed),
            tuning: tuning.clone(),
            floor,
            alpha_level: alpha(tuning.level_half_life),
            alpha_history: alpha(tuning.history_half_life),
            keep_peak: 1.0 - alpha(tuning.refractory),
            n: 0,
            last_t: None,
            step: Ewm::default(),
            level: Baseline::default(),
            season: [Baseline::default(); BUCKETS],
            recent: vec![0.0; shingle],
            recent_pos: 0,
            recent_len: 0,
            mass: Ewm::default(),
            raws: vec![0.0; average],
            raws_pos: 0,
            raws_len: 0,
            history: Ewm::default(),
            peak: 0.0,
        }
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
            after_gap = self.step.n >= 3 && dt > GAP_FACTOR * self.step.mean;
            if after_gap {
                self.recent_len = 0;
            } else {
                self.step.update(dt, self.alpha_level);
            }
        }
        self.last_t = Some(t_ms);

        // Stage 1: the baselines.
        let s_level = decades(2.0 * normal_tail(self.level.z(x, &self.floor).abs()));
        let b = bucket_of(t_ms);
        let season_floor = Floor {
            abs: self
                .floor
                .abs
                .max(SEASON_FLOOR * self.level.sigma(&self.floor)),
            rel: self.floor.rel,
        };
        let s_season = if self.season[b].n >= BUCKET_MIN_SAMPLES {
            decades(2.0 * normal_tail(self.season[b].z(x, &season_floor).abs()))
        } else {
            0.0
        };
        let s_z = s_level.max(s_season);

        // Stage 2: the trees, on the shingle ending with x.
        self.recent[self.recent_pos] = x;
        self.recent_pos = (self.recent_pos + 1) % self.recent.len();
        self.recent_len = (self.recent_len + 1).min(self.recent.len());
        let pattern = (self.recent_len == self.recent.len()).then(|| self.pattern());
        let log_mass = pattern
            .as_deref()
            .filter(|_| self.forest.total() >= MIN_TREE_MASS)
            .map(|p| self.forest.log_mass(p));
        let s_h = match log_mass {
            Some(lm) if self.mass.n >= 10 => decades(normal_tail(
                (self.mass.mean - lm) / self.mass.std().max(1e-3),
            )),
            _ => 0.0,
        };

        // Stage 3: the raw score.
        let raw = ((s_z.max(s_h) - 1.0) / 3.0).clamp(0.0, 1.0);

        // Stage 4: the likelihood of the recent raw level.
        self.raws[self.raws_pos] = raw;
        self.raws_pos = (self.raws_pos + 1) % self.raws.len();
        self.raws_len = (self.raws_len + 1).min(self.raws.len());
        let avg = self.raws.iter().take(self.raws_len).sum::<f64>() / self.raws_len as f64;
        let mean = self.history.mean.max(LIKELIHOOD_MIN_MEAN);
        let sd = self.history.var.max(LIKELIHOOD_MIN_VAR).sqrt();
        let likelihood = (decades(normal_tail((avg - mean) / sd)) / 10.0).clamp(0.0, 1.0);

        // Stage 5: only a new high is news.
        let prior = self.peak * self.keep_peak;
        self.peak = likelihood.max(prior);
        let score = if likelihood > prior { likelihood } else { 0.0 };

        // Learn.
        self.history.update(avg, self.alpha_history);
        self.level.learn(x, self.alpha_level, &self.floor);
        let step = self.step.mean.max(1.0);
        let a_season = 1.0 - 0.5f64.powf(step / (SEASON_HALF_LIFE_DAYS * BUCKET_MS));
        self.season[b].learn(x, a_season, &season_floor);
        if let Some(p) = pattern {
            self.forest.learn(&p);
        }
        if let Some(lm) = log_mass {
            let lm = if self.mass.n >= 10 {
                let k = HUBER_K * self.mass.std().max(1e-3);
                lm.clamp(self.mass.mean - k, self.mass.mean + k)
            } else {
                lm
            };
            self.mass.update(lm, self.alpha_history);
        }
        self.n = self.n.saturating_add(1);

        let warming = self.n <= u64::from(self.tuning.warmup);
        Scored {
            score: if warming { 0.0 } else { score },
            likelihood: if warming { 0.0 } else { likelihood },
            raw,
            skipped: warming.then_some(Skip::WarmingUp),
            after_gap,
        }
    }

    /// The shingle, oldest first, squashed into `[0, 1]` by the level's z.
    fn pattern(&self) -> Vec<f64> {
        let k = self.recent.len();
        (0..k)
            .map(|i| {
                let x = self.recent[(self.recent_pos + i) % k];
                0.5 + 0.5 * (self.level.z(x, &self.floor) / HUBER_K).tanh()
            })
            .collect()
    }

    /// A fingerprint of the state's layout: a saved state only fits a
    /// detector with the same one.
    fn layout(&self) -> u64 {
        let t = &self.tuning;
        let mut h = fnv1a("hearth-anomaly-detector") ^ self.seed;
        for v in [t.trees, t.depth, t.shingle, t.average, BUCKETS] {
            h = (h ^ v as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Appends the learned state; its size depends only on the tuning.
    pub fn write(&self, w: &mut Writer) {
        w.u64(self.layout());
        w.u64(self.n);
        w.u8(u8::from(self.last_t.is_some()));
        w.i64(self.last_t.unwrap_or(0));
        write_ewm(w, &self.step);
        self.level.write(w);
        for b in &self.season {
            b.write(w);
        }
        for v in &self.recent {
            w.f64(*v);
        }
        w.u32(self.recent_pos as u32);
        w.u32(self.recent_len as u32);
        let (mass, scale, total) = self.forest.state();
        for m in mass {
            w.f32(*m);
        }
        w.f64(scale);
        w.f64(total);
        write_ewm(w, &self.mass);
        for v in &self.raws {
            w.f64(*v);
        }
        w.u32(self.raws_pos as u32);
        w.u32(self.raws_len as u32);
        write_ewm(w, &self.history);
        w.f64(self.peak);
    }

    /// Reads what [`Detector::write`] wrote into this (fresh) detector's
    /// shape; on error the detector is unchanged.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        if r.u64()? != self.layout() {
            return Err("saved with another trees/depth/shingle/average".into());
        }
        let mut d = self.clone();
        d.n = r.u64()?;
        let has_t = r.u8()? != 0;
        let t = r.i64()?;
        d.last_t = has_t.then_some(t);
        d.step = read_ewm(r)?;
        d.level = Baseline::read(r)?;
        for b in d.season.iter_mut() {
            *b = Baseline::read(r)?;
        }
        for v in d.recent.iter_mut() {
            *v = r.finite()?;
        }
        d.recent_pos = r.index(d.recent.len())?;
        d.recent_len = r.index(d.recent.len() + 1)?;
        let (mass, _, _) = self.forest.state();
        let mut masses = Vec::with_capacity(mass.len());
        for _ in 0..mass.len() {
            masses.push(r.f32()?);
        }
        let scale = r.finite()?;
        let total = r.finite()?;
        if !d.forest.set_state(&masses, scale, total) {
            return Err("bad tree masses".into());
        }
        d.mass = read_ewm(r)?;
        for v in d.raws.iter_mut() {
            *v = r.finite()?;
        }
        d.raws_pos = r.index(d.raws.len())?;
        d.raws_len = r.index(d.raws.len() + 1)?;
        d.history = read_ewm(r)?;
        d.peak = r.finite()?;
        *self = d;
        Ok(())
    }
}

fn write_ewm(w: &mut Writer, e: &Ewm) {
    w.u64(e.n);
    w.f64(e.mean);
    w.f64(e.var);
}

fn read_ewm(r: &mut Reader) -> Result<Ewm, String> {
    Ok(Ewm {
        n: r.u64()?,
        mean: r.finite()?,
        var: r.finite()?,
    })
}
