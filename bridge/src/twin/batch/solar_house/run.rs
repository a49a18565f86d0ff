//! One controller in the solar house, in virtual time, through the same
//! plugin host as live (`plugins::prepare`, [`PluginInstance`] with its
//! limits) on a [`Clock::manual`] with a real [`EntityStore`].
//!
//! Before the first step the host's [`Forecasts`] get `price` (the
//! tariff's own segments), `export-price`, `pv-power` (the PV model on the
//! forecast weather, 15-min means), `base-load` (the base load's
//! noise-free profile, 15-min means) and `outdoor-temperature` (hourly),
//! from the start to `forecast_h` past the end.
//!
//! Each step of `step_s` (60 s by default):
//! 1. the day's events: machines loaded, the EV arrives or leaves, the
//!    tank's ready times and the deadlines judged ([`House::advance`]);
//! 2. the house reports what changed (the contract's entities, see
//!    `notes/issue15-contract.md`): meters show the last step's mean power;
//! 3. those changes reach the plugin's `on-state`, then its `tick` when due;
//! 4. its `switch.turn_on`/`turn_off` calls move the relays (a call on an
//!    entity it does not drive, or that is not a relay of the house, is
//!    refused and logged);
//! 5. the house steps; the meter's import and export are priced (import at
//!    the tariff's price at the step's start, export at the grid's price).
//!
//! A fault is counted and a fresh instance takes over; the relays hold.

use super::scenario::SolarScenario;
use crate::clock::{Clock, iso8601};
use crate::entity::{Component, Device, EntitySpec, EntityStore, StoreEvent};
use crate::feeds::tariff::PriceModel;
use crate::forecast::{self, Forecasts};
use crate::plugins::engine::{PluginEngine, wit};
use crate::plugins::instance::PluginFault;
use crate::plugins::logbook::{LogBook, LogLine};
use crate::plugins::prepare::{self, HostServices};
use crate::plugins::runner::to_wit_change;
use crate::twin::batch::ControllerRun;
use crate::twin::solar_house::house::Judgement;
use crate::twin::solar_house::{House, LoadId};
use anyhow::Context;
use serde_json::Map;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A row of the steps CSV, every this many s.
pub const ROW_EVERY_S: f64 = 60.0;
/// Resolution of the `pv-power` and `base-load` forecasts, s.
pub const FORECAST_RES_S: i64 = 900;
const MAX_ROUNDS: usize = 4;

pub const PV_POWER: &str = "pv-power";
pub const BASE_LOAD: &str = "base-load";
pub const EXPORT_PRICE: &str = "export-price";

/// One minute (`ROW_EVERY_S`) of the run: means over the step at `t_ms`.
#[derive(Debug, Clone)]
pub struct Row {
    pub t_ms: i64,
    pub period: &'static str,
    pub price: f64,
    pub pv_w: f64,
    pub base_w: f64,
    pub loads_w: [f64; 4],
    pub import_w: f64,
    pub export_w: f64,
    /// NaN when the house has none.
    pub tank_c: f64,
    /// NaN when the EV is away.
    pub ev_pct: f64,
    pub relays: [bool; 4],
}

/// Per flexible load.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadMetrics {
    pub id: &'static str,
    pub present: bool,
    pub kwh: f64,
    pub met: u32,
    pub missed: u32,
    pub starts: u64,
    pub splits: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SolarMetrics {
    pub import_cost_eur: f64,
    pub export_revenue_eur: f64,
    /// Import cost − export revenue.
    pub net_cost_eur: f64,
    pub import_kwh: f64,
    pub export_kwh: f64,
    pub pv_kwh: f64,
    pub consumption_kwh: f64,
    /// PV used on site / PV produced, %.
    pub self_consumption_pct: f64,
    /// Consumption covered by PV, %.
    pub self_sufficiency_pct: f64,
    /// Highest import over a step, kW.
    pub peak_import_kw: f64,
    pub seconds_over_limit: f64,
    pub loads: Vec<LoadMetrics>,
    /// Net cost per 24 h from the start, €.
    pub daily_net_cost_eur: Vec<f64>,
    pub faults: u64,
    pub tick_median_ms: f64,
    pub tick_p99_ms: f64,
    pub tick_max_ms: f64,
    /// The tank at the end, °C (NaN: no water heater).
    pub tank_end_c: f64,
    /// What bringing the tank back from its end temperature to its start
    /// temperature would cost at the period's cheapest import price
    /// (negative: heat left over, a credit), €. A controller that ends the
    /// period with a colder tank has bought less heat, not saved it: the
    /// comparison is on [`SolarMetrics::adjusted_cost_eur`].
    pub stored_heat_eur: f64,
    /// `net_cost_eur + stored_heat_eur`, €: what the verdict compares.
    pub adjusted_cost_eur: f64,
    /// Wall time in the plugin's calls (`on-state` and `tick`), s.
    pub plugin_s: f64,
    /// The longest call of either kind, ms.
    pub call_max_ms: f64,
}

impl SolarMetrics {
    pub fn deadlines_met(&self) -> u32 {
        self.loads.iter().map(|l| l.met).sum()
    }
    pub fn deadlines_missed(&self) -> u32 {
        self.loads.iter().map(|l| l.missed).sum()
    }
    pub fn load(&self, id: LoadId) -> &LoadMetrics {
        &self.loads[id.index()]
    }
}

pub struct SolarOutcome {
    pub label: String,
    pub plugin: String,
    pub rows: Vec<Row>,
    pub metrics: SolarMetrics,
    pub judgements: Vec<Judgement>,
    pub faults: Vec<String>,
    pub log: Vec<LogLine>,
    pub wall: Duration,
    /// The plugin's declared entities as it last published them (object
    /// id → state and attributes; undeclared ids are ignored): `hearth plan` reads the optimizer's
    /// `optim_status` here.
    pub plugin_entities: BTreeMap<String, (String, serde_json::Value)>,
}

pub fn run(
    sc: &SolarScenario,
    engine: &PluginEngine,
    ctl: &ControllerRun,
    on_step: &(dyn Fn() + Sync),
) -> anyhow::Result<SolarOutcome> {
    let wall_start = Instant::now();
    let step_ms = (sc.step_s * 1000.0).round() as i64;
    let (clock, hand) = Clock::manual(sc.start_ms);
    let store = EntityStore::new(clock);
    let mut house = House::new(sc.house.clone(), sc.start_ms, sc.end_ms);
    register(&store, &house)?;
    let forecasts = Arc::new(Forecasts::default());
    publish_forecasts(sc, &house, &forecasts)?;
    let logs = Arc::new(LogBook::default());
    let host = HostServices {
        store: &store,
        logs: &logs,
        forecasts: &forecasts,
    };
    house.advance(sc.start_ms);
    let mut reporter = Reporter::default();
    reporter.report(&store, &house, sc, sc.start_ms, None)?;
    let (_, mut events) = store.subscribe();
    let prepared = prepare::prepare(engine, ctl.plugin.clone(), &host)
        .with_context(|| format!("controller `{}`", ctl.label))?;
    let desc = prepared.desc.clone();
    let tick_ms = prepared.tick_ms() as i64;
    let reads: HashSet<String> = desc.reads.iter().cloned().collect();
    let drives: HashSet<String> = desc.drives.iter().cloned().collect();
    // As the live runner: an object id the plugin did not declare is
    // ignored (kept, it would grow without bound with fresh ids).
    let declared: HashSet<String> = desc.entities.iter().map(|d| d.object_id.clone()).collect();
    let by_switch: HashMap<String, LoadId> = LoadId::ALL
        .iter()
        .filter(|&&l| house.has(l))
        .map(|&l| (format!("switch.{}", l.id()), l))
        .collect();
    let mut instance = prepared.instance;
    let mut faults = Vec::new();
    let mut tick_us: Vec<f64> = Vec::new();
    let mut rows = Vec::new();
    let mut next_row = sc.start_ms;
    let mut next_tick = (tick_ms > 0).then_some(sc.start_ms);
    let days = ((sc.end_ms - sc.start_ms) as f64 / 86_400_000.0).ceil() as usize;
    let mut m = SolarMetrics {
        daily_net_cost_eur: vec![0.0; days.max(1)],
        ..SolarMetrics::default()
    };
    let log = |level: &'static str, message: String| {
        logs.push(
            &prepared.cfg.name,
            LogLine {
                time_ms: clock.now_ms(),
                level,
                source: "host",
                message,
            },
        );
    };
    let mut plugin_entities = BTreeMap::new();
    let mut last_flows = None;
    let mut notes_seen = 0;
    let mut judged_seen = 0;
    let mut t = sc.start_ms;
    while t < sc.end_ms {
        hand.set(t);
        house.advance(t);
        for (_, note) in &house.notes[notes_seen..] {
            log("info", format!("house: {note}"));
        }
        notes_seen = house.notes.len();
        for j in &house.judgements[judged_seen..] {
            let verdict = if j.met { "met" } else { "MISSED" };
            log(
                if j.met { "info" } else { "warn" },
                format!(
                    "deadline {} of {}: {verdict}, {}",
                    iso8601(j.due_ms),
                    j.load.id(),
                    j.detail
                ),
            );
        }
        judged_seen = house.judgements.len();
        reporter.report(&store, &house, sc, t, last_flows.as_ref())?;
        let mut faulted = false;
        for round in 0..MAX_ROUNDS {
            let mut outs: Vec<Result<wit::Output, PluginFault>> = Vec::new();
            while let Ok(ev) = events.try_recv() {
                let StoreEvent::StateChanged(change) = ev else {
                    continue;
                };
                // After a trap the instance cannot be entered again: the
                // rest of the changes wait for the fresh one.
                let trapped = outs.last().is_some_and(|o| o.is_err());
                if !faulted && !trapped && reads.contains(&change.entity_id) {
                    let started = Instant::now();
                    outs.push(instance.on_state(&to_wit_change(&change)));
                    let us = started.elapsed().as_secs_f64() * 1e6;
                    m.plugin_s += us / 1e6;
                    m.call_max_ms = m.call_max_ms.max(us / 1000.0);
                }
            }
            let trapped = outs.last().is_some_and(|o| o.is_err());
            if round == 0
                && !faulted
                && !trapped
                && let Some(due) = next_tick
                && t >= due
            {
                let started = Instant::now();
                outs.push(instance.tick(t));
                let us = started.elapsed().as_secs_f64() * 1e6;
                tick_us.push(us);
                m.plugin_s += us / 1e6;
                m.call_max_ms = m.call_max_ms.max(us / 1000.0);
                next_tick = Some(due + ((t - due) / tick_ms + 1) * tick_ms);
            }
            if outs.is_empty() {
                break;
            }
            for out in outs {
                match out.and_then(|o| {
                    crate::plugins::runner::check_output(&o)?;
                    Ok(o)
                }) {
                    Ok(o) => {
                        for e in o
                            .entities
                            .iter()
                            .filter(|e| declared.contains(&e.object_id))
                        {
                            let attrs = serde_json::from_str(&e.attributes)
                                .unwrap_or(serde_json::Value::Null);
                            plugin_entities.insert(e.object_id.clone(), (e.state.clone(), attrs));
                        }
                        apply(&o, &drives, &by_switch, &mut house, &log)
                    }
                    Err(fault) => {
                        faults.push(format!("{}: {fault}", iso8601(t)));
                        log("error", format!("faulted: {fault}; the relays hold"));
                        faulted = true;
                    }
                }
            }
            reporter.report(&store, &house, sc, t, last_flows.as_ref())?;
        }
        if faulted {
            instance = prepare::instantiate(
                engine,
                &prepared.pre,
                &prepared.cfg.name,
                &host,
                &prepared.cfg,
                &prepared.config_json,
            )
            .map_err(|f| anyhow::anyhow!("controller `{}` could not restart: {f}", ctl.label))?;
            while events.try_recv().is_ok() {}
        }

        let flows = house.step(t, sc.step_s);
        let dt_h = sc.step_s / 3600.0;
        let price = sc.price_at(t);
        let import_eur = flows.import_w * dt_h / 1000.0 * price;
        let export_eur = flows.export_w * dt_h / 1000.0 * sc.grid.export_price_eur_kwh;
        m.import_cost_eur += import_eur;
        m.export_revenue_eur += export_eur;
        let day = ((t - sc.start_ms) / 86_400_000) as usize;
        if let Some(d) = m.daily_net_cost_eur.get_mut(day) {
            *d += import_eur - export_eur;
        }
        m.peak_import_kw = m.peak_import_kw.max(flows.import_w / 1000.0);
        if flows.import_w > sc.grid.import_limit_w + 1e-9 {
            m.seconds_over_limit += sc.step_s;
        }
        if t >= next_row {
            rows.push(Row {
                t_ms: t,
                period: sc.period_at(t),
                price,
                pv_w: flows.pv_w,
                base_w: flows.base_w,
                loads_w: flows.loads_w,
                import_w: flows.import_w,
                export_w: flows.export_w,
                tank_c: house.water_heater.as_ref().map_or(f64::NAN, |w| w.temp_c),
                ev_pct: house
                    .ev
                    .as_ref()
                    .filter(|e| e.plugged)
                    .map_or(f64::NAN, |e| e.soc_pct),
                relays: house.relays,
            });
            next_row += (ROW_EVERY_S * 1000.0) as i64;
        }
        last_flows = Some(flows);
        on_step();
        t += step_ms;
    }
    hand.set(sc.end_ms);
    house.advance(sc.end_ms);
    for j in &house.judgements[judged_seen..] {
        let verdict = if j.met { "met" } else { "MISSED" };
        log(
            if j.met { "info" } else { "warn" },
            format!(
                "deadline {} of {}: {verdict}, {}",
                iso8601(j.due_ms),
                j.load.id(),
                j.detail
            ),
        );
    }
    finish_metrics(&mut m, &house, &tick_us, faults.len() as u64);
    m.stored_heat_eur = stored_heat_eur(sc, &house);
    m.adjusted_cost_eur = m.net_cost_eur + m.stored_heat_eur;
    Ok(SolarOutcome {
        label: ctl.label.clone(),
        plugin: format!("{} {}", desc.name, desc.version),
        rows,
        metrics: m,
        judgements: house.judgements.clone(),
        faults,
        log: logs.tail(&prepared.cfg.name, usize::MAX),
        wall: wall_start.elapsed(),
        plugin_entities,
    })
}

/// The tank's heat deficit at the end (start − end temperature, times its
/// heat capacity; an element is 100 % efficient) priced at the cheapest
/// import price of the period (sampled every 15 min), €. 0 without a tank.
fn stored_heat_eur(sc: &SolarScenario, house: &House) -> f64 {
    let (Some(spec), Some(w)) = (&sc.house.water_heater, &house.water_heater) else {
        return 0.0;
    };
    let cheapest = (sc.start_ms..sc.end_ms)
        .step_by(900_000)
        .map(|t| sc.price_at(t))
        .fold(f64::INFINITY, f64::min);
    if !cheapest.is_finite() {
        return 0.0;
    }
    (spec.initial_c - w.temp_c) * spec.capacity_wh_per_k() / 1000.0 * cheapest
}

fn finish_metrics(m: &mut SolarMetrics, house: &House, tick_us: &[f64], faults: u64) {
    m.net_cost_eur = m.import_cost_eur - m.export_revenue_eur;
    m.import_kwh = house.import_wh / 1000.0;
    m.export_kwh = house.export_wh / 1000.0;
    m.pv_kwh = house.pv_wh / 1000.0;
    m.consumption_kwh = house.consumption_wh / 1000.0;
    let used = (house.pv_wh - house.export_wh).max(0.0);
    m.self_consumption_pct = if house.pv_wh > 0.0 {
        100.0 * used / house.pv_wh
    } else {
        f64::NAN
    };
    m.self_sufficiency_pct = if house.consumption_wh > 0.0 {
        100.0 * used / house.consumption_wh
    } else {
        f64::NAN
    };
    m.loads = LoadId::ALL
        .iter()
        .map(|&l| {
            let (starts, splits) = house.starts_splits(l);
            let js = house.judgements.iter().filter(|j| j.load == l);
            LoadMetrics {
                id: l.id(),
                present: house.has(l),
                kwh: house.load_wh(l) / 1000.0,
                met: js.clone().filter(|j| j.met).count() as u32,
                missed: js.filter(|j| !j.met).count() as u32,
                starts,
                splits,
            }
        })
        .collect();
    m.faults = faults;
    m.tank_end_c = house.water_heater.as_ref().map_or(f64::NAN, |w| w.temp_c);
    let mut ticks: Vec<f64> = tick_us.to_vec();
    ticks.sort_by(f64::total_cmp);
    let q = |p: f64| {
        if ticks.is_empty() {
            f64::NAN
        } else {
            ticks[((ticks.len() - 1) as f64 * p).round() as usize] / 1000.0
        }
    };
    m.tick_median_ms = q(0.5);
    m.tick_p99_ms = q(0.99);
    m.tick_max_ms = q(1.0);
}

fn apply(
    out: &wit::Output,
    drives: &HashSet<String>,
    by_switch: &HashMap<String, LoadId>,
    house: &mut House,
    log: &dyn Fn(&'static str, String),
) {
    for call in &out.calls {
        let on = match (call.domain.as_str(), call.service.as_str()) {
            ("switch", "turn_on") => true,
            ("switch", "turn_off") => false,
            (d, s) => {
                log(
                    "warn",
                    format!("{d}.{s}: the house only has switches; ignored"),
                );
                continue;
            }
        };
        for e in &call.entity_ids {
            match by_switch.get(e) {
                Some(&l) if drives.contains(e) => house.relays[l.index()] = on,
                Some(_) => log("warn", format!("`{e}` is not driven by it: refused")),
                None => log(
                    "warn",
                    format!("`{e}` is not a relay of the house: refused"),
                ),
            }
        }
    }
}

/// Perfect forecasts (but `forecast_cloud_error`) from the start to
/// `forecast_h` past the end.
fn publish_forecasts(sc: &SolarScenario, house: &House, f: &Forecasts) -> anyhow::Result<()> {
    let from = sc.start_ms;
    let to = sc.end_ms + (sc.forecast_h * 3_600_000.0) as i64;
    let prices = sc
        .tariff
        .segments(from, to)
        .map_err(|e| anyhow::anyhow!("scenario tariff: {e}"))?;
    f.publish(
        forecast::PRICE,
        prices
            .iter()
            .map(|s| (s.start_ms, s.price.unwrap_or(f64::NAN)))
            .collect(),
    );
    f.publish(
        EXPORT_PRICE,
        vec![
            (from, sc.grid.export_price_eur_kwh),
            (to, sc.grid.export_price_eur_kwh),
        ],
    );
    let pv = match &house.pv {
        Some(pv) => pv.forecast(&house.weather, from, to, FORECAST_RES_S),
        None => vec![(from, 0.0), (to, 0.0)],
    };
    f.publish(PV_POWER, pv);
    f.publish(
        BASE_LOAD,
        house.base_load_forecast(from, to, FORECAST_RES_S),
    );
    let hour = 3_600_000;
    let temps = (from.div_euclid(hour)..=to.div_euclid(hour))
        .map(|h| (h * hour, house.weather.temperature_c(h * hour)))
        .collect();
    f.publish(forecast::OUTDOOR_TEMPERATURE, temps);
    Ok(())
}

/// Sends the store what changed since the last report.
#[derive(Default)]
struct Reporter {
    last: HashMap<String, String>,
}

impl Reporter {
    fn set(&mut self, store: &EntityStore, id: &str, state: String) -> anyhow::Result<()> {
        if self.last.get(id) != Some(&state) {
            store.set_state(id, state.clone(), Map::new())?;
            self.last.insert(id.to_string(), state);
        }
        Ok(())
    }

    fn report(
        &mut self,
        store: &EntityStore,
        house: &House,
        sc: &SolarScenario,
        t: i64,
        flows: Option<&crate::twin::solar_house::StepFlows>,
    ) -> anyhow::Result<()> {
        let f = flows.copied().unwrap_or_default();
        let onoff = |b: bool| if b { "on" } else { "off" }.to_string();
        let ts = |ms: Option<i64>| ms.map_or("unavailable".to_string(), iso8601);
        self.set(store, "sensor.pv_power", format!("{:.1}", f.pv_w))?;
        self.set(store, "sensor.pv_energy", format!("{:.1}", house.pv_wh))?;
        self.set(
            store,
            "sensor.grid_power",
            format!("{:.1}", f.import_w - f.export_w),
        )?;
        self.set(
            store,
            "sensor.grid_import_energy",
            format!("{:.1}", house.import_wh),
        )?;
        self.set(
            store,
            "sensor.grid_export_energy",
            format!("{:.1}", house.export_wh),
        )?;
        self.set(store, "sensor.tariff_period", sc.period_at(t).into())?;
        self.set(
            store,
            "sensor.tariff_price",
            format!("{:.4}", sc.price_at(t)),
        )?;
        for l in LoadId::ALL.into_iter().filter(|&l| house.has(l)) {
            let id = l.id();
            self.set(
                store,
                &format!("switch.{id}"),
                onoff(house.relays[l.index()]),
            )?;
            self.set(
                store,
                &format!("sensor.{id}_power"),
                format!("{:.1}", f.loads_w[l.index()]),
            )?;
            self.set(
                store,
                &format!("sensor.{id}_energy"),
                format!("{:.1}", house.load_wh(l)),
            )?;
        }
        if let Some(w) = &house.water_heater {
            self.set(
                store,
                "sensor.water_heater_temperature",
                format!("{:.2}", w.temp_c),
            )?;
        }
        for l in [LoadId::WashingMachine, LoadId::Dishwasher] {
            if let Some(m) = house.machine(l) {
                let id = l.id();
                self.set(
                    store,
                    &format!("binary_sensor.{id}_ready"),
                    onoff(m.ready()),
                )?;
                let due = if m.loaded { m.deadline_ms } else { None };
                self.set(store, &format!("sensor.{id}_deadline"), ts(due))?;
            }
        }
        if let Some(e) = &house.ev {
            let soc = if e.plugged {
                format!("{:.1}", e.soc_pct)
            } else {
                "unavailable".into()
            };
            self.set(store, "sensor.ev_battery", soc)?;
            self.set(store, "binary_sensor.ev_plugged", onoff(e.plugged))?;
            self.set(store, "sensor.ev_departure", ts(e.departure_ms))?;
        }
        Ok(())
    }
}

fn register(store: &EntityStore, house: &House) -> anyhow::Result<()> {
    let device = |id: &str, name: &str, model: &str| Device {
        id: id.into(),
        name: name.into(),
        manufacturer: "Hearth".into(),
        model: model.into(),
        sw_version: None,
        via_device: None,
    };
    // `entity` with the contract's id, whatever its device's name.
    let entity = |dev: &str,
                  id: &str,
                  component: Component,
                  class: Option<&str>,
                  unit: Option<&str>,
                  state_class: Option<&str>| {
        let key = id.split_once('.').map_or(id, |(_, o)| o);
        let mut s = EntitySpec::new(dev, key, component);
        s.entity_id = id.to_string();
        s.device_class = class.map(String::from);
        s.unit = unit.map(String::from);
        s.state_class = state_class.map(String::from);
        store.upsert_entity(s)
    };
    use Component::{BinarySensor, Sensor, Switch};
    let power = (Some("power"), Some("W"), Some("measurement"));
    let energy = (Some("energy"), Some("Wh"), Some("total_increasing"));
    store.upsert_device("twin", device("pv", "PV", "PV inverter (simulated)"))?;
    store.upsert_device("twin", device("grid", "Grid", "grid meter (simulated)"))?;
    store.upsert_device("twin", device("tariff", "Tariff", "Tempo"))?;
    entity("pv", "sensor.pv_power", Sensor, power.0, power.1, power.2)?;
    entity(
        "pv",
        "sensor.pv_energy",
        Sensor,
        energy.0,
        energy.1,
        energy.2,
    )?;
    entity(
        "grid",
        "sensor.grid_power",
        Sensor,
        power.0,
        power.1,
        power.2,
    )?;
    entity(
        "grid",
        "sensor.grid_import_energy",
        Sensor,
        energy.0,
        energy.1,
        energy.2,
    )?;
    entity(
        "grid",
        "sensor.grid_export_energy",
        Sensor,
        energy.0,
        energy.1,
        energy.2,
    )?;
    entity("tariff", "sensor.tariff_period", Sensor, None, None, None)?;
    entity(
        "tariff",
        "sensor.tariff_price",
        Sensor,
        None,
        Some("EUR/kWh"),
        None,
    )?;
    for l in LoadId::ALL.into_iter().filter(|&l| house.has(l)) {
        let id = l.id();
        store.upsert_device("twin", device(id, id, "smart plug / contactor (simulated)"))?;
        entity(id, &format!("switch.{id}"), Switch, None, None, None)?;
        entity(
            id,
            &format!("sensor.{id}_power"),
            Sensor,
            power.0,
            power.1,
            power.2,
        )?;
        entity(
            id,
            &format!("sensor.{id}_energy"),
            Sensor,
            energy.0,
            energy.1,
            energy.2,
        )?;
    }
    if house.water_heater.is_some() {
        entity(
            "water_heater",
            "sensor.water_heater_temperature",
            Sensor,
            Some("temperature"),
            Some("°C"),
            Some("measurement"),
        )?;
    }
    for l in [LoadId::WashingMachine, LoadId::Dishwasher] {
        if house.has(l) {
            let id = l.id();
            entity(
                id,
                &format!("binary_sensor.{id}_ready"),
                BinarySensor,
                None,
                None,
                None,
            )?;
            entity(
                id,
                &format!("sensor.{id}_deadline"),
                Sensor,
                Some("timestamp"),
                None,
                None,
            )?;
        }
    }
    if house.ev.is_some() {
        entity(
            "ev",
            "sensor.ev_battery",
            Sensor,
            Some("battery"),
            Some("%"),
            Some("measurement"),
        )?;
        entity(
            "ev",
            "binary_sensor.ev_plugged",
            BinarySensor,
            Some("plug"),
            None,
            None,
        )?;
        entity(
            "ev",
            "sensor.ev_departure",
            Sensor,
            Some("timestamp"),
            None,
            None,
        )?;
    }
    Ok(())
}
