//! Output-error least-squares identification of the TiTe model
//! ([`crate::model`]) from recorded history, with argmin's Nelder–Mead.
//!
//! Criterion: simulate the model from the window's start with the recorded
//! inputs and minimise the mean squared difference between simulated and
//! measured `Ti` (output error, Bacher & Madsen 2011 §3; simulation rather
//! than one-step prediction, so the fitted model is the one the MPC uses to
//! predict a whole horizon).
//!
//! - The physical parameters are searched in log space (positivity, and one
//!   simplex step is the same relative change for a capacity of 1e7 J/K and a
//!   resistance of 1e-3 K/W); outside the physical box of [`Bounds`] the
//!   cost is a large penalty.
//! - The unknown initial state `(Ti0, Te0)` is not a search variable: the
//!   simulated `Ti` is affine in it (`Ti_sim = y_inputs + Ti0·h_i + Te0·h_e`,
//!   `h` the free responses), so for each candidate the best initial state is
//!   the solution of a 2×2 linear least-squares problem (variable projection,
//!   Golub & Pereyra). This removes the worst-scaled direction from the
//!   simplex and uses the noisy first sample no more than the others.
//! - A constant heat gain on the air node (internal gains, W; also absorbs
//!   a constant bias of the other inputs) is fitted with the initial state:
//!   `Ti_sim` is affine in it too, so it is the third unknown of the same
//!   linear least-squares problem. Without it a house with 300 W of
//!   internal gains has to explain a steady surplus of heat with the
//!   model's structure: on closed-loop data the search decoupled the
//!   envelope from outdoors (`R_ea` to its upper bound, 1 K/W) and used the
//!   free `Te0` of a now lossless mass as a slowly draining heat store, and
//!   every refit was rejected. The gain seeds the observer's disturbance
//!   estimate ([`crate::observer`]).
//! - Weak priors (MAP instead of plain least squares, Tikhonov in log
//!   space): `SSE/σ_v² + Σ((ln θ − ln θ₀)/σ_p)² + ((g − g₀)/σ_g)²` with
//!   `θ₀` the initial guess (the last accepted fit, or the heater-scaled
//!   default), `σ_p = ln 3`, `g₀` the last fit's gain, `σ_g = 300 W`,
//!   `σ_v = 0.1 °C`. The split of the loss between `R_ia` and the
//!   envelope path, and the envelope capacity, rest on the slow part of the
//!   response, which closed-loop data (the room held near one temperature)
//!   barely excite: the cost is nearly flat along those directions and
//!   model mismatch alone (the real house is a 5R1C with an emitter lag)
//!   would carry them to the box's edge. The prior costs nothing where the
//!   data speak (on the simulated house it changed the RMSE by < 0.001 °C)
//!   and keeps a refit next to the last good model where they do not.
//! - Solver choice: Nelder–Mead (derivative-free) because the cost is cheap
//!   (a 288-step 2-state simulation, a few µs) while argmin's Gauss–Newton
//!   needs a matrix inverse that `argmin-math` provides for `Vec` only with
//!   nalgebra/ndarray (more code in the plugin); Nelder–Mead also tolerates
//!   the penalty outside the box. Its known weakness, stalling on a
//!   degenerate simplex, is handled by restarting from the best point with a
//!   fresh simplex until a restart no longer improves the cost.
//!
//! A fit is *accepted* ([`FitResult::check`]) only if the last Nelder–Mead
//! run converged (simplex cost spread below tolerance, not the iteration
//! limit), the RMSE is below a threshold and every parameter is inside the
//! physical box (not on its edge).

use crate::model::{Discrete, Params};
use argmin::core::{CostFunction, Error, Executor, State, TerminationReason, TerminationStatus};
use argmin::solver::neldermead::NelderMead;

/// Regularly sampled data for a fit: `ti[k]` measured at `t0 + k·dt_s`
/// (NaN = missing), `inputs[k] = (Ta °C, Φ_h W, I_sol W/m²)` held over
/// `[t_k, t_{k+1})`; `inputs.len() == ti.len() − 1`.
#[derive(Debug, Clone, Default)]
pub struct Dataset {
    /// Sampling step, s.
    pub dt_s: f64,
    /// Room temperature, °C, NaN where missing.
    pub ti: Vec<f64>,
    /// Inputs per step.
    pub inputs: Vec<[f64; 3]>,
}

impl Dataset {
    /// Number of finite `Ti` samples.
    pub fn samples(&self) -> usize {
        self.ti.iter().filter(|v| v.is_finite()).count()
    }

    fn has_sun(&self) -> bool {
        self.inputs.iter().any(|u| u[2] > 1.0)
    }
}

/// The physical box, per parameter `[low, high]`; units as in [`Params`].
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// J/K
    pub c_i: [f64; 2],
    /// J/K
    pub c_e: [f64; 2],
    /// K/W
    pub r_ie: [f64; 2],
    /// K/W
    pub r_ea: [f64; 2],
    /// K/W
    pub r_ia: [f64; 2],
    /// m²
    pub a_w: [f64; 2],
}

impl Default for Bounds {
    /// Wide enough for a flat (C_i ≈ 1e5 J/K) up to a large stone house.
    fn default() -> Self {
        Bounds {
            c_i: [1e5, 1e9],
            c_e: [1e5, 1e10],
            r_ie: [1e-5, 1.0],
            r_ea: [1e-5, 1.0],
            r_ia: [1e-5, 10.0],
            a_w: [1e-3, 100.0],
        }
    }
}

/// Fit settings.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Fit `R_ia` (else keep the initial guess's, `None` = pure TiTe).
    pub fit_r_ia: bool,
    /// Fit a constant heat gain on the air node (internal gains, unmodelled
    /// losses), W, by linear least squares with the initial state.
    pub fit_gain: bool,
    /// Nelder–Mead iterations per run.
    pub max_iters: u64,
    /// Restarts from the best point after the first run.
    pub max_restarts: usize,
    /// A fit with a larger RMSE (°C) is rejected.
    pub max_rmse_c: f64,
    /// The physical box.
    pub bounds: Bounds,
    /// Weak Gaussian prior on the log-parameters, centred on the initial
    /// guess (the last accepted fit): its standard deviation in log units
    /// (`ln 3`: a factor of 3 is one σ). `None` = plain least squares.
    pub prior_sd_log: Option<f64>,
    /// The model-error level the prior is weighed against, °C (the
    /// residual's σ in the MAP criterion `SSE/σ² + Σ(Δ/σ_p)²`).
    pub prior_noise_c: f64,
    /// Prior on the constant gain: centre, W (the last accepted fit's gain;
    /// 0 for a first fit) ...
    pub prior_gain_w: f64,
    /// ... and standard deviation, W (`≤ 0`: no prior).
    pub prior_gain_sd_w: f64,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            fit_r_ia: true,
            fit_gain: true,
            max_iters: 4000,
            max_restarts: 8,
            max_rmse_c: 0.5,
            bounds: Bounds::default(),
            prior_sd_log: Some(3f64.ln()),
            prior_noise_c: 0.1,
            prior_gain_w: 0.0,
            prior_gain_sd_w: 300.0,
        }
    }
}

/// The outcome of [`fit`].
#[derive(Debug, Clone)]
pub struct FitResult {
    /// Fitted parameters.
    pub params: Params,
    /// Root-mean-square output error over the finite samples, °C.
    pub rmse_c: f64,
    /// Nelder–Mead iterations over all runs.
    pub iterations: u64,
    /// The last run stopped on its tolerance, not on the iteration limit.
    pub converged: bool,
    /// Estimated initial state `(Ti0, Te0)`, °C.
    pub x0: [f64; 2],
    /// Simulated state at the window's end `(Ti, Te)`, °C: resets the
    /// observer after a refit.
    pub x_end: [f64; 2],
    /// Finite `Ti` samples used.
    pub samples: usize,
    /// Fitted constant heat gain on the air node, W (0 when not fitted):
    /// seeds the observer's disturbance estimate.
    pub gain_w: f64,
}

impl FitResult {
    /// Whether to accept this fit; the error says why not.
    pub fn check(&self, opts: &FitOptions) -> Result<(), String> {
        if !self.converged {
            return Err(format!(
                "fit did not converge in {} iterations",
                self.iterations
            ));
        }
        if !(self.rmse_c.is_finite() && self.rmse_c <= opts.max_rmse_c) {
            return Err(format!(
                "fit RMSE {:.3} °C above the {:.3} °C limit",
                self.rmse_c, opts.max_rmse_c
            ));
        }
        let b = &opts.bounds;
        let p = &self.params;
        let inside = |name: &str, v: f64, [lo, hi]: [f64; 2]| {
            // Strictly inside, with 1 % margin: a parameter on the box edge
            // means the data pushed it out of the physical range.
            if v.is_finite() && v > lo * 1.01 && v < hi / 1.01 {
                Ok(())
            } else {
                Err(format!(
                    "fitted {name} = {v:.4e} outside its physical range [{lo:.1e}, {hi:.1e}]"
                ))
            }
        };
        inside("C_i (J/K)", p.c_i, b.c_i)?;
        inside("C_e (J/K)", p.c_e, b.c_e)?;
        inside("R_ie (K/W)", p.r_ie, b.r_ie)?;
        inside("R_ea (K/W)", p.r_ea, b.r_ea)?;
        if let Some(r) = p.r_ia {
            inside("R_ia (K/W)", r, b.r_ia)?;
        }
        if p.a_w > 0.0 {
            inside("A_w (m²)", p.a_w, b.a_w)?;
        }
        // A constant gain worth more than 15 K of temperature difference is
        // not a house's internal gains: the model is explaining something
        // else with it.
        let max_gain = 15.0 * p.ua_w_per_k();
        if !(self.gain_w.is_finite() && self.gain_w.abs() <= max_gain) {
            return Err(format!(
                "fitted constant gain {:.0} W beyond ±{max_gain:.0} W (15 K × UA)",
                self.gain_w
            ));
        }
        Ok(())
    }
}

/// Which parameters the search vector holds, in this order: `c_i, c_e,
/// r_ie, r_ea`, then `r_ia` and `a_w` when fitted.
#[derive(Debug, Clone, Copy)]
struct Layout {
    r_ia: bool,
    a_w: bool,
}

impl Layout {
    fn encode(&self, p: &Params) -> Vec<f64> {
        let mut v = vec![p.c_i.ln(), p.c_e.ln(), p.r_ie.ln(), p.r_ea.ln()];
        if self.r_ia {
            v.push(p.r_ia.unwrap_or(1.0).ln());
        }
        if self.a_w {
            v.push(p.a_w.max(1e-2).ln());
        }
        v
    }

    fn decode(&self, v: &[f64], base: &Params) -> Params {
        let mut p = *base;
        p.c_i = v[0].exp();
        p.c_e = v[1].exp();
        p.r_ie = v[2].exp();
        p.r_ea = v[3].exp();
        let mut i = 4;
        if self.r_ia {
            p.r_ia = Some(v[i].exp());
            i += 1;
        }
        if self.a_w {
            p.a_w = v[i].exp();
        }
        p
    }

    /// Distance (in log units) outside the box; 0 inside.
    fn outside(&self, v: &[f64], b: &Bounds) -> f64 {
        let mut boxes = vec![b.c_i, b.c_e, b.r_ie, b.r_ea];
        if self.r_ia {
            boxes.push(b.r_ia);
        }
        if self.a_w {
            boxes.push(b.a_w);
        }
        v.iter()
            .zip(boxes)
            .map(|(x, [lo, hi])| (lo.ln() - x).max(0.0) + (x - hi.ln()).max(0.0))
            .sum()
    }
}

/// Simulated output for given parameters with the best initial state (and
/// constant gain, when fitted).
struct Simulation {
    sse: f64,
    /// The gain prior's term, °C² (in SSE units).
    reg: f64,
    x0: [f64; 2],
    x_end: [f64; 2],
    gain_w: f64,
}

/// Solves the symmetric positive (semi)definite system `M z = r` of size
/// `n ≤ 3` by Gaussian elimination with a tiny relative ridge; `None` if it
/// is singular.
fn solve_sym(mut m: [[f64; 3]; 3], mut r: [f64; 3], n: usize) -> Option<[f64; 3]> {
    let scale: f64 = (0..n).map(|i| m[i][i]).sum();
    for (i, row) in m.iter_mut().enumerate().take(n) {
        row[i] += 1e-12 * scale + 1e-300;
    }
    for c in 0..n {
        let piv = m[c][c];
        if !(piv.is_finite() && piv > 0.0) {
            return None;
        }
        let (row_c, r_c) = (m[c], r[c]);
        for i in c + 1..n {
            let f = m[i][c] / piv;
            for (v, pc) in m[i].iter_mut().zip(row_c).take(n).skip(c) {
                *v -= f * pc;
            }
            r[i] -= f * r_c;
        }
    }
    let mut z = [0.0; 3];
    for i in (0..n).rev() {
        let mut v = r[i];
        for j in i + 1..n {
            v -= m[i][j] * z[j];
        }
        z[i] = v / m[i][i];
    }
    z.iter().all(|v| v.is_finite()).then_some(z)
}

/// Simulates `p` over `data` with the least-squares initial state and, with
/// `gain = Some([centre W, λ °C²/W²])`, the constant heat gain on the air
/// node that minimises `SSE + λ (gain − centre)²` (ridge = Gaussian prior).
fn simulate(p: &Params, data: &Dataset, gain: Option<[f64; 2]>) -> Option<Simulation> {
    let d = Discrete::new(p, data.dt_s)?;
    let n = data.ti.len();
    // Forced response from a zero state, free responses to unit Ti0/Te0 and
    // the response to a unit constant gain: Ti_sim is affine in
    // (Ti0, Te0, gain), so these enter a linear least-squares problem.
    let mut xf = [0.0, 0.0];
    let mut xg = [0.0, 0.0];
    let mut phi = [[1.0, 0.0], [0.0, 1.0]]; // A^k
    let nz = if gain.is_some() { 3 } else { 2 };
    let mut m = [[0.0; 3]; 3];
    let mut rhs = [0.0; 3];
    let mut forced = Vec::with_capacity(n);
    let mut free = Vec::with_capacity(n);
    let mut unit = Vec::with_capacity(n);
    for k in 0..n {
        if k > 0 {
            xf = d.step(xf, data.inputs[k - 1]);
            xg = d.step(xg, [0.0, 1.0, 0.0]);
            phi = mul(d.a, phi);
        }
        forced.push(xf);
        free.push(phi);
        unit.push(xg);
        let y = data.ti[k];
        if y.is_finite() {
            let h = [phi[0][0], phi[0][1], xg[0]];
            let r = y - xf[0];
            for i in 0..nz {
                for j in 0..nz {
                    m[i][j] += h[i] * h[j];
                }
                rhs[i] += h[i] * r;
            }
        }
    }
    let [g0, lambda] = gain.unwrap_or([0.0, 0.0]);
    m[2][2] += lambda;
    rhs[2] += lambda * g0;
    let z = solve_sym(m, rhs, nz)?;
    let ti0 = z[0].clamp(-50.0, 80.0);
    let te0 = z[1].clamp(-50.0, 80.0);
    let gain_w = z[2].clamp(-1e5, 1e5);
    let mut sse = 0.0;
    let mut x_end = [0.0; 2];
    for k in 0..n {
        let (f, ph, g) = (forced[k], free[k], unit[k]);
        let x = [
            f[0] + ph[0][0] * ti0 + ph[0][1] * te0 + g[0] * gain_w,
            f[1] + ph[1][0] * ti0 + ph[1][1] * te0 + g[1] * gain_w,
        ];
        if data.ti[k].is_finite() {
            sse += (x[0] - data.ti[k]).powi(2);
        }
        x_end = x;
    }
    sse.is_finite().then_some(Simulation {
        sse,
        reg: lambda * (gain_w - g0).powi(2),
        x0: [ti0, te0],
        x_end,
        gain_w,
    })
}

fn mul(x: [[f64; 2]; 2], y: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    [
        [
            x[0][0] * y[0][0] + x[0][1] * y[1][0],
            x[0][0] * y[0][1] + x[0][1] * y[1][1],
        ],
        [
            x[1][0] * y[0][0] + x[1][1] * y[1][0],
            x[1][0] * y[0][1] + x[1][1] * y[1][1],
        ],
    ]
}

/// Penalty cost outside the box or for an unusable candidate, in °C².
const PENALTY: f64 = 1e6;

struct Problem<'a> {
    data: &'a Dataset,
    layout: Layout,
    base: Params,
    bounds: Bounds,
    samples: f64,
    gain: Option<[f64; 2]>,
    /// Prior centre (encoded) and weight per squared log unit, °C².
    prior: Option<(Vec<f64>, f64)>,
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    /// Mean squared output error, °C² (never NaN: argmin's Nelder–Mead
    /// sorts the simplex by cost and would panic on NaN).
    fn cost(&self, v: &Vec<f64>) -> Result<f64, Error> {
        let out = self.layout.outside(v, &self.bounds);
        if out > 0.0 || v.iter().any(|x| !x.is_finite()) {
            return Ok(PENALTY * (1.0 + out.min(1e3)));
        }
        let p = self.layout.decode(v, &self.base);
        let reg = self.prior.as_ref().map_or(0.0, |(c, w)| {
            w * v.iter().zip(c).map(|(x, c)| (x - c).powi(2)).sum::<f64>()
        });
        Ok(match simulate(&p, self.data, self.gain) {
            Some(s) => (s.sse + s.reg) / self.samples + reg,
            None => PENALTY,
        })
    }
}

/// Fits the model to `data` from `initial` (also the source of any
/// parameter held out). `None` when the data cannot support a fit (fewer
/// than 8 finite samples, inconsistent lengths, non-finite inputs, invalid
/// initial guess).
pub fn fit(data: &Dataset, initial: &Params, opts: &FitOptions) -> Option<FitResult> {
    let samples = data.samples();
    if samples < 8
        || data.inputs.len() + 1 != data.ti.len()
        || data.inputs.iter().flatten().any(|v| !v.is_finite())
        || !initial.is_valid()
        || !(data.dt_s.is_finite() && data.dt_s > 0.0)
    {
        return None;
    }
    let layout = Layout {
        r_ia: opts.fit_r_ia,
        a_w: data.has_sun(),
    };
    let mut base = *initial;
    if !layout.r_ia && opts.fit_r_ia {
        base.r_ia = None;
    }
    let b = &opts.bounds;
    // Start inside the box.
    let clamp = |v: f64, [lo, hi]: [f64; 2]| v.clamp(lo * 1.1, hi / 1.1);
    base.c_i = clamp(base.c_i, b.c_i);
    base.c_e = clamp(base.c_e, b.c_e);
    base.r_ie = clamp(base.r_ie, b.r_ie);
    base.r_ea = clamp(base.r_ea, b.r_ea);
    if layout.r_ia {
        base.r_ia = Some(clamp(base.r_ia.unwrap_or(0.1), b.r_ia));
    }
    if layout.a_w {
        base.a_w = clamp(base.a_w.max(0.5), b.a_w);
    }
    let gain = opts.fit_gain.then(|| {
        let lambda = if opts.prior_gain_sd_w > 0.0 {
            (opts.prior_noise_c / opts.prior_gain_sd_w).powi(2)
        } else {
            0.0
        };
        [opts.prior_gain_w, lambda]
    });
    let problem = || Problem {
        data,
        layout,
        base,
        bounds: *b,
        samples: samples as f64,
        gain,
        prior: opts.prior_sd_log.filter(|s| *s > 0.0).map(|sd| {
            (
                layout.encode(&base),
                (opts.prior_noise_c / sd).powi(2) / samples as f64,
            )
        }),
    };

    let mut best = layout.encode(&base);
    let mut best_cost = problem().cost(&best).unwrap_or(PENALTY);
    let mut iterations = 0;
    let mut converged = false;
    // Simplex edge, log units: ±35 % first, then smaller around the best.
    let mut size = 0.3;
    for run in 0..=opts.max_restarts {
        let simplex = simplex_around(&best, size);
        let solver = match NelderMead::new(simplex).with_sd_tolerance(1e-13) {
            Ok(s) => s,
            Err(_) => return None,
        };
        let res = match Executor::new(problem(), solver)
            .configure(|s| s.max_iters(opts.max_iters))
            .run()
        {
            Ok(r) => r,
            Err(_) => return None,
        };
        let state = res.state();
        iterations += state.get_iter();
        converged = matches!(
            state.get_termination_status(),
            TerminationStatus::Terminated(TerminationReason::SolverConverged)
        );
        let cost = state.get_best_cost();
        let improved = best_cost - cost;
        if let Some(p) = state.get_best_param()
            && cost <= best_cost
        {
            best = p.clone();
            best_cost = cost;
        }
        // Stop once a restart no longer improves materially.
        if run > 0 && converged && improved <= 1e-9 * best_cost + 1e-15 {
            break;
        }
        size = 0.1;
    }
    let params = layout.decode(&best, &base);
    let sim = simulate(&params, data, gain)?;
    Some(FitResult {
        params,
        rmse_c: (sim.sse / samples as f64).sqrt(),
        iterations,
        converged,
        x0: sim.x0,
        x_end: sim.x_end,
        samples,
        gain_w: sim.gain_w,
    })
}

/// `n + 1` vertices: `x` and `x + size·e_i`, alternating the sign so the
/// simplex straddles the start.
fn simplex_around(x: &[f64], size: f64) -> Vec<Vec<f64>> {
    let mut s = vec![x.to_vec()];
    for i in 0..x.len() {
        let mut v = x.to_vec();
        v[i] += if i % 2 == 0 { size } else { -size };
        s.push(v);
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::house;

    /// Deterministic pseudo-random numbers (xorshift64*), uniform in [0, 1).
    pub(crate) struct Rng(pub u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Standard normal (Box–Muller).
        pub(crate) fn normal(&mut self) -> f64 {
            let u1 = self.next().max(1e-300);
            let u2 = self.next();
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    /// Outdoor temperature, °C, at hour `h`: 4 ± 5 °C, coldest at 04:00.
    pub(crate) fn outdoor(h: f64) -> f64 {
        4.0 - 5.0 * (std::f64::consts::TAU * (h - 4.0) / 24.0).cos()
    }

    /// Clear-ish winter sky: a half-sine bell 08:00–16:00, 400 W/m² peak,
    /// scaled per day.
    pub(crate) fn solar(h: f64) -> f64 {
        let hd = h.rem_euclid(24.0);
        let day = (h / 24.0).floor() as usize;
        let scale = [1.0, 0.4, 0.8, 0.6][day % 4];
        if (8.0..16.0).contains(&hd) {
            400.0 * scale * (std::f64::consts::PI * (hd - 8.0) / 8.0).sin()
        } else {
            0.0
        }
    }

    /// Three days at 15 min of the house under a PRBS valve (holds of
    /// 1–8 steps, levels 0/35/70/100 %, 6 kW at 100 %), starting off
    /// equilibrium (Ti 20 °C, Te 15 °C).
    pub(crate) fn synthetic(p: &Params, noise_c: f64, seed: u64) -> Dataset {
        let dt = 900.0;
        let n = 3 * 96;
        let d = Discrete::new(p, dt).unwrap();
        let mut rng = Rng(seed);
        let mut inputs = Vec::with_capacity(n);
        let mut level = 0.5;
        let mut hold = 0;
        for k in 0..n {
            if hold == 0 {
                level = [0.0, 0.35, 0.7, 1.0][(rng.next() * 4.0) as usize % 4];
                hold = 1 + (rng.next() * 8.0) as usize;
            }
            hold -= 1;
            let h = k as f64 * 0.25;
            inputs.push([outdoor(h), 6000.0 * level, solar(h)]);
        }
        let xs = d.simulate([20.0, 15.0], &inputs);
        let ti = xs.iter().map(|x| x[0] + noise_c * rng.normal()).collect();
        Dataset {
            dt_s: dt,
            ti,
            inputs,
        }
    }

    fn perturbed(p: &Params) -> Params {
        Params {
            c_i: p.c_i * 1.6,
            c_e: p.c_e * 0.6,
            r_ie: p.r_ie * 0.7,
            r_ea: p.r_ea * 1.4,
            r_ia: p.r_ia.map(|r| r * 0.6),
            a_w: p.a_w * 1.5,
        }
    }

    fn rel_errors(got: &Params, want: &Params) -> Vec<(&'static str, f64)> {
        let rel = |a: f64, b: f64| (a - b).abs() / b;
        vec![
            ("c_i", rel(got.c_i, want.c_i)),
            ("c_e", rel(got.c_e, want.c_e)),
            ("r_ie", rel(got.r_ie, want.r_ie)),
            ("r_ea", rel(got.r_ea, want.r_ea)),
            ("r_ia", rel(got.r_ia.unwrap(), want.r_ia.unwrap())),
            ("a_w", rel(got.a_w, want.a_w)),
        ]
    }

    #[test]
    fn recovers_known_parameters_without_noise() {
        let truth = house();
        let data = synthetic(&truth, 0.0, 7);
        let opts = FitOptions::default();
        let r = fit(&data, &perturbed(&truth), &opts).expect("fit runs");
        let errs = rel_errors(&r.params, &truth);
        eprintln!(
            "noise-free: {errs:?} rmse {} iters {}",
            r.rmse_c, r.iterations
        );
        for (name, e) in &errs {
            assert!(
                *e < 0.05,
                "{name} off by {:.1} %: {:?}",
                e * 100.0,
                r.params
            );
        }
        assert!(r.rmse_c < 1e-3, "rmse {}", r.rmse_c);
        assert!((r.x0[1] - 15.0).abs() < 0.2, "Te0 {:?}", r.x0);
        r.check(&opts).expect("accepted");
    }

    #[test]
    fn recovers_known_parameters_with_measurement_noise() {
        let truth = house();
        let noise = 0.05;
        let data = synthetic(&truth, noise, 11);
        let opts = FitOptions::default();
        let r = fit(&data, &perturbed(&truth), &opts).expect("fit runs");
        let errs = rel_errors(&r.params, &truth);
        eprintln!("σ=0.05: {errs:?} rmse {} iters {}", r.rmse_c, r.iterations);
        // The residual is the noise, and the optimiser found a better
        // optimum than the truth itself (so any error left is statistical,
        // not the search stopping early).
        assert!((r.rmse_c - noise).abs() < 0.01, "rmse {}", r.rmse_c);
        let sse = |p: &Params| simulate(p, &data, Some([0.0, 0.0])).unwrap().sse;
        assert!(
            sse(&r.params) <= sse(&truth),
            "stopped above the truth's cost"
        );
        // R_ia (the direct air–outdoor path) is the weakly identifiable one:
        // over 12 noise seeds its error ranged 0.1–7.8 % while the others
        // stayed under 2 %. So: 5 % for all but R_ia, 15 % for R_ia.
        for (name, e) in &errs {
            let tol = if *name == "r_ia" { 0.15 } else { 0.05 };
            assert!(*e < tol, "{name} off by {:.1} %: {:?}", e * 100.0, r.params);
        }
        let ua = (r.params.ua_w_per_k() - truth.ua_w_per_k()).abs() / truth.ua_w_per_k();
        assert!(ua < 0.02, "overall loss off by {:.1} %", ua * 100.0);
        r.check(&opts).expect("accepted");
    }

    /// Internal gains the data do not record (400 W on the air node): the
    /// constant-gain term recovers them and the physical parameters; a fit
    /// without it must explain a steady surplus of heat with the model's
    /// structure and gets the overall loss wrong (here by 12 %; on the
    /// simulated house's closed-loop data `R_ea` ran to its bound instead).
    #[test]
    fn recovers_an_unrecorded_constant_gain() {
        let truth = house();
        let mut data = synthetic(&truth, 0.0, 13);
        let d = Discrete::new(&truth, data.dt_s).unwrap();
        let with_gain: Vec<[f64; 3]> = data
            .inputs
            .iter()
            .map(|u| [u[0], u[1] + 400.0, u[2]])
            .collect();
        data.ti = d
            .simulate([20.0, 15.0], &with_gain)
            .iter()
            .map(|x| x[0])
            .collect();
        // Without the priors the estimate is exact (noise-free data) ...
        let opts = FitOptions {
            prior_sd_log: None,
            prior_gain_sd_w: 0.0,
            ..FitOptions::default()
        };
        let r = fit(&data, &perturbed(&truth), &opts).expect("fit runs");
        eprintln!(
            "with gain: {:?} gain {} rmse {}",
            r.params, r.gain_w, r.rmse_c
        );
        assert!((r.gain_w - 400.0).abs() < 5.0, "gain {}", r.gain_w);
        for (name, e) in rel_errors(&r.params, &truth) {
            assert!(e < 0.05, "{name} off by {:.1} %", e * 100.0);
        }
        r.check(&opts).expect("accepted");
        // ... and the default weak priors (gain centred on 0 W, σ 300 W) pull
        // it by at most a sixth.
        let r = fit(&data, &perturbed(&truth), &FitOptions::default()).expect("fit runs");
        eprintln!("with priors: gain {} rmse {}", r.gain_w, r.rmse_c);
        assert!((r.gain_w - 400.0).abs() < 65.0, "gain {}", r.gain_w);
        let ua = (r.params.ua_w_per_k() - truth.ua_w_per_k()).abs() / truth.ua_w_per_k();
        assert!(ua < 0.05, "UA off by {:.1} %", ua * 100.0);
        let plain = FitOptions {
            fit_gain: false,
            prior_sd_log: None,
            ..opts
        };
        let r = fit(&data, &perturbed(&truth), &plain).expect("fit runs");
        let ua = (r.params.ua_w_per_k() - truth.ua_w_per_k()).abs() / truth.ua_w_per_k();
        eprintln!(
            "without: {:?} rmse {} UA off {:.0} % check {:?}",
            r.params,
            r.rmse_c,
            ua * 100.0,
            r.check(&plain)
        );
        assert!(ua > 0.1 || r.check(&plain).is_err());
    }

    #[test]
    fn rejects_bad_fits_and_bad_data() {
        let truth = house();
        let opts = FitOptions::default();
        // Garbage measurements: no model explains them within 0.5 °C.
        let mut data = synthetic(&truth, 0.0, 3);
        let mut rng = Rng(5);
        for v in &mut data.ti {
            *v = 15.0 + 10.0 * rng.next();
        }
        let r = fit(&data, &truth, &opts).expect("fit runs");
        let e = r.check(&opts).unwrap_err();
        assert!(e.contains("RMSE") || e.contains("outside"), "{e}");
        // Non-finite inputs, too few samples, empty data: no fit at all.
        let mut bad = synthetic(&truth, 0.0, 3);
        bad.inputs[5][0] = f64::NAN;
        assert!(fit(&bad, &truth, &opts).is_none());
        let mut few = synthetic(&truth, 0.0, 3);
        few.ti.iter_mut().skip(5).for_each(|v| *v = f64::NAN);
        assert!(fit(&few, &truth, &opts).is_none());
        assert!(fit(&Dataset::default(), &truth, &opts).is_none());
    }

    #[test]
    fn missing_samples_are_skipped() {
        let truth = house();
        let mut data = synthetic(&truth, 0.0, 9);
        for k in (0..data.ti.len()).step_by(3) {
            data.ti[k] = f64::NAN;
        }
        let r = fit(&data, &perturbed(&truth), &FitOptions::default()).unwrap();
        for (name, e) in rel_errors(&r.params, &truth) {
            assert!(e < 0.05, "{name} off by {:.1} %", e * 100.0);
        }
    }
}
