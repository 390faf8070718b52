//! Shared by the s3_* end-to-end tests: the bridge (`App`) on a moto
//! server (S3, SQS, DynamoDB) and the tickerplant stand-in over TCP, with
//! the embedded schemas plus `obj`, a default-routed table that takes CSV.
#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use tickbridge::app::{App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::dynamodb::{ensure_table, DynamoStore};
use tickbridge::kdb::{Vector, K};
use tickbridge::pipeline::{BadRecords, SchemaDecoder};
use tickbridge::quarantine::{LogQuarantine, Quarantine, SqsQuarantine};
use tickbridge::schema::{Catalog, Schema};
use tickbridge::tp::{spawn, RunningTp, TickerplantConfig};
use tickbridge::tplink::TpLink;

#[path = "../common/mod.rs"]
pub mod common;

pub use common::moto::{unique_name, MotoServer};

/// Rows without a `type` (and CSV objects) land here.
pub const OBJ_SCHEMA: &str = r#"{"table":"obj","route":{"default":true},"csv":{},
  "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
    {"name":"sym","type":"symbol"},{"name":"price","type":"float"},
    {"name":"size","type":"long"}]}"#;

pub fn schemas() -> Vec<Schema> {
    let mut s = tickbridge::schema::embedded::schemas().unwrap();
    s.push(serde_json::from_str(OBJ_SCHEMA).unwrap());
    s
}

pub async fn sdk() -> aws_config::SdkConfig {
    MotoServer::shared().sdk_config().await
}

pub async fn s3() -> aws_sdk_s3::Client {
    tickbridge::s3::claim_check::s3_client(&sdk().await)
}

pub async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk().await)
}

pub async fn tp() -> RunningTp {
    spawn(TickerplantConfig::new(schemas())).await.unwrap()
}

pub async fn bucket(s3: &aws_sdk_s3::Client) -> String {
    let name = unique_name("tb-in").to_lowercase();
    s3.create_bucket().bucket(&name).send().await.unwrap();
    name
}

/// Puts an object; its ETag without quotes.
pub async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body))
        .send()
        .await
        .unwrap();
    out.e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// How the bridge under test is set up.
pub struct Opts {
    pub bad_records: BadRecords,
    pub margin: Duration,
    pub flush_rows: usize,
    pub quarantine: Option<Quarantine>,
    pub delete_after_commit: bool,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            bad_records: BadRecords::Quarantine,
            margin: Duration::from_millis(300),
            flush_rows: 100_000,
            quarantine: None,
            delete_after_commit: false,
        }
    }
}

/// A DynamoDB table on the shared moto server.
pub async fn dedupe_table() -> (aws_sdk_dynamodb::Client, String) {
    let ddb = tickbridge::aws::dynamodb_client(&sdk().await);
    let table = unique_name("s3e2e");
    ensure_table(&ddb, &table).await.unwrap();
    (ddb, table)
}

/// A bridge (one execution environment) on the given dedupe table.
pub async fn bridge(tp: &RunningTp, table: &(aws_sdk_dynamodb::Client, String), opts: Opts) -> App {
    let mut vars = vec![
        ("TICKBRIDGE_TP".to_string(), tp.local_addr().to_string()),
        ("TICKBRIDGE_STORE".to_string(), "dynamodb".to_string()),
        ("TICKBRIDGE_DEDUPE_TABLE".to_string(), table.1.clone()),
        (
            "TICKBRIDGE_S3_FLUSH_ROWS".to_string(),
            opts.flush_rows.to_string(),
        ),
    ];
    if opts.delete_after_commit {
        vars.push((
            "TICKBRIDGE_CLAIM_CHECK_DELETE".to_string(),
            "after-commit".to_string(),
        ));
    }
    let mut config = Config::from_vars(vars).unwrap();
    config.tp_connect_timeout = Duration::from_millis(500);
    config.pipeline.bad_records = opts.bad_records;
    config.pipeline.deadline_margin = opts.margin;
    let catalog = Arc::new(Catalog::from_schemas(schemas()).unwrap());
    let link = TpLink::from_config(&config).unwrap();
    App::with_parts(
        config,
        Store::Dynamo(DynamoStore::new(table.0.clone(), table.1.clone(), 16)),
        link,
        opts.quarantine.unwrap_or(Quarantine::Log(LogQuarantine)),
        SchemaDecoder::new(catalog, true),
    )
    .with_s3_client(s3().await)
}

/// A quarantine queue on moto, and its URL.
pub async fn quarantine_queue() -> (Quarantine, String) {
    let sqs = sqs().await;
    let url = sqs
        .create_queue()
        .queue_name(unique_name("quarantine"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    (Quarantine::Sqs(SqsQuarantine::new(sqs, url.clone())), url)
}

/// Every message body on a queue (receives until two empty answers).
pub async fn drain(url: &str) -> Vec<serde_json::Value> {
    let sqs = sqs().await;
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let msgs = r.messages.unwrap_or_default();
        if msgs.is_empty() {
            empty += 1;
            continue;
        }
        for m in msgs {
            out.push(serde_json::from_str(m.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

/// `(sym, size)` of the stand-in's rows of `table`, in arrival order.
pub fn rows(tp: &RunningTp, table: &str) -> Vec<(String, i64)> {
    let Some(t) = tp.table(table) else {
        return Vec::new();
    };
    let col = |name: &str| {
        let i = t.names.iter().position(|n| n == name).unwrap();
        t.columns[i].clone()
    };
    let (K::Vector(_, Vector::Symbol(syms)), K::Vector(_, Vector::Long(sizes))) =
        (col("sym"), col("size"))
    else {
        panic!("{table} columns have unexpected types");
    };
    syms.into_iter().zip(sizes).collect()
}

/// S3's own notification for objects `(bucket, key, etag)`, keys
/// URL-encoded as S3 writes them.
pub fn notification(objects: &[(&str, &str, &str)]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = objects
        .iter()
        .enumerate()
        .map(|(i, (bucket, key, etag))| {
            serde_json::json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2025-01-02T03:04:05.000Z", "eventName": "ObjectCreated:Put",
                "s3": {"s3SchemaVersion": "1.0", "configurationId": "tickbridge",
                  "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
                  "object": {"key": key.replace(' ', "+"), "size": 1, "eTag": etag,
                             "sequencer": format!("00{i:016X}")}}
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// EventBridge's `Object Created` for one object.
pub fn eventbridge(bucket: &str, key: &str, etag: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": unique_name("eb"), "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2025-01-02T03:04:05Z",
        "region": "us-east-1", "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket},
          "object": {"key": key, "size": 1, "etag": etag, "sequencer": "0001"},
          "request-id": "r", "requester": "123456789012", "reason": "PutObject"}
    })
}

/// An SQS FIFO Lambda event of `(group, message id, body)` messages.
pub fn sqs_event(queue: &str, msgs: &[(&str, &str, String)]) -> serde_json::Value {
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
    let recs: Vec<serde_json::Value> = msgs
        .iter()
        .enumerate()
        .map(|(i, (group, id, body))| {
            serde_json::json!({
                "messageId": id, "receiptHandle": format!("h-{id}"), "body": body,
                "attributes": {"ApproximateReceiveCount": "1",
                  "SentTimestamp": (1_764_000_000_000u64 + i as u64).to_string(),
                  "SequenceNumber": format!("{:020}", 18_849_496_460_467_696_128u128 + i as u128),
                  "MessageGroupId": group, "MessageDeduplicationId": format!("d-{id}")},
                "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                "eventSourceARN": arn, "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::json!({ "Records": recs })
}
