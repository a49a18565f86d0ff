//! `hearth demo --scenario house`: the MPC plugin heats the simulated house.
//!
//! The twin runs the house of `examples/scenarios/house.toml` (ISO 13790
//! 5R1C zone, 6 kW radiator behind a valve) as an ESP32 node `house` on
//! MQTT, and serves EDF Tempo colours (today red, tomorrow white, then
//! blue) and an Open-Meteo forecast over local HTTP; the bridge runs
//! `examples/house.toml` against them: its feed drivers poll the twin's
//! sources, the node's valve and sensor reach Home Assistant through
//! discovery, and the MPC plugin drives the valve.
//!
//! At the end the demo reports, from the twin's ground truth: the room's
//! range, the heating energy, its cost at the Tempo price in force, and how
//! long the MPC (rather than its fallback) was in command.

use super::DemoOptions;
use crate::app::Bridge;
use crate::broker::BrokerAddress;
use crate::config::Config;
use crate::feeds::tariff::TempoColour;
use crate::shutdown;
use crate::twin::batch::scenario::HouseSpec;
use crate::twin::feeds_sim::{FeedSim, FeedSimConfig, SyntheticWeather};
use crate::twin::house::{HouseOptions, HouseTwin, WeatherSample};
use std::sync::Arc;
use std::time::Duration;

/// The bridge's config; `hearth demo` fills in addresses.
pub const HOUSE_TOML: &str = include_str!("../../../examples/house.toml");
/// The house itself (zone, heater), shared with `hearth simulate`.
pub const HOUSE_SCENARIO_TOML: &str = include_str!("../../../examples/scenarios/house.toml");

/// What the demo measured on the twin.
#[derive(Debug, Clone, Default)]
pub struct HouseReport {
    pub simulated_h: f64,
    pub min_c: f64,
    pub max_c: f64,
    pub energy_kwh: f64,
    pub cost_eur: f64,
    /// Share of samples with the MPC (not its fallback) in command.
    pub mpc_share: f64,
}

impl std::fmt::Display for HouseReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "House demo summary ({:.1} simulated hours):",
            self.simulated_h
        )?;
        writeln!(
            f,
            "  room between {:.2} °C and {:.2} °C (comfort band 19–28 °C)",
            self.min_c, self.max_c
        )?;
        writeln!(
            f,
            "  heating {:.2} kWh, {:.2} € at the Tempo price in force",
            self.energy_kwh, self.cost_eur
        )?;
        write!(
            f,
            "  MPC in command {:.0} % of the time (else its fallback thermostat)",
            self.mpc_share * 100.0
        )
    }
}

/// The bridge config against the twin's broker and feed server.
pub fn house_config(
    broker: &BrokerAddress,
    feeds: &FeedSim,
    http_port: Option<u16>,
) -> anyhow::Result<Config> {
    let mut config = Config::from_toml(HOUSE_TOML, "examples/house.toml")?;
    config.mqtt.url = Some(format!("mqtt://{}:{}", broker.host, broker.port));
    if let Some(t) = &mut config.tariff {
        t.url = Some(feeds.couleur_tempo_url());
    }
    if let Some(w) = &mut config.weather {
        w.url = Some(feeds.open_meteo_url());
    }
    if let Some(p) = http_port {
        config.http.port = p;
    }
    Ok(config)
}

/// The `[house]` table of `examples/scenarios/house.toml`.
pub fn house_spec() -> anyhow::Result<HouseSpec> {
    let table: toml::Table = HOUSE_SCENARIO_TOML
        .parse()
        .map_err(|e| anyhow::anyhow!("examples/scenarios/house.toml: {e}"))?;
    let house = table
        .get("house")
        .cloned()
        .unwrap_or_else(|| toml::Value::Table(Default::default()));
    house
        .try_into()
        .map_err(|e| anyhow::anyhow!("examples/scenarios/house.toml [house]: {e}"))
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<HouseReport> {
    let clock = super::resumed_clock(&opts, HOUSE_TOML, "examples/house.toml")?;
    let broker = super::broker(&opts)?;
    let (twin_stop, twin_shutdown) = shutdown::channel();

    // One weather for the house and for the forecast it serves.
    let weather = SyntheticWeather {
        mean_c: 3.0,
        amplitude_c: 4.0,
        coldest_hour_utc: 5.0,
        peak_irradiance_w_m2: 250.0,
        sunrise_hour_utc: 7.5,
        sunset_hour_utc: 16.5,
    };
    let today = crate::feeds::tariff::europe_paris()
        .to_datetime(jiff::Timestamp::from_millisecond(clock.now_ms())?)
        .date();
    let mut feed_cfg = FeedSimConfig {
        weather,
        ..FeedSimConfig::default()
    };
    feed_cfg.colours.insert(today, TempoColour::Red);
    if let Ok(tomorrow) = today.tomorrow() {
        feed_cfg.colours.insert(tomorrow, TempoColour::White);
    }
    let feeds = FeedSim::spawn(clock, feed_cfg, twin_shutdown.clone())?;

    let house = house_spec()?;
    let twin = HouseTwin::start(
        clock,
        &broker.host,
        broker.port,
        HouseOptions {
            zone: house.zone,
            heater_nominal_w: house.heater_w,
            emitter_time_constant_s: house.emitter_time_constant_s,
            initial_c: house.initial_temperature_c,
            internal_gains_w: house.internal_gains_w,
            solar_aperture_m2: house.solar_aperture_m2,
            weather: Arc::new(move |t: i64| WeatherSample {
                outdoor_c: weather.temperature_c(t),
                ghi_w_per_m2: weather.irradiance_hour_mean(t - t.rem_euclid(3_600_000) + 3_600_000),
            }),
            // A reading a minute, as the real node sends: at high speeds
            // the default 10 s would be milliseconds of wall time.
            telemetry_interval_s: 60,
            ..HouseOptions::default()
        },
        twin_shutdown,
    )?;

    let mut config = house_config(&broker, &feeds, opts.http_port)?;
    config.data_dir = Some(opts.data_dir.clone());
    tracing::info!(
        "demo: house at {:.1} °C, Tempo today red (HP 06:00–22:00 at 0.6468 €/kWh), MPC over 24 h, {}× real time",
        twin.air_c(),
        opts.speed
    );
    let bridge = Bridge::start(config, clock).await?;
    tracing::info!(
        "point Home Assistant's MQTT integration at {} to see the house, the tariff, the forecast and the MPC's plan",
        bridge.broker
    );
    let store = bridge.store.clone();

    let started_ms = clock.now_ms();
    let mut report = HouseReport {
        min_c: f64::INFINITY,
        max_c: f64::NEG_INFINITY,
        ..HouseReport::default()
    };
    let (mut samples, mut mpc_samples) = (0u64, 0u64);
    let mut last_ms = started_ms;
    let mut next_log = started_ms + 3_600_000;
    let mut pacer = super::Pacer::new(opts.run_for);
    while pacer.tick(Duration::from_millis(50)).await {
        let s = twin.snapshot();
        let now = clock.now_ms();
        let price = store
            .get("sensor.tariff_price")
            .and_then(|p| p.state.parse::<f64>().ok())
            .unwrap_or(0.0);
        report.cost_eur += s.heating_w * (now - last_ms) as f64 / 3.6e9 * price;
        last_ms = now;
        let mode = store.get("sensor.plugin_mpc_mode").map(|m| m.state);
        let colour = store.get("sensor.tempo_today").map(|m| m.state);
        samples += 1;
        mpc_samples += u64::from(mode.as_deref() == Some("mpc"));
        // The first hour is the bridge and the feeds settling in.
        if now - started_ms >= 3_600_000 {
            report.min_c = report.min_c.min(s.air_c);
            report.max_c = report.max_c.max(s.air_c);
        }
        if now >= next_log {
            next_log += 3_600_000;
            tracing::info!(
                "demo t+{:.0} h: room {:.2} °C, outside {:.1} °C, valve {:.0} %, heating {:.0} W, Tempo {} at {price:.4} €/kWh, controller {}",
                (now - started_ms) as f64 / 3.6e6,
                s.air_c,
                s.weather.outdoor_c,
                s.valve_percent,
                s.heating_w,
                colour.as_deref().unwrap_or("unknown"),
                mode.as_deref().unwrap_or("starting")
            );
        }
    }
    report.simulated_h = (clock.now_ms() - started_ms) as f64 / 3.6e6;
    report.energy_kwh = twin.energy_wh() / 1000.0;
    report.mpc_share = if samples > 0 {
        mpc_samples as f64 / samples as f64
    } else {
        0.0
    };
    if !report.min_c.is_finite() {
        report.min_c = twin.air_c();
        report.max_c = twin.air_c();
    }
    bridge.stop().await;
    twin_stop.trigger();
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_house_is_the_simulated_house() {
        let h = house_spec().unwrap();
        assert_eq!(h.heater_w, 6000.0);
        assert_eq!(h.emitter_time_constant_s, 1200.0);
        assert_eq!(h.zone.floor_area_m2, 100.0);
        let cfg = Config::from_toml(HOUSE_TOML, "examples/house.toml").unwrap();
        assert_eq!(cfg.plugins[0].wasm, "builtin:mpc");
    }
}
