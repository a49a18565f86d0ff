//! Asks the broker whether it holds a retained message on a topic, over a
//! short connection of its own. Used by the ESP32 node driver to tell a
//! deleted retained announce from a stray empty message (see
//! `esp32_node`, "Removing a node").
//!
//! Why a connection of its own: a broker sends the retained messages that
//! match a SUBSCRIBE's filter right after it (MQTT 3.1.1 §3.3.1.3), and a
//! new connection's subscription is always new. The bridge's shared link
//! cannot re-ask: rumqttd 0.20 re-sends retained messages only for a filter
//! the connection did not have (`router/routing.rs`, `prepare_filter`),
//! although §3.8.4 asks it to on every SUBSCRIBE.

use crate::broker::BrokerAddress;
use bytes::Bytes;
use rumqttc::{AsyncClient, Event, Packet, QoS};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How long after the SUBACK a retained message may still come: brokers
/// send it with or right after the SUBACK (Mosquitto in the same write,
/// rumqttd at the router's next turn), milliseconds on a LAN; this is
/// generous so a busy broker is not read as "nothing retained".
pub const AFTER_SUBACK: Duration = Duration::from_millis(500);

/// The retained message on `topic` (`None`: the broker holds none), asked
/// over a new connection to `broker` that gives up after `within` (an
/// error: no answer, so no conclusion).
pub async fn retained_message(
    broker: &BrokerAddress,
    topic: &str,
    within: Duration,
) -> anyhow::Result<Option<Bytes>> {
    static N: AtomicU64 = AtomicU64::new(0);
    // A random part too: two bridges in containers (both PID 1) on one
    // external broker would otherwise share ids and kick each other's check.
    let client_id = format!(
        "hearth-retained-check-{}-{:08x}-{}",
        std::process::id(),
        fastrand::u32(..),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut opts = crate::broker::client::options(&client_id, broker)?;
    opts.set_clean_session(true);
    opts.set_keep_alive(Duration::from_secs(10));
    let max = crate::broker::embedded::MAX_PAYLOAD + 1024;
    opts.set_max_packet_size(max, max);
    let (client, mut events) = AsyncClient::new(opts, 8);
    client.subscribe(topic, QoS::AtMostOnce).await?;
    let answer = wait_for_retained(&mut events, topic, within).await;
    let _ = client.try_disconnect();
    // Lets the DISCONNECT reach the socket; the connection ends either way.
    let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
    answer
}

async fn wait_for_retained(
    events: &mut rumqttc::EventLoop,
    topic: &str,
    within: Duration,
) -> anyhow::Result<Option<Bytes>> {
    let deadline = Instant::now() + within;
    let mut answered_by = None;
    loop {
        let until = answered_by.map_or(deadline, |t: Instant| t.min(deadline));
        match tokio::time::timeout_at(until, events.poll()).await {
            Err(_) if answered_by.is_some() => return Ok(None),
            Err(_) => anyhow::bail!("{}: no SUBACK within {within:?}", broker_name(topic)),
            Ok(Err(e)) => anyhow::bail!("{}: {e}", broker_name(topic)),
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                if p.topic == topic && p.retain && !p.payload.is_empty() {
                    return Ok(Some(p.payload));
                }
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                answered_by = Some(Instant::now() + AFTER_SUBACK);
            }
            Ok(Ok(_)) => {}
        }
    }
}

fn broker_name(topic: &str) -> String {
    format!("asking the broker for the retained message on {topic}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::EmbeddedBroker;

    /// Publishes until the broker acknowledges. A connection the broker
    /// drops is retried with a new client, as any client does: right after
    /// `EmbeddedBroker::start` the broker may still be coming up (seen once
    /// in CI: `ConnectionAborted` before the PUBACK); publishing the same
    /// message again is harmless.
    async fn publish(addr: &BrokerAddress, topic: &str, payload: &[u8], retain: bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let opts = rumqttc::MqttOptions::new("retained-test-publisher", &addr.host, addr.port);
            let (client, mut events) = AsyncClient::new(opts, 8);
            client
                .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
                .await
                .unwrap();
            // Until the broker acknowledged it.
            let acked = loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => break true,
                    Ok(_) => {}
                    Err(e) => {
                        assert!(
                            tokio::time::Instant::now() < deadline,
                            "the broker never acknowledged the publish: {e}"
                        );
                        break false;
                    }
                }
            };
            if acked {
                client.disconnect().await.unwrap();
                let _ = tokio::time::timeout(Duration::from_millis(200), events.poll()).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn answers_what_the_embedded_broker_retains_every_time_it_is_asked() {
        let b = EmbeddedBroker::start(
            std::net::Ipv4Addr::LOCALHOST.into(),
            EmbeddedBroker::free_port(),
        )
        .unwrap();
        let addr = BrokerAddress::local(b.addr.port());
        let topic = "hearth-node/n/announce";
        let ask = || retained_message(&addr, topic, Duration::from_secs(5));
        publish(&addr, topic, b"{}", true).await;
        // Asked twice: a new connection each time gets the retained message.
        assert_eq!(ask().await.unwrap().as_deref(), Some(&b"{}"[..]));
        assert_eq!(ask().await.unwrap().as_deref(), Some(&b"{}"[..]));
        publish(&addr, topic, b"", true).await; // deletes it
        assert_eq!(ask().await.unwrap(), None);
        // Nobody listening: an error, not "nothing retained".
        let nobody = BrokerAddress::local(EmbeddedBroker::free_port());
        assert!(
            retained_message(&nobody, topic, Duration::from_millis(300))
                .await
                .is_err()
        );
    }
}
