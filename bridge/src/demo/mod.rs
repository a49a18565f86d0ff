//! `hearth demo`: the bundled server-room scenario. The digital twin (room,
//! AC, IR bridge, Shelly plug, ESP32 node) runs on the same simulated clock as
//! the bridge and talks to it only through MQTT and HTTP; the thermostat
//! plugin regulates the room; every device appears in Home Assistant through
//! discovery on the same broker.
//!
//! At the end the demo reports, from the twin's ground truth: the band the
//! room stayed in after the first cool-down, and the shortest AC on/off
//! period against `min_cycle_duration`.

pub mod coworking;
pub mod house;
pub mod plugs;
pub mod secure;

use crate::app::Bridge;
use crate::broker::{BrokerAddress, EmbeddedBroker};
use crate::clock::Clock;
use crate::config::Config;
use crate::shutdown;
use crate::twin::{ServerRoomTwin, TwinHandle, TwinOptions};
use std::time::Duration;

/// The scenario's config; `hearth demo` fills in addresses.
pub const SERVER_ROOM_TOML: &str = include_str!("../../../examples/server-room.toml");

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Wall seconds to run; `None` = until Ctrl-C.
    pub run_for: Option<f64>,
    pub mqtt_url: Option<String>,
    pub mqtt_port: u16,
    pub http_port: Option<u16>,
    /// Where access tokens live (`hearth token create --data-dir …`).
    pub data_dir: std::path::PathBuf,
    /// `--secure` (server room only): TLS, credentials and topic rights,
    /// with the embedded broker's MQTT-over-TLS on this port (0: any).
    pub secure: Option<u16>,
}

/// What the demo measured on the twin.
#[derive(Debug, Clone, Default)]
pub struct DemoReport {
    pub simulated_s: f64,
    pub target_c: f64,
    pub tolerance_c: f64,
    pub min_cycle_s: f64,
    /// Sim time when the AC first switched off after the initial cool-down.
    pub first_cooldown_s: Option<f64>,
    /// Sim time of the first IR command that switched the AC on: how long
    /// the bridge and the plugin took to start controlling (wall latency at
    /// high speed-ups shows up here, not in the cool-down itself).
    pub first_on_s: Option<f64>,
    /// (min, max) room temperature after the first cool-down, °C.
    pub band_after_cooldown: Option<(f64, f64)>,
    /// Shortest time between two AC power transitions, s.
    pub shortest_cycle_s: Option<f64>,
    pub power_transitions: usize,
    pub energy_wh: f64,
}

impl DemoReport {
    pub fn in_band(&self) -> bool {
        let limit = self.tolerance_c + 0.5;
        self.band_after_cooldown
            .is_some_and(|(lo, hi)| lo >= self.target_c - limit && hi <= self.target_c + limit)
    }

    pub fn cycles_ok(&self) -> bool {
        self.shortest_cycle_s
            .is_none_or(|s| s + 1.0 >= self.min_cycle_s)
    }
}

/// A demo's wall-time loop: ticks until `--for` has passed or Ctrl-C.
pub struct Pacer {
    deadline: Option<tokio::time::Instant>,
    terminate: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

impl Pacer {
    /// `run_for`: wall seconds, None = until Ctrl-C.
    pub fn new(run_for: Option<f64>) -> Pacer {
        Pacer {
            deadline: run_for.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s)),
            terminate: Box::pin(shutdown::termination()),
        }
    }

    /// Sleeps `period`; false once the run is over.
    pub async fn tick(&mut self, period: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = &mut self.terminate => return false,
        }
        self.deadline
            .is_none_or(|d| tokio::time::Instant::now() < d)
    }
}

/// Builds the scenario config against a broker and the twin's plug.
pub fn scenario_config(
    broker: &BrokerAddress,
    shelly_url: &str,
    http_port: Option<u16>,
) -> anyhow::Result<Config> {
    let mut config = Config::from_toml(SERVER_ROOM_TOML, "examples/server-room.toml")?;
    config.mqtt.url = Some(format!("mqtt://{}:{}", broker.host, broker.port));
    for s in &mut config.shelly {
        s.url = shelly_url.to_string();
    }
    if let Some(p) = http_port {
        config.http.port = p;
    }
    Ok(config)
}

/// The demo's simulated clock. It starts at wall time, or just after the
/// newest row the recorder holds in the data directory when that is later
/// (a demo at `--speed 60` runs ahead of wall time): a second run with the
/// same `--data-dir` continues the first one's history instead of writing
/// rows that overlap it. `toml` is the scenario's bridge config (for the
/// recorder's database path).
pub fn resumed_clock(opts: &DemoOptions, toml: &str, origin: &str) -> anyhow::Result<Clock> {
    let config = Config::from_toml(toml, origin)?;
    let db = config.recorder.db_path(&opts.data_dir);
    let fresh = Clock::simulated(opts.speed);
    let last = match crate::recorder::query::last_recorded_ms(&db) {
        Ok(last) => last,
        Err(e) => {
            tracing::warn!(
                "demo: could not read the last recorded time ({e}); the clock starts at wall time"
            );
            None
        }
    };
    Ok(match last {
        Some(last) if last >= fresh.now_ms() => {
            // One simulated second after the last row: the next change is
            // strictly later than everything recorded.
            let start = last + 1_000;
            tracing::info!(
                "demo: continuing the simulated clock of {} at {} (after its last recorded row)",
                db.display(),
                crate::clock::iso8601(start)
            );
            Clock::simulated_from(start, opts.speed)
        }
        _ => fresh,
    })
}

/// The broker a demo runs on: `--mqtt-url`, or the embedded one.
pub fn broker(opts: &DemoOptions) -> anyhow::Result<BrokerAddress> {
    Ok(match &opts.mqtt_url {
        Some(url) => BrokerAddress::parse(url)?,
        None => {
            let b = EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), opts.mqtt_port)?;
            BrokerAddress::local(b.addr.port())
        }
    })
}

pub async fn run(opts: DemoOptions) -> anyhow::Result<DemoReport> {
    let clock = resumed_clock(&opts, SERVER_ROOM_TOML, "examples/server-room.toml")?;
    let mut twin_opts = TwinOptions::default();
    // Kept for the demo's life: the secure broker's handle.
    let (broker, _secure) = match opts.secure {
        None => (broker(&opts)?, None),
        Some(tls_port) => {
            let s = secure::prepare(&opts.data_dir, opts.mqtt_port, tls_port, &twin_opts)?;
            twin_opts.access = s.twin.clone();
            (s.bridge.clone(), Some(s))
        }
    };
    let (twin_stop, twin_shutdown) = shutdown::channel();
    let twin =
        ServerRoomTwin::start(clock, &broker.host, broker.port, twin_opts, twin_shutdown).await?;
    let mut config = scenario_config(&broker, &twin.shelly_url(), opts.http_port)?;
    config.data_dir = Some(opts.data_dir.clone());
    if let Some(s) = &_secure {
        secure::configure(&mut config, &s.bridge);
    }
    let thermostat = config.plugins[0].config.clone();
    let num = |k: &str| thermostat.get(k).and_then(|v| v.as_f64()).unwrap_or(0.0);
    let (target, tolerance, min_cycle) = (
        num("target_temp"),
        num("hot_tolerance"),
        num("min_cycle_duration"),
    );
    tracing::info!(
        "demo: server room at {:.1} °C, thermostat target {target} °C ± {tolerance} °C, min cycle {min_cycle} s, {}× real time",
        twin.snapshot().room_c,
        opts.speed
    );
    let bridge = Bridge::start(config, clock).await?;
    match &_secure {
        None => tracing::info!(
            "point Home Assistant's MQTT integration at {} to see every device",
            bridge.broker
        ),
        Some(s) => secure::log_how_to_connect(s, &opts.data_dir),
    }
    let ws = if opts.secure.is_some() { "wss" } else { "ws" };
    tracing::info!(
        "open the dashboard at {}://{}/ and sign in with a token from `hearth token create --name me --data-dir {}`",
        if opts.secure.is_some() {
            "https"
        } else {
            "http"
        },
        bridge.http_addr,
        opts.data_dir.display()
    );
    tracing::info!(
        "script it with HA's WebSocket API at {ws}://{}/api/websocket (token: `hearth token create --name me --data-dir {}`; see examples/scripting/)",
        bridge.http_addr,
        opts.data_dir.display()
    );
    tracing::info!(
        "swap the controller live: `hearth plugin swap thermostat builtin:custom-strategy --url {ws}://{}/api/websocket --token …` (a PI strategy; `builtin:thermostat` swaps back; see examples/custom-strategy/)",
        bridge.http_addr
    );
    tracing::info!(
        "drive the room: publish {{\"outside_c\": 38, \"it_load_w\": 5000}} to `{}` on {}{} (see docs/writing-a-plugin.md, \"Driving the simulated room\")",
        crate::twin::controls::CONTROL_TOPIC,
        bridge.broker,
        match &_secure {
            Some(_) => format!(
                " as user `{}`, password in {}",
                crate::twin::access::CONTROLS_USER,
                crate::security::SecurityPaths::new(&opts.data_dir)
                    .device_password(crate::twin::access::CONTROLS_USER)
                    .display()
            ),
            None => String::new(),
        }
    );

    let started_ms = clock.now_ms();
    let samples = std::sync::Mutex::new(Vec::new());
    let watch = watch_twin(&twin, clock, target, started_ms, &samples);
    // Ctrl-C and SIGTERM stop the demo cleanly with or without `--for`
    // (a `--for` run used to sleep without listening, so SIGTERM killed
    // it before `hearth/bridge/state` went offline).
    let stop = async {
        match opts.run_for {
            Some(s) => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs_f64(s)) => {}
                _ = shutdown::termination() => {}
            },
            None => shutdown::termination().await,
        }
    };
    let report = tokio::select! {
        r = watch => r,
        _ = stop => {
            let samples = samples.lock().unwrap_or_else(|e| e.into_inner());
            report(&twin, clock, (target, tolerance, min_cycle), started_ms, &samples)
        }
    };
    bridge.stop().await;
    twin_stop.trigger();
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(report)
}

/// Samples the room's true temperature (every 20 ms wall) and logs it in
/// plain words every simulated 10 minutes; never returns.
async fn watch_twin(
    twin: &TwinHandle,
    clock: Clock,
    target: f64,
    started_ms: i64,
    samples: &std::sync::Mutex<Vec<(i64, f64)>>,
) -> DemoReport {
    let mut next_log = started_ms + 600_000;
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = twin.snapshot();
        samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((s.sim_ms, s.room_c));
        if s.sim_ms < next_log {
            continue;
        }
        next_log += 600_000;
        let ac = if s.ac.compressor_running {
            format!("cooling, drawing {:.0} W", s.ac_electrical_w)
        } else if s.ac.power {
            "on, compressor idle".to_string()
        } else {
            "off".to_string()
        };
        let minutes = (clock.now_ms() - started_ms) as f64 / 60_000.0;
        tracing::info!(
            "demo t+{minutes:.0} min: room {:.2} °C (target {target} °C), outside {:.1} °C, AC {ac}",
            s.room_c,
            s.outside_c
        );
    }
}

/// `limits` = (target °C, tolerance °C, min cycle s).
pub fn report(
    twin: &TwinHandle,
    clock: Clock,
    limits: (f64, f64, f64),
    started_ms: i64,
    samples: &[(i64, f64)],
) -> DemoReport {
    let (target, tolerance, min_cycle) = limits;
    let s = twin.snapshot();
    let transitions = power_transitions(twin, started_ms);
    // The first cool-down ends when the AC, once on, is first switched off.
    let first_off = transitions
        .iter()
        .skip_while(|(_, on)| !on)
        .find(|(_, on)| !on)
        .map(|(t, _)| *t);
    let first_on = twin
        .ir_commands()
        .into_iter()
        .filter(|(t, _)| *t >= started_ms)
        .find(|(_, cmd)| {
            cmd.get("Power")
                .and_then(|p| p.as_str())
                .is_some_and(|p| p.eq_ignore_ascii_case("on"))
        })
        .map(|(t, _)| t);
    let band = first_off.and_then(|t0| {
        let after: Vec<f64> = samples
            .iter()
            .filter(|(t, _)| *t >= t0)
            .map(|(_, c)| *c)
            .collect();
        let lo = after.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = after.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (!after.is_empty()).then_some((lo, hi))
    });
    let shortest = transitions
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) as f64 / 1000.0)
        .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.min(d))));
    DemoReport {
        simulated_s: (clock.now_ms() - started_ms) as f64 / 1000.0,
        target_c: target,
        tolerance_c: tolerance,
        min_cycle_s: min_cycle,
        first_cooldown_s: first_off.map(|t| (t - started_ms) as f64 / 1000.0),
        first_on_s: first_on.map(|t| (t - started_ms) as f64 / 1000.0),
        band_after_cooldown: band,
        shortest_cycle_s: shortest,
        power_transitions: transitions.len(),
        energy_wh: s.energy_wh,
    }
}

/// (sim ms, power on) each time the IR commands changed the AC's power.
pub fn power_transitions(twin: &TwinHandle, since_ms: i64) -> Vec<(i64, bool)> {
    let mut out: Vec<(i64, bool)> = Vec::new();
    let mut last: Option<bool> = None;
    for (t, cmd) in twin.ir_commands() {
        let Some(on) = cmd
            .get("Power")
            .and_then(|p| p.as_str())
            .map(|p| p.eq_ignore_ascii_case("on"))
        else {
            continue;
        };
        // The first command only establishes the state (at start the
        // thermostat re-sends what it believes, e.g. a keep-alive `off`).
        if last.is_some_and(|l| l != on) && t >= since_ms {
            out.push((t, on));
        }
        last = Some(on);
    }
    out
}

impl std::fmt::Display for DemoReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Demo summary ({:.0} simulated minutes):",
            self.simulated_s / 60.0
        )?;
        match (self.first_cooldown_s, self.band_after_cooldown) {
            (Some(t), Some((lo, hi))) => writeln!(
                f,
                "  AC first on after {:.1} min, first cool-down done after {:.1} min; since then the room stayed between {lo:.2} °C and {hi:.2} °C (target {} °C ± {:.1} °C allowed): {}",
                self.first_on_s.unwrap_or(0.0) / 60.0,
                t / 60.0,
                self.target_c,
                self.tolerance_c + 0.5,
                if self.in_band() {
                    "in band"
                } else {
                    "OUT OF BAND"
                }
            )?,
            _ => writeln!(
                f,
                "  the first cool-down did not finish in this run (run longer or faster)"
            )?,
        }
        match self.shortest_cycle_s {
            Some(s) => writeln!(
                f,
                "  AC switched {} times; shortest on/off period {s:.0} s (min_cycle_duration {} s): {}",
                self.power_transitions,
                self.min_cycle_s,
                if self.cycles_ok() { "ok" } else { "TOO FAST" }
            )?,
            None => writeln!(f, "  AC switched {} times", self.power_transitions)?,
        }
        write!(f, "  AC energy {:.0} Wh", self.energy_wh)
    }
}
