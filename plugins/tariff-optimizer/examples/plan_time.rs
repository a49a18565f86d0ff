//! Plan time of the sample house (a water heater, a washing machine, an
//! EV and a pool pump with min on/off), natively: median and p99 over 50
//! solves per size. `cargo run --release -p hearth-tariff-optimizer
//! --example plan_time [runs]`.

use std::time::Instant;

use hearth_tariff_optimizer::samples::house;
use hearth_tariff_optimizer::{SolveConfig, plan};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let cfg = SolveConfig::default();
    for (steps, step_s, what) in [
        (48, 1800, "24 h x 30 min"),
        (96, 900, "24 h x 15 min"),
        (96, 1800, "48 h x 30 min"),
    ] {
        let p = house(steps, step_s);
        let mut ms = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let t = Instant::now();
            let pl = plan(&p, &cfg);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            last = Some(pl);
        }
        ms.sort_by(f64::total_cmp);
        let pl = last.unwrap();
        let q = |f: f64| ms[((ms.len() - 1) as f64 * f).round() as usize];
        println!(
            "{what}: median {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs); {} objective {:.4} nodes {}",
            q(0.5),
            q(0.99),
            ms[ms.len() - 1],
            runs,
            pl.status.name(),
            pl.objective,
            pl.nodes
        );
    }
}
