//! The PI law, pure: no host calls, so it compiles and is tested natively.
//!
//! Sign convention (a cooling loop): `e = room − setpoint`, positive when the
//! room is too warm; a warmer room must lower the AC's target:
//!
//! ```text
//! u = setpoint − (Kp·e + I),   I = Ki·∫e dt   (the integral term, °C)
//! target = clamp(u, u_min, u_max)
//! ```
//!
//! The integral *term* `I` (°C) is what is stored, not `∫e dt`: a change of
//! `Ki` then does not move the output (Åström & Hägglund, "Advanced PID
//! Control", 2006, §3.5 on parameter changes).
//!
//! Anti-windup by conditional integration (Åström & Hägglund 2006, §3.5
//! "Windup"; Åström & Murray, "Feedback Systems", §10.4): the integrator is
//! held while the output is saturated and the error would drive it further
//! into saturation, and `I` is bounded to `[setpoint − u_max, setpoint − u_min]`,
//! the values for which the output at zero error is reachable. Chosen over
//! back-calculation because the saturation here is our own clamp (known
//! exactly, no measured actuator to track), it needs no tracking time
//! constant `Tt` to tune, and it does not feed the 1 °C rounding of the IR
//! command back into the integrator (tracking the rounded output would make
//! the quantisation error a windup source of its own).

/// Gains and output limits of the PI law.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gains {
    /// Proportional gain, °C of AC target per °C of room error.
    pub kp: f64,
    /// Integral gain, °C of AC target per (°C of room error · s), i.e. 1/s;
    /// the integral time is `Ti = kp / ki` s.
    pub ki: f64,
    /// Lowest AC target, °C.
    pub u_min: f64,
    /// Highest AC target, °C.
    pub u_max: f64,
}

/// One step of the law, every term exposed for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    /// `e = room − setpoint`, °C.
    pub error: f64,
    /// Proportional term `Kp·e`, °C.
    pub p: f64,
    /// Integral term after this step, °C (the state to keep).
    pub integral: f64,
    /// AC target before the clamp, °C.
    pub unclamped: f64,
    /// AC target clamped to `[u_min, u_max]`, °C (not yet rounded).
    pub target: f64,
    /// The integrator was held this step (saturated, or no time passed).
    pub held: bool,
}

impl Gains {
    /// Bounds of the integral term for `setpoint`, °C.
    pub fn integral_bounds(&self, setpoint: f64) -> (f64, f64) {
        (setpoint - self.u_max, setpoint - self.u_min)
    }

    /// Advances the law by `dt_s` seconds from the integral term `integral`
    /// (°C; a non-finite or out-of-bounds value, e.g. restored from another
    /// setpoint, is brought into bounds first).
    pub fn step(&self, setpoint: f64, room: f64, integral: f64, dt_s: f64) -> Step {
        let (lo, hi) = self.integral_bounds(setpoint);
        let i0 = if integral.is_finite() {
            integral.clamp(lo, hi)
        } else {
            0.0_f64.clamp(lo, hi)
        };
        let error = room - setpoint;
        let p = self.kp * error;
        let before = setpoint - p - i0;
        // Integrating e > 0 lowers u; e < 0 raises it.
        let deeper = (before <= self.u_min && error > 0.0) || (before >= self.u_max && error < 0.0);
        let held = deeper || dt_s <= 0.0 || !dt_s.is_finite();
        let integral = if held {
            i0
        } else {
            (i0 + self.ki * error * dt_s).clamp(lo, hi)
        };
        let unclamped = setpoint - p - integral;
        Step {
            error,
            p,
            integral,
            unclamped,
            target: unclamped.clamp(self.u_min, self.u_max),
            held,
        }
    }
}

/// Hysteresis of [`quantize`], as a fraction of a step: the commanded target
/// moves only once the PI output is ¾ of a step away from it, so an output
/// hovering near a rounding boundary does not toggle the AC every period.
pub const QUANTIZE_HYSTERESIS: f64 = 0.25;

/// Rounds the PI output `u` (°C) to the AC's `step` (°C; 1 for most IR
/// ACs), keeping the `last` commanded value while `u` is within
/// `step · (½ + QUANTIZE_HYSTERESIS)` of it, and clamps into `[u_min, u_max]`.
pub fn quantize(u: f64, step: f64, last: Option<f64>, u_min: f64, u_max: f64) -> f64 {
    if let Some(last) = last.filter(|l| l.is_finite() && (u_min..=u_max).contains(l))
        && (u - last).abs() < step * (0.5 + QUANTIZE_HYSTERESIS)
    {
        return last;
    }
    let rounded = if step > 0.0 {
        (u / step).round() * step
    } else {
        u
    };
    rounded.clamp(u_min, u_max)
}

/// Seconds since the previous tick for the integrator: 0 on the first tick
/// or if the clock went backwards, at most `max_s` (a gap — a restart, a
/// paused host — is not integrated as one long step).
pub fn dt_s(last_ms: Option<i64>, now_ms: i64, max_s: f64) -> f64 {
    match last_ms {
        Some(last) if now_ms > last => ((now_ms - last) as f64 / 1000.0).min(max_s),
        _ => 0.0,
    }
}

/// Whether a keep-alive re-send is due: `keep_alive_s` (s; 0 disables) has
/// passed since `last_sent_ms`, or nothing was ever sent.
pub fn keep_alive_due(last_sent_ms: Option<i64>, now_ms: i64, keep_alive_s: f64) -> bool {
    let period_ms = (keep_alive_s * 1000.0) as i64;
    period_ms > 0 && last_sent_ms.is_none_or(|t| now_ms - t >= period_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Gains = Gains {
        kp: 1.0,
        ki: 0.001,
        u_min: 16.0,
        u_max: 30.0,
    };

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn at_the_setpoint_with_no_integral_the_ac_gets_the_setpoint() {
        let s = G.step(24.0, 24.0, 0.0, 30.0);
        assert!(close(s.target, 24.0) && close(s.integral, 0.0) && !s.held);
    }

    #[test]
    fn proportional_term_lowers_the_target_when_too_warm() {
        let g = Gains { ki: 0.0, ..G };
        let s = g.step(24.0, 26.0, 0.0, 30.0);
        assert!(close(s.error, 2.0) && close(s.p, 2.0));
        assert!(close(s.target, 22.0));
        let s = g.step(24.0, 23.0, 0.0, 30.0);
        assert!(close(s.target, 25.0), "too cold raises it");
    }

    #[test]
    fn integral_accumulates_ki_e_dt() {
        let mut i = 0.0;
        for _ in 0..10 {
            i = G.step(24.0, 25.0, i, 30.0).integral;
        }
        assert!(close(i, 10.0 * 0.001 * 1.0 * 30.0));
        let s = G.step(24.0, 25.0, i, 0.0);
        assert!(s.held, "no time, no integration");
        assert!(close(s.target, 24.0 - 1.0 - 0.3));
    }

    #[test]
    fn saturated_low_holds_the_integrator_and_recovers_at_once() {
        // 35 °C: u = 24 − 11 = 13 < 16 → saturated; e > 0 would wind up.
        let mut i = 0.0;
        for _ in 0..1000 {
            let s = G.step(24.0, 35.0, i, 30.0);
            assert!(s.held && close(s.target, 16.0));
            i = s.integral;
        }
        assert!(close(i, 0.0), "no windup: {i}");
        // Back near the setpoint the output follows the P term at once.
        let s = G.step(24.0, 24.5, i, 30.0);
        assert!(!s.held);
        assert!((s.target - 23.5).abs() < 0.02, "{}", s.target);

        // A naive integrator would have wound up to its bound and kept
        // the AC at 16 °C long after the room recovered.
        let naive = (0..1000).fold(0.0, |i, _| i + G.ki * 11.0 * 30.0);
        assert!(24.0 - 0.5 - naive < 16.0);
    }

    #[test]
    fn saturated_but_error_pulling_back_integrates() {
        // Integral at its upper bound (24 − 16 = 8): u = 16, saturated low;
        // the room is cold (e < 0), which drives u back up: integrate.
        let g = Gains { kp: 0.0, ..G };
        let s = g.step(24.0, 23.0, 8.0, 30.0);
        assert!(!s.held);
        assert!(close(s.integral, 8.0 - 0.001 * 30.0));
        assert!(s.target > 16.0);
    }

    #[test]
    fn integral_is_bounded_and_sanitised() {
        let s = G.step(24.0, 24.0, 100.0, 0.0);
        assert!(close(s.integral, 8.0) && close(s.target, 16.0));
        let s = G.step(24.0, 24.0, -100.0, 0.0);
        assert!(close(s.integral, -6.0) && close(s.target, 30.0));
        let s = G.step(24.0, 24.0, f64::NAN, 30.0);
        assert!(close(s.integral, 0.0) && close(s.target, 24.0));
    }

    #[test]
    fn removes_a_steady_offset() {
        // The AC's own thermostat holds its return air at its target; the
        // room sensor reads 1.5 °C warmer (it sits by the racks). First-order
        // response of the room to the AC target, τ = 600 s.
        let (setpoint, offset, tau) = (24.0, 1.5, 600.0);
        let (mut room, mut i, dt) = (28.0_f64, 0.0, 30.0);
        let mut target = 0.0;
        for _ in 0..(6 * 3600 / 30) {
            let s = G.step(setpoint, room, i, dt);
            i = s.integral;
            target = s.target;
            room += (target + offset - room) * dt / tau;
        }
        assert!((room - setpoint).abs() < 0.05, "room {room}");
        assert!(
            (target - (setpoint - offset)).abs() < 0.05,
            "target {target}"
        );
        assert!((i - offset).abs() < 0.05, "integral {i}");
    }

    #[test]
    fn quantize_rounds_with_hysteresis_and_clamps() {
        assert!(close(quantize(22.4, 1.0, None, 16.0, 30.0), 22.0));
        assert!(close(quantize(22.6, 1.0, None, 16.0, 30.0), 23.0));
        // Near the last command: keep it (no toggling around x.5).
        assert!(close(quantize(22.6, 1.0, Some(22.0), 16.0, 30.0), 22.0));
        assert!(close(quantize(22.74, 1.0, Some(22.0), 16.0, 30.0), 22.0));
        assert!(close(quantize(22.76, 1.0, Some(22.0), 16.0, 30.0), 23.0));
        assert!(close(quantize(21.2, 1.0, Some(22.0), 16.0, 30.0), 21.0));
        // Half-degree ACs.
        assert!(close(quantize(22.3, 0.5, None, 16.0, 30.0), 22.5));
        // Limits.
        assert!(close(quantize(12.0, 1.0, None, 16.0, 30.0), 16.0));
        assert!(close(quantize(31.0, 1.0, Some(30.0), 16.0, 30.0), 30.0));
        // A last command outside the range is not kept.
        assert!(close(quantize(16.2, 1.0, Some(15.0), 16.0, 30.0), 16.0));
    }

    #[test]
    fn dt_starts_at_zero_and_caps_gaps() {
        assert_eq!(dt_s(None, 1_000, 60.0), 0.0);
        assert_eq!(dt_s(Some(1_000), 31_000, 60.0), 30.0);
        assert_eq!(dt_s(Some(1_000), 3_601_000, 60.0), 60.0);
        assert_eq!(dt_s(Some(5_000), 1_000, 60.0), 0.0);
    }

    #[test]
    fn keep_alive() {
        assert!(keep_alive_due(None, 0, 300.0));
        assert!(!keep_alive_due(Some(0), 299_999, 300.0));
        assert!(keep_alive_due(Some(0), 300_000, 300.0));
        assert!(!keep_alive_due(None, 0, 0.0), "0 disables");
    }
}
