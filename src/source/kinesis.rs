//! Kinesis records, from a Lambda event and from `GetRecords`, through one
//! constructor ([`record`]): the runner and replay hand the SDK's records
//! over as they are, never re-encoded as Lambda JSON.

use base64::Engine;

use super::seqno::is_valid_seq;
use super::{Record, SourceKind, SourceOptions, SourceRecordError};

/// A record's data as the source gives it.
#[derive(Clone, Copy, Debug)]
pub enum Data<'a> {
    /// A Lambda event's `data`: base64 text, decoded here. Text that is
    /// not base64 becomes a defect of this record alone.
    Base64(&'a str),
    /// The bytes `GetRecords` returned, already decoded by the SDK.
    Bytes(&'a [u8]),
}

/// The fields of a Kinesis record the bridge uses, borrowed from wherever
/// they were read (absent ones empty).
#[derive(Clone, Copy, Debug)]
pub struct KinesisParts<'a> {
    pub stream_arn: &'a str,
    pub shard_id: &'a str,
    pub sequence_number: &'a str,
    pub partition_key: &'a str,
    pub data: Data<'a>,
    /// Approximate arrival, ms since the Unix epoch (0 if unknown).
    pub arrival_ms: i64,
}

/// The one way a Kinesis `Record` is made.
pub fn record(p: KinesisParts<'_>, opts: &SourceOptions) -> Result<Record, SourceRecordError> {
    if !is_valid_seq(p.sequence_number) {
        return Err(SourceRecordError::BadSequence(
            p.sequence_number.to_string(),
        ));
    }
    if p.shard_id.is_empty() {
        return Err(SourceRecordError::NoShard);
    }
    let lane = if opts.lanes_by_partition_key {
        format!("{}/{}#{}", p.stream_arn, p.shard_id, p.partition_key)
    } else {
        format!("{}/{}", p.stream_arn, p.shard_id)
    };
    let (payload, defect) = match p.data {
        Data::Bytes(bytes) => (bytes.to_vec(), None),
        Data::Base64(text) => match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => (bytes, None),
            Err(e) => (
                text.as_bytes().to_vec(),
                Some(format!("data is not valid base64: {e}")),
            ),
        },
    };
    Ok(Record {
        kind: SourceKind::Kinesis,
        message_key: None,
        lane,
        position: p.sequence_number.to_string(),
        failure_id: p.sequence_number.to_string(),
        source_arn: p.stream_arn.to_string(),
        payload,
        arrival_ms: p.arrival_ms,
        defect,
        pointer_attribute: None,
    })
}

/// A record `GetRecords` returned from `shard_id` of `stream_arn`.
pub fn from_sdk(
    r: &aws_sdk_kinesis::types::Record,
    stream_arn: &str,
    shard_id: &str,
    opts: &SourceOptions,
) -> Result<Record, SourceRecordError> {
    record(
        KinesisParts {
            stream_arn,
            shard_id,
            sequence_number: r.sequence_number(),
            partition_key: r.partition_key().unwrap_or_default(),
            data: Data::Bytes(r.data().as_ref()),
            arrival_ms: r
                .approximate_arrival_timestamp()
                .and_then(|t| t.to_millis().ok())
                .unwrap_or(0),
        },
        opts,
    )
}

/// Lambda's `approximateArrivalTimestamp` (seconds, ms precision) in ms.
pub fn arrival_ms_of_secs(secs: Option<f64>) -> i64 {
    // Rounded, not truncated: 1764000000.123 s is 1764000000122.99… ms in
    // binary floating point, and the SDK's own value is 1764000000123.
    secs.map_or(0, |s| (s * 1000.0).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::event::parse_event;
    use aws_sdk_kinesis::primitives::{Blob, DateTime};
    use aws_sdk_kinesis::types::Record as KRecord;

    const ARN: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
    const SHARD: &str = "shardId-000000000003";

    fn sdk(seq: &str, data: &[u8], pk: Option<&str>, arrival_ms: i64) -> KRecord {
        KRecord::builder()
            .sequence_number(seq)
            .set_partition_key(pk.map(str::to_string))
            .data(Blob::new(data))
            .approximate_arrival_timestamp(DateTime::from_millis(arrival_ms))
            .build()
            .unwrap()
    }

    /// The Lambda event the mapping delivers for these records, written
    /// out by hand as Lambda writes it (not by the code under test).
    fn event(recs: &[(&str, &str, Option<&str>, &str)]) -> String {
        let items: Vec<serde_json::Value> = recs
            .iter()
            .map(|(seq, data_b64, pk, arrival)| {
                let mut kinesis = serde_json::json!({
                    "kinesisSchemaVersion": "1.0",
                    "sequenceNumber": seq,
                    "data": data_b64,
                    "approximateArrivalTimestamp": arrival.parse::<f64>().unwrap(),
                });
                if let Some(pk) = pk {
                    kinesis["partitionKey"] = serde_json::json!(pk);
                }
                serde_json::json!({
                    "kinesis": kinesis,
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": format!("{SHARD}:{seq}"),
                    "eventName": "aws:kinesis:record",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": ARN,
                })
            })
            .collect();
        serde_json::json!({ "Records": items }).to_string()
    }

    fn from_sdk_all(recs: &[KRecord], opts: &SourceOptions) -> Vec<Record> {
        recs.iter()
            .map(|r| from_sdk(r, ARN, SHARD, opts).unwrap())
            .collect()
    }

    #[test]
    fn sdk_records_equal_the_records_of_the_lambda_event() {
        let seq1 = "49590338271490256608559692538361571095921575989136588898";
        let unicode = "{\"sym\":\"日本株\",\"note\":\"é\u{1F600}\"}";
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let sdk_recs = [
            sdk(seq1, unicode.as_bytes(), Some("K-é"), 1_764_000_000_123),
            // No partition key, and bytes that are not UTF-8.
            sdk("10", b"\xff\x00", None, 1_764_000_000_250),
            // Bytes that happen to be base64 text stay as they are.
            sdk("11", b"eyJhIjoxfQ==", Some("k"), 1_545_084_650_987),
        ];
        let ev = event(&[
            (
                seq1,
                &b64(unicode.as_bytes()),
                Some("K-é"),
                "1764000000.123",
            ),
            ("10", &b64(b"\xff\x00"), None, "1764000000.250"),
            ("11", &b64(b"eyJhIjoxfQ=="), Some("k"), "1545084650.987"),
        ]);
        for by_key in [false, true] {
            let opts = SourceOptions {
                lanes_by_partition_key: by_key,
                ..SourceOptions::default()
            };
            let want = parse_event(ev.as_bytes(), &opts).unwrap();
            let got = from_sdk_all(&sdk_recs, &opts);
            assert_eq!(got, want, "lanes by partition key: {by_key}");
            assert_eq!(got[0].payload, unicode.as_bytes());
            assert_eq!(got[2].payload, b"eyJhIjoxfQ==");
            assert!(got.iter().all(|r| r.defect.is_none()));
        }
        let by_key = SourceOptions {
            lanes_by_partition_key: true,
            ..SourceOptions::default()
        };
        assert_eq!(
            from_sdk_all(&sdk_recs, &by_key)[1].lane,
            format!("{ARN}/{SHARD}#")
        );
    }

    #[test]
    fn base64_defects_are_one_records_and_bad_sequences_name_the_value() {
        let ev = event(&[("5", "!!!not base64", Some("k"), "1.5")]);
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        let direct = record(
            KinesisParts {
                stream_arn: ARN,
                shard_id: SHARD,
                sequence_number: "5",
                partition_key: "k",
                data: Data::Base64("!!!not base64"),
                arrival_ms: 1500,
            },
            &SourceOptions::default(),
        )
        .unwrap();
        assert_eq!(recs, vec![direct.clone()]);
        assert_eq!(direct.payload, b"!!!not base64");
        assert!(direct.defect.unwrap_or_default().contains("base64"));
        let bad = from_sdk(
            &sdk("12x", b"", None, 0),
            ARN,
            SHARD,
            &SourceOptions::default(),
        );
        assert_eq!(bad, Err(SourceRecordError::BadSequence("12x".into())));
        assert!(bad.unwrap_err().to_string().contains("12x"));
    }
}
