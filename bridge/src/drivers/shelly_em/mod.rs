//! Shelly Pro 3EM / Pro EM energy meters over Gen2 RPC (`[[shelly_em]]`):
//! a grid connection meter and/or a production meter (a clamp on the PV
//! line), read by HTTP polling. Keys in [`config`] (with an example),
//! entities in [`channels`], answers in [`rpc`] (with the vendor docs).
//!
//! Every `poll_interval_s`, per configured channel: `EM.GetStatus {id}` and
//! `EMData.GetStatus {id}` (model `pro3em`, triphase) or `EM1.GetStatus
//! {id}` and `EM1Data.GetStatus {id}` (model `proem`: the Pro EM, or a Pro
//! 3EM in its monophase profile). Each channel has a `role`:
//!
//! - `grid`: power + import / − export, the import counter and the
//!   export counter (`_ret`), for the energy dashboard's "grid
//!   consumption" and "return to grid";
//! - `production`: production power and counter, for "solar production".
//!
//! Counters are Wh, `total_increasing`: a counter reset on the device
//! (`EMData.ResetCounters`, a replaced meter) reads as a fall to near
//! zero, which HA's statistics and [`crate::energy`] count as a new cycle.
//! A device that fails 3 polls in a row is offline: its entities are
//! `unavailable` until a poll succeeds. A malformed answer, or an error
//! the device answers (−105 `Bad id` for a channel it does not have: the
//! Pro EM has `em1:0` and `em1:1`, a Pro 3EM in its monophase profile up
//! to `em1:2`), is logged through the throttled bad-input warnings and
//! skipped: the last good states stay, the other channels are read. The driver writes nothing else (the meters have no relay
//! this driver drives).

pub mod channels;
pub mod config;
pub mod rpc;

pub use config::{ChannelConfig, Model, Role, ShellyEmConfig};

use super::DriverContext;
use crate::drivers::shelly::{ShellyClient, ShellyError};
use crate::entity::{Device, format_number};
use crate::logging::Throttle;
use serde_json::{Map, json};
use std::sync::Arc;
use tokio::task::JoinHandle;

const OWNER: &str = "shelly_em";

use super::FAILURES_BEFORE_OFFLINE;

struct Meter {
    cfg: ShellyEmConfig,
    ctx: DriverContext,
    offline: Option<String>,
    failures: u32,
    bad_input: Arc<Throttle>,
}

pub fn spawn(cfg: ShellyEmConfig, ctx: &DriverContext) -> anyhow::Result<JoinHandle<()>> {
    ctx.store.upsert_device(
        OWNER,
        Device {
            id: cfg.id.clone(),
            name: cfg.name.clone(),
            manufacturer: "Shelly".into(),
            model: cfg.model.display().into(),
            sw_version: None,
            via_device: Some(crate::discovery::payload::BRIDGE_DEVICE.into()),
        },
    )?;
    for ch in &cfg.channels {
        for spec in channels::channel_entities(&cfg, ch) {
            ctx.store.upsert_entity(spec)?;
        }
    }
    let meter = Meter {
        cfg,
        ctx: ctx.clone(),
        offline: None,
        failures: 0,
        bad_input: Throttle::new("bad input"),
    };
    Ok(tokio::spawn(meter.run()))
}

/// Why one channel's poll did not give a reading.
enum PollError {
    /// No answer: counts towards offline.
    Transport(ShellyError),
    /// The device answered with an error (e.g. −105 `Bad id` for a
    /// channel it does not have): logged, the device stays online.
    Refused(String, ShellyError),
    Malformed(String, rpc::RpcError, String),
}

fn classify(source: String, e: ShellyError) -> PollError {
    match e {
        ShellyError::Rpc { .. } => PollError::Refused(source, e),
        other => PollError::Transport(other),
    }
}

/// Whether a poll that reached the meter succeeded: `read` channels were
/// read, `last_error` is the last refused or malformed answer. It failed
/// when no channel was read (with at least one error; a meter without
/// channels has nothing to fail).
fn poll_verdict(read: usize, last_error: Option<String>) -> Result<(), String> {
    match (read, last_error) {
        (0, Some(e)) => Err(format!("no channel read, last: {e}")),
        _ => Ok(()),
    }
}

impl Meter {
    async fn run(mut self) {
        let mut client = ShellyClient::new(&self.cfg.url());
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            self.poll(&mut client).await;
            let wait = self.ctx.clock.sleep_ms(self.cfg.poll_interval_s * 1000.0);
            tokio::select! {
                _ = wait => {}
                _ = shutdown.wait() => break,
            }
        }
    }

    /// One poll of every channel. A channel refused or answered malformed
    /// is logged and skipped; the meter is online if at least one channel
    /// was read. When none was (every answer refused or malformed), the
    /// poll failed: its values would otherwise stay frozen on a meter
    /// reported online.
    async fn poll(&mut self, client: &mut ShellyClient) {
        let mut read = 0;
        let mut last_error = None;
        for i in 0..self.cfg.channels.len() {
            match self.poll_channel(client, i).await {
                Ok(()) => read += 1,
                Err(PollError::Malformed(source, e, body)) => {
                    self.warn(&source, &e, &body);
                    last_error = Some(format!("{source}: {e}"));
                }
                Err(PollError::Refused(source, e)) => {
                    self.warn(&source, &e, "");
                    last_error = Some(format!("{source}: {e}"));
                }
                Err(PollError::Transport(e)) => return self.failed(e),
            }
        }
        match poll_verdict(read, last_error) {
            Ok(()) => {
                self.failures = 0;
                if self.offline.is_some() {
                    self.set_offline(None);
                }
            }
            Err(why) => self.count_failure(why),
        }
    }

    async fn poll_channel(&self, client: &mut ShellyClient, i: usize) -> Result<(), PollError> {
        let ch = &self.cfg.channels[i];
        let id = ch.channel;
        let (power_method, data_method) = match self.cfg.model {
            Model::Pro3em => ("EM.GetStatus", "EMData.GetStatus"),
            Model::Proem => ("EM1.GetStatus", "EM1Data.GetStatus"),
        };
        let source = |method: &str| format!("{} {method} id={id}", self.cfg.url());
        let p = client
            .call(power_method, json!({"id": id}))
            .await
            .map_err(|e| classify(source(power_method), e))?;
        let d = client
            .call(data_method, json!({"id": id}))
            .await
            .map_err(|e| classify(source(data_method), e))?;
        let malformed = |method: &str, e: rpc::RpcError, v: &serde_json::Value| {
            PollError::Malformed(source(method), e, v.to_string())
        };
        let (power, counters) = match self.cfg.model {
            Model::Pro3em => (
                rpc::parse_em(id, &p).map_err(|e| malformed(power_method, e, &p))?,
                rpc::parse_emdata(id, &d).map_err(|e| malformed(data_method, e, &d))?,
            ),
            Model::Proem => (
                rpc::parse_em1(id, &p).map_err(|e| malformed(power_method, e, &p))?,
                rpc::parse_em1data(id, &d).map_err(|e| malformed(data_method, e, &d))?,
            ),
        };
        let values = channels::values(self.cfg.model, ch, &power, &counters);
        for (s, v) in channels::sensors(self.cfg.model, ch).iter().zip(values) {
            let Some(v) = v else { continue };
            let _ = self.ctx.store.set_state(
                &channels::entity_id(&self.cfg.id, ch, &s.suffix),
                format_number(v, s.decimals),
                Map::new(),
            );
        }
        Ok(())
    }

    /// A malformed answer from `source` (URL + method), throttled.
    fn warn(&self, source: &str, e: &dyn std::fmt::Display, payload: &str) {
        if !self.bad_input.admit(source) {
            return;
        }
        if payload.is_empty() {
            tracing::warn!("shelly_em `{}` {source}: {e}; skipped", self.cfg.id);
        } else {
            tracing::warn!(
                "shelly_em `{}` {source}: {e} (payload `{}`); ignored",
                self.cfg.id,
                super::excerpt(payload.as_bytes())
            );
        }
    }

    fn failed(&mut self, e: ShellyError) {
        match &e {
            ShellyError::Malformed { body, .. } => {
                let body = body.clone();
                self.warn("poll", &e, &body)
            }
            _ => tracing::warn!(
                "Shelly {} `{}`: {e}",
                self.cfg.model.display(),
                self.cfg.name
            ),
        }
        self.count_failure(e.to_string());
    }

    /// A failed poll (`last`: why), already logged: offline at the
    /// [`FAILURES_BEFORE_OFFLINE`]th in a row.
    fn count_failure(&mut self, last: String) {
        self.failures += 1;
        if self.failures == FAILURES_BEFORE_OFFLINE {
            let why = format!("{} polls in a row failed, last: {last}", self.failures);
            self.set_offline(Some(why));
        }
    }

    fn set_offline(&mut self, why: Option<String>) {
        let what = format!("Shelly {} `{}`", self.cfg.model.display(), self.cfg.name);
        match (&self.offline, &why) {
            (Some(_), None) => tracing::info!("{what} is online again"),
            (None, Some(w)) => {
                tracing::warn!("{what} is offline ({w}): its sensors are unavailable")
            }
            _ => {}
        }
        self.ctx.store.set_availability(&self.cfg.id, why.is_none());
        self.offline = why;
    }
}

#[cfg(test)]
mod tests {
    use super::poll_verdict;

    #[test]
    fn a_poll_fails_when_no_channel_was_read() {
        assert!(poll_verdict(0, Some("Bad id=2".into())).is_err());
        assert!(poll_verdict(1, Some("Bad id=2".into())).is_ok());
        assert!(poll_verdict(2, None).is_ok());
    }
}
