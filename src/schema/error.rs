//! Why one record could not be decoded. Every variant is a permanent error
//! for that record (DESIGN §6): the batch goes on with the next record.

use std::fmt;

/// Where in the schema and the record a value failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub table: String,
    pub column: String,
    /// The source field (pointer, dotted path or header name).
    pub field: String,
    /// The row within a multi-row record (array element or text line), from 0.
    pub row: Option<usize>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "table {}, column {}, field {}",
            self.table, self.column, self.field
        )?;
        if let Some(r) = self.row {
            write!(f, ", row {r}")?;
        }
        Ok(())
    }
}

/// The longest slice of offending input an error message repeats.
pub const VALUE_SHOWN: usize = 64;

/// `s` cut to about [`VALUE_SHOWN`] characters, marked when cut.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(VALUE_SHOWN) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or(s)),
        None => s.to_string(),
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("record is not valid UTF-8 (bad byte at offset {offset})")]
    BadUtf8 { offset: usize },
    #[error("record is not valid JSON: {reason} at byte {offset}")]
    BadJson { offset: usize, reason: &'static str },
    #[error("record nests deeper than {limit} levels (at byte {offset})")]
    TooDeep { offset: usize, limit: usize },
    #[error("record of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("record is a JSON {found}; expected an object or an array of objects")]
    NotRecord { found: &'static str },
    #[error("no table for record ({detail})")]
    NoTable { detail: String },
    #[error("rows of one record go to different tables ({first} and {other}, row {row})")]
    MixedTables {
        first: String,
        other: String,
        row: usize,
    },
    #[error("{at}: required field is missing")]
    MissingField { at: Box<At> },
    #[error("{at}: expected {expected}, got {value}")]
    WrongType {
        at: Box<At>,
        expected: &'static str,
        value: String,
    },
    #[error("{at}: {value} is not a whole number ({qtype} column)")]
    NotIntegral {
        at: Box<At>,
        qtype: &'static str,
        value: String,
    },
    #[error("{at}: {value} is out of range for {qtype}")]
    OutOfRange {
        at: Box<At>,
        qtype: &'static str,
        value: String,
    },
    #[error("{at}: non-finite number {value} is not allowed (set allow_non_finite)")]
    NonFinite { at: Box<At>, value: String },
    #[error("{at}: bad {qtype} {value}: {reason}")]
    BadTemporal {
        at: Box<At>,
        qtype: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{at}: bad GUID {value} (expected 8-4-4-4-12 hex digits)")]
    BadGuid { at: Box<At>, value: String },
    #[error("{at}: char column needs exactly one byte, got {value}")]
    BadChar { at: Box<At>, value: String },
    /// kdb+ cannot carry the value exactly (e.g. a NUL in a symbol);
    /// `reason` says why.
    #[error("{at}: {value} cannot be sent to kdb+: {reason}")]
    Unrepresentable {
        at: Box<At>,
        value: String,
        reason: String,
    },
    #[error("table {table}, line {line}: {reason}")]
    BadDelimited {
        table: String,
        line: usize,
        reason: String,
    },
    #[error("table {table}: payload key field {field} is missing or not a scalar")]
    MissingKey { table: String, field: String },
}
