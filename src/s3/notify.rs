//! S3 event notifications through the bridge (DESIGN §7a): the objects a
//! notification names, each streamed in by [`super::ingest`], and what the
//! delivery reports back.
//!
//! - Delivered to Lambda directly or by EventBridge: one notification per
//!   invocation; if an object is left pending the invocation fails, so
//!   Lambda's asynchronous retry delivers it again and the object resumes
//!   from its checkpoint.
//! - Through SQS (standard or FIFO, each message body a notification):
//!   each message is a record; a message whose objects are not all done is
//!   reported in `batchItemFailures` (with every later message of its FIFO
//!   group, as the pipeline's lane cut does). A body that is not a
//!   notification is a bad record.

use std::time::Instant;

use aws_sdk_s3::Client;

use super::event::{parse_notification, Notification};
use super::ingest::{ingest_object, IngestOptions, ObjectReport, ObjectStatus, Sinks};
use super::ObjectRef;
use crate::dedupe::DedupeStore;
use crate::pipeline::{
    BadRecords, BatchContext, QuarantineItem, QuarantineSink, RecordState, Summary, TickerplantLink,
};
use crate::schema::Catalog;
use crate::source::{lanes, Record};

/// What the bridge reads and writes for objects.
pub struct Parts<'a, S, L, Q> {
    pub s3: &'a Client,
    pub catalog: &'a Catalog,
    pub store: &'a S,
    pub link: &'a mut L,
    pub quarantine: &'a Q,
    pub options: &'a IngestOptions,
}

/// Whether an SQS message body is an S3 notification (a quick look at the
/// text first, so ordinary records cost no second parse).
pub fn is_notification_body(body: &[u8]) -> bool {
    let marked = [&b"\"aws:s3\""[..], b"\"aws.s3\"", b"s3:TestEvent"]
        .iter()
        .any(|m| body.windows(m.len()).any(|w| w == *m));
    marked && parse_notification(body).is_ok()
}

/// Whether a batch is of notifications: its first record's body is one
/// (a queue carries notifications or records, not both).
pub fn is_notification_batch(records: &[Record]) -> bool {
    records
        .first()
        .is_some_and(|r| is_notification_body(&r.payload))
}

/// Streams the objects in order, stopping at the first left pending (the
/// rest wait for the retry). Reports per object read.
pub async fn ingest_objects<S, L, Q>(
    parts: &mut Parts<'_, S, L, Q>,
    objects: &[ObjectRef],
    ctx: &BatchContext,
    summary: &mut Summary,
) -> Result<Vec<ObjectReport>, String>
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    let mut reports = Vec::with_capacity(objects.len());
    for object in objects {
        let sinks = Sinks {
            store: parts.store,
            link: &mut *parts.link,
            quarantine: parts.quarantine,
        };
        let t = Instant::now();
        let report = Box::pin(ingest_object(
            parts.s3,
            parts.catalog,
            sinks,
            object,
            parts.options,
            ctx,
            &mut |_| {},
        ))
        .await;
        log_object(&report, t);
        add_to_summary(summary, &report);
        let pending = match &report.status {
            ObjectStatus::Pending { reason } => Some(reason.clone()),
            _ => None,
        };
        reports.push(report);
        if let Some(reason) = pending {
            return Err(format!("{object}: {reason}"));
        }
    }
    Ok(reports)
}

fn add_to_summary(summary: &mut Summary, report: &ObjectReport) {
    for (table, rows) in &report.rows_per_table {
        *summary.rows_per_table.entry(table.clone()).or_default() += rows;
    }
    summary.messages_sent += report.messages_sent;
    summary.quarantined += report.quarantined;
}

fn log_object(report: &ObjectReport, started: Instant) {
    crate::telemetry::ObjectRead {
        report,
        ms: started.elapsed().as_secs_f64() * 1000.0,
    }
    .emit();
}

/// One notification delivered to Lambda (directly or by EventBridge).
/// `Err`: something is left for the retry.
pub async fn handle_event<S, L, Q>(
    parts: &mut Parts<'_, S, L, Q>,
    event: &[u8],
    ctx: &BatchContext,
) -> Result<Summary, String>
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    let mut summary = Summary {
        request_id: ctx.request_id.clone(),
        ..Summary::default()
    };
    let objects = created(&parse_notification(event).map_err(|e| e.to_string())?);
    summary.records = objects.len();
    summary.lanes = objects.len();
    let result = ingest_objects(parts, &objects, ctx, &mut summary).await;
    match &result {
        Ok(reports) => {
            let again = |r: &&ObjectReport| r.status == ObjectStatus::AlreadyDone;
            summary.duplicates = reports.iter().filter(again).count();
            summary.forwarded = reports.len() - summary.duplicates;
        }
        Err(reason) => {
            summary.failed = 1;
            summary.failure_reasons.push(reason.clone());
        }
    }
    result.map(|_| summary)
}

fn created(n: &Notification) -> Vec<ObjectRef> {
    n.created().map(|e| e.object.clone()).collect()
}

/// A batch of SQS messages whose bodies are notifications: one state per
/// message, with the lane cut of the pipeline.
pub async fn handle_sqs<S, L, Q>(
    parts: &mut Parts<'_, S, L, Q>,
    records: &[Record],
    ctx: &BatchContext,
) -> (Vec<RecordState>, Summary)
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    let mut summary = Summary {
        request_id: ctx.request_id.clone(),
        records: records.len(),
        ..Summary::default()
    };
    let mut states: Vec<Option<RecordState>> = vec![None; records.len()];
    let lanes = lanes(records);
    summary.lanes = lanes.len();
    for lane in &lanes {
        let mut cut: Option<String> = None;
        for &i in &lane.records {
            if let Some(reason) = &cut {
                states[i] = Some(RecordState::Pending {
                    reason: format!("after a pending message ({reason})"),
                });
                continue;
            }
            let state = message_state(parts, &records[i], ctx, &mut summary).await;
            if let RecordState::Pending { reason } = &state {
                cut = Some(reason.clone());
            }
            states[i] = Some(state);
        }
    }
    let states: Vec<RecordState> = states
        .into_iter()
        .map(|s| {
            s.unwrap_or(RecordState::Pending {
                reason: "not processed".into(),
            })
        })
        .collect();
    for (r, s) in records.iter().zip(&states) {
        match s {
            RecordState::Forwarded => summary.forwarded += 1,
            RecordState::Duplicate => summary.duplicates += 1,
            RecordState::Quarantined { .. } => {}
            RecordState::Pending { reason } => {
                summary.failed += 1;
                if summary.failure_reasons.len() < 5 {
                    summary
                        .failure_reasons
                        .push(format!("{}: {reason}", r.failure_id));
                }
            }
        }
    }
    (states, summary)
}

async fn message_state<S, L, Q>(
    parts: &mut Parts<'_, S, L, Q>,
    record: &Record,
    ctx: &BatchContext,
    summary: &mut Summary,
) -> RecordState
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    let notification = match record.defect.as_ref().map_or_else(
        || parse_notification(&record.payload).map_err(|e| e.to_string()),
        |d| Err(d.clone()),
    ) {
        Ok(n) => n,
        Err(reason) => return bad_message(parts, record, reason, summary).await,
    };
    let objects = created(&notification);
    match ingest_objects(parts, &objects, ctx, summary).await {
        Ok(reports)
            if !reports.is_empty()
                && reports
                    .iter()
                    .all(|r| r.status == ObjectStatus::AlreadyDone) =>
        {
            RecordState::Duplicate
        }
        Ok(_) => RecordState::Forwarded,
        Err(reason) => RecordState::Pending { reason },
    }
}

/// A message on a notification queue that is not a notification.
async fn bad_message<S, L, Q>(
    parts: &mut Parts<'_, S, L, Q>,
    record: &Record,
    reason: String,
    summary: &mut Summary,
) -> RecordState
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    if parts.options.bad_records == BadRecords::Fail {
        return RecordState::Pending {
            reason: format!("bad record: {reason}"),
        };
    }
    use base64::Engine;
    let item = QuarantineItem {
        source_arn: record.source_arn.to_string(),
        lane: record.lane.to_string(),
        position: record.position.to_string(),
        failure_id: record.failure_id.to_string(),
        reason: reason.clone(),
        payload: base64::engine::general_purpose::STANDARD.encode(&record.payload),
    };
    match parts
        .quarantine
        .send(std::slice::from_ref(&item))
        .await
        .first()
    {
        Some(Ok(())) => {
            summary.quarantined += 1;
            RecordState::Quarantined { reason }
        }
        Some(Err(e)) => RecordState::Pending {
            reason: format!("quarantine send failed: {e}"),
        },
        None => RecordState::Pending {
            reason: "quarantine send failed: no result".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_bodies_are_told_from_records() {
        let direct = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k.csv"}}}]}"#;
        assert!(is_notification_body(direct.as_bytes()));
        let eb = r#"{"source":"aws.s3","detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"k"}}}"#;
        assert!(is_notification_body(eb.as_bytes()));
        assert!(is_notification_body(br#"{"Event":"s3:TestEvent"}"#));
        // A record that merely mentions S3 is a record.
        assert!(!is_notification_body(br#"{"sym":"aws:s3","price":1}"#));
        assert!(!is_notification_body(br#"{"type":"trade"}"#));
    }
}
