//! The Gen1 HTTP API, as plain parsers plus a small GET client.
//!
//! Source: Shelly Gen1 API docs (<https://shelly-api-docs.shelly.cloud/gen1/>):
//! "Common HTTP API" (`GET /shelly`: `type`, `mac`, `auth`, `fw`,
//! `num_outputs`, `num_meters`, `num_emeters`; `GET /status`), "Shelly
//! Plug S / 1PM: /status" (`relays[]`: `ison`, `has_timer`, `overpower`,
//! `source`; `meters[]`: `power` W, `is_valid`, `timestamp`, `counters`,
//! `total` watt-minutes since boot), "Shelly EM: /status" (`emeters[]`:
//! `power` W, `reactive`, `voltage` V, `is_valid`, `total` Wh,
//! `total_returned` Wh), "/relay/{index}" (`?turn=on|off|toggle` →
//! the relay object, `ison` its new state). Compare evcc's
//! `meter/shelly/gen1api_types.go`, which reads the same fields.
//!
//! Every value is checked: a wrong type, a non-finite number or a value out
//! of range ([`POWER_LIMIT_W`], [`VOLTAGE_LIMIT_V`], [`ENERGY_LIMIT_WH`])
//! rejects the whole answer with the field named (`meters[0].power`), so
//! the driver keeps the last good state. Nothing is clamped.

use super::energy::WH_PER_WATT_MINUTE;
use crate::drivers::http_client::{HttpClient, HttpFailure};
use bytes::Bytes;
use serde_json::{Map, Value};
use std::time::Duration;

/// W: a plug or a 1PM switches at most 16 A, an EM's clamp reads up to
/// 120 A; anything beyond ±100 kW is a broken reading, not a load.
pub const POWER_LIMIT_W: f64 = 100_000.0;
/// V: mains is 100–240 V; beyond 1 kV is a broken reading.
pub const VOLTAGE_LIMIT_V: f64 = 1_000.0;
/// Wh: 1 GWh is over a century at 1 kW; beyond is a broken counter.
pub const ENERGY_LIMIT_WH: f64 = 1e9;
/// Relays and meters a Gen1 device has at most (Shelly 4Pro: 4; EM: 2
/// emeters, 3EM: 3).
pub const MAX_CHANNELS: usize = 4;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_BODY: usize = 64 * 1024;

/// A field that is not what the API documents.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadField {
    #[error("expected a JSON object: {0}")]
    NotJson(String),
    #[error("{field}: expected {expected}, got {got}")]
    Field {
        field: String,
        expected: &'static str,
        got: String,
    },
}

fn bad(field: impl Into<String>, expected: &'static str, got: impl Into<String>) -> BadField {
    BadField::Field {
        field: field.into(),
        expected,
        got: got.into(),
    }
}

/// `GET /shelly`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// `SHPLG-S` (Plug S), `SHSW-PM` (1PM), `SHEM` (EM), …
    pub model: String,
    pub mac: String,
    pub fw: Option<String>,
}

/// One relay meter (`meters[n]`, the meter of relay `n`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeterReading {
    /// W
    pub power_w: f64,
    /// The device's counter since boot, Wh (converted from watt-minutes).
    pub counter_wh: f64,
}

/// One energy-meter channel (`emeters[i]`, Shelly EM).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmeterReading {
    /// W, negative when returning.
    pub power_w: f64,
    /// V
    pub voltage_v: f64,
    /// Wh consumed.
    pub total_wh: f64,
    /// Wh returned.
    pub returned_wh: f64,
}

/// `GET /status`, the parts Hearth uses. A meter whose `is_valid` is false
/// is `None` (the device says its reading is not to be trusted).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    pub relays: Vec<bool>,
    pub meters: Vec<Option<MeterReading>>,
    pub emeters: Vec<Option<EmeterReading>>,
    /// s since the device booted, when it says (a drop means a reboot).
    pub uptime_s: Option<f64>,
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object(body: &[u8]) -> Result<Map<String, Value>, BadField> {
    let text =
        std::str::from_utf8(body).map_err(|e| BadField::NotJson(format!("not UTF-8: {e}")))?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(BadField::NotJson(format!("got {}", kind(&other)))),
        Err(e) => Err(BadField::NotJson(e.to_string())),
    }
}

/// A number in `lo..=hi`; the message names the field, unit and range.
pub fn ranged(
    field: &str,
    v: Option<&Value>,
    lo: f64,
    hi: f64,
    expected: &'static str,
) -> Result<f64, BadField> {
    let Some(v) = v else {
        return Err(bad(field, expected, "nothing"));
    };
    match v.as_f64() {
        Some(x) if x.is_finite() && (lo..=hi).contains(&x) => Ok(x),
        Some(_) => Err(bad(
            field,
            expected,
            crate::broker::excerpt(v.to_string().as_bytes()),
        )),
        None => Err(bad(field, expected, kind(v))),
    }
}

fn array<'a>(obj: &'a Map<String, Value>, key: &str) -> Result<&'a [Value], BadField> {
    match obj.get(key) {
        None => Ok(&[]),
        Some(Value::Array(a)) if a.len() <= MAX_CHANNELS => Ok(a),
        Some(Value::Array(a)) => Err(bad(key, "at most 4 channels", format!("{}", a.len()))),
        Some(x) => Err(bad(key, "an array", kind(x))),
    }
}

fn is_valid(field: &str, o: &Map<String, Value>) -> Result<bool, BadField> {
    match o.get("is_valid") {
        None => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(x) => Err(bad(format!("{field}.is_valid"), "true or false", kind(x))),
    }
}

fn entry<'a>(field: &str, v: &'a Value) -> Result<&'a Map<String, Value>, BadField> {
    v.as_object()
        .ok_or_else(|| bad(field, "an object", kind(v)))
}

/// The `power` W field of a meter.
pub const POWER_EXPECTED: &str = "a number of W within ±100 kW";
/// An energy counter field.
pub const ENERGY_EXPECTED: &str = "a number ≥ 0 below 1 GWh";
const WMIN_EXPECTED: &str = "a number of watt-minutes ≥ 0 below 1 GWh";
/// The `voltage` V field.
pub const VOLTAGE_EXPECTED: &str = "a number of V within 0–1000";

/// A relay object (`relays[n]`, or the answer of `/relay/<n>`).
pub fn parse_relay(field: &str, v: &Value) -> Result<bool, BadField> {
    let o = entry(field, v)?;
    match o.get("ison") {
        Some(Value::Bool(b)) => Ok(*b),
        other => Err(bad(
            format!("{field}.ison"),
            "true or false",
            other.map_or("nothing", kind),
        )),
    }
}

/// `GET /status`.
pub fn parse_status(body: &[u8]) -> Result<Status, BadField> {
    let obj = object(body)?;
    let mut s = Status {
        uptime_s: obj
            .get("uptime")
            .and_then(Value::as_f64)
            .filter(|u| u.is_finite() && *u >= 0.0),
        ..Status::default()
    };
    for (n, r) in array(&obj, "relays")?.iter().enumerate() {
        s.relays.push(parse_relay(&format!("relays[{n}]"), r)?);
    }
    for (n, m) in array(&obj, "meters")?.iter().enumerate() {
        let field = format!("meters[{n}]");
        let o = entry(&field, m)?;
        if !is_valid(&field, o)? {
            s.meters.push(None);
            continue;
        }
        let power_w = ranged(
            &format!("{field}.power"),
            o.get("power"),
            -POWER_LIMIT_W,
            POWER_LIMIT_W,
            POWER_EXPECTED,
        )?;
        let wmin = ranged(
            &format!("{field}.total"),
            o.get("total"),
            0.0,
            ENERGY_LIMIT_WH / WH_PER_WATT_MINUTE,
            WMIN_EXPECTED,
        )?;
        s.meters.push(Some(MeterReading {
            power_w,
            counter_wh: wmin * WH_PER_WATT_MINUTE,
        }));
    }
    for (i, m) in array(&obj, "emeters")?.iter().enumerate() {
        let field = format!("emeters[{i}]");
        let o = entry(&field, m)?;
        if !is_valid(&field, o)? {
            s.emeters.push(None);
            continue;
        }
        let f = |k: &str| format!("{field}.{k}");
        s.emeters.push(Some(EmeterReading {
            power_w: ranged(
                &f("power"),
                o.get("power"),
                -POWER_LIMIT_W,
                POWER_LIMIT_W,
                POWER_EXPECTED,
            )?,
            voltage_v: ranged(
                &f("voltage"),
                o.get("voltage"),
                0.0,
                VOLTAGE_LIMIT_V,
                VOLTAGE_EXPECTED,
            )?,
            total_wh: ranged(
                &f("total"),
                o.get("total"),
                0.0,
                ENERGY_LIMIT_WH,
                ENERGY_EXPECTED,
            )?,
            returned_wh: ranged(
                &f("total_returned"),
                o.get("total_returned"),
                0.0,
                ENERGY_LIMIT_WH,
                ENERGY_EXPECTED,
            )?,
        }));
    }
    Ok(s)
}

/// `GET /shelly`.
pub fn parse_shelly(body: &[u8]) -> Result<DeviceInfo, BadField> {
    let obj = object(body)?;
    let text = |k: &str| match obj.get(k) {
        Some(Value::String(s)) if s.len() <= 64 => Ok(Some(s.clone())),
        None | Some(Value::Null) => Ok(None),
        Some(x) => Err(bad(k, "a string of at most 64 bytes", kind(x))),
    };
    Ok(DeviceInfo {
        model: text("type")?.ok_or_else(|| bad("type", "the model string", "nothing"))?,
        mac: text("mac")?.unwrap_or_default(),
        fw: text("fw")?,
    })
}

/// Why a request did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("GET {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("GET {url}: HTTP status {status}")]
    Status { url: String, status: u16 },
}

/// GETs on one device; Gen1 closes the connection after each answer.
pub struct Gen1Client {
    base: String,
    http: HttpClient,
}

impl Gen1Client {
    pub fn new(base: &str) -> Self {
        Gen1Client {
            base: base.trim_end_matches('/').to_string(),
            http: HttpClient::new(HTTP_TIMEOUT, MAX_BODY),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET <base><path>` → the body (at most 64 KiB) of a 200 answer.
    pub async fn get(&self, path: &str) -> Result<Bytes, HttpError> {
        let url = self.url(path);
        let fail = |reason: String| HttpError::Transport {
            url: url.clone(),
            reason,
        };
        let answer = self.http.get(&url).await.map_err(|f| {
            fail(match f {
                HttpFailure::Build(e) | HttpFailure::Body(e) => e,
                HttpFailure::NoAnswer => "no answer within 5 s".into(),
                HttpFailure::Request(e) => e.to_string(),
                HttpFailure::BodyTimeout => "body not received within 5 s".into(),
            })
        })?;
        if answer.status != 200 {
            let status = answer.status;
            return Err(HttpError::Status { url, status });
        }
        Ok(answer.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLUG_S: &str = r#"{"wifi_sta":{"connected":true,"ssid":"home","ip":"192.168.1.41","rssi":-60},
        "relays":[{"ison":true,"has_timer":false,"timer_started":0,"timer_duration":0,
        "timer_remaining":0,"overpower":false,"source":"http"}],
        "meters":[{"power":60.25,"overpower":0.0,"is_valid":true,"timestamp":1765000000,
        "counters":[60.1,60.0,59.9],"total":6000}],"temperature":30.1,"uptime":3600}"#;

    #[test]
    fn a_plug_s_status_reads_in_w_and_wh() {
        let s = parse_status(PLUG_S.as_bytes()).unwrap();
        assert_eq!(s.relays, vec![true]);
        assert_eq!(
            s.meters,
            vec![Some(MeterReading {
                power_w: 60.25,
                counter_wh: 100.0
            })]
        );
        assert!(s.emeters.is_empty());
        assert_eq!(s.uptime_s, Some(3600.0));
        let em = r#"{"relays":[{"ison":false}],"emeters":[
            {"power":-512.3,"reactive":0,"voltage":231.2,"is_valid":true,"total":1234.5,"total_returned":99.0},
            {"power":0,"voltage":231.2,"is_valid":false,"total":0,"total_returned":0}]}"#;
        let s = parse_status(em.as_bytes()).unwrap();
        assert_eq!(s.emeters[0].unwrap().power_w, -512.3);
        assert_eq!(s.emeters[0].unwrap().total_wh, 1234.5);
        assert_eq!(s.emeters[1], None, "is_valid false: not a reading");
    }

    #[test]
    fn bad_answers_name_the_field() {
        for (body, want) in [
            (
                r#"{"relays":[{"ison":true}],"meters":[{"power":"abc","total":1}]}"#,
                "meters[0].power: expected a number of W within ±100 kW, got a string",
            ),
            (
                r#"{"meters":[{"power":1e300,"total":1}]}"#,
                "meters[0].power: expected a number of W within ±100 kW, got 1e+300",
            ),
            (
                r#"{"meters":[{"power":1,"total":-5}]}"#,
                "meters[0].total: expected a number of watt-minutes ≥ 0",
            ),
            (
                r#"{"relays":[{"ison":"on"}]}"#,
                "relays[0].ison: expected true or false, got a string",
            ),
            (
                r#"{"relays":{}}"#,
                "relays: expected an array, got an object",
            ),
            (
                r#"{"emeters":[{"power":1,"voltage":5000,"total":1,"total_returned":0}]}"#,
                "emeters[0].voltage: expected a number of V within 0–1000, got 5000",
            ),
            (r#"{"relays":[{"ison":tr"#, "expected a JSON object"),
            ("[1]", "expected a JSON object: got an array"),
        ] {
            let e = parse_status(body.as_bytes()).unwrap_err().to_string();
            assert!(e.starts_with(want), "{body}: {e}");
        }
        let e = parse_status(b"{\"relays\":\xff}").unwrap_err().to_string();
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn shelly_and_relay_answers() {
        let d = parse_shelly(br#"{"type":"SHPLG-S","mac":"C45BBE C18B12","auth":false,"fw":"20230913-112003/v1.14.0-gcb84623","num_outputs":1,"num_meters":1}"#).unwrap();
        assert_eq!(d.model, "SHPLG-S");
        assert!(parse_shelly(br#"{"mac":"x"}"#).is_err());
        let v: Value =
            serde_json::from_str(r#"{"ison":true,"has_timer":false,"source":"http"}"#).unwrap();
        assert_eq!(parse_relay("relay/0", &v), Ok(true));
    }
}
