//! `hearth demo --scenario house`, end to end: the house twin (ESP32 valve
//! node over MQTT), the feed twin (Tempo and Open-Meteo over HTTP), the
//! bridge with `examples/house.toml` and the MPC plugin driving the valve.

use hearth::broker::EmbeddedBroker;
use hearth::demo::DemoOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mpc_heats_the_demo_house_through_the_real_protocols() {
    let data = tempfile::tempdir().unwrap();
    let report = hearth::demo::house::run(DemoOptions {
        secure: None,
        speed: 600.0,
        run_for: Some(40.0),
        mqtt_url: None,
        mqtt_port: EmbeddedBroker::free_port(),
        http_port: Some(0),
        data_dir: data.path().to_path_buf(),
    })
    .await
    .unwrap();
    println!("{report}");
    // Start-up (compiling the MPC in a debug build) eats some of the 40 s.
    assert!(report.simulated_h > 3.0, "{report}");
    // The MPC itself, not its fallback, drove the valve nearly throughout
    // (it has a commissioning model and live forecasts from the feeds).
    assert!(report.mpc_share > 0.8, "{report}");
    assert!(report.energy_kwh > 1.0 && report.cost_eur > 0.0, "{report}");
    // Comfort floor 19 °C, planned with a 0.3 K margin; the live node has
    // sensor noise and a valve with a travel time.
    assert!(report.min_c > 18.7 && report.max_c < 28.5, "{report}");
}
