//! Native tests through the SDK's harness: a small world whose switches
//! follow the plugin's calls at once, with meters and batteries the test
//! sets, and an independent check of every node's committed load.

mod behaviour;
mod commands;
mod config_refusals;
mod departures;
mod head_of_line;
mod holders;
mod learned_draw;
mod physical;
mod property;
mod scale;

use crate::plan::Strategy;
use crate::plugin::Plugin;
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::testing::Harness;
use hearth_plugin_sdk::{Controller, Output};
use std::collections::BTreeMap;

/// 2026-01-01T08:00:00Z.
pub const T0: i64 = 1_767_254_400_000;

pub struct World<S: Strategy> {
    pub h: Harness<Plugin<S>>,
    pub now: i64,
    pub cfg: Value,
    /// When the world switched each outlet on (its meter settles).
    pub on_at: BTreeMap<String, i64>,
    /// Every transition: (switch, time, on).
    pub transitions: Vec<(String, i64, bool)>,
}

impl<S: Strategy> World<S> {
    /// Every switch off, every meter at 0 A.
    pub fn new(cfg: Value) -> World<S> {
        let mut h = Harness::<Plugin<S>>::new(cfg.clone()).expect("config accepted");
        h.set_now(T0 - 3_600_000);
        for o in cfg["outlets"].as_array().unwrap() {
            h.set_state(o["switch"].as_str().unwrap(), "off", Value::Null);
            if let Some(c) = o["current"].as_str() {
                h.set_state(c, "0", json!({"unit_of_measurement": "A"}));
            }
        }
        h.set_now(T0);
        World {
            h,
            now: T0,
            cfg,
            on_at: BTreeMap::new(),
            transitions: Vec::new(),
        }
    }

    pub fn set(&mut self, id: &str, state: &str) {
        self.h.set_state(id, state, Value::Null);
    }

    pub fn battery(&mut self, id: &str, pct: f64) {
        let attrs = json!({"device_class": "battery", "unit_of_measurement": "%"});
        self.h.set_state(id, &format!("{pct:.1}"), attrs);
    }

    pub fn state(&self, id: &str) -> Option<String> {
        hearth_plugin_sdk::State::get(id).map(|s| s.state)
    }

    pub fn is_on(&self, switch: &str) -> bool {
        self.state(switch).as_deref() == Some("on")
    }

    /// One tick 1 s later; the calls are applied to reachable switches.
    pub fn tick(&mut self) -> Output {
        self.now += 1000;
        let out = self.h.tick(self.now);
        self.apply(&out);
        out
    }

    pub fn apply(&mut self, out: &Output) {
        assert!(out.calls().len() <= 64 && out.entities().len() <= 64);
        for c in out.calls() {
            let on = match c.service.as_str() {
                "turn_on" => true,
                "turn_off" => false,
                other => panic!("unexpected service {other}"),
            };
            for id in &c.entity_ids {
                let reachable = matches!(self.state(id).as_deref(), Some("on" | "off"));
                if reachable && self.is_on(id) != on {
                    self.set(id, if on { "on" } else { "off" });
                    self.transitions.push((id.clone(), self.now, on));
                    // Settling counts from the last switch-on, until a switch-off.
                    if on {
                        self.on_at.insert(id.clone(), self.now);
                    } else {
                        self.on_at.remove(id);
                    }
                }
            }
        }
    }

    /// The plugin's `why` for an outlet at the last tick.
    pub fn why(&mut self, switch: &str) -> String {
        crate::plugin::why_map(self.h.plugin())[switch]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Independent check of the limits rule after a tick: for every node,
    /// committed load ≤ rating, or every switchable outlet under it is off.
    /// Committed: switch on or unknown counts; meter unavailable = strip
    /// rating; switched on < settle_s ago = at least its expected draw (the
    /// plugin's `expected_a`: its laptop's learned draw, else
    /// assumed_current_a).
    pub fn check_limits(&mut self) -> Result<(), String> {
        let cfg = &self.cfg;
        let assumed = cfg["assumed_current_a"].as_f64().unwrap_or(0.5);
        let settle_ms = (cfg["settle_s"].as_f64().unwrap_or(5.0) * 1000.0) as i64;
        let mut parent: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut limit: BTreeMap<String, f64> = BTreeMap::new();
        for c in cfg["circuits"].as_array().unwrap() {
            let id = c["id"].as_str().unwrap().to_string();
            parent.insert(id.clone(), c["parent"].as_str().map(String::from));
            limit.insert(id, c["max_current_a"].as_f64().unwrap());
        }
        for s in cfg["strips"].as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            parent.insert(id.clone(), Some(s["circuit"].as_str().unwrap().into()));
            limit.insert(id, s["max_current_a"].as_f64().unwrap());
        }
        let mut load: BTreeMap<String, f64> = BTreeMap::new();
        let mut switchable_on: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for o in cfg["outlets"].as_array().unwrap() {
            let sw = o["switch"].as_str().unwrap();
            let strip = o["strip"].as_str().unwrap();
            let state = self.state(sw);
            let counted = state.as_deref() != Some("off");
            let meter = o["current"].as_str().and_then(|c| self.state(c));
            let measured = meter.and_then(|m| m.parse::<f64>().ok());
            let mut draw = measured.unwrap_or(limit[strip]);
            if measured.is_some() && self.on_at.get(sw).is_some_and(|t| self.now - t < settle_ms) {
                let expected = crate::plugin::expected_a(self.h.plugin(), sw);
                draw = draw.max(expected.unwrap_or(assumed));
            }
            let switchable = !o["always_on"].as_bool().unwrap_or(false)
                && matches!(state.as_deref(), Some("on" | "off"));
            let mut at = Some(strip.to_string());
            while let Some(n) = at {
                if counted {
                    *load.entry(n.clone()).or_default() += draw;
                }
                if switchable && state.as_deref() == Some("on") {
                    switchable_on.entry(n.clone()).or_default().push(sw.into());
                }
                at = parent[&n].clone();
            }
        }
        for (n, l) in &load {
            let on = switchable_on.get(n).cloned().unwrap_or_default();
            if *l > limit[n] + 1e-6 && !on.is_empty() {
                return Err(format!(
                    "{n}: {l:.2} A over its {} A with {on:?} on",
                    limit[n]
                ));
            }
        }
        Ok(())
    }
}

/// Seeded xorshift64* (no dependency): reproducible random cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Root 16 A; strips `a` and `b`, 10 A each; outlets `switch.a1..a4`,
/// `switch.b1..b4` with current sensors `sensor.a1_current` …; `a1` is an
/// always-on lamp; users `u2..u8` on the others with batteries
/// `sensor.u2_battery` …
pub fn coworking() -> Value {
    let mut outlets = Vec::new();
    let mut users = Vec::new();
    for s in ["a", "b"] {
        for k in 1..=4 {
            let name = format!("{s}{k}");
            let idx = if s == "a" { k } else { 4 + k };
            let mut o = json!({
                "switch": format!("switch.{name}"),
                "strip": s,
                "current": format!("sensor.{name}_current"),
            });
            if idx == 1 {
                o["always_on"] = json!(true);
            } else {
                o["user"] = json!(format!("u{idx}"));
                users.push(
                    json!({"id": format!("u{idx}"), "battery": format!("sensor.u{idx}_battery")}),
                );
            }
            outlets.push(o);
        }
    }
    json!({
        "circuits": [{"id": "wall", "max_current_a": 16}],
        "strips": [{"id": "a", "circuit": "wall", "max_current_a": 10},
                   {"id": "b", "circuit": "wall", "max_current_a": 10}],
        "outlets": outlets,
        "users": users,
        "min_on_s": 300,
        "min_off_s": 60
    })
}

/// Asserts a config is refused with a message containing every `needle`.
pub fn refused<C: Controller>(cfg: Value, needles: &[&str]) {
    match C::init(cfg) {
        Ok(_) => panic!("accepted; expected a refusal naming {needles:?}"),
        Err(e) => {
            for n in needles {
                assert!(e.contains(n), "`{e}` does not name `{n}`");
            }
        }
    }
}
