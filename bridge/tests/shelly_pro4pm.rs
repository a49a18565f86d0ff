//! The Shelly Pro 4PM driver against its twin, over both transports: MQTT
//! RPC on the embedded broker and HTTP RPC on loopback. Switching through
//! the service router, meters following the twin's loads, the device going
//! offline, commands refused while it is, malformed notifications.

use crate::common;

use common::{Observer, wait_for};
use hearth::app::Bridge;
use hearth::drivers::shelly_pro4pm::ShellyPro4pmConfig;
use hearth::entity::{CallSource, ServiceCall, ServiceError};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::breaker::BreakerSpec;
use hearth::twin::shelly_pro4pm_sim::{self, Pro4pmSim, Pro4pmSimConfig};
use serde_json::Map;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const PREFIX: &str = "shellypro4pm-30c6f7aabbcc";

struct Rig {
    bridge: Bridge,
    sim: Pro4pmSim,
    sim_power: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

fn sim_cfg(mqtt: Option<(String, String, u16)>) -> Pro4pmSimConfig {
    Pro4pmSimConfig {
        mac: "30c6f7aabbcc".into(),
        loads_w: [60.0, 5.0, 0.0, 0.0],
        voltage_v: 230.0,
        mqtt,
        notify_period_s: 0.2,
        breaker: None,
        circuit: None,
    }
}

fn cfg() -> ShellyPro4pmConfig {
    ShellyPro4pmConfig {
        id: "p4".into(),
        name: "Pro 4PM".into(),
        host: None,
        mqtt_prefix: None,
        poll_interval_s: 0.2,
        outlet_names: vec!["Lamp".into()],
    }
}

/// A bridge with `[[shelly_pro4pm]] id = "p4"`, the twin on MQTT.
async fn mqtt_rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let c = ShellyPro4pmConfig {
        mqtt_prefix: Some(PREFIX.into()),
        ..cfg()
    };
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.shelly_pro4pm.push(c)).await;
    let (sim_power, off) = shutdown::channel();
    let mqtt = Some((
        PREFIX.to_string(),
        bridge.broker.host.clone(),
        bridge.broker.port,
    ));
    let (sim, _addr, _tasks) =
        shelly_pro4pm_sim::spawn(hearth::clock::Clock::real(), sim_cfg(mqtt), off).unwrap();
    Rig {
        bridge,
        sim,
        sim_power,
        _dir: dir,
    }
}

/// The same over HTTP: the twin first (its address goes in the config).
async fn http_rig() -> Rig {
    http_rig_with(sim_cfg(None)).await
}

async fn http_rig_with(sim_cfg: Pro4pmSimConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (sim_power, off) = shutdown::channel();
    let (sim, addr, _tasks) =
        shelly_pro4pm_sim::spawn(hearth::clock::Clock::real(), sim_cfg, off).unwrap();
    let c = ShellyPro4pmConfig {
        host: Some(addr.to_string()),
        ..cfg()
    };
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.shelly_pro4pm.push(c)).await;
    Rig {
        bridge,
        sim,
        sim_power,
        _dir: dir,
    }
}

async fn call(bridge: &Bridge, service: &str, entity_id: &str) -> Result<(), ServiceError> {
    bridge
        .router
        .call(ServiceCall::new(
            "switch",
            service,
            entity_id,
            Map::new(),
            CallSource::Internal,
        ))
        .await
}

async fn wait_state(bridge: &Bridge, entity_id: &str, want: &str) {
    let store = bridge.store.clone();
    wait_for(&format!("{entity_id} = {want}"), WAIT, || {
        store.get(entity_id).filter(|s| s.state == want)
    })
    .await;
}

/// Switch outlets 1 and 2 on and off; the twin's relays and the sensors
/// follow, the energy counter rises, the entities are HA-shaped.
async fn switching_and_meters(r: &Rig) {
    let b = &r.bridge;
    // Connected once the relays are known (the driver asks at start/online).
    for n in 1..=4 {
        wait_state(b, &format!("switch.p4_outlet{n}"), "off").await;
    }
    call(b, "turn_on", "switch.p4_outlet1").await.unwrap();
    wait_state(b, "switch.p4_outlet1", "on").await;
    assert!(r.sim.relay(0), "the twin's switch:0 closed");
    assert!(!r.sim.relay(1));
    wait_state(b, "sensor.p4_outlet1_power", "60").await;
    wait_state(b, "sensor.p4_outlet1_current", "0.261").await;
    wait_state(b, "sensor.p4_outlet1_voltage", "230").await;
    wait_state(b, "sensor.p4_outlet2_power", "0").await;

    // A load change on the device: the meter follows.
    r.sim.set_load(0, 120.0);
    wait_state(b, "sensor.p4_outlet1_power", "120").await;
    let store = b.store.clone();
    let energy = wait_for("outlet 1 energy > 0", WAIT, || {
        store
            .get("sensor.p4_outlet1_energy")
            .and_then(|s| s.number())
            .filter(|e| *e > 0.0)
    })
    .await;
    assert!(
        energy <= r.sim.energy_wh(0) + 0.1,
        "{energy} Wh vs the twin's {}",
        r.sim.energy_wh(0)
    );

    call(b, "toggle", "switch.p4_outlet2").await.unwrap();
    wait_state(b, "switch.p4_outlet2", "on").await;
    wait_state(b, "sensor.p4_outlet2_power", "5").await;
    call(b, "turn_off", "switch.p4_outlet1").await.unwrap();
    wait_state(b, "switch.p4_outlet1", "off").await;
    assert!(!r.sim.relay(0) && r.sim.relay(1));
    wait_state(b, "sensor.p4_outlet1_power", "0").await;

    for (id, class, unit, state_class) in [
        ("sensor.p4_outlet1_power", "power", "W", "measurement"),
        ("sensor.p4_outlet1_current", "current", "A", "measurement"),
        ("sensor.p4_outlet1_voltage", "voltage", "V", "measurement"),
        (
            "sensor.p4_outlet1_energy",
            "energy",
            "Wh",
            "total_increasing",
        ),
    ] {
        let spec = b.store.spec(id).unwrap_or_else(|| panic!("{id} exists"));
        assert_eq!(spec.device_class.as_deref(), Some(class), "{id}");
        assert_eq!(spec.unit.as_deref(), Some(unit), "{id}");
        assert_eq!(spec.state_class.as_deref(), Some(state_class), "{id}");
    }
    assert_eq!(
        b.store.spec("switch.p4_outlet1").unwrap().name.as_deref(),
        Some("Lamp")
    );
}

/// Power the twin off: every outlet unavailable, commands refused with
/// an error naming the device.
async fn offline_refuses(r: &Rig) {
    let b = &r.bridge;
    // Every entity known first (one with no state yet stays unknown).
    wait_state(b, "switch.p4_outlet4", "off").await;
    wait_state(b, "sensor.p4_outlet3_energy", "0").await;
    r.sim_power.trigger();
    for id in [
        "switch.p4_outlet1",
        "switch.p4_outlet4",
        "sensor.p4_outlet1_power",
        "sensor.p4_outlet3_energy",
    ] {
        wait_state(b, id, "unavailable").await;
    }
    let e = call(b, "turn_on", "switch.p4_outlet3").await.unwrap_err();
    assert!(!r.sim.relay(2));
    // The router refuses unavailable entities before the driver sees them;
    // either refusal names what is off.
    let text = e.to_string();
    assert!(
        text.contains("switch.p4_outlet3"),
        "the refusal names the outlet: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_switching_reaches_the_device_and_meters_follow() {
    let r = mqtt_rig().await;
    switching_and_meters(&r).await;
    r.sim_power.trigger();
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_switching_reaches_the_device_and_meters_follow() {
    let r = http_rig().await;
    switching_and_meters(&r).await;
    r.sim_power.trigger();
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_an_offline_device_is_unavailable_and_refuses_commands() {
    let r = mqtt_rig().await;
    wait_state(&r.bridge, "switch.p4_outlet1", "off").await;
    offline_refuses(&r).await;
    // Back online (a retained `true`, as a rebooted device sends): the
    // driver asks the relays again. Nobody answers: states stay unknown
    // but the entities are available again.
    let o = Observer::connect(&r.bridge.broker, &format!("{PREFIX}/#")).await;
    o.publish(&format!("{PREFIX}/online"), "true").await;
    wait_for("outlet 1 available", WAIT, || {
        r.bridge
            .store
            .get("switch.p4_outlet1")
            .filter(|s| s.state != "unavailable")
    })
    .await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_an_offline_device_is_unavailable_and_refuses_commands() {
    let r = http_rig().await;
    wait_state(&r.bridge, "switch.p4_outlet1", "off").await;
    offline_refuses(&r).await;
    r.bridge.stop().await;
}

/// The twin's own B16 breaker: an outlet drawing past its magnetic trip
/// cuts it at once. The bridge reads 0 W with the switch still on, until
/// the breaker is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_tripped_breaker_reads_zero_with_the_relay_on() {
    let r = http_rig_with(Pro4pmSimConfig {
        breaker: Some(BreakerSpec::b(16.0)),
        ..sim_cfg(None)
    })
    .await;
    let b = &r.bridge;
    wait_state(b, "switch.p4_outlet1", "off").await;
    call(b, "turn_on", "switch.p4_outlet1").await.unwrap();
    wait_state(b, "sensor.p4_outlet1_power", "60").await;
    // 87 A on a B16 (magnetic trip from 5·In = 80 A): open at once.
    r.sim.set_load(0, 20_000.0);
    wait_state(b, "sensor.p4_outlet1_power", "0").await;
    wait_state(b, "sensor.p4_outlet1_current", "0").await;
    assert!(r.sim.cut(0) && r.sim.cut(3));
    assert_eq!(r.sim.breaker_trips().len(), 1);
    assert_eq!(b.store.get("switch.p4_outlet1").unwrap().state, "on");
    assert!(r.sim.relay(0));
    r.sim.set_load(0, 60.0);
    r.sim.reset_breaker();
    wait_state(b, "sensor.p4_outlet1_power", "60").await;
    assert!(!r.sim.cut(0));
    r.sim_power.trigger();
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_notifications_are_logged_and_ignored() {
    let panics = common::panic_mark();
    let r = mqtt_rig().await;
    let b = &r.bridge;
    wait_state(b, "switch.p4_outlet1", "off").await;
    call(b, "turn_on", "switch.p4_outlet1").await.unwrap();
    wait_state(b, "sensor.p4_outlet1_power", "60").await;
    // Silence the twin so nothing overwrites what the bad frames would.
    r.sim_power.trigger();
    wait_state(b, "sensor.p4_outlet1_power", "unavailable").await;
    let o = Observer::connect(&b.broker, &format!("{PREFIX}/#")).await;
    o.publish(&format!("{PREFIX}/online"), "true").await;
    wait_state(b, "sensor.p4_outlet1_power", "60").await;

    let mark = common::log_mark();
    let events = format!("{PREFIX}/events/rpc");
    let cases = [
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:0":{"id":0,"apower":"lots"}}}"#,
            "switch:0.apower: expected a finite number (W), got a string",
        ),
        (
            r#"{"method":"NotifyStatus","params":{"ts":1,"switch:7":{"output":true}}}"#,
            "`switch:7` names a switch the device does not have",
        ),
        ("{not json", "expected a JSON object"),
    ];
    // The throttle admits 10 warnings per source and minute: all three log.
    for (payload, _) in cases {
        o.publish(&events, payload).await;
    }
    for (_, line) in cases {
        wait_for(&format!("log line `{line}`"), WAIT, || {
            common::logs_since(mark).contains(line).then_some(())
        })
        .await;
    }
    assert!(common::logs_since(mark).contains(&format!("shelly_pro4pm `p4` {events}")));
    assert_eq!(
        b.store.get("sensor.p4_outlet1_power").unwrap().state,
        "60",
        "the last good reading stays"
    );
    // A good partial notification after the bad ones lands, merged.
    o.publish(
        &events,
        r#"{"method":"NotifyStatus","params":{"ts":2,"switch:0":{"id":0,"apower":7.5}}}"#,
    )
    .await;
    wait_state(b, "sensor.p4_outlet1_power", "7.5").await;
    assert_eq!(
        b.store.get("switch.p4_outlet1").unwrap().state,
        "on",
        "merged, not replaced"
    );
    assert_eq!(common::panics_since(panics), Vec::<String>::new());
    r.bridge.stop().await;
}
