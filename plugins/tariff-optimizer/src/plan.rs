//! A plan: what each load draws per step, the grid exchange that follows
//! and the objective, with how it was found ([`Status`]).
//!
//! [`Plan::from_powers`] completes a plan from the loads' powers alone:
//! for each step it finds the cheapest grid exchange (import, export, PV
//! used) the model allows for that load ([`dispatch`]), predicts the tank
//! temperatures, and evaluates the objective exactly as the model does,
//! so every plan (solver, relaxed, rule) is valued in the same units as
//! the LP file.

use serde::{Deserialize, Serialize};

use crate::model::{self, SHORTFALL_PER_K};
use crate::problem::{LoadKind, Problem};

/// How the plan was found (`optim_status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Status {
    /// The solver proved it optimal.
    Optimal,
    /// The node limit was reached with this incumbent; `gap` is the
    /// relative gap to the best bound (`None`: no bound known).
    Feasible { gap: Option<f64> },
    /// No incumbent within the node limit: the LP relaxation rounded into
    /// a schedule that meets every constraint.
    Relaxed,
    /// The greedy rule plan ([`crate::rule`]).
    Rule,
    /// The solver proved the problem infeasible as given (`reason`); the
    /// schedule is the rule plan, best effort.
    Infeasible { reason: String },
}

impl Status {
    /// EMHASS's `optim_status` word.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Optimal => "Optimal",
            Status::Feasible { .. } => "Feasible",
            Status::Relaxed => "Relaxed",
            Status::Rule => "Rule",
            Status::Infeasible { .. } => "Infeasible",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadPlan {
    pub id: String,
    /// Mean power per step, W (len = steps). A thermal load's element
    /// heats `power_w / nominal_w` of the step (any share by default, see
    /// [`crate::model::ModelOptions::thermal_on_off`]): the shell keeps
    /// the relay on until the step's energy `power_w · dt` is in, or the
    /// thermostat cuts it.
    pub power_w: Vec<f64>,
    /// Step at which its first run in the horizon begins (0 for a load
    /// that continues a run), `None` if it does not run.
    pub start: Option<usize>,
    /// Thermal: predicted tank temperature at the start of each step,
    /// `T_0..=T_steps` (len = steps + 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<Vec<f64>>,
}

impl LoadPlan {
    /// Whether the load should be on during step 0 (now).
    pub fn on_now(&self) -> bool {
        self.power_w.first().is_some_and(|&p| p > ON_W)
    }
}

/// A load draws more than this when on, W.
pub const ON_W: f64 = 1e-3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub status: Status,
    /// The objective of this schedule, in the LP file's units (€; kWh for
    /// self-consumption; plus the tank shortfall penalty).
    pub objective: f64,
    /// The solver's own objective value, when the schedule is its solution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_objective: Option<f64>,
    /// Branch and bound nodes explored.
    pub nodes: u64,
    /// Grid import and export per step, W.
    pub import_w: Vec<f64>,
    pub export_w: Vec<f64>,
    /// PV used per step (the rest is curtailed), W.
    pub pv_used_w: Vec<f64>,
    pub loads: Vec<LoadPlan>,
    /// What the plan could not honour, and why it fell back.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The model options the plan was found with (the soft ready
    /// temperatures of a retry included), so the problem can be written
    /// out as the solver saw it (`hearth plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::model::ModelOptions>,
}

/// The grid exchange of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exchange {
    pub import_w: f64,
    pub export_w: f64,
    pub pv_used_w: f64,
    /// Objective contribution (without the tank penalty).
    pub cost: f64,
    /// Whether the bounds could be met.
    pub feasible: bool,
}

/// The cheapest exchange at step `t` given the loads' total power
/// `load_w` (base load excluded), under the model's bounds: import in
/// `[0, cap]`, export in `[0, xcap]`, PV used in `[0, pv]` where
/// curtailable (else all of it), no simultaneous import and export where
/// the model forbids it. An LP of three variables and one equality: the
/// best of its vertices.
pub fn dispatch(p: &Problem, t: usize, load_w: f64, cap: f64, xcap: f64) -> Exchange {
    let (ci, ce) = model::grid_costs(p, t);
    let pv = p.pv_w[t].max(0.0);
    let (ulo, uhi) = if model::curtailable(p, t) {
        (0.0, pv)
    } else {
        (pv, pv)
    };
    let excl = model::exclusive(p, t);
    let need = p.base_w[t] + load_w; // imp − exp + u = need
    let lo = [0.0, 0.0, ulo];
    let hi = [cap, xcap, uhi];
    let coef = [1.0, -1.0, 1.0];
    let tol = 1e-9 * (1.0 + need.abs() + cap + pv);
    let mut best: Option<Exchange> = None;
    for free in 0..3 {
        for mask in 0..4u8 {
            let mut x = [0.0; 3];
            let mut k = 0;
            for (j, xj) in x.iter_mut().enumerate() {
                if j != free {
                    *xj = if mask >> k & 1 == 1 { hi[j] } else { lo[j] };
                    k += 1;
                }
            }
            let rest: f64 = (0..3).filter(|&j| j != free).map(|j| coef[j] * x[j]).sum();
            x[free] = (need - rest) / coef[free];
            if x[free] < lo[free] - tol || x[free] > hi[free] + tol {
                continue;
            }
            x[free] = x[free].clamp(lo[free], hi[free]);
            if excl && x[0] > tol && x[1] > tol {
                continue;
            }
            let cost = ci * x[0] + ce * x[1];
            if best.is_none_or(|b| cost < b.cost - 1e-15) {
                best = Some(Exchange {
                    import_w: x[0],
                    export_w: x[1],
                    pv_used_w: x[2],
                    cost,
                    feasible: true,
                });
            }
        }
    }
    best.unwrap_or_else(|| {
        // Over the import limit: import what it takes.
        let imp = (need - pv).max(0.0);
        let exp = (pv - need).max(0.0).min(xcap);
        Exchange {
            import_w: imp,
            export_w: exp,
            pv_used_w: need - imp + exp,
            cost: ci * imp + ce * exp,
            feasible: false,
        }
    })
}

impl Plan {
    /// Completes a plan from each load's power (same order as
    /// `p.loads`) and start: grid exchange, tank temperatures, objective.
    pub fn from_powers(
        p: &Problem,
        status: Status,
        powers: Vec<Vec<f64>>,
        starts: Vec<Option<usize>>,
        nodes: u64,
        warnings: Vec<String>,
    ) -> Plan {
        let cap = model::import_cap(p);
        let xcap = model::export_cap(p);
        let mut objective = 0.0;
        let mut import_w = Vec::with_capacity(p.steps);
        let mut export_w = Vec::with_capacity(p.steps);
        let mut pv_used_w = Vec::with_capacity(p.steps);
        for t in 0..p.steps {
            let load: f64 = powers.iter().map(|pw| pw[t]).sum();
            let x = dispatch(p, t, load, cap[t], xcap[t]);
            objective += x.cost;
            import_w.push(x.import_w);
            export_w.push(x.export_w);
            pv_used_w.push(x.pv_used_w);
        }
        let mut loads = Vec::with_capacity(p.loads.len());
        for ((l, power_w), start) in p.loads.iter().zip(powers).zip(starts) {
            let temperature_c = match &l.kind {
                LoadKind::Thermal(th) => {
                    let temps = model::simulate_tank(p, th, &power_w);
                    for &(k, min_c) in &th.ready {
                        if k >= 1 && k <= p.steps {
                            objective += SHORTFALL_PER_K * (min_c - temps[k]).max(0.0);
                        }
                    }
                    Some(temps)
                }
                _ => None,
            };
            let start = start.or_else(|| power_w.iter().position(|&w| w > ON_W));
            loads.push(LoadPlan {
                id: l.id.clone(),
                power_w,
                start,
                temperature_c,
            });
        }
        Plan {
            status,
            objective,
            solver_objective: None,
            nodes,
            import_w,
            export_w,
            pv_used_w,
            loads,
            warnings,
            model: None,
        }
    }

    /// The thermal shortfalls (load id, ready index, kelvin below).
    pub fn shortfalls(&self, p: &Problem) -> Vec<(String, usize, f64)> {
        let mut out = Vec::new();
        for (l, lp) in p.loads.iter().zip(&self.loads) {
            if let (LoadKind::Thermal(th), Some(temps)) = (&l.kind, &lp.temperature_c) {
                for (r, &(k, min_c)) in th.ready.iter().enumerate() {
                    if k >= 1 && k <= p.steps && temps[k] < min_c - 1e-6 {
                        out.push((l.id.clone(), r, min_c - temps[k]));
                    }
                }
            }
        }
        out
    }
}
