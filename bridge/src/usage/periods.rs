//! Local calendar periods: the hour a ledger row belongs to, and where the
//! current day, week and month started (and the next one starts), in the
//! space's time zone — DST days are 23 or 25 h long.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeekStart {
    #[default]
    Monday,
    Sunday,
}

impl WeekStart {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "monday" => Some(WeekStart::Monday),
            "sunday" => Some(WeekStart::Sunday),
            _ => None,
        }
    }
}

/// The periods limits, entities and reports use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    #[default]
    Day,
    Week,
    Month,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 3] = [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month];

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
        }
    }

    /// The suffix of the entity keys: `today`, `week`, `month`.
    pub fn entity_suffix(self) -> &'static str {
        match self {
            PeriodKind::Day => "today",
            PeriodKind::Week => "week",
            PeriodKind::Month => "month",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Calendar {
    tz: TimeZone,
    week_starts: WeekStart,
}

impl Calendar {
    pub fn new(tz: TimeZone, week_starts: WeekStart) -> Self {
        Calendar { tz, week_starts }
    }

    fn ts(ms: i64) -> Timestamp {
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// The local date at `ms`.
    pub fn date(&self, ms: i64) -> Date {
        Self::ts(ms).to_zoned(self.tz.clone()).date()
    }

    /// ms of the start of the local hour holding `ms` (ledger bucket).
    pub fn hour_start(&self, ms: i64) -> i64 {
        let z = Self::ts(ms).to_zoned(self.tz.clone());
        // The offset may be a fraction of an hour: cut on local minutes.
        let into = i64::from(z.minute()) * 60_000
            + i64::from(z.second()) * 1000
            + i64::from(z.millisecond());
        ms - into
    }

    /// ms of local midnight starting `date` (the first instant of the day
    /// when a DST gap skips midnight).
    pub fn day_start_ms(&self, date: Date) -> i64 {
        date.to_zoned(self.tz.clone())
            .map_or(0, |z| z.timestamp().as_millisecond())
    }

    /// The first date of the period of `kind` holding `date`.
    pub fn period_first_date(&self, kind: PeriodKind, date: Date) -> Date {
        match kind {
            PeriodKind::Day => date,
            PeriodKind::Week => {
                let first = match self.week_starts {
                    WeekStart::Monday => Weekday::Monday,
                    WeekStart::Sunday => Weekday::Sunday,
                };
                let back = (date.weekday().to_monday_zero_offset() + 7
                    - first.to_monday_zero_offset())
                    % 7;
                date.checked_sub(i64::from(back).days()).unwrap_or(date)
            }
            PeriodKind::Month => date.first_of_month(),
        }
    }

    /// The first date of the next period.
    pub fn next_first_date(&self, kind: PeriodKind, date: Date) -> Date {
        let first = self.period_first_date(kind, date);
        let step = match kind {
            PeriodKind::Day => 1.day(),
            PeriodKind::Week => 7.days(),
            PeriodKind::Month => 1.month(),
        };
        first.checked_add(step).unwrap_or(first)
    }

    /// (start ms, next start ms) of the period of `kind` holding `ms`.
    pub fn period(&self, kind: PeriodKind, ms: i64) -> (i64, i64) {
        let date = self.date(ms);
        (
            self.day_start_ms(self.period_first_date(kind, date)),
            self.day_start_ms(self.next_first_date(kind, date)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris() -> Calendar {
        Calendar::new(
            crate::feeds::tariff::parse_time_zone("Europe/Paris").unwrap(),
            WeekStart::Monday,
        )
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn days_weeks_and_months_are_local_across_dst() {
        let c = paris();
        // 2026-03-29: spring forward, a 23 h day.
        let (s, e) = c.period(PeriodKind::Day, ms("2026-03-29T12:00:00Z"));
        assert_eq!(s, ms("2026-03-28T23:00:00Z"));
        assert_eq!(e, ms("2026-03-29T22:00:00Z"));
        assert_eq!(e - s, 23 * 3_600_000);
        // 2026-10-25: fall back, 25 h.
        let (s, e) = c.period(PeriodKind::Day, ms("2026-10-25T12:00:00Z"));
        assert_eq!(e - s, 25 * 3_600_000);
        // 00:30 local on 1 Dec is in December; 23:30 UTC on 30 Nov too.
        let (s, e) = c.period(PeriodKind::Month, ms("2026-11-30T23:30:00Z"));
        assert_eq!(s, ms("2026-11-30T23:00:00Z"));
        assert_eq!(e, ms("2026-12-31T23:00:00Z"));
        // The week holding Sunday 2026-03-29 started Monday 23 March (CET)
        // and ends Monday 30 March (CEST): 7 days minus an hour.
        let (s, e) = c.period(PeriodKind::Week, ms("2026-03-29T20:00:00Z"));
        assert_eq!(s, ms("2026-03-22T23:00:00Z"));
        assert_eq!(e, ms("2026-03-29T22:00:00Z"));
        let sunday = Calendar::new(c.tz.clone(), WeekStart::Sunday);
        let (s, _) = sunday.period(PeriodKind::Week, ms("2026-03-29T20:00:00Z"));
        assert_eq!(s, ms("2026-03-28T23:00:00Z"));
    }

    #[test]
    fn hours_are_local_hours() {
        let c = paris();
        assert_eq!(
            c.hour_start(ms("2026-10-25T00:59:59Z")),
            ms("2026-10-25T00:00:00Z")
        );
        // The repeated 02:00–03:00 hour of 25 October is two buckets.
        assert_eq!(
            c.hour_start(ms("2026-10-25T01:10:00Z")),
            ms("2026-10-25T01:00:00Z")
        );
        let india = Calendar::new(
            crate::feeds::tariff::parse_time_zone("+05:30").unwrap(),
            WeekStart::Monday,
        );
        assert_eq!(
            india.hour_start(ms("2026-10-25T01:10:00Z")),
            ms("2026-10-25T00:30:00Z")
        );
    }
}
