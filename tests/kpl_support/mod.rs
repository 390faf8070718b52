//! Shared by the kpl_* bridge tests: KPL aggregates from the third-party
//! producer (PyPI `aws-kinesis-agg`, through `tests/py/kpl_produce.py`),
//! Lambda events and `PutRecords` calls carrying raw (binary) data.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

/// One KPL aggregate of these `(partition key, data)` user records, built
/// by the producer. With `spoil = Some((i, index))` user record `i` points
/// at partition key `index`, past the table (a bad user record in an
/// otherwise valid aggregate, MD5 recomputed).
pub fn aggregate(users: &[(String, Vec<u8>)], spoil: Option<(usize, u64)>) -> Vec<u8> {
    let mut spec = json!({
        "records": users.iter().map(|(pk, data)| json!({
            "pk": pk, "ehk": null, "data": B64.encode(data),
        })).collect::<Vec<_>>()
    });
    if let Some((i, index)) = spoil {
        spec["spoil_key_index"] = json!([i, index]);
    }
    let exe = std::env::var("TICKBRIDGE_PYTHON").unwrap_or_else(|_| "python3".into());
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(exe)
        .arg(root.join("tests/py/kpl_produce.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts (is TICKBRIDGE_PYTHON set?)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(spec.to_string().as_bytes())
        .expect("write the spec");
    let out = child.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "kpl_produce.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("kpl_produce.py prints JSON");
    let aggs = v["aggregates"].as_array().expect("aggregates");
    assert_eq!(aggs.len(), 1, "small records fit one aggregate");
    assert_eq!(aggs[0]["count"].as_u64(), Some(users.len() as u64));
    B64.decode(aggs[0]["data"].as_str().expect("data"))
        .expect("base64")
}

/// A Kinesis Lambda event of `(sequence number, partition key, data)`
/// records on shard 0, in the given order.
pub fn event(stream_arn: &str, records: &[(String, String, Vec<u8>)]) -> Value {
    let recs: Vec<Value> = records
        .iter()
        .map(|(seq, pk, data)| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": pk,
                    "sequenceNumber": seq,
                    "data": B64.encode(data),
                    "approximateArrivalTimestamp": 1_764_000_000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{seq}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/tickbridge",
                "awsRegion": "us-east-1",
                "eventSourceARN": stream_arn,
            })
        })
        .collect();
    json!({ "Records": recs })
}

/// Puts `(partition key, data)` records in order on a one-shard stream;
/// returns their sequence numbers.
pub async fn put(
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
    records: &[(String, Vec<u8>)],
) -> Vec<String> {
    let mut seqs = Vec::new();
    for chunk in records.chunks(100) {
        let entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .map(|(pk, data)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(data.clone()))
                    .partition_key(pk)
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
        seqs.extend(out.records.into_iter().map(|r| r.sequence_number.unwrap()));
    }
    seqs
}
