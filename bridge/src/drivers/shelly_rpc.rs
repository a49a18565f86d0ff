//! Shelly Gen2 RPC frames and `Switch` statuses, as plain functions (no
//! I/O), shared by the Gen2 drivers ([`super::shelly`] plugs,
//! [`super::shelly_pro4pm`] strips), so they are tested here and fuzzable.
//! A device has `switches` switch components (`switch:0` …); a key beyond
//! them is refused by name.
//!
//! Sources: Shelly "Gen2+ Device API" docs: "RPC Protocol" (request
//! `{"id","src","method","params"}`, response `{"id","src","dst","result"}`
//! or `"error":{"code","message"}`), "Notifications" (`NotifyStatus`
//! params: `ts` and one object per changed component, keyed `switch:<id>`,
//! "some or all unchanged attributes … may not be visible": overlay them on
//! a known status), "MQTT" (`<prefix>/rpc`, `<src>/rpc`,
//! `<prefix>/events/rpc`, `<prefix>/online` `true`/`false`) and "Switch"
//! (`Switch.GetStatus`: `id`, `source`, `output`, `apower` W, `voltage` V,
//! `current` A, `freq` Hz, `pf`, `aenergy.total` Wh, `temperature.tC`,
//! `errors` — `overtemp`, `overpower`, `overvoltage`, `overcurrent`, shown
//! only while one is present, a `NotifyStatus` says they are gone with
//! `"errors": null`; `Switch.Set {id, on}` → `{was_on}`), at
//! <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch>.

use serde_json::{Map, Value, json};

/// What went wrong with one frame; the message names the component, the
/// field and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcError {
    #[error("expected a JSON object: {0}")]
    NotJson(String),
    #[error("{component}.{field}: expected {expected}, got {got}")]
    Field {
        component: String,
        field: &'static str,
        expected: &'static str,
        got: String,
    },
    #[error("`{key}` names a switch the device does not have (switch:0 to switch:{last})")]
    NoSuchSwitch { key: String, last: usize },
    #[error("expected {expected}, got {got}")]
    Frame { expected: &'static str, got: String },
}

/// One outlet's status as far as it is known: a whole `Switch.GetStatus`
/// or the part of it a `NotifyStatus` carried (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutletStatus {
    pub output: Option<bool>,
    /// W
    pub apower: Option<f64>,
    /// A
    pub current: Option<f64>,
    /// V
    pub voltage: Option<f64>,
    /// `aenergy.total`, Wh since the device was made.
    pub energy_wh: Option<f64>,
    /// `errors` (`overpower`, …). A whole status without the field means
    /// none ([`OutletStatus::whole`]); a partial one, unchanged; `null` (how
    /// a `NotifyStatus` says a key disappeared), none.
    pub errors: Option<Vec<String>>,
}

impl OutletStatus {
    /// Overlays `patch`'s known fields; true if anything changed.
    pub fn merge(&mut self, patch: &OutletStatus) -> bool {
        let before = self.clone();
        let take = |mine: &mut Option<f64>, new: Option<f64>| {
            if new.is_some() {
                *mine = new;
            }
        };
        take(&mut self.apower, patch.apower);
        take(&mut self.current, patch.current);
        take(&mut self.voltage, patch.voltage);
        take(&mut self.energy_wh, patch.energy_wh);
        if patch.output.is_some() {
            self.output = patch.output;
        }
        if patch.errors.is_some() {
            self.errors = patch.errors.clone();
        }
        *self != before
    }

    /// A whole status (`Switch.GetStatus`, `<prefix>/status/switch:<n>`):
    /// no `errors` field means no error.
    pub fn whole(mut self) -> Self {
        self.errors.get_or_insert_with(Vec::new);
        self
    }
}

/// Plausibility bounds of one switch's readings (magnitudes): 1 MW, 1 kA,
/// 1 kV, 1 TWh. A frame beyond them is refused, not stored.
const MAX_W: f64 = 1e6;
const MAX_A: f64 = 1e3;
const MAX_V: f64 = 1e3;
const MAX_WH: f64 = 1e12;

/// The most `errors` entries a status may carry, and their longest name.
const MAX_ERRORS: usize = 8;
const MAX_ERROR_LEN: usize = 32;

/// `switch:<id>` → `id`, if it is one of the device's `switches`. Other
/// components (`sys`, `wifi`, `input:0`) are `Ok(None)`.
pub fn switch_key(key: &str, switches: usize) -> Result<Option<usize>, RpcError> {
    let Some(rest) = key.strip_prefix("switch:") else {
        return Ok(None);
    };
    match rest.parse::<usize>() {
        Ok(id) if id < switches && (rest == "0" || !rest.starts_with('0')) => Ok(Some(id)),
        _ => Err(RpcError::NoSuchSwitch {
            key: crate::broker::excerpt(key.as_bytes()),
            last: switches.saturating_sub(1),
        }),
    }
}

/// A `Switch` status object (whole or partial) of `switch:<id>`.
pub fn parse_switch(id: usize, v: &Value) -> Result<OutletStatus, RpcError> {
    let component = format!("switch:{id}");
    let obj = v.as_object().ok_or_else(|| RpcError::Field {
        component: component.clone(),
        field: "",
        expected: "an object",
        got: kind(v).into(),
    })?;
    if let Some(got) = obj.get("id")
        && got.as_u64() != Some(id as u64)
    {
        return Err(RpcError::Field {
            component,
            field: "id",
            expected: "the switch's own id",
            got: crate::broker::excerpt(got.to_string().as_bytes()),
        });
    }
    // Beyond `max` in magnitude a reading is garbage, not a load: the
    // message says so with the value.
    let number = |field: &'static str, expected: &'static str, max: f64, v: Option<&Value>| match v
    {
        None | Some(Value::Null) => Ok(None),
        Some(x) => match x.as_f64().filter(|f| f.is_finite()) {
            Some(f) if f.abs() <= max => Ok(Some(f)),
            Some(f) => Err(RpcError::Field {
                component: component.clone(),
                field,
                expected: "a plausible reading",
                got: format!("{f:e} (beyond ±{max:e})"),
            }),
            None => Err(RpcError::Field {
                component: component.clone(),
                field,
                expected,
                got: kind(x).into(),
            }),
        },
    };
    let output = match obj.get("output") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(x) => {
            return Err(RpcError::Field {
                component,
                field: "output",
                expected: "true or false",
                got: kind(x).into(),
            });
        }
    };
    let energy_wh = match obj.get("aenergy") {
        None => None,
        Some(Value::Object(a)) => number(
            "aenergy.total",
            "a finite number (Wh)",
            MAX_WH,
            a.get("total"),
        )?,
        Some(x) => {
            return Err(RpcError::Field {
                component,
                field: "aenergy",
                expected: "an object with `total` (Wh)",
                got: kind(x).into(),
            });
        }
    };
    // "Certain status keys will only exist in certain situations. When
    // such keys disappear from the status payload, the NotifyStatus payload
    // which notifies about the change will include the key with a null
    // value" (Shelly Gen2 "Notifications", NotifyStatus): `errors: null` is
    // the errors gone, not "unchanged".
    let errors = match obj.get("errors") {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(a))
            if a.len() <= MAX_ERRORS
                && a.iter()
                    .all(|e| e.as_str().is_some_and(|s| s.len() <= MAX_ERROR_LEN)) =>
        {
            Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            )
        }
        Some(x) => {
            return Err(RpcError::Field {
                component,
                field: "errors",
                expected: "an array of at most 8 short strings",
                got: kind(x).into(),
            });
        }
    };
    Ok(OutletStatus {
        output,
        apower: number("apower", "a finite number (W)", MAX_W, obj.get("apower"))?,
        current: number("current", "a finite number (A)", MAX_A, obj.get("current"))?,
        voltage: number("voltage", "a finite number (V)", MAX_V, obj.get("voltage"))?,
        energy_wh,
        errors,
    })
}

/// The `switch:<id>` objects of an object keyed by component (the params
/// of `NotifyStatus`/`NotifyFullStatus`, the result of `Shelly.GetStatus`).
pub fn parse_components(
    obj: &Map<String, Value>,
    switches: usize,
) -> Result<Vec<(usize, OutletStatus)>, RpcError> {
    let mut out = Vec::new();
    for (key, v) in obj {
        if let Some(id) = switch_key(key, switches)? {
            out.push((id, parse_switch(id, v)?));
        }
    }
    Ok(out)
}

/// A frame on `<prefix>/events/rpc`: the switch updates of a
/// `NotifyStatus` (or `NotifyFullStatus`), `Ok(None)` for other
/// notifications (`NotifyEvent`: button pushes, `config_changed`).
pub fn parse_notification(
    payload: &[u8],
    switches: usize,
) -> Result<Option<Vec<(usize, OutletStatus)>>, RpcError> {
    let frame = object(payload)?;
    let method = frame
        .get("method")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::Frame {
            expected: "a notification frame with a `method` string",
            got: "none".into(),
        })?;
    if method != "NotifyStatus" && method != "NotifyFullStatus" {
        return Ok(None);
    }
    match frame.get("params") {
        Some(Value::Object(p)) => parse_components(p, switches).map(Some),
        other => Err(RpcError::Frame {
            expected: "`params`, an object of component statuses",
            got: other.map_or("nothing", kind).into(),
        }),
    }
}

/// A response frame on `<src>/rpc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: u64,
    /// `result`, or the device's `(code, message)`.
    pub outcome: Result<Value, (i64, String)>,
}

pub fn parse_response(payload: &[u8]) -> Result<Response, RpcError> {
    let frame = object(payload)?;
    let id = frame
        .get("id")
        .and_then(Value::as_u64)
        .ok_or_else(|| RpcError::Frame {
            expected: "a response frame with a numeric `id`",
            got: frame.get("id").map_or("none", kind).into(),
        })?;
    let outcome = match (frame.get("result"), frame.get("error")) {
        (_, Some(e)) => Err((
            e.get("code").and_then(Value::as_i64).unwrap_or(0),
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )),
        (Some(r), None) => Ok(r.clone()),
        (None, None) => {
            return Err(RpcError::Frame {
                expected: "`result` or `error` in the response",
                got: "neither".into(),
            });
        }
    };
    Ok(Response { id, outcome })
}

/// A request frame for `<prefix>/rpc`; the answer goes to `<src>/rpc`.
pub fn request(id: u64, src: &str, method: &str, params: Value) -> String {
    json!({"id": id, "src": src, "method": method, "params": params}).to_string()
}

/// `<prefix>/online`: `true` or `false` (the device's last will).
pub fn parse_online(text: &str) -> Result<bool, RpcError> {
    match text.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(RpcError::Frame {
            expected: "true or false",
            got: format!("`{}`", crate::broker::excerpt(other.as_bytes())),
        }),
    }
}

fn object(payload: &[u8]) -> Result<Map<String, Value>, RpcError> {
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(RpcError::NotJson(format!("got {}", kind(&other)))),
        Err(e) => Err(RpcError::NotJson(e.to_string())),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OUTLETS: usize = 4;
    fn parse_notification(p: &[u8]) -> Result<Option<Vec<(usize, OutletStatus)>>, RpcError> {
        super::parse_notification(p, OUTLETS)
    }

    #[test]
    fn a_whole_get_status_parses() {
        let v = json!({"id":2,"source":"init","output":true,"apower":52.3,"voltage":230.1,
            "freq":50.0,"current":0.227,"pf":1.0,
            "aenergy":{"total":1234.5,"by_minute":[870.0,871.2,869.9],"minute_ts":1765000000},
            "temperature":{"tC":41.2,"tF":106.2}});
        assert_eq!(
            parse_switch(2, &v).unwrap(),
            OutletStatus {
                output: Some(true),
                apower: Some(52.3),
                current: Some(0.227),
                voltage: Some(230.1),
                energy_wh: Some(1234.5),
                errors: None,
            }
        );
    }

    #[test]
    fn partial_notifications_merge_over_the_known_status() {
        let mut known = parse_switch(
            1,
            &json!({"id":1,"output":false,"apower":0.0,"current":0.0,"voltage":230.0,"aenergy":{"total":10.0}}),
        )
        .unwrap();
        let n = parse_notification(
            br#"{"src":"shellypro4pm-aabbcc","dst":"shellypro4pm-aabbcc/events","method":"NotifyStatus","params":{"ts":1765000000.12,"switch:1":{"id":1,"output":true,"source":"MQTT"}}}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(n.len(), 1);
        assert!(known.merge(&n[0].1));
        assert_eq!(known.output, Some(true));
        assert_eq!(known.voltage, Some(230.0), "unchanged fields stay");
        let n = parse_notification(
            br#"{"method":"NotifyStatus","params":{"ts":1.0,"switch:1":{"id":1,"apower":52.0,"current":0.226}}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(known.merge(&n[0].1));
        assert_eq!((known.apower, known.output), (Some(52.0), Some(true)));
        assert!(
            !known.merge(&n[0].1),
            "the same patch twice changes nothing"
        );
        // Other components and other notifications are not ours.
        let n = parse_notification(br#"{"method":"NotifyStatus","params":{"ts":1,"sys":{"uptime":5},"input:0":{"state":true}}}"#)
            .unwrap();
        assert_eq!(n, Some(vec![]));
        assert_eq!(
            parse_notification(br#"{"method":"NotifyEvent","params":{"ts":1,"events":[]}}"#),
            Ok(None)
        );
    }

    #[test]
    fn malformed_frames_name_the_channel_and_what_was_expected() {
        let cases: [(&[u8], &str); 9] = [
            (
                br#"{"method":"NotifyStatus","params":{"switch:2":{"id":2,"apower":"52"}}}"#,
                "switch:2.apower: expected a finite number (W), got a string",
            ),
            (
                br#"{"method":"NotifyStatus","params":{"switch:0":{"output":"on"}}}"#,
                "switch:0.output: expected true or false, got a string",
            ),
            (
                br#"{"method":"NotifyStatus","params":{"switch:3":{"aenergy":5}}}"#,
                "switch:3.aenergy: expected an object with `total` (Wh), got a number",
            ),
            (
                br#"{"method":"NotifyStatus","params":{"switch:1":{"id":2}}}"#,
                "switch:1.id: expected the switch's own id, got 2",
            ),
            (
                br#"{"method":"NotifyStatus","params":{"switch:4":{"output":true}}}"#,
                "`switch:4` names a switch the device does not have (switch:0 to switch:3)",
            ),
            (
                br#"{"method":"NotifyStatus","params":[1]}"#,
                "expected `params`, an object of component statuses, got an array",
            ),
            (
                br#"{"params":{}}"#,
                "expected a notification frame with a `method` string",
            ),
            (b"{\"method\":", "expected a JSON object"),
            (
                br#"{"method":"NotifyStatus","params":{"switch:0":{"apower":1e300}}}"#,
                "switch:0.apower: expected a plausible reading, got 1e300 (beyond ±1e6)",
            ),
        ];
        for (payload, want) in cases {
            let e = parse_notification(payload).unwrap_err().to_string();
            assert!(
                e.starts_with(want),
                "{}: {e}",
                String::from_utf8_lossy(payload)
            );
        }
        assert!(
            parse_notification(b"[]")
                .unwrap_err()
                .to_string()
                .contains("got an array")
        );
    }

    #[test]
    fn errors_are_read_and_a_whole_status_without_them_clears_them() {
        let mut known = parse_switch(0, &json!({"id":0,"output":true,"apower":2600.0}))
            .unwrap()
            .whole();
        assert_eq!(known.errors, Some(vec![]));
        let n = parse_notification(
            br#"{"method":"NotifyStatus","params":{"switch:0":{"id":0,"output":false,"errors":["overpower"]}}}"#,
        )
        .unwrap()
        .unwrap();
        assert!(known.merge(&n[0].1));
        assert_eq!(known.errors, Some(vec!["overpower".to_string()]));
        let partial = parse_switch(0, &json!({"id":0,"apower":0.0})).unwrap();
        known.merge(&partial);
        assert_eq!(
            known.errors,
            Some(vec!["overpower".to_string()]),
            "partial: unchanged"
        );
        known.merge(
            &parse_switch(0, &json!({"id":0,"output":false}))
                .unwrap()
                .whole(),
        );
        assert_eq!(known.errors, Some(vec![]));
        // Push only: the trip, then the device's word that the errors are
        // gone (the key with a null value, Gen2 "Notifications").
        known.merge(&parse_switch(0, &json!({"id":0,"errors":["overpower"]})).unwrap());
        let n = parse_notification(
            br#"{"method":"NotifyStatus","params":{"switch:0":{"id":0,"output":true,"errors":null}}}"#,
        )
        .unwrap()
        .unwrap();
        known.merge(&n[0].1);
        assert_eq!(known.errors, Some(vec![]), "null: the errors are gone");
        let long = "x".repeat(100);
        for bad in [
            json!({"errors": "overpower"}),
            json!({"errors": [1]}),
            json!({"errors": [long]}),
        ] {
            let e = parse_switch(0, &bad).unwrap_err().to_string();
            assert!(e.starts_with("switch:0.errors: expected an array"), "{e}");
        }
    }

    #[test]
    fn responses_requests_and_online() {
        let r = parse_response(
            br#"{"id":7,"src":"shellypro4pm-aabbcc","dst":"hearth-p4","result":{"was_on":false}}"#,
        )
        .unwrap();
        assert_eq!(
            r,
            Response {
                id: 7,
                outcome: Ok(json!({"was_on": false}))
            }
        );
        let r = parse_response(br#"{"id":8,"error":{"code":-105,"message":"Bad id=9"}}"#).unwrap();
        assert_eq!(r.outcome, Err((-105, "Bad id=9".into())));
        assert!(
            parse_response(br#"{"id":"x","result":{}}"#)
                .unwrap_err()
                .to_string()
                .contains("numeric `id`")
        );
        assert!(parse_response(br#"{"id":1}"#).is_err());
        let q: Value = serde_json::from_str(&request(
            3,
            "hearth-p4",
            "Switch.Set",
            json!({"id":1,"on":true}),
        ))
        .unwrap();
        assert_eq!(
            q,
            json!({"id":3,"src":"hearth-p4","method":"Switch.Set","params":{"id":1,"on":true}})
        );
        assert_eq!(parse_online("true"), Ok(true));
        assert_eq!(parse_online(" false\n"), Ok(false));
        assert!(
            parse_online("Online")
                .unwrap_err()
                .to_string()
                .contains("expected true or false, got `Online`")
        );
        assert_eq!(
            switch_key("switch:01", OUTLETS),
            Err(RpcError::NoSuchSwitch {
                key: "switch:01".into(),
                last: 3
            })
        );
        assert_eq!(switch_key("cover:0", OUTLETS), Ok(None));
        assert!(
            switch_key("switch:1", 1)
                .unwrap_err()
                .to_string()
                .contains("(switch:0 to switch:0)")
        );
    }
}
