//! Schema files (`schemas/*.json`): the contract between the stream and the
//! tickerplant, and decoding records into typed kdb+ columns.
//!
//! Use: compile once with [`Catalog::load`] (or [`Catalog::from_schemas`]),
//! then per batch feed each record to [`Catalog::decode_record`] with one
//! [`BatchBuilder`], and send each of [`BatchBuilder::runs`] with
//! [`BatchBuilder::encode_run`]. A record that fails to decode leaves the
//! builder as it was and returns a [`RecordError`] naming table, column,
//! field and value.
//!
//! Time column convention (tick.q): a first column `time` of type timespan
//! marked `"stamp": "tickerplant"` is not sent; tick.q's `.u.upd` stamps it
//! when the first column of an update is not a timespan. Without the mark
//! the column is decoded from the record like any other.

pub mod batch;
pub mod catalog;
pub mod convert;
pub mod csv;
pub mod decode;
pub mod embedded;
pub mod error;
pub mod json;
pub mod model;
pub mod path;
pub mod qddl;
pub mod tickq;
pub mod time;

pub use batch::{BatchBuilder, RecordRows, Run};
pub use catalog::{Catalog, CatalogError, Issue, Limits, Table};
pub use error::{At, RecordError};
pub use model::{load_dir, ColumnSpec, QType, Schema, SchemaError};
pub use tickq::{tick_q_issues, Target};
