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
use serde_json::json;

use super::sdk_err;
use super::shutdown::Shutdown;
use super::{kinesis::RunError, Stats};
use crate::app::App;
use crate::pipeline::BatchContext;

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
    let region = arn.split(':').nth(3).unwrap_or("").to_string();
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
        let event = sqs_event(&arn, &region, &messages);
        let ctx = BatchContext::with_budget(&request_id, settings.batch_timeout);
        let failed: HashSet<String> = match app.handle(event.as_bytes(), &ctx).await {
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

/// The messages as the Lambda SQS event the mapping would deliver, so
/// `App::handle` builds exactly the Lambda path's `Record`s.
pub fn sqs_event(queue_arn: &str, region: &str, messages: &[Message]) -> String {
    let recs: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), json!(v)))
                        .collect()
                })
                .unwrap_or_default();
            let message_attributes: serde_json::Map<String, serde_json::Value> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                json!({
                                    "stringValue": v.string_value(),
                                    "dataType": v.data_type(),
                                }),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body().unwrap_or_default(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": recs }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::event::{parse_event, SourceOptions};

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
        let ev = sqs_event(arn, "us-east-1", &[m]);
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(recs[0].lane, format!("{arn}/g7"));
        assert_eq!(recs[0].failure_id, "m-1");
        assert_eq!(recs[0].message_key.as_deref(), Some("msg#m-1"));
        assert_eq!(recs[0].position, "18849496460467696128");
        assert_eq!(recs[0].arrival_ms, 1_764_000_000_123);
        assert_eq!(recs[0].payload, br#"{"x":1}"#);
    }
}
