//! One task per notifier: a bounded queue in front of it, so the hub (and
//! the plugin thread raising an alert) never waits for a mail server; a
//! failed delivery is retried with backoff unless the target said no for
//! good (bad password, HTTP 4xx), then logged with the target named.
//!
//! At a clean stop each notifier gets [`STOP_GRACE`] to finish the delivery
//! in hand; that one and everything still queued is handed back to the hub,
//! which keeps it in the outbox file and offers it again at the next start.
//! A delivery cut off after the server took it is sent twice: at least
//! once, rather than lost.

use super::email::EmailNotifier;
use super::model::{Notification, NotifyKind, Severity};
use super::webhook::WebhookNotifier;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// Notifications waiting for one notifier; more are dropped (and counted):
/// an alert storm against a dead mail server must not grow without bound.
pub const QUEUE: usize = 64;
/// Waits before the 2nd, 3rd and 4th attempt.
const RETRY_AFTER: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
];
/// How long a stop waits for the delivery in hand.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Why a delivery failed, and whether trying again could help.
#[derive(Debug)]
pub struct SendError {
    pub message: String,
    /// The target refused for good (authentication, a 4xx): no retry.
    pub permanent: bool,
}

/// Where notifications go.
pub enum Target {
    Email(Box<EmailNotifier>),
    Webhook(Box<WebhookNotifier>),
}

impl Target {
    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        match self {
            Target::Email(e) => e.send(n).await,
            Target::Webhook(w) => w.send(n).await,
        }
    }
}

/// The outcome of one notification at one notifier (after its retries).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub notifier: String,
    pub alert_id: String,
    pub kind: NotifyKind,
    pub attempts: u32,
    /// The last error when it was not delivered.
    pub error: Option<String>,
}

/// Counters of one notifier.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NotifierStats {
    pub name: String,
    pub delivered: u64,
    pub failed: u64,
    /// Dropped because its queue was full.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The hub's end of a notifier.
pub struct NotifierHandle {
    pub name: String,
    min_severity: Severity,
    queue: mpsc::Sender<Arc<Notification>>,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    /// The task; it returns what it could not deliver before the stop.
    task: Mutex<Option<JoinHandle<Vec<Arc<Notification>>>>>,
}

impl NotifierHandle {
    /// Starts the notifier's task (needs a tokio runtime).
    pub fn spawn(
        name: String,
        min_severity: Severity,
        target: Target,
        deliveries: broadcast::Sender<Delivery>,
    ) -> NotifierHandle {
        let (queue, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(
            name.clone(),
            target,
            (rx, stopped),
            counters.clone(),
            deliveries,
        ));
        NotifierHandle {
            name,
            min_severity,
            queue,
            counters,
            stop,
            task: Mutex::new(Some(task)),
        }
    }

    /// Tells the task to stop (after [`STOP_GRACE`] for the delivery in
    /// hand); [`NotifierHandle::join`] collects what it did not deliver.
    pub fn signal_stop(&self) {
        self.stop.send_replace(true);
    }

    /// Waits for the task after [`NotifierHandle::signal_stop`]: the
    /// notifications it did not deliver, oldest first. Later calls return
    /// nothing.
    pub async fn join(&self) -> Vec<Arc<Notification>> {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(task) = task else {
            return Vec::new();
        };
        match task.await {
            Ok(left) => left,
            Err(e) => {
                tracing::error!("alert notifier `{}`: task ended badly: {e}", self.name);
                Vec::new()
            }
        }
    }

    /// Queues `n` if its severity is one this notifier wants; never waits.
    pub fn offer(&self, n: &Arc<Notification>) {
        if n.alert.severity < self.min_severity {
            return;
        }
        match self.queue.try_send(n.clone()) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(
                    "alert notifier `{}`: queue full ({QUEUE} waiting); dropped the {} notification of {} ({dropped} dropped so far)",
                    self.name,
                    n.kind.as_str(),
                    n.alert.id
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::warn!(
                    "alert notifier `{}`: stopped; dropped the {} notification of {} ({dropped} dropped so far)",
                    self.name,
                    n.kind.as_str(),
                    n.alert.id
                );
            }
        }
    }

    pub fn stats(&self) -> NotifierStats {
        NotifierStats {
            name: self.name.clone(),
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Delivers one notification after another, in order, until stopped (or
/// until the hub, the queue's sender, is gone); returns what it did not
/// deliver.
async fn run(
    name: String,
    target: Target,
    (mut rx, mut stopped): (mpsc::Receiver<Arc<Notification>>, watch::Receiver<bool>),
    counters: Arc<Counters>,
    deliveries: broadcast::Sender<Delivery>,
) -> Vec<Arc<Notification>> {
    let mut left = Vec::new();
    loop {
        let n = tokio::select! {
            biased;
            _ = stop_signal(&mut stopped) => break,
            n = rx.recv() => match n {
                Some(n) => n,
                None => break,
            },
        };
        let delivery = deliver(&name, &target, &n);
        tokio::pin!(delivery);
        let grace = async {
            stop_signal(&mut stopped).await;
            tokio::time::sleep(STOP_GRACE).await;
        };
        let (attempts, error) = tokio::select! {
            done = &mut delivery => done,
            _ = grace => {
                tracing::warn!(
                    "alert notifier `{name}`: stopping during the {} notification of {}; kept for the next start",
                    n.kind.as_str(),
                    n.alert.id
                );
                left.push(n.clone());
                break;
            }
        };
        match &error {
            None => {
                counters.delivered.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "alert notifier `{name}`: sent {} of {}",
                    n.kind.as_str(),
                    n.alert.id
                );
            }
            Some(e) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                let why = if e.permanent { "refused" } else { "gave up" };
                tracing::error!(
                    "alert notifier `{name}`: {why} the {} notification of {} after {attempts} attempt(s): {}",
                    n.kind.as_str(),
                    n.alert.id,
                    e.message
                );
            }
        }
        // Nobody listening is normal (no test, no API client).
        let _ = deliveries.send(Delivery {
            notifier: name.clone(),
            alert_id: n.alert.id.clone(),
            kind: n.kind,
            attempts,
            error: error.map(|e| e.message),
        });
    }
    rx.close();
    while let Ok(n) = rx.try_recv() {
        left.push(n);
    }
    left
}

/// Resolves on a stop signal. A hub dropped without [`AlertHub::stop`]
/// (its sender gone, e.g. a failed start) is not a stop: the queue is
/// delivered until it is empty, as before the outbox existed.
///
/// [`AlertHub::stop`]: super::AlertHub::stop
async fn stop_signal(stopped: &mut watch::Receiver<bool>) {
    if stopped.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// One notification, retried with backoff unless refused for good: the
/// attempts made and the last error when it was not delivered.
async fn deliver(name: &str, target: &Target, n: &Notification) -> (u32, Option<SendError>) {
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        match target.send(n).await {
            Ok(()) => return (attempts, None),
            Err(e) => {
                let retry = RETRY_AFTER
                    .get(attempts as usize - 1)
                    .filter(|_| !e.permanent);
                let Some(wait) = retry else {
                    return (attempts, Some(e));
                };
                tracing::warn!(
                    "alert notifier `{name}`: {} of {} failed (attempt {attempts}): {}; retrying in {wait:?}",
                    n.kind.as_str(),
                    n.alert.id,
                    e.message
                );
                tokio::time::sleep(*wait).await;
            }
        }
    }
}
