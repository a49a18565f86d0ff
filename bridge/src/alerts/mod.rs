//! Alerts: one model for every source (plugins, thermostat over-temperature,
//! plugin faults, anomalies), de-duplicated, and the notifiers.
//!
//! Sources call [`AlertHub::raise`] and [`AlertHub::clear`]; the hub keeps
//! one [`Alert`] per (source, key): raising it again while it is active
//! counts (`count`, `last_seen_ms`) but notifies again only once
//! `renotify_interval_s` has passed and nobody acknowledged it. Each
//! notification goes to:
//! - every notifier whose `min_severity` it meets (e-mail over SMTP, JSON
//!   webhooks), each through a bounded queue and a task of its own, so a
//!   slow or failing target never blocks a plugin (failures are retried
//!   with backoff, then logged with the target named; a full queue drops
//!   and counts);
//! - Home Assistant: the bridge's `event.bridge_alerts` fires (`raised`,
//!   `repeated`, `cleared`), and each entity alerts are about gets a
//!   `binary_sensor.<entity>_alert` (device class `problem`), on while any
//!   alert on it is active.
//!
//! Every change is also broadcast as an [`AlertEvent`] ([`AlertHub::subscribe`])
//! for the recorder, and the alerts are kept in `<data_dir>/alerts.json` so
//! an active alert survives a restart (a plugin that restores its state
//! does not raise it again). Notifications still undelivered at a clean
//! stop ([`AlertHub::stop`]) are kept in `<data_dir>/alerts-outbox.json`
//! and sent at the next start.

mod dispatch;
mod email;
mod ha;
mod hub;
mod model;
mod outbox;
/// Also the versioned-JSON reader and atomic writer of `entity::restore`
/// and the plugins' saved states.
pub(crate) mod persist;
#[cfg(test)]
mod tests;
mod webhook;

pub use dispatch::{Delivery, NotifierStats};
pub use hub::{AlertError, AlertHub, HubOptions};
pub use model::{Alert, AlertEvent, AlertEventKind, NewAlert, Notification, NotifyKind, Severity};
pub use webhook::{WebhookFormat, webhook_body};

use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[alerts]` in the bridge config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Seconds after which an active, unacknowledged alert is notified
    /// again; 0: never.
    #[serde(default = "default_renotify")]
    pub renotify_interval_s: u64,
    /// Notify when an alert clears.
    #[serde(default = "yes")]
    pub notify_resolved: bool,
    /// Publish the alert event entity and per-entity problem sensors.
    #[serde(default = "yes")]
    pub homeassistant: bool,
    #[serde(default)]
    pub email: Vec<EmailConfig>,
    #[serde(default)]
    pub webhook: Vec<WebhookConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            renotify_interval_s: default_renotify(),
            notify_resolved: true,
            homeassistant: true,
            email: Vec::new(),
            webhook: Vec::new(),
        }
    }
}

fn default_renotify() -> u64 {
    3600
}

fn yes() -> bool {
    true
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte ("SMTPS", port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted LAN.
    None,
}

/// `[[alerts.email]]`: one SMTP server and its recipients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Name in logs and delivery reports; default `email:<host>`.
    pub name: Option<String>,
    pub host: String,
    /// Default: 587 (starttls), 465 (tls), 25 (none).
    pub port: Option<u16>,
    #[serde(default)]
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// `"…"`, `{ file = "…" }` or `{ env = "…" }` ([`Secret`]).
    pub password: Option<Secret>,
    /// A file holding the password (trailing newline ignored), instead of
    /// `password` in the config (same as `password = { file = "…" }`).
    pub password_file: Option<PathBuf>,
    /// `Hearth <hearth@example.com>` or a bare address.
    pub from: String,
    pub to: Vec<String>,
    /// PEM certificate(s) to trust besides the public roots (a private CA).
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_email_timeout")]
    pub timeout_s: f64,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
}

fn default_email_timeout() -> f64 {
    30.0
}

fn lowest() -> Severity {
    Severity::Info
}

/// `[[alerts.webhook]]`: an HTTP(S) endpoint that takes a JSON POST.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Name in logs and delivery reports; default `webhook:<host>`.
    pub name: Option<String>,
    /// `http://` or `https://`; for `ntfy`, the server's root
    /// (`https://ntfy.sh`): the topic goes in the body. A [`Secret`] (it
    /// may carry a token, as Slack's and Discord's do): shown without its
    /// query and token-like path segments.
    pub url: Secret,
    #[serde(default)]
    pub format: WebhookFormat,
    /// The ntfy topic (required with `format = "ntfy"`).
    pub topic: Option<String>,
    /// Extra request headers, e.g. `Authorization = "Bearer …"`; values
    /// are [`Secret`]s (`{ env = "…" }` works), never shown.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// PEM certificate(s) to trust besides the public roots (a private CA).
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_webhook_timeout")]
    pub timeout_s: f64,
    #[serde(default = "lowest")]
    pub min_severity: Severity,
}

fn default_webhook_timeout() -> f64 {
    10.0
}

/// A positive, finite timeout from the config, or an error naming the key.
fn timeout(what: &str, secs: f64) -> anyhow::Result<std::time::Duration> {
    if !(secs.is_finite() && secs > 0.0 && secs <= 3600.0) {
        anyhow::bail!("{what}.timeout_s: expected seconds between 0 and 3600, got {secs}");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Root certificates for a notifier: the public (webpki) roots plus, with
/// `ca_file`, the PEM certificates in it.
fn read_ca_file(what: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let pem = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("{what}.ca_file {}: {e}", path.display()))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        anyhow::bail!(
            "{what}.ca_file {}: expected PEM certificates (-----BEGIN CERTIFICATE-----)",
            path.display()
        );
    }
    Ok(pem)
}
