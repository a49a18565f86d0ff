//! The `timestamp,value` files `hearth detect` reads and the
//! `timestamp,value,anomaly_score` files it writes.
//!
//! Timestamps: `YYYY-MM-DD HH:MM:SS[.ffffff]` (NAB's shape, UTC), RFC 3339
//! with an offset (`2014-04-10T07:15:00+02:00`), or an integer of Unix
//! milliseconds. The value column is passed on as text: a number is a
//! sample, anything else (empty, `nan`, `unavailable`) is a gap for the
//! detector, as a live sensor's non-numeric state is. The input's timestamp
//! and value text are written back unchanged. Quoted fields are not
//! supported (neither column needs a comma).

use anyhow::{Context, bail};
use std::io::Write;
use std::path::Path;

/// One data row of the input.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line number in the file (for errors).
    pub line: usize,
    pub timestamp: String,
    pub time_ms: i64,
    pub value: String,
}

/// Reads a `timestamp,value` CSV (a header line is required).
pub fn read(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| format!("{}", path.display()))
}

/// Parses CSV text: a `timestamp,value` header, then one row per line.
pub fn parse(text: &str) -> anyhow::Result<Vec<Row>> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, l)| l.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    if cols.len() < 2 || cols[0] != "timestamp" || cols[1] != "value" {
        bail!("line 1: expected the header `timestamp,value`, got `{header}`");
    }
    let mut rows = Vec::new();
    for (i, line) in lines {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(',');
        let (Some(ts), Some(value)) = (fields.next(), fields.next()) else {
            bail!("line {line_no}: expected `timestamp,value`, got `{line}`");
        };
        let ts = ts.trim();
        let time_ms = parse_time_ms(ts).with_context(|| format!("line {line_no}"))?;
        rows.push(Row {
            line: line_no,
            timestamp: ts.to_string(),
            time_ms,
            value: value.trim().to_string(),
        });
    }
    Ok(rows)
}

/// `YYYY-MM-DD HH:MM:SS[.f]` (UTC), RFC 3339, or Unix milliseconds.
pub fn parse_time_ms(ts: &str) -> anyhow::Result<i64> {
    if !ts.is_empty() && ts.bytes().all(|b| b.is_ascii_digit()) {
        return ts
            .parse()
            .with_context(|| format!("timestamp `{ts}`: too large for Unix milliseconds"));
    }
    let rfc3339 = if ts.contains(['Z', 'z', '+']) || ts.rfind('-').is_some_and(|i| i > 10) {
        ts.to_string()
    } else {
        format!("{}Z", ts.replacen(' ', "T", 1))
    };
    let t: jiff::Timestamp = rfc3339.parse().map_err(|e| {
        anyhow::anyhow!(
            "timestamp `{ts}`: expected `YYYY-MM-DD HH:MM:SS` (UTC), RFC 3339 or Unix ms ({e})"
        )
    })?;
    Ok(t.as_millisecond())
}

/// Writes `timestamp,value,anomaly_score` (scores with 6 decimals).
pub fn write(path: &Path, rows: &[Row], scores: &[f64]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let result = (|| -> std::io::Result<()> {
        writeln!(out, "timestamp,value,anomaly_score")?;
        for (row, score) in rows.iter().zip(scores) {
            writeln!(out, "{},{},{score:.6}", row.timestamp, row.value)?;
        }
        out.flush()
    })();
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nab_rfc3339_and_epoch_timestamps_agree() {
        let a = parse_time_ms("2014-04-10 07:15:00").unwrap();
        assert_eq!(a, parse_time_ms("2014-04-10T07:15:00Z").unwrap());
        assert_eq!(a, parse_time_ms("2014-04-10T09:15:00+02:00").unwrap());
        assert_eq!(a, parse_time_ms(&a.to_string()).unwrap());
        assert_eq!(
            a + 500,
            parse_time_ms("2014-04-10 07:15:00.500000").unwrap()
        );
        assert_eq!(
            parse_time_ms("2014-04-10T07:15:00-05:00").unwrap(),
            a + 5 * 3_600_000
        );
    }

    #[test]
    fn bad_input_is_named() {
        let e = parse("time,value\n1,2\n").unwrap_err();
        assert!(format!("{e:#}").contains("header"), "{e:#}");
        let e = parse("timestamp,value\n2014-04-10 07:15:00,1\nnot a time,2\n").unwrap_err();
        let msg = format!("{e:#}");
        assert!(
            msg.contains("line 3") && msg.contains("not a time"),
            "{msg}"
        );
        let e = parse("timestamp,value\n2014-04-10 07:15:00\n").unwrap_err();
        assert!(format!("{e:#}").contains("line 2"), "{e:#}");
    }

    #[test]
    fn non_numeric_values_pass_as_text() {
        let rows =
            parse("timestamp,value\n2014-04-10 07:15:00,nan\n2014-04-10 07:20:00,\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].value, "nan");
        assert_eq!(rows[1].value, "");
    }
}
