//! An iCalendar (RFC 5545) reader for the subset opening hours need: the
//! `VEVENT`s of a `VCALENDAR` with their times, recurrence and exceptions.
//!
//! Content lines are unfolded (§3.1: a line starting with a space or a tab
//! continues the previous one), split into name, parameters (quoted values
//! allowed) and value; TEXT values are unescaped (§3.3.11: `\\`, `\;`, `\,`,
//! `\n`/`\N`). Times (§3.3.4, §3.3.5) are kept as written, a date, a
//! floating local time, a UTC time (`Z`) or a local time with its `TZID`,
//! because recurrence runs in local time (08:00 stays 08:00 across a DST
//! change) and only each occurrence is placed on the time line.
//!
//! `TZID` is looked up in the IANA database bundled with jiff
//! (`tzdb-bundle-always`), so `Europe/Paris` follows its real DST rules;
//! the calendar's `VTIMEZONE` blocks are skipped (Google and most exporters
//! name IANA zones; Outlook's Windows names such as "Romance Standard
//! Time" are not resolved and give an error naming the line).
//!
//! Every error names the line (numbered as in the payload before
//! unfolding) and what was expected; nothing here panics on bad input.

use super::recur::Rule;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A parse error: the line (1-based, of the raw payload) and the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct IcsError {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for IcsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

fn err<T>(line: usize, reason: impl Into<String>) -> Result<T, IcsError> {
    Err(IcsError {
        line,
        reason: reason.into(),
    })
}

/// A DTSTART/DTEND/EXDATE/RECURRENCE-ID/UNTIL value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum IcsTime {
    /// `VALUE=DATE`: an all-day date, placed at local midnight.
    Date(Date),
    /// No zone: local time of the calendar (`X-WR-TIMEZONE`) or the feed's
    /// `timezone`.
    Floating(DateTime),
    /// `…Z`.
    Utc(Timestamp),
    /// `TZID=…:…`.
    Zoned(DateTime, TimeZone),
}

impl IcsTime {
    /// The civil date-time (dates at 00:00; UTC times in UTC).
    pub fn civil(&self) -> DateTime {
        match self {
            IcsTime::Date(d) => d.to_datetime(jiff::civil::Time::midnight()),
            IcsTime::Floating(dt) | IcsTime::Zoned(dt, _) => *dt,
            IcsTime::Utc(ts) => TimeZone::UTC.to_datetime(*ts),
        }
    }

    /// The zone this value's civil time is read in; `local` for dates and
    /// floating times.
    pub fn zone(&self, local: &TimeZone) -> TimeZone {
        match self {
            IcsTime::Date(_) | IcsTime::Floating(_) => local.clone(),
            IcsTime::Utc(_) => TimeZone::UTC,
            IcsTime::Zoned(_, tz) => tz.clone(),
        }
    }

    /// The instant, ms since the Unix epoch. A local time skipped by a DST
    /// change moves forward, a repeated one takes the earlier (RFC 5545
    /// §3.3.5; jiff's `compatible` disambiguation).
    pub fn to_ms(&self, local: &TimeZone) -> Option<i64> {
        match self {
            IcsTime::Utc(ts) => Some(ts.as_millisecond()),
            _ => place(self.civil(), &self.zone(local)),
        }
    }

    pub fn is_date(&self) -> bool {
        matches!(self, IcsTime::Date(_))
    }
}

/// A civil time in `tz`, as ms (see [`IcsTime::to_ms`]).
pub fn place(dt: DateTime, tz: &TimeZone) -> Option<i64> {
    tz.to_ambiguous_zoned(dt)
        .compatible()
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}

/// One `VEVENT`.
#[derive(Debug, Clone)]
pub struct Event {
    /// Line of its `BEGIN:VEVENT`.
    pub line: usize,
    pub uid: String,
    pub summary: String,
    /// `STATUS:CANCELLED`.
    pub cancelled: bool,
    pub start: IcsTime,
    /// From DTEND, or DTSTART + DURATION, or RFC 5545's defaults (one day
    /// for a date, zero for a time).
    pub duration: SignedDuration,
    /// DTEND as written: occurrences end at the same local distance from
    /// their start (an all-day event ends at the next local midnight even
    /// on a 23-hour DST day).
    pub end: Option<IcsTime>,
    pub rule: Option<Rule>,
    pub exdates: Vec<IcsTime>,
    pub rdates: Vec<IcsTime>,
    pub recurrence_id: Option<IcsTime>,
}

/// The events of a calendar and its default zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    pub events: Vec<Event>,
    /// `X-WR-TIMEZONE` (Google's export carries it), for all-day and
    /// floating times.
    pub timezone: Option<TimeZone>,
    /// Its name as written.
    pub timezone_name: Option<String>,
}

/// A content line after unfolding.
struct ContentLine {
    line: usize,
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl ContentLine {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Most content lines read (a busy shared calendar over years has some
/// 10 000 events of ~15 lines).
const MAX_LINES: usize = 500_000;

/// Unfolds `text` into logical lines with the number of their first
/// physical line.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match raw.as_bytes().first() {
            Some(b' ' | b'\t') if !out.is_empty() => {
                if let Some(last) = out.last_mut() {
                    last.1.push_str(&raw[1..]);
                }
            }
            _ if raw.trim().is_empty() => {}
            _ => out.push((i + 1, raw.to_string())),
        }
    }
    out
}

fn content_line(line: usize, text: &str) -> Result<ContentLine, IcsError> {
    // The name ends at the first `;` or `:`; the value after the first `:`
    // that is not inside a quoted parameter value.
    let mut in_quotes = false;
    let mut colon = None;
    for (i, c) in text.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            ':' if !in_quotes => {
                colon = Some(i);
                break;
            }
            _ => {}
        }
    }
    let Some(colon) = colon else {
        return err(
            line,
            format!(
                "expected `NAME[;PARAM=…]:VALUE`, found `{}` (no `:`)",
                excerpt(text)
            ),
        );
    };
    let (head, value) = (&text[..colon], &text[colon + 1..]);
    let mut parts = split_unquoted(head, ';').into_iter();
    let name = parts.next().unwrap_or_default().to_ascii_uppercase();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return err(
            line,
            format!(
                "expected a property name (letters, digits, `-`), found `{}`",
                excerpt(head)
            ),
        );
    }
    let mut params = Vec::new();
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return err(
                line,
                format!("{name}: expected a parameter `KEY=value`, found `{p}`"),
            );
        };
        params.push((k.to_ascii_uppercase(), v.trim_matches('"').to_string()));
    }
    Ok(ContentLine {
        line,
        name,
        params,
        value: value.to_string(),
    })
}

fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// At most 60 characters of `s`, for error messages.
pub fn excerpt(s: &str) -> String {
    let mut e: String = s.chars().take(60).collect();
    if e.len() < s.len() {
        e.push('…');
    }
    e
}

/// RFC 5545 §3.3.11 TEXT unescaping.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A time zone by IANA name, or `UTC`/an offset/a POSIX rule as the other
/// feeds take them ([`crate::feeds::tariff::parse_time_zone`]).
pub fn time_zone(name: &str) -> Option<TimeZone> {
    let name = name.trim();
    TimeZone::get(name)
        .ok()
        .or_else(|| crate::feeds::tariff::parse_time_zone(name).ok())
}

fn parse_date(s: &str) -> Option<Date> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i16 = s[0..4].parse().ok()?;
    let m: i8 = s[4..6].parse().ok()?;
    let d: i8 = s[6..8].parse().ok()?;
    Date::new(y, m, d).ok()
}

fn parse_datetime(s: &str) -> Option<DateTime> {
    let (date, time) = s.split_once('T')?;
    let date = parse_date(date)?;
    if time.len() != 6 || !time.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i8 = time[0..2].parse().ok()?;
    let mi: i8 = time[2..4].parse().ok()?;
    // A leap second (60) is read as :59.
    let sec: i8 = time[4..6].parse::<i8>().ok()?.min(59);
    let t = jiff::civil::Time::new(h, mi, sec, 0).ok()?;
    Some(date.to_datetime(t))
}

/// One DATE or DATE-TIME value; `tzid` from the property's parameters.
pub fn parse_time(
    line: usize,
    what: &str,
    value: &str,
    tzid: Option<&str>,
    date_only: bool,
) -> Result<IcsTime, IcsError> {
    let value = value.trim();
    if date_only || (value.len() == 8 && !value.contains('T')) {
        return parse_date(value)
            .map(IcsTime::Date)
            .ok_or_else(|| IcsError {
                line,
                reason: format!(
                    "{what}: expected a date YYYYMMDD, found `{}`",
                    excerpt(value)
                ),
            });
    }
    let expected = || IcsError {
        line,
        reason: format!(
            "{what}: expected a date-time YYYYMMDDTHHMMSS[Z], found `{}`",
            excerpt(value)
        ),
    };
    if let Some(utc) = value.strip_suffix('Z') {
        let dt = parse_datetime(utc).ok_or_else(expected)?;
        let ts = TimeZone::UTC.to_timestamp(dt).map_err(|_| expected())?;
        return Ok(IcsTime::Utc(ts));
    }
    let dt = parse_datetime(value).ok_or_else(expected)?;
    match tzid {
        None => Ok(IcsTime::Floating(dt)),
        Some(name) => {
            let tz = time_zone(name).ok_or_else(|| IcsError {
                line,
                reason: format!(
                    "{what}: unknown time zone TZID=`{}`; expected an IANA name such as \
                     Europe/Paris",
                    excerpt(name)
                ),
            })?;
            Ok(IcsTime::Zoned(dt, tz))
        }
    }
}

/// A comma-separated list of times (EXDATE, RDATE).
fn parse_times(cl: &ContentLine) -> Result<Vec<IcsTime>, IcsError> {
    let date_only = cl
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
    if cl
        .param("VALUE")
        .is_some_and(|v| v.eq_ignore_ascii_case("PERIOD"))
    {
        return err(
            cl.line,
            format!("{}: VALUE=PERIOD is not supported", cl.name),
        );
    }
    cl.value
        .split(',')
        .map(|v| parse_time(cl.line, &cl.name, v, cl.param("TZID"), date_only))
        .collect()
}

/// RFC 5545 §3.3.6 DURATION: `[+-]P[nW]` or `[+-]P[nD][T[nH][nM][nS]]`.
pub fn parse_duration(line: usize, value: &str) -> Result<SignedDuration, IcsError> {
    let bad = || IcsError {
        line,
        reason: format!(
            "DURATION: expected e.g. PT1H30M, P1D or P1W, found `{}`",
            excerpt(value)
        ),
    };
    let v = value.trim();
    let (sign, v) = match v.as_bytes().first() {
        Some(b'-') => (-1i64, &v[1..]),
        Some(b'+') => (1, &v[1..]),
        _ => (1, v),
    };
    let v = v.strip_prefix('P').ok_or_else(bad)?;
    let mut secs: i64 = 0;
    let mut num = String::new();
    let mut in_time = false;
    let mut any = false;
    for c in v.chars() {
        match c {
            '0'..='9' => num.push(c),
            'T' if num.is_empty() && !in_time => in_time = true,
            'W' | 'D' | 'H' | 'M' | 'S' => {
                let n: i64 = num.parse().map_err(|_| bad())?;
                num.clear();
                let unit = match (c, in_time) {
                    ('W', false) => 7 * 86_400,
                    ('D', false) => 86_400,
                    ('H', true) => 3600,
                    ('M', true) => 60,
                    ('S', true) => 1,
                    _ => return Err(bad()),
                };
                secs = n
                    .checked_mul(unit)
                    .and_then(|x| secs.checked_add(x))
                    .ok_or_else(bad)?;
                any = true;
            }
            _ => return Err(bad()),
        }
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(SignedDuration::from_secs(sign * secs))
}

/// What a VEVENT has read so far.
#[derive(Default)]
struct EventDraft {
    line: usize,
    uid: Option<String>,
    summary: Option<String>,
    cancelled: bool,
    start: Option<IcsTime>,
    end: Option<(usize, IcsTime)>,
    duration: Option<SignedDuration>,
    rule: Option<Rule>,
    exdates: Vec<IcsTime>,
    rdates: Vec<IcsTime>,
    recurrence_id: Option<IcsTime>,
}

impl EventDraft {
    fn finish(self, local: &TimeZone) -> Result<Event, IcsError> {
        let line = self.line;
        let Some(start) = self.start else {
            return err(line, "VEVENT without DTSTART; expected a DTSTART line");
        };
        let duration = match (&self.end, self.duration) {
            (Some((_, end)), _) => {
                let (Some(s), Some(e)) = (start.to_ms(local), end.to_ms(local)) else {
                    return err(line, "VEVENT: DTSTART or DTEND is not a valid local time");
                };
                // DTEND before DTSTART: RFC 5545 forbids it; read as empty.
                SignedDuration::from_millis((e - s).max(0))
            }
            (None, Some(d)) => d,
            (None, None) if start.is_date() => SignedDuration::from_hours(24),
            (None, None) => SignedDuration::ZERO,
        };
        Ok(Event {
            line,
            uid: self.uid.unwrap_or_else(|| format!("line-{line}")),
            summary: self.summary.unwrap_or_default(),
            cancelled: self.cancelled,
            start,
            duration,
            end: self.end.map(|(_, e)| e),
            rule: self.rule,
            exdates: self.exdates,
            rdates: self.rdates,
            recurrence_id: self.recurrence_id,
        })
    }
}

/// Parses an iCalendar payload. `default_tz` (the feed's `timezone`)
/// places all-day and floating times when the calendar has no
/// `X-WR-TIMEZONE`; UTC if neither.
pub fn parse(text: &str, default_tz: Option<&TimeZone>) -> Result<Calendar, IcsError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines = unfold(text);
    if lines.len() > MAX_LINES {
        return err(
            lines[MAX_LINES].0,
            format!("more than {MAX_LINES} content lines; refusing a calendar this large"),
        );
    }
    let mut stack: Vec<(String, usize)> = Vec::new();
    let mut drafts: Vec<(EventDraft, Vec<(usize, String)>)> = Vec::new();
    let mut current: Option<EventDraft> = None;
    let mut rrules: Vec<(usize, String)> = Vec::new();
    let mut seen_calendar = false;
    let mut calendar_tz: Option<(String, TimeZone)> = None;
    for (n, text) in &lines {
        let cl = content_line(*n, text)?;
        match cl.name.as_str() {
            "BEGIN" => {
                let what = cl.value.trim().to_ascii_uppercase();
                if stack.is_empty() && what != "VCALENDAR" {
                    return err(
                        cl.line,
                        format!("expected BEGIN:VCALENDAR, found BEGIN:{what}"),
                    );
                }
                if what == "VCALENDAR" {
                    if !stack.is_empty() {
                        return err(cl.line, "BEGIN:VCALENDAR inside another component");
                    }
                    seen_calendar = true;
                }
                if what == "VEVENT" && stack.len() == 1 {
                    current = Some(EventDraft {
                        line: cl.line,
                        ..EventDraft::default()
                    });
                    rrules.clear();
                }
                stack.push((what, cl.line));
                continue;
            }
            "END" => {
                let what = cl.value.trim().to_ascii_uppercase();
                match stack.pop() {
                    Some((open, _)) if open == what => {}
                    Some((open, at)) => {
                        return err(
                            cl.line,
                            format!("expected END:{open} (opened on line {at}), found END:{what}"),
                        );
                    }
                    None => return err(cl.line, format!("END:{what} without a BEGIN")),
                }
                if what == "VEVENT"
                    && stack.len() == 1
                    && let Some(d) = current.take()
                {
                    drafts.push((d, std::mem::take(&mut rrules)));
                }
                continue;
            }
            _ => {}
        }
        if stack.is_empty() {
            return err(
                cl.line,
                format!("expected BEGIN:VCALENDAR, found `{}`", excerpt(text)),
            );
        }
        if stack.len() == 1 && cl.name == "X-WR-TIMEZONE" {
            let name = cl.value.trim().to_string();
            let tz = time_zone(&name).ok_or_else(|| IcsError {
                line: cl.line,
                reason: format!(
                    "X-WR-TIMEZONE: unknown time zone `{}`; expected an IANA name",
                    excerpt(&name)
                ),
            })?;
            calendar_tz = Some((name, tz));
            continue;
        }
        // Only the VEVENT's own properties (not those of a VALARM in it).
        let Some(ev) = current.as_mut().filter(|_| stack.len() == 2) else {
            continue;
        };
        let tzid = cl.param("TZID");
        let date_only = cl
            .param("VALUE")
            .is_some_and(|v| v.eq_ignore_ascii_case("DATE"));
        match cl.name.as_str() {
            "UID" => ev.uid = Some(cl.value.trim().to_string()),
            "SUMMARY" => ev.summary = Some(unescape(&cl.value)),
            "STATUS" => ev.cancelled = cl.value.trim().eq_ignore_ascii_case("CANCELLED"),
            "DTSTART" => {
                ev.start = Some(parse_time(cl.line, "DTSTART", &cl.value, tzid, date_only)?)
            }
            "DTEND" => {
                ev.end = Some((
                    cl.line,
                    parse_time(cl.line, "DTEND", &cl.value, tzid, date_only)?,
                ))
            }
            "DURATION" => ev.duration = Some(parse_duration(cl.line, &cl.value)?),
            "RRULE" => rrules.push((cl.line, cl.value.clone())),
            "EXDATE" => ev.exdates.extend(parse_times(&cl)?),
            "RDATE" => ev.rdates.extend(parse_times(&cl)?),
            "RECURRENCE-ID" => {
                ev.recurrence_id = Some(parse_time(
                    cl.line,
                    "RECURRENCE-ID",
                    &cl.value,
                    tzid,
                    date_only,
                )?)
            }
            _ => {}
        }
    }
    if let Some((open, at)) = stack.last() {
        return err(
            lines.last().map_or(1, |l| l.0),
            format!("the payload ends inside {open} (opened on line {at}); expected END:{open}"),
        );
    }
    if !seen_calendar {
        return err(1, "expected BEGIN:VCALENDAR, found no content lines");
    }
    let (timezone_name, timezone) = match calendar_tz {
        Some((n, tz)) => (Some(n), Some(tz)),
        None => (None, None),
    };
    let local = timezone
        .clone()
        .or_else(|| default_tz.cloned())
        .unwrap_or(TimeZone::UTC);
    let mut events = Vec::with_capacity(drafts.len());
    for (mut draft, rules) in drafts {
        if rules.len() > 1 {
            return err(rules[1].0, "a second RRULE in one VEVENT is not supported");
        }
        if let Some((line, text)) = rules.into_iter().next() {
            let start = draft.start.as_ref().ok_or_else(|| IcsError {
                line: draft.line,
                reason: "VEVENT with an RRULE but no DTSTART".into(),
            })?;
            draft.rule = Some(Rule::parse(line, &text, start)?);
        }
        events.push(draft.finish(&local)?);
    }
    Ok(Calendar {
        events,
        timezone: timezone.or_else(|| default_tz.cloned()),
        timezone_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_unfold_and_text_unescapes() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20260105T080000Z\r\nSUMMARY:Open\\, with \r\n a folded\\nline\\; ok\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let c = parse(text, None).unwrap();
        assert_eq!(c.events[0].summary, "Open, with a folded\nline; ok");
    }

    #[test]
    fn quoted_params_may_hold_colons() {
        let cl = content_line(3, "ATTENDEE;CN=\"A: B\";ROLE=X:mailto:a@b").unwrap();
        assert_eq!(cl.name, "ATTENDEE");
        assert_eq!(cl.param("CN"), Some("A: B"));
        assert_eq!(cl.value, "mailto:a@b");
    }

    #[test]
    fn durations_follow_rfc_5545() {
        let d = |s| parse_duration(1, s).map(|d| d.as_secs());
        assert_eq!(d("PT11H"), Ok(39_600));
        assert_eq!(d("P1D"), Ok(86_400));
        assert_eq!(d("P1W"), Ok(604_800));
        assert_eq!(d("-PT15M"), Ok(-900));
        assert_eq!(d("P1DT2H3M4S"), Ok(93_784));
        for bad in [
            "1H",
            "P",
            "PT",
            "P1H",
            "PT1D",
            "P1X",
            "PT99999999999999999H",
        ] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        let e = parse(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:2026-01-05\nEND:VEVENT\nEND:VCALENDAR",
            None,
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.reason.contains("expected a date-time YYYYMMDDTHHMMSS"),
            "{e}"
        );
        let e = parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\nEND:VCALENDAR", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3: expected END:VEVENT (opened on line 2), found END:VCALENDAR"
        );
        let e = parse("<html>nope</html>", None).unwrap_err();
        assert!(e.reason.contains("NAME[;PARAM=…]:VALUE"), "{e}");
        let e = parse("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;TZID=Romance Standard Time:20260105T080000\nEND:VEVENT\nEND:VCALENDAR", None).unwrap_err();
        assert!(e.reason.contains("unknown time zone"), "{e}");
        let e = parse(
            "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20260105T080000Z\n",
            None,
        )
        .unwrap_err();
        assert!(e.reason.contains("ends inside VEVENT"), "{e}");
        assert!(parse("", None).is_err());
    }

    #[test]
    fn paris_times_follow_dst() {
        let paris = time_zone("Europe/Paris").unwrap();
        let t = |s: &str| parse_time(1, "DTSTART", s, Some("Europe/Paris"), false).unwrap();
        // Winter UTC+1, summer UTC+2.
        assert_eq!(t("20260105T080000").to_ms(&paris), Some(1_767_596_400_000));
        assert_eq!(t("20260706T080000").to_ms(&paris), Some(1_783_317_600_000));
    }
}
