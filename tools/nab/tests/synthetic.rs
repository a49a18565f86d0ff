//! Hand-computed cases on tiny synthetic files.
//!
//! Closed forms used below (NAB's `scaledSigmoid(x) = 2/(1+e^{5x}) − 1 = −tanh(5x/2)`):
//! * a detection at row `i` of a window `[a, b]` (width `w = b − a + 1`) scores
//!   `A_TP · S(−(b − i + 1)/w) / S(−1)` with `S(−1) = tanh(2.5) = 0.98661…`;
//! * a false positive `d` rows after a window of width `w` scores
//!   `A_FP · S(d/(w − 1)) = −A_FP · tanh(2.5 d/(w − 1))` (−A_FP beyond 3 widths),
//!   and −A_FP before any window.

use hearth_nab::{
    Corpus, DataFile, LabeledFile, NabError, PROFILES, evaluate, probation_rows, read_csv,
    scaled_sigmoid, score_at_threshold,
};
use std::collections::BTreeMap;

const STANDARD: hearth_nab::Profile = PROFILES[0];

fn data(name: &str, n: usize) -> DataFile {
    let t0 = 1_400_000_000_000i64;
    DataFile {
        name: name.to_string(),
        timestamps: (0..n).map(|i| format!("row {i}")).collect(),
        times_ms: (0..n).map(|i| t0 + i as i64 * 300_000).collect(),
        values: vec![0.0; n],
    }
}

/// 100 rows, one window on rows 10..=19 (width 10), no probation.
fn one_window(probation: usize) -> Corpus {
    Corpus {
        files: vec![LabeledFile {
            data: data("synthetic/a.csv", 100),
            windows: vec![(10, 19)],
            probation_rows: probation,
        }],
    }
}

fn detections(corpus: &Corpus, rows: &[usize]) -> BTreeMap<String, Vec<f64>> {
    let f = &corpus.files[0];
    let mut v = vec![0.0; f.data.len()];
    for &r in rows {
        v[r] = 1.0;
    }
    BTreeMap::from([(f.data.name.clone(), v)])
}

fn raw(corpus: &Corpus, rows: &[usize]) -> f64 {
    score_at_threshold(corpus, &detections(corpus, rows), &STANDARD, 0.5)
        .unwrap()
        .0
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

#[test]
fn scaled_sigmoid_matches_nab_docstring() {
    close(scaled_sigmoid(-1.0), 0.986_614_298_151_430_5);
    close(scaled_sigmoid(-0.5), 0.848_283_639_957_513);
    close(scaled_sigmoid(0.0), 0.0);
    close(scaled_sigmoid(1.0), -0.986_614_298_151_430_5);
    assert_eq!(scaled_sigmoid(3.000_001), -1.0);
}

#[test]
fn probation_formula() {
    // min(floor(0.15 n), 0.15 * 5000)
    assert_eq!(probation_rows(4032), 604);
    assert_eq!(probation_rows(4730), 709);
    assert_eq!(probation_rows(1243), 186);
    assert_eq!(probation_rows(4621), 693);
    assert_eq!(probation_rows(20), 3);
    assert_eq!(probation_rows(10_000), 750);
    assert_eq!(probation_rows(0), 0);
}

#[test]
fn true_positive_at_start_middle_end() {
    let c = one_window(0);
    let max_tp = 2.5f64.tanh(); // S(-1)
    // Start: position -(19-10+1)/10 = -1 -> exactly A_TP.
    close(raw(&c, &[10]), 1.0);
    close(raw(&c, &[10]), 1.0);
    // Middle (row 15): position -(19-15+1)/10 = -0.5 -> tanh(1.25)/tanh(2.5) = 0.85979...
    close(raw(&c, &[15]), 1.25f64.tanh() / max_tp);
    close(raw(&c, &[15]), 0.859_792_566_909_783_7);
    // End (row 19): position -1/10 -> tanh(0.25)/tanh(2.5) = 0.24824...
    close(raw(&c, &[19]), 0.25f64.tanh() / max_tp);
    close(raw(&c, &[19]), 0.248_241_549_775_429_92);
    // Missed window: -A_FN.
    close(raw(&c, &[]), -1.0);
    // Counts are rows, as in NAB: 1 detected window row, 9 undetected, 90 TN.
    let (_, files) = score_at_threshold(&c, &detections(&c, &[15]), &STANDARD, 0.5).unwrap();
    let f = &files[0];
    assert_eq!((f.tp, f.fn_, f.fp, f.tn), (1, 9, 0, 90));
    assert_eq!((f.windows_detected, f.windows_missed), (1, 0));
}

#[test]
fn only_the_earliest_detection_in_a_window_counts() {
    let c = one_window(0);
    close(raw(&c, &[10, 15]), 1.0);
    close(raw(&c, &[15, 16, 17, 18, 19]), raw(&c, &[15]));
    close(raw(&c, &(10..20).collect::<Vec<_>>()), 1.0);
}

#[test]
fn false_positive_cost_grows_with_distance_from_the_window() {
    let c = one_window(0);
    let base = raw(&c, &[10]); // 1.0
    // Right after the window (row 20): d = 1, w - 1 = 9 -> -0.11 tanh(2.5/9)
    let near = raw(&c, &[10, 20]) - base;
    close(near, -0.11 * (2.5f64 / 9.0).tanh());
    close(near, -0.029_793_183_036_839_352);
    // Row 30: d = 11 -> -0.11 tanh(27.5/9)
    close(raw(&c, &[10, 30]) - base, -0.11 * (27.5f64 / 9.0).tanh());
    // Row 60: d = 41, 41/9 > 3 -> full cost -0.11
    let far = raw(&c, &[10, 60]) - base;
    close(far, -0.11);
    assert!(near > far);
    // Before any window (row 5): full cost.
    close(raw(&c, &[5, 10]) - base, -0.11);
}

#[test]
fn detections_in_probation_are_ignored() {
    // Window on rows 30..=39, probation = 20 rows.
    let c = Corpus {
        files: vec![LabeledFile {
            data: data("synthetic/p.csv", 100),
            windows: vec![(30, 39)],
            probation_rows: 20,
        }],
    };
    close(raw(&c, &[]), -1.0);
    close(raw(&c, &[5]), -1.0); // would cost -0.11 outside probation
    close(raw(&c, &[19]), -1.0);
    close(raw(&c, &[20]), -1.0 - 0.11); // first scored row
    close(raw(&c, &[5, 30]), 1.0);
    let (_, files) = score_at_threshold(&c, &detections(&c, &[5]), &STANDARD, 0.5).unwrap();
    assert_eq!(files[0].tp + files[0].fp + files[0].fn_ + files[0].tn, 80);
    assert_eq!(files[0].fp, 0);
}

#[test]
fn window_partly_in_probation_keeps_its_full_width() {
    // Window rows 10..=19, probation 15: rows 15..=19 are scored, positions still use width 10.
    let c = one_window(15);
    close(raw(&c, &[10]), -1.0); // ignored
    close(raw(&c, &[15]), 1.25f64.tanh() / 2.5f64.tanh());
}

#[test]
fn evaluate_picks_the_threshold_of_the_earliest_detection() {
    let c = one_window(0);
    // 0.9 at the window start, 0.6 far away (an FP), 0.3 everywhere else.
    let mut v = vec![0.3; 100];
    v[10] = 0.9;
    v[60] = 0.6;
    let s = BTreeMap::from([("synthetic/a.csv".to_string(), v)]);
    let e = evaluate(&c, &s).unwrap();
    let std = e.profile("standard").unwrap();
    assert_eq!(std.threshold, 0.9);
    close(std.raw, 1.0);
    close(std.null, -1.0);
    close(std.perfect, 1.0);
    close(std.normalized, 100.0);
    let low_fn = e.profile("reward_low_FN_rate").unwrap();
    close(low_fn.null, -2.0);
    close(low_fn.normalized, 100.0);
}

#[test]
fn errors_name_the_file_and_row() {
    let c = one_window(0);
    let mut v = vec![0.0; 100];
    v[42] = f64::NAN;
    let s = BTreeMap::from([("synthetic/a.csv".to_string(), v)]);
    let e: NabError = evaluate(&c, &s).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("synthetic/a.csv") && msg.contains("row 42") && msg.contains("NaN"),
        "{msg}"
    );

    let s = BTreeMap::from([("synthetic/a.csv".to_string(), vec![0.0; 99])]);
    let msg = evaluate(&c, &s).unwrap_err().to_string();
    assert!(
        msg.contains("synthetic/a.csv") && msg.contains("100") && msg.contains("99"),
        "{msg}"
    );

    let s = BTreeMap::from([("synthetic/a.csv".to_string(), vec![1.5; 100])]);
    assert!(evaluate(&c, &s).unwrap_err().to_string().contains("[0, 1]"));

    let msg = evaluate(&c, &BTreeMap::new()).unwrap_err().to_string();
    assert!(msg.contains("synthetic/a.csv"), "{msg}");
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-nab-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_data_file_for_a_windows_key_is_an_error() {
    let d = temp_dir("missing");
    std::fs::write(d.join("combined_windows.json"), r#"{"x/missing.csv": []}"#).unwrap();
    let msg = Corpus::load(&d).unwrap_err().to_string();
    assert!(msg.contains("x/missing.csv"), "{msg}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn csv_errors_name_the_line() {
    let d = temp_dir("csv");
    std::fs::write(
        d.join("a.csv"),
        "timestamp,value\n2014-01-01 00:00:00,1.0\n2014-01-01 00:05:00,abc\n",
    )
    .unwrap();
    let msg = read_csv(&d.join("a.csv"), "dir/a.csv")
        .unwrap_err()
        .to_string();
    assert!(
        msg.starts_with("dir/a.csv:3:") && msg.contains("abc"),
        "{msg}"
    );
    std::fs::write(
        d.join("b.csv"),
        "timestamp,value\n2014-02-30 00:00:00,1.0\n",
    )
    .unwrap();
    let msg = read_csv(&d.join("b.csv"), "dir/b.csv")
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("dir/b.csv:2:"), "{msg}");
    std::fs::write(d.join("c.csv"), "time,val\n").unwrap();
    assert!(
        read_csv(&d.join("c.csv"), "c.csv")
            .unwrap_err()
            .to_string()
            .contains("header")
    );
    // A window end that is not in the file.
    std::fs::create_dir_all(d.join("x")).unwrap();
    std::fs::write(
        d.join("x/a.csv"),
        "timestamp,value\n2014-01-01 00:00:00,1.0\n2014-01-01 00:05:00,2\n",
    )
    .unwrap();
    std::fs::write(
        d.join("combined_windows.json"),
        r#"{"x/a.csv": [["2014-01-01 00:00:00.000000", "2014-01-01 00:07:00.000000"]]}"#,
    )
    .unwrap();
    let msg = Corpus::load(&d).unwrap_err().to_string();
    assert!(msg.contains("x/a.csv") && msg.contains("00:07:00"), "{msg}");
    std::fs::remove_dir_all(&d).unwrap();
}
