//! Scale-out: two bridges on one Mosquitto, as on a broker cluster (one
//! bridge per building). Bridge A (in this process, base topic `site-a`,
//! per-entity discovery) runs the server room twin; bridge B (a real
//! `hearth run` process, base topic `site-b`, device discovery) has an AC
//! of its own and mirrors A's temperature sensors through A's discovery
//! configs (the foreign-discovery import, `[mirror]`).
//!
//! HA's view: no `unique_id` and no config topic is announced twice
//! (before the ids were namespaced, both bridges announced
//! `hearth_bridge_connection_state`), every config names exactly its own
//! bridge's availability, B reads A's entity, and killing B (SIGKILL: its
//! last will) makes only B's entities unavailable.

use crate::common::{self, Observer, wait_for};
use crate::signals::DemoProcess;
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::broker::BrokerAddress;
use hearth::clock::Clock;
use hearth::discovery::DiscoveryMode;
use hearth::shutdown;
use hearth::twin::{ServerRoomTwin, TwinOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(60);
const A_STATE: &str = "site-a/bridge/state";
const B_STATE: &str = "site-b/bridge/state";

/// GET `path` with a bearer token: (status, body); 10 s at most.
async fn get(addr: SocketAddr, path: &str, token: &str) -> (u16, String) {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.ok()?;
        Some(String::from_utf8_lossy(&resp).to_string())
    };
    let Ok(Some(text)) = tokio::time::timeout(Duration::from_secs(10), exchange).await else {
        return (0, String::new());
    };
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}

/// The availability topics a config names.
fn availability_topics(config: &Value) -> Vec<String> {
    config["availability"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["topic"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `unique_id`s and state topics of a config (per-entity or device-based).
fn components(config: &Value) -> Vec<(String, Option<String>)> {
    let one = |c: &Value| {
        c["unique_id"]
            .as_str()
            .map(|u| (u.to_string(), c["state_topic"].as_str().map(str::to_string)))
    };
    match config["cmps"].as_object() {
        Some(cmps) => cmps.values().filter_map(one).collect(),
        None => one(config).into_iter().collect(),
    }
}

/// Hearth's discovery configs on the broker, by topic.
fn hearth_configs(observer: &Observer) -> BTreeMap<String, Value> {
    observer
        .current()
        .into_iter()
        .filter(|(t, _)| t.starts_with("homeassistant/") && t.ends_with("/config"))
        .filter_map(|(t, p)| Some((t, serde_json::from_slice::<Value>(&p).ok()?)))
        .filter(|(_, v)| v["o"]["name"] == "Hearth" || v["origin"]["name"] == "Hearth")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bridges_share_a_broker_without_collisions_and_fail_apart() {
    common::init_logs();
    let mosquitto = common::mosquitto();
    let addr = BrokerAddress::local(mosquitto.port);
    let ha = Observer::connect(&addr, "#").await;

    // Bridge A: the server room, in this process.
    let clock = Clock::simulated(20.0);
    let (twin_stop, twin_shutdown) = shutdown::channel();
    let twin = ServerRoomTwin::start(
        clock,
        "127.0.0.1",
        mosquitto.port,
        TwinOptions::default(),
        twin_shutdown,
    )
    .await
    .expect("twin starts");
    let a_dir = tempfile::tempdir().unwrap();
    let mut config = hearth::demo::scenario_config(&addr, &twin.shelly_url(), Some(0)).unwrap();
    config.data_dir = Some(a_dir.path().to_path_buf());
    config.mqtt.base_topic = "site-a".into();
    config.homeassistant.discovery = DiscoveryMode::Entity;
    config.plugins.clear();
    let a = Bridge::start(config, clock).await.expect("bridge A starts");

    // Bridge B: a real process with an AC of its own (its IR bridge
    // absent) and A's temperature sensors mirrored.
    let b_dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(b_dir.path(), "tests").unwrap();
    let toml_path = b_dir.path().join("b.toml");
    std::fs::write(
        &toml_path,
        r#"[mqtt]
base_topic = "site-b"

[homeassistant]
discovery = "device"

[esp32]
enabled = false

[[ir_ac]]
id = "attic-ac"
name = "Attic AC"
tasmota_topic = "attic_ir"
vendor = "MITSUBISHI_AC"
temperature_sensor = "sensor.server_room_temperature"

[mirror]
discovery = ["homeassistant/sensor/+/+/config"]
device_class = ["temperature"]
"#,
    )
    .unwrap();
    let url = format!("mqtt://127.0.0.1:{}", mosquitto.port);
    let mut b = DemoProcess::spawn_command(
        "run",
        &["--config", toml_path.to_str().unwrap(), "--mqtt-url", &url],
        b_dir.path(),
    );
    b.wait_running().await;
    let b_addr: SocketAddr = ([127, 0, 0, 1], b.http_port).into();

    // Both bridges announced: A's server room, B's bridge and AC.
    let configs = wait_for("both bridges' configs", WAIT, || {
        let configs = hearth_configs(&ha);
        let naming = |state: &str| {
            configs
                .values()
                .filter(|c| availability_topics(c).iter().any(|t| t == state))
                .count()
        };
        (naming(A_STATE) >= 10 && naming(B_STATE) >= 2).then_some(configs)
    })
    .await;
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (topic, config) in &configs {
        let bridges: Vec<String> = availability_topics(config)
            .into_iter()
            .filter(|t| t.ends_with("/bridge/state"))
            .collect();
        assert_eq!(bridges.len(), 1, "{topic} names one bridge: {config}");
        let base = bridges[0].trim_end_matches("/bridge/state");
        for (unique_id, state_topic) in components(config) {
            if let Some(st) = state_topic {
                assert!(
                    st.starts_with(&format!("{base}/")),
                    "{topic}: state topic {st} outside its bridge's {base}/"
                );
            }
            ids.entry(unique_id).or_default().push(topic.clone());
        }
    }
    let shared: Vec<_> = ids.iter().filter(|(_, topics)| topics.len() > 1).collect();
    assert!(shared.is_empty(), "unique_ids announced twice: {shared:?}");
    // Both bridges' own devices are there (each has its connection_state).
    let bridge_ids: Vec<&String> = ids
        .keys()
        .filter(|u| u.ends_with("bridge_connection_state"))
        .collect();
    assert_eq!(bridge_ids.len(), 2, "{bridge_ids:?}");
    println!(
        "two bridges: {} configs, {} unique_ids, none shared",
        configs.len(),
        ids.len()
    );

    // B reads A's entity through A's discovery config and state topic.
    let a_store = a.store.clone();
    let mut seen = None;
    for _ in 0..300 {
        let want = a_store
            .get("sensor.server_room_temperature")
            .and_then(|s| s.number());
        let (status, body) =
            get(b_addr, "/api/states/sensor.server_room_temperature", &token).await;
        let got = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["state"].as_str()?.parse::<f64>().ok());
        if status == 200 && got.is_some() && got == want {
            seen = got;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.is_some(),
        "bridge B never showed A's server room temperature:\n{}",
        b.output()
    );

    // Kill B: its last will; only its entities go unavailable.
    b.signal("KILL");
    b.wait_exit(Duration::from_secs(10)).await;
    wait_for("B offline, A online", WAIT, || {
        let current = ha.current();
        (current.get(B_STATE).map(Vec::as_slice) == Some(&b"offline"[..])
            && current.get(A_STATE).map(Vec::as_slice) == Some(&b"online"[..]))
        .then_some(())
    })
    .await;
    let a_configs: BTreeSet<&String> = configs
        .iter()
        .filter(|(_, c)| availability_topics(c).iter().any(|t| t == A_STATE))
        .map(|(t, _)| t)
        .collect();
    assert!(a_configs.len() >= 10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let climate = a_store.get("climate.server_room_ac").unwrap();
    assert_ne!(climate.state, "unavailable", "A's entities stay available");
    assert!(a.link.is_connected());

    a.stop().await;
    twin_stop.trigger();
}
