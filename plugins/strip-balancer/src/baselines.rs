//! The comparison strategies, each built as its own component
//! (`builtin:all-on`, `builtin:first-come`, `builtin:round-robin`) over
//! the same shell as the balancer (same readings, opening hours, entities),
//! so a simulation compares strategies, not plumbing.

use crate::config::Config;
use crate::plan::{Ctx, Strategy, Why};
use crate::tree::limits;

/// Every outlet on, no limit: what a plain strip does.
pub struct AllOn;

impl Strategy for AllOn {
    const NAME: &'static str = "all-on";
    fn new(_cfg: &Config) -> Self {
        AllOn
    }
    fn plan(&mut self, ctx: &Ctx, on: &mut [bool], why: &mut [Why]) {
        for i in (0..on.len()).filter(|&i| ctx.switchable[i]) {
            on[i] = true;
            why[i] = Why::NoBalancing;
        }
    }
}

/// EVCC-like first come, first served: outlets are admitted in the order
/// they first asked (were seen off or started drawing), while the measured
/// load plus the newcomer's assumed draw fits every node; a newcomer that
/// does not fit is refused (retried after `min_off_s`); an overload sheds
/// the last admitted first. No battery awareness, no target, no rotation.
pub struct FirstCome {
    /// Per outlet: its place in the queue (lower = earlier).
    arrival: Vec<Option<u64>>,
    next: u64,
}

impl Strategy for FirstCome {
    const NAME: &'static str = "first-come";
    fn new(cfg: &Config) -> Self {
        FirstCome {
            arrival: vec![None; cfg.outlets.len()],
            next: 0,
        }
    }
    fn plan(&mut self, ctx: &Ctx, on: &mut [bool], why: &mut [Why]) {
        let n = on.len();
        let sw = ctx.switchable;
        // Those already drawing arrived first.
        for pass_on in [true, false] {
            for i in 0..n {
                if sw[i] && on[i] == pass_on && self.arrival[i].is_none() {
                    self.arrival[i] = Some(self.next);
                    self.next += 1;
                }
            }
        }
        for i in (0..n).filter(|&i| sw[i] && ctx.views[i].stale()) {
            on[i] = false;
            why[i] = Why::MeterStale;
        }
        let mut latest_first: Vec<usize> = (0..n).filter(|&i| sw[i] && on[i]).collect();
        latest_first.sort_by_key(|&i| std::cmp::Reverse(self.arrival[i]));
        for i in limits::shed(ctx.tree, ctx.draw_a, on, sw, &latest_first) {
            why[i] = Why::Limit;
        }
        let mut loads = ctx.admission_loads(on);
        let mut queue: Vec<usize> = (0..n)
            .filter(|&i| sw[i] && !on[i] && !ctx.views[i].stale())
            .filter(|&i| !ctx.cfg.outlets[i].always_on)
            .collect();
        queue.sort_by_key(|&i| self.arrival[i]);
        for i in queue {
            if ctx.min_off_held(i) {
                why[i] = Why::MinOff;
            } else if loads.fits(ctx.tree, i, ctx.draw_a[i]) {
                on[i] = true;
                why[i] = Why::Charging;
                loads.add(ctx.tree, i, ctx.draw_a[i]);
            } else {
                why[i] = Why::Limit;
            }
        }
    }
}

/// Fixed time slots of `slot_s`, whatever the batteries: in each slot the
/// switchable outlets are taken in turn (config order, starting where the
/// last slot stopped) while the count of outlets on under every node times
/// `assumed_current_a` stays within its rating. Measured loads, always-on
/// loads and stale meters are not looked at: a count-based scheduler.
pub struct RoundRobin;

impl Strategy for RoundRobin {
    const NAME: &'static str = "round-robin";
    fn new(_cfg: &Config) -> Self {
        RoundRobin
    }
    fn plan(&mut self, ctx: &Ctx, on: &mut [bool], why: &mut [Why]) {
        let list: Vec<usize> = (0..on.len())
            .filter(|&i| ctx.switchable[i] && !ctx.cfg.outlets[i].always_on)
            .collect();
        if list.is_empty() {
            return;
        }
        let slot = (ctx.now_ms.max(0) as f64 / (ctx.cfg.slot_s * 1000.0)) as usize;
        // How many fit at once (from the start of the list): the stride.
        let stride = admit(ctx, &list, 0).len().max(1);
        let chosen = admit(ctx, &list, (slot * stride) % list.len());
        for &i in &list {
            on[i] = chosen.contains(&i);
            why[i] = if on[i] {
                Why::Charging
            } else {
                Why::NotItsSlot
            };
        }
    }
}

/// Outlets of `list` from `start` (cyclic) admitted by count × assumed current.
fn admit(ctx: &Ctx, list: &[usize], start: usize) -> Vec<usize> {
    let a = ctx.cfg.assumed_current_a;
    let mut count = vec![0usize; ctx.tree.nodes.len()];
    let mut chosen = Vec::new();
    for k in 0..list.len() {
        let i = list[(start + k) % list.len()];
        let path = &ctx.tree.paths[i];
        if path
            .iter()
            .all(|&n| (count[n] + 1) as f64 * a <= ctx.tree.nodes[n].limit_a + 1e-9)
        {
            for &n in path {
                count[n] += 1;
            }
            chosen.push(i);
        }
    }
    chosen
}
