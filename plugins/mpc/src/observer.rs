//! State observer for the unmeasured envelope temperature `Te` and an
//! unmeasured constant heat disturbance `d` (offset-free MPC).
//!
//! A steady-state Kalman filter on the discrete model augmented with a
//! random-walk disturbance, `x = (Ti, Te, d)`, measurement `y = Ti + v`:
//!
//! ```text
//! (Ti, Te)[k+1] = A (Ti, Te)[k] + B (Ta, Φ_h + d, I_sol)[k]
//! d[k+1]        = d[k] + w_d
//! ```
//!
//! `d` (W) enters the air node like the heater: it stands for everything
//! the fitted model misses as a slowly varying heat flow (internal gains,
//! a window left ajar, a bias in `UA` or in the solar aperture). Each tick
//! predicts with the inputs applied during the elapsed step, then corrects
//! with the innovation `e = y − Ti_pred`: `x += L e`. The gain `L` is the
//! stationary solution of the Riccati recursion for the augmented model
//! with process noise `Q = diag(0.05², 0.01², σ_d²)` (K², K², W² per step;
//! model error on the air node, a tenth of it on the slow envelope, and
//! [`SIGMA_D_W`] for the disturbance's random walk) and measurement noise
//! `R = 0.05²` K²; these are tuning choices, not identified.
//!
//! This is the disturbance model of Pannocchia & Rawlings ("Disturbance
//! models for offset-free model-predictive control", AIChE J. 49 (2003)
//! 426–437) and Maeder, Borrelli & Morari ("Linear offset-free model
//! predictive control", Automatica 45 (2009) 2214–2222): the augmented pair
//! is detectable because the disturbance's steady-state gain on the measured
//! output, `C (I − A)⁻¹ B_Φ = 1/UA`, is not zero; with an integrating
//! disturbance the filter's steady-state innovation is zero, so the
//! predicted `Ti` agrees with the measurement in steady state and a
//! constraint the plan puts on the prediction holds on the room, whatever
//! constant model error there is. The MPC starts from the *measured* `Ti`,
//! the observer's `Te` and holds `d` constant over the horizon
//! ([`crate::qp::Forecast::gain_w`]).
//!
//! After a refit the state is reset from the fit's simulated trajectory
//! (`Te` at the window's end; `Ti` the measurement; `d` the fitted constant
//! gain).

use crate::model::Discrete;
use serde::{Deserialize, Serialize};

/// Process noise variances per step, K² (air, envelope).
pub const Q: [f64; 2] = [0.05 * 0.05, 0.01 * 0.01];
/// Measurement noise variance, K².
pub const R: f64 = 0.05 * 0.05;
/// Standard deviation of the disturbance's random walk per step, W: with
/// the other noises above, a step change of the disturbance is tracked with
/// a time constant of a few hours (see the tests), slower than the room's
/// fast mode so the filter does not mistake a heater pulse for it.
pub const SIGMA_D_W: f64 = 15.0;
/// Bound on `|d|`, as a multiple of the heater's power: the estimate is a
/// correction, not a second heater.
pub const D_MAX_HEATERS: f64 = 1.0;

/// The estimated state and when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observer {
    /// Room air, °C.
    pub ti: f64,
    /// Envelope, °C.
    pub te: f64,
    /// ms since epoch.
    pub t_ms: i64,
    /// Constant heat disturbance on the air node, W (absent in state saved
    /// before it existed: 0).
    #[serde(default)]
    pub d_w: f64,
}

type M3 = [[f64; 3]; 3];

/// Stationary Kalman gain `(L_Ti, L_Te, L_d)` for the model `d` augmented
/// with the disturbance (iterated Riccati recursion, at most 5000 steps;
/// 3×3, so cheap). Units: 1, 1, W/K.
pub fn gain(d: &Discrete) -> [f64; 3] {
    // Augmented A: [[A, b_Φ], [0, 1]].
    let a: M3 = [
        [d.a[0][0], d.a[0][1], d.b[0][1]],
        [d.a[1][0], d.a[1][1], d.b[1][1]],
        [0.0, 0.0, 1.0],
    ];
    let mut p: M3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1e6]];
    let mut k = [0.0; 3];
    for _ in 0..5000 {
        // predict: P = A P Aᵀ + Q
        let mut ap = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                ap[i][j] = (0..3).map(|m| a[i][m] * p[m][j]).sum();
            }
        }
        let mut pp = [[0.0; 3]; 3];
        for i in 0..3 {
            for j in 0..3 {
                pp[i][j] = (0..3).map(|m| ap[i][m] * a[j][m]).sum();
            }
        }
        pp[0][0] += Q[0];
        pp[1][1] += Q[1];
        pp[2][2] += SIGMA_D_W * SIGMA_D_W;
        // update with C = (1, 0, 0)
        let s = pp[0][0] + R;
        let new_k = [pp[0][0] / s, pp[1][0] / s, pp[2][0] / s];
        for i in 0..3 {
            for j in 0..3 {
                p[i][j] = pp[i][j] - new_k[i] * pp[0][j];
            }
        }
        let done = (0..3).all(|i| (new_k[i] - k[i]).abs() <= 1e-12 * (1.0 + new_k[i].abs()));
        k = new_k;
        if done {
            break;
        }
    }
    if k.iter().all(|v| v.is_finite()) {
        k
    } else {
        [1.0, 0.0, 0.0]
    }
}

impl Observer {
    /// Predicts over the step `d` with inputs `u = (Ta, Φ_h, I_sol)` (the
    /// disturbance estimate is added to `Φ_h`) and corrects with the
    /// measured `Ti` (`None`: prediction only). `|d|` is kept within
    /// `d_max_w`.
    pub fn update(
        &mut self,
        d: &Discrete,
        u: [f64; 3],
        y: Option<f64>,
        l: [f64; 3],
        d_max_w: f64,
        t_ms: i64,
    ) {
        let x = d.step([self.ti, self.te], [u[0], u[1] + self.d_w, u[2]]);
        let (mut ti, mut te, mut dw) = (x[0], x[1], self.d_w);
        if let Some(y) = y.filter(|v| v.is_finite()) {
            let e = y - ti;
            ti += l[0] * e;
            te += l[1] * e;
            dw += l[2] * e;
        }
        if ti.is_finite() && te.is_finite() && dw.is_finite() {
            self.ti = ti;
            self.te = te;
            self.d_w = dw.clamp(-d_max_w.abs(), d_max_w.abs());
        }
        self.t_ms = t_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::house;

    /// Started 4 K off in `Te`, the observer converges to the true envelope
    /// temperature from `Ti` measurements alone.
    #[test]
    fn converges_to_the_true_envelope_temperature() {
        let d = Discrete::new(&house(), 900.0).unwrap();
        let l = gain(&d);
        assert!(
            l[0] > 0.5 && l[0] <= 1.0 && l[1] > 0.0 && l[2] > 0.0,
            "{l:?}"
        );
        let mut truth = [20.0, 16.0];
        let mut obs = Observer {
            ti: 20.0,
            te: 12.0,
            t_ms: 0,
            d_w: 0.0,
        };
        for k in 0..800 {
            let u = [2.0, if (k / 8) % 2 == 0 { 6000.0 } else { 0.0 }, 0.0];
            truth = d.step(truth, u);
            obs.update(&d, u, Some(truth[0]), l, 6000.0, k * 900_000);
        }
        assert!((obs.te - truth[1]).abs() < 0.05, "{obs:?} vs {truth:?}");
        assert!((obs.ti - truth[0]).abs() < 0.01);
        assert!(obs.d_w.abs() < 5.0, "no disturbance: {obs:?}");
        // A NaN measurement is ignored, the state stays finite.
        obs.update(&d, [2.0, 0.0, 0.0], Some(f64::NAN), l, 6000.0, 0);
        assert!(obs.ti.is_finite() && obs.te.is_finite());
    }

    /// A constant unmodelled loss of 400 W (a window ajar) is estimated as
    /// `d ≈ −400 W` within a day, and the one-step prediction error then
    /// vanishes (no steady offset).
    #[test]
    fn estimates_a_constant_disturbance() {
        let d = Discrete::new(&house(), 900.0).unwrap();
        let l = gain(&d);
        let mut truth = [20.0, 17.0];
        let mut obs = Observer {
            ti: 20.0,
            te: 17.0,
            t_ms: 0,
            d_w: 0.0,
        };
        let mut last_err = f64::NAN;
        let mut settled_at = None;
        for k in 0..(4 * 96) {
            let u = [2.0, if (k / 8) % 2 == 0 { 4000.0 } else { 1000.0 }, 0.0];
            truth = d.step(truth, [u[0], u[1] - 400.0, u[2]]);
            let pred = d.step([obs.ti, obs.te], [u[0], u[1] + obs.d_w, u[2]]);
            last_err = truth[0] - pred[0];
            obs.update(&d, u, Some(truth[0]), l, 6000.0, k * 900_000);
            if settled_at.is_none() && (obs.d_w + 400.0).abs() < 40.0 {
                settled_at = Some(k);
            }
        }
        eprintln!("gain {l:?}; |d+400| < 40 W after {settled_at:?} steps; {obs:?}");
        assert!((obs.d_w + 400.0).abs() < 10.0, "{obs:?}");
        assert!(settled_at.is_some_and(|k| k < 96), "{settled_at:?}");
        assert!(last_err.abs() < 1e-3, "one-step error {last_err}");
    }
}
