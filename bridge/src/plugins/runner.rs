//! Runs one plugin on a thread of its own: delivers the state changes of
//! the entities it reads and its ticks, routes its service calls (only to
//! entities it drives), publishes its own entities, contains faults, and
//! swaps it for another plugin between two events.
//!
//! Every input (state change, swap, save request, stop) goes through one
//! queue, in order. A swap is handled like an event: the events queued
//! before it go to the old instance, those after it to the new one, so none
//! is lost or delivered twice, and the switch itself (old `save`, new
//! `restore`) takes microseconds: control has no gap.
//!
//! On a fault (trap, CPU deadline, fuel, memory cap, bad output) the plugin
//! is marked faulted, its `fault` problem sensor turns on, its driven
//! entities go to their safe state (the envelope's [`FaultAction`]; an AC
//! holds its last command) and it is restarted from its last `save` after
//! 1 s, 2 s, 4 s … up to `max_backoff_s`. Events that arrive while it is
//! down are counted (`skipped_events`), not replayed: a restarted
//! controller reads current states itself. A swap during the backoff
//! replaces the faulty plugin at once.

use super::coalesce::Coalescer;
use super::engine::{state_to_wit, wit};
use super::instance::{CallStats, PluginFault, PluginInstance};
use super::logbook::{LogBook, LogLine};
use super::outcomes::{CallOutcomes, Emitted};
use super::owned::OwnedEntities;
use super::prepare::{self, Prepared};
use super::{Limits, PluginConfig};
use crate::entity::safety::FaultAction;
use crate::entity::{
    CallSource, EntityStore, ServiceCall, ServiceRouter, StateChanged, StoreEvent,
};
use crate::shutdown::Shutdown;
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
/// How often the status sensor's attributes (stats) are refreshed.
const STATUS_EVERY: Duration = Duration::from_secs(60);
/// Longest time between two restart points while only events arrive.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How the wait after a fault ended.
enum Restarted {
    /// A fresh instance of the same plugin, after this many attempts.
    Fresh(PluginInstance, u32),
    /// A swap replaced the faulty plugin.
    Swapped(PluginInstance),
    Stopped,
}

pub use super::prepare::MIN_TICK_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Running,
    Faulted,
    /// Faulted, waiting out its backoff before the next start.
    Restarting,
    Stopped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Faulted => "faulted",
            RunState::Restarting => "restarting",
            RunState::Stopped => "stopped",
        }
    }
}

/// What `hearth plugin list` and the status sensor show.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    /// Instance name.
    pub name: String,
    /// The plugin's own name (`describe`).
    pub plugin: String,
    /// The plugin's own version (`describe`).
    pub version: String,
    /// `hearth:controller@x.y.z` the plugin was built against.
    pub wit: String,
    /// `builtin:<name>` or the `.wasm` path.
    pub wasm: String,
    /// How its code was obtained: `hit` (code cache), `compiled`, `rebuilt`.
    pub code: super::cache::CacheOutcome,
    #[serde(rename = "status")]
    pub state: RunState,
    pub reads: Vec<String>,
    pub drives: Vec<String>,
    /// Plugin-owned entities (object ids).
    pub entities: Vec<String>,
    pub tick_period_ms: u32,
    pub limits: Limits,
    /// The config passed to its `init` (not in the status sensor's
    /// attributes: it may be large, and HA's recorder keeps attributes).
    pub config: Value,
    /// State changes delivered to `on_state`.
    pub events: u64,
    /// Service calls it made (accepted by the host).
    pub calls: u64,
    pub faults: u64,
    pub restarts: u64,
    pub swaps: u64,
    pub last_fault: Option<String>,
    /// Seconds until the next restart attempt while `restarting`.
    pub restart_in_s: Option<f64>,
    /// Events not delivered because the plugin was down.
    pub skipped_events: u64,
    /// Changes of entities it reads that a newer change of the same entity
    /// replaced before the plugin took it (a flooding device; see
    /// `coalesce`).
    pub coalesced_events: u64,
    /// CPU (fuel) and memory of the current instance.
    pub stats: CallStats,
}

/// The outcome of a swap, as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct SwapReport {
    pub name: String,
    pub from: String,
    pub to: String,
    /// Whether the new plugin accepted the old one's saved state.
    pub state_carried: bool,
    /// Its reason when it declined.
    pub state_declined: Option<String>,
    /// Bytes handed over.
    pub state_bytes: usize,
    /// Time the runner was busy switching (old save, new restore, entities), µs.
    pub switch_us: u64,
    /// Time to read, compile or load from cache, instantiate, init and
    /// describe the new plugin (off the control path), ms.
    pub prepare_ms: f64,
    pub cache: super::cache::CacheOutcome,
}

pub enum Input {
    /// A change of this entity is waiting in the runner's [`Coalescer`].
    Changed(String),
    Swap(Box<Prepared>, std_mpsc::Sender<Result<SwapReport, String>>),
    /// The plugin's current `save` bytes, taken in queue order.
    Save(std_mpsc::Sender<Vec<u8>>),
    Stop,
}

/// A running plugin.
pub struct PluginHandle {
    pub name: String,
    status: Arc<Mutex<PluginStatus>>,
    input: std_mpsc::Sender<Input>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<u8>>>,
    feeder: tokio::task::AbortHandle,
}

/// Sends swaps and save requests to a runner without holding its handle.
#[derive(Clone)]
pub struct Mailbox {
    name: String,
    input: std_mpsc::Sender<Input>,
}

impl Mailbox {
    /// Hands a prepared plugin to the runner, which switches to it between
    /// two events. Blocks until it has.
    pub fn swap(&self, prepared: Prepared) -> Result<SwapReport, String> {
        let (tx, rx) = std_mpsc::channel();
        self.input
            .send(Input::Swap(Box::new(prepared), tx))
            .map_err(|_| format!("plugin `{}` is not running", self.name))?;
        rx.recv()
            .map_err(|_| format!("plugin `{}` stopped during the swap", self.name))?
    }

    /// The plugin's `save` bytes, after every event queued before this call.
    pub fn save(&self) -> Result<Vec<u8>, String> {
        let (tx, rx) = std_mpsc::channel();
        self.input
            .send(Input::Save(tx))
            .map_err(|_| format!("plugin `{}` is not running", self.name))?;
        rx.recv()
            .map_err(|_| format!("plugin `{}` stopped", self.name))
    }
}

impl PluginHandle {
    pub fn status(&self) -> PluginStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn mailbox(&self) -> Mailbox {
        Mailbox {
            name: self.name.clone(),
            input: self.input.clone(),
        }
    }

    /// Stops the plugin (before any queued event), waits for its thread and
    /// returns its last good saved state (`None` if its thread panicked).
    pub fn stop(mut self) -> Option<Vec<u8>> {
        self.stopping.store(true, Ordering::SeqCst);
        self.feeder.abort();
        let _ = self.input.send(Input::Stop);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

/// What the runner needs of the bridge.
#[derive(Clone)]
pub struct RunnerContext {
    pub store: Arc<EntityStore>,
    pub router: Arc<ServiceRouter>,
    pub engine: Arc<super::PluginEngine>,
    pub logs: Arc<LogBook>,
    pub forecasts: Arc<crate::forecast::Forecasts>,
    pub shutdown: Shutdown,
    /// Where the plugin's alerts and its faults go.
    pub alerts: Arc<crate::alerts::AlertHub>,
    /// Call latency histograms (`GET /metrics`); `None` in tools and benches.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl RunnerContext {
    pub fn host(&self) -> prepare::HostServices<'_> {
        prepare::HostServices {
            store: &self.store,
            logs: &self.logs,
            forecasts: &self.forecasts,
        }
    }
}

/// The plugin currently behind the runner.
struct Active {
    cfg: PluginConfig,
    config_json: String,
    pre: super::engine::ControllerPre<HostState>,
    desc: wit::Description,
    reads: HashSet<String>,
    drives: HashSet<String>,
}

use super::engine::HostState;

impl Active {
    fn from(p: &Prepared) -> (Active, u32) {
        (
            Active {
                cfg: p.cfg.clone(),
                config_json: p.config_json.clone(),
                pre: p.pre.clone(),
                desc: p.desc.clone(),
                reads: p.desc.reads.iter().cloned().collect(),
                drives: p.desc.drives.iter().cloned().collect(),
            },
            p.tick_ms(),
        )
    }
}

struct Runner {
    name: String,
    /// Pending state changes, one per entity (see `coalesce`).
    coalescer: Arc<Coalescer>,
    ctx: RunnerContext,
    runtime: tokio::runtime::Handle,
    active: Active,
    tick_ms: u32,
    calls: mpsc::Sender<(ServiceCall, Emitted)>,
    /// Shared with every instance it adopts (`call-results`).
    outcomes: Arc<CallOutcomes>,
    stopping: Arc<AtomicBool>,
    status: Arc<Mutex<PluginStatus>>,
    owned: OwnedEntities,
    saved: Vec<u8>,
    status_published: Instant,
}

/// Starts a prepared plugin: registers its entities, restores `saved`
/// (state persisted by an earlier run; empty = none) and starts its thread.
pub fn start(
    ctx: RunnerContext,
    mut prepared: Prepared,
    saved: Vec<u8>,
) -> anyhow::Result<PluginHandle> {
    let name = prepared.cfg.name.clone();
    let d = &prepared.desc;
    tracing::info!(
        "plugin `{name}`: {} {} (hearth:controller@{}) reads {:?}, drives {:?}; {} in {:.1} ms",
        d.name,
        d.version,
        prepared.wit_version,
        d.reads,
        d.drives,
        match prepared.cache {
            super::cache::CacheOutcome::Hit => "loaded from the code cache",
            _ => "compiled",
        },
        prepared.prepare_time.as_secs_f64() * 1000.0
    );
    if !saved.is_empty() {
        match prepared.instance.restore(&saved) {
            Ok(Ok(())) => tracing::info!(
                "plugin `{name}`: restored its state from the last run ({} bytes)",
                saved.len()
            ),
            Ok(Err(reason)) => tracing::warn!(
                "plugin `{name}` declined its state from the last run ({reason}); starting fresh"
            ),
            Err(fault) => {
                // The state is the problem, not the plugin: start fresh
                // rather than refuse to load (and the bridge to start).
                tracing::warn!(
                    "plugin `{name}` {fault} while restoring its state from the last run; starting fresh"
                );
                prepared.instance = prepare::instantiate(
                    &ctx.engine,
                    &prepared.pre,
                    &name,
                    &ctx.host(),
                    &prepared.cfg,
                    &prepared.config_json,
                )
                .map_err(|f| anyhow::anyhow!("plugin `{name}` {f}"))?;
            }
        }
    }
    let status = Arc::new(Mutex::new(PluginStatus {
        name: name.clone(),
        plugin: String::new(),
        version: String::new(),
        wit: String::new(),
        wasm: String::new(),
        code: prepared.cache,
        state: RunState::Running,
        reads: Vec::new(),
        drives: Vec::new(),
        entities: Vec::new(),
        tick_period_ms: 0,
        limits: prepared.cfg.limits,
        config: Value::Null,
        events: 0,
        calls: 0,
        faults: 0,
        restarts: 0,
        swaps: 0,
        last_fault: None,
        restart_in_s: None,
        skipped_events: 0,
        coalesced_events: 0,
        stats: CallStats::default(),
    }));
    set_identity(&status, &prepared);
    status.lock().unwrap_or_else(|e| e.into_inner()).stats = prepared.instance.stats;

    let (input_tx, input_rx) = std_mpsc::channel();
    let (calls_tx, calls_rx) = mpsc::channel(CALL_QUEUE);
    let stopping = Arc::new(AtomicBool::new(false));
    let (active, tick_ms) = Active::from(&prepared);
    let outcomes = Arc::new(CallOutcomes::default());
    prepared.instance.share_outcomes(&outcomes);
    let coalescer = Arc::new(Coalescer::default());
    let mut runner = Runner {
        coalescer: coalescer.clone(),
        runtime: tokio::runtime::Handle::try_current()
            .map_err(|_| anyhow::anyhow!("plugins start inside the bridge's tokio runtime"))?,
        name: name.clone(),
        active,
        tick_ms,
        calls: calls_tx,
        outcomes: outcomes.clone(),
        stopping: stopping.clone(),
        status: status.clone(),
        owned: OwnedEntities::new(ctx.store.clone(), &name),
        saved: Vec::new(),
        status_published: Instant::now(),
        ctx: ctx.clone(),
    };
    runner.owned.sync(&prepared.desc)?;
    runner.owned.set("fault", "off", Map::new());
    runner.fault_alert(None);
    runner.publish_status();
    runner.saved = prepared.instance.save().unwrap_or_default();
    let feeder = spawn_feeder(&ctx, input_tx.clone(), coalescer, stopping.clone());
    spawn_call_executor(
        ctx.router.clone(),
        calls_rx,
        CallReporter {
            plugin: name.clone(),
            logs: ctx.logs.clone(),
            store: ctx.store.clone(),
            outcomes,
        },
    );
    let instance = prepared.instance;
    let thread = std::thread::Builder::new()
        .name(format!("plugin-{name}"))
        .spawn(move || runner.run(instance, input_rx))?;
    Ok(PluginHandle {
        name,
        status,
        input: input_tx,
        stopping,
        thread: Some(thread),
        feeder,
    })
}

fn set_identity(status: &Mutex<PluginStatus>, p: &Prepared) {
    let mut s = status.lock().unwrap_or_else(|e| e.into_inner());
    s.plugin = p.desc.name.clone();
    s.version = p.desc.version.clone();
    s.wit = format!("hearth:controller@{}", p.wit_version);
    s.wasm = p.cfg.wasm.clone();
    s.code = p.cache;
    s.reads = p.desc.reads.clone();
    s.drives = p.desc.drives.clone();
    s.entities = p
        .desc
        .entities
        .iter()
        .map(|e| e.object_id.clone())
        .collect();
    s.tick_period_ms = p.tick_ms();
    s.limits = p.cfg.limits;
    s.config = p.cfg.config.clone();
}

/// Store events → the plugin's queue; shutdown → stop. Every state change
/// is forwarded and the runner filters by what the current plugin reads, so
/// a swap to a plugin that reads other entities misses nothing. Changes go
/// through the [`Coalescer`]: the queue holds an entity at most once.
fn spawn_feeder(
    ctx: &RunnerContext,
    input: std_mpsc::Sender<Input>,
    coalescer: Arc<Coalescer>,
    stopping: Arc<AtomicBool>,
) -> tokio::task::AbortHandle {
    let (_, mut events) = ctx.store.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let sent = tokio::select! {
                ev = events.recv() => match ev {
                    Some(StoreEvent::StateChanged(c)) => {
                        let id = c.entity_id.clone();
                        if coalescer.put(c) {
                            input.send(Input::Changed(id))
                        } else {
                            Ok(())
                        }
                    }
                    Some(_) => Ok(()),
                    None => break,
                },
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
    })
    .abort_handle()
}

/// Where the executor reports the router's answers: the plugin's
/// `call-results` and, for a refusal, `hearth plugin logs`.
struct CallReporter {
    plugin: String,
    logs: Arc<LogBook>,
    store: Arc<EntityStore>,
    outcomes: Arc<CallOutcomes>,
}

impl CallReporter {
    /// `what`: (domain, service, entity ids) of the call.
    fn report(
        &self,
        what: (String, String, Vec<String>),
        emitted: Emitted,
        result: Result<(), String>,
    ) {
        let (domain, service, entity_ids) = what;
        if let Err(reason) = &result {
            self.logs.push(
                &self.plugin,
                LogLine {
                    time_ms: self.store.clock().now_ms(),
                    level: "warn",
                    source: "host",
                    message: format!(
                        "call #{} {domain}.{service} on {} refused: {reason}",
                        emitted.id,
                        entity_ids.join(", ")
                    ),
                },
            );
        }
        self.outcomes
            .record(emitted, &domain, &service, &entity_ids, result);
    }
}

/// Plugin service calls go through the router off the plugin's thread, in
/// order; each answer is reported to the plugin (see [`CallReporter`]).
fn spawn_call_executor(
    router: Arc<ServiceRouter>,
    mut calls: mpsc::Receiver<(ServiceCall, Emitted)>,
    reporter: CallReporter,
) {
    tokio::spawn(async move {
        while let Some((call, emitted)) = calls.recv().await {
            let what = (
                call.domain.clone(),
                call.service.clone(),
                call.entity_ids.clone(),
            );
            // The router logs refusals in the bridge's log too. Its error's
            // Display is the reason the plugin gets: for people; plugins
            // must not parse it (the SDK says so).
            let result = router.call(call).await.map_err(|e| e.to_string());
            reporter.report(what, emitted, result);
        }
    });
}

/// What the loop got from the queue or the clock.
enum Next {
    Input(Input),
    Tick,
    Closed,
}

impl Runner {
    fn log_host(&self, level: &'static str, message: String) {
        self.ctx.logs.push(
            &self.name,
            LogLine {
                time_ms: self.ctx.store.clock().now_ms(),
                level,
                source: "host",
                message,
            },
        );
    }

    fn publish_status(&mut self) {
        self.status_published = Instant::now();
        let s = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let Ok(Value::Object(mut attrs)) = serde_json::to_value(&s) else {
            return;
        };
        attrs.remove("status");
        attrs.remove("config");
        self.owned.set("status", s.state.as_str(), attrs);
    }

    fn alert_source(&self) -> String {
        format!("plugin:{}", self.name)
    }

    /// The plugin's `fault` alert: raised with the fault's text, cleared
    /// (`None`) when it runs healthily again, is swapped or starts.
    fn fault_alert(&self, fault: Option<&str>) {
        let source = self.alert_source();
        let Some(text) = fault else {
            self.ctx.alerts.clear(&source, "fault");
            return;
        };
        let raised = self.ctx.alerts.raise(crate::alerts::NewAlert {
            source,
            key: "fault".into(),
            entity_id: None,
            severity: crate::alerts::Severity::Critical,
            title: format!("Plugin `{}` faulted", self.name),
            message: format!(
                "{text}; its devices are in their safe state and it restarts with backoff"
            ),
        });
        if let Err(e) = raised {
            tracing::warn!("plugin `{}`: its fault alert: {e}", self.name);
        }
    }

    /// One `tick` or `on_state` call's wall time, into the metrics.
    fn observe_call(&self, call: &'static str, started: Instant) {
        if let Some(m) = &self.ctx.metrics {
            m.plugin_call(&self.name, call, started.elapsed());
        }
    }

    fn update(&self, f: impl FnOnce(&mut PluginStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|e| e.into_inner()));
    }

    fn tick_interval(&self) -> Option<Duration> {
        (self.tick_ms > 0).then(|| self.ctx.store.clock().wall(f64::from(self.tick_ms)))
    }

    /// The next input, or a tick when one is due first.
    fn next(&self, input: &std_mpsc::Receiver<Input>, next_tick: Option<Instant>) -> Next {
        let Some(at) = next_tick else {
            return input.recv().map_or(Next::Closed, Next::Input);
        };
        let now = Instant::now();
        if now >= at {
            return Next::Tick;
        }
        match input.recv_timeout(at - now) {
            Ok(i) => Next::Input(i),
            Err(std_mpsc::RecvTimeoutError::Timeout) => Next::Tick,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Next::Closed,
        }
    }

    fn run(mut self, mut instance: PluginInstance, input: std_mpsc::Receiver<Input>) -> Vec<u8> {
        let mut consecutive_faults = 0u32;
        let mut healthy_since = Instant::now();
        let mut next_tick = self.tick_interval().map(|i| Instant::now() + i);
        let mut last_save = Instant::now();
        // Set when a stop finds the instance faulted: its state is not saved.
        let mut faulted = false;
        loop {
            if self.stopping.load(Ordering::SeqCst) {
                break;
            }
            let mut ticked = false;
            let mut delivered = 0u64;
            let mut coalesced = 0u64;
            let began_ms = self.ctx.store.clock().now_ms();
            let result = match self.next(&input, next_tick) {
                Next::Closed | Next::Input(Input::Stop) => break,
                Next::Tick => {
                    ticked = true;
                    let now_ms = self.ctx.store.clock().now_ms();
                    let started = Instant::now();
                    let out = instance.tick(now_ms);
                    self.observe_call("tick", started);
                    // The next tick is a full period after this one ends, so
                    // a tick slower than its period cannot starve the queue.
                    next_tick = self.tick_interval().map(|i| Instant::now() + i);
                    out
                }
                Next::Input(Input::Changed(id)) => {
                    let Some((change, merged)) = self.coalescer.take(&id) else {
                        continue;
                    };
                    if !self.active.reads.contains(&change.entity_id) {
                        continue;
                    }
                    delivered = 1;
                    coalesced = merged;
                    let started = Instant::now();
                    let out = instance.on_state(&to_wit_change(&change));
                    self.observe_call("on_state", started);
                    out
                }
                Next::Input(Input::Save(reply)) => {
                    let bytes = instance.save().unwrap_or_else(|_| self.saved.clone());
                    let _ = reply.send(bytes);
                    continue;
                }
                Next::Input(Input::Swap(prepared, reply)) => {
                    match self.swap(Some(&mut instance), *prepared) {
                        Ok((new, report)) => {
                            instance = new;
                            consecutive_faults = 0;
                            healthy_since = Instant::now();
                            next_tick = self.tick_interval().map(|i| Instant::now() + i);
                            let _ = reply.send(Ok(report));
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    }
                    continue;
                }
            };
            // One status update per call (this runs for every event).
            let stats = instance.stats;
            self.update(|s| {
                s.events += delivered;
                s.coalesced_events += coalesced;
                s.stats = stats;
            });
            let outcome = match result.and_then(|out| check_output(&out).map(|()| out)) {
                Ok(output) => {
                    if consecutive_faults > 0 && healthy_since.elapsed() >= HEALTHY_AFTER {
                        consecutive_faults = 0;
                        tracing::info!(
                            "plugin `{}` has run cleanly for {HEALTHY_AFTER:?} after its faults",
                            self.name
                        );
                        self.owned.set("fault", "off", Map::new());
                        self.fault_alert(None);
                    }
                    self.apply(output, began_ms).and_then(|()| {
                        // The restart point: after every tick, and at most
                        // once a second of events, only once the output
                        // was accepted.
                        if ticked || last_save.elapsed() >= SAVE_EVERY {
                            self.saved = instance.save()?;
                            last_save = Instant::now();
                        }
                        Ok(())
                    })
                }
                Err(fault) => Err(fault),
            };
            if let Err(fault) = outcome {
                consecutive_faults += 1;
                self.on_fault(&fault);
                match self.restart(&input, consecutive_faults) {
                    Restarted::Fresh(new, attempts) => {
                        instance = new;
                        consecutive_faults = attempts;
                        healthy_since = Instant::now();
                        next_tick = self.tick_interval().map(|i| Instant::now() + i);
                    }
                    Restarted::Swapped(new) => {
                        instance = new;
                        consecutive_faults = 0;
                        healthy_since = Instant::now();
                        next_tick = self.tick_interval().map(|i| Instant::now() + i);
                    }
                    Restarted::Stopped => {
                        faulted = true;
                        break;
                    }
                }
            } else if self.status_published.elapsed() >= STATUS_EVERY {
                self.publish_status();
            }
        }
        if !faulted && let Ok(bytes) = instance.save() {
            self.saved = bytes;
        }
        self.update(|s| s.state = RunState::Stopped);
        tracing::info!("plugin `{}` stopped", self.name);
        self.saved
    }

    /// Switches to a prepared plugin: the old instance's `save` (or, if it
    /// is faulted, its last good save) goes to the new one's `restore`. A
    /// trap in `restore` rejects the swap and the old plugin keeps running.
    fn swap(
        &mut self,
        old: Option<&mut PluginInstance>,
        mut p: Prepared,
    ) -> Result<(PluginInstance, SwapReport), String> {
        let started = Instant::now();
        p.instance.share_outcomes(&self.outcomes);
        let bytes = match old {
            Some(i) => i.save().unwrap_or_else(|f| {
                tracing::warn!(
                    "plugin `{}`: the old instance {f} in save; handing over its last saved state",
                    self.name
                );
                self.saved.clone()
            }),
            None => self.saved.clone(),
        };
        let declined = match p.instance.restore(&bytes) {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(fault) => {
                let msg = format!(
                    "the new plugin {fault} in restore; `{}` keeps running",
                    self.active.desc.name
                );
                self.log_host("error", format!("swap rejected: {msg}"));
                return Err(msg);
            }
        };
        let from = format!("{} {}", self.active.desc.name, self.active.desc.version);
        let to = format!("{} {}", p.desc.name, p.desc.version);
        let (active, tick_ms) = Active::from(&p);
        self.active = active;
        self.tick_ms = tick_ms;
        let handed_over = bytes.len();
        // The new plugin's restart point is its own state from now on.
        self.saved = p.instance.save().unwrap_or(bytes);
        if let Err(e) = self.owned.sync(&p.desc) {
            tracing::warn!("plugin `{}`: its entities after the swap: {e:#}", self.name);
        }
        let switch = started.elapsed();
        set_identity(&self.status, &p);
        self.update(|s| {
            s.swaps += 1;
            s.state = RunState::Running;
            s.restart_in_s = None;
            s.stats = p.instance.stats;
        });
        self.owned.set("fault", "off", Map::new());
        self.fault_alert(None);
        self.publish_status();
        let msg = match &declined {
            None => format!(
                "swapped {from} → {to} in {} µs; state carried over ({handed_over} bytes)",
                switch.as_micros(),
            ),
            Some(r) => format!(
                "swapped {from} → {to} in {} µs; the new plugin declined the old state ({r}) and starts fresh",
                switch.as_micros()
            ),
        };
        tracing::info!("plugin `{}`: {msg}", self.name);
        self.log_host("info", msg);
        let report = SwapReport {
            name: self.name.clone(),
            from,
            to,
            state_carried: declined.is_none(),
            state_declined: declined,
            state_bytes: handed_over,
            switch_us: switch.as_micros() as u64,
            prepare_ms: p.prepare_time.as_secs_f64() * 1000.0,
            cache: p.cache,
        };
        Ok((p.instance, report))
    }

    fn on_fault(&mut self, fault: &PluginFault) {
        let text = fault.to_string();
        tracing::error!(
            "ALERT plugin `{}` {text}; the bridge keeps running",
            self.name
        );
        self.log_host("error", format!("fault: {text}"));
        self.update(|s| {
            s.state = RunState::Faulted;
            s.faults += 1;
            s.last_fault = Some(text.clone());
        });
        let mut attrs = Map::new();
        attrs.insert("reason".into(), json!(text));
        self.owned.set("fault", "on", attrs);
        self.fault_alert(Some(&text));
        self.publish_status();
        for entity in &self.active.desc.drives {
            match self.ctx.router.fault_action(entity) {
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
                    // Straight to the router, not behind the faulted
                    // plugin's queued calls (which may be what faulted it).
                    let router = self.ctx.router.clone();
                    self.runtime.spawn(async move {
                        let _ = router.call(call).await;
                    });
                }
            }
        }
    }

    /// Waits out the backoff (skipping events; a swap ends it at once), then
    /// makes a fresh instance and restores the last saved state. `None`
    /// when told to stop.
    fn restart(&mut self, input: &std_mpsc::Receiver<Input>, consecutive: u32) -> Restarted {
        let mut attempt = consecutive;
        loop {
            let limits = self.active.cfg.limits;
            let backoff =
                (2f64.powi(attempt.saturating_sub(1).min(20) as i32)).min(limits.max_backoff_s);
            tracing::warn!("plugin `{}`: restarting in {backoff:.0} s", self.name);
            self.log_host("warn", format!("restarting in {backoff:.0} s"));
            self.update(|s| {
                s.state = RunState::Restarting;
                s.restart_in_s = Some(backoff);
            });
            self.publish_status();
            let deadline = Instant::now() + Duration::from_secs_f64(backoff);
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match input.recv_timeout(left) {
                    Ok(Input::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                        return Restarted::Stopped;
                    }
                    Ok(Input::Changed(id)) => {
                        if let Some((c, merged)) = self.coalescer.take(&id)
                            && self.active.reads.contains(&c.entity_id)
                        {
                            self.update(|s| s.skipped_events += 1 + merged);
                        }
                    }
                    Ok(Input::Save(reply)) => {
                        let _ = reply.send(self.saved.clone());
                    }
                    Ok(Input::Swap(prepared, reply)) => match self.swap(None, *prepared) {
                        Ok((new, report)) => {
                            let _ = reply.send(Ok(report));
                            return Restarted::Swapped(new);
                        }
                        Err(e) => {
                            let _ = reply.send(Err(e));
                        }
                    },
                    Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                }
            }
            let a = &self.active;
            let fresh = prepare::instantiate(
                &self.ctx.engine,
                &a.pre,
                &self.name,
                &self.ctx.host(),
                &a.cfg,
                &a.config_json,
            )
            .map(|mut i| {
                i.share_outcomes(&self.outcomes);
                i
            })
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
                        s.restart_in_s = None;
                    });
                    self.publish_status();
                    tracing::info!("plugin `{}` restarted", self.name);
                    self.log_host("info", "restarted".into());
                    return Restarted::Fresh(i, attempt);
                }
                Err(fault) => {
                    attempt += 1;
                    self.on_fault(&fault);
                }
            }
        }
    }

    /// Applies a plugin's output (of the call that began at `began_ms`,
    /// host time). Bad parts are logged, reported to the plugin as refused
    /// and dropped; only flooding the call queue faults the plugin.
    fn apply(&self, out: wit::Output, began_ms: i64) -> Result<(), PluginFault> {
        for (index, call) in out.calls.into_iter().enumerate() {
            let emitted = self.outcomes.issue(began_ms, index as u32);
            let refuse = |msg: String| {
                self.outcomes.record(
                    emitted,
                    &call.domain,
                    &call.service,
                    &call.entity_ids,
                    Err(msg),
                )
            };
            if let Some(bad) = call
                .entity_ids
                .iter()
                .find(|e| !self.active.drives.contains(*e))
            {
                let msg = format!(
                    "asked {}.{} on `{bad}`, which it does not drive: refused",
                    call.domain, call.service
                );
                tracing::warn!("plugin `{}` {msg}", self.name);
                self.log_host("warn", msg);
                refuse(format!(
                    "`{bad}` is not among the entities the plugin drives"
                ));
                continue;
            }
            let data = match serde_json::from_str::<Value>(&call.service_data) {
                Ok(Value::Object(m)) => m,
                parsed => {
                    let msg = match parsed {
                        Err(e) if is_too_deep(&e) => format!(
                            "service_data of {}.{} nests deeper than the host's cap of {JSON_DEPTH_MAX} levels ({} bytes)",
                            call.domain,
                            call.service,
                            call.service_data.len()
                        ),
                        _ => format!(
                            "service_data of {}.{} is not a JSON object: `{}`",
                            call.domain,
                            call.service,
                            clip(&call.service_data, 200)
                        ),
                    };
                    tracing::warn!("plugin `{}`: {msg}", self.name);
                    self.log_host("warn", msg.clone());
                    refuse(msg);
                    continue;
                }
            };
            let queued = self.calls.try_send((
                ServiceCall {
                    domain: call.domain,
                    service: call.service,
                    entity_ids: call.entity_ids,
                    data,
                    source: CallSource::Plugin(self.name.clone()),
                    context: crate::entity::Context::default(),
                },
                emitted,
            ));
            if queued.is_err() {
                return Err(PluginFault::BadOutput(format!(
                    "{CALL_QUEUE} service calls are already waiting for the router"
                )));
            }
            self.update(|s| s.calls += 1);
        }
        for e in out.entities {
            if !self.owned.declares(&e.object_id) {
                let msg = format!(
                    "updated `{}`, an entity it did not declare: ignored",
                    e.object_id
                );
                tracing::warn!("plugin `{}` {msg}", self.name);
                self.log_host("warn", msg);
                continue;
            }
            let attrs = match serde_json::from_str::<Value>(&e.attributes) {
                Ok(Value::Object(m)) => m,
                Err(err) if is_too_deep(&err) => {
                    let msg = format!(
                        "attributes of `{}` nest deeper than the host's cap of {JSON_DEPTH_MAX} levels: dropped",
                        e.object_id
                    );
                    tracing::warn!("plugin `{}` {msg}", self.name);
                    self.log_host("warn", msg);
                    Map::new()
                }
                _ => Map::new(),
            };
            self.owned.set(&e.object_id, &e.state, attrs);
        }
        // De-duplication, notifiers and HA are the hub's; a bad alert
        // (an entity id that is not one, a key too long) is the plugin's
        // mistake, logged where its author looks.
        for a in out.alerts {
            let source = self.alert_source();
            if !a.active {
                self.ctx.alerts.clear(&source, &a.key);
                continue;
            }
            let raised = self.ctx.alerts.raise(crate::alerts::NewAlert {
                source,
                key: a.key,
                entity_id: a.entity_id,
                severity: match a.severity {
                    wit::Severity::Info => crate::alerts::Severity::Info,
                    wit::Severity::Warning => crate::alerts::Severity::Warning,
                    wit::Severity::Critical => crate::alerts::Severity::Critical,
                },
                title: a.title,
                message: a.message,
            });
            if let Err(e) = raised {
                tracing::warn!("plugin `{}`: {e}", self.name);
                self.log_host("warn", e.to_string());
            }
        }
        Ok(())
    }
}

/// JSON nesting the host parses in a plugin's `service-data` and
/// `attributes`: serde_json's recursion limit, which stops a deep document
/// with an error before the parser's stack does.
pub const JSON_DEPTH_MAX: usize = 128;

fn is_too_deep(e: &serde_json::Error) -> bool {
    e.to_string().starts_with("recursion limit exceeded")
}

/// The first `max` bytes of `s` (on a char boundary), `…` if cut.
fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Refuses outputs larger than [`MAX_OUTPUT_ITEMS`] per kind.
pub(crate) fn check_output(out: &wit::Output) -> Result<(), PluginFault> {
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

pub(crate) fn to_wit_change(c: &StateChanged) -> wit::StateChange {
    wit::StateChange {
        entity_id: c.entity_id.clone(),
        old_state: c.old_state.as_ref().map(state_to_wit),
        new_state: c.new_state.as_ref().map(state_to_wit),
    }
}
