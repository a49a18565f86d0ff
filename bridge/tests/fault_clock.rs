//! Issue 19, the wall clock steps (NTP): the bridge runs on a real-speed
//! clock that follows the wall clock (`Clock::stepped_wall`: the system's
//! clock plus an offset the test moves, the OS's clock untouched), which
//! steps +1 h and −1 h around a time-of-use boundary (HC from 22:00,
//! Europe/Paris). Asserted: the tariff period follows each step within a
//! few seconds (a timer computed before the step would keep the old
//! period for up to an hour), and after the step back the next boundary
//! still comes on time. The same for an opening-hours calendar (closed →
//! open → closed again within seconds of the step back). `Clock::real` (what `hearth run` uses) does not
//! follow steps yet (clock.rs says why): this shows the wall-clock planning
//! of the feeds is ready for a clock that does.

use crate::common;

use common::{BrokerKind, Harness, wait_for};
use hearth::clock::{Clock, WallStep};
use hearth::twin::TwinOptions;
use std::time::{Duration, Instant};

/// 2026-12-08 20:59:00 UTC = 21:59 in Paris: HP, one minute before HC.
const START_MS: i64 = 1_796_763_540_000;
const HOUR_MS: i64 = 3_600_000;
/// How soon after a step the period must follow (the feeds read the clock
/// again every `fetch::WALL_CHECK`, 1 s).
const FOLLOW: Duration = Duration::from_secs(5);

/// Steps the wall clock by `by_ms`, then waits (at most [`FOLLOW`]) until
/// `read` gives `want`, and prints how long that took.
async fn step_and_wait(
    step: &WallStep,
    by_ms: i64,
    what: &str,
    read: impl Fn() -> Option<String>,
    want: &str,
) {
    step.step(by_ms);
    let t = Instant::now();
    wait_for(what, FOLLOW, || {
        (read().as_deref() == Some(want)).then_some(())
    })
    .await;
    println!("{what}: {:.1?}", t.elapsed());
}

const TARIFF: &str = r#"
kind = "tou"
timezone = "Europe/Paris"
windows = [{start = "06:00", price = 0.25, period = "HP"}, {start = "22:00", price = 0.15, period = "HC"}]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tariff_periods_follow_wall_clock_steps_forward_and_back() {
    let (clock, step) = Clock::stepped_wall(START_MS);
    let h = Harness::start_on(BrokerKind::Embedded, clock, TwinOptions::default(), |c| {
        c.tariff = Some(toml::from_str(TARIFF).unwrap());
    })
    .await;
    let bridge = h.bridge();
    let period = || common::state(bridge, "sensor.tariff_period");
    let price = || common::state(bridge, "sensor.tariff_price");

    wait_for("HP at 21:59", Duration::from_secs(20), || {
        (period().as_deref() == Some("HP")).then_some(())
    })
    .await;
    assert!(
        clock.now_ms() < START_MS + 50_000,
        "the start took too long for this test ({} s of the minute used)",
        (clock.now_ms() - START_MS) / 1000
    );
    let hp_price = price();

    // NTP steps the clock forward one hour: 22:59, HC.
    step_and_wait(&step, HOUR_MS, "HC after the step forward", period, "HC").await;
    assert_ne!(price(), hp_price, "the price followed the period");

    // And back: 21:59 again, HP.
    step_and_wait(&step, -HOUR_MS, "HP after the step back", period, "HP").await;
    assert_eq!(price(), hp_price);

    // The next boundary, 22:00 on the stepped clock, comes on time.
    let left_ms = (START_MS + 60_000 - clock.now_ms()).max(0) as u64;
    wait_for(
        "HC at 22:00 after the step back",
        Duration::from_millis(left_ms) + FOLLOW,
        || (period().as_deref() == Some("HC")).then_some(()),
    )
    .await;
    let late_ms = clock.now_ms() - (START_MS + 60_000);
    println!("HC at 22:00 + {late_ms} ms");
    assert!(
        (0..FOLLOW.as_millis() as i64).contains(&late_ms),
        "HC came {late_ms} ms after 22:00"
    );
    h.stop().await;
}

/// The opening-hours calendar (the fixture's Monday, open 08:00–19:00
/// Paris, read from a file) on the stepped clock: closed at 07:59, open
/// after a +1 h step, closed again within a few seconds of the step back.
/// Before, the calendar slept until the boundary it had computed in the
/// old time (19:00) and stayed open for hours after the step back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_follows_wall_clock_steps_forward_and_back() {
    // Monday 2026-01-05 07:59 in Paris (CET).
    let start_ms = "2026-01-05T06:59:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let (clock, step) = Clock::stepped_wall(start_ms);
    let calendar: hearth::feeds::calendar::CalendarConfig = toml::from_str(concat!(
        "id = \"coworking\"\nname = \"Coworking\"\nmatch = \"open\"\nfile = \"",
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/calendar/opening-hours.ics\""
    ))
    .unwrap();
    let h = Harness::start_on(BrokerKind::Embedded, clock, TwinOptions::default(), |c| {
        c.calendar.push(calendar);
    })
    .await;
    let bridge = h.bridge();
    let open = || common::state(bridge, "binary_sensor.coworking_open");
    wait_for("closed at 07:59", Duration::from_secs(20), || {
        (open().as_deref() == Some("off")).then_some(())
    })
    .await;

    step_and_wait(&step, HOUR_MS, "open after the step forward", open, "on").await;

    step_and_wait(&step, -HOUR_MS, "closed after the step back", open, "off").await;
    h.stop().await;
}
