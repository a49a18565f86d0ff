//! Resampling a host forecast series onto the horizon grid.
//!
//! The host's series are step functions: each `(time_ms, value)` sample
//! holds until the next, the first one returned is the one in force at the
//! query's start, and NaN marks a gap (unknown until the next sample).

/// The value in force at each step start `start_ms + k·step_ms`,
/// `k = 0 … n−1`. A gap (NaN) or a step after the series' end holds the last
/// known value; steps before the first finite value take that first value.
/// `None` when the series has no finite value at all (or `n == 0`, or a
/// non-positive step).
pub fn resample(samples: &[(i64, f64)], start_ms: i64, step_ms: i64, n: usize) -> Option<Vec<f64>> {
    if n == 0 || step_ms <= 0 {
        return None;
    }
    let first_finite = samples.iter().find(|s| s.1.is_finite())?.1;
    let mut out = Vec::with_capacity(n);
    let mut idx = 0; // samples[..idx] start at or before the current step
    let mut last_known: Option<f64> = None;
    for k in 0..n {
        let t = start_ms.saturating_add(step_ms.saturating_mul(k as i64));
        while idx < samples.len() && samples[idx].0 <= t {
            if samples[idx].1.is_finite() {
                last_known = Some(samples[idx].1);
            } else {
                // A gap starts: keep holding the last known value.
            }
            idx += 1;
        }
        out.push(last_known.unwrap_or(first_finite));
    }
    Some(out)
}

/// The value in force at `t_ms` (see [`resample`]).
pub fn value_at(samples: &[(i64, f64)], t_ms: i64) -> Option<f64> {
    resample(samples, t_ms, 1, 1).map(|v| v[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_hold_gaps_and_edges() {
        let h = 3_600_000;
        let s = [(0, 1.0), (h, 2.0), (2 * h, f64::NAN), (3 * h, 4.0)];
        // 30-min grid from 0: in force at each start, gap holds 2.0.
        let v = resample(&s, 0, h / 2, 10).unwrap();
        assert_eq!(v, [1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0]);
        // Before the first sample: its value.
        assert_eq!(resample(&s, -h, h, 2).unwrap(), [1.0, 1.0]);
        // A leading gap takes the first finite value.
        let g = [(0, f64::NAN), (h, 5.0)];
        assert_eq!(resample(&g, 0, h, 2).unwrap(), [5.0, 5.0]);
        // Nothing usable.
        assert!(resample(&[(0, f64::NAN)], 0, h, 3).is_none());
        assert!(resample(&[], 0, h, 3).is_none());
        assert!(resample(&s, 0, 0, 3).is_none());
        assert_eq!(value_at(&s, h + 1), Some(2.0));
    }
}
