//! `hearth report usage`: the billing table per user and period from the
//! ledger. Days, weeks and months are the space's local ones (the ledger
//! keeps each hour's local date); weeks and months cut by `--from`/`--to`
//! bill only their days inside the range (`start`/`end` say which).
//!
//! CSV (`--format csv`, RFC 4180, one header line):
//!
//! ```text
//! user,period,start,end,kwh_hp,kwh_hc,kwh,eur
//! alice,day,2026-12-07,2026-12-07,1.200,0.300,1.500,0.31
//! alice,week,2026-12-07,2026-12-07,1.200,0.300,1.500,0.31
//! alice,month,2026-12-01,2026-12-07,1.200,0.300,1.500,0.31
//! ```
//!
//! Markdown (`--format md`): the same columns as a table. Energy of outlets
//! nobody held is billed to user `none`. Weeks start on `--week-starts`,
//! else on the `[usage] week_starts` of the config given with `--config`
//! (as the live `this week` entities), else on Monday.

use super::ledger;
use super::periods::{Calendar, PeriodKind, WeekStart};
use jiff::civil::Date;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Markdown,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "md" | "markdown" => Ok(Format::Markdown),
            _ => Err(format!("--format `{s}`: expected csv or md")),
        }
    }
}

/// One line of the bill.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BillRow {
    pub user: String,
    pub kind: PeriodKind,
    /// First and last local date billed.
    pub start: String,
    pub end: String,
    pub wh_hp: f64,
    pub wh_hc: f64,
    pub eur: f64,
}

pub fn parse_date(flag: &str, s: &str) -> Result<Date, String> {
    s.parse::<Date>()
        .map_err(|e| format!("{flag} `{s}`: expected a date YYYY-MM-DD ({e})"))
}

/// The bill of `from..=to` (local dates) from the ledger in `db`.
pub fn bill(
    db: &Path,
    from: Date,
    to: Date,
    week_starts: WeekStart,
) -> Result<Vec<BillRow>, String> {
    if to < from {
        return Err(format!("--to {to} is before --from {from}"));
    }
    if !db.exists() {
        return Err(format!(
            "{}: no recorder database (is --data-dir the bridge's data directory?)",
            db.display()
        ));
    }
    let err = |e: rusqlite::Error| format!("{}: {e}", db.display());
    let conn = crate::recorder::schema::open_reader(db).map_err(|e| e.to_string())?;
    if !ledger::exists(&conn).map_err(err)? {
        return Err(format!(
            "{}: no usage ledger (the bridge never ran with [usage])",
            db.display()
        ));
    }
    let rows = ledger::per_day(&conn, &from.to_string(), &to.to_string()).map_err(err)?;
    // Only the weekday rule matters here: dates are already local.
    let cal = Calendar::new(jiff::tz::TimeZone::UTC, week_starts);
    let mut bills: BTreeMap<(String, PeriodKind, Date), BillRow> = BTreeMap::new();
    for ledger::DayRow {
        user,
        date,
        period,
        wh,
        eur,
    } in rows
    {
        let Ok(date) = date.parse::<Date>() else {
            tracing::warn!("usage ledger: row of `{user}` with a bad date `{date}` skipped");
            continue;
        };
        for kind in PeriodKind::ALL {
            let first = cal.period_first_date(kind, date);
            let b = bills
                .entry((user.clone(), kind, first))
                .or_insert_with(|| BillRow {
                    user: user.clone(),
                    kind,
                    start: first.max(from).to_string(),
                    end: String::new(),
                    ..BillRow::default()
                });
            let last = cal
                .next_first_date(kind, date)
                .yesterday()
                .unwrap_or(date)
                .min(to);
            b.end = last.to_string();
            if period == "HC" {
                b.wh_hc += wh;
            } else {
                b.wh_hp += wh;
            }
            b.eur += eur;
        }
    }
    Ok(bills.into_values().collect())
}

/// The first day of a week for the report: `--week-starts` when given,
/// else the bridge config's `[usage] week_starts` (`--config`), which the
/// live per-user `this week` entities use ([`super::UsageConfig::calendar`]),
/// else Monday, that setting's default.
pub fn week_start_of(flag: Option<&str>, config: Option<&Path>) -> Result<WeekStart, String> {
    if let Some(w) = flag {
        return WeekStart::parse(w)
            .ok_or_else(|| format!("--week-starts `{w}`: expected monday or sunday"));
    }
    let Some(path) = config else {
        return Ok(WeekStart::default());
    };
    let config = crate::config::Config::load(path).map_err(|e| format!("--config: {e:#}"))?;
    Ok(config.usage.map(|u| u.week_starts).unwrap_or_default())
}

/// `hearth report usage`: the rendered bill, or an error naming the flag.
/// `week_starts` and `config` as [`week_start_of`].
pub fn command(
    db: &Path,
    from: &str,
    to: &str,
    format: &str,
    week_starts: Option<&str>,
    config: Option<&Path>,
) -> Result<String, String> {
    let format = Format::parse(format)?;
    let week_starts = week_start_of(week_starts, config)?;
    let rows = bill(
        db,
        parse_date("--from", from)?,
        parse_date("--to", to)?,
        week_starts,
    )?;
    Ok(render(&rows, format))
}

/// The table as CSV or Markdown (kWh with 3 decimals, € with 2).
pub fn render(rows: &[BillRow], format: Format) -> String {
    let mut out = String::new();
    let cells = |r: &BillRow| {
        [
            r.user.clone(),
            r.kind.as_str().to_string(),
            r.start.clone(),
            r.end.clone(),
            format!("{:.3}", r.wh_hp / 1000.0),
            format!("{:.3}", r.wh_hc / 1000.0),
            format!("{:.3}", (r.wh_hp + r.wh_hc) / 1000.0),
            format!("{:.2}", r.eur),
        ]
    };
    match format {
        Format::Csv => {
            out.push_str("user,period,start,end,kwh_hp,kwh_hc,kwh,eur\n");
            for r in rows {
                // User ids are [a-z0-9_-]: nothing to quote.
                let _ = writeln!(out, "{}", cells(r).join(","));
            }
        }
        Format::Markdown => {
            out.push_str("| User | Period | Start | End | kWh HP | kWh HC | kWh | € |\n");
            out.push_str("|---|---|---|---|---:|---:|---:|---:|\n");
            for r in rows {
                let _ = writeln!(out, "| {} |", cells(r).join(" | "));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::ledger::LedgerRow;

    #[test]
    fn days_weeks_and_months_from_a_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let mut conn = crate::recorder::schema::open_writer(&path).unwrap();
        let tx = conn.transaction().unwrap();
        for (user, hour, date, period, wh, eur) in [
            ("alice", 1, "2026-11-30", "HP", 1000.0, 0.25), // Monday
            ("alice", 2, "2026-12-01", "HC", 500.0, 0.08),
            ("alice", 2, "2026-12-01", "HC", 250.0, 0.04), // adds up
            ("bob", 3, "2026-12-01", "HP", 100.0, 0.02),
            ("bob", 4, "2026-12-09", "HP", 100.0, 0.02), // out of range
        ] {
            crate::usage::ledger::insert(
                &tx,
                &LedgerRow {
                    user: user.into(),
                    hour_ms: hour,
                    date: date.into(),
                    period: period.into(),
                    wh,
                    eur,
                },
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let from = parse_date("--from", "2026-11-30").unwrap();
        let to = parse_date("--to", "2026-12-06").unwrap();
        let rows = bill(&path, from, to, WeekStart::Monday).unwrap();
        let csv = render(&rows, Format::Csv);
        assert_eq!(
            csv,
            "user,period,start,end,kwh_hp,kwh_hc,kwh,eur\n\
             alice,day,2026-11-30,2026-11-30,1.000,0.000,1.000,0.25\n\
             alice,day,2026-12-01,2026-12-01,0.000,0.750,0.750,0.12\n\
             alice,week,2026-11-30,2026-12-06,1.000,0.750,1.750,0.37\n\
             alice,month,2026-11-30,2026-11-30,1.000,0.000,1.000,0.25\n\
             alice,month,2026-12-01,2026-12-06,0.000,0.750,0.750,0.12\n\
             bob,day,2026-12-01,2026-12-01,0.100,0.000,0.100,0.02\n\
             bob,week,2026-11-30,2026-12-06,0.100,0.000,0.100,0.02\n\
             bob,month,2026-12-01,2026-12-06,0.100,0.000,0.100,0.02\n"
        );
        let md = render(&rows, Format::Markdown);
        assert!(md.starts_with("| User | Period |"), "{md}");
        assert!(
            md.contains(
                "| alice | week | 2026-11-30 | 2026-12-06 | 1.000 | 0.750 | 1.750 | 0.37 |"
            ),
            "{md}"
        );
        let e = bill(&path, to, from, WeekStart::Monday).unwrap_err();
        assert!(e.contains("before --from"), "{e}");
        let e = bill(&dir.path().join("nope.db"), from, to, WeekStart::Monday).unwrap_err();
        assert!(e.contains("no recorder database"), "{e}");
        assert!(
            parse_date("--from", "2026-13-01")
                .unwrap_err()
                .contains("--from `2026-13-01`")
        );
    }

    #[test]
    fn without_the_flag_weeks_start_as_the_configs_usage_week_starts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let mut conn = crate::recorder::schema::open_writer(&path).unwrap();
        let tx = conn.transaction().unwrap();
        // A Saturday and the Sunday after it.
        for (hour, date) in [(1, "2026-12-05"), (2, "2026-12-06")] {
            let row = LedgerRow {
                user: "alice".into(),
                hour_ms: hour,
                date: date.into(),
                period: "HP".into(),
                wh: 1000.0,
                eur: 0.2,
            };
            crate::usage::ledger::insert(&tx, &row).unwrap();
        }
        tx.commit().unwrap();
        let config = dir.path().join("hearth.toml");
        std::fs::write(
            &config,
            "[usage]\ntimezone = \"UTC\"\nweek_starts = \"sunday\"\n",
        )
        .unwrap();
        let csv = command(
            &path,
            "2026-11-29",
            "2026-12-12",
            "csv",
            None,
            Some(&config),
        )
        .unwrap();
        let weeks: Vec<&str> = csv.lines().filter(|l| l.contains(",week,")).collect();
        // The live entities' calendar, from the same config.
        let usage = crate::config::Config::load(&config).unwrap().usage.unwrap();
        let cal = usage.calendar().unwrap();
        let expected: Vec<String> = ["2026-12-05", "2026-12-06"]
            .iter()
            .map(|d| {
                let first = cal.period_first_date(PeriodKind::Week, d.parse().unwrap());
                let last = cal
                    .next_first_date(PeriodKind::Week, first)
                    .yesterday()
                    .unwrap();
                format!("alice,week,{first},{last},1.000,0.000,1.000,0.20")
            })
            .collect();
        assert_eq!(weeks, expected, "{csv}");
        // The flag still wins; without flag nor config, Monday.
        for (flag, config, weeks) in [(Some("monday"), Some(config.as_path()), 1), (None, None, 1)]
        {
            let csv = command(&path, "2026-11-29", "2026-12-12", "csv", flag, config).unwrap();
            assert_eq!(
                csv.lines().filter(|l| l.contains(",week,")).count(),
                weeks,
                "{csv}"
            );
        }
        let e = week_start_of(None, Some(&dir.path().join("nope.toml"))).unwrap_err();
        assert!(e.starts_with("--config"), "{e}");
    }
}
