//! The Shelly Gen1 driver against its twin (a Plug S), over real sockets:
//! HTTP on loopback and MQTT on the embedded broker. Switching over both
//! transports, metering with the watt-minute → Wh conversion, the
//! device's counter reset and the bridge's restart keeping energy
//! monotonic, push latency while polling is at 60 s, offline and back,
//! malformed payloads rejected with the last good state kept.

use crate::common;

use common::wait_for;
use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::drivers::shelly_gen1::ShellyGen1Config;
use hearth::entity::{ServiceError, StoreEvent};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::shelly_gen1_sim::{Gen1Model, Gen1SimConfig, ShellyGen1Sim};
use std::path::Path;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);
const SWITCH: &str = "switch.g1_relay0";
const POWER: &str = "sensor.g1_relay0_power";
const ENERGY: &str = "sensor.g1_relay0_energy";
const COUNTER: &str = "sensor.g1_relay0_device_counter";

struct Rig {
    bridge: Bridge,
    sim: ShellyGen1Sim,
    _sim_power: ShutdownTrigger,
    dir: tempfile::TempDir,
}

fn cfg(sim: &ShellyGen1Sim, push: bool, poll_interval_s: f64) -> ShellyGen1Config {
    ShellyGen1Config {
        id: "g1".into(),
        name: "Desk plug".into(),
        url: sim.url(),
        mqtt_id: push.then(|| sim.mqtt_id().to_string()),
        poll_interval_s,
        min_off_s: None,
    }
}

async fn start_bridge(dir: &Path, port: u16, c: ShellyGen1Config) -> Bridge {
    common::history::start_bridge(dir, |conf| {
        conf.mqtt.port = port;
        conf.shelly_gen1.push(c);
    })
    .await
}

/// The twin (a Plug S drawing 60 W when on) and a bridge driving it; with
/// `push`, the twin is on the bridge's broker and `mqtt_id` is set.
async fn rig(push: bool, poll_interval_s: f64) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let (sim_power, off) = shutdown::channel();
    let mut sc = Gen1SimConfig::plug_s("C45BBEC18B12", 60.0);
    if push {
        // The twin keeps reconnecting until the bridge's broker is up.
        sc.mqtt = Some(BrokerAddress::local(port));
    }
    let sim = ShellyGen1Sim::start(hearth::clock::Clock::real(), sc, off).unwrap();
    let bridge = start_bridge(dir.path(), port, cfg(&sim, push, poll_interval_s)).await;
    if push {
        // The first SUBACK is for the relay command topic.
        wait_for("the twin on the broker", WAIT, || {
            sim.mqtt_ready().then_some(())
        })
        .await;
    }
    Rig {
        bridge,
        sim,
        _sim_power: sim_power,
        dir,
    }
}

async fn call(bridge: &Bridge, service: &str) -> Result<(), ServiceError> {
    common::call(bridge, "switch", service, SWITCH, serde_json::json!({})).await
}

async fn wait_state(bridge: &Bridge, entity_id: &str, want: &str) {
    common::wait_state(bridge, entity_id, want, WAIT).await;
}

fn state(bridge: &Bridge, entity_id: &str) -> String {
    common::state(bridge, entity_id).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_switching_reaches_the_plug_and_watt_minutes_read_as_wh() {
    let r = rig(false, 0.2).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    call(b, "turn_on").await.unwrap();
    assert!(r.sim.relay(), "the twin's relay closed");
    assert_eq!(r.sim.commands(), (0, 1), "one command, over HTTP");
    assert_eq!(state(b, SWITCH), "on", "confirmed by the answered ison");
    wait_state(b, POWER, "60").await;
    // 6000 watt-minutes on the device = 100 Wh in HA.
    r.sim.set_counter_wmin(6000.0);
    wait_state(b, ENERGY, "100").await;
    wait_state(b, COUNTER, "100").await;
    r.sim.set_counter_wmin(6090.0);
    wait_state(b, ENERGY, "101.5").await;
    call(b, "toggle").await.unwrap();
    assert!(!r.sim.relay());
    wait_state(b, POWER, "0").await;

    for (id, class, unit, state_class) in [
        (POWER, "power", "W", Some("measurement")),
        (ENERGY, "energy", "Wh", Some("total_increasing")),
        (COUNTER, "energy", "Wh", None),
    ] {
        let spec = b.store.spec(id).unwrap_or_else(|| panic!("{id} exists"));
        assert_eq!(spec.device_class.as_deref(), Some(class), "{id}");
        assert_eq!(spec.unit.as_deref(), Some(unit), "{id}");
        assert_eq!(spec.state_class.as_deref(), state_class, "{id}");
    }
    assert_eq!(
        b.store.spec(COUNTER).unwrap().entity_category.as_deref(),
        Some("diagnostic")
    );
    let (device, _) = b.store.device("g1").unwrap();
    assert_eq!(device.model, "Plug S", "named from GET /shelly");
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mqtt_commands_go_to_the_command_topic_and_are_confirmed_by_the_echo() {
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    call(b, "turn_on").await.unwrap();
    assert!(r.sim.relay());
    assert_eq!(state(b, SWITCH), "on", "the echo landed before the reply");
    call(b, "toggle").await.unwrap();
    assert!(!r.sim.relay());
    assert_eq!(state(b, SWITCH), "off");
    assert_eq!(r.sim.commands(), (2, 0), "both over MQTT, none over HTTP");
    // Pushed metering: power and the watt-minute counter.
    call(b, "turn_on").await.unwrap();
    wait_state(b, POWER, "60").await;
    r.sim.set_counter_wmin(1200.0);
    wait_state(b, ENERGY, "20").await;

    // A device that does not echo: the command fails, named.
    r.sim.set_offline(true);
    wait_state(b, SWITCH, "unavailable").await;
    let e = call(b, "turn_off").await.unwrap_err().to_string();
    assert!(e.contains(SWITCH), "{e}");
    assert!(r.sim.relay(), "nothing reached the device");
    r.bridge.stop().await;
}

/// A command for a relay the bridge believes is already in that state is
/// confirmed by the device (HTTP `/relay/<n>?turn=`, whose answer is the
/// relay's state): a stale belief (a lost MQTT message) used to make it a
/// silent no-op that "succeeded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_matching_a_stale_belief_still_reaches_the_device() {
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    call(b, "turn_on").await.unwrap();
    assert_eq!(state(b, SWITCH), "on");
    // Switched off at the device, its message lost: the bridge still says
    // on; and the device drops MQTT commands now.
    r.sim.set_relay_unpublished(false);
    r.sim.set_mqtt_deaf(true);
    call(b, "turn_on").await.unwrap();
    assert!(r.sim.relay(), "the device's relay is on again");
    assert_eq!(r.sim.commands(), (1, 1), "the second over HTTP");
    r.sim.set_mqtt_deaf(false);
    assert_eq!(state(b, SWITCH), "on");
    // Believed off while on: turn_off reaches it too.
    r.sim.set_relay_unpublished(true);
    call(b, "turn_off").await.unwrap();
    call(b, "turn_off").await.unwrap();
    assert!(!r.sim.relay());
    r.bridge.stop().await;
}

/// Push is primary: with HTTP polling at 60 s, a change at the device is
/// in the store within a second, and no poll carried it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_changes_land_within_a_second_while_polling_is_at_60_s() {
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    wait_state(b, POWER, "0").await;
    let polls = r.sim.status_requests();
    let mut worst = Duration::ZERO;
    for (i, load) in [60.0, 250.0, 1800.5, 5.0].into_iter().enumerate() {
        let t0 = Instant::now();
        if i == 0 {
            r.sim.set_relay(true); // the button on the plug
            wait_state(b, SWITCH, "on").await;
        } else {
            r.sim.set_load(load);
        }
        wait_state(b, POWER, &hearth::entity::format_number(load, 2)).await;
        worst = worst.max(t0.elapsed());
    }
    println!("shelly_gen1 push latency, twin change → store: worst of 4 {worst:?}");
    assert!(worst < Duration::from_secs(1), "push took {worst:?}");
    assert_eq!(
        r.sim.status_requests(),
        polls,
        "no HTTP poll happened meanwhile"
    );
    r.bridge.stop().await;
}

/// The device reboots (its counter back to 0): the energy total in HA
/// continues from where it was and never goes down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_counter_reset_keeps_the_energy_total_monotonic() {
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    let (_, mut events) = b.store.subscribe();
    wait_state(b, SWITCH, "off").await;
    r.sim.set_counter_wmin(6000.0);
    wait_state(b, ENERGY, "100").await;
    r.sim.reboot();
    wait_state(b, SWITCH, "unavailable").await;
    // Back with the counter at 0: the total stays at 100 Wh.
    wait_state(b, COUNTER, "0").await;
    wait_state(b, ENERGY, "100").await;
    r.sim.set_counter_wmin(600.0);
    wait_state(b, ENERGY, "110").await;
    wait_state(b, COUNTER, "10").await;
    let mut seen = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let StoreEvent::StateChanged(c) = ev
            && c.entity_id == ENERGY
            && let Some(v) = c.new_state.as_ref().and_then(|s| s.number())
        {
            seen.push(v);
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "energy went backwards: {seen:?}"
    );
    assert!(seen.contains(&100.0), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(110.0), "{seen:?}");
    r.bridge.stop().await;
}

/// The total survives the bridge's restart (from the recorder), whether
/// the device kept counting meanwhile or rebooted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_energy_total_survives_a_bridge_restart() {
    let r = rig(false, 0.2).await;
    r.sim.set_counter_wmin(6000.0);
    wait_state(&r.bridge, ENERGY, "100").await;
    wait_state(&r.bridge, COUNTER, "100").await;
    r.bridge.stop().await;

    // Same boot: 600 more watt-minutes while the bridge was away.
    r.sim.set_counter_wmin(6600.0);
    let c = cfg(&r.sim, false, 0.2);
    let b = start_bridge(r.dir.path(), EmbeddedBroker::free_port(), c.clone()).await;
    wait_state(&b, COUNTER, "110").await;
    assert_eq!(state(&b, ENERGY), "110", "continued, not restarted");
    b.stop().await;

    // Rebooted meanwhile, then 60 watt-minutes: 110 + 1 Wh.
    r.sim.reboot();
    wait_for("the twin back from its reboot", WAIT, || {
        r.sim.is_online().then_some(())
    })
    .await;
    r.sim.set_counter_wmin(60.0);
    let b = start_bridge(r.dir.path(), EmbeddedBroker::free_port(), c).await;
    wait_state(&b, COUNTER, "1").await;
    assert_eq!(state(&b, ENERGY), "111");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_going_offline_is_unavailable_and_comes_back() {
    // Over MQTT: its `online` = false.
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    wait_state(b, POWER, "0").await;
    r.sim.set_offline(true);
    wait_state(b, SWITCH, "unavailable").await;
    wait_state(b, POWER, "unavailable").await;
    let e = call(b, "turn_on").await.unwrap_err().to_string();
    assert!(e.contains(SWITCH), "{e}");
    assert!(!r.sim.relay());
    r.sim.set_relay(true); // switched by hand while away
    r.sim.set_offline(false);
    wait_state(b, SWITCH, "on").await;
    wait_state(b, POWER, "60").await;
    r.bridge.stop().await;

    // Over HTTP: three failed polls.
    let r = rig(false, 0.2).await;
    let b = &r.bridge;
    wait_state(b, SWITCH, "off").await;
    r.sim.set_offline(true);
    wait_state(b, SWITCH, "unavailable").await;
    r.sim.set_offline(false);
    wait_state(b, SWITCH, "off").await;
    r.bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_are_rejected_by_name_and_the_last_good_state_stays() {
    let panics = common::panic_mark();
    let r = rig(true, 60.0).await;
    let b = &r.bridge;
    // Entities appear with the device's first answer.
    wait_state(b, SWITCH, "off").await;
    call(b, "turn_on").await.unwrap();
    wait_state(b, POWER, "60").await;
    r.sim.set_counter_wmin(6000.0);
    wait_state(b, ENERGY, "100").await;
    let mark = common::log_mark();
    let base = r.sim.base();
    let cases: [(&str, &[u8], &str); 6] = [
        (
            "relay/0/power",
            b"abc",
            "relay/0/power: expected a number of W within \u{b1}100 kW, got `abc`",
        ),
        (
            "relay/0/power",
            b"1e300",
            "relay/0/power: expected a number of W within \u{b1}100 kW, got `1e300`",
        ),
        (
            "relay/0/energy",
            b"-5",
            "relay/0/energy: expected a number of watt-minutes",
        ),
        (
            "relay/0/energy",
            b"\xff\xfe",
            "relay/0/energy: expected UTF-8 text",
        ),
        (
            "relay/0",
            b"maybe",
            "relay/0: expected on, off or overpower, got `maybe`",
        ),
        ("online", b"{\"tru", "online: expected true or false"),
    ];
    for (suffix, payload, _) in cases {
        r.sim.inject(suffix, payload);
    }
    for (_, _, line) in cases {
        let want = format!("shelly_gen1 `g1` MQTT {base}/{line}");
        wait_for(&format!("log line `{want}`"), WAIT, || {
            common::logs_since(mark).contains(&want).then_some(())
        })
        .await;
    }
    for (id, want) in [(POWER, "60"), (ENERGY, "100"), (SWITCH, "on")] {
        assert_eq!(state(b, id), want, "{id}: the last good state stays");
    }
    r.bridge.stop().await;

    // Over HTTP: a truncated and a wrongly typed /status.
    let r = rig(false, 0.2).await;
    let b = &r.bridge;
    // Entities appear with the device's first answer.
    wait_state(b, SWITCH, "off").await;
    call(b, "turn_on").await.unwrap();
    wait_state(b, POWER, "60").await;
    let mark = common::log_mark();
    let url = format!("{}/status", r.sim.url());
    for (body, line) in [
        (
            &br#"{"relays":[{"ison":false}],"meters":[{"pow"#[..],
            "expected a JSON object",
        ),
        (
            br#"{"relays":[{"ison":false}],"meters":[{"power":"abc","is_valid":true,"total":1}]}"#,
            "meters[0].power: expected a number of W within \u{b1}100 kW, got a string",
        ),
        (
            br#"{"relays":[{"ison":false}],"meters":[{"power":-2e5,"is_valid":true,"total":1}]}"#,
            "meters[0].power: expected a number of W within \u{b1}100 kW, got -200000.0",
        ),
    ] {
        r.sim.set_status_body(Some(body));
        let want = format!("shelly_gen1 `g1` GET {url}: {line}");
        wait_for(&format!("log line `{want}`"), WAIT, || {
            common::logs_since(mark).contains(&want).then_some(())
        })
        .await;
        assert_eq!(state(b, POWER), "60");
        assert_eq!(state(b, SWITCH), "on", "not the bad answer's relay");
    }
    r.sim.set_status_body(None);
    r.sim.set_load(75.0);
    wait_state(b, POWER, "75").await;
    assert_eq!(common::panics_since(panics), Vec::<String>::new());
    r.bridge.stop().await;
}

/// A Shelly EM: signed power per channel and its two Wh counters, pushed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_em_reads_signed_power_and_its_consumed_and_returned_counters() {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let (_sim_power, off) = shutdown::channel();
    let sc = Gen1SimConfig {
        model: Gen1Model::Em,
        mqtt: Some(BrokerAddress::local(port)),
        update_period_s: 0.2,
        ..Gen1SimConfig::plug_s("C45BBE0A0B0C", 500.0)
    };
    let sim = ShellyGen1Sim::start(hearth::clock::Clock::real(), sc, off).unwrap();
    assert_eq!(sim.mqtt_id(), "shellyem-0A0B0C");
    let b = start_bridge(dir.path(), port, cfg(&sim, true, 60.0)).await;
    wait_for("the twin on the broker", WAIT, || {
        sim.mqtt_ready().then_some(())
    })
    .await;
    wait_state(&b, SWITCH, "off").await;
    wait_state(&b, "sensor.g1_emeter0_voltage", "230").await;
    sim.set_emeter_power(-1500.0); // a PV feed on channel 2
    call(&b, "turn_on").await.unwrap();
    wait_state(&b, "sensor.g1_emeter1_power", "-1500").await;
    wait_state(&b, "sensor.g1_emeter0_power", "500").await;
    let store = b.store.clone();
    let returned = wait_for("returned energy counted", WAIT, || {
        store
            .get("sensor.g1_emeter1_energy_returned")
            .and_then(|s| s.number())
            .filter(|v| *v > 0.1)
    })
    .await;
    assert!(
        returned <= sim.emeter_wh(1).1 + 0.01,
        "{returned} Wh vs the twin's {:?}",
        sim.emeter_wh(1)
    );
    assert_eq!(state(&b, "sensor.g1_emeter1_energy"), "0");
    let spec = b.store.spec("sensor.g1_emeter1_energy_returned").unwrap();
    assert_eq!(spec.state_class.as_deref(), Some("total_increasing"));
    assert!(b.store.spec(POWER).is_none(), "an EM has no relay meter");
    let (device, _) = b.store.device("g1").unwrap();
    assert_eq!(device.model, "EM");
    b.stop().await;
}
