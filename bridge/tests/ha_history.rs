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

/// The events of subscription `sub` until `done` says the states seen are
/// enough; every state as (value, lu), in the order received.
async fn stream_states(
    ws: &mut Ws,
    sub: u64,
    done: impl Fn(&[(String, f64)]) -> bool,
) -> (Vec<Value>, Vec<(String, f64)>) {
    let (mut events, mut seen) = (Vec::new(), Vec::new());
    while !done(&seen) {
        let v = ws.recv().await;
        if v["id"] != json!(sub) || v["type"] != "event" {
            continue;
        }
        if let Some(list) = v["event"]["states"][POWER].as_array() {
            for s in list {
                seen.push((
                    s["s"].as_str().unwrap().to_string(),
                    s["lu"].as_f64().unwrap(),
                ));
            }
        }
        events.push(v["event"].clone());
    }
    (events, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stream_sends_the_recorded_states_then_the_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let store = bridge.store.clone();
    add_meter(&store);
    let t0 = store.clock().now_ms();
    store.set_state(POWER, "100", Map::new()).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    store.set_state(POWER, "120", Map::new()).unwrap();
    let mut ws = Ws::auth(bridge.http_addr, &token).await;

    // HA's errors.
    let future = store.clock().now_ms() + 3_600_000;
    let cmd =
        json!({"type": "history/stream", "start_time": iso8601(future), "entity_ids": [POWER]});
    let r = ws.call(cmd).await;
    assert_eq!(r["error"]["code"], "invalid_start_time", "{r}");
    let cmd = json!({"type": "history/stream", "start_time": iso8601(t0), "end_time": iso8601(t0 - 1000), "entity_ids": [POWER]});
    let r = ws.call(cmd).await;
    assert_eq!(r["error"]["code"], "invalid_end_time", "{r}");

    // Live: the recorded states (not yet committed when asked: the stream
    // has the recorder commit them), then each change as it happens.
    let start = t0 - 1000;
    let cmd =
        json!({"type": "history/stream", "start_time": iso8601(start), "entity_ids": [POWER]});
    let r = ws.call(cmd).await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["result"], Value::Null);
    let sub = r["id"].as_u64().unwrap();
    let (events, seen) = stream_states(&mut ws, sub, |s| s.len() >= 2).await;
    assert_eq!(
        events.len(),
        1,
        "one message for the recorded states: {events:?}"
    );
    let first = &events[0];
    assert_eq!(first["start_time"].as_f64(), Some(secs(start)), "{first}");
    assert_eq!(
        first["end_time"].as_f64(),
        Some(seen[1].1),
        "the last state's lu: {first}"
    );
    assert_eq!(
        seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["100", "120"]
    );

    store.set_state(POWER, "130", Map::new()).unwrap();
    // Attributes only: left out (significant_changes_only by default).
    store.set_state(POWER, "130", phase()).unwrap();
    store.set_state(POWER, "140", phase()).unwrap();
    let (events, seen) = stream_states(&mut ws, sub, |s| s.len() >= 2).await;
    assert_eq!(
        seen.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
        ["130", "140"]
    );
    let live = &events[events.len() - 1]["states"][POWER];
    let last = &live[live.as_array().unwrap().len() - 1];
    assert_eq!(
        last["a"]["phase"], "L1",
        "live states carry attributes: {last}"
    );
    assert!(
        events.iter().all(|e| e.get("start_time").is_none()),
        "{events:?}"
    );

    // Unsubscribed: nothing more.
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": sub}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    store.set_state(POWER, "150", Map::new()).unwrap();
    while let Some(v) = ws.try_recv(Duration::from_millis(800)).await {
        assert_ne!(v["id"], json!(sub), "an event after unsubscribing: {v}");
    }

    // A period already over: its states and nothing after.
    let end = store.clock().now_ms();
    let cmd = json!({"type": "history/stream", "start_time": iso8601(start), "end_time": iso8601(end), "entity_ids": [POWER], "minimal_response": true});
    let r = ws.call(cmd).await;
    let sub = r["id"].as_u64().unwrap();
    let (events, seen) = stream_states(&mut ws, sub, |s| s.len() >= 5).await;
    assert_eq!(events.len(), 1);
    let values: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(values, ["100", "120", "130", "140", "150"]);
    store.set_state(POWER, "160", Map::new()).unwrap();
    while let Some(v) = ws.try_recv(Duration::from_millis(800)).await {
        assert_ne!(v["id"], json!(sub), "an event after the period: {v}");
    }
    bridge.stop().await;
}

/// Subscribing while a sensor changes every millisecond: each value comes
/// exactly once, in order, across the switch from the database to the live
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_stream_neither_repeats_nor_misses_a_change_at_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let store = bridge.store.clone();
    add_meter(&store);
    let start = store.clock().now_ms() - 1000;
    const N: usize = 600;
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                store.set_state(POWER, i.to_string(), Map::new()).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let cmd =
        json!({"type": "history/stream", "start_time": iso8601(start), "entity_ids": [POWER]});
    let r = ws.call(cmd).await;
    assert_eq!(r["success"], true, "{r}");
    let sub = r["id"].as_u64().unwrap();
    let last = (N - 1).to_string();
    let (events, seen) = stream_states(&mut ws, sub, |s| s.iter().any(|v| v.0 == last)).await;
    writer.join().unwrap();
    let values: Vec<usize> = seen.iter().map(|s| s.0.parse().unwrap()).collect();
    assert_eq!(
        values,
        (0..N).collect::<Vec<_>>(),
        "every value once, in order"
    );
    assert!(
        events.len() >= 2,
        "both recorded and live states: {} messages",
        events.len()
    );
    bridge.stop().await;
}
