//! The strategies the optimizer is compared with, as plugins through the
//! same host and with the same config (they ignore the solver's keys):
//!
//! - [`fixed_times::FixedTimes`] (`builtin:fixed-times`): what a person
//!   does, loads at set hours;
//! - [`off_peak_rule::OffPeakRule`] (`builtin:off-peak-rule`): the French
//!   "heures creuses" contactor.
//!
//! Both decide every [`TICK_MS`] and on every change of an entity they
//! read, and drive switches through [`crate::drive::Switches`].

use crate::config::{Config, LoadConfig};
use crate::drive::Switches;
use hearth_plugin_sdk::{Description, Output};

pub mod fixed_times;
pub mod off_peak_rule;

/// Decision period of the baselines, ms.
pub const TICK_MS: u32 = 60_000;

/// What the baselines declare: they read the loads' entities (and
/// `extra`), drive their switches, publish nothing.
pub fn describe(cfg: &Config, name: &str, extra: &[&str]) -> Description {
    let mut reads = crate::shell::reads(cfg);
    for e in extra {
        if !reads.iter().any(|r| r == e) {
            reads.push(e.to_string());
        }
    }
    Description {
        name: name.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        reads,
        drives: cfg.loads.iter().map(|l| l.switch().into()).collect(),
        config_schema: "{}".into(),
        tick_period_ms: TICK_MS,
        entities: vec![],
    }
}

/// Drives every load's switch to `wanted(load)` (`None`: leave it as it is).
pub fn drive_all(
    cfg: &Config,
    switches: &mut Switches,
    now_ms: i64,
    out: &mut Output,
    mut wanted: impl FnMut(&LoadConfig) -> Option<bool>,
) {
    let reassert_ms = cfg.reassert_s as i64 * 1000;
    for l in &cfg.loads {
        if let Some(on) = wanted(l) {
            switches.drive(l.switch(), on, now_ms, reassert_ms, out);
        }
    }
}
