//! Streaming contract (issue 13, item 4): a score uses only earlier rows
//! (causality, checked bitwise), and `save`/`restore` through the
//! controller continues exactly where the saved instance was.

use hearth_plugin_anomaly_detector::AnomalyDetector;
use hearth_plugin_anomaly_detector::config::Kind;
use hearth_plugin_anomaly_detector::detector::{Detector, Method, Scored};
use hearth_plugin_anomaly_detector::forest;
use hearth_plugin_anomaly_detector::hst::SplitMix64;
use hearth_plugin_sdk::serde_json::json;
use hearth_plugin_sdk::{Change, Controller, Output, State};

const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 300_000; // 5 min
const ROWS: usize = 3000;

/// A daily wave with noise, jittered timestamps, a gap, a few spikes and a
/// level shift: every path of the detector is taken.
fn rows(seed: u64) -> Vec<(i64, f64)> {
    let mut rng = SplitMix64(seed);
    let mut t = T0;
    (0..ROWS)
        .map(|i| {
            t += STEP + ((rng.next_f64() - 0.5) * 60_000.0) as i64;
            if i == 1700 {
                t += 12 * 3_600_000;
            }
            let mut v = 20.0
                + 3.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin()
                + 0.3 * (rng.next_f64() - 0.5);
            if i % 611 == 0 {
                v += 12.0;
            }
            if i >= 2400 {
                v += 5.0;
            }
            (t, v)
        })
        .collect()
}

/// Everything a sample's result holds, bitwise (so -0.0 ≠ 0.0 and NaN is
/// caught).
fn bits(r: &Scored) -> (u64, u64, u64, Option<&'static str>, bool) {
    (
        r.score.to_bits(),
        r.likelihood.to_bits(),
        r.raw.to_bits(),
        r.skipped.map(|s| s.reason()),
        r.after_gap,
    )
}

fn run(method: &Method, rows: &[(i64, f64)]) -> Vec<(u64, u64, u64, Option<&'static str>, bool)> {
    let mut d = Detector::new(method, Kind::Generic.floor(), false);
    rows.iter()
        .map(|&(t, v)| bits(&d.update(t, Some(v))))
        .collect()
}

fn methods() -> [(&'static str, Method); 2] {
    [
        ("conformal", Method::default()),
        ("forest", Method::Forest(forest::Tuning::default())),
    ]
}

/// Prefix lengths: the first row, warm-up's end (150), a block end and the
/// row after it (block = 12), around the gap (row 1700), around a spike
/// (row 1833) and the shift (row 2400), the whole stream but one.
const PREFIXES: [usize; 12] = [
    1, 150, 151, 600, 601, 1700, 1701, 1833, 1834, 2400, 2401, 2999,
];

/// Feeding the first k rows, then the rest, gives the same results as
/// feeding all rows at once; and the results of the first k rows do not
/// depend on which rows come after (a spike, a gap, a different stream, or
/// none). The `update(t, v)` API cannot see later rows by construction;
/// this catches what could still leak: state shared between instances or
/// global, and scores revised after the fact.
#[test]
fn appending_future_rows_never_changes_past_scores() {
    for (name, method) in methods() {
        let all = rows(1);
        let reference = run(&method, &all);
        for k in PREFIXES {
            // First k rows, then the rest, into one detector.
            let mut d = Detector::new(&method, Kind::Generic.floor(), false);
            let head: Vec<_> = all[..k]
                .iter()
                .map(|&(t, v)| bits(&d.update(t, Some(v))))
                .collect();
            assert_eq!(head, reference[..k], "{name}: first {k} rows");
            let tail: Vec<_> = all[k..]
                .iter()
                .map(|&(t, v)| bits(&d.update(t, Some(v))))
                .collect();
            assert_eq!(tail, reference[k..], "{name}: rows after {k}");
            // Other futures after the same k rows.
            let last_t = all[k - 1].0;
            let futures: [Vec<(i64, f64)>; 4] = [
                vec![],
                vec![(last_t + STEP, 1e6), (last_t + 2 * STEP, 20.0)],
                vec![(last_t + 86_400_000 * 30, -5.0)],
                rows(2)
                    .into_iter()
                    .map(|(t, v)| (t - T0 + last_t, v))
                    .collect(),
            ];
            for (f, future) in futures.iter().enumerate() {
                let mut stream = all[..k].to_vec();
                stream.extend_from_slice(future);
                let r = run(&method, &stream);
                assert_eq!(r[..k], reference[..k], "{name}: first {k} rows, future {f}");
            }
        }
    }
}

fn change(entity_id: &str, t: i64, state: &str) -> Change {
    Change {
        entity_id: entity_id.into(),
        old: None,
        new: Some(State {
            entity_id: entity_id.into(),
            state: state.into(),
            attributes: Default::default(),
            last_changed_ms: t,
            last_updated_ms: t,
        }),
    }
}

/// What the plugin published for one change (entity updates and alerts).
fn published(p: &mut AnomalyDetector, entity_id: &str, t: i64, state: &str) -> String {
    let mut out = Output::default();
    p.on_state(change(entity_id, t, state), &mut out);
    format!("{:?} {:?}", out.entities(), out.alerts())
}

/// Two streams in the example's kinds, interleaved: temperature-like and
/// power-like, with a spike (so an alert is raised and cleared) and a
/// non-number.
fn changes() -> Vec<(&'static str, i64, String)> {
    let temperature = rows(7);
    let mut rng = SplitMix64(8);
    let mut out = Vec::new();
    for (i, &(t, v)) in temperature.iter().enumerate() {
        out.push(("sensor.room_temperature", t, format!("{v:.2}")));
        let power = if (i / 2) % 2 == 0 { 800.0 } else { 5.0 } + (rng.next_f64() * 10.0).round();
        let state = if i == 900 {
            "unavailable".to_string()
        } else {
            format!("{power}")
        };
        out.push(("sensor.ac_power", t + 1, state));
    }
    out
}

/// `save()` after n changes, `restore` into a fresh instance of the same
/// config, then the remaining changes to both: the same published outputs
/// (score strings with their attributes, problem entities, alerts) and, at
/// the end, the same saved state. n covers warm-up (100), after warm-up,
/// right after the spike at row 611 raised an alert (with the default
/// method; still raised: the restored instance must neither raise it again
/// nor lose it), the gap and the shift.
#[test]
fn restored_controller_continues_with_the_same_published_outputs() {
    let all = changes();
    for (name, _) in methods() {
        let config = json!({"method": name, "streams": [
            {"entity_id": "sensor.room_temperature", "kind": "temperature"},
            {"entity_id": "sensor.ac_power", "kind": "power"}]});
        let mut reference = AnomalyDetector::init(config.clone()).unwrap();
        let expected: Vec<String> = all
            .iter()
            .map(|(e, t, s)| published(&mut reference, e, *t, s))
            .collect();
        assert!(
            expected.iter().any(|o| o.contains("active: true")),
            "{name}: the run raises an alert"
        );
        // With the default method the cut at 2·611 + 1 falls while the
        // spike's alert is raised (the case the docs above promise to
        // cover; the forest raises its alert elsewhere).
        let cut = 2 * 611 + 1;
        let raised = expected[..cut]
            .iter()
            .rposition(|o| o.contains("active: true"));
        assert!(
            name != "conformal"
                || raised.is_some_and(|r| !expected[r + 1..cut]
                    .iter()
                    .any(|o| o.contains("active: false"))),
            "{name}: an alert is raised at the cut {cut} (raised at {raised:?})"
        );
        for n in [
            200,
            500,
            2 * 611 + 1,
            2 * 611 + 3,
            2 * 1700,
            2 * 2401,
            2 * ROWS - 1,
        ] {
            let mut a = AnomalyDetector::init(config.clone()).unwrap();
            for (e, t, s) in &all[..n] {
                published(&mut a, e, *t, s);
            }
            let mut b = AnomalyDetector::init(config.clone()).unwrap();
            b.restore(&a.save()).unwrap();
            for (i, (e, t, s)) in all.iter().enumerate().skip(n) {
                let (oa, ob) = (published(&mut a, e, *t, s), published(&mut b, e, *t, s));
                assert_eq!(oa, ob, "{name}: saved after {n}, change {i}");
                assert_eq!(oa, expected[i], "{name}: saved after {n}, change {i}");
            }
            assert_eq!(a.save(), b.save(), "{name}: saved after {n}");
        }
    }
}
