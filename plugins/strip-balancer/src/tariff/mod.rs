//! The tariff period (off-peak or peak) from a period sensor, and what it
//! changes ([`strategy`]).

pub mod strategy;

use crate::config::TariffConfig;
use hearth_plugin_sdk::State;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    OffPeak,
    Peak,
    /// No tariff configured, or its sensor has no usable state: the users' own targets.
    Unknown,
}

/// The period in force, read from `cfg.entity` (`HC` is off-peak by default).
pub fn period(cfg: Option<&TariffConfig>) -> Period {
    let Some(cfg) = cfg else {
        return Period::Unknown;
    };
    match State::get(&cfg.entity) {
        Some(s) if s.is_unavailable() => Period::Unknown,
        Some(s) if cfg.offpeak_states.contains(&s.state) => Period::OffPeak,
        Some(_) => Period::Peak,
        None => Period::Unknown,
    }
}
