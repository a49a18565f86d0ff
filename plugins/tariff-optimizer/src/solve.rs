//! Solving the plan with `microlp`, and the fallback chain.
//!
//! [`plan`] builds the model ([`crate::model::build`]) and hands it to
//! microlp's branch and bound with a **node limit** (deterministic; the
//! plugin sandbox freezes the clock, so microlp's time limit would never
//! fire there). Then:
//!
//! 1. microlp proves optimality → [`Status::Optimal`];
//! 2. the node limit is hit with an incumbent → [`Status::Feasible`] with
//!    microlp's relative gap;
//! 3. no incumbent (interrupted, or a numerical error) → the LP relaxation
//!    is solved and rounded per load (a start position: the largest; `n`
//!    on steps: the `n` largest; others at 0.5), the rounded decisions
//!    fixed and the rest re-solved as an LP; if that is feasible and the
//!    plan passes [`crate::check::violations`] → [`Status::Relaxed`];
//! 4. otherwise the greedy rule plan ([`crate::rule`]) → [`Status::Rule`];
//! 5. microlp proves the problem infeasible → with a thermal load, once
//!    more with every ready temperature soft
//!    ([`model::ModelOptions::soft_ready`]); otherwise, or if still
//!    infeasible, [`Status::Infeasible`] with the reason and the rule
//!    plan's schedule (best effort).
//!
//! Every plan the solver returns is checked with
//! [`crate::check::violations`]; one that violates (a numerical slip)
//! falls through to the next step. A started load is fixed in the model
//! (no variables), in the rounding and in the rule plan, so it stays fixed
//! in every fallback.

use microlp::{ComparisonOp, OptimizationDirection, SolutionStatus, SolveOptions, SolveOutcome};

use crate::check;
use crate::model::{self, Built, Cmp, LinearModel, Rounding, VarKind};
use crate::plan::{Plan, Status};
use crate::problem::Problem;
use crate::rule;

/// Solver settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SolveConfig {
    /// Branch and bound nodes per solve (`None`: no limit).
    pub node_limit: Option<u64>,
    /// Relative gap at which the search may stop (0: prove optimality).
    pub mip_gap: f64,
    /// Formulation choices ([`model::ModelOptions`]).
    pub model: model::ModelOptions,
}

impl Default for SolveConfig {
    fn default() -> Self {
        SolveConfig {
            node_limit: Some(20_000),
            mip_gap: 0.0,
            model: model::ModelOptions::default(),
        }
    }
}

/// Plans `p`: never panics on a problem that passes [`Problem::check`];
/// one that does not gets an `Infeasible` plan with every load off.
/// `Plan::model` says which model options the plan was found with.
pub fn plan(p: &Problem, cfg: &SolveConfig) -> Plan {
    let mut out = solve_once(p, cfg);
    out.model.get_or_insert(cfg.model);
    out
}

fn solve_once(p: &Problem, cfg: &SolveConfig) -> Plan {
    if let Err(reason) = p.check() {
        return invalid_plan(p, reason);
    }
    let built = model::build_with(p, &cfg.model);
    let mut warnings = built.warnings.clone();
    let mut opts = SolveOptions::default();
    opts.node_limit = cfg.node_limit;
    opts.mip_gap = cfg.mip_gap;
    let mut nodes = 0;
    let (lp, vars) = to_microlp(&built.model, false, &[]);
    match lp.solve_with(opts) {
        Ok(SolveOutcome::Solution(sol)) => {
            let stats = sol.stats();
            nodes = stats.nodes_solved;
            let x: Vec<f64> = vars.iter().map(|&v| sol.var_value(v)).collect();
            let status = match sol.status() {
                SolutionStatus::Optimal => Status::Optimal,
                SolutionStatus::Feasible => Status::Feasible { gap: sol.gap() },
            };
            let mut plan = read_plan(p, &built, &x, status, nodes, warnings.clone());
            plan.solver_objective = Some(sol.objective() + built.model.offset);
            let v = check::violations(p, &plan);
            if v.is_empty() {
                return plan;
            }
            warnings.push(format!("the solver's plan violates: {}", v.join("; ")));
        }
        Ok(SolveOutcome::Interrupted(i)) => {
            nodes = i.stats().nodes_solved;
            warnings.push(format!(
                "no schedule found within {} nodes",
                cfg.node_limit.unwrap_or(0)
            ));
        }
        Err(microlp::Error::Infeasible)
            if !cfg.model.soft_ready
                && p.loads
                    .iter()
                    .any(|l| matches!(l.kind, crate::problem::LoadKind::Thermal(_))) =>
        {
            // The hard ready temperatures may be what cannot hold (with
            // the import limit): again with them soft.
            let mut soft = cfg.clone();
            soft.model.soft_ready = true;
            let mut plan = self::plan(p, &soft);
            plan.warnings.insert(
                0,
                "infeasible with hard ready temperatures: planned with soft ones".into(),
            );
            plan.nodes += nodes;
            return plan;
        }
        Err(microlp::Error::Infeasible) => {
            let reason = "the solver proved the problem infeasible (deadlines, import limit and run constraints cannot all hold); rule plan, best effort".to_string();
            let mut plan = rule::plan(p);
            plan.status = Status::Infeasible { reason };
            plan.warnings.splice(0..0, warnings);
            return plan;
        }
        Err(e) => warnings.push(format!("solver error: {e:?}")),
    }
    match relaxed(p, &built, nodes, warnings.clone()) {
        Ok(plan) => plan,
        Err(why) => {
            warnings.push(why);
            let mut plan = rule::plan(p);
            plan.nodes = nodes;
            plan.warnings.splice(0..0, warnings);
            plan
        }
    }
}

/// The LP relaxation, rounded and repaired (step 3 of the chain).
fn relaxed(p: &Problem, built: &Built, nodes: u64, warnings: Vec<String>) -> Result<Plan, String> {
    let (lp, vars) = to_microlp(&built.model, true, &[]);
    let sol = lp
        .solve()
        .map_err(|e| format!("LP relaxation: {e:?}"))?
        .into_solution()
        .map_err(|_| "LP relaxation interrupted".to_string())?;
    let x: Vec<f64> = vars.iter().map(|&v| sol.var_value(v)).collect();
    let mut fix = Vec::new();
    for lv in &built.loads {
        for r in &lv.rounding {
            match r {
                Rounding::OneOf(ys) => {
                    let best = ys
                        .iter()
                        .copied()
                        .fold(None, |b: Option<usize>, y| match b {
                            Some(b) if x[b] >= x[y] => Some(b),
                            _ => Some(y),
                        });
                    for &y in ys {
                        fix.push((y, if Some(y) == best { 1.0 } else { 0.0 }));
                    }
                }
                Rounding::TopN(on, n) => {
                    let mut idx: Vec<usize> = on.clone();
                    idx.sort_by(|&a, &b| x[b].total_cmp(&x[a]).then(a.cmp(&b)));
                    for (k, &v) in idx.iter().enumerate() {
                        fix.push((v, if k < *n { 1.0 } else { 0.0 }));
                    }
                }
                Rounding::Each(on) => {
                    for &v in on {
                        fix.push((v, if x[v] >= 0.5 { 1.0 } else { 0.0 }));
                    }
                }
            }
        }
    }
    let (lp, vars) = to_microlp(&built.model, true, &fix);
    let sol = lp
        .solve()
        .map_err(|e| format!("rounded relaxation: {e:?}"))?
        .into_solution()
        .map_err(|_| "rounded relaxation interrupted".to_string())?;
    let x: Vec<f64> = vars.iter().map(|&v| sol.var_value(v)).collect();
    let plan = read_plan(p, built, &x, Status::Relaxed, nodes, warnings);
    let v = check::violations(p, &plan);
    if v.is_empty() {
        Ok(plan)
    } else {
        Err(format!("rounded relaxation violates: {}", v.join("; ")))
    }
}

/// Reads a plan from a solution `x` of the model (integer variables
/// rounded).
pub fn read_plan(
    p: &Problem,
    built: &Built,
    x: &[f64],
    status: Status,
    nodes: u64,
    warnings: Vec<String>,
) -> Plan {
    let x: Vec<f64> = built
        .model
        .vars
        .iter()
        .zip(x)
        .map(|(v, &x)| match v.kind {
            VarKind::Continuous => x,
            _ => x.round(),
        })
        .collect();
    let mut powers = Vec::with_capacity(p.loads.len());
    let mut starts = Vec::with_capacity(p.loads.len());
    for lv in &built.loads {
        powers.push(
            (0..p.steps)
                .map(|t| {
                    let w = lv.power(t, &x);
                    if w.abs() < 1e-6 { 0.0 } else { w }
                })
                .collect(),
        );
        starts.push(
            lv.starts
                .iter()
                .find(|&&(_, y)| x[y] > 0.5)
                .map(|&(j, _)| j),
        );
    }
    Plan::from_powers(p, status, powers, starts, nodes, warnings)
}

/// The model as a microlp problem; `relax`: every variable real; `fix`:
/// variables fixed at a value.
pub fn to_microlp(
    m: &LinearModel,
    relax: bool,
    fix: &[(usize, f64)],
) -> (microlp::Problem, Vec<microlp::Variable>) {
    let mut lo: Vec<f64> = m.vars.iter().map(|v| v.lo).collect();
    let mut hi: Vec<f64> = m.vars.iter().map(|v| v.hi).collect();
    for &(v, val) in fix {
        lo[v] = val;
        hi[v] = val;
    }
    let mut lp = microlp::Problem::new(OptimizationDirection::Minimize);
    let vars: Vec<microlp::Variable> = m
        .vars
        .iter()
        .enumerate()
        .map(|(i, v)| match (v.kind, relax) {
            (VarKind::Continuous, _) | (_, true) => lp.add_var(v.obj, (lo[i], hi[i])),
            (VarKind::Binary, false) if lo[i] == 0.0 && hi[i] == 1.0 => lp.add_binary_var(v.obj),
            _ => lp.add_integer_var(v.obj, (lo[i].ceil() as i32, hi[i].floor() as i32)),
        })
        .collect();
    for r in &m.rows {
        let op = match r.cmp {
            Cmp::Le => ComparisonOp::Le,
            Cmp::Ge => ComparisonOp::Ge,
            Cmp::Eq => ComparisonOp::Eq,
        };
        lp.add_constraint(r.terms.iter().map(|&(v, c)| (vars[v], c)), op, r.rhs);
    }
    (lp, vars)
}

fn invalid_plan(p: &Problem, reason: String) -> Plan {
    Plan {
        status: Status::Infeasible {
            reason: reason.clone(),
        },
        objective: 0.0,
        solver_objective: None,
        nodes: 0,
        import_w: vec![0.0; p.steps],
        export_w: vec![0.0; p.steps],
        pv_used_w: vec![0.0; p.steps],
        loads: p
            .loads
            .iter()
            .map(|l| crate::plan::LoadPlan {
                id: l.id.clone(),
                power_w: vec![0.0; p.steps],
                start: None,
                temperature_c: None,
            })
            .collect(),
        warnings: vec![format!("invalid problem: {reason}")],
        model: None,
    }
}
