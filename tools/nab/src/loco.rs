//! Leave-one-category-out (LOCO): an honest estimate of a detector's NAB
//! score on categories it was not tuned on.
//!
//! Tuning a detector on the whole development corpus and reporting its score
//! there measures the tuning, not the detector: the project is judged on NAB
//! files that are not in the corpus. LOCO holds out each real category `c` in
//! turn (every category whose name starts with `real`; the `artificial*`
//! categories always stay on the training side, as they are synthetic and
//! small):
//!
//! 1. on every file not in `c`, each candidate (a named set of scores: one
//!    method or setting) is evaluated NAB's way (threshold swept on those
//!    files); the candidate with the best normalised score is chosen (ties:
//!    the first in the given order), with its threshold;
//! 2. `c`'s files alone are scored with that candidate at that threshold and
//!    normalised on `c` ([`crate::score_subset_at_threshold`]).
//!
//! The estimate is the mean of the held-out scores over the folds. Each fold
//! also carries the chosen candidate's in-sample score on `c` — its
//! per-category score when the threshold is swept on the whole corpus, `c`
//! included (the figure `hearth bench nab`'s per-category table shows) — so
//! the cost of not seeing `c` can be read off per category.

use crate::category::{SubsetScore, category};
use crate::{Corpus, LabeledFile, NabError, Profile, evaluate_files, score_subset_at_threshold};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The prefix of NAB's real-data categories (`realAWSCloudwatch`, `realTweets`, …);
/// the others (`artificialNoAnomaly`, `artificialWithAnomaly`) are synthetic.
const REAL_PREFIX: &str = "real";

/// One held-out category.
#[derive(Debug, Clone, PartialEq)]
pub struct LocoFold {
    /// The held-out category.
    pub category: String,
    /// The candidate with the best normalised score on the other files.
    pub candidate: String,
    /// That candidate's threshold, swept on the other files.
    pub threshold: f64,
    /// That candidate's normalised score on the other files (its training score).
    pub training_score: f64,
    /// The held-out category's files at `threshold`, normalised on them.
    pub held_out: SubsetScore,
    /// The same candidate's score on the category with the threshold swept on
    /// the whole corpus, category included (for comparison); `None` when the
    /// category has no windows.
    pub in_sample: Option<f64>,
}

/// The result of [`loco`].
#[derive(Debug, Clone, PartialEq)]
pub struct LocoReport {
    pub profile: Profile,
    /// One fold per real category, sorted by category name.
    pub folds: Vec<LocoFold>,
    /// Mean of the folds' held-out normalised scores (folds whose score is
    /// undefined, i.e. a category without windows, are left out; NaN if no
    /// fold has a score).
    pub mean_held_out: f64,
    /// Mean of the folds' in-sample scores, over the same folds.
    pub mean_in_sample: f64,
}

/// Leave-one-category-out over `candidates` (name → scores per file, each
/// covering every corpus file as [`crate::evaluate`] requires), for one
/// `profile`; see the module doc.
///
/// Errors: no candidate, no real category, a training side without files,
/// or a candidate's scores that do not match the corpus (the error names the
/// candidate).
pub fn loco(
    corpus: &Corpus,
    candidates: &[(String, BTreeMap<String, Vec<f64>>)],
    profile: &Profile,
) -> Result<LocoReport, NabError> {
    if candidates.is_empty() {
        return Err(NabError::new(
            "candidates",
            None,
            "no candidate score sets; expected at least one",
        ));
    }
    let real: BTreeSet<&str> = corpus
        .files
        .iter()
        .map(|f| category(&f.data.name))
        .filter(|c| c.starts_with(REAL_PREFIX))
        .collect();
    if real.is_empty() {
        return Err(NabError::new(
            "corpus",
            None,
            format!("no real category (a directory named `{REAL_PREFIX}…`) to hold out"),
        ));
    }
    let all: Vec<&LabeledFile> = corpus.files.iter().collect();
    let named = |name: &str, e: NabError| NabError {
        message: format!("candidate `{name}`: {}", e.message),
        ..e
    };
    // In-sample per-category scores, computed once per candidate that is chosen.
    let mut in_sample: BTreeMap<usize, BTreeMap<String, Option<f64>>> = BTreeMap::new();

    let mut folds = Vec::with_capacity(real.len());
    for &held in &real {
        let training: Vec<&LabeledFile> = all
            .iter()
            .copied()
            .filter(|f| category(&f.data.name) != held)
            .collect();
        if training.is_empty() {
            return Err(NabError::new(
                "corpus",
                None,
                format!("holding out `{held}` leaves no file to choose settings on"),
            ));
        }
        let mut best: Option<(usize, f64, f64)> = None; // (candidate, score, threshold)
        for (k, (name, scores)) in candidates.iter().enumerate() {
            let e = evaluate_files(corpus, &training, scores, &[*profile])
                .map_err(|e| named(name, e))?;
            let p = &e.profiles[0];
            if best.is_none_or(|(_, s, _)| p.normalized > s) && !p.normalized.is_nan() {
                best = Some((k, p.normalized, p.threshold));
            }
        }
        // Every training score NaN (no windows outside `held`): the first candidate.
        let (k, training_score, threshold) = match best {
            Some(b) => b,
            None => {
                let e = evaluate_files(corpus, &training, &candidates[0].1, &[*profile])?;
                (0, e.profiles[0].normalized, e.profiles[0].threshold)
            }
        };
        let (name, scores) = &candidates[k];
        let held_out =
            score_subset_at_threshold(corpus, scores, |n| category(n) == held, profile, threshold)
                .map_err(|e| named(name, e))?;
        if let Entry::Vacant(slot) = in_sample.entry(k) {
            let e =
                evaluate_files(corpus, &all, scores, &[*profile]).map_err(|e| named(name, e))?;
            slot.insert(
                e.profiles[0]
                    .categories
                    .iter()
                    .map(|c| (c.category.clone(), c.score.normalized))
                    .collect(),
            );
        }
        folds.push(LocoFold {
            category: held.to_string(),
            candidate: name.clone(),
            threshold,
            training_score,
            held_out,
            in_sample: in_sample[&k].get(held).copied().flatten(),
        });
    }
    let scored: Vec<&LocoFold> = folds
        .iter()
        .filter(|f| f.held_out.normalized.is_some())
        .collect();
    let mean = |v: &dyn Fn(&LocoFold) -> f64| {
        scored.iter().map(|f| v(f)).sum::<f64>() / scored.len() as f64
    };
    let mean_held_out = mean(&|f| f.held_out.normalized.unwrap_or(f64::NAN));
    let mean_in_sample = mean(&|f| f.in_sample.unwrap_or(f64::NAN));
    Ok(LocoReport {
        profile: *profile,
        folds,
        mean_held_out,
        mean_in_sample,
    })
}

impl fmt::Display for LocoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Leave-one-category-out ({} profile): candidate and threshold chosen without the held-out category",
            self.profile.name
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| Held out | Chosen candidate | Threshold | Training score | Held-out score | In-sample score |"
        )?;
        writeln!(f, "|---|---|---:|---:|---:|---:|")?;
        let show = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"));
        for fold in &self.folds {
            writeln!(
                f,
                "| {} | {} | {:.6} | {:.2} | {} | {} |",
                fold.category,
                fold.candidate,
                fold.threshold,
                fold.training_score,
                show(fold.held_out.normalized),
                show(fold.in_sample)
            )?;
        }
        writeln!(f)?;
        write!(
            f,
            "Mean over {} folds: held-out {:.2}, in-sample {:.2}",
            self.folds.len(),
            self.mean_held_out,
            self.mean_in_sample
        )
    }
}
