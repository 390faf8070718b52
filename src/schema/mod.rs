//! Schema files (`schemas/*.json`): the contract between the stream and the
//! tickerplant, and decoding JSON records into typed kdb+ columns.

pub mod model;

pub use model::{load_dir, ColumnSpec, QType, Schema, SchemaError};
