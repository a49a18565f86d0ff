//! Which units and state classes Home Assistant accepts for a sensor device
//! class. HA drops (with only a log line) a sensor whose unit does not match
//! its device class, so every discovery config is checked against this table
//! before it is published.
//!
//! Source: HA core `homeassistant/components/sensor/const.py`,
//! `DEVICE_CLASS_UNITS` and `DEVICE_CLASS_STATE_CLASSES` (the rows for the
//! device classes Hearth uses; extend as drivers grow).

/// (device class, accepted units, accepted state classes)
pub const SENSOR_TABLE: &[(&str, &[&str], &[&str])] = &[
    ("temperature", &["°C", "°F", "K"], &["measurement"]),
    ("humidity", &["%"], &["measurement"]),
    ("battery", &["%"], &["measurement"]),
    ("signal_strength", &["dB", "dBm"], &["measurement"]),
    (
        "duration",
        &["d", "h", "min", "s", "ms", "µs"],
        &["measurement", "total", "total_increasing"],
    ),
    (
        "power",
        &["mW", "W", "kW", "MW", "GW", "TW", "BTU/h"],
        &["measurement"],
    ),
    ("voltage", &["µV", "mV", "V", "kV", "MV"], &["measurement"]),
    ("current", &["mA", "A"], &["measurement"]),
    (
        "energy",
        &[
            "J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal",
            "Gcal",
        ],
        &["total", "total_increasing"],
    ),
    ("monetary", &[], &["total"]),
];

/// HA's `binary_sensor` device classes Hearth uses.
pub const BINARY_SENSOR_CLASSES: &[&str] = &["problem", "connectivity", "running", "power"];

/// Checks a sensor's (device class, unit, state class) against HA's table.
pub fn check_sensor(
    device_class: Option<&str>,
    unit: Option<&str>,
    state_class: Option<&str>,
) -> Result<(), String> {
    let Some(class) = device_class else {
        return Ok(());
    };
    let (_, units, state_classes) = SENSOR_TABLE
        .iter()
        .find(|(c, _, _)| *c == class)
        .ok_or_else(|| {
            format!("sensor device class `{class}` is not in Hearth's table of HA classes")
        })?;
    if let Some(u) = unit {
        if !units.is_empty() && !units.contains(&u) {
            return Err(format!(
                "unit `{u}` is not valid for device class `{class}` (HA accepts {units:?})"
            ));
        }
    } else if !units.is_empty() {
        return Err(format!(
            "device class `{class}` needs a unit (one of {units:?})"
        ));
    }
    if let Some(s) = state_class
        && !state_classes.contains(&s)
    {
        return Err(format!(
            "state class `{s}` is not valid for device class `{class}` (HA accepts {state_classes:?})"
        ));
    }
    Ok(())
}

pub fn check_binary_sensor(device_class: Option<&str>) -> Result<(), String> {
    match device_class {
        Some(c) if !BINARY_SENSOR_CLASSES.contains(&c) => Err(format!(
            "binary_sensor device class `{c}` is not one Hearth knows HA accepts"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatches_are_named() {
        assert!(check_sensor(Some("temperature"), Some("°C"), Some("measurement")).is_ok());
        assert!(check_sensor(Some("energy"), Some("Wh"), Some("total_increasing")).is_ok());
        let e = check_sensor(Some("temperature"), Some("C"), None).unwrap_err();
        assert!(e.contains("unit `C`"), "{e}");
        let e = check_sensor(Some("energy"), Some("Wh"), Some("measurement")).unwrap_err();
        assert!(e.contains("state class `measurement`"), "{e}");
        assert!(check_sensor(None, Some("anything"), None).is_ok());
        assert!(check_binary_sensor(Some("problem")).is_ok());
        assert!(check_binary_sensor(Some("hot")).is_err());
    }
}
