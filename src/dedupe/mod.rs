//! Idempotency state (DESIGN §3): lane checkpoints for Kinesis and
//! per-message / payload keys, behind one trait so the pipeline runs on
//! DynamoDB in production and in memory locally and in tests.

use std::future::Future;
use std::time::{Duration, Instant};

mod claim_log;
pub mod dynamodb;
mod generation;
mod key_table;
pub mod memory;
mod read_only;

pub use read_only::ReadOnly;

/// Keys given back in one request: DynamoDB's `TransactWriteItems` limit.
pub const RELEASE_CHUNK: usize = 100;

/// How long before our claims expire releasing them stops: more than the
/// clock skew between two Lambda hosts (milliseconds with Amazon Time
/// Sync). The store also checks the claim is ours; this keeps the release
/// from racing its own expiry.
pub const RELEASE_BEFORE_EXPIRY: Duration = Duration::from_millis(250);

/// A store call cut off at `until`; its writes may or may not have landed.
pub async fn bounded<T>(
    until: Instant,
    call: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout_at(until.into(), call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Transient(
                "deadline: stopped waiting for DynamoDB".into(),
            ))
        })
}

/// Gives back claims taken until `deadline` (`deadline_ms` on the wall
/// clock), stopping [`RELEASE_BEFORE_EXPIRY`] short of it; what is not
/// released by then expires at the deadline.
pub async fn release_own<S: DedupeStore>(
    store: &S,
    keys: &[String],
    deadline: Instant,
    deadline_ms: i64,
) -> Result<(), StoreError> {
    match deadline.checked_sub(RELEASE_BEFORE_EXPIRY) {
        _ if keys.is_empty() => Ok(()),
        Some(until) if Instant::now() < until => {
            bounded(until, store.release(keys, deadline_ms)).await
        }
        _ => Err(StoreError::Transient(
            "deadline: left to expire at the invocation deadline".into(),
        )),
    }
}

/// The result of trying to claim one key before forwarding its record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours now (absent, expired, or a stale in-progress claim).
    New,
    /// Already forwarded and confirmed: skip as a duplicate.
    Completed,
    /// Another invocation holds a live claim: cut the lane here, retry later.
    InProgress,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttling, timeouts, 5xx: the batch (or lane) is retried.
    #[error("dedupe store unavailable: {0}")]
    Transient(String),
    /// The checkpoint moved under us: another invocation advanced it.
    #[error("lane checkpoint for {lane} changed concurrently")]
    CheckpointConflict { lane: String },
}

/// The store. Times are ms since the Unix epoch, passed in so tests control
/// the clock and expiry is decided the same way everywhere.
pub trait DedupeStore: Send + Sync {
    /// The last confirmed Kinesis sequence number of a lane, read consistently.
    fn checkpoint(
        &self,
        lane: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Moves a lane checkpoint from `old` (None: absent) to `new`.
    fn advance_checkpoint(
        &self,
        lane: &str,
        old: Option<&str>,
        new: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Claims each key until `in_progress_until_ms`, returning one result per
    /// key in order. Implementations run the writes concurrently, bounded.
    fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;

    /// Marks claimed keys completed, kept until `expires_at_s` (TTL, seconds).
    fn complete(
        &self,
        keys: &[String],
        expires_at_s: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives up claims whose records were not confirmed, so a retry may
    /// take them at once instead of waiting for the claim to expire. Only
    /// keys still in progress under *this* claim (the
    /// `in_progress_until_ms` it was taken with) are removed: a completed
    /// key stays completed, and a claim another invocation took over
    /// stays theirs. Batched, [`RELEASE_CHUNK`] keys to a request.
    fn release(
        &self,
        keys: &[String],
        claimed_until_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// What [`DedupeStore::claim`] would answer for each key at `now_ms`,
    /// read consistently and taking nothing: `New` means free to claim.
    /// Dry runs decide with it.
    fn peek(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Claim>, StoreError>> + Send;

    /// Requests made so far (for the cost metrics).
    fn requests(&self) -> u64;
}
