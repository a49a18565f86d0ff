//! Forecast series the plugins read through the host's `forecast` import
//! (WIT 0.1.1): tariff prices, outdoor temperature, solar irradiance. The
//! feeds (and the batch simulator) publish whole series; plugins read
//! ranges. Each sample is valid until the next one.

use std::collections::HashMap;
use std::sync::RwLock;

/// Series names, as plugins ask for them.
pub const PRICE: &str = "price";
pub const OUTDOOR_TEMPERATURE: &str = "outdoor-temperature";
pub const SOLAR_IRRADIANCE: &str = "solar-irradiance";

/// Most samples one `forecast` call returns (a year hourly is 8 760).
pub const MAX_SAMPLES: usize = 100_000;

#[derive(Default)]
pub struct Forecasts {
    series: RwLock<HashMap<String, Vec<(i64, f64)>>>,
}

impl Forecasts {
    /// Replaces a series. Samples are sorted by time. A non-finite value
    /// (stored as NaN) marks a gap: unknown from its time until the next
    /// sample, rather than the previous value held on.
    pub fn publish(&self, name: &str, mut samples: Vec<(i64, f64)>) {
        for (_, v) in &mut samples {
            if !v.is_finite() {
                *v = f64::NAN;
            }
        }
        samples.sort_by_key(|(t, _)| *t);
        samples.dedup_by_key(|(t, _)| *t);
        self.series
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), samples);
    }

    /// Samples of `name` with time in `[start_ms, end_ms]`, oldest first,
    /// preceded by the sample in force at `start_ms` if it started earlier
    /// (so a step series is known over the whole range). At most
    /// [`MAX_SAMPLES`].
    pub fn range(&self, name: &str, start_ms: i64, end_ms: i64) -> Vec<(i64, f64)> {
        let all = self.series.read().unwrap_or_else(|e| e.into_inner());
        let Some(s) = all.get(name) else {
            return Vec::new();
        };
        if end_ms < start_ms {
            return Vec::new();
        }
        let first = s.partition_point(|(t, _)| *t <= start_ms).saturating_sub(1);
        s[first..]
            .iter()
            .take_while(|(t, _)| *t <= end_ms)
            .take(MAX_SAMPLES)
            .copied()
            .collect()
    }

    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .series
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        n.sort();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_starts_with_the_sample_in_force() {
        let f = Forecasts::default();
        f.publish(
            PRICE,
            vec![
                (3_000, 0.3),
                (1_000, 0.1),
                (2_000, f64::INFINITY),
                (4_000, 0.4),
            ],
        );
        let r = f.range(PRICE, 1_500, 3_500);
        assert_eq!((r[0], r[2]), ((1_000, 0.1), (3_000, 0.3)));
        assert!(
            r[1].0 == 2_000 && r[1].1.is_nan(),
            "a gap stays a gap: {r:?}"
        );
        assert_eq!(f.range(PRICE, 0, 500), vec![]);
        assert_eq!(f.range(PRICE, 4_000, 9_000), vec![(4_000, 0.4)]);
        assert_eq!(f.range(PRICE, 9_000, 1_000), vec![]);
        assert!(f.range("nothing", 0, 9_000).is_empty());
    }
}
