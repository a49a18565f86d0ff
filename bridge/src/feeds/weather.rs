//! Weather forecast from Open-Meteo, as time series the planners can
//! sample.
//!
//! Request (one call, no key):
//! `https://api.open-meteo.com/v1/forecast?latitude=…&longitude=…&hourly=temperature_2m,shortwave_radiation&timezone=UTC`
//! (add `&forecast_days=2` for 48 h). The answer, per Open-Meteo's docs
//! (open-meteo.com/en/docs, "Hourly Parameter Definition" and "API
//! Response"):
//!
//! ```json
//! {"latitude": 48.86, "longitude": 2.34, "utc_offset_seconds": 0, "timezone": "GMT",
//!  "hourly_units": {"time": "iso8601", "temperature_2m": "°C", "shortwave_radiation": "W/m²"},
//!  "hourly": {"time": ["2024-01-15T00:00", …], "temperature_2m": [3.1, …],
//!             "shortwave_radiation": [0.0, …]}}
//! ```
//!
//! - `hourly.time`: local times *without* offset, in the requested
//!   `timezone`; the offset to UTC is `utc_offset_seconds`. With
//!   `timeformat=unixtime` they are integers, Unix seconds "in GMT+0" (the
//!   docs' wording). Both forms are read. Open-Meteo gives one offset for
//!   the whole answer, so local times are only safe in a zone without
//!   daylight saving: request `timezone=UTC` (or `unixtime`). Times that are
//!   not evenly spaced (what a DST change in local times looks like) are
//!   refused with that advice.
//! - `hourly.temperature_2m`: °C at 2 m, **instantaneous** ("Instant").
//!   Interpolated linearly between samples.
//! - `hourly.shortwave_radiation`: W/m², global horizontal irradiance, the
//!   **mean of the preceding hour** ("Preceding hour mean: Shortwave solar
//!   radiation as average of the preceding hour. This is equal to the total
//!   global horizontal irradiation"): the value stamped 12:00 is the mean
//!   over 11:00–12:00. It is kept as a step function: the value stamped T
//!   holds on `[T − 1 h, T)`. [`TimeSeries::at`] returns the mean of the
//!   hour containing t, and [`TimeSeries::series`] the exact mean over each
//!   step `[t, t + step)` (so a 1 h step starting at 11:00 gets the value
//!   stamped 12:00, and energy — W/m² × time — is preserved for any step).
//!   Treating the stamp as an instant would shift the sun by half an hour.
//! - `null` anywhere in a value array is a gap: no value there, and none
//!   interpolated across it.
//!
//! - Optional, for the PV forecast ([`crate::solar::forecast`]):
//!   `direct_normal_irradiance` (DNI) and `diffuse_radiation` (DHI), W/m²,
//!   preceding-hour means like `shortwave_radiation`; `wind_speed_10m`,
//!   instantaneous, in m/s when requested with `wind_speed_unit=ms` (an
//!   answer in `km/h`, Open-Meteo's default unit, is converted). An answer
//!   without them parses as before, with these series `None`.
//!
//! Units are checked against `hourly_units` when present (a `°F` answer,
//! from `temperature_unit=fahrenheit`, is refused rather than misread).

use super::{FeedError, Node, Sample, parse_json, step_times};
use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};

/// How a series' values relate to their timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// The value at that instant (temperature).
    Instant,
    /// The mean over the `period_ms` before the timestamp: the value
    /// stamped T holds on `[T − period_ms, T)` (radiation).
    PrecedingMean { period_ms: i64 },
}

/// Samples sorted by strictly increasing time, `None` for gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    aggregation: Aggregation,
    points: Vec<Sample>,
}

impl TimeSeries {
    /// Checks that times strictly increase, values are finite and a
    /// preceding-mean period is > 0.
    pub fn new(aggregation: Aggregation, points: Vec<Sample>) -> Result<Self, FeedError> {
        let input = "time series";
        if let Aggregation::PrecedingMean { period_ms } = aggregation
            && period_ms <= 0
        {
            return Err(FeedError::new(
                input,
                "period_ms",
                format!("expected a period > 0 ms, found {period_ms}"),
            ));
        }
        for (i, w) in points.windows(2).enumerate() {
            if w[1].t_ms <= w[0].t_ms {
                return Err(FeedError::new(
                    input,
                    &format!("[{}]", i + 1),
                    format!(
                        "time {} ms does not follow {} ms: expected strictly increasing times",
                        w[1].t_ms, w[0].t_ms
                    ),
                ));
            }
        }
        if let Some((i, s)) = points
            .iter()
            .enumerate()
            .find(|(_, s)| s.value.is_some_and(|v| !v.is_finite()))
        {
            return Err(FeedError::new(
                input,
                &format!("[{i}]"),
                format!("expected a finite value or a gap, found {:?}", s.value),
            ));
        }
        Ok(TimeSeries {
            aggregation,
            points,
        })
    }

    pub fn aggregation(&self) -> Aggregation {
        self.aggregation
    }

    /// The samples as received (times in ms since the epoch).
    pub fn points(&self) -> &[Sample] {
        &self.points
    }

    /// The samples that have a value, as (ms, value).
    pub fn known(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.points
            .iter()
            .filter_map(|s| s.value.map(|v| (s.t_ms, v)))
    }

    /// The value at `t_ms`: linear between the two samples around it for
    /// [`Aggregation::Instant`]; the mean of the period containing it for
    /// [`Aggregation::PrecedingMean`]. `None` outside the samples, in a gap,
    /// or next to one.
    pub fn at(&self, t_ms: i64) -> Option<f64> {
        let pts = &self.points;
        match self.aggregation {
            Aggregation::Instant => {
                let i = pts.partition_point(|s| s.t_ms <= t_ms);
                let before = pts.get(i.checked_sub(1)?)?;
                if before.t_ms == t_ms {
                    return before.value;
                }
                let after = pts.get(i)?;
                let (a, b) = (before.value?, after.value?);
                let f = (t_ms - before.t_ms) as f64 / (after.t_ms - before.t_ms) as f64;
                Some(a + (b - a) * f)
            }
            Aggregation::PrecedingMean { period_ms } => {
                let s = pts.get(pts.partition_point(|s| s.t_ms <= t_ms))?;
                if t_ms < s.t_ms - period_ms {
                    return None;
                }
                s.value
            }
        }
    }

    /// The mean over `[from_ms, to_ms)` of a preceding-mean series (exact:
    /// the series is a step function). `None` if any part of the range has
    /// no value. For an instant series, the value at `from_ms`.
    pub fn mean(&self, from_ms: i64, to_ms: i64) -> Option<f64> {
        let Aggregation::PrecedingMean { period_ms } = self.aggregation else {
            return self.at(from_ms);
        };
        if to_ms <= from_ms {
            return self.at(from_ms);
        }
        let pts = &self.points;
        let mut cursor = from_ms;
        let mut acc = 0.0;
        for s in &pts[pts.partition_point(|s| s.t_ms <= from_ms)..] {
            if s.t_ms - period_ms > cursor {
                return None; // a hole between periods
            }
            let until = s.t_ms.min(to_ms);
            if until > cursor {
                acc += s.value? * (until - cursor) as f64;
                cursor = until;
            }
            if cursor >= to_ms {
                return Some(acc / (to_ms - from_ms) as f64);
            }
        }
        None
    }

    /// One value per step `[t, t + step)` for `t = start, start + step, …`
    /// before `end` (the last step is cut at `end`): the value at `t` for
    /// an instant series, the mean over the step for a preceding-mean one.
    pub fn series(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_s: i64,
    ) -> Result<Vec<Sample>, FeedError> {
        let step_ms = step_s.saturating_mul(1000);
        Ok(step_times(start_ms, end_ms, step_s)?
            .map(|t_ms| Sample {
                t_ms,
                value: match self.aggregation {
                    Aggregation::Instant => self.at(t_ms),
                    Aggregation::PrecedingMean { .. } => {
                        self.mean(t_ms, t_ms.saturating_add(step_ms).min(end_ms))
                    }
                },
            })
            .collect())
    }

    /// The series as steps "each valid until the next" (the shape of the
    /// host's `forecast` series): an instant series as is; a preceding-mean
    /// one re-stamped at the *start* of each period (the value stamped
    /// 12:00 becomes a step from 11:00), with a `None` step wherever
    /// periods leave a hole and after the last one.
    pub fn steps(&self) -> Vec<Sample> {
        let Aggregation::PrecedingMean { period_ms } = self.aggregation else {
            return self.points.clone();
        };
        let mut out: Vec<Sample> = Vec::with_capacity(self.points.len() + 1);
        let mut prev_end: Option<i64> = None;
        for s in &self.points {
            let start = s.t_ms - period_ms;
            if let Some(e) = prev_end.filter(|e| *e < start) {
                out.push(Sample {
                    t_ms: e,
                    value: None,
                });
            }
            out.push(Sample {
                t_ms: start,
                value: s.value,
            });
            prev_end = Some(s.t_ms);
        }
        if let Some(e) = prev_end {
            out.push(Sample {
                t_ms: e,
                value: None,
            });
        }
        out
    }
}

/// An Open-Meteo hourly forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenMeteoForecast {
    /// ° (of the grid cell Open-Meteo used).
    pub latitude: Option<f64>,
    /// °
    pub longitude: Option<f64>,
    /// The `timezone` Open-Meteo applied, e.g. `GMT`.
    pub timezone: Option<String>,
    /// s, from `utc_offset_seconds` (0 when absent).
    pub utc_offset_s: i64,
    /// °C at 2 m, [`Aggregation::Instant`].
    pub temperature: TimeSeries,
    /// W/m² global horizontal, [`Aggregation::PrecedingMean`] over the
    /// sample spacing (1 h).
    pub radiation: TimeSeries,
    /// W/m² direct normal (`direct_normal_irradiance`), preceding mean,
    /// same times as `radiation`; `None` when the answer has none.
    pub dni: Option<TimeSeries>,
    /// W/m² diffuse horizontal (`diffuse_radiation`), preceding mean.
    pub dhi: Option<TimeSeries>,
    /// m/s at 10 m (`wind_speed_10m`), instant.
    pub wind: Option<TimeSeries>,
}

const TEMPERATURE: &str = "temperature_2m";
const RADIATION: &str = "shortwave_radiation";
const DNI: &str = "direct_normal_irradiance";
const DHI: &str = "diffuse_radiation";
const WIND: &str = "wind_speed_10m";

/// Reads an Open-Meteo `/v1/forecast` answer with `hourly=temperature_2m,
/// shortwave_radiation` (see the module doc for the shape and semantics).
/// `input` names the source in errors (the URL or a file).
pub fn parse_open_meteo(input: &str, text: &str) -> Result<OpenMeteoForecast, FeedError> {
    let v = parse_json(input, text)?;
    let root = Node::root(input, &v);
    if root.value().is_object() {
        // Open-Meteo's error answer: {"error": true, "reason": "…"}.
        if let Some(e) = root.opt_field("error")?
            && e.value().as_bool() == Some(true)
        {
            let reason = match root.opt_field("reason")? {
                Some(r) => r.str("a string")?.to_string(),
                None => "no reason given".into(),
            };
            return Err(root.error(format!("Open-Meteo answered an error: {reason}")));
        }
    }
    let latitude = opt_number(&root, "latitude")?;
    let longitude = opt_number(&root, "longitude")?;
    let timezone = match root.opt_field("timezone")? {
        Some(n) => Some(n.str("a time zone name")?.to_string()),
        None => None,
    };
    let offset_node = root.opt_field("utc_offset_seconds")?;
    let utc_offset_s = match &offset_node {
        Some(n) => n.i64("an offset in whole seconds")?,
        None => 0,
    };
    let offset =
        Offset::from_seconds(i32::try_from(utc_offset_s).unwrap_or(i32::MAX)).map_err(|_| {
            root.error(format!(
                "`utc_offset_seconds` {utc_offset_s} is not a UTC offset (expected −93599…93599 s)"
            ))
        })?;
    let tz = TimeZone::fixed(offset);

    let mut wind_factor = 1.0;
    if let Some(units) = root.opt_field("hourly_units")? {
        if let Some(u) = units.opt_field(WIND)? {
            wind_factor = match u.str("a unit string")? {
                "m/s" => 1.0,
                "km/h" => 1.0 / 3.6,
                got => {
                    return Err(u.error(format!(
                        "expected unit \"m/s\" or \"km/h\", found \"{got}\" (request &wind_speed_unit=ms)"
                    )));
                }
            };
        }
        for (key, unit) in [
            (TEMPERATURE, "°C"),
            (RADIATION, "W/m²"),
            (DNI, "W/m²"),
            (DHI, "W/m²"),
        ] {
            if let Some(u) = units.opt_field(key)? {
                let got = u.str("a unit string")?;
                if got != unit {
                    return Err(u.error(format!(
                        "expected unit \"{unit}\", found \"{got}\" (request the API's default units)"
                    )));
                }
            }
        }
    }

    let hint = "an object with `time`, `temperature_2m` and `shortwave_radiation` \
                (request &hourly=temperature_2m,shortwave_radiation)";
    let hourly = root.field("hourly", hint)?;
    let time_items = hourly
        .field("time", "an array of times")?
        .items("an array of times")?;
    if time_items.is_empty() {
        return Err(hourly.error("`time` is empty: the forecast has no hours"));
    }
    let mut times = Vec::with_capacity(time_items.len());
    for item in &time_items {
        times.push(time_ms(item, &tz, offset_node.is_some())?);
    }
    let spacing = check_spacing(&time_items, &times)?;

    let temperature = values(&hourly, TEMPERATURE, "a temperature in °C or null", &times)?;
    let radiation = values(&hourly, RADIATION, "an irradiance in W/m² or null", &times)?;
    let mean = Aggregation::PrecedingMean { period_ms: spacing };
    let optional = |key: &str,
                    expected: &str,
                    aggregation: Aggregation,
                    factor: f64|
     -> Result<Option<TimeSeries>, FeedError> {
        if hourly.opt_field(key)?.is_none() {
            return Ok(None);
        }
        let mut v = values(&hourly, key, expected, &times)?;
        for s in &mut v {
            s.value = s.value.map(|x| x * factor);
        }
        TimeSeries::new(aggregation, v).map(Some)
    };
    let dni = optional(DNI, "an irradiance in W/m² or null", mean, 1.0)?;
    let dhi = optional(DHI, "an irradiance in W/m² or null", mean, 1.0)?;
    let wind = optional(
        WIND,
        "a wind speed or null",
        Aggregation::Instant,
        wind_factor,
    )?;
    Ok(OpenMeteoForecast {
        latitude,
        longitude,
        timezone,
        utc_offset_s,
        temperature: TimeSeries::new(Aggregation::Instant, temperature)?,
        radiation: TimeSeries::new(mean, radiation)?,
        dni,
        dhi,
        wind,
    })
}

fn opt_number(root: &Node<'_>, key: &str) -> Result<Option<f64>, FeedError> {
    match root.opt_field(key)? {
        Some(n) => n.f64("a number").map(Some),
        None => Ok(None),
    }
}

/// One `hourly.time` entry: Unix seconds, or a local ISO 8601 date-time.
fn time_ms(item: &Node<'_>, tz: &TimeZone, has_offset: bool) -> Result<i64, FeedError> {
    let expected = "a local time \"YYYY-MM-DDTHH:MM\" or Unix seconds";
    if item.value().is_number() {
        let s = item.i64(expected)?;
        return s
            .checked_mul(1000)
            .filter(|ms| Timestamp::from_millisecond(*ms).is_ok())
            .ok_or_else(|| item.error(format!("{s} s is outside the supported time range")));
    }
    let s = item.str(expected)?;
    let dt: DateTime = s
        .parse()
        .map_err(|e| item.error(format!("expected {expected}, found \"{s}\" ({e})")))?;
    if !has_offset {
        return Err(
            item.error("local times need `utc_offset_seconds` at the top level, which is missing")
        );
    }
    tz.to_timestamp(dt)
        .map(|t| t.as_millisecond())
        .map_err(|e| item.error(format!("\"{s}\" cannot be placed in time ({e})")))
}

/// The sample spacing in ms; every step must be that same positive one.
fn check_spacing(items: &[Node<'_>], times: &[i64]) -> Result<i64, FeedError> {
    let Some(first) = times.windows(2).next().map(|w| w[1] - w[0]) else {
        return Ok(3_600_000); // one sample: Open-Meteo's hourly period
    };
    for (i, w) in times.windows(2).enumerate() {
        let d = w[1] - w[0];
        if d <= 0 || d != first {
            return Err(items[i + 1].error(format!(
                "is {} s after the previous time, expected {} s like the first step: \
                 times must be evenly spaced and increasing (local times with daylight \
                 saving? request timezone=UTC or timeformat=unixtime)",
                d / 1000,
                first / 1000
            )));
        }
    }
    Ok(first)
}

fn values(
    hourly: &Node<'_>,
    key: &str,
    expected: &str,
    times: &[i64],
) -> Result<Vec<Sample>, FeedError> {
    let node = hourly.field(
        key,
        "an array of values (request &hourly=temperature_2m,shortwave_radiation)",
    )?;
    let items = node.items("an array of numbers or nulls")?;
    if items.len() != times.len() {
        return Err(node.error(format!(
            "has {} values for {} times; expected one per time",
            items.len(),
            times.len()
        )));
    }
    items
        .iter()
        .zip(times)
        .map(|(item, t)| {
            Ok(Sample {
                t_ms: *t,
                value: item.opt_f64(expected)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORECAST: &str = include_str!("../../tests/data/feeds/open_meteo_forecast_48h.json");
    const H: i64 = 3_600_000;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn forecast() -> OpenMeteoForecast {
        parse_open_meteo("open-meteo", FORECAST).unwrap()
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn parses_the_48_hour_fixture_with_its_nulls() {
        let f = forecast();
        assert_eq!(f.latitude, Some(48.86));
        assert_eq!(f.timezone.as_deref(), Some("GMT"));
        assert_eq!(f.utc_offset_s, 0);
        let t = f.temperature.points();
        let r = f.radiation.points();
        assert_eq!((t.len(), r.len()), (48, 48));
        assert_eq!(t[0].t_ms, ms("2024-01-15T00:00:00Z"));
        assert_eq!(t[47].t_ms, ms("2024-01-16T23:00:00Z"));
        assert_eq!(t[0].value, Some(1.1));
        assert_eq!(t[30].value, None);
        assert_eq!(r[12].value, Some(147.0)); // stamped 12:00Z: mean of 11:00–12:00
        assert_eq!((r[46].value, r[47].value), (None, None));
        assert_eq!(f.temperature.aggregation(), Aggregation::Instant);
        assert_eq!(
            f.radiation.aggregation(),
            Aggregation::PrecedingMean { period_ms: H }
        );
        assert_eq!(f.temperature.known().count(), 47);
        assert_eq!(f.radiation.known().count(), 46);
    }

    #[test]
    fn temperature_is_linear_between_samples_and_stops_at_gaps() {
        let f = forecast();
        let t = &f.temperature;
        assert_eq!(t.at(ms("2024-01-15T00:00:00Z")), Some(1.1));
        assert!(close(t.at(ms("2024-01-15T00:30:00Z")), 1.05));
        assert!(close(
            t.at(ms("2024-01-15T07:15:00Z")),
            2.8 + 0.25 * (3.5 - 2.8)
        ));
        // Index 30 (2024-01-16T06:00Z) is null: no value from 05:00 (exclusive) to 07:00.
        assert_eq!(t.at(ms("2024-01-16T05:00:00Z")), Some(2.7));
        assert_eq!(t.at(ms("2024-01-16T05:01:00Z")), None);
        assert_eq!(t.at(ms("2024-01-16T06:00:00Z")), None);
        assert_eq!(t.at(ms("2024-01-16T06:59:00Z")), None);
        assert_eq!(t.at(ms("2024-01-16T07:00:00Z")), Some(3.9));
        // Outside the forecast.
        assert_eq!(t.at(ms("2024-01-14T23:59:59Z")), None);
        assert_eq!(t.at(ms("2024-01-16T23:00:00Z")), Some(2.8));
        assert_eq!(t.at(ms("2024-01-16T23:00:01Z")), None);
        // 15-minute series: samples at each step start.
        let s = t
            .series(ms("2024-01-15T00:00:00Z"), ms("2024-01-15T02:00:00Z"), 900)
            .unwrap();
        assert_eq!(s.len(), 8);
        assert!(close(s[1].value, 1.1 - 0.025));
        assert!(close(s[4].value, 1.0));
    }

    #[test]
    fn radiation_is_the_mean_of_the_preceding_hour() {
        let f = forecast();
        let r = &f.radiation;
        // The value stamped 12:00Z (147) holds on [11:00, 12:00).
        assert_eq!(r.at(ms("2024-01-15T11:00:00Z")), Some(147.0));
        assert_eq!(r.at(ms("2024-01-15T11:59:59Z")), Some(147.0));
        assert_eq!(r.at(ms("2024-01-15T12:00:00Z")), Some(151.0));
        // Coverage: [first stamp − 1 h, last stamp).
        assert_eq!(r.at(ms("2024-01-14T23:00:00Z")), Some(0.0));
        assert_eq!(r.at(ms("2024-01-14T22:59:59Z")), None);
        assert_eq!(r.at(ms("2024-01-16T21:30:00Z")), None); // stamped 22:00, null
        assert_eq!(r.at(ms("2024-01-16T23:00:00Z")), None);
        // Hourly steps: the step starting 11:00 gets the value stamped 12:00.
        let s = r
            .series(ms("2024-01-15T11:00:00Z"), ms("2024-01-15T13:00:00Z"), 3600)
            .unwrap();
        assert_eq!(
            s.iter().map(|x| x.value).collect::<Vec<_>>(),
            vec![Some(147.0), Some(151.0)]
        );
        // Longer and misaligned steps get exact means.
        assert!(close(
            r.mean(ms("2024-01-15T11:00:00Z"), ms("2024-01-15T13:00:00Z")),
            149.0
        ));
        assert!(close(
            r.mean(ms("2024-01-15T11:30:00Z"), ms("2024-01-15T13:00:00Z")),
            (0.5 * 147.0 + 151.0) / 1.5
        ));
        // Energy is preserved whatever the step: Σ value × duration is the same.
        let (a, b) = (ms("2024-01-15T00:00:00Z"), ms("2024-01-16T00:00:00Z"));
        let hourly: f64 = r
            .series(a - H, b - H, 3600)
            .unwrap()
            .iter()
            .map(|x| x.value.unwrap())
            .sum();
        let stamped: f64 = r.points()[..24].iter().map(|x| x.value.unwrap()).sum();
        assert!((hourly - stamped).abs() < 1e-9);
        let quarter: f64 = r
            .series(a - H, b - H, 900)
            .unwrap()
            .iter()
            .map(|x| x.value.unwrap() * 0.25)
            .sum();
        assert!((quarter - stamped).abs() < 1e-9);
        // 7-minute steps do not divide the day; the last one is cut at `end`.
        let seven: f64 = r
            .series(a - H, b - H, 7 * 60)
            .unwrap()
            .iter()
            .map(|x| {
                x.value.unwrap() * ((x.t_ms + 7 * 60_000).min(b - H) - x.t_ms) as f64 / H as f64
            })
            .sum();
        assert!((seven - stamped).abs() < 1e-9);
        // A step touching the null hours has no value.
        let tail = r
            .series(ms("2024-01-16T20:00:00Z"), ms("2024-01-16T23:00:00Z"), 3600)
            .unwrap();
        assert_eq!(
            tail.iter().map(|x| x.value).collect::<Vec<_>>(),
            vec![Some(0.0), None, None]
        );
        let cut = r
            .series(ms("2024-01-16T20:00:00Z"), ms("2024-01-16T21:00:00Z"), 7200)
            .unwrap();
        assert_eq!(cut[0].value, Some(0.0)); // the last step is cut at `end`
    }

    #[test]
    fn radiation_steps_start_at_the_beginning_of_each_hour() {
        let f = forecast();
        let steps = f.radiation.steps();
        assert_eq!(steps.len(), 49);
        assert_eq!(
            steps[0],
            Sample {
                t_ms: ms("2024-01-14T23:00:00Z"),
                value: Some(0.0)
            }
        );
        assert_eq!(
            steps[12],
            Sample {
                t_ms: ms("2024-01-15T11:00:00Z"),
                value: Some(147.0)
            }
        );
        assert_eq!(
            steps[48],
            Sample {
                t_ms: ms("2024-01-16T23:00:00Z"),
                value: None
            }
        );
        assert_eq!(f.temperature.steps(), f.temperature.points());
        // A hole between periods becomes a gap step.
        let holey = TimeSeries::new(
            Aggregation::PrecedingMean { period_ms: H },
            vec![
                Sample {
                    t_ms: H,
                    value: Some(1.0),
                },
                Sample {
                    t_ms: 3 * H,
                    value: Some(2.0),
                },
            ],
        )
        .unwrap();
        assert_eq!(
            holey.steps(),
            vec![
                Sample {
                    t_ms: 0,
                    value: Some(1.0)
                },
                Sample {
                    t_ms: H,
                    value: None
                },
                Sample {
                    t_ms: 2 * H,
                    value: Some(2.0)
                },
                Sample {
                    t_ms: 3 * H,
                    value: None
                },
            ]
        );
        assert_eq!(holey.at(H + 1), None);
        assert_eq!(holey.mean(0, 3 * H), None);
    }

    #[test]
    fn pv_variables_are_optional_and_wind_is_converted_to_m_s() {
        assert_eq!(
            (forecast().dni, forecast().dhi, forecast().wind),
            (None, None, None)
        );
        let text = |wind_unit: &str| {
            format!(
                r#"{{"utc_offset_seconds":0,"hourly_units":{{"wind_speed_10m":"{wind_unit}","direct_normal_irradiance":"W/m²"}},
                "hourly":{{"time":["2024-06-15T11:00","2024-06-15T12:00"],"temperature_2m":[20,21],
                "shortwave_radiation":[700,720],"direct_normal_irradiance":[800,null],
                "diffuse_radiation":[120,130],"wind_speed_10m":[3.6,7.2]}}}}"#
            )
        };
        let f = parse_open_meteo("pv", &text("km/h")).unwrap();
        let dni = f.dni.as_ref().unwrap();
        assert_eq!(
            dni.aggregation(),
            Aggregation::PrecedingMean { period_ms: H }
        );
        assert_eq!(dni.points()[0].value, Some(800.0));
        assert_eq!(dni.points()[1].value, None);
        assert_eq!(
            f.dhi.as_ref().unwrap().at(ms("2024-06-15T10:30:00Z")),
            Some(120.0)
        );
        let wind = f.wind.as_ref().unwrap();
        assert_eq!(wind.aggregation(), Aggregation::Instant);
        assert!(close(wind.points()[0].value, 1.0) && close(wind.points()[1].value, 2.0));
        let f = parse_open_meteo("pv", &text("m/s")).unwrap();
        assert_eq!(f.wind.unwrap().points()[1].value, Some(7.2));
        let e = parse_open_meteo("pv", &text("mph"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("wind_speed_unit=ms"), "{e}");
    }

    #[test]
    fn unix_times_and_local_times_with_an_offset() {
        let unix = r#"{"utc_offset_seconds":3600,"timezone":"Europe/Paris",
            "hourly":{"time":[1705273200,1705276800],"temperature_2m":[1,2],"shortwave_radiation":[0,null]}}"#;
        let f = parse_open_meteo("unix", unix).unwrap();
        assert_eq!(f.temperature.points()[0].t_ms, ms("2024-01-14T23:00:00Z"));
        assert_eq!(f.temperature.points()[1].value, Some(2.0));
        let local = r#"{"utc_offset_seconds":3600,"timezone":"Europe/Paris",
            "hourly":{"time":["2024-01-15T00:00","2024-01-15T01:00"],"temperature_2m":[1,2],
                      "shortwave_radiation":[0,0]}}"#;
        let f = parse_open_meteo("local", local).unwrap();
        assert_eq!(f.temperature.points()[0].t_ms, ms("2024-01-14T23:00:00Z"));
        assert_eq!(f.utc_offset_s, 3600);
    }

    #[test]
    fn bad_forecasts_say_what_and_where() {
        let err = |text: &str| {
            parse_open_meteo("open-meteo", text)
                .unwrap_err()
                .to_string()
        };
        let with = |hourly: &str| {
            format!(
                r#"{{"utc_offset_seconds":0,"hourly_units":{{"temperature_2m":"°C"}},"hourly":{hourly}}}"#
            )
        };
        assert_eq!(
            err(&with(
                r#"{"time":["2024-01-15T00:00","2024-01-15T01:00"],"temperature_2m":[1,"warm"],"shortwave_radiation":[0,0]}"#
            )),
            "open-meteo: `hourly.temperature_2m[1]`: expected a temperature in °C or null, found string \"warm\""
        );
        assert_eq!(
            err(&with(
                r#"{"time":["2024-01-15T00:00"],"temperature_2m":[1]}"#
            )),
            "open-meteo: `hourly.shortwave_radiation`: missing; expected an array of values \
             (request &hourly=temperature_2m,shortwave_radiation)"
        );
        assert!(err(r#"{"latitude":48.86}"#).starts_with(
            "open-meteo: `hourly`: missing; expected an object with `time`, `temperature_2m` and `shortwave_radiation`"
        ));
        assert_eq!(
            err(&with(
                r#"{"time":["2024-01-15T00:00","2024-01-15T01:00"],"temperature_2m":[1],"shortwave_radiation":[0,0]}"#
            )),
            "open-meteo: `hourly.temperature_2m`: has 1 values for 2 times; expected one per time"
        );
        assert!(err(&with(r#"{"time":["15/01/2024 00:00"],"temperature_2m":[1],"shortwave_radiation":[0]}"#))
            .starts_with("open-meteo: `hourly.time[0]`: expected a local time \"YYYY-MM-DDTHH:MM\" or Unix seconds, found \"15/01/2024 00:00\""));
        assert_eq!(
            err(&with(
                r#"{"time":[true],"temperature_2m":[1],"shortwave_radiation":[0]}"#
            )),
            "open-meteo: `hourly.time[0]`: expected a local time \"YYYY-MM-DDTHH:MM\" or Unix seconds, found boolean true"
        );
        // What local times across a DST change look like.
        assert!(
            err(&with(
                r#"{"time":["2024-03-31T01:00","2024-03-31T03:00","2024-03-31T04:00"],
                "temperature_2m":[1,2,3],"shortwave_radiation":[0,0,0]}"#
            ))
            .starts_with(
                "open-meteo: `hourly.time[2]`: is 3600 s after the previous time, expected 7200 s"
            )
        );
        assert!(
            err(&with(
                r#"{"time":["2024-10-27T02:00","2024-10-27T02:00"],
                "temperature_2m":[1,2],"shortwave_radiation":[0,0]}"#
            ))
            .contains("request timezone=UTC or timeformat=unixtime")
        );
        assert_eq!(
            err(
                r#"{"utc_offset_seconds":0,"hourly_units":{"temperature_2m":"°F"},
                   "hourly":{"time":["2024-01-15T00:00"],"temperature_2m":[34],"shortwave_radiation":[0]}}"#
            ),
            "open-meteo: `hourly_units.temperature_2m`: expected unit \"°C\", found \"°F\" (request the API's default units)"
        );
        assert_eq!(
            err(
                r#"{"error":true,"reason":"Cannot initialize WeatherVariable from invalid String value tempeture_2m for key hourly"}"#
            ),
            "open-meteo: Open-Meteo answered an error: Cannot initialize WeatherVariable from invalid String value tempeture_2m for key hourly"
        );
        assert_eq!(
            err(
                r#"{"hourly":{"time":["2024-01-15T00:00"],"temperature_2m":[1],"shortwave_radiation":[0]}}"#
            ),
            "open-meteo: `hourly.time[0]`: local times need `utc_offset_seconds` at the top level, which is missing"
        );
        assert_eq!(
            err(&with(
                r#"{"time":[],"temperature_2m":[],"shortwave_radiation":[]}"#
            )),
            "open-meteo: `hourly`: `time` is empty: the forecast has no hours"
        );
        assert_eq!(
            err(r#"{"utc_offset_seconds":"+01:00","hourly":{}}"#),
            "open-meteo: `utc_offset_seconds`: expected an offset in whole seconds, found string \"+01:00\""
        );
        assert!(err("").starts_with("open-meteo: not valid JSON"));
        assert_eq!(
            err("[]"),
            "open-meteo: expected a JSON object, found an array of 0 item(s)"
        );
    }

    #[test]
    fn series_requests_and_constructors_refuse_nonsense() {
        let f = forecast();
        assert!(f.temperature.series(0, H, 0).is_err());
        assert!(f.radiation.series(H, 0, 60).is_err());
        assert!(
            TimeSeries::new(
                Aggregation::Instant,
                vec![
                    Sample {
                        t_ms: H,
                        value: None
                    },
                    Sample {
                        t_ms: H,
                        value: None
                    }
                ]
            )
            .is_err()
        );
        assert!(TimeSeries::new(Aggregation::PrecedingMean { period_ms: 0 }, vec![]).is_err());
        assert!(
            TimeSeries::new(
                Aggregation::Instant,
                vec![Sample {
                    t_ms: 0,
                    value: Some(f64::NAN)
                }]
            )
            .is_err()
        );
        let empty = TimeSeries::new(Aggregation::Instant, vec![]).unwrap();
        assert_eq!(empty.at(0), None);
        assert_eq!(empty.series(0, H, 600).unwrap().len(), 6);
    }
}
