//! The Meross driver against its twin over real HTTP on 127.0.0.1: signed
//! messages both ways, switching, metering with the device's units (mW,
//! dV, mA) converted, daily consumption into a total, a wrong key refused
//! and named without hammering the plug, an encrypted firmware refused, the
//! plug going offline and back, malformed answers rejected with the device
//! and the field named and the last good state kept.

use crate::common;

use common::wait_for;
use hearth::app::Bridge;
use hearth::drivers::meross::MerossConfig;
use hearth::entity::ServiceError;
use hearth::secret::Secret;
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::meross_sim::{self, MerossFault, MerossSim, MerossSimConfig};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const KEY: &str = "9a7b3c1d0e2f4a6b8c0d1e2f3a4b5c6d";

struct Rig {
    bridge: Bridge,
    bridge_config: MerossConfig,
    sim: MerossSim,
    _sim_power: ShutdownTrigger,
    _dir: tempfile::TempDir,
}

/// A twin plug (100 W load, 230 V) and a bridge with `[[meross]] id =
/// "m1"` signing with `key`; `before` prepares the twin before the bridge
/// first polls it.
async fn rig(key: &str, before: impl FnOnce(&MerossSim)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (sim_power, off) = shutdown::channel();
    let (sim, _task) = meross_sim::spawn(
        hearth::clock::Clock::real(),
        MerossSimConfig {
            key: KEY.into(),
            load_w: 100.0,
            voltage_v: 230.0,
            ..MerossSimConfig::default()
        },
        off,
    )
    .unwrap();
    before(&sim);
    let c = MerossConfig {
        id: "m1".into(),
        name: "Desk plug".into(),
        url: sim.url(),
        key: Some(Secret::new(key)),
        channel: 0,
        poll_interval_s: 0.2,
        min_off_s: None,
    };
    let bridge_config = c.clone();
    let bridge = common::history::start_bridge(dir.path(), |conf| conf.meross.push(c)).await;
    Rig {
        bridge,
        bridge_config,
        sim,
        _sim_power: sim_power,
        _dir: dir,
    }
}

async fn call(bridge: &Bridge, service: &str) -> Result<(), ServiceError> {
    let data = serde_json::json!({});
    common::call(bridge, "switch", service, "switch.m1_switch", data).await
}

async fn wait_state(bridge: &Bridge, entity_id: &str, want: &str) {
    common::wait_state(bridge, entity_id, want, WAIT).await;
}

fn state(bridge: &Bridge, entity_id: &str) -> String {
    common::state(bridge, entity_id).unwrap_or_else(|| "(none)".into())
}

/// The problem entity on, with its `error`.
async fn problem(bridge: &Bridge) -> String {
    let store = bridge.store.clone();
    wait_for("binary_sensor.m1_problem on", WAIT, || {
        store
            .get("binary_sensor.m1_problem")
            .filter(|s| s.state == "on")
            .and_then(|s| s.attributes.get("error")?.as_str().map(str::to_string))
    })
    .await
}

fn day_before(date: &str, days: i64) -> String {
    let d: jiff::civil::Date = date.parse().unwrap();
    d.checked_sub(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_metering_and_consumption() {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let yesterday = day_before(&today, 1);
    let tomorrow = day_before(&today, -1);
    let r = rig(KEY, |sim| {
        sim.set_day_wh(&yesterday, 900.0);
        sim.set_day_wh(&today, 100.0);
    })
    .await;
    let b = &r.bridge;
    wait_state(b, "switch.m1_switch", "off").await;
    wait_state(b, "binary_sensor.m1_problem", "off").await;
    wait_state(b, "sensor.m1_power", "0").await;
    call(b, "turn_on").await.unwrap();
    assert!(r.sim.relay(), "the twin's relay closed");
    wait_state(b, "switch.m1_switch", "on").await;
    // 100 000 mW, 2300 dV, 435 mA on the wire.
    wait_state(b, "sensor.m1_power", "100").await;
    wait_state(b, "sensor.m1_voltage", "230").await;
    wait_state(b, "sensor.m1_current", "0.435").await;
    r.sim.set_load_w(1234.5);
    r.sim.set_voltage_v(229.4);
    wait_state(b, "sensor.m1_power", "1234.5").await;
    wait_state(b, "sensor.m1_voltage", "229.4").await;
    wait_state(b, "sensor.m1_current", "5.381").await;
    call(b, "toggle").await.unwrap();
    wait_state(b, "switch.m1_switch", "off").await;
    assert!(!r.sim.relay());
    wait_state(b, "sensor.m1_power", "0").await;

    // Consumption: today's value as read, the total counting from the
    // first read (baseline), each day's growth and a new day from 0.
    wait_state(b, "sensor.m1_energy_today", "100").await;
    wait_state(b, "sensor.m1_energy", "0").await;
    r.sim.set_day_wh(&today, 220.0);
    wait_state(b, "sensor.m1_energy_today", "220").await;
    wait_state(b, "sensor.m1_energy", "120").await;
    r.sim.set_day_wh(&today, 250.0);
    r.sim.set_day_wh(&tomorrow, 30.0);
    wait_state(b, "sensor.m1_energy_today", "30").await;
    wait_state(b, "sensor.m1_energy", "180").await;
    let today_state = b.store.get("sensor.m1_energy_today").unwrap();
    assert_eq!(today_state.attributes["date"], tomorrow.as_str());

    for (id, class, unit, state_class) in [
        ("sensor.m1_power", "power", "W", "measurement"),
        ("sensor.m1_voltage", "voltage", "V", "measurement"),
        ("sensor.m1_current", "current", "A", "measurement"),
        ("sensor.m1_energy", "energy", "Wh", "total_increasing"),
        ("sensor.m1_energy_today", "energy", "Wh", "total_increasing"),
    ] {
        let spec = b.store.spec(id).unwrap_or_else(|| panic!("{id} exists"));
        assert_eq!(spec.device_class.as_deref(), Some(class), "{id}");
        assert_eq!(spec.unit.as_deref(), Some(unit), "{id}");
        assert_eq!(spec.state_class.as_deref(), Some(state_class), "{id}");
    }
    let (device, _) = b.store.device("m1").unwrap();
    assert_eq!(
        (device.model.as_str(), device.sw_version.as_deref()),
        (meross_sim::MODEL, Some(meross_sim::FIRMWARE))
    );
    r.bridge.stop().await;
}

/// The total continues from the recorder's last value after a restart of
/// the bridge (the plug kept running).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_energy_total_survives_a_bridge_restart() {
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let r = rig(KEY, |sim| sim.set_day_wh(&today, 100.0)).await;
    wait_state(&r.bridge, "sensor.m1_energy", "0").await;
    r.sim.set_day_wh(&today, 175.0);
    wait_state(&r.bridge, "sensor.m1_energy", "75").await;
    let cfg = r.bridge_config.clone();
    r.bridge.stop().await;
    // 15 Wh more today while the bridge is down: counted after the restart.
    r.sim.set_day_wh(&today, 190.0);
    let b = common::history::start_bridge(r._dir.path(), |conf| conf.meross.push(cfg)).await;
    wait_state(&b, "sensor.m1_energy_today", "190").await;
    wait_state(&b, "sensor.m1_energy", "90").await;
    r.sim.set_day_wh(&today, 195.0);
    wait_state(&b, "sensor.m1_energy", "95").await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_named_and_not_hammered() {
    let mark = common::log_mark();
    let r = rig("not-the-device-key", |_| {}).await;
    let b = &r.bridge;
    let error = problem(b).await;
    let named = "meross m1: the device refused the signature: check `key`";
    assert!(error.contains(named), "{error}");
    assert!(common::logs_since(mark).contains(named));
    assert!(!common::logs_since(mark).contains("not-the-device-key"));
    assert!(!error.contains(KEY) && !error.contains("not-the-device-key"));
    // Commands are refused with the same reason, and nothing switched.
    let e = call(b, "turn_on").await.unwrap_err().to_string();
    assert!(e.contains("check `key`"), "{e}");
    assert!(!r.sim.relay());
    // Backoff: at a 0.2 s poll, 3 s would be ≥ 15 requests.
    let before = r.sim.requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let asked = r.sim.requests() - before;
    assert!(asked <= 4, "{asked} requests in 3 s while refused");
    let relay = state(b, "switch.m1_switch");
    assert!(relay != "on" && relay != "off", "nothing read: {relay}");
    // The plug re-paired with the configured key: Hearth gets back in.
    r.sim.set_key("not-the-device-key");
    wait_state(b, "binary_sensor.m1_problem", "off").await;
    wait_state(b, "switch.m1_switch", "off").await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_firmware_is_refused_with_its_reason() {
    let mark = common::log_mark();
    let r = rig(KEY, |sim| sim.set_encrypted(true)).await;
    let b = &r.bridge;
    let error = problem(b).await;
    for part in [
        "meross m1: the firmware requires the encrypted LAN protocol",
        "Appliance.Encrypt.",
        "which Hearth does not speak",
    ] {
        assert!(error.contains(part), "`{part}` in {error}");
        assert!(common::logs_since(mark).contains(part), "`{part}` logged");
    }
    let relay = state(b, "switch.m1_switch");
    assert!(relay != "on" && relay != "off", "nothing read: {relay}");
    assert!(b.store.spec("sensor.m1_power").is_none());
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_and_back() {
    let r = rig(KEY, |sim| sim.set_relay(true)).await;
    let b = &r.bridge;
    wait_state(b, "switch.m1_switch", "on").await;
    wait_state(b, "sensor.m1_power", "100").await;
    r.sim.set_offline(true);
    wait_state(b, "switch.m1_switch", "unavailable").await;
    wait_state(b, "sensor.m1_power", "unavailable").await;
    assert!(call(b, "turn_off").await.is_err());
    assert!(r.sim.relay());
    r.sim.set_offline(false);
    wait_state(b, "switch.m1_switch", "on").await;
    wait_state(b, "sensor.m1_power", "100").await;
    wait_state(b, "binary_sensor.m1_problem", "off").await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_rejected_and_named() {
    let panics = common::panic_mark();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let r = rig(KEY, |sim| {
        sim.set_relay(true);
        sim.set_day_wh(&today, 500.0);
    })
    .await;
    let b = &r.bridge;
    wait_state(b, "sensor.m1_power", "100").await;
    wait_state(b, "sensor.m1_energy_today", "500").await;
    let cases = [
        (
            MerossFault::TruncatedJson,
            vec!["meross `m1` Appliance.System.All GET: the answer is not JSON"],
        ),
        (
            MerossFault::WrongTypes,
            vec![
                "meross `m1` Appliance.Control.Electricity GET: `electricity.channel`: expected 0, got \"0\"",
                "meross `m1` Appliance.Control.ConsumptionX GET: `consumptionx[0].value`: expected a number (Wh), got \"500\"",
            ],
        ),
        (
            MerossFault::HugeValues,
            vec![
                "meross `m1` Appliance.Control.Electricity GET: `electricity.power`: expected 0 to 30000000 mW",
                "`electricity.power`",
                "meross `m1` Appliance.Control.ConsumptionX GET: `consumptionx[0].value`: expected 0 to 720000 Wh",
            ],
        ),
        (
            MerossFault::BadSign,
            vec![
                "meross `m1` Appliance.System.All GET: the answer's sign does not verify with `key`",
                "meross `m1` Appliance.Control.Electricity GET: the answer's sign does not verify",
            ],
        ),
    ];
    for (fault, lines) in cases {
        let mark = common::log_mark();
        r.sim.set_fault(fault);
        // A reading that would show if a bad answer got through.
        r.sim.set_load_w(4000.0);
        for line in lines {
            wait_for(&format!("{fault:?}: log line `{line}`"), WAIT, || {
                common::logs_since(mark).contains(line).then_some(())
            })
            .await;
        }
        for (id, kept) in [
            ("sensor.m1_power", "100"),
            ("switch.m1_switch", "on"),
            ("sensor.m1_energy_today", "500"),
            ("binary_sensor.m1_problem", "off"),
        ] {
            assert_eq!(
                state(b, id),
                kept,
                "{fault:?}: {id} keeps its last good state"
            );
        }
        r.sim.set_fault(MerossFault::None);
        wait_state(b, "sensor.m1_power", "4000").await;
        r.sim.set_load_w(100.0);
        wait_state(b, "sensor.m1_power", "100").await;
    }
    assert_eq!(common::panics_since(panics), Vec::<String>::new());
    r.bridge.stop().await;
}

/// `min_off_s` is the switch's safety envelope: a turn_on within it of the
/// bridge's start (the off time before is unknown) is refused, and nothing
/// reaches the plug (before, the switch had no envelope at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_off_s_guards_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let (_sim_power, off) = shutdown::channel();
    let (sim, _task) = meross_sim::spawn(
        hearth::clock::Clock::real(),
        MerossSimConfig {
            key: KEY.into(),
            ..MerossSimConfig::default()
        },
        off,
    )
    .unwrap();
    let c = MerossConfig {
        id: "m1".into(),
        name: "Fridge plug".into(),
        url: sim.url(),
        key: Some(Secret::new(KEY)),
        channel: 0,
        poll_interval_s: 0.2,
        min_off_s: Some(600.0),
    };
    let b = common::history::start_bridge(dir.path(), |conf| conf.meross.push(c)).await;
    wait_state(&b, "switch.m1_switch", "off").await;
    let e = call(&b, "turn_on").await.unwrap_err().to_string();
    assert!(e.contains("600"), "{e}");
    assert!(!sim.relay(), "nothing reached the plug");
    b.stop().await;
}
