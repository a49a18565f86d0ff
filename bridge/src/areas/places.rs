//! A read-only view of the registries joined with the entity store's
//! devices and entities: the look-ups of HA's template functions
//! (`area_id()`, `area_entities()`, `floor_areas()`, `label_entities()`,
//! `device_attr()`, …, `homeassistant/helpers/template.py`) and the target
//! resolution of service calls (`async_extract_referenced_entity_ids`,
//! `homeassistant/helpers/service.py`).

use super::{Registries, normalize_name};
use crate::entity::store::Snapshot;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// What a device is, from the store.
#[derive(Debug, Clone, Default)]
pub struct DeviceFacts {
    pub name: String,
    pub manufacturer: String,
    pub model: String,
    pub sw_version: Option<String>,
    pub via_device: Option<String>,
}

/// What an entity is, from the store.
#[derive(Debug, Clone, Default)]
pub struct EntityFacts {
    pub device_id: String,
    /// `diagnostic` or `config`: not targeted by area, device or label (HA).
    pub entity_category: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Places {
    pub regs: Registries,
    pub devices: BTreeMap<String, DeviceFacts>,
    pub entities: BTreeMap<String, EntityFacts>,
}

/// The result of resolving a call's target (HA's `SelectedEntities`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selected {
    /// Named in `entity_id`.
    pub referenced: BTreeSet<String>,
    /// Through a device, area, floor or label.
    pub indirectly_referenced: BTreeSet<String>,
    pub missing_devices: BTreeSet<String>,
    pub missing_areas: BTreeSet<String>,
    pub missing_floors: BTreeSet<String>,
    pub missing_labels: BTreeSet<String>,
}

impl Selected {
    /// HA's `log_missing` wording: `floors f, areas a, devices d, labels l`.
    pub fn missing(&self) -> Option<String> {
        let parts: Vec<String> = [
            ("floors", &self.missing_floors),
            ("areas", &self.missing_areas),
            ("devices", &self.missing_devices),
            ("labels", &self.missing_labels),
        ]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(k, s)| format!("{k} {}", s.iter().cloned().collect::<Vec<_>>().join(", ")))
        .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// A call's target keys (HA's `TargetSelection`).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub entity_ids: Vec<String>,
    pub device_ids: Vec<String>,
    pub area_ids: Vec<String>,
    pub floor_ids: Vec<String>,
    pub label_ids: Vec<String>,
}

impl Places {
    pub fn new(regs: Registries, snapshot: &Snapshot) -> Places {
        Places {
            regs,
            devices: snapshot
                .devices
                .iter()
                .map(|(d, _)| {
                    (
                        d.id.clone(),
                        DeviceFacts {
                            name: d.name.clone(),
                            manufacturer: d.manufacturer.clone(),
                            model: d.model.clone(),
                            sw_version: d.sw_version.clone(),
                            via_device: d.via_device.clone(),
                        },
                    )
                })
                .collect(),
            entities: snapshot
                .entities
                .iter()
                .map(|(s, _)| {
                    (
                        s.entity_id.clone(),
                        EntityFacts {
                            device_id: s.device_id.clone(),
                            entity_category: s.entity_category.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// An entity's own area.
    pub fn entity_area(&self, entity_id: &str) -> Option<&str> {
        self.regs.entities.get(entity_id)?.area_id.as_deref()
    }

    pub fn device_area(&self, device_id: &str) -> Option<&str> {
        self.regs.devices.get(device_id)?.area_id.as_deref()
    }

    /// The area HA shows for an entity: its own, else its device's.
    pub fn effective_area(&self, entity_id: &str) -> Option<&str> {
        self.entity_area(entity_id).or_else(|| {
            let d = &self.entities.get(entity_id)?.device_id;
            self.device_area(d)
        })
    }

    pub fn entity_labels(&self, entity_id: &str) -> Vec<String> {
        self.regs
            .entities
            .get(entity_id)
            .map(|e| e.labels.clone())
            .unwrap_or_default()
    }

    pub fn device_labels(&self, device_id: &str) -> Vec<String> {
        self.regs
            .devices
            .get(device_id)
            .map(|d| d.labels.clone())
            .unwrap_or_default()
    }

    fn device_of(&self, entity_id: &str) -> Option<&str> {
        self.entities.get(entity_id).map(|e| e.device_id.as_str())
    }

    fn is_entity_id(s: &str) -> bool {
        s.split_once('.')
            .is_some_and(|(d, o)| !d.is_empty() && !o.is_empty() && !o.contains('.'))
    }

    // ---- areas ----

    pub fn area_ids(&self) -> Vec<String> {
        self.regs.areas.keys().cloned().collect()
    }

    fn area_by_name(&self, name: &str) -> Option<&str> {
        let n = normalize_name(name);
        self.regs
            .areas
            .values()
            .find(|a| normalize_name(&a.name) == n)
            .map(|a| a.area_id.as_str())
    }

    /// An area id given its id or its name.
    fn resolve_area(&self, id_or_name: &str) -> Option<String> {
        if self.regs.areas.contains_key(id_or_name) {
            return Some(id_or_name.into());
        }
        self.area_by_name(id_or_name).map(str::to_string)
    }

    /// HA's `area_id(lookup)`: an area name, an entity id or a device id.
    pub fn area_id_of(&self, lookup: &str) -> Option<String> {
        if let Some(a) = self.area_by_name(lookup) {
            return Some(a.into());
        }
        if Self::is_entity_id(lookup)
            && (self.entities.contains_key(lookup) || self.regs.entities.contains_key(lookup))
        {
            return self.effective_area(lookup).map(str::to_string);
        }
        self.device_area(lookup).map(str::to_string)
    }

    /// HA's `area_name(lookup)`: an area id, an entity id or a device id.
    pub fn area_name_of(&self, lookup: &str) -> Option<String> {
        let name = |id: &str| self.regs.areas.get(id).map(|a| a.name.clone());
        if let Some(n) = name(lookup) {
            return Some(n);
        }
        if Self::is_entity_id(lookup) {
            return self.effective_area(lookup).and_then(name);
        }
        self.device_area(lookup).and_then(name)
    }

    /// HA's `area_entities`: entities placed in the area, and entities of
    /// its devices that have no area of their own.
    pub fn area_entities(&self, id_or_name: &str) -> Vec<String> {
        let Some(area) = self.resolve_area(id_or_name) else {
            return Vec::new();
        };
        let mut out: Vec<String> = self
            .regs
            .entities
            .iter()
            .filter(|(_, e)| e.area_id.as_deref() == Some(&area))
            .map(|(id, _)| id.clone())
            .collect();
        for (id, facts) in &self.entities {
            if self.entity_area(id).is_none()
                && self.device_area(&facts.device_id) == Some(&area)
                && !out.contains(id)
            {
                out.push(id.clone());
            }
        }
        out
    }

    /// HA's `area_devices`.
    pub fn area_devices(&self, id_or_name: &str) -> Vec<String> {
        let Some(area) = self.resolve_area(id_or_name) else {
            return Vec::new();
        };
        self.regs
            .devices
            .iter()
            .filter(|(_, d)| d.area_id.as_deref() == Some(&area))
            .map(|(id, _)| id.clone())
            .collect()
    }

    // ---- floors ----

    pub fn floor_ids(&self) -> Vec<String> {
        self.regs.floors.keys().cloned().collect()
    }

    fn resolve_floor(&self, id_or_name: &str) -> Option<String> {
        if self.regs.floors.contains_key(id_or_name) {
            return Some(id_or_name.into());
        }
        let n = normalize_name(id_or_name);
        self.regs
            .floors
            .values()
            .find(|f| normalize_name(&f.name) == n)
            .map(|f| f.floor_id.clone())
    }

    /// HA's `floor_id(lookup)`: a floor name, or anything `area_id` takes.
    pub fn floor_id_of(&self, lookup: &str) -> Option<String> {
        let n = normalize_name(lookup);
        if let Some(f) = self
            .regs
            .floors
            .values()
            .find(|f| normalize_name(&f.name) == n)
        {
            return Some(f.floor_id.clone());
        }
        let area = self.area_id_of(lookup)?;
        self.regs.areas.get(&area)?.floor_id.clone()
    }

    /// HA's `floor_name(lookup)`: a floor id, an area id, or anything
    /// `area_id` takes.
    pub fn floor_name_of(&self, lookup: &str) -> Option<String> {
        if let Some(f) = self.regs.floors.get(lookup) {
            return Some(f.name.clone());
        }
        let area = if self.regs.areas.contains_key(lookup) {
            lookup.to_string()
        } else {
            self.area_id_of(lookup)?
        };
        let floor = self.regs.areas.get(&area)?.floor_id.as_ref()?;
        self.regs.floors.get(floor).map(|f| f.name.clone())
    }

    /// HA's `floor_areas`.
    pub fn floor_areas(&self, id_or_name: &str) -> Vec<String> {
        let Some(floor) = self.resolve_floor(id_or_name) else {
            return Vec::new();
        };
        self.regs
            .areas
            .values()
            .filter(|a| a.floor_id.as_deref() == Some(&floor))
            .map(|a| a.area_id.clone())
            .collect()
    }

    /// HA's `floor_entities`.
    pub fn floor_entities(&self, id_or_name: &str) -> Vec<String> {
        self.floor_areas(id_or_name)
            .iter()
            .flat_map(|a| self.area_entities(a))
            .collect()
    }

    // ---- labels ----

    pub fn label_ids(&self) -> Vec<String> {
        self.regs.labels.keys().cloned().collect()
    }

    fn resolve_label(&self, id_or_name: &str) -> Option<String> {
        if self.regs.labels.contains_key(id_or_name) {
            return Some(id_or_name.into());
        }
        self.label_id_of(id_or_name)
    }

    /// HA's `labels(lookup)`: an entity's, a device's or an area's labels.
    pub fn labels_of(&self, lookup: &str) -> Vec<String> {
        if Self::is_entity_id(lookup) {
            return self.entity_labels(lookup);
        }
        if self.devices.contains_key(lookup) || self.regs.devices.contains_key(lookup) {
            return self.device_labels(lookup);
        }
        if let Some(area) = self.resolve_area(lookup) {
            return self.regs.areas[&area].labels.clone();
        }
        Vec::new()
    }

    /// HA's `label_id(name)`.
    pub fn label_id_of(&self, name: &str) -> Option<String> {
        let n = normalize_name(name);
        self.regs
            .labels
            .values()
            .find(|l| normalize_name(&l.name) == n)
            .map(|l| l.label_id.clone())
    }

    /// HA's `label_name(id)`.
    pub fn label_name_of(&self, id: &str) -> Option<String> {
        self.regs.labels.get(id).map(|l| l.name.clone())
    }

    pub fn label_entities(&self, id_or_name: &str) -> Vec<String> {
        let Some(label) = self.resolve_label(id_or_name) else {
            return Vec::new();
        };
        self.regs
            .entities
            .iter()
            .filter(|(_, e)| e.labels.contains(&label))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn label_devices(&self, id_or_name: &str) -> Vec<String> {
        let Some(label) = self.resolve_label(id_or_name) else {
            return Vec::new();
        };
        self.regs
            .devices
            .iter()
            .filter(|(_, d)| d.labels.contains(&label))
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn label_areas(&self, id_or_name: &str) -> Vec<String> {
        let Some(label) = self.resolve_label(id_or_name) else {
            return Vec::new();
        };
        self.regs
            .areas
            .values()
            .filter(|a| a.labels.contains(&label))
            .map(|a| a.area_id.clone())
            .collect()
    }

    // ---- devices ----

    /// HA's `device_id(entity_id_or_device_name)`.
    pub fn device_id_of(&self, lookup: &str) -> Option<String> {
        if Self::is_entity_id(lookup)
            && let Some(d) = self.device_of(lookup)
        {
            return Some(d.into());
        }
        let n = normalize_name(lookup);
        self.devices
            .iter()
            .find(|(id, d)| {
                let user = self
                    .regs
                    .devices
                    .get(*id)
                    .and_then(|x| x.name_by_user.as_deref());
                user.is_some_and(|u| normalize_name(u) == n) || normalize_name(&d.name) == n
            })
            .map(|(id, _)| id.clone())
    }

    /// HA's `device_entities(device_id)`.
    pub fn device_entities(&self, device_id: &str) -> Vec<String> {
        self.entities
            .iter()
            .filter(|(_, e)| e.device_id == device_id)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// HA's `device_attr(device_or_entity_id, attr_name)`.
    pub fn device_attr(&self, lookup: &str, attr: &str) -> Option<Value> {
        let id = if Self::is_entity_id(lookup) {
            self.device_of(lookup)?.to_string()
        } else {
            lookup.to_string()
        };
        let d = self.devices.get(&id)?;
        let assign = self.regs.devices.get(&id).cloned().unwrap_or_default();
        Some(match attr {
            "id" => json!(id),
            "name" => json!(d.name),
            "name_by_user" => json!(assign.name_by_user),
            "manufacturer" => json!(d.manufacturer),
            "model" => json!(d.model),
            "sw_version" => json!(d.sw_version),
            "via_device_id" => json!(d.via_device),
            "area_id" => json!(assign.area_id),
            "labels" => json!(assign.labels),
            "identifiers" => json!([["mqtt", crate::discovery::payload::device_identifier(&id)]]),
            _ => return None,
        })
    }

    /// HA's `async_extract_referenced_entity_ids`: entities named, and
    /// those reached through devices, areas, floors and labels (not
    /// `diagnostic`/`config` ones; a device's entity with its own area is
    /// reached through that area only).
    pub fn select(&self, t: &Target) -> Selected {
        let mut s = Selected {
            referenced: t.entity_ids.iter().cloned().collect(),
            ..Selected::default()
        };
        let primary = |id: &str| {
            self.entities
                .get(id)
                .is_some_and(|e| e.entity_category.is_none())
        };
        for f in &t.floor_ids {
            if !self.regs.floors.contains_key(f) {
                s.missing_floors.insert(f.clone());
            }
        }
        for a in &t.area_ids {
            if !self.regs.areas.contains_key(a) {
                s.missing_areas.insert(a.clone());
            }
        }
        for d in &t.device_ids {
            if !self.devices.contains_key(d) {
                s.missing_devices.insert(d.clone());
            }
        }
        let mut areas: BTreeSet<String> = BTreeSet::new();
        let mut devices: BTreeSet<String> = t.device_ids.iter().cloned().collect();
        for l in &t.label_ids {
            if !self.regs.labels.contains_key(l) {
                s.missing_labels.insert(l.clone());
            }
            for (id, e) in &self.regs.entities {
                if e.labels.contains(l) && primary(id) {
                    s.indirectly_referenced.insert(id.clone());
                }
            }
            for (id, d) in &self.regs.devices {
                if d.labels.contains(l) {
                    devices.insert(id.clone());
                }
            }
            for a in self.regs.areas.values() {
                if a.labels.contains(l) {
                    areas.insert(a.area_id.clone());
                }
            }
        }
        for f in &t.floor_ids {
            for a in self.regs.areas.values() {
                if a.floor_id.as_deref() == Some(f) {
                    areas.insert(a.area_id.clone());
                }
            }
        }
        areas.extend(t.area_ids.iter().cloned());
        // Entities of devices named (or labelled).
        for (id, e) in &self.entities {
            if devices.contains(&e.device_id) && primary(id) {
                s.indirectly_referenced.insert(id.clone());
            }
        }
        // Entities placed in an area, and those of devices in it that have
        // no area of their own.
        for (id, e) in &self.entities {
            if !primary(id) {
                continue;
            }
            match self.entity_area(id) {
                Some(a) if areas.contains(a) => {
                    s.indirectly_referenced.insert(id.clone());
                }
                Some(_) => {}
                None => {
                    if self
                        .device_area(&e.device_id)
                        .is_some_and(|a| areas.contains(a))
                    {
                        s.indirectly_referenced.insert(id.clone());
                    }
                }
            }
        }
        s
    }
}

impl Places {
    /// The entities a call of a `domain` service acts on: those named in
    /// `entity_id` (as given), then those of `domain` reached through
    /// devices, areas, floors and labels. A device, area, floor or label
    /// that does not exist is refused (HA only logs it: "Referenced areas x
    /// are missing or not currently available"; Hearth answers it, as it
    /// answers a call that targets nothing).
    pub fn resolve(&self, domain: &str, target: &Target) -> Result<Vec<String>, String> {
        let selected = self.select(target);
        if let Some(missing) = selected.missing() {
            return Err(format!(
                "Referenced {missing} are missing or not currently available"
            ));
        }
        let mut out = target.entity_ids.clone();
        for id in selected.indirectly_referenced {
            if crate::entity::domain_of(&id) == domain && !out.contains(&id) {
                out.push(id);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Area, DeviceAssign, EntityAssign};
    use super::*;

    fn places() -> Places {
        let mut p = Places::default();
        for (e, d) in [
            ("switch.a_relay", "a"),
            ("sensor.a_power", "a"),
            ("sensor.a_rssi", "a"),
            ("switch.b_relay", "b"),
        ] {
            p.entities.insert(
                e.into(),
                EntityFacts {
                    device_id: d.into(),
                    entity_category: (e == "sensor.a_rssi").then(|| "diagnostic".into()),
                },
            );
        }
        for d in ["a", "b"] {
            p.devices.insert(d.into(), DeviceFacts::default());
        }
        for (id, name) in [("office", "Office"), ("hall", "Hall")] {
            p.regs.areas.insert(
                id.into(),
                Area {
                    area_id: id.into(),
                    name: name.into(),
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
        }
        p.regs.devices.insert(
            "a".into(),
            DeviceAssign {
                area_id: Some("office".into()),
                ..Default::default()
            },
        );
        // The power sensor of device a is placed in the hall.
        p.regs.entities.insert(
            "sensor.a_power".into(),
            EntityAssign {
                area_id: Some("hall".into()),
                ..Default::default()
            },
        );
        p
    }

    #[test]
    fn an_entity_with_its_own_area_is_not_in_its_devices_area() {
        let p = places();
        let sel = p.select(&Target {
            area_ids: vec!["office".into()],
            ..Default::default()
        });
        // Not the diagnostic rssi, not the power sensor placed in the hall.
        assert_eq!(
            sel.indirectly_referenced.into_iter().collect::<Vec<_>>(),
            vec!["switch.a_relay".to_string()]
        );
        let sel = p.select(&Target {
            area_ids: vec!["hall".into(), "nowhere".into()],
            ..Default::default()
        });
        assert_eq!(
            sel.indirectly_referenced.into_iter().collect::<Vec<_>>(),
            vec!["sensor.a_power".to_string()]
        );
        assert_eq!(sel.missing_areas.len(), 1);
        assert_eq!(
            p.area_entities("Office"),
            vec!["sensor.a_rssi", "switch.a_relay"]
        );
        assert_eq!(p.area_name_of("sensor.a_power").as_deref(), Some("Hall"));
        assert_eq!(p.area_id_of("switch.a_relay").as_deref(), Some("office"));
    }
}
