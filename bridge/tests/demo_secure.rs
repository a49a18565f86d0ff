//! `hearth demo --secure`: the server-room demo with TLS, credentials and
//! topic rights everywhere. The twin's sensor node and IR bridge reach the
//! embedded broker only over TLS with their issued credentials, so the
//! thermostat can only regulate the room if that path works end to end.

use hearth::broker::EmbeddedBroker;
use hearth::demo::DemoOptions;
use std::os::unix::fs::PermissionsExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_secure_demo_regulates_the_room_over_tls_with_issued_credentials() {
    crate::common::init_logs();
    let mark = crate::common::log_mark();
    let data = tempfile::tempdir().unwrap();
    let report = hearth::demo::run(DemoOptions {
        secure: Some(0),
        speed: 60.0,
        run_for: Some(30.0),
        mqtt_url: None,
        mqtt_port: EmbeddedBroker::free_port(),
        http_port: Some(0),
        data_dir: data.path().to_path_buf(),
    })
    .await
    .unwrap();
    println!("{report}");
    // The node's telemetry reached the thermostat and its IR commands
    // reached the IR bridge: both over TLS, authenticated.
    assert!(
        report.first_on_s.is_some(),
        "the AC was never switched on: {report}"
    );
    assert!(report.power_transitions >= 1, "{report}");

    let logs = crate::common::logs_since(mark);
    assert!(
        logs.contains("mqtts://127.0.0.1:"),
        "no TLS listener announced:\n{logs}"
    );
    assert!(
        logs.contains("wss://"),
        "the API is not announced as wss://:\n{logs}"
    );
    // Credentials as `hearth certs` makes them: private files, and no
    // password in the log.
    let dir = data.path();
    for f in [
        "tls/ca.key",
        "tls/server.key",
        "mqtt/bridge.password",
        "devices/server-room/password",
        "devices/tasmota_ir/password",
    ] {
        let mode = std::fs::metadata(dir.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
        let secret = std::fs::read_to_string(dir.join(f)).unwrap();
        if f.ends_with("password") {
            assert!(
                !logs.contains(secret.trim()),
                "{f}'s password is in the log"
            );
        }
    }
}
