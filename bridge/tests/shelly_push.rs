//! The `[[shelly]]` Gen2 plug driver with MQTT push against the twin plug
//! (`twin::shelly_push_sim`: HTTP on loopback and its own MQTT client on
//! the bridge's embedded broker): state and power in the store within 1 s
//! while polling is at 60 s, polling as the fallback when push is silent,
//! offline and back through `<prefix>/online`, malformed `NotifyStatus`
//! refused by name with the last good state kept, and the device's
//! `Switch.SetConfig` limits written, shown and acting (overpower trip).

use crate::common;

use common::{Observer, state, wait_for, wait_state};
use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::drivers::shelly::ShellyConfig;
use hearth::entity::{CallSource, ServiceCall};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::plant::Plant;
use hearth::twin::room::{AcMode, AcSettings, COMPRESSOR_ELECTRICAL_W, RoomParams};
use hearth::twin::shelly_push_sim::{self, ShellyPushSim, ShellyPushSimConfig};
use serde_json::Map;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const PUSH: Duration = Duration::from_secs(1);
const PREFIX: &str = "office-plug";

struct Rig {
    bridge: Bridge,
    sim: ShellyPushSim,
    _power: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

fn plug_cfg(url: String, poll_interval_s: f64) -> ShellyConfig {
    let toml = format!(
        "id = \"plug\"\nname = \"Office plug\"\nurl = \"{url}\"\npoll_interval_s = {poll_interval_s}\nmqtt_prefix = \"{PREFIX}\"\n"
    );
    toml::from_str(&toml).unwrap()
}

/// The twin plug (feeding an AC that cools whenever it has mains) and a
/// bridge with one `[[shelly]]` on it.
async fn rig(tweak: impl FnOnce(&mut ShellyConfig)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let clock = Clock::real();
    let mut plant = Plant::new(RoomParams::server_room(), clock.now_ms());
    plant.apply_ir(
        AcSettings {
            power: true,
            mode: AcMode::Cool,
            set_temp_c: 10.0, // never reached: the compressor runs with mains
            fan_speed: "Auto".into(),
        },
        clock.now_ms(),
    );
    let (power, off) = shutdown::channel();
    let sim = shelly_push_sim::spawn(
        clock,
        ShellyPushSimConfig {
            mac: "a8032ab1c2d3".into(),
            name: "Office plug".into(),
            seed: 7,
            prefix: Some(PREFIX.into()),
            broker: BrokerAddress::local(port),
        },
        plant.shared(),
        off,
    )
    .unwrap();
    let mut c = plug_cfg(sim.url(), 60.0);
    tweak(&mut c);
    let bridge = common::history::start_bridge(dir.path(), |conf: &mut Config| {
        conf.mqtt.port = port;
        conf.shelly.push(c);
    })
    .await;
    Rig {
        bridge,
        sim,
        _power: power,
        _dir: dir,
    }
}

/// Until the twin's MQTT link is up (push can arrive).
async fn push_live(r: &Rig) {
    let sim = r.sim.clone();
    wait_for("the twin's MQTT link", WAIT, || sim.mqtt_up().then_some(())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_brings_state_and_power_within_a_second_while_polling_is_at_60_s() {
    let r = rig(|_| {}).await;
    let b = &r.bridge;
    let full = format!("{COMPRESSOR_ELECTRICAL_W}");
    // The start poll (relay closed, the AC cooling).
    wait_state(b, "switch.plug", "on", WAIT).await;
    wait_state(b, "sensor.plug_power", &full, WAIT).await;
    push_live(&r).await;
    for round in 0..5 {
        r.sim.set_relay(false);
        let d = wait_state(b, "switch.plug", "off", PUSH).await;
        wait_state(b, "sensor.plug_power", "0", PUSH).await;
        r.sim.set_relay(true);
        let u = wait_state(b, "switch.plug", "on", PUSH).await;
        wait_state(b, "sensor.plug_power", &full, PUSH).await;
        eprintln!("round {round}: off seen after {d:?}, on after {u:?}");
    }
    assert_eq!(state(b, "sensor.plug_current").as_deref(), Some("10"));
    // A command goes over HTTP and is confirmed by the state read back.
    b.router
        .call(ServiceCall::new(
            "switch",
            "turn_off",
            "switch.plug",
            Map::new(),
            CallSource::Internal,
        ))
        .await
        .unwrap();
    assert!(!r.sim.relay_on());
    assert_eq!(state(b, "switch.plug").as_deref(), Some("off"));
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_push_falls_back_to_polling() {
    let r = rig(|c| c.poll_interval_s = 1.0).await;
    let b = &r.bridge;
    wait_state(b, "switch.plug", "on", WAIT).await;
    r.sim.set_muted(true);
    r.sim.set_relay(false);
    // Push said nothing: the poll after 1 s of silence finds it.
    let d = wait_state(b, "switch.plug", "off", Duration::from_secs(5)).await;
    eprintln!("muted change seen by polling after {d:?}");
    r.sim.set_muted(false);
    push_live(&r).await;
    r.sim.set_relay(true);
    wait_state(b, "switch.plug", "on", PUSH).await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_back_through_the_online_topic() {
    let r = rig(|_| {}).await;
    let b = &r.bridge;
    wait_state(b, "switch.plug", "on", WAIT).await;
    push_live(&r).await;
    let o = Observer::connect(&b.broker, &format!("{PREFIX}/online")).await;
    // The link drops: the broker publishes the will, `online` = false.
    r.sim.set_connected(false);
    wait_for("the will `online` = false on the broker", WAIT, || {
        o.payloads_on(&format!("{PREFIX}/online"))
            .last()
            .filter(|p| *p == "false")
            .map(|_| ())
    })
    .await;
    wait_state(b, "switch.plug", "unavailable", WAIT).await;
    assert_eq!(
        state(b, "sensor.plug_power").as_deref(),
        Some("unavailable")
    );
    // Back: `online` = true, a read, the state it has now.
    r.sim.set_relay(false);
    r.sim.set_connected(true);
    wait_state(b, "switch.plug", "off", Duration::from_secs(10)).await;
    wait_state(b, "sensor.plug_power", "0", WAIT).await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_notifications_are_refused_by_name_and_the_last_state_kept() {
    let panics = common::panic_mark();
    let r = rig(|_| {}).await;
    let b = &r.bridge;
    let full = format!("{COMPRESSOR_ELECTRICAL_W}");
    wait_state(b, "sensor.plug_power", &full, WAIT).await;
    push_live(&r).await;
    r.sim.set_muted(true); // nothing good overwrites what bad frames would
    let o = Observer::connect(&b.broker, "nothing/#").await;
    let events = format!("{PREFIX}/events/rpc");
    let mark = common::log_mark();
    let cases = [
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"apo"#.to_string(),
            "expected a JSON object".to_string(),
        ),
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"apower":"lots"}}}"#
                .into(),
            "switch:0.apower: expected a finite number (W), got a string".into(),
        ),
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"output":"on"}}}"#
                .into(),
            "switch:0.output: expected true or false, got a string".into(),
        ),
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"apower":1e300}}}"#
                .into(),
            "switch:0.apower: expected a plausible reading, got 1e300".into(),
        ),
        (
            format!(
                r#"{{"method":"NotifyStatus","params":{{"ts":1,"switch:0":{{"id":0,"errors":["{}"]}}}}}}"#,
                "x".repeat(5000)
            ),
            "switch:0.errors: expected an array of at most 8 short strings".into(),
        ),
    ];
    for (payload, _) in &cases {
        o.publish(&events, payload).await;
    }
    o.publish(
        &format!("{PREFIX}/status/switch:0"),
        r#"{"id":0,"output":7}"#,
    )
    .await;
    for (_, line) in &cases {
        let want = format!("shelly `plug` {events}: {line}");
        wait_for(&format!("log line `{want}`"), WAIT, || {
            common::logs_since(mark).contains(&want).then_some(())
        })
        .await;
    }
    let want = format!(
        "shelly `plug` {PREFIX}/status/switch:0: switch:0.output: expected true or false, got a number"
    );
    wait_for(&format!("log line `{want}`"), WAIT, || {
        common::logs_since(mark).contains(&want).then_some(())
    })
    .await;
    assert_eq!(
        state(b, "sensor.plug_power"),
        Some(full),
        "the last good reading stays"
    );
    assert_eq!(state(b, "switch.plug").as_deref(), Some("on"));
    // A good partial frame after the bad ones lands, merged.
    o.publish(
        &events,
        r#"{"method":"NotifyStatus","params":{"ts":2,"switch:0":{"id":0,"apower":7.5}}}"#,
    )
    .await;
    wait_state(b, "sensor.plug_power", "7.5", PUSH).await;
    assert_eq!(
        state(b, "switch.plug").as_deref(),
        Some("on"),
        "merged, not replaced"
    );
    assert_eq!(common::panics_since(panics), Vec::<String>::new());
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_written_shown_and_an_overpower_trip_is_reflected() {
    let r = rig(|c| {
        c.power_limit_w = Some(1000.0);
        c.current_limit_a = Some(8.0);
    })
    .await;
    let b = &r.bridge;
    wait_state(b, "sensor.plug_power_limit", "1000", WAIT).await;
    wait_state(b, "sensor.plug_current_limit", "8", WAIT).await;
    assert_eq!(r.sim.limits(), (1000.0, 8.0), "written on the device");
    let spec = b.store.spec("sensor.plug_power_limit").unwrap();
    assert_eq!(spec.entity_category.as_deref(), Some("diagnostic"));
    assert_eq!(spec.unit.as_deref(), Some("W"));
    // The AC's 2300 W compressor is above 1000 W: the plug opens itself.
    wait_state(b, "switch.plug", "off", WAIT).await;
    wait_state(b, "binary_sensor.plug_problem", "on", PUSH).await;
    assert_eq!(r.sim.errors(), vec!["overpower".to_string()]);
    let problem = b.store.get("binary_sensor.plug_problem").unwrap();
    assert_eq!(
        problem.attributes["errors"],
        serde_json::json!(["overpower"])
    );
    assert!(!r.sim.relay_on());
    r.bridge.stop().await;
}

#[test]
fn a_limit_above_the_host_envelope_is_a_config_error() {
    let text = "[[shelly]]\nid = \"plug\"\nname = \"P\"\nurl = \"http://127.0.0.1:1\"\npower_limit_w = 5000\n";
    let c: Config = toml::from_str(text).unwrap();
    let e = c.validate().unwrap_err().to_string();
    assert!(
        e.contains("shelly `plug`: power_limit_w = 5000 W is outside the host safety envelope"),
        "{e}"
    );
}
