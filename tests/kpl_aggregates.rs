//! KPL aggregates written by a third-party producer (PyPI `aws-kinesis-agg`,
//! through `tests/py/kpl_produce.py`): our deaggregator must give back
//! exactly the user records the producer was handed, in order, with their
//! keys, and agree with that package's own deaggregator on the same bytes.
//! Hostile aggregates must not make us allocate much more than their size.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tickbridge::source::kpl::{self, Aggregation, Bytes, SubRecordDefect};

/// A user record as the producer was given it.
#[derive(Clone, Debug, PartialEq)]
struct User {
    pk: String,
    ehk: Option<String>,
    data: Vec<u8>,
}

struct Produced {
    /// Each aggregate's bytes and the package's own reading of them.
    aggregates: Vec<(Vec<u8>, Vec<Value>)>,
}

fn produce(users: &[User]) -> Produced {
    let spec = json!({
        "records": users.iter().map(|u| json!({
            "pk": u.pk, "ehk": u.ehk, "data": B64.encode(&u.data),
        })).collect::<Vec<_>>()
    });
    let out = common::run_python("kpl_produce.py", &[], Some(spec.to_string().as_bytes()));
    let v: Value = serde_json::from_slice(&out.stdout).expect("kpl_produce.py prints JSON");
    let aggregates = v["aggregates"]
        .as_array()
        .expect("aggregates")
        .iter()
        .map(|a| {
            let bytes = B64
                .decode(a["data"].as_str().expect("data"))
                .expect("base64");
            let n = a["count"].as_u64().expect("count") as usize;
            let reading = a["deaggregated"].as_array().expect("deaggregated").clone();
            assert_eq!(reading.len(), n, "the package reads back its own count");
            (bytes, reading)
        })
        .collect();
    Produced { aggregates }
}

/// Our reading of one aggregate; every sub-record must be good here.
fn ours(bytes: &[u8]) -> Vec<(u32, User)> {
    match kpl::deaggregate(Bytes::copy_from_slice(bytes)) {
        Aggregation::Plain { why, .. } => panic!("a third-party aggregate read as plain: {why}"),
        Aggregation::Aggregate(a) => a
            .sub_records()
            .map(|s| {
                let s = s.expect("every sub-record is good");
                let user = User {
                    pk: s.partition_key.to_owned(),
                    ehk: s.explicit_hash_key.map(str::to_owned),
                    data: s.data.to_vec(),
                };
                (s.subsequence, user)
            })
            .collect(),
    }
}

/// Deaggregates everything produced and checks it against the input, and
/// each aggregate against the package's own reading.
fn check_round_trip(users: &[User]) -> Produced {
    let produced = produce(users);
    let mut got: Vec<User> = Vec::new();
    for (bytes, reading) in &produced.aggregates {
        let subs = ours(bytes);
        for (i, (sub, _)) in subs.iter().enumerate() {
            assert_eq!(*sub as usize, i, "subsequence numbers count from 0");
        }
        let first_ehk = subs.iter().find_map(|(_, u)| u.ehk.clone());
        for ((sub, u), theirs) in subs.iter().zip(reading) {
            assert_eq!(theirs["sub"].as_u64(), Some(u64::from(*sub)));
            assert_eq!(theirs["pk"].as_str(), Some(u.pk.as_str()));
            let data = B64
                .decode(theirs["data"].as_str().expect("data"))
                .expect("b64");
            assert_eq!(data, u.data, "sub-record {sub}");
            // The package fills a missing explicit hash key with the
            // table's first one (it indexes without checking presence);
            // we report none, which is what the producer was given.
            let their_ehk = theirs["ehk"].as_str().map(str::to_owned);
            match &u.ehk {
                Some(_) => assert_eq!(their_ehk, u.ehk, "sub-record {sub}"),
                None => assert_eq!(their_ehk, first_ehk, "sub-record {sub}"),
            }
        }
        got.extend(subs.into_iter().map(|(_, u)| u));
    }
    assert_eq!(got.len(), users.len(), "as many user records out as in");
    for (i, (g, u)) in got.iter().zip(users).enumerate() {
        assert_eq!(g, u, "user record {i}");
    }
    produced
}

fn user(pk: &str, ehk: Option<&str>, data: impl Into<Vec<u8>>) -> User {
    User {
        pk: pk.to_owned(),
        ehk: ehk.map(str::to_owned),
        data: data.into(),
    }
}

#[test]
fn third_party_aggregate_gives_back_every_user_record_with_its_keys() {
    let pks = ["AAPL", "MSFT", "東京/7203", "🚀-rocket", "a"];
    let ehks = [
        None,
        Some("0"),
        Some("340282366920938463463374607431768211455"),
        None,
        Some("170141183460469231731687303715884105728"),
    ];
    let mut users: Vec<User> = (0..40)
        .map(|i| {
            let data = json!({"sym": pks[i % 5], "px": i as f64 + 0.25, "note": "prix €, 価格, ✓"});
            user(pks[(i * 3) % 5], ehks[i % 5], data.to_string())
        })
        .collect();
    users.push(user("empty-data", None, Vec::new()));
    users.push(user(
        "binary",
        Some("42"),
        vec![0xF3, 0x89, 0x9A, 0xC2, 0, 0xFF],
    ));
    users.push(user("AAPL", None, "last"));
    let produced = check_round_trip(&users);
    assert_eq!(
        produced.aggregates.len(),
        1,
        "small records fit one aggregate"
    );
}

#[test]
fn aggregates_near_the_one_mib_kinesis_limit() {
    const MIB: usize = 1024 * 1024;
    // ~3.1 MB of user records: the producer must start new aggregates. Its
    // size estimate is conservative: full ones come out at ~1.03 MB.
    let users: Vec<User> = (0..7000)
        .map(|i| {
            let pad = "x".repeat(300 + i % 200);
            let data = json!({"i": i, "sym": format!("S{}", i % 97), "pad": pad, "u": "ü"});
            let ehk = i
                .is_multiple_of(11)
                .then(|| format!("{}", (i as u128) << 100));
            user(&format!("pk-{}", i % 131), ehk.as_deref(), data.to_string())
        })
        .collect();
    let produced = check_round_trip(&users);
    let sizes: Vec<usize> = produced.aggregates.iter().map(|(b, _)| b.len()).collect();
    assert!(sizes.len() >= 3, "several aggregates: {sizes:?}");
    for s in &sizes[..sizes.len() - 1] {
        assert!(
            *s <= MIB && *s > 1_000_000,
            "a full aggregate sits near, not over, 1 MiB: {sizes:?}"
        );
    }
}

#[test]
fn a_damaged_third_party_aggregate_is_plain() {
    let users: Vec<User> = (0..5).map(|i| user("k", None, format!("r{i}"))).collect();
    let produced = produce(&users);
    let (good, _) = &produced.aggregates[0];
    let last = good.len() - 1;
    for at in [0, 5, last] {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let bad = Bytes::from(bad);
        match kpl::deaggregate(bad.clone()) {
            Aggregation::Plain { data, .. } => assert_eq!(data, bad),
            Aggregation::Aggregate(_) => panic!("byte {at} flipped, still an aggregate"),
        }
    }
}

// ---- allocation bounds --------------------------------------------------

/// Counts this thread's live heap bytes and their peak, so tests running in
/// parallel do not disturb each other's figures.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Peak heap bytes allocated (above the start) while `f` runs on this thread.
fn peak_during<T>(f: impl FnOnce() -> T) -> (usize, T) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get) - base;
    (peak.max(0) as usize, out)
}

/// Magic + body + the body's MD5, so the checks before the protobuf pass
/// and the decoder itself is what gets tested.
fn framed(body: &[u8]) -> Bytes {
    use md5::{Digest, Md5};
    let mut out = kpl::MAGIC.to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(Md5::digest(body).as_slice());
    out.into()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[test]
fn claimed_lengths_are_not_allocated() {
    for (field, claim) in [(1u8, u64::from(u32::MAX)), (3, 1 << 40), (3, u64::MAX)] {
        let mut body = vec![(field << 3) | 2];
        varint(claim, &mut body);
        body.extend_from_slice(b"only a few bytes follow");
        let input = framed(&body);
        let (peak, got) = peak_during(|| kpl::deaggregate(input.clone()));
        assert!(
            matches!(got, Aggregation::Plain { .. }),
            "field {field} claiming {claim}"
        );
        assert!(
            peak < 4096,
            "claim {claim} in field {field}: {peak} bytes allocated"
        );
    }
}

#[test]
fn many_tiny_records_cost_a_bounded_multiple_of_the_input() {
    const N: usize = 170_000; // ~1 MiB of the smallest valid records
                              // Each `1a 04 08 00 1a 00`: partition key index 0 of an empty table, so
                              // every sub-record is bad, and must be reported, not crash or balloon.
    let mut body = Vec::with_capacity(6 * N);
    for _ in 0..N {
        body.extend_from_slice(&[0x1a, 0x04, 0x08, 0x00, 0x1a, 0x00]);
    }
    let input = framed(&body);
    let (peak, bad) = peak_during(|| {
        match kpl::deaggregate(input.clone()) {
        Aggregation::Aggregate(a) => a
            .sub_records()
            .filter(|s| {
                matches!(
                    s,
                    Err(e) if e.defect == SubRecordDefect::PartitionKeyIndexOutOfRange { index: 0, table_len: 0 }
                )
            })
            .count(),
        Aggregation::Plain { why, .. } => panic!("plain: {why}"),
    }
    });
    assert_eq!(bad, N);
    let factor = peak as f64 / input.len() as f64;
    println!(
        "{N} tiny records: {} input bytes, peak {peak} heap bytes ({factor:.1}x)",
        input.len()
    );
    assert!(factor < 6.0, "peak {peak} for {} input bytes", input.len());

    // The same bytes as empty record entries are refused before any
    // per-record allocation.
    let empties = framed(&[0x1a, 0x00].repeat(N * 3));
    let (peak, got) = peak_during(|| kpl::deaggregate(empties.clone()));
    assert!(matches!(got, Aggregation::Plain { .. }));
    assert!(peak < 4096, "{peak} bytes for empty entries");
}

#[test]
fn a_huge_key_table_costs_a_bounded_multiple_of_the_input() {
    // ~1 MiB of empty partition keys (`0a 00`), the cheapest entry there is.
    let input = framed(&[0x0a, 0x00].repeat(500_000));
    let (peak, got) = peak_during(|| kpl::deaggregate(input.clone()));
    match got {
        Aggregation::Aggregate(a) => assert!(a.is_empty()),
        Aggregation::Plain { why, .. } => panic!("plain: {why}"),
    }
    let factor = peak as f64 / input.len() as f64;
    println!(
        "500000 empty keys: {} input bytes, peak {peak} ({factor:.1}x)",
        input.len()
    );
    assert!(factor < 13.0, "peak {peak} for {} input bytes", input.len());
}
