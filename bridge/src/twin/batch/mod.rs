//! # Batch simulation: `hearth simulate`
//!
//! Runs controllers against the simulated house of a [`scenario`] in
//! virtual time, as fast as the machine allows, through the same plugin
//! host and the same `.wasm` as live, and writes a results directory:
//!
//! | file | content |
//! |---|---|
//! | `steps-<controller>.csv` | every step: time, weather, price, air/mass temperature, valve, heat, energy, cost, the plugin's own entities |
//! | `summary.csv` | one row per controller: energy kWh, cost €, degree-hours below the comfort floor, min/max/mean/end °C, valve changes, faults |
//! | `summary.md` | the scenario and the same table in Markdown |
//! | `plot.svg` | temperatures, valve positions and price over the scored period |
//! | `log-<controller>.txt` | the plugin's log |
//!
//! Each controller runs in its own thread with its own store, clock and
//! plant ([`run`]); they share only the compiled code.

pub mod coworking;
pub mod plot;
pub mod report;
pub mod run;
pub mod scenario;
pub mod solar_house;

pub use run::{ControllerRun, Metrics, RunOutcome};
pub use scenario::Scenario;

use crate::plugins::PluginConfig;
use crate::plugins::engine::PluginEngine;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `hearth simulate`'s arguments.
#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub scenario: PathBuf,
    /// RFC 3339; the scenario's own when `None`.
    pub start: Option<String>,
    pub end: Option<String>,
    /// `PATH.wasm`, `builtin:NAME` or `LABEL=PATH`.
    pub controllers: Vec<String>,
    pub out: PathBuf,
    pub progress: bool,
}

/// The controller's label and plugin config, its settings from the
/// scenario's `[controllers.<label>]`.
pub fn resolve_controller(scenario: &Scenario, arg: &str) -> anyhow::Result<ControllerRun> {
    resolve_in(&scenario.controllers, arg)
}

/// [`resolve_controller`] over any scenario's `[controllers.<label>]`
/// (the house's and the coworking space's).
pub(crate) fn resolve_in(
    controllers: &std::collections::BTreeMap<String, scenario::ControllerSpec>,
    arg: &str,
) -> anyhow::Result<ControllerRun> {
    let (label, wasm) = match arg.split_once('=') {
        Some((label, wasm)) => (label.to_string(), wasm.to_string()),
        None => (label_of(arg), arg.to_string()),
    };
    let spec = controllers.get(&label).with_context(|| {
        let known: Vec<&String> = controllers.keys().collect();
        format!(
            "controller `{arg}`: the scenario has no [controllers.{label}] (it has {known:?}); \
             name one with LABEL=PATH"
        )
    })?;
    // A bare label (`--controller mpc`) takes the scenario's `wasm`.
    let wasm = if !wasm.contains(['/', '.', ':']) {
        spec.wasm
            .clone()
            .unwrap_or_else(|| format!("builtin:{wasm}"))
    } else {
        wasm
    };
    Ok(ControllerRun {
        label: label.clone(),
        plugin: PluginConfig {
            name: label.replace('_', "-"),
            wasm,
            config: spec.config.clone(),
            limits: spec.limits,
            drives: None,
        },
    })
}

/// `…/hearth_plugin_mpc.wasm` → `mpc`; `builtin:thermostat` → `thermostat`.
fn label_of(wasm: &str) -> String {
    let name = wasm.strip_prefix("builtin:").unwrap_or(wasm);
    let stem = Path::new(name)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(name);
    stem.strip_prefix("hearth_plugin_")
        .unwrap_or(stem)
        .replace('_', "-")
}

/// Runs the scenario (a house, `kind = "coworking"` or `kind =
/// "solar-house"`), writes the results directory and returns its
/// `summary.md`.
pub fn simulate_summary(opts: &SimulateOptions) -> anyhow::Result<String> {
    if coworking::is_coworking(&opts.scenario) {
        let (sc, runs) = coworking::simulate(opts)?;
        return Ok(coworking::report::summary_markdown(&sc, &runs));
    }
    if solar_house::is_solar_house(&opts.scenario) {
        let (sc, runs) = solar_house::simulate(opts)?;
        return Ok(solar_house::report::summary_markdown(&sc, &runs));
    }
    let (scenario, runs) = simulate(opts)?;
    Ok(report::summary_markdown(&scenario, &runs))
}

/// Runs every controller and writes the results directory.
pub fn simulate(opts: &SimulateOptions) -> anyhow::Result<(Scenario, Vec<RunOutcome>)> {
    let scenario =
        Scenario::load(&opts.scenario)?.with_period(opts.start.as_deref(), opts.end.as_deref())?;
    if opts.controllers.is_empty() {
        bail!("name at least one --controller");
    }
    let controllers = opts
        .controllers
        .iter()
        .map(|c| resolve_controller(&scenario, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = PluginEngine::new()?;
    let runs = run_all(&scenario, &engine, &controllers, opts.progress)?;
    write_results(&opts.out, &scenario, &runs)?;
    Ok((scenario, runs))
}

/// The runs, one thread each, with a progress bar on a terminal.
pub fn run_all(
    scenario: &Scenario,
    engine: &Arc<PluginEngine>,
    controllers: &[ControllerRun],
    progress: bool,
) -> anyhow::Result<Vec<RunOutcome>> {
    let steps_each = ((scenario.end_ms - scenario.start_ms + scenario.warmup_ms) as f64
        / (scenario.step_s * 1000.0))
        .ceil() as u64;
    let bar = if progress {
        indicatif::ProgressBar::new(steps_each * controllers.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:40}] {pos}/{len} steps, {per_sec}, eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(format!("simulating {}", scenario.name));
    let on_step = || bar.inc(1);
    let results: Vec<anyhow::Result<RunOutcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = controllers
            .iter()
            .map(|c| s.spawn(|| run::run(scenario, engine, c, &on_step)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a simulation thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    results.into_iter().collect()
}

/// Runs `run` for every controller, one thread each, with a progress bar
/// of `steps_each` steps per controller (hidden unless `progress`); the
/// coworking and solar-house simulators share it.
pub(crate) fn run_each<T: Send>(
    controllers: &[ControllerRun],
    steps_each: u64,
    progress: bool,
    run: impl Fn(&ControllerRun, &(dyn Fn() + Sync)) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    let bar = if progress {
        indicatif::ProgressBar::new(steps_each * controllers.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let on_step = || bar.inc(1);
    let results: Vec<anyhow::Result<T>> = std::thread::scope(|s| {
        let handles: Vec<_> = controllers
            .iter()
            .map(|c| s.spawn(|| run(c, &on_step)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a simulation thread panicked")))
            })
            .collect()
    });
    bar.finish_and_clear();
    results.into_iter().collect()
}

pub fn write_results(dir: &Path, scenario: &Scenario, runs: &[RunOutcome]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for r in runs {
        report::write_steps(dir, r)?;
        report::write_log(dir, r)?;
    }
    report::write(&dir.join("summary.csv"), &report::summary_csv(runs))?;
    report::write(
        &dir.join("summary.md"),
        &report::summary_markdown(scenario, runs),
    )?;
    plot::write_svg(&dir.join("plot.svg"), scenario, runs)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_file_names() {
        assert_eq!(label_of("target/plugins/hearth_plugin_mpc.wasm"), "mpc");
        assert_eq!(label_of("builtin:thermostat"), "thermostat");
        assert_eq!(label_of("./my_strategy.wasm"), "my-strategy");
    }
}
