//! The optimizer plugin through the SDK's harness: planned starts, started
//! machines never moved, re-plans on a deadline change, forecast fallbacks,
//! memory across a restart.

mod common;

use common::*;
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::testing::Harness;
use hearth_tariff_optimizer::TariffOptimizer;
use std::collections::BTreeMap;

/// The relays follow `out`'s commands, as the twin's would; `relay` keeps
/// the last command per switch.
fn follow(
    h: &mut Harness<TariffOptimizer>,
    out: &hearth_plugin_sdk::Output,
    relay: &mut BTreeMap<String, bool>,
) {
    for c in calls(out) {
        let (service, entity) = c.split_once(' ').unwrap();
        let on = service == "turn_on";
        relay.insert(entity.to_string(), on);
        h.set_state(entity, if on { "on" } else { "off" }, Value::Null);
    }
}

fn warned(h: &Harness<TariffOptimizer>, what: &str) -> usize {
    h.logs().iter().filter(|(_, m)| m.contains(what)).count()
}

fn problem(out: &hearth_plugin_sdk::Output) -> Value {
    attrs(out, "optim_status").expect("optim_status published")["problem"].clone()
}

/// A washing machine loaded at T0, done by `deadline`, prices `p`.
fn loaded_machine(p: &[f64], deadline: i64) -> Harness<TariffOptimizer> {
    let mut h = Harness::<TariffOptimizer>::new(config(vec![washing_machine()])).unwrap();
    h.set_forecast("price", series(p));
    h.set_state("switch.washing_machine", "off", Value::Null);
    h.set_state("sensor.washing_machine_power", "0", Value::Null);
    h.set_state(
        "sensor.washing_machine_deadline",
        &iso(deadline),
        Value::Null,
    );
    h
}

#[test]
fn a_machine_starts_at_its_planned_start_and_a_replan_never_moves_it() {
    // Cheap 05:00-06:30 (steps 10-12): the programme's three 30-min steps
    // (2000, 300, 350 W) fit exactly there.
    let mut h = loaded_machine(&prices(0.30, 0.10, 10..13), T0 + 12 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
    let a = attrs(&out, "p_deferrable0").expect("replanned on loading");
    assert_eq!(a["start"], json!(iso(T0 + 10 * STEP)), "{a}");
    assert_eq!(a["load_id"], "washing_machine");
    assert_eq!(a["deferrables_schedule"][10]["p_deferrable0"], "2000.00");

    let mut t = T0;
    let started = loop {
        t += 5 * MIN;
        assert!(t < T0 + 12 * HOUR, "never started");
        let out = h.tick(t);
        if !out.calls().is_empty() {
            assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
            break t;
        }
    };
    assert_eq!(started, T0 + 10 * STEP, "started at its planned start");
    h.set_state("switch.washing_machine", "on", Value::Null);
    h.set_state("sensor.washing_machine_power", "2000", Value::Null);

    // Now the running steps are dear and 10:00 is cheap: a plan from
    // scratch would stop it and start it again at 10:00.
    let mut dear = prices(0.30, 0.05, 20..23);
    for p in &mut dear[10..13] {
        *p = 1.0;
    }
    h.set_forecast("price", series(&dear));
    let mut t = started;
    while t < started + 3 * STEP {
        t += 5 * MIN;
        let out = h.tick(t);
        assert!(calls(&out).is_empty(), "at {}: {:?}", iso(t), calls(&out));
        let k = (((t - started) / STEP) as usize).min(2);
        let load = &problem(&out)["loads"][0];
        assert_eq!(load["kind"]["started"], json!(k), "{load}");
        let sched = &attrs(&out, "p_deferrable0").unwrap()["deferrables_schedule"];
        let want = ["2000.00", "300.00", "350.00"][k];
        assert_eq!(sched[0]["p_deferrable0"], want, "{sched}");
    }
    // Done: the relay goes off.
    let out = h.set_state("binary_sensor.washing_machine_ready", "off", Value::Null);
    assert_eq!(calls(&out), ["turn_off switch.washing_machine"]);
    assert!(h.plugin().memory().started.is_empty());
}

#[test]
fn a_deadline_change_replans_at_once() {
    // Cheapest at 15:00; done by 20:00 leaves it there.
    let mut h = loaded_machine(&prices(0.30, 0.10, 30..33), T0 + 20 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert!(calls(&out).is_empty());
    assert_eq!(
        attrs(&out, "p_deferrable0").unwrap()["start"],
        json!(iso(T0 + 30 * STEP))
    );
    // Needed in 90 min: the programme's length, so it starts now.
    h.set_now(T0 + 2 * MIN);
    let out = h.set_state(
        "sensor.washing_machine_deadline",
        &iso(T0 + 90 * MIN),
        Value::Null,
    );
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    assert_eq!(
        attrs(&out, "p_deferrable0").unwrap()["start"],
        json!(iso(T0))
    );
    // A change of an entity that is no trigger does not re-plan.
    let out = h.set_state("sensor.washing_machine_power", "1990", Value::Null);
    assert!(out.is_empty());
}

#[test]
fn missing_forecasts_fall_back_to_the_config_and_say_so_once() {
    let mut h = Harness::<TariffOptimizer>::new(config(vec![washing_machine(), ev()])).unwrap();
    h.set_state("binary_sensor.ev_plugged", "on", Value::Null);
    h.set_state("sensor.ev_battery", "35", Value::Null);
    h.set_state("sensor.ev_departure", &iso(T0 + 10 * HOUR), Value::Null);
    h.tick(T0);
    let out = h.tick(T0 + 5 * MIN);
    let st = attrs(&out, "optim_status").unwrap();
    assert_eq!(
        st["fallbacks"],
        json!(["price", "export-price", "pv-power", "base-load"])
    );
    let p = &st["problem"];
    let all = |key: &str, v: f64| {
        let s = p[key].as_array().unwrap();
        assert_eq!(s.len(), 48, "{key}");
        assert!(s.iter().all(|x| x.as_f64() == Some(v)), "{key}: {s:?}");
    };
    all("import_price", 0.25);
    all("export_price", 0.04);
    all("pv_w", 0.0);
    all("base_w", 400.0);
    // The EV: (80 − 34.5) % of 40 kWh / 0.9 (a reading of 35 may be
    // 34.5), by 10:00 (step 20).
    let ev = &p["loads"][0];
    assert_eq!(ev["id"], "ev");
    let want = 45.5 / 100.0 * 40_000.0 / 0.9;
    assert!(
        (ev["kind"]["energy_wh"].as_f64().unwrap() - want).abs() < 1e-6,
        "{ev}"
    );
    assert_eq!(ev["deadline"], 20);
    assert_eq!(
        warned(&h, "`price` is missing: using import_price 0.25 €/kWh"),
        1
    );
    assert_eq!(
        warned(&h, "`export-price` is missing: using export_price 0.04"),
        1
    );
    assert_eq!(warned(&h, "`pv-power` is missing: using 0 W (no PV)"), 1);
    assert_eq!(
        warned(&h, "`base-load` is missing: using base_load_w 400 W"),
        1
    );

    // Half a day of prices: the last sample holds on (a step series), so
    // it covers the horizon, and the series is back.
    h.set_forecast("price", series(&[0.2; 24]));
    let out = h.tick(T0 + 10 * MIN);
    let price = attrs(&out, "optim_status").unwrap()["problem"]["import_price"].clone();
    assert_eq!(
        (price[23].as_f64(), price[47].as_f64()),
        (Some(0.2), Some(0.2))
    );
    assert_eq!(warned(&h, "forecast `price` is back"), 1);
    // A gap (NaN) is on the fallback, said once.
    h.set_forecast("price", series(&[0.2, f64::NAN, 0.2]));
    for t in [15, 20] {
        let out = h.tick(T0 + t * MIN);
        let price = attrs(&out, "optim_status").unwrap()["problem"]["import_price"].clone();
        assert_eq!(
            (price[0].as_f64(), price[1].as_f64()),
            (Some(0.2), Some(0.25))
        );
    }
    assert_eq!(warned(&h, "`price` is incomplete over the horizon"), 1);
    assert_eq!(warned(&h, "`price` is missing"), 1);
}

#[test]
fn a_started_machine_survives_a_restart() {
    // Cheap now: it starts at once.
    let mut h = loaded_machine(&prices(0.30, 0.10, 0..3), T0 + 12 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    let saved = h.save();

    // A new instance (fresh host) an hour later, with dear prices now.
    let mut h = Harness::<TariffOptimizer>::new(config(vec![washing_machine()])).unwrap();
    h.restore(&saved).unwrap();
    h.set_forecast("price", series(&prices(1.0, 0.10, 20..23)));
    h.set_state("switch.washing_machine", "on", Value::Null);
    h.set_state("sensor.washing_machine_power", "300", Value::Null);
    h.set_state(
        "sensor.washing_machine_deadline",
        &iso(T0 + 12 * HOUR),
        Value::Null,
    );
    h.set_now(T0 + 2 * STEP + MIN);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
    // Two steps of its programme are done: one is left.
    assert_eq!(problem(&out)["loads"][0]["kind"]["started"], 2);
    assert_eq!(
        attrs(&out, "p_deferrable0").unwrap()["deferrables_schedule"][0]["p_deferrable0"],
        "350.00"
    );
}

#[test]
fn a_refused_start_is_not_a_start() {
    let mut h = loaded_machine(&prices(0.30, 0.10, 0..3), T0 + 12 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    h.refuse(&out.calls()[0], "device unavailable");
    let out = h.tick(T0 + 5 * MIN);
    assert!(h.plugin().memory().started.contains_key("washing_machine"));
    // Sent again after the refusal, and the start is counted from then.
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    assert_eq!(h.plugin().memory().started["washing_machine"], T0 + 5 * MIN);
}

/// As the live runner reports it: the refused call is stamped with the
/// time its plugin call began, a little before the `now` the plugin
/// recorded its start at.
#[test]
fn a_refused_start_stamped_before_the_plugins_now_is_not_a_start() {
    let mut h = loaded_machine(&prices(0.30, 0.10, 0..3), T0 + 12 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    assert_eq!(h.plugin().memory().started["washing_machine"], T0);
    h.refuse_emitted_at(&out.calls()[0], "device unavailable", T0 - 250);
    let out = h.tick(T0 + 5 * MIN);
    // Sent again after the refusal, and the start is counted from then.
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    assert_eq!(h.plugin().memory().started["washing_machine"], T0 + 5 * MIN);
    // A refused re-assert long after a start (the relay read off mid-run)
    // leaves the start where it was: its steps are run.
    h.accept(&out.calls()[0]);
    h.set_state("switch.washing_machine", "on", Value::Null);
    h.set_state("sensor.washing_machine_power", "2000", Value::Null);
    h.tick(T0 + 10 * MIN);
    h.set_state("switch.washing_machine", "off", Value::Null);
    let mut t = T0 + 10 * MIN;
    let out = loop {
        t += 5 * MIN;
        assert!(t < T0 + 2 * HOUR, "never re-asserted");
        let out = h.tick(t);
        if !out.calls().is_empty() {
            break out;
        }
    };
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    h.refuse_emitted_at(&out.calls()[0], "device unavailable", t - 250);
    h.tick(t + 5 * MIN);
    assert_eq!(h.plugin().memory().started["washing_machine"], T0 + 5 * MIN);
}

/// `ready` stays on after the programme (an input_boolean nobody resets):
/// once its time is over and it draws ~0 W, the machine is done: its
/// relay goes off, it leaves the plan and is not run again.
#[test]
fn a_machine_past_its_programme_and_idle_is_done_though_ready_stays_on() {
    // Cheap now: it starts at once; 3 steps of 30 min (2000, 300, 350 W).
    let mut h = loaded_machine(&prices(0.30, 0.10, 0..3), T0 + 12 * HOUR);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert_eq!(calls(&out), ["turn_on switch.washing_machine"]);
    h.set_state("switch.washing_machine", "on", Value::Null);
    h.set_state("sensor.washing_machine_power", "2000", Value::Null);
    // Its time is over but it still draws 300 W (a longer cycle than
    // recorded): kept on, its last step's power planned.
    let end = T0 + 3 * STEP;
    h.set_state("sensor.washing_machine_power", "300", Value::Null);
    let out = h.tick(end + 5 * MIN);
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
    assert_eq!(problem(&out)["loads"][0]["kind"]["started"], 2);
    // Idle now: done, the relay goes off, nothing is planned.
    h.set_state("sensor.washing_machine_power", "1.5", Value::Null);
    let out = h.tick(end + 10 * MIN);
    assert_eq!(calls(&out), ["turn_off switch.washing_machine"]);
    h.set_state("switch.washing_machine", "off", Value::Null);
    assert!(h.plugin().memory().started.is_empty());
    assert_eq!(problem(&out)["loads"], json!([]));
    // Not run again while `ready` stays on, even when it is cheap again,
    // and a relay switched on by hand is left so.
    let mut cheap = prices(0.30, 0.30, 0..0);
    for p in &mut cheap[4..8] {
        *p = 0.01;
    }
    h.set_forecast("price", series(&cheap));
    let mut t = end + 10 * MIN;
    while t < T0 + 5 * HOUR {
        t += 5 * MIN;
        if t == T0 + 4 * HOUR {
            h.set_state("switch.washing_machine", "on", Value::Null);
        }
        let out = h.tick(t);
        assert!(calls(&out).is_empty(), "at {}: {:?}", iso(t), calls(&out));
    }
    // A new load (ready off, then on) is planned again.
    h.set_state("switch.washing_machine", "off", Value::Null);
    h.set_state("binary_sensor.washing_machine_ready", "off", Value::Null);
    let out = h.set_state("binary_sensor.washing_machine_ready", "on", Value::Null);
    assert_eq!(problem(&out)["loads"][0]["id"], "washing_machine");
    // It survives a restart.
    let saved = h.save();
    let mut h2 = Harness::<TariffOptimizer>::new(config(vec![washing_machine()])).unwrap();
    h2.restore(&saved).unwrap();
    assert_eq!(h2.plugin().memory(), h.plugin().memory());
}

#[test]
fn describe_declares_the_emhass_entities() {
    let h = Harness::<TariffOptimizer>::new(config(vec![water_heater(), washing_machine(), ev()]))
        .unwrap();
    let d = h.describe();
    let ids: Vec<&str> = d.entities.iter().map(|e| e.object_id.as_str()).collect();
    for want in [
        "p_deferrable0",
        "temp_predicted0",
        "p_deferrable1",
        "p_deferrable2",
        "p_pv_forecast",
        "p_load_forecast",
        "p_grid_forecast",
        "total_cost_fun_value",
        "optim_status",
    ] {
        assert!(ids.contains(&want), "{want} not in {ids:?}");
    }
    assert!(!ids.contains(&"temp_predicted1"));
    assert_eq!(
        d.drives,
        ["switch.water_heater", "switch.washing_machine", "switch.ev"]
    );
    assert!(d.reads.iter().any(|r| r == "sensor.ev_departure"));
    assert_eq!(d.tick_period_ms, 300_000);
}

#[test]
fn the_house_is_planned_in_the_cheap_hours_at_local_times() {
    // Local time is UTC+1: HC 22:00-06:00 local = steps 0-9 (T0 is 01:00
    // local).
    let mut c = config(vec![water_heater(), washing_machine(), ev()]);
    c["utc_offset_min"] = json!(60);
    // 12 h keeps the debug-build solves short.
    c["horizon_h"] = json!(12);
    let p: Vec<f64> = (0..96)
        .map(|k| {
            if k % 48 < 10 || k % 48 >= 42 {
                0.15
            } else {
                0.25
            }
        })
        .collect();
    let mut h = Harness::<TariffOptimizer>::new(c).unwrap();
    h.set_forecast("price", series(&p));
    let mut relay = BTreeMap::new();
    for s in ["switch.water_heater", "switch.washing_machine", "switch.ev"] {
        h.set_state(s, "off", Value::Null);
    }
    for (e, v) in [
        ("sensor.water_heater_temperature", "45".to_string()),
        ("sensor.washing_machine_deadline", iso(T0 + 7 * HOUR)),
        ("binary_sensor.washing_machine_ready", "on".into()),
        ("sensor.ev_battery", "35".into()),
        ("sensor.ev_departure", iso(T0 + 7 * HOUR)),
        ("binary_sensor.ev_plugged", "on".into()),
    ] {
        let out = h.set_state(e, &v, Value::Null);
        follow(&mut h, &out, &mut relay);
    }
    let out = h.tick(T0);
    follow(&mut h, &out, &mut relay);
    let st = attrs(&out, "optim_status").unwrap();
    let status = state(&out, "optim_status").unwrap();
    assert!(status == "Optimal" || status == "Feasible", "{status} {st}");
    assert_eq!(st["violations"], json!([]), "{st}");
    // 06:30 local is 05:30Z: step 11; the draw at 07:00 local, step 12
    // (19:30 and 20:00 are past the 12 h horizon).
    let heater = &st["problem"]["loads"][0]["kind"];
    assert_eq!(heater["ready"], json!([[11, 50.0]]), "{heater}");
    assert_eq!(heater["draw_wh"][12], 3500.0);
    assert_eq!(heater["draw_wh"].as_array().unwrap().len(), 24);
    assert_eq!(heater["capacity_wh_per_k"], 200.0 * 1.163);

    let sched = |n: usize| -> Vec<f64> {
        let a = attrs(&out, &format!("p_deferrable{n}")).unwrap();
        a["deferrables_schedule"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e[format!("p_deferrable{n}")]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect()
    };
    let (heat, machine, car) = (sched(0), sched(1), sched(2));
    // The EV's 20 kWh (45 % of 40 kWh / 0.9), on/off at 3.7 kW (1850 Wh a
    // step): 11 steps, the 10 of the night's HC and one more before 07:00Z.
    let ev_wh: f64 = car.iter().map(|w| w * 0.5).sum();
    assert_eq!(ev_wh, 11.0 * 1850.0, "{car:?}");
    assert!(car[..10].iter().all(|w| *w == 3700.0), "{car:?}");
    assert!(car[14..].iter().all(|w| *w == 0.0), "{car:?}");
    // The machine runs its 3 steps in HC, done by 07:00Z.
    let on: Vec<usize> = (0..24).filter(|&k| machine[k] > 0.0).collect();
    assert!(on.len() == 3 && on[2] < 10, "{on:?}");
    // The tank is predicted warm enough at 06:30 local.
    let temps = attrs(&out, "temp_predicted0").unwrap()["predicted_temperatures"].clone();
    let t11: f64 = temps[11]["temp_predicted0"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t11 >= 50.0 - 1e-3, "{t11}");
    // Heating before 06:30 happens in HC only.
    assert!(heat[10..11].iter().all(|w| *w == 0.0), "{heat:?}");
    // The relays follow step 0 of the plan.
    for (n, sw) in ["switch.water_heater", "switch.washing_machine", "switch.ev"]
        .iter()
        .enumerate()
    {
        let on_now = sched(n)[0] > 0.0;
        assert_eq!(on_now, relay.get(*sw) == Some(&true), "{sw}: {relay:?}");
    }
    // The objective published is the plan's.
    let cost: f64 = state(&out, "total_cost_fun_value")
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0, "{cost}");
}

#[test]
fn an_ev_reading_its_target_may_be_below_it() {
    let mut h = Harness::<TariffOptimizer>::new(config(vec![ev()])).unwrap();
    h.set_forecast("price", series(&prices(0.30, 0.10, 0..1)));
    h.set_state("binary_sensor.ev_plugged", "on", Value::Null);
    h.set_state("sensor.ev_departure", &iso(T0 + 10 * HOUR), Value::Null);
    // "80.0" may be 79.95: 0.05 % of 40 kWh / 0.9 = 22.2 Wh still to go.
    h.set_state("sensor.ev_battery", "80.0", Value::Null);
    let out = h.tick(T0);
    let ev = &problem(&out)["loads"][0];
    let wh = ev["kind"]["energy_wh"].as_f64().unwrap();
    assert!((wh - 0.05 / 100.0 * 40_000.0 / 0.9).abs() < 1e-6, "{ev}");
    assert_eq!(calls(&out), ["turn_on switch.ev"]);
    h.set_state("switch.ev", "on", Value::Null);
    // "80.1" is at least 80.05: done.
    h.set_state("sensor.ev_battery", "80.1", Value::Null);
    let out = h.tick(T0 + 5 * MIN);
    assert_eq!(problem(&out)["loads"], json!([]));
    assert_eq!(calls(&out), ["turn_off switch.ev"]);
}

#[test]
fn a_draw_already_past_in_this_step_is_not_counted_again() {
    let mut heater = water_heater();
    heater["draws"] = json!([{"at": "00:10", "wh": 1000}]);
    let mut h = Harness::<TariffOptimizer>::new(config(vec![heater])).unwrap();
    h.set_state("sensor.water_heater_temperature", "55", Value::Null);
    let draws =
        |out: &hearth_plugin_sdk::Output| problem(out)["loads"][0]["kind"]["draw_wh"].clone();
    let out = h.tick(T0 + 5 * MIN);
    assert_eq!(
        (draws(&out)[0].as_f64(), draws(&out)[47].as_f64()),
        (Some(1000.0), Some(0.0))
    );
    // At 00:15 today's draw is in the reading; tomorrow's is past the horizon.
    let out = h.tick(T0 + 15 * MIN);
    assert_eq!(draws(&out)[0], 0.0);
    // At 00:35 step 0 is 00:30: tomorrow's 00:10 is step 47.
    let out = h.tick(T0 + 35 * MIN);
    assert_eq!(draws(&out)[47], 1000.0);
}

#[test]
fn a_tank_planned_for_a_share_of_this_step_is_heated_unless_it_is_noise() {
    // Ready 50 °C at 00:30 only, step 0 dear (so it heats no more than it
    // must), no draws, no loss.
    let mut heater = water_heater();
    heater["ready"] = json!([{"at": "00:30", "min_c": 50}]);
    heater["draws"] = json!([]);
    heater["loss_w_per_k"] = json!(0);
    let run = |temp: &str| {
        let mut h = Harness::<TariffOptimizer>::new(config(vec![heater.clone()])).unwrap();
        let mut p = prices(0.20, 0.10, 2..96);
        p[0] = 0.50;
        h.set_forecast("price", series(&p));
        h.set_state("switch.water_heater", "off", Value::Null);
        h.set_state("sensor.water_heater_temperature", temp, Value::Null);
        let out = h.tick(T0);
        let w: f64 = state(&out, "p_deferrable0").unwrap().parse().unwrap();
        (w, calls(&out))
    };
    // 49.9 °C: 23 Wh to 50 °C, ~2 % of the step (35 s): on (rounded up to
    // the next re-plan).
    let (w, c) = run("49.9");
    assert!(w > 0.015 * 2400.0 && w < 0.03 * 2400.0, "{w}");
    assert_eq!(c, ["turn_on switch.water_heater"]);
    // 49.99 °C: 2.3 Wh, 0.2 % of the step: noise, off.
    let (w, c) = run("49.99");
    assert!(w > 0.0 && w < 0.005 * 2400.0, "{w}");
    assert!(c.is_empty(), "{c:?}");
}
