//! 100 outlets under 10 circuits: the host's caps hold (≤ 64 declared
//! entities, ≤ 64 calls and updates per output) and every limit holds;
//! the tick time is printed, not asserted (see BENCHMARKS.md).

use super::World;
use crate::allocation::Balancer;
use hearth_plugin_sdk::serde_json::{Value, json};
use std::time::Instant;

/// A 63 A root, 9 circuits of 16 A under it, 10 strips of 10 A (one per
/// circuit, two on the last), 10 outlets each, every laptop with a battery.
pub fn hundred_outlets() -> Value {
    let mut circuits = vec![json!({"id": "c0", "max_current_a": 63})];
    for c in 1..10 {
        circuits.push(json!({"id": format!("c{c}"), "parent": "c0", "max_current_a": 16}));
    }
    let (mut strips, mut outlets, mut users) = (vec![], vec![], vec![]);
    for s in 0..10 {
        let circuit = format!("c{}", (s % 9) + 1);
        strips.push(json!({"id": format!("s{s}"), "circuit": circuit, "max_current_a": 10}));
        for k in 0..10 {
            let id = format!("s{s}o{k}");
            outlets.push(
                json!({"switch": format!("switch.{id}"), "strip": format!("s{s}"),
                "current": format!("sensor.{id}_current"), "user": id, "always_on": k == 0}),
            );
            users.push(json!({"id": id, "battery": format!("sensor.{id}_battery")}));
        }
    }
    json!({"circuits": circuits, "strips": strips, "outlets": outlets, "users": users})
}

#[test]
fn a_hundred_outlets_fit_the_host_caps_and_tick_cheaply() {
    let mut w = World::<Balancer>::new(hundred_outlets());
    let d = w.h.describe();
    // 100 outlets + 20 nodes > 64: per-strip `allowed` sensors instead.
    assert_eq!(d.entities.len(), 30);
    assert!(d.entities.iter().any(|e| e.object_id == "allowed_s3"));
    for s in 0..10 {
        for k in 0..10 {
            w.battery(&format!("sensor.s{s}o{k}_battery"), (s * 10 + k) as f64);
        }
    }
    let mut times = Vec::new();
    for t in 0..300 {
        let start = Instant::now();
        let out = w.h.tick(w.now + 1000);
        times.push(start.elapsed());
        w.now += 1000;
        w.apply(&out);
        w.check_limits().unwrap();
        for s in 0..10 {
            for k in 0..10 {
                let id = format!("s{s}o{k}");
                let on = w.is_on(&format!("switch.{id}"));
                let a = if on {
                    0.3 + 0.1 * ((t + k) % 7) as f64
                } else {
                    0.0
                };
                w.set(&format!("sensor.{id}_current"), &format!("{a:.2}"));
            }
        }
    }
    // Printed for orientation only: timing is measured in benchmarks
    // (`cargo bench -p hearth --bench balancer`, in WASM), never asserted.
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    eprintln!("tick, 100 outlets / 10 circuits, native harness: median {median:?}, p99 {p99:?}");
}
