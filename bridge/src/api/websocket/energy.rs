//! `hearth/energy/summary`: what the dashboard's energy page shows, in one
//! call — energy (Wh) and cost (€) per device meter, per outlet and per
//! user over today, this week or this month (local to the `[usage]`
//! time zone, else `[energy]`'s, else Europe/Paris; weeks start on
//! `[usage] week_starts`, else Monday), consumption against solar
//! production, cost by tariff period, and an hourly series for the chart.
//!
//! Request: `{"type": "hearth/energy/summary", "period": "day" | "week" |
//! "month"}` (`period` defaults to `day`). Unknown keys or periods are
//! `invalid_format` naming the field (`… @ data['period']`).
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

use super::commands::Outcome;
use super::protocol::{self, Command, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::clock::iso8601;
use crate::energy::day::DayTotals;
use crate::energy::{EnergyConfig, Source};
use crate::entity::{Component, EntityStore};
use crate::recorder::Recorder;
use crate::recorder::statistics::{HOUR_MS, floor_hour, meter_growth};
use crate::usage::UsageConfig;
use crate::usage::periods::{Calendar, PeriodKind};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// The config sections the summary reads (both optional).
#[derive(Debug, Clone, Default)]
pub struct SummarySources {
    pub usage: Option<UsageConfig>,
    pub energy: Option<EnergyConfig>,
}

/// How far before a period the statistics row its first hour grows from
/// is looked for (rows are hourly once a meter exists).
const BASELINE_LOOKBACK_MS: i64 = 2 * 86_400_000;

pub fn handle(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["period"])?;
    let kind = parse_period(f.str("period")?)?;
    let permit = s.calls_in_flight.clone().try_acquire_owned().map_err(|_| {
        Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            "too many calls of this connection are still running; wait for their results",
        )
    })?;
    let store = s.api.store.clone();
    let recorder = s.api.recorder.clone();
    let sources = s.api.energy_summary.clone();
    let data_dir = s.api.data_dir.clone();
    let (conn, id) = (s.conn.clone(), cmd.id);
    while s.calls.try_join_next().is_some() {}
    // The ledgers and statistics are on disk: off the connection's loop.
    s.calls.spawn(async move {
        let _permit = permit;
        let answer = tokio::task::spawn_blocking(move || {
            let now = store.clock().now_ms();
            summary(&store, recorder.as_deref(), &data_dir, &sources, kind, now)
        })
        .await
        .unwrap_or_else(|e| Err(format!("energy summary failed: {e}")));
        match answer {
            Ok(v) => conn.send(protocol::result(id, v)),
            Err(e) => conn.send(protocol::error(
                json!(id),
                protocol::ERR_HOME_ASSISTANT_ERROR,
                &e,
            )),
        };
    });
    Ok(())
}

fn parse_period(p: Option<&str>) -> Result<PeriodKind, Failure> {
    match p.unwrap_or("day") {
        "day" => Ok(PeriodKind::Day),
        "week" => Ok(PeriodKind::Week),
        "month" => Ok(PeriodKind::Month),
        other => Err(Failure::from(format!(
            "expected day, week or month, got `{other}` @ data['period']"
        ))),
    }
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

/// The tariff in force over time: (from ms, €/kWh, period), in order.
struct TariffSteps(Vec<(i64, f64, String)>);

impl TariffSteps {
    fn load(recorder: Option<&Recorder>, entity_id: &str, start: i64, end: i64) -> TariffSteps {
        let Some(r) = recorder else {
            return TariffSteps(Vec::new());
        };
        let q = crate::recorder::query::StatesQuery {
            include_start_state: true,
            significant_only: false,
            no_attributes: false,
        };
        let records = r
            .reader()
            .states(entity_id, start, end, q)
            .map_err(|e| tracing::warn!("energy summary: tariff history: {e}"))
            .unwrap_or_default();
        let mut steps = Vec::new();
        for s in records {
            // A price that is not a number (unknown after a start) keeps
            // the last one, as the usage and energy tasks do.
            let Ok(price) = s.state.parse::<f64>() else {
                continue;
            };
            if !price.is_finite() {
                continue;
            }
            let period = s
                .attributes
                .get("period")
                .and_then(Value::as_str)
                .filter(|p| !p.trim().is_empty())
                .unwrap_or(crate::energy::NO_PERIOD)
                .to_string();
            steps.push((s.last_updated, price, period));
        }
        TariffSteps(steps)
    }

    /// Prices `wh` used evenly over `[from, to)`: (period, Wh, €) parts.
    fn price(&self, wh: f64, from: i64, to: i64) -> Vec<(String, f64, f64)> {
        let no_price = || vec![(crate::energy::NO_PERIOD.to_string(), wh, 0.0)];
        if self.0.is_empty() || to <= from {
            return no_price();
        }
        let span = (to - from) as f64;
        let mut parts: Vec<(String, f64, f64)> = Vec::new();
        let mut covered = 0.0;
        for (i, (t, price, period)) in self.0.iter().enumerate() {
            let next = self.0.get(i + 1).map_or(i64::MAX, |n| n.0);
            // The first price also covers the time before it (the price in
            // force at the start of the range was not recorded).
            let a = if i == 0 { from } else { (*t).max(from) };
            let b = next.min(to);
            if b <= a {
                continue;
            }
            let share = wh * (b - a) as f64 / span;
            covered += (b - a) as f64;
            parts.push((period.clone(), share, share / 1000.0 * price));
        }
        if covered <= 0.0 {
            return no_price();
        }
        parts
    }
}

/// A meter's growth per hour (hour start ms → Wh) in `[start, end)`,
/// from the statistics plus the readings since the last compiled hour.
fn meter_hours(
    store: &EntityStore,
    recorder: &Recorder,
    entity_id: &str,
    scale: f64,
    start: i64,
    end: i64,
    now: i64,
) -> BTreeMap<i64, f64> {
    let reader = recorder.reader();
    let read = |from: i64, to: i64| {
        reader
            .statistics(entity_id, from, to)
            .map_err(|e| tracing::warn!("energy summary: statistics of {entity_id}: {e}"))
            .unwrap_or_default()
    };
    let mut rows = read(start - BASELINE_LOOKBACK_MS, end);
    if !rows.iter().any(|r| r.start_ms < start) {
        // A gap longer than the lookback: the last row before, if any.
        let before = read(i64::MIN / 2, start);
        if let Some(last) = before.last() {
            rows.insert(0, last.clone());
        }
    }
    let mut hours = BTreeMap::new();
    let mut prev_sum: Option<f64> = None;
    let mut last_state: Option<f64> = None;
    for r in &rows {
        let sum = r.sum.unwrap_or(0.0);
        if r.start_ms >= start {
            let growth = sum - prev_sum.unwrap_or(0.0);
            *hours.entry(r.start_ms).or_insert(0.0) += growth * scale;
        }
        prev_sum = Some(sum);
        if r.state.is_some() {
            last_state = r.state;
        }
    }
    // The hours not compiled yet: the recorded readings since the last
    // compiled hour and the reading now, counted as the statistics count
    // them (a reset counts from zero), from that hour's `state` (or the
    // reading in force then, for a meter with no statistics yet).
    if now >= start && now < end {
        let compiled_until = rows
            .iter()
            .rev()
            .find(|r| r.state.is_some())
            .map_or(start, |r| r.start_ms + HOUR_MS)
            .max(start);
        let q = crate::recorder::query::StatesQuery {
            include_start_state: true,
            significant_only: false,
            no_attributes: true,
        };
        // (time, reading): each increment goes to the hour it was read in,
        // as the statistics will put it.
        let mut readings: Vec<(i64, f64)> = reader
            .states(entity_id, compiled_until, now.saturating_add(1), q)
            .map_err(|e| tracing::warn!("energy summary: readings of {entity_id}: {e}"))
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                let v = s.state.parse::<f64>().ok().filter(|v| v.is_finite())?;
                Some((s.last_updated, v))
            })
            .collect();
        if let Some(s) = store.get(entity_id)
            && let Some(v) = s.number()
        {
            readings.push((s.last_updated.max(compiled_until), v));
        }
        let mut prev = if compiled_until > start {
            last_state
        } else {
            None
        };
        for (t, v) in readings {
            let (growth, last) = meter_growth(prev, &[v], true);
            prev = last;
            if growth > 0.0 {
                *hours.entry(floor_hour(t.clamp(start, now))).or_insert(0.0) += growth * scale;
            }
        }
    }
    hours
}

/// One meter's figures over the period.
struct MeterFigures {
    split: Split,
    hours: BTreeMap<i64, (f64, f64)>,
}

fn figure_meter(
    store: &EntityStore,
    recorder: Option<&Recorder>,
    tariff: &TariffSteps,
    entity_id: &str,
    (start, end, now): (i64, i64, i64),
) -> MeterFigures {
    let mut out = MeterFigures {
        split: Split::default(),
        hours: BTreeMap::new(),
    };
    let Some(r) = recorder else { return out };
    let unit = store.spec(entity_id).and_then(|s| s.unit.clone());
    let scale = crate::energy::wh_per_unit(unit.as_deref()).unwrap_or(1.0);
    for (h, wh) in meter_hours(store, r, entity_id, scale, start, end, now) {
        // The hour running now has used its energy until now.
        let hour_end = if now < h + HOUR_MS {
            now.max(h + 1)
        } else {
            h + HOUR_MS
        };
        let mut eur = 0.0;
        for (period, part_wh, part_eur) in tariff.price(wh, h, hour_end) {
            out.split.add(&period, part_wh, part_eur);
            eur += part_eur;
        }
        let e = out.hours.entry(h).or_default();
        e.0 += wh;
        e.1 += eur;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hours_come_from_statistics_then_from_readings_in_their_own_hour() {
        use crate::clock::Clock;
        use crate::entity::{Device, EntitySpec};
        const T0: i64 = 1_796_601_600_000; // 2026-12-07 00:00 UTC
        const MIN: i64 = 60_000;
        const ID: &str = "sensor.plug_energy";
        let dir = tempfile::tempdir().unwrap();
        let (clock, hand) = Clock::manual(T0);
        let store = EntityStore::new(clock);
        store
            .upsert_device(
                "plug",
                Device {
                    id: "plug".into(),
                    name: "Plug".into(),
                    manufacturer: "t".into(),
                    model: "t".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        store
            .upsert_entity(
                EntitySpec::new("plug", "energy", Component::Sensor)
                    .class("energy")
                    .measured("Wh", "total_increasing"),
            )
            .unwrap();
        let rec = Recorder::start(
            &crate::recorder::RecorderConfig::default(),
            dir.path().join("hearth.db"),
            store.clone(),
        )
        .unwrap();
        let at = |ms: i64, v: f64| {
            hand.set(ms);
            store.set_state(ID, v.to_string(), Map::new()).unwrap();
        };
        at(T0 + 5 * MIN, 100.0);
        at(T0 + 30 * MIN, 150.0); // hour 0: +50
        at(T0 + 70 * MIN, 40.0); // hour 1: a reset, +40
        rec.flush().await.unwrap();
        hand.set(T0 + 2 * HOUR_MS + 5 * MIN);
        rec.maintain().await.unwrap(); // hours 0 and 1 compiled
        at(T0 + 2 * HOUR_MS + 10 * MIN, 70.0); // hour 2: +30
        // Hour 2 is due for compiling 32 s after its end (the writer's
        // grace): until then its readings and hour 3's come from the states.
        at(T0 + 3 * HOUR_MS + 10_000, 100.0); // hour 3: +30
        rec.flush().await.unwrap();
        let now = T0 + 3 * HOUR_MS + 20_000;
        hand.set(now);
        let compiled = rec.reader().statistics(ID, T0, now).unwrap();
        assert_eq!(compiled.len(), 2, "{compiled:?}");
        let hours = meter_hours(&store, &rec, ID, 1.0, T0, T0 + 24 * HOUR_MS, now);
        let want: BTreeMap<i64, f64> = [
            (T0, 50.0),
            (T0 + HOUR_MS, 40.0),
            (T0 + 2 * HOUR_MS, 30.0),
            (T0 + 3 * HOUR_MS, 30.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(hours, want);
        // A period starting after hour 0: its growth is not counted.
        let later = meter_hours(&store, &rec, ID, 1.0, T0 + HOUR_MS, T0 + 24 * HOUR_MS, now);
        assert_eq!(later.values().sum::<f64>(), 100.0, "{later:?}");
        rec.close().await;
    }

    #[test]
    fn a_price_change_inside_an_hour_splits_its_energy() {
        let t = TariffSteps(vec![(0, 0.2, "HC".into()), (1800, 0.3, "HP".into())]);
        let parts = t.price(1000.0, 0, 3600);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "HC");
        assert!((parts[0].1 - 500.0).abs() < 1e-9);
        assert!((parts[0].2 - 0.1).abs() < 1e-12);
        assert!((parts[1].2 - 0.15).abs() < 1e-12);
        // No tariff recorded: the energy without a price.
        let none = TariffSteps(Vec::new()).price(10.0, 0, 3600);
        assert_eq!(none, [(crate::energy::NO_PERIOD.to_string(), 10.0, 0.0)]);
        assert!(parse_period(Some("year")).is_err());
        assert_eq!(parse_period(None).unwrap(), PeriodKind::Day);
    }
}
