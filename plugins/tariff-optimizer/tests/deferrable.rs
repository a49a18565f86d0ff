//! A deferrable load (a pool pump on a plug: so many hours in a daily
//! window) under the optimizer and both baselines.

mod common;

use common::*;
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::testing::Harness;
use hearth_plugin_sdk::{Controller, Output};
use hearth_tariff_optimizer::{FixedTimes, OffPeakRule, TariffOptimizer};

fn pump(extra: Value) -> Value {
    let mut p = json!({"id": "pool_pump", "kind": "deferrable", "switch": "switch.pool_pump",
        "nominal_w": 1000, "hours": 2, "from": "08:00", "to": "20:00", "fixed_start": "10:00"});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

/// Ticks every 5 min in `[from, to)`, the relay following the commands;
/// `each` runs before each tick (its output's commands count too).
/// Returns (time, command).
fn run<C: Controller>(
    h: &mut Harness<C>,
    from: i64,
    to: i64,
    mut each: impl FnMut(&mut Harness<C>, i64) -> Option<Output>,
) -> Vec<(i64, String)> {
    let mut seen = Vec::new();
    let mut t = from;
    while t < to {
        h.set_now(t);
        let before = each(h, t);
        let out: Output = h.tick(t);
        for c in before.iter().chain([&out]).flat_map(calls) {
            let (service, entity) = c.split_once(' ').unwrap();
            let on = if service == "turn_on" { "on" } else { "off" };
            h.set_state(entity, on, Value::Null);
            seen.push((t, c));
        }
        t += 5 * MIN;
    }
    seen
}

fn at(h: i64, m: i64, c: &str) -> (i64, String) {
    (T0 + h * HOUR + m * MIN, c.to_string())
}

#[test]
fn the_optimizer_runs_it_in_the_cheapest_hours_of_its_window() {
    // Cheapest 06:00-07:00 (outside the window) and 12:00-13:00 (inside);
    // 13:00-14:00 next cheapest.
    let mut p = prices(0.30, 0.10, 12..14);
    for x in &mut p[24..26] {
        *x = 0.10;
    }
    for x in &mut p[26..28] {
        *x = 0.20;
    }
    let mut h = Harness::<TariffOptimizer>::new(config(vec![pump(json!({}))])).unwrap();
    h.set_forecast("price", series(&p));
    h.set_state("switch.pool_pump", "off", Value::Null);
    let seen = run(&mut h, T0, T0 + 20 * HOUR, |_, _| None);
    assert_eq!(
        seen,
        [
            at(12, 0, "turn_on switch.pool_pump"),
            at(14, 0, "turn_off switch.pool_pump")
        ]
    );
    let d = h.plugin().memory().delivered["pool_pump"].clone();
    assert!((d.wh - 2000.0).abs() < 1e-6, "{d:?}");
    // Its energy survives a restart.
    let saved = h.save();
    let mut h2 = Harness::<TariffOptimizer>::new(config(vec![pump(json!({}))])).unwrap();
    h2.restore(&saved).unwrap();
    assert!((h2.plugin().memory().delivered["pool_pump"].wh - d.wh).abs() < 1e-9);
}

#[test]
fn a_running_single_run_continues_when_prices_change() {
    let mut h = Harness::<TariffOptimizer>::new(config(vec![pump(
        json!({"hours": 1.5, "single_start": true}),
    )]))
    .unwrap();
    h.set_forecast("price", series(&prices(0.30, 0.10, 24..27)));
    h.set_state("switch.pool_pump", "off", Value::Null);
    let seen = run(&mut h, T0 + 11 * HOUR, T0 + 12 * HOUR + 10 * MIN, |_, _| {
        None
    });
    assert_eq!(seen, [at(12, 0, "turn_on switch.pool_pump")]);
    // 12:30-13:30 dear now, 15:00-16:30 cheap: a fresh plan would stop it
    // and run 1 h from 15:00.
    let mut dear = prices(0.30, 0.05, 30..33);
    for x in &mut dear[25..27] {
        *x = 0.60;
    }
    h.set_forecast("price", series(&dear));
    let seen = run(&mut h, T0 + 12 * HOUR + 10 * MIN, T0 + 18 * HOUR, |_, _| {
        None
    });
    assert_eq!(seen, [at(13, 30, "turn_off switch.pool_pump")]);
}

#[test]
fn fixed_times_runs_it_from_its_hour_until_done() {
    let mut h = Harness::<FixedTimes>::new(config(vec![pump(json!({}))])).unwrap();
    h.set_state("switch.pool_pump", "off", Value::Null);
    let seen = run(&mut h, T0, T0 + 34 * HOUR + 5 * MIN, |_, _| None);
    assert_eq!(
        seen,
        [
            at(10, 0, "turn_on switch.pool_pump"),
            at(12, 0, "turn_off switch.pool_pump"),
            // The next day's window.
            at(34, 0, "turn_on switch.pool_pump"),
        ]
    );
}

#[test]
fn off_peak_rule_runs_it_in_hc_inside_its_window() {
    // Window all day; HC 12:00-12:30 and 22:00-06:00.
    let c = config(vec![pump(json!({"from": "00:00", "to": "24:00"}))]);
    let mut h = Harness::<OffPeakRule>::new(c).unwrap();
    h.set_state("switch.pool_pump", "off", Value::Null);
    h.set_state("sensor.tariff_period", "HP", Value::Null);
    let seen = run(&mut h, T0 + 6 * HOUR, T0 + 27 * HOUR, |h, t| {
        let local = (t - T0) % (24 * HOUR);
        let hc = (12 * HOUR..12 * HOUR + 30 * MIN).contains(&local)
            || !(6 * HOUR..22 * HOUR).contains(&local);
        Some(h.set_state(
            "sensor.tariff_period",
            if hc { "HC" } else { "HP" },
            Value::Null,
        ))
    });
    assert_eq!(
        seen,
        [
            at(12, 0, "turn_on switch.pool_pump"),
            at(12, 30, "turn_off switch.pool_pump"),
            // 30 min done: 1 h 30 min more in the night's HC.
            at(22, 0, "turn_on switch.pool_pump"),
            at(23, 30, "turn_off switch.pool_pump"),
            // A new day's window, still HC.
            at(24, 0, "turn_on switch.pool_pump"),
            at(26, 0, "turn_off switch.pool_pump"),
        ]
    );
}
