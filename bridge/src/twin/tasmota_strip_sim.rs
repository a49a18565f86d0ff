//! A simulated Tasmota multi-relay metered power strip, speaking Tasmota's
//! MQTT API on a real broker connection, for the `tasmota_strip` driver.
//!
//! Behaviour follows Tasmota's docs ("Commands": `Power<x>`; "MQTT":
//! `stat/`/`tele/` topics; "Power Monitoring" and `SetOption129`):
//!
//! - Subscribes `cmnd/<topic>/+` (command names case-insensitive, as
//!   Tasmota matches them). `POWER<n>` with `ON`/`1`, `OFF`/`0`,
//!   `TOGGLE`/`2` switches relay `n` (`POWER` is relay 1); an empty
//!   payload asks for its state. Either way it answers
//!   `stat/<topic>/RESULT` `{"POWER<n>":"ON"}` and `stat/<topic>/POWER<n>`
//!   `ON`. `STATE` answers RESULT with the whole state object. A relay the
//!   strip does not have, or any other command: `{"Command":"Unknown"}`.
//! - Every `tele_period_s` (simulated time) it publishes `tele/<topic>/STATE`
//!   (`POWER1`…) and `tele/<topic>/SENSOR` with `ENERGY`: arrays, one value
//!   per outlet (`SimMeter::PerChannel`, Tasmota with `SetOption129 1`), or
//!   single numbers for the whole strip (`SimMeter::Total`). `Total`,
//!   `Today` in kWh (3 decimals), `Power` W (whole), `Current` A (3
//!   decimals), one `Voltage`.
//! - `tele/<topic>/LWT` `Online` (retained) on every connection, last will
//!   `Offline` (retained): stopping the twin drops the socket and the broker
//!   publishes `Offline`, as when a real strip loses power.
//!
//! Simplifications: loads are resistive (power factor 1, so
//! `ApparentPower` = `Power`, `ReactivePower` 0), each outlet's load is a
//! constant set by the test (no charger curve), the mains voltage is
//! constant, `Time` is omitted.
//!
//! Breakers: with [`StripSimConfig::breaker`] the strip has its own
//! IEC 60898-1 breaker ([`breaker`](super::breaker)), and with
//! [`StripSimConfig::circuit`] it hangs under a circuit shared with other
//! strips ([`circuit`](super::circuit)). Each outlet's demand is its load
//! over the voltage while its relay is on; when a breaker above it trips,
//! the outlet reads 0 W / 0 A and counts no energy from the trip's
//! moment, its relay unchanged, until the breaker is reset. The trip is
//! logged (`twin breaker `<topic>` tripped …`) and readable through
//! [`StripSim::cut`] and [`StripSim::breaker_trips`]. Without either, any
//! load flows whatever its current.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, QoS};
use serde_json::{Map, Value, json};
use tokio::task::JoinHandle;

use super::breaker::BreakerSpec;
use super::circuit::{CircuitError, CircuitSlot, TripEvent};
use super::outlets::{MeteredOutlets, Supply};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

const RECONNECT_WALL: Duration = Duration::from_millis(500);

/// How the strip meters its outlets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimMeter {
    /// One meter channel per outlet (arrays in `ENERGY`).
    PerChannel,
    /// One meter for the strip (single numbers in `ENERGY`).
    Total,
}

#[derive(Debug, Clone)]
pub struct StripSimConfig {
    /// Tasmota's `Topic`.
    pub topic: String,
    /// MQTT client id.
    pub client_id: String,
    /// W drawn by each outlet's load when its relay is on, outlet 1 first;
    /// its length is the number of relays.
    pub loads_w: Vec<f64>,
    /// V, constant.
    pub voltage_v: f64,
    pub meter: SimMeter,
    /// s of simulated time between `tele/` reports (Tasmota's `TelePeriod`,
    /// 300 s by default; tests use less).
    pub tele_period_s: f64,
    /// The strip's own breaker (a node named `<topic>` in the tree);
    /// `None`: no breaker of its own.
    pub breaker: Option<BreakerSpec>,
    /// The circuit the strip hangs under, shared with other devices;
    /// `None`: the strip's breaker (if any) is a root. Its outlets are
    /// named `<topic>/<n>` in the tree.
    pub circuit: Option<CircuitSlot>,
}

/// A handle on the running strip, for tests and demos. Cheap to clone.
#[derive(Clone)]
pub struct StripSim {
    state: Arc<Mutex<MeteredOutlets>>,
    clock: Clock,
}

impl StripSim {
    fn lock(&self) -> std::sync::MutexGuard<'_, MeteredOutlets> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether relay `n` (1-based) is closed.
    pub fn relay(&self, n: usize) -> bool {
        self.lock().relays.get(n - 1).copied().unwrap_or(false)
    }

    /// Sets what outlet `n` draws when on (W).
    pub fn set_load(&self, n: usize, watts: f64) {
        let now = self.clock.now_ms();
        self.lock().change(now, |s| {
            if let Some(l) = s.loads_w.get_mut(n - 1) {
                *l = watts;
            }
        });
    }

    /// Whether a breaker (the strip's or a circuit's above it) cuts outlet
    /// `n` (1-based) now.
    pub fn cut(&self, n: usize) -> bool {
        let now = self.clock.now_ms();
        n >= 1 && self.lock().cut(n - 1, now)
    }

    /// The trips of the strip's own breaker so far, with their sim ms.
    pub fn breaker_trips(&self) -> Vec<(i64, TripEvent)> {
        let now = self.clock.now_ms();
        self.lock().breaker_trips(now)
    }

    /// Closes the strip's own breaker (no-op without one). A circuit above
    /// is reset through its [`SharedCircuits`].
    pub fn reset_breaker(&self) {
        let now = self.clock.now_ms();
        self.lock().reset_breaker(now);
    }

    /// kWh outlet `n` has delivered.
    pub fn energy_kwh(&self, n: usize) -> f64 {
        let s = self.lock();
        n.checked_sub(1)
            .and_then(|i| s.energy_wh(i))
            .map_or(0.0, |wh| wh / 1000.0)
    }
}

impl StripSim {
    /// The strip at rest (relays off), registered in its circuits.
    pub(crate) fn new(clock: Clock, cfg: &StripSimConfig) -> Result<Self, CircuitError> {
        // Outlets are `<topic>/<n>` in the tree, 1 first.
        let names: Vec<String> = (1..=cfg.loads_w.len())
            .map(|n| format!("{}/{n}", cfg.topic))
            .collect();
        let supply = Supply::attach(&cfg.topic, &names, cfg.breaker, cfg.circuit.as_ref())?;
        Ok(StripSim {
            state: Arc::new(Mutex::new(MeteredOutlets::new(
                cfg.loads_w.clone(),
                cfg.voltage_v,
                supply,
                clock.now_ms(),
            ))),
            clock,
        })
    }
}

/// Connects the strip and runs it until `shutdown`. Fails when the strip
/// cannot join its circuit tree (its topic already names a node there, or
/// the parent is not in it).
pub fn spawn(
    clock: Clock,
    mqtt_host: &str,
    mqtt_port: u16,
    cfg: StripSimConfig,
    shutdown: Shutdown,
) -> Result<(StripSim, JoinHandle<()>), CircuitError> {
    let sim = StripSim::new(clock, &cfg)?;
    let lwt = format!("tele/{}/LWT", cfg.topic);
    let mut opts = MqttOptions::new(cfg.client_id.clone(), mqtt_host, mqtt_port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_last_will(LastWill::new(&lwt, "Offline", QoS::AtLeastOnce, true));
    let (client, eventloop) = AsyncClient::new(opts, 64);
    let task = tokio::spawn(run(sim.clone(), cfg, client, eventloop, shutdown));
    Ok((sim, task))
}

async fn run(
    sim: StripSim,
    cfg: StripSimConfig,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    mut shutdown: Shutdown,
) {
    let cmnd_prefix = format!("cmnd/{}/", cfg.topic);
    let name = &cfg.topic;
    let mut failures = 0u32;
    let mut tele = Box::pin(sim.clock.sleep_ms(cfg.tele_period_s * 1000.0));
    loop {
        let ev = tokio::select! {
            _ = shutdown.wait() => break,
            _ = &mut tele => {
                tele = Box::pin(sim.clock.sleep_ms(cfg.tele_period_s * 1000.0));
                for (topic, payload) in telemetry(&sim, &cfg) {
                    if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload) {
                        tracing::warn!("twin strip {name}: telemetry dropped: {e}");
                    }
                }
                continue;
            }
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                // try_*: awaiting the channel inside the poll loop could deadlock.
                if let Err(e) = client.try_subscribe(format!("{cmnd_prefix}+"), QoS::AtLeastOnce) {
                    tracing::warn!("twin strip {name}: cannot subscribe: {e}");
                }
                let lwt = format!("tele/{}/LWT", cfg.topic);
                if let Err(e) = client.try_publish(lwt, QoS::AtLeastOnce, true, "Online") {
                    tracing::warn!("twin strip {name}: cannot publish LWT: {e}");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let Some(command) = p.topic.strip_prefix(&cmnd_prefix) else {
                    continue;
                };
                for (topic, payload) in answer(&sim, &cfg.topic, command, &p.payload) {
                    if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload) {
                        tracing::warn!("twin strip {name}: answer dropped: {e}");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                if failures == 0 {
                    tracing::warn!("twin strip {name}: MQTT connection lost: {e}; reconnecting");
                }
                failures += 1;
                tokio::select! {
                    _ = shutdown.wait() => break,
                    _ = tokio::time::sleep(RECONNECT_WALL) => {}
                }
            }
        }
    }
    // Dropping the socket without DISCONNECT: the broker sends `Offline`.
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// Tasmota's relay number of a command name (`POWER`, `Power3`).
fn relay_of(command: &str, outlets: usize) -> Option<usize> {
    let upper = command.to_ascii_uppercase();
    let rest = upper.strip_prefix("POWER")?;
    let n = if rest.is_empty() {
        1
    } else {
        rest.parse().ok()?
    };
    (1..=outlets).contains(&n).then_some(n)
}

/// The (topic, payload) answers to one `cmnd/<topic>/<command>`.
pub(crate) fn answer(
    sim: &StripSim,
    topic: &str,
    command: &str,
    payload: &[u8],
) -> Vec<(String, String)> {
    let result = format!("stat/{topic}/RESULT");
    let outlets = sim.lock().len();
    if command.eq_ignore_ascii_case("STATE") {
        return vec![(result, state_object(sim).to_string())];
    }
    let Some(n) = relay_of(command, outlets) else {
        return vec![(result, json!({"Command": "Unknown"}).to_string())];
    };
    let now = sim.clock.now_ms();
    let text = String::from_utf8_lossy(payload).trim().to_ascii_uppercase();
    let on = sim.lock().change(now, |s| {
        let current = s.relays[n - 1];
        let next = match text.as_str() {
            "ON" | "1" => true,
            "OFF" | "0" => false,
            "TOGGLE" | "2" => !current,
            _ => current, // empty (a query) or unrecognised: report only
        };
        s.relays[n - 1] = next;
        next
    });
    let key = format!("POWER{n}");
    vec![
        (result, json!({ key.clone(): on_off(on) }).to_string()),
        (format!("stat/{topic}/{key}"), on_off(on).to_string()),
    ]
}

/// `{"POWER1":"ON",…}`, the relay part of Tasmota's STATE.
fn state_object(sim: &StripSim) -> Value {
    let s = sim.lock();
    let mut obj = Map::new();
    for (i, on) in s.relays.iter().enumerate() {
        obj.insert(format!("POWER{}", i + 1), json!(on_off(*on)));
    }
    Value::Object(obj)
}

/// `tele/<topic>/STATE` and `tele/<topic>/SENSOR` now.
fn telemetry(sim: &StripSim, cfg: &StripSimConfig) -> Vec<(String, String)> {
    let energy = energy_object(sim, cfg.meter, cfg.voltage_v);
    vec![
        (
            format!("tele/{}/STATE", cfg.topic),
            state_object(sim).to_string(),
        ),
        (
            format!("tele/{}/SENSOR", cfg.topic),
            json!({ "ENERGY": energy }).to_string(),
        ),
    ]
}

fn round(v: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (v * k).round() / k
}

/// The `ENERGY` object, per channel or for the whole strip.
pub(crate) fn energy_object(sim: &StripSim, meter: SimMeter, voltage_v: f64) -> Value {
    let now = sim.clock.now_ms();
    let mut s = sim.lock();
    s.integrate(now);
    let n = s.len();
    let power: Vec<f64> = (0..n).map(|i| s.power_w(i, now)).collect();
    let current: Vec<f64> = power.iter().map(|p| p / voltage_v).collect();
    let total: Vec<f64> = (0..n)
        .map(|i| s.energy_wh(i).unwrap_or(0.0) / 1000.0)
        .collect();
    let voltage = voltage_v.round();
    match meter {
        SimMeter::PerChannel => {
            let arr = |v: &[f64], d: i32| json!(v.iter().map(|x| round(*x, d)).collect::<Vec<_>>());
            json!({
                "Total": arr(&total, 3),
                "Today": arr(&total, 3),
                "Power": arr(&power, 0),
                "ApparentPower": arr(&power, 0),
                "ReactivePower": arr(&vec![0.0; n], 0),
                "Factor": arr(&vec![1.0; n], 2),
                "Voltage": voltage,
                "Current": arr(&current, 3),
            })
        }
        SimMeter::Total => {
            let sum = |v: &[f64]| v.iter().sum::<f64>();
            json!({
                "Total": round(sum(&total), 3),
                "Today": round(sum(&total), 3),
                "Power": round(sum(&power), 0),
                "ApparentPower": round(sum(&power), 0),
                "ReactivePower": 0,
                "Factor": 1.0,
                "Voltage": voltage,
                "Current": round(sum(&current), 3),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::circuit::{CircuitTree, SharedCircuits};

    fn config(topic: &str, loads: &[f64]) -> StripSimConfig {
        StripSimConfig {
            topic: topic.into(),
            client_id: topic.into(),
            loads_w: loads.to_vec(),
            voltage_v: 230.0,
            meter: SimMeter::PerChannel,
            tele_period_s: 10.0,
            breaker: None,
            circuit: None,
        }
    }

    fn sim(loads: &[f64]) -> StripSim {
        StripSim::new(Clock::simulated_from(0, 1.0), &config("t", loads)).unwrap()
    }

    #[test]
    fn power_commands_answer_like_tasmota() {
        let s = sim(&[50.0, 5.0]);
        let a = answer(&s, "strip1", "Power2", b"on");
        assert_eq!(
            a,
            vec![
                ("stat/strip1/RESULT".into(), r#"{"POWER2":"ON"}"#.into()),
                ("stat/strip1/POWER2".into(), "ON".into())
            ]
        );
        assert!(s.relay(2));
        answer(&s, "strip1", "POWER2", b"TOGGLE");
        assert!(!s.relay(2));
        assert_eq!(
            answer(&s, "strip1", "POWER", b"1")[1].0,
            "stat/strip1/POWER1"
        );
        assert_eq!(
            answer(&s, "strip1", "POWER3", b"ON")[0].1,
            r#"{"Command":"Unknown"}"#
        );
        assert_eq!(
            answer(&s, "strip1", "STATE", b"")[0].1,
            r#"{"POWER1":"ON","POWER2":"OFF"}"#
        );
    }

    #[test]
    fn energy_reports_per_channel_or_total() {
        let s = sim(&[52.0, 5.0]);
        answer(&s, "t", "POWER1", b"ON");
        answer(&s, "t", "POWER2", b"ON");
        let e = energy_object(&s, SimMeter::PerChannel, 230.0);
        assert_eq!(e["Power"], json!([52.0, 5.0]));
        assert_eq!(e["Current"], json!([0.226, 0.022]));
        let e = energy_object(&s, SimMeter::Total, 230.0);
        assert_eq!(e["Power"], json!(57.0));
        assert_eq!(e["Voltage"], json!(230.0));
    }

    const T0: i64 = 1_000_000;

    #[test]
    fn an_overloaded_strip_trips_its_breaker_and_reads_zero() {
        let (clock, time) = Clock::manual(T0);
        let mut cfg = config("s", &[1495.0, 1495.0]);
        cfg.breaker = Some(BreakerSpec::b(10.0));
        let s = StripSim::new(clock, &cfg).unwrap();
        answer(&s, "s", "POWER1", b"ON");
        answer(&s, "s", "POWER2", b"ON");
        // 2 × 6.5 A = 13.0 A on a B10 (1.30·In): τ·ln(1.69 / (1.69 − 1.44)) = 344 s.
        time.set(T0 + 300_000);
        assert!(!s.cut(1));
        assert_eq!(
            energy_object(&s, SimMeter::PerChannel, 230.0)["Power"],
            json!([1495.0, 1495.0])
        );
        time.set(T0 + 400_000);
        assert!(s.cut(1) && s.cut(2));
        assert!(s.relay(1) && s.relay(2), "relays keep their state");
        let e = energy_object(&s, SimMeter::Total, 230.0);
        assert_eq!(
            (e["Power"].clone(), e["Current"].clone()),
            (json!(0.0), json!(0.0))
        );
        let trips = s.breaker_trips();
        assert_eq!(trips.len(), 1);
        assert!((trips[0].0 - T0 - 344_000).abs() < 1000, "{trips:?}");
        // Energy stops at the trip: 1.495 kW for 344 s.
        assert!(
            (s.energy_kwh(1) - 1.495 * 344.0 / 3600.0).abs() < 0.001,
            "{}",
            s.energy_kwh(1)
        );
        // A clock set back (or a reader that took the time before another
        // took the lock) counts nothing and does not panic.
        let counted = s.energy_kwh(1);
        time.set(T0 + 350_000);
        let _ = energy_object(&s, SimMeter::PerChannel, 230.0);
        assert_eq!(s.energy_kwh(1), counted);
        time.set(T0 + 400_000);
        // One outlet off, reset: 6.5 A flows and holds.
        answer(&s, "s", "POWER2", b"OFF");
        s.reset_breaker();
        time.set(T0 + 4_000_000);
        assert!(!s.cut(1));
        assert_eq!(
            energy_object(&s, SimMeter::Total, 230.0)["Power"],
            json!(1495.0)
        );
    }

    #[test]
    fn a_parent_reset_directly_counts_no_energy_for_the_cut() {
        let (clock, time) = Clock::manual(T0);
        let circuits = SharedCircuits::new(CircuitTree::new());
        let root = circuits
            .with(|t| t.add_circuit("circuit", None, BreakerSpec::b(16.0)))
            .unwrap();
        let mut cfg = config("s", &[4600.0]);
        cfg.circuit = Some(CircuitSlot {
            circuits: circuits.clone(),
            parent: root,
        });
        let s = StripSim::new(clock, &cfg).unwrap();
        answer(&s, "s", "POWER1", b"ON");
        // 20 A on the B16 circuit: it trips after a few minutes.
        time.set(T0 + 600_000);
        assert!(s.cut(1));
        let trips = circuits.trips(T0 + 600_000);
        assert_eq!(trips.len(), 1, "{trips:?}");
        let live_ms = trips[0].0 - T0;
        // Reset on the circuit itself, not through the strip, 20 min later;
        // the strip reads its meter 100 s after that.
        time.set(T0 + 1_800_000);
        circuits.reset(root, T0 + 1_800_000);
        time.set(T0 + 1_900_000);
        let _ = energy_object(&s, SimMeter::PerChannel, 230.0);
        assert!(!s.cut(1), "the cooled breaker holds 20 A for 100 s");
        let want = 4.6 * (live_ms + 100_000) as f64 / 3_600_000.0;
        assert!(
            (s.energy_kwh(1) - want).abs() < 0.001,
            "{} kWh counted, {want} kWh delivered",
            s.energy_kwh(1)
        );
    }

    #[test]
    fn a_shared_circuit_trips_and_cuts_both_strips() {
        let (clock, time) = Clock::manual(T0);
        let circuits = SharedCircuits::new(CircuitTree::new());
        let root = circuits
            .with(|t| t.add_circuit("circuit", None, BreakerSpec::b(16.0)))
            .unwrap();
        let strip = |topic: &str| {
            let mut cfg = config(topic, &[2300.0]);
            cfg.breaker = Some(BreakerSpec::b(16.0));
            cfg.circuit = Some(CircuitSlot {
                circuits: circuits.clone(),
                parent: root,
            });
            let s = StripSim::new(clock, &cfg).unwrap();
            answer(&s, topic, "POWER1", b"ON");
            s
        };
        let (a, b) = (strip("a"), strip("b"));
        // Each strip 10 A on its B16; together 20 A on the circuit's B16.
        time.set(T0 + 600_000);
        assert!(a.cut(1) && b.cut(1));
        assert!(
            a.breaker_trips().is_empty(),
            "the strips' own breakers hold"
        );
        assert!(circuits.tripped(root, T0 + 600_000));
        // The same name twice in one tree is refused.
        let mut dup = config("a", &[1.0]);
        dup.circuit = Some(CircuitSlot {
            circuits: circuits.clone(),
            parent: root,
        });
        let err = StripSim::new(clock, &dup).err().expect("refused");
        assert!(err.to_string().contains("`a/1`"), "{err}");
    }
}
