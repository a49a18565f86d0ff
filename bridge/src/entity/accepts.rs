//! What a target entity accepts. The service router checks every call here,
//! after the service's field types ([`super::service::validate`]) and before
//! the safety envelope, whoever sent it (Home Assistant over MQTT, the
//! WebSocket and REST APIs, plugins): a value outside what the entity
//! accepts is refused, never clamped, so no command leaves the router
//! outside a device's envelope.
//!
//! The rules and the words follow Home Assistant:
//! - `climate.set_temperature`: the target must lie in `[min_temp,
//!   max_temp]`, bounds inclusive (HA core's `async_service_temperature_set`
//!   raises `ServiceValidationError` with `translation_key`
//!   `temp_out_of_range`). HA does not check `target_temp_step` (its
//!   frontend rounds); Hearth rounds an accepted target to the nearest step
//!   (`temp_step`, e.g. 22.3 → 22.5 °C with 0.5), because an IR remote
//!   cannot send anything else, and logs the rounding.
//! - `hvac_mode` (in `set_hvac_mode` or `set_temperature`) must be one of
//!   the entity's `hvac_modes` (HA: `not_valid_hvac_mode`).
//! - `valve.set_valve_position`: `position` 0–100, a rule of HA's service
//!   schema (`vol.Range(min=0, max=100)`), so HA answers `invalid_format`
//!   with voluptuous' words; Hearth does the same. Hearth keeps fractional
//!   positions (HA coerces to an integer).
//!
//! - `select.select_option`: the option must be one of the entity's
//!   `options` (HA: `not_valid_option`).
//! - `number.set_value`: the value must lie in `[min, max]`, bounds
//!   inclusive (HA: `out_of_range`); an accepted value is rounded to the
//!   nearest `min + n·step` (the frontend's grid; HA itself does not round).
//!
//! A refusal is a [`Refusal`]: the entity, the field, the value as it came,
//! what is allowed, and which rule refused it (which decides HA's error
//! code). It travels as [`super::ServiceError::NotAccepted`], so every
//! source, a plugin included, gets the same typed answer.

use super::{Component, EntitySpec, InputSpec};
use serde_json::{Map, Value};

/// Which rule refused a value; decides the error code HA answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The service's own schema (HA's voluptuous schema): `invalid_format`.
    ServiceSchema,
    /// What the entity advertises (`min_temp`/`max_temp`, `hvac_modes`):
    /// `service_validation_error`.
    Entity,
    /// The device's safety envelope, narrower than what the entity
    /// advertises: `service_validation_error`.
    SafetyEnvelope,
}

/// What a field allows.
#[derive(Debug, Clone, PartialEq)]
pub enum Allowed {
    /// Inclusive bounds, in `unit`.
    Range {
        min: f64,
        max: f64,
        unit: &'static str,
    },
    /// One of these words (hvac modes).
    OneOf(Vec<String>),
}

/// A value refused: the entity, the field, the value and what is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub entity: String,
    pub field: String,
    /// The value as it came, as JSON text (`5`, `1e308`, `"heat"`).
    pub value: String,
    pub allowed: Allowed,
    pub rule: Rule,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = match self.rule {
            Rule::SafetyEnvelope => " of its safety envelope",
            _ => "",
        };
        match &self.allowed {
            Allowed::Range { min, max, unit } => write!(
                f,
                "{}: {} {} is outside the accepted range{by} {} to {}{}{unit}",
                self.entity,
                self.field,
                self.value,
                number(*min),
                number(*max),
                if unit.is_empty() { "" } else { " " }
            ),
            Allowed::OneOf(words) => write!(
                f,
                "{}: {} {} is not one of the accepted values{by}: {}",
                self.entity,
                self.field,
                self.value,
                words.join(", ")
            ),
        }
    }
}

/// HA's translation of a refusal: what `ServiceValidationError` carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    pub domain: &'static str,
    pub key: &'static str,
    pub placeholders: Map<String, Value>,
}

impl Refusal {
    /// The message HA gives for this refusal (its `strings.json` or
    /// voluptuous' wording), without the `Validation error: ` prefix.
    pub fn ha_message(&self) -> String {
        match (&self.allowed, self.field.as_str(), self.rule) {
            (Allowed::Range { min, max, .. }, field, Rule::ServiceSchema) => {
                let bound = match self.value.parse::<f64>() {
                    Ok(v) if v < *min => format!("at least {}", number(*min)),
                    _ => format!("at most {}", number(*max)),
                };
                format!("value must be {bound} for dictionary value @ data['{field}']")
            }
            (Allowed::Range { min, max, .. }, "temperature", _) => format!(
                "Provided temperature {} is not valid. Accepted range is {} to {}.",
                self.value,
                python_float(*min),
                python_float(*max)
            ),
            (Allowed::OneOf(modes), "hvac_mode", _) => format!(
                "HVAC mode {} is not valid. Valid HVAC modes are: {}.",
                unquoted(&self.value),
                modes.join(", ")
            ),
            (Allowed::OneOf(options), "option", _) => format!(
                "Option {} is not valid for entity {}, valid options are: {}.",
                unquoted(&self.value),
                self.entity,
                options.join(", ")
            ),
            (Allowed::Range { min, max, .. }, "value", _) => format!(
                "Value {} for {} is outside valid range {} - {}.",
                self.value,
                self.entity,
                python_float(*min),
                python_float(*max)
            ),
            _ => self.to_string(),
        }
    }

    /// HA's `translation_domain`, `translation_key` and placeholders, for
    /// the refusals HA translates (climate's, select's and number's; HA
    /// core's `strings.json` of each).
    pub fn translation(&self) -> Option<Translation> {
        let mut placeholders = Map::new();
        let mut domain = "climate";
        let key = match (&self.allowed, self.field.as_str(), self.rule) {
            (_, _, Rule::ServiceSchema) => return None,
            (Allowed::Range { min, max, .. }, "temperature", _) => {
                placeholders.insert("check_temp".into(), self.value.clone().into());
                placeholders.insert("min_temp".into(), python_float(*min).into());
                placeholders.insert("max_temp".into(), python_float(*max).into());
                "temp_out_of_range"
            }
            (Allowed::OneOf(modes), "hvac_mode", _) => {
                placeholders.insert("mode".into(), unquoted(&self.value).into());
                placeholders.insert("modes".into(), modes.join(", ").into());
                "not_valid_hvac_mode"
            }
            (Allowed::OneOf(options), "option", _) => {
                domain = "select";
                placeholders.insert("entity_id".into(), self.entity.clone().into());
                placeholders.insert("option".into(), unquoted(&self.value).into());
                placeholders.insert("options".into(), options.join(", ").into());
                "not_valid_option"
            }
            (Allowed::Range { min, max, .. }, "value", _) => {
                domain = "number";
                placeholders.insert("value".into(), self.value.clone().into());
                placeholders.insert("entity_id".into(), self.entity.clone().into());
                placeholders.insert("min_value".into(), python_float(*min).into());
                placeholders.insert("max_value".into(), python_float(*max).into());
                "out_of_range"
            }
            _ => return None,
        };
        Some(Translation {
            domain,
            key,
            placeholders,
        })
    }
}

/// A bound for people: `16`, `22.5`.
fn number(x: f64) -> String {
    format!("{x}")
}

/// As Python's `str(float)` prints the usual bounds: `16.0`, `22.5`.
fn python_float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

fn unquoted(json_text: &str) -> &str {
    json_text.trim_matches('"')
}

/// Checks `data` for `service` on the entity `entity_id` (described by
/// `spec` when the store knows it); returns the data to send, the target
/// temperature rounded to the entity's step.
pub fn check(
    entity_id: &str,
    spec: Option<&EntitySpec>,
    service: &str,
    data: &Map<String, Value>,
) -> Result<Map<String, Value>, Refusal> {
    let mut out = data.clone();
    let refusal = |field: &str, value: &Value, allowed: Allowed, rule: Rule| Refusal {
        entity: entity_id.into(),
        field: field.into(),
        value: value.to_string(),
        allowed,
        rule,
    };
    if service == "set_valve_position"
        && let Some(v) = data.get("position")
        && !v.as_f64().is_some_and(|p| (0.0..=100.0).contains(&p))
    {
        let allowed = Allowed::Range {
            min: 0.0,
            max: 100.0,
            unit: "%",
        };
        return Err(refusal("position", v, allowed, Rule::ServiceSchema));
    }
    match (spec.and_then(|s| s.input.as_ref()), service) {
        (Some(InputSpec::Select { options }), "select_option") => {
            if let Some(o) = data.get("option")
                && !o.as_str().is_some_and(|o| options.iter().any(|x| x == o))
            {
                let allowed = Allowed::OneOf(options.clone());
                return Err(refusal("option", o, allowed, Rule::Entity));
            }
        }
        (Some(InputSpec::Number { min, max, step, .. }), "set_value") => {
            if let Some(v) = data.get("value") {
                let (min, max) = (*min, *max);
                let Some(asked) = v.as_f64().filter(|x| (min..=max).contains(x)) else {
                    let allowed = Allowed::Range { min, max, unit: "" };
                    return Err(refusal("value", v, allowed, Rule::Entity));
                };
                // The grid starts at min, as the frontend's slider's does.
                let on_step = tidy(round_to_step(asked - min, *step, 0.0, max - min) + min);
                if on_step != asked {
                    tracing::info!(
                        "{entity_id}: value {asked} rounded to the entity's step {step} from {min}: {on_step}"
                    );
                    out.insert("value".into(), on_step.into());
                }
            }
        }
        _ => {}
    }
    let Some(climate) = spec
        .filter(|s| s.component == Component::Climate)
        .and_then(|s| s.climate.as_ref())
    else {
        return Ok(out);
    };
    if let Some(mode) = data.get("hvac_mode")
        && !mode
            .as_str()
            .is_some_and(|m| climate.modes.iter().any(|c| c == m))
    {
        let allowed = Allowed::OneOf(climate.modes.clone());
        return Err(refusal("hvac_mode", mode, allowed, Rule::Entity));
    }
    if let Some(t) = data.get("temperature") {
        let (min, max) = (climate.min_temp, climate.max_temp);
        let Some(asked) = t.as_f64().filter(|x| (min..=max).contains(x)) else {
            let allowed = Allowed::Range {
                min,
                max,
                unit: "°C",
            };
            return Err(refusal("temperature", t, allowed, Rule::Entity));
        };
        let on_step = round_to_step(asked, climate.temp_step, min, max);
        if on_step != asked {
            tracing::info!(
                "{entity_id}: temperature {asked} °C rounded to the entity's {} °C step: {on_step} °C",
                climate.temp_step
            );
            out.insert("temperature".into(), on_step.into());
        }
    }
    Ok(out)
}

/// The multiple of `step` nearest to `x`, kept inside `[min, max]` (a
/// bound off the grid moves the result inward by one step).
fn round_to_step(x: f64, step: f64, min: f64, max: f64) -> f64 {
    if !(step.is_finite() && step > 0.0) {
        return x;
    }
    let n = (x / step).round();
    let mut r = tidy(n * step);
    if r < min {
        r = tidy((n + 1.0) * step);
    } else if r > max {
        r = tidy((n - 1.0) * step);
    }
    if (min..=max).contains(&r) { r } else { x }
}

/// Rounded to 1e-9 so 0.1-steps give 22.3, not 22.300000000000001.
fn tidy(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::entity::fixtures::ac_climate as climate;

    fn data(v: Value) -> Map<String, Value> {
        let Value::Object(m) = v else { unreachable!() };
        m
    }

    #[test]
    fn temperature_outside_min_max_is_refused_with_has_words() {
        let spec = climate();
        for asked in [
            json!(5),
            json!(60),
            json!(1e308),
            json!(-1e308),
            json!(15.99),
        ] {
            let r = check(
                "climate.ac",
                Some(&spec),
                "set_temperature",
                &data(json!({ "temperature": asked })),
            )
            .unwrap_err();
            assert_eq!(r.rule, Rule::Entity, "{asked}");
            assert_eq!(r.field, "temperature");
        }
        let r = check(
            "climate.ac",
            Some(&spec),
            "set_temperature",
            &data(json!({"temperature": 5})),
        )
        .unwrap_err();
        assert_eq!(
            r.ha_message(),
            "Provided temperature 5 is not valid. Accepted range is 16.0 to 30.0."
        );
        assert_eq!(
            r.to_string(),
            "climate.ac: temperature 5 is outside the accepted range 16 to 30 °C"
        );
        let t = r.translation().unwrap();
        assert_eq!((t.domain, t.key), ("climate", "temp_out_of_range"));
        assert_eq!(
            Value::Object(t.placeholders),
            json!({"check_temp": "5", "min_temp": "16.0", "max_temp": "30.0"})
        );
        // Bounds are inclusive, as in HA.
        for ok in [16.0, 30.0] {
            assert!(
                check(
                    "climate.ac",
                    Some(&spec),
                    "set_temperature",
                    &data(json!({ "temperature": ok }))
                )
                .is_ok()
            );
        }
    }

    #[test]
    fn targets_are_rounded_to_the_step() {
        let spec = climate();
        let sent = |t: f64| {
            check(
                "climate.ac",
                Some(&spec),
                "set_temperature",
                &data(json!({ "temperature": t })),
            )
            .unwrap()["temperature"]
                .as_f64()
                .unwrap()
        };
        assert_eq!(sent(22.3), 22.5);
        assert_eq!(sent(22.2), 22.0);
        assert_eq!(sent(22.5), 22.5);
        assert_eq!(
            round_to_step(16.1, 0.5, 16.2, 30.0),
            16.5,
            "bound off the grid"
        );
        assert_eq!(round_to_step(22.34, 0.1, 16.0, 30.0), 22.3);
    }

    #[test]
    fn unsupported_hvac_modes_are_refused() {
        let spec = climate();
        let r = check(
            "climate.ac",
            Some(&spec),
            "set_hvac_mode",
            &data(json!({"hvac_mode": "heat"})),
        )
        .unwrap_err();
        assert_eq!(
            r.ha_message(),
            "HVAC mode heat is not valid. Valid HVAC modes are: off, cool."
        );
        assert_eq!(r.translation().unwrap().key, "not_valid_hvac_mode");
        assert!(
            check(
                "climate.ac",
                Some(&spec),
                "set_hvac_mode",
                &data(json!({"hvac_mode": "cool"}))
            )
            .is_ok()
        );
    }

    fn select() -> EntitySpec {
        let mut s = EntitySpec::new("helpers", "select_seat", Component::Select);
        s.entity_id = "select.seat".into();
        s.input = Some(InputSpec::Select {
            options: vec!["nobody".into(), "ana".into()],
        });
        s
    }

    fn number() -> EntitySpec {
        let mut s = EntitySpec::new("helpers", "number_limit", Component::Number);
        s.entity_id = "number.limit".into();
        s.input = Some(InputSpec::Number {
            min: 1.0,
            max: 10.0,
            step: 0.5,
            mode: "box".into(),
        });
        s
    }

    #[test]
    fn select_options_outside_the_list_are_refused_with_has_words() {
        let spec = select();
        let ask = |o: Value| {
            check(
                "select.seat",
                Some(&spec),
                "select_option",
                &data(json!({"option": o})),
            )
        };
        assert!(ask(json!("ana")).is_ok());
        for bad in [json!("bob"), json!("Ana"), json!("")] {
            let r = ask(bad.clone()).unwrap_err();
            assert_eq!(
                (r.field.as_str(), r.rule),
                ("option", Rule::Entity),
                "{bad}"
            );
        }
        let r = ask(json!("bob")).unwrap_err();
        assert_eq!(
            r.ha_message(),
            "Option bob is not valid for entity select.seat, valid options are: nobody, ana."
        );
        let t = r.translation().unwrap();
        assert_eq!((t.domain, t.key), ("select", "not_valid_option"));
        assert_eq!(
            Value::Object(t.placeholders),
            json!({"entity_id": "select.seat", "option": "bob", "options": "nobody, ana"})
        );
    }

    #[test]
    fn number_values_outside_min_max_are_refused_and_others_rounded_to_the_step() {
        let spec = number();
        let ask = |v: Value| {
            check(
                "number.limit",
                Some(&spec),
                "set_value",
                &data(json!({"value": v})),
            )
        };
        for bad in [json!(0.99), json!(10.01), json!(1e308), json!(-1e308)] {
            let r = ask(bad.clone()).unwrap_err();
            assert_eq!((r.field.as_str(), r.rule), ("value", Rule::Entity), "{bad}");
        }
        let r = ask(json!(11)).unwrap_err();
        assert_eq!(
            r.ha_message(),
            "Value 11 for number.limit is outside valid range 1.0 - 10.0."
        );
        let t = r.translation().unwrap();
        assert_eq!((t.domain, t.key), ("number", "out_of_range"));
        assert_eq!(t.placeholders["min_value"], "1.0");
        let sent = |v: f64| ask(json!(v)).unwrap()["value"].as_f64().unwrap();
        assert_eq!(sent(1.0), 1.0);
        assert_eq!(sent(10.0), 10.0);
        assert_eq!(sent(3.3), 3.5);
        assert_eq!(sent(3.2), 3.0);
        assert_eq!(sent(9.9), 10.0);
    }

    #[test]
    fn valve_positions_outside_0_100_are_refused_by_the_schema() {
        for (asked, words) in [(150.0, "at most 100"), (-5.0, "at least 0")] {
            let r = check(
                "valve.v",
                None,
                "set_valve_position",
                &data(json!({ "position": asked })),
            )
            .unwrap_err();
            assert_eq!(r.rule, Rule::ServiceSchema);
            assert_eq!(
                r.ha_message(),
                format!("value must be {words} for dictionary value @ data['position']")
            );
            assert!(r.translation().is_none());
        }
        assert!(
            check(
                "valve.v",
                None,
                "set_valve_position",
                &data(json!({"position": 70.5}))
            )
            .is_ok()
        );
    }
}
