//! Scale (`cargo bench -p hearth --bench scale`): a real `hearth` process
//! (this build's binary, `hearth run`, five built-in plugins loaded) with
//! many twin devices, measured from outside through `/proc/<pid>`.
//!
//! Two runs, each its own `hearth` process and data directory:
//!
//! 1. **memory**: the embedded broker (the default deployment), the five
//!    plugins (thermostat, mpc, anomaly-detector, strip-balancer,
//!    tariff-optimizer) and `HEARTH_SCALE_RSS_NODES` (200) twin ESP32 nodes
//!    of 5 entities each (4 sensors and a valve: 1 000 entities). Once every
//!    node's state is on the HA side, `VmRSS` of the process is sampled
//!    every second for `HEARTH_SCALE_RSS_SECS` (30 s): last and peak, with
//!    the anonymous / file-backed split. Then the same with Mosquitto as
//!    the broker (hearth and the nodes its clients), which shows what the
//!    embedded broker's 200 device connections cost inside the bridge.
//! 2. **load**: Mosquitto (the embedded broker takes at most 256
//!    connections), the same five plugins, `HEARTH_SCALE_NODES` (500) twin
//!    ESP32 nodes with a valve (5 entities each) and `HEARTH_SCALE_STRIPS`
//!    (500) twin Tasmota strips of 4 metered outlets (16 entities each:
//!    switch, power, current, energy): 1 000 devices and 10 500 entities.
//!    Every device reports every 10 s (node telemetry, strip `tele/SENSOR`);
//!    the devices are started 10 ms apart, so reports are spread over the
//!    period. For `HEARTH_SCALE_SECS` (120 s) after a 10 s warm-up:
//!    - 1 % of the devices get a command per 10 s period (one per second,
//!      alternately a strip outlet `switch.turn_on` and a node valve
//!      `valve.set_valve_position` 100), through the WebSocket API
//!      (`call_service`), each device at most once;
//!    - the process's CPU (`utime + stime` of `/proc/<pid>/stat`, in % of
//!      one core; the machine has 2) and `VmRSS` are sampled every second.
//!
//! Latencies, from a Home-Assistant-side MQTT client subscribed to every
//! state topic (`hearth/+/+/state`) in this process:
//! - sensor → HA state: from the moment the twin node takes a reading (its
//!   `NodeIo` is asked for the temperature just before the publish) to the
//!   arrival of that reading's `uptime` state (the one sensor that changes
//!   at every reading), for every reading of every node in the window;
//! - command: `call_service` sent → result frame; → the device has it
//!   (strip relay closed / valve target moved, polled every ms) → the new
//!   state on the HA side (`ON` / a valve state `opening`).
//!
//! The twin devices and the HA client run in this process, on its 2
//! tokio workers; their CPU is printed beside the bridge's, and
//! Mosquitto's too. The load average is printed at each figure: the
//! machine may be shared.

use futures_util::{SinkExt, StreamExt};
use hearth::broker::BrokerAddress;
use hearth::clock::Clock;
use hearth::twin::node_sim::{self, NodeControl, NodeIo, NodeSimConfig};
use hearth::twin::tasmota_strip_sim::{self, SimMeter, StripSim, StripSimConfig};
use hearth_node_core::ValveActuator;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Device report period, s.
const PERIOD_S: u32 = 10;
/// Outlets per strip.
const OUTLETS: usize = 4;
/// Wall time between two device starts.
const STAGGER: Duration = Duration::from_millis(10);
/// Devices the plugins' configs name; never commanded by the bench.
const RESERVED: usize = 5;

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("{name}=`{v}` is not a whole number; using {default}");
            default
        }),
        Err(_) => default,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// `field` of `/proc/<pid>/status`, KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `utime + stime` of `/proc/<pid>/stat`, clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12) // fields 14 and 15 (state is field 3)
}

fn ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, v: &mut [Duration]) -> String {
    v.sort();
    format!(
        "{name}: n={} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        v.len(),
        ms(percentile(v, 0.5)),
        ms(percentile(v, 0.99)),
        ms(v.last().copied().unwrap_or_default())
    )
}

/// A `hearth run` child; killed (SIGTERM, then SIGKILL) on drop.
struct Hearth {
    child: Child,
    http_port: u16,
    log: PathBuf,
}

impl Hearth {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn start(dir: &Path, config: &str, mqtt_port: Option<u16>) -> Hearth {
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // Before the start: the API reads its tokens at start.
        let (_, secret) = hearth::api::auth::tokens::create(&data, "scale-bench").unwrap();
        std::fs::write(dir.join("token"), secret).unwrap();
        let path = dir.join("hearth.toml");
        std::fs::write(&path, config).unwrap();
        let http_port = hearth::broker::EmbeddedBroker::free_port();
        let log = dir.join("hearth.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.arg("run")
            .arg("--config")
            .arg(&path)
            .arg("--data-dir")
            .arg(&data)
            .arg("--http-port")
            .arg(http_port.to_string())
            .arg("--log-level")
            .arg("warn");
        if let Some(p) = mqtt_port {
            cmd.arg("--mqtt-port").arg(p.to_string());
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting hearth");
        let mut h = Hearth {
            child,
            http_port,
            log,
        };
        // Plugins compile at the first start (no code cache yet).
        let deadline = Instant::now() + Duration::from_secs(300);
        while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
            if let Ok(Some(status)) = h.child.try_wait() {
                panic!(
                    "hearth exited ({status}) before its HTTP port opened; log:\n{}",
                    std::fs::read_to_string(&h.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "hearth's HTTP port did not open within 300 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        h
    }

    /// The access token made at the start.
    fn token(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("token")).unwrap()
    }

    /// Problems the bridge logged (warn and error lines), first `n`.
    fn log_excerpt(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let mut out = format!("{} log lines", lines.len());
        for l in lines.iter().take(n) {
            out.push_str("\n    ");
            out.push_str(l);
        }
        out
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        // SAFETY: a plain kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mosquitto on a free loopback port; killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(dir: &Path) -> Mosquitto {
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed (`apt-get install -y mosquitto`)");
        let port = hearth::broker::EmbeddedBroker::free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_connections -1\n"
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "mosquitto did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Mosquitto { child, port }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the twin nodes and the HA client share.
struct Shared {
    /// Per node: when it last took a reading (wall) and the sim ms then.
    readings: Vec<Mutex<Option<(Instant, i64)>>>,
    /// Per node: the clock's ms when it was started (its uptime's origin).
    started_ms: Vec<Mutex<i64>>,
    /// Per node: when its valve's target last moved.
    valve_moved: Vec<Mutex<Option<Instant>>>,
    /// Sensor → HA state latencies while `measuring`.
    sensor: Mutex<Vec<Duration>>,
    measuring: std::sync::atomic::AtomicBool,
    /// Uptime states that matched no reading of their node.
    unmatched: AtomicU64,
    /// Every state message the HA client got.
    states: AtomicU64,
    /// Per node: its uptime state arrived at least once.
    node_seen: Vec<std::sync::atomic::AtomicBool>,
    /// Per strip: its outlet 1 power state arrived at least once.
    strip_seen: Vec<std::sync::atomic::AtomicBool>,
    /// State topic → command waiting for it.
    pending: Mutex<HashMap<String, Pending>>,
    done: Mutex<Vec<CommandTimes>>,
}

struct Pending {
    sent: Instant,
    expect: &'static str,
    acked: Option<Instant>,
    device: Option<Instant>,
}

struct CommandTimes {
    ack: Option<Duration>,
    device: Option<Duration>,
    state: Duration,
}

impl Shared {
    fn new(nodes: usize, strips: usize) -> Arc<Shared> {
        Arc::new(Shared {
            readings: (0..nodes).map(|_| Mutex::new(None)).collect(),
            started_ms: (0..nodes).map(|_| Mutex::new(0)).collect(),
            valve_moved: (0..nodes).map(|_| Mutex::new(None)).collect(),
            sensor: Mutex::default(),
            measuring: Default::default(),
            unmatched: AtomicU64::new(0),
            states: AtomicU64::new(0),
            node_seen: (0..nodes).map(|_| Default::default()).collect(),
            strip_seen: (0..strips).map(|_| Default::default()).collect(),
            pending: Mutex::default(),
            done: Mutex::default(),
        })
    }

    fn on_state(&self, topic: &str, payload: &[u8], at: Instant) {
        self.states.fetch_add(1, Ordering::Relaxed);
        let mut parts = topic.split('/');
        let (Some(_), Some(dev), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return;
        };
        // One lock: the guard of an `if let` scrutinee lives through its
        // body, so locking again there deadlocked the HA client's task.
        let answered = {
            let mut pending = self.pending.lock().unwrap();
            let hit = pending
                .get(topic)
                .is_some_and(|p| std::str::from_utf8(payload).is_ok_and(|s| s.contains(p.expect)));
            if hit { pending.remove(topic) } else { None }
        };
        if let Some(p) = answered {
            self.done.lock().unwrap().push(CommandTimes {
                ack: p.acked.map(|t| t - p.sent),
                device: p.device.map(|t| t - p.sent),
                state: at - p.sent,
            });
        }
        let idx = |prefix: char| {
            dev.strip_prefix(prefix)
                .and_then(|n| n.parse::<usize>().ok())
        };
        match key {
            "uptime" => {
                let Some(i) = idx('n').filter(|i| *i < self.readings.len()) else {
                    return;
                };
                self.node_seen[i].store(true, Ordering::Relaxed);
                let Some(uptime) = std::str::from_utf8(payload)
                    .ok()
                    .and_then(|s| s.trim().parse::<i64>().ok())
                else {
                    return;
                };
                let Some((taken, sim_ms)) = *self.readings[i].lock().unwrap() else {
                    return;
                };
                let expected = (sim_ms - *self.started_ms[i].lock().unwrap()) / 1000;
                if (uptime - expected).abs() <= 1 {
                    if self.measuring.load(Ordering::Relaxed) {
                        self.sensor.lock().unwrap().push(at - taken);
                    }
                } else if self.measuring.load(Ordering::Relaxed) {
                    self.unmatched.fetch_add(1, Ordering::Relaxed);
                }
            }
            "outlet1_power" => {
                if let Some(i) = idx('s').filter(|i| *i < self.strip_seen.len()) {
                    self.strip_seen[i].store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// A twin node's physics: a constant room, a valve, and the bench's
/// timestamps.
struct BenchIo {
    i: usize,
    shared: Arc<Shared>,
    valve: Mutex<ValveActuator>,
}

impl NodeIo for BenchIo {
    fn temperature_c(&self, now_ms: i64) -> f64 {
        *self.shared.readings[self.i].lock().unwrap() = Some((Instant::now(), now_ms));
        21.0
    }

    fn with_valve(&self, now_ms: i64, f: &mut dyn FnMut(&mut ValveActuator)) -> bool {
        let mut v = self.valve.lock().unwrap();
        v.advance_to(now_ms);
        let before = v.state().target;
        f(&mut v);
        if v.state().target != before {
            *self.shared.valve_moved[self.i].lock().unwrap() = Some(Instant::now());
        }
        true
    }
}

fn node_id(i: usize) -> String {
    format!("n{i:04}")
}

fn strip_id(i: usize) -> String {
    format!("s{i:04}")
}

/// The five plugins, on entities of the first devices.
fn plugins_toml() -> String {
    let n = |i, key: &str| format!("sensor.{}_{key}", node_id(i));
    let s = strip_id;
    let mut outlets = String::new();
    for strip in 0..2 {
        for o in 1..=OUTLETS {
            outlets.push_str(&format!(
                "  {{ switch = \"switch.{0}_outlet{o}\", strip = \"{0}\", current = \"sensor.{0}_outlet{o}_current\" }},\n",
                s(strip)
            ));
        }
    }
    format!(
        r#"
[[plugin]]
name = "thermostat"
wasm = "builtin:thermostat"
[plugin.config]
sensor = "{t0}"
climate = "climate.bench_ac"
switch = "switch.bench_ac_power"
power_sensor = "sensor.bench_ac_plug_power"
target_temp = 24.0
cold_tolerance = 0.3
hot_tolerance = 0.3
min_cycle_duration = 180
keep_alive = 300
over_temperature = 28.0
running_power_w = 300
start_check = 180
[plugin.limits]
memory_mib = 32
call_timeout_ms = 200

[[plugin]]
name = "mpc"
wasm = "builtin:mpc"
[plugin.config]
sensor = "{t1}"
valve = "valve.{n1}_heating"
heater_w = 6000.0
comfort_low_c = 19.0
comfort_high_c = 28.0
terminal_c = 20.0
model = {{ c_i = 1.36e6, c_e = 1.38e7, r_ie = 1.27e-3, r_ea = 4.94e-2, r_ia = 9.8e-3, a_w = 0.77 }}
[plugin.limits]
call_timeout_ms = 5000
fuel_per_call = 50000000000
memory_mib = 64

[[plugin]]
name = "anomalies"
wasm = "builtin:anomaly-detector"
[plugin.config]
streams = [
  {{ entity_id = "{t2}", kind = "temperature" }},
  {{ entity_id = "{h2}", kind = "humidity" }},
  {{ entity_id = "sensor.{s0}_outlet1_power", kind = "power" }},
]
threshold = 0.37
clear_threshold = 0.1
[plugin.limits]
memory_mib = 32

[[plugin]]
name = "strips"
wasm = "builtin:strip-balancer"
[plugin.config]
circuits = [{{ id = "wall", max_current_a = 16 }}]
strips = [
  {{ id = "{s0}", circuit = "wall", max_current_a = 10 }},
  {{ id = "{s1}", circuit = "wall", max_current_a = 10 }},
]
outlets = [
{outlets}]
users = []

[[plugin]]
name = "tariff"
wasm = "builtin:tariff-optimizer"
[plugin.config]
step_s = 1800
horizon_h = 24
objective = "profit"
import_limit_w = 12000
export_price = 0.04
base_load_w = 400
utc_offset_min = 60
replan_s = 300
node_limit = 20000
tariff_period = "sensor.tariff_period"
loads = [
  {{ id = "water_heater", kind = "thermal", switch = "switch.{s3}_outlet1", power = "sensor.{s3}_outlet1_power",
    nominal_w = 2400, temperature = "{t3}", volume_l = 200, loss_w_per_k = 1.8,
    ambient_c = 18, max_c = 65,
    ready = [{{ at = "06:30", min_c = 50 }}],
    draws = [{{ at = "07:00", wh = 3500 }}] }},
]
[plugin.limits]
call_timeout_ms = 1000
"#,
        t0 = n(0, "temperature"),
        t1 = n(1, "temperature"),
        n1 = node_id(1),
        t2 = n(2, "temperature"),
        h2 = n(2, "humidity"),
        t3 = n(3, "temperature"),
        s0 = s(0),
        s1 = s(1),
        s3 = s(3),
    )
}

fn strips_toml(strips: usize) -> String {
    let mut out = String::new();
    for i in 0..strips {
        out.push_str(&format!(
            "\n[[tasmota_strip]]\nid = \"{0}\"\nname = \"Strip {i}\"\ntopic = \"{0}\"\noutlets = {OUTLETS}\nmeter = \"per_outlet\"\n",
            strip_id(i)
        ));
    }
    out
}

/// The HA side: every state topic, timestamped at arrival.
async fn ha_client(port: u16, shared: Arc<Shared>) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut opts = MqttOptions::new("scale-bench-ha", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 1000);
    client
        .subscribe("hearth/+/+/state", QoS::AtMostOnce)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let mut tx = Some(tx);
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    shared.on_state(&p.topic, &p.payload, Instant::now())
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("HA client: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("HA client: no SUBACK within 10 s")
        .unwrap();
    (client, task)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An authenticated WebSocket API connection; its results go to the
/// pending commands (by state topic, through `ids`).
async fn ws_client(
    http_port: u16,
    token: &str,
    shared: Arc<Shared>,
    ids: Arc<Mutex<HashMap<u64, String>>>,
) -> Result<futures_util::stream::SplitSink<Ws, Message>, String> {
    let url = format!("ws://127.0.0.1:{http_port}/api/websocket");
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(&url),
    )
    .await
    .map_err(|_| "WebSocket connect timed out".to_string())?
    .map_err(|e| format!("WebSocket connect: {e}"))?;
    let (mut tx, mut rx) = ws.split();
    let mut frames = Vec::new();
    for _ in 0..2 {
        if frames.len() == 1 {
            tx.send(Message::text(
                json!({"type": "auth", "access_token": token}).to_string(),
            ))
            .await
            .map_err(|e| format!("WebSocket send: {e}"))?;
        }
        let m = tokio::time::timeout(Duration::from_secs(10), rx.next())
            .await
            .map_err(|_| "WebSocket: no frame within 10 s".to_string())?
            .ok_or("WebSocket closed")?
            .map_err(|e| format!("WebSocket: {e}"))?;
        let v: Value = serde_json::from_str(m.to_text().unwrap_or("null")).unwrap_or(Value::Null);
        frames.push(v);
    }
    if frames[0]["type"] != "auth_required" || frames[1]["type"] != "auth_ok" {
        return Err(format!("WebSocket auth: {frames:?}"));
    }
    tokio::spawn(async move {
        while let Some(Ok(m)) = rx.next().await {
            let at = Instant::now();
            let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or("null")) else {
                continue;
            };
            if v["type"] != "result" {
                continue;
            }
            if v["success"] != true {
                eprintln!("call_service failed: {v}");
            }
            let Some(id) = v["id"].as_u64() else { continue };
            let Some(topic) = ids.lock().unwrap().remove(&id) else {
                continue;
            };
            if let Some(p) = shared.pending.lock().unwrap().get_mut(&topic) {
                p.acked = Some(at);
            }
        }
    });
    Ok(tx)
}

/// Samples CPU ticks and VmRSS of `pids` every second until `stop`.
struct Sampler {
    peak_rss: Vec<Arc<AtomicU64>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pids: Vec<u32>) -> Sampler {
        let peak_rss: Vec<_> = pids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (p, s) = (peak_rss.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (pid, peak) in pids.iter().zip(&p) {
                    peak.fetch_max(status_kib(*pid, "VmRSS:"), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        Sampler {
            peak_rss,
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak_rss
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect()
    }
}

fn spawn_node(
    i: usize,
    port: u16,
    shared: &Arc<Shared>,
    clock: Clock,
    shutdown: &hearth::shutdown::Shutdown,
) {
    let io = Arc::new(BenchIo {
        i,
        shared: shared.clone(),
        valve: Mutex::new(ValveActuator::new(20, clock.now_ms())),
    });
    *shared.started_ms[i].lock().unwrap() = clock.now_ms();
    node_sim::spawn_with(
        clock,
        &BrokerAddress::local(port),
        NodeSimConfig {
            node_id: node_id(i),
            name: format!("Node {i}"),
            interval_s: PERIOD_S,
            seed: i as u64,
        },
        io,
        Arc::new(NodeControl::default()),
        shutdown.clone(),
    )
    .unwrap();
}

fn spawn_strip(
    i: usize,
    port: u16,
    clock: Clock,
    shutdown: &hearth::shutdown::Shutdown,
) -> StripSim {
    let (sim, _) = tasmota_strip_sim::spawn(
        clock,
        "127.0.0.1",
        port,
        StripSimConfig {
            topic: strip_id(i),
            client_id: format!("tasmota-{}", strip_id(i)),
            loads_w: vec![60.0, 25.0, 100.0, 8.0],
            voltage_v: 230.0,
            meter: SimMeter::PerChannel,
            tele_period_s: f64::from(PERIOD_S),
            breaker: None,
            circuit: None,
        },
        shutdown.clone(),
    )
    .unwrap();
    sim
}

/// Waits until every flag is set, or `limit`; returns how many are.
async fn wait_seen(flags: &[std::sync::atomic::AtomicBool], limit: Duration) -> usize {
    let t = Instant::now();
    loop {
        let n = flags.iter().filter(|f| f.load(Ordering::Relaxed)).count();
        if n == flags.len() || t.elapsed() > limit {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores; load average at start {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    );
    if env_u64("HEARTH_SCALE_SKIP_MEMORY", 0) == 0 {
        rt.block_on(memory_run());
    }
    if env_u64("HEARTH_SCALE_SKIP_LOAD", 0) == 0 {
        rt.block_on(load_run());
    }
}

async fn memory_run() {
    let nodes = env_u64("HEARTH_SCALE_RSS_NODES", 200) as usize;
    let secs = env_u64("HEARTH_SCALE_RSS_SECS", 30);
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = hearth::broker::EmbeddedBroker::free_port();
    // First start: the plugins compile (no code cache yet).
    let t = Instant::now();
    let first = Hearth::start(dir.path(), &plugins_toml(), Some(mqtt_port));
    let up = t.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let pid = first.pid();
    println!(
        "\n[memory] first start (plugins compiled): hearth up in {up:.1} s with 5 plugins, embedded broker; 10 s later, no device: RSS {:.1} MiB (anon {:.1}, file {:.1}); load average {}",
        mib(status_kib(pid, "VmRSS:")),
        mib(status_kib(pid, "RssAnon:")),
        mib(status_kib(pid, "RssFile:")),
        loadavg()
    );
    drop(first);
    // Every later start: the plugins come from the code cache.
    devices_rss(
        dir.path(),
        &plugins_toml(),
        Some(mqtt_port),
        mqtt_port,
        nodes,
        secs,
        "embedded broker",
    )
    .await;
    // The same on Mosquitto: the device connections' state is then the
    // external broker's, not the bridge's.
    let mosquitto = Mosquitto::start(dir.path());
    let port = mosquitto.port;
    let config = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n{}",
        plugins_toml()
    );
    devices_rss(dir.path(), &config, None, port, nodes, secs, "Mosquitto").await;
    drop(mosquitto);
}

/// Starts hearth (plugins from the code cache), connects `nodes` twin
/// nodes to the broker on `device_port` and prints hearth's RSS after
/// `secs` s.
async fn devices_rss(
    dir: &Path,
    config: &str,
    hearth_mqtt_port: Option<u16>,
    device_port: u16,
    nodes: usize,
    secs: u64,
    broker: &str,
) {
    let t = Instant::now();
    let hearth = Hearth::start(dir, config, hearth_mqtt_port);
    let pid = hearth.pid();
    println!(
        "[memory] {broker}: restart (code cache): hearth (pid {pid}) up in {:.1} s; RSS {:.1} MiB before any device",
        t.elapsed().as_secs_f64(),
        mib(status_kib(pid, "VmRSS:"))
    );
    let shared = Shared::new(nodes, 0);
    let (_ha, ha_task) = ha_client(device_port, shared.clone()).await;
    let (trigger, shutdown) = hearth::shutdown::channel();
    let clock = Clock::real();
    for i in 0..nodes {
        spawn_node(i, device_port, &shared, clock, &shutdown);
        tokio::time::sleep(STAGGER).await;
    }
    let seen = wait_seen(&shared.node_seen, Duration::from_secs(60)).await;
    println!(
        "[memory] {broker}: {seen} of {nodes} nodes ({} entities) have states on the HA side",
        seen * 5
    );
    let sampler = Sampler::start(vec![pid]);
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let peak = sampler.stop()[0];
    let (rss, anon, file, hwm) = (
        status_kib(pid, "VmRSS:"),
        status_kib(pid, "RssAnon:"),
        status_kib(pid, "RssFile:"),
        status_kib(pid, "VmHWM:"),
    );
    println!(
        "[memory] {broker}: hearth RSS with 5 plugins and {} node entities after {secs} s: {:.1} MiB (anon {:.1}, file {:.1}); peak sampled {:.1} MiB, VmHWM {:.1} MiB; threads {}; load average {}",
        seen * 5,
        mib(rss),
        mib(anon),
        mib(file),
        mib(peak),
        mib(hwm),
        status_kib(pid, "Threads:"),
        loadavg()
    );
    println!("[memory] {}", hearth.log_excerpt(8));
    trigger.trigger();
    ha_task.abort();
    drop(hearth);
}

async fn load_run() {
    let nodes = env_u64("HEARTH_SCALE_NODES", 500) as usize;
    let strips = env_u64("HEARTH_SCALE_STRIPS", 500) as usize;
    let secs = env_u64("HEARTH_SCALE_SECS", 120);
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(dir.path());
    let port = mosquitto.port;
    let config = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\n{}{}",
        plugins_toml(),
        strips_toml(strips)
    );
    let t = Instant::now();
    let hearth = Hearth::start(dir.path(), &config, None);
    let pid = hearth.pid();
    println!(
        "\n[load] hearth (pid {pid}) up in {:.1} s: 5 plugins, {strips} strips configured, Mosquitto on {port}; RSS {:.1} MiB",
        t.elapsed().as_secs_f64(),
        mib(status_kib(pid, "VmRSS:"))
    );
    let shared = Shared::new(nodes, strips);
    let (_ha, ha_task) = ha_client(port, shared.clone()).await;
    let ids: Arc<Mutex<HashMap<u64, String>>> = Arc::default();
    let token = Hearth::token(dir.path());
    let (trigger, shutdown) = hearth::shutdown::channel();
    let clock = Clock::real();
    let mut sims = Vec::with_capacity(strips);
    let t = Instant::now();
    for i in 0..nodes.max(strips) {
        if i < nodes {
            spawn_node(i, port, &shared, clock, &shutdown);
        }
        if i < strips {
            sims.push(spawn_strip(i, port, clock, &shutdown));
        }
        tokio::time::sleep(STAGGER).await;
    }
    let seen_nodes = wait_seen(&shared.node_seen, Duration::from_secs(60)).await;
    let seen_strips = wait_seen(&shared.strip_seen, Duration::from_secs(60)).await;
    println!(
        "[load] devices started in {:.1} s; on the HA side: {seen_nodes} of {nodes} nodes, {seen_strips} of {strips} strips ({} entities); {} state messages so far; load average {}",
        t.elapsed().as_secs_f64(),
        seen_nodes * 5 + seen_strips * OUTLETS * 4,
        shared.states.load(Ordering::Relaxed),
        loadavg()
    );
    let mut ws = None;
    for _ in 0..5 {
        let r = tokio::time::timeout(
            Duration::from_secs(40),
            tokio::spawn({
                let (shared, ids, token) = (shared.clone(), ids.clone(), token.clone());
                let http = hearth.http_port;
                async move { ws_client(http, &token, shared, ids).await }
            }),
        )
        .await;
        match r {
            Ok(Ok(Ok(tx))) => {
                ws = Some(tx);
                break;
            }
            Ok(Ok(Err(e))) => eprintln!("[load] {e}"),
            Ok(Err(e)) => eprintln!("[load] WebSocket client: {e}"),
            Err(_) => eprintln!("[load] WebSocket client: no answer within 40 s"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut ws = ws.expect("WebSocket API: no auth_ok after 5 attempts");
    tokio::time::sleep(Duration::from_secs(10)).await; // warm-up

    let ticks = ticks_per_s();
    let mosq_pid = mosquitto.child.id();
    let me = std::process::id();
    let cpu0 = (cpu_ticks(pid), cpu_ticks(mosq_pid), cpu_ticks(me));
    let states0 = shared.states.load(Ordering::Relaxed);
    let sampler = Sampler::start(vec![pid, mosq_pid]);
    shared.measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut n = 0u64;
    let (mut next_strip, mut next_node) = (RESERVED, RESERVED);
    let mut unseen = Vec::new();
    while t0.elapsed() < Duration::from_secs(secs) {
        n += 1;
        let (topic, expect, msg, seen): (String, &'static str, Value, DeviceSeen) = if n % 2 == 1
            && next_strip < strips
        {
            let i = next_strip;
            next_strip += 1;
            (
                format!("hearth/{}/outlet1/state", strip_id(i)),
                "ON",
                json!({"id": n, "type": "call_service", "domain": "switch", "service": "turn_on",
                       "service_data": {"entity_id": format!("switch.{}_outlet1", strip_id(i))}}),
                DeviceSeen::Strip(sims[i].clone()),
            )
        } else if next_node < nodes {
            let i = next_node;
            next_node += 1;
            *shared.valve_moved[i].lock().unwrap() = None;
            (
                format!("hearth/{}/heating/state", node_id(i)),
                "opening",
                json!({"id": n, "type": "call_service", "domain": "valve", "service": "set_valve_position",
                       "service_data": {"entity_id": format!("valve.{}_heating", node_id(i)), "position": 100}}),
                DeviceSeen::Node(i),
            )
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        let sent = Instant::now();
        shared.pending.lock().unwrap().insert(
            topic.clone(),
            Pending {
                sent,
                expect,
                acked: None,
                device: None,
            },
        );
        ids.lock().unwrap().insert(n, topic.clone());
        ws.send(Message::text(msg.to_string())).await.unwrap();
        // The device's side, polled every ms (at most 10 s).
        let sh = shared.clone();
        unseen.push(tokio::spawn(async move {
            while sent.elapsed() < Duration::from_secs(10) {
                let at = match &seen {
                    DeviceSeen::Strip(sim) => sim.relay(1).then(Instant::now),
                    DeviceSeen::Node(i) => *sh.valve_moved[*i].lock().unwrap(),
                };
                if let Some(at) = at {
                    if let Some(p) = sh.pending.lock().unwrap().get_mut(&topic) {
                        p.device = Some(at);
                    } else if let Some(c) = sh.done.lock().unwrap().last_mut() {
                        // The state came first: fill it in afterwards.
                        c.device.get_or_insert(at - sent);
                    }
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }));
        let due = t0 + Duration::from_secs(n);
        tokio::time::sleep_until(due.into()).await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    shared.measuring.store(false, Ordering::Relaxed);
    let cpu1 = (cpu_ticks(pid), cpu_ticks(mosq_pid), cpu_ticks(me));
    let states = shared.states.load(Ordering::Relaxed) - states0;
    let peaks = sampler.stop();
    let pct = |a: u64, b: u64| (b - a) as f64 / ticks / elapsed * 100.0;
    let load = loadavg();
    // Commands still pending get 10 s more.
    for _ in 0..100 {
        if shared.pending.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss = status_kib(pid, "VmRSS:");
    println!(
        "[load] {secs} s window, {} devices ({nodes} ESP32 nodes × 5 + {strips} strips × {} entities = {} entities), reports every {PERIOD_S} s, load average {load}",
        nodes + strips,
        OUTLETS * 4,
        nodes * 5 + strips * OUTLETS * 4
    );
    println!(
        "[load] CPU: hearth {:.1} % of one core, Mosquitto {:.1} %, bench (twin devices + HA client) {:.1} %",
        pct(cpu0.0, cpu1.0),
        pct(cpu0.1, cpu1.1),
        pct(cpu0.2, cpu1.2)
    );
    println!(
        "[load] RSS: hearth {:.1} MiB now (anon {:.1}, file {:.1}), peak sampled {:.1} MiB, VmHWM {:.1} MiB; Mosquitto peak {:.1} MiB",
        mib(rss),
        mib(status_kib(pid, "RssAnon:")),
        mib(status_kib(pid, "RssFile:")),
        mib(peaks[0]),
        mib(status_kib(pid, "VmHWM:")),
        mib(peaks[1])
    );
    println!(
        "[load] HA side: {states} state messages in the window ({:.0}/s)",
        states as f64 / elapsed
    );
    let mut sensor = std::mem::take(&mut *shared.sensor.lock().unwrap());
    println!(
        "[load] {} (node readings; {} uptime states matched no reading)",
        summary("sensor → HA state", &mut sensor),
        shared.unmatched.load(Ordering::Relaxed)
    );
    let done = std::mem::take(&mut *shared.done.lock().unwrap());
    let pending = shared.pending.lock().unwrap().len();
    let mut acks: Vec<_> = done.iter().filter_map(|c| c.ack).collect();
    let mut dev: Vec<_> = done.iter().filter_map(|c| c.device).collect();
    let mut state: Vec<_> = done.iter().map(|c| c.state).collect();
    println!(
        "[load] commands: {} sent, {} with the new state on the HA side, {pending} without within 10 s",
        done.len() + pending,
        done.len()
    );
    println!("[load]   {}", summary("call_service → result", &mut acks));
    println!(
        "[load]   {}",
        summary("call_service → device has it", &mut dev)
    );
    println!(
        "[load]   {}",
        summary("call_service → HA state", &mut state)
    );
    println!("[load] {}", hearth.log_excerpt(8));
    trigger.trigger();
    ha_task.abort();
    for u in unseen {
        u.abort();
    }
    drop(hearth);
    drop(mosquitto);
}

enum DeviceSeen {
    Strip(StripSim),
    Node(usize),
}
