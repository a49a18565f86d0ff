//! What an outlet's laptop needs, as the shell reads it at each tick: who
//! holds the outlet (a fixed `user`, or the user id in a `select` entity,
//! `user_entity`), whether that user is over their limit, and whether the
//! laptop needs charge at all (the target latch and the empty seat).
//!
//! - **Target latch**: a laptop is satisfied from the tick its battery
//!   reaches the target in force until it falls below target −
//!   `resume_margin_pct`, so one switched off at 80 % is not switched
//!   back on at 79 % (relay chatter, issue 14's coworking simulation). A
//!   raised target (off-peak) or a change of holder ends it.
//! - **Empty seat**: an outlet with a `user_entity` and no holder is
//!   "unknown need" until it is seen on, settled, drawing under
//!   [`PLUGGED_MIN_A`]: nothing is plugged, so it is not rotated in again
//!   until it draws or its holder changes.
//! - **Learned draw**: the highest settled current of the outlet's laptop
//!   while on and charging, committed when it is switched on again
//!   instead of `assumed_current_a` (a 0.9 A laptop fits in 1.0 A of
//!   headroom that a 1.5 A assumption would keep idle for hours). Forgotten
//!   when the laptop may have changed: a change of holder, the outlet seen
//!   on drawing nothing (unplugged), its battery reading gone, its
//!   battery higher while the outlet was off, or a jump of more than
//!   [`SWAP_JUMP_PCT`] between two ticks (another laptop). A bigger
//!   laptop slipping past these is seen at its first settled reading and
//!   shed within the tick, as any load that grows.

use crate::config::{Config, OutletConfig};
use crate::plan::{Memory, Why};
use hearth_plugin_sdk::State;

/// A battery reading that moves more than this between two ticks (1 s)
/// is another laptop, %. A sensor that reports seldom (every few minutes,
/// or after the laptop slept) can move more than this on its own: then
/// what was learned is forgotten needlessly (the assumed draw and rates
/// are used again: conservative). A swap between two laptops within this
/// of each other is not seen here; the holder's change or the learned
/// draw's own checks may still see it.
pub const SWAP_JUMP_PCT: f64 = 5.0;

/// Below this an outlet on and settled has nothing plugged, A (≈ 5 W at
/// 230 V: more than a relay's meter noise, less than any laptop charging).
pub const PLUGGED_MIN_A: f64 = 0.02;

/// `select` states meaning nobody holds the outlet (HA's `unknown` and
/// `unavailable`, and the usual "free seat" options).
pub const NO_HOLDER: [&str; 4] = ["none", "nobody", "unknown", "unavailable"];

/// The index in `users` of who holds outlet `o` now; None: nobody (or a
/// state that is no user id).
pub fn holder(cfg: &Config, o: &OutletConfig) -> Option<usize> {
    let id = match (&o.user, &o.user_entity) {
        (Some(u), _) => u.clone(),
        (None, Some(e)) => State::get(e)?.state,
        (None, None) => return None,
    };
    // A select's "nobody" state is nobody, even if a user had that id.
    if o.user.is_none() && NO_HOLDER.contains(&id.as_str()) {
        return None;
    }
    cfg.users.iter().position(|u| u.id == id)
}

/// `on` when the user's `over_limit` binary sensor is `on`; anything else
/// (off, unavailable, no sensor) is not over.
pub fn over_limit(cfg: &Config, user: Option<usize>) -> bool {
    user.and_then(|u| cfg.users[u].over_limit.as_deref())
        .and_then(State::get)
        .and_then(|s| s.is_on())
        .unwrap_or(false)
}

/// What the shell knows of the outlet this tick, for [`update`].
pub struct Seen {
    pub holder: Option<usize>,
    pub battery_pct: Option<f64>,
    /// Target in force, %.
    pub target_pct: f64,
    /// A `user_entity` outlet with nobody holding it.
    pub empty_seat: bool,
    /// Its switch reports on and no `turn_off` is pending.
    pub on: bool,
    /// Its meter has had `settle_s` since the switch-on.
    pub settled: bool,
    pub measured_a: Option<f64>,
}

/// Updates the latches in `mem`; returns why the laptop needs no charge
/// ([`Why::TargetReached`], [`Why::NothingPlugged`]), None when it wants
/// charge (or its need is unknown).
pub fn update(cfg: &Config, mem: &mut Memory, s: &Seen) -> Option<Why> {
    // A battery that jumps between two ticks is another laptop on the
    // seat (one leaving and the next sitting down within a second, on an
    // outlet of a fixed `user`): no laptop charges or drains that fast.
    let jumped = matches!((mem.last_battery_pct, s.battery_pct),
        (Some(a), Some(b)) if (a - b).abs() > SWAP_JUMP_PCT);
    if jumped || mem.holder.is_some_and(|h| h != s.holder) {
        mem.satisfied_at_pct = None;
        mem.nothing_plugged = false;
        forget_laptop(mem);
    }
    learn_draw(mem, s);
    mem.holder = Some(s.holder);
    mem.satisfied_at_pct = match (s.battery_pct, mem.satisfied_at_pct) {
        (None, _) => None,
        (Some(b), _) if b >= s.target_pct => Some(s.target_pct),
        (Some(_), Some(t)) if s.target_pct > t => None,
        (Some(b), _) if b < s.target_pct - cfg.resume_margin_pct => None,
        (Some(_), kept) => kept,
    };
    if !s.empty_seat {
        mem.nothing_plugged = false;
    } else if s.on {
        match s.measured_a {
            Some(a) if a >= PLUGGED_MIN_A => mem.nothing_plugged = false,
            Some(_) if s.settled => mem.nothing_plugged = true,
            _ => {}
        }
    }
    if mem.nothing_plugged {
        mem.learned_draw_a = None;
        Some(Why::NothingPlugged)
    } else if mem.satisfied_at_pct.is_some() {
        Some(Why::TargetReached)
    } else {
        None
    }
}

/// Forgets what was learned of the laptop on the outlet (its draw, its
/// charge and drain rates): another one may sit there now.
fn forget_laptop(mem: &mut Memory) {
    mem.learned_draw_a = None;
    mem.rate_anchor = None;
    mem.rate_last_pct = None;
    mem.charge_pct_per_min = None;
    mem.drain_pct_per_min = None;
}

/// Updates [`Memory::learned_draw_a`] (see the module doc).
fn learn_draw(mem: &mut Memory, s: &Seen) {
    let rose_while_off =
        !s.on && matches!((mem.last_battery_pct, s.battery_pct), (Some(a), Some(b)) if b > a + 0.5);
    let gone = mem.last_battery_pct.is_some() && s.battery_pct.is_none();
    if rose_while_off || gone {
        forget_laptop(mem);
    }
    mem.last_battery_pct = s.battery_pct;
    if s.on && s.settled {
        match s.measured_a {
            Some(a) if a >= PLUGGED_MIN_A => {
                mem.learned_draw_a = Some(mem.learned_draw_a.map_or(a, |l| l.max(a)));
            }
            Some(_) => mem.learned_draw_a = None,
            None => {}
        }
    }
}
