//! # Offline anomaly scoring: `hearth detect` and `hearth bench nab`
//!
//! `hearth detect --plugin FILE.wasm [--config FILE] --input IN.csv --output
//! OUT.csv` streams a `timestamp,value` CSV through a detector plugin, one
//! row at a time, and writes `timestamp,value,anomaly_score`.
//!
//! The plugin runs in the same host as live: [`prepare`] (compile, link,
//! `init`, `describe`, the declaration checks) and [`PluginInstance`] with
//! its fuel, epoch and memory limits. Each row becomes what a live sensor
//! produces: a `state_changed` of one input entity (`sensor.detect_input`
//! unless the config names its own first stream) whose `last_updated` is
//! the row's timestamp, with the host clock ([`Clock::manual`]) set to that
//! time. The score is the state of the plugin's `<slug>_anomaly_score`
//! entity in the output of that call (slug: the entity id with `.` → `_`),
//! the contract of `plugins/anomaly-detector`.
//!
//! No look-ahead is possible: the plugin sees row *n* before row *n + 1*
//! exists for it.

pub mod csv;
pub mod nab;

use crate::clock::{Clock, ManualTime};
use crate::entity::EntityStore;
use crate::plugins::PluginConfig;
use crate::plugins::directory::Sidecar;
use crate::plugins::engine::{ControllerPre, HostState, PluginEngine, wit};
use crate::plugins::instance::PluginInstance;
use crate::plugins::prepare::{self, HostServices};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The entity a row becomes when the config names no stream.
pub const INPUT_ENTITY: &str = "sensor.detect_input";

/// `hearth detect`'s arguments.
#[derive(Debug, Clone)]
pub struct DetectOptions {
    /// `PATH.wasm` or `builtin:NAME`.
    pub plugin: String,
    /// Sidecar-shaped TOML (`[config]`, `[limits]`), as for `hearth plugin load`.
    pub config: Option<PathBuf>,
    pub input: PathBuf,
    pub output: PathBuf,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct DetectStats {
    pub rows: usize,
    /// Wall time inside the plugin's `on-state` calls.
    pub plugin_time: Duration,
    /// Wall time of the whole run: read, score, write.
    pub total_time: Duration,
    /// Rows the plugin scored above 0.5 (a quick look, not a threshold).
    pub above_half: usize,
}

impl DetectStats {
    /// Rows per second through the plugin calls alone.
    pub fn plugin_rows_per_s(&self) -> f64 {
        self.rows as f64 / self.plugin_time.as_secs_f64().max(1e-9)
    }
}

/// A detector plugin ready to score one stream.
pub struct Detector {
    instance: PluginInstance,
    hand: ManualTime,
    entity_id: String,
    score_object_id: String,
    old: Option<wit::EntityState>,
    /// Inside `on-state` since creation.
    pub plugin_time: Duration,
    // The host services the instance holds handles to.
    _store: Arc<EntityStore>,
}

/// The plugin's settings for an offline run: the sidecar's `[config]` and
/// `[limits]`, with `streams` set to the one input entity unless present.
pub fn plugin_config(plugin: &str, sidecar: Option<&Path>) -> anyhow::Result<PluginConfig> {
    let side = match sidecar {
        Some(p) => crate::cli::plugin::read_sidecar(p)?,
        None => Sidecar::default(),
    };
    let mut config = side.config.unwrap_or_else(|| json!({}));
    let Value::Object(map) = &mut config else {
        bail!("the plugin config must be a table, got `{config}`");
    };
    map.entry("streams")
        .or_insert_with(|| json!([{"entity_id": INPUT_ENTITY, "kind": "generic"}]));
    Ok(PluginConfig {
        name: "detect".into(),
        wasm: plugin.to_string(),
        config,
        limits: side.limits.unwrap_or_default(),
        drives: Some(Vec::new()),
    })
}

/// A detector compiled and checked once; [`DetectorCode::instance`] gives
/// a fresh, `init`ed instance per stream (compiling is the expensive part).
pub struct DetectorCode {
    pre: ControllerPre<HostState>,
    cfg: PluginConfig,
    config_json: String,
    entity_id: String,
    score_object_id: String,
}

impl DetectorCode {
    /// Compiles, links, `init`s and `describe`s the plugin once; the input
    /// entity is the config's first stream.
    pub fn prepare(engine: &PluginEngine, cfg: &PluginConfig) -> anyhow::Result<DetectorCode> {
        let entity_id = cfg.config["streams"][0]["entity_id"]
            .as_str()
            .with_context(|| {
                format!(
                    "the plugin config's `streams` must be a list of {{entity_id, kind}}, got `{}`",
                    cfg.config["streams"]
                )
            })?
            .to_string();
        let (store, _hand) = host_store();
        let (logs, forecasts) = (Arc::default(), Arc::default());
        let host = HostServices {
            store: &store,
            logs: &logs,
            forecasts: &forecasts,
        };
        let prepared = prepare::prepare(engine, cfg.clone(), &host)
            .with_context(|| format!("detector {}", cfg.wasm))?;
        anyhow::ensure!(
            prepared.desc.reads.contains(&entity_id),
            "plugin `{}` does not read `{entity_id}` (it reads {:?}): is it a detector?",
            cfg.wasm,
            prepared.desc.reads
        );
        let score_object_id = format!("{}_anomaly_score", entity_id.replace('.', "_"));
        anyhow::ensure!(
            prepared
                .desc
                .entities
                .iter()
                .any(|e| e.object_id == score_object_id),
            "plugin `{}` declares no `{score_object_id}` entity: it does not follow the \
             anomaly-detector contract (see plugins/anomaly-detector)",
            cfg.wasm
        );
        Ok(DetectorCode {
            pre: prepared.pre,
            cfg: prepared.cfg,
            config_json: prepared.config_json,
            entity_id,
            score_object_id,
        })
    }

    /// A fresh instance with nothing learned.
    pub fn instance(&self, engine: &PluginEngine) -> anyhow::Result<Detector> {
        let (store, hand) = host_store();
        let (logs, forecasts) = (Arc::default(), Arc::default());
        let host = HostServices {
            store: &store,
            logs: &logs,
            forecasts: &forecasts,
        };
        let instance = prepare::instantiate(
            engine,
            &self.pre,
            &self.cfg.name,
            &host,
            &self.cfg,
            &self.config_json,
        )
        .map_err(|f| anyhow::anyhow!("detector {}: {f}", self.cfg.wasm))?;
        Ok(Detector {
            instance,
            hand,
            entity_id: self.entity_id.clone(),
            score_object_id: self.score_object_id.clone(),
            old: None,
            plugin_time: Duration::ZERO,
            _store: store,
        })
    }
}

/// The instance's host: an empty entity store on a clock only the rows move.
fn host_store() -> (Arc<EntityStore>, ManualTime) {
    let (clock, hand) = Clock::manual(0);
    (EntityStore::new(clock), hand)
}

impl Detector {
    /// Scores one sample: `value` is the entity's state text (a number, or
    /// anything else for a gap, as a live sensor's `unavailable`).
    pub fn score(&mut self, t_ms: i64, value: &str) -> anyhow::Result<f64> {
        self.hand.set(t_ms);
        let new = wit::EntityState {
            entity_id: self.entity_id.clone(),
            state: value.to_string(),
            attributes: "{}".into(),
            last_changed_ms: t_ms,
            last_updated_ms: t_ms,
        };
        let change = wit::StateChange {
            entity_id: self.entity_id.clone(),
            old_state: self.old.replace(new.clone()),
            new_state: Some(new),
        };
        let started = Instant::now();
        let out = self.instance.on_state(&change);
        self.plugin_time += started.elapsed();
        let out = out.map_err(|f| anyhow::anyhow!("the plugin faulted: {f}"))?;
        crate::plugins::runner::check_output(&out)
            .map_err(|f| anyhow::anyhow!("the plugin's output was refused: {f}"))?;
        let update = out
            .entities
            .iter()
            .find(|e| e.object_id == self.score_object_id)
            .with_context(|| {
                format!(
                    "the plugin's output has no `{}` update for this sample",
                    self.score_object_id
                )
            })?;
        let score: f64 = update.state.trim().parse().with_context(|| {
            format!(
                "`{}` = `{}`: expected a number in [0, 1]",
                self.score_object_id, update.state
            )
        })?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&score),
            "`{}` = {score}: expected a number in [0, 1]",
            self.score_object_id
        );
        Ok(score)
    }
}

/// Runs `hearth detect`.
pub fn detect(opts: &DetectOptions) -> anyhow::Result<DetectStats> {
    let started = Instant::now();
    let rows = csv::read(&opts.input)?;
    let cfg = plugin_config(&opts.plugin, opts.config.as_deref())?;
    let engine = PluginEngine::new()?;
    let mut detector = DetectorCode::prepare(&engine, &cfg)?.instance(&engine)?;
    let mut scores = Vec::with_capacity(rows.len());
    for row in &rows {
        let s = detector.score(row.time_ms, &row.value).with_context(|| {
            format!(
                "{} line {} ({}, {})",
                opts.input.display(),
                row.line,
                row.timestamp,
                row.value
            )
        })?;
        scores.push(s);
    }
    csv::write(&opts.output, &rows, &scores)?;
    Ok(DetectStats {
        rows: rows.len(),
        plugin_time: detector.plugin_time,
        total_time: started.elapsed(),
        above_half: scores.iter().filter(|s| **s > 0.5).count(),
    })
}
