//! The server-room twin, wired: one [`Plant`] and the three simulated
//! devices around it, plus the physics task that keeps the plant current.
//!
//! ```text
//!            ┌──────── Plant (room + AC + relay + meter) ────────┐
//!  physics ──┤ advance every ~20 ms wall, steps ≤ 1 s sim        │
//!            └───▲──────────────▲───────────────────▲────────────┘
//!                │ reads T      │ IR → AC settings  │ relay ↔ mains, apower, Wh
//!   node_sim (MQTT)   tasmota_sim (MQTT)     shelly_sim (HTTP 127.0.0.1)
//! ```
//!
//! The bridge sees only the broker and the plug's URL. Tests and demos use
//! the [`TwinHandle`] to look inside (snapshots, compressor events, the IR
//! log) and to inject trouble (plug faults, IT load steps).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::node_sim::{self, NodeSimConfig};
use super::plant::{Plant, SharedPlant};
use super::room::{AcMode, RoomParams};
use super::shelly_sim::{self, FaultSwitch, ShellyFault, ShellySimConfig};
use super::tasmota_sim::{self, IrLog, TasmotaSimConfig};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Wall period of the physics task.
const PHYSICS_TICK: Duration = Duration::from_millis(20);

/// How to build the twin.
#[derive(Debug, Clone)]
pub struct TwinOptions {
    pub room: RoomParams,
    /// Sensor node id (`server-room`).
    pub node_id: String,
    /// Sensor node name (`Server room`).
    pub node_name: String,
    /// Sensor telemetry period, simulated s.
    pub telemetry_interval_s: u32,
    /// Tasmota topic of the IR bridge (`tasmota_ir`).
    pub tasmota_topic: String,
    /// Shelly device name.
    pub shelly_name: String,
    /// Seed of every random draw (sensor noise, mains noise, MAC, client id).
    pub seed: u64,
}

impl Default for TwinOptions {
    fn default() -> Self {
        TwinOptions {
            room: RoomParams::server_room(),
            node_id: "server-room".into(),
            node_name: "Server room".into(),
            telemetry_interval_s: 10,
            tasmota_topic: "tasmota_ir".into(),
            shelly_name: "Server room AC".into(),
            seed: 1,
        }
    }
}

/// The AC as the twin sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcSnapshot {
    /// On by remote.
    pub power: bool,
    pub mode: AcMode,
    /// °C
    pub set_temp_c: f64,
    pub fan_speed: String,
    /// Mains present (relay closed).
    pub mains: bool,
    pub compressor_running: bool,
}

/// The twin's physical state at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwinSnapshot {
    /// Sim time, ms since the Unix epoch.
    pub sim_ms: i64,
    /// °C
    pub room_c: f64,
    /// °C
    pub outside_c: f64,
    /// W
    pub it_load_w: f64,
    pub ac: AcSnapshot,
    /// AC electrical draw as the plug measures it, W.
    pub ac_electrical_w: f64,
    pub relay_on: bool,
    pub compressor_starts: u64,
    /// Energy through the plug since start, Wh.
    pub energy_wh: f64,
}

/// Entry point: see [`ServerRoomTwin::start`].
pub struct ServerRoomTwin;

impl ServerRoomTwin {
    /// Starts the physics task, the sensor node and the IR bridge (MQTT
    /// clients of `mqtt_host:mqtt_port`) and the Shelly plug (HTTP on
    /// 127.0.0.1, ephemeral port). Everything runs until `shutdown`. The
    /// MQTT clients connect in the background and keep retrying, so the
    /// broker may come up later. Returns once the plug is listening.
    pub async fn start(
        clock: Clock,
        mqtt_host: &str,
        mqtt_port: u16,
        opts: TwinOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<TwinHandle> {
        let plant = Plant::new(opts.room, clock.now_ms()).shared();
        let ir_log = IrLog::default();
        let fault = FaultSwitch::default();
        // Derive per-device seeds so each stream of noise is independent.
        let mut seeds = fastrand::Rng::with_seed(opts.seed);
        let (node_seed, shelly_seed, id_seed) = (seeds.u64(..), seeds.u64(..), seeds.u64(..));

        tokio::spawn(physics(clock, plant.clone(), shutdown.clone()));

        node_sim::spawn(
            clock,
            mqtt_host,
            mqtt_port,
            NodeSimConfig {
                node_id: opts.node_id.clone(),
                name: opts.node_name.clone(),
                interval_s: opts.telemetry_interval_s,
                seed: node_seed,
            },
            plant.clone(),
            shutdown.clone(),
        )?;

        tasmota_sim::spawn(
            clock,
            mqtt_host,
            mqtt_port,
            TasmotaSimConfig {
                topic: opts.tasmota_topic.clone(),
                client_id: format!("DVES_{:06X}", id_seed & 0xFF_FFFF),
            },
            plant.clone(),
            ir_log.clone(),
            shutdown.clone(),
        );

        // Espressif's 08:B6:1F prefix, 24 bits from the seed.
        let mac = format!("08B61F{:06X}", (id_seed >> 24) & 0xFF_FFFF);
        let (shelly_addr, _) = shelly_sim::spawn(
            clock,
            ShellySimConfig {
                mac,
                name: opts.shelly_name.clone(),
                seed: shelly_seed,
            },
            plant.clone(),
            fault.clone(),
            shutdown,
        )?;
        tracing::info!(
            "twin: server room up (sensor node `{}`, Tasmota topic `{}`, Shelly at http://{shelly_addr})",
            opts.node_id,
            opts.tasmota_topic
        );

        Ok(TwinHandle {
            clock,
            plant,
            ir_log,
            fault,
            shelly_addr,
        })
    }
}

/// Keeps the plant integrated up to now, so compressor starts and stops are
/// recorded at their time even when no device is being read.
async fn physics(clock: Clock, plant: SharedPlant, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(PHYSICS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                plant.lock().unwrap_or_else(|e| e.into_inner()).advance_to(clock.now_ms());
            }
        }
    }
}

/// A look inside the running twin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TwinHandle {
    clock: Clock,
    plant: SharedPlant,
    ir_log: IrLog,
    fault: FaultSwitch,
    shelly_addr: SocketAddr,
}

impl TwinHandle {
    /// Base URL of the simulated Shelly (`http://127.0.0.1:PORT`).
    pub fn shelly_url(&self) -> String {
        format!("http://{}", self.shelly_addr)
    }

    pub fn shelly_addr(&self) -> SocketAddr {
        self.shelly_addr
    }

    fn with_plant<T>(&self, f: impl FnOnce(&mut Plant) -> T) -> T {
        let mut p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        p.advance_to(self.clock.now_ms());
        f(&mut p)
    }

    /// The physical state now.
    pub fn snapshot(&self) -> TwinSnapshot {
        self.with_plant(|p| {
            let s = p.ac.settings();
            TwinSnapshot {
                sim_ms: p.sim_ms(),
                room_c: p.room.temp_c,
                outside_c: p.room.params.outside_c,
                it_load_w: p.room.params.it_load_w,
                ac: AcSnapshot {
                    power: s.power,
                    mode: s.mode,
                    set_temp_c: s.set_temp_c,
                    fan_speed: s.fan_speed.clone(),
                    mains: p.ac.mains(),
                    compressor_running: p.ac.compressor_running(),
                },
                ac_electrical_w: p.ac.electrical_w(),
                relay_on: p.relay_on(),
                compressor_starts: p.ac.compressor_starts(),
                energy_wh: p.energy_wh(),
            }
        })
    }

    /// Every compressor change so far: (sim ms, running after the change).
    pub fn compressor_events(&self) -> Vec<(i64, bool)> {
        self.with_plant(|p| p.ac.compressor_events().to_vec())
    }

    /// Every `IRhvac` payload the IR bridge received: (sim ms, payload).
    pub fn ir_commands(&self) -> Vec<(i64, Value)> {
        self.ir_log.all()
    }

    /// Number of `IRhvac` payloads received.
    pub fn ir_command_count(&self) -> usize {
        self.ir_log.count()
    }

    /// The last `IRhvac` payload received.
    pub fn last_ir_command(&self) -> Option<(i64, Value)> {
        self.ir_log.last()
    }

    /// Makes the plug misbehave from now on (`ShellyFault::None` to stop).
    pub fn set_shelly_fault(&self, fault: ShellyFault) {
        self.fault.set(fault);
    }

    /// Steps the IT heat load to `watts` W from now on.
    pub fn set_it_load_w(&self, watts: f64) {
        let now = self.clock.now_ms();
        self.plant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_it_load_w(watts, now);
    }
}

/// The twin alone on the wire: a real Mosquitto (Debian's package; the test
/// is skipped with a note when it is not installed), an MQTT observer and
/// raw HTTP requests, including a broker restart and the last wills.
#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::shutdown;
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use serde_json::json;
    use std::process::{Child, Command, Stdio};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

    fn mosquitto_bin() -> Option<&'static str> {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
    }

    fn start_mosquitto(bin: &str, port: u16, dir: &std::path::Path) -> Child {
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

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

    async fn wait_for(
        seen: &Seen,
        from: usize,
        what: &str,
        f: impl Fn(&str, &str) -> bool,
    ) -> String {
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
        let Some(bin) = mosquitto_bin() else {
            eprintln!("mosquitto not installed: wire test skipped");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut broker = start_mosquitto(bin, port, dir.path());
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
        broker.kill().unwrap();
        broker.wait().unwrap();
        let n = seen.lock().unwrap().len();
        broker = start_mosquitto(bin, port, dir.path());
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
        broker.kill().unwrap();
        let _ = broker.wait();
    }
}
