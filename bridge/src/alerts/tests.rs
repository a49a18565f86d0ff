//! The hub's rules on a manual clock: de-duplication, re-notification,
//! acknowledgement, clear and raise again; its Home Assistant entities in a
//! real entity store; its state file.

use super::*;
use crate::clock::{Clock, ManualTime};
use crate::discovery::payload::BRIDGE_DEVICE;
use crate::entity::{Device, EntityStore};
use std::sync::Arc;
use tokio::sync::broadcast;

const T0: i64 = 1_763_719_200_000;
const HOUR_MS: i64 = 3_600_000;

fn store(clock: Clock) -> Arc<EntityStore> {
    let store = EntityStore::new(clock);
    store
        .upsert_device(
            "bridge",
            Device {
                id: BRIDGE_DEVICE.into(),
                name: "Hearth bridge".into(),
                manufacturer: "Hearth".into(),
                model: "test".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    store
}

struct Fixture {
    hub: Arc<AlertHub>,
    time: ManualTime,
    store: Arc<EntityStore>,
    events: broadcast::Receiver<AlertEvent>,
}

fn fixture(cfg: AlertsConfig) -> Fixture {
    let (clock, time) = Clock::manual(T0);
    let store = store(clock);
    let hub = AlertHub::start(
        &cfg,
        clock,
        HubOptions {
            store: Some(store.clone()),
            state_file: None,
        },
    )
    .unwrap();
    let events = hub.subscribe();
    Fixture {
        hub,
        time,
        store,
        events,
    }
}

fn over_temp() -> NewAlert {
    NewAlert {
        source: "plugin:thermostat".into(),
        key: "over_temperature".into(),
        entity_id: Some("sensor.server_room_temperature".into()),
        severity: Severity::Critical,
        title: "Server room over temperature".into(),
        message: "room at 31.2 °C, limit 30.0 °C".into(),
    }
}

const ID: &str = "plugin:thermostat/over_temperature";

/// (kind, notified) of every event so far.
fn drain(rx: &mut broadcast::Receiver<AlertEvent>) -> Vec<(AlertEventKind, bool)> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push((e.kind, e.notified));
    }
    out
}

fn notified(events: &[(AlertEventKind, bool)]) -> Vec<AlertEventKind> {
    events.iter().filter(|(_, n)| *n).map(|(k, _)| *k).collect()
}

#[tokio::test]
async fn hundred_raises_are_one_alert_and_one_notification() {
    let mut f = fixture(AlertsConfig::default());
    let (_, mut store_events) = f.store.subscribe();
    for i in 0..100 {
        f.time.set(T0 + i * 1000);
        f.hub.raise(over_temp()).unwrap();
    }
    let list = f.hub.list();
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a.id, ID);
    assert_eq!(a.count, 100);
    assert_eq!(a.first_seen_ms, T0);
    assert_eq!(a.last_seen_ms, T0 + 99_000);
    let events = drain(&mut f.events);
    assert_eq!(events.len(), 100);
    assert_eq!(notified(&events), vec![AlertEventKind::Raised]);
    // Home Assistant's event entity fired once.
    let mut fired = 0;
    while let Ok(ev) = store_events.try_recv() {
        if let crate::entity::StoreEvent::StateChanged(c) = ev
            && c.entity_id == "event.bridge_alerts"
        {
            fired += 1;
        }
    }
    assert_eq!(fired, 1);
}

#[tokio::test]
async fn a_repeat_after_the_interval_is_notified_again() {
    let mut f = fixture(AlertsConfig::default()); // 3600 s
    f.hub.raise(over_temp()).unwrap();
    f.time.set(T0 + HOUR_MS - 1);
    f.hub.raise(over_temp()).unwrap();
    f.time.set(T0 + HOUR_MS);
    f.hub.raise(over_temp()).unwrap();
    // The interval counts from the last notification.
    f.time.set(T0 + 2 * HOUR_MS - 1);
    f.hub.raise(over_temp()).unwrap();
    assert_eq!(
        notified(&drain(&mut f.events)),
        vec![AlertEventKind::Raised, AlertEventKind::Repeated]
    );
    // Without any raise, the ticker's `tick` re-notifies a still-active alert.
    f.time.set(T0 + 2 * HOUR_MS);
    assert_eq!(f.hub.tick(), 1);
    assert_eq!(f.hub.tick(), 0);
    assert_eq!(
        notified(&drain(&mut f.events)),
        vec![AlertEventKind::Repeated]
    );
    assert_eq!(f.hub.get(ID).unwrap().count, 4);
}

#[tokio::test]
async fn acknowledged_alerts_are_not_renotified() {
    let mut f = fixture(AlertsConfig::default());
    f.hub.raise(over_temp()).unwrap();
    let a = f.hub.acknowledge(ID).unwrap();
    assert!(a.acknowledged && a.active);
    f.time.set(T0 + 5 * HOUR_MS);
    f.hub.raise(over_temp()).unwrap();
    assert_eq!(f.hub.tick(), 0);
    let events = drain(&mut f.events);
    assert_eq!(
        events,
        vec![
            (AlertEventKind::Raised, true),
            (AlertEventKind::Acknowledged, false),
            (AlertEventKind::Repeated, false),
        ]
    );
    assert_eq!(
        f.hub.acknowledge("plugin:thermostat/nope"),
        Err(AlertError::NotFound("plugin:thermostat/nope".into()))
    );
}

#[tokio::test]
async fn clear_then_raise_again_is_a_new_notification() {
    let mut f = fixture(AlertsConfig::default());
    f.hub.raise(over_temp()).unwrap();
    f.hub.raise(over_temp()).unwrap();
    f.hub.acknowledge(ID).unwrap();
    f.time.set(T0 + 60_000);
    assert!(f.hub.clear("plugin:thermostat", "over_temperature"));
    assert!(
        !f.hub.clear("plugin:thermostat", "over_temperature"),
        "already clear"
    );
    let cleared = f.hub.get(ID).unwrap();
    assert!(!cleared.active);
    assert_eq!(cleared.last_seen_ms, T0 + 60_000);
    f.time.set(T0 + 120_000);
    assert_eq!(f.hub.raise(over_temp()), Ok(AlertEventKind::Raised));
    let again = f.hub.get(ID).unwrap();
    assert_eq!(
        (
            again.count,
            again.first_seen_ms,
            again.acknowledged,
            again.active
        ),
        (1, T0 + 120_000, false, true)
    );
    assert_eq!(
        notified(&drain(&mut f.events)),
        vec![
            AlertEventKind::Raised,
            AlertEventKind::Cleared,
            AlertEventKind::Raised
        ]
    );
}

#[tokio::test]
async fn clear_source_clears_only_that_sources_active_alerts() {
    let f = fixture(AlertsConfig::default());
    f.hub.raise(over_temp()).unwrap();
    let mut other = over_temp();
    other.key = "sensor_unavailable".into();
    f.hub.raise(other).unwrap();
    let mut elsewhere = over_temp();
    elsewhere.source = "plugin:anomalies".into();
    f.hub.raise(elsewhere).unwrap();
    assert_eq!(f.hub.clear_source("plugin:thermostat"), 2);
    assert_eq!(f.hub.clear_source("plugin:thermostat"), 0, "already clear");
    let active: Vec<String> = f
        .hub
        .list()
        .into_iter()
        .filter(|a| a.active)
        .map(|a| a.id)
        .collect();
    assert_eq!(active, ["plugin:anomalies/over_temperature"]);
}

#[tokio::test]
async fn notify_resolved_off_keeps_clears_quiet() {
    let mut f = fixture(AlertsConfig {
        notify_resolved: false,
        renotify_interval_s: 0,
        ..AlertsConfig::default()
    });
    f.hub.raise(over_temp()).unwrap();
    f.time.set(T0 + 100 * HOUR_MS);
    f.hub.raise(over_temp()).unwrap();
    assert_eq!(f.hub.tick(), 0, "0 s: never re-notify");
    f.hub.clear("plugin:thermostat", "over_temperature");
    assert_eq!(
        drain(&mut f.events),
        vec![
            (AlertEventKind::Raised, true),
            (AlertEventKind::Repeated, false),
            (AlertEventKind::Cleared, false)
        ]
    );
}

#[tokio::test]
async fn the_watched_entity_gets_a_problem_sensor_and_the_event_entity_fires() {
    let f = fixture(AlertsConfig::default());
    f.hub.raise(over_temp()).unwrap();
    f.time.set(T0 + 1000);
    f.hub.raise(over_temp()).unwrap();
    let sensor = "binary_sensor.server_room_temperature_alert";
    let spec = f.store.spec(sensor).expect("problem sensor registered");
    assert_eq!(spec.device_class.as_deref(), Some("problem"));
    assert_eq!(spec.device_id, BRIDGE_DEVICE);
    let s = f.store.get(sensor).unwrap();
    assert_eq!(s.state, "on");
    let attr = |k: &str| s.attributes[k].clone();
    assert_eq!(attr("title"), "Server room over temperature");
    assert_eq!(attr("severity"), "critical");
    assert_eq!(attr("count"), 2);
    assert_eq!(attr("first_seen"), crate::clock::iso8601(T0).as_str());
    assert_eq!(attr("last_seen"), crate::clock::iso8601(T0 + 1000).as_str());
    let event = f.store.get("event.bridge_alerts").unwrap();
    assert_eq!(event.attributes["event_type"], "raised");
    assert_eq!(
        event.attributes["alert_entity"],
        "sensor.server_room_temperature"
    );
    let spec = f.store.spec("event.bridge_alerts").unwrap();
    assert_eq!(spec.event_types, ["raised", "repeated", "cleared"]);

    f.time.set(T0 + 2000);
    f.hub.clear("plugin:thermostat", "over_temperature");
    assert_eq!(f.store.get(sensor).unwrap().state, "off");
    let event = f.store.get("event.bridge_alerts").unwrap();
    assert_eq!(event.attributes["event_type"], "cleared");
    assert_eq!(event.state, crate::clock::iso8601(T0 + 2000));
}

#[tokio::test]
async fn bad_input_from_a_source_is_refused_with_the_field_named() {
    let f = fixture(AlertsConfig::default());
    let bad_entity = NewAlert {
        entity_id: Some("Server Room!".into()),
        ..over_temp()
    };
    let e = f.hub.raise(bad_entity).unwrap_err().to_string();
    assert!(
        e.contains("plugin:thermostat") && e.contains("entity_id `Server Room!`"),
        "{e}"
    );
    assert!(e.contains("expected `<domain>.<object_id>`"), "{e}");
    let long_key = NewAlert {
        key: "k".repeat(hub::MAX_KEY + 1),
        ..over_temp()
    };
    assert!(
        f.hub
            .raise(long_key)
            .unwrap_err()
            .to_string()
            .contains("key")
    );
    let long_title = NewAlert {
        title: "t".repeat(10_000),
        ..over_temp()
    };
    f.hub.raise(long_title).unwrap();
    assert_eq!(
        f.hub.get(ID).unwrap().title.chars().count(),
        hub::MAX_TITLE + 1
    );
    assert!(f.hub.list().len() == 1);
}

#[tokio::test]
async fn active_alerts_survive_a_restart_through_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json");
    let (clock, _) = Clock::manual(T0);
    let first = AlertHub::detached(clock);
    first.raise(over_temp()).unwrap();
    persist::save(&path, &first.list()).unwrap();

    let store = store(clock);
    let hub = AlertHub::start(
        &AlertsConfig::default(),
        clock,
        HubOptions {
            store: Some(store.clone()),
            state_file: Some(path.clone()),
        },
    )
    .unwrap();
    assert_eq!(hub.list(), first.list());
    // The problem sensor is back on before any source speaks again.
    let sensor = store
        .get("binary_sensor.server_room_temperature_alert")
        .unwrap();
    assert_eq!(sensor.state, "on");

    // A damaged file is set aside, not fatal.
    std::fs::write(&path, b"{not json").unwrap();
    let hub = AlertHub::start(
        &AlertsConfig::default(),
        clock,
        HubOptions {
            store: None,
            state_file: Some(path.clone()),
        },
    )
    .unwrap();
    assert!(hub.list().is_empty());
    assert!(dir.path().join("alerts.json.bad").exists());
}

#[test]
fn config_errors_name_the_key() {
    let cfg: AlertsConfig = toml::from_str(
        r#"
        [[email]]
        host = "smtp.example.com"
        from = "not an address"
        to = ["ops@example.com"]
        "#,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (clock, _) = Clock::manual(T0);
    let e = AlertHub::start(&cfg, clock, HubOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("alerts.email[0].from") && e.contains("not an address"),
        "{e}"
    );

    let cfg: AlertsConfig = toml::from_str(
        r#"
        [[webhook]]
        url = "https://ntfy.sh"
        format = "ntfy"
        "#,
    )
    .unwrap();
    let e = AlertHub::start(&cfg, clock, HubOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("alerts.webhook[0].topic"), "{e}");
    let bad: Result<AlertsConfig, _> =
        toml::from_str("[[webhook]]\nurl = \"x\"\nformat = \"teams\"\n");
    assert!(bad.unwrap_err().to_string().contains("teams"));
}

#[tokio::test]
async fn the_problem_sensor_is_named_after_the_watched_entitys_friendly_name() {
    use crate::entity::{Component, EntitySpec};
    let f = fixture(AlertsConfig::default());
    f.store
        .upsert_device(
            "twin",
            Device {
                id: "server_room".into(),
                name: "Server room".into(),
                manufacturer: "Hearth".into(),
                model: "test".into(),
                sw_version: None,
                via_device: None,
            },
        )
        .unwrap();
    let watched =
        EntitySpec::new("server_room", "temperature", Component::Sensor).named("Temperature");
    assert_eq!(watched.entity_id, "sensor.server_room_temperature");
    f.store.upsert_entity(watched).unwrap();
    f.hub.raise(over_temp()).unwrap();
    // An entity the store does not know keeps its id as its name.
    f.hub
        .raise(NewAlert {
            entity_id: Some("sensor.gone".into()),
            key: "gone".into(),
            ..over_temp()
        })
        .unwrap();

    let spec = f
        .store
        .spec("binary_sensor.server_room_temperature_alert")
        .expect("problem sensor registered");
    assert_eq!(spec.name.as_deref(), Some("Server room Temperature alert"));
    // Only the name changed: the entity id and the key (the unique id) did not.
    assert_eq!(spec.key, "alert_sensor_server_room_temperature");
    assert_eq!(spec.device_id, BRIDGE_DEVICE);
    let spec = f
        .store
        .spec("binary_sensor.gone_alert")
        .expect("problem sensor registered");
    assert_eq!(spec.name.as_deref(), Some("sensor.gone alert"));
}
