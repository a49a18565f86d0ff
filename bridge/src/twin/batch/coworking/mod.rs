//! `hearth simulate` on a coworking scenario (`kind = "coworking"`): the
//! strip strategies (`builtin:strip-balancer`, `builtin:all-on`,
//! `builtin:first-come`, `builtin:round-robin`, or any `.wasm`) each run
//! through the same plugin host against the same [`crate::twin::coworking`]
//! space, one thread each, and the results directory gets
//! `summary.csv`, `summary.md`, `plot.svg`, `steps-<label>.csv` (one row a
//! minute), `laptops-<label>.csv` and `log-<label>.txt`.

pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;

pub use run::{CoworkingMetrics, CoworkingOutcome};
pub use scenario::{CoworkingScenario, is_coworking};

use super::SimulateOptions;
use crate::plugins::engine::PluginEngine;
use anyhow::{Context, bail};
use std::path::Path;

/// Runs every strategy named in `opts` and writes the results directory.
pub fn simulate(
    opts: &SimulateOptions,
) -> anyhow::Result<(CoworkingScenario, Vec<CoworkingOutcome>)> {
    let sc = CoworkingScenario::load(&opts.scenario, opts.start.as_deref(), opts.end.as_deref())?;
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

pub fn write_results(
    dir: &Path,
    sc: &CoworkingScenario,
    runs: &[CoworkingOutcome],
) -> anyhow::Result<()> {
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
