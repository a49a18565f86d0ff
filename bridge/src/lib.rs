//! # Hearth
//!
//! A bridge that makes devices and WebAssembly controllers first-class
//! citizens of Home Assistant. The map (DESIGN.md §1–§3):
//!
//! ```text
//! device ──(its protocol)──> drivers ──> entity store ──> discovery ──> MQTT ──> Home Assistant
//!                                          │ state_changed
//!                                          └──> plugin host ──> plugin (WASM) ──> service calls
//! HA command topics / plugins ──> service router ──> safety envelope ──> drivers ──> device
//! ```
//!
//! - [`entity`]: devices, entities, states; the [`entity::EntityStore`] (one
//!   owner of state), the [`entity::ServiceRouter`] and the per-entity
//!   [`entity::SafetyEnvelope`].
//! - [`broker`]: the embedded MQTT broker (rumqttd) and the client link
//!   (rumqttc) every part shares.
//! - [`discovery`]: publishes Home Assistant MQTT discovery, availability and
//!   states; turns HA's command topics into service calls.
//! - [`plugins`]: the wasmtime host for controller plugins (`wit/`).
//! - [`drivers`]: native drivers (ESP32 sensor nodes, Tasmota IR gateways,
//!   Shelly Gen2 plugs).
//! - [`lan`]: devices found on the network (mDNS, Broadlink discovery),
//!   listed as pending and adopted into the config on request.
//! - [`twin`]: the digital twin: simulated devices speaking the real protocols.
//! - [`solar`]: the PV production model (PVWatts v5) and the `pv-power` /
//!   `base-load` forecasts.
//! - [`app`]: wires the parts into a running bridge; [`config`] is its file;
//!   [`demo`] runs the bundled server-room scenario against the twin.
//! - [`dashboard`]: the built-in web dashboard (static files embedded in the
//!   binary, served at `/` on the API's port; a client of the WebSocket API).
//! - [`logging`]: every log field escaped and capped; per-source rate
//!   limiting of warnings about bad input.
//! - [`metrics`]: `GET /metrics` (Prometheus text / OpenMetrics): what the
//!   parts count, read at scrape time where they already keep it.
//! - [`clock`] and [`shutdown`]: the shared clock (simulated under the twin)
//!   and the one shutdown signal every task obeys.

pub mod alerts;
pub mod api;
pub mod app;
pub mod areas;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod demo;
pub mod detect;
pub mod discovery;
pub mod drivers;
pub mod energy;
pub mod entity;
pub mod feeds;
pub mod forecast;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod lan;
pub mod logging;
pub mod metrics;
pub mod nodered;
pub mod plugins;
pub mod recorder;
pub mod secret;
pub mod security;
pub mod shutdown;
pub mod slug;
pub mod solar;
pub mod template;
pub mod twin;
pub mod usage;
