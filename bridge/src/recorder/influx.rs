//! InfluxDB v2 sink: line protocol to `/api/v2/write`, buffered on disk
//! while the server is away.

use serde::Deserialize;

/// `[influxdb]` in the bridge config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {}
