//! The recorder's write failures as an alert, beside
//! `binary_sensor.bridge_recorder_problem`: source `bridge`, key
//! [`ALERT_KEY`], critical (the rows wait in memory only: a restart or a
//! full queue loses them). So the notifiers (e-mail, webhooks) and HA's
//! `event.bridge_alerts` hear of a full or failing disk, not only a
//! dashboard that shows the sensor. Raised when the writer first fails
//! (and again, as a repeat, when the error or the dropped count changes),
//! cleared by the first commit that goes through.
//!
//! The alert hub starts after the recorder, so the writer keeps the
//! current problem here and [`ProblemAlert::attach`] raises it then. An
//! alert left active by a run that was killed (the hub restores its list
//! from `alerts.json`) is cleared at attach unless the recorder fails
//! again by then.

use crate::alerts::{AlertHub, NewAlert, Severity};
use std::sync::{Arc, Mutex, OnceLock};

/// The alert's source (the bridge's own alerts) and key.
pub const ALERT_SOURCE: &str = "bridge";
pub const ALERT_KEY: &str = "recorder_problem";

#[derive(Default)]
pub struct ProblemAlert {
    hub: OnceLock<Arc<AlertHub>>,
    /// The problem as last reported by the writer; `None`: writes succeed.
    current: Mutex<Option<NewAlert>>,
}

impl ProblemAlert {
    /// Sends the current problem (or a clear) to `hub`, and every later one.
    pub fn attach(&self, hub: Arc<AlertHub>) {
        let current = self.lock();
        if self.hub.set(hub.clone()).is_err() {
            return;
        }
        match current.clone() {
            Some(alert) => raise(&hub, alert),
            None => {
                hub.clear(ALERT_SOURCE, ALERT_KEY);
            }
        }
    }

    /// The database refuses writes (`error`); `queued` rows wait in memory.
    pub fn raise(&self, path: &str, error: &str, queued: usize, max_queue: usize, dropped: u64) {
        let lost = if dropped > 0 {
            format!("; {dropped} rows dropped since the queue filled")
        } else {
            String::new()
        };
        let alert = NewAlert {
            source: ALERT_SOURCE.into(),
            key: ALERT_KEY.into(),
            entity_id: None,
            severity: Severity::Critical,
            title: "Recorder cannot write its database".into(),
            message: format!(
                "{path}: {error}. {queued} rows wait in memory (up to max_queue = {max_queue}) and are retried; history is lost if the bridge stops before the disk accepts them{lost}."
            ),
        };
        let mut current = self.lock();
        *current = Some(alert.clone());
        if let Some(hub) = self.hub.get() {
            raise(hub, alert);
        }
    }

    /// Writes succeed again.
    pub fn clear(&self) {
        let mut current = self.lock();
        if current.take().is_some()
            && let Some(hub) = self.hub.get()
        {
            hub.clear(ALERT_SOURCE, ALERT_KEY);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<NewAlert>> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn raise(hub: &AlertHub, alert: NewAlert) {
    if let Err(e) = hub.raise(alert) {
        tracing::warn!("recorder: its problem alert was refused: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn active(hub: &AlertHub) -> Vec<String> {
        hub.list()
            .into_iter()
            .filter(|a| a.active)
            .map(|a| a.id)
            .collect()
    }

    #[test]
    fn a_problem_before_the_hub_is_raised_at_attach_and_cleared_by_a_commit() {
        let p = ProblemAlert::default();
        p.raise("/data/hearth.db", "database or disk is full", 12, 100, 0);
        let hub = AlertHub::detached(Clock::real());
        assert!(active(&hub).is_empty());
        p.attach(hub.clone());
        assert_eq!(active(&hub), ["bridge/recorder_problem"]);
        let a = &hub.list()[0];
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.message.contains("disk is full") && a.message.contains("12 rows"));
        p.clear();
        assert!(active(&hub).is_empty());
    }

    #[test]
    fn attach_clears_an_alert_a_killed_run_left_active() {
        let hub = AlertHub::detached(Clock::real());
        // What alerts.json restores after a kill during an outage.
        let stale = ProblemAlert::default();
        stale.attach(hub.clone());
        stale.raise("/data/hearth.db", "disk I/O error", 1, 100, 0);
        assert_eq!(active(&hub).len(), 1);
        ProblemAlert::default().attach(hub.clone());
        assert!(active(&hub).is_empty());
    }
}
