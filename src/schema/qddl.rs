//! The q schema file for tick.q: one empty table per line, e.g.
//! ``trade:([]time:`timespan$();sym:`g#`symbol$();price:`float$())``.
//!
//! A symbol column named `sym` gets the grouped attribute, as tick's
//! `sym.q` files do; string columns are untyped `()`; key columns go in the
//! brackets, in the order `key` lists them, ahead of the other columns.

use super::catalog::Catalog;
use super::model::{ColumnSpec, QType, Schema};

fn empty_column(c: &ColumnSpec) -> String {
    match c.qtype {
        QType::String => "()".to_string(),
        QType::Symbol if c.name == "sym" => "`g#`symbol$()".to_string(),
        t => format!("`{}$()", t.name()),
    }
}

fn columns<'a>(cols: impl Iterator<Item = &'a ColumnSpec>) -> String {
    cols.map(|c| format!("{}:{}", c.name, empty_column(c)))
        .collect::<Vec<_>>()
        .join(";")
}

/// One table's line (without the newline).
pub fn q_table(schema: &Schema) -> String {
    let keys = schema
        .key
        .iter()
        .filter_map(|k| schema.columns.iter().find(|c| &c.name == k));
    let rest = schema
        .columns
        .iter()
        .filter(|c| !schema.key.contains(&c.name));
    format!("{}:([{}]{})", schema.table, columns(keys), columns(rest))
}

impl Catalog {
    /// The whole q schema file: every table, in catalog (file name) order.
    pub fn q_script(&self) -> String {
        self.tables
            .iter()
            .map(|t| q_table(t.schema()) + "\n")
            .collect()
    }
}
