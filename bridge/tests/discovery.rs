//! Home Assistant discovery on the wire, against the embedded broker and
//! Mosquitto: every config parses, carries `unique_id`, a device block,
//! `origin` and availability, uses only unit/device-class pairs HA accepts;
//! HA's birth message brings states back; removing a device clears its
//! retained configs.

use crate::common;

use common::{BrokerKind, Harness, Observer, wait_for};
use hearth::discovery::DiscoveryMode;
use hearth::discovery::units::{check_binary_sensor, check_sensor};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const DEVICES: [&str; 5] = [
    "bridge",
    "server-room",
    "server-room-ac",
    "server-room-ac-plug",
    "plugin-thermostat",
];

/// Checks one component config; returns its platform.
fn check_component(where_: &str, platform: &str, c: &Value) {
    let uid = c["unique_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{where_}: no unique_id"));
    assert!(uid.starts_with("hearth_"), "{where_}: unique_id {uid}");
    let s = |k: &str| c.get(k).and_then(Value::as_str);
    match platform {
        "sensor" => {
            if let Err(e) = check_sensor(
                s("device_class"),
                s("unit_of_measurement"),
                s("state_class"),
            ) {
                panic!("{where_}: {e}");
            }
            assert!(
                s("state_topic").is_some(),
                "{where_}: sensor without state_topic"
            );
        }
        "binary_sensor" => {
            check_binary_sensor(s("device_class")).unwrap();
            assert!(s("state_topic").is_some());
        }
        "switch" => assert!(
            s("command_topic").is_some() && s("state_topic").is_some(),
            "{where_}"
        ),
        "climate" => {
            assert_eq!(c["modes"], serde_json::json!(["off", "cool"]), "{where_}");
            for k in [
                "mode_command_topic",
                "temperature_command_topic",
                "current_temperature_topic",
                "action_topic",
            ] {
                assert!(s(k).is_some(), "{where_}: climate without {k}");
            }
        }
        "event" => {
            // The bridge's alert event entity (HA requires event_types).
            assert!(s("state_topic").is_some(), "{where_}");
            assert_eq!(
                c["event_types"],
                serde_json::json!(["raised", "repeated", "cleared"]),
                "{where_}"
            );
        }
        other => panic!("{where_}: unexpected platform {other}"),
    }
}

fn check_availability(where_: &str, v: &Value) {
    let avty = v["availability"]
        .as_array()
        .unwrap_or_else(|| panic!("{where_}: no availability"));
    assert!(
        avty.iter().any(|a| a["topic"] == "hearth/bridge/state"),
        "{where_}: bridge state not in availability"
    );
    assert_eq!(v["availability_mode"], "all", "{where_}");
}

/// Parses every retained config; returns device id → number of components.
fn check_configs(
    current: &BTreeMap<String, Vec<u8>>,
    mode: DiscoveryMode,
) -> BTreeMap<String, usize> {
    let mut per_device: BTreeMap<String, usize> = BTreeMap::new();
    for (topic, payload) in current.iter().filter(|(t, _)| t.ends_with("/config")) {
        let v: Value =
            serde_json::from_slice(payload).unwrap_or_else(|e| panic!("{topic}: not JSON: {e}"));
        check_availability(topic, &v);
        match mode {
            DiscoveryMode::Device => {
                let dev_id = topic.split('/').nth(2).unwrap();
                assert_eq!(
                    v["dev"]["ids"][0],
                    format!("hearth_{dev_id}"),
                    "{topic}: device identifiers"
                );
                assert!(v["dev"]["name"].is_string(), "{topic}: device name");
                assert_eq!(v["o"]["name"], "Hearth", "{topic}: origin");
                let cmps = v["cmps"]
                    .as_object()
                    .unwrap_or_else(|| panic!("{topic}: no cmps"));
                for (key, c) in cmps {
                    check_component(&format!("{topic} cmps.{key}"), c["p"].as_str().unwrap(), c);
                }
                *per_device.entry(dev_id.into()).or_default() += cmps.len();
            }
            DiscoveryMode::Entity => {
                let parts: Vec<&str> = topic.split('/').collect();
                let (platform, dev_id) = (parts[1], parts[2]);
                check_component(topic, platform, &v);
                assert_eq!(
                    v["device"]["identifiers"][0],
                    format!("hearth_{dev_id}"),
                    "{topic}"
                );
                assert_eq!(v["origin"]["name"], "Hearth", "{topic}");
                *per_device.entry(dev_id.into()).or_default() += 1;
            }
        }
    }
    per_device
}

async fn discovery_round(kind: BrokerKind, mode: DiscoveryMode) {
    let h = Harness::start(kind, 60.0, |c| c.homeassistant.discovery = mode).await;
    let ha = Observer::connect(&h.broker.addr, "#").await;
    // All devices, and the plug's meters (created on its first status).
    // Components per device: bridge connection state, recorder problem and
    // alert events; node temperature,
    // humidity, rssi, uptime; AC climate + power switch + IR problem
    // (closed-loop IR: the AC has a power sensor); plug switch + 4 meters +
    // problem (the device's `errors`; created on its first status); plugin
    // status, fault, over_temperature, ac_not_cooling, sensor_unavailable.
    let expected: BTreeMap<String, usize> = DEVICES
        .iter()
        .map(|d| d.to_string())
        .zip([3, 4, 3, 6, 5])
        .collect();
    let mut last = BTreeMap::new();
    let waited = common::try_wait(Duration::from_secs(30), || {
        last = check_configs(&ha.current(), mode);
        (last == expected).then_some(())
    })
    .await;
    assert!(
        waited.is_some(),
        "discovery configs per device: got {last:?}, expected {expected:?}"
    );

    // Availability and live states are there too.
    let current = ha.current();
    assert_eq!(
        current.get("hearth/bridge/state").map(Vec::as_slice),
        Some(&b"online"[..])
    );
    assert_eq!(
        current
            .get("hearth/server-room/availability")
            .map(Vec::as_slice),
        Some(&b"online"[..])
    );
    let t: f64 = wait_for("a temperature state", Duration::from_secs(10), || {
        ha.current()
            .get("hearth/server-room/temperature/state")
            .and_then(|p| String::from_utf8_lossy(p).parse().ok())
    })
    .await;
    assert!((15.0..40.0).contains(&t), "temperature {t}");

    // HA's birth message brings every state back.
    let before = ha.payloads_on("hearth/server-room-ac/climate/state").len();
    ha.publish("homeassistant/status", "online").await;
    wait_for(
        "states republished after HA birth",
        Duration::from_secs(10),
        || (ha.payloads_on("hearth/server-room-ac/climate/state").len() > before).then_some(()),
    )
    .await;

    // A node that withdraws its announcement disappears from HA.
    ha.client
        .publish(
            "hearth-node/server-room/announce",
            rumqttc::QoS::AtLeastOnce,
            true,
            Vec::new(),
        )
        .await
        .unwrap();
    wait_for("node configs cleared", Duration::from_secs(10), || {
        let gone = !ha
            .current()
            .keys()
            .any(|t| t.starts_with("homeassistant/") && t.contains("/server-room/"));
        gone.then_some(())
    })
    .await;
    assert!(
        !ha.current()
            .contains_key("hearth/server-room/temperature/state"),
        "retained state cleared too"
    );
    h.stop().await;
    // A clean stop leaves discovery retained and the bridge offline.
    wait_for("bridge offline", Duration::from_secs(5), || {
        (ha.current().get("hearth/bridge/state").map(Vec::as_slice) == Some(b"offline"))
            .then_some(())
    })
    .await;
    assert!(
        ha.current()
            .keys()
            .any(|t| t.starts_with("homeassistant/") && t.contains("server-room-ac"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_discovery_on_embedded_broker() {
    discovery_round(BrokerKind::Embedded, DiscoveryMode::Device).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_discovery_on_embedded_broker() {
    discovery_round(BrokerKind::Embedded, DiscoveryMode::Entity).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_discovery_on_mosquitto() {
    discovery_round(BrokerKind::Mosquitto, DiscoveryMode::Device).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_discovery_on_mosquitto() {
    discovery_round(BrokerKind::Mosquitto, DiscoveryMode::Entity).await;
}

/// Retained configs this bridge left in an earlier run, for devices it no
/// longer has, are cleared at startup; other publishers' configs are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_configs_from_an_earlier_run_are_cleared() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Mosquitto);
    let ha = Observer::connect(&broker.addr, "homeassistant/#").await;
    let ours = r#"{"dev":{"ids":["hearth_old-plug"],"name":"Old plug"},"o":{"name":"Hearth"},"cmps":{},"availability":[{"topic":"hearth/bridge/state"},{"topic":"hearth/old-plug/availability"}]}"#;
    let theirs = r#"{"dev":{"ids":["zigbee_lamp"],"name":"Lamp"},"o":{"name":"Zigbee2MQTT"},"cmps":{},"availability":[{"topic":"zigbee2mqtt/bridge/state"}]}"#;
    let old_entity = r#"{"unique_id":"hearth_old-plug_power","o":{"name":"Hearth"},"availability":[{"topic":"hearth/bridge/state"}]}"#;
    for (topic, payload) in [
        ("homeassistant/device/old-plug/config", ours),
        ("homeassistant/device/zigbee-lamp/config", theirs),
        ("homeassistant/sensor/old-plug/power/config", old_entity),
    ] {
        ha.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload)
            .await
            .unwrap();
    }
    wait_for("retained configs in place", Duration::from_secs(5), || {
        (ha.current().len() >= 3).then_some(())
    })
    .await;

    let mut config = hearth::config::Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
    config.http.port = 0;
    let bridge = hearth::app::Bridge::start(config, hearth::clock::Clock::real())
        .await
        .unwrap();
    wait_for(
        "stale Hearth configs cleared",
        Duration::from_secs(10),
        || {
            let c = ha.current();
            let gone = !c.contains_key("homeassistant/device/old-plug/config")
                && !c.contains_key("homeassistant/sensor/old-plug/power/config");
            gone.then_some(())
        },
    )
    .await;
    let c = ha.current();
    assert!(
        c.contains_key("homeassistant/device/zigbee-lamp/config"),
        "another publisher's config stays"
    );
    assert!(
        c.contains_key("homeassistant/device/bridge/config"),
        "the bridge's own config is there"
    );
    bridge.stop().await;
}

/// An `event` entity fired twice before the publisher runs (an alert raised
/// and cleared at once) reaches HA twice, in order and not retained: events
/// are not folded into the last state as states are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_ha_even_within_one_batch() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Mosquitto);
    let topic = "hearth/bridge/alerts/state";
    let ha = Observer::connect(&broker.addr, topic).await;
    let mut config = hearth::config::Config::default();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
    config.http.port = 0;
    let bridge = hearth::app::Bridge::start(config, hearth::clock::Clock::real())
        .await
        .unwrap();
    wait_for("the alert event entity", Duration::from_secs(10), || {
        bridge.store.spec("event.bridge_alerts").map(|_| ())
    })
    .await;
    // Give the publisher its initial flush, then fire a burst it can only
    // see as one batch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fired: Vec<String> = (0..20).map(|i| format!("burst-{i}")).collect();
    for (i, key) in fired.iter().enumerate() {
        let mut attrs = serde_json::Map::new();
        let kind = if i % 2 == 0 { "raised" } else { "cleared" };
        attrs.insert("event_type".into(), kind.into());
        attrs.insert("key".into(), key.clone().into());
        bridge
            .store
            .set_state(
                "event.bridge_alerts",
                format!("2026-11-21T00:00:{i:02}Z"),
                attrs,
            )
            .unwrap();
    }
    let got: Vec<(String, bool)> = wait_for("all 20 events", Duration::from_secs(10), || {
        let got: Vec<(String, bool)> = ha
            .messages()
            .into_iter()
            .filter(|(t, _, _)| t == topic)
            .filter_map(|(_, p, retain)| {
                let v: Value = serde_json::from_slice(&p).ok()?;
                Some((v.get("key")?.as_str()?.to_string(), retain))
            })
            .collect();
        (got.len() >= fired.len()).then_some(got)
    })
    .await;
    let keys: Vec<&String> = got.iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        fired.iter().collect::<Vec<_>>(),
        "every event, in order"
    );
    assert!(
        got.iter().all(|(_, retain)| !retain),
        "events are never retained"
    );
    bridge.stop().await;
}
