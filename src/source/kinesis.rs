//! Kinesis records, from a Lambda event and from `GetRecords`, through one
//! constructor ([`record`]): the runner and replay hand the SDK's records
//! over as they are, never re-encoded as Lambda JSON.

use std::sync::Arc;

use base64::Engine;

use super::kpl::{self, Aggregation};
use super::seqno::is_valid_seq;
use super::{Record, SourceKind, SourceOptions, SourceRecordError, Sub};

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

/// The one way Kinesis `Record`s are made: one per plain Kinesis record,
/// one per user record of a KPL aggregate (DESIGN §2), appended to `out`.
///
/// Every user record of an aggregate keeps the aggregate's sequence number
/// as `position` and `failure_id` (Lambda can only name that) and its lane
/// (Lambda orders by the aggregate's partition key, so lanes by partition
/// key use that one: keyed by user keys, two invocations could move one
/// key's checkpoint past another's older aggregate). A bad user record is
/// a record with a defect; the rest of its aggregate flows.
pub fn records(
    p: KinesisParts<'_>,
    opts: &SourceOptions,
    out: &mut Vec<Record>,
) -> Result<(), SourceRecordError> {
    let payload = match p.data {
        Data::Bytes(bytes) => Ok(bytes.to_vec()),
        Data::Base64(text) => decode_data(text.as_bytes()).map_err(|_| text),
    };
    let lane = super::shared(out.last().map(|r| &r.lane), &lane_of(&p, opts)?);
    records_of(p, payload, lane, out);
    Ok(())
}

/// A Lambda event's base64 `data` decoded: with SIMD, as every record's
/// data goes through here (it was a twentieth of the handler's time with
/// the scalar decoder). It accepts exactly what the `base64` crate's
/// standard engine accepts (padded, canonical trailing bits); the tests
/// hold the two together, and [`base64_error`] names what is wrong.
pub(crate) fn decode_data(text: &[u8]) -> Result<Vec<u8>, ()> {
    base64_simd::STANDARD.decode_to_vec(text).map_err(drop)
}

/// Why `text` is not base64, in the `base64` crate's words (which say
/// where); only for records [`decode_data`] refused.
pub(crate) fn base64_error(text: &[u8]) -> String {
    match base64::engine::general_purpose::STANDARD.decode(text) {
        Err(e) => format!("data is not valid base64: {e}"),
        Ok(_) => "data is not valid base64".to_string(),
    }
}

/// Checks the record's identity and names its lane (DESIGN §2).
pub(crate) fn lane_of(
    p: &KinesisParts<'_>,
    opts: &SourceOptions,
) -> Result<String, SourceRecordError> {
    if !is_valid_seq(p.sequence_number) {
        return Err(SourceRecordError::BadSequence(
            p.sequence_number.to_string(),
        ));
    }
    if p.shard_id.is_empty() {
        return Err(SourceRecordError::NoShard);
    }
    Ok(if opts.lanes_by_partition_key {
        format!("{}/{}#{}", p.stream_arn, p.shard_id, p.partition_key)
    } else {
        format!("{}/{}", p.stream_arn, p.shard_id)
    })
}

/// [`records`] once the identity is checked (`lane` from [`lane_of`]) and
/// the data decoded: `Err(text)` is base64 text that did not decode, kept
/// as the payload of a record with a defect. The event reader calls it
/// directly, having decoded the data from the event's bytes.
pub(crate) fn records_of(
    p: KinesisParts<'_>,
    payload: Result<Vec<u8>, &str>,
    lane: Arc<str>,
    out: &mut Vec<Record>,
) {
    let source_arn = super::shared(out.last().map(|r| &r.source_arn), p.stream_arn);
    // The shared names move into a plain record rather than being cloned
    // and dropped: each count on a shared allocation is an atomic write.
    let seq: Arc<str> = p.sequence_number.into();
    let plain = |lane: Arc<str>,
                 source_arn: Arc<str>,
                 seq: Arc<str>,
                 payload: Vec<u8>,
                 defect: Option<String>,
                 kpl_note: Option<String>| Record {
        kind: SourceKind::Kinesis,
        message_key: None,
        lane,
        position: seq.clone(),
        failure_id: seq,
        source_arn,
        payload,
        arrival_ms: p.arrival_ms,
        defect,
        pointer_attribute: None,
        sub: None,
        kpl_note,
    };
    let payload = match payload {
        Ok(bytes) => bytes,
        Err(text) => {
            // Decoded again for the message: only bad records come here.
            let defect = base64_error(text.as_bytes());
            out.push(plain(
                lane,
                source_arn,
                seq,
                text.as_bytes().to_vec(),
                Some(defect),
                None,
            ));
            return;
        }
    };
    // Most records are plain: they are not handed to the deaggregator.
    if !payload.starts_with(&kpl::MAGIC) {
        out.push(plain(lane, source_arn, seq, payload, None, None));
        return;
    }
    let aggregate = match kpl::deaggregate(kpl::Bytes::from(payload)) {
        Aggregation::Aggregate(a) => a,
        Aggregation::Plain { data, why } => {
            // Plain, as KCL reads it; a producer meant it as an aggregate,
            // so its decode error (if any) says why it was not read as one.
            let note = format!("read as a plain record: {why}");
            out.push(plain(
                lane,
                source_arn,
                seq,
                data.to_vec(),
                None,
                Some(note),
            ));
            return;
        }
    };
    let count = aggregate.len();
    out.reserve(count);
    for (i, sub) in aggregate.sub_records().enumerate() {
        let (payload, user_key, defect, index) = match sub {
            Ok(s) => (
                s.data.to_vec(),
                s.partition_key.to_string(),
                None,
                s.subsequence,
            ),
            Err(e) => {
                let defect = format!(
                    "KPL sub-record {} of sequence number {}: {}",
                    e.subsequence, p.sequence_number, e.defect
                );
                (e.data.to_vec(), String::new(), Some(defect), e.subsequence)
            }
        };
        let mut r = plain(
            lane.clone(),
            source_arn.clone(),
            seq.clone(),
            payload,
            defect,
            None,
        );
        r.sub = Some(Box::new(Sub {
            index,
            last: i + 1 == count,
            partition_key: user_key,
        }));
        out.push(r);
    }
}

/// The records `GetRecords` returned from `shard_id` of `stream_arn`
/// (more than one for a KPL aggregate), appended to `out`.
pub fn from_sdk(
    r: &aws_sdk_kinesis::types::Record,
    stream_arn: &str,
    shard_id: &str,
    opts: &SourceOptions,
    out: &mut Vec<Record>,
) -> Result<(), SourceRecordError> {
    records(
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
        out,
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

    /// The SIMD decoder and the `base64` crate accept the same texts and
    /// decode them alike: every text of up to five characters over an
    /// alphabet of edge cases (padding, non-canonical trailing bits, the
    /// URL-safe letters, whitespace, non-ASCII), and long texts with one
    /// character changed anywhere (the SIMD decoder's blocks and tail).
    #[test]
    fn the_simd_decoder_accepts_what_the_base64_crate_accepts() {
        let scalar = |t: &[u8]| base64::engine::general_purpose::STANDARD.decode(t).ok();
        let same = |t: &[u8]| {
            assert_eq!(
                decode_data(t).ok(),
                scalar(t),
                "{:?}",
                String::from_utf8_lossy(t)
            );
        };
        let alphabet: &[u8] = b"AQRg/+=-_ \n\x80z";
        let mut text = Vec::new();
        for len in 0..=5u32 {
            for n in 0..alphabet.len().pow(len) {
                text.clear();
                let mut n = n;
                for _ in 0..len {
                    text.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                same(&text);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for len in [1usize, 2, 3, 31, 32, 33, 47, 48, 49, 95, 96, 97, 200, 1000] {
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let good = base64::engine::general_purpose::STANDARD.encode(&bytes);
            same(good.as_bytes());
            for _ in 0..200 {
                let mut bad = good.clone().into_bytes();
                let at = next() as usize % bad.len();
                bad[at] = alphabet[next() as usize % alphabet.len()];
                same(&bad);
                bad.truncate(next() as usize % (bad.len() + 1));
                same(&bad);
            }
        }
    }

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
        let mut out = Vec::new();
        for r in recs {
            from_sdk(r, ARN, SHARD, opts, &mut out).unwrap();
        }
        out
    }

    fn one(p: KinesisParts<'_>) -> Vec<Record> {
        let mut out = Vec::new();
        records(p, &SourceOptions::default(), &mut out).unwrap();
        out
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
            &*from_sdk_all(&sdk_recs, &by_key)[1].lane,
            format!("{ARN}/{SHARD}#")
        );
    }

    #[test]
    fn base64_defects_are_one_records_and_bad_sequences_name_the_value() {
        let ev = event(&[("5", "!!!not base64", Some("k"), "1.5")]);
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        let direct = one(KinesisParts {
            stream_arn: ARN,
            shard_id: SHARD,
            sequence_number: "5",
            partition_key: "k",
            data: Data::Base64("!!!not base64"),
            arrival_ms: 1500,
        });
        assert_eq!(recs, direct);
        assert_eq!(direct[0].payload, b"!!!not base64");
        assert!(direct[0]
            .defect
            .clone()
            .unwrap_or_default()
            .contains("base64"));
        let mut out = Vec::new();
        let bad = from_sdk(
            &sdk("12x", b"", None, 0),
            ARN,
            SHARD,
            &SourceOptions::default(),
            &mut out,
        );
        assert_eq!(bad, Err(SourceRecordError::BadSequence("12x".into())));
        assert!(bad.unwrap_err().to_string().contains("12x"));
        assert!(out.is_empty());
    }

    fn user<'a>(pk: &'a str, data: &'a [u8]) -> kpl::UserRecord<'a> {
        kpl::UserRecord {
            partition_key: pk,
            explicit_hash_key: None,
            data,
        }
    }

    #[test]
    fn an_aggregate_becomes_its_user_records_in_the_aggregates_lane() {
        let agg = kpl::aggregate([
            user("u1", b"{\"a\":1}"),
            user("u2", b"{\"a\":2}"),
            user("u1", b"x"),
        ]);
        let sdk_recs = [
            sdk("7", b"{}", Some("agg-key"), 1000),
            sdk("8", &agg, Some("agg-key"), 2000),
            sdk("9", b"{}", Some("agg-key"), 3000),
        ];
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let ev = event(&[
            ("7", &b64(b"{}"), Some("agg-key"), "1"),
            ("8", &b64(&agg), Some("agg-key"), "2"),
            ("9", &b64(b"{}"), Some("agg-key"), "3"),
        ]);
        for by_key in [false, true] {
            let opts = SourceOptions {
                lanes_by_partition_key: by_key,
                ..SourceOptions::default()
            };
            let got = from_sdk_all(&sdk_recs, &opts);
            assert_eq!(got, parse_event(ev.as_bytes(), &opts).unwrap());
            assert_eq!(got.len(), 5);
            let payloads: Vec<&[u8]> = got.iter().map(|r| r.payload.as_slice()).collect();
            assert_eq!(
                payloads,
                [&b"{}"[..], b"{\"a\":1}", b"{\"a\":2}", b"x", b"{}"]
            );
            let subs: Vec<Option<(u32, bool, &str)>> = got
                .iter()
                .map(|r| {
                    r.sub
                        .as_ref()
                        .map(|s| (s.index, s.last, s.partition_key.as_str()))
                })
                .collect();
            assert_eq!(
                subs,
                [
                    None,
                    Some((0, false, "u1")),
                    Some((1, false, "u2")),
                    Some((2, true, "u1")),
                    None
                ]
            );
            // One lane, the aggregate's: user keys never split it.
            assert!(got.iter().all(|r| r.lane == got[0].lane));
            assert_eq!(by_key, got[0].lane.ends_with("#agg-key"));
            for r in &got[1..4] {
                assert_eq!((&*r.position, &*r.failure_id), ("8", "8"));
                assert_eq!(r.arrival_ms, 2000);
                assert!(r.defect.is_none() && r.kpl_note.is_none());
            }
            assert_eq!(got[2].position_text(), "8:1");
            assert_eq!(got[2].checkpoint_after().checkpoint_text(), "8:1");
            assert_eq!(got[3].checkpoint_after().checkpoint_text(), "8");
            assert_eq!(got[4].checkpoint_after().checkpoint_text(), "9");
        }
    }

    #[test]
    fn a_damaged_aggregate_is_plain_with_a_note() {
        let mut agg = kpl::aggregate([user("u1", b"{}")]);
        let last = agg.len() - 1;
        agg[last] ^= 1;
        let got = one(KinesisParts {
            stream_arn: ARN,
            shard_id: SHARD,
            sequence_number: "5",
            partition_key: "k",
            data: Data::Bytes(&agg),
            arrival_ms: 0,
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, agg);
        assert!(got[0].sub.is_none() && got[0].defect.is_none());
        let note = got[0].kpl_note.clone().unwrap_or_default();
        assert!(note.contains("MD5"), "{note}");
    }

    #[test]
    fn a_bad_user_record_is_a_defect_of_its_own() {
        // Two keys in the table, the middle record pointing past it.
        let good = kpl::aggregate([user("a", b"1"), user("b", b"2"), user("a", b"3")]);
        // Re-point record 1's key index (01) to 07: rebuild by hand.
        let bad = with_key_index(&good, 1, 7);
        let got = one(KinesisParts {
            stream_arn: ARN,
            shard_id: SHARD,
            sequence_number: "42",
            partition_key: "k",
            data: Data::Bytes(&bad),
            arrival_ms: 0,
        });
        assert_eq!(got.len(), 3);
        assert!(got[0].defect.is_none() && got[2].defect.is_none());
        assert_eq!(got[1].payload, b"2");
        let defect = got[1].defect.clone().unwrap_or_default();
        for part in [
            "sub-record 1",
            "sequence number 42",
            "partition_key_index 7",
        ] {
            assert!(defect.contains(part), "{defect:?} names {part}");
        }
        assert_eq!(got[1].sub.as_ref().map(|s| s.index), Some(1));
    }

    /// The aggregate with record `i`'s partition key index set to `index`:
    /// decoded and re-encoded by prost with the same message shapes.
    fn with_key_index(agg: &[u8], i: usize, index: u64) -> Vec<u8> {
        use md5::{Digest, Md5};
        use prost::Message;
        #[derive(Clone, PartialEq, prost::Message)]
        struct Env {
            #[prost(string, repeated, tag = "1")]
            pk: Vec<String>,
            #[prost(bytes = "vec", repeated, tag = "3")]
            records: Vec<Vec<u8>>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Rec {
            #[prost(uint64, tag = "1")]
            pk_index: u64,
            #[prost(bytes = "vec", tag = "3")]
            data: Vec<u8>,
        }
        let body = &agg[4..agg.len() - 16];
        let mut env = Env::decode(body).unwrap();
        let mut r = Rec::decode(env.records[i].as_slice()).unwrap();
        r.pk_index = index;
        env.records[i] = r.encode_to_vec();
        let body = env.encode_to_vec();
        let mut out = kpl::MAGIC.to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(Md5::digest(&body).as_slice());
        out
    }
}
