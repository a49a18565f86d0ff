//! The config: the contract's house parses for all three plugins; a bad
//! config is refused with the key and what was expected.

mod common;

use common::*;
use hearth_plugin_sdk::Controller;
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_tariff_optimizer::config::{Config, LoadConfig};
use hearth_tariff_optimizer::{FixedTimes, OffPeakRule, TariffOptimizer};

fn house() -> Value {
    let mut dishwasher = washing_machine();
    dishwasher["id"] = json!("dishwasher");
    dishwasher["switch"] = json!("switch.dishwasher");
    dishwasher["power"] = json!("sensor.dishwasher_power");
    dishwasher["ready"] = json!("binary_sensor.dishwasher_ready");
    dishwasher["deadline"] = json!("sensor.dishwasher_deadline");
    dishwasher["fixed_start"] = json!("21:00");
    let mut c = config(vec![water_heater(), washing_machine(), dishwasher, ev()]);
    c["utc_offset_min"] = json!(120);
    c["export_limit_w"] = Value::Null;
    c
}

/// The error of each of the three plugins for `config` (all the same).
fn refused(config: Value) -> String {
    let e = TariffOptimizer::init(config.clone())
        .err()
        .expect("refused");
    assert_eq!(FixedTimes::init(config.clone()).err().as_ref(), Some(&e));
    assert_eq!(OffPeakRule::init(config).err().as_ref(), Some(&e));
    e
}

#[test]
fn the_contract_house_parses_for_all_three_plugins() {
    let c = Config::parse(house()).unwrap();
    assert_eq!(c.steps(), 48);
    assert_eq!(c.loads.len(), 4);
    let LoadConfig::Thermal(t) = &c.loads[0] else {
        panic!("thermal first")
    };
    assert_eq!(t.ready[0].at.0, 6 * 60 + 30);
    assert!(TariffOptimizer::init(house()).is_ok());
    assert!(FixedTimes::init(house()).is_ok());
    assert!(OffPeakRule::init(house()).is_ok());
    // Defaults: only the loads are needed.
    let c = Config::parse(json!({"loads": [ev()]})).unwrap();
    assert_eq!(
        (
            c.step_s,
            c.steps(),
            c.replan_s,
            c.node_limit,
            c.utc_offset_min
        ),
        (1800, 48, 300, 20_000, 0)
    );
    assert_eq!(
        (
            c.import_price,
            c.export_price,
            c.base_load_w,
            c.import_limit_w
        ),
        (0.25, 0.04, 400.0, 9000.0)
    );
}

#[test]
fn a_bad_config_names_the_key_and_what_was_expected() {
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = house();
        f(&mut c);
        refused(c)
    };
    let cases: Vec<(String, &str)> = vec![
        (
            with(&|c| c["stepp_s"] = json!(900)),
            "config: `stepp_s`: unknown field `stepp_s`",
        ),
        (
            with(&|c| {
                c["loads"][0].as_object_mut().unwrap().remove("kind");
            }),
            "config: `loads[0].kind`: expected `thermal`, `sequence`, `battery` or `deferrable`, got nothing",
        ),
        (
            with(&|c| {
                c["loads"][1].as_object_mut().unwrap().remove("ready");
            }),
            "config: `loads[1]`: missing field `ready`",
        ),
        (
            with(&|c| c["step_s"] = json!(1000)),
            "config: `step_s`: expected a divisor of a day",
        ),
        (
            with(&|c| c["horizon_h"] = json!(24.2)),
            "config: `horizon_h`: expected a whole number of steps of 1800 s",
        ),
        (
            with(&|c| c["objective"] = json!("money")),
            "unknown variant `money`",
        ),
        (
            with(&|c| c["loads"][0]["nominal_w"] = json!(-1)),
            "config: `loads[0].nominal_w`: expected a number > 0 W, got -1",
        ),
        (
            with(&|c| c["loads"][0]["ready"][1]["at"] = json!("7h30")),
            "config: `loads[0].ready[1].at`: expected a local time \"HH:MM\" (00:00 to 24:00), got \"7h30\"",
        ),
        (
            with(&|c| c["loads"][0]["ready"][0]["min_c"] = json!(70)),
            "config: `loads[0].ready[0].min_c`: expected at most max_c (65 °C), got 70",
        ),
        (
            with(&|c| c["loads"][3]["efficiency"] = json!(1.5)),
            "config: `loads[3].efficiency`: expected a fraction in (0, 1], got 1.5",
        ),
        (
            with(&|c| c["loads"][2]["id"] = json!("washing_machine")),
            "config: `loads[2].id`: load id \"washing_machine\" is used twice",
        ),
        (
            with(&|c| c["loads"][1]["ready"] = json!("washing_machine_ready")),
            "config: `loads[1].ready`: expected an entity id `domain.object_id`, got \"washing_machine_ready\"",
        ),
        (
            with(&|c| c["loads"][1]["profile_w"] = json!([])),
            "config: `loads[1].profile_w`: expected a non-empty list of powers >= 0 W",
        ),
        (
            with(&|c| c["loads"][1]["kind"] = json!("boiler")),
            "config: `loads[1].kind`: expected `thermal`, `sequence`, `battery` or `deferrable`, got \"boiler\"",
        ),
        (
            with(&|c| c["loads"][3]["colour"] = json!("red")),
            "config: `loads[3].colour`: unknown field `colour`",
        ),
        (
            with(&|c| {
                c["loads"][0] = json!({"id": "pump", "kind": "deferrable", "switch": "switch.pump",
                    "nominal_w": 1000, "hours": 2, "energy_wh": 2000});
            }),
            "config: `loads[0].energy_wh`: expected one of `energy_wh` and `hours`",
        ),
        (
            with(&|c| {
                c["loads"][0] = json!({"id": "pump", "kind": "deferrable", "switch": "switch.pump",
                    "nominal_w": 1000, "hours": 3, "from": "22:00", "to": "00:00"});
            }),
            "config: `loads[0].energy_wh`: 3000 Wh does not fit its window (120 min at 1000 W: 2000 Wh)",
        ),
        (
            with(&|c| c["loads"] = json!([])),
            "config: `loads`: expected at least one load",
        ),
        (
            with(&|c| c["utc_offset_min"] = json!(2000)),
            "config: `utc_offset_min`: expected minutes east of UTC in -720..=840, got 2000",
        ),
    ];
    for (got, want) in cases {
        assert!(got.contains(want), "{got:?} should contain {want:?}");
        assert!(got.starts_with("config: "), "{got}");
    }
}

#[test]
fn a_horizon_of_too_many_steps_is_refused() {
    // 168 h of 60 s steps: 10 080 steps, a model no tick can solve.
    let mut c = house();
    c["step_s"] = json!(60);
    c["horizon_h"] = json!(168);
    let e = refused(c);
    assert!(
        e.contains("`horizon_h`") && e.contains("10080") && e.contains("400"),
        "{e}"
    );
    // 400 steps is the most: 100 h of 900 s steps.
    let mut c = house();
    c["step_s"] = json!(900);
    c["horizon_h"] = json!(100);
    TariffOptimizer::init(c.clone()).unwrap();
    c["horizon_h"] = json!(100.25);
    let e = refused(c);
    assert!(e.contains("401"), "{e}");
}
