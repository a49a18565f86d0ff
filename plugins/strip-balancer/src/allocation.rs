//! The balancer's strategy: limits first, then fair, battery-aware sharing.
//!
//! Each tick, in this order:
//! 1. an outlet whose meter is stale is switched off (it counts as its
//!    strip's full rating while on); one needing no charge (laptop at its
//!    target, nothing plugged: [`crate::need`]) stays as it is;
//! 2. **safety**: every node over its rating sheds switchable outlets
//!    below it, those needing no charge first, then the highest battery
//!    (unknown = 50 %), ignoring `min_on_s` ([`limits::shed`]);
//! 3. beyond `max_parallel` (tariff period), in the same order, yield;
//! 4. **admission**: laptops wanting charge (battery below target, or
//!    unknown = "unknown need" at 50 %), lowest priority score first:
//!    score = battery − `aging_pct_per_min` × minutes waited. Each is
//!    switched on when `min_off_s` has passed and its expected draw fits
//!    every node above it. For the first that does not fit and can be
//!    helped, room is made by switching off in one tick outlets on that
//!    need no charge (they *yield their slot*, fullest first), then
//!    running laptops (`min_on_s` passed) whose battery is above its
//!    battery by more than `rotation_margin_pct`, highest first, as many as
//!    it takes on every node it waits for (a big charger is not left
//!    waiting for one victim that frees enough), or none; it is switched on
//!    once they report off (admission counts an outlet until its switch
//!    reports off, so no room is filled before). Waiting lowers a score
//!    without bound, so a laptop that waits comes first in line; running
//!    laptops reach their target and yield, so every laptop, unknown ones
//!    too, eventually charges if it fits beside the loads the balancer
//!    cannot switch.
//!
//! A laptop stops wanting at its target and wants again below target −
//! `resume_margin_pct`; at target it keeps its outlet until someone who
//! wants charge waits for the room, so it neither drains nor flaps.
//!
//! Departures ([`crate::departure`]): an *urgent* laptop (it must charge
//! now to reach its target before its user leaves) is admitted before the
//! others, earliest departure first, and may take the slot of any running
//! laptop without the rotation margin; urgent and *holding* laptops are
//! never rotation victims, and are shed for a limit only after the others.

use crate::config::Config;
use crate::departure::Plan;
use crate::plan::{Ctx, Strategy, Why};
use crate::tree::limits;

/// Priority of a laptop whose battery is unknown, %: mid, never last.
pub const UNKNOWN_BATTERY_PCT: f64 = 50.0;

pub struct Balancer;

/// Why the outlet needs no charge; None: it wants charge (or unknown need).
fn no_need(ctx: &Ctx, i: usize) -> Option<Why> {
    ctx.views[i].no_need
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
        // 1. stale meters off; outlets needing no charge stay as they are
        // (they yield to a waiting laptop at admission).
        for i in (0..n).filter(|&i| sw[i]) {
            if ctx.views[i].stale() {
                on[i] = false;
                why[i] = Why::MeterStale;
            } else if let Some(w) = no_need(ctx, i) {
                why[i] = match (on[i], ctx.views[i].plan) {
                    (true, Plan::Holding) => Why::HoldingForDeparture,
                    (true, _) => Why::NoOneWaiting,
                    (false, _) => w,
                };
            } else if on[i] {
                why[i] = match ctx.views[i].plan {
                    Plan::Urgent { .. } => Why::DepartureSoon,
                    _ => Why::Charging,
                };
            }
        }
        // Shed and cut first: those not racing a departure, then those
        // needing no charge, then the highest battery.
        let fullest_first = |a: &usize, b: &usize| {
            let key = |i: usize| {
                (
                    !ctx.views[i].plan.protected(),
                    no_need(ctx, i).is_some(),
                    level(ctx, i),
                )
            };
            let (ka, kb) = (key(*a), key(*b));
            kb.0.cmp(&ka.0)
                .then(kb.1.cmp(&ka.1))
                .then(kb.2.total_cmp(&ka.2))
        };
        // 2. safety.
        let mut order: Vec<usize> = (0..n).filter(|&i| sw[i] && on[i]).collect();
        order.sort_by(fullest_first);
        for i in limits::shed(tree, ctx.draw_a, on, sw, &order) {
            why[i] = Why::Limit;
        }
        // 3. parallel count.
        let mut running: Vec<usize> = (0..n)
            .filter(|&i| sw[i] && on[i] && !ctx.cfg.outlets[i].always_on)
            .collect();
        if let Some(max) = ctx.max_parallel {
            running.sort_by(fullest_first);
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
        // Urgent laptops first, earliest departure first; then by score.
        let mut waiting: Vec<((i64, f64), usize)> = (0..n)
            // Not one switched off above in this same tick.
            .filter(|&i| sw[i] && !on[i] && !was_on[i] && !ctx.cfg.outlets[i].always_on)
            .filter(|&i| !ctx.views[i].stale() && no_need(ctx, i).is_none())
            .map(|i| {
                let due = match ctx.views[i].plan {
                    Plan::Urgent { departure_ms } => departure_ms,
                    _ => i64::MAX,
                };
                ((due, score(ctx, i)), i)
            })
            .collect();
        waiting.sort_by(|a, b| a.0.0.cmp(&b.0.0).then(a.0.1.total_cmp(&b.0.1)));
        // One swap per tick: room is made for the first laptop (lowest
        // score) that does not fit and can be helped.
        let mut swapped = false;
        for (_, c) in waiting {
            if ctx.min_off_held(c) {
                why[c] = Why::MinOff;
                continue;
            }
            let urgent = matches!(ctx.views[c].plan, Plan::Urgent { .. });
            let room = ctx.max_parallel.is_none_or(|m| count < m as usize);
            if room && loads.fits(tree, c, ctx.draw_a[c]) {
                on[c] = true;
                why[c] = if urgent {
                    Why::DepartureSoon
                } else {
                    Why::Charging
                };
                loads.add(tree, c, ctx.draw_a[c]);
                count += 1;
                continue;
            }
            why[c] = if room { Why::Limit } else { Why::Parallel };
            // The nodes where `c` does not fit; room is made only if
            // switching loads off there can make enough.
            let binding: Vec<usize> = tree.paths[c]
                .iter()
                .copied()
                .filter(|&node| {
                    loads.node_a[node] + ctx.draw_a[c] > limits::admission_limit(tree, node) + 1e-9
                })
                .collect();
            if swapped || binding.iter().any(|&node| !could_fit(ctx, on, c, node)) {
                continue;
            }
            // No swap while an outlet sharing a node with `c` is being
            // switched off: that room is on its way (a swap's newcomer waits
            // for its victims' off, so more victims would be needless).
            let unconfirmed_off = (0..n).any(|v| {
                ctx.live[v] && !on[v] && tree.paths[c].iter().any(|&node| tree.is_under(v, node))
            });
            if unconfirmed_off {
                continue;
            }
            // Victims on at the start of the tick (not one admitted above),
            // past min_on, under a binding node: those needing no charge
            // first (fullest first), then running laptops above `c`'s battery
            // by the margin, highest battery first — as many as it takes to
            // make room on every binding node, or none.
            let mut candidates: Vec<usize> = (0..n)
                .filter(|&v| was_on[v] && sw[v] && on[v] && !ctx.cfg.outlets[v].always_on)
                .filter(|&v| !ctx.min_on_held(v))
                // Under a node it waits for; any, when only `max_parallel` holds it.
                .filter(|&v| {
                    binding.is_empty() || binding.iter().any(|&node| tree.is_under(v, node))
                })
                // Not one racing its own departure; an urgent laptop may
                // take any other slot, the rest need the margin.
                .filter(|&v| !ctx.views[v].plan.protected())
                .filter(|&v| {
                    urgent
                        || no_need(ctx, v).is_some()
                        || level(ctx, v) > level(ctx, c) + ctx.cfg.rotation_margin_pct
                })
                .collect();
            candidates.sort_by(fullest_first);
            let mut freed = vec![0.0; tree.nodes.len()];
            let mut victims = Vec::new();
            let enough = |freed: &[f64], victims: usize| {
                (room || victims > 0)
                    && binding.iter().all(|&node| {
                        loads.node_a[node] - freed[node] + ctx.draw_a[c]
                            <= limits::admission_limit(tree, node) + 1e-9
                    })
            };
            for v in candidates {
                if enough(&freed, victims.len()) {
                    break;
                }
                for &node in &tree.paths[v] {
                    freed[node] += ctx.draw_a[v];
                }
                victims.push(v);
            }
            if !victims.is_empty() && enough(&freed, victims.len()) {
                // The victims go off now; `c` is switched on at a later
                // tick, once their switches report off (their draw counts
                // until then), by admission above.
                for v in victims {
                    on[v] = false;
                    why[v] = no_need(ctx, v).unwrap_or(Why::Rotation);
                }
                swapped = true;
            }
        }
    }
}

/// Whether `c` would fit under `node` with every switchable outlet below it
/// off: only loads the balancer cannot switch (always-on, unreachable)
/// and outlets that may still draw after a `turn_off` (not yet reported
/// off) stay.
fn could_fit(ctx: &Ctx, on: &[bool], c: usize, node: usize) -> bool {
    let tree = ctx.tree;
    let fixed: f64 = (0..on.len())
        .filter(|&i| i != c && tree.is_under(i, node))
        .filter(|&i| {
            let switchable = ctx.switchable[i] && !ctx.cfg.outlets[i].always_on;
            (on[i] || ctx.live[i]) && !switchable
        })
        .map(|i| ctx.draw_a[i])
        .sum();
    fixed + ctx.draw_a[c] <= limits::admission_limit(tree, node) + 1e-9
}
