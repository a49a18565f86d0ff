//! One stream's detector, whichever the method: what a sample's result is
//! ([`Scored`], [`Skip`]), the sensor's dead band ([`Floor`]) and the
//! dispatch to [`crate::conformal`] (the default) or [`crate::forest`] (the
//! seed's baseline).

use crate::codec::{Reader, Writer};
use crate::{conformal, forest};

/// A floor on deviations: `max(abs, rel · |level|)`, plus a tiny absolute
/// one so that a constant zero stays finite. The conformal method uses it
/// as a dead band (deviations within it do not count: a sensor's resolution
/// is not an anomaly); the forest method as a floor on its z-scores'
/// deviation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Floor {
    pub abs: f64,
    pub rel: f64,
}

impl Floor {
    pub fn at(&self, level: f64) -> f64 {
        self.abs.max(self.rel * level.abs()).max(1e-9)
    }
}

/// Why a sample was not scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// `unavailable`, `unknown`, text, NaN or ±∞: nothing learned.
    NotNumeric,
    /// Older than the last sample: nothing learned.
    Backwards,
    /// Learned, but the model is still warming up.
    WarmingUp,
}

impl Skip {
    pub fn reason(self) -> &'static str {
        match self {
            Skip::NotNumeric => "not a number",
            Skip::Backwards => "time went backwards",
            Skip::WarmingUp => "warming up",
        }
    }
}

/// The result for one sample.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Scored {
    /// The published score, in `[0, 1]`; 0 when skipped, and 0 unless the
    /// sample is news (both methods report an anomaly at its onset).
    pub score: f64,
    /// The evidence before the news test, in `[0, 1]` (the alert's
    /// hysteresis clears on it).
    pub likelihood: f64,
    /// The method's raw per-sample score in `[0, 1]` (diagnostics).
    pub raw: f64,
    pub skipped: Option<Skip>,
    /// The sample came after a gap.
    pub after_gap: bool,
}

/// The input rules both methods share: a value that is not a finite number,
/// or a sample older than the last one (`last_ms`), is skipped with nothing
/// learned; otherwise the value to score.
pub fn admit(value: Option<f64>, t_ms: i64, last_ms: Option<i64>) -> Result<f64, Scored> {
    let skipped = |why| Scored {
        skipped: Some(why),
        ..Scored::default()
    };
    let x = value
        .filter(|v| v.is_finite())
        .ok_or(skipped(Skip::NotNumeric))?;
    if last_ms.is_some_and(|last| t_ms < last) {
        return Err(skipped(Skip::Backwards));
    }
    Ok(x)
}

/// Which model scores a stream (config key `method`).
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    /// Calibrated nearest-neighbour and time-of-day measures (default).
    Conformal(conformal::Tuning),
    /// Robust z-scores and Half-Space Trees.
    Forest(forest::Tuning),
}

impl Default for Method {
    fn default() -> Self {
        Method::Conformal(conformal::Tuning::default())
    }
}

/// One stream's detector.
#[derive(Debug, Clone)]
pub enum Detector {
    Conformal(Box<conformal::Conformal>),
    Forest(Box<forest::Detector>),
}

impl Detector {
    /// A fresh detector; `duty_cycle` marks an appliance's power (the
    /// conformal method then also ranks how long it stays on or off).
    pub fn new(method: &Method, floor: Floor, duty_cycle: bool) -> Detector {
        match method {
            Method::Conformal(t) => {
                Detector::Conformal(Box::new(conformal::Conformal::new(t, floor, duty_cycle)))
            }
            // The forest's z-scores need a deviation floor of at least 0.1 %
            // of the level (what its NAB figure was measured with), whatever
            // the kind's resolution.
            Method::Forest(t) => Detector::Forest(Box::new(forest::Detector::new(
                t,
                Floor {
                    abs: floor.abs,
                    rel: floor.rel.max(forest::MIN_REL_FLOOR),
                },
            ))),
        }
    }

    /// Scores the sample `(t_ms, value)` and learns from it; `None` is a
    /// value that is not a number.
    pub fn update(&mut self, t_ms: i64, value: Option<f64>) -> Scored {
        match self {
            Detector::Conformal(d) => d.update(t_ms, value),
            Detector::Forest(d) => d.update(t_ms, value),
        }
    }

    /// Judges the stream at `now_ms` without a new sample (the conformal
    /// method's duty cycle of a power stream); `None` when there is nothing
    /// to judge.
    pub fn idle(&mut self, now_ms: i64) -> Option<Scored> {
        match self {
            Detector::Conformal(d) => d.idle(now_ms),
            Detector::Forest(_) => None,
        }
    }

    /// Appends the learned state (a method tag, then the method's state).
    pub fn write(&self, w: &mut Writer) {
        match self {
            Detector::Conformal(d) => {
                w.u8(1);
                d.write(w);
            }
            Detector::Forest(d) => {
                w.u8(2);
                d.write(w);
            }
        }
    }

    /// Reads what [`Detector::write`] wrote into this (fresh) detector;
    /// a state of another method or shape is refused, `self` unchanged.
    pub fn read(&mut self, r: &mut Reader) -> Result<(), String> {
        let tag = r.u8()?;
        match (self, tag) {
            (Detector::Conformal(d), 1) => d.read(r),
            (Detector::Forest(d), 2) => d.read(r),
            (_, 1 | 2) => Err("saved by the other method".into()),
            (_, t) => Err(format!("unknown method tag {t}")),
        }
    }
}
