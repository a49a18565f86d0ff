//! `plot.svg`: the wall circuit's current of each strategy against its
//! limit, and the mean and lowest battery of the plugged laptops.

use super::run::{CoworkingOutcome, ROW_EVERY_S};
use super::scenario::CoworkingScenario;
use plotters::prelude::*;
use std::path::Path;

pub fn write_svg(
    path: &Path,
    sc: &CoworkingScenario,
    runs: &[CoworkingOutcome],
) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot {}: {e}", path.display());
    let span_h = (sc.end_ms - sc.start_ms) as f64 / 3.6e6;
    let h = |t: i64| (t - sc.start_ms) as f64 / 3.6e6;
    let root = SVGBackend::new(path, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((2, 1));
    let limit = sc.space.circuit_a;
    let top = runs
        .iter()
        .flat_map(|r| r.rows.iter().map(|x| x.circuit_a))
        .fold(limit * 1.3, f64::max);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption(
            format!(
                "{}: wall circuit current (A), sampled every {ROW_EVERY_S:.0} s",
                sc.name
            ),
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..span_h, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("A")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, limit), (span_h, limit)],
            RED.stroke_width(2),
        ))
        .map_err(|e| err(&e))?
        .label(format!("limit {limit:.0} A"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED));
    for (i, r) in runs.iter().enumerate() {
        let colour = Palette99::pick(i + 1).to_rgba();
        chart
            .draw_series(LineSeries::new(
                r.rows.iter().map(|x| (h(x.t_ms), x.circuit_a)),
                colour,
            ))
            .map_err(|e| err(&e))?
            .label(r.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;

    let mut chart = ChartBuilder::on(&panels[1])
        .caption(
            "plugged laptops' battery: mean (solid), lowest (thin)",
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..span_h, 0.0..100.0)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("%")
        .draw()
        .map_err(|e| err(&e))?;
    for (i, r) in runs.iter().enumerate() {
        let colour = Palette99::pick(i + 1).to_rgba();
        // NaN (nobody plugged) breaks the line into pieces.
        for pick in [0, 1] {
            let mut piece = Vec::new();
            let mut pieces = Vec::new();
            for x in &r.rows {
                let v = if pick == 0 {
                    x.mean_battery_pct
                } else {
                    x.min_battery_pct
                };
                if v.is_finite() {
                    piece.push((h(x.t_ms), v));
                } else if !piece.is_empty() {
                    pieces.push(std::mem::take(&mut piece));
                }
            }
            pieces.push(piece);
            let style = if pick == 0 {
                colour.stroke_width(2)
            } else {
                colour.stroke_width(1)
            };
            for (k, p) in pieces.into_iter().enumerate() {
                let s = chart
                    .draw_series(LineSeries::new(p, style))
                    .map_err(|e| err(&e))?;
                if pick == 0 && k == 0 {
                    s.label(r.label.clone())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
                }
            }
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
