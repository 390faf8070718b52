//! Shared by the replay tests: dead-letter and on-failure queues on moto,
//! streams on kinesis-local, the bridge of `bridge_support` turned into a
//! replayer, and a tickerplant proxy that can stop passing updates at a
//! batch boundary (to kill a replay mid-batch without a half-sent batch).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "../bridge_support/mod.rs"]
pub mod bridge;

pub use bridge::common::kinesis_local::{create_stream, KinesisLocal};
pub use bridge::*;
use tickbridge::replay::{Options, Replayer};

pub async fn sqs_client() -> aws_sdk_sqs::Client {
    tickbridge::aws::sqs_client(&sdk().await)
}

/// A FIFO queue (content-based deduplication off: ids are given).
pub async fn fifo_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> String {
    let name = format!("{}.fifo", unique_name(prefix));
    sqs.create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

pub async fn standard_queue(sqs: &aws_sdk_sqs::Client, prefix: &str) -> String {
    sqs.create_queue()
        .queue_name(unique_name(prefix))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap()
}

/// A message as it sits in a FIFO DLQ: its group, and its original message
/// id in the deduplication id (what SQS does when it moves a message).
pub struct DlqMsg {
    pub group: String,
    pub original_id: String,
    pub body: String,
}

pub async fn fill_fifo_dlq(sqs: &aws_sdk_sqs::Client, url: &str, msgs: &[DlqMsg]) {
    for chunk in msgs.chunks(10) {
        let entries: Vec<SendMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .message_group_id(&m.group)
                    .message_deduplication_id(&m.original_id)
                    .build()
                    .unwrap()
            })
            .collect();
        let out = sqs
            .send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
    }
}

pub async fn send_bodies(sqs: &aws_sdk_sqs::Client, url: &str, bodies: &[String]) {
    for b in bodies {
        sqs.send_message()
            .queue_url(url)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
}

/// `(visible, in flight)`.
pub async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> (u64, u64) {
    tickbridge::aws::sqs::depth(sqs, url).await.unwrap()
}

/// The bridge's App as a replayer on the bridge's table.
pub fn replayer(bridge: Bridge, opts: Options) -> Replayer {
    Replayer::new(bridge.app, opts)
}

/// The SQS event the bridge got for these DLQ messages the first time
/// (their ids are the original ids).
pub fn first_delivery(queue: &str, msgs: &[&DlqMsg]) -> serde_json::Value {
    let arn = queue_arn(queue);
    let recs: Vec<serde_json::Value> = msgs
        .iter()
        .map(|m| {
            json!({"messageId": m.original_id, "receiptHandle": "h", "body": m.body,
                   "attributes": {"MessageGroupId": m.group}, "messageAttributes": {},
                   "eventSource": "aws:sqs", "eventSourceARN": arn})
        })
        .collect();
    json!({ "Records": recs })
}

/// Puts trades `from..to` (size = n, sym given) into shard 0 of a
/// one-shard stream; returns each record's sequence number, in order.
pub async fn put_trades(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    from: i64,
    to: i64,
    sym: &str,
) -> Vec<String> {
    let mut seqs = Vec::new();
    let ns: Vec<i64> = (from..to).collect();
    for chunk in ns.chunks(500) {
        let entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .map(|n| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(trade(*n, sym).into_bytes()))
                    .partition_key(format!("pk-{n}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = kinesis
            .put_records()
            .stream_name(stream)
            .set_records(Some(entries))
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_record_count, Some(0));
        for r in out.records {
            seqs.push(r.sequence_number.unwrap());
        }
    }
    seqs
}

/// A Lambda on-failure record for `start..=end` of a shard.
pub fn on_failure(stream_arn: &str, shard: &str, start: &str, end: &str, size: usize) -> String {
    json!({
        "requestContext": {"requestId": "5b1f6c5e-0d0f-4a7e-9a83-6b8f0c1e1f00",
            "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:tickbridge",
            "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
            "functionError": "Unhandled"},
        "version": "1.0",
        "timestamp": "2026-11-25T10:00:00.000Z",
        "KinesisBatchInfo": {"shardId": shard, "startSequenceNumber": start,
            "endSequenceNumber": end, "approximateArrivalOfFirstRecord": "2026-11-25T09:59:58.000Z",
            "approximateArrivalOfLastRecord": "2026-11-25T09:59:59.000Z",
            "batchSize": size, "streamArn": stream_arn}
    })
    .to_string()
}

/// The same record wrapped in an SNS notification (SNS destination → SQS).
pub fn sns_wrapped(record: &str) -> String {
    json!({"Type": "Notification", "MessageId": "0f4b3f4e-sns",
           "TopicArn": "arn:aws:sns:us-east-1:123456789012:tickbridge-failures",
           "Message": record, "Timestamp": "2026-11-25T10:00:01.000Z"})
    .to_string()
}

/// A TCP proxy to the tickerplant that passes whole kdb+ IPC messages and,
/// once armed, stops passing client messages after the `freeze_after`-th
/// sync message (a chaser) has gone through: the batch that chaser confirms
/// is complete, the next batch never reaches the tickerplant.
pub struct FreezingProxy {
    pub addr: SocketAddr,
    /// Bytes the proxy holds back since it froze.
    pub held: Arc<AtomicUsize>,
    pub syncs: Arc<AtomicUsize>,
    frozen: Arc<AtomicBool>,
}

impl FreezingProxy {
    pub async fn start(upstream: SocketAddr, freeze_after: usize) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let held = Arc::new(AtomicUsize::new(0));
        let syncs = Arc::new(AtomicUsize::new(0));
        let frozen = Arc::new(AtomicBool::new(false));
        let (h, s, f) = (held.clone(), syncs.clone(), frozen.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pump(
                    client,
                    server,
                    freeze_after,
                    h.clone(),
                    s.clone(),
                    f.clone(),
                ));
            }
        });
        FreezingProxy {
            addr,
            held,
            syncs,
            frozen,
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    freeze_after: usize,
    held: Arc<AtomicUsize>,
    syncs: Arc<AtomicUsize>,
    frozen: Arc<AtomicBool>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
    });
    // The handshake: credentials and capability up to a zero byte.
    let mut byte = [0u8; 1];
    loop {
        if cr.read_exact(&mut byte).await.is_err() || sw.write_all(&byte).await.is_err() {
            return;
        }
        if byte[0] == 0 {
            break;
        }
    }
    loop {
        let mut header = [0u8; 8];
        if cr.read_exact(&mut header).await.is_err() {
            return;
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(8)];
        if cr.read_exact(&mut body).await.is_err() {
            return;
        }
        if frozen.load(Ordering::SeqCst) {
            held.fetch_add(len, Ordering::SeqCst);
            continue;
        }
        if sw.write_all(&header).await.is_err() || sw.write_all(&body).await.is_err() {
            return;
        }
        if header[1] == 1 && syncs.fetch_add(1, Ordering::SeqCst) + 1 >= freeze_after {
            frozen.store(true, Ordering::SeqCst);
        }
    }
}

/// Waits until `f` holds, up to `limit`.
pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}
