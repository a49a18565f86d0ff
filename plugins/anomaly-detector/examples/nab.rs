//! Runs the detector over the NAB corpus and prints NAB's scores.
//!
//! `cargo run --release -p hearth-plugin-anomaly-detector --example nab [DIR]`
//! (default `/work/shared/datasets/nab-dev`). Each file gets a fresh
//! detector (stream kind `generic`, the plugin's default tuning — one
//! parameter set for every file), fed the rows in order, one pass; the
//! score of each row is what the plugin would publish as
//! `<slug>_anomaly_score`.
//!
//! The trees are seeded by the entity id, and the score moves by a couple
//! of points with the seed alone, so the corpus is run once per seed (the
//! entity ids `sensor.detect_input` — what the WASM host uses —,
//! `sensor.a` … `sensor.d`; `NAB_SEEDS=id,id,…` overrides them, `file`
//! meaning each file's name) and each seed's scores and their mean are
//! printed for the three profiles. Judge a change by the mean.
//! `NAB_FULL=1` also prints the last seed's full report.
//!
//! For experiments only (the reported figures use none of them):
//! `NAB_DIAG=1` prints, per seed and file, the best score outside windows and in
//! each window (with its row offset); `NAB_DUMP=<part of a file name>`
//! prints that file's stages as CSV; `T_LEVEL`, `T_HIST`, `T_SHINGLE`,
//! `T_DEPTH`, `T_HORIZON`, `T_TREES`, `T_WARMUP`, `T_AVG`, `T_REFRACTORY`
//! override a tuning key.

use hearth_plugin_anomaly_detector::config::Kind;
use hearth_plugin_anomaly_detector::detector::{Detector, Tuning};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() {
    let dir = std::env::args().nth(1).map_or_else(
        || PathBuf::from("/work/shared/datasets/nab-dev"),
        PathBuf::from,
    );
    let corpus = match hearth_nab::Corpus::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut tuning = Tuning::default();
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = env("T_LEVEL") {
        tuning.level_half_life = v;
    }
    if let Some(v) = env("T_HIST") {
        tuning.history_half_life = v;
    }
    if let Some(v) = env("T_SHINGLE") {
        tuning.shingle = v as usize;
    }
    if let Some(v) = env("T_DEPTH") {
        tuning.depth = v as usize;
    }
    if let Some(v) = env("T_HORIZON") {
        tuning.horizon = v as u32;
    }
    if let Some(v) = env("T_REFRACTORY") {
        tuning.refractory = v;
    }
    if let Some(v) = env("T_TREES") {
        tuning.trees = v as usize;
    }
    if let Some(v) = env("T_WARMUP") {
        tuning.warmup = v as u32;
    }
    if let Some(v) = env("T_AVG") {
        tuning.average = v as usize;
    }
    if let Ok(name) = std::env::var("NAB_DUMP") {
        // One file's stages, as CSV on stdout.
        let f = corpus
            .files
            .iter()
            .find(|f| f.data.name.contains(&name))
            .expect("no such file");
        let mut d = Detector::new(&f.data.name, &tuning, Kind::Generic.floor());
        println!("i,inwin,value,level,tree,raw,score");
        for (i, (&t, &v)) in f.data.times_ms.iter().zip(&f.data.values).enumerate() {
            let s = d.update(t, Some(v));
            let w = f.windows.iter().any(|&(a, b)| a <= i && i <= b) as u8;
            println!(
                "{i},{w},{v},{:.3},{:.3},{:.3},{:.4}",
                s.baseline_decades, s.tree_decades, s.raw, s.score
            );
        }
        return;
    }
    // The trees are seeded by the entity id; run the corpus under several
    // ids (the WASM host's `sensor.detect_input` among them) and report
    // each seed's scores and their mean, so that a change is judged on its
    // mean and not on one lucky seed. `NAB_SEEDS=a,b,...` overrides the
    // list; `file` uses the file name.
    let seeds: Vec<String> = std::env::var("NAB_SEEDS").map_or_else(
        |_| {
            [
                "sensor.detect_input",
                "sensor.a",
                "sensor.b",
                "sensor.c",
                "sensor.d",
            ]
            .map(String::from)
            .to_vec()
        },
        |v| v.split(',').map(String::from).collect(),
    );
    let run = |seed: &str| -> BTreeMap<String, Vec<f64>> {
        corpus
            .files
            .iter()
            .map(|f| {
                let id = if seed == "file" {
                    f.data.name.as_str()
                } else {
                    seed
                };
                let mut d = Detector::new(id, &tuning, Kind::Generic.floor());
                let s = f
                    .data
                    .times_ms
                    .iter()
                    .zip(&f.data.values)
                    .map(|(&t, &v)| d.update(t, Some(v)).score)
                    .collect();
                (f.data.name.clone(), s)
            })
            .collect()
    };
    let all: Vec<BTreeMap<String, Vec<f64>>> = std::thread::scope(|sc| {
        let handles: Vec<_> = seeds.iter().map(|s| sc.spawn(|| run(s))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sums: Vec<(String, f64)> = Vec::new();
    let mut last = None;
    for (seed, scores) in seeds.iter().zip(&all) {
        if std::env::var_os("NAB_DIAG").is_some() {
            println!("seed {seed}:");
            diag(&corpus, scores);
        }
        let eval = hearth_nab::evaluate(&corpus, scores).expect("scores match the corpus");
        let mut line = format!("seed {seed:<22}");
        for (i, p) in eval.profiles.iter().enumerate() {
            line.push_str(&format!(" {}: {:6.2}", p.profile.name, p.normalized));
            if sums.len() <= i {
                sums.push((p.profile.name.to_string(), 0.0));
            }
            sums[i].1 += p.normalized;
        }
        println!("{line}");
        last = Some(eval);
    }
    let mut line = format!("{:<27}", "MEAN");
    for (name, sum) in &sums {
        line.push_str(&format!(" {name}: {:6.2}", sum / seeds.len() as f64));
    }
    println!("{line}");
    if std::env::var_os("NAB_FULL").is_some()
        && let Some(eval) = last
    {
        println!();
        println!("{eval}");
    }
}

/// Per file: the best score in each window (and how far into it) and the
/// best score outside windows, after probation.
fn diag(corpus: &hearth_nab::Corpus, scores: &BTreeMap<String, Vec<f64>>) {
    for f in &corpus.files {
        let s = &scores[&f.data.name];
        let mut inside = vec![false; s.len()];
        let mut wins = String::new();
        for &(a, b) in &f.windows {
            inside[a..=b].iter_mut().for_each(|x| *x = true);
            let (i, m) = (a..=b).fold(
                (a, 0.0f64),
                |(bi, bm), i| {
                    if s[i] > bm { (i, s[i]) } else { (bi, bm) }
                },
            );
            wins.push_str(&format!(" {m:.3}@{}/{}", i - a, b - a + 1));
        }
        let out = (f.probation_rows..s.len())
            .filter(|&i| !inside[i])
            .map(|i| s[i])
            .fold(0.0f64, f64::max);
        println!("{:<60} out {out:.3} win{wins}", f.data.name);
    }
}
