//! The HTTP transport: `POST /rpc` JSON-RPC frames (Shelly "RPC Channels":
//! HTTP), through the Gen2 client of [`crate::drivers::shelly`]. HTTP
//! carries no notifications, so the four switches are polled.

use super::{Strip, rpc};
use crate::drivers::shelly::{ShellyClient, ShellyError};
use crate::entity::{DriverCommand, ServiceError};
use serde_json::json;
use tokio::sync::mpsc;

use crate::drivers::FAILURES_BEFORE_OFFLINE;

pub(crate) async fn run(
    mut strip: Strip,
    url: String,
    mut commands: mpsc::Receiver<DriverCommand>,
) {
    let mut client = ShellyClient::new(&url);
    let mut failures = 0u32;
    let mut shutdown = strip.ctx.shutdown.clone();
    loop {
        poll(&mut strip, &mut client, &url, &mut failures).await;
        let wait = strip.ctx.clock.sleep_ms(strip.cfg.poll_interval_s * 1000.0);
        tokio::select! {
            _ = wait => {}
            Some(cmd) = commands.recv() => {
                if cmd.reply.is_closed() {
                    continue; // the caller gave up (timed out): do not act late
                }
                let result = execute(&mut strip, &mut client, &url, &mut failures, &cmd).await;
                let _ = cmd.reply.send(result);
            }
            _ = shutdown.wait() => break,
        }
    }
}

/// `Switch.GetStatus` for every switch; a transport failure counts
/// towards offline, a malformed answer is logged and skipped.
async fn poll(strip: &mut Strip, client: &mut ShellyClient, url: &str, failures: &mut u32) {
    for id in 0..super::OUTLETS {
        match client.call("Switch.GetStatus", json!({"id": id})).await {
            Ok(v) => match rpc::parse_switch(id, &v) {
                Ok(patch) => strip.apply(id, &patch),
                Err(e) => strip.warn(
                    &format!("{url} Switch.GetStatus id={id}"),
                    &e,
                    v.to_string().as_bytes(),
                ),
            },
            Err(e) => return failed(strip, failures, e),
        }
    }
    *failures = 0;
    if strip.offline.is_some() {
        strip.set_offline(None);
    }
}

fn failed(strip: &mut Strip, failures: &mut u32, e: ShellyError) {
    *failures += 1;
    // Malformed answers go through the throttle; transport errors are
    // one line per poll, as the single-plug driver logs them.
    match &e {
        ShellyError::Malformed { body, .. } => strip.warn("poll", &e, body.as_bytes()),
        _ => tracing::warn!("Shelly Pro 4PM `{}`: {e}", strip.name()),
    }
    if *failures == FAILURES_BEFORE_OFFLINE {
        strip.set_offline(Some(format!("{failures} polls in a row failed, last: {e}")));
    }
}

async fn execute(
    strip: &mut Strip,
    client: &mut ShellyClient,
    url: &str,
    failures: &mut u32,
    cmd: &DriverCommand,
) -> Result<(), ServiceError> {
    let order = strip.order(&cmd.entity_id, &cmd.service)?;
    tracing::info!(
        "Shelly Pro 4PM `{}`: {} {}",
        strip.name(),
        order.method,
        order.params
    );
    client
        .call(order.method, order.params)
        .await
        .map_err(|e| ServiceError::Driver {
            entity: order.entity_id,
            reason: e.to_string(),
        })?;
    // The switch shows what the device reads back, not what was sent.
    poll(strip, client, url, failures).await;
    Ok(())
}
