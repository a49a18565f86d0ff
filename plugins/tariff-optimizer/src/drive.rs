//! Switch commands: sent when the wanted state changes, and again after
//! `reassert_s` while the switch's reported state differs (a lost command,
//! a relay switched by hand); a refused command is forgotten, so the next
//! decision sends it again.

use hearth_plugin_sdk::{CallResult, Output, State};
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone)]
pub struct Switches {
    /// switch → (wanted on, when last commanded or decided, ms).
    last: BTreeMap<String, (bool, i64)>,
}

impl Switches {
    /// Wants `switch` `on` at `now_ms`; returns whether a command was sent.
    pub fn drive(
        &mut self,
        switch: &str,
        on: bool,
        now_ms: i64,
        reassert_ms: i64,
        out: &mut Output,
    ) -> bool {
        let observed = State::get(switch).and_then(|s| s.is_on());
        let send = match self.last.get(switch) {
            None => observed != Some(on),
            Some(&(was, _)) if was != on => true,
            Some(&(_, at)) => observed != Some(on) && now_ms - at >= reassert_ms,
        };
        if send {
            if on {
                out.turn_on(switch);
            } else {
                out.turn_off(switch);
            }
            self.last.insert(switch.to_string(), (on, now_ms));
        } else if !self.last.contains_key(switch) {
            self.last.insert(switch.to_string(), (on, now_ms));
        }
        send
    }

    /// What was last wanted of `switch`.
    pub fn wanted(&self, switch: &str) -> Option<bool> {
        self.last.get(switch).map(|l| l.0)
    }

    /// A refused command is not done: forget it (sent again next time).
    pub fn on_result(&mut self, result: &CallResult) {
        if result.is_refused() {
            for e in &result.entity_ids {
                self.last.remove(e);
            }
        }
    }
}
