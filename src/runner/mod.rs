//! `tickbridge run`: polls Kinesis or SQS directly with the semantics of
//! Lambda's event source mappings (DESIGN §1), outside Lambda.
//!
//! Batches become `Record`s through the constructors the Lambda event
//! parser uses (`source::kinesis`, `source::sqs`) and go to
//! [`App::handle_records`](crate::app::App::handle_records), so records,
//! lanes, dedupe, publishing and the partial-batch response are exactly the
//! Lambda path's.
//! What the mapping does around the function lives here: shard discovery
//! and resharding, retries with backoff and bisection, the on-failure
//! destination (Kinesis); long polling and deleting what succeeded (SQS).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::app::Invocation;
use crate::telemetry::{RunnerProgress, RunnerSummary};

pub mod kinesis;
pub mod shutdown;
pub mod sqs;

/// Running totals across every shard or the queue, for progress lines and
/// the exit summary. `records` and `retried` count every attempt: a record
/// retried twice is counted three times there, once in its final outcome.
#[derive(Debug, Default)]
pub struct Stats {
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub forwarded: AtomicU64,
    pub duplicates: AtomicU64,
    pub quarantined: AtomicU64,
    /// Records left for redelivery by a batch (they come back; counted per attempt).
    pub retried: AtomicU64,
    /// Kinesis: records handed to the on-failure destination.
    pub sent_to_on_failure: AtomicU64,
    /// SQS: messages deleted after success.
    pub deleted: AtomicU64,
    pub dynamodb_requests: AtomicU64,
    /// Records still unconfirmed when the runner stopped (Kinesis: the
    /// failed rest of the batch being retried; SQS: the last batch's
    /// failed messages); they are read again, but this run did not get
    /// them through.
    pub left_pending: AtomicU64,
}

/// A point-in-time copy of [`Stats`], printed as the summary line.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub batches: u64,
    pub records: u64,
    pub forwarded: u64,
    pub duplicates: u64,
    pub quarantined: u64,
    pub retried: u64,
    pub sent_to_on_failure: u64,
    pub deleted: u64,
    pub dynamodb_requests: u64,
    pub left_pending: u64,
}

impl Stats {
    /// Adds one invocation's outcome.
    pub fn add(&self, inv: &Invocation) {
        let s = &inv.summary;
        let add = |c: &AtomicU64, n: usize| c.fetch_add(n as u64, Ordering::Relaxed);
        add(&self.batches, 1);
        add(&self.records, s.records);
        add(&self.forwarded, s.forwarded);
        add(&self.duplicates, s.duplicates);
        add(&self.quarantined, s.quarantined);
        let pending = inv.states.iter().filter(|st| !st.is_done()).count();
        add(&self.retried, pending);
        self.dynamodb_requests
            .fetch_add(s.dedupe_requests, Ordering::Relaxed);
    }

    pub fn totals(&self) -> Totals {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Totals {
            batches: get(&self.batches),
            records: get(&self.records),
            forwarded: get(&self.forwarded),
            duplicates: get(&self.duplicates),
            quarantined: get(&self.quarantined),
            retried: get(&self.retried),
            sent_to_on_failure: get(&self.sent_to_on_failure),
            deleted: get(&self.deleted),
            dynamodb_requests: get(&self.dynamodb_requests),
            left_pending: get(&self.left_pending),
        }
    }
}

/// A `progress` line ([`RunnerProgress`]) every `every` until the returned
/// handle is aborted; none when `every` is zero.
pub fn spawn_progress(
    stats: Arc<Stats>,
    every: Duration,
    source: &'static str,
) -> Option<tokio::task::JoinHandle<()>> {
    if every.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(every).await;
            let totals = stats.totals();
            let now = Instant::now();
            RunnerProgress {
                source,
                totals: &totals,
                elapsed: started.elapsed(),
                recent: (
                    totals.records.saturating_sub(last.1),
                    now.duration_since(last.0),
                ),
            }
            .emit();
            last = (now, totals.records);
        }
    }))
}

/// The exit summary: the `runner stopped` line ([`RunnerSummary`]), and one
/// JSON line on stdout (the command's own output) that scripts and tests
/// read, with the same figures.
pub fn print_summary(source: &str, totals: &Totals, elapsed: Duration) {
    let summary = RunnerSummary {
        source,
        totals,
        elapsed,
    };
    summary.emit();
    let (elapsed_s, records_per_s) = summary.figures();
    let line = serde_json::json!({
        "summary": source,
        "totals": totals,
        "elapsed_s": elapsed_s,
        "records_per_s": records_per_s,
    });
    println!("{line}");
}

/// Delays between retries of one batch: exponential from `min`, capped at
/// `max`, with jitter, never ending (the retry limit is counted separately).
pub fn retry_delays(min: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// An SDK error in one line: its source chain, where the service's own
/// words are (the top-level message is terse), without the Debug dump.
pub(crate) fn sdk_err(e: impl std::error::Error + 'static) -> String {
    crate::aws::error::error_text(&e)
}
