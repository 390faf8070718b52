//! Lambda's on-failure destination records for Kinesis event sources: the
//! record holds no data, only where the failed batch lies in the stream
//! (`KinesisBatchInfo`). It may arrive as the SQS body itself or wrapped in
//! an SNS notification whose `Message` is the same JSON as a string.

use crate::clock::civil_from_days;
use serde::{Deserialize, Serialize};

use crate::source::seqno::{cmp_seq, is_valid_seq};

/// Why Lambda gave up on a batch after its retries; `tickbridge run` writes
/// only this condition.
pub const RETRIES_EXHAUSTED: &str = "RetryAttemptsExhausted";

/// One on-failure record as Lambda writes it. Lenient on reading (only
/// `KinesisBatchInfo` is needed to replay); `tickbridge run` fills every
/// field when it writes one.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OnFailureRecord {
    #[serde(default)]
    pub request_context: Option<RequestContext>,
    #[serde(default)]
    pub response_context: Option<ResponseContext>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(rename = "KinesisBatchInfo")]
    pub kinesis_batch_info: KinesisBatchInfo,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub function_arn: Option<String>,
    /// `RetryAttemptsExhausted`, `MaximumRecordAgeExceeded`, …
    #[serde(default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub approximate_invoke_count: Option<u64>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseContext {
    #[serde(default)]
    pub status_code: Option<u16>,
    #[serde(default)]
    pub executed_version: Option<String>,
    #[serde(default)]
    pub function_error: Option<String>,
}

/// Where the failed batch lies: one shard, an inclusive range.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct KinesisBatchInfo {
    pub shard_id: String,
    pub start_sequence_number: String,
    pub end_sequence_number: String,
    pub stream_arn: String,
    #[serde(default)]
    pub approximate_arrival_of_first_record: Option<String>,
    #[serde(default)]
    pub approximate_arrival_of_last_record: Option<String>,
    #[serde(default)]
    pub batch_size: Option<u64>,
}

impl KinesisBatchInfo {
    /// The stream name: the part of the ARN after `stream/`.
    pub fn stream_name(&self) -> Option<&str> {
        self.stream_arn
            .split_once(":stream/")
            .map(|(_, name)| name)
            .filter(|n| !n.is_empty() && !n.contains('/'))
    }
}

#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

/// Why a queue message body is not a Kinesis on-failure record.
#[derive(Debug, thiserror::Error)]
pub enum OnFailureError {
    #[error("body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("neither an on-failure record nor an SNS notification: {0}")]
    NotAnEnvelope(#[source] serde_json::Error),
    #[error("SNS Message is not JSON: {0}")]
    SnsMessageNotJson(#[source] serde_json::Error),
    #[error("no KinesisBatchInfo (not a Kinesis on-failure record, nor SNS-wrapped one)")]
    NoBatchInfo,
    #[error("not a Kinesis on-failure record: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("KinesisBatchInfo.{field} {value:?} is not a sequence number")]
    BadSequence { field: &'static str, value: String },
    #[error("KinesisBatchInfo range is empty: start {start} is after end {end}")]
    EmptyRange { start: String, end: String },
    #[error("KinesisBatchInfo.shardId is empty")]
    NoShard,
    #[error("KinesisBatchInfo.streamArn {0:?} names no stream")]
    NoStream(String),
}

/// Parses a queue message body: an on-failure record, or an SNS
/// notification carrying one. The error says what is wrong with it.
pub fn parse_body(body: &str) -> Result<OnFailureRecord, OnFailureError> {
    let value: serde_json::Value = serde_json::from_str(body).map_err(OnFailureError::NotJson)?;
    let inner = if value.get("KinesisBatchInfo").is_some() {
        value
    } else {
        let env: SnsEnvelope =
            serde_json::from_value(value).map_err(OnFailureError::NotAnEnvelope)?;
        match (env.kind.as_deref(), env.message) {
            (Some("Notification"), Some(m)) => {
                serde_json::from_str(&m).map_err(OnFailureError::SnsMessageNotJson)?
            }
            _ => return Err(OnFailureError::NoBatchInfo),
        }
    };
    let record: OnFailureRecord = serde_json::from_value(inner).map_err(OnFailureError::Shape)?;
    let info = &record.kinesis_batch_info;
    for (field, seq) in [
        ("startSequenceNumber", &info.start_sequence_number),
        ("endSequenceNumber", &info.end_sequence_number),
    ] {
        if !is_valid_seq(seq) {
            return Err(OnFailureError::BadSequence {
                field,
                value: seq.clone(),
            });
        }
    }
    if cmp_seq(&info.start_sequence_number, &info.end_sequence_number).is_gt() {
        return Err(OnFailureError::EmptyRange {
            start: info.start_sequence_number.clone(),
            end: info.end_sequence_number.clone(),
        });
    }
    if info.shard_id.is_empty() {
        return Err(OnFailureError::NoShard);
    }
    if info.stream_name().is_none() {
        return Err(OnFailureError::NoStream(info.stream_arn.clone()));
    }
    Ok(record)
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds
/// (`2026-12-02T06:19:03.123Z`), the form Lambda writes.
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod / 60 % 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_with_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(rfc3339_ms(1_796_192_343_123), "2026-12-02T06:19:03.123Z");
    }

    const RECORD: &str = r#"{
      "requestContext": {"requestId": "c9b8fa9f-5a7f-4e1f-a5c8-6f0cfc6fd1d1",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:tickbridge",
        "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 3},
      "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
      "version": "1.0", "timestamp": "2026-11-25T10:00:00.000Z",
      "KinesisBatchInfo": {"shardId": "shardId-000000000001",
        "startSequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "endSequenceNumber": "49590338271490256608559692540925702759324208523137515618",
        "approximateArrivalOfFirstRecord": "2026-11-25T09:59:58.000Z",
        "approximateArrivalOfLastRecord": "2026-11-25T09:59:59.000Z",
        "batchSize": 500, "streamArn": "arn:aws:kinesis:us-east-1:123456789012:stream/trades"}}"#;

    #[test]
    fn parses_plain_and_sns_wrapped_records() {
        let r = parse_body(RECORD).unwrap();
        assert_eq!(r.kinesis_batch_info.shard_id, "shardId-000000000001");
        assert_eq!(r.kinesis_batch_info.batch_size, Some(500));
        assert_eq!(r.kinesis_batch_info.stream_name(), Some("trades"));
        assert_eq!(
            r.request_context.unwrap().condition.as_deref(),
            Some("RetryAttemptsExhausted")
        );
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:failures", "Message": RECORD});
        let w = parse_body(&sns.to_string()).unwrap();
        assert_eq!(
            w.kinesis_batch_info,
            parse_body(RECORD).unwrap().kinesis_batch_info
        );
    }

    /// What `tickbridge run` writes is Lambda's shape to the field: a full
    /// record serializes back to the same JSON, with no nulls.
    #[test]
    fn a_full_record_writes_the_shape_it_reads() {
        let r = parse_body(RECORD).unwrap();
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(
            back,
            serde_json::from_str::<serde_json::Value>(RECORD).unwrap()
        );
    }

    #[test]
    fn bad_bodies_say_why() {
        let err = |body: &str| parse_body(body).unwrap_err().to_string();
        assert!(
            err("nope").starts_with("body is not JSON: "),
            "{}",
            err("nope")
        );
        assert!(matches!(
            parse_body(r#"{"a":1}"#),
            Err(OnFailureError::NoBatchInfo)
        ));
        let swapped = RECORD.replace(
            "49590338271490256608559692538361571095921575989136588898",
            "9",
        );
        assert!(parse_body(&swapped).is_ok());
        let reversed = RECORD.replace(
            "49590338271490256608559692540925702759324208523137515618",
            "1",
        );
        assert!(matches!(
            parse_body(&reversed),
            Err(OnFailureError::EmptyRange { .. })
        ));
        let bad_seq = RECORD.replace(
            "\"endSequenceNumber\": \"4959",
            "\"endSequenceNumber\": \"x4959",
        );
        assert!(matches!(
            parse_body(&bad_seq),
            Err(OnFailureError::BadSequence {
                field: "endSequenceNumber",
                ..
            })
        ));
        assert!(err(&bad_seq).starts_with("KinesisBatchInfo.endSequenceNumber \"x4959"));
    }
}
