//! Issue 12 item 3: values from outside cannot forge log lines, write raw
//! control characters or grow a line without bound, and a flood of bad
//! input from one source gives a bounded number of warnings.
//!
//! The harness's subscriber is built like `hearth`'s (`init_logs` uses
//! `hearth::logging::EscapedFields`), and this test reads its log from a
//! mark, as the other tests sharing the process do.

use crate::common;

use common::history::Ws;
use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::logging::fields::MAX_FIELDS;
use hearth::logging::rate::BURST;
use rumqttc::QoS;
use serde_json::json;
use std::time::Duration;

/// What a forger puts after a newline: a line that looks like the bridge's.
const FORGED: &str = "2026-12-06T00:00:00Z  INFO FORGED";
/// Time, level and target before the fields (the tests' format keeps the
/// target: `hearth::entity::service: `).
const PREFIX: usize = 128;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_values_cannot_forge_lines_or_write_control_characters() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "forger").unwrap();
    let mut ws = Ws::auth(h.bridge().http_addr, &token).await;
    let mqtt = Observer::connect(&h.broker.addr, "hearth/bridge/state").await;
    let mark = common::log_mark();

    // WebSocket: an entity id with a newline, a forged line and a NUL; and
    // a 1 MB id (it made a 2 MB line: the id twice).
    let forged_id = format!("switch.ghost\n{FORGED}: ws says admin logged in\0");
    let huge_id = format!("switch.{}END", "a".repeat(1 << 20));
    for id in [&forged_id, &huge_id] {
        let r = ws
            .call(
                json!({"type": "call_service", "domain": "switch", "service": "turn_on",
                         "target": {"entity_id": id}}),
            )
            .await;
        assert_eq!(r["success"], false, "an unknown entity is refused");
    }
    // MQTT: in a topic level and in a payload the bridge quotes.
    mqtt.publish(&format!("hearth/nowhere\n{FORGED}: topic/thing/set"), "ON")
        .await;
    mqtt.publish("tele/tasmota_ir/LWT", &format!("Side\n{FORGED}: lwt\0ways"))
        .await;

    for (what, escaped) in [
        (
            "the WebSocket id",
            format!("switch.ghost\\n{FORGED}: ws says admin logged in\\0"),
        ),
        ("the topic", format!("nowhere\\n{FORGED}: topic")),
        ("the LWT payload", format!("Side\\n{FORGED}: lwt\\0ways")),
        ("the 1 MB id", "bytes cut]…".to_string()),
    ] {
        wait_for(
            &format!("{what} logged, escaped: {escaped}"),
            Duration::from_secs(20),
            || common::logs_since(mark).contains(&escaped).then_some(()),
        )
        .await;
    }
    let logs = common::logs_since(mark);
    let forged: Vec<&str> = logs.lines().filter(|l| l.starts_with(FORGED)).collect();
    assert!(forged.is_empty(), "forged lines in the log: {forged:?}");
    assert!(!logs.contains('\0'), "a raw NUL reached the log");
    let longest = logs.lines().map(str::len).max().unwrap_or(0);
    assert!(
        longest <= MAX_FIELDS + PREFIX,
        "a log line of {longest} bytes (cap {MAX_FIELDS} + prefix)"
    );
    let huge_line = logs.lines().find(|l| l.contains("switch.aaaa")).unwrap();
    assert!(
        huge_line.contains("aEND"),
        "the end of a cut value is kept: {}",
        &huge_line[huge_line.len().saturating_sub(200)..]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_invalid_messages_give_a_bounded_number_of_warnings() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let mqtt = Observer::connect(&h.broker.addr, "hearth/bridge/state").await;
    let mark = common::log_mark();
    const FLOOD: usize = 20_000;
    for _ in 0..FLOOD {
        mqtt.client
            .publish(
                "hearth-node/ghost-flood/telemetry",
                QoS::AtMostOnce,
                false,
                br#"{"temperature":20}"#.to_vec(),
            )
            .await
            .unwrap();
    }
    // Another source after the flood, on the same subscription: when its
    // warning is in the log, the flood has been handled.
    mqtt.publish(
        "hearth-node/flood-sentinel/telemetry",
        r#"{"temperature":20}"#,
    )
    .await;
    wait_for(
        "the sentinel's warning after the flood",
        Duration::from_secs(120),
        || {
            common::logs_since(mark)
                .contains("node `flood-sentinel` that has not announced itself")
                .then_some(())
        },
    )
    .await;
    let logs = common::logs_since(mark);
    let warned = logs
        .lines()
        .filter(|l| l.contains("node `ghost-flood` that has not announced itself"))
        .count();
    assert!(warned >= 1, "the first ones are logged");
    assert!(
        warned <= BURST as usize,
        "{warned} warnings for {FLOOD} invalid messages from one source (at most {BURST} a minute)"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_client_flooding_binary_messages_gives_a_bounded_number_of_warnings() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let h = Harness::start(BrokerKind::Embedded, 60.0, |_| {}).await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "binary").unwrap();
    let url = format!("ws://{}/api/websocket", h.bridge().http_addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ = ws.next().await; // auth_required
    ws.send(Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))
    .await
    .unwrap();
    let _ = ws.next().await; // auth_ok
    let mark = common::log_mark();
    const FLOOD: usize = 2_000;
    for _ in 0..FLOOD {
        ws.send(Message::binary(vec![7u8, 1, 2])).await.unwrap();
    }
    // Handled in order: the pong comes after every binary message.
    ws.send(Message::text(json!({"id": 1, "type": "ping"}).to_string()))
        .await
        .unwrap();
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a pong within 30 s")
            .expect("connection open")
            .unwrap();
        if m.to_text().is_ok_and(|t| t.contains("pong")) {
            break;
        }
    }
    let warned = common::logs_since(mark)
        .lines()
        .filter(|l| l.contains("binary message for non-existing handler 7"))
        .count();
    assert!(
        (1..=BURST as usize).contains(&warned),
        "{warned} warnings for {FLOOD} binary messages from one client (at most {BURST} a minute)"
    );
    h.stop().await;
}
