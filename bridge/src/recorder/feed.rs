//! The task that turns the entity store's events (and the API's event bus)
//! into queued rows. It never waits for the disk: it presents each state
//! as HA shows it (friendly name, unit…, so history keeps them even after
//! the entity is gone) and queues it.

use super::queue::{Command, EventRow, Reply, Row, Shared, StateRow};
use crate::api::events::BusEvent;
use crate::api::registry::Registry;
use crate::entity::{EntitySpec, EntityStore, StoreEvent};
use serde_json::json;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

/// Events taken from the store per queue lock.
const BATCH: usize = 1024;

enum Control {
    Flush(Reply<()>),
    Stop(tokio::sync::oneshot::Sender<()>),
}

pub struct FeedHandle {
    control: mpsc::UnboundedSender<Control>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl FeedHandle {
    /// Queues everything the store announced so far, then asks the writer
    /// to commit it; `reply` gets the outcome.
    pub fn flush(&self, reply: Reply<()>, shared: &Shared) {
        if let Err(mpsc::error::SendError(Control::Flush(reply))) =
            self.control.send(Control::Flush(reply))
        {
            // The feed has stopped: everything it had is queued already.
            let upto = shared.lock().pushed;
            shared.command(Command::Flush { upto, reply });
        }
    }

    /// Queues what the store announced, stops the feed and the writer
    /// (which commits what is queued first).
    pub async fn stop(&self, shared: &Shared) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.control.send(Control::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        shared.stop();
    }
}

pub fn spawn(store: Arc<EntityStore>, shared: Arc<Shared>) -> FeedHandle {
    let (snapshot, mut rx) = store.subscribe();
    let mut registry = Registry::from_snapshot(&snapshot);
    let mut first = Vec::new();
    for (spec, state) in &snapshot.entities {
        first.push(entity_row(spec));
        if let Some(s) = state {
            first.push(Row::State(StateRow {
                entity_id: s.entity_id.clone(),
                state: Some(registry.present(s)),
                time_ms: s.last_updated,
                initial: true,
            }));
        }
    }
    shared.push(first);
    let clock = store.clock();
    drop(store);
    let (control, mut control_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                ev = rx.recv() => {
                    let Some(ev) = ev else { break };
                    batch.push(row_of(&mut registry, ev, clock.now_ms()));
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(ev) => batch.push(row_of(&mut registry, ev, clock.now_ms())),
                            Err(_) => break,
                        }
                    }
                    shared.push(batch.drain(..));
                }
                c = control_rx.recv() => {
                    // Everything the store emitted before the request is in
                    // `rx` already (emitting is synchronous): queue it first.
                    while let Ok(ev) = rx.try_recv() {
                        batch.push(row_of(&mut registry, ev, clock.now_ms()));
                    }
                    shared.push(batch.drain(..));
                    match c {
                        Some(Control::Flush(reply)) => {
                            let upto = shared.lock().pushed;
                            shared.command(Command::Flush { upto, reply });
                        }
                        Some(Control::Stop(done)) => {
                            let _ = done.send(());
                            break;
                        }
                        None => break,
                    }
                }
            }
        }
    });
    FeedHandle {
        control,
        task: Mutex::new(Some(task)),
    }
}

fn entity_row(spec: &EntitySpec) -> Row {
    Row::Entity {
        entity_id: spec.entity_id.clone(),
        state_class: spec.state_class.clone(),
        unit: spec.unit.clone(),
    }
}

fn local_event(event_type: &str, data: serde_json::Value, time_ms: i64) -> Row {
    Row::Event(EventRow {
        event_type: event_type.into(),
        data,
        origin: "LOCAL",
        time_ms,
        context_id: None,
    })
}

/// One store event as a row. Registry changes become HA's
/// `entity_registry_updated` / `device_registry_updated` events, and
/// availability Hearth's `hearth_device_availability`.
fn row_of(registry: &mut Registry, ev: StoreEvent, now_ms: i64) -> Row {
    registry.observe(&ev);
    match ev {
        StoreEvent::StateChanged(c) => Row::State(StateRow {
            entity_id: c.entity_id.clone(),
            state: c.new_state.as_ref().map(|s| registry.present(s)),
            time_ms: now_ms,
            initial: false,
        }),
        StoreEvent::EntityAdded(spec) => entity_row(&spec),
        StoreEvent::EntityRemoved(spec) => local_event(
            "entity_registry_updated",
            json!({"action": "remove", "entity_id": spec.entity_id}),
            now_ms,
        ),
        StoreEvent::DeviceAdded(d) => local_event(
            "device_registry_updated",
            json!({"action": "update", "device_id": d.id}),
            now_ms,
        ),
        StoreEvent::DeviceRemoved(d) => local_event(
            "device_registry_updated",
            json!({"action": "remove", "device_id": d.id}),
            now_ms,
        ),
        StoreEvent::Availability {
            device_id,
            available,
        } => local_event(
            "hearth_device_availability",
            json!({"device_id": device_id, "available": available}),
            now_ms,
        ),
    }
}

/// Records events fired through the API (origin `REMOTE`). A subscriber
/// that falls behind the bus loses events: counted and logged.
pub fn watch_bus(mut rx: broadcast::Receiver<Arc<BusEvent>>, shared: Arc<Shared>) {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => shared.push_one(Row::Event(EventRow {
                    event_type: e.event_type.clone(),
                    data: e.data.clone(),
                    origin: "REMOTE",
                    time_ms: e.time_fired_ms,
                    context_id: Some(e.context.id.clone()),
                })),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    shared.stats_mut().dropped_rows += n;
                    tracing::error!(
                        "recorder: fell {n} events behind the API's event bus; they are not recorded"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    });
}
