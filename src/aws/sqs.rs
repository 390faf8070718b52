//! The SQS calls the runner and replay share: receive, delete, change
//! visibility, and the queue attributes they read. Errors are reduced to
//! text naming the operation and the queue.

use std::time::Duration;

use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message,
    MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

/// SQS's batch limit.
pub const SQS_BATCH: usize = 10;

/// Visible and in-flight messages of a queue (approximate, as SQS says).
pub async fn depth(client: &Client, url: &str) -> Result<(u64, u64), String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes on {url}: {}", DisplayErrorContext(e)))?;
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

pub async fn queue_arn(client: &Client, url: &str) -> Result<String, String> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes on {url}: {}", DisplayErrorContext(e)))?;
    out.attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .ok_or_else(|| format!("queue {url} has no QueueArn"))
}

/// Receives up to `n` messages, hiding them for `visibility`.
pub async fn receive(
    client: &Client,
    url: &str,
    n: usize,
    visibility: Duration,
    wait: Duration,
) -> Result<Vec<Message>, String> {
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
        .map_err(|e| format!("ReceiveMessage on {url}: {}", DisplayErrorContext(e)))?;
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
                let why = format!("not deleted: {}", DisplayErrorContext(e));
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
            tracing::warn!(queue = %url, error = %DisplayErrorContext(e),
                "could not make kept messages visible again; they return after their visibility timeout");
        }
    }
}
