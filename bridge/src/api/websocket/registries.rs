//! HA's registry listings (`config/entity_registry/list`,
//! `config/device_registry/list`), in the shapes of HA's
//! `RegistryEntry.as_partial_dict` / `DeviceEntry.dict_repr`, with the
//! area, labels and user-set names of [`crate::areas`] (the area, floor and
//! label registries and the registry updates are in [`crate::areas::ws`]). Clients such
//! as Node-RED's HA nodes read them at connect. Ids and `unique_id` are the
//! ones MQTT discovery gives the same entities, so a client that sees both
//! Hearth and HA can match them.

use super::commands::Outcome;
use super::protocol::{self, Command, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::areas::Places;
use crate::discovery::payload::{device_identifier, unique_id};
use crate::entity::{Device, EntitySpec};
use serde_json::{Value, json};

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    if let Some(outcome) = crate::areas::ws::handle(s, cmd) {
        return Some(outcome);
    }
    let list = match cmd.kind.as_str() {
        "config/entity_registry/list" => entities,
        "config/device_registry/list" => devices,
        _ => return None,
    };
    Some(Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
        s.conn.send(protocol::result(cmd.id, list(s)));
    }))
}

fn entities(s: &Session) -> Value {
    let snap = s.api.store.snapshot();
    let places = Places::new(s.api.areas.get(), &snap);
    Value::Array(
        snap.entities
            .iter()
            .map(|(spec, _)| entity_entry(spec, &places))
            .collect(),
    )
}

/// One entity as `config/entity_registry/list` shows it: `area_id` is the
/// entity's own area (HA's), `labels` and `name` as set by clients or the
/// config.
pub fn entity_entry(spec: &EntitySpec, places: &Places) -> Value {
    let assign = places.regs.entities.get(&spec.entity_id);
    json!({
        "id": unique_id(spec),
        "entity_id": spec.entity_id,
        "unique_id": unique_id(spec),
        "platform": "mqtt",
        "device_id": spec.device_id,
        "name": assign.and_then(|a| a.name.clone()),
        "original_name": spec.name,
        "has_entity_name": true,
        "entity_category": spec.entity_category,
        "area_id": assign.and_then(|a| a.area_id.clone()),
        "categories": {},
        "config_entry_id": null,
        "disabled_by": null,
        "hidden_by": null,
        "icon": null,
        "labels": assign.map(|a| a.labels.clone()).unwrap_or_default(),
        "options": {},
        "translation_key": null,
        "created_at": 0.0,
        "modified_at": 0.0,
    })
}

fn devices(s: &Session) -> Value {
    let snap = s.api.store.snapshot();
    let places = Places::new(s.api.areas.get(), &snap);
    Value::Array(
        snap.devices
            .iter()
            .map(|(d, _)| device_entry(d, &places))
            .collect(),
    )
}

/// One device as `config/device_registry/list` shows it.
pub fn device_entry(d: &Device, places: &Places) -> Value {
    let assign = places.regs.devices.get(&d.id);
    json!({
        "id": d.id,
        "name": d.name,
        "name_by_user": assign.and_then(|a| a.name_by_user.clone()),
        "manufacturer": d.manufacturer,
        "model": d.model,
        "model_id": null,
        "sw_version": d.sw_version,
        "hw_version": null,
        "serial_number": null,
        "via_device_id": d.via_device,
        "identifiers": [["mqtt", device_identifier(&d.id)]],
        "connections": [],
        "area_id": assign.and_then(|a| a.area_id.clone()),
        "config_entries": [],
        "configuration_url": null,
        "disabled_by": null,
        "entry_type": null,
        "labels": assign.map(|a| a.labels.clone()).unwrap_or_default(),
        "primary_config_entry": null,
        "created_at": 0.0,
        "modified_at": 0.0,
    })
}
