//! The event bus for events fired through the API (`fire_event`). State
//! changes come from the entity store; this carries everything else.

use crate::entity::Context;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it is closed (its
/// connection's send queue overflows long before this in practice).
const CAPACITY: usize = 4096;

#[derive(Debug)]
pub struct BusEvent {
    pub event_type: String,
    pub data: Value,
    pub context: Context,
    pub time_fired_ms: i64,
}

#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<BusEvent>>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            tx: broadcast::Sender::new(CAPACITY),
        }
    }
}

impl EventBus {
    pub fn fire(&self, event: BusEvent) {
        // No subscriber is not an error: HA fires into the void too.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.tx.subscribe()
    }
}
