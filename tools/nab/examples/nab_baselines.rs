//! Prints the NAB evaluation of the null, perfect and random baseline detectors.
//!
//! `cargo run -p hearth-nab --example nab_baselines -- <nab-dir> [seed]`
//! (`<nab-dir>` holds `combined_windows.json` and the CSVs; default `$NAB_DIR`).

use hearth_nab::{Corpus, baselines, evaluate};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("NAB_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            eprintln!("usage: nab_baselines <nab-dir> [seed]");
            std::process::exit(2);
        });
    let seed: u64 = args
        .next()
        .map_or(42, |s| s.parse().expect("seed: an unsigned integer"));
    let corpus = match Corpus::load(&dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "Corpus {}: {} files, {} rows, {} windows\n",
        dir.display(),
        corpus.files.len(),
        corpus.rows_count(),
        corpus.windows_count()
    );
    let detectors = [
        ("null (all zeros)", baselines::null(&corpus)),
        (
            "perfect (1 on the first row of each window)",
            baselines::perfect(&corpus),
        ),
        (
            &*format!("random (LCG, seed {seed})").leak(),
            baselines::random(&corpus, seed),
        ),
    ];
    for (name, scores) in &detectors {
        let e = evaluate(&corpus, scores).unwrap_or_else(|e| panic!("{name}: {e}"));
        let t = Instant::now();
        for _ in 0..10 {
            std::hint::black_box(evaluate(&corpus, scores).unwrap());
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / 10.0;
        println!("## {name}\n\n(evaluate: {ms:.1} ms)\n\n{e}");
    }
}
