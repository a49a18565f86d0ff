//! Commands outside what a device accepts, from every source, against a
//! running bridge and twin (issue 12, items 4 and 9): the WebSocket API
//! answers HA's `service_validation_error` (or `invalid_format` where HA's
//! schema refuses) naming the range, REST answers 400 with the same words,
//! an MQTT command is refused in the log naming the range, and no command
//! reaches the twin's IR gateway or valve. Also the REST details: percent-
//! decoded paths, errors in REST's words, and a WebSocket client dropped for
//! a full queue told why.

use crate::common;

use common::{BrokerKind, Harness, Observer, log_mark, logs_since, wait_for};
use futures_util::{SinkExt, StreamExt};
use hearth::api::auth::tokens;
use hearth::entity::{CallSource, ServiceCall};
use hearth::shutdown;
use hearth::twin::house::{HouseOptions, HouseTwin};
use rumqttc::QoS;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const CLIMATE: &str = "climate.server_room_ac";
const AC_POWER: &str = "switch.server_room_ac_power";
const CLIMATE_SET: &str = "hearth/server-room-ac/climate/set";
const VALVE: &str = "valve.house_heating";
const VALVE_SET: &str = "hearth/house/heating/set";
const NODE_VALVE_SET: &str = "hearth-node/house/valve/set";
const WAIT: Duration = Duration::from_secs(15);

/// The server room with its AC on (no thermostat plugin to switch it off,
/// no minimum off time), so an accepted target is sent by IR at once and a
/// refused one would show as an IR command; and the house with its valve.
async fn start() -> (Harness, String, shutdown::ShutdownTrigger) {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.plugins.clear();
        for ac in &mut c.ir_ac {
            ac.min_off_s = 0.0;
        }
    })
    .await;
    let (_, token) = tokens::create(h.data_dir.path(), "tests").unwrap();
    let (house_stop, house_shutdown) = shutdown::channel();
    HouseTwin::start(
        h.clock,
        &h.broker.addr.host,
        h.broker.addr.port,
        HouseOptions::default(),
        house_shutdown,
    )
    .expect("house twin starts");
    wait_for("AC and valve registered", Duration::from_secs(20), || {
        let s = &h.bridge().store;
        (s.get(CLIMATE).is_some_and(|c| c.state != "unavailable")
            && s.get(VALVE).is_some_and(|v| v.state != "unavailable"))
        .then_some(())
    })
    .await;
    let router = h.bridge().router.clone();
    let on = ServiceCall::new(
        "switch",
        "turn_on",
        AC_POWER,
        Map::new(),
        CallSource::Internal,
    );
    router.call(on).await.expect("the AC switches on");
    (h, token, house_stop)
}

fn target(h: &Harness) -> Value {
    h.bridge().store.get(CLIMATE).unwrap().attributes["temperature"].clone()
}

/// Waits until the twin's IR gateway has received a command with `Temp`.
async fn ir_with_temp(h: &Harness, since: usize, temp: f64) {
    wait_for(&format!("IRhvac with Temp {temp}"), WAIT, || {
        h.twin
            .ir_commands()
            .iter()
            .skip(since)
            .any(|(_, c)| c["Temp"] == temp)
            .then_some(())
    })
    .await;
}

/// Nothing new reached the devices: no IR command, no valve command on
/// the wire, the bridge's target unchanged.
fn assert_nothing_sent(h: &Harness, wire: &Observer, ir_before: usize, what: &str) {
    assert_eq!(
        h.twin.ir_command_count(),
        ir_before,
        "{what}: an IR command reached the AC: {:?}",
        h.twin.ir_commands().last()
    );
    let valve_cmds = wire.payloads_on(NODE_VALVE_SET);
    assert!(
        valve_cmds.iter().all(|p| p != "100" && p != "150"),
        "{what}: a valve command reached the node: {valve_cmds:?}"
    );
}

async fn ws_auth(addr: SocketAddr, token: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket"))
        .await
        .expect("WebSocket upgrade");
    let _auth_required = ws.next().await;
    ws.send(Message::text(
        json!({"type": "auth", "access_token": token}).to_string(),
    ))
    .await
    .unwrap();
    let ok = ws.next().await.unwrap().unwrap();
    assert!(ok.to_text().unwrap().contains("auth_ok"), "{ok:?}");
    Ws { ws, next_id: 1 }
}

struct Ws {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

impl Ws {
    /// Sends a command and returns its result (events are skipped).
    async fn call(&mut self, mut cmd: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        self.ws.send(Message::text(cmd.to_string())).await.unwrap();
        loop {
            let frame = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("an answer within 15 s")
                .expect("the connection stays open")
                .unwrap();
            let Ok(text) = frame.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["type"] == "result" && v["id"] == id {
                return v;
            }
        }
    }
}

fn call_service(domain: &str, service: &str, entity: &str, data: Value) -> Value {
    json!({"type": "call_service", "domain": domain, "service": service,
           "service_data": data, "target": {"entity_id": entity}})
}

/// A minimal HTTP/1.1 exchange: (status, body as JSON or text).
async fn http(addr: SocketAddr, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_range_commands_are_refused_from_every_source_and_reach_no_device() {
    let (h, token, house_stop) = start().await;
    let addr = h.bridge().http_addr;
    let wire = Observer::connect(&h.broker.addr, "#").await;
    let mut ws = ws_auth(addr, &token).await;

    // A target in range goes out by IR: the path to the device is live.
    let ir = h.twin.ir_command_count();
    let r = ws
        .call(call_service(
            "climate",
            "set_temperature",
            CLIMATE,
            json!({"temperature": 22}),
        ))
        .await;
    assert_eq!(r["success"], true, "{r}");
    ir_with_temp(&h, ir, 22.0).await;
    let ir = h.twin.ir_command_count();

    // 1. WebSocket: HA's ServiceValidationError, translated.
    for (asked, shown) in [
        (json!(5), "5"),
        (json!(60), "60"),
        // As Python's str(float) writes them, like HA.
        (json!(1e308), "1e+308"),
        (json!(-1e308), "-1e+308"),
    ] {
        let r = ws
            .call(call_service(
                "climate",
                "set_temperature",
                CLIMATE,
                json!({"temperature": asked}),
            ))
            .await;
        assert_eq!(r["success"], false, "{asked}: {r}");
        let e = &r["error"];
        assert_eq!(e["code"], "service_validation_error", "{r}");
        assert_eq!(
            e["message"],
            format!(
                "Validation error: Provided temperature {shown} is not valid. Accepted range is 16.0 to 30.0."
            ),
            "{r}"
        );
        assert_eq!(e["translation_domain"], "climate", "{r}");
        assert_eq!(e["translation_key"], "temp_out_of_range", "{r}");
        assert_eq!(
            e["translation_placeholders"],
            json!({"check_temp": shown, "min_temp": "16.0", "max_temp": "30.0"}),
            "{r}"
        );
        assert_eq!(target(&h), json!(22.0), "{asked} changed the target");
    }
    // NaN as a string is not a number; unknown keys are refused (HA's schema).
    for data in [
        json!({"temperature": "NaN"}),
        json!({"temperature": 22, "fan": "max"}),
    ] {
        let r = ws
            .call(call_service(
                "climate",
                "set_temperature",
                CLIMATE,
                data.clone(),
            ))
            .await;
        assert_eq!(r["error"]["code"], "invalid_format", "{data}: {r}");
    }
    // An hvac mode the AC does not support.
    let r = ws
        .call(call_service(
            "climate",
            "set_hvac_mode",
            CLIMATE,
            json!({"hvac_mode": "heat"}),
        ))
        .await;
    assert_eq!(r["error"]["code"], "service_validation_error", "{r}");
    assert_eq!(r["error"]["translation_key"], "not_valid_hvac_mode", "{r}");
    // A valve position past 100: HA's schema (voluptuous' words).
    let r = ws
        .call(call_service(
            "valve",
            "set_valve_position",
            VALVE,
            json!({"position": 150}),
        ))
        .await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");
    assert_eq!(
        r["error"]["message"], "value must be at most 100 for dictionary value @ data['position']",
        "{r}"
    );
    assert_nothing_sent(&h, &wire, ir, "WebSocket");

    // 2. REST: 400 with the same words.
    for asked in ["5", "60", "1e308", "-1e308"] {
        let body = format!(r#"{{"entity_id": "{CLIMATE}", "temperature": {asked}}}"#);
        let (status, body) = http(
            addr,
            "POST",
            "/api/services/climate/set_temperature",
            &token,
            &body,
        )
        .await;
        assert_eq!(status, 400, "{asked}: {body}");
        let msg = body["message"].as_str().unwrap_or_default();
        assert!(
            msg.starts_with("Validation error: Provided temperature")
                && msg.ends_with("Accepted range is 16.0 to 30.0."),
            "{asked}: {body}"
        );
    }
    let (status, body) = http(
        addr,
        "POST",
        "/api/services/valve/set_valve_position",
        &token,
        &json!({"entity_id": VALVE, "position": 150}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("at most 100"),
        "{body}"
    );
    assert_eq!(target(&h), json!(22.0));
    assert_nothing_sent(&h, &wire, ir, "REST");

    // 3. MQTT (Home Assistant's command topics): a logged refusal naming
    // the range; bad text and unknown keys refused too.
    let mark = log_mark();
    for payload in [
        r#"{"temperature": 5}"#,
        r#"{"temperature": 60}"#,
        r#"{"temperature": 1e308}"#,
        r#"{"temperature": -1e308}"#,
        r#"{"temperature": "NaN"}"#,
        r#"{"temperature": 23, "fan": "max"}"#,
    ] {
        wire.publish(CLIMATE_SET, payload).await;
    }
    wire.client
        .publish(
            CLIMATE_SET,
            QoS::AtLeastOnce,
            false,
            b"{\"temperature\": 2\xff}".to_vec(),
        )
        .await
        .unwrap();
    wire.publish(VALVE_SET, "150").await;
    let logs = wait_for("the refusals in the log", WAIT, || {
        let logs = logs_since(mark);
        (logs.contains("UTF-8") && logs.contains("valve.house_heating: position 150"))
            .then_some(logs)
    })
    .await;
    for asked in ["5", "60", "1e+308", "-1e+308"] {
        assert!(
            logs.contains(&format!(
                "refused: climate.server_room_ac: temperature {asked} is outside the accepted range 16 to 30 °C"
            )),
            "{asked}: {logs}"
        );
    }
    assert!(logs.contains("`temperature` must be a number"), "{logs}");
    assert!(logs.contains("unknown key"), "{logs}");
    assert!(
        logs.contains("valve.house_heating: position 150 is outside the accepted range 0 to 100 %"),
        "{logs}"
    );
    // Give a wrongly accepted command time to arrive before checking.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(target(&h), json!(22.0), "MQTT changed the target");
    assert_nothing_sent(&h, &wire, ir, "MQTT");

    // The step is honoured: 22.3 goes out as 22.5 (the AC's 0.5 °C step).
    wire.publish(CLIMATE_SET, r#"{"temperature": 22.3}"#).await;
    ir_with_temp(&h, ir, 22.5).await;
    assert_eq!(target(&h), json!(22.5));

    house_stop.trigger();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_paths_are_percent_decoded_and_errors_use_rest_words() {
    let (h, token, house_stop) = start().await;
    let addr = h.bridge().http_addr;
    let (status, body) = http(
        addr,
        "GET",
        "/api/states/climate.server%5Froom%5Fac",
        &token,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["entity_id"], CLIMATE);
    let (status, body) = http(
        addr,
        "POST",
        "/api/services/climate/set%5Ftemperature",
        &token,
        &json!({"entity_id": CLIMATE, "temperature": 21}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        addr,
        "POST",
        "/api/services/climate/set_temperature",
        &token,
        r#"{"temperature": 21}"#,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let msg = body["message"].as_str().unwrap();
    assert!(
        !msg.contains("target.entity_id"),
        "WebSocket's words in REST: {msg}"
    );
    assert!(msg.contains("`entity_id` in the JSON body"), "{msg}");
    house_stop.trigger();
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_dropped_for_flooding_is_told_why_and_the_log_says_what_it_did() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.http.max_pending_messages = 64
    })
    .await;
    let (_, token) = tokens::create(h.data_dir.path(), "tests").unwrap();
    let mark = log_mark();
    let mut ws = ws_auth(h.bridge().http_addr, &token).await;
    // One frame of 1 000 get_states, then a pause before reading: the
    // answers (every state, each) overflow the socket's buffers and the
    // 64-message queue while the bridge is still answering that frame, so
    // the queue filled with answers to the client's own commands.
    let commands: Vec<Value> = (1..=1000)
        .map(|id| json!({"id": id, "type": "get_states"}))
        .collect();
    ws.ws
        .send(Message::text(Value::Array(commands).to_string()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let close = try_wait_close(&mut ws).await;
    let frame = close.expect("a close frame, not a dropped socket");
    assert_eq!(u16::from(frame.code), 1008, "{frame:?}");
    assert_eq!(
        frame.reason.as_str(),
        "outgoing queue full: client too slow"
    );
    let logs = wait_for("the drop in the log", WAIT, || {
        let logs = logs_since(mark);
        logs.contains("(token `tests`) dropped").then_some(logs)
    })
    .await;
    assert!(
        logs.contains("sends commands faster than it reads the answers"),
        "{logs}"
    );
    assert!(!logs.contains("not reading"), "{logs}");
    h.stop().await;
}

/// Reads until the server ends the connection: its close frame, if any.
async fn try_wait_close(
    ws: &mut Ws,
) -> Option<tokio_tungstenite::tungstenite::protocol::CloseFrame> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.ws.next())
            .await
            .expect("the server ends the connection within 15 s");
        match frame {
            Some(Ok(Message::Close(f))) => return f,
            None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}
