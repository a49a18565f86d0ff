//! Laptop battery levels (issue 14, item 2): a HASS.Agent-shaped discovery
//! config on the embedded broker is mirrored read-only under HA's entity
//! id, and scripts post states through `POST /api/states/<entity_id>`.
//! Both are seen over REST and the WebSocket API, neither is announced to
//! HA again, and Hearth's own configs and entities are left alone.

use crate::common::{self, Observer, history::Ws, history::start_bridge, wait_for};
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::discovery::DiscoveryMode;
use hearth::discovery::mirror::MirrorConfig;
use hearth::entity::{Component, EntitySpec};
use rumqttc::QoS;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);
const CONFIG: &str = "homeassistant/sensor/laptop-7/laptop-7_battery/config";
const STATE: &str = "homeassistant/sensor/laptop-7/laptop-7_battery/state";
const AVAILABILITY: &str = "homeassistant/sensor/laptop-7/availability";
const ID: &str = "sensor.laptop_7_battery";

/// HASS.Agent's battery sensor config, as it publishes it.
fn hass_agent_config() -> String {
    json!({
        "name": "Battery",
        "unique_id": "laptop-7_battery_charge_remaining_percentage",
        "state_topic": STATE,
        "value_template": "{{ value_json.battery_charge_remaining_percentage | int }}",
        "unit_of_measurement": "%",
        "device_class": "battery",
        "state_class": "measurement",
        "availability_topic": AVAILABILITY,
        "device": {
            "identifiers": ["hass.agent-laptop-7"],
            "manufacturer": "HASS.Agent Team",
            "model": "Microsoft Windows 11",
            "name": "laptop-7",
            "sw_version": "2.1.1"
        }
    })
    .to_string()
}

async fn retain(obs: &Observer, topic: &str, payload: &str) {
    obs.client
        .publish(topic, QoS::AtLeastOnce, true, payload.as_bytes().to_vec())
        .await
        .unwrap();
}

/// A plain HTTP/1.1 request over a real socket: (status, headers, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut resp))
        .await
        .expect("response within 15 s")
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_lowercase(), body.to_string())
}

/// The state of `id` in `GET /api/states`.
async fn rest_state(b: &Bridge, token: &str, id: &str) -> Option<Value> {
    let (status, _, body) = http(b.http_addr, "GET", "/api/states", Some(token), "").await;
    assert_eq!(status, 200, "{body}");
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    all.into_iter().find(|s| s["entity_id"] == id)
}

/// The state of `id` in the WebSocket `get_states`.
async fn ws_state(ws: &mut Ws, id: &str) -> Option<Value> {
    let r = ws.call(json!({"type": "get_states"})).await;
    assert_eq!(r["success"], true, "{r}");
    r["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["entity_id"] == id)
        .cloned()
}

/// Waits until `GET /api/states` shows `id` in `state` (or absent for `None`).
async fn wait_rest(b: &Bridge, token: &str, id: &str, state: Option<&str>) -> Option<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let s = rest_state(b, token, id).await;
        if s.as_ref().map(|s| s["state"].as_str().unwrap_or("")) == state {
            return s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{id}: waited for {state:?}, last seen {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Hearth battery sensor, `sensor.marker_battery`; once its state reaches
/// the broker, the publisher has handled every earlier store event.
async fn publisher_caught_up(b: &Bridge, obs: &Observer, value: &str) {
    let store = &b.store;
    if store.device("marker").is_none() {
        store
            .upsert_device("test", common::history::device("marker"))
            .unwrap();
        store
            .upsert_entity(
                EntitySpec::new("marker", "battery", Component::Sensor)
                    .named("Battery")
                    .class("battery")
                    .measured("%", "measurement"),
            )
            .unwrap();
    }
    store
        .set_state("sensor.marker_battery", value, Map::new())
        .unwrap();
    wait_for("the marker's state on the broker", WAIT, || {
        obs.payloads_on("hearth/marker/battery/state")
            .contains(&value.to_string())
            .then_some(())
    })
    .await;
}

/// Nothing Hearth published names a foreign device (`mirror-…`, `api-…`).
fn nothing_announced(obs: &Observer) {
    for (topic, payload, _) in obs.messages() {
        let p = String::from_utf8_lossy(&payload);
        assert!(
            !topic.contains("mirror-")
                && !topic.contains("/api-")
                && !p.contains("mirror-")
                && !p.contains("\"api-"),
            "Hearth announced a foreign entity: {topic} {p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hass_agent_battery_sensor_is_mirrored_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |c| {
        // One config per entity: Hearth's own battery sensor's config lands
        // on a topic the mirror follows, and must be skipped.
        c.homeassistant.discovery = DiscoveryMode::Entity;
        c.mirror = Some(MirrorConfig {
            discovery: vec!["homeassistant/sensor/+/+/config".into()],
            device_class: Some(vec!["battery".into()]),
        });
    })
    .await;
    let obs = Observer::connect(&bridge.broker, "#").await;
    let mark = common::log_mark();
    publisher_caught_up(&bridge, &obs, "50").await;

    retain(&obs, AVAILABILITY, "online").await;
    retain(
        &obs,
        STATE,
        r#"{"battery_charge_remaining_percentage": 87.0}"#,
    )
    .await;
    retain(&obs, CONFIG, &hass_agent_config()).await;
    // Another class: not followed.
    retain(
        &obs,
        "homeassistant/sensor/laptop-7/laptop-7_cpu/config",
        &json!({"name": "CPU", "state_topic": "x/cpu", "unit_of_measurement": "%",
                "device": {"identifiers": ["hass.agent-laptop-7"], "name": "laptop-7"}})
        .to_string(),
    )
    .await;

    let s = wait_rest(&bridge, &token, ID, Some("87")).await.unwrap();
    let a = &s["attributes"];
    assert_eq!(a["unit_of_measurement"], "%", "{s}");
    assert_eq!(a["device_class"], "battery", "{s}");
    assert_eq!(a["state_class"], "measurement", "{s}");
    assert_eq!(a["friendly_name"], "laptop-7 Battery", "{s}");
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let w = ws_state(&mut ws, ID).await.expect("in get_states");
    assert_eq!(w["state"], "87");
    assert_eq!(w["attributes"]["device_class"], "battery");
    assert_eq!(w["attributes"]["unit_of_measurement"], "%");
    assert!(
        rest_state(&bridge, &token, "sensor.laptop_7_cpu")
            .await
            .is_none()
    );

    // A new reading follows; the agent going offline makes it unavailable,
    // coming back shows the reading again.
    retain(
        &obs,
        STATE,
        r#"{"battery_charge_remaining_percentage": 64.4}"#,
    )
    .await;
    wait_rest(&bridge, &token, ID, Some("64")).await;
    retain(&obs, AVAILABILITY, "offline").await;
    wait_rest(&bridge, &token, ID, Some("unavailable")).await;
    retain(&obs, AVAILABILITY, "online").await;
    wait_rest(&bridge, &token, ID, Some("64")).await;

    // Read-only: a posted state is refused, naming the entity and why.
    let (status, _, body) = http(
        bridge.http_addr,
        "POST",
        &format!("/api/states/{ID}"),
        Some(&token),
        r#"{"state": "100"}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(ID) && body.contains("mirrored"), "{body}");

    // Hearth's own battery sensor's config was seen on the followed filter
    // and skipped; nothing foreign was announced back.
    publisher_caught_up(&bridge, &obs, "51").await;
    if !obs
        .current()
        .contains_key("homeassistant/sensor/marker/battery/config")
    {
        panic!(
            "Hearth's own config is not on the followed topic: {}",
            common::logs_since(0)
        );
    }
    let logs = common::logs_since(mark);
    assert!(!logs.contains("homeassistant/sensor/marker/"), "{logs}");
    let foreign: Vec<String> = bridge
        .store
        .snapshot()
        .devices
        .iter()
        .filter(|(d, _)| {
            bridge.store.device_owner(&d.id).as_deref() == Some(hearth::discovery::mirror::OWNER)
        })
        .map(|(d, _)| d.id.clone())
        .collect();
    assert_eq!(foreign, ["mirror-hass_agent_laptop_7"]);
    nothing_announced(&obs);

    // The agent clears its retained config: the entity goes.
    retain(&obs, CONFIG, "").await;
    wait_rest(&bridge, &token, ID, None).await;
    let (status, _, _) = http(
        bridge.http_addr,
        "GET",
        &format!("/api/states/{ID}"),
        Some(&token),
        "",
    )
    .await;
    assert_eq!(status, 404);
    assert!(ws_state(&mut ws, ID).await.is_none());
    assert!(bridge.store.device("mirror-hass_agent_laptop_7").is_none());
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_template_is_named_and_the_entity_stays_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(dir.path(), |c| {
        c.mirror = Some(MirrorConfig {
            discovery: vec!["homeassistant/sensor/+/+/config".into()],
            device_class: None,
        });
    })
    .await;
    let obs = Observer::connect(&bridge.broker, "#").await;
    let mark = common::log_mark();
    let topic = "homeassistant/sensor/laptop-8/battery/config";
    let template = "{{ (value_json.level * 100) | round }}";
    retain(&obs, "agents/laptop-8/battery", r#"{"level": 0.5}"#).await;
    retain(
        &obs,
        topic,
        &json!({"name": "Battery", "state_topic": "agents/laptop-8/battery",
                "value_template": template, "unit_of_measurement": "%",
                "device_class": "battery", "device": {"name": "laptop-8", "ids": "lt8"}})
        .to_string(),
    )
    .await;
    // A malformed config is refused with its topic, not a panic.
    retain(
        &obs,
        "homeassistant/sensor/laptop-8/broken/config",
        "{\"name\": ",
    )
    .await;
    let logs = wait_for("both warnings", WAIT, || {
        let l = common::logs_since(mark);
        (l.contains(
            "homeassistant/sensor/laptop-8/broken/config: discovery config not mirrored: not JSON",
        ) && l.contains(template))
        .then_some(l)
    })
    .await;
    assert!(
        logs.contains(&format!(
            "{topic}: value_template `{template}` is not supported"
        )),
        "{logs}"
    );
    let s = wait_for("the entity", WAIT, || {
        bridge.store.get("sensor.laptop_8_battery")
    })
    .await;
    assert_eq!(s.state, "unknown");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_post_battery_levels_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (record, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let obs = Observer::connect(&bridge.broker, "#").await;
    let addr = bridge.http_addr;
    let path = format!("/api/states/{ID}");
    let body = json!({"state": "87", "attributes": {"unit_of_measurement": "%",
        "device_class": "battery", "friendly_name": "Laptop 7 battery"}})
    .to_string();

    let (status, _, _) = http(addr, "POST", &path, None, &body).await;
    assert_eq!(status, 401);
    let (status, head, resp) = http(addr, "POST", &path, Some(&token), &body).await;
    assert_eq!(status, 201, "{resp}");
    assert!(head.contains(&format!("location: {path}")), "{head}");
    let v: Value = serde_json::from_str(&resp).unwrap();
    assert_eq!(
        (v["entity_id"].as_str(), v["state"].as_str()),
        (Some(ID), Some("87"))
    );
    assert_eq!(v["attributes"]["friendly_name"], "Laptop 7 battery");

    let body = json!({"state": "86", "attributes": {"unit_of_measurement": "%",
        "device_class": "battery"}})
    .to_string();
    let (status, head, resp) = http(addr, "POST", &path, Some(&token), &body).await;
    assert_eq!(status, 200, "{resp}");
    assert!(!head.contains("location:"), "{head}");
    let mut ws = Ws::auth(addr, &token).await;
    let w = ws_state(&mut ws, ID).await.expect("in get_states");
    assert_eq!(w["state"], "86");
    assert_eq!(w["attributes"]["device_class"], "battery");
    assert_eq!(w["attributes"]["unit_of_measurement"], "%");
    // Plugins read it from the store, with the poster as the context's user.
    let s = bridge.store.get(ID).unwrap();
    assert_eq!(s.number(), Some(86.0));
    assert_eq!(s.context.user_id.as_deref(), Some(record.id.as_str()));

    // Refusals: an entity Hearth drives, bad ids and bodies.
    let (status, _, resp) = http(
        addr,
        "POST",
        "/api/states/binary_sensor.bridge_connection_state",
        Some(&token),
        r#"{"state": "off"}"#,
    )
    .await;
    assert_eq!(status, 400, "{resp}");
    assert!(
        resp.contains("binary_sensor.bridge_connection_state is driven by Hearth"),
        "{resp}"
    );
    assert_eq!(
        bridge
            .store
            .get("binary_sensor.bridge_connection_state")
            .unwrap()
            .state,
        "on"
    );
    for (p, b, why) in [
        (
            "/api/states/sensor.Laptop",
            r#"{"state": "1"}"#,
            "Invalid entity ID",
        ),
        (path.as_str(), r#"{"attributes": {}}"#, "No state specified"),
        (path.as_str(), "{", "Invalid JSON"),
        (
            path.as_str(),
            r#"{"state": "1", "attributes": 3}"#,
            "attributes must be",
        ),
        (
            "/api/states/climate.x",
            r#"{"state": "1"}"#,
            "domain `climate`",
        ),
        (
            path.as_str(),
            &json!({"state": "x".repeat(256)}).to_string(),
            "255",
        ),
    ] {
        let (status, _, resp) = http(addr, "POST", p, Some(&token), b).await;
        assert_eq!(status, 400, "{p} {b}: {resp}");
        assert!(resp.contains(why), "{p} {b}: {resp}");
    }
    assert_eq!(bridge.store.get(ID).unwrap().state, "86");

    // Not announced to HA.
    publisher_caught_up(&bridge, &obs, "1").await;
    nothing_announced(&obs);
    bridge.stop().await;
}
