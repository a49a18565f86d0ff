//! Readings taken while the node cannot publish (Wi-Fi or MQTT down), kept
//! in a bounded FIFO and sent on reconnect with their age
//! ([`Telemetry::age_ms`]), so the bridge records them at the time they were
//! taken. When full, the oldest reading is dropped (the newest matter most)
//! and counted.
//!
//! Times are the node's monotonic milliseconds (time since boot): the node
//! needs no wall clock; the receiver computes `receive time − age_ms`.
//!
//! Sending: [`OfflineBuffer::peek`] the oldest, publish it, and
//! [`OfflineBuffer::pop`] it only once the publish succeeded, so a reading
//! is not lost when the link drops again mid-flush; or [`OfflineBuffer::drain`]
//! when a lost reading is acceptable.

use crate::Telemetry;

/// One buffered reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Buffered {
    pub telemetry: Telemetry,
    /// Monotonic ms at which it was taken.
    pub taken_at_ms: u64,
}

impl Buffered {
    /// The reading as sent at `now_ms`: `age_ms` = `now_ms − taken_at_ms`
    /// (0 if the clock went backwards; saturated at `u32::MAX`, ~49 days).
    pub fn aged(&self, now_ms: u64) -> Telemetry {
        let age = now_ms.saturating_sub(self.taken_at_ms);
        Telemetry {
            age_ms: Some(u32::try_from(age).unwrap_or(u32::MAX)),
            ..self.telemetry
        }
    }
}

/// Bounded FIFO of at most `N` readings (`N` ≥ 1); drops the oldest when full.
#[derive(Debug, Clone)]
pub struct OfflineBuffer<const N: usize> {
    items: heapless::Deque<Buffered, N>,
    dropped: u32,
}

impl<const N: usize> Default for OfflineBuffer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> OfflineBuffer<N> {
    pub const fn new() -> Self {
        OfflineBuffer {
            items: heapless::Deque::new(),
            dropped: 0,
        }
    }

    /// Keeps a reading taken at `taken_at_ms`. Returns the reading dropped
    /// to make room (the oldest), if the buffer was full.
    pub fn push(&mut self, telemetry: Telemetry, taken_at_ms: u64) -> Option<Buffered> {
        let mut evicted = None;
        if self.items.is_full() {
            evicted = self.items.pop_front();
            if evicted.is_some() {
                self.dropped = self.dropped.saturating_add(1);
            }
        }
        let item = Buffered {
            telemetry,
            taken_at_ms,
        };
        // Cannot fail (room was made above; heapless refuses N == 0 at
        // compile time), but if it did, the reading itself is dropped.
        if self.items.push_back(item).is_err() {
            self.dropped = self.dropped.saturating_add(1);
            return Some(item);
        }
        evicted
    }

    /// The oldest reading as it would be sent at `now_ms`, not removed.
    pub fn peek(&self, now_ms: u64) -> Option<Telemetry> {
        self.items.front().map(|b| b.aged(now_ms))
    }

    /// Removes the oldest reading; returns it as sent at `now_ms`.
    pub fn pop(&mut self, now_ms: u64) -> Option<Telemetry> {
        self.items.pop_front().map(|b| b.aged(now_ms))
    }

    /// Removes every reading, oldest first, each as sent at `now_ms`.
    pub fn drain(&mut self, now_ms: u64) -> impl Iterator<Item = Telemetry> + '_ {
        core::iter::from_fn(move || self.pop(now_ms))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub const fn capacity(&self) -> usize {
        N
    }

    /// Readings dropped since the buffer was made (full buffer), saturating.
    pub fn dropped(&self) -> u32 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(uptime: u32) -> Telemetry {
        Telemetry {
            temperature: Some(20.0),
            uptime: Some(uptime),
            ..Default::default()
        }
    }

    #[test]
    fn keeps_order_and_ages() {
        let mut b = OfflineBuffer::<4>::new();
        assert!(b.is_empty());
        assert_eq!(b.push(reading(1), 1_000), None);
        assert_eq!(b.push(reading(2), 11_000), None);
        assert_eq!(b.len(), 2);
        let first = b.peek(31_000).unwrap();
        assert_eq!(first.uptime, Some(1));
        assert_eq!(first.age_ms, Some(30_000));
        assert_eq!(b.len(), 2, "peek keeps it");
        assert_eq!(b.pop(31_000).unwrap().age_ms, Some(30_000));
        let second = b.pop(31_000).unwrap();
        assert_eq!((second.uptime, second.age_ms), (Some(2), Some(20_000)));
        assert_eq!(b.pop(31_000), None);
        assert_eq!(b.dropped(), 0);
    }

    #[test]
    fn full_buffer_drops_the_oldest_and_counts() {
        let mut b = OfflineBuffer::<3>::new();
        for i in 0..3 {
            assert_eq!(b.push(reading(i), u64::from(i) * 1000), None);
        }
        let gone = b.push(reading(3), 3_000).unwrap();
        assert_eq!(gone.telemetry.uptime, Some(0));
        b.push(reading(4), 4_000);
        assert_eq!(b.len(), 3);
        assert_eq!(b.capacity(), 3);
        assert_eq!(b.dropped(), 2);
        let sent: heapless::Vec<(Option<u32>, Option<u32>), 3> =
            b.drain(10_000).map(|t| (t.uptime, t.age_ms)).collect();
        assert_eq!(
            sent.as_slice(),
            &[
                (Some(2), Some(8_000)),
                (Some(3), Some(7_000)),
                (Some(4), Some(6_000))
            ]
        );
        assert!(b.is_empty());
        assert_eq!(b.dropped(), 2, "draining is not dropping");
    }

    #[test]
    fn ages_saturate_and_never_go_negative() {
        let mut b = OfflineBuffer::<2>::new();
        b.push(reading(0), 5_000);
        assert_eq!(b.peek(4_000).unwrap().age_ms, Some(0));
        assert_eq!(b.peek(u64::MAX).unwrap().age_ms, Some(u32::MAX));
    }
}
