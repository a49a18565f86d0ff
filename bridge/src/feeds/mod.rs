//! Feeds: outside data the controllers plan with (DESIGN.md §6: the `mpc`
//! and `tariff-optimizer` plugins read a price, an outdoor temperature and a
//! solar irradiance forecast through the host's `forecast` import).
//!
//! [`tariff`] and [`weather`] are the pure part: parsers for the payloads
//! the feeds fetch, and the models that answer "what is the value at
//! instant t" and "what is the series over `[start, end)` in steps of s
//! seconds". No I/O, no entities, no polling there: the feed drivers that
//! fetch and publish are built on top of them.
//!
//! - [`tariff`]: electricity prices in €/kWh. EDF Tempo (three day colours ×
//!   HC/HP, Europe/Paris local time, colour days running 06:00 → 06:00) with
//!   parsers for the two public colour calendars (api-couleur-tempo.fr and
//!   RTE's "Tempo Like Supply Contract" API); generic time-of-use windows per
//!   day or per weekday in a local time zone; spot price lists (e.g. hourly
//!   day-ahead prices), each price valid until the next.
//! - [`weather`]: Open-Meteo's hourly forecast (`temperature_2m` °C,
//!   `shortwave_radiation` W/m²) as two time series with gaps where the API
//!   sent `null`, and interpolation over them (linear for the instantaneous
//!   temperature, interval means for the preceding-hour-mean radiation).
//! - [`tariff_driver`] and [`weather_driver`]: the I/O on top: native
//!   drivers (`[tariff]`, `[weather]` in the config) that poll the sources
//!   over HTTP ([`fetch`]), show the values in force as Home Assistant
//!   entities and publish the series to the bridge's
//!   [`Forecasts`](crate::forecast::Forecasts).
//! - [`calendar`]: opening hours from an iCalendar feed (`[[calendar]]`),
//!   parser, recurrence and driver in one folder; it fetches `https://`
//!   too ([`https`]: rustls, the alert webhooks' TLS stack).
//!
//! Conventions shared by the parsers: instants are milliseconds since the Unix
//! epoch (UTC), as in the WIT contract (`wit/controller.wit`); a value that
//! is not known is `None`, never a made-up number; every parse error names
//! the input, the place in it (a JSON path such as `hourly.time[3]`), what
//! was expected and what was found. Nothing here panics on bad input.

pub mod calendar;
pub mod fetch;
pub mod https;
pub mod tariff;
pub mod tariff_driver;
pub mod weather;
pub mod weather_driver;

use serde_json::Value;
use std::fmt;

/// One value of a series at an instant; `None` is a gap (unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// ms since the Unix epoch (UTC).
    pub t_ms: i64,
    pub value: Option<f64>,
}

/// Most steps one `series` call produces (a year at 1-minute steps is
/// 525 600); a larger request is refused instead of allocating for it.
pub const MAX_STEPS: i64 = 1_000_000;

/// A payload or configuration that could not be used, or a request that
/// makes no sense. `input` names what was being read (a URL, a file, a
/// config key), `path` where in it (empty for the whole input).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedError {
    pub input: String,
    pub path: String,
    pub reason: String,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.input, self.reason)
        } else {
            write!(f, "{}: `{}`: {}", self.input, self.path, self.reason)
        }
    }
}

impl std::error::Error for FeedError {}

impl FeedError {
    pub fn new(input: &str, path: &str, reason: impl Into<String>) -> Self {
        FeedError {
            input: input.to_string(),
            path: path.to_string(),
            reason: reason.into(),
        }
    }
}

/// The step instants `start, start + step, …` before `end` (ms), checked.
pub(crate) fn step_times(
    start_ms: i64,
    end_ms: i64,
    step_s: i64,
) -> Result<impl Iterator<Item = i64>, FeedError> {
    let input = "series request";
    if step_s <= 0 {
        return Err(FeedError::new(
            input,
            "step_s",
            format!("expected a step > 0 s, found {step_s}"),
        ));
    }
    check_range(start_ms, end_ms)?;
    let step_ms = step_s
        .checked_mul(1000)
        .ok_or_else(|| FeedError::new(input, "step_s", format!("step {step_s} s is too large")))?;
    let span = end_ms as i128 - start_ms as i128;
    let count = (span + step_ms as i128 - 1) / step_ms as i128;
    if count > MAX_STEPS as i128 {
        return Err(FeedError::new(
            input,
            "",
            format!(
                "[{start_ms}, {end_ms}) ms in steps of {step_s} s is {count} steps, \
                 more than the {MAX_STEPS} allowed"
            ),
        ));
    }
    Ok((0..count as i64).map(move |i| start_ms + i * step_ms))
}

/// `end >= start`, both ms.
pub(crate) fn check_range(start_ms: i64, end_ms: i64) -> Result<(), FeedError> {
    if end_ms < start_ms {
        return Err(FeedError::new(
            "series request",
            "",
            format!("end {end_ms} ms is before start {start_ms} ms"),
        ));
    }
    Ok(())
}

/// Parses JSON text, naming `input` on failure.
pub(crate) fn parse_json(input: &str, text: &str) -> Result<Value, FeedError> {
    serde_json::from_str(text)
        .map_err(|e| FeedError::new(input, "", format!("not valid JSON: {e}")))
}

/// A place in a JSON document, for reading with errors that say where.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    input: &'a str,
    path: String,
    value: &'a Value,
}

impl<'a> Node<'a> {
    pub(crate) fn root(input: &'a str, value: &'a Value) -> Self {
        Node {
            input,
            path: String::new(),
            value,
        }
    }

    pub(crate) fn value(&self) -> &'a Value {
        self.value
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> FeedError {
        FeedError::new(self.input, &self.path, reason)
    }

    fn mismatch(&self, expected: &str) -> FeedError {
        self.error(format!(
            "expected {expected}, found {}",
            describe(self.value)
        ))
    }

    fn child(&self, key: &str, value: &'a Value) -> Node<'a> {
        let path = if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        };
        Node {
            input: self.input,
            path,
            value,
        }
    }

    fn object(&self) -> Result<&'a serde_json::Map<String, Value>, FeedError> {
        self.value
            .as_object()
            .ok_or_else(|| self.mismatch("a JSON object"))
    }

    /// A required member; `expected` says what it should hold.
    pub(crate) fn field(&self, key: &str, expected: &str) -> Result<Node<'a>, FeedError> {
        match self.object()?.get(key) {
            Some(v) => Ok(self.child(key, v)),
            None => Err(self
                .child(key, &Value::Null)
                .error(format!("missing; expected {expected}"))),
        }
    }

    /// An optional member; absent and `null` are both `None`.
    pub(crate) fn opt_field(&self, key: &str) -> Result<Option<Node<'a>>, FeedError> {
        Ok(match self.object()?.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(self.child(key, v)),
        })
    }

    pub(crate) fn items(&self, expected: &str) -> Result<Vec<Node<'a>>, FeedError> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.mismatch(expected))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| Node {
                input: self.input,
                path: format!("{}[{i}]", self.path),
                value: v,
            })
            .collect())
    }

    pub(crate) fn str(&self, expected: &str) -> Result<&'a str, FeedError> {
        self.value.as_str().ok_or_else(|| self.mismatch(expected))
    }

    /// A finite number.
    pub(crate) fn f64(&self, expected: &str) -> Result<f64, FeedError> {
        match self.value.as_f64() {
            Some(x) if x.is_finite() => Ok(x),
            _ => Err(self.mismatch(expected)),
        }
    }

    /// A finite number or `null` (→ `None`).
    pub(crate) fn opt_f64(&self, expected: &str) -> Result<Option<f64>, FeedError> {
        if self.value.is_null() {
            Ok(None)
        } else {
            self.f64(expected).map(Some)
        }
    }

    /// An integer (a JSON number without a fraction).
    pub(crate) fn i64(&self, expected: &str) -> Result<i64, FeedError> {
        self.value.as_i64().ok_or_else(|| self.mismatch(expected))
    }
}

/// A short description of a JSON value for error messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let mut e: String = s.chars().take(40).collect();
            if e.len() < s.len() {
                e.push('…');
            }
            format!("string \"{e}\"")
        }
        Value::Array(a) => format!("an array of {} item(s)", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_times_cover_the_half_open_range() {
        let t: Vec<i64> = step_times(0, 10_000, 3).unwrap().collect();
        assert_eq!(t, vec![0, 3000, 6000, 9000]);
        assert_eq!(step_times(5, 5, 1).unwrap().count(), 0);
    }

    #[test]
    fn step_times_refuse_nonsense() {
        let e = step_times(0, 1000, 0).err().unwrap();
        assert!(
            e.to_string().contains("expected a step > 0 s, found 0"),
            "{e}"
        );
        let e = step_times(1000, 0, 1).err().unwrap();
        assert!(e.to_string().contains("before start"), "{e}");
        let e = step_times(0, i64::MAX, 1).err().unwrap();
        assert!(e.to_string().contains("more than the"), "{e}");
    }

    #[test]
    fn node_errors_say_where_and_what() {
        let v: Value = serde_json::from_str(r#"{"a":{"b":[1,"x"]}}"#).unwrap();
        let root = Node::root("test.json", &v);
        let items = root
            .field("a", "an object")
            .unwrap()
            .field("b", "a list")
            .unwrap()
            .items("a list")
            .unwrap();
        assert_eq!(items[0].f64("a number").unwrap(), 1.0);
        let e = items[1].f64("a number").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.json: `a.b[1]`: expected a number, found string \"x\""
        );
        let e = root.field("zz", "an object").unwrap_err();
        assert_eq!(
            e.to_string(),
            "test.json: `zz`: missing; expected an object"
        );
        let e = parse_json("in", "{").unwrap_err();
        assert!(e.to_string().starts_with("in: not valid JSON"), "{e}");
    }
}
