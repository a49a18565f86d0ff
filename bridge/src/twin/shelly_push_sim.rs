//! The simulated Plus Plug S of [`super::shelly_sim`] with its MQTT side
//! switched on, as a Gen2 device with "MQTT" enabled and "RPC status
//! notifications over MQTT" and "Generic status update over MQTT" ticked
//! (Shelly Gen2+ API: "MQTT" component, "Notifications",
//! <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt>):
//!
//! - `<prefix>/online`: `true` (retained) on connect; `false` is its last
//!   will, published by the broker when the link drops.
//! - `<prefix>/events/rpc`: `NotifyStatus` with `params["switch:0"]`
//!   carrying only what changed (`output` and `source` on a relay change,
//!   `apower`/`current` on a load change, `errors` on a trip), on every
//!   change of output, apower or errors.
//! - `<prefix>/status/switch:0`: the whole `Switch.GetStatus` on connect
//!   and on every change.
//! - `<prefix>/rpc`: request frames, answered on `<src>/rpc` (no `src`: no
//!   answer, as the firmware does), same methods as over HTTP.
//!
//! A watcher looks at the plant every [`WATCH_TICK`] (wall), and at once
//! after [`ShellyPushSim::set_relay`]: it enforces the plug's limits
//! ([`ShellyDevice::enforce_limits`]) and notifies the changes, so a
//! change made over HTTP, over MQTT or on the plant (the AC's compressor)
//! is pushed within a tick.
//!
//! For tests: [`ShellyPushSim::set_connected`] drops the MQTT link (the
//! broker sends the will) and brings it back; [`ShellyPushSim::set_muted`]
//! keeps the link but stops every notification (the device's
//! `rpc_ntf`/`status_ntf` off), so only HTTP polls see changes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::plant::SharedPlant;
use super::shelly_sim::{self, FaultSwitch, SharedDevice, ShellyDevice};
use crate::broker::BrokerAddress;
use crate::clock::Clock;
use crate::shutdown::Shutdown;

/// Wall period of the watcher.
pub const WATCH_TICK: Duration = Duration::from_millis(10);
const RECONNECT_WALL: Duration = Duration::from_millis(300);
/// V on the MQTT side's statuses (the HTTP side adds mains noise).
const VOLTAGE_V: f64 = 230.0;

#[derive(Debug, Clone)]
pub struct ShellyPushSimConfig {
    /// 12 hex digits; the device id is `shellyplusplugs-<mac>`.
    pub mac: String,
    pub name: String,
    /// Mains-voltage noise seed of the HTTP side.
    pub seed: u64,
    /// The MQTT topic prefix; `None`: the device id, the firmware default.
    pub prefix: Option<String>,
    /// Where its MQTT client connects (user = the device id, for
    /// [`super::TwinAccess`] passwords).
    pub broker: BrokerAddress,
}

/// A handle on the running plug. Cheap to clone.
#[derive(Clone)]
pub struct ShellyPushSim {
    clock: Clock,
    plant: SharedPlant,
    device: SharedDevice,
    fault: FaultSwitch,
    addr: SocketAddr,
    prefix: String,
    connected: Arc<watch::Sender<bool>>,
    muted: Arc<AtomicBool>,
    /// Connected to the broker now (CONNACK seen, link not dropped).
    up: Arc<AtomicBool>,
    /// Wakes the watcher at once after a change made through the handle.
    poke: Arc<tokio::sync::Notify>,
}

impl ShellyPushSim {
    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn device_id(&self) -> String {
        self.dev().id()
    }

    fn dev(&self) -> std::sync::MutexGuard<'_, ShellyDevice> {
        self.device.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The plant the plug feeds (the AC), to change its load.
    pub fn plant(&self) -> &SharedPlant {
        &self.plant
    }

    /// HTTP misbehaviour (the MQTT side is not affected).
    pub fn fault(&self) -> &FaultSwitch {
        &self.fault
    }

    /// Presses the plug's button: the relay to `on` (`source` `button`).
    pub fn set_relay(&self, on: bool) -> bool {
        let now = self.clock.now_ms();
        let was_on = {
            let mut plant = self.plant.lock().unwrap_or_else(|e| e.into_inner());
            self.dev().set_relay(&mut plant, on, now, "button")
        };
        self.poke.notify_one();
        was_on
    }

    pub fn relay_on(&self) -> bool {
        let mut plant = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        plant.advance_to(self.clock.now_ms());
        plant.relay_on()
    }

    /// (power_limit W, current_limit A) as the device holds them.
    pub fn limits(&self) -> (f64, f64) {
        let d = self.dev();
        (d.power_limit_w, d.current_limit_a)
    }

    pub fn errors(&self) -> Vec<String> {
        self.dev().errors.clone()
    }

    /// Drops (`false`) or restores (`true`) the MQTT link.
    pub fn set_connected(&self, on: bool) {
        self.connected.send_replace(on);
    }

    /// Whether the MQTT link is up (its `online` = `true` was sent).
    pub fn mqtt_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Stops (`true`) or resumes every MQTT notification.
    pub fn set_muted(&self, muted: bool) {
        self.muted.store(muted, Ordering::SeqCst);
    }

    /// `Switch.GetStatus` now, enforcing the limits first.
    fn status_now(&self) -> Value {
        let now = self.clock.now_ms();
        let mut plant = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        let mut dev = self.dev();
        dev.enforce_limits(&mut plant, now, VOLTAGE_V);
        dev.switch_status(&plant, VOLTAGE_V)
    }

    fn handle_frame(&self, body: &[u8]) -> (Value, Option<String>) {
        let now = self.clock.now_ms();
        let mut plant = self.plant.lock().unwrap_or_else(|e| e.into_inner());
        let (_, answer) = self.dev().handle_frame(&mut plant, now, VOLTAGE_V, body);
        let dst = answer
            .get("dst")
            .and_then(Value::as_str)
            .map(str::to_string);
        (answer, dst)
    }
}

/// The changed fields between two whole statuses, as a partial
/// `switch:0` object (`None`: nothing a notification carries changed).
fn delta(old: Option<&Value>, new: &Value) -> Option<Value> {
    let mut out = serde_json::Map::new();
    out.insert("id".into(), json!(0));
    let changed = |k: &str| old.is_none_or(|o| o.get(k) != new.get(k));
    if changed("output") {
        out.insert("output".into(), new["output"].clone());
        out.insert("source".into(), new["source"].clone());
    }
    if changed("apower") {
        out.insert("apower".into(), new["apower"].clone());
        out.insert("current".into(), new["current"].clone());
    }
    if changed("errors") {
        // A key that disappears is notified with a null value (Shelly Gen2
        // "Notifications", NotifyStatus).
        out.insert(
            "errors".into(),
            new.get("errors").cloned().unwrap_or(Value::Null),
        );
    }
    (out.len() > 1).then_some(Value::Object(out))
}

/// Starts the plug: HTTP on 127.0.0.1 (ephemeral port) and its MQTT
/// client (retrying until the broker is there). Runs until `shutdown`.
pub fn spawn(
    clock: Clock,
    cfg: ShellyPushSimConfig,
    plant: SharedPlant,
    shutdown: Shutdown,
) -> anyhow::Result<ShellyPushSim> {
    let device = Arc::new(Mutex::new(ShellyDevice::new(&cfg.mac, &cfg.name)));
    let fault = FaultSwitch::default();
    let (addr, _) = shelly_sim::spawn_shared(
        clock,
        device.clone(),
        cfg.seed,
        plant.clone(),
        fault.clone(),
        shutdown.clone(),
    )?;
    let id = device.lock().unwrap_or_else(|e| e.into_inner()).id();
    let (connected, _) = watch::channel(true);
    let sim = ShellyPushSim {
        clock,
        plant,
        device,
        fault,
        addr,
        prefix: cfg.prefix.clone().unwrap_or_else(|| id.clone()),
        connected: Arc::new(connected),
        muted: Arc::new(AtomicBool::new(false)),
        up: Arc::new(AtomicBool::new(false)),
        poke: Arc::new(tokio::sync::Notify::new()),
    };
    tokio::spawn(run_mqtt(sim.clone(), cfg.broker, shutdown));
    Ok(sim)
}

async fn run_mqtt(sim: ShellyPushSim, broker: BrokerAddress, mut shutdown: Shutdown) {
    let id = sim.device_id();
    let mut connected = sim.connected.subscribe();
    loop {
        // Wait for the link to be wanted.
        while !*connected.borrow_and_update() {
            tokio::select! {
                _ = shutdown.wait() => return,
                r = connected.changed() => if r.is_err() { return },
            }
        }
        let mut opts = match crate::broker::client::options(&id, &broker) {
            Ok(o) => o,
            Err(e) => return tracing::warn!("twin shelly {id}: MQTT options: {e:#}"),
        };
        opts.set_keep_alive(Duration::from_secs(5));
        opts.set_last_will(LastWill::new(
            format!("{}/online", sim.prefix),
            "false",
            QoS::AtLeastOnce,
            true,
        ));
        let (client, mut eventloop) = AsyncClient::new(opts, 256);
        // Small frames out at once (no Nagle wait for the previous
        // frame's ACK), so the latency measured is the bridge's.
        eventloop.network_options.set_tcp_nodelay(true);
        let mut tick = tokio::time::interval(WATCH_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Value> = None;
        let mut up = false;
        let mut failures = 0u32;
        loop {
            sim.up.store(up, Ordering::SeqCst);
            let ev = tokio::select! {
                _ = shutdown.wait() => return, // no DISCONNECT: the will fires
                _ = connected.changed() => {
                    if !*connected.borrow() {
                        tracing::info!("twin shelly {id}: MQTT link dropped on purpose");
                        sim.up.store(false, Ordering::SeqCst);
                        break;
                    }
                    continue;
                }
                _ = async { tokio::select! {
                    _ = tick.tick() => {}
                    _ = sim.poke.notified() => {}
                } }, if up => {
                    let status = sim.status_now();
                    if let Some(d) = delta(last.as_ref(), &status) {
                        // Muted: the change happens, its notification not.
                        if !sim.muted.load(Ordering::SeqCst) {
                            publish(&client, &sim, &d, &status);
                        }
                        last = Some(status);
                    }
                    continue;
                }
                ev = eventloop.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    failures = 0;
                    up = true;
                    let _ = client.try_subscribe(format!("{}/rpc", sim.prefix), QoS::AtLeastOnce);
                    let _ = client.try_publish(
                        format!("{}/online", sim.prefix),
                        QoS::AtLeastOnce,
                        true,
                        "true",
                    );
                    let status = sim.status_now();
                    if !sim.muted.load(Ordering::SeqCst) {
                        let _ = client.try_publish(
                            format!("{}/status/switch:0", sim.prefix),
                            QoS::AtMostOnce,
                            false,
                            status.to_string(),
                        );
                        last = Some(status);
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p)))
                    if p.topic == format!("{}/rpc", sim.prefix) =>
                {
                    let (answer, dst) = sim.handle_frame(&p.payload);
                    if let Some(dst) = dst {
                        let _ = client.try_publish(
                            format!("{dst}/rpc"),
                            QoS::AtMostOnce,
                            false,
                            answer.to_string(),
                        );
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    up = false;
                    if failures == 0 {
                        tracing::warn!("twin shelly {id}: MQTT connection lost: {e}; reconnecting");
                    }
                    failures += 1;
                    tokio::select! {
                        _ = shutdown.wait() => return,
                        _ = tokio::time::sleep(RECONNECT_WALL) => {}
                    }
                }
            }
        }
        // Dropping the client and event loop closes the socket without
        // DISCONNECT: the broker publishes the will (`online` = false).
    }
}

fn publish(client: &AsyncClient, sim: &ShellyPushSim, delta: &Value, status: &Value) {
    let me = sim.device_id();
    let ts = sim.clock.now_ms() as f64 / 1000.0;
    let frame = json!({
        "src": me, "dst": format!("{}/events", sim.prefix), "method": "NotifyStatus",
        "params": {"ts": ts, "switch:0": delta},
    });
    // try_*: awaiting the channel inside the poll loop could deadlock.
    for (topic, payload) in [
        (format!("{}/events/rpc", sim.prefix), frame.to_string()),
        (
            format!("{}/status/switch:0", sim.prefix),
            status.to_string(),
        ),
    ] {
        if let Err(e) = client.try_publish(topic, QoS::AtMostOnce, false, payload) {
            tracing::warn!("twin shelly {me}: publish dropped: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_carry_only_what_changed() {
        let a = json!({"id":0,"source":"init","output":true,"apower":2.0,"current":0.009,"voltage":230.0});
        let d = delta(None, &a).unwrap();
        assert_eq!(d["output"], true);
        assert_eq!(d["apower"], 2.0);
        assert_eq!(d.get("errors"), Some(&Value::Null), "no errors: null");
        assert_eq!(delta(Some(&a), &a), None, "nothing changed, nothing sent");
        let mut b = a.clone();
        b["apower"] = json!(2300.0);
        b["current"] = json!(10.0);
        assert_eq!(
            delta(Some(&a), &b).unwrap(),
            json!({"id":0,"apower":2300.0,"current":10.0})
        );
        let mut c = b.clone();
        c["output"] = json!(false);
        c["source"] = json!("overpower");
        c["errors"] = json!(["overpower"]);
        let d = delta(Some(&b), &c).unwrap();
        assert_eq!(d["errors"], json!(["overpower"]));
        assert_eq!(d["source"], "overpower");
        let d = delta(Some(&c), &b).unwrap();
        assert_eq!(d.get("errors"), Some(&Value::Null), "gone: null");
    }
}
