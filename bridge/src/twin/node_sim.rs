//! A simulated ESP32 sensor node: what `firmware/esp32c3-sensor` does, over
//! a real MQTT connection, with the payloads of [`hearth_node_core`].
//!
//! On every (re)connection (`ConnAck`) it publishes, like the firmware:
//! `hearth-node/<id>/status` = `online` (retained, QoS 1; its last will is
//! `offline`, retained, QoS 1), the retained [`Announce`] (all four
//! [`SensorKind`]s), and a first reading. Then every `interval_s` simulated
//! seconds a [`Telemetry`] (QoS 0, not retained):
//!
//! | field | value |
//! |---|---|
//! | `temperature` | room temperature + N(0, 0.03 °C), rounded to 0.01 °C |
//! | `humidity` | 40 % + N(0, 0.5 %), rounded to 0.1 % |
//! | `rssi` | −60 dBm + N(0, 2 dB), rounded to 1 dB |
//! | `uptime` | simulated seconds since the sim started |
//!
//! The noise is seeded, so a run is reproducible. The temperature comes from
//! the node's [`NodeIo`] (the server room's shared [`Plant`](super::plant::Plant),
//! or the house's zone model), never from the bridge. A broker restart is
//! survived the way rumqttc intends: keep polling the event loop; it
//! reconnects, and the `ConnAck` republishes everything.
//!
//! While the connection is down the node keeps measuring into node-core's
//! [`OfflineBuffer`] (the firmware's code; [`OFFLINE_READINGS`] readings,
//! the oldest dropped past that) and sends them after the reconnection,
//! oldest first and before the fresh reading, each with its `age_ms`
//! ([`flush_offline`]); the bridge files them at the time they were taken.
//!
//! A node whose [`NodeIo`] has a valve also announces it
//! ([`ValveInfo`]), subscribes to `hearth-node/<id>/valve/set` and runs the
//! valve protocol of [`hearth_node_core`]: a rejected payload is logged with
//! the payload and the reason and moves nothing; the retained
//! `valve/state` is published at (re)connect, at once after a command,
//! every [`VALVE_REPORT_MS`] simulated ms while moving, and when it stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hearth_node_core::buffer::OfflineBuffer;
use hearth_node_core::{
    Announce, SensorKind, Telemetry, TopicKind, ValveActuator, ValveInfo, ValveState, encode,
    heapless, parse_valve_command, topic,
};
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::plant::{Plant, SharedPlant};
use crate::broker::BrokerAddress;
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Model string in the announce.
pub const MODEL: &str = "ESP32-C3 sensor node (twin)";
/// Wall time between reconnection attempts.
const RECONNECT_WALL: Duration = Duration::from_millis(500);
/// Simulated ms between `valve/state` reports while the valve moves.
pub const VALVE_REPORT_MS: u64 = 5_000;
/// Readings kept while disconnected (under the client's request queue of
/// 64, so a whole buffer goes out at the reconnection).
pub const OFFLINE_READINGS: usize = 32;

/// What a simulated node measures and drives: the physical side of the
/// twin, behind whatever lock it needs. Every method is given the clock's
/// now (sim ms), so the implementation integrates its physics up to it
/// first.
pub trait NodeIo: Send + Sync + 'static {
    /// Room air temperature at `now_ms`, °C.
    fn temperature_c(&self, now_ms: i64) -> f64;

    /// Runs `f` on the node's valve actuator brought up to `now_ms`;
    /// `false` (and `f` not run) when the node has no valve.
    fn with_valve(&self, now_ms: i64, f: &mut dyn FnMut(&mut ValveActuator)) -> bool {
        let _ = (now_ms, f);
        false
    }
}

/// The server room: temperature from the shared plant, no valve.
impl NodeIo for std::sync::Mutex<Plant> {
    fn temperature_c(&self, now_ms: i64) -> f64 {
        let mut p = self.lock().unwrap_or_else(|e| e.into_inner());
        p.advance_to(now_ms);
        p.room.temp_c
    }
}

#[derive(Debug, Clone)]
pub struct NodeSimConfig {
    /// `[a-z0-9_-]{1,32}`, also the MQTT client id suffix.
    pub node_id: String,
    /// Human name ("Server room").
    pub name: String,
    /// Telemetry period, simulated s.
    pub interval_s: u32,
    /// Noise seed.
    pub seed: u64,
}

/// Reading noise and conversion; pure, so it can be tested without MQTT.
pub struct Sensor {
    rng: fastrand::Rng,
}

impl Sensor {
    pub fn new(seed: u64) -> Self {
        Sensor {
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// One reading of a room at `room_c` °C, `uptime_s` s after boot.
    pub fn read(&mut self, room_c: f64, uptime_s: u32) -> Telemetry {
        let n = |rng: &mut fastrand::Rng| super::standard_normal(rng);
        let temp = room_c + 0.03 * n(&mut self.rng);
        let hum = (40.0 + 0.5 * n(&mut self.rng)).clamp(0.0, 100.0);
        let rssi = (-60.0 + 2.0 * n(&mut self.rng)).round().clamp(-120.0, 0.0);
        Telemetry {
            temperature: Some(((temp * 100.0).round() / 100.0) as f32),
            humidity: Some(((hum * 10.0).round() / 10.0) as f32),
            rssi: Some(rssi as i16),
            uptime: Some(uptime_s),
            age_ms: None,
        }
    }
}

/// The retained announce payload (JSON bytes) of a node without a valve.
pub fn announce_payload(cfg: &NodeSimConfig) -> anyhow::Result<Vec<u8>> {
    announce_payload_with(cfg, None)
}

/// The retained announce payload (JSON bytes), announcing `valve` if any.
pub fn announce_payload_with(
    cfg: &NodeSimConfig,
    valve: Option<ValveInfo>,
) -> anyhow::Result<Vec<u8>> {
    let mut sensors = heapless::Vec::new();
    sensors
        .extend_from_slice(&SensorKind::ALL)
        .map_err(|_| anyhow::anyhow!("too many sensor kinds"))?;
    let a = Announce {
        id: &cfg.node_id,
        name: &cfg.name,
        model: MODEL,
        sw_version: env!("CARGO_PKG_VERSION"),
        sensors,
        interval_s: cfg.interval_s,
        valve,
    };
    let mut buf = [0u8; 512];
    let json = encode(&a, &mut buf).map_err(|_| anyhow::anyhow!("announce exceeds 512 bytes"))?;
    Ok(json.to_vec())
}

/// A telemetry payload (JSON bytes).
pub fn telemetry_payload(t: &Telemetry) -> Vec<u8> {
    let mut buf = [0u8; 128];
    // Five bounded numbers: always fits.
    encode(t, &mut buf).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Sends the readings kept while offline, oldest first, each with its
/// `age_ms` at `now_ms`; a reading `publish` refuses stays for the next
/// reconnection (and the flush stops). Returns how many were sent.
pub fn flush_offline<const N: usize>(
    buffer: &mut OfflineBuffer<N>,
    now_ms: u64,
    mut publish: impl FnMut(Vec<u8>) -> bool,
) -> u64 {
    let mut sent = 0;
    while let Some(t) = buffer.peek(now_ms) {
        if !publish(telemetry_payload(&t)) {
            break;
        }
        buffer.pop(now_ms);
        sent += 1;
    }
    sent
}

/// Test and demo controls of a running node: pause its telemetry (the
/// node stays connected, like a sensor that stopped measuring) and count
/// what it published.
#[derive(Debug, Default)]
pub struct NodeControl {
    pub paused: AtomicBool,
    pub published: AtomicU64,
    /// Readings taken while disconnected (kept in the offline buffer).
    pub kept_offline: AtomicU64,
}

struct Node {
    control: Arc<NodeControl>,
    cfg: NodeSimConfig,
    clock: Clock,
    io: Arc<dyn NodeIo>,
    client: AsyncClient,
    sensor: std::sync::Mutex<Sensor>,
    /// Readings taken while disconnected.
    offline: std::sync::Mutex<OfflineBuffer<OFFLINE_READINGS>>,
    start_ms: i64,
    status_topic: String,
    announce_topic: String,
    telemetry_topic: String,
    announce: Vec<u8>,
    /// `Some` on nodes with a valve.
    valve: Option<ValveTopics>,
}

struct ValveTopics {
    set: String,
    state: String,
    /// Wakes the valve reporter after a command.
    commanded: Notify,
    /// Last state published, to publish only changes.
    published: std::sync::Mutex<Option<ValveState>>,
}

impl Node {
    fn reading(&self) -> Telemetry {
        let now = self.clock.now_ms();
        let room_c = self.io.temperature_c(now);
        let uptime = ((now - self.start_ms).max(0) / 1000) as u32;
        self.sensor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read(room_c, uptime)
    }

    /// The node's clock for buffered readings, ms.
    fn now_ms(&self) -> u64 {
        self.clock.now_ms().max(0) as u64
    }

    /// Keeps a reading if the node is disconnected; `false` (not kept)
    /// when connected. Decided under the buffer's lock, which the
    /// reconnection holds from its flush until it marks the node
    /// connected: a live reading never goes out before the buffered ones.
    fn keep_if_offline(&self, t: Telemetry, connected: &AtomicBool) -> bool {
        let mut buffer = self.offline.lock().unwrap_or_else(|e| e.into_inner());
        if connected.load(Ordering::Relaxed) {
            return false;
        }
        self.control.kept_offline.fetch_add(1, Ordering::SeqCst);
        if buffer.push(t, self.now_ms()).is_some() && buffer.dropped() == 1 {
            tracing::warn!(
                "twin node {}: offline buffer full ({OFFLINE_READINGS} readings): dropping the oldest",
                self.cfg.node_id
            );
        }
        true
    }

    /// What the firmware sends right after connecting. `try_publish`: the
    /// event loop is polled by the caller, so awaiting here could deadlock.
    fn on_connack(&self, connected: &AtomicBool) {
        let publish = |topic: &str, qos, retain, payload: Vec<u8>| {
            if let Err(e) = self.client.try_publish(topic, qos, retain, payload) {
                tracing::warn!("twin node {}: cannot queue {topic}: {e}", self.cfg.node_id);
            }
        };
        publish(
            &self.status_topic,
            QoS::AtLeastOnce,
            true,
            hearth_node_core::STATUS_ONLINE.into(),
        );
        publish(
            &self.announce_topic,
            QoS::AtLeastOnce,
            true,
            self.announce.clone(),
        );
        // What was measured while offline, before the fresh reading (the
        // bridge drops a late reading older than the newest it has).
        let sent = {
            let mut buffer = self.offline.lock().unwrap_or_else(|e| e.into_inner());
            let sent = flush_offline(&mut buffer, self.now_ms(), |payload| {
                self.client
                    .try_publish(&self.telemetry_topic, QoS::AtMostOnce, false, payload)
                    .is_ok()
            });
            connected.store(true, Ordering::Relaxed);
            sent
        };
        if sent > 0 {
            tracing::debug!(
                "twin node {}: sent {sent} reading(s) taken while offline",
                self.cfg.node_id
            );
            self.control.published.fetch_add(sent, Ordering::SeqCst);
        }
        publish(
            &self.telemetry_topic,
            QoS::AtMostOnce,
            false,
            telemetry_payload(&self.reading()),
        );
        if let Some(v) = &self.valve {
            // Clean session: subscriptions do not survive a reconnection.
            if let Err(e) = self.client.try_subscribe(&v.set, QoS::AtLeastOnce) {
                tracing::warn!(
                    "twin node {}: cannot subscribe to {}: {e}",
                    self.cfg.node_id,
                    v.set
                );
            }
            *v.published.lock().unwrap_or_else(|e| e.into_inner()) = None;
            self.report_valve();
        }
    }

    /// The valve's state now (`None` without a valve) and the sim ms until
    /// it reaches its target.
    fn valve_now(&self) -> Option<(ValveState, u64)> {
        let mut out = None;
        self.io.with_valve(self.clock.now_ms(), &mut |v| {
            out = Some((v.state(), v.remaining_ms()));
        });
        out
    }

    /// Publishes `valve/state` (retained) if it changed since the last one.
    fn report_valve(&self) {
        let (Some(v), Some((state, _))) = (&self.valve, self.valve_now()) else {
            return;
        };
        let mut published = v.published.lock().unwrap_or_else(|e| e.into_inner());
        if *published == Some(state) {
            return;
        }
        let mut buf = [0u8; 64];
        // Two bounded integers: always fits.
        let Ok(json) = encode(&state, &mut buf) else {
            return;
        };
        match self
            .client
            .try_publish(&v.state, QoS::AtLeastOnce, true, json.to_vec())
        {
            Ok(()) => *published = Some(state),
            Err(e) => tracing::warn!(
                "twin node {}: cannot queue {}: {e}",
                self.cfg.node_id,
                v.state
            ),
        }
    }

    /// A message on `valve/set`, as the firmware handles it: validated,
    /// logged when rejected, never a panic.
    fn on_valve_set(&self, payload: &[u8]) {
        let Some(v) = &self.valve else { return };
        match parse_valve_command(payload) {
            Ok(cmd) => {
                let now = self.clock.now_ms();
                self.io.with_valve(now, &mut |a| a.command(cmd, now));
                tracing::debug!("twin node {}: valve command {cmd:?}", self.cfg.node_id);
                v.commanded.notify_one();
            }
            Err(e) => tracing::warn!(
                "twin node {}: rejected {} payload `{}`: {e}",
                self.cfg.node_id,
                v.set,
                crate::broker::excerpt(payload)
            ),
        }
    }
}

/// Connects node `cfg.node_id` to `broker` and runs it until shutdown,
/// reading the server room's plant.
pub fn spawn(
    clock: Clock,
    broker: &BrokerAddress,
    cfg: NodeSimConfig,
    plant: SharedPlant,
    control: Arc<NodeControl>,
    shutdown: Shutdown,
) -> anyhow::Result<JoinHandle<()>> {
    spawn_with(clock, broker, cfg, plant, control, shutdown)
}

/// Connects node `cfg.node_id` to the broker and runs it until shutdown,
/// measuring and driving `io` (with the valve protocol if `io` has a
/// valve).
pub fn spawn_with(
    clock: Clock,
    broker: &BrokerAddress,
    cfg: NodeSimConfig,
    io: Arc<dyn NodeIo>,
    control: Arc<NodeControl>,
    shutdown: Shutdown,
) -> anyhow::Result<JoinHandle<()>> {
    let t = |k| {
        topic(&cfg.node_id, k)
            .map(|t| t.to_string())
            .map_err(|e| anyhow::anyhow!("{e}: `{}`", cfg.node_id))
    };
    let (status_topic, announce_topic, telemetry_topic) = (
        t(TopicKind::Status)?,
        t(TopicKind::Announce)?,
        t(TopicKind::Telemetry)?,
    );

    // `broker` carries the node's credential and TLS when it has them
    // (`hearth demo --secure`), like the firmware's sealed secrets.
    let mut opts = crate::broker::client::options(&format!("hearth-node-{}", cfg.node_id), broker)?;
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_last_will(LastWill::new(
        &status_topic,
        hearth_node_core::STATUS_OFFLINE,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, eventloop) = AsyncClient::new(opts, 64);

    let mut travel_s = None;
    io.with_valve(clock.now_ms(), &mut |v| travel_s = Some(v.travel_s()));
    let valve = match travel_s {
        Some(_) => Some(ValveTopics {
            set: t(TopicKind::ValveSet)?,
            state: t(TopicKind::ValveState)?,
            commanded: Notify::new(),
            published: std::sync::Mutex::new(None),
        }),
        None => None,
    };
    let node = Arc::new(Node {
        control,
        announce: announce_payload_with(&cfg, travel_s.map(|travel_s| ValveInfo { travel_s }))?,
        sensor: std::sync::Mutex::new(Sensor::new(cfg.seed)),
        offline: std::sync::Mutex::new(OfflineBuffer::new()),
        start_ms: clock.now_ms(),
        cfg,
        clock,
        io,
        client,
        status_topic,
        announce_topic,
        telemetry_topic,
        valve,
    });
    Ok(tokio::spawn(run(node, eventloop, shutdown)))
}

async fn run(node: Arc<Node>, mut eventloop: rumqttc::EventLoop, mut shutdown: Shutdown) {
    let connected = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn(telemetry_loop(
        node.clone(),
        connected.clone(),
        shutdown.clone(),
    ));
    let reporter = node.valve.is_some().then(|| {
        tokio::spawn(valve_loop(
            node.clone(),
            connected.clone(),
            shutdown.clone(),
        ))
    });
    let id = node.cfg.node_id.clone();
    let mut failures = 0u32;
    loop {
        tokio::select! {
            _ = shutdown.wait() => break,
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    if failures > 0 {
                        tracing::info!("twin node {id}: reconnected after {failures} failed attempt(s)");
                    } else {
                        tracing::debug!("twin node {id}: connected");
                    }
                    failures = 0;
                    node.on_connack(&connected);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if node.valve.as_ref().is_some_and(|v| v.set == p.topic) {
                        node.on_valve_set(&p.payload);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    connected.store(false, Ordering::Relaxed);
                    if failures == 0 {
                        tracing::warn!("twin node {id}: MQTT connection lost: {e}; reconnecting");
                    }
                    failures += 1;
                    tokio::select! {
                        _ = shutdown.wait() => break,
                        _ = tokio::time::sleep(RECONNECT_WALL) => {}
                    }
                }
            }
        }
    }
    // Dropping the event loop closes the socket without DISCONNECT, so the
    // broker publishes the last will: the node "lost power".
    ticker.abort();
    if let Some(r) = reporter {
        r.abort();
    }
}

/// Reports the valve: after each command, every [`VALVE_REPORT_MS`] while
/// it moves, and at the instant it reaches its target.
async fn valve_loop(node: Arc<Node>, connected: Arc<AtomicBool>, mut shutdown: Shutdown) {
    let Some(v) = &node.valve else { return };
    loop {
        if connected.load(Ordering::Relaxed) {
            node.report_valve();
        }
        let remaining_ms = node.valve_now().map_or(0, |(_, r)| r);
        let wait = if remaining_ms > 0 {
            // At least 1 ms of wall time: the timer's resolution.
            node.clock
                .wall(remaining_ms.min(VALVE_REPORT_MS) as f64)
                .max(Duration::from_millis(1))
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = v.commanded.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

async fn telemetry_loop(node: Arc<Node>, connected: Arc<AtomicBool>, mut shutdown: Shutdown) {
    let period_ms = f64::from(node.cfg.interval_s.max(1)) * 1000.0;
    // A schedule, not a sleep after each reading: at high simulation speeds
    // the period is about a millisecond, the timer's resolution, and the
    // node must still keep its rate on average.
    let period = node.clock.wall(period_ms).max(Duration::from_micros(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = ticker.tick() => {}
        }
        if node.control.paused.load(Ordering::SeqCst) {
            continue;
        }
        // Disconnected: into the offline buffer (rumqttc would drop a
        // queued QoS 0 message at the reconnection: clean session).
        let t = node.reading();
        if node.keep_if_offline(t, &connected) {
            continue;
        }
        let payload = telemetry_payload(&t);
        match node
            .client
            .try_publish(&node.telemetry_topic, QoS::AtMostOnce, false, payload)
        {
            Ok(()) => {
                node.control.published.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => {
                tracing::debug!("twin node {}: telemetry dropped: {e}", node.cfg.node_id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> NodeSimConfig {
        NodeSimConfig {
            node_id: "server-room".into(),
            name: "Server room".into(),
            interval_s: 10,
            seed: 42,
        }
    }

    #[test]
    fn readings_are_noisy_rounded_and_reproducible() {
        let mut a = Sensor::new(1);
        let mut b = Sensor::new(1);
        let mut temps = Vec::new();
        for i in 0..2000 {
            let ta = a.read(24.0, i);
            assert_eq!(ta, b.read(24.0, i), "same seed, same readings");
            ta.check().unwrap();
            let t = f64::from(ta.temperature.unwrap());
            assert!(
                ((t * 100.0).round() - t * 100.0).abs() < 1e-3,
                "0.01 °C steps: {t}"
            );
            assert_eq!(ta.uptime, Some(i));
            temps.push(t);
        }
        let mean = temps.iter().sum::<f64>() / temps.len() as f64;
        let sd =
            (temps.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / temps.len() as f64).sqrt();
        assert!((mean - 24.0).abs() < 0.005, "mean {mean}");
        assert!((sd - 0.03).abs() < 0.005, "σ {sd}");
    }

    #[test]
    fn payloads_decode_with_node_core() {
        let ann = announce_payload(&cfg()).unwrap();
        let a = hearth_node_core::decode_announce(&ann).unwrap();
        assert_eq!(a.id, "server-room");
        assert_eq!(a.name, "Server room");
        assert_eq!(a.interval_s, 10);
        assert_eq!(a.sensors.as_slice(), &SensorKind::ALL);

        let t = Sensor::new(3).read(25.0, 7);
        let bytes = telemetry_payload(&t);
        assert_eq!(hearth_node_core::decode_telemetry(&bytes).unwrap(), t);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["uptime"], 7);
    }

    #[test]
    fn offline_readings_go_out_oldest_first_with_their_age() {
        let mut sensor = Sensor::new(5);
        let mut buffer = OfflineBuffer::<3>::new();
        for i in 0..4u32 {
            buffer.push(sensor.read(22.0, i * 10), u64::from(i) * 10_000);
        }
        assert_eq!(buffer.dropped(), 1, "the oldest went");
        // The link refuses the second: it stays for the next reconnection.
        let mut sent = Vec::new();
        let n = flush_offline(&mut buffer, 60_000, |p| {
            sent.push(p);
            sent.len() < 2
        });
        assert_eq!((n, buffer.len()), (1, 2));
        let mut sent = Vec::new();
        assert_eq!(
            flush_offline(&mut buffer, 70_000, |p| {
                sent.push(p);
                true
            }),
            2
        );
        let got: Vec<(Option<u32>, Option<u32>)> = sent
            .iter()
            .map(|p| hearth_node_core::decode_telemetry(p).unwrap())
            .map(|t| (t.uptime, t.age_ms))
            .collect();
        assert_eq!(
            got,
            vec![(Some(20), Some(50_000)), (Some(30), Some(40_000))]
        );
        assert!(buffer.is_empty());
    }
}
