//! A simulation scenario: a house, its weather, its tariff, a period, and
//! the configs of the controllers that may run in it (TOML, see
//! `examples/scenarios/`).
//!
//! ```toml
//! base = "house.toml"              # optional: a file this one extends (tables merge)
//! name = "tempo-red-day"
//! start = "2026-01-15T06:00:00+01:00"   # RFC 3339; metrics count from here
//! end = "2026-01-16T06:00:00+01:00"
//! warmup_h = 96                    # controllers run (and learn) before `start`, unscored
//! step_s = 300                     # plant step and sensor period, s (1–3600)
//! timezone = "Europe/Paris"        # local time of the weather's daily cycle
//!
//! [house]                          # heating, gains, comfort
//! heater_w = 6000.0                # W at 100 % valve (electric: 1 kWh of heat = 1 kWh billed)
//! internal_gains_w = 300.0
//! solar_aperture_m2 = 2.0          # solar gains = global horizontal irradiance × this
//! initial_temperature_c = 20.0
//! comfort_floor_c = 19.0           # for the degree-hour metric
//! [house.zone]                     # ISO 13790 zone, building::ZoneParams names
//! floor_area_m2 = 100.0
//!
//! [weather]                        # synthetic winter days, or kind = "open-meteo", file = "…"
//! kind = "synthetic"
//! mean_c = 3.0
//! amplitude_c = 4.0                # ± around the mean, coldest at `coldest_hour`
//! daily_mean_c = [3.0, 1.0]        # optional: one mean per day from `start` (cycled)
//! seasonal_amplitude_c = 8.0      # optional: a yearly cosine, coldest on `coldest_day` (15)
//!
//! [tariff]                         # kind = "tempo" | "tou" | "spot"
//! kind = "tempo"
//! default_colour = "blue"
//! colours = { "2026-01-15" = "red" }
//!
//! [controllers.thermostat]         # `--controller …/thermostat.wasm` gets this
//! config = { sensor = "sensor.house_temperature", switch = "valve.house_heating", ac_mode = false }
//! limits = { call_timeout_ms = 200 }
//! ```

use crate::feeds::tariff::{
    PriceModel, SpotPrices, TempoColour, TempoConfig, TempoDay, TempoPrices, TempoTariff,
    TouConfig, TouTariff, UnknownColour, parse_spot_prices, parse_time_zone,
};
use crate::feeds::weather::{TimeSeries, parse_open_meteo};
use crate::plugins::Limits;
use crate::twin::building::ZoneParams;
use anyhow::{Context, bail, ensure};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Entity ids of the simulated house, the same as the live house twin's.
pub const ROOM_SENSOR: &str = "sensor.house_temperature";
pub const VALVE: &str = "valve.house_heating";
pub const OUTDOOR_SENSOR: &str = "sensor.house_outdoor_temperature";

/// Longest plant step, s: the 5R1C model's own (ISO 13790 hourly).
pub const MAX_STEP_S: f64 = 3600.0;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    name: String,
    #[serde(default)]
    description: String,
    start: String,
    end: String,
    #[serde(default)]
    warmup_h: f64,
    #[serde(default = "default_step")]
    step_s: f64,
    #[serde(default = "default_tz")]
    timezone: String,
    #[serde(default)]
    house: HouseSpec,
    weather: WeatherSpec,
    tariff: TariffSpec,
    #[serde(default)]
    controllers: BTreeMap<String, ControllerSpec>,
}

fn default_step() -> f64 {
    300.0
}
fn default_tz() -> String {
    "Europe/Paris".into()
}

/// The house: an ISO 13790 zone and its heating.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HouseSpec {
    /// Geometry and envelope (`[house.zone]`, [`ZoneParams`] names).
    pub zone: ZoneParams,
    /// Heater output at 100 % valve, W.
    pub heater_w: f64,
    /// Radiator lag: the output follows the valve with this time constant, s.
    pub emitter_time_constant_s: f64,
    /// People and appliances, W, constant.
    pub internal_gains_w: f64,
    /// Effective solar aperture, m²: gains = global horizontal irradiance ×
    /// this (the glazing's area × g-value × orientation factor, lumped).
    pub solar_aperture_m2: f64,
    /// Air and mass at the start of the warm-up, °C.
    pub initial_temperature_c: f64,
    /// Below this the comfort metric counts degree-hours, °C.
    pub comfort_floor_c: f64,
}

impl Default for HouseSpec {
    fn default() -> Self {
        HouseSpec {
            zone: ZoneParams::default(),
            heater_w: 6000.0,
            emitter_time_constant_s: 0.0,
            internal_gains_w: 300.0,
            solar_aperture_m2: 2.0,
            initial_temperature_c: 20.0,
            comfort_floor_c: 19.0,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum WeatherSpec {
    /// Winter days: a daily cosine around a mean, a sine-bell sun.
    Synthetic {
        #[serde(default = "default_mean")]
        mean_c: f64,
        #[serde(default)]
        daily_mean_c: Vec<f64>,
        #[serde(default = "default_amplitude")]
        amplitude_c: f64,
        /// A yearly cosine under the daily one, coldest on `coldest_day`
        /// (day of the year, 1–366); 0 = none.
        #[serde(default)]
        seasonal_amplitude_c: f64,
        #[serde(default = "default_coldest_day")]
        coldest_day: f64,
        #[serde(default = "default_coldest")]
        coldest_hour: f64,
        #[serde(default = "default_peak")]
        peak_irradiance_w_m2: f64,
        #[serde(default = "default_sunrise")]
        sunrise_hour: f64,
        #[serde(default = "default_sunset")]
        sunset_hour: f64,
    },
    /// A recorded Open-Meteo answer (`hourly.temperature_2m`,
    /// `hourly.shortwave_radiation`) covering the scenario.
    OpenMeteo { file: PathBuf },
}

fn default_mean() -> f64 {
    3.0
}
fn default_amplitude() -> f64 {
    4.0
}
fn default_coldest_day() -> f64 {
    15.0
}
fn default_coldest() -> f64 {
    6.0
}
fn default_peak() -> f64 {
    250.0
}
fn default_sunrise() -> f64 {
    8.5
}
fn default_sunset() -> f64 {
    17.5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum TariffSpec {
    /// EDF Tempo: colours by Tempo day (06:00 → 06:00 Paris), others
    /// `default_colour`.
    Tempo {
        #[serde(default)]
        prices: TempoPrices,
        #[serde(default = "default_colour")]
        default_colour: TempoColour,
        #[serde(default)]
        colours: BTreeMap<String, TempoColour>,
    },
    /// A generic time-of-use schedule (see `feeds::tariff::TouConfig`).
    Tou {
        timezone: String,
        windows: Vec<crate::feeds::tariff::TouWindowConfig>,
        #[serde(default)]
        weekdays: BTreeMap<String, Vec<crate::feeds::tariff::TouWindowConfig>>,
    },
    /// A spot-price list file in the shape `feeds::tariff::parse_spot_prices` reads.
    Spot { file: PathBuf },
}

fn default_colour() -> TempoColour {
    TempoColour::Blue
}

/// One controller's settings in a scenario: its `init` config and sandbox
/// limits; `wasm` is used when `--controller NAME` names no file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerSpec {
    #[serde(default)]
    pub wasm: Option<String>,
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    #[serde(default)]
    pub limits: Limits,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

/// Outdoor conditions at any instant.
pub enum Weather {
    Synthetic {
        tz: TimeZone,
        start_ms: i64,
        mean_c: f64,
        daily_mean_c: Vec<f64>,
        amplitude_c: f64,
        seasonal_amplitude_c: f64,
        coldest_day: f64,
        coldest_hour: f64,
        peak_w_m2: f64,
        sunrise: f64,
        sunset: f64,
    },
    Recorded {
        temperature: TimeSeries,
        radiation: TimeSeries,
    },
}

impl Weather {
    /// Outdoor air temperature, °C (`None` outside a recorded file).
    pub fn temperature_c(&self, t_ms: i64) -> Option<f64> {
        match self {
            Weather::Synthetic {
                tz,
                start_ms,
                mean_c,
                daily_mean_c,
                amplitude_c,
                seasonal_amplitude_c,
                coldest_day,
                coldest_hour,
                ..
            } => {
                let mean = if daily_mean_c.is_empty() {
                    *mean_c
                } else {
                    let day = (t_ms - start_ms).div_euclid(86_400_000).max(0) as usize;
                    daily_mean_c[day % daily_mean_c.len()]
                };
                let h = local_hour(tz, t_ms);
                let phase = std::f64::consts::TAU * (h - coldest_hour) / 24.0;
                let day = (t_ms as f64 / 86_400_000.0).rem_euclid(365.25) + 1.0;
                let season = std::f64::consts::TAU * (day - coldest_day) / 365.25;
                Some(mean - seasonal_amplitude_c * season.cos() - amplitude_c * phase.cos())
            }
            Weather::Recorded { temperature, .. } => temperature.at(t_ms),
        }
    }

    /// Global horizontal irradiance, W/m² (`None` outside a recorded file).
    pub fn irradiance_w_m2(&self, t_ms: i64) -> Option<f64> {
        match self {
            Weather::Synthetic {
                tz,
                peak_w_m2,
                sunrise,
                sunset,
                ..
            } => {
                let h = local_hour(tz, t_ms);
                if h <= *sunrise || h >= *sunset {
                    return Some(0.0);
                }
                let x = std::f64::consts::PI * (h - sunrise) / (sunset - sunrise);
                Some(peak_w_m2 * x.sin())
            }
            Weather::Recorded { radiation, .. } => radiation.at(t_ms),
        }
    }
}

fn local_hour(tz: &TimeZone, t_ms: i64) -> f64 {
    let Ok(ts) = Timestamp::from_millisecond(t_ms) else {
        return 0.0;
    };
    let dt = ts.to_zoned(tz.clone()).datetime();
    dt.hour() as f64 + dt.minute() as f64 / 60.0 + dt.second() as f64 / 3600.0
}

/// A loaded, validated scenario.
pub struct Scenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    /// Scored period, ms since the epoch.
    pub start_ms: i64,
    pub end_ms: i64,
    pub warmup_ms: i64,
    pub step_s: f64,
    pub house: HouseSpec,
    pub weather: Weather,
    pub tariff: Box<dyn PriceModel + Send + Sync>,
    pub controllers: BTreeMap<String, ControllerSpec>,
}

impl Scenario {
    pub fn load(path: &Path) -> anyhow::Result<Scenario> {
        let table = load_table(path, 0)?;
        let file: ScenarioFile = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Scenario::from_file(file, path, dir).with_context(|| format!("scenario {}", path.display()))
    }

    /// A scenario from its text alone: no `base` chain, and data files
    /// (`weather.file`, `tariff.file`) are looked up under a directory that
    /// does not exist. The fuzz target `scenario` feeds it.
    #[doc(hidden)]
    pub fn parse_text(text: &str) -> anyhow::Result<Scenario> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario: {e}"))?;
        let file: ScenarioFile = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario: {e}"))?;
        Scenario::from_file(file, Path::new("scenario.toml"), Path::new("/nonexistent"))
    }

    fn from_file(f: ScenarioFile, path: &Path, dir: &Path) -> anyhow::Result<Scenario> {
        let start_ms = parse_instant("start", &f.start)?;
        let end_ms = parse_instant("end", &f.end)?;
        ensure!(
            end_ms > start_ms,
            "`end` ({}) must be after `start` ({})",
            f.end,
            f.start
        );
        ensure!(
            f.step_s.is_finite() && (1.0..=MAX_STEP_S).contains(&f.step_s),
            "`step_s` must be 1–{MAX_STEP_S} s, got {}",
            f.step_s
        );
        ensure!(
            f.warmup_h.is_finite() && (0.0..=24.0 * 366.0).contains(&f.warmup_h),
            "`warmup_h` must be 0–8784 h, got {}",
            f.warmup_h
        );
        let h = &f.house;
        ensure!(
            h.heater_w.is_finite() && h.heater_w >= 0.0,
            "`house.heater_w` must be ≥ 0 W, got {}",
            h.heater_w
        );
        ensure!(
            h.zone.ach_vent_per_h + h.zone.ach_infl_per_h > 0.0,
            "`house.ach_vent_per_h + ach_infl_per_h` must be > 0"
        );
        let tz = parse_time_zone(&f.timezone).map_err(|e| anyhow::anyhow!("`timezone`: {e}"))?;
        let weather = match f.weather {
            WeatherSpec::Synthetic {
                mean_c,
                daily_mean_c,
                amplitude_c,
                seasonal_amplitude_c,
                coldest_day,
                coldest_hour,
                peak_irradiance_w_m2,
                sunrise_hour,
                sunset_hour,
            } => {
                ensure!(
                    sunrise_hour < sunset_hour,
                    "`weather.sunrise_hour` must be before `sunset_hour`"
                );
                Weather::Synthetic {
                    tz,
                    start_ms,
                    mean_c,
                    daily_mean_c,
                    amplitude_c,
                    seasonal_amplitude_c,
                    coldest_day,
                    coldest_hour,
                    peak_w_m2: peak_irradiance_w_m2.max(0.0),
                    sunrise: sunrise_hour,
                    sunset: sunset_hour,
                }
            }
            WeatherSpec::OpenMeteo { file } => {
                let file = dir.join(file);
                let text = read(&file)?;
                let f = parse_open_meteo(&file.display().to_string(), &text)?;
                Weather::Recorded {
                    temperature: f.temperature,
                    radiation: f.radiation,
                }
            }
        };
        let tariff: Box<dyn PriceModel + Send + Sync> = match f.tariff {
            TariffSpec::Tempo {
                prices,
                default_colour,
                colours,
            } => {
                let unknown_colour = match default_colour {
                    TempoColour::Blue => UnknownColour::Blue,
                    TempoColour::White => UnknownColour::White,
                    TempoColour::Red => UnknownColour::Red,
                };
                let mut t = TempoTariff::new(&TempoConfig {
                    prices,
                    unknown_colour,
                })?;
                let mut days = Vec::new();
                for (date, colour) in colours {
                    let d: Date = date.parse().map_err(|e| {
                        anyhow::anyhow!(
                            "`tariff.colours`: `{date}` is not a date (YYYY-MM-DD): {e}"
                        )
                    })?;
                    days.push(TempoDay {
                        date: d,
                        colour: Some(colour),
                    });
                }
                t.calendar_mut().merge(days);
                Box::new(t)
            }
            TariffSpec::Tou {
                timezone,
                windows,
                weekdays,
            } => Box::new(TouTariff::new(&TouConfig {
                timezone,
                windows,
                weekdays,
            })?),
            TariffSpec::Spot { file } => {
                let file = dir.join(file);
                let text = read(&file)?;
                let s: SpotPrices = parse_spot_prices(&file.display().to_string(), &text)?;
                Box::new(s)
            }
        };
        Ok(Scenario {
            name: f.name,
            description: f.description,
            file: path.to_path_buf(),
            start_ms,
            end_ms,
            warmup_ms: (f.warmup_h * 3_600_000.0) as i64,
            step_s: f.step_s,
            house: f.house,
            weather,
            tariff,
            controllers: f.controllers,
        })
    }

    /// The period to score, overridden by `--start`/`--end`.
    pub fn with_period(mut self, start: Option<&str>, end: Option<&str>) -> anyhow::Result<Self> {
        if let Some(s) = start {
            self.start_ms = parse_instant("--start", s)?;
        }
        if let Some(e) = end {
            self.end_ms = parse_instant("--end", e)?;
        }
        ensure!(
            self.end_ms > self.start_ms,
            "the end of the simulation must be after its start"
        );
        Ok(self)
    }

    /// The price in force, €/kWh (`None` where the tariff does not know).
    pub fn price_at(&self, t_ms: i64) -> Option<f64> {
        self.tariff.price_at(t_ms)
    }
}

/// `2026-01-15T06:00:00+01:00` (or `…Z`) → ms since the epoch.
pub fn parse_instant(what: &str, text: &str) -> anyhow::Result<i64> {
    let ts: Timestamp = text.parse().map_err(|e| {
        anyhow::anyhow!(
            "`{what}`: `{text}` is not an RFC 3339 instant such as 2026-01-15T06:00:00+01:00 ({e})"
        )
    })?;
    Ok(ts.as_millisecond())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// The file's TOML table with its `base` chain merged under it.
pub(crate) fn load_table(path: &Path, depth: usize) -> anyhow::Result<toml::Table> {
    ensure!(
        depth < 8,
        "{}: `base` chain deeper than 8 files",
        path.display()
    );
    let text = read(path)?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
    let Some(base) = table.remove("base") else {
        return Ok(table);
    };
    let Some(base) = base.as_str() else {
        bail!("{}: `base` must be a file name", path.display());
    };
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut merged =
        load_table(&base_path, depth + 1).with_context(|| format!("base of {}", path.display()))?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Deep merge: tables merge key by key, anything else in `over` replaces.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_overlays_tables_key_by_key() {
        let mut base: toml::Table = "a = 1\n[t]\nx = 1\ny = 2\n".parse().unwrap();
        let over: toml::Table = "a = 3\n[t]\ny = 5\n".parse().unwrap();
        merge(&mut base, over);
        assert_eq!(base["a"].as_integer(), Some(3));
        assert_eq!(base["t"]["x"].as_integer(), Some(1));
        assert_eq!(base["t"]["y"].as_integer(), Some(5));
    }

    #[test]
    fn instants_need_an_offset() {
        assert_eq!(
            parse_instant("start", "2026-01-15T06:00:00+01:00").unwrap(),
            parse_instant("start", "2026-01-15T05:00:00Z").unwrap()
        );
        let e = parse_instant("start", "2026-01-15T06:00").unwrap_err();
        assert!(e.to_string().contains("`start`"), "{e}");
    }

    #[test]
    fn synthetic_weather_is_coldest_at_dawn_and_dark_at_night() {
        let tz = TimeZone::UTC;
        let w = Weather::Synthetic {
            tz,
            start_ms: 0,
            mean_c: 3.0,
            daily_mean_c: vec![],
            amplitude_c: 4.0,
            seasonal_amplitude_c: 0.0,
            coldest_day: 15.0,
            coldest_hour: 6.0,
            peak_w_m2: 250.0,
            sunrise: 8.0,
            sunset: 16.0,
        };
        let h = |x: f64| (x * 3_600_000.0) as i64;
        assert!((w.temperature_c(h(6.0)).unwrap() - -1.0).abs() < 1e-9);
        assert!((w.temperature_c(h(18.0)).unwrap() - 7.0).abs() < 1e-9);
        assert_eq!(w.irradiance_w_m2(h(2.0)), Some(0.0));
        assert!((w.irradiance_w_m2(h(12.0)).unwrap() - 250.0).abs() < 1e-9);
    }
}
