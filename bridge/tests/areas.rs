//! Areas, floors and labels (issue 18 item 4): HA's registry commands
//! (create, update, delete, list, events), persistence across a restart,
//! areas from the config, and service calls that target an area, a floor
//! or a label: only the entities there move (the twin's plug among them);
//! an unknown area is refused.

use crate::common::history::Ws;
use crate::common::{BrokerKind, Harness, history::start_bridge, wait_for};
use crate::templates::{post, selects};
use hearth::api::auth::tokens;
use hearth::areas::{AreaConfig, FloorConfig, LabelConfig};
use hearth::config::Config;
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(15);
const MODE: &str = "select.mode";
const OTHER: &str = "select.other";
const PLUG: &str = "switch.server_room_ac_plug";

fn places(c: &mut Config) {
    c.floors.push(FloorConfig {
        id: "ground".into(),
        name: "Ground".into(),
        level: Some(0),
        icon: None,
        aliases: vec![],
    });
    c.labels.push(LabelConfig {
        id: "critical".into(),
        name: "Critical".into(),
        color: Some("red".into()),
        icon: None,
        description: None,
    });
    c.areas.push(AreaConfig {
        id: "office".into(),
        name: "Office".into(),
        floor: Some("ground".into()),
        icon: Some("mdi:desk".into()),
        aliases: vec![],
        labels: vec!["critical".into()],
        devices: vec![],
        entities: vec![MODE.into()],
    });
}

fn ok(r: &Value) -> &Value {
    assert_eq!(r["success"], true, "{r}");
    &r["result"]
}

fn error_code(r: &Value) -> String {
    assert_eq!(r["success"], false, "{r}");
    r["error"]["code"].as_str().unwrap().to_string()
}

fn find<'a>(list: &'a Value, key: &str, id: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|x| x[key] == id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_are_edited_announced_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let tweak = |c: &mut Config| {
        selects(c);
        places(c);
    };
    let bridge = start_bridge(dir.path(), tweak).await;
    let mut ws = Ws::auth(bridge.http_addr, &token).await;

    // The config's places, in HA's shapes.
    let areas = ws.call(json!({"type": "config/area_registry/list"})).await;
    let office = find(ok(&areas), "area_id", "office")
        .expect("office")
        .clone();
    assert_eq!(office["name"], "Office");
    assert_eq!(office["floor_id"], "ground");
    assert_eq!(office["labels"], json!(["critical"]));
    assert_eq!(office["icon"], "mdi:desk");
    for key in [
        "aliases",
        "picture",
        "humidity_entity_id",
        "temperature_entity_id",
        "created_at",
        "modified_at",
    ] {
        assert!(office.get(key).is_some(), "{key} in {office}");
    }
    let floors = ws.call(json!({"type": "config/floor_registry/list"})).await;
    assert_eq!(find(ok(&floors), "floor_id", "ground").unwrap()["level"], 0);
    let labels = ws.call(json!({"type": "config/label_registry/list"})).await;
    assert_eq!(
        find(ok(&labels), "label_id", "critical").unwrap()["color"],
        "red"
    );
    let entities = ws
        .call(json!({"type": "config/entity_registry/list"}))
        .await;
    assert_eq!(
        find(ok(&entities), "entity_id", MODE).unwrap()["area_id"],
        "office"
    );

    // Changes are announced on the bus.
    let events = ws
        .send(json!({"type": "subscribe_events", "event_type": "area_registry_updated"}))
        .await;
    ok(&ws.result(events).await);

    let r = ws
        .call(json!({"type": "config/area_registry/create", "name": "Living Room", "aliases": ["lounge"]}))
        .await;
    let living = ok(&r).clone();
    assert_eq!(living["area_id"], "living_room");
    assert_eq!(living["aliases"], json!(["lounge"]));
    let ev = ws.event(events).await;
    assert_eq!(ev["event_type"], "area_registry_updated");
    assert_eq!(
        ev["data"],
        json!({"action": "create", "area_id": "living_room"})
    );
    // HA's names are unique (case and spaces aside).
    let r = ws
        .call(json!({"type": "config/area_registry/create", "name": "living  room"}))
        .await;
    assert_eq!(error_code(&r), "invalid_info");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already in use"),
        "{r}"
    );
    let r = ws
        .call(json!({"type": "config/area_registry/create", "name": "Attic", "floor_id": "roof"}))
        .await;
    assert_eq!(error_code(&r), "invalid_info");

    let r = ws
        .call(
            json!({"type": "config/area_registry/update", "area_id": "living_room",
                     "name": "Lounge", "floor_id": "ground"}),
        )
        .await;
    assert_eq!(ok(&r)["name"], "Lounge");
    assert_eq!(ws.event(events).await["data"]["action"], "update");

    let r = ws
        .call(json!({"type": "config/floor_registry/create", "name": "Upstairs", "level": 1}))
        .await;
    assert_eq!(ok(&r)["floor_id"], "upstairs");
    let r = ws
        .call(json!({"type": "config/label_registry/create", "name": "Noisy", "color": "indigo"}))
        .await;
    assert_eq!(ok(&r)["label_id"], "noisy");

    // An entity and a device placed and labelled.
    let r = ws
        .call(
            json!({"type": "config/entity_registry/update", "entity_id": OTHER,
                     "area_id": "living_room", "labels": ["noisy"], "name": "Other seat"}),
        )
        .await;
    let entry = &ok(&r)["entity_entry"];
    assert_eq!(entry["area_id"], "living_room", "{r}");
    assert_eq!(entry["labels"], json!(["noisy"]));
    assert_eq!(entry["name"], "Other seat");
    let r = ws
        .call(json!({"type": "config/entity_registry/update", "entity_id": "select.nothing", "area_id": "living_room"}))
        .await;
    assert_eq!(error_code(&r), "not_found");
    let devices = ws
        .call(json!({"type": "config/device_registry/list"}))
        .await;
    let device_id =
        find(ok(&devices), "name", "Hearth helpers").expect("the helpers' device")["id"]
            .as_str()
            .unwrap()
            .to_string();
    let r = ws
        .call(
            json!({"type": "config/device_registry/update", "device_id": device_id,
                     "area_id": "office", "name_by_user": "Seats"}),
        )
        .await;
    assert_eq!(ok(&r)["area_id"], "office");
    assert_eq!(ok(&r)["name_by_user"], "Seats");

    // Delete: "success", then gone; a second delete is refused.
    let r = ws
        .call(json!({"type": "config/area_registry/create", "name": "Garage"}))
        .await;
    assert_eq!(ok(&r)["area_id"], "garage");
    let r = ws
        .call(json!({"type": "config/area_registry/delete", "area_id": "garage"}))
        .await;
    assert_eq!(ok(&r), "success");
    let r = ws
        .call(json!({"type": "config/area_registry/delete", "area_id": "garage"}))
        .await;
    assert_eq!(error_code(&r), "invalid_info");
    let mut seen = Vec::new();
    for _ in 0..2 {
        seen.push(ws.event(events).await["data"].clone());
    }
    assert!(
        seen.contains(&json!({"action": "remove", "area_id": "garage"})),
        "{seen:?}"
    );

    // Templates see the places.
    let body = json!({"template": "{{ area_entities('Lounge') }} {{ area_name('select.mode') }} {{ floor_areas('ground') | sort }} {{ label_entities('noisy') }}"});
    let (status, _, text) = post(
        bridge.http_addr,
        "/api/template",
        Some(&token),
        &body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        text,
        "['select.other'] Office ['living_room', 'office'] ['select.other']"
    );
    bridge.stop().await;

    // After a restart: what clients made is still there.
    let file = dir.path().join("registries.json");
    assert!(file.exists());
    assert!(!dir.path().join("registries.json.tmp").exists());
    let bridge = start_bridge(dir.path(), tweak).await;
    let mut ws = Ws::auth(bridge.http_addr, &token).await;
    let areas = ws.call(json!({"type": "config/area_registry/list"})).await;
    let lounge = find(ok(&areas), "area_id", "living_room").expect("living_room kept");
    assert_eq!(lounge["name"], "Lounge");
    assert_eq!(lounge["floor_id"], "ground");
    assert!(find(ok(&areas), "area_id", "garage").is_none());
    assert!(find(ok(&areas), "area_id", "office").is_some());
    let floors = ws.call(json!({"type": "config/floor_registry/list"})).await;
    assert!(find(ok(&floors), "floor_id", "upstairs").is_some());
    let entities = ws
        .call(json!({"type": "config/entity_registry/list"}))
        .await;
    let other = find(ok(&entities), "entity_id", OTHER).unwrap();
    assert_eq!(other["area_id"], "living_room");
    assert_eq!(other["labels"], json!(["noisy"]));
    let devices = ws
        .call(json!({"type": "config/device_registry/list"}))
        .await;
    let d = find(ok(&devices), "id", &device_id).unwrap();
    assert_eq!(d["area_id"], "office");
    assert_eq!(d["name_by_user"], "Seats");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_calls_by_area_floor_and_label_move_only_what_is_there() {
    let h = Harness::start(BrokerKind::Embedded, 60.0, |c| {
        selects(c);
        places(c);
        c.areas.push(AreaConfig {
            id: "rack".into(),
            name: "Rack".into(),
            floor: None,
            icon: None,
            aliases: vec![],
            labels: vec![],
            devices: vec!["server-room-ac-plug".into()],
            entities: vec![],
        });
        c.areas.push(AreaConfig {
            id: "hall".into(),
            name: "Hall".into(),
            floor: None,
            icon: None,
            aliases: vec![],
            labels: vec![],
            devices: vec![],
            entities: vec![OTHER.into()],
        });
    })
    .await;
    let (_, token) = tokens::create(h.data_dir.path(), "tests").unwrap();
    let store = h.bridge().store.clone();
    wait_for("the plug on", Duration::from_secs(20), || {
        (store.get(PLUG)?.state == "on" && h.twin.snapshot().relay_on).then_some(())
    })
    .await;
    let mut ws = Ws::auth(h.bridge().http_addr, &token).await;
    let state = |id: &str| store.get(id).map(|s| s.state).unwrap_or_default();
    let call = |service: &str, domain: &str, data: Value, target: Value| {
        json!({"type": "call_service", "domain": domain, "service": service,
               "service_data": data, "target": target})
    };

    // The plug's device is in the rack: the twin's relay opens.
    let r = ws
        .call(call(
            "turn_off",
            "switch",
            json!({}),
            json!({"area_id": "rack"}),
        ))
        .await;
    ok(&r);
    wait_for("the twin's plug off", WAIT, || {
        (!h.twin.snapshot().relay_on && state(PLUG) == "off").then_some(())
    })
    .await;

    // Only the office's select moves.
    let r = ws
        .call(call(
            "select_option",
            "select",
            json!({"option": "b"}),
            json!({"area_id": "office"}),
        ))
        .await;
    ok(&r);
    wait_for("select.mode = b", WAIT, || {
        (state(MODE) == "b").then_some(())
    })
    .await;
    assert_eq!(state(OTHER), "x");
    // By floor: the office is on the ground floor.
    let r = ws
        .call(call(
            "select_option",
            "select",
            json!({"option": "c"}),
            json!({"floor_id": "ground"}),
        ))
        .await;
    ok(&r);
    wait_for("select.mode = c", WAIT, || {
        (state(MODE) == "c").then_some(())
    })
    .await;
    assert_eq!(state(OTHER), "x");
    // By label, after labelling the hall's select.
    ok(&ws
        .call(json!({"type": "config/label_registry/create", "name": "Seat"}))
        .await);
    ok(&ws
        .call(json!({"type": "config/entity_registry/update", "entity_id": OTHER, "labels": ["seat"]}))
        .await);
    let r = ws
        .call(call(
            "select_option",
            "select",
            json!({"option": "z"}),
            json!({"label_id": "seat"}),
        ))
        .await;
    ok(&r);
    wait_for("select.other = z", WAIT, || {
        (state(OTHER) == "z").then_some(())
    })
    .await;
    assert_eq!(state(MODE), "c");

    // An entity placed in another area leaves its device's area: the
    // office's device holds both selects, the hall keeps select.other.
    let devices = ws
        .call(json!({"type": "config/device_registry/list"}))
        .await;
    let helpers = ok(&devices)
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "Hearth helpers")
        .map(|d| d["id"].as_str().unwrap().to_string())
        .expect("the helpers' device");
    ok(&ws
        .call(json!({"type": "config/device_registry/update", "device_id": helpers, "area_id": "office"}))
        .await);
    ok(&ws
        .call(json!({"type": "config/entity_registry/update", "entity_id": MODE, "area_id": null}))
        .await);
    let r = ws
        .call(call(
            "select_option",
            "select",
            json!({"option": "a"}),
            json!({"area_id": "office"}),
        ))
        .await;
    ok(&r);
    wait_for("select.mode = a", WAIT, || {
        (state(MODE) == "a").then_some(())
    })
    .await;
    assert_eq!(state(OTHER), "z", "select.other has its own area (hall)");

    // REST: the target keys in the body, as HA takes them.
    let (status, _, text) = post(
        h.bridge().http_addr,
        "/api/services/select/select_option",
        Some(&token),
        &json!({"area_id": "hall", "option": "y"}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    wait_for("select.other = y", WAIT, || {
        (state(OTHER) == "y").then_some(())
    })
    .await;
    assert_eq!(state(MODE), "a");

    // Unknown area: refused, nothing moves.
    let r = ws
        .call(call(
            "turn_on",
            "switch",
            json!({}),
            json!({"area_id": "nowhere"}),
        ))
        .await;
    assert_eq!(error_code(&r), "not_found");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Referenced areas nowhere are missing"),
        "{r}"
    );
    let (status, _, _) = post(
        h.bridge().http_addr,
        "/api/services/switch/turn_on",
        Some(&token),
        &json!({"area_id": "nowhere"}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(state(PLUG), "off");
    h.stop().await;
}
