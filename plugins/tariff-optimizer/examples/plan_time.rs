//! Plan time of the sample house (a water heater, a washing machine, an
//! EV and a pool pump with min on/off), natively: median and p99 over 50
//! solves per size, node limit 20 000. (The on/off tank on 48 h x 30 min
//! is left out: it stops at the node limit after about 9 s.) `cargo run --release -p hearth-tariff-optimizer
//! --example plan_time [runs]`.

use std::time::Instant;

use hearth_tariff_optimizer::model::ModelOptions;
use hearth_tariff_optimizer::samples::house;
use hearth_tariff_optimizer::{SolveConfig, plan};

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    for (steps, step_s, what, on_off) in [
        (48, 1800, "24 h x 30 min", false),
        (96, 900, "24 h x 15 min", false),
        (96, 1800, "48 h x 30 min", false),
        (48, 1800, "24 h x 30 min, on/off tank", true),
        (96, 900, "24 h x 15 min, on/off tank", true),
    ] {
        let cfg = SolveConfig {
            model: ModelOptions {
                thermal_on_off: on_off,
                ..Default::default()
            },
            ..SolveConfig::default()
        };
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
