//! A coworking scenario (`kind = "coworking"`, see
//! `examples/scenarios/coworking-day.toml`): the space, the laptops'
//! arrivals, the Tempo tariff (HP/HC), the opening hours from an `.ics`
//! file next to the scenario, and the strategies' configs.
//!
//! ```toml
//! kind = "coworking"
//! name = "coworking-day"
//! start = "2026-01-13T00:00:00+01:00"
//! end = "2026-01-14T00:00:00+01:00"
//! step_s = 1                      # 1–60 s; the strategies tick every 1 s
//! opening_hours = "coworking-hours.ics"
//! [space]                         # twin::coworking::SpaceSpec
//! [laptops]                       # twin::coworking::arrivals::ArrivalSpec
//! [tariff]                        # Tempo only: prices, default_colour, colours
//! [config]                        # plugin config every strategy gets
//! [controllers.strip-balancer]    # as the house's scenarios (its config over [config])
//! ```

use crate::feeds::calendar::{ics, schedule};
use crate::feeds::tariff::{
    PriceModel, TempoColour, TempoConfig, TempoDay, TempoPeriod, TempoPrices, TempoTariff,
    UnknownColour, parse_time_zone,
};
use crate::twin::batch::scenario::{ControllerSpec, parse_instant};
use crate::twin::coworking::arrivals::ArrivalSpec;
use crate::twin::coworking::{LaptopSpec, SpaceSpec};
use anyhow::{Context, ensure};
use jiff::civil::Date;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Entity ids the space reports, the same the example plugin config reads.
pub const OPEN_SENSOR: &str = "binary_sensor.coworking_open";
pub const PERIOD_SENSOR: &str = "sensor.tariff_period";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    kind: String,
    name: String,
    #[serde(default)]
    description: String,
    start: String,
    end: String,
    #[serde(default = "one")]
    step_s: f64,
    #[serde(default = "paris")]
    timezone: String,
    opening_hours: PathBuf,
    #[serde(default)]
    space: SpaceSpec,
    #[serde(default)]
    laptops: ArrivalSpec,
    #[serde(default)]
    tariff: Tempo,
    /// Plugin config every controller gets, under its own `config`.
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    controllers: BTreeMap<String, ControllerSpec>,
}

fn one() -> f64 {
    1.0
}
fn paris() -> String {
    "Europe/Paris".into()
}

/// `[tariff]`: EDF Tempo (HC 22:00–06:00, HP 06:00–22:00, Paris).
/// Also the solar house's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Tempo {
    prices: Option<TempoPrices>,
    default_colour: Option<TempoColour>,
    colours: BTreeMap<String, TempoColour>,
}

impl Tempo {
    /// The tariff: its prices, days of `colours` known, others `default_colour`.
    pub(crate) fn tariff(self) -> anyhow::Result<TempoTariff> {
        let unknown_colour = match self.default_colour.unwrap_or(TempoColour::Blue) {
            TempoColour::Blue => UnknownColour::Blue,
            TempoColour::White => UnknownColour::White,
            TempoColour::Red => UnknownColour::Red,
        };
        let mut tariff = TempoTariff::new(&TempoConfig {
            prices: self.prices.unwrap_or_default(),
            unknown_colour,
        })?;
        let mut days = Vec::new();
        for (date, colour) in self.colours {
            let d: Date = date.parse().map_err(|e| {
                anyhow::anyhow!("`tariff.colours`: `{date}` is not a date (YYYY-MM-DD): {e}")
            })?;
            days.push(TempoDay {
                date: d,
                colour: Some(colour),
            });
        }
        tariff.calendar_mut().merge(days);
        Ok(tariff)
    }
}

pub struct CoworkingScenario {
    pub name: String,
    pub description: String,
    pub file: PathBuf,
    pub start_ms: i64,
    pub end_ms: i64,
    pub step_s: f64,
    pub space: SpaceSpec,
    pub laptops: Vec<LaptopSpec>,
    pub tariff: TempoTariff,
    /// Opening blocks `[open, close)` overlapping the period, ms.
    pub open_blocks: Vec<(i64, i64)>,
    pub controllers: BTreeMap<String, ControllerSpec>,
}

/// Whether the TOML at `path` (with its `base` chain) says `kind = "coworking"`.
pub fn is_coworking(path: &Path) -> bool {
    crate::twin::batch::scenario::load_table(path, 0)
        .ok()
        .and_then(|t| t.get("kind").and_then(|k| k.as_str().map(String::from)))
        .is_some_and(|k| k == "coworking")
}

impl CoworkingScenario {
    /// Loads the scenario; `start`/`end` (RFC 3339) override its period,
    /// and laptops are drawn for the open blocks of that period.
    pub fn load(path: &Path, start: Option<&str>, end: Option<&str>) -> anyhow::Result<Self> {
        let what = || format!("scenario {}", path.display());
        let table = crate::twin::batch::scenario::load_table(path, 0)?;
        let f: File = table
            .try_into()
            .map_err(|e: toml::de::Error| anyhow::anyhow!("scenario {}: {e}", path.display()))?;
        Self::from_file(f, path, start, end).with_context(what)
    }

    fn from_file(
        f: File,
        path: &Path,
        start: Option<&str>,
        end: Option<&str>,
    ) -> anyhow::Result<Self> {
        ensure!(
            f.kind == "coworking",
            "`kind` must be \"coworking\", got {:?}",
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
        f.space.check().map_err(anyhow::Error::msg)?;
        f.laptops.check().map_err(anyhow::Error::msg)?;
        let tz = parse_time_zone(&f.timezone).map_err(|e| anyhow::anyhow!("`timezone`: {e}"))?;
        let ics_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(&f.opening_hours);
        let text = std::fs::read_to_string(&ics_path)
            .with_context(|| format!("`opening_hours`: reading {}", ics_path.display()))?;
        let cal = ics::parse(&text, Some(&tz)).map_err(|e| {
            anyhow::anyhow!(
                "`opening_hours` {} line {}: {}",
                ics_path.display(),
                e.line,
                e.reason
            )
        })?;
        let day = 86_400_000;
        let occ = schedule::occurrences(&cal, start_ms - day, end_ms + day, None);
        let open_blocks = blocks(&occ, start_ms, end_ms);
        // Laptops come during the scenario's own period, so a shortened
        // `--end` cuts the day rather than drawing another one.
        let full_end = parse_instant("end", &f.end)?;
        let full_start = parse_instant("start", &f.start)?;
        let drawn = f.laptops.draw(&blocks(&occ, full_start, full_end));
        let laptops = drawn
            .into_iter()
            .filter(|l| l.arrive_ms < end_ms && l.leave_ms > start_ms)
            .collect();
        let tariff = f.tariff.tariff()?;
        let mut controllers = f.controllers;
        merge_common_config(&mut controllers, f.config.as_ref());
        Ok(CoworkingScenario {
            name: f.name,
            description: f.description,
            file: path.to_path_buf(),
            start_ms,
            end_ms,
            step_s: f.step_s,
            space: f.space,
            laptops,
            tariff,
            open_blocks,
            controllers,
        })
    }

    /// Whether the space is open at `t_ms`.
    pub fn open_at(&self, t_ms: i64) -> bool {
        self.open_blocks.iter().any(|&(a, b)| a <= t_ms && t_ms < b)
    }

    /// `HP` or `HC` at `t_ms`, as the bridge's `sensor.tariff_period`.
    pub fn period_at(&self, t_ms: i64) -> &'static str {
        match self.tariff.slot_at(t_ms).map(|s| s.period) {
            Some(TempoPeriod::OffPeak) => "HC",
            _ => "HP",
        }
    }

    /// €/kWh at `t_ms`.
    pub fn price_at(&self, t_ms: i64) -> f64 {
        self.tariff.price_at(t_ms).unwrap_or(0.0)
    }
}

/// Each controller's `config` over the scenario's common `[config]`.
pub(crate) fn merge_common_config(
    controllers: &mut BTreeMap<String, ControllerSpec>,
    common: Option<&serde_json::Value>,
) {
    if let Some(common) = common {
        for spec in controllers.values_mut() {
            let mut merged = common.clone();
            merge_json(&mut merged, std::mem::take(&mut spec.config));
            spec.config = merged;
        }
    }
}

/// Objects merge key by key; anything else in `over` replaces.
fn merge_json(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge_json(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Merged open blocks overlapping `[from, to)`.
fn blocks(occ: &[schedule::Occurrence], from: i64, to: i64) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    for o in occ {
        match out.last_mut() {
            Some(last) if o.start_ms <= last.1 => last.1 = last.1.max(o.end_ms),
            _ => out.push((o.start_ms, o.end_ms)),
        }
    }
    out.retain(|&(a, b)| b > from && a < to);
    out
}
