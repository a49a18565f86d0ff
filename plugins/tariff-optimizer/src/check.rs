//! Every constraint of the problem, checked on a plan, independently of
//! the solver: windows, energy delivered, single start and contiguity, min
//! on/off, max starts, sequences run whole from one start, the import and
//! export limits and the grid balance, the tank's thermostat and ready
//! temperatures, and started loads left exactly as they were.
//!
//! The problem is read the way the model reads it ([`crate::model::spec`]:
//! steps to run, energy capped to what the window holds, a programme that
//! cannot fit is not planned), so what the problem itself makes impossible
//! is a warning of the plan, not a violation. A tank below a ready
//! temperature is a violation only when a step before it could have heated
//! more (a tenth of the element) without breaking the thermostat or the
//! import limit.

use crate::model::{self, Runs, Spec};
use crate::plan::{ON_W, Plan};
use crate::problem::{LoadKind, Problem};

/// Absolute power tolerance, W.
const TOL_W: f64 = 1e-4;

/// What `plan` breaks, one line each (empty: it meets every constraint).
pub fn violations(p: &Problem, plan: &Plan) -> Vec<String> {
    let mut v = Vec::new();
    if let Err(e) = p.check() {
        return vec![format!("invalid problem: {e}")];
    }
    let n = p.steps;
    let dt = p.dt_h();
    if plan.loads.len() != p.loads.len()
        || plan.import_w.len() != n
        || plan.export_w.len() != n
        || plan.pv_used_w.len() != n
    {
        return vec!["the plan does not have the problem's shape".into()];
    }
    let cap = model::import_cap(p);
    let xcap = model::export_cap(p);
    let mut total = vec![0.0; n];
    for (l, lp) in p.loads.iter().zip(&plan.loads) {
        let id = &l.id;
        if lp.id != *id || lp.power_w.len() != n {
            v.push(format!(
                "load `{id}`: not the problem's load or wrong length"
            ));
            continue;
        }
        let pw = &lp.power_w;
        if let Some(t) = pw.iter().position(|w| !w.is_finite() || *w < -TOL_W) {
            v.push(format!("load `{id}`: power {} at step {t}", pw[t]));
            continue;
        }
        for (a, b) in total.iter_mut().zip(pw) {
            *a += b;
        }
        let (e, d) = (l.earliest, l.deadline);
        let outside = |v: &mut Vec<String>| {
            if let Some(t) = (0..n).find(|&t| (t < e || t >= d) && pw[t] > TOL_W) {
                v.push(format!(
                    "load `{id}`: draws {:.1} W at step {t}, outside its window {e}..{d}",
                    pw[t]
                ));
            }
        };
        let (spec, _) = model::spec(p, l);
        match &spec {
            Spec::Fixed { power } => {
                if let Some(t) = (0..n).find(|&t| (pw[t] - power[t]).abs() > TOL_W) {
                    v.push(format!(
                        "load `{id}`: started or off, must draw {:.1} W at step {t}, plan {:.1} W",
                        power[t], pw[t]
                    ));
                }
            }
            Spec::Profile { profile } => {
                outside(&mut v);
                let len = profile.len();
                let matches = |j: usize| {
                    (0..n).all(|t| {
                        let want = if t >= j && t < j + len {
                            profile[t - j]
                        } else {
                            0.0
                        };
                        (pw[t] - want).abs() <= TOL_W
                    })
                };
                let ok: Vec<usize> = (e..=d - len).filter(|&j| matches(j)).collect();
                if ok.is_empty() {
                    v.push(format!(
                        "load `{id}`: not one whole run of its programme starting in {e}..={}",
                        d - len
                    ));
                } else if let Some(s) = lp.start
                    && !ok.contains(&s)
                {
                    v.push(format!(
                        "load `{id}`: start {s} is not where its run begins"
                    ));
                }
            }
            Spec::Steps {
                p_w,
                n: k,
                block,
                runs,
            } => {
                outside(&mut v);
                if let Some(t) =
                    (0..n).find(|&t| pw[t].abs() > TOL_W && (pw[t] - p_w).abs() > TOL_W)
                {
                    v.push(format!(
                        "load `{id}`: draws {:.1} W at step {t}, neither 0 nor {p_w:.1} W",
                        pw[t]
                    ));
                }
                let on: Vec<bool> = pw.iter().map(|&w| w > ON_W).collect();
                let count = on.iter().filter(|&&o| o).count();
                if count != *k {
                    v.push(format!("load `{id}`: on {count} steps, must be {k}"));
                }
                if *block && run_list(&on).len() > 1 {
                    v.push(format!("load `{id}`: single start, but split"));
                }
                if let Some(r) = runs {
                    check_runs(&mut v, id, &on, r, e, d, n);
                }
            }
            Spec::Energy {
                p_w,
                energy_wh,
                runs,
            } => {
                outside(&mut v);
                if let Some(t) = (0..n).find(|&t| pw[t] > p_w + TOL_W) {
                    v.push(format!(
                        "load `{id}`: draws {:.1} W at step {t}, above {p_w:.1} W",
                        pw[t]
                    ));
                }
                let got: f64 = pw.iter().sum::<f64>() * dt;
                if (got - energy_wh).abs() > 1e-6 * energy_wh.max(1.0) + TOL_W {
                    v.push(format!(
                        "load `{id}`: delivers {got:.3} Wh, must be {energy_wh:.3} Wh"
                    ));
                }
                if let Some(r) = runs {
                    let pmin = model::min_on_w(*p_w, *energy_wh, d - e, dt);
                    let on: Vec<bool> = pw.iter().map(|&w| w > ON_W).collect();
                    if let Some(t) = (0..n).find(|&t| on[t] && pw[t] < pmin - TOL_W) {
                        v.push(format!(
                            "load `{id}`: on at {:.3} W at step {t}, below its least {pmin:.3} W",
                            pw[t]
                        ));
                    }
                    check_runs(&mut v, id, &on, r, e, d, n);
                }
            }
            Spec::Thermal => {
                let LoadKind::Thermal(th) = &l.kind else {
                    unreachable!()
                };
                outside(&mut v);
                if let Some(t) = (0..n).find(|&t| pw[t] > th.nominal_w + TOL_W) {
                    v.push(format!(
                        "load `{id}`: element at {:.1} W at step {t}, above {:.1} W",
                        pw[t], th.nominal_w
                    ));
                }
                let upper = model::tank_upper(p, th);
                let over = |pw: &[f64]| {
                    let temps = model::simulate_tank(p, th, pw);
                    (1..=n).find(|&k| temps[k] > upper[k - 1] + 1e-6)
                };
                let temps = model::simulate_tank(p, th, pw);
                if let Some(k) = over(pw) {
                    v.push(format!(
                        "load `{id}`: tank at {:.2} °C at step {k}, above its thermostat {:.2} °C",
                        temps[k],
                        upper[k - 1]
                    ));
                }
                if let Some(pred) = &lp.temperature_c
                    && (pred.len() != n + 1
                        || pred.iter().zip(&temps).any(|(a, b)| (a - b).abs() > 1e-6))
                {
                    v.push(format!(
                        "load `{id}`: predicted temperatures are not the tank's"
                    ));
                }
                for &(k, min_c) in &th.ready {
                    if k == 0 || k > n || temps[k] >= min_c - 1e-6 {
                        continue;
                    }
                    let mut trial = pw.clone();
                    // Could a step heat a little more (up to a tenth of
                    // the element, within the import limit) without
                    // breaking the thermostat?
                    let could = (e..d.min(k)).any(|t| {
                        let room = cap[t] - plan.import_w[t] + plan.export_w[t];
                        let extra = (0.1 * th.nominal_w).min(room).min(th.nominal_w - trial[t]);
                        if extra <= 1e-3 * th.nominal_w {
                            return false;
                        }
                        let was = trial[t];
                        trial[t] = was + extra;
                        let ok = over(&trial).is_none();
                        trial[t] = was;
                        ok
                    });
                    if could {
                        v.push(format!(
                            "load `{id}`: tank at {:.2} °C at step {k}, below {min_c:.2} °C, and it could heat more before",
                            temps[k]
                        ));
                    }
                }
            }
        }
    }
    // Grid.
    for t in 0..n {
        let (imp, exp, u) = (plan.import_w[t], plan.export_w[t], plan.pv_used_w[t]);
        let tol = 1e-6 * cap[t].max(1.0);
        if imp < -tol || imp > cap[t] + tol {
            v.push(format!(
                "step {t}: import {imp:.1} W outside 0..={:.1} W (import limit)",
                cap[t]
            ));
        }
        if exp < -tol || exp > xcap[t] + tol {
            v.push(format!(
                "step {t}: export {exp:.1} W outside 0..={:.1} W",
                xcap[t]
            ));
        }
        let pv = p.pv_w[t].max(0.0);
        let (ulo, uhi) = if model::curtailable(p, t) {
            (0.0, pv)
        } else {
            (pv, pv)
        };
        if u < ulo - tol || u > uhi + tol {
            v.push(format!(
                "step {t}: PV used {u:.1} W outside {ulo:.1}..={uhi:.1} W"
            ));
        }
        let bal = imp - exp + u - p.base_w[t] - total[t];
        if bal.abs() > tol + 1e-6 * total[t].abs() {
            v.push(format!("step {t}: the grid balance is off by {bal:.3} W"));
        }
        if model::exclusive(p, t) && imp > tol && exp > tol {
            v.push(format!("step {t}: imports and exports at once"));
        }
    }
    v
}

/// Maximal runs `[a, b)` of `on`.
fn run_list(on: &[bool]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut t = 0;
    while t < on.len() {
        if on[t] {
            let a = t;
            while t < on.len() && on[t] {
                t += 1;
            }
            out.push((a, t));
        } else {
            t += 1;
        }
    }
    out
}

fn check_runs(v: &mut Vec<String>, id: &str, on: &[bool], r: &Runs, e: usize, d: usize, n: usize) {
    let runs = run_list(on);
    let cont = |a: usize| r.prev_on && a == e;
    let starts = runs.iter().filter(|&&(a, _)| !cont(a)).count();
    if let Some(m) = r.max_starts
        && starts > m
    {
        v.push(format!("load `{id}`: {starts} starts, at most {m}"));
    }
    for &(a, b) in &runs {
        let len = b - a;
        if cont(a) {
            let need = r.min_on.saturating_sub(r.running_steps).min(d - e);
            if len < need {
                v.push(format!(
                    "load `{id}`: running {} steps, stops after {len} more, min on {}",
                    r.running_steps, r.min_on
                ));
            }
        } else if len < r.min_on && b != n {
            v.push(format!(
                "load `{id}`: a run of {len} steps at {a}, min on {}",
                r.min_on
            ));
        }
    }
    if r.prev_on && r.running_steps < r.min_on && !on[e] && d > e {
        v.push(format!(
            "load `{id}`: running {} steps, stopped, min on {}",
            r.running_steps, r.min_on
        ));
    }
    if r.min_off > 1 {
        let mut prev_end = if r.prev_on && !on.get(e).copied().unwrap_or(false) {
            Some(e)
        } else {
            None
        };
        for &(a, b) in &runs {
            if let Some(pe) = prev_end
                && a - pe < r.min_off
            {
                v.push(format!(
                    "load `{id}`: a pause of {} steps before {a}, min off {}",
                    a - pe,
                    r.min_off
                ));
            }
            prev_end = Some(b);
        }
    }
}
