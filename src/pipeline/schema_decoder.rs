//! The pipeline's decoder over the schema catalog: one `BatchBuilder` per
//! lane, so each lane's runs keep its order and symbols are interned per
//! batch.

use std::cell::RefCell;
use std::sync::Arc;

use super::{Decoder, EncodedRun, LaneRows};
use crate::kdb::MsgType;
use crate::schema::{BatchBuilder, Catalog, RecordError};
use crate::source::Record;

#[derive(Clone)]
pub struct SchemaDecoder {
    catalog: Arc<Catalog>,
    payload_keys: bool,
}

impl SchemaDecoder {
    /// `payload_keys = false` turns payload-level dedupe off even where
    /// schemas define keys (one setting, for cost control).
    pub fn new(catalog: Arc<Catalog>, payload_keys: bool) -> SchemaDecoder {
        let defined = catalog
            .tables()
            .iter()
            .any(|t| !t.schema().payload_key.is_empty());
        SchemaDecoder {
            catalog,
            payload_keys: payload_keys && defined,
        }
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}

/// The stream or queue name routes match on: the last part of the ARN
/// (`…:stream/trades` → `trades`, `…:trades.fifo` → `trades.fifo`).
pub fn source_name(arn: &str) -> &str {
    arn.rsplit([':', '/']).next().unwrap_or(arn)
}

pub struct SchemaLane {
    catalog: Arc<Catalog>,
    payload_keys: bool,
    builder: BatchBuilder,
    /// The last record's source ARN and its [`source_name`].
    source: (String, String),
    /// Batch indices of the records in each run of `builder`.
    run_records: Vec<Vec<usize>>,
}

impl LaneRows for SchemaLane {
    type Error = RecordError;

    fn push(&mut self, index: usize, record: &Record) -> Result<Option<String>, RecordError> {
        // A lane's records share their source: its name is found once.
        if !crate::bytes_eq::str_eq(&self.source.0, &record.source_arn) {
            self.source = (
                record.source_arn.to_string(),
                source_name(&record.source_arn).to_string(),
            );
        }
        let rows =
            self.catalog
                .decode_record(&record.payload, &self.source.1, &mut self.builder)?;
        if self.run_records.len() <= rows.run {
            self.run_records.resize_with(rows.run + 1, Vec::new);
        }
        self.run_records[rows.run].push(index);
        Ok(rows.key.filter(|_| self.payload_keys))
    }

    fn encode(&self, func: &str, msg_type: MsgType) -> Vec<EncodedRun> {
        self.builder
            .runs()
            .iter()
            .enumerate()
            .map(|(i, run)| {
                let mut bytes = Vec::new();
                self.builder.encode_run(i, func, msg_type, &mut bytes);
                EncodedRun {
                    table: run.name.clone(),
                    rows: run.rows,
                    records: self.run_records.get(i).cloned().unwrap_or_default(),
                    bytes,
                }
            })
            .collect()
    }
}

impl Decoder for SchemaDecoder {
    type Lane = SchemaLane;

    fn lane(&self) -> SchemaLane {
        SchemaLane {
            catalog: self.catalog.clone(),
            payload_keys: self.payload_keys,
            builder: BatchBuilder::new(),
            source: (String::new(), source_name("").to_string()),
            run_records: Vec::new(),
        }
    }

    fn has_payload_keys(&self) -> bool {
        self.payload_keys
    }

    /// Decodes into a scratch batch to read the key, for callers that want
    /// the key alone (replay's dry run); the pipeline takes keys from its
    /// own decode. The scratch batch is kept per thread so its buffers are
    /// not allocated again per record.
    fn payload_key(&self, record: &Record) -> Result<Option<String>, RecordError> {
        thread_local! {
            static SCRATCH: RefCell<BatchBuilder> = RefCell::new(BatchBuilder::new());
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.reset();
            self.catalog
                .decode_record(
                    &record.payload,
                    source_name(&record.source_arn),
                    &mut scratch,
                )
                .map(|rows| rows.key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_names_come_from_arns() {
        assert_eq!(
            source_name("arn:aws:kinesis:us-east-1:1:stream/trades"),
            "trades"
        );
        assert_eq!(
            source_name("arn:aws:sqs:us-east-1:1:trades.fifo"),
            "trades.fifo"
        );
        assert_eq!(source_name("plain"), "plain");
    }
}
