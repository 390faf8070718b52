//! Where bad records go (DESIGN §6): an SQS queue in production, or the log
//! for local runs without one.
//!
//! An SQS message body is the JSON of the [`QuarantineItem`] (raw payload in
//! base64, source, lane, position, failure id, reason) plus
//! `payload_truncated`. Message attributes `reason` and `source` let an
//! operator filter without parsing bodies. A record too large for a message
//! is still quarantined: its payload is cut (at a base64 quantum, so the
//! prefix still decodes) and the body says so, because failing the send
//! would hold up the lane for a record that can never fit.

use crate::aws::error::error_text;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::pipeline::{QuarantineError, QuarantineItem, QuarantineSink};

/// SQS's classic message size limit (a queue may allow up to 1 MiB; see
/// [`SqsQuarantine::with_max_message_bytes`]).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Entries per `SendMessageBatch`.
const BATCH_MAX: usize = 10;
/// The `reason` and `source` attributes are for filtering; the body has the
/// whole text.
const ATTRIBUTE_MAX_CHARS: usize = 512;
/// Room left for SQS's own accounting of attribute names and types.
const SIZE_MARGIN: usize = 256;
/// Standard queues take chunks concurrently; FIFO ones in order.
const STANDARD_CONCURRENCY: usize = 4;

/// Sends quarantined records to an SQS queue (standard or FIFO).
pub struct SqsQuarantine {
    client: Client,
    queue_url: String,
    fifo: bool,
    max_message_bytes: usize,
}

impl SqsQuarantine {
    pub fn new(client: Client, queue_url: impl Into<String>) -> SqsQuarantine {
        let queue_url = queue_url.into();
        SqsQuarantine {
            client,
            fifo: queue_url.ends_with(".fifo"),
            queue_url,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// The queue's `MaximumMessageSize` when it differs from 256 KiB (it
    /// applies to a message and to the sum of a batch).
    pub fn with_max_message_bytes(mut self, bytes: usize) -> SqsQuarantine {
        self.max_message_bytes = bytes.max(1024);
        self
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    fn entry(
        &self,
        id: usize,
        item: &QuarantineItem,
    ) -> Result<(SendMessageBatchRequestEntry, usize), QuarantineError> {
        let mut attrs = Vec::with_capacity(2);
        for (name, value) in [("reason", &item.reason), ("source", &item.source_arn)] {
            let value = attribute_text(value);
            // SQS rejects empty attribute values.
            if !value.is_empty() {
                attrs.push((name, value));
            }
        }
        let attrs_bytes: usize = attrs
            .iter()
            .map(|(name, value)| name.len() + "String".len() + value.len())
            .sum();
        let budget = self
            .max_message_bytes
            .saturating_sub(attrs_bytes + SIZE_MARGIN);
        let body = fit_body(item, budget).map_err(QuarantineError::Build)?;
        let size = body.len() + attrs_bytes + SIZE_MARGIN;
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(id.to_string())
            .message_body(body);
        for (name, value) in attrs {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| QuarantineError::Build(format!("message attribute {name}: {e}")))?;
            entry = entry.message_attributes(name, attr);
        }
        if self.fifo {
            entry = entry
                .message_group_id(group_id(&item.lane))
                .message_deduplication_id(crate::aws::fnv1a64_hex(&[
                    item.source_arn.as_bytes(),
                    item.lane.as_bytes(),
                    item.position.as_bytes(),
                ]));
        }
        let entry = entry
            .build()
            .map_err(|e| QuarantineError::Build(e.to_string()))?;
        Ok((entry, size))
    }

    /// Sends one chunk; returns (batch index, result) per entry.
    async fn send_chunk(
        &self,
        chunk: Vec<(usize, SendMessageBatchRequestEntry)>,
    ) -> Vec<(usize, Result<(), QuarantineError>)> {
        let ids: Vec<usize> = chunk.iter().map(|(i, _)| *i).collect();
        let entries: Vec<SendMessageBatchRequestEntry> =
            chunk.into_iter().map(|(_, e)| e).collect();
        let res = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                let why = QuarantineError::Send(format!(
                    "SQS SendMessageBatch to {}: {}",
                    self.queue_url,
                    error_text(&e)
                ));
                return ids.into_iter().map(|i| (i, Err(why.clone()))).collect();
            }
        };
        ids.into_iter()
            .map(|i| {
                let id = i.to_string();
                let result = if out.successful().iter().any(|s| s.id() == id) {
                    Ok(())
                } else if let Some(f) = out.failed().iter().find(|f| f.id() == id) {
                    Err(QuarantineError::Send(format!(
                        "SQS rejected the message ({}{}): {}",
                        f.code(),
                        if f.sender_fault() {
                            ", sender fault"
                        } else {
                            ""
                        },
                        f.message().unwrap_or("no message")
                    )))
                } else {
                    Err(QuarantineError::Send(
                        "SQS SendMessageBatch returned no result for the message".into(),
                    ))
                };
                (i, result)
            })
            .collect()
    }
}

impl QuarantineSink for SqsQuarantine {
    async fn send(&self, items: &[QuarantineItem]) -> Vec<Result<(), QuarantineError>> {
        // Nothing counts as sent until SQS says so.
        let mut results: Vec<Result<(), QuarantineError>> =
            vec![Err(QuarantineError::Send("not sent".into())); items.len()];
        let mut entries = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match self.entry(i, item) {
                Ok((entry, size)) => entries.push((i, entry, size)),
                Err(why) => {
                    if let Some(r) = results.get_mut(i) {
                        *r = Err(why);
                    }
                }
            }
        }
        let sizes: Vec<usize> = entries.iter().map(|(_, _, size)| *size).collect();
        let mut entries = entries.into_iter();
        let chunks: Vec<Vec<(usize, SendMessageBatchRequestEntry)>> =
            plan_chunks(&sizes, self.max_message_bytes)
                .into_iter()
                .map(|n| entries.by_ref().take(n).map(|(i, e, _)| (i, e)).collect())
                .collect();
        let concurrency = if self.fifo { 1 } else { STANDARD_CONCURRENCY };
        let sends: Vec<_> = chunks.into_iter().map(|c| self.send_chunk(c)).collect();
        let done: Vec<Vec<(usize, Result<(), QuarantineError>)>> =
            stream::iter(sends).buffered(concurrency).collect().await;
        for (i, result) in done.into_iter().flatten() {
            if let Some(r) = results.get_mut(i) {
                *r = result;
            }
        }
        results
    }
}

/// A sink for local runs without a queue: it takes every item and counts
/// it as sent, and sends it nowhere. What is kept of the record is its one
/// `bad record quarantined` line (`telemetry::BadRecord`, written by the
/// app after the batch, saying "kept only in this log line"): source, lane,
/// position, reason and a bounded payload preview. Logging here too would
/// make two lines per record.
///
/// **It keeps nothing beyond the logs**, and of a large payload only its
/// first bytes: the records are done (their lanes go on). Never use it
/// where the records must be recoverable.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogQuarantine;

impl QuarantineSink for LogQuarantine {
    async fn send(&self, items: &[QuarantineItem]) -> Vec<Result<(), QuarantineError>> {
        items.iter().map(|_| Ok(())).collect()
    }
}

/// Either sink, chosen at start-up (the trait is not object safe).
pub enum Quarantine {
    Sqs(SqsQuarantine),
    Log(LogQuarantine),
}

impl QuarantineSink for Quarantine {
    async fn send(&self, items: &[QuarantineItem]) -> Vec<Result<(), QuarantineError>> {
        match self {
            Quarantine::Sqs(q) => q.send(items).await,
            Quarantine::Log(q) => q.send(items).await,
        }
    }
}

/// Chunk lengths for entries of these sizes: at most ten entries, whose
/// sizes add up to at most `max_bytes` (SQS applies the message limit to a
/// whole batch too), in order.
fn plan_chunks(sizes: &[usize], max_bytes: usize) -> Vec<usize> {
    let mut chunks = Vec::new();
    let (mut len, mut bytes) = (0usize, 0usize);
    for &size in sizes {
        if len > 0 && (len == BATCH_MAX || bytes + size > max_bytes) {
            chunks.push(len);
            (len, bytes) = (0, 0);
        }
        len += 1;
        bytes += size;
    }
    if len > 0 {
        chunks.push(len);
    }
    chunks
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    item: &'a QuarantineItem,
    payload_truncated: bool,
    /// Length of the whole base64 payload, when it was cut.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64_len: Option<usize>,
    /// Set only when even the reason had to be shortened.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    reason_truncated: bool,
}

fn to_json(
    item: &QuarantineItem,
    payload_base64_len: Option<usize>,
    reason_truncated: bool,
) -> Result<String, String> {
    serde_json::to_string(&Body {
        item,
        payload_truncated: payload_base64_len.is_some(),
        payload_base64_len,
        reason_truncated,
    })
    .map_err(|e| format!("quarantine message body: {e}"))
}

/// The body within `budget` bytes: whole when it fits, else with the
/// payload cut to fit, else (a huge reason) with the reason cut too.
fn fit_body(item: &QuarantineItem, budget: usize) -> Result<String, String> {
    let whole = to_json(item, None, false)?;
    if whole.len() <= budget {
        return Ok(whole);
    }
    let full_len = Some(item.payload.len());
    let mut cut = item.clone();
    cut.payload.clear();
    let bare = to_json(&cut, full_len, false)?;
    if bare.len() <= budget {
        // Base64 is ASCII and escapes to itself in JSON, so every byte of
        // room is one payload character; whole quanta of 4 still decode.
        let room = (budget - bare.len()) / 4 * 4;
        cut.payload = item
            .payload
            .get(..room.min(item.payload.len()))
            .unwrap_or("")
            .to_string();
        return to_json(&cut, full_len, false);
    }
    let mut keep = item.reason.len();
    loop {
        keep /= 2;
        cut.reason = format!("{}…", prefix(&item.reason, keep));
        let body = to_json(&cut, full_len, true)?;
        if body.len() <= budget || keep == 0 {
            return Ok(body);
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes ending on a char boundary.
fn prefix(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// Text SQS accepts in an attribute: at most [`ATTRIBUTE_MAX_CHARS`]
/// characters, characters outside SQS's allowed set replaced.
fn attribute_text(s: &str) -> String {
    s.chars()
        .take(ATTRIBUTE_MAX_CHARS)
        .map(|c| if sqs_allowed(c) { c } else { '\u{fffd}' })
        .collect()
}

/// SQS's allowed characters: #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD
/// #x10000-#x10FFFF (Rust chars are never surrogates).
fn sqs_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{fffe}' && c != '\u{ffff}')
}

/// A FIFO message group id: the lane itself when SQS accepts it (1-128
/// printable ASCII characters), else a stable digest of it, so one lane
/// always maps to one group.
fn group_id(lane: &str) -> String {
    let ok = !lane.is_empty() && lane.len() <= 128 && lane.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        lane.to_string()
    } else {
        format!("lane-{}", crate::aws::fnv1a64_hex(&[lane.as_bytes()]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn item(payload_len: usize, reason: &str) -> QuarantineItem {
        QuarantineItem {
            source_arn: "arn:aws:kinesis:us-east-1:1:stream/s".into(),
            lane: "shardId-000".into(),
            position: "42".into(),
            failure_id: "42".into(),
            reason: reason.into(),
            payload: base64::engine::general_purpose::STANDARD.encode(vec![7u8; payload_len]),
        }
    }

    #[test]
    fn chunks_hold_ten_entries_and_one_message_worth_of_bytes() {
        assert_eq!(plan_chunks(&[], 100), Vec::<usize>::new());
        assert_eq!(plan_chunks(&[1; 25], 1000), vec![10, 10, 5]);
        assert_eq!(plan_chunks(&[60, 30, 10, 20, 90], 100), vec![3, 1, 1]);
        // An entry at the limit travels alone.
        assert_eq!(plan_chunks(&[100, 100, 1], 100), vec![1, 1, 1]);
    }

    #[test]
    fn small_items_are_sent_whole() {
        let it = item(10, "bad json");
        let body = fit_body(&it, 4096).unwrap();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["payload"], it.payload.as_str());
        assert_eq!(v["payload_truncated"], false);
        assert_eq!(v["reason"], "bad json");
    }

    #[test]
    fn oversize_payload_is_cut_to_decodable_base64() {
        let it = item(10_000, "too big");
        let body = fit_body(&it, 2000).unwrap();
        assert!(body.len() <= 2000);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["payload_truncated"], true);
        assert_eq!(v["payload_base64_len"], it.payload.len());
        let cut = v["payload"].as_str().unwrap();
        assert!(it.payload.starts_with(cut) && cut.len() > 1000);
        let raw = base64::engine::general_purpose::STANDARD
            .decode(cut)
            .unwrap();
        assert!(raw.iter().all(|&b| b == 7));
    }

    #[test]
    fn a_huge_reason_is_cut_too() {
        let it = item(10, &"é".repeat(5000));
        let body = fit_body(&it, 1500).unwrap();
        assert!(body.len() <= 1500, "{}", body.len());
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["reason_truncated"], true);
        assert!(v["reason"].as_str().unwrap().starts_with("éé"));
    }

    #[test]
    fn attributes_and_group_ids_are_what_sqs_accepts() {
        assert_eq!(attribute_text("a\u{1}b"), "a\u{fffd}b");
        assert_eq!(attribute_text(&"x".repeat(2000)).len(), ATTRIBUTE_MAX_CHARS);
        assert_eq!(group_id("shardId-000"), "shardId-000");
        let long = "l".repeat(300);
        assert_eq!(group_id(&long), group_id(&long));
        assert!(group_id(&long).len() <= 128);
        assert!(group_id("with space").starts_with("lane-"));
    }
}
