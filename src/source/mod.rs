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
    /// Shared by every record of the batch from one source (and `lane` by
    /// every record of one lane): one allocation each, not one per record.
    pub source_arn: std::sync::Arc<str>,
    /// The unit of ordering: a shard (or shard + partition key), or a FIFO
    /// message group. Records of one lane are in order within the batch.
    pub lane: std::sync::Arc<str>,
    /// Kinesis sequence number; for SQS FIFO the queue's `SequenceNumber`
    /// attribute when present, else empty.
    pub position: std::sync::Arc<str>,
    /// What the batch response names: the sequence number (Kinesis) or the
    /// message id (SQS). A Kinesis record's is its `position`, the same
    /// allocation (one per record instead of two).
    pub failure_id: std::sync::Arc<str>,
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
    /// Boxed, as `sub` is: a batch's records are walked by every stage,
    /// and fields most records leave empty should not widen them.
    pub pointer_attribute: Option<Box<(&'static str, Option<String>)>>,
    /// Kinesis only: the user record's place in the KPL aggregate it came
    /// from; `None` for a plain record (DESIGN §2).
    pub sub: Option<Box<Sub>>,
    /// Kinesis only: why a record that starts with the KPL magic was read
    /// as plain; shown with its decode error, if it has one.
    pub kpl_note: Option<String>,
}

/// A user record of a KPL aggregate: its position is (`position`,
/// `index`). `position` and `failure_id` stay the aggregate's sequence
/// number, the only thing Lambda can name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sub {
    /// The subsequence number (index in the aggregate).
    pub index: u32,
    /// The aggregate's last user record: once it is done, the whole Kinesis
    /// record is, and the checkpoint can be the bare sequence number.
    pub last: bool,
    /// The user record's own partition key (lanes keep the aggregate's:
    /// Lambda orders by that one).
    pub partition_key: String,
}

impl Record {
    /// The position as logs, quarantine messages and checkpoints show it:
    /// `seq` for a plain record, `seq:sub` for a user record of an
    /// aggregate (its sub-records share the sequence number).
    pub fn position_text(&self) -> std::borrow::Cow<'_, str> {
        match &self.sub {
            None => std::borrow::Cow::Borrowed(&self.position),
            Some(s) => std::borrow::Cow::Owned(format!("{}:{}", self.position, s.index)),
        }
    }

    /// Where the record sits in its shard, for lane checkpoints.
    pub fn shard_position(&self) -> seqno::Position<'_> {
        seqno::Position::new(&self.position, self.sub.as_ref().map(|s| s.index))
    }

    /// The lane checkpoint once this record and all before it are done:
    /// the bare sequence number unless user records of its aggregate are
    /// still to come.
    pub fn checkpoint_after(&self) -> seqno::Position<'_> {
        let partway = self.sub.as_ref().filter(|s| !s.last).map(|s| s.index);
        seqno::Position::new(&self.position, partway)
    }
}

/// `text` as a shared string: `prev` (the previous record's) when it says
/// the same, as it mostly does (a batch's records share their source, and
/// mostly their lane), else a new one.
pub(crate) fn shared(prev: Option<&std::sync::Arc<str>>, text: &str) -> std::sync::Arc<str> {
    match prev {
        Some(p) if crate::bytes_eq::str_eq(p, text) => p.clone(),
        _ => text.into(),
    }
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
    let mut index: rustc_hash::FxHashMap<&str, usize> = rustc_hash::FxHashMap::default();
    let mut last: Option<(&std::sync::Arc<str>, usize)> = None;
    for (i, r) in records.iter().enumerate() {
        // Records of a lane mostly come together (a Kinesis batch is one
        // shard), and mostly share its text: the previous record's lane is
        // tried before the map, its pointer before its text.
        if let Some((lane, l)) = last {
            if std::sync::Arc::ptr_eq(lane, &r.lane) || **lane == *r.lane {
                out[l].records.push(i);
                continue;
            }
        }
        let found = index.get(&*r.lane).copied();
        last = Some((&r.lane, found.unwrap_or(out.len())));
        match found {
            Some(l) => out[l].records.push(i),
            None => {
                index.insert(&r.lane, out.len());
                out.push(Lane {
                    id: r.lane.to_string(),
                    records: vec![i],
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// Every stage walks the batch's records: fields most records leave
    /// empty are boxed so they do not widen them (248 bytes before).
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn records_stay_narrow() {
        assert!(std::mem::size_of::<super::Record>() <= 192);
    }
}
