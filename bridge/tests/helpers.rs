//! Helper entities (`[[select]]`, `[[number]]`; issue 14, items 3 and 4):
//! discovered by HA with its keys on the embedded broker, set over the
//! WebSocket API, REST and HA's MQTT command topics (the new state reaches
//! the broker), refused from every source with HA's words when the option
//! or value is not accepted (nothing changes), and kept across a restart.

use crate::common::{self, Observer, history::Ws, history::start_bridge, wait_for};
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::config::Config;
use hearth::drivers::helpers::config::{NumberConfig, NumberMode, SelectConfig};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(15);
const SEAT: &str = "select.outlet_3";
const LIMIT: &str = "number.ana_limit";
const DISCOVERY: &str = "homeassistant/device/helpers/config";
const SEAT_STATE: &str = "hearth/helpers/select_outlet-3/state";
const SEAT_SET: &str = "hearth/helpers/select_outlet-3/set";
const LIMIT_STATE: &str = "hearth/helpers/number_ana-limit/state";
const LIMIT_SET: &str = "hearth/helpers/number_ana-limit/set";

fn helpers(c: &mut Config) {
    c.select.push(SelectConfig {
        id: "outlet-3".into(),
        name: "Outlet 3 user".into(),
        options: vec!["nobody".into(), "ana".into(), "bo".into()],
        initial: None,
        icon: Some("mdi:account".into()),
    });
    c.number.push(NumberConfig {
        id: "ana-limit".into(),
        name: "Ana daily limit".into(),
        min: 0.0,
        max: 20.0,
        step: 0.5,
        unit_of_measurement: Some("kWh".into()),
        mode: NumberMode::Box,
        initial: Some(5.0),
        icon: None,
    });
}

fn state(b: &Bridge, id: &str) -> String {
    b.store.get(id).map(|s| s.state).unwrap_or_default()
}

async fn wait_state(b: &Bridge, id: &str, want: &str) {
    wait_for(&format!("{id} = {want}"), WAIT, || {
        (state(b, id) == want).then_some(())
    })
    .await;
}

async fn wait_payload(obs: &Observer, topic: &str, want: &str) {
    wait_for(&format!("{want} on {topic}"), WAIT, || {
        obs.current()
            .get(topic)
            .is_some_and(|p| p == want.as_bytes())
            .then_some(())
    })
    .await;
}

fn call(domain: &str, service: &str, entity: &str, data: Value) -> Value {
    json!({"type": "call_service", "domain": domain, "service": service,
           "service_data": data, "target": {"entity_id": entity}})
}

/// A plain HTTP/1.1 POST over a real socket: (status, body as JSON).
async fn post(addr: SocketAddr, path: &str, token: &str, body: Value) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.to_string();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_are_discovered_set_refused_and_restored() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), helpers).await;
    let obs = Observer::connect(&bridge.broker, "#").await;

    // Discovery: one device config with HA's select and number keys.
    let cmps = wait_for("the helpers' discovery config", WAIT, || {
        let c = obs.current().get(DISCOVERY).cloned()?;
        let v: Value = serde_json::from_slice(&c).ok()?;
        Some(v["cmps"].clone())
    })
    .await;
    let seat = &cmps["select_outlet-3"];
    assert_eq!(seat["p"], "select", "{cmps}");
    assert_eq!(seat["default_entity_id"], SEAT);
    assert_eq!(seat["options"], json!(["nobody", "ana", "bo"]));
    assert_eq!(seat["command_topic"], SEAT_SET);
    assert_eq!(seat["state_topic"], SEAT_STATE);
    assert_eq!(seat["icon"], "mdi:account");
    assert_eq!(seat["name"], "Outlet 3 user");
    let limit = &cmps["number_ana-limit"];
    assert_eq!(limit["p"], "number", "{cmps}");
    assert_eq!(limit["default_entity_id"], LIMIT);
    for (k, v) in [
        ("min", json!(0.0)),
        ("max", json!(20.0)),
        ("step", json!(0.5)),
        ("mode", json!("box")),
        ("unit_of_measurement", json!("kWh")),
        ("command_topic", json!(LIMIT_SET)),
        ("state_topic", json!(LIMIT_STATE)),
    ] {
        assert_eq!(limit[k], v, "{k}: {cmps}");
    }
    // Initial states: the first option, the configured value.
    wait_payload(&obs, SEAT_STATE, "nobody").await;
    wait_payload(&obs, LIMIT_STATE, "5.0").await;

    // WebSocket: select_option, set_value (rounded to the step), next.
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let r = ws
        .call(call(
            "select",
            "select_option",
            SEAT,
            json!({"option": "ana"}),
        ))
        .await;
    assert_eq!(r["success"], true, "{r}");
    wait_payload(&obs, SEAT_STATE, "ana").await;
    let r = ws
        .call(call("number", "set_value", LIMIT, json!({"value": 7.3})))
        .await;
    assert_eq!(r["success"], true, "{r}");
    wait_payload(&obs, LIMIT_STATE, "7.5").await;
    let r = ws
        .call(call("select", "select_next", SEAT, json!({})))
        .await;
    assert_eq!(r["success"], true, "{r}");
    wait_state(&bridge, SEAT, "bo").await;
    // The entity's attributes as HA shows them.
    let r = ws.call(json!({"type": "get_states"})).await;
    let all = r["result"].as_array().unwrap();
    let s = all.iter().find(|s| s["entity_id"] == LIMIT).unwrap();
    assert_eq!(s["attributes"]["min"], 0.0, "{s}");
    assert_eq!(s["attributes"]["unit_of_measurement"], "kWh", "{s}");
    let s = all.iter().find(|s| s["entity_id"] == SEAT).unwrap();
    assert_eq!(
        s["attributes"]["options"],
        json!(["nobody", "ana", "bo"]),
        "{s}"
    );

    // MQTT, as HA sends them.
    obs.publish(SEAT_SET, "ana").await;
    wait_payload(&obs, SEAT_STATE, "ana").await;
    obs.publish(LIMIT_SET, "12").await;
    wait_payload(&obs, LIMIT_STATE, "12.0").await;
    wait_state(&bridge, LIMIT, "12.0").await;

    // Refusals from every source; nothing changes.
    let r = ws
        .call(call(
            "select",
            "select_option",
            SEAT,
            json!({"option": "zed"}),
        ))
        .await;
    let e = &r["error"];
    assert_eq!(e["code"], "service_validation_error", "{r}");
    assert_eq!(
        e["message"],
        "Validation error: Option zed is not valid for entity select.outlet_3, valid options are: nobody, ana, bo."
    );
    assert_eq!(
        (
            e["translation_domain"].as_str(),
            e["translation_key"].as_str()
        ),
        (Some("select"), Some("not_valid_option")),
        "{r}"
    );
    for v in [json!(20.5), json!(-1), json!(1e308)] {
        let r = ws
            .call(call("number", "set_value", LIMIT, json!({"value": v})))
            .await;
        let e = &r["error"];
        assert_eq!(e["code"], "service_validation_error", "{v}: {r}");
        assert_eq!(e["translation_key"], "out_of_range", "{r}");
        assert!(
            e["message"]
                .as_str()
                .unwrap()
                .ends_with("is outside valid range 0.0 - 20.0."),
            "{r}"
        );
    }
    let (status, body) = post(
        bridge.http_addr,
        "/api/services/select/select_option",
        &token,
        json!({"entity_id": SEAT, "option": "zed"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("Option zed is not valid"),
        "{body}"
    );
    let (status, body) = post(
        bridge.http_addr,
        "/api/services/number/set_value",
        &token,
        json!({"entity_id": LIMIT, "value": 21}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("outside valid range"),
        "{body}"
    );
    let mark = common::log_mark();
    obs.publish(SEAT_SET, "zed").await;
    obs.publish(LIMIT_SET, "99").await;
    obs.publish(LIMIT_SET, "lots").await;
    wait_for("the MQTT refusals logged", WAIT, || {
        let logs = common::logs_since(mark);
        (logs.contains("Option zed is not valid") || logs.contains("\"zed\" is not one of"))
            .then_some(())?;
        logs.contains("outside the accepted range").then_some(())?;
        logs.contains("expected a number").then_some(())
    })
    .await;
    // A good command after the bad ones: the bad ones left no trace.
    obs.publish(SEAT_SET, "bo").await;
    wait_payload(&obs, SEAT_STATE, "bo").await;
    assert_eq!(state(&bridge, LIMIT), "12.0");
    for p in obs.payloads_on(SEAT_STATE) {
        assert!(["nobody", "ana", "bo"].contains(&p.as_str()), "{p}");
    }
    for p in obs.payloads_on(LIMIT_STATE) {
        assert!(["5.0", "7.5", "12.0"].contains(&p.as_str()), "{p}");
    }

    // Restart: the saved states win over the config's initial values.
    bridge.stop().await;
    let saved = std::fs::read_to_string(dir.path().join("restore_state.json")).unwrap();
    assert!(saved.contains(SEAT) && saved.contains(LIMIT), "{saved}");
    let bridge = start_bridge(dir.path(), helpers).await;
    wait_state(&bridge, SEAT, "bo").await;
    wait_state(&bridge, LIMIT, "12.0").await;
    bridge.stop().await;
}
