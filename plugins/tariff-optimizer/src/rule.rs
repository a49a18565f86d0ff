//! The greedy rule plan: the last fallback, and the plan of an infeasible
//! problem (best effort).
//!
//! Started loads keep their fixed power. The others are placed one by one
//! in deadline order, each at the cheapest steps of its window given what
//! is already placed: the price of a step is the objective's increase when
//! the load's power is added there ([`crate::plan::dispatch`]: the import
//! price where there is no PV surplus, the export price (profit) or
//! nothing (cost) where the surplus covers it). Steps where the power
//! would break the import limit are avoided while others remain.
//! - `n` on steps without run constraints: the `n` cheapest steps;
//! - with run constraints or a single start: one contiguous run at the
//!   cheapest start (a run continuing from now starts at 0 when it must);
//! - a continuous load: its cheapest steps at full power, the last one
//!   partial (with run constraints: one run at an even power);
//! - a sequence: the cheapest start of its whole programme;
//! - a thermal load: for each ready time in turn, while the tank would be
//!   too cold, the cheapest step before it where the element may heat
//!   (the thermostat holds) is switched on.

use crate::model::{self, Spec};
use crate::plan::{Plan, Status, dispatch};
use crate::problem::{LoadKind, Problem};

struct Grid<'a> {
    p: &'a Problem,
    cap: Vec<f64>,
    xcap: Vec<f64>,
    /// Loads placed so far, W per step.
    load: Vec<f64>,
}

impl Grid<'_> {
    /// Objective increase of adding `w` at step `t`, or `None` when it
    /// breaks the import limit.
    fn delta(&self, t: usize, w: f64) -> Option<f64> {
        if w == 0.0 {
            return Some(0.0);
        }
        let before = dispatch(self.p, t, self.load[t], self.cap[t], self.xcap[t]);
        let after = dispatch(self.p, t, self.load[t] + w, self.cap[t], self.xcap[t]);
        after.feasible.then_some(after.cost - before.cost)
    }

    /// Same, ignoring the limit (a big cost when broken).
    fn delta_any(&self, t: usize, w: f64) -> f64 {
        self.delta(t, w).unwrap_or_else(|| {
            let (ci, _) = model::grid_costs(self.p, t);
            1e6 + ci * w
        })
    }

    /// Cost of a run of powers from `j`, and whether it holds the limit.
    fn run_cost(&self, j: usize, powers: &[f64]) -> (bool, f64) {
        let mut ok = true;
        let mut c = 0.0;
        for (k, &w) in powers.iter().enumerate() {
            match self.delta(j + k, w) {
                Some(d) => c += d,
                None => {
                    ok = false;
                    c += self.delta_any(j + k, w);
                }
            }
        }
        (ok, c)
    }

    /// The cheapest start among `starts` of `powers`, preferring those
    /// that hold the limit; ties: the earliest.
    fn best_start(&self, starts: impl Iterator<Item = usize>, powers: &[f64]) -> Option<usize> {
        let mut best: Option<(bool, f64, usize)> = None;
        for j in starts {
            let (ok, c) = self.run_cost(j, powers);
            let better = match best {
                None => true,
                Some((bok, bc, _)) => (ok && !bok) || (ok == bok && c < bc - 1e-12),
            };
            if better {
                best = Some((ok, c, j));
            }
        }
        best.map(|b| b.2)
    }

    fn add(&mut self, power: &[f64]) {
        for (a, b) in self.load.iter_mut().zip(power) {
            *a += b;
        }
    }
}

/// The rule plan of `p` (which should pass [`Problem::check`]).
pub fn plan(p: &Problem) -> Plan {
    let n = p.steps;
    let dt = p.dt_h();
    let mut g = Grid {
        p,
        cap: model::import_cap(p),
        xcap: model::export_cap(p),
        load: vec![0.0; n],
    };
    let mut warnings = Vec::new();
    let specs: Vec<Spec> = p
        .loads
        .iter()
        .map(|l| {
            let (s, w) = model::spec(p, l);
            warnings.extend(w);
            s
        })
        .collect();
    let mut powers = vec![vec![0.0; n]; p.loads.len()];
    let mut starts = vec![None; p.loads.len()];
    for (i, s) in specs.iter().enumerate() {
        if let Spec::Fixed { power } = s {
            powers[i].clone_from(power);
            g.add(power);
        }
    }
    let mut order: Vec<usize> = (0..p.loads.len()).collect();
    order.sort_by_key(|&i| p.loads[i].deadline);
    for i in order {
        let l = &p.loads[i];
        let (e, d) = (l.earliest, l.deadline);
        let mut pw = vec![0.0; n];
        match &specs[i] {
            Spec::Fixed { .. } => continue,
            Spec::Profile { profile } => {
                if let Some(j) = g.best_start(e..=d - profile.len(), profile) {
                    pw[j..j + profile.len()].copy_from_slice(profile);
                    starts[i] = Some(j);
                }
            }
            Spec::Steps {
                p_w,
                n: k,
                block,
                runs,
            } => {
                let k = *k;
                if k == 0 {
                } else if *block || runs.is_some() {
                    let run = vec![*p_w; k];
                    let cands: Vec<usize> = match runs {
                        Some(r) if r.prev_on => {
                            let may_pause =
                                r.running_steps >= r.min_on && r.max_starts.is_none_or(|m| m >= 1);
                            let first_later = e + r.min_off.max(1);
                            let mut c = vec![e];
                            if may_pause {
                                c.extend(first_later..=d - k);
                            }
                            c
                        }
                        _ => (e..=d - k).collect(),
                    };
                    if let Some(j) = g.best_start(cands.into_iter(), &run) {
                        pw[j..j + k].fill(*p_w);
                    }
                } else {
                    let mut idx: Vec<(bool, f64, usize)> = (e..d)
                        .map(|t| match g.delta(t, *p_w) {
                            Some(c) => (true, c, t),
                            None => (false, g.delta_any(t, *p_w), t),
                        })
                        .collect();
                    idx.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
                    for &(_, _, t) in idx.iter().take(k) {
                        pw[t] = *p_w;
                    }
                }
            }
            Spec::Energy {
                p_w,
                energy_wh,
                runs,
            } => {
                if *energy_wh > 0.0 {
                    let mut k = model::steps_for(*energy_wh, *p_w, dt).clamp(1, d - e);
                    if let Some(r) = runs {
                        k = k.max(r.min_on).min(d - e);
                        let w = energy_wh / (k as f64 * dt);
                        let run = vec![w; k];
                        let cands: Vec<usize> = if r.prev_on {
                            vec![e]
                        } else {
                            (e..=d - k).collect()
                        };
                        if let Some(j) = g.best_start(cands.into_iter(), &run) {
                            pw[j..j + k].fill(w);
                        }
                    } else {
                        let mut idx: Vec<(bool, f64, usize)> = (e..d)
                            .map(|t| match g.delta(t, *p_w) {
                                Some(c) => (true, c, t),
                                None => (false, g.delta_any(t, *p_w), t),
                            })
                            .collect();
                        idx.sort_by(|a, b| {
                            b.0.cmp(&a.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2))
                        });
                        let mut left = *energy_wh;
                        for &(_, _, t) in &idx {
                            if left <= 0.0 {
                                break;
                            }
                            let e_t = (p_w * dt).min(left);
                            pw[t] = e_t / dt;
                            left -= e_t;
                        }
                    }
                }
            }
            Spec::Thermal => {
                let LoadKind::Thermal(th) = &l.kind else {
                    unreachable!()
                };
                let upper = model::tank_upper(p, th);
                let holds = |pw: &[f64]| {
                    let t = model::simulate_tank(p, th, pw);
                    t[1..].iter().zip(&upper).all(|(t, u)| *t <= u + 1e-9)
                };
                let mut ready = th.ready.clone();
                ready.sort_by_key(|r| r.0);
                for &(k, min_c) in &ready {
                    if k == 0 || k > n {
                        continue;
                    }
                    loop {
                        let temps = model::simulate_tank(p, th, &pw);
                        if temps[k] >= min_c - 1e-9 {
                            break;
                        }
                        let mut best: Option<(bool, f64, usize)> = None;
                        for t in e..d.min(k) {
                            if pw[t] > 0.0 {
                                continue;
                            }
                            pw[t] = th.nominal_w;
                            let ok_t = holds(&pw);
                            pw[t] = 0.0;
                            if !ok_t {
                                continue;
                            }
                            let (ok, c) = match g.delta(t, th.nominal_w) {
                                Some(c) => (true, c),
                                None => (false, g.delta_any(t, th.nominal_w)),
                            };
                            let better = match best {
                                None => true,
                                Some((bok, bc, _)) => (ok && !bok) || (ok == bok && c < bc - 1e-12),
                            };
                            if better {
                                best = Some((ok, c, t));
                            }
                        }
                        match best {
                            Some((_, _, t)) => pw[t] = th.nominal_w,
                            None => {
                                warnings.push(format!(
                                    "load `{}`: the tank cannot reach {min_c:.1} °C by step {k}",
                                    l.id
                                ));
                                break;
                            }
                        }
                    }
                }
            }
        }
        g.add(&pw);
        powers[i] = pw;
    }
    Plan::from_powers(p, Status::Rule, powers, starts, 0, warnings)
}
