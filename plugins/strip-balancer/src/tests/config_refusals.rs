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

#[test]
fn colliding_entity_object_ids_are_refused_naming_both() {
    // `switch.a_1` and `light.a_1` would both publish `allowed_a_1`.
    let mut c = coworking();
    c["outlets"][1]["switch"] = json!("switch.a_1");
    c["outlets"][2]["switch"] = json!("light.a_1");
    refused::<StripBalancer>(c, &["`switch.a_1`", "`light.a_1`", "allowed_a_1"]);
    // Strips `a-b` and `a_b` would both publish `headroom_a_b`.
    let mut c = coworking();
    c["strips"][0]["id"] = json!("a-b");
    c["strips"][1]["id"] = json!("a_b");
    for o in c["outlets"].as_array_mut().unwrap() {
        let s = if o["strip"] == "a" { "a-b" } else { "a_b" };
        o["strip"] = json!(s);
    }
    refused::<StripBalancer>(c, &["`a-b`", "`a_b`", "headroom_a_b"]);
}

#[test]
fn more_entities_than_the_host_accepts_are_refused_not_truncated() {
    // 30 strips on one circuit: 30 allowed + 31 headroom + … > 64 once
    // per-strip; with 40 strips, 40 + 41 = 81.
    let mut c = coworking();
    let strips: Vec<_> = (0..40)
        .map(|k| json!({"id": format!("s{k}"), "circuit": "wall", "max_current_a": 10}))
        .collect();
    let outlets: Vec<_> = (0..40)
        .map(|k| {
            json!({"switch": format!("switch.o{k}"), "strip": format!("s{k}"),
            "current": format!("sensor.o{k}_current")})
        })
        .collect();
    c["strips"] = json!(strips);
    c["outlets"] = json!(outlets);
    c["users"] = json!([]);
    refused::<StripBalancer>(c, &["1 circuits and 40 strips", "81 entities", "64"]);
}

#[test]
fn every_declared_entity_is_published_and_nothing_else() {
    use crate::tests::World;
    use hearth_plugin_sdk::Controller;
    let p = StripBalancer::init(coworking()).unwrap();
    let declared: Vec<String> = p
        .describe()
        .entities
        .into_iter()
        .map(|d| d.object_id)
        .collect();
    let mut w = World::<crate::allocation::Balancer>::new(coworking());
    let out = w.tick();
    let mut published: Vec<String> = out.entities().iter().map(|e| e.object_id.clone()).collect();
    published.sort();
    let mut d = declared.clone();
    d.sort();
    assert_eq!(published, d);
}

#[test]
fn a_fixed_user_and_a_user_entity_on_one_outlet_are_refused() {
    let mut c = coworking();
    c["outlets"][1]["user_entity"] = json!("select.seat_a2");
    refused::<StripBalancer>(
        c,
        &[
            "outlet `switch.a2`",
            "`user`",
            "`user_entity`",
            "select.seat_a2",
        ],
    );
    let mut c = coworking();
    c["resume_margin_pct"] = json!(100);
    refused::<StripBalancer>(c, &["resume_margin_pct", "[0, 100)"]);
}
