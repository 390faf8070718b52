//! Why a replay, or one source message of it, could not go on. Each text
//! names the thing and the reason; it ends up in the replay report, which
//! prints only `Display`, so causes are spelled in it (and not repeated
//! through `source()`).

use std::path::PathBuf;

use crate::source::event::EventError;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A file of captured events could not be opened or read.
    #[error("cannot {action} {}: {error}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    /// A captured event that is not a Kinesis or SQS event.
    #[error(transparent)]
    Event(#[from] EventError),
    /// An SQS call failed.
    #[error(transparent)]
    Queue(#[from] crate::aws::sqs::SqsError),
    /// A Kinesis call failed.
    #[error("{op}: {reason}")]
    Kinesis { op: &'static str, reason: String },
    /// A Kinesis range cannot be read whole: past the stream's retention,
    /// trimmed, or the shard ends before it.
    #[error("{0}")]
    Range(String),
    /// An on-failure message whose body holds no usable `KinesisBatchInfo`.
    #[error(transparent)]
    OnFailure(#[from] crate::source::on_failure::OnFailureError),
    /// A held message became visible again, so later messages of its group
    /// could overtake it.
    #[error("message {id} came back while held (its visibility timeout lapsed); stopped so its group keeps its order: run replay again")]
    CameBack { id: String },
    /// `--key-from` named no known place.
    #[error("{0:?} is not auto, message-id or dedup-id")]
    KeyFrom(String),
}
