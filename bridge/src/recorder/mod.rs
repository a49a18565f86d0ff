//! History: every state change, event, alert and energy meter in SQLite
//! (`sqlite`), optionally mirrored to InfluxDB v2 (`influx`).

pub mod influx;

use serde::Deserialize;

/// `[recorder]` in the bridge config.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecorderConfig {}
