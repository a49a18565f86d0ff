//! The shell every strategy runs in: reads the outlets, the batteries, the
//! tariff period, the outlets' holders and the opening hours at each tick
//! (1 s), switches every outlet off outside opening hours and the outlets
//! of users over their limit (`always_on` ones excepted), lets the
//! [`Strategy`] decide the rest, sends the changes (one `turn_on` and one
//! `turn_off` call per domain, so 100 outlets stay within the host's 64
//! calls per output) and publishes the plugin's entities
//! ([`crate::entities`]).
//!
//! A command in flight is what the strategy starts from for [`PENDING_MS`];
//! after that the switch's own state is believed again, so a refused or
//! lost command is decided (and sent) again. For load, an outlet counts as
//! on while its switch reports on or a `turn_on` is pending: a pending
//! `turn_off` frees room only once the switch reports off. Every
//! `turn_off` of a tick is sent before any `turn_on`.

use crate::config::{ClosedOff, Config};
use crate::departure;
use crate::entities::Publisher;
use crate::meter::{self, OutletView};
use crate::need;
use crate::plan::{Ctx, Memory, Strategy, Why};
use crate::tariff::{self, strategy as tariff_strategy};
use crate::tree::Tree;
use hearth_plugin_sdk::serde_json::{self, Value, json};
use hearth_plugin_sdk::{
    CallResult, Change, Controller, Description, Output, State, restore_json, save_json,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Tick period, ms: shedding happens within one tick of an overload.
pub const TICK_MS: u32 = 1000;
/// How long a sent command is believed before the switch's state, ms
/// (a relay answers within a second; a refused command is known sooner).
pub const PENDING_MS: i64 = 5_000;

pub struct Plugin<S: Strategy> {
    pub cfg: Config,
    pub tree: Tree,
    pub strategy: S,
    pub memory: Vec<Memory>,
    /// Last known opening state (unavailable keeps it).
    open: bool,
    publisher: Publisher,
    /// The last tick's decisions (for tests and entities).
    pub last_on: Vec<bool>,
    pub last_why: Vec<Why>,
}

/// What survives a restart: per switch, the last transition, the start
/// of its wait (rotation fairness) and its target latch. Tolerant of any other plugin's state.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    outlets: BTreeMap<String, SavedOutlet>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct SavedOutlet {
    last_switch_ms: Option<i64>,
    waiting_since_ms: Option<i64>,
    /// The target latch ([`crate::need`]): a laptop switched off at target
    /// is not switched back on at the first tick after a restart.
    satisfied_at_pct: Option<f64>,
    /// Whose latch it is: the holder's user id (`""`: nobody). A seat that
    /// changed hands while Hearth was down must not keep the latch.
    holder: Option<String>,
}

impl<S: Strategy> Plugin<S> {
    /// One tick: read, decide, act. Cheap: O(outlets × depth) plus sorts.
    pub fn step(&mut self, now_ms: i64, out: &mut Output) {
        let n = self.cfg.outlets.len();
        if let Some(open) = &self.cfg.open
            && let Some(s) = State::get(open).and_then(|s| s.is_on())
        {
            self.open = s;
        }
        let period = tariff::period(self.cfg.tariff.as_ref());
        let max_parallel = tariff_strategy::max_parallel(&self.cfg, period);
        let mut views = Vec::with_capacity(n);
        let mut on = Vec::with_capacity(n);
        let mut switchable = Vec::with_capacity(n);
        let mut draw = Vec::with_capacity(n);
        let mut target = Vec::with_capacity(n);
        let mut live = Vec::with_capacity(n);
        let mut over_limit = Vec::with_capacity(n);
        let closed_all = !self.open && self.cfg.closed_off == ClosedOff::All;
        for i in 0..n {
            let o = &self.cfg.outlets[i];
            let switch = meter::switch_state(&o.switch);
            let mem = &mut self.memory[i];
            if mem.last_switch_ms.is_none() {
                mem.last_switch_ms = State::get(&o.switch).map(|s| s.last_changed_ms);
            }
            // A switch that changed to the other state after our command
            // (a user in HA) overrides it: the command is no longer pending.
            let changed_ms = State::get(&o.switch).map(|s| s.last_changed_ms);
            if let Some((c, t)) = mem.commanded
                && switch == Some(!c)
                && changed_ms.is_some_and(|ch| ch > t)
            {
                mem.commanded = None;
            }
            let pending = mem
                .commanded
                .filter(|(_, t)| now_ms - t < PENDING_MS)
                .map(|(c, _)| c);
            // What the strategy starts from: the command in flight, else the
            // switch; an unknown switch may be closed, so it counts as on.
            let is_on = match switch {
                None => true,
                Some(s) => pending.unwrap_or(s),
            };
            // What may draw now: a pending `turn_off` is believed only once
            // the switch reports off (a lost or slow one must not make room).
            live.push(switch != Some(false) || pending == Some(true));
            if switch == Some(false) && pending != Some(true) {
                mem.on_since_ms = None;
            }
            let holder = need::holder(&self.cfg, o);
            let user = holder.map(|u| &self.cfg.users[u]);
            let battery = user
                .and_then(|u| u.battery.as_deref())
                .and_then(meter::battery_pct);
            let user_target = user.map_or(100.0, |u| u.target_pct);
            let measured = meter::measured_a(&self.cfg, i, now_ms);
            let strip_limit = self.tree.nodes[self.tree.strip_of[i]].limit_a;
            // Settling counts from the later of our switch-on and the
            // switch's own last change: an outlet switched on by a user, or
            // on before a restart, or whose `turn_on` landed late, is not yet
            // seen by its meter either.
            let since = match switch {
                Some(true) => mem.on_since_ms.max(changed_ms),
                _ if is_on => mem.on_since_ms,
                _ => Some(now_ms),
            };
            let target_pct = tariff_strategy::target_pct(&self.cfg, period, user_target);
            target.push(target_pct);
            let seen = need::Seen {
                holder,
                battery_pct: battery,
                target_pct,
                empty_seat: o.user_entity.is_some() && holder.is_none(),
                on: switch == Some(true) && pending != Some(false),
                settled: since.is_none_or(|t| (now_ms - t) as f64 >= self.cfg.settle_s * 1000.0),
                measured_a: measured,
            };
            let mut no_need = need::update(&self.cfg, mem, &seen);
            departure::learn_rates(
                mem,
                now_ms,
                battery,
                seen.on && seen.settled,
                switch == Some(false) && pending != Some(true),
            );
            let plan = departure::plan(
                &self.cfg,
                mem,
                &departure::Standing {
                    battery_pct: battery,
                    target_pct,
                    // Below target wants charge for the plan even while
                    // the latch holds: it must not leave short.
                    wants: battery.is_some_and(|b| b < target_pct)
                        && no_need != Some(Why::NothingPlugged),
                    departure_ms: user.and_then(|u| u.departure.as_deref()).and_then(|e| {
                        let overdue_ms = (self.cfg.departure_slack_s * 1000.0) as i64;
                        departure::departure_ms(e, now_ms, overdue_ms)
                    }),
                },
                now_ms,
            );
            if matches!(plan, departure::Plan::Urgent { .. }) {
                no_need = None;
            }
            let expected = mem.learned_draw_a.unwrap_or(self.cfg.assumed_current_a);
            draw.push(meter::draw_a(
                &self.cfg,
                strip_limit,
                measured,
                expected,
                since,
                now_ms,
            ));
            // Over its user's limit: kept off here, for every strategy.
            let over = !o.always_on && switch.is_some() && need::over_limit(&self.cfg, holder);
            over_limit.push(over);
            switchable.push(!over && switch.is_some() && (!o.always_on || closed_all));
            on.push(is_on && !over);
            views.push(OutletView {
                switch,
                measured_a: measured,
                draw_a: *draw.last().unwrap_or(&0.0),
                battery_pct: battery,
                no_need,
                plan,
            });
        }
        let mut why: Vec<Why> = (0..n)
            .map(|i| {
                if views[i].switch.is_none() {
                    Why::Unreachable
                } else if over_limit[i] {
                    Why::OverLimit
                } else if self.cfg.outlets[i].always_on {
                    Why::AlwaysOn
                } else if on[i] {
                    Why::Charging
                } else {
                    Why::Limit
                }
            })
            .collect();
        if self.open {
            // Always-on outlets switched off at closing come back on.
            for i in 0..n {
                let o = &self.cfg.outlets[i];
                if o.always_on
                    && views[i].switch == Some(false)
                    && matches!(self.memory[i].commanded, Some((false, _)))
                {
                    on[i] = true;
                }
            }
            let ctx = Ctx {
                cfg: &self.cfg,
                tree: &self.tree,
                now_ms,
                views: &views,
                draw_a: &draw,
                switchable: &switchable,
                target_pct: &target,
                max_parallel,
                memory: &self.memory,
                live: &live,
            };
            self.strategy.plan(&ctx, &mut on, &mut why);
        } else {
            for i in 0..n {
                if switchable[i] || over_limit[i] {
                    on[i] = false;
                    why[i] = Why::Closed;
                }
            }
        }
        self.act(now_ms, &views, &on, &over_limit, out);
        self.publisher
            .publish(&self.cfg, &self.tree, &on, &why, &draw, &self.memory, out);
        self.last_on = on;
        self.last_why = why;
    }

    /// Sends what changed; updates the memory.
    fn act(
        &mut self,
        now_ms: i64,
        views: &[OutletView],
        on: &[bool],
        over_limit: &[bool],
        out: &mut Output,
    ) {
        // Per (service, domain); `turn_off` sorts before `turn_on`, so every
        // off is sent before any on.
        let mut calls: BTreeMap<(&'static str, String), Vec<String>> = BTreeMap::new();
        for (i, o) in self.cfg.outlets.iter().enumerate() {
            let mem = &mut self.memory[i];
            let pending = mem
                .commanded
                .filter(|(_, t)| now_ms - t < PENDING_MS)
                .map(|(c, _)| c);
            let present = pending.or(views[i].switch);
            if views[i].switch.is_some() && present != Some(on[i]) {
                let domain = o.switch.split_once('.').map_or("switch", |(d, _)| d);
                let service = if on[i] { "turn_on" } else { "turn_off" };
                calls
                    .entry((service, domain.to_string()))
                    .or_default()
                    .push(o.switch.clone());
                mem.commanded = Some((on[i], now_ms));
                mem.last_switch_ms = Some(now_ms);
                mem.on_since_ms = on[i].then_some(now_ms);
            }
            // Rotation's aging: a wait starts when an outlet is off and wants charge.
            let wants = views[i].no_need.is_none() && !over_limit[i];
            if on[i] || !wants {
                mem.waiting_since_ms = None;
            } else if mem.waiting_since_ms.is_none() {
                mem.waiting_since_ms = Some(now_ms);
            }
        }
        for ((service, domain), ids) in calls {
            out.call_with(&domain, service, &ids, Value::Null);
        }
    }
}

impl<S: Strategy> Controller for Plugin<S> {
    fn init(config: Value) -> Result<Self, String> {
        let cfg = Config::parse(config)?;
        let tree = Tree::new(&cfg);
        let n = cfg.outlets.len();
        Ok(Plugin {
            strategy: S::new(&cfg),
            publisher: Publisher::new(&cfg, &tree),
            memory: vec![Memory::default(); n],
            open: true,
            last_on: vec![false; n],
            last_why: vec![Why::Limit; n],
            cfg,
            tree,
        })
    }

    fn describe(&self) -> Description {
        let mut reads: Vec<String> = Vec::new();
        let mut drives = Vec::new();
        for o in &self.cfg.outlets {
            reads.push(o.switch.clone());
            reads.extend(o.current.iter().cloned());
            reads.extend(o.power.iter().cloned());
            reads.extend(o.user_entity.iter().cloned());
            drives.push(o.switch.clone());
        }
        for u in &self.cfg.users {
            reads.extend(u.battery.iter().cloned());
            reads.extend(u.over_limit.iter().cloned());
            reads.extend(u.departure.iter().cloned());
        }
        reads.extend(self.cfg.tariff.iter().map(|t| t.entity.clone()));
        reads.extend(self.cfg.open.iter().cloned());
        reads.sort();
        reads.dedup();
        Description {
            name: S::NAME.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads,
            drives,
            config_schema: crate::config::schema().to_string(),
            tick_period_ms: TICK_MS,
            entities: self.publisher.decls(&self.cfg, &self.tree),
        }
    }

    /// Decisions are made at ticks (every second), from the host's states.
    fn on_state(&mut self, _change: Change, _out: &mut Output) {}

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        self.step(now_ms, out);
    }

    fn on_call_result(&mut self, result: CallResult, _out: &mut Output) {
        if result.is_refused() {
            // Believe the switch again at once; the next tick decides anew.
            for (i, o) in self.cfg.outlets.iter().enumerate() {
                if result.entity_ids.contains(&o.switch) {
                    self.memory[i].commanded = None;
                }
            }
        }
    }

    fn save(&self) -> Vec<u8> {
        let outlets = self
            .cfg
            .outlets
            .iter()
            .zip(&self.memory)
            .map(|(o, m)| {
                let s = SavedOutlet {
                    last_switch_ms: m.last_switch_ms,
                    waiting_since_ms: m.waiting_since_ms,
                    satisfied_at_pct: m.satisfied_at_pct,
                    holder: m.holder.map(|h| {
                        h.and_then(|u| self.cfg.users.get(u))
                            .map_or(String::new(), |u| u.id.clone())
                    }),
                };
                (o.switch.clone(), s)
            })
            .collect();
        save_json(&Saved { outlets })
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        let saved: Saved = restore_json(bytes)?;
        for (o, m) in self.cfg.outlets.iter().zip(&mut self.memory) {
            if let Some(s) = saved.outlets.get(&o.switch) {
                m.last_switch_ms = s.last_switch_ms;
                m.waiting_since_ms = s.waiting_since_ms;
                m.satisfied_at_pct = s.satisfied_at_pct;
                // Restored as the holder of the latch, so the first tick
                // sees a change of hands and drops it; an unknown id (a
                // user removed from the config) counts as somebody else.
                m.holder = s.holder.as_ref().map(|id| {
                    if id.is_empty() {
                        None
                    } else {
                        Some(
                            self.cfg
                                .users
                                .iter()
                                .position(|u| &u.id == id)
                                .unwrap_or(usize::MAX),
                        )
                    }
                });
            }
        }
        Ok(())
    }
}

/// For logs and tests: `{"switch.x": "why"}`.
pub fn why_map<S: Strategy>(p: &Plugin<S>) -> Value {
    let m: serde_json::Map<String, Value> = p
        .cfg
        .outlets
        .iter()
        .zip(&p.last_why)
        .map(|(o, w)| (o.switch.clone(), json!(w.as_str())))
        .collect();
    Value::Object(m)
}

/// What switching `switch` on commits until its meter settles, A (tests'
/// limit oracle); None for a switch the config does not have.
#[cfg(test)]
pub fn expected_a<S: Strategy>(p: &Plugin<S>, switch: &str) -> Option<f64> {
    let i = p.cfg.outlets.iter().position(|o| o.switch == switch)?;
    Some(
        p.memory[i]
            .learned_draw_a
            .unwrap_or(p.cfg.assumed_current_a),
    )
}
