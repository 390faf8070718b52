//! Lambda events into `Record`s.
//!
//! Each record is parsed on its own, leniently: one record with bad base64
//! must become one bad record (quarantined with its reason), not a failed
//! parse of the whole event that would block the shard. The strict typed
//! events of `aws_lambda_events` fail as a whole on such input, so only the
//! responses and the event generator use them.

use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::seqno::is_valid_seq;
use super::{Record, SourceKind};

#[derive(Clone, Debug, Default)]
pub struct SourceOptions {
    /// With `ParallelizationFactor` > 1 Lambda keeps order per partition key
    /// only, so lanes become shard + partition key.
    pub lanes_by_partition_key: bool,
    /// SQS bodies carry base64 (binary producers).
    pub sqs_body_base64: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a Kinesis or SQS event: {0}")]
    Unrecognised(String),
    /// A record the response could not name: the whole batch is retried.
    #[error("record {index}: {reason}")]
    Malformed { index: usize, reason: String },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "eventSource", default, borrow)]
    event_source: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisRaw {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    kinesis: KinesisData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisData {
    sequence_number: Option<String>,
    partition_key: Option<String>,
    data: Option<String>,
    approximate_arrival_timestamp: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRaw {
    message_id: Option<String>,
    body: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
}

/// A Kinesis event as Lambda sends it, every field present and no string
/// escaped: read in one pass, borrowing from the event text.
#[derive(Deserialize)]
struct KinesisFast<'a> {
    #[serde(rename = "Records", borrow)]
    records: Vec<KinesisFastRecord<'a>>,
}

#[derive(Deserialize)]
struct KinesisFastRecord<'a> {
    #[serde(rename = "eventSource")]
    event_source: Option<&'a str>,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: &'a str,
    #[serde(borrow)]
    kinesis: KinesisFastData<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisFastData<'a> {
    sequence_number: &'a str,
    partition_key: &'a str,
    data: &'a str,
    approximate_arrival_timestamp: Option<f64>,
}

/// Parses a Lambda event. An empty batch is `Ok(vec![])`.
pub fn parse_event(event: &[u8], opts: &SourceOptions) -> Result<Vec<Record>, EventError> {
    // The common case in one pass; anything unusual (a missing field, an
    // escaped string, another source, bad JSON) takes the lenient path
    // below, which gives the same records and names each bad one.
    if let Ok(fast) = serde_json::from_slice::<KinesisFast>(event) {
        if fast.records.first().and_then(|r| r.event_source) == Some("aws:kinesis") {
            return fast
                .records
                .iter()
                .enumerate()
                .map(|(index, r)| {
                    kinesis_from_parts(
                        index,
                        KinesisParts {
                            seq: r.kinesis.sequence_number,
                            arn: r.event_source_arn,
                            event_id: r.event_id,
                            partition_key: r.kinesis.partition_key,
                            data: r.kinesis.data,
                            arrival_s: r.kinesis.approximate_arrival_timestamp,
                        },
                        opts,
                    )
                })
                .collect();
        }
    }
    let env: Envelope = serde_json::from_slice(event)
        .map_err(|e| EventError::Unrecognised(format!("not a JSON object with Records ({e})")))?;
    let raws = env
        .records
        .ok_or_else(|| EventError::Unrecognised("no \"Records\" array".into()))?;
    let Some(first) = raws.first() else {
        return Ok(Vec::new());
    };
    let kind = match serde_json::from_str::<Probe>(first.get())
        .ok()
        .and_then(|p| p.event_source)
    {
        Some("aws:kinesis") => SourceKind::Kinesis,
        Some("aws:sqs") => SourceKind::SqsFifo,
        other => {
            return Err(EventError::Unrecognised(format!(
                "eventSource {other:?} (expected \"aws:kinesis\" or \"aws:sqs\")"
            )))
        }
    };
    raws.iter()
        .enumerate()
        .map(|(index, raw)| match kind {
            SourceKind::Kinesis => kinesis_record(index, raw, opts),
            SourceKind::SqsFifo => sqs_record(index, raw, opts),
        })
        .collect()
}

fn malformed(index: usize, reason: impl Into<String>) -> EventError {
    EventError::Malformed {
        index,
        reason: reason.into(),
    }
}

fn kinesis_record(
    index: usize,
    raw: &RawValue,
    opts: &SourceOptions,
) -> Result<Record, EventError> {
    let r: KinesisRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not a Kinesis record: {e}")))?;
    let parts = KinesisParts {
        seq: r.kinesis.sequence_number.as_deref().unwrap_or_default(),
        arn: r.event_source_arn.as_deref().unwrap_or_default(),
        event_id: r.event_id.as_deref().unwrap_or_default(),
        partition_key: r.kinesis.partition_key.as_deref().unwrap_or_default(),
        data: r.kinesis.data.as_deref().unwrap_or_default(),
        arrival_s: r.kinesis.approximate_arrival_timestamp,
    };
    kinesis_from_parts(index, parts, opts)
}

/// The fields of a Kinesis record the bridge uses (absent ones empty).
struct KinesisParts<'a> {
    seq: &'a str,
    arn: &'a str,
    event_id: &'a str,
    partition_key: &'a str,
    data: &'a str,
    arrival_s: Option<f64>,
}

fn kinesis_from_parts(
    index: usize,
    p: KinesisParts<'_>,
    opts: &SourceOptions,
) -> Result<Record, EventError> {
    if !is_valid_seq(p.seq) {
        return Err(malformed(index, format!("bad sequence number {:?}", p.seq)));
    }
    let shard = p
        .event_id
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| malformed(index, format!("no shard id in eventID {:?}", p.event_id)))?;
    let lane = if opts.lanes_by_partition_key {
        format!("{}/{shard}#{}", p.arn, p.partition_key)
    } else {
        format!("{}/{shard}", p.arn)
    };
    let (payload, defect) = match base64::engine::general_purpose::STANDARD.decode(p.data) {
        Ok(bytes) => (bytes, None),
        Err(e) => (
            p.data.as_bytes().to_vec(),
            Some(format!("data is not valid base64: {e}")),
        ),
    };
    Ok(Record {
        kind: SourceKind::Kinesis,
        message_key: None,
        lane,
        position: p.seq.to_string(),
        failure_id: p.seq.to_string(),
        source_arn: p.arn.to_string(),
        payload,
        arrival_ms: p.arrival_s.map_or(0, |s| (s * 1000.0) as i64),
        defect,
    })
}

fn sqs_record(index: usize, raw: &RawValue, opts: &SourceOptions) -> Result<Record, EventError> {
    let r: SqsRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not an SQS message: {e}")))?;
    let id = r
        .message_id
        .filter(|m| !m.is_empty())
        .ok_or_else(|| malformed(index, "no messageId"))?;
    let arn = r.event_source_arn.unwrap_or_default();
    // A standard queue has no groups and no order: each message is its own
    // lane, so one failure holds back nothing else.
    let lane = match r.attributes.get("MessageGroupId") {
        Some(group) => format!("{arn}/{group}"),
        None => format!("{arn}/{id}"),
    };
    let body = r.body.unwrap_or_default();
    let (payload, defect) = if opts.sqs_body_base64 {
        match base64::engine::general_purpose::STANDARD.decode(body.trim()) {
            Ok(bytes) => (bytes, None),
            Err(e) => (
                body.into_bytes(),
                Some(format!("body is not valid base64: {e}")),
            ),
        }
    } else {
        (body.into_bytes(), None)
    };
    Ok(Record {
        kind: SourceKind::SqsFifo,
        message_key: Some(format!("msg#{id}")),
        lane,
        position: r
            .attributes
            .get("SequenceNumber")
            .cloned()
            .unwrap_or_default(),
        failure_id: id,
        source_arn: arn,
        payload,
        arrival_ms: r
            .attributes
            .get("SentTimestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        defect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ1: &str = "49590338271490256608559692538361571095921575989136588898";
    const SEQ2: &str = "49590338271490256608559692540925702759324208523137515618";

    fn kinesis_event(data: &[&str]) -> String {
        let recs: Vec<String> = data
            .iter()
            .zip([SEQ1, SEQ2])
            .map(|(d, s)| {
                format!(
                    r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"AAPL","sequenceNumber":"{s}","data":"{d}","approximateArrivalTimestamp":1545084650.987}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:{s}","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role","awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/trades"}}"#
                )
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, recs.join(","))
    }

    #[test]
    fn kinesis_records_decode_base64_and_keep_bad_ones_as_defects() {
        let ev = kinesis_event(&["eyJhIjoxfQ==", "!!!not base64"]);
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].payload, br#"{"a":1}"#);
        assert_eq!(
            recs[0].lane,
            "arn:aws:kinesis:us-east-2:123456789012:stream/trades/shardId-000000000006"
        );
        assert_eq!(recs[0].failure_id, SEQ1);
        assert_eq!(recs[0].arrival_ms, 1_545_084_650_987);
        assert!(recs[0].defect.is_none());
        assert!(recs[1].defect.as_deref().unwrap_or("").contains("base64"));
        let by_key = SourceOptions {
            lanes_by_partition_key: true,
            ..SourceOptions::default()
        };
        let recs = parse_event(ev.as_bytes(), &by_key).unwrap();
        assert!(recs[0].lane.ends_with("shardId-000000000006#AAPL"));
    }

    #[test]
    fn unusual_kinesis_events_parse_to_the_same_records_on_the_lenient_path() {
        let plain = kinesis_event(&["eyJhIjoxfQ==", "e30="]);
        let want = parse_event(plain.as_bytes(), &SourceOptions::default()).unwrap();
        // An escaped slash, or a record without a partition key, is not for
        // the one-pass reader; the records must come out the same.
        let escaped = plain.replace("stream/trades", "stream\\/trades");
        assert_ne!(escaped, plain);
        let no_pk = plain.replacen(r#""partitionKey":"AAPL","#, "", 1);
        assert_ne!(no_pk, plain);
        assert_eq!(
            parse_event(escaped.as_bytes(), &SourceOptions::default()).unwrap(),
            want
        );
        let got = parse_event(no_pk.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn sqs_fifo_lanes_are_message_groups() {
        let ev = r#"{"Records":[
          {"messageId":"m1","receiptHandle":"h","body":"{\"x\":1}","attributes":{"MessageGroupId":"g1","SequenceNumber":"18849496460467696128","SentTimestamp":"1545082649183","MessageDeduplicationId":"d1"},"messageAttributes":{},"md5OfBody":"x","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:q.fifo","awsRegion":"us-east-2"},
          {"messageId":"m2","body":"b","attributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:std"}]}"#;
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(recs[0].lane, "arn:aws:sqs:us-east-2:123456789012:q.fifo/g1");
        assert_eq!(recs[0].message_key.as_deref(), Some("msg#m1"));
        assert_eq!(recs[0].failure_id, "m1");
        assert_eq!(recs[0].arrival_ms, 1_545_082_649_183);
        assert_eq!(recs[1].lane, "arn:aws:sqs:us-east-2:123456789012:std/m2");
    }

    #[test]
    fn unknown_and_unnameable_events_are_errors() {
        assert!(matches!(
            parse_event(
                br#"{"Records":[{"eventSource":"aws:s3"}]}"#,
                &SourceOptions::default()
            ),
            Err(EventError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_event(b"[1,2]", &SourceOptions::default()),
            Err(EventError::Unrecognised(_))
        ));
        assert_eq!(
            parse_event(br#"{"Records":[]}"#, &SourceOptions::default()),
            Ok(vec![])
        );
        let no_seq = r#"{"Records":[{"eventSource":"aws:kinesis","eventID":"shardId-1:1","kinesis":{"data":""}}]}"#;
        assert!(matches!(
            parse_event(no_seq.as_bytes(), &SourceOptions::default()),
            Err(EventError::Malformed { index: 0, .. })
        ));
    }
}
