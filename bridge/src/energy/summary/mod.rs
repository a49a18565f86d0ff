//! The answer of `hearth/energy/summary` (the WebSocket command is
//! [`crate::api::websocket::energy`]): what the dashboard's energy page
//! shows, in one call — energy (Wh) and cost (€) per device meter, per
//! outlet and per user over today, this week or this month (local to the
//! `[usage]` time zone, else `[energy]`'s, else Europe/Paris; weeks start on
//! `[usage] week_starts`, else Monday), consumption against solar
//! production, cost by tariff period, and an hourly series for the chart.
//!
//! Answer (energies in Wh, money in €, times in ms since the Unix epoch and
//! RFC 3339):
//!
//! ```json
//! {
//!   "period": "day", "timezone": "Europe/Paris",
//!   "start": "2026-12-06T23:00:00.000Z", "end": "2026-12-07T23:00:00.000Z",
//!   "start_ms": 1796598000000, "end_ms": 1796684400000, "now_ms": 1796634000000,
//!   "devices": [{"entity_id": "sensor.strip1_outlet1_energy", "name": "Outlet 1 energy",
//!                "device_id": "strip1", "device_name": "Strip 1", "wh": 1500.0, "eur": 0.31,
//!                "periods": {"HC": {"wh": 300.0, "eur": 0.05}, "HP": {"wh": 1200.0, "eur": 0.26}}}],
//!   "outlets": [{"energy_entity": "…", "switch_entity": "…", "user": "alice",
//!                "wh": 1500.0, "eur": 0.31, "periods": {…}}],
//!   "users": [{"id": "alice", "name": "Alice", "wh": 1500.0, "eur": 0.31, "periods": {…}}],
//!   "grid": {"import_wh": …, "export_wh": …, "solar_wh": …, "consumption_wh": …,
//!            "self_consumed_wh": …, "self_consumption_pct": 62.5 | null,
//!            "self_sufficiency_pct": … | null, "has_solar": true} | null,
//!   "cost": {"source": "grid_import" | "usage" | "meters" | "none", "eur": 0.31,
//!            "periods": [{"period": "HC", "wh": 300.0, "eur": 0.05}, …]},
//!   "hours": [{"start_ms": …, "consumption_wh": …, "solar_wh": … | null, "eur": …}]
//! }
//! ```
//!
//! Where the figures come from:
//! - `devices`: every energy meter in the store (a `sensor` of device class
//!   `energy`, state class `total_increasing`, in Wh/kWh/MWh; not the
//!   `energy` device's daily sensors, not a `[usage]` user's entities, not
//!   `[energy]`'s grid and solar meters), from the recorder's hourly
//!   statistics ([`crate::recorder::statistics`]: each hour's growth is
//!   its `sum` minus the hour before's, so meter resets are read as HA
//!   does) whose hour (UTC-aligned) starts in the period, plus the growth
//!   since the last compiled hour (the recorded readings and the live one
//!   from that hour's `state`, with the same reset rule), each increment in
//!   the hour it was read in. Their cost prices each
//!   hour's growth at the tariff entity's recorded history (`[usage]`
//!   / `[energy] tariff_entity`, default `sensor.tariff_price`, €/kWh,
//!   attribute `period`), split in proportion to the time each price held
//!   in the hour: exact when the power is steady within an hour or the
//!   price changes on the hour, as HP/HC and Tempo do;
//! - `outlets`: the `[usage]` outlets' meters, figured as `devices`, with
//!   the holder now (`user`, `none` when nobody);
//! - `users`: the usage ledger ([`crate::usage::ledger`]), priced when
//!   each reading arrived, as bills are; user `none` is energy of outlets
//!   nobody held;
//! - `grid`: the `[energy]` ledger ([`crate::energy::ledger`],
//!   `energy.db`) with HA's Energy dashboard figures
//!   ([`crate::energy::day::DayTotals`]); `null` without `[energy]`;
//! - `cost` and `hours`: the grid import when `[energy]` meters it, else
//!   the usage ledger (all users), else the device meters; `solar_wh` is
//!   `null` in hours when there is no solar meter. `hours` are the local
//!   hours from the period's start to the one running now (a device
//!   meter's UTC statistics hour goes to the local hour it starts in).
//!
//! Without the recorder, `devices`, `outlets` and `users` have no energy
//! (0 Wh); the answer is still given.

mod meters;

use crate::clock::iso8601;
use crate::energy::day::DayTotals;
use crate::energy::{EnergyConfig, Source};
use crate::entity::{Component, EntityStore};
use crate::recorder::Recorder;
use crate::recorder::statistics::HOUR_MS;
use crate::usage::UsageConfig;
use crate::usage::periods::{Calendar, PeriodKind};
use meters::{TariffSteps, figure_meter};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The config sections the summary reads (both optional).
#[derive(Debug, Clone, Default)]
pub struct SummarySources {
    pub usage: Option<UsageConfig>,
    pub energy: Option<EnergyConfig>,
}
/// Wh and € per tariff period.
#[derive(Debug, Clone, Default)]
struct Split(BTreeMap<String, (f64, f64)>);

impl Split {
    fn add(&mut self, period: &str, wh: f64, eur: f64) {
        let e = self.0.entry(period.to_string()).or_default();
        e.0 += wh;
        e.1 += eur;
    }
    fn wh(&self) -> f64 {
        self.0.values().map(|v| v.0).sum()
    }
    fn eur(&self) -> f64 {
        self.0.values().map(|v| v.1).sum()
    }
    fn json(&self) -> Value {
        let m: Map<String, Value> = self
            .0
            .iter()
            .map(|(p, (wh, eur))| (p.clone(), json!({"wh": wh, "eur": eur})))
            .collect();
        Value::Object(m)
    }
    fn list(&self) -> Value {
        self.0
            .iter()
            .map(|(p, (wh, eur))| json!({"period": p, "wh": wh, "eur": eur}))
            .collect()
    }
}
/// The answer of `hearth/energy/summary` (blocking: reads the databases).
pub fn summary(
    store: &EntityStore,
    recorder: Option<&Recorder>,
    data_dir: &Path,
    sources: &SummarySources,
    kind: PeriodKind,
    now: i64,
) -> Result<Value, String> {
    let (timezone, cal) = calendar(sources)?;
    let (start, end) = cal.period(kind, now);
    let tariff_entity = sources
        .usage
        .as_ref()
        .map(|u| u.tariff_entity.clone())
        .or_else(|| sources.energy.as_ref().map(|e| e.tariff_entity.clone()))
        .unwrap_or_else(|| crate::feeds::tariff_driver::PRICE_ENTITY.to_string());
    let tariff = TariffSteps::load(recorder, &tariff_entity, start, end);
    let range = (start, end, now);
    let snap = store.snapshot();
    let device_names: BTreeMap<&str, &str> = snap
        .devices
        .iter()
        .map(|(d, _)| (d.id.as_str(), d.name.as_str()))
        .collect();

    // Device meters.
    let mut excluded_devices: HashSet<&str> = HashSet::from([crate::energy::entities::DEVICE]);
    if let Some(u) = &sources.usage {
        excluded_devices.extend(u.users.iter().map(|u| u.id.as_str()));
    }
    let grid_meters: HashSet<String> = sources
        .energy
        .as_ref()
        .map(|e| {
            e.meters()
                .into_iter()
                .filter(|(s, _)| !matches!(s, Source::Device(_)))
                .map(|(_, id)| id)
                .collect()
        })
        .unwrap_or_default();
    let mut devices = Vec::new();
    let mut meters_total: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut meters_split = Split::default();
    let mut figured: BTreeMap<String, Split> = BTreeMap::new();
    for (spec, _) in &snap.entities {
        let is_meter = spec.component == Component::Sensor
            && spec.device_class.as_deref() == Some("energy")
            && spec.state_class.as_deref() == Some("total_increasing")
            && crate::energy::wh_per_unit(spec.unit.as_deref()).is_some()
            && !excluded_devices.contains(spec.device_id.as_str())
            && !grid_meters.contains(&spec.entity_id);
        if !is_meter {
            continue;
        }
        let f = figure_meter(store, recorder, &tariff, &spec.entity_id, range);
        for (h, (wh, eur)) in &f.hours {
            // Statistics hours are UTC hours; the series' are local.
            let e = meters_total.entry(cal.hour_start(*h)).or_default();
            e.0 += wh;
            e.1 += eur;
        }
        for (p, (wh, eur)) in &f.split.0 {
            meters_split.add(p, *wh, *eur);
        }
        devices.push(json!({
            "entity_id": spec.entity_id,
            "name": spec.name.clone().unwrap_or_else(|| spec.key.clone()),
            "device_id": spec.device_id,
            "device_name": device_names.get(spec.device_id.as_str()).copied().unwrap_or(&spec.device_id),
            "wh": f.split.wh(),
            "eur": f.split.eur(),
            "periods": f.split.json(),
        }));
        figured.insert(spec.entity_id.clone(), f.split);
    }

    // Outlets and users.
    let mut outlets = Vec::new();
    let mut users = Vec::new();
    let mut usage_hours: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    let mut usage_split = Split::default();
    if let Some(u) = &sources.usage {
        for o in &u.outlets {
            let split = match figured.get(&o.energy_entity) {
                Some(s) => s.clone(),
                None => figure_meter(store, recorder, &tariff, &o.energy_entity, range).split,
            };
            let holder = match (&o.user, &o.user_entity) {
                (Some(u), _) => u.clone(),
                (None, Some(e)) => store
                    .get(e)
                    .map(|s| s.state)
                    .unwrap_or_else(|| crate::usage::NOBODY.into()),
                _ => crate::usage::NOBODY.into(),
            };
            outlets.push(json!({
                "energy_entity": o.energy_entity,
                "switch_entity": o.switch_entity,
                "user": holder,
                "wh": split.wh(),
                "eur": split.eur(),
                "periods": split.json(),
            }));
        }
        let rows = match recorder {
            Some(r) => read_usage(r.path(), start, end)?,
            None => Vec::new(),
        };
        let mut per_user: BTreeMap<String, Split> = BTreeMap::new();
        for r in rows {
            per_user
                .entry(r.user.clone())
                .or_default()
                .add(&r.period, r.wh, r.eur);
            usage_split.add(&r.period, r.wh, r.eur);
            let e = usage_hours.entry(r.hour_ms).or_default();
            e.0 += r.wh;
            e.1 += r.eur;
        }
        let mut listed = HashSet::new();
        for user in &u.users {
            listed.insert(user.id.clone());
            let split = per_user.get(&user.id).cloned().unwrap_or_default();
            users.push(json!({"id": user.id, "name": user.name, "wh": split.wh(),
                              "eur": split.eur(), "periods": split.json()}));
        }
        // Nobody's energy, and users since removed from the config.
        for (id, split) in &per_user {
            if !listed.contains(id) {
                users.push(json!({"id": id, "name": id, "wh": split.wh(),
                                  "eur": split.eur(), "periods": split.json()}));
            }
        }
    }

    // Grid and solar.
    let mut grid = Value::Null;
    let mut grid_hours: BTreeMap<i64, DayTotals> = BTreeMap::new();
    let mut has_import = false;
    let mut has_solar = false;
    let mut import_split = Split::default();
    if let Some(e) = &sources.energy {
        has_import = e.grid_import.is_some();
        has_solar = e.solar_production.is_some();
        let rows = read_energy(&data_dir.join(crate::energy::ledger::FILE), start, end)?;
        let mut total = DayTotals::default();
        for r in rows {
            let Some(source) = Source::from_quantity(&r.quantity) else {
                continue;
            };
            total.add(&source, &r.period, r.wh, r.eur);
            if source == Source::GridImport {
                import_split.add(&r.period, r.wh, r.eur);
            }
            grid_hours
                .entry(r.hour_ms)
                .or_default()
                .add(&source, &r.period, r.wh, r.eur);
        }
        grid = json!({
            "import_wh": total.import_wh,
            "export_wh": total.export_wh,
            "solar_wh": total.solar_wh,
            "consumption_wh": total.consumption_wh(),
            "self_consumed_wh": total.self_consumed_wh(),
            "self_consumption_pct": total.self_consumption_pct(),
            "self_sufficiency_pct": total.self_sufficiency_pct(),
            "cost_eur": total.cost_eur(),
            "has_solar": has_solar,
        });
    }

    // Cost by tariff period and the hourly series, from the best source.
    let (cost_source, cost_split) = if has_import {
        ("grid_import", import_split)
    } else if sources.usage.is_some() && recorder.is_some() {
        ("usage", usage_split)
    } else if recorder.is_some() && !devices.is_empty() {
        ("meters", meters_split)
    } else {
        ("none", Split::default())
    };
    let mut hours = Vec::new();
    // Local hours from the period's start (a time zone may be off UTC by
    // a fraction of an hour) to the one running now.
    let last_hour = cal.hour_start(now.min(end - 1));
    let mut h = start;
    while h <= last_hour {
        let (consumption, eur) = match cost_source {
            "grid_import" => grid_hours
                .get(&h)
                .map_or((0.0, 0.0), |d| (d.consumption_wh(), d.cost_eur())),
            "usage" => usage_hours.get(&h).copied().unwrap_or_default(),
            _ => meters_total.get(&h).copied().unwrap_or_default(),
        };
        // With [energy] but no import meter, consumption is still
        // import + solar − export of what is metered.
        let consumption = if sources.energy.is_some() && cost_source != "grid_import" {
            grid_hours
                .get(&h)
                .map_or(consumption, |d| d.consumption_wh().max(consumption))
        } else {
            consumption
        };
        let solar = has_solar.then(|| grid_hours.get(&h).map_or(0.0, |d| d.solar_wh));
        hours.push(json!({"start_ms": h, "consumption_wh": consumption,
                          "solar_wh": solar, "eur": eur}));
        h += HOUR_MS;
    }

    Ok(json!({
        "period": kind.as_str(),
        "timezone": timezone,
        "start": iso8601(start),
        "end": iso8601(end),
        "start_ms": start,
        "end_ms": end,
        "now_ms": now,
        "devices": devices,
        "outlets": outlets,
        "users": users,
        "grid": grid,
        "cost": {"source": cost_source, "eur": cost_split.eur(), "periods": cost_split.list()},
        "hours": hours,
    }))
}

/// The calendar periods are cut in, and its time zone's name.
fn calendar(sources: &SummarySources) -> Result<(String, Calendar), String> {
    if let Some(u) = &sources.usage {
        return Ok((u.timezone.clone(), u.calendar()?));
    }
    if let Some(e) = &sources.energy {
        return Ok((e.timezone.clone(), e.calendar()?));
    }
    let tz = crate::feeds::tariff::parse_time_zone("Europe/Paris").map_err(|e| e.to_string())?;
    Ok((
        "Europe/Paris".into(),
        Calendar::new(tz, crate::usage::periods::WeekStart::Monday),
    ))
}

fn read_usage(
    db: &Path,
    start: i64,
    end: i64,
) -> Result<Vec<crate::usage::ledger::LedgerRow>, String> {
    if !db.exists() {
        return Ok(Vec::new());
    }
    let conn = crate::recorder::schema::open_reader(db).map_err(|e| e.to_string())?;
    let err = |e: rusqlite::Error| format!("{}: {e}", db.display());
    if !crate::usage::ledger::exists(&conn).map_err(err)? {
        return Ok(Vec::new());
    }
    crate::usage::ledger::per_hour(&conn, start, end).map_err(err)
}

fn read_energy(
    path: &Path,
    start: i64,
    end: i64,
) -> Result<Vec<crate::energy::ledger::Row>, String> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let err = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let l = crate::energy::ledger::Ledger::open_read_only(path).map_err(err)?;
    l.hourly(start, end).map_err(err)
}
