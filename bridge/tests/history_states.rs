//! The plugins' `history` import serves binary states (issue 12, item 12):
//! a switch's `on`/`off` are samples 1/0, from the store's memory and from
//! the recorder (SQLite) alike, so a plugin can count an AC's run time;
//! `unavailable` and enumerated states (a climate's hvac mode) are not
//! samples.

use crate::common;

use common::history::{device, start_bridge};
use common::wait_for;
use hearth::clock::Clock;
use hearth::entity::{Component, EntitySpec, EntityStore};
use hearth::recorder::{Recorder, RecorderConfig};
use serde_json::{Map, json};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SWITCH: &str = "switch.ac_power";
const CLIMATE: &str = "climate.ac_climate";
const T0: i64 = 1_767_225_600_000;
const MIN: i64 = 60_000;

/// Device `ac` with `switch.ac_power` and `climate.ac_climate`.
fn add_ac(store: &EntityStore) {
    store.upsert_device("test", device("ac")).unwrap();
    for (key, component) in [
        ("power", Component::Switch),
        ("climate", Component::Climate),
    ] {
        store
            .upsert_entity(EntitySpec::new("ac", key, component))
            .unwrap();
    }
}

fn standalone(dir: &Path, clock: Clock) -> (Arc<EntityStore>, Arc<Recorder>) {
    common::init_logs();
    let store = EntityStore::new(clock);
    store
        .upsert_device("bridge", device(hearth::discovery::payload::BRIDGE_DEVICE))
        .unwrap();
    add_ac(&store);
    let rec = Recorder::start(
        &RecorderConfig::default(),
        dir.join("hearth.db"),
        store.clone(),
    )
    .unwrap();
    (store, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_history_is_one_and_zero_from_memory_and_from_the_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, hand) = Clock::manual(T0);
    let (store, rec) = standalone(dir.path(), clock);
    let at = |min: i64, id: &str, state: &str| {
        hand.set(T0 + min * MIN);
        store.set_state(id, state, Map::new()).unwrap();
    };
    at(0, SWITCH, "on");
    at(0, CLIMATE, "cool");
    at(10, SWITCH, "off");
    at(20, SWITCH, "unavailable");
    at(30, SWITCH, "on");
    at(40, CLIMATE, "off");
    at(45, SWITCH, "off");
    rec.flush().await.unwrap();
    let expected = vec![
        (T0, 1.0),
        (T0 + 10 * MIN, 0.0),
        (T0 + 30 * MIN, 1.0),
        (T0 + 45 * MIN, 0.0),
    ];
    // `store.history` is what the plugins' `history` import calls.
    assert_eq!(store.history(SWITCH, T0, T0 + 60 * MIN), expected);
    // 25 minutes on out of 60: what a plugin counts as the AC's run time.
    let on_ms: i64 = expected
        .windows(2)
        .filter(|w| w[0].1 == 1.0)
        .map(|w| w[1].0 - w[0].0)
        .sum();
    assert_eq!(on_ms, 25 * MIN);
    // An hvac mode is not a number: no samples (not a lone `off` as 0).
    assert_eq!(store.history(CLIMATE, T0, T0 + 60 * MIN), vec![]);
    rec.close().await;

    // A new store (a restarted bridge) on the same file: all from SQLite.
    let (store, rec) = standalone(dir.path(), clock);
    assert_eq!(store.history(SWITCH, T0, T0 + 60 * MIN), expected);
    assert_eq!(
        store.history(SWITCH, T0 + 5 * MIN, T0 + 40 * MIN),
        expected[1..3]
    );
    assert_eq!(store.history(CLIMATE, T0, T0 + 60 * MIN), vec![]);
    rec.close().await;
}

/// The real runtime: the fault-injector plugin reads a switch's history in
/// the bridge and logs how many samples the host import gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_reads_a_switchs_on_off_history() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let store = bridge.store.clone();
    add_ac(&store);
    store
        .upsert_entity(EntitySpec::new("ac", "trigger", Component::Sensor))
        .unwrap();
    for i in 0..6 {
        store
            .set_state(SWITCH, if i % 2 == 0 { "on" } else { "off" }, Map::new())
            .unwrap();
        // Distinct times: the store records a change per state change.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cfg = hearth::plugins::PluginConfig {
        name: "run-time".into(),
        wasm: "builtin:fault-injector".into(),
        config: json!({
            "entity": "sensor.ac_trigger",
            "fault": "none",
            "history": {"entity": SWITCH, "seconds": 3600},
        }),
        limits: hearth::plugins::Limits::default(),
        drives: None,
    };
    let plugins = bridge.plugins.clone();
    tokio::task::spawn_blocking(move || plugins.load(cfg))
        .await
        .unwrap()
        .unwrap();
    store
        .set_state("sensor.ac_trigger", "1", Map::new())
        .unwrap();
    let count: usize = wait_for("the plugin's history read", Duration::from_secs(30), || {
        let logs = bridge.plugins.logs("run-time", 100).ok()?;
        logs.iter()
            .filter_map(|l| l.message.strip_prefix(&format!("history {SWITCH}: ")))
            .find_map(|rest| rest.strip_suffix(" samples")?.parse().ok())
    })
    .await;
    assert_eq!(count, 6, "one sample per on/off change");
    bridge.stop().await;
}
