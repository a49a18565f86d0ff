//! Per-category breakdown, subset scoring and leave-one-category-out on tiny
//! hand-built corpora, every figure computed by hand.
//!
//! Every file has 100 rows, no probation, and (unless it is in
//! `artificialNoAnomaly`) one window on rows 50..=59 (width 10). Closed forms
//! (see tests/synthetic.rs): a detection on a window's first row is worth
//! `A_TP` = 1; on its 6th row (`i = 55`) `S(−0.5)/S(−1) = tanh(1.25)/tanh(2.5)`;
//! a false positive before any window costs `A_FP` = 0.11 (standard profile).
//! NAB's null detector (0.5 on every row) either detects nothing (−1 per
//! window) or every row (+1 per window but 50 FP rows before it alone cost
//! −5.5), so on every group here its raw score is −(windows), or 0 without
//! windows.

use hearth_nab::{
    Corpus, DataFile, LabeledFile, PROFILES, evaluate, evaluate_subset, loco,
    score_subset_at_threshold,
};
use std::collections::BTreeMap;

const STANDARD: hearth_nab::Profile = PROFILES[0];
const WINDOW: (usize, usize) = (50, 59);
const ROWS: usize = 100;

fn file(name: &str) -> LabeledFile {
    let t0 = 1_400_000_000_000i64;
    let windows = if name.starts_with("artificialNoAnomaly/") {
        vec![]
    } else {
        vec![WINDOW]
    };
    LabeledFile {
        data: DataFile {
            name: name.to_string(),
            timestamps: (0..ROWS).map(|i| format!("row {i}")).collect(),
            times_ms: (0..ROWS).map(|i| t0 + i as i64 * 300_000).collect(),
            values: vec![0.0; ROWS],
        },
        windows,
        probation_rows: 0,
    }
}

fn corpus(names: &[&str]) -> Corpus {
    Corpus {
        files: names.iter().map(|n| file(n)).collect(),
    }
}

/// Scores: 0 everywhere except the given `(file, row, score)`s.
fn scores(c: &Corpus, points: &[(&str, usize, f64)]) -> BTreeMap<String, Vec<f64>> {
    let mut s: BTreeMap<String, Vec<f64>> = c
        .files
        .iter()
        .map(|f| (f.data.name.clone(), vec![0.0; ROWS]))
        .collect();
    for &(name, row, v) in points {
        s.get_mut(name).unwrap()[row] = v;
    }
    s
}

/// `S(−0.5)/S(−1)`: a detection on row 55 of the window 50..=59.
fn mid_window() -> f64 {
    1.25f64.tanh() / 2.5f64.tanh()
}

fn close(a: f64, b: f64) {
    assert!((a - b).abs() < 1e-12, "{a} != {b}");
}

const A: &str = "realA/x.csv";
const B: &str = "realB/y.csv";
const QUIET: &str = "artificialNoAnomaly/z.csv";

/// realA: 1.0 on the window's first row. realB: 0.9 on row 20 (an FP before
/// the window) and on row 55. The quiet file: 0.9 on row 30, 0.5 on row 40.
/// Sweep (standard): 1.1 → −2; 1.0 → 0; 0.9 → 1 + (m − 0.11) − 0.11 with
/// m = `mid_window()` ≈ 0.8598, i.e. ≈ 1.6398; 0.5 → 0.11 less; 0 → hundreds
/// of FPs. So the corpus threshold is 0.9.
fn three_categories() -> (Corpus, BTreeMap<String, Vec<f64>>) {
    let c = corpus(&[QUIET, A, B]);
    let s = scores(
        &c,
        &[
            (A, 50, 1.0),
            (B, 20, 0.9),
            (B, 55, 0.9),
            (QUIET, 30, 0.9),
            (QUIET, 40, 0.5),
        ],
    );
    (c, s)
}

#[test]
fn per_category_scores_are_normalised_on_each_category() {
    let (c, s) = three_categories();
    let e = evaluate(&c, &s).unwrap();
    let p = e.profile("standard").unwrap();
    let m = mid_window();
    assert_eq!(p.threshold, 0.9);
    close(p.raw, 1.0 + m - 0.22);
    close(p.null, -2.0);
    close(p.normalized, 100.0 * (1.0 + m - 0.22 + 2.0) / 4.0);

    let names: Vec<&str> = p.categories.iter().map(|c| c.category.as_str()).collect();
    assert_eq!(names, ["artificialNoAnomaly", "realA", "realB"]);

    // No windows: raw and FP rows shown, null 0 (detecting nothing costs
    // nothing), perfect 0, so the normalised score is 0/0: undefined.
    let q = &p.categories[0].score;
    assert_eq!((q.files, q.windows, q.windows_hit, q.fp_rows), (1, 0, 0, 1));
    close(q.raw, -0.11);
    close(q.null, 0.0);
    close(q.perfect, 0.0);
    assert_eq!(q.normalized, None);

    // realA: the window's first row, no FP: 100 · (1 − (−1)) / (1 − (−1)).
    let a = &p.categories[1].score;
    assert_eq!((a.files, a.windows, a.windows_hit, a.fp_rows), (1, 1, 1, 0));
    close(a.raw, 1.0);
    close(a.null, -1.0);
    close(a.normalized.unwrap(), 100.0);

    // realB: row 55 and one FP: 100 · (m − 0.11 + 1) / 2 ≈ 87.49.
    let b = &p.categories[2].score;
    assert_eq!((b.windows_hit, b.tp_rows, b.fp_rows), (1, 1, 1));
    close(b.raw, m - 0.11);
    close(b.null, -1.0);
    close(b.perfect, 1.0);
    close(b.normalized.unwrap(), 100.0 * (m - 0.11 + 1.0) / 2.0);
    assert!((b.normalized.unwrap() - 87.489).abs() < 1e-3);

    // The categories' raw scores add up to the corpus's.
    close(p.categories.iter().map(|c| c.score.raw).sum(), p.raw);

    let table = e.to_string();
    assert!(
        table.contains("| Category | Files | Windows | Windows hit | FP rows | NAB score |"),
        "{table}"
    );
    assert!(
        table.contains("| artificialNoAnomaly | 1 | 0 | 0 | 1 | — |"),
        "{table}"
    );
    assert!(
        table.contains("| realA | 1 | 1 | 1 | 0 | 100.00 |"),
        "{table}"
    );
    assert!(
        table.contains("| realB | 1 | 1 | 1 | 1 | 87.49 |"),
        "{table}"
    );
}

#[test]
fn a_subset_sweeps_its_own_threshold() {
    let (c, s) = three_categories();
    // realA + the quiet file: at 1.0 realA's window is hit with no FP (raw 1);
    // 0.9 adds the quiet file's FP. So 1.0, not the corpus's 0.9.
    let keep = |n: &str| !n.starts_with("realB/");
    let e = evaluate_subset(&c, &s, keep).unwrap();
    let p = e.profile("standard").unwrap();
    assert_eq!(p.threshold, 1.0);
    close(p.raw, 1.0);
    close(p.null, -1.0);
    close(p.perfect, 1.0);
    close(p.normalized, 100.0);
    assert_eq!(p.files.len(), 2);

    // Scores for files outside the subset may be absent.
    let mut only = s.clone();
    only.remove(B);
    assert_eq!(evaluate_subset(&c, &only, keep).unwrap(), e);
    // An empty subset and a name that is not in the corpus are errors.
    let msg = evaluate_subset(&c, &s, |_| false).unwrap_err().to_string();
    assert!(msg.contains("none of the corpus's 3 files"), "{msg}");
    let mut extra = s.clone();
    extra.insert("realC/nope.csv".into(), vec![0.0; ROWS]);
    let msg = evaluate_subset(&c, &extra, keep).unwrap_err().to_string();
    assert!(msg.contains("realC/nope.csv"), "{msg}");
}

#[test]
fn a_subset_scored_at_a_given_threshold() {
    let (c, s) = three_categories();
    let is_b = |n: &str| n.starts_with("realB/");
    // At 1.0 nothing in realB is detected: raw = null = −1, score 0.
    let at_1 = score_subset_at_threshold(&c, &s, is_b, &STANDARD, 1.0).unwrap();
    close(at_1.raw, -1.0);
    close(at_1.normalized.unwrap(), 0.0);
    assert_eq!((at_1.windows_hit, at_1.fp_rows), (0, 0));
    // At the corpus threshold it is exactly the breakdown's realB entry.
    let at_09 = score_subset_at_threshold(&c, &s, is_b, &STANDARD, 0.9).unwrap();
    let e = evaluate(&c, &s).unwrap();
    assert_eq!(at_09, e.profiles[0].categories[2].score);
}

/// Two real categories and one artificial. Candidate `sharp` fires on the
/// first row of realB's and the artificial file's windows and never on realA;
/// `blunt` fires on realA's first row and in the middle (row 55) of the
/// others. Fold "hold out realA": on realB + artificial `sharp` is perfect
/// (100) and `blunt` is not (100 · (2m + 2)/4 ≈ 92.99), so `sharp` is chosen
/// (threshold 1.0) and scores 0 on realA, where `blunt` would have scored 100.
/// Fold "hold out realB": on realA + artificial `sharp` scores
/// 100 · (0 + 2)/4 = 50 and `blunt` 100 · (1 + m + 2)/4 ≈ 96.49: `blunt`,
/// threshold 1.0, scores 100 · (m + 1)/2 ≈ 92.99 on realB.
#[test]
fn loco_chooses_on_the_training_side_even_when_another_candidate_wins_held_out() {
    const ART: &str = "artificialWithAnomaly/w.csv";
    let c = corpus(&[ART, A, B]);
    let m = mid_window();
    let sharp = scores(&c, &[(B, 50, 1.0), (ART, 50, 1.0)]);
    let blunt = scores(&c, &[(A, 50, 1.0), (B, 55, 1.0), (ART, 55, 1.0)]);
    let candidates = vec![("sharp".to_string(), sharp), ("blunt".to_string(), blunt)];
    let report = loco(&c, &candidates, &STANDARD).unwrap();
    println!("{report}");

    // artificial* is never held out.
    let held: Vec<&str> = report.folds.iter().map(|f| f.category.as_str()).collect();
    assert_eq!(held, ["realA", "realB"]);

    let a = &report.folds[0];
    assert_eq!(a.candidate, "sharp");
    assert_eq!(a.threshold, 1.0);
    close(a.training_score, 100.0);
    close(a.held_out.raw, -1.0);
    close(a.held_out.normalized.unwrap(), 0.0);
    // sharp's in-sample threshold (whole corpus) is also 1.0: realA scores 0.
    close(a.in_sample.unwrap(), 0.0);
    // The best held-out candidate was the other one.
    let blunt_on_a =
        score_subset_at_threshold(&c, &candidates[1].1, |n| n == A, &STANDARD, 1.0).unwrap();
    close(blunt_on_a.normalized.unwrap(), 100.0);

    let b = &report.folds[1];
    assert_eq!(b.candidate, "blunt");
    assert_eq!(b.threshold, 1.0);
    close(b.training_score, 100.0 * (1.0 + m + 2.0) / 4.0);
    close(b.held_out.normalized.unwrap(), 100.0 * (m + 1.0) / 2.0);
    close(b.in_sample.unwrap(), 100.0 * (m + 1.0) / 2.0);

    close(report.mean_held_out, (0.0 + 100.0 * (m + 1.0) / 2.0) / 2.0);
    close(report.mean_in_sample, report.mean_held_out);
    let text = report.to_string();
    assert!(
        text.contains("| realA | sharp | 1.000000 | 100.00 | 0.00 | 0.00 |"),
        "{text}"
    );
    assert!(text.contains("Mean over 2 folds: held-out 46.49"), "{text}");
}

#[test]
fn loco_names_a_candidate_whose_scores_do_not_fit() {
    let c = corpus(&[A, B]);
    let mut short = scores(&c, &[]);
    short.get_mut(B).unwrap().pop();
    let candidates = vec![
        ("ok".to_string(), scores(&c, &[])),
        ("short".to_string(), short),
    ];
    let msg = loco(&c, &candidates, &STANDARD).unwrap_err().to_string();
    assert!(
        msg.contains("candidate `short`") && msg.contains(B),
        "{msg}"
    );
    assert!(loco(&c, &[], &STANDARD).is_err());
    let artificial_only = corpus(&["artificialWithAnomaly/w.csv"]);
    let msg = loco(&artificial_only, &candidates[..1], &STANDARD)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no real category"), "{msg}");
}
