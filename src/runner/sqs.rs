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
use crate::pipeline::BatchContext;
use crate::source::event::EventError;
use crate::source::{sqs, Record, SourceOptions};

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
    let err = |op: &'static str, reason: String| RunError::Sqs {
        op,
        queue: settings.queue_url.clone(),
        reason,
    };
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&settings.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| err("GetQueueAttributes", sdk_err(e)))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| err("GetQueueAttributes", "no QueueArn".into()))?;
    tracing::info!(queue = %arn, "polling queue");
    let mut delays = super::retry_delays(settings.retry_min, settings.retry_max);
    let mut invocation = 0u64;
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
                tracing::warn!(error = %sdk_err(e), "ReceiveMessage failed; retrying");
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
                crate::app::log_summary(&inv);
                inv.response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.clone())
                    .collect()
            }
            Err(e) => {
                tracing::warn!(request_id, error = %e, "function error: the whole batch is left for redelivery");
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
        delete(&sqs, &settings, &done, &stats).await;
        if !failed.is_empty() {
            tracing::info!(
                request_id,
                left = failed.len(),
                "messages left to their visibility timeout"
            );
        }
    }
    Ok(())
}

/// Deletes what succeeded; a message SQS did not delete comes back and is
/// skipped then as a duplicate (its key is completed).
async fn delete(
    sqs: &aws_sdk_sqs::Client,
    settings: &SqsSettings,
    done: &[&Message],
    stats: &Stats,
) {
    let failed = crate::aws::sqs::delete(sqs, &settings.queue_url, done).await;
    stats
        .deleted
        .fetch_add((done.len() - failed.len()) as u64, Ordering::Relaxed);
    for (id, reason) in failed {
        tracing::warn!(message = %id, %reason,
            "delete failed: the message will come back and be skipped as a duplicate");
    }
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
        assert_eq!(recs[0].lane, format!("{arn}/g7"));
        assert_eq!(recs[0].failure_id, "m-1");
        assert_eq!(recs[0].message_key.as_deref(), Some("msg#m-1"));
        assert_eq!(recs[0].position, "18849496460467696128");
        assert_eq!(recs[0].arrival_ms, 1_764_000_000_123);
        assert_eq!(recs[0].payload, br#"{"x":1}"#);
        let no_id = Message::builder().body("b").build();
        assert!(matches!(
            records_of(&[no_id], arn, &opts),
            Err(EventError::Malformed { index: 0, .. })
        ));
    }
}
