//! Reconnection delays: 1 s, doubling up to 60 s, each with ±20 % jitter
//! (so nodes that lost the broker together do not all come back in the
//! same instant), back to 1 s after a success.
//!
//! The jitter comes from a random `u32` the caller gives (the ESP32's RNG,
//! or a seeded generator in the twin and tests): no RNG here.

/// First delay, ms.
pub const INITIAL_MS: u32 = 1_000;
/// Longest delay, ms: a jittered delay is never longer.
pub const MAX_MS: u32 = 60_000;
/// Jitter, ± percent of the nominal delay.
pub const JITTER_PERCENT: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Nominal delay of the next attempt, ms.
    nominal_ms: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    pub const fn new() -> Self {
        Backoff {
            nominal_ms: INITIAL_MS,
        }
    }

    /// The delay before the next attempt, ms: the nominal delay (1 s, 2 s,
    /// 4 s, … 32 s, 60 s, 60 s, …) scaled by a factor in 80 %..=120 % picked
    /// by `random` (uniformly over `u32`), at most [`MAX_MS`]. Doubles the
    /// nominal delay for the attempt after.
    pub fn next_delay_ms(&mut self, random: u32) -> u32 {
        let nominal = u64::from(self.nominal_ms);
        self.nominal_ms = self.nominal_ms.saturating_mul(2).min(MAX_MS);
        let span = u64::from(2 * JITTER_PERCENT + 1); // 80..=120: 41 steps
        let percent = u64::from(100 - JITTER_PERCENT) + ((u64::from(random) * span) >> 32);
        ((nominal * percent / 100) as u32).min(MAX_MS)
    }

    /// The nominal delay the next call starts from, ms (without jitter).
    pub fn nominal_ms(&self) -> u32 {
        self.nominal_ms
    }

    /// After a successful connection: the next failure waits 1 s again.
    pub fn reset(&mut self) {
        self.nominal_ms = INITIAL_MS;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The middle of the random range: factor 100 %.
    const MID: u32 = 1 << 31;

    #[test]
    fn doubles_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let seq: heapless::Vec<u32, 10> = (0..10).map(|_| b.next_delay_ms(MID)).collect();
        assert_eq!(
            seq.as_slice(),
            &[
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000
            ]
        );
        b.reset();
        assert_eq!(b.next_delay_ms(MID), 1_000);
        assert_eq!(b.next_delay_ms(MID), 2_000);
    }

    #[test]
    fn jitter_is_within_twenty_percent_and_never_above_the_cap() {
        let mut b = Backoff::new();
        assert_eq!(b.next_delay_ms(0), 800);
        assert_eq!(b.next_delay_ms(u32::MAX), 2_400);
        // Spread over the random range: every delay within ±20 %, both ends reached.
        let (mut lo, mut hi) = (u32::MAX, 0);
        for i in 0..1000u32 {
            let mut b = Backoff::new();
            let r = i.wrapping_mul(4_294_967); // spans the u32 range
            let d = b.next_delay_ms(r);
            assert!((800..=1_200).contains(&d), "{d}");
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert_eq!((lo, hi), (800, 1_200));
        // At the cap: at most 60 s, at least 48 s.
        let mut b = Backoff::new();
        for _ in 0..20 {
            b.next_delay_ms(MID);
        }
        assert_eq!(b.next_delay_ms(u32::MAX), MAX_MS);
        assert_eq!(b.next_delay_ms(0), 48_000);
    }
}
