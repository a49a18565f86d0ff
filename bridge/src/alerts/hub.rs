//! The alert hub: keeps one [`Alert`] per (source, key), decides what is
//! notified (de-duplication, re-notification, acknowledgement) and hands
//! each change to the notifiers, Home Assistant and subscribers.
//!
//! Everything a change causes happens under the hub's lock, so the order
//! subscribers, notifiers and HA see is the order of the changes. Nothing
//! under it waits: notifier queues are `try_send`, the entity store and
//! the broadcast channel do not block.

use super::dispatch::{Delivery, NotifierHandle, NotifierStats, Target};
use super::email::EmailNotifier;
use super::ha::HaEntities;
use super::model::{
    Alert, AlertEvent, AlertEventKind, NewAlert, Notification, NotifyKind, Severity,
};
use super::webhook::WebhookNotifier;
use super::{AlertsConfig, outbox, persist};
use crate::clock::Clock;
use crate::entity::EntityStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Alerts kept; past it the oldest cleared ones go, and a new alert is
/// refused while all are active (a plugin inventing keys must not eat memory).
pub const MAX_ALERTS: usize = 1000;
/// Longest `key` accepted.
pub const MAX_KEY: usize = 128;
/// Longer titles and messages are cut (e-mail subjects, HA attributes).
pub const MAX_TITLE: usize = 200;
pub const MAX_MESSAGE: usize = 2000;
/// Events a slow subscriber may fall behind before it misses some.
const EVENTS: usize = 1024;

/// Why the hub refused a request; names the input and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    #[error("alert from `{origin}`: {what}")]
    Invalid { origin: String, what: String },
    #[error("alert `{0}` not found")]
    NotFound(String),
    #[error(
        "alert `{0}` refused: {MAX_ALERTS} alerts are active (a source raising ever new keys?)"
    )]
    Full(String),
}

/// What the hub is attached to.
#[derive(Default)]
pub struct HubOptions {
    /// Home Assistant entities go here (with `homeassistant = true`); the
    /// bridge's device must already be registered.
    pub store: Option<Arc<EntityStore>>,
    /// Where alerts are kept across restarts; undelivered notifications go
    /// beside it, in `alerts-outbox.json`.
    pub state_file: Option<PathBuf>,
}

/// The outbox beside the alerts' state file.
fn outbox_path(state_file: &std::path::Path) -> PathBuf {
    state_file.with_file_name("alerts-outbox.json")
}

struct Policy {
    /// 0: never re-notify.
    renotify_ms: i64,
    notify_resolved: bool,
}

pub struct AlertHub {
    clock: Clock,
    policy: Policy,
    alerts: Mutex<BTreeMap<String, Alert>>,
    events: broadcast::Sender<AlertEvent>,
    deliveries: broadcast::Sender<Delivery>,
    notifiers: Vec<NotifierHandle>,
    ha: OnceLock<HaEntities>,
    persist: OnceLock<watch::Sender<()>>,
    state_file: Option<PathBuf>,
}

impl AlertHub {
    /// A hub without notifiers, Home Assistant or a state file: for tools
    /// and tests that run plugins without a bridge. Needs no runtime.
    pub fn detached(clock: Clock) -> Arc<AlertHub> {
        Arc::new(AlertHub::bare(&AlertsConfig::default(), clock, Vec::new()).0)
    }

    fn bare(
        cfg: &AlertsConfig,
        clock: Clock,
        notifiers: Vec<NotifierHandle>,
    ) -> (AlertHub, broadcast::Sender<Delivery>) {
        let (deliveries, _) = broadcast::channel(EVENTS);
        let hub = AlertHub {
            clock,
            policy: Policy {
                renotify_ms: i64::try_from(cfg.renotify_interval_s.saturating_mul(1000))
                    .unwrap_or(i64::MAX),
                notify_resolved: cfg.notify_resolved,
            },
            alerts: Mutex::new(BTreeMap::new()),
            events: broadcast::channel(EVENTS).0,
            deliveries: deliveries.clone(),
            notifiers,
            ha: OnceLock::new(),
            persist: OnceLock::new(),
            state_file: None,
        };
        (hub, deliveries)
    }

    /// Checks the config, starts one task per notifier, restores the state
    /// file and registers the HA entities. Needs a tokio runtime.
    pub fn start(
        cfg: &AlertsConfig,
        clock: Clock,
        opts: HubOptions,
    ) -> anyhow::Result<Arc<AlertHub>> {
        let (deliveries, _) = broadcast::channel(EVENTS);
        let mut notifiers = Vec::new();
        for (i, e) in cfg.email.iter().enumerate() {
            let what = format!("alerts.email[{i}]");
            let target = EmailNotifier::new(&what, e)?;
            let name = e
                .name
                .clone()
                .unwrap_or_else(|| format!("email:{}", e.host));
            notifiers.push((name, e.min_severity, Target::Email(Box::new(target))));
        }
        for (i, w) in cfg.webhook.iter().enumerate() {
            let what = format!("alerts.webhook[{i}]");
            let target = WebhookNotifier::new(&what, w)?;
            let name = w
                .name
                .clone()
                .unwrap_or_else(|| format!("webhook:{}", target.target()));
            notifiers.push((name, w.min_severity, Target::Webhook(Box::new(target))));
        }
        let notifiers = notifiers
            .into_iter()
            .map(|(name, min, target)| NotifierHandle::spawn(name, min, target, deliveries.clone()))
            .collect();
        let (mut hub, _) = AlertHub::bare(cfg, clock, notifiers);
        hub.deliveries = deliveries;
        if let Some(path) = &opts.state_file {
            let restored = persist::load(path);
            if restored.iter().any(|a| a.active) {
                tracing::info!(
                    "alerts: {} active alert(s) restored from {}",
                    restored.iter().filter(|a| a.active).count(),
                    path.display()
                );
            }
            let map = hub.alerts.get_mut().unwrap_or_else(|e| e.into_inner());
            map.extend(restored.into_iter().map(|a| (a.id.clone(), a)));
        }
        hub.state_file = opts.state_file.clone();
        let hub = Arc::new(hub);
        if let Some(path) = &opts.state_file {
            hub.offer_outbox(&outbox_path(path));
        }
        if let (Some(store), true) = (opts.store, cfg.homeassistant) {
            let ha = HaEntities::attach(store)?;
            {
                let alerts = hub.lock();
                for watched in watched_entities(&alerts) {
                    ha.refresh(&watched, &about(&alerts, &watched));
                }
            }
            let _ = hub.ha.set(ha);
        }
        if let Some(path) = opts.state_file {
            let weak = Arc::downgrade(&hub);
            let tx = persist::spawn_writer(path, move || weak.upgrade().map(|h| h.list()));
            let _ = hub.persist.set(tx);
        }
        // A manual clock only moves when its owner sets it; that owner
        // calls `tick` (a wall-time ticker would race it).
        if hub.policy.renotify_ms > 0 && hub.clock.speed().is_finite() {
            spawn_ticker(Arc::downgrade(&hub));
        }
        Ok(hub)
    }

    /// Offers what the last stop left undelivered to the notifiers of the
    /// same names (a notifier renamed or removed since: logged, dropped).
    fn offer_outbox(&self, path: &std::path::Path) {
        let pending = outbox::load(path);
        if pending.is_empty() {
            return;
        }
        tracing::info!(
            "alerts: {} notification(s) left undelivered at the last stop, from {}",
            pending.len(),
            path.display()
        );
        for p in pending {
            match self.notifiers.iter().find(|n| n.name == p.notifier) {
                Some(n) => n.offer(&Arc::new(p.notification)),
                None => tracing::warn!(
                    "alerts: the {} notification of {} was for notifier `{}`, which is no longer configured; dropped",
                    p.notification.kind.as_str(),
                    p.notification.alert.id,
                    p.notifier
                ),
            }
        }
    }

    /// A clean stop: each notifier finishes the delivery in hand (within
    /// its grace) and what it could not deliver is written to the outbox;
    /// the alerts are written to the state file. Raises after this are
    /// kept (and recorded) but not notified.
    pub async fn stop(&self) {
        // All at once: N stuck notifiers cost one grace, not N.
        self.notifiers.iter().for_each(NotifierHandle::signal_stop);
        let mut left = Vec::new();
        for n in &self.notifiers {
            left.extend(
                n.join()
                    .await
                    .into_iter()
                    .map(|notification| outbox::Pending {
                        notifier: n.name.clone(),
                        notification: Arc::unwrap_or_clone(notification),
                    }),
            );
        }
        let Some(state_file) = &self.state_file else {
            if !left.is_empty() {
                tracing::warn!(
                    "alerts: {} notification(s) undelivered at stop, and no data directory to keep them",
                    left.len()
                );
            }
            return;
        };
        let path = outbox_path(state_file);
        let alerts = self.list();
        let (state, out) = (state_file.clone(), path.clone());
        // Each file on its own: one failing does not cost the other.
        let written = tokio::task::spawn_blocking(move || {
            if let Err(e) = persist::save(&state, &alerts) {
                tracing::error!("alerts: could not write {} at stop: {e}", state.display());
            }
            outbox::save(&out, &left).map(|()| left.len())
        })
        .await;
        match written {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(
                "alerts: {n} undelivered notification(s) kept in {} for the next start",
                path.display()
            ),
            Ok(Err(e)) => tracing::error!(
                "alerts: could not write the outbox {} at stop: {e}; its notifications are lost",
                path.display()
            ),
            Err(e) => tracing::error!("alerts: writing at stop: {e}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Alert>> {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises (or repeats) an alert. A repeat while active counts and is
    /// notified again only when the re-notification interval has passed
    /// and nobody acknowledged it.
    pub fn raise(&self, new: NewAlert) -> Result<AlertEventKind, AlertError> {
        let new = validate(new)?;
        let id = Alert::make_id(&new.source, &new.key);
        let now = self.clock.now_ms();
        let mut alerts = self.lock();
        if let Some(a) = alerts.get_mut(&id).filter(|a| a.active) {
            let old_entity = a.entity_id.clone();
            a.count += 1;
            a.last_seen_ms = now;
            // The latest words win: a message may carry the current reading.
            a.severity = new.severity;
            a.title = new.title;
            a.message = new.message;
            a.entity_id = new.entity_id;
            let due = self.due(a, now);
            if due {
                a.last_notified_ms = now;
            }
            let alert = a.clone();
            let notify = due.then_some(NotifyKind::Repeated);
            self.emit(&alerts, AlertEventKind::Repeated, alert, notify, old_entity);
            return Ok(AlertEventKind::Repeated);
        }
        if !alerts.contains_key(&id) && alerts.len() >= MAX_ALERTS && !prune(&mut alerts) {
            tracing::warn!("{}", AlertError::Full(id.clone()));
            return Err(AlertError::Full(id));
        }
        let old_entity = alerts.get(&id).and_then(|a| a.entity_id.clone());
        let alert = Alert {
            id: id.clone(),
            source: new.source,
            key: new.key,
            entity_id: new.entity_id,
            severity: new.severity,
            title: new.title,
            message: new.message,
            first_seen_ms: now,
            last_seen_ms: now,
            count: 1,
            acknowledged: false,
            active: true,
            last_notified_ms: now,
        };
        alerts.insert(id, alert.clone());
        self.emit(
            &alerts,
            AlertEventKind::Raised,
            alert,
            Some(NotifyKind::Raised),
            old_entity,
        );
        Ok(AlertEventKind::Raised)
    }

    /// Clears an active alert; false if it was not active.
    pub fn clear(&self, source: &str, key: &str) -> bool {
        let id = Alert::make_id(source, key);
        let now = self.clock.now_ms();
        let mut alerts = self.lock();
        let Some(a) = alerts.get_mut(&id).filter(|a| a.active) else {
            return false;
        };
        a.active = false;
        a.last_seen_ms = now;
        if self.policy.notify_resolved {
            a.last_notified_ms = now;
        }
        let alert = a.clone();
        let notify = self.policy.notify_resolved.then_some(NotifyKind::Resolved);
        let entity = alert.entity_id.clone();
        self.emit(&alerts, AlertEventKind::Cleared, alert, notify, entity);
        true
    }

    /// Clears every active alert of `source` (a plugin that is unloaded can
    /// no longer clear its own); returns how many.
    pub fn clear_source(&self, source: &str) -> usize {
        let keys: Vec<String> = self
            .list()
            .into_iter()
            .filter(|a| a.active && a.source == source)
            .map(|a| a.key)
            .collect();
        keys.iter().filter(|k| self.clear(source, k)).count()
    }

    /// Marks an alert seen by a person: no re-notification until it clears
    /// (raising it again after that starts over, unacknowledged).
    pub fn acknowledge(&self, id: &str) -> Result<Alert, AlertError> {
        let mut alerts = self.lock();
        let a = alerts
            .get_mut(id)
            .ok_or_else(|| AlertError::NotFound(id.to_string()))?;
        if a.acknowledged {
            return Ok(a.clone());
        }
        a.acknowledged = true;
        let alert = a.clone();
        let entity = alert.entity_id.clone();
        self.emit(
            &alerts,
            AlertEventKind::Acknowledged,
            alert.clone(),
            None,
            entity,
        );
        Ok(alert)
    }

    /// Re-notifies every active, unacknowledged alert whose interval has
    /// passed without a raise; how many. The hub's ticker calls it; tests
    /// call it after moving a manual clock.
    pub fn tick(&self) -> usize {
        let now = self.clock.now_ms();
        let mut alerts = self.lock();
        let due: Vec<String> = alerts
            .values()
            .filter(|a| a.active && self.due(a, now))
            .map(|a| a.id.clone())
            .collect();
        for id in &due {
            let Some(a) = alerts.get_mut(id) else {
                continue;
            };
            a.last_notified_ms = now;
            let alert = a.clone();
            let entity = alert.entity_id.clone();
            self.emit(
                &alerts,
                AlertEventKind::Repeated,
                alert,
                Some(NotifyKind::Repeated),
                entity,
            );
        }
        due.len()
    }

    fn due(&self, a: &Alert, now: i64) -> bool {
        !a.acknowledged
            && self.policy.renotify_ms > 0
            && now.saturating_sub(a.last_notified_ms) >= self.policy.renotify_ms
    }

    /// Hands one change to everyone who cares (see the module docs).
    /// `old_entity`: the entity the alert was about before the change.
    fn emit(
        &self,
        alerts: &BTreeMap<String, Alert>,
        kind: AlertEventKind,
        alert: Alert,
        notify: Option<NotifyKind>,
        old_entity: Option<String>,
    ) {
        log_change(kind, &alert, notify.is_some());
        if let Some(ha) = self.ha.get() {
            let mut touched: Vec<&String> = alert.entity_id.iter().collect();
            if let Some(old) = old_entity
                .as_ref()
                .filter(|o| Some(*o) != alert.entity_id.as_ref())
            {
                touched.push(old);
            }
            for watched in touched {
                ha.refresh(watched, &about(alerts, watched));
            }
        }
        if let Some(kind) = notify {
            let n = Arc::new(Notification {
                kind,
                alert: alert.clone(),
            });
            if let Some(ha) = self.ha.get() {
                ha.fire(&n);
            }
            for notifier in &self.notifiers {
                notifier.offer(&n);
            }
        }
        if let Some(p) = self.persist.get() {
            p.send_replace(());
        }
        // No subscriber is fine (the recorder may be off).
        let _ = self.events.send(AlertEvent {
            kind,
            alert,
            notified: notify.is_some(),
        });
    }

    pub fn get(&self, id: &str) -> Option<Alert> {
        self.lock().get(id).cloned()
    }

    /// Every alert kept: active ones first (worst, then latest), then
    /// cleared ones, latest first.
    pub fn list(&self) -> Vec<Alert> {
        let mut list: Vec<Alert> = self.lock().values().cloned().collect();
        list.sort_by(|a, b| {
            (b.active, b.active.then_some(b.severity), b.last_seen_ms).cmp(&(
                a.active,
                a.active.then_some(a.severity),
                a.last_seen_ms,
            ))
        });
        list
    }

    /// Every change from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<AlertEvent> {
        self.events.subscribe()
    }

    /// Every notifier's outcome from now on (after its retries).
    pub fn deliveries(&self) -> broadcast::Receiver<Delivery> {
        self.deliveries.subscribe()
    }

    pub fn notifier_stats(&self) -> Vec<NotifierStats> {
        self.notifiers.iter().map(|n| n.stats()).collect()
    }

    /// `event.bridge_alerts` when Home Assistant entities are on.
    pub fn event_entity(&self) -> Option<&str> {
        self.ha.get().map(|h| h.event_entity())
    }
}

fn log_change(kind: AlertEventKind, a: &Alert, notified: bool) {
    let by = &a.source;
    match kind {
        AlertEventKind::Raised | AlertEventKind::Repeated if notified => {
            let verb = if kind == AlertEventKind::Raised {
                "raised"
            } else {
                "still active"
            };
            if a.severity == Severity::Critical {
                tracing::error!("ALERT {verb} by `{by}`: {}: {}", a.title, a.message);
            } else {
                tracing::warn!("ALERT {verb} by `{by}`: {}: {}", a.title, a.message);
            }
        }
        // Repeats within the interval: counted, not logged (a plugin may
        // raise on every tick).
        AlertEventKind::Raised | AlertEventKind::Repeated => {}
        AlertEventKind::Cleared => {
            tracing::info!("alert cleared by `{by}`: {}: {}", a.title, a.message)
        }
        AlertEventKind::Acknowledged => tracing::info!("alert {} acknowledged", a.id),
    }
}

/// Drops the cleared alert seen longest ago; false if all are active.
fn prune(alerts: &mut BTreeMap<String, Alert>) -> bool {
    let oldest = alerts
        .values()
        .filter(|a| !a.active)
        .min_by_key(|a| a.last_seen_ms)
        .map(|a| a.id.clone());
    oldest.is_some_and(|id| alerts.remove(&id).is_some())
}

fn watched_entities(alerts: &BTreeMap<String, Alert>) -> Vec<String> {
    let mut w: Vec<String> = alerts
        .values()
        .filter_map(|a| a.entity_id.clone())
        .collect();
    w.sort();
    w.dedup();
    w
}

fn about<'a>(alerts: &'a BTreeMap<String, Alert>, watched: &str) -> Vec<&'a Alert> {
    alerts
        .values()
        .filter(|a| a.entity_id.as_deref() == Some(watched))
        .collect()
}

/// Checks what a source sent (plugins are external input): names the
/// field and what was expected; over-long text is cut, not refused.
fn validate(mut new: NewAlert) -> Result<NewAlert, AlertError> {
    let invalid = |what: String| AlertError::Invalid {
        origin: new.source.clone(),
        what,
    };
    if new.source.is_empty() {
        return Err(invalid("empty source".into()));
    }
    if new.key.is_empty()
        || new.key.chars().count() > MAX_KEY
        || new.key.chars().any(char::is_control)
    {
        return Err(invalid(format!(
            "key `{}`: expected 1 to {MAX_KEY} printable characters",
            new.key.escape_debug()
        )));
    }
    if let Some(e) = &new.entity_id {
        let ok = e.len() <= 255
            && e.split_once('.').is_some_and(|(d, o)| {
                let part = |s: &str| {
                    !s.is_empty()
                        && s.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                };
                part(d) && part(o)
            });
        if !ok {
            return Err(invalid(format!(
                "entity_id `{}`: expected `<domain>.<object_id>` in lowercase letters, digits and _",
                e.escape_debug()
            )));
        }
    }
    if new.title.trim().is_empty() {
        new.title = new.key.clone();
    }
    new.title = cut(&new.title, MAX_TITLE);
    new.message = cut(&new.message, MAX_MESSAGE);
    Ok(new)
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// Re-notifies due alerts now and then; ends with the hub.
fn spawn_ticker(hub: Weak<AlertHub>) {
    tokio::spawn(async move {
        loop {
            let period = {
                let Some(h) = hub.upgrade() else { break };
                // A tenth of the interval, between 1 s and 60 s of the
                // bridge's clock; never a busy loop (a manual clock's wall
                // time is zero).
                let ms = (h.policy.renotify_ms / 10).clamp(1000, 60_000) as f64;
                h.clock.wall(ms).max(Duration::from_secs(1))
            };
            tokio::time::sleep(period).await;
            let Some(h) = hub.upgrade() else { break };
            h.tick();
        }
    });
}
