//! The balancer's strategy: limits first, then fair, battery-aware sharing.
//!
//! Each tick, in this order:
//! 1. an outlet whose meter is stale is switched off (it counts as its
//!    strip's full rating while on); a laptop at its target yields its
//!    outlet once `min_on_s` has passed;
//! 2. **safety**: every node over its rating sheds switchable outlets
//!    below it, highest battery first (unknown = 50 %), ignoring
//!    `min_on_s` ([`limits::shed`]);
//! 3. beyond `max_parallel` (tariff period), the highest batteries yield;
//! 4. **admission**: laptops wanting charge (battery below target, or
//!    unknown = "unknown need" at 50 %), lowest priority score first:
//!    score = battery − `aging_pct_per_min` × minutes waited. Each is
//!    switched on when `min_off_s` has passed and its assumed draw fits
//!    every node above it. One that does not fit may take the slot of a
//!    running laptop (`min_on_s` passed) whose battery is above its score by
//!    more than `rotation_margin_pct`, if that frees enough: one such swap
//!    per tick; the victim is switched off first and the newcomer on once
//!    the victim's switch reports off (admission counts an outlet until
//!    its switch reports off, so no room is filled before). Waiting lowers a score without bound, so every laptop,
//!    unknown ones too, eventually charges (no starvation).
//!
//! A laptop stops wanting at its target and wants again below target − 2 %
//! ([`RESUME_BELOW_PCT`]), so one at the edge does not flap.

use crate::config::Config;
use crate::plan::{Ctx, Strategy, Why};
use crate::tree::limits;

/// Hysteresis of the target, % of battery.
pub const RESUME_BELOW_PCT: f64 = 2.0;
/// Priority of a laptop whose battery is unknown, %: mid, never last.
pub const UNKNOWN_BATTERY_PCT: f64 = 50.0;

pub struct Balancer;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Need {
    Wants,
    AtTarget,
}

fn need(ctx: &Ctx, i: usize, on: bool) -> Need {
    match ctx.views[i].battery_pct {
        None => Need::Wants,
        Some(b) => {
            let t = ctx.target_pct[i];
            let resume = if on { t } else { t - RESUME_BELOW_PCT };
            if b < resume {
                Need::Wants
            } else {
                Need::AtTarget
            }
        }
    }
}

fn level(ctx: &Ctx, i: usize) -> f64 {
    ctx.views[i].battery_pct.unwrap_or(UNKNOWN_BATTERY_PCT)
}

/// Lower = served first.
fn score(ctx: &Ctx, i: usize) -> f64 {
    let waited_min = ctx.memory[i]
        .waiting_since_ms
        .map_or(0.0, |t| (ctx.now_ms - t).max(0) as f64 / 60_000.0);
    level(ctx, i) - ctx.cfg.aging_pct_per_min * waited_min
}

impl Strategy for Balancer {
    const NAME: &'static str = "strip-balancer";

    fn new(_cfg: &Config) -> Self {
        Balancer
    }

    fn plan(&mut self, ctx: &Ctx, on: &mut [bool], why: &mut [Why]) {
        let n = on.len();
        let was_on = on.to_vec();
        let tree = ctx.tree;
        let sw = ctx.switchable;
        // 1. stale meters off; laptops at target yield.
        for i in (0..n).filter(|&i| sw[i]) {
            if ctx.views[i].stale() {
                on[i] = false;
                why[i] = Why::MeterStale;
            } else if need(ctx, i, on[i]) == Need::AtTarget {
                if on[i] && ctx.min_on_held(i) {
                    why[i] = Why::MinOn;
                } else {
                    on[i] = false;
                    why[i] = Why::TargetReached;
                }
            } else if on[i] {
                why[i] = Why::Charging;
            }
        }
        // 2. safety: highest battery first.
        let mut order: Vec<usize> = (0..n).filter(|&i| sw[i] && on[i]).collect();
        order.sort_by(|&a, &b| level(ctx, b).total_cmp(&level(ctx, a)));
        for i in limits::shed(tree, ctx.draw_a, on, sw, &order) {
            why[i] = Why::Limit;
        }
        // 3. parallel count.
        let mut running: Vec<usize> = (0..n)
            .filter(|&i| sw[i] && on[i] && !ctx.cfg.outlets[i].always_on)
            .collect();
        if let Some(max) = ctx.max_parallel {
            running.sort_by(|&a, &b| level(ctx, b).total_cmp(&level(ctx, a)));
            let mut excess = running.len().saturating_sub(max as usize);
            for &i in &running {
                if excess == 0 {
                    break;
                }
                if !ctx.min_on_held(i) {
                    on[i] = false;
                    why[i] = Why::Parallel;
                    excess -= 1;
                }
            }
        }
        let mut count = (0..n)
            .filter(|&i| sw[i] && on[i] && !ctx.cfg.outlets[i].always_on)
            .count();
        // 4. admission, with at most one rotation swap.
        // Outlets shed above, or commanded off at an earlier tick, count
        // until their switch reports off: no room is filled before.
        let mut loads = ctx.admission_loads(on);
        let mut waiting: Vec<(f64, usize)> = (0..n)
            // Not one switched off above in this same tick.
            .filter(|&i| sw[i] && !on[i] && !was_on[i] && !ctx.cfg.outlets[i].always_on)
            .filter(|&i| !ctx.views[i].stale() && need(ctx, i, false) == Need::Wants)
            .map(|i| (score(ctx, i), i))
            .collect();
        waiting.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut swapped = false;
        for (s, c) in waiting {
            if ctx.min_off_held(c) {
                why[c] = Why::MinOff;
                continue;
            }
            let room = ctx.max_parallel.is_none_or(|m| count < m as usize);
            if room && loads.fits(tree, c, ctx.draw_a[c]) {
                on[c] = true;
                why[c] = Why::Charging;
                loads.add(tree, c, ctx.draw_a[c]);
                count += 1;
                continue;
            }
            why[c] = if room { Why::Limit } else { Why::Parallel };
            if swapped {
                continue;
            }
            // No swap while an outlet sharing a node with `c` is being
            // switched off: that room is on its way (a swap's newcomer waits
            // for its victim's off, so a second victim would be needless).
            let unconfirmed_off = (0..n).any(|v| {
                ctx.live[v] && !on[v] && tree.paths[c].iter().any(|&node| tree.is_under(v, node))
            });
            if unconfirmed_off {
                continue;
            }
            // The running laptop with the highest battery that frees enough;
            // only one on at the start of the tick (not one admitted above).
            let victim = (0..n)
                .filter(|&v| was_on[v] && sw[v] && on[v] && !ctx.cfg.outlets[v].always_on)
                .filter(|&v| !ctx.min_on_held(v))
                .filter(|&v| level(ctx, v) > s + ctx.cfg.rotation_margin_pct)
                .filter(|&v| {
                    tree.paths[c].iter().all(|&node| {
                        let freed = if tree.is_under(v, node) {
                            ctx.draw_a[v]
                        } else {
                            0.0
                        };
                        loads.node_a[node] - freed + ctx.draw_a[c]
                            <= tree.nodes[node].limit_a + 1e-9
                    })
                })
                .max_by(|&a, &b| level(ctx, a).total_cmp(&level(ctx, b)));
            if let Some(v) = victim {
                // The victim goes off now; `c` is switched on at a later
                // tick, once the victim's switch reports off (its draw
                // counts until then), by admission above.
                on[v] = false;
                why[v] = Why::Rotation;
                swapped = true;
            }
        }
    }
}
