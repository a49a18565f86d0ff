//! Node-RED 4 with Home Assistant's nodes (node-red-contrib-home-assistant-
//! websocket 0.80.3, `tests/nodered`, locked) against the bridge and the
//! server-room twin, as a Node-RED user runs them: the flows of
//! `tests/nodered/flows.json` plus the example `examples/node-red/
//! charge-below-20.json`, which switches a real Tasmota strip: the
//! coworking twin's strip A (`tasmota_strip_sim`, configured as in
//! `examples/coworking.toml`) on the same broker, its relay checked.
//! The laptop's battery is posted (REST `POST /api/states`): the server-
//! room harness has no HASS.Agent laptops. Node-RED answers the test on its own HTTP port
//! (`/hearth/...` endpoints of the flows; `/hearth/results` is what event
//! flows recorded); the test checks the bridge's store and the twin.
//! A preload script (`tests/nodered/log-ws.js`) prints every command the
//! nodes send; the test prints the list.
//!
//! Needs Node.js: with `CI=true` a missing `node` fails the test, without
//! it the test is skipped (`.ci/run` installs Node and runs `npm ci`).

use crate::common::{self, BrokerKind, Harness, wait_for};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SENSOR: &str = "sensor.server_room_temperature";
const PLUG: &str = "switch.server_room_ac_plug";
const CLIMATE: &str = "climate.server_room_ac";
const COPY: &str = "sensor.room_temperature_copy";
const NIGHT: &str = "switch.night_mode";
const BUTTON: &str = "button.start_charge";
const OUTLET: &str = "switch.strip_a_outlet2";
const SEAT: &str = "select.strip_a_outlet2_user";
const BATTERY: &str = "sensor.laptop_01_battery";
const HOOK: &str = "hearth-test-hook";
const WAIT: Duration = Duration::from_secs(30);

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/nodered")
}

/// Whether `node` runs; with `CI=true` its absence fails the test.
fn node_available() -> bool {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        other => {
            let why = match other {
                Ok(out) => format!("`node --version` failed ({})", out.status),
                Err(e) => e.to_string(),
            };
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "node is needed by this test ({why}): `apt-get install -y nodejs npm`, then `npm ci` in tests/nodered (.ci/run does both)"
            );
            eprintln!("skipped: node is not installed ({why})");
            false
        }
    }
}

fn ensure_node_modules(dir: &Path) {
    common::ensure_node_modules(
        dir,
        &[
            "node_modules/node-red/red.js",
            "node_modules/node-red-contrib-home-assistant-websocket/package.json",
        ],
    );
}

/// A running Node-RED; killed when dropped.
struct NodeRed {
    child: Child,
    port: u16,
    output: Arc<Mutex<String>>,
}

impl NodeRed {
    fn start(user_dir: &Path, bridge: SocketAddr) -> NodeRed {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir();
        let mut child = Command::new("node")
            .arg("-r")
            .arg(d.join("log-ws.js"))
            .arg(d.join("node_modules/node-red/red.js"))
            .arg("-u")
            .arg(user_dir)
            .arg("-p")
            .arg(port.to_string())
            .env("HEARTH_ADDR", bridge.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning node-red");
        let output = Arc::new(Mutex::new(String::new()));
        for r in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut r = std::io::BufReader::new(r);
                let mut line = String::new();
                while std::io::BufRead::read_line(&mut r, &mut line).is_ok_and(|n| n > 0) {
                    output.lock().unwrap().push_str(&line);
                    line.clear();
                }
            });
        }
        NodeRed {
            child,
            port,
            output,
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What the flows recorded (`/hearth/results`).
    async fn results(&self) -> Value {
        match http(self.addr(), "GET", "/hearth/results", None).await {
            Ok((200, body)) => serde_json::from_str(&body).unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }

    /// Until the flows recorded `key` (checked by `ok`).
    async fn wait_result(&self, key: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let t = tokio::time::Instant::now();
        loop {
            let r = self.results().await;
            if ok(&r[key]) {
                return r[key].clone();
            }
            assert!(
                t.elapsed() < WAIT,
                "Node-RED did not record {key} within {WAIT:?}: {r}\n--- Node-RED output\n{}",
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GET one of the flows' endpoints: the JSON or text it answers.
    async fn get(&self, path: &str) -> String {
        match http(self.addr(), "GET", path, None).await {
            Ok((200, body)) => body,
            other => panic!(
                "GET {path} on Node-RED: {other:?}\n--- Node-RED output\n{}",
                self.output()
            ),
        }
    }
}

impl Drop for NodeRed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request over a fresh connection, within 20 s: (status,
/// body). `body`: (content type, bytes).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<(&str, &str)>,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if let Some((ctype, b)) = body {
            req.push_str(&format!(
                "Content-Type: {ctype}\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&resp).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
        let status: u16 = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or("no status")?;
        let body = if head.to_lowercase().contains("transfer-encoding: chunked") {
            dechunk(body)
        } else {
            body.to_string()
        };
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(20), exchange)
        .await
        .map_err(|_| format!("{method} {path}: no answer within 20 s"))?
}

/// Sends a request's headers announcing a 512 KiB body, never the body:
/// the status if the server answers within 5 s.
async fn announced_body_unsent(addr: SocketAddr, method: &str, path: &str) -> Option<u16> {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 524288\r\n\r\n{{"
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut buf = [0u8; 256];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&head).get(9..12)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .ok()
        .flatten()
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The Node-RED user directory: settings, the test's flows with the
/// example's, and the server node's credentials (plain, `credentialSecret:
/// false`).
fn user_dir(bridge: SocketAddr, token: &str) -> tempfile::TempDir {
    let user = tempfile::tempdir().unwrap();
    let d = dir();
    std::fs::copy(d.join("settings.js"), user.path().join("settings.js")).unwrap();
    let read = |p: PathBuf| -> Vec<Value> {
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let mut flows = read(d.join("flows.json"));
    let example = read(d.join("../../examples/node-red/charge-below-20.json"));
    // The example brings its own server node, the same id as the test's.
    flows.extend(example.into_iter().filter(|n| n["type"] != "server"));
    flows.push(json!({
        "id": "hearth-server", "type": "server", "name": "Home Assistant", "version": 6,
        "addon": false, "rejectUnauthorizedCerts": true,
        "ha_boolean": ["y", "yes", "true", "on", "home", "open"],
        "connectionDelay": false, "cacheJson": true, "heartbeat": false,
        "heartbeatInterval": "30", "areaSelector": "friendlyName",
        "deviceSelector": "friendlyName", "entitySelector": "friendlyName",
        "statusSeparator": ": ", "statusYear": "hidden", "statusMonth": "short",
        "statusDay": "numeric", "statusHourCycle": "default", "statusTimeFormat": "h:m",
        "enableGlobalContextStore": true
    }));
    std::fs::write(
        user.path().join("flows.json"),
        serde_json::to_string_pretty(&flows).unwrap(),
    )
    .unwrap();
    std::fs::write(
        user.path().join("flows_cred.json"),
        json!({"hearth-server": {"host": format!("http://{bridge}"), "access_token": token}})
            .to_string(),
    )
    .unwrap();
    user
}

async fn call(h: &Harness, domain: &str, service: &str, entity: &str, data: Value) {
    common::call(h.bridge(), domain, service, entity, data)
        .await
        .unwrap_or_else(|e| panic!("{domain}.{service} {entity}: {e}"));
}

async fn wait_state(h: &Harness, entity: &str, want: &str, node_red: &NodeRed) {
    let store = h.bridge().store.clone();
    let t = tokio::time::Instant::now();
    while store.get(entity).is_none_or(|s| s.state != want) {
        assert!(
            t.elapsed() < WAIT,
            "{entity} is {:?}, not {want}, after {WAIT:?}\n--- Node-RED output\n{}",
            store.get(entity).map(|s| s.state),
            node_red.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A state posted as a script posts it (`POST /api/states/<id>`).
async fn post_state(h: &Harness, token: &str, entity: &str, state: &str) {
    let addr = h.bridge().http_addr;
    let body = json!({"state": state, "attributes": {"unit_of_measurement": "%", "device_class": "battery"}})
        .to_string();
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST /api/states/{entity} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.unwrap();
        String::from_utf8_lossy(&resp).into_owned()
    };
    let resp = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("POST /api/states within 10 s");
    assert!(
        resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.1 201"),
        "{resp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_red_home_assistant_nodes_run_against_the_bridge() {
    if !node_available() {
        return;
    }
    tokio::task::spawn_blocking(|| ensure_node_modules(&dir()))
        .await
        .unwrap();
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        c.select
            .push(hearth::drivers::helpers::config::SelectConfig {
                id: "strip_a_outlet2_user".into(),
                name: "Strip A outlet 2 user".into(),
                options: vec!["none".into(), "laptop_01".into(), "laptop_02".into()],
                initial: None,
                icon: None,
            });
        // The coworking twin's strip A, as examples/coworking.toml has it.
        c.tasmota_strip
            .push(hearth::drivers::tasmota_strip::TasmotaStripConfig {
                id: "strip_a".into(),
                name: "Strip A".into(),
                topic: "strip_a".into(),
                outlets: 8,
                outlet_names: vec!["Lamp".into()],
                meter: hearth::drivers::tasmota_strip::MeterMode::PerOutlet,
            });
        // The plug's device in an area, for the action with target.area_id.
        c.areas.push(hearth::areas::AreaConfig {
            id: "server_room".into(),
            name: "Server room".into(),
            floor: None,
            icon: None,
            aliases: Vec::new(),
            labels: Vec::new(),
            devices: vec!["server-room-ac-plug".into()],
            entities: Vec::new(),
        });
    })
    .await;
    let (_, token) = hearth::api::auth::tokens::create(h.data_dir.path(), "node-red test").unwrap();
    let bridge = h.bridge().http_addr;
    let (_strip_power, strip_off) = hearth::shutdown::channel();
    let (strip, _task) = hearth::twin::tasmota_strip_sim::spawn(
        hearth::clock::Clock::real(),
        &h.bridge().broker.host,
        h.bridge().broker.port,
        hearth::twin::tasmota_strip_sim::StripSimConfig {
            topic: "strip_a".into(),
            client_id: "twin-strip_a".into(),
            loads_w: vec![0.0, 45.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            voltage_v: 230.0,
            meter: hearth::twin::tasmota_strip_sim::SimMeter::PerChannel,
            tele_period_s: 1.0,
            breaker: None,
            circuit: None,
        },
        strip_off,
    )
    .expect("the strip twin starts");
    wait_for("the strip's outlet", WAIT, || h.bridge().store.get(OUTLET)).await;
    wait_for("the twin's sensor", WAIT, || h.bridge().store.get(SENSOR)).await;
    wait_for("the plug", WAIT, || {
        h.bridge().store.get(PLUG).filter(|s| s.state == "on")
    })
    .await;
    let user = user_dir(bridge, &token);
    let nr = NodeRed::start(user.path(), bridge);

    // The entity nodes register their entities (`nodered/discovery`).
    for id in [NIGHT, BUTTON] {
        let t = tokio::time::Instant::now();
        while h.bridge().store.get(id).is_none() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "Node-RED did not create {id}\n--- Node-RED output\n{}",
                nr.output()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let spec = h.bridge().store.spec(NIGHT).unwrap();
    assert_eq!(spec.device_id, hearth::nodered::DEVICE);
    assert_eq!(spec.name.as_deref(), Some("Night mode"));

    // events:state on the twin's sensor → ha-sensor: a Hearth entity that
    // follows the twin, with the flow's attribute.
    let copy = wait_for("the copy to show the twin's temperature", WAIT, || {
        let copy = h.bridge().store.get(COPY)?;
        let room = h.bridge().store.get(SENSOR)?;
        (copy.state == room.state).then_some(copy)
    })
    .await;
    assert!(copy.number().is_some(), "{copy:?}");
    assert_eq!(copy.attributes["source"], json!(SENSOR));
    let copy_spec = h.bridge().store.spec(COPY).unwrap();
    assert_eq!(copy_spec.unit.as_deref(), Some("°C"));
    assert_eq!(copy_spec.device_class.as_deref(), Some("temperature"));
    let trigger = nr.wait_result("trigger", |v| v.is_object()).await;
    assert_eq!(trigger["entity_id"], json!(SENSOR));

    // api-current-state: the state the store holds around the request.
    let (_, mut changes) = h.bridge().store.subscribe();
    let mut seen: BTreeSet<String> = h
        .bridge()
        .store
        .get(SENSOR)
        .map(|s| s.state)
        .into_iter()
        .collect();
    let current: Value = serde_json::from_str(&nr.get("/hearth/current").await).unwrap();
    seen.extend(h.bridge().store.get(SENSOR).map(|s| s.state));
    while let Ok(ev) = changes.try_recv() {
        if let hearth::entity::StoreEvent::StateChanged(sc) = ev
            && sc.entity_id == SENSOR
        {
            seen.extend(sc.new_state.as_ref().map(|s| s.state.clone()));
        }
    }
    assert_eq!(current["entity"]["entity_id"], json!(SENSOR), "{current}");
    let got = current["state"].as_str().unwrap_or_default().to_string();
    assert!(
        seen.contains(&got),
        "current-state said {got}; the store had {seen:?}"
    );

    // action (call-service) with an entity target: the twin's plug opens.
    let answer = nr.get("/hearth/action/entity").await;
    assert!(answer.contains("\"ok\":true"), "{answer}");
    wait_state(&h, PLUG, "off", &nr).await;
    wait_for("the twin's relay to open", WAIT, || {
        (!h.twin.snapshot().relay_on).then_some(())
    })
    .await;

    // render-template (POST /api/template): the store's values.
    let rendered = nr.get("/hearth/template").await;
    let parts: Vec<&str> = rendered.split('|').collect();
    assert_eq!(parts.len(), 3, "{rendered}");
    assert!(parts[0].parse::<f64>().is_ok(), "{rendered}");
    assert_eq!(parts[1], "False", "{rendered}");
    let target = h.bridge().store.get(CLIMATE).unwrap().attributes["temperature"]
        .as_f64()
        .unwrap();
    assert_eq!(parts[2].parse::<f64>().ok(), Some(target), "{rendered}");

    // action with target.area_id: the plug's device is in `server_room`.
    // The plug's minimum off time (180 s simulated, 3 s here) refuses an
    // early turn_on: the flow answers 500 with the bridge's words; retry.
    let t = tokio::time::Instant::now();
    loop {
        match http(nr.addr(), "GET", "/hearth/action/area", None).await {
            Ok((200, body)) if body.contains("\"ok\":true") => break,
            other => {
                assert!(
                    t.elapsed() < WAIT,
                    "area action: {other:?}\n--- Node-RED output\n{}",
                    nr.output()
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    wait_state(&h, PLUG, "on", &nr).await;
    wait_for("the twin's relay to close", WAIT, || {
        h.twin.snapshot().relay_on.then_some(())
    })
    .await;

    // ha-switch: commanded from the bridge's side, Node-RED's flow sees it
    // and the entity follows Node-RED's answer (`nodered/entity`).
    wait_state(&h, NIGHT, "on", &nr).await;
    call(&h, "switch", "turn_off", NIGHT, json!({})).await;
    wait_state(&h, NIGHT, "off", &nr).await;
    let off = nr.wait_result("switch_off", |v| v.is_object()).await;
    assert_eq!(off["payload"], json!(false));
    call(&h, "switch", "turn_on", NIGHT, json!({})).await;
    wait_state(&h, NIGHT, "on", &nr).await;
    let on = nr.wait_result("switch_on", |v| v.is_object()).await;
    assert_eq!(on["payload"], json!(true));

    // ha-button pressed from the bridge's side reaches the flow.
    call(&h, "button", "press", BUTTON, json!({})).await;
    let pressed = nr.wait_result("button", |v| v.is_object()).await;
    assert_eq!(pressed["entity_id"], json!(BUTTON));
    let state = h.bridge().store.get(BUTTON).unwrap().state;
    assert_eq!(pressed["state"], json!(state));
    assert!(state.starts_with("20"), "a press time, got {state}");

    // webhook: POSTed by the test (no token), delivered to the flow.
    let body = json!({"laptop": "laptop_01", "level": 15}).to_string();
    let t = tokio::time::Instant::now();
    loop {
        let r = http(
            bridge,
            "POST",
            &format!("/api/webhook/{HOOK}?room=server"),
            Some(("application/json", &body)),
        )
        .await;
        assert_eq!(r.as_ref().map(|r| r.0), Ok(200), "{r:?}");
        if nr.results().await["webhook"].is_object() {
            break;
        }
        assert!(
            t.elapsed() < WAIT,
            "webhook never reached the flow\n{}",
            nr.output()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let hook = nr.wait_result("webhook", |v| v.is_object()).await;
    assert_eq!(hook["payload"], json!({"laptop": "laptop_01", "level": 15}));
    assert_eq!(hook["params"], json!({"room": "server"}));
    assert_eq!(hook["content_type"], json!("application/json"));
    // A form body arrives as text, as HA's companion passes it.
    let r = http(
        bridge,
        "PUT",
        &format!("/api/webhook/{HOOK}"),
        Some(("application/x-www-form-urlencoded", "a=1")),
    )
    .await;
    assert_eq!(r.map(|r| r.0), Ok(200));
    nr.wait_result("webhook", |v| v["payload"] == json!("a=1"))
        .await;
    // HEAD is not among the node's methods; an unknown id is 200 and nothing.
    let r = http(bridge, "HEAD", &format!("/api/webhook/{HOOK}"), None).await;
    assert_eq!(r.map(|r| r.0), Ok(405));
    let r = http(
        bridge,
        "POST",
        "/api/webhook/nobody",
        Some(("application/json", "{}")),
    )
    .await;
    assert_eq!(r.map(|r| r.0), Ok(200));
    // The id and the method are checked before the body is read: an
    // unknown id (or a wrong method) is answered without waiting for a
    // body its caller announced but never sends.
    for (method, id, want) in [("POST", "nobody", 200), ("HEAD", HOOK, 405)] {
        let status = announced_body_unsent(bridge, method, &format!("/api/webhook/{id}")).await;
        assert_eq!(status, Some(want), "{method} /api/webhook/{id}");
    }

    // The example: laptop_01 sits at strip A outlet 2; below 20 % its
    // outlet goes on, at 80 % off: the strip twin's relay 2 follows.
    call(
        &h,
        "select",
        "select_option",
        SEAT,
        json!({"option": "laptop_01"}),
    )
    .await;
    call(&h, "switch", "turn_off", OUTLET, json!({})).await;
    wait_state(&h, OUTLET, "off", &nr).await;
    assert!(!strip.relay(2), "the strip's relay 2 is open");
    post_state(&h, &token, BATTERY, "50").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(common::state(h.bridge(), OUTLET).as_deref(), Some("off"));
    assert!(!strip.relay(2), "50 %: the outlet is left as it is");
    post_state(&h, &token, BATTERY, "15").await;
    wait_state(&h, OUTLET, "on", &nr).await;
    wait_for("the strip's relay 2 to close", WAIT, || {
        strip.relay(2).then_some(())
    })
    .await;
    assert!(!strip.relay(3), "only the laptop's outlet");
    // The strip's meter sees the charger through the closed relay.
    wait_for("outlet 2's meter to show the charger", WAIT, || {
        h.bridge()
            .store
            .get("sensor.strip_a_outlet2_power")
            .and_then(|s| s.number())
            .filter(|w| *w > 40.0)
    })
    .await;
    post_state(&h, &token, BATTERY, "85").await;
    wait_state(&h, OUTLET, "off", &nr).await;
    wait_for("the strip's relay 2 to open", WAIT, || {
        (!strip.relay(2)).then_some(())
    })
    .await;

    // What the nodes sent, and no error answer but the expected ones.
    let out = nr.output();
    let sent: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split_once("HEARTH-WS-SEND ").map(|(_, t)| t.trim()))
        .collect();
    let http_calls: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.split_once("HEARTH-HTTP ").map(|(_, t)| t.trim()))
        .collect();
    let errors: Vec<&str> = out
        .lines()
        .filter_map(|l| l.split_once("HEARTH-WS-ERROR ").map(|(_, t)| t.trim()))
        .collect();
    println!("WebSocket commands the nodes sent: {sent:?}");
    println!("HTTP requests the nodes made: {http_calls:?}");
    println!("error answers: {errors:?}");
    for cmd in [
        "get_config",
        "nodered/version",
        "nodered/discovery",
        "nodered/entity",
        "nodered/webhook",
        "call_service",
    ] {
        assert!(sent.contains(cmd), "{cmd} not sent: {sent:?}");
    }
    assert!(
        errors.iter().all(|e| !e.contains("unknown_command")),
        "{errors:?}"
    );
    let recorded = nr.results().await;
    assert!(recorded["errors"].is_null(), "flow errors: {recorded}");
    // Node-RED stops: its switch and button lose their subscription and
    // are unavailable (the companion's `handle_lost_connection`); a command
    // is refused instead of going nowhere.
    drop(nr);
    for id in [NIGHT, BUTTON] {
        wait_for(&format!("{id} unavailable"), WAIT, || {
            h.bridge()
                .store
                .get(id)
                .filter(|s| s.state == "unavailable")
        })
        .await;
    }
    let refused = common::call(h.bridge(), "switch", "turn_on", NIGHT, json!({})).await;
    assert!(
        matches!(refused, Err(hearth::entity::ServiceError::Unavailable(_))),
        "{refused:?}"
    );
    h.stop().await;
}
