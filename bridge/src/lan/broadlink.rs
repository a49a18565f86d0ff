//! Broadlink devices found by their UDP discovery (the `hello` packet
//! broadcast to port 80, python-broadlink's `discover`), every
//! `interval_s`, through `drivers::broadlink::protocol::discover`.
//!
//! Not wired yet: the Broadlink driver (`drivers/broadlink`) is not in
//! this build, so [`spawn`] starts nothing and says so once.

use super::{Lan, LanDiscoveryConfig};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Periodic Broadlink discovery, when the driver exists.
pub fn spawn(
    _cfg: &LanDiscoveryConfig,
    _lan: Arc<Lan>,
    _shutdown: crate::shutdown::Shutdown,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    tracing::info!(
        "LAN discovery: Broadlink discovery needs the Broadlink driver, which this build does not have yet"
    );
    Ok(None)
}
