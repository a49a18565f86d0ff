//! The closed loop alone in its binary (so no other test shares the cores
//! while it runs at 720× real time): twin + bridge + thermostat plugin hold
//! the simulated room in band for 6 simulated hours.

mod common;

use common::{BrokerKind, Harness};
use hearth::demo::power_transitions;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_holds_the_room_in_band_for_six_simulated_hours() {
    const SPEED: f64 = 720.0; // 6 h in 30 s
    let h = Harness::start(BrokerKind::Embedded, SPEED, |_| {}).await;
    let start = h.clock.now_ms();
    let mut samples = Vec::new();
    while h.clock.now_ms() - start < 6 * 3600 * 1000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = h.twin.snapshot();
        samples.push((s.sim_ms, s.room_c));
    }
    let report = hearth::demo::report(&h.twin, h.clock, (24.0, 0.3, 180.0), start, &samples);
    println!("{report}");
    let t0 = report
        .first_cooldown_s
        .expect("the first cool-down finished");
    // The room needs ≈ 57 min on an idle machine. At 720× every 100 ms of
    // wall latency (MQTT hops, a loaded CI runner) is 72 simulated seconds,
    // and a loaded 2-core runner measured 61–63 min: the bound leaves room
    // for that, and still fails a thermostat that starts late or stalls.
    assert!(t0 < 4500.0, "first cool-down took {t0} s");
    let (lo, hi) = report.band_after_cooldown.unwrap();
    assert!(
        report.in_band(),
        "room left 24 ± 0.8 °C after the first cool-down: {lo:.2}..{hi:.2}"
    );
    assert!(
        report.cycles_ok(),
        "AC cycled faster than 180 s: {:?}",
        report.shortest_cycle_s
    );
    let transitions = power_transitions(&h.twin, start);
    assert!(
        transitions.len() >= 10,
        "the thermostat cycles the AC ({} transitions in 6 h)",
        transitions.len()
    );
    assert!(
        h.twin.snapshot().energy_wh > 1000.0,
        "the plug metered the AC"
    );
    h.stop().await;
}
