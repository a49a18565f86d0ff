//! The recorder against real SQLite files: history through the running
//! bridge's WebSocket and REST APIs and across a restart, a database made
//! genuinely full (`PRAGMA max_page_count`), a writer SIGKILLed
//! mid-write, retention and hourly statistics on a manual clock, and the
//! plugins' history reaching past memory.

use crate::common;

use common::history::{Ws, add_meter, device, start_bridge};
use common::{log_mark, logs_since, wait_for};
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::clock::{Clock, iso8601};
use hearth::entity::{Component, EntitySpec, EntityStore};
use hearth::recorder::query::StatesQuery;
use hearth::recorder::{AlertRecord, Recorder, RecorderConfig};
use serde_json::{Map, Value, json};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const POWER: &str = "sensor.meter_power";
const PROBLEM: &str = "binary_sensor.bridge_recorder_problem";
/// 2026-01-01T00:00:00Z
const T0: i64 = 1_767_225_600_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 86_400_000;

fn attrs(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn recorder(b: &Bridge) -> &Arc<Recorder> {
    b.recorder.as_ref().expect("the recorder runs by default")
}

/// A plain HTTP/1.1 GET over a real socket: (status, body).
async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
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

async fn get_json(addr: SocketAddr, path: &str, token: &str) -> Value {
    let (status, body) = get(addr, path, Some(token)).await;
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// `%2B` for the `+` of an offset, as a URL needs it.
fn url_time(ms: i64) -> String {
    iso8601(ms).replace('+', "%2B")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_round_trips_over_websocket_and_rest_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    assert_eq!(recorder(&bridge).path(), dir.path().join("hearth.db"));
    let store = bridge.store.clone();
    add_meter(&store);
    let t0 = store.clock().now_ms();
    let pause = || std::thread::sleep(Duration::from_millis(5));
    store.set_state(POWER, "100", Map::new()).unwrap();
    pause();
    // Attributes only: not a significant change for a sensor.
    store
        .set_state(POWER, "100", attrs(&[("phase", json!("L1"))]))
        .unwrap();
    pause();
    store
        .set_state(POWER, "120", attrs(&[("phase", json!("L1"))]))
        .unwrap();
    pause();
    store
        .set_state(POWER, "130", attrs(&[("phase", json!("L1"))]))
        .unwrap();
    recorder(&bridge).flush().await.unwrap();
    let t_end = store.clock().now_ms() + 1000;
    let addr = bridge.http_addr;

    // WebSocket: samples (memory + recorder), states, and errors.
    let mut ws = Ws::auth(addr, &token).await;
    let r = ws
        .call(
            json!({"type": "hearth/history", "entity_id": POWER, "start_time": iso8601(t0 - 1000)}),
        )
        .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(r["result"]["source"], "recorder");
    let values: Vec<f64> = r["result"]["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [100.0, 100.0, 120.0, 130.0]);
    let r = ws
        .call(json!({"type": "hearth/history", "entity_id": POWER, "start_time": iso8601(t0 - 1000), "kind": "states"}))
        .await;
    let states = r["result"]["states"].as_array().unwrap();
    assert_eq!(states.len(), 4, "{r}");
    assert_eq!(states[3]["state"], "130");
    assert_eq!(states[3]["attributes"]["friendly_name"], "meter Power");
    assert_eq!(states[3]["attributes"]["unit_of_measurement"], "W");
    assert_eq!(states[3]["attributes"]["phase"], "L1");
    let r = ws
        .call(json!({"type": "hearth/history", "entity_id": POWER, "start_time": iso8601(t0), "kind": "hourly"}))
        .await;
    assert_eq!(r["error"]["code"], "invalid_format", "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("hourly"));
    let r = ws
        .call(json!({"type": "hearth/history", "entity_id": "sensor.nope", "start_time": iso8601(t0)}))
        .await;
    assert_eq!(r["error"]["code"], "not_found", "{r}");

    // Events fired through the API are recorded (origin REMOTE), and
    // alerts through the recorder's call.
    let r = ws
        .call(json!({"type": "fire_event", "event_type": "test_event", "event_data": {"a": 1}}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    recorder(&bridge).record_alert(AlertRecord {
        time_ms: store.clock().now_ms(),
        source: "tests".into(),
        key: "over-temperature".into(),
        severity: "critical".into(),
        status: "raised".into(),
        message: "server room at 31 °C".into(),
        entity_id: Some(POWER.into()),
        data: json!({"value": 31.0}),
    });
    recorder(&bridge).flush().await.unwrap();
    let reader = recorder(&bridge).reader().clone();
    let events = wait_for("the fired event recorded", Duration::from_secs(10), || {
        let e = reader.events(Some("test_event"), 0, i64::MAX).unwrap();
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(
        (events[0].origin.as_str(), &events[0].data),
        ("REMOTE", &json!({"a": 1}))
    );
    let alerts = reader.alerts(0, i64::MAX).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].message, "server room at 31 °C");
    assert_eq!(alerts[0].data, json!({"value": 31.0}));
    let registry_events = reader
        .events(Some("device_registry_updated"), 0, i64::MAX)
        .unwrap();
    assert!(
        registry_events
            .iter()
            .any(|e| e.data["device_id"] == "meter")
    );

    // REST, HA's shape: a list per entity, significant changes only.
    let base = format!(
        "/api/history/period/{}?filter_entity_id={POWER},{PROBLEM}&end_time={}",
        url_time(t0 - 1000),
        url_time(t_end)
    );
    let v = get_json(addr, &base, &token).await;
    let lists = v.as_array().unwrap();
    assert_eq!(lists.len(), 2, "{v}");
    let power = lists[0].as_array().unwrap();
    let shown: Vec<&str> = power.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(shown, ["100", "120", "130"], "{v}");
    let first = power[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "attributes",
            "entity_id",
            "last_changed",
            "last_updated",
            "state"
        ]
    );
    assert_eq!(first["entity_id"], POWER);
    assert!(first_time(&power[0]) >= t0);
    assert_eq!(lists[1][0]["entity_id"], PROBLEM);
    assert_eq!(lists[1][0]["state"], "off");
    // Every change, attribute-only ones included.
    let v = get_json(addr, &format!("{base}&significant_changes_only=0"), &token).await;
    assert_eq!(v[0].as_array().unwrap().len(), 4, "{v}");
    // Minimal: the middle states as {state, last_changed} only.
    let v = get_json(addr, &format!("{base}&minimal_response"), &token).await;
    let power = v[0].as_array().unwrap();
    assert_eq!(power[1].as_object().unwrap().len(), 2, "{v}");
    assert_eq!(power[1]["state"], "120");
    assert!(power[2]["attributes"].is_object());
    let v = get_json(addr, &format!("{base}&no_attributes"), &token).await;
    assert_eq!(v[0][2]["attributes"], json!({}));
    // A start between changes begins with the state in force, at the start.
    let states_now = reader
        .states(
            POWER,
            0,
            i64::MAX,
            StatesQuery {
                include_start_state: false,
                significant_only: false,
                no_attributes: false,
            },
        )
        .unwrap();
    let mid = states_now[2].last_updated - 1;
    let v = get_json(
        addr,
        &format!(
            "/api/history/period/{}?filter_entity_id={POWER}",
            url_time(mid)
        ),
        &token,
    )
    .await;
    assert_eq!(v[0][0]["state"], "100");
    assert_eq!(v[0][0]["last_changed"], iso8601(mid));
    assert_eq!(v[0][0]["last_updated"], iso8601(mid));
    let v = get_json(
        addr,
        &format!(
            "/api/history/period/{}?filter_entity_id={POWER}&skip_initial_state",
            url_time(mid)
        ),
        &token,
    )
    .await;
    assert_eq!(v[0][0]["state"], "120");
    // Errors and auth, as HA.
    let (status, body) = get(addr, &base, None).await;
    assert_eq!((status, body.as_str()), (401, "401: Unauthorized"));
    let (status, body) = get(addr, "/api/history/period", Some(&token)).await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"message": "filter_entity_id is missing"})
    );
    let (status, body) = get(
        addr,
        &format!("/api/history/period/last-week?filter_entity_id={POWER}"),
        Some(&token),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Invalid datetime") && body.contains("last-week"),
        "{body}"
    );

    // A restart on the same data directory: the history is still there,
    // though no device reports `sensor.meter_power` any more.
    bridge.stop().await;
    let bridge = start_bridge(dir.path(), |_| {}).await;
    assert!(bridge.store.get(POWER).is_none());
    let v = get_json(bridge.http_addr, &base, &token).await;
    let shown: Vec<&str> = v[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(shown, ["100", "120", "130"], "{v}");
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let r = ws
        .call(
            json!({"type": "hearth/history", "entity_id": POWER, "start_time": iso8601(t0 - 1000)}),
        )
        .await;
    assert_eq!(r["result"]["samples"].as_array().unwrap().len(), 4, "{r}");
    bridge.stop().await;
}

/// The `last_changed` time of a REST state, in ms.
fn first_time(v: &Value) -> i64 {
    hearth::recorder::period::parse_time(v["last_changed"].as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_keeps_rows_queued_and_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let rec = recorder(&bridge).clone();
    let store = bridge.store.clone();
    add_meter(&store);
    store.set_state(POWER, "0", Map::new()).unwrap();
    rec.flush().await.unwrap();

    // Cap the file at its current size: the next pages it needs are refused
    // with SQLITE_FULL, as on a full disk.
    let mark = log_mark();
    let pages = rec.limit_pages(Some(1)).await.unwrap();
    assert!(
        pages > 1,
        "the cap cannot go below the file's size ({pages} pages)"
    );
    const N: usize = 3000;
    for i in 1..=N {
        store
            .set_state(POWER, i.to_string(), attrs(&[("reading", json!(i))]))
            .unwrap();
    }
    let err = rec.flush().await.unwrap_err().to_string();
    let path = dir.path().join("hearth.db").display().to_string();
    assert!(err.contains("full") && err.contains(&path), "{err}");
    let problem = store.get(PROBLEM).unwrap();
    assert_eq!(problem.state, "on");
    let shown = problem.attributes["error"].as_str().unwrap();
    assert!(shown.contains("full"), "{shown}");
    assert_eq!(problem.attributes["path"], json!(path));
    let log = logs_since(mark);
    assert!(
        log.contains(&format!("cannot write to {path}")) && log.contains("full"),
        "{log}"
    );
    let stats = rec.stats();
    assert!(stats.queued >= N && stats.dropped_rows == 0, "{stats:?}");
    assert!(stats.failing.is_some());

    // The bridge keeps running: the API answers, states keep changing.
    let (status, _) = get(bridge.http_addr, "/api/states", Some(&token)).await;
    assert_eq!(status, 200);
    assert_eq!(store.get(POWER).unwrap().state, N.to_string());
    // Nothing is corrupted.
    let other = rusqlite::Connection::open(dir.path().join("hearth.db")).unwrap();
    assert_eq!(
        hearth::recorder::schema::integrity_check(&other).unwrap(),
        "ok"
    );

    // Space again: every queued row lands, in order.
    rec.limit_pages(None).await.unwrap();
    rec.flush().await.unwrap();
    let values: Vec<f64> = rec
        .reader()
        .samples(POWER, 0, i64::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    let expected: Vec<f64> = (0..=N).map(|i| i as f64).collect();
    assert_eq!(values, expected);
    assert_eq!(store.get(PROBLEM).unwrap().state, "off");
    assert_eq!(rec.stats().failing, None);
    assert_eq!(
        hearth::recorder::schema::integrity_check(&other).unwrap(),
        "ok"
    );
    bridge.stop().await;
}

/// A store with the bridge device (so the recorder registers its problem
/// entity) and the meter, and a recorder on `dir/hearth.db`.
fn standalone(
    dir: &Path,
    clock: Clock,
    config: RecorderConfig,
) -> (Arc<EntityStore>, Arc<Recorder>) {
    common::init_logs();
    let store = EntityStore::new(clock);
    store
        .upsert_device("bridge", device(hearth::discovery::payload::BRIDGE_DEVICE))
        .unwrap();
    add_meter(&store);
    let rec = Recorder::start(&config, dir.join("hearth.db"), store.clone()).unwrap();
    (store, rec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_queue_new_rows_are_dropped_counted_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config = RecorderConfig {
        max_queue: 100,
        ..RecorderConfig::default()
    };
    let (store, rec) = standalone(dir.path(), Clock::real(), config);
    rec.flush().await.unwrap();
    rec.limit_pages(Some(1)).await.unwrap();
    let mark = log_mark();
    for i in 0..300 {
        store.set_state(POWER, i.to_string(), Map::new()).unwrap();
    }
    assert!(rec.flush().await.is_err());
    let stats = rec.stats();
    assert!(stats.queued <= 100, "{stats:?}");
    assert!(stats.dropped_rows >= 200, "{stats:?}");
    assert!(logs_since(mark).contains("queue full (100 rows)"));
    rec.limit_pages(None).await.unwrap();
    rec.flush().await.unwrap();
    // What was kept is the oldest part, whole and in order.
    let values: Vec<f64> = rec
        .reader()
        .samples(POWER, 0, i64::MAX, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert!(!values.is_empty() && values.len() < 300);
    assert!(
        values.iter().enumerate().all(|(i, v)| *v == i as f64),
        "{values:?}"
    );
    // The loss is on record, with its count.
    rec.flush().await.unwrap();
    let dropped = rec
        .reader()
        .events(Some("recorder_rows_dropped"), 0, i64::MAX)
        .unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].data["count"], json!(rec.stats().dropped_rows));
    assert_eq!(
        store.get(PROBLEM).unwrap().attributes["dropped_rows"],
        json!(rec.stats().dropped_rows)
    );
    rec.close().await;
}

/// The child of [`a_writer_killed_mid_write_loses_no_committed_row`]:
/// writes `sensor.meter_power` = 0, 1, 2… as fast as it can and prints
/// `committed_states N` whenever the recorder reports more committed rows
/// (the first committed row is the entity's metadata, then states in order,
/// so N states mean values 0..N are on disk). Does nothing unless run as
/// the child.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os("HEARTH_RECORDER_CRASH_DIR") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = EntityStore::new(Clock::real());
        add_meter(&store);
        let config = RecorderConfig {
            commit_interval_ms: 10,
            max_queue: 10_000_000,
            ..RecorderConfig::default()
        };
        let rec =
            Recorder::start(&config, Path::new(&dir).join("hearth.db"), store.clone()).unwrap();
        let mut shown = 0;
        for i in 0u64.. {
            store.set_state(POWER, i.to_string(), Map::new()).unwrap();
            if i % 200 == 0 {
                // Let the feed task run; keep a few batches ahead of the
                // writer (always busy) without piling up memory.
                tokio::task::yield_now().await;
                while rec.stats().queued > 50_000 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let committed = rec.stats().committed_rows.saturating_sub(1);
                if committed > shown {
                    shown = committed;
                    println!("committed_states {committed}");
                }
            }
        }
    });
}

#[test]
fn a_writer_killed_mid_write_loses_no_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "recorder::crash_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("HEARTH_RECORDER_CRASH_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut reported = 0u64;
    let mut reports = 0;
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if let Some(n) = line.strip_prefix("committed_states ") {
            reported = n.trim().parse().unwrap();
            reports += 1;
        }
        seen.push(line);
        // Several commits in, the writer busy with the next one: kill.
        if reports >= 10 && reported >= 5_000 {
            break;
        }
    }
    assert!(reports >= 10, "the child stopped early: {seen:?}");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("hearth.db")).unwrap();
    assert_eq!(
        hearth::recorder::schema::integrity_check(&conn).unwrap(),
        "ok"
    );
    let values: Vec<f64> = conn
        .prepare("SELECT value FROM states ORDER BY state_id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        values.len() as u64 >= reported,
        "{} states on disk, the child reported {reported} committed",
        values.len()
    );
    assert!(
        values.iter().enumerate().all(|(i, v)| *v == i as f64),
        "the rows on disk are not 0, 1, 2…"
    );
    println!(
        "killed after {reported} reported committed; {} on disk",
        values.len()
    );
    drop(conn);
    // The file opens for writing again.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = EntityStore::new(Clock::real());
        add_meter(&store);
        let rec = Recorder::start(
            &RecorderConfig::default(),
            dir.path().join("hearth.db"),
            store.clone(),
        )
        .unwrap();
        store.set_state(POWER, "-1", Map::new()).unwrap();
        rec.flush().await.unwrap();
        rec.close().await;
    });
}

fn stats_of(rec: &Recorder, id: &str, start: i64) -> hearth::recorder::query::StatisticsRow {
    rec.reader()
        .statistics(id, start, start + 1)
        .unwrap()
        .pop()
        .unwrap_or_else(|| panic!("no statistics of {id} at {}", iso8601(start)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hourly_statistics_and_retention_on_a_manual_clock() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, hand) = Clock::manual(T0);
    let (store, rec) = standalone(dir.path(), clock, RecorderConfig::default());
    store
        .upsert_entity(
            EntitySpec::new("meter", "energy", Component::Sensor)
                .class("energy")
                .measured("kWh", "total_increasing"),
        )
        .unwrap();
    const ENERGY: &str = "sensor.meter_energy";
    let at = |ms: i64, id: &str, state: &str| {
        hand.set(ms);
        store.set_state(id, state, Map::new()).unwrap();
    };
    // Hour 0: 20 W for 15 min, 22 W for 30, unavailable for 5, 24 W for 10.
    at(T0, POWER, "20");
    at(T0, ENERGY, "100");
    rec.record_event("test_old_event", json!({}));
    at(T0 + 15 * MIN, POWER, "22");
    at(T0 + 30 * MIN, ENERGY, "101.5");
    at(T0 + 40 * MIN, ENERGY, "0.5"); // the meter was reset
    at(T0 + 45 * MIN, POWER, "unavailable");
    at(T0 + 50 * MIN, POWER, "24");
    at(T0 + 59 * MIN, ENERGY, "1");
    // Committed before the clock passes the hour (the writer may compile
    // it on its own as soon as it has).
    rec.flush().await.unwrap();
    // Hour 1: power unchanged; the meter moves on.
    at(T0 + 90 * MIN, ENERGY, "2");
    rec.flush().await.unwrap();
    hand.set(T0 + 2 * HOUR + 5 * MIN);
    rec.maintain().await.unwrap();

    let h0 = stats_of(&rec, POWER, T0);
    let mean = (20.0 * 15.0 + 22.0 * 30.0 + 24.0 * 10.0) / 55.0;
    assert!((h0.mean.unwrap() - mean).abs() < 1e-9, "{h0:?}");
    assert_eq!((h0.min, h0.max), (Some(20.0), Some(24.0)));
    let h1 = stats_of(&rec, POWER, T0 + HOUR);
    assert_eq!(
        (h1.mean, h1.min, h1.max),
        (Some(24.0), Some(24.0), Some(24.0))
    );
    let e0 = stats_of(&rec, ENERGY, T0);
    assert_eq!((e0.state, e0.sum, e0.mean), (Some(1.0), Some(2.5), None));
    let e1 = stats_of(&rec, ENERGY, T0 + HOUR);
    assert_eq!((e1.state, e1.sum), (Some(2.0), Some(3.5)));
    // Hour 2 is not over: not compiled.
    assert!(
        rec.reader()
            .statistics(POWER, T0 + 2 * HOUR, i64::MAX)
            .unwrap()
            .is_empty()
    );

    // Eleven days later: states and events older than ten days go, except
    // each entity's newest state; statistics stay.
    at(T0 + 11 * DAY, POWER, "25");
    rec.flush().await.unwrap();
    rec.maintain().await.unwrap();
    let all = StatesQuery {
        include_start_state: false,
        significant_only: false,
        no_attributes: false,
    };
    let kept = |id: &str| -> Vec<String> {
        rec.reader()
            .states(id, 0, i64::MAX, all)
            .unwrap()
            .into_iter()
            .map(|s| s.state)
            .collect()
    };
    assert_eq!(kept(POWER), ["25"]);
    assert_eq!(kept(ENERGY), ["2"]);
    assert!(
        rec.reader()
            .events(Some("test_old_event"), 0, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(stats_of(&rec, POWER, T0), h0);
    // History at a start long after the meter's last change still knows it.
    let from_start = rec
        .reader()
        .states(
            ENERGY,
            T0 + 10 * DAY,
            T0 + 11 * DAY,
            StatesQuery {
                include_start_state: true,
                ..all
            },
        )
        .unwrap();
    assert_eq!(from_start[0].state, "2");

    // Past statistics_keep_days (365), the hourly statistics go too.
    hand.set(T0 + 400 * DAY);
    rec.maintain().await.unwrap();
    assert!(
        rec.reader()
            .statistics(POWER, T0, T0 + 2 * HOUR)
            .unwrap()
            .is_empty()
    );
    let conn = rusqlite::Connection::open(dir.path().join("hearth.db")).unwrap();
    assert_eq!(
        hearth::recorder::schema::integrity_check(&conn).unwrap(),
        "ok"
    );
    rec.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_history_reaches_past_memory_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (clock, hand) = Clock::manual(T0);
    let (store, rec) = standalone(dir.path(), clock, RecorderConfig::default());
    // More samples than the store keeps in memory (4096).
    const N: i64 = 5000;
    for i in 0..N {
        hand.set(T0 + i * 1000);
        store.set_state(POWER, i.to_string(), Map::new()).unwrap();
    }
    rec.flush().await.unwrap();
    // `store.history` is what the plugins' `history` import calls.
    let got = store.history(POWER, T0, T0 + N * 1000);
    let expected: Vec<(i64, f64)> = (0..N).map(|i| (T0 + i * 1000, i as f64)).collect();
    assert_eq!(got, expected);
    let part = store.history(POWER, T0 + 100_000, T0 + 199_000);
    assert_eq!(part, expected[100..200]);
    rec.close().await;

    // A new store (a restarted bridge) on the same file: all from SQLite.
    let (store, rec) = standalone(dir.path(), clock, RecorderConfig::default());
    assert_eq!(store.history(POWER, T0, T0 + N * 1000), expected);
    rec.close().await;
}

/// A plugin with a 50 ms call budget reads 50 000 samples of history from
/// SQLite five times in one call, twice its whole budget or more: the reads
/// (and the copies into the plugin) are the host's time and are credited
/// back, so the call is not a fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_history_read_is_the_hosts_time_not_the_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(dir.path(), |_| {}).await;
    let store = bridge.store.clone();
    add_meter(&store);
    store
        .upsert_entity(EntitySpec::new("meter", "trigger", Component::Sensor).named("Trigger"))
        .unwrap();
    for i in 0..60_000 {
        store.set_state(POWER, i.to_string(), Map::new()).unwrap();
        if i % 5000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    bridge.recorder.as_ref().unwrap().flush().await.unwrap();
    // The premise: the read alone takes longer than the plugin's budget.
    let now = store.clock().now_ms();
    let started = std::time::Instant::now();
    let n = store.history(POWER, now - 3_600_000, now).len();
    let read = started.elapsed();
    eprintln!("history read of {n} samples: {read:?}");
    assert!(n >= 50_000, "{n} samples");
    assert!(
        read * 5 > Duration::from_millis(100),
        "the read took {read:?}: five are too fast to show anything against a 50 ms budget"
    );

    let cfg = hearth::plugins::PluginConfig {
        name: "reader".into(),
        wasm: "builtin:fault-injector".into(),
        config: json!({
            "entity": "sensor.meter_trigger",
            "fault": "none",
            "history": {"entity": POWER, "seconds": 3600, "times": 5},
        }),
        limits: hearth::plugins::Limits {
            call_timeout_ms: 50,
            ..Default::default()
        },
        drives: None,
    };
    let plugins = bridge.plugins.clone();
    tokio::task::spawn_blocking(move || plugins.load(cfg))
        .await
        .unwrap()
        .unwrap();
    for i in 0..3 {
        store
            .set_state("sensor.meter_trigger", i.to_string(), Map::new())
            .unwrap();
        let want = i + 1;
        let counts: Vec<usize> = wait_for(
            "the plugin's history reads",
            Duration::from_secs(30),
            || {
                let logs = bridge.plugins.logs("reader", 100).ok()?;
                let counts: Vec<usize> = logs
                    .iter()
                    .filter_map(|l| l.message.strip_prefix(&format!("history {POWER}: ")))
                    .filter_map(|rest| rest.strip_suffix(" samples")?.parse().ok())
                    .collect();
                (counts.len() >= 5 * want).then_some(counts)
            },
        )
        .await;
        assert!(counts.iter().all(|c| *c >= 50_000), "{counts:?}");
    }
    let status = bridge.plugins.status("reader").unwrap();
    assert_eq!(status.faults, 0, "no fault: {:?}", status.last_fault);
    bridge.stop().await;
}
