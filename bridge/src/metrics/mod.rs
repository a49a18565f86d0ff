//! `GET /metrics`: the bridge's counters in the Prometheus text format
//! (0.0.4), or OpenMetrics 1.0 text when the scraper asks for it
//! (`Accept: application/openmetrics-text`, as Prometheus does), through
//! [`prometheus_client`] (the Prometheus project's Rust client).
//!
//! One [`Metrics`] per bridge, built first in `app.rs` and held by the
//! [`Api`](crate::api::Api). Two kinds of figures, and who owns each:
//!
//! - **Counted here**, because nothing else keeps them: store events (a
//!   subscriber of the entity store, [`Metrics::watch_store`]), plugin call
//!   latency (the plugin runner calls [`Metrics::plugin_call`] around each
//!   `tick` and `on_state`), the recorder's commit time (the writer thread
//!   calls back after each commit, [`Metrics::observe_recorder`]),
//!   WebSocket clients and the clients the API dropped (the session calls
//!   [`Metrics::websocket_client`] and [`Metrics::websocket_dropped`]).
//! - **Read at scrape time** from the part that already keeps them
//!   ([`Sources`], set once with [`Metrics::watch`]): MQTT messages per
//!   driver (the link's counters, [`crate::broker::MqttLink::traffic`]),
//!   plugin status (faults, restarts, fuel, memory), recorder queue and
//!   counts, the InfluxDB sink's disk buffer, the embedded broker front's
//!   connections, active alerts. Nothing is counted twice.
//!
//! Families (all `hearth_`; base units; counters end in `_total` on the
//! wire):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `hearth_build_info` | gauge (1) | `version` |
//! | `hearth_uptime_seconds` | gauge | |
//! | `hearth_mqtt_connected` | gauge | |
//! | `hearth_mqtt_messages_received_total`, `hearth_mqtt_messages_published_total` | counter | `driver` (`esp32_node`, `tasmota_ir`, `shelly`, …, `discovery`, `bridge`) |
//! | `hearth_store_events_total` | counter | `kind` (`state_changed`, `entity_added`, `entity_removed`, `device_added`, `device_removed`, `availability`) |
//! | `hearth_entities` | gauge | |
//! | `hearth_plugin_call_duration_seconds` | histogram | `plugin`, `call` (`tick`, `on_state`) |
//! | `hearth_plugin_up` | gauge | `plugin` |
//! | `hearth_plugin_fuel_consumed_total` | counter | `plugin` |
//! | `hearth_plugin_faults_total`, `hearth_plugin_restarts_total`, `hearth_plugin_swaps_total`, `hearth_plugin_service_calls_total`, `hearth_plugin_events_total` | counter | `plugin` |
//! | `hearth_plugin_memory_bytes` | gauge | `plugin` |
//! | `hearth_recorder_queue_rows` | gauge | |
//! | `hearth_recorder_commit_duration_seconds` | histogram | |
//! | `hearth_recorder_commits_total`, `hearth_recorder_committed_rows_total`, `hearth_recorder_dropped_rows_total` | counter | |
//! | `hearth_recorder_failing` | gauge (0/1) | |
//! | `hearth_influxdb_buffered_points` | gauge | |
//! | `hearth_influxdb_dropped_points_total`, `hearth_influxdb_rejected_points_total` | counter | |
//! | `hearth_influxdb_failing` | gauge (0/1) | |
//! | `hearth_websocket_clients` | gauge | |
//! | `hearth_websocket_dropped_clients_total` | counter | `reason` (`slow`, `oversize`, `heartbeat`) |
//! | `hearth_broker_connections` | gauge | |
//! | `hearth_broker_connections_accepted_total` | counter | |
//! | `hearth_broker_refused_connections_total` | counter | `reason` (`connack`, `cap`, `ip_cap`, `tls_handshake`, `mqtt5`) |
//! | `hearth_alerts_active` | gauge | `severity` |
//!
//! Families of a part that does not run (no recorder, no `[influxdb]`, an
//! external broker) are absent, not zero. Plugin fuel counts the current
//! instance: a restart or swap starts it from 0 again, which Prometheus
//! reads as a counter reset (`rate()` and `increase()` handle it).
//!
//! Authentication: `GET /metrics` takes the same bearer token as the REST
//! API ([`http`]): the HTTP port is often bound beyond loopback (the
//! dashboard, a phone), and the figures name every plugin and driver and
//! tell when the house is busy. Prometheus sends it with
//! `authorization: { credentials_file: /etc/prometheus/hearth-token }` in
//! the scrape config (`hearth token create --name prometheus` makes one).
//!
//! Not here: rumqttd's own `prometheus` setting (it installs a global
//! recorder with `unwrap` and a listener of its own; DESIGN.md §9): the
//! broker figures come from Hearth's front, which every client goes through.

pub mod http;

use crate::alerts::AlertHub;
use crate::broker::MqttLink;
use crate::broker::access::FrontStats;
use crate::entity::{EntityStore, StoreEvent};
use crate::plugins::PluginManager;
use crate::recorder::Recorder;
use crate::recorder::influx::InfluxWatch;
use crate::shutdown::Shutdown;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Upper bounds (s) of plugin call latency buckets: a controller's call
/// takes tens of µs to a few ms; the default call budget is 200 ms
/// (`call_timeout_ms`), so the top buckets catch calls near the limit.
const PLUGIN_CALL_BUCKETS: [f64; 13] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
];

/// Upper bounds (s) of recorder commit buckets: a home's batch commits in
/// about a millisecond (BENCHMARKS.md "Recorder"); a slow SD card or a
/// 10 000-row burst takes up to seconds.
const COMMIT_BUCKETS: [f64; 13] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Store event kinds, as labelled.
const STORE_EVENT_KINDS: [&str; 6] = [
    "state_changed",
    "entity_added",
    "entity_removed",
    "device_added",
    "device_removed",
    "availability",
];

/// Why the API drops a WebSocket client: `slow` (its outgoing queue or a
/// subscription's backlog is full), `oversize` (a message over
/// `max_message_bytes`), `heartbeat` (silent for two ping intervals).
pub const WEBSOCKET_DROP_REASONS: [&str; 3] = ["slow", "oversize", "heartbeat"];

type Label = [(&'static str, &'static str); 1];
type PluginCall = [(&'static str, String); 2];

/// What the scrape reads from the parts that keep their own counts.
pub struct Sources {
    pub link: MqttLink,
    pub store: Arc<EntityStore>,
    /// Weak: the plugin runners hold the metrics (call latency).
    pub plugins: Weak<PluginManager>,
    pub recorder: Option<Arc<Recorder>>,
    pub influx: Option<InfluxWatch>,
    /// The embedded broker front's counters (`None`: external broker).
    pub broker: Option<Arc<FrontStats>>,
    pub alerts: Arc<AlertHub>,
}

/// The bridge's registry and the families it counts itself.
pub struct Metrics {
    registry: Registry,
    store_events: Family<Label, Counter>,
    plugin_calls: Family<PluginCall, Histogram>,
    recorder_commits: Histogram,
    websocket_clients: Gauge,
    websocket_dropped: Family<Label, Counter>,
    sources: Arc<OnceLock<Sources>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let store_events = Family::<Label, Counter>::default();
        for kind in STORE_EVENT_KINDS {
            drop(store_events.get_or_create(&[("kind", kind)]));
        }
        registry.register(
            "hearth_store_events",
            "Events of the entity store (state changes, entities and devices added or removed, availability)",
            store_events.clone(),
        );
        let plugin_calls = Family::<PluginCall, Histogram>::new_with_constructor(
            (|| Histogram::new(PLUGIN_CALL_BUCKETS)) as fn() -> Histogram,
        );
        // Histograms carry their unit in the name only, without a `# UNIT`
        // line: some OpenMetrics parsers accept units on counters and
        // gauges alone.
        registry.register(
            "hearth_plugin_call_duration_seconds",
            "Wall time of each plugin call (tick, on_state), host imports included",
            plugin_calls.clone(),
        );
        let recorder_commits = Histogram::new(COMMIT_BUCKETS);
        registry.register(
            "hearth_recorder_commit_duration_seconds",
            "Wall time of each recorder transaction (one batch of rows)",
            recorder_commits.clone(),
        );
        let websocket_clients = Gauge::default();
        registry.register(
            "hearth_websocket_clients",
            "Authenticated WebSocket API clients connected now",
            websocket_clients.clone(),
        );
        let websocket_dropped = Family::<Label, Counter>::default();
        for reason in WEBSOCKET_DROP_REASONS {
            drop(websocket_dropped.get_or_create(&[("reason", reason)]));
        }
        registry.register(
            "hearth_websocket_dropped_clients",
            "WebSocket clients the API dropped: slow (queue full), oversize (message too big), heartbeat (pings unanswered)",
            websocket_dropped.clone(),
        );
        let sources = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(Live {
            sources: sources.clone(),
            started: Instant::now(),
        }));
        Metrics {
            registry,
            store_events,
            plugin_calls,
            recorder_commits,
            websocket_clients,
            websocket_dropped,
            sources,
        }
    }

    /// Sets what the scrape reads (once; later calls are ignored).
    pub fn watch(&self, sources: Sources) {
        let _ = self.sources.set(sources);
    }

    /// Times the recorder's commits from its first one (call it as soon
    /// as the recorder runs: its startup commits count too).
    pub fn observe_recorder(&self, recorder: &Recorder) {
        let h = self.recorder_commits.clone();
        recorder.observe_commits(move |s| h.observe(s.micros as f64 / 1e6));
    }

    /// Counts the store's events until `shutdown` (a subscriber like the
    /// recorder: it sees every event, in order).
    pub fn watch_store(
        self: &Arc<Self>,
        store: &EntityStore,
        mut shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let (_, mut rx) = store.subscribe();
        let counters: Vec<Counter> = STORE_EVENT_KINDS
            .iter()
            .map(|k| self.store_events.get_or_create(&[("kind", k)]).clone())
            .collect();
        tokio::spawn(async move {
            loop {
                let ev = tokio::select! {
                    _ = shutdown.wait() => break,
                    ev = rx.recv() => ev,
                };
                let Some(ev) = ev else { break };
                let i = match ev {
                    StoreEvent::StateChanged(_) => 0,
                    StoreEvent::EntityAdded(_) => 1,
                    StoreEvent::EntityRemoved(_) => 2,
                    StoreEvent::DeviceAdded(_) => 3,
                    StoreEvent::DeviceRemoved(_) => 4,
                    StoreEvent::Availability { .. } => 5,
                };
                counters[i].inc();
            }
        })
    }

    /// One plugin call's wall time (`call`: `tick` or `on_state`).
    pub fn plugin_call(&self, plugin: &str, call: &'static str, took: Duration) {
        self.plugin_calls
            .get_or_create(&[("plugin", plugin.to_string()), ("call", call.to_string())])
            .observe(took.as_secs_f64());
    }

    /// Counts one WebSocket client until the returned guard is dropped.
    pub fn websocket_client(&self) -> ClientGuard {
        self.websocket_clients.inc();
        ClientGuard(self.websocket_clients.clone())
    }

    /// Counts a client the API dropped; `reason` is one of
    /// [`WEBSOCKET_DROP_REASONS`].
    pub fn websocket_dropped(&self, reason: &'static str) {
        self.websocket_dropped
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Everything, in the Prometheus text format 0.0.4, or OpenMetrics 1.0
    /// text (`openmetrics`). Reads locks of the parts it asks: call it off
    /// the async workers ([`http`] does).
    pub fn encode(&self, openmetrics: bool) -> String {
        let mut out = String::new();
        let r = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        if let Err(e) = r {
            tracing::warn!("metrics: encoding failed: {e}");
        }
        out
    }
}

/// Holds one count of `hearth_websocket_clients`.
pub struct ClientGuard(Gauge);

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The families read at scrape time.
struct Live {
    sources: Arc<OnceLock<Sources>>,
    started: Instant,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

/// One family of constant values: `(labels, value)` per series.
fn family<L, V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    kind: MetricType,
    series: impl IntoIterator<Item = (L, V)>,
) -> Result<(), std::fmt::Error>
where
    L: prometheus_client::encoding::EncodeLabelSet,
    V: Into<f64>,
{
    let mut metric = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, value) in series {
        let value: f64 = value.into();
        let family = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(family)?,
            _ => ConstGauge::new(value).encode(family)?,
        }
    }
    Ok(())
}

/// A single unlabelled series.
fn one(value: impl Into<f64>) -> [([(&'static str, &'static str); 0], f64); 1] {
    [([], value.into())]
}

fn count(v: u64) -> f64 {
    v as f64
}

impl Collector for Live {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter as C, Gauge as G};
        let version = [([("version", env!("CARGO_PKG_VERSION"))], 1.0)];
        family(
            &mut e,
            "hearth_build_info",
            "The bridge's version (value 1)",
            None,
            G,
            version,
        )?;
        let up = self.started.elapsed().as_secs_f64();
        family(
            &mut e,
            "hearth_uptime",
            "Time since the bridge started",
            Some(&Unit::Seconds),
            G,
            one(up),
        )?;
        let Some(s) = self.sources.get() else {
            return Ok(());
        };

        family(
            &mut e,
            "hearth_mqtt_connected",
            "1 while the bridge's MQTT link is connected to the broker",
            None,
            G,
            one(u8::from(s.link.is_connected())),
        )?;
        let traffic = s.link.traffic();
        family(
            &mut e,
            "hearth_mqtt_messages_received",
            "MQTT messages handed to each driver's subscriptions",
            None,
            C,
            traffic
                .iter()
                .map(|(d, rx, _)| ([("driver", *d)], count(*rx))),
        )?;
        family(
            &mut e,
            "hearth_mqtt_messages_published",
            "MQTT messages each driver published",
            None,
            C,
            traffic
                .iter()
                .map(|(d, _, tx)| ([("driver", *d)], count(*tx))),
        )?;
        family(
            &mut e,
            "hearth_entities",
            "Entities in the entity store",
            None,
            G,
            one(s.store.snapshot().entities.len() as f64),
        )?;

        if let Some(plugins) = s.plugins.upgrade() {
            let list = plugins.list();
            let per = |f: &dyn Fn(&crate::plugins::PluginStatus) -> f64| {
                list.iter()
                    .map(|p| ([("plugin", p.name.clone())], f(p)))
                    .collect::<Vec<_>>()
            };
            use crate::plugins::runner::RunState;
            let plugin_families: [(&str, &str, MetricType, Vec<_>); 8] = [
                (
                    "hearth_plugin_up",
                    "1 while the plugin runs, 0 while faulted, restarting or stopped",
                    G,
                    per(&|p| f64::from(u8::from(p.state == RunState::Running))),
                ),
                (
                    "hearth_plugin_fuel_consumed",
                    "Fuel (wasmtime CPU units) the plugin's current instance used; from 0 after a restart or swap",
                    C,
                    per(&|p| count(p.stats.fuel_total)),
                ),
                (
                    "hearth_plugin_faults",
                    "Faults (traps, timeouts, out of fuel or memory, bad output)",
                    C,
                    per(&|p| count(p.faults)),
                ),
                (
                    "hearth_plugin_restarts",
                    "Restarts after a fault",
                    C,
                    per(&|p| count(p.restarts)),
                ),
                (
                    "hearth_plugin_swaps",
                    "Hot swaps to another plugin",
                    C,
                    per(&|p| count(p.swaps)),
                ),
                (
                    "hearth_plugin_service_calls",
                    "Service calls the plugin made that the host accepted",
                    C,
                    per(&|p| count(p.calls)),
                ),
                (
                    "hearth_plugin_events",
                    "State changes delivered to the plugin's on_state",
                    C,
                    per(&|p| count(p.events)),
                ),
                (
                    "hearth_plugin_memory_bytes",
                    "Linear memory of the plugin's current instance",
                    G,
                    per(&|p| count(p.stats.memory_bytes)),
                ),
            ];
            for (name, help, kind, series) in plugin_families {
                family(&mut e, name, help, None, kind, series)?;
            }
        }

        if let Some(r) = &s.recorder {
            let st = r.stats();
            family(
                &mut e,
                "hearth_recorder_queue_rows",
                "Rows waiting to be written (a batch being written included)",
                None,
                G,
                one(st.queued as f64),
            )?;
            family(
                &mut e,
                "hearth_recorder_commits",
                "Recorder transactions committed",
                None,
                C,
                one(count(st.commits)),
            )?;
            family(
                &mut e,
                "hearth_recorder_committed_rows",
                "Rows (states, events, alerts) in committed transactions",
                None,
                C,
                one(count(st.committed_rows)),
            )?;
            family(
                &mut e,
                "hearth_recorder_dropped_rows",
                "Rows dropped because the queue was full (max_queue)",
                None,
                C,
                one(count(st.dropped_rows)),
            )?;
            family(
                &mut e,
                "hearth_recorder_failing",
                "1 while the database refuses writes",
                None,
                G,
                one(u8::from(st.failing.is_some())),
            )?;
        }

        if let Some(i) = &s.influx {
            let (dropped, rejected) = i.dropped_and_rejected();
            family(
                &mut e,
                "hearth_influxdb_buffered_points",
                "Points in the InfluxDB sink's disk buffer, waiting to be sent",
                None,
                G,
                one(count(i.buffered_points())),
            )?;
            family(
                &mut e,
                "hearth_influxdb_dropped_points",
                "Points dropped because the disk buffer was full (buffer_max_points)",
                None,
                C,
                one(count(dropped)),
            )?;
            family(
                &mut e,
                "hearth_influxdb_rejected_points",
                "Points the server refused (400/422), kept in the buffer's rejected table",
                None,
                C,
                one(count(rejected)),
            )?;
            family(
                &mut e,
                "hearth_influxdb_failing",
                "1 while the last POST or disk write failed",
                None,
                G,
                one(u8::from(i.failing())),
            )?;
        }

        if let Some(b) = &s.broker {
            let n = |a: &std::sync::atomic::AtomicU64| count(a.load(Ordering::Relaxed));
            family(
                &mut e,
                "hearth_broker_connections",
                "MQTT connections open now at the embedded broker's front",
                None,
                G,
                one(n(&b.connections)),
            )?;
            family(
                &mut e,
                "hearth_broker_connections_accepted",
                "MQTT connections the embedded broker's front accepted",
                None,
                C,
                one(n(&b.accepted)),
            )?;
            family(
                &mut e,
                "hearth_broker_refused_connections",
                "MQTT connections refused: connack (bad login or client id), cap and ip_cap (connection caps), tls_handshake, mqtt5 (unsupported protocol)",
                None,
                C,
                [
                    ([("reason", "connack")], n(&b.refused)),
                    ([("reason", "cap")], n(&b.over_cap)),
                    ([("reason", "ip_cap")], n(&b.over_ip_cap)),
                    ([("reason", "tls_handshake")], n(&b.failed_handshakes)),
                    ([("reason", "mqtt5")], n(&b.unsupported_protocol)),
                ],
            )?;
        }

        let mut active: std::collections::BTreeMap<&'static str, f64> =
            ["info", "warning", "critical"]
                .into_iter()
                .map(|s| (s, 0.0))
                .collect();
        for a in s.alerts.list().into_iter().filter(|a| a.active) {
            *active.entry(a.severity.as_str()).or_default() += 1.0;
        }
        family(
            &mut e,
            "hearth_alerts_active",
            "Active alerts by severity",
            None,
            G,
            active.into_iter().map(|(sev, n)| ([("severity", sev)], n)),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_clients_count_while_held_and_drops_are_labelled() {
        let m = Metrics::new();
        let held = m.websocket_client();
        m.websocket_dropped("heartbeat");
        let text = m.encode(false);
        assert!(text.contains("\nhearth_websocket_clients 1\n"), "{text}");
        assert!(
            text.contains("\nhearth_websocket_dropped_clients_total{reason=\"heartbeat\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("\nhearth_websocket_dropped_clients_total{reason=\"slow\"} 0\n"),
            "{text}"
        );
        drop(held);
        assert!(m.encode(false).contains("\nhearth_websocket_clients 0\n"));
    }

    #[test]
    fn plugin_calls_land_in_their_bucket_and_openmetrics_ends_with_eof() {
        let m = Metrics::new();
        m.plugin_call("thermostat", "tick", Duration::from_micros(300));
        let text = m.encode(true);
        let bucket = |le: &str| {
            format!(
                "hearth_plugin_call_duration_seconds_bucket{{le=\"{le}\",plugin=\"thermostat\",call=\"tick\"}} "
            )
        };
        assert!(
            text.contains(&format!("{}0\n", bucket("0.00025"))),
            "{text}"
        );
        assert!(text.contains(&format!("{}1\n", bucket("0.0005"))), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Before the sources are set: the families counted here, uptime and
        // version, nothing read from parts that do not exist yet.
        assert!(
            text.contains("# TYPE hearth_uptime_seconds gauge"),
            "{text}"
        );
        assert!(!text.contains("hearth_mqtt_connected"), "{text}");
    }
}
