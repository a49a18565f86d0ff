//! The plugin's own entities (the host allows `sensor` and
//! `binary_sensor`, at most 64 declared and 64 updates per output):
//!
//! - per outlet `allowed_<switch object id>` (binary_sensor, `on` = may
//!   be on), attribute `why` ([`Why`]) — when outlets and nodes fit in 64
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
    /// object id → (state, attributes) last sent.
    sent: BTreeMap<String, (String, String)>,
}

/// `switch.strip_a_1` → `strip_a_1`; other characters than `[a-z0-9_]` become `_`.
fn object_of(id: &str) -> String {
    let tail = id.split_once('.').map_or(id, |(_, t)| t);
    tail.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '_' }
        })
        .collect()
}

impl Publisher {
    pub fn new(cfg: &Config, tree: &Tree) -> Publisher {
        Publisher {
            per_outlet: cfg.outlets.len() + tree.nodes.len() <= HOST_MAX,
            sent: BTreeMap::new(),
        }
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
        d.truncate(HOST_MAX);
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
        _memory: &[Memory],
        out: &mut Output,
    ) {
        let mut want: Vec<(String, String, Value)> = Vec::new();
        if self.per_outlet {
            for (i, o) in cfg.outlets.iter().enumerate() {
                let state = if on[i] { "on" } else { "off" };
                want.push((
                    format!("allowed_{}", object_of(&o.switch)),
                    state.into(),
                    json!({"why": why[i].as_str()}),
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
            if self.sent.get(&obj) == Some(&(state.clone(), attrs_text.clone())) {
                continue;
            }
            out.entity_with(&obj, &state, attrs);
            self.sent.insert(obj, (state, attrs_text));
            budget -= 1;
        }
    }
}
