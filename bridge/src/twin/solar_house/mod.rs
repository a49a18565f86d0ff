//! # The solar house twin (issue 15)
//!
//! A house near Lyon with a PV array, a grid meter and four flexible loads
//! on smart-plug or contactor relays, stepped in virtual time by the batch
//! simulator (`hearth simulate` on a `kind = "solar-house"` scenario, see
//! [`crate::twin::batch::solar_house`]):
//!
//! | device | module | what moves it |
//! |---|---|---|
//! | PV array (AC production) | [`pv`] | the sun, the cloud fraction, the outdoor temperature |
//! | Storage water heater (fully mixed tank, thermostat) | [`water_heater`] | its relay, hot-water draws, losses |
//! | Washing machine, dishwasher (a programme's power profile) | [`machine`] | loaded each day; runs while loaded and its relay is on |
//! | EV on a charger (battery by a departure) | [`ev`] | arrives, charges while plugged and its relay is on, leaves |
//! | Everything else (fridge, cooking, lights) | [`base_load`] | a daily household profile, optional seeded noise |
//! | The whole house behind one grid meter | [`house`] | import/export per step, energy counters, deadlines |
//!
//! Units: W, Wh, °C, %, s; instants in ms since the Unix epoch (UTC);
//! daily events at a local "HH:MM" in the scenario's time zone
//! ([`LocalTime`]).

pub mod base_load;
pub mod ev;
pub mod house;
pub mod machine;
pub mod pv;
pub mod water_heater;

pub use house::{House, HouseSpec, LoadId, StepFlows};

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer};

/// A local wall-clock time of day, `"HH:MM"` (`"24:00"` is midnight at
/// the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    /// Minutes after local midnight, 0–1440.
    pub minutes: u32,
}

impl LocalTime {
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a local time HH:MM");
        let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
        let h: u32 = h.parse().map_err(|_| bad())?;
        let m: u32 = m.parse().map_err(|_| bad())?;
        if m >= 60 || h > 24 || (h == 24 && m > 0) {
            return Err(bad());
        }
        Ok(LocalTime {
            minutes: h * 60 + m,
        })
    }

    pub fn hm(h: u32, m: u32) -> Self {
        LocalTime {
            minutes: h * 60 + m,
        }
    }

    /// This time on local `date`, ms (the earlier instant on a DST fold,
    /// shifted forward in a gap, as jiff's "compatible" disambiguation).
    pub fn on(&self, tz: &TimeZone, date: Date) -> i64 {
        let midnight = date
            .to_datetime(Time::midnight())
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(0);
        if self.minutes == 0 {
            return midnight;
        }
        let (h, m) = ((self.minutes / 60) as i8, (self.minutes % 60) as i8);
        if h == 24 {
            return LocalTime::hm(0, 0).on(tz, date.tomorrow().unwrap_or(date));
        }
        date.to_datetime(Time::constant(h, m, 0, 0))
            .to_zoned(tz.clone())
            .map(|z| z.timestamp().as_millisecond())
            .unwrap_or(midnight + self.minutes as i64 * 60_000)
    }

    /// The first instant at this local time strictly after `after_ms`.
    pub fn next_after(&self, tz: &TimeZone, after_ms: i64) -> i64 {
        let mut date = local_date(tz, after_ms);
        for _ in 0..3 {
            let t = self.on(tz, date);
            if t > after_ms {
                return t;
            }
            date = date.tomorrow().unwrap_or(date);
        }
        after_ms + 86_400_000
    }

    /// Instants at this local time in `[from_ms, to_ms)`.
    pub fn between(&self, tz: &TimeZone, from_ms: i64, to_ms: i64) -> Vec<i64> {
        let mut out = Vec::new();
        let mut t = self.next_after(tz, from_ms - 1);
        while t < to_ms {
            out.push(t);
            t = self.next_after(tz, t);
        }
        out
    }
}

impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.minutes / 60, self.minutes % 60)
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The local date at `t_ms`.
pub fn local_date(tz: &TimeZone, t_ms: i64) -> Date {
    Timestamp::from_millisecond(t_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .date()
}

/// Seconds since local midnight at `t_ms`.
pub fn local_seconds(tz: &TimeZone, t_ms: i64) -> f64 {
    let dt = Timestamp::from_millisecond(t_ms)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_zoned(tz.clone())
        .datetime();
    dt.hour() as f64 * 3600.0
        + dt.minute() as f64 * 60.0
        + dt.second() as f64
        + dt.subsec_nanosecond() as f64 / 1e9
}

/// Whether the local time of day `s` (seconds after midnight) lies in
/// `[from, to)`; a window that ends before it starts runs over midnight.
pub fn in_window(s: f64, from: LocalTime, to: LocalTime) -> bool {
    let (a, b) = (from.minutes as f64 * 60.0, to.minutes as f64 * 60.0);
    if a <= b {
        s >= a && s < b
    } else {
        s >= a || s < b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_follow_the_time_zone() {
        let tz = crate::feeds::tariff::parse_time_zone("Europe/Paris").unwrap();
        // 2026-06-16 08:00 in Paris (CEST, UTC+2) is 06:00Z.
        let t = LocalTime::parse("08:00")
            .unwrap()
            .on(&tz, "2026-06-16".parse().unwrap());
        assert_eq!(crate::clock::iso8601(t), "2026-06-16T06:00:00.000+00:00");
        // The next 07:00 after 08:00 is the next morning.
        let n = LocalTime::hm(7, 0).next_after(&tz, t);
        assert_eq!(crate::clock::iso8601(n), "2026-06-17T05:00:00.000+00:00");
        assert_eq!(LocalTime::hm(8, 0).between(&tz, t, t + 86_400_000), vec![t]);
        assert!((local_seconds(&tz, n) - 7.0 * 3600.0).abs() < 1e-9);
        assert!(LocalTime::parse("25:00").is_err() && LocalTime::parse("7h").is_err());
        assert!(in_window(
            23.5 * 3600.0,
            LocalTime::hm(22, 0),
            LocalTime::hm(6, 0)
        ));
        assert!(!in_window(
            12.0 * 3600.0,
            LocalTime::hm(22, 0),
            LocalTime::hm(6, 0)
        ));
    }
}
