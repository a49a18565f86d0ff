//! The embedded broker's front with `[tls]` (issue 16, DESIGN.md §8): MQTT
//! over TLS with real clients (rumqttc on rustls+ring, Debian's
//! mosquitto_pub/mosquitto_sub on OpenSSL), authentication (password or a
//! client certificate's CN) with the proper CONNACK refusals, per-device
//! topic rights from the ACL, and handshakes that cannot stall each other.

use crate::common;

use hearth::broker::access::Access;
use hearth::broker::tls::TlsFiles;
use hearth::broker::{BrokerOptions, EmbeddedBroker};
use hearth::security::SecurityPaths;
use hearth::security::passwd::Passwd;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    SubscribeReasonCode, TlsConfiguration, Transport,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(15);

/// The ACL `hearth certs` writes for two sensor nodes, HA and the bridge.
const ACL: &str = "\
user hearth-bridge
topic readwrite #

user homeassistant
topic readwrite homeassistant/#
topic readwrite hearth/#

user node-a
topic write hearth-node/node-a/announce
topic write hearth-node/node-a/telemetry
topic write hearth-node/node-a/status
topic write hearth-node/node-a/valve/state
topic read hearth-node/node-a/valve/set

user node-b
topic write hearth-node/node-b/announce
topic write hearth-node/node-b/telemetry
topic write hearth-node/node-b/status
topic write hearth-node/node-b/valve/state
topic read hearth-node/node-b/valve/set
";

/// Test PKI: our CA (server certificate, client certificates for `node-a`
/// and for `stranger`, who has no ACL entry) and a rogue CA (a client
/// certificate claiming `node-a`).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn files(&self) -> TlsFiles {
        TlsFiles::in_data_dir(self.dir.path())
    }
    fn ca(&self) -> PathBuf {
        self.path("tls/ca.pem")
    }
}

fn make_pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let ca_params = |name: &str| {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca
    };
    let ca = ca_params("Hearth test CA");
    let ca_key = KeyPair::generate().unwrap();
    write("tls/ca.pem", ca.self_signed(&ca_key).unwrap().pem());
    let issuer = Issuer::from_params(&ca, &ca_key);
    let mut server =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    write(
        "tls/server.pem",
        server.signed_by(&key, &issuer).unwrap().pem(),
    );
    write("tls/server.key", key.serialize_pem());
    let client = |issuer: &Issuer<'_, &KeyPair>, cn: &str, name: &str| {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap();
        write(
            &format!("{name}.pem"),
            p.signed_by(&key, issuer).unwrap().pem(),
        );
        write(&format!("{name}.key"), key.serialize_pem());
    };
    client(&issuer, "node-a", "node-a");
    // What `hearth certs issue --cert` leaves: node-a's certificate is the
    // one in devices/node-a/client.pem; node-a-old (same CN, same CA) was
    // issued before it.
    std::fs::create_dir_all(dir.path().join("devices/node-a")).unwrap();
    std::fs::copy(
        dir.path().join("node-a.pem"),
        dir.path().join("devices/node-a/client.pem"),
    )
    .unwrap();
    client(&issuer, "node-a", "node-a-old");
    client(&issuer, "stranger", "stranger");
    let rogue = ca_params("Rogue CA");
    let rogue_key = KeyPair::generate().unwrap();
    client(&Issuer::from_params(&rogue, &rogue_key), "node-a", "rogue");
    let mut passwd = Passwd::default();
    for (user, pw) in [
        ("node-a", "pw-a"),
        ("node-b", "pw-b"),
        ("homeassistant", "pw-ha"),
        ("hearth-bridge", "pw-bridge"),
    ] {
        passwd.set(user, pw);
    }
    write("mqtt/passwd", passwd.to_file_text());
    write("mqtt/acl", ACL.to_string());
    write("mqtt/bridge.password", "pw-bridge\n".to_string());
    write("mqtt/homeassistant.password", "pw-ha\n".to_string());
    Pki { dir }
}

fn start(pki: &Pki, tweak: impl FnOnce(&mut BrokerOptions)) -> EmbeddedBroker {
    common::init_logs();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let access = Access::load(&pki.path("mqtt/passwd"), &pki.path("mqtt/acl"))
        .expect("passwd and ACL")
        .with_device_certs(SecurityPaths::new(pki.dir.path()));
    let mut opts = BrokerOptions {
        plain: any,
        tls: Some((any, pki.files())),
        access: Some(Arc::new(access)),
        max_connections: Some(256),
        handshake_timeout: Duration::from_secs(10),
    };
    tweak(&mut opts);
    EmbeddedBroker::start_with(opts).expect("broker starts")
}

/// rustls client config on ring: trusting `ca` (or nothing), with an
/// optional client certificate `name`.pem/.key from the PKI.
fn tls_config(ca: Option<&Path>, client: Option<(&Pki, &str)>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca {
        for c in CertificateDer::pem_file_iter(ca).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    match client {
        None => builder.with_no_client_auth(),
        Some((pki, name)) => {
            let chain = CertificateDer::pem_file_iter(pki.path(&format!("{name}.pem")))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    }
}

fn tls_client(
    addr: SocketAddr,
    id: &str,
    creds: Option<(&str, &str)>,
    tls: rustls::ClientConfig,
) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, "localhost", addr.port());
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(tls),
    )));
    if let Some((u, p)) = creds {
        opts.set_credentials(u, p);
    }
    AsyncClient::new(opts, 32)
}

fn plain_client(
    addr: SocketAddr,
    id: &str,
    creds: Option<(&str, &str)>,
) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", addr.port());
    if let Some((u, p)) = creds {
        opts.set_credentials(u, p);
    }
    AsyncClient::new(opts, 32)
}

/// Polls until the CONNACK: `Ok` when accepted, the error otherwise.
async fn connack(eventloop: &mut EventLoop) -> Result<(), ConnectionError> {
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("no CONNACK and no error within the wait")
}

/// Polls until `want` picks something out of an event.
async fn until<T>(eventloop: &mut EventLoop, mut want: impl FnMut(&Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(e) => {
                    if let Some(v) = want(&e) {
                        return v;
                    }
                }
                Err(e) => panic!("connection lost: {e}"),
            }
        }
    })
    .await
    .expect("timed out waiting on the event loop")
}

fn refused(r: Result<(), ConnectionError>) -> ConnectReturnCode {
    match r {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        other => panic!("expected a CONNACK refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_connect_with_the_ca_and_credentials_and_others_are_refused() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let tls_addr = broker.tls_addr.expect("TLS listener");

    // The CA and a device password: in.
    let (_c, mut ev) = tls_client(
        tls_addr,
        "a-pw",
        Some(("node-a", "pw-a")),
        tls_config(Some(&pki.ca()), None),
    );
    connack(&mut ev).await.expect("node-a with its password");
    // A client certificate from the CA whose CN has an ACL entry: in, no password.
    let (_c, mut ev) = tls_client(
        tls_addr,
        "a-cert",
        None,
        tls_config(Some(&pki.ca()), Some((&pki, "node-a"))),
    );
    connack(&mut ev).await.expect("node-a by its certificate");

    // Wrong password, unknown user: 4. Anonymous, or a certificate whose
    // CN has no ACL entry: 5.
    let (_c, mut ev) = tls_client(
        tls_addr,
        "a-bad",
        Some(("node-a", "wrong")),
        tls_config(Some(&pki.ca()), None),
    );
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::BadUserNamePassword
    );
    let (_c, mut ev) = tls_client(
        tls_addr,
        "nobody",
        Some(("nobody", "pw-a")),
        tls_config(Some(&pki.ca()), None),
    );
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::BadUserNamePassword
    );
    let (_c, mut ev) = tls_client(tls_addr, "anon", None, tls_config(Some(&pki.ca()), None));
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::NotAuthorized
    );
    let (_c, mut ev) = tls_client(
        tls_addr,
        "stranger",
        None,
        tls_config(Some(&pki.ca()), Some((&pki, "stranger"))),
    );
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(broker.stats.refused.load(Ordering::Relaxed), 4);

    // Without the CA the client refuses the server; with a client
    // certificate from another CA the server refuses the handshake. No
    // CONNACK either way.
    let (_c, mut ev) = tls_client(
        tls_addr,
        "no-ca",
        Some(("node-a", "pw-a")),
        tls_config(None, None),
    );
    let e = connack(&mut ev).await.expect_err("a client without the CA");
    assert!(matches!(e, ConnectionError::Tls(_)), "{e:?}");
    let before = broker.stats.failed_handshakes.load(Ordering::Relaxed);
    let (_c, mut ev) = tls_client(
        tls_addr,
        "rogue",
        None,
        tls_config(Some(&pki.ca()), Some((&pki, "rogue"))),
    );
    let e = connack(&mut ev)
        .await
        .expect_err("a certificate from another CA");
    assert!(!matches!(e, ConnectionError::ConnectionRefused(_)), "{e:?}");
    common::wait_for("the rogue handshake counted", WAIT, || {
        (broker.stats.failed_handshakes.load(Ordering::Relaxed) > before).then_some(())
    })
    .await;

    // The plain listener (127.0.0.1) authenticates too.
    let (_c, mut ev) = plain_client(broker.addr, "plain-anon", None);
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::NotAuthorized
    );
    let (_c, mut ev) = plain_client(
        broker.addr,
        "plain-bridge",
        Some(("hearth-bridge", "pw-bridge")),
    );
    connack(&mut ev)
        .await
        .expect("the bridge's credential on the plain listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_will_on_another_devices_topic_is_refused() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let tls_addr = broker.tls_addr.unwrap();
    let mut opts = MqttOptions::new("a-will", "localhost", tls_addr.port());
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(tls_config(Some(&pki.ca()), None)),
    )));
    opts.set_credentials("node-a", "pw-a");
    opts.set_last_will(rumqttc::LastWill::new(
        "hearth-node/node-b/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (_c, mut ev) = AsyncClient::new(opts.clone(), 8);
    assert_eq!(
        refused(connack(&mut ev).await),
        ConnectReturnCode::NotAuthorized
    );
    opts.set_last_will(rumqttc::LastWill::new(
        "hearth-node/node-a/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let (_c, mut ev) = AsyncClient::new(opts, 8);
    connack(&mut ev)
        .await
        .expect("its own status topic as will");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_can_neither_publish_nor_subscribe_to_another_devices_topics() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let tls_addr = broker.tls_addr.unwrap();
    let ca = || tls_config(Some(&pki.ca()), None);

    // An authorised reader of node-b's telemetry (the bridge's credential).
    let (watcher, mut wev) = plain_client(
        broker.addr,
        "acl-watcher",
        Some(("hearth-bridge", "pw-bridge")),
    );
    connack(&mut wev).await.unwrap();
    watcher
        .subscribe("hearth-node/+/telemetry", QoS::AtLeastOnce)
        .await
        .unwrap();
    until(&mut wev, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await;

    let mark = common::log_mark();
    let (a, mut aev) = tls_client(tls_addr, "acl-node-a", Some(("node-a", "pw-a")), ca());
    connack(&mut aev).await.unwrap();
    // Five QoS 1 publishes to node-b's topic: each acknowledged (as by
    // Mosquitto), none delivered.
    for i in 0..5 {
        a.publish(
            "hearth-node/node-b/telemetry",
            QoS::AtLeastOnce,
            false,
            format!("forged {i}"),
        )
        .await
        .unwrap();
        until(&mut aev, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await;
    }
    // A QoS 2 one completes its exchange too.
    a.publish(
        "hearth-node/node-b/telemetry",
        QoS::ExactlyOnce,
        false,
        "forged q2",
    )
    .await
    .unwrap();
    until(&mut aev, |e| {
        matches!(e, Event::Incoming(Packet::PubComp(_))).then_some(())
    })
    .await;
    // node-a's own telemetry goes through, and node-b's own.
    a.publish(
        "hearth-node/node-a/telemetry",
        QoS::AtLeastOnce,
        false,
        "own a",
    )
    .await
    .unwrap();
    let (b, mut bev) = tls_client(tls_addr, "acl-node-b", Some(("node-b", "pw-b")), ca());
    connack(&mut bev).await.unwrap();
    b.publish(
        "hearth-node/node-b/telemetry",
        QoS::AtLeastOnce,
        false,
        "own b",
    )
    .await
    .unwrap();
    let b_task = tokio::spawn(async move {
        loop {
            if bev.poll().await.is_err() {
                break;
            }
        }
    });
    let a_task = tokio::spawn(async move { while aev.poll().await.is_ok() {} });
    let mut seen = Vec::new();
    until(&mut wev, |e| {
        if let Event::Incoming(Packet::Publish(p)) = e {
            seen.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
        (seen.len() >= 2).then_some(())
    })
    .await;
    seen.sort();
    assert_eq!(
        seen,
        vec!["own a", "own b"],
        "no forged message gets through"
    );

    // The six denials are logged once (one client, one topic).
    let logs = common::logs_since(mark);
    let lines = logs
        .lines()
        .filter(|l| {
            l.contains("`acl-node-a`")
                && l.contains("may not publish to `hearth-node/node-b/telemetry`")
        })
        .count();
    assert_eq!(lines, 1, "{logs}");
    assert!(logs.contains("user `node-a`"), "{logs}");
    assert_eq!(broker.stats.denials_logged.load(Ordering::Relaxed), 1);
    assert_eq!(broker.stats.denied.load(Ordering::Relaxed), 6);
    a_task.abort();
    b_task.abort();

    // Subscriptions: node-b's command topic gets 0x80 (alone or next to
    // node-a's own, which is granted).
    let (a, mut aev) = tls_client(tls_addr, "acl-node-a-sub", Some(("node-a", "pw-a")), ca());
    connack(&mut aev).await.unwrap();
    a.subscribe("hearth-node/node-b/valve/set", QoS::AtLeastOnce)
        .await
        .unwrap();
    let codes = until(&mut aev, |e| match e {
        Event::Incoming(Packet::SubAck(s)) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(codes, vec![SubscribeReasonCode::Failure]);
    a.subscribe_many([
        rumqttc::SubscribeFilter::new("hearth-node/node-b/valve/set".into(), QoS::AtLeastOnce),
        rumqttc::SubscribeFilter::new("hearth-node/node-a/valve/set".into(), QoS::AtLeastOnce),
        rumqttc::SubscribeFilter::new("hearth-node/+/valve/set".into(), QoS::AtLeastOnce),
    ])
    .await
    .unwrap();
    let codes = until(&mut aev, |e| match e {
        Event::Incoming(Packet::SubAck(s)) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        codes,
        vec![
            SubscribeReasonCode::Failure,
            SubscribeReasonCode::Success(QoS::AtLeastOnce),
            SubscribeReasonCode::Failure,
        ]
    );
    // Commands for both: node-a hears only its own.
    for node in ["node-b", "node-a"] {
        watcher
            .publish(
                format!("hearth-node/{node}/valve/set"),
                QoS::AtLeastOnce,
                false,
                node,
            )
            .await
            .unwrap();
    }
    let w_task = tokio::spawn(async move { while wev.poll().await.is_ok() {} });
    let got = until(&mut aev, |e| match e {
        Event::Incoming(Packet::Publish(p)) => Some((p.topic.clone(), p.payload.clone())),
        _ => None,
    })
    .await;
    assert_eq!(got.0, "hearth-node/node-a/valve/set");
    assert_eq!(&got.1[..], b"node-a");
    w_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_tcp_client_does_not_delay_another_clients_tls_connect() {
    let pki = make_pki();
    let broker = start(&pki, |o| o.handshake_timeout = Duration::from_secs(3));
    let tls_addr = broker.tls_addr.unwrap();
    // Connects and never sends a byte (rumqttd alone would stall every new
    // TLS client behind this one).
    let mut idle = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let (_c, mut ev) = tls_client(
        tls_addr,
        "after-idle",
        Some(("node-a", "pw-a")),
        tls_config(Some(&pki.ca()), None),
    );
    tokio::time::timeout(Duration::from_secs(2), connack(&mut ev))
        .await
        .expect("connected within 2 s while an idle client holds its socket")
        .unwrap();
    let took = started.elapsed();
    // The idle one is dropped at the handshake timeout.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(6), async {
        use tokio::io::AsyncReadExt;
        idle.read(&mut byte).await
    })
    .await
    .expect("the idle client is closed after the handshake timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    eprintln!("TLS connect next to an idle client took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once() {
    use tokio::io::AsyncReadExt;
    let pki = make_pki();
    let broker = start(&pki, |o| o.max_connections = Some(2));
    let tls_addr = broker.tls_addr.unwrap();
    let _one = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let _two = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut three = tokio::net::TcpStream::connect(tls_addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(2), three.read(&mut byte))
        .await
        .expect("the third connection is closed at once");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(broker.stats.over_cap.load(Ordering::Relaxed), 1);
}

/// Runs a mosquitto client with a timeout; (success, stdout, stderr).
async fn mosquitto(tool: &str, args: &[&str]) -> (bool, String, String) {
    use std::process::{Command, Stdio};
    let mut child = Command::new(tool)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {tool}: {e}"));
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{tool} did not finish within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_connect_with_the_ca_and_are_refused_without_it() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let port = broker.tls_addr.unwrap().port().to_string();
    let ca = pki.ca().display().to_string();
    let file = |name: &str| pki.path(name).display().to_string();
    let run = |tool: &'static str, id: &str, extra: Vec<String>| {
        let mut args: Vec<String> = ["-h", "127.0.0.1", "-p", &port, "-q", "1", "-i", id]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra);
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            mosquitto(tool, &args).await
        }
    };
    let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let telemetry = v(&["-t", "hearth-node/node-a/telemetry", "-m", "x"]);
    let with_ca = |mut rest: Vec<String>| {
        let mut a = v(&["--cafile", &ca]);
        a.append(&mut rest);
        a
    };

    // The bridge's credential leaves a retained command for node-a, which
    // node-a reads with mosquitto_sub (its password).
    let (ok, _, err) = run(
        "mosquitto_pub",
        "m-bridge",
        with_ca(v(&[
            "-u",
            "hearth-bridge",
            "-P",
            "pw-bridge",
            "-r",
            "-t",
            "hearth-node/node-a/valve/set",
            "-m",
            "open",
        ])),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run(
        "mosquitto_sub",
        "m-node-a",
        with_ca(v(&[
            "-u",
            "node-a",
            "-P",
            "pw-a",
            "-t",
            "hearth-node/node-a/valve/set",
            "-C",
            "1",
            "-W",
            "10",
        ])),
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "open");
    // A client certificate from our CA, no password: in.
    let cert = v(&["--cert", &file("node-a.pem"), "--key", &file("node-a.key")]);
    let (ok, _, err) = run(
        "mosquitto_pub",
        "m-cert",
        with_ca([cert, telemetry.clone()].concat()),
    )
    .await;
    assert!(ok, "{err}");

    // Wrong password: refused with its reason. Anonymous: not authorised.
    let creds = v(&["-u", "node-a", "-P", "nope"]);
    let (ok, _, err) = run(
        "mosquitto_pub",
        "m-bad",
        with_ca([creds, telemetry.clone()].concat()),
    )
    .await;
    assert!(!ok && err.contains("bad user name or password"), "{err}");
    let (ok, _, err) = run("mosquitto_pub", "m-anon", with_ca(telemetry.clone())).await;
    assert!(!ok && err.to_lowercase().contains("not authori"), "{err}");
    // Without our CA (the system's roots): the handshake fails.
    let no_ca = v(&["--capath", "/etc/ssl/certs", "-u", "node-a", "-P", "pw-a"]);
    let (ok, _, err) = run(
        "mosquitto_pub",
        "m-noca",
        [no_ca, telemetry.clone()].concat(),
    )
    .await;
    assert!(!ok, "{err}");
    // A client certificate from another CA: the handshake fails.
    let rogue = v(&["--cert", &file("rogue.pem"), "--key", &file("rogue.key")]);
    let (ok, _, err) = run(
        "mosquitto_pub",
        "m-rogue",
        with_ca([rogue, telemetry].concat()),
    )
    .await;
    assert!(!ok, "{err}");
    assert_eq!(broker.stats.refused.load(Ordering::Relaxed), 2);
}

/// Runs the real `hearth` binary (here: `hearth certs`).
fn hearth_ok(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .output()
        .expect("hearth runs");
    assert!(
        out.status.success(),
        "hearth {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hearth certs init` and `issue`'s output, used as is by the whole
/// bridge with `[tls]`: its own link authenticates as `hearth-bridge`, HA's
/// credential sees discovery (and not the nodes' raw topics), and a node
/// issued a password and a client certificate announces itself over TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_on_hearth_certs_output_serves_ha_and_an_issued_node_over_tls() {
    common::init_logs();
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().display().to_string();
    hearth_ok(&["certs", "init", "--data-dir", &dir]);
    hearth_ok(&[
        "certs",
        "issue",
        "--device",
        "node-c",
        "--cert",
        "--data-dir",
        &dir,
    ]);
    let read = |p: &str| {
        std::fs::read_to_string(data.path().join(p))
            .unwrap()
            .trim()
            .to_string()
    };
    let (ha_pw, node_pw) = (
        read("mqtt/homeassistant.password"),
        read("devices/node-c/password"),
    );
    let mut config = hearth::config::Config {
        data_dir: Some(data.path().to_path_buf()),
        tls: Some(toml::from_str("").unwrap()),
        ..Default::default()
    };
    config.mqtt.port = EmbeddedBroker::free_port();
    config.mqtt.tls_port = EmbeddedBroker::free_port();
    config.http.port = EmbeddedBroker::free_port();
    let bridge = hearth::app::Bridge::start(config.clone(), hearth::clock::Clock::real())
        .await
        .expect("the bridge starts with [tls], authenticated as hearth-bridge");
    let addr: SocketAddr = ([127, 0, 0, 1], config.mqtt.tls_port).into();
    let ca = data.path().join("tls/ca.pem");
    let (ha, mut ev) = tls_client(
        addr,
        "ha",
        Some(("homeassistant", ha_pw.as_str())),
        tls_config(Some(&ca), None),
    );
    connack(&mut ev).await.expect("HA's credential");
    ha.subscribe("homeassistant/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    until(&mut ev, |e| match e {
        Event::Incoming(Packet::Publish(p)) if p.topic.ends_with("/config") => Some(()),
        _ => None,
    })
    .await;
    // HA may not read the nodes' raw topics.
    ha.subscribe("hearth-node/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let codes = until(&mut ev, |e| match e {
        Event::Incoming(Packet::SubAck(s)) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(codes, vec![SubscribeReasonCode::Failure]);

    // node-c by its password, then by its certificate alone, announces
    // itself; HA gets its discovery config.
    let (node, mut nev) = tls_client(
        addr,
        "node-c-pw",
        Some(("node-c", node_pw.as_str())),
        tls_config(Some(&ca), None),
    );
    connack(&mut nev).await.expect("node-c's issued password");
    drop((node, nev));
    let pki = Pki { dir: data };
    let (node, mut nev) = tls_client(
        addr,
        "node-c",
        None,
        tls_config(Some(&ca), Some((&pki, "devices/node-c/client"))),
    );
    connack(&mut nev)
        .await
        .expect("node-c's issued certificate");
    let announce = r#"{"id":"node-c","name":"Node C","model":"m","sw_version":"1","sensors":["temperature"],"interval_s":60}"#;
    node.publish(
        "hearth-node/node-c/announce",
        QoS::AtLeastOnce,
        true,
        announce,
    )
    .await
    .unwrap();
    let n_task = tokio::spawn(async move { while nev.poll().await.is_ok() {} });
    let topic = until(&mut ev, |e| match e {
        Event::Incoming(Packet::Publish(p))
            if p.topic.ends_with("/config")
                && String::from_utf8_lossy(&p.payload).contains("node-c") =>
        {
            Some(p.topic.clone())
        }
        _ => None,
    })
    .await;
    assert!(topic.starts_with("homeassistant/"), "{topic}");
    n_task.abort();
    bridge.stop().await;
}

/// A CONNECT with user name and password, as bytes.
fn raw_connect(id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    for field in [id, user, password] {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field.as_bytes());
    }
    assert!(body.len() < 128);
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_connects_gives_a_bounded_log_without_forged_lines() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let mark = common::log_mark();
    let user = "flood\u{1b}[31muser\nforged line";
    for i in 0..30 {
        let mut s = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
        s.write_all(&raw_connect(&format!("flood-{i}"), user, "guess"))
            .await
            .unwrap();
        let mut connack = [0u8; 4];
        tokio::time::timeout(WAIT, s.read_exact(&mut connack))
            .await
            .expect("a CONNACK within the wait")
            .unwrap();
        assert_eq!(
            connack,
            [0x20, 2, 0, 4],
            "refused: bad user name or password"
        );
    }
    assert_eq!(broker.stats.refused.load(Ordering::Relaxed), 30);
    let logs = common::logs_since(mark);
    let escaped = "flood\\u{1b}[31muser\\nforged line";
    let lines = logs.lines().filter(|l| l.contains(escaped)).count();
    assert_eq!(lines, 10, "{logs}");
    assert!(
        !logs.lines().any(|l| l.starts_with("forged line")) && !logs.contains('\u{1b}'),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_in_use_by_another_user_is_refused_and_its_holder_stays() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let tls_addr = broker.tls_addr.unwrap();
    let ca = || tls_config(Some(&pki.ca()), None);
    let (a, mut aev) = tls_client(tls_addr, "shared-id", Some(("node-a", "pw-a")), ca());
    connack(&mut aev).await.unwrap();
    // node-b may not take it over (it would close node-a's connection).
    let (_b, mut bev) = tls_client(tls_addr, "shared-id", Some(("node-b", "pw-b")), ca());
    assert_eq!(
        refused(connack(&mut bev).await),
        ConnectReturnCode::BadClientId
    );
    // node-a is still connected: a publish is acknowledged.
    a.publish(
        "hearth-node/node-a/status",
        QoS::AtLeastOnce,
        false,
        "online",
    )
    .await
    .unwrap();
    until(&mut aev, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
    })
    .await;
    // The bridge's own client id neither.
    let (_b, mut bev) = plain_client(
        broker.addr,
        "hearth-bridge-hearth",
        Some(("hearth-bridge", "pw-bridge")),
    );
    connack(&mut bev).await.unwrap();
    let (_x, mut xev) = tls_client(
        tls_addr,
        "hearth-bridge-hearth",
        Some(("node-a", "pw-a")),
        ca(),
    );
    assert_eq!(
        refused(connack(&mut xev).await),
        ConnectReturnCode::BadClientId
    );
    // Once node-a's clean session ends, the id is free again; a session
    // rumqttd keeps (clean session 0) stays node-a's.
    drop((a, aev));
    let mut free = false;
    for _ in 0..50 {
        let (_b, mut bev) = tls_client(tls_addr, "shared-id", Some(("node-b", "pw-b")), ca());
        if connack(&mut bev).await.is_ok() {
            free = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(free, "the id is free once node-a's connection closed");
    let mut opts = MqttOptions::new("kept-id", "localhost", tls_addr.port());
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(ca()),
    )));
    opts.set_credentials("node-a", "pw-a");
    opts.set_clean_session(false);
    let (a, mut aev) = AsyncClient::new(opts, 8);
    connack(&mut aev).await.unwrap();
    a.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while aev.poll().await.is_ok() {}
    })
    .await;
    drop(aev);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_b, mut bev) = tls_client(tls_addr, "kept-id", Some(("node-b", "pw-b")), ca());
    assert_eq!(
        refused(connack(&mut bev).await),
        ConnectReturnCode::BadClientId
    );
}

/// Reads what the peer sends until it closes or `wait` passes.
async fn read_to_end_within(s: &mut tokio::net::TcpStream, wait: Duration) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 256];
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    got
}

/// A CONNECT with neither user name nor password.
fn raw_anonymous_connect(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rumqttd_behind_the_front_takes_only_the_fronts_own_login() {
    use hearth::broker::front;
    use tokio::io::AsyncWriteExt;
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    // Through the front: fine.
    let (_c, mut ev) = plain_client(broker.addr, "via-front", Some(("node-a", "pw-a")));
    connack(&mut ev).await.unwrap();
    // Straight to rumqttd, with a client's real password or none: no session.
    for connect in [
        raw_connect("direct-1", "node-a", "pw-a"),
        raw_connect("direct-2", "hearth-bridge", "pw-bridge"),
        raw_anonymous_connect("direct-3"),
    ] {
        let mut s = tokio::net::TcpStream::connect(broker.rumqttd)
            .await
            .unwrap();
        s.write_all(&connect).await.unwrap();
        let got = read_to_end_within(&mut s, Duration::from_secs(3)).await;
        assert!(
            !got.starts_with(&[0x20, 2, 0, 0]),
            "rumqttd accepted a CONNECT that did not come from the front: {got:?}"
        );
    }
    // What the front forwards: its own login, never the client's password.
    let fake_rumqttd = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = fake_rumqttd.local_addr().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let front_addr = listener.local_addr().unwrap();
    let access = Access::load(&pki.path("mqtt/passwd"), &pki.path("mqtt/acl")).unwrap();
    let mut opts = front::FrontOptions::plain(64 * 1024);
    opts.access = Some(Arc::new(access));
    opts.upstream_login = Some(("internal".into(), "token-123".into()));
    front::spawn(
        vec![front::Listener {
            socket: listener,
            tls: None,
        }],
        upstream,
        opts,
    )
    .unwrap();
    let mut client = tokio::net::TcpStream::connect(front_addr).await.unwrap();
    client
        .write_all(&raw_connect("fwd", "node-a", "pw-a"))
        .await
        .unwrap();
    fake_rumqttd.set_nonblocking(true).unwrap();
    let fake = tokio::net::TcpListener::from_std(fake_rumqttd).unwrap();
    let (mut up, _) = tokio::time::timeout(WAIT, fake.accept())
        .await
        .expect("the front connects upstream")
        .unwrap();
    let mut forwarded = Vec::new();
    tokio::time::timeout(WAIT, async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 256];
        loop {
            let n = up.read(&mut buf).await.unwrap();
            assert!(n > 0, "upstream closed before a whole CONNECT");
            forwarded.extend_from_slice(&buf[..n]);
            if forwarded.len() >= 2 && forwarded.len() >= 2 + usize::from(forwarded[1]) {
                break;
            }
        }
    })
    .await
    .expect("the CONNECT is forwarded");
    let c = hearth::broker::wire::parse_connect(&forwarded).expect("a CONNECT");
    assert_eq!(
        (c.client_id, c.username, c.password),
        ("fwd", Some("internal"), Some(&b"token-123"[..]))
    );
    assert!(!forwarded.windows(4).any(|w| w == b"pw-a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_cut_off_while_connected_and_an_old_certificate_is_refused() {
    let pki = make_pki();
    let broker = start(&pki, |_| {});
    let tls_addr = broker.tls_addr.unwrap();
    // An older certificate of node-a, signed by the CA: refused.
    let (_o, mut oev) = tls_client(
        tls_addr,
        "old-cert",
        None,
        tls_config(Some(&pki.ca()), Some((&pki, "node-a-old"))),
    );
    assert_eq!(
        refused(connack(&mut oev).await),
        ConnectReturnCode::NotAuthorized
    );
    let (_a, mut aev) = tls_client(
        tls_addr,
        "node-a-cert",
        None,
        tls_config(Some(&pki.ca()), Some((&pki, "node-a"))),
    );
    connack(&mut aev).await.unwrap();
    let (_b, mut bev) = plain_client(broker.addr, "node-b", Some(("node-b", "pw-b")));
    connack(&mut bev).await.unwrap();
    let (ha, mut hev) = plain_client(broker.addr, "ha", Some(("homeassistant", "pw-ha")));
    connack(&mut hev).await.unwrap();
    // Each event loop is polled in a task of its own; each ends with its
    // connection.
    let watch = |mut ev: EventLoop| {
        tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(s))) => {
                        if s.return_codes.contains(&SubscribeReasonCode::Failure) {
                            return "suback-failure";
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return "closed",
                }
            }
        })
    };
    let (a_task, b_task, h_task) = (watch(aev), watch(bev), watch(hev));
    // `hearth certs revoke --device node-b`: out of passwd (atomic rename).
    let passwd_path = pki.path("mqtt/passwd");
    let mut pw = Passwd::load(&passwd_path).unwrap();
    assert!(pw.remove("node-b"));
    let tmp = pki.path("mqtt/passwd.tmp");
    std::fs::write(&tmp, pw.to_file_text()).unwrap();
    std::fs::rename(&tmp, &passwd_path).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), b_task)
        .await
        .expect("node-b is disconnected once revoked")
        .unwrap();
    assert_eq!(ended, "closed");
    assert!(!a_task.is_finished() && !h_task.is_finished());
    // HA loses its hearth/# right: its next SUBSCRIBE there is refused.
    let acl_path = pki.path("mqtt/acl");
    let acl = ACL.replace("topic readwrite hearth/#\n", "");
    std::fs::write(&acl_path, &acl).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    ha.subscribe("hearth/x", QoS::AtMostOnce).await.unwrap();
    let ended = tokio::time::timeout(WAIT, h_task)
        .await
        .expect("HA's SUBACK")
        .unwrap();
    assert_eq!(
        ended, "suback-failure",
        "the new ACL applies to HA's next packet"
    );
    // node-a (certificate) out of the ACL: cut off.
    let start = acl.find("user node-a").unwrap();
    let end = acl.find("user node-b").unwrap();
    std::fs::write(&acl_path, format!("{}{}", &acl[..start], &acl[end..])).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), a_task)
        .await
        .expect("node-a is disconnected once out of the ACL")
        .unwrap();
    assert_eq!(ended, "closed");
    assert_eq!(broker.stats.revoked.load(Ordering::Relaxed), 2);
}

/// A local address that is not loopback (the machine's LAN address), if any.
fn lan_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("198.51.100.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lan_clients_cannot_take_loopbacks_slots_nor_one_address_all_of_them() {
    use tokio::io::AsyncReadExt;
    let Some(lan) = lan_address() else {
        eprintln!("no non-loopback address on this machine: test skipped");
        return;
    };
    let pki = make_pki();
    let on_all = |cap: usize| {
        move |o: &mut BrokerOptions| {
            o.max_connections = Some(cap);
            let (_, files) = o.tls.take().unwrap();
            o.tls = Some(("0.0.0.0:0".parse().unwrap(), files));
        }
    };
    let closed_at_once = |mut s: tokio::net::TcpStream| async move {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), s.read(&mut byte)).await;
        matches!(read, Ok(Ok(0) | Err(_)))
    };
    // A LAN host fills the cap; loopback clients still get in.
    let broker = start(&pki, on_all(8));
    let to = SocketAddr::new(lan, broker.tls_addr.unwrap().port());
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(tokio::net::TcpStream::connect(to).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ninth = tokio::net::TcpStream::connect(to).await.unwrap();
    assert!(
        closed_at_once(ninth).await,
        "the ninth LAN connection is closed"
    );
    assert_eq!(broker.stats.over_cap.load(Ordering::Relaxed), 1);
    let (_c, mut ev) = plain_client(broker.addr, "local", Some(("hearth-bridge", "pw-bridge")));
    connack(&mut ev)
        .await
        .expect("a loopback client connects while the LAN cap is full");
    drop(held);
    // One address holds at most PER_IP_CONNECTIONS.
    let per_ip = hearth::broker::front::PER_IP_CONNECTIONS;
    let broker = start(&pki, on_all(per_ip * 4));
    let to = SocketAddr::new(lan, broker.tls_addr.unwrap().port());
    let mut held = Vec::new();
    for _ in 0..per_ip {
        held.push(tokio::net::TcpStream::connect(to).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let one_more = tokio::net::TcpStream::connect(to).await.unwrap();
    assert!(
        closed_at_once(one_more).await,
        "one connection too many from {lan}"
    );
    assert_eq!(broker.stats.over_ip_cap.load(Ordering::Relaxed), 1);
    assert_eq!(broker.stats.over_cap.load(Ordering::Relaxed), 0);
}

/// An MQTT 5 CONNECT (protocol level 5, empty properties).
fn raw_v5_connect(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_client_is_told_the_protocol_is_unsupported() {
    use tokio::io::AsyncWriteExt;
    let pki = make_pki();
    let secure = start(&pki, |_| {});
    let default = EmbeddedBroker::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        EmbeddedBroker::free_port(),
    )
    .unwrap();
    let mark = common::log_mark();
    for (i, addr) in [secure.addr, default.addr, secure.addr]
        .into_iter()
        .enumerate()
    {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&raw_v5_connect(&format!("v5-{i}")))
            .await
            .unwrap();
        let got = read_to_end_within(&mut s, WAIT).await;
        assert_eq!(
            got,
            [0x20, 0x03, 0x00, 0x84, 0x00],
            "CONNACK 0x84, then closed"
        );
    }
    assert_eq!(secure.stats.unsupported_protocol.load(Ordering::Relaxed), 2);
    let logs = common::logs_since(mark);
    let lines: Vec<_> = logs.lines().filter(|l| l.contains("MQTT 3.1.1")).collect();
    // One line per broker (rate-limited: the second client on `secure` is
    // counted, not logged).
    assert_eq!(lines.len(), 2, "{logs}");
    assert!(lines[0].contains("protocol to 3.1.1"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_password_hash_does_not_stall_other_clients() {
    // 100 000 PBKDF2 rounds (the most a password file may ask for).
    let hash = format!("AAAAAAAAAAAAAAAA${}==", "A".repeat(86));
    let slow = format!("slow:$7$100000${hash}\n");
    let pki = make_pki();
    let passwd_path = pki.path("mqtt/passwd");
    let text = std::fs::read_to_string(&passwd_path).unwrap();
    std::fs::write(&passwd_path, format!("{text}{slow}")).unwrap();
    let t = Instant::now();
    assert!(!Passwd::parse(&slow).unwrap().verify("slow", b"guess"));
    let one = t.elapsed();
    let broker = start(&pki, |_| {});
    let (c, mut ev) = plain_client(broker.addr, "ha", Some(("homeassistant", "pw-ha")));
    connack(&mut ev).await.unwrap();
    c.subscribe("homeassistant/ping", QoS::AtMostOnce)
        .await
        .unwrap();
    until(&mut ev, |e| {
        matches!(e, Event::Incoming(Packet::SubAck(_))).then_some(())
    })
    .await;
    // Several guessing clients of the slow user at once, then pings.
    let guesses: Vec<_> = (0..2)
        .map(|i| {
            let addr = broker.addr;
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(&raw_connect(&format!("g{i}"), "slow", "guess"))
                    .await
                    .unwrap();
                let mut connack = [0u8; 4];
                tokio::time::timeout(WAIT * 4, s.read_exact(&mut connack))
                    .await
                    .expect("a CONNACK within the wait")
                    .unwrap();
                connack
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        let t = Instant::now();
        c.publish("homeassistant/ping", QoS::AtMostOnce, false, "x")
            .await
            .unwrap();
        until(&mut ev, |e| {
            matches!(e, Event::Incoming(Packet::Publish(_))).then_some(())
        })
        .await;
        worst = worst.max(t.elapsed());
    }
    for g in guesses {
        assert_eq!(g.await.unwrap(), [0x20, 2, 0, 4]);
    }
    eprintln!("one slow hash: {one:?}; worst ping meanwhile: {worst:?}");
    assert!(
        worst < one / 2,
        "a ping waited {worst:?} while password hashes of {one:?} ran"
    );
}
