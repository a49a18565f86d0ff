//! The planning problem as a solver-neutral mixed-integer linear program.
//!
//! [`build`] turns a [`Problem`] into a [`LinearModel`] (named variables
//! with bounds and a kind, named rows `Σ aᵢxᵢ (≤|≥|=) b`, an objective to
//! minimise) and the indices needed to read a plan back ([`Built`]). The
//! same model is solved by `microlp` ([`crate::solve`]) and written as a
//! CPLEX LP or MPS file ([`crate::lp_file`]), so an independent solver
//! checks exactly what the plugin solves.
//!
//! # Formulation (EMHASS-like, tight big-M = nominal power)
//!
//! Units: power W, energy Wh, `dt` = step length in hours, prices €/kWh.
//!
//! **Grid**, per step `t`:
//! - `imp_t ∈ [0, cap_t]`, `cap_t = max(import_limit_w, base_t + fixed_t − pv_t)`
//!   (the limit is lifted, with a warning, only where the base load and the
//!   loads that cannot move already exceed it; `fixed_t` is the power of
//!   started loads);
//! - `xp_t ∈ [0, min(export_limit_w, pv_t)]` (export; the name avoids a
//!   leading `e`, which the LP format reads as an exponent);
//! - `pvu_t ∈ [0, pv_t]`, PV used, only where PV may have to be curtailed
//!   (an export limit, or the profit objective with a negative export
//!   price); elsewhere all PV is used;
//! - balance `imp_t − xp_t + pvu_t − Σ load_t = base_t + fixed_t`
//!   (`pvu_t` replaced by the constant `pv_t` where it is not a variable);
//! - `gx_t` binary at steps where importing and exporting at once could
//!   pay ([`exclusive`]: the import and export cost coefficients sum below
//!   0, e.g. a negative import price under any objective, or the profit
//!   objective with an export price at least the import price):
//!   `imp_t ≤ cap_t·gx_t`, `xp_t + xu_t·gx_t ≤ xu_t`. Elsewhere the LP
//!   never does both.
//!
//! - import cuts where PV exceeds the base load by `S_t > 0`: with the
//!   power of on/off decisions `P_i·x_i` (`x_i` binary, at most one per
//!   load and step), `imp_t ≥ Σ_i (P_i − S_t)⁺·x_i` (valid: `imp_t ≥ Σ P_i·x_i − S_t`
//!   and `imp_t ≥ 0`, and `max(0, Σ P_i x_i − S) ≥ Σ (P_i − S)⁺ x_i` for
//!   binaries). Without them the LP relaxation soaks up the surplus with
//!   fractions of a 3.7 kW charger and branch and bound takes thousands of
//!   nodes; for one load per step this is the convex hull of its cost.
//!
//! **Objective** (minimised; no constant term, [`LinearModel::offset`] is 0):
//! - `cost`: `Σ price_t·imp_t·dt/1000` (€);
//! - `profit`: cost `− Σ export_price_t·xp_t·dt/1000` (€);
//! - `self-consumption`: `Σ (1 + 10⁻³·price_t)·imp_t·dt/1000`, imported kWh
//!   with the import cost (€) weighted 10⁻³ as a tie-break between plans
//!   that import the same energy (so the unit is kWh, not €);
//! - plus, for a thermal load, [`SHORTFALL_PER_K`] per kelvin the tank
//!   misses a ready temperature by (a soft constraint: a tank that cannot
//!   be warm in time is heated as much as possible, the plan stays
//!   feasible and the shortfall is reported).
//!
//! **Deferrable** load in window `[e, d)` (`W = d − e` steps), nominal `P`,
//! energy `E`:
//! - `E ≤ 0`: off. A continuous load delivers `min(E, P·W·dt)` (warning if
//!   less than `E`); a semi-continuous one runs exactly
//!   `N = ⌈E/(P·dt)⌉` steps at `P` (≥ E, less than one step over; capped at
//!   `W`, with a warning).
//! - running now (`running_steps > 0`, `e = 0`) and single start: its
//!   remaining steps are fixed on from step 0 (`N` steps at `P`; a
//!   continuous one `P` for `⌊E/(P·dt)⌋` steps and the rest in the next),
//!   never moved, never split: no variables.
//! - semi-continuous single start: start-position binaries `l_y_j`,
//!   `j ∈ [e, d − N]`, `Σ y = 1`, `p_t = P·Σ_{j ≤ t < j+N} y_j` (one block;
//!   the convex hull of a block's positions, tighter than on/start binaries).
//! - otherwise, if the load is continuous with no run constraint: `p_t ∈ [0, P]`,
//!   `Σ p_t·dt = E`.
//! - otherwise on binaries `on_t` (`t ∈ W`); semi-continuous: `p_t = P·on_t`,
//!   `Σ on = N`; continuous: `P/100·on_t ≤ p_t ≤ P·on_t`, `Σ p·dt = E`
//!   (a continuous load with run constraints draws at least 1 % of `P`
//!   while on, so "on" is visible in its power; less if `E` is tiny, see
//!   [`min_on_w`]). Run constraints (EMHASS
//!   forms, disaggregated), with `on_{e−1}` = 1 if it runs now and `e = 0`,
//!   else 0:
//!   - starts `s_t ≥ on_t − on_{t−1}`, `s_t ≤ on_t`, `s_t ≤ 1 − on_{t−1}`;
//!     `Σ s ≤ max_starts` (1 with single start);
//!   - min on `m` (`min(min_on_steps, N)` for a semi-continuous load):
//!     `on_τ ≥ s_t` for `τ ∈ [t, t + m)`; a run that cannot complete inside
//!     the window may not start, unless the window ends with the horizon
//!     (a run cut by the horizon's end is allowed). A load running now for
//!     `r < m` steps stays on for steps `[0, m − r)`;
//!   - min off `M > 1`: stops `f_t ≥ on_{t−1} − on_t`, `f_t ≤ on_{t−1}`,
//!     `f_t ≤ 1 − on_t`, `on_τ + f_t ≤ 1` for `τ ∈ (t, t + M)`. A pause
//!     that reaches the end of the window is not constrained (the load is
//!     off after its window anyway). How long a load that is off now has
//!     been off is not known: it counts as long enough.
//!
//! **Sequence** (profile `s` of `L` steps): started (`Some(k)`): `s[k..]`
//! fixed from step 0, no variables. Otherwise binaries `y_j`,
//! `j ∈ [e, d − L]`, `Σ y = 1`, `p_t = Σ_j y_j·s[t − j]`. A programme that
//! does not fit its window (`d − e < L`) is not planned (warning).
//!
//! **Thermal** (element `P`, capacity `C` Wh/K, loss `k` W/K, ambient
//! `a`): in the window, `u_t ∈ [0, 1]`, the share of step `t` the element
//! heats (`l0_u_t3`; with [`ModelOptions::thermal_on_off`], binaries
//! `l0_on_t3` instead), `p_t = P·u_t`, tank temperature `T_t` (°C at the
//! start of step `t`, `T_0` = now) by **explicit Euler**:
//!
//! ```text
//! T_{t+1} = T_t + (P·u_t·dt − k·(T_t − a)·dt − draw_t) / C
//! ```
//!
//! (`draw_t` = heat Wh drawn in step `t`). This is linear in `T` and `on`,
//! so exact as an LP row. The thermostat: `T_{t+1} ≤ max(max_c, U_{t+1})`
//! where `U` is the same recursion with the element off (a tank above
//! `max_c` now may cool, not heat). Ready `(k, min)`: `T_k ≥ min`, hard
//! when a schedule is known to meet every ready temperature
//! ([`tank_reachable`]), with the valid count cuts of `thermal_cuts`
//! (the fewest heating steps between any earlier step and `k`, which the
//! LP relaxation misses: they cut the branch and bound by orders of
//! magnitude); otherwise soft, `T_k + short_r ≥ min`, `short_r ≥ 0`
//! penalised in the objective (warning).
//!
//! **Battery** (`max_w`, energy `E`): continuous: `p_t ∈ [0, max_w]`,
//! `Σ p·dt = min(E, max_w·W·dt)`; semi-continuous: binaries, `p = max_w·on`,
//! `Σ on = ⌈E/(max_w·dt)⌉` (capped at `W`), no run constraint.
//!
//! Names: `imp_t12`, `xp_t12`, `pvu_t12`, `gx_t12`; a load's variables
//! carry its index, `l0_on_t3`, `l0_y_t3`, `l0_p_t3`, `l0_s_t3`,
//! `l0_f_t3`, `l0_T_t3`, `l0_short_r0`. No name starts with a digit or
//! `e`/`E`.

use crate::problem::{Load, LoadKind, Objective, Problem};

/// Objective units per kelvin a thermal load misses a ready temperature
/// by (€ for cost/profit, kWh for self-consumption). Large against any
/// plausible heating cost (1 K of a 200 l tank is 0.23 kWh, 0.17 € at
/// 0.75 €/kWh), so the plan only falls short when it cannot do better.
pub const SHORTFALL_PER_K: f64 = 10.0;

/// A continuous load with run constraints draws at least this fraction
/// of its nominal power while on.
pub const MIN_ON_FRACTION: f64 = 0.01;

/// The least power of a continuous load with run constraints while on:
/// [`MIN_ON_FRACTION`] of nominal, or less when its energy is so small
/// that a run of the whole window could not carry it otherwise.
pub fn min_on_w(p_w: f64, energy_wh: f64, window: usize, dt_h: f64) -> f64 {
    (p_w * MIN_ON_FRACTION).min(energy_wh / (window.max(1) as f64 * dt_h))
}

/// Self-consumption's tie-break weight of the import cost.
pub const SELF_CONSUMPTION_COST_WEIGHT: f64 = 1e-3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    Continuous,
    Integer,
    Binary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Var {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    pub kind: VarKind,
    /// Objective coefficient.
    pub obj: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Le,
    Ge,
    Eq,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    /// (variable index, coefficient); each variable at most once.
    pub terms: Vec<(usize, f64)>,
    pub cmp: Cmp,
    pub rhs: f64,
}

/// A minimisation: `Σ obj_i·x_i + offset` subject to rows and bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinearModel {
    pub vars: Vec<Var>,
    pub rows: Vec<Row>,
    /// Constant added to the objective (kept out of the LP file, which has
    /// no constant term). The formulation keeps it 0.
    pub offset: f64,
    /// Comment lines for the file writers (what each load index is).
    pub comments: Vec<String>,
}

impl LinearModel {
    pub fn add_var(&mut self, name: String, lo: f64, hi: f64, kind: VarKind, obj: f64) -> usize {
        debug_assert!(valid_name(&name), "bad name {name}");
        self.vars.push(Var {
            name,
            lo,
            hi,
            kind,
            obj,
        });
        self.vars.len() - 1
    }

    pub fn add_row(&mut self, name: String, terms: Vec<(usize, f64)>, cmp: Cmp, rhs: f64) {
        debug_assert!(valid_name(&name), "bad name {name}");
        self.rows.push(Row {
            name,
            terms,
            cmp,
            rhs,
        });
    }

    pub fn is_mip(&self) -> bool {
        self.vars.iter().any(|v| v.kind != VarKind::Continuous)
    }

    /// The objective at `x` (with the offset).
    pub fn objective_at(&self, x: &[f64]) -> f64 {
        self.offset + self.vars.iter().zip(x).map(|(v, x)| v.obj * x).sum::<f64>()
    }
}

/// A name the LP and MPS formats both accept: ASCII letters, digits and
/// `_`, not starting with a digit or `e`/`E`, at most 255 characters.
pub fn valid_name(n: &str) -> bool {
    let Some(c0) = n.chars().next() else {
        return false;
    };
    c0.is_ascii_alphabetic()
        && c0 != 'e'
        && c0 != 'E'
        && n.len() <= 255
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// How a load's integer decisions are rounded from a relaxed solution.
#[derive(Debug, Clone, PartialEq)]
pub enum Rounding {
    /// Exactly one of these is 1 (start positions).
    OneOf(Vec<usize>),
    /// Exactly `n` of these are 1 (on steps).
    TopN(Vec<usize>, usize),
    /// Each on its own (≥ 0.5 → 1).
    Each(Vec<usize>),
}

/// A load's power per step: `constant[t] + Σ coef·x[var]`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoadVars {
    pub terms: Vec<Vec<(usize, f64)>>,
    pub constant: Vec<f64>,
    /// Sequence or single-start block: (start step, y variable).
    pub starts: Vec<(usize, usize)>,
    pub rounding: Vec<Rounding>,
    /// Thermal: `T_1..=T_steps` variables.
    pub temps: Vec<usize>,
}

impl LoadVars {
    pub fn power(&self, t: usize, x: &[f64]) -> f64 {
        self.constant[t] + self.terms[t].iter().map(|&(v, c)| c * x[v]).sum::<f64>()
    }
}

/// The model and what reads a plan back.
#[derive(Debug, Clone)]
pub struct Built {
    pub model: LinearModel,
    pub imp: Vec<usize>,
    pub exp: Vec<usize>,
    pub loads: Vec<LoadVars>,
    /// What the model could not honour as asked (a window too short, a
    /// limit lifted).
    pub warnings: Vec<String>,
}

/// Energy tolerance when counting steps: `⌈E/(P·dt)⌉` with this slack, so
/// `E` a whole number of steps (up to round-off) is not one step more.
const STEP_EPS: f64 = 1e-9;

/// Steps at `p_w` that deliver at least `energy_wh`.
pub fn steps_for(energy_wh: f64, p_w: f64, dt_h: f64) -> usize {
    if energy_wh <= 0.0 || p_w <= 0.0 {
        return 0;
    }
    let n = energy_wh / (p_w * dt_h);
    (n - STEP_EPS).ceil().max(0.0) as usize
}

/// What one load must do, as the model reads the problem (shared by the
/// model, the rule plan and the checker, so they agree).
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// Nothing to plan: off everywhere except `fixed` (started loads).
    Fixed {
        power: Vec<f64>,
    },
    /// Exactly `n` steps at `p_w` in the window; `block`: one contiguous
    /// run; `runs`: the run constraints, when any.
    Steps {
        p_w: f64,
        n: usize,
        block: bool,
        runs: Option<Runs>,
    },
    /// `energy_wh` at any power in `[0, p_w]` in the window; `runs`: run
    /// constraints (with the 1 % minimum power while on).
    Energy {
        p_w: f64,
        energy_wh: f64,
        runs: Option<Runs>,
    },
    /// One run of the profile, starting in `[earliest, deadline − len]`.
    Profile {
        profile: Vec<f64>,
    },
    Thermal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Runs {
    /// On just before the window (running now and the window starts at 0).
    pub prev_on: bool,
    pub running_steps: usize,
    pub min_on: usize,
    pub min_off: usize,
    pub max_starts: Option<usize>,
}

/// The load's specification, and a warning when the problem asks for more
/// than its window allows.
pub fn spec(p: &Problem, l: &Load) -> (Spec, Option<String>) {
    let dt = p.dt_h();
    let w = l.deadline.saturating_sub(l.earliest);
    let off = || Spec::Fixed {
        power: vec![0.0; p.steps],
    };
    match &l.kind {
        LoadKind::Deferrable(d) => {
            if d.energy_wh <= 0.0 || d.nominal_w <= 0.0 {
                return (off(), None);
            }
            let running = d.running_steps > 0;
            if running && d.single_start {
                let mut power = vec![0.0; p.steps];
                let mut left = d.energy_wh;
                for slot in power.iter_mut() {
                    if left <= d.nominal_w * dt * STEP_EPS {
                        break;
                    }
                    let e = if d.semi_continuous {
                        d.nominal_w * dt
                    } else {
                        (d.nominal_w * dt).min(left)
                    };
                    *slot = e / dt;
                    left -= e;
                }
                let warn = (left > d.nominal_w * dt * STEP_EPS).then(|| {
                    format!(
                        "load `{}`: still running at the horizon's end ({left:.0} Wh left)",
                        l.id
                    )
                });
                return (Spec::Fixed { power }, warn);
            }
            let has_runs = d.single_start
                || d.min_on_steps > 1
                || d.min_off_steps > 1
                || d.max_starts.is_some();
            let prev_on = running && l.earliest == 0;
            if d.semi_continuous {
                let mut n = steps_for(d.energy_wh, d.nominal_w, dt);
                let mut warn = None;
                if n > w {
                    warn = Some(format!(
                        "load `{}`: {} steps needed, its window has {w}: it runs all of it",
                        l.id, n
                    ));
                    n = w;
                }
                let runs = has_runs.then(|| Runs {
                    prev_on,
                    running_steps: d.running_steps,
                    min_on: d.min_on_steps.min(n),
                    min_off: d.min_off_steps,
                    max_starts: max_starts(d.single_start, d.max_starts),
                });
                let block = d.single_start && !prev_on;
                (
                    Spec::Steps {
                        p_w: d.nominal_w,
                        n,
                        block,
                        runs,
                    },
                    warn,
                )
            } else {
                let cap = d.nominal_w * w as f64 * dt;
                let mut e = d.energy_wh;
                let mut warn = None;
                if e > cap {
                    warn = Some(format!(
                        "load `{}`: {:.0} Wh asked, its window holds {cap:.0} Wh",
                        l.id, e
                    ));
                    e = cap;
                }
                let runs = has_runs.then(|| Runs {
                    prev_on,
                    running_steps: d.running_steps,
                    min_on: d.min_on_steps,
                    min_off: d.min_off_steps,
                    max_starts: max_starts(d.single_start, d.max_starts),
                });
                (
                    Spec::Energy {
                        p_w: d.nominal_w,
                        energy_wh: e,
                        runs,
                    },
                    warn,
                )
            }
        }
        LoadKind::Sequence(s) => {
            if let Some(k) = s.started {
                let mut power = vec![0.0; p.steps];
                for (slot, v) in power.iter_mut().zip(s.profile_w.iter().skip(k)) {
                    *slot = *v;
                }
                let left = s.profile_w.len().saturating_sub(k);
                let warn = (left > p.steps)
                    .then(|| format!("load `{}`: its programme runs past the horizon's end", l.id));
                return (Spec::Fixed { power }, warn);
            }
            if s.profile_w.is_empty() {
                return (off(), None);
            }
            if s.profile_w.len() > w {
                return (
                    off(),
                    Some(format!(
                        "load `{}`: infeasible window: its programme takes {} steps, its window {}..{} has {w}: not planned",
                        l.id,
                        s.profile_w.len(),
                        l.earliest,
                        l.deadline
                    )),
                );
            }
            (
                Spec::Profile {
                    profile: s.profile_w.clone(),
                },
                None,
            )
        }
        LoadKind::Thermal(_) => (Spec::Thermal, None),
        LoadKind::Battery(b) => {
            if b.energy_wh <= 0.0 || b.max_w <= 0.0 {
                return (off(), None);
            }
            if b.semi_continuous {
                let mut n = steps_for(b.energy_wh, b.max_w, dt);
                let mut warn = None;
                if n > w {
                    warn = Some(format!(
                        "load `{}`: {n} steps needed, its window has {w}: it charges in all of it",
                        l.id
                    ));
                    n = w;
                }
                (
                    Spec::Steps {
                        p_w: b.max_w,
                        n,
                        block: false,
                        runs: None,
                    },
                    warn,
                )
            } else {
                let cap = b.max_w * w as f64 * dt;
                let mut warn = None;
                let mut e = b.energy_wh;
                if e > cap {
                    warn = Some(format!(
                        "load `{}`: {e:.0} Wh asked, its window holds {cap:.0} Wh",
                        l.id
                    ));
                    e = cap;
                }
                (
                    Spec::Energy {
                        p_w: b.max_w,
                        energy_wh: e,
                        runs: None,
                    },
                    warn,
                )
            }
        }
    }
}

fn max_starts(single: bool, max: Option<u32>) -> Option<usize> {
    match (single, max) {
        (true, m) => Some(m.map_or(1, |m| (m as usize).min(1))),
        (false, m) => m.map(|m| m as usize),
    }
}

/// Power of the loads that cannot move (started), per step.
pub fn fixed_power(p: &Problem) -> Vec<f64> {
    let mut f = vec![0.0; p.steps];
    for l in &p.loads {
        if let (Spec::Fixed { power }, _) = spec(p, l) {
            for (a, b) in f.iter_mut().zip(power) {
                *a += b;
            }
        }
    }
    f
}

/// Import bound per step: the limit, lifted where base load and started
/// loads minus all PV already exceed it.
pub fn import_cap(p: &Problem) -> Vec<f64> {
    let f = fixed_power(p);
    (0..p.steps)
        .map(|t| {
            p.import_limit_w
                .max(p.base_w[t] + f[t] - p.pv_w[t].max(0.0))
        })
        .collect()
}

/// Export bound per step: `min(export limit, PV)`.
pub fn export_cap(p: &Problem) -> Vec<f64> {
    (0..p.steps)
        .map(|t| {
            let pv = p.pv_w[t].max(0.0);
            p.export_limit_w.map_or(pv, |l| l.max(0.0).min(pv))
        })
        .collect()
}

/// Whether PV may be curtailed at step `t` (it is a variable there).
pub fn curtailable(p: &Problem, t: usize) -> bool {
    p.pv_w[t] > 0.0
        && (p.export_limit_w.is_some()
            || (p.objective == Objective::Profit && p.export_price[t] < 0.0))
}

/// Whether the model forbids importing and exporting at once at `t`:
/// wherever 1 W imported and exported together has a negative cost (the
/// LP would do both for a fake gain), under any objective: the profit
/// objective with an export price at or above the import price, and any
/// objective with a negative import price (spot) and PV to export.
pub fn exclusive(p: &Problem, t: usize) -> bool {
    let (ci, ce) = grid_costs(p, t);
    ci + ce < 0.0 || (p.objective == Objective::Profit && p.export_price[t] >= p.import_price[t])
}

/// Objective coefficients of 1 W imported and exported for one step.
pub fn grid_costs(p: &Problem, t: usize) -> (f64, f64) {
    let k = p.dt_h() / 1000.0;
    match p.objective {
        Objective::Cost => (p.import_price[t] * k, 0.0),
        Objective::Profit => (p.import_price[t] * k, -p.export_price[t] * k),
        Objective::SelfConsumption => (
            (1.0 + SELF_CONSUMPTION_COST_WEIGHT * p.import_price[t]) * k,
            0.0,
        ),
    }
}

/// Thermal recursion: `T_{t+1} = a·T_t + b·on_t + c_t`.
pub fn thermal_coeffs(p: &Problem, th: &crate::problem::Thermal) -> (f64, f64, Vec<f64>) {
    let dt = p.dt_h();
    let cap = th.capacity_wh_per_k;
    let a = 1.0 - th.loss_w_per_k * dt / cap;
    let b = th.nominal_w * dt / cap;
    let c = (0..p.steps)
        .map(|t| {
            (th.loss_w_per_k * th.ambient_c * dt - th.draw_wh.get(t).copied().unwrap_or(0.0)) / cap
        })
        .collect();
    (a, b, c)
}

/// Tank temperatures `T_0..=T_steps` with the element at `power_w` (the
/// model's recursion; the element's share of the step is `power/nominal`).
pub fn simulate_tank(p: &Problem, th: &crate::problem::Thermal, power_w: &[f64]) -> Vec<f64> {
    let (a, b, c) = thermal_coeffs(p, th);
    let mut t = Vec::with_capacity(p.steps + 1);
    t.push(th.temp_c);
    for k in 0..p.steps {
        let on = if th.nominal_w > 0.0 {
            power_w[k] / th.nominal_w
        } else {
            0.0
        };
        t.push(a * t[k] + b * on + c[k]);
    }
    t
}

/// The thermostat's bound on `T_1..=T_steps` (index k-1 for `T_k`):
/// `max(max_c, U_k)`, `U` the tank with the element off.
pub fn tank_upper(p: &Problem, th: &crate::problem::Thermal) -> Vec<f64> {
    let u = simulate_tank(p, th, &vec![0.0; p.steps]);
    u[1..].iter().map(|u| u.max(th.max_c)).collect()
}

/// Formulation choices that are not part of the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ModelOptions {
    /// A thermal load's element strictly on or off for whole steps
    /// (binaries; exact but slow past a day: the LP relaxation heats
    /// fractions of a step up to the thermostat, which whole steps cannot,
    /// and a 48 h plan does not close its gap in 20 000 nodes). Default
    /// `false`: it may heat any part of a step (the shell switches it off
    /// once the step's planned energy is in, or the thermostat cuts it),
    /// which makes the tank an LP.
    pub thermal_on_off: bool,
    /// Every ready temperature soft, even when a schedule is known to
    /// meet them ([`crate::solve::plan`] retries with it when the hard
    /// ones make the problem infeasible, e.g. with the import limit).
    pub soft_ready: bool,
}

/// Builds the model of `p` (which should pass [`Problem::check`]) with
/// the default [`ModelOptions`].
pub fn build(p: &Problem) -> Built {
    build_with(p, &ModelOptions::default())
}

/// Builds the model of `p` (which should pass [`Problem::check`]).
pub fn build_with(p: &Problem, opts: &ModelOptions) -> Built {
    let n = p.steps;
    let dt = p.dt_h();
    let mut m = LinearModel::default();
    let mut warnings = Vec::new();
    let cap = import_cap(p);
    let xcap = export_cap(p);
    if let Some(t) = (0..n).find(|&t| cap[t] > p.import_limit_w) {
        warnings.push(format!(
            "step {t}: base load and started loads need {:.0} W from the grid, above the import limit {:.0} W",
            cap[t], p.import_limit_w
        ));
    }
    let mut imp = Vec::with_capacity(n);
    let mut exp = Vec::with_capacity(n);
    let mut pvu: Vec<Option<usize>> = Vec::with_capacity(n);
    for t in 0..n {
        let (ci, ce) = grid_costs(p, t);
        imp.push(m.add_var(format!("imp_t{t}"), 0.0, cap[t], VarKind::Continuous, ci));
        exp.push(m.add_var(format!("xp_t{t}"), 0.0, xcap[t], VarKind::Continuous, ce));
        pvu.push(curtailable(p, t).then(|| {
            m.add_var(
                format!("pvu_t{t}"),
                0.0,
                p.pv_w[t],
                VarKind::Continuous,
                0.0,
            )
        }));
    }
    // Loads.
    let mut loads = Vec::with_capacity(p.loads.len());
    for (li, l) in p.loads.iter().enumerate() {
        let (s, warn) = spec(p, l);
        warnings.extend(warn);
        m.comments.push(format!(
            "l{li} = {} ({})",
            l.id.replace(|c: char| !c.is_ascii_graphic(), "_"),
            match &l.kind {
                LoadKind::Deferrable(_) => "deferrable",
                LoadKind::Sequence(_) => "sequence",
                LoadKind::Thermal(_) => "thermal",
                LoadKind::Battery(_) => "battery",
            }
        ));
        let lv = build_load(p, li, l, &s, opts, &mut m, &mut warnings);
        loads.push(lv);
    }
    let _ = dt;
    // Import cuts where PV covers the base load: see `import_cuts`.
    let fixed = fixed_power(p);
    for t in 0..n {
        let surplus = p.pv_w[t].max(0.0) - p.base_w[t] - fixed[t];
        if surplus <= 0.0 {
            continue;
        }
        let mut terms = vec![(imp[t], 1.0)];
        for lv in &loads {
            for &(v, c) in &lv.terms[t] {
                if m.vars[v].kind != VarKind::Continuous && c > surplus {
                    terms.push((v, -(c - surplus)));
                }
            }
        }
        if terms.len() > 1 {
            m.add_row(format!("cut_imp_t{t}"), merge(terms), Cmp::Ge, 0.0);
        }
    }
    // Balance and exclusivity.
    for t in 0..n {
        let mut terms = vec![(imp[t], 1.0), (exp[t], -1.0)];
        let mut rhs = p.base_w[t];
        match pvu[t] {
            Some(v) => terms.push((v, 1.0)),
            None => rhs -= p.pv_w[t].max(0.0),
        }
        for lv in &loads {
            rhs += lv.constant[t];
            for &(v, c) in &lv.terms[t] {
                terms.push((v, -c));
            }
        }
        m.add_row(format!("bal_t{t}"), merge(terms), Cmp::Eq, rhs);
        if exclusive(p, t) && xcap[t] > 0.0 {
            let g = m.add_var(format!("gx_t{t}"), 0.0, 1.0, VarKind::Binary, 0.0);
            m.add_row(
                format!("gimp_t{t}"),
                vec![(imp[t], 1.0), (g, -cap[t])],
                Cmp::Le,
                0.0,
            );
            m.add_row(
                format!("gxp_t{t}"),
                vec![(exp[t], 1.0), (g, xcap[t])],
                Cmp::Le,
                xcap[t],
            );
        }
    }
    Built {
        model: m,
        imp,
        exp,
        loads,
        warnings,
    }
}

/// Sums the coefficients of repeated variables (a row lists each once).
fn merge(mut terms: Vec<(usize, f64)>) -> Vec<(usize, f64)> {
    terms.sort_by_key(|t| t.0);
    let mut out: Vec<(usize, f64)> = Vec::with_capacity(terms.len());
    for (v, c) in terms {
        match out.last_mut() {
            Some(last) if last.0 == v => last.1 += c,
            _ => out.push((v, c)),
        }
    }
    out.retain(|t| t.1 != 0.0);
    out
}

fn build_load(
    p: &Problem,
    li: usize,
    l: &Load,
    s: &Spec,
    opts: &ModelOptions,
    m: &mut LinearModel,
    warnings: &mut Vec<String>,
) -> LoadVars {
    let n = p.steps;
    let dt = p.dt_h();
    let (e, d) = (l.earliest, l.deadline);
    let mut lv = LoadVars {
        terms: vec![Vec::new(); n],
        constant: vec![0.0; n],
        ..Default::default()
    };
    let bin = |m: &mut LinearModel, what: &str, t: usize| {
        m.add_var(format!("l{li}_{what}_t{t}"), 0.0, 1.0, VarKind::Binary, 0.0)
    };
    match s {
        Spec::Fixed { power } => lv.constant.clone_from(power),
        Spec::Profile { profile } => {
            let len = profile.len();
            let mut ys = Vec::new();
            for j in e..=d - len {
                let y = bin(m, "y", j);
                ys.push(y);
                lv.starts.push((j, y));
                for (k, &w) in profile.iter().enumerate() {
                    if w != 0.0 {
                        lv.terms[j + k].push((y, w));
                    }
                }
            }
            m.add_row(
                format!("l{li}_one"),
                ys.iter().map(|&y| (y, 1.0)).collect(),
                Cmp::Eq,
                1.0,
            );
            lv.rounding.push(Rounding::OneOf(ys));
        }
        Spec::Steps {
            p_w,
            n: k,
            block: true,
            ..
        } => {
            if *k > 0 {
                let mut ys = Vec::new();
                for j in e..=d - k {
                    let y = bin(m, "y", j);
                    ys.push(y);
                    lv.starts.push((j, y));
                    for t in j..j + k {
                        lv.terms[t].push((y, *p_w));
                    }
                }
                m.add_row(
                    format!("l{li}_one"),
                    ys.iter().map(|&y| (y, 1.0)).collect(),
                    Cmp::Eq,
                    1.0,
                );
                lv.rounding.push(Rounding::OneOf(ys));
            }
        }
        Spec::Steps {
            p_w, n: k, runs, ..
        } => {
            if *k > 0 {
                let on: Vec<usize> = (e..d).map(|t| bin(m, "on", t)).collect();
                for (i, t) in (e..d).enumerate() {
                    lv.terms[t].push((on[i], *p_w));
                }
                m.add_row(
                    format!("l{li}_steps"),
                    on.iter().map(|&v| (v, 1.0)).collect(),
                    Cmp::Eq,
                    *k as f64,
                );
                if let Some(r) = runs {
                    run_rows(p, li, l, r, &on, m);
                }
                lv.rounding.push(Rounding::TopN(on, *k));
            }
        }
        Spec::Energy {
            p_w,
            energy_wh,
            runs,
        } => {
            if *energy_wh > 0.0 {
                let ps: Vec<usize> = (e..d)
                    .map(|t| {
                        m.add_var(format!("l{li}_p_t{t}"), 0.0, *p_w, VarKind::Continuous, 0.0)
                    })
                    .collect();
                for (i, t) in (e..d).enumerate() {
                    lv.terms[t].push((ps[i], 1.0));
                }
                m.add_row(
                    format!("l{li}_energy"),
                    ps.iter().map(|&v| (v, dt)).collect(),
                    Cmp::Eq,
                    *energy_wh,
                );
                if let Some(r) = runs {
                    let on: Vec<usize> = (e..d).map(|t| bin(m, "on", t)).collect();
                    let pmin = min_on_w(*p_w, *energy_wh, d - e, dt);
                    for (i, t) in (e..d).enumerate() {
                        m.add_row(
                            format!("l{li}_pmax_t{t}"),
                            vec![(ps[i], 1.0), (on[i], -p_w)],
                            Cmp::Le,
                            0.0,
                        );
                        m.add_row(
                            format!("l{li}_pmin_t{t}"),
                            vec![(ps[i], 1.0), (on[i], -pmin)],
                            Cmp::Ge,
                            0.0,
                        );
                    }
                    run_rows(p, li, l, r, &on, m);
                    lv.rounding.push(Rounding::Each(on));
                }
            }
        }
        Spec::Thermal => {
            let LoadKind::Thermal(th) = &l.kind else {
                unreachable!()
            };
            let (a, b, c) = thermal_coeffs(p, th);
            let upper = tank_upper(p, th);
            let on_off = opts.thermal_on_off;
            let on: Vec<Option<usize>> = (0..n)
                .map(|t| {
                    (t >= e && t < d && th.nominal_w > 0.0).then(|| {
                        if on_off {
                            bin(m, "on", t)
                        } else {
                            m.add_var(format!("l{li}_u_t{t}"), 0.0, 1.0, VarKind::Continuous, 0.0)
                        }
                    })
                })
                .collect();
            for (t, v) in on.iter().enumerate() {
                if let Some(v) = v {
                    lv.terms[t].push((*v, th.nominal_w));
                }
            }
            let temps: Vec<usize> = (1..=n)
                .map(|k| {
                    m.add_var(
                        format!("l{li}_T_t{k}"),
                        f64::NEG_INFINITY,
                        upper[k - 1],
                        VarKind::Continuous,
                        0.0,
                    )
                })
                .collect();
            for t in 0..n {
                // T_{t+1} − a·T_t − b·on_t = c_t
                let mut terms = vec![(temps[t], 1.0)];
                let mut rhs = c[t];
                if t == 0 {
                    rhs += a * th.temp_c;
                } else {
                    terms.push((temps[t - 1], -a));
                }
                if let Some(v) = on[t] {
                    terms.push((v, -b));
                }
                m.add_row(format!("l{li}_heat_t{t}"), terms, Cmp::Eq, rhs);
            }
            let hard = !opts.soft_ready && tank_reachable(p, l, th);
            if !hard {
                warnings.push(format!(
                    "load `{}`: the tank may not reach every ready temperature: they are soft ({SHORTFALL_PER_K} per K short)",
                    l.id
                ));
            }
            for (r, &(k, min_c)) in th.ready.iter().enumerate() {
                if k == 0 {
                    if th.temp_c < min_c {
                        warnings.push(format!(
                            "load `{}`: the tank is {:.1} °C, below {min_c:.1} °C, now",
                            l.id, th.temp_c
                        ));
                    }
                    continue;
                }
                if k > n {
                    continue;
                }
                let mut terms = vec![(temps[k - 1], 1.0)];
                if !hard {
                    let sh = m.add_var(
                        format!("l{li}_short_r{r}"),
                        0.0,
                        f64::INFINITY,
                        VarKind::Continuous,
                        SHORTFALL_PER_K,
                    );
                    terms.push((sh, 1.0));
                }
                m.add_row(format!("l{li}_ready_r{r}"), terms, Cmp::Ge, min_c);
                if hard && on_off {
                    thermal_cuts(p, th, &on, li, r, k, min_c, m);
                }
            }
            if on_off {
                lv.rounding
                    .push(Rounding::Each(on.iter().flatten().copied().collect()));
            }
            lv.temps = temps;
        }
    }
    let _ = warnings;
    lv
}

/// Whether the tank can be at every ready temperature, found by a
/// schedule: for each ready time in turn, while too cold, the latest off
/// step of the window before it where the thermostat lets the element
/// heat is switched on. (Sufficient, not necessary: when it fails the
/// ready temperatures are soft.)
pub fn tank_reachable(p: &Problem, l: &Load, th: &crate::problem::Thermal) -> bool {
    let n = p.steps;
    let upper = tank_upper(p, th);
    let mut pw = vec![0.0; n];
    let mut ready = th.ready.clone();
    ready.sort_by_key(|r| r.0);
    for &(k, min_c) in &ready {
        if k == 0 {
            if th.temp_c < min_c {
                return false;
            }
            continue;
        }
        if k > n {
            continue;
        }
        loop {
            let temps = simulate_tank(p, th, &pw);
            if temps[k] >= min_c {
                break;
            }
            let next = (l.earliest..l.deadline.min(k)).rev().find(|&t| {
                if pw[t] > 0.0 {
                    return false;
                }
                pw[t] = th.nominal_w;
                let temps = simulate_tank(p, th, &pw);
                pw[t] = 0.0;
                temps[1..].iter().zip(&upper).all(|(t, u)| *t <= *u)
            });
            match next {
                Some(t) => pw[t] = th.nominal_w,
                None => return false,
            }
        }
    }
    true
}

/// Valid inequalities for a hard ready temperature `min_c` at step `k`:
/// from any step `s` before it, the tank is at most `Tmax_s` (the
/// thermostat's bound carried forward with the element always on), so
/// `T_k = a^(k−s)·T_s + Σ a^(k−1−t)·(b·on_t + c_t)` reaches `min_c` only
/// if at least `N(s, k)` steps of `[s, k)` heat (the fewest, placed
/// latest, that could). `Σ_{t∈[s,k)} on_t ≥ N(s, k)` is the rounded-up
/// form the LP relaxation misses; only cuts not dominated by one over a
/// shorter interval are added.
#[allow(clippy::too_many_arguments)]
fn thermal_cuts(
    p: &Problem,
    th: &crate::problem::Thermal,
    on: &[Option<usize>],
    li: usize,
    r: usize,
    k: usize,
    min_c: f64,
    m: &mut LinearModel,
) {
    let (a, b, c) = thermal_coeffs(p, th);
    let upper = tank_upper(p, th);
    let mut tmax = vec![th.temp_c; k + 1];
    for s in 0..k {
        let heat = if on[s].is_some() { b } else { 0.0 };
        tmax[s + 1] = upper[s].min(a * tmax[s] + heat + c[s]);
    }
    let mut best = 0usize;
    let mut d_s = 0.0; // Σ_{t=s}^{k−1} a^(k−1−t)·c_t
    let mut a_pow = 1.0; // a^(k−1−s)
    let mut weights: Vec<f64> = Vec::new(); // b·a^(k−1−t), latest first
    let mut vars: Vec<usize> = Vec::new();
    for s in (0..k).rev() {
        d_s += a_pow * c[s];
        if let Some(v) = on[s] {
            weights.push(b * a_pow);
            vars.push(v);
        }
        a_pow *= a;
        let need = min_c - (a_pow * tmax[s] + d_s);
        if need <= 1e-7 {
            continue;
        }
        let mut acc = 0.0;
        let mut count = None;
        for (i, w) in weights.iter().enumerate() {
            acc += w;
            if acc >= need - 1e-7 {
                count = Some(i + 1);
                break;
            }
        }
        let Some(nreq) = count else { continue };
        if nreq > best {
            best = nreq;
            m.add_row(
                format!("l{li}_cut_r{r}_t{s}"),
                vars.iter().map(|&v| (v, 1.0)).collect(),
                Cmp::Ge,
                nreq as f64,
            );
        }
    }
}

/// Run constraints on the on binaries `on` (one per window step).
fn run_rows(p: &Problem, li: usize, l: &Load, r: &Runs, on: &[usize], m: &mut LinearModel) {
    let (e, d) = (l.earliest, l.deadline);
    let w = d - e;
    let prev = if r.prev_on { 1.0 } else { 0.0 };
    let need_starts = r.max_starts.is_some() || r.min_on > 1;
    if need_starts {
        let mut starts = Vec::with_capacity(w);
        for i in 0..w {
            let t = e + i;
            // A run starting here must fit in the window, unless the
            // window ends with the horizon.
            let fits = t + r.min_on <= d || d == p.steps;
            let hi = if fits { 1.0 } else { 0.0 };
            let s = m.add_var(format!("l{li}_s_t{t}"), 0.0, hi, VarKind::Binary, 0.0);
            starts.push(s);
            // s_t ≥ on_t − on_{t−1}; s_t ≤ on_t; s_t ≤ 1 − on_{t−1}
            if i == 0 {
                m.add_row(
                    format!("l{li}_sa_t{t}"),
                    vec![(s, 1.0), (on[0], -1.0)],
                    Cmp::Ge,
                    -prev,
                );
                m.add_row(
                    format!("l{li}_sc_t{t}"),
                    vec![(s, 1.0)],
                    Cmp::Le,
                    1.0 - prev,
                );
            } else {
                m.add_row(
                    format!("l{li}_sa_t{t}"),
                    vec![(s, 1.0), (on[i], -1.0), (on[i - 1], 1.0)],
                    Cmp::Ge,
                    0.0,
                );
                m.add_row(
                    format!("l{li}_sc_t{t}"),
                    vec![(s, 1.0), (on[i - 1], 1.0)],
                    Cmp::Le,
                    1.0,
                );
            }
            m.add_row(
                format!("l{li}_sb_t{t}"),
                vec![(s, 1.0), (on[i], -1.0)],
                Cmp::Le,
                0.0,
            );
            // Min on: on_τ ≥ s_t for τ ∈ (t, t + m).
            for tau in t + 1..(t + r.min_on).min(d) {
                m.add_row(
                    format!("l{li}_mon_t{t}_{tau}"),
                    vec![(on[tau - e], 1.0), (s, -1.0)],
                    Cmp::Ge,
                    0.0,
                );
            }
        }
        if let Some(k) = r.max_starts {
            m.add_row(
                format!("l{li}_starts"),
                starts.iter().map(|&s| (s, 1.0)).collect(),
                Cmp::Le,
                k as f64,
            );
        }
    }
    // A load running now for fewer than min_on steps stays on.
    if r.prev_on && r.running_steps < r.min_on {
        for tau in e..(r.min_on - r.running_steps).min(d) {
            let v = on[tau - e];
            m.vars[v].lo = 1.0;
        }
    }
    if r.min_off > 1 {
        for i in 0..w {
            let t = e + i;
            if i == 0 && !r.prev_on {
                continue; // nothing to stop at the window's start
            }
            let f = m.add_var(format!("l{li}_f_t{t}"), 0.0, 1.0, VarKind::Binary, 0.0);
            // f_t ≥ on_{t−1} − on_t; f_t ≤ on_{t−1}; f_t ≤ 1 − on_t
            if i == 0 {
                m.add_row(
                    format!("l{li}_fa_t{t}"),
                    vec![(f, 1.0), (on[0], 1.0)],
                    Cmp::Ge,
                    prev,
                );
            } else {
                m.add_row(
                    format!("l{li}_fa_t{t}"),
                    vec![(f, 1.0), (on[i], 1.0), (on[i - 1], -1.0)],
                    Cmp::Ge,
                    0.0,
                );
                m.add_row(
                    format!("l{li}_fc_t{t}"),
                    vec![(f, 1.0), (on[i - 1], -1.0)],
                    Cmp::Le,
                    0.0,
                );
            }
            for tau in t..(t + r.min_off).min(d) {
                m.add_row(
                    format!("l{li}_moff_t{t}_{tau}"),
                    vec![(on[tau - e], 1.0), (f, 1.0)],
                    Cmp::Le,
                    1.0,
                );
            }
        }
    }
}
