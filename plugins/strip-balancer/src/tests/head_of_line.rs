//! The head of the queue holds the room it waits for: a big charger is not
//! starved by small ones that each fit in what is left.

use super::World;
use crate::allocation::Balancer;
use hearth_plugin_sdk::serde_json::json;

/// A 4 A strip: an always-on heater `h`, a big laptop on `o1` (1.8 A) and
/// two small ones on `o2`, `o3` (0.9 A each); 1.8 A assumed, min_on 60 s.
fn world() -> World<Balancer> {
    let outlet = |k: u32| {
        json!({"switch": format!("switch.o{k}"), "strip": "s",
               "current": format!("sensor.o{k}_current"), "user": format!("u{k}")})
    };
    let cfg = json!({
        "circuits": [{"id": "wall", "max_current_a": 16}],
        "strips": [{"id": "s", "circuit": "wall", "max_current_a": 4.0}],
        "outlets": [
            {"switch": "switch.h", "strip": "s", "current": "sensor.h_current", "always_on": true},
            outlet(1), outlet(2), outlet(3),
        ],
        "users": [
            {"id": "u1", "battery": "sensor.u1_battery"},
            {"id": "u2", "battery": "sensor.u2_battery"},
            {"id": "u3", "battery": "sensor.u3_battery"},
        ],
        "assumed_current_a": 1.8, "min_on_s": 60, "min_off_s": 0, "settle_s": 5
    });
    let mut w = World::<Balancer>::new(cfg);
    w.set("switch.h", "on");
    w
}

fn run(w: &mut World<Balancer>, heater_a: f64, secs: u32) {
    for _ in 0..secs {
        w.set("sensor.h_current", &heater_a.to_string());
        for (k, a) in [(1, 1.8), (2, 0.9), (3, 0.9)] {
            let on = w.is_on(&format!("switch.o{k}"));
            let a = if on { a } else { 0.0 };
            w.set(&format!("sensor.o{k}_current"), &a.to_string());
        }
        w.tick();
        w.check_limits().unwrap();
    }
}

#[test]
fn a_big_charger_gets_the_room_of_two_small_ones_at_once() {
    let mut w = world();
    // u1's laptop full, the small ones charging, the heater off.
    w.battery("sensor.u1_battery", 90.0);
    w.battery("sensor.u2_battery", 40.0);
    w.battery("sensor.u3_battery", 50.0);
    run(&mut w, 0.0, 30);
    assert!(w.is_on("switch.o2") && w.is_on("switch.o3"));
    // The heater takes 2 A (3.8 A in all), then u1 sits down with an empty
    // big laptop: 1.8 A more. One small laptop off frees 0.9 A, not enough;
    // both must go, in the same tick, once min_on allows.
    run(&mut w, 2.0, 5);
    w.battery("sensor.u1_battery", 10.0);
    run(&mut w, 2.0, 120);
    assert!(w.is_on("switch.o1"), "o1: {}", w.why("switch.o1"));
    let offs: Vec<i64> = w
        .transitions
        .iter()
        .filter(|(id, _, on)| !on && (id == "switch.o2" || id == "switch.o3"))
        .map(|(_, t, _)| *t)
        .collect();
    assert_eq!(offs.len(), 2, "{:?}", w.transitions);
    assert_eq!(offs[0], offs[1], "both small laptops go in one tick");
}
