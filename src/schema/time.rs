//! Calendar and clock text: RFC 3339 timestamps, ISO dates and months, and
//! times of day. Everything is checked field by field (month 1–12, day
//! within its month, hour 0–23, minute and second 0–59) and returned as
//! plain counts; the caller moves them to kdb+'s 2000.01.01 epoch.
//!
//! Leap seconds (`:60`) are rejected: q has no way to hold them.

use crate::kdb::types::NANOS_PER_DAY;

pub type Reason = &'static str;

pub use crate::clock::{civil_from_days, days_from_civil};

/// (year, month) of the day `days` after 1970-01-01.
pub fn year_month_of_days(days: i64) -> (i64, u32) {
    let (year, month, _) = civil_from_days(days);
    (year, month)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Exactly `n` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn expect(b: &[u8], at: usize, c: u8) -> Result<(), Reason> {
    if b.get(at) == Some(&c) {
        Ok(())
    } else {
        Err("unexpected character")
    }
}

/// `YYYY-MM-DD` at the start of `b`, as days since 1970-01-01.
fn date_prefix(b: &[u8]) -> Result<i64, Reason> {
    let year = digits(b, 0, 4).ok_or("expected YYYY-MM-DD")?;
    expect(b, 4, b'-').map_err(|_| "expected YYYY-MM-DD")?;
    let month = digits(b, 5, 2).ok_or("expected YYYY-MM-DD")?;
    expect(b, 7, b'-').map_err(|_| "expected YYYY-MM-DD")?;
    let day = digits(b, 8, 2).ok_or("expected YYYY-MM-DD")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    if day < 1 || day > days_in_month(year as i64, month) {
        return Err("day out of range for its month");
    }
    Ok(days_from_civil(year as i64, month, day))
}

/// An ISO date `YYYY-MM-DD`, as days since 1970-01-01.
pub fn parse_date(s: &str) -> Result<i64, Reason> {
    if s.len() != 10 {
        return Err("expected YYYY-MM-DD");
    }
    date_prefix(s.as_bytes())
}

/// `YYYY-MM`, as months since 2000-01.
pub fn parse_month(s: &str) -> Result<i64, Reason> {
    let b = s.as_bytes();
    if b.len() != 7 {
        return Err("expected YYYY-MM");
    }
    let year = digits(b, 0, 4).ok_or("expected YYYY-MM")?;
    expect(b, 4, b'-').map_err(|_| "expected YYYY-MM")?;
    let month = digits(b, 5, 2).ok_or("expected YYYY-MM")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    Ok((year as i64 - 2000) * 12 + month as i64 - 1)
}

/// `HH:MM[:SS[.f…]]` at the start of `b` (up to nine fraction digits):
/// nanoseconds since midnight and the bytes consumed.
fn clock_prefix(b: &[u8], need_seconds: bool) -> Result<(i64, usize), Reason> {
    let hh = digits(b, 0, 2).ok_or("expected HH:MM:SS")?;
    expect(b, 2, b':').map_err(|_| "expected HH:MM:SS")?;
    let mm = digits(b, 3, 2).ok_or("expected HH:MM:SS")?;
    let mut used = 5;
    let mut ss = 0;
    let mut frac: i64 = 0;
    if b.get(5) == Some(&b':') {
        ss = digits(b, 6, 2).ok_or("expected HH:MM:SS")?;
        used = 8;
        if b.get(8) == Some(&b'.') {
            let n = b
                .get(9..)
                .unwrap_or(&[])
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if n == 0 {
                return Err("digits expected after '.'");
            }
            if n > 9 {
                return Err("more than nine fraction digits");
            }
            let f = digits(b, 9, n).ok_or("bad fraction")?;
            frac = i64::from(f) * 10i64.pow(9 - n as u32);
            used = 9 + n;
        }
    } else if need_seconds {
        return Err("expected HH:MM:SS");
    }
    if hh > 23 {
        return Err("hour out of range");
    }
    if mm > 59 {
        return Err("minute out of range");
    }
    if ss > 59 {
        return Err("second out of range");
    }
    let secs = i64::from(hh) * 3600 + i64::from(mm) * 60 + i64::from(ss);
    Ok((secs * 1_000_000_000 + frac, used))
}

/// A time of day `HH:MM`, `HH:MM:SS` or `HH:MM:SS.fffffffff`, as
/// nanoseconds since midnight.
pub fn parse_time_of_day(s: &str) -> Result<i64, Reason> {
    let (ns, used) = clock_prefix(s.as_bytes(), false)?;
    if used != s.len() {
        return Err("trailing characters after the time");
    }
    Ok(ns)
}

/// Whether `s` looks like a full date-time rather than a bare date or time.
pub fn looks_like_datetime(s: &str) -> bool {
    matches!(s.as_bytes().get(10), Some(b'T' | b't' | b' '))
}

/// An RFC 3339 date-time (`2026-11-25T14:30:00.123456789Z`, offsets
/// `±HH:MM`, `T`/`t`/space separator), as nanoseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Result<i128, Reason> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err("expected RFC 3339 YYYY-MM-DDTHH:MM:SS[.f]Z or ±HH:MM");
    }
    let days = date_prefix(b)?;
    if !looks_like_datetime(s) {
        return Err("expected 'T' between date and time");
    }
    let rest = b.get(11..).unwrap_or(&[]);
    let (tod, used) = clock_prefix(rest, true)?;
    let zone = rest.get(used..).unwrap_or(&[]);
    let offset_secs: i64 = match zone {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if zone.len() == 6 => {
            let oh = digits(zone, 1, 2).ok_or("bad UTC offset")?;
            expect(zone, 3, b':').map_err(|_| "bad UTC offset")?;
            let om = digits(zone, 4, 2).ok_or("bad UTC offset")?;
            if oh > 23 || om > 59 {
                return Err("UTC offset out of range");
            }
            let secs = i64::from(oh) * 3600 + i64::from(om) * 60;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        [] => return Err("missing UTC offset (Z or ±HH:MM)"),
        _ => return Err("bad UTC offset"),
    };
    Ok(
        i128::from(days) * i128::from(NANOS_PER_DAY) + i128::from(tod)
            - i128::from(offset_secs) * 1_000_000_000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(2000, 3, 1), 10_957 + 60);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for d in (-800_000..800_000).step_by(997) {
            let (y, m) = year_month_of_days(d);
            let first = days_from_civil(y, m, 1);
            assert!(first <= d && d < first + i64::from(days_in_month(y, m)));
        }
    }

    #[test]
    fn rfc3339_forms() {
        let base = 1_764_081_000i128 * 1_000_000_000; // 2025-11-25T14:30:00Z
        assert_eq!(parse_rfc3339("2025-11-25T14:30:00Z"), Ok(base));
        assert_eq!(
            parse_rfc3339("2025-11-25t14:30:00.5z"),
            Ok(base + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2025-11-25 16:30:00.000000001+02:00"),
            Ok(base + 1)
        );
        assert_eq!(parse_rfc3339("2025-11-25T09:00:00-05:30"), Ok(base));
        for bad in [
            "2025-11-25T14:30:00",
            "2025-11-25T24:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-11-25T14:30:60Z",
            "2025-11-25T14:30:00.1234567891Z",
            "2025-11-25T14:30:00.Z",
            "2025-11-25T14:30Z",
            "2025-13-01T00:00:00Z",
            "2025-11-25T14:30:00+0200",
            "2025-11-25T14:30:00Zjunk",
            "20251125T143000Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_ok());
    }
}
