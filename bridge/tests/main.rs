//! The bridge's integration tests, in one test binary.
//!
//! Each module below was its own `tests/*.rs` binary. Every one of them
//! linked the whole bridge (wasmtime, rumqttd, SQLite…), about 430 MB each
//! with debug info: twenty of them filled a CI machine's disk and spent
//! minutes linking. One binary links once; `cargo test --test integration
//! recorder::` still runs one module (see matklad, "Delete Cargo
//! Integration Tests", 2021).

mod common;

mod alerts;
mod api_tls;
mod areas;
mod bad_input;
mod broadlink;
mod broker_logs;
mod broker_tls;
mod browser;
mod calendar;
mod certs;
mod closed_loop;
mod control;
mod dashboard;
mod dashboard_energy;
mod demo_coworking;
mod demo_plugs;
mod demo_secure;
mod deploy;
mod detect;
mod discovery;
mod energy;
mod fault_broker;
mod fault_clock;
mod fault_flood;
mod fault_plugin_output;
mod fault_storage;
mod faults;
mod feeds;
mod feeds_https;
mod firmware_seal;
mod fuzz_corpus;
mod ha_history;
mod helpers;
mod history_states;
mod house;
mod house_demo;
mod influx;
mod input_limits;
mod ir_confirm;
mod lan_discovery;
mod late_readings;
mod log_forging;
mod memory;
mod meross;
mod metrics;
mod mirror;
mod node_removal;
mod nodered;
mod own_topics;
mod plan;
mod plugin_authoring;
mod plugins;
mod properties;
mod recorder;
mod refusals;
mod restore;
mod retained;
mod scaffold;
mod scripting;
mod secrets;
mod shelly_gen1;
mod shelly_pro4pm;
mod shelly_push;
mod signals;
mod simulate;
mod simulate_coworking;
mod simulate_solar;
mod solar_forecast;
mod takeover;
mod tasmota_strip;
mod templates;
mod twin;
mod two_bridges;
mod usage;
mod websocket;
