//! InfluxDB v2 sink: every state change as line protocol to
//! `/api/v2/write` (org, bucket, token), buffered on disk so that nothing
//! is lost while the server is away.
//!
//! ```toml
//! [influxdb]
//! url = "http://127.0.0.1:8086"     # http:// or https:// (rustls, Mozilla's roots); no path
//! ca_file = "/etc/hearth/influx-ca.pem"   # optional: PEM certificate(s) also trusted for https (a private CA)
//! org = "home"
//! bucket = "hearth"
//! token_file = "/etc/hearth/influx-token"   # or token = "…" (exactly one)
//! batch_size = 5000                 # lines per POST
//! flush_interval_ms = 1000          # ms between sends of what is buffered (sooner when a batch is full)
//! buffer_max_points = 1000000       # lines kept on disk; when full the OLDEST are dropped (counted, logged)
//! timeout_s = 10                    # s for one POST, connect included
//! retry_max_ms = 30000              # ms, cap of the doubling wait between failed POSTs (first: 1000)
//! precision = "ms"                  # the bridge clock counts ms; the only value
//! ```
//!
//! How a point travels:
//!
//! 1. A task drains the entity store's subscription (the states already in
//!    the store when it starts, then every change, in order), turns each
//!    state into a line ([`line`], HA's `influxdb` shape) and appends it to
//!    the disk buffer ([`buffer`], `<data-dir>/influx-buffer.db`) in one
//!    transaction per wake: a point is on disk before any send is tried.
//! 2. A second task takes the oldest `batch_size` lines by sequence number,
//!    POSTs them with the `influxdb2` crate and deletes them only after a
//!    2xx. Anything else leaves them first in line:
//!    - connection errors, timeouts, 5xx, 401/403 (bad token), 404 (no
//!      such org/bucket), 429: wait (1 s, doubling up to `retry_max_ms`)
//!      and send the same batch again. A token or bucket problem is fixed
//!      by the operator without losing what was buffered meanwhile.
//!    - 400 and 422 (malformed lines, field type conflict, outside the
//!      bucket's retention): the same batch would be refused forever and
//!      hold everything behind it, so it is moved to the buffer's
//!      `rejected` table (last 100 batches, readable with `sqlite3`), an
//!      error log names the server's message (InfluxDB quotes the first
//!      bad line) and the batch's first line, and the count shows on the
//!      problem entity. InfluxDB may have written the batch's good lines
//!      (a partial write); they are not lost.
//!    - 413 (body too large): the batch is halved until the server takes
//!      it; a single line too large is rejected as above.
//! 3. On a restart the buffer file is reopened and delivery resumes with
//!    its oldest line.
//!
//! Exactly once: a batch is deleted right after its 2xx, so a graceful
//! stop (the sender finishes the POST in progress, then deletes) or an
//! outage never duplicates a point. What remains is a crash (or a POST
//! timing out after the server wrote it) between the server's 2xx and the
//! delete: that batch is sent again. For InfluxDB this is harmless: a
//! point with the same measurement, tag set and timestamp overwrites the
//! one stored, with the same values. (VictoriaMetrics would store a second
//! sample; its tests cover graceful restarts.)
//!
//! Timestamps are the states' `last_updated` (ms, bridge clock). Two
//! changes of one entity within the same ms would be one point in
//! InfluxDB (same series and time: the last overwrites the first); the
//! later one is moved to 1 ms after the earlier, so every change is kept.
//!
//! Diagnostics: `binary_sensor.bridge_influxdb_problem` on the bridge
//! device is `on` while the last POST (or disk write) failed, with
//! attributes `buffered_points`, `dropped_points` (the buffer was full),
//! `rejected_points` (400/422), `last_error`, `last_success` and `url`. Its
//! own changes are not exported: they would feed themselves.
//!
//! Not supported (yet), both limits of the `influxdb2` crate 0.5: gzip
//! bodies (its `gzip` feature compresses only its `DataPoint` writes, not
//! the line protocol this sink sends) and a path prefix in `url` (it writes
//! to `<scheme>://<host>:<port>/api/v2/write`). Nor HA's attribute fields
//! and include/exclude filters.

pub mod buffer;
pub mod line;

use crate::clock::iso8601;
use crate::discovery::payload::BRIDGE_DEVICE;
use crate::entity::{Component, EntitySpec, EntityStore, StoreEvent};
use crate::feeds::fetch::Backoff;
use crate::secret::Secret;
use crate::shutdown::{self, Shutdown, ShutdownTrigger};
use anyhow::Context as _;
use buffer::{Batch, Buffer};
use influxdb2::RequestError;
use influxdb2::api::write::TimestampPrecision;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Key of the problem entity on the bridge device
/// (`binary_sensor.bridge_influxdb_problem`).
pub const PROBLEM_KEY: &str = "influxdb_problem";

/// First wait after a failed POST, ms (then doubling up to `retry_max_ms`).
const FIRST_RETRY_MS: f64 = 1000.0;

/// Most lines appended to the disk buffer in one transaction.
const MAX_APPEND: usize = 10_000;

/// Least wall time between two "buffer full" warnings in the log (the
/// counts in between are summed into the next one).
const DROP_WARN_EVERY: Duration = Duration::from_secs(60);

/// `[influxdb]` in the bridge config (module docs for the keys). Checked
/// when the config is parsed: an error names the key and what it expects.
#[derive(Clone, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct InfluxConfig {
    /// `http(s)://host[:port]`.
    pub url: String,
    pub org: String,
    pub bucket: String,
    pub token: TokenSource,
    /// Lines per POST.
    pub batch_size: usize,
    /// ms between sends of what is buffered.
    pub flush_interval_ms: u64,
    /// Lines kept on disk at most.
    pub buffer_max_points: u64,
    /// s for one POST.
    pub timeout_s: f64,
    /// ms, cap of the wait between failed POSTs.
    pub retry_max_ms: u64,
    /// PEM certificates trusted for https besides Mozilla's roots.
    pub ca_file: Option<PathBuf>,
}

/// Where the API token comes from.
#[derive(Clone)]
pub enum TokenSource {
    /// `token = "…"`, `{ file = "…" }` or `{ env = "…" }` (a [`Secret`]).
    Inline(Secret),
    /// Read at start (trimmed), so the secret can stay out of the config.
    File(PathBuf),
}

impl std::fmt::Debug for InfluxConfig {
    /// Everything but the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let token = match &self.token {
            TokenSource::Inline(t) => format!("token = {t:?} ({})", t.describe_origin()),
            TokenSource::File(p) => format!("token_file = {}", p.display()),
        };
        f.debug_struct("InfluxConfig")
            .field("url", &self.url)
            .field("org", &self.org)
            .field("bucket", &self.bucket)
            .field("token", &token)
            .field("batch_size", &self.batch_size)
            .field("flush_interval_ms", &self.flush_interval_ms)
            .field("buffer_max_points", &self.buffer_max_points)
            .field("timeout_s", &self.timeout_s)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// The keys as written; [`InfluxConfig::try_from`] checks them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    url: String,
    org: String,
    bucket: String,
    token: Option<Secret>,
    token_file: Option<PathBuf>,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default = "default_flush_interval_ms")]
    flush_interval_ms: u64,
    #[serde(default = "default_buffer_max_points")]
    buffer_max_points: u64,
    #[serde(default = "default_timeout_s")]
    timeout_s: f64,
    #[serde(default = "default_retry_max_ms")]
    retry_max_ms: u64,
    #[serde(default = "default_precision")]
    precision: String,
    ca_file: Option<PathBuf>,
}

fn default_batch_size() -> usize {
    5000
}
fn default_flush_interval_ms() -> u64 {
    1000
}
fn default_buffer_max_points() -> u64 {
    1_000_000
}
fn default_timeout_s() -> f64 {
    10.0
}
fn default_retry_max_ms() -> u64 {
    30_000
}
fn default_precision() -> String {
    "ms".into()
}

impl TryFrom<RawConfig> for InfluxConfig {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        check_url(&raw.url)?;
        for (key, v) in [("org", &raw.org), ("bucket", &raw.bucket)] {
            if v.trim().is_empty() {
                return Err(format!(
                    "[influxdb] {key} is empty; expected the InfluxDB {key} name"
                ));
            }
        }
        let token = match (raw.token, raw.token_file) {
            (Some(_), Some(_)) => {
                return Err("[influxdb] has both token and token_file; expected one".into());
            }
            (None, None) => {
                return Err(
                    "[influxdb] needs token or token_file: an InfluxDB API token \
                            with write access to the bucket"
                        .into(),
                );
            }
            (Some(t), None) if t.expose().trim().is_empty() => {
                return Err(format!(
                    "[influxdb] token ({}) is empty; expected an InfluxDB API token",
                    t.describe_origin()
                ));
            }
            (Some(t), None) => TokenSource::Inline(t),
            (None, Some(p)) => TokenSource::File(p),
        };
        let range = |key: &str, v: u64, lo: u64, hi: u64, unit: &str| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(format!(
                    "[influxdb] {key} = {v}: expected {lo} to {hi}{unit}"
                ))
            }
        };
        range("batch_size", raw.batch_size as u64, 1, 100_000, " lines")?;
        range(
            "flush_interval_ms",
            raw.flush_interval_ms,
            10,
            3_600_000,
            " ms",
        )?;
        range(
            "buffer_max_points",
            raw.buffer_max_points,
            raw.batch_size as u64,
            100_000_000,
            " lines (at least batch_size)",
        )?;
        range("retry_max_ms", raw.retry_max_ms, 10, 3_600_000, " ms")?;
        if !(raw.timeout_s.is_finite() && (0.1..=600.0).contains(&raw.timeout_s)) {
            return Err(format!(
                "[influxdb] timeout_s = {}: expected 0.1 to 600 s",
                raw.timeout_s
            ));
        }
        if raw.precision != "ms" {
            return Err(format!(
                "[influxdb] precision = \"{}\": expected \"ms\" (the bridge clock counts \
                 milliseconds; timestamps are written as ms)",
                raw.precision
            ));
        }
        Ok(InfluxConfig {
            url: raw.url,
            org: raw.org,
            bucket: raw.bucket,
            token,
            batch_size: raw.batch_size,
            flush_interval_ms: raw.flush_interval_ms,
            buffer_max_points: raw.buffer_max_points,
            timeout_s: raw.timeout_s,
            retry_max_ms: raw.retry_max_ms,
            ca_file: raw.ca_file,
        })
    }
}

/// `http(s)://host[:port]` and nothing after it: the crate replaces the
/// path with `/api/v2/write`, so a path prefix (a reverse proxy's
/// `/influx`) would be dropped without a word.
fn check_url(url: &str) -> Result<(), String> {
    // Messages quote the URL without user info or query values.
    let shown = crate::secret::redact_url(url);
    let parsed = url::Url::parse(url).map_err(|e| {
        format!("[influxdb] url `{shown}` is not a URL ({e}); expected http(s)://host[:port]")
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "[influxdb] url `{shown}`: expected http(s)://host[:port]"
        ));
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(format!(
            "[influxdb] url `{shown}`: expected http(s)://host[:port] with no path or query \
             (points go to <url>/api/v2/write; a path prefix is not supported)"
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "[influxdb] url `{shown}`: expected no user:password@ (InfluxDB v2 authenticates \
             with token or token_file)"
        ));
    }
    Ok(())
}

impl InfluxConfig {
    /// The certificates in `ca_file`; an error names the file and what it
    /// expected.
    fn private_roots(&self, path: &Path) -> anyhow::Result<Vec<reqwest::Certificate>> {
        let pem = std::fs::read(path)
            .with_context(|| format!("[influxdb] ca_file {}: cannot read it", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            anyhow::anyhow!(
                "[influxdb] ca_file {}: expected PEM certificates (-----BEGIN CERTIFICATE-----): {e}",
                path.display()
            )
        })?;
        anyhow::ensure!(
            !certs.is_empty(),
            "[influxdb] ca_file {}: no certificate in it; expected PEM certificates \
             (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
        Ok(certs)
    }

    /// The API token (reads `token_file`); errors name the file.
    pub fn read_token(&self) -> anyhow::Result<String> {
        match &self.token {
            TokenSource::Inline(t) => Ok(t.expose().trim().to_string()),
            TokenSource::File(p) => {
                let text = std::fs::read_to_string(p).with_context(|| {
                    format!(
                        "[influxdb] token_file {}: cannot read the API token",
                        p.display()
                    )
                })?;
                let t = text.trim();
                anyhow::ensure!(
                    !t.is_empty(),
                    "[influxdb] token_file {} is empty; expected an InfluxDB API token",
                    p.display()
                );
                Ok(t.to_string())
            }
        }
    }
}

/// What the problem entity shows.
#[derive(Debug, Default)]
struct Status {
    /// The last POST or disk write failed.
    failing: bool,
    dropped: u64,
    rejected: u64,
    last_error: Option<String>,
    last_success_ms: Option<i64>,
}

/// What both tasks share.
struct Shared {
    buffer: Mutex<Buffer>,
    status: Mutex<Status>,
    store: Arc<EntityStore>,
    /// `binary_sensor.bridge_influxdb_problem`, when the store has the
    /// bridge device.
    problem_id: Option<String>,
    url: String,
    path: PathBuf,
    /// Wakes the sender when a full batch is waiting.
    wake: Notify,
}

impl Shared {
    /// Runs `f` on the buffer on the blocking pool (SQLite blocks).
    async fn with_buffer<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Buffer) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut b = me.buffer.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut b)
        })
        .await
        .map_err(|e| anyhow::anyhow!("InfluxDB disk buffer task failed: {e}"))?
    }

    /// The batch in flight was not delivered (no disk access).
    fn release(&self) {
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release();
    }

    fn buffered(&self) -> u64 {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Shows the status on the problem entity (the store emits nothing
    /// when it did not change).
    fn publish(&self) {
        let Some(id) = &self.problem_id else {
            return;
        };
        let buffered = self.buffered();
        let (state, attrs) = {
            let s = self.status();
            let mut a = serde_json::Map::new();
            a.insert("buffered_points".into(), buffered.into());
            a.insert("dropped_points".into(), s.dropped.into());
            a.insert("rejected_points".into(), s.rejected.into());
            a.insert(
                "last_error".into(),
                s.last_error
                    .clone()
                    .map_or(serde_json::Value::Null, Into::into),
            );
            a.insert(
                "last_success".into(),
                s.last_success_ms
                    .map_or(serde_json::Value::Null, |ms| iso8601(ms).into()),
            );
            a.insert("url".into(), self.url.clone().into());
            (if s.failing { "on" } else { "off" }, a)
        };
        let _ = self.store.set_state(id, state, attrs);
    }
}

/// A running sink. Dropping it stops its tasks (without waiting);
/// [`InfluxSink::stop`] waits for them.
pub struct InfluxSink {
    shared: Arc<Shared>,
    trigger: ShutdownTrigger,
    ingest: tokio::task::JoinHandle<()>,
    sender: tokio::task::JoinHandle<()>,
}

impl InfluxSink {
    /// Opens the disk buffer in `data_dir`, registers the problem entity
    /// (if the store has the bridge device) and starts exporting `store`'s
    /// states. Errors name the file or key at fault.
    pub async fn start(
        config: &InfluxConfig,
        store: &Arc<EntityStore>,
        data_dir: &Path,
    ) -> anyhow::Result<InfluxSink> {
        let token = config.read_token()?;
        // The URL was checked at parse time (the crate panics on a bad one).
        check_url(&config.url).map_err(anyhow::Error::msg)?;
        if config.ca_file.is_some() && config.url.starts_with("http://") {
            tracing::warn!(
                "[influxdb] ca_file is set but url {} is plain http: the certificates are not used",
                config.url
            );
        }
        let http = match &config.ca_file {
            Some(path) => config.private_roots(path)?.into_iter().fold(
                reqwest::ClientBuilder::new(),
                reqwest::ClientBuilder::add_root_certificate,
            ),
            None => reqwest::ClientBuilder::new(),
        };
        let client = influxdb2::ClientBuilder::with_builder(http, &config.url, &config.org, token)
            .build()
            .map_err(|e| anyhow::anyhow!("[influxdb] cannot build the HTTP client: {e}"))?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("data directory {}", data_dir.display()))?;
        let path = data_dir.join(buffer::FILE_NAME);
        let (buf, dropped, path) = {
            let max = config.buffer_max_points;
            tokio::task::spawn_blocking(move || Buffer::open(&path, max).map(|(b, d)| (b, d, path)))
                .await??
        };
        if dropped > 0 {
            tracing::warn!(
                "InfluxDB disk buffer {}: dropped the {dropped} oldest points to stay within \
                 buffer_max_points = {}",
                path.display(),
                config.buffer_max_points
            );
        }
        if !buf.is_empty() {
            tracing::info!(
                "InfluxDB disk buffer {}: {} points left from the last run will be sent first",
                path.display(),
                buf.len()
            );
        }
        let problem_id = register_problem_entity(store);
        let shared = Arc::new(Shared {
            buffer: Mutex::new(buf),
            status: Mutex::new(Status {
                dropped,
                ..Status::default()
            }),
            store: store.clone(),
            problem_id,
            url: config.url.clone(),
            path,
            wake: Notify::new(),
        });
        shared.publish();
        let (trigger, stop) = shutdown::channel();
        // Subscribed after the problem entity's first state: its changes
        // are not exported anyway.
        let (snapshot, rx) = store.subscribe();
        let mut ingest = Ingest {
            shared: shared.clone(),
            units: HashMap::new(),
            last_ms: HashMap::new(),
            batch_size: config.batch_size,
            drops_unwarned: 0,
            last_drop_warning: None,
            max_points: config.buffer_max_points,
        };
        let mut first = Vec::new();
        for (spec, state) in snapshot.entities {
            ingest
                .units
                .insert(spec.entity_id.clone(), spec.unit.clone());
            if let Some(s) = state {
                ingest.point(&s, &mut first);
            }
        }
        let ingest = tokio::spawn(ingest.run(rx, first, stop.clone()));
        let sender = Sender {
            shared: shared.clone(),
            client,
            org: config.org.clone(),
            bucket: config.bucket.clone(),
            batch_size: config.batch_size,
            flush_interval: Duration::from_millis(config.flush_interval_ms),
            timeout: Duration::from_secs_f64(config.timeout_s),
            backoff: Backoff::new(FIRST_RETRY_MS, config.retry_max_ms as f64),
        };
        let sender = tokio::spawn(sender.run(stop));
        tracing::info!(
            "InfluxDB sink: {} org `{}` bucket `{}`, buffered in {}",
            config.url,
            config.org,
            config.bucket,
            shared.path.display()
        );
        Ok(InfluxSink {
            shared,
            trigger,
            ingest,
            sender,
        })
    }

    /// The problem entity's id, if registered.
    pub fn problem_entity_id(&self) -> Option<&str> {
        self.shared.problem_id.as_deref()
    }

    /// The disk buffer file.
    pub fn buffer_path(&self) -> &Path {
        &self.shared.path
    }

    /// A handle on the sink's counts, read at scrape time by `GET /metrics`.
    pub fn watch(&self) -> InfluxWatch {
        InfluxWatch(self.shared.clone())
    }

    /// Stops: every change the store emitted so far is written to disk,
    /// a POST in progress is finished (at most `timeout_s`) and its batch
    /// deleted if the server took it. What is left is sent after the next
    /// start. Call it after the parts that set states have stopped.
    pub async fn stop(self) {
        self.trigger.trigger();
        let _ = self.ingest.await;
        let _ = self.sender.await;
        tracing::info!(
            "InfluxDB sink stopped; {} points stay buffered in {}",
            self.shared.buffered(),
            self.shared.path.display()
        );
    }
}

/// The sink's counts as the problem entity shows them
/// ([`InfluxSink::watch`]).
#[derive(Clone)]
pub struct InfluxWatch(Arc<Shared>);

impl std::fmt::Debug for InfluxWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InfluxWatch")
            .field("url", &self.0.url)
            .finish()
    }
}

impl InfluxWatch {
    /// Points on disk waiting to be sent.
    pub fn buffered_points(&self) -> u64 {
        self.0.buffered()
    }

    /// Points dropped because the buffer was full, and points the server
    /// refused (400/422), since the sink started (the dropped count
    /// includes drops when the buffer was opened).
    pub fn dropped_and_rejected(&self) -> (u64, u64) {
        let s = self.0.status();
        (s.dropped, s.rejected)
    }

    /// Whether the last POST or disk write failed.
    pub fn failing(&self) -> bool {
        self.0.status().failing
    }
}

fn register_problem_entity(store: &EntityStore) -> Option<String> {
    store.device(BRIDGE_DEVICE)?;
    let spec = EntitySpec::new(BRIDGE_DEVICE, PROBLEM_KEY, Component::BinarySensor)
        .named("InfluxDB problem")
        .class("problem")
        .diagnostic();
    let id = spec.entity_id.clone();
    store.upsert_entity(spec).ok()?;
    Some(id)
}

/// Turns store events into lines on disk.
struct Ingest {
    shared: Arc<Shared>,
    /// Each entity's unit of measurement (from its spec).
    units: HashMap<String, Option<String>>,
    /// Each entity's last point time, ms (see the module docs).
    last_ms: HashMap<String, i64>,
    batch_size: usize,
    max_points: u64,
    drops_unwarned: u64,
    last_drop_warning: Option<Instant>,
}

impl Ingest {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<StoreEvent>,
        first: Vec<String>,
        mut stop: Shutdown,
    ) {
        self.append(first).await;
        loop {
            let ev = tokio::select! {
                biased;
                ev = rx.recv() => ev,
                _ = stop.wait() => None,
            };
            let Some(ev) = ev else { break };
            let mut lines = Vec::new();
            self.handle(ev, &mut lines);
            // Whatever else is queued goes in the same transaction.
            while lines.len() < MAX_APPEND {
                match rx.try_recv() {
                    Ok(ev) => self.handle(ev, &mut lines),
                    Err(_) => break,
                }
            }
            self.append(lines).await;
        }
        // Stopping: what the store emitted before the stop is kept too.
        loop {
            let mut lines = Vec::new();
            while lines.len() < MAX_APPEND {
                match rx.try_recv() {
                    Ok(ev) => self.handle(ev, &mut lines),
                    Err(_) => break,
                }
            }
            if lines.is_empty() {
                break;
            }
            self.append(lines).await;
        }
    }

    fn handle(&mut self, ev: StoreEvent, lines: &mut Vec<String>) {
        match ev {
            StoreEvent::EntityAdded(spec) => {
                self.units.insert(spec.entity_id.clone(), spec.unit.clone());
            }
            StoreEvent::EntityRemoved(spec) => {
                self.units.remove(&spec.entity_id);
                self.last_ms.remove(&spec.entity_id);
            }
            StoreEvent::StateChanged(c) => {
                if let Some(s) = &c.new_state {
                    self.point(s, lines);
                }
            }
            _ => {}
        }
    }

    fn point(&mut self, state: &crate::entity::State, lines: &mut Vec<String>) {
        if self.shared.problem_id.as_deref() == Some(state.entity_id.as_str()) {
            return;
        }
        let unit = self.units.get(&state.entity_id).and_then(|u| u.as_deref());
        let Some(mut p) = line::Point::from_state(state, unit) else {
            return;
        };
        if let Some(&last) = self.last_ms.get(&state.entity_id) {
            p.time_ms = p.time_ms.max(last.saturating_add(1));
        }
        self.last_ms.insert(state.entity_id.clone(), p.time_ms);
        lines.push(p.to_line());
    }

    async fn append(&mut self, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let n = lines.len() as u64;
        let result = self.shared.with_buffer(move |b| b.append(&lines)).await;
        match result {
            Ok(0) => {}
            Ok(dropped) => {
                self.shared.status().dropped += dropped;
                self.drops_unwarned += dropped;
                self.warn_drops();
                self.shared.publish();
            }
            Err(e) => {
                // Nothing else can hold these points: count them as lost.
                tracing::error!("{e:#}; {n} points are lost");
                {
                    let mut s = self.shared.status();
                    s.dropped += n;
                    s.failing = true;
                    s.last_error = Some(format!("{e:#}"));
                }
                self.shared.publish();
            }
        }
        if self.shared.buffered() >= self.batch_size as u64 {
            self.shared.wake.notify_one();
        }
    }

    fn warn_drops(&mut self) {
        if self
            .last_drop_warning
            .is_some_and(|t| t.elapsed() < DROP_WARN_EVERY)
        {
            return;
        }
        let total = self.shared.status().dropped;
        tracing::warn!(
            "InfluxDB disk buffer {} is full (buffer_max_points = {}): dropped the {} oldest \
             points ({total} since start); {} has not taken points fast enough",
            self.shared.path.display(),
            self.max_points,
            self.drops_unwarned,
            self.shared.url
        );
        self.drops_unwarned = 0;
        self.last_drop_warning = Some(Instant::now());
    }
}

/// What to do after a POST.
#[derive(Debug, PartialEq)]
enum Outcome {
    Delivered,
    /// Try the same batch again later.
    Retry(String),
    /// The server will never take this batch.
    Reject(String),
    /// The body is too large for the server.
    TooLarge(String),
}

/// Sorts a write's result (see the module docs for why each case).
fn classify(result: Result<(), RequestError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Delivered,
        Err(RequestError::Http { status, text }) => {
            let code = status.as_u16();
            let text = text.trim();
            let msg = format!("HTTP {status}: {}", excerpt(text));
            match code {
                200..=299 => Outcome::Delivered,
                400 | 422 => Outcome::Reject(msg),
                413 => Outcome::TooLarge(msg),
                401 | 403 => Outcome::Retry(format!(
                    "{msg} (check [influxdb] token: it needs write access to the bucket)"
                )),
                404 => Outcome::Retry(format!(
                    "{msg} (check [influxdb] org and bucket: they must exist)"
                )),
                _ => Outcome::Retry(msg),
            }
        }
        Err(RequestError::ReqwestProcessing { source }) => {
            Outcome::Retry(format!("request failed: {}", error_chain(&source)))
        }
        Err(e) => Outcome::Retry(e.to_string()),
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        // reqwest and hyper already print some of their causes.
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = inner.source();
    }
    s
}

/// Sends the buffer's oldest lines.
struct Sender {
    shared: Arc<Shared>,
    client: influxdb2::Client,
    org: String,
    bucket: String,
    batch_size: usize,
    flush_interval: Duration,
    timeout: Duration,
    backoff: Backoff,
}

impl Sender {
    async fn run(mut self, mut stop: Shutdown) {
        // Halved on HTTP 413.
        let mut limit = self.batch_size;
        loop {
            // Everything buffered, oldest first; what is left from the last
            // run goes at once.
            while !stop.is_set() {
                let batch = self.shared.with_buffer(move |b| b.oldest(limit)).await;
                let batch = match batch {
                    Ok(Some(b)) => b,
                    Ok(None) => break,
                    Err(e) => {
                        self.failed(format!("{e:#}"));
                        if self.wait_backoff(&mut stop).await {
                            return;
                        }
                        continue;
                    }
                };
                match self.post(&batch).await {
                    Outcome::Delivered => self.delivered(batch).await,
                    Outcome::TooLarge(msg) if batch.count > 1 => {
                        limit = batch.count.div_ceil(2);
                        tracing::warn!(
                            "InfluxDB at {} refused {} points as too large ({msg}); sending \
                             at most {limit} per request from now on",
                            self.shared.url,
                            batch.count
                        );
                        self.shared.release();
                    }
                    Outcome::Reject(msg) | Outcome::TooLarge(msg) => {
                        self.rejected(batch, msg).await;
                    }
                    Outcome::Retry(msg) => {
                        self.shared.release();
                        self.failed(msg);
                        if self.wait_backoff(&mut stop).await {
                            return;
                        }
                    }
                }
            }
            self.shared.publish();
            tokio::select! {
                _ = tokio::time::sleep(self.flush_interval) => {}
                _ = self.shared.wake.notified() => {}
                _ = stop.wait() => return,
            }
        }
    }

    async fn post(&self, batch: &Batch) -> Outcome {
        let write = self.client.write_line_protocol_with_precision(
            &self.org,
            &self.bucket,
            batch.body.clone(),
            TimestampPrecision::Milliseconds,
        );
        match tokio::time::timeout(self.timeout, write).await {
            Ok(result) => classify(result),
            Err(_) => Outcome::Retry(format!(
                "no answer within {} s (timeout_s)",
                self.timeout.as_secs_f64()
            )),
        }
    }

    async fn delivered(&mut self, batch: Batch) {
        let count = batch.count;
        if let Err(e) = self.shared.with_buffer(move |b| b.delivered(&batch)).await {
            // The server has the points but they are still on disk: they
            // will be sent again (an overwrite for InfluxDB).
            self.failed(format!("{e:#}"));
            return;
        }
        self.backoff.reset();
        let now = self.shared.store.clock().now_ms();
        let resumed = {
            let mut s = self.shared.status();
            let was = s.failing;
            s.failing = false;
            s.last_success_ms = Some(now);
            was
        };
        if resumed {
            tracing::info!(
                "InfluxDB at {}: delivery resumed ({count} points sent, {} still buffered)",
                self.shared.url,
                self.shared.buffered()
            );
            self.shared.publish();
        }
    }

    async fn rejected(&mut self, batch: Batch, msg: String) {
        let count = batch.count as u64;
        let first = batch.first_line().to_string();
        tracing::error!(
            "InfluxDB at {} refused {count} points ({msg}); the batch's first line is `{}`; \
             it is kept in {} (table `rejected`) and delivery goes on with the next",
            self.shared.url,
            excerpt(&first),
            self.shared.path.display()
        );
        let now = self.shared.store.clock().now_ms();
        let err = msg.clone();
        let moved = self
            .shared
            .with_buffer(move |b| b.set_aside(&batch, &err, now))
            .await;
        {
            let mut s = self.shared.status();
            s.failing = true;
            s.last_error = Some(msg);
            if moved.is_ok() {
                s.rejected += count;
            }
        }
        if let Err(e) = moved {
            self.failed(format!("{e:#}"));
        }
        self.shared.publish();
    }

    /// Records a failed attempt; logs the first of a run of failures.
    fn failed(&self, msg: String) {
        let first = {
            let mut s = self.shared.status();
            let first = !s.failing;
            s.failing = true;
            s.last_error = Some(msg.clone());
            first
        };
        if first {
            tracing::warn!(
                "InfluxDB at {}: {msg}; points stay buffered on disk ({}) and are retried",
                self.shared.url,
                self.shared.buffered()
            );
        } else {
            tracing::debug!("InfluxDB at {}: {msg}", self.shared.url);
        }
        self.shared.publish();
    }

    /// Waits before the next attempt; `true` if stopped meanwhile.
    async fn wait_backoff(&mut self, stop: &mut Shutdown) -> bool {
        let ms = self.backoff.next_delay_ms();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)) => false,
            _ = stop.wait() => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<InfluxConfig, String> {
        toml::from_str::<InfluxConfig>(toml_text).map_err(|e| e.to_string())
    }

    const BASE: &str = "url = \"http://127.0.0.1:8086\"\norg = \"o\"\nbucket = \"b\"\n";

    #[test]
    fn defaults_and_a_hidden_token() {
        let c = parse(&format!("{BASE}token = \"secret\"\n")).unwrap();
        assert_eq!(c.batch_size, 5000);
        assert_eq!(c.flush_interval_ms, 1000);
        assert_eq!(c.buffer_max_points, 1_000_000);
        assert_eq!(c.retry_max_ms, 30_000);
        assert_eq!(c.read_token().unwrap(), "secret");
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bad_keys_are_named_with_what_was_expected() {
        let cases = [
            (BASE.to_string(), "needs token or token_file"),
            (
                format!("{BASE}token = \"t\"\ntoken_file = \"/x\"\n"),
                "both token and token_file",
            ),
            (
                "url = \"http://h:8086/influx\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n"
                    .into(),
                "a path prefix is not supported",
            ),
            (
                "url = \"ftp://h\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n".into(),
                "expected http(s)://host[:port]",
            ),
            (
                "url = \"not a url\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n".into(),
                "is not a URL",
            ),
            (
                "url = \"http://h\"\norg = \" \"\nbucket = \"b\"\ntoken = \"t\"\n".into(),
                "[influxdb] org is empty",
            ),
            (
                format!("{BASE}token = \"t\"\nbatch_size = 0\n"),
                "batch_size = 0: expected 1 to 100000 lines",
            ),
            (
                format!("{BASE}token = \"t\"\nbuffer_max_points = 10\n"),
                "buffer_max_points = 10: expected 5000 to",
            ),
            (
                format!("{BASE}token = \"t\"\ntimeout_s = nan\n"),
                "timeout_s = NaN: expected 0.1 to 600 s",
            ),
            (
                format!("{BASE}token = \"t\"\nprecision = \"ns\"\n"),
                "precision = \"ns\": expected \"ms\"",
            ),
            (
                format!("{BASE}token = \"t\"\nbogus = 1\n"),
                "unknown field `bogus`",
            ),
        ];
        for (text, want) in cases {
            let e = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{text} parsed"));
            assert!(e.contains(want), "{text}\n→ {e}\nwanted {want}");
        }
    }

    #[test]
    fn token_files_are_read_at_start_and_named_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let text = format!("{BASE}token_file = \"{}\"\n", file.display());
        let c = parse(&text).unwrap();
        let e = format!("{:#}", c.read_token().unwrap_err());
        assert!(e.contains("token_file") && e.contains("token"), "{e}");
        std::fs::write(&file, "\n").unwrap();
        assert!(format!("{:#}", c.read_token().unwrap_err()).contains("is empty"));
        std::fs::write(&file, "abc\n").unwrap();
        assert_eq!(c.read_token().unwrap(), "abc");
    }

    #[test]
    fn http_answers_are_sorted_by_what_can_fix_them() {
        let http = |code: u16, text: &str| {
            classify(Err(RequestError::Http {
                status: code.try_into().unwrap(),
                text: text.into(),
            }))
        };
        assert_eq!(classify(Ok(())), Outcome::Delivered);
        assert_eq!(http(200, ""), Outcome::Delivered);
        assert!(
            matches!(http(400, "unable to parse 'x'"), Outcome::Reject(m) if m.contains("unable to parse 'x'"))
        );
        assert!(matches!(http(422, ""), Outcome::Reject(_)));
        assert!(matches!(http(413, ""), Outcome::TooLarge(_)));
        assert!(matches!(http(401, ""), Outcome::Retry(m) if m.contains("token")));
        assert!(matches!(http(403, ""), Outcome::Retry(_)));
        assert!(matches!(http(404, ""), Outcome::Retry(m) if m.contains("bucket")));
        assert!(matches!(http(429, ""), Outcome::Retry(_)));
        assert!(matches!(http(503, ""), Outcome::Retry(_)));
    }
}
