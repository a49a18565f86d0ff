//! `GET /metrics` against a running bridge with the digital twin, and the
//! Grafana files under `deploy/grafana/` against what the bridge serves.
//!
//! The scrapes are parsed by `openmetrics-parser` (a pest grammar that
//! passes the OpenMetrics conformance cases, with a Prometheus 0.0.4 mode):
//! a strict parser, so a malformed line fails the test instead of being
//! skipped (the regex-based `prometheus-parse` skips lines it does not
//! understand and does not know OpenMetrics' `_total` counters). Python's
//! `prometheus_client` parser would need pip in CI; this needs nothing.

use super::common::{self, history::Ws, state, wait_for};
use hearth::api::auth::tokens;
use hearth::app::Bridge;
use hearth::broker::{BrokerAddress, EmbeddedBroker};
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::entity::EntityStore;
use hearth::recorder::influx::line::Point;
use hearth::shutdown;
use hearth::twin::{ServerRoomTwin, TwinOptions};
use openmetrics_parser::openmetrics::parse_openmetrics;
use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::{
    MetricsExposition, OpenMetricsType, PrometheusType, PrometheusValue, RenderableMetricValue,
    Sample,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Scrape = MetricsExposition<PrometheusType, PrometheusValue>;

/// `GET /metrics`: (status, content type, body).
async fn get_metrics(
    addr: SocketAddr,
    token: Option<&str>,
    accept: Option<&str>,
) -> (u16, String, String) {
    let mut s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
        .await
        .expect("connect within 10 s")
        .unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    let req =
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{auth}{accept}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut resp))
        .await
        .expect("response within 15 s")
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// A scrape in the Prometheus text format 0.0.4, parsed.
async fn scrape(addr: SocketAddr, token: &str) -> Scrape {
    let (status, content_type, body) = get_metrics(addr, Some(token), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    parse_prometheus(&body).unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{body}"))
}

fn labels_of<V: RenderableMetricValue + Clone>(s: &Sample<V>) -> BTreeMap<String, String> {
    s.get_labelset()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The sum of `family`'s samples whose labels include `want` (a
/// histogram's sample count); 0 if the family is missing.
fn value(scrape: &Scrape, family: &str, want: &[(&str, &str)]) -> f64 {
    // A family without series yet (no plugin call so far) is not served.
    let Some(f) = scrape.families.get(family) else {
        return 0.0;
    };
    f.iter_samples()
        .filter(|s| {
            let l = labels_of(s);
            want.iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| match &s.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(g) | PrometheusValue::Unknown(g) => g.as_f64(),
            PrometheusValue::Histogram(h) => h.count.unwrap_or(0) as f64,
            PrometheusValue::Summary(s) => s.count.unwrap_or(0) as f64,
        })
        .sum()
}

/// Every family the bridge must serve with the twin, the recorder, the
/// InfluxDB sink and the embedded broker: (name, type, label names).
const FAMILIES: &[(&str, PrometheusType, &[&str])] = &[
    ("hearth_build_info", PrometheusType::Gauge, &["version"]),
    ("hearth_uptime_seconds", PrometheusType::Gauge, &[]),
    ("hearth_mqtt_connected", PrometheusType::Gauge, &[]),
    (
        "hearth_mqtt_messages_received_total",
        PrometheusType::Counter,
        &["driver"],
    ),
    (
        "hearth_mqtt_messages_published_total",
        PrometheusType::Counter,
        &["driver"],
    ),
    (
        "hearth_store_events_total",
        PrometheusType::Counter,
        &["kind"],
    ),
    ("hearth_entities", PrometheusType::Gauge, &[]),
    (
        "hearth_plugin_call_duration_seconds",
        PrometheusType::Histogram,
        &["plugin", "call"],
    ),
    ("hearth_plugin_up", PrometheusType::Gauge, &["plugin"]),
    (
        "hearth_plugin_fuel_consumed_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_faults_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_restarts_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_swaps_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_service_calls_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_events_total",
        PrometheusType::Counter,
        &["plugin"],
    ),
    (
        "hearth_plugin_memory_bytes",
        PrometheusType::Gauge,
        &["plugin"],
    ),
    ("hearth_recorder_queue_rows", PrometheusType::Gauge, &[]),
    (
        "hearth_recorder_commit_duration_seconds",
        PrometheusType::Histogram,
        &[],
    ),
    (
        "hearth_recorder_commits_total",
        PrometheusType::Counter,
        &[],
    ),
    (
        "hearth_recorder_committed_rows_total",
        PrometheusType::Counter,
        &[],
    ),
    (
        "hearth_recorder_dropped_rows_total",
        PrometheusType::Counter,
        &[],
    ),
    ("hearth_recorder_failing", PrometheusType::Gauge, &[]),
    (
        "hearth_influxdb_buffered_points",
        PrometheusType::Gauge,
        &[],
    ),
    (
        "hearth_influxdb_dropped_points_total",
        PrometheusType::Counter,
        &[],
    ),
    (
        "hearth_influxdb_rejected_points_total",
        PrometheusType::Counter,
        &[],
    ),
    ("hearth_influxdb_failing", PrometheusType::Gauge, &[]),
    ("hearth_websocket_clients", PrometheusType::Gauge, &[]),
    (
        "hearth_websocket_dropped_clients_total",
        PrometheusType::Counter,
        &["reason"],
    ),
    ("hearth_broker_connections", PrometheusType::Gauge, &[]),
    (
        "hearth_broker_connections_accepted_total",
        PrometheusType::Counter,
        &[],
    ),
    (
        "hearth_broker_refused_connections_total",
        PrometheusType::Counter,
        &["reason"],
    ),
    ("hearth_alerts_active", PrometheusType::Gauge, &["severity"]),
];

/// The counters that must move while the twin runs: (family, labels).
const MOVING: &[(&str, &[(&str, &str)])] = &[
    (
        "hearth_mqtt_messages_received_total",
        &[("driver", "esp32_node")],
    ),
    ("hearth_store_events_total", &[("kind", "state_changed")]),
    (
        "hearth_plugin_call_duration_seconds",
        &[("plugin", "thermostat")],
    ),
    ("hearth_recorder_commits_total", &[]),
    ("hearth_recorder_commit_duration_seconds", &[]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_as_the_twin_runs() {
    common::init_logs();
    // The bridge runs its own embedded broker (the broker families come
    // from its front); the twin's clients retry until it listens.
    let port = EmbeddedBroker::free_port();
    let clock = Clock::simulated(60.0);
    let (twin_stop, twin_shutdown) = shutdown::channel();
    let twin = ServerRoomTwin::start(
        clock,
        "127.0.0.1",
        port,
        TwinOptions::default(),
        twin_shutdown,
    )
    .await
    .expect("twin starts");
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        hearth::demo::scenario_config(&BrokerAddress::local(port), &twin.shelly_url(), Some(0))
            .unwrap();
    config.mqtt.url = None;
    config.mqtt.port = port;
    config.data_dir = Some(dir.path().to_path_buf());
    // An InfluxDB that is not there: points stay in the disk buffer.
    config.influxdb = Config::from_toml(
        "[influxdb]\nurl = \"http://127.0.0.1:9\"\norg = \"home\"\nbucket = \"hearth\"\ntoken = \"t\"\n",
        "test",
    )
    .unwrap()
    .influxdb;
    let (_, token) = tokens::create(dir.path(), "tests").unwrap();
    let bridge = Bridge::start(config, clock).await.expect("bridge starts");
    let addr = bridge.http_addr;

    // No token, a wrong token: 401, as the REST API.
    let (status, _, _) = get_metrics(addr, None, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = get_metrics(addr, Some("not-a-token"), None).await;
    assert_eq!(status, 401);

    wait_for("the twin's temperature", Duration::from_secs(30), || {
        state(&bridge, "sensor.server_room_temperature")
    })
    .await;
    let _client = Ws::auth(addr, &token).await;
    let first = scrape(addr, &token).await;
    assert_eq!(value(&first, "hearth_mqtt_connected", &[]), 1.0);
    assert_eq!(value(&first, "hearth_websocket_clients", &[]), 1.0);
    assert_eq!(
        value(&first, "hearth_plugin_up", &[("plugin", "thermostat")]),
        1.0
    );
    // At least the bridge's link and the twin's sensor node (its temperature
    // came through the broker); its Tasmota IR bridge may still be connecting.
    assert!(value(&first, "hearth_broker_connections", &[]) >= 2.0);
    assert!(
        value(
            &first,
            "hearth_mqtt_messages_published_total",
            &[("driver", "discovery")]
        ) > 0.0,
        "discovery published its configs"
    );
    assert!(value(&first, "hearth_influxdb_buffered_points", &[]) > 0.0);

    // Scrape again until every counter moved (the twin reports every 10
    // simulated s: several times a second at 60×).
    let deadline = Instant::now() + Duration::from_secs(60);
    let second = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = scrape(addr, &token).await;
        let stuck: Vec<_> = MOVING
            .iter()
            .filter(|(f, l)| value(&s, f, l) <= value(&first, f, l))
            .map(|(f, l)| format!("{f}{l:?} {}", value(&s, f, l)))
            .collect();
        if stuck.is_empty() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "within 60 s these did not move: {stuck:?}"
        );
    };
    // Every family, typed and labelled (the plugin has been called by now).
    for (name, kind, labels) in FAMILIES {
        let f = second
            .families
            .get(*name)
            .unwrap_or_else(|| panic!("no family {name}"));
        assert_eq!(&f.family_type, kind, "{name}");
        let names: BTreeSet<&str> = f.get_label_names().iter().map(String::as_str).collect();
        assert_eq!(names, labels.iter().copied().collect(), "{name}");
        assert!(!f.help.is_empty(), "{name} has no HELP");
    }
    assert!(
        value(&second, "hearth_uptime_seconds", &[]) > value(&first, "hearth_uptime_seconds", &[])
    );

    // OpenMetrics when asked (Prometheus's Accept header).
    let (status, content_type, body) = get_metrics(
        addr,
        Some(&token),
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    let om = parse_openmetrics(&body).unwrap_or_else(|e| panic!("not OpenMetrics: {e:?}"));
    assert_eq!(
        om.families["hearth_store_events"].family_type,
        OpenMetricsType::Counter
    );
    assert_eq!(
        om.families["hearth_plugin_call_duration_seconds"].family_type,
        OpenMetricsType::Histogram
    );
    assert_eq!(om.families["hearth_uptime_seconds"].unit, "seconds");

    // A client that sends a message over 4 MiB is dropped (1009) and
    // counted; the first client is still connected.
    oversize_message(addr, &token).await;
    let third = scrape(addr, &token).await;
    assert_eq!(
        value(
            &third,
            "hearth_websocket_dropped_clients_total",
            &[("reason", "oversize")]
        ),
        1.0
    );
    assert_eq!(value(&third, "hearth_websocket_clients", &[]), 1.0);

    // The Grafana dashboards ask for what this bridge serves.
    grafana_queries_name_served_metrics(&second);
    let buffer = dir.path().join(hearth::recorder::influx::buffer::FILE_NAME);
    grafana_flux_queries_name_what_the_sink_writes(&buffered_lines(&buffer));

    bridge.stop().await;
    twin_stop.trigger();
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn dashboards() -> Vec<(String, Value)> {
    let dir = repo().join("deploy/grafana/dashboards");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every panel, rows' nested panels included.
fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(p);
        out.extend(p["panels"].as_array().into_iter().flatten());
    }
    out
}

/// The provisioned datasources: uid → type.
fn datasources() -> BTreeMap<String, String> {
    let dir = repo().join("deploy/grafana/provisioning/datasources");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let docs = yaml_rust2::YamlLoader::load_from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            docs[0]["apiVersion"].as_i64(),
            Some(1),
            "{}",
            path.display()
        );
        for ds in docs[0]["datasources"].as_vec().expect("a datasources list") {
            let uid = ds["uid"].as_str().expect("every datasource has a uid");
            let kind = ds["type"].as_str().expect("every datasource has a type");
            assert!(ds["name"].as_str().is_some(), "{uid} has a name");
            assert!(
                out.insert(uid.to_string(), kind.to_string()).is_none(),
                "datasource uid {uid} twice"
            );
        }
    }
    out
}

/// (datasource uid, query) of every target of every dashboard.
fn queries(kind: &str) -> Vec<String> {
    let uids = datasources();
    let mut out = Vec::new();
    for (_, d) in dashboards() {
        for p in panels(&d) {
            for t in p["targets"].as_array().into_iter().flatten() {
                let uid = t["datasource"]["uid"].as_str().unwrap_or_default();
                if uids.get(uid).map(String::as_str) == Some(kind) {
                    let q = t["expr"]
                        .as_str()
                        .or(t["query"].as_str())
                        .unwrap_or_default();
                    out.push(q.to_string());
                }
            }
        }
    }
    out
}

#[test]
fn grafana_dashboards_and_provisioning_are_consistent() {
    let uids = datasources();
    assert_eq!(
        uids.values().cloned().collect::<BTreeSet<_>>(),
        ["influxdb".to_string(), "prometheus".to_string()].into(),
    );
    // The provider loads the dashboards folder.
    let text =
        std::fs::read_to_string(repo().join("deploy/grafana/provisioning/dashboards/hearth.yaml"))
            .unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let providers = docs[0]["providers"].as_vec().expect("a providers list");
    assert!(!providers.is_empty());
    for p in providers {
        assert_eq!(p["type"].as_str(), Some("file"));
        assert!(
            p["options"]["path"]
                .as_str()
                .is_some_and(|s| s.starts_with('/'))
        );
    }

    let all = dashboards();
    let names: Vec<_> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["hearth-influx.json", "hearth-metrics.json"]);
    let mut dashboard_uids = BTreeSet::new();
    for (name, d) in &all {
        assert!(
            d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{name}: schemaVersion"
        );
        let uid = d["uid"].as_str().unwrap_or_else(|| panic!("{name}: uid"));
        assert!(!uid.is_empty() && uid.len() <= 40, "{name}: uid {uid}");
        assert!(
            dashboard_uids.insert(uid.to_string()),
            "{name}: uid {uid} twice"
        );
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let panels = panels(d);
        assert!(panels.len() > 3, "{name}: panels");
        let mut ids = BTreeSet::new();
        for p in &panels {
            let id = p["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: a panel without id: {p}"));
            assert!(ids.insert(id), "{name}: panel id {id} twice");
            let g = &p["gridPos"];
            for k in ["h", "w", "x", "y"] {
                assert!(g[k].as_u64().is_some(), "{name}: panel {id} gridPos.{k}");
            }
            assert!(
                g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
                "{name}: panel {id} is wider than the grid"
            );
            assert!(p["title"].as_str().is_some(), "{name}: panel {id} title");
            if p["type"] == "row" {
                continue;
            }
            let targets = p["targets"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: panel {id} targets"));
            assert!(!targets.is_empty(), "{name}: panel {id} has no targets");
            let mut refs = BTreeSet::new();
            for ds in
                std::iter::once(&p["datasource"]).chain(targets.iter().map(|t| &t["datasource"]))
            {
                let uid = ds["uid"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: panel {id}: datasource uid"));
                let kind = uids.get(uid).unwrap_or_else(|| {
                    panic!("{name}: panel {id}: datasource {uid} is not provisioned")
                });
                assert_eq!(
                    ds["type"].as_str(),
                    Some(kind.as_str()),
                    "{name}: panel {id}: {uid}"
                );
            }
            for t in targets {
                assert!(
                    refs.insert(t["refId"].as_str().unwrap().to_string()),
                    "{name}: panel {id}: refId twice"
                );
                let q = t["expr"]
                    .as_str()
                    .or(t["query"].as_str())
                    .unwrap_or_default();
                assert!(!q.trim().is_empty(), "{name}: panel {id}: empty query");
            }
        }
        for v in d["templating"]["list"].as_array().into_iter().flatten() {
            if let Some(uid) = v["datasource"]["uid"].as_str() {
                assert!(uids.contains_key(uid), "{name}: variable datasource {uid}");
            }
        }
    }
    // PromQL names Hearth's families (checked against a live scrape in
    // metrics_parse_and_move_as_the_twin_runs); Flux reads the sink's bucket.
    assert!(queries("prometheus").iter().all(|q| q.contains("hearth_")));
    for q in queries("influxdb") {
        assert!(q.contains("from(bucket: v.defaultBucket)"), "{q}");
        assert!(q.contains("range(start: v.timeRangeStart"), "{q}");
    }
}

/// `hearth_…` names in a PromQL expression.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("hearth_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// Every metric a PromQL query of the dashboards names is a series the
/// bridge serves (a histogram's `_bucket`, `_sum` and `_count` included).
fn grafana_queries_name_served_metrics(scrape: &Scrape) {
    let mut served = BTreeSet::new();
    for (name, f) in &scrape.families {
        served.insert(name.clone());
        if f.family_type == PrometheusType::Histogram {
            for s in ["_bucket", "_sum", "_count"] {
                served.insert(format!("{name}{s}"));
            }
        }
    }
    let mut used = BTreeSet::new();
    for q in queries("prometheus") {
        used.extend(metric_names(&q));
    }
    assert!(used.len() > 20, "{used:?}");
    let missing: Vec<_> = used.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "dashboards query metrics the bridge does not serve: {missing:?}"
    );
}

/// The lines the InfluxDB sink left in its disk buffer.
fn buffered_lines(path: &Path) -> Vec<String> {
    let db =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = db.prepare("SELECT line FROM points").unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// (measurement, tags, field keys) of one line of line protocol.
fn parse_line(line: &str) -> (String, BTreeMap<String, String>, BTreeSet<String>) {
    // Split on unescaped separators.
    let split = |s: &str, sep: char| -> Vec<String> {
        let (mut parts, mut cur, mut esc, mut quoted) = (Vec::new(), String::new(), false, false);
        for c in s.chars() {
            if esc {
                cur.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                quoted = !quoted;
                cur.push(c);
            } else if c == sep && !quoted {
                parts.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
        }
        parts.push(cur);
        parts
    };
    let sections = split(line, ' ');
    let series = split(&sections[0], ',');
    let tags = series[1..]
        .iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let fields = split(&sections[1], ',')
        .iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
        .collect();
    (series[0].clone(), tags, fields)
}

/// `r.<key> == "<value>"` comparisons in a Flux query.
fn flux_equals(query: &str, key: &str) -> BTreeSet<String> {
    let pat = format!("r.{key} == \"");
    query
        .match_indices(&pat)
        .filter_map(|(i, _)| {
            let rest = &query[i + pat.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// `suffix: "<s>"` of `strings.hasSuffix` in a Flux query.
fn flux_suffixes(query: &str) -> BTreeSet<String> {
    let pat = "suffix: \"";
    query
        .match_indices(pat)
        .filter_map(|(i, _)| {
            let rest = &query[i + pat.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The Flux queries filter on measurements, fields, tags and entity ids
/// the sink writes: the twin's (from the sink's disk buffer) and, for the
/// per-user panels, the usage meters' entities turned into points by the
/// sink's own code (the twin has no `[usage]`).
fn grafana_flux_queries_name_what_the_sink_writes(lines: &[String]) {
    assert!(!lines.is_empty(), "the sink buffered nothing");
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut object_ids: BTreeSet<String> = BTreeSet::new();
    let mut domains: BTreeSet<String> = BTreeSet::new();
    let mut note = |m: String, tags: BTreeMap<String, String>, fields: BTreeSet<String>| {
        written.entry(m).or_default().extend(fields);
        object_ids.extend(tags.get("entity_id").cloned());
        domains.extend(tags.get("domain").cloned());
    };
    for l in lines {
        let (m, t, f) = parse_line(l);
        note(m, t, f);
    }
    let store = EntityStore::new(Clock::real());
    hearth::usage::entities::register(&store, "alice", "Alice", &[]).unwrap();
    for id in ["sensor.alice_energy_today", "sensor.alice_energy_month"] {
        store.set_state(id, "1.25", serde_json::Map::new()).unwrap();
        let s = store.get(id).unwrap_or_else(|| panic!("usage entity {id}"));
        let unit = store.spec(id).and_then(|spec| spec.unit.clone());
        let p = Point::from_state(&s, unit.as_deref()).unwrap();
        let (m, t, f) = parse_line(&p.to_line());
        note(m, t, f);
    }
    for q in queries("influxdb") {
        let measurements = flux_equals(&q, "_measurement");
        assert!(
            !measurements.is_empty(),
            "a query without a measurement: {q}"
        );
        for m in &measurements {
            let fields = written.get(m).unwrap_or_else(|| {
                panic!(
                    "measurement {m} is not written (written: {:?})",
                    written.keys()
                )
            });
            for f in flux_equals(&q, "_field") {
                assert!(fields.contains(&f), "field {f} of {m} is not written");
            }
        }
        for d in flux_equals(&q, "domain") {
            assert!(domains.contains(&d), "domain {d} is not written");
        }
        for suffix in flux_suffixes(&q) {
            assert!(
                object_ids.iter().any(|o| o.ends_with(&suffix)),
                "no entity_id ends with {suffix}: {object_ids:?}"
            );
        }
    }
    // The twin's temperature and power are in the measurements queried.
    for m in ["°C", "W"] {
        assert!(
            queries("influxdb")
                .iter()
                .any(|q| flux_equals(q, "_measurement").contains(m))
        );
        assert!(written.contains_key(m), "the twin wrote no {m}");
    }
}

/// Authenticates a WebSocket client, sends one message over the API's
/// 4 MiB limit and waits for the server's close (1009).
async fn oversize_message(addr: SocketAddr, token: &str) {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(format!("ws://{addr}/api/websocket")),
    )
    .await
    .expect("upgrade within 10 s")
    .unwrap();
    let auth = serde_json::json!({"type": "auth", "access_token": token}).to_string();
    ws.send(Message::text(auth)).await.unwrap();
    let big = format!(
        "{{\"id\": 1, \"type\": \"ping\", \"pad\": \"{}\"}}",
        "x".repeat(4 << 20)
    );
    // The server may close while the frame is still being written.
    let _ = ws.send(Message::text(big)).await;
    let close = tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(m) = ws.next().await {
            match m {
                Ok(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await
    .expect("the server closes within 15 s");
    assert!(matches!(close, Some(1009) | None), "close code {close:?}");
}
