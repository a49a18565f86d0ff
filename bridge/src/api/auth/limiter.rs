//! Failed-login rate limit per client address, in the spirit of HA's
//! `login_attempts_threshold`: after `max_failures` failures within
//! `window`, the address is refused (without checking its token, so it
//! cannot keep guessing) until its oldest failure leaves the window.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses tracked at most; beyond it the stalest are forgotten first.
const MAX_ADDRESSES: usize = 10_000;

pub struct Limiter {
    max_failures: usize,
    window: Duration,
    failures: HashMap<IpAddr, VecDeque<Instant>>,
}

impl Limiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Limiter {
            max_failures: max_failures.max(1) as usize,
            window,
            failures: HashMap::new(),
        }
    }

    /// `Err(retry_after)` while the address is blocked.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(q) = self.failures.get_mut(&ip) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() >= self.max_failures {
            let oldest = *q.front().expect("non-empty");
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_ADDRESSES && !self.failures.contains_key(&ip) {
            let window = self.window;
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
        }
        let q = self.failures.entry(ip).or_default();
        q.push_back(now);
        if q.len() > self.max_failures {
            q.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_threshold_and_recovers() {
        let mut l = Limiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check(ip, t0).is_ok(), "attempt {i}");
            l.record_failure(ip, t0 + Duration::from_secs(i));
        }
        let retry = l.check(ip, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        assert!(
            l.check(other, t0).is_ok(),
            "other addresses are not affected"
        );
        assert!(l.check(ip, t0 + Duration::from_secs(61)).is_ok());
    }
}
