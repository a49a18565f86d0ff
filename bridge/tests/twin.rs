//! The twin alone on the wire: a real Mosquitto, an MQTT observer and raw
//! HTTP requests, including a broker restart and the last wills.
use crate::common;

use hearth::clock::Clock;
use hearth::shutdown;
use hearth::twin::{ServerRoomTwin, ShellyFault, TwinOptions};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

fn observer(port: u16, seen: Seen) -> AsyncClient {
    let mut o = MqttOptions::new("twin-test-observer", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut ev) = AsyncClient::new(o, 64);
    let c = client.clone();
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe("#", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let body = String::from_utf8_lossy(&p.payload).into_owned();
                    seen.lock().unwrap().push((p.topic.clone(), body, p.retain));
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    client
}

async fn wait_for(seen: &Seen, from: usize, what: &str, f: impl Fn(&str, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = {
            let seen = seen.lock().unwrap();
            seen[from.min(seen.len())..]
                .iter()
                .find(|(t, b, _)| f(t, b))
                .map(|(_, b, _)| b.clone())
        };
        if let Some(body) = found {
            return body;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn http(addr: SocketAddr, request: String) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn post_rpc(body: &Value) -> String {
    let b = body.to_string();
    format!(
        "POST /rpc HTTP/1.1\r\nHost: plug\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twin_speaks_mqtt_and_http_and_survives_a_broker_restart() {
    let mut broker = common::mosquitto();
    let port = broker.port;
    let seen: Seen = Arc::default();
    let obs = observer(port, seen.clone());

    let clock = Clock::simulated(100.0);
    let (stop, sd) = shutdown::channel();
    let twin = ServerRoomTwin::start(clock, "127.0.0.1", port, TwinOptions::default(), sd)
        .await
        .unwrap();

    // The node: online, announce, telemetry near the room temperature.
    wait_for(&seen, 0, "node online", |t, b| {
        t == "hearth-node/server-room/status" && b == "online"
    })
    .await;
    let ann = wait_for(&seen, 0, "announce", |t, _| {
        t == "hearth-node/server-room/announce"
    })
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&ann).unwrap()["name"],
        "Server room"
    );
    let tel = wait_for(&seen, 0, "telemetry", |t, _| {
        t == "hearth-node/server-room/telemetry"
    })
    .await;
    let temp = serde_json::from_str::<Value>(&tel).unwrap()["temperature"]
        .as_f64()
        .unwrap();
    assert!(
        (temp - twin.snapshot().room_c).abs() < 0.5,
        "telemetry {temp}"
    );
    wait_for(&seen, 0, "Tasmota LWT", |t, b| {
        t == "tele/tasmota_ir/LWT" && b == "Online"
    })
    .await;

    // IR: a cooling command starts the compressor.
    let n = seen.lock().unwrap().len();
    let cmd = json!({"Vendor":"MITSUBISHI_AC","Power":"On","Mode":"Cool","Temp":22,"FanSpeed":"Auto","Celsius":"On"});
    obs.publish(
        "cmnd/tasmota_ir/IRhvac",
        QoS::AtLeastOnce,
        false,
        cmd.to_string(),
    )
    .await
    .unwrap();
    let res = wait_for(&seen, n, "RESULT", |t, _| t == "stat/tasmota_ir/RESULT").await;
    let res: Value = serde_json::from_str(&res).unwrap();
    assert_eq!(res["IRHVAC"]["Power"], "On");
    assert_eq!(res["IRHVAC"]["Temp"], 22);
    assert_eq!(twin.ir_commands().last().unwrap().1, cmd);
    let s = twin.snapshot();
    assert!(s.ac.power && s.ac.compressor_running, "{s:?}");
    assert_eq!(s.ac_electrical_w, 2300.0);
    let n = seen.lock().unwrap().len();
    obs.publish(
        "cmnd/tasmota_ir/IRHVAC",
        QoS::AtLeastOnce,
        false,
        "{\"Power\":\"On\"}",
    )
    .await
    .unwrap();
    let res = wait_for(&seen, n, "error RESULT", |t, _| {
        t == "stat/tasmota_ir/RESULT"
    })
    .await;
    assert!(res.starts_with("{\"IRHVAC\":\"Wrong Vendor ("), "{res}");
    assert_eq!(twin.ir_commands().len(), 2);

    // The plug over HTTP.
    let addr = twin.shelly_addr();
    let (st, body) = http(
        addr,
        "GET /rpc/Switch.GetStatus?id=0 HTTP/1.1\r\nHost: plug\r\n\r\n".into(),
    )
    .await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["apower"], 2300.0);
    assert_eq!(v["output"], true);
    let (st, body) = http(
        addr,
        post_rpc(&json!({"id":7,"src":"t","method":"Switch.Set","params":{"id":0,"on":false}})),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"],
        json!({"was_on":true})
    );
    let s = twin.snapshot();
    assert!(
        !s.relay_on && !s.ac.compressor_running && s.ac_electrical_w == 0.0,
        "{s:?}"
    );
    let (st, body) = http(
        addr,
        "GET /rpc/Nope.Nothing HTTP/1.1\r\nHost: plug\r\n\r\n".into(),
    )
    .await;
    assert_eq!(
        (
            st,
            serde_json::from_str::<Value>(&body).unwrap()["code"].clone()
        ),
        (404, json!(404))
    );

    twin.set_shelly_fault(ShellyFault::MalformedJson);
    let (st, body) = http(
        addr,
        post_rpc(&json!({"id":8,"method":"Switch.GetStatus","params":{"id":0}})),
    )
    .await;
    assert_eq!(st, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    twin.set_shelly_fault(ShellyFault::WrongTypes);
    let (_, body) = http(
        addr,
        post_rpc(&json!({"id":9,"method":"Switch.GetStatus","params":{"id":0}})),
    )
    .await;
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["result"]["output"],
        "off"
    );
    twin.set_shelly_fault(ShellyFault::HttpError);
    assert_eq!(
        http(
            addr,
            post_rpc(&json!({"id":10,"method":"Switch.Toggle","params":{"id":0}}))
        )
        .await
        .0,
        500
    );
    assert!(!twin.snapshot().relay_on, "HttpError: not executed");
    twin.set_shelly_fault(ShellyFault::None);

    // Broker restart: both MQTT devices come back and republish.
    drop(broker);
    let n = seen.lock().unwrap().len();
    broker = common::mosquitto_on(port);
    wait_for(&seen, n, "node online again", |t, b| {
        t == "hearth-node/server-room/status" && b == "online"
    })
    .await;
    wait_for(&seen, n, "LWT again", |t, b| {
        t == "tele/tasmota_ir/LWT" && b == "Online"
    })
    .await;
    wait_for(&seen, n, "telemetry again", |t, _| {
        t == "hearth-node/server-room/telemetry"
    })
    .await;

    // Shutdown drops the connections: the broker publishes the wills.
    let n = seen.lock().unwrap().len();
    stop.trigger();
    wait_for(&seen, n, "node will", |t, b| {
        t == "hearth-node/server-room/status" && b == "offline"
    })
    .await;
    wait_for(&seen, n, "Tasmota will", |t, b| {
        t == "tele/tasmota_ir/LWT" && b == "Offline"
    })
    .await;
    drop(broker);
}
