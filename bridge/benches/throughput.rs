//! Benchmarks that print figures (`cargo bench --bench throughput`;
//! plugin call overhead is in `benches/plugins.rs`):
//!
//! 1. the bridge's state-update throughput: sensor-node telemetry in over
//!    MQTT → entity store → HA state topics out, messages/s: the time from
//!    the first telemetry message until the last one's value is on the state
//!    topic (the publisher coalesces a burst of updates of one entity into
//!    its latest state, as HA only needs that);
//! 2. next to it, in the same run and on the same embedded broker, the raw
//!    broker's publish → subscribe throughput (QoS 1 both ways), and the
//!    bridge's figure as a share of the raw broker's through the front
//!    (the path the bridge's own link takes).
//!
//! For profiling: `HEARTH_THROUGHPUT_MESSAGES` (default 20 000) and
//! `HEARTH_THROUGHPUT_ONLY=bridge` (skip the raw broker runs).

use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Messages per run (`HEARTH_THROUGHPUT_MESSAGES`, default 20 000).
fn messages() -> u64 {
    std::env::var("HEARTH_THROUGHPUT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 1)
        .unwrap_or(20_000)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(throughput());
}

/// Counts publishes on `filter` and keeps the last payload.
type LastPayload = Arc<std::sync::Mutex<Vec<u8>>>;

async fn counting_client(
    addr: &BrokerAddress,
    id: &str,
    filter: &str,
) -> (AsyncClient, Arc<AtomicU64>, LastPayload) {
    let mut opts = MqttOptions::new(id, &addr.host, addr.port);
    opts.set_inflight(500);
    let (client, mut eventloop) = AsyncClient::new(opts, 10_000);
    let count = Arc::new(AtomicU64::new(0));
    let last: LastPayload = Arc::default();
    let (c, l) = (count.clone(), last.clone());
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    *l.lock().unwrap() = p.payload.to_vec();
                    c.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(5), ready).await;
    (client, count, last)
}

async fn wait_count(count: &AtomicU64, n: u64, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    while count.load(Ordering::Relaxed) < n {
        if t.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Some(t.elapsed())
}

/// Publisher → subscriber on `addr`, QoS 1 both ways, messages/s.
async fn raw_broker(addr: &BrokerAddress, what: &str) -> Option<f64> {
    let messages = messages();
    let tag = what.replace(' ', "-");
    let topic = format!("bench/raw/{tag}");
    let (_sub, received, _) = counting_client(addr, &format!("bench-raw-sub-{tag}"), &topic).await;
    let (publisher, _, _) =
        counting_client(addr, &format!("bench-raw-pub-{tag}"), "bench/none").await;
    let t = Instant::now();
    for i in 0..messages {
        publisher
            .publish(&topic, QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    match wait_count(&received, messages, Duration::from_secs(60))
        .await
        .map(|_| t.elapsed())
    {
        Some(d) => {
            let rate = messages as f64 / d.as_secs_f64();
            println!(
                "raw broker publish→subscribe ({what}): {rate:.0} messages/s ({messages} QoS 1 messages)"
            );
            Some(rate)
        }
        None => {
            println!(
                "raw broker ({what}): only {} of {messages} messages arrived within 60 s",
                received.load(Ordering::Relaxed)
            );
            None
        }
    }
}

async fn throughput() {
    let broker = EmbeddedBroker::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        EmbeddedBroker::free_port(),
    )
    .unwrap();
    let addr = BrokerAddress::local(broker.addr.port());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Raw broker: publisher → subscriber, QoS 1; through Hearth's front
    // (what clients use), then straight to rumqttd (the front's cost).
    let direct = BrokerAddress::local(broker.rumqttd.port());
    let only_bridge = std::env::var("HEARTH_THROUGHPUT_ONLY").is_ok_and(|v| v == "bridge");
    let raw = if only_bridge {
        None
    } else {
        let front = raw_broker(&addr, "through the front").await;
        raw_broker(&direct, "rumqttd direct").await;
        front
    };
    let messages = messages();
    let (publisher, _, _) = counting_client(&addr, "bench-pub", "bench/none").await;

    // Bridge: node telemetry in → store → state topic out.
    let mut config = Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", addr.port));
    config.http.port = 0;
    let bridge = Bridge::start(config, Clock::real()).await.unwrap();
    let (_ha, states, last_state) =
        counting_client(&addr, "bench-ha", "hearth/bench-node/temperature/state").await;
    let announce = r#"{"id":"bench-node","name":"Bench","model":"bench","sw_version":"0","sensors":["temperature"],"interval_s":1}"#;
    publisher
        .publish(
            "hearth-node/bench-node/announce",
            QoS::AtLeastOnce,
            true,
            announce,
        )
        .await
        .unwrap();
    while bridge.store.spec("sensor.bench_node_temperature").is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Each value differs from the one before at the driver's 0.01 °C
    // resolution, so every message is a state change; the last is 99.99.
    let value = |i: u64| {
        if i + 1 == messages {
            99.99
        } else {
            10.0 + (i % 5000) as f64 * 0.01
        }
    };
    let t = Instant::now();
    for i in 0..messages {
        let payload = format!(r#"{{"temperature":{:.2}}}"#, value(i));
        publisher
            .publish(
                "hearth-node/bench-node/telemetry",
                QoS::AtLeastOnce,
                false,
                payload,
            )
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while last_state.lock().unwrap().as_slice() != b"99.99" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let d = t.elapsed();
    if last_state.lock().unwrap().as_slice() == b"99.99" {
        let rate = messages as f64 / d.as_secs_f64();
        println!(
            "bridge MQTT in → store → MQTT out: {rate:.0} messages/s ({messages} telemetry messages, each a state change; {} state publishes after coalescing)",
            states.load(Ordering::Relaxed)
        );
        if let Some(raw) = raw {
            println!(
                "bridge / raw broker through the front: {:.0} % (target ≥ 50 %)",
                100.0 * rate / raw
            );
        }
    } else {
        println!(
            "bridge: the last state did not come out within 120 s ({} state publishes seen)",
            states.load(Ordering::Relaxed)
        );
    }
    publisher
        .publish(
            "hearth-node/bench-node/announce",
            QoS::AtLeastOnce,
            true,
            Vec::new(),
        )
        .await
        .unwrap();
    bridge.stop().await;
}
