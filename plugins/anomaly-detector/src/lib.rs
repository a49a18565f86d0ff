//! Anomaly detector: a calibrated score in `[0, 1]` per sample of any
//! numeric stream, and an alert with hysteresis when it is high.
//!
//! - [`detector`]: one stream's detector, either method, and what a sample's
//!   result is; [`conformal`] (the default): nearest-neighbour, time-of-day
//!   and level measures each ranked against the stream's own history
//!   ([`calibrate`], [`neighbours`], [`season`]), so one threshold means
//!   the same rarity on every stream; [`forest`]: the seed's robust
//!   z-scores and Half-Space Trees ([`hst`]) with Numenta's likelihood, kept
//!   as a selectable baseline. Both are one pass, no look-ahead (a score
//!   uses only earlier samples), fixed memory, and pure, so the same code
//!   runs natively (tests, `examples/nab.rs`) and in the component;
//! - [`stats`]: the normal tail and exponentially weighted moments;
//!   [`codec`]: the saved state's fixed layout; [`config`]: the JSON config;
//! - this file: the controller (entities, alerts, save/restore).
//!
//! Per stream `sensor.x` (slug `sensor_x`), the plugin publishes
//! `sensor_x_anomaly_score` (a sensor, state class `measurement`, the score
//! with six decimals, attributes `time_ms`, `value` and `skipped` with the
//! reason when the sample was not scored) on every delivered sample, and
//! `sensor_x_anomaly` (a `problem` binary sensor). When the score reaches
//! `threshold` an alert keyed by the entity id is raised (severity
//! warning) and the binary sensor turns on; it clears once both the score
//! and the evidence behind it are below `clear_threshold` and it has been
//! on for at least `min_hold_s` of sample time. A raised alert is not raised
//! again. The warm-up (`warmup` samples and `warmup_hours` of sample time)
//! raises nothing. Power streams are also judged on a one-minute tick
//! (their duty cycle ages while a plug sends nothing).
//!
//! Saved state: `HAD\0`, a format version (little-endian u16, now 2), then
//! per stream its entity id, alert flag and onset time, and the detector's
//! fixed-size state (a method tag and the method's state) prefixed by its
//! length. Its size depends
//! on the config only. A newer version, another method or layout, or a
//! damaged state is refused (the host starts fresh); streams not in the
//! saved state start fresh.

pub mod calibrate;
pub mod codec;
pub mod config;
pub mod conformal;
pub mod detector;
pub mod forest;
pub mod hst;
pub mod neighbours;
pub mod season;
pub mod stats;

use codec::{Reader, Writer};
use config::Config;
use detector::{Detector, Scored};
use hearth_plugin_sdk::serde_json::{Value, json};
use hearth_plugin_sdk::{
    Change, Controller, Description, Output, Severity, export_controller, problem_sensor, sensor,
};

const MAGIC: &[u8; 4] = b"HAD\0";
const VERSION: u16 = 2;
/// How often power streams are judged between samples (ms).
const IDLE_TICK_MS: u32 = 60_000;

/// One configured stream.
#[derive(Debug, Clone)]
struct Stream {
    entity_id: String,
    /// `entity_id` with `.` replaced by `_`.
    slug: String,
    detector: Detector,
    /// The alert is raised, since this sample time (ms).
    alert_since: Option<i64>,
    /// The last state was a number (an unavailable sensor is not idle).
    available: bool,
}

impl Stream {
    fn score_id(&self) -> String {
        format!("{}_anomaly_score", self.slug)
    }
    fn problem_id(&self) -> String {
        format!("{}_anomaly", self.slug)
    }
}

/// The plugin.
pub struct AnomalyDetector {
    cfg: Config,
    streams: Vec<Stream>,
}

/// A state's value as a number: `None` for `unavailable`, `unknown`, text,
/// NaN and ±∞.
pub fn parse_value(state: &str) -> Option<f64> {
    state.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

impl AnomalyDetector {
    /// Builds the detector from a parsed config.
    pub fn new(cfg: Config) -> AnomalyDetector {
        let method = cfg.method();
        let streams = cfg
            .streams
            .iter()
            .map(|s| Stream {
                entity_id: s.entity_id.clone(),
                slug: s.entity_id.replace('.', "_"),
                detector: Detector::new(&method, s.kind.floor(), s.kind.duty_cycle()),
                alert_since: None,
                available: false,
            })
            .collect();
        AnomalyDetector { cfg, streams }
    }

    /// Scores one sample of `entity_id` (`value` as HA's state string) at
    /// `t_ms`, adding the entity updates and alerts to `out`. Unknown
    /// entities are ignored.
    pub fn sample(&mut self, entity_id: &str, t_ms: i64, value: &str, out: &mut Output) {
        let Some(s) = self.streams.iter_mut().find(|s| s.entity_id == entity_id) else {
            return;
        };
        let v = parse_value(value);
        let r: Scored = s.detector.update(t_ms, v);
        s.available = v.is_some();
        let mut attributes = json!({"time_ms": t_ms, "value": v});
        if let Some(why) = r.skipped {
            attributes["skipped"] = Value::from(why.reason());
        }
        out.entity_with(&s.score_id(), &format!("{:.6}", r.score), attributes);
        if r.skipped.is_some_and(|w| w != detector::Skip::WarmingUp) {
            return;
        }
        judge(s, &self.cfg, t_ms, &r, value.trim(), out);
    }

    /// The host's tick: an appliance's power that stopped changing still
    /// ages its on/off run (Hearth, like HA, delivers no state that did not
    /// change), so its duty-cycle measure is judged without a sample.
    pub fn idle(&mut self, now_ms: i64, out: &mut Output) {
        for s in self.streams.iter_mut().filter(|s| s.available) {
            let Some(r) = s.detector.idle(now_ms) else {
                continue;
            };
            if r.score > 0.0 || s.alert_since.is_some() {
                out.entity_with(
                    &s.score_id(),
                    &format!("{:.6}", r.score),
                    json!({"time_ms": now_ms, "idle": true}),
                );
                judge(s, &self.cfg, now_ms, &r, "unchanged", out);
            }
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(MAGIC);
        w.u16(VERSION);
        w.u32(self.streams.len() as u32);
        for s in &self.streams {
            w.u32(s.entity_id.len() as u32);
            w.bytes(s.entity_id.as_bytes());
            w.u8(u8::from(s.alert_since.is_some()));
            w.i64(s.alert_since.unwrap_or(0));
            // Length-prefixed: a removed stream's record is skipped unread.
            let mut d = Writer::default();
            s.detector.write(&mut d);
            w.u32(d.0.len() as u32);
            w.bytes(&d.0);
        }
        w.0
    }

    fn decode(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut r = Reader::new(bytes);
        if r.take(4).ok() != Some(&MAGIC[..]) {
            return Err("not an anomaly-detector state".into());
        }
        let version = r.u16()?;
        if version != VERSION {
            return Err(format!(
                "saved state version {version}, this plugin reads {VERSION}"
            ));
        }
        let count = r.u32()?;
        let mut streams = self.streams.clone();
        for _ in 0..count {
            let len = r.u32()? as usize;
            let id = String::from_utf8(r.take(len)?.to_vec())
                .map_err(|_| "entity id is not UTF-8".to_string())?;
            let raised = r.u8()? != 0;
            let since = r.i64()?;
            let record_len = r.u32()? as usize;
            let record = r.take(record_len)?;
            // A stream no longer configured is skipped whatever its shape.
            let Some(s) = streams.iter_mut().find(|s| s.entity_id == id) else {
                continue;
            };
            let mut rr = Reader::new(record);
            s.detector
                .read(&mut rr)
                .map_err(|e| format!("stream {id}: {e}"))?;
            if !rr.at_end() {
                return Err(format!("stream {id}: trailing bytes in its record"));
            }
            s.alert_since = raised.then_some(since);
        }
        if !r.at_end() {
            return Err("trailing bytes after the saved state".into());
        }
        self.streams = streams;
        Ok(())
    }
}

/// Raises or clears a stream's alert on a result (de-duplicated: a raised
/// alert is not raised again; it clears once score and evidence are below
/// `clear_threshold` after `min_hold_s`).
fn judge(s: &mut Stream, cfg: &Config, t_ms: i64, r: &Scored, value: &str, out: &mut Output) {
    match s.alert_since {
        None if r.score >= cfg.threshold => {
            s.alert_since = Some(t_ms);
            out.alert_for(
                &s.entity_id,
                &s.entity_id,
                Severity::Warning,
                true,
                &format!("Anomaly on {}", s.entity_id),
                &format!(
                    "{} = {} is unusual (anomaly score {:.3}, threshold {})",
                    s.entity_id, value, r.score, cfg.threshold
                ),
            );
            out.entity(&s.problem_id(), "on");
        }
        Some(since)
            if r.score < cfg.clear_threshold
                && r.likelihood < cfg.clear_threshold
                && (t_ms.saturating_sub(since) as f64) >= cfg.min_hold_s * 1000.0 =>
        {
            s.alert_since = None;
            out.alert_for(
                &s.entity_id,
                &s.entity_id,
                Severity::Warning,
                false,
                &format!("Anomaly on {}", s.entity_id),
                &format!("{} = {} is back to usual", s.entity_id, value),
            );
            out.entity(&s.problem_id(), "off");
        }
        _ => {}
    }
}

impl Controller for AnomalyDetector {
    fn init(config: Value) -> Result<Self, String> {
        Ok(AnomalyDetector::new(Config::parse(config)?))
    }

    fn describe(&self) -> Description {
        let mut entities = Vec::new();
        for s in &self.streams {
            entities.push(
                sensor(&s.score_id(), &format!("{} anomaly score", s.entity_id))
                    .state_class("measurement"),
            );
            entities.push(problem_sensor(
                &s.problem_id(),
                &format!("{} anomaly", s.entity_id),
            ));
        }
        Description {
            name: "anomaly-detector".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            reads: self.streams.iter().map(|s| s.entity_id.clone()).collect(),
            drives: vec![],
            config_schema: "{}".into(),
            // Power streams are judged once a minute between samples.
            tick_period_ms: if self.cfg.streams.iter().any(|s| s.kind.duty_cycle()) {
                IDLE_TICK_MS
            } else {
                0
            },
            entities,
        }
    }

    fn on_state(&mut self, change: Change, out: &mut Output) {
        // A removed entity delivers no sample.
        if let Some(new) = change.new {
            self.sample(&change.entity_id, new.last_updated_ms, &new.state, out);
        }
    }

    fn tick(&mut self, now_ms: i64, out: &mut Output) {
        self.idle(now_ms, out);
    }

    fn save(&self) -> Vec<u8> {
        self.encode()
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.decode(bytes)
    }
}

export_controller!(AnomalyDetector);
