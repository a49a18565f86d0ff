//! The outcomes of a plugin's service calls, for the plugin itself (WIT
//! 0.1.2 `host.call-results`): the runner numbers each call of an output
//! and notes when it was emitted; the call executor (or the runner, for a
//! call it refuses itself) records the router's answer here; the plugin
//! drains them at its next call.
//!
//! One [`CallOutcomes`] per runner (plugin instance name), shared with
//! every wasmtime instance the runner adopts (first start, restarts,
//! swaps), so an outcome that arrives after a swap reaches the plugin now in
//! control of the same devices, and ids keep counting.
//!
//! Why an import the plugin calls and not an export the host calls
//! (`on-call-result`): a new export would be missing in every plugin built
//! for 0.1.0 or 0.1.1, and the world's exports are checked when a plugin is
//! linked, so they would no longer load; a new import is simply not
//! imported by old plugins (wit/controller.wit, "Versioning").

use super::engine::wit;
use std::collections::VecDeque;
use std::sync::Mutex;

/// Unread outcomes kept per plugin, newest kept: one output carries at most
/// [`MAX_OUTPUT_ITEMS`](super::runner::MAX_OUTPUT_ITEMS) calls and the call
/// queue holds 256, so a plugin reading at every call loses none; one that
/// never reads holds at most this much memory (≈ 100 KB).
pub const UNREAD_KEPT: usize = 256;

/// Where a call came from: its number, and its place in an output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emitted {
    pub id: u64,
    /// Host time when the call that returned the output began, ms.
    pub at_ms: i64,
    /// Index within the output's `calls`.
    pub index: u32,
}

#[derive(Default)]
struct Queue {
    issued: u64,
    unread: VecDeque<wit::CallResult>,
}

/// See the module doc.
#[derive(Default)]
pub struct CallOutcomes {
    queue: Mutex<Queue>,
}

impl CallOutcomes {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Numbers the next call (from 1).
    pub fn issue(&self, at_ms: i64, index: u32) -> Emitted {
        let mut q = self.lock();
        q.issued += 1;
        Emitted {
            id: q.issued,
            at_ms,
            index,
        }
    }

    /// Records a call's outcome: `Err` holds the reason in words.
    pub fn record(
        &self,
        emitted: Emitted,
        domain: &str,
        service: &str,
        entity_ids: &[String],
        outcome: Result<(), String>,
    ) {
        let mut q = self.lock();
        if q.unread.len() == UNREAD_KEPT {
            q.unread.pop_front();
        }
        q.unread.push_back(wit::CallResult {
            id: emitted.id,
            emitted_ms: emitted.at_ms,
            index: emitted.index,
            domain: domain.into(),
            service: service.into(),
            entity_ids: entity_ids.to_vec(),
            error: outcome.err(),
        });
    }

    /// Every unread outcome, oldest first; each is returned once.
    pub fn drain(&self) -> Vec<wit::CallResult> {
        self.lock().unread.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_numbered_returned_once_and_bounded() {
        let o = CallOutcomes::default();
        let a = o.issue(1000, 0);
        let b = o.issue(1000, 1);
        assert_eq!((a.id, b.id, b.index), (1, 2, 1));
        o.record(a, "switch", "turn_on", &["switch.x".into()], Ok(()));
        o.record(
            b,
            "switch",
            "turn_on",
            &["switch.x".into()],
            Err("no".into()),
        );
        let got = o.drain();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].error, None);
        assert_eq!((got[1].id, got[1].error.as_deref()), (2, Some("no")));
        assert!(o.drain().is_empty(), "returned once");
        for i in 0..(UNREAD_KEPT as u32 + 10) {
            let e = o.issue(0, i);
            o.record(e, "switch", "turn_off", &[], Ok(()));
        }
        let kept = o.drain();
        assert_eq!(kept.len(), UNREAD_KEPT);
        assert_eq!(kept[0].index, 10, "the oldest are dropped");
    }
}
