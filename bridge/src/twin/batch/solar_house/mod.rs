//! `hearth simulate` on a solar-house scenario (`kind = "solar-house"`,
//! issue 15): the tariff optimizer (`builtin:tariff-optimizer`) and its
//! baselines (`builtin:fixed-times`, `builtin:off-peak-rule`), or any
//! `.wasm`, each run through the same plugin host against the same
//! [`crate::twin::solar_house`] house, one thread each, and the results
//! directory gets `summary.csv`, `summary.md`, `plot.svg`,
//! `steps-<label>.csv` (one row a minute) and `log-<label>.txt`.

pub mod plan;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;

pub use run::{SolarMetrics, SolarOutcome};
pub use scenario::{SolarScenario, is_solar_house};

use super::SimulateOptions;
use crate::plugins::engine::PluginEngine;
use anyhow::{Context, bail};
use std::path::Path;

/// Runs every controller named in `opts` and writes the results directory.
pub fn simulate(opts: &SimulateOptions) -> anyhow::Result<(SolarScenario, Vec<SolarOutcome>)> {
    let sc = SolarScenario::load(&opts.scenario, opts.start.as_deref(), opts.end.as_deref())?;
    if opts.controllers.is_empty() {
        bail!("name at least one --controller");
    }
    let controllers = opts
        .controllers
        .iter()
        .map(|c| super::resolve_in(&sc.controllers, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = PluginEngine::new()?;
    let steps = ((sc.end_ms - sc.start_ms) as f64 / (sc.step_s * 1000.0)).ceil() as u64;
    let runs = super::run_each(&controllers, steps, opts.progress, |c, on_step| {
        run::run(&sc, &engine, c, on_step)
    })?;
    write_results(&opts.out, &sc, &runs)?;
    Ok((sc, runs))
}

pub fn write_results(dir: &Path, sc: &SolarScenario, runs: &[SolarOutcome]) -> anyhow::Result<()> {
    use super::report::write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for r in runs {
        report::write_steps(dir, r)?;
        report::write_log(dir, r)?;
    }
    write(&dir.join("summary.csv"), &report::summary_csv(runs))?;
    write(&dir.join("summary.md"), &report::summary_markdown(sc, runs))?;
    plot::write_svg(&dir.join("plot.svg"), sc, runs)?;
    Ok(())
}
