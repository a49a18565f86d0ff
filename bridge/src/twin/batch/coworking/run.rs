//! One strategy in the coworking space, in virtual time, through the same
//! plugin host as live (`plugins::prepare`, [`PluginInstance`] with its
//! limits) on a [`Clock::manual`] with a real [`EntityStore`].
//!
//! Each step of `step_s` (1 s by default, the strategies' tick):
//! 1. arrivals and departures ([`Space::people`]);
//! 2. the space reports what changed: per outlet its switch (`on`/`off`),
//!    current (A, 0.01) and power (W, 0.1); per seat the battery of the
//!    laptop on it (%, whole numbers as HASS.Agent sends; `unavailable`
//!    when the seat is empty); `sensor.tariff_period` (`HP`/`HC`) and
//!    `binary_sensor.coworking_open` from the `.ics` opening hours;
//! 3. those changes reach the plugin's `on-state`, then its `tick` when due;
//! 4. its `switch.turn_on`/`turn_off` calls move the relays (a call on an
//!    entity it does not drive is refused, as live);
//! 5. the space steps: laptops charge or drain, breakers carry the
//!    outlets' currents and may trip (reset by hand later).
//!
//! A fault is counted and a fresh instance takes over, the relays hold.

use super::scenario::{CoworkingScenario, OPEN_SENSOR, PERIOD_SENSOR};
use crate::clock::Clock;
use crate::entity::{Component, Device, EntitySpec, EntityStore, StoreEvent};
use crate::forecast::Forecasts;
use crate::plugins::engine::{PluginEngine, wit};
use crate::plugins::logbook::{LogBook, LogLine};
use crate::plugins::prepare::{self, HostServices};
use crate::plugins::runner::to_wit_change;
use crate::twin::batch::ControllerRun;
use crate::twin::coworking::{Laptop, Presence, Space, SpaceSpec};
use anyhow::Context;
use serde_json::Map;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A row of the steps CSV and the plot, every this many s.
pub const ROW_EVERY_S: f64 = 60.0;
const MAX_ROUNDS: usize = 4;

/// A sampled instant.
#[derive(Debug, Clone)]
pub struct Row {
    pub t_ms: i64,
    pub period: &'static str,
    pub open: bool,
    /// A through the wall circuit, then each strip.
    pub circuit_a: f64,
    pub strips_a: Vec<f64>,
    pub plugged: usize,
    pub relays_on: usize,
    /// Mean and lowest battery of the plugged laptops, % (NaN: none).
    pub mean_battery_pct: f64,
    pub min_battery_pct: f64,
}

/// Limit violations of one breaker node: current above its rating.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Violations {
    pub name: String,
    pub limit_a: f64,
    /// Episodes (a step over after one not over).
    pub count: u64,
    pub seconds: f64,
    /// Largest current above the limit, A.
    pub max_overshoot_a: f64,
    pub trips: u64,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CoworkingMetrics {
    /// Wall circuit first, then the strips.
    pub nodes: Vec<Violations>,
    pub requested_kwh: f64,
    pub delivered_kwh: f64,
    pub laptops: usize,
    /// Judged when they leave (or at the end, for those still there).
    pub at_target: usize,
    pub lowest_plugged_pct: f64,
    pub jain_gain: f64,
    pub relay_switches_per_h: f64,
    pub cost_eur: f64,
    pub faults: u64,
}

impl CoworkingMetrics {
    pub fn violation_count(&self) -> u64 {
        self.nodes.iter().map(|n| n.count).sum()
    }
    pub fn trips(&self) -> u64 {
        self.nodes.iter().map(|n| n.trips).sum()
    }
    /// Seconds over a rating, summed over the wall circuit and the strips.
    pub fn seconds_over(&self) -> f64 {
        self.nodes.iter().map(|n| n.seconds).sum()
    }
    /// The largest overshoot of any node, A.
    pub fn max_overshoot_a(&self) -> f64 {
        self.nodes
            .iter()
            .map(|n| n.max_overshoot_a)
            .fold(0.0, f64::max)
    }
    pub fn at_target_share(&self) -> f64 {
        if self.laptops == 0 {
            return f64::NAN;
        }
        self.at_target as f64 / self.laptops as f64
    }
}

/// Each laptop at the end: for the per-laptop table.
#[derive(Debug, Clone)]
pub struct LaptopOutcome {
    pub name: String,
    pub initial_pct: f64,
    pub final_pct: f64,
    pub target_pct: f64,
    pub min_plugged_pct: f64,
    pub wall_wh: f64,
    /// Arrival and departure, and the departure its user told (ms).
    pub arrive_ms: i64,
    pub leave_ms: i64,
    pub declared_leave_ms: Option<i64>,
}

pub struct CoworkingOutcome {
    pub label: String,
    pub plugin: String,
    pub rows: Vec<Row>,
    pub metrics: CoworkingMetrics,
    pub laptops: Vec<LaptopOutcome>,
    pub faults: Vec<String>,
    pub log: Vec<LogLine>,
    pub tick_us: Vec<f64>,
    pub wall: Duration,
}

/// Entity ids of outlet `key`: switch, current, power, seat battery,
/// seat departure (the occupant's declared departure, `device_class:
/// timestamp`).
pub fn entity_ids(key: &str) -> [String; 5] {
    [
        format!("switch.{key}"),
        format!("sensor.{key}_current"),
        format!("sensor.{key}_power"),
        format!("sensor.{key}_battery"),
        format!("sensor.{key}_departure"),
    ]
}

pub fn run(
    sc: &CoworkingScenario,
    engine: &PluginEngine,
    ctl: &ControllerRun,
    on_step: &(dyn Fn() + Sync),
) -> anyhow::Result<CoworkingOutcome> {
    let wall_start = Instant::now();
    let step_ms = (sc.step_s * 1000.0).round() as i64;
    let (clock, hand) = Clock::manual(sc.start_ms);
    let store = EntityStore::new(clock);
    let laptops = sc.laptops.iter().cloned().map(Laptop::new).collect();
    let mut space = Space::new(sc.space.clone(), laptops)?;
    register(&store, &space)?;
    let forecasts = Arc::new(Forecasts::default());
    let logs = Arc::new(LogBook::default());
    let host = HostServices {
        store: &store,
        logs: &logs,
        forecasts: &forecasts,
    };
    let mut reporter = Reporter::default();
    reporter.report(&store, &space, sc, sc.start_ms)?;
    let (_, mut events) = store.subscribe();
    let prepared = prepare::prepare(engine, ctl.plugin.clone(), &host)
        .with_context(|| format!("controller `{}`", ctl.label))?;
    let desc = prepared.desc.clone();
    let tick_ms = prepared.tick_ms() as i64;
    let reads: HashSet<String> = desc.reads.iter().cloned().collect();
    let drives: HashSet<String> = desc.drives.iter().cloned().collect();
    let by_switch: HashMap<String, usize> = space
        .outlets
        .iter()
        .enumerate()
        .map(|(i, o)| (format!("switch.{}", o.key), i))
        .collect();
    let mut instance = prepared.instance;
    let mut faults = Vec::new();
    let mut tick_us = Vec::new();
    let mut nodes: Vec<Violations> = std::iter::once((space.root, "wall".to_string()))
        .chain(
            space
                .strips
                .iter()
                .enumerate()
                .map(|(i, n)| (*n, SpaceSpec::strip_id(i))),
        )
        .map(|(n, name)| Violations {
            name,
            limit_a: space
                .tree
                .breaker(n)
                .map_or(f64::NAN, |b| b.spec().rating_a),
            ..Violations::default()
        })
        .collect();
    let mut over_before = vec![false; nodes.len()];
    let mut rows = Vec::new();
    let mut next_row = sc.start_ms;
    let mut cost = 0.0;
    let mut next_tick = (tick_ms > 0).then_some(sc.start_ms);
    let log = |level: &'static str, message: String| {
        logs.push(
            &ctl.label,
            LogLine {
                time_ms: clock.now_ms(),
                level,
                source: "host",
                message,
            },
        );
    };
    let mut t = sc.start_ms;
    while t < sc.end_ms {
        hand.set(t);
        space.people(t);
        reporter.report(&store, &space, sc, t)?;
        let mut faulted = false;
        for round in 0..MAX_ROUNDS {
            let mut outs: Vec<Result<wit::Output, _>> = Vec::new();
            while let Ok(ev) = events.try_recv() {
                let StoreEvent::StateChanged(change) = ev else {
                    continue;
                };
                // After a trap the instance cannot be entered again (each
                // further call would count another fault): the rest of the
                // changes are dropped, the fresh instance reads states.
                let trapped = outs.last().is_some_and(|o| o.is_err());
                if !faulted && !trapped && reads.contains(&change.entity_id) {
                    outs.push(instance.on_state(&to_wit_change(&change)));
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
                tick_us.push(started.elapsed().as_secs_f64() * 1e6);
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
                    Ok(o) => apply(&o, &drives, &by_switch, &mut space, &log),
                    Err(fault) => {
                        faults.push(format!("{}: {fault}", crate::clock::iso8601(t)));
                        log("error", format!("faulted: {fault}; the relays hold"));
                        faulted = true;
                    }
                }
            }
            reporter.report(&store, &space, sc, t)?;
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

        // What flows during the step, per node.
        let mut strip_a = vec![0.0; space.strips.len()];
        for o in 0..space.outlets.len() {
            strip_a[space.outlets[o].strip] += space.metered(o).0;
        }
        let circuit_a: f64 = strip_a.iter().sum();
        for (k, amps) in std::iter::once(circuit_a)
            .chain(strip_a.iter().copied())
            .enumerate()
        {
            let v = &mut nodes[k];
            let over = amps > v.limit_a + 1e-9;
            if over {
                if !over_before[k] {
                    v.count += 1;
                }
                v.seconds += sc.step_s;
                v.max_overshoot_a = v.max_overshoot_a.max(amps - v.limit_a);
            }
            over_before[k] = over;
        }
        if t >= next_row {
            rows.push(row(&space, sc, t, circuit_a, strip_a));
            next_row += (ROW_EVERY_S * 1000.0) as i64;
        }
        let wh: f64 = space.step(t, sc.step_s).iter().sum();
        cost += wh / 1000.0 * sc.price_at(t);
        on_step();
        t += step_ms;
    }
    space.people(sc.end_ms);
    for (_, trip) in &space.trips {
        if let Some(v) = nodes.iter_mut().find(|v| v.name == trip.name) {
            v.trips += 1;
        }
    }
    let hours = (sc.end_ms - sc.start_ms) as f64 / 3.6e6;
    let metrics = metrics(&space, nodes, hours, cost, faults.len() as u64);
    let laptops = space
        .laptops
        .iter()
        .map(|l| LaptopOutcome {
            name: l.spec.name.clone(),
            initial_pct: l.spec.initial_pct,
            final_pct: l.soc_pct,
            target_pct: l.spec.target_pct,
            min_plugged_pct: l.min_plugged_pct,
            wall_wh: l.wall_wh,
            arrive_ms: l.spec.arrive_ms,
            leave_ms: l.spec.leave_ms,
            declared_leave_ms: l.spec.declared_leave_ms,
        })
        .collect();
    Ok(CoworkingOutcome {
        label: ctl.label.clone(),
        plugin: format!("{} {}", desc.name, desc.version),
        rows,
        metrics,
        laptops,
        faults,
        log: logs.tail(&prepared.cfg.name, usize::MAX),
        tick_us,
        wall: wall_start.elapsed(),
    })
}

fn apply(
    out: &wit::Output,
    drives: &HashSet<String>,
    by_switch: &HashMap<String, usize>,
    space: &mut Space,
    log: &dyn Fn(&'static str, String),
) {
    for call in &out.calls {
        let on = match (call.domain.as_str(), call.service.as_str()) {
            ("switch", "turn_on") => true,
            ("switch", "turn_off") => false,
            (d, s) => {
                log(
                    "warn",
                    format!("{d}.{s}: the space only has switches; ignored"),
                );
                continue;
            }
        };
        for e in &call.entity_ids {
            match by_switch.get(e) {
                Some(&o) if drives.contains(e) => {
                    space.set_relay(o, on);
                }
                Some(_) => log("warn", format!("`{e}` is not driven by it: refused")),
                None => log("warn", format!("`{e}` is not an outlet of the space")),
            }
        }
    }
}

fn row(space: &Space, sc: &CoworkingScenario, t: i64, circuit_a: f64, strips_a: Vec<f64>) -> Row {
    let plugged: Vec<f64> = space
        .presence
        .iter()
        .zip(&space.laptops)
        .filter(|(p, _)| matches!(p, Presence::Plugged(_)))
        .map(|(_, l)| l.soc_pct)
        .collect();
    let (mean, min) = if plugged.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (
            plugged.iter().sum::<f64>() / plugged.len() as f64,
            plugged.iter().copied().fold(f64::INFINITY, f64::min),
        )
    };
    Row {
        t_ms: t,
        period: sc.period_at(t),
        open: sc.open_at(t),
        circuit_a,
        strips_a,
        plugged: plugged.len(),
        relays_on: space
            .outlets
            .iter()
            .filter(|o| o.relay_on && !o.lamp)
            .count(),
        mean_battery_pct: mean,
        min_battery_pct: min,
    }
}

fn metrics(
    space: &Space,
    nodes: Vec<Violations>,
    hours: f64,
    cost_eur: f64,
    faults: u64,
) -> CoworkingMetrics {
    let came: Vec<&Laptop> = space
        .laptops
        .iter()
        .zip(&space.presence)
        .filter(|(_, p)| !matches!(p, Presence::NotYet))
        .map(|(l, _)| l)
        .collect();
    let gains: Vec<f64> = came
        .iter()
        .map(|l| (l.soc_pct - l.spec.initial_pct).max(0.0))
        .collect();
    let (s, s2) = gains
        .iter()
        .fold((0.0, 0.0), |(s, s2), g| (s + g, s2 + g * g));
    let jain = if s2 > 0.0 {
        s * s / (gains.len() as f64 * s2)
    } else {
        f64::NAN
    };
    let switches: u64 = space
        .outlets
        .iter()
        .filter(|o| !o.lamp)
        .map(|o| o.switches)
        .sum();
    CoworkingMetrics {
        nodes,
        requested_kwh: came.iter().map(|l| l.requested_wh()).sum::<f64>() / 1000.0,
        delivered_kwh: came.iter().map(|l| l.wall_wh).sum::<f64>() / 1000.0,
        laptops: came.len(),
        at_target: came
            .iter()
            .filter(|l| l.soc_pct >= l.spec.target_pct - 1e-9)
            .count(),
        lowest_plugged_pct: came
            .iter()
            .filter(|l| l.seated)
            .map(|l| l.min_plugged_pct)
            .fold(f64::NAN, f64::min),
        jain_gain: jain,
        relay_switches_per_h: switches as f64 / hours,
        cost_eur,
        faults,
    }
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
        space: &Space,
        sc: &CoworkingScenario,
        t: i64,
    ) -> anyhow::Result<()> {
        for o in 0..space.outlets.len() {
            let out = &space.outlets[o];
            let [switch, current, power, battery, departure] = entity_ids(&out.key);
            let (a, w) = space.metered(o);
            self.set(
                store,
                &switch,
                if out.relay_on { "on" } else { "off" }.into(),
            )?;
            self.set(store, &current, format!("{a:.2}"))?;
            self.set(store, &power, format!("{w:.1}"))?;
            if !out.lamp {
                let b = out.occupant.map_or("unavailable".to_string(), |l| {
                    format!("{:.0}", space.laptops[l].soc_pct.floor())
                });
                self.set(store, &battery, b)?;
                let d = out
                    .occupant
                    .and_then(|l| space.laptops[l].spec.declared_leave_ms)
                    .map_or("unavailable".to_string(), crate::clock::iso8601);
                self.set(store, &departure, d)?;
            }
        }
        self.set(store, PERIOD_SENSOR, sc.period_at(t).into())?;
        let open = if sc.open_at(t) { "on" } else { "off" };
        self.set(store, OPEN_SENSOR, open.into())
    }
}

fn register(store: &EntityStore, space: &Space) -> anyhow::Result<()> {
    let device = |id: &str, name: &str, model: &str| Device {
        id: id.into(),
        name: name.into(),
        manufacturer: "Hearth".into(),
        model: model.into(),
        sw_version: None,
        via_device: None,
    };
    for s in 0..space.strips.len() {
        let id = SpaceSpec::strip_id(s);
        store.upsert_device("twin", device(&id, &id, "metered relay strip (simulated)"))?;
    }
    store.upsert_device("twin", device("coworking", "Coworking", "coworking space"))?;
    store.upsert_device("twin", device("tariff", "Tariff", "Tempo"))?;
    for (i, o) in space.outlets.iter().enumerate() {
        let dev = SpaceSpec::strip_id(o.strip);
        let stem = o.key.strip_prefix(&format!("{dev}_")).unwrap_or(&o.key);
        store.upsert_entity(EntitySpec::new(&dev, stem, Component::Switch))?;
        let mut cur = EntitySpec::new(&dev, &format!("{stem}_current"), Component::Sensor);
        cur.device_class = Some("current".into());
        cur.unit = Some("A".into());
        let mut pow = EntitySpec::new(&dev, &format!("{stem}_power"), Component::Sensor);
        pow.device_class = Some("power".into());
        pow.unit = Some("W".into());
        let mut bat = EntitySpec::new(&dev, &format!("{stem}_battery"), Component::Sensor);
        bat.device_class = Some("battery".into());
        bat.unit = Some("%".into());
        let mut dep = EntitySpec::new(&dev, &format!("{stem}_departure"), Component::Sensor);
        dep.device_class = Some("timestamp".into());
        for spec in [cur, pow, bat, dep] {
            store.upsert_entity(spec)?;
        }
        debug_assert!(store.spec(&entity_ids(&space.outlets[i].key)[3]).is_some());
    }
    store.upsert_entity(EntitySpec::new("tariff", "period", Component::Sensor))?;
    store.upsert_entity(EntitySpec::new(
        "coworking",
        "open",
        Component::BinarySensor,
    ))?;
    Ok(())
}
