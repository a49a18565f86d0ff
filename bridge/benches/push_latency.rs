//! Push latency of a Shelly Gen2 plug (`cargo bench --bench push_latency`):
//! the twin plug (`twin::shelly_push_sim`) changes its relay, which also
//! starts or stops the AC it feeds (0 W ↔ 2300 W); its `NotifyStatus`
//! goes through the embedded broker to the `[[shelly]]` driver, the entity
//! store, and out on the HA state topics, where an MQTT subscriber (as HA)
//! notes the arrival. Polling is at 60 s, so only push can deliver within
//! the run. Figures: p50/p99/max of relay change → `hearth/plug/switch/state`
//! and → `hearth/plug/power/state`, over [`CHANGES`] changes.

use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::twin::plant::Plant;
use hearth::twin::room::{AcMode, AcSettings, RoomParams};
use hearth::twin::shelly_push_sim::{self, ShellyPushSimConfig};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CHANGES: usize = 300;
const SWITCH_TOPIC: &str = "hearth/plug/switch/state";
const POWER_TOPIC: &str = "hearth/plug/power/state";

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
    rt.block_on(run());
}

/// (topic, payload, arrival) of every publish on the two state topics.
async fn ha_subscriber(addr: &BrokerAddress) -> mpsc::UnboundedReceiver<(String, String, Instant)> {
    let opts = MqttOptions::new("bench-ha", &addr.host, addr.port);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    client
        .subscribe(SWITCH_TOPIC, QoS::AtMostOnce)
        .await
        .unwrap();
    client
        .subscribe(POWER_TOPIC, QoS::AtMostOnce)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _client = client;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let text = String::from_utf8_lossy(&p.payload).into_owned();
                    if tx.send((p.topic, text, Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    });
    rx
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(what: &str, mut d: Vec<Duration>) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} changes)",
        ms(percentile(&d, 0.5)),
        ms(percentile(&d, 0.99)),
        ms(*d.last().unwrap()),
        d.len()
    );
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let addr = BrokerAddress::local(port);
    let clock = Clock::real();
    let mut plant = Plant::new(RoomParams::server_room(), clock.now_ms());
    plant.apply_ir(
        AcSettings {
            power: true,
            mode: AcMode::Cool,
            set_temp_c: 10.0,
            fan_speed: "Auto".into(),
        },
        clock.now_ms(),
    );
    let (_power, off) = hearth::shutdown::channel();
    let sim = shelly_push_sim::spawn(
        clock,
        ShellyPushSimConfig {
            mac: "a8032ab1c2d3".into(),
            name: "Bench plug".into(),
            seed: 1,
            prefix: Some("bench-plug".into()),
            broker: addr.clone(),
        },
        plant.shared(),
        off,
    )
    .unwrap();
    let mut config = Config::default();
    config.mqtt.port = port;
    config.http.port = 0;
    config.data_dir = Some(dir.path().to_path_buf());
    config.shelly.push(
        toml::from_str(&format!(
            "id = \"plug\"\nname = \"Bench plug\"\nurl = \"{}\"\npoll_interval_s = 60\nmqtt_prefix = \"bench-plug\"\n",
            sim.url()
        ))
        .unwrap(),
    );
    let bridge = Bridge::start(config, clock).await.unwrap();
    let mut seen = ha_subscriber(&addr).await;
    // Ready: the twin's link up and the start poll's states out.
    let t = Instant::now();
    while !(sim.mqtt_up() && bridge.store.get("sensor.plug_power").is_some()) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the plug never came up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while seen.try_recv().is_ok() {}

    let (mut to_switch, mut to_power) = (Vec::new(), Vec::new());
    let mut on = sim.relay_on();
    for i in 0..CHANGES {
        on = !on;
        let want_power = if on { "2300" } else { "0" };
        let t0 = Instant::now();
        sim.set_relay(on);
        let (mut s, mut p) = (None, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while s.is_none() || p.is_none() {
            match tokio::time::timeout_at(deadline, seen.recv()).await {
                Ok(Some((topic, payload, at))) => {
                    if topic == SWITCH_TOPIC
                        && payload.eq_ignore_ascii_case(if on { "on" } else { "off" })
                    {
                        s = Some(at - t0);
                    } else if topic == POWER_TOPIC && payload == want_power {
                        p = Some(at - t0);
                    }
                }
                _ => panic!("change {i}: no state within 5 s (switch {s:?}, power {p:?})"),
            }
        }
        to_switch.extend(s);
        to_power.extend(p);
        // Let the system settle between changes (one change at a time).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    report("relay change → HA switch state topic", to_switch);
    report("relay change → HA power state topic", to_power);
    bridge.stop().await;
}
