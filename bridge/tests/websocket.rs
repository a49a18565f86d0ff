//! HA's WebSocket and REST APIs over real sockets against a running bridge
//! and twin: the auth phase, every command with its success and error
//! shapes, subscriptions, service calls that move a twin device, malformed
//! frames, token revocation and a client that stops reading.

use crate::common;

use common::{BrokerKind, Harness, log_mark, logs_since, wait_for};
use futures_util::{SinkExt, StreamExt};
use hearth::api::auth::tokens;
use hearth::entity::{Component, Device, EntitySpec};
use serde_json::{Map, Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CLIMATE: &str = "climate.server_room_ac";
const TEMPERATURE: &str = "sensor.server_room_temperature";

/// A WebSocket client that keeps messages it was not waiting for.
struct Ws {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    stash: VecDeque<Value>,
    /// Frames that held a JSON array (coalesced messages).
    arrays: usize,
}

/// How a connection ended, as the client saw it.
#[derive(Debug)]
enum Ended {
    Close(Option<CloseFrame>),
    Gone,
}

impl Ws {
    async fn connect(addr: SocketAddr) -> Ws {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
            .await
            .expect("WebSocket upgrade");
        Ws {
            ws,
            next_id: 1,
            stash: VecDeque::new(),
            arrays: 0,
        }
    }

    /// Connects and authenticates.
    async fn auth(addr: SocketAddr, token: &str) -> Ws {
        let mut ws = Ws::connect(addr).await;
        let first = ws.recv().await;
        assert_eq!(first["type"], "auth_required");
        ws.send(json!({"type": "auth", "access_token": token}))
            .await;
        let ok = ws.recv().await;
        assert_eq!(ok["type"], "auth_ok", "{ok}");
        ws
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// Sends a command with the next id; returns the id.
    async fn cmd(&mut self, mut v: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        v["id"] = json!(id);
        self.send(v).await;
        id
    }

    /// The next message (arrays from coalescing are split).
    async fn recv(&mut self) -> Value {
        if let Some(v) = self.stash.pop_front() {
            return v;
        }
        self.read()
            .await
            .expect("a message, not the end of the connection")
    }

    async fn read(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("a message within 15 s")?;
            match frame {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("server sends JSON");
                    return Some(match v {
                        Value::Array(items) => {
                            self.arrays += 1;
                            let mut items = VecDeque::from(items);
                            let first = items.pop_front().expect("non-empty array");
                            self.stash.extend(items);
                            first
                        }
                        other => other,
                    });
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// The first message matching `pred`; others are kept for later.
    async fn next_matching(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i).unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = tokio::time::timeout(left, self.read())
                .await
                .unwrap_or_else(|_| panic!("no {what} within 15 s; kept: {:?}", self.stash))
                .unwrap_or_else(|| panic!("connection ended while waiting for {what}"));
            if pred(&v) {
                return v;
            }
            self.stash.push_back(v);
        }
    }

    async fn result(&mut self, id: u64) -> Value {
        self.next_matching(&format!("result {id}"), |v| {
            v["type"] == "result" && v["id"] == id
        })
        .await
    }

    /// Sends a command and returns its `result` message.
    async fn call(&mut self, v: Value) -> Value {
        let id = self.cmd(v).await;
        self.result(id).await
    }

    async fn event(&mut self, sub: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.next_matching(what, |v| {
            v["type"] == "event" && v["id"] == sub && pred(&v["event"])
        })
        .await["event"]
            .clone()
    }

    /// Reads until the server ends the connection.
    async fn ended(&mut self) -> Ended {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("the server closes within 15 s");
            match frame {
                Some(Ok(Message::Close(f))) => return Ended::Close(f),
                None | Some(Err(_)) => return Ended::Gone,
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn ping_ok(&mut self) {
        let id = self.cmd(json!({"type": "ping"})).await;
        let pong = self
            .next_matching("pong", |v| v["type"] == "pong" && v["id"] == id)
            .await;
        assert_eq!(pong, json!({"id": id, "type": "pong"}));
    }
}

fn close_code(e: &Ended) -> Option<u16> {
    match e {
        Ended::Close(Some(f)) => Some(f.code.into()),
        _ => None,
    }
}

fn assert_error(res: &Value, code: &str) -> String {
    assert_eq!(res["type"], "result", "{res}");
    assert_eq!(res["success"], false, "{res}");
    assert_eq!(res["error"]["code"], code, "{res}");
    let msg = res["error"]["message"]
        .as_str()
        .expect("a message")
        .to_string();
    assert!(!msg.is_empty());
    msg
}

async fn start(tweak: impl FnOnce(&mut hearth::config::Config)) -> (Harness, String) {
    let h = Harness::start(BrokerKind::Embedded, 60.0, tweak).await;
    let (_, token) = tokens::create(h.data_dir.path(), "tests").unwrap();
    // Devices register from the twin's first reports.
    wait_for("twin devices registered", Duration::from_secs(20), || {
        let s = &h.bridge().store;
        (s.get(TEMPERATURE).is_some() && s.get(CLIMATE).is_some_and(|c| c.state != "unavailable"))
            .then_some(())
    })
    .await;
    (h, token)
}

fn addr(h: &Harness) -> SocketAddr {
    h.bridge().http_addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_phase_good_bad_early_and_silent_clients() {
    let (h, token) = start(|c| c.http.auth_timeout_s = 0.5).await;

    // Good token: auth_required then auth_ok, both with HA's version form.
    let mut ws = Ws::connect(addr(&h)).await;
    let req = ws.recv().await;
    assert_eq!(req["type"], "auth_required");
    let version = req["ha_version"].as_str().unwrap().to_string();
    let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 3, "YYYY.M.P");
    assert!(
        (parts[0], parts[1]) >= (2022, 9),
        "modern client paths need ≥ 2022.9"
    );
    ws.send(json!({"type": "auth", "access_token": token}))
        .await;
    let ok = ws.recv().await;
    assert_eq!(ok, json!({"type": "auth_ok", "ha_version": version}));
    ws.ping_ok().await;

    // Auth sent before reading auth_required.
    let mut early = Ws::connect(addr(&h)).await;
    early
        .send(json!({"type": "auth", "access_token": token}))
        .await;
    assert_eq!(early.recv().await["type"], "auth_required");
    assert_eq!(early.recv().await["type"], "auth_ok");
    early.ping_ok().await;

    // Wrong token: auth_invalid, then the server closes.
    let mut bad = Ws::connect(addr(&h)).await;
    bad.recv().await;
    bad.send(json!({"type": "auth", "access_token": "not-a-token"}))
        .await;
    let inv = bad.recv().await;
    assert_eq!(inv["type"], "auth_invalid");
    assert_eq!(inv["message"], "Invalid access token or password");
    assert!(close_code(&bad.ended().await).is_some());

    // A malformed auth message is named, and the secret is not echoed.
    let mut malformed = Ws::connect(addr(&h)).await;
    malformed.recv().await;
    malformed
        .send(json!({"type": "auth", "access_token": 12345}))
        .await;
    let inv = malformed.recv().await;
    assert_eq!(inv["type"], "auth_invalid");
    assert!(
        inv["message"]
            .as_str()
            .unwrap()
            .contains("`access_token` must be a string"),
        "{inv}"
    );

    // No auth within the timeout (0.5 s here, HA's 10 s by default): closed.
    let mut silent = Ws::connect(addr(&h)).await;
    assert_eq!(silent.recv().await["type"], "auth_required");
    let t0 = std::time::Instant::now();
    let end = silent.ended().await;
    assert_eq!(close_code(&end), Some(1008), "{end:?}");
    assert!(t0.elapsed() < Duration::from_secs(5));

    // The authenticated connection was not affected by any of that.
    ws.ping_ok().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_from_one_address_are_refused_then_tokens_change_live() {
    let (h, token) = start(|c| {
        c.http.auth_max_failures = 3;
        c.http.auth_window_s = 3;
    })
    .await;
    let mark = log_mark();
    for _ in 0..3 {
        let mut bad = Ws::connect(addr(&h)).await;
        bad.recv().await;
        bad.send(json!({"type": "auth", "access_token": "guess"}))
            .await;
        assert_eq!(
            bad.recv().await["message"],
            "Invalid access token or password"
        );
    }
    // Now even the right token is refused (no guessing while blocked)…
    let mut blocked = Ws::connect(addr(&h)).await;
    blocked.recv().await;
    blocked
        .send(json!({"type": "auth", "access_token": token}))
        .await;
    let inv = blocked.recv().await;
    assert_eq!(inv["type"], "auth_invalid");
    assert!(
        inv["message"].as_str().unwrap().contains("Too many failed"),
        "{inv}"
    );
    // …over REST too.
    let (status, _) = http(addr(&h), "GET", "/api/", Some(&token), "").await;
    assert_eq!(status, 403);
    let logs = logs_since(mark);
    assert!(
        logs.contains("failed API authentication from 127.0.0.1"),
        "{logs}"
    );
    assert!(
        !logs.contains(&token) && !logs.contains("guess"),
        "secrets never logged"
    );

    // After the window the address may try again.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let mut ws = Ws::auth(addr(&h), &token).await;

    // A token created while the bridge runs works at once; revoking it
    // closes its open connections.
    let (rec, fresh) = tokens::create(h.data_dir.path(), "fresh").unwrap();
    let mut other = Ws::auth(addr(&h), &fresh).await;
    let me = other.call(json!({"type": "auth/current_user"})).await;
    assert_eq!(me["result"]["name"], "fresh");
    tokens::revoke(h.data_dir.path(), &rec.id).unwrap();
    let end = other.ended().await;
    assert_eq!(close_code(&end), Some(1008), "{end:?}");
    let mut again = Ws::connect(addr(&h)).await;
    again.recv().await;
    again
        .send(json!({"type": "auth", "access_token": fresh}))
        .await;
    assert_eq!(again.recv().await["type"], "auth_invalid");
    ws.ping_ok().await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_with_has_shapes() {
    let (h, token) = start(|_| {}).await;
    let mut ws = Ws::auth(addr(&h), &token).await;

    let r = ws
        .call(json!({"type": "supported_features", "features": {"coalesce_messages": 1}}))
        .await;
    assert_eq!(r["success"], true);
    assert_eq!(r["result"], Value::Null);

    let states = ws.call(json!({"type": "get_states"})).await;
    assert_eq!(states["success"], true);
    let list = states["result"].as_array().unwrap();
    let t = list
        .iter()
        .find(|s| s["entity_id"] == TEMPERATURE)
        .expect("temperature state");
    assert!(t["state"].as_str().unwrap().parse::<f64>().is_ok());
    assert_eq!(t["attributes"]["unit_of_measurement"], "°C");
    for key in ["last_changed", "last_updated", "last_reported"] {
        assert!(t[key].as_str().unwrap().ends_with("+00:00"), "{key}: {t}");
    }
    assert_eq!(t["context"]["id"].as_str().unwrap().len(), 26);

    let config = ws.call(json!({"type": "get_config"})).await;
    assert_eq!(config["result"]["unit_system"]["temperature"], "°C");
    assert_eq!(config["result"]["state"], "RUNNING");
    let components = config["result"]["components"].as_array().unwrap();
    assert!(components.contains(&json!("climate")));

    let services = ws.call(json!({"type": "get_services"})).await;
    let set_temp = &services["result"]["climate"]["set_temperature"];
    assert_eq!(set_temp["fields"]["temperature"]["required"], true);
    assert_eq!(set_temp["target"]["entity"][0]["domain"][0], "climate");
    assert!(
        services["result"].get("light").is_none(),
        "only what Hearth handles"
    );

    let plugins = ws.call(json!({"type": "hearth/plugins/list"})).await;
    let thermostat = &plugins["result"][0];
    assert_eq!(thermostat["status"], "running");
    assert!(
        thermostat["drives"].as_array().unwrap().iter().any(|d| d
            .as_str()
            .unwrap()
            .starts_with("switch.")
            || d == CLIMATE),
        "{thermostat}"
    );
    assert!(thermostat.get("last_fault").is_some());

    let devices = ws.call(json!({"type": "hearth/devices/list"})).await;
    let ac = devices["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["entities"].as_array().unwrap().contains(&json!(CLIMATE)))
        .expect("the AC device");
    assert_eq!(ac["available"], true);

    // HA's registries, as Node-RED's HA nodes read them at connect.
    let entities = ws
        .call(json!({"type": "config/entity_registry/list"}))
        .await;
    let entry = entities["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entity_id"] == CLIMATE)
        .expect("the AC in the entity registry")
        .clone();
    assert_eq!(entry["platform"], "mqtt");
    assert!(entry["unique_id"].as_str().unwrap().starts_with("hearth_"));
    let devices_reg = ws
        .call(json!({"type": "config/device_registry/list"}))
        .await;
    let dev = devices_reg["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == entry["device_id"])
        .expect("the entity's device in the device registry");
    assert_eq!(dev["name"], ac["name"]);
    let areas = ws.call(json!({"type": "config/area_registry/list"})).await;
    assert_eq!(areas["result"], json!([]));

    // History from the store's memory.
    wait_for("two temperature samples", Duration::from_secs(20), || {
        (h.bridge().store.history(TEMPERATURE, 0, i64::MAX).len() >= 2).then_some(())
    })
    .await;
    let hist = ws
        .call(json!({"type": "hearth/history", "entity_id": TEMPERATURE, "start_time": "2000-01-01T00:00:00+00:00"}))
        .await;
    let samples = hist["result"]["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{hist}");
    assert!(samples[0]["value"].is_f64());
    let bad = ws
        .call(
            json!({"type": "hearth/history", "entity_id": TEMPERATURE, "start_time": "yesterday"}),
        )
        .await;
    assert!(assert_error(&bad, "invalid_format").contains("start_time"));
    let missing = ws
        .call(json!({"type": "hearth/history", "entity_id": "sensor.nope", "start_time": "2000-01-01T00:00:00Z"}))
        .await;
    assert_error(&missing, "not_found");

    // Error shapes: unknown command, id reuse, missing type, wrong types,
    // extra keys.
    let id = ws.cmd(json!({"type": "frobnicate"})).await;
    let r = ws.result(id).await;
    assert!(assert_error(&r, "unknown_command").contains("frobnicate"));
    ws.send(json!({"id": 2, "type": "ping"})).await;
    let r = ws.result(2).await;
    assert_eq!(
        r,
        json!({"id": 2, "type": "result", "success": false,
               "error": {"code": "id_reuse", "message": "Identifier values have to increase."}})
    );
    ws.next_id += 10;
    let id = ws.next_id;
    ws.send(json!({"id": id})).await;
    assert_error(&ws.result(id).await, "invalid_format");
    let r = ws
        .call(json!({"type": "call_service", "domain": 5, "service": "turn_on"}))
        .await;
    assert_eq!(
        assert_error(&r, "invalid_format"),
        "expected str for dictionary value @ data['domain']"
    );
    let r = ws
        .call(json!({"type": "get_states", "verbose": true}))
        .await;
    assert_eq!(
        assert_error(&r, "invalid_format"),
        "extra keys not allowed @ data['verbose']"
    );

    // A JSON array of commands, answered in order.
    let a = ws.next_id;
    ws.next_id += 2;
    ws.send(json!([{"id": a, "type": "ping"}, {"id": a + 1, "type": "get_config"}]))
        .await;
    let first = ws.next_matching("pong", |v| v["id"] == a).await;
    assert_eq!(first["type"], "pong");
    assert_eq!(ws.result(a + 1).await["success"], true);

    // fire_event reaches subscribers of its type (and of everything).
    let sub = ws
        .call(json!({"type": "subscribe_events", "event_type": "hearth_test"}))
        .await["id"]
        .as_u64()
        .unwrap();
    let fired = ws
        .call(json!({"type": "fire_event", "event_type": "hearth_test", "event_data": {"n": 7}}))
        .await;
    let ctx = fired["result"]["context"]["id"].clone();
    let ev = ws.event(sub, "hearth_test event", |_| true).await;
    assert_eq!(ev["event_type"], "hearth_test");
    assert_eq!(ev["data"], json!({"n": 7}));
    assert_eq!(ev["context"]["id"], ctx);
    assert_eq!(ev["origin"], "LOCAL");
    let r = ws
        .call(json!({"type": "fire_event", "event_type": "state_changed"}))
        .await;
    assert!(assert_error(&r, "invalid_format").contains("fired by the bridge only"));
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": sub}))
        .await;
    assert_eq!(r["success"], true);
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": sub}))
        .await;
    assert_eq!(assert_error(&r, "not_found"), "Subscription not found.");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_service_moves_the_twin_and_the_change_carries_its_context() {
    let (h, token) = start(|_| {}).await;
    let mut ws = Ws::auth(addr(&h), &token).await;
    let sub = ws
        .call(json!({"type": "subscribe_events", "event_type": "state_changed"}))
        .await["id"]
        .as_u64()
        .unwrap();
    let before = h.twin.ir_command_count();
    let r = ws
        .call(json!({
            "type": "call_service", "domain": "climate", "service": "set_temperature",
            "service_data": {"temperature": 22}, "target": {"entity_id": CLIMATE}
        }))
        .await;
    assert_eq!(r["success"], true, "{r}");
    let ctx = r["result"]["context"].clone();
    assert_eq!(ctx["user_id"].as_str().unwrap().len(), 8, "the token's id");
    let ev = ws
        .event(sub, "state_changed of the AC target", |e| {
            e["data"]["entity_id"] == CLIMATE
                && e["data"]["new_state"]["attributes"]["temperature"] == 22.0
        })
        .await;
    assert_eq!(ev["event_type"], "state_changed");
    assert_eq!(ev["data"]["new_state"]["context"]["id"], ctx["id"], "{ev}");
    assert_eq!(ev["context"]["id"], ctx["id"]);
    assert_ne!(ev["data"]["old_state"]["attributes"]["temperature"], 22.0);
    // The twin's IR gateway received the command.
    wait_for("IRhvac with Temp 22", Duration::from_secs(10), || {
        h.twin
            .ir_commands()
            .iter()
            .skip(before)
            .any(|(_, c)| c["Temp"] == 22.0)
            .then_some(())
    })
    .await;
    // Unrelated readings keep contexts of their own.
    let ev = ws
        .event(sub, "temperature reading", |e| {
            e["data"]["entity_id"] == TEMPERATURE
        })
        .await;
    assert_ne!(ev["data"]["new_state"]["context"]["id"], ctx["id"]);

    // Error paths, each with HA's code.
    let svc = |domain: &str, service: &str, data: Value| {
        json!({"type": "call_service", "domain": domain, "service": service,
               "service_data": data, "target": {"entity_id": CLIMATE}})
    };
    let r = ws.call(svc("climate", "self_destruct", json!({}))).await;
    assert_eq!(
        assert_error(&r, "not_found"),
        "Service climate.self_destruct not found."
    );
    let r = ws
        .call(
            json!({"type": "call_service", "domain": "switch", "service": "turn_on",
                     "target": {"entity_id": "switch.nope"}}),
        )
        .await;
    assert!(assert_error(&r, "not_found").contains("switch.nope"));
    let r = ws
        .call(svc(
            "climate",
            "set_temperature",
            json!({"temperature": "hot"}),
        ))
        .await;
    assert!(assert_error(&r, "invalid_format").contains("temperature"));
    let mut with_response = svc("climate", "set_temperature", json!({"temperature": 23}));
    with_response["return_response"] = json!(true);
    let r = ws.call(with_response).await;
    assert_error(&r, "service_validation_error");
    let r = ws
        .call(
            json!({"type": "call_service", "domain": "climate", "service": "set_temperature",
                     "service_data": {"temperature": 23}}),
        )
        .await;
    assert!(assert_error(&r, "service_validation_error").contains("no entity targeted"));
    let r = ws
        .call(
            json!({"type": "call_service", "domain": "climate", "service": "set_temperature",
                     "service_data": {"temperature": 23}, "target": {"area_id": "kitchen"}}),
        )
        .await;
    // No such area (HA logs it; Hearth answers it).
    assert!(assert_error(&r, "not_found").contains("areas kitchen"));
    // service_data.entity_id works as in HA.
    let r = ws
        .call(
            json!({"type": "call_service", "domain": "climate", "service": "set_temperature",
                     "service_data": {"temperature": 23, "entity_id": CLIMATE}}),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
    wait_for("target 23", Duration::from_secs(10), || {
        (h.bridge().store.get(CLIMATE)?.attributes["temperature"] == 23.0).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_entities_snapshot_diff_and_removal() {
    let (h, token) = start(|_| {}).await;
    let store = &h.bridge().store;
    store
        .upsert_device(
            "tests",
            Device {
                id: "probe".into(),
                name: "Probe".into(),
                manufacturer: "tests".into(),
                model: "probe".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    let spec = EntitySpec::new("probe", "level", Component::Sensor);
    let probe = spec.entity_id.clone();
    store.upsert_entity(spec).unwrap();
    let attrs = |v: Value| v.as_object().unwrap().clone();
    store
        .set_state(&probe, "1", attrs(json!({"a": 1, "b": 2})))
        .unwrap();

    let mut ws = Ws::auth(addr(&h), &token).await;
    let all = ws.cmd(json!({"type": "subscribe_entities"})).await;
    assert_eq!(ws.result(all).await["success"], true);
    let snap = ws
        .event(all, "initial snapshot", |e| e.get("a").is_some())
        .await;
    let p = &snap["a"][&probe];
    assert_eq!(p["s"], "1");
    // Driver attributes plus what HA derives from the entity (its name).
    assert_eq!(p["a"], json!({"a": 1, "b": 2, "friendly_name": "Probe"}));
    assert!(p["lc"].is_f64() && p["c"].is_string(), "{p}");
    assert!(snap["a"].get(CLIMATE).is_some());

    // A second subscription filtered to the probe only.
    let only = ws
        .cmd(json!({"type": "subscribe_entities", "entity_ids": [probe]}))
        .await;
    ws.result(only).await;
    let snap = ws
        .event(only, "filtered snapshot", |e| e.get("a").is_some())
        .await;
    assert_eq!(snap["a"].as_object().unwrap().len(), 1);

    store
        .set_state(&probe, "2", attrs(json!({"a": 1, "c": 3})))
        .unwrap();
    for sub in [all, only] {
        let diff = ws
            .event(sub, "probe diff", |e| e["c"].get(&probe).is_some())
            .await;
        let d = &diff["c"][&probe];
        assert_eq!(d["+"]["s"], "2");
        assert_eq!(d["+"]["a"], json!({"c": 3}));
        assert_eq!(d["-"], json!({"a": ["b"]}));
        assert!(d["+"]["lc"].is_f64());
    }
    // Attributes only: `lu` moves, not `lc`.
    tokio::time::sleep(Duration::from_millis(30)).await;
    store
        .set_state(&probe, "2", attrs(json!({"a": 5, "c": 3})))
        .unwrap();
    let diff = ws
        .event(only, "attribute diff", |e| e["c"].get(&probe).is_some())
        .await;
    let plus = &diff["c"][&probe]["+"];
    assert!(
        plus.get("s").is_none() && plus.get("lc").is_none(),
        "{plus}"
    );
    assert!(plus["lu"].is_f64());
    assert_eq!(plus["a"], json!({"a": 5}));

    store.remove_entity(&probe);
    for sub in [all, only] {
        let r = ws.event(sub, "removal", |e| e.get("r").is_some()).await;
        assert_eq!(r["r"], json!([probe]));
    }
    // The filtered subscription sees nothing of other entities.
    let r = ws
        .call(json!({"type": "unsubscribe_events", "subscription": all}))
        .await;
    assert_eq!(r["success"], true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.ping_ok().await;
    assert!(
        ws.stash
            .iter()
            .all(|m| m["id"] != only || m["event"].to_string().contains(&probe)),
        "{:?}",
        ws.stash
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_answered_or_closed_without_touching_others() {
    let panics = common::panic_mark();
    let (h, token) = start(|_| {}).await;
    let mark = log_mark();
    let mut bystander = Ws::auth(addr(&h), &token).await;

    // Not JSON: closed (HA disconnects), code 1007.
    let mut ws = Ws::auth(addr(&h), &token).await;
    ws.ws
        .send(Message::text("{this is not json"))
        .await
        .unwrap();
    assert_eq!(close_code(&ws.ended().await), Some(1007));

    // A binary frame is ignored (HA routes them to handlers by first byte);
    // an empty one closes.
    let mut ws = Ws::auth(addr(&h), &token).await;
    ws.ws
        .send(Message::binary(vec![7u8, 1, 2, 3]))
        .await
        .unwrap();
    ws.ping_ok().await;
    ws.ws.send(Message::binary(Vec::<u8>::new())).await.unwrap();
    assert_eq!(close_code(&ws.ended().await), Some(1003));

    // Missing type, wrong field types, a bare number: answered.
    let mut ws = Ws::auth(addr(&h), &token).await;
    ws.send(json!({"id": 1})).await;
    assert_error(&ws.recv().await, "invalid_format");
    ws.send(json!(42)).await;
    assert_error(&ws.recv().await, "invalid_format");
    ws.send(json!({"id": "one", "type": "ping"})).await;
    assert_error(&ws.recv().await, "invalid_format");
    ws.send(json!({"id": 2, "type": "subscribe_entities", "entity_ids": 5}))
        .await;
    assert_error(&ws.recv().await, "invalid_format");
    ws.next_id = 3;

    // 1 MiB message: read and answered (HA's limit is 4 MiB).
    let padding = "x".repeat(1 << 20);
    let r = ws.call(json!({"type": "ping", "padding": padding})).await;
    assert_eq!(
        assert_error(&r, "invalid_format"),
        "extra keys not allowed @ data['padding']"
    );
    ws.ping_ok().await;
    // Over 4 MiB: closed with 1009 (message too big).
    let huge = "x".repeat(5 << 20);
    let _ = ws
        .ws
        .send(Message::text(format!(
            "{{\"id\": 99, \"type\": \"ping\", \"p\": \"{huge}\"}}"
        )))
        .await;
    // The server stops reading at the frame header and closes with 1009;
    // the client may see the close frame or, if its unsent bytes made the
    // kernel reset the socket, only the end of the connection.
    let end = ws.ended().await;
    assert!(matches!(close_code(&end), Some(1009) | None), "{end:?}");

    // The bystander saw none of it.
    bystander.ping_ok().await;
    let states = bystander.call(json!({"type": "get_states"})).await;
    assert_eq!(states["success"], true);
    let panicked = common::panics_since(panics);
    assert!(panicked.is_empty(), "no panic anywhere: {panicked:?}");
    let logs = logs_since(mark);
    assert!(logs.contains("received invalid JSON"), "{logs}");
    assert!(logs.contains("message too big"), "{logs}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_and_stalls_nothing() {
    let (h, token) = start(|c| c.http.max_pending_messages = 64).await;
    let store = &h.bridge().store;
    store
        .upsert_device(
            "tests",
            Device {
                id: "flood".into(),
                name: "Flood".into(),
                manufacturer: "tests".into(),
                model: "flood".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    let spec = EntitySpec::new("flood", "n", Component::Sensor);
    let id = spec.entity_id.clone();
    store.upsert_entity(spec).unwrap();
    store.set_state(&id, "0", Map::new()).unwrap();

    let mark = log_mark();
    let mut slow = Ws::auth(addr(&h), &token).await;
    slow.cmd(json!({"type": "subscribe_events", "event_type": "state_changed"}))
        .await;
    let mut reader = Ws::auth(addr(&h), &token).await;
    let sub = reader
        .call(json!({"type": "subscribe_entities", "entity_ids": [id]}))
        .await["id"]
        .as_u64()
        .unwrap();
    reader
        .event(sub, "snapshot", |e| e.get("a").is_some())
        .await;

    // 20 000 changes with padded attributes: far more than the socket
    // buffers and 64 queued messages hold. The store never waits.
    const N: usize = 20_000;
    let pad = "p".repeat(512);
    let t0 = std::time::Instant::now();
    let mut last = 0;
    for i in 1..=N {
        let mut attrs = Map::new();
        attrs.insert("pad".into(), json!(pad));
        store.set_state(&id, i.to_string(), attrs).unwrap();
        if i % 20 == 0 {
            // Let the reader drain (it reads at its own pace).
            tokio::task::yield_now().await;
            while last < i {
                let e = reader.event(sub, "diff", |_| true).await;
                if let Some(s) = e["c"][&id]["+"]["s"].as_str() {
                    let n: usize = s.parse().unwrap();
                    assert_eq!(n, last + 1, "every change, in order");
                    last = n;
                }
            }
        }
    }
    let write_time = t0.elapsed();
    wait_for("slow client dropped", Duration::from_secs(10), || {
        // Dropped at the send queue (64 messages) or, if its subscription
        // fell behind first, at the store's queue (64 changes).
        let logs = logs_since(mark);
        (logs.contains("(token `tests`) dropped: outgoing queue full: it reads slower than it is sent messages (64 messages waiting")
            || logs.contains("(token `tests`) dropped: subscription"))
        .then_some(())
    })
    .await;
    assert!(matches!(slow.ended().await, Ended::Gone | Ended::Close(_)));
    reader.ping_ok().await;
    assert_eq!(reader.arrays, 0, "arrays only for clients that opt in");
    println!("{N} changes written in {write_time:?} with a stalled subscriber");
    h.stop().await;
}

/// A minimal HTTP/1.1 exchange over a real socket: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut resp))
        .await
        .expect("response within 15 s")
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_with_bearer_tokens() {
    let (h, token) = start(|_| {}).await;
    let a = addr(&h);
    let (status, body) = http(a, "GET", "/api/", None, "").await;
    assert_eq!((status, body.as_str()), (401, "401: Unauthorized"));
    let (status, _) = http(a, "GET", "/api/", Some("wrong"), "").await;
    assert_eq!(status, 401);
    let (status, body) = http(a, "GET", "/api/", Some(&token), "").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"message": "API running."})
    );
    let (status, _) = http(a, "GET", "/api/health", None, "").await;
    assert_eq!(status, 200, "health needs no token");

    let (status, body) = http(a, "GET", "/api/states", Some(&token), "").await;
    assert_eq!(status, 200);
    let states: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert!(states.iter().any(|s| s["entity_id"] == CLIMATE));
    let (status, body) = http(
        a,
        "GET",
        &format!("/api/states/{TEMPERATURE}"),
        Some(&token),
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["entity_id"],
        TEMPERATURE
    );
    let (status, body) = http(a, "GET", "/api/states/sensor.nope", Some(&token), "").await;
    assert_eq!(status, 404);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["message"],
        "Entity not found."
    );

    let (status, body) = http(
        a,
        "POST",
        "/api/services/climate/set_temperature",
        Some(&token),
        &json!({"entity_id": CLIMATE, "temperature": 21}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap().is_array());
    wait_for("target 21 from REST", Duration::from_secs(10), || {
        (h.bridge().store.get(CLIMATE)?.attributes["temperature"] == 21.0).then_some(())
    })
    .await;
    let (status, body) = http(
        a,
        "POST",
        "/api/services/climate/set_temperature",
        Some(&token),
        "{oops",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("valid JSON"), "{body}");
    let (status, body) = http(a, "POST", "/api/services/climate/warp", Some(&token), "{}").await;
    assert_eq!(status, 400);
    assert!(body.contains("climate.warp not found"), "{body}");
    let (status, _) = http(
        a,
        "POST",
        "/api/services/climate/set_temperature?return_response",
        Some(&token),
        &json!({"entity_id": CLIMATE, "temperature": 21}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_drops_silent_clients_only() {
    let (h, token) = start(|c| c.http.heartbeat_s = 0.3).await;
    let mark = log_mark();
    // A client that keeps reading answers the server's pings by itself
    // (tungstenite replies to a ping while reading).
    let alive = Ws::auth(addr(&h), &token).await;
    let (mut tx, mut rx) = alive.ws.split();
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            if let Message::Text(t) = m {
                let _ = seen_tx.send(t.as_str().to_string());
            }
        }
    });
    // A client that authenticates, then never reads again.
    let silent = Ws::auth(addr(&h), &token).await;
    wait_for("the silent client dropped", Duration::from_secs(10), || {
        logs_since(mark).contains("pings unanswered").then_some(())
    })
    .await;
    drop(silent);
    // The reading client outlived several intervals and still works.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tx.send(Message::text(json!({"id": 1, "type": "ping"}).to_string()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), seen.recv())
        .await
        .expect("pong within 5 s")
        .expect("connection open");
    assert_eq!(
        serde_json::from_str::<Value>(&pong).unwrap()["type"],
        "pong"
    );
    assert_eq!(
        logs_since(mark).matches("pings unanswered").count(),
        1,
        "only the silent client was dropped"
    );
    h.stop().await;
}
