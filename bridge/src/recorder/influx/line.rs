//! State changes as InfluxDB line protocol, shaped like Home Assistant's
//! `influxdb` integration writes them, so dashboards and queries written
//! for HA work on Hearth's data:
//!
//! - measurement: the entity's unit of measurement (`°C`, `W`), or its
//!   entity id when it has none;
//! - tags: `domain` (`sensor`) and `entity_id` — HA's *object id*
//!   (`server_room_temperature`, without the domain);
//! - fields: `value` (float) for a numeric state; a non-numeric state is
//!   the `state` string field, plus `value` 1/0 when HA's `state_as_number`
//!   maps it (`on`/`off`, `open`/`closed`, …);
//! - timestamp: the state's `last_updated`, ms since the Unix epoch on the
//!   bridge clock (the writes say `precision=ms`).
//!
//! `unknown`, `unavailable` and empty states are not written (HA skips
//! them too). HA also writes every attribute as a field; Hearth does not
//! (yet): attributes are mostly static metadata and would multiply the
//! volume of the disk buffer.
//!
//! Escaping follows InfluxDB's line protocol reference ("Special
//! characters"): measurement `,` and space; tag keys, tag values and field
//! keys `,` `=` and space; string field values `"` and `\`. Backslashes in
//! names are doubled too (the reference reads `\\` as one backslash), so a
//! name ending in `\` cannot escape the separator after it. Line protocol
//! has no way to carry a newline in a name or value: `\n` and `\r` become
//! spaces.

use crate::entity::{State, domain_of};
use std::fmt::Write;

/// HA's `state_helper.state_as_number`: the states it counts as 1 and 0.
const AS_ONE: [&str; 5] = ["on", "locked", "above_horizon", "open", "home"];
const AS_ZERO: [&str; 5] = ["off", "unlocked", "below_horizon", "closed", "not_home"];

/// One point, before formatting.
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub measurement: &'a str,
    pub domain: &'a str,
    pub object_id: &'a str,
    /// The `value` field.
    pub value: Option<f64>,
    /// The `state` string field.
    pub state: Option<&'a str>,
    /// ms since the Unix epoch.
    pub time_ms: i64,
}

impl<'a> Point<'a> {
    /// The point HA would write for `state`, `unit` being the entity's unit
    /// of measurement (its spec's; `None` falls back to the
    /// `unit_of_measurement` attribute). `None` for states HA skips.
    pub fn from_state(state: &'a State, unit: Option<&'a str>) -> Option<Point<'a>> {
        let s = state.state.as_str();
        if s.is_empty() || s == "unknown" || s == "unavailable" {
            return None;
        }
        let (value, string) = match state.number() {
            Some(v) => (Some(v), None),
            None if AS_ONE.contains(&s) => (Some(1.0), Some(s)),
            None if AS_ZERO.contains(&s) => (Some(0.0), Some(s)),
            None => (None, Some(s)),
        };
        let unit = unit
            .or_else(|| {
                state
                    .attributes
                    .get("unit_of_measurement")
                    .and_then(|u| u.as_str())
            })
            .filter(|u| !u.trim().is_empty() && !u.starts_with('#'));
        let domain = domain_of(&state.entity_id);
        let object_id = state
            .entity_id
            .split_once('.')
            .map_or(state.entity_id.as_str(), |(_, o)| o);
        Some(Point {
            // A line starting with `#` is a comment: such a unit would make
            // the point vanish without an error, so it is not used.
            measurement: unit.unwrap_or(&state.entity_id),
            domain,
            object_id,
            value,
            state: string,
            time_ms: state.last_updated,
        })
    }

    /// The point as one line of line protocol, without the newline.
    pub fn to_line(&self) -> String {
        let mut out = String::with_capacity(96);
        escape_into(&mut out, self.measurement, &[',', ' ']);
        for (k, v) in [("domain", self.domain), ("entity_id", self.object_id)] {
            // Line protocol has no empty tag values; such a tag is left out.
            if !v.is_empty() {
                out.push(',');
                out.push_str(k);
                out.push('=');
                escape_into(&mut out, v, &[',', '=', ' ']);
            }
        }
        let mut sep = ' ';
        if let Some(s) = self.state {
            out.push(sep);
            out.push_str("state=\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => {
                        out.push('\\');
                        out.push(c);
                    }
                    '\n' | '\r' => out.push(' '),
                    c => out.push(c),
                }
            }
            out.push('"');
            sep = ',';
        }
        if let Some(v) = self.value.filter(|v| v.is_finite()) {
            out.push(sep);
            // `{}` of an f64 never uses an exponent and is an exact
            // round-trip; without an `i` suffix InfluxDB reads it as float.
            let _ = write!(out, "value={v}");
        }
        let _ = write!(out, " {}", self.time_ms);
        out
    }
}

/// Appends `s` with `special` characters and backslashes escaped and line
/// breaks replaced by spaces.
fn escape_into(out: &mut String, s: &str, special: &[char]) {
    for c in s.chars() {
        if c == '\\' || special.contains(&c) {
            out.push('\\');
            out.push(c);
        } else if c == '\n' || c == '\r' {
            out.push(' ');
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::Context;
    use serde_json::Map;

    fn state(entity_id: &str, s: &str) -> State {
        State {
            entity_id: entity_id.into(),
            state: s.into(),
            attributes: Map::new(),
            last_changed: 1_700_000_000_000,
            last_updated: 1_700_000_000_123,
            context: Context::default(),
        }
    }

    fn line(entity_id: &str, s: &str, unit: Option<&str>) -> Option<String> {
        let st = state(entity_id, s);
        Point::from_state(&st, unit).map(|p| p.to_line())
    }

    #[test]
    fn numeric_states_are_a_value_under_their_unit() {
        assert_eq!(
            line("sensor.room_temperature", "21.5", Some("°C")).unwrap(),
            "°C,domain=sensor,entity_id=room_temperature value=21.5 1700000000123"
        );
        // No unit: the entity id is the measurement (HA's default).
        assert_eq!(
            line("sensor.count", "3", None).unwrap(),
            "sensor.count,domain=sensor,entity_id=count value=3 1700000000123"
        );
        // The attribute is the fallback for the spec's unit.
        let mut st = state("sensor.p", "-0.25");
        st.attributes
            .insert("unit_of_measurement".into(), "kW".into());
        assert_eq!(
            Point::from_state(&st, None).unwrap().to_line(),
            "kW,domain=sensor,entity_id=p value=-0.25 1700000000123"
        );
    }

    #[test]
    fn other_states_are_strings_with_a_value_when_ha_counts_them() {
        assert_eq!(
            line("binary_sensor.door", "on", None).unwrap(),
            "binary_sensor.door,domain=binary_sensor,entity_id=door state=\"on\",value=1 1700000000123"
        );
        assert_eq!(
            line("valve.v", "closed", None).unwrap(),
            "valve.v,domain=valve,entity_id=v state=\"closed\",value=0 1700000000123"
        );
        assert_eq!(
            line("climate.ac", "cool", None).unwrap(),
            "climate.ac,domain=climate,entity_id=ac state=\"cool\" 1700000000123"
        );
        // Not finite is not a number: kept as the string.
        assert_eq!(
            line("sensor.x", "inf", None).unwrap(),
            "sensor.x,domain=sensor,entity_id=x state=\"inf\" 1700000000123"
        );
    }

    #[test]
    fn skipped_states() {
        for s in ["unknown", "unavailable", ""] {
            assert_eq!(line("sensor.x", s, Some("W")), None, "{s:?}");
        }
    }

    #[test]
    fn special_characters_are_escaped_per_the_spec() {
        // Measurement: comma and space (an `=` needs no escape there).
        let p = Point {
            measurement: "a b,c=d",
            domain: "sen sor",
            object_id: "x,y=z",
            value: Some(1.0),
            state: Some("say \"hi\" \\o/\nbye"),
            time_ms: 5,
        };
        assert_eq!(
            p.to_line(),
            r#"a\ b\,c=d,domain=sen\ sor,entity_id=x\,y\=z state="say \"hi\" \\o/ bye",value=1 5"#
        );
        // Backslashes in names are doubled, so a trailing one cannot
        // swallow the separator.
        let p = Point {
            measurement: r"m\",
            domain: r"d\",
            object_id: "o",
            value: Some(2.5),
            state: None,
            time_ms: 6,
        };
        assert_eq!(p.to_line(), r"m\\,domain=d\\,entity_id=o value=2.5 6");
    }

    #[test]
    fn a_hash_unit_would_make_a_comment_so_the_entity_id_is_used() {
        assert_eq!(
            line("sensor.x", "1", Some("#")).unwrap(),
            "sensor.x,domain=sensor,entity_id=x value=1 1700000000123"
        );
    }

    #[test]
    fn floats_never_use_exponents() {
        let p = Point {
            measurement: "m",
            domain: "d",
            object_id: "o",
            value: Some(1e21),
            state: None,
            time_ms: 0,
        };
        assert_eq!(
            p.to_line(),
            "m,domain=d,entity_id=o value=1000000000000000000000 0"
        );
        let p = Point {
            value: Some(1.5e-7),
            ..p
        };
        assert_eq!(p.to_line(), "m,domain=d,entity_id=o value=0.00000015 0");
    }
}
