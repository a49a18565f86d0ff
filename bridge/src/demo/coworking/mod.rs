//! `hearth demo --scenario coworking`: the strip balancer shares two
//! metered strips among a winter morning's laptops, live.
//!
//! The twin runs the space and the laptops of
//! `examples/scenarios/coworking-winter-day.toml` (the day `hearth
//! simulate` scores, drawn by the same loader and seed) over real
//! protocols only ([`twin`]): two Tasmota strips with B10 breakers under a
//! B16 circuit, the lamp and a 2 kW heater on an always-on outlet, and 20
//! laptops that arrive, take a seat, announce their battery like HASS.Agent
//! and leave. The feed twin serves EDF Tempo. The bridge runs
//! `examples/coworking.toml` against them: the strip driver, the seat
//! selects, the mirrored batteries, the opening hours from the scenario's
//! `.ics` as a file calendar, per-user usage metering, and
//! `builtin:strip-balancer` switching the relays.
//!
//! The winter day rather than `coworking-day.toml`: without the heater the
//! laptops alone peak at 13.9 A and the 16 A limit never binds; with it,
//! strip A carries 8.7 A before any laptop, and the balancer has to choose.
//!
//! The simulated clock starts on the scenario's day, 30 minutes before
//! the space opens. The bridge's data lives in `<data-dir>/coworking-demo/`
//! and starts afresh each run (history, usage ledger, restored states;
//! the compiled-plugin cache and access tokens stay), since every run
//! replays the same day.

pub mod report;
pub mod twin;

pub use report::CoworkingReport;

use super::DemoOptions;
use crate::app::Bridge;
use crate::broker::BrokerAddress;
use crate::clock::Clock;
use crate::config::Config;
use crate::feeds::tariff::TempoColour;
use crate::plugins::cache::CodeCache;
use crate::plugins::{PluginEngine, builtin};
use crate::shutdown;
use crate::twin::batch::coworking::scenario::CoworkingScenario;
use crate::twin::coworking::{Laptop, Presence, Space};
use crate::twin::feeds_sim::{FeedSim, FeedSimConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;
use twin::SpaceTwin;

/// The bridge's config; the demo fills in addresses and the calendar file.
pub const COWORKING_TOML: &str = include_str!("../../../../examples/coworking.toml");
/// The space and its laptops, shared with `hearth simulate`.
pub const SCENARIO_TOML: &str =
    include_str!("../../../../examples/scenarios/coworking-winter-day.toml");
/// The opening hours the scenario names.
pub const HOURS_ICS: &str = include_str!("../../../../examples/scenarios/coworking-hours.ics");
const SCENARIO_FILE: &str = "coworking-winter-day.toml";
const HOURS_FILE: &str = "coworking-hours.ics";

/// Writes the embedded scenario and its `.ics` into `dir` and loads them
/// with `hearth simulate`'s loader; returns it and the `.ics` path.
pub fn scenario(dir: &Path) -> anyhow::Result<(CoworkingScenario, PathBuf)> {
    std::fs::create_dir_all(dir)?;
    let toml = dir.join(SCENARIO_FILE);
    let ics = dir.join(HOURS_FILE);
    std::fs::write(&toml, SCENARIO_TOML)?;
    std::fs::write(&ics, HOURS_ICS)?;
    Ok((CoworkingScenario::load(&toml, None, None)?, ics))
}

/// The bridge config against the twin's broker, Tempo feed and calendar.
pub fn coworking_config(
    broker: &BrokerAddress,
    tempo_url: String,
    ics: &Path,
    http_port: Option<u16>,
) -> anyhow::Result<Config> {
    let mut config = Config::from_toml(COWORKING_TOML, "examples/coworking.toml")?;
    config.mqtt.url = Some(format!("mqtt://{}:{}", broker.host, broker.port));
    if let Some(t) = &mut config.tariff {
        t.url = Some(tempo_url);
    }
    for c in &mut config.calendar {
        c.file = Some(ics.to_path_buf());
    }
    if let Some(p) = http_port {
        config.http.port = p;
    }
    Ok(config)
}

/// Empties the demo's data directory but for the plugin cache and tokens.
fn fresh_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "cache" || name == crate::api::auth::tokens::FILE_NAME {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Compiles the config's plugins into the data directory's code cache (the
/// bridge's own, `<data-dir>/cache/plugins`) before the simulated clock
/// starts: compiling the balancer takes seconds in a debug build, an hour
/// of the day at `--speed 600`, and the bridge then loads it in a
/// millisecond.
async fn warm_plugin_cache(data_dir: &Path) -> anyhow::Result<()> {
    let config = Config::from_toml(COWORKING_TOML, "examples/coworking.toml")?;
    let dir = data_dir.join("cache").join("plugins");
    tokio::task::spawn_blocking(move || {
        let engine = PluginEngine::with_cache(CodeCache::new(Some(dir)))?;
        for p in &config.plugins {
            engine.load(&builtin::load_bytes(&p.wasm)?)?;
        }
        anyhow::Ok(())
    })
    .await?
}

/// Paris local `HH:MM` of `t_ms`.
fn local_hm(t_ms: i64) -> String {
    jiff::Timestamp::from_millisecond(t_ms)
        .map(|t| {
            crate::feeds::tariff::europe_paris()
                .to_datetime(t)
                .strftime("%H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// The demo from 30 minutes before the scenario's first opening.
pub async fn run(opts: DemoOptions) -> anyhow::Result<CoworkingReport> {
    run_from(opts, None).await
}

/// The demo with its simulated clock starting at `start_ms` (default: 30
/// minutes before the scenario's first opening).
pub async fn run_from(opts: DemoOptions, start_ms: Option<i64>) -> anyhow::Result<CoworkingReport> {
    let data_dir = opts.data_dir.join("coworking-demo");
    fresh_data_dir(&data_dir)?;
    let (scenario, ics) = scenario(&data_dir.join("scenario"))?;
    warm_plugin_cache(&data_dir).await?;
    let first_open = scenario
        .open_blocks
        .first()
        .map_or(scenario.start_ms, |b| b.0);
    let start = start_ms.unwrap_or(first_open - 1_800_000);
    let clock = Clock::simulated_from(start, opts.speed);
    let broker = super::broker(&opts)?;
    let (twin_stop, twin_shutdown) = shutdown::channel();

    let mut feed_cfg = FeedSimConfig {
        default_colour: Some(TempoColour::Blue),
        ..FeedSimConfig::default()
    };
    for (date, colour) in scenario_colours(&scenario, start) {
        feed_cfg.colours.insert(date, colour);
    }
    let feeds = FeedSim::spawn(clock, feed_cfg, twin_shutdown.clone())?;

    let laptops: Vec<Laptop> = scenario.laptops.iter().cloned().map(Laptop::new).collect();
    let n_laptops = laptops.len();
    let space = Space::new(scenario.space.clone(), laptops)?;
    let mut config = coworking_config(&broker, feeds.couleur_tempo_url(), &ics, opts.http_port)?;
    config.data_dir = Some(data_dir.clone());
    let base_topic = config.mqtt.base_topic.clone();
    let mut twin = SpaceTwin::start(
        clock,
        &broker.host,
        broker.port,
        space,
        &base_topic,
        twin_shutdown,
    )?;
    tracing::info!(
        "demo: coworking space `{}` from {} ({n_laptops} laptops, 2 strips × 8 outlets, B10 each under a B16 circuit), {}× real time",
        scenario.name,
        crate::clock::iso8601(start),
        opts.speed
    );
    let bridge = Bridge::start(config, clock).await?;
    tracing::info!(
        "point Home Assistant's MQTT integration at {} to see the strips, the seats, the batteries, each user's energy and the balancer",
        bridge.broker
    );
    let store = bridge.store.clone();

    let started_ms = clock.now_ms();
    let mut next_log = started_ms - started_ms.rem_euclid(3_600_000) + 3_600_000;
    let mut pacer = super::Pacer::new(opts.run_for);
    while pacer.tick(Duration::from_millis(10)).await {
        twin.step(&store).await;
        let now = clock.now_ms();
        if now >= next_log {
            next_log += 3_600_000;
            log_hour(&twin, &store, now);
        }
    }
    let report = report(&twin, &store, &scenario, started_ms, clock.now_ms());
    bridge.stop().await;
    twin_stop.trigger();
    feeds.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(report)
}

/// The scenario's Tempo colours for the demo's day and the next.
fn scenario_colours(
    scenario: &CoworkingScenario,
    start_ms: i64,
) -> Vec<(jiff::civil::Date, TempoColour)> {
    let Ok(t) = jiff::Timestamp::from_millisecond(start_ms) else {
        return Vec::new();
    };
    let today = crate::feeds::tariff::europe_paris().to_datetime(t).date();
    [Some(today), today.tomorrow().ok()]
        .into_iter()
        .flatten()
        .filter_map(|d| scenario.tariff.calendar().colour(d).map(|c| (d, c)))
        .collect()
}

fn log_hour(twin: &SpaceTwin, store: &crate::entity::EntityStore, now: i64) {
    let (wall, strips) = twin.currents();
    let space = &twin.space;
    let (mut plugged, mut queued, mut charging) = (0, 0, 0);
    let mut min_pct = f64::INFINITY;
    for (i, p) in space.presence.iter().enumerate() {
        match p {
            Presence::Plugged(o) => {
                plugged += 1;
                charging += usize::from(twin.live(*o));
                min_pct = min_pct.min(space.laptops[i].soc_pct);
            }
            Presence::Queued => queued += 1,
            _ => {}
        }
    }
    let state = |id: &str| store.get(id).map_or("unknown".to_string(), |s| s.state);
    tracing::info!(
        "demo {}: {} ({}), wall {:.1} A (peak {:.1}/{:.0} A), strips {}, {plugged} plugged ({charging} live), {queued} waiting, lowest battery {}, trips {}",
        local_hm(now),
        if state("binary_sensor.coworking_open") == "on" {
            "open"
        } else {
            "closed"
        },
        state("sensor.tariff_period"),
        wall,
        twin.tally.peak_circuit_a,
        space.spec.circuit_a,
        strips
            .iter()
            .map(|a| format!("{a:.1} A"))
            .collect::<Vec<_>>()
            .join(" / "),
        if min_pct.is_finite() {
            format!("{min_pct:.0} %")
        } else {
            "n/a".into()
        },
        twin.trips().len()
    );
}

fn report(
    twin: &SpaceTwin,
    store: &crate::entity::EntityStore,
    scenario: &CoworkingScenario,
    started_ms: i64,
    now: i64,
) -> CoworkingReport {
    let laps = twin.laptops();
    let presence = &twin.space.presence;
    let arrived = presence.iter().filter(|p| **p != Presence::NotYet).count();
    let mut left = 0;
    let mut left_at_target = 0;
    let mut lowest: Option<f64> = None;
    for (i, (l, p)) in laps.iter().zip(presence).enumerate() {
        match p {
            Presence::Gone(pct) => {
                left += 1;
                left_at_target += usize::from(*pct >= l.spec.target_pct);
            }
            Presence::Plugged(_) | Presence::Queued => {}
            Presence::NotYet => continue,
        }
        if !twin.seated(i) {
            continue;
        }
        lowest = Some(lowest.map_or(l.min_plugged_pct, |m: f64| m.min(l.min_plugged_pct)));
    }
    let mut user_kwh: Vec<(String, f64)> = (0..laps.len())
        .filter_map(|i| {
            let u = twin::user_id(i);
            let kwh = store
                .get(&format!("sensor.{u}_energy_today"))
                .and_then(|s| s.number())?;
            Some((u, kwh))
        })
        .collect();
    user_kwh.sort_by(|a, b| b.1.total_cmp(&a.1));
    CoworkingReport {
        scenario: scenario.name.clone(),
        simulated_h: (now - started_ms) as f64 / 3.6e6,
        from: local_hm(started_ms),
        to: local_hm(now),
        circuit_limit_a: scenario.space.circuit_a,
        peak_circuit_a: twin.tally.peak_circuit_a,
        seconds_over: twin.tally.seconds_over,
        over_episodes: twin.tally.over_episodes,
        max_over_a: twin.tally.max_over_a,
        trips: twin
            .trips()
            .into_iter()
            .map(|(t, b)| (local_hm(t), b))
            .collect(),
        energy_kwh: laps.iter().map(|l| l.wall_wh).sum::<f64>() / 1000.0,
        arrived,
        left,
        left_at_target,
        batteries_rose: laps
            .iter()
            .filter(|l| l.soc_pct > l.spec.initial_pct + 0.5)
            .count(),
        lowest_battery_pct: lowest,
        relay_switches: twin.tally.relay_switches,
        user_kwh,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_a_user_and_a_battery_for_every_laptop_of_the_scenario() {
        let dir = tempfile::tempdir().unwrap();
        let (scenario, ics) = scenario(dir.path()).unwrap();
        assert!(ics.exists());
        let cfg = Config::from_toml(COWORKING_TOML, "examples/coworking.toml").unwrap();
        let plugin = &cfg.plugins[0];
        assert_eq!(plugin.wasm, "builtin:strip-balancer");
        let users = plugin.config["users"].as_array().unwrap();
        let usage = cfg.usage.as_ref().unwrap();
        assert!(!scenario.laptops.is_empty());
        for i in 0..scenario.laptops.len() {
            let u = twin::user_id(i);
            assert!(users.iter().any(|x| x["id"] == u.as_str()), "{u}");
            assert!(
                users
                    .iter()
                    .any(|x| x["battery"] == format!("sensor.{u}_battery").as_str())
            );
            assert!(usage.users.iter().any(|x| x.id == u), "{u}");
            assert!(cfg.select.iter().all(|s| s.options.contains(&u)), "{u}");
        }
        // One seat select per switchable outlet of the scenario's space.
        let space = Space::new(scenario.space.clone(), Vec::new()).unwrap();
        let seats: Vec<String> = (0..space.outlets.len())
            .filter(|&o| !space.outlets[o].lamp)
            .map(|o| twin::seat_select_id(&space, o))
            .collect();
        assert_eq!(seats.len(), cfg.select.len());
        assert!(seats.iter().all(|s| cfg.select.iter().any(|c| &c.id == s)));
        assert!(scenario.space.heater.is_some());
    }
}
