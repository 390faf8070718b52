//! Values kdb+ cannot carry exactly, and JSON keys given twice.
//!
//! A NUL inside a symbol value is that record's own error (kdb+ symbols are
//! NUL-terminated, so it would arrive as a different symbol); the batch
//! goes on and every message length stays true. A NUL in a string (char
//! vector) column is carried whole. A key given twice in one object means
//! its last value, as serde_json, Python and JavaScript read it, for
//! columns, routing fields and payload keys alike.

use proptest::prelude::*;
use tickbridge::kdb::{decode_message, encode_message, MsgType, Vector, K};
use tickbridge::schema::json::Tape;
use tickbridge::schema::{BatchBuilder, Catalog, RecordError, Schema};

const TRADE: &str = r#"{"table":"trade","route":{"field":"/type","equals":"trade"},
  "payload_key":["/id"],
  "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
    {"name":"sym","type":"symbol"},{"name":"price","type":"float"},
    {"name":"side","type":"char","nullable":true},
    {"name":"note","type":"string","nullable":true},
    {"name":"venue","type":"symbol","source":"/v/venue","nullable":true}]}"#;
const QUOTE: &str = r#"{"table":"quote","route":{"field":"/type","equals":"quote"},
  "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
    {"name":"sym","type":"symbol"},{"name":"bid","type":"float","nullable":true}]}"#;
const LINES: &str = r#"{"table":"lines","route":{"source":"lines"},
  "delimited":{"separator":" ","header":["sym","px"]},
  "columns":[{"name":"time","type":"timespan","stamp":"tickerplant"},
    {"name":"sym","type":"symbol"},{"name":"px","type":"float"}]}"#;

fn catalog() -> Catalog {
    let schemas: Vec<Schema> = [TRADE, QUOTE, LINES]
        .iter()
        .map(|s| serde_json::from_str(s).expect("schema"))
        .collect();
    Catalog::from_schemas(schemas).expect("catalog")
}

/// The one run's column `i` as kdb+ reads it from the fast path's bytes,
/// after checking the message's declared length is its real length.
fn sent_column(b: &BatchBuilder, run: usize, i: usize) -> K {
    let mut out = Vec::new();
    let n = b
        .encode_run(run, ".u.upd", MsgType::Async, &mut out)
        .expect("run");
    assert_eq!(n, out.len());
    let declared = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
    assert_eq!(declared, out.len(), "header length is the message length");
    assert_eq!(
        out,
        encode_message(&b.run_to_k(run, ".u.upd").expect("run"), MsgType::Async)
    );
    let (_, v) = decode_message(&out).expect("our update decodes");
    let K::List(_, items) = v else {
        panic!("not an update: {v:?}")
    };
    let Some(K::List(_, cols)) = items.get(2) else {
        panic!("no columns: {items:?}")
    };
    cols[i].clone()
}

#[test]
fn a_nul_in_a_symbol_is_that_records_error_and_the_batch_goes_on() {
    let c = catalog();
    let mut b = BatchBuilder::new();
    let good = |id: &str, sym: &str| {
        format!(r#"{{"type":"trade","id":"{id}","sym":"{sym}","price":1.5}}"#)
    };
    c.decode_record(good("n-1", "AAPL").as_bytes(), "s", &mut b)
        .expect("good record");
    // The issue's record, and a NUL in a nested symbol column.
    let bads = [
        (
            r#"{"type":"trade","id":"n-2","sym":"a\u0000b","price":1.5}"#,
            r#"table trade, column sym, field sym: "a\u0000b" cannot be sent to kdb+: symbol contains NUL at byte 1; kdb+ symbols are NUL-terminated"#,
        ),
        (
            r#"{"type":"trade","id":"n-3","sym":"X","price":1.5,"v":{"venue":"\u0000"}}"#,
            r#"table trade, column venue, field /v/venue: "\u0000" cannot be sent to kdb+: symbol contains NUL at byte 0; kdb+ symbols are NUL-terminated"#,
        ),
    ];
    for (bad, want) in bads {
        let e = c
            .decode_record(bad.as_bytes(), "s", &mut b)
            .expect_err("a NUL in a symbol is refused");
        assert!(matches!(e, RecordError::Unrepresentable { .. }), "{e:?}");
        assert_eq!(e.to_string(), want);
    }
    c.decode_record(good("n-4", "MSFT").as_bytes(), "s", &mut b)
        .expect("good record after the bad ones");
    assert_eq!(b.runs().len(), 1);
    assert_eq!(b.runs()[0].rows, 2);
    // sym is column 0 of what is sent (time is the tickerplant's).
    assert_eq!(
        sent_column(&b, 0, 0),
        K::vector(Vector::Symbol(vec!["AAPL".into(), "MSFT".into()]))
    );
}

#[test]
fn a_nul_in_delimited_text_for_a_symbol_is_refused_too() {
    let c = catalog();
    let mut b = BatchBuilder::new();
    let e = c
        .decode_record(b"A\0B 1.5\n", "lines", &mut b)
        .expect_err("refused");
    assert!(matches!(e, RecordError::Unrepresentable { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("symbol contains NUL at byte 1; kdb+ symbols are NUL-terminated"),
        "{e}"
    );
    c.decode_record(b"AB 1.5\n", "lines", &mut b).expect("good");
    assert_eq!(b.rows(), 1);
}

#[test]
fn strings_and_chars_carry_a_nul_whole() {
    let c = catalog();
    let mut b = BatchBuilder::new();
    c.decode_record(
        br#"{"type":"trade","id":"1","sym":"A","price":1,"note":"x\u0000y","side":"\u0000"}"#,
        "s",
        &mut b,
    )
    .expect("a NUL in a string or a char is fine");
    c.decode_record(
        br#"{"type":"trade","id":"2","sym":"B","price":2,"note":"\u0000","side":"S"}"#,
        "s",
        &mut b,
    )
    .expect("good");
    // Columns sent: sym price side note venue.
    assert_eq!(
        sent_column(&b, 0, 2),
        K::vector(Vector::Char(vec![0, b'S']))
    );
    assert_eq!(
        sent_column(&b, 0, 3),
        K::list(vec![K::string(b"x\0y"), K::string(b"\0")])
    );
}

#[test]
fn a_symbol_default_with_a_nul_is_refused_at_load() {
    let text = r#"{"table":"t","route":{"default":true},"columns":[
        {"name":"time","type":"timespan","stamp":"tickerplant"},
        {"name":"sym","type":"symbol","default":"a\u0000"}]}"#;
    let schema: Schema = serde_json::from_str(text).expect("schema");
    let e = Catalog::from_schemas(vec![schema]).expect_err("refused");
    assert!(
        e.to_string()
            .contains("symbol contains NUL at byte 1; kdb+ symbols are NUL-terminated"),
        "{e}"
    );
}

#[test]
fn a_repeated_key_means_its_last_value() {
    let c = catalog();
    let mut b = BatchBuilder::new();
    let rows = c
        .decode_record(
            br#"{"type":"trade","id":"k1","sym":"A","price":1,"price":2,"id":"k2","v":{"venue":"X"},"v":{"venue":"Y"}}"#,
            "s",
            &mut b,
        )
        .expect("decodes");
    // The payload key is the last id.
    assert_eq!(rows.key.as_deref(), Some("trade#k2"));
    assert_eq!(sent_column(&b, 0, 1), K::vector(Vector::Float(vec![2.0])));
    // A repeated object: the path goes into the last one.
    assert_eq!(
        sent_column(&b, 0, 4),
        K::vector(Vector::Symbol(vec!["Y".into()]))
    );
}

#[test]
fn a_repeated_routing_field_routes_by_its_last_value() {
    let c = catalog();
    let mut b = BatchBuilder::new();
    let to_trade = c
        .decode_record(
            br#"{"type":"quote","sym":"A","price":1,"id":"r","type":"trade"}"#,
            "s",
            &mut b,
        )
        .expect("routes");
    let to_quote = c
        .decode_record(
            br#"{"type":"trade","sym":"A","bid":1,"type":"quote"}"#,
            "s",
            &mut b,
        )
        .expect("routes");
    assert_eq!(b.runs()[to_trade.run].name, "trade");
    assert_eq!(b.runs()[to_quote.run].name, "quote");
    // An escaped spelling of the key is the same key.
    let escaped = c
        .decode_record(
            br#"{"type":"trade","sym":"A","bid":1,"\u0074ype":"quote"}"#,
            "s",
            &mut b,
        )
        .expect("routes");
    assert_eq!(b.runs()[escaped.run].name, "quote");
}

proptest! {
    /// Objects with repeated keys: the reader's lookup gives the value
    /// serde_json keeps (the last) for every key.
    #[test]
    fn lookups_agree_with_serde_json(
        members in proptest::collection::vec((0usize..4, any::<i32>(), any::<bool>()), 0..12),
    ) {
        let keys = ["a", "b", "c", "d"];
        let text = format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v, escape)| {
                    // Sometimes spell the key with an escape.
                    let key = if *escape {
                        format!("\\u00{:02x}", keys[*k].as_bytes()[0])
                    } else {
                        keys[*k].to_string()
                    };
                    format!("\"{key}\":{v}")
                })
                .collect::<Vec<_>>()
                .join(",")
        );
        let serde: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        let mut tape = Tape::new();
        tape.parse(&text, 8).expect("valid JSON");
        for k in keys {
            let ours = tape.get(&text, 0, k).map(|i| tape.raw(&text, i).to_string());
            let theirs = serde.get(k).map(|v| v.to_string());
            prop_assert_eq!(ours, theirs, "key {} in {}", k, text);
        }
    }
}
