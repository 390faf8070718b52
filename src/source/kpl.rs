//! KPL aggregated records: one Kinesis record that carries many user records.
//!
//! Format (the KPL's `aggregation-format.md`): the magic `F3 89 9A C2`, a
//! protobuf `AggregatedRecord`, then the 16-byte MD5 of the protobuf bytes.
//! Anything that fails those checks (too short, other magic, wrong MD5,
//! undecodable protobuf) is a plain record, as KCL and the reference
//! deaggregators treat it.
//!
//! Nothing is copied: the input is taken as [`Bytes`] (a `Vec<u8>` converts
//! for free) and every user record's data is a slice of it. The envelope is
//! decoded into slices up front (one 32-byte slice per record, so a hostile
//! aggregate costs at most about 16 bytes of memory per byte of input, and
//! no length it claims is allocated before it is checked against the bytes
//! present); each record is decoded from its slice when iterated.

use md5::{Digest, Md5};
/// The byte buffer sub-records share with their aggregate (re-exported so
/// callers need not depend on `bytes` themselves).
pub use prost::bytes::Bytes;
use prost::Message;
use std::collections::HashMap;
use std::fmt;

/// The four bytes every KPL aggregate starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// The protobuf messages, written by hand for prost's derive (no protoc).
/// They differ from the `.proto` only where that saves work or memory; the
/// wire format is the same.
mod wire {
    use prost::bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct AggregatedRecord {
        #[prost(string, repeated, tag = "1")]
        pub partition_key_table: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub explicit_hash_key_table: Vec<String>,
        /// `repeated Record` in the `.proto`: an embedded message has the
        /// wire form of `bytes`, so each stays a slice of the input until
        /// iterated. `Vec<Record>` would cost 72 bytes per entry instead of 32.
        #[prost(bytes = "bytes", repeated, tag = "3")]
        pub records: Vec<Bytes>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Record {
        /// `required` in the `.proto`; optional here so that a missing one is
        /// seen rather than read as 0 (prost does not enforce `required`).
        #[prost(uint64, optional, tag = "1")]
        pub partition_key_index: Option<u64>,
        #[prost(uint64, optional, tag = "2")]
        pub explicit_hash_key_index: Option<u64>,
        /// `required` too.
        #[prost(bytes = "bytes", optional, tag = "3")]
        pub data: Option<Bytes>,
        // `repeated Tag tags = 4` is left undeclared: the bridge has no use
        // for tags, and prost skips an unknown field (checking its length)
        // without allocating.
    }
}

/// What a Kinesis record turned out to be.
#[derive(Clone, Debug, PartialEq)]
pub enum Aggregation {
    /// Not an aggregate: the record's bytes, given back unchanged.
    Plain {
        data: Bytes,
        why: NotAggregate,
    },
    Aggregate(Aggregate),
}

/// Why a record is read as plain. Only the last two are worth a log line:
/// the record starts with the KPL magic, so a producer meant it as an
/// aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotAggregate {
    /// No room for the magic, a protobuf and the MD5 trailer.
    TooShort,
    NoMagic,
    DigestMismatch,
    /// The MD5 matched but the protobuf did not decode (or lacks a required
    /// field); the decoder's reason.
    Undecodable(String),
}

impl fmt::Display for NotAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotAggregate::TooShort => f.write_str("too short for a KPL aggregate"),
            NotAggregate::NoMagic => f.write_str("no KPL magic"),
            NotAggregate::DigestMismatch => {
                f.write_str("KPL magic present but the MD5 trailer does not match")
            }
            NotAggregate::Undecodable(why) => {
                write!(
                    f,
                    "KPL magic and MD5 match but the protobuf does not decode: {why}"
                )
            }
        }
    }
}

/// A checked aggregate: its key tables and its records, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    partition_keys: Vec<String>,
    explicit_hash_keys: Vec<String>,
    records: Vec<Bytes>,
}

/// One user record of an aggregate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubRecord<'a> {
    /// The record's index in the aggregate (KCL's subsequence number).
    pub subsequence: u32,
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    /// A slice of the aggregate's bytes (cloning it copies nothing).
    pub data: Bytes,
}

/// A user record that cannot be read; the others of its aggregate can.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("KPL sub-record {subsequence}: {defect}")]
pub struct SubRecordError {
    pub subsequence: u32,
    pub defect: SubRecordDefect,
    /// The record's data, which decoded fine, for the quarantine message.
    pub data: Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SubRecordDefect {
    #[error("partition_key_index {index} is out of range (the table has {table_len} keys)")]
    PartitionKeyIndexOutOfRange { index: u64, table_len: usize },
    #[error("explicit_hash_key_index {index} is out of range (the table has {table_len} keys)")]
    ExplicitHashKeyIndexOutOfRange { index: u64, table_len: usize },
}

/// Splits a Kinesis record's data into its user records, or says why it is
/// a plain record. Never fails: anything that is not a valid aggregate is
/// plain.
pub fn deaggregate(data: Bytes) -> Aggregation {
    let plain = |data, why| Aggregation::Plain { data, why };
    // The reference deaggregators require a non-empty protobuf.
    if data.len() <= MAGIC.len() + DIGEST_LEN {
        return plain(data, NotAggregate::TooShort);
    }
    if data[..MAGIC.len()] != MAGIC {
        return plain(data, NotAggregate::NoMagic);
    }
    let body_end = data.len() - DIGEST_LEN;
    let body = &data[MAGIC.len()..body_end];
    if Md5::digest(body).as_slice() != &data[body_end..] {
        return plain(data, NotAggregate::DigestMismatch);
    }
    match decode(data.slice(MAGIC.len()..body_end)) {
        Ok(aggregate) => Aggregation::Aggregate(aggregate),
        Err(why) => plain(data, NotAggregate::Undecodable(why)),
    }
}

/// Decodes the envelope and checks every record decodes and has its required
/// fields, so an aggregate is either wholly read or wholly plain (as the
/// reference deaggregators do); index ranges are checked per record later.
fn decode(body: Bytes) -> Result<Aggregate, String> {
    let n = census(&body)?;
    if u32::try_from(n.records).is_err() {
        return Err(format!(
            "{} records exceed the subsequence range",
            n.records
        ));
    }
    // Exact capacities: no doubling slack, so memory stays within the bound
    // the census guarantees.
    let mut env = wire::AggregatedRecord {
        partition_key_table: Vec::with_capacity(n.partition_keys),
        explicit_hash_key_table: Vec::with_capacity(n.explicit_hash_keys),
        records: Vec::with_capacity(n.records),
    };
    env.merge(body).map_err(|e| e.to_string())?;
    for (i, raw) in env.records.iter().enumerate() {
        let r = wire::Record::decode(raw.clone()).map_err(|e| format!("record {i}: {e}"))?;
        if r.partition_key_index.is_none() {
            return Err(format!(
                "record {i}: required field partition_key_index is missing"
            ));
        }
        if r.data.is_none() {
            return Err(format!("record {i}: required field data is missing"));
        }
    }
    Ok(Aggregate {
        partition_keys: env.partition_key_table,
        explicit_hash_keys: env.explicit_hash_key_table,
        records: env.records,
    })
}

/// How many entries each repeated field of the envelope has.
#[derive(Default)]
struct Census {
    partition_keys: usize,
    explicit_hash_keys: usize,
    records: usize,
}

/// The smallest record with both required fields: `08 00 1a 00`.
const MIN_RECORD_LEN: usize = 4;

/// Walks the envelope's top-level fields without decoding them, counting the
/// entries and checking every length fits in the bytes present. A record
/// entry must be able to hold its required fields, so the slices kept per
/// record (32 bytes each) cost at most about 5 bytes per input byte; key
/// tables at most 12 (24-byte `String`s of at least 2 input bytes).
fn census(mut buf: &[u8]) -> Result<Census, String> {
    let varint = |buf: &mut &[u8]| prost::encoding::decode_varint(buf).map_err(|e| e.to_string());
    let mut n = Census::default();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let (field, wire_type) = (key >> 3, key & 7);
        let skip = match wire_type {
            0 => {
                varint(&mut buf)?;
                0
            }
            1 => 8,
            5 => 4,
            2 => {
                let len = varint(&mut buf)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= buf.len())
                    .ok_or_else(|| {
                        format!("field {field} claims {len} bytes, {} left", buf.len())
                    })?;
                match field {
                    1 => n.partition_keys += 1,
                    2 => n.explicit_hash_keys += 1,
                    3 if len < MIN_RECORD_LEN => {
                        return Err(format!(
                            "record {} is {len} bytes, too short for its required fields",
                            n.records
                        ))
                    }
                    3 => n.records += 1,
                    _ => {}
                }
                len
            }
            other => {
                return Err(format!(
                    "field {field} has wire type {other}, not expected here"
                ))
            }
        };
        if skip > buf.len() {
            return Err(format!("field {field} runs past the end"));
        }
        buf = &buf[skip..];
    }
    Ok(n)
}

impl Aggregate {
    /// How many user records it holds (bad ones included).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The user records in order, each read or reported bad on its own.
    pub fn sub_records(&self) -> SubRecords<'_> {
        SubRecords {
            aggregate: self,
            next: 0,
        }
    }

    fn read(&self, i: usize) -> Result<SubRecord<'_>, SubRecordError> {
        // `decode` bounded the count by u32 and decoded every record.
        let subsequence = u32::try_from(i).unwrap_or(u32::MAX);
        let r = wire::Record::decode(self.records[i].clone()).unwrap_or_default();
        let data = r.data.unwrap_or_default();
        let bad = |defect| SubRecordError {
            subsequence,
            defect,
            data: data.clone(),
        };
        let pk_index = r.partition_key_index.unwrap_or_default();
        let partition_key = lookup(&self.partition_keys, pk_index).ok_or_else(|| {
            bad(SubRecordDefect::PartitionKeyIndexOutOfRange {
                index: pk_index,
                table_len: self.partition_keys.len(),
            })
        })?;
        let explicit_hash_key = match r.explicit_hash_key_index {
            None => None,
            Some(index) => Some(lookup(&self.explicit_hash_keys, index).ok_or_else(|| {
                bad(SubRecordDefect::ExplicitHashKeyIndexOutOfRange {
                    index,
                    table_len: self.explicit_hash_keys.len(),
                })
            })?),
        };
        Ok(SubRecord {
            subsequence,
            partition_key,
            explicit_hash_key,
            data,
        })
    }
}

fn lookup(table: &[String], index: u64) -> Option<&str> {
    let i = usize::try_from(index).ok()?;
    table.get(i).map(String::as_str)
}

/// Iterator over an aggregate's user records; see [`Aggregate::sub_records`].
pub struct SubRecords<'a> {
    aggregate: &'a Aggregate,
    next: usize,
}

impl<'a> Iterator for SubRecords<'a> {
    type Item = Result<SubRecord<'a>, SubRecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.aggregate.len() {
            return None;
        }
        let item = self.aggregate.read(self.next);
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.aggregate.len() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for SubRecords<'_> {}

/// A user record to aggregate (see [`aggregate`]).
#[derive(Clone, Copy, Debug)]
pub struct UserRecord<'a> {
    pub partition_key: &'a str,
    pub explicit_hash_key: Option<&'a str>,
    pub data: &'a [u8],
}

/// Packs user records into one KPL aggregate, each key stored once. For the
/// demo, the benchmarks and tests of the bridge; it checks no size limit
/// (Kinesis takes records of up to 1 MiB).
pub fn aggregate<'a>(records: impl IntoIterator<Item = UserRecord<'a>>) -> Vec<u8> {
    let mut env = wire::AggregatedRecord::default();
    let mut pk_index: HashMap<&str, u64> = HashMap::new();
    let mut ehk_index: HashMap<&str, u64> = HashMap::new();
    for r in records {
        let partition_key_index =
            intern(&mut pk_index, &mut env.partition_key_table, r.partition_key);
        let explicit_hash_key_index = r
            .explicit_hash_key
            .map(|k| intern(&mut ehk_index, &mut env.explicit_hash_key_table, k));
        let record = wire::Record {
            partition_key_index: Some(partition_key_index),
            explicit_hash_key_index,
            data: Some(Bytes::copy_from_slice(r.data)),
        };
        env.records.push(record.encode_to_vec().into());
    }
    let body = env.encode_to_vec();
    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&body);
    out.extend_from_slice(Md5::digest(&body).as_slice());
    out
}

fn intern<'a>(index: &mut HashMap<&'a str, u64>, table: &mut Vec<String>, key: &'a str) -> u64 {
    *index.entry(key).or_insert_with(|| {
        table.push(key.to_owned());
        table.len() as u64 - 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user<'a>(pk: &'a str, ehk: Option<&'a str>, data: &'a [u8]) -> UserRecord<'a> {
        UserRecord {
            partition_key: pk,
            explicit_hash_key: ehk,
            data,
        }
    }

    fn framed(body: &[u8]) -> Bytes {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(Md5::digest(body).as_slice());
        out.into()
    }

    fn expect_aggregate(a: Aggregation) -> Aggregate {
        match a {
            Aggregation::Aggregate(a) => a,
            Aggregation::Plain { why, .. } => panic!("expected an aggregate, got plain: {why}"),
        }
    }

    fn expect_plain(input: Bytes) -> NotAggregate {
        match deaggregate(input.clone()) {
            Aggregation::Plain { data, why } => {
                assert_eq!(data, input, "plain gives the bytes back unchanged");
                why
            }
            Aggregation::Aggregate(a) => panic!("expected plain, got {} records", a.len()),
        }
    }

    #[test]
    fn round_trip_keeps_order_keys_and_data() {
        let datas: Vec<Vec<u8>> = (0..50)
            .map(|i| format!("{{\"i\":{i}}}").into_bytes())
            .collect();
        let pks: Vec<String> = (0..50).map(|i| format!("pk-{}", i % 7)).collect();
        let ehk = |i: usize| {
            i.is_multiple_of(3)
                .then_some(if i.is_multiple_of(2) { "1" } else { "2" })
        };
        let input = aggregate((0..50).map(|i| user(&pks[i], ehk(i), &datas[i])));
        let agg = expect_aggregate(deaggregate(input.clone().into()));
        assert_eq!(agg.len(), 50);
        assert_eq!(agg.partition_keys.len(), 7, "each key stored once");
        let subs: Vec<SubRecord> = agg.sub_records().map(|s| s.expect("good")).collect();
        for (i, s) in subs.iter().enumerate() {
            assert_eq!(s.subsequence as usize, i);
            assert_eq!(s.partition_key, pks[i]);
            assert_eq!(s.explicit_hash_key, ehk(i));
            assert_eq!(&s.data[..], &datas[i][..]);
        }
    }

    #[test]
    fn data_borrows_from_the_input() {
        let input: Bytes = aggregate([user("k", None, b"payload bytes")]).into();
        let range = input.as_ptr_range();
        let agg = expect_aggregate(deaggregate(input.clone()));
        let sub = agg.sub_records().next().expect("one").expect("good");
        assert!(
            range.contains(&sub.data.as_ptr()),
            "data is a slice of the input, not a copy"
        );
    }

    #[test]
    fn bytes_that_are_not_an_aggregate_are_plain() {
        assert_eq!(expect_plain(Bytes::new()), NotAggregate::TooShort);
        assert_eq!(
            expect_plain(Bytes::from_static(b"{\"a\":1}")),
            NotAggregate::TooShort
        );
        // Magic and MD5 of an empty protobuf: nothing inside (reference rule).
        assert_eq!(expect_plain(framed(b"")), NotAggregate::TooShort);
        let good = aggregate([user("k", None, b"x")]);
        let mut other_magic = good.clone();
        other_magic[0] = 0xF4;
        assert_eq!(expect_plain(other_magic.into()), NotAggregate::NoMagic);
        let json = br#"{"sym":"AAPL","price":1.5,"size":100,"pad":"............"}"#;
        assert_eq!(
            expect_plain(Bytes::from_static(json)),
            NotAggregate::NoMagic
        );
    }

    #[test]
    fn a_wrong_digest_is_plain() {
        let mut bad_md5 = aggregate([user("k", None, b"x")]);
        let last = bad_md5.len() - 1;
        bad_md5[last] ^= 1;
        assert_eq!(expect_plain(bad_md5.into()), NotAggregate::DigestMismatch);
        // A flipped body byte breaks the digest too.
        let mut bad_body = aggregate([user("k", None, b"x")]);
        bad_body[6] ^= 0x40;
        assert_eq!(expect_plain(bad_body.into()), NotAggregate::DigestMismatch);
    }

    #[test]
    fn truncated_or_incomplete_protobuf_with_a_matching_digest_is_plain() {
        let good = aggregate([user("key", None, b"hello"), user("key", None, b"world")]);
        let body = &good[MAGIC.len()..good.len() - DIGEST_LEN];
        for cut in 1..body.len() {
            // Cuts on a field boundary still decode (protobuf cannot tell);
            // the rest must be plain, never a panic.
            if let Aggregation::Aggregate(a) = deaggregate(framed(&body[..cut])) {
                assert!(a.len() <= 2);
            }
        }
        let why = expect_plain(framed(&body[..body.len() - 1]));
        assert!(matches!(why, NotAggregate::Undecodable(_)), "{why:?}");
        // Field 3 claims 100 bytes, 1 present.
        assert!(matches!(
            expect_plain(framed(&[0x1a, 100, 0])),
            NotAggregate::Undecodable(_)
        ));
        // A record without its required data.
        // (Long enough to pass the census: the decoder must notice.)
        let no_data = wire::Record {
            partition_key_index: Some(0),
            explicit_hash_key_index: Some(0),
            data: None,
        };
        let env = wire::AggregatedRecord {
            partition_key_table: vec!["k".into()],
            explicit_hash_key_table: vec!["1".into()],
            records: vec![no_data.encode_to_vec().into()],
        };
        let why = expect_plain(framed(&env.encode_to_vec()));
        assert_eq!(
            why.to_string(),
            "KPL magic and MD5 match but the protobuf does not decode: \
             record 0: required field data is missing"
        );
        // An empty record entry cannot hold its required fields.
        let why = expect_plain(framed(&[0x0a, 1, b'k', 0x1a, 0]));
        assert_eq!(
            why,
            NotAggregate::Undecodable(
                "record 0 is 0 bytes, too short for its required fields".into()
            )
        );
        // Group wire types do not belong in an aggregate.
        assert!(matches!(
            expect_plain(framed(&[0x0b, 0x0c])),
            NotAggregate::Undecodable(_)
        ));
    }

    #[test]
    fn an_out_of_range_index_spoils_only_its_sub_record() {
        let rec = |pk, ehk, data: &[u8]| {
            wire::Record {
                partition_key_index: Some(pk),
                explicit_hash_key_index: ehk,
                data: Some(Bytes::copy_from_slice(data)),
            }
            .encode_to_vec()
            .into()
        };
        let env = wire::AggregatedRecord {
            partition_key_table: vec!["a".into(), "b".into()],
            explicit_hash_key_table: vec!["7".into()],
            records: vec![
                rec(0, None, b"one"),
                rec(2, None, b"two"),
                rec(1, Some(0), b"three"),
                rec(1, Some(1), b"four"),
                rec(u64::MAX, None, b"five"),
            ],
        };
        let agg = expect_aggregate(deaggregate(framed(&env.encode_to_vec())));
        let got: Vec<_> = agg.sub_records().collect();
        assert_eq!(got.len(), 5);
        let good = |i: usize| got[i].as_ref().expect("good sub-record");
        assert_eq!(
            (good(0).partition_key, &good(0).data[..]),
            ("a", &b"one"[..])
        );
        assert_eq!(good(2).partition_key, "b");
        assert_eq!(good(2).explicit_hash_key, Some("7"));
        assert_eq!(&good(2).data[..], b"three");
        let err = got[1].as_ref().expect_err("bad pk index");
        assert_eq!(&err.data[..], b"two", "a bad sub-record keeps its data");
        assert_eq!(
            err.to_string(),
            "KPL sub-record 1: partition_key_index 2 is out of range (the table has 2 keys)"
        );
        assert_eq!(
            got[3].as_ref().expect_err("bad ehk index").defect,
            SubRecordDefect::ExplicitHashKeyIndexOutOfRange {
                index: 1,
                table_len: 1
            }
        );
        assert_eq!(got[4].as_ref().expect_err("huge index").subsequence, 4);
    }

    #[test]
    fn an_aggregate_without_records_is_empty() {
        // Only a key table: a valid, non-empty protobuf with no records.
        let env = wire::AggregatedRecord {
            partition_key_table: vec!["k".into()],
            ..Default::default()
        };
        let agg = expect_aggregate(deaggregate(framed(&env.encode_to_vec())));
        assert!(agg.is_empty());
        assert_eq!(agg.sub_records().count(), 0);
        let none = aggregate(std::iter::empty());
        assert_eq!(none.len(), MAGIC.len() + DIGEST_LEN, "an empty protobuf");
        assert_eq!(expect_plain(none.into()), NotAggregate::TooShort);
    }

    #[test]
    fn tags_and_unknown_fields_are_skipped() {
        let mut record = wire::Record {
            partition_key_index: Some(0),
            explicit_hash_key_index: None,
            data: Some(Bytes::from_static(b"d")),
        }
        .encode_to_vec();
        // tags = 4: Tag { key = "t", value = "v" }
        record.extend_from_slice(&[0x22, 6, 0x0a, 1, b't', 0x12, 1, b'v']);
        let env = wire::AggregatedRecord {
            partition_key_table: vec!["k".into()],
            records: vec![record.into()],
            ..Default::default()
        };
        let agg = expect_aggregate(deaggregate(framed(&env.encode_to_vec())));
        let sub = agg.sub_records().next().expect("one").expect("good");
        assert_eq!((sub.partition_key, &sub.data[..]), ("k", &b"d"[..]));
    }
}
