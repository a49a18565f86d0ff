//! `hearth bench nab DIR`: every file of a NAB corpus through a detector
//! plugin (a fresh instance per file, rows in file order, exactly as
//! `hearth detect` streams them), scored by [`hearth_nab`] (NAB's windows,
//! scaled sigmoid, profiles, threshold sweep and normalisation). The
//! printout ([`NabRun`]'s `Display`) is the evaluation's: the profile table,
//! then the per-category table (each NAB category scored on its own windows
//! at the corpus-wide threshold, as NAB's per-category breakdowns are), then
//! the per-file table.

use super::{DetectorCode, plugin_config};
use crate::plugins::engine::PluginEngine;
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// `hearth bench nab`'s arguments.
#[derive(Debug, Clone)]
pub struct NabOptions {
    pub dir: PathBuf,
    pub plugin: String,
    pub config: Option<PathBuf>,
    /// Worker threads (each file is one stream; files run in parallel).
    pub threads: usize,
}

/// The evaluation and what it cost.
pub struct NabRun {
    pub evaluation: hearth_nab::Evaluation,
    pub rows: usize,
    pub files: usize,
    /// Σ wall time inside the plugins' `on-state` calls.
    pub plugin_time: Duration,
    pub wall: Duration,
}

impl NabRun {
    /// Rows per second of plugin time (one core).
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.plugin_time.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for NabRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}", self.evaluation)?;
        write!(
            f,
            "{} files, {} rows; {:.0} rows/s inside the plugin (one core); wall {:.1} s",
            self.files,
            self.rows,
            self.rows_per_s(),
            self.wall.as_secs_f64()
        )
    }
}

/// Scores every file of the corpus in `opts.dir` and evaluates.
pub fn run(opts: &NabOptions) -> anyhow::Result<NabRun> {
    let started = Instant::now();
    let corpus = hearth_nab::Corpus::load(&opts.dir)
        .map_err(|e| anyhow::anyhow!("NAB corpus {}: {e}", opts.dir.display()))?;
    let cfg = plugin_config(&opts.plugin, opts.config.as_deref())?;
    let engine = PluginEngine::new()?;
    // Compiled once; each file gets a fresh instance.
    let code = DetectorCode::prepare(&engine, &cfg)?;
    let next = AtomicUsize::new(0);
    let results: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::default();
    let plugin_time = Mutex::new(Duration::ZERO);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::default();
    std::thread::scope(|s| {
        for _ in 0..opts.threads.max(1) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = corpus.files.get(i) else {
                        break;
                    };
                    match score_file(&engine, &code, &file.data) {
                        Ok((scores, t)) => {
                            *plugin_time.lock().unwrap() += t;
                            results
                                .lock()
                                .unwrap()
                                .insert(file.data.name.clone(), scores);
                        }
                        Err(e) => {
                            first_error.lock().unwrap().get_or_insert(e);
                            next.store(usize::MAX / 2, Ordering::Relaxed);
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    let scores = results.into_inner().unwrap();
    let evaluation =
        hearth_nab::evaluate(&corpus, &scores).map_err(|e| anyhow::anyhow!("NAB scoring: {e}"))?;
    Ok(NabRun {
        evaluation,
        rows: corpus.files.iter().map(|f| f.data.values.len()).sum(),
        files: corpus.files.len(),
        plugin_time: plugin_time.into_inner().unwrap(),
        wall: started.elapsed(),
    })
}

/// One file through a fresh detector instance.
fn score_file(
    engine: &PluginEngine,
    code: &DetectorCode,
    data: &hearth_nab::DataFile,
) -> anyhow::Result<(Vec<f64>, Duration)> {
    let mut detector = code.instance(engine)?;
    let mut scores = Vec::with_capacity(data.values.len());
    for (row, (t, v)) in data.times_ms.iter().zip(&data.values).enumerate() {
        let s = detector
            .score(*t, &format_value(*v))
            .with_context(|| format!("{} row {}", data.name, row + 1))?;
        scores.push(s);
    }
    Ok((scores, detector.plugin_time))
}

/// A sample as a sensor's state text: the shortest text that reads back
/// as the same f64 (`NaN` for a missing value, which the detector skips).
fn format_value(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "nan".into()
    }
}

/// The dev subset beside the repository (`../shared/datasets/nab-dev-v2`:
/// 42 of NAB's 58 files, every category).
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/nab-dev-v2")
}
