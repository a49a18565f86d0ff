//! The one clock of a running Hearth: wall time for `hearth run`, simulated
//! time (wall time × speed) for the digital twin. Bridge, plugins and twin
//! all read it, so a min-cycle of 180 s means 180 simulated seconds.
//! Batch simulation (`hearth simulate`) uses a [`Clock::manual`] clock that
//! only moves when the simulator sets it: virtual time, as fast as the
//! machine allows.
//!
//! Wall-clock steps (NTP correcting a clock, a Raspberry Pi without RTC
//! that boots in 1970 or last week): [`Clock::real`] still counts from its
//! start on the monotonic clock, so a step is seen only at the next start.
//! Following steps at once is not safe yet: the host and the plugins
//! measure durations as differences of [`Clock::now_ms`] (the thermostat's
//! minimum cycle, the safety envelope's `min_off_s`, device liveness), and
//! a step would shorten or stretch them by the step; those need a
//! monotonic time of their own first. What reads the wall clock to plan
//! (the feeds' schedules, [`crate::feeds`]'s `sleep_until_or_step`) already
//! copes with a clock that steps: [`Clock::stepped_wall`], the system's
//! clock plus an offset a test moves with [`WallStep`], shows it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin_wall: Instant,
    origin_ms: i64,
    speed: f64,
    /// Virtual time, set by its [`ManualTime`]; `None` for a running clock.
    manual: Option<&'static AtomicI64>,
    /// Reads the system's wall clock (at speed 1) instead of counting from
    /// `origin_ms` on the monotonic clock.
    follows_wall: bool,
    /// Added to the wall clock: a test's [`WallStep`]s.
    offset: Option<&'static AtomicI64>,
}

/// Steps a [`Clock::stepped_wall`] clock as NTP steps the system's.
#[derive(Debug, Clone, Copy)]
pub struct WallStep(&'static AtomicI64);

impl WallStep {
    /// Moves the wall clock by `delta_ms` (negative: back).
    pub fn step(&self, delta_ms: i64) {
        self.0.fetch_add(delta_ms, Ordering::Relaxed);
    }
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The hand that moves a [`Clock::manual`] clock.
#[derive(Debug, Clone, Copy)]
pub struct ManualTime(&'static AtomicI64);

impl ManualTime {
    /// Sets the time (ms since the Unix epoch).
    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Clock {
    /// Wall-clock time: the system's at the start, then counted on the
    /// monotonic clock (see the module doc on steps).
    pub fn real() -> Self {
        Self::simulated(1.0)
    }

    /// The system's wall clock shifted to read `start_ms` now, which
    /// [`WallStep`] moves forward or back (tests of clock steps). Its cell
    /// is leaked (8 bytes), as [`Clock::manual`]'s.
    pub fn stepped_wall(start_ms: i64) -> (Self, WallStep) {
        let cell: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(start_ms - system_ms())));
        let clock = Clock {
            offset: Some(cell),
            follows_wall: true,
            ..Self::real()
        };
        (clock, WallStep(cell))
    }

    /// Starts now; runs `speed` simulated seconds per wall second.
    pub fn simulated(speed: f64) -> Self {
        let origin_ms = system_ms();
        Clock {
            origin_wall: Instant::now(),
            origin_ms,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
            manual: None,
            follows_wall: false,
            offset: None,
        }
    }

    /// Starts at `start_ms` (ms since the Unix epoch) and runs `speed`
    /// simulated seconds per wall second: a demo that continues the
    /// simulated time of an earlier run.
    pub fn simulated_from(start_ms: i64, speed: f64) -> Self {
        Clock {
            origin_ms: start_ms,
            ..Self::simulated(speed)
        }
    }

    /// A clock that stands at `start_ms` until its [`ManualTime`] moves it.
    /// Its cell is leaked (8 bytes per clock) so the clock stays `Copy`;
    /// a simulation makes one per run. Sleeping on it returns at once.
    pub fn manual(start_ms: i64) -> (Self, ManualTime) {
        let cell: &'static AtomicI64 = Box::leak(Box::new(AtomicI64::new(start_ms)));
        let clock = Clock {
            origin_wall: Instant::now(),
            origin_ms: start_ms,
            speed: f64::INFINITY,
            manual: Some(cell),
            follows_wall: false,
            offset: None,
        };
        (clock, ManualTime(cell))
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Milliseconds since the Unix epoch, on this clock.
    pub fn now_ms(&self) -> i64 {
        if let Some(cell) = self.manual {
            return cell.load(Ordering::Relaxed);
        }
        let offset = self.offset.map_or(0, |c| c.load(Ordering::Relaxed));
        if self.follows_wall {
            return system_ms() + offset;
        }
        let wall = self.origin_wall.elapsed().as_secs_f64();
        self.origin_ms + (wall * self.speed * 1000.0) as i64 + offset
    }

    /// Wall duration of `sim_ms` simulated milliseconds (negative or NaN
    /// → zero, beyond range → a year).
    pub fn wall(&self, sim_ms: f64) -> Duration {
        if self.manual.is_some() {
            return Duration::ZERO;
        }
        let secs = sim_ms / 1000.0 / self.speed;
        if secs.is_nan() || secs <= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(secs)
            .unwrap_or(Duration::from_secs(365 * 86_400))
            .min(Duration::from_secs(365 * 86_400))
    }

    /// Sleeps for `sim_ms` of this clock's time.
    pub async fn sleep_ms(&self, sim_ms: f64) {
        tokio::time::sleep(self.wall(sim_ms)).await;
    }
}

/// `2026-11-21T10:00:00.000+00:00`, HA's timestamp shape.
pub fn iso8601(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}+00:00",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian, UTC).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000+00:00");
        assert_eq!(iso8601(1_763_719_200_123), "2025-11-21T10:00:00.123+00:00");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000+00:00");
    }

    #[test]
    fn simulated_clock_runs_faster() {
        let c = Clock::simulated(1000.0);
        let a = c.now_ms();
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.now_ms() - a >= 19_000);
        assert_eq!(c.wall(60_000.0), Duration::from_millis(60));
    }

    #[test]
    fn a_stepped_wall_clock_follows_its_steps() {
        let start = 1_765_000_000_000;
        let (c, step) = Clock::stepped_wall(start);
        assert!((c.now_ms() - start).abs() < 1_000);
        step.step(3_600_000);
        assert!((c.now_ms() - start - 3_600_000).abs() < 1_000);
        step.step(-7_200_000);
        assert!((c.now_ms() - start + 3_600_000).abs() < 1_000);
        // Durations stay monotonic.
        assert_eq!(c.wall(60_000.0), Duration::from_secs(60));
        // `real` starts at the system's clock.
        assert!((Clock::real().now_ms() - system_ms()).abs() < 1_000);
    }

    #[test]
    fn manual_clock_moves_only_when_set() {
        let (c, hand) = Clock::manual(1_000);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now_ms(), 1_000);
        hand.set(3_600_000);
        assert_eq!(c.now_ms(), 3_600_000);
        assert_eq!(c.wall(60_000.0), Duration::ZERO);
    }
}
