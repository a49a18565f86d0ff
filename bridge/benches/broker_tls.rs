//! The embedded broker's front with TLS vs plain, in the same run
//! (`cargo bench --bench broker_tls`): publisher → subscriber, QoS 1 both
//! ways, messages/s, on
//!
//! 1. the default front (anonymous plain MQTT: what runs without `[tls]`);
//! 2. the plain listener of a front with authentication and the ACL (every
//!    PUBLISH judged against the ACL);
//! 3. the TLS listener of that front (TLS 1.3, rustls on ring, both
//!    clients over TLS; the front decrypts and re-encrypts every message).
//!
//! Five rounds, interleaved, so a slow moment of the machine shows as a
//! spread rather than as a difference. 40 000 messages a round: rumqttd
//! keeps about 80 000 such messages per filter (4 segments of 512 KiB,
//! `embedded.rs`) and a subscriber further behind skips ahead, so a
//! bigger burst can lose messages whatever the front does.

use hearth::broker::access::Access;
use hearth::broker::tls::TlsFiles;
use hearth::broker::{BrokerOptions, EmbeddedBroker};
use hearth::security::passwd::Passwd;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MESSAGES: u64 = 40_000;
const ROUNDS: usize = 5;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    rt.block_on(run());
}

/// How a bench client reaches the broker.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    creds: Option<(&'static str, &'static str)>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

fn make_pki(dir: &Path) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "bench CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().unwrap();
    write("tls/ca.pem", ca.self_signed(&ca_key).unwrap().pem());
    let mut server = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = server
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    write("tls/server.pem", cert.pem());
    write("tls/server.key", key.serialize_pem());
    let mut passwd = Passwd::default();
    passwd.set("bench-pub", "pw-pub");
    passwd.set("bench-sub", "pw-sub");
    write("mqtt/passwd", passwd.to_file_text());
    write(
        "mqtt/acl",
        "user bench-pub\ntopic write bench/#\n\nuser bench-sub\ntopic read bench/#\n".into(),
    );
}

fn client_tls(ca: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

fn client(target: &Target, id: &str, user: usize) -> (AsyncClient, rumqttc::EventLoop) {
    let mut opts = MqttOptions::new(id, "localhost", target.addr.port());
    opts.set_inflight(500);
    if let Some(creds) = target.creds {
        let (u, p) = [("bench-pub", creds.0), ("bench-sub", creds.1)][user];
        opts.set_credentials(u, p);
    }
    if let Some(tls) = &target.tls {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    AsyncClient::new(opts, 10_000)
}

/// Publisher → subscriber through `target`, QoS 1, messages/s.
async fn measure(target: &Target, tag: &str) -> Option<f64> {
    let topic = format!("bench/tls/{tag}");
    let (sub, mut sev) = client(target, &format!("bench-sub-{tag}"), 1);
    let received = Arc::new(AtomicU64::new(0));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    let r = received.clone();
    let tag = tag.to_string();
    let sub_tag = tag.clone();
    let sub_task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match sev.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => {
                    r.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    eprintln!("subscriber {sub_tag}: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), ready)
        .await
        .expect("SUBACK within 10 s")
        .unwrap();
    let (publisher, mut pev) = client(target, &format!("bench-pub-{tag}"), 0);
    let pub_task = tokio::spawn(async move {
        loop {
            if let Err(e) = pev.poll().await {
                eprintln!("publisher {tag}: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let t = Instant::now();
    for i in 0..MESSAGES {
        publisher
            .publish(&topic, QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let deadline = t + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < MESSAGES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let d = t.elapsed();
    sub_task.abort();
    pub_task.abort();
    (received.load(Ordering::Relaxed) >= MESSAGES).then(|| MESSAGES as f64 / d.as_secs_f64())
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path());
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let access = Access::load(
        &dir.path().join("mqtt/passwd"),
        &dir.path().join("mqtt/acl"),
    )
    .unwrap();
    let secure = EmbeddedBroker::start_with(BrokerOptions {
        plain: any,
        tls: Some((any, TlsFiles::in_data_dir(dir.path()))),
        access: Some(Arc::new(access)),
        max_connections: Some(256),
        handshake_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let default = EmbeddedBroker::start(
        std::net::Ipv4Addr::LOCALHOST.into(),
        EmbeddedBroker::free_port(),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let creds = Some(("pw-pub", "pw-sub"));
    let targets = [
        (
            "plain, anonymous (default front)",
            Target {
                addr: default.addr,
                creds: None,
                tls: None,
            },
        ),
        (
            "plain + auth + ACL",
            Target {
                addr: secure.addr,
                creds,
                tls: None,
            },
        ),
        (
            "TLS + auth + ACL",
            Target {
                addr: secure.tls_addr.unwrap(),
                creds,
                tls: Some(client_tls(&dir.path().join("tls/ca.pem"))),
            },
        ),
    ];
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    for round in 0..ROUNDS {
        for (i, (what, target)) in targets.iter().enumerate() {
            match measure(target, &format!("r{round}-{i}")).await {
                Some(rate) => results[i].push(rate),
                None => println!("{what}: not all {MESSAGES} messages arrived within 120 s"),
            }
        }
    }
    for ((what, _), rates) in targets.iter().zip(&results) {
        let mut sorted = rates.clone();
        sorted.sort_by(f64::total_cmp);
        let list: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "broker front, {what}: median {:.0} messages/s (rounds: {}; {MESSAGES} QoS 1 messages publisher → subscriber)",
            sorted.get(sorted.len() / 2).copied().unwrap_or(0.0),
            list.join(", ")
        );
    }
}
