//! `plot.svg`: three panels over the scored period, made with plotters —
//! air temperature of each controller (with the outdoor temperature and
//! the comfort floor), valve position of each controller, and the price.

use super::run::{RunOutcome, StepRow};
use super::scenario::Scenario;
use plotters::prelude::*;
use std::path::Path;

type Series = Vec<(f64, f64)>;

pub fn write_svg(path: &Path, scenario: &Scenario, runs: &[RunOutcome]) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot {}: {e}", path.display());
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let hours = |r: &StepRow| (r.t_ms - scenario.start_ms) as f64 / 3.6e6;
    let step_h = scenario.step_s / 3600.0;
    let scored = |run: &RunOutcome| -> Vec<StepRow> {
        run.rows.iter().filter(|r| r.scored).cloned().collect()
    };
    let span_h = (scenario.end_ms - scenario.start_ms) as f64 / 3.6e6;
    // Step functions drawn as steps: each value held over its step.
    let held = |rows: &[StepRow], f: &dyn Fn(&StepRow) -> f64| -> Series {
        rows.iter()
            .flat_map(|r| [(hours(r), f(r)), (hours(r) + step_h, f(r))])
            .collect()
    };
    let base = scored(first);
    let outdoor: Series = base.iter().map(|r| (hours(r), r.outdoor_c)).collect();
    let price = held(&base, &|r| r.price_eur_kwh);
    let temps: Vec<(String, Series)> = runs
        .iter()
        .map(|run| {
            let rows = scored(run);
            let s = rows.iter().map(|r| (hours(r), r.air_c)).collect();
            (run.label.clone(), s)
        })
        .collect();
    let valves: Vec<(String, Series)> = runs
        .iter()
        .map(|run| (run.label.clone(), held(&scored(run), &|r| r.valve_pct)))
        .collect();

    let root = SVGBackend::new(path, (1200, 960)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((3, 1));
    let floor = scenario.house.comfort_floor_c;

    // Temperatures.
    let all_t = temps
        .iter()
        .flat_map(|(_, s)| s.iter().map(|p| p.1))
        .chain(outdoor.iter().map(|p| p.1))
        .chain([floor]);
    let (lo, hi) = bounds(all_t);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption(
            format!("{}: air temperature", scenario.name),
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..span_h, lo..hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("°C")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, floor), (span_h, floor)],
            RED.mix(0.6),
        ))
        .map_err(|e| err(&e))?
        .label(format!("comfort floor {floor:.1} °C"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.mix(0.6)));
    chart
        .draw_series(LineSeries::new(outdoor, BLACK.mix(0.4)))
        .map_err(|e| err(&e))?
        .label("outdoor")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.4)));
    for (i, (label, s)) in temps.into_iter().enumerate() {
        let colour = Palette99::pick(i + 1).to_rgba();
        chart
            .draw_series(LineSeries::new(s, colour.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;

    // Valves.
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("valve position", ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..span_h, -2.0..102.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("%")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, (label, s)) in valves.into_iter().enumerate() {
        let colour = Palette99::pick(i + 1).to_rgba();
        chart
            .draw_series(LineSeries::new(s, colour))
            .map_err(|e| err(&e))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;

    // Price.
    let (lo, hi) = bounds(price.iter().map(|p| p.1).chain([0.0]));
    let mut chart = ChartBuilder::on(&panels[2])
        .caption("price", ("sans-serif", 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..span_h, lo..hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("€/kWh")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(price, BLUE))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A padded range over the finite values (a unit range when there are none).
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(0.1);
    (lo - pad, hi + pad)
}
