//! The PV array and the synthetic weather it sees: the sun's clear-sky
//! irradiance at the site ([`crate::solar::clearsky::weather`]: Haurwitz,
//! Kasten–Czeplak clouds, Erbs split) for a cloud fraction given per local
//! hour (`cloud`, 24 values, every day) or per day (`cloud_by_day`: one
//! number for the whole day or 24 hourly values, one entry per day from the
//! scenario's first day, cycled), turned into AC power by the PVWatts chain
//! ([`crate::solar::PvArray::ac_power_w`]). Outdoor temperature is a daily
//! cosine, warmest at `warmest_hour`.
//!
//! The forecast weather is the same with `forecast_cloud_error` added to
//! every hour's cloud fraction (clamped to 0–1): 0 (default) gives a
//! perfect PV forecast; +0.3 a forecast cloudier than what comes, −0.3 a
//! sunnier one.

use super::local_seconds;
use crate::solar::{PvArray, clearsky};
use jiff::tz::TimeZone;
use serde::Deserialize;

/// `cloud_by_day`'s entries: a whole day's fraction or 24 hourly ones.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DayCloud {
    Day(f64),
    Hours(Vec<f64>),
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WeatherSpec {
    /// Cloud fraction 0–1 per local hour, 24 values, every day.
    pub cloud: Vec<f64>,
    /// Per day from the first day (cycled); overrides `cloud`.
    pub cloud_by_day: Vec<DayCloud>,
    /// Added to the forecast's cloud fraction.
    pub forecast_cloud_error: f64,
    pub temp_mean_c: f64,
    pub temp_amplitude_c: f64,
    /// Per day (cycled); overrides `temp_mean_c`.
    pub temp_mean_by_day_c: Vec<f64>,
    pub warmest_hour: f64,
    /// Wind at 10 m, m/s (cools the cells).
    pub wind_ms: f64,
}

impl Default for WeatherSpec {
    fn default() -> Self {
        WeatherSpec {
            cloud: vec![0.0; 24],
            cloud_by_day: Vec::new(),
            forecast_cloud_error: 0.0,
            temp_mean_c: 15.0,
            temp_amplitude_c: 5.0,
            temp_mean_by_day_c: Vec::new(),
            warmest_hour: 15.0,
            wind_ms: 2.0,
        }
    }
}

impl WeatherSpec {
    pub fn check(&self) -> Result<(), String> {
        let frac = |v: &f64| (0.0..=1.0).contains(v);
        if self.cloud.len() != 24 || !self.cloud.iter().all(frac) {
            return Err("`weather.cloud` must be 24 fractions 0–1 (one per local hour)".into());
        }
        for d in &self.cloud_by_day {
            let ok = match d {
                DayCloud::Day(c) => frac(c),
                DayCloud::Hours(h) => h.len() == 24 && h.iter().all(frac),
            };
            if !ok {
                return Err(
                    "`weather.cloud_by_day` entries must be a fraction 0–1 or 24 of them".into(),
                );
            }
        }
        if !self.forecast_cloud_error.is_finite() || self.forecast_cloud_error.abs() > 1.0 {
            return Err("`weather.forecast_cloud_error` must be −1 to 1".into());
        }
        Ok(())
    }
}

/// The weather at any instant, for the actual run and for the forecast.
#[derive(Debug, Clone)]
pub struct Weather {
    pub spec: WeatherSpec,
    pub tz: TimeZone,
    /// Local midnight of the first day, ms (day 0 of the `_by_day` lists).
    pub day0_ms: i64,
}

impl Weather {
    fn day_index(&self, t_ms: i64) -> usize {
        let d0 = super::local_date(&self.tz, self.day0_ms);
        let d = super::local_date(&self.tz, t_ms);
        (d - d0).get_days().max(0) as usize
    }

    /// Actual cloud fraction at `t_ms`.
    pub fn cloud(&self, t_ms: i64) -> f64 {
        let hour = ((local_seconds(&self.tz, t_ms) / 3600.0) as usize).min(23);
        if self.spec.cloud_by_day.is_empty() {
            return self.spec.cloud[hour];
        }
        let n = self.spec.cloud_by_day.len();
        match &self.spec.cloud_by_day[self.day_index(t_ms) % n] {
            DayCloud::Day(c) => *c,
            DayCloud::Hours(h) => h[hour],
        }
    }

    /// The forecast's cloud fraction at `t_ms`.
    pub fn forecast_cloud(&self, t_ms: i64) -> f64 {
        (self.cloud(t_ms) + self.spec.forecast_cloud_error).clamp(0.0, 1.0)
    }

    /// Outdoor air, °C.
    pub fn temperature_c(&self, t_ms: i64) -> f64 {
        let s = &self.spec;
        let mean = if s.temp_mean_by_day_c.is_empty() {
            s.temp_mean_c
        } else {
            s.temp_mean_by_day_c[self.day_index(t_ms) % s.temp_mean_by_day_c.len()]
        };
        let h = local_seconds(&self.tz, t_ms) / 3600.0;
        mean + s.temp_amplitude_c * (std::f64::consts::TAU * (h - s.warmest_hour) / 24.0).cos()
    }
}

/// The array with its production counters.
#[derive(Debug, Clone)]
pub struct Pv {
    pub array: PvArray,
    pub power_w: f64,
    pub energy_wh: f64,
}

impl Pv {
    pub fn new(array: PvArray) -> Self {
        Pv {
            array,
            power_w: 0.0,
            energy_wh: 0.0,
        }
    }

    /// AC power over `[t_ms, t_ms + dt_s)` with cloud fraction `cloud`
    /// and air at `temp_c`, W (sun and clouds at the interval's middle).
    pub fn ac_w(&self, t_ms: i64, dt_s: f64, cloud: f64, temp_c: f64, wind_ms: f64) -> f64 {
        let mid = t_ms + (dt_s * 500.0) as i64;
        let w = clearsky::weather(mid, self.array.lat, self.array.lon, cloud);
        self.array
            .ac_power_w(mid, w.ghi, w.dni, w.dhi, temp_c, wind_ms)
            .max(0.0)
    }

    /// One step's production, W.
    pub fn step(&mut self, t_ms: i64, dt_s: f64, weather: &Weather) -> f64 {
        let mid = t_ms + (dt_s * 500.0) as i64;
        let w = self.ac_w(
            t_ms,
            dt_s,
            weather.cloud(mid),
            weather.temperature_c(mid),
            weather.spec.wind_ms,
        );
        self.power_w = w;
        self.energy_wh += w * dt_s / 3600.0;
        w
    }

    /// The forecast over `[from_ms, to_ms)` in `res_s` blocks, each the
    /// mean of 1-min samples of the model on the forecast weather, W.
    pub fn forecast(
        &self,
        weather: &Weather,
        from_ms: i64,
        to_ms: i64,
        res_s: i64,
    ) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut t = from_ms;
        let n = (res_s / 60).max(1);
        while t < to_ms {
            let mean = (0..n)
                .map(|k| {
                    let s = t + k * 60_000;
                    self.ac_w(
                        s,
                        60.0,
                        weather.forecast_cloud(s + 30_000),
                        weather.temperature_c(s + 30_000),
                        weather.spec.wind_ms,
                    )
                })
                .sum::<f64>()
                / n as f64;
            out.push((t, mean));
            t += res_s * 1000;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_june_day_near_lyon_peaks_at_noon_and_clouds_cut_it() {
        let tz = crate::feeds::tariff::parse_time_zone("Europe/Paris").unwrap();
        let day0 = super::super::LocalTime::hm(0, 0).on(&tz, "2026-06-16".parse().unwrap());
        let mut arr = PvArray::new(6.0, 45.76, 4.84);
        arr.tilt_deg = 30.0;
        let pv = Pv::new(arr);
        let sunny = Weather {
            spec: WeatherSpec::default(),
            tz: tz.clone(),
            day0_ms: day0,
        };
        let h = |x: f64| day0 + (x * 3_600_000.0) as i64;
        let noon = pv.ac_w(h(13.5), 60.0, 0.0, 25.0, 2.0);
        assert!(noon > 3500.0 && noon <= 5000.0 + 1e-9, "{noon}");
        assert_eq!(pv.ac_w(h(2.0), 60.0, 0.0, 15.0, 2.0), 0.0);
        let day_kwh: f64 = pv
            .forecast(&sunny, day0, day0 + 86_400_000, 900)
            .iter()
            .map(|(_, w)| w / 4000.0)
            .sum();
        assert!((25.0..45.0).contains(&day_kwh), "{day_kwh} kWh");
        let cloudy = Weather {
            spec: WeatherSpec {
                cloud: vec![0.9; 24],
                ..WeatherSpec::default()
            },
            ..sunny.clone()
        };
        let c_kwh: f64 = pv
            .forecast(&cloudy, day0, day0 + 86_400_000, 900)
            .iter()
            .map(|(_, w)| w / 4000.0)
            .sum();
        assert!(c_kwh < 0.6 * day_kwh, "{c_kwh} vs {day_kwh}");
    }
}
