//! User limits: progress and the 80 % / 100 % notifications, each at most
//! once per user, limit period and period occurrence (a new day notifies
//! again; a restart within the day does not, see [`LimitWatch::mark`]).

use super::periods::PeriodKind;
use std::collections::HashSet;

/// The thresholds notified, in % of the limit.
pub const THRESHOLDS: [u8; 2] = [80, 100];

/// Which (user, period, threshold, period start) were notified.
#[derive(Debug, Default)]
pub struct LimitWatch {
    notified: HashSet<(String, PeriodKind, u8, i64)>,
}

/// `used_kwh` in % of `limit_kwh` (0 with no positive limit).
pub fn progress_pct(used_kwh: f64, limit_kwh: f64) -> f64 {
    if limit_kwh > 0.0 && used_kwh.is_finite() {
        used_kwh / limit_kwh * 100.0
    } else {
        0.0
    }
}

impl LimitWatch {
    /// Records a notification already sent (found in the alert hub at start).
    pub fn mark(&mut self, user: &str, kind: PeriodKind, pct: u8, period_start_ms: i64) {
        self.notified
            .insert((user.to_string(), kind, pct, period_start_ms));
    }

    /// Thresholds `used_kwh` has reached for the first time in the period
    /// starting at `period_start_ms`, lowest first (both when one increment
    /// jumps past 100 %).
    pub fn crossed(
        &mut self,
        user: &str,
        kind: PeriodKind,
        period_start_ms: i64,
        used_kwh: f64,
        limit_kwh: f64,
    ) -> Vec<u8> {
        let pct = progress_pct(used_kwh, limit_kwh);
        THRESHOLDS
            .into_iter()
            // A little slack so 0.8 × limit summed from rounded Wh counts.
            .filter(|t| pct + 1e-9 >= f64::from(*t))
            .filter(|t| {
                self.notified
                    .insert((user.to_string(), kind, *t, period_start_ms))
            })
            .collect()
    }

    /// Forgets periods that ended (bounded memory over months of running).
    pub fn forget_before(&mut self, kind: PeriodKind, start_ms: i64) {
        self.notified
            .retain(|(_, k, _, s)| *k != kind || *s >= start_ms);
    }
}

/// The alert key of a threshold: `limit_<user>_<period>_<pct>`.
pub fn alert_key(user: &str, kind: PeriodKind, pct: u8) -> String {
    format!("limit_{user}_{}_{pct}", kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_threshold_fires_once_per_period() {
        let mut w = LimitWatch::default();
        let day = PeriodKind::Day;
        assert!(w.crossed("alice", day, 0, 0.5, 1.0).is_empty());
        assert_eq!(w.crossed("alice", day, 0, 0.8, 1.0), vec![80]);
        assert!(w.crossed("alice", day, 0, 0.9, 1.0).is_empty());
        assert_eq!(w.crossed("alice", day, 0, 1.0, 1.0), vec![100]);
        assert!(w.crossed("alice", day, 0, 1.4, 1.0).is_empty());
        // Another user, another period kind: their own.
        assert_eq!(w.crossed("bob", day, 0, 2.0, 1.0), vec![80, 100]);
        assert_eq!(w.crossed("alice", PeriodKind::Week, 0, 0.85, 1.0), vec![80]);
        // The next day notifies again.
        assert_eq!(w.crossed("alice", day, 86_400_000, 0.8, 1.0), vec![80]);
        // A notification found at start is not sent twice.
        let mut w = LimitWatch::default();
        w.mark("alice", day, 80, 0);
        assert_eq!(w.crossed("alice", day, 0, 1.0, 1.0), vec![100]);
        w.forget_before(day, 1);
        assert_eq!(w.crossed("alice", day, 0, 1.0, 1.0), vec![80, 100]);
        assert_eq!(progress_pct(1.0, 0.0), 0.0);
    }
}
