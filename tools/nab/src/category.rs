//! NAB's per-category breakdown: a file's category, and the score of a
//! group of files (a category, or any subset) normalised on that group.
//!
//! A file's **category** is the first component of its corpus name
//! (`realTweets` for `realTweets/Twitter_volume_KO.csv`): NAB's directories
//! `artificialNoAnomaly`, `artificialWithAnomaly`, `realAWSCloudwatch`,
//! `realAdExchange`, `realKnownCause`, `realTraffic`, `realTweets`.
//!
//! A group is scored the way NAB scores the corpus, restricted to the group:
//! its files' raw scores at the given threshold (the corpus-wide one in
//! [`crate::evaluate`]'s breakdown), normalised as
//! `100 · (raw − null) / (perfect − null)` with the group's own `null` (NAB's
//! null detector, a constant 0.5 on every row, swept on the group's rows)
//! and `perfect` (the group's window count × `A_TP`).
//!
//! Only [`crate::evaluate`], [`crate::score_subset_at_threshold`] and
//! [`crate::loco`] build these results; callers read them.

use crate::{FileResult, LabeledFile, PreparedFile, Profile, null_score};
use std::collections::BTreeMap;

/// The category of a corpus file name: its first path component
/// (`realTweets/Twitter_volume_KO.csv` → `realTweets`); a name without a
/// directory is its own category.
pub fn category(name: &str) -> &str {
    name.split('/').next().unwrap_or(name)
}

/// A group of files scored at one threshold and normalised on the group.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetScore {
    /// Files in the group.
    pub files: usize,
    /// Labelled windows of those files (NAB's `tpCount` for the group).
    pub windows: usize,
    /// Windows (with scored rows) containing at least one detection.
    pub windows_hit: usize,
    /// Detected rows inside windows.
    pub tp_rows: usize,
    /// Detected rows outside windows (false positives, counted in rows as NAB does).
    pub fp_rows: usize,
    /// Σ of the files' raw scores at the threshold.
    pub raw: f64,
    /// The group's null detector raw score (constant 0.5, swept on the group).
    pub null: f64,
    /// `windows · A_TP`.
    pub perfect: f64,
    /// `100 · (raw − null) / (perfect − null)`, or `None` when it is undefined:
    /// a group without windows (NAB's `artificialNoAnomaly`) has `perfect = 0`
    /// and a null of 0 ("detect nothing" costs nothing there), so the ratio is
    /// 0/0 — such a group can only lose points (its FP rows, in `raw`), and
    /// those count in the corpus-wide score, not in a score of its own.
    pub normalized: Option<f64>,
}

/// One category's share of a profile's result (see the module doc).
#[derive(Debug, Clone, PartialEq)]
pub struct CategoryResult {
    /// The category (first component of the file names).
    pub category: String,
    pub score: SubsetScore,
}

/// `100 · (raw − null) / (perfect − null)`, `None` unless `perfect > null`.
fn normalize(raw: f64, null: f64, perfect: f64) -> Option<f64> {
    (perfect > null).then(|| 100.0 * (raw - null) / (perfect - null))
}

/// The group `idx` (indices into `files`, `prepared` and `results`, which are
/// parallel) scored from its files' results; `n_windows` bounds the window
/// indices of `prepared`.
pub(crate) fn subset_score(
    files: &[&LabeledFile],
    prepared: &[PreparedFile<'_>],
    results: &[FileResult],
    idx: &[usize],
    n_windows: usize,
    profile: &Profile,
) -> SubsetScore {
    let windows: usize = idx.iter().map(|&i| files[i].windows.len()).sum();
    let raw = idx.iter().map(|&i| results[i].raw).sum();
    let group: Vec<&PreparedFile<'_>> = idx.iter().map(|&i| &prepared[i]).collect();
    let null = null_score(&group, n_windows, profile);
    let perfect = windows as f64 * profile.tp;
    SubsetScore {
        files: idx.len(),
        windows,
        windows_hit: idx.iter().map(|&i| results[i].windows_detected).sum(),
        tp_rows: idx.iter().map(|&i| results[i].tp).sum(),
        fp_rows: idx.iter().map(|&i| results[i].fp).sum(),
        raw,
        null,
        perfect,
        normalized: normalize(raw, null, perfect),
    }
}

/// Every category of `files`, sorted by name, scored from the per-file
/// `results` of one threshold.
pub(crate) fn breakdown(
    files: &[&LabeledFile],
    prepared: &[PreparedFile<'_>],
    results: &[FileResult],
    n_windows: usize,
    profile: &Profile,
) -> Vec<CategoryResult> {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        groups.entry(category(&f.data.name)).or_default().push(i);
    }
    groups
        .into_iter()
        .map(|(name, idx)| CategoryResult {
            category: name.to_string(),
            score: subset_score(files, prepared, results, &idx, n_windows, profile),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::category;

    #[test]
    fn category_is_the_first_path_component() {
        assert_eq!(category("realTweets/Twitter_volume_KO.csv"), "realTweets");
        assert_eq!(category("a/b/c.csv"), "a");
        assert_eq!(category("plain.csv"), "plain.csv");
    }
}
