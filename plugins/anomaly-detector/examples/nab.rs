//! Runs the detector over a NAB corpus natively and prints NAB's scores: the
//! figures of BENCHMARKS.md (the WASM host's `hearth bench nab` gives the
//! same scores through the component).
//!
//! `cargo run --release -p hearth-plugin-anomaly-detector --example nab -- [MODE] [DIR]`
//! (default `../shared/datasets/nab-dev-v2` beside the repository). Each file
//! gets a fresh detector (stream kind `generic`, one parameter set for every
//! file), fed the rows in order, one pass; a row's score is what the plugin
//! publishes as `<slug>_anomaly_score`.
//!
//! Modes:
//! - (none): the default method and tuning: NAB's table, per category and
//!   per file;
//! - `--loco`: honest model selection: [`candidates`] (every setting of the
//!   grid, and the forest baseline) scored on the corpus; for each real
//!   category, the candidate and threshold chosen without it score it
//!   (`hearth_nab::loco`); then the in-sample ranking;
//! - `--seeds`: the forest baseline under five tree seeds (the conformal
//!   method has no randomness: its spread is zero by construction);
//! - `--forest`: the forest baseline's table.
//!
//! `NAB_DUMP=<part of a file name>` prints that file's scores as CSV.

use hearth_plugin_anomaly_detector::config::Kind;
use hearth_plugin_anomaly_detector::detector::{Detector, Method};
use hearth_plugin_anomaly_detector::{conformal, forest};
use std::collections::BTreeMap;
use std::path::PathBuf;

type Scores = BTreeMap<String, Vec<f64>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args
        .iter()
        .find(|a| a.starts_with("--"))
        .cloned()
        .unwrap_or_default();
    let dir = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/nab-dev-v2")
        });
    let corpus = match hearth_nab::Corpus::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let default = Method::default();
    if let Ok(name) = std::env::var("NAB_DUMP") {
        dump(&corpus, &default, &name);
        return;
    }
    match mode.as_str() {
        "" => report(&corpus, &default),
        "--forest" => report(&corpus, &Method::Forest(forest::Tuning::default())),
        "--loco" => loco(&corpus),
        "--seeds" => seeds(&corpus),
        other => {
            eprintln!("unknown mode {other}: expected --loco, --seeds or --forest");
            std::process::exit(2);
        }
    }
}

/// Every file through a fresh detector, files in parallel.
fn score(corpus: &hearth_nab::Corpus, method: &Method) -> Scores {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let files: Vec<_> = corpus.files.iter().collect();
    std::thread::scope(|sc| {
        let handles: Vec<_> = files
            .chunks(files.len().div_ceil(threads).max(1))
            .map(|chunk| {
                sc.spawn(move || {
                    chunk
                        .iter()
                        .map(|f| {
                            let mut d = Detector::new(method, Kind::Generic.floor(), false);
                            let s = f
                                .data
                                .times_ms
                                .iter()
                                .zip(&f.data.values)
                                .map(|(&t, &v)| d.update(t, Some(v)).score)
                                .collect();
                            (f.data.name.clone(), s)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a scoring thread panicked"))
            .collect()
    })
}

fn report(corpus: &hearth_nab::Corpus, method: &Method) {
    let started = std::time::Instant::now();
    let scores = score(corpus, method);
    let wall = started.elapsed();
    let eval = hearth_nab::evaluate(corpus, &scores).expect("scores match the corpus");
    println!("{eval}");
    println!(
        "{} files, {} rows, scored in {:.2} s (native, {} threads)",
        corpus.files.len(),
        corpus.rows_count(),
        wall.as_secs_f64(),
        std::thread::available_parallelism().map_or(2, |n| n.get())
    );
}

/// The model-selection grid: the conformal method's pattern length, block
/// length, neighbours and time-of-day memory (the settings that matter
/// most), every combination, and the forest baseline as another method.
fn candidates() -> Vec<(String, Method)> {
    let mut out = Vec::new();
    for shingle in [3, 4, 6] {
        for block in [6, 12, 24] {
            for neighbours in [1, 2] {
                for days in [7.0, 14.0] {
                    let t = conformal::Tuning {
                        shingle,
                        block,
                        neighbours,
                        season_half_life_days: days,
                        ..conformal::Tuning::default()
                    };
                    out.push((
                        format!(
                            "conformal shingle {shingle} block {block} nn {neighbours} days {days}"
                        ),
                        Method::Conformal(t),
                    ));
                }
            }
        }
    }
    out.push((
        "forest (default)".into(),
        Method::Forest(forest::Tuning::default()),
    ));
    out
}

fn loco(corpus: &hearth_nab::Corpus) {
    let cands: Vec<(String, Scores)> = candidates()
        .into_iter()
        .map(|(name, m)| {
            let s = score(corpus, &m);
            (name, s)
        })
        .collect();
    let standard = &hearth_nab::PROFILES[0];
    let report = hearth_nab::loco(corpus, &cands, standard).expect("candidates fit the corpus");
    println!("{report}");
    let mut ranked: Vec<(f64, &str)> = cands
        .iter()
        .map(|(n, s)| {
            let e = hearth_nab::evaluate(corpus, s).expect("scores match the corpus");
            (e.standard(), n.as_str())
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!(
        "In-sample standard score of every candidate (threshold swept on the whole corpus), best first:"
    );
    println!();
    println!("| Candidate | Standard |");
    println!("|---|---:|");
    for (s, n) in &ranked {
        println!("| {n} | {s:.2} |");
    }
}

fn seeds(corpus: &hearth_nab::Corpus) {
    let mut all = Vec::new();
    for seed in [forest::SEED, 1, 2, 3, 4] {
        let t = forest::Tuning {
            seed,
            ..forest::Tuning::default()
        };
        let e = hearth_nab::evaluate(corpus, &score(corpus, &Method::Forest(t)))
            .expect("scores match the corpus");
        println!("forest seed {seed:#x}: standard {:.2}", e.standard());
        all.push(e.standard());
    }
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let (lo, hi) = all
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    println!("forest over 5 seeds: mean {mean:.2}, min {lo:.2}, max {hi:.2}");
    let c = hearth_nab::evaluate(corpus, &score(corpus, &Method::default()))
        .expect("scores match the corpus");
    println!(
        "conformal (deterministic, no seed): standard {:.2}",
        c.standard()
    );
}

/// One file's samples and scores, as CSV on stdout.
fn dump(corpus: &hearth_nab::Corpus, method: &Method, name: &str) {
    let Some(f) = corpus.files.iter().find(|f| f.data.name.contains(name)) else {
        eprintln!("no corpus file contains `{name}`");
        std::process::exit(1);
    };
    let mut d = Detector::new(method, Kind::Generic.floor(), false);
    println!("row,in_window,value,raw,score");
    for (i, (&t, &v)) in f.data.times_ms.iter().zip(&f.data.values).enumerate() {
        let s = d.update(t, Some(v));
        let w = u8::from(f.windows.iter().any(|&(a, b)| a <= i && i <= b));
        println!("{i},{w},{v},{:.4},{:.4}", s.raw, s.score);
    }
}
