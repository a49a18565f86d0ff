//! The plugin's configuration (JSON from `init`).
//!
//! ```json
//! {"streams": [{"entity_id": "sensor.rack_temperature", "kind": "temperature"}],
//!  "threshold": 0.25, "clear_threshold": 0.1}
//! ```
//!
//! Unknown keys are rejected, naming the key. Every tuning key has a default
//! (see [`crate::detector::Tuning`]); the defaults are the parameter set
//! measured on NAB (`examples/nab.rs`), the same for every stream.

use crate::detector::{Floor, Tuning};
use serde::Deserialize;

/// What a stream measures: sets the floor of its deviation, so that a
/// sensor's resolution noise is not an anomaly and a constant signal has a
/// finite z-score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// °C: deviation floor 0.05 °C.
    Temperature,
    /// %RH: floor 0.5 %RH.
    Humidity,
    /// W: floor 1 W.
    Power,
    /// Anything else: floor 0.1 % of the level.
    #[default]
    Generic,
}

impl Kind {
    pub fn floor(self) -> Floor {
        match self {
            Kind::Temperature => Floor {
                abs: 0.05,
                rel: 0.0,
            },
            Kind::Humidity => Floor { abs: 0.5, rel: 0.0 },
            Kind::Power => Floor { abs: 1.0, rel: 0.0 },
            Kind::Generic => Floor {
                abs: 0.0,
                rel: 1e-3,
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub streams: Vec<Stream>,
    /// Score at or above which an alert is raised.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
    /// Score below which a raised alert clears (hysteresis).
    #[serde(default = "default_clear_threshold")]
    pub clear_threshold: f64,
    /// An alert stays raised at least this long (s of sample time).
    #[serde(default = "default_min_hold_s")]
    pub min_hold_s: f64,
    /// Tuning (see [`Tuning`] for each key's meaning and default).
    #[serde(default = "d_warmup")]
    pub warmup: u32,
    #[serde(default = "d_trees")]
    pub trees: usize,
    #[serde(default = "d_depth")]
    pub depth: usize,
    #[serde(default = "d_horizon")]
    pub horizon: u32,
    #[serde(default = "d_shingle")]
    pub shingle: usize,
    #[serde(default = "d_level_half_life")]
    pub level_half_life: f64,
    #[serde(default = "d_history_half_life")]
    pub history_half_life: f64,
    #[serde(default = "d_average")]
    pub average: usize,
    #[serde(default = "d_refractory")]
    pub refractory: f64,
}

/// About NAB's best corpus-wide threshold for this detector (0.245 standard,
/// 0.257 low-FP on the development subset): a likelihood of 1 in 10^2.5.
fn default_threshold() -> f64 {
    0.25
}
fn default_clear_threshold() -> f64 {
    0.1
}
fn default_min_hold_s() -> f64 {
    60.0
}
fn d_warmup() -> u32 {
    Tuning::default().warmup
}
fn d_trees() -> usize {
    Tuning::default().trees
}
fn d_depth() -> usize {
    Tuning::default().depth
}
fn d_horizon() -> u32 {
    Tuning::default().horizon
}
fn d_shingle() -> usize {
    Tuning::default().shingle
}
fn d_level_half_life() -> f64 {
    Tuning::default().level_half_life
}
fn d_history_half_life() -> f64 {
    Tuning::default().history_half_life
}
fn d_average() -> usize {
    Tuning::default().average
}
fn d_refractory() -> f64 {
    Tuning::default().refractory
}

impl Config {
    /// Parses and checks the config; the error names the offending key.
    pub fn parse(value: serde_json::Value) -> Result<Config, String> {
        let c: Config = hearth_plugin_sdk::parse_config(value)?;
        c.check()?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        let bad = |key: &str, why: &str| Err(format!("config: `{key}`: {why}"));
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
        if !(1..=100).contains(&self.trees) {
            return bad("trees", "expected 1 to 100");
        }
        if !(1..=12).contains(&self.depth) {
            return bad("depth", "expected 1 to 12");
        }
        if !(16..=1_000_000).contains(&self.horizon) {
            return bad("horizon", "expected 16 to 1000000 samples");
        }
        if !(1..=32).contains(&self.shingle) {
            return bad("shingle", "expected 1 to 32 values");
        }
        if !(1..=1000).contains(&self.average) {
            return bad("average", "expected 1 to 1000 samples");
        }
        for (key, v) in [
            ("level_half_life", self.level_half_life),
            ("history_half_life", self.history_half_life),
            ("refractory", self.refractory),
        ] {
            if !(v >= 1.0 && v.is_finite()) {
                return bad(key, "expected a number of samples ≥ 1");
            }
        }
        Ok(())
    }

    pub fn tuning(&self) -> Tuning {
        Tuning {
            warmup: self.warmup,
            trees: self.trees,
            depth: self.depth,
            horizon: self.horizon,
            shingle: self.shingle,
            level_half_life: self.level_half_life,
            history_half_life: self.history_half_life,
            average: self.average,
            refractory: self.refractory,
        }
    }
}
