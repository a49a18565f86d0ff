//! Native timings of the two heavy calls, for sizing the plugin's fuel and
//! wall-clock limits: one 72-h fit (288 samples at 15 min) and one 96-step
//! horizon solve with each solver (banded interior point, clarabel).
//!
//! `cargo run -p hearth-plugin-mpc --release --example timing`

use hearth_plugin_mpc::fit::{Dataset, FitOptions, fit};
use hearth_plugin_mpc::model::{Discrete, Params};
use hearth_plugin_mpc::qp::{Forecast, Settings, Solver, plan_with};
use std::time::Instant;

fn house() -> Params {
    Params {
        c_i: 4.0e6,
        c_e: 4.0e7,
        r_ie: 1.5e-3,
        r_ea: 5.0e-3,
        r_ia: Some(0.04),
        a_w: 3.0,
    }
}

fn outdoor(h: f64) -> f64 {
    4.0 - 5.0 * (std::f64::consts::TAU * (h - 4.0) / 24.0).cos()
}

fn solar(h: f64) -> f64 {
    let hd = h.rem_euclid(24.0);
    if (8.0..16.0).contains(&hd) {
        400.0 * (std::f64::consts::PI * (hd - 8.0) / 8.0).sin()
    } else {
        0.0
    }
}

fn main() {
    let p = house();
    let d = Discrete::new(&p, 900.0).expect("valid model");
    // 72 h, a valve switching every 1–4 steps (deterministic pattern).
    let n = 288;
    let inputs: Vec<[f64; 3]> = (0..n)
        .map(|k| {
            let h = k as f64 * 0.25;
            let on = (k * 7 + k / 5) % 11 < 5;
            [outdoor(h), if on { 6000.0 } else { 0.0 }, solar(h)]
        })
        .collect();
    let ti = d
        .simulate([20.0, 15.0], &inputs)
        .iter()
        .enumerate()
        .map(|(k, x)| x[0] + 0.03 * ((k * 37 % 17) as f64 / 8.0 - 1.0))
        .collect();
    let data = Dataset {
        dt_s: 900.0,
        ti,
        inputs,
    };
    let guess = Params {
        c_i: 6.0e6,
        c_e: 2.5e7,
        r_ie: 1.0e-3,
        r_ea: 7.0e-3,
        r_ia: Some(0.025),
        a_w: 4.5,
    };
    let runs = 10;
    let t = Instant::now();
    let mut iters = 0;
    for _ in 0..runs {
        let r = fit(&data, &guess, &FitOptions::default()).expect("fit");
        iters = r.iterations;
    }
    let fit_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
    println!("fit, 72 h at 15 min (288 samples): {fit_ms:.2} ms ({iters} Nelder–Mead iterations)");

    let fc = Forecast {
        ta: (0..96).map(|k| outdoor(k as f64 * 0.25) - 4.0).collect(),
        isol: (0..96).map(|k| solar(k as f64 * 0.25)).collect(),
        price: (0..96)
            .map(|k| if (24..88).contains(&k) { 0.6468 } else { 0.146 })
            .collect(),
        gain_w: 300.0,
    };
    let runs = 50;
    for solver in [Solver::Clarabel, Solver::Banded] {
        let t = Instant::now();
        let mut last = None;
        for _ in 0..runs {
            let pl = plan_with(solver, &d, [19.6, 17.5], 0.0, &fc, &Settings::default())
                .expect("solved");
            last = Some(pl);
        }
        let solve_ms = t.elapsed().as_secs_f64() * 1000.0 / runs as f64;
        let pl = last.expect("ran");
        println!(
            "horizon solve, N = 96, {solver:?}: {solve_ms:.3} ms ({} interior-point iterations, objective {:.6} €, {})",
            pl.iterations, pl.objective_eur, pl.status
        );
    }
}
