//! Records from the event sources, the lanes that order them, and the
//! partial-batch responses that tell Lambda what to retry.

pub mod event;
pub mod kinesis;
pub mod kpl;
pub mod on_failure;
pub mod seqno;
pub mod sqs;

/// How records are read from the sources (bridge settings).
#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// With `ParallelizationFactor` > 1 Lambda keeps order per partition key
    /// only, so lanes become shard + partition key.
    pub lanes_by_partition_key: bool,
    /// SQS bodies carry base64 (binary producers).
    pub sqs_body_base64: bool,
}

/// A source record the batch response could not name: the whole batch is
/// retried (a record merely bad inside is a `Record` with a `defect`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceRecordError {
    #[error("bad sequence number {0:?}")]
    BadSequence(String),
    #[error("no shard id")]
    NoShard,
    #[error("no messageId")]
    NoMessageId,
}

/// Where a batch came from; it decides lanes and the response's identifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Kinesis,
    SqsFifo,
}

/// One record of a batch, whatever its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub kind: SourceKind,
    pub source_arn: String,
    /// The unit of ordering: a shard (or shard + partition key), or a FIFO
    /// message group. Records of one lane are in order within the batch.
    pub lane: String,
    /// Kinesis sequence number; for SQS FIFO the queue's `SequenceNumber`
    /// attribute when present, else empty.
    pub position: String,
    /// What the batch response names: the sequence number (Kinesis) or the
    /// message id (SQS).
    pub failure_id: String,
    /// A per-record transport key for dedupe where lane checkpoints do not
    /// apply: the SQS message key, or `shard#sequence` for replayed Kinesis.
    pub message_key: Option<String>,
    pub payload: Vec<u8>,
    /// Arrival time at the source, ms since the Unix epoch (0 if unknown).
    pub arrival_ms: i64,
    /// Known bad before decoding (e.g. invalid base64): the reason.
    pub defect: Option<String>,
    /// SQS only: the claim-check size attribute the message carries
    /// (`ExtendedPayloadSize`, else the legacy `SQSLargePayloadSize`) and
    /// its value. It marks the body as an S3 pointer (`s3::pointer`).
    pub pointer_attribute: Option<(&'static str, Option<String>)>,
}

/// A lane and the indices (into the batch) of its records, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lane {
    pub id: String,
    pub records: Vec<usize>,
}

/// Groups a batch into lanes, each keeping the batch's order; lanes are
/// listed in the order their first record appears.
pub fn lanes(records: &[Record]) -> Vec<Lane> {
    let mut out: Vec<Lane> = Vec::new();
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, r) in records.iter().enumerate() {
        match index.get(r.lane.as_str()) {
            Some(&l) => out[l].records.push(i),
            None => {
                index.insert(&r.lane, out.len());
                out.push(Lane {
                    id: r.lane.clone(),
                    records: vec![i],
                });
            }
        }
    }
    out
}
