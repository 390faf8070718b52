//! The schema file model: what one `schemas/<table>.json` file says, as
//! written. Nothing here checks meaning; `catalog` compiles and validates.
//!
//! The JSON Schema for these files is `schemas/tickbridge.schema.json`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kdb::types;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// A column's q type. `String` is a list of char vectors (q's `()`), the
/// usual shape for free text; `Char` is one character per row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QType {
    Boolean,
    Guid,
    Byte,
    Short,
    Int,
    Long,
    Real,
    Float,
    Char,
    #[default]
    Symbol,
    Timestamp,
    Month,
    Date,
    Datetime,
    Timespan,
    Minute,
    Second,
    Time,
    String,
}

impl QType {
    /// Every type, in type-code order (`String` last).
    pub const ALL: [QType; 19] = [
        QType::Boolean,
        QType::Guid,
        QType::Byte,
        QType::Short,
        QType::Int,
        QType::Long,
        QType::Real,
        QType::Float,
        QType::Char,
        QType::Symbol,
        QType::Timestamp,
        QType::Month,
        QType::Date,
        QType::Datetime,
        QType::Timespan,
        QType::Minute,
        QType::Second,
        QType::Time,
        QType::String,
    ];

    /// The kdb+ type code of the column vector (0 for a list of strings).
    pub fn type_code(self) -> i8 {
        match self {
            QType::Boolean => types::BOOL,
            QType::Guid => types::GUID,
            QType::Byte => types::BYTE,
            QType::Short => types::SHORT,
            QType::Int => types::INT,
            QType::Long => types::LONG,
            QType::Real => types::REAL,
            QType::Float => types::FLOAT,
            QType::Char => types::CHAR,
            QType::Symbol => types::SYMBOL,
            QType::Timestamp => types::TIMESTAMP,
            QType::Month => types::MONTH,
            QType::Date => types::DATE,
            QType::Datetime => types::DATETIME,
            QType::Timespan => types::TIMESPAN,
            QType::Minute => types::MINUTE,
            QType::Second => types::SECOND,
            QType::Time => types::TIME,
            QType::String => types::MIXED,
        }
    }

    /// The name as schema files and q casts spell it (`` `long$() ``).
    pub fn name(self) -> &'static str {
        match self {
            QType::String => "string",
            t => types::type_name(t.type_code()),
        }
    }

    /// The type letter `meta` shows for a column of this type (q's `.Q.t`;
    /// `C` for a list of strings, as `meta` shows a non-empty one).
    pub fn meta_char(self) -> char {
        match self {
            QType::String => 'C',
            t => type_char(t.type_code()).unwrap_or(' '),
        }
    }

    /// Types whose values are points or spans in time.
    pub fn is_temporal(self) -> bool {
        matches!(
            self,
            QType::Timestamp
                | QType::Month
                | QType::Date
                | QType::Datetime
                | QType::Timespan
                | QType::Minute
                | QType::Second
                | QType::Time
        )
    }

    /// Boolean and byte have no null in q: a missing value needs a default.
    pub fn has_null(self) -> bool {
        !matches!(self, QType::Boolean | QType::Byte)
    }
}

/// q's `.Q.t`: the letter of a simple type code (1..=19 but 3), `' '` for
/// the general list (0); `None` for anything else.
pub fn type_char(code: i8) -> Option<char> {
    const Q_T: &[u8; 20] = b" bg xhijefcspmdznuvt";
    let c = *Q_T.get(usize::try_from(code).ok()?)?;
    (code == 0 || c != b' ').then_some(c as char)
}

/// How numbers in a temporal column are read, and strings in a timestamp
/// column. Strings are always read as RFC 3339 / ISO forms; this setting
/// says what a JSON number means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Strings only (the default): numbers are rejected for point-in-time types.
    Rfc3339,
    EpochS,
    EpochMs,
    EpochUs,
    EpochNs,
    /// Days since 1970-01-01 (date columns only).
    EpochDays,
}

impl TimeFormat {
    /// Nanoseconds per unit of an epoch number (`None` for `rfc3339`, `epoch_days`).
    pub fn nanos_per_unit(self) -> Option<i64> {
        match self {
            TimeFormat::EpochS => Some(1_000_000_000),
            TimeFormat::EpochMs => Some(1_000_000),
            TimeFormat::EpochUs => Some(1_000),
            TimeFormat::EpochNs => Some(1),
            TimeFormat::Rfc3339 | TimeFormat::EpochDays => None,
        }
    }
}

/// Who fills a column instead of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stamp {
    /// tick.q's `.u.upd` stamps a leading timespan column when the update
    /// does not carry one, so the bridge leaves this column out.
    Tickerplant,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: QType,
    /// JSON pointer (`/a/b`) or dotted path (`a.b`) into a JSON record, or a
    /// header name for delimited text; defaults to the column name.
    #[serde(default)]
    pub source: Option<String>,
    /// A missing field (or JSON `null`) becomes the q typed null.
    #[serde(default)]
    pub nullable: bool,
    /// Used when the field is missing; converted like a record value.
    #[serde(default)]
    pub default: Option<serde_json::Value>,
    /// Temporal columns only: what a JSON number means.
    #[serde(default)]
    pub time_format: Option<TimeFormat>,
    /// Real and float columns: accept `"NaN"`, `"Infinity"`, `"-Infinity"`
    /// (NaN becomes q's null `0n`, the infinities `0w`/`-0w`).
    #[serde(default)]
    pub allow_non_finite: bool,
    /// Filled outside the bridge (only `tickerplant`, on a leading timespan).
    #[serde(default)]
    pub stamp: Option<Stamp>,
    /// CSV objects: the header name of this column's field. Default: the
    /// column's name if the header has it, else the last segment of
    /// `source`.
    #[serde(default)]
    pub csv: Option<String>,
}

/// Which records a table takes. Every given condition must hold; a table
/// with `default: true` takes records no other table took.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The record's source stream or queue name (given by the caller).
    #[serde(default)]
    pub source: Option<String>,
    /// A field (pointer or dotted path) whose string value must equal `equals`.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub default: bool,
}

/// Delimited text payloads (`sym spot strike time rate vol` lines).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Delimited {
    /// One ASCII character; `" "` means runs of blanks (spaces or tabs).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Field names in line order; column `source`s name these.
    pub header: Vec<String>,
}

fn default_separator() -> String {
    " ".into()
}

/// CSV objects (S3 ingestion): RFC 4180 text with a header line first.
/// Columns find their fields by header name (see [`ColumnSpec::csv`]).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Csv {
    /// One ASCII character; default `,`.
    #[serde(default = "default_csv_separator")]
    pub separator: String,
}

fn default_csv_separator() -> String {
    ",".into()
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub table: String,
    pub columns: Vec<ColumnSpec>,
    /// Key columns, for keyed tables downstream (`schema q` prints them keyed).
    #[serde(default)]
    pub key: Vec<String>,
    #[serde(default)]
    pub route: Option<Route>,
    /// Fields (pointers or dotted paths) that together form the record's
    /// business id, for payload-level deduplication.
    #[serde(default)]
    pub payload_key: Vec<String>,
    #[serde(default)]
    pub delimited: Option<Delimited>,
    /// This table takes CSV objects, mapped by header name.
    #[serde(default)]
    pub csv: Option<Csv>,
    /// Free text for people; ignored.
    #[serde(default)]
    pub description: Option<String>,
}

/// Loads every `*.json` schema file in `dir` (skipping the JSON Schema
/// meta-file `*.schema.json`), sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Schema>, SchemaError> {
    Ok(load_dir_with_paths(dir)?
        .into_iter()
        .map(|(_, s)| s)
        .collect())
}

/// The schema files of `dir` in name order (see [`load_dir`]).
pub fn schema_files(dir: &Path) -> Result<Vec<PathBuf>, SchemaError> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| file_err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".schema.json")
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Parses one schema file.
pub fn load_file(path: &Path) -> Result<Schema, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|e| file_err(path, e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| file_err(path, e.to_string()))
}

/// Like [`load_dir`], keeping each schema's file path for messages.
pub fn load_dir_with_paths(dir: &Path) -> Result<Vec<(PathBuf, Schema)>, SchemaError> {
    schema_files(dir)?
        .into_iter()
        .map(|p| load_file(&p).map(|s| (p, s)))
        .collect()
}

fn file_err(path: &Path, reason: String) -> SchemaError {
    SchemaError::File {
        path: path.display().to_string(),
        reason,
    }
}
