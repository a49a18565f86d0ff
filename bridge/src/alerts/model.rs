//! The one alert model every source (plugins, plugin faults, the bridge)
//! and every consumer (notifiers, Home Assistant, the recorder, the API)
//! shares.

use serde::{Deserialize, Serialize};

/// How bad an alert is; ordered, so `min_severity` filters compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert: a condition a source reported, de-duplicated by
/// (`source`, `key`). It stays in the list after it clears (inactive) so the
/// API can show what happened; raising it again starts a new occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `<source>/<key>`: what `acknowledge` takes.
    pub id: String,
    /// Who raised it: `plugin:<instance>` or `bridge`.
    pub source: String,
    /// Identifies the condition within its source (`over_temperature`, `fault`).
    pub key: String,
    /// The entity the condition is about, if any (`sensor.server_room_temperature`).
    pub entity_id: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    /// ms since the epoch (the bridge's clock), of this occurrence's first raise.
    pub first_seen_ms: i64,
    /// ms since the epoch, of the latest raise (or of the clear once inactive).
    pub last_seen_ms: i64,
    /// Raises in this occurrence (1 for a new alert).
    pub count: u64,
    /// A user acknowledged it: it is not re-notified until it clears.
    pub acknowledged: bool,
    pub active: bool,
    /// ms since the epoch of the last notification sent for it (the
    /// re-notification interval counts from here).
    pub last_notified_ms: i64,
}

impl Alert {
    pub fn make_id(source: &str, key: &str) -> String {
        format!("{source}/{key}")
    }
}

/// What a source reports: [`AlertHub::raise`](super::AlertHub::raise) takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub source: String,
    pub key: String,
    pub entity_id: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub message: String,
}

/// What happened to an alert; the hub broadcasts one per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEventKind {
    /// A new alert, or a cleared one raised again.
    Raised,
    /// Raised again while active (count + 1).
    Repeated,
    Cleared,
    Acknowledged,
}

impl AlertEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventKind::Raised => "raised",
            AlertEventKind::Repeated => "repeated",
            AlertEventKind::Cleared => "cleared",
            AlertEventKind::Acknowledged => "acknowledged",
        }
    }
}

/// A change of an alert, as [`AlertHub::subscribe`](super::AlertHub::subscribe)
/// delivers it (the recorder keeps these).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertEvent {
    pub kind: AlertEventKind,
    /// The alert after the change.
    pub alert: Alert,
    /// Whether this change was sent to the notifiers (a repeat is only when
    /// the re-notification interval has passed).
    pub notified: bool,
}

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    Raised,
    /// Still active after the re-notification interval.
    Repeated,
    /// Cleared (only with `notify_resolved`).
    Resolved,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Raised => "raised",
            NotifyKind::Repeated => "repeated",
            NotifyKind::Resolved => "resolved",
        }
    }
}

/// One message for the notifiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotifyKind,
    pub alert: Alert,
}

impl Notification {
    /// One line a person reads first (e-mail subject, chat text).
    pub fn headline(&self) -> String {
        let a = &self.alert;
        let what = match self.kind {
            NotifyKind::Raised => a.severity.as_str().to_uppercase(),
            NotifyKind::Repeated => {
                format!("{} (still active)", a.severity.as_str().to_uppercase())
            }
            NotifyKind::Resolved => "RESOLVED".to_string(),
        };
        match &a.entity_id {
            Some(e) => format!("[{what}] {} ({e})", a.title),
            None => format!("[{what}] {}", a.title),
        }
    }

    /// The full text: headline facts and the message.
    pub fn body(&self) -> String {
        let a = &self.alert;
        let iso = crate::clock::iso8601;
        let mut text = format!("{}\n\n", a.title);
        if !a.message.is_empty() {
            text.push_str(&a.message);
            text.push_str("\n\n");
        }
        let status = match self.kind {
            NotifyKind::Raised => "raised".to_string(),
            NotifyKind::Repeated => format!("still active (raised {} times)", a.count),
            NotifyKind::Resolved => "resolved".to_string(),
        };
        text.push_str(&format!("Status: {status}\n"));
        text.push_str(&format!("Severity: {}\n", a.severity.as_str()));
        if let Some(e) = &a.entity_id {
            text.push_str(&format!("Entity: {e}\n"));
        }
        text.push_str(&format!("Source: {}\n", a.source));
        text.push_str(&format!("First seen: {}\n", iso(a.first_seen_ms)));
        text.push_str(&format!("Last seen: {}\n", iso(a.last_seen_ms)));
        text.push_str(&format!("Count: {}\n", a.count));
        text.push_str(&format!("Alert id: {}\n", a.id));
        text
    }
}
