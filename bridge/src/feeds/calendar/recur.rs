//! RFC 5545 §3.3.10 recurrence rules (`RRULE`), the subset opening-hour
//! calendars use: `FREQ=DAILY|WEEKLY|MONTHLY|YEARLY`, `INTERVAL`, `COUNT`,
//! `UNTIL`, `BYDAY` (with ordinals such as `1MO`, `-1FR` for MONTHLY, and
//! for YEARLY with BYMONTH), `BYMONTHDAY` (negative from the month's end),
//! `BYMONTH`, `WKST`. Other parts (`BYSETPOS`, `BYHOUR`, `BYWEEKNO`, …,
//! finer frequencies) are refused with an error naming them rather than
//! expanded wrongly.
//!
//! Expansion runs on civil dates: every occurrence keeps DTSTART's local
//! time of day and is placed in DTSTART's zone on its own date, so a
//! weekly 08:00 Europe/Paris stays 08:00 across DST changes (RFC 5545
//! §3.3.10: "the recurrence … is defined in local time"). DTSTART itself
//! is always the first occurrence and counts for COUNT (§3.8.5.3).

use super::ics::{IcsError, IcsTime, excerpt, place};
use jiff::ToSpan;
use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freq {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

/// A parsed RRULE.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub freq: Freq,
    pub interval: i32,
    pub count: Option<u32>,
    pub until: Option<IcsTime>,
    /// (ordinal, weekday); ordinal 0 = every such weekday of the period.
    pub by_day: Vec<(i8, Weekday)>,
    pub by_month_day: Vec<i8>,
    pub by_month: Vec<i8>,
    pub wkst: Weekday,
}

/// Periods (days, weeks, months, years) walked at most, so a rule that
/// matches nothing (`BYMONTHDAY=31;BYMONTH=2`) cannot loop for long.
const MAX_PERIODS: i64 = 100_000;

fn weekday(s: &str) -> Option<Weekday> {
    Some(match s {
        "MO" => Weekday::Monday,
        "TU" => Weekday::Tuesday,
        "WE" => Weekday::Wednesday,
        "TH" => Weekday::Thursday,
        "FR" => Weekday::Friday,
        "SA" => Weekday::Saturday,
        "SU" => Weekday::Sunday,
        _ => return None,
    })
}

impl Rule {
    /// Parses the value of an RRULE line; `start` is the event's DTSTART
    /// (UNTIL is read like it).
    pub fn parse(line: usize, text: &str, start: &IcsTime) -> Result<Rule, IcsError> {
        let fail = |reason: String| IcsError {
            line,
            reason: format!("RRULE: {reason}"),
        };
        let mut freq = None;
        let mut rule = Rule {
            freq: Freq::Daily,
            interval: 1,
            count: None,
            until: None,
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_month: Vec::new(),
            wkst: Weekday::Monday,
        };
        for part in text.trim().split(';').filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(fail(format!(
                    "expected KEY=VALUE, found `{}`",
                    excerpt(part)
                )));
            };
            let key = key.to_ascii_uppercase();
            let value = value.to_ascii_uppercase();
            let list = || value.split(',').filter(|v| !v.is_empty());
            match key.as_str() {
                "FREQ" => {
                    freq = Some(match value.as_str() {
                        "DAILY" => Freq::Daily,
                        "WEEKLY" => Freq::Weekly,
                        "MONTHLY" => Freq::Monthly,
                        "YEARLY" => Freq::Yearly,
                        other => {
                            return Err(fail(format!(
                                "FREQ={other} is not supported; expected DAILY, WEEKLY, \
                                 MONTHLY or YEARLY"
                            )));
                        }
                    })
                }
                "INTERVAL" => {
                    rule.interval = value
                        .parse()
                        .ok()
                        .filter(|i| (1..=10_000).contains(i))
                        .ok_or_else(|| {
                            fail(format!("INTERVAL: expected 1 to 10000, found `{value}`"))
                        })?
                }
                "COUNT" => {
                    rule.count = Some(value.parse().ok().filter(|c| *c >= 1).ok_or_else(|| {
                        fail(format!("COUNT: expected a number >= 1, found `{value}`"))
                    })?)
                }
                "UNTIL" => {
                    let tzid = match start {
                        IcsTime::Zoned(_, tz) => tz.iana_name(),
                        _ => None,
                    };
                    rule.until = Some(super::ics::parse_time(
                        line,
                        "RRULE UNTIL",
                        &value,
                        tzid,
                        false,
                    )?)
                }
                "BYDAY" => {
                    for v in list() {
                        // ASCII only: the split must not fall inside a character.
                        if !v.is_ascii() {
                            return Err(fail(format!(
                                "BYDAY: expected e.g. MO, 1MO or -1FR, found `{v}`"
                            )));
                        }
                        let (num, day) = v.split_at(v.len().saturating_sub(2));
                        let wd = weekday(day).ok_or_else(|| {
                            fail(format!("BYDAY: expected e.g. MO, 1MO or -1FR, found `{v}`"))
                        })?;
                        let n: i8 = if num.is_empty() {
                            0
                        } else {
                            num.trim_start_matches('+')
                                .parse()
                                .ok()
                                .filter(|n: &i8| *n != 0 && (-53..=53).contains(n))
                                .ok_or_else(|| {
                                    fail(format!(
                                        "BYDAY: expected e.g. MO, 1MO or -1FR, found `{v}`"
                                    ))
                                })?
                        };
                        rule.by_day.push((n, wd));
                    }
                }
                "BYMONTHDAY" => {
                    for v in list() {
                        let n: i8 = v
                            .parse()
                            .ok()
                            .filter(|n: &i8| *n != 0 && (-31..=31).contains(n))
                            .ok_or_else(|| {
                                fail(format!(
                                    "BYMONTHDAY: expected 1 to 31 or -31 to -1, found `{v}`"
                                ))
                            })?;
                        rule.by_month_day.push(n);
                    }
                }
                "BYMONTH" => {
                    for v in list() {
                        let n: i8 =
                            v.parse()
                                .ok()
                                .filter(|n| (1..=12).contains(n))
                                .ok_or_else(|| {
                                    fail(format!("BYMONTH: expected 1 to 12, found `{v}`"))
                                })?;
                        rule.by_month.push(n);
                    }
                }
                "WKST" => {
                    rule.wkst = weekday(&value)
                        .ok_or_else(|| fail(format!("WKST: expected MO … SU, found `{value}`")))?
                }
                "BYSETPOS" | "BYHOUR" | "BYMINUTE" | "BYSECOND" | "BYWEEKNO" | "BYYEARDAY"
                | "BYEASTER" => {
                    return Err(fail(format!(
                        "{key} is not supported (supported: FREQ, INTERVAL, COUNT, UNTIL, \
                         BYDAY, BYMONTHDAY, BYMONTH, WKST)"
                    )));
                }
                other => return Err(fail(format!("unknown part `{other}`"))),
            }
        }
        rule.freq = freq.ok_or_else(|| fail("expected FREQ=…, found none".into()))?;
        if rule.count.is_some() && rule.until.is_some() {
            return Err(fail(
                "COUNT and UNTIL together (RFC 5545 allows one)".into(),
            ));
        }
        let ordinals = rule.by_day.iter().any(|(n, _)| *n != 0);
        if ordinals
            && !(rule.freq == Freq::Monthly
                || (rule.freq == Freq::Yearly && !rule.by_month.is_empty()))
        {
            return Err(fail(
                "BYDAY with an ordinal (e.g. 1MO) is supported with FREQ=MONTHLY, or \
                 FREQ=YEARLY with BYMONTH"
                    .into(),
            ));
        }
        Ok(rule)
    }

    /// Calls `visit` with each occurrence start (civil, in the zone of
    /// `start`) in order, DTSTART first, until `visit` returns `false`, the
    /// rule ends (COUNT, UNTIL) or [`MAX_PERIODS`] periods were walked.
    /// `local` places floating and date UNTILs.
    pub fn expand(
        &self,
        start: &IcsTime,
        local: &TimeZone,
        mut visit: impl FnMut(DateTime) -> bool,
    ) {
        let first = start.civil();
        let zone = start.zone(local);
        let until_ms = self.until.as_ref().and_then(|u| match u {
            IcsTime::Date(d) => {
                // An all-day UNTIL includes its whole day.
                let next = d.tomorrow().ok()?;
                place(next.to_datetime(jiff::civil::Time::midnight()), &zone).map(|m| m - 1)
            }
            other => other.to_ms(local),
        });
        let within = |dt: DateTime| match until_ms {
            None => true,
            Some(u) => place(dt, &zone).is_some_and(|m| m <= u),
        };
        if !within(first) || !visit(first) {
            return;
        }
        let mut emitted: u32 = 1;
        let time = first.time();
        for k in 0..MAX_PERIODS {
            let Some(mut dates) = self.period_dates(first.date(), k) else {
                return; // beyond jiff's range
            };
            dates.sort();
            dates.dedup();
            for d in dates {
                if d <= first.date() {
                    continue;
                }
                if self.count.is_some_and(|c| emitted >= c) {
                    return;
                }
                let dt = d.to_datetime(time);
                if !within(dt) || !visit(dt) {
                    return;
                }
                emitted += 1;
            }
        }
    }

    /// The candidate dates of period `k` (0 = the one holding `first`).
    fn period_dates(&self, first: Date, k: i64) -> Option<Vec<Date>> {
        let step = k.checked_mul(self.interval as i64)?;
        let month_ok = |d: &Date| self.by_month.is_empty() || self.by_month.contains(&d.month());
        let mut out = Vec::new();
        match self.freq {
            Freq::Daily => {
                let d = first.checked_add(step.days()).ok()?;
                let weekday_ok =
                    self.by_day.is_empty() || self.by_day.iter().any(|(_, w)| *w == d.weekday());
                if month_ok(&d) && weekday_ok && self.month_day_ok(d) {
                    out.push(d);
                }
            }
            Freq::Weekly => {
                let back = (first.weekday().to_monday_zero_offset()
                    - self.wkst.to_monday_zero_offset())
                .rem_euclid(7);
                let week = first
                    .checked_sub((back as i64).days())
                    .ok()?
                    .checked_add((step * 7).days())
                    .ok()?;
                let days: Vec<Weekday> = if self.by_day.is_empty() {
                    vec![first.weekday()]
                } else {
                    self.by_day.iter().map(|(_, w)| *w).collect()
                };
                for w in days {
                    let off = (w.to_monday_zero_offset() - self.wkst.to_monday_zero_offset())
                        .rem_euclid(7);
                    let d = week.checked_add((off as i64).days()).ok()?;
                    if month_ok(&d) {
                        out.push(d);
                    }
                }
            }
            Freq::Monthly => {
                let m = first.first_of_month().checked_add(step.months()).ok()?;
                if month_ok(&m) {
                    self.days_in_month(first, m, &mut out);
                }
            }
            Freq::Yearly => {
                let y = first
                    .first_of_month()
                    .with()
                    .month(1)
                    .build()
                    .ok()?
                    .checked_add(step.years())
                    .ok()?;
                let months: Vec<i8> = if self.by_month.is_empty() {
                    vec![first.month()]
                } else {
                    self.by_month.clone()
                };
                for mo in months {
                    let m = y.with().month(mo).build().ok()?;
                    self.days_in_month(first, m, &mut out);
                }
            }
        }
        Some(out)
    }

    fn month_day_ok(&self, d: Date) -> bool {
        self.by_month_day.is_empty()
            || self.by_month_day.iter().any(|n| {
                let len = d.days_in_month();
                let want = if *n > 0 { *n } else { len + 1 + *n };
                want == d.day()
            })
    }

    /// The matching days of the month starting at `m` (BYMONTHDAY and
    /// BYDAY intersect; neither: DTSTART's day of month, skipped in months
    /// too short for it).
    fn days_in_month(&self, first: Date, m: Date, out: &mut Vec<Date>) {
        let len = m.days_in_month();
        let all = (1..=len).filter_map(|day| m.with().day(day).build().ok());
        if self.by_month_day.is_empty() && self.by_day.is_empty() {
            if let Ok(d) = m.with().day(first.day()).build()
                && d.month() == m.month()
            {
                out.push(d);
            }
            return;
        }
        for d in all {
            if !self.month_day_ok(d) {
                continue;
            }
            if !self.by_day.is_empty() && !self.by_day.iter().any(|(n, w)| day_matches(d, *n, *w)) {
                continue;
            }
            out.push(d);
        }
    }
}

/// `d` is weekday `w` and, for ordinal `n` ≠ 0, the n-th (from the end if
/// negative) such weekday of its month.
fn day_matches(d: Date, n: i8, w: Weekday) -> bool {
    if d.weekday() != w {
        return false;
    }
    match n {
        0 => true,
        n if n > 0 => (d.day() - 1) / 7 + 1 == n,
        n => (d.days_in_month() - d.day()) / 7 + 1 == -n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn occurrences(rule: &str, start: &str, limit: usize) -> Vec<String> {
        let start = super::super::ics::parse_time(1, "DTSTART", start, Some("Europe/Paris"), false)
            .unwrap();
        let r = Rule::parse(1, rule, &start).unwrap();
        let mut out = Vec::new();
        r.expand(&start, &TimeZone::UTC, |dt| {
            out.push(dt.to_string());
            out.len() < limit
        });
        out
    }

    #[test]
    fn weekly_byday_with_count_and_interval() {
        // 2026-01-05 is a Monday.
        let o = occurrences("FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=5", "20260105T080000", 100);
        assert_eq!(
            o,
            [
                "2026-01-05T08:00:00",
                "2026-01-07T08:00:00",
                "2026-01-09T08:00:00",
                "2026-01-12T08:00:00",
                "2026-01-14T08:00:00"
            ]
        );
        let o = occurrences("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU", "20260106T090000", 3);
        assert_eq!(
            o,
            [
                "2026-01-06T09:00:00",
                "2026-01-20T09:00:00",
                "2026-02-03T09:00:00"
            ]
        );
    }

    #[test]
    fn until_is_inclusive_and_in_utc() {
        // 08:00 Paris = 07:00Z in January.
        let o = occurrences("FREQ=DAILY;UNTIL=20260107T070000Z", "20260105T080000", 100);
        assert_eq!(o.len(), 3, "{o:?}");
        let o = occurrences("FREQ=DAILY;UNTIL=20260107T065959Z", "20260105T080000", 100);
        assert_eq!(o.len(), 2, "{o:?}");
    }

    #[test]
    fn monthly_by_ordinal_weekday_and_negative_month_day() {
        let o = occurrences("FREQ=MONTHLY;BYDAY=-1FR;COUNT=3", "20260130T180000", 100);
        assert_eq!(
            o,
            [
                "2026-01-30T18:00:00",
                "2026-02-27T18:00:00",
                "2026-03-27T18:00:00"
            ]
        );
        let o = occurrences("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=3", "20260131T100000", 100);
        assert_eq!(
            o,
            [
                "2026-01-31T10:00:00",
                "2026-02-28T10:00:00",
                "2026-03-31T10:00:00"
            ]
        );
        // The 31st is skipped in shorter months.
        let o = occurrences("FREQ=MONTHLY;COUNT=3", "20260131T100000", 100);
        assert_eq!(
            o,
            [
                "2026-01-31T10:00:00",
                "2026-03-31T10:00:00",
                "2026-05-31T10:00:00"
            ]
        );
        let o = occurrences(
            "FREQ=YEARLY;BYMONTH=5;BYDAY=1MO;COUNT=2",
            "20260504T000000",
            100,
        );
        assert_eq!(o, ["2026-05-04T00:00:00", "2027-05-03T00:00:00"]);
        let o = occurrences("FREQ=DAILY;BYDAY=SA,SU;COUNT=3", "20260103T100000", 100);
        assert_eq!(
            o,
            [
                "2026-01-03T10:00:00",
                "2026-01-04T10:00:00",
                "2026-01-10T10:00:00"
            ]
        );
    }

    #[test]
    fn unsupported_parts_are_named() {
        let s = IcsTime::Date(date(2026, 1, 5));
        for (rule, says) in [
            ("FREQ=HOURLY", "FREQ=HOURLY is not supported"),
            (
                "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU",
                "BYSETPOS is not supported",
            ),
            ("BYDAY=MO", "expected FREQ"),
            ("FREQ=WEEKLY;BYDAY=XX", "BYDAY: expected"),
            ("FREQ=WEEKLY;BYDAY=1MO", "with an ordinal"),
            ("FREQ=DAILY;COUNT=0", "COUNT: expected"),
            ("FREQ=DAILY;COUNT=2;UNTIL=20260101", "COUNT and UNTIL"),
            ("FREQ=DAILY;FOO=1", "unknown part `FOO`"),
        ] {
            let e = Rule::parse(7, rule, &s).unwrap_err();
            assert_eq!(e.line, 7);
            assert!(e.reason.contains(says), "{rule}: {e}");
        }
    }

    #[test]
    fn an_impossible_rule_ends() {
        let o = occurrences(
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "20260105T080000",
            100,
        );
        assert_eq!(o, ["2026-01-05T08:00:00"]);
    }
}
