//! The plugin's configuration (JSON from `init`).
//!
//! ```json
//! {"streams": [{"entity_id": "sensor.rack_temperature", "kind": "temperature"}],
//!  "threshold": 0.37, "clear_threshold": 0.1,
//!  "method": "conformal", "conformal": {"warmup": 150}}
//! ```
//!
//! - `method`: `"conformal"` (default, [`crate::conformal`]) or `"forest"`
//!   (the seed's baseline, [`crate::forest`]);
//! - `conformal` / `forest`: that method's tuning table; every key has a
//!   default (see [`conformal::Tuning`], [`forest::Tuning`]), chosen on all
//!   NAB categories at once and the same for every stream; `forest.seed`
//!   seeds its trees (default [`forest::SEED`]).
//!
//! Unknown keys are rejected, naming the key.

use crate::detector::{Floor, Method};
use crate::{conformal, forest};
use serde::Deserialize;

/// What a stream measures: sets its dead band (the conformal method) or
/// deviation floor (the forest method), so that a sensor's resolution noise
/// is not an anomaly and a constant signal has a finite score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// °C: 0.05 °C.
    Temperature,
    /// %RH: 0.5 %RH.
    Humidity,
    /// W: 1 W; an appliance's power, so the conformal method also ranks
    /// how long it stays on or off (its duty cycle).
    Power,
    /// Anything else: numeric precision (10⁻¹² of the level): the
    /// conformal method's ranking needs no unit.
    #[default]
    Generic,
}

impl Kind {
    /// Whether the stream is a cycling appliance's power (the duty-cycle
    /// measure).
    pub fn duty_cycle(self) -> bool {
        self == Kind::Power
    }

    /// The kind's resolution (see [`Floor`]).
    pub fn floor(self) -> Floor {
        match self {
            Kind::Temperature => Floor {
                abs: 0.05,
                rel: 0.0,
            },
            Kind::Humidity => Floor { abs: 0.5, rel: 0.0 },
            Kind::Power => Floor { abs: 1.0, rel: 0.0 },
            // Numeric precision only: a relative floor larger than this
            // would depend on the stream's offset (10⁶ + x would be muted
            // where x is not).
            Kind::Generic => Floor {
                abs: 0.0,
                rel: 1e-12,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    pub entity_id: String,
    #[serde(default)]
    pub kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MethodName {
    #[default]
    Conformal,
    Forest,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub streams: Vec<Stream>,
    #[serde(default)]
    pub method: MethodName,
    /// Score at or above which an alert is raised.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Score below which a raised alert clears (hysteresis).
    #[serde(default = "default_clear_threshold")]
    pub clear_threshold: f64,
    /// An alert stays raised at least this long (s of sample time).
    #[serde(default = "default_min_hold_s")]
    pub min_hold_s: f64,
    #[serde(default)]
    pub conformal: conformal::Tuning,
    #[serde(default)]
    pub forest: forest::Tuning,
}

/// About NAB's best corpus-wide threshold for the conformal method on the
/// development corpus (0.3747; nominally one chance in 10^3.7 under a
/// stream's own history, after five looks); see BENCHMARKS.md.
fn default_threshold() -> f64 {
    0.37
}
fn default_clear_threshold() -> f64 {
    0.1
}
fn default_min_hold_s() -> f64 {
    60.0
}

type Check = Result<(), String>;

fn bad(key: &str, why: &str) -> Check {
    Err(format!("config: `{key}`: {why}"))
}

fn samples(key: &str, v: f64) -> Check {
    if v >= 1.0 && v.is_finite() {
        Ok(())
    } else {
        bad(key, "expected a number of samples ≥ 1")
    }
}

fn within<T: PartialOrd + Copy + std::fmt::Display>(key: &str, v: T, lo: T, hi: T) -> Check {
    if lo <= v && v <= hi {
        Ok(())
    } else {
        bad(key, &format!("expected {lo} to {hi}, got {v}"))
    }
}

impl Config {
    /// Parses and checks the config; the error names the offending key.
    pub fn parse(value: serde_json::Value) -> Result<Config, String> {
        let c: Config = hearth_plugin_sdk::parse_config(value)?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Check {
        if self.streams.is_empty() {
            return bad("streams", "expected at least one stream");
        }
        for (i, s) in self.streams.iter().enumerate() {
            if !s.entity_id.contains('.') {
                return bad(
                    &format!("streams[{i}].entity_id"),
                    "expected `<domain>.<object_id>`",
                );
            }
            if self.streams[..i].iter().any(|o| o.entity_id == s.entity_id) {
                return bad(&format!("streams[{i}].entity_id"), "listed twice");
            }
        }
        if !(0.0..=1.0).contains(&self.threshold) || self.threshold == 0.0 {
            return bad("threshold", "expected a score in (0, 1]");
        }
        if !(0.0..=self.threshold).contains(&self.clear_threshold) {
            return bad("clear_threshold", "expected a score in [0, threshold]");
        }
        if !(self.min_hold_s >= 0.0 && self.min_hold_s.is_finite()) {
            return bad("min_hold_s", "expected seconds ≥ 0");
        }
        let c = &self.conformal;
        within("conformal.shingle", c.shingle, 1, 32)?;
        within("conformal.memory", c.memory, 16, 4096)?;
        within("conformal.neighbours", c.neighbours, 1, 16)?;
        within("conformal.block", c.block, 1, 1440)?;
        within("conformal.coarse_shingle", c.coarse_shingle, 1, 32)?;
        within("conformal.coarse_memory", c.coarse_memory, 16, 4096)?;
        within("conformal.calibration", c.calibration, 100, 100_000)?;
        within("conformal.buckets", c.buckets, 1, 288)?;
        within(
            "conformal.season_half_life_days",
            c.season_half_life_days,
            0.1,
            365.0,
        )?;
        within("conformal.warmup_hours", c.warmup_hours, 0.0, 24.0 * 365.0)?;
        if c.memory <= c.shingle + c.neighbours
            || c.coarse_memory <= c.coarse_shingle + c.neighbours
        {
            return bad(
                "conformal.memory",
                "expected more patterns kept than `shingle` + `neighbours` (and `coarse_memory` \
                 more than `coarse_shingle` + `neighbours`): the nearest-neighbour measure would \
                 never score",
            );
        }
        samples("conformal.level_half_life", c.level_half_life)?;
        samples("conformal.refractory", c.refractory)?;
        let f = &self.forest;
        within("forest.trees", f.trees, 1, 100)?;
        within("forest.depth", f.depth, 1, 12)?;
        within("forest.horizon", f.horizon, 16, 1_000_000)?;
        within("forest.shingle", f.shingle, 1, 32)?;
        within("forest.average", f.average, 1, 1000)?;
        samples("forest.level_half_life", f.level_half_life)?;
        samples("forest.history_half_life", f.history_half_life)?;
        samples("forest.refractory", f.refractory)?;
        Ok(())
    }

    /// The configured method with its tuning.
    pub fn method(&self) -> Method {
        match self.method {
            MethodName::Conformal => Method::Conformal(self.conformal.clone()),
            MethodName::Forest => Method::Forest(self.forest.clone()),
        }
    }
}
