//! Lambda events into `Record`s: the thin dispatcher. The records
//! themselves are made by `source::kinesis` and `source::sqs`, the same
//! constructors the runner and replay use for SDK responses.
//!
//! Each record is parsed on its own, leniently: one record with bad base64
//! must become one bad record (quarantined with its reason), not a failed
//! parse of the whole event that would block the shard. The strict typed
//! events of `aws_lambda_events` fail as a whole on such input, so only the
//! responses and the event generator use them.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kinesis::{self, Data, KinesisParts};
use super::sqs::{self, SqsParts};
use super::{Record, SourceKind, SourceRecordError};

pub use super::SourceOptions;

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
    #[serde(default)]
    message_attributes: HashMap<String, SqsAttribute>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
}

/// A message attribute in a Lambda SQS event (`stringValue`, `dataType`…).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsAttribute {
    string_value: Option<String>,
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

/// Whether a Lambda event is an S3 notification delivered directly
/// (`Records[0].eventSource` `aws:s3`, or S3's test event) or by
/// EventBridge (`source` `aws.s3`): those name objects to ingest
/// (`s3::notify`), not records.
pub fn is_s3_event(event: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(rename = "Records", borrow, default)]
        records: Option<Vec<Probe<'a>>>,
        #[serde(borrow, default)]
        source: Option<&'a str>,
        #[serde(rename = "Event", borrow, default)]
        event: Option<&'a str>,
    }
    match serde_json::from_slice::<Top>(event) {
        Ok(t) => {
            t.source == Some("aws.s3")
                || t.event == Some("s3:TestEvent")
                || t.records
                    .as_deref()
                    .and_then(<[Probe]>::first)
                    .and_then(|p| p.event_source)
                    == Some("aws:s3")
        }
        Err(_) => false,
    }
}

/// Parses a Lambda event. An empty batch is `Ok(vec![])`.
pub fn parse_event(event: &[u8], opts: &SourceOptions) -> Result<Vec<Record>, EventError> {
    // The common case in one pass; anything unusual (a missing field, an
    // escaped string, another source, bad JSON) takes the lenient path
    // below, which gives the same records and names each bad one.
    if let Ok(fast) = serde_json::from_slice::<KinesisFast>(event) {
        if fast.records.first().and_then(|r| r.event_source) == Some("aws:kinesis") {
            let mut out = Vec::with_capacity(fast.records.len());
            for (index, r) in fast.records.iter().enumerate() {
                kinesis_from_event(
                    index,
                    r.event_source_arn,
                    r.event_id,
                    r.kinesis.sequence_number,
                    r.kinesis.partition_key,
                    r.kinesis.data,
                    r.kinesis.approximate_arrival_timestamp,
                    opts,
                    &mut out,
                )?;
            }
            return Ok(out);
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
    let mut out = Vec::with_capacity(raws.len());
    for (index, raw) in raws.iter().enumerate() {
        match kind {
            // One Kinesis record may be a KPL aggregate of many.
            SourceKind::Kinesis => kinesis_record(index, raw, opts, &mut out)?,
            SourceKind::SqsFifo => out.push(sqs_record(index, raw, opts)?),
        }
    }
    Ok(out)
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
    out: &mut Vec<Record>,
) -> Result<(), EventError> {
    let r: KinesisRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not a Kinesis record: {e}")))?;
    kinesis_from_event(
        index,
        r.event_source_arn.as_deref().unwrap_or_default(),
        r.event_id.as_deref().unwrap_or_default(),
        r.kinesis.sequence_number.as_deref().unwrap_or_default(),
        r.kinesis.partition_key.as_deref().unwrap_or_default(),
        r.kinesis.data.as_deref().unwrap_or_default(),
        r.kinesis.approximate_arrival_timestamp,
        opts,
        out,
    )
}

/// A Kinesis record of an event: the shard comes from `eventID`
/// (`shardId-…:<sequence>`), the data is base64.
#[allow(clippy::too_many_arguments)]
fn kinesis_from_event(
    index: usize,
    arn: &str,
    event_id: &str,
    seq: &str,
    partition_key: &str,
    data: &str,
    arrival_s: Option<f64>,
    opts: &SourceOptions,
    out: &mut Vec<Record>,
) -> Result<(), EventError> {
    let shard_id = event_id.split_once(':').map_or("", |(s, _)| s);
    let parts = KinesisParts {
        stream_arn: arn,
        shard_id,
        sequence_number: seq,
        partition_key,
        data: Data::Base64(data),
        arrival_ms: kinesis::arrival_ms_of_secs(arrival_s),
    };
    kinesis::records(parts, opts, out).map_err(|e| match e {
        SourceRecordError::NoShard => {
            malformed(index, format!("no shard id in eventID {event_id:?}"))
        }
        e => malformed(index, e.to_string()),
    })
}

fn sqs_record(index: usize, raw: &RawValue, opts: &SourceOptions) -> Result<Record, EventError> {
    let r: SqsRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not an SQS message: {e}")))?;
    let attr = |name: &str| r.attributes.get(name).map(String::as_str);
    let parts = SqsParts {
        queue_arn: r.event_source_arn.as_deref().unwrap_or_default(),
        message_id: r.message_id.as_deref().unwrap_or_default(),
        body: r.body.as_deref().unwrap_or_default(),
        group_id: attr("MessageGroupId"),
        sequence_number: attr("SequenceNumber"),
        sent_timestamp: attr("SentTimestamp"),
        pointer_attribute: sqs::pointer_attribute(|name| {
            r.message_attributes
                .get(name)
                .map(|a| a.string_value.as_deref())
        }),
    };
    sqs::record(parts, opts).map_err(|e| malformed(index, e.to_string()))
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
