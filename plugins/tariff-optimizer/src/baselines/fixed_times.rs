//! `fixed-times`: what a person does, loads at set hours.
//!
//! - a machine with `fixed_start`: started at that local time if it was
//!   loaded by then (`ready` on since before it); one loaded later waits
//!   for the next day's `fixed_start`; it runs until done (`ready` off).
//!   Without `fixed_start`: started as soon as it is loaded;
//! - an EV with `fixed_start`: charges from that time (if plugged in by
//!   then; plugged later: from the next day's) until it reaches
//!   `target_pct` (its reading less half its last digit,
//!   [`inputs::soc_floor_pct`]) or is unplugged; without `fixed_start`, from plug-in. An
//!   EV without a battery reading charges while plugged;
//! - a water heater: enabled inside its `fixed_on` windows (default all
//!   day); its own thermostat regulates;
//! - any other plug load (`deferrable`): on from `fixed_start` (default:
//!   its window's start) until its energy for the window is delivered or
//!   the window ends.
//!
//! A load's "since" is its `ready`/`plugged` entity's `last_changed`; the
//! only memory is a deferrable load's energy in its window (saved).

use super::{describe, drive_all};
use crate::config::{Config, LoadConfig};
use crate::drive::Switches;
use crate::inputs::{self, Delivered};
use crate::time::{LocalTime, in_window};
use hearth_plugin_sdk::serde_json::Value;
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, Output, State, now_ms, restore_json, save_json,
};
use std::collections::BTreeMap;

pub struct FixedTimes {
    cfg: Config,
    switches: Switches,
    delivered: BTreeMap<String, Delivered>,
}

/// On since `since_ms`, and the first `start` at or after it has come.
fn due(start: Option<LocalTime>, since_ms: i64, now_ms: i64, utc_offset_min: i32) -> bool {
    start.is_none_or(|t| t.first_at_or_after(since_ms, utc_offset_min) <= now_ms)
}

impl FixedTimes {
    fn decide(&mut self, now: i64, out: &mut Output) {
        let off = self.cfg.utc_offset_min;
        let cfg = &self.cfg;
        let delivered = &mut self.delivered;
        drive_all(cfg, &mut self.switches, now, out, |l| match l {
            LoadConfig::Deferrable(d) => {
                let got = inputs::account(d, delivered, now, off);
                let (ws, we) = d.window(now, off);
                let from = d.fixed_start.map_or(ws, |t| t.first_at_or_after(ws, off));
                Some(from <= now && now < we && got < d.energy() - 1e-6)
            }
            LoadConfig::Thermal(t) => {
                Some(t.fixed_on.iter().any(|[a, b]| in_window(now, off, *a, *b)))
            }
            LoadConfig::Sequence(s) => {
                let r = State::get(&s.ready)?;
                Some(r.is_on()? && due(s.fixed_start, r.last_changed_ms, now, off))
            }
            LoadConfig::Battery(b) => {
                let p = State::get(&b.plugged)?;
                let below = inputs::soc_floor_pct(&b.soc).is_none_or(|soc| soc < b.target_pct);
                Some(p.is_on()? && below && due(b.fixed_start, p.last_changed_ms, now, off))
            }
        });
    }
}

impl Controller for FixedTimes {
    fn init(config: Value) -> Result<Self, String> {
        Ok(FixedTimes {
            cfg: Config::parse(config)?,
            switches: Switches::default(),
            delivered: BTreeMap::new(),
        })
    }

    fn describe(&self) -> Description {
        describe(&self.cfg, "fixed-times", &[])
    }

    fn on_state(&mut self, _change: Change, out: &mut Output) {
        self.decide(now_ms(), out);
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        self.decide(now_ms, out);
    }

    fn save(&self) -> Vec<u8> {
        save_json(&self.delivered)
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.delivered = restore_json(bytes)?;
        Ok(())
    }

    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        self.switches.on_result(&result);
    }
}
