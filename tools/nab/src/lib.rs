//! The Numenta Anomaly Benchmark (NAB) scoring, in Rust.
//!
//! This follows NAB's own Python code (github.com/numenta/NAB, the version with
//! `nab/sweeper.py`, i.e. NAB v1.x), not the paper's prose:
//!
//! * **Probation** — `nab/util.py`/`nab/sweeper.py`:
//!   `min(math.floor(probationPercent * numRows), probationPercent * 5000)` with
//!   `probationPercent = 0.15`, i.e. `min(floor(0.15 × rows), 750)` rows. Rows
//!   `i < probation` are marked `"probationary"` and dropped before scoring
//!   (`prepAnomalyListForScoring`): they are neither TP, FP, FN nor TN.
//! * **Windows** — a window `[start, end]` (timestamps) is the contiguous row
//!   range from the row whose timestamp equals `start` (scanning forward, as
//!   `calcSweepScore` does) to `timestamps.index(end)`; its width is
//!   `end − start + 1` rows.
//! * **Per-row sweep score** (`Sweeper.calcSweepScore`):
//!   - inside a window: `scaledSigmoid(-(right − i + 1) / width) · A_TP / scaledSigmoid(-1)`
//!     (so the first row of a window is worth exactly `A_TP`, the last
//!     `A_TP · S(-1/width)/S(-1)`);
//!   - outside, before any window: `-1 · A_FP`;
//!   - outside, after a window: `scaledSigmoid(|prevRight − i| / (prevWidth − 1)) · A_FP`
//!     (`prevWidth − 1 = 0`, which makes Python divide by zero, gives `+∞`
//!     here, i.e. the full `-A_FP`);
//!   - `scaledSigmoid(x) = -1 if x > 3 else 2·sigmoid(-5x) − 1`.
//! * **Score at a threshold** (`Sweeper.calcScoreByThreshold`): a row is a
//!   detection iff `anomalyScore >= threshold`. Each window starts at `-A_FN`
//!   and becomes the maximum sweep score of its detected rows (= the earliest
//!   detection: only one detection per window counts); every detected row
//!   outside windows adds its (negative) sweep score. TP/FP/FN/TN counts are
//!   **row** counts, as in NAB's results CSVs.
//! * **Threshold** (`nab/optimizer.py: optimizeThreshold`): one threshold for
//!   the whole corpus per profile; the candidates are 1.1 (nothing detected)
//!   and every distinct anomaly score; the best raw score wins, ties going to
//!   the higher threshold (Python's stable sort keeps the sweep order).
//! * **Normalisation** (`nab/runner.py: Runner.normalize`):
//!   `100 · (raw − null) / (perfect − null)`, where `null` is the raw score of
//!   NAB's null detector (a constant score, optimised like any detector) and
//!   `perfect = tpCount · A_TP` with `tpCount` the number of windows in the
//!   windows file. A detector firing exactly on the first row of every window
//!   gets `A_TP` per window and no FP, so it scores exactly 100.
//!
//! Where this differs from running NAB's Python (on inputs NAB would reject or
//! crash on):
//! * anomaly scores must be numbers in [0, 1]; NaN, infinities and values
//!   outside that range are errors naming the file and row;
//! * `scorer.scoreDataSet` looks the corpus threshold up in the file's own
//!   sweep and finds nothing (crashes) when every score of a file is above the
//!   threshold; here a file is always scored as "detections = score >= threshold",
//!   which is what NAB computes in every other case, so the corpus raw score
//!   always equals the optimiser's best score;
//! * a window of width 1 followed by a false positive divides by zero in NAB;
//!   here that FP costs the full `A_FP`;
//! * window limits must match row timestamps, windows must be increasing and
//!   non-overlapping (NAB's labeller enforces the same).
//!
//! Beyond NAB's single corpus score (what the bridge's `hearth bench nab`
//! and the anomaly-detector's tuning read):
//! * [`category`] — a file's category (its corpus directory, e.g.
//!   `realTweets`) and the per-category breakdown every [`ProfileResult`]
//!   carries: each category's files at the corpus-wide threshold, normalised
//!   with that category's own null and perfect scores;
//! * [`evaluate_subset`] / [`score_subset_at_threshold`] — the same scoring
//!   on a subset of the files (threshold swept on the subset, or given);
//! * [`loco`] — the leave-one-category-out estimate: choose a candidate
//!   (method/setting) and its threshold without one real category, score
//!   that category with them.

pub mod category;
pub mod loco;

pub use category::{CategoryResult, SubsetScore, category};
pub use loco::{LocoFold, LocoReport, loco};

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// NAB's `probationPercent`.
pub const PROBATION_PERCENT: f64 = 0.15;

/// The threshold NAB's sweep starts from: above every score, nothing is detected.
pub const NO_DETECTION_THRESHOLD: f64 = 1.1;

/// An error naming the file (and row/line when there is one) and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct NabError {
    /// The file concerned (relative corpus path or filesystem path).
    pub file: String,
    /// 1-based line in that file, when it applies.
    pub line: Option<usize>,
    /// What was wrong / what was expected.
    pub message: String,
}

impl NabError {
    fn new(file: impl Into<String>, line: Option<usize>, message: impl Into<String>) -> Self {
        NabError {
            file: file.into(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for NabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for NabError {}

/// One NAB data file.
#[derive(Debug, Clone, PartialEq)]
pub struct DataFile {
    /// Relative path inside the corpus, e.g. `realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv`.
    pub name: String,
    /// The timestamps as written in the file.
    pub timestamps: Vec<String>,
    /// The timestamps as UTC milliseconds since the Unix epoch.
    pub times_ms: Vec<i64>,
    /// The values.
    pub values: Vec<f64>,
}

impl DataFile {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the file has no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction (`.000000`) into UTC ms.
pub fn parse_timestamp_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &b[r];
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b' ' && b[10] != b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut millis = 0i64;
    if b.len() > 19 {
        if b[19] != b'.' || b.len() == 20 || !b[20..].iter().all(u8::is_ascii_digit) {
            return None;
        }
        for (k, c) in b[20..].iter().take(3).enumerate() {
            millis += i64::from(c - b'0') * [100, 10, 1][k];
        }
    }
    let month_days = [
        31,
        if is_leap(y) { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 59
    {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + millis)
}

/// Reads a NAB CSV (`timestamp,value` header, `YYYY-MM-DD HH:MM:SS,float` rows).
/// `name` is the relative corpus path stored in the result and used in errors.
pub fn read_csv(path: &Path, name: &str) -> Result<DataFile, NabError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        NabError::new(
            path.display().to_string(),
            None,
            format!("cannot read the data file: {e}"),
        )
    })?;
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim_start_matches('\u{feff}').trim() == "timestamp,value" => {}
        Some((_, header)) => {
            return Err(NabError::new(
                name,
                Some(1),
                format!("expected the header `timestamp,value`, found `{header}`"),
            ));
        }
        None => {
            return Err(NabError::new(
                name,
                None,
                "empty file; expected the header `timestamp,value`",
            ));
        }
    }
    let mut file = DataFile {
        name: name.to_string(),
        timestamps: Vec::new(),
        times_ms: Vec::new(),
        values: Vec::new(),
    };
    for (idx, line) in lines {
        let lineno = idx + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',');
        let (Some(ts), Some(val), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(NabError::new(
                name,
                Some(lineno),
                format!("expected 2 fields `timestamp,value`, found `{line}`"),
            ));
        };
        let ts = ts.trim();
        let ms = parse_timestamp_ms(ts).ok_or_else(|| {
            NabError::new(
                name,
                Some(lineno),
                format!("expected a timestamp `YYYY-MM-DD HH:MM:SS`, found `{ts}`"),
            )
        })?;
        let value: f64 = val.trim().parse().map_err(|_| {
            NabError::new(
                name,
                Some(lineno),
                format!("expected a number, found `{}`", val.trim()),
            )
        })?;
        file.timestamps.push(ts.to_string());
        file.times_ms.push(ms);
        file.values.push(value);
    }
    Ok(file)
}

/// NAB's `getProbationPeriod(0.15, rows)`: `min(floor(0.15 × rows), 0.15 × 5000)`.
pub fn probation_rows(rows: usize) -> usize {
    let p = (PROBATION_PERCENT * rows as f64)
        .floor()
        .min(PROBATION_PERCENT * 5000.0);
    p as usize
}

/// A data file with its labelled windows.
#[derive(Debug, Clone, PartialEq)]
pub struct LabeledFile {
    pub data: DataFile,
    /// Inclusive row ranges `(first, last)`, in increasing, non-overlapping order.
    pub windows: Vec<(usize, usize)>,
    /// Rows `0..probation_rows` are not scored.
    pub probation_rows: usize,
}

impl LabeledFile {
    /// Matches window timestamps (`"2014-04-10 07:15:00.000000"`) to rows as NAB's
    /// sweeper does: the start row is the next row (after the previous window)
    /// with that timestamp, the end row the first row with the end timestamp.
    pub fn new(data: DataFile, windows: &[(String, String)]) -> Result<LabeledFile, NabError> {
        let mut rows = Vec::with_capacity(windows.len());
        let mut search_from = 0usize;
        for (start, end) in windows {
            let parse = |s: &str| {
                parse_timestamp_ms(s).ok_or_else(|| {
                    NabError::new(
                        &data.name,
                        None,
                        format!(
                            "window limit `{s}` is not a timestamp `YYYY-MM-DD HH:MM:SS[.ffffff]`"
                        ),
                    )
                })
            };
            let (s_ms, e_ms) = (parse(start)?, parse(end)?);
            let first = (search_from..data.len()).find(|&i| data.times_ms[i] == s_ms).ok_or_else(|| {
                let earlier = data.times_ms[..search_from.min(data.len())].contains(&s_ms);
                NabError::new(
                    &data.name,
                    None,
                    if earlier {
                        format!("window [{start}, {end}] starts inside or before the previous window; expected increasing, non-overlapping windows")
                    } else {
                        format!("window start `{start}` does not match any row's timestamp")
                    },
                )
            })?;
            let last = data
                .times_ms
                .iter()
                .position(|&t| t == e_ms)
                .ok_or_else(|| {
                    NabError::new(
                        &data.name,
                        None,
                        format!("window end `{end}` does not match any row's timestamp"),
                    )
                })?;
            if last < first {
                return Err(NabError::new(
                    &data.name,
                    None,
                    format!(
                        "window [{start}, {end}] ends at row {last}, before its start row {first}"
                    ),
                ));
            }
            rows.push((first, last));
            search_from = last + 1;
        }
        let probation_rows = probation_rows(data.len());
        Ok(LabeledFile {
            data,
            windows: rows,
            probation_rows,
        })
    }
}

/// The labelled corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct Corpus {
    /// Sorted by name.
    pub files: Vec<LabeledFile>,
}

impl Corpus {
    /// Loads `dir/combined_windows.json` and, for each of its keys, `dir/<key>`.
    pub fn load(dir: &Path) -> Result<Corpus, NabError> {
        let windows_path = dir.join("combined_windows.json");
        let wname = windows_path.display().to_string();
        let text = std::fs::read_to_string(&windows_path).map_err(|e| {
            NabError::new(&wname, None, format!("cannot read the windows file: {e}"))
        })?;
        let windows: BTreeMap<String, Vec<Vec<String>>> = serde_json::from_str(&text).map_err(|e| {
            NabError::new(
                &wname,
                Some(e.line()),
                format!("expected an object: file path -> list of [start, end] timestamp strings ({e})"),
            )
        })?;
        let mut files = Vec::with_capacity(windows.len());
        for (name, limits) in &windows {
            let mut pairs = Vec::with_capacity(limits.len());
            for w in limits {
                match w.as_slice() {
                    [s, e] => pairs.push((s.clone(), e.clone())),
                    _ => {
                        return Err(NabError::new(
                            &wname,
                            None,
                            format!(
                                "windows of `{name}`: expected [start, end] pairs, found {w:?}"
                            ),
                        ));
                    }
                }
            }
            let path = dir.join(name);
            if !path.is_file() {
                return Err(NabError::new(
                    &wname,
                    None,
                    format!(
                        "key `{name}` has no data file (expected {})",
                        path.display()
                    ),
                ));
            }
            let data = read_csv(&path, name)?;
            files.push(LabeledFile::new(data, &pairs)?);
        }
        Ok(Corpus { files })
    }

    /// Total number of labelled windows (NAB's `tpCount`).
    pub fn windows_count(&self) -> usize {
        self.files.iter().map(|f| f.windows.len()).sum()
    }

    /// Total number of rows.
    pub fn rows_count(&self) -> usize {
        self.files.iter().map(|f| f.data.len()).sum()
    }
}

/// A NAB cost matrix (`config/profiles.json`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub tp: f64,
    pub fp: f64,
    pub fn_: f64,
    /// Present in `profiles.json` but unused by NAB's scorer (true negatives score 0).
    pub tn: f64,
}

/// NAB's `config/profiles.json`, in that order.
pub const PROFILES: [Profile; 3] = [
    Profile {
        name: "standard",
        tp: 1.0,
        fp: 0.11,
        fn_: 1.0,
        tn: 1.0,
    },
    Profile {
        name: "reward_low_FP_rate",
        tp: 1.0,
        fp: 0.22,
        fn_: 1.0,
        tn: 1.0,
    },
    Profile {
        name: "reward_low_FN_rate",
        tp: 1.0,
        fp: 0.11,
        fn_: 2.0,
        tn: 1.0,
    },
];

/// NAB's `scaledSigmoid`: `-1` beyond 3, else `2·sigmoid(-5x) − 1`.
pub fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 {
        -1.0
    } else {
        2.0 * sigmoid(-5.0 * x) - 1.0
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Per-file, per-row scoring result.
#[derive(Debug, Clone, PartialEq)]
pub struct FileResult {
    pub name: String,
    /// Detected rows inside windows (row count, as NAB reports it).
    pub tp: usize,
    /// Detected rows outside windows.
    pub fp: usize,
    /// Undetected rows inside windows.
    pub fn_: usize,
    /// Undetected rows outside windows.
    pub tn: usize,
    /// The file's raw NAB score.
    pub raw: f64,
    /// Windows (with scored rows) containing at least one detection.
    pub windows_detected: usize,
    /// Windows (with scored rows) without any detection.
    pub windows_missed: usize,
}

/// One profile's result.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileResult {
    pub profile: Profile,
    /// The corpus-wide threshold maximising the raw score (1.1 = nothing detected).
    pub threshold: f64,
    /// Sum of the files' raw scores at `threshold`.
    pub raw: f64,
    /// Raw score of NAB's null detector (constant score, optimised).
    pub null: f64,
    /// `windows_count · A_TP`.
    pub perfect: f64,
    /// `100 · (raw − null) / (perfect − null)` (NaN for a subset without
    /// windows, see [`SubsetScore::normalized`]).
    pub normalized: f64,
    /// Sorted by name.
    pub files: Vec<FileResult>,
    /// NAB's per-category breakdown at `threshold`, sorted by category name
    /// (see [`CategoryResult`]).
    pub categories: Vec<CategoryResult>,
}

/// The result of [`evaluate`]: one entry per profile of [`PROFILES`], in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub profiles: Vec<ProfileResult>,
}

impl Evaluation {
    /// The result for a profile name (`"standard"`, `"reward_low_FP_rate"`, `"reward_low_FN_rate"`).
    pub fn profile(&self, name: &str) -> Option<&ProfileResult> {
        self.profiles.iter().find(|p| p.profile.name == name)
    }

    /// The standard profile's normalised score.
    pub fn standard(&self) -> f64 {
        self.profile("standard").map_or(f64::NAN, |p| p.normalized)
    }
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| Profile | NAB score | Threshold | Raw | Null | Perfect |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
        for p in &self.profiles {
            writeln!(
                f,
                "| {} | {:.2} | {:.6} | {:.3} | {:.3} | {:.3} |",
                p.profile.name, p.normalized, p.threshold, p.raw, p.null, p.perfect
            )?;
        }
        if let Some(std) = self.profile("standard").or(self.profiles.first()) {
            writeln!(f)?;
            writeln!(
                f,
                "Per category ({} profile, corpus-wide threshold {:.6}; each category \
                 normalised with its own null and perfect; — = no windows, score undefined):",
                std.profile.name, std.threshold
            )?;
            writeln!(f)?;
            writeln!(
                f,
                "| Category | Files | Windows | Windows hit | FP rows | NAB score |"
            )?;
            writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
            for c in &std.categories {
                let s = &c.score;
                let normalized = s
                    .normalized
                    .map_or_else(|| "—".to_string(), |v| format!("{v:.2}"));
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} |",
                    c.category, s.files, s.windows, s.windows_hit, s.fp_rows, normalized
                )?;
            }
            writeln!(f)?;
            writeln!(
                f,
                "Per file ({} profile, threshold {:.6}; TP/FP/FN count rows, as NAB does):",
                std.profile.name, std.threshold
            )?;
            writeln!(f)?;
            writeln!(f, "| File | Windows hit | TP | FP | FN | Raw |")?;
            writeln!(f, "|---|---:|---:|---:|---:|---:|")?;
            for r in &std.files {
                writeln!(
                    f,
                    "| {} | {}/{} | {} | {} | {} | {:.3} |",
                    r.name,
                    r.windows_detected,
                    r.windows_detected + r.windows_missed,
                    r.tp,
                    r.fp,
                    r.fn_,
                    r.raw
                )?;
            }
        }
        Ok(())
    }
}

/// What a scored (non-probationary) row is, with its profile-independent
/// ("unweighted") sweep value as computed in `calcSweepScore`.
#[derive(Clone, Copy, Debug)]
enum RowKind {
    /// Inside window `window` (corpus-wide index); `unweighted = scaledSigmoid(position)`.
    Window { window: usize, unweighted: f64 },
    /// Outside any window.
    Outside { unweighted: f64 },
}

impl RowKind {
    fn weighted(self, p: &Profile, max_tp: f64) -> f64 {
        match self {
            RowKind::Window { unweighted, .. } => unweighted * p.tp / max_tp,
            RowKind::Outside { unweighted } => unweighted * p.fp,
        }
    }
}

/// Per-file preparation: the scored rows and the windows that have scored rows.
struct PreparedFile<'a> {
    name: &'a str,
    /// `(row, kind)` for rows `probation_rows..len`.
    rows: Vec<(usize, RowKind)>,
    /// Corpus-wide indices of this file's windows that contain a scored row.
    windows: Vec<usize>,
}

fn check_windows(file: &LabeledFile) -> Result<(), NabError> {
    let n = file.data.len();
    if file.data.times_ms.len() != n || file.data.timestamps.len() != n {
        return Err(NabError::new(
            &file.data.name,
            None,
            format!(
                "timestamps ({}), times_ms ({}) and values ({n}) differ in length",
                file.data.timestamps.len(),
                file.data.times_ms.len()
            ),
        ));
    }
    let mut next_free = 0usize;
    for &(a, b) in &file.windows {
        if a > b || b >= n || a < next_free {
            return Err(NabError::new(
                &file.data.name,
                None,
                format!(
                    "window rows ({a}, {b}): expected increasing, non-overlapping, inclusive row ranges within 0..{n}"
                ),
            ));
        }
        next_free = b + 1;
    }
    Ok(())
}

/// `calcSweepScore` minus the profile weights.
fn prepare_file(file: &LabeledFile, first_window: usize) -> PreparedFile<'_> {
    let n = file.data.len();
    let mut rows = Vec::with_capacity(n.saturating_sub(file.probation_rows));
    let mut windows = Vec::new();
    let mut next = 0usize; // next window to enter
    let mut prev: Option<(usize, usize)> = None; // (right index, width) of the last window left
    for i in 0..n {
        // Inside a window?
        while next < file.windows.len() && file.windows[next].1 < i {
            let (a, b) = file.windows[next];
            prev = Some((b, b - a + 1));
            next += 1;
        }
        let kind = match file.windows.get(next) {
            Some(&(a, b)) if a <= i => {
                let width = (b - a + 1) as f64;
                let position = -((b - i + 1) as f64) / width;
                RowKind::Window {
                    window: first_window + next,
                    unweighted: scaled_sigmoid(position),
                }
            }
            _ => match prev {
                None => RowKind::Outside { unweighted: -1.0 },
                Some((right, width)) => {
                    let position = i.abs_diff(right) as f64 / (width - 1) as f64;
                    RowKind::Outside {
                        unweighted: scaled_sigmoid(position),
                    }
                }
            },
        };
        if i >= file.probation_rows {
            if let RowKind::Window { window, .. } = kind
                && windows.last() != Some(&window)
            {
                windows.push(window);
            }
            rows.push((i, kind));
        }
    }
    PreparedFile {
        name: &file.data.name,
        rows,
        windows,
    }
}

/// Checks the scores against the corpus: one vector per file, of the file's
/// length, every value finite and in [0, 1].
///
/// `files` are the files being scored (the whole corpus or a subset of it);
/// scores for corpus files outside `files` are ignored, scores for names
/// that are not in the corpus at all are an error.
fn lookup_scores<'s>(
    corpus: &Corpus,
    files: &[&LabeledFile],
    scores: &'s BTreeMap<String, Vec<f64>>,
) -> Result<Vec<&'s [f64]>, NabError> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let name = &file.data.name;
        let s = scores.get(name).ok_or_else(|| {
            NabError::new(name, None, "no anomaly scores given for this corpus file")
        })?;
        if s.len() != file.data.len() {
            return Err(NabError::new(
                name,
                None,
                format!(
                    "expected {} anomaly scores (one per row), got {}",
                    file.data.len(),
                    s.len()
                ),
            ));
        }
        if let Some((row, v)) = s
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v))
        {
            return Err(NabError::new(
                name,
                Some(row + 2),
                format!("anomaly score of row {row} is {v}; expected a number in [0, 1]"),
            ));
        }
        out.push(s.as_slice());
    }
    if let Some(extra) = scores
        .keys()
        .find(|k| !corpus.files.iter().any(|f| &f.data.name == *k))
    {
        return Err(NabError::new(
            extra,
            None,
            "anomaly scores given for a file that is not in the corpus",
        ));
    }
    Ok(out)
}

/// Prepares `files`, numbering their windows `0..Σ windows` in file order.
fn prepare<'a>(files: &[&'a LabeledFile]) -> Result<Vec<PreparedFile<'a>>, NabError> {
    let mut out = Vec::with_capacity(files.len());
    let mut first_window = 0;
    for file in files {
        check_windows(file)?;
        out.push(prepare_file(file, first_window));
        first_window += file.windows.len();
    }
    Ok(out)
}

/// Scores every file at one threshold (`score >= threshold` is a detection).
fn score_files(
    prepared: &[PreparedFile<'_>],
    scores: &[&[f64]],
    profile: &Profile,
    threshold: f64,
    n_windows: usize,
) -> (f64, Vec<FileResult>) {
    let max_tp = scaled_sigmoid(-1.0);
    let mut parts = vec![-profile.fn_; n_windows];
    let mut hit = vec![false; n_windows];
    let mut total = 0.0;
    let mut results = Vec::with_capacity(prepared.len());
    for (pf, s) in prepared.iter().zip(scores) {
        let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
        let mut fp_score = 0.0;
        for &(row, kind) in &pf.rows {
            let detected = s[row] >= threshold;
            match (kind, detected) {
                (RowKind::Window { window, .. }, true) => {
                    tp += 1;
                    hit[window] = true;
                    parts[window] = parts[window].max(kind.weighted(profile, max_tp));
                }
                (RowKind::Window { .. }, false) => fn_ += 1,
                (RowKind::Outside { .. }, true) => {
                    fp += 1;
                    fp_score += kind.weighted(profile, max_tp);
                }
                (RowKind::Outside { .. }, false) => tn += 1,
            }
        }
        // sum(scoreParts.values()): "fp" first, then the windows in order.
        let raw = pf.windows.iter().fold(fp_score, |acc, &w| acc + parts[w]);
        let windows_detected = pf.windows.iter().filter(|&&w| hit[w]).count();
        total += raw;
        results.push(FileResult {
            name: pf.name.to_string(),
            tp,
            fp,
            fn_,
            tn,
            raw,
            windows_detected,
            windows_missed: pf.windows.len() - windows_detected,
        });
    }
    (total, results)
}

/// The raw corpus score and per-file results at a given threshold
/// (a row is a detection iff its anomaly score is `>= threshold`).
pub fn score_at_threshold(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
    profile: &Profile,
    threshold: f64,
) -> Result<(f64, Vec<FileResult>), NabError> {
    let files: Vec<&LabeledFile> = corpus.files.iter().collect();
    let s = lookup_scores(corpus, &files, scores)?;
    let prepared = prepare(&files)?;
    Ok(score_files(
        &prepared,
        &s,
        profile,
        threshold,
        corpus.windows_count(),
    ))
}

/// `optimizeThreshold` over the corpus: returns (threshold, raw score) of the best
/// candidate. `points` are `(score, kind)` sorted by decreasing score.
fn sweep(
    points: impl IntoIterator<Item = (f64, RowKind)>,
    windows_with_rows: &[usize],
    n_windows: usize,
    profile: &Profile,
) -> (f64, f64) {
    let max_tp = scaled_sigmoid(-1.0);
    let mut parts = vec![0.0; n_windows];
    let mut window_total = 0.0;
    for &w in windows_with_rows {
        parts[w] = -profile.fn_;
        window_total += -profile.fn_;
    }
    let mut fp_total = 0.0;
    let mut cur_threshold = NO_DETECTION_THRESHOLD;
    let mut best = (cur_threshold, fp_total + window_total);
    for (level, kind) in points {
        if level != cur_threshold {
            // Record the score for cur_threshold (all points above `level` detected).
            let score = fp_total + window_total;
            if score > best.1 {
                best = (cur_threshold, score);
            }
            cur_threshold = level;
        }
        let v = kind.weighted(profile, max_tp);
        match kind {
            RowKind::Window { window, .. } => {
                if v > parts[window] {
                    window_total += v - parts[window];
                    parts[window] = v;
                }
            }
            RowKind::Outside { .. } => fp_total += v,
        }
    }
    let score = fp_total + window_total;
    if score > best.1 {
        best = (cur_threshold, score);
    }
    best
}

/// Scores a detector NAB's way: for each profile, the corpus-wide threshold that
/// maximises the raw score, the per-file results at that threshold, and the
/// normalised score `100 · (raw − null) / (perfect − null)`; plus the
/// per-category breakdown at that threshold (see [`CategoryResult`]).
///
/// `scores`: file name → anomaly score per row (same length as the file), in [0, 1].
pub fn evaluate(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
) -> Result<Evaluation, NabError> {
    let files: Vec<&LabeledFile> = corpus.files.iter().collect();
    evaluate_files(corpus, &files, scores, &PROFILES)
}

/// [`evaluate`] on the files of `corpus` whose name `keep` accepts, as if
/// they were the whole corpus: the threshold is swept on those files only,
/// and `null`/`perfect` are those files' (so a subset without windows has a
/// `perfect` of 0 and an undefined (NaN) normalised score). Scores for
/// corpus files outside the subset are ignored (and may be absent).
///
/// Errors: no file accepted, or the same errors as [`evaluate`].
pub fn evaluate_subset(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
    keep: impl Fn(&str) -> bool,
) -> Result<Evaluation, NabError> {
    let files = select(corpus, &keep)?;
    evaluate_files(corpus, &files, scores, &PROFILES)
}

/// The files of `corpus` whose name `keep` accepts; an error if there are none.
fn select<'c>(
    corpus: &'c Corpus,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<&'c LabeledFile>, NabError> {
    let files: Vec<&LabeledFile> = corpus.files.iter().filter(|f| keep(&f.data.name)).collect();
    if files.is_empty() {
        return Err(NabError::new(
            "corpus",
            None,
            format!(
                "the subset selects none of the corpus's {} files",
                corpus.files.len()
            ),
        ));
    }
    Ok(files)
}

/// The evaluation of `files` (the whole corpus or a subset) for `profiles`.
fn evaluate_files(
    corpus: &Corpus,
    files: &[&LabeledFile],
    scores: &BTreeMap<String, Vec<f64>>,
    profiles: &[Profile],
) -> Result<Evaluation, NabError> {
    let s = lookup_scores(corpus, files, scores)?;
    let prepared = prepare(files)?;
    let n_windows: usize = files.iter().map(|f| f.windows.len()).sum();
    let windows_with_rows: Vec<usize> = prepared
        .iter()
        .flat_map(|p| p.windows.iter().copied())
        .collect();

    // Every scored row of the files, sorted by decreasing score. Scores are
    // in [0, 1] (checked), so the bits of a non-negative f64 sort like the
    // number; a u128 key (bits << 32 | row index) sorts fast. The order among
    // equal scores does not matter: a threshold's score is recorded only
    // between groups of equal scores.
    let kinds: Vec<RowKind> = prepared
        .iter()
        .flat_map(|p| p.rows.iter().map(|&(_, k)| k))
        .collect();
    if kinds.len() > u32::MAX as usize {
        return Err(NabError::new("corpus", None, "more than 2^32 scored rows"));
    }
    let mut keys: Vec<u128> = Vec::with_capacity(kinds.len());
    for (pf, sc) in prepared.iter().zip(&s) {
        for &(row, _) in &pf.rows {
            let bits = (sc[row] + 0.0).to_bits(); // -0.0 + 0.0 = +0.0
            keys.push(u128::from(bits) << 32 | keys.len() as u128);
        }
    }
    keys.sort_unstable();
    let points = || {
        keys.iter().rev().map(|&k| {
            let score = f64::from_bits((k >> 32) as u64);
            (score, kinds[(k & 0xffff_ffff) as usize])
        })
    };

    let mut results = Vec::with_capacity(profiles.len());
    for &profile in profiles {
        let (threshold, _) = sweep(points(), &windows_with_rows, n_windows, &profile);
        let (raw, file_results) = score_files(&prepared, &s, &profile, threshold, n_windows);
        let null = null_score(&prepared.iter().collect::<Vec<_>>(), n_windows, &profile);
        let perfect = n_windows as f64 * profile.tp;
        let normalized = 100.0 * (raw - null) / (perfect - null);
        let categories = category::breakdown(files, &prepared, &file_results, n_windows, &profile);
        results.push(ProfileResult {
            profile,
            threshold,
            raw,
            null,
            perfect,
            normalized,
            files: file_results,
            categories,
        });
    }
    Ok(Evaluation { profiles: results })
}

/// NAB's null detector on `prepared`: one constant score (0.5) for every
/// row, swept like any detector (so the better of "detect nothing" and
/// "detect every row"). `n_windows` bounds the files' window indices.
fn null_score(prepared: &[&PreparedFile<'_>], n_windows: usize, profile: &Profile) -> f64 {
    let windows_with_rows: Vec<usize> = prepared
        .iter()
        .flat_map(|p| p.windows.iter().copied())
        .collect();
    let points = prepared
        .iter()
        .flat_map(|p| p.rows.iter().map(|&(_, k)| (0.5, k)));
    sweep(points, &windows_with_rows, n_windows, profile).1
}

/// The files of `corpus` whose name `keep` accepts, scored at `threshold`
/// (a row is a detection iff its score is `>= threshold`) and normalised on
/// those files alone: their own null (constant 0.5, swept on them) and
/// perfect (their window count × `A_TP`). This is how a held-out category
/// is scored with a threshold chosen elsewhere. Scores for corpus files
/// outside the subset are ignored (and may be absent).
///
/// Errors: no file accepted, or the same errors as [`score_at_threshold`].
pub fn score_subset_at_threshold(
    corpus: &Corpus,
    scores: &BTreeMap<String, Vec<f64>>,
    keep: impl Fn(&str) -> bool,
    profile: &Profile,
    threshold: f64,
) -> Result<SubsetScore, NabError> {
    let files = select(corpus, &keep)?;
    let s = lookup_scores(corpus, &files, scores)?;
    let prepared = prepare(&files)?;
    let n_windows: usize = files.iter().map(|f| f.windows.len()).sum();
    let (_, results) = score_files(&prepared, &s, profile, threshold, n_windows);
    let all: Vec<usize> = (0..files.len()).collect();
    Ok(category::subset_score(
        &files, &prepared, &results, &all, n_windows, profile,
    ))
}

/// Baseline detectors, for tests and the `nab_baselines` example.
pub mod baselines {
    use super::Corpus;
    use std::collections::BTreeMap;

    /// All zeros.
    pub fn null(corpus: &Corpus) -> BTreeMap<String, Vec<f64>> {
        corpus
            .files
            .iter()
            .map(|f| (f.data.name.clone(), vec![0.0; f.data.len()]))
            .collect()
    }

    /// 1 on the first row of each window, 0 elsewhere.
    pub fn perfect(corpus: &Corpus) -> BTreeMap<String, Vec<f64>> {
        corpus
            .files
            .iter()
            .map(|f| {
                let mut v = vec![0.0; f.data.len()];
                for &(a, _) in &f.windows {
                    v[a] = 1.0;
                }
                (f.data.name.clone(), v)
            })
            .collect()
    }

    /// Uniform scores in [0, 1) from a 64-bit LCG (Knuth's MMIX constants), top 53 bits.
    pub fn random(corpus: &Corpus, seed: u64) -> BTreeMap<String, Vec<f64>> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        corpus
            .files
            .iter()
            .map(|f| {
                (
                    f.data.name.clone(),
                    (0..f.data.len()).map(|_| next()).collect(),
                )
            })
            .collect()
    }
}
