//! Tasmota's MQTT topics and payloads for a multi-relay metered strip, as
//! plain functions (no I/O), so they are tested here and fuzzable.
//!
//! Sources: Tasmota docs, "MQTT" (topics `cmnd/<topic>/<command>`,
//! `stat/<topic>/RESULT`, `stat/<topic>/POWER<n>`, `tele/<topic>/STATE`,
//! `tele/<topic>/SENSOR`, `tele/<topic>/LWT`), "Commands" (`Power<x>`
//! `ON`/`OFF`/`TOGGLE`, answered `{"POWER<x>":"ON"}`; a single-relay
//! device says `POWER`), "Power Monitoring" and `SetOption129` (the
//! `ENERGY` object of `SENSOR`: `Power`, `Current`, `Total` … are single
//! numbers for one meter and arrays, one value per channel, on multi-channel
//! meters; `Total` in kWh).

/// Tasmota's relay names: `POWER` is relay 1 on a one-relay device.
fn relay_number(key: &str) -> Option<usize> {
    let rest = key.strip_prefix("POWER")?;
    if rest.is_empty() {
        return Some(1);
    }
    // `POWER01` is not a Tasmota key; only plain decimal numbers.
    if rest.starts_with('0') || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// `cmnd/<topic>/POWER<n>`.
pub fn command_topic(topic: &str, outlet: usize) -> String {
    format!("cmnd/{topic}/POWER{outlet}")
}

/// What went wrong with one payload; the message names what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PayloadError {
    #[error("expected a JSON object: {0}")]
    NotJson(String),
    #[error("{key}: expected ON or OFF, got {got}")]
    NotOnOff { key: String, got: String },
    #[error("{key} names relay {n}; the strip has {outlets} outlets")]
    NoSuchOutlet {
        key: String,
        n: usize,
        outlets: usize,
    },
    #[error("ENERGY.{field}: expected {expected}, got {got}")]
    Energy {
        field: &'static str,
        expected: String,
        got: String,
    },
}

/// `ON`/`OFF` as Tasmota's default `StateText` spells them (any case).
pub fn parse_on_off(key: &str, text: &str) -> Result<bool, PayloadError> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("ON") {
        Ok(true)
    } else if t.eq_ignore_ascii_case("OFF") {
        Ok(false)
    } else {
        Err(PayloadError::NotOnOff {
            key: key.into(),
            got: format!("`{}`", crate::broker::excerpt(t.as_bytes())),
        })
    }
}

/// The relay number of a `stat/<topic>/POWER<n>` topic's last level.
pub fn relay_of_topic(last_level: &str, outlets: usize) -> Result<usize, PayloadError> {
    match relay_number(last_level) {
        Some(n) if (1..=outlets).contains(&n) => Ok(n),
        Some(n) => Err(PayloadError::NoSuchOutlet {
            key: last_level.into(),
            n,
            outlets,
        }),
        None => Err(PayloadError::NotOnOff {
            key: last_level.into(),
            got: "a topic that is not POWER<n>".into(),
        }),
    }
}

/// Relay states in a `RESULT` or `STATE` object: `(outlet, on)` for every
/// `POWER`/`POWER<n>` key. Other keys (`Time`, `Wifi`, answers to other
/// commands) are not relay states and are skipped.
pub fn parse_relays(payload: &[u8], outlets: usize) -> Result<Vec<(usize, bool)>, PayloadError> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| PayloadError::NotJson(format!("got {}", kind(&v))))?;
    let mut relays = Vec::new();
    for (key, value) in obj {
        let Some(n) = relay_number(key) else {
            continue;
        };
        if n > outlets {
            return Err(PayloadError::NoSuchOutlet {
                key: key.clone(),
                n,
                outlets,
            });
        }
        let text = value.as_str().ok_or_else(|| PayloadError::NotOnOff {
            key: key.clone(),
            got: kind(value).into(),
        })?;
        relays.push((n, parse_on_off(key, text)?));
    }
    Ok(relays)
}

/// A metered quantity: one value per channel, or one for the whole meter.
#[derive(Debug, Clone, PartialEq)]
pub enum Channels {
    PerChannel(Vec<f64>),
    Single(f64),
}

impl Channels {
    /// Outlet `n`'s (1-based) own reading, when there is one per outlet.
    pub fn channel(&self, n: usize) -> Option<f64> {
        match self {
            Channels::PerChannel(v) => v.get(n - 1).copied(),
            Channels::Single(_) => None,
        }
    }

    /// The whole strip's reading (the sum of channels for arrays).
    pub fn total(&self) -> f64 {
        match self {
            Channels::PerChannel(v) => v.iter().sum(),
            Channels::Single(x) => *x,
        }
    }
}

/// The `ENERGY` fields Hearth uses, in Tasmota's units.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyReading {
    /// W
    pub power_w: Channels,
    /// A
    pub current_a: Option<Channels>,
    /// kWh since the counters were last reset.
    pub total_kwh: Option<Channels>,
}

/// `tele/<topic>/SENSOR`. `Ok(None)` when the payload carries no `ENERGY`
/// (a SENSOR of other sensors); `Power` is required in `ENERGY`.
pub fn parse_sensor(payload: &[u8]) -> Result<Option<EnergyReading>, PayloadError> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| PayloadError::NotJson(e.to_string()))?;
    let obj = v
        .as_object()
        .ok_or_else(|| PayloadError::NotJson(format!("got {}", kind(&v))))?;
    let Some(energy) = obj.get("ENERGY") else {
        return Ok(None);
    };
    let energy = energy.as_object().ok_or_else(|| PayloadError::Energy {
        field: "",
        expected: "an object".into(),
        got: kind(energy).into(),
    })?;
    let field = |name: &'static str| -> Result<Option<Channels>, PayloadError> {
        energy.get(name).map(|v| channels(name, v)).transpose()
    };
    let power_w = field("Power")?.ok_or(PayloadError::Energy {
        field: "Power",
        expected: "a number or an array of numbers (W)".into(),
        got: "nothing".into(),
    })?;
    Ok(Some(EnergyReading {
        power_w,
        current_a: field("Current")?,
        total_kwh: field("Total")?,
    }))
}

fn channels(field: &'static str, v: &serde_json::Value) -> Result<Channels, PayloadError> {
    let bad = |got: String| PayloadError::Energy {
        field,
        expected: "a finite number or an array of finite numbers".into(),
        got,
    };
    let number = |x: &serde_json::Value| x.as_f64().filter(|f| f.is_finite());
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|x| number(x).ok_or_else(|| bad(format!("{} in the array", kind(x)))))
            .collect::<Result<Vec<_>, _>>()
            .map(Channels::PerChannel),
        other => number(other)
            .map(Channels::Single)
            .ok_or_else(|| bad(kind(other).into())),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_states_from_result_and_state() {
        assert_eq!(
            parse_relays(br#"{"POWER2":"ON"}"#, 4).unwrap(),
            vec![(2, true)]
        );
        let state = br#"{"Time":"2026-12-06T10:00:00","Uptime":"0T01:00:00","POWER1":"OFF","POWER2":"on","Wifi":{"RSSI":80}}"#;
        assert_eq!(parse_relays(state, 2).unwrap(), vec![(1, false), (2, true)]);
        assert_eq!(
            parse_relays(br#"{"POWER":"ON"}"#, 1).unwrap(),
            vec![(1, true)]
        );
        // Answers to other commands carry no relay.
        assert_eq!(
            parse_relays(br#"{"Command":"Unknown"}"#, 2).unwrap(),
            vec![]
        );
        assert_eq!(parse_relays(br#"{"POWER01":"ON"}"#, 2).unwrap(), vec![]);
    }

    #[test]
    fn bad_relay_payloads_name_what_was_expected() {
        let e = parse_relays(br#"{"POWER5":"ON"}"#, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "POWER5 names relay 5; the strip has 4 outlets"
        );
        let e = parse_relays(br#"{"POWER1":"MAYBE"}"#, 4).unwrap_err();
        assert_eq!(e.to_string(), "POWER1: expected ON or OFF, got `MAYBE`");
        let e = parse_relays(br#"{"POWER1":1}"#, 4).unwrap_err();
        assert_eq!(e.to_string(), "POWER1: expected ON or OFF, got a number");
        assert!(matches!(
            parse_relays(b"[1]", 4),
            Err(PayloadError::NotJson(_))
        ));
        assert!(
            parse_relays(b"{nope", 4)
                .unwrap_err()
                .to_string()
                .starts_with("expected a JSON object")
        );
        assert_eq!(relay_of_topic("POWER3", 4), Ok(3));
        assert!(relay_of_topic("POWER9", 4).is_err());
        assert!(relay_of_topic("RESULT", 4).is_err());
        assert_eq!(command_topic("strip1", 3), "cmnd/strip1/POWER3");
    }

    #[test]
    fn per_channel_energy_arrays_parse() {
        let p = br#"{"Time":"2026-12-06T10:00:00","ENERGY":{"TotalStartTime":"2026-01-01T00:00:00","Total":[1.2,0.3],"Yesterday":[0.1,0.0],"Today":[0.2,0.01],"Period":[1,0],"Power":[52,5],"ApparentPower":[60,8],"ReactivePower":[30,6],"Factor":[0.87,0.62],"Voltage":230,"Current":[0.23,0.02]}}"#;
        let r = parse_sensor(p).unwrap().unwrap();
        assert_eq!(r.power_w, Channels::PerChannel(vec![52.0, 5.0]));
        assert_eq!(r.current_a.as_ref().unwrap().channel(2), Some(0.02));
        assert_eq!(r.total_kwh.as_ref().unwrap().channel(1), Some(1.2));
        assert_eq!(r.power_w.total(), 57.0);
    }

    #[test]
    fn one_total_meter_parses_as_single_values() {
        let p = br#"{"ENERGY":{"Total":4.5,"Power":120,"Voltage":231,"Current":0.52}}"#;
        let r = parse_sensor(p).unwrap().unwrap();
        assert_eq!(r.power_w, Channels::Single(120.0));
        assert_eq!(r.power_w.channel(1), None);
        assert_eq!(r.total_kwh, Some(Channels::Single(4.5)));
        // A SENSOR of other sensors is not an error.
        assert_eq!(parse_sensor(br#"{"DS18B20":{"Temperature":21}}"#), Ok(None));
    }

    #[test]
    fn malformed_energy_is_refused_with_the_field_named() {
        let e = parse_sensor(br#"{"ENERGY":{"Power":"52"}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ENERGY.Power: expected a finite number or an array of finite numbers, got a string"
        );
        let e = parse_sensor(br#"{"ENERGY":{"Power":[52,null]}}"#).unwrap_err();
        assert!(e.to_string().contains("null in the array"), "{e}");
        let e = parse_sensor(br#"{"ENERGY":{"Total":1}}"#).unwrap_err();
        assert!(e.to_string().contains("ENERGY.Power"), "{e}");
        let e = parse_sensor(br#"{"ENERGY":3}"#).unwrap_err();
        assert!(e.to_string().contains("expected an object"), "{e}");
        assert!(matches!(
            parse_sensor(b"not json"),
            Err(PayloadError::NotJson(_))
        ));
    }
}
