//! `tickbridge run kinesis|sqs`: the same events for both sources, per
//! poll and at the end. Each batch also emits [`BatchDone`](super::BatchDone)
//! (and its metrics) exactly as the Lambda does.

use std::time::Duration;

use crate::runner::Totals;

use super::{ms3, per_second};

/// The runner found its stream or queue and starts polling.
pub struct PollStarted<'a> {
    pub source: &'a str,
    pub source_arn: &'a str,
}

impl PollStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(source = self.source, source_arn = %self.source_arn, "polling started");
    }
}

/// A shard's poller starts: after its checkpoint, or at a starting position.
pub struct ShardStarted<'a> {
    pub shard: &'a str,
    /// `after` or `at` a checkpoint, `trim_horizon`, `latest` or `at_timestamp`.
    pub from: &'a str,
    /// With `after`/`at`: the sequence number; with `at_timestamp`: epoch seconds.
    pub at: Option<&'a str>,
}

impl ShardStarted<'_> {
    pub fn emit(&self) {
        tracing::info!(shard = %self.shard, from = self.from, at = self.at, "shard poller started");
    }
}

/// A shard closed by resharding was read to its end; its children may start.
pub struct ShardFinished<'a> {
    pub shard: &'a str,
}

impl ShardFinished<'_> {
    pub fn emit(&self) {
        tracing::info!(shard = %self.shard, "shard read to its end");
    }
}

/// An AWS call (or the task around it) failed and is tried again: `WARN`.
pub struct AwsRetry<'a> {
    /// The operation, e.g. `GetRecords`, `ReceiveMessage`.
    pub op: &'a str,
    /// The stream, queue or shard it was about.
    pub resource: &'a str,
    pub error: &'a str,
}

impl AwsRetry<'_> {
    pub fn emit(&self) {
        tracing::warn!(op = self.op, resource = %self.resource, error = %self.error, "AWS call failed; retrying");
    }
}

/// The pipeline failed a batch as a whole (as a Lambda function error):
/// every record of it comes again.
pub struct FunctionError<'a> {
    pub source: &'a str,
    pub request_id: &'a str,
    pub records: usize,
    pub error: &'a dyn std::fmt::Display,
}

impl FunctionError<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            source = self.source,
            request_id = %self.request_id,
            records = self.records,
            error = %self.error,
            "function error: the whole batch is left for redelivery"
        );
    }
}

/// What the runner did with a batch after the pipeline: for SQS the
/// messages deleted and those left to their visibility timeout, for
/// Kinesis the records retried. `DEBUG` when nothing is left, else `INFO`.
pub struct PollDone<'a> {
    pub source: &'a str,
    pub request_id: &'a str,
    pub records: usize,
    /// Records (Kinesis) or messages (SQS) that come again.
    pub left: usize,
    /// SQS: messages deleted.
    pub deleted: Option<usize>,
}

impl PollDone<'_> {
    pub fn emit(&self) {
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    source = self.source,
                    request_id = %self.request_id,
                    records = self.records,
                    left = self.left,
                    deleted = self.deleted,
                    "poll done"
                )
            };
        }
        if self.left > 0 {
            line!(info);
        } else {
            line!(debug);
        }
    }
}

/// Retries of a Kinesis batch ran out: its coordinates went to the
/// on-failure queue (`WARN`), or, with none set, it was skipped (`ERROR`,
/// as Lambda discards it).
pub struct OnFailureSent<'a> {
    pub shard: &'a str,
    pub start_sequence_number: &'a str,
    pub end_sequence_number: &'a str,
    pub records: u64,
    pub attempts: u64,
    /// The on-failure queue; `None`: the batch was skipped.
    pub queue: Option<&'a str>,
}

impl OnFailureSent<'_> {
    pub fn emit(&self) {
        match self.queue {
            Some(queue) => tracing::warn!(
                shard = %self.shard,
                start_sequence_number = %self.start_sequence_number,
                end_sequence_number = %self.end_sequence_number,
                records = self.records,
                attempts = self.attempts,
                queue = %queue,
                "retries exhausted: batch sent to the on-failure queue"
            ),
            None => tracing::error!(
                shard = %self.shard,
                start_sequence_number = %self.start_sequence_number,
                end_sequence_number = %self.end_sequence_number,
                records = self.records,
                attempts = self.attempts,
                "retries exhausted and no on-failure queue: batch skipped"
            ),
        }
    }
}

/// SQS did not delete a message that succeeded: it comes back and is
/// skipped then as a duplicate.
pub struct DeleteFailed<'a> {
    pub queue: &'a str,
    pub message_id: &'a str,
    pub reason: &'a str,
}

impl DeleteFailed<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            queue = %self.queue,
            message_id = %self.message_id,
            reason = %self.reason,
            "delete failed: the message will come back and be skipped as a duplicate"
        );
    }
}

macro_rules! totals_line {
    ($source:expr, $t:expr, $elapsed_s:expr, $rate:expr, $message:literal) => {
        tracing::info!(
            source = $source,
            batches = $t.batches,
            records = $t.records,
            forwarded = $t.forwarded,
            duplicates = $t.duplicates,
            quarantined = $t.quarantined,
            retried = $t.retried,
            on_failure = $t.sent_to_on_failure,
            deleted = $t.deleted,
            dynamodb_requests = $t.dynamodb_requests,
            left_pending = $t.left_pending,
            elapsed_s = $elapsed_s,
            records_per_s = $rate,
            $message
        )
    };
}

/// The running totals every few seconds; the rate is over the last interval.
pub struct RunnerProgress<'a> {
    pub source: &'a str,
    pub totals: &'a Totals,
    pub elapsed: Duration,
    /// Records since the previous progress line, and the time since it.
    pub recent: (u64, Duration),
}

impl RunnerProgress<'_> {
    pub fn emit(&self) {
        let rate = per_second(self.recent.0, self.recent.1.as_secs_f64());
        let elapsed_s = ms3(self.elapsed.as_secs_f64());
        totals_line!(self.source, self.totals, elapsed_s, rate, "progress");
    }
}

/// The runner stopped: the totals, with the same fields as the progress.
pub struct RunnerSummary<'a> {
    pub source: &'a str,
    pub totals: &'a Totals,
    pub elapsed: Duration,
}

impl RunnerSummary<'_> {
    /// Seconds to the millisecond, and records per second (3 significant
    /// digits): the figures the log line and the stdout summary share.
    pub fn figures(&self) -> (f64, f64) {
        let secs = self.elapsed.as_secs_f64();
        (ms3(secs), per_second(self.totals.records, secs))
    }

    pub fn emit(&self) {
        let (elapsed_s, rate) = self.figures();
        totals_line!(self.source, self.totals, elapsed_s, rate, "runner stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::capture::{assert_no_debug, lines};

    #[test]
    fn progress_and_summary_share_their_fields() {
        let t = Totals {
            batches: 2,
            records: 6,
            forwarded: 5,
            quarantined: 1,
            ..Totals::default()
        };
        let logs = lines(|| {
            RunnerProgress {
                source: "sqs",
                totals: &t,
                elapsed: Duration::from_millis(10_400),
                recent: (6, Duration::from_secs(10)),
            }
            .emit();
            RunnerSummary {
                source: "sqs",
                totals: &t,
                elapsed: Duration::from_micros(24_123_456),
            }
            .emit();
        });
        assert_eq!(logs.len(), 2);
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.retain(|k| !["message", "timestamp"].contains(&k.as_str()));
            k.sort();
            k
        };
        assert_eq!(keys(&logs[0]), keys(&logs[1]));
        assert_eq!(logs[0]["records_per_s"], 0.6);
        assert_eq!(logs[1]["elapsed_s"], 24.123);
        assert_eq!(logs[1]["records_per_s"], 0.249);
        for l in &logs {
            assert_no_debug(l);
        }
    }

    #[test]
    fn poll_lines_write_values_not_options() {
        let logs = lines(|| {
            PollDone {
                source: "sqs",
                request_id: "sqs-1",
                records: 10,
                left: 2,
                deleted: Some(8),
            }
            .emit();
            PollDone {
                source: "kinesis",
                request_id: "s-1-1",
                records: 10,
                left: 3,
                deleted: None,
            }
            .emit();
            ShardStarted {
                shard: "shardId-0",
                from: "trim_horizon",
                at: None,
            }
            .emit();
        });
        assert_eq!(logs[0]["deleted"], 8);
        assert!(logs[1].get("deleted").is_none());
        assert_eq!(logs[2]["from"], "trim_horizon");
        for l in &logs {
            assert_no_debug(l);
        }
    }
}
