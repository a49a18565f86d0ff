//! The Tasmota metered strip driver against the strip's twin on the
//! embedded broker: switching through the service router, per-outlet and
//! total-only meters, the strip going offline, malformed telemetry, the
//! strip's breaker tripping.

use crate::common;

use common::{Observer, wait_for};
use hearth::app::Bridge;
use hearth::drivers::tasmota_strip::{MeterMode, TasmotaStripConfig};
use hearth::entity::{CallSource, ServiceCall};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::breaker::{BreakerSpec, TripReason};
use hearth::twin::tasmota_strip_sim::{self, SimMeter, StripSim, StripSimConfig};
use serde_json::Map;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);

struct Rig {
    bridge: Bridge,
    strip: StripSim,
    strip_power: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

/// A bridge with one strip `strip1` (topic `strip1`), and its twin.
async fn rig(meter: MeterMode, loads_w: &[f64]) -> Rig {
    rig_with_breaker(meter, loads_w, None).await
}

/// [`rig`], the twin strip behind its own `breaker`.
async fn rig_with_breaker(meter: MeterMode, loads_w: &[f64], breaker: Option<BreakerSpec>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let cfg = TasmotaStripConfig {
        id: "strip1".into(),
        name: "Strip 1".into(),
        topic: "strip1".into(),
        outlets: loads_w.len(),
        outlet_names: vec!["Lamp".into()],
        meter,
    };
    let bridge = common::history::start_bridge(dir.path(), |c| c.tasmota_strip.push(cfg)).await;
    let (strip_power, off) = shutdown::channel();
    let (strip, _task) = tasmota_strip_sim::spawn(
        hearth::clock::Clock::real(),
        &bridge.broker.host,
        bridge.broker.port,
        StripSimConfig {
            topic: "strip1".into(),
            client_id: "DVES_STRIP1".into(),
            loads_w: loads_w.to_vec(),
            voltage_v: 230.0,
            meter: match meter {
                MeterMode::PerOutlet => SimMeter::PerChannel,
                MeterMode::Total => SimMeter::Total,
            },
            tele_period_s: 0.2,
            breaker,
            circuit: None,
        },
        off,
    )
    .expect("the strip joins its circuit tree");
    Rig {
        bridge,
        strip,
        strip_power,
        _dir: dir,
    }
}

async fn switch(bridge: &Bridge, service: &str, entity_id: &str) {
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
        .unwrap_or_else(|e| panic!("switch.{service} {entity_id}: {e}"));
}

async fn wait_state(bridge: &Bridge, entity_id: &str, want: &str) {
    let store = bridge.store.clone();
    wait_for(&format!("{entity_id} = {want}"), WAIT, || {
        store.get(entity_id).filter(|s| s.state == want)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_an_outlet_reaches_the_strip_and_per_outlet_meters_follow() {
    let r = rig(MeterMode::PerOutlet, &[52.0, 5.0]).await;
    let b = &r.bridge;
    // The driver asks the strip's state at start: both relays known off.
    wait_state(b, "switch.strip1_outlet1", "off").await;
    wait_state(b, "switch.strip1_outlet2", "off").await;

    switch(b, "turn_on", "switch.strip1_outlet2").await;
    wait_state(b, "switch.strip1_outlet2", "on").await;
    assert!(r.strip.relay(2), "the twin's relay 2 closed");
    assert!(!r.strip.relay(1));
    wait_state(b, "sensor.strip1_outlet2_power", "5").await;
    wait_state(b, "sensor.strip1_outlet2_current", "0.022").await;
    wait_state(b, "sensor.strip1_outlet1_power", "0").await;

    switch(b, "turn_on", "switch.strip1_outlet1").await;
    wait_state(b, "sensor.strip1_outlet1_power", "52").await;
    switch(b, "turn_off", "switch.strip1_outlet2").await;
    wait_state(b, "switch.strip1_outlet2", "off").await;
    assert!(!r.strip.relay(2));
    wait_state(b, "sensor.strip1_outlet2_power", "0").await;

    // Units and classes HA accepts; energy in Wh from Tasmota's kWh.
    let store = &b.store;
    for (id, class, unit, state_class) in [
        ("sensor.strip1_outlet1_power", "power", "W", "measurement"),
        (
            "sensor.strip1_outlet1_current",
            "current",
            "A",
            "measurement",
        ),
        (
            "sensor.strip1_outlet1_energy",
            "energy",
            "Wh",
            "total_increasing",
        ),
    ] {
        let spec = store.spec(id).unwrap_or_else(|| panic!("{id} exists"));
        assert_eq!(spec.device_class.as_deref(), Some(class), "{id}");
        assert_eq!(spec.unit.as_deref(), Some(unit), "{id}");
        assert_eq!(spec.state_class.as_deref(), Some(state_class), "{id}");
    }
    assert_eq!(
        store.spec("switch.strip1_outlet1").unwrap().name.as_deref(),
        Some("Lamp")
    );
    let energy = wait_for("outlet 1 energy", WAIT, || {
        store
            .get("sensor.strip1_outlet1_energy")
            .and_then(|s| s.number())
    })
    .await;
    assert!(
        energy >= 0.0 && energy <= r.strip.energy_kwh(1) * 1000.0 + 1.0,
        "{energy} Wh vs the twin's {} kWh",
        r.strip.energy_kwh(1)
    );
    assert!(
        store
            .get("sensor.strip1_outlet1_power")
            .unwrap()
            .attributes
            .get("estimated")
            .is_none(),
        "measured figures are not marked estimated"
    );
    r.strip_power.trigger();
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_total_only_meter_gives_estimated_per_outlet_power() {
    let r = rig(MeterMode::Total, &[100.0, 40.0, 60.0]).await;
    let b = &r.bridge;
    wait_state(b, "switch.strip1_outlet3", "off").await;
    switch(b, "turn_on", "switch.strip1_outlet1").await;
    switch(b, "turn_on", "switch.strip1_outlet3").await;
    wait_state(b, "switch.strip1_outlet3", "on").await;
    // 160 W measured in total, two outlets on: 80 W each, 0 W for the off one.
    wait_state(b, "sensor.strip1_outlet1_power", "80").await;
    wait_state(b, "sensor.strip1_outlet3_power", "80").await;
    wait_state(b, "sensor.strip1_outlet2_power", "0").await;
    let s = b.store.get("sensor.strip1_outlet1_power").unwrap();
    assert_eq!(
        s.attributes.get("estimated").and_then(|v| v.as_str()),
        Some("equal split of the strip's total among outlets that are on")
    );
    let e = b.store.get("sensor.strip1_outlet2_energy");
    assert!(
        e.as_ref()
            .is_some_and(|e| e.attributes.contains_key("estimated")),
        "{e:?}"
    );
    r.strip_power.trigger();
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strip_going_offline_makes_its_outlets_unavailable() {
    let r = rig(MeterMode::PerOutlet, &[52.0, 5.0]).await;
    let b = &r.bridge;
    wait_state(b, "sensor.strip1_outlet1_power", "0").await;
    wait_state(b, "switch.strip1_outlet1", "off").await;
    // The strip loses power: the broker publishes its will, LWT Offline.
    r.strip_power.trigger();
    for id in [
        "switch.strip1_outlet1",
        "switch.strip1_outlet2",
        "sensor.strip1_outlet1_power",
        "sensor.strip1_outlet2_energy",
    ] {
        wait_state(b, id, "unavailable").await;
    }
    let refused = b
        .router
        .call(ServiceCall::new(
            "switch",
            "turn_on",
            "switch.strip1_outlet1",
            Map::new(),
            CallSource::Internal,
        ))
        .await;
    assert!(refused.is_err(), "an offline strip's outlet cannot switch");
    // Back online (a retained `Online`, as a rebooted Tasmota sends).
    let o = Observer::connect(&b.broker, "tele/strip1/#").await;
    o.publish("tele/strip1/LWT", "Online").await;
    wait_state(b, "switch.strip1_outlet1", "off").await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_sensor_payload_is_logged_and_ignored() {
    let panics = common::panic_mark();
    let r = rig(MeterMode::PerOutlet, &[52.0, 5.0]).await;
    let b = &r.bridge;
    // The strip is connected once it has reported its relays (a command
    // sent before that is lost, as with real Tasmota).
    wait_state(b, "switch.strip1_outlet1", "off").await;
    switch(b, "turn_on", "switch.strip1_outlet1").await;
    wait_state(b, "sensor.strip1_outlet1_power", "52").await;
    // Stop telemetry so nothing overwrites what the bad payloads would.
    r.strip_power.trigger();
    wait_state(b, "sensor.strip1_outlet1_power", "unavailable").await;
    let o = Observer::connect(&b.broker, "tele/strip1/#").await;
    o.publish("tele/strip1/LWT", "Online").await;
    wait_state(b, "sensor.strip1_outlet1_power", "52").await;

    let mark = common::log_mark();
    let cases = [
        (
            r#"{"ENERGY":{"Power":"lots"}}"#,
            "tele/strip1/SENSOR: ENERGY.Power: expected a finite number or an array of finite numbers, got a string",
        ),
        (
            r#"{"ENERGY":{"Power":[1,2,3]}}"#,
            "tele/strip1/SENSOR: ENERGY.Power: expected an array of 2 values, one per outlet",
        ),
        ("{not json", "tele/strip1/SENSOR: expected a JSON object"),
    ];
    for (payload, _) in cases {
        o.publish("tele/strip1/SENSOR", payload).await;
    }
    for (_, line) in cases {
        wait_for(&format!("log line `{line}`"), WAIT, || {
            common::logs_since(mark).contains(line).then_some(())
        })
        .await;
    }
    assert_eq!(
        b.store.get("sensor.strip1_outlet1_power").unwrap().state,
        "52",
        "the last good reading stays"
    );
    // A good payload after the bad ones still lands.
    o.publish(
        "tele/strip1/SENSOR",
        r#"{"ENERGY":{"Power":[7,0],"Current":[0.03,0],"Total":[0.002,0],"Voltage":230}}"#,
    )
    .await;
    wait_state(b, "sensor.strip1_outlet1_power", "7").await;
    wait_state(b, "sensor.strip1_outlet1_energy", "2").await;
    assert_eq!(common::panics_since(panics), Vec::<String>::new());
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tripped_strip_breaker_cuts_its_outlets_and_the_meters_read_zero() {
    // 12 kW at 230 V = 52 A on a B10: over 5·In, the magnetic trip.
    let r = rig_with_breaker(
        MeterMode::PerOutlet,
        &[52.0, 12_000.0],
        Some(BreakerSpec::b(10.0)),
    )
    .await;
    let b = &r.bridge;
    // The twin has answered the driver's first query: it is subscribed.
    wait_state(b, "switch.strip1_outlet1", "off").await;
    switch(b, "turn_on", "switch.strip1_outlet1").await;
    wait_state(b, "sensor.strip1_outlet1_power", "52").await;
    switch(b, "turn_on", "switch.strip1_outlet2").await;
    wait_state(b, "switch.strip1_outlet2", "on").await;
    // Both outlets cut; the relays, and HA's switches, stay on.
    wait_state(b, "sensor.strip1_outlet1_power", "0").await;
    wait_state(b, "sensor.strip1_outlet2_current", "0").await;
    assert_eq!(b.store.get("switch.strip1_outlet1").unwrap().state, "on");
    assert!(r.strip.relay(1) && r.strip.cut(1) && r.strip.cut(2));
    let trips = r.strip.breaker_trips();
    assert_eq!(trips.len(), 1, "{trips:?}");
    assert_eq!(trips[0].1.reason, TripReason::Magnetic);
    // The big load off, the breaker reset: outlet 1 draws again. Wait for
    // the twin's relay, not HA's switch: a reset before the twin opens it
    // would meet the 52 A again and trip at once.
    switch(b, "turn_off", "switch.strip1_outlet2").await;
    let strip = r.strip.clone();
    wait_for("twin relay 2 open", WAIT, || {
        (!strip.relay(2)).then_some(())
    })
    .await;
    r.strip.reset_breaker();
    wait_state(b, "sensor.strip1_outlet1_power", "52").await;
    r.strip_power.trigger();
}
