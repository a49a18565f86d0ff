//! `off-peak-rule`: the French "heures creuses" (HC) contactor, driven by
//! `tariff_period` (`HC`/`HP`):
//!
//! - a water heater: enabled only while HC;
//! - a machine: started at the first HC after it is loaded (at once if
//!   loaded during HC), then run to the end (`ready` off) even into HP,
//!   never split (the machines it started are remembered and saved);
//! - any other plug load (`deferrable`): on during HC inside its window
//!   until its energy for the window is delivered;
//! - an EV: charged only during HC, until `target_pct` (its reading less
//!   half its last digit, [`inputs::soc_floor_pct`]) or unplugged.
//!
//! A `tariff_period` that is neither `HC` nor `HP` (unavailable) leaves
//! every switch as it is (logged once).

use super::{describe, drive_all};
use crate::config::{Config, LoadConfig};
use crate::drive::Switches;
use crate::inputs::{self, Delivered};
use hearth_plugin_sdk::serde_json::Value;
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, Output, State, info, now_ms, restore_json,
    save_json, warn,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub struct OffPeakRule {
    cfg: Config,
    switches: Switches,
    mem: Saved,
    warned: bool,
}

/// Machines it started (load ids), deferrable loads' energy.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    started_machines: BTreeSet<String>,
    delivered: BTreeMap<String, Delivered>,
}

/// `HC` → true, `HP` → false, else none.
pub fn off_peak(entity: &str) -> Option<bool> {
    let s = State::get(entity)?;
    match s.state.trim().to_ascii_uppercase().as_str() {
        "HC" => Some(true),
        "HP" => Some(false),
        _ => None,
    }
}

impl OffPeakRule {
    fn decide(&mut self, now: i64, out: &mut Output) {
        let hc = off_peak(&self.cfg.tariff_period);
        match (hc, self.warned) {
            (None, false) => {
                warn(&format!(
                    "{} is neither HC nor HP: switches left as they are",
                    self.cfg.tariff_period
                ));
                self.warned = true;
            }
            (Some(_), true) => self.warned = false,
            _ => {}
        }
        let mem = &mut self.mem;
        let off = self.cfg.utc_offset_min;
        drive_all(&self.cfg, &mut self.switches, now, out, |l| match l {
            LoadConfig::Deferrable(d) => {
                let got = inputs::account(d, &mut mem.delivered, now, off);
                let (ws, we) = d.window(now, off);
                let due = ws <= now && now < we && got < d.energy() - 1e-6;
                if due { hc } else { Some(false) }
            }
            LoadConfig::Thermal(_) => hc,
            LoadConfig::Sequence(s) => {
                let ready = inputs::is_on(&s.ready);
                if mem.started_machines.contains(&s.id) {
                    if ready == Some(false) {
                        mem.started_machines.remove(&s.id);
                        return Some(false);
                    }
                    return Some(true);
                }
                match (ready, hc) {
                    (Some(true), Some(true)) => {
                        mem.started_machines.insert(s.id.clone());
                        info(&format!("{}: loaded during HC: starting", s.id));
                        Some(true)
                    }
                    (Some(false), _) | (Some(true), Some(false)) => Some(false),
                    _ => None,
                }
            }
            LoadConfig::Battery(b) => {
                let plugged = inputs::is_on(&b.plugged)?;
                let below = inputs::soc_floor_pct(&b.soc).is_none_or(|soc| soc < b.target_pct);
                if !(plugged && below) {
                    return Some(false);
                }
                hc
            }
        });
    }
}

impl Controller for OffPeakRule {
    fn init(config: Value) -> Result<Self, String> {
        Ok(OffPeakRule {
            cfg: Config::parse(config)?,
            switches: Switches::default(),
            mem: Saved::default(),
            warned: false,
        })
    }

    fn describe(&self) -> Description {
        describe(&self.cfg, "off-peak-rule", &[&self.cfg.tariff_period])
    }

    fn on_state(&mut self, _change: Change, out: &mut Output) {
        self.decide(now_ms(), out);
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        self.decide(now_ms, out);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.mem)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.mem = restore_json(bytes)?;
        Ok(())
    }

    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        if result.is_refused() && result.service == "turn_on" {
            for l in &self.cfg.loads {
                if result.entity_ids.iter().any(|e| e == l.switch()) {
                    self.mem.started_machines.remove(l.id());
                }
            }
        }
        self.switches.on_result(&result);
    }
}
