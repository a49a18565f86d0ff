//! State observer for the unmeasured envelope temperature `Te`.
//!
//! A steady-state Kalman filter on the discrete model (`x = (Ti, Te)`,
//! measurement `y = Ti + v`): each tick predicts with the inputs applied
//! during the elapsed step, then corrects with the innovation
//! `e = y − Ti_pred`: `Ti += L₀ e`, `Te += L₁ e`. The gain `L` is the
//! stationary solution of the Riccati recursion for the model's `A` with
//! process noise `Q = diag(0.05², 0.01²)` K² per step (model error on the air
//! node, a tenth of it on the slow envelope) and measurement noise
//! `R = 0.05²` K²; these are tuning choices, not identified. With `R` this
//! small `L₀` is close to 1: `Ti` follows the sensor, `Te` moves by the
//! correlated share of the surprise. The MPC starts from the *measured* `Ti`
//! and the observer's `Te`.
//!
//! After a refit the state is reset from the fit's simulated trajectory
//! (`Te` at the window's end; `Ti` the measurement).

use crate::model::Discrete;
use serde::{Deserialize, Serialize};

/// Process noise variances per step, K².
pub const Q: [f64; 2] = [0.05 * 0.05, 0.01 * 0.01];
/// Measurement noise variance, K².
pub const R: f64 = 0.05 * 0.05;

/// The estimated state and when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Observer {
    /// Room air, °C.
    pub ti: f64,
    /// Envelope, °C.
    pub te: f64,
    /// ms since epoch.
    pub t_ms: i64,
}

/// Stationary Kalman gain for `d` (iterated Riccati recursion, at most 2000
/// steps; 2×2, so cheap).
pub fn gain(d: &Discrete) -> [f64; 2] {
    let a = d.a;
    let mut p = [[1.0, 0.0], [0.0, 1.0]];
    let mut k = [0.0; 2];
    for _ in 0..2000 {
        // predict: P = A P Aᵀ + Q
        let ap = [
            [
                a[0][0] * p[0][0] + a[0][1] * p[1][0],
                a[0][0] * p[0][1] + a[0][1] * p[1][1],
            ],
            [
                a[1][0] * p[0][0] + a[1][1] * p[1][0],
                a[1][0] * p[0][1] + a[1][1] * p[1][1],
            ],
        ];
        let mut pp = [[0.0; 2]; 2];
        for (i, row) in pp.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = ap[i][0] * a[j][0] + ap[i][1] * a[j][1];
            }
        }
        pp[0][0] += Q[0];
        pp[1][1] += Q[1];
        // update with C = (1, 0)
        let s = pp[0][0] + R;
        let new_k = [pp[0][0] / s, pp[1][0] / s];
        p = [
            [(1.0 - new_k[0]) * pp[0][0], (1.0 - new_k[0]) * pp[0][1]],
            [
                pp[1][0] - new_k[1] * pp[0][0],
                pp[1][1] - new_k[1] * pp[0][1],
            ],
        ];
        let done = (new_k[0] - k[0]).abs() < 1e-12 && (new_k[1] - k[1]).abs() < 1e-12;
        k = new_k;
        if done {
            break;
        }
    }
    if k.iter().all(|v| v.is_finite()) {
        k
    } else {
        [1.0, 0.0]
    }
}

impl Observer {
    /// Predicts over the step `d` with inputs `u = (Ta, Φ_h, I_sol)` and
    /// corrects with the measured `Ti` (`None`: prediction only).
    pub fn update(&mut self, d: &Discrete, u: [f64; 3], y: Option<f64>, l: [f64; 2], t_ms: i64) {
        let x = d.step([self.ti, self.te], u);
        let (mut ti, mut te) = (x[0], x[1]);
        if let Some(y) = y.filter(|v| v.is_finite()) {
            let e = y - ti;
            ti += l[0] * e;
            te += l[1] * e;
        }
        if ti.is_finite() && te.is_finite() {
            self.ti = ti;
            self.te = te;
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
        assert!(l[0] > 0.5 && l[0] <= 1.0 && l[1] > 0.0, "{l:?}");
        let mut truth = [20.0, 16.0];
        let mut obs = Observer {
            ti: 20.0,
            te: 12.0,
            t_ms: 0,
        };
        for k in 0..400 {
            let u = [2.0, if (k / 8) % 2 == 0 { 6000.0 } else { 0.0 }, 0.0];
            truth = d.step(truth, u);
            obs.update(&d, u, Some(truth[0]), l, k * 900_000);
        }
        assert!((obs.te - truth[1]).abs() < 0.05, "{obs:?} vs {truth:?}");
        assert!((obs.ti - truth[0]).abs() < 0.01);
        // A NaN measurement is ignored, the state stays finite.
        obs.update(&d, [2.0, 0.0, 0.0], Some(f64::NAN), l, 0);
        assert!(obs.ti.is_finite() && obs.te.is_finite());
    }
}
