//! Anomaly detector throughput (`cargo bench -p hearth --bench detect`):
//!
//! 1. `hearth detect` on a 100 000-row `timestamp,value` file (a daily sine
//!    with noise, 5-min steps): rows per second inside the WASM component
//!    (wall time around the host's `on-state` calls), and for the whole
//!    command (read, score, write).
//! 2. `hearth bench nab` on the NAB dev subset: the same per-row rate over
//!    real data, and the wall time of the whole evaluation.
//!
//! Not a test: it prints figures for BENCHMARKS.md.

use hearth::detect::{self, DetectOptions};

fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let input = dir.path().join("in.csv");
    let rows = 100_000;
    let mut csv = String::from("timestamp,value\n");
    let t0 = 1_396_000_000_000i64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..rows {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let noise = (x % 1000) as f64 / 500.0 - 1.0;
        let v = 50.0 + 10.0 * (i as f64 / 288.0 * std::f64::consts::TAU).sin() + noise;
        csv.push_str(&format!("{},{v:.3}\n", t0 + i as i64 * 300_000));
    }
    std::fs::write(&input, csv)?;
    let opts = DetectOptions {
        plugin: "builtin:anomaly-detector".into(),
        config: None,
        input,
        output: dir.path().join("out.csv"),
    };
    // The first run compiles the component; time the second.
    detect::detect(&opts)?;
    let stats = detect::detect(&opts)?;
    println!(
        "hearth detect, {} rows: {:.0} rows/s inside the plugin, {:.0} rows/s for the whole command ({:.2} s)",
        stats.rows,
        stats.plugin_rows_per_s(),
        stats.rows as f64 / stats.total_time.as_secs_f64(),
        stats.total_time.as_secs_f64()
    );

    let nab = detect::nab::NabOptions {
        dir: detect::nab::default_dir(),
        plugin: "builtin:anomaly-detector".into(),
        config: None,
        threads: 1,
    };
    let run = detect::nab::run(&nab)?;
    println!(
        "hearth bench nab (dev subset, 1 thread): {} rows, {:.0} rows/s inside the plugin, wall {:.1} s",
        run.rows,
        run.rows_per_s(),
        run.wall.as_secs_f64()
    );
    Ok(())
}
