//! Alerts: one model for every source (plugins, thermostat over-temperature,
//! plugin faults, anomalies), de-duplicated, and the notifiers.

use serde::Deserialize;

/// `[alerts]` in the bridge config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {}
