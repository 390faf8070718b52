//! `tickbridge bench events`: realistic Lambda event files for benchmarks,
//! `invoke` and tests. Kinesis events carry base64 data and 56-digit
//! sequence numbers; SQS FIFO events carry message groups. Producer
//! duplicates repeat an earlier record's business id and payload under a new
//! position; bad records are malformed JSON or carry wrong types.

use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use serde_json::json;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Event source to imitate.
    #[arg(long, value_parser = ["kinesis", "sqs"], default_value = "kinesis")]
    pub source: String,
    /// Records in the event.
    #[arg(long, default_value_t = 1000)]
    pub records: usize,
    /// Payload shape (only `trade` and `quote` are generated).
    #[arg(long, value_parser = ["trade", "quote"], default_value = "trade")]
    pub schema: String,
    /// Percentage of producer duplicates (same id and payload, new position).
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Percentage of records that cannot be decoded.
    #[arg(long, default_value_t = 0.0)]
    pub bad: f64,
    /// Kinesis shards (one batch holds one shard; more make several lanes
    /// per partition key with `TICKBRIDGE_LANES_BY_PARTITION_KEY`) or SQS
    /// message groups.
    #[arg(long, default_value_t = 1)]
    pub lanes: usize,
    /// Random seed, for reproducible files.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Output file (default: stdout).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// A small deterministic generator (xorshift64*), so files are reproducible.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn percent(&mut self, p: f64) -> bool {
        (self.below(1_000_000) as f64) < p * 10_000.0
    }
}

const SYMS: [&str; 8] = ["AAPL", "MSFT", "GOOG", "AMZN", "IBM", "KX", "NVDA", "TSLA"];

/// One JSON payload of the given shape; `n` makes the business id.
pub fn payload(schema: &str, n: usize, rng: &mut Rng) -> String {
    let sym = SYMS[rng.below(SYMS.len() as u64) as usize];
    let secs = 34_200 + (n as u64 / 100);
    let nanos = rng.below(1_000_000_000);
    let time = format!(
        "2026-11-25T{:02}:{:02}:{:02}.{:09}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        nanos
    );
    let price = 100.0 + rng.below(100_000) as f64 / 100.0;
    match schema {
        "quote" => json!({
            "type": "quote", "id": format!("q-{n:08}"), "time": time, "sym": sym,
            "bid": price, "ask": price + 0.01,
            "bsize": 100 * (1 + rng.below(20)), "asize": 100 * (1 + rng.below(20)),
        }),
        _ => json!({
            "type": "trade", "id": format!("t-{n:08}"), "time": time, "sym": sym,
            "price": price, "size": 100 * (1 + rng.below(50)),
            "side": if rng.below(2) == 0 { "B" } else { "S" },
        }),
    }
    .to_string()
}

fn bad_payload(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => "{\"type\":\"trade\",\"sym\":".to_string(),
        1 => json!({"type": "trade", "id": "bad", "time": "yesterday", "sym": "AAPL", "price": "cheap", "size": 1, "side": "B"}).to_string(),
        _ => json!({"type": "trade", "id": "bad", "sym": "AAPL", "price": 1.0, "size": 1e300, "side": "B"}).to_string(),
    }
}

/// The payloads of an event, in order, with duplicates and bad records mixed in.
pub fn payloads(args: &Args) -> Vec<String> {
    let mut rng = Rng::new(args.seed);
    let mut out: Vec<String> = Vec::with_capacity(args.records);
    let mut fresh = 0usize;
    for _ in 0..args.records {
        if !out.is_empty() && rng.percent(args.duplicates) {
            let i = rng.below(out.len() as u64) as usize;
            out.push(out[i].clone());
        } else if rng.percent(args.bad) {
            out.push(bad_payload(&mut rng));
        } else {
            out.push(payload(&args.schema, fresh, &mut rng));
            fresh += 1;
        }
    }
    out
}

/// A 56-digit sequence number, increasing with `n`, as Kinesis gives them.
pub fn sequence_number(shard: usize, n: usize) -> String {
    format!("4959{:020}{:04}{:028}", 33_827_149_025_660_855u64, shard, n)
}

pub fn kinesis_event(payloads: &[String], shards: usize, stream: &str) -> serde_json::Value {
    let bytes: Vec<&[u8]> = payloads.iter().map(|p| p.as_bytes()).collect();
    kinesis_event_bytes(&bytes, shards, stream)
}

/// [`kinesis_event`] for records whose data is any bytes (KPL aggregates).
pub fn kinesis_event_bytes(payloads: &[&[u8]], shards: usize, stream: &str) -> serde_json::Value {
    let arn = format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}");
    let records: Vec<serde_json::Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let shard = i % shards.max(1);
            let seq = sequence_number(shard, i);
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": format!("pk-{}", i % 16),
                    "sequenceNumber": seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(p),
                    "approximateArrivalTimestamp": 1_764_000_000.0 + i as f64 / 1000.0,
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
    json!({ "Records": records })
}

pub fn sqs_event(payloads: &[String], groups: usize, queue: &str) -> serde_json::Value {
    let arn = format!("arn:aws:sqs:us-east-1:123456789012:{queue}");
    let records: Vec<serde_json::Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "messageId": format!("00000000-0000-4000-8000-{i:012}"),
                "receiptHandle": format!("handle-{i}"),
                "body": p,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": (1_764_000_000_000u64 + i as u64).to_string(),
                    "SequenceNumber": format!("{:020}", 18_849_496_460_467_696_128u128 + i as u128),
                    "MessageGroupId": format!("group-{}", i % groups.max(1)),
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "MessageDeduplicationId": format!("dedup-{i}"),
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
    json!({ "Records": records })
}

pub fn event(args: &Args) -> serde_json::Value {
    let p = payloads(args);
    match args.source.as_str() {
        "sqs" => sqs_event(&p, args.lanes, "trades.fifo"),
        _ => kinesis_event(&p, args.lanes, "trades"),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = event(&args).to_string();
    match &args.out {
        Some(path) => std::fs::write(path, text)?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickbridge::source::event::{parse_event, SourceOptions};
    use tickbridge::source::seqno::cmp_seq;

    fn args(source: &str) -> Args {
        Args {
            source: source.into(),
            records: 500,
            schema: "trade".into(),
            duplicates: 10.0,
            bad: 2.0,
            lanes: 3,
            seed: 1,
            out: None,
        }
    }

    #[test]
    fn kinesis_events_parse_back_with_56_digit_increasing_sequences() {
        let ev = event(&args("kinesis")).to_string();
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(recs.len(), 500);
        assert!(recs
            .iter()
            .all(|r| r.position.len() == 56 && r.defect.is_none()));
        for pair in recs.windows(2) {
            if pair[0].lane == pair[1].lane {
                assert!(cmp_seq(&pair[0].position, &pair[1].position).is_lt());
            }
        }
        let bad = recs
            .iter()
            .filter(|r| !r.payload.starts_with(b"{\""))
            .count()
            + recs
                .iter()
                .filter(|r| String::from_utf8_lossy(&r.payload).contains("\"bad\""))
                .count();
        assert!(bad > 0, "some bad records");
        let distinct: std::collections::HashSet<&Vec<u8>> =
            recs.iter().map(|r| &r.payload).collect();
        assert!(distinct.len() < 500, "some producer duplicates");
    }

    #[test]
    fn sqs_events_have_groups() {
        let ev = event(&args("sqs")).to_string();
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        let lanes: std::collections::HashSet<&str> = recs.iter().map(|r| r.lane.as_ref()).collect();
        assert_eq!(lanes.len(), 3);
    }
}
