//! MQTT 3.1.1 §3.1.4 client-id takeover, on both brokers: a client that
//! connects again while its older connection with the same id is still
//! open, or still in its handshake, keeps the new session (its subscription
//! and its publishes), and the older connection is closed. rumqttd 0.20
//! alone sometimes dropped the new connection instead (see
//! `hearth::broker::sessions`), and a client with a clean session then lost
//! what it had sent. The race is timing-dependent: without the front's
//! takeover, a stress run of 1 200 such reconnects on 8 brokers at once
//! lost 3 sessions, and these 60 in a row rarely lose one. So this checks
//! the outcome on both brokers; `sessions.rs`'s unit tests check the
//! mechanism deterministically.

use crate::common;

use common::BrokerKind;
use hearth::broker::BrokerAddress;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An MQTT 3.1.1 CONNECT (clean session, keep alive 60 s) sent by hand.
async fn raw_connect(addr: &BrokerAddress, id: &str) -> TcpStream {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut s = TcpStream::connect((addr.host.as_str(), addr.port))
            .await
            .unwrap();
        s.write_all(&packet).await.unwrap();
        s
    })
    .await
    .unwrap_or_else(|_| panic!("{id}: could not connect within 10 s"))
}

/// Subscribes to its own topic, publishes there at QoS 1, and needs both
/// the PUBACK and its message back on the first connection it makes.
async fn new_session(addr: &BrokerAddress, id: &str) {
    let mut opts = MqttOptions::new(id, &addr.host, addr.port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let topic = format!("takeover/{id}");
    client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    client
        .publish(&topic, QoS::AtLeastOnce, false, "mine")
        .await
        .unwrap();
    let (mut acked, mut echoed) = (false, false);
    tokio::time::timeout(Duration::from_secs(10), async {
        while !(acked && echoed) {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked = true,
                Ok(Event::Incoming(Packet::Publish(p))) => echoed |= p.topic == topic,
                Ok(_) => {}
                Err(e) => panic!("{id}: the new connection was dropped: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id}: PUBACK {acked}, own message {echoed} after 10 s"));
    let _ = client.disconnect().await;
}

async fn takeover(kind: BrokerKind) {
    common::init_logs();
    let broker = common::broker(kind);
    for i in 0..60 {
        let id = format!("takeover-{i}");
        let mut old = raw_connect(&broker.addr, &id).await;
        if i % 2 == 0 {
            // Gone mid-handshake (a client that gave up on a late CONNACK).
            drop(old);
            new_session(&broker.addr, &id).await;
        } else {
            // Connected and silent (a device whose Wi-Fi dropped).
            let mut connack = [0u8; 4];
            tokio::time::timeout(Duration::from_secs(10), old.read_exact(&mut connack))
                .await
                .unwrap_or_else(|_| panic!("{id}: no CONNACK within 10 s"))
                .unwrap();
            assert_eq!(connack, [0x20, 2, 0, 0], "{id}: CONNACK");
            new_session(&broker.addr, &id).await;
            let mut rest = [0u8; 16];
            let closed = tokio::time::timeout(Duration::from_secs(5), old.read(&mut rest)).await;
            assert!(
                matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
                "{id}: the older connection was not closed: {closed:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connecting_again_keeps_its_new_session_on_the_embedded_broker() {
    takeover(BrokerKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_connecting_again_keeps_its_new_session_on_mosquitto() {
    takeover(BrokerKind::Mosquitto).await;
}
