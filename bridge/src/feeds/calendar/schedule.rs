//! From a parsed calendar to "open or not, and until when": the
//! occurrences of every event over a window (recurrence, `RDATE`,
//! `EXDATE`, `RECURRENCE-ID` overrides, `STATUS:CANCELLED`), filtered by
//! summary, merged into blocks.
//!
//! Overrides follow RFC 5545 §3.8.4.4: a VEVENT with the master's UID and a
//! RECURRENCE-ID replaces the occurrence that started at that instant (it
//! may move it, change its summary or cancel it); a cancelled master
//! cancels the whole series with its overrides.

use super::ics::{Calendar, Event, IcsTime, place};
use jiff::tz::TimeZone;
use std::collections::{HashMap, HashSet};

/// One occurrence, `[start_ms, end_ms)` since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub start_ms: i64,
    pub end_ms: i64,
    pub summary: String,
}

/// Where the calendar stands at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub open: bool,
    /// The summary of the event in progress (the earliest-starting one if
    /// several overlap).
    pub event: Option<String>,
    /// When `open` next flips (ms), if it does within the window looked at.
    pub next_change_ms: Option<i64>,
}

fn matches(summary: &str, needle: Option<&str>) -> bool {
    needle.is_none_or(|n| summary.to_lowercase().contains(&n.to_lowercase()))
}

/// The end of the occurrence starting at civil `start` of `ev`.
fn end_of(ev: &Event, start: jiff::civil::DateTime, start_ms: i64, local: &TimeZone) -> i64 {
    let zone = ev.start.zone(local);
    // Same zone (or both local): keep the local distance (all-day → next
    // local midnight; 08:00–19:00 stays so on a DST day).
    if let Some(end) = &ev.end
        && end.zone(local) == zone
        && !matches!(end, IcsTime::Utc(_))
        && let Ok(e) = start.checked_add(end.civil().duration_since(ev.start.civil()))
        && let Some(ms) = place(e, &zone)
    {
        return ms.max(start_ms);
    }
    start_ms.saturating_add(i64::try_from(ev.duration.as_millis()).unwrap_or(i64::MAX))
}

/// Every occurrence overlapping `[from_ms, to_ms)` whose summary contains
/// `needle` (case-insensitive; `None`: all), sorted by start.
pub fn occurrences(
    cal: &Calendar,
    from_ms: i64,
    to_ms: i64,
    needle: Option<&str>,
) -> Vec<Occurrence> {
    let local = cal.timezone.clone().unwrap_or(TimeZone::UTC);
    let cancelled_series: HashSet<&str> = cal
        .events
        .iter()
        .filter(|e| e.recurrence_id.is_none() && e.cancelled)
        .map(|e| e.uid.as_str())
        .collect();
    // (uid, original start ms) of every overridden occurrence.
    let mut overridden: HashMap<&str, HashSet<i64>> = HashMap::new();
    for e in &cal.events {
        if let Some(rid) = &e.recurrence_id
            && let Some(ms) = rid.to_ms(&local)
        {
            overridden.entry(e.uid.as_str()).or_default().insert(ms);
        }
    }
    let mut out = Vec::new();
    let mut push = |start_ms: i64, end_ms: i64, summary: &str| {
        if end_ms > from_ms && start_ms < to_ms && end_ms > start_ms && matches(summary, needle) {
            out.push(Occurrence {
                start_ms,
                end_ms,
                summary: summary.to_string(),
            });
        }
    };
    for ev in &cal.events {
        if cancelled_series.contains(ev.uid.as_str()) {
            continue;
        }
        if ev.recurrence_id.is_some() {
            // An override stands for itself; a cancelled one removes its
            // occurrence and adds nothing. Without a master it is a plain
            // event.
            if !ev.cancelled
                && let Some(s) = ev.start.to_ms(&local)
            {
                push(s, end_of(ev, ev.start.civil(), s, &local), &ev.summary);
            }
            continue;
        }
        if ev.cancelled {
            continue;
        }
        let zone = ev.start.zone(&local);
        let exdates: Vec<(Option<i64>, Option<jiff::civil::Date>)> = ev
            .exdates
            .iter()
            .map(|x| match x {
                // A date EXDATE removes the occurrence on that date.
                IcsTime::Date(d) => (None, Some(*d)),
                other => (other.to_ms(&local), None),
            })
            .collect();
        let skip = overridden.get(ev.uid.as_str());
        let visit = |dt: jiff::civil::DateTime, push: &mut dyn FnMut(i64, i64, &str)| -> bool {
            let Some(s) = place(dt, &zone) else {
                return true;
            };
            if s >= to_ms {
                return false;
            }
            let excluded = exdates
                .iter()
                .any(|(ms, d)| *ms == Some(s) || *d == Some(dt.date()));
            if !excluded && !skip.is_some_and(|o| o.contains(&s)) {
                push(s, end_of(ev, dt, s, &local), &ev.summary);
            }
            true
        };
        match &ev.rule {
            Some(rule) => rule.expand(&ev.start, &local, |dt| visit(dt, &mut push)),
            None => {
                visit(ev.start.civil(), &mut push);
            }
        }
        for r in &ev.rdates {
            let dt = match r {
                IcsTime::Utc(_) => match r.to_ms(&local) {
                    Some(ms) => {
                        zone.to_datetime(jiff::Timestamp::from_millisecond(ms).unwrap_or_default())
                    }
                    None => continue,
                },
                // A date RDATE of a timed event keeps the event's time.
                IcsTime::Date(d) if !ev.start.is_date() => d.to_datetime(ev.start.civil().time()),
                other => other.civil(),
            };
            visit(dt, &mut push);
        }
    }
    out.sort_by(|a, b| a.start_ms.cmp(&b.start_ms).then(a.end_ms.cmp(&b.end_ms)));
    out
}

/// Open or not at `now_ms` over sorted `occ` (from [`occurrences`]):
/// overlapping or touching occurrences form one block, so 08:00–12:00 and
/// 12:00–19:00 are open 08:00–19:00 without a flicker at noon.
pub fn status(occ: &[Occurrence], now_ms: i64) -> Status {
    let mut i = 0;
    while i < occ.len() {
        let block_start = occ[i].start_ms;
        let mut block_end = occ[i].end_ms;
        let mut j = i + 1;
        while j < occ.len() && occ[j].start_ms <= block_end {
            block_end = block_end.max(occ[j].end_ms);
            j += 1;
        }
        if block_start > now_ms {
            return Status {
                open: false,
                event: None,
                next_change_ms: Some(block_start),
            };
        }
        if now_ms < block_end {
            let event = occ[i..j]
                .iter()
                .find(|o| o.start_ms <= now_ms && now_ms < o.end_ms)
                .map(|o| o.summary.clone());
            return Status {
                open: true,
                event,
                next_change_ms: Some(block_end),
            };
        }
        i = j;
    }
    Status {
        open: false,
        event: None,
        next_change_ms: None,
    }
}
