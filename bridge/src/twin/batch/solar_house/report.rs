//! The solar-house results: `steps-<label>.csv` (one row a minute),
//! `summary.csv`, `summary.md` (the table, per-load details, per-day net
//! cost and the optimizer's standing against the baselines),
//! `log-<label>.txt` (the plugin's log with the house's events and every
//! deadline judged).

use super::run::SolarOutcome;
use super::scenario::SolarScenario;
use crate::clock::iso8601;
use crate::twin::batch::report::write;
use crate::twin::solar_house::LoadId;
use std::fmt::Write as _;
use std::path::Path;

/// The optimizer and the baselines it must beat (issue 15).
pub const OPTIMIZER: &str = "tariff-optimizer";
pub const BASELINES: [&str; 2] = ["fixed-times", "off-peak-rule"];

pub fn write_steps(dir: &Path, r: &SolarOutcome) -> anyhow::Result<()> {
    let mut out = String::from("time,period,price_eur_kwh,pv_w,base_w");
    for l in LoadId::ALL {
        let _ = write!(out, ",{}_w", l.id());
    }
    out.push_str(",import_w,export_w,tank_c,ev_pct");
    for l in LoadId::ALL {
        let _ = write!(out, ",{}_relay", l.id());
    }
    out.push('\n');
    for row in &r.rows {
        let _ = write!(
            out,
            "{},{},{:.4},{:.1},{:.1}",
            iso8601(row.t_ms),
            row.period,
            row.price,
            row.pv_w,
            row.base_w
        );
        for w in row.loads_w {
            let _ = write!(out, ",{w:.1}");
        }
        let _ = write!(
            out,
            ",{:.1},{:.1},{:.2},{:.2}",
            row.import_w, row.export_w, row.tank_c, row.ev_pct
        );
        for on in row.relays {
            let _ = write!(out, ",{}", u8::from(on));
        }
        out.push('\n');
    }
    write(&dir.join(format!("steps-{}.csv", r.label)), &out)
}

pub fn write_log(dir: &Path, r: &SolarOutcome) -> anyhow::Result<()> {
    let mut out = String::new();
    for l in &r.log {
        let _ = writeln!(
            out,
            "{} {:5} {:6} {}",
            iso8601(l.time_ms),
            l.level,
            l.source,
            l.message
        );
    }
    write(&dir.join(format!("log-{}.txt", r.label)), &out)
}

const COLUMNS: &str = "controller,plugin,adjusted_cost_eur,stored_heat_eur,net_cost_eur,import_cost_eur,export_revenue_eur,import_kwh,export_kwh,pv_kwh,consumption_kwh,self_consumption_pct,self_sufficiency_pct,peak_import_kw,seconds_over_limit,deadlines_met,deadlines_missed";

/// `summary.csv`: one row per controller; per load `<id>_kwh`,
/// `<id>_met`, `<id>_missed`, `<id>_starts`, `<id>_splits`.
pub fn summary_csv(runs: &[SolarOutcome]) -> String {
    let mut out = String::from(COLUMNS);
    for l in LoadId::ALL {
        for k in ["kwh", "met", "missed", "starts", "splits"] {
            let _ = write!(out, ",{}_{k}", l.id());
        }
    }
    out.push_str(
        ",tank_end_c,faults,tick_median_ms,tick_p99_ms,tick_max_ms,plugin_s,call_max_ms,wall_s\n",
    );
    for r in runs {
        let m = &r.metrics;
        let _ = write!(
            out,
            "{},{},{:.4},{:.4},{:.4},{:.4},{:.4},{:.3},{:.3},{:.3},{:.3},{:.1},{:.1},{:.3},{:.0},{},{}",
            r.label,
            r.plugin,
            m.adjusted_cost_eur,
            m.stored_heat_eur,
            m.net_cost_eur,
            m.import_cost_eur,
            m.export_revenue_eur,
            m.import_kwh,
            m.export_kwh,
            m.pv_kwh,
            m.consumption_kwh,
            m.self_consumption_pct,
            m.self_sufficiency_pct,
            m.peak_import_kw,
            m.seconds_over_limit,
            m.deadlines_met(),
            m.deadlines_missed()
        );
        for l in &m.loads {
            let _ = write!(
                out,
                ",{:.3},{},{},{},{}",
                l.kwh, l.met, l.missed, l.starts, l.splits
            );
        }
        let _ = writeln!(
            out,
            ",{:.2},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.2}",
            m.tank_end_c,
            m.faults,
            m.tick_median_ms,
            m.tick_p99_ms,
            m.tick_max_ms,
            m.plugin_s,
            m.call_max_ms,
            r.wall.as_secs_f64()
        );
    }
    out
}

pub fn summary_markdown(sc: &SolarScenario, runs: &[SolarOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Simulation: {}\n", sc.name);
    if !sc.description.is_empty() {
        let _ = writeln!(out, "{}\n", sc.description.trim());
    }
    let h = &sc.house;
    let present: Vec<LoadId> = LoadId::ALL
        .into_iter()
        .filter(|l| match l {
            LoadId::WaterHeater => h.water_heater.is_some(),
            LoadId::WashingMachine => h.washing_machine.is_some(),
            LoadId::Dishwasher => h.dishwasher.is_some(),
            LoadId::Ev => h.ev.is_some(),
        })
        .collect();
    let _ = writeln!(
        out,
        "From {} to {} ({:.1} h), step {} s. {}; import limit {:.1} kW; export {:.3} €/kWh; Tempo HP/HC. \
         Loads: {}. Costs: import at the tariff's price, export revenue subtracted (net). \
         Self-consumption = PV used on site / PV produced; self-sufficiency = consumption covered by PV. \
         Deadlines: machines done by their \"done by\", the EV at its target when it leaves, the tank \
         at its minimum at each ready time. Starts: programmes or heating/charging runs begun; \
         splits: a machine paused mid-programme, the EV stopped below its target. The tank's \
         temperature at the end is heat left for the next day (each kelvin is {:.2} kWh): \
         a controller that ends colder has spent less but left less.\n",
        iso8601(sc.start_ms),
        iso8601(sc.end_ms),
        (sc.end_ms - sc.start_ms) as f64 / 3.6e6,
        sc.step_s,
        match &h.pv {
            Some(pv) => format!(
                "PV {:.1} kWp, tilt {:.0}°, azimuth {:.0}° at {:.2} N {:.2} E",
                pv.kwp, pv.tilt_deg, pv.azimuth_deg, pv.lat, pv.lon
            ),
            None => "no PV".into(),
        },
        sc.grid.import_limit_w / 1000.0,
        sc.grid.export_price_eur_kwh,
        present
            .iter()
            .map(|l| l.id())
            .collect::<Vec<_>>()
            .join(", "),
        h.water_heater
            .as_ref()
            .map_or(0.0, |w| w.capacity_wh_per_k() / 1000.0)
    );
    out.push_str(
        "| controller | cost adjusted for the tank's heat (€) | net cost (€) | import cost (€) | export revenue (€) | import (kWh) | export (kWh) | PV (kWh) | self-consumption (%) | self-sufficiency (%) | peak import (kW) | s over limit | deadlines met/missed | starts WH/WM/DW/EV | splits WM/DW/EV | tank at end (°C) | faults | tick median/p99 (ms) | longest call (ms) |\n",
    );
    out.push_str(
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let m = &r.metrics;
        let starts: Vec<String> = LoadId::ALL
            .iter()
            .map(|&l| m.load(l).starts.to_string())
            .collect();
        let splits: Vec<String> = [LoadId::WashingMachine, LoadId::Dishwasher, LoadId::Ev]
            .iter()
            .map(|&l| m.load(l).splits.to_string())
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} | {:.0} | {}/{} | {} | {} | {:.1} | {} | {:.2}/{:.2} | {:.0} |",
            r.label,
            m.adjusted_cost_eur,
            m.net_cost_eur,
            m.import_cost_eur,
            m.export_revenue_eur,
            m.import_kwh,
            m.export_kwh,
            m.pv_kwh,
            m.self_consumption_pct,
            m.self_sufficiency_pct,
            m.peak_import_kw,
            m.seconds_over_limit,
            m.deadlines_met(),
            m.deadlines_missed(),
            starts.join("/"),
            splits.join("/"),
            m.tank_end_c,
            m.faults,
            m.tick_median_ms,
            m.tick_p99_ms,
            m.call_max_ms
        );
    }
    out.push_str("\nPer load (kWh, deadlines met/missed, starts, splits):\n\n| controller |");
    for l in &present {
        let _ = write!(out, " {} |", l.id());
    }
    out.push_str("\n|---|");
    for _ in &present {
        out.push_str("---|");
    }
    out.push('\n');
    for r in runs {
        let _ = write!(out, "| {} |", r.label);
        for &l in &present {
            let x = r.metrics.load(l);
            let _ = write!(
                out,
                " {:.2} kWh, {}/{}, {} starts, {} splits |",
                x.kwh, x.met, x.missed, x.starts, x.splits
            );
        }
        out.push('\n');
    }
    let days = runs
        .first()
        .map_or(0, |r| r.metrics.daily_net_cost_eur.len());
    if days > 1 {
        out.push_str("\nNet cost per 24 h from the start (€):\n\n| day from |");
        for r in runs {
            let _ = write!(out, " {} |", r.label);
        }
        out.push_str("\n|---|");
        for _ in runs {
            out.push_str("---:|");
        }
        out.push('\n');
        for d in 0..days {
            let _ = write!(out, "| {} |", iso8601(sc.start_ms + d as i64 * 86_400_000));
            for r in runs {
                let _ = write!(out, " {:.3} |", r.metrics.daily_net_cost_eur[d]);
            }
            out.push('\n');
        }
    }
    let missed: Vec<String> = runs
        .iter()
        .flat_map(|r| {
            r.judgements.iter().filter(|j| !j.met).map(move |j| {
                format!(
                    "- {}: {} due {}: {}",
                    r.label,
                    j.load.id(),
                    iso8601(j.due_ms),
                    j.detail
                )
            })
        })
        .collect();
    if !missed.is_empty() {
        let _ = writeln!(out, "\nDeadlines missed:\n\n{}", missed.join("\n"));
    }
    if let Some(v) = verdict(runs) {
        let _ = writeln!(out, "\n{v}");
    }
    out
}

/// The optimizer against the baselines, stated plainly (each claim true or
/// false as the figures say).
pub fn verdict(runs: &[SolarOutcome]) -> Option<String> {
    let find = |l: &str| runs.iter().find(|r| r.label == l).map(|r| &r.metrics);
    let o = find(OPTIMIZER)?;
    let mut lines = vec![format!(
        "- {OPTIMIZER}: cost {:.3} € adjusted for the tank's heat at the end (net cost {:.3} €, tank {:+.3} €), {} deadlines met, {} missed.",
        o.adjusted_cost_eur,
        o.net_cost_eur,
        o.stored_heat_eur,
        o.deadlines_met(),
        o.deadlines_missed()
    )];
    for b in BASELINES {
        let Some(m) = find(b) else { continue };
        let lower = o.adjusted_cost_eur < m.adjusted_cost_eur;
        let days = o
            .daily_net_cost_eur
            .iter()
            .zip(&m.daily_net_cost_eur)
            .filter(|(a, b)| a < b)
            .count();
        lines.push(format!(
            "- against {b}: adjusted cost {:.3} € {} {:.3} € ({:+.3} €, {:+.1} %), net cost lower on {days} of {} days (daily costs are not adjusted); {b} met {} and missed {} deadlines.",
            o.adjusted_cost_eur,
            if lower { "<" } else { "≥" },
            m.adjusted_cost_eur,
            o.adjusted_cost_eur - m.adjusted_cost_eur,
            if m.adjusted_cost_eur.abs() > 1e-9 {
                100.0 * (o.adjusted_cost_eur - m.adjusted_cost_eur) / m.adjusted_cost_eur.abs()
            } else {
                f64::NAN
            },
            o.daily_net_cost_eur.len(),
            m.deadlines_met(),
            m.deadlines_missed()
        ));
    }
    Some(format!("Verdict:\n\n{}", lines.join("\n")))
}
