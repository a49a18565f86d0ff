//! Push over the device's own MQTT client (Shelly "RPC Channels": MQTT,
//! "Notifications"; <https://shelly-api-docs.shelly.cloud/gen2/ComponentsAndServices/Mqtt>):
//!
//! | topic | payload | read as |
//! |---|---|---|
//! | `<prefix>/events/rpc` | `NotifyStatus` (`params["switch:<n>"]`: the changed fields only), `NotifyFullStatus`, `NotifyEvent` | a partial status merged over the known one; events are only "heard" |
//! | `<prefix>/status/switch:<n>` | the whole `Switch.GetStatus` object | a whole status (no `errors`: none) |
//! | `<prefix>/online` | `true` / `false` (retained; `false` is the device's last will) | availability |
//!
//! Frames are parsed by [`crate::drivers::shelly_rpc`]; a malformed one is
//! an error naming the component and field, and the caller keeps the last
//! good state.

use crate::broker::{Message, MqttLink};
use crate::drivers::shelly_rpc::{self, OutletStatus, RpcError};
use tokio::sync::mpsc;

/// `switch:<n>` keys accepted in a notification (other switches of a
/// multi-relay device are not this plug's, but not malformed either).
const MAX_SWITCHES: usize = 16;

/// What one push message says.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// A status of our switch; `whole` if every field is present.
    Status(OutletStatus),
    Online(bool),
    /// A frame that is not about our switch (`NotifyEvent`, another
    /// component): proof of life only.
    Other,
}

pub struct Push {
    events: mpsc::Receiver<Message>,
    status: mpsc::Receiver<Message>,
    online: mpsc::Receiver<Message>,
    status_topic: String,
    online_topic: String,
    switch_id: usize,
}

impl Push {
    pub fn subscribe(link: &MqttLink, prefix: &str, switch_id: u32) -> anyhow::Result<Push> {
        let status_topic = format!("{prefix}/status/switch:{switch_id}");
        let online_topic = format!("{prefix}/online");
        Ok(Push {
            events: link.subscribe(&format!("{prefix}/events/rpc"))?,
            status: link.subscribe(&status_topic)?,
            online: link.subscribe(&online_topic)?,
            status_topic,
            online_topic,
            switch_id: switch_id as usize,
        })
    }

    /// The next message on any of the three topics.
    pub async fn recv(&mut self) -> Option<Message> {
        tokio::select! {
            Some(m) = self.events.recv() => Some(m),
            Some(m) = self.status.recv() => Some(m),
            Some(m) = self.online.recv() => Some(m),
            else => None,
        }
    }

    /// A message already queued on any of the three topics, without
    /// waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        self.events
            .try_recv()
            .or_else(|_| self.status.try_recv())
            .or_else(|_| self.online.try_recv())
            .ok()
    }

    /// Reads one message.
    pub fn read(&self, msg: &Message) -> Result<Heard, RpcError> {
        if msg.topic == self.online_topic {
            return shelly_rpc::parse_online(&msg.text()).map(Heard::Online);
        }
        if msg.topic == self.status_topic {
            let v: serde_json::Value = serde_json::from_slice(&msg.payload)
                .map_err(|e| RpcError::NotJson(e.to_string()))?;
            return shelly_rpc::parse_switch(self.switch_id, &v).map(|s| Heard::Status(s.whole()));
        }
        Ok(
            match shelly_rpc::parse_notification(&msg.payload, MAX_SWITCHES)? {
                Some(updates) => updates
                    .into_iter()
                    .find(|(id, _)| *id == self.switch_id)
                    .map_or(Heard::Other, |(_, s)| Heard::Status(s)),
                None => Heard::Other,
            },
        )
    }
}
