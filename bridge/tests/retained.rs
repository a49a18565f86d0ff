//! Retained messages behave on the embedded broker exactly as on Mosquitto
//! (MQTT 3.1.1 §3.3.1.3): a non-retained message, empty or not, leaves the
//! retained one alone; only a retained empty message clears it. rumqttd
//! 0.20 alone erased a retained message on any empty publish (the
//! `broker::wire` module explains the front that fixes it).

use crate::common::{self, BrokerKind};
use hearth::broker::BrokerAddress;
use hearth::broker::wire::EMPTY_MARK;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::time::Duration;
use tokio::sync::mpsc;

/// (payload, retain flag) as a client received it.
type Received = (Vec<u8>, bool);

struct Client {
    client: AsyncClient,
    rx: mpsc::UnboundedReceiver<Received>,
    acks: mpsc::UnboundedReceiver<Ack>,
    /// Polls the connection; aborting it drops the socket.
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, PartialEq)]
enum Ack {
    Connected,
    Subscribed,
    Published,
}

/// A client that forwards every received publish, and waits for each
/// acknowledgement (CONNACK, SUBACK, PUBACK) so steps happen in order.
async fn client(addr: &BrokerAddress, name: &str, will: Option<rumqttc::LastWill>) -> Client {
    let mut opts = MqttOptions::new(name, &addr.host, addr.port);
    opts.set_keep_alive(Duration::from_secs(5));
    if let Some(w) = will {
        opts.set_last_will(w);
    }
    let (client, eventloop) = AsyncClient::new(opts, 64);
    let (tx, rx) = mpsc::unbounded_channel();
    let (acks_tx, acks) = mpsc::unbounded_channel();
    let task = tokio::spawn(poll(eventloop, tx, acks_tx));
    let mut c = Client {
        client,
        rx,
        acks,
        task,
    };
    c.ack(Ack::Connected).await;
    c
}

async fn poll(
    mut eventloop: EventLoop,
    tx: mpsc::UnboundedSender<Received>,
    acks: mpsc::UnboundedSender<Ack>,
) {
    loop {
        let ack = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = tx.send((p.payload.to_vec(), p.retain));
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => Ack::Connected,
            Ok(Event::Incoming(Packet::SubAck(_))) => Ack::Subscribed,
            Ok(Event::Incoming(Packet::PubAck(_))) => Ack::Published,
            Ok(_) => continue,
            Err(_) => return,
        };
        let _ = acks.send(ack);
    }
}

impl Client {
    async fn ack(&mut self, want: Ack) {
        let got = tokio::time::timeout(Duration::from_secs(10), self.acks.recv()).await;
        assert_eq!(got.ok().flatten(), Some(want));
    }

    async fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .unwrap();
        self.ack(Ack::Published).await;
    }

    async fn subscribe(&mut self, topic: &str) {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .unwrap();
        self.ack(Ack::Subscribed).await;
    }

    /// The next message, or `None` within 3 s.
    async fn next(&mut self) -> Option<Received> {
        tokio::time::timeout(Duration::from_secs(3), self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// What a fresh subscriber to `topic` gets first: the retained message if
/// there is one, else the non-retained probe published after subscribing.
async fn fresh_subscriber_sees(addr: &BrokerAddress, topic: &str, name: &str) -> Received {
    let mut s = client(addr, name, None).await;
    s.subscribe(topic).await;
    let mut p = client(addr, &format!("{name}-probe"), None).await;
    p.publish(topic, b"probe", false).await;
    s.next().await.expect("a fresh subscriber gets something")
}

/// The sequence of issue 12 item 2, with what each client received.
async fn retained_sequence(kind: BrokerKind) -> Vec<(&'static str, Option<Received>)> {
    common::init_logs();
    let broker = common::broker(kind);
    let addr = &broker.addr;
    let topic = "hearth-node/n1/announce";
    let tag = format!("{kind:?}").to_lowercase();
    let mut publisher = client(addr, &format!("retain-pub-{tag}"), None).await;
    let mut live = client(addr, &format!("retain-live-{tag}"), None).await;
    live.subscribe(topic).await;
    let mut seen = Vec::new();

    publisher.publish(topic, b"{\"name\":\"n1\"}", true).await;
    seen.push(("live: retained announce", live.next().await));
    publisher.publish(topic, b"", false).await;
    seen.push(("live: non-retained empty", live.next().await));
    seen.push((
        "fresh after non-retained empty",
        Some(fresh_subscriber_sees(addr, topic, &format!("retain-a-{tag}")).await),
    ));
    live.next().await; // the probe

    // Payloads that start like the front's mark come through unchanged.
    let marked = [EMPTY_MARK, b"x"].concat();
    publisher.publish(topic, &marked, true).await;
    seen.push(("live: retained marked", live.next().await));
    publisher.publish(topic, EMPTY_MARK, false).await;
    seen.push(("live: non-retained bare mark", live.next().await));
    seen.push((
        "fresh after marked",
        Some(fresh_subscriber_sees(addr, topic, &format!("retain-b-{tag}")).await),
    ));
    live.next().await;

    publisher.publish(topic, b"", true).await;
    seen.push(("live: retained empty", live.next().await));
    seen.push((
        "fresh after retained empty",
        Some(fresh_subscriber_sees(addr, topic, &format!("retain-c-{tag}")).await),
    ));
    live.next().await;

    // A last will, empty and not retained, leaves the retained message too.
    publisher.publish(topic, b"again", true).await;
    live.next().await;
    let will = rumqttc::LastWill::new(topic, Vec::<u8>::new(), QoS::AtLeastOnce, false);
    let dying = client(addr, &format!("retain-will-{tag}"), Some(will)).await;
    // A socket closed without DISCONNECT makes the broker send the will.
    dying.task.abort();
    seen.push(("live: empty will", live.next().await));
    seen.push((
        "fresh after empty will",
        Some(fresh_subscriber_sees(addr, topic, &format!("retain-d-{tag}")).await),
    ));
    seen
}

fn expected() -> Vec<(&'static str, Option<Received>)> {
    let marked = [EMPTY_MARK, b"x"].concat();
    vec![
        (
            "live: retained announce",
            Some((b"{\"name\":\"n1\"}".to_vec(), false)),
        ),
        ("live: non-retained empty", Some((vec![], false))),
        (
            "fresh after non-retained empty",
            Some((b"{\"name\":\"n1\"}".to_vec(), true)),
        ),
        ("live: retained marked", Some((marked.clone(), false))),
        (
            "live: non-retained bare mark",
            Some((EMPTY_MARK.to_vec(), false)),
        ),
        ("fresh after marked", Some((marked, true))),
        ("live: retained empty", Some((vec![], false))),
        (
            "fresh after retained empty",
            Some((b"probe".to_vec(), false)),
        ),
        ("live: empty will", Some((vec![], false))),
        ("fresh after empty will", Some((b"again".to_vec(), true))),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_retained_empty_publish_keeps_the_retained_message_on_both_brokers() {
    let (embedded, mosquitto) = tokio::join!(
        retained_sequence(BrokerKind::Embedded),
        retained_sequence(BrokerKind::Mosquitto)
    );
    assert_eq!(mosquitto, expected(), "Mosquitto is the reference");
    assert_eq!(
        embedded, mosquitto,
        "embedded broker differs from Mosquitto"
    );
}
