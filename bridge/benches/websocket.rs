//! WebSocket API fan-out under load (`cargo bench -p hearth --bench websocket`).
//!
//! A bridge (embedded MQTT broker, HTTP port 0, data directory in a temp
//! dir) with one numeric sensor registered directly in its store serves
//! 100 WebSocket clients on the same machine. Each client authenticates,
//! sends `supported_features` with `coalesce_messages` (as
//! home-assistant-js-websocket does), subscribes with `subscribe_entities`
//! and reads the initial `{"a": …}` snapshot. Then the bench writes state
//! changes into the store with `set_state`: the state is a sequence number
//! (so clients check order and loss), the attribute `t` the write time in
//! ns since a shared `Instant`, so each client computes the latency from
//! `set_state` to the arrival of the `{"c": …}` diff (coalesced frames are
//! JSON arrays and are split).
//!
//! Rounds:
//! 1. paced, 1 000 changes/s for 5 s: latency without queue build-up;
//! 2. full speed, 20 000 changes, with the default per-connection send
//!    queue (4 096 messages): how many clients survive a burst;
//! 3. full speed, 20 000 changes, on a second bridge whose
//!    `[http] max_pending_messages` is raised above the burst so no client
//!    is dropped: delivered events/s across all clients and latency with
//!    the queues full.
//!
//! The clients run in the same process and on the same 2 worker threads as
//! the bridge, so their parsing competes with the bridge for the CPU; the
//! figures are for the whole loop on one machine.

use futures_util::{SinkExt, StreamExt};
use hearth::app::Bridge;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::{Component, Device, EntitySpec};
use serde_json::{Map, Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const CLIENTS: usize = 100;
const BURST: u64 = 20_000;
const PACED_RATE: f64 = 1_000.0;
const PACED_SECONDS: u64 = 5;
/// Queue length for the full-speed bridge: the whole burst plus the
/// set-up messages fits, so a client is never dropped for a full queue.
const RAISED_QUEUE: usize = 32_768;
const ENTITY: &str = "sensor.bench_value";
const SUBSCRIPTION: u64 = 2;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores; {CLIENTS} WebSocket clients in the same process, coalesce_messages on",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(bench());
}

/// What the clients of one bridge share with the bench.
struct Shared {
    t0: Instant,
    /// Per client: highest sequence number seen.
    last_seq: Vec<AtomicU64>,
    /// Per client: arrival (ns since `t0`) of the last event seen.
    last_at: Vec<AtomicU64>,
    /// Per client: the connection ended (dropped by the bridge).
    dead: Vec<AtomicBool>,
    /// Per client: latencies (ns) of the events since the last round.
    latencies: Vec<Mutex<Vec<u64>>>,
    delivered: AtomicU64,
    /// Text frames carrying events (a coalesced frame holds several).
    frames: AtomicU64,
    /// Events whose sequence number was not the previous one + 1.
    out_of_order: AtomicU64,
    /// Messages on the subscription other than `c` diffs of the entity.
    other: AtomicU64,
}

impl Shared {
    fn new(t0: Instant) -> Arc<Self> {
        Arc::new(Shared {
            t0,
            last_seq: (0..CLIENTS).map(|_| AtomicU64::new(0)).collect(),
            last_at: (0..CLIENTS).map(|_| AtomicU64::new(0)).collect(),
            dead: (0..CLIENTS).map(|_| AtomicBool::new(false)).collect(),
            latencies: (0..CLIENTS).map(|_| Mutex::default()).collect(),
            delivered: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            other: AtomicU64::new(0),
        })
    }

    fn now_ns(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }
}

struct Rig {
    bridge: Bridge,
    shared: Arc<Shared>,
    clients: Vec<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

async fn bench() {
    let t0 = Instant::now();
    let mut seq = 0;

    // Bridge 1: default send queue.
    let rig = start(t0, None, None).await;
    println!(
        "\nbridge 1: default send queue ({} messages per connection)",
        hearth::api::ApiOptions::default().max_pending
    );
    let n = (PACED_RATE as u64) * PACED_SECONDS;
    let r = round(&rig, seq, n, Some(PACED_RATE)).await;
    r.print(&format!(
        "paced, {PACED_RATE:.0} changes/s for {PACED_SECONDS} s"
    ));
    seq += n;
    let r = round(&rig, seq, BURST, None).await;
    r.print("full speed, default queue");
    let broker = rig.bridge.broker.clone();
    stop(rig).await;

    // Bridge 2: queue raised above the burst.
    let rig = start(t0, Some(RAISED_QUEUE), Some(broker.port)).await;
    println!(
        "\nbridge 2: [http] max_pending_messages = {RAISED_QUEUE} (raised so a {BURST}-change burst cannot drop a client)"
    );
    let r = round(&rig, 0, BURST, None).await;
    r.print("full speed, raised queue");
    stop(rig).await;
}

/// Starts a bridge (with the embedded broker unless `broker_port` names
/// one already running), registers the entity and connects the clients.
async fn start(t0: Instant, max_pending: Option<usize>, broker_port: Option<u16>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (_, secret) = hearth::api::auth::tokens::create(dir.path(), "bench").unwrap();
    let mqtt = match broker_port {
        Some(p) => format!("url = \"mqtt://127.0.0.1:{p}\""),
        None => format!("port = {}", hearth::broker::EmbeddedBroker::free_port()),
    };
    let http_extra = max_pending.map_or(String::new(), |m| format!("max_pending_messages = {m}"));
    let toml = format!(
        "data_dir = {:?}\n[mqtt]\n{mqtt}\n[http]\nport = 0\n{http_extra}\n[esp32]\nenabled = false\n",
        path_str(dir.path())
    );
    let config = Config::from_toml(&toml, "bench").unwrap();
    let bridge = Bridge::start(config, Clock::real()).await.unwrap();

    let store = &bridge.store;
    store
        .upsert_device(
            "bench",
            Device {
                id: "bench".into(),
                name: "Bench".into(),
                manufacturer: "bench".into(),
                model: "bench".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    let spec = EntitySpec::new("bench", "value", Component::Sensor);
    assert_eq!(spec.entity_id, ENTITY);
    store.upsert_entity(spec).unwrap();
    store.set_state(ENTITY, "0", Map::new()).unwrap();

    let shared = Shared::new(t0);
    let url = format!("ws://{}/api/websocket", bridge.http_addr);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(CLIENTS);
    let clients = (0..CLIENTS)
        .map(|i| {
            let (url, secret, shared, ready) = (
                url.clone(),
                secret.clone(),
                shared.clone(),
                ready_tx.clone(),
            );
            tokio::spawn(async move {
                if let Err(e) = client(i, &url, &secret, &shared, ready).await {
                    eprintln!("client {i}: {e}");
                }
                shared.dead[i].store(true, Ordering::Relaxed);
            })
        })
        .collect();
    let t = Instant::now();
    for _ in 0..CLIENTS {
        tokio::time::timeout(Duration::from_secs(30), ready_rx.recv())
            .await
            .expect("clients did not connect within 30 s")
            .unwrap();
    }
    println!(
        "{CLIENTS} clients connected, authenticated and subscribed in {:.0} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    Rig {
        bridge,
        shared,
        clients,
        _dir: dir,
    }
}

fn path_str(p: &Path) -> String {
    p.to_str().expect("temp dir path is UTF-8").to_string()
}

async fn stop(rig: Rig) {
    rig.clients.iter().for_each(|c| c.abort());
    rig.bridge.stop().await;
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame's messages (a coalesced frame is a JSON array).
async fn next_messages(ws: &mut Ws) -> Result<Vec<Value>, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                return match serde_json::from_str(t.as_str()) {
                    Ok(Value::Array(v)) => Ok(v),
                    Ok(v) => Ok(vec![v]),
                    Err(e) => Err(format!("invalid JSON from the bridge: {e}")),
                };
            }
            Some(Ok(Message::Close(f))) => return Err(format!("closed by the bridge: {f:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("connection error: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) -> Result<(), String> {
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| e.to_string())
}

async fn client(
    i: usize,
    url: &str,
    token: &str,
    shared: &Shared,
    ready: tokio::sync::mpsc::Sender<()>,
) -> Result<(), String> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let first = next_messages(&mut ws).await?;
    if first[0]["type"] != "auth_required" {
        return Err(format!("expected auth_required, got {first:?}"));
    }
    send(&mut ws, json!({"type": "auth", "access_token": token})).await?;
    let ok = next_messages(&mut ws).await?;
    if ok[0]["type"] != "auth_ok" {
        return Err(format!("expected auth_ok, got {ok:?}"));
    }
    send(
        &mut ws,
        json!({"id": 1, "type": "supported_features", "features": {"coalesce_messages": 1}}),
    )
    .await?;
    send(
        &mut ws,
        json!({"id": SUBSCRIPTION, "type": "subscribe_entities"}),
    )
    .await?;
    // Results of 1 and 2, then the snapshot.
    let mut have_snapshot = false;
    while !have_snapshot {
        for m in next_messages(&mut ws).await? {
            match m["type"].as_str() {
                Some("result") if m["success"] == true => {}
                Some("event") if m["id"] == SUBSCRIPTION => {
                    let s = &m["event"]["a"][ENTITY]["s"];
                    if s.is_null() {
                        return Err(format!("snapshot without {ENTITY}: {m}"));
                    }
                    have_snapshot = true;
                }
                _ => return Err(format!("unexpected message during set-up: {m}")),
            }
        }
    }
    let _ = ready.send(()).await;
    drop(ready);

    let mut last = shared.last_seq[i].load(Ordering::Relaxed);
    loop {
        let msgs = next_messages(&mut ws).await?;
        let now = shared.now_ns();
        let mut lat = shared.latencies[i].lock().unwrap();
        for m in msgs {
            let diff = &m["event"]["c"][ENTITY]["+"];
            let (Some(seq), Some(t)) = (
                diff["s"].as_str().and_then(|s| s.parse::<u64>().ok()),
                diff["a"]["t"].as_u64(),
            ) else {
                shared.other.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            if seq != last + 1 {
                shared.out_of_order.fetch_add(1, Ordering::Relaxed);
            }
            last = seq;
            lat.push(now.saturating_sub(t));
            shared.delivered.fetch_add(1, Ordering::Relaxed);
        }
        drop(lat);
        shared.frames.fetch_add(1, Ordering::Relaxed);
        shared.last_at[i].store(now, Ordering::Relaxed);
        shared.last_seq[i].store(last, Ordering::Relaxed);
    }
}

struct RoundResult {
    written: u64,
    write_time: Duration,
    delivered: u64,
    frames: u64,
    /// From the first write to the last client's last event.
    span: Duration,
    latencies: Vec<u64>,
    dropped: usize,
    out_of_order: u64,
    other: u64,
    timed_out: bool,
}

/// Writes `n` changes (sequence numbers `after + 1 ..= after + n`), at
/// `rate` per second or at full speed, and waits until every live client
/// has the last one.
async fn round(rig: &Rig, after: u64, n: u64, rate: Option<f64>) -> RoundResult {
    let shared = rig.shared.clone();
    let dead_before = shared
        .dead
        .iter()
        .filter(|d| d.load(Ordering::Relaxed))
        .count();
    let delivered_before = shared.delivered.load(Ordering::Relaxed);
    let frames_before = shared.frames.load(Ordering::Relaxed);
    let (ooo_before, other_before) = (
        shared.out_of_order.load(Ordering::Relaxed),
        shared.other.load(Ordering::Relaxed),
    );
    for l in &shared.latencies {
        l.lock().unwrap().clear();
    }
    let store = rig.bridge.store.clone();
    let s = shared.clone();
    let start_ns = shared.now_ns();
    let writer = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        for k in 0..n {
            if let Some(rate) = rate {
                let due = start + Duration::from_secs_f64(k as f64 / rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            let mut attributes = Map::new();
            attributes.insert("t".into(), json!(s.now_ns()));
            store
                .set_state(ENTITY, (after + k + 1).to_string(), attributes)
                .unwrap();
        }
        start.elapsed()
    });
    let write_time = writer.await.unwrap();
    let last = after + n;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut timed_out = false;
    loop {
        let done = (0..CLIENTS).all(|i| {
            shared.dead[i].load(Ordering::Relaxed)
                || shared.last_seq[i].load(Ordering::Relaxed) >= last
        });
        if done {
            break;
        }
        if Instant::now() > deadline {
            timed_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let end_ns = (0..CLIENTS)
        .map(|i| shared.last_at[i].load(Ordering::Relaxed))
        .max()
        .unwrap_or(start_ns);
    let mut latencies = Vec::new();
    for l in &shared.latencies {
        latencies.append(&mut l.lock().unwrap());
    }
    latencies.sort_unstable();
    RoundResult {
        written: n,
        write_time,
        delivered: shared.delivered.load(Ordering::Relaxed) - delivered_before,
        frames: shared.frames.load(Ordering::Relaxed) - frames_before,
        span: Duration::from_nanos(end_ns.saturating_sub(start_ns)),
        latencies,
        dropped: shared
            .dead
            .iter()
            .filter(|d| d.load(Ordering::Relaxed))
            .count()
            - dead_before,
        out_of_order: shared.out_of_order.load(Ordering::Relaxed) - ooo_before,
        other: shared.other.load(Ordering::Relaxed) - other_before,
        timed_out,
    }
}

/// `VmRSS` and `VmHWM` (peak) of this process, from /proc (Linux).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or("n/a".to_string(), |kb| format!("{} MiB", kb / 1024))
    };
    format!("RSS {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

fn fmt_ns(ns: u64) -> String {
    if ns >= 1_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

impl RoundResult {
    fn print(&self, label: &str) {
        let pct = |p: f64| {
            let v = &self.latencies;
            if v.is_empty() {
                0
            } else {
                v[((v.len() - 1) as f64 * p).round() as usize]
            }
        };
        println!("round: {label}");
        println!(
            "  events written:   {} in {:.1} ms ({:.0} set_state/s)",
            self.written,
            self.write_time.as_secs_f64() * 1000.0,
            self.written as f64 / self.write_time.as_secs_f64()
        );
        println!(
            "  events delivered: {} of {} ({} clients × {})",
            self.delivered,
            self.written * CLIENTS as u64,
            CLIENTS,
            self.written
        );
        println!(
            "  frames received:  {} ({:.1} events per frame)",
            self.frames,
            self.delivered as f64 / self.frames.max(1) as f64
        );
        println!(
            "  delivered/s:      {:.0} events/s across all clients (first write → last client's last event: {:.2} s)",
            self.delivered as f64 / self.span.as_secs_f64(),
            self.span.as_secs_f64()
        );
        println!(
            "  latency set_state → client: p50 {}, p99 {}, max {}",
            fmt_ns(pct(0.50)),
            fmt_ns(pct(0.99)),
            fmt_ns(self.latencies.last().copied().unwrap_or(0))
        );
        println!(
            "  clients dropped:  {}; out-of-order/gaps: {}; other messages: {}{}",
            self.dropped,
            self.out_of_order,
            self.other,
            if self.timed_out {
                "; TIMED OUT after 120 s"
            } else {
                ""
            }
        );
        println!("  process memory:   {} (bridge and clients)", memory());
    }
}
