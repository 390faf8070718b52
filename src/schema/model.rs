//! The schema file model. One file describes one table.

use std::path::Path;

use serde::Deserialize;

use crate::kdb::types;

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
}

/// A column's q type. `String` is a list of char vectors (q's `()`), the
/// usual shape for free text; `Char` is one character per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: QType,
    /// JSON pointer (`/a/b`) or dotted path (`a.b`); defaults to the name.
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Schema {
    pub table: String,
    pub columns: Vec<ColumnSpec>,
}

/// Loads every `*.json` schema file in `dir` (skipping the JSON Schema
/// meta-file `*.schema.json`), sorted by file name.
pub fn load_dir(dir: &Path) -> Result<Vec<Schema>, SchemaError> {
    let err = |path: &Path, reason: String| SchemaError::File {
        path: path.display().to_string(),
        reason,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| err(dir, e.to_string()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p.to_string_lossy().ends_with(".schema.json")
        })
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| err(p, e.to_string()))?;
            serde_json::from_str(&text).map_err(|e| err(p, e.to_string()))
        })
        .collect()
}
