//! What a state is worth as a history sample: the number the plugins'
//! `history` import serves (WIT `sample.value`). Owned here, next to the
//! state model, because two places must agree on it: the entity store's
//! recent memory (`store.rs`) and the recorder's SQLite reader
//! (`recorder/query.rs`), which together answer one `history` call.
//!
//! - A numeric state (`"23.4"`) is its number, in the entity's unit.
//! - A binary state is 1 or 0, by domain, with HA's own state words:
//!   [`ON_OFF_DOMAINS`] `on` = 1 / `off` = 0 (a switch's run time is the
//!   time its samples are 1); [`OPEN_CLOSED_DOMAINS`] `open` = 1 /
//!   `closed` = 0 (`opening`/`closing` are left out: a valve's position is
//!   its `current_position` attribute, not a state); [`PRESENCE_DOMAINS`]
//!   `home` = 1 / `not_home` = 0.
//! - Everything else is left out: `unavailable`, `unknown`, and enumerated
//!   states whose `off` is one choice among several (a climate's
//!   `cool`/`heat`/`off`), which no single number describes.

/// Domains whose state is HA's `on`/`off`.
pub const ON_OFF_DOMAINS: &[&str] = &[
    "automation",
    "binary_sensor",
    "fan",
    "humidifier",
    "input_boolean",
    "light",
    "remote",
    "schedule",
    "script",
    "siren",
    "switch",
];

/// Domains whose state is HA's `open`/`closed` (with `opening`/`closing`).
pub const OPEN_CLOSED_DOMAINS: &[&str] = &["cover", "valve"];

/// Domains whose state is HA's `home`/`not_home` (or a zone's name).
pub const PRESENCE_DOMAINS: &[&str] = &["device_tracker", "person"];

/// The state words worth 1 and 0 in `domain` (`None`: not a binary domain).
pub fn binary_words(domain: &str) -> Option<(&'static str, &'static str)> {
    if ON_OFF_DOMAINS.contains(&domain) {
        Some(("on", "off"))
    } else if OPEN_CLOSED_DOMAINS.contains(&domain) {
        Some(("open", "closed"))
    } else if PRESENCE_DOMAINS.contains(&domain) {
        Some(("home", "not_home"))
    } else {
        None
    }
}

/// The sample value of `state` for entity `entity_id`: its number when it
/// is a finite number, 1/0 for a binary domain's two states, else `None`
/// (not a sample).
pub fn sample_value(entity_id: &str, state: &str) -> Option<f64> {
    if let Some(v) = state.parse::<f64>().ok().filter(|v| v.is_finite()) {
        return Some(v);
    }
    let (one, zero) = binary_words(super::domain_of(entity_id))?;
    if state == one {
        Some(1.0)
    } else if state == zero {
        Some(0.0)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_numbers_and_binary_states_become_one_and_zero() {
        assert_eq!(sample_value("sensor.t", "23.4"), Some(23.4));
        assert_eq!(sample_value("switch.ac", "7"), Some(7.0));
        assert_eq!(sample_value("sensor.t", "NaN"), None);
        assert_eq!(sample_value("switch.ac", "on"), Some(1.0));
        assert_eq!(sample_value("switch.ac", "off"), Some(0.0));
        assert_eq!(sample_value("binary_sensor.door", "on"), Some(1.0));
        assert_eq!(sample_value("valve.house_heating", "open"), Some(1.0));
        assert_eq!(sample_value("valve.house_heating", "closed"), Some(0.0));
        assert_eq!(sample_value("valve.house_heating", "opening"), None);
        assert_eq!(sample_value("person.ann", "not_home"), Some(0.0));
        for state in ["unavailable", "unknown", "ON", ""] {
            assert_eq!(sample_value("switch.ac", state), None, "{state}");
        }
    }

    #[test]
    fn enumerated_states_are_not_samples() {
        // A climate's `off` is one hvac mode among several: no number.
        assert_eq!(sample_value("climate.ac", "off"), None);
        assert_eq!(sample_value("climate.ac", "cool"), None);
        // A sensor reading `on` is text, not a binary state.
        assert_eq!(sample_value("sensor.mode", "on"), None);
    }
}
