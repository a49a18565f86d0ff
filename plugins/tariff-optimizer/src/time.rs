//! Local wall-clock times of the config (`"HH:MM"`) and RFC 3339 states.
//!
//! The plugin sandbox has no time-zone database: local time is UTC plus the
//! config's fixed `utc_offset_min` (minutes east of UTC, e.g. 60 for CET,
//! 120 for CEST). It does not follow daylight-saving changes by itself:
//! set the offset of the season (or let the host rewrite the config).
//! Timestamps read from entities (deadlines, departures) carry their own
//! offset and need none.

pub use hearth_plugin_sdk::time::{format_rfc3339, parse_rfc3339_ms};

const DAY_MS: i64 = 86_400_000;

/// A local time of day, minutes since local midnight (0..=1440; `24:00`
/// is 1440, the end of a day, only useful as a window's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub u32);

impl LocalTime {
    /// `"HH:MM"` (`00:00` to `24:00`).
    pub fn parse(s: &str) -> Result<LocalTime, String> {
        let bad = || format!("expected a local time \"HH:MM\" (00:00 to 24:00), got {s:?}");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        if h > 24 || m > 59 || (h == 24 && m != 0) {
            return Err(bad());
        }
        Ok(LocalTime(h * 60 + m))
    }

    fn ms(self) -> i64 {
        self.0 as i64 * 60_000
    }

    /// The latest instant at or before `now_ms` at this local time of day.
    pub fn last_at_or_before(self, now_ms: i64, utc_offset_min: i32) -> i64 {
        let off = utc_offset_min as i64 * 60_000;
        let midnight = (now_ms + off).div_euclid(DAY_MS) * DAY_MS - off;
        let t = midnight + self.ms();
        if t <= now_ms { t } else { t - DAY_MS }
    }

    /// The earliest instant at or after `t_ms` at this local time of day.
    pub fn first_at_or_after(self, t_ms: i64, utc_offset_min: i32) -> i64 {
        let last = self.last_at_or_before(t_ms, utc_offset_min);
        if last == t_ms { last } else { last + DAY_MS }
    }

    /// Every instant at this time of day in `[from_ms, to_ms)`.
    pub fn occurrences(self, from_ms: i64, to_ms: i64, utc_offset_min: i32) -> Vec<i64> {
        let mut t = self.first_at_or_after(from_ms, utc_offset_min);
        let mut v = Vec::new();
        while t < to_ms {
            v.push(t);
            t += DAY_MS;
        }
        v
    }
}

/// Minutes since local midnight of `now_ms`.
pub fn minute_of_day(now_ms: i64, utc_offset_min: i32) -> u32 {
    ((now_ms + utc_offset_min as i64 * 60_000).rem_euclid(DAY_MS) / 60_000) as u32
}

/// `now_ms` in the daily local window `[from, to)`; a window with
/// `to < from` wraps midnight (`22:00`–`06:00`); `00:00`–`24:00` is the
/// whole day, and `from == to` none of it.
pub fn in_window(now_ms: i64, utc_offset_min: i32, from: LocalTime, to: LocalTime) -> bool {
    let m = minute_of_day(now_ms, utc_offset_min);
    if from <= to {
        from.0 <= m && m < to.0
    } else {
        m >= from.0 || m < to.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-01-13T16:30:00Z.
    const T: i64 = 1_768_321_800_000;

    #[test]
    fn local_times() {
        assert_eq!(LocalTime::parse("06:30"), Ok(LocalTime(390)));
        assert_eq!(LocalTime::parse("24:00"), Ok(LocalTime(1440)));
        for bad in ["6:30", "24:01", "12:60", "noon", "", "12:3a", "1é:00"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
        // 16:30 UTC is 17:30 at +01:00.
        assert_eq!(minute_of_day(T, 60), 17 * 60 + 30);
        let six = LocalTime::parse("18:00").unwrap();
        // 18:00 at +01:00 = 17:00Z, after T: the last one is yesterday's.
        assert_eq!(six.last_at_or_before(T, 60), T + 30 * 60_000 - DAY_MS);
        assert_eq!(six.first_at_or_after(T, 60), T + 30 * 60_000);
        assert_eq!(six.first_at_or_after(T + 30 * 60_000, 60), T + 30 * 60_000);
        assert_eq!(six.occurrences(T, T + 2 * DAY_MS, 60).len(), 2);
        let (a, b) = (LocalTime(22 * 60), LocalTime(6 * 60));
        assert!(in_window(T + 5 * 3_600_000, 60, a, b), "22:30 local");
        assert!(!in_window(T, 60, a, b), "17:30 local");
        assert!(in_window(T, 60, LocalTime(0), LocalTime(1440)));
        assert!(!in_window(T, 60, LocalTime(600), LocalTime(600)));
    }
}
