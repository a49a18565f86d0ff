//! Test fixtures shared by the entity modules' unit tests: one device and
//! the server-room AC's climate spec, so each test module does not build
//! its own copy.

use super::{ClimateSpec, Component, Device, EntitySpec, EntityStore};
use crate::clock::Clock;
use std::sync::Arc;

/// A device named after its id.
pub fn device(id: &str) -> Device {
    Device {
        id: id.into(),
        name: id.into(),
        manufacturer: "test".into(),
        model: "test".into(),
        sw_version: None,
        via_device: None,
    }
}

/// A store on the real clock holding device `id` (driver `t`).
pub fn store_with_device(id: &str) -> Arc<EntityStore> {
    let store = EntityStore::new(Clock::real());
    store.upsert_device("t", device(id)).unwrap();
    store
}

/// `climate.ac_climate`: modes off/cool, 16–30 °C, 0.5 °C step (the demo
/// AC's envelope).
pub fn ac_climate() -> EntitySpec {
    let mut spec = EntitySpec::new("ac", "climate", Component::Climate);
    spec.climate = Some(ClimateSpec {
        modes: vec!["off".into(), "cool".into()],
        min_temp: 16.0,
        max_temp: 30.0,
        temp_step: 0.5,
    });
    spec
}
