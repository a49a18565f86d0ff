//! `hearth plan`: the tariff optimizer's problem at one instant of a
//! solar-house scenario, written for any solver to check.
//!
//! The scenario runs from its start through the step (of its `step_s`
//! grid from the start) containing `--at` (default: its start) with
//! the optimizer (`builtin:tariff-optimizer`, or the `.wasm` of the
//! scenario's `[controllers.tariff-optimizer]`) through the same plugin
//! host as `hearth simulate`, with `expose_problem = true`: at each
//! re-plan the plugin publishes the `Problem` it solved in its
//! `optim_status` entity. The last one at or before `--at` is read back
//! and turned into the MILP by the plugin crate's own `model::build_with`
//! (the code the component runs), then written as CPLEX LP
//! (`--export-lp`) or free MPS (`--export-mps`). The plan printed, and
//! its `objective: <value>` line, are the plugin's own (`optim_status`
//! attribute `objective`, € for `cost`/`profit`, kWh for
//! `self-consumption`: the units of the file's objective). The file's
//! objective has no constant term, so an independent solver's optimum of
//! the file equals that value when the plugin proved optimality.

use super::scenario::SolarScenario;
use crate::plugins::engine::PluginEngine;
use crate::twin::batch::scenario::parse_instant;
use anyhow::{Context, bail};
use hearth_tariff_optimizer::model::{ModelOptions, build_with};
use hearth_tariff_optimizer::problem::Problem;
use hearth_tariff_optimizer::{lp_file, solve};
use serde_json::Value;
use std::fmt::Write;
use std::path::PathBuf;

/// `hearth plan`'s arguments.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub scenario: PathBuf,
    /// RFC 3339; the scenario's start when `None`.
    pub at: Option<String>,
    /// The scenario's controller label whose plugin plans (default
    /// `tariff-optimizer`).
    pub controller: String,
    pub export_lp: Option<PathBuf>,
    pub export_mps: Option<PathBuf>,
}

/// What the plugin planned at the instant.
pub struct PlanAt {
    pub problem: Problem,
    /// The plugin's `optim_status` (`Optimal`, `Feasible` …).
    pub status: String,
    /// The plugin's objective, in the units of the LP file.
    pub objective: f64,
    /// When the plugin planned (its `planned_at`).
    pub planned_at: String,
    /// The plugin's whole `optim_status` attributes.
    pub attributes: Value,
    /// The scenario's time zone (the plan is printed in local time).
    pub tz: jiff::tz::TimeZone,
}

/// Runs the scenario to `opts.at`, writes the requested files and returns
/// the text `hearth plan` prints.
pub fn plan(opts: &PlanOptions) -> anyhow::Result<String> {
    let at = plan_at(opts)?;
    let p = &at.problem;
    // The plugin's model options: the tank's element heats any share of a
    // step unless the plugin says it planned whole steps.
    let options = model_options(&at.attributes);
    let built = build_with(p, &options);
    if let Some(path) = &opts.export_lp {
        std::fs::write(path, lp_file::to_lp(&built.model))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &opts.export_mps {
        std::fs::write(path, lp_file::to_mps(&built.model))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut s = String::new();
    let _ = writeln!(
        s,
        "plan of {} at {}: {} steps of {} s, {} loads, objective {:?}; status {}",
        opts.controller,
        at.planned_at,
        p.steps,
        p.step_s,
        p.loads.len(),
        p.objective,
        at.status
    );
    let _ = writeln!(
        s,
        "model: {} variables ({} integer), {} rows",
        built.model.vars.len(),
        built
            .model
            .vars
            .iter()
            .filter(|v| v.kind != hearth_tariff_optimizer::model::VarKind::Continuous)
            .count(),
        built.model.rows.len()
    );
    // The plugin publishes its objective, not its schedule per step of
    // every load in one place: re-solve natively (same crate, same model)
    // to print the schedule, and say whether it agrees.
    let native = solve::plan(
        p,
        &solve::SolveConfig {
            model: options,
            ..solve::SolveConfig::default()
        },
    );
    for l in &native.loads {
        let on: Vec<String> = l
            .power_w
            .iter()
            .enumerate()
            .filter(|(_, w)| **w > 0.5)
            .map(|(k, w)| {
                let local = jiff::Timestamp::from_millisecond(p.step_ms(k))
                    .map(|t| t.to_zoned(at.tz.clone()).strftime("%H:%M").to_string())
                    .unwrap_or_else(|_| "?".into());
                format!("{local} {w:.0} W")
            })
            .collect();
        let wh: f64 = l.power_w.iter().sum::<f64>() * p.dt_h();
        let _ = writeln!(
            s,
            "  {:<16} {:>7.0} Wh  {} (local time)",
            l.id,
            wh,
            if on.is_empty() {
                "off".to_string()
            } else {
                on.join(", ")
            }
        );
    }
    let _ = writeln!(
        s,
        "native re-solve: {} {:.9} ({} nodes)",
        native.status.name(),
        native.objective,
        native.nodes
    );
    for (path, what) in [(&opts.export_lp, "CPLEX LP"), (&opts.export_mps, "MPS")] {
        if let Some(path) = path {
            let _ = writeln!(s, "wrote {what}: {}", path.display());
        }
    }
    let _ = writeln!(s, "objective: {:.9}", at.objective);
    Ok(s)
}

/// Runs the scenario with the optimizer through the step containing
/// `opts.at` and reads back the problem of its last re-plan at or before
/// `--at`.
pub fn plan_at(opts: &PlanOptions) -> anyhow::Result<PlanAt> {
    let probe = SolarScenario::load(&opts.scenario, None, None)?;
    let at_ms = match &opts.at {
        Some(a) => parse_instant("--at", a)?,
        None => probe.start_ms,
    };
    if at_ms < probe.start_ms || at_ms >= probe.end_ms {
        bail!(
            "--at {} is outside the scenario's period {} – {}",
            crate::clock::iso8601(at_ms),
            crate::clock::iso8601(probe.start_ms),
            crate::clock::iso8601(probe.end_ms)
        );
    }
    let end = crate::clock::iso8601(run_end_ms(
        probe.start_ms,
        probe.end_ms,
        probe.step_s,
        at_ms,
    ));
    let sc = SolarScenario::load(&opts.scenario, None, Some(&end))?;
    let mut ctl = crate::twin::batch::resolve_in(&sc.controllers, &opts.controller)?;
    match &mut ctl.plugin.config {
        Value::Object(m) => {
            m.insert("expose_problem".into(), Value::Bool(true));
        }
        other => bail!(
            "[controllers.{}] config must be a table, got {other}",
            opts.controller
        ),
    }
    let engine = PluginEngine::new()?;
    let run = super::run::run(&sc, &engine, &ctl, &|| {})?;
    if let Some(f) = run.faults.first() {
        bail!("the plugin faulted before --at: {f}");
    }
    let (status, attrs) = run.plugin_entities.get("optim_status").with_context(|| {
        format!(
            "controller `{}` published no optim_status by {}: is it the tariff optimizer?",
            opts.controller,
            crate::clock::iso8601(at_ms)
        )
    })?;
    let problem: Problem = serde_json::from_value(attrs.get("problem").cloned().with_context(
        || "optim_status has no `problem` attribute (a plugin without expose_problem)",
    )?)
    .context("optim_status's `problem` is not a tariff-optimizer Problem")?;
    problem.check().map_err(anyhow::Error::msg)?;
    let objective = attrs
        .get("objective")
        .and_then(Value::as_f64)
        .context("optim_status has no numeric `objective` attribute")?;
    Ok(PlanAt {
        problem,
        status: status.clone(),
        objective,
        planned_at: attrs
            .get("planned_at")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        attributes: attrs.clone(),
        tz: sc.house.tz.clone(),
    })
}

/// Where the run to `at` ends: the first step boundary (on the grid
/// `start + k × step`) strictly after `at`, so the last step run is the
/// one containing `at` and the last re-plan read back is at or before
/// `at` (never past the scenario's end).
fn run_end_ms(start_ms: i64, end_ms: i64, step_s: f64, at_ms: i64) -> i64 {
    let step_ms = ((step_s * 1000.0).round() as i64).max(1);
    let k = (at_ms - start_ms).div_euclid(step_ms) + 1;
    (start_ms + k * step_ms).min(end_ms)
}

fn model_options(attrs: &Value) -> ModelOptions {
    let mut o = ModelOptions::default();
    if let Some(b) = attrs.get("thermal_on_off").and_then(Value::as_bool) {
        o.thermal_on_off = b;
    }
    if let Some(b) = attrs.get("soft_ready").and_then(Value::as_bool) {
        o.soft_ready = b;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::run_end_ms;

    #[test]
    fn the_run_ends_at_the_first_step_boundary_after_at() {
        let (start, end) = (1_000_000, 1_000_000 + 3_600_000);
        // On the grid: the step starting at `at` is the last one run.
        assert_eq!(
            run_end_ms(start, end, 60.0, start + 120_000),
            start + 180_000
        );
        // Off the grid: the step containing `at`, not the one after it.
        assert_eq!(
            run_end_ms(start, end, 60.0, start + 119_000),
            start + 120_000
        );
        assert_eq!(run_end_ms(start, end, 60.0, start), start + 60_000);
        // Never past the scenario's end.
        assert_eq!(run_end_ms(start, end, 60.0, end - 1), end);
    }
}
