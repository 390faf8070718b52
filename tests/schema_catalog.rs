//! Loading and checking schemas, routing, payload keys, arrays, delimited
//! text, rollback of a failed record, runs, and the encoded updates.

use std::path::Path;

use tickbridge::kdb::encode::encode_message;
use tickbridge::kdb::message::MsgType;
use tickbridge::kdb::upd::Column;
use tickbridge::kdb::value::{Vector, K};
use tickbridge::schema::{BatchBuilder, Catalog, CatalogError, Limits, RecordError, Schema};

fn repo_schemas() -> Catalog {
    Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap()
}

fn schema(text: &str) -> Schema {
    serde_json::from_str(text).unwrap()
}

fn issues(texts: &[&str]) -> Vec<String> {
    match Catalog::from_schemas(texts.iter().map(|t| schema(t)).collect()) {
        Err(CatalogError { issues }) => issues.iter().map(|i| i.to_string()).collect(),
        Ok(_) => panic!("expected issues for {texts:?}"),
    }
}

fn one_issue(text: &str, want: &str) {
    let got = issues(&[text]);
    assert!(
        got.iter().any(|i| i.contains(want)),
        "wanted {want:?} in {got:?}"
    );
}

const ROUTE: &str = r#""route":{"default":true}"#;

#[test]
fn repo_schemas_load() {
    let c = repo_schemas();
    let names: Vec<&str> = c.tables().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["alltypes", "optinput", "quote", "trade"]);
    let trade = c.table(c.table_index("trade").unwrap()).unwrap();
    assert!(trade.tickerplant_stamps_time());
    assert_eq!(
        trade.sent_columns().collect::<Vec<_>>(),
        ["sym", "price", "size", "side"]
    );
    let all = c.table(c.table_index("alltypes").unwrap()).unwrap();
    assert!(!all.tickerplant_stamps_time());
    assert_eq!(all.sent_columns().count(), 22);
    assert!(c
        .table(c.table_index("optinput").unwrap())
        .unwrap()
        .takes_delimited_text());
    assert_eq!(c.limits(), Limits::default());
    // Every example loads in tick.q: time and sym first, no keyed table.
    assert_eq!(c.tick_q_issues(), vec![]);
    for t in c.tables() {
        let cols: Vec<&str> = t.schema().columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cols[..2], ["time", "sym"], "{}", t.name());
    }
}

#[test]
fn every_check_names_table_and_column() {
    let col = |spec: &str| {
        format!(r#"{{"table":"t",{ROUTE},"columns":[{{"name":"a","type":"long"}},{spec}]}}"#)
    };
    one_issue(
        &col(r#"{"name":"1x","type":"long"}"#),
        "column 1x: \"1x\" is not a q name",
    );
    one_issue(
        &col(r#"{"name":"sum","type":"long"}"#),
        "column sum: \"sum\" is a q reserved word",
    );
    one_issue(
        &col(r#"{"name":"a","type":"long"}"#),
        "column a: column name repeated",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","source":"a..b"}"#),
        "column b: source: empty segment",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","source":"/a~x"}"#),
        "column b: source: bad escape",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","time_format":"epoch_ms"}"#),
        "column b: time_format is only for temporal columns, not long",
    );
    one_issue(
        &col(r#"{"name":"b","type":"timestamp","time_format":"epoch_days"}"#),
        "column b: time_format epoch_days is only for date columns",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","allow_non_finite":true}"#),
        "column b: allow_non_finite is only for real and float",
    );
    one_issue(
        &col(r#"{"name":"time","type":"timespan","stamp":"tickerplant"}"#),
        "column time: stamp \"tickerplant\" is only for the first column",
    );
    one_issue(
        &col(r#"{"name":"b","type":"boolean","nullable":true}"#),
        "column b: boolean has no null in q",
    );
    one_issue(
        &col(r#"{"name":"b","type":"byte","nullable":true}"#),
        "column b: byte has no null in q",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","default":1.5}"#),
        "column b: default 1.5 does not convert to long",
    );
    one_issue(
        &col(r#"{"name":"b","type":"date","default":"2024-02-30"}"#),
        "column b: default 2024-02-30 does not convert to date",
    );
    one_issue(
        &col(r#"{"name":"b","type":"long","default":"x"}"#),
        "column b: default x does not convert to long",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true},"columns":[{"name":"time","type":"timespan","stamp":"tickerplant","source":"/t"},{"name":"a","type":"long"}]}"#,
        "column time: a tickerplant-stamped column takes no source",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true},"columns":[{"name":"time","type":"timespan","stamp":"tickerplant"}]}"#,
        "table t: no columns besides the tickerplant-stamped time",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true},"columns":[]}"#,
        "table t: no columns",
    );
    one_issue(
        r#"{"table":"select","route":{"default":true},"columns":[{"name":"a","type":"long"}]}"#,
        "table select: table name: \"select\" is a q reserved word",
    );
    one_issue(
        r#"{"table":"t.x","route":{"default":true},"columns":[{"name":"a","type":"long"}]}"#,
        "not a q name",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true},"key":["zz"],"columns":[{"name":"a","type":"long"}]}"#,
        "table t: key column \"zz\" is not a column",
    );
    one_issue(
        r#"{"table":"t","columns":[{"name":"a","type":"long"}]}"#,
        "table t: route: missing",
    );
    one_issue(
        r#"{"table":"t","route":{"field":"/type"},"columns":[{"name":"a","type":"long"}]}"#,
        "route: field and equals go together",
    );
    one_issue(
        r#"{"table":"t","route":{},"columns":[{"name":"a","type":"long"}]}"#,
        "route: give source, field and equals, or default",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true,"source":"s"},"columns":[{"name":"a","type":"long"}]}"#,
        "route: default takes no other condition",
    );
    one_issue(
        r#"{"table":"t","route":{"default":true},"payload_key":["a..b"],"columns":[{"name":"a","type":"long"}]}"#,
        "payload_key: empty segment",
    );
    let delim = |extra: &str, cols: &str| {
        format!(
            r#"{{"table":"t","route":{{"source":"s"}},"delimited":{{{extra}"header":["x","y"]}},"columns":[{cols}]}}"#
        )
    };
    one_issue(
        &delim(r#""separator":"ab","#, r#"{"name":"x","type":"float"}"#),
        "separator must be one ASCII character",
    );
    one_issue(
        &delim("", r#"{"name":"z","type":"float"}"#),
        "column z: source \"z\" is not a name in the delimited header",
    );
    one_issue(
        r#"{"table":"t","route":{"source":"s"},"payload_key":["q"],"delimited":{"header":["x"]},"columns":[{"name":"x","type":"float"}]}"#,
        "payload_key field \"q\" is not a name in the delimited header",
    );
    one_issue(
        r#"{"table":"t","route":{"field":"/k","equals":"v"},"delimited":{"header":["x"]},"columns":[{"name":"x","type":"float"}]}"#,
        "delimited text is routed by source",
    );
}

#[test]
fn checks_across_tables() {
    let t = |name: &str, route: &str| {
        format!(r#"{{"table":"{name}","route":{route},"columns":[{{"name":"a","type":"long"}}]}}"#)
    };
    let got = issues(&[&t("a", r#"{"default":true}"#), &t("a", r#"{"source":"x"}"#)]);
    assert!(
        got.iter()
            .any(|i| i.contains("table a: table name used by another schema")),
        "{got:?}"
    );
    let got = issues(&[
        &t("a", r#"{"default":true}"#),
        &t("b", r#"{"default":true}"#),
    ]);
    assert!(
        got.iter()
            .any(|i| i.contains("table b: route: table a is already the default")),
        "{got:?}"
    );
    let got = issues(&[
        &t("a", r#"{"field":"/k","equals":"v"}"#),
        &t("b", r#"{"field":"k","equals":"w"}"#),
        &t("c", r#"{"field":"/k","equals":"v"}"#),
    ]);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].contains("table c: route: same rule as table a"),
        "{got:?}"
    );
}

#[test]
fn load_reports_every_bad_file_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    w(
        "a.json",
        r#"{"table":"a","route":{"default":true},"columns":[{"name":"x","type":"decimal"}]}"#,
    );
    w("b.json", "{not json");
    w(
        "c.json",
        r#"{"table":"c","route":{"source":"s"},"columns":[{"name":"x","type":"long","colour":"red"}]}"#,
    );
    w(
        "d.json",
        r#"{"table":"d","route":{"source":"s"},"columns":[{"name":"x","type":"long","default":"q"}]}"#,
    );
    w("e.schema.json", "this is skipped");
    w("notes.txt", "so is this");
    let e = Catalog::load(dir.path()).unwrap_err();
    assert_eq!(e.issues.len(), 4, "{e}");
    let text = e.to_string();
    assert!(text.contains("a.json: unknown variant `decimal`"), "{text}");
    assert!(text.contains("b.json: key must be a string"), "{text}");
    assert!(text.contains("c.json: unknown field `colour`"), "{text}");
    assert!(
        text.contains("d.json: table d: column x: default q does not convert to long"),
        "{text}"
    );
    let e = Catalog::load(&dir.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

/// trade (field /type), quote (field /type), a source-only table and a
/// table needing both source and field; plus a catch-all.
fn routed() -> Catalog {
    let t = |name: &str, route: &str| {
        schema(&format!(
            r#"{{"table":"{name}","route":{route},"columns":[{{"name":"sym","type":"symbol","nullable":true}}]}}"#
        ))
    };
    Catalog::from_schemas(vec![
        t("trade", r#"{"field":"/type","equals":"trade"}"#),
        t("quote", r#"{"field":"type","equals":"quote"}"#),
        t("fx", r#"{"source":"fx-stream"}"#),
        t(
            "fxtrade",
            r#"{"source":"fx-stream","field":"/type","equals":"trade"}"#,
        ),
        t("other", r#"{"default":true}"#),
    ])
    .unwrap()
}

fn table_of(c: &Catalog, rec: &str, source: &str) -> Result<String, RecordError> {
    let mut b = BatchBuilder::new();
    let r = c.decode_record(rec.as_bytes(), source, &mut b)?;
    Ok(c.table(r.table).unwrap().name().to_string())
}

#[test]
fn routing() {
    let c = routed();
    assert_eq!(table_of(&c, r#"{"type":"trade"}"#, "s").unwrap(), "trade");
    assert_eq!(table_of(&c, r#"{"type":"quote"}"#, "s").unwrap(), "quote");
    assert_eq!(
        table_of(&c, r#"{"type":"t\u0072ade"}"#, "s").unwrap(),
        "trade"
    );
    assert_eq!(
        table_of(&c, r#"{"type":"order"}"#, "fx-stream").unwrap(),
        "fx"
    );
    // Rules with one condition each: file (here: list) order decides.
    assert_eq!(
        table_of(&c, r#"{"type":"quote"}"#, "fx-stream").unwrap(),
        "quote"
    );
    // Two conditions beat one.
    assert_eq!(
        table_of(&c, r#"{"type":"trade"}"#, "fx-stream").unwrap(),
        "fxtrade"
    );
    assert_eq!(table_of(&c, r#"{"type":"order"}"#, "s").unwrap(), "other");
    assert_eq!(table_of(&c, r#"{"type":1}"#, "s").unwrap(), "other");

    let no_default = Catalog::from_schemas(
        routed()
            .tables()
            .iter()
            .filter(|t| t.name() != "other")
            .map(|t| t.schema().clone())
            .collect(),
    )
    .unwrap();
    let e = table_of(&no_default, r#"{"type":"order","sym":"A"}"#, "s").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"no table for record (source "s", /type = "order", type = "order")"#
    );
    let e = table_of(&no_default, r#"{"sym":"A"}"#, "kinesis").unwrap_err();
    assert!(matches!(e, RecordError::NoTable { .. }));
    assert!(e.to_string().contains("/type missing"), "{e}");
}

fn trade_quote() -> Catalog {
    let c = repo_schemas();
    Catalog::from_schemas(
        c.tables()
            .iter()
            .filter(|t| ["trade", "quote"].contains(&t.name()))
            .map(|t| t.schema().clone())
            .collect(),
    )
    .unwrap()
}

const T1: &str = r#"{"type":"trade","sym":"AAPL","price":187.25,"size":300,"side":"B","id":"t1"}"#;
const T2: &str = r#"{"type":"trade","sym":"MSFT","price":410.5,"size":100,"id":"t2"}"#;
const Q1: &str = r#"{"type":"quote","sym":"AAPL","bid":187.2,"ask":187.3,"bsize":5}"#;

#[test]
fn runs_follow_record_order_and_encode_like_the_general_encoder() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    for rec in [T1, T2, Q1, T1] {
        c.decode_record(rec.as_bytes(), "s", &mut b).unwrap();
    }
    let runs = b.runs();
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs.iter()
            .map(|r| (r.name.as_str(), r.records, r.rows))
            .collect::<Vec<_>>(),
        [("trade", 2, 2), ("quote", 1, 1), ("trade", 1, 1)]
    );
    assert_eq!(b.records(), 4);
    assert_eq!(b.rows(), 4);
    // trade: time is stamped by the tickerplant, so four columns are sent.
    assert_eq!(runs[0].columns.len(), 4);
    assert_eq!(
        runs[0].columns[1],
        Column::Simple(Vector::Float(vec![187.25, 410.5]))
    );
    assert_eq!(
        runs[0].columns[2],
        Column::Simple(Vector::Long(vec![300, 100]))
    );
    assert_eq!(
        runs[0].columns[3],
        Column::Simple(Vector::Char(b"B ".to_vec()))
    );
    assert_eq!(runs[1].columns[3], Column::Simple(Vector::Long(vec![5])));
    // asize missing: its default, 0.
    assert_eq!(runs[1].columns[4], Column::Simple(Vector::Long(vec![0])));

    for i in 0..runs.len() {
        let mut fast = Vec::new();
        let n = b
            .encode_run(i, ".u.upd", MsgType::Async, &mut fast)
            .unwrap();
        assert_eq!(n, fast.len());
        let general = encode_message(&b.run_to_k(i, ".u.upd").unwrap(), MsgType::Async);
        assert_eq!(fast, general, "run {i}");
    }
    assert_eq!(
        b.encode_run(3, ".u.upd", MsgType::Async, &mut Vec::new()),
        None
    );
    let k = b.run_to_k(0, ".u.upd").unwrap();
    let K::List(_, items) = k else { panic!() };
    assert_eq!(items[1], K::sym("trade"));
}

#[test]
fn all_types_record_encodes_like_the_general_encoder() {
    let c = repo_schemas();
    let rec = r#"{"type":"alltypes","v":{"time":"14:30:00.5","sym":"AAPL","id":"01234567-89ab-cdef-0123-456789abcdef",
      "flag":true,"b":255,"h":-7,"i":70000,"j":-5000000000,"e":1.5,"f":"Infinity","c":"x","s":"a b","str":"hello",
      "p":"2025-11-25T14:30:00.123456789Z","pms":1764081000123,"m":"2025-11","d":"2025-11-25","z":"2025-11-25T12:00:00Z",
      "n":"01:02:03.000000004","u":"14:30","v":"14:30:15","t":"14:30:15.123"}}"#;
    let sparse = r#"{"type":"alltypes","v":{"time":"00:00","sym":"X","id":"00000000-0000-0000-0000-000000000001"}}"#;
    let mut b = BatchBuilder::new();
    let r = c.decode_record(rec.as_bytes(), "s", &mut b).unwrap();
    assert_eq!(
        r.key.as_deref(),
        Some("alltypes#alltypes#01234567-89ab-cdef-0123-456789abcdef")
    );
    c.decode_record(sparse.as_bytes(), "s", &mut b).unwrap();
    assert_eq!(b.runs().len(), 1);
    let run = &b.runs()[0];
    assert_eq!(run.columns.len(), 22);
    assert!(run.columns.iter().all(|c| c.len() == 2));
    let mut fast = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut fast)
        .unwrap();
    assert_eq!(
        fast,
        encode_message(&b.run_to_k(0, ".u.upd").unwrap(), MsgType::Async)
    );
    // Spot checks, including the nulls of the sparse row.
    let col = |name: &str| {
        let i = c
            .table(r.table)
            .unwrap()
            .sent_columns()
            .position(|n| n == name)
            .unwrap();
        run.columns[i].clone()
    };
    assert_eq!(col("flag"), Column::Simple(Vector::Bool(vec![true, false])));
    assert_eq!(col("b"), Column::Simple(Vector::Byte(vec![255, 0])));
    assert_eq!(
        col("j"),
        Column::Simple(Vector::Long(vec![-5_000_000_000, i64::MIN]))
    );
    assert_eq!(col("c"), Column::Simple(Vector::Char(b"x ".to_vec())));
    assert_eq!(
        col("z"),
        Column::Simple(Vector::Datetime(vec![
            9460.5,
            f64::from_bits(0x7ff8_0000_0000_0000)
        ]))
    );
    assert_eq!(
        col("str"),
        Column::Strings {
            ends: vec![5, 5],
            bytes: b"hello".to_vec()
        }
    );
}

#[test]
fn payload_keys() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    let r = c.decode_record(T1.as_bytes(), "s", &mut b).unwrap();
    assert_eq!(r.key.as_deref(), Some("trade#t1"));
    // quote has no payload key.
    assert_eq!(
        c.decode_record(Q1.as_bytes(), "s", &mut b).unwrap().key,
        None
    );
    // Numbers as written; separators escaped.
    let r = c
        .decode_record(
            br#"{"type":"trade","sym":"A","price":1,"size":1,"id":12}"#,
            "s",
            &mut b,
        )
        .unwrap();
    assert_eq!(r.key.as_deref(), Some("trade#12"));
    let r = c
        .decode_record(
            br#"{"type":"trade","sym":"A","price":1,"size":1,"id":"a#b,c\\d"}"#,
            "s",
            &mut b,
        )
        .unwrap();
    assert_eq!(r.key.as_deref(), Some(r"trade#a\#b\,c\\d"));
    // Rows of an array: joined by commas.
    let arr = format!("[{T1},{T2}]");
    let r = c.decode_record(arr.as_bytes(), "s", &mut b).unwrap();
    assert_eq!(r.key.as_deref(), Some("trade#t1,t2"));

    let multi = schema(
        r#"{"table":"t","route":{"default":true},"payload_key":["/venue","order.id"],
            "columns":[{"name":"a","type":"long","nullable":true}]}"#,
    );
    let c2 = Catalog::from_schemas(vec![multi]).unwrap();
    let r = c2
        .decode_record(br#"{"venue":"XNAS","order":{"id":77}}"#, "s", &mut b)
        .unwrap();
    assert_eq!(r.key.as_deref(), Some("t#XNAS#77"));

    // A missing key field fails the record and leaves nothing behind.
    let rows_before = b.rows();
    let runs_before = b.runs().len();
    for bad in [
        r#"{"type":"trade","sym":"A","price":1,"size":1}"#,
        r#"{"type":"trade","sym":"A","price":1,"size":1,"id":null}"#,
        r#"{"type":"trade","sym":"A","price":1,"size":1,"id":{"x":1}}"#,
    ] {
        let e = c.decode_record(bad.as_bytes(), "s", &mut b).unwrap_err();
        assert_eq!(
            e,
            RecordError::MissingKey {
                table: "trade".into(),
                field: "/id".into()
            }
        );
        assert!(e.to_string().contains("payload key field /id"), "{e}");
    }
    assert_eq!((b.rows(), b.runs().len()), (rows_before, runs_before));
}

/// A record shaped as the one before it (the same keys in the same
/// places) reuses that record's field lookup; records that differ in any
/// way (order, count, an escaped or longer key, a nested value, a repeated
/// key) must each be read for themselves.
#[test]
fn records_shaped_alike_or_not_decode_to_their_own_values() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    let records = [
        r#"{"type":"trade","id":"a","sym":"A","price":1.5,"size":10,"side":"B"}"#,
        r#"{"type":"trade","id":"b","sym":"B","price":2.5,"size":20,"side":"S"}"#,
        r#"{"type":"trade","id":"c","sym":"C","size":30,"price":3.5,"side":"B"}"#,
        r#"{"type":"trade","id":"d","sym":"D","size":40,"price":4.5,"side":"S"}"#,
        r#"{"type":"trade","id":"e","sym":"E","size":50,"price":5.5}"#,
        r#"{"type":"trade","id":"f","sym":"F","size":60,"price":6.5,"side":"B","x":1}"#,
        r#"{"type":"trade","id":"g","sym":"G","size":70,"\u0070rice":7.5,"side":"S","x":1}"#,
        r#"{"type":"trade","id":"h","sym":"H","size":80,"price":8.5,"side":"B","x":{"n":1}}"#,
        r#"{"type":"trade","id":"i","sym":"I","size":90,"price":9.5,"side":"S","x":1}"#,
        r#"{"type":"trade","id":"j","sym":"J","size":100,"pricey":0,"side":"B","price":10.5}"#,
        r#"{"type":"trade","id":"k","sym":"K","size":110,"price":0,"side":"S","price":11.5}"#,
        r#"{"type":"trade","id":"l","sym":"L","size":120,"price":0,"side":"B","price":12.5}"#,
        r#"{"type":"trade","id":"m","sym":"M","size":130,"price":0,"side":"S","price":13.5}"#,
    ];
    let mut keys = Vec::new();
    for rec in records {
        keys.push(c.decode_record(rec.as_bytes(), "s", &mut b).unwrap().key);
    }
    let want_keys: Vec<Option<String>> = "abcdefghijklm"
        .chars()
        .map(|k| Some(format!("trade#{k}")))
        .collect();
    assert_eq!(keys, want_keys);
    let runs = b.runs();
    assert_eq!(runs.len(), 1);
    let prices: Vec<f64> = (1..=13).map(|n| n as f64 + 0.5).collect();
    let sizes: Vec<i64> = (1..=13).map(|n| n * 10).collect();
    assert_eq!(runs[0].columns[1], Column::Simple(Vector::Float(prices)));
    assert_eq!(runs[0].columns[2], Column::Simple(Vector::Long(sizes)));
    assert_eq!(
        runs[0].columns[3],
        Column::Simple(Vector::Char(b"BSBS BSBSBSBS".to_vec()))
    );
    // The route field's value is read afresh even where its place is
    // remembered: the same shape with another type routes elsewhere.
    let same_shape_other_type =
        r#"{"type":"nope","id":"n","sym":"N","size":1,"price":0,"side":"S","price":1.5}"#;
    let e = c
        .decode_record(same_shape_other_type.as_bytes(), "s", &mut b)
        .unwrap_err();
    assert!(matches!(e, RecordError::NoTable { .. }), "{e}");
    assert!(e.to_string().contains("nope"), "{e}");
    let quote_same_shape =
        r#"{"type":"quote","id":"n","sym":"N","bid":1,"ask":2,"bsize":3,"asize":4}"#;
    let rows = c
        .decode_record(quote_same_shape.as_bytes(), "s", &mut b)
        .unwrap();
    assert_eq!(b.runs()[rows.run].name, "quote");
}

#[test]
fn failed_record_rolls_back_completely() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    c.decode_record(T1.as_bytes(), "s", &mut b).unwrap();
    let snapshot = |b: &BatchBuilder| {
        b.runs()
            .iter()
            .map(|r| (r.name.clone(), r.records, r.rows, r.columns.clone()))
            .collect::<Vec<_>>()
    };
    let before = snapshot(&b);
    // Same table: the third row fails on its last column; rows 1-2 undone.
    let bad_row = r#"{"type":"trade","sym":"X","price":1,"size":1.5,"id":"t9"}"#;
    let arr = format!("[{T1},{T2},{bad_row}]");
    let e = c.decode_record(arr.as_bytes(), "s", &mut b).unwrap_err();
    match &e {
        RecordError::NotIntegral { at, .. } => {
            assert_eq!(
                (at.table.as_str(), at.column.as_str(), at.row),
                ("trade", "size", Some(2))
            )
        }
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains(", row 2"), "{e}");
    assert_eq!(snapshot(&b), before);
    // Another table: its new run is dropped again.
    let e = c
        .decode_record(br#"{"type":"quote","sym":"A","bid":"x"}"#, "s", &mut b)
        .unwrap_err();
    assert!(matches!(e, RecordError::WrongType { .. }), "{e:?}");
    assert_eq!(snapshot(&b), before);
    // Strings columns are cut back too.
    let sc = Catalog::from_schemas(vec![schema(
        r#"{"table":"s","route":{"default":true},"columns":[{"name":"s","type":"string"},{"name":"n","type":"long"}]}"#,
    )])
    .unwrap();
    let mut b2 = BatchBuilder::new();
    sc.decode_record(br#"{"s":"keep","n":1}"#, "x", &mut b2)
        .unwrap();
    sc.decode_record(
        br#"[{"s":"drop","n":2},{"s":"drop2","n":"no"}]"#,
        "x",
        &mut b2,
    )
    .unwrap_err();
    sc.decode_record(br#"{"s":"next","n":3}"#, "x", &mut b2)
        .unwrap();
    assert_eq!(
        b2.runs()[0].columns[0],
        Column::Strings {
            ends: vec![4, 8],
            bytes: b"keepnext".to_vec()
        }
    );
    assert_eq!(
        b2.runs()[0].columns[1],
        Column::Simple(Vector::Long(vec![1, 3]))
    );
    // And the builder goes on as if nothing happened.
    c.decode_record(T2.as_bytes(), "s", &mut b).unwrap();
    assert_eq!(b.runs()[0].rows, 2);
}

#[test]
fn arrays() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    let arr = format!("[{T1},{T2},{T1}]");
    let r = c.decode_record(arr.as_bytes(), "s", &mut b).unwrap();
    assert_eq!((r.rows, r.run), (3, 0));
    assert_eq!(b.runs()[0].records, 1);
    let e = c
        .decode_record(format!("[{T1},{Q1}]").as_bytes(), "s", &mut b)
        .unwrap_err();
    assert_eq!(
        e,
        RecordError::MixedTables {
            first: "trade".into(),
            other: "quote".into(),
            row: 1
        }
    );
    for (rec, found) in [
        ("[]", "empty array"),
        ("[1]", "array with an element that is not an object"),
        (
            r#"[{"type":"trade"},"x"]"#,
            "array with an element that is not an object",
        ),
        ("42", "number"),
        (r#""trade""#, "string"),
        ("null", "null"),
        ("true", "boolean"),
    ] {
        assert_eq!(
            c.decode_record(rec.as_bytes(), "s", &mut b),
            Err(RecordError::NotRecord { found }),
            "{rec}"
        );
    }
    assert_eq!(b.rows(), 3);
}

#[test]
fn delimited_text() {
    let c = repo_schemas();
    let mut b = BatchBuilder::new();
    let text = "sym spot strike time rate vol\nAAPL 100 105 0.5 0.05 0.2\r\n  MSFT 95.5   90\t1 0.01 0.35 \n\n";
    let r = c
        .decode_record(text.as_bytes(), "option-inputs", &mut b)
        .unwrap();
    assert_eq!(c.table(r.table).unwrap().name(), "optinput");
    assert_eq!(r.rows, 2);
    let run = &b.runs()[0];
    // time is the tickerplant's: sym spot strike expiry rate vol are sent.
    assert_eq!(run.columns.len(), 6);
    assert_eq!(
        run.columns[0].to_k(b.symbols()),
        K::vector(Vector::Symbol(vec!["AAPL".into(), "MSFT".into()]))
    );
    assert_eq!(
        run.columns[1],
        Column::Simple(Vector::Float(vec![100.0, 95.5]))
    );
    assert_eq!(
        run.columns[3],
        Column::Simple(Vector::Float(vec![0.5, 1.0]))
    );
    assert_eq!(
        run.columns[5],
        Column::Simple(Vector::Float(vec![0.2, 0.35]))
    );
    // A header line in another order maps the fields for that record.
    let r = c
        .decode_record(
            b"vol rate time strike spot sym\n0.3 0.02 2 120 110 IBM\n",
            "option-inputs",
            &mut b,
        )
        .unwrap();
    assert_eq!(r.rows, 1);
    assert_eq!(
        b.runs()[0].columns[1],
        Column::Simple(Vector::Float(vec![100.0, 95.5, 110.0]))
    );
    assert_eq!(
        b.runs()[0].columns[5],
        Column::Simple(Vector::Float(vec![0.2, 0.35, 0.3]))
    );
    assert_eq!(
        b.runs()[0].columns[0].to_k(b.symbols()),
        K::vector(Vector::Symbol(vec![
            "AAPL".into(),
            "MSFT".into(),
            "IBM".into()
        ]))
    );
    // No header line: fine too.
    let r = c
        .decode_record(b"X 1 2 3 4 5", "option-inputs", &mut b)
        .unwrap();
    assert_eq!((r.rows, r.run), (1, 0));
    // Wrong field count names the line; nothing is kept.
    let e = c
        .decode_record(b"X 1 2 3 4 5\nX 1 2 3 4\n", "option-inputs", &mut b)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "table optinput, line 2: expected 6 fields (sym spot strike time rate vol), got 5"
    );
    let e = c
        .decode_record(b"X 1 2 x 4 5", "option-inputs", &mut b)
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"table optinput, column expiry, field time, row 0: expected a number, got "x""#
    );
    let e = c
        .decode_record(b"sym spot strike time rate vol\n", "option-inputs", &mut b)
        .unwrap_err();
    assert!(
        matches!(e, RecordError::BadDelimited { line: 0, .. }),
        "{e:?}"
    );
    assert_eq!(b.rows(), 4);
    // From another source, text is not JSON and is no table's text.
    let e = c
        .decode_record(b"1 2 3 4 5", "elsewhere", &mut b)
        .unwrap_err();
    assert!(matches!(e, RecordError::BadJson { offset: 2, .. }), "{e:?}");

    // Comma separated, with keys, an empty field as null, and typed text.
    let csv = Catalog::from_schemas(vec![schema(
        r#"{"table":"execs","route":{"source":"fills"},"payload_key":["id"],
            "delimited":{"separator":",","header":["id","sym","qty","px","at","ok"]},
            "columns":[{"name":"id","type":"long"},{"name":"sym","type":"symbol"},
                       {"name":"qty","type":"int","nullable":true},{"name":"px","type":"float","nullable":true},
                       {"name":"at","type":"timestamp"},{"name":"ok","type":"boolean"}]}"#,
    )])
    .unwrap();
    let mut b = BatchBuilder::new();
    let r = csv
        .decode_record(
            b"id,sym,qty,px,at,ok\n7, IBM ,,1.5,2025-11-25T14:30:00Z,true\n8,MSFT,3,,2025-11-25T14:30:01Z,0\n",
            "fills",
            &mut b,
        )
        .unwrap();
    assert_eq!(r.key.as_deref(), Some("execs#7,8"));
    let run = &b.runs()[0];
    assert_eq!(
        run.columns[2],
        Column::Simple(Vector::Int(vec![i32::MIN, 3]))
    );
    assert_eq!(run.columns[3].len(), 2);
    assert_eq!(
        run.columns[5],
        Column::Simple(Vector::Bool(vec![true, false]))
    );
    assert_eq!(
        run.columns[1].to_k(b.symbols()),
        K::vector(Vector::Symbol(vec!["IBM".into(), "MSFT".into()]))
    );
    let e = csv
        .decode_record(b",A,1,1,2025-11-25T14:30:00Z,1", "fills", &mut b)
        .unwrap_err();
    assert!(matches!(e, RecordError::MissingField { .. }), "{e:?}");
    let e = csv
        .decode_record(b"1,A,1,1,2025-11-25T14:30:00Z,yes", "fills", &mut b)
        .unwrap_err();
    assert!(matches!(e, RecordError::WrongType { .. }), "{e:?}");
    // JSON records from the same source still decode as JSON.
    let r = csv
        .decode_record(
            br#"{"id":9,"sym":"X","at":"2025-11-25T14:30:00Z","ok":false}"#,
            "fills",
            &mut b,
        )
        .unwrap();
    assert_eq!(r.key.as_deref(), Some("execs#9"));
}

#[test]
fn reset_reuses_the_builder() {
    let c = trade_quote();
    let mut b = BatchBuilder::new();
    c.decode_record(T1.as_bytes(), "s", &mut b).unwrap();
    c.decode_record(Q1.as_bytes(), "s", &mut b).unwrap();
    let mut first = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut first)
        .unwrap();
    b.reset();
    assert_eq!((b.runs().len(), b.rows(), b.symbols().len()), (0, 0, 0));
    c.decode_record(T1.as_bytes(), "s", &mut b).unwrap();
    let mut again = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut again)
        .unwrap();
    assert_eq!(first, again);
    let (runs, syms) = b.take();
    assert_eq!(runs.len(), 1);
    assert_eq!(syms.get(0), "AAPL");
    assert!(b.runs().is_empty());
}

#[test]
fn repo_schemas_match_the_json_schema() {
    // The JSON Schema (draft 2020-12) checked by Python's jsonschema.
    let script = r#"
import glob, json, sys, jsonschema
root = sys.argv[1]
meta = json.load(open(root + '/schemas/tickbridge.schema.json'))
jsonschema.Draft202012Validator.check_schema(meta)
v = jsonschema.Draft202012Validator(meta)
files = sorted(f for f in glob.glob(root + '/schemas/*.json') if not f.endswith('.schema.json'))
assert len(files) >= 4, files
for f in files:
    errs = [e.message for e in v.iter_errors(json.load(open(f)))]
    assert not errs, (f, errs)
bad = [
    {"table": "t", "columns": [{"name": "a", "type": "long"}]},
    {"table": "t", "route": {"default": True}, "columns": [{"name": "a", "type": "decimal"}]},
    {"table": "t", "route": {"field": "/x"}, "columns": [{"name": "a", "type": "long"}]},
    {"table": "t", "route": {"default": True}, "columns": [{"name": "a", "type": "long", "colour": 1}]},
    {"table": "1t", "route": {"default": True}, "columns": [{"name": "a", "type": "long"}]},
]
for b in bad:
    assert list(v.iter_errors(b)), b
print("ok", len(files))
"#;
    let out = std::process::Command::new(
        std::env::var("TICKBRIDGE_PYTHON").unwrap_or_else(|_| "python3".into()),
    )
    .args(["-c", script, env!("CARGO_MANIFEST_DIR")])
    .output()
    .expect("python3 with jsonschema");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok "));
}
