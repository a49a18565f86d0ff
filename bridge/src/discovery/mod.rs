//! Home Assistant MQTT discovery (DESIGN.md §3): every device and entity in
//! the store appears in HA with availability and live states, and HA's
//! command topics come back as service calls.
//!
//! - [`topics`]: Hearth's topic layout.
//! - [`units`]: HA's table of units and state classes per device class.
//! - [`payload`]: discovery configs, device-based or per-entity.
//! - [`publisher`]: keeps HA's view equal to the store's.
//! - [`commands`]: `hearth/<device>/<entity>/set` → service router.
//! - [`stale`]: clears retained configs an earlier run left behind.
//! - [`mirror`]: mirrors foreign discovery configs (`[mirror]`) into the
//!   store, read-only.
//! - [`guard`]: publishes the bridge's state, availability and states again
//!   when another client overwrites them.

pub mod commands;
pub mod guard;
pub mod mirror;
pub mod payload;
pub mod publisher;
pub mod stale;
pub mod topics;
pub mod units;

pub use topics::Topics;

/// Device-based discovery (`homeassistant/device/<id>/config`, HA ≥ 2024.11)
/// or one config per entity (`homeassistant/<component>/<node>/<object>/config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscoveryMode {
    #[default]
    Device,
    Entity,
}

/// Where Hearth publishes and what HA listens to.
#[derive(Debug, Clone)]
pub struct DiscoveryOptions {
    pub topics: Topics,
    pub mode: DiscoveryMode,
}
