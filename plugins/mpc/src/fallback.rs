//! The safe law used whenever the MPC cannot run: a hysteresis thermostat
//! (HA `generic_thermostat`-like, valve fully open or closed).

/// Whether to heat: on below `on_below_c`, off above `off_above_c`, the
/// previous decision in between (°C).
pub fn heating(ti_c: f64, on_below_c: f64, off_above_c: f64, was_heating: bool) -> bool {
    if ti_c < on_below_c {
        true
    } else if ti_c > off_above_c {
        false
    } else {
        was_heating
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hysteresis() {
        assert!(heating(19.4, 19.5, 20.5, false));
        assert!(heating(20.0, 19.5, 20.5, true));
        assert!(!heating(20.0, 19.5, 20.5, false));
        assert!(!heating(20.6, 19.5, 20.5, true));
    }
}
