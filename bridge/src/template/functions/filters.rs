//! Printing values as Python does, and the conversion and time functions
//! and filters of HA's template environment (`float`, `int`, `round`,
//! `bool`, `average`, `as_timestamp`, `timestamp_*`, ...).

use super::{Ctx, VALUE_ERROR, no_default};
use crate::template::datetime::DateTime;
use minijinja::value::{Kwargs, Rest, Serde, Value};
use minijinja::{Environment, Error, ErrorKind};
use std::sync::Arc;

/// Registers the time, conversion and number functions and filters.
pub(super) fn register(env: &mut Environment<'static>, ctx: &Arc<Ctx>) {
    // Time.
    let c = ctx.clone();
    env.add_function("now", move || {
        c.time();
        DateTime::from_ms(c.world.now_ms, &c.world.tz).map(Value::from_object)
    });
    let c = ctx.clone();
    env.add_function("utcnow", move || {
        c.time();
        DateTime::from_ms(c.world.now_ms, &jiff::tz::TimeZone::UTC).map(Value::from_object)
    });
    let c = ctx.clone();
    env.add_function("as_timestamp", move |v: Value, d: Option<Value>| {
        as_timestamp(&c, &v, d)
    });
    let c = ctx.clone();
    env.add_filter("as_timestamp", move |v: Value, d: Option<Value>| {
        as_timestamp(&c, &v, d)
    });
    let c = ctx.clone();
    env.add_function("as_datetime", move |v: Value, d: Option<Value>| {
        as_datetime(&c, &v, d)
    });
    let c = ctx.clone();
    env.add_filter("as_datetime", move |v: Value, d: Option<Value>| {
        as_datetime(&c, &v, d)
    });
    let c = ctx.clone();
    env.add_filter(
        "timestamp_custom",
        move |v: Value, fmt: Option<String>, local: Option<bool>, d: Option<Value>| {
            undefined(&v)?;
            let tz = if local.unwrap_or(true) {
                c.world.tz.clone()
            } else {
                jiff::tz::TimeZone::UTC
            };
            match timestamp(&v).and_then(|s| DateTime::from_seconds(s, &tz)) {
                Some(d) => Ok(Value::from(
                    d.strftime(fmt.as_deref().unwrap_or("%Y-%m-%d %H:%M:%S"))?,
                )),
                None => d.ok_or_else(|| no_default("timestamp_custom", &v)),
            }
        },
    );
    let c = ctx.clone();
    env.add_filter("timestamp_local", move |v: Value, d: Option<Value>| {
        undefined(&v)?;
        match timestamp(&v).and_then(|s| DateTime::from_seconds(s, &c.world.tz)) {
            Some(t) => Ok(Value::from(t.iso('T'))),
            None => d.ok_or_else(|| no_default("timestamp_local", &v)),
        }
    });
    env.add_filter("timestamp_utc", move |v: Value, d: Option<Value>| {
        undefined(&v)?;
        match timestamp(&v).and_then(|s| DateTime::from_seconds(s, &jiff::tz::TimeZone::UTC)) {
            Some(t) => Ok(Value::from(t.iso('T'))),
            None => d.ok_or_else(|| no_default("timestamp_utc", &v)),
        }
    });

    // HA's `as_local`: a datetime in the local time zone.
    let c = ctx.clone();
    let as_local = move |v: Value| -> Result<Value, Error> {
        match v.downcast_object_ref::<DateTime>() {
            Some(d) => Ok(Value::from_object(DateTime(
                d.0.with_time_zone(c.world.tz.clone()),
            ))),
            None => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("as_local expects a datetime, got '{}'", py_str(&v)),
            )),
        }
    };
    env.add_filter("as_local", as_local.clone());
    env.add_function("as_local", as_local);
    // HA's `today_at("HH:MM[:SS]")`: today (local) at that time.
    let c = ctx.clone();
    let today_at = move |t: Option<String>| -> Result<Value, Error> {
        let today = DateTime::from_ms(c.world.now_ms, &c.world.tz)
            .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "no current time"))?;
        let text = t.unwrap_or_default();
        let time = if text.is_empty() {
            jiff::civil::Time::midnight()
        } else {
            text.parse::<jiff::civil::Time>().map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{VALUE_ERROR} could not convert str to datetime: '{text}'"),
                )
            })?
        };
        let at = today
            .0
            .date()
            .to_datetime(time)
            .to_zoned(c.world.tz.clone())
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
        Ok(Value::from_object(DateTime(at)))
    };
    env.add_filter("today_at", today_at.clone());
    env.add_function("today_at", today_at);
    // HA's `average(list_or_values..., default=...)`.
    let average = |args: Rest<Value>, kwargs: Kwargs| -> Result<Value, Error> {
        let mut default: Option<Value> = kwargs.get("default")?;
        kwargs.assert_all_used()?;
        let first = args.first().cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::MissingArgument,
                "average expected at least 1 argument, got 0",
            )
        })?;
        let items: Vec<Value> = if first.as_str().is_none() && first.try_iter().is_ok() {
            if args.len() > 1 && default.is_none() {
                default = args.get(1).cloned();
            }
            // A lazy `[0] * 100000000` is not collected whole.
            let mut items = Vec::new();
            for v in first.try_iter()? {
                if items.len() >= crate::template::MAX_ITEMS {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("average: more than {} values", crate::template::MAX_ITEMS),
                    ));
                }
                items.push(v);
            }
            items
        } else if args.len() == 1 {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("'{}' object is not iterable", py_str(&first)),
            ));
        } else {
            args.to_vec()
        };
        let nums: Option<Vec<f64>> = items
            .iter()
            .map(|v| {
                (v.is_number() || bool_of(v).is_some())
                    .then(|| py_float(v))
                    .flatten()
            })
            .collect();
        match nums.filter(|n| !n.is_empty()) {
            Some(n) => Ok(Value::from(n.iter().sum::<f64>() / n.len() as f64)),
            None => default.ok_or_else(|| no_default("average", &first)),
        }
    };
    env.add_filter("average", average);
    env.add_function("average", average);

    // Numbers (HA's forgiving_* with a default, or an error).
    env.add_filter("float", |v: Value, d: Option<Value>| {
        float_or(v, d, "float")
    });
    env.add_function("float", |v: Value, d: Option<Value>| {
        float_or(v, d, "float")
    });
    env.add_filter("int", |v: Value, d: Option<Value>, base: Option<u32>| {
        int_or(v, d, base, "int")
    });
    env.add_function("int", |v: Value, d: Option<Value>, base: Option<u32>| {
        int_or(v, d, base, "int")
    });
    env.add_filter("round", round);
    env.add_filter("bool", boolean);
    env.add_function("bool", boolean);
    let is_number = |v: Value| py_float(&v).is_some_and(f64::is_finite);
    env.add_filter("is_number", is_number);
    env.add_function("is_number", is_number);
    env.add_test("is_number", is_number);
    env.add_filter(
        "multiply",
        |v: Value, by: f64, d: Option<Value>| match py_float(&v) {
            Some(f) => Ok(Value::from(f * by)),
            None => d.ok_or_else(|| no_default("multiply", &v)),
        },
    );
    let iif = |v: Value, t: Option<Value>, f: Option<Value>, n: Option<Value>| {
        if v.is_none()
            && let Some(n) = n
        {
            return n;
        }
        if v.is_true() {
            t.unwrap_or(Value::from(true))
        } else {
            f.unwrap_or(Value::from(false))
        }
    };
    env.add_filter("iif", iif);
    env.add_function("iif", iif);
    env.add_filter("to_json", |v: Value| {
        serde_json::to_string(&v)
            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))
    });
    env.add_filter("from_json", |s: String| {
        serde_json::from_str::<serde_json::Value>(&s)
            .map(|v| Value::from(Serde(v)))
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{VALUE_ERROR} from_json got invalid input: {e}"),
                )
            })
    });
}

/// How deeply [`py_repr`] descends into lists and dicts (Python's repr
/// gives up with a `RecursionError` too; a template can nest a list 100 000
/// deep with `namespace()` in a loop).
pub const MAX_REPR_DEPTH: usize = 100;

/// Why a [`repr`] stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReprLimit {
    /// Longer than the limit given.
    TooLong,
    /// Nested deeper than [`MAX_REPR_DEPTH`].
    TooDeep,
}

/// Python's `str()` of a template value, for messages: cut after
/// [`crate::template::MAX_OUTPUT`] bytes, `[...]` past [`MAX_REPR_DEPTH`].
pub fn py_str(v: &Value) -> String {
    py_repr(v, true)
}

/// Python's `str()` (`top`) or `repr()` (inside a list or dict) of a value,
/// for messages (cut as [`py_str`]).
pub fn py_repr(v: &Value, top: bool) -> String {
    let mut out = String::new();
    match repr(&mut out, v, top, 0, crate::template::MAX_OUTPUT) {
        Err(ReprLimit::TooDeep) => out.push_str("[...]"),
        Err(ReprLimit::TooLong) => out.push_str("..."),
        Ok(()) => {}
    }
    out
}

/// Writes Python's `str()` (`top`) or `repr()` of `v` to `out`, stopping
/// (with what was written so far) once `out` is longer than `limit` bytes or
/// the nesting deeper than [`MAX_REPR_DEPTH`]: a lazy `[0] * 100000000` is
/// not walked to its end.
pub fn repr(
    out: &mut String,
    v: &Value,
    top: bool,
    depth: usize,
    limit: usize,
) -> Result<(), ReprLimit> {
    use minijinja::value::ValueKind as K;
    match v.kind() {
        K::Undefined => {}
        K::None => out.push_str("None"),
        K::Bool => out.push_str(if v.is_true() { "True" } else { "False" }),
        K::Number => match serde_json::to_value(v) {
            Ok(serde_json::Value::Number(n)) if n.is_f64() => {
                out.push_str(&py_float_repr(n.as_f64().unwrap_or(0.0)))
            }
            _ => out.push_str(&v.to_string()),
        },
        K::String if top => out.push_str(v.as_str().unwrap_or_default()),
        K::String => out.push_str(&py_str_repr(v.as_str().unwrap_or_default())),
        K::Seq | K::Iterable | K::Map if depth >= MAX_REPR_DEPTH => {
            return Err(ReprLimit::TooDeep);
        }
        // A lazy iterable (`[0] * 100000000`) prints as the list it stands
        // for, item by item (its Display would render all of it first).
        K::Seq | K::Iterable => {
            out.push('[');
            if let Ok(items) = v.try_iter() {
                for (n, item) in items.enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    repr(out, &item, false, depth + 1, limit)?;
                }
            }
            out.push(']');
        }
        K::Map => {
            out.push('{');
            if let Ok(keys) = v.try_iter() {
                for (n, k) in keys.enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    repr(out, &k, false, depth + 1, limit)?;
                    out.push_str(": ");
                    let val = v.get_item(&k).unwrap_or_default();
                    repr(out, &val, false, depth + 1, limit)?;
                }
            }
            out.push('}');
        }
        _ => out.push_str(&v.to_string()),
    }
    if out.len() > limit {
        return Err(ReprLimit::TooLong);
    }
    Ok(())
}

/// Python's `repr(float)`: `3.0`, `0.1`, `1e+16`, `nan`, `inf`.
fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let e = format!("{f:e}");
        let (m, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{m}e{sign}{digits:0>2}");
    }
    crate::template::literal::py_float(f)
}

/// Python's `repr(str)`: single quotes unless the text has one and no
/// double quote.
fn py_str_repr(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn bool_of(v: &Value) -> Option<bool> {
    (v.kind() == minijinja::value::ValueKind::Bool).then(|| v.is_true())
}

fn undefined(v: &Value) -> Result<(), Error> {
    if v.is_undefined() {
        Err(Error::new(ErrorKind::UndefinedError, "value is undefined"))
    } else {
        Ok(())
    }
}

/// Python's `float(value)`: numbers, booleans and numeric strings
/// (whitespace, `_` between digits, `inf`, `nan` allowed).
pub fn py_float(v: &Value) -> Option<f64> {
    if let Some(b) = bool_of(v) {
        return Some(if b { 1.0 } else { 0.0 });
    }
    if let Some(s) = v.as_str() {
        let t = s.trim();
        if t.starts_with('_') || t.ends_with('_') || t.contains("__") {
            return None;
        }
        return t.replace('_', "").parse::<f64>().ok();
    }
    if v.is_number() {
        return f64::try_from(v.clone()).ok();
    }
    None
}

/// jinja2's `do_int` (`int(value)`, else `int(float(value))`).
fn py_int(v: &Value, base: u32) -> Option<i64> {
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    if let Some(s) = v.as_str() {
        let t = s.trim().replace('_', "");
        let (neg, digits) = match t.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t.strip_prefix('+').unwrap_or(&t)),
        };
        let digits = match base {
            16 => digits.trim_start_matches("0x").trim_start_matches("0X"),
            8 => digits.trim_start_matches("0o").trim_start_matches("0O"),
            2 => digits.trim_start_matches("0b").trim_start_matches("0B"),
            _ => digits,
        };
        if let Ok(i) = i64::from_str_radix(digits, base) {
            return Some(if neg { -i } else { i });
        }
    }
    let f = py_float(v)?;
    (f.is_finite() && f.abs() < 9.2e18).then(|| f.trunc() as i64)
}

fn float_or(value: Value, default: Option<Value>, name: &str) -> Result<Value, Error> {
    undefined(&value)?;
    match py_float(&value) {
        Some(f) => Ok(f.into()),
        None => default.ok_or_else(|| no_default(name, &value)),
    }
}

fn int_or(
    value: Value,
    default: Option<Value>,
    base: Option<u32>,
    name: &str,
) -> Result<Value, Error> {
    undefined(&value)?;
    match py_int(&value, base.unwrap_or(10)) {
        Some(i) => Ok(i.into()),
        None => default.ok_or_else(|| no_default(name, &value)),
    }
}

/// HA's `forgiving_round(value, precision=0, method="common", default)`.
fn round(value: Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    undefined(&value)?;
    let precision = match args.first() {
        Some(p) => p.as_i64().unwrap_or(0),
        None => kwargs.get::<Option<i64>>("precision")?.unwrap_or(0),
    };
    let method: String = match args.get(1) {
        Some(m) => m.to_string(),
        None => kwargs
            .get::<Option<String>>("method")?
            .unwrap_or_else(|| "common".into()),
    };
    let default = match args.get(2) {
        Some(d) => Some(d.clone()),
        None => kwargs.get::<Option<Value>>("default")?,
    };
    kwargs.assert_all_used()?;
    let Some(f) = py_float(&value) else {
        return default.ok_or_else(|| no_default("round", &value));
    };
    let precision = precision.clamp(-15, 15) as i32;
    let m = 10f64.powi(precision);
    let rounded = match method.as_str() {
        "ceil" => (f * m).ceil() / m,
        "floor" => (f * m).floor() / m,
        "half" => (f * 2.0).round_ties_even() / 2.0,
        // Python's round(): half to even, on the exact binary value (as
        // Rust's formatting rounds).
        _ if precision >= 0 => format!("{f:.p$}", p = precision as usize)
            .parse::<f64>()
            .unwrap_or(f),
        _ => (f * m).round_ties_even() / m,
    };
    if precision == 0 && rounded.is_finite() {
        Ok((rounded as i64).into())
    } else {
        Ok(rounded.into())
    }
}

/// HA's `forgiving_boolean`.
fn boolean(value: Value, default: Option<Value>) -> Result<Value, Error> {
    undefined(&value)?;
    if let Some(b) = bool_of(&value) {
        return Ok(b.into());
    }
    let text = py_str(&value).to_lowercase();
    match text.trim() {
        "1" | "true" | "yes" | "on" | "enable" | "1.0" => Ok(true.into()),
        "0" | "false" | "no" | "off" | "disable" | "0.0" => Ok(false.into()),
        _ => default.ok_or_else(|| no_default("bool", &value)),
    }
}

fn timestamp(value: &Value) -> Option<f64> {
    if value.as_str().is_some() || value.is_none() {
        return None; // utc_from_timestamp(str) is a TypeError
    }
    py_float(value)
}

/// HA's `as_timestamp`: a datetime or a date-time string → seconds.
fn as_timestamp(ctx: &Ctx, value: &Value, default: Option<Value>) -> Result<Value, Error> {
    undefined(value)?;
    if let Some(d) = value.downcast_object_ref::<DateTime>() {
        return Ok(d.seconds().into());
    }
    match DateTime::parse(&py_str(value), &ctx.world.tz) {
        Some(d) => Ok(d.seconds().into()),
        None => default.ok_or_else(|| no_default("as_timestamp", value)),
    }
}

/// HA's `as_datetime`: a datetime, a UNIX timestamp or a date-time string.
fn as_datetime(ctx: &Ctx, value: &Value, default: Option<Value>) -> Result<Value, Error> {
    undefined(value)?;
    if value.downcast_object_ref::<DateTime>().is_some() {
        return Ok(value.clone());
    }
    let utc = jiff::tz::TimeZone::UTC;
    if let Some(d) = py_float(value).and_then(|s| DateTime::from_seconds(s, &utc)) {
        return Ok(Value::from_object(d));
    }
    if let Some(s) = value.as_str()
        && let Some(d) = DateTime::parse(s, &ctx.world.tz)
    {
        return Ok(Value::from_object(d));
    }
    match default {
        Some(d) => Ok(d),
        // HA: None for a string, for compatibility with 2024.1.
        None if value.as_str().is_some() => Ok(Value::from(())),
        None => Err(no_default("as_datetime", value)),
    }
}
