//! Opening hours from an iCalendar (RFC 5545) feed: Google Calendar's
//! "secret address in iCal format", any `.ics` URL or a local file, shown
//! in Home Assistant as `binary_sensor.<id>_open`, on while an event of the
//! calendar (optionally only those whose summary contains `match`) is in
//! progress.
//!
//! - [`ics`]: the payload reader (unfolding, parameters, escapes, times
//!   and zones), errors naming the line.
//! - [`recur`]: RRULE expansion in local time.
//! - [`schedule`]: occurrences with EXDATE/RDATE/RECURRENCE-ID/cancelled
//!   applied, and "open until when".
//!
//! The driver (`[[calendar]]` in the config, keys in [`CalendarConfig`])
//! fetches every `refresh_s` (default 900 s) over HTTP ([`super::fetch`])
//! or HTTPS ([`super::https`], Mozilla's roots plus `ca_file`), or reads
//! `file`.
//! A failed fetch or a payload that does not parse keeps the last good
//! calendar, logs why and shows it in the `last_error` attribute; retries
//! start after `retry_s` and double up to `refresh_s`. The state flips
//! on the bridge's [`Clock`](crate::clock::Clock) at event boundaries, not
//! at the next refresh (as the tariff driver changes HP/HC), so simulated
//! and manual clocks drive it too.
//!
//! `binary_sensor.<id>_open` attributes:
//!
//! | attribute | value |
//! |---|---|
//! | `next_change` | when the state next flips (ISO 8601, UTC), `null` if not within a year |
//! | `event` | summary of the event in progress, `null` when closed |
//! | `source` | the URL's scheme and host (the path, which holds Google's secret token, is cut), or the file |
//! | `last_fetch` | last successful fetch (ISO 8601), `null` before the first |
//! | `last_error` | why the last fetch failed, `null` after a success |
//!
//! Before the first good fetch the state is `unknown`.
//!
//! Why our own parser and expander rather than crates (evaluated 2026-12
//! from crates.io metadata): `rrule` 0.14 (fmeringdal/rust-rrule, last
//! release 2025-04) is built on chrono and chrono-tz, a second date/time
//! stack next to the bridge's jiff, and chrono-tz compiles the whole zone
//! database as Rust code (minutes on the 2-core builders); it also leaves
//! EXDATE/RECURRENCE-ID/all-day handling to the caller. `icalendar` 0.17
//! (hoodie/icalendar, well kept, 2026-10) parses with nom and yields
//! chrono values; its errors do not name the payload line, and its
//! recurrence feature pulls `rrule` and chrono-tz again. `ical` 0.11
//! (2024-03) is little maintained. What opening hours need (unfolding,
//! parameters, escapes, DATE/DATE-TIME/TZID and the common RRULE parts) is
//! some 900 lines here on jiff, whose bundled IANA database
//! (`tzdb-bundle-always`) gives real zones with line-numbered errors.

pub mod ics;
pub mod recur;
pub mod schedule;

use super::FeedError;
use super::fetch::{Backoff, HttpGet, check_url, file_text, sleep_until_or_step};
use super::https::HttpsGet;
use crate::drivers::DriverContext;
use crate::entity::{Component, Device, EntitySpec, entity_id_for, format_number};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;

const DAY_MS: i64 = 86_400_000;
/// How far ahead occurrences are expanded: a calendar closed for longer
/// shows `next_change: null`.
const AHEAD_MS: i64 = 366 * DAY_MS;

/// `[[calendar]]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarConfig {
    /// Device id (`a-z`, `0-9`, `_`, `-`): the entity is
    /// `binary_sensor.<id>_open`.
    pub id: String,
    /// Device name shown in Home Assistant.
    pub name: String,
    /// An http:// or https:// address answering `text/calendar` (RFC
    /// 5545), e.g. Google Calendar's secret iCal address.
    pub url: Option<String>,
    /// https: PEM certificate(s) trusted besides Mozilla's roots (a
    /// private CA).
    pub ca_file: Option<PathBuf>,
    /// Or a local `.ics` file.
    pub file: Option<PathBuf>,
    /// s between fetches (default 900).
    pub refresh_s: Option<f64>,
    /// Only events whose SUMMARY contains this text (case-insensitive)
    /// open; unset: every event.
    #[serde(rename = "match")]
    pub match_text: Option<String>,
    /// Zone of all-day and floating times when the calendar carries no
    /// `X-WR-TIMEZONE` (IANA name, default UTC).
    pub timezone: Option<String>,
    /// s before the first retry after a failure (default 60), doubling up
    /// to `refresh_s`.
    pub retry_s: Option<f64>,
    /// Wall-clock s one HTTP request may take (default 10).
    pub http_timeout_s: Option<f64>,
}

impl CalendarConfig {
    pub fn refresh_s(&self) -> f64 {
        self.refresh_s.unwrap_or(900.0)
    }

    pub fn retry_s(&self) -> f64 {
        self.retry_s.unwrap_or(60.0)
    }

    pub fn http_timeout_s(&self) -> f64 {
        self.http_timeout_s.unwrap_or(10.0)
    }

    /// `binary_sensor.<id>_open`.
    pub fn entity_id(&self) -> String {
        entity_id_for(Component::BinarySensor, &self.id, "open")
    }

    /// The URL or file, as shown in messages and the `source` attribute. A
    /// URL shows its scheme and host only: Google's secret address carries
    /// its access token in the path, and attributes reach HA's history.
    pub fn source(&self) -> String {
        match (&self.url, &self.file) {
            (Some(u), _) => redact_url(u),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => String::new(),
        }
    }

    /// The TLS client for an https:// `url` (reads `ca_file`).
    fn https(&self) -> Result<HttpsGet, String> {
        HttpsGet::new(
            &format!("[[calendar]] `{}`", self.id),
            self.ca_file.as_deref(),
            Duration::from_secs_f64(self.http_timeout_s()),
        )
    }

    fn default_tz(&self) -> Option<jiff::tz::TimeZone> {
        self.timezone.as_deref().and_then(ics::time_zone)
    }

    /// Checks what serde cannot; errors name the calendar and the key
    /// (the id's shape and uniqueness are checked with the other devices').
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("[[calendar]] `{}`", self.id);
        match (&self.url, &self.file) {
            (None, None) => {
                return Err(format!(
                    "{at}: needs `url` (an http:// address of an .ics feed) or `file` (a path to \
                     one)"
                ));
            }
            (Some(_), Some(_)) => return Err(format!("{at}: set `url` or `file`, not both")),
            (Some(url), None) if url.starts_with("https://") => {
                let parsed = url::Url::parse(url).map_err(|e| {
                    format!(
                        "{at} url `{url}` is not a URL ({e}); expected https://host[:port]/path"
                    )
                })?;
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(format!(
                        "{at} url `{url}`: expected https://host[:port]/path"
                    ));
                }
                self.https()?;
            }
            (Some(url), None) => check_url(&format!("{at} url"), url)?,
            (None, Some(_)) => {}
        }
        if self.ca_file.is_some()
            && !self
                .url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
        {
            return Err(format!("{at} ca_file only applies to an https:// url"));
        }
        super::tariff_driver::range(
            &format!("{at} refresh_s"),
            self.refresh_s(),
            1.0,
            604_800.0,
            "s",
        )?;
        super::tariff_driver::range(&format!("{at} retry_s"), self.retry_s(), 0.1, 86_400.0, "s")?;
        super::tariff_driver::range(
            &format!("{at} http_timeout_s"),
            self.http_timeout_s(),
            0.1,
            300.0,
            "s",
        )?;
        if let Some(tz) = &self.timezone
            && ics::time_zone(tz).is_none()
        {
            return Err(format!(
                "{at} timezone `{tz}`: expected an IANA time zone name such as Europe/Paris"
            ));
        }
        if self
            .match_text
            .as_deref()
            .is_some_and(|m| m.trim().is_empty())
        {
            return Err(format!(
                "{at} match: expected some text (or no `match` at all)"
            ));
        }
        if self.name.trim().is_empty() {
            return Err(format!("{at} name: expected a device name"));
        }
        Ok(())
    }
}

/// Parses a payload for the feed `cfg`; the error names the feed, the
/// source and the line.
pub fn parse_feed(cfg: &CalendarConfig, text: &str) -> Result<ics::Calendar, FeedError> {
    ics::parse(text, cfg.default_tz().as_ref()).map_err(|e| {
        FeedError::new(
            &format!("calendar `{}` ({})", cfg.id, cfg.source()),
            &format!("line {}", e.line),
            e.reason,
        )
    })
}

/// Starts the feed. The config must have been validated.
pub fn spawn(cfg: CalendarConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let https = match &cfg.url {
        Some(u) if u.starts_with("https://") => Some(cfg.https().map_err(anyhow::Error::msg)?),
        _ => None,
    };
    let mut feed = CalendarFeed {
        http: HttpGet::new(Duration::from_secs_f64(cfg.http_timeout_s())),
        https,
        entity: cfg.entity_id(),
        cfg,
        ctx: ctx.clone(),
        calendar: None,
        last_fetch: None,
        last_error: None,
    };
    feed.register()?;
    let mut shutdown = ctx.shutdown.clone();
    let clock = ctx.clock;
    Ok(tokio::spawn(async move {
        let refresh_ms = feed.cfg.refresh_s() * 1000.0;
        let mut backoff = Backoff::new(feed.cfg.retry_s() * 1000.0, refresh_ms);
        let mut next_poll = clock.now_ms();
        let mut next_change = i64::MIN;
        let mut published_at = i64::MIN;
        loop {
            let mut changed = false;
            if clock.now_ms() >= next_poll {
                let result = tokio::select! {
                    r = feed.fetch() => r,
                    _ = shutdown.wait() => break,
                };
                let now = clock.now_ms();
                next_poll = match result {
                    Ok(cal) => {
                        backoff.reset();
                        feed.succeeded(cal, now);
                        now + refresh_ms as i64
                    }
                    Err(e) => {
                        let delay = backoff.next_delay_ms();
                        feed.failed(e, delay);
                        now + delay as i64
                    }
                };
                changed = true;
            }
            let now = clock.now_ms();
            // Re-evaluate after a fetch, at a boundary, or if a manual
            // clock was set back.
            if changed || now >= next_change || now < published_at {
                next_change = feed.publish(now).unwrap_or(i64::MAX);
                published_at = now;
            }
            let wake = next_change.min(next_poll).min(now + DAY_MS);
            // A wall clock stepped back (NTP) ends the sleep too, so the
            // `now < published_at` check above runs within a second, not
            // at a boundary computed in the old time.
            tokio::select! {
                _ = sleep_until_or_step(&clock, wake) => {}
                _ = shutdown.wait() => break,
            }
        }
    }))
}

struct CalendarFeed {
    cfg: CalendarConfig,
    ctx: DriverContext,
    http: HttpGet,
    https: Option<HttpsGet>,
    entity: String,
    calendar: Option<ics::Calendar>,
    last_fetch: Option<i64>,
    last_error: Option<String>,
}

impl CalendarFeed {
    fn register(&self) -> anyhow::Result<()> {
        let store = &self.ctx.store;
        store.upsert_device(
            &self.cfg.id,
            Device {
                id: self.cfg.id.clone(),
                name: self.cfg.name.clone(),
                manufacturer: "Hearth".into(),
                model: "iCalendar feed".into(),
                sw_version: None,
                via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
            },
        )?;
        // No device class: HA's `opening` is a door or window.
        store.upsert_entity(
            EntitySpec::new(&self.cfg.id, "open", Component::BinarySensor).named("Open"),
        )?;
        Ok(())
    }

    async fn fetch(&self) -> Result<ics::Calendar, FeedError> {
        let text = match (&self.cfg.url, &self.cfg.file) {
            (Some(url), _) => {
                let expected = "an iCalendar payload (BEGIN:VCALENDAR …)";
                let got = match &self.https {
                    Some(tls) => tls.text(url, expected).await,
                    None => self.http.text(url, expected).await,
                };
                // Errors name the URL: keep its secret path out of logs
                // and the `last_error` attribute.
                got.map_err(|mut e| {
                    let shown = redact_url(url);
                    e.input = e.input.replace(url.as_str(), &shown);
                    e.reason = e.reason.replace(url.as_str(), &shown);
                    e
                })?
            }
            (None, Some(path)) => file_text(path).await?,
            (None, None) => return Err(FeedError::new(&self.cfg.id, "", "no url or file")),
        };
        parse_feed(&self.cfg, &text)
    }

    fn succeeded(&mut self, cal: ics::Calendar, now: i64) {
        if self.last_error.is_some() {
            tracing::info!(
                "calendar `{}`: {} answers again",
                self.cfg.id,
                self.cfg.source()
            );
        }
        self.calendar = Some(cal);
        self.last_fetch = Some(now);
        self.last_error = None;
    }

    fn failed(&mut self, e: FeedError, retry_ms: f64) {
        let keeping = if self.calendar.is_some() {
            "keeping the last good calendar"
        } else {
            "no calendar yet"
        };
        tracing::warn!(
            "calendar `{}`: {e}; {keeping}, retrying in {} s",
            self.cfg.id,
            format_number(retry_ms / 1000.0, 1)
        );
        self.last_error = Some(e.to_string());
    }

    /// Publishes the state as of `now`; returns when it next changes.
    fn publish(&self, now: i64) -> Option<i64> {
        let mut attrs = Map::new();
        let status = self.calendar.as_ref().map(|cal| {
            let occ = schedule::occurrences(
                cal,
                now - DAY_MS,
                now + AHEAD_MS,
                self.cfg.match_text.as_deref(),
            );
            schedule::status(&occ, now)
        });
        let iso = |t: Option<i64>| t.map_or(Value::Null, |t| json!(crate::clock::iso8601(t)));
        attrs.insert(
            "next_change".into(),
            iso(status.as_ref().and_then(|s| s.next_change_ms)),
        );
        attrs.insert(
            "event".into(),
            status
                .as_ref()
                .and_then(|s| s.event.clone())
                .map_or(Value::Null, Value::String),
        );
        attrs.insert("source".into(), json!(self.cfg.source()));
        attrs.insert("last_fetch".into(), iso(self.last_fetch));
        attrs.insert(
            "last_error".into(),
            self.last_error.clone().map_or(Value::Null, Value::String),
        );
        let state = match &status {
            None => "unknown",
            Some(s) if s.open => "on",
            Some(_) => "off",
        };
        if let Err(e) = self.ctx.store.set_state(&self.entity, state, attrs) {
            tracing::warn!(
                "calendar `{}`: cannot set {}: {e}",
                self.cfg.id,
                self.entity
            );
        }
        status.and_then(|s| s.next_change_ms)
    }
}

#[cfg(test)]
mod tests;

/// `https://calendar.google.com/calendar/ical/…/private-…/basic.ics` →
/// `https://calendar.google.com/…`; text that is not a URL is kept.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if u.path().len() > 1 || u.query().is_some() {
                "/…"
            } else {
                "/"
            };
            format!(
                "{}://{}{port}{rest}",
                u.scheme(),
                u.host_str().unwrap_or("")
            )
        }
        Err(_) => url.to_owned(),
    }
}
