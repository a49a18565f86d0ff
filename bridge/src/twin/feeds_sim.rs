//! A twin of the outside data sources the tariff and weather feeds poll:
//! one HTTP/1 server on 127.0.0.1 answering in the sources' documented
//! shapes, with values generated from parameters and the twin's
//! [`Clock`], so "today" is always today (or the simulated today).
//!
//! | path | shape | source it stands for |
//! |---|---|---|
//! | `GET /api/jourTempo/today`, `…/tomorrow`, `…/YYYY-MM-DD` | `{"dateJour", "codeJour", "periode", "libCouleur"}` | api-couleur-tempo.fr |
//! | `GET /api/joursTempo?periode=2024-2025` | an array of those, up to tomorrow | api-couleur-tempo.fr |
//! | `GET /rte/tempo_like_calendars` | `{"tempo_like_calendars": {"start_date", "end_date", "values": […]}}`, the last 7 days to tomorrow, newest first | RTE "Tempo Like Supply Contract" v1 (no OAuth2 here) |
//! | `GET /v1/forecast?latitude=…&longitude=…&forecast_days=N` | Open-Meteo hourly `temperature_2m` (°C), `shortwave_radiation` (W/m²), `timezone=UTC`, from 00:00 UTC today | Open-Meteo |
//! | `GET /spot` | `{"prices": [{"start", "price"}, …], "end"}` hourly €/kWh, today and tomorrow (Paris days) | a day-ahead price list |
//!
//! Colours: [`FeedSimConfig::colours`] per colour day, `default_colour` for
//! the others; tomorrow's colour is served as unknown (`codeJour: 0`)
//! before `tomorrow_published_at` (Paris time; RTE publishes around
//! 10:30–11:00), days after tomorrow always. Weather and spot prices come
//! from [`SyntheticWeather`] and [`SyntheticSpot`], deterministic functions
//! of time that tests can evaluate themselves.
//!
//! [`FeedFault`] makes every answer fail (HTTP 500, malformed JSON, or a
//! stall) until cleared; every request is logged for tests to count.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jiff::Timestamp;
use jiff::civil::{Date, Time};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::feeds::tariff::{TempoColour, europe_paris};
use crate::shutdown::Shutdown;

/// How long a [`FeedFault::Stall`] holds a request (wall time).
const STALL: Duration = Duration::from_secs(60);
const HOUR_MS: i64 = 3_600_000;

/// Ways the sources can misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FeedFault {
    #[default]
    None,
    /// HTTP 500 with a text body.
    HttpError,
    /// HTTP 200 with the JSON cut in half.
    MalformedJson,
    /// No answer for a minute (or until shutdown).
    Stall,
}

/// A synthetic weather: a daily temperature sine and a clear-sky sun.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticWeather {
    /// °C, daily mean.
    pub mean_c: f64,
    /// °C, half the daily swing.
    pub amplitude_c: f64,
    /// UTC hour of the minimum temperature.
    pub coldest_hour_utc: f64,
    /// W/m² at solar noon.
    pub peak_irradiance_w_m2: f64,
    /// UTC hours of sunrise and sunset.
    pub sunrise_hour_utc: f64,
    pub sunset_hour_utc: f64,
}

impl Default for SyntheticWeather {
    /// A clear winter day in Paris.
    fn default() -> Self {
        SyntheticWeather {
            mean_c: 5.0,
            amplitude_c: 4.0,
            coldest_hour_utc: 5.0,
            peak_irradiance_w_m2: 350.0,
            sunrise_hour_utc: 7.5,
            sunset_hour_utc: 16.5,
        }
    }
}

fn hour_of_day_utc(t_ms: i64) -> f64 {
    t_ms.rem_euclid(86_400_000) as f64 / HOUR_MS as f64
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

impl SyntheticWeather {
    /// °C at `t_ms`, to 0.1 °C as Open-Meteo gives it.
    pub fn temperature_c(&self, t_ms: i64) -> f64 {
        let phase = (hour_of_day_utc(t_ms) - self.coldest_hour_utc) / 24.0;
        round_to(
            self.mean_c - self.amplitude_c * (std::f64::consts::TAU * phase).cos(),
            1,
        )
    }

    /// W/m² at `t_ms` (instantaneous clear-sky shape, 0 at night).
    fn irradiance_at(&self, t_ms: i64) -> f64 {
        let h = hour_of_day_utc(t_ms);
        let day = self.sunset_hour_utc - self.sunrise_hour_utc;
        if day <= 0.0 || h <= self.sunrise_hour_utc || h >= self.sunset_hour_utc {
            return 0.0;
        }
        self.peak_irradiance_w_m2 * (std::f64::consts::PI * (h - self.sunrise_hour_utc) / day).sin()
    }

    /// W/m², the mean over the hour ending at `hour_end_ms` (Open-Meteo's
    /// "preceding hour mean"), to 0.1 W/m²; midpoint rule over 6 minutes.
    pub fn irradiance_hour_mean(&self, hour_end_ms: i64) -> f64 {
        let n = 10;
        let sum: f64 = (0..n)
            .map(|i| self.irradiance_at(hour_end_ms - HOUR_MS + (2 * i + 1) * HOUR_MS / (2 * n)))
            .sum();
        round_to(sum / n as f64, 1)
    }
}

/// Synthetic hourly spot prices, €/kWh: cheap nights, dear evenings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticSpot {
    /// €/kWh, daily mean.
    pub mean: f64,
    /// €/kWh, half the daily swing.
    pub amplitude: f64,
}

impl Default for SyntheticSpot {
    fn default() -> Self {
        SyntheticSpot {
            mean: 0.09,
            amplitude: 0.05,
        }
    }
}

impl SyntheticSpot {
    /// €/kWh of the hour starting at `t_ms`, to 0.0001.
    pub fn price(&self, t_ms: i64) -> f64 {
        // Lowest at 04:00 UTC, highest at 16:00 UTC.
        let phase = (hour_of_day_utc(t_ms) - 4.0) / 24.0;
        round_to(
            self.mean - self.amplitude * (std::f64::consts::TAU * phase).cos(),
            4,
        )
    }
}

/// What the sources answer.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedSimConfig {
    /// Colour of a colour day (Paris civil date; the colour holds 06:00 →
    /// 06:00 the next day).
    pub colours: BTreeMap<Date, TempoColour>,
    /// Colour of days not in `colours`; `None` serves them as unknown.
    pub default_colour: Option<TempoColour>,
    /// Paris local time from which tomorrow's colour is known; `None`: always.
    pub tomorrow_published_at: Option<Time>,
    pub weather: SyntheticWeather,
    pub spot: SyntheticSpot,
}

impl Default for FeedSimConfig {
    fn default() -> Self {
        FeedSimConfig {
            colours: BTreeMap::new(),
            default_colour: Some(TempoColour::Blue),
            tomorrow_published_at: Some(Time::constant(11, 0, 0, 0)),
            weather: SyntheticWeather::default(),
            spot: SyntheticSpot::default(),
        }
    }
}

fn code(c: Option<TempoColour>) -> (u8, &'static str) {
    match c {
        None => (0, "Inconnu"),
        Some(TempoColour::Blue) => (1, "Bleu"),
        Some(TempoColour::White) => (2, "Blanc"),
        Some(TempoColour::Red) => (3, "Rouge"),
    }
}

/// `2024-2025` for dates from 2024-09-01 to 2025-08-31 (Tempo years).
fn periode(d: Date) -> String {
    let y = if d.month() >= 9 {
        d.year()
    } else {
        d.year() - 1
    };
    format!("{y}-{}", y + 1)
}

/// The civil date and time in Paris at `t_ms`.
fn paris_now(t_ms: i64) -> Option<jiff::civil::DateTime> {
    Some(europe_paris().to_datetime(Timestamp::from_millisecond(t_ms).ok()?))
}

/// RFC 3339 of a Paris local time.
fn paris_rfc3339(dt: jiff::civil::DateTime) -> String {
    europe_paris()
        .to_zoned(dt)
        .map(|z| z.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// RFC 3339 of local midnight in Paris starting `d`.
fn paris_midnight(d: Date) -> String {
    paris_rfc3339(d.to_datetime(Time::midnight()))
}

fn utc_rfc3339(t_ms: i64) -> String {
    Timestamp::from_millisecond(t_ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

impl FeedSimConfig {
    /// The colour served for `date` at `now_ms` (`None`: unknown).
    pub fn served_colour(&self, date: Date, now_ms: i64) -> Option<TempoColour> {
        let local = paris_now(now_ms)?;
        let today = local.date();
        let tomorrow = today.tomorrow().ok()?;
        if date > tomorrow
            || (date == tomorrow && self.tomorrow_published_at.is_some_and(|t| local.time() < t))
        {
            return None;
        }
        self.colours.get(&date).copied().or(self.default_colour)
    }

    /// api-couleur-tempo.fr's answer for one day.
    pub fn couleur_tempo_day(&self, date: Date, now_ms: i64) -> Value {
        let (code, lib) = code(self.served_colour(date, now_ms));
        json!({"dateJour": date.to_string(), "codeJour": code, "periode": periode(date), "libCouleur": lib})
    }

    /// RTE's calendar: the 7 days before today to tomorrow, known colours
    /// only, newest first.
    pub fn rte_calendar(&self, now_ms: i64) -> Value {
        let Some(today) = paris_now(now_ms).map(|l| l.date()) else {
            return json!({"tempo_like_calendars": {"values": []}});
        };
        let first = today
            .checked_sub(jiff::Span::new().days(7))
            .unwrap_or(today);
        let end = today
            .checked_add(jiff::Span::new().days(2))
            .unwrap_or(today);
        let mut values = Vec::new();
        let mut d = first;
        while d < end {
            let next = d.tomorrow().unwrap_or(d);
            if let Some(c) = self.served_colour(d, now_ms) {
                values.push(json!({
                    "start_date": paris_midnight(d),
                    "end_date": paris_midnight(next),
                    "value": c.to_string().to_uppercase(),
                    "updated_date": d
                        .yesterday()
                        .map(|y| paris_rfc3339(y.at(10, 20, 0, 0)))
                        .unwrap_or_default(),
                }));
            }
            if next == d {
                break;
            }
            d = next;
        }
        values.reverse();
        json!({"tempo_like_calendars": {
            "start_date": paris_midnight(first),
            "end_date": paris_midnight(end),
            "values": values,
        }})
    }

    /// Open-Meteo's answer: `days` × 24 hours from 00:00 UTC today.
    pub fn open_meteo(&self, now_ms: i64, latitude: f64, longitude: f64, days: u32) -> Value {
        let start = now_ms - now_ms.rem_euclid(86_400_000);
        let hours = i64::from(days.clamp(1, 16)) * 24;
        let times: Vec<i64> = (0..hours).map(|h| start + h * HOUR_MS).collect();
        let fmt = |t: i64| {
            Timestamp::from_millisecond(t)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M").to_string())
                .unwrap_or_default()
        };
        json!({
            "latitude": latitude, "longitude": longitude, "generationtime_ms": 0.05,
            "utc_offset_seconds": 0, "timezone": "GMT", "timezone_abbreviation": "GMT", "elevation": 43.0,
            "hourly_units": {"time": "iso8601", "temperature_2m": "°C", "shortwave_radiation": "W/m²"},
            "hourly": {
                "time": times.iter().map(|t| fmt(*t)).collect::<Vec<_>>(),
                "temperature_2m": times.iter().map(|t| self.weather.temperature_c(*t)).collect::<Vec<_>>(),
                "shortwave_radiation": times.iter().map(|t| self.weather.irradiance_hour_mean(*t)).collect::<Vec<_>>(),
            }
        })
    }

    /// Hourly spot prices from 00:00 Paris today to 00:00 the day after
    /// tomorrow.
    pub fn spot_prices(&self, now_ms: i64) -> Value {
        let tz = europe_paris();
        let Some(today) = paris_now(now_ms).map(|l| l.date()) else {
            return json!([]);
        };
        let ms = |d: Date| {
            tz.to_timestamp(d.to_datetime(Time::midnight()))
                .map(|t| t.as_millisecond())
                .ok()
        };
        let (Some(start), Some(end)) = (
            ms(today),
            today
                .checked_add(jiff::Span::new().days(2))
                .ok()
                .and_then(ms),
        ) else {
            return json!([]);
        };
        let prices: Vec<Value> = (start..end)
            .step_by(HOUR_MS as usize)
            .map(|t| json!({"start": utc_rfc3339(t), "price": self.spot.price(t)}))
            .collect();
        json!({"prices": prices, "end": utc_rfc3339(end)})
    }
}

struct Shared {
    clock: Clock,
    config: Mutex<FeedSimConfig>,
    fault: Mutex<FeedFault>,
    log: Mutex<Vec<String>>,
    shutdown: Shutdown,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Resp = Response<Full<Bytes>>;

fn respond(status: u16, content_type: &str, body: String) -> Resp {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

impl Shared {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Resp {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        lock(&self.log).push(if query.is_empty() {
            path.clone()
        } else {
            format!("{path}?{query}")
        });
        let fault = *lock(&self.fault);
        match fault {
            FeedFault::None | FeedFault::MalformedJson => {}
            FeedFault::HttpError => {
                return respond(500, "text/plain", "Internal Server Error".into());
            }
            FeedFault::Stall => {
                let mut shutdown = self.shutdown.clone();
                tokio::select! {
                    _ = tokio::time::sleep(STALL) => {}
                    _ = shutdown.wait() => {}
                }
                return respond(504, "text/plain", String::new());
            }
        }
        if req.method() != Method::GET {
            return respond(405, "text/plain", "Method Not Allowed".into());
        }
        let now = self.clock.now_ms();
        let today = paris_now(now).map(|l| l.date());
        let body = {
            let cfg = lock(&self.config);
            match path.as_str() {
                "/api/jourTempo/today" => today.map(|d| cfg.couleur_tempo_day(d, now)),
                "/api/jourTempo/tomorrow" => today
                    .and_then(|d| d.tomorrow().ok())
                    .map(|d| cfg.couleur_tempo_day(d, now)),
                p if p.starts_with("/api/jourTempo/") => p["/api/jourTempo/".len()..]
                    .parse::<Date>()
                    .ok()
                    .map(|d| cfg.couleur_tempo_day(d, now)),
                "/api/joursTempo" => {
                    let year = query_value(&query, "periode")
                        .and_then(|p| p.split_once('-'))
                        .and_then(|(y, _)| y.parse::<i16>().ok());
                    year.and_then(|y| Date::new(y, 9, 1).ok()).map(|first| {
                        let mut days = Vec::new();
                        let mut d = first;
                        while periode(d) == periode(first)
                            && today
                                .and_then(|t| t.tomorrow().ok())
                                .is_some_and(|t| d <= t)
                        {
                            days.push(cfg.couleur_tempo_day(d, now));
                            match d.tomorrow() {
                                Ok(n) => d = n,
                                Err(_) => break,
                            }
                        }
                        Value::Array(days)
                    })
                }
                "/rte/tempo_like_calendars"
                | "/open_api/tempo_like_supply_contract/v1/tempo_like_calendars" => {
                    Some(cfg.rte_calendar(now))
                }
                "/v1/forecast" => {
                    let num = |k: &str| query_value(&query, k).and_then(|v| v.parse::<f64>().ok());
                    match (num("latitude"), num("longitude")) {
                        (Some(lat), Some(lon)) => {
                            let days = num("forecast_days").map_or(7, |d| d as u32);
                            Some(cfg.open_meteo(now, lat, lon, days))
                        }
                        _ => {
                            return respond(
                                400,
                                "application/json",
                                json!({"error": true, "reason": "Parameter 'latitude' and 'longitude' must be set"}).to_string(),
                            );
                        }
                    }
                }
                "/spot" => Some(cfg.spot_prices(now)),
                _ => return respond(404, "text/plain", "Not Found".into()),
            }
        };
        let Some(body) = body else {
            return respond(400, "text/plain", format!("cannot answer {path}?{query}"));
        };
        let mut text = body.to_string();
        if fault == FeedFault::MalformedJson {
            let cut = text.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.truncate(cut);
        }
        respond(200, "application/json", text)
    }
}

/// The running feed twin.
pub struct FeedSim {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FeedSim {
    /// Binds 127.0.0.1:0 and serves until `shutdown`. Must be called inside
    /// a tokio runtime.
    pub fn spawn(clock: Clock, config: FeedSimConfig, shutdown: Shutdown) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            clock,
            config: Mutex::new(config),
            fault: Mutex::new(FeedFault::None),
            log: Mutex::new(Vec::new()),
            shutdown: shutdown.clone(),
        });
        let task = tokio::spawn(serve(listener, shared.clone(), shutdown));
        Ok(FeedSim { addr, shared, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// For `[tariff] source = "couleur-tempo"`: the API root.
    pub fn couleur_tempo_url(&self) -> String {
        format!("{}/api", self.base_url())
    }

    /// For `[tariff] source = "rte"`.
    pub fn rte_url(&self) -> String {
        format!("{}/rte/tempo_like_calendars", self.base_url())
    }

    /// For `[weather] url`.
    pub fn open_meteo_url(&self) -> String {
        format!("{}/v1/forecast", self.base_url())
    }

    /// For `[tariff] kind = "spot"`.
    pub fn spot_url(&self) -> String {
        format!("{}/spot", self.base_url())
    }

    pub fn config(&self) -> FeedSimConfig {
        lock(&self.shared.config).clone()
    }

    /// Sets (or, with `None`, removes) the colour of one colour day.
    pub fn set_colour(&self, date: Date, colour: Option<TempoColour>) {
        let mut cfg = lock(&self.shared.config);
        match colour {
            Some(c) => cfg.colours.insert(date, c),
            None => cfg.colours.remove(&date),
        };
    }

    pub fn update(&self, f: impl FnOnce(&mut FeedSimConfig)) {
        f(&mut lock(&self.shared.config));
    }

    pub fn set_fault(&self, fault: FeedFault) {
        *lock(&self.shared.fault) = fault;
    }

    /// Every request so far, `path?query`, oldest first.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.log).clone()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: Shutdown) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.wait() => return,
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("twin feeds: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(shared.handle(req).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!("twin feeds: connection from {peer}: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::tariff::{
        PriceModel, parse_couleur_tempo_day, parse_rte_tempo_calendar, parse_spot_prices,
    };
    use crate::feeds::weather::parse_open_meteo;

    fn paris_ms(s: &str) -> i64 {
        europe_paris()
            .to_timestamp(s.parse::<jiff::civil::DateTime>().unwrap())
            .unwrap()
            .as_millisecond()
    }

    fn date(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn payloads_parse_with_the_feed_parsers() {
        let mut cfg = FeedSimConfig::default();
        cfg.colours.insert(date("2024-01-15"), TempoColour::White);
        cfg.colours.insert(date("2024-01-16"), TempoColour::Red);
        let morning = paris_ms("2024-01-15T09:00");
        let noon = paris_ms("2024-01-15T12:00");

        let day = |d, now| {
            parse_couleur_tempo_day("sim", &cfg.couleur_tempo_day(date(d), now).to_string())
                .unwrap()
                .colour
        };
        assert_eq!(day("2024-01-15", morning), Some(TempoColour::White));
        assert_eq!(
            day("2024-01-16", morning),
            None,
            "not published before 11:00"
        );
        assert_eq!(day("2024-01-16", noon), Some(TempoColour::Red));
        assert_eq!(day("2024-01-17", noon), None, "never beyond tomorrow");
        assert_eq!(day("2024-01-10", noon), Some(TempoColour::Blue));

        let rte = parse_rte_tempo_calendar("sim", &cfg.rte_calendar(noon).to_string()).unwrap();
        assert_eq!(rte.len(), 9);
        assert_eq!(rte.last().unwrap().date, date("2024-01-16"));
        assert_eq!(rte.last().unwrap().colour, Some(TempoColour::Red));
        // Across the March change to CEST, offsets follow Paris.
        let spring = cfg.rte_calendar(paris_ms("2024-04-01T12:00")).to_string();
        assert!(
            spring.contains("2024-03-31T00:00:00+01:00")
                && spring.contains("2024-04-01T00:00:00+02:00")
        );
        assert!(parse_rte_tempo_calendar("sim", &spring).is_ok());

        let f = parse_open_meteo("sim", &cfg.open_meteo(noon, 48.86, 2.34, 2).to_string()).unwrap();
        assert_eq!(f.temperature.points().len(), 48);
        let t0 = f.temperature.points()[0].t_ms;
        assert_eq!(t0.rem_euclid(86_400_000), 0);
        assert_eq!(f.temperature.at(t0 + 5 * HOUR_MS), Some(1.0)); // coldest: 5 − 4
        assert_eq!(f.radiation.at(t0 + 2 * HOUR_MS), Some(0.0));
        let noon_sun = f.radiation.at(t0 + 12 * HOUR_MS).unwrap();
        assert!(noon_sun > 300.0 && noon_sun <= 350.0, "{noon_sun}");

        let spot = parse_spot_prices("sim", &cfg.spot_prices(noon).to_string()).unwrap();
        assert_eq!(spot.points().len(), 48);
        assert_eq!(spot.points()[0].0, paris_ms("2024-01-15T00:00"));
        assert_eq!(spot.end_ms(), paris_ms("2024-01-17T00:00"));
        let p = spot.price_at(noon).unwrap();
        assert_eq!(p, cfg.spot.price(noon));
    }
}
