//! Removing an ESP32 sensor node, end to end (issue 12, item 2): only the
//! deletion of its retained announce (an empty RETAINED message) removes
//! it; a stray empty message that is not retained is ignored and the node's
//! telemetry keeps flowing. And a removed room sensor is a lost sensor for
//! the thermostat plugin (the real WASM plugin in the bridge): it raises
//! `sensor_unavailable` and says why in its log.

use crate::common;

use common::{BrokerKind, Harness, Observer, log_mark, logs_since, wait_for};
use rumqttc::QoS;
use std::time::Duration;

const ANNOUNCE: &str = "hearth-node/server-room/announce";
const SENSOR: &str = "sensor.server_room_temperature";
const SENSOR_LOST: &str = "binary_sensor.plugin_thermostat_sensor_unavailable";

/// The node's temperature state once it has one (its telemetry flows).
async fn node_reporting(h: &Harness) -> i64 {
    wait_for("the node's first reading", Duration::from_secs(20), || {
        let s = h.bridge().store.get(SENSOR)?;
        s.number().map(|_| s.last_updated)
    })
    .await
}

fn node_discovery_retained(ha: &Observer) -> bool {
    ha.current()
        .keys()
        .any(|t| t.starts_with("homeassistant/") && t.contains("/server-room/"))
}

async fn a_stray_empty_announce_keeps_the_node(kind: BrokerKind) {
    // 60× real time: the node reports every 10 simulated s, 6 times a second.
    let h = Harness::start(kind, 60.0, |_| {}).await;
    let ha = Observer::connect(&h.broker.addr, "homeassistant/#").await;
    node_reporting(&h).await;
    wait_for("the node's discovery", Duration::from_secs(10), || {
        node_discovery_retained(&ha).then_some(())
    })
    .await;

    let mark = log_mark();
    // Not retained: deletes nothing on the broker, so it must remove nothing.
    // Twice: the broker must be asked afresh each time (rumqttd re-sends
    // retained messages only for a filter new to the connection).
    // The tests share one process and its log, and every twin's node is
    // `server-room`: the driver's lines name the broker, which is this
    // test's own.
    let broker = h.broker.addr.to_string();
    let ignored = format!(
        "{ANNOUNCE}: an empty message that was not retained was ignored: the broker ({broker}) still holds"
    );
    let withdrawn = format!("deleted from the broker ({broker})");
    for round in 1..=2 {
        ha.client
            .publish(ANNOUNCE, QoS::AtLeastOnce, false, Vec::new())
            .await
            .unwrap();
        wait_for(
            "the driver's verdict on the empty announce",
            Duration::from_secs(15),
            || {
                let logs = logs_since(mark);
                (logs.matches(&ignored).count() >= round || logs.contains(&withdrawn)).then_some(())
            },
        )
        .await;
        let logs = logs_since(mark);
        assert!(
            !logs.contains(&withdrawn),
            "a non-retained empty announce (round {round}) removed the node:\n{logs}"
        );
    }
    let logs = logs_since(mark);
    assert!(
        logs.contains("To remove a node, publish an empty RETAINED message on"),
        "the warning says how to remove a node:\n{logs}"
    );
    // The node, its entities and discovery are still there, and its
    // telemetry is still taken.
    let store = &h.bridge().store;
    assert!(store.device("server-room").is_some(), "device kept");
    let after = store.get(SENSOR).expect("sensor kept").last_updated;
    wait_for(
        "telemetry accepted after it",
        Duration::from_secs(10),
        || (store.get(SENSOR)?.last_updated > after).then_some(()),
    )
    .await;
    assert!(node_discovery_retained(&ha), "discovery kept");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_empty_announce_keeps_the_node_on_mosquitto() {
    a_stray_empty_announce_keeps_the_node(BrokerKind::Mosquitto).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_empty_announce_keeps_the_node_on_the_embedded_broker() {
    a_stray_empty_announce_keeps_the_node(BrokerKind::Embedded).await;
}

async fn a_deleted_announce_removes_the_node_and_the_thermostat_notices(kind: BrokerKind) {
    let h = Harness::start(kind, 60.0, |_| {}).await;
    let ha = Observer::connect(&h.broker.addr, "homeassistant/#").await;
    node_reporting(&h).await;
    let store = h.bridge().store.clone();
    wait_for(
        "the thermostat's problem sensors",
        Duration::from_secs(10),
        || (store.get(SENSOR_LOST)?.state == "off").then_some(()),
    )
    .await;

    let mark = log_mark();
    // The MQTT way to delete a retained message: an empty retained one.
    ha.client
        .publish(ANNOUNCE, QoS::AtLeastOnce, true, Vec::new())
        .await
        .unwrap();
    wait_for("the node removed", Duration::from_secs(15), || {
        (store.get(SENSOR).is_none() && store.device("server-room").is_none()).then_some(())
    })
    .await;
    wait_for("its discovery cleared", Duration::from_secs(10), || {
        (!node_discovery_retained(&ha)).then_some(())
    })
    .await;
    // The node still reports, but its telemetry no longer makes entities:
    // refused, as from any node that has not announced itself.
    let node = Observer::connect(&h.broker.addr, "hearth-node/server-room/telemetry").await;
    wait_for(
        "more telemetry from the node",
        Duration::from_secs(10),
        || (node.messages().len() >= 3).then_some(()),
    )
    .await;
    assert!(
        store.get(SENSOR).is_none(),
        "telemetry re-created the sensor"
    );
    assert!(
        logs_since(mark)
            .contains("telemetry from node `server-room` that has not announced itself"),
        "telemetry refused as from an unknown node"
    );

    // The thermostat's sensor is gone: a lost sensor, at once, with a reason.
    wait_for(
        "the thermostat's sensor_unavailable problem on",
        Duration::from_secs(15),
        || (store.get(SENSOR_LOST)?.state == "on").then_some(()),
    )
    .await;
    let logs = h.bridge().plugins.logs("thermostat", 200).unwrap();
    let said = logs
        .iter()
        .find(|l| l.message.contains(&format!("{SENSOR} is missing")))
        .unwrap_or_else(|| panic!("no log line on the missing sensor: {logs:?}"));
    assert_eq!(said.level, "warn", "{said:?}");
    assert!(said.message.contains("keeps its last command"), "{said:?}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_announce_removes_the_node_and_the_thermostat_notices_on_the_embedded_broker() {
    a_deleted_announce_removes_the_node_and_the_thermostat_notices(BrokerKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_announce_removes_the_node_and_the_thermostat_notices_on_mosquitto() {
    a_deleted_announce_removes_the_node_and_the_thermostat_notices(BrokerKind::Mosquitto).await;
}
