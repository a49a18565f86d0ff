//! Calibration: on streams without anomalies, whatever their scale, noise,
//! shape and sampling, the default (conformal) method publishes a score at
//! or above a fixed threshold about as rarely on each of them, so one
//! threshold suits every sensor (issue 13, item 3).

use hearth_plugin_anomaly_detector::config::Kind;
use hearth_plugin_anomaly_detector::detector::{Detector, Method};
use hearth_plugin_anomaly_detector::forest;
use hearth_plugin_anomaly_detector::hst::SplitMix64;

const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;
const DAY: f64 = 86_400_000.0;
const SAMPLES: usize = 20_000;

/// A standard normal draw (Box–Muller).
fn gauss(rng: &mut SplitMix64) -> f64 {
    let u = rng.next_f64().max(1e-300);
    let v = rng.next_f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// A Poisson draw (Knuth's product of uniforms; fine for small means).
fn poisson(mean: f64, rng: &mut SplitMix64) -> f64 {
    let limit = (-mean).exp();
    let mut k = 0.0;
    let mut p = rng.next_f64();
    while p > limit {
        k += 1.0;
        p *= rng.next_f64();
    }
    k
}

fn daily(t: i64) -> f64 {
    (t as f64 / DAY * std::f64::consts::TAU).sin()
}

type Stream = Vec<(i64, f64)>;

/// A room around 20 °C with a 0.5 °C daily wave and σ = 0.1 °C noise, every
/// 5 minutes.
fn room_temperature(seed: u64) -> Stream {
    let mut rng = SplitMix64(seed);
    (0..SAMPLES as i64)
        .map(|i| {
            let t = T0 + i * 5 * MINUTE;
            (t, 20.0 + 0.5 * daily(t) + 0.1 * gauss(&mut rng))
        })
        .collect()
}

/// The same ×1000 plus 10⁶: only the scale and offset differ.
fn room_temperature_scaled(seed: u64) -> Stream {
    room_temperature(seed)
        .into_iter()
        .map(|(t, v)| (t, 1e6 + 1000.0 * v))
        .collect()
}

/// Counts with mean 3 (small integers, many repeats), every 5 minutes.
fn counts(seed: u64) -> Stream {
    let mut rng = SplitMix64(seed);
    (0..SAMPLES as i64)
        .map(|i| (T0 + i * 5 * MINUTE, poisson(3.0, &mut rng)))
        .collect()
}

/// A percentage (CPU load): a random walk with σ = 2 steps, clipped to
/// 0–100 (so it sits on its bounds at times), every 5 minutes.
fn percentage(seed: u64) -> Stream {
    let mut rng = SplitMix64(seed);
    let mut v: f64 = 50.0;
    (0..SAMPLES as i64)
        .map(|i| {
            v = (v + 2.0 * gauss(&mut rng)).clamp(0.0, 100.0);
            (T0 + i * 5 * MINUTE, (v * 10.0).round() / 10.0)
        })
        .collect()
}

/// White noise every hour (20 000 hours: 2.3 years).
fn hourly_noise(seed: u64) -> Stream {
    let mut rng = SplitMix64(seed);
    (0..SAMPLES as i64)
        .map(|i| (T0 + i * 60 * MINUTE, gauss(&mut rng)))
        .collect()
}

/// A daily load curve sampled every 5 minutes ± 90 s of jitter, with an
/// outage of 2 to 12 hours every 2 000 samples.
fn jittered_with_gaps(seed: u64) -> Stream {
    let mut rng = SplitMix64(seed);
    let mut t = T0;
    (0..SAMPLES)
        .map(|i| {
            let jitter = ((rng.next_f64() - 0.5) * 3.0 * MINUTE as f64) as i64;
            t += 5 * MINUTE + jitter;
            if i > 0 && i % 2000 == 0 {
                t += (2.0 + 10.0 * rng.next_f64()) as i64 * 60 * MINUTE;
            }
            (t, 40.0 + 10.0 * daily(t) + 2.0 * gauss(&mut rng))
        })
        .collect()
}

/// The streams, named.
fn streams(seed: u64) -> Vec<(&'static str, Stream)> {
    vec![
        ("room temperature", room_temperature(seed)),
        ("×1000 + 10⁶", room_temperature_scaled(seed)),
        ("counts, mean 3", counts(seed)),
        ("percentage walk", percentage(seed)),
        ("hourly noise", hourly_noise(seed)),
        ("jitter and gaps", jittered_with_gaps(seed)),
    ]
}

/// How many published scores reach each threshold.
fn exceedances(method: &Method, stream: &Stream, thresholds: &[f64]) -> Vec<usize> {
    let mut d = Detector::new(method, Kind::Generic.floor(), false);
    let mut counts = vec![0; thresholds.len()];
    for &(t, v) in stream {
        let s = d.update(t, Some(v)).score;
        for (c, &th) in counts.iter_mut().zip(thresholds) {
            if s >= th {
                *c += 1;
            }
        }
    }
    counts
}

/// The default alert threshold (config.rs): one chance in 10^3.7.
const DEFAULT_THRESHOLD: f64 = 0.37;
/// A lower threshold (one chance in 100 after the five looks), crossed
/// often enough on every stream that rates can be compared.
const LOW_THRESHOLD: f64 = 0.2;

/// Per stream: (name, rate per 1000 samples of published scores at or above
/// `threshold`).
fn rates(method: &Method, threshold: f64) -> Vec<(&'static str, f64)> {
    streams(1)
        .iter()
        .map(|(name, s)| {
            let n = exceedances(method, s, &[threshold])[0];
            (*name, 1000.0 * n as f64 / s.len() as f64)
        })
        .collect()
}

/// The bound at the low threshold: every stream crosses 0.2 between 1 and
/// 5 times per 1000 samples, and the most frequent at most 3 times as often
/// as the least. A score in decades of a stream's own rarity gives about
/// the same rate everywhere (the "only news" rule makes it less than the
/// nominal 10 per 1000); an uncalibrated one does not: the forest baseline
/// fails this very bound (see the next test).
fn check_low_threshold_bound(rates: &[(&str, f64)]) -> Result<(), String> {
    let min = rates.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let max = rates.iter().map(|r| r.1).fold(0.0, f64::max);
    if min < 1.0 || max > 5.0 || max > 3.0 * min {
        return Err(format!("rates per 1000 at {LOW_THRESHOLD}: {rates:?}"));
    }
    Ok(())
}

/// Quiet streams of very different scales, noise, shapes and sampling
/// (°C, the same ×1000 + 10⁶, counts, a clipped percentage walk, hourly
/// noise, jittered 5-minute steps with gaps) cross the low threshold at
/// about the same rate with the default method. Measured (per 1000
/// samples, seed 1): 3.4, 3.4, 3.3, 2.05, 3.4, 3.4.
#[test]
fn quiet_streams_cross_a_fixed_threshold_at_about_the_same_rate() {
    let r = rates(&Method::default(), LOW_THRESHOLD);
    eprintln!("conformal, rates per 1000 at {LOW_THRESHOLD}: {r:?}");
    check_low_threshold_bound(&r).unwrap();
}

/// The bound above has teeth: the seed's forest method (robust z-scores and
/// trees, its likelihood fitted as a Gaussian) fails it on the same streams.
/// Measured (per 1000, seed 1): 3.5, 1.95, 6.25, 7.7, 1.45, 4.05 (the
/// counts and the percentage walk flood, hourly noise is muted).
#[test]
fn the_forest_baseline_fails_the_same_calibration_bound() {
    let r = rates(&Method::Forest(forest::Tuning::default()), LOW_THRESHOLD);
    eprintln!("forest, rates per 1000 at {LOW_THRESHOLD}: {r:?}");
    assert!(check_low_threshold_bound(&r).is_err(), "{r:?}");
}

/// At the default threshold a quiet stationary stream raises fewer than one
/// alert per 1000 samples, whatever its scale or offset (nominally 0.2 per
/// 1000: one chance in 10^3.7). The percentage random walk is not
/// stationary (it keeps reaching levels and patterns its history has never
/// held, which is what the level and pattern measures rank as rare), so its
/// bound is two per 1000. Measured (per 1000, seed 1, 20 000 samples):
/// room temperature 0.5, the same ×1000 + 10⁶ 0.5, counts 0.35, walk 1.15,
/// hourly noise 0.55, jitter and gaps 0.35. The forest method fails the
/// stationary bound (1.5 to 4.75 on four of the six).
#[test]
fn quiet_streams_stay_below_one_alert_per_1000_samples_at_the_default_threshold() {
    let r = rates(&Method::default(), DEFAULT_THRESHOLD);
    eprintln!("conformal, rates per 1000 at {DEFAULT_THRESHOLD}: {r:?}");
    for (name, rate) in &r {
        let bound = if *name == "percentage walk" { 2.0 } else { 1.0 };
        assert!(
            *rate <= bound,
            "{name}: {rate} per 1000 (bound {bound}); {r:?}"
        );
    }
    // Offset invariance: the ×1000 + 10⁶ copy of the room temperature is
    // judged alike (the ranking has no unit; a relative floor would mute it).
    let room = r.iter().find(|(n, _)| *n == "room temperature").unwrap().1;
    let scaled = r.iter().find(|(n, _)| *n == "×1000 + 10⁶").unwrap().1;
    assert!((room - scaled).abs() <= 0.25, "{r:?}");
}
