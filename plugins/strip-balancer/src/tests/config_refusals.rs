//! Bad configs are refused with a message naming what is wrong.

use super::{coworking, refused};
use crate::StripBalancer;
use hearth_plugin_sdk::serde_json::json;

#[test]
fn a_circuit_tree_with_a_loop_is_refused_naming_the_loop() {
    let mut c = coworking();
    c["circuits"] = json!([
        {"id": "wall", "max_current_a": 16},
        {"id": "c1", "max_current_a": 10, "parent": "c2"},
        {"id": "c2", "max_current_a": 10, "parent": "c1"}
    ]);
    refused::<StripBalancer>(c, &["loop", "c1 → c2 → c1"]);
}

#[test]
fn an_unknown_parent_circuit_is_refused() {
    let mut c = coworking();
    c["circuits"] = json!([{"id": "wall", "max_current_a": 16, "parent": "mains"}]);
    refused::<StripBalancer>(c, &["circuit `wall`", "unknown parent `mains`"]);
}

#[test]
fn an_outlet_in_two_strips_is_refused() {
    let mut c = coworking();
    let mut dup = c["outlets"][2].clone();
    dup["strip"] = json!("b");
    c["outlets"].as_array_mut().unwrap().push(dup);
    refused::<StripBalancer>(c, &["outlet `switch.a3`", "listed twice", "`a`", "`b`"]);
}

#[test]
fn an_unknown_strip_or_user_is_refused() {
    let mut c = coworking();
    c["outlets"][1]["strip"] = json!("z");
    refused::<StripBalancer>(c, &["outlet `switch.a2`", "unknown strip `z`"]);
    let mut c = coworking();
    c["outlets"][1]["user"] = json!("nobody");
    refused::<StripBalancer>(c, &["outlet `switch.a2`", "unknown user `nobody`"]);
}

#[test]
fn non_positive_limits_are_refused() {
    let mut c = coworking();
    c["strips"][1]["max_current_a"] = json!(0);
    refused::<StripBalancer>(c, &["strip `b` max_current_a", "positive"]);
    let mut c = coworking();
    c["circuits"][0]["max_current_a"] = json!(-3);
    refused::<StripBalancer>(c, &["circuit `wall` max_current_a", "positive"]);
}

#[test]
fn an_unknown_key_is_refused_by_name() {
    let mut c = coworking();
    c["min_on"] = json!(3);
    refused::<StripBalancer>(c, &["min_on"]);
}

#[test]
fn the_coworking_config_is_accepted_and_described() {
    use hearth_plugin_sdk::Controller;
    let p = StripBalancer::init(coworking()).unwrap();
    let d = p.describe();
    assert_eq!(d.name, "strip-balancer");
    assert_eq!(d.tick_period_ms, 1000);
    assert_eq!(d.drives.len(), 8);
    assert!(d.reads.contains(&"sensor.u5_battery".to_string()));
    // 8 allowed + 3 headroom.
    assert_eq!(d.entities.len(), 11);
    let schema: hearth_plugin_sdk::serde_json::Value =
        hearth_plugin_sdk::serde_json::from_str(&d.config_schema).unwrap();
    assert_eq!(schema["required"], json!(["circuits", "strips", "outlets"]));
}
