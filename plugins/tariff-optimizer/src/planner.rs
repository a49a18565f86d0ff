//! The shell's view of a plan: what it drives and publishes. [`plan`]
//! solves a [`Problem`] and returns an [`Outcome`].
//!
//! STUB until the core (`solve.rs`, `plan.rs`, `check.rs`, `rule.rs`)
//! lands: a greedy plan (each machine at its cheapest start in its window,
//! each EV in its cheapest steps, each water heater at its thermostat), not
//! optimal. Replaced by a conversion of the core's `Plan`.

use crate::problem::{LoadKind, Problem};

/// A plan as the shell uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Optimal`, `Feasible`, `Relaxed`, `Rule` or `Infeasible`.
    pub status: String,
    /// The plan's objective (€, or kWh for self-consumption).
    pub objective: f64,
    /// Relative MIP gap, when known.
    pub gap: Option<f64>,
    /// Branch-and-bound nodes explored.
    pub nodes: u64,
    /// Per problem load, W per step.
    pub load_w: Vec<Vec<f64>>,
    /// Per problem load: the step it starts in (a machine), if planned.
    pub start: Vec<Option<usize>>,
    /// Grid import and export, W per step.
    pub import_w: Vec<f64>,
    pub export_w: Vec<f64>,
    /// Per problem load: predicted tank temperature at the start of each
    /// step (a thermal load), °C.
    pub temp_c: Vec<Option<Vec<f64>>>,
    /// Constraints the plan breaks (empty when it holds).
    pub violations: Vec<String>,
}

/// Solves `problem` within `node_limit` nodes.
pub fn plan(problem: &Problem, node_limit: u64) -> Outcome {
    let _ = node_limit;
    greedy(problem)
}

fn greedy(p: &Problem) -> Outcome {
    let dt = p.dt_h();
    let n = p.steps;
    let mut load_w = Vec::new();
    let mut start = Vec::new();
    let mut temp_c = Vec::new();
    for l in &p.loads {
        let mut w = vec![0.0; n];
        let mut st = None;
        let mut temps = None;
        match &l.kind {
            LoadKind::Sequence(s) => {
                let (first, rest) = match s.started {
                    Some(k) => (0, &s.profile_w[k..]),
                    None => {
                        let len = s.profile_w.len();
                        let last = l.deadline.saturating_sub(len).max(l.earliest);
                        let cost = |t: usize| -> f64 {
                            s.profile_w
                                .iter()
                                .enumerate()
                                .map(|(j, pw)| {
                                    pw * p.import_price.get(t + j).copied().unwrap_or(1e3)
                                })
                                .sum()
                        };
                        let t = (l.earliest..=last)
                            .min_by(|a, b| cost(*a).total_cmp(&cost(*b)))
                            .unwrap_or(0);
                        (t, &s.profile_w[..])
                    }
                };
                st = Some(first);
                for (j, pw) in rest.iter().enumerate() {
                    if let Some(x) = w.get_mut(first + j) {
                        *x = *pw;
                    }
                }
            }
            LoadKind::Battery(b) => {
                let mut order: Vec<usize> = (l.earliest..l.deadline).collect();
                order.sort_by(|a, c| {
                    p.import_price[*a]
                        .total_cmp(&p.import_price[*c])
                        .then(a.cmp(c))
                });
                let mut left = b.energy_wh;
                for k in order {
                    if left <= 0.0 {
                        break;
                    }
                    w[k] = b.max_w;
                    left -= b.max_w * dt;
                }
            }
            LoadKind::Thermal(t) => {
                let mut temp = t.temp_c;
                let mut v = vec![temp];
                for (k, x) in w.iter_mut().enumerate() {
                    let on = temp < t.max_c;
                    let heat = if on { t.nominal_w * dt } else { 0.0 };
                    let loss = t.loss_w_per_k * (temp - t.ambient_c) * dt;
                    temp += (heat - loss - t.draw_wh[k]) / t.capacity_wh_per_k;
                    *x = if on { t.nominal_w } else { 0.0 };
                    v.push(temp);
                }
                temps = Some(v);
            }
            LoadKind::Deferrable(d) => {
                let mut left = d.energy_wh;
                for x in w.iter_mut().take(l.deadline).skip(l.earliest) {
                    if left <= 0.0 {
                        break;
                    }
                    *x = d.nominal_w;
                    left -= d.nominal_w * dt;
                }
            }
        }
        load_w.push(w);
        start.push(st);
        temp_c.push(temps);
    }
    let mut import_w = vec![0.0; n];
    let mut export_w = vec![0.0; n];
    let mut objective = 0.0;
    for k in 0..n {
        let net = p.base_w[k] - p.pv_w[k] + load_w.iter().map(|w| w[k]).sum::<f64>();
        import_w[k] = net.max(0.0);
        export_w[k] = (-net).max(0.0);
        objective += import_w[k] * dt / 1000.0 * p.import_price[k];
    }
    Outcome {
        status: "Rule".into(),
        objective,
        gap: None,
        nodes: 0,
        load_w,
        start,
        import_w,
        export_w,
        temp_c,
        violations: Vec::new(),
    }
}
