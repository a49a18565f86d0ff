//! The tariff feed as a native driver: keeps a [`Tariff`] model up to date
//! from its source, shows it in Home Assistant on a device "Tariff" and
//! publishes the price series plugins read (`forecast("price", …)`).
//!
//! `[tariff]` in the config (see [`TariffConfig`]):
//!
//! - `kind = "tempo"`, `source = "couleur-tempo"`: GETs
//!   `<url>/jourTempo/today` and `<url>/jourTempo/tomorrow` (and
//!   `<url>/jourTempo/YYYY-MM-DD` for the colour day in force when it is
//!   not known yet, i.e. between 00:00 and 06:00 on a first start), as
//!   api-couleur-tempo.fr serves them (<https://www.api-couleur-tempo.fr/api>;
//!   shape in [`parse_couleur_tempo_day`]).
//! - `kind = "tempo"`, `source = "rte"`: GETs `url`, which must answer RTE's
//!   "Tempo Like Supply Contract" calendar JSON ([`parse_rte_tempo_calendar`]).
//!   RTE's own API needs an OAuth2 token, which Hearth does not speak yet:
//!   use a local relay (over https with a private CA: `ca_file`).
//! - `kind = "tou"`: windows and prices from the config ([`TouConfig`]); no
//!   HTTP.
//! - `kind = "spot"`: GETs `url`, or reads `file`, for a spot price list
//!   ([`parse_spot_prices`]).
//!
//! Polling every `poll_interval_s` (default 1 h: RTE publishes tomorrow's
//! colour around 10:30–11:00 Paris time); after a failure, retries after
//! `retry_s`, doubling up to `poll_interval_s`. A failed poll keeps the last
//! good data (colours are merged, never erased), logs the URL and what was
//! expected, and turns `binary_sensor.tariff_problem` on with the error in
//! its `error` attribute until a poll succeeds again.
//!
//! Entities (device `tariff`, "Tariff"):
//!
//! | entity | state |
//! |---|---|
//! | `sensor.tariff_price` | €/kWh in force now (device class `monetary`); attributes `period`, and for Tempo `colour`, `tempo_day`, `assumed` |
//! | `sensor.tariff_period` | `HP` or `HC` (Tempo; time of use: each window's `period`, by default `HC` for the cheapest window of its schedule) |
//! | `sensor.tempo_today` | `blue`, `white`, `red` or `unknown`: the colour day in force (06:00 → 06:00), attribute `date` |
//! | `sensor.tempo_tomorrow` | the same for the next colour day |
//! | `sensor.tariff_next_change` | when the price next changes (RFC 3339, UTC), attribute `price` |
//! | `binary_sensor.tariff_problem` | `on` while the source fails (diagnostic; not for `tou`) |
//!
//! States are re-published at every change point of the model (06:00 and
//! 22:00 Paris for Tempo, window starts, spot price starts), on the
//! bridge's [`Clock`](crate::clock::Clock). The `price` forecast series is
//! re-published at the same moments and after each poll: the model's
//! constant-price segments from 24 h ago to `horizon_h` ahead (default
//! 48 h; a spot list that reaches further is published to its end, up to a
//! week), each sample valid until the next, NaN where the price is not
//! known, and a NaN sample at the end of the horizon. For Tempo, days whose
//! colour is not known are priced with `unknown_colour` ([`UnknownColour`],
//! white by default), as the model does.

use super::FeedError;
use super::fetch::{Backoff, HttpGet, check_url, file_text, sleep_until_or_step};
use super::tariff::{
    PriceModel, SpotPrices, Tariff, TempoColour, TempoConfig, TempoPeriod, TempoPrices,
    TempoTariff, TouConfig, TouTariff, TouWindowConfig, UnknownColour, europe_paris,
    parse_couleur_tempo_day, parse_rte_tempo_calendar, parse_spot_prices,
};
use crate::drivers::DriverContext;
use crate::entity::{Component, Device, EntitySpec, format_number};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The device id of the tariff feed.
pub const DEVICE: &str = "tariff";
/// api-couleur-tempo.fr's API root (https: see [`super::fetch`]).
pub const COULEUR_TEMPO_URL: &str = "https://www.api-couleur-tempo.fr/api";

pub const PRICE_ENTITY: &str = "sensor.tariff_price";
pub const PERIOD_ENTITY: &str = "sensor.tariff_period";
pub const TODAY_ENTITY: &str = "sensor.tempo_today";
pub const TOMORROW_ENTITY: &str = "sensor.tempo_tomorrow";
pub const NEXT_CHANGE_ENTITY: &str = "sensor.tariff_next_change";
pub const PROBLEM_ENTITY: &str = "binary_sensor.tariff_problem";

/// The states of `sensor.tempo_today` / `sensor.tempo_tomorrow`.
pub const COLOUR_OPTIONS: [&str; 4] = ["blue", "white", "red", "unknown"];

const DAY_MS: i64 = 86_400_000;
/// How far back the published series starts (plugins may look back).
const SERIES_PAST_MS: i64 = DAY_MS;
/// A spot list is published to its end, but no further than this.
const SPOT_MAX_AHEAD_MS: i64 = 7 * DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TariffKind {
    Tempo,
    Tou,
    Spot,
}

impl TariffKind {
    fn name(self) -> &'static str {
        match self {
            TariffKind::Tempo => "tempo",
            TariffKind::Tou => "tou",
            TariffKind::Spot => "spot",
        }
    }
}

/// Where Tempo colours come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TempoSource {
    /// api-couleur-tempo.fr's `jourTempo` endpoints.
    #[default]
    CouleurTempo,
    /// A URL answering RTE's `tempo_like_calendars` JSON.
    Rte,
}

/// `[tariff]` in the config file. Which keys apply depends on `kind`;
/// a key of another kind is an error (it is probably a mistake).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffConfig {
    pub kind: TariffKind,
    /// tempo: where colours come from (default `couleur-tempo`).
    pub source: Option<TempoSource>,
    /// tempo/couleur-tempo: the API root (default [`COULEUR_TEMPO_URL`]);
    /// tempo/rte: the calendar URL; spot: the price list URL. http:// or https://.
    pub url: Option<String>,
    /// spot: read the price list from this file instead of `url`.
    pub file: Option<PathBuf>,
    /// s between polls (tempo, spot; default 3600).
    pub poll_interval_s: Option<f64>,
    /// s before the first retry after a failure; doubles up to
    /// `poll_interval_s` (default 60).
    pub retry_s: Option<f64>,
    /// Wall-clock s one HTTP request may take (default 10).
    pub http_timeout_s: Option<f64>,
    /// PEM CA certificate(s) an https:// `url`'s server may chain to,
    /// besides Mozilla's roots (a private CA, a local relay's); tempo and
    /// spot.
    pub ca_file: Option<PathBuf>,
    /// h of price series published ahead of now (default 48).
    pub horizon_h: Option<f64>,
    /// tempo: the six prices, €/kWh ([`TempoPrices`]; unset ones keep
    /// their defaults).
    pub prices: Option<TempoPrices>,
    /// tempo: how days of unknown colour are priced (default `white`).
    pub unknown_colour: Option<UnknownColour>,
    /// tou: the local time zone of the windows.
    pub timezone: Option<String>,
    /// tou: every day's windows `{start = "HH:MM", price = €/kWh,
    /// period = "HP" | "HC"}` (see [`TariffWindow`]).
    pub windows: Option<Vec<TariffWindow>>,
    /// tou: per-weekday schedules replacing `windows` on those days.
    pub weekdays: Option<BTreeMap<String, Vec<TariffWindow>>>,
}

/// `HP` (heures pleines, peak) or `HC` (heures creuses, off-peak).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PeriodLabel {
    #[serde(rename = "HP")]
    Peak,
    #[serde(rename = "HC")]
    OffPeak,
}

/// A time-of-use window in `[tariff]`: [`TouWindowConfig`] plus the label
/// `sensor.tariff_period` shows while it runs. Without `period`, the
/// cheapest window(s) of its list (`windows`, or one weekday's) are `HC`
/// and the others `HP`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TariffWindow {
    /// Local `"HH:MM"`.
    pub start: String,
    /// €/kWh.
    pub price: f64,
    pub period: Option<PeriodLabel>,
}

/// The windows as the price model reads them.
fn tou_windows(list: &[TariffWindow]) -> Vec<TouWindowConfig> {
    list.iter()
        .map(|w| TouWindowConfig {
            start: w.start.clone(),
            price: w.price,
        })
        .collect()
}

/// The same windows "priced" 1 for HC and 0 for HP: a model of the labels
/// that follows the schedule exactly as the prices do (weekdays, windows
/// running on past midnight, DST).
fn label_windows(list: &[TariffWindow]) -> Vec<TouWindowConfig> {
    let cheapest = list.iter().map(|w| w.price).fold(f64::INFINITY, f64::min);
    list.iter()
        .map(|w| {
            let hc = match w.period {
                Some(p) => p == PeriodLabel::OffPeak,
                None => w.price <= cheapest,
            };
            TouWindowConfig {
                start: w.start.clone(),
                price: if hc { 1.0 } else { 0.0 },
            }
        })
        .collect()
}

impl TariffConfig {
    pub fn poll_interval_s(&self) -> f64 {
        self.poll_interval_s.unwrap_or(3600.0)
    }

    pub fn retry_s(&self) -> f64 {
        self.retry_s.unwrap_or(60.0)
    }

    pub fn http_timeout_s(&self) -> f64 {
        self.http_timeout_s.unwrap_or(10.0)
    }

    pub fn horizon_h(&self) -> f64 {
        self.horizon_h.unwrap_or(48.0)
    }

    pub fn source(&self) -> TempoSource {
        self.source.unwrap_or_default()
    }

    /// The URL polled (tempo and spot-from-URL), defaults applied.
    pub fn url(&self) -> Option<String> {
        match (self.kind, &self.url) {
            (_, Some(u)) => Some(u.clone()),
            (TariffKind::Tempo, None) if self.source() == TempoSource::CouleurTempo => {
                Some(COULEUR_TEMPO_URL.into())
            }
            _ => None,
        }
    }

    fn tempo_config(&self) -> TempoConfig {
        TempoConfig {
            prices: self.prices.unwrap_or_default(),
            unknown_colour: self.unknown_colour.unwrap_or_default(),
        }
    }

    fn tou_config(&self, windows: fn(&[TariffWindow]) -> Vec<TouWindowConfig>) -> TouConfig {
        TouConfig {
            timezone: self.timezone.clone().unwrap_or_default(),
            windows: windows(self.windows.as_deref().unwrap_or_default()),
            weekdays: self
                .weekdays
                .iter()
                .flatten()
                .map(|(day, list)| (day.clone(), windows(list)))
                .collect(),
        }
    }

    /// Time of use: when `HC` runs (price 1) and `HP` (price 0).
    fn tou_periods(&self) -> Result<Option<TouTariff>, FeedError> {
        match self.kind {
            TariffKind::Tou => TouTariff::new(&self.tou_config(label_windows)).map(Some),
            _ => Ok(None),
        }
    }

    /// The model before any poll: Tempo with an empty calendar, the
    /// time-of-use schedule, or nothing yet for spot prices.
    pub fn initial_model(&self) -> Result<Option<Tariff>, FeedError> {
        Ok(match self.kind {
            TariffKind::Tempo => Some(Tariff::Tempo(TempoTariff::new(&self.tempo_config())?)),
            TariffKind::Tou => Some(Tariff::TimeOfUse(TouTariff::new(
                &self.tou_config(tou_windows),
            )?)),
            TariffKind::Spot => None,
        })
    }

    /// Checks what serde cannot; errors name the key and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        let kind = self.kind.name();
        let only = |key: &str, set: bool, kinds: &str| -> Result<(), String> {
            if set {
                Err(format!(
                    "[tariff] `{key}` only applies to kind = {kinds} (this one is kind = \"{kind}\")"
                ))
            } else {
                Ok(())
            }
        };
        let not_tempo = self.kind != TariffKind::Tempo;
        only("source", not_tempo && self.source.is_some(), "\"tempo\"")?;
        only("prices", not_tempo && self.prices.is_some(), "\"tempo\"")?;
        only(
            "unknown_colour",
            not_tempo && self.unknown_colour.is_some(),
            "\"tempo\"",
        )?;
        let not_tou = self.kind != TariffKind::Tou;
        only("timezone", not_tou && self.timezone.is_some(), "\"tou\"")?;
        only("windows", not_tou && self.windows.is_some(), "\"tou\"")?;
        only("weekdays", not_tou && self.weekdays.is_some(), "\"tou\"")?;
        only(
            "file",
            self.kind != TariffKind::Spot && self.file.is_some(),
            "\"spot\"",
        )?;
        let tou = self.kind == TariffKind::Tou;
        only("url", tou && self.url.is_some(), "\"tempo\" or \"spot\"")?;
        for (key, set) in [
            ("poll_interval_s", self.poll_interval_s.is_some()),
            ("retry_s", self.retry_s.is_some()),
            ("http_timeout_s", self.http_timeout_s.is_some()),
            ("ca_file", self.ca_file.is_some()),
        ] {
            only(
                key,
                tou && set,
                "\"tempo\" or \"spot\" (tou needs no polling)",
            )?;
        }
        range(
            "[tariff] poll_interval_s",
            self.poll_interval_s(),
            1.0,
            604_800.0,
            "s",
        )?;
        range("[tariff] retry_s", self.retry_s(), 0.1, 86_400.0, "s")?;
        range(
            "[tariff] http_timeout_s",
            self.http_timeout_s(),
            0.1,
            300.0,
            "s",
        )?;
        range("[tariff] horizon_h", self.horizon_h(), 1.0, 168.0, "h")?;
        match self.kind {
            TariffKind::Tempo => {
                if self.source() == TempoSource::Rte && self.url.is_none() {
                    return Err("[tariff] source = \"rte\" needs `url`: an http:// address \
                                answering RTE's tempo_like_calendars JSON"
                        .into());
                }
            }
            TariffKind::Spot => match (&self.url, &self.file) {
                (None, None) => {
                    return Err("[tariff] kind = \"spot\" needs `url` (an http:// address \
                                answering a spot price list) or `file` (a path to one)"
                        .into());
                }
                (Some(_), Some(_)) => {
                    return Err("[tariff] kind = \"spot\": set `url` or `file`, not both".into());
                }
                _ => {}
            },
            TariffKind::Tou => {
                if self.timezone.is_none() || self.windows.is_none() {
                    return Err(
                        "[tariff] kind = \"tou\" needs `timezone` (e.g. \"Europe/Paris\") \
                                and `windows` = [{start = \"HH:MM\", price = €/kWh}, …]"
                            .into(),
                    );
                }
            }
        }
        if let Some(url) = self.url() {
            let key = if self.url.is_some() {
                "[tariff] url".to_string()
            } else {
                "[tariff] url (default for source = \"couleur-tempo\")".to_string()
            };
            check_url(&key, &url)?;
        }
        if let Some(ca) = &self.ca_file {
            HttpGet::with_ca("[tariff]", Some(ca), Duration::from_secs(1))?;
        }
        self.initial_model()
            .and_then(|_| self.tou_periods())
            .map_err(|e| format!("[tariff] {e}"))
            .map(|_| ())
    }
}

/// `value` finite and in `[lo, hi]`, else an error naming `key`.
pub(crate) fn range(key: &str, value: f64, lo: f64, hi: f64, unit: &str) -> Result<(), String> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(format!("{key} must be {lo} to {hi} {unit} (got {value})"))
    }
}

/// Starts the tariff feed. The config must have been validated.
pub fn spawn(cfg: TariffConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    let model = cfg
        .initial_model()
        .map_err(|e| anyhow::anyhow!("[tariff] {e}"))?;
    let mut feed = TariffFeed {
        tou_periods: cfg
            .tou_periods()
            .map_err(|e| anyhow::anyhow!("[tariff] {e}"))?,
        http: HttpGet::with_ca(
            "[tariff]",
            cfg.ca_file.as_deref(),
            Duration::from_secs_f64(cfg.http_timeout_s()),
        )
        .map_err(anyhow::Error::msg)?,
        horizon_ms: (cfg.horizon_h() * 3_600_000.0) as i64,
        cfg,
        ctx: ctx.clone(),
        model,
        failing: false,
    };
    feed.register()?;
    let mut shutdown = ctx.shutdown.clone();
    let clock = ctx.clock;
    Ok(tokio::spawn(async move {
        let polls = feed.cfg.kind != TariffKind::Tou;
        let poll_ms = feed.cfg.poll_interval_s() * 1000.0;
        let mut backoff = Backoff::new(feed.cfg.retry_s() * 1000.0, poll_ms);
        let mut next_poll = if polls { clock.now_ms() } else { i64::MAX };
        loop {
            if clock.now_ms() >= next_poll {
                let result = tokio::select! {
                    r = feed.refresh() => r,
                    _ = shutdown.wait() => break,
                };
                next_poll = match result {
                    Ok(()) => {
                        backoff.reset();
                        feed.succeeded();
                        clock.now_ms() + poll_ms as i64
                    }
                    Err(e) => {
                        let delay = backoff.next_delay_ms();
                        feed.failed(&e, delay);
                        clock.now_ms() + delay as i64
                    }
                };
            }
            let now = clock.now_ms();
            feed.publish(now);
            let wake = feed
                .next_change(now)
                .map_or(next_poll, |t| t.min(next_poll))
                .min(now + DAY_MS);
            tokio::select! {
                _ = sleep_until_or_step(&clock, wake) => {}
                _ = shutdown.wait() => break,
            }
        }
    }))
}

struct TariffFeed {
    cfg: TariffConfig,
    ctx: DriverContext,
    http: HttpGet,
    model: Option<Tariff>,
    horizon_ms: i64,
    /// Time of use: 1 while `HC` runs, 0 while `HP` does.
    tou_periods: Option<TouTariff>,
    failing: bool,
}

fn colour_name(c: Option<TempoColour>) -> String {
    c.map_or_else(|| "unknown".to_string(), |c| c.to_string())
}

fn period_name(p: TempoPeriod) -> &'static str {
    match p {
        TempoPeriod::Peak => "HP",
        TempoPeriod::OffPeak => "HC",
    }
}

impl TariffFeed {
    fn register(&self) -> anyhow::Result<()> {
        let store = &self.ctx.store;
        let model = match self.cfg.kind {
            TariffKind::Tempo => match self.cfg.source() {
                TempoSource::CouleurTempo => "EDF Tempo (api-couleur-tempo.fr)",
                TempoSource::Rte => "EDF Tempo (RTE calendar)",
            },
            TariffKind::Tou => "Time of use",
            TariffKind::Spot => "Spot prices",
        };
        store.upsert_device(
            DEVICE,
            Device {
                id: DEVICE.into(),
                name: "Tariff".into(),
                manufacturer: "Hearth".into(),
                model: model.into(),
                sw_version: None,
                via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
            },
        )?;
        // HA's `monetary` class takes any unit and only the `total` state
        // class, which a price is not: no state class.
        let mut price = EntitySpec::new(DEVICE, "price", Component::Sensor)
            .named("Price")
            .class("monetary");
        price.unit = Some("€/kWh".into());
        let mut specs = vec![price];
        if self.cfg.kind != TariffKind::Spot {
            specs.push(EntitySpec::new(DEVICE, "period", Component::Sensor).named("Period"));
        }
        if self.cfg.kind == TariffKind::Tempo {
            for (key, name, id) in [
                ("tempo_today", "Tempo today", TODAY_ENTITY),
                ("tempo_tomorrow", "Tempo tomorrow", TOMORROW_ENTITY),
            ] {
                let mut spec = EntitySpec::new(DEVICE, key, Component::Sensor).named(name);
                spec.entity_id = id.into();
                specs.push(spec);
            }
        }
        specs.push(
            EntitySpec::new(DEVICE, "next_change", Component::Sensor).named("Next price change"),
        );
        if self.cfg.kind != TariffKind::Tou {
            specs.push(
                EntitySpec::new(DEVICE, "problem", Component::BinarySensor)
                    .named("Feed problem")
                    .class("problem")
                    .diagnostic(),
            );
        }
        for spec in specs {
            store.upsert_entity(spec)?;
        }
        Ok(())
    }

    /// One poll of the source into the model.
    async fn refresh(&mut self) -> Result<(), FeedError> {
        match (self.cfg.kind, self.cfg.source()) {
            (TariffKind::Tempo, TempoSource::CouleurTempo) => self.refresh_couleur_tempo().await,
            (TariffKind::Tempo, TempoSource::Rte) => {
                let url = self.cfg.url().unwrap_or_default();
                let text = self
                    .http
                    .text(
                        &url,
                        "RTE's {\"tempo_like_calendars\": {\"values\": […]}} JSON",
                    )
                    .await?;
                let days = parse_rte_tempo_calendar(&url, &text)?;
                if let Some(Tariff::Tempo(t)) = &mut self.model {
                    t.calendar_mut().merge(days);
                }
                self.forget_old_days();
                Ok(())
            }
            (TariffKind::Spot, _) => {
                let (input, text) = match (&self.cfg.url, &self.cfg.file) {
                    (Some(url), _) => (
                        url.clone(),
                        self.http
                            .text(url, "a spot price list [{\"start\", \"price\"}, …]")
                            .await?,
                    ),
                    (None, Some(path)) => (path.display().to_string(), file_text(path).await?),
                    (None, None) => return Ok(()),
                };
                let prices: SpotPrices = parse_spot_prices(&input, &text)?;
                self.model = Some(Tariff::Spot(prices));
                Ok(())
            }
            (TariffKind::Tou, _) => Ok(()),
        }
    }

    async fn refresh_couleur_tempo(&mut self) -> Result<(), FeedError> {
        let base = self.cfg.url().unwrap_or_default();
        let base = base.trim_end_matches('/');
        let now = self.ctx.clock.now_ms();
        let mut paths = vec![
            "jourTempo/today".to_string(),
            "jourTempo/tomorrow".to_string(),
        ];
        // Before 06:00 the colour in force is yesterday's: ask for it by
        // date if it is not known yet (a start in the night).
        if let Some(Tariff::Tempo(t)) = &self.model
            && let Some(slot) = t.slot_at(now)
            && slot.assumed
        {
            let civil_today = jiff::Timestamp::from_millisecond(now)
                .map(|ts| europe_paris().to_datetime(ts).date())
                .ok();
            if civil_today != Some(slot.tempo_day) {
                paths.push(format!("jourTempo/{}", slot.tempo_day));
            }
        }
        let mut first_error = None;
        for path in paths {
            let url = format!("{base}/{path}");
            let day = async {
                let text = self
                    .http
                    .text(
                        &url,
                        "a JSON object {\"dateJour\": \"YYYY-MM-DD\", \"codeJour\": 0…3}",
                    )
                    .await?;
                parse_couleur_tempo_day(&url, &text)
            }
            .await;
            match day {
                Ok(day) => {
                    if let Some(Tariff::Tempo(t)) = &mut self.model {
                        t.calendar_mut().merge([day]);
                    }
                }
                // Keep what the other endpoints answered.
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        self.forget_old_days();
        first_error.map_or(Ok(()), Err)
    }

    fn forget_old_days(&mut self) {
        let now = self.ctx.clock.now_ms();
        if let Some(Tariff::Tempo(t)) = &mut self.model
            && let Some(slot) = t.slot_at(now - 7 * DAY_MS)
        {
            t.calendar_mut().forget_before(slot.tempo_day);
        }
    }

    fn source_name(&self) -> String {
        match (&self.cfg.url(), &self.cfg.file) {
            (Some(u), _) => u.clone(),
            (None, Some(f)) => f.display().to_string(),
            (None, None) => "the config".into(),
        }
    }

    fn succeeded(&mut self) {
        if self.failing {
            tracing::info!("tariff feed: {} answers again", self.source_name());
        }
        self.failing = false;
        crate::entity::problem::cleared(&self.ctx.store, PROBLEM_ENTITY, self.ctx.clock.now_ms());
    }

    fn failed(&mut self, e: &FeedError, retry_ms: f64) {
        self.failing = true;
        tracing::warn!(
            "tariff feed: {e}; keeping the last good data, retrying in {} s",
            format_number(retry_ms / 1000.0, 1)
        );
        crate::entity::problem::raised(&self.ctx.store, PROBLEM_ENTITY, &e.to_string());
    }

    /// The next instant after `now` when the model's price or period may
    /// change.
    fn next_change(&self, now: i64) -> Option<i64> {
        self.model
            .as_ref()?
            .change_points(now, now + 3 * DAY_MS)
            .into_iter()
            .filter(|t| *t > now)
            .min()
    }

    /// States and the price series as of `now`.
    fn publish(&self, now: i64) {
        let Some(model) = &self.model else {
            return; // spot prices before the first list: nothing known
        };
        let store = &self.ctx.store;
        let price = model.price_at(now);
        let mut attrs = Map::new();
        let period = match model {
            Tariff::Tempo(t) => t.slot_at(now).map(|s| s.period),
            Tariff::TimeOfUse(_) => {
                self.tou_periods
                    .as_ref()
                    .and_then(|l| l.price_at(now))
                    .map(|hc| {
                        if hc > 0.5 {
                            TempoPeriod::OffPeak
                        } else {
                            TempoPeriod::Peak
                        }
                    })
            }
            Tariff::Spot(_) => None,
        };
        if let Some(p) = period {
            attrs.insert("period".into(), json!(period_name(p)));
            let _ = store.set_state(PERIOD_ENTITY, period_name(p), Map::new());
        }
        if let Tariff::Tempo(t) = model
            && let Some(slot) = t.slot_at(now)
        {
            attrs.insert("colour".into(), json!(colour_name(slot.colour)));
            attrs.insert("tempo_day".into(), json!(slot.tempo_day.to_string()));
            attrs.insert("assumed".into(), json!(slot.assumed));
            let options = json!(COLOUR_OPTIONS);
            let mut day = Some(slot.tempo_day);
            for id in [TODAY_ENTITY, TOMORROW_ENTITY] {
                let Some(d) = day else { break };
                let mut a = Map::new();
                a.insert("date".into(), json!(d.to_string()));
                a.insert("options".into(), options.clone());
                let _ = store.set_state(id, colour_name(t.calendar().colour(d)), a);
                day = d.tomorrow().ok();
            }
        }
        let _ = store.set_state(
            PRICE_ENTITY,
            price.map_or_else(|| "unknown".into(), |p| format_number(p, 5)),
            attrs,
        );

        let ahead = match model {
            Tariff::Spot(s) => (s.end_ms() - now)
                .min(SPOT_MAX_AHEAD_MS)
                .max(self.horizon_ms),
            _ => self.horizon_ms,
        };
        let segments = match model.segments(now - SERIES_PAST_MS, now + ahead) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("tariff feed: cannot build the price series: {e}");
                return;
            }
        };
        let (next_state, next_attrs) = match segments
            .iter()
            .position(|s| s.start_ms <= now && now < s.end_ms)
            .and_then(|i| segments.get(i + 1))
        {
            Some(next) => {
                let mut a = Map::new();
                a.insert("price".into(), next.price.map_or(Value::Null, |p| json!(p)));
                (crate::clock::iso8601(next.start_ms), a)
            }
            None => ("unknown".to_string(), Map::new()),
        };
        let _ = store.set_state(NEXT_CHANGE_ENTITY, next_state, next_attrs);
        let mut samples: Vec<(i64, f64)> = segments
            .iter()
            .map(|s| (s.start_ms, s.price.unwrap_or(f64::NAN)))
            .collect();
        if let Some(last) = segments.last() {
            samples.push((last.end_ms, f64::NAN));
        }
        self.ctx.forecasts.publish(crate::forecast::PRICE, samples);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<TariffConfig, String> {
        let c: TariffConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn tempo_config_takes_the_public_https_api_and_price_overrides() {
        cfg("kind = \"tempo\"").expect("the default https:// source is accepted");
        let e = cfg("kind = \"tempo\"\nurl = \"ftp://127.0.0.1/api\"").unwrap_err();
        assert!(
            e.contains("expected an http(s)://host[:port]/path URL"),
            "{e}"
        );
        let c = cfg("kind = \"tempo\"\nurl = \"http://127.0.0.1:9/api\"\n[prices]\nred_hp = 0.8\n")
            .unwrap();
        assert_eq!(c.prices.unwrap().red_hp, 0.8);
        assert_eq!(c.prices.unwrap().blue_hc, TempoPrices::default().blue_hc);
        assert_eq!(c.poll_interval_s(), 3600.0);
        let e = cfg("kind = \"tempo\"\nsource = \"rte\"").unwrap_err();
        assert!(e.contains("source = \"rte\" needs `url`"), "{e}");
        let e =
            cfg("kind = \"tempo\"\nurl = \"http://x/api\"\n[prices]\nred_hp = -1.0\n").unwrap_err();
        assert!(e.contains("`red_hp`: expected a price >= 0 €/kWh"), "{e}");
        assert!(cfg("kind = \"tempo\"\nsource = \"edf\"").is_err());
    }

    #[test]
    fn keys_of_another_kind_are_named() {
        let e = cfg("kind = \"spot\"\nurl = \"http://x/p\"\nwindows = []").unwrap_err();
        assert_eq!(
            e,
            "[tariff] `windows` only applies to kind = \"tou\" (this one is kind = \"spot\")"
        );
        let e = cfg(
            "kind = \"tou\"\ntimezone = \"UTC\"\nwindows = [{start = \"06:00\", price = 0.2}]\npoll_interval_s = 60",
        )
        .unwrap_err();
        assert!(e.contains("`poll_interval_s` only applies"), "{e}");
        let e = cfg("kind = \"tou\"").unwrap_err();
        assert!(e.contains("needs `timezone`"), "{e}");
        let e =
            cfg("kind = \"tou\"\ntimezone = \"UTC\"\nwindows = [{start = \"6h\", price = 0.2}]")
                .unwrap_err();
        assert!(e.contains("`windows[0].start`"), "{e}");
        let e = cfg("kind = \"spot\"").unwrap_err();
        assert!(e.contains("needs `url`"), "{e}");
        let e = cfg("kind = \"spot\"\nfile = \"p.json\"\npoll_interval_s = 0").unwrap_err();
        assert_eq!(e, "[tariff] poll_interval_s must be 1 to 604800 s (got 0)");
    }

    #[test]
    fn time_of_use_periods_follow_labels_or_the_cheapest_window() {
        let c = cfg("kind = \"tou\"\ntimezone = \"UTC\"\n\
                     windows = [{start = \"06:00\", price = 0.2}, {start = \"22:00\", price = 0.15}]\n\
                     [weekdays]\nsunday = [{start = \"00:00\", price = 0.1}]\n\
                     saturday = [{start = \"00:00\", price = 0.1, period = \"HP\"}, {start = \"12:00\", price = 0.3, period = \"HC\"}]")
        .unwrap();
        let p = c.tou_periods().unwrap().unwrap();
        let at = |s: &str| p.price_at(s.parse::<jiff::Timestamp>().unwrap().as_millisecond());
        // 2024-01-15 is a Monday.
        assert_eq!(at("2024-01-15T12:00:00Z"), Some(0.0), "HP");
        assert_eq!(
            at("2024-01-15T23:00:00Z"),
            Some(1.0),
            "the cheaper weekday window is HC"
        );
        assert_eq!(
            at("2024-01-14T12:00:00Z"),
            Some(1.0),
            "Sunday's only window is HC"
        );
        assert_eq!(
            at("2024-01-15T03:00:00Z"),
            Some(1.0),
            "Sunday's runs on to 06:00"
        );
        assert_eq!(at("2024-01-13T10:00:00Z"), Some(0.0), "labelled HP");
        assert_eq!(at("2024-01-13T13:00:00Z"), Some(1.0), "labelled HC");
        assert!(cfg("kind = \"tou\"\ntimezone = \"UTC\"\nwindows = [{start = \"06:00\", price = 0.2, period = \"peak\"}]").is_err());
    }
}
