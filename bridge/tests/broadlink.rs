//! The Broadlink RM4 driver against its twin over UDP on 127.0.0.1:
//! discovery, a refused `auth` named, climate mode/target/fan commands
//! reaching the twin's AC as the SmartIR file's codes, corrupted replies
//! rejected with a clear error, a bad code file refused with its message.

use crate::common;

use common::wait_for;
use hearth::app::Bridge;
use hearth::clock::Clock;
use hearth::drivers::broadlink::protocol::{BroadlinkError, Session};
use hearth::drivers::broadlink::smartir::{IrMeaning, SmartIrCodes};
use hearth::drivers::broadlink::{BroadlinkConfig, discover};
use hearth::entity::ServiceError;
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::broadlink_sim::{BroadlinkSim, BroadlinkSimConfig, ReplyFault};
use hearth::twin::{AcMode, Plant, RoomParams};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

fn codes_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/ir-codes/smartir-climate-1381.json")
}

fn codes() -> SmartIrCodes {
    SmartIrCodes::load(&codes_path()).unwrap()
}

/// The twin gateway in front of a fresh server-room plant.
fn twin() -> (BroadlinkSim, ShutdownTrigger) {
    let (power, off) = shutdown::channel();
    let clock = Clock::real();
    let plant = Plant::new(RoomParams::server_room(), clock.now_ms()).shared();
    let sim =
        BroadlinkSim::spawn(clock, BroadlinkSimConfig::rm4_mini(codes()), plant, off).unwrap();
    (sim, power)
}

/// `[[broadlink]] id = "ac"` on the twin, quick timeouts, no compressor
/// delay (the keys not named take their defaults).
fn cfg(sim: &BroadlinkSim) -> BroadlinkConfig {
    let mut c: BroadlinkConfig = toml::from_str(&format!(
        r#"id = "ac"
name = "Office AC"
host = "{}"
codes = "{}"
min_off_s = 0
timeout_s = 1
reconnect_s = 0.3"#,
        sim.addr(),
        codes_path().display()
    ))
    .unwrap();
    c.codes = codes_path();
    c
}

use common::call;

fn last_ir(sim: &BroadlinkSim) -> Option<IrMeaning> {
    sim.ir_log().last().and_then(|e| e.meaning.clone())
}

fn set(mode: &str, fan: &str, temp: f64) -> IrMeaning {
    IrMeaning::Set {
        mode: mode.into(),
        fan: fan.into(),
        temp,
    }
}

#[tokio::test]
async fn discovery_on_loopback_finds_the_twin() {
    let (sim, _power) = twin();
    let found = discover(sim.addr(), Duration::from_millis(600))
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let f = &found[0];
    assert_eq!(f.addr, sim.addr());
    assert_eq!(f.mac, sim.mac());
    assert_eq!(f.devtype, 0x520c);
    assert_eq!(f.name, "RM4 mini");

    // A session asks the device itself; a configured MAC must match.
    let s = Session::open(sim.addr(), None, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!((s.mac(), s.devtype()), (sim.mac(), 0x520c));
    let wrong = Session::open(sim.addr(), Some([1, 2, 3, 4, 5, 6]), Duration::from_secs(1)).await;
    assert_eq!(
        wrong.err().map(|e| e.to_string()),
        Some(format!(
            "malformed discovery reply: the device at {} has MAC 34:ea:34:b2:11:07, the config says 01:02:03:04:05:06",
            sim.addr()
        ))
    );
}

#[tokio::test]
async fn a_refused_auth_is_named() {
    let (sim, _power) = twin();
    sim.set_refuse_auth(true);
    let mut s = Session::open(sim.addr(), Some(sim.mac()), Duration::from_secs(1))
        .await
        .unwrap();
    let e = s.auth().await.unwrap_err();
    assert_eq!(
        e,
        BroadlinkError::AuthRefused {
            code: -7,
            message: "Control key is expired"
        }
    );
    assert_eq!(
        e.to_string(),
        "authentication refused (error -7: Control key is expired)"
    );

    // Through the bridge: unavailable, the problem entity names it; once
    // the gateway accepts again, the driver re-authenticates by itself.
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&sim);
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.broadlink.push(c)).await;
    let store = bridge.store.clone();
    let problem = wait_for("the link problem raised", WAIT, || {
        store
            .get("binary_sensor.ac_link_problem")
            .filter(|s| s.state == "on")
    })
    .await;
    assert_eq!(
        problem.attributes["error"],
        "broadlink ac: authentication refused (error -7: Control key is expired)"
    );
    // A command tries again and fails with the same error; nothing sent.
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "cool"}),
    )
    .await
    .unwrap();
    let refused = call(&bridge, "switch", "turn_on", "switch.ac_power", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "driver of `climate.ac` failed: broadlink ac: authentication refused (error -7: Control key is expired)"
    );
    assert!(sim.ir_log().is_empty());
    assert_eq!(store.get("switch.ac_power").unwrap().state, "off");
    sim.set_refuse_auth(false);
    wait_for("the link problem cleared", WAIT, || {
        store
            .get("binary_sensor.ac_link_problem")
            .filter(|s| s.state == "off")
    })
    .await;
    assert!(sim.auths() >= 1);
    call(&bridge, "switch", "turn_on", "switch.ac_power", json!({}))
        .await
        .unwrap();
    assert_eq!(last_ir(&sim), Some(set("cool", "low", 24.0)));
}

#[tokio::test]
async fn climate_commands_reach_the_twin_ac_as_the_files_codes() {
    let (sim, _power) = twin();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&sim);
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.broadlink.push(c)).await;
    let store = bridge.store.clone();
    wait_for("the gateway authenticated", WAIT, || {
        store
            .get("binary_sensor.ac_link_problem")
            .filter(|s| s.state == "off")
    })
    .await;
    let climate = store.get("climate.ac").unwrap();
    assert_eq!(
        climate.attributes["hvac_modes"],
        json!(["off", "heat", "cool"])
    );
    assert_eq!(
        climate.attributes["fan_modes"],
        json!(["low", "mid", "high"])
    );
    assert_eq!(
        (
            &climate.attributes["min_temp"],
            &climate.attributes["max_temp"]
        ),
        (&json!(18.0), &json!(28.0))
    );

    // Setting mode and target while the AC is off sends nothing.
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "cool"}),
    )
    .await
    .unwrap();
    call(
        &bridge,
        "climate",
        "set_temperature",
        "climate.ac",
        json!({"temperature": 21}),
    )
    .await
    .unwrap();
    assert!(sim.ir_log().is_empty(), "{:?}", sim.ir_log());

    call(&bridge, "switch", "turn_on", "switch.ac_power", json!({}))
        .await
        .unwrap();
    assert_eq!(last_ir(&sim), Some(set("cool", "low", 21.0)));
    let s = sim.ac_settings();
    assert!(s.power);
    // Room at 26 °C, set to 21: the compressor runs, as a plug would meter.
    assert!(electrical_w(&sim) > 300.0, "{} W", electrical_w(&sim));
    assert_eq!(
        (s.mode, s.set_temp_c, s.fan_speed.as_str()),
        (AcMode::Cool, 21.0, "low")
    );

    call(
        &bridge,
        "select",
        "select_option",
        "select.ac_fan",
        json!({"option": "high"}),
    )
    .await
    .unwrap();
    assert_eq!(last_ir(&sim), Some(set("cool", "high", 21.0)));
    call(
        &bridge,
        "climate",
        "set_temperature",
        "climate.ac",
        json!({"temperature": 26}),
    )
    .await
    .unwrap();
    assert_eq!(last_ir(&sim), Some(set("cool", "high", 26.0)));
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "heat"}),
    )
    .await
    .unwrap();
    assert_eq!(last_ir(&sim), Some(set("heat", "high", 26.0)));
    assert_eq!(sim.ac_settings().mode, AcMode::Heat);
    call(
        &bridge,
        "select",
        "select_option",
        "select.ac_fan",
        json!({"option": "mid"}),
    )
    .await
    .unwrap();
    assert_eq!(last_ir(&sim), Some(set("heat", "mid", 26.0)));
    let climate = store.get("climate.ac").unwrap();
    assert_eq!(climate.state, "heat");
    assert_eq!(climate.attributes["fan_mode"], "mid");
    assert_eq!(climate.attributes["temperature"], json!(26.0));

    // Out of the file's range: refused by the host envelope, nothing sent.
    let n = sim.ir_log().len();
    let e = call(
        &bridge,
        "climate",
        "set_temperature",
        "climate.ac",
        json!({"temperature": 31}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("31"), "{e}");
    let e = call(
        &bridge,
        "select",
        "select_option",
        "select.ac_fan",
        json!({"option": "turbo"}),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("turbo"), "{e}");
    assert_eq!(sim.ir_log().len(), n);

    // Off: the file's off code, the remote's power off.
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "off"}),
    )
    .await
    .unwrap();
    assert_eq!(last_ir(&sim), Some(IrMeaning::Off));
    assert!(!sim.ac_settings().power);
    assert_eq!(store.get("switch.ac_power").unwrap().state, "off");
    assert!(sim.ir_log().iter().all(|e| !e.ignored));
    assert!(electrical_w(&sim) < 15.0, "{} W", electrical_w(&sim));

    // The AC ignores the next code (H5's closed loop re-sends on this);
    // the gateway still acknowledges it, IR being one-way.
    sim.ignore_next(1);
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "cool"}),
    )
    .await
    .unwrap();
    call(&bridge, "switch", "turn_on", "switch.ac_power", json!({}))
        .await
        .unwrap();
    let last = sim.ir_log().last().cloned().unwrap();
    assert!(last.ignored);
    assert_eq!(last.meaning, Some(set("cool", "mid", 26.0)));
    assert!(!sim.ac_settings().power);
}

fn electrical_w(sim: &BroadlinkSim) -> f64 {
    let plant = sim.plant();
    let p = plant.lock().unwrap();
    p.ac.electrical_w()
}

/// A corrupted reply (bad checksum, truncated, garbage) is an error that
/// says what was wrong; nothing panics, and the next exchange works.
#[tokio::test]
async fn corrupted_replies_are_rejected_with_a_clear_error() {
    let (sim, _power) = twin();
    let open = || Session::open(sim.addr(), None, Duration::from_millis(1500));
    let mut s = open().await.unwrap();
    assert_eq!(s.mac(), sim.mac());

    sim.set_reply_fault(Some(ReplyFault::BadChecksum), 1);
    let e = s.auth().await.unwrap_err();
    assert!(
        matches!(e, BroadlinkError::Checksum { what: "auth", .. }),
        "{e}"
    );
    assert!(
        e.to_string().starts_with("auth reply has a wrong checksum"),
        "{e}"
    );

    sim.set_reply_fault(Some(ReplyFault::Truncated), 1);
    let e = s.auth().await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "auth reply truncated: 32 bytes, expected at least 56"
    );

    s.auth().await.unwrap();
    sim.set_reply_fault(Some(ReplyFault::Garbage), 1);
    let e = s.send_data(codes().off()).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "send_data reply truncated: 7 bytes, expected at least 56"
    );
    s.send_data(codes().off()).await.unwrap();

    // Discovery skips what is not a valid reply.
    sim.set_reply_fault(Some(ReplyFault::BadChecksum), 100);
    let found = discover(sim.addr(), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(found.is_empty(), "{found:?}");
    sim.set_reply_fault(None, 0);

    // A device that never answers: a timeout naming the request.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut s = Session::open(
        silent.local_addr().unwrap(),
        Some(sim.mac()),
        Duration::from_millis(300),
    )
    .await
    .unwrap();
    let e = s.auth().await.unwrap_err();
    assert!(e.to_string().starts_with("no reply to auth within"), "{e}");
}

#[tokio::test]
async fn a_bad_code_file_is_refused_with_its_message() {
    let (sim, _power) = twin();
    let dir = tempfile::tempdir().unwrap();
    let mut v: Value =
        serde_json::from_str(&std::fs::read_to_string(codes_path()).unwrap()).unwrap();
    v["commands"]["cool"].as_object_mut().unwrap().remove("mid");
    let bad = dir.path().join("bad-codes.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    let mut c = cfg(&sim);
    c.codes = bad.clone();
    common::init_logs();
    let mut config = hearth::config::Config::default();
    config.mqtt.port = hearth::broker::EmbeddedBroker::free_port();
    config.http.port = 0;
    config.data_dir = Some(dir.path().to_path_buf());
    config.broadlink.push(c);
    let started = tokio::time::timeout(WAIT, Bridge::start(config, Clock::real()))
        .await
        .expect("start returns");
    let e = match started {
        Ok(_) => panic!("a bridge started with a bad code file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        e.contains(&format!(
            "broadlink `ac`: SmartIR code file {}: missing key `commands.cool.mid`",
            bad.display()
        )),
        "{e}"
    );
}

/// A command whose transmission fails leaves the climate as the AC last
/// received it: the target, fan and mode shown are not the refused ones
/// (before, they were kept and shown at the next update though never sent).
#[tokio::test]
async fn a_failed_transmission_leaves_the_climate_unchanged() {
    let (sim, _power) = twin();
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(&sim);
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.broadlink.push(c)).await;
    let store = bridge.store.clone();
    wait_for("the gateway authenticated", WAIT, || {
        store
            .get("binary_sensor.ac_link_problem")
            .filter(|s| s.state == "off")
    })
    .await;
    call(
        &bridge,
        "climate",
        "set_temperature",
        "climate.ac",
        json!({"hvac_mode": "cool", "temperature": 22}),
    )
    .await
    .unwrap();
    call(
        &bridge,
        "select",
        "select_option",
        "select.ac_fan",
        json!({"option": "low"}),
    )
    .await
    .unwrap();
    call(&bridge, "switch", "turn_on", "switch.ac_power", json!({}))
        .await
        .unwrap();
    assert_eq!(last_ir(&sim), Some(set("cool", "low", 22.0)));

    // Every reply garbage: the send fails (and the reconnect with it).
    sim.set_reply_fault(Some(ReplyFault::Garbage), 1000);
    let e = call(
        &bridge,
        "climate",
        "set_temperature",
        "climate.ac",
        json!({"hvac_mode": "heat", "temperature": 26}),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ServiceError::Driver { .. }), "{e}");
    let e = call(
        &bridge,
        "select",
        "select_option",
        "select.ac_fan",
        json!({"option": "high"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ServiceError::Driver { .. }), "{e}");
    sim.set_reply_fault(None, 0);

    // A command that changes nothing publishes the state: still the old one.
    call(
        &bridge,
        "climate",
        "set_hvac_mode",
        "climate.ac",
        json!({"hvac_mode": "cool"}),
    )
    .await
    .unwrap();
    let climate = store.get("climate.ac").unwrap();
    assert_eq!(climate.state, "cool");
    assert_eq!(climate.attributes["temperature"], json!(22.0));
    assert_eq!(climate.attributes["fan_mode"], "low");
    assert_eq!(store.get("select.ac_fan").unwrap().state, "low");
    // (The twin did act on the heat code: only its reply was garbage. A
    // lost reply cannot tell sent from not sent; the power meter's
    // confirmation, with a power_sensor, is what catches that.)
}
