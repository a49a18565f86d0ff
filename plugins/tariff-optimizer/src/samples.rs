//! Sample problems, for tests, benchmarks and examples.

use crate::problem::*;

/// 00:00 local, `steps` of `step_s`: Tempo-like HP/HC prices, a 4 kWp
/// PV bell, a water heater, a washing machine, an EV and a semi-continuous
/// deferrable load with min on/off.
pub fn house(steps: usize, step_s: u32) -> Problem {
    let per_h = 3600 / step_s as usize;
    let dt = step_s as f64 / 3600.0;
    let hour = |t: usize| t as f64 / per_h as f64;
    let import_price: Vec<f64> = (0..steps)
        .map(|t| {
            let h = hour(t) % 24.0;
            if !(6.0..22.0).contains(&h) {
                0.1568
            } else {
                0.2046
            }
        })
        .collect();
    let pv_w: Vec<f64> = (0..steps)
        .map(|t| {
            let h = hour(t) % 24.0 + 0.5 / per_h as f64;
            if (7.0..19.0).contains(&h) {
                4000.0 * 0.8 * (std::f64::consts::PI * (h - 7.0) / 12.0).sin().powi(2)
            } else {
                0.0
            }
        })
        .collect();
    let base_w = (0..steps)
        .map(|t| 350.0 + 150.0 * ((t % 7) as f64 / 7.0))
        .collect();
    let at = |h: f64| (h * per_h as f64).round() as usize;
    // Every day: ready at 06:30 and 19:30, a shower's draw at 07:00 and
    // 20:00.
    let mut draw_wh = vec![0.0; steps];
    let mut ready = Vec::new();
    let days = (steps as f64 / (24.0 * per_h as f64)).ceil() as usize;
    for day in 0..days {
        let h0 = 24.0 * day as f64;
        for (r, dr) in [(6.5, 7.0), (19.5, 20.0)] {
            if at(h0 + r) <= steps {
                ready.push((at(h0 + r), 50.0));
            }
            if at(h0 + dr) < steps {
                draw_wh[at(h0 + dr)] = 3500.0;
            }
        }
    }
    let wm_profile: Vec<f64> = {
        let q = [2000.0, 2000.0, 300.0, 300.0, 600.0, 100.0];
        if step_s == 900 {
            q.to_vec()
        } else {
            vec![2000.0, 300.0, 350.0]
        }
    };
    let end = steps;
    let ev_e = at(18.0).min(end - at(4.0));
    Problem {
        start_ms: 1_767_225_600_000,
        step_s,
        steps,
        import_price,
        export_price: vec![0.04; steps],
        pv_w,
        base_w,
        import_limit_w: 9000.0,
        export_limit_w: None,
        objective: Objective::Cost,
        loads: vec![
            Load {
                id: "water_heater".into(),
                earliest: 0,
                deadline: end,
                kind: LoadKind::Thermal(Thermal {
                    nominal_w: 2400.0,
                    temp_c: 47.0,
                    capacity_wh_per_k: 200.0 * 1.163,
                    loss_w_per_k: 1.8,
                    ambient_c: 18.0,
                    max_c: 65.0,
                    ready,
                    draw_wh,
                }),
            },
            Load {
                id: "washing_machine".into(),
                earliest: at(8.0),
                deadline: at(22.0).min(end),
                kind: LoadKind::Sequence(Sequence {
                    profile_w: wm_profile,
                    started: None,
                }),
            },
            Load {
                id: "ev".into(),
                earliest: ev_e,
                deadline: end,
                kind: LoadKind::Battery(Battery {
                    max_w: 3700.0,
                    energy_wh: 14000.0,
                    semi_continuous: true,
                }),
            },
            Load {
                id: "pool_pump".into(),
                earliest: 0,
                deadline: end,
                kind: LoadKind::Deferrable(Deferrable {
                    nominal_w: 1000.0,
                    energy_wh: 1000.0 * dt * (per_h * 3) as f64,
                    semi_continuous: true,
                    single_start: false,
                    min_on_steps: per_h,
                    min_off_steps: per_h,
                    max_starts: Some(2),
                    running_steps: 0,
                }),
            },
        ],
    }
}
