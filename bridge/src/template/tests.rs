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
