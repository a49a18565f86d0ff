//! Plugin platform figures (`cargo bench -p hearth --bench plugins`):
//!
//! 1. per plugin: cold compile (an empty code cache: `precompile_component`,
//!    written to disk) against a cached load (checksum + `deserialize`),
//!    median of 5 each, plus link (`instantiate_pre`) included in both;
//! 2. call overhead: `on-state` p50/p99 over 20 000 calls, with the
//!    host's fuel metering and epoch deadline on (as in production), for
//!    a plugin that does nothing and for the thermostat (which reads 3
//!    states through the host per call);
//! 3. swap time: 200 swaps thermostat ↔ custom strategy through the
//!    `PluginManager` (as the CLI, WebSocket and MQTT do), while the entity
//!    store emits 1000 sensor changes per second: p50/p99 of the whole
//!    operation (prepare from the code cache + queue + switch) and of the
//!    switch alone (the time the plugin's runner is busy: old `save`, new
//!    `restore`, entities).
//!
//! `HEARTH_BENCH_ONLY=calls` runs part 2 alone, `HEARTH_BENCH_ROUNDS=N`
//! repeats it N times (a range from one run), and
//! `HEARTH_BENCH_THERMOSTAT=path.wasm` measures another build of the
//! thermostat (e.g. another `[profile.plugin]`) without rebuilding the host.

use hearth::clock::Clock;
use hearth::entity::{Component, Device, EntitySpec, EntityStore, ServiceRouter};
use hearth::plugins::cache::{CacheOutcome, CodeCache};
use hearth::plugins::engine::{HostState, MemoryCap, PluginEngine, state_to_wit, wit};
use hearth::plugins::instance::PluginInstance;
use hearth::plugins::runner::RunnerContext;
use hearth::plugins::{Limits, PluginConfig, PluginManager, SwapRequest, builtin};
use serde_json::{Map, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CALLS: usize = 20_000;
const SWAPS: usize = 200;
const CUSTOM: &str = env!("HEARTH_PLUGIN_CUSTOM_STRATEGY");

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores; wasmtime with fuel metering and epoch interruption",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let store = room_store();
    let only_calls = std::env::var("HEARTH_BENCH_ONLY").is_ok_and(|v| v == "calls");
    if !only_calls {
        compile_vs_cache();
    }
    let rounds: usize = std::env::var("HEARTH_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for _ in 0..rounds {
        call_overhead(&store);
    }
    if !only_calls {
        rt.block_on(swaps(store));
    }
}

/// The thermostat's component: the bundled one, or `HEARTH_BENCH_THERMOSTAT`.
fn thermostat_wasm() -> String {
    std::env::var("HEARTH_BENCH_THERMOSTAT").unwrap_or_else(|_| "builtin:thermostat".into())
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A store with the server room's entities the plugins read and drive.
fn room_store() -> Arc<EntityStore> {
    let store = EntityStore::new(Clock::real());
    let dev = |id: &str| Device {
        id: id.into(),
        name: id.into(),
        manufacturer: "bench".into(),
        model: "bench".into(),
        sw_version: None,
        via_device: None,
    };
    store.upsert_device("bench", dev("server-room")).unwrap();
    store.upsert_device("bench", dev("server-room-ac")).unwrap();
    for (device, key, c, state) in [
        ("server-room", "temperature", Component::Sensor, "24.1"),
        ("server-room-ac", "power", Component::Switch, "on"),
        ("server-room-ac", "ac", Component::Climate, "cool"),
    ] {
        let spec = EntitySpec::new(device, key, c);
        let id = spec.entity_id.clone();
        store.upsert_entity(spec).unwrap();
        let mut attrs = Map::new();
        if c == Component::Climate {
            attrs.insert("temperature".into(), json!(24.0));
        }
        store.set_state(&id, state, attrs).unwrap();
    }
    store
}

fn thermostat_config() -> serde_json::Value {
    json!({
        "sensor": "sensor.server_room_temperature",
        "climate": "climate.server_room_ac_ac",
        "switch": "switch.server_room_ac_power",
        "keep_alive": 300,
    })
}

fn compile_vs_cache() {
    for (label, wasm) in [
        ("thermostat", "builtin:thermostat"),
        ("custom-strategy", CUSTOM),
        ("fault-injector", "builtin:fault-injector"),
    ] {
        let bytes = builtin::load_bytes(wasm).unwrap();
        let (mut cold, mut cached) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let engine =
                PluginEngine::with_cache(CodeCache::new(Some(dir.path().join("plugins")))).unwrap();
            let l = engine.load(&bytes).unwrap();
            assert_eq!(l.cache, CacheOutcome::Compiled);
            cold.push(l.load_time.as_secs_f64() * 1000.0);
            let l = engine.load(&bytes).unwrap();
            assert_eq!(l.cache, CacheOutcome::Hit);
            cached.push(l.load_time.as_secs_f64() * 1000.0);
        }
        println!(
            "{label} ({} KiB): cold compile {:.1} ms, cached load {:.2} ms (median of 5, link included)",
            bytes.len() / 1024,
            percentile(&mut cold, 0.5),
            percentile(&mut cached, 0.5)
        );
    }
}

fn call_overhead(store: &Arc<EntityStore>) {
    let engine = PluginEngine::new().unwrap();
    let thermostat = thermostat_wasm();
    let cases = [
        (
            "fault-injector (does nothing)",
            "builtin:fault-injector",
            json!({"entity": "sensor.server_room_temperature", "fault": "none"}),
        ),
        ("thermostat", thermostat.as_str(), thermostat_config()),
    ];
    for (label, wasm, config) in cases {
        let pre = engine
            .load(&builtin::load_bytes(wasm).unwrap())
            .unwrap()
            .pre;
        let state = HostState {
            plugin: "bench".into(),
            store: store.clone(),
            clock: Clock::real(),
            limiter: MemoryCap::new(32 << 20),
            logs: Default::default(),
            forecasts: Default::default(),
            time: Default::default(),
            outcomes: Default::default(),
        };
        let mut inst =
            PluginInstance::new(&engine.engine, &pre, state, &Limits::default()).unwrap();
        inst.init(&config.to_string()).unwrap();
        let s = store.get("sensor.server_room_temperature").unwrap();
        let change = wit::StateChange {
            entity_id: s.entity_id.clone(),
            old_state: Some(state_to_wit(&s)),
            new_state: Some(state_to_wit(&s)),
        };
        let mut times = Vec::with_capacity(CALLS);
        for _ in 0..CALLS {
            let t = Instant::now();
            let out = inst.on_state(&change).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(out);
        }
        println!(
            "call overhead, {label}: on-state p50 {:.2} µs, p99 {:.2} µs over {CALLS} calls ({} fuel per call)",
            percentile(&mut times, 0.5),
            percentile(&mut times, 0.99),
            inst.stats.fuel_last
        );
    }
}

async fn swaps(store: Arc<EntityStore>) {
    let data = tempfile::tempdir().unwrap();
    let engine = PluginEngine::with_cache(CodeCache::new(Some(data.path().join("cache")))).unwrap();
    let (_trigger, shutdown) = hearth::shutdown::channel();
    let manager = Arc::new(PluginManager::new(
        RunnerContext {
            store: store.clone(),
            router: ServiceRouter::new(store.clone()),
            engine,
            logs: Default::default(),
            forecasts: Default::default(),
            shutdown,
            alerts: hearth::alerts::AlertHub::detached(store.clock()),
            metrics: None,
        },
        Some(data.path()),
    ));
    let cfg = PluginConfig {
        name: "ctl".into(),
        wasm: "builtin:thermostat".into(),
        config: thermostat_config(),
        limits: Limits::default(),
        drives: None,
    };
    let m = manager.clone();
    tokio::task::spawn_blocking(move || m.load(cfg).unwrap())
        .await
        .unwrap();

    // 1000 sensor changes per second meanwhile.
    let running = Arc::new(AtomicBool::new(true));
    let (r, s) = (running.clone(), store.clone());
    let load = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut i = 0u64;
        while r.load(Ordering::Relaxed) {
            tick.tick().await;
            i += 1;
            let v = 24.0 + (i % 100) as f64 / 100.0;
            let _ = s.set_state(
                "sensor.server_room_temperature",
                format!("{v:.2}"),
                Map::new(),
            );
        }
        i
    });
    let m = manager.clone();
    let (mut total, mut switch) = tokio::task::spawn_blocking(move || {
        let (mut total, mut switch) = (Vec::new(), Vec::new());
        for i in 0..SWAPS {
            let wasm = if i % 2 == 0 {
                CUSTOM
            } else {
                "builtin:thermostat"
            };
            let t = Instant::now();
            let r = m
                .swap(
                    "ctl",
                    SwapRequest {
                        wasm: wasm.into(),
                        ..SwapRequest::default()
                    },
                )
                .unwrap();
            total.push(t.elapsed().as_secs_f64() * 1000.0);
            switch.push(r.switch_us as f64);
        }
        (total, switch)
    })
    .await
    .unwrap();
    running.store(false, Ordering::Relaxed);
    let changes = load.await.unwrap();
    // A save goes through the plugin's queue: every change is handled by then.
    let m = manager.clone();
    tokio::task::spawn_blocking(move || m.save("ctl").unwrap())
        .await
        .unwrap();
    let events = manager.status("ctl").unwrap().events;
    // The first two swaps compile the components (cold); the rest load
    // them from the code cache, as any later swap does.
    let cold: Vec<f64> = total.drain(..2).collect();
    println!(
        "swap ({SWAPS}× thermostat ↔ custom strategy under {changes} sensor changes, {events} delivered): \
         whole operation p50 {:.1} ms, p99 {:.1} ms (first two, compiling: {:.0} ms, {:.0} ms); \
         switch p50 {:.0} µs, p99 {:.0} µs",
        percentile(&mut total, 0.5),
        percentile(&mut total, 0.99),
        cold[0],
        cold[1],
        percentile(&mut switch, 0.5),
        percentile(&mut switch, 0.99)
    );
    let m = manager.clone();
    tokio::task::spawn_blocking(move || m.stop_all())
        .await
        .unwrap();
}
