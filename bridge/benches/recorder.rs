//! Recorder throughput: 200 000 state changes over 100 sensors through the
//! real path (entity store → feed task → queue → writer thread → SQLite
//! file in WAL mode), timed until the last one is committed; and the
//! duration of each commit (one transaction).
//!
//! `cargo bench -p hearth --bench recorder`

use hearth::clock::Clock;
use hearth::entity::{Component, Device, EntitySpec, EntityStore};
use hearth::recorder::{Recorder, RecorderConfig};
use serde_json::{Map, json};
use std::time::Instant;

const CHANGES: usize = 200_000;
const SENSORS: usize = 100;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = EntityStore::new(Clock::real());
        store
            .upsert_device(
                "bench",
                Device {
                    id: "bench".into(),
                    name: "Bench".into(),
                    manufacturer: "test".into(),
                    model: "test".into(),
                    sw_version: None,
                    via_device: None,
                },
            )
            .unwrap();
        let ids: Vec<String> = (0..SENSORS)
            .map(|i| {
                let spec = EntitySpec::new("bench", &format!("t{i}"), Component::Sensor)
                    .measured("°C", "measurement");
                let id = spec.entity_id.clone();
                store.upsert_entity(spec).unwrap();
                id
            })
            .collect();
        // Room for the whole burst: this measures the writer, not drops.
        let config = RecorderConfig {
            max_queue: CHANGES * 2,
            ..RecorderConfig::default()
        };
        let path = dir.path().join("hearth.db");
        let rec = Recorder::start(&config, path.clone(), store.clone()).unwrap();
        rec.flush().await.unwrap();
        let before = rec.commit_samples().len();

        let started = Instant::now();
        for i in 0..CHANGES {
            let mut attrs = Map::new();
            attrs.insert("source".into(), json!("bench"));
            store
                .set_state(
                    &ids[i % SENSORS],
                    format!("{:.2}", 20.0 + (i % 1000) as f64 / 100.0),
                    attrs,
                )
                .unwrap();
            if i % 1000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let produced = started.elapsed();
        rec.flush().await.unwrap();
        let total = started.elapsed();

        let commits: Vec<_> = rec.commit_samples().into_iter().skip(before).collect();
        let mut micros: Vec<u64> = commits.iter().map(|c| c.micros).collect();
        micros.sort_unstable();
        let rows: usize = commits.iter().map(|c| c.rows).sum();
        let size = std::fs::metadata(&path).map_or(0, |m| m.len())
            + std::fs::metadata(dir.path().join("hearth.db-wal")).map_or(0, |m| m.len());
        println!(
            "recorder: {CHANGES} state changes over {SENSORS} sensors, commit_interval_ms = {}",
            config.commit_interval_ms
        );
        println!(
            "  produced in {:.3} s ({:.0} changes/s into the store)",
            produced.as_secs_f64(),
            CHANGES as f64 / produced.as_secs_f64()
        );
        println!(
            "  all committed after {:.3} s: {:.0} changes/s sustained",
            total.as_secs_f64(),
            CHANGES as f64 / total.as_secs_f64()
        );
        println!(
            "  {} commits, {:.0} rows per commit on average (cap {}), {} rows",
            commits.len(),
            rows as f64 / commits.len().max(1) as f64,
            hearth::recorder::writer::MAX_BATCH,
            rows
        );
        println!(
            "  commit (one transaction) p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&micros, 0.5) as f64 / 1000.0,
            percentile(&micros, 0.99) as f64 / 1000.0,
            micros.last().copied().unwrap_or(0) as f64 / 1000.0
        );
        println!(
            "  database {:.1} MB ({:.0} bytes per state change, attributes shared)",
            size as f64 / 1e6,
            size as f64 / CHANGES as f64
        );
        rec.close().await;
    });
}
