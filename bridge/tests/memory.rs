//! Memory stays bounded under MQTT floods, checked by behaviour rather than
//! by timing or RSS (the RSS figure is `benches/flood.rs`):
//!
//! - the embedded broker keeps at most `SEGMENTS_PER_LOG × SEGMENT_BYTES`
//!   (plus one message per segment) of what a subscriber has not read: a
//!   subscriber that stops reading gets, when it resumes, rumqttd's 100 in
//!   flight plus that tail, never the whole flood (with the old 64 MiB × 10
//!   logs it got all of it);
//! - the bridge's link queues at most `SUB_QUEUE_BYTES` per subscription
//!   that its reader has not taken (it queued 4096 messages of any size).
//! - the ESP32 driver keeps early statuses for at most 256 node ids that
//!   have not announced (any client could grow that map with made-up ids).
//! - no subscription of the bridge is left unread: the discovery
//!   publisher's config subscriptions stalled the link once full.

use crate::common;

use common::{BrokerKind, wait_for};
use hearth::broker::embedded::{MAX_PAYLOAD, SEGMENT_BYTES, SEGMENTS_PER_LOG};
use hearth::broker::link::LinkOptions;
use hearth::broker::{BrokerAddress, MqttLink};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The bounds README.md states ("Memory bounds of MQTT traffic"), written
/// out here so that raising the constants fails these tests.
const STATED_BROKER_LOG: usize = 3 * 1024 * 1024;
const STATED_LINK_QUEUE: usize = 4 * 1024 * 1024;

/// Flood payload: 100 KiB, well under the broker's cap, so a segment holds
/// a handful and the flood is far larger than any bound under test.
const PAYLOAD: usize = 100 * 1024;

fn client(addr: &BrokerAddress, id: &str) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, &addr.host, addr.port);
    // Long enough that a client that stops polling is not timed out.
    opts.set_keep_alive(Duration::from_secs(120));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(opts, 64)
}

/// Polls until `want` packets of this kind arrived.
async fn poll_until(eventloop: &mut EventLoop, mut want: impl FnMut(&Packet) -> bool) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) if want(&p) => return,
                Ok(_) => {}
                Err(e) => panic!("the broker dropped the connection: {e}"),
            }
        }
    })
    .await
    .expect("the awaited packet within 30 s")
}

/// Publishes `count` QoS 1 messages of [`PAYLOAD`] bytes, each starting with
/// its sequence number, and returns once the broker acknowledged them all
/// (rumqttd acknowledges after routing a message into its logs).
async fn flood(addr: &BrokerAddress, topic: &str, count: u32) {
    let (publisher, mut eventloop) = client(addr, "memory-flooder");
    let acked = Arc::new(AtomicUsize::new(0));
    let a = acked.clone();
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    a.fetch_add(1, Ordering::SeqCst);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    for seq in 0..count {
        let mut payload = vec![b'.'; PAYLOAD];
        payload[..4].copy_from_slice(&seq.to_be_bytes());
        publisher
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
    wait_for(
        "the broker to acknowledge the flood",
        Duration::from_secs(60),
        || (acked.load(Ordering::SeqCst) >= count as usize).then_some(()),
    )
    .await;
    poller.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_keeps_only_a_bounded_tail_for_a_subscriber_that_stopped_reading() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let topic = "memory/flood";
    let (laggard, mut laggard_loop) = client(&broker.addr, "memory-laggard");
    laggard.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
    poll_until(&mut laggard_loop, |p| matches!(p, Packet::SubAck(_))).await;

    // 40 MiB while the laggard neither reads nor acknowledges.
    let count: u32 = 400;
    flood(&broker.addr, topic, count).await;

    // It resumes: everything the broker still has for it arrives now, the
    // newest message last (a generous idle timeout: the suite shares cores).
    let mut seqs = Vec::new();
    while seqs.last() != Some(&(count - 1)) {
        let Ok(event) = tokio::time::timeout(Duration::from_secs(15), laggard_loop.poll()).await
        else {
            break;
        };
        if let Ok(Event::Incoming(Packet::Publish(p))) = event {
            seqs.push(u32::from_be_bytes(p.payload[..4].try_into().unwrap()));
        }
    }
    // rumqttd's fixed QoS 1 window (100) went out before it stalled; the
    // log then holds at most SEGMENTS_PER_LOG segments, each overshooting
    // by at most one message.
    let in_flight = 100;
    let log_tail = STATED_BROKER_LOG / PAYLOAD;
    assert!(
        seqs.len() <= in_flight + log_tail,
        "the broker kept {} of {count} messages of {PAYLOAD} B for a subscriber that did not read: \
         more than {in_flight} in flight + {log_tail} in its log (stated bound: {STATED_BROKER_LOG} B per subscription)",
        seqs.len()
    );
    let configured = SEGMENTS_PER_LOG * (SEGMENT_BYTES + PAYLOAD);
    assert!(
        configured <= STATED_BROKER_LOG + PAYLOAD,
        "{configured} B per log exceeds the stated bound"
    );
    // What it kept is the newest: the subscriber skipped ahead, it did not
    // stop.
    assert_eq!(
        seqs.last(),
        Some(&(count - 1)),
        "the newest message arrives"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_link_queues_at_most_its_byte_budget_per_subscription() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let link = MqttLink::connect(
        &broker.addr,
        LinkOptions {
            client_id: "memory-link".into(),
            will: None,
            birth: None,
        },
    )
    .await
    .unwrap();
    let topic = "memory/link";
    let rx = link.subscribe(topic).unwrap();
    // Let the SUBSCRIBE reach the broker before flooding.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 100 messages of 100 KiB = 10 MiB, more than the budget; nobody reads.
    let count: u32 = 100;
    flood(&broker.addr, topic, count).await;
    let budget_messages = STATED_LINK_QUEUE / (PAYLOAD + topic.len());
    // The link stops at the budget; give it time to queue whatever it would.
    let mut last = usize::MAX;
    while rx.len() != last {
        last = rx.len();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        rx.len() <= budget_messages && !rx.is_empty(),
        "the link queued {} messages of {PAYLOAD} B for a subscription nobody read; \
         the stated bound of {STATED_LINK_QUEUE} B holds {budget_messages}",
        rx.len()
    );
    const { assert!(PAYLOAD < MAX_PAYLOAD) };
    drop(rx);
    link.disconnect().await;
}

/// What the ESP32 driver keeps for nodes that have not announced (their
/// status, for when the announce comes) is capped: statuses published
/// under 300 made-up node ids are not all kept, so the last of them, once
/// announced, starts from its announce (available), not from the kept
/// `offline`. The first ids still work as before (the cap is 256).
/// The statuses are published right after `Bridge::start` and are not
/// retained: start must return only once the broker acknowledged the
/// driver's subscription (a CI run lost the first ones before it did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn esp32_driver_keeps_early_status_for_a_bounded_number_of_nodes() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = hearth::config::Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
    config.http.port = 0;
    config.data_dir = Some(data_dir.path().to_path_buf());
    let bridge = hearth::app::Bridge::start(config, hearth::clock::Clock::real())
        .await
        .unwrap();
    let (node, mut eventloop) = client(&broker.addr, "memory-early-nodes");
    let poller = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let ids = 300;
    for i in 0..ids {
        node.publish(
            format!("hearth-node/early-{i}/status"),
            QoS::AtLeastOnce,
            false,
            "offline",
        )
        .await
        .unwrap();
    }
    // An early node within the cap, then the last one, announce.
    for i in [0, ids - 1] {
        let announce = format!(
            r#"{{"id":"early-{i}","name":"Early {i}","model":"test","sw_version":"0","sensors":["temperature"],"interval_s":60}}"#
        );
        node.publish(
            format!("hearth-node/early-{i}/announce"),
            QoS::AtLeastOnce,
            true,
            announce,
        )
        .await
        .unwrap();
    }
    let first = wait_for(
        "the first early node's device",
        Duration::from_secs(20),
        || bridge.store.device("early-0"),
    )
    .await;
    let last = wait_for(
        "the last early node's device",
        Duration::from_secs(20),
        || bridge.store.device(&format!("early-{}", ids - 1)),
    )
    .await;
    assert!(!first.1, "a node within the cap keeps its early `offline`");
    assert!(
        last.1,
        "the driver kept an early status for all {ids} made-up node ids"
    );
    for i in [0, ids - 1] {
        node.publish(
            format!("hearth-node/early-{i}/announce"),
            QoS::AtLeastOnce,
            true,
            Vec::new(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    poller.abort();
    bridge.stop().await;
}

/// The discovery publisher reads other configs on `homeassistant/…/config`
/// only until its start-up sweep. Its subscriptions used to stay, unread,
/// so every config published afterwards (its own republished ones
/// included) queued there until the queue was full and the whole MQTT
/// link stalled. Now they go with the sweep: after 1 100 configs from
/// elsewhere, a node's announce still reaches the bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_published_after_the_sweep_do_not_stall_the_link() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = hearth::config::Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
    config.http.port = 0;
    config.data_dir = Some(data_dir.path().to_path_buf());
    let bridge = hearth::app::Bridge::start(config, hearth::clock::Clock::real())
        .await
        .unwrap();
    // The sweep runs 2 s after the start (app.rs); be past it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (other, mut eventloop) = client(&broker.addr, "memory-other-integration");
    let poller = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    for i in 0..1100 {
        other
            .publish(
                format!("homeassistant/sensor/other_{i}/config"),
                QoS::AtLeastOnce,
                false,
                r#"{"name":"other","state_topic":"other/state","unique_id":"other"}"#,
            )
            .await
            .unwrap();
    }
    let announce = r#"{"id":"after-configs","name":"After","model":"test","sw_version":"0","sensors":["temperature"],"interval_s":60}"#;
    other
        .publish(
            "hearth-node/after-configs/announce",
            QoS::AtLeastOnce,
            true,
            announce,
        )
        .await
        .unwrap();
    wait_for(
        "the announce after 1 100 foreign configs (a stalled link never delivers it)",
        Duration::from_secs(20),
        || bridge.store.device("after-configs"),
    )
    .await;
    other
        .publish(
            "hearth-node/after-configs/announce",
            QoS::AtLeastOnce,
            true,
            Vec::new(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    poller.abort();
    bridge.stop().await;
}
