//! Closed-loop IR: did the air conditioner follow the command?
//!
//! Infrared is one-way: a gateway (Tasmota `IRhvac`, a Broadlink RM4's
//! `send_data`) transmits a frame and never learns whether the unit received
//! it (someone in the beam, a receiver out of line of sight, a unit busy in
//! a defrost cycle). What the bridge can see is the unit's electrical draw on
//! the plug that feeds it (a Shelly, a Meross, a Tasmota power sensor). An
//! AC switched on by remote runs at least its indoor fan (the twin's
//! [`crate::twin::room::FAN_ELECTRICAL_W`] is 60 W; real split units draw
//! 20–80 W fan-only), even while its compressor idles because the room is
//! already cold enough; switched off it draws only its standby electronics
//! (1–5 W). So `on_power_w` (default [`DEFAULT_ON_POWER_W`] = 15 W) sits
//! between the two: above it the unit counts as on, at or below it as off.
//! The compressor (hundreds of W) is not needed to confirm "on".
//!
//! One [`IrConfirm`] per AC, owned by its IR driver. A driver that can
//! hand over a transmitter ([`SendFn`], e.g. an MQTT publish) sends every
//! command through [`IrConfirm::send`] and the re-sends happen here. A
//! driver whose transmitter is its own mutable state (a Broadlink session)
//! calls [`IrConfirm::transmitted`] after each new command and re-transmits
//! its current state when its [`Resends::next`] says so. After a frame
//! went out:
//! 1. wait up to `confirm_delay_s` (simulated time, the crate's
//!    [`Clock`](crate::clock::Clock)) for the power to be on the expected
//!    side of `on_power_w`; a reading already there counts (a keep-alive
//!    re-send of the state the unit is in is confirmed at once);
//! 2. if not, re-send the same frame (IR frames carry the whole remote
//!    state, so the last frame is the whole command) and wait again, up to
//!    `max_resends` times;
//! 3. then turn `binary_sensor.<id>_ir_problem` (device class `problem`)
//!    on and raise ONE alert (`driver:<id>/ir_problem`, warning, about the
//!    climate entity) through the [`AlertHub`](crate::alerts::AlertHub).
//!    Later failures while the problem stands do not raise it again.
//!
//! A later command that is confirmed turns the problem off and clears the
//! alert. A newer command supersedes a pending confirmation: each command
//! gets a generation number and a re-send goes out only while its command is
//! the latest (checked under the transmit lock with [`IrConfirm::send`], in
//! the driver's own loop with [`Resends::next`]), so a stale frame never
//! follows a newer one.
//!
//! Not confirmed, and said so in the log:
//! - without a `power_sensor` in the AC's config, confirmation is off (no
//!   problem entity, no re-sends);
//! - while the power sensor has no numeric reading (its plug unavailable),
//!   a command is neither re-sent nor reported as not followed: the bridge
//!   cannot tell.
//!
//! A plug whose relay is open reads 0 W: an AC commanded on behind it cannot
//! follow, and the problem's message shows the reading.
//!
//! The meter shows the power state only: a new target or fan speed missed
//! while the AC stays on (or off) draws what it drew and is confirmed. The
//! controllers' periodic re-sends (`keep_alive`) correct those.
//!
//! The thermostat plugin's own `ac_not_cooling` problem (compressor power
//! while too hot) is separate and unchanged: this checks the remote's
//! power state, for every command source (plugins, HA, the API).

use super::DriverContext;
use crate::alerts::{AlertHub, NewAlert, Severity};
use crate::clock::Clock;
use crate::entity::{Component, EntitySpec, EntityStore};
use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// W above which the AC counts as on (its indoor fan runs): above standby
/// (1–5 W), below any unit's fan-only draw (20–80 W).
pub const DEFAULT_ON_POWER_W: f64 = 15.0;
/// Simulated s to wait for the power to follow, per attempt. Plugs report
/// every few seconds (Shelly polled at 5 s, Tasmota on a power delta), and
/// an AC takes a few seconds to start its fan.
pub const DEFAULT_CONFIRM_DELAY_S: f64 = 60.0;
/// Re-sends before the problem is raised.
pub const DEFAULT_MAX_RESENDS: u32 = 2;
/// Simulated ms between two looks at the power sensor while waiting.
const LOOK_EVERY_MS: f64 = 1000.0;
/// Least wall time between two looks, so a fast clock never spins.
const MIN_LOOK_WALL: Duration = Duration::from_millis(20);
/// Alert key (the source is `driver:<device id>`).
pub const ALERT_KEY: &str = "ir_problem";

pub fn default_on_power_w() -> f64 {
    DEFAULT_ON_POWER_W
}
pub fn default_confirm_delay_s() -> f64 {
    DEFAULT_CONFIRM_DELAY_S
}
pub fn default_max_resends() -> u32 {
    DEFAULT_MAX_RESENDS
}

/// The confirmation keys of an IR AC's config section (`[[ir_ac]]`,
/// `[[broadlink]]`).
#[derive(Debug, Clone, PartialEq)]
pub struct IrConfirmConfig {
    /// The AC's electrical power sensor (W); `None`: confirmation off.
    pub power_sensor: Option<String>,
    /// W above which the AC counts as on.
    pub on_power_w: f64,
    /// Simulated s to wait for the power to follow, per attempt.
    pub confirm_delay_s: f64,
    /// Re-sends before the problem is raised.
    pub max_resends: u32,
}

impl Default for IrConfirmConfig {
    fn default() -> Self {
        IrConfirmConfig {
            power_sensor: None,
            on_power_w: DEFAULT_ON_POWER_W,
            confirm_delay_s: DEFAULT_CONFIRM_DELAY_S,
            max_resends: DEFAULT_MAX_RESENDS,
        }
    }
}

impl IrConfirmConfig {
    /// Ranges serde cannot check; `what` names the section (`ir_ac `ac``).
    pub fn validate(&self, what: &str) -> Result<(), String> {
        if !(self.on_power_w.is_finite() && (0.0..=100_000.0).contains(&self.on_power_w)) {
            return Err(format!(
                "{what}: on_power_w must be 0 to 100000 W (got {})",
                self.on_power_w
            ));
        }
        if !(self.confirm_delay_s.is_finite() && (1.0..=3600.0).contains(&self.confirm_delay_s)) {
            return Err(format!(
                "{what}: confirm_delay_s must be 1 to 3600 s (got {})",
                self.confirm_delay_s
            ));
        }
        if self.max_resends > 10 {
            return Err(format!(
                "{what}: max_resends must be 0 to 10 (got {})",
                self.max_resends
            ));
        }
        Ok(())
    }
}

/// Transmits one IR frame; called again, unchanged, for a re-send.
pub type SendFn = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A frame sent and awaiting confirmation.
#[derive(Clone)]
struct Pending {
    /// Number of the command this confirms (see [`Inner::generation`]).
    generation: u64,
    expect_on: bool,
    /// `None`: the driver re-sends ([`Resends`]).
    send: Option<SendFn>,
}

/// A re-send the driver makes itself.
#[derive(Debug, Clone, Copy)]
struct Resend {
    generation: u64,
    expect_on: bool,
}

/// Re-sends due, for a driver that transmits itself
/// ([`IrConfirm::transmitted`]); from [`IrConfirm::take_resends`].
pub struct Resends {
    rx: Option<mpsc::Receiver<Resend>>,
    generation: Arc<AtomicU64>,
}

impl Resends {
    /// Resolves when the latest command must be re-transmitted, with the
    /// power state it should leave the AC in; never, with confirmation off.
    /// A request for a command older than the latest
    /// [`transmitted`](IrConfirm::transmitted) one is dropped here, so a
    /// driver that awaits this in its own loop never sends a stale frame.
    /// Re-transmit without calling `transmitted` again.
    pub async fn next(&mut self) -> bool {
        let Some(rx) = self.rx.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Some(r) if r.generation == self.generation.load(Ordering::SeqCst) => {
                    return r.expect_on;
                }
                Some(_) => continue,
                None => return std::future::pending().await,
            }
        }
    }
}

/// How a confirmation ended.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// The power is on the expected side (`resends` re-sends were needed).
    Confirmed { resends: u32, watts: f64 },
    /// Every attempt timed out; the last reading.
    NotFollowed { watts: f64 },
    /// The sensor had no numeric reading at the end: cannot tell.
    NoReading,
    /// A newer command was sent.
    Superseded,
}

struct Inner {
    device_id: String,
    /// The AC's name, for the log and the alert.
    name: String,
    climate_entity: String,
    problem_entity: String,
    power_sensor: String,
    cfg: IrConfirmConfig,
    store: Arc<EntityStore>,
    clock: Clock,
    alerts: Option<Arc<AlertHub>>,
    /// Held while [`IrConfirm::send`] or a re-send transmits a frame.
    transmit: tokio::sync::Mutex<()>,
    /// Commands sent so far (the latest one's number).
    generation: Arc<AtomicU64>,
    pending: watch::Sender<Option<Pending>>,
    /// Re-sends asked of a driver that transmits itself.
    resends: mpsc::Sender<Resend>,
    /// The problem entity is on (and the alert raised).
    problem: Mutex<bool>,
}

/// Confirms one AC's IR commands against its power sensor. Cheap to keep;
/// its task ends at shutdown or when it is dropped.
pub struct IrConfirm {
    inner: Option<Arc<Inner>>,
    resends: Option<Resends>,
}

impl IrConfirm {
    /// Registers `binary_sensor.<device_id>_ir_problem` on the device
    /// (which must exist) and starts the confirmation task; with no
    /// `power_sensor`, does neither and [`send`](Self::send) only sends.
    /// `climate_entity` is what the alert is about.
    pub fn start(
        device_id: &str,
        name: &str,
        climate_entity: &str,
        cfg: IrConfirmConfig,
        ctx: &DriverContext,
    ) -> anyhow::Result<IrConfirm> {
        let Some(power_sensor) = cfg.power_sensor.clone() else {
            tracing::info!("{name}: no power_sensor configured: IR commands are not confirmed");
            return Ok(IrConfirm {
                inner: None,
                resends: None,
            });
        };
        let spec = problem_spec(device_id);
        let problem_entity = spec.entity_id.clone();
        ctx.store.upsert_entity(spec)?;
        // An alert kept across a restart keeps the problem on until a
        // command is confirmed.
        let source = alert_source(device_id);
        let active = ctx.alerts.as_ref().is_some_and(|hub| {
            hub.list()
                .iter()
                .any(|a| a.active && a.source == source && a.key == ALERT_KEY)
        });
        let (pending, rx) = watch::channel(None);
        let (resends, resends_rx) = mpsc::channel(4);
        let generation = Arc::new(AtomicU64::new(0));
        let inner = Arc::new(Inner {
            device_id: device_id.into(),
            name: name.into(),
            climate_entity: climate_entity.into(),
            problem_entity,
            power_sensor,
            cfg,
            store: ctx.store.clone(),
            clock: ctx.clock,
            alerts: ctx.alerts.clone(),
            transmit: tokio::sync::Mutex::new(()),
            generation: generation.clone(),
            pending,
            resends,
            problem: Mutex::new(active),
        });
        inner.publish_problem(active, None);
        tokio::spawn(run(inner.clone(), rx, ctx.shutdown.clone()));
        Ok(IrConfirm {
            inner: Some(inner),
            resends: Some(Resends {
                rx: Some(resends_rx),
                generation,
            }),
        })
    }

    /// The re-sends a driver that calls [`transmitted`](Self::transmitted)
    /// must make (once; later calls get one that never fires).
    pub fn take_resends(&mut self) -> Resends {
        self.resends.take().unwrap_or(Resends {
            rx: None,
            generation: Arc::default(),
        })
    }

    /// For a driver that transmits itself: a new command's frame went out
    /// and should leave the AC on (`expect_on`) or off. Confirms it in the
    /// background; re-sends come through [`Resends::next`].
    pub fn transmitted(&self, expect_on: bool) {
        if let Some(inner) = &self.inner {
            let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
            inner.pending.send_replace(Some(Pending {
                generation,
                expect_on,
                send: None,
            }));
        }
    }

    /// The problem entity's id, when confirmation is on.
    pub fn problem_entity(&self) -> Option<&str> {
        self.inner.as_deref().map(|i| i.problem_entity.as_str())
    }

    /// Transmits a frame that should leave the AC on (`expect_on`) or off,
    /// then confirms it in the background (re-sending `send` as needed).
    /// Returns the first transmission's result; a failed one cancels any
    /// pending confirmation (its re-sends would repeat an older command).
    pub async fn send(&self, expect_on: bool, send: SendFn) -> anyhow::Result<()> {
        let Some(inner) = &self.inner else {
            return send().await;
        };
        let _transmitting = inner.transmit.lock().await;
        let result = send().await;
        let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let pending = result.is_ok().then(|| Pending {
            generation,
            expect_on,
            send: Some(send),
        });
        inner.pending.send_replace(pending);
        result
    }
}

/// `binary_sensor.<device_id>_ir_problem`.
pub fn problem_spec(device_id: &str) -> EntitySpec {
    EntitySpec::new(device_id, "ir_problem", Component::BinarySensor)
        .named("IR problem")
        .class("problem")
        .diagnostic()
}

fn alert_source(device_id: &str) -> String {
    format!("driver:{device_id}")
}

/// Confirms the latest pending frame; a newer one cancels it.
async fn run(
    inner: Arc<Inner>,
    mut rx: watch::Receiver<Option<Pending>>,
    mut shutdown: crate::shutdown::Shutdown,
) {
    loop {
        let pending = rx.borrow_and_update().clone();
        if let Some(p) = pending {
            tokio::select! {
                outcome = inner.confirm(&p) => inner.conclude(&p, outcome),
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue; // superseded: confirm the newer one
                }
                _ = shutdown.wait() => return,
            }
        }
        tokio::select! {
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = shutdown.wait() => return,
        }
    }
}

impl Inner {
    /// The power sensor's reading, W.
    fn watts(&self) -> Option<f64> {
        self.store.get(&self.power_sensor).and_then(|s| s.number())
    }

    fn followed(&self, expect_on: bool, watts: f64) -> bool {
        (watts > self.cfg.on_power_w) == expect_on
    }

    async fn confirm(&self, p: &Pending) -> Outcome {
        let delay_ms = self.cfg.confirm_delay_s * 1000.0;
        let mut last = None;
        for attempt in 0..=self.cfg.max_resends {
            if attempt > 0 {
                let _transmitting = self.transmit.lock().await;
                if self.generation.load(Ordering::SeqCst) != p.generation {
                    return Outcome::Superseded;
                }
                tracing::info!(
                    "{}: the AC did not turn {} within {} s ({}): re-sending the IR command ({attempt}/{})",
                    self.name,
                    on_off(p.expect_on),
                    self.cfg.confirm_delay_s,
                    self.reading_text(last),
                    self.cfg.max_resends
                );
                match &p.send {
                    Some(send) => {
                        if let Err(e) = send().await {
                            tracing::warn!("{}: IR re-send failed: {e:#}", self.name);
                        }
                    }
                    None => {
                        let resend = Resend {
                            generation: p.generation,
                            expect_on: p.expect_on,
                        };
                        if self.resends.try_send(resend).is_err() {
                            tracing::warn!(
                                "{}: IR re-send not queued (the driver is busy)",
                                self.name
                            );
                        }
                    }
                }
            }
            let deadline = self.clock.now_ms() as f64 + delay_ms;
            loop {
                last = self.watts();
                if let Some(w) = last.filter(|&w| self.followed(p.expect_on, w)) {
                    return Outcome::Confirmed {
                        resends: attempt,
                        watts: w,
                    };
                }
                let left = deadline - self.clock.now_ms() as f64;
                if left <= 0.0 {
                    break;
                }
                let wall = self.clock.wall(left.min(LOOK_EVERY_MS)).max(MIN_LOOK_WALL);
                tokio::time::sleep(wall).await;
            }
            if last.is_none() {
                return Outcome::NoReading;
            }
        }
        Outcome::NotFollowed {
            watts: last.unwrap_or(f64::NAN),
        }
    }

    fn reading_text(&self, watts: Option<f64>) -> String {
        match watts {
            Some(w) => format!(
                "{} reads {w:.0} W, on above {:.0} W",
                self.power_sensor, self.cfg.on_power_w
            ),
            None => format!("{} has no reading", self.power_sensor),
        }
    }

    fn conclude(&self, p: &Pending, outcome: Outcome) {
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Outcome::Confirmed { resends, watts } => {
                if resends > 0 {
                    tracing::info!(
                        "{}: the AC turned {} after {resends} IR re-send(s) ({watts:.0} W)",
                        self.name,
                        on_off(p.expect_on)
                    );
                } else {
                    tracing::debug!("{}: IR command confirmed ({watts:.0} W)", self.name);
                }
                if *problem {
                    *problem = false;
                    tracing::info!(
                        "{}: the AC follows its IR commands again: {} off",
                        self.name,
                        self.problem_entity
                    );
                    self.publish_problem(false, Some(watts));
                }
                // Also an alert kept from an earlier run.
                if let Some(hub) = &self.alerts {
                    hub.clear(&alert_source(&self.device_id), ALERT_KEY);
                }
            }
            Outcome::NotFollowed { watts } => {
                let message = format!(
                    "{} did not turn {} after the IR command and {} re-send(s), {} s apart: {}",
                    self.name,
                    on_off(p.expect_on),
                    self.cfg.max_resends,
                    self.cfg.confirm_delay_s,
                    self.reading_text(Some(watts)),
                );
                if *problem {
                    tracing::info!("{message} (problem already raised)");
                    return;
                }
                *problem = true;
                tracing::warn!("{message}: {} on", self.problem_entity);
                self.publish_problem(true, Some(watts));
                if let Some(hub) = &self.alerts {
                    let alert = NewAlert {
                        source: alert_source(&self.device_id),
                        key: ALERT_KEY.into(),
                        entity_id: Some(self.climate_entity.clone()),
                        severity: Severity::Warning,
                        title: format!("{}: not following IR commands", self.name),
                        message,
                    };
                    if let Err(e) = hub.raise(alert) {
                        tracing::warn!("{}: alert refused: {e}", self.name);
                    }
                }
            }
            Outcome::NoReading => tracing::warn!(
                "{}: cannot confirm the IR command ({}): not re-sent",
                self.name,
                self.reading_text(None)
            ),
            Outcome::Superseded => {}
        }
    }

    fn publish_problem(&self, on: bool, watts: Option<f64>) {
        let mut attrs = Map::new();
        attrs.insert("power_sensor".into(), json!(self.power_sensor));
        attrs.insert("on_power_w".into(), json!(self.cfg.on_power_w));
        if let Some(w) = watts.filter(|w| w.is_finite()) {
            attrs.insert("power_w".into(), json!(w));
        }
        attrs.insert(
            "checked_at".into(),
            Value::from(crate::clock::iso8601(self.clock.now_ms())),
        );
        let _ = self
            .store
            .set_state(&self.problem_entity, on_off(on), attrs);
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_sit_between_standby_and_the_fan() {
        use crate::twin::room::{FAN_ELECTRICAL_W, STANDBY_ELECTRICAL_W};
        let c = IrConfirmConfig::default();
        assert!(STANDBY_ELECTRICAL_W < c.on_power_w && c.on_power_w < FAN_ELECTRICAL_W);
        assert_eq!((c.confirm_delay_s, c.max_resends), (60.0, 2));
        assert!(c.validate("ir_ac `ac`").is_ok());
    }

    #[test]
    fn out_of_range_keys_are_named() {
        let bad = |f: fn(&mut IrConfirmConfig)| {
            let mut c = IrConfirmConfig::default();
            f(&mut c);
            c.validate("ir_ac `ac`").unwrap_err()
        };
        assert!(bad(|c| c.on_power_w = f64::NAN).contains("ir_ac `ac`: on_power_w"));
        assert!(bad(|c| c.confirm_delay_s = 0.0).contains("confirm_delay_s must be 1 to 3600 s"));
        assert!(bad(|c| c.max_resends = 11).contains("max_resends must be 0 to 10"));
    }

    #[tokio::test]
    async fn a_driver_is_never_asked_to_resend_an_older_command() {
        let (tx, rx) = mpsc::channel(4);
        let generation = Arc::new(AtomicU64::new(1));
        let mut resends = Resends {
            rx: Some(rx),
            generation: generation.clone(),
        };
        let ask = |generation, expect_on| Resend {
            generation,
            expect_on,
        };
        // Asked for command 1, but command 2 (off) went out meanwhile.
        tx.try_send(ask(1, true)).unwrap();
        generation.store(2, Ordering::SeqCst);
        tx.try_send(ask(2, false)).unwrap();
        assert!(!resends.next().await, "only command 2's re-send comes out");
        tx.try_send(ask(1, true)).unwrap();
        let stale = tokio::time::timeout(Duration::from_millis(50), resends.next()).await;
        assert!(stale.is_err(), "a stale request is dropped");
    }

    #[test]
    fn the_problem_entity_is_a_problem_binary_sensor() {
        let s = problem_spec("server-room-ac");
        assert_eq!(s.entity_id, "binary_sensor.server_room_ac_ir_problem");
        assert_eq!(s.device_class.as_deref(), Some("problem"));
    }
}
