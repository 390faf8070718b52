//! Shared by the bridge_* integration tests: the bridge (`App`) wired to a
//! real moto server (DynamoDB, SQS) and the in-process tickerplant
//! stand-in over TCP, hand-made Lambda events whose positions the tests
//! choose, and readers for what reached the stand-in and DynamoDB.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use serde_json::json;
use tickbridge::app::{App, Invocation, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::dynamodb::{ensure_table, DynamoStore};
use tickbridge::kdb::{Vector, K};
use tickbridge::pipeline::{BadRecords, BatchContext, PublishMode, RecordState, SchemaDecoder};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::tp::{spawn, RunningTp, TickerplantConfig};
use tickbridge::tplink::TpLink;
use tickbridge_tools::bench::events::sequence_number;

#[path = "../common/mod.rs"]
pub mod common;

pub use common::moto::{unique_name, MotoServer};

pub const REGION_ACCOUNT: &str = "us-east-1:123456789012";

/// How the bridge under test is set up; `Default` is the production
/// defaults with fast tickerplant timeouts.
pub struct Opts {
    pub bad_records: BadRecords,
    pub payload_keys: bool,
    pub margin: Duration,
    pub connect_timeout: Duration,
    pub chase_every_bytes: usize,
    pub publish: PublishMode,
    /// `None`: bad records go to the log.
    pub quarantine: Option<Quarantine>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            bad_records: BadRecords::Quarantine,
            payload_keys: true,
            margin: Duration::from_millis(300),
            connect_timeout: Duration::from_millis(200),
            chase_every_bytes: 4 * 1024 * 1024,
            publish: PublishMode::Sync,
            quarantine: None,
        }
    }
}

/// The bridge on a fresh DynamoDB table of the shared moto server.
pub struct Bridge {
    pub app: App,
    pub ddb: aws_sdk_dynamodb::Client,
    pub table: String,
}

pub async fn sdk() -> aws_config::SdkConfig {
    MotoServer::shared().sdk_config().await
}

pub async fn tp() -> RunningTp {
    spawn(TickerplantConfig::new(schemas())).await.unwrap()
}

/// A stand-in on a given address (a restart on the same port).
pub async fn tp_on(addr: SocketAddr) -> RunningTp {
    let mut config = TickerplantConfig::new(schemas());
    config.listen = addr;
    spawn(config).await.unwrap()
}

pub fn schemas() -> Vec<tickbridge::schema::Schema> {
    tickbridge::schema::embedded::schemas().unwrap()
}

impl Bridge {
    pub async fn new(tp: SocketAddr, opts: Opts) -> Bridge {
        let ddb = tickbridge::aws::dynamodb_client(&sdk().await);
        let table = unique_name("bridge");
        ensure_table(&ddb, &table).await.unwrap();
        Bridge::on_table(tp, opts, ddb, table)
    }

    /// A second bridge (another execution environment) on the same table.
    pub fn on_table(
        tp: SocketAddr,
        opts: Opts,
        ddb: aws_sdk_dynamodb::Client,
        table: String,
    ) -> Bridge {
        let mut config = Config::from_vars([
            ("TICKBRIDGE_TP".to_string(), tp.to_string()),
            ("TICKBRIDGE_STORE".to_string(), "dynamodb".to_string()),
            ("TICKBRIDGE_DEDUPE_TABLE".to_string(), table.clone()),
        ])
        .unwrap();
        config.tp_connect_timeout = opts.connect_timeout;
        config.tp_read_timeout = Duration::from_secs(5);
        config.pipeline.bad_records = opts.bad_records;
        config.pipeline.deadline_margin = opts.margin;
        config.pipeline.chase_every_bytes = opts.chase_every_bytes;
        config.pipeline.publish = opts.publish;
        let catalog = Arc::new(tickbridge::app::load_catalog(&config).unwrap());
        let link = TpLink::from_config(&config).unwrap();
        let app = App::with_parts(
            config,
            Store::Dynamo(DynamoStore::new(ddb.clone(), table.clone(), 16)),
            link,
            opts.quarantine.unwrap_or(Quarantine::Log(LogQuarantine)),
            SchemaDecoder::new(catalog, opts.payload_keys),
        );
        Bridge { app, ddb, table }
    }

    pub async fn handle(&self, event: &serde_json::Value, budget: Duration) -> Invocation {
        let ctx = BatchContext::with_budget(unique_name("req"), budget);
        self.app
            .handle(event.to_string().as_bytes(), &ctx)
            .await
            .unwrap()
    }

    /// `handle` with a generous budget.
    pub async fn run(&self, event: &serde_json::Value) -> Invocation {
        self.handle(event, Duration::from_secs(30)).await
    }

    /// The stored item with this partition key, read consistently.
    pub async fn item(&self, pk: &str) -> Option<HashMap<String, AttributeValue>> {
        self.ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
    }

    /// A Kinesis lane checkpoint (`seq`), if any.
    pub async fn checkpoint(&self, lane: &str) -> Option<String> {
        let item = self.item(&format!("ckpt#{lane}")).await?;
        match item.get("seq") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            other => panic!("checkpoint without a string seq: {other:?}"),
        }
    }

    /// The `status` of a dedupe key item (`msg#<id>` for SQS), if any.
    pub async fn key_status(&self, key: &str) -> Option<String> {
        let item = self.item(&format!("key#{key}")).await?;
        match item.get("status") {
            Some(AttributeValue::S(s)) => Some(s.clone()),
            other => panic!("key item without a string status: {other:?}"),
        }
    }

    /// Every item in the table (small tables only).
    pub async fn scan_count(&self) -> usize {
        let out = self
            .ddb
            .scan()
            .table_name(&self.table)
            .send()
            .await
            .unwrap();
        out.items.unwrap_or_default().len()
    }
}

/// A trade whose `size` carries `n`, so the stand-in's rows can be named;
/// `sym` names the lane it was sent in.
pub fn trade(n: i64, sym: &str) -> String {
    json!({"type": "trade", "id": format!("t-{n}"), "sym": sym,
           "price": 100.0 + n as f64 / 100.0, "size": n, "side": "B"})
    .to_string()
}

/// Wrong type in `price`: a permanent decoding error.
pub fn bad_trade(n: i64, sym: &str) -> String {
    json!({"type": "trade", "id": format!("t-{n}"), "sym": sym,
           "price": "n/a", "size": n, "side": "B"})
    .to_string()
}

pub fn stream_arn(stream: &str) -> String {
    format!("arn:aws:kinesis:{REGION_ACCOUNT}:stream/{stream}")
}

/// The lane id of a shard, as the source parser forms it.
pub fn shard_lane(stream: &str, shard: usize) -> String {
    format!("{}/shardId-{shard:012}", stream_arn(stream))
}

/// The sequence number `seqn` of shard `shard`: 56 digits, increasing.
pub fn seq(shard: usize, seqn: usize) -> String {
    sequence_number(shard, seqn)
}

/// A Kinesis event of `(shard, seqn, payload)` records, in the given order.
pub fn kinesis(stream: &str, records: &[(usize, usize, String)]) -> serde_json::Value {
    let arn = stream_arn(stream);
    let recs: Vec<serde_json::Value> = records
        .iter()
        .map(|(shard, seqn, payload)| {
            let seq = seq(*shard, *seqn);
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": format!("pk-{seqn}"),
                    "sequenceNumber": seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(payload),
                    "approximateArrivalTimestamp": 1_764_000_000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-{shard:012}:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/tickbridge",
                "awsRegion": "us-east-1",
                "eventSourceARN": arn,
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// A one-shard Kinesis event of `(seqn, payload)` records.
pub fn kinesis_shard0(stream: &str, records: &[(usize, String)]) -> serde_json::Value {
    let recs: Vec<(usize, usize, String)> =
        records.iter().map(|(n, p)| (0, *n, p.clone())).collect();
    kinesis(stream, &recs)
}

pub fn queue_arn(queue: &str) -> String {
    format!("arn:aws:sqs:{REGION_ACCOUNT}:{queue}")
}

/// An SQS FIFO message: group, message id, body.
pub struct Msg {
    pub group: &'static str,
    pub id: String,
    pub body: String,
}

pub fn msg(group: &'static str, id: &str, body: String) -> Msg {
    Msg {
        group,
        id: id.to_string(),
        body,
    }
}

/// An SQS FIFO event with the messages in the given order.
pub fn sqs(queue: &str, msgs: &[Msg]) -> serde_json::Value {
    let arn = queue_arn(queue);
    let recs: Vec<serde_json::Value> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "messageId": m.id,
                "receiptHandle": format!("handle-{}", m.id),
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": (1_764_000_000_000u64 + i as u64).to_string(),
                    "SequenceNumber": format!("{:020}", 18_849_496_460_467_696_128u128 + i as u128),
                    "MessageGroupId": m.group,
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "MessageDeduplicationId": format!("dedup-{}", m.id),
                    "ApproximateFirstReceiveTimestamp": (1_764_000_000_000u64 + i as u64).to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// `(sym, size)` of every trade row in the stand-in, in arrival order.
pub fn trades(tp: &RunningTp) -> Vec<(String, i64)> {
    let Some(t) = tp.table("trade") else {
        return Vec::new();
    };
    let col = |name: &str| {
        let i = t.names.iter().position(|n| n == name).unwrap();
        t.columns[i].clone()
    };
    let (K::Vector(_, Vector::Symbol(syms)), K::Vector(_, Vector::Long(sizes))) =
        (col("sym"), col("size"))
    else {
        panic!("trade columns have unexpected types");
    };
    syms.into_iter().zip(sizes).collect()
}

/// The sizes of the stand-in's trade rows of one sym, in arrival order.
pub fn sizes_of(tp: &RunningTp, sym: &str) -> Vec<i64> {
    trades(tp)
        .into_iter()
        .filter(|(s, _)| s == sym)
        .map(|(_, n)| n)
        .collect()
}

/// The batch response's identifiers.
pub fn failures(inv: &Invocation) -> Vec<String> {
    inv.response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect()
}

pub fn count_states(inv: &Invocation, f: impl Fn(&RecordState) -> bool) -> usize {
    inv.states.iter().filter(|s| f(s)).count()
}

pub fn forwarded(inv: &Invocation) -> usize {
    count_states(inv, |s| *s == RecordState::Forwarded)
}

pub fn duplicates(inv: &Invocation) -> usize {
    count_states(inv, |s| *s == RecordState::Duplicate)
}

pub fn pending(inv: &Invocation) -> usize {
    count_states(inv, |s| matches!(s, RecordState::Pending { .. }))
}

/// A loopback port where nothing listens (bound, then released).
pub fn closed_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], common::free_port()))
}
