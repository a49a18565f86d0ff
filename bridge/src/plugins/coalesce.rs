//! A plugin's state-change input, coalesced per entity: a device that
//! floods one topic (10 000 readings a second) must not queue 10 000
//! `on-state` calls a second for a plugin that takes a millisecond each,
//! nor grow the bridge's memory with them. The feeder puts each change
//! here and wakes the runner only when the entity had none pending; while
//! one is pending, a newer change replaces it (the latest value wins; the
//! old state stays the one before the first change the plugin has not
//! seen, so the plugin sees the whole step). Memory is one pending change
//! per entity; the runner's queue holds each entity at most once.
//!
//! Order: changes of one entity reach the plugin in order; a merged change
//! keeps its entity's place in the queue (that of its first unseen change),
//! so an entity that changes again does not wait behind everything that
//! changed after it.

use crate::entity::StateChanged;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

struct Pending {
    change: Arc<StateChanged>,
    /// Older changes this one replaced.
    merged: u64,
}

/// See the module doc.
#[derive(Default)]
pub struct Coalescer {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Coalescer {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a change; `true` when its entity had none pending (the caller
    /// then queues the entity id for the runner).
    pub fn put(&self, change: Arc<StateChanged>) -> bool {
        let mut pending = self.lock();
        match pending.get_mut(&change.entity_id) {
            Some(p) => {
                p.change = Arc::new(StateChanged {
                    entity_id: change.entity_id.clone(),
                    old_state: p.change.old_state.clone(),
                    new_state: change.new_state.clone(),
                });
                p.merged += 1;
                false
            }
            None => {
                pending.insert(change.entity_id.clone(), Pending { change, merged: 0 });
                true
            }
        }
    }

    /// The entity's pending change and how many older ones it replaced.
    pub fn take(&self, entity_id: &str) -> Option<(Arc<StateChanged>, u64)> {
        self.lock().remove(entity_id).map(|p| (p.change, p.merged))
    }

    /// Entities with a change pending.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::State;

    fn state(id: &str, v: &str) -> Option<State> {
        Some(State {
            entity_id: id.into(),
            state: v.into(),
            attributes: Default::default(),
            last_changed: 0,
            last_updated: 0,
            context: Default::default(),
        })
    }

    fn change(id: &str, old: &str, new: &str) -> Arc<StateChanged> {
        Arc::new(StateChanged {
            entity_id: id.into(),
            old_state: state(id, old),
            new_state: state(id, new),
        })
    }

    #[test]
    fn the_latest_value_wins_and_the_step_is_whole() {
        let c = Coalescer::default();
        assert!(c.put(change("sensor.a", "1", "2")));
        assert!(!c.put(change("sensor.a", "2", "3")));
        assert!(c.put(change("sensor.b", "x", "y")));
        assert!(!c.put(change("sensor.a", "3", "4")));
        assert_eq!(c.len(), 2);
        let (a, merged) = c.take("sensor.a").unwrap();
        assert_eq!(merged, 2);
        assert_eq!(a.old_state.as_ref().unwrap().state, "1");
        assert_eq!(a.new_state.as_ref().unwrap().state, "4");
        assert!(c.take("sensor.a").is_none(), "taken once");
        // After a take, the next change wakes the runner again.
        assert!(c.put(change("sensor.a", "4", "5")));
        assert_eq!(c.take("sensor.b").unwrap().1, 0);
    }
}
