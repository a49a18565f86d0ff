//! The results directory: per-step CSV per controller, `summary.csv` (one
//! row per controller), `summary.md` (the same table), each plugin's log.

use super::run::{Metrics, RunOutcome};
use super::scenario::Scenario;
use crate::clock::iso8601;
use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;

/// `steps-<label>.csv`: every step, warm-up included (`scored` = 0).
pub fn write_steps(dir: &Path, run: &RunOutcome) -> anyhow::Result<()> {
    let mut out = String::with_capacity(run.rows.len() * 120);
    out.push_str(
        "time,scored,outdoor_c,irradiance_w_m2,price_eur_kwh,air_c,mass_c,valve_pct,heat_w,energy_wh,cost_eur",
    );
    for c in &run.entity_columns {
        let _ = write!(out, ",plugin_{c}");
    }
    out.push('\n');
    for r in &run.rows {
        let _ = write!(
            out,
            "{},{},{:.3},{:.1},{:.4},{:.3},{:.3},{:.1},{:.1},{:.2},{:.5}",
            iso8601(r.t_ms),
            u8::from(r.scored),
            r.outdoor_c,
            r.irradiance_w_m2,
            r.price_eur_kwh,
            r.air_c,
            r.mass_c,
            r.valve_pct,
            r.heat_w,
            r.energy_wh,
            r.cost_eur
        );
        for v in &r.plugin_entities {
            out.push(',');
            out.push_str(&csv_field(v));
        }
        out.push('\n');
    }
    write(&dir.join(format!("steps-{}.csv", run.label)), &out)
}

/// `log-<label>.txt`: the plugin's and the host's lines about it.
pub fn write_log(dir: &Path, run: &RunOutcome) -> anyhow::Result<()> {
    let mut out = String::new();
    for l in &run.log {
        let _ = writeln!(
            out,
            "{} {:5} {:6} {}",
            iso8601(l.time_ms),
            l.level,
            l.source,
            l.message
        );
    }
    write(&dir.join(format!("log-{}.txt", run.label)), &out)
}

const COLUMNS: [&str; 13] = [
    "controller",
    "plugin",
    "energy_kwh",
    "cost_eur",
    "degree_hours_below_floor",
    "comfort_floor_c",
    "min_c",
    "max_c",
    "mean_c",
    "end_c",
    "valve_changes",
    "faults",
    "wall_s",
];

fn values(run: &RunOutcome) -> [String; 13] {
    let m: &Metrics = &run.metrics;
    [
        run.label.clone(),
        run.plugin.clone(),
        format!("{:.3}", m.energy_kwh),
        format!("{:.3}", m.cost_eur),
        format!("{:.3}", m.degree_hours_below_floor),
        format!("{:.1}", m.comfort_floor_c),
        format!("{:.2}", m.min_c),
        format!("{:.2}", m.max_c),
        format!("{:.2}", m.mean_c),
        format!("{:.2}", m.end_c),
        m.valve_changes.to_string(),
        m.faults.to_string(),
        format!("{:.2}", run.wall.as_secs_f64()),
    ]
}

/// `summary.csv`: one row per controller.
pub fn summary_csv(runs: &[RunOutcome]) -> String {
    let mut out = COLUMNS.join(",");
    out.push('\n');
    for r in runs {
        let v: Vec<String> = values(r).iter().map(|f| csv_field(f)).collect();
        out.push_str(&v.join(","));
        out.push('\n');
    }
    out
}

/// `summary.md`: the scenario and the same table, in Markdown.
pub fn summary_markdown(scenario: &Scenario, runs: &[RunOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Simulation: {}\n", scenario.name);
    if !scenario.description.is_empty() {
        let _ = writeln!(out, "{}\n", scenario.description.trim());
    }
    let _ = writeln!(
        out,
        "Scored from {} to {} ({:.0} h, after {:.0} h of warm-up), step {} s. \
         Comfort: degree-hours below {:.1} °C (air temperature). Cost at the \
         scenario's tariff; the heater is electric (1 kWh of heat = 1 kWh billed).\n",
        iso8601(scenario.start_ms),
        iso8601(scenario.end_ms),
        (scenario.end_ms - scenario.start_ms) as f64 / 3.6e6,
        scenario.warmup_ms as f64 / 3.6e6,
        scenario.step_s,
        scenario.house.comfort_floor_c
    );
    out.push_str(
        "| controller | plugin | energy (kWh) | cost (€) | below floor (K·h) | min (°C) | max (°C) | mean (°C) | end (°C) | valve changes | faults |\n",
    );
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let m = &r.metrics;
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.3} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            r.label,
            r.plugin,
            m.energy_kwh,
            m.cost_eur,
            m.degree_hours_below_floor,
            m.min_c,
            m.max_c,
            m.mean_c,
            m.end_c,
            m.valve_changes,
            m.faults
        );
    }
    for r in runs.iter().filter(|r| !r.faults.is_empty()) {
        let _ = writeln!(out, "\n`{}` faulted {} times:", r.label, r.faults.len());
        for f in r.faults.iter().take(10) {
            let _ = writeln!(out, "- {f}");
        }
    }
    out
}

fn csv_field(v: &str) -> String {
    if v.contains([',', '"', '\n']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_string()
    }
}

pub fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
