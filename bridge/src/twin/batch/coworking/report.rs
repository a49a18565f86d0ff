//! The coworking results: `steps-<label>.csv` (one row a minute),
//! `laptops-<label>.csv`, `summary.csv`, `summary.md` (the table and the
//! balancer's standing against the others), `log-<label>.txt`.

use super::run::CoworkingOutcome;
use super::scenario::CoworkingScenario;
use crate::clock::iso8601;
use crate::twin::batch::report::write;
use std::fmt::Write as _;
use std::path::Path;

pub fn write_steps(dir: &Path, r: &CoworkingOutcome) -> anyhow::Result<()> {
    let mut out = String::from("time,period,open,circuit_a");
    if let Some(first) = r.rows.first() {
        for k in 0..first.strips_a.len() {
            let _ = write!(out, ",{}_a", crate::twin::coworking::SpaceSpec::strip_id(k));
        }
    }
    out.push_str(",plugged,relays_on,mean_battery_pct,min_battery_pct\n");
    for row in &r.rows {
        let _ = write!(
            out,
            "{},{},{},{:.2}",
            iso8601(row.t_ms),
            row.period,
            u8::from(row.open),
            row.circuit_a
        );
        for a in &row.strips_a {
            let _ = write!(out, ",{a:.2}");
        }
        let _ = writeln!(
            out,
            ",{},{},{:.1},{:.1}",
            row.plugged, row.relays_on, row.mean_battery_pct, row.min_battery_pct
        );
    }
    write(&dir.join(format!("steps-{}.csv", r.label)), &out)?;
    let mut out = String::from(
        "laptop,initial_pct,final_pct,target_pct,min_plugged_pct,wall_wh,arrive,leave,declared_leave\n",
    );
    for l in &r.laptops {
        let declared = l
            .declared_leave_ms
            .map_or(String::new(), crate::clock::iso8601);
        let _ = writeln!(
            out,
            "{},{:.1},{:.1},{:.0},{:.1},{:.1},{},{},{declared}",
            l.name,
            l.initial_pct,
            l.final_pct,
            l.target_pct,
            l.min_plugged_pct,
            l.wall_wh,
            crate::clock::iso8601(l.arrive_ms),
            crate::clock::iso8601(l.leave_ms),
        );
    }
    write(&dir.join(format!("laptops-{}.csv", r.label)), &out)
}

pub fn write_log(dir: &Path, r: &CoworkingOutcome) -> anyhow::Result<()> {
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

const COLUMNS: &str = "controller,plugin,violations,seconds_over,max_overshoot_a,breaker_trips,requested_kwh,delivered_kwh,laptops,at_target,at_target_share,lowest_plugged_pct,jain_gain,relay_switches_per_h,cost_eur,faults,wall_s";

/// `summary.csv`: one row per strategy; violations summed over the wall
/// circuit and the strips, the largest overshoot of any.
pub fn summary_csv(runs: &[CoworkingOutcome]) -> String {
    let mut out = format!("{COLUMNS}\n");
    for r in runs {
        let m = &r.metrics;
        let _ = writeln!(
            out,
            "{},{},{},{:.0},{:.2},{},{:.3},{:.3},{},{},{:.3},{:.1},{:.3},{:.1},{:.3},{},{:.2}",
            r.label,
            r.plugin,
            m.violation_count(),
            m.seconds_over(),
            m.max_overshoot_a(),
            m.trips(),
            m.requested_kwh,
            m.delivered_kwh,
            m.laptops,
            m.at_target,
            m.at_target_share(),
            m.lowest_plugged_pct,
            m.jain_gain,
            m.relay_switches_per_h,
            m.cost_eur,
            m.faults,
            r.wall.as_secs_f64()
        );
    }
    out
}

pub fn summary_markdown(sc: &CoworkingScenario, runs: &[CoworkingOutcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Simulation: {}\n", sc.name);
    if !sc.description.is_empty() {
        let _ = writeln!(out, "{}\n", sc.description.trim());
    }
    let sp = &sc.space;
    let _ = writeln!(
        out,
        "From {} to {} ({:.1} h), step {} s. {} strips × {} outlets (B{:.0} each) under a \
         B{:.0} wall circuit at {:.0} V, a {:.0} W lamp always on{}; {} laptops; Tempo HP/HC; \
         opening hours from the calendar. Laptops are judged at target when they leave \
         (or at the end); Jain's index is over battery gains (percentage points).\n",
        iso8601(sc.start_ms),
        iso8601(sc.end_ms),
        (sc.end_ms - sc.start_ms) as f64 / 3.6e6,
        sc.step_s,
        sp.strips,
        sp.outlets_per_strip,
        sp.strip_a,
        sp.circuit_a,
        sp.voltage_v,
        sp.lamp_w,
        match &sp.heater {
            Some(h) => format!(
                " (and a {:.0} W heater on its outlet, {} period(s))",
                h.w,
                h.on.len()
            ),
            None => String::new(),
        },
        sc.laptops.len()
    );
    out.push_str(
        "| strategy | violations | s over | max over (A) | trips | requested (kWh) | delivered (kWh) | at target | lowest plugged (%) | Jain | switches/h | cost (€) | faults |\n",
    );
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        let m = &r.metrics;
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.2} | {} | {:.2} | {:.2} | {}/{} ({:.0} %) | {:.1} | {:.3} | {:.1} | {:.3} | {} |",
            r.label,
            m.violation_count(),
            m.seconds_over(),
            m.max_overshoot_a(),
            m.trips(),
            m.requested_kwh,
            m.delivered_kwh,
            m.at_target,
            m.laptops,
            m.at_target_share() * 100.0,
            m.lowest_plugged_pct,
            m.jain_gain,
            m.relay_switches_per_h,
            m.cost_eur,
            m.faults
        );
    }
    out.push_str("\nPer circuit (violations / s over / max overshoot A / trips):\n\n");
    for r in runs {
        let per: Vec<String> = r
            .metrics
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{} ({:.0} A) {}/{:.0}/{:.2}/{}",
                    n.name, n.limit_a, n.count, n.seconds, n.max_overshoot_a, n.trips
                )
            })
            .collect();
        let _ = writeln!(out, "- {}: {}", r.label, per.join("; "));
    }
    if let Some(verdict) = verdict(runs) {
        let _ = writeln!(out, "\n{verdict}");
    }
    out
}

/// The balancer against the others, stated plainly (each claim true or false).
pub fn verdict(runs: &[CoworkingOutcome]) -> Option<String> {
    let find = |l: &str| runs.iter().find(|r| r.label == l).map(|r| &r.metrics);
    let b = find("strip-balancer")?;
    let mut lines = vec![format!(
        "- strip-balancer: {} limit violations and {} breaker trips.",
        b.violation_count(),
        b.trips()
    )];
    if let Some(a) = find("all-on") {
        lines.push(format!(
            "- all-on: {} violations, {} breaker trips.",
            a.violation_count(),
            a.trips()
        ));
    }
    if let Some(f) = find("first-come") {
        let cmp = |x: f64, y: f64| if x >= y { "≥" } else { "<" };
        lines.push(format!(
            "- against first-come: energy delivered {:.2} {} {:.2} kWh; at target {:.0} % {} {:.0} %; Jain {:.3} {} {:.3}.",
            b.delivered_kwh,
            cmp(b.delivered_kwh, f.delivered_kwh),
            f.delivered_kwh,
            b.at_target_share() * 100.0,
            cmp(b.at_target_share(), f.at_target_share()),
            f.at_target_share() * 100.0,
            b.jain_gain,
            cmp(b.jain_gain, f.jain_gain),
            f.jain_gain
        ));
    }
    Some(format!("Verdict:\n\n{}", lines.join("\n")))
}
