//! A restart keeps what was commanded and what plugins learned
//! (`entity::restore`, `plugins::saved`), and the demo's clock continues
//! its history instead of overlapping it.
//!
//! The devices restart too (fresh twins: the AC off at 24 °C, the plug's
//! relay on, the valve closed), so a state that "came back" had to travel
//! the router and the driver to the device.

use crate::common::history::add_meter;
use crate::common::{self, BrokerKind, wait_for};
use crate::signals::DemoProcess;
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::{Clock, iso8601};
use hearth::config::Config;
use hearth::entity::{CallSource, ServiceCall, ServiceError};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::house::{HouseHandle, HouseOptions, HouseTwin};
use hearth::twin::{ServerRoomTwin, TwinHandle, TwinOptions};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Simulated seconds per wall second: the AC's 180 s minimum off time is
/// 3 s of wall time.
const SPEED: f64 = 60.0;
/// Generous: on CI's 2 cores the other test thread may be a batch
/// simulation or `hearth plan` compiling a plugin in a debug host (one CI
/// run timed out at 60 s waiting for the restored states; alone it takes
/// a few seconds). A restore that never happens still fails.
const WAIT: Duration = Duration::from_secs(150);

const CLIMATE: &str = "climate.server_room_ac";
const AC_POWER: &str = "switch.server_room_ac_power";
const PLUG: &str = "switch.server_room_ac_plug";
const VALVE: &str = "valve.house_heating";

/// The server room and the house twins with a bridge on them; no plugin,
/// so every command is the test's.
struct Site {
    bridge: Bridge,
    room: TwinHandle,
    house: HouseHandle,
    twins_stop: ShutdownTrigger,
}

async fn start_site(broker: &common::TestBroker, clock: Clock, data_dir: &Path) -> Site {
    start_site_with(broker, clock, data_dir, |c| c.plugins.clear()).await
}

/// The scenario's config, thermostat plugin included, changed by `tweak`.
async fn start_site_with(
    broker: &common::TestBroker,
    clock: Clock,
    data_dir: &Path,
    tweak: impl FnOnce(&mut Config),
) -> Site {
    common::init_logs();
    let (twins_stop, twins_shutdown) = shutdown::channel();
    let room = ServerRoomTwin::start(
        clock,
        &broker.addr.host,
        broker.addr.port,
        TwinOptions::default(),
        twins_shutdown.clone(),
    )
    .await
    .expect("server room twin starts");
    let house = HouseTwin::start(
        clock,
        &broker.addr.host,
        broker.addr.port,
        HouseOptions {
            valve_travel_s: 10,
            ..Default::default()
        },
        twins_shutdown,
    )
    .expect("house twin starts");
    let mut config =
        hearth::demo::scenario_config(&broker.addr, &room.shelly_url(), Some(0)).unwrap();
    tweak(&mut config);
    config.data_dir = Some(data_dir.to_path_buf());
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let ready = common::try_wait(WAIT, || {
        let s = &bridge.store;
        [CLIMATE, AC_POWER, PLUG, VALVE]
            .iter()
            .all(|id| s.get(id).is_some_and(|st| st.state != "unavailable"))
            .then_some(())
    })
    .await;
    if ready.is_none() {
        let states: Vec<_> = [CLIMATE, AC_POWER, PLUG, VALVE]
            .iter()
            .map(|id| (id, bridge.store.get(id).map(|s| s.state)))
            .collect();
        panic!("the devices' entities did not come: {states:?}");
    }
    Site {
        bridge,
        room,
        house,
        twins_stop,
    }
}

impl Site {
    async fn stop(self) {
        self.bridge.stop().await;
        self.twins_stop.trigger();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    async fn call(&self, service: &str, entity_id: &str, data: Value) -> Result<(), ServiceError> {
        let (domain, _) = entity_id.split_once('.').unwrap();
        let Value::Object(data) = data else {
            unreachable!()
        };
        let call = ServiceCall::new(
            domain,
            service,
            entity_id,
            data,
            CallSource::Api("test".into()),
        );
        self.bridge.router.call(call).await
    }

    fn attr(&self, entity_id: &str, key: &str) -> Option<Value> {
        self.bridge
            .store
            .get(entity_id)?
            .attributes
            .get(key)
            .cloned()
    }

    fn state(&self, entity_id: &str) -> Option<String> {
        Some(self.bridge.store.get(entity_id)?.state)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commanded_states_return_after_a_clean_restart_and_reach_the_devices() {
    let _apart = common::CARGO_BUILD.lock().await;
    let broker = common::broker(BrokerKind::Embedded);
    let clock = Clock::simulated(SPEED);
    let dir = tempfile::tempdir().unwrap();

    let site = start_site(&broker, clock, dir.path()).await;
    site.call("set_hvac_mode", CLIMATE, json!({"hvac_mode": "cool"}))
        .await
        .unwrap();
    site.call("set_temperature", CLIMATE, json!({"temperature": 22.5}))
        .await
        .unwrap();
    site.call("turn_off", PLUG, json!({})).await.unwrap();
    site.call("set_valve_position", VALVE, json!({"position": 40}))
        .await
        .unwrap();
    // The AC's power: its minimum off time (180 s) counts from the start.
    let started = std::time::Instant::now();
    while let Err(e) = site.call("turn_on", AC_POWER, json!({})).await {
        assert!(started.elapsed() < WAIT, "AC power never allowed on: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_for("the first devices as commanded", WAIT, || {
        let (room, house) = (site.room.snapshot(), site.house.snapshot());
        (room.ac.power
            && room.ac.set_temp_c == 22.5
            && !room.relay_on
            && house.valve_percent == 40.0)
            .then_some(())
    })
    .await;
    site.stop().await;
    let file = std::fs::read_to_string(dir.path().join("restore_state.json"))
        .expect("the clean stop wrote restore_state.json");

    // Fresh devices, same data directory.
    let site = start_site(&broker, clock, dir.path()).await;
    wait_for("states restored in the bridge", WAIT, || {
        (site.state(CLIMATE).as_deref() == Some("cool")
            && site.attr(CLIMATE, "temperature") == Some(json!(22.5))
            && site.state(PLUG).as_deref() == Some("off")
            && site
                .attr(VALVE, "current_position")
                .and_then(|p| p.as_f64())
                == Some(40.0))
        .then_some(())
    })
    .await;
    wait_for("states restored on the fresh devices", WAIT, || {
        let (room, house) = (site.room.snapshot(), site.house.snapshot());
        // The AC's turn_on waits out the minimum off time, then carries
        // the restored 22.5 °C over IR.
        (room.ac.power
            && room.ac.set_temp_c == 22.5
            && !room.relay_on
            && house.valve_percent == 40.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        site.state(AC_POWER).as_deref(),
        Some("on"),
        "file was {file}"
    );
    site.stop().await;
}

/// A plain HTTP/1.1 request over a real socket: (status, body).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut resp))
        .await
        .expect("response within 15 s")
        .unwrap();
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

async fn climate_target(addr: SocketAddr, token: &str) -> Option<f64> {
    let (status, body) = http(addr, "GET", &format!("/api/states/{CLIMATE}"), token, "").await;
    if status != 200 {
        return None;
    }
    serde_json::from_str::<Value>(&body).ok()?["attributes"]["temperature"].as_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_keeps_the_commanded_target_and_the_plugins_learned_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let args = ["--speed", "60", "--for", "600"];

    let mut first = DemoProcess::spawn(&args, dir.path());
    first.wait_running().await;
    let addr: SocketAddr = ([127, 0, 0, 1], first.http_port).into();
    let (status, body) = http(
        addr,
        "POST",
        "/api/services/climate/set_temperature",
        &token,
        &json!({"entity_id": CLIMATE, "temperature": 22.5}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(climate_target(addr, &token).await, Some(22.5));
    // One debounce for the commanded states, one periodic save for the
    // plugins (5 s), and a margin for a loaded machine.
    let plugin_state = dir.path().join("plugin-state").join("thermostat.json");
    let restore_state = dir.path().join("restore_state.json");
    wait_for("both files written while running", WAIT, || {
        let text = std::fs::read_to_string(&restore_state).ok()?;
        (text.contains("22.5") && plugin_state.exists()).then_some(())
    })
    .await;
    let saved: Value = serde_json::from_slice(&std::fs::read(&plugin_state).unwrap()).unwrap();
    assert_eq!(saved["component"], "thermostat", "{saved}");
    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10)).await;
    assert!(
        !first.output().contains("bridge stopped"),
        "a kill, not a stop"
    );

    let mut second = DemoProcess::spawn(&args, dir.path());
    second.wait_running().await;
    let addr: SocketAddr = ([127, 0, 0, 1], second.http_port).into();
    let mut target = None;
    for _ in 0..50 {
        target = climate_target(addr, &token).await;
        if target == Some(22.5) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = second.output();
    assert_eq!(target, Some(22.5), "the AC's target after the kill:\n{out}");
    assert!(
        out.contains("plugin `thermostat`: restored its state from the last run"),
        "the thermostat restores what it saved before the kill:\n{out}"
    );
    second.signal("TERM");
    assert!(second.wait_exit(Duration::from_secs(30)).await.success());
}

async fn start_meter_bridge(dir: &Path, clock: Clock) -> Bridge {
    common::init_logs();
    let mut config = Config::default();
    config.mqtt.port = EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.to_path_buf());
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    add_meter(&bridge.store);
    bridge
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_after_the_clock_went_back_shows_the_rows_and_the_demo_clock_continues() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    // A first run two hours ahead of wall time (a demo at --speed).
    let ahead = Clock::simulated_from(Clock::real().now_ms() + 2 * 3_600_000, 1.0);
    let bridge = start_meter_bridge(dir.path(), ahead).await;
    let first_ms = ahead.now_ms();
    for w in ["100", "200"] {
        bridge
            .store
            .set_state("sensor.meter_power", w, Map::new())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_ms = ahead.now_ms();
    bridge.stop().await;

    // A second run at wall time: its "now" is before those rows.
    let bridge = start_meter_bridge(dir.path(), Clock::real()).await;
    let path = format!(
        "/api/history/period/{}?filter_entity_id=sensor.meter_power&end_time={}",
        iso8601(first_ms - 60_000).replace('+', "%2B"),
        iso8601(last_ms + 60_000).replace('+', "%2B"),
    );
    let (status, body) = http(bridge.http_addr, "GET", &path, &token, "").await;
    assert_eq!(status, 200, "{body}");
    let states: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()[0]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|s| Some(s["state"].as_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        states,
        ["100", "200"],
        "recorded rows are never hidden: {body}"
    );
    bridge.stop().await;

    // The demo's clock starts after the last recorded row.
    let opts = hearth::demo::DemoOptions {
        secure: None,
        speed: 60.0,
        run_for: None,
        mqtt_url: None,
        mqtt_port: 0,
        http_port: None,
        data_dir: dir.path().to_path_buf(),
    };
    let clock = hearth::demo::resumed_clock(
        &opts,
        hearth::demo::SERVER_ROOM_TOML,
        "examples/server-room.toml",
    )
    .unwrap();
    assert!(
        clock.now_ms() > last_ms,
        "the demo continues at {} after the last row at {}",
        iso8601(clock.now_ms()),
        iso8601(last_ms)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_turn_on_waits_for_the_envelope_but_yields_to_the_plugin_that_drives_it() {
    let broker = common::broker(BrokerKind::Embedded);
    // Slower than the other tests: the plugin must load (compile, on a
    // busy machine seconds) well within the AC's 180 s minimum off time.
    let clock = Clock::simulated(10.0);
    let dir = tempfile::tempdir().unwrap();

    // Run 1, no minimum off time, the thermostat on the plug instead of
    // the AC's power (so its code is compiled and cached for run 2, and the
    // AC's power is the test's): the AC on at 30 °C.
    let site = start_site_with(&broker, clock, dir.path(), |c| {
        c.plugins[0].config["switch"] = json!(PLUG);
        c.ir_ac[0].min_off_s = 0.0;
    })
    .await;
    site.call("set_temperature", CLIMATE, json!({"temperature": 30}))
        .await
        .unwrap();
    site.call("turn_on", AC_POWER, json!({})).await.unwrap();
    site.stop().await;

    // Run 2 with the thermostat and the 180 s minimum off time: the room
    // (26 °C) is below 30 °C, so the plugin that drives the AC's power
    // wants it off. The restored turn_on is refused at first and must not
    // be retried over the plugin's decision.
    let mark = common::log_mark();
    let site = start_site_with(&broker, clock, dir.path(), |_| {}).await;
    wait_for("the restored target", WAIT, || {
        (site.attr(CLIMATE, "temperature") == Some(json!(30.0))).then_some(())
    })
    .await;
    // Past the minimum off time and one retry period.
    tokio::time::sleep(clock.wall(220_000.0)).await;
    let logs = common::logs_since(mark);
    assert!(
        logs.contains("restore: switch.server_room_ac_power: turn_on not retried"),
        "{logs}"
    );
    let powered_on = site.room.ir_commands().iter().any(|(_, c)| {
        c["Power"]
            .as_str()
            .is_some_and(|p| p.eq_ignore_ascii_case("on"))
    });
    assert!(!powered_on, "the AC stays off as its thermostat decides");
    assert_eq!(site.state(AC_POWER).as_deref(), Some("off"));
    site.stop().await;
}
