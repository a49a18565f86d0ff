//! The weather feed as a native driver: polls Open-Meteo's forecast API,
//! shows the forecast for "now" in Home Assistant on a device "Weather
//! forecast" and publishes the `outdoor-temperature` and `solar-irradiance`
//! series plugins read through the host's `forecast` import.
//!
//! `[weather]` in the config (see [`WeatherConfig`]). Request, per
//! Open-Meteo's docs (<https://open-meteo.com/en/docs>):
//! `<url>?latitude=…&longitude=…&hourly=temperature_2m,shortwave_radiation,direct_normal_irradiance,diffuse_radiation,wind_speed_10m&wind_speed_unit=ms&timezone=UTC&forecast_days=N`
//! (N = `forecast_days`, default 3 so that now → +48 h is covered whatever
//! the hour). The answer is read by [`parse_open_meteo`]. DNI, DHI and wind
//! feed the PV forecast when `[solar]` has arrays
//! ([`crate::solar::forecast`]: series `pv-power` and entity
//! `sensor.pv_power_forecast`, refreshed with each poll and shown for now
//! every 15 min).
//!
//! Entities (device `weather`):
//!
//! | entity | state |
//! |---|---|
//! | `sensor.weather_outdoor_temperature` | °C at 2 m forecast for now (interpolated between the hourly values; device class `temperature`) |
//! | `sensor.weather_solar_irradiance` | W/m² global horizontal irradiance, the mean forecast for the current hour |
//! | `binary_sensor.weather_problem` | `on` while polls fail, with the error in attribute `error` (diagnostic) |
//!
//! States follow the clock every 15 min (and after each poll); `unknown`
//! outside the forecast or in its gaps. Series: temperature as received
//! (hourly instants, each sample valid until the next), irradiance as
//! hour-long steps starting at each hour (Open-Meteo stamps a preceding-hour
//! mean at the hour's end, see [`super::weather`]); NaN marks gaps and the
//! end. A failed poll keeps the last good forecast, logs the URL and what
//! was expected, and retries after `retry_s`, doubling up to
//! `poll_interval_s`.

use super::FeedError;
use super::fetch::{Backoff, HttpGet, check_url, sleep_until_or_step};
use super::tariff_driver::range;
use super::weather::{OpenMeteoForecast, parse_open_meteo};
use crate::drivers::DriverContext;
use crate::entity::{Component, Device, EntitySpec, format_number};
use crate::forecast::{OUTDOOR_TEMPERATURE, SOLAR_IRRADIANCE};
use crate::solar::PvArray;
use crate::solar::forecast::{PV_ENTITY, PV_SERIES, publish_entity, pv_power_steps};
use serde::Deserialize;
use serde_json::Map;
use std::time::Duration;
use tokio::task::JoinHandle;

/// The device id of the weather feed.
pub const DEVICE: &str = "weather";
/// Open-Meteo's forecast endpoint (https: see [`super::fetch`]).
pub const OPEN_METEO_URL: &str = "https://api.open-meteo.com/v1/forecast";

pub const TEMPERATURE_ENTITY: &str = "sensor.weather_outdoor_temperature";
pub const IRRADIANCE_ENTITY: &str = "sensor.weather_solar_irradiance";
pub const PROBLEM_ENTITY: &str = "binary_sensor.weather_problem";

/// ms between two state updates from the held forecast.
const STATE_EVERY_MS: i64 = 15 * 60_000;

/// `[weather]` in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeatherConfig {
    /// ° north, −90…90.
    pub latitude: f64,
    /// ° east, −180…180.
    pub longitude: f64,
    /// The forecast endpoint (default [`OPEN_METEO_URL`]); http:// or https://.
    pub url: Option<String>,
    /// s between polls (default 3600; Open-Meteo updates hourly at most).
    pub poll_interval_s: Option<f64>,
    /// s before the first retry after a failure (default 60), doubling.
    pub retry_s: Option<f64>,
    /// Wall-clock s one request may take (default 10).
    pub http_timeout_s: Option<f64>,
    /// Days of forecast asked for, 1…16 (default 3).
    pub forecast_days: Option<u32>,
    /// PEM CA certificate(s) an https:// `url`'s server may chain to,
    /// besides Mozilla's roots (a private CA, a local relay's).
    pub ca_file: Option<std::path::PathBuf>,
}

impl WeatherConfig {
    pub fn url(&self) -> String {
        self.url.clone().unwrap_or_else(|| OPEN_METEO_URL.into())
    }

    pub fn poll_interval_s(&self) -> f64 {
        self.poll_interval_s.unwrap_or(3600.0)
    }

    pub fn retry_s(&self) -> f64 {
        self.retry_s.unwrap_or(60.0)
    }

    pub fn http_timeout_s(&self) -> f64 {
        self.http_timeout_s.unwrap_or(10.0)
    }

    pub fn forecast_days(&self) -> u32 {
        self.forecast_days.unwrap_or(3)
    }

    /// The full request URL.
    pub fn request_url(&self) -> String {
        let url = self.url();
        let sep = if url.contains('?') { '&' } else { '?' };
        format!(
            "{url}{sep}latitude={}&longitude={}&hourly=temperature_2m,shortwave_radiation,\
             direct_normal_irradiance,diffuse_radiation,wind_speed_10m&wind_speed_unit=ms\
             &timezone=UTC&forecast_days={}",
            self.latitude,
            self.longitude,
            self.forecast_days()
        )
    }

    /// Checks what serde cannot; errors name the key and what was expected.
    pub fn validate(&self) -> Result<(), String> {
        range("[weather] latitude", self.latitude, -90.0, 90.0, "°")?;
        range("[weather] longitude", self.longitude, -180.0, 180.0, "°")?;
        range(
            "[weather] poll_interval_s",
            self.poll_interval_s(),
            1.0,
            604_800.0,
            "s",
        )?;
        range("[weather] retry_s", self.retry_s(), 0.1, 86_400.0, "s")?;
        range(
            "[weather] http_timeout_s",
            self.http_timeout_s(),
            0.1,
            300.0,
            "s",
        )?;
        let days = self.forecast_days();
        if !(1..=16).contains(&days) {
            return Err(format!(
                "[weather] forecast_days must be 1 to 16 (Open-Meteo's limit; got {days})"
            ));
        }
        let key = if self.url.is_some() {
            "[weather] url"
        } else {
            "[weather] url (default)"
        };
        check_url(key, &self.url())?;
        if let Some(ca) = &self.ca_file {
            HttpGet::with_ca("[weather]", Some(ca), Duration::from_secs(1))?;
        }
        Ok(())
    }
}

/// Starts the weather feed. The config must have been validated.
pub fn spawn(cfg: WeatherConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    spawn_with_pv(cfg, Vec::new(), ctx)
}

/// Starts the weather feed and, when `arrays` is not empty, the PV forecast
/// of their sum (`[solar]`, checked by
/// [`crate::solar::forecast::SolarConfig::validate`]).
pub fn spawn_with_pv(
    cfg: WeatherConfig,
    arrays: Vec<PvArray>,
    ctx: &DriverContext,
) -> anyhow::Result<JoinHandle<()>> {
    register(ctx)?;
    if !arrays.is_empty() {
        crate::solar::forecast::register(&ctx.store)?;
    }
    let mut feed = WeatherFeed {
        http: HttpGet::with_ca(
            "[weather]",
            cfg.ca_file.as_deref(),
            Duration::from_secs_f64(cfg.http_timeout_s()),
        )
        .map_err(anyhow::Error::msg)?,
        url: cfg.request_url(),
        ctx: ctx.clone(),
        forecast: None,
        failing: false,
        arrays,
        pv: Vec::new(),
    };
    let mut shutdown = ctx.shutdown.clone();
    let clock = ctx.clock;
    let poll_ms = cfg.poll_interval_s() * 1000.0;
    let mut backoff = Backoff::new(cfg.retry_s() * 1000.0, poll_ms);
    Ok(tokio::spawn(async move {
        let mut next_poll = clock.now_ms();
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
            feed.publish_states(now);
            let wake = next_poll.min(now + STATE_EVERY_MS);
            // Wakes on a wall-clock step too: after a step back the
            // states of the hour follow at once, not up to
            // `STATE_EVERY_MS` plus the step later.
            tokio::select! {
                _ = sleep_until_or_step(&clock, wake) => {}
                _ = shutdown.wait() => break,
            }
        }
    }))
}

fn register(ctx: &DriverContext) -> anyhow::Result<()> {
    ctx.store.upsert_device(
        DEVICE,
        Device {
            id: DEVICE.into(),
            name: "Weather forecast".into(),
            manufacturer: "Open-Meteo".into(),
            model: "Forecast API (temperature_2m, shortwave_radiation)".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    // HA has an `irradiance` device class (W/m²), but Hearth's discovery
    // table (discovery/units.rs) does not list it yet: a plain measurement.
    let mut irradiance =
        EntitySpec::new(DEVICE, "solar_irradiance", Component::Sensor).named("Solar irradiance");
    irradiance.unit = Some("W/m²".into());
    irradiance.state_class = Some("measurement".into());
    for spec in [
        EntitySpec::new(DEVICE, "outdoor_temperature", Component::Sensor)
            .named("Outdoor temperature")
            .class("temperature")
            .measured("°C", "measurement"),
        irradiance,
        EntitySpec::new(DEVICE, "problem", Component::BinarySensor)
            .named("Feed problem")
            .class("problem")
            .diagnostic(),
    ] {
        ctx.store.upsert_entity(spec)?;
    }
    Ok(())
}

struct WeatherFeed {
    http: HttpGet,
    url: String,
    ctx: DriverContext,
    forecast: Option<OpenMeteoForecast>,
    failing: bool,
    /// PV arrays of `[solar]` (none: no PV forecast).
    arrays: Vec<PvArray>,
    /// The last PV forecast, steps (W).
    pv: Vec<(i64, f64)>,
}

fn nan_for_gaps(samples: Vec<super::Sample>) -> Vec<(i64, f64)> {
    samples
        .into_iter()
        .map(|s| (s.t_ms, s.value.unwrap_or(f64::NAN)))
        .collect()
}

impl WeatherFeed {
    async fn refresh(&mut self) -> Result<(), FeedError> {
        let text = self
            .http
            .text(
                &self.url,
                "Open-Meteo's forecast JSON with hourly temperature_2m and shortwave_radiation",
            )
            .await?;
        let f = parse_open_meteo(&self.url, &text)?;
        let forecasts = &self.ctx.forecasts;
        // Instants as received, each valid until the next; the last one
        // for one more sample spacing, then the series ends.
        let mut temperature = nan_for_gaps(f.temperature.steps());
        if let [.., (a, _), (b, _)] = temperature[..] {
            temperature.push((b + (b - a), f64::NAN));
        } else if let [(t, _)] = temperature[..] {
            temperature.push((t + 3_600_000, f64::NAN));
        }
        forecasts.publish(OUTDOOR_TEMPERATURE, temperature);
        forecasts.publish(SOLAR_IRRADIANCE, nan_for_gaps(f.radiation.steps()));
        if !self.arrays.is_empty() {
            self.pv = pv_power_steps(&self.arrays, &f);
            forecasts.publish(PV_SERIES, self.pv.clone());
        }
        self.forecast = Some(f);
        Ok(())
    }

    fn succeeded(&mut self) {
        if self.failing {
            tracing::info!("weather feed: {} answers again", self.url);
        }
        self.failing = false;
        crate::entity::problem::cleared(&self.ctx.store, PROBLEM_ENTITY, self.ctx.clock.now_ms());
    }

    fn failed(&mut self, e: &FeedError, retry_ms: f64) {
        self.failing = true;
        tracing::warn!(
            "weather feed: {e}; keeping the last good forecast, retrying in {} s",
            format_number(retry_ms / 1000.0, 1)
        );
        crate::entity::problem::raised(&self.ctx.store, PROBLEM_ENTITY, &e.to_string());
    }

    fn publish_states(&self, now: i64) {
        let Some(f) = &self.forecast else { return };
        let store = &self.ctx.store;
        let show = |v: Option<f64>, decimals| {
            v.map_or_else(|| "unknown".into(), |v| format_number(v, decimals))
        };
        let _ = store.set_state(
            TEMPERATURE_ENTITY,
            show(f.temperature.at(now), 1),
            Map::new(),
        );
        let _ = store.set_state(IRRADIANCE_ENTITY, show(f.radiation.at(now), 1), Map::new());
        if !self.arrays.is_empty() {
            publish_entity(store, PV_ENTITY, &self.pv, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Result<WeatherConfig, String> {
        let c: WeatherConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        c.validate().map(|_| c)
    }

    #[test]
    fn weather_config_is_checked_and_builds_the_request() {
        let c = cfg("latitude = 48.86\nlongitude = 2.34\nurl = \"http://127.0.0.1:1/v1/forecast\"")
            .unwrap();
        assert_eq!(
            c.request_url(),
            "http://127.0.0.1:1/v1/forecast?latitude=48.86&longitude=2.34\
             &hourly=temperature_2m,shortwave_radiation,direct_normal_irradiance,\
             diffuse_radiation,wind_speed_10m&wind_speed_unit=ms&timezone=UTC&forecast_days=3"
        );
        let c = cfg("latitude = 48.86\nlongitude = 2.34").expect("the default https:// API");
        assert!(
            c.request_url().starts_with(OPEN_METEO_URL),
            "{}",
            c.request_url()
        );
        let e = cfg("latitude = 91\nlongitude = 2.34\nurl = \"http://x/\"").unwrap_err();
        assert_eq!(e, "[weather] latitude must be -90 to 90 ° (got 91)");
        let e = cfg("latitude = 1\nlongitude = 2\nurl = \"http://x/\"\nforecast_days = 20")
            .unwrap_err();
        assert!(e.contains("forecast_days must be 1 to 16"), "{e}");
        assert!(cfg("latitude = 1").unwrap_err().contains("longitude"));
    }
}
