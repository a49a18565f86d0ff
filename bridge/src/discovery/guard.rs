//! Defends the bridge's own retained topics: `<base>/bridge/state`, device
//! availability and entity states and attributes. Anyone may publish on a
//! broker without topic rights; a retained `offline` left on
//! `hearth/bridge/state` by another client would mark every Hearth entity
//! unavailable in Home Assistant until the bridge restarts. The guard sees
//! such a message and publishes the bridge's own value again, retained.
//!
//! Who owns what: the publisher (and the guard itself, for the bridge state)
//! *claims* a topic with the payload it is about to publish
//! ([`Claims::publishing`]); the guard alone reads the topics back and
//! re-asserts. The guard knows its own publishes when they come back from
//! the broker (*echoes*), in order, so they never trigger it: no loop.
//! A foreign message that arrives while an echo of ours is still on its
//! way needs nothing either, since the broker delivers in the order it
//! stored, so our publish lands after it. The guard stops at the bridge's
//! shutdown signal, before the bridge publishes `offline` itself, so it
//! never fights the bridge's own `offline` nor its last will. The same code
//! runs against the embedded broker and an external one.

use super::Topics;
use crate::broker::{Message, MqttLink, excerpt};
use crate::shutdown::Shutdown;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Shortest time between two re-assertions of one topic: a fight with
/// another client (a second Hearth on the same base topic, a script) costs
/// one publish a second per topic, not a loop. Home Assistant sees the
/// bridge's value again within this.
pub const MIN_GAP: Duration = Duration::from_secs(1);
/// How long an own publish may take to come back from the broker before
/// it is forgotten (a publish lost in a reconnect never comes back);
/// loopback and a LAN take milliseconds.
const ECHO_WAIT: Duration = Duration::from_secs(5);
/// Own publishes awaited per topic; more are older than anything still on
/// its way under any real load.
const MAX_ECHOES: usize = 16;

struct Claim {
    payload: Vec<u8>,
    /// Payloads published and not yet seen back, oldest first.
    echoes: VecDeque<(Vec<u8>, Instant)>,
}

/// The payload the bridge last published on each topic it defends.
/// Cheap to clone; clones share the table.
#[derive(Clone)]
pub struct Claims {
    topics: Topics,
    table: Arc<Mutex<HashMap<String, Claim>>>,
}

impl Claims {
    pub fn new(topics: Topics) -> Claims {
        Claims {
            topics,
            table: Default::default(),
        }
    }

    /// Called before publishing `payload` retained on `topic`. Claims the
    /// topic if it is one the guard defends (bridge state, availability,
    /// state, attributes); an empty payload gives it up.
    pub fn publishing(&self, topic: &str, payload: &[u8]) {
        if !self.defends(topic) {
            return;
        }
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if payload.is_empty() {
            table.remove(topic);
            return;
        }
        let claim = table.entry(topic.to_string()).or_insert_with(|| Claim {
            payload: Vec::new(),
            echoes: VecDeque::new(),
        });
        claim.payload = payload.to_vec();
        if claim.echoes.len() == MAX_ECHOES {
            claim.echoes.pop_front();
        }
        claim.echoes.push_back((payload.to_vec(), Instant::now()));
    }

    fn defends(&self, topic: &str) -> bool {
        let Some(rest) = topic
            .strip_prefix(self.topics.base.as_str())
            .and_then(|r| r.strip_prefix('/'))
        else {
            return false;
        };
        let levels: Vec<&str> = rest.split('/').collect();
        matches!(
            levels.as_slice(),
            ["bridge", "state"] | [_, "availability"] | [_, _, "state" | "attributes"]
        )
    }

    /// What a message seen on a defended topic calls for: the payload to
    /// publish again, or `None` (an echo, the claimed value, not ours, or
    /// our own publish still on its way will land after it).
    fn seen(&self, topic: &str, payload: &[u8], now: Instant) -> Option<Vec<u8>> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let claim = table.get_mut(topic)?;
        while claim
            .echoes
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) > ECHO_WAIT)
        {
            claim.echoes.pop_front();
        }
        if let Some(i) = claim.echoes.iter().position(|(p, _)| p == payload) {
            claim.echoes.drain(..=i);
            return None;
        }
        if payload == claim.payload || !claim.echoes.is_empty() {
            return None;
        }
        Some(claim.payload.clone())
    }

    /// The claimed payload, noted as published again.
    fn reassert(&self, topic: &str) -> Option<Vec<u8>> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let claim = table.get_mut(topic)?;
        claim
            .echoes
            .push_back((claim.payload.clone(), Instant::now()));
        Some(claim.payload.clone())
    }
}

/// The guard's subscriptions, made before it runs so nothing is missed.
pub struct Guard {
    link: MqttLink,
    claims: Claims,
    inbox: [mpsc::Receiver<Message>; 4],
}

impl Guard {
    /// Subscribes to the defended topics and claims the bridge state
    /// (`online`: the link's birth message).
    pub fn subscribe(link: &MqttLink, claims: Claims) -> anyhow::Result<Guard> {
        let t = &claims.topics;
        let base = &t.base;
        let filters = [
            t.bridge_state(),
            format!("{base}/+/availability"),
            format!("{base}/+/+/state"),
            format!("{base}/+/+/attributes"),
        ];
        let [a, b, c, d] = filters.each_ref().map(|f| link.subscribe(f));
        let inbox = [a?, b?, c?, d?];
        claims.publishing(&t.bridge_state(), b"online");
        Ok(Guard {
            link: link.clone(),
            claims,
            inbox,
        })
    }

    /// Runs until `shutdown`.
    pub async fn run(self, mut shutdown: Shutdown) {
        let Guard {
            link,
            claims,
            inbox: [mut a, mut b, mut c, mut d],
        } = self;
        let mut last: HashMap<String, Instant> = HashMap::new();
        let mut due: BTreeSet<String> = BTreeSet::new();
        let mut tick = tokio::time::interval(MIN_GAP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let msg = tokio::select! {
                _ = shutdown.wait() => break,
                Some(msg) = a.recv() => msg,
                Some(msg) = b.recv() => msg,
                Some(msg) = c.recv() => msg,
                Some(msg) = d.recv() => msg,
                _ = tick.tick(), if !due.is_empty() => {
                    let now = Instant::now();
                    for topic in std::mem::take(&mut due) {
                        reassert(&link, &claims, &topic).await;
                        last.insert(topic, now);
                    }
                    last.retain(|_, t| now.duration_since(*t) < MIN_GAP);
                    continue;
                }
                else => break,
            };
            let now = Instant::now();
            if claims.seen(&msg.topic, &msg.payload, now).is_none() {
                continue;
            }
            tracing::warn!(
                "{} was overwritten by another client with {:?}; publishing the bridge's own value again (is another Hearth using base topic `{}`?)",
                msg.topic,
                excerpt(&msg.payload),
                claims.topics.base
            );
            if last
                .get(&msg.topic)
                .is_some_and(|t| now.duration_since(*t) < MIN_GAP)
            {
                due.insert(msg.topic);
            } else {
                reassert(&link, &claims, &msg.topic).await;
                last.insert(msg.topic, now);
            }
        }
    }
}

async fn reassert(link: &MqttLink, claims: &Claims, topic: &str) {
    let Some(payload) = claims.reassert(topic) else {
        return; // given up since (the device went away)
    };
    if let Err(e) = link.publish(topic, payload, true).await {
        tracing::error!("{e:#}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `seen` answers to a message on `topic`.
    fn seen(claims: &Claims, topic: &str, payload: &str, now: Instant) -> Option<Vec<u8>> {
        claims.seen(topic, payload.as_bytes(), now)
    }

    #[test]
    fn own_echoes_and_overtaken_messages_are_left_alone() {
        let claims = Claims::new(Topics::default());
        let t = "hearth/plug/availability";
        let now = Instant::now();
        claims.publishing(t, b"online");
        claims.publishing(t, b"offline");
        // Someone else's `online` arrives before our `offline` lands.
        assert_eq!(seen(&claims, t, "weird", now), None);
        assert_eq!(seen(&claims, t, "online", now), None);
        assert_eq!(seen(&claims, t, "offline", now), None);
        // Now nothing of ours is on its way: an overwrite is answered.
        assert_eq!(seen(&claims, t, "online", now), Some(b"offline".to_vec()));
        assert_eq!(seen(&claims, t, "offline", now), None, "the claimed value");
    }

    #[test]
    fn only_the_bridges_own_topics_are_defended() {
        let claims = Claims::new(Topics::default());
        for (topic, defended) in [
            ("hearth/bridge/state", true),
            ("hearth/plug/availability", true),
            ("hearth/plug/power/state", true),
            ("hearth/plug/power/attributes", true),
            ("hearth/plug/power/set", false),
            ("hearth/bridge/request/x", false),
            ("homeassistant/device/plug/config", false),
            ("hearthx/plug/availability", false),
        ] {
            assert_eq!(claims.defends(topic), defended, "{topic}");
        }
        // An empty payload gives the claim up; a lost echo is forgotten.
        claims.publishing("hearth/plug/power/state", b"12");
        claims.publishing("hearth/plug/power/state", b"");
        assert_eq!(
            seen(&claims, "hearth/plug/power/state", "0", Instant::now()),
            None
        );
        claims.publishing("hearth/plug/availability", b"online");
        let later = Instant::now() + ECHO_WAIT * 2;
        assert_eq!(
            seen(&claims, "hearth/plug/availability", "offline", later),
            Some(b"online".to_vec())
        );
    }
}
