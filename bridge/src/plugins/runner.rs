//! Runs one plugin on a thread of its own: delivers the state changes of
//! the entities it reads and its ticks, routes its service calls (only to
//! entities it drives), publishes its own entities, and contains faults.
//!
//! On a fault (trap, CPU deadline, memory cap) the plugin is marked faulted,
//! its `fault` problem sensor turns on, its driven entities go to their safe
//! state (the envelope's [`FaultAction`]; an AC holds its last command) and it
//! is restarted from its last `save` after 1 s, 2 s, 4 s … up to
//! `max_backoff_s`. Events that arrive while it is down are not replayed: a
//! restarted controller reads current states itself.

use super::engine::{HostState, MemoryCap, PluginEngine, state_to_wit, wit};
use super::instance::{PluginFault, PluginInstance};
use super::{Limits, PluginConfig, WIT_PACKAGE};
use crate::entity::safety::FaultAction;
use crate::entity::{
    CallSource, Component, Device, EntitySpec, EntityStore, ServiceCall, ServiceRouter,
    StateChanged, StoreEvent,
};
use crate::shutdown::Shutdown;
use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A healthy run this long resets the backoff and clears the fault sensor.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// Most service calls, entity updates or alerts one output may carry;
/// more is a `BadOutput` fault (a plugin flooding the host).
pub const MAX_OUTPUT_ITEMS: usize = 64;
/// Service calls queued for the router; a plugin that fills it faults.
const CALL_QUEUE: usize = 256;
/// Shortest tick period granted, ms of host time.
pub const MIN_TICK_MS: u32 = 100;
/// Host names of the entities every plugin device has.
const RESERVED_KEYS: [&str; 2] = ["status", "fault"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Faulted,
    Stopped,
}

/// What `hearth plugin list` and the status sensor show.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub name: String,
    pub plugin: String,
    pub version: String,
    pub wit: &'static str,
    #[serde(rename = "status")]
    pub state: RunState,
    pub reads: Vec<String>,
    pub drives: Vec<String>,
    pub calls: u64,
    pub faults: u64,
    pub restarts: u64,
    pub last_fault: Option<String>,
    /// Events not delivered because the plugin was down.
    pub skipped_events: u64,
}

enum Input {
    State(Arc<StateChanged>),
    Tick(i64),
    Stop,
}

/// A running plugin.
pub struct PluginHandle {
    pub name: String,
    status: Arc<Mutex<PluginStatus>>,
    input: std_mpsc::Sender<Input>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PluginHandle {
    pub fn status(&self) -> PluginStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stops the plugin (before any queued event) and waits for its thread.
    pub fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.input.send(Input::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Runner {
    name: String,
    cfg: PluginConfig,
    config_json: String,
    engine: Arc<PluginEngine>,
    pre: super::engine::ControllerPre<HostState>,
    store: Arc<EntityStore>,
    router: Arc<ServiceRouter>,
    calls: mpsc::Sender<ServiceCall>,
    stopping: Arc<AtomicBool>,
    status: Arc<Mutex<PluginStatus>>,
    desc: wit::Description,
    drives: HashSet<String>,
    device_id: String,
    saved: Vec<u8>,
}

/// Compiles, instantiates, initialises and describes the plugin; any failure
/// rejects it. Then starts its thread.
pub fn start(
    engine: Arc<PluginEngine>,
    cfg: PluginConfig,
    store: Arc<EntityStore>,
    router: Arc<ServiceRouter>,
    shutdown: Shutdown,
) -> anyhow::Result<PluginHandle> {
    let name = cfg.name.clone();
    hearth_node_core::validate_node_id(&name)
        .map_err(|e| anyhow::anyhow!("plugin name `{name}`: {e}"))?;
    let bytes = super::builtin::load_bytes(&cfg.wasm)?;
    let pre = engine
        .load(&bytes)
        .with_context(|| format!("plugin `{name}` ({})", cfg.wasm))?;
    let config_json =
        serde_json::to_string(&cfg.config).context("plugin config is not representable as JSON")?;
    let mut instance = instantiate(&engine, &pre, &name, &store, &cfg.limits, &config_json)
        .map_err(|f| anyhow::anyhow!("plugin `{name}` {f}"))?;
    let desc = instance
        .describe()
        .map_err(|f| anyhow::anyhow!("plugin `{name}` describe: {f}"))?;
    if let Some(allowed) = &cfg.drives
        && let Some(bad) = desc.drives.iter().find(|d| !allowed.contains(d))
    {
        anyhow::bail!(
            "plugin `{name}` wants to drive `{bad}`, which its config does not allow (drives = {allowed:?})"
        );
    }
    tracing::info!(
        "plugin `{name}`: {} {} reads {:?}, drives {:?}",
        desc.name,
        desc.version,
        desc.reads,
        desc.drives
    );
    let status = Arc::new(Mutex::new(PluginStatus {
        name: name.clone(),
        plugin: desc.name.clone(),
        version: desc.version.clone(),
        wit: WIT_PACKAGE,
        state: RunState::Running,
        reads: desc.reads.clone(),
        drives: desc.drives.clone(),
        calls: 0,
        faults: 0,
        restarts: 0,
        last_fault: None,
        skipped_events: 0,
    }));

    let (input_tx, input_rx) = std_mpsc::channel();
    let (calls_tx, calls_rx) = mpsc::channel(CALL_QUEUE);
    let stopping = Arc::new(AtomicBool::new(false));
    let device_id = format!("plugin-{name}");
    let mut runner = Runner {
        name: name.clone(),
        drives: desc.drives.iter().cloned().collect(),
        desc,
        cfg,
        config_json,
        engine,
        pre,
        store: store.clone(),
        router: router.clone(),
        calls: calls_tx,
        stopping: stopping.clone(),
        status: status.clone(),
        device_id,
        saved: Vec::new(),
    };
    runner.register_entities()?;
    runner.saved = instance.save().unwrap_or_default();
    spawn_feeders(
        &runner,
        input_tx.clone(),
        stopping.clone(),
        shutdown.clone(),
    );
    spawn_call_executor(router, calls_rx);
    let thread = std::thread::Builder::new()
        .name(format!("plugin-{name}"))
        .spawn(move || runner.run(instance, input_rx))?;
    Ok(PluginHandle {
        name,
        status,
        input: input_tx,
        stopping,
        thread: Some(thread),
    })
}

fn instantiate(
    engine: &PluginEngine,
    pre: &super::engine::ControllerPre<HostState>,
    name: &str,
    store: &Arc<EntityStore>,
    limits: &Limits,
    config_json: &str,
) -> Result<PluginInstance, PluginFault> {
    let state = HostState {
        plugin: name.into(),
        store: store.clone(),
        clock: store.clock(),
        limiter: MemoryCap {
            max_bytes: (limits.memory_mib as usize) << 20,
            hit: false,
        },
    };
    let mut instance = PluginInstance::new(&engine.engine, pre, state, limits)?;
    instance.init(config_json)?;
    Ok(instance)
}

/// Store events → the plugin's queue (only what it reads); ticks; shutdown.
fn spawn_feeders(
    runner: &Runner,
    input: std_mpsc::Sender<Input>,
    stopping: Arc<AtomicBool>,
    mut shutdown: Shutdown,
) {
    let reads: HashSet<String> = runner.desc.reads.iter().cloned().collect();
    let (_, mut events) = runner.store.subscribe();
    let tick_ms = match runner.desc.tick_period_ms {
        0 => 0,
        t => t.max(MIN_TICK_MS),
    };
    let clock = runner.store.clock();
    tokio::spawn(async move {
        let mut next_tick = tokio::time::Instant::now();
        loop {
            let tick = async {
                if tick_ms == 0 {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep_until(next_tick).await;
            };
            let sent = tokio::select! {
                ev = events.recv() => match ev {
                    Some(StoreEvent::StateChanged(c)) if reads.contains(&c.entity_id) => input.send(Input::State(c)),
                    Some(_) => Ok(()),
                    None => break,
                },
                _ = tick => {
                    next_tick += clock.wall(f64::from(tick_ms));
                    input.send(Input::Tick(clock.now_ms()))
                }
                _ = shutdown.wait() => {
                    stopping.store(true, Ordering::SeqCst);
                    let _ = input.send(Input::Stop);
                    break;
                }
            };
            if sent.is_err() {
                break; // the plugin thread is gone
            }
        }
    });
}

/// Plugin service calls go through the router off the plugin's thread.
fn spawn_call_executor(router: Arc<ServiceRouter>, mut calls: mpsc::Receiver<ServiceCall>) {
    tokio::spawn(async move {
        while let Some(call) = calls.recv().await {
            // Refusals are logged by the router with their reason.
            let _ = router.call(call).await;
        }
    });
}

impl Runner {
    fn register_entities(&self) -> anyhow::Result<()> {
        let device = Device {
            id: self.device_id.clone(),
            name: format!("Hearth plugin {}", self.name),
            manufacturer: "Hearth".into(),
            model: format!("{} controller (WASM)", self.desc.name),
            sw_version: Some(self.desc.version.clone()),
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        };
        self.store.upsert_device("plugins", device)?;
        let status = EntitySpec::new(&self.device_id, "status", Component::Sensor)
            .named("Status")
            .diagnostic();
        let fault = EntitySpec::new(&self.device_id, "fault", Component::BinarySensor)
            .named("Fault")
            .class("problem");
        self.store.upsert_entity(status)?;
        self.store.upsert_entity(fault)?;
        let mut seen = HashSet::new();
        for decl in &self.desc.entities {
            check_object_id(&decl.object_id).map_err(|e| {
                anyhow::anyhow!("plugin `{}` declares an invalid entity: {e}", self.name)
            })?;
            anyhow::ensure!(
                seen.insert(&decl.object_id),
                "plugin `{}` declares entity `{}` twice",
                self.name,
                decl.object_id
            );
            let component = Component::parse(&decl.component)
                .filter(|c| matches!(c, Component::Sensor | Component::BinarySensor))
                .with_context(|| format!("plugin `{}` declares entity `{}` as `{}`; only sensor and binary_sensor are supported", self.name, decl.object_id, decl.component))?;
            let mut spec =
                EntitySpec::new(&self.device_id, &decl.object_id, component).named(&decl.name);
            spec.device_class = decl.device_class.clone();
            spec.unit = decl.unit_of_measurement.clone();
            spec.state_class = decl.state_class.clone();
            self.store.upsert_entity(spec)?;
            if component == Component::BinarySensor {
                self.set_own(&decl.object_id, "off", Map::new());
            }
        }
        self.set_own("fault", "off", Map::new());
        self.publish_status();
        Ok(())
    }

    fn entity_id(&self, key: &str, component: Component) -> String {
        crate::entity::entity_id_for(component, &self.device_id, key)
    }

    fn set_own(&self, key: &str, state: &str, attrs: Map<String, Value>) {
        let Some(component) = self.own_component(key) else {
            return;
        };
        let _ = self
            .store
            .set_state(&self.entity_id(key, component), state, attrs);
    }

    fn own_component(&self, key: &str) -> Option<Component> {
        match key {
            "status" => Some(Component::Sensor),
            "fault" => Some(Component::BinarySensor),
            _ => self
                .desc
                .entities
                .iter()
                .find(|d| d.object_id == key)
                .and_then(|d| Component::parse(&d.component)),
        }
    }

    fn publish_status(&self) {
        let s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Ok(Value::Object(mut attrs)) = serde_json::to_value(&s) else {
            return;
        };
        attrs.remove("state");
        let state = match s.state {
            RunState::Running => "running",
            RunState::Faulted => "faulted",
            RunState::Stopped => "stopped",
        };
        self.set_own("status", state, attrs);
    }

    fn update(&self, f: impl FnOnce(&mut PluginStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn run(mut self, mut instance: PluginInstance, input: std_mpsc::Receiver<Input>) {
        let mut consecutive_faults = 0u32;
        let mut healthy_since = Instant::now();
        while let Ok(msg) = input.recv() {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let result = match msg {
                Input::Stop => break,
                Input::State(change) => instance.on_state(&to_wit_change(&change)),
                Input::Tick(now) => instance.tick(now).and_then(|out| {
                    self.saved = instance.save()?;
                    Ok(out)
                }),
            };
            let outcome = match result.and_then(|out| check_output(&out).map(|()| out)) {
                Ok(output) => {
                    if consecutive_faults > 0 && healthy_since.elapsed() >= HEALTHY_AFTER {
                        consecutive_faults = 0;
                        tracing::info!(
                            "plugin `{}` has run cleanly for {HEALTHY_AFTER:?} after its faults",
                            self.name
                        );
                        self.set_own("fault", "off", Map::new());
                    }
                    self.apply(output)
                }
                Err(fault) => Err(fault),
            };
            if let Err(fault) = outcome {
                consecutive_faults += 1;
                self.on_fault(&fault);
                match self.restart(&input, consecutive_faults) {
                    Some(new) => {
                        instance = new;
                        healthy_since = Instant::now();
                    }
                    None => break,
                }
            }
        }
        self.update(|s| s.state = RunState::Stopped);
        tracing::info!("plugin `{}` stopped", self.name);
    }

    fn on_fault(&self, fault: &PluginFault) {
        let text = fault.to_string();
        tracing::error!(
            "ALERT plugin `{}` {text}; the bridge keeps running",
            self.name
        );
        self.update(|s| {
            s.state = RunState::Faulted;
            s.faults += 1;
            s.last_fault = Some(text.clone());
        });
        let mut attrs = Map::new();
        attrs.insert("reason".into(), json!(text));
        self.set_own("fault", "on", attrs);
        self.publish_status();
        for entity in &self.desc.drives {
            match self.router.fault_action(entity) {
                Some(FaultAction::Hold) | None => {
                    tracing::warn!(
                        "{entity}: its controller faulted; holding the last command (safe state)"
                    );
                }
                Some(FaultAction::TurnOff) => {
                    tracing::warn!("{entity}: its controller faulted; turning it off (safe state)");
                    let domain = crate::entity::domain_of(entity);
                    let call = ServiceCall::new(
                        domain,
                        "turn_off",
                        entity,
                        Map::new(),
                        CallSource::Internal,
                    );
                    if self.calls.try_send(call).is_err() {
                        tracing::error!(
                            "{entity}: could not queue the safe-state command (queue full)"
                        );
                    }
                }
            }
        }
    }

    /// Waits out the backoff (skipping events), then makes a fresh instance
    /// and restores the last saved state. `None` when told to stop.
    fn restart(
        &self,
        input: &std_mpsc::Receiver<Input>,
        consecutive: u32,
    ) -> Option<PluginInstance> {
        let mut attempt = consecutive;
        loop {
            let backoff = (2f64.powi(attempt.saturating_sub(1).min(20) as i32))
                .min(self.cfg.limits.max_backoff_s);
            tracing::warn!("plugin `{}`: restarting in {backoff:.0} s", self.name);
            let deadline = Instant::now() + Duration::from_secs_f64(backoff);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match input.recv_timeout(left) {
                    Ok(Input::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => return None,
                    Ok(_) => self.update(|s| s.skipped_events += 1),
                    Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                }
            }
            let fresh = instantiate(
                &self.engine,
                &self.pre,
                &self.name,
                &self.store,
                &self.cfg.limits,
                &self.config_json,
            )
            .and_then(|mut i| match i.restore(&self.saved)? {
                Ok(()) => Ok(i),
                Err(reason) => {
                    tracing::warn!(
                        "plugin `{}` declined its saved state ({reason}); starting fresh",
                        self.name
                    );
                    Ok(i)
                }
            });
            match fresh {
                Ok(i) => {
                    self.update(|s| {
                        s.state = RunState::Running;
                        s.restarts += 1;
                    });
                    self.publish_status();
                    tracing::info!("plugin `{}` restarted", self.name);
                    return Some(i);
                }
                Err(fault) => {
                    attempt += 1;
                    self.on_fault(&fault);
                }
            }
        }
    }

    /// Applies a plugin's output. Bad parts are logged and dropped; only
    /// flooding the call queue faults the plugin.
    fn apply(&self, out: wit::Output) -> Result<(), PluginFault> {
        for call in out.calls {
            if let Some(bad) = call.entity_ids.iter().find(|e| !self.drives.contains(*e)) {
                tracing::warn!(
                    "plugin `{}` asked {}.{} on `{bad}`, which it does not drive: refused",
                    self.name,
                    call.domain,
                    call.service
                );
                continue;
            }
            let data = match serde_json::from_str::<Value>(&call.service_data) {
                Ok(Value::Object(m)) => m,
                _ => {
                    tracing::warn!(
                        "plugin `{}`: service_data of {}.{} is not a JSON object: `{}`",
                        self.name,
                        call.domain,
                        call.service,
                        call.service_data
                    );
                    continue;
                }
            };
            self.update(|s| s.calls += 1);
            let queued = self.calls.try_send(ServiceCall {
                domain: call.domain,
                service: call.service,
                entity_ids: call.entity_ids,
                data,
                source: CallSource::Plugin(self.name.clone()),
                context: crate::entity::Context::default(),
            });
            if queued.is_err() {
                return Err(PluginFault::BadOutput(format!(
                    "{CALL_QUEUE} service calls are already waiting for the router"
                )));
            }
        }
        for e in out.entities {
            if self
                .desc
                .entities
                .iter()
                .all(|d| d.object_id != e.object_id)
            {
                tracing::warn!(
                    "plugin `{}` updated `{}`, an entity it did not declare: ignored",
                    self.name,
                    e.object_id
                );
                continue;
            }
            let attrs = match serde_json::from_str::<Value>(&e.attributes) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            self.set_own(&e.object_id, &e.state, attrs);
        }
        for a in out.alerts {
            let verb = if a.active { "raised" } else { "cleared" };
            match (a.active, a.severity) {
                (true, wit::Severity::Critical) => tracing::error!(
                    "ALERT {verb} by `{}`: {}: {}",
                    self.name,
                    a.title,
                    a.message
                ),
                (true, _) => tracing::warn!(
                    "ALERT {verb} by `{}`: {}: {}",
                    self.name,
                    a.title,
                    a.message
                ),
                (false, _) => tracing::info!(
                    "alert {verb} by `{}`: {}: {}",
                    self.name,
                    a.title,
                    a.message
                ),
            }
        }
        Ok(())
    }
}

/// Refuses outputs larger than [`MAX_OUTPUT_ITEMS`] per kind.
fn check_output(out: &wit::Output) -> Result<(), PluginFault> {
    let sizes = [
        ("service calls", out.calls.len()),
        ("entity updates", out.entities.len()),
        ("alerts", out.alerts.len()),
    ];
    match sizes.iter().find(|(_, n)| *n > MAX_OUTPUT_ITEMS) {
        Some((what, n)) => Err(PluginFault::BadOutput(format!(
            "{n} {what} in one output (at most {MAX_OUTPUT_ITEMS})"
        ))),
        None => Ok(()),
    }
}

/// A plugin entity's object id: `[a-z0-9_]{1,64}`, not one of the host's.
fn check_object_id(id: &str) -> Result<(), String> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(format!(
            "entity id `{id}` must be 1 to 64 characters of [a-z0-9_]"
        ));
    }
    if RESERVED_KEYS.contains(&id) {
        return Err(format!("entity id `{id}` is reserved for the host"));
    }
    Ok(())
}

fn to_wit_change(c: &StateChanged) -> wit::StateChange {
    wit::StateChange {
        entity_id: c.entity_id.clone(),
        old_state: c.old_state.as_ref().map(state_to_wit),
        new_state: c.new_state.as_ref().map(state_to_wit),
    }
}
