//! What happens to a batch in the pipeline: its summary, its bad records,
//! refused updates, and what is left for redelivery.

use crate::metrics::{Metrics, MetricsSink};
use crate::pipeline::{RecordState, Summary};
use crate::source::{Record, SourceKind};

use super::{ms3, payload_preview};

/// The batch's summary line (DESIGN §11) and its EMF metrics: one per
/// Lambda invocation, one per batch of `tickbridge run kinesis|sqs`.
/// `INFO`, or `WARN` when a record failed (an operator filtering on
/// warnings sees a batch that is stuck).
pub struct BatchDone<'a> {
    /// `kinesis` or `sqs` (`empty` for a batch without records).
    pub source: &'a str,
    pub summary: &'a Summary,
}

impl BatchDone<'_> {
    pub fn emit(&self, sink: &MetricsSink) -> Metrics {
        let s = self.summary;
        let rows: usize = s.rows_per_table.values().sum();
        let tables = s
            .rows_per_table
            .iter()
            .map(|(t, n)| format!("{t}={n}"))
            .collect::<Vec<_>>()
            .join(" ");
        let failures = (!s.failure_reasons.is_empty()).then(|| s.failure_reasons.join("; "));
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    request_id = %s.request_id,
                    source = self.source,
                    records = s.records,
                    lanes = s.lanes,
                    forwarded = s.forwarded,
                    duplicates = s.duplicates,
                    quarantined = s.quarantined,
                    failed = s.failed,
                    rows,
                    tables = %tables,
                    messages = s.messages_sent,
                    bytes = s.bytes_sent,
                    refused_updates = s.refused_updates,
                    accepted_behind_refusal = s.accepted_behind_refusal,
                    dynamodb_requests = s.dedupe_requests,
                    handler_ms = ms3(s.handler_ms),
                    parse_ms = ms3(s.stage_ms.parse),
                    dedupe_ms = ms3(s.stage_ms.dedupe),
                    decode_ms = ms3(s.stage_ms.decode),
                    quarantine_ms = ms3(s.stage_ms.quarantine),
                    publish_ms = ms3(s.stage_ms.publish),
                    commit_ms = ms3(s.stage_ms.commit),
                    failures,
                    "batch done"
                )
            };
        }
        if s.failed > 0 {
            line!(warn);
        } else {
            line!(info);
        }
        let metrics = Metrics::of_batch(self.source, s);
        sink.write(&metrics);
        metrics
    }
}

/// How the pipeline starts the reason of a record it failed as bad in
/// `fail` mode (`pipeline::batch`), so the record's events can tell it from
/// a record left for another reason.
pub const FAILED_AS_BAD: &str = "bad record: ";

/// The decode error of a record failed as bad (`fail` mode), if it was.
pub fn failed_as_bad(state: &RecordState) -> Option<&str> {
    match state {
        RecordState::Pending { reason } => reason.strip_prefix(FAILED_AS_BAD),
        _ => None,
    }
}

/// What became of a bad record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadRecordOutcome {
    /// Sent to the quarantine queue; its lane went on.
    Quarantined,
    /// No quarantine queue: this log line is all that is kept of it.
    QuarantinedToLog,
    /// `TICKBRIDGE_BAD_RECORDS=fail`: its lane stops at it and is retried
    /// (Lambda's retries, bisection and on-failure destination take over).
    LaneCut,
}

/// One `WARN` line per bad record, in both modes (DESIGN §6): source,
/// lane, position, reason and a bounded preview of the payload.
pub struct BadRecord<'a> {
    pub request_id: &'a str,
    pub record: &'a Record,
    pub reason: &'a str,
    pub outcome: BadRecordOutcome,
}

impl BadRecord<'_> {
    pub fn emit(&self) {
        let r = self.record;
        let source = match r.kind {
            SourceKind::Kinesis => "kinesis",
            SourceKind::SqsFifo => "sqs",
        };
        // For SQS, `position` is the message id (what the batch response
        // and the quarantine message name); the FIFO sequence number, when
        // the queue gave one, is its own field.
        let sequence_number =
            (r.kind == SourceKind::SqsFifo && !r.position.is_empty()).then_some(&*r.position);
        let position = position(r);
        let payload_bytes = r.payload.len();
        let payload_preview = payload_preview(&r.payload);
        macro_rules! line {
            ($bad_records:literal, $kept:literal, $message:literal) => {
                tracing::warn!(
                    request_id = %self.request_id,
                    source,
                    source_arn = %r.source_arn,
                    lane = %r.lane,
                    position = %position,
                    sequence_number,
                    reason = %self.reason,
                    bad_records = $bad_records,
                    kept_in = $kept,
                    payload_bytes,
                    payload_preview = %payload_preview,
                    $message
                )
            };
        }
        match self.outcome {
            BadRecordOutcome::Quarantined => {
                line!("quarantine", "quarantine queue", "bad record quarantined")
            }
            BadRecordOutcome::QuarantinedToLog => line!(
                "quarantine",
                "this log line only",
                "bad record quarantined (no quarantine queue: kept only in this log line)"
            ),
            BadRecordOutcome::LaneCut => line!(
                "fail",
                "the source (lane cut, retried)",
                "bad record: its lane stops here and is retried"
            ),
        }
    }
}

/// Where a record is, as every event names it: the Kinesis sequence
/// number (`seq:sub` for a user record of a KPL aggregate), or the SQS
/// message id; both what the batch response and the quarantine name.
pub fn position(r: &Record) -> std::borrow::Cow<'_, str> {
    match r.kind {
        SourceKind::Kinesis => r.position_text(),
        SourceKind::SqsFifo => std::borrow::Cow::Borrowed(&r.failure_id),
    }
}

/// The tickerplant refused an update with a q error: `ERROR`, once per
/// refused run (later runs of the lane are not sent). Counted in the
/// summary's `refused_updates` (metric `RefusedUpdates`).
pub struct RefusedRun<'a> {
    pub table: &'a str,
    pub lane: &'a str,
    pub first_position: &'a str,
    pub last_position: &'a str,
    pub rows: usize,
    pub q_error: &'a str,
}

impl RefusedRun<'_> {
    pub fn emit(&self) {
        tracing::error!(
            table = %self.table,
            lane = %self.lane,
            first_position = %self.first_position,
            last_position = %self.last_position,
            rows = self.rows,
            q_error = %self.q_error,
            "tickerplant refused an update; its lane is cut and retried"
        );
    }
}

/// Pipelined publishing sent updates behind one the tickerplant refused,
/// and it accepted them; they are reported failed and sent again.
pub struct PipelinedRefusal {
    pub runs: usize,
}

impl PipelinedRefusal {
    pub fn emit(&self) {
        tracing::warn!(
            runs = self.runs,
            "TICKBRIDGE_PUBLISH=pipelined: updates sent behind a refused one were accepted; \
             they are reported failed with it and will be sent again on the retry"
        );
    }
}

/// A lane's records the batch did not finish: `DEBUG`, one line per lane
/// (the summary's `failures` has the first reasons at `INFO`).
pub struct RecordsLeft<'a> {
    pub request_id: &'a str,
    pub lane: &'a str,
    pub first_position: &'a str,
    pub records: usize,
    pub reason: &'a str,
}

impl RecordsLeft<'_> {
    pub fn emit(&self) {
        tracing::debug!(
            request_id = %self.request_id,
            lane = %self.lane,
            first_position = %self.first_position,
            records = self.records,
            reason = %self.reason,
            "records left for redelivery"
        );
    }
}

/// A dedupe write after publishing failed. The records are already in the
/// tickerplant, so this is a warning, not a retry.
pub enum CommitIncomplete<'a> {
    Checkpoint {
        lane: &'a str,
        checkpoint: &'a str,
        error: &'a str,
    },
    Complete {
        keys: usize,
        error: &'a str,
    },
    Release {
        keys: usize,
        error: &'a str,
    },
}

impl CommitIncomplete<'_> {
    pub fn emit(&self) {
        match self {
            CommitIncomplete::Checkpoint {
                lane,
                checkpoint,
                error,
            } => tracing::warn!(
                lane = %lane, checkpoint = %checkpoint, error = %error,
                "lane checkpoint not advanced"
            ),
            CommitIncomplete::Complete { keys, error } => tracing::warn!(
                keys, error = %error,
                "completed keys not written; a redelivery may be forwarded again"
            ),
            CommitIncomplete::Release { keys, error } => tracing::warn!(
                keys, error = %error,
                "claims not released; they expire at the invocation deadline"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::capture::{assert_no_debug, lines, said};
    use crate::telemetry::PREVIEW_BYTES;

    /// A record as the Lambda event parser builds it.
    fn record(kind: SourceKind, payload: Vec<u8>) -> Record {
        use base64::Engine;
        let event = match kind {
            SourceKind::Kinesis => serde_json::json!({"Records": [{
                "kinesis": {"partitionKey": "k", "sequenceNumber": "49",
                    "data": base64::engine::general_purpose::STANDARD.encode(&payload),
                    "approximateArrivalTimestamp": 1.0},
                "eventSource": "aws:kinesis", "eventID": "shardId-0:49",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s"}]}),
            SourceKind::SqsFifo => serde_json::json!({"Records": [{
                "messageId": "m-2", "receiptHandle": "rh",
                "body": String::from_utf8(payload).unwrap(),
                "attributes": {"MessageGroupId": "g", "SequenceNumber": "1880",
                    "SentTimestamp": "1"},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:1:q.fifo"}]}),
        };
        let opts = crate::source::SourceOptions::default();
        let mut records =
            crate::source::event::parse_event(event.to_string().as_bytes(), &opts).unwrap();
        records.remove(0)
    }

    #[test]
    fn a_bad_record_is_one_flat_line_with_a_bounded_preview() {
        let big = record(SourceKind::SqsFifo, vec![b'{'; 10 << 20]);
        let small = record(SourceKind::Kinesis, b"{\"sym\":1}".to_vec());
        let logs = lines(|| {
            BadRecord {
                request_id: "r1",
                record: &big,
                reason: "not JSON",
                outcome: BadRecordOutcome::Quarantined,
            }
            .emit();
            BadRecord {
                request_id: "r1",
                record: &small,
                reason: "sym: expected a string",
                outcome: BadRecordOutcome::LaneCut,
            }
            .emit();
        });
        assert_eq!(logs.len(), 2);
        let sqs = &logs[0];
        assert_eq!(sqs["level"], "WARN");
        assert_eq!(sqs["message"], "bad record quarantined");
        assert_eq!(sqs["source"], "sqs");
        assert_eq!(sqs["source_arn"], "arn:aws:sqs:us-east-1:1:q.fifo");
        assert_eq!(sqs["position"], "m-2");
        assert_eq!(sqs["sequence_number"], "1880");
        assert_eq!(sqs["bad_records"], "quarantine");
        assert_eq!(sqs["payload_bytes"], 10 << 20);
        let preview = sqs["payload_preview"].as_str().unwrap();
        assert_eq!(preview.len(), PREVIEW_BYTES + '…'.len_utf8());
        assert!(serde_json::to_string(sqs).unwrap().len() < 2_000);
        let kin = &logs[1];
        assert_eq!(
            kin["message"],
            "bad record: its lane stops here and is retried"
        );
        assert_eq!(kin["bad_records"], "fail");
        assert_eq!(kin["position"], "49");
        assert_eq!(kin["reason"], "sym: expected a string");
        assert_eq!(kin["payload_preview"], "{\"sym\":1}");
        assert!(kin.get("sequence_number").is_none(), "{kin}");
        for l in &logs {
            assert_no_debug(l);
        }
    }

    #[test]
    fn the_summary_line_is_flat_and_rounded() {
        let mut s = Summary {
            request_id: "req-7".into(),
            records: 5,
            forwarded: 3,
            failed: 2,
            failure_reasons: vec!["49: deadline".into(), "50: after a pending record".into()],
            ..Summary::default()
        };
        s.stage_ms.dedupe = 0.022_862_999_999_999_994;
        s.rows_per_table.insert("trade".into(), 3);
        s.rows_per_table.insert("quote".into(), 2);
        let mut metrics = None;
        let logs = lines(|| {
            metrics = Some(
                BatchDone {
                    source: "kinesis",
                    summary: &s,
                }
                .emit(&MetricsSink::Off),
            );
        });
        let done = said(&logs, "batch done");
        assert_eq!(done.len(), 1);
        let l = done[0];
        assert_eq!(l["level"], "WARN", "a batch with failures warns");
        assert_eq!(l["request_id"], "req-7");
        assert_eq!(l["dedupe_ms"], 0.023);
        assert_eq!(l["rows"], 5);
        assert_eq!(l["tables"], "quote=2 trade=3");
        assert_eq!(l["failures"], "49: deadline; 50: after a pending record");
        assert_no_debug(l);
        assert_eq!(metrics.unwrap().get("Failed"), Some(2.0));
        // Nothing failed: INFO, and no empty `failures` field.
        s.failed = 0;
        s.failure_reasons.clear();
        let logs = lines(|| {
            BatchDone {
                source: "sqs",
                summary: &s,
            }
            .emit(&MetricsSink::Off);
        });
        assert_eq!(logs[0]["level"], "INFO");
        assert!(logs[0].get("failures").is_none(), "{}", logs[0]);
    }

    #[test]
    fn refusals_name_table_lane_positions_and_the_q_error() {
        let logs = lines(|| {
            RefusedRun {
                table: "trade",
                lane: "arn/shard-0",
                first_position: "10",
                last_position: "12",
                rows: 3,
                q_error: "type",
            }
            .emit()
        });
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0]["level"], "ERROR");
        for (k, v) in [
            ("table", "trade"),
            ("lane", "arn/shard-0"),
            ("first_position", "10"),
            ("last_position", "12"),
            ("q_error", "type"),
        ] {
            assert_eq!(logs[0][k], v, "{k}");
        }
    }
}
