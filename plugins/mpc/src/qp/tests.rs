//! Tests of the horizon problem. The checks recompute everything from the
//! model (`Discrete::step`) and the problem statement, not from the matrices
//! the solver saw, except the KKT certificate, which by definition is about
//! those matrices.

use super::*;
use crate::model::house;

const QUARTER: f64 = 900.0;

fn model(dt: f64) -> Discrete {
    Discrete::new(&house(), dt).unwrap()
}

/// EDF Tempo red day: HC 0.146 €/kWh 22:00–06:00, HP 0.6468 €/kWh
/// 06:00–22:00; `start_h` the clock hour of step 0.
fn tempo(n: usize, start_h: f64) -> Vec<f64> {
    (0..n)
        .map(|k| {
            let h = (start_h + k as f64 * 0.25).rem_euclid(24.0);
            if !(6.0..22.0).contains(&h) {
                0.146
            } else {
                0.6468
            }
        })
        .collect()
}

fn cold_day(n: usize, start_h: f64) -> Forecast {
    Forecast {
        ta: (0..n)
            .map(|k| crate::fit::tests::outdoor(start_h + k as f64 * 0.25) - 4.0)
            .collect(),
        isol: vec![0.0; n],
        price: tempo(n, start_h),
        gain_w: -150.0,
    }
}

/// The problem's objective as a function of the valve plan alone (slacks at
/// their optimal values `max(0, violation)`), from the model and the
/// problem statement; `None` if `u` breaks a hard constraint.
fn reduced_objective(
    d: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
    u: &[f64],
) -> Option<f64> {
    let dt_h = d.dt_s / 3600.0;
    let mut x = x0;
    let mut prev = u_prev;
    let mut f = 0.0;
    for (k, &uk) in u.iter().enumerate() {
        if uk < s.u_min - 1e-9 || uk > s.u_max + 1e-9 || (uk - prev).abs() > s.ramp + 1e-9 {
            return None;
        }
        x = d.step(x, [fc.ta[k], uk * s.heater_w + fc.gain_w, fc.isol[k]]);
        f += fc.price[k] * s.heater_w / 1000.0 * uk * dt_h;
        f += s.under_eur_per_kh * (s.comfort_low_c - x[0]).max(0.0) * dt_h;
        f += s.over_eur_per_kh * (x[0] - s.comfort_high_c).max(0.0) * dt_h;
        f += s.smooth_eur * (uk - prev).powi(2);
        prev = uk;
    }
    if let Some(tc) = s.terminal_c {
        f += s.terminal_eur_per_k * (tc - x[0]).max(0.0);
    }
    Some(f)
}

/// (1a) Independent check on a tiny LP: exhaustive search over the valve
/// plans of a 3-step, 1-hour-step instance (a 0.02 grid, then a 0.001 grid
/// around the best point, then 0.0001; the reduced objective is convex, so
/// the refined grid minimum is within a grid step of the true minimum). Clarabel's plan
/// must be at least as good as every grid point and its own objective must
/// equal the independently computed one.
#[test]
fn tiny_lp_matches_exhaustive_search() {
    let d = model(3600.0);
    let x0 = [19.3, 17.0];
    let fc = Forecast {
        ta: vec![0.0, -2.0, -3.0],
        isol: vec![0.0, 50.0, 0.0],
        price: vec![0.6468, 0.146, 0.6468],
        // A constant disturbance (internal gains) enters the dynamics.
        gain_w: 250.0,
    };
    let s = Settings {
        smooth_eur: 0.0, // a pure LP
        ramp: 0.6,
        terminal_c: Some(20.0),
        ..Settings::default()
    };
    let u_prev = 0.2;
    let p = plan(&d, x0, u_prev, &fc, &s).expect("solved");
    let f_clarabel = reduced_objective(&d, x0, u_prev, &fc, &s, &p.u).expect("feasible");
    assert!(
        (f_clarabel - p.objective_eur).abs() < 1e-6,
        "{f_clarabel} vs {}",
        p.objective_eur
    );

    let mut best = (f64::INFINITY, [0.0; 3]);
    let search = |lo: [f64; 3], step: f64, count: usize, best: &mut (f64, [f64; 3])| {
        for i in 0..=count {
            for j in 0..=count {
                for k in 0..=count {
                    let u = [
                        (lo[0] + i as f64 * step).clamp(0.0, 1.0),
                        (lo[1] + j as f64 * step).clamp(0.0, 1.0),
                        (lo[2] + k as f64 * step).clamp(0.0, 1.0),
                    ];
                    if let Some(f) = reduced_objective(&d, x0, u_prev, &fc, &s, &u)
                        && f < best.0
                    {
                        *best = (f, u);
                    }
                }
            }
        }
    };
    search([0.0; 3], 0.02, 50, &mut best);
    let c = best.1;
    search(
        [c[0] - 0.02, c[1] - 0.02, c[2] - 0.02],
        0.001,
        40,
        &mut best,
    );
    let c = best.1;
    search(
        [c[0] - 0.001, c[1] - 0.001, c[2] - 0.001],
        0.0001,
        20,
        &mut best,
    );
    eprintln!(
        "clarabel {:?} {f_clarabel}; grid {:?} {}",
        p.u, best.1, best.0
    );
    assert!(f_clarabel <= best.0 + 1e-7, "a grid point beats clarabel");
    assert!(
        best.0 - f_clarabel < 3e-4,
        "grid far above clarabel: the check is broken"
    );
    // The instance is not trivial: it heats, and not at full power throughout.
    assert!(p.u.iter().sum::<f64>() > 0.1 && p.u.iter().any(|&u| u < 0.99));
}

/// (1b) KKT certificate (Boyd & Vandenberghe §5.5.3) from clarabel's primal
/// and dual: primal feasibility, dual feasibility (`z ≥ 0` on the
/// inequalities), stationarity `Px + q + Aᵀz = 0`, complementary slackness
/// `sᵢ zᵢ = 0` and a zero duality gap `xᵀPx + qᵀx + bᵀz = 0`.
#[test]
fn kkt_conditions_hold() {
    let d = model(QUARTER);
    let n = 24;
    let fc = cold_day(n, 20.0);
    let s = Settings {
        ramp: 0.3,
        ..Settings::default()
    };
    let mx = build(&d, [19.4, 17.5], 0.5, &fc, &s).unwrap();
    let raw = solve_matrices(&mx, 100).unwrap();
    assert_eq!(raw.status, SolverStatus::Solved);
    let (x, z, sl) = (&raw.x, &raw.z, &raw.s);
    let m = mx.b.len();
    assert_eq!((z.len(), sl.len()), (m, m));
    // A x and Aᵀ z from the CSC storage.
    let mut ax = vec![0.0; m];
    let mut atz = vec![0.0; x.len()];
    for col in 0..mx.a.n {
        for idx in mx.a.colptr[col]..mx.a.colptr[col + 1] {
            let (row, v) = (mx.a.rowval[idx], mx.a.nzval[idx]);
            ax[row] += v * x[col];
            atz[col] += v * z[row];
        }
    }
    let mut px = vec![0.0; x.len()];
    for col in 0..mx.p.n {
        for idx in mx.p.colptr[col]..mx.p.colptr[col + 1] {
            let (row, v) = (mx.p.rowval[idx], mx.p.nzval[idx]);
            px[row] += v * x[col];
            if row != col {
                px[col] += v * x[row];
            }
        }
    }
    for i in 0..m {
        let slack = mx.b[i] - ax[i];
        if i < mx.equalities {
            assert!(slack.abs() < 1e-6, "equality {i}: {slack}");
        } else {
            assert!(slack > -1e-6, "inequality {i} violated by {slack}");
            assert!(z[i] > -1e-9, "dual {i} negative: {}", z[i]);
            assert!(
                (slack * z[i]).abs() < 1e-6,
                "complementarity {i}: {}",
                slack * z[i]
            );
        }
    }
    for j in 0..x.len() {
        let r = px[j] + mx.q[j] + atz[j];
        assert!(r.abs() < 1e-6, "stationarity {j}: {r}");
    }
    let xpx: f64 = x.iter().zip(&px).map(|(a, b)| a * b).sum();
    let qx: f64 = x.iter().zip(&mx.q).map(|(a, b)| a * b).sum();
    let bz: f64 = mx.b.iter().zip(z).map(|(a, b)| a * b).sum();
    let gap = xpx + qx + bz;
    assert!(gap.abs() < 1e-6 * (1.0 + qx.abs()), "duality gap {gap}");
    // Some inequalities are active with a positive price: a real certificate.
    assert!(z[mx.equalities..].iter().any(|&v| v > 1e-3));
}

/// (2) Every constraint of a 96-step instance, checked on the raw solution
/// against the problem statement: bounds, ramps, dynamics (re-simulated),
/// slack signs and tightness, terminal slack.
#[test]
fn respects_every_constraint_over_24_hours() {
    let d = model(QUARTER);
    let n = 96;
    let mut fc = cold_day(n, 0.0);
    fc.isol = (0..n)
        .map(|k| crate::fit::tests::solar(k as f64 * 0.25))
        .collect();
    let s = Settings {
        u_min: 0.1,
        u_max: 0.9,
        ramp: 0.2,
        ..Settings::default()
    };
    let x0 = [18.6, 16.5];
    let u_prev = 1.0; // outside the bounds: clamped to 0.9 for the ramp
    let mx = build(&d, x0, u_prev, &fc, &s).unwrap();
    let raw = solve_matrices(&mx, 100).unwrap();
    assert!(
        matches!(raw.status, SolverStatus::Solved),
        "{:?}",
        raw.status
    );
    let l = mx.layout;
    let x = &raw.x;
    let tol = 1e-6;
    let mut prev = 0.9;
    let mut state = x0;
    for k in 0..n {
        let u = x[l.u(k)];
        assert!(u >= s.u_min - tol && u <= s.u_max + tol, "u[{k}] = {u}");
        assert!(
            (u - prev).abs() <= s.ramp + tol,
            "ramp at {k}: {prev} → {u}"
        );
        prev = u;
        state = d.step(state, [fc.ta[k], u * s.heater_w + fc.gain_w, fc.isol[k]]);
        assert!((x[l.ti(k)] - state[0]).abs() < tol, "Ti dynamics at {k}");
        assert!((x[l.te(k)] - state[1]).abs() < tol, "Te dynamics at {k}");
        let (under, over) = (x[l.s_under(k)], x[l.s_over(k)]);
        assert!(under >= -tol && over >= -tol, "slack sign at {k}");
        // Slacks are exactly the violation (positive penalties make them tight).
        let want_under = (s.comfort_low_c - state[0]).max(0.0);
        let want_over = (state[0] - s.comfort_high_c).max(0.0);
        assert!(
            (under - want_under).abs() < 1e-5,
            "s⁻[{k}] {under} vs {want_under}"
        );
        assert!(
            (over - want_over).abs() < 1e-5,
            "s⁺[{k}] {over} vs {want_over}"
        );
    }
    let st = x[l.s_terminal()];
    assert!(
        (st - (20.0 - state[0]).max(0.0)).abs() < 1e-5,
        "terminal slack {st}"
    );
    // It starts below the band: the first steps heat as fast as allowed.
    assert!(x[l.u(0)] > 0.85, "{}", x[l.u(0)]);
}

/// (3) Economic sanity on a Tempo red day: the plan puts more energy per
/// hour into the cheap hours (22–06) than into the expensive ones, and
/// pre-heats: the room is warmer at 06:00 than the band's floor requires.
#[test]
fn preheats_in_cheap_hours() {
    let d = model(QUARTER);
    let n = 96;
    let fc = cold_day(n, 0.0);
    let p = plan(&d, [19.5, 17.5], 0.0, &fc, &Settings::default()).unwrap();
    let (mut cheap, mut dear) = ((0.0, 0), (0.0, 0));
    for k in 0..n {
        if fc.price[k] < 0.2 {
            cheap = (cheap.0 + p.u[k], cheap.1 + 1);
        } else {
            dear = (dear.0 + p.u[k], dear.1 + 1);
        }
    }
    let (cheap, dear) = (cheap.0 / cheap.1 as f64, dear.0 / dear.1 as f64);
    eprintln!(
        "mean valve cheap {cheap:.3} expensive {dear:.3}; Ti@06 {:.2}",
        p.ti[23]
    );
    assert!(cheap > dear + 0.1, "cheap {cheap} vs expensive {dear}");
    assert!(
        p.ti[23] > 19.5,
        "no pre-heating: Ti at 06:00 = {}",
        p.ti[23]
    );
    // Comfort mostly kept. Not exactly: at 21:30 the plan lets the room dip
    // ≈0.5 K for one step rather than buy HP energy (0.5 K × 0.25 h × 2 €/(K·h)
    // = 0.25 € < the HP heat it saves): correct for these weights.
    let deficit_kh: f64 = p.ti.iter().map(|&t| (19.0 - t).max(0.0) * 0.25).sum();
    assert!(
        deficit_kh < 0.3,
        "{deficit_kh} K·h below the band: {:?}",
        p.ti
    );
    assert!(p.energy_cost_eur > 0.0 && p.energy_cost_eur <= p.objective_eur + 1e-9);
}

/// (4) Without the terminal condition the controller drains stored heat:
/// the final temperature ends lower than with it.
#[test]
fn terminal_condition_keeps_heat_at_the_end() {
    let d = model(QUARTER);
    let n = 96;
    let fc = cold_day(n, 6.0); // ends at 06:00, the end of the cheap night
    let with = plan(&d, [20.5, 18.0], 0.0, &fc, &Settings::default()).unwrap();
    let without = plan(
        &d,
        [20.5, 18.0],
        0.0,
        &fc,
        &Settings {
            terminal_c: None,
            ..Settings::default()
        },
    )
    .unwrap();
    let (tw, to) = (with.ti[n - 1], without.ti[n - 1]);
    eprintln!("final Ti with terminal {tw:.2}, without {to:.2}");
    assert!(tw > 19.9, "terminal condition not met: {tw}");
    assert!(tw > to + 0.5, "with {tw} vs without {to}");
    assert!(without.energy_cost_eur < with.energy_cost_eur);
}

#[test]
fn bad_input_and_solver_failure_are_errors() {
    let d = model(QUARTER);
    let mut fc = cold_day(8, 0.0);
    fc.price[3] = f64::NAN;
    let e = plan(&d, [20.0, 18.0], 0.0, &fc, &Settings::default()).unwrap_err();
    assert!(matches!(e, PlanError::BadInput(_)), "{e:?}");
    let e = plan(
        &d,
        [20.0, 18.0],
        0.0,
        &Forecast::default(),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::BadInput(_)), "{e:?}");
    let e = plan(
        &d,
        [f64::NAN, 18.0],
        0.0,
        &cold_day(8, 0.0),
        &Settings::default(),
    )
    .unwrap_err();
    assert!(matches!(e, PlanError::BadInput(_)), "{e:?}");
    // A real clarabel failure: one interior-point iteration is not enough.
    let s = Settings {
        max_iter: 1,
        ..Settings::default()
    };
    let e = plan(&d, [20.0, 18.0], 0.0, &cold_day(96, 0.0), &s).unwrap_err();
    assert_eq!(e, PlanError::Solver("MaxIterations".into()));
}

/// Issue 19: the banded interior point ([`ipm`], the plugin's solver) gives
/// the same plans as clarabel (the solver before it) on the red-day
/// scenario: an EDF Tempo red day 06:00 → 06:00 (the next day red too) with
/// the scenario's controller config (`examples/scenarios/house.toml`:
/// 6 kW, comfort 19–28 °C, terminal 20 °C, the default margin and ramp)
/// and the commissioning model of `benches/simulate.rs`, a cold day,
/// 96 receding 96-step horizons, the house in the loop driven by the
/// banded plans. Every tick: both solvers `Solved`, objectives within
/// 0.1 % (the bound; seen ≤ 1e-6 relative), the commanded first
/// move within 0.5 % of valve.
#[test]
fn banded_matches_clarabel_on_the_red_day() {
    let cfg: crate::config::Config = hearth_plugin_sdk::parse_config(serde_json::json!({
        "sensor": "sensor.house_temperature",
        "valve": "valve.house_heating",
        "heater_w": 6000.0,
        "comfort_low_c": 19.0,
        "comfort_high_c": 28.0,
        "terminal_c": 20.0,
    }))
    .unwrap();
    cfg.validate().unwrap();
    let s = cfg.qp_settings();
    let params = crate::model::Params {
        c_i: 1.36e6,
        c_e: 1.38e7,
        r_ie: 1.27e-3,
        r_ea: 4.94e-2,
        r_ia: Some(9.8e-3),
        a_w: 0.77,
    };
    let d = Discrete::new(&params, QUARTER).unwrap();
    let n = 96;
    let mut x = [19.3, 17.0];
    let mut u_prev = 0.0;
    let mut worst_rel: f64 = 0.0;
    for tick in 0..96 {
        let start_h = 6.0 + tick as f64 * 0.25;
        let fc = Forecast {
            ta: (0..n)
                .map(|k| crate::fit::tests::outdoor(start_h + k as f64 * 0.25) - 4.0)
                .collect(),
            isol: (0..n)
                .map(|k| crate::fit::tests::solar(start_h + k as f64 * 0.25))
                .collect(),
            price: tempo(n, start_h),
            gain_w: 150.0,
        };
        let b = plan_with(Solver::Banded, &d, x, u_prev, &fc, &s).unwrap();
        let c = plan_with(Solver::Clarabel, &d, x, u_prev, &fc, &s).unwrap();
        assert_eq!(b.status, "Solved", "tick {tick}");
        assert_eq!(c.status, "Solved", "tick {tick}");
        let rel = (b.objective_eur - c.objective_eur).abs() / c.objective_eur.abs().max(1e-9);
        worst_rel = worst_rel.max(rel);
        assert!(
            rel <= 1e-3,
            "tick {tick}: banded {} € vs clarabel {} €",
            b.objective_eur,
            c.objective_eur
        );
        assert!(
            (b.u[0] - c.u[0]).abs() <= 5e-3,
            "tick {tick}: first move {} vs {}",
            b.u[0],
            c.u[0]
        );
        // The banded plan is a feasible point of the same problem: its
        // objective recomputed from the model cannot beat clarabel's
        // optimum by more than the solvers' tolerance.
        let f = reduced_objective(&d, x, u_prev, &fc, &s, &b.u).expect("feasible");
        assert!(f >= c.objective_eur - 1e-6 * (1.0 + c.objective_eur.abs()));
        u_prev = b.u[0];
        x = d.step(x, [fc.ta[0], u_prev * s.heater_w + fc.gain_w, fc.isol[0]]);
    }
    eprintln!("worst relative objective difference over the red day: {worst_rel:.2e}");
}
