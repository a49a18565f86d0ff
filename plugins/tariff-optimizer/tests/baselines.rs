//! The comparison strategies through the SDK's harness: fixed-times (what a
//! person does) and off-peak-rule (the HC contactor).

mod common;

use common::*;
use hearth_plugin_sdk::serde_json::Value;
use hearth_plugin_sdk::testing::Harness;
use hearth_tariff_optimizer::{FixedTimes, OffPeakRule};

fn house() -> Value {
    config(vec![water_heater(), washing_machine(), ev()])
}

/// Switches off, machine empty, EV away.
fn at_rest<C: hearth_plugin_sdk::Controller>(h: &mut Harness<C>) {
    for s in ["switch.water_heater", "switch.washing_machine", "switch.ev"] {
        h.set_state(s, "off", Value::Null);
    }
    h.set_state("binary_sensor.washing_machine_ready", "off", Value::Null);
    h.set_state("binary_sensor.ev_plugged", "off", Value::Null);
    h.set_state("sensor.ev_battery", "50", Value::Null);
}

/// Ticks every minute in `[from, to)`; the calls with their time.
fn run<C: hearth_plugin_sdk::Controller>(
    h: &mut Harness<C>,
    from: i64,
    to: i64,
) -> Vec<(i64, String)> {
    let mut v = Vec::new();
    let mut t = from;
    while t < to {
        for c in calls(&h.tick(t)) {
            // The twin would follow the relay.
            let (service, entity) = c.split_once(' ').unwrap();
            h.set_state(
                entity,
                if service == "turn_on" { "on" } else { "off" },
                Value::Null,
            );
            v.push((t, c));
        }
        t += MIN;
    }
    v
}

#[test]
fn fixed_times_runs_loads_at_their_hours() {
    let mut h = Harness::<FixedTimes>::new(house()).unwrap();
    h.set_now(T0 - HOUR);
    at_rest(&mut h);
    // Water heater inside 22:00-06:00 only.
    let seen = run(&mut h, T0, T0 + 7 * HOUR);
    assert_eq!(
        seen,
        [
            (T0, "turn_on switch.water_heater".to_string()),
            (T0 + 6 * HOUR, "turn_off switch.water_heater".to_string())
        ]
    );
    // Loaded at 17:00, started at 19:00; the EV plugged at 17:30 at 50 %
    // charges from 18:00.
    h.set_now(T0 + 17 * HOUR);
    h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    h.set_now(T0 + 17 * HOUR + 30 * MIN);
    h.set_state("binary_sensor.ev_plugged", "on", Value::Null);
    let seen = run(&mut h, T0 + 17 * HOUR + 31 * MIN, T0 + 20 * HOUR);
    assert_eq!(
        seen,
        [
            (T0 + 18 * HOUR, "turn_on switch.ev".to_string()),
            (T0 + 19 * HOUR, "turn_on switch.washing_machine".to_string()),
        ]
    );
    // A reading of 80 may be 79.5: on. 80.5 is at least 80.45: off.
    let out = h.set_state("sensor.ev_battery", "80", Value::Null);
    assert!(calls(&out).is_empty());
    let out = h.set_state("sensor.ev_battery", "80.5", Value::Null);
    assert_eq!(calls(&out), ["turn_off switch.ev"]);
    h.set_state("switch.ev", "off", Value::Null);
    let out = h.set_state("binary_sensor.washing_machine_ready", "off", Value::Null);
    assert_eq!(calls(&out), ["turn_off switch.washing_machine"]);
    h.set_state("switch.washing_machine", "off", Value::Null);
    // Loaded again at 21:00 (after 19:00): it waits for tomorrow's 19:00.
    h.set_now(T0 + 21 * HOUR);
    h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    let seen: Vec<_> = run(&mut h, T0 + 21 * HOUR, T0 + 44 * HOUR)
        .into_iter()
        .filter(|(_, c)| c.contains("washing_machine"))
        .collect();
    assert_eq!(
        seen,
        [(T0 + 43 * HOUR, "turn_on switch.washing_machine".to_string())]
    );
}

#[test]
fn off_peak_rule_follows_the_hc_contactor() {
    let mut h = Harness::<OffPeakRule>::new(house()).unwrap();
    h.set_now(T0 - HOUR);
    at_rest(&mut h);
    h.set_state("switch.water_heater", "on", Value::Null);
    let out = h.set_state("sensor.tariff_period", "HP", Value::Null);
    assert_eq!(calls(&out), ["turn_off switch.water_heater"]);
    h.set_state("switch.water_heater", "off", Value::Null);
    // Loaded and plugged in during HP: nothing runs.
    h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    h.set_state("binary_sensor.ev_plugged", "on", Value::Null);
    assert!(run(&mut h, T0, T0 + HOUR).is_empty());
    // HC: everything starts.
    h.set_now(T0 + HOUR);
    let mut on = calls(&h.set_state("sensor.tariff_period", "HC", Value::Null));
    on.sort();
    assert_eq!(
        on,
        [
            "turn_on switch.ev",
            "turn_on switch.washing_machine",
            "turn_on switch.water_heater"
        ]
    );
    for s in ["switch.ev", "switch.washing_machine", "switch.water_heater"] {
        h.set_state(s, "on", Value::Null);
    }
    // A restart keeps the running machine (saved), HP stops the heater and
    // the EV but not the machine: a programme is never split.
    let saved = h.save();
    h.restore(&saved).unwrap();
    let mut off = calls(&h.set_state("sensor.tariff_period", "HP", Value::Null));
    off.sort();
    assert_eq!(off, ["turn_off switch.ev", "turn_off switch.water_heater"]);
    h.set_state("switch.ev", "off", Value::Null);
    h.set_state("switch.water_heater", "off", Value::Null);
    assert!(run(&mut h, T0 + HOUR, T0 + 2 * HOUR).is_empty());
    let out = h.set_state("binary_sensor.washing_machine_ready", "off", Value::Null);
    assert_eq!(calls(&out), ["turn_off switch.washing_machine"]);
    // The EV charges in HC until its target only.
    h.set_state("switch.washing_machine", "off", Value::Null);
    h.set_state("sensor.ev_battery", "81", Value::Null);
    let out = h.set_state("sensor.tariff_period", "HC", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.water_heater"]);
    // Unknown period: switches left as they are, said once (a second
    // time here: it was unknown before the first HP too).
    h.set_state("switch.water_heater", "on", Value::Null);
    let out = h.set_state("sensor.tariff_period", "unavailable", Value::Null);
    assert!(calls(&out).is_empty());
    assert!(run(&mut h, T0 + 3 * HOUR, T0 + 4 * HOUR).is_empty());
    let warned = h
        .logs()
        .iter()
        .filter(|(_, m)| m.contains("is neither HC nor HP"))
        .count();
    assert_eq!(warned, 2);
}

#[test]
fn a_lost_command_is_reasserted_after_reassert_s() {
    let mut h = Harness::<OffPeakRule>::new(house()).unwrap();
    at_rest(&mut h);
    let out = h.set_state("sensor.tariff_period", "HC", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.water_heater"]);
    // The relay stays off (the command was lost): sent again after 600 s,
    // not before.
    let t = h.now_ms();
    assert!(calls(&h.tick(t + 599_000)).is_empty());
    assert_eq!(calls(&h.tick(t + 600_000)), ["turn_on switch.water_heater"]);
    h.set_state("switch.water_heater", "on", Value::Null);
    assert!(calls(&h.tick(t + 1_300_000)).is_empty());
}
