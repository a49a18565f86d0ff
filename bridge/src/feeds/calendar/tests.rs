//! The calendar driver's pure part against payloads shaped like Google
//! Calendar's "secret address in iCal format" export
//! (`bridge/tests/fixtures/calendar/`, CRLF, folded lines, VTIMEZONE,
//! VALARM, overrides).

use super::schedule::{Occurrence, Status, occurrences, status};
use super::*;

const OPENING: &str = include_str!("../../../tests/fixtures/calendar/opening-hours.ics");
const SPECIAL: &str = include_str!("../../../tests/fixtures/calendar/special-days.ics");
const CLUB: &str = include_str!("../../../tests/fixtures/calendar/club-utc.ics");

fn cfg(text: &str) -> Result<CalendarConfig, String> {
    let c: CalendarConfig = toml::from_str(text).map_err(|e| e.to_string())?;
    c.validate().map(|_| c)
}

fn feed(extra: &str) -> CalendarConfig {
    cfg(&format!(
        "id = \"coworking\"\nname = \"Coworking\"\nfile = \"x.ics\"\n{extra}"
    ))
    .unwrap()
}

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn at(text: &str, extra: &str, when: &str) -> Status {
    let c = feed(extra);
    let cal = parse_feed(&c, text).unwrap();
    let now = ms(when);
    let occ = occurrences(&cal, now - DAY_MS, now + AHEAD_MS, c.match_text.as_deref());
    status(&occ, now)
}

fn open_at(text: &str, extra: &str, when: &str) -> bool {
    at(text, extra, when).open
}

#[test]
fn weekly_opening_hours_are_paris_local_time_across_dst() {
    let o = |w| open_at(OPENING, "", w);
    // Monday 2026-01-05, CET (UTC+1): 08:00–19:00 is 07:00Z–18:00Z.
    assert!(!o("2026-01-05T06:59:59Z"));
    assert!(o("2026-01-05T07:00:00Z"));
    assert!(o("2026-01-05T17:59:59Z"));
    assert!(!o("2026-01-05T18:00:00Z"));
    // Saturday and Sunday closed.
    assert!(!o("2026-01-10T10:00:00Z"));
    // Friday before the DST change (CET) and Monday after it (CEST, UTC+2).
    assert!(o("2026-03-27T07:00:00Z"));
    assert!(!o("2026-03-30T05:59:00Z"));
    assert!(o("2026-03-30T06:00:00Z"));
    assert!(!o("2026-03-30T17:00:00Z"), "19:00 CEST is 17:00Z");
    // And back to CET on Monday 2026-10-26.
    assert!(!o("2026-10-26T06:30:00Z"));
    assert!(o("2026-10-26T07:00:00Z"));
}

#[test]
fn next_change_spans_the_weekend_and_the_dst_change() {
    let s = at(OPENING, "", "2026-03-27T12:00:00Z");
    assert_eq!(s.event.as_deref(), Some("Open"));
    assert_eq!(s.next_change_ms, Some(ms("2026-03-27T18:00:00Z")));
    let s = at(OPENING, "", "2026-03-27T18:00:00Z");
    assert!(!s.open);
    assert_eq!(s.event, None);
    assert_eq!(
        s.next_change_ms,
        Some(ms("2026-03-30T06:00:00Z")),
        "Monday 08:00 CEST"
    );
}

#[test]
fn exdate_holidays_are_closed() {
    // Easter Monday 2026-04-06, 1 May and 8 May (two EXDATEs on one line).
    for day in ["2026-04-06", "2026-05-01", "2026-05-08"] {
        assert!(!open_at(OPENING, "", &format!("{day}T10:00:00Z")), "{day}");
    }
    assert!(open_at(OPENING, "", "2026-04-07T10:00:00Z"));
    assert!(open_at(OPENING, "", "2026-05-04T10:00:00Z"));
}

#[test]
fn a_moved_occurrence_opens_at_its_new_time_only() {
    // Thursday 2026-03-05 moved from 08:00–19:00 to 10:00–16:00 (CET).
    let s = at(OPENING, "", "2026-03-05T08:00:00Z");
    assert!(!s.open, "09:00 local: not open yet that day");
    assert_eq!(s.next_change_ms, Some(ms("2026-03-05T09:00:00Z")));
    let s = at(OPENING, "", "2026-03-05T12:00:00Z");
    assert!(s.open);
    assert_eq!(s.event.as_deref(), Some("Open (short day)"));
    assert_eq!(s.next_change_ms, Some(ms("2026-03-05T15:00:00Z")));
    assert!(!open_at(OPENING, "", "2026-03-05T16:00:00Z"));
}

#[test]
fn a_cancelled_occurrence_is_closed_and_the_series_goes_on() {
    assert!(!open_at(OPENING, "", "2026-03-12T10:00:00Z"));
    assert!(open_at(OPENING, "", "2026-03-11T10:00:00Z"));
    assert!(open_at(OPENING, "", "2026-03-13T10:00:00Z"));
    let s = at(OPENING, "", "2026-03-11T20:00:00Z");
    assert_eq!(
        s.next_change_ms,
        Some(ms("2026-03-13T07:00:00Z")),
        "Thursday skipped"
    );
}

#[test]
fn all_day_events_run_between_local_midnights_on_dst_weekends() {
    // Sat 28 – Sun 29 March 2026 (DTEND 30 exclusive): from Sat 00:00
    // CET (Fri 23:00Z) to Mon 00:00 CEST (Sun 22:00Z): 47 hours.
    let s = at(SPECIAL, "", "2026-03-27T22:59:59Z");
    assert!(!s.open);
    assert_eq!(s.next_change_ms, Some(ms("2026-03-27T23:00:00Z")));
    let s = at(SPECIAL, "", "2026-03-29T12:00:00Z");
    assert!(s.open);
    assert_eq!(s.next_change_ms, Some(ms("2026-03-29T22:00:00Z")));
    // Autumn: Sat 24 00:00 CEST (Fri 22:00Z) to Mon 26 00:00 CET (Sun
    // 23:00Z): 49 hours.
    let s = at(SPECIAL, "", "2026-10-23T22:00:00Z");
    assert!(s.open);
    assert_eq!(s.next_change_ms, Some(ms("2026-10-25T23:00:00Z")));
}

#[test]
fn match_keeps_only_events_whose_summary_contains_the_text() {
    // The all-day "Closed - staff training" is an event too: without a
    // filter it would open the space on Friday 20 March at midnight.
    assert!(open_at(OPENING, "", "2026-03-20T02:00:00Z"));
    assert!(!open_at(
        OPENING,
        "match = \"open\"",
        "2026-03-20T02:00:00Z"
    ));
    assert!(open_at(OPENING, "match = \"OPEN\"", "2026-03-20T10:00:00Z"));
    // The short day's summary "Open (short day)" still matches.
    assert!(open_at(OPENING, "match = \"open\"", "2026-03-05T12:00:00Z"));
    assert!(!open_at(
        OPENING,
        "match = \"short\"",
        "2026-03-04T12:00:00Z"
    ));
}

#[test]
fn utc_times_durations_count_interval_and_floating_until() {
    let c = feed("timezone = \"Europe/Paris\"");
    let cal = parse_feed(&c, CLUB).unwrap();
    let occ = occurrences(
        &cal,
        ms("2026-10-01T00:00:00Z"),
        ms("2027-06-01T00:00:00Z"),
        None,
    );
    let club: Vec<&Occurrence> = occ
        .iter()
        .filter(|o| o.summary.starts_with("Evening"))
        .collect();
    // Every other Monday 17:00Z, 2 h 30, four times.
    assert_eq!(club.len(), 4, "{club:?}");
    assert_eq!(club[0].summary, "Evening club, room B");
    assert_eq!(club[1].start_ms, ms("2026-11-16T17:00:00Z"));
    assert_eq!(club[3].start_ms, ms("2026-12-14T17:00:00Z"));
    assert_eq!(club[3].end_ms, ms("2026-12-14T19:30:00Z"));
    // First Saturday of the month, floating 09:00 read in Paris, until
    // 1 Feb 2027: Nov, Dec, Jan.
    let cafe: Vec<i64> = occ
        .iter()
        .filter(|o| o.summary == "Repair café")
        .map(|o| o.start_ms)
        .collect();
    assert_eq!(
        cafe,
        [
            ms("2026-11-07T08:00:00Z"),
            ms("2026-12-05T08:00:00Z"),
            ms("2027-01-02T08:00:00Z")
        ]
    );
    assert!(occ.iter().any(|o| o.summary == "Long, folded with a tab"));
}

#[test]
fn touching_events_make_one_block() {
    let occ = vec![
        Occurrence {
            start_ms: 0,
            end_ms: 10,
            summary: "a".into(),
        },
        Occurrence {
            start_ms: 10,
            end_ms: 20,
            summary: "b".into(),
        },
        Occurrence {
            start_ms: 30,
            end_ms: 40,
            summary: "c".into(),
        },
    ];
    let s = status(&occ, 5);
    assert_eq!((s.open, s.next_change_ms), (true, Some(20)));
    assert_eq!(status(&occ, 15).event.as_deref(), Some("b"));
    assert_eq!(status(&occ, 25).next_change_ms, Some(30));
    assert_eq!(status(&occ, 45).next_change_ms, None);
}

#[test]
fn bad_payloads_name_the_feed_and_the_line() {
    let c = cfg("id = \"hours\"\nname = \"Hours\"\nurl = \"http://127.0.0.1:9/h.ics\"").unwrap();
    let broken = OPENING.replace(
        "DTEND;TZID=Europe/Paris:20260105T190000",
        "DTEND;TZID=Europe/Paris:20260105T19h",
    );
    let e = parse_feed(&c, &broken).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "calendar `hours` (http://127.0.0.1:9/…): `line 29`: DTEND: expected a date-time"
        ),
        "{e}"
    );
    let e = parse_feed(&c, "<html>Sign in</html>")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`line 1`: expected `NAME[;PARAM=…]:VALUE`"),
        "{e}"
    );
    let e = parse_feed(&c, "{\"error\": \"not found\"}")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`line 1`") && e.contains("expected a property name"),
        "{e}"
    );
    let e = parse_feed(
        &c,
        &OPENING.replace("BYDAY=MO,TU", "BYSETPOS=1;BYDAY=MO,TU"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("`line 30`: RRULE: BYSETPOS is not supported"),
        "{e}"
    );
    // Non-ASCII in a rule part is refused, not split inside a character.
    for byday in ["€", "1€", "M€"] {
        let e = parse_feed(
            &c,
            &OPENING.replace("BYDAY=MO,TU", &format!("BYDAY={byday},TU")),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("BYDAY: expected e.g. MO"), "{e}");
    }
    // A duration past i64 milliseconds ends at the end of time, not before
    // its start.
    let cal = parse_feed(
        &c,
        &OPENING.replacen(
            "DTEND;TZID=Europe/Paris:20260105T190000",
            "DURATION:PT9999999999999999S",
            1,
        ),
    )
    .expect("a long DURATION parses");
    let occ = occurrences(
        &cal,
        ms("2026-01-05T00:00:00Z"),
        ms("2026-01-06T00:00:00Z"),
        None,
    );
    assert!(
        !occ.is_empty() && occ.iter().all(|o| o.end_ms >= o.start_ms),
        "{occ:?}"
    );
    // Cut at a line end (a connection dropped mid-transfer).
    let cut = OPENING[..OPENING.len() / 2].rfind("\r\n").unwrap() + 2;
    let truncated = &OPENING[..cut];
    let e = parse_feed(&c, truncated).unwrap_err().to_string();
    assert!(e.contains("the payload ends inside"), "{e}");
    // Arbitrary bytes never panic.
    let mut seed = 7u64;
    for _ in 0..300 {
        let mut s = OPENING.to_string().into_bytes();
        for _ in 0..5 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let i = (seed >> 33) as usize % s.len();
            s[i] = b"0:;=,\r\n -TZ"[(seed >> 20) as usize % 11];
        }
        let text = String::from_utf8_lossy(&s);
        if let Ok(cal) = parse_feed(&c, &text) {
            let occ = occurrences(
                &cal,
                ms("2026-01-01T00:00:00Z"),
                ms("2027-01-01T00:00:00Z"),
                None,
            );
            let _ = status(&occ, ms("2026-06-01T00:00:00Z"));
        }
    }
}

#[test]
fn config_errors_name_the_calendar_and_the_key() {
    let e = cfg("id = \"hours\"\nname = \"H\"").unwrap_err();
    assert!(e.starts_with("[[calendar]] `hours`: needs `url`"), "{e}");
    let e = cfg("id = \"hours\"\nname = \"H\"\nurl = \"http://x/a.ics\"\nfile = \"a.ics\"")
        .unwrap_err();
    assert!(e.contains("not both"), "{e}");
    // Google's secret address is https: accepted (rustls, Mozilla's roots).
    let google = "id = \"hours\"\nname = \"H\"\nurl = \"https://calendar.google.com/calendar/ical/x%40group.calendar.google.com/private-y/basic.ics\"";
    assert!(cfg(google).is_ok());
    let e = cfg(&format!("{google}\nca_file = \"/nonexistent/ca.pem\"")).unwrap_err();
    assert!(
        e.starts_with("[[calendar]] `hours` ca_file /nonexistent/ca.pem:"),
        "{e}"
    );
    let e =
        cfg("id = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\nca_file = \"ca.pem\"").unwrap_err();
    assert!(e.contains("ca_file only applies to an https:// url"), "{e}");
    let e = cfg("id = \"hours\"\nname = \"H\"\nurl = \"ftp://x/a.ics\"").unwrap_err();
    assert!(
        e.contains("[[calendar]] `hours` url") && e.contains("expected an http(s)://"),
        "{e}"
    );
    let e = cfg("id = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\nrefresh_s = 0").unwrap_err();
    assert_eq!(
        e,
        "[[calendar]] `hours` refresh_s must be 1 to 604800 s (got 0)"
    );
    let e = cfg("id = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\ntimezone = \"Mars/Olympus\"")
        .unwrap_err();
    assert!(e.contains("timezone `Mars/Olympus`"), "{e}");
    let e = cfg("id = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\nmatch = \" \"").unwrap_err();
    assert!(e.contains("match: expected some text"), "{e}");
    assert!(cfg("id = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\nrefresh = 5").is_err());
    let c = feed("");
    assert_eq!(c.refresh_s(), 900.0);
    assert_eq!(c.entity_id(), "binary_sensor.coworking_open");
}

#[test]
fn the_config_file_refuses_bad_or_duplicate_calendar_ids() {
    let one = "[[calendar]]\nid = \"hours\"\nname = \"H\"\nfile = \"a.ics\"\n";
    let c = crate::config::Config::from_toml(one, "c.toml").unwrap();
    assert_eq!(c.calendar.len(), 1);
    let e = crate::config::Config::from_toml(&format!("{one}{one}"), "c.toml").unwrap_err();
    assert!(
        format!("{e:#}").contains("[[calendar]] id `hours` is already a device id"),
        "{e:#}"
    );
    let e = crate::config::Config::from_toml(&one.replace("hours", "Opening Hours"), "c.toml")
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("[[calendar]] id `Opening Hours`"),
        "{e:#}"
    );
    let e =
        crate::config::Config::from_toml(&one.replace("file", "fichier"), "c.toml").unwrap_err();
    assert!(format!("{e:#}").contains("fichier"), "{e:#}");
}

#[test]
fn urls_are_shown_without_their_secret_path() {
    assert_eq!(
        super::redact_url(
            "https://calendar.google.com/calendar/ical/x%40group.calendar.google.com/private-y/basic.ics"
        ),
        "https://calendar.google.com/…"
    );
    assert_eq!(
        super::redact_url("http://127.0.0.1:8080/hours.ics?token=s"),
        "http://127.0.0.1:8080/…"
    );
    assert_eq!(super::redact_url("http://nas.local/"), "http://nas.local/");
}
