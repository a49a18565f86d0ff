//! Small numeric pieces: the normal tail, exponentially weighted moments.

/// Upper tail of the standard normal, `Q(z) = P(Z > z)`, with a relative
/// error below 1.2e-7 everywhere (Numerical Recipes' `erfcc`, a Chebyshev
/// fit), so far tails stay meaningful in decades.
pub fn normal_tail(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    let x = z / std::f64::consts::SQRT_2;
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.5 * a);
    let poly = -a * a - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    let q = 0.5 * erfc;
    if x >= 0.0 { q } else { 1.0 - q }
}

/// Surprise in decades: `-log10(p)`, 0 for p ≥ 1, capped at 300.
pub fn decades(p: f64) -> f64 {
    if p.is_nan() {
        return 0.0;
    }
    (-p.max(1e-300).log10()).clamp(0.0, 300.0)
}

/// Exponentially weighted mean and variance (West 1979's incremental form),
/// with the weight `max(alpha, 1/n)`: a plain running mean until `1/alpha`
/// samples, so the first estimates are not biased towards zero.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Ewm {
    pub n: u64,
    pub mean: f64,
    pub var: f64,
}

impl Ewm {
    pub fn update(&mut self, x: f64, alpha: f64) {
        if !x.is_finite() {
            return;
        }
        self.n = self.n.saturating_add(1);
        let w = alpha.max(1.0 / self.n as f64);
        let d = x - self.mean;
        self.mean += w * d;
        self.var = (1.0 - w) * (self.var + w * d * d);
        if !self.mean.is_finite() || !self.var.is_finite() {
            *self = Ewm::default();
        }
    }

    pub fn std(&self) -> f64 {
        self.var.max(0.0).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_matches_known_values() {
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_tail(1.959_964) - 0.025).abs() < 1e-7);
        assert!((normal_tail(-1.959_964) - 0.975).abs() < 1e-7);
        // Relative accuracy far in the tail: Q(8) = 6.22096e-16.
        assert!((normal_tail(8.0) / 6.220_960_574_271_785e-16 - 1.0).abs() < 1e-5);
        assert_eq!(normal_tail(1e300), 0.0);
        assert_eq!(decades(0.0), 300.0);
    }

    #[test]
    fn ewm_starts_as_a_running_mean() {
        let mut e = Ewm::default();
        for x in [1.0, 2.0, 3.0] {
            e.update(x, 0.01);
        }
        assert!((e.mean - 2.0).abs() < 1e-12);
    }
}
