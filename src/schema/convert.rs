//! One input value to one q cell, by column type, with every range checked.
//!
//! Integers are read exactly from the decimal text (no trip through `f64`),
//! so `300.0` and `3e2` are the integer 300 while `1.5` and `1e30` are
//! refused for an integer column. The null sentinels of short, int and long
//! (the most negative value) are refused as input: a record cannot smuggle a
//! null in as a number. `i16::MAX` etc. are accepted; q shows them as `0W`.
//!
//! What each type takes (JSON `null` and absent fields are "missing": the
//! column's default, else its typed null if nullable, else an error):
//!
//! | type | JSON string | JSON number |
//! |---|---|---|
//! | boolean | — (`true`/`false` literals) | 0 or 1 |
//! | byte, short, int, long | — | whole numbers in range |
//! | real, float | `"NaN"`, `"Infinity"`, `"-Infinity"` with `allow_non_finite` | finite, in range |
//! | char | exactly one byte | — |
//! | symbol, string | any text | — |
//! | guid | `8-4-4-4-12` hex | — |
//! | timestamp, datetime | RFC 3339, or `YYYY-MM-DD` (midnight UTC) | epoch in `time_format` units |
//! | date | `YYYY-MM-DD`, or RFC 3339 (its UTC date) | `epoch_days` or epoch units |
//! | month | `YYYY-MM`, `YYYY-MM-DD`, RFC 3339 | epoch units |
//! | timespan, minute, second, time | `HH:MM[:SS[.f…]]`, or RFC 3339 (UTC time of day) | the type's own unit, or epoch units (UTC time of day) |
//!
//! Finer digits than the type holds are cut (`14:30:59` is minute `14:30`).
//! Delimited text fields read as numbers where the column is numeric or
//! temporal and the text is a number, else as strings; `true`/`false` for
//! boolean.

use std::borrow::Cow;

use super::model::{QType, TimeFormat};
use super::time;
use crate::kdb::types::{null_float, null_real, KDB_EPOCH_DAYS, KDB_EPOCH_NANOS, NANOS_PER_DAY};
use crate::kdb::upd::{Column, SymbolTable};
use crate::kdb::value::Vector;

/// One field as found in a record.
#[derive(Clone, Debug)]
pub enum Input<'a> {
    /// Absent, or JSON `null`.
    Missing,
    Bool(bool),
    /// A JSON number, as written.
    Num(&'a str),
    /// A JSON string, unescaped.
    Str(Cow<'a, str>),
    /// A field of delimited text: numbers and words alike.
    Text(&'a str),
    /// An object or array where a scalar was expected.
    Compound(&'static str),
}

/// One converted value, ready to append to its column.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell<'a> {
    Bool(bool),
    U8(u8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Guid([u8; 16]),
    Sym(Cow<'a, str>),
    Bytes(Cow<'a, [u8]>),
}

impl Cell<'_> {
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Sym(s) => Cell::Sym(Cow::Owned(s.into_owned())),
            Cell::Bytes(b) => Cell::Bytes(Cow::Owned(b.into_owned())),
            Cell::Bool(x) => Cell::Bool(x),
            Cell::U8(x) => Cell::U8(x),
            Cell::I16(x) => Cell::I16(x),
            Cell::I32(x) => Cell::I32(x),
            Cell::I64(x) => Cell::I64(x),
            Cell::F32(x) => Cell::F32(x),
            Cell::F64(x) => Cell::F64(x),
            Cell::Guid(x) => Cell::Guid(x),
        }
    }

    /// Appends to a column built by [`empty_column`] for the same type;
    /// false when the shapes disagree (a bug, reported by the caller).
    #[inline]
    pub fn push(&self, col: &mut Column, syms: &mut SymbolTable) -> bool {
        match (col, self) {
            (Column::Simple(v), cell) => push_simple(v, cell),
            (Column::Symbols(ids), Cell::Sym(s)) => {
                ids.push(syms.intern(s));
                true
            }
            (Column::Strings { ends, bytes }, Cell::Bytes(b)) => {
                bytes.extend_from_slice(b);
                ends.push(bytes.len() as u32);
                true
            }
            _ => false,
        }
    }
}

#[inline]
fn push_simple(v: &mut Vector, cell: &Cell) -> bool {
    match (v, cell) {
        (Vector::Bool(v), Cell::Bool(x)) => v.push(*x),
        (Vector::Byte(v) | Vector::Char(v), Cell::U8(x)) => v.push(*x),
        (Vector::Short(v), Cell::I16(x)) => v.push(*x),
        (
            Vector::Int(v)
            | Vector::Month(v)
            | Vector::Date(v)
            | Vector::Minute(v)
            | Vector::Second(v)
            | Vector::Time(v),
            Cell::I32(x),
        ) => v.push(*x),
        (Vector::Long(v) | Vector::Timestamp(v) | Vector::Timespan(v), Cell::I64(x)) => v.push(*x),
        (Vector::Real(v), Cell::F32(x)) => v.push(*x),
        (Vector::Float(v) | Vector::Datetime(v), Cell::F64(x)) => v.push(*x),
        (Vector::Guid(v), Cell::Guid(x)) => v.push(*x),
        _ => return false,
    }
    true
}

/// An empty column builder for `t`.
pub fn empty_column(t: QType) -> Column {
    match t {
        QType::String => Column::Strings {
            ends: Vec::new(),
            bytes: Vec::new(),
        },
        QType::Symbol => Column::Symbols(Vec::new()),
        t => Column::Simple(Vector::empty(t.type_code()).unwrap_or(Vector::Long(Vec::new()))),
    }
}

/// Cuts a column back to `len` rows (undoing a failed record).
pub fn truncate_column(col: &mut Column, len: usize) {
    match col {
        Column::Symbols(ids) => ids.truncate(len),
        Column::Strings { ends, bytes } => {
            ends.truncate(len);
            bytes.truncate(ends.last().map_or(0, |&e| e as usize));
        }
        Column::Simple(v) => match v {
            Vector::Bool(x) => x.truncate(len),
            Vector::Guid(x) => x.truncate(len),
            Vector::Byte(x) | Vector::Char(x) => x.truncate(len),
            Vector::Short(x) => x.truncate(len),
            Vector::Int(x)
            | Vector::Month(x)
            | Vector::Date(x)
            | Vector::Minute(x)
            | Vector::Second(x)
            | Vector::Time(x) => x.truncate(len),
            Vector::Long(x) | Vector::Timestamp(x) | Vector::Timespan(x) => x.truncate(len),
            Vector::Real(x) => x.truncate(len),
            Vector::Float(x) | Vector::Datetime(x) => x.truncate(len),
            Vector::Symbol(x) => x.truncate(len),
        },
    }
}

/// The q typed null of `t`, or `None` for boolean and byte (q has none).
pub fn null_cell(t: QType) -> Option<Cell<'static>> {
    Some(match t {
        QType::Boolean | QType::Byte => return None,
        QType::Guid => Cell::Guid([0; 16]),
        QType::Short => Cell::I16(i16::MIN),
        QType::Int | QType::Month | QType::Date | QType::Minute | QType::Second | QType::Time => {
            Cell::I32(i32::MIN)
        }
        QType::Long | QType::Timestamp | QType::Timespan => Cell::I64(i64::MIN),
        QType::Real => Cell::F32(null_real()),
        QType::Float | QType::Datetime => Cell::F64(null_float()),
        QType::Char => Cell::U8(b' '),
        QType::Symbol => Cell::Sym(Cow::Borrowed("")),
        QType::String => Cell::Bytes(Cow::Borrowed(b"")),
    })
}

/// Why a value did not convert (the caller adds table, column and field).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConvError {
    Missing,
    WrongType {
        expected: &'static str,
    },
    NotIntegral,
    OutOfRange,
    NonFinite,
    BadTemporal(&'static str),
    BadGuid,
    BadChar,
    /// A symbol with a NUL at this byte: kdb+ symbols end at a NUL, so the
    /// value cannot be carried exactly (a string column can carry it).
    NulInSymbol(usize),
}

impl std::fmt::Display for ConvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConvError::Missing => f.write_str("missing"),
            ConvError::WrongType { expected } => write!(f, "expected {expected}"),
            ConvError::NotIntegral => f.write_str("not a whole number"),
            ConvError::OutOfRange => f.write_str("out of range"),
            ConvError::NonFinite => f.write_str("not finite"),
            ConvError::BadTemporal(r) => f.write_str(r),
            ConvError::BadGuid => f.write_str("not a GUID"),
            ConvError::BadChar => f.write_str("not exactly one byte"),
            ConvError::NulInSymbol(at) => write!(f, "{}", nul_in_symbol(*at)),
        }
    }
}

/// Per-column settings that change how a value converts.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules {
    pub time_format: Option<TimeFormat>,
    pub allow_non_finite: bool,
}

/// Converts one present value (`Input::Missing` is the caller's business).
// Inlined into the per-cell loop: returned through memory, the cell (an
// enum of several shapes) was read back in pieces other than it was
// written, and that stall was a quarter of `decode::push`.
#[inline]
pub fn convert<'a>(t: QType, rules: Rules, input: Input<'a>) -> Result<Cell<'a>, ConvError> {
    let input = match input {
        Input::Text(s) => classify_text(t, s),
        other => other,
    };
    match input {
        Input::Missing => Err(ConvError::Missing),
        Input::Compound(_) => Err(wrong(t, rules)),
        Input::Text(_) => Err(wrong(t, rules)),
        Input::Bool(b) => match t {
            QType::Boolean => Ok(Cell::Bool(b)),
            _ => Err(wrong(t, rules)),
        },
        Input::Num(text) => from_number(t, rules, text),
        Input::Str(s) => from_string(t, rules, s),
    }
}

/// Delimited text carries no types: numbers read as numbers where the
/// column is numeric or temporal, everything else as a string.
fn classify_text(t: QType, s: &str) -> Input<'_> {
    match t {
        QType::Symbol | QType::String | QType::Char | QType::Guid => Input::Str(Cow::Borrowed(s)),
        QType::Boolean if s == "true" => Input::Bool(true),
        QType::Boolean if s == "false" => Input::Bool(false),
        _ if is_json_number(s) => Input::Num(s),
        _ => Input::Str(Cow::Borrowed(s)),
    }
}

/// JSON number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
pub fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let run = |i: usize| {
        b.get(i..)
            .unwrap_or(&[])
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += run(i),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let n = run(i + 1);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = b.get(i) {
            i += 1;
        }
        let n = run(i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

pub fn expected(t: QType, rules: Rules) -> &'static str {
    let epoch = rules.time_format.and_then(|f| f.nanos_per_unit()).is_some();
    match t {
        QType::Boolean => "true, false, 0 or 1",
        QType::Byte => "an integer 0..255",
        QType::Short | QType::Int | QType::Long => "an integer",
        QType::Real | QType::Float => "a number",
        QType::Char => "a one-byte string",
        QType::Symbol | QType::String => "a string",
        QType::Guid => "a GUID string",
        QType::Timestamp | QType::Datetime if epoch => "an RFC 3339 string or epoch number",
        QType::Timestamp | QType::Datetime => "an RFC 3339 string",
        QType::Date if epoch || rules.time_format == Some(TimeFormat::EpochDays) => {
            "a date string or epoch number"
        }
        QType::Date => "a date string YYYY-MM-DD",
        QType::Month if epoch => "a month string or epoch number",
        QType::Month => "a month string YYYY-MM",
        QType::Timespan | QType::Minute | QType::Second | QType::Time => {
            "a time of day string or a number"
        }
    }
}

fn wrong(t: QType, rules: Rules) -> ConvError {
    ConvError::WrongType {
        expected: expected(t, rules),
    }
}

/// A decimal number read exactly: `mantissa * 10^exp10`, sign apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub negative: bool,
    pub mantissa: u128,
    pub exp10: i32,
    /// Nonzero digits were dropped because the mantissa was full.
    pub lossy: bool,
}

impl Decimal {
    /// Parses a JSON-grammar number (already checked by the reader).
    pub fn parse(text: &str) -> Option<Decimal> {
        let b = text.as_bytes();
        let mut d = Decimal {
            negative: false,
            mantissa: 0,
            exp10: 0,
            lossy: false,
        };
        let mut i = 0;
        if b.first() == Some(&b'-') {
            d.negative = true;
            i = 1;
        }
        const FULL: u128 = 10u128.pow(36);
        let mut frac = false;
        let mut any = false;
        while let Some(&c) = b.get(i) {
            match c {
                b'0'..=b'9' => {
                    any = true;
                    let digit = u128::from(c - b'0');
                    if d.mantissa < FULL {
                        d.mantissa = d.mantissa * 10 + digit;
                        if frac {
                            d.exp10 -= 1;
                        }
                    } else {
                        d.lossy |= digit != 0;
                        if !frac {
                            d.exp10 += 1;
                        }
                    }
                }
                b'.' if !frac => frac = true,
                b'e' | b'E' => {
                    let digits = text.get(i + 1..)?;
                    // Saturate huge exponents: they mean "out of range", not "not a number".
                    let e: i64 = match digits.trim_start_matches('+').parse::<i64>() {
                        Ok(e) => e,
                        Err(_) if digits.starts_with('-') => -100_000,
                        Err(_) => 100_000,
                    };
                    let e = i32::try_from(e.clamp(-100_000, 100_000)).ok()?;
                    d.exp10 = d.exp10.checked_add(e)?;
                    break;
                }
                _ => return None,
            }
            i += 1;
        }
        any.then_some(d)
    }

    /// The exact integer value, or why there is none.
    pub fn to_i128(self) -> Result<i128, ConvError> {
        if self.mantissa == 0 {
            return Ok(0);
        }
        if self.lossy {
            return Err(ConvError::OutOfRange);
        }
        let m = i128::try_from(self.mantissa).map_err(|_| ConvError::OutOfRange)?;
        let v = if self.exp10 >= 0 {
            let p = pow10(self.exp10).ok_or(ConvError::OutOfRange)?;
            m.checked_mul(p).ok_or(ConvError::OutOfRange)?
        } else {
            let p = pow10(-self.exp10).ok_or(ConvError::NotIntegral)?;
            if m % p != 0 {
                return Err(ConvError::NotIntegral);
            }
            m / p
        };
        Ok(if self.negative { -v } else { v })
    }

    /// `self * unit`, rounded toward negative infinity (for epoch numbers
    /// finer than a nanosecond).
    pub fn scaled_floor(self, unit: i64) -> Result<i128, ConvError> {
        if self.mantissa == 0 {
            return Ok(0);
        }
        let m = i128::try_from(self.mantissa).map_err(|_| ConvError::OutOfRange)?;
        let m = m
            .checked_mul(i128::from(unit))
            .ok_or(ConvError::OutOfRange)?;
        let m = if self.negative { -m } else { m };
        if self.exp10 >= 0 {
            let p = pow10(self.exp10).ok_or(ConvError::OutOfRange)?;
            m.checked_mul(p).ok_or(ConvError::OutOfRange)
        } else {
            match pow10(-self.exp10) {
                Some(p) => Ok(m.div_euclid(p)),
                None => Ok(if m < 0 { -1 } else { 0 }),
            }
        }
    }
}

fn pow10(e: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(e).ok()?)
}

fn integer(text: &str, min: i128, max: i128) -> Result<i128, ConvError> {
    let v = match plain_integer(text) {
        Some(v) => v,
        None => Decimal::parse(text)
            .ok_or(ConvError::WrongType {
                expected: "an integer",
            })?
            .to_i128()?,
    };
    if v < min || v > max {
        return Err(ConvError::OutOfRange);
    }
    Ok(v)
}

/// `-?[0-9]{1,18}`, read without the general decimal parser: most integers
/// in records are written so, and 18 digits cannot overflow an `i64`.
fn plain_integer(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(i128::from(if negative { -v } else { v }))
}

fn float(text: &str) -> Result<f64, ConvError> {
    let v: f64 = text.parse().map_err(|_| ConvError::WrongType {
        expected: "a number",
    })?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ConvError::OutOfRange)
    }
}

fn i32_cell(v: i128) -> Result<Cell<'static>, ConvError> {
    match i32::try_from(v) {
        Ok(x) if x != i32::MIN => Ok(Cell::I32(x)),
        _ => Err(ConvError::OutOfRange),
    }
}

fn i64_cell(v: i128) -> Result<Cell<'static>, ConvError> {
    match i64::try_from(v) {
        Ok(x) if x != i64::MIN => Ok(Cell::I64(x)),
        _ => Err(ConvError::OutOfRange),
    }
}

/// Nanoseconds since the Unix epoch from an epoch number in `fmt`'s unit.
fn epoch_nanos(text: &str, fmt: TimeFormat) -> Result<Option<i128>, ConvError> {
    let Some(unit) = fmt.nanos_per_unit() else {
        return Ok(None);
    };
    let d = Decimal::parse(text).ok_or(ConvError::WrongType {
        expected: "a number",
    })?;
    if d.lossy {
        return Err(ConvError::OutOfRange);
    }
    d.scaled_floor(unit).map(Some)
}

/// A point in time (ns since the Unix epoch) as the column's type.
fn from_instant(t: QType, unix_ns: i128) -> Result<Cell<'static>, ConvError> {
    let kdb_ns = unix_ns - i128::from(KDB_EPOCH_NANOS);
    let day = i128::from(NANOS_PER_DAY);
    match t {
        QType::Timestamp => i64_cell(kdb_ns),
        QType::Date => i32_cell(kdb_ns.div_euclid(day)),
        QType::Month => {
            let days = i64::try_from(unix_ns.div_euclid(day)).map_err(|_| ConvError::OutOfRange)?;
            if days.abs() > 1_000_000_000 {
                return Err(ConvError::OutOfRange);
            }
            let (y, m) = time::year_month_of_days(days);
            i32_cell(i128::from((y - 2000) * 12 + i64::from(m) - 1))
        }
        QType::Datetime => {
            // q's datetime: fractional days; keep it to timestamp's range.
            i64_cell(kdb_ns)?;
            Ok(Cell::F64(kdb_ns as f64 / NANOS_PER_DAY as f64))
        }
        _ => from_time_of_day(t, kdb_ns.rem_euclid(day) as i64),
    }
}

/// Nanoseconds since midnight as a timespan, minute, second or time.
fn from_time_of_day(t: QType, ns: i64) -> Result<Cell<'static>, ConvError> {
    match t {
        QType::Timespan => Ok(Cell::I64(ns)),
        QType::Minute => Ok(Cell::I32((ns / 60_000_000_000) as i32)),
        QType::Second => Ok(Cell::I32((ns / 1_000_000_000) as i32)),
        QType::Time => Ok(Cell::I32((ns / 1_000_000) as i32)),
        _ => Err(ConvError::BadTemporal("not a time type")),
    }
}

fn from_number(t: QType, rules: Rules, text: &str) -> Result<Cell<'static>, ConvError> {
    let fmt = rules.time_format;
    match t {
        QType::Boolean => match integer(text, 0, 1) {
            Ok(v) => Ok(Cell::Bool(v == 1)),
            Err(ConvError::WrongType { .. }) => Err(wrong(t, rules)),
            Err(_) => Err(ConvError::OutOfRange),
        },
        QType::Byte => Ok(Cell::U8(integer(text, 0, 255)? as u8)),
        QType::Short => Ok(Cell::I16(
            integer(text, i128::from(i16::MIN) + 1, i128::from(i16::MAX))? as i16,
        )),
        QType::Int => Ok(Cell::I32(
            integer(text, i128::from(i32::MIN) + 1, i128::from(i32::MAX))? as i32,
        )),
        QType::Long => Ok(Cell::I64(
            integer(text, i128::from(i64::MIN) + 1, i128::from(i64::MAX))? as i64,
        )),
        QType::Real => {
            let v = float(text)?;
            let r = v as f32;
            if r.is_finite() {
                Ok(Cell::F32(r))
            } else {
                Err(ConvError::OutOfRange)
            }
        }
        QType::Float => Ok(Cell::F64(float(text)?)),
        QType::Char | QType::Symbol | QType::String | QType::Guid => Err(wrong(t, rules)),
        QType::Timestamp | QType::Datetime | QType::Month => match fmt {
            Some(f) => match epoch_nanos(text, f)? {
                Some(ns) => from_instant(t, ns),
                None => Err(wrong(t, rules)),
            },
            None => Err(wrong(t, rules)),
        },
        QType::Date => match fmt {
            Some(TimeFormat::EpochDays) => {
                i32_cell(integer(text, i128::MIN, i128::MAX)? - i128::from(KDB_EPOCH_DAYS))
            }
            Some(f) => match epoch_nanos(text, f)? {
                Some(ns) => from_instant(t, ns),
                None => Err(wrong(t, rules)),
            },
            None => Err(wrong(t, rules)),
        },
        QType::Timespan | QType::Minute | QType::Second | QType::Time => {
            match fmt.map(|f| epoch_nanos(text, f)).transpose()?.flatten() {
                Some(ns) => from_instant(t, ns),
                // A bare number counts the column's own unit.
                None => {
                    let v = integer(text, i128::MIN, i128::MAX)?;
                    if t == QType::Timespan {
                        i64_cell(v)
                    } else {
                        i32_cell(v)
                    }
                }
            }
        }
    }
}

fn non_finite(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" | "NAN" => Some(f64::NAN),
        "Infinity" | "inf" | "Inf" | "INF" | "+Infinity" | "+inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" | "-Inf" | "-INF" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// Why a symbol with a NUL at byte `at` is refused (one text for the
/// record error and for `ConvError`'s display).
pub fn nul_in_symbol(at: usize) -> String {
    format!("symbol contains NUL at byte {at}; kdb+ symbols are NUL-terminated")
}

fn from_string<'a>(t: QType, rules: Rules, s: Cow<'a, str>) -> Result<Cell<'a>, ConvError> {
    match t {
        // Refused rather than cut: the wire would carry a different symbol
        // than the record holds, silently.
        QType::Symbol => match s.bytes().position(|b| b == 0) {
            Some(at) => Err(ConvError::NulInSymbol(at)),
            None => Ok(Cell::Sym(s)),
        },
        QType::String => Ok(Cell::Bytes(match s {
            Cow::Borrowed(b) => Cow::Borrowed(b.as_bytes()),
            Cow::Owned(o) => Cow::Owned(o.into_bytes()),
        })),
        QType::Char => match s.as_bytes() {
            [c] => Ok(Cell::U8(*c)),
            _ => Err(ConvError::BadChar),
        },
        QType::Guid => parse_guid(&s).map(Cell::Guid).ok_or(ConvError::BadGuid),
        QType::Real | QType::Float => match non_finite(&s) {
            Some(_) if !rules.allow_non_finite => Err(ConvError::NonFinite),
            Some(v) if t == QType::Real => {
                Ok(Cell::F32(if v.is_nan() { null_real() } else { v as f32 }))
            }
            Some(v) => Ok(Cell::F64(if v.is_nan() { null_float() } else { v })),
            None => Err(wrong(t, rules)),
        },
        QType::Boolean | QType::Byte | QType::Short | QType::Int | QType::Long => {
            Err(wrong(t, rules))
        }
        QType::Timestamp | QType::Datetime => {
            if !time::looks_like_datetime(&s) && s.len() == 10 {
                let days = time::parse_date(&s).map_err(ConvError::BadTemporal)?;
                return from_instant(t, i128::from(days) * i128::from(NANOS_PER_DAY));
            }
            let ns = time::parse_rfc3339(&s).map_err(ConvError::BadTemporal)?;
            from_instant(t, ns)
        }
        QType::Date => {
            if s.len() == 10 {
                let days = time::parse_date(&s).map_err(ConvError::BadTemporal)?;
                return i32_cell(i128::from(days - KDB_EPOCH_DAYS));
            }
            let ns = time::parse_rfc3339(&s).map_err(ConvError::BadTemporal)?;
            from_instant(t, ns)
        }
        QType::Month => match s.len() {
            7 => i32_cell(i128::from(
                time::parse_month(&s).map_err(ConvError::BadTemporal)?,
            )),
            10 => {
                let days = time::parse_date(&s).map_err(ConvError::BadTemporal)?;
                from_instant(t, i128::from(days) * i128::from(NANOS_PER_DAY))
            }
            _ => {
                let ns = time::parse_rfc3339(&s).map_err(ConvError::BadTemporal)?;
                from_instant(t, ns)
            }
        },
        QType::Timespan | QType::Minute | QType::Second | QType::Time => {
            if time::looks_like_datetime(&s) {
                let ns = time::parse_rfc3339(&s).map_err(ConvError::BadTemporal)?;
                return from_instant(t, ns);
            }
            let ns = time::parse_time_of_day(&s).map_err(ConvError::BadTemporal)?;
            from_time_of_day(t, ns)
        }
    }
}

/// `8-4-4-4-12` hex digits (either case).
pub fn parse_guid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if b.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = (*b.get(i)? as char).to_digit(16)?;
        let lo = (*b.get(i + 1)? as char).to_digit(16)?;
        *out.get_mut(n)? = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_integers_read_as_the_decimal_parser_reads_them() {
        let general = |t: &str| Decimal::parse(t).and_then(|d| d.to_i128().ok());
        for text in [
            "0",
            "-0",
            "7",
            "-42",
            "1500",
            "007",
            "999999999999999999",
            "-999999999999999999",
            "9223372036854775807",
            "-9223372036854775808",
            "1e3",
            "1.0",
            "1.5",
            "",
            "-",
            "+1",
            "1a",
        ] {
            let fast = plain_integer(text);
            if let Some(v) = fast {
                assert_eq!(Some(v), general(text), "{text}");
            }
            assert_eq!(
                integer(text, i128::MIN, i128::MAX).ok(),
                general(text),
                "{text}"
            );
        }
        assert_eq!(plain_integer("9223372036854775807"), None, "19 digits");
    }
}
