//! The MQTT transport (Shelly "RPC Channels": MQTT, and "Notifications"):
//! requests as JSON-RPC frames on `<prefix>/rpc` with `src` =
//! `hearth-<id>`, answers on `hearth-<id>/rpc`, `NotifyStatus` pushed on
//! `<prefix>/events/rpc` (the device's "RPC status notifications",
//! `mqtt.rpc_ntf`, on by default), `<prefix>/online` `true`/`false`
//! (retained; `false` is its last will).

use super::{Order, Strip, rpc};
use crate::broker::{Message, MqttLink};
use crate::entity::{DriverCommand, ServiceError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long a command waits for the device's answer (wall time).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Subscriptions {
    events: mpsc::Receiver<Message>,
    online: mpsc::Receiver<Message>,
    answers: mpsc::Receiver<Message>,
    src: String,
}

impl Subscriptions {
    pub(crate) fn new(link: &MqttLink, prefix: &str, id: &str) -> anyhow::Result<Self> {
        let src = format!("hearth-{id}");
        Ok(Subscriptions {
            events: link.subscribe(&format!("{prefix}/events/rpc"))?,
            online: link.subscribe(&format!("{prefix}/online"))?,
            answers: link.subscribe(&format!("{src}/rpc"))?,
            src,
        })
    }
}

struct Session {
    prefix: String,
    src: String,
    next_id: u64,
    /// Request id → switch id, for `Switch.GetStatus` answers.
    status_asked: HashMap<u64, usize>,
}

pub(crate) async fn run(
    mut strip: Strip,
    prefix: String,
    mut subs: Subscriptions,
    mut commands: mpsc::Receiver<DriverCommand>,
) {
    let mut s = Session {
        prefix,
        src: subs.src.clone(),
        next_id: 1,
        status_asked: HashMap::new(),
    };
    let mut shutdown = strip.ctx.shutdown.clone();
    s.ask_status(&strip, 0..super::OUTLETS).await;
    loop {
        tokio::select! {
            Some(cmd) = commands.recv() => {
                if cmd.reply.is_closed() {
                    continue; // the caller gave up (timed out): do not act late
                }
                let result = match strip.order(&cmd.entity_id, &cmd.service) {
                    Ok(order) => s.execute(&mut strip, &mut subs.answers, order).await,
                    Err(e) => Err(e),
                };
                let _ = cmd.reply.send(result);
            }
            Some(msg) = subs.events.recv() => on_event(&mut strip, &msg),
            Some(msg) = subs.answers.recv() => s.on_answer(&mut strip, &msg),
            Some(msg) = subs.online.recv() => {
                match rpc::parse_online(&msg.text()) {
                    Ok(true) => {
                        strip.set_offline(None);
                        // Relays may have changed while it was away.
                        s.ask_status(&strip, 0..super::OUTLETS).await;
                    }
                    Ok(false) => strip.set_offline(Some(format!("{} = false", msg.topic))),
                    Err(e) => strip.warn(&msg.topic, &e, &msg.payload),
                }
            }
            _ = shutdown.wait() => break,
            else => break,
        }
    }
}

fn on_event(strip: &mut Strip, msg: &Message) {
    match rpc::parse_notification(&msg.payload) {
        Ok(Some(updates)) => {
            for (id, patch) in updates {
                strip.apply(id, &patch);
            }
        }
        Ok(None) => {} // NotifyEvent and kin: not statuses
        Err(e) => strip.warn(&msg.topic, &e, &msg.payload),
    }
}

impl Session {
    async fn send(&mut self, strip: &Strip, method: &str, params: Value) -> anyhow::Result<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let frame = rpc::request(id, &self.src, method, params);
        strip
            .ctx
            .link
            .publish(&format!("{}/rpc", self.prefix), frame, false)
            .await?;
        Ok(id)
    }

    async fn ask_status(&mut self, strip: &Strip, ids: impl Iterator<Item = usize>) {
        for sw in ids {
            match self
                .send(strip, "Switch.GetStatus", json!({"id": sw}))
                .await
            {
                Ok(req) => {
                    self.status_asked.insert(req, sw);
                }
                Err(e) => tracing::warn!(
                    "Shelly Pro 4PM `{}`: cannot ask switch:{sw}'s status: {e:#}",
                    strip.name()
                ),
            }
        }
        // Answers that never came (device away) must not pile up.
        if self.status_asked.len() > 64 {
            let oldest = self.next_id.saturating_sub(16);
            self.status_asked.retain(|req, _| *req >= oldest);
        }
    }

    /// A response on `<src>/rpc` that no command is waiting for: a status.
    fn on_answer(&mut self, strip: &mut Strip, msg: &Message) {
        let r = match rpc::parse_response(&msg.payload) {
            Ok(r) => r,
            Err(e) => return strip.warn(&msg.topic, &e, &msg.payload),
        };
        let Some(sw) = self.status_asked.remove(&r.id) else {
            return; // an answer to a command that timed out
        };
        match r.outcome {
            Ok(v) => match rpc::parse_switch(sw, &v) {
                Ok(patch) => strip.apply(sw, &patch),
                Err(e) => strip.warn(&msg.topic, &e, &msg.payload),
            },
            Err((code, message)) => tracing::warn!(
                "Shelly Pro 4PM `{}`: Switch.GetStatus id={sw}: device error {code}: {message}",
                strip.name()
            ),
        }
    }

    /// Sends the command and waits for its answer; answers to other
    /// requests that arrive meanwhile are handled as usual.
    async fn execute(
        &mut self,
        strip: &mut Strip,
        answers: &mut mpsc::Receiver<Message>,
        order: Order,
    ) -> Result<(), ServiceError> {
        let fail = |reason: String| ServiceError::Driver {
            entity: order.entity_id.clone(),
            reason,
        };
        let what = format!("{} {}", order.method, order.params);
        tracing::info!("Shelly Pro 4PM `{}`: {what}", strip.name());
        let req = self
            .send(strip, order.method, order.params.clone())
            .await
            .map_err(|e| fail(format!("{what}: {e:#}")))?;
        let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, answers.recv()).await {
                Ok(Some(m)) => m,
                Ok(None) => return Err(fail(format!("{what}: the MQTT link is closed"))),
                Err(_) => {
                    return Err(fail(format!(
                        "{what}: no answer on {}/rpc within {} s",
                        self.src,
                        ANSWER_TIMEOUT.as_secs()
                    )));
                }
            };
            match rpc::parse_response(&msg.payload) {
                Ok(r) if r.id == req => {
                    return match r.outcome {
                        Ok(_) => {
                            // Read back: the NotifyStatus that follows may be
                            // switched off on the device (`rpc_ntf`).
                            if let Some(sw) = order.params.get("id").and_then(Value::as_u64) {
                                self.ask_status(strip, std::iter::once(sw as usize)).await;
                            }
                            Ok(())
                        }
                        Err((code, message)) => {
                            Err(fail(format!("{what}: device error {code}: {message}")))
                        }
                    };
                }
                _ => self.on_answer(strip, &msg),
            }
        }
    }
}
