//! Who holds an outlet at runtime (`user_entity`, a HA `select`) and users
//! over their limit (`over_limit`, a `binary_sensor`).

use super::World;
use crate::allocation::Balancer;
use hearth_plugin_sdk::serde_json::{Value, json};

/// `switch.o1` held through `select.seat_1`; `switch.o2` fixed to alice;
/// users alice and bob with batteries; 1.5 A assumed, one charging at a
/// time (`max_parallel`), no min on/off.
fn seats() -> Value {
    json!({
        "circuits": [{"id": "wall", "max_current_a": 16}],
        "strips": [{"id": "s", "circuit": "wall", "max_current_a": 10}],
        "outlets": [
            {"switch": "switch.o1", "strip": "s", "current": "sensor.o1_current",
             "user_entity": "select.seat_1"},
            {"switch": "switch.o2", "strip": "s", "current": "sensor.o2_current", "user": "alice"}
        ],
        "users": [{"id": "alice", "battery": "sensor.alice_battery"},
                  {"id": "bob", "battery": "sensor.bob_battery"}],
        "assumed_current_a": 1.5, "min_on_s": 0, "min_off_s": 0, "max_parallel": 1
    })
}

/// One tick; `switch.o1` draws `o1_a` when on, `switch.o2` 1.5 A.
fn tick(w: &mut World<Balancer>, o1_a: f64) {
    w.tick();
    w.check_limits().unwrap();
    let o1 = if w.is_on("switch.o1") { o1_a } else { 0.0 };
    w.set("sensor.o1_current", &format!("{o1}"));
    let o2 = if w.is_on("switch.o2") { 1.5 } else { 0.0 };
    w.set("sensor.o2_current", &format!("{o2}"));
}

#[test]
fn the_holder_is_read_from_the_select_each_tick() {
    let mut w = World::<Balancer>::new(seats());
    let reads = w.h.describe().reads;
    assert!(reads.contains(&"select.seat_1".to_string()), "{reads:?}");
    w.set("select.seat_1", "bob");
    w.battery("sensor.bob_battery", 20.0);
    w.battery("sensor.alice_battery", 60.0);
    tick(&mut w, 1.5);
    // Bob (20 %) holds o1: before alice (60 %).
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    // The seat passes to alice, whose laptop is at 90 %: o1 needs nothing,
    // and her own o2 (the same 90 %) neither.
    w.set("select.seat_1", "alice");
    w.battery("sensor.alice_battery", 90.0);
    tick(&mut w, 1.5);
    assert_eq!(w.why("switch.o1"), "no one waiting");
    assert_eq!(w.why("switch.o2"), "target reached");
}

#[test]
fn an_empty_seat_with_nothing_plugged_is_not_rotated_in_again() {
    let mut w = World::<Balancer>::new(seats());
    w.battery("sensor.alice_battery", 60.0);
    w.set("select.seat_1", "none");
    // An empty seat is "unknown need" (50 %): before alice (60 %).
    tick(&mut w, 0.0);
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    // Settled at 0 A: nothing plugged; it yields the one slot to alice.
    for _ in 0..8 {
        tick(&mut w, 0.0);
    }
    assert!(!w.is_on("switch.o1") && w.is_on("switch.o2"));
    assert_eq!(w.why("switch.o1"), "nothing plugged");
    // Waiting would age an unknown need past alice (rotation): not this one.
    for _ in 0..1200 {
        tick(&mut w, 0.0);
        assert!(!w.is_on("switch.o1"), "{}", w.why("switch.o1"));
    }
    // Any state that is no user id is an empty seat too.
    for nobody in ["nobody", "unknown", "unavailable", "zed"] {
        w.set("select.seat_1", nobody);
        tick(&mut w, 0.0);
        assert!(!w.is_on("switch.o1"), "{nobody}");
    }
    // Bob claims the seat (20 %): his laptop wants charge, alice (60 %)
    // rotates out for him.
    w.set("select.seat_1", "bob");
    w.battery("sensor.bob_battery", 20.0);
    for _ in 0..3 {
        tick(&mut w, 1.5);
    }
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    assert_eq!(w.why("switch.o1"), "charging");
}

#[test]
fn an_empty_seat_drawing_current_is_unknown_need() {
    let mut w = World::<Balancer>::new(seats());
    w.battery("sensor.alice_battery", 60.0);
    w.set("select.seat_1", "unavailable");
    for _ in 0..30 {
        tick(&mut w, 0.8);
    }
    // A guest's laptop charges on the free seat (50 % < alice's 60 %).
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    assert_eq!(w.why("switch.o1"), "charging");
}

#[test]
fn a_user_over_the_limit_has_their_outlets_kept_off_but_always_on_ones() {
    let mut cfg = seats();
    cfg["max_parallel"] = json!(null);
    cfg["users"][0]["over_limit"] = json!("binary_sensor.alice_over_limit");
    cfg["outlets"].as_array_mut().unwrap().push(
        json!({"switch": "switch.lamp", "strip": "s", "current": "sensor.lamp_current",
            "user": "alice", "always_on": true}),
    );
    let mut w = World::<Balancer>::new(cfg);
    let reads = w.h.describe().reads;
    assert!(reads.contains(&"binary_sensor.alice_over_limit".to_string()));
    w.set("switch.lamp", "on");
    w.set("select.seat_1", "alice");
    w.battery("sensor.alice_battery", 20.0);
    w.set("binary_sensor.alice_over_limit", "off");
    tick(&mut w, 1.5);
    assert!(w.is_on("switch.o1") && w.is_on("switch.o2"));
    // Over the limit: both her outlets off at once (min_on ignored), the
    // always-on lamp stays.
    w.set("binary_sensor.alice_over_limit", "on");
    for _ in 0..600 {
        tick(&mut w, 1.5);
        assert!(!w.is_on("switch.o1") && !w.is_on("switch.o2"));
        assert_eq!(w.why("switch.o2"), "over limit");
        assert!(w.is_on("switch.lamp"));
    }
    // Bob takes the seat: o1 is his, it charges; alice's o2 stays off.
    w.set("select.seat_1", "bob");
    w.battery("sensor.bob_battery", 30.0);
    tick(&mut w, 1.5);
    assert!(w.is_on("switch.o1") && !w.is_on("switch.o2"));
    // Back under the limit (a new period): o2 charges again.
    w.set("binary_sensor.alice_over_limit", "off");
    tick(&mut w, 1.5);
    assert!(w.is_on("switch.o2"));
}

#[test]
fn a_target_latch_saved_for_one_holder_is_not_given_to_the_next() {
    let mut cfg = seats();
    cfg["outlets"] = json!([{"switch": "switch.o1", "strip": "s",
        "current": "sensor.o1_current", "user_entity": "select.seat_1"}]);
    let mut w = World::<Balancer>::new(cfg.clone());
    w.set("select.seat_1", "bob");
    w.battery("sensor.bob_battery", 85.0);
    tick(&mut w, 1.5);
    let why = w.why("switch.o1");
    assert!(
        ["target reached", "no one waiting"].contains(&why.as_str()),
        "{why}"
    );
    let saved = w.h.save();
    // Hearth restarts; meanwhile alice took the seat, at 75 % (above
    // bob's resume point of 70 %, below her target of 80 %).
    let mut fresh = World::<Balancer>::new(cfg);
    fresh.h.restore(&saved).unwrap();
    fresh.set("select.seat_1", "alice");
    fresh.battery("sensor.alice_battery", 75.0);
    tick(&mut fresh, 1.5);
    tick(&mut fresh, 1.5);
    assert!(
        fresh.is_on("switch.o1"),
        "alice charges: {}",
        fresh.why("switch.o1")
    );
}
