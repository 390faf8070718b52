//! Hostile and broken input: every bad record is its own error, nothing
//! panics, and the batch goes on with the next record.

use std::path::Path;

use proptest::prelude::*;
use tickbridge::kdb::encode::encode_message;
use tickbridge::kdb::message::MsgType;
use tickbridge::schema::{BatchBuilder, Catalog, Limits, RecordError};

fn catalog() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap()
}

const GOOD: &str = r#"{"type":"trade","sym":"AAPL","price":187.25,"size":300,"side":"B","id":"g"}"#;

/// Decodes good, bad, good for each bad record; returns the errors and
/// checks the good ones all landed.
fn interleaved(c: &Catalog, bads: &[Vec<u8>]) -> Vec<RecordError> {
    let mut b = BatchBuilder::new();
    let mut errors = Vec::new();
    c.decode_record(GOOD.as_bytes(), "s", &mut b).unwrap();
    for bad in bads {
        match c.decode_record(bad, "s", &mut b) {
            Err(e) => errors.push(e),
            Ok(r) => panic!(
                "accepted {:?}: {r:?}",
                String::from_utf8_lossy(&bad[..bad.len().min(80)])
            ),
        }
        c.decode_record(GOOD.as_bytes(), "s", &mut b).unwrap();
    }
    assert_eq!(b.runs().len(), 1);
    assert_eq!(b.runs()[0].records, bads.len() + 1);
    assert_eq!(b.rows(), bads.len() + 1);
    assert!(b.runs()[0]
        .columns
        .iter()
        .all(|c| c.len() == bads.len() + 1));
    let mut fast = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut fast)
        .unwrap();
    assert_eq!(
        fast,
        encode_message(&b.run_to_k(0, ".u.upd").unwrap(), MsgType::Async)
    );
    errors
}

#[test]
fn bad_utf8() {
    let bads: Vec<Vec<u8>> = vec![
        b"{\"type\":\"trade\",\"sym\":\"\xff\"}".to_vec(),
        b"\xc0\xaf".to_vec(),                                  // overlong '/'
        b"{\"sym\":\"\xed\xa0\x80\"}".to_vec(),                // a UTF-16 surrogate
        b"{\"type\":\"trade\",\"sym\":\"\xe2\x82\"}".to_vec(), // cut short
    ];
    let errs = interleaved(&catalog(), &bads);
    let offsets: Vec<_> = errs
        .iter()
        .map(|e| match e {
            RecordError::BadUtf8 { offset } => *offset,
            e => panic!("{e:?}"),
        })
        .collect();
    assert_eq!(offsets, [23, 0, 8, 23]);
    assert_eq!(
        errs[0].to_string(),
        "record is not valid UTF-8 (bad byte at offset 23)"
    );
}

#[test]
fn bad_json() {
    let bads: Vec<Vec<u8>> = [
        "",
        "   ",
        "{",
        r#"{"type":"trade","sym":"A",}"#,
        r#"{"type":"trade" "sym":"A"}"#,
        r#"{"type":'trade'}"#,
        r#"{"type":"trade","price":01}"#,
        r#"{"type":"trade","price":NaN}"#,
        r#"{"type":"trade","sym":"\q"}"#,
        r#"{"type":"trade","sym":"\ud83d"}"#,
        "{\"type\":\"trade\",\"sym\":\"a\tb\"}",
        r#"{"type":"trade"}{"type":"trade"}"#,
        "\u{feff}{}",
        "/* c */ {}",
        "{\"a\":1}\0",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let errs = interleaved(&catalog(), &bads);
    for (e, bad) in errs.iter().zip(&bads) {
        assert!(
            matches!(e, RecordError::BadJson { .. }),
            "{:?}: {e:?}",
            String::from_utf8_lossy(bad)
        );
    }
    assert_eq!(
        errs[3].to_string(),
        "record is not valid JSON: expected a string key at byte 26"
    );
}

#[test]
fn deep_nesting() {
    let deep_arrays = "[".repeat(10_000) + &"]".repeat(10_000);
    let deep_objects = r#"{"a":"#.repeat(10_000) + "1" + &"}".repeat(10_000);
    let deep_unclosed = r#"{"type":"trade","x":"#.to_string() + &"[".repeat(10_000);
    let deep_in_field = format!(
        r#"{{"type":"trade","sym":"A","price":1,"size":1,"id":"d","x":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let bads: Vec<Vec<u8>> = [deep_arrays, deep_objects, deep_unclosed, deep_in_field]
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let errs = interleaved(&catalog(), &bads);
    for e in &errs {
        assert!(matches!(e, RecordError::TooDeep { limit: 64, .. }), "{e:?}");
    }
    assert_eq!(
        errs[0].to_string(),
        "record nests deeper than 64 levels (at byte 64)"
    );

    // Raising the limit far beyond any call stack is safe: no recursion.
    let c = catalog().with_limits(Limits {
        max_depth: 10_000_000,
        max_record_bytes: 64 << 20,
    });
    let n = 1_000_000;
    let rec = format!(
        r#"{{"type":"trade","sym":"A","price":1,"size":1,"id":"d","x":{}1{}}}"#,
        "[".repeat(n),
        "]".repeat(n)
    );
    let mut b = BatchBuilder::new();
    assert_eq!(
        c.decode_record(rec.as_bytes(), "s", &mut b).unwrap().rows,
        1
    );
}

#[test]
fn ten_megabyte_records() {
    let big = format!(
        r#"{{"type":"trade","sym":"A","price":1,"size":1,"id":"big","pad":"{}"}}"#,
        "x".repeat(10 << 20)
    );
    let errs = interleaved(&catalog(), &[big.clone().into_bytes()]);
    assert_eq!(
        errs,
        [RecordError::TooLarge {
            size: big.len(),
            limit: 1 << 20
        }]
    );
    assert!(errs[0].to_string().contains("over the 1048576-byte limit"));

    // With a higher limit the same record decodes, and a 10 MB symbol too.
    let c = catalog().with_limits(Limits {
        max_record_bytes: 16 << 20,
        ..Limits::default()
    });
    let mut b = BatchBuilder::new();
    assert_eq!(
        c.decode_record(big.as_bytes(), "s", &mut b).unwrap().rows,
        1
    );
    let big_sym = format!(
        r#"{{"type":"trade","sym":"{}","price":1,"size":1,"id":"big"}}"#,
        "S".repeat(10 << 20)
    );
    c.decode_record(big_sym.as_bytes(), "s", &mut b).unwrap();
    let mut out = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut out).unwrap();
    assert!(out.len() > 10 << 20);
}

#[test]
fn unknown_table_and_wrong_shapes() {
    let bads: Vec<Vec<u8>> = [
        r#"{"type":"order","sym":"A"}"#,
        r#"{"sym":"A"}"#,
        r#"{"type":["trade"]}"#,
        r#"[{"type":"trade","sym":"A","price":1,"size":1,"id":"a"},{"type":"nope"}]"#,
        "[]",
        "42",
        r#"{"type":"trade","sym":"A","price":1,"size":1,"id":"a","side":"BUY"}"#,
        r#"{"type":"trade","sym":{"x":1},"price":1,"size":1,"id":"a"}"#,
        r#"{"type":"trade","sym":"A","price":1,"size":1e400,"id":"a"}"#,
        r#"{"type":"trade","sym":"A","price":1e400,"size":1,"id":"a"}"#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let errs = interleaved(&catalog(), &bads);
    assert!(
        matches!(errs[0], RecordError::NoTable { .. }),
        "{:?}",
        errs[0]
    );
    assert!(errs[0]
        .to_string()
        .starts_with("no table for record (source \"s\", /type = \"order\""));
    assert!(matches!(errs[1], RecordError::NoTable { .. }));
    assert!(matches!(errs[2], RecordError::NoTable { .. }));
    assert!(matches!(errs[3], RecordError::NoTable { .. }));
    assert!(matches!(errs[4], RecordError::NotRecord { .. }));
    assert!(matches!(errs[5], RecordError::NotRecord { .. }));
    assert!(matches!(errs[6], RecordError::BadChar { .. }));
    assert!(matches!(errs[7], RecordError::WrongType { .. }));
    assert!(matches!(errs[8], RecordError::OutOfRange { .. }));
    assert!(matches!(errs[9], RecordError::OutOfRange { .. }));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes: an error or rows, never a panic, and the builder
    /// stays consistent.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = catalog();
        let mut b = BatchBuilder::new();
        let _ = c.decode_record(&bytes, "option-inputs", &mut b);
        let _ = c.decode_record(&bytes, "s", &mut b);
        c.decode_record(GOOD.as_bytes(), "s", &mut b).unwrap();
        for r in b.runs() {
            prop_assert!(r.columns.iter().all(|col| col.len() == r.rows));
        }
    }

    /// A good record with one byte changed or cut short.
    #[test]
    fn mutated_records_never_panic(pos in 0usize..200, byte in any::<u8>(), cut in any::<bool>()) {
        let c = catalog();
        let all = r#"{"type":"alltypes","v":{"time":"14:30:00.5","sym":"AAPL","id":"01234567-89ab-cdef-0123-456789abcdef","flag":true,"b":255,"h":-7,"i":70000,"j":-5,"e":1.5,"f":"Infinity","c":"x","s":"a b","str":"hi","p":"2025-11-25T14:30:00Z","pms":1764081000123,"m":"2025-11","d":"2025-11-25","z":"2025-11-25T12:00:00Z","n":"01:02:03","u":"14:30","v":"14:30:15","t":"14:30:15.123"}}"#;
        for base in [GOOD, all] {
            let mut rec = base.as_bytes().to_vec();
            let p = pos % rec.len();
            if cut { rec.truncate(p) } else { rec[p] = byte }
            let mut b = BatchBuilder::new();
            let _ = c.decode_record(&rec, "s", &mut b);
            c.decode_record(base.as_bytes(), "s", &mut b).unwrap();
            for r in b.runs() {
                prop_assert!(r.columns.iter().all(|col| col.len() == r.rows));
            }
        }
    }
}
