//! The learned draw ([`crate::need`]): a laptop seen charging is committed
//! at its own highest settled draw when switched on again, not at
//! `assumed_current_a`; forgotten when the laptop may have changed.

use super::World;
use crate::allocation::Balancer;
use hearth_plugin_sdk::serde_json::{Value, json};

/// A 2 A strip: an always-on heater (`h`) and one laptop outlet (`o1`);
/// assumed 1.5 A, no min on/off.
fn config() -> Value {
    json!({
        "circuits": [{"id": "wall", "max_current_a": 16}],
        "strips": [{"id": "s", "circuit": "wall", "max_current_a": 2.0}],
        "outlets": [
            {"switch": "switch.h", "strip": "s", "current": "sensor.h_current", "always_on": true},
            {"switch": "switch.o1", "strip": "s", "current": "sensor.o1_current", "user": "u1"},
        ],
        "users": [{"id": "u1", "battery": "sensor.u1_battery"}],
        "assumed_current_a": 1.5, "min_on_s": 0, "min_off_s": 0, "settle_s": 5
    })
}

/// `secs` ticks; the heater draws `heater_a`, o1 0.9 A while on.
fn run(w: &mut World<Balancer>, heater_a: f64, secs: u32) {
    for _ in 0..secs {
        w.set("sensor.h_current", &heater_a.to_string());
        let a = if w.is_on("switch.o1") { "0.9" } else { "0" };
        w.set("sensor.o1_current", a);
        w.tick();
        w.check_limits().unwrap();
    }
}

#[test]
fn a_laptop_seen_charging_fits_headroom_below_the_assumed_draw() {
    let mut w = World::<Balancer>::new(config());
    w.set("switch.h", "on");
    w.battery("sensor.u1_battery", 30.0);
    run(&mut w, 0.0, 20);
    assert!(w.is_on("switch.o1"), "{}", w.why("switch.o1"));
    // The heater takes 1.5 A: 1.5 + 0.9 > 2 A, o1 is shed.
    run(&mut w, 1.5, 3);
    assert!(!w.is_on("switch.o1"));
    // 1.0 A of headroom: the laptop's 0.9 A fits, the assumed 1.5 A would not.
    run(&mut w, 1.0, 10);
    assert!(w.is_on("switch.o1"), "{}", w.why("switch.o1"));
    assert_eq!(w.why("switch.o1"), "charging");
}

/// A laptop at 30 % seen charging at 0.9 A, then shed by the heater's
/// 1.5 A: its outlet is off with a learned draw of 0.9 A.
fn seen_charging_then_shed() -> World<Balancer> {
    let mut w = World::<Balancer>::new(config());
    w.set("switch.h", "on");
    w.battery("sensor.u1_battery", 30.0);
    run(&mut w, 0.0, 20);
    run(&mut w, 1.5, 3);
    w
}

#[test]
fn another_laptop_on_the_seat_is_committed_at_the_assumed_draw_again() {
    let mut w = seen_charging_then_shed();
    assert!(!w.is_on("switch.o1"));
    // The battery rose while the outlet was off: not the same laptop.
    w.battery("sensor.u1_battery", 60.0);
    run(&mut w, 1.0, 10);
    assert!(!w.is_on("switch.o1"));
    assert_eq!(w.why("switch.o1"), "limit");
    // Its reading gone (the laptop left) has the same effect.
    let mut w = seen_charging_then_shed();
    w.set("sensor.u1_battery", "unavailable");
    run(&mut w, 1.0, 2);
    w.battery("sensor.u1_battery", 25.0);
    run(&mut w, 1.0, 10);
    assert!(!w.is_on("switch.o1"));
}

#[test]
fn a_battery_that_jumps_down_is_another_laptop() {
    // One laptop leaves and the next sits down within a second: the
    // reading goes from 30 % to 4 % with no `unavailable` between.
    let mut w = seen_charging_then_shed();
    assert!(!w.is_on("switch.o1"));
    w.battery("sensor.u1_battery", 4.0);
    run(&mut w, 1.0, 10);
    // Committed at the assumed 1.5 A again: 1.0 + 1.5 > 2 A.
    assert!(!w.is_on("switch.o1"));
    assert_eq!(w.why("switch.o1"), "limit");
}
