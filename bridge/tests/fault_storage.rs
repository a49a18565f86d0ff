//! Storage faults, injected for real on the real `hearth` binary:
//!
//! - `kill -9` while the recorder writes a few thousand rows a second
//!   (simulated ESP32 nodes flooding telemetry through Mosquitto): the
//!   SQLite file passes `PRAGMA integrity_check`, every state the bridge
//!   had published to Home Assistant more than [`LOSS_BOUND`] before the
//!   kill is on disk (the recorder's documented loss window:
//!   `commit_interval_ms` plus one commit), and the next start is clean
//!   and restores the commanded climate target and switch;
//! - the data directory on a small tmpfs that fills up (a filler file):
//!   the bridge keeps running, `binary_sensor.bridge_recorder_problem`
//!   (announced through discovery) turns on, an alert is raised
//!   (`event.bridge_alerts`), the rows wait in memory, and once the filler
//!   is deleted every one of them is written, in order.

use crate::common;
use crate::signals::DemoProcess;
use hearth::api::auth::tokens;
use hearth::broker::BrokerAddress;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIMATE: &str = "climate.server_room_ac";
const PLUG: &str = "switch.server_room_ac_plug";
const PROBLEM: &str = "binary_sensor.bridge_recorder_problem";
/// Every wait of these tests; a restart compiles nothing (plugin code is
/// cached per data directory) but a loaded 2-core machine is slow.
const WAIT: Duration = Duration::from_secs(120);
/// The demo's `[recorder] commit_interval_ms` (the default).
const COMMIT_INTERVAL: Duration = Duration::from_millis(1000);
/// What a kill may lose: rows queued after the last commit started, i.e.
/// one commit interval plus the commit that was running (and the feed
/// task's hop from the store to the queue). 500 ms bounds a commit of a
/// few thousand rows on a loaded 2-core machine (they take 10–100 ms).
const LOSS_BOUND: Duration = Duration::from_millis(COMMIT_INTERVAL.as_millis() as u64 + 500);

/// Every message on a filter with the time it arrived.
/// (topic, payload, arrival) of each message.
type Seen = Vec<(String, Vec<u8>, Instant)>;

#[derive(Clone)]
struct TimedSub {
    seen: Arc<Mutex<Seen>>,
}

impl TimedSub {
    async fn connect(addr: &BrokerAddress, filter: &str) -> TimedSub {
        let id = client_id("fault-storage-sub");
        let mut opts = MqttOptions::new(id, &addr.host, addr.port);
        opts.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        client.subscribe(filter, QoS::AtMostOnce).await.unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        tokio::spawn(async move {
            let _client = client;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        s.lock()
                            .unwrap()
                            .push((p.topic, p.payload.to_vec(), Instant::now()));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .expect("subscribed within 10 s")
            .unwrap();
        TimedSub { seen }
    }

    fn messages(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// The last payload on `topic`, as text.
    fn last(&self, topic: &str) -> Option<String> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .rev()
            .find(|(t, _, _)| t == topic)
            .map(|(_, p, _)| String::from_utf8_lossy(p).into_owned())
    }
}

/// Simulated ESP32 nodes (`<prefix>-<i>`, one `uptime` sensor each) that
/// send `{"uptime": n}`, n = 0, 1, 2… (every one a state change), over
/// QoS 1 so the broker drops none.
struct Flood {
    stop: Arc<AtomicBool>,
    client: AsyncClient,
    /// Values sent so far, per node (the next value to send).
    sent: Arc<Vec<AtomicU64>>,
    task: tokio::task::JoinHandle<()>,
}

/// A client id no other client of this process uses (the broker drops
/// the older of two connections with one id).
fn client_id(what: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{what}-{}-{n}", std::process::id())
}

fn node_id(prefix: &str, i: usize) -> String {
    format!("{prefix}-{i}")
}

/// `sensor.<node>_uptime`.
fn uptime_entity(prefix: &str, i: usize) -> String {
    format!("sensor.{}_uptime", node_id(prefix, i).replace('-', "_"))
}

impl Flood {
    /// Announces `nodes` nodes, then sends one reading per node every
    /// `period` while `running` (and not stopped); `running` false pauses.
    async fn start(
        addr: &BrokerAddress,
        prefix: &'static str,
        nodes: usize,
        period: Duration,
        running: Arc<AtomicBool>,
    ) -> Flood {
        let mut opts = MqttOptions::new(client_id(prefix), &addr.host, addr.port);
        opts.set_inflight(200);
        let (client, mut eventloop) = AsyncClient::new(opts, 1000);
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        tokio::spawn(async move {
            // Until stopped: `stop` disconnects, which ends `poll`.
            while !st.load(Ordering::SeqCst) {
                if eventloop.poll().await.is_err() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        for i in 0..nodes {
            let id = node_id(prefix, i);
            let announce = json!({
                "id": id, "name": format!("Flood {i}"), "model": "flood", "sw_version": "1",
                "sensors": ["uptime"], "interval_s": 3600,
            });
            client
                .publish(
                    format!("hearth-node/{id}/announce"),
                    QoS::AtLeastOnce,
                    true,
                    announce.to_string(),
                )
                .await
                .unwrap();
        }
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..nodes).map(|_| AtomicU64::new(0)).collect());
        let (st, se, c) = (stop.clone(), sent.clone(), client.clone());
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !st.load(Ordering::SeqCst) {
                tick.tick().await;
                if !running.load(Ordering::SeqCst) {
                    continue;
                }
                for (i, n) in se.iter().enumerate() {
                    let v = n.load(Ordering::SeqCst);
                    let topic = format!("hearth-node/{}/telemetry", node_id(prefix, i));
                    let body = json!({ "uptime": v }).to_string();
                    if c.publish(topic, QoS::AtLeastOnce, false, body)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    n.store(v + 1, Ordering::SeqCst);
                }
            }
        });
        Flood {
            stop,
            client,
            sent,
            task,
        }
    }

    fn sent(&self, i: usize) -> u64 {
        self.sent[i].load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.abort();
        let _ = self.client.try_disconnect();
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A plain HTTP/1.1 request over a real socket: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let go = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.ok()?;
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.ok()?;
        Some(resp)
    };
    let Ok(Some(resp)) = tokio::time::timeout(Duration::from_secs(15), go).await else {
        return (0, String::new());
    };
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

async fn rest_state(addr: SocketAddr, token: &str, entity_id: &str) -> Option<Value> {
    let (status, body) = http(addr, "GET", &format!("/api/states/{entity_id}"), token, "").await;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

/// Polls the REST state of `entity_id` until `check` holds.
async fn wait_rest(
    what: &str,
    addr: SocketAddr,
    token: &str,
    entity_id: &str,
    check: impl Fn(&Value) -> bool,
) {
    let started = Instant::now();
    let mut last = None;
    while started.elapsed() < WAIT {
        last = rest_state(addr, token, entity_id).await;
        if last.as_ref().is_some_and(&check) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {WAIT:?} waiting for {what}; last {entity_id}: {last:?}");
}

/// Every recorded value of the `uptime` entity of each node, in the order
/// written (`state_id`), read from the file itself.
fn uptimes_on_disk(db: &Path, prefix: &str, nodes: usize) -> Vec<Vec<u64>> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    (0..nodes)
        .map(|i| {
            conn.prepare(
                "SELECT s.value FROM states s JOIN entities e USING (metadata_id)
                 WHERE e.entity_id = ?1 AND s.value IS NOT NULL ORDER BY s.state_id",
            )
            .unwrap()
            .query_map([uptime_entity(prefix, i)], |r| r.get::<_, f64>(0))
            .unwrap()
            .map(|v| v.unwrap() as u64)
            .collect()
        })
        .collect()
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    hearth::recorder::schema::integrity_check(&conn).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_heavy_recorder_writes_loses_at_most_the_commit_interval() {
    const NODES: usize = 8;
    const PREFIX: &str = "kill";
    let mosquitto = common::mosquitto();
    let broker = BrokerAddress::local(mosquitto.port);
    let url = format!("mqtt://127.0.0.1:{}", mosquitto.port);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hearth.db");
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let args = ["--speed", "10", "--mqtt-url", url.as_str()];

    let mut first = DemoProcess::spawn(&args, dir.path());
    first.wait_running().await;
    let addr: SocketAddr = ([127, 0, 0, 1], first.http_port).into();
    // Commanded before the kill: the AC's target and the plug's relay.
    for (path, body) in [
        (
            "/api/services/climate/set_temperature",
            json!({"entity_id": CLIMATE, "temperature": 22.5}),
        ),
        ("/api/services/switch/turn_off", json!({"entity_id": PLUG})),
    ] {
        let (status, text) = http(addr, "POST", path, &token, &body.to_string()).await;
        assert_eq!(status, 200, "{path}: {text}");
    }

    let ha = TimedSub::connect(&broker, "hearth/#").await;
    let running = Arc::new(AtomicBool::new(true));
    // 8 nodes × 250 readings/s = 2 000 state rows a second.
    let flood = Flood::start(&broker, PREFIX, NODES, Duration::from_millis(4), running).await;
    let state_topic = |i: usize| format!("hearth/{}/uptime/state", node_id(PREFIX, i));
    common::wait_for("every flooding node's state on HA's topic", WAIT, || {
        (0..NODES)
            .all(|i| ha.last(&state_topic(i)).is_some())
            .then_some(())
    })
    .await;
    let restore = dir.path().join("restore_state.json");
    common::wait_for("the commanded states saved", WAIT, || {
        let text = std::fs::read_to_string(&restore).ok()?;
        (text.contains("22.5") && text.contains(PLUG)).then_some(())
    })
    .await;
    // Heavy writes for a while: several commits of thousands of rows.
    let flood_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;

    let killed_at = Instant::now();
    first.signal("KILL");
    let status = first.wait_exit(Duration::from_secs(10)).await;
    flood.stop();
    assert!(!status.success(), "killed, not stopped: {status}");
    let flooded = killed_at - flood_started;

    assert_eq!(integrity(&db), "ok", "PRAGMA integrity_check after kill -9");
    let on_disk = uptimes_on_disk(&db, PREFIX, NODES);
    let seen = ha.messages();
    let cutoff = killed_at - LOSS_BOUND;
    let mut total = 0;
    let mut lost = 0;
    let mut newest_lag = Duration::ZERO;
    for (i, values) in on_disk.iter().enumerate() {
        total += values.len();
        assert!(
            values.windows(2).all(|w| w[0] < w[1]),
            "node {i}: the rows on disk are out of order or repeated"
        );
        // What HA had seen of this node by the cutoff: the bridge had it in
        // its store (and queued for the recorder) before that.
        let topic = state_topic(i);
        let published: Vec<(u64, Instant)> = seen
            .iter()
            .filter(|(t, _, _)| *t == topic)
            .filter_map(|(_, p, at)| Some((String::from_utf8_lossy(p).trim().parse().ok()?, *at)))
            .collect();
        let must: Vec<u64> = published
            .iter()
            .filter(|(_, at)| *at <= cutoff)
            .map(|(v, _)| *v)
            .collect();
        let Some(&newest_due) = must.iter().max() else {
            panic!("node {i}: nothing published before the cutoff");
        };
        let missing: Vec<u64> = must
            .iter()
            .filter(|v| values.binary_search(v).is_err())
            .copied()
            .collect();
        assert!(
            missing.is_empty(),
            "node {i}: {} states HA saw more than {LOSS_BOUND:?} before the kill are not on disk (first {:?}); newest on disk {:?}",
            missing.len(),
            &missing[..missing.len().min(5)],
            values.last()
        );
        // Every reading from the first one recorded up to the newest due
        // one: none lost in between.
        let first_v = values[0];
        let upto: Vec<u64> = values
            .iter()
            .copied()
            .filter(|v| *v <= newest_due)
            .collect();
        assert_eq!(
            upto.len() as u64,
            newest_due - first_v + 1,
            "node {i}: gaps between {first_v} and {newest_due} on disk"
        );
        let newest = *values.last().unwrap();
        lost += flood.sent(i).saturating_sub(newest + 1);
        if let Some((_, at)) = published.iter().find(|(v, _)| *v == newest) {
            newest_lag = newest_lag.max(killed_at.saturating_duration_since(*at));
        }
    }
    let rate = total as f64 / flooded.as_secs_f64();
    println!(
        "kill -9 after {flooded:?} of flooding: {total} uptime rows on disk (≈ {rate:.0}/s), {lost} readings sent but not on disk, newest row on disk published {newest_lag:?} before the kill (bound {LOSS_BOUND:?})"
    );
    assert!(
        total >= 5_000,
        "heavy writes: only {total} rows on disk after {flooded:?}"
    );

    // The next start: clean, and the commanded states come back.
    let mut second = DemoProcess::spawn(&args, dir.path());
    second.wait_running().await;
    let addr: SocketAddr = ([127, 0, 0, 1], second.http_port).into();
    wait_rest("the restored AC target", addr, &token, CLIMATE, |s| {
        s["attributes"]["temperature"].as_f64() == Some(22.5)
    })
    .await;
    wait_rest("the restored plug", addr, &token, PLUG, |s| {
        s["state"] == "off"
    })
    .await;
    // The recorder writes again: a new reading of a flooding node lands.
    let ha2 = TimedSub::connect(&broker, "hearth/#").await;
    let again = Arc::new(AtomicBool::new(true));
    let after = Flood::start(&broker, PREFIX, 1, Duration::from_millis(50), again).await;
    common::wait_for("a new reading published", WAIT, || {
        ha2.last(&state_topic(0)).filter(|v| v == "3")
    })
    .await;
    after.stop();
    second.signal("TERM");
    assert!(second.wait_exit(Duration::from_secs(30)).await.success());
    let out = second.output();
    for bad in [
        "cannot write to",
        "malformed",
        "corrupt",
        "panicked",
        "ERROR",
    ] {
        assert!(
            !out.contains(bad),
            "the start after the kill logs `{bad}`:\n{out}"
        );
    }
    assert_eq!(integrity(&db), "ok");
    let on_disk = uptimes_on_disk(&db, PREFIX, 1);
    assert!(
        on_disk[0].ends_with(&[0, 1, 2, 3]),
        "the second run records the new readings: {:?}",
        &on_disk[0][on_disk[0].len().saturating_sub(6)..]
    );
}

/// A tmpfs mounted for the test, unmounted when dropped (also on a
/// failing assertion: drop runs while the panic unwinds).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` (with the reason printed) when not root outside CI; in CI a
    /// missing root fails the test.
    fn mount(size: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if !root {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "the disk-full test mounts a tmpfs and needs root; CI runs as root"
            );
            println!("SKIPPED: mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(ok.success(), "mount -t tmpfs on {}", dir.path().display());
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a process not yet gone): detach it now, it goes
            // when the last file closes.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Writes 256 KiB blocks into `path` until the file system refuses one;
/// the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0x5au8; 256 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    let _ = f.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_raises_the_problem_and_an_alert_and_recording_resumes() {
    const PREFIX: &str = "disk";
    /// Under `max_queue` below: every row of the outage must be kept.
    const MAX_QUEUE: u64 = 200_000;
    let Some(tmpfs) = Tmpfs::mount("24m") else {
        return;
    };
    let mosquitto = common::mosquitto();
    let broker = BrokerAddress::local(mosquitto.port);
    let url = format!("mqtt://127.0.0.1:{}", mosquitto.port);
    let conf_dir = tempfile::tempdir().unwrap();
    let config = conf_dir.path().join("bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[homeassistant]\ndiscovery = \"device\"\n\n[recorder]\ncommit_interval_ms = 200\nmax_queue = {MAX_QUEUE}\n"
        ),
    )
    .unwrap();
    let data: PathBuf = tmpfs.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("hearth.db");
    let (_, token) = tokens::create(&data, "tests").unwrap();
    let ha = TimedSub::connect(&broker, "#").await;
    let mut bridge = DemoProcess::spawn_command(
        "run",
        &["--config", config.to_str().unwrap(), "--mqtt-url", &url],
        &data,
    );
    bridge.wait_running().await;
    let addr: SocketAddr = ([127, 0, 0, 1], bridge.http_port).into();

    // The problem entity as HA discovers it, off.
    // (Device discovery: one config per device, the entities in `cmps`.)
    let problem_state = common::wait_for("the recorder problem's discovery config", WAIT, || {
        ha.messages().into_iter().find_map(|(t, p, _)| {
            if !(t.starts_with("homeassistant/") && t.ends_with("/config")) {
                return None;
            }
            let c: Value = serde_json::from_slice(&p).ok()?;
            let is_problem = |c: &Value| {
                c["unique_id"]
                    .as_str()
                    .is_some_and(|u| u.ends_with("recorder_problem"))
            };
            let c = if is_problem(&c) {
                c
            } else {
                c["cmps"]
                    .as_object()?
                    .values()
                    .find(|c| is_problem(c))?
                    .clone()
            };
            assert_eq!(c["device_class"], "problem", "{c}");
            Some(c["state_topic"].as_str()?.to_string())
        })
    })
    .await;
    common::wait_for("the problem off", WAIT, || {
        ha.last(&problem_state)?
            .eq_ignore_ascii_case("OFF")
            .then_some(())
    })
    .await;

    // Readings before the disk fills, on disk.
    let running = Arc::new(AtomicBool::new(true));
    let flood = Flood::start(
        &broker,
        PREFIX,
        1,
        Duration::from_millis(2),
        running.clone(),
    )
    .await;
    common::wait_for("readings on disk", WAIT, || {
        (uptimes_on_disk(&db, PREFIX, 1)[0].len() > 100).then_some(())
    })
    .await;

    // The disk fills; readings keep coming until the recorder reports it.
    let filler = tmpfs.path().join("filler");
    let filled = fill(&filler);
    let full_at = Instant::now();
    common::wait_for("the problem on", WAIT, || {
        ha.last(&problem_state)?
            .eq_ignore_ascii_case("ON")
            .then_some(())
    })
    .await;
    let reported_after = full_at.elapsed();
    // A while longer full: thousands of rows wait in memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    running.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sent = flood.sent(0);
    assert!(
        sent < MAX_QUEUE,
        "{sent} readings: more than the queue keeps"
    );
    // The bridge runs and answers; the state is there.
    assert!(bridge.output().contains("bridge running"));
    let problem = wait_for_rest_on(addr, &token).await;
    let error = problem["attributes"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("full"),
        "the problem names the cause: {problem}"
    );
    let uptime = rest_state(addr, &token, &uptime_entity(PREFIX, 0))
        .await
        .expect("the API answers while the disk is full");
    assert_eq!(uptime["state"], (sent - 1).to_string(), "states still flow");
    // The alert: HA's alert event fired, and the hub lists it.
    let raised = common::wait_for("the alert event on HA's topics", WAIT, || {
        alert_event(&ha, "raised")
    })
    .await;
    assert_eq!(raised["severity"], "critical", "{raised}");
    assert!(
        raised["message"]
            .as_str()
            .unwrap_or_default()
            .contains("full"),
        "the alert names the cause: {raised}"
    );
    let on_disk_full = uptimes_on_disk(&db, PREFIX, 1)[0].len();
    println!(
        "disk full ({filled} filler bytes): problem on {reported_after:?} after; {sent} readings sent, {on_disk_full} on disk while full"
    );
    assert!(
        (on_disk_full as u64) < sent,
        "the disk was full, yet every reading was written"
    );

    // Space again: every reading lands, in order; the problem and the alert clear.
    std::fs::remove_file(&filler).unwrap();
    let freed_at = Instant::now();
    common::wait_for("every reading on disk", WAIT, || {
        (uptimes_on_disk(&db, PREFIX, 1)[0].len() as u64 == sent).then_some(())
    })
    .await;
    let caught_up = freed_at.elapsed();
    let values = uptimes_on_disk(&db, PREFIX, 1).remove(0);
    assert_eq!(values, (0..sent).collect::<Vec<u64>>(), "no row lost");
    common::wait_for("the problem off again", WAIT, || {
        ha.last(&problem_state)?
            .eq_ignore_ascii_case("OFF")
            .then_some(())
    })
    .await;
    common::wait_for("the alert cleared", WAIT, || alert_event(&ha, "cleared")).await;
    println!("space back: all {sent} readings on disk {caught_up:?} later");
    flood.stop();
    bridge.signal("TERM");
    let status = bridge.wait_exit(Duration::from_secs(30)).await;
    let out = bridge.output();
    assert!(
        status.success(),
        "a clean stop after the outage: {status}\n{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert_eq!(integrity(&db), "ok");
    drop(bridge);
    drop(tmpfs);
}

/// The latest `event.bridge_alerts` event of type `kind` about the
/// recorder's problem, as HA receives it on the event entity's topic.
fn alert_event(ha: &TimedSub, kind: &str) -> Option<Value> {
    ha.messages().into_iter().rev().find_map(|(t, p, _)| {
        if !t.contains("alerts") {
            return None;
        }
        let v: Value = serde_json::from_slice(&p).ok()?;
        (v["event_type"] == kind && v["alert_id"] == "bridge/recorder_problem").then_some(v)
    })
}

/// The problem entity through the REST API, once it is on.
async fn wait_for_rest_on(addr: SocketAddr, token: &str) -> Value {
    let started = Instant::now();
    loop {
        if let Some(s) = rest_state(addr, token, PROBLEM).await
            && s["state"] == "on"
        {
            return s;
        }
        assert!(started.elapsed() < WAIT, "{PROBLEM} never on over REST");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
