//! `plot.svg`: PV and base load, the import price, each controller's grid
//! power (import +, export −) against the import limit, and each
//! controller's load plan as it ran (the four loads' power). Long runs are
//! averaged into blocks of at most 2 000 points per line.

use super::run::SolarOutcome;
use super::scenario::SolarScenario;
use crate::twin::solar_house::LoadId;
use plotters::prelude::*;
use std::path::Path;

const MAX_POINTS: usize = 2000;

/// Block means of `f` over the rows: (hours from start, value).
fn series(r: &SolarOutcome, start_ms: i64, f: impl Fn(&super::run::Row) -> f64) -> Vec<(f64, f64)> {
    let n = r.rows.len().div_ceil(MAX_POINTS).max(1);
    r.rows
        .chunks(n)
        .map(|c| {
            let t = (c[0].t_ms - start_ms) as f64 / 3.6e6;
            (t, c.iter().map(&f).sum::<f64>() / c.len() as f64)
        })
        .collect()
}

pub fn write_svg(path: &Path, sc: &SolarScenario, runs: &[SolarOutcome]) -> anyhow::Result<()> {
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("plot {}: {e}", path.display());
    let span_h = (sc.end_ms - sc.start_ms) as f64 / 3.6e6;
    let panels_n = 3 + runs.len();
    let root = SVGBackend::new(path, (1400, 260 * panels_n as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let panels = root.split_evenly((panels_n, 1));
    let Some(first) = runs.first() else {
        root.present().map_err(|e| err(&e))?;
        return Ok(());
    };
    let colours = [
        RGBColor(230, 159, 0),
        RGBColor(0, 114, 178),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
    ];
    let max_of = |v: &[(f64, f64)]| v.iter().map(|p| p.1).fold(0.0, f64::max);

    // 1. PV and base load (the same for every controller).
    let pv = series(first, sc.start_ms, |r| r.pv_w);
    let base = series(first, sc.start_ms, |r| r.base_w);
    let top = max_of(&pv).max(max_of(&base)) * 1.1 + 100.0;
    let mut chart = ChartBuilder::on(&panels[0])
        .caption(
            format!("{}: PV and base load (W)", sc.name),
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span_h, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("W")
        .draw()
        .map_err(|e| err(&e))?;
    for (name, data, c) in [("PV", pv, colours[0]), ("base load", base, colours[1])] {
        chart
            .draw_series(LineSeries::new(data, c.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;

    // 2. Price.
    let price = series(first, sc.start_ms, |r| r.price);
    let top = max_of(&price).max(sc.grid.export_price_eur_kwh) * 1.15 + 0.01;
    let mut chart = ChartBuilder::on(&panels[1])
        .caption(
            "import price (€/kWh), export price (dashed)",
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span_h, 0.0..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("€/kWh")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(price, RED.stroke_width(2)))
        .map_err(|e| err(&e))?;
    let ex = sc.grid.export_price_eur_kwh;
    chart
        .draw_series(DashedLineSeries::new(
            vec![(0.0, ex), (span_h, ex)],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| err(&e))?;

    // 3. Grid power per controller.
    let grids: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| series(r, sc.start_ms, |x| x.import_w - x.export_w))
        .collect();
    let hi = grids
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(sc.grid.import_limit_w, f64::max)
        * 1.05;
    let lo = grids.iter().flatten().map(|p| p.1).fold(0.0, f64::min) * 1.05 - 100.0;
    let mut chart = ChartBuilder::on(&panels[2])
        .caption(
            "grid power (W): import +, export −; import limit in red",
            ("sans-serif", 18),
        )
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..span_h, lo..hi)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("hours from start")
        .y_desc("W")
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(
            vec![
                (0.0, sc.grid.import_limit_w),
                (span_h, sc.grid.import_limit_w),
            ],
            RED.stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    for (i, (r, g)) in runs.iter().zip(grids).enumerate() {
        let c = Palette99::pick(i + 1).to_rgba();
        chart
            .draw_series(LineSeries::new(g, c))
            .map_err(|e| err(&e))?
            .label(r.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| err(&e))?;

    // 4… Each controller's loads as they ran.
    let load_top = runs
        .iter()
        .flat_map(|r| r.rows.iter().flat_map(|x| x.loads_w))
        .fold(1000.0, f64::max)
        * 1.1;
    for (i, r) in runs.iter().enumerate() {
        let mut chart = ChartBuilder::on(&panels[3 + i])
            .caption(
                format!("{}: load plan as run (W)", r.label),
                ("sans-serif", 18),
            )
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..span_h, 0.0..load_top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("hours from start")
            .y_desc("W")
            .draw()
            .map_err(|e| err(&e))?;
        for l in LoadId::ALL {
            if r.metrics.load(l).kwh <= 0.0 && !r.metrics.load(l).present {
                continue;
            }
            let c = colours[2 + l.index()];
            let k = l.index();
            chart
                .draw_series(LineSeries::new(
                    series(r, sc.start_ms, |x| x.loads_w[k]),
                    c.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(l.id())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
