//! Energy accounting end to end (issue 15, item 4): the Shelly Pro EM twin
//! (HTTP RPC on loopback, a grid clamp and an inverted PV clamp) read by
//! the `shelly_em` driver, its entities in HA discovery on the embedded
//! broker, and `[energy]` turning the meters into today's figures: known
//! numbers (import 10 kWh, export 3 kWh, solar 8 kWh), cost per tariff
//! period, a counter reset on the device, a restart, and the recorder's
//! statistics of the daily sensors.
//!
//! The bridge runs on the real clock (polls every 0.2 s); the twin's meter
//! runs on a manual clock, so 1 h of its hand is exact energy (10 kW → 10
//! kWh). The energy day is local to a fixed offset chosen so that it is
//! about noon there: the test never crosses a local midnight.

use crate::common;

use common::{Observer, wait_for};
use hearth::app::Bridge;
use hearth::clock::{Clock, ManualTime};
use hearth::drivers::shelly_em::{ChannelConfig, Model, Role, ShellyEmConfig};
use hearth::energy::EnergyConfig;
use hearth::entity::{Component, EntitySpec};
use hearth::shutdown::{self, ShutdownTrigger};
use hearth::twin::shelly_em_sim::{self, EmSim, EmSimConfig};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const HOUR: i64 = 3_600_000;

struct Twin {
    sim: EmSim,
    hand: ManualTime,
    addr: SocketAddr,
    power: ShutdownTrigger,
}

impl Twin {
    fn start() -> Twin {
        let (clock, hand) = Clock::manual(1_765_000_000_000);
        let (power, off) = shutdown::channel();
        let (sim, addr, _task) = shelly_em_sim::spawn(
            clock,
            EmSimConfig {
                mac: "a0b1c2d3e4f5".into(),
                model: Model::Proem,
                voltage_v: 230.0,
            },
            off,
        )
        .unwrap();
        Twin {
            sim,
            hand,
            addr,
            power,
        }
    }

    /// Runs the meter's clock on by `h` hours at the powers set.
    fn hours(&self, h: f64) {
        self.hand.set(self.hand.get() + (h * HOUR as f64) as i64);
    }
}

/// Pro EM: `em1:0` on the grid (`sensor.grid_*`), `em1:1` on the PV line
/// mounted the other way round (production reads as returned energy).
fn meter(addr: SocketAddr) -> ShellyEmConfig {
    ShellyEmConfig {
        id: "meter".into(),
        name: "Main meter".into(),
        host: addr.to_string(),
        model: Model::Proem,
        poll_interval_s: 0.2,
        channels: vec![
            ChannelConfig {
                channel: 0,
                role: Role::Grid,
                key: None,
                entity_prefix: Some("grid".into()),
                invert: false,
                name: None,
            },
            ChannelConfig {
                channel: 1,
                role: Role::Production,
                key: None,
                entity_prefix: Some("pv".into()),
                invert: true,
                name: None,
            },
        ],
    }
}

/// A fixed offset where it is 10:00–14:00 now.
fn midday_offset() -> String {
    let now_h = (Clock::real().now_ms() / HOUR).rem_euclid(24);
    let off = (12 - now_h + 36) % 24 - 12; // −12 … +11
    format!("{}{:02}:00", if off < 0 { '-' } else { '+' }, off.abs())
}

fn energy() -> EnergyConfig {
    toml::from_str(&format!(
        "grid_import = \"sensor.grid_import_energy\"\ngrid_export = \"sensor.grid_export_energy\"\n\
         solar_production = \"sensor.pv_energy\"\ntimezone = \"{}\"\n",
        midday_offset()
    ))
    .unwrap()
}

async fn start(dir: &Path, twin: &Twin, accounting: bool) -> Bridge {
    let m = meter(twin.addr);
    let b = common::history::start_bridge(dir, |c| {
        c.shelly_em.push(m);
        if accounting {
            c.energy = Some(energy());
        }
    })
    .await;
    // The tariff as the tariff feed publishes it (price, `period`).
    b.store
        .upsert_device("test", common::history::device("tariff"))
        .unwrap();
    b.store
        .upsert_entity(EntitySpec::new("tariff", "price", Component::Sensor))
        .unwrap();
    b
}

fn tariff(b: &Bridge, price: f64, period: &str) {
    let mut a = Map::new();
    a.insert("period".into(), json!(period));
    b.store
        .set_state("sensor.tariff_price", price.to_string(), a)
        .unwrap();
}

async fn wait_state(b: &Bridge, id: &str, want: &str) {
    let store = b.store.clone();
    let got = common::try_wait(WAIT, || store.get(id).filter(|s| s.state == want)).await;
    assert!(
        got.is_some(),
        "{id}: want {want}, got {:?}",
        b.store.get(id).map(|s| s.state)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_twin_feeds_the_driver_and_its_meters_are_discovered_as_energy_sensors() {
    let dir = tempfile::tempdir().unwrap();
    let twin = Twin::start();
    let b = start(dir.path(), &twin, false).await;
    let ha = Observer::connect(&b.broker, "homeassistant/device/meter/config").await;
    twin.sim.set_power(0, 1200.0);
    twin.sim.set_power(1, -2000.0); // the PV clamp reads production as returned
    wait_state(&b, "sensor.grid_power", "1200").await;
    wait_state(&b, "sensor.pv_power", "2000").await;
    wait_state(&b, "sensor.grid_current", "5.217").await;
    wait_state(&b, "sensor.grid_voltage", "230").await;
    twin.hours(0.5);
    wait_state(&b, "sensor.grid_import_energy", "600").await;
    wait_state(&b, "sensor.grid_export_energy", "0").await;
    wait_state(&b, "sensor.pv_energy", "1000").await;
    twin.sim.set_power(0, -500.0);
    twin.hours(1.0);
    wait_state(&b, "sensor.grid_power", "-500").await;
    wait_state(&b, "sensor.grid_export_energy", "500").await;

    // HA discovery: one device config with every sensor, classed for the
    // energy dashboard.
    let config = wait_for("the meter's discovery config", WAIT, || {
        ha.current()
            .get("homeassistant/device/meter/config")
            .and_then(|p| serde_json::from_slice::<Value>(p).ok())
    })
    .await;
    let dev = &config["dev"];
    assert!(
        dev["mf"] == "Shelly" || dev["manufacturer"] == "Shelly",
        "{config}"
    );
    let cmps = config["cmps"].as_object().unwrap();
    let by_id = |id: &str| {
        cmps.values()
            .find(|c| c["default_entity_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {config}"))
            .clone()
    };
    for (id, class, unit, state_class) in [
        ("sensor.grid_power", "power", "W", "measurement"),
        (
            "sensor.grid_import_energy",
            "energy",
            "Wh",
            "total_increasing",
        ),
        (
            "sensor.grid_export_energy",
            "energy",
            "Wh",
            "total_increasing",
        ),
        ("sensor.pv_power", "power", "W", "measurement"),
        ("sensor.pv_energy", "energy", "Wh", "total_increasing"),
    ] {
        let c = by_id(id);
        assert_eq!(c["p"], "sensor", "{id}");
        assert_eq!(c["device_class"], class, "{id}");
        assert_eq!(c["unit_of_measurement"], unit, "{id}");
        assert_eq!(c["state_class"], state_class, "{id}");
    }
    assert_eq!(cmps.len(), 9, "grid: 5 sensors, pv: 4");

    // The meter powered off: unavailable after three failed polls.
    twin.power.trigger();
    wait_state(&b, "sensor.grid_import_energy", "unavailable").await;
    wait_state(&b, "sensor.pv_power", "unavailable").await;
    b.stop().await;
}

/// A channel the meter does not have (`em1:2` on a Pro EM): the device's
/// refusal is logged, the other channels are read, the device stays
/// available.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_the_meter_lacks_is_logged_and_the_others_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let twin = Twin::start();
    let mark = common::log_mark();
    let mut m = meter(twin.addr);
    m.channels[1].channel = 2;
    let b = common::history::start_bridge(dir.path(), |c| c.shelly_em.push(m)).await;
    twin.sim.set_power(0, 700.0);
    wait_state(&b, "sensor.grid_power", "700").await;
    wait_for("the refusal logged", WAIT, || {
        let logs = common::logs_since(mark);
        logs.lines()
            .find(|l| l.contains("EM1.GetStatus id=2") && l.contains("Bad id=2"))
            .map(str::to_string)
    })
    .await;
    // Several polls later: still available, the missing channel unknown.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(b.store.get("sensor.grid_power").unwrap().state, "700");
    let pv = b.store.get("sensor.pv_power").map(|s| s.state);
    assert!(pv.as_deref().is_none_or(|s| s == "unknown"), "pv {pv:?}");
    twin.power.trigger();
    b.stop().await;
}

/// Every channel refused (`em1:2` and `em1:3` on a Pro EM): no value is
/// read, so the polls failed and the meter goes offline, not online with
/// nothing (or frozen values) behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_meter_whose_every_channel_is_refused_goes_offline() {
    let dir = tempfile::tempdir().unwrap();
    let twin = Twin::start();
    let mut m = meter(twin.addr);
    m.channels[0].channel = 2;
    m.channels[1].channel = 3;
    let b = common::history::start_bridge(dir.path(), |c| c.shelly_em.push(m)).await;
    let store = b.store.clone();
    // Three failed polls at 0.2 s.
    let offline = common::try_wait(Duration::from_secs(5), || {
        store.device("meter").filter(|(_, available)| !available)
    })
    .await;
    assert!(
        offline.is_some(),
        "every channel refused, yet the meter is still available"
    );
    twin.power.trigger();
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_from_the_twin_is_counted_priced_survives_a_counter_reset_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let twin = Twin::start();
    let b = start(dir.path(), &twin, true).await;
    // The meters' first readings are the baselines.
    wait_state(&b, "sensor.grid_import_energy", "0").await;
    wait_state(&b, "sensor.pv_energy", "0").await;
    wait_state(&b, "sensor.energy_grid_import_today", "0").await;
    wait_state(&b, "sensor.energy_self_consumption_today", "unknown").await;

    // 4 kWh at HC 0.20 €, 6 kWh at HP 0.30 €.
    tariff(&b, 0.2, "HC");
    twin.sim.set_power(0, 4000.0);
    twin.hours(1.0);
    wait_state(&b, "sensor.energy_grid_import_today", "4").await;
    tariff(&b, 0.3, "HP");
    twin.sim.set_power(0, 6000.0);
    twin.hours(1.0);
    wait_state(&b, "sensor.energy_grid_import_today", "10").await;
    // The sun: 8 kWh produced, 3 kWh of it exported. The two clamps are
    // read one after the other, so a step of both at once can show export
    // before production (consumption would dip) or production before
    // export (a peak the `total_increasing` consumption then holds until
    // it is reached): steps of one meter at a time, as a few seconds'
    // polls of real energy are.
    twin.sim.set_power(0, 0.0);
    twin.sim.set_power(1, -5000.0);
    twin.hours(1.0);
    wait_state(&b, "sensor.energy_solar_today", "5").await;
    wait_state(&b, "sensor.energy_consumption_today", "15").await;
    twin.sim.set_power(1, 0.0);
    twin.sim.set_power(0, -3000.0);
    twin.hours(1.0);
    wait_state(&b, "sensor.energy_grid_export_today", "3").await;
    // 10 + 5 − 3 = 12 now, but consumption never falls within a day.
    wait_state(&b, "sensor.energy_self_consumption_today", "40").await;
    assert_eq!(
        b.store
            .get("sensor.energy_consumption_today")
            .unwrap()
            .state,
        "15"
    );
    twin.sim.set_power(0, 0.0);
    twin.sim.set_power(1, -3000.0);
    twin.hours(1.0);
    for (id, want) in [
        ("sensor.energy_grid_export_today", "3"),
        ("sensor.energy_solar_today", "8"),
        ("sensor.energy_consumption_today", "15"),
        ("sensor.energy_self_consumption_today", "62.5"),
        ("sensor.energy_self_sufficiency_today", "33.3"),
        ("sensor.energy_cost_hc_today", "0.8"),
        ("sensor.energy_cost_hp_today", "1.8"),
        ("sensor.energy_cost_today", "2.6"),
    ] {
        wait_state(&b, id, want).await;
    }
    for (id, class, unit, state_class) in [
        (
            "sensor.energy_grid_import_today",
            Some("energy"),
            "kWh",
            "total_increasing",
        ),
        (
            "sensor.energy_consumption_today",
            Some("energy"),
            "kWh",
            "total_increasing",
        ),
        (
            "sensor.energy_cost_hp_today",
            Some("monetary"),
            "EUR",
            "total",
        ),
        (
            "sensor.energy_self_sufficiency_today",
            None,
            "%",
            "measurement",
        ),
    ] {
        let spec = b.store.spec(id).unwrap();
        assert_eq!(spec.device_class.as_deref(), class, "{id}");
        assert_eq!(spec.unit.as_deref(), Some(unit), "{id}");
        assert_eq!(spec.state_class.as_deref(), Some(state_class), "{id}");
    }

    // The device's counters are reset (EM1Data.ResetCounters) and count
    // 1 kWh before the driver's next poll: HA's rule reads the fall as a
    // new cycle and that kWh still counts.
    twin.sim.set_power(1, 0.0);
    twin.sim.set_power(0, 0.0);
    twin.sim.set_counters(0, 1000.0, 0.0);
    wait_state(&b, "sensor.grid_import_energy", "1000").await;
    wait_state(&b, "sensor.grid_export_energy", "0").await;
    wait_state(&b, "sensor.energy_grid_import_today", "11").await;
    wait_state(&b, "sensor.energy_cost_today", "2.9").await;
    wait_state(&b, "sensor.energy_grid_export_today", "3").await;
    b.stop().await;

    // 2 kWh while the bridge is down; after the restart the day's totals
    // come back and those 2 kWh are counted once, priced at the last tariff
    // seen (HP 0.30 €: the tariff entity has no price yet after the start).
    twin.sim.set_power(0, 2000.0);
    twin.hours(1.0);
    twin.sim.set_power(0, 0.0);
    let b = start(dir.path(), &twin, true).await;
    wait_state(&b, "sensor.energy_grid_import_today", "13").await;
    for (id, want) in [
        ("sensor.energy_grid_export_today", "3"),
        ("sensor.energy_solar_today", "8"),
        ("sensor.energy_consumption_today", "18"),
        ("sensor.energy_self_consumption_today", "62.5"),
        ("sensor.energy_cost_hc_today", "0.8"),
        ("sensor.energy_cost_hp_today", "2.7"),
        ("sensor.energy_cost_today", "3.5"),
    ] {
        wait_state(&b, id, want).await;
    }
    // A few more polls: nothing is counted twice.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        b.store
            .get("sensor.energy_grid_import_today")
            .unwrap()
            .state,
        "13"
    );
    b.stop().await;
    twin.power.trigger();

    // The recorder's hourly statistics of the daily sensor (state, sum):
    // nothing to do in the energy module, it is a total_increasing sensor.
    let conn = hearth::recorder::schema::open_writer(&dir.path().join("hearth.db")).unwrap();
    let later = Clock::real().now_ms() + 2 * HOUR;
    hearth::recorder::statistics::compile(&conn, later, Duration::from_secs(1), 30 * 24 * HOUR)
        .unwrap();
    let (state, sum): (f64, f64) = conn
        .query_row(
            "SELECT s.state, s.sum FROM statistics s JOIN entities e USING (metadata_id)
             WHERE e.entity_id = 'sensor.energy_grid_import_today' ORDER BY s.start_ms DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((state, sum), (13.0, 13.0));
}
