//! Each user's entities, on a device named after the user (device id = user
//! id): energy and cost of the current day/week/month as HA's
//! `utility_meter` shows them (`last_reset` = the period's start), limit
//! progress, and `binary_sensor.<user>_over_limit`.

use super::periods::PeriodKind;
use crate::entity::{Component, Device, EntitySpec, EntityStore, format_number};
use serde_json::{Map, Value, json};

/// Owner of the user devices in the store.
pub const OWNER: &str = "usage";

pub fn energy_id(user: &str, kind: PeriodKind) -> String {
    crate::entity::entity_id_for(
        Component::Sensor,
        user,
        &format!("energy_{}", kind.entity_suffix()),
    )
}
pub fn cost_id(user: &str, kind: PeriodKind) -> String {
    crate::entity::entity_id_for(
        Component::Sensor,
        user,
        &format!("cost_{}", kind.entity_suffix()),
    )
}
pub fn progress_id(user: &str, kind: PeriodKind) -> String {
    crate::entity::entity_id_for(
        Component::Sensor,
        user,
        &format!("limit_{}_progress", kind.as_str()),
    )
}
pub fn over_limit_id(user: &str) -> String {
    crate::entity::entity_id_for(Component::BinarySensor, user, "over_limit")
}

/// Registers a user's device and entities; `limits` are the periods that
/// may have a limit (a progress sensor each).
pub fn register(
    store: &EntityStore,
    user: &str,
    name: &str,
    limits: &[PeriodKind],
) -> anyhow::Result<()> {
    store.upsert_device(
        OWNER,
        Device {
            id: user.into(),
            name: name.into(),
            manufacturer: "Hearth".into(),
            model: "Usage meter".into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    for kind in PeriodKind::ALL {
        let label = match kind {
            PeriodKind::Day => "today",
            PeriodKind::Week => "this week",
            PeriodKind::Month => "this month",
        };
        store.upsert_entity(
            EntitySpec::new(
                user,
                &format!("energy_{}", kind.entity_suffix()),
                Component::Sensor,
            )
            .named(&format!("Energy {label}"))
            .class("energy")
            .measured("kWh", "total_increasing"),
        )?;
        // HA's monetary class takes only the `total` state class.
        store.upsert_entity(
            EntitySpec::new(
                user,
                &format!("cost_{}", kind.entity_suffix()),
                Component::Sensor,
            )
            .named(&format!("Cost {label}"))
            .class("monetary")
            .measured("€", "total"),
        )?;
    }
    for kind in limits {
        let mut spec = EntitySpec::new(
            user,
            &format!("limit_{}_progress", kind.as_str()),
            Component::Sensor,
        )
        .named(&format!("{} limit progress", capitalised(kind.as_str())));
        spec.unit = Some("%".into());
        spec.state_class = Some("measurement".into());
        store.upsert_entity(spec)?;
    }
    store.upsert_entity(
        EntitySpec::new(user, "over_limit", Component::BinarySensor)
            .named("Over limit")
            .class("problem"),
    )?;
    Ok(())
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Energy (kWh, 3 decimals) and cost (€, 2 decimals) of one period.
pub fn publish_totals(
    store: &EntityStore,
    user: &str,
    kind: PeriodKind,
    start_ms: i64,
    wh: f64,
    eur: f64,
) {
    let mut attrs = Map::new();
    attrs.insert(
        "last_reset".into(),
        Value::String(crate::clock::iso8601(start_ms)),
    );
    let _ = store.set_state(
        &energy_id(user, kind),
        format_number(wh / 1000.0, 3),
        attrs.clone(),
    );
    let _ = store.set_state(&cost_id(user, kind), format_number(eur, 2), attrs);
}

/// Progress (% of the limit, 1 decimal) or `unknown` with no limit now.
pub fn publish_progress(
    store: &EntityStore,
    user: &str,
    kind: PeriodKind,
    limit: Option<(f64, &str)>,
    pct: f64,
) {
    let mut attrs = Map::new();
    let state = match limit {
        Some((kwh, source)) => {
            attrs.insert("limit_kwh".into(), json!(kwh));
            attrs.insert("limit_source".into(), json!(source));
            format_number(pct, 1)
        }
        None => "unknown".into(),
    };
    let _ = store.set_state(&progress_id(user, kind), state, attrs);
}

/// `on` while a limit is reached; `periods` lists which.
pub fn publish_over(store: &EntityStore, user: &str, over: &[PeriodKind]) {
    let mut attrs = Map::new();
    attrs.insert(
        "periods".into(),
        json!(over.iter().map(|k| k.as_str()).collect::<Vec<_>>()),
    );
    let state = if over.is_empty() { "off" } else { "on" };
    let _ = store.set_state(&over_limit_id(user), state, attrs);
}
