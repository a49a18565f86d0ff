//! The bridge's one MQTT client connection (rumqttc), shared by every part.
//!
//! Parts `subscribe` to topic filters and get their own queue of matching
//! messages; the link re-subscribes after a reconnect, publishes the birth
//! message on every connect and leaves a last will, so `hearth/bridge/state`
//! is `offline` whenever the bridge is gone, cleanly or not.
//!
//! A subscription ends when its receiver is dropped: the link then sends
//! the broker an UNSUBSCRIBE for its filter (unless another live
//! subscription has the same filter) and does not subscribe it again after
//! a reconnect. A [`Subscription`] does this at once when dropped; a bare
//! receiver from [`MqttLink::subscribe`] at the next message or connect.

use anyhow::{Context, bail};
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Outgoing, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};

/// Where the broker is: `mqtt://[user[:password]@]host[:port]`, or
/// `mqtts://…` (TLS, port 8883 by default; the CA is `[mqtt] ca_file` or
/// Mozilla's roots, see [`super::client`]). Debug and Display never show
/// the password.
#[derive(Clone)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// TLS towards the broker (`mqtts://`), `None` for plain MQTT.
    pub tls: Option<super::client::ClientTls>,
}

impl PartialEq for BrokerAddress {
    fn eq(&self, other: &Self) -> bool {
        (
            &self.host,
            self.port,
            &self.username,
            &self.password,
            self.tls.is_some(),
        ) == (
            &other.host,
            other.port,
            &other.username,
            &other.password,
            other.tls.is_some(),
        )
    }
}

impl std::fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAddress")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .finish()
    }
}

impl BrokerAddress {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        // Errors never quote the text: it may hold a password.
        let url = url::Url::parse(text).context(
            "the MQTT URL is not a URL (expected mqtt://host:port or mqtts://host:port)",
        )?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => bail!(
                "MQTT URL `{}`: scheme `{other}` is not supported (expected mqtt:// or mqtts://)",
                redacted(&url)
            ),
        };
        let host = url.host_str().filter(|h| !h.is_empty());
        let host = host.with_context(|| format!("MQTT URL `{}` has no host", redacted(&url)))?;
        Ok(BrokerAddress {
            host: host.trim_matches(['[', ']']).to_string(),
            port: url.port().unwrap_or(if tls { 8883 } else { 1883 }),
            username: Some(url.username()).filter(|u| !u.is_empty()).map(decode),
            password: url.password().map(decode),
            tls: tls.then(super::client::ClientTls::default),
        })
    }

    /// Trusts the CA in `ca_file` (an `mqtts://` address only; a CA for a
    /// plain address is a configuration error, named).
    pub fn with_ca_file(mut self, ca_file: Option<&std::path::Path>) -> anyhow::Result<Self> {
        if let Some(path) = ca_file {
            anyhow::ensure!(
                self.tls.is_some(),
                "[mqtt] ca_file is set but the url is plain mqtt://: use mqtts://{}:8883",
                self.host
            );
            self.tls = Some(super::client::ClientTls::with_ca_file(path)?);
        }
        Ok(self)
    }

    pub fn local(port: u16) -> Self {
        BrokerAddress {
            host: "127.0.0.1".into(),
            port,
            username: None,
            password: None,
            tls: None,
        }
    }
}

/// The URL without its password, for messages.
fn redacted(url: &url::Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

/// URL user info is percent-encoded (`p%40ss` for `p@ss`); brokers want it plain.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

impl std::fmt::Display for BrokerAddress {
    // Never shows the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// One received publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
    /// This message's share of its subscription's [`SUB_QUEUE_BYTES`],
    /// given back when the last clone is dropped.
    _queued: Option<Arc<OwnedSemaphorePermit>>,
}

/// A short, printable excerpt of an external payload for error messages
/// (at most 120 characters, cut on a character boundary).
pub fn excerpt(payload: &[u8]) -> String {
    let text = String::from_utf8_lossy(payload);
    match text.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.into_owned(),
    }
}

impl Message {
    /// The payload as text, lossily (for logs and simple payloads).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.payload)
    }

    /// A message as a subscription would hand it over (unit tests of
    /// drivers' message handling).
    #[cfg(test)]
    pub(crate) fn for_test(topic: &str, payload: &str, retain: bool) -> Message {
        Message {
            topic: topic.into(),
            payload: Bytes::from(payload.to_owned()),
            retain,
            _queued: None,
        }
    }
}

/// Connection options: identity, last will and birth message.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub client_id: String,
    /// (topic, payload) published retained by the broker if we vanish.
    pub will: Option<(String, String)>,
    /// (topic, payload) published retained on every connect.
    pub birth: Option<(String, String)>,
}

struct Sub {
    filter: String,
    tx: mpsc::Sender<Message>,
    /// Who subscribed ([`MqttLink::for_driver`]): counts what it is handed.
    traffic: Arc<Traffic>,
    /// Bytes (topic + payload) this subscription may have queued.
    queued_bytes: Arc<Semaphore>,
}

struct Shared {
    subs: Mutex<(bool, Vec<Sub>)>,
    stopping: AtomicBool,
    /// SUBSCRIBEs and UNSUBSCRIBEs sent on the current connection, and
    /// their SUBACKs and UNSUBACKs received.
    subacks: watch::Sender<SubAcks>,
    /// PUBLISHes received from the broker, on every subscription.
    received: AtomicU64,
    /// Messages in and out per part of the bridge (`GET /metrics`).
    traffic: Mutex<Vec<Arc<Traffic>>>,
    /// CONNACKs received: 1 after the first connection, +1 per reconnection.
    connections: watch::Sender<u64>,
    /// The broker, for messages (never with its password).
    addr: String,
}

/// Messages one part of the bridge (a driver, discovery) was handed and
/// published through the link; read by [`crate::metrics`] at scrape time.
#[derive(Debug)]
struct Traffic {
    label: &'static str,
    received: AtomicU64,
    published: AtomicU64,
}

impl Traffic {
    fn new(label: &'static str) -> Arc<Traffic> {
        Arc::new(Traffic {
            label,
            received: AtomicU64::new(0),
            published: AtomicU64::new(0),
        })
    }
}

/// The label of what the link does for no named part (birth message,
/// the API's own publishes, links made without [`MqttLink::for_driver`]).
pub const BRIDGE_TRAFFIC: &str = "bridge";

#[derive(Debug, Clone, Copy, Default)]
struct SubAcks {
    requested: u64,
    acked: u64,
}

/// Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct MqttLink {
    client: AsyncClient,
    shared: Arc<Shared>,
    connected: watch::Receiver<bool>,
    /// Where this clone's subscriptions and publishes are counted.
    traffic: Arc<Traffic>,
}

/// Queue length per subscription, in messages; a full queue slows the link
/// (MQTT backpressure: the broker keeps, then rolls over, what the bridge
/// has not read) rather than dropping messages here.
const SUB_QUEUE: usize = 1024;
/// Queue size per subscription, in bytes of topic + payload not yet
/// consumed. Counting messages alone let a flood of 200 KB payloads queue
/// 4096 × 200 KB = 800 MB per subscription; 4 MiB is thousands of a home's
/// messages and 16 of the largest ([`MAX_PAYLOAD`](super::embedded::MAX_PAYLOAD)),
/// so the bridge's own queues stay under `subscriptions × 4 MiB`.
pub const SUB_QUEUE_BYTES: usize = 4 * 1024 * 1024;

impl MqttLink {
    /// Connects and waits (up to 10 s) for the broker's CONNACK.
    pub async fn connect(addr: &BrokerAddress, opts: LinkOptions) -> anyhow::Result<Self> {
        let mut mqtt = super::client::options(&opts.client_id, addr)?;
        mqtt.set_keep_alive(Duration::from_secs(30));
        mqtt.set_max_packet_size(
            super::embedded::MAX_PAYLOAD + 1024,
            super::embedded::MAX_PAYLOAD + 1024,
        );
        mqtt.set_clean_session(true);
        if let Some((topic, payload)) = &opts.will {
            mqtt.set_last_will(LastWill::new(
                topic,
                payload.as_bytes().to_vec(),
                QoS::AtLeastOnce,
                true,
            ));
        }
        let (client, mut eventloop) = AsyncClient::new(mqtt, 4096);
        // Each state publish out at once: with Nagle a burst of small
        // publishes (a switch and its meters) waits ~40 ms for the ACK of
        // the first (benches/push_latency.rs: p50 42 ms → under 1 ms).
        eventloop.network_options.set_tcp_nodelay(true);
        let shared = Arc::new(Shared {
            subs: Mutex::new((false, Vec::new())),
            stopping: AtomicBool::new(false),
            subacks: watch::channel(SubAcks::default()).0,
            received: AtomicU64::new(0),
            traffic: Mutex::new(vec![Traffic::new(BRIDGE_TRAFFIC)]),
            connections: watch::channel(0).0,
            addr: addr.to_string(),
        });
        let (connected_tx, connected) = watch::channel(false);
        let traffic = shared.traffic.lock().unwrap_or_else(|e| e.into_inner())[0].clone();
        let link = MqttLink {
            client,
            shared,
            connected,
            traffic,
        };
        tokio::spawn(run(
            eventloop,
            link.clone(),
            opts.birth,
            connected_tx,
            addr.to_string(),
        ));

        let mut connected = link.connected.clone();
        match tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|c| *c)).await {
            Ok(Ok(_)) => Ok(link),
            _ => bail!("cannot connect to the MQTT broker at {addr} within 10 s"),
        }
    }

    /// Messages on topics matching `filter` (MQTT wildcards), QoS 1.
    pub fn subscribe(&self, filter: &str) -> anyhow::Result<mpsc::Receiver<Message>> {
        if !rumqttc::valid_filter(filter) {
            bail!("`{filter}` is not a valid MQTT topic filter");
        }
        let (tx, rx) = mpsc::channel(SUB_QUEUE);
        let mut subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.1.push(Sub {
            filter: filter.into(),
            tx,
            queued_bytes: Arc::new(Semaphore::new(SUB_QUEUE_BYTES)),
            traffic: self.traffic.clone(),
        });
        if subs.0 {
            if let Err(e) = self.client.try_subscribe(filter, QoS::AtLeastOnce) {
                // Never at the broker: an UNSUBSCRIBE for it would get no
                // UNSUBACK from rumqttd and stall `subscriptions_settled`.
                subs.1.pop();
                return Err(e).with_context(|| format!("subscribing to `{filter}`"));
            }
            self.shared.subacks.send_modify(|a| a.requested += 1);
        }
        Ok(rx)
    }

    /// Messages on topics matching `filter`, as a [`Subscription`]: when it
    /// is dropped (its task aborted, say), the broker is told at once.
    pub fn subscription(&self, filter: &str) -> anyhow::Result<Subscription> {
        Ok(Subscription {
            rx: Some(self.subscribe(filter)?),
            link: self.clone(),
        })
    }

    /// Whether a live subscription (its receiver not dropped) has `filter`.
    pub fn is_subscribed(&self, filter: &str) -> bool {
        let subs = self.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        subs.1
            .iter()
            .any(|s| s.filter == filter && !s.tx.is_closed())
    }

    /// PUBLISHes received from the broker so far, on all subscriptions.
    pub fn messages_received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// The same connection, counting this clone's subscriptions and
    /// publishes under `label` (a driver's name) in [`Self::traffic`].
    pub fn for_driver(&self, label: &'static str) -> MqttLink {
        let mut all = self
            .shared
            .traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let traffic = match all.iter().find(|t| t.label == label) {
            Some(t) => t.clone(),
            None => {
                let t = Traffic::new(label);
                all.push(t.clone());
                t
            }
        };
        MqttLink {
            traffic,
            ..self.clone()
        }
    }

    /// `(label, messages handed to its subscriptions, messages it
    /// published)` per label, in the order labels first appeared. A
    /// message matching subscriptions of two labels counts for both.
    pub fn traffic(&self) -> Vec<(&'static str, u64, u64)> {
        let all = self
            .shared
            .traffic
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.iter()
            .map(|t| {
                (
                    t.label,
                    t.received.load(Ordering::Relaxed),
                    t.published.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Waits until the broker acknowledged every SUBSCRIBE and UNSUBSCRIBE
    /// sent so far (SUBACK, UNSUBACK), at most `timeout`; false if it did
    /// not. A message published after this returned true reaches every
    /// live subscription, and no ended one.
    pub async fn subscriptions_settled(&self, timeout: Duration) -> bool {
        let target = self.shared.subacks.borrow().requested;
        let mut rx = self.shared.subacks.subscribe();
        // A reconnect re-subscribes everything; `acked` then counts anew
        // from where it stood, so the target stays reachable.
        tokio::time::timeout(timeout, rx.wait_for(|a| a.acked >= target))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Publishes at QoS 1.
    ///
    /// A message that is not retained (a command to a device, an event, a
    /// reply) is refused while the link is down: rumqttc would queue it and
    /// send it when the broker is back, and a command executed minutes late
    /// (the heater switched on after the user gave up) is worse than one
    /// refused with a clear error. A retained message (a state, a config)
    /// is queued: the latest one is what counts, and the discovery
    /// publisher republishes everything at the reconnection anyway.
    /// (With a clean session rumqttc drops what it had in flight at the
    /// reconnection; a publish that passed this check in the instant before
    /// the drop was noticed is queued, reported sent, and dropped.)
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> anyhow::Result<()> {
        if !retain && !self.is_connected() {
            bail!(
                "the MQTT broker {} is unreachable: `{topic}` not sent (a command is never sent late)",
                self.shared.addr
            );
        }
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.into())
            .await
            .with_context(|| format!("publishing to `{topic}`"))?;
        self.traffic.published.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Connections made so far (1 once connected, +1 per reconnection);
    /// `changed()` fires at each reconnection, after the link re-subscribed
    /// and published its birth message.
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.shared.connections.subscribe()
    }

    /// Sends DISCONNECT after everything queued before it, then stops.
    /// Everything published before it reaches the broker (up to 2 s).
    pub async fn disconnect(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let _ = self.client.disconnect().await;
        let mut connected = self.connected.clone();
        let _ = tokio::time::timeout(Duration::from_secs(2), connected.wait_for(|c| !*c)).await;
    }
}

async fn run(
    mut eventloop: EventLoop,
    link: MqttLink,
    birth: Option<(String, String)>,
    connected: watch::Sender<bool>,
    addr: String,
) {
    // Runs until its owner calls `disconnect` (the bridge publishes
    // `offline` first, so the link must outlive every other task).
    let mut failures = 0u32;
    loop {
        let event = eventloop.poll().await;
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                link.shared.received.fetch_add(1, Ordering::Relaxed);
                let msg = Message {
                    topic: p.topic,
                    payload: p.payload,
                    retain: p.retain,
                    _queued: None,
                };
                dispatch(&link, msg).await;
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                failures = 0;
                on_connect(&link, birth.as_ref());
                let _ = connected.send(true);
                link.shared.connections.send_modify(|n| *n += 1);
                tracing::info!("connected to MQTT broker {addr}");
            }
            Ok(Event::Incoming(Packet::SubAck(_) | Packet::UnsubAck(_))) => {
                link.shared.subacks.send_modify(|a| a.acked += 1);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Let the DISCONNECT reach the socket.
                let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
                break;
            }
            Ok(_) => {}
            Err(e) => {
                if link.shared.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let _ = connected.send(false);
                failures += 1;
                let delay = Duration::from_millis(200 * u64::from(failures.min(25)));
                tracing::warn!("MQTT connection to {addr} lost: {e}; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
            }
        }
    }
    let _ = connected.send(false);
}

fn on_connect(link: &MqttLink, birth: Option<&(String, String)>) {
    let mut subs = link.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
    subs.0 = true;
    // SUBSCRIBEs of a lost connection are never acknowledged: count anew.
    link.shared.subacks.send_modify(|a| a.requested = a.acked);
    // Ended subscriptions are not subscribed again (the session is clean).
    subs.1.retain(|s| !s.tx.is_closed());
    for sub in &subs.1 {
        match link.client.try_subscribe(&sub.filter, QoS::AtLeastOnce) {
            Ok(()) => link.shared.subacks.send_modify(|a| a.requested += 1),
            Err(e) => tracing::error!("re-subscribing to `{}` failed: {e}", sub.filter),
        }
    }
    if let Some((topic, payload)) = birth
        && let Err(e) =
            link.client
                .try_publish(topic, QoS::AtLeastOnce, true, payload.as_bytes().to_vec())
    {
        tracing::error!("publishing birth message failed: {e}");
    }
}

async fn dispatch(link: &MqttLink, msg: Message) {
    let targets: Vec<(mpsc::Sender<Message>, Arc<Semaphore>, Arc<Traffic>)> = {
        let mut subs = link.shared.subs.lock().unwrap_or_else(|e| e.into_inner());
        release_closed(link, &mut subs);
        subs.1
            .iter()
            .filter(|s| rumqttc::matches(&msg.topic, &s.filter))
            .map(|s| (s.tx.clone(), s.queued_bytes.clone(), s.traffic.clone()))
            .collect()
    };
    let size = queued_size(&msg);
    for (tx, queued_bytes, traffic) in targets {
        // Waits (backpressure) while the subscription holds its byte budget;
        // the semaphore is never closed, so this only fails if it were.
        let Ok(permit) = queued_bytes.acquire_many_owned(size).await else {
            continue;
        };
        let mut msg = msg.clone();
        msg._queued = Some(Arc::new(permit));
        if tx.send(msg).await.is_ok() {
            traffic.received.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// [`MqttLink::release_closed`], under the lock of `subs`.
fn release_closed(link: &MqttLink, subs: &mut (bool, Vec<Sub>)) {
    if subs.1.iter().all(|s| !s.tx.is_closed()) {
        return;
    }
    let (ended, live): (Vec<Sub>, Vec<Sub>) = std::mem::take(&mut subs.1)
        .into_iter()
        .partition(|s| s.tx.is_closed());
    subs.1 = live;
    if !subs.0 {
        return; // never connected: nothing was subscribed at the broker
    }
    let mut filters: Vec<String> = ended.into_iter().map(|s| s.filter).collect();
    filters.sort();
    filters.dedup();
    for filter in filters {
        if subs.1.iter().any(|s| s.filter == filter) {
            continue;
        }
        match link.client.try_unsubscribe(filter.clone()) {
            Ok(()) => link.shared.subacks.send_modify(|a| a.requested += 1),
            Err(e) => tracing::warn!("unsubscribing from `{filter}` failed: {e}"),
        }
    }
}

/// A subscription's messages; dropping it ends the subscription at the
/// broker at once (UNSUBSCRIBE, unless another live subscription has the
/// same filter).
pub struct Subscription {
    rx: Option<mpsc::Receiver<Message>>,
    link: MqttLink,
}

impl Subscription {
    /// The next message; `None` once the link is gone.
    pub async fn recv(&mut self) -> Option<Message> {
        self.rx.as_mut()?.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Under the lock: no one sees the subscription ended before its
        // UNSUBSCRIBE is counted for `subscriptions_settled`.
        let mut subs = self
            .link
            .shared
            .subs
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        drop(self.rx.take());
        release_closed(&self.link, &mut subs);
    }
}

/// What a message counts against [`SUB_QUEUE_BYTES`]: topic + payload,
/// capped at the budget so one message always fits.
fn queued_size(msg: &Message) -> u32 {
    let bytes = (msg.topic.len() + msg.payload.len()).min(SUB_QUEUE_BYTES);
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// A link to the local broker on `port` without will or birth, for tests.
#[cfg(test)]
pub(crate) async fn test_link(port: u16, id: &str) -> MqttLink {
    let opts = LinkOptions {
        client_id: id.into(),
        will: None,
        birth: None,
    };
    MqttLink::connect(&BrokerAddress::local(port), opts)
        .await
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_and_never_print_passwords() {
        let a = BrokerAddress::parse("mqtt://user:secret@broker.lan:1884").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("broker.lan", 1884));
        assert_eq!(a.username.as_deref(), Some("user"));
        assert_eq!(a.password.as_deref(), Some("secret"));
        assert_eq!(a.to_string(), "mqtt://broker.lan:1884");
        let a = BrokerAddress::parse("mqtt://me:p%40ss%3Aw@h").unwrap();
        assert_eq!(a.password.as_deref(), Some("p@ss:w"));
        assert_eq!(BrokerAddress::parse("mqtt://127.0.0.1").unwrap().port, 1883);
        let err = BrokerAddress::parse("http://u:hunter2@x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scheme `http`"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        assert!(!format!("{a:?}").contains("p@ss"));
        let a = BrokerAddress::parse("mqtts://u:pw@broker.lan").unwrap();
        assert_eq!((a.port, a.tls.is_some()), (8883, true));
        assert_eq!(a.to_string(), "mqtts://broker.lan:8883");
        assert!(BrokerAddress::parse("not a url").is_err());
    }

    const WAIT: Duration = Duration::from_secs(10);

    use super::test_link as link;

    async fn next(rx: &mut mpsc::Receiver<Message>) -> Message {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("a message within 10 s")
            .unwrap()
    }

    /// Publishes on `topic`, then on `t/ctl`, and returns how many PUBLISHes
    /// `link` got from the broker once `t/ctl`'s arrived: 1 when `topic` is
    /// not subscribed at the broker any more.
    async fn received_for(
        link: &MqttLink,
        publisher: &MqttLink,
        ctl: &mut mpsc::Receiver<Message>,
        topic: &str,
    ) -> u64 {
        assert!(
            link.subscriptions_settled(WAIT).await,
            "UNSUBACK within 10 s"
        );
        let before = link.messages_received();
        publisher.publish(topic, "x", false).await.unwrap();
        publisher.publish("t/ctl", "after", false).await.unwrap();
        assert_eq!(next(ctl).await.text(), "after");
        link.messages_received() - before
    }

    #[tokio::test]
    async fn ended_subscriptions_are_unsubscribed_at_the_broker() {
        let port = crate::broker::EmbeddedBroker::free_port();
        let _broker =
            crate::broker::EmbeddedBroker::start(std::net::Ipv4Addr::LOCALHOST.into(), port)
                .unwrap();
        let link = link(port, "t-sub").await;
        let publisher = link_for_publishing(port).await;
        let mut ctl = link.subscribe("t/ctl").unwrap();
        let mut sub = link.subscription("t/a").unwrap();
        let bare = link.subscribe("t/b").unwrap();
        let x1 = link.subscription("t/x").unwrap();
        let mut x2 = link.subscription("t/x").unwrap();
        assert!(link.subscriptions_settled(WAIT).await);
        publisher.publish("t/a", "1", false).await.unwrap();
        let got = tokio::time::timeout(WAIT, sub.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.text(), "1");

        // A dropped Subscription: UNSUBSCRIBE at once.
        drop(sub);
        assert!(!link.is_subscribed("t/a"));
        assert_eq!(received_for(&link, &publisher, &mut ctl, "t/a").await, 1);

        // A dropped bare receiver: at the link's next message.
        drop(bare);
        publisher.publish("t/ctl", "wake", false).await.unwrap();
        assert_eq!(next(&mut ctl).await.text(), "wake");
        assert_eq!(received_for(&link, &publisher, &mut ctl, "t/b").await, 1);

        // Another live subscription with the same filter keeps it.
        drop(x1);
        assert!(link.is_subscribed("t/x"));
        assert_eq!(received_for(&link, &publisher, &mut ctl, "t/x").await, 2);
        let got = tokio::time::timeout(WAIT, x2.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.text(), "x");
    }

    async fn link_for_publishing(port: u16) -> MqttLink {
        link(port, "t-pub").await
    }
}
