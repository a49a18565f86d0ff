//! HA's registry listings (`config/entity_registry/list`,
//! `config/device_registry/list`, and the area, floor and label registries,
//! which Hearth does not have), in the shapes of HA's
//! `RegistryEntry.as_partial_dict` / `DeviceEntry.dict_repr`. Clients such
//! as Node-RED's HA nodes read them at connect. Ids and `unique_id` are the
//! ones MQTT discovery gives the same entities, so a client that sees both
//! Hearth and HA can match them.

use super::commands::Outcome;
use super::protocol::{self, Command, Fields};
use super::session::Session;
use crate::api::calls::Failure;
use crate::discovery::payload::{device_identifier, unique_id};
use serde_json::{Value, json};

pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    let list = match cmd.kind.as_str() {
        "config/entity_registry/list" => entities,
        "config/device_registry/list" => devices,
        "config/area_registry/list"
        | "config/floor_registry/list"
        | "config/label_registry/list" => |_: &Session| Value::Array(Vec::new()),
        _ => return None,
    };
    Some(Fields::new(&cmd.msg, &[]).map_err(Failure::from).map(|_| {
        s.conn.send(protocol::result(cmd.id, list(s)));
    }))
}

fn entities(s: &Session) -> Value {
    let snap = s.api.store.snapshot();
    Value::Array(
        snap.entities
            .iter()
            .map(|(spec, _)| {
                json!({
                    "id": unique_id(spec),
                    "entity_id": spec.entity_id,
                    "unique_id": unique_id(spec),
                    "platform": "mqtt",
                    "device_id": spec.device_id,
                    "name": null,
                    "original_name": spec.name,
                    "has_entity_name": true,
                    "entity_category": spec.entity_category,
                    "area_id": null,
                    "categories": {},
                    "config_entry_id": null,
                    "disabled_by": null,
                    "hidden_by": null,
                    "icon": null,
                    "labels": [],
                    "options": {},
                    "translation_key": null,
                    "created_at": 0.0,
                    "modified_at": 0.0,
                })
            })
            .collect(),
    )
}

fn devices(s: &Session) -> Value {
    let snap = s.api.store.snapshot();
    Value::Array(
        snap.devices
            .iter()
            .map(|(d, _)| {
                json!({
                    "id": d.id,
                    "name": d.name,
                    "name_by_user": null,
                    "manufacturer": d.manufacturer,
                    "model": d.model,
                    "model_id": null,
                    "sw_version": d.sw_version,
                    "hw_version": null,
                    "serial_number": null,
                    "via_device_id": d.via_device,
                    "identifiers": [["mqtt", device_identifier(&d.id)]],
                    "connections": [],
                    "area_id": null,
                    "config_entries": [],
                    "configuration_url": null,
                    "disabled_by": null,
                    "entry_type": null,
                    "labels": [],
                    "primary_config_entry": null,
                    "created_at": 0.0,
                    "modified_at": 0.0,
                })
            })
            .collect(),
    )
}
