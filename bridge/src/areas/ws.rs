//! HA's registry commands for areas, floors and labels, and the area,
//! labels and names of devices and entities, in HA's shapes
//! (`homeassistant/components/config/area_registry.py`,
//! `floor_registry.py`, `label_registry.py`, `device_registry.py`,
//! `entity_registry.py`):
//!
//! - `config/{area,floor,label}_registry/list|create|update|delete`;
//!   `delete` answers `"success"`; a name already in use or an unknown id
//!   is `invalid_info` with HA's message;
//! - `config/device_registry/update` (`area_id`, `labels`, `name_by_user`)
//!   → the device as `config/device_registry/list` shows it;
//! - `config/entity_registry/update` (`area_id`, `labels`, `name`) →
//!   `{"entity_entry": …}`; an unknown entity is `not_found`.
//!
//! Every change fires HA's event on the API's bus (`area_registry_updated`
//! `{"action": "create"|"update"|"remove", "area_id"}`, `floor_…`,
//! `label_…`, `device_registry_updated` / `entity_registry_updated`
//! `{"action": "update", …, "changes": {field: old value}}`), so
//! `subscribe_events` clients (Node-RED) see it. Deleting an area clears
//! it from devices and entities; a floor, from areas; a label, from
//! everything (as HA's registries do).

use super::{Area, EditError, Floor, Label, Registries, normalize_name, slugify};
use crate::api::calls::Failure;
use crate::api::events::BusEvent;
use crate::api::websocket::commands::Outcome;
use crate::api::websocket::protocol::{self, Command, ERR_NOT_FOUND, Fields};
use crate::api::websocket::session::Session;
use crate::entity::Context;
use serde_json::{Map, Value, json};

/// HA's `invalid_info` (registry `ValueError`s).
pub const ERR_INVALID_INFO: &str = "invalid_info";

/// `None` for a command this module does not know.
pub fn handle(s: &mut Session, cmd: &Command) -> Option<Outcome> {
    Some(match cmd.kind.as_str() {
        "config/area_registry/list" => list(s, cmd, |r| r.areas.values().map(area_json).collect()),
        "config/floor_registry/list" => {
            list(s, cmd, |r| r.floors.values().map(floor_json).collect())
        }
        "config/label_registry/list" => {
            list(s, cmd, |r| r.labels.values().map(label_json).collect())
        }
        "config/area_registry/create" => area_create(s, cmd),
        "config/area_registry/update" => area_update(s, cmd),
        "config/area_registry/delete" => delete(s, cmd, Kind::Area),
        "config/floor_registry/create" => floor_create(s, cmd),
        "config/floor_registry/update" => floor_update(s, cmd),
        "config/floor_registry/delete" => delete(s, cmd, Kind::Floor),
        "config/label_registry/create" => label_create(s, cmd),
        "config/label_registry/update" => label_update(s, cmd),
        "config/label_registry/delete" => delete(s, cmd, Kind::Label),
        "config/device_registry/update" => device_update(s, cmd),
        "config/entity_registry/update" => entity_update(s, cmd),
        _ => return None,
    })
}

pub fn area_json(a: &Area) -> Value {
    json!({
        "aliases": a.aliases,
        "area_id": a.area_id,
        "floor_id": a.floor_id,
        "humidity_entity_id": a.humidity_entity_id,
        "icon": a.icon,
        "labels": a.labels,
        "name": a.name,
        "picture": a.picture,
        "temperature_entity_id": a.temperature_entity_id,
        "created_at": a.created_at,
        "modified_at": a.modified_at,
    })
}

pub fn floor_json(f: &Floor) -> Value {
    json!({
        "aliases": f.aliases,
        "created_at": f.created_at,
        "floor_id": f.floor_id,
        "icon": f.icon,
        "level": f.level,
        "name": f.name,
        "modified_at": f.modified_at,
    })
}

pub fn label_json(l: &Label) -> Value {
    json!({
        "color": l.color,
        "created_at": l.created_at,
        "description": l.description,
        "icon": l.icon,
        "label_id": l.label_id,
        "name": l.name,
        "modified_at": l.modified_at,
    })
}

fn list(s: &Session, cmd: &Command, f: impl FnOnce(&Registries) -> Vec<Value>) -> Outcome {
    Fields::new(&cmd.msg, &[])?;
    let items = f(&s.api.areas.get());
    s.conn.send(protocol::result(cmd.id, Value::Array(items)));
    Ok(())
}

fn fire(s: &Session, event_type: &str, data: Value) {
    s.api.bus.fire(BusEvent {
        event_type: event_type.into(),
        data,
        context: Context::new(Some(s.token.id.clone())),
        time_fired_ms: s.api.store.clock().now_ms(),
    });
}

fn edit_failure(e: EditError) -> Failure {
    match e {
        EditError::Invalid(m) => Failure::new(ERR_INVALID_INFO, m),
        EditError::NotFound(m) => Failure::new(ERR_NOT_FOUND, m),
        EditError::Storage(m) => Failure::new(
            protocol::ERR_HOME_ASSISTANT_ERROR,
            format!("not saved: {m}"),
        ),
    }
}

/// A field that may be a string or null (`vol.Any(str, None)`); outer
/// `None` when absent.
fn nullable_str(msg: &Map<String, Value>, name: &str) -> Result<Option<Option<String>>, Failure> {
    match msg.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(v)) => Ok(Some(Some(v.clone()))),
        Some(_) => Err(Failure::from(format!(
            "expected str for dictionary value @ data['{name}']"
        ))),
    }
}

/// A list of strings (`[str]`); `None` when absent.
fn str_list(msg: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, Failure> {
    match msg.get(name) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| Failure::from(format!("expected str @ data['{name}']"))),
        Some(_) => Err(Failure::from(format!(
            "expected list for dictionary value @ data['{name}']"
        ))),
    }
}

fn nullable_int(msg: &Map<String, Value>, name: &str) -> Result<Option<Option<i64>>, Failure> {
    match msg.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v.as_i64().map(|i| Some(Some(i))).ok_or_else(|| {
            Failure::from(format!(
                "expected int for dictionary value @ data['{name}']"
            ))
        }),
    }
}

fn unique_id(taken: impl Fn(&str) -> bool, name: &str) -> String {
    let base = slugify(name);
    let mut id = base.clone();
    let mut n = 2;
    while taken(&id) {
        id = format!("{base}_{n}");
        n += 1;
    }
    id
}

fn name_in_use(name: &str) -> EditError {
    EditError::Invalid(format!(
        "The name {name} ({}) is already in use",
        normalize_name(name)
    ))
}

fn check_refs(r: &Registries, floor: Option<&str>, labels: &[String]) -> Result<(), EditError> {
    if let Some(f) = floor
        && !r.floors.contains_key(f)
    {
        return Err(EditError::Invalid(format!("Floor ID {f} doesn't exist")));
    }
    if let Some(l) = labels.iter().find(|l| !r.labels.contains_key(*l)) {
        return Err(EditError::Invalid(format!("Label ID {l} doesn't exist")));
    }
    Ok(())
}

const AREA_FIELDS: [&str; 8] = [
    "name",
    "aliases",
    "floor_id",
    "humidity_entity_id",
    "icon",
    "labels",
    "picture",
    "temperature_entity_id",
];

/// Applies the optional area fields present in `msg`.
fn area_fields(msg: &Map<String, Value>, a: &mut Area) -> Result<(), Failure> {
    if let Some(v) = str_list(msg, "aliases")? {
        a.aliases = v;
    }
    if let Some(v) = nullable_str(msg, "floor_id")? {
        a.floor_id = v;
    }
    if let Some(v) = nullable_str(msg, "humidity_entity_id")? {
        a.humidity_entity_id = v;
    }
    if let Some(v) = nullable_str(msg, "icon")? {
        a.icon = v;
    }
    if let Some(v) = str_list(msg, "labels")? {
        a.labels = v;
    }
    if let Some(v) = nullable_str(msg, "picture")? {
        a.picture = v;
    }
    if let Some(v) = nullable_str(msg, "temperature_entity_id")? {
        a.temperature_entity_id = v;
    }
    Ok(())
}

fn area_create(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &AREA_FIELDS)?;
    let name = f.required_str("name")?.to_string();
    let mut area = Area {
        area_id: String::new(),
        name: name.clone(),
        floor_id: None,
        icon: None,
        picture: None,
        aliases: Vec::new(),
        labels: Vec::new(),
        humidity_entity_id: None,
        temperature_entity_id: None,
        created_at: 0.0,
        modified_at: 0.0,
    };
    area_fields(&cmd.msg, &mut area)?;
    let area = s
        .api
        .areas
        .edit(|r, now| {
            let norm = normalize_name(&name);
            if r.areas.values().any(|a| normalize_name(&a.name) == norm) {
                return Err(name_in_use(&name));
            }
            check_refs(r, area.floor_id.as_deref(), &area.labels)?;
            area.area_id = unique_id(|id| r.areas.contains_key(id), &name);
            area.created_at = now;
            area.modified_at = now;
            r.areas.insert(area.area_id.clone(), area.clone());
            Ok(area)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "area_registry_updated",
        json!({"action": "create", "area_id": area.area_id}),
    );
    s.conn.send(protocol::result(cmd.id, area_json(&area)));
    Ok(())
}

fn area_update(s: &mut Session, cmd: &Command) -> Outcome {
    let mut allowed = AREA_FIELDS.to_vec();
    allowed.push("area_id");
    let f = Fields::new(&cmd.msg, &allowed)?;
    let id = f.required_str("area_id")?.to_string();
    let name = f.str("name")?.map(str::to_string);
    let msg = cmd.msg.clone();
    // Validate field types before touching anything.
    area_fields(
        &msg,
        &mut Area {
            area_id: String::new(),
            name: String::new(),
            floor_id: None,
            icon: None,
            picture: None,
            aliases: Vec::new(),
            labels: Vec::new(),
            humidity_entity_id: None,
            temperature_entity_id: None,
            created_at: 0.0,
            modified_at: 0.0,
        },
    )?;
    let area = s
        .api
        .areas
        .edit(|r, now| {
            let Some(mut a) = r.areas.get(&id).cloned() else {
                return Err(EditError::Invalid("Area ID doesn't exist".into()));
            };
            if let Some(n) = &name {
                let norm = normalize_name(n);
                if r.areas
                    .values()
                    .any(|x| x.area_id != id && normalize_name(&x.name) == norm)
                {
                    return Err(name_in_use(n));
                }
                a.name = n.clone();
            }
            area_fields(&msg, &mut a).map_err(|f| EditError::Invalid(f.message))?;
            check_refs(r, a.floor_id.as_deref(), &a.labels)?;
            a.modified_at = now;
            r.areas.insert(id.clone(), a.clone());
            Ok(a)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "area_registry_updated",
        json!({"action": "update", "area_id": area.area_id}),
    );
    s.conn.send(protocol::result(cmd.id, area_json(&area)));
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Area,
    Floor,
    Label,
}

fn delete(s: &mut Session, cmd: &Command, kind: Kind) -> Outcome {
    let (field, event, missing) = match kind {
        Kind::Area => ("area_id", "area_registry_updated", "Area ID doesn't exist"),
        Kind::Floor => (
            "floor_id",
            "floor_registry_updated",
            "Floor ID doesn't exist",
        ),
        Kind::Label => (
            "label_id",
            "label_registry_updated",
            "Label ID doesn't exist",
        ),
    };
    let f = Fields::new(&cmd.msg, &[field])?;
    let id = f.required_str(field)?.to_string();
    s.api
        .areas
        .edit(|r, _| {
            let found = match kind {
                Kind::Area => r.areas.remove(&id).is_some(),
                Kind::Floor => r.floors.remove(&id).is_some(),
                Kind::Label => r.labels.remove(&id).is_some(),
            };
            if !found {
                return Err(EditError::Invalid(missing.into()));
            }
            match kind {
                Kind::Area => {
                    for d in r.devices.values_mut() {
                        if d.area_id.as_deref() == Some(&id) {
                            d.area_id = None;
                        }
                    }
                    for e in r.entities.values_mut() {
                        if e.area_id.as_deref() == Some(&id) {
                            e.area_id = None;
                        }
                    }
                }
                Kind::Floor => {
                    for a in r.areas.values_mut() {
                        if a.floor_id.as_deref() == Some(&id) {
                            a.floor_id = None;
                        }
                    }
                }
                Kind::Label => {
                    r.areas
                        .values_mut()
                        .for_each(|a| a.labels.retain(|l| l != &id));
                    r.devices
                        .values_mut()
                        .for_each(|d| d.labels.retain(|l| l != &id));
                    r.entities
                        .values_mut()
                        .for_each(|e| e.labels.retain(|l| l != &id));
                }
            }
            Ok(())
        })
        .map_err(edit_failure)?;
    fire(s, event, json!({"action": "remove", field: id}));
    s.conn.send(protocol::result(cmd.id, json!("success")));
    Ok(())
}

fn floor_fields(msg: &Map<String, Value>, fl: &mut Floor) -> Result<(), Failure> {
    if let Some(v) = str_list(msg, "aliases")? {
        fl.aliases = v;
    }
    if let Some(v) = nullable_str(msg, "icon")? {
        fl.icon = v;
    }
    if let Some(v) = nullable_int(msg, "level")? {
        fl.level = v;
    }
    Ok(())
}

fn floor_create(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["name", "aliases", "icon", "level"])?;
    let name = f.required_str("name")?.to_string();
    let mut floor = Floor {
        floor_id: String::new(),
        name: name.clone(),
        level: None,
        icon: None,
        aliases: Vec::new(),
        created_at: 0.0,
        modified_at: 0.0,
    };
    floor_fields(&cmd.msg, &mut floor)?;
    let floor = s
        .api
        .areas
        .edit(|r, now| {
            let norm = normalize_name(&name);
            if r.floors.values().any(|x| normalize_name(&x.name) == norm) {
                return Err(name_in_use(&name));
            }
            floor.floor_id = unique_id(|id| r.floors.contains_key(id), &name);
            floor.created_at = now;
            floor.modified_at = now;
            r.floors.insert(floor.floor_id.clone(), floor.clone());
            Ok(floor)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "floor_registry_updated",
        json!({"action": "create", "floor_id": floor.floor_id}),
    );
    s.conn.send(protocol::result(cmd.id, floor_json(&floor)));
    Ok(())
}

fn floor_update(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["floor_id", "name", "aliases", "icon", "level"])?;
    let id = f.required_str("floor_id")?.to_string();
    let name = f.str("name")?.map(str::to_string);
    let msg = cmd.msg.clone();
    let floor = s
        .api
        .areas
        .edit(|r, now| {
            let Some(mut fl) = r.floors.get(&id).cloned() else {
                return Err(EditError::Invalid("Floor ID doesn't exist".into()));
            };
            if let Some(n) = &name {
                let norm = normalize_name(n);
                if r.floors
                    .values()
                    .any(|x| x.floor_id != id && normalize_name(&x.name) == norm)
                {
                    return Err(name_in_use(n));
                }
                fl.name = n.clone();
            }
            floor_fields(&msg, &mut fl).map_err(|f| EditError::Invalid(f.message))?;
            fl.modified_at = now;
            r.floors.insert(id.clone(), fl.clone());
            Ok(fl)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "floor_registry_updated",
        json!({"action": "update", "floor_id": floor.floor_id}),
    );
    s.conn.send(protocol::result(cmd.id, floor_json(&floor)));
    Ok(())
}

fn label_fields(msg: &Map<String, Value>, l: &mut Label) -> Result<(), Failure> {
    if let Some(v) = nullable_str(msg, "color")? {
        l.color = v;
    }
    if let Some(v) = nullable_str(msg, "icon")? {
        l.icon = v;
    }
    if let Some(v) = nullable_str(msg, "description")? {
        l.description = v;
    }
    Ok(())
}

fn label_create(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["name", "color", "icon", "description"])?;
    let name = f.required_str("name")?.to_string();
    let mut label = Label {
        label_id: String::new(),
        name: name.clone(),
        color: None,
        icon: None,
        description: None,
        created_at: 0.0,
        modified_at: 0.0,
    };
    label_fields(&cmd.msg, &mut label)?;
    let label = s
        .api
        .areas
        .edit(|r, now| {
            let norm = normalize_name(&name);
            if r.labels.values().any(|x| normalize_name(&x.name) == norm) {
                return Err(name_in_use(&name));
            }
            label.label_id = unique_id(|id| r.labels.contains_key(id), &name);
            label.created_at = now;
            label.modified_at = now;
            r.labels.insert(label.label_id.clone(), label.clone());
            Ok(label)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "label_registry_updated",
        json!({"action": "create", "label_id": label.label_id}),
    );
    s.conn.send(protocol::result(cmd.id, label_json(&label)));
    Ok(())
}

fn label_update(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(
        &cmd.msg,
        &["label_id", "name", "color", "icon", "description"],
    )?;
    let id = f.required_str("label_id")?.to_string();
    let name = f.str("name")?.map(str::to_string);
    let msg = cmd.msg.clone();
    let label = s
        .api
        .areas
        .edit(|r, now| {
            let Some(mut l) = r.labels.get(&id).cloned() else {
                return Err(EditError::Invalid("Label ID doesn't exist".into()));
            };
            if let Some(n) = &name {
                let norm = normalize_name(n);
                if r.labels
                    .values()
                    .any(|x| x.label_id != id && normalize_name(&x.name) == norm)
                {
                    return Err(name_in_use(n));
                }
                l.name = n.clone();
            }
            label_fields(&msg, &mut l).map_err(|f| EditError::Invalid(f.message))?;
            l.modified_at = now;
            r.labels.insert(id.clone(), l.clone());
            Ok(l)
        })
        .map_err(edit_failure)?;
    fire(
        s,
        "label_registry_updated",
        json!({"action": "update", "label_id": label.label_id}),
    );
    s.conn.send(protocol::result(cmd.id, label_json(&label)));
    Ok(())
}

fn check_area(r: &Registries, area: &Option<Option<String>>) -> Result<(), EditError> {
    if let Some(Some(a)) = area
        && !r.areas.contains_key(a)
    {
        return Err(EditError::Invalid(format!("Area ID {a} doesn't exist")));
    }
    Ok(())
}

fn device_update(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(
        &cmd.msg,
        &[
            "device_id",
            "area_id",
            "labels",
            "name_by_user",
            "disabled_by",
        ],
    )?;
    let id = f.required_str("device_id")?.to_string();
    if !matches!(cmd.msg.get("disabled_by"), None | Some(Value::Null)) {
        return Err(Failure::from(
            "Hearth does not disable devices @ data['disabled_by']".to_string(),
        ));
    }
    let area = nullable_str(&cmd.msg, "area_id")?;
    let labels = str_list(&cmd.msg, "labels")?;
    let name = nullable_str(&cmd.msg, "name_by_user")?;
    if s.api.store.device(&id).is_none() {
        return Err(Failure::new(ERR_NOT_FOUND, "Device not found"));
    }
    let changes = s
        .api
        .areas
        .edit(|r, _| {
            check_area(r, &area)?;
            check_refs(r, None, labels.as_deref().unwrap_or(&[]))?;
            let d = r.devices.entry(id.clone()).or_default();
            let mut changes = Map::new();
            update(&mut changes, "area_id", &mut d.area_id, area.clone());
            update(&mut changes, "labels", &mut d.labels, labels.clone());
            update(
                &mut changes,
                "name_by_user",
                &mut d.name_by_user,
                name.clone(),
            );
            Ok(changes)
        })
        .map_err(edit_failure)?;
    if !changes.is_empty() {
        fire(
            s,
            "device_registry_updated",
            json!({"action": "update", "device_id": id, "changes": changes}),
        );
    }
    let places = s.api.places();
    let snap = s.api.store.snapshot();
    let entry = snap
        .devices
        .iter()
        .find(|(d, _)| d.id == id)
        .map(|(d, _)| crate::api::websocket::registries::device_entry(d, &places))
        .unwrap_or(Value::Null);
    s.conn.send(protocol::result(cmd.id, entry));
    Ok(())
}

fn entity_update(s: &mut Session, cmd: &Command) -> Outcome {
    let f = Fields::new(&cmd.msg, &["entity_id", "area_id", "labels", "name"])?;
    let id = f.required_str("entity_id")?.to_string();
    let area = nullable_str(&cmd.msg, "area_id")?;
    let labels = str_list(&cmd.msg, "labels")?;
    let name = nullable_str(&cmd.msg, "name")?;
    let Some(spec) = s.api.store.spec(&id) else {
        return Err(Failure::new(ERR_NOT_FOUND, "Entity not found"));
    };
    let changes = s
        .api
        .areas
        .edit(|r, _| {
            check_area(r, &area)?;
            check_refs(r, None, labels.as_deref().unwrap_or(&[]))?;
            let e = r.entities.entry(id.clone()).or_default();
            let mut changes = Map::new();
            update(&mut changes, "area_id", &mut e.area_id, area.clone());
            update(&mut changes, "labels", &mut e.labels, labels.clone());
            update(&mut changes, "name", &mut e.name, name.clone());
            Ok(changes)
        })
        .map_err(edit_failure)?;
    if !changes.is_empty() {
        fire(
            s,
            "entity_registry_updated",
            json!({"action": "update", "entity_id": id, "changes": changes}),
        );
    }
    let places = s.api.places();
    let mut entry = crate::api::websocket::registries::entity_entry(&spec, &places);
    // HA's `extended_dict` adds these to the partial dict.
    if let Some(m) = entry.as_object_mut() {
        m.insert("aliases".into(), json!([]));
        m.insert("capabilities".into(), Value::Null);
        m.insert("device_class".into(), Value::Null);
        m.insert("original_device_class".into(), json!(spec.device_class));
        m.insert("original_icon".into(), json!(spec.icon));
    }
    s.conn
        .send(protocol::result(cmd.id, json!({"entity_entry": entry})));
    Ok(())
}

/// Sets `field` to `new` when given and different, keeping its old value
/// under `key` in `changes` (HA's `changes` of a registry update event).
fn update<T: PartialEq + serde::Serialize>(
    changes: &mut Map<String, Value>,
    key: &str,
    field: &mut T,
    new: Option<T>,
) {
    if let Some(new) = new
        && *field != new
    {
        changes.insert(key.into(), json!(field));
        *field = new;
    }
}
