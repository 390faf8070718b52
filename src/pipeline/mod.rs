//! One batch, start to finish (DESIGN §3–§6): transport dedupe, payload
//! keys, decoding, quarantine, ordered publishing with a confirming chaser,
//! commit of dedupe state, and the per-record outcomes behind the batch
//! response.
//!
//! I/O sits behind the small traits below so the same code runs against
//! DynamoDB / SQS / a real tickerplant and against fakes in tests.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::kdb::MsgType;
use crate::source::Record;

mod batch;
pub mod dry_run;
pub mod response;
pub mod schema_decoder;

pub(crate) use batch::{epoch_ms, ms_since};
pub use batch::{process_batch, process_batch_with_claims, replay_key};
pub use schema_decoder::SchemaDecoder;

/// How runs are sent (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// Every run is a sync `.u.upd`, so its reply says whether the
    /// tickerplant *accepted* it (a q error such as `'type` comes back as
    /// the reply). Lanes share round trips: each round writes the next run
    /// of every lane back to back and then reads the replies, so a lane
    /// never has a run in flight behind one that may be refused. The
    /// default: a record is done only once its rows were accepted.
    Sync,
    /// Sync `.u.upd` messages like `Sync`, but every run of the batch is
    /// written before any reply is read: one round trip per batch however
    /// often a lane switches tables. Acceptance is still proven run by run;
    /// the price is paid only when a run is refused: that lane's later runs
    /// may already have been accepted, and they are reported failed with it,
    /// so the retry sends them again (and after the refused one).
    Pipelined,
    /// Async `.u.upd` messages followed by a sync chaser. The chaser's
    /// reply proves the tickerplant *received* and processed the updates,
    /// not that it accepted them: an update refused with `'type` is
    /// invisible here. One round trip per batch whatever the runs per lane.
    Async,
}

/// What happens to a record that cannot be decoded (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BadRecords {
    /// Send it with its reason to the quarantine queue; the lane goes on.
    Quarantine,
    /// Cut the lane at it; the mapping's retries and destinations take over.
    Fail,
}

#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The tickerplant's update function, `.u.upd` by default.
    pub upd_func: String,
    pub publish: PublishMode,
    pub bad_records: BadRecords,
    /// Lane checkpoints (Kinesis) and message keys (SQS).
    pub transport_dedupe: bool,
    /// Replayed records are behind their lane checkpoints by definition, so
    /// replay uses per-record keys instead (DESIGN §3).
    pub replay: bool,
    /// How long completed keys are remembered (DynamoDB TTL).
    pub key_ttl: Duration,
    /// No new stage starts when less than this is left before the deadline.
    pub deadline_margin: Duration,
    /// Keys claimed per store call: a call in flight when the margin is
    /// reached ends a few request times later. Four times the store's
    /// concurrency keeps it busy.
    pub claim_chunk: usize,
    /// Async mode confirms with a chaser at least every this many bytes;
    /// sync mode ends a round of pipelined runs at about this many bytes.
    pub chase_every_bytes: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            upd_func: ".u.upd".into(),
            publish: PublishMode::Sync,
            bad_records: BadRecords::Quarantine,
            transport_dedupe: true,
            replay: false,
            key_ttl: Duration::from_secs(7 * 24 * 3600),
            deadline_margin: Duration::from_millis(1500),
            chase_every_bytes: 4 * 1024 * 1024,
            claim_chunk: 64,
        }
    }
}

/// Time limits of one invocation.
#[derive(Clone, Debug)]
pub struct BatchContext {
    pub request_id: String,
    /// Monotonic deadline for the work.
    pub deadline: Instant,
    /// Wall clock now and at the deadline, ms since the Unix epoch, for
    /// claim expiry and TTLs stored in DynamoDB.
    pub now_ms: i64,
    pub deadline_ms: i64,
}

impl BatchContext {
    /// A context with `budget` left, timed from now.
    pub fn with_budget(request_id: impl Into<String>, budget: Duration) -> BatchContext {
        let now_ms = now_ms();
        BatchContext {
            request_id: request_id.into(),
            deadline: Instant::now() + budget,
            now_ms,
            deadline_ms: now_ms + budget.as_millis() as i64,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

pub use crate::clock::now_ms;

/// One encoded `.u.upd` message and the records whose rows it carries.
#[derive(Clone, Debug)]
pub struct EncodedRun {
    pub table: String,
    pub rows: usize,
    /// Indices into the batch; a record is confirmed when every run that
    /// carries its rows is confirmed.
    pub records: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// Decoded rows of one lane, grouped into runs of one table.
pub trait LaneRows {
    /// Why one record cannot be decoded: permanent, and about that record
    /// alone (its text names table, column and value).
    type Error: std::fmt::Display;
    /// Decodes `record` (batch index `index`) and appends its rows, all or
    /// nothing; returns its payload key when its table defines one and
    /// payload keys are on.
    fn push(&mut self, index: usize, record: &Record) -> Result<Option<String>, Self::Error>;
    /// The runs in order, each encoded as one whole IPC message.
    fn encode(&self, func: &str, msg_type: MsgType) -> Vec<EncodedRun>;
}

/// Schema-driven decoding, compiled once per process.
pub trait Decoder: Sync {
    type Lane: LaneRows;
    fn lane(&self) -> Self::Lane;
    /// Whether any table defines payload keys (saves a parse when none do).
    fn has_payload_keys(&self) -> bool;
    /// The record's payload idempotency key, if its table defines one.
    fn payload_key(
        &self,
        record: &Record,
    ) -> Result<Option<String>, <Self::Lane as LaneRows>::Error>;
}

/// What an unsent or unconfirmed update failed on, shared so that one
/// failure can stand for every run behind it.
pub type LinkCause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Why the link did not carry an update. Variants that wrap an error keep
/// it as their `source()` and do not repeat it in their own text;
/// [`LinkError::reason`] gives both on one line.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LinkError {
    /// The tickerplant answered with a q error (`'type`, unknown table).
    #[error("tickerplant error '{0}")]
    Remote(String),
    /// Not connected, timed out, or the connection broke.
    #[error("tickerplant unavailable")]
    Unavailable(#[source] LinkCause),
    /// The tickerplant's tables or update function differ from the schemas
    /// (preflight): nothing is sent until that is fixed.
    #[error("tickerplant does not match the schemas: {0}")]
    Mismatch(String),
    /// The message was not sent because it is malformed here (a bug, not
    /// the tickerplant's state): only the lane that owns it stops.
    #[error("update not sent")]
    Local(#[source] LinkCause),
}

impl LinkError {
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> LinkError {
        LinkError::Unavailable(cause.into().into())
    }

    pub fn local(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> LinkError {
        LinkError::Local(cause.into().into())
    }

    /// The error and its causes on one line, e.g. `tickerplant
    /// unavailable: i/o: connection refused`: the reason a record is left
    /// pending, and what logs show.
    pub fn reason(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// The tickerplant connection as the pipeline needs it.
pub trait TickerplantLink: Send {
    /// Connects (or reconnects) unless connected, giving up at `until`.
    fn ensure_connected(
        &mut self,
        until: Instant,
    ) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Writes a whole async message.
    fn send_async(&mut self, msg: &[u8]) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Writes a whole sync message and waits for its reply.
    fn send_sync(&mut self, msg: &[u8]) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// A sync round trip proving everything sent before it was processed.
    fn chase(&mut self) -> impl Future<Output = Result<(), LinkError>> + Send;
    /// Writes whole sync messages and then reads their replies, one result
    /// per message in order. Implementations pipeline them (one round trip
    /// in all); this default sends them one by one. After an `Unavailable`
    /// error nothing more is sent and the rest fail the same way.
    fn send_sync_all(
        &mut self,
        msgs: &[&[u8]],
    ) -> impl Future<Output = Vec<Result<(), LinkError>>> + Send
    where
        Self: Sized,
    {
        async move {
            let mut out = Vec::with_capacity(msgs.len());
            let mut down: Option<LinkError> = None;
            for msg in msgs {
                let r = match &down {
                    Some(e) => Err(e.clone()),
                    None => self.send_sync(msg).await,
                };
                if let Err(e @ LinkError::Unavailable(_)) = &r {
                    down = Some(e.clone());
                }
                out.push(r);
            }
            out
        }
    }
}

/// A bad record, with what an operator needs to find and re-drive it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct QuarantineItem {
    pub source_arn: String,
    pub lane: String,
    pub position: String,
    pub failure_id: String,
    pub reason: String,
    /// The raw payload, base64.
    pub payload: String,
}

/// Why a bad record did not reach the quarantine: for the pipeline a
/// transient failure (the record's lane is cut and retried, nothing lost).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuarantineError {
    /// The quarantine message could not be built from the record.
    #[error("quarantine message not built: {0}")]
    Build(String),
    /// The queue did not take it (unreachable, throttled, refused).
    #[error("quarantine queue did not take it: {0}")]
    Send(String),
}

pub trait QuarantineSink: Sync {
    /// Sends the items; one result per item, in order.
    fn send(
        &self,
        items: &[QuarantineItem],
    ) -> impl Future<Output = Vec<Result<(), QuarantineError>>> + Send;
}

/// Claim checks (DESIGN §2): the S3 object a pointer record names,
/// fetched after transport dedupe and before decoding. A trait so the
/// pipeline runs with fakes in tests; `s3::claim_check` is the real one.
pub trait ClaimCheck: Sync {
    /// The object's bytes. An error is permanent (the record is bad) or
    /// transient (its lane is cut and retried), as `S3Error::is_transient`.
    fn fetch(
        &self,
        pointer: &crate::s3::Pointer,
    ) -> impl Future<Output = Result<Vec<u8>, crate::s3::S3Error>> + Send;
    /// The objects of pointer records now forwarded and committed (for
    /// deleting them, when a setting says so).
    fn committed(&self, pointers: &[crate::s3::Pointer]) -> impl Future<Output = ()> + Send;
    /// Fetches in flight at once.
    fn concurrency(&self) -> usize {
        4
    }
}

/// No S3 access: a pointer record is a bad record saying so.
pub struct NoClaimCheck;

impl ClaimCheck for NoClaimCheck {
    async fn fetch(&self, pointer: &crate::s3::Pointer) -> Result<Vec<u8>, crate::s3::S3Error> {
        Err(crate::s3::S3Error::new(
            &pointer.object,
            crate::s3::ErrorKind::Refused,
            "a claim-check pointer, and this pipeline has no S3 client",
        ))
    }

    async fn committed(&self, _pointers: &[crate::s3::Pointer]) {}
}

/// What one batch did: the invocation summary's facts.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Summary {
    pub request_id: String,
    pub records: usize,
    pub lanes: usize,
    pub forwarded: usize,
    pub duplicates: usize,
    pub quarantined: usize,
    pub failed: usize,
    pub rows_per_table: BTreeMap<String, usize>,
    pub messages_sent: usize,
    pub bytes_sent: usize,
    /// Updates the tickerplant refused with a q error (sync mode sees them).
    pub refused_updates: usize,
    /// Pipelined mode: updates accepted after an earlier one of their lane
    /// was refused (they will be sent again).
    pub accepted_behind_refusal: usize,
    pub dedupe_requests: u64,
    pub stage_ms: StageTimes,
    /// The bridge's whole time on the batch, ms: `App::handle` from the
    /// event's bytes (parse included), `App::handle_records` from records
    /// already read (runner, replay). Beside Lambda's billed duration it
    /// tells the bridge's time from the runtime's (receiving the event,
    /// posting the answer).
    pub handler_ms: f64,
    /// When each stage began, epoch milliseconds (0: it did not run), so
    /// a stage can be placed in time (X-Ray subsegments).
    pub stage_start_ms: StageTimes,
    /// Up to a few failure reasons, `position: reason`.
    pub failure_reasons: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StageTimes {
    /// Reading the event's records from its bytes (`App::handle`; 0 when
    /// the records came already read, from the runner or replay).
    pub parse: f64,
    pub dedupe: f64,
    pub decode: f64,
    pub quarantine: f64,
    pub publish: f64,
    pub commit: f64,
}

/// The per-record result of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordState {
    Forwarded,
    Duplicate,
    Quarantined {
        reason: String,
    },
    /// Must be redelivered; the reason is logged.
    Pending {
        reason: String,
    },
}

impl RecordState {
    pub fn is_done(&self) -> bool {
        !matches!(self, RecordState::Pending { .. })
    }
}

#[derive(Clone, Debug)]
pub struct BatchResult {
    pub states: Vec<RecordState>,
    pub summary: Summary,
}

#[cfg(test)]
mod tests;
