//! The optimizer core: the MILP against a brute force, every constraint on
//! every plan, started loads never moved, the fallback at the node limit,
//! and the LP/MPS files solved by GLPK.

use hearth_tariff_optimizer::check::violations;
use hearth_tariff_optimizer::model::{self, Spec};
use hearth_tariff_optimizer::problem::*;
use hearth_tariff_optimizer::samples::house;
use hearth_tariff_optimizer::{Plan, SolveConfig, Status, lp_file, solve};

/// A tiny deterministic generator (Knuth's MMIX LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    /// In [0, 1).
    fn f(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.f()
    }
    /// In [lo, hi] (inclusive).
    fn int(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
}

fn unlimited() -> SolveConfig {
    SolveConfig {
        node_limit: None,
        ..SolveConfig::default()
    }
}

fn deferrable(id: &str, e: usize, d: usize, def: Deferrable) -> Load {
    Load {
        id: id.into(),
        earliest: e,
        deadline: d,
        kind: LoadKind::Deferrable(def),
    }
}

/// A small random instance of semi-continuous, sequence and on/off
/// battery loads.
fn small_instance(rng: &mut Lcg) -> Problem {
    let steps = rng.int(6, 9);
    let step_s = if rng.chance(0.5) { 1800 } else { 3600 };
    let dt = step_s as f64 / 3600.0;
    let import_price: Vec<f64> = (0..steps).map(|_| rng.range(0.08, 0.40)).collect();
    let objective = match rng.int(0, 2) {
        0 => Objective::Cost,
        1 => Objective::Profit,
        _ => Objective::SelfConsumption,
    };
    // Sometimes an export price above the import price (the exclusivity
    // binaries), sometimes negative (curtailment).
    let export_price: Vec<f64> = (0..steps)
        .map(|t| {
            if rng.chance(0.15) {
                import_price[t] + rng.range(0.0, 0.1)
            } else if rng.chance(0.1) {
                -rng.range(0.0, 0.05)
            } else {
                rng.range(0.0, 0.1)
            }
        })
        .collect();
    let peak = rng.range(0.0, 5000.0);
    let pv_w: Vec<f64> = (0..steps)
        .map(|t| {
            let x = (t as f64 + 0.5) / steps as f64;
            (peak * (std::f64::consts::PI * x).sin() * rng.range(0.5, 1.0)).max(0.0)
        })
        .collect();
    let base_w: Vec<f64> = (0..steps).map(|_| rng.range(150.0, 900.0)).collect();
    let import_limit_w = if rng.chance(0.4) {
        rng.range(2500.0, 4000.0)
    } else {
        9000.0
    };
    let export_limit_w = rng.chance(0.3).then(|| rng.range(500.0, 3000.0));
    let nloads = rng.int(2, 3);
    let mut loads = Vec::new();
    for i in 0..nloads {
        let e = rng.int(0, steps / 3);
        let d = rng.int((e + 3).min(steps), steps);
        let w = d - e;
        let id = format!("load{i}");
        let load = match rng.int(0, 2) {
            0 => {
                let nominal_w = rng.range(500.0, 2500.0).round();
                let n = rng.int(1, w.min(3));
                let single_start = rng.chance(0.4);
                let running = e == 0 && rng.chance(0.2);
                deferrable(
                    &id,
                    e,
                    d,
                    Deferrable {
                        nominal_w,
                        energy_wh: nominal_w * dt * n as f64 - rng.range(0.0, 0.5) * nominal_w * dt,
                        semi_continuous: true,
                        single_start,
                        min_on_steps: rng.int(0, 2),
                        min_off_steps: rng.int(0, 3),
                        max_starts: rng.chance(0.3).then(|| rng.int(1, 2) as u32),
                        running_steps: if running { rng.int(1, 2) } else { 0 },
                    },
                )
            }
            1 => {
                let len = rng.int(1, w.min(4));
                let started = rng.chance(0.15).then(|| rng.int(0, len - 1));
                Load {
                    id,
                    earliest: e,
                    deadline: d,
                    kind: LoadKind::Sequence(Sequence {
                        profile_w: (0..len).map(|_| rng.range(100.0, 2200.0).round()).collect(),
                        started,
                    }),
                }
            }
            _ => {
                let max_w = rng.range(1000.0, 3700.0).round();
                let n = rng.int(1, w.min(4));
                Load {
                    id,
                    earliest: e,
                    deadline: d,
                    kind: LoadKind::Battery(Battery {
                        max_w,
                        energy_wh: max_w * dt * (n as f64 - 0.3),
                        semi_continuous: true,
                    }),
                }
            }
        };
        loads.push(load);
    }
    Problem {
        start_ms: 0,
        step_s,
        steps,
        import_price,
        export_price,
        pv_w,
        base_w,
        import_limit_w,
        export_limit_w,
        objective,
        loads,
    }
}

/// Every schedule of one load that the checker accepts on its own
/// (checked in a problem with that load only and no import limit).
fn load_candidates(p: &Problem, i: usize) -> Vec<Vec<f64>> {
    let l = &p.loads[i];
    let (e, d) = (l.earliest, l.deadline);
    let n = p.steps;
    let (spec, _) = model::spec(p, l);
    let mut cands: Vec<Vec<f64>> = match &spec {
        Spec::Fixed { power } => vec![power.clone()],
        Spec::Profile { profile } => (e..=d - profile.len())
            .map(|j| {
                let mut pw = vec![0.0; n];
                pw[j..j + profile.len()].copy_from_slice(profile);
                pw
            })
            .collect(),
        Spec::Steps { p_w, .. } => (0u32..1 << (d - e))
            .map(|mask| {
                let mut pw = vec![0.0; n];
                for (i, w) in pw[e..d].iter_mut().enumerate() {
                    if mask >> i & 1 == 1 {
                        *w = *p_w;
                    }
                }
                pw
            })
            .collect(),
        other => panic!("no brute force for {other:?}"),
    };
    let mut alone = p.clone();
    alone.loads = vec![l.clone()];
    alone.import_limit_w = 1e12;
    cands.retain(|pw| {
        let plan = Plan::from_powers(
            &alone,
            Status::Rule,
            vec![pw.clone()],
            vec![None],
            0,
            vec![],
        );
        violations(&alone, &plan).is_empty()
    });
    cands
}

/// The best grid exchange of one step, found independently of the crate:
/// given the PV used `u`, importing and exporting at once never pays
/// (where the export price is below the import price) or is forbidden, so
/// import = max(net, 0), export = max(−net, 0); the cost is piecewise
/// linear in `u`, minimised at one of its breakpoints.
fn bf_step(p: &Problem, t: usize, load: f64) -> Option<f64> {
    let k = p.dt_h() / 1000.0;
    let (ci, ce) = match p.objective {
        Objective::Cost => (p.import_price[t] * k, 0.0),
        Objective::Profit => (p.import_price[t] * k, p.export_price[t] * k),
        Objective::SelfConsumption => ((1.0 + 1e-3 * p.import_price[t]) * k, 0.0),
    };
    let pv = p.pv_w[t].max(0.0);
    let curtail = pv > 0.0
        && (p.export_limit_w.is_some()
            || (p.objective == Objective::Profit && p.export_price[t] < 0.0));
    let need = p.base_w[t] + load;
    let xcap = p.export_limit_w.map_or(pv, |x| x.min(pv));
    let cap = p.import_limit_w; // no started load lifts it in these checks
    let us: Vec<f64> = if curtail {
        vec![0.0, pv, need, need - cap, need + xcap]
            .into_iter()
            .map(|u: f64| u.clamp(0.0, pv))
            .collect()
    } else {
        vec![pv]
    };
    let mut best: Option<f64> = None;
    for u in us {
        let net = need - u;
        let (imp, exp) = (net.max(0.0), (-net).max(0.0));
        if imp > cap + 1e-9 || exp > xcap + 1e-9 {
            continue;
        }
        let c = ci * imp - ce * exp;
        best = Some(best.map_or(c, |b: f64| b.min(c)));
    }
    best
}

/// The brute-force optimum: every combination of every load's feasible
/// schedules. `None`: no feasible combination.
fn brute_force(p: &Problem) -> Option<f64> {
    let cands: Vec<Vec<Vec<f64>>> = (0..p.loads.len()).map(|i| load_candidates(p, i)).collect();
    if cands.iter().any(|c| c.is_empty()) {
        return None;
    }
    let mut best: Option<f64> = None;
    let mut idx = vec![0usize; cands.len()];
    loop {
        let mut total = 0.0;
        let mut ok = true;
        for t in 0..p.steps {
            let load: f64 = (0..cands.len()).map(|i| cands[i][idx[i]][t]).sum();
            match bf_step(p, t, load) {
                Some(c) => total += c,
                None => {
                    ok = false;
                    break;
                }
            }
        }
        if ok {
            best = Some(best.map_or(total, |b: f64| b.min(total)));
        }
        // Next combination.
        let mut k = 0;
        loop {
            if k == idx.len() {
                return best;
            }
            idx[k] += 1;
            if idx[k] < cands[k].len() {
                break;
            }
            idx[k] = 0;
            k += 1;
        }
    }
}

#[test]
fn milp_equals_brute_force_on_small_instances() {
    let mut rng = Lcg(20261207);
    let mut solved = 0;
    let mut infeasible = 0;
    let mut nodes = 0;
    let mut fallbacks = std::collections::BTreeMap::new();
    for case in 0..60 {
        let p = small_instance(&mut rng);
        p.check().unwrap();
        let bf = brute_force(&p);
        let plan = solve::plan(&p, &unlimited());
        match bf {
            None => {
                assert!(
                    matches!(plan.status, Status::Infeasible { .. }),
                    "case {case}: brute force finds no schedule, plan {:?}\n{p:?}",
                    plan.status
                );
                infeasible += 1;
            }
            Some(bf) => {
                assert_eq!(plan.status, Status::Optimal, "case {case}: {p:?}\n{plan:?}");
                let ours = plan.solver_objective.unwrap();
                let tol = 1e-9 * bf.abs().max(1.0);
                assert!(
                    (ours - bf).abs() <= tol,
                    "case {case}: MILP {ours} vs brute force {bf}\n{p:?}\n{plan:?}"
                );
                assert!(
                    (plan.objective - bf).abs() <= tol,
                    "case {case}: plan {} vs brute force {bf}",
                    plan.objective
                );
                let v = violations(&p, &plan);
                assert!(v.is_empty(), "case {case}: {v:?}\n{p:?}\n{plan:?}");
                // Cut at one node, the fallback chain still gives a plan
                // that holds, never better than the optimum.
                let cut = solve::plan(
                    &p,
                    &SolveConfig {
                        node_limit: Some(1),
                        ..SolveConfig::default()
                    },
                );
                assert!(cut.objective >= bf - tol, "case {case}: {cut:?}");
                if cut.status != Status::Rule {
                    let v = violations(&p, &cut);
                    assert!(v.is_empty(), "case {case} at 1 node: {v:?}\n{cut:?}");
                }
                *fallbacks.entry(cut.status.name()).or_insert(0) += 1;
                solved += 1;
                nodes += plan.nodes;
            }
        }
    }
    eprintln!(
        "brute force: {solved} optimal, {infeasible} infeasible, {nodes} nodes in all; at 1 node: {fallbacks:?}"
    );
    assert!(solved >= 50, "only {solved} feasible instances");
}

#[test]
fn every_constraint_holds_on_house_plans() {
    // The default tank (any share of a step) on 24 h x 30 min, 24 h x
    // 15 min and 48 h x 30 min; the strictly on/off element on 24 h.
    for (steps, step_s, on_off) in [
        (48, 1800, false),
        (96, 900, false),
        (96, 1800, false),
        (24, 1800, false),
        (48, 1800, true),
        (24, 1800, true),
    ] {
        let p = house(steps, step_s);
        let cfg = SolveConfig {
            model: model::ModelOptions {
                thermal_on_off: on_off,
                ..Default::default()
            },
            ..SolveConfig::default()
        };
        let plan = solve::plan(&p, &cfg);
        let v = violations(&p, &plan);
        assert!(v.is_empty(), "{steps}x{step_s}: {v:?}");
        if on_off {
            // Whole steps only.
            assert!(
                plan.loads[0]
                    .power_w
                    .iter()
                    .all(|&w| w == 0.0 || w == 2400.0)
            );
        }
        eprintln!(
            "{steps}x{step_s}s on/off {on_off}: {} objective {:.4} nodes {} warnings {:?}",
            plan.status.name(),
            plan.objective,
            plan.nodes,
            plan.warnings
        );
        assert!(
            matches!(plan.status, Status::Optimal | Status::Feasible { .. }),
            "{:?}",
            plan.status
        );
        // The rule plan of the same problem also holds every constraint,
        // and costs at least as much.
        let rule = hearth_tariff_optimizer::rule::plan(&p);
        let v = violations(&p, &rule);
        assert!(v.is_empty(), "rule {steps}x{step_s}: {v:?}");
        if plan.status == Status::Optimal {
            assert!(rule.objective >= plan.objective - 1e-9);
        }
    }
}

/// The house with a continuous EV charger and a continuous pool pump
/// that keeps its min on/off and max starts.
fn continuous_house(steps: usize, step_s: u32) -> Problem {
    let mut p = house(steps, step_s);
    if let LoadKind::Battery(b) = &mut p.loads[2].kind {
        b.semi_continuous = false;
        b.energy_wh = 13_333.0;
    }
    if let LoadKind::Deferrable(d) = &mut p.loads[3].kind {
        d.semi_continuous = false;
        d.energy_wh = 2_750.0;
    }
    p
}

#[test]
fn continuous_loads_hold_every_constraint() {
    for (steps, step_s) in [(48, 1800), (96, 900)] {
        let p = continuous_house(steps, step_s);
        let plan = solve::plan(&p, &SolveConfig::default());
        assert_eq!(plan.status, Status::Optimal, "{:?}", plan.warnings);
        let v = violations(&p, &plan);
        assert!(v.is_empty(), "{steps}x{step_s}: {v:?}");
        let ev: f64 = plan.loads[2].power_w.iter().sum::<f64>() * p.dt_h();
        assert!((ev - 13_333.0).abs() < 1e-3, "{ev}");
        // At most two runs of the pump, each at least min_on long.
        let on: Vec<bool> = plan.loads[3].power_w.iter().map(|&w| w > 1e-3).collect();
        let starts = (0..on.len())
            .filter(|&t| on[t] && (t == 0 || !on[t - 1]))
            .count();
        assert!((1..=2).contains(&starts), "{starts} starts");
        let rule = hearth_tariff_optimizer::rule::plan(&p);
        assert!(violations(&p, &rule).is_empty());
        assert!(rule.objective >= plan.objective - 1e-9);
    }
}

#[test]
fn what_the_problem_makes_impossible_is_reported() {
    let mut p = house(48, 1800);
    // A programme longer than its window, a tank that cannot be warm in
    // time (cold now, ready in one step).
    p.loads[1].deadline = p.loads[1].earliest + 2;
    if let LoadKind::Thermal(th) = &mut p.loads[0].kind {
        th.temp_c = 20.0;
        th.ready.insert(0, (1, 50.0));
    }
    let plan = solve::plan(&p, &SolveConfig::default());
    assert!(
        matches!(plan.status, Status::Optimal | Status::Feasible { .. }),
        "{:?}",
        plan.status
    );
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("washing_machine") && w.contains("infeasible window"))
    );
    assert!(plan.warnings.iter().any(|w| w.contains("water_heater")));
    assert!(plan.loads[1].power_w.iter().all(|&w| w == 0.0));
    // The tank heats from now, as much as it can.
    assert_eq!(plan.loads[0].power_w[0], 2400.0);
    assert!(
        violations(&p, &plan).is_empty(),
        "{:?}",
        violations(&p, &plan)
    );
    // An import limit below what the machines need at once, every step:
    // infeasible, and the plan says so with the rule plan's schedule.
    let mut q = house(24, 1800);
    q.import_limit_w = 2100.0;
    let plan = solve::plan(&q, &SolveConfig::default());
    assert!(
        matches!(plan.status, Status::Infeasible { .. }),
        "{:?}",
        plan.status
    );
    assert_eq!(plan.loads.len(), 4);
    // A tank the import limit keeps cold (the hard ready temperatures
    // are infeasible): planned again with soft ones, heated as the limit
    // allows.
    let mut q = house(24, 1800);
    q.loads.truncate(1);
    q.import_limit_w = 520.0;
    let plan = solve::plan(&q, &SolveConfig::default());
    assert_eq!(plan.status, Status::Optimal, "{:?}", plan.warnings);
    assert!(plan.warnings[0].contains("soft"), "{:?}", plan.warnings);
    assert!(!plan.shortfalls(&q).is_empty());
    assert!(plan.loads[0].power_w[0] > 0.0);
    assert!(violations(&q, &plan).iter().all(|v| !v.contains("import")));
    // A malformed problem never panics.
    let mut r = house(24, 1800);
    r.pv_w.pop();
    let plan = solve::plan(&r, &SolveConfig::default());
    assert!(matches!(plan.status, Status::Infeasible { .. }));
}

#[test]
fn checker_catches_broken_plans() {
    let p = house(48, 1800);
    let plan = solve::plan(&p, &SolveConfig::default());
    assert!(violations(&p, &plan).is_empty());
    // Split the washing machine.
    let mut bad = plan.clone();
    let wm = &mut bad.loads[1].power_w;
    let s = wm.iter().position(|&w| w > 0.0).unwrap();
    wm.swap(s + 1, s + 2);
    let bad = Plan::from_powers(
        &p,
        Status::Rule,
        bad.loads.iter().map(|l| l.power_w.clone()).collect(),
        vec![None; 4],
        0,
        vec![],
    );
    assert!(
        violations(&p, &bad)
            .iter()
            .any(|v| v.contains("washing_machine"))
    );
    // The EV one step short.
    let mut powers: Vec<Vec<f64>> = plan.loads.iter().map(|l| l.power_w.clone()).collect();
    let t = powers[2].iter().position(|&w| w > 0.0).unwrap();
    powers[2][t] = 0.0;
    let bad = Plan::from_powers(&p, Status::Rule, powers, vec![None; 4], 0, vec![]);
    assert!(violations(&p, &bad).iter().any(|v| v.contains("`ev`")));
    // Everything at once over the import limit.
    let mut q = p.clone();
    q.import_limit_w = 3000.0;
    let powers: Vec<Vec<f64>> = plan.loads.iter().map(|l| l.power_w.clone()).collect();
    let bad = Plan::from_powers(&q, Status::Rule, powers, vec![None; 4], 0, vec![]);
    let worst = (0..q.steps).map(|t| bad.import_w[t]).fold(0.0, f64::max);
    if worst > 3000.0 {
        assert!(
            violations(&q, &bad)
                .iter()
                .any(|v| v.contains("import limit"))
        );
    }
    // The water heater never on: too cold at 06:30.
    let mut powers: Vec<Vec<f64>> = plan.loads.iter().map(|l| l.power_w.clone()).collect();
    powers[0] = vec![0.0; p.steps];
    let bad = Plan::from_powers(&p, Status::Rule, powers, vec![None; 4], 0, vec![]);
    assert!(
        violations(&p, &bad)
            .iter()
            .any(|v| v.contains("water_heater"))
    );
}

/// The problem `k` steps later, prices replaced by `price`.
fn advance(p: &Problem, k: usize) -> Problem {
    let mut q = p.clone();
    q.start_ms = p.step_ms(k);
    q.steps = p.steps - k;
    for s in [
        &mut q.import_price,
        &mut q.export_price,
        &mut q.pv_w,
        &mut q.base_w,
    ] {
        s.drain(..k);
    }
    for l in &mut q.loads {
        l.earliest = l.earliest.saturating_sub(k);
        l.deadline -= k;
    }
    q
}

#[test]
fn a_started_load_is_never_moved() {
    let steps = 24;
    let mut p = Problem {
        start_ms: 0,
        step_s: 1800,
        steps,
        import_price: (0..steps).map(|t| 0.30 - 0.004 * t as f64).collect(),
        export_price: vec![0.0; steps],
        pv_w: vec![0.0; steps],
        base_w: vec![300.0; steps],
        import_limit_w: 9000.0,
        export_limit_w: None,
        objective: Objective::Cost,
        loads: vec![
            Load {
                id: "washing_machine".into(),
                earliest: 0,
                deadline: 20,
                kind: LoadKind::Sequence(Sequence {
                    profile_w: vec![2000.0, 300.0, 350.0, 100.0],
                    started: None,
                }),
            },
            deferrable(
                "dishwasher",
                0,
                20,
                Deferrable {
                    nominal_w: 1200.0,
                    energy_wh: 1800.0,
                    semi_continuous: true,
                    single_start: true,
                    min_on_steps: 0,
                    min_off_steps: 0,
                    max_starts: None,
                    running_steps: 0,
                },
            ),
        ],
    };
    // Steps 3..7 cheap, cheapest first: both start at 3.
    for t in 0..steps {
        p.import_price[t] = if (3..7).contains(&t) {
            0.10 + 0.001 * (t - 3) as f64
        } else {
            0.30
        };
    }
    let first = solve::plan(&p, &unlimited());
    assert_eq!(first.status, Status::Optimal);
    assert_eq!(first.loads[0].start, Some(3));
    assert_eq!(first.loads[1].start, Some(3));
    // Four steps later both are running (the machine on its 2nd step of
    // four, the dishwasher 1 step done of 3); prices now favour a start
    // at the end of the window.
    let k = 4;
    let mut q = advance(&p, k);
    for (t, price) in q.import_price.iter_mut().enumerate() {
        *price = if t >= 12 { 0.01 } else { 0.50 };
    }
    if let LoadKind::Sequence(s) = &mut q.loads[0].kind {
        s.started = Some(1);
    }
    if let LoadKind::Deferrable(d) = &mut q.loads[1].kind {
        d.running_steps = 1;
        d.energy_wh = 1800.0 - 1200.0 * 0.5;
    }
    let second = solve::plan(&q, &unlimited());
    assert!(violations(&q, &second).is_empty());
    for (i, l) in second.loads.iter().enumerate() {
        let before = &first.loads[i].power_w[k..];
        assert_eq!(
            l.power_w, before,
            "load {} moved: {:?} then {:?}",
            l.id, before, l.power_w
        );
        let on: Vec<usize> = (0..q.steps).filter(|&t| l.power_w[t] > 0.0).collect();
        assert_eq!(on.first(), Some(&0), "{} does not continue now", l.id);
        assert_eq!(on.last().unwrap() + 1 - on[0], on.len(), "{} split", l.id);
    }
    // The checker refuses a plan that moves them.
    let mut moved: Vec<Vec<f64>> = second.loads.iter().map(|l| l.power_w.clone()).collect();
    moved[0].rotate_right(12);
    let bad = Plan::from_powers(&q, Status::Rule, moved, vec![None; 2], 0, vec![]);
    assert!(!violations(&q, &bad).is_empty());
    // And every fallback keeps them: the rule plan too.
    let rule = hearth_tariff_optimizer::rule::plan(&q);
    for (i, l) in rule.loads.iter().enumerate() {
        assert_eq!(l.power_w, second.loads[i].power_w);
    }
}

#[test]
fn the_fallback_engages_at_the_node_limit() {
    let p = house(48, 1800);
    let full = solve::plan(&p, &unlimited());
    assert_eq!(full.status, Status::Optimal);
    assert!(
        full.nodes > 1,
        "the instance needs no branching: {}",
        full.nodes
    );
    let cut = solve::plan(
        &p,
        &SolveConfig {
            node_limit: Some(1),
            ..SolveConfig::default()
        },
    );
    eprintln!(
        "node limit 1: {:?}, warnings {:?}",
        cut.status, cut.warnings
    );
    assert_ne!(cut.status, Status::Optimal);
    assert!(cut.nodes <= 1);
    let v = violations(&p, &cut);
    assert!(v.is_empty(), "{v:?}");
    assert!(cut.objective >= full.objective - 1e-9);
}

#[test]
fn lp_file_is_well_formed() {
    let p = house(96, 900);
    let built = model::build(&p);
    let lp = lp_file::to_lp(&built.model);
    for line in lp.lines() {
        assert!(line.len() < 255, "{line}");
    }
    for v in &built.model.vars {
        assert!(model::valid_name(&v.name), "{}", v.name);
    }
    for r in &built.model.rows {
        assert!(model::valid_name(&r.name), "{}", r.name);
    }
    assert!(lp.contains("imp_t12"));
    assert!(lp.starts_with("\\ Hearth"));
    for s in ["Minimize", "Subject To", "Bounds", "Binary", "End"] {
        assert!(lp.lines().any(|l| l == s), "no {s}");
    }
    assert_eq!(built.model.offset, 0.0);
}

/// The 24-step instance with all four kinds and a binding import limit.
fn glpk_instance() -> Problem {
    let mut p = house(24, 1800);
    p.import_limit_w = 6000.0;
    p.objective = Objective::Profit;
    // An export price above the import price at noon (exclusivity).
    p.export_price[13] = 0.25;
    p.export_limit_w = Some(2500.0);
    p
}

fn glpk_objective(args: &[&str], file: &std::path::Path) -> Option<f64> {
    let out = std::env::temp_dir().join(format!(
        "hearth-glpk-{}-{}.txt",
        std::process::id(),
        file.file_name().unwrap().to_string_lossy()
    ));
    let status = std::process::Command::new("glpsol")
        .args(args)
        .arg(file)
        .arg("--tmlim")
        .arg("120")
        .arg("-o")
        .arg(&out)
        .output();
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!("glpsol is required in CI: {e}");
            }
            eprintln!("!!!!! glpsol not found ({e}): LP cross-check SKIPPED !!!!!");
            return None;
        }
    };
    assert!(
        status.status.success(),
        "glpsol failed: {}",
        String::from_utf8_lossy(&status.stdout)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    assert!(
        text.contains("INTEGER OPTIMAL"),
        "GLPK did not prove optimality:\n{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("Objective:"))
        .expect("no objective line");
    // "Objective:  obj = 1.234 (MINimum)"
    let v = line
        .split('=')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    Some(v.parse().unwrap())
}

#[test]
fn glpk_solves_the_exported_files_to_the_same_objective() {
    // The default model (the tank an LP) and the strictly on/off element.
    for on_off in [false, true] {
        let p = glpk_instance();
        let opts = model::ModelOptions {
            thermal_on_off: on_off,
            ..Default::default()
        };
        let built = model::build_with(&p, &opts);
        assert!(built.model.is_mip());
        let plan = solve::plan(
            &p,
            &SolveConfig {
                model: opts,
                ..unlimited()
            },
        );
        assert_eq!(plan.status, Status::Optimal, "{:?}", plan.warnings);
        assert!(violations(&p, &plan).is_empty());
        let ours = plan.solver_objective.unwrap();
        assert!((ours - plan.objective).abs() <= 1e-9 * ours.abs().max(1.0));
        let dir = std::env::temp_dir();
        let tag = format!("{}-{on_off}", std::process::id());
        let lp = dir.join(format!("hearth-plan-{tag}.lp"));
        let mps = dir.join(format!("hearth-plan-{tag}.mps"));
        std::fs::write(&lp, lp_file::to_lp(&built.model)).unwrap();
        std::fs::write(&mps, lp_file::to_mps(&built.model)).unwrap();
        for (args, file) in [(["--lp"], &lp), (["--freemps"], &mps)] {
            let Some(glpk) = glpk_objective(&args, file) else {
                return;
            };
            eprintln!("on/off {on_off} {args:?}: ours {ours}, glpk {glpk}");
            assert!(
                (ours - glpk).abs() <= 1e-3 * glpk.abs().max(1.0),
                "{args:?}: ours {ours} vs glpk {glpk}"
            );
        }
        let _ = std::fs::remove_file(&lp);
        let _ = std::fs::remove_file(&mps);
    }
}

/// A negative import price with PV under the cost objective: importing at
/// the cap and exporting the same on top would "earn" the import price;
/// the plan must do one or the other, never both.
#[test]
fn a_negative_import_price_never_imports_and_exports_at_once() {
    for objective in [
        Objective::Cost,
        Objective::Profit,
        Objective::SelfConsumption,
    ] {
        let p = Problem {
            start_ms: 0,
            step_s: 3600,
            steps: 1,
            import_price: vec![-0.05],
            export_price: vec![0.0],
            pv_w: vec![3000.0],
            base_w: vec![500.0],
            import_limit_w: 9000.0,
            export_limit_w: None,
            objective,
            loads: vec![],
        };
        p.check().unwrap();
        let plan = solve::plan(&p, &unlimited());
        let (imp, exp) = (plan.import_w[0], plan.export_w[0]);
        assert!(
            imp * exp < 1e-6,
            "{objective:?}: imports {imp} W and exports {exp} W at once"
        );
        // The exchange the plan values is the same one.
        let x = hearth_tariff_optimizer::plan::dispatch(&p, 0, 0.0, 9000.0, 3000.0);
        assert!(x.import_w * x.export_w < 1e-6, "{objective:?}: {x:?}");
        assert!(
            violations(&p, &plan).is_empty(),
            "{:?}",
            violations(&p, &plan)
        );
    }
}

/// A problem from outside (`hearth plan` reads the published one) with a
/// load number the model cannot take is refused, naming the load and the
/// field, before any LP is written.
#[test]
fn a_load_with_a_bad_number_is_refused_by_name() {
    type Edit = fn(&mut LoadKind);
    let cases: Vec<(usize, &str, Edit)> = vec![
        (0, "nominal_w", |k| {
            if let LoadKind::Thermal(t) = k {
                t.nominal_w = 0.0
            }
        }),
        (0, "capacity_wh_per_k", |k| {
            if let LoadKind::Thermal(t) = k {
                t.capacity_wh_per_k = f64::NAN
            }
        }),
        (0, "temp_c", |k| {
            if let LoadKind::Thermal(t) = k {
                t.temp_c = f64::INFINITY
            }
        }),
        (0, "draw_wh has 3 values", |k| {
            if let LoadKind::Thermal(t) = k {
                t.draw_wh = vec![0.0; 3]
            }
        }),
        (0, "draw_wh[5]", |k| {
            if let LoadKind::Thermal(t) = k {
                t.draw_wh[5] = f64::NAN
            }
        }),
        (0, "ready[0] step", |k| {
            if let LoadKind::Thermal(t) = k {
                t.ready.insert(0, (49, 50.0))
            }
        }),
        (1, "profile_w is empty", |k| {
            if let LoadKind::Sequence(s) = k {
                s.profile_w.clear()
            }
        }),
        (1, "profile_w[1]", |k| {
            if let LoadKind::Sequence(s) = k {
                s.profile_w[1] = f64::NEG_INFINITY
            }
        }),
        (2, "max_w", |k| {
            if let LoadKind::Battery(b) = k {
                b.max_w = -3700.0
            }
        }),
        (2, "energy_wh", |k| {
            if let LoadKind::Battery(b) = k {
                b.energy_wh = f64::NAN
            }
        }),
        (3, "nominal_w", |k| {
            if let LoadKind::Deferrable(d) = k {
                d.nominal_w = f64::INFINITY
            }
        }),
        (3, "min_on_steps", |k| {
            if let LoadKind::Deferrable(d) = k {
                d.min_on_steps = usize::MAX
            }
        }),
        (3, "min_off_steps", |k| {
            if let LoadKind::Deferrable(d) = k {
                d.min_off_steps = 49
            }
        }),
        (3, "running_steps", |k| {
            if let LoadKind::Deferrable(d) = k {
                d.running_steps = 1000
            }
        }),
    ];
    house(48, 1800).check().unwrap();
    for (i, field, edit) in cases {
        let mut p = house(48, 1800);
        edit(&mut p.loads[i].kind);
        let id = p.loads[i].id.clone();
        let e = p.check().expect_err(field);
        assert!(
            e.contains(&format!("load `{id}`")) && e.contains(field),
            "{field}: {e}"
        );
        // The solver refuses it too, and writes no model.
        let plan = solve::plan(&p, &SolveConfig::default());
        assert!(
            matches!(plan.status, Status::Infeasible { .. }),
            "{field}: {:?}",
            plan.status
        );
    }
}
