//! The embedded broker's log: rumqttd's routine `router-drop` and
//! `no-connection id … is already gone` ERROR lines (at every ordinary
//! client disconnect and at shutdown) are filtered by
//! `hearth::broker::log_filter`, while a real link error still shows.
//! The test harness logs rumqttd at warn through the same filter as `hearth`.

use crate::common;

use common::{BrokerKind, log_mark, logs_since, wait_for};
use hearth::broker::BrokerAddress;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client(addr: &BrokerAddress, id: &str) -> (AsyncClient, EventLoop) {
    let mut opts = MqttOptions::new(id, &addr.host, addr.port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    AsyncClient::new(opts, 16)
}

/// Connects, subscribes, publishes, and leaves with DISCONNECT. A visit
/// whose connection drops is made again (at most 3 times): under a full
/// parallel test run the connection once dropped before its PUBACK (CI,
/// 2 cores); this test is about what the broker logs, and a dropped visit
/// still goes through the log checks below.
async fn visit(addr: &BrokerAddress, id: &str) {
    let mut last = String::new();
    for _ in 0..3 {
        match visit_once(addr, id).await {
            Ok(()) => return,
            Err(e) => last = e,
        }
    }
    panic!("{id}: the broker dropped the connection 3 times, last: {last}");
}

async fn visit_once(addr: &BrokerAddress, id: &str) -> Result<(), String> {
    let (c, mut eventloop) = client(addr, id);
    c.subscribe("broker-logs/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    c.publish("broker-logs/hello", QoS::AtLeastOnce, false, "hi")
        .await
        .unwrap();
    poll_until(&mut eventloop, id, |e| {
        matches!(e, Event::Incoming(Packet::PubAck(_)))
    })
    .await?;
    c.disconnect().await.unwrap();
    poll_until(&mut eventloop, id, |e| {
        matches!(e, Event::Outgoing(Outgoing::Disconnect))
    })
    .await
    // The socket closes when the event loop is dropped.
}

/// Polls until `want`; a dropped connection fails the test (a reconnect
/// with a clean session would lose what was sent, and wait forever).
async fn until(eventloop: &mut EventLoop, id: &str, want: impl Fn(&Event) -> bool) {
    if let Err(e) = poll_until(eventloop, id, want).await {
        panic!("{e}");
    }
}

/// Polls until `want`, or says how the connection dropped.
async fn poll_until(
    eventloop: &mut EventLoop,
    id: &str,
    want: impl Fn(&Event) -> bool,
) -> Result<(), String> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match eventloop.poll().await {
                Ok(e) if want(&e) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{id}: the broker dropped the connection: {e}")),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{id}: no answer from the broker within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_disconnects_log_no_error_but_a_link_error_still_does() {
    common::init_logs();
    let broker = common::broker(BrokerKind::Embedded);
    let mark = log_mark();
    for i in 0..3 {
        visit(&broker.addr, &format!("broker-logs-visitor-{i}")).await;
    }
    // One leaves without DISCONNECT (its socket just closes).
    {
        let (c, mut eventloop) = client(&broker.addr, "broker-logs-vanisher");
        c.subscribe("broker-logs/#", QoS::AtMostOnce).await.unwrap();
        until(&mut eventloop, "broker-logs-vanisher", |e| {
            matches!(e, Event::Incoming(Packet::SubAck(_)))
        })
        .await;
    }
    // A real link error: a client whose first packet is not CONNECT (a
    // PINGREQ), which rumqttd refuses with `Remote link error`.
    {
        let mut raw = tokio::net::TcpStream::connect((broker.addr.host.as_str(), broker.addr.port))
            .await
            .unwrap();
        raw.write_all(&[0xC0, 0x00]).await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut buf)).await;
    }
    wait_for(
        "rumqttd's error for a client that did not start with CONNECT",
        Duration::from_secs(10),
        || logs_since(mark).contains("NotConnectPacket").then_some(()),
    )
    .await;
    // Let the router finish its disconnect bookkeeping before reading.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = logs_since(mark);
    let error_line = logs
        .lines()
        .find(|l| l.contains("NotConnectPacket"))
        .unwrap();
    assert!(error_line.contains("ERROR"), "{error_line}");
    for routine in ["router-drop", "is already gone"] {
        assert!(
            !logs.contains(routine),
            "rumqttd's routine `{routine}` line reached the log:\n{logs}"
        );
    }
}
