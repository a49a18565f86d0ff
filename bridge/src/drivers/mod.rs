//! Native drivers: each speaks one device's own protocol, writes what it
//! reads into the entity store and executes the service calls the router
//! hands it. A new driver is a new module here, started from [`start`].
//!
//! - [`esp32_node`]: Hearth sensor nodes over MQTT (`firmware/node-core` payloads);
//!   [`retained`] asks the broker for a retained message (a node's announce).
//! - [`tasmota_ir`]: air conditioners behind a Tasmota IR bridge (`IRhvac`);
//!   [`ir_confirm`] checks on the AC's power meter that each IR command was
//!   followed (re-sends, then a problem entity and an alert).
//! - [`shelly`]: Shelly Gen2+ plugs over HTTP JSON-RPC, with MQTT push
//!   (`NotifyStatus`) when `mqtt_prefix` is set; [`shelly_rpc`]: the Gen2
//!   frame and status parsers it shares with the Pro 4PM.
//! - [`broadlink`]: air conditioners behind a Broadlink RM4 IR gateway (its
//!   UDP protocol, SmartIR code files); [`ir_climate`]: what IR AC drivers share.
//! - [`meross`]: Meross metered plugs (MSS310 family) over their signed local
//!   HTTP API.
//! - [`tasmota_strip`]: Tasmota multi-relay metered strips over MQTT
//!   (`POWER<n>`, `ENERGY` per channel or one total).
//! - [`shelly_pro4pm`]: Shelly Pro 4PM metered 4-relay strips over Gen2 RPC
//!   (HTTP polling or MQTT `NotifyStatus`).
//! - [`shelly_gen1`]: Shelly Gen1 (Plug S, 1PM, EM) over HTTP `/status`
//!   and the `shellies/<id>/…` MQTT push, energy kept monotonic.
//! - [`shelly_em`]: Shelly Pro 3EM / Pro EM energy meters (grid and PV
//!   production clamps) over Gen2 RPC, HTTP polling.
//! - [`helpers`]: Hearth-owned `select` and `number` entities (`[[select]]`,
//!   `[[number]]`), HA's input_select/input_number over MQTT discovery.
//! - [`crate::feeds::tariff_driver`] and [`crate::feeds::weather_driver`]:
//!   the `[tariff]` and `[weather]` feeds (HTTP polling into entities and
//!   the plugins' forecast series); they live beside their parsers, as does
//!   [`crate::feeds::calendar`] (`[[calendar]]`: opening hours from .ics).

pub mod broadlink;
pub mod esp32_node;
pub mod helpers;
pub mod http_client;
pub mod ir_climate;
pub mod ir_confirm;
pub mod meross;
pub mod retained;
pub mod shelly;
pub mod shelly_em;
pub mod shelly_gen1;
pub mod shelly_pro4pm;
pub mod shelly_rpc;
pub mod tasmota_ir;
pub mod tasmota_strip;

use crate::broker::MqttLink;
use crate::clock::Clock;
use crate::config::Config;
use crate::entity::{EntityStore, ServiceRouter};
use crate::shutdown::Shutdown;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// What every driver is given; drivers never call each other.
#[derive(Clone)]
pub struct DriverContext {
    pub store: Arc<EntityStore>,
    pub router: Arc<ServiceRouter>,
    pub link: MqttLink,
    /// Where the broker is, for a driver that needs a connection of its
    /// own for a moment (`retained`).
    pub broker: crate::broker::BrokerAddress,
    pub clock: Clock,
    pub shutdown: Shutdown,
    /// Forecast series plugins read; the feeds publish into it.
    pub forecasts: Arc<crate::forecast::Forecasts>,
    /// Where a driver raises its alerts (an AC not following its IR
    /// commands); `None` where no hub runs (tools, unit tests).
    pub alerts: Option<Arc<crate::alerts::AlertHub>>,
}

pub use crate::broker::excerpt;

/// A polled device is offline (its entities unavailable) after this many
/// failed requests in a row: one dropped request on Wi-Fi is not an
/// outage. Shared by the Shelly (Gen1, Gen2, EM, Pro 4PM) and Meross
/// drivers.
pub const FAILURES_BEFORE_OFFLINE: u32 = 3;

/// Starts every driver the config asks for.
pub fn start(config: &Config, ctx: &DriverContext) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    // Each driver's MQTT messages are counted under its name (`GET /metrics`).
    let labelled = |name: &'static str| DriverContext {
        link: ctx.link.for_driver(name),
        ..ctx.clone()
    };
    if config.esp32.enabled {
        tasks.push(esp32_node::spawn(&labelled("esp32_node"))?);
    }
    for ac in &config.ir_ac {
        tasks.push(tasmota_ir::spawn(ac.clone(), &labelled("tasmota_ir"))?);
    }
    for ac in &config.broadlink {
        tasks.push(broadlink::spawn(ac.clone(), &labelled("broadlink"))?);
    }
    for plug in &config.shelly {
        tasks.push(shelly::spawn(plug.clone(), &labelled("shelly"))?);
    }
    for plug in &config.meross {
        tasks.push(meross::spawn(plug.clone(), &labelled("meross"))?);
    }
    for strip in &config.tasmota_strip {
        tasks.push(tasmota_strip::spawn(
            strip.clone(),
            &labelled("tasmota_strip"),
        )?);
    }
    for strip in &config.shelly_pro4pm {
        tasks.push(shelly_pro4pm::spawn(
            strip.clone(),
            &labelled("shelly_pro4pm"),
        )?);
    }
    for meter in &config.shelly_em {
        tasks.push(shelly_em::spawn(meter.clone(), &labelled("shelly_em"))?);
    }
    for plug in &config.shelly_gen1 {
        tasks.push(shelly_gen1::spawn(plug.clone(), &labelled("shelly_gen1"))?);
    }
    if !config.select.is_empty() || !config.number.is_empty() {
        tasks.push(helpers::spawn(
            &config.select,
            &config.number,
            &labelled("helpers"),
        )?);
    }
    if let Some(tariff) = &config.tariff {
        tasks.push(crate::feeds::tariff_driver::spawn(tariff.clone(), ctx)?);
    }
    if let Some(weather) = &config.weather {
        let arrays = config
            .solar
            .as_ref()
            .map_or_else(Vec::new, |s| s.arrays.clone());
        tasks.push(crate::feeds::weather_driver::spawn_with_pv(
            weather.clone(),
            arrays,
            ctx,
        )?);
    }
    if let Some(solar) = &config.solar {
        tasks.extend(crate::solar::forecast::spawn_base_load(solar.clone(), ctx)?);
    }
    for calendar in &config.calendar {
        tasks.push(crate::feeds::calendar::spawn(calendar.clone(), ctx)?);
    }
    Ok(tasks)
}
