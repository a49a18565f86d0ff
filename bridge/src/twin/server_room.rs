//! The server-room twin, wired: one [`Plant`] and the three simulated
//! devices around it, plus the physics task that keeps the plant current.
//!
//! ```text
//!            ┌──────── Plant (room + AC + relay + meter) ────────┐
//!  physics ──┤ advance every ~20 ms wall, steps ≤ 1 s sim        │
//!            └───▲──────────────▲───────────────────▲────────────┘
//!                │ reads T      │ IR → AC settings  │ relay ↔ mains, apower, Wh
//!   node_sim (MQTT)   tasmota_sim (MQTT)     shelly_sim (HTTP 127.0.0.1)
//! ```
//!
//! The bridge sees only the broker and the plug's URL. Tests and demos use
//! the [`TwinHandle`] to look inside (snapshots, compressor events, the IR
//! log) and to inject trouble (plug faults, IT load steps).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::node_sim::{self, NodeSimConfig};
use super::plant::{Plant, SharedPlant};
use super::room::{AcMode, RoomParams};
use super::shelly_sim::{self, FaultSwitch, ShellyFault, ShellySimConfig};
use super::tasmota_sim::{self, IrFault, IrLog, TasmotaSimConfig};
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Wall period of the physics task.
const PHYSICS_TICK: Duration = Duration::from_millis(20);

/// How to build the twin.
#[derive(Debug, Clone)]
pub struct TwinOptions {
    pub room: RoomParams,
    /// Sensor node id (`server-room`).
    pub node_id: String,
    /// Sensor node name (`Server room`).
    pub node_name: String,
    /// Sensor telemetry period, simulated s.
    pub telemetry_interval_s: u32,
    /// Tasmota topic of the IR bridge (`tasmota_ir`).
    pub tasmota_topic: String,
    /// Shelly device name.
    pub shelly_name: String,
    /// Seed of every random draw (sensor noise, mains noise, MAC, client id).
    pub seed: u64,
    /// How the MQTT devices authenticate (default: anonymous, plain).
    pub access: super::TwinAccess,
}

impl Default for TwinOptions {
    fn default() -> Self {
        TwinOptions {
            room: RoomParams::server_room(),
            node_id: "server-room".into(),
            node_name: "Server room".into(),
            telemetry_interval_s: 10,
            tasmota_topic: "tasmota_ir".into(),
            shelly_name: "Server room AC".into(),
            seed: 1,
            access: Default::default(),
        }
    }
}

/// The AC as the twin sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcSnapshot {
    /// On by remote.
    pub power: bool,
    pub mode: AcMode,
    /// °C
    pub set_temp_c: f64,
    pub fan_speed: String,
    /// Mains present (relay closed).
    pub mains: bool,
    pub compressor_running: bool,
}

/// The twin's physical state at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwinSnapshot {
    /// Sim time, ms since the Unix epoch.
    pub sim_ms: i64,
    /// °C
    pub room_c: f64,
    /// °C
    pub outside_c: f64,
    /// W
    pub it_load_w: f64,
    pub ac: AcSnapshot,
    /// AC electrical draw as the plug measures it, W.
    pub ac_electrical_w: f64,
    pub relay_on: bool,
    pub compressor_starts: u64,
    /// Energy through the plug since start, Wh.
    pub energy_wh: f64,
}

/// Entry point: see [`ServerRoomTwin::start`].
pub struct ServerRoomTwin;

impl ServerRoomTwin {
    /// Starts the physics task, the sensor node and the IR bridge (MQTT
    /// clients of `mqtt_host:mqtt_port`) and the Shelly plug (HTTP on
    /// 127.0.0.1, ephemeral port). Everything runs until `shutdown`. The
    /// MQTT clients connect in the background and keep retrying, so the
    /// broker may come up later. Returns once the plug is listening.
    pub async fn start(
        clock: Clock,
        mqtt_host: &str,
        mqtt_port: u16,
        opts: TwinOptions,
        shutdown: Shutdown,
    ) -> anyhow::Result<TwinHandle> {
        let plant = Plant::new(opts.room, clock.now_ms()).shared();
        let ir_log = IrLog::default();
        let ir_fault = IrFault::default();
        let fault = FaultSwitch::default();
        // Derive per-device seeds so each stream of noise is independent.
        let mut seeds = fastrand::Rng::with_seed(opts.seed);
        let (node_seed, shelly_seed, id_seed) = (seeds.u64(..), seeds.u64(..), seeds.u64(..));

        tokio::spawn(physics(clock, plant.clone(), shutdown.clone()));
        let node = Arc::new(node_sim::NodeControl::default());

        let access = |user: &str| opts.access.address(mqtt_host, mqtt_port, user);
        node_sim::spawn(
            clock,
            &access(&opts.node_id),
            NodeSimConfig {
                node_id: opts.node_id.clone(),
                name: opts.node_name.clone(),
                interval_s: opts.telemetry_interval_s,
                seed: node_seed,
            },
            plant.clone(),
            node.clone(),
            shutdown.clone(),
        )?;

        tasmota_sim::spawn(
            clock,
            &access(&opts.tasmota_topic),
            TasmotaSimConfig {
                topic: opts.tasmota_topic.clone(),
                client_id: format!("DVES_{:06X}", id_seed & 0xFF_FFFF),
            },
            plant.clone(),
            ir_log.clone(),
            ir_fault.clone(),
            shutdown.clone(),
        )?;

        // The demo's knobs: outdoor temperature and IT load over MQTT.
        super::controls::spawn(
            clock,
            &access(super::access::CONTROLS_USER),
            plant.clone(),
            shutdown.clone(),
        );

        // Espressif's 08:B6:1F prefix, 24 bits from the seed.
        let mac = format!("08B61F{:06X}", (id_seed >> 24) & 0xFF_FFFF);
        let (shelly_addr, _) = shelly_sim::spawn(
            clock,
            ShellySimConfig {
                mac,
                name: opts.shelly_name.clone(),
                seed: shelly_seed,
            },
            plant.clone(),
            fault.clone(),
            shutdown,
        )?;
        tracing::info!(
            "twin: server room up (sensor node `{}`, Tasmota topic `{}`, Shelly at http://{shelly_addr})",
            opts.node_id,
            opts.tasmota_topic
        );

        Ok(TwinHandle {
            clock,
            plant,
            ir_log,
            ir_fault,
            fault,
            shelly_addr,
            node,
        })
    }
}

/// Keeps the plant integrated up to now, so compressor starts and stops are
/// recorded at their time even when no device is being read.
async fn physics(clock: Clock, plant: SharedPlant, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(PHYSICS_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                plant.lock().unwrap_or_else(|e| e.into_inner()).advance_to(clock.now_ms());
            }
        }
    }
}

/// A look inside the running twin. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TwinHandle {
    clock: Clock,
    plant: SharedPlant,
    ir_log: IrLog,
    ir_fault: IrFault,
    fault: FaultSwitch,
    shelly_addr: SocketAddr,
    node: Arc<node_sim::NodeControl>,
}

impl TwinHandle {
    /// Base URL of the simulated Shelly (`http://127.0.0.1:PORT`).
    pub fn shelly_url(&self) -> String {
        format!("http://{}", self.shelly_addr)
    }

    pub fn shelly_addr(&self) -> SocketAddr {
        self.shelly_addr
    }

    fn with_plant<T>(&self, f: impl FnOnce(&mut Plant) -> T) -> T {
        let mut p = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        p.advance_to(self.clock.now_ms());
        f(&mut p)
    }

    /// The physical state now.
    pub fn snapshot(&self) -> TwinSnapshot {
        self.with_plant(|p| {
            let s = p.ac.settings();
            TwinSnapshot {
                sim_ms: p.sim_ms(),
                room_c: p.room.temp_c,
                outside_c: p.room.params.outside_c,
                it_load_w: p.room.params.it_load_w,
                ac: AcSnapshot {
                    power: s.power,
                    mode: s.mode,
                    set_temp_c: s.set_temp_c,
                    fan_speed: s.fan_speed.clone(),
                    mains: p.ac.mains(),
                    compressor_running: p.ac.compressor_running(),
                },
                ac_electrical_w: p.ac.electrical_w(),
                relay_on: p.relay_on(),
                compressor_starts: p.ac.compressor_starts(),
                energy_wh: p.energy_wh(),
            }
        })
    }

    /// Every compressor change so far: (sim ms, running after the change).
    pub fn compressor_events(&self) -> Vec<(i64, bool)> {
        self.with_plant(|p| p.ac.compressor_events().to_vec())
    }

    /// Every `IRhvac` payload the IR bridge received: (sim ms, payload).
    pub fn ir_commands(&self) -> Vec<(i64, Value)> {
        self.ir_log.all()
    }

    /// Number of `IRhvac` payloads received.
    pub fn ir_command_count(&self) -> usize {
        self.ir_log.count()
    }

    /// The last `IRhvac` payload received.
    pub fn last_ir_command(&self) -> Option<(i64, Value)> {
        self.ir_log.last()
    }

    /// The AC misses the next `n` IR commands (the IR bridge still
    /// receives, logs and echoes them); `u32::MAX`: every command until
    /// called again, 0: none.
    pub fn ignore_ir_commands(&self, n: u32) {
        self.ir_fault.ignore_next(n);
    }

    /// IR commands the AC missed so far.
    pub fn ir_commands_ignored(&self) -> u64 {
        self.ir_fault.missed()
    }

    /// Makes the plug misbehave from now on (`ShellyFault::None` to stop).
    pub fn set_shelly_fault(&self, fault: ShellyFault) {
        self.fault.set(fault);
    }

    /// Pauses (or resumes) the sensor node's telemetry; it stays online.
    pub fn pause_telemetry(&self, paused: bool) {
        self.node
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Telemetry messages the sensor node has published.
    pub fn telemetry_published(&self) -> u64 {
        self.node
            .published
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Steps the IT heat load to `watts` W from now on.
    pub fn set_it_load_w(&self, watts: f64) {
        let now = self.clock.now_ms();
        self.plant
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_it_load_w(watts, now);
    }
}
