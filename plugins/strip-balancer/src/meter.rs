//! One outlet as read from the host at a tick: switch state, meter, the
//! battery of its user, and its committed draw (the rule of
//! [`crate::tree::limits`]):
//!
//! - meter stale (`unavailable`, missing, not a number, or older than
//!   `meter_timeout_s` when set): the outlet's strip rating, the most it
//!   can draw without tripping its strip (EVCC counts a silent meter as
//!   full load; the strip rating is the precise conservative bound);
//! - else the measured current (A, or W / `voltage_v`), raised to the
//!   expected draw while it was switched on less than `settle_s` ago (the
//!   meter may not have seen the new draw yet). The expected draw is the
//!   laptop's own highest settled draw when it was seen charging
//!   ([`crate::need`] learns it), else `assumed_current_a`.

use crate::config::Config;
use hearth_plugin_sdk::{Reading, State};

/// What a tick knows of one outlet.
#[derive(Debug, Clone, Default)]
pub struct OutletView {
    /// Switch state: Some(on/off), None when unknown or unreachable.
    pub switch: Option<bool>,
    /// Measured current, A (None: meter stale).
    pub measured_a: Option<f64>,
    /// Committed draw if on, A.
    pub draw_a: f64,
    /// Battery level of its user's laptop, %.
    pub battery_pct: Option<f64>,
    /// Why it needs no charge (at target, nothing plugged); None: it
    /// wants charge, or its need is unknown ([`crate::need::update`]).
    pub no_need: Option<crate::plan::Why>,
    /// Against its user's departure ([`crate::departure`]).
    pub plan: crate::departure::Plan,
}

impl OutletView {
    pub fn stale(&self) -> bool {
        self.measured_a.is_none()
    }
}

/// The measured current of `o`, A, or None when stale.
pub fn measured_a(cfg: &Config, outlet: usize, now_ms: i64) -> Option<f64> {
    let o = &cfg.outlets[outlet];
    let (entity, per_a) = match (&o.current, &o.power) {
        (Some(c), _) => (c, 1.0),
        (None, Some(p)) => (p, 1.0 / cfg.voltage_v),
        (None, None) => return None,
    };
    let Reading::Usable(s) = Reading::get(entity) else {
        return None;
    };
    if let Some(t) = cfg.meter_timeout_s
        && (now_ms - s.last_updated_ms) as f64 > t * 1000.0
    {
        return None;
    }
    // A negative reading (a CT clamp the wrong way round) counts as its size.
    s.number().map(|v| v.abs() * per_a)
}

/// `on`/`off` of a switch; None when unavailable, missing or another state.
pub fn switch_state(entity: &str) -> Option<bool> {
    State::get(entity).and_then(|s| s.is_on())
}

/// A battery level in %, when the sensor has a usable number in 0–100.
pub fn battery_pct(entity: &str) -> Option<f64> {
    Reading::get(entity)
        .number()
        .filter(|v| (0.0..=100.0).contains(v))
}

/// The committed draw if on, A (see the module doc); `expected_a`: what
/// the outlet's load is expected to draw once on.
pub fn draw_a(
    cfg: &Config,
    strip_limit_a: f64,
    measured: Option<f64>,
    expected_a: f64,
    on_since_ms: Option<i64>,
    now_ms: i64,
) -> f64 {
    match measured {
        None => strip_limit_a,
        Some(m) => {
            let unsettled =
                on_since_ms.is_some_and(|t| ((now_ms - t) as f64) < cfg.settle_s * 1000.0);
            if unsettled { m.max(expected_a) } else { m }
        }
    }
}
