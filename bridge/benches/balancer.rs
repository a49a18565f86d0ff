//! Strip balancer tick time inside WASM (`cargo bench -p hearth --bench balancer`):
//! `builtin:strip-balancer` over 100 metered outlets on 10 strips under 10
//! circuits (a root and 9 sub-circuits), 90 laptops with battery and
//! departure sensors, through the production host (fuel metering and epoch deadline on, every
//! state read through the host's `get-state`). Each tick's switch calls are
//! applied to the store and the laptops' draw and batteries move, so the
//! plan keeps changing. Prints median and p99 of the `tick` call over 5 000
//! ticks (after 200 warm-up ticks). Not a test: figures for BENCHMARKS.md.

use hearth::clock::Clock;
use hearth::entity::{Component, Device, EntitySpec, EntityStore};
use hearth::plugins::engine::{HostState, MemoryCap, PluginEngine};
use hearth::plugins::instance::PluginInstance;
use hearth::plugins::{Limits, builtin};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

const STRIPS: usize = 10;
const PER_STRIP: usize = 10;
const TICKS: usize = 5_000;
const WARM_UP: usize = 200;
/// The bench's manual clock starts here, ms.
const START_MS: i64 = 1_796_000_000_000;

struct Outlet {
    switch: String,
    current: String,
    battery: Option<String>,
    /// Laptop battery, %; the lamp has none.
    level: f64,
}

fn main() {
    let (clock, time) = Clock::manual(START_MS);
    let store = EntityStore::new(clock);
    let (outlets, config) = space(&store);
    let engine = PluginEngine::new().unwrap();
    let pre = engine
        .load(&builtin::load_bytes("builtin:strip-balancer").unwrap())
        .unwrap()
        .pre;
    let state = HostState {
        plugin: "bench".into(),
        store: store.clone(),
        clock,
        limiter: MemoryCap::new(32 << 20),
        logs: Default::default(),
        forecasts: Default::default(),
        time: Default::default(),
        outcomes: Default::default(),
    };
    let mut inst = PluginInstance::new(&engine.engine, &pre, state, &Limits::default()).unwrap();
    inst.init(&config.to_string()).unwrap();
    let mut outlets = outlets;
    let mut times = Vec::with_capacity(TICKS);
    let (mut switches, mut fuel_max) = (0usize, 0u64);
    for k in 0..TICKS + WARM_UP {
        let now = clock.now_ms() + 1_000;
        time.set(now);
        let t = Instant::now();
        let out = inst.tick(now).unwrap();
        let dt = t.elapsed().as_secs_f64() * 1e6;
        if k >= WARM_UP {
            times.push(dt);
            fuel_max = fuel_max.max(inst.stats.fuel_last);
        }
        for call in &out.calls {
            let on = call.service == "turn_on";
            for id in &call.entity_ids {
                store
                    .set_state(id, if on { "on" } else { "off" }, Map::new())
                    .unwrap();
                switches += 1;
            }
        }
        laptops_move(&store, &mut outlets, k);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    println!(
        "machine: {} cores; strip-balancer, {} outlets / {STRIPS} strips / 10 circuits: \
         tick p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs over {TICKS} ticks \
         (max {fuel_max} fuel per tick; {switches} relay commands)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        outlets.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
}

/// The store's entities and the balancer's config.
fn space(store: &Arc<EntityStore>) -> (Vec<Outlet>, Value) {
    let mut circuits = vec![json!({"id": "mains", "max_current_a": 80.0})];
    for c in 1..10 {
        circuits.push(json!({"id": format!("c{c}"), "parent": "mains", "max_current_a": 16.0}));
    }
    let (mut strips, mut outlet_cfg, mut users, mut outlets) = (vec![], vec![], vec![], vec![]);
    for s in 0..STRIPS {
        let device = format!("strip-{s}");
        store
            .upsert_device(
                "bench",
                Device {
                    id: device.clone(),
                    name: device.clone(),
                    manufacturer: "bench".into(),
                    model: "bench".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        strips.push(
            json!({"id": device, "circuit": format!("c{}", 1 + s % 9), "max_current_a": 10.0}),
        );
        for o in 0..PER_STRIP {
            let entity = |key: String, c: Component, state: &str| {
                let spec = EntitySpec::new(&device, &key, c);
                let id = spec.entity_id.clone();
                store.upsert_entity(spec).unwrap();
                store.set_state(&id, state, Map::new()).unwrap();
                id
            };
            let switch = entity(format!("outlet_{o}"), Component::Switch, "off");
            let current = entity(format!("outlet_{o}_current"), Component::Sensor, "0");
            let lamp = o == 0;
            let mut cfg =
                json!({"switch": switch, "strip": device, "current": current, "always_on": lamp});
            let mut battery = None;
            let level = 5.0 + ((s * PER_STRIP + o) * 37 % 90) as f64;
            if !lamp {
                let user = format!("user_{s}_{o}");
                let b = entity(
                    format!("laptop_{o}_battery"),
                    Component::Sensor,
                    &format!("{level:.0}"),
                );
                // Every user tells when they leave (the departure path
                // reads one more state per outlet): 10–100 min after the
                // bench's start, so some become urgent while it runs.
                let leaves = START_MS + ((s * PER_STRIP + o) * 7 % 90 + 10) as i64 * 60_000;
                let d = entity(
                    format!("laptop_{o}_departure"),
                    Component::Sensor,
                    &hearth::clock::iso8601(leaves),
                );
                users.push(json!({"id": user, "battery": b, "departure": d}));
                cfg["user"] = json!(user);
                battery = Some(b);
            }
            outlet_cfg.push(cfg);
            outlets.push(Outlet {
                switch,
                current,
                battery,
                level,
            });
        }
    }
    let config = json!({
        "circuits": circuits, "strips": strips, "outlets": outlet_cfg, "users": users,
        "min_on_s": 60, "min_off_s": 30,
    });
    (outlets, config)
}

/// Each second: a laptop whose relay is on draws 0.3–1.9 A and gains
/// battery; one that is off loses a little; the lamp on each strip jumps
/// between 0.2 A and 6 A every 10 minutes (the shedding path).
fn laptops_move(store: &Arc<EntityStore>, outlets: &mut [Outlet], k: usize) {
    for (i, o) in outlets.iter_mut().enumerate() {
        let on = store.get(&o.switch).is_some_and(|s| s.state == "on");
        let amps = match (&o.battery, on) {
            (None, _) => {
                if (k / 600 + i).is_multiple_of(2) {
                    0.2
                } else {
                    6.0
                }
            }
            (Some(_), true) => 0.3 + (i % 9) as f64 * 0.2,
            (Some(_), false) => 0.0,
        };
        store
            .set_state(&o.current, format!("{amps:.2}"), Map::new())
            .unwrap();
        if let Some(b) = &o.battery {
            o.level = (o.level + if on { 0.02 } else { -0.005 }).clamp(0.0, 100.0);
            store
                .set_state(b, format!("{:.0}", o.level), Map::new())
                .unwrap();
        }
    }
}
