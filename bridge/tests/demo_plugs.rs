//! `hearth demo --scenario plugs`, end to end: the home office twin (a
//! Shelly Plug S Gen1 and a Plus Plug S Gen2 pushing over MQTT, a Meross
//! MSS310 over signed HTTP, a Broadlink RM4 mini over UDP driving the AC
//! the Gen2 plug meters, a second RM4 and a Plus Plug S only LAN discovery
//! knows) and the
//! bridge with `examples/plugs.toml`. The morning: plugs switched on, the
//! AC switched on with its first IR frame ignored by the twin.

use crate::common;
use hearth::broker::EmbeddedBroker;
use hearth::demo::DemoOptions;

/// 2026-07-01 07:50 Paris (05:50 UTC).
const MORNING: i64 = 1_782_885_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_office_plugs_meter_push_and_confirm_the_ac() {
    common::init_logs();
    let mark = common::log_mark();
    // A start that cannot reach its own embedded broker within the link's
    // 10 s is made once more: it happened once in a full parallel CI run
    // (headless Chromium and Node-RED tests beside it on 2 cores); the
    // bridge's warnings of that attempt are printed, the cause not found.
    let mut attempt = 0;
    let (report, wall, _data) = loop {
        attempt += 1;
        let data = tempfile::tempdir().unwrap();
        let wall = std::time::Instant::now();
        let run = hearth::demo::plugs::run_from(
            DemoOptions {
                secure: None,
                // 07:50 → about 11:10 in 20 wall s.
                speed: 600.0,
                run_for: Some(20.0),
                mqtt_url: None,
                mqtt_port: EmbeddedBroker::free_port(),
                http_port: Some(0),
                data_dir: data.path().to_path_buf(),
            },
            MORNING,
        );
        match tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("the demo ends within 60 s")
        {
            Ok(report) => break (report, wall, data),
            Err(e)
                if attempt == 1 && e.to_string().contains("cannot connect to the MQTT broker") =>
            {
                let words: Vec<String> = common::logs_since(mark)
                    .lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .map(str::to_string)
                    .collect();
                eprintln!(
                    "demo start failed ({e}); once more. Warnings:\n{}",
                    words.join("\n")
                );
            }
            Err(e) => panic!("the plugs demo failed: {e:#}"),
        }
    };
    println!("{report}");
    // The bridge's and the twin's words about the plugs, if anything fails.
    let words: Vec<String> = common::logs_since(mark)
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("restarted") || l.contains("re-send"))
        .map(str::to_string)
        .collect();
    println!("{}", words.join("\n"));
    assert!(wall.elapsed().as_secs_f64() < 60.0);
    assert!(report.simulated_h > 2.0, "{report}");
    assert!(report.failed_calls.is_empty(), "{report}");

    // Every plug metered something, and HA's energy is the twin's.
    assert_eq!(report.plugs.len(), 3);
    for p in &report.plugs {
        assert!(p.truth_now_wh > 10.0, "{}: {report}", p.label);
        assert!(p.within(2.0, 0.02), "{}: {report}", p.label);
    }

    // Both pushing plugs reported their changes within a second.
    assert_eq!(report.push.len(), 2);
    for l in &report.push {
        assert!(l.latencies_s.len() >= 3, "{}: {report}", l.label);
        // At 600× the compressor runs for ~190 wall ms: a longer stall of
        // a loaded machine hides one run (superseded before it was seen).
        assert!(
            l.missed * 10 <= l.latencies_s.len(),
            "{}: {report}",
            l.label
        );
        assert!(l.max_s().is_some_and(|m| m < 1.0), "{}: {report}", l.label);
    }

    // The AC ignored one frame; the bridge re-sent it and then saw it on.
    assert!(report.ir.ignored >= 1, "{report}");
    assert!(report.ir.resent >= 1, "{report}");
    assert!(report.ir.resent_then_confirmed >= 1, "{report}");

    // Problem entities exist (every plug and the IR AC have one), none on.
    assert!(report.problems.len() >= 4, "{report}");
    assert!(report.problems_on().is_empty(), "{report}");

    // The RM4 and the mDNS-announced plug the config does not name wait
    // for adoption (other tests' twins may be listed too: same loopback).
    for id in ["broadlink-34ea34c45d21", "shellyplusplugs-a8032ab1e7f0"] {
        assert!(
            report.pending.iter().any(|p| p.starts_with(id)),
            "{id}: {report}"
        );
    }
}
