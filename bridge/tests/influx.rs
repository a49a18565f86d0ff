//! The InfluxDB v2 sink against a real line-protocol server:
//! VictoriaMetrics from Debian's package (`/usr/bin/victoria-metrics`,
//! installed by .ci/run), which accepts `/api/v2/write` and gives the points
//! back on `/api/v1/export` (metric `<measurement>_<field>`, tags as
//! labels). Each test runs its own server on a free loopback port and a
//! real bridge with `[influxdb]` pointing at it; state changes are driven
//! through the bridge's entity store.
//!
//! VictoriaMetrics makes new series searchable after a few seconds, so
//! reads poll with a generous deadline; exact counts are checked once the
//! sink's disk buffer is empty (nothing more can be sent) and the server
//! has flushed (`/internal/force_flush`).

use crate::common;

use common::{init_logs, wait_for};
use hearth::app::Bridge;
use hearth::broker::EmbeddedBroker;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::{Component, Device, EntitySpec, EntityStore};
use hearth::feeds::fetch::HttpGet;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const VM_BIN: &str = "/usr/bin/victoria-metrics";
/// Generous: a loaded 2-core CI machine.
const DEADLINE: Duration = Duration::from_secs(90);

/// A VictoriaMetrics server; stopped (SIGTERM, so it persists what it has)
/// when dropped.
struct Vm {
    child: Child,
    port: u16,
}

impl Vm {
    async fn start(port: u16, data: &Path) -> Vm {
        assert!(
            Path::new(VM_BIN).exists(),
            "{VM_BIN} is missing: `apt-get install -y victoria-metrics` (.ci/run does this)"
        );
        // Recent points visible at once, no cached answers.
        let vm = Vm::spawn(
            port,
            data,
            &[
                "-search.latencyOffset=0s",
                "-search.disableCache",
                "-memory.allowedPercent=10",
            ],
        );
        let http = HttpGet::new(Duration::from_secs(5));
        let url = format!("http://127.0.0.1:{port}/health");
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let last = match http.text(&url, "OK").await {
                Ok(t) if t.trim() == "OK" => break,
                Ok(t) => t,
                Err(e) => e.to_string(),
            };
            assert!(
                std::time::Instant::now() < deadline,
                "victoria-metrics on {port} not healthy: {last}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        vm
    }

    /// Starts the server with `extra` flags, without waiting for it.
    fn spawn(port: u16, data: &Path, extra: &[&str]) -> Vm {
        let child = Command::new(VM_BIN)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", data.display()))
            .arg("-loggerLevel=ERROR")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting victoria-metrics");
        Vm { child, port }
    }

    /// Stops the server and waits for it to exit.
    fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Every series matching `selector`, samples in time order.
    async fn export(&self, selector: &str) -> Vec<Series> {
        let http = HttpGet::new(Duration::from_secs(30));
        let base = format!("http://127.0.0.1:{}", self.port);
        http.text(&format!("{base}/internal/force_flush"), "")
            .await
            .expect("force_flush");
        let q = percent_encoding::utf8_percent_encode(selector, percent_encoding::NON_ALPHANUMERIC);
        let text = http
            .text(
                &format!("{base}/api/v1/export?match%5B%5D={q}"),
                "JSON lines",
            )
            .await
            .expect("export");
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("export line is JSON");
                let labels: BTreeMap<String, String> = v["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let values = v["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                let timestamps = v["timestamps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                Series {
                    labels,
                    values,
                    timestamps,
                }
            })
            .collect()
    }

    /// Waits until the series `name{entity_id=…}` has at least `n` samples
    /// and returns it.
    async fn wait_samples(&self, name: &str, object_id: &str, n: usize) -> Series {
        // MetricsQL string literals escape backslashes.
        let name = name.replace('\\', "\\\\");
        let selector = format!("{{__name__=\"{name}\",entity_id=\"{object_id}\"}}");
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let mut series = self.export(&selector).await;
            assert!(series.len() <= 1, "one series expected: {series:?}");
            let got = series.first().map_or(0, |s| s.values.len());
            if got >= n {
                return series.remove(0);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{selector}: {got} samples after {DEADLINE:?}, expected {n}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.terminate();
    }
}

#[derive(Debug)]
struct Series {
    labels: BTreeMap<String, String>,
    values: Vec<f64>,
    timestamps: Vec<i64>,
}

/// A bridge config with `[influxdb]` at `vm_port` and `extra` keys.
fn config(data: &Path, vm_port: u16, extra: &str) -> Config {
    config_at(data, &format!("http://127.0.0.1:{vm_port}"), extra)
}

/// A bridge config with `[influxdb]` at `url` and `extra` keys.
fn config_at(data: &Path, url: &str, extra: &str) -> Config {
    let text = format!(
        r#"
data_dir = "{data}"
[mqtt]
port = {mqtt}
[http]
port = 0
[esp32]
enabled = false
[influxdb]
url = "{url}"
org = "home"
bucket = "hearth"
token = "test-token"
retry_max_ms = 200
{extra}
"#,
        data = data.display(),
        mqtt = EmbeddedBroker::free_port(),
    );
    Config::from_toml(&text, "influx test config").expect("the test config is valid")
}

async fn start_bridge(config: Config) -> Bridge {
    init_logs();
    Bridge::start(config, Clock::real())
        .await
        .expect("bridge starts")
}

/// A test device with one entity per `(key, component, unit)`.
fn add_entities(store: &EntityStore, entities: &[(&str, Component, Option<&str>)]) {
    let device = Device {
        id: "influx-test".into(),
        name: "Influx test".into(),
        manufacturer: "Hearth".into(),
        model: "test".into(),
        sw_version: None,
        via_device: None,
    };
    store.upsert_device("test", device).unwrap();
    for (key, component, unit) in entities {
        let mut spec = EntitySpec::new("influx-test", key, *component);
        if let Some(u) = unit {
            spec = spec.measured(u, "measurement");
        }
        store.upsert_entity(spec).unwrap();
    }
}

/// Lines for `object_id` in the sink's disk buffer, read from the file
/// (WAL lets a second connection read while the bridge writes).
fn buffered_lines(data: &Path, object_id: &str) -> usize {
    let path: PathBuf = data.join("influx-buffer.db");
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the buffer read-only");
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM points WHERE line LIKE ?1",
            [format!("%entity_id={object_id} %")],
            |r| r.get(0),
        )
        .expect("count buffered lines");
    n as usize
}

fn problem(store: &EntityStore) -> (String, Map<String, Value>) {
    let s = store
        .get("binary_sensor.bridge_influxdb_problem")
        .expect("the problem entity exists");
    (s.state, s.attributes)
}

/// Values in time order must be exactly `expected` (once each, in order),
/// with strictly increasing timestamps.
fn assert_exactly(series: &Series, expected: &[f64]) {
    assert_eq!(
        series.values.len(),
        expected.len(),
        "sample count (a duplicate or a loss)"
    );
    assert_eq!(series.values, expected, "values in time order");
    assert!(
        series.timestamps.windows(2).all(|w| w[0] < w[1]),
        "timestamps strictly increase"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_come_back_with_ha_names_and_tags() {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let vm = Vm::start(port, &dir.path().join("vm")).await;
    let data = dir.path().join("bridge");
    let bridge = start_bridge(config(&data, port, "flush_interval_ms = 50")).await;
    let store = bridge.store.clone();
    add_entities(
        &store,
        &[
            ("power", Component::Sensor, Some("W")),
            ("door", Component::BinarySensor, None),
            ("odd", Component::Sensor, Some("a b,c\\d")),
        ],
    );
    for v in ["1.5", "2.5", "unavailable", "-3"] {
        store
            .set_state("sensor.influx_test_power", v, Map::new())
            .unwrap();
        // Distinct ms, so the test does not rely on the same-ms shift.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    for v in ["on", "off"] {
        store
            .set_state("binary_sensor.influx_test_door", v, Map::new())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    store
        .set_state("sensor.influx_test_odd", "7", Map::new())
        .unwrap();

    // Measurement = unit, field `value`; `unavailable` is not written.
    let power = vm.wait_samples("W_value", "influx_test_power", 3).await;
    assert_eq!(power.labels["domain"], "sensor");
    assert_exactly(&power, &[1.5, 2.5, -3.0]);
    // No unit: measurement = entity id; on/off as 1/0 (plus a `state` field).
    let door = vm
        .wait_samples(
            "binary_sensor.influx_test_door_value",
            "influx_test_door",
            2,
        )
        .await;
    assert_eq!(door.labels["domain"], "binary_sensor");
    assert_exactly(&door, &[1.0, 0.0]);
    // Escaped space, comma and backslash survive a real parser.
    let odd = vm
        .wait_samples("a b,c\\d_value", "influx_test_odd", 1)
        .await;
    assert_exactly(&odd, &[7.0]);
    // The bridge's own entities go too; the problem entity does not.
    vm.wait_samples(
        "binary_sensor.bridge_connection_state_value",
        "bridge_connection_state",
        1,
    )
    .await;
    assert!(
        vm.export("{entity_id=\"bridge_influxdb_problem\"}")
            .await
            .is_empty()
    );
    let (state, attrs) = problem(&store);
    assert_eq!(state, "off", "{attrs:?}");
    assert!(attrs["last_success"].is_string(), "{attrs:?}");
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_10000_points_is_delivered_once_and_in_order() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().unwrap();
    // Reserved, but nothing listens yet: the server is down.
    let port = EmbeddedBroker::free_port();
    let data = dir.path().join("bridge");
    let bridge = start_bridge(config(&data, port, "flush_interval_ms = 100")).await;
    let store = bridge.store.clone();
    add_entities(&store, &[("outage", Component::Sensor, Some("kWh"))]);
    for i in 0..N {
        store
            .set_state("sensor.influx_test_outage", i.to_string(), Map::new())
            .unwrap();
    }
    // All on disk, none sent, and the problem says why.
    wait_for("10 000 points in the disk buffer", DEADLINE, || {
        (buffered_lines(&data, "influx_test_outage") == N).then_some(())
    })
    .await;
    let attrs = wait_for("the problem entity on with the backlog", DEADLINE, || {
        let (state, attrs) = problem(&store);
        let buffered = attrs["buffered_points"].as_u64().unwrap_or(0);
        (state == "on" && buffered >= N as u64).then_some(attrs)
    })
    .await;
    let err = attrs["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("request failed"), "{attrs:?}");
    assert_eq!(attrs["dropped_points"], 0, "{attrs:?}");

    // The server comes back: everything goes, the buffer empties.
    let vm = Vm::start(port, &dir.path().join("vm")).await;
    wait_for("the disk buffer emptied", DEADLINE, || {
        (buffered_lines(&data, "influx_test_outage") == 0).then_some(())
    })
    .await;
    let series = vm.wait_samples("kWh_value", "influx_test_outage", N).await;
    let expected: Vec<f64> = (0..N).map(|i| i as f64).collect();
    assert_exactly(&series, &expected);
    wait_for("the problem cleared", DEADLINE, || {
        (problem(&store).0 == "off").then_some(())
    })
    .await;
    // Nothing more can be sent: a last read still has each point once.
    let again = vm.wait_samples("kWh_value", "influx_test_outage", N).await;
    assert_exactly(&again, &expected);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn points_buffered_at_a_graceful_restart_are_delivered_once_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let vm_data = dir.path().join("vm");
    let data = dir.path().join("bridge");
    let vm = Vm::start(port, &vm_data).await;
    let bridge = start_bridge(config(&data, port, "flush_interval_ms = 50")).await;
    let store = bridge.store.clone();
    add_entities(&store, &[("restart", Component::Sensor, Some("V"))]);
    let set = |store: &EntityStore, i: usize| {
        store
            .set_state("sensor.influx_test_restart", i.to_string(), Map::new())
            .unwrap();
    };
    for i in 0..50 {
        set(&store, i);
    }
    vm.wait_samples("V_value", "influx_test_restart", 50).await;

    // Server down; 50 more wait on disk when the bridge stops.
    vm.stop();
    for i in 50..100 {
        set(&store, i);
    }
    wait_for("the failed send noticed", DEADLINE, || {
        (problem(&store).0 == "on").then_some(())
    })
    .await;
    bridge.stop().await;
    assert_eq!(buffered_lines(&data, "influx_test_restart"), 50);

    // Server and bridge back: the 50 go, once.
    let vm = Vm::start(port, &vm_data).await;
    let bridge = start_bridge(config(&data, port, "flush_interval_ms = 50")).await;
    wait_for("the disk buffer emptied", DEADLINE, || {
        (buffered_lines(&data, "influx_test_restart") == 0).then_some(())
    })
    .await;
    let series = vm.wait_samples("V_value", "influx_test_restart", 100).await;
    let expected: Vec<f64> = (0..100).map(|i| i as f64).collect();
    assert_exactly(&series, &expected);
    bridge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_keeps_points_buffered_until_the_server_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = EmbeddedBroker::free_port();
    let vm_data = dir.path().join("vm");
    // With basic auth on, the bridge's `Token …` header is refused: 401.
    let locked = Vm::spawn(
        port,
        &vm_data,
        &["-httpAuth.username=admin", "-httpAuth.password=secret"],
    );
    let data = dir.path().join("bridge");
    let bridge = start_bridge(config(&data, port, "flush_interval_ms = 50")).await;
    let store = bridge.store.clone();
    add_entities(&store, &[("auth", Component::Sensor, Some("A"))]);
    for i in 0..20 {
        store
            .set_state("sensor.influx_test_auth", i.to_string(), Map::new())
            .unwrap();
    }
    // The 401 may first come from an earlier batch (the bridge's own
    // entities) while the 20 points are still on their way to the disk
    // buffer: wait for both.
    let attrs = wait_for("the 401 shown and the 20 points buffered", DEADLINE, || {
        let (state, attrs) = problem(&store);
        let err = attrs["last_error"].as_str().unwrap_or_default().to_string();
        (state == "on" && err.contains("401") && buffered_lines(&data, "influx_test_auth") == 20)
            .then_some(attrs)
    })
    .await;
    assert!(
        attrs["last_error"].as_str().unwrap().contains("token"),
        "{attrs:?}"
    );
    // The server's auth is fixed (here: turned off): all 20 arrive.
    locked.stop();
    let vm = Vm::start(port, &vm_data).await;
    wait_for("the disk buffer emptied", DEADLINE, || {
        (buffered_lines(&data, "influx_test_auth") == 0).then_some(())
    })
    .await;
    let series = vm.wait_samples("A_value", "influx_test_auth", 20).await;
    let expected: Vec<f64> = (0..20).map(|i| i as f64).collect();
    assert_exactly(&series, &expected);
    bridge.stop().await;
}

/// https with a private CA: without `ca_file` the server's certificate is
/// refused (named on the problem entity) and the points wait on disk; with
/// it they are delivered, once each and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_needs_ca_file_and_loses_nothing_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let pki = common::pki::make_pki(dir.path());
    let port = EmbeddedBroker::free_port();
    let vm_data = dir.path().join("vm");
    let (cert, key) = (
        format!("-tlsCertFile={}", pki.cert_pem.display()),
        format!("-tlsKeyFile={}", pki.key_pem.display()),
    );
    let tls = Vm::spawn(port, &vm_data, &["-tls", &cert, &key]);
    let url = format!("https://localhost:{port}");
    let data = dir.path().join("bridge");
    let bridge = start_bridge(config_at(&data, &url, "flush_interval_ms = 50")).await;
    let store = bridge.store.clone();
    add_entities(&store, &[("tls", Component::Sensor, Some("A"))]);
    for i in 0..20 {
        store
            .set_state("sensor.influx_test_tls", i.to_string(), Map::new())
            .unwrap();
    }
    let attrs = wait_for(
        "the refused certificate shown, 20 points buffered",
        DEADLINE,
        || {
            let (state, attrs) = problem(&store);
            let err = attrs["last_error"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase();
            (state == "on"
                && err.contains("certificate")
                && buffered_lines(&data, "influx_test_tls") == 20)
                .then_some(attrs)
        },
    )
    .await;
    assert!(
        attrs["last_error"].as_str().unwrap().contains(&url),
        "the error names the server: {attrs:?}"
    );
    bridge.stop().await;

    // With the CA trusted: the buffer drains.
    let ca = format!(
        "ca_file = \"{}\"\nflush_interval_ms = 50",
        pki.ca_pem.display()
    );
    let bridge = start_bridge(config_at(&data, &url, &ca)).await;
    wait_for("the disk buffer emptied over https", DEADLINE, || {
        (buffered_lines(&data, "influx_test_tls") == 0).then_some(())
    })
    .await;
    let (state, attrs) = problem(&bridge.store);
    assert_eq!(state, "off", "{attrs:?}");
    bridge.stop().await;
    // Read back over plain http (the test's reader speaks no TLS).
    tls.stop();
    let vm = Vm::start(port, &vm_data).await;
    let series = vm.wait_samples("A_value", "influx_test_tls", 20).await;
    let expected: Vec<f64> = (0..20).map(|i| i as f64).collect();
    assert_exactly(&series, &expected);
}

#[tokio::test]
async fn bad_influxdb_configs_are_named() {
    let base = "[influxdb]\nurl = \"http://127.0.0.1:8086\"\norg = \"o\"\nbucket = \"b\"\n";
    for (text, want) in [
        (base.to_string(), "needs token or token_file"),
        (
            format!("{base}token = \"t\"\nflush_interval_ms = 0\n"),
            "[influxdb] flush_interval_ms = 0: expected 10 to 3600000 ms",
        ),
        (
            "[influxdb]\nurl = \"http://h/v2\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n"
                .to_string(),
            "a path prefix is not supported",
        ),
        (
            format!("{base}token = \"t\"\nbuffer_max_points = 100\n"),
            "buffer_max_points = 100: expected 5000 to 100000000 lines",
        ),
        (
            format!("{base}token = \"t\"\ntypo = 1\n"),
            "unknown field `typo`",
        ),
    ] {
        let e = Config::from_toml(&text, "bridge.toml").unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("bridge.toml") && e.contains(want),
            "{text}\n→ {e}\nwanted {want}"
        );
    }
    // A token file that is not there stops the bridge from starting,
    // naming the file.
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-token");
    let mut c = config(dir.path(), EmbeddedBroker::free_port(), "");
    c.influxdb = Some(
        toml::from_str(&format!(
            "url = \"http://127.0.0.1:1\"\norg = \"o\"\nbucket = \"b\"\ntoken_file = \"{}\"\n",
            missing.display()
        ))
        .unwrap(),
    );
    init_logs();
    let e = Bridge::start(c, Clock::real())
        .await
        .err()
        .expect("start fails");
    let e = format!("{e:#}");
    assert!(e.contains("token_file") && e.contains("no-token"), "{e}");
    // So does a ca_file that holds no certificate.
    let not_pem = dir.path().join("ca.txt");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let mut c = config(dir.path(), EmbeddedBroker::free_port(), "");
    c.influxdb = Some(
        toml::from_str(&format!(
            "url = \"https://127.0.0.1:1\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\nca_file = \"{}\"\n",
            not_pem.display()
        ))
        .unwrap(),
    );
    let e = Bridge::start(c, Clock::real())
        .await
        .err()
        .expect("start fails");
    let e = format!("{e:#}");
    assert!(
        e.contains("ca_file") && e.contains("ca.txt") && e.contains("PEM"),
        "{e}"
    );
}
