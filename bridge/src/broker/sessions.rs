//! Client-id takeover, done by the front before rumqttd sees it.
//!
//! MQTT 3.1.1 §3.1.4: when a client connects with the client id of a
//! connected client, the server disconnects the existing one. rumqttd 0.20
//! gets this wrong when the two connections overlap: the new connection
//! reuses the old one's slot, the old link's late `Disconnect` then removes
//! the *new* connection, and the client that just connected is dropped
//! (`router-drop error=Recv(Disconnected)`, "Connection was scheduled
//! multiple times in readyqueue"). Devices hit this every time they
//! reconnect before the broker noticed their old half-open connection, and
//! a client whose CONNACK was late (a busy machine) hits it on its retry;
//! a client with a clean session then loses the subscriptions it sent
//! meanwhile.
//!
//! So the front holds one [`Claim`] per client id. A new connection with a
//! held id tells the holder to go ([`Claim::kicked`]) and waits until the
//! holder's relay has seen rumqttd close the old connection: rumqttd's link
//! sends its `Disconnect` to the router before it closes the socket, and the
//! router reads its events in order, so the new `Connect` comes after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long a new connection waits for the old one with its client id to
/// be gone before going ahead anyway (rumqttd closes a link within
/// milliseconds of its socket closing). Longer than [`DRAIN_WAIT`], so a
/// holder that is draining is waited for.
pub const TAKEOVER_WAIT: Duration = Duration::from_secs(3);
/// How long a kicked holder waits for rumqttd to close its side.
pub const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// Client ids held by live relays.
#[derive(Default, Clone)]
pub struct Sessions {
    held: Arc<Mutex<HashMap<String, Holder>>>,
}

struct Holder {
    serial: u64,
    kick: Arc<Notify>,
    gone: watch::Receiver<bool>,
}

/// A relay's hold on its client id; dropping it says "rumqttd is done with
/// my connection".
pub struct Claim {
    sessions: Sessions,
    id: String,
    serial: u64,
    kick: Arc<Notify>,
    gone: watch::Sender<bool>,
}

/// What [`Sessions::claim`] had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takeover {
    /// Nobody held the id.
    None,
    /// A connection held it and was closed first.
    Closed,
    /// A connection held it and did not close within [`TAKEOVER_WAIT`].
    TimedOut,
    /// A newer connection with the id got it first: this one must close
    /// (the older connection is the one MQTT disconnects).
    Superseded,
}

impl Sessions {
    /// Takes `id` for a new connection, after closing any connection that
    /// holds it; `None` (with [`Takeover::Superseded`]) when a connection
    /// newer than this one took it meanwhile.
    pub async fn claim(&self, id: &str) -> (Option<Claim>, Takeover) {
        static SERIAL: AtomicU64 = AtomicU64::new(1);
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + TAKEOVER_WAIT;
        let mut takeover = Takeover::None;
        loop {
            let (kick, mut gone) = {
                let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
                match held.get(id) {
                    Some(h) if h.serial > serial => return (None, Takeover::Superseded),
                    Some(h) if tokio::time::Instant::now() < deadline => {
                        (h.kick.clone(), h.gone.clone())
                    }
                    // Free, or the holder overstayed: ours from now on (a
                    // late holder's drop leaves a newer serial alone).
                    _ => {
                        let (gone_tx, gone_rx) = watch::channel(false);
                        let kick = Arc::new(Notify::new());
                        let holder = Holder {
                            serial,
                            kick: kick.clone(),
                            gone: gone_rx,
                        };
                        held.insert(id.to_owned(), holder);
                        let claim = Claim {
                            sessions: self.clone(),
                            id: id.to_owned(),
                            serial,
                            kick,
                            gone: gone_tx,
                        };
                        return (Some(claim), takeover);
                    }
                }
            };
            kick.notify_one();
            takeover = match tokio::time::timeout_at(deadline, gone.wait_for(|g| *g)).await {
                Ok(_) => Takeover::Closed,
                Err(_) => Takeover::TimedOut,
            };
        }
    }
}

impl Claim {
    /// Resolves when a newer connection with the same client id arrived.
    pub async fn kicked(&self) {
        self.kick.notified().await
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let _ = self.gone.send(true);
        let mut held = self.sessions.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(&self.id).is_some_and(|h| h.serial == self.serial) {
            held.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_claim_kicks_the_holder_and_waits_until_it_is_gone() {
        let sessions = Sessions::default();
        let (old, t) = sessions.claim("plug").await;
        assert_eq!(t, Takeover::None);
        let old = old.unwrap();
        let newer = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.claim("plug").await }
        });
        // The holder is told to go, and the newcomer waits while it does.
        tokio::time::timeout(Duration::from_secs(1), old.kicked())
            .await
            .expect("the holder is kicked");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !newer.is_finished(),
            "the newcomer went ahead of the holder"
        );
        drop(old);
        let (newer, t) = newer.await.unwrap();
        assert_eq!(t, Takeover::Closed);
        assert!(newer.is_some());
        // Another id is not held up.
        let (_other, t) = sessions.claim("lamp").await;
        assert_eq!(t, Takeover::None);
    }

    #[tokio::test]
    async fn a_holder_that_stays_is_passed_after_the_wait_and_cannot_free_the_newer_claim() {
        let sessions = Sessions::default();
        let (stuck, _) = sessions.claim("plug").await;
        let started = tokio::time::Instant::now();
        let (newer, t) = sessions.claim("plug").await;
        assert_eq!(t, Takeover::TimedOut);
        let newer = newer.unwrap();
        assert!(started.elapsed() >= TAKEOVER_WAIT);
        // The stuck holder ends late: the id stays the newer claim's.
        drop(stuck);
        let third = tokio::spawn({
            let sessions = sessions.clone();
            async move { sessions.claim("plug").await.1 }
        });
        tokio::time::timeout(Duration::from_secs(1), newer.kicked())
            .await
            .expect("the newer claim still holds the id");
        drop(newer);
        assert_eq!(third.await.unwrap(), Takeover::Closed);
    }

    #[tokio::test]
    async fn of_two_waiting_connections_the_newer_one_wins() {
        let sessions = Sessions::default();
        let (holder, _) = sessions.claim("plug").await;
        // The older newcomer behaves as a relay: holds the id until kicked.
        let older = tokio::spawn({
            let s = sessions.clone();
            async move {
                match s.claim("plug").await {
                    (None, t) => t,
                    (Some(c), _) => {
                        tokio::time::timeout(Duration::from_secs(5), c.kicked())
                            .await
                            .expect("an older holder is kicked by the newer connection");
                        Takeover::Closed
                    }
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let newer = tokio::spawn({
            let s = sessions.clone();
            async move { s.claim("plug").await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(holder);
        let (newer, t) = newer.await.unwrap();
        assert!(newer.is_some(), "the newest connection keeps the id");
        assert_eq!(t, Takeover::Closed);
        // The older one lost at once, or held the id and was kicked.
        let older = older.await.unwrap();
        assert!(
            matches!(older, Takeover::Superseded | Takeover::Closed),
            "{older:?}"
        );
    }
}
