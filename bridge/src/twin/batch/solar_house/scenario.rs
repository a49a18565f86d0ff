//! A solar-house scenario (`kind = "solar-house"`, see
//! `examples/scenarios/solar-house-*.toml`): the period, the PV array,
//! the weather, the house's loads, the grid, the Tempo tariff and the
//! controllers' configs.
//!
//! ```toml
//! kind = "solar-house"
//! base = "solar-house.toml"        # optional: a file this one extends (tables merge)
//! name = "solar-house-sunny"
//! start = "2026-06-16T08:00:00+02:00"
//! end = "2026-06-17T08:00:00+02:00"
//! step_s = 60                      # 1–60 s
//! timezone = "Europe/Paris"        # local time of every "HH:MM"
//! forecast_h = 48                  # forecasts reach this far past the end
//! [pv]                             # crate::solar::PvArray (kwp, tilt_deg, azimuth_deg, lat, lon, …)
//! [weather]                        # twin::solar_house::pv::WeatherSpec (cloud, cloud_by_day, forecast_cloud_error, temp_*)
//! [water_heater]                   # twin::solar_house::water_heater::WaterHeaterSpec
//! [washing_machine]                # twin::solar_house::machine::MachineSpec
//! [dishwasher]                     # the same
//! [ev]                             # twin::solar_house::ev::EvSpec
//! [base_load]                      # twin::solar_house::base_load::BaseLoadSpec
//! [grid]
//! import_limit_w = 12000           # the subscribed power (12 kVA)
//! export_price_eur_kwh = 0.04
//! [tariff]                         # Tempo: prices, default_colour, colours (as coworking)
//! [config]                         # plugin config every controller gets
//! [controllers.tariff-optimizer]   # its config over [config]
//! ```

use crate::feeds::tariff::{PriceModel, TempoPeriod, TempoTariff, parse_time_zone};
use crate::solar::PvArray;
use crate::twin::batch::coworking::scenario::{Tempo, merge_common_config};
use crate::twin::batch::scenario::{ControllerSpec, parse_instant};
use crate::twin::solar_house::HouseSpec;
use crate::twin::solar_house::base_load::BaseLoadSpec;
use crate::twin::solar_house::ev::EvSpec;
use crate::twin::solar_house::machine::MachineSpec;
use crate::twin::solar_house::pv::WeatherSpec;
use crate::twin::solar_house::water_heater::WaterHeaterSpec;
use anyhow::{Context, ensure};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const KIND: &str = "solar-house";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    start: String,
    end: String,
    #[serde(default = "sixty")]
    step_s: f64,
    #[serde(default = "paris")]
    timezone: String,
    #[serde(default = "forty_eight")]
    forecast_h: f64,
    #[serde(default)]
    pv: Option<PvArray>,
    #[serde(default)]
    weather: WeatherSpec,
    #[serde(default)]
    water_heater: Option<WaterHeaterSpec>,
    #[serde(default)]
    washing_machine: Option<MachineSpec>,
    #[serde(default)]
    dishwasher: Option<MachineSpec>,
    #[serde(default)]
    ev: Option<EvSpec>,
    #[serde(default)]
    base_load: BaseLoadSpec,
    #[serde(default)]
    grid: Grid,
    #[serde(default)]
    tariff: Tempo,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    controllers: BTreeMap<String, ControllerSpec>,
}

fn sixty() -> f64 {
    60.0
}
fn paris() -> String {
    "Europe/Paris".into()
}
fn forty_eight() -> f64 {
    48.0
}

/// `[grid]`: the meter's contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Grid {
    /// The subscribed power, W: import above it is counted (seconds over).
    pub import_limit_w: f64,
    /// What exported energy earns, €/kWh.
    pub export_price_eur_kwh: f64,
}

impl Default for Grid {
    fn default() -> Self {
        Grid {
            import_limit_w: 12_000.0,
            export_price_eur_kwh: 0.04,
        }
    }
}

pub struct SolarScenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_s: f64,
    pub forecast_h: f64,
    pub house: HouseSpec,
    pub grid: Grid,
    pub tariff: TempoTariff,
    pub controllers: BTreeMap<String, ControllerSpec>,
}

/// Whether the TOML at `path` (with its `base` chain) says `kind = "solar-house"`.
pub fn is_solar_house(path: &Path) -> bool {
    crate::twin::batch::scenario::load_table(path, 0)
        .ok()
        .and_then(|t| t.get("kind").and_then(|k| k.as_str().map(String::from)))
        .is_some_and(|k| k == KIND)
}

impl SolarScenario {
    /// Loads the scenario; `start`/`end` (RFC 3339) override its period.
    pub fn load(path: &Path, start: Option<&str>, end: Option<&str>) -> anyhow::Result<Self> {
        let table = crate::twin::batch::scenario::load_table(path, 0)?;
        let f: File = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
        Self::from_file(f, path, start, end).with_context(|| format!("scenario {}", path.display()))
    }

    fn from_file(
        f: File,
        path: &Path,
        start: Option<&str>,
        end: Option<&str>,
    ) -> anyhow::Result<Self> {
        ensure!(
            f.kind == KIND,
            "`kind` must be \"{KIND}\", got {:?}",
            f.kind
        );
        let start_ms = parse_instant("start", start.unwrap_or(&f.start))?;
        let end_ms = parse_instant("end", end.unwrap_or(&f.end))?;
        ensure!(
            end_ms > start_ms,
            "the end of the simulation must be after its start"
        );
        ensure!(
            f.step_s.is_finite() && (1.0..=60.0).contains(&f.step_s),
            "`step_s` must be 1–60 s, got {}",
            f.step_s
        );
        ensure!(
            f.forecast_h.is_finite() && (24.0..=24.0 * 14.0).contains(&f.forecast_h),
            "`forecast_h` must be 24–336 h, got {}",
            f.forecast_h
        );
        let tz = parse_time_zone(&f.timezone).map_err(|e| anyhow::anyhow!("`timezone`: {e}"))?;
        if let Some(pv) = &f.pv {
            pv.check().map_err(|e| anyhow::anyhow!("`pv.{e}"))?;
        }
        f.weather.check().map_err(anyhow::Error::msg)?;
        if let Some(w) = &f.water_heater {
            w.check().map_err(anyhow::Error::msg)?;
        }
        if let Some(m) = &f.washing_machine {
            m.check("washing_machine").map_err(anyhow::Error::msg)?;
        }
        if let Some(m) = &f.dishwasher {
            m.check("dishwasher").map_err(anyhow::Error::msg)?;
        }
        if let Some(e) = &f.ev {
            e.check().map_err(anyhow::Error::msg)?;
        }
        f.base_load.check().map_err(anyhow::Error::msg)?;
        ensure!(
            f.grid.import_limit_w.is_finite() && f.grid.import_limit_w > 0.0,
            "`grid.import_limit_w` must be > 0 W"
        );
        ensure!(
            f.grid.export_price_eur_kwh.is_finite(),
            "`grid.export_price_eur_kwh` must be a number"
        );
        let tariff = f.tariff.tariff()?;
        let mut controllers = f.controllers;
        merge_common_config(&mut controllers, f.config.as_ref());
        Ok(SolarScenario {
            name: f.name,
            description: f.description,
            file: path.to_path_buf(),
            start_ms,
            end_ms,
            step_s: f.step_s,
            forecast_h: f.forecast_h,
            house: HouseSpec {
                tz,
                pv: f.pv,
                weather: f.weather,
                water_heater: f.water_heater,
                washing_machine: f.washing_machine,
                dishwasher: f.dishwasher,
                ev: f.ev,
                base_load: f.base_load,
            },
            grid: f.grid,
            tariff,
            controllers,
        })
    }

    /// `HP` or `HC` at `t_ms`, as `sensor.tariff_period`.
    pub fn period_at(&self, t_ms: i64) -> &'static str {
        match self.tariff.slot_at(t_ms).map(|s| s.period) {
            Some(TempoPeriod::OffPeak) => "HC",
            _ => "HP",
        }
    }

    /// Import price, €/kWh.
    pub fn price_at(&self, t_ms: i64) -> f64 {
        self.tariff.price_at(t_ms).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/scenarios")
            .join(name)
    }

    #[test]
    fn the_example_scenarios_load_with_the_common_config_merged() {
        for (file, days, offset) in [
            ("solar-house-sunny.toml", 1, 120),
            ("solar-house-cloudy.toml", 1, 120),
            ("solar-house-red-day.toml", 1, 60),
            ("solar-house-week.toml", 7, 120),
        ] {
            let path = example(file);
            assert!(is_solar_house(&path), "{file}");
            let sc = SolarScenario::load(&path, None, None).unwrap();
            assert_eq!(sc.end_ms - sc.start_ms, days * 86_400_000, "{file}");
            let h = &sc.house;
            assert!(
                h.pv.is_some()
                    && h.water_heater.is_some()
                    && h.washing_machine.is_some()
                    && h.dishwasher.is_some()
                    && h.ev.is_some(),
                "{file}"
            );
            assert_eq!(sc.grid.import_limit_w, 12_000.0);
            let names: Vec<&String> = sc.controllers.keys().collect();
            assert_eq!(
                names,
                ["fixed-times", "off-peak-rule", "tariff-optimizer"],
                "{file}"
            );
            for spec in sc.controllers.values() {
                assert_eq!(spec.config["utc_offset_min"], offset, "{file}");
                assert_eq!(spec.config["loads"].as_array().unwrap().len(), 4);
            }
        }
        assert!(!is_solar_house(&example("coworking-day.toml")));
        // Red day: HP at red's price from 06:00, HC from 22:00 local (CET).
        let red = SolarScenario::load(&example("solar-house-red-day.toml"), None, None).unwrap();
        let at = |s: &str| parse_instant("t", s).unwrap();
        assert_eq!(red.period_at(at("2026-01-13T12:00:00+01:00")), "HP");
        assert!((red.price_at(at("2026-01-13T12:00:00+01:00")) - 0.6468).abs() < 1e-9);
        assert_eq!(red.period_at(at("2026-01-13T23:00:00+01:00")), "HC");
    }

    #[test]
    fn a_bad_weather_table_names_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("bad.toml");
        let base = example("solar-house-sunny.toml");
        std::fs::write(
            &f,
            format!(
                "base = {:?}\n[weather]\ncloud = [0.5, 0.5]\n",
                base.display().to_string()
            ),
        )
        .unwrap();
        let e = SolarScenario::load(&f, None, None).err().unwrap();
        assert!(format!("{e:#}").contains("`weather.cloud`"), "{e:#}");
    }
}
