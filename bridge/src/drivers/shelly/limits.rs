//! The plug's own protection, the hardware safety net under Hearth's
//! software envelope: `power_limit` (W) and `current_limit` (A) of the
//! Switch component's configuration. Above either, the device switches the
//! relay off by itself and reports `errors: ["overpower"]` (or
//! `overcurrent`) in its status until the relay is switched on again.
//!
//! Written with `Switch.SetConfig {"id":n,"config":{"power_limit":W,
//! "current_limit":A}}` (answer `{"restart_required":false}`), read back
//! with `Switch.GetConfig {"id":n}` and shown as two diagnostic sensors,
//! `sensor.<id>_power_limit` (W) and `sensor.<id>_current_limit` (A),
//! holding what the device answered (not what was asked).
//! Source: Shelly Gen2+ API, "Switch" (configuration: `power_limit`,
//! `current_limit`; status: `errors`),
//! <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Switch>.
//!
//! Host envelope, checked when the config is loaded: no Gen2 single relay
//! is rated above 16 A, so `current_limit_a` is at most [`MAX_CURRENT_A`]
//! and `power_limit_w` at most [`MAX_POWER_W`] (16 A at 230 V); with both
//! set, the power limit must be reachable below the current limit at the
//! highest mains voltage EN 50160 allows ([`MAX_MAINS_V`]), or the power
//! limit would never act first.

use crate::entity::{Component, EntitySpec};
use serde_json::{Map, Value, json};

/// A, the highest rating of a Gen2 single relay (Plus 1PM, Pro 1PM).
pub const MAX_CURRENT_A: f64 = 16.0;
/// W, [`MAX_CURRENT_A`] at 230 V.
pub const MAX_POWER_W: f64 = 3680.0;
/// V, 230 V + 10 % (EN 50160).
pub const MAX_MAINS_V: f64 = 253.0;

/// The limits as configured or as the device reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// W
    pub power_limit_w: Option<f64>,
    /// A
    pub current_limit_a: Option<f64>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.power_limit_w.is_some() || self.current_limit_a.is_some()
    }
}

/// The config check: in range, and consistent with each other.
pub fn validate(id: &str, power_w: Option<f64>, current_a: Option<f64>) -> Result<(), String> {
    if let Some(p) = power_w
        && !(p.is_finite() && p > 0.0 && p <= MAX_POWER_W)
    {
        return Err(format!(
            "shelly `{id}`: power_limit_w = {p} W is outside the host safety envelope \
             (above 0, at most {MAX_POWER_W} W: a 16 A relay at 230 V)"
        ));
    }
    if let Some(a) = current_a
        && !(a.is_finite() && a > 0.0 && a <= MAX_CURRENT_A)
    {
        return Err(format!(
            "shelly `{id}`: current_limit_a = {a} A is outside the host safety envelope \
             (above 0, at most {MAX_CURRENT_A} A)"
        ));
    }
    if let (Some(p), Some(a)) = (power_w, current_a)
        && p > a * MAX_MAINS_V
    {
        return Err(format!(
            "shelly `{id}`: power_limit_w = {p} W can never act: current_limit_a = {a} A \
             trips first (at most {} W at {MAX_MAINS_V} V); lower power_limit_w or raise current_limit_a",
            a * MAX_MAINS_V
        ));
    }
    Ok(())
}

/// `Switch.SetConfig` params for the configured limits (only those set).
pub fn set_config_params(switch_id: u32, want: Limits) -> Value {
    let mut config = Map::new();
    if let Some(p) = want.power_limit_w {
        config.insert("power_limit".into(), json!(p));
    }
    if let Some(a) = want.current_limit_a {
        config.insert("current_limit".into(), json!(a));
    }
    json!({"id": switch_id, "config": config})
}

/// The limits in a `Switch.GetConfig` result; a field of the wrong type is
/// named.
pub fn parse_config(v: &Value) -> Result<Limits, String> {
    let field = |name: &str, unit: &str| match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e6)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "Switch.GetConfig `{name}`: expected a number of {unit} (0 to 1e6), got {}",
                    crate::broker::excerpt(x.to_string().as_bytes())
                )
            }),
    };
    if !v.is_object() {
        return Err("Switch.GetConfig: expected an object".into());
    }
    Ok(Limits {
        power_limit_w: field("power_limit", "W")?,
        current_limit_a: field("current_limit", "A")?,
    })
}

/// What differs between the configured limits and the device's answer.
pub fn mismatch(want: Limits, got: Limits) -> Option<String> {
    let off =
        |w: Option<f64>, g: Option<f64>| w.is_some_and(|w| g.is_none_or(|g| (w - g).abs() > 1e-6));
    let mut out = Vec::new();
    if off(want.power_limit_w, got.power_limit_w) {
        out.push(format!(
            "power_limit {:?} W asked, {:?} W read back",
            want.power_limit_w, got.power_limit_w
        ));
    }
    if off(want.current_limit_a, got.current_limit_a) {
        out.push(format!(
            "current_limit {:?} A asked, {:?} A read back",
            want.current_limit_a, got.current_limit_a
        ));
    }
    (!out.is_empty()).then(|| out.join("; "))
}

/// The two diagnostic sensors.
pub fn entities(device_id: &str) -> [EntitySpec; 2] {
    let sensor = |key: &str, name: &str, class: &str, unit: &str| {
        let mut s = EntitySpec::new(device_id, key, Component::Sensor)
            .named(name)
            .class(class)
            .diagnostic();
        s.unit = Some(unit.into());
        s
    };
    [
        sensor("power_limit", "Power limit", "power", "W"),
        sensor("current_limit", "Current limit", "current", "A"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_refuses_limits_above_it_by_name() {
        assert_eq!(validate("ac", Some(2500.0), Some(10.0)), Ok(()));
        assert_eq!(validate("ac", None, None), Ok(()));
        let e = validate("ac", Some(5000.0), None).unwrap_err();
        assert!(
            e.contains("shelly `ac`: power_limit_w = 5000 W is outside the host safety envelope"),
            "{e}"
        );
        let e = validate("ac", None, Some(20.0)).unwrap_err();
        assert!(e.contains("current_limit_a = 20 A is outside"), "{e}");
        for bad in [f64::NAN, f64::INFINITY, 0.0, -1.0] {
            assert!(validate("ac", Some(bad), None).is_err());
            assert!(validate("ac", None, Some(bad)).is_err());
        }
        let e = validate("ac", Some(3000.0), Some(10.0)).unwrap_err();
        assert!(
            e.contains("can never act: current_limit_a = 10 A trips first"),
            "{e}"
        );
    }

    #[test]
    fn set_get_and_read_back() {
        let want = Limits {
            power_limit_w: Some(2500.0),
            current_limit_a: None,
        };
        assert_eq!(
            set_config_params(0, want),
            json!({"id":0,"config":{"power_limit":2500.0}})
        );
        let got = parse_config(&json!({"id":0,"name":null,"power_limit":2500,"current_limit":16.0,"voltage_limit":280})).unwrap();
        assert_eq!(got.power_limit_w, Some(2500.0));
        assert_eq!(got.current_limit_a, Some(16.0));
        assert_eq!(mismatch(want, got), None);
        let clamped = Limits {
            power_limit_w: Some(2400.0),
            ..got
        };
        assert!(
            mismatch(want, clamped)
                .unwrap()
                .contains("2500.0) W asked, Some(2400.0) W read back")
        );
        let e = parse_config(&json!({"power_limit":"2500"})).unwrap_err();
        assert!(e.contains("`power_limit`: expected a number of W"), "{e}");
        assert!(parse_config(&json!({"current_limit":1e300})).is_err());
    }
}
