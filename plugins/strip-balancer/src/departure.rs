//! Departure-aware charging: "charge me to my target before I leave", as
//! EVCC's charging plans do for cars, for a laptop whose user gives a
//! departure time (`users[].departure`: a `sensor` with `device_class:
//! timestamp` or a script's `POST /api/states`, state RFC 3339, e.g.
//! `2026-01-13T17:30:00+01:00`; or an `input_datetime` with date and time,
//! read from its `timestamp` attribute).
//!
//! From the battery's own readings the shell learns, per outlet, how fast
//! the laptop charges while on and drains while off (% per minute, from
//! two readings at least [`MIN_STEP_PCT`] apart, both taken where the
//! integer reading changed, so HASS.Agent's whole-percent steps do not
//! skew it); until learned, `assumed_rate_pct_per_min` stands for both.
//! Then:
//!
//! - **urgent**: a laptop that wants charge and must start now to reach
//!   its target by its departure (minutes left − minutes needed at the
//!   learned rate ≤ `departure_slack_s`) comes before lowest-battery-first
//!   and may take the slot of any running laptop that is not itself
//!   urgent or holding, earliest departure first (EDF, the deadline
//!   order of real-time scheduling, Liu & Layland 1973; here a heuristic:
//!   one swap a tick and `min_on_s` keep it from EDF's optimality);
//! - **holding**: a laptop at its target that, switched off now, would
//!   drain below it before it leaves keeps its outlet in the last
//!   `departure_slack_s` (it is not rotated out).
//!
//! A departure past by less than `departure_slack_s`, with the laptop
//! still seated, means "leaving any minute" (urgent below target, holding
//! at it); past by more, it is stale. A laptop without a departure or a
//! battery reading is neither: it is shared as before. Safety does not
//! depend on any of this: urgent and holding laptops are shed for a limit
//! after the others, but shed until every node is within its rating.

use crate::config::Config;
use crate::plan::Memory;
use hearth_plugin_sdk::State;

/// Smallest battery change a rate is learned from, % (two whole-percent
/// steps: the reading's rounding is at most half of it).
pub const MIN_STEP_PCT: f64 = 2.0;

/// Weight of a new rate measurement in the running estimate.
const RATE_WEIGHT: f64 = 0.5;

/// A rate measurement older than this spans too much (the laptop may
/// have slept, or its use changed), min.
const MAX_SPAN_MIN: f64 = 60.0;

/// Where a laptop stands against its departure this tick.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Plan {
    /// No departure known (or no battery reading): shared as usual.
    #[default]
    Free,
    /// Must charge now to reach its target by `departure_ms`.
    Urgent { departure_ms: i64 },
    /// At its target; switched off now it would leave below it.
    Holding,
}

impl Plan {
    pub fn protected(self) -> bool {
        !matches!(self, Plan::Free)
    }
}

/// The departure in `entity`'s state, ms since the epoch: an RFC 3339
/// state, else (HA's `input_datetime`, whose state is a local time without
/// offset) its `timestamp` attribute, Unix s (a time-only
/// `input_datetime` has seconds since midnight there: a 1970 time, stale).
/// None when unavailable, neither, or more than `overdue_max_ms` past. A
/// departure just past, with the laptop still on its seat, is kept: its
/// user is leaving any minute.
pub fn departure_ms(entity: &str, now_ms: i64, overdue_max_ms: i64) -> Option<i64> {
    let s = State::get(entity)?;
    if matches!(s.state.as_str(), "unavailable" | "unknown") {
        return None;
    }
    parse_rfc3339_ms(s.state.trim())
        .or_else(|| {
            let ts = s.attributes.get("timestamp")?.as_f64()?;
            ts.is_finite().then_some((ts * 1000.0) as i64)
        })
        .filter(|&t| t > now_ms.saturating_sub(overdue_max_ms))
}

/// RFC 3339 with an offset → ms since the epoch (the SDK's parser, see
/// [`hearth_plugin_sdk::time::parse_rfc3339_ms`]).
pub use hearth_plugin_sdk::time::parse_rfc3339_ms;

/// Learns the charge (`on`) or drain (off) rate from the battery reading
/// `pct` at `now_ms` (see the module doc). `charging`: on and settled;
/// `off`: confirmed off. Call once per tick, before the holder's memory
/// is reset for a new laptop (the caller forgets rates with the holder).
pub fn learn_rates(mem: &mut Memory, now_ms: i64, pct: Option<f64>, charging: bool, off: bool) {
    let mode = if charging {
        Some(true)
    } else if off {
        Some(false)
    } else {
        None
    };
    let Some(b) = pct else {
        mem.rate_anchor = None;
        mem.rate_last_pct = None;
        return;
    };
    let edge = mem.rate_last_pct.is_some_and(|l| l != b);
    mem.rate_last_pct = Some(b);
    let Some(on) = mode else {
        mem.rate_anchor = None;
        return;
    };
    match mem.rate_anchor {
        Some((_, _, was_on)) if was_on != on => mem.rate_anchor = None,
        _ => {}
    }
    if !edge {
        return;
    }
    let Some((t0, b0, _)) = mem.rate_anchor else {
        mem.rate_anchor = Some((now_ms, b, on));
        return;
    };
    let span_min = (now_ms - t0) as f64 / 60_000.0;
    let moved = if on { b - b0 } else { b0 - b };
    if span_min > MAX_SPAN_MIN || moved < 0.0 {
        mem.rate_anchor = Some((now_ms, b, on));
    } else if moved >= MIN_STEP_PCT && span_min > 0.0 {
        let rate = moved / span_min;
        let slot = if on {
            &mut mem.charge_pct_per_min
        } else {
            &mut mem.drain_pct_per_min
        };
        *slot = Some(slot.map_or(rate, |r| r + RATE_WEIGHT * (rate - r)));
        mem.rate_anchor = Some((now_ms, b, on));
    }
}

/// What [`plan`] needs of an outlet this tick.
pub struct Standing {
    pub battery_pct: Option<f64>,
    pub target_pct: f64,
    /// It wants charge (below target, latch released).
    pub wants: bool,
    pub departure_ms: Option<i64>,
}

/// Where the laptop stands against its departure (see the module doc).
pub fn plan(cfg: &Config, mem: &Memory, s: &Standing, now_ms: i64) -> Plan {
    let (Some(b), Some(dep)) = (s.battery_pct, s.departure_ms) else {
        return Plan::Free;
    };
    // Overdue: leaving any minute.
    let left_min = ((dep - now_ms) as f64 / 60_000.0).max(0.0);
    let assumed = cfg.assumed_rate_pct_per_min;
    let slack_min = cfg.departure_slack_s / 60.0;
    if s.wants {
        let rate = mem.charge_pct_per_min.unwrap_or(assumed).max(1e-3);
        let need_min = (s.target_pct - b).max(0.0) / rate;
        if left_min - need_min <= slack_min {
            // Overdue ones rank as leaving now, not before those that are.
            return Plan::Urgent {
                departure_ms: dep.max(now_ms),
            };
        }
    } else if b >= s.target_pct && left_min <= slack_min {
        // Only in the last `departure_slack_s`: earlier, it may yield and
        // come back as urgent, instead of holding a slot for hours.
        let drain = mem.drain_pct_per_min.unwrap_or(assumed);
        if left_min == 0.0 || b - drain * left_min < s.target_pct {
            return Plan::Holding;
        }
    }
    Plan::Free
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_learned_from_reading_edges() {
        let mut m = Memory::default();
        let min = 60_000;
        // On: 40 % until 0:30, 41 % at 0:30 (edge, anchor), 43 % at 1:30.
        learn_rates(&mut m, 0, Some(40.0), true, false);
        learn_rates(&mut m, 30_000, Some(41.0), true, false);
        learn_rates(&mut m, 60_000, Some(42.0), true, false);
        assert_eq!(m.charge_pct_per_min, None, "1 % is below MIN_STEP_PCT");
        learn_rates(&mut m, 30_000 + 2 * min, Some(43.0), true, false);
        assert_eq!(m.charge_pct_per_min, Some(1.0));
        // Off: the anchor restarts; −2 % in 4 min = 0.5 %/min.
        let t = 10 * min;
        learn_rates(&mut m, t, Some(43.0), false, true);
        learn_rates(&mut m, t + min, Some(42.0), false, true);
        learn_rates(&mut m, t + 5 * min, Some(40.0), false, true);
        assert_eq!(m.drain_pct_per_min, Some(0.5));
        assert_eq!(m.charge_pct_per_min, Some(1.0));
    }

    fn cfg() -> Config {
        Config::parse(hearth_plugin_sdk::serde_json::json!({
            "circuits": [{"id": "wall", "max_current_a": 16}],
            "strips": [{"id": "s", "circuit": "wall", "max_current_a": 10}],
            "outlets": [{"switch": "switch.o1", "strip": "s", "current": "sensor.o1"}],
            "assumed_rate_pct_per_min": 1.0,
            "departure_slack_s": 600
        }))
        .unwrap()
    }

    #[test]
    fn urgent_when_the_time_left_is_the_time_needed() {
        let cfg = cfg();
        let mem = Memory::default();
        let min = 60_000;
        let s = |b: f64, dep_min: i64, wants: bool| Standing {
            battery_pct: Some(b),
            target_pct: 80.0,
            wants,
            departure_ms: Some(dep_min * min),
        };
        // 40 % → 80 % at 1 %/min: 40 min, + 10 min slack.
        assert_eq!(plan(&cfg, &mem, &s(40.0, 51, true), 0), Plan::Free);
        assert_eq!(
            plan(&cfg, &mem, &s(40.0, 50, true), 0),
            Plan::Urgent {
                departure_ms: 50 * min
            }
        );
        // A learned 2 %/min halves it.
        let fast = Memory {
            charge_pct_per_min: Some(2.0),
            ..Memory::default()
        };
        assert_eq!(plan(&cfg, &fast, &s(40.0, 31, true), 0), Plan::Free);
        // At 90 %, off for 20 min at 1 %/min leaves at 70 %: holding,
        // but only in the last 10 min (the slack): before, it may yield.
        assert_eq!(plan(&cfg, &mem, &s(90.0, 20, false), 0), Plan::Free);
        assert_eq!(plan(&cfg, &mem, &s(81.0, 5, false), 0), Plan::Holding);
        assert_eq!(plan(&cfg, &mem, &s(90.0, 5, false), 0), Plan::Free);
        // Overdue and still there: leaving any minute.
        assert_eq!(plan(&cfg, &mem, &s(90.0, -5, false), 0), Plan::Holding);
        assert_eq!(
            plan(&cfg, &mem, &s(70.0, -5, true), 0),
            Plan::Urgent { departure_ms: 0 }
        );
        // No departure, or no battery: free.
        let none = Standing {
            battery_pct: None,
            ..s(40.0, 10, true)
        };
        assert_eq!(plan(&cfg, &mem, &none, 0), Plan::Free);
    }
}
