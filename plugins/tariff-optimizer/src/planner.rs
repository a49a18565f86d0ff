//! The shell's view of a plan: what it drives and publishes. [`plan`]
//! solves a [`Problem`] with the core ([`crate::solve::plan`]: microlp with
//! a node limit and its fallback chain), checks the result
//! ([`crate::check::violations`]) and, if the plan breaks a constraint,
//! takes the rule plan ([`crate::rule::plan`]) instead.

use crate::plan::{Plan, Status};
use crate::problem::Problem;
use crate::solve::SolveConfig;
use crate::{check, rule, solve};

/// A plan as the shell uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Optimal`, `Feasible`, `Relaxed`, `Rule` or `Infeasible`.
    pub status: String,
    /// The plan's objective (€, or kWh for self-consumption; the LP file's
    /// units).
    pub objective: f64,
    /// Relative MIP gap, when known.
    pub gap: Option<f64>,
    /// Branch-and-bound nodes explored.
    pub nodes: u64,
    /// Per problem load, W per step.
    pub load_w: Vec<Vec<f64>>,
    /// Per problem load: the step its run starts in, if it runs.
    pub start: Vec<Option<usize>>,
    /// Grid import and export, W per step.
    pub import_w: Vec<f64>,
    pub export_w: Vec<f64>,
    /// Per problem load: predicted tank temperature at the start of each
    /// step (a thermal load, len steps + 1), °C.
    pub temp_c: Vec<Option<Vec<f64>>>,
    /// Constraints the solver's plan broke (then the rule plan is used),
    /// and the core's warnings.
    pub violations: Vec<String>,
    /// The model options the plan was found with (`None`: not the
    /// solver's model, e.g. the rule plan).
    pub model: Option<crate::model::ModelOptions>,
}

fn outcome(p: Plan, violations: Vec<String>) -> Outcome {
    let gap = match &p.status {
        Status::Feasible { gap } => *gap,
        Status::Optimal => Some(0.0),
        _ => None,
    };
    let mut notes = violations;
    notes.extend(p.warnings);
    if let Status::Infeasible { reason } = &p.status {
        notes.push(format!("infeasible: {reason}"));
    }
    let model = match p.status {
        Status::Rule => None,
        _ => p.model,
    };
    Outcome {
        model,
        status: p.status.name().to_string(),
        objective: p.objective,
        gap,
        nodes: p.nodes,
        start: p.loads.iter().map(|l| l.start).collect(),
        temp_c: p.loads.iter().map(|l| l.temperature_c.clone()).collect(),
        load_w: p.loads.into_iter().map(|l| l.power_w).collect(),
        import_w: p.import_w,
        export_w: p.export_w,
        violations: notes,
    }
}

/// Solves `problem` within `node_limit` branch-and-bound nodes.
pub fn plan(problem: &Problem, node_limit: u64) -> Outcome {
    let cfg = SolveConfig {
        node_limit: Some(node_limit),
        ..SolveConfig::default()
    };
    let p = solve::plan(problem, &cfg);
    let v = check::violations(problem, &p);
    if v.is_empty() || matches!(p.status, Status::Rule | Status::Infeasible { .. }) {
        return outcome(p, v);
    }
    let v: Vec<String> = v
        .into_iter()
        .map(|e| format!("{} plan: {e}", p.status.name()))
        .collect();
    outcome(rule::plan(problem), v)
}
