//! HA's `history/history_during_period` against a running bridge: states
//! written through the EntityStore, recorded in SQLite, read back over the
//! WebSocket in HA's compressed shape with each option, and the errors.

use crate::common;

use common::history::{Ws, add_meter, start_bridge};
use hearth::api::auth::tokens;
use hearth::clock::iso8601;
use serde_json::{Map, Value, json};
use std::time::Duration;

const POWER: &str = "sensor.meter_power";
const CMD: &str = "history/history_during_period";

fn phase() -> Map<String, Value> {
    json!({"phase": "L1"}).as_object().cloned().unwrap()
}

// An inherent method on the shared client: this test's one command.
impl Ws {
    /// `history/history_during_period` with `extra` fields; its `result`.
    async fn history(&mut self, start_ms: i64, extra: Value) -> Value {
        let mut cmd = json!({"type": CMD, "start_time": iso8601(start_ms), "entity_ids": [POWER]});
        for (k, v) in extra.as_object().unwrap() {
            cmd[k] = v.clone();
        }
        let r = self.call(cmd.clone()).await;
        assert_eq!(r["success"], true, "{cmd} → {r}");
        r["result"].clone()
    }
}

fn states_of(result: &Value) -> Vec<&str> {
    result[POWER]
        .as_array()
        .unwrap_or_else(|| panic!("a list for {POWER}: {result}"))
        .iter()
        .map(|s| s["s"].as_str().unwrap())
        .collect()
}

fn secs(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_during_period_answers_in_has_compressed_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let store = bridge.store.clone();
    add_meter(&store);
    let t0 = store.clock().now_ms();
    let pause = || std::thread::sleep(Duration::from_millis(5));
    store.set_state(POWER, "100", Map::new()).unwrap();
    pause();
    // Attributes only: not a significant change for a sensor.
    store.set_state(POWER, "100", phase()).unwrap();
    pause();
    store.set_state(POWER, "120", phase()).unwrap();
    pause();
    let mid = store.clock().now_ms();
    pause();
    store.set_state(POWER, "130", phase()).unwrap();
    bridge
        .recorder
        .as_ref()
        .expect("the recorder runs by default")
        .flush()
        .await
        .unwrap();
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let start = t0 - 1000;

    // Defaults: significant changes, whole states keyed by entity id.
    let r = ws.history(start, json!({})).await;
    assert_eq!(r.as_object().unwrap().len(), 1, "{r}");
    assert_eq!(states_of(&r), ["100", "120", "130"], "{r}");
    let last = &r[POWER][2];
    assert_eq!(last["a"]["phase"], "L1", "{r}");
    assert_eq!(last["a"]["unit_of_measurement"], "W", "{r}");
    let lu = last["lu"].as_f64().expect("lu in float seconds");
    assert!(lu >= secs(mid) && lu < secs(mid + 60_000), "{r}");
    assert!(last.get("lc").is_none(), "lc only when it differs: {r}");
    let keys: Vec<&String> = last.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "s, a, lu: {r}");

    // Every change: the attribute-only one carries lc (its state's change).
    let r = ws
        .history(start, json!({"significant_changes_only": false}))
        .await;
    assert_eq!(states_of(&r), ["100", "100", "120", "130"], "{r}");
    let attr_only = &r[POWER][1];
    assert_eq!(attr_only["lc"], r[POWER][0]["lu"], "{r}");
    assert!(attr_only["lu"].as_f64() > attr_only["lc"].as_f64(), "{r}");

    // minimal_response: the first state whole, then {s, lu}.
    let r = ws
        .history(
            start,
            json!({"minimal_response": true, "significant_changes_only": false}),
        )
        .await;
    assert_eq!(
        states_of(&r),
        ["100", "120", "130"],
        "repeats left out: {r}"
    );
    assert!(r[POWER][0]["a"].is_object(), "{r}");
    for s in &r[POWER].as_array().unwrap()[1..] {
        let mut keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["lu", "s"], "{r}");
    }

    // no_attributes: `a` is {}; with minimal_response the first has none.
    let r = ws.history(start, json!({"no_attributes": true})).await;
    assert!(
        r[POWER]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["a"] == json!({})),
        "{r}"
    );
    let r = ws
        .history(
            start,
            json!({"no_attributes": true, "minimal_response": true}),
        )
        .await;
    assert!(r[POWER][0].get("a").is_none(), "{r}");
    assert_eq!(states_of(&r), ["100", "120", "130"], "{r}");

    // The state in force at the start comes first, at the start.
    let r = ws.history(mid, json!({})).await;
    assert_eq!(states_of(&r), ["120", "130"], "{r}");
    assert_eq!(r[POWER][0]["lu"].as_f64(), Some(secs(mid)), "{r}");
    let r = ws
        .history(mid, json!({"include_start_time_state": false}))
        .await;
    assert_eq!(states_of(&r), ["130"], "{r}");

    // end_time is exclusive; unknown entities are left out.
    let r = ws
        .history(
            start,
            json!({"end_time": iso8601(mid), "entity_ids": [POWER, "sensor.nope"]}),
        )
        .await;
    assert_eq!(states_of(&r), ["100", "120"], "{r}");
    assert!(r.get("sensor.nope").is_none(), "{r}");
    let r = ws
        .history(start, json!({"entity_ids": ["sensor.nope"]}))
        .await;
    assert_eq!(r, json!({}));

    // A start in the future answers {} (as HA).
    let future = store.clock().now_ms() + 3_600_000;
    assert_eq!(ws.history(future, json!({})).await, json!({}));

    // Errors name the input.
    let r = ws
        .call(json!({"type": CMD, "start_time": "yesterday", "entity_ids": [POWER]}))
        .await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(r["error"]["code"], "invalid_start_time", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("yesterday"),
        "{r}"
    );
    let r = ws
        .call(
            json!({"type": CMD, "start_time": iso8601(start), "end_time": "later",
                     "entity_ids": [POWER]}),
        )
        .await;
    assert_eq!(r["error"]["code"], "invalid_end_time", "{r}");
    let r = ws
        .call(json!({"type": CMD, "start_time": iso8601(start)}))
        .await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("entity_ids"),
        "{r}"
    );
    let r = ws
        .call(
            json!({"type": CMD, "start_time": iso8601(start), "entity_ids": [POWER],
                     "minimal_response": "yes"}),
        )
        .await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");
    // The connection still serves after the errors.
    assert_eq!(states_of(&ws.history(start, json!({})).await).len(), 3);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_recorder_history_during_period_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |c| c.recorder.enabled = false).await;
    assert!(bridge.recorder.is_none());
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let start = bridge.store.clock().now_ms() - 1000;
    let r = ws
        .call(json!({"type": CMD, "start_time": iso8601(start), "entity_ids": [POWER]}))
        .await;
    assert_eq!(r["error"]["code"], "not_found", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("[recorder] enabled = false"),
        "{r}"
    );
    bridge.stop().await;
}
