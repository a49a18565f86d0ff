//! Issue 12 item 5: what a client can make the bridge store or publish is
//! capped with Home Assistant's limits (`hearth::entity::limits`) and
//! refused with an error naming the input and the limit, never cut.

use crate::common;

use common::history::Ws;
use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::entity::limits::{MAX_EVENT_DATA_BYTES, MAX_EVENT_TYPE_CHARS, MAX_NAME_CHARS};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fire_event_refuses_oversized_types_and_data_like_home_assistant() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "limits").unwrap();
    let addr = h.bridge().http_addr;
    let mut ws = Ws::auth(addr, &token).await;
    let mut listener = Ws::auth(addr, &token).await;
    let sub = listener.call(json!({"type": "subscribe_events"})).await;
    assert_eq!(sub["success"], true, "{sub}");

    let refusals = [
        (
            json!({"type": "fire_event", "event_type": "x".repeat(MAX_EVENT_TYPE_CHARS + 1)}),
            "event_type is longer than 64 characters (65)",
        ),
        (
            json!({"type": "fire_event", "event_type": "y".repeat(1 << 20)}),
            "event_type is longer than 64 characters",
        ),
        (
            json!({"type": "fire_event", "event_type": "too_much_data",
                   "event_data": {"blob": "z".repeat(3 << 20)}}),
            "event_data is longer than 32768 bytes of JSON",
        ),
    ];
    for (cmd, expected) in refusals {
        let r = ws.call(cmd).await;
        assert_eq!(r["success"], false, "refused: {}", short(&r));
        assert_eq!(r["error"]["code"], "home_assistant_error");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(expected), "{message}");
        assert!(
            message.len() < 200,
            "the value is not echoed: {} bytes",
            message.len()
        );
    }
    // At the limits, accepted.
    let at_limit = "w".repeat(MAX_EVENT_TYPE_CHARS);
    let data = json!({"blob": "d".repeat(MAX_EVENT_DATA_BYTES - 20)});
    let r = ws
        .call(json!({"type": "fire_event", "event_type": at_limit, "event_data": data}))
        .await;
    assert_eq!(r["success"], true, "{}", short(&r));

    // Subscribers (and the recorder, on the same bus) saw only that one.
    let event = loop {
        let m = listener.recv().await;
        if m["type"] == "event" && m["event"]["event_type"] != "state_changed" {
            break m;
        }
    };
    assert_eq!(
        event["event"]["event_type"],
        at_limit.as_str(),
        "{}",
        short(&event)
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announce_with_a_huge_name_is_refused_and_never_reaches_discovery() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let store = h.bridge().store.clone();
    let ha = Observer::connect(&h.broker.addr, "homeassistant/#").await;
    let mark = common::log_mark();
    let announce = |id: &str, name: &str| {
        json!({"id": id, "name": name, "model": "ESP32-C3 sensor node", "sw_version": "1.0.0",
               "sensors": ["temperature"], "interval_s": 10})
        .to_string()
    };
    ha.publish(
        "hearth-node/bignode/announce",
        &announce("bignode", &"N".repeat(200_000)),
    )
    .await;
    // A node at the limit is accepted: the announce's shape is right.
    ha.publish(
        "hearth-node/longnode/announce",
        &announce("longnode", &"L".repeat(MAX_NAME_CHARS)),
    )
    .await;
    wait_for("the node at the limit", Duration::from_secs(20), || {
        store.device("longnode")
    })
    .await;
    wait_for(
        "a logged refusal naming the input and the limit",
        Duration::from_secs(20),
        || {
            common::logs_since(mark)
                .contains("device `bignode` name is longer than 255 characters (200000); refused")
                .then_some(())
        },
    )
    .await;
    assert!(
        store.device("bignode").is_none(),
        "the node was not registered"
    );
    let biggest = ha
        .messages()
        .iter()
        .filter(|(t, _, _)| t.contains("bignode"))
        .map(|(_, p, _)| p.len())
        .max();
    assert_eq!(biggest, None, "no discovery config for the refused node");
    h.stop().await;
}

/// A reply without its megabytes, for assertion messages.
fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(300).collect()
}
