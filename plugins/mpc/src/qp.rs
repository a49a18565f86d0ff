//! The horizon problem: an economic MPC linear program (with a tiny
//! quadratic smoothing term) solved by an interior-point method: our own
//! banded one ([`ipm`], since issue 19; figures in BENCHMARKS.md) by
//! default, clarabel's as the reference ([`Solver`]).
//!
//! Decision variables (N steps of `dt`; `k = 0 … N−1`):
//! `u_k` valve fraction over step k, predicted states `Ti_{k+1}, Te_{k+1}`
//! °C, comfort slacks `s⁻_k, s⁺_k` K, terminal slack `s_T` K.
//!
//! ```text
//! min  Σ_k price_k · P_h · u_k · Δt_h                 (€ of energy)
//!    + Σ_k (w_under · s⁻_k + w_over · s⁺_k) · Δt_h       (€ of discomfort)
//!    + w_T · s_T                                          (€, terminal)
//!    + ε · Σ_k (u_k − u_{k−1})²                           (€, smoothing)
//! s.t. x_{k+1} = A x_k + B (Ta_k, P_h·1000·u_k + d, I_k)  (dynamics, x_0 given)
//!      Ti_{k+1} + s⁻_k ≥ comfort_low,  Ti_{k+1} − s⁺_k ≤ comfort_high
//!      s⁻, s⁺, s_T ≥ 0
//!      u_min ≤ u_k ≤ u_max,  |u_k − u_{k−1}| ≤ ramp  (u_{−1} = current valve)
//!      Ti_N + s_T ≥ terminal_c
//! ```
//! `P_h` heater kW, `Δt_h` step in hours, `w` in €/(K·h), `w_T` in €/K, `d`
//! the observer's constant heat disturbance, W (offset-free MPC,
//! [`crate::observer`]). `comfort_low` is the configured floor *plus* the
//! config's `comfort_margin_c` (constraint tightening, see
//! [`crate::config::Config::comfort_margin_c`]).
//!
//! The smoothing term makes the optimum unique where the LP has a face of
//! optima (equal prices: any split of the same energy is optimal) and keeps
//! the plan from chattering between receding-horizon solves. Its weight `ε`
//! (default 1e-3 € per unit² of valve fraction change, i.e. a full 0→100 %
//! swing costs 0.1 cent) is two orders of magnitude below the energy cost of
//! one 15-min step at full power (≈ 0.2 €), so it only breaks ties.
//!
//! Formulation and duality: Boyd & Vandenberghe, *Convex Optimization*
//! (2004) §4.3–4.4 and §5.2–5.5 (KKT). Clarabel's standard form
//! (Goulart & Chen, "Clarabel: An interior-point solver for conic programs
//! with quadratic objectives", 2024; <https://clarabel.org>):
//! `min ½xᵀPx + qᵀx  s.t.  Ax + s = b,  s ∈ K` with `K` a product of the zero
//! cone (equalities) and the nonnegative orthant (inequalities); its dual
//! `z ∈ K*` satisfies `Px + q + Aᵀz = 0` at the optimum.

use crate::model::Discrete;
use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};

/// Weights, limits and comfort band of the horizon problem.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Heater power at 100 % valve, W.
    pub heater_w: f64,
    /// Comfort band, °C.
    pub comfort_low_c: f64,
    /// Comfort band, °C.
    pub comfort_high_c: f64,
    /// €/(K·h) below the band.
    pub under_eur_per_kh: f64,
    /// €/(K·h) above the band.
    pub over_eur_per_kh: f64,
    /// Terminal condition `Ti_N ≥ terminal_c`, °C (soft, `None` = none).
    pub terminal_c: Option<f64>,
    /// €/K below `terminal_c` at the horizon's end.
    pub terminal_eur_per_k: f64,
    /// Valve bounds, fraction 0–1.
    pub u_min: f64,
    /// Valve bounds, fraction 0–1.
    pub u_max: f64,
    /// Largest change of the valve per step, fraction.
    pub ramp: f64,
    /// Smoothing weight ε, € per (fraction)².
    pub smooth_eur: f64,
    /// Clarabel's iteration limit.
    pub max_iter: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            heater_w: 6000.0,
            comfort_low_c: 19.0,
            comfort_high_c: 28.0,
            under_eur_per_kh: 2.0,
            over_eur_per_kh: 0.05,
            terminal_c: Some(20.0),
            terminal_eur_per_k: 5.0,
            u_min: 0.0,
            u_max: 1.0,
            ramp: 1.0,
            smooth_eur: 1e-3,
            max_iter: 100,
        }
    }
}

/// Forecasts on the horizon grid, one value per step (in force at its
/// start).
#[derive(Debug, Clone, Default)]
pub struct Forecast {
    /// Outdoor temperature, °C.
    pub ta: Vec<f64>,
    /// Global horizontal irradiance, W/m².
    pub isol: Vec<f64>,
    /// Energy price, €/kWh.
    pub price: Vec<f64>,
    /// Constant heat disturbance on the air node over the whole horizon, W
    /// (the observer's estimate, [`crate::observer`]): added to the heating
    /// power in the dynamics, `Φ = P_h·1000·u_k + d`.
    pub gain_w: f64,
}

/// An optimal plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Valve fraction per step.
    pub u: Vec<f64>,
    /// Predicted `Ti` at the end of each step (`Ti_{k+1}`), °C.
    pub ti: Vec<f64>,
    /// Predicted `Te` at the end of each step, °C.
    pub te: Vec<f64>,
    /// Energy cost over the horizon, €.
    pub energy_cost_eur: f64,
    /// The whole objective (energy, discomfort, terminal, smoothing), €.
    pub objective_eur: f64,
    /// Clarabel's status (`Solved` or `AlmostSolved`).
    pub status: String,
    /// Interior-point iterations.
    pub iterations: u32,
}

/// Why no plan.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanError {
    /// The inputs cannot make a problem (NaN, empty, inconsistent).
    BadInput(String),
    /// Clarabel ended without a solution (status name).
    Solver(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::BadInput(s) => write!(f, "bad horizon input: {s}"),
            PlanError::Solver(s) => write!(f, "solver status {s}"),
        }
    }
}

/// Variable indices.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Steps.
    pub n: usize,
    /// Has `s_T`.
    pub terminal: bool,
}

impl Layout {
    /// `u_k`
    pub fn u(&self, k: usize) -> usize {
        k
    }
    /// `Ti_{k+1}`
    pub fn ti(&self, k: usize) -> usize {
        self.n + k
    }
    /// `Te_{k+1}`
    pub fn te(&self, k: usize) -> usize {
        2 * self.n + k
    }
    /// `s⁻_k`
    pub fn s_under(&self, k: usize) -> usize {
        3 * self.n + k
    }
    /// `s⁺_k`
    pub fn s_over(&self, k: usize) -> usize {
        4 * self.n + k
    }
    /// `s_T`
    pub fn s_terminal(&self) -> usize {
        5 * self.n
    }
    /// Number of variables.
    pub fn vars(&self) -> usize {
        5 * self.n + usize::from(self.terminal)
    }
}

/// The problem in clarabel's form (public for tests that check KKT).
pub struct Matrices {
    /// Upper triangle of P.
    pub p: CscMatrix<f64>,
    /// Linear cost.
    pub q: Vec<f64>,
    /// Constraint matrix.
    pub a: CscMatrix<f64>,
    /// Right-hand side.
    pub b: Vec<f64>,
    /// Rows `0..equalities` are the zero cone, the rest nonnegative.
    pub equalities: usize,
    /// Constant term of the objective (smoothing of `u_{−1}`), €.
    pub offset: f64,
    /// Variable layout.
    pub layout: Layout,
}

struct Rows {
    i: Vec<usize>,
    j: Vec<usize>,
    v: Vec<f64>,
    b: Vec<f64>,
}

impl Rows {
    /// Adds the row `Σ coef·x_var (+ s) = rhs`.
    fn push(&mut self, terms: &[(usize, f64)], rhs: f64) {
        let row = self.b.len();
        for &(var, coef) in terms {
            if coef != 0.0 {
                self.i.push(row);
                self.j.push(var);
                self.v.push(coef);
            }
        }
        self.b.push(rhs);
    }
}

fn check_inputs(
    model: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
) -> Result<usize, PlanError> {
    let bad = |m: &str| Err(PlanError::BadInput(m.into()));
    let n = fc.price.len();
    if n == 0 {
        return bad("empty horizon");
    }
    if fc.ta.len() != n || fc.isol.len() != n {
        return bad("forecast lengths differ");
    }
    let all_finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
    if !all_finite(&fc.ta) || !all_finite(&fc.isol) || !all_finite(&fc.price) {
        return bad("non-finite forecast value");
    }
    if !all_finite(&x0) || !u_prev.is_finite() || !fc.gain_w.is_finite() {
        return bad("non-finite initial state or valve");
    }
    let nums = [
        s.heater_w,
        s.comfort_low_c,
        s.comfort_high_c,
        s.under_eur_per_kh,
        s.over_eur_per_kh,
        s.terminal_c.unwrap_or(0.0),
        s.terminal_eur_per_k,
        s.u_min,
        s.u_max,
        s.ramp,
        s.smooth_eur,
    ];
    if !all_finite(&nums) || s.u_min > s.u_max || s.ramp < 0.0 || s.smooth_eur < 0.0 {
        return bad("invalid settings");
    }
    if !(model.dt_s.is_finite() && model.dt_s > 0.0) {
        return bad("invalid step");
    }
    Ok(n)
}

/// Builds the problem for the model, initial state `x0 = (Ti, Te)` °C,
/// current valve `u_prev` (fraction, clamped into the bounds so the ramp
/// stays feasible) and forecasts.
pub fn build(
    model: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
) -> Result<Matrices, PlanError> {
    let n = check_inputs(model, x0, u_prev, fc, s)?;
    let l = Layout {
        n,
        terminal: s.terminal_c.is_some(),
    };
    let nv = l.vars();
    let dt_h = model.dt_s / 3600.0;
    let heater_kw = s.heater_w / 1000.0;
    let u_prev = u_prev.clamp(s.u_min, s.u_max);
    let (a, b) = (model.a, model.b);

    // Objective.
    let mut q = vec![0.0; nv];
    for k in 0..n {
        q[l.u(k)] = fc.price[k] * heater_kw * dt_h;
        q[l.s_under(k)] = s.under_eur_per_kh * dt_h;
        q[l.s_over(k)] = s.over_eur_per_kh * dt_h;
    }
    if l.terminal {
        q[l.s_terminal()] = s.terminal_eur_per_k;
    }
    // ε Σ (u_k − u_{k−1})² = ½ uᵀ P u + q_u u + ε u_prev², P = 2ε·(path Laplacian
    // + e_0 e_0ᵀ); upper triangle only.
    let (mut pi, mut pj, mut pv) = (Vec::new(), Vec::new(), Vec::new());
    let eps = s.smooth_eur;
    let mut offset = 0.0;
    if eps > 0.0 {
        for k in 0..n {
            let diag = if k + 1 < n { 4.0 * eps } else { 2.0 * eps };
            pi.push(l.u(k));
            pj.push(l.u(k));
            pv.push(diag);
            if k + 1 < n {
                pi.push(l.u(k));
                pj.push(l.u(k + 1));
                pv.push(-2.0 * eps);
            }
        }
        q[l.u(0)] -= 2.0 * eps * u_prev;
        offset = eps * u_prev * u_prev;
    }
    let p = CscMatrix::new_from_triplets(nv, nv, pi, pj, pv);

    // Equalities (zero cone): x_{k+1} − A x_k − B_Φ P_h u_k = B_a Ta_k + B_I I_k.
    let mut r = Rows {
        i: Vec::new(),
        j: Vec::new(),
        v: Vec::new(),
        b: Vec::new(),
    };
    for k in 0..n {
        for row in 0..2 {
            let this = if row == 0 { l.ti(k) } else { l.te(k) };
            let mut rhs = b[row][0] * fc.ta[k] + b[row][1] * fc.gain_w + b[row][2] * fc.isol[k];
            let mut terms = vec![(this, 1.0), (l.u(k), -b[row][1] * s.heater_w)];
            if k == 0 {
                rhs += a[row][0] * x0[0] + a[row][1] * x0[1];
            } else {
                terms.push((l.ti(k - 1), -a[row][0]));
                terms.push((l.te(k - 1), -a[row][1]));
            }
            r.push(&terms, rhs);
        }
    }
    let equalities = r.b.len();
    // Inequalities (nonnegative cone): G x ≤ h written as G x + s = h.
    let ramp_binds = s.ramp < s.u_max - s.u_min;
    for k in 0..n {
        r.push(&[(l.ti(k), -1.0), (l.s_under(k), -1.0)], -s.comfort_low_c);
        r.push(&[(l.ti(k), 1.0), (l.s_over(k), -1.0)], s.comfort_high_c);
        r.push(&[(l.s_under(k), -1.0)], 0.0);
        r.push(&[(l.s_over(k), -1.0)], 0.0);
        r.push(&[(l.u(k), 1.0)], s.u_max);
        r.push(&[(l.u(k), -1.0)], -s.u_min);
        if ramp_binds {
            if k == 0 {
                r.push(&[(l.u(0), 1.0)], s.ramp + u_prev);
                r.push(&[(l.u(0), -1.0)], s.ramp - u_prev);
            } else {
                r.push(&[(l.u(k), 1.0), (l.u(k - 1), -1.0)], s.ramp);
                r.push(&[(l.u(k), -1.0), (l.u(k - 1), 1.0)], s.ramp);
            }
        }
    }
    if let Some(tc) = s.terminal_c {
        r.push(&[(l.ti(n - 1), -1.0), (l.s_terminal(), -1.0)], -tc);
        r.push(&[(l.s_terminal(), -1.0)], 0.0);
    }
    let m = r.b.len();
    let a = CscMatrix::new_from_triplets(m, nv, r.i, r.j, r.v);
    Ok(Matrices {
        p,
        q,
        a,
        b: r.b,
        equalities,
        offset,
        layout: l,
    })
}

/// Clarabel's raw answer (tests check KKT from it).
pub struct Raw {
    /// Primal.
    pub x: Vec<f64>,
    /// Dual.
    pub z: Vec<f64>,
    /// Primal slack.
    pub s: Vec<f64>,
    /// Status.
    pub status: SolverStatus,
    /// Iterations.
    pub iterations: u32,
}

/// Runs clarabel on built matrices.
pub fn solve_matrices(mx: &Matrices, max_iter: u32) -> Result<Raw, PlanError> {
    let cones = [
        SupportedConeT::ZeroConeT(mx.equalities),
        SupportedConeT::NonnegativeConeT(mx.b.len() - mx.equalities),
    ];
    let settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .max_iter(max_iter)
        .build()
        .map_err(|e| PlanError::BadInput(format!("settings: {e}")))?;
    let mut solver = DefaultSolver::new(&mx.p, &mx.q, &mx.a, &mx.b, &cones, settings)
        .map_err(|e| PlanError::BadInput(format!("clarabel: {e}")))?;
    solver.solve();
    let sol = &solver.solution;
    Ok(Raw {
        x: sol.x.clone(),
        z: sol.z.clone(),
        s: sol.s.clone(),
        status: sol.status,
        iterations: sol.iterations,
    })
}

/// Runs the banded interior-point solver ([`ipm`]) on built matrices.
pub fn solve_banded(mx: &Matrices, max_iter: u32) -> Raw {
    let a = ipm::solve(mx, max_iter);
    Raw {
        x: a.x,
        z: a.z,
        s: a.s,
        status: a.status,
        iterations: a.iterations,
    }
}

/// Which solver [`plan_with`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// [`ipm`]: the structure-exploiting interior point (the default).
    Banded,
    /// clarabel's general sparse interior point (the reference).
    Clarabel,
}

/// Plans the horizon with the default solver ([`Solver::Banded`]): see
/// [`plan_with`].
pub fn plan(
    model: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
) -> Result<Plan, PlanError> {
    plan_with(Solver::Banded, model, x0, u_prev, fc, s)
}

/// Plans the horizon with clarabel ([`Solver::Clarabel`]): see
/// [`plan_with`].
pub fn plan_clarabel(
    model: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
) -> Result<Plan, PlanError> {
    plan_with(Solver::Clarabel, model, x0, u_prev, fc, s)
}

/// Plans the horizon: builds, solves and reads back the plan. The valve
/// plan is clamped into its bounds (interior-point round-off) and the
/// trajectories are re-simulated from it with the model, so what is
/// published is consistent with what is commanded.
pub fn plan_with(
    solver: Solver,
    model: &Discrete,
    x0: [f64; 2],
    u_prev: f64,
    fc: &Forecast,
    s: &Settings,
) -> Result<Plan, PlanError> {
    let mx = build(model, x0, u_prev, fc, s)?;
    let raw = match solver {
        Solver::Banded => solve_banded(&mx, s.max_iter),
        Solver::Clarabel => solve_matrices(&mx, s.max_iter)?,
    };
    if !matches!(
        raw.status,
        SolverStatus::Solved | SolverStatus::AlmostSolved
    ) {
        return Err(PlanError::Solver(format!("{:?}", raw.status)));
    }
    if raw.x.iter().any(|v| !v.is_finite()) {
        return Err(PlanError::Solver("non-finite solution".into()));
    }
    let l = mx.layout;
    let u: Vec<f64> = (0..l.n)
        .map(|k| raw.x[l.u(k)].clamp(s.u_min, s.u_max))
        .collect();
    let inputs: Vec<[f64; 3]> = (0..l.n)
        .map(|k| [fc.ta[k], u[k] * s.heater_w + fc.gain_w, fc.isol[k]])
        .collect();
    let xs = model.simulate(x0, &inputs);
    let dt_h = model.dt_s / 3600.0;
    let energy_cost_eur = (0..l.n)
        .map(|k| fc.price[k] * s.heater_w / 1000.0 * u[k] * dt_h)
        .sum();
    let objective_eur = objective(&mx, &raw.x);
    Ok(Plan {
        ti: xs[1..].iter().map(|x| x[0]).collect(),
        te: xs[1..].iter().map(|x| x[1]).collect(),
        u,
        energy_cost_eur,
        objective_eur,
        status: format!("{:?}", raw.status),
        iterations: raw.iterations,
    })
}

/// `½xᵀPx + qᵀx + offset` (P stored as its upper triangle).
pub fn objective(mx: &Matrices, x: &[f64]) -> f64 {
    let mut v = mx.offset + mx.q.iter().zip(x).map(|(q, x)| q * x).sum::<f64>();
    let p = &mx.p;
    for col in 0..p.n {
        for idx in p.colptr[col]..p.colptr[col + 1] {
            let row = p.rowval[idx];
            let w = p.nzval[idx] * x[row] * x[col];
            v += if row == col { 0.5 * w } else { w };
        }
    }
    v
}

pub mod ipm;
#[cfg(test)]
mod tests;
