//! The renderer against HA's documented results (HA docs "Templating",
//! and `tests/helpers/test_template.py` for the conversions' failures).

use super::*;
use crate::areas::{Area, DeviceAssign, Places};
use crate::entity::{Context, State};
use serde_json::json;

fn state(id: &str, value: &str, attrs: serde_json::Value) -> State {
    State {
        entity_id: id.into(),
        state: value.into(),
        attributes: attrs.as_object().cloned().unwrap_or_default(),
        last_changed: 1_765_134_000_000,
        last_updated: 1_765_134_000_000,
        context: Context::new(None),
    }
}

fn world() -> World {
    let mut states = BTreeMap::new();
    for s in [
        state(
            "sensor.server_room_temperature",
            "23.46",
            json!({"unit_of_measurement": "°C", "friendly_name": "Server room temperature"}),
        ),
        state("switch.strip_outlet_1", "on", json!({})),
        state("switch.strip_outlet_2", "off", json!({})),
        state("sensor.broken", "unavailable", json!({})),
    ] {
        states.insert(s.entity_id.clone(), s);
    }
    let mut places = Places::default();
    places.entities.insert(
        "switch.strip_outlet_1".into(),
        crate::areas::places::EntityFacts {
            device_id: "strip".into(),
            entity_category: None,
        },
    );
    places
        .devices
        .insert("strip".into(), crate::areas::places::DeviceFacts::default());
    places.regs.areas.insert(
        "coworking".into(),
        Area {
            area_id: "coworking".into(),
            name: "Coworking".into(),
            floor_id: None,
            icon: None,
            picture: None,
            aliases: vec![],
            labels: vec![],
            humidity_entity_id: None,
            temperature_entity_id: None,
            created_at: 0.0,
            modified_at: 0.0,
        },
    );
    places.regs.devices.insert(
        "strip".into(),
        DeviceAssign {
            area_id: Some("coworking".into()),
            ..Default::default()
        },
    );
    World {
        states: Arc::new(states),
        places: Arc::new(places),
        now_ms: 1_765_134_000_000,
        tz: TimeZone::UTC,
    }
}

fn ok(src: &str) -> String {
    let r = render(src, &Map::new(), &world(), false);
    r.result.unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn err(src: &str) -> String {
    match render(src, &Map::new(), &world(), false).result {
        Ok(v) => panic!("{src} rendered {v:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn states_and_attributes() {
    assert_eq!(
        ok("{{ states('sensor.server_room_temperature') }}"),
        "23.46"
    );
    assert_eq!(ok("{{ states('sensor.nothing') }}"), "unknown");
    assert_eq!(
        ok("{{ states.sensor.server_room_temperature.state }}"),
        "23.46"
    );
    assert_eq!(
        ok("{{ states.sensor.server_room_temperature.attributes.unit_of_measurement }}"),
        "°C"
    );
    assert_eq!(
        ok("{{ states.sensor.server_room_temperature.name }}"),
        "Server room temperature"
    );
    assert_eq!(
        ok("{{ state_attr('sensor.server_room_temperature', 'unit_of_measurement') }}"),
        "°C"
    );
    assert_eq!(ok("{{ is_state('switch.strip_outlet_1', 'on') }}"), "True");
    assert_eq!(
        ok("{{ is_state('switch.strip_outlet_1', ['off', 'on']) }}"),
        "True"
    );
    assert_eq!(
        ok("{{ is_state_attr('sensor.server_room_temperature', 'unit_of_measurement', '°C') }}"),
        "True"
    );
    assert_eq!(ok("{{ has_value('sensor.broken') }}"), "False");
    assert_eq!(ok("{{ states.switch | count }}"), "2");
    assert_eq!(
        ok(
            "{{ states.switch | selectattr('state', 'eq', 'on') | map(attribute='entity_id') | join(',') }}"
        ),
        "switch.strip_outlet_1"
    );
    assert_eq!(
        ok("{{ states.sensor.server_room_temperature.last_changed }}"),
        "2025-12-07 19:00:00+00:00"
    );
    assert_eq!(
        ok("{{ states('sensor.server_room_temperature', with_unit=True) }}"),
        "23.46 °C"
    );
}

#[test]
fn conversions_have_has_defaults_or_errors() {
    assert_eq!(
        ok("{{ states('sensor.server_room_temperature') | float + 1 }}"),
        "24.46"
    );
    assert_eq!(
        ok("{{ states('sensor.server_room_temperature') | float | round(1) }}"),
        "23.5"
    );
    assert_eq!(ok("{{ 2.5 | round }}"), "2");
    assert_eq!(ok("{{ '42.7' | int }}"), "42");
    assert_eq!(ok("{{ 'abc' | int(0) }}"), "0");
    assert_eq!(ok("{{ 'abc' | float(-1) }}"), "-1");
    assert_eq!(ok("{{ float('x', 5) }}"), "5");
    let e = err("{{ states('sensor.broken') | float }}");
    assert!(
        e.starts_with("ValueError: Template error: float got invalid input 'unavailable'"),
        "{e}"
    );
    assert!(err("{{ 'x' | int }}").contains("int got invalid input 'x'"));
    assert_eq!(ok("{{ 1765134000 | timestamp_custom('%H:%M') }}"), "19:00");
    assert_eq!(
        ok("{{ 1765134000 | timestamp_local }}"),
        "2025-12-07T19:00:00+00:00"
    );
    assert_eq!(
        ok("{{ as_timestamp('2025-12-07T20:00:00+01:00') }}"),
        "1765134000.0"
    );
    assert_eq!(ok("{{ 'on' | bool }}"), "True");
    assert_eq!(ok("{{ [1, 2, 6] | average }}"), "3.0");
    assert_eq!(ok("{{ average(1, 2) }}"), "1.5");
    assert_eq!(ok("{{ average([], 0) }}"), "0");
    assert!(err("{{ average(['a']) }}").contains("average got invalid input"));
    assert_eq!(
        ok("{{ iif(is_state('switch.strip_outlet_2', 'on'), 'yes', 'no') }}"),
        "no"
    );
}

#[test]
fn time_functions_are_listened_to() {
    let r = render("{{ now().year }}", &Map::new(), &world(), false);
    assert_eq!(r.result.unwrap(), "2025");
    assert!(r.listeners.time);
    assert_eq!(ok("{{ as_timestamp(now()) }}"), "1765134000.0");
    assert_eq!(
        ok("{{ utcnow().isoformat() }}"),
        "2025-12-07T19:00:00+00:00"
    );
    assert_eq!(ok("{{ now() > as_datetime('2025-01-01') }}"), "True");
    assert_eq!(ok("{{ today_at('18:30') }}"), "2025-12-07 18:30:00+00:00");
    assert_eq!(ok("{{ now() > today_at('18:30') }}"), "True");
    assert_eq!(ok("{{ now() < today_at() }}"), "False");
    assert!(err("{{ today_at('late') }}").contains("could not convert str to datetime"));
    assert_eq!(ok("{{ utcnow() | as_local }}"), "2025-12-07 19:00:00+00:00");
}

#[test]
fn listeners_record_what_was_read() {
    let r = render(
        "{{ states('sensor.server_room_temperature') }} {{ states.switch | list | count }}",
        &Map::new(),
        &world(),
        false,
    );
    assert_eq!(
        r.listeners.json(),
        json!({"all": false, "entities": ["sensor.server_room_temperature"], "domains": ["switch"], "time": false})
    );
    let r = render("{{ states | count }}", &Map::new(), &world(), false);
    assert_eq!(r.result.unwrap(), "4");
    assert!(r.listeners.all);
    let r = render("static", &Map::new(), &world(), false);
    assert_eq!(r.listeners, Listeners::default());
}

#[test]
fn undefined_is_empty_unless_strict() {
    assert_eq!(ok("[{{ nothing }}]"), "[]");
    let r = render("{{ nothing }}", &Map::new(), &world(), true);
    let e = r.result.unwrap_err();
    assert!(e.0.starts_with("UndefinedError"), "{e}");
    assert!(r.listeners.all, "a failed render listens to all (HA)");
    let e = err("{{ 1 + }}");
    assert!(e.starts_with("TemplateSyntaxError"), "{e}");
    let vars = json!({"name": "Ada"});
    let r = render("hi {{ name }}", vars.as_object().unwrap(), &world(), true);
    assert_eq!(r.result.unwrap(), "hi Ada");
}

#[test]
fn area_functions() {
    assert_eq!(
        ok("{{ area_entities('coworking') }}"),
        "['switch.strip_outlet_1']"
    );
    assert_eq!(ok("{{ area_entities('Coworking') | count }}"), "1");
    assert_eq!(ok("{{ area_name('switch.strip_outlet_1') }}"), "Coworking");
    assert_eq!(ok("{{ area_id('switch.strip_outlet_1') }}"), "coworking");
    assert_eq!(ok("{{ area_devices('coworking') | join }}"), "strip");
    assert_eq!(ok("{{ device_id('switch.strip_outlet_1') }}"), "strip");
    assert_eq!(ok("{{ area_name('nowhere') }}"), "None");
    assert_eq!(ok("{{ [1.0, 'a', None, True] }}"), "[1.0, 'a', None, True]");
    assert_eq!(ok("{{ {'k': 2} }}"), "{'k': 2}");
}

/// `namespace()` in a loop nests a list 100 000 deep: printing it used to
/// recurse once per level (a stack overflow that aborts the bridge), and so
/// does dropping it, now on the render thread's large stack.
#[test]
fn deep_values_are_an_error_not_a_crash() {
    let nest = "{% set ns = namespace(x=0) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}";
    let e = err(&format!("{nest}{{{{ ns.x }}}}"));
    assert_eq!(e, REPR_TOO_DEEP);
    assert_eq!(ok(&format!("{nest}dropped")), "dropped");
    // In a message (a conversion's failure) it is cut, not walked.
    let e = err(&format!("{nest}{{{{ ns.x | float }}}}"));
    assert!(
        e.starts_with("ValueError: Template error: float got invalid input '[[[["),
        "{e}"
    );
    assert!(e.contains("[...]"), "{e}");
    // As deep as the fuel allows: the render stops for fuel and the value
    // is dropped without overflowing the render thread's stack.
    let e = err(
        "{% set ns = namespace(x=0) %}{% for i in range(100000) %}{% for j in range(100) %}{% set ns.x = {'a': [ns.x]} %}{% endfor %}{% endfor %}",
    );
    assert!(e.contains("fuel"), "{e}");
    // Within the depth cap a nested value prints as Python's.
    assert_eq!(ok("{{ [[[1, {'a': [2]}]]] }}"), "[[[1, {'a': [2]}]]]");
}

/// `[0] * 100000000` is a lazy sequence of 10^8 items that printing used
/// to walk whole (about 2.4 GB of item texts) before the output check.
#[test]
fn huge_values_stop_at_the_output_limit() {
    let started = std::time::Instant::now();
    for src in [
        "{{ [0] * 100000000 }}",
        "{{ {'a': [0] * 100000000} }}",
        "{% for i in range(100) %}{{ [i] * 100000 }}{% endfor %}",
    ] {
        assert_eq!(err(src), OUTPUT_TOO_LONG, "{src}");
    }
    let e = err("{{ average([0] * 100000000) }}");
    assert!(e.contains("more than 100000 values"), "{e}");
    assert_eq!(
        ok("{{ is_state('switch.strip_outlet_1', ['off'] * 100000000) }}"),
        "False"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // A repr stops as soon as it is longer than its limit.
    let big = minijinja::Value::from((0..1000).collect::<Vec<i32>>());
    let mut out = String::new();
    assert_eq!(
        functions::repr(&mut out, &big, true, 0, 50),
        Err(functions::ReprLimit::TooLong)
    );
    assert!(out.len() < 60, "{out}");
}

/// Fuel bounds memory: one render may make at most FUEL × 64 bytes of
/// data (minijinja 3.1 charges every byte an operator makes and refuses a
/// known-size allocation beyond the fuel left), so a 100 MB string is
/// refused before it is allocated, in a loop too.
#[test]
fn fuel_bounds_the_memory_a_render_makes() {
    let e = err("{{ ('x' * 99999999) | length }}");
    assert!(e.contains("fuel"), "{e}");
    let e = err("{% for i in range(1000) %}{% set s = 'x' * 9999999 %}{% endfor %}");
    assert!(e.contains("fuel"), "{e}");
    // What HA templates do fits: every state and its attributes, 2000
    // states of 10 attributes.
    let mut w = world();
    let states = Arc::make_mut(&mut w.states);
    for i in 0..2000 {
        let attrs: serde_json::Map<String, serde_json::Value> =
            (0..10).map(|a| (format!("attr_{a}"), json!(a))).collect();
        let s = state(
            &format!("sensor.s{i}"),
            "1.5",
            serde_json::Value::Object(attrs),
        );
        states.insert(s.entity_id.clone(), s);
    }
    let src = "{% set ns = namespace(n=0) %}{% for s in states %}{% for k, v in s.attributes | items %}{% if v is number %}{% set ns.n = ns.n + v %}{% endif %}{% endfor %}{% endfor %}{{ ns.n }} {{ states.sensor | selectattr('state', 'eq', '1.5') | list | count }} {{ states | map(attribute='entity_id') | join(',') | length }}";
    let joined = w.states.keys().cloned().collect::<Vec<_>>().join(",").len();
    let r = render(src, &Map::new(), &w, false);
    assert_eq!(r.result.unwrap(), format!("90000 2000 {joined}"));
}
