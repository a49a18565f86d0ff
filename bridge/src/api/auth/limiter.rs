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
        let Some(q) = self.failures.get_mut(&key(ip)) else {
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
        let ip = key(ip);
        if self.failures.len() >= MAX_ADDRESSES && !self.failures.contains_key(&ip) {
            let window = self.window;
            self.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            // Still full of recent failures: forget the stalest address.
            if self.failures.len() >= MAX_ADDRESSES
                && let Some(stalest) = self
                    .failures
                    .iter()
                    .min_by_key(|(_, q)| q.back().copied())
                    .map(|(k, _)| *k)
            {
                self.failures.remove(&stalest);
            }
        }
        let q = self.failures.entry(ip).or_default();
        q.push_back(now);
        if q.len() > self.max_failures {
            q.pop_front();
        }
    }
}

/// IPv6 clients are counted per /64: one host usually owns the whole
/// prefix and could otherwise rotate addresses to escape the limit.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().expect("checked")),
        v4 => v4,
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

    #[test]
    fn ipv6_counts_per_prefix() {
        let mut l = Limiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        l.record_failure("2001:db8::1".parse().unwrap(), t0);
        assert!(l.check("2001:db8::2".parse().unwrap(), t0).is_err());
        assert!(l.check("2001:db8:0:1::1".parse().unwrap(), t0).is_ok());
    }
}
