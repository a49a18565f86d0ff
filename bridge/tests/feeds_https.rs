//! The tariff (Tempo, api-couleur-tempo.fr shape) and weather (Open-Meteo)
//! feeds over https: a TLS server on 127.0.0.1 whose certificate a test CA
//! signed serves the recorded payloads of `tests/data/feeds/`. With the CA
//! as `ca_file` the entities fill; without it both feeds' problem entities
//! turn on and name the certificate error, and no request reaches the
//! server. A bad `ca_file` is a config error naming the key. No internet.

use crate::common;

use common::{BrokerKind, TestBroker, wait_for};
use hearth::app::Bridge;
use hearth::clock::Clock;
use hearth::config::Config;
use hearth::feeds::{tariff_driver, weather_driver};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TODAY: &str = include_str!("data/feeds/couleur_tempo_today.json");
const PERIOD: &str = include_str!("data/feeds/couleur_tempo_period_2023-2024.json");
const FORECAST: &str = include_str!("data/feeds/open_meteo_forecast_48h.json");
const WAIT: Duration = Duration::from_secs(15);
/// Noon in Paris on the recorded `today` (2024-01-15).
const NOW: &str = "2024-01-15T11:00:00Z";

/// The recorded day `date` of the 2023-2024 period list, as
/// `/api/jourTempo/<…>` answers one day.
fn recorded_day(date: &str) -> String {
    let days: Vec<Value> = serde_json::from_str(PERIOD).unwrap();
    days.into_iter()
        .find(|d| d["dateJour"] == date)
        .unwrap_or_else(|| panic!("{date} in the recorded period"))
        .to_string()
}

/// An https server answering the feeds' paths with the recorded payloads,
/// counting the requests that got through TLS.
#[derive(Clone)]
struct FeedServer {
    base: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl FeedServer {
    async fn start(tls: tokio_rustls::TlsAcceptor) -> FeedServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = FeedServer {
            base: format!("https://{}", listener.local_addr().unwrap()),
            hits: Arc::new(Mutex::new(Vec::new())),
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (s, tls) = (s.clone(), tls.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(conn)) = tokio::time::timeout(WAIT, tls.accept(tcp)).await {
                        s.serve(conn).await;
                    }
                });
            }
        });
        server
    }

    async fn serve<C: AsyncReadExt + AsyncWriteExt + Unpin>(&self, mut conn: C) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(WAIT, conn.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head);
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        self.hits.lock().unwrap().push(path.clone());
        let (status, body) = match path.split('?').next().unwrap_or("") {
            "/api/jourTempo/today" | "/api/jourTempo/2024-01-15" => (200, TODAY.to_string()),
            "/api/jourTempo/tomorrow" => (200, recorded_day("2024-01-16")),
            "/v1/forecast" => (200, FORECAST.to_string()),
            _ => (404, "{}".to_string()),
        };
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(reply.as_bytes()).await;
        let _ = conn.shutdown().await;
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

/// A TLS acceptor for 127.0.0.1 signed by a fresh test CA, and the CA's
/// PEM file.
fn tls_acceptor(dir: &Path) -> (tokio_rustls::TlsAcceptor, PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = common::pki::make_pki(dir);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert_pem)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.key_pem).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        pki.ca_pem,
    )
}

/// `[tariff]` (tempo from `<base>/api`) and `[weather]` (`<base>/v1/forecast`),
/// both with `ca_line` (a `ca_file = …` line, or nothing).
fn feeds_toml(base: &str, ca_line: &str) -> String {
    format!(
        "[tariff]\nkind = \"tempo\"\nurl = \"{base}/api\"\nhttp_timeout_s = 5\n{ca_line}\n\
         [weather]\nlatitude = 48.86\nlongitude = 2.34\nforecast_days = 2\n\
         url = \"{base}/v1/forecast\"\nhttp_timeout_s = 5\n{ca_line}\n"
    )
}

struct Setup {
    bridge: Option<Bridge>,
    _broker: TestBroker,
    _data: tempfile::TempDir,
}

impl Setup {
    async fn start(toml: &str) -> Setup {
        common::init_logs();
        let broker = common::broker(BrokerKind::Embedded);
        let start = NOW.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let (clock, _hand) = Clock::manual(start);
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::from_toml(toml, "feeds.toml").expect("the test config is valid");
        config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
        config.http.port = 0;
        config.esp32.enabled = false;
        config.data_dir = Some(data.path().to_path_buf());
        let bridge = Bridge::start(config, clock).await.expect("bridge starts");
        Setup {
            bridge: Some(bridge),
            _broker: broker,
            _data: data,
        }
    }

    fn state(&self, entity: &str) -> Option<hearth::entity::State> {
        self.bridge.as_ref().unwrap().store.get(entity)
    }

    async fn wait_state(&self, entity: &str, want: &str) -> hearth::entity::State {
        wait_for(&format!("{entity} = {want}"), WAIT, || {
            self.state(entity).filter(|s| s.state == want)
        })
        .await
    }

    async fn stop(mut self) {
        if let Some(b) = self.bridge.take() {
            b.stop().await;
        }
    }
}

/// The recorded forecast's temperature at `NOW` (°C).
fn recorded_temperature_now() -> f64 {
    let f: Value = serde_json::from_str(FORECAST).unwrap();
    let times = f["hourly"]["time"].as_array().unwrap();
    let i = times
        .iter()
        .position(|t| t == "2024-01-15T11:00")
        .expect("11:00 in the recorded forecast");
    f["hourly"]["temperature_2m"][i].as_f64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_private_ca_both_feeds_fill_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca) = tls_acceptor(dir.path());
    let server = FeedServer::start(acceptor).await;
    let ca_line = format!("ca_file = \"{}\"", ca.display());
    let s = Setup::start(&feeds_toml(&server.base, &ca_line)).await;
    // 2024-01-15 white, 2024-01-16 red in the recorded payloads.
    s.wait_state(tariff_driver::TODAY_ENTITY, "white").await;
    s.wait_state(tariff_driver::TOMORROW_ENTITY, "red").await;
    s.wait_state(tariff_driver::PROBLEM_ENTITY, "off").await;
    s.wait_state(weather_driver::PROBLEM_ENTITY, "off").await;
    let want = recorded_temperature_now();
    let t = wait_for("the outdoor temperature", WAIT, || {
        s.state(weather_driver::TEMPERATURE_ENTITY)?.number()
    })
    .await;
    assert!((t - want).abs() < 0.05, "{t} °C, recorded {want} °C");
    let hits = server.hits();
    for path in [
        "/api/jourTempo/today",
        "/api/jourTempo/tomorrow",
        "/v1/forecast?",
    ] {
        assert!(
            hits.iter().any(|h| h.starts_with(path)),
            "{path} in {hits:?}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_problem_entities_name_the_certificate_error() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, _ca) = tls_acceptor(dir.path());
    let server = FeedServer::start(acceptor).await;
    let s = Setup::start(&feeds_toml(&server.base, "")).await;
    for (entity, url) in [
        (
            tariff_driver::PROBLEM_ENTITY,
            format!("{}/api/jourTempo/", server.base),
        ),
        (
            weather_driver::PROBLEM_ENTITY,
            format!("{}/v1/forecast", server.base),
        ),
    ] {
        let problem = s.wait_state(entity, "on").await;
        let error = problem.attributes["error"].as_str().unwrap_or_default();
        let authority = server.base.trim_start_matches("https://");
        for part in [
            url.as_str(),
            &format!("TLS with {authority}"),
            "invalid peer certificate: UnknownIssuer",
            "`ca_file`",
        ] {
            assert!(error.contains(part), "{entity}: `{part}` in `{error}`");
        }
    }
    for entity in [tariff_driver::TODAY_ENTITY, tariff_driver::TOMORROW_ENTITY] {
        let st = s.state(entity).map(|s| s.state);
        assert!(
            st.as_deref() != Some("white") && st.as_deref() != Some("red"),
            "{entity}: no colour without TLS: {st:?}"
        );
    }
    assert!(
        s.state(weather_driver::TEMPERATURE_ENTITY)
            .and_then(|st| st.number())
            .is_none()
    );
    assert_eq!(
        server.hits(),
        Vec::<String>::new(),
        "no request got through"
    );
    s.stop().await;
}

#[test]
fn a_bad_ca_file_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let base = "https://127.0.0.1:1";
    for (section, file, want) in [
        ("[tariff]", &missing, "[tariff] ca_file"),
        ("[tariff]", &not_pem, "expected PEM certificates"),
        ("[weather]", &missing, "[weather] ca_file"),
        ("[weather]", &not_pem, "[weather] ca_file"),
    ] {
        let bad = format!("ca_file = \"{}\"", file.display());
        let text = feeds_toml(base, "").replacen(
            &format!("{section}\n"),
            &format!("{section}\n{bad}\n"),
            1,
        );
        let e = format!("{:#}", Config::from_toml(&text, "c.toml").unwrap_err());
        assert!(
            e.contains(want) && e.contains(&file.display().to_string()),
            "{section} {}: {e}",
            file.display()
        );
    }
    // `tou` takes no URL, so no CA either.
    let e = Config::from_toml(
        "[tariff]\nkind = \"tou\"\nca_file = \"x.pem\"\ntimezone = \"Europe/Paris\"\n\
         windows = [{start = \"00:00\", price = 0.2}]\n",
        "c.toml",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("`ca_file` only applies"), "{e:#}");
}
