//! Charge-by-departure ([`crate::departure`]): a laptop whose user leaves
//! soon takes the slot of one that stays, and one at its target keeps its
//! slot in the last minutes before its user leaves; without departures
//! the same worlds share lowest battery first.

use super::{T0, World};
use crate::allocation::Balancer;
use crate::departure::parse_rfc3339_ms;
use hearth_plugin_sdk::serde_json::{Value, json};

/// A 2.5 A strip: room for one 1.5 A laptop at a time; u1 and u2 give
/// departures; assumed 1 %/min, 10 min slack; no min on/off.
fn config() -> Value {
    config_with_strip(2.5)
}

fn config_with_strip(strip_a: f64) -> Value {
    json!({
        "circuits": [{"id": "wall", "max_current_a": 16}],
        "strips": [{"id": "s", "circuit": "wall", "max_current_a": strip_a}],
        "outlets": [
            {"switch": "switch.o1", "strip": "s", "current": "sensor.o1_current", "user": "u1"},
            {"switch": "switch.o2", "strip": "s", "current": "sensor.o2_current", "user": "u2"},
        ],
        "users": [
            {"id": "u1", "battery": "sensor.u1_battery", "departure": "sensor.u1_departure"},
            {"id": "u2", "battery": "sensor.u2_battery", "departure": "sensor.u2_departure"},
        ],
        "assumed_current_a": 1.5, "min_on_s": 0, "min_off_s": 0, "settle_s": 2,
        "assumed_rate_pct_per_min": 1.0, "departure_slack_s": 600
    })
}

/// RFC 3339 (UTC) of `T0 + min` minutes.
fn at(min: i64) -> String {
    let t = T0 + min * 60_000;
    // T0 is 2026-01-01T08:00:00Z; the tests stay within that day.
    let s = t / 1000 % 86_400;
    let out = format!(
        "2026-01-01T{:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    assert_eq!(parse_rfc3339_ms(&out), Some(t));
    out
}

/// `secs` ticks; an outlet on draws 1.5 A.
fn run(w: &mut World<Balancer>, secs: u32) {
    for _ in 0..secs {
        for o in ["o1", "o2"] {
            let a = if w.is_on(&format!("switch.{o}")) {
                "1.5"
            } else {
                "0"
            };
            w.set(&format!("sensor.{o}_current"), a);
        }
        w.tick();
        w.check_limits().unwrap();
    }
}

#[test]
fn a_laptop_leaving_soon_takes_the_slot_of_one_that_stays() {
    let mut w = World::<Balancer>::new(config());
    w.battery("sensor.u1_battery", 20.0);
    w.battery("sensor.u2_battery", 60.0);
    w.set("sensor.u1_departure", &at(8 * 60));
    w.set("sensor.u2_departure", "unavailable");
    run(&mut w, 10);
    // Lowest first: u1 (20 %) charges, u2 (60 %) waits.
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    // u2 says it leaves in 25 min: 20 % to go at 1 %/min + 10 min slack
    // is more than 25 − 20: urgent, and u1 (staying all day) yields.
    w.set("sensor.u2_departure", &at(25));
    run(&mut w, 10);
    assert!(w.is_on("switch.o2"), "{}", w.why("switch.o2"));
    assert!(!w.is_on("switch.o1"));
    assert_eq!(w.why("switch.o2"), "departure soon");
    // Yielded ("rotation" at the swap), it now waits for room.
    assert_eq!(w.why("switch.o1"), "limit");
}

#[test]
fn an_input_datetime_is_read_from_its_timestamp_attribute() {
    let mut w = World::<Balancer>::new(config());
    w.battery("sensor.u1_battery", 20.0);
    w.battery("sensor.u2_battery", 60.0);
    w.set("sensor.u1_departure", "unavailable");
    run(&mut w, 10);
    // HA's input_datetime: a local time as state, Unix s as `timestamp`.
    let ts = (T0 + 25 * 60_000) as f64 / 1000.0;
    w.h.set_state(
        "sensor.u2_departure",
        "2026-01-01 09:25:00",
        json!({"has_date": true, "has_time": true, "timestamp": ts}),
    );
    run(&mut w, 10);
    assert_eq!(w.why("switch.o2"), "departure soon");
}

#[test]
fn a_departure_far_away_changes_nothing() {
    let mut w = World::<Balancer>::new(config());
    w.battery("sensor.u1_battery", 20.0);
    w.battery("sensor.u2_battery", 60.0);
    w.set("sensor.u1_departure", &at(8 * 60));
    w.set("sensor.u2_departure", &at(3 * 60));
    run(&mut w, 30);
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    assert_eq!(w.why("switch.o1"), "charging");
}

#[test]
fn at_target_it_holds_its_slot_in_the_last_minutes_then_yields_after() {
    let mut w = World::<Balancer>::new(config());
    // u2 at its target, on; u1 low and waiting, staying all day.
    w.battery("sensor.u1_battery", 20.0);
    w.battery("sensor.u2_battery", 85.0);
    w.set("sensor.u1_departure", &at(8 * 60));
    w.set("sensor.u2_departure", &at(8));
    w.set("switch.o2", "on");
    run(&mut w, 10);
    // 85 % − 8 min × 1 %/min < 80 %: switched off now it leaves short.
    assert!(w.is_on("switch.o2"), "{}", w.why("switch.o2"));
    assert_eq!(w.why("switch.o2"), "holding for departure");
    assert!(!w.is_on("switch.o1"));
    // The same at 89 % (a step of less than SWAP_JUMP_PCT: the same
    // laptop): it can yield and still leave at its target.
    w.battery("sensor.u2_battery", 89.0);
    run(&mut w, 10);
    assert!(!w.is_on("switch.o2") && w.is_on("switch.o1"));
}

#[test]
fn a_laptop_racing_its_departure_is_shed_last_but_shed() {
    // A 3.5 A strip: both laptops fit at 1.5 A.
    let mut w = World::<Balancer>::new(config_with_strip(3.5));
    w.battery("sensor.u1_battery", 50.0);
    w.battery("sensor.u2_battery", 30.0);
    w.set("sensor.u1_departure", &at(20));
    w.set("sensor.u2_departure", "unavailable");
    run(&mut w, 10);
    assert!(w.is_on("switch.o1") && w.is_on("switch.o2"));
    assert_eq!(w.why("switch.o1"), "departure soon");
    // Both draw 2 A: 4 A > 3.5 A. Highest battery first would shed u1;
    // u1 races its departure, so u2 goes.
    w.set("sensor.o1_current", "2.0");
    w.set("sensor.o2_current", "2.0");
    w.tick();
    w.check_limits().unwrap();
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    // u1 alone draws 4 A: shed too, racing or not.
    w.set("sensor.o1_current", "4.0");
    w.set("sensor.o2_current", "0");
    w.tick();
    w.check_limits().unwrap();
    assert!(!w.is_on("switch.o1"));
    assert_eq!(w.why("switch.o1"), "limit");
}

#[test]
fn a_laptop_latched_at_its_target_charges_again_when_its_departure_needs_it() {
    let mut w = World::<Balancer>::new(config_with_strip(3.5));
    w.set("sensor.u1_departure", &at(8 * 60));
    w.set("sensor.u2_departure", &at(8 * 60));
    w.battery("sensor.u2_battery", 30.0);
    w.battery("sensor.u1_battery", 80.0);
    run(&mut w, 5);
    // u1 reached its target (latched until below 70 %); it is switched
    // off by hand and drains to 76 %: still latched, so it stays off.
    for b in [79.0, 77.0, 76.0] {
        w.battery("sensor.u1_battery", b);
        run(&mut w, 2);
    }
    w.set("switch.o1", "off");
    run(&mut w, 2);
    assert!(!w.is_on("switch.o1"));
    assert_eq!(w.why("switch.o1"), "target reached");
    // Its user now leaves in 10 min: 4 % short at 1 %/min + 10 min slack.
    w.set("sensor.u1_departure", &at(10));
    run(&mut w, 3);
    assert!(w.is_on("switch.o1"), "{}", w.why("switch.o1"));
    assert_eq!(w.why("switch.o1"), "departure soon");
}
