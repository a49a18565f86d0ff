//! Batch simulation figures (`cargo bench -p hearth --bench simulate`):
//!
//! 1. MPC solve time per step inside WASM: the MPC plugin on the red-day
//!    scenario with a commissioning model and no refit, so each `tick` is
//!    one 96-step (24 h × 15 min) horizon problem (observer, forecasts,
//!    clarabel solve, entities); median, p99 and max of the ticks' wall
//!    time, measured around the host's call into the component.
//!    In the same run, natively: the 96-step horizon solve of the MPC
//!    crate on a red-day problem with the banded interior point (the
//!    plugin's solver since issue 19) and with clarabel (before).
//! 2. Wall time to simulate one year at an hourly step
//!    (`examples/scenarios/year.toml`) with the thermostat and with the MPC
//!    (hourly plan, 24 steps, refit every 24 h), one controller at a time.
//!
//! Not a test: it prints figures for BENCHMARKS.md.

use hearth::plugins::engine::PluginEngine;
use hearth::twin::batch::{self, Scenario};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios")
}

fn derived(dir: &Path, base: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("bench-{base}"));
    let text = format!(
        "base = {:?}\n{extra}",
        scenarios().join(base).display().to_string()
    );
    std::fs::write(&path, text).expect("write the bench scenario");
    path
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let engine = PluginEngine::new()?;

    // 1. One horizon problem per tick, with the plugin's solver (banded
    // interior point) and with clarabel (the solver before issue 19).
    for solver in ["banded", "clarabel"] {
        let path = derived(
            dir.path(),
            "red-day.toml",
            &format!(
                r#"warmup_h = 0
end = "2026-01-18T06:00:00+01:00"
[controllers.mpc.config]
refit_every_h = 100000.0
solver = "{solver}"
model = {{ c_i = 1.36e6, c_e = 1.38e7, r_ie = 1.27e-3, r_ea = 4.94e-2, r_ia = 9.8e-3, a_w = 0.77 }}
"#
            ),
        );
        let scenario = Scenario::load(&path)?;
        // SIMULATE_MPC_WASM=path: that build of the plugin instead of the
        // bundled one (e.g. another opt-level, without rebuilding the bridge).
        let arg = std::env::var("SIMULATE_MPC_WASM")
            .map_or_else(|_| "mpc".to_string(), |p| format!("mpc={p}"));
        let mpc = batch::resolve_controller(&scenario, &arg)?;
        let runs = batch::run_all(&scenario, &engine, std::slice::from_ref(&mpc), false)?;
        let run = &runs[0];
        let mut ticks = run.times.tick_us.clone();
        ticks.sort_by(f64::total_cmp);
        let mpc_ticks = run
            .rows
            .iter()
            .filter(|r| r.plugin_entities.first().is_some_and(|m| m == "mpc"))
            .count();
        println!(
            "MPC step (96-step horizon, inside WASM, {solver}): {} ticks, median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} of {} plant steps with the MPC in command; cost {:.3} €, {:.2} K·h below {:.0} °C)",
            ticks.len(),
            percentile(&ticks, 0.5) / 1000.0,
            percentile(&ticks, 0.99) / 1000.0,
            ticks.last().copied().unwrap_or(f64::NAN) / 1000.0,
            mpc_ticks,
            run.rows.len(),
            run.metrics.cost_eur,
            run.metrics.degree_hours_below_floor,
            run.metrics.comfort_floor_c,
        );
    }

    native_solves();

    if std::env::var_os("SIMULATE_SKIP_YEAR").is_some() {
        return Ok(());
    }
    // 2. A year, hourly.
    let year = Scenario::load(&scenarios().join("year.toml"))?;
    for label in ["thermostat", "mpc"] {
        let ctl = batch::resolve_controller(&year, label)?;
        let started = Instant::now();
        let runs = batch::run_all(&year, &engine, std::slice::from_ref(&ctl), false)?;
        let wall = started.elapsed().as_secs_f64();
        let m = &runs[0].metrics;
        println!(
            "one year hourly with {label}: {:.2} s wall ({} steps, {:.0} steps/s); energy {:.0} kWh, cost {:.0} €, {:.1} K·h below {:.0} °C, {} faults",
            wall,
            runs[0].rows.len(),
            runs[0].rows.len() as f64 / wall,
            m.energy_kwh,
            m.cost_eur,
            m.degree_hours_below_floor,
            m.comfort_floor_c,
            m.faults
        );
    }
    Ok(())
}

/// Native median of the 96-step horizon solve, both solvers, on a red-day
/// problem (Tempo red prices, a cold day, the bench's commissioning model).
fn native_solves() {
    use hearth_plugin_mpc::model::{Discrete, Params};
    use hearth_plugin_mpc::qp::{Forecast, Settings, Solver, plan_with};
    let p = Params {
        c_i: 1.36e6,
        c_e: 1.38e7,
        r_ie: 1.27e-3,
        r_ea: 4.94e-2,
        r_ia: Some(9.8e-3),
        a_w: 0.77,
    };
    let d = Discrete::new(&p, 900.0).expect("valid model");
    let fc = Forecast {
        ta: (0..96)
            .map(|k| 1.0 - 4.0 * (std::f64::consts::TAU * (k as f64 / 96.0)).cos())
            .collect(),
        isol: (0..96)
            .map(|k| {
                let h = 6.0 + k as f64 * 0.25;
                if (8.0..16.0).contains(&h) {
                    300.0 * (std::f64::consts::PI * (h - 8.0) / 8.0).sin()
                } else {
                    0.0
                }
            })
            .collect(),
        price: (0..96)
            .map(|k| if k < 64 { 0.6468 } else { 0.146 })
            .collect(),
        gain_w: 200.0,
    };
    for solver in [Solver::Banded, Solver::Clarabel] {
        let mut t = Vec::new();
        let mut last = None;
        for _ in 0..200 {
            let started = Instant::now();
            let plan = plan_with(solver, &d, [19.5, 18.0], 0.3, &fc, &Settings::default())
                .expect("solved");
            t.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(plan);
        }
        t.sort_by(f64::total_cmp);
        let plan = last.expect("ran");
        println!(
            "MPC horizon solve natively, 96 steps, {solver:?}: median {:.3} ms, p99 {:.3} ms ({} iterations, objective {:.6} €)",
            percentile(&t, 0.5),
            percentile(&t, 0.99),
            plan.iterations,
            plan.objective_eur
        );
    }
}
