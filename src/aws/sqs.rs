//! The SQS calls the runner and replay share: receive, delete, change
//! visibility, and the queue attributes they read. A failed call is an
//! [`SqsError`] naming the operation, the queue and the cause in one line.

use std::time::Duration;

use super::error::error_text;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

/// SQS's batch limit.
pub const SQS_BATCH: usize = 10;

/// An SQS call that failed: which, on which queue, and why (the SDK error's
/// source chain in one line, where the service's code and message are,
/// without the SDK's Debug dump of the HTTP response).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SQS {op} on {queue}: {cause}")]
pub struct SqsError {
    pub op: &'static str,
    pub queue: String,
    pub cause: String,
}

impl SqsError {
    fn new(op: &'static str, queue: &str, cause: impl Into<String>) -> SqsError {
        SqsError {
            op,
            queue: queue.to_string(),
            cause: cause.into(),
        }
    }

    fn sdk(op: &'static str, queue: &str, e: impl std::error::Error + 'static) -> SqsError {
        SqsError::new(op, queue, error_text(&e))
    }
}

/// Visible and in-flight messages of a queue (approximate, as SQS says).
pub async fn depth(client: &Client, url: &str) -> Result<(u64, u64), SqsError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| SqsError::sdk("GetQueueAttributes", url, e))?;
    let attrs = out.attributes.unwrap_or_default();
    let get = |a: QueueAttributeName| {
        attrs
            .get(&a)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((
        get(QueueAttributeName::ApproximateNumberOfMessages),
        get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

pub async fn queue_arn(client: &Client, url: &str) -> Result<String, SqsError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| SqsError::sdk("GetQueueAttributes", url, e))?;
    out.attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| SqsError::new("GetQueueAttributes", url, "the answer has no QueueArn"))
}

/// Receives up to `n` messages, hiding them for `visibility`.
pub async fn receive(
    client: &Client,
    url: &str,
    n: usize,
    visibility: Duration,
    wait: Duration,
) -> Result<Vec<Message>, SqsError> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(n.clamp(1, SQS_BATCH) as i32)
        .visibility_timeout(visibility.as_secs().max(1) as i32)
        .wait_time_seconds(wait.as_secs() as i32)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(|e| SqsError::sdk("ReceiveMessage", url, e))?;
    Ok(out.messages.unwrap_or_default())
}

/// Deletes messages by receipt handle; returns the `(message id, reason)`
/// of those SQS did not delete.
pub async fn delete(client: &Client, url: &str, msgs: &[&Message]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for chunk in msgs.chunks(SQS_BATCH) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let name = |id: &str| {
            id.parse::<usize>()
                .ok()
                .and_then(|i| chunk.get(i))
                .and_then(|m| m.message_id())
                .unwrap_or("?")
                .to_string()
        };
        match client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(out) => {
                for f in out.failed {
                    failed.push((name(&f.id), format!("not deleted: {}", f.code)));
                }
            }
            Err(e) => {
                let why = format!("not deleted: {}", error_text(&e));
                for m in chunk {
                    failed.push((m.message_id().unwrap_or("?").to_string(), why.clone()));
                }
            }
        }
    }
    failed
}

/// Makes held messages visible again at once, so the next run (or the
/// next consumer) need not wait out their visibility timeout.
pub async fn release(client: &Client, url: &str, msgs: &[Message]) {
    set_visibility(client, url, msgs, Duration::ZERO).await
}

/// Sets the messages' visibility timeout from now.
pub async fn set_visibility(client: &Client, url: &str, msgs: &[Message], timeout: Duration) {
    for chunk in msgs.chunks(SQS_BATCH) {
        let entries: Vec<ChangeMessageVisibilityBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .visibility_timeout(timeout.as_secs() as i32)
                    .build()
                    .ok()
            })
            .collect();
        if let Err(e) = client
            .change_message_visibility_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            tracing::warn!(queue = %url, error = %error_text(&e),
                "could not make kept messages visible again; they return after their visibility timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_call_the_queue_and_the_cause() {
        let e = SqsError::new(
            "ReceiveMessage",
            "http://localhost:5000/000000000000/q.fifo",
            "AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist",
        );
        assert_eq!(
            e.to_string(),
            "SQS ReceiveMessage on http://localhost:5000/000000000000/q.fifo: \
             AWS.SimpleQueueService.NonExistentQueue: The specified queue does not exist"
        );
    }

    /// Against a port nobody listens on: the cause is the SDK's chain in
    /// one line, without its Debug dump.
    #[tokio::test]
    async fn a_failed_call_is_one_line_without_debug() {
        let sdk = crate::aws::local_config("http://127.0.0.1:9").await;
        let client = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(&sdk)
                .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
                .build(),
        );
        let e = queue_arn(&client, "http://127.0.0.1:9/000000000000/q")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.op, "GetQueueAttributes");
        assert!(
            text.starts_with("SQS GetQueueAttributes on http://127.0.0.1:9/000000000000/q: "),
            "{text}"
        );
        assert!(!text.contains('\n') && !text.contains("{ "), "{text}");
    }
}
