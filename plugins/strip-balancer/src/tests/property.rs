//! Randomized property: over many circuit trees and load sequences, after
//! every tick the committed load (measured, assumed for outlets just
//! switched on, strip rating for stale meters, unknown switches counted as
//! on) of every node is within its rating, or every switchable outlet
//! under that node is off (its always-on loads alone exceed it). Loads jump
//! above the headroom, always-on loads too; meters and switches drop out.
//! Seeded (reproducible): a failure prints its case number and seed.
//!
//! This checks the plugin against its own model (commands applied at once,
//! never lost); `physical.rs` checks the current actually drawn.

use super::{Rng, World};
use crate::allocation::Balancer;
use crate::baselines::FirstCome;
use crate::plan::Strategy;
use hearth_plugin_sdk::serde_json::{Value, json};

const CASES: u64 = 1000;
const TICKS: usize = 40;

/// A random forest of circuits (a root, children of earlier ones, sometimes
/// a second root), strips on them, 1–6 outlets per strip.
fn random_config(rng: &mut Rng) -> Value {
    let n_circuits = 1 + rng.below(4);
    let mut circuits = Vec::new();
    for c in 0..n_circuits {
        let parent = if c == 0 || rng.chance(0.15) {
            Value::Null
        } else {
            json!(format!("c{}", rng.below(c)))
        };
        circuits.push(json!({"id": format!("c{c}"), "parent": parent,
            "max_current_a": 2.0 + 18.0 * rng.unit()}));
    }
    let mut strips = Vec::new();
    let mut outlets = Vec::new();
    let mut users = Vec::new();
    for s in 0..1 + rng.below(4) {
        strips.push(
            json!({"id": format!("s{s}"), "circuit": format!("c{}", rng.below(n_circuits)),
            "max_current_a": 1.0 + 12.0 * rng.unit()}),
        );
        for k in 0..1 + rng.below(6) {
            let id = format!("s{s}o{k}");
            let mut o = json!({"switch": format!("switch.{id}"), "strip": format!("s{s}"),
                "current": format!("sensor.{id}_current")});
            if rng.chance(0.15) {
                o["always_on"] = json!(true);
            } else if rng.chance(0.8) {
                let battery = if rng.chance(0.85) {
                    json!(format!("sensor.{id}_battery"))
                } else {
                    Value::Null
                };
                users.push(json!({"id": id, "battery": battery}));
                o["user"] = json!(id);
            }
            outlets.push(o);
        }
    }
    let mut cfg = json!({"circuits": circuits, "strips": strips, "outlets": outlets,
        "users": users, "min_on_s": rng.below(120), "min_off_s": rng.below(60),
        "assumed_current_a": 0.2 + rng.unit()});
    if rng.chance(0.3) {
        cfg["max_parallel"] = json!(1 + rng.below(4));
    }
    cfg
}

fn run_case<S: Strategy>(case: u64) {
    let seed = 0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let mut rng = Rng(seed);
    let cfg = random_config(&mut rng);
    let mut w = World::<S>::new(cfg.clone());
    let outlets: Vec<Value> = cfg["outlets"].as_array().unwrap().clone();
    // The load each outlet would draw when on, A (always-on included).
    let mut want_a: Vec<f64> = outlets.iter().map(|_| 3.0 * rng.unit()).collect();
    for o in &outlets {
        if o["always_on"] == json!(true) {
            w.set(o["switch"].as_str().unwrap(), "on");
        }
        if let Some(b) = o["user"].as_str().map(|u| format!("sensor.{u}_battery")) {
            w.battery(&b, 100.0 * rng.unit());
        }
    }
    let mut held: Vec<Option<String>> = vec![None; outlets.len()];
    for t in 0..TICKS {
        // Sometimes a long step, so min on/off times pass.
        if rng.chance(0.2) {
            w.now += 1000 * rng.below(120) as i64;
        }
        let out = w.h.tick(w.now + 1000);
        w.now += 1000;
        w.apply(&out);
        // DBG_CASE=<n> prints a failing case's ticks.
        if std::env::var("DBG_CASE").ok() == Some(case.to_string()) {
            eprintln!(
                "t{t} now {} why {}",
                w.now,
                crate::plugin::why_map(w.h.plugin())
            );
            for o in &outlets {
                let sw = o["switch"].as_str().unwrap();
                eprintln!(
                    "  {sw} {:?} {:?}",
                    w.state(sw),
                    w.state(o["current"].as_str().unwrap())
                );
            }
        }
        if let Err(e) = w.check_limits() {
            panic!("case {case} (seed {seed:#x}) tick {t}: {e}\nconfig: {cfg}");
        }
        // The world moves: draws change, always-on loads jump, meters and
        // switches drop out and return.
        for (i, o) in outlets.iter().enumerate() {
            let sw = o["switch"].as_str().unwrap();
            let meter = o["current"].as_str().unwrap();
            let always = o["always_on"] == json!(true);
            if rng.chance(0.2) {
                want_a[i] = if always && rng.chance(0.5) {
                    20.0 * rng.unit()
                } else {
                    3.0 * rng.unit()
                };
            }
            if let Some(prev) = held[i].clone() {
                if rng.chance(0.3) {
                    w.set(sw, &prev);
                    held[i] = None;
                }
            } else if rng.chance(0.02) {
                held[i] = w.state(sw);
                w.set(sw, "unavailable");
            }
            let on = w.state(sw).as_deref() != Some("off");
            let stale = w.state(meter).as_deref() == Some("unavailable");
            if stale && rng.chance(0.7) || !stale && rng.chance(0.03) {
                w.set(meter, "unavailable");
            } else {
                let v = if on { want_a[i] } else { 0.0 };
                w.set(meter, &format!("{v:.3}"));
            }
            if let Some(u) = o["user"].as_str()
                && rng.chance(0.1)
            {
                w.battery(&format!("sensor.{u}_battery"), 100.0 * rng.unit());
            }
        }
    }
}

#[test]
fn the_balancer_holds_every_limit_over_random_trees_and_loads() {
    for case in 0..CASES {
        run_case::<Balancer>(case);
    }
}

#[test]
fn first_come_holds_every_limit_over_random_trees_and_loads() {
    for case in 0..CASES / 4 {
        run_case::<FirstCome>(case);
    }
}
