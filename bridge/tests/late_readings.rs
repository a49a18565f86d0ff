//! Readings a sensor node kept while offline and sent late with `age_ms`,
//! through the real driver, store and recorder: each is filed at the time
//! it was taken; one older than the newest reading never replaces it; an
//! age over 7 days is refused with a log line naming the payload. And the
//! twin's node, which buffers with the firmware's code, sends them.

use crate::common;

use common::node_link::{Proxy, Steady};
use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::recorder::query::StatesQuery;
use hearth::twin::node_sim::{self, NodeControl, NodeSimConfig};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const NODE: &str = "late-node";
const ENTITY: &str = "sensor.late_node_temperature";
const TELEMETRY: &str = "hearth-node/late-node/telemetry";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_readings_are_filed_at_their_time_and_never_replace_newer_ones() {
    let h = Harness::start(BrokerKind::Embedded, 1.0, |_| {}).await;
    let store = h.bridge().store.clone();
    let clock = h.clock;
    let mqtt = Observer::connect(&h.broker.addr, "hearth-node/late-node/#").await;
    mqtt.publish(
        &format!("hearth-node/{NODE}/announce"),
        r#"{"id":"late-node","name":"Late","model":"m","sw_version":"1","sensors":["temperature"],"interval_s":3600}"#,
    )
    .await;
    wait_for("the node's entity", Duration::from_secs(10), || {
        store.spec(ENTITY)
    })
    .await;

    // Sends a reading and returns its state once shown, with the bridge's
    // clock before and after.
    let send = |payload: &'static str, value: f64| {
        let (mqtt, store) = (mqtt.clone(), store.clone());
        async move {
            let before = clock.now_ms();
            mqtt.publish(TELEMETRY, payload).await;
            let s = wait_for(&format!("state {value}"), Duration::from_secs(10), || {
                store.get(ENTITY).filter(|s| s.number() == Some(value))
            })
            .await;
            (s, before, clock.now_ms())
        }
    };
    let (s, before, after) = send(r#"{"temperature":19,"age_ms":120000}"#, 19.0).await;
    assert!(
        (before - 120_000..=after - 120_000).contains(&s.last_updated),
        "dated receive time - age: {} not in {}..={}",
        s.last_updated,
        before - 120_000,
        after - 120_000
    );
    let (s, before, after) = send(r#"{"temperature":19.5,"age_ms":60000}"#, 19.5).await;
    assert!((before - 60_000..=after - 60_000).contains(&s.last_updated));
    let (s, before, after) = send(r#"{"temperature":20}"#, 20.0).await;
    assert!(
        (before..=after).contains(&s.last_updated),
        "a live reading is now"
    );
    let live = s;

    // Older than the live one: dropped. Then an absurd age: refused, named.
    let mark = common::log_mark();
    mqtt.publish(TELEMETRY, r#"{"temperature":18,"age_ms":30000}"#)
        .await;
    mqtt.publish(TELEMETRY, r#"{"temperature":17,"age_ms":700000000}"#)
        .await;
    wait_for("the absurd age named", Duration::from_secs(10), || {
        let logs = common::logs_since(mark);
        (logs.contains("age_ms 700000000 is more than 7 days")
            && logs.contains(r#"{"temperature":17,"age_ms":700000000}"#))
        .then_some(())
    })
    .await;
    assert_eq!(store.get(ENTITY).unwrap(), live, "the newest reading stays");

    // The recorder filed each reading at its own time, in time order.
    let recorder = h.bridge().recorder.clone().expect("recorder");
    recorder.flush().await.unwrap();
    let rows = recorder
        .reader()
        .states(
            ENTITY,
            0,
            i64::MAX,
            StatesQuery {
                include_start_state: false,
                significant_only: false,
                no_attributes: true,
            },
        )
        .unwrap();
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["19", "19.5", "20"], "{rows:?}");
    assert!(rows[0].last_updated <= live.last_updated - 120_000);
    assert!(rows[1].last_updated <= live.last_updated - 60_000);
    assert_eq!(rows[2].last_updated, live.last_updated);
    // The in-memory history (plugins' `history`) agrees.
    let samples = store.history(ENTITY, 0, i64::MAX);
    let values: Vec<f64> = samples.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, [19.0, 19.5, 20.0]);
    h.stop().await;
}

/// The twin's node (the firmware's buffer code) across a link outage: the
/// readings taken meanwhile arrive after the reconnection, oldest first,
/// each with its age, before any live reading.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twin_node_sends_what_it_measured_while_offline() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let proxy = Proxy::start(broker.addr.port).await;
    let observer = Observer::connect(&broker.addr, "hearth-node/lr-twin/telemetry").await;
    // 10 s readings at 100×: one every 100 ms of wall time.
    let clock = hearth::clock::Clock::simulated(100.0);
    let (stop, shutdown) = hearth::shutdown::channel();
    let cfg = NodeSimConfig {
        node_id: "lr-twin".into(),
        name: "Late twin".into(),
        interval_s: 10,
        seed: 1,
    };
    let control = Arc::new(NodeControl::default());
    let _node = node_sim::spawn_with(
        clock,
        &hearth::broker::BrokerAddress::local(proxy.port),
        cfg,
        Arc::new(Steady),
        control,
        shutdown,
    )
    .unwrap();
    let topic = "hearth-node/lr-twin/telemetry";
    let telemetry = |from: usize| -> Vec<Value> {
        observer.payloads_on(topic)[from..]
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    };
    wait_for("live readings", Duration::from_secs(10), || {
        (telemetry(0).len() >= 3).then_some(())
    })
    .await;
    assert!(telemetry(0).iter().all(|t| t.get("age_ms").is_none()));

    proxy.cut();
    // Let what was in flight before the cut arrive.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mark = observer.payloads_on(topic).len();
    // 1.5 s of wall time in all: ~15 readings, under the buffer's 32.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(observer.payloads_on(topic).len(), mark, "nothing while cut");
    proxy.restore();
    let after = wait_for("readings after the outage", Duration::from_secs(10), || {
        let t = telemetry(mark);
        t.iter().any(|t| t.get("age_ms").is_none()).then_some(t)
    })
    .await;
    let late: Vec<&Value> = after
        .iter()
        .take_while(|t| t.get("age_ms").is_some())
        .collect();
    assert!(
        (5..=node_sim::OFFLINE_READINGS).contains(&late.len()),
        "{} late readings: {after:?}",
        late.len()
    );
    // Oldest first: ages fall, uptimes rise (by about an interval; the
    // wall-time ticker jitters under load, so no tighter check).
    for pair in late.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        assert!(
            a["age_ms"].as_u64().unwrap() > b["age_ms"].as_u64().unwrap(),
            "{a} then {b}"
        );
        assert!(b["uptime"].as_u64() > a["uptime"].as_u64(), "{a} then {b}");
    }
    assert!(late[0]["age_ms"].as_u64().unwrap() >= 50_000, "{}", late[0]);
    // After the late ones, only live readings.
    assert!(
        after[late.len()..]
            .iter()
            .all(|t| t.get("age_ms").is_none()),
        "{after:?}"
    );
    stop.trigger();
}
