//! `hearth demo --scenario coworking`, end to end: the coworking twin (two
//! Tasmota strips with breakers under one circuit, HASS.Agent batteries,
//! seat selects over MQTT), the Tempo feed twin, and the bridge with
//! `examples/coworking.toml`: the strip balancer switching the relays, the
//! usage module billing each user. The busy morning of the winter day.

use hearth::broker::EmbeddedBroker;
use hearth::demo::DemoOptions;

/// 2026-01-13 07:55 Paris: the space opens at 08:00, everyone arrives
/// within the hour, the heater runs 08:00–09:00.
const MORNING: i64 = 1_768_287_300_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_balancer_charges_the_morning_laptops_without_a_trip() {
    let data = tempfile::tempdir().unwrap();
    let report = hearth::demo::coworking::run_from(
        DemoOptions {
            secure: None,
            // 240×: a wall stall of 100 ms on a loaded CI machine is 24
            // simulated seconds of a meter not seen, not minutes.
            speed: 240.0,
            run_for: Some(35.0),
            mqtt_url: None,
            mqtt_port: EmbeddedBroker::free_port(),
            http_port: Some(0),
            data_dir: data.path().to_path_buf(),
        },
        Some(MORNING),
    )
    .await
    .unwrap();
    println!("{report}");
    // The clock starts at 07:55; start-up (the bridge, the plugin from
    // its cache) takes simulated minutes at this speed.
    assert!(
        report.from.as_str() >= "07:55" && report.from.as_str() < "08:30",
        "{report}"
    );
    assert!(report.simulated_h > 1.0, "{report}");
    assert!(report.arrived >= 10, "{report}");
    // Laptops charged through the relays, and the bridge billed it.
    assert!(report.energy_kwh > 0.0, "{report}");
    assert!(report.batteries_rose >= 1, "{report}");
    assert!(report.user_kwh.iter().any(|(_, k)| *k > 0.0), "{report}");
    // The balancer switched outlets, and kept every breaker closed.
    assert!(report.relay_switches > 0, "{report}");
    assert!(report.trips.is_empty(), "{report}");
}
