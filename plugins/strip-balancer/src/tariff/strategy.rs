//! Off-peak strategy: charge further and more laptops at once when energy
//! is cheap, less in peak hours. A user's own target is raised to
//! `offpeak_target_pct` off-peak and lowered to `peak_target_pct` in peak
//! hours; the count of outlets charging at once is the period's
//! `*_max_parallel`, else the config's `max_parallel`.

use super::Period;
use crate::config::Config;

/// The battery target in force for a user whose own target is `user_pct`, %.
pub fn target_pct(cfg: &Config, period: Period, user_pct: f64) -> f64 {
    let Some(t) = &cfg.tariff else {
        return user_pct;
    };
    match period {
        Period::OffPeak => t.offpeak_target_pct.map_or(user_pct, |o| user_pct.max(o)),
        Period::Peak => t.peak_target_pct.map_or(user_pct, |p| user_pct.min(p)),
        Period::Unknown => user_pct,
    }
}

/// Most outlets charging at once (None: only the current limits).
pub fn max_parallel(cfg: &Config, period: Period) -> Option<u32> {
    let by_period = cfg.tariff.as_ref().and_then(|t| match period {
        Period::OffPeak => t.offpeak_max_parallel,
        Period::Peak => t.peak_max_parallel,
        Period::Unknown => None,
    });
    by_period.or(cfg.max_parallel)
}
