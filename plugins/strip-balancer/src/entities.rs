//! The plugin's own entities (the host allows `sensor` and
//! `binary_sensor`, at most 64 declared and 64 updates per output):
//!
//! - per outlet `allowed_<switch object id>` (binary_sensor, `on` = may
//!   be on), attributes `why` ([`Why`]) and `expected_a` (what switching
//!   it on commits until its meter settles: its laptop's learned draw, else
//!   `assumed_current_a`, A to 0.01) — when outlets and nodes fit in 64
//!   declarations; else per strip `allowed_<strip>` (sensor: how many of
//!   its outlets are allowed, attributes `{switch: why}`);
//! - per circuit and strip `headroom_<id>` (sensor, A: rating minus
//!   committed load, negative when over), to 0.1 A.
//!
//! Only changed states are sent; beyond 64 in one tick, the rest follow at
//! the next ticks.

use crate::config::Config;
use crate::plan::{Memory, Why};
use crate::tree::Tree;
use crate::tree::limits::Loads;
use hearth_plugin_sdk::serde_json::{Map, Value, json};
use hearth_plugin_sdk::{EntityDecl, Output, binary_sensor, sensor};
use std::collections::BTreeMap;

/// Most declarations and updates per output the host accepts.
pub const HOST_MAX: usize = 64;

pub struct Publisher {
    per_outlet: bool,
    /// The object ids declared: nothing else is published.
    declared: std::collections::BTreeSet<String>,
    /// object id → (state, attributes) last sent.
    sent: BTreeMap<String, (String, String)>,
}

/// `switch.strip_a_1` → `strip_a_1`; other characters than `[a-z0-9_]` become `_`.
pub fn object_of(id: &str) -> String {
    let tail = id.split_once('.').map_or(id, |(_, t)| t);
    tail.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .collect()
}

/// Per-outlet `allowed` entities when they and the nodes' fit in the host's cap.
fn per_outlet(cfg: &Config, nodes: usize) -> bool {
    cfg.outlets.len() + nodes <= HOST_MAX
}

/// The config check's part for entities: object ids must not collide
/// (`switch.a_1` and `light.a_1`, strips `a-b` and `a_b`: both would
/// publish `allowed_a_1` / `headroom_a_b`), and the declarations must fit
/// the host's cap. The message names both items of a collision.
pub fn check(cfg: &Config) -> Result<(), String> {
    let mut outlets: BTreeMap<String, &str> = BTreeMap::new();
    for o in &cfg.outlets {
        if let Some(first) = outlets.insert(object_of(&o.switch), &o.switch) {
            return Err(format!(
                "config: outlets `{first}` and `{}` would both publish `allowed_{}` (object ids use [a-z0-9_] of the part after the domain); rename one",
                o.switch,
                object_of(&o.switch)
            ));
        }
    }
    let mut nodes: BTreeMap<String, &str> = BTreeMap::new();
    let ids = cfg
        .circuits
        .iter()
        .map(|c| &c.id)
        .chain(cfg.strips.iter().map(|s| &s.id));
    for id in ids {
        if let Some(first) = nodes.insert(object_of(id), id) {
            return Err(format!(
                "config: circuits/strips `{first}` and `{id}` would both publish `headroom_{}` (object ids use [a-z0-9_]); rename one",
                object_of(id)
            ));
        }
    }
    let n_nodes = cfg.circuits.len() + cfg.strips.len();
    if !per_outlet(cfg, n_nodes) && cfg.strips.len() + n_nodes > HOST_MAX {
        return Err(format!(
            "config: {} circuits and {} strips need {} entities (a headroom per circuit and strip, an `allowed` per strip); the host accepts at most {HOST_MAX}",
            cfg.circuits.len(),
            cfg.strips.len(),
            cfg.strips.len() + n_nodes
        ));
    }
    Ok(())
}

impl Publisher {
    pub fn new(cfg: &Config, tree: &Tree) -> Publisher {
        let mut p = Publisher {
            per_outlet: per_outlet(cfg, tree.nodes.len()),
            declared: Default::default(),
            sent: BTreeMap::new(),
        };
        p.declared = p
            .decls(cfg, tree)
            .into_iter()
            .map(|d| d.object_id)
            .collect();
        p
    }

    pub fn decls(&self, cfg: &Config, tree: &Tree) -> Vec<EntityDecl> {
        let mut d = Vec::new();
        if self.per_outlet {
            for o in &cfg.outlets {
                let obj = format!("allowed_{}", object_of(&o.switch));
                d.push(binary_sensor(&obj, &format!("{} allowed", o.switch)).device_class("power"));
            }
        } else {
            for s in &cfg.strips {
                let obj = format!("allowed_{}", object_of(&s.id));
                d.push(sensor(&obj, &format!("{} outlets allowed", s.id)));
            }
        }
        for n in &tree.nodes {
            let obj = format!("headroom_{}", object_of(&n.id));
            d.push(
                sensor(&obj, &format!("{} headroom", n.id))
                    .unit("A")
                    .device_class("current")
                    .state_class("measurement"),
            );
        }
        // The config check refused more than HOST_MAX ([`check`]).
        d
    }

    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &mut self,
        cfg: &Config,
        tree: &Tree,
        on: &[bool],
        why: &[Why],
        draw_a: &[f64],
        memory: &[Memory],
        out: &mut Output,
    ) {
        let mut want: Vec<(String, String, Value)> = Vec::new();
        if self.per_outlet {
            for (i, o) in cfg.outlets.iter().enumerate() {
                let state = if on[i] { "on" } else { "off" };
                want.push((
                    format!("allowed_{}", object_of(&o.switch)),
                    state.into(),
                    json!({"why": why[i].as_str(), "expected_a":
                        round2(memory[i].learned_draw_a.unwrap_or(cfg.assumed_current_a))}),
                ));
            }
        } else {
            for (si, s) in cfg.strips.iter().enumerate() {
                let node = cfg.circuits.len() + si;
                let mut attrs = Map::new();
                let mut allowed = 0;
                for (i, o) in cfg.outlets.iter().enumerate() {
                    if tree.strip_of[i] == node {
                        allowed += usize::from(on[i]);
                        attrs.insert(o.switch.clone(), json!(why[i].as_str()));
                    }
                }
                want.push((
                    format!("allowed_{}", object_of(&s.id)),
                    allowed.to_string(),
                    Value::Object(attrs),
                ));
            }
        }
        let loads = Loads::new(tree, draw_a, on);
        for (n, node) in tree.nodes.iter().enumerate() {
            want.push((
                format!("headroom_{}", object_of(&node.id)),
                format!("{:.1}", loads.headroom(tree, n)),
                Value::Null,
            ));
        }
        let mut budget = HOST_MAX;
        for (obj, state, attrs) in want {
            if budget == 0 {
                break;
            }
            let attrs_text = if attrs.is_null() {
                "{}".to_string()
            } else {
                attrs.to_string()
            };
            if !self.declared.contains(&obj) {
                continue;
            }
            if self.sent.get(&obj) == Some(&(state.clone(), attrs_text.clone())) {
                continue;
            }
            out.entity_with(&obj, &state, attrs);
            self.sent.insert(obj, (state, attrs_text));
            budget -= 1;
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
