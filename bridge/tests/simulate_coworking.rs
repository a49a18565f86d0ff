//! `hearth simulate` on the coworking day (issue 14, items 5–6): the four
//! strip strategies, each a WASM plugin through the same host, against
//! the same space and laptops. The test runs the morning rush (08:00–09:00
//! local, everyone arrives in the first hour) with `--end`, to keep a
//! debug build's run short.

use hearth::twin::batch::SimulateOptions;
use hearth::twin::batch::coworking::{self, CoworkingOutcome};
use std::path::{Path, PathBuf};

const STRATEGIES: [&str; 4] = [
    "builtin:strip-balancer",
    "builtin:all-on",
    "builtin:first-come",
    "builtin:round-robin",
];

fn morning(out: &Path) -> Vec<CoworkingOutcome> {
    let scenario: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios/coworking-day.toml");
    let opts = SimulateOptions {
        scenario,
        start: Some("2026-01-13T08:00:00+01:00".into()),
        end: Some("2026-01-13T09:00:00+01:00".into()),
        controllers: STRATEGIES.iter().map(|s| s.to_string()).collect(),
        out: out.to_path_buf(),
        progress: false,
    };
    let (sc, runs) = coworking::simulate(&opts).unwrap();
    assert!(sc.laptops.len() >= 15, "{} laptops", sc.laptops.len());
    runs
}

fn metrics<'a>(runs: &'a [CoworkingOutcome], label: &str) -> &'a coworking::CoworkingMetrics {
    &runs.iter().find(|r| r.label == label).unwrap().metrics
}

#[test]
fn balancer_holds_every_limit_and_the_summary_compares_the_four() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let runs = morning(&out);
    assert_eq!(runs.len(), 4);
    for r in &runs {
        assert_eq!(r.metrics.faults, 0, "{}: {:?}", r.label, r.faults);
        assert!(
            r.metrics.delivered_kwh > 0.5,
            "{}: {:?}",
            r.label,
            r.metrics
        );
    }
    let bal = metrics(&runs, "strip-balancer");
    assert_eq!(bal.violation_count(), 0, "{bal:#?}");
    assert_eq!(bal.trips(), 0, "{bal:#?}");
    assert!(bal.relay_switches_per_h > 0.0, "it switched: {bal:#?}");

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("strip-balancer: 0 limit violations and 0 breaker trips"),
        "{md}"
    );
    assert!(md.contains("- all-on: "), "{md}");
    assert!(
        md.contains("- against first-come: energy delivered"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.starts_with("controller,plugin,violations,seconds_over,max_overshoot_a,breaker_trips")
    );
    for f in ["plot.svg", "steps-strip-balancer.csv", "laptops-all-on.csv"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 100, "{f}");
    }
    let svg = std::fs::read_to_string(out.join("plot.svg")).unwrap();
    assert!(svg.contains("wall circuit current"));
}

/// Issue 14's claims. They do not hold on this scenario yet (README,
/// "Coworking simulation"): 15 plugged laptops peak at 13.9 A, so the
/// 16 A circuit never binds, all-on never trips and first-come equals
/// all-on, while the balancer stops laptops at their 80 % target and
/// they drain under use (fewer at target, less energy, lower Jain).
#[test]
#[ignore = "the balancer does not beat first-come on this scenario yet; see README"]
fn balancer_beats_first_come_and_all_on_trips() {
    let dir = tempfile::tempdir().unwrap();
    let runs = morning(&dir.path().join("out"));
    let (bal, all, first) = (
        metrics(&runs, "strip-balancer"),
        metrics(&runs, "all-on"),
        metrics(&runs, "first-come"),
    );
    assert!(all.trips() > 0, "all-on must trip a breaker: {all:#?}");
    assert!(
        bal.delivered_kwh >= first.delivered_kwh,
        "{bal:#?} {first:#?}"
    );
    assert!(
        bal.at_target_share() > first.at_target_share(),
        "{bal:#?} {first:#?}"
    );
    assert!(bal.jain_gain > first.jain_gain, "{bal:#?} {first:#?}");
}
