//! Opening hours from an iCalendar feed end to end: a real bridge fetching
//! the Google-shaped fixture (`tests/fixtures/calendar/`) from an HTTP
//! server on 127.0.0.1, on a manual clock, with the binary_sensor in the
//! store, in Home Assistant's discovery and on its MQTT state topic. No
//! internet.

use crate::common;

use common::{BrokerKind, Observer, TestBroker, log_mark, logs_since, wait_for};
use hearth::app::Bridge;
use hearth::clock::{Clock, ManualTime, iso8601};
use hearth::config::Config;
use hearth::feeds::calendar::CalendarConfig;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const OPENING: &str = include_str!("fixtures/calendar/opening-hours.ics");
const WAIT: Duration = Duration::from_secs(15);
const ENTITY: &str = "binary_sensor.coworking_open";

/// What the test server answers: a status and a body, and how many GETs
/// it has served.
#[derive(Clone)]
struct IcsServer {
    answer: Arc<Mutex<(u16, String)>>,
    hits: Arc<Mutex<usize>>,
    url: String,
}

impl IcsServer {
    async fn start(body: &str) -> IcsServer {
        IcsServer::start_with(body, None).await
    }

    /// The URL as Hearth shows it: scheme and host, the secret path cut.
    fn shown(&self) -> String {
        let cut = self.url.find("/calendar/").unwrap();
        format!("{}/…", &self.url[..cut])
    }

    /// With `tls`, serves https with that server certificate.
    async fn start_with(body: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> IcsServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "{}://{}/calendar/ical/coworking/private-x/basic.ics",
            if tls.is_some() { "https" } else { "http" },
            listener.local_addr().unwrap()
        );
        let server = IcsServer {
            answer: Arc::new(Mutex::new((200, body.to_string()))),
            hits: Arc::new(Mutex::new(0)),
            url,
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s = s.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => s.serve(tcp).await,
                        Some(acceptor) => {
                            if let Ok(Ok(conn)) =
                                tokio::time::timeout(WAIT, acceptor.accept(tcp)).await
                            {
                                s.serve(conn).await
                            }
                        }
                    }
                });
            }
        });
        server
    }

    /// Answers one GET on `conn` with the current status and body.
    async fn serve<C: AsyncReadExt + AsyncWriteExt + Unpin>(&self, mut conn: C) {
        // Read the request head (a GET has no body).
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(WAIT, conn.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
                _ => return,
            }
        }
        *self.hits.lock().unwrap() += 1;
        let (status, body) = self.answer.lock().unwrap().clone();
        let reply = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: text/calendar; charset=utf-8\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = conn.write_all(reply.as_bytes()).await;
        let _ = conn.shutdown().await;
    }

    fn set(&self, status: u16, body: &str) {
        *self.answer.lock().unwrap() = (status, body.to_string());
    }

    fn hits(&self) -> usize {
        *self.hits.lock().unwrap()
    }
}

struct Setup {
    bridge: Option<Bridge>,
    hand: ManualTime,
    broker: TestBroker,
    _data: tempfile::TempDir,
}

impl Setup {
    async fn start(start: &str, calendar: CalendarConfig) -> Setup {
        common::init_logs();
        let broker = common::broker(BrokerKind::Embedded);
        let (clock, hand) = Clock::manual(ms(start));
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.addr.port));
        config.http.port = 0;
        config.esp32.enabled = false;
        config.data_dir = Some(data.path().to_path_buf());
        config.calendar.push(calendar);
        config.validate().expect("the test config is valid");
        let bridge = Bridge::start(config, clock).await.expect("bridge starts");
        Setup {
            bridge: Some(bridge),
            hand,
            broker,
            _data: data,
        }
    }

    fn state(&self) -> Option<hearth::entity::State> {
        self.bridge.as_ref().unwrap().store.get(ENTITY)
    }

    async fn stop(mut self) {
        if let Some(b) = self.bridge.take() {
            b.stop().await;
        }
    }
}

fn ms(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

fn calendar(text: &str) -> CalendarConfig {
    let c: CalendarConfig = toml::from_str(text).unwrap();
    c.validate().unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_hours_reach_home_assistant_and_flip_on_the_clock() {
    let server = IcsServer::start(OPENING).await;
    // Monday 2026-01-05 07:59 Paris (CET): a minute before opening.
    let s = Setup::start(
        "2026-01-05T06:59:00Z",
        calendar(&format!(
            "id = \"coworking\"\nname = \"Coworking\"\nurl = \"{}\"\nmatch = \"open\"",
            server.url
        )),
    )
    .await;
    let ha = Observer::connect(&s.broker.addr, "homeassistant/#").await;
    let wire = Observer::connect(&s.broker.addr, "hearth/coworking/#").await;

    let closed = wait_for("closed before opening", WAIT, || {
        s.state().filter(|st| st.state == "off")
    })
    .await;
    assert_eq!(
        closed.attributes["next_change"],
        iso8601(ms("2026-01-05T07:00:00Z"))
    );
    assert_eq!(closed.attributes["event"], Value::Null);
    // Scheme and host only: the secret path stays out of HA's attributes.
    assert_eq!(closed.attributes["source"], server.shown().as_str());
    assert_eq!(
        closed.attributes["last_fetch"],
        iso8601(ms("2026-01-05T06:59:00Z"))
    );
    assert_eq!(closed.attributes["last_error"], Value::Null);

    let config: Value = wait_for("calendar discovery config", WAIT, || {
        let raw = ha
            .current()
            .get("homeassistant/device/coworking/config")?
            .clone();
        serde_json::from_slice::<Value>(&raw).ok()
    })
    .await;
    assert_eq!(config["dev"]["name"], "Coworking");
    assert_eq!(
        config["cmps"]["open"]["default_entity_id"], ENTITY,
        "{config}"
    );
    assert_eq!(config["cmps"]["open"]["p"], "binary_sensor", "{config}");
    wait_for("OFF on MQTT", WAIT, || {
        (wire.payloads_on("hearth/coworking/open/state").last()? == "OFF").then_some(())
    })
    .await;

    // The clock reaches 08:00 Paris: open, without a new fetch.
    let fetches = server.hits();
    s.hand.set(ms("2026-01-05T07:00:00Z"));
    let open = wait_for("open at 08:00 Paris", WAIT, || {
        s.state().filter(|st| st.state == "on")
    })
    .await;
    assert_eq!(open.last_changed, ms("2026-01-05T07:00:00Z"));
    assert_eq!(open.attributes["event"], "Open");
    assert_eq!(
        open.attributes["next_change"],
        iso8601(ms("2026-01-05T18:00:00Z"))
    );
    assert_eq!(
        server.hits(),
        fetches,
        "flipped on the clock, not by a fetch"
    );
    wait_for("ON on MQTT", WAIT, || {
        (wire.payloads_on("hearth/coworking/open/state").last()? == "ON").then_some(())
    })
    .await;

    // 19:00 Paris: closed until Tuesday 08:00.
    s.hand.set(ms("2026-01-05T18:00:00Z"));
    let closed = wait_for("closed at 19:00 Paris", WAIT, || {
        s.state().filter(|st| st.state == "off")
    })
    .await;
    assert_eq!(
        closed.attributes["next_change"],
        iso8601(ms("2026-01-06T07:00:00Z"))
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_url_keeps_the_last_calendar_and_says_why() {
    let server = IcsServer::start(OPENING).await;
    // Monday 2026-01-05 10:00 Paris: open.
    let start = ms("2026-01-05T09:00:00Z");
    let s = Setup::start(
        "2026-01-05T09:00:00Z",
        calendar(&format!(
            "id = \"coworking\"\nname = \"Coworking\"\nurl = \"{}\"\nrefresh_s = 60\nretry_s = 10\nhttp_timeout_s = 2",
            server.url
        )),
    )
    .await;
    wait_for("open after the first fetch", WAIT, || {
        s.state().filter(|st| st.state == "on")
    })
    .await;

    for (status, body, says) in [
        (
            500,
            "boom",
            "HTTP 500 Internal Server Error, expected 200 with an iCalendar payload".to_string(),
        ),
        (
            200,
            "<html>Sign in to continue</html>",
            format!(
                "calendar `coworking` ({}): `line 1`: expected `NAME[;PARAM=…]:VALUE`",
                server.shown()
            ),
        ),
    ] {
        let mark = log_mark();
        server.set(status, body);
        let hits = server.hits();
        // Past the next refresh or retry.
        s.hand.set(s.hand.get() + 61_000);
        let failed = wait_for(&format!("the error for HTTP {status}"), WAIT, || {
            s.state().filter(|st| {
                st.attributes["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains(&says))
            })
        })
        .await;
        assert!(server.hits() > hits);
        assert!(
            failed.attributes["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(&server.shown()) && !e.contains("private-x")),
            "the error names the URL without its secret path: {failed:?}"
        );
        assert_eq!(failed.state, "on", "the last good calendar is kept");
        assert_eq!(failed.attributes["last_fetch"], iso8601(start));
        assert_eq!(failed.attributes["event"], "Open");
        wait_for("the error in the log", WAIT, || {
            let l = logs_since(mark);
            (l.contains("calendar `coworking`")
                && l.contains("keeping the last good calendar, retrying in"))
            .then_some(())
        })
        .await;
    }
    // Still the kept calendar at its boundary: closed at 19:00 Paris.
    s.hand.set(ms("2026-01-05T18:00:00Z"));
    let closed = wait_for("closed at 19:00 on the kept calendar", WAIT, || {
        s.state().filter(|st| st.state == "off")
    })
    .await;
    assert!(closed.attributes["last_error"].is_string());

    server.set(200, OPENING);
    s.hand.set(ms("2026-01-05T18:05:00Z"));
    let ok = wait_for("recovered", WAIT, || {
        s.state().filter(|st| st.attributes["last_error"].is_null())
    })
    .await;
    assert_eq!(
        ok.attributes["last_fetch"],
        iso8601(ms("2026-01-05T18:05:00Z"))
    );
    s.stop().await;
}

/// A TLS acceptor with a server certificate for 127.0.0.1 signed by a test
/// CA; returns it and the CA's PEM file.
fn tls_acceptor(dir: &std::path::Path) -> (tokio_rustls::TlsAcceptor, std::path::PathBuf) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let pki = common::pki::make_pki(dir);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert_pem)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(&pki.key_pem).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    (
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)),
        pki.ca_pem,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_address_like_googles_is_fetched_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (acceptor, ca) = tls_acceptor(dir.path());
    let server = IcsServer::start_with(OPENING, Some(acceptor)).await;
    assert!(server.url.starts_with("https://127.0.0.1:"));
    // Without the private CA the certificate is refused, and said so.
    let s = Setup::start(
        "2026-01-05T09:00:00Z",
        calendar(&format!(
            "id = \"coworking\"\nname = \"Coworking\"\nurl = \"{}\"\nhttp_timeout_s = 5",
            server.url
        )),
    )
    .await;
    let refused = wait_for("the TLS error", WAIT, || {
        s.state()
            .filter(|st| st.attributes["last_error"].is_string())
    })
    .await;
    let error = refused.attributes["last_error"].as_str().unwrap();
    assert!(
        error.contains(&server.shown())
            && !error.contains("private-x")
            && error.contains("TLS with 127.0.0.1:")
            && error.contains("certificate"),
        "{error}"
    );
    assert_eq!(refused.state, "unknown", "no calendar yet");
    assert_eq!(server.hits(), 0, "no request without a trusted certificate");
    s.stop().await;

    let s = Setup::start(
        "2026-01-05T09:00:00Z",
        calendar(&format!(
            "id = \"coworking\"\nname = \"Coworking\"\nurl = \"{}\"\nca_file = \"{}\"",
            server.url,
            ca.display()
        )),
    )
    .await;
    let open = wait_for("open from the https feed", WAIT, || {
        s.state().filter(|st| st.state == "on")
    })
    .await;
    assert_eq!(open.attributes["event"], "Open");
    assert_eq!(open.attributes["last_error"], Value::Null);
    assert_eq!(server.hits(), 1);
    s.stop().await;
}
