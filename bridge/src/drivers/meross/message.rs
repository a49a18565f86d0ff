//! Meross messages: the signed header, the answer's checks, and the
//! payloads Hearth reads, each field checked and named when it is wrong.
//!
//! Shape (as the `meross_lan` Home Assistant integration builds and checks
//! it: krahabb/meross_lan `merossclient/protocol/message.py`,
//! `compute_message_signature`, `check_message_strict`; error code 5001
//! "invalid key" in `merossclient/protocol/const.py`):
//!
//! ```json
//! {"header": {"from": "http://<ip>/config", "messageId": "<32 hex>",
//!             "method": "GET", "namespace": "Appliance.Control.Electricity",
//!             "payloadVersion": 1, "sign": "<md5 hex>", "timestamp": 1700000000,
//!             "triggerSrc": "hearth"},
//!  "payload": {"electricity": {"channel": 0}}}
//! ```
//!
//! `sign = md5(messageId + key + timestamp)` as lower-case hex, timestamp
//! in s. The device answers with the same `messageId`, the method
//! acknowledged (`GETACK`, `SETACK`) and its own timestamp and sign, made
//! the same way with the same key: an answer whose sign does not verify
//! is rejected. A request signed with another key gets `method: ERROR`,
//! `payload.error = {"code": 5001, "detail": "sign error"}`.
//!
//! Payload units (meross_lan's electricity handler divides by 1000, 10 and
//! 1000): `electricity.power` mW, `voltage` dV (0.1 V), `current` mA;
//! `consumptionx[]` is one `{date: "YYYY-MM-DD", time: <s>, value: <Wh>}`
//! per day (the device keeps about a month); `all.digest.togglex[]` and
//! `togglex` carry `{channel, onoff: 0|1}`.

use md5::{Digest, Md5};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// `payload.error.code` of a request whose sign the device refused.
pub const ERROR_INVALID_KEY: i64 = 5001;

/// Namespaces that mean the firmware wants the encrypted LAN protocol
/// (an ECDHE key exchange, then AES payloads), which Hearth does not speak.
pub const ENCRYPTION_NAMESPACES: [&str; 2] = ["Appliance.Encrypt.ECDHE", "Appliance.Encrypt.Suite"];

pub mod ns {
    pub const SYSTEM_ALL: &str = "Appliance.System.All";
    pub const SYSTEM_ABILITY: &str = "Appliance.System.Ability";
    pub const ELECTRICITY: &str = "Appliance.Control.Electricity";
    pub const TOGGLEX: &str = "Appliance.Control.ToggleX";
    pub const CONSUMPTIONX: &str = "Appliance.Control.ConsumptionX";
}

/// Largest plausible readings; beyond them a value is refused as corrupt
/// (an MSS310 is rated 16 A at 240 V).
pub const MAX_POWER_W: f64 = 30_000.0;
pub const MAX_VOLTAGE_V: f64 = 500.0;
pub const MAX_CURRENT_A: f64 = 100.0;
/// One day at [`MAX_POWER_W`] is 720 kWh.
pub const MAX_DAY_WH: f64 = 720_000.0;

/// What is wrong with an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MessageError {
    #[error("the answer is not JSON ({0})")]
    NotJson(String),
    #[error("`{field}`: expected {expected}, got {got}")]
    Field {
        field: String,
        expected: String,
        got: String,
    },
    #[error(
        "the answer's sign does not verify with `key` (header.sign `{got}`): not from the device, or altered"
    )]
    BadSign { got: String },
    #[error(
        "the device refused the signature: check `key` (device error {ERROR_INVALID_KEY} `{detail}`)"
    )]
    SignRefused { detail: String },
    #[error("the device answered error {code} `{detail}`")]
    Device { code: i64, detail: String },
}

impl MessageError {
    /// A short name of what is wrong (the field, or the kind), for the
    /// bad-input throttle.
    pub fn kind(&self) -> &str {
        match self {
            MessageError::NotJson(_) => "json",
            MessageError::Field { field, .. } => field,
            MessageError::BadSign { .. } => "sign",
            MessageError::SignRefused { .. } => "refused",
            MessageError::Device { .. } => "device",
        }
    }

    fn field(field: &str, expected: &str, got: Option<&Value>) -> MessageError {
        MessageError::Field {
            field: field.into(),
            expected: expected.into(),
            got: match got {
                None => "nothing".into(),
                Some(v) => crate::broker::excerpt(v.to_string().as_bytes()),
            },
        }
    }
}

/// `md5(message_id + key + timestamp)`, lower-case hex.
pub fn sign(message_id: &str, key: &str, timestamp_s: i64) -> String {
    let mut h = Md5::new();
    h.update(message_id.as_bytes());
    h.update(key.as_bytes());
    h.update(timestamp_s.to_string().as_bytes());
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new message id: 32 random hex digits.
pub fn message_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// A whole signed request.
pub fn request(
    from: &str,
    message_id: &str,
    method: &str,
    namespace: &str,
    key: &str,
    timestamp_s: i64,
    payload: Value,
) -> Value {
    json!({
        "header": {
            "from": from,
            "messageId": message_id,
            "method": method,
            "namespace": namespace,
            "payloadVersion": 1,
            "sign": sign(message_id, key, timestamp_s),
            "timestamp": timestamp_s,
            "triggerSrc": "hearth",
        },
        "payload": payload,
    })
}

/// Checks an answer to the request `message_id` (`method` on `namespace`)
/// and returns its payload: JSON, an `ERROR` named (5001 is the key),
/// the same message id and namespace, the acknowledging method, a sign
/// that verifies with `key`.
pub fn check_answer(
    body: &[u8],
    message_id: &str,
    method: &str,
    namespace: &str,
    key: &str,
) -> Result<Value, MessageError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| MessageError::NotJson(e.to_string()))?;
    let header = v
        .get("header")
        .filter(|h| h.is_object())
        .ok_or_else(|| MessageError::field("header", "an object", v.get("header")))?;
    let text = |name: &str| -> Result<&str, MessageError> {
        header.get(name).and_then(Value::as_str).ok_or_else(|| {
            MessageError::field(&format!("header.{name}"), "a string", header.get(name))
        })
    };
    let got_method = text("method")?;
    if got_method == "ERROR" {
        let error = v.pointer("/payload/error");
        let code = error
            .and_then(|e| e.get("code"))
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                MessageError::field(
                    "payload.error.code",
                    "an integer",
                    error.and_then(|e| e.get("code")),
                )
            })?;
        let detail = error
            .and_then(|e| e.get("detail"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        return Err(if code == ERROR_INVALID_KEY {
            MessageError::SignRefused { detail }
        } else {
            MessageError::Device { code, detail }
        });
    }
    let want_method = format!("{method}ACK");
    if got_method != want_method {
        return Err(MessageError::field(
            "header.method",
            &format!("`{want_method}`"),
            header.get("method"),
        ));
    }
    if text("messageId")? != message_id {
        return Err(MessageError::field(
            "header.messageId",
            &format!("the request's `{message_id}`"),
            header.get("messageId"),
        ));
    }
    if text("namespace")? != namespace {
        return Err(MessageError::field(
            "header.namespace",
            &format!("`{namespace}`"),
            header.get("namespace"),
        ));
    }
    let timestamp = header
        .get("timestamp")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            MessageError::field(
                "header.timestamp",
                "an integer (s)",
                header.get("timestamp"),
            )
        })?;
    let got_sign = text("sign")?;
    if !got_sign.eq_ignore_ascii_case(&sign(message_id, key, timestamp)) {
        return Err(MessageError::BadSign {
            got: got_sign.chars().take(40).collect(),
        });
    }
    match v.get("payload") {
        Some(p) if p.is_object() => Ok(p.clone()),
        other => Err(MessageError::field("payload", "an object", other)),
    }
}

/// A number at `field` (a dotted path inside `v`, for the message) within
/// `0..=max`.
fn number(v: &Value, key: &str, field: &str, unit: &str, max: f64) -> Result<f64, MessageError> {
    let got = v.get(key);
    let x = got
        .and_then(Value::as_f64)
        .ok_or_else(|| MessageError::field(field, &format!("a number ({unit})"), got))?;
    if !(0.0..=max).contains(&x) {
        return Err(MessageError::field(
            field,
            &format!("0 to {max} {unit}"),
            got,
        ));
    }
    Ok(x)
}

/// The entry of `channel` in `v`: `v` itself if it is an object, or the
/// element of a list whose `channel` is `channel`.
fn channel_entry<'a>(
    v: Option<&'a Value>,
    field: &str,
    channel: u32,
) -> Result<&'a Value, MessageError> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .find(|e| e.get("channel").and_then(Value::as_u64) == Some(channel as u64))
            .ok_or_else(|| {
                MessageError::field(field, &format!("an entry with channel {channel}"), v)
            }),
        Some(o @ Value::Object(_)) => match o.get("channel") {
            None => Ok(o),
            Some(c) if c.as_u64() == Some(channel as u64) => Ok(o),
            Some(c) => Err(MessageError::field(
                &format!("{field}.channel"),
                &format!("{channel}"),
                Some(c),
            )),
        },
        other => Err(MessageError::field(field, "an object or a list", other)),
    }
}

/// `Appliance.Control.Electricity` in SI units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Electricity {
    /// W
    pub power_w: f64,
    /// V
    pub voltage_v: f64,
    /// A
    pub current_a: f64,
}

pub fn electricity(payload: &Value, channel: u32) -> Result<Electricity, MessageError> {
    let e = channel_entry(payload.get("electricity"), "electricity", channel)?;
    Ok(Electricity {
        power_w: number(e, "power", "electricity.power", "mW", MAX_POWER_W * 1000.0)? / 1000.0,
        voltage_v: number(
            e,
            "voltage",
            "electricity.voltage",
            "dV",
            MAX_VOLTAGE_V * 10.0,
        )? / 10.0,
        current_a: number(
            e,
            "current",
            "electricity.current",
            "mA",
            MAX_CURRENT_A * 1000.0,
        )? / 1000.0,
    })
}

fn onoff(entry: &Value, field: &str) -> Result<bool, MessageError> {
    match entry.get("onoff").and_then(Value::as_u64) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(MessageError::field(
            &format!("{field}.onoff"),
            "0 or 1",
            entry.get("onoff"),
        )),
    }
}

/// The relay of `channel` from a `ToggleX` payload (`togglex`).
pub fn togglex(payload: &Value, channel: u32) -> Result<bool, MessageError> {
    let e = channel_entry(payload.get("togglex"), "togglex", channel)?;
    onoff(e, "togglex")
}

/// What `Appliance.System.All` tells about the device, and its relay.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SystemAll {
    /// `hardware.type`, e.g. `mss310`.
    pub model: Option<String>,
    pub hardware_version: Option<String>,
    pub firmware_version: Option<String>,
    pub mac: Option<String>,
    /// The relay of the channel asked for (`digest.togglex`).
    pub relay: bool,
}

pub fn system_all(payload: &Value, channel: u32) -> Result<SystemAll, MessageError> {
    let all = payload
        .get("all")
        .filter(|a| a.is_object())
        .ok_or_else(|| MessageError::field("all", "an object", payload.get("all")))?;
    let s = |p: &str| {
        all.pointer(p)
            .and_then(Value::as_str)
            .map(|s| s.chars().take(64).collect::<String>())
    };
    let entry = channel_entry(
        all.pointer("/digest/togglex"),
        "all.digest.togglex",
        channel,
    )?;
    Ok(SystemAll {
        model: s("/system/hardware/type"),
        hardware_version: s("/system/hardware/version"),
        firmware_version: s("/system/firmware/version"),
        mac: s("/system/hardware/macAddress"),
        relay: onoff(entry, "all.digest.togglex")?,
    })
}

/// The namespaces `Appliance.System.Ability` lists.
pub fn abilities(payload: &Value) -> Result<BTreeSet<String>, MessageError> {
    match payload.get("ability") {
        Some(Value::Object(m)) => Ok(m.keys().cloned().collect()),
        other => Err(MessageError::field("ability", "an object", other)),
    }
}

/// The encryption namespace the device advertises, if any.
pub fn encryption(abilities: &BTreeSet<String>) -> Option<&'static str> {
    ENCRYPTION_NAMESPACES
        .into_iter()
        .find(|n| abilities.contains(*n))
}

/// One day of `Appliance.Control.ConsumptionX`.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    /// `YYYY-MM-DD` (the device's local date).
    pub date: String,
    /// Wh used that day so far.
    pub wh: f64,
}

pub fn consumption(payload: &Value) -> Result<Vec<Day>, MessageError> {
    let list = match payload.get("consumptionx") {
        Some(Value::Array(l)) => l,
        other => return Err(MessageError::field("consumptionx", "a list", other)),
    };
    let mut days = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let field = format!("consumptionx[{i}]");
        let date = d
            .get("date")
            .and_then(Value::as_str)
            .filter(|s| valid_date(s));
        let Some(date) = date else {
            return Err(MessageError::field(
                &format!("{field}.date"),
                "a YYYY-MM-DD date",
                d.get("date"),
            ));
        };
        let wh = number(d, "value", &format!("{field}.value"), "Wh", MAX_DAY_WH)?;
        days.push(Day {
            date: date.to_string(),
            wh,
        });
    }
    days.sort_by(|a, b| a.date.cmp(&b.date));
    Ok(days)
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0123456789abcdef";

    fn answer(mid: &str, method: &str, ns: &str, key: &str, payload: Value) -> Vec<u8> {
        let ts = 1_700_000_000;
        json!({"header": {"messageId": mid, "method": method, "namespace": ns,
                          "payloadVersion": 1, "from": "/appliance/x/publish",
                          "timestamp": ts, "timestampMs": 0, "sign": sign(mid, key, ts)},
               "payload": payload})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn the_sign_is_md5_of_id_key_and_timestamp() {
        // md5("abc" + "" + "1") = md5("abc1")
        assert_eq!(sign("abc", "", 1), "23734cd52ad4a4fb877d8a1e26e5df5f");
        let r = request(
            "http://h/config",
            "m1",
            "GET",
            ns::SYSTEM_ALL,
            KEY,
            5,
            json!({}),
        );
        assert_eq!(r["header"]["sign"], sign("m1", KEY, 5));
        assert_eq!(message_id().len(), 32);
    }

    #[test]
    fn answers_are_checked() {
        let p = json!({"togglex": {"channel": 0, "onoff": 1}});
        let ok = answer("m1", "GETACK", ns::TOGGLEX, KEY, p.clone());
        assert_eq!(check_answer(&ok, "m1", "GET", ns::TOGGLEX, KEY).unwrap(), p);
        let e = check_answer(&ok, "m1", "GET", ns::TOGGLEX, "other").unwrap_err();
        assert!(matches!(e, MessageError::BadSign { .. }), "{e}");
        let e = check_answer(&ok, "m2", "GET", ns::TOGGLEX, KEY).unwrap_err();
        assert!(e.to_string().contains("header.messageId"), "{e}");
        let e = check_answer(&ok, "m1", "SET", ns::TOGGLEX, KEY).unwrap_err();
        assert!(e.to_string().contains("`SETACK`"), "{e}");
        let e = check_answer(&ok[..ok.len() / 2], "m1", "GET", ns::TOGGLEX, KEY).unwrap_err();
        assert!(matches!(e, MessageError::NotJson(_)), "{e}");
        let refused = answer(
            "m1",
            "ERROR",
            ns::TOGGLEX,
            "device key",
            json!({"error": {"code": 5001, "detail": "sign error"}}),
        );
        let e = check_answer(&refused, "m1", "GET", ns::TOGGLEX, KEY).unwrap_err();
        assert!(
            e.to_string().contains("refused the signature: check `key`"),
            "{e}"
        );
    }

    #[test]
    fn payloads_convert_units_and_name_bad_fields() {
        let p = json!({"electricity": {"channel": 0, "power": 1234567, "voltage": 2305, "current": 5360}});
        let e = electricity(&p, 0).unwrap();
        assert_eq!(
            (e.power_w, e.voltage_v, e.current_a),
            (1234.567, 230.5, 5.36)
        );
        let p =
            json!({"electricity": {"channel": 0, "power": "12", "voltage": 2305, "current": 5}});
        let err = electricity(&p, 0).unwrap_err().to_string();
        assert!(
            err.contains("`electricity.power`: expected a number (mW), got \"12\""),
            "{err}"
        );
        let p =
            json!({"electricity": {"channel": 0, "power": 1e15, "voltage": 2305, "current": 5}});
        let err = electricity(&p, 0).unwrap_err().to_string();
        assert!(err.contains("`electricity.power`: expected 0 to"), "{err}");
        let p = json!({"all": {"system": {"hardware": {"type": "mss310"}, "firmware": {"version": "2.1.4"}},
                               "digest": {"togglex": [{"channel": 0, "onoff": 0}, {"channel": 1, "onoff": 1}]}}});
        let s = system_all(&p, 1).unwrap();
        assert_eq!(
            (s.model.as_deref(), s.firmware_version.as_deref(), s.relay),
            (Some("mss310"), Some("2.1.4"), true)
        );
        assert!(
            system_all(&p, 2)
                .unwrap_err()
                .to_string()
                .contains("channel 2")
        );
        let c = consumption(&json!({"consumptionx": [
            {"date": "2026-12-07", "time": 1, "value": 120},
            {"date": "2026-12-06", "time": 1, "value": 900}]}))
        .unwrap();
        assert_eq!(c[0].date, "2026-12-06");
        let err =
            consumption(&json!({"consumptionx": [{"date": "yesterday", "value": 1}]})).unwrap_err();
        assert!(err.to_string().contains("consumptionx[0].date"), "{err}");
        let ab = abilities(
            &json!({"ability": {"Appliance.Encrypt.ECDHE": {}, "Appliance.System.All": {}}}),
        )
        .unwrap();
        assert_eq!(encryption(&ab), Some("Appliance.Encrypt.ECDHE"));
    }
}
