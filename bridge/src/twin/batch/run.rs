//! One controller in one scenario, in virtual time.
//!
//! The plugin is prepared, called and checked by the same code as live
//! (`plugins::prepare`, [`PluginInstance`] with its fuel, epoch and memory
//! limits, the `drives` allow-list); the entity store, forecasts and log
//! book are real ones on a [`Clock::manual`] clock. Only the transport is
//! gone: no MQTT, no threads, no waiting — the house's sensor readings go
//! straight into the store and the valve commands straight into the plant.
//!
//! Each step of `step_s`:
//! 1. the clock moves to `t`; the room and outdoor sensors report (0.01 °C);
//! 2. their state changes reach the plugin's `on-state` (entities it reads);
//! 3. a `tick` is due when `t` has reached the next tick time (ticks
//!    missed inside one long step are skipped, as a live timer does);
//! 4. valve commands are clamped to 0–100 % (the host's safety envelope)
//!    and applied; the valve entity reports its new position, which reaches
//!    the plugin too;
//! 5. the 5R1C zone steps from `t` to `t + step_s` with the valve held.
//!
//! A fault (trap, timeout, fuel, memory) is counted, the valve holds its
//! position (the live `hold` safe state), and a fresh instance takes over
//! at the next step, as the live runner restarts one (without its backoff:
//! virtual time does not wait).

use super::scenario::{OUTDOOR_SENSOR, ROOM_SENSOR, Scenario, VALVE};
use crate::clock::Clock;
use crate::entity::{Component, Device, EntitySpec, EntityStore, StoreEvent};
use crate::forecast::{self, Forecasts};
use crate::plugins::PluginConfig;
use crate::plugins::engine::{PluginEngine, wit};
use crate::plugins::instance::PluginInstance;
use crate::plugins::logbook::{LogBook, LogLine};
use crate::plugins::prepare::{self, HostServices};
use crate::plugins::runner::to_wit_change;
use crate::twin::building::{Building, Heater, ZoneInputs};
use anyhow::Context;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DEVICE: &str = "house";
/// How far past the end the forecasts reach (a 24 h horizon at the end).
const FORECAST_TAIL_MS: i64 = 2 * 86_400_000;
/// Rounds of state changes delivered per step (a command's echo, its
/// reaction …) before the step moves on.
const MAX_ROUNDS: usize = 4;

/// One step of the plant, as the per-step CSV shows it.
#[derive(Debug, Clone)]
pub struct StepRow {
    /// Start of the step, ms since the epoch.
    pub t_ms: i64,
    pub scored: bool,
    pub outdoor_c: f64,
    pub irradiance_w_m2: f64,
    /// €/kWh in force at the step's start.
    pub price_eur_kwh: f64,
    /// Mean air temperature over the step (ISO 13790's θ_air), °C.
    pub air_c: f64,
    /// Mass temperature at the end of the step, °C.
    pub mass_c: f64,
    /// Valve over the step, %.
    pub valve_pct: f64,
    pub heat_w: f64,
    pub energy_wh: f64,
    pub cost_eur: f64,
    /// States of the plugin's own entities after the step's calls.
    pub plugin_entities: Vec<String>,
}

/// What one run measured over the scored period.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Metrics {
    pub energy_kwh: f64,
    pub cost_eur: f64,
    /// Σ max(0, floor − θ_air)·Δt over the scored steps, K·h.
    pub degree_hours_below_floor: f64,
    pub comfort_floor_c: f64,
    pub min_c: f64,
    pub max_c: f64,
    pub mean_c: f64,
    /// Air temperature at the end of the last step, °C.
    pub end_c: f64,
    /// Steps whose valve position differs from the previous step's.
    pub valve_changes: u64,
    pub faults: u64,
    pub steps: u64,
}

/// Wall time of the plugin's calls, µs.
#[derive(Debug, Clone, Default)]
pub struct CallTimes {
    pub tick_us: Vec<f64>,
    pub on_state_us: Vec<f64>,
}

pub struct RunOutcome {
    pub label: String,
    /// `name version` the plugin describes itself as.
    pub plugin: String,
    pub rows: Vec<StepRow>,
    /// Object ids of the plugin's own entities (the rows' extra columns).
    pub entity_columns: Vec<String>,
    pub metrics: Metrics,
    pub faults: Vec<String>,
    pub log: Vec<LogLine>,
    pub times: CallTimes,
    pub wall: Duration,
}

/// The controller under test.
#[derive(Debug, Clone)]
pub struct ControllerRun {
    /// Column and file name in the results (`thermostat`, `mpc`).
    pub label: String,
    pub plugin: PluginConfig,
}

/// Runs `ctl` through the scenario; `on_step` is called after every step
/// (the progress bar).
pub fn run(
    scenario: &Scenario,
    engine: &PluginEngine,
    ctl: &ControllerRun,
    on_step: &(dyn Fn() + Sync),
) -> anyhow::Result<RunOutcome> {
    let wall_start = Instant::now();
    let begin_ms = scenario.start_ms - scenario.warmup_ms;
    let step_ms = (scenario.step_s * 1000.0).round() as i64;
    let (clock, hand) = Clock::manual(begin_ms);
    let store = EntityStore::new(clock);
    register_house(&store)?;
    let forecasts = Arc::new(Forecasts::default());
    publish_forecasts(
        scenario,
        &forecasts,
        begin_ms,
        scenario.end_ms + FORECAST_TAIL_MS,
    )?;
    let logs = Arc::new(LogBook::default());
    let host = HostServices {
        store: &store,
        logs: &logs,
        forecasts: &forecasts,
    };
    let house = &scenario.house;
    let mut building = Building::new(
        &house.zone,
        Heater::new(house.heater_w).with_time_constant(house.emitter_time_constant_s),
        house.initial_temperature_c,
        scenario.step_s,
    );
    let mut plant = Plant {
        store: &store,
        air_c: house.initial_temperature_c,
        valve_pct: 0.0,
    };
    plant.report_valve()?;
    let (_, mut events) = store.subscribe();

    let prepared = prepare::prepare(engine, ctl.plugin.clone(), &host)
        .with_context(|| format!("controller `{}`", ctl.label))?;
    let desc = prepared.desc.clone();
    let tick_ms = prepared.tick_ms() as i64;
    let reads: HashSet<String> = desc.reads.iter().cloned().collect();
    let drives: HashSet<String> = desc.drives.iter().cloned().collect();
    let entity_columns: Vec<String> = desc.entities.iter().map(|e| e.object_id.clone()).collect();
    let mut sim = Sim {
        label: &ctl.label,
        instance: prepared.instance,
        reads,
        drives,
        entity_columns: entity_columns.clone(),
        entity_states: BTreeMap::new(),
        faults: Vec::new(),
        times: CallTimes::default(),
        logs: &logs,
        clock,
    };
    let restart = |sim: &mut Sim| -> anyhow::Result<()> {
        sim.instance = prepare::instantiate(
            engine,
            &prepared.pre,
            &prepared.cfg.name,
            &host,
            &prepared.cfg,
            &prepared.config_json,
        )
        .map_err(|f| anyhow::anyhow!("controller `{}` could not restart: {f}", ctl.label))?;
        Ok(())
    };

    let mut rows = Vec::new();
    let mut next_tick = if tick_ms > 0 {
        Some(begin_ms + tick_ms)
    } else {
        None
    };
    let mut t = begin_ms;
    while t < scenario.end_ms {
        hand.set(t);
        let outdoor_c = scenario.weather.temperature_c(t).with_context(|| {
            format!(
                "the scenario's weather has no outdoor temperature at {}",
                crate::clock::iso8601(t)
            )
        })?;
        let irradiance = scenario.weather.irradiance_w_m2(t).unwrap_or(0.0).max(0.0);
        let price = scenario.price_at(t).with_context(|| {
            format!(
                "the scenario's tariff has no price at {}",
                crate::clock::iso8601(t)
            )
        })?;
        plant.report(outdoor_c)?;
        let mut faulted = false;
        for round in 0..MAX_ROUNDS {
            let mut delivered = false;
            while let Ok(ev) = events.try_recv() {
                let StoreEvent::StateChanged(change) = ev else {
                    continue;
                };
                if faulted || !sim.reads.contains(&change.entity_id) {
                    continue;
                }
                delivered = true;
                let started = Instant::now();
                let out = sim.instance.on_state(&to_wit_change(&change));
                sim.times
                    .on_state_us
                    .push(started.elapsed().as_secs_f64() * 1e6);
                faulted |= sim.apply(out, &mut plant)?;
            }
            if round == 0
                && !faulted
                && let Some(due) = next_tick
                && t >= due
            {
                let started = Instant::now();
                let out = sim.instance.tick(t);
                sim.times
                    .tick_us
                    .push(started.elapsed().as_secs_f64() * 1e6);
                faulted |= sim.apply(out, &mut plant)?;
                // The next tick after `t`: missed ones are skipped.
                let missed = (t - due) / tick_ms;
                next_tick = Some(due + (missed + 1) * tick_ms);
                delivered = true;
            }
            if !delivered {
                break;
            }
        }
        if faulted {
            restart(&mut sim)?;
            // What queued for the faulted instance is not replayed.
            while events.try_recv().is_ok() {}
        }

        building.heater.set_valve_percent(plant.valve_pct);
        let step = building.step(&ZoneInputs {
            outdoor_c,
            internal_gains_w: house.internal_gains_w,
            solar_gains_w: irradiance * house.solar_aperture_m2,
        });
        let heat_w = building.last_heat_w();
        let energy_wh = heat_w * scenario.step_s / 3600.0;
        plant.air_c = step.theta_air_c;
        rows.push(StepRow {
            t_ms: t,
            scored: t >= scenario.start_ms,
            outdoor_c,
            irradiance_w_m2: irradiance,
            price_eur_kwh: price,
            air_c: step.theta_air_c,
            mass_c: step.theta_m_next_c,
            valve_pct: plant.valve_pct,
            heat_w,
            energy_wh,
            cost_eur: energy_wh / 1000.0 * price,
            plugin_entities: sim.entity_row(),
        });
        on_step();
        t += step_ms;
    }
    let metrics = metrics(
        &rows,
        scenario.step_s / 3600.0,
        house.comfort_floor_c,
        sim.faults.len() as u64,
    );
    let plugin_name = format!("{} {}", desc.name, desc.version);
    let log = logs.tail(&prepared.cfg.name, usize::MAX);
    Ok(RunOutcome {
        label: ctl.label.clone(),
        plugin: plugin_name,
        rows,
        entity_columns,
        metrics,
        faults: sim.faults,
        log,
        times: sim.times,
        wall: wall_start.elapsed(),
    })
}

/// The house's side of the store: what its devices report.
struct Plant<'a> {
    store: &'a EntityStore,
    /// Last step's air temperature, °C.
    air_c: f64,
    valve_pct: f64,
}

impl Plant<'_> {
    fn report(&self, outdoor_c: f64) -> anyhow::Result<()> {
        self.store
            .set_state(ROOM_SENSOR, format!("{:.2}", self.air_c), Map::new())?;
        self.store
            .set_state(OUTDOOR_SENSOR, format!("{outdoor_c:.2}"), Map::new())?;
        Ok(())
    }

    /// HA's valve model: `open`/`closed` with `current_position` 0–100.
    fn report_valve(&self) -> anyhow::Result<()> {
        let position = self.valve_pct.round() as i64;
        let state = if position > 0 { "open" } else { "closed" };
        let mut attrs = Map::new();
        attrs.insert("current_position".into(), json!(position));
        self.store.set_state(VALVE, state, attrs)?;
        Ok(())
    }
}

struct Sim<'a> {
    label: &'a str,
    instance: PluginInstance,
    reads: HashSet<String>,
    drives: HashSet<String>,
    entity_columns: Vec<String>,
    entity_states: BTreeMap<String, String>,
    faults: Vec<String>,
    times: CallTimes,
    logs: &'a LogBook,
    clock: Clock,
}

impl Sim<'_> {
    fn log(&self, level: &'static str, message: String) {
        self.logs.push(
            self.label,
            LogLine {
                time_ms: self.clock.now_ms(),
                level,
                source: "host",
                message,
            },
        );
    }

    /// Applies one call's result; `Ok(true)` when the plugin faulted.
    fn apply(
        &mut self,
        out: Result<wit::Output, crate::plugins::instance::PluginFault>,
        plant: &mut Plant<'_>,
    ) -> anyhow::Result<bool> {
        let out = match out.and_then(|o| {
            crate::plugins::runner::check_output(&o)?;
            Ok(o)
        }) {
            Ok(o) => o,
            Err(fault) => {
                let at = crate::clock::iso8601(self.clock.now_ms());
                self.faults.push(format!("{at}: {fault}"));
                self.log("error", format!("faulted: {fault}; the valve holds"));
                return Ok(true);
            }
        };
        for call in out.calls {
            if let Some(bad) = call.entity_ids.iter().find(|e| !self.drives.contains(*e)) {
                self.log(
                    "warn",
                    format!(
                        "asked {}.{} on `{bad}`, which it does not drive: refused",
                        call.domain, call.service
                    ),
                );
                continue;
            }
            if !call.entity_ids.iter().any(|e| e == VALVE) {
                self.log(
                    "warn",
                    format!(
                        "{}.{} on {:?}: the simulated house has only {VALVE} to drive; ignored",
                        call.domain, call.service, call.entity_ids
                    ),
                );
                continue;
            }
            match valve_command(&call) {
                Ok(position) => {
                    plant.valve_pct = position;
                    plant.report_valve()?;
                }
                Err(why) => self.log("warn", why),
            }
        }
        for e in out.entities {
            if self.entity_columns.contains(&e.object_id) {
                self.entity_states.insert(e.object_id, e.state);
            }
        }
        Ok(false)
    }

    fn entity_row(&self) -> Vec<String> {
        self.entity_columns
            .iter()
            .map(|c| self.entity_states.get(c).cloned().unwrap_or_default())
            .collect()
    }
}

/// A valve service call → the position to apply, %, clamped to 0–100
/// (the safety envelope of a valve).
fn valve_command(call: &wit::ServiceCall) -> Result<f64, String> {
    let what = format!("{}.{}", call.domain, call.service);
    match (call.domain.as_str(), call.service.as_str()) {
        ("valve", "open_valve") => Ok(100.0),
        ("valve", "close_valve") => Ok(0.0),
        ("valve", "set_valve_position") => {
            let data: Value = serde_json::from_str(&call.service_data)
                .map_err(|e| format!("{what}: service_data is not JSON ({e})"))?;
            let position = data
                .get("position")
                .and_then(Value::as_f64)
                .filter(|p| p.is_finite())
                .ok_or_else(|| {
                    format!(
                        "{what}: expected service_data {{\"position\": 0–100}}, got {}",
                        call.service_data
                    )
                })?;
            Ok(position.clamp(0.0, 100.0))
        }
        _ => Err(format!("{what} is not a valve service the house knows")),
    }
}

fn register_house(store: &EntityStore) -> anyhow::Result<()> {
    store.upsert_device(
        "twin",
        Device {
            id: DEVICE.into(),
            name: "House (simulated)".into(),
            manufacturer: "Hearth".into(),
            model: "ISO 13790 5R1C zone".into(),
            sw_version: None,
            via_device: None,
        },
    )?;
    let mut temp = EntitySpec::new(DEVICE, "temperature", Component::Sensor);
    temp.device_class = Some("temperature".into());
    temp.unit = Some("°C".into());
    let mut outdoor = EntitySpec::new(DEVICE, "outdoor_temperature", Component::Sensor);
    outdoor.device_class = Some("temperature".into());
    outdoor.unit = Some("°C".into());
    let mut valve = EntitySpec::new(DEVICE, "heating", Component::Valve);
    valve.device_class = Some("water".into());
    for spec in [temp, outdoor, valve] {
        store.upsert_entity(spec)?;
    }
    debug_assert!(store.spec(ROOM_SENSOR).is_some() && store.spec(VALVE).is_some());
    Ok(())
}

/// Perfect forecasts: the tariff's own segments, the weather hourly.
fn publish_forecasts(
    scenario: &Scenario,
    forecasts: &Forecasts,
    from_ms: i64,
    to_ms: i64,
) -> anyhow::Result<()> {
    let prices = scenario
        .tariff
        .segments(from_ms, to_ms)
        .map_err(|e| anyhow::anyhow!("scenario tariff: {e}"))?;
    forecasts.publish(
        forecast::PRICE,
        prices
            .iter()
            .map(|s| (s.start_ms, s.price.unwrap_or(f64::NAN)))
            .collect(),
    );
    let hour = 3_600_000;
    let hours = (from_ms.div_euclid(hour)..=to_ms.div_euclid(hour) + 1).map(|h| h * hour);
    let (mut temp, mut sun) = (Vec::new(), Vec::new());
    for t in hours {
        temp.push((t, scenario.weather.temperature_c(t).unwrap_or(f64::NAN)));
        // Held for the hour that starts at t: its mean, not the instant.
        let mean = (0..4)
            .map(|q| {
                scenario
                    .weather
                    .irradiance_w_m2(t + q * hour / 4 + hour / 8)
            })
            .sum::<Option<f64>>()
            .map(|s| s / 4.0);
        sun.push((t, mean.unwrap_or(f64::NAN)));
    }
    forecasts.publish(forecast::OUTDOOR_TEMPERATURE, temp);
    forecasts.publish(forecast::SOLAR_IRRADIANCE, sun);
    Ok(())
}

fn metrics(rows: &[StepRow], step_h: f64, floor_c: f64, faults: u64) -> Metrics {
    let scored: Vec<&StepRow> = rows.iter().filter(|r| r.scored).collect();
    let mut m = Metrics {
        comfort_floor_c: floor_c,
        faults,
        steps: scored.len() as u64,
        min_c: f64::NAN,
        max_c: f64::NAN,
        mean_c: f64::NAN,
        end_c: scored.last().map_or(f64::NAN, |r| r.air_c),
        ..Metrics::default()
    };
    // The valve before the scored period counts as "previous" for its first step.
    let mut prev_valve = rows.iter().rev().find(|r| !r.scored).map(|r| r.valve_pct);
    let mut sum_c = 0.0;
    for r in &scored {
        m.energy_kwh += r.energy_wh / 1000.0;
        m.cost_eur += r.cost_eur;
        m.degree_hours_below_floor += (floor_c - r.air_c).max(0.0) * step_h;
        m.min_c = m.min_c.min(r.air_c);
        m.max_c = m.max_c.max(r.air_c);
        sum_c += r.air_c;
        if prev_valve.is_some_and(|p| (p - r.valve_pct).abs() >= 0.5) {
            m.valve_changes += 1;
        }
        prev_valve = Some(r.valve_pct);
    }
    if !scored.is_empty() {
        m.mean_c = sum_c / scored.len() as f64;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t_h: i64, scored: bool, air_c: f64, valve_pct: f64) -> StepRow {
        StepRow {
            t_ms: t_h * 3_600_000,
            scored,
            outdoor_c: 0.0,
            irradiance_w_m2: 0.0,
            price_eur_kwh: 0.5,
            air_c,
            mass_c: air_c,
            valve_pct,
            heat_w: valve_pct * 10.0,
            energy_wh: valve_pct * 10.0,
            cost_eur: valve_pct * 10.0 / 1000.0 * 0.5,
            plugin_entities: vec![],
        }
    }

    #[test]
    fn metrics_count_only_the_scored_period() {
        let rows = [
            row(0, false, 10.0, 100.0),
            row(1, true, 18.5, 100.0),
            row(2, true, 19.5, 0.0),
            row(3, true, 20.0, 0.0),
            row(4, true, 18.0, 50.0),
        ];
        let m = metrics(&rows, 1.0, 19.0, 0);
        assert_eq!(m.steps, 4);
        // 1000 + 0 + 0 + 500 Wh.
        assert!((m.energy_kwh - 1.5).abs() < 1e-12);
        assert!((m.cost_eur - 0.75).abs() < 1e-12);
        // 0.5 K·h at 18.5 °C + 1 K·h at 18.0 °C.
        assert!((m.degree_hours_below_floor - 1.5).abs() < 1e-12);
        assert_eq!((m.min_c, m.max_c, m.end_c), (18.0, 20.0, 18.0));
        // 100 → 100 (no), → 0, → 0 (no), → 50.
        assert_eq!(m.valve_changes, 2);
    }

    #[test]
    fn valve_commands_are_clamped_and_checked() {
        let call = |service: &str, data: &str| wit::ServiceCall {
            domain: "valve".into(),
            service: service.into(),
            entity_ids: vec![VALVE.into()],
            service_data: data.into(),
        };
        assert_eq!(
            valve_command(&call("set_valve_position", r#"{"position": 150}"#)),
            Ok(100.0)
        );
        assert_eq!(
            valve_command(&call("set_valve_position", r#"{"position": -3}"#)),
            Ok(0.0)
        );
        assert_eq!(valve_command(&call("open_valve", "{}")), Ok(100.0));
        let e = valve_command(&call("set_valve_position", r#"{"pos": 5}"#)).unwrap_err();
        assert!(e.contains("position"), "{e}");
        assert!(valve_command(&call("toggle", "{}")).is_err());
    }
}
