//! `tickbridge run sqs`: long polling, the pipeline, and deleting exactly
//! what succeeded, as Lambda's SQS mapping does with partial-batch
//! responses. Failed messages (and, for FIFO, every later message of their
//! group, which the batch response already lists) are left alone: their
//! visibility timeout brings them back, and after `maxReceiveCount` the
//! queue's redrive policy moves them to the dead-letter queue.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};

use super::sdk_err;
use super::shutdown::Shutdown;
use super::{kinesis::RunError, Stats};
use crate::app::App;
use crate::metrics::MetricsSink;
use crate::pipeline::BatchContext;
use crate::source::event::EventError;
use crate::source::{sqs, Record, SourceOptions};
use crate::telemetry::{AwsRetry, DeleteFailed, FunctionError, PollDone, PollStarted};

#[derive(Clone, Debug)]
pub struct SqsSettings {
    pub queue_url: String,
    /// Messages per receive, 1..=10.
    pub batch_size: i32,
    /// Long polling wait, 0..=20 s.
    pub wait_time: Duration,
    /// Time one invocation of the pipeline may take.
    pub batch_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Where each batch's metrics go (EMF on stdout, as the Lambda, or off).
    pub metrics: MetricsSink,
}

impl SqsSettings {
    pub fn new(queue_url: impl Into<String>) -> SqsSettings {
        SqsSettings {
            queue_url: queue_url.into(),
            batch_size: 10,
            wait_time: Duration::from_secs(20),
            batch_timeout: Duration::from_secs(60),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            metrics: MetricsSink::Off,
        }
    }
}

/// Polls the queue until `shutdown`; the batch in flight is finished
/// (processed and its successes deleted) before returning.
pub async fn run(
    app: Arc<App>,
    sqs: aws_sdk_sqs::Client,
    settings: SqsSettings,
    stats: Arc<Stats>,
    mut shutdown: Shutdown,
) -> Result<(), RunError> {
    let arn = crate::aws::sqs::queue_arn(&sqs, &settings.queue_url).await?;
    PollStarted {
        source: "sqs",
        source_arn: &arn,
    }
    .emit();
    let mut delays = super::retry_delays(settings.retry_min, settings.retry_max);
    let mut invocation = 0u64;
    // What the last batch left for redelivery: pending when a stop ends
    // the loop. (Earlier failures come back or go to the queue's DLQ,
    // which the runner cannot see.)
    let mut left = 0usize;
    while !shutdown.requested() {
        let receive = sqs
            .receive_message()
            .queue_url(&settings.queue_url)
            .max_number_of_messages(settings.batch_size)
            .wait_time_seconds(settings.wait_time.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        // A stop during the long poll abandons the receive: anything SQS
        // hands out meanwhile comes back after its visibility timeout.
        let out = tokio::select! {
            out = receive => out,
            _ = shutdown.wait() => break,
        };
        let messages = match out {
            Ok(o) => o.messages.unwrap_or_default(),
            Err(e) => {
                AwsRetry {
                    op: "ReceiveMessage",
                    resource: &settings.queue_url,
                    error: &sdk_err(e),
                }
                .emit();
                if !shutdown
                    .sleep(delays.next().unwrap_or(settings.retry_max))
                    .await
                {
                    break;
                }
                continue;
            }
        };
        delays = super::retry_delays(settings.retry_min, settings.retry_max);
        if messages.is_empty() {
            continue;
        }
        invocation += 1;
        let request_id = format!("sqs-{invocation}");
        let ctx = BatchContext::with_budget(&request_id, settings.batch_timeout);
        let handled = match records_of(&messages, &arn, &app.config.source) {
            Ok(records) => app.handle_records(&records, &ctx).await,
            Err(e) => Err(e.into()),
        };
        let failed: HashSet<String> = match handled {
            Ok(inv) => {
                stats.add(&inv);
                inv.done(&settings.metrics);
                inv.response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.clone())
                    .collect()
            }
            Err(e) => {
                FunctionError {
                    source: "sqs",
                    request_id: &request_id,
                    records: messages.len(),
                    error: &e,
                }
                .emit();
                messages
                    .iter()
                    .filter_map(|m| m.message_id.clone())
                    .collect()
            }
        };
        let done: Vec<&Message> = messages
            .iter()
            .filter(|m| m.message_id().is_some_and(|id| !failed.contains(id)))
            .collect();
        let deleted = delete(&sqs, &settings, &done, &stats).await;
        left = failed.len();
        PollDone {
            source: "sqs",
            request_id: &request_id,
            records: messages.len(),
            left: failed.len(),
            deleted: Some(deleted),
        }
        .emit();
    }
    stats.left_pending.fetch_add(left as u64, Ordering::Relaxed);
    Ok(())
}

/// Deletes what succeeded; a message SQS did not delete comes back and is
/// skipped then as a duplicate (its key is completed). Returns how many
/// were deleted.
async fn delete(
    sqs: &aws_sdk_sqs::Client,
    settings: &SqsSettings,
    done: &[&Message],
    stats: &Stats,
) -> usize {
    let failed = crate::aws::sqs::delete(sqs, &settings.queue_url, done).await;
    let deleted = done.len() - failed.len();
    stats.deleted.fetch_add(deleted as u64, Ordering::Relaxed);
    for (message_id, reason) in &failed {
        DeleteFailed {
            queue: &settings.queue_url,
            message_id,
            reason,
        }
        .emit();
    }
    deleted
}

/// The messages as `Record`s, through the same constructor as the Lambda
/// path. A message without an id fails the whole batch, as in an event.
fn records_of(
    messages: &[Message],
    queue_arn: &str,
    opts: &SourceOptions,
) -> Result<Vec<Record>, EventError> {
    messages
        .iter()
        .enumerate()
        .map(|(index, m)| {
            sqs::from_sdk(m, queue_arn, opts).map_err(|e| EventError::Malformed {
                index,
                reason: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::event::parse_event;

    #[test]
    fn messages_become_the_records_the_lambda_path_builds() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh")
            .body(r#"{"x":1}"#)
            .attributes(MessageSystemAttributeName::MessageGroupId, "g7")
            .attributes(
                MessageSystemAttributeName::SequenceNumber,
                "18849496460467696128",
            )
            .attributes(MessageSystemAttributeName::SentTimestamp, "1764000000123")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let arn = "arn:aws:sqs:us-east-1:000000000000:q.fifo";
        // The event the mapping delivers for this message, as Lambda writes it.
        let ev = format!(
            r#"{{"Records":[{{"messageId":"m-1","receiptHandle":"rh","body":"{{\"x\":1}}","attributes":{{"MessageGroupId":"g7","SequenceNumber":"18849496460467696128","SentTimestamp":"1764000000123","ApproximateReceiveCount":"2"}},"messageAttributes":{{}},"eventSource":"aws:sqs","eventSourceARN":"{arn}","awsRegion":"us-east-1"}}]}}"#
        );
        let opts = SourceOptions::default();
        let recs = records_of(&[m], arn, &opts).unwrap();
        assert_eq!(recs, parse_event(ev.as_bytes(), &opts).unwrap());
        assert_eq!(&*recs[0].lane, format!("{arn}/g7"));
        assert_eq!(&*recs[0].failure_id, "m-1");
        assert_eq!(recs[0].message_key.as_deref(), Some("msg#m-1"));
        assert_eq!(&*recs[0].position, "18849496460467696128");
        assert_eq!(recs[0].arrival_ms, 1_764_000_000_123);
        assert_eq!(recs[0].payload, br#"{"x":1}"#);
        let no_id = Message::builder().body("b").build();
        assert!(matches!(
            records_of(&[no_id], arn, &opts),
            Err(EventError::Malformed { index: 0, .. })
        ));
    }
}
