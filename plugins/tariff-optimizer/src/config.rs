//! The JSON config shared by the optimizer and its comparison strategies
//! (`fixed-times` and `off-peak-rule` accept the same config and ignore
//! the solver's keys). Unknown keys are refused; every refusal names the
//! key and what was expected.
//!
//! Units are in the names: `_w` W, `_wh` Wh, `_s` s, `_h` h, `_c` °C,
//! `_l` litres, `_pct` %, prices €/kWh. Local times are `"HH:MM"` at
//! `utc_offset_min` (see [`crate::time`]: there is no time-zone database
//! in the sandbox).
//!
//! ```json
//! { "step_s": 1800, "horizon_h": 24, "objective": "cost",
//!   "import_limit_w": 12000, "export_limit_w": null, "export_price": 0.04,
//!   "base_load_w": 400, "utc_offset_min": 120, "replan_s": 300, "node_limit": 20000,
//!   "tariff_period": "sensor.tariff_period",
//!   "loads": [ {"id": "water_heater", "kind": "thermal", ...},
//!              {"id": "washing_machine", "kind": "sequence", ...},
//!              {"id": "ev", "kind": "battery", ...} ] }
//! ```

use crate::problem::Objective;
use crate::time::LocalTime;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeSet;

/// The most plan steps a config may make (`horizon_h × 3600 / step_s`):
/// beyond it a model is too large to solve each tick (10 080 steps of a
/// week at 60 s made every tick fault).
pub const MAX_STEPS: usize = 400;

/// The whole config. Defaults are in the field docs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Plan step, s (default 1800; 900 for 15 min). Steps are aligned to
    /// multiples of it since the epoch, so it must divide a day.
    #[serde(default = "d_step_s")]
    pub step_s: u32,
    /// Plan horizon, h (default 24; 24–48 in practice).
    #[serde(default = "d_horizon_h")]
    pub horizon_h: f64,
    /// `cost` (default), `profit` or `self-consumption`.
    #[serde(default)]
    pub objective: Objective,
    /// The contract's subscribed power, W (default 9000).
    #[serde(default = "d_import_limit_w")]
    pub import_limit_w: f64,
    /// Largest export, W (default null: no limit).
    #[serde(default)]
    pub export_limit_w: Option<f64>,
    /// Import price when the host has no `price` series, €/kWh (default
    /// 0.25; a flat price leaves only PV to plan for).
    #[serde(default = "d_import_price")]
    pub import_price: f64,
    /// Export price when the host has no `export-price` series, €/kWh
    /// (default 0.04).
    #[serde(default = "d_export_price")]
    pub export_price: f64,
    /// Base load when the host has no `base-load` series, W (default 400).
    #[serde(default = "d_base_load_w")]
    pub base_load_w: f64,
    /// Local time = UTC + this, minutes (default 0). Fixed: daylight
    /// saving is not followed (no time-zone database in the sandbox).
    #[serde(default)]
    pub utc_offset_min: i32,
    /// Re-plan period, s (default 300); also re-planned when a load's
    /// ready, deadline, plugged or departure entity changes.
    #[serde(default = "d_replan_s")]
    pub replan_s: u32,
    /// A switch whose state differs from the plan is commanded again after
    /// this long, s (default 600); commands are otherwise sent on change
    /// only.
    #[serde(default = "d_reassert_s")]
    pub reassert_s: u32,
    /// Branch-and-bound node limit of the MILP (default 20000).
    #[serde(default = "d_node_limit")]
    pub node_limit: u64,
    /// The tariff period entity, `HP`/`HC` (default
    /// `sensor.tariff_period`); read by `off-peak-rule`.
    #[serde(default = "d_tariff_period")]
    pub tariff_period: String,
    /// Publish the solved Problem (JSON) in `optim_status`'s `problem`
    /// attribute (default false; a few kB).
    #[serde(default)]
    pub expose_problem: bool,
    /// The planned loads; load N is published as `p_deferrable<N>`.
    pub loads: Vec<LoadConfig>,
}

fn d_step_s() -> u32 {
    1800
}
fn d_horizon_h() -> f64 {
    24.0
}
fn d_import_limit_w() -> f64 {
    9000.0
}
fn d_import_price() -> f64 {
    0.25
}
fn d_export_price() -> f64 {
    0.04
}
fn d_base_load_w() -> f64 {
    400.0
}
fn d_replan_s() -> u32 {
    300
}
fn d_reassert_s() -> u32 {
    600
}
fn d_node_limit() -> u64 {
    20_000
}
fn d_tariff_period() -> String {
    "sensor.tariff_period".into()
}

/// One load, by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LoadConfig {
    Thermal(ThermalConfig),
    Sequence(SequenceConfig),
    Battery(BatteryConfig),
    Deferrable(DeferrableConfig),
}

/// A storage water heater on a relay (its own thermostat stays in charge
/// of `max_c`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    pub id: String,
    /// Its relay (contactor or smart plug), `on`/`off`.
    pub switch: String,
    /// Its power sensor, W (optional; informative).
    #[serde(default)]
    pub power: Option<String>,
    /// The element's power, W.
    pub nominal_w: f64,
    /// Tank temperature sensor, °C (fully mixed).
    pub temperature: String,
    pub volume_l: f64,
    /// Standing loss, W/K (default 1.8).
    #[serde(default = "d_loss")]
    pub loss_w_per_k: f64,
    /// Air around the tank, °C (default 18).
    #[serde(default = "d_ambient")]
    pub ambient_c: f64,
    /// Its thermostat's setpoint, °C (default 65).
    #[serde(default = "d_max_c")]
    pub max_c: f64,
    /// Daily: at least `min_c` at `at` (local).
    #[serde(default)]
    pub ready: Vec<ReadyAt>,
    /// Daily expected hot-water draws: heat `wh` taken at `at` (local).
    #[serde(default)]
    pub draws: Vec<DrawAt>,
    /// Fixed-times baseline: enabled inside these daily local windows
    /// (default `[["00:00","24:00"]]`: always).
    #[serde(default = "d_fixed_on")]
    pub fixed_on: Vec<[LocalTime; 2]>,
}

fn d_loss() -> f64 {
    1.8
}
fn d_ambient() -> f64 {
    18.0
}
fn d_max_c() -> f64 {
    65.0
}
fn d_fixed_on() -> Vec<[LocalTime; 2]> {
    vec![[LocalTime(0), LocalTime(1440)]]
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadyAt {
    pub at: LocalTime,
    pub min_c: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrawAt {
    pub at: LocalTime,
    pub wh: f64,
}

/// A machine with a programme (washing machine, dishwasher) behind a smart
/// plug: loaded and waiting while its plug is off, runs once started.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceConfig {
    pub id: String,
    pub switch: String,
    /// Its power sensor, W: a machine drawing power with its relay on is
    /// running (optional).
    #[serde(default)]
    pub power: Option<String>,
    /// `binary_sensor`: on = loaded and waiting, or running.
    pub ready: String,
    /// `sensor`, RFC 3339 "done by" (optional; none or unavailable: by the
    /// end of the horizon).
    #[serde(default)]
    pub deadline: Option<String>,
    /// Mean power of each `profile_step_s` of the programme, W.
    pub profile_w: Vec<f64>,
    /// Default 900.
    #[serde(default = "d_profile_step_s")]
    pub profile_step_s: u32,
    /// Fixed-times baseline: started at this local time if loaded by then.
    #[serde(default)]
    pub fixed_start: Option<LocalTime>,
}

fn d_profile_step_s() -> u32 {
    900
}

/// A battery behind a relay (an EV on a plug-switched charger).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatteryConfig {
    pub id: String,
    pub switch: String,
    #[serde(default)]
    pub power: Option<String>,
    /// State of charge sensor, %.
    pub soc: String,
    /// `binary_sensor`: on = plugged in.
    pub plugged: String,
    /// `sensor`, RFC 3339 departure (optional; none or unavailable: by the
    /// end of the horizon).
    #[serde(default)]
    pub deadline: Option<String>,
    pub capacity_wh: f64,
    /// Charging power, W (on/off).
    pub max_w: f64,
    /// Default 80.
    #[serde(default = "d_target")]
    pub target_pct: f64,
    /// Grid to battery (default 0.9).
    #[serde(default = "d_eff")]
    pub efficiency: f64,
    /// Fixed-times baseline: charging starts at this local time if plugged
    /// by then.
    #[serde(default)]
    pub fixed_start: Option<LocalTime>,
}

fn d_target() -> f64 {
    80.0
}
fn d_eff() -> f64 {
    0.9
}

/// Any load on a smart plug that needs so much energy (or so many hours)
/// inside a daily window (a pool pump, a dehumidifier): EMHASS's
/// deferrable load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeferrableConfig {
    pub id: String,
    pub switch: String,
    /// Its power sensor, W (optional): energy delivered is counted from it
    /// while the relay is on, else at `nominal_w`.
    #[serde(default)]
    pub power: Option<String>,
    pub nominal_w: f64,
    /// Energy per daily window, Wh (or `hours` at `nominal_w`; one of the
    /// two).
    #[serde(default)]
    pub energy_wh: Option<f64>,
    #[serde(default)]
    pub hours: Option<f64>,
    /// Daily window, local (default `00:00`–`24:00`; `to` before `from`
    /// wraps midnight).
    #[serde(default = "d_from")]
    pub from: LocalTime,
    #[serde(default = "d_to")]
    pub to: LocalTime,
    /// On/off at `nominal_w` (default true: a relay), or any power up to it.
    #[serde(default = "d_true")]
    pub semi_continuous: bool,
    /// One run per window, never split (default false).
    #[serde(default)]
    pub single_start: bool,
    /// Shortest run and pause, s (rounded up to steps; default 0).
    #[serde(default)]
    pub min_on_s: u32,
    #[serde(default)]
    pub min_off_s: u32,
    /// Most starts in the horizon (default none).
    #[serde(default)]
    pub max_starts: Option<u32>,
    /// Fixed-times baseline: on from this local time in its window until
    /// its energy is delivered (default: from the window's start).
    #[serde(default)]
    pub fixed_start: Option<LocalTime>,
}

fn d_from() -> LocalTime {
    LocalTime(0)
}
fn d_to() -> LocalTime {
    LocalTime(1440)
}
fn d_true() -> bool {
    true
}

impl DeferrableConfig {
    /// Energy per window, Wh.
    pub fn energy(&self) -> f64 {
        self.energy_wh
            .unwrap_or_else(|| self.hours.unwrap_or(0.0) * self.nominal_w)
    }

    /// Length of the window, minutes (`from == to`: a whole day).
    pub fn window_min(&self) -> u32 {
        match (self.to.0 as i64 - self.from.0 as i64).rem_euclid(1440) {
            0 => 1440,
            m => m as u32,
        }
    }

    /// The window `now_ms` is in, else the next one: (start, end), ms.
    pub fn window(&self, now_ms: i64, utc_offset_min: i32) -> (i64, i64) {
        let len = self.window_min() as i64 * 60_000;
        let start = self.from.last_at_or_before(now_ms, utc_offset_min);
        if now_ms < start + len {
            (start, start + len)
        } else {
            let next = self.from.first_at_or_after(now_ms, utc_offset_min);
            (next, next + len)
        }
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl LoadConfig {
    pub fn id(&self) -> &str {
        match self {
            LoadConfig::Thermal(t) => &t.id,
            LoadConfig::Sequence(s) => &s.id,
            LoadConfig::Battery(b) => &b.id,
            LoadConfig::Deferrable(d) => &d.id,
        }
    }

    pub fn switch(&self) -> &str {
        match self {
            LoadConfig::Thermal(t) => &t.switch,
            LoadConfig::Sequence(s) => &s.switch,
            LoadConfig::Battery(b) => &b.switch,
            LoadConfig::Deferrable(d) => &d.switch,
        }
    }

    /// Every entity it reads.
    pub fn reads(&self) -> Vec<String> {
        let mut v = vec![self.switch().to_string()];
        match self {
            LoadConfig::Thermal(t) => {
                v.extend(t.power.clone());
                v.push(t.temperature.clone());
            }
            LoadConfig::Sequence(s) => {
                v.extend(s.power.clone());
                v.push(s.ready.clone());
                v.extend(s.deadline.clone());
            }
            LoadConfig::Battery(b) => {
                v.extend(b.power.clone());
                v.push(b.soc.clone());
                v.push(b.plugged.clone());
                v.extend(b.deadline.clone());
            }
            LoadConfig::Deferrable(d) => v.extend(d.power.clone()),
        }
        v
    }

    /// Entities whose change calls for a re-plan now (a machine loaded, a
    /// deadline moved, an EV plugged).
    pub fn triggers(&self) -> Vec<&str> {
        match self {
            LoadConfig::Thermal(_) | LoadConfig::Deferrable(_) => vec![],
            LoadConfig::Sequence(s) => std::iter::once(s.ready.as_str())
                .chain(s.deadline.as_deref())
                .collect(),
            LoadConfig::Battery(b) => std::iter::once(b.plugged.as_str())
                .chain(b.deadline.as_deref())
                .collect(),
        }
    }
}

/// One load by its `kind`, errors prefixed with `loads[i]`.
fn parse_load(i: usize, mut v: serde_json::Value) -> Result<LoadConfig, String> {
    fn inner<T: serde::de::DeserializeOwned>(i: usize, v: serde_json::Value) -> Result<T, String> {
        hearth_plugin_sdk::parse_config(v).map_err(|e| {
            let e = e.strip_prefix("config: ").unwrap_or(&e);
            match e.strip_prefix('`') {
                Some(rest) => format!("config: `loads[{i}].{rest}"),
                None => format!("config: `loads[{i}]`: {e}"),
            }
        })
    }
    let kind = match v.as_object_mut().map(|o| o.remove("kind")) {
        None => {
            return Err(format!(
                "config: `loads[{i}]`: expected an object with a `kind`, got {v}"
            ));
        }
        Some(k) => k,
    };
    match kind.as_ref().and_then(|k| k.as_str()) {
        Some("thermal") => inner(i, v).map(LoadConfig::Thermal),
        Some("sequence") => inner(i, v).map(LoadConfig::Sequence),
        Some("battery") => inner(i, v).map(LoadConfig::Battery),
        Some("deferrable") => inner(i, v).map(LoadConfig::Deferrable),
        _ => Err(format!(
            "config: `loads[{i}].kind`: expected `thermal`, `sequence`, `battery` or `deferrable`, got {}",
            kind.map_or("nothing".to_string(), |k| k.to_string())
        )),
    }
}

fn entity(key: &str, v: &str) -> Result<(), String> {
    match v.split_once('.') {
        Some((d, o)) if !d.is_empty() && !o.is_empty() && !v.contains(char::is_whitespace) => {
            Ok(())
        }
        _ => Err(format!(
            "config: `{key}`: expected an entity id `domain.object_id`, got {v:?}"
        )),
    }
}

fn positive(key: &str, v: f64, unit: &str) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!(
            "config: `{key}`: expected a number > 0 {unit}, got {v}"
        ))
    }
}

fn finite(key: &str, v: f64, unit: &str) -> Result<(), String> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(format!(
            "config: `{key}`: expected a number ({unit}), got {v}"
        ))
    }
}

impl Config {
    /// Parses and checks (see [`Config::check`]). Each load is parsed on
    /// its own by `kind`, so an error inside one names its full path
    /// (`loads[0].ready[1].at`), which serde's tagged enums lose.
    pub fn parse(mut value: serde_json::Value) -> Result<Config, String> {
        let loads = value.as_object_mut().and_then(|o| o.remove("loads"));
        let c = match loads {
            Some(serde_json::Value::Array(items)) => {
                value["loads"] = serde_json::Value::Array(Vec::new());
                let mut c: Config = hearth_plugin_sdk::parse_config(value)?;
                c.loads = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| parse_load(i, v))
                    .collect::<Result<_, _>>()?;
                c
            }
            other => {
                if let (Some(o), Some(m)) = (other, value.as_object_mut()) {
                    m.insert("loads".into(), o);
                }
                hearth_plugin_sdk::parse_config(value)?
            }
        };
        c.check()?;
        Ok(c)
    }

    /// Plan steps in the horizon (at most [`MAX_STEPS`]).
    pub fn steps(&self) -> usize {
        (self.horizon_h * 3600.0 / self.step_s as f64).round() as usize
    }

    /// The first inconsistency, naming its key and what was expected.
    pub fn check(&self) -> Result<(), String> {
        if !(60..=86_400).contains(&self.step_s) || 86_400 % self.step_s != 0 {
            return Err(format!(
                "config: `step_s`: expected a divisor of a day between 60 and 86400 s (900, 1800, 3600 …), got {}",
                self.step_s
            ));
        }
        let steps = self.horizon_h * 3600.0 / self.step_s as f64;
        if !(self.horizon_h.is_finite() && self.horizon_h > 0.0 && self.horizon_h <= 168.0)
            || (steps - steps.round()).abs() > 1e-9
            || steps.round() < 1.0
        {
            return Err(format!(
                "config: `horizon_h`: expected a whole number of steps of {} s, at most 168 h, got {}",
                self.step_s, self.horizon_h
            ));
        }
        if self.steps() > MAX_STEPS {
            return Err(format!(
                "config: `horizon_h`: {} h of {} s steps is {} plan steps, at most {MAX_STEPS}: use longer steps or a shorter horizon",
                self.horizon_h,
                self.step_s,
                self.steps()
            ));
        }
        positive("import_limit_w", self.import_limit_w, "W")?;
        if let Some(e) = self.export_limit_w
            && !(e.is_finite() && e >= 0.0)
        {
            return Err(format!(
                "config: `export_limit_w`: expected null or a number >= 0 W, got {e}"
            ));
        }
        finite("import_price", self.import_price, "€/kWh")?;
        finite("export_price", self.export_price, "€/kWh")?;
        if !(self.base_load_w.is_finite() && self.base_load_w >= 0.0) {
            return Err(format!(
                "config: `base_load_w`: expected a number >= 0 W, got {}",
                self.base_load_w
            ));
        }
        if !(-720..=840).contains(&self.utc_offset_min) {
            return Err(format!(
                "config: `utc_offset_min`: expected minutes east of UTC in -720..=840, got {}",
                self.utc_offset_min
            ));
        }
        if !(10..=86_400).contains(&self.replan_s) {
            return Err(format!(
                "config: `replan_s`: expected 10 to 86400 s, got {}",
                self.replan_s
            ));
        }
        if self.reassert_s < 10 {
            return Err(format!(
                "config: `reassert_s`: expected at least 10 s, got {}",
                self.reassert_s
            ));
        }
        if self.node_limit == 0 {
            return Err("config: `node_limit`: expected at least 1 node, got 0".into());
        }
        entity("tariff_period", &self.tariff_period)?;
        if self.loads.is_empty() {
            return Err("config: `loads`: expected at least one load".into());
        }
        let mut ids = BTreeSet::new();
        let mut switches = BTreeSet::new();
        for (i, l) in self.loads.iter().enumerate() {
            let k = |f: &str| format!("loads[{i}].{f}");
            let id = l.id();
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "config: `{}`: expected a non-empty id of letters, digits and `_`, got {id:?}",
                    k("id")
                ));
            }
            if !ids.insert(id) {
                return Err(format!(
                    "config: `{}`: load id {id:?} is used twice",
                    k("id")
                ));
            }
            entity(&k("switch"), l.switch())?;
            if !switches.insert(l.switch()) {
                return Err(format!(
                    "config: `{}`: switch {:?} drives two loads",
                    k("switch"),
                    l.switch()
                ));
            }
            match l {
                LoadConfig::Thermal(t) => {
                    if let Some(p) = &t.power {
                        entity(&k("power"), p)?;
                    }
                    entity(&k("temperature"), &t.temperature)?;
                    positive(&k("nominal_w"), t.nominal_w, "W")?;
                    positive(&k("volume_l"), t.volume_l, "l")?;
                    if !(t.loss_w_per_k.is_finite() && t.loss_w_per_k >= 0.0) {
                        return Err(format!(
                            "config: `{}`: expected a number >= 0 W/K, got {}",
                            k("loss_w_per_k"),
                            t.loss_w_per_k
                        ));
                    }
                    finite(&k("ambient_c"), t.ambient_c, "°C")?;
                    finite(&k("max_c"), t.max_c, "°C")?;
                    for (j, r) in t.ready.iter().enumerate() {
                        if r.at.0 >= 1440 {
                            return Err(format!(
                                "config: `{}`: expected a time of day before 24:00",
                                k(&format!("ready[{j}].at"))
                            ));
                        }
                        if !(r.min_c.is_finite() && r.min_c <= t.max_c) {
                            return Err(format!(
                                "config: `{}`: expected at most max_c ({} °C), got {}",
                                k(&format!("ready[{j}].min_c")),
                                t.max_c,
                                r.min_c
                            ));
                        }
                    }
                    for (j, d) in t.draws.iter().enumerate() {
                        if d.at.0 >= 1440 {
                            return Err(format!(
                                "config: `{}`: expected a time of day before 24:00",
                                k(&format!("draws[{j}].at"))
                            ));
                        }
                        if !(d.wh.is_finite() && d.wh >= 0.0) {
                            return Err(format!(
                                "config: `{}`: expected a number >= 0 Wh, got {}",
                                k(&format!("draws[{j}].wh")),
                                d.wh
                            ));
                        }
                    }
                }
                LoadConfig::Sequence(s) => {
                    if let Some(p) = &s.power {
                        entity(&k("power"), p)?;
                    }
                    entity(&k("ready"), &s.ready)?;
                    if let Some(d) = &s.deadline {
                        entity(&k("deadline"), d)?;
                    }
                    if s.profile_w.is_empty()
                        || s.profile_w.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                    {
                        return Err(format!(
                            "config: `{}`: expected a non-empty list of powers >= 0 W, got {:?}",
                            k("profile_w"),
                            s.profile_w
                        ));
                    }
                    if s.profile_step_s == 0 {
                        return Err(format!(
                            "config: `{}`: expected a step > 0 s",
                            k("profile_step_s")
                        ));
                    }
                    let run_h = s.profile_w.len() as f64 * s.profile_step_s as f64 / 3600.0;
                    if run_h > self.horizon_h {
                        return Err(format!(
                            "config: `{}`: the programme runs {run_h} h, longer than horizon_h ({} h)",
                            k("profile_w"),
                            self.horizon_h
                        ));
                    }
                    if s.fixed_start.is_some_and(|t| t.0 >= 1440) {
                        return Err(format!(
                            "config: `{}`: expected a time of day before 24:00",
                            k("fixed_start")
                        ));
                    }
                }
                LoadConfig::Battery(b) => {
                    if let Some(p) = &b.power {
                        entity(&k("power"), p)?;
                    }
                    entity(&k("soc"), &b.soc)?;
                    entity(&k("plugged"), &b.plugged)?;
                    if let Some(d) = &b.deadline {
                        entity(&k("deadline"), d)?;
                    }
                    positive(&k("capacity_wh"), b.capacity_wh, "Wh")?;
                    positive(&k("max_w"), b.max_w, "W")?;
                    if !(b.target_pct > 0.0 && b.target_pct <= 100.0) {
                        return Err(format!(
                            "config: `{}`: expected a percentage in (0, 100], got {}",
                            k("target_pct"),
                            b.target_pct
                        ));
                    }
                    if !(b.efficiency > 0.0 && b.efficiency <= 1.0) {
                        return Err(format!(
                            "config: `{}`: expected a fraction in (0, 1], got {}",
                            k("efficiency"),
                            b.efficiency
                        ));
                    }
                    if b.fixed_start.is_some_and(|t| t.0 >= 1440) {
                        return Err(format!(
                            "config: `{}`: expected a time of day before 24:00",
                            k("fixed_start")
                        ));
                    }
                }
                LoadConfig::Deferrable(d) => {
                    if let Some(p) = &d.power {
                        entity(&k("power"), p)?;
                    }
                    positive(&k("nominal_w"), d.nominal_w, "W")?;
                    match (d.energy_wh, d.hours) {
                        (Some(e), None) => positive(&k("energy_wh"), e, "Wh")?,
                        (None, Some(h)) => positive(&k("hours"), h, "h")?,
                        _ => {
                            return Err(format!(
                                "config: `{}`: expected one of `energy_wh` and `hours`",
                                k("energy_wh")
                            ));
                        }
                    }
                    for (key, t) in [("from", Some(d.from)), ("fixed_start", d.fixed_start)] {
                        if t.is_some_and(|t| t.0 >= 1440) {
                            return Err(format!(
                                "config: `{}`: expected a time of day before 24:00",
                                k(key)
                            ));
                        }
                    }
                    let most = d.nominal_w * d.window_min() as f64 / 60.0;
                    if d.energy() > most {
                        return Err(format!(
                            "config: `{}`: {} Wh does not fit its window ({} min at {} W: {most} Wh)",
                            k("energy_wh"),
                            d.energy(),
                            d.window_min(),
                            d.nominal_w
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
