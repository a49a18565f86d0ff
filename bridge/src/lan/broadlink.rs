//! Broadlink devices found by their UDP discovery: the 0x30-byte hello
//! broadcast to port 80 that every Broadlink answers with its device type,
//! MAC and name (python-broadlink `broadlink.discover`; the packets are
//! [`crate::drivers::broadlink::protocol::discover`]'s), sent to
//! `broadlink_broadcast` every `interval_s`.
//!
//! A found device is pending as `broadlink-<mac>` (kind `broadlink`,
//! model `0x<devtype>`); adopting it needs `codes` in the options (the
//! SmartIR climate code file of the AC it drives; codes are never guessed).

use super::pending::PendingDevice;
use super::{Lan, LanDiscoveryConfig};
use crate::drivers::broadlink::protocol::{self, BroadlinkFound};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long each discovery listens for answers (devices answer within
/// tens of ms; the hello is re-sent meanwhile).
const LISTEN: Duration = Duration::from_secs(2);

/// The pending entry of a Broadlink that answered.
pub fn pending(found: &BroadlinkFound, now_ms: i64) -> PendingDevice {
    let mac: String = found.mac.iter().map(|b| format!("{b:02x}")).collect();
    PendingDevice {
        id: format!("broadlink-{mac}"),
        kind: "broadlink".into(),
        address: found.addr.to_string(),
        model: format!("0x{:04x}", found.devtype),
        name: Some(found.name.clone()).filter(|n| !n.is_empty()),
        mac: Some(mac),
        firmware: None,
        found_by: "broadlink".into(),
        first_seen_ms: now_ms,
        last_seen_ms: now_ms,
    }
}

/// Periodic Broadlink discovery until shutdown.
pub fn spawn(
    cfg: &LanDiscoveryConfig,
    lan: Arc<Lan>,
    mut shutdown: crate::shutdown::Shutdown,
) -> anyhow::Result<JoinHandle<()>> {
    let target: SocketAddr = cfg.broadlink_broadcast.parse().map_err(|e| {
        anyhow::anyhow!(
            "[lan_discovery] broadlink_broadcast `{}`: {e}",
            cfg.broadlink_broadcast
        )
    })?;
    let every = Duration::from_secs_f64(cfg.interval_s);
    let listen = LISTEN.min(every);
    Ok(tokio::spawn(async move {
        let bad = crate::logging::Throttle::new("Broadlink discovery");
        loop {
            let round = tokio::select! {
                r = protocol::discover(target, listen) => r,
                _ = shutdown.wait() => break,
            };
            match round {
                Ok(found) => {
                    for f in &found {
                        lan.found(pending(f, lan.now_ms())).await;
                    }
                }
                Err(e) => {
                    if bad.admit(&target.to_string()) {
                        tracing::warn!("LAN discovery: Broadlink discovery to {target}: {e}");
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(every.saturating_sub(listen)) => {}
                _ = shutdown.wait() => break,
            }
        }
    }))
}
