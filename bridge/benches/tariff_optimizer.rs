//! Tariff optimizer plan time inside WASM beside the same problems solved
//! natively (`cargo bench -p hearth --bench tariff_optimizer`), issue 15.
//!
//! `builtin:tariff-optimizer` runs through the production host (fuel
//! metering and epoch deadline on, every reading through `get-state`,
//! forecasts through the host's `forecast` import) with four loads: a
//! water heater (thermal), a washing machine (sequence: loaded, deadline
//! tomorrow afternoon), an EV (battery: plugged, departure tomorrow
//! morning) and a pool pump (`deferrable`: semi-continuous, min on/off,
//! at most two starts in tomorrow's window). Forecasts (`price` Tempo-like
//! HP/HC, `export-price`, `pv-power` a clear-sky bell, `base-load`) cover
//! the bench's whole span plus 48 h. Two plans: 48 h × 30 min and
//! 24 h × 15 min.
//!
//! Each `tick` (the whole re-plan as the host sees it: reading the
//! entities and forecasts, building the problem, solving, driving the
//! relays, publishing the EMHASS entities with the problem as JSON) is
//! timed over [`TICKS`] ticks after [`WARM_UP`]; the clock moves by
//! `replan_s` between ticks, the relays follow the plugin's commands and
//! the tank and the EV's battery move with them, so every tick solves a
//! new problem. The problem each tick solved (`optim_status`'s `problem`
//! attribute, `expose_problem: true`) is then solved natively by the
//! plugin's own planner (`hearth_tariff_optimizer::planner::plan`, same
//! node limit): one run per tick's problem, so both distributions are over
//! the same 50 problems. The bench panics unless every native objective
//! equals the plugin's within 1e-6 relative. Not a test: figures for
//! BENCHMARKS.md.

use hearth::clock::{Clock, iso8601};
use hearth::entity::{Component, Device, EntitySpec, EntityStore};
use hearth::forecast::Forecasts;
use hearth::plugins::engine::{HostState, MemoryCap, PluginEngine, wit};
use hearth::plugins::instance::PluginInstance;
use hearth::plugins::{Limits, builtin};
use hearth_tariff_optimizer::model::{self, ModelOptions, VarKind};
use hearth_tariff_optimizer::planner;
use hearth_tariff_optimizer::problem::Problem;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const WARM_UP: usize = 3;
const TICKS: usize = 50;
const REPLAN_S: i64 = 300;
const NODE_LIMIT: u64 = 20_000;
/// Local time = UTC + 60 min (France in winter).
const OFFSET_MIN: i64 = 60;
/// 2026-01-15T19:31:00Z = 20:31 local: evening peak hours (HP until
/// 22:00), the machine loaded, the EV just plugged in. The ticks run to
/// about 00:56 local.
const START_MS: i64 = 1_768_505_460_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;
/// The tank: 200 l, 2400 W element, 1.8 W/K loss in 18 °C air.
const TANK_WH_PER_K: f64 = 200.0 * 1.163;

struct Case {
    what: &'static str,
    step_s: u32,
    horizon_h: f64,
}

/// One case's figures.
struct Figures {
    what: &'static str,
    steps: usize,
    /// Model size of the last problem: variables (of which integer or
    /// binary) and rows.
    vars: usize,
    ints: usize,
    rows: usize,
    loads: (usize, usize),
    wasm_ms: Vec<f64>,
    native_ms: Vec<f64>,
    fuel: Vec<u64>,
    nodes: Vec<u64>,
    statuses: BTreeMap<String, usize>,
    objective_max_rel_diff: f64,
    /// Relay commands, `HH:MM service entity` (local).
    commands: Vec<String>,
    warnings: usize,
}

fn main() {
    let engine = PluginEngine::new().unwrap();
    let pre = engine
        .load(&builtin::load_bytes("builtin:tariff-optimizer").unwrap())
        .unwrap()
        .pre;
    let cases = [
        Case {
            what: "48 h × 30 min",
            step_s: 1800,
            horizon_h: 48.0,
        },
        Case {
            what: "24 h × 15 min",
            step_s: 900,
            horizon_h: 24.0,
        },
    ];
    let figures: Vec<Figures> = cases.iter().map(|c| run(&engine, &pre, c)).collect();
    print_table(&figures);
}

fn run(
    engine: &PluginEngine,
    pre: &hearth::plugins::engine::ControllerPre<HostState>,
    case: &Case,
) -> Figures {
    let (clock, time) = Clock::manual(START_MS);
    let store = EntityStore::new(clock);
    house(&store);
    let forecasts = Arc::new(Forecasts::default());
    publish_forecasts(&forecasts);
    let logs: Arc<hearth::plugins::logbook::LogBook> = Default::default();
    let limits = Limits {
        memory_mib: 128,
        call_timeout_ms: 60_000,
        fuel_per_call: 20_000_000_000,
        ..Limits::default()
    };
    let state = HostState {
        plugin: "bench".into(),
        store: store.clone(),
        clock,
        limiter: MemoryCap::new((limits.memory_mib as usize) << 20),
        logs: logs.clone(),
        forecasts,
        time: Default::default(),
        outcomes: Default::default(),
    };
    let mut inst = PluginInstance::new(&engine.engine, pre, state, &limits).unwrap();
    inst.init(&config(case).to_string()).unwrap();

    let mut wasm_ms = Vec::with_capacity(TICKS);
    let mut fuel = Vec::with_capacity(TICKS);
    let mut nodes = Vec::with_capacity(TICKS);
    let mut statuses = BTreeMap::new();
    // (problem, plugin's objective, model options) per timed tick.
    let mut solved: Vec<(Problem, f64, ModelOptions)> = Vec::with_capacity(TICKS);
    let mut commands = Vec::new();
    let mut sim = Sim::default();
    for k in 0..WARM_UP + TICKS {
        let now = START_MS + k as i64 * REPLAN_S * 1000;
        time.set(now);
        if k > 0 {
            sim.advance(&store, now, REPLAN_S as f64);
        }
        let t = Instant::now();
        let out = inst
            .tick(now)
            .unwrap_or_else(|f| panic!("{}: tick {k} faulted: {f}", case.what));
        let dt = t.elapsed().as_secs_f64() * 1e3;
        for c in apply(&store, &out) {
            let m = (now + OFFSET_MIN * MIN).rem_euclid(DAY) / MIN;
            commands.push(format!("{:02}:{:02} {c}", m / 60, m % 60));
        }
        if k < WARM_UP {
            continue;
        }
        wasm_ms.push(dt);
        fuel.push(inst.stats.fuel_last);
        let (status, attrs) = optim_status(&out)
            .unwrap_or_else(|| panic!("{}: tick {k} published no optim_status", case.what));
        *statuses.entry(status).or_insert(0) += 1;
        nodes.push(attrs["nodes"].as_u64().unwrap_or(0));
        let problem: Problem = serde_json::from_value(attrs["problem"].clone())
            .unwrap_or_else(|e| panic!("{}: `problem` attribute: {e}", case.what));
        let objective = attrs["objective"]
            .as_f64()
            .unwrap_or_else(|| panic!("{}: no numeric `objective` attribute", case.what));
        let mut opts = ModelOptions::default();
        if let Some(b) = attrs["thermal_on_off"].as_bool() {
            opts.thermal_on_off = b;
        }
        if let Some(b) = attrs["soft_ready"].as_bool() {
            opts.soft_ready = b;
        }
        solved.push((problem, objective, opts));
    }

    // Native: the plugin's planner on each tick's problem.
    let mut native_ms = Vec::with_capacity(TICKS);
    let mut max_rel = 0.0f64;
    for (i, (problem, objective, _)) in solved.iter().enumerate() {
        let t = Instant::now();
        let o = planner::plan(problem, NODE_LIMIT);
        native_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let rel = (o.objective - objective).abs() / objective.abs().max(1e-9);
        assert!(
            rel <= 1e-6,
            "{}: tick {i}: native objective {} ({}) differs from the plugin's {objective} \
             (relative {rel:e}): not the same problem",
            case.what,
            o.objective,
            o.status
        );
        max_rel = max_rel.max(rel);
    }
    let (last, _, opts) = solved.last().unwrap();
    let built = model::build_with(last, opts);
    let loads = solved.iter().map(|(p, _, _)| p.loads.len());
    let warnings = logs
        .tail("bench", usize::MAX)
        .iter()
        .filter(|l| l.level == "warn" || l.level == "error")
        .inspect(|l| eprintln!("{}: plugin {}: {}", case.what, l.level, l.message))
        .count();
    Figures {
        what: case.what,
        steps: last.steps,
        vars: built.model.vars.len(),
        ints: built
            .model
            .vars
            .iter()
            .filter(|v| v.kind != VarKind::Continuous)
            .count(),
        rows: built.model.rows.len(),
        loads: (loads.clone().min().unwrap(), loads.max().unwrap()),
        wasm_ms,
        native_ms,
        fuel,
        nodes,
        statuses,
        objective_max_rel_diff: max_rel,
        commands,
        warnings,
    }
}

fn config(case: &Case) -> Value {
    json!({
        "step_s": case.step_s, "horizon_h": case.horizon_h, "objective": "cost",
        "import_limit_w": 9000, "export_price": 0.04, "base_load_w": 400,
        "utc_offset_min": OFFSET_MIN, "replan_s": REPLAN_S, "node_limit": NODE_LIMIT,
        "tariff_period": "sensor.tariff_period", "expose_problem": true,
        "loads": [
            {"id": "water_heater", "kind": "thermal", "switch": "switch.water_heater",
             "power": "sensor.water_heater_power", "nominal_w": 2400,
             "temperature": "sensor.water_heater_temperature", "volume_l": 200,
             "loss_w_per_k": 1.8, "ambient_c": 18, "max_c": 65,
             "ready": [{"at": "06:30", "min_c": 50}, {"at": "19:30", "min_c": 50}],
             "draws": [{"at": "07:00", "wh": 3500}, {"at": "20:00", "wh": 3500}],
             "fixed_on": [["22:00", "06:00"]]},
            {"id": "washing_machine", "kind": "sequence", "switch": "switch.washing_machine",
             "power": "sensor.washing_machine_power",
             "ready": "binary_sensor.washing_machine_ready",
             "deadline": "sensor.washing_machine_deadline",
             "profile_w": [2000, 2000, 300, 300, 600, 100], "profile_step_s": 900,
             "fixed_start": "19:00"},
            {"id": "ev", "kind": "battery", "switch": "switch.ev", "power": "sensor.ev_power",
             "soc": "sensor.ev_battery", "plugged": "binary_sensor.ev_plugged",
             "deadline": "sensor.ev_departure", "capacity_wh": 40000, "max_w": 3700,
             "target_pct": 80, "efficiency": 0.9, "fixed_start": "18:00"},
            {"id": "pool_pump", "kind": "deferrable", "switch": "switch.pool_pump",
             "power": "sensor.pool_pump_power", "nominal_w": 1000, "hours": 3,
             "from": "08:00", "to": "20:00", "semi_continuous": true,
             "min_on_s": 3600, "min_off_s": 3600, "max_starts": 2, "fixed_start": "10:00"}
        ]
    })
}

/// Local midnight of the bench's first day (2026-01-15 00:00 local), ms.
fn local_midnight() -> i64 {
    let local = START_MS + OFFSET_MIN * MIN;
    local.div_euclid(DAY) * DAY - OFFSET_MIN * MIN
}

/// RFC 3339 in UTC of `local_midnight() + ms`.
fn at_local(ms: i64) -> String {
    iso8601(local_midnight() + ms)
}

/// The store: the contract's entities for the four loads, loaded,
/// plugged, tank at 47.5 °C.
fn house(store: &Arc<EntityStore>) {
    let set = |dev: &str, id: &str, c: Component, state: &str| {
        // Idempotent for the same device.
        store
            .upsert_device(
                "bench",
                Device {
                    id: dev.into(),
                    name: dev.into(),
                    manufacturer: "bench".into(),
                    model: "bench".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        let key = id.split_once('.').map_or(id, |(_, o)| o);
        let mut spec = EntitySpec::new(dev, key, c);
        spec.entity_id = id.into();
        store.upsert_entity(spec).unwrap();
        store.set_state(id, state, Map::new()).unwrap();
    };
    use Component::{BinarySensor, Sensor, Switch};
    set("tariff", "sensor.tariff_period", Sensor, "HP");
    for id in ["water_heater", "washing_machine", "ev", "pool_pump"] {
        set(id, &format!("switch.{id}"), Switch, "off");
        set(id, &format!("sensor.{id}_power"), Sensor, "0");
    }
    set(
        "water_heater",
        "sensor.water_heater_temperature",
        Sensor,
        "47.50",
    );
    set(
        "washing_machine",
        "binary_sensor.washing_machine_ready",
        BinarySensor,
        "on",
    );
    // Done by tomorrow 18:00 local.
    set(
        "washing_machine",
        "sensor.washing_machine_deadline",
        Sensor,
        &at_local(DAY + 18 * HOUR),
    );
    set("ev", "sensor.ev_battery", Sensor, "35");
    set("ev", "binary_sensor.ev_plugged", BinarySensor, "on");
    // Leaves tomorrow 07:30 local.
    set(
        "ev",
        "sensor.ev_departure",
        Sensor,
        &at_local(DAY + 7 * HOUR + 30 * MIN),
    );
}

/// Forecast series from a day before the start to 3 days after, 15 min
/// samples, in local time: Tempo-like prices (blue tomorrow, red the day
/// after: HC 22:00–06:00), a flat export price, a winter clear-sky PV
/// bell (3 kWp-ish, 08:00–17:30) and a base load with morning and
/// evening peaks.
fn publish_forecasts(f: &Forecasts) {
    let q = 15 * MIN;
    let from = local_midnight() - DAY;
    let to = local_midnight() + 4 * DAY;
    let times: Vec<i64> = (0..)
        .map(|k| from + k * q)
        .take_while(|&t| t < to)
        .collect();
    // (HC, HP) €/kWh per local day from `from`: white, blue (today),
    // blue, red, white.
    let tempo = [
        (0.1447, 0.1792),
        (0.1288, 0.1552),
        (0.1288, 0.1552),
        (0.1518, 0.6586),
        (0.1447, 0.1792),
    ];
    let local_h = |t: i64| ((t - local_midnight()).rem_euclid(DAY)) as f64 / HOUR as f64;
    let day = |t: i64| ((t - from).div_euclid(DAY)) as usize;
    let series = |v: &dyn Fn(i64) -> f64| times.iter().map(|&t| (t, v(t))).collect::<Vec<_>>();
    f.publish(
        "price",
        series(&|t| {
            let h = local_h(t);
            // The HC night belongs to the day it starts on (Tempo's day
            // runs 06:00 to 06:00).
            let d = if h < 6.0 {
                day(t).saturating_sub(1)
            } else {
                day(t)
            };
            let (hc, hp) = tempo[d.min(tempo.len() - 1)];
            if (6.0..22.0).contains(&h) { hp } else { hc }
        }),
    );
    f.publish("export-price", series(&|_| 0.04));
    f.publish(
        "pv-power",
        series(&|t| {
            // Mean over the 15 min sample.
            let h = local_h(t) + 0.125;
            if (8.0..17.5).contains(&h) {
                3000.0 * (std::f64::consts::PI * (h - 8.0) / 9.5).sin().powi(2)
            } else {
                0.0
            }
        }),
    );
    f.publish(
        "base-load",
        series(&|t| {
            let h = local_h(t);
            350.0
                + if (7.0..9.0).contains(&h) { 300.0 } else { 0.0 }
                + if (18.0..22.0).contains(&h) {
                    600.0
                } else {
                    0.0
                }
        }),
    );
}

/// The house between ticks: the tank heats while its relay is on and
/// loses heat, the EV charges while its relay is on, a started machine
/// runs its 90 min programme then is done, power sensors follow.
#[derive(Default)]
struct Sim {
    machine_on_s: f64,
}

impl Sim {
    fn advance(&mut self, store: &Arc<EntityStore>, _now: i64, dt_s: f64) {
        let on = |id: &str| store.get(id).is_some_and(|s| s.state == "on");
        let num = |id: &str| {
            store
                .get(id)
                .and_then(|s| s.state.parse::<f64>().ok())
                .unwrap()
        };
        let set = |id: &str, v: String| store.set_state(id, v, Map::new()).unwrap();
        let dt_h = dt_s / 3600.0;
        let heat = on("switch.water_heater");
        let mut temp = num("sensor.water_heater_temperature");
        temp += ((if heat { 2400.0 } else { 0.0 }) - 1.8 * (temp - 18.0)) * dt_h / TANK_WH_PER_K;
        set(
            "sensor.water_heater_temperature",
            format!("{:.2}", temp.min(65.0)),
        );
        set(
            "sensor.water_heater_power",
            format!("{}", if heat && temp < 65.0 { 2400 } else { 0 }),
        );
        let charge = on("switch.ev");
        let soc = num("sensor.ev_battery");
        let soc = if charge {
            (soc + 3700.0 * 0.9 * dt_h / 40_000.0 * 100.0).min(100.0)
        } else {
            soc
        };
        set("sensor.ev_battery", format!("{soc:.1}"));
        set(
            "sensor.ev_power",
            format!("{}", if charge { 3700 } else { 0 }),
        );
        let loaded = on("binary_sensor.washing_machine_ready");
        let running = loaded && on("switch.washing_machine");
        if running {
            self.machine_on_s += dt_s;
            if self.machine_on_s >= 5400.0 {
                set("binary_sensor.washing_machine_ready", "off".into());
                set("sensor.washing_machine_deadline", "unavailable".into());
            }
        }
        set(
            "sensor.washing_machine_power",
            format!("{}", if running { 2000 } else { 0 }),
        );
        set(
            "sensor.pool_pump_power",
            format!("{}", if on("switch.pool_pump") { 1000 } else { 0 }),
        );
    }
}

/// The relays follow the plugin's commands; returns them, `service
/// entity`.
fn apply(store: &Arc<EntityStore>, out: &wit::Output) -> Vec<String> {
    let mut done = Vec::new();
    for call in &out.calls {
        let on = call.service == "turn_on";
        for id in &call.entity_ids {
            store
                .set_state(id, if on { "on" } else { "off" }, Map::new())
                .unwrap();
            done.push(format!("{} {id}", call.service));
        }
    }
    done
}

fn optim_status(out: &wit::Output) -> Option<(String, Value)> {
    out.entities
        .iter()
        .find(|e| e.object_id == "optim_status")
        .map(|e| {
            (
                e.state.clone(),
                serde_json::from_str(&e.attributes).unwrap_or(Value::Null),
            )
        })
}

fn pct<T: Copy + PartialOrd>(v: &[T], p: f64) -> T {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * p).round() as usize]
}

fn print_table(figs: &[Figures]) {
    println!(
        "machine: {} cores; builtin:tariff-optimizer, 4 loads (thermal, sequence, battery, \
         deferrable), node limit {NODE_LIMIT}; {TICKS} ticks after {WARM_UP} warm-up, \
         clock +{REPLAN_S} s per tick",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!();
    println!(
        "| plan | steps | model (vars / int / rows) | WASM tick p50 | p99 | native plan p50 | p99 | WASM/native (p50) | fuel per tick (p50, max) | status | nodes (p50, max) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for f in figs {
        let status: Vec<String> = f
            .statuses
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect();
        println!(
            "| {} | {} | {} / {} / {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.2} | {:.2e}, {:.2e} | {} | {}, {} |",
            f.what,
            f.steps,
            f.vars,
            f.ints,
            f.rows,
            pct(&f.wasm_ms, 0.5),
            pct(&f.wasm_ms, 0.99),
            pct(&f.native_ms, 0.5),
            pct(&f.native_ms, 0.99),
            pct(&f.wasm_ms, 0.5) / pct(&f.native_ms, 0.5),
            pct(&f.fuel, 0.5) as f64,
            pct(&f.fuel, 1.0) as f64,
            status.join(", "),
            pct(&f.nodes, 0.5),
            pct(&f.nodes, 1.0),
        );
    }
    println!();
    for f in figs {
        println!(
            "{}: max WASM tick {:.1} ms, max native {:.1} ms; loads in the problem {}–{}; \
             objectives agree within {:.1e} relative on all {} problems; relay commands \
             (local time): [{}]; {} plugin warnings",
            f.what,
            pct(&f.wasm_ms, 1.0),
            pct(&f.native_ms, 1.0),
            f.loads.0,
            f.loads.1,
            f.objective_max_rel_diff,
            f.native_ms.len(),
            f.commands.join(", "),
            f.warnings,
        );
    }
}
