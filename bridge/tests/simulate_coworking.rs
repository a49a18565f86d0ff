//! `hearth simulate` on the coworking scenarios (issue 14, items 5–6): the
//! four strip strategies, each a WASM plugin through the same host, against
//! the same space and laptops. The tests run the morning rush (08:00–09:00
//! local, everyone arrives in the first hour) with `--start`/`--end`, to
//! keep a debug build's run short. The limit test uses the winter day,
//! where a 2 kW heater on the always-on outlet makes strip A's limit bind
//! (laptops alone never load the 16 A circuit: coworking-day.toml).

use hearth::twin::batch::SimulateOptions;
use hearth::twin::batch::coworking::{self, CoworkingOutcome};
use std::path::{Path, PathBuf};

const STRATEGIES: [&str; 4] = [
    "builtin:strip-balancer",
    "builtin:all-on",
    "builtin:first-come",
    "builtin:round-robin",
];

fn morning(scenario: &str, out: &Path) -> Vec<CoworkingOutcome> {
    let scenario: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/scenarios")
        .join(scenario);
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
    let runs = morning("coworking-winter-day.toml", &out);
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
    // The limit binds: without balancing, strip A's breaker trips.
    let all = metrics(&runs, "all-on");
    assert!(all.trips() > 0, "all-on must trip a breaker: {all:#?}");

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

/// Issue 14's comparison claims, where the limit binds: the scarce winter
/// morning (coworking-winter-scarce.toml, seed 1, 07:00–19:00 local) with
/// every user telling when they leave, give or take 20 min (the file as
/// shipped has three in four telling). README, "Coworking simulation", has
/// the eight seeds, the held-out ones, and the cases where the claims do
/// not hold (without departures the balancer leaves fewer laptops at
/// target than first-come).
#[test]
fn with_departures_told_the_balancer_beats_first_come_and_all_on_trips() {
    let dir = tempfile::tempdir().unwrap();
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scenarios");
    let toml = std::fs::read_to_string(scenarios.join("coworking-winter-scarce.toml")).unwrap();
    let told = toml.replace(
        "departure_declared_share = 0.75",
        "departure_declared_share = 1.0",
    );
    assert_ne!(told, toml, "the scenario declares a share of departures");
    let scenario = dir.path().join("scarce-told.toml");
    std::fs::write(&scenario, told).unwrap();
    std::fs::copy(
        scenarios.join("coworking-hours.ics"),
        dir.path().join("coworking-hours.ics"),
    )
    .unwrap();
    let opts = SimulateOptions {
        scenario,
        start: Some("2026-01-13T07:00:00+01:00".into()),
        end: Some("2026-01-13T19:00:00+01:00".into()),
        controllers: [
            "builtin:strip-balancer",
            "builtin:all-on",
            "builtin:first-come",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        out: dir.path().join("out"),
        progress: false,
    };
    let (_, runs) = coworking::simulate(&opts).unwrap();
    let (bal, all, first) = (
        metrics(&runs, "strip-balancer"),
        metrics(&runs, "all-on"),
        metrics(&runs, "first-come"),
    );
    assert!(all.trips() > 0, "all-on must trip a breaker: {all:#?}");
    assert_eq!(bal.violation_count(), 0, "{bal:#?}");
    assert_eq!(bal.trips(), 0, "{bal:#?}");
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
