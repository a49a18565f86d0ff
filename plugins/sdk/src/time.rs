//! Time stamps without a time-zone database (the sandbox has none): RFC 3339
//! text with an explicit offset, and civil dates, to and from ms since the
//! Unix epoch (UTC).

/// `YYYY-MM-DD[T ]HH:MM[:SS[.fff]](Z|±HH:MM)` → ms since the epoch.
/// A time without an offset is refused: a plugin has no time zone.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 17 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi) = (num(11..13)?, num(14..16)?);
    if b[13] != b':' {
        return None;
    }
    let mut at = 16;
    let mut sec = 0;
    let mut ms = 0;
    if b.get(at) == Some(&b':') {
        sec = num(at + 1..at + 3)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let start = at + 1;
            let mut end = start;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            if end == start {
                return None;
            }
            let frac = &s[start..end.min(start + 3)];
            ms = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
            at = end;
        }
    }
    let offset_min = match s.get(at..)? {
        "Z" | "z" => 0,
        // Bytes, not str slices: a multibyte character must not panic.
        o if o.len() == 6 && matches!(o.as_bytes()[0], b'+' | b'-') && o.as_bytes()[3] == b':' => {
            let m = num(at + 1..at + 3)? * 60 + num(at + 4..at + 6)?;
            if o.as_bytes()[0] == b'-' { -m } else { m }
        }
        _ => return None,
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + ms)
}

/// `ms` as RFC 3339 at the offset `offset_min` (minutes east of UTC), to
/// the second: `2026-01-13T17:30:00+01:00` (`Z` for offset 0).
pub fn format_rfc3339(ms: i64, offset_min: i32) -> String {
    let local_s = ms.div_euclid(1000) + offset_min as i64 * 60;
    let (days, sod) = (local_s.div_euclid(86_400), local_s.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let off = if offset_min == 0 {
        "Z".to_string()
    } else {
        let a = offset_min.unsigned_abs();
        let sign = if offset_min < 0 { '-' } else { '+' };
        format!("{sign}{:02}:{:02}", a / 60, a % 60)
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{off}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        // 2026-01-13T16:30:00Z = 1768321800 s.
        let z = 1_768_321_800_000;
        assert_eq!(parse_rfc3339_ms("2026-01-13T16:30:00Z"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-01-13T17:30:00+01:00"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-01-13 16:30:00+00:00"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-01-13T16:30Z"), Some(z));
        assert_eq!(parse_rfc3339_ms("2026-01-13T16:30:00.25Z"), Some(z + 250));
        assert_eq!(parse_rfc3339_ms("2026-01-13T12:30:00-04:00"), Some(z));
        for bad in [
            "2026-01-13T16:30:00",
            "2026-13-13T16:30:00Z",
            "unknown",
            "",
            "2026-01-13T16:30:00+0100",
            "2026-01-13T16:30:00.Z",
            "2026-01-13T1a:30:00Z",
            "2026-01-13T16:30:00é1:00",
            "2026-01-13T16:30:00+1é00",
            "2026-01-13T16:30:00+01é0",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn format_round_trips() {
        let z = 1_768_321_800_000;
        assert_eq!(format_rfc3339(z, 0), "2026-01-13T16:30:00Z");
        assert_eq!(format_rfc3339(z, 60), "2026-01-13T17:30:00+01:00");
        assert_eq!(format_rfc3339(z, -270), "2026-01-13T12:00:00-04:30");
        // Across a year end and a leap day.
        for ms in [0, 951_782_400_000, 1_767_225_599_000, -86_400_000] {
            for off in [0, 120, -600] {
                assert_eq!(parse_rfc3339_ms(&format_rfc3339(ms, off)), Some(ms));
            }
        }
        for days in [-1000, 0, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
