//! Grey-box two-state "TiTe" heat model of a building and its exact
//! zero-order-hold discretisation.
//!
//! Source: P. Bacher, H. Madsen, "Identifying suitable models for the heat
//! dynamics of buildings", Energy and Buildings 43 (2011) 1511–1522, model
//! `TiTe`, extended with an optional direct air–outdoor conductance `1/R_ia`
//! (infiltration, windows):
//!
//! ```text
//! C_i dTi/dt = (Te − Ti)/R_ie + (Ta − Ti)/R_ia + Φ_h + A_w·I_sol
//! C_e dTe/dt = (Ti − Te)/R_ie + (Ta − Te)/R_ea
//! ```
//!
//! - `Ti` room air °C (measured), `Te` envelope / thermal mass °C (not
//!   measured), `Ta` outdoor air °C;
//! - `Φ_h` heating power W (valve fraction × `heater_w`), `I_sol` global
//!   horizontal irradiance W/m², `A_w` effective solar aperture m²;
//! - capacities `C` in **J/K** (1 kWh/K = 3.6e6 J/K), resistances `R` in
//!   **K/W** (a house losing 180 W/K overall has `R ≈ 0.0056 K/W`).
//!
//! Identifiability (Ti measured, inputs Ta, Φ_h, I_sol known, Φ_h in absolute
//! watts): the transfer function Φ_h → Ti is `(C_e s + g_ie + g_ea) / den(s)`
//! with `den` of degree 2: five coefficients determine `C_e`, `C_i`,
//! `g_ie + g_ea`, `g_ie + g_ia` and `g_ie` (the positive root of the constant
//! term), hence all of `C_i, C_e, R_ie, R_ea, R_ia`; `A_w` is the ratio of the
//! I_sol → Ti and Φ_h → Ti gains. All six are therefore *structurally*
//! identifiable. In practice the split between `R_ia` (direct) and `R_ea`
//! (through the envelope) rests on the fast part of the response and is the
//! weakest; [`crate::fit`] fits `R_ia` by default and can hold it out (pure
//! Bacher & Madsen TiTe, `r_ia = None`), with a weak prior towards the
//! last good fit. `A_w` is held out when the window has no sunshine (it is
//! then not identifiable at all). Heat the inputs do not record (internal
//! gains) is not a parameter of this model but a constant input on the air
//! node, fitted with the initial state and then tracked as a disturbance by
//! [`crate::observer`].

use serde::{Deserialize, Serialize};

/// Physical parameters of the TiTe model. Units in the field docs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Heat capacity of the room air and furnishings, J/K.
    pub c_i: f64,
    /// Heat capacity of the envelope / building mass, J/K.
    pub c_e: f64,
    /// Resistance between room air and envelope, K/W.
    pub r_ie: f64,
    /// Resistance between envelope and outdoor air, K/W.
    pub r_ea: f64,
    /// Direct resistance between room air and outdoor air (infiltration,
    /// windows), K/W; `None` (or absent in JSON) = no direct path, the
    /// original TiTe of Bacher & Madsen.
    #[serde(default)]
    pub r_ia: Option<f64>,
    /// Effective solar aperture, m² (W of heat per W/m² of global
    /// horizontal irradiance).
    #[serde(default)]
    pub a_w: f64,
}

impl Params {
    /// `1/R_ia` in W/K (0 without a direct path).
    pub fn g_ia(&self) -> f64 {
        self.r_ia.map_or(0.0, |r| 1.0 / r)
    }

    /// Overall steady-state loss coefficient, W/K: `1/(R_ie+R_ea) + 1/R_ia`.
    pub fn ua_w_per_k(&self) -> f64 {
        1.0 / (self.r_ie + self.r_ea) + self.g_ia()
    }

    /// Every value finite and positive (`a_w` may be 0, `r_ia` absent).
    pub fn is_valid(&self) -> bool {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        pos(self.c_i)
            && pos(self.c_e)
            && pos(self.r_ie)
            && pos(self.r_ea)
            && self.r_ia.is_none_or(pos)
            && self.a_w.is_finite()
            && self.a_w >= 0.0
    }

    /// The continuous-time matrices `dx/dt = Ac x + Bc u`, `x = (Ti, Te)`,
    /// `u = (Ta °C, Φ_h W, I_sol W/m²)`; units 1/s and K/s per input unit.
    pub fn continuous(&self) -> ([[f64; 2]; 2], [[f64; 3]; 2]) {
        let g_ie = 1.0 / self.r_ie;
        let g_ea = 1.0 / self.r_ea;
        let g_ia = self.g_ia();
        let a = [
            [-(g_ie + g_ia) / self.c_i, g_ie / self.c_i],
            [g_ie / self.c_e, -(g_ie + g_ea) / self.c_e],
        ];
        let b = [
            [g_ia / self.c_i, 1.0 / self.c_i, self.a_w / self.c_i],
            [g_ea / self.c_e, 0.0, 0.0],
        ];
        (a, b)
    }

    /// The two time constants of the model, h (slow first).
    pub fn time_constants_h(&self) -> (f64, f64) {
        let (a, _) = self.continuous();
        let s = 0.5 * (a[0][0] + a[1][1]);
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        let q = (s * s - det).max(0.0).sqrt();
        let (l1, l2) = (s + q, s - q); // both negative for valid parameters
        (-1.0 / l1 / 3600.0, -1.0 / l2 / 3600.0)
    }
}

/// The model discretised for a step `dt_s` with zero-order hold on the
/// inputs: `x[k+1] = A x[k] + B u[k]`, `x = (Ti, Te)` °C,
/// `u = (Ta °C, Φ_h W, I_sol W/m²)` held over `[t_k, t_k + dt)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Discrete {
    /// State transition, dimensionless.
    pub a: [[f64; 2]; 2],
    /// Input matrix: K per (°C, W, W/m²).
    pub b: [[f64; 3]; 2],
    /// The step, s.
    pub dt_s: f64,
}

impl Discrete {
    /// Exact ZOH discretisation: `A = e^{Ac·dt}`, `B = Ac⁻¹ (A − I) Bc`
    /// (`Ac` is invertible for valid parameters: its determinant is
    /// `(g_ie g_ea + g_ie g_ia + g_ia g_ea)/(C_i C_e) > 0`). `None` for
    /// invalid parameters or step.
    pub fn new(p: &Params, dt_s: f64) -> Option<Discrete> {
        if !p.is_valid() || !dt_s.is_finite() || dt_s <= 0.0 {
            return None;
        }
        let (ac, bc) = p.continuous();
        let m = scale(ac, dt_s);
        let a = expm2(m);
        // Φ₁ = ∫₀^dt e^{Ac τ} dτ = Ac⁻¹ (e^{Ac dt} − I)
        let det = ac[0][0] * ac[1][1] - ac[0][1] * ac[1][0];
        let phi1 = if det.abs() * dt_s * dt_s > 1e-12 {
            let inv = [
                [ac[1][1] / det, -ac[0][1] / det],
                [-ac[1][0] / det, ac[0][0] / det],
            ];
            let am_i = [[a[0][0] - 1.0, a[0][1]], [a[1][0], a[1][1] - 1.0]];
            mul2(inv, am_i)
        } else {
            // Nearly singular: Φ₁ ≈ dt (I + M/2 + M²/6).
            let m2 = mul2(m, m);
            let mut r = [[0.0; 2]; 2];
            for i in 0..2 {
                for j in 0..2 {
                    let id = if i == j { 1.0 } else { 0.0 };
                    r[i][j] = dt_s * (id + m[i][j] / 2.0 + m2[i][j] / 6.0);
                }
            }
            r
        };
        let mut b = [[0.0; 3]; 2];
        for (i, row) in b.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = phi1[i][0] * bc[0][j] + phi1[i][1] * bc[1][j];
            }
        }
        let d = Discrete { a, b, dt_s };
        d.is_finite().then_some(d)
    }

    fn is_finite(&self) -> bool {
        self.a.iter().flatten().all(|v| v.is_finite())
            && self.b.iter().flatten().all(|v| v.is_finite())
    }

    /// One step from `x` with inputs `u = (Ta, Φ_h, I_sol)`.
    pub fn step(&self, x: [f64; 2], u: [f64; 3]) -> [f64; 2] {
        let mut y = [0.0; 2];
        for (i, yi) in y.iter_mut().enumerate() {
            *yi = self.a[i][0] * x[0]
                + self.a[i][1] * x[1]
                + self.b[i][0] * u[0]
                + self.b[i][1] * u[1]
                + self.b[i][2] * u[2];
        }
        y
    }

    /// The states `x[0] = x0, x[1], …, x[n]` under `inputs[0..n]`.
    pub fn simulate(&self, x0: [f64; 2], inputs: &[[f64; 3]]) -> Vec<[f64; 2]> {
        let mut xs = Vec::with_capacity(inputs.len() + 1);
        let mut x = x0;
        xs.push(x);
        for u in inputs {
            x = self.step(x, *u);
            xs.push(x);
        }
        xs
    }
}

fn scale(m: [[f64; 2]; 2], k: f64) -> [[f64; 2]; 2] {
    [[m[0][0] * k, m[0][1] * k], [m[1][0] * k, m[1][1] * k]]
}

fn mul2(x: [[f64; 2]; 2], y: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    let mut r = [[0.0; 2]; 2];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = x[i][0] * y[0][j] + x[i][1] * y[1][j];
        }
    }
    r
}

/// `e^M` for a real 2×2 matrix, closed form (Cayley–Hamilton / Sylvester):
/// with `s = tr M / 2`, `q² = s² − det M`, `N = M − sI`,
/// `e^M = e^s (cosh q · I + sinh q / q · N)` (cos/sin for `q² < 0`).
/// Written with `e^{s±q}` separately so that stiff matrices (large `|s|`,
/// `q ≈ |s|`) do not overflow to `0·∞`.
pub fn expm2(m: [[f64; 2]; 2]) -> [[f64; 2]; 2] {
    let s = 0.5 * (m[0][0] + m[1][1]);
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let q2 = s * s - det;
    let n = [[m[0][0] - s, m[0][1]], [m[1][0], m[1][1] - s]];
    let (c, sq) = if q2.abs() < 1e-16 * (1.0 + s * s) {
        // Repeated eigenvalue: e^s (I + N)  (N² = 0).
        let e = s.exp();
        (e, e)
    } else if q2 > 0.0 {
        let q = q2.sqrt();
        let (e1, e2) = ((s + q).exp(), (s - q).exp());
        // e^s cosh q, e^s sinh q / q
        (0.5 * (e1 + e2), 0.5 * (e1 - e2) / q)
    } else {
        let q = (-q2).sqrt();
        let e = s.exp();
        (e * q.cos(), e * q.sin() / q)
    };
    [
        [c + sq * n[0][0], sq * n[0][1]],
        [sq * n[1][0], c + sq * n[1][1]],
    ]
}

/// Test fixture: a plausible detached house, ≈179 W/K overall, time
/// constants ≈50 h and ≈1.6 h.
#[cfg(test)]
pub(crate) fn house() -> Params {
    Params {
        c_i: 4.0e6,
        c_e: 4.0e7,
        r_ie: 1.5e-3,
        r_ea: 5.0e-3,
        r_ia: Some(0.04),
        a_w: 3.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expm_matches_series() {
        for m in [
            [[-0.3, 0.1], [0.05, -0.02]],
            [[0.0, 1.0], [-1.0, 0.0]],  // rotation: complex eigenvalues
            [[-0.5, 0.0], [0.0, -0.5]], // repeated
            [[0.2, 1.0], [0.0, 0.2]],   // Jordan block
        ] {
            // Taylor with scaling and squaring as the reference.
            let k = 10;
            let ms = scale(m, 1.0 / f64::from(1 << k));
            let mut term = [[1.0, 0.0], [0.0, 1.0]];
            let mut sum = term;
            for i in 1..20 {
                term = scale(mul2(term, ms), 1.0 / f64::from(i));
                for r in 0..2 {
                    for c in 0..2 {
                        sum[r][c] += term[r][c];
                    }
                }
            }
            for _ in 0..k {
                sum = mul2(sum, sum);
            }
            let e = expm2(m);
            for r in 0..2 {
                for c in 0..2 {
                    assert!(
                        (e[r][c] - sum[r][c]).abs() < 1e-10,
                        "{m:?}: {e:?} vs {sum:?}"
                    );
                }
            }
        }
        // Stiff: no NaN.
        let e = expm2([[-2000.0, 1.0], [1.0, -1.0]]);
        assert!(e.iter().flatten().all(|v| v.is_finite()), "{e:?}");
    }

    #[test]
    fn zoh_step_matches_fine_integration() {
        let p = house();
        let dt = 900.0;
        let d = Discrete::new(&p, dt).unwrap();
        let (ac, bc) = p.continuous();
        let u = [3.0, 4500.0, 250.0];
        let x0 = [20.5, 16.0];
        // RK4 with 1 s steps
        let f = |x: [f64; 2]| {
            let mut dx = [0.0; 2];
            for i in 0..2 {
                dx[i] = ac[i][0] * x[0]
                    + ac[i][1] * x[1]
                    + bc[i][0] * u[0]
                    + bc[i][1] * u[1]
                    + bc[i][2] * u[2];
            }
            dx
        };
        let mut x = x0;
        let h = 1.0;
        for _ in 0..900 {
            let k1 = f(x);
            let k2 = f([x[0] + h / 2.0 * k1[0], x[1] + h / 2.0 * k1[1]]);
            let k3 = f([x[0] + h / 2.0 * k2[0], x[1] + h / 2.0 * k2[1]]);
            let k4 = f([x[0] + h * k3[0], x[1] + h * k3[1]]);
            for i in 0..2 {
                x[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
            }
        }
        let y = d.step(x0, u);
        assert!(
            (y[0] - x[0]).abs() < 1e-9 && (y[1] - x[1]).abs() < 1e-9,
            "{y:?} vs {x:?}"
        );
    }

    #[test]
    fn steady_state_and_time_constants() {
        let p = house();
        let d = Discrete::new(&p, 900.0).unwrap();
        // 10 °C outside, 1790 W heating: steady state 10 °C above outside.
        let phi = 10.0 * p.ua_w_per_k();
        let mut x = [0.0, 0.0];
        for _ in 0..20_000 {
            x = d.step(x, [10.0, phi, 0.0]);
        }
        assert!((x[0] - 20.0).abs() < 1e-6, "{x:?}");
        let (slow, fast) = p.time_constants_h();
        assert!(
            slow > 20.0 && slow < 80.0 && fast > 0.5 && fast < 5.0,
            "{slow} {fast}"
        );
        assert!((p.ua_w_per_k() - 178.85).abs() < 0.1);
    }

    #[test]
    fn invalid_parameters_are_refused() {
        let mut p = house();
        p.c_i = f64::NAN;
        assert!(Discrete::new(&p, 900.0).is_none());
        let mut p = house();
        p.r_ia = Some(-1.0);
        assert!(Discrete::new(&p, 900.0).is_none());
        assert!(Discrete::new(&house(), 0.0).is_none());
        // Without the direct path the model is still well-posed.
        let mut p = house();
        p.r_ia = None;
        assert!(Discrete::new(&p, 900.0).is_some());
    }
}
