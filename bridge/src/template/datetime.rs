//! Python's aware `datetime` as templates see it (`now()`, `utcnow()`,
//! `last_changed`, `as_datetime`): printed as `str(datetime)` does
//! (`2026-12-07 19:00:00.250000+00:00`), with `year` … `microsecond`,
//! `tzinfo`, and the methods `timestamp()`, `isoformat()`,
//! `strftime(fmt)`, `date()`, `weekday()`, `isoweekday()`; comparable with
//! another datetime. Python's arithmetic (`now() - timedelta(...)`) is not
//! available: minijinja has no operator overloading.

use jiff::Zoned;
use jiff::tz::TimeZone;
use minijinja::value::{DynObject, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct DateTime(pub Zoned);

impl DateTime {
    pub fn from_ms(ms: i64, tz: &TimeZone) -> Option<DateTime> {
        let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
        Some(DateTime(ts.to_zoned(tz.clone())))
    }

    /// `utc_from_timestamp(seconds)` in `tz`.
    pub fn from_seconds(secs: f64, tz: &TimeZone) -> Option<DateTime> {
        if !secs.is_finite() {
            return None;
        }
        let micros = (secs * 1e6).round();
        if micros.abs() > 8.0e18 {
            return None;
        }
        let ts = jiff::Timestamp::from_microsecond(micros as i64).ok()?;
        Some(DateTime(ts.to_zoned(tz.clone())))
    }

    /// HA's `dt_util.parse_datetime`: ISO 8601 with `T` or a space, with or
    /// without an offset (without: in `tz`, HA's local time zone).
    pub fn parse(text: &str, tz: &TimeZone) -> Option<DateTime> {
        let t = text.trim();
        if let Ok(ts) = t.parse::<jiff::Timestamp>() {
            return Some(DateTime(ts.to_zoned(tz.clone())));
        }
        let civil = t.parse::<jiff::civil::DateTime>().ok()?;
        civil.to_zoned(tz.clone()).ok().map(DateTime)
    }

    pub fn seconds(&self) -> f64 {
        self.0.timestamp().as_microsecond() as f64 / 1e6
    }

    fn micros(&self) -> i32 {
        self.0.subsec_nanosecond() / 1000
    }

    fn offset(&self) -> String {
        let secs = self.0.offset().seconds();
        let sign = if secs < 0 { '-' } else { '+' };
        let a = secs.abs();
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    }

    /// Python's `isoformat(sep)`.
    pub fn iso(&self, sep: char) -> String {
        let z = &self.0;
        let mut s = format!(
            "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
            z.year(),
            z.month(),
            z.day(),
            z.hour(),
            z.minute(),
            z.second()
        );
        if self.micros() != 0 {
            s.push_str(&format!(".{:06}", self.micros()));
        }
        s.push_str(&self.offset());
        s
    }

    /// Python's `strftime` for the common directives (jiff's are the
    /// same letters; `%f` is Python's six-digit microseconds).
    pub fn strftime(&self, fmt: &str) -> Result<String, Error> {
        let fmt = fmt.replace("%f", "%6f");
        let mut out = String::new();
        use std::fmt::Write;
        write!(out, "{}", self.0.strftime(&fmt)).map_err(|_| {
            Error::new(
                ErrorKind::InvalidOperation,
                format!("invalid strftime format {fmt:?}"),
            )
        })?;
        Ok(out)
    }
}

impl Object for DateTime {
    fn repr(self: &Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let z = &self.0;
        Some(match key.as_str()? {
            "year" => z.year().into(),
            "month" => z.month().into(),
            "day" => z.day().into(),
            "hour" => z.hour().into(),
            "minute" => z.minute().into(),
            "second" => z.second().into(),
            "microsecond" => self.micros().into(),
            "tzinfo" => z.time_zone().iana_name().unwrap_or("UTC").into(),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timestamp" => Ok(self.seconds().into()),
            "isoformat" => Ok(self.iso('T').into()),
            "strftime" => {
                let fmt = args.first().and_then(Value::as_str).ok_or_else(|| {
                    Error::new(
                        ErrorKind::MissingArgument,
                        "strftime() takes a format string",
                    )
                })?;
                Ok(self.strftime(fmt)?.into())
            }
            "date" => {
                let z = &self.0;
                Ok(format!("{:04}-{:02}-{:02}", z.year(), z.month(), z.day()).into())
            }
            "weekday" => Ok((self.0.weekday().to_monday_zero_offset()).into()),
            "isoweekday" => Ok((self.0.weekday().to_monday_one_offset()).into()),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.0.timestamp().cmp(&other.0.timestamp()))
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iso(' '))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_python_does() {
        let tz = TimeZone::UTC;
        let d = DateTime::from_ms(1_765_134_000_250, &tz).unwrap();
        assert_eq!(d.iso(' '), "2025-12-07 19:00:00.250000+00:00");
        let d = DateTime::from_ms(1_765_134_000_000, &tz).unwrap();
        assert_eq!(d.iso('T'), "2025-12-07T19:00:00+00:00");
        assert_eq!(d.strftime("%H:%M %d/%m/%Y").unwrap(), "19:00 07/12/2025");
        let p = DateTime::parse("2025-12-07 19:00:00", &tz).unwrap();
        assert_eq!(p.seconds(), 1_765_134_000.0);
        let p = DateTime::parse("2025-12-07T20:00:00+01:00", &tz).unwrap();
        assert_eq!(p.seconds(), 1_765_134_000.0);
        assert!(DateTime::parse("tomorrow", &tz).is_none());
    }
}
