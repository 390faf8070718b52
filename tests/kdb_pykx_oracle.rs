//! PyKX (KX's own codec) as the oracle for our bytes: it reads our
//! encoding of every type to the same values and writes it back to the
//! same bytes; we read what PyKX encodes; both agree on the captured
//! compressed vectors and on generated values.

mod common;
mod kgen;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRng, TestRunner};
use serde_json::{json, Value};
use tickbridge::kdb::{decode_message, encode_message, MsgType, Table, Vector, K};
use tickbridge::schema::convert::{null_cell, Cell};
use tickbridge::schema::QType;

fn oracle(mode: &str, input: &[u8]) -> Value {
    let out = common::run_python("codec_oracle.py", &[mode], Some(input));
    serde_json::from_slice(&out.stdout).expect("the oracle prints JSON")
}

/// PyKX reads each message and serializes it again.
fn pykx_reserializes(messages: &[Vec<u8>]) -> Vec<Value> {
    let hex: Vec<String> = messages.iter().map(hex::encode).collect();
    let input = serde_json::to_vec(&hex).expect("json");
    match oracle("reserialize", &input)["out"].take() {
        Value::Array(out) => out,
        other => panic!("oracle answered {other}"),
    }
}

const N_I16: i16 = i16::MIN;
const N_I32: i32 = i32::MIN;
const N_I64: i64 = i64::MIN;

/// One column of every simple type; rows: an ordinary value, null,
/// +infinity, -infinity (the extremes where a type has no infinity).
fn every_type() -> Table {
    let g1: [u8; 16] = *b"\x12\x34\x56\x78\x12\x34\x56\x78\x12\x34\x56\x78\x12\x34\x56\x78";
    let cols: Vec<(&str, Vector)> = vec![
        ("b", Vector::Bool(vec![true, false, true, false])),
        ("g", Vector::Guid(vec![g1, [0; 16], [0xff; 16], [1; 16]])),
        ("x", Vector::Byte(vec![7, 0, 255, 1])),
        ("h", Vector::Short(vec![-234, N_I16, i16::MAX, -i16::MAX])),
        ("i", Vector::Int(vec![42, N_I32, i32::MAX, -i32::MAX])),
        (
            "j",
            Vector::Long(vec![89421099511627575, N_I64, i64::MAX, -i64::MAX]),
        ),
        (
            "e",
            Vector::Real(vec![5.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
        ),
        (
            "f",
            Vector::Float(vec![3.234, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        ),
        ("c", Vector::Char(b"a  z".to_vec())),
        (
            "s",
            Vector::Symbol(vec!["IBM".into(), "".into(), "a b".into(), "x".into()]),
        ),
        (
            "p",
            Vector::Timestamp(vec![279_417_600_000_000, N_I64, i64::MAX, -i64::MAX]),
        ),
        ("m", Vector::Month(vec![12, N_I32, i32::MAX, -i32::MAX])),
        ("d", Vector::Date(vec![121, N_I32, i32::MAX, -i32::MAX])),
        (
            "z",
            Vector::Datetime(vec![3.234, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        ),
        (
            "n",
            Vector::Timespan(vec![20_217_600_000_000, N_I64, i64::MAX, -i64::MAX]),
        ),
        ("u", Vector::Minute(vec![721, N_I32, i32::MAX, -i32::MAX])),
        (
            "v",
            Vector::Second(vec![43_500, N_I32, i32::MAX, -i32::MAX]),
        ),
        (
            "t",
            Vector::Time(vec![43_499_123, N_I32, i32::MAX, -i32::MAX]),
        ),
    ];
    let (names, columns): (Vec<String>, Vec<K>) = cols
        .into_iter()
        .map(|(n, v)| (n.to_string(), K::vector(v)))
        .unzip();
    Table::new(names, columns)
}

fn float_text(f: f64) -> String {
    // What Python's repr(float) prints for the specials.
    if f.is_nan() {
        "nan".into()
    } else if f == f64::INFINITY {
        "inf".into()
    } else if f == f64::NEG_INFINITY {
        "-inf".into()
    } else {
        format!("{f:?}")
    }
}

/// Our raw values as the oracle prints them (JSON numbers, float text,
/// guid strings, latin-1 text).
fn expected_column(v: &Vector) -> Vec<Value> {
    let guid = |g: &[u8; 16]| {
        let h = hex::encode(g);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    };
    match v {
        Vector::Bool(x) => x.iter().map(|b| json!(b)).collect(),
        Vector::Guid(x) => x.iter().map(|g| json!(guid(g))).collect(),
        Vector::Byte(x) => x.iter().map(|b| json!(b)).collect(),
        Vector::Short(x) => x.iter().map(|b| json!(b)).collect(),
        Vector::Int(x) | Vector::Month(x) | Vector::Date(x) => x.iter().map(|b| json!(b)).collect(),
        Vector::Minute(x) | Vector::Second(x) | Vector::Time(x) => {
            x.iter().map(|b| json!(b)).collect()
        }
        Vector::Long(x) | Vector::Timestamp(x) | Vector::Timespan(x) => {
            x.iter().map(|b| json!(b)).collect()
        }
        Vector::Real(x) => x.iter().map(|f| json!(float_text(*f as f64))).collect(),
        Vector::Float(x) | Vector::Datetime(x) => x.iter().map(|f| json!(float_text(*f))).collect(),
        Vector::Char(x) => x.iter().map(|c| json!((*c as char).to_string())).collect(),
        Vector::Symbol(x) => x.iter().map(|s| json!(s)).collect(),
    }
}

#[test]
fn pykx_reads_our_table_of_every_type_and_writes_the_same_bytes() {
    let table = every_type();
    let msg = encode_message(&K::Table(table.clone()), MsgType::Async);

    let again = pykx_reserializes(std::slice::from_ref(&msg));
    assert_eq!(
        again[0],
        json!(hex::encode(&msg)),
        "PyKX re-serialized differently"
    );

    let read = oracle("columns", &msg);
    let names: Vec<&str> = table.names.iter().map(String::as_str).collect();
    assert_eq!(read["names"], json!(names));
    for (name, col) in table.names.iter().zip(&table.columns) {
        let K::Vector(_, v) = col else { unreachable!() };
        assert_eq!(
            read["columns"][name],
            Value::Array(expected_column(v)),
            "column {name} (type {})",
            v.type_code()
        );
    }
}

fn column<'a>(t: &'a Table, name: &str) -> &'a Vector {
    match t.column(name) {
        Some(K::Vector(_, v)) => v,
        other => panic!("column {name}: {other:?}"),
    }
}

#[test]
fn we_read_what_pykx_encodes() {
    let built = oracle("build", b"");
    let bytes = |k: &str| hex::decode(built[k].as_str().expect("hex")).expect("hex");

    let (_, v) = decode_message(&bytes("table")).expect("PyKX's table decodes");
    let K::Table(t) = v else {
        panic!("not a table: {v:?}")
    };
    assert_eq!(
        t.names,
        ["b", "g", "x", "h", "i", "j", "e", "f", "c", "s", "p", "m", "d", "n", "u", "v", "t"]
    );
    assert_eq!(column(&t, "b"), &Vector::Bool(vec![true, false, true]));
    let Vector::Guid(g) = column(&t, "g") else {
        panic!()
    };
    assert_eq!(g[1], [0; 16]);
    assert_eq!(hex::encode(g[2]), "12345678123456781234567812345678");
    assert_eq!(column(&t, "x"), &Vector::Byte(vec![0, 1, 255]));
    assert_eq!(column(&t, "h"), &Vector::Short(vec![1, N_I16, i16::MAX]));
    assert_eq!(column(&t, "i"), &Vector::Int(vec![1, N_I32, i32::MAX]));
    assert_eq!(column(&t, "j"), &Vector::Long(vec![1, N_I64, i64::MAX]));
    let Vector::Real(e) = column(&t, "e") else {
        panic!()
    };
    assert!(e[0] == 1.5 && e[1].is_nan() && e[2] == f32::INFINITY);
    let Vector::Float(f) = column(&t, "f") else {
        panic!()
    };
    assert!(f[0] == 1.5 && f[1].is_nan() && f[2] == f64::NEG_INFINITY);
    assert_eq!(column(&t, "c"), &Vector::Char(b"a z".to_vec()));
    assert_eq!(
        column(&t, "s"),
        &Vector::Symbol(vec!["a".into(), "".into(), "IBM".into()])
    );
    // 2026.12.02D05:00:00.000000001 is 9832 days and 5 hours after 2000.01.01.
    let day = 86_400_000_000_000i64;
    assert_eq!(
        column(&t, "p"),
        &Vector::Timestamp(vec![0, -1, 9832 * day + 5 * 3_600_000_000_000 + 1])
    );
    assert_eq!(column(&t, "m"), &Vector::Month(vec![0, -1, 12]));
    assert_eq!(column(&t, "d"), &Vector::Date(vec![0, -1, 121]));
    assert_eq!(
        column(&t, "n"),
        &Vector::Timespan(vec![0, -1, 3_600_000_000_000])
    );
    assert_eq!(column(&t, "u"), &Vector::Minute(vec![0, 1, 61]));
    assert_eq!(column(&t, "v"), &Vector::Second(vec![0, 1, 3661]));
    assert_eq!(column(&t, "t"), &Vector::Time(vec![0, 1, 43_499_123]));

    // PyKX's null and infinity atoms, in pairs per type.
    let (_, v) = decode_message(&bytes("specials")).expect("PyKX's atoms decode");
    let K::List(_, atoms) = v else {
        panic!("not a list: {v:?}")
    };
    let want = [
        K::Short(N_I16),
        K::Short(i16::MAX),
        K::Int(N_I32),
        K::Int(i32::MAX),
        K::Long(N_I64),
        K::Long(i64::MAX),
    ];
    assert_eq!(&atoms[..6], &want);
    assert!(matches!(atoms[6], K::Real(x) if x.is_nan()));
    assert_eq!(atoms[7], K::Real(f32::INFINITY));
    assert!(matches!(atoms[8], K::Float(x) if x.is_nan()));
    assert_eq!(atoms[9], K::Float(f64::INFINITY));
    let temporal = [
        K::Timestamp(N_I64),
        K::Timestamp(i64::MAX),
        K::Month(N_I32),
        K::Month(i32::MAX),
        K::Date(N_I32),
        K::Date(i32::MAX),
        K::Timespan(N_I64),
        K::Timespan(i64::MAX),
        K::Minute(N_I32),
        K::Minute(i32::MAX),
        K::Second(N_I32),
        K::Second(i32::MAX),
        K::Time(N_I32),
        K::Time(i32::MAX),
    ];
    assert_eq!(&atoms[10..24], &temporal);
    assert_eq!(&atoms[24..], &[K::Guid([0; 16]), K::sym(""), K::Char(b' ')]);
    // And our encoder writes those atoms to PyKX's bytes.
    assert_eq!(
        encode_message(&K::list(atoms), MsgType::Async),
        bytes("specials")
    );
}

/// The typed nulls the schema decoder produces for missing nullable
/// fields, with each type's infinity, are byte for byte what PyKX writes
/// for its `null` and `inf` atoms (covers 0Nh, 0Ne, 0Np, 0Nn and 0Ng, which
/// the captured vectors lack; `0Ne` is 0x7fc00000 and `0n` 0x7ff8…).
#[test]
fn schema_nulls_are_the_bytes_pykx_writes() {
    let null = |t: QType| null_cell(t).unwrap_or_else(|| panic!("{t:?} has a null"));
    let mut ours = Vec::new();
    for t in [QType::Short, QType::Int, QType::Long] {
        ours.push(match (t, null(t)) {
            (QType::Short, Cell::I16(x)) => K::Short(x),
            (QType::Int, Cell::I32(x)) => K::Int(x),
            (QType::Long, Cell::I64(x)) => K::Long(x),
            (t, c) => panic!("{t:?}: {c:?}"),
        });
        ours.push(match t {
            QType::Short => K::Short(i16::MAX),
            QType::Int => K::Int(i32::MAX),
            _ => K::Long(i64::MAX),
        });
    }
    let Cell::F32(e) = null(QType::Real) else {
        panic!("real null")
    };
    ours.extend([K::Real(e), K::Real(f32::INFINITY)]);
    let Cell::F64(f) = null(QType::Float) else {
        panic!("float null")
    };
    ours.extend([K::Float(f), K::Float(f64::INFINITY)]);
    // Each temporal type with how to build its atom from a wide integer.
    type Atom = fn(i64) -> K;
    let temporal: [(QType, Atom); 7] = [
        (QType::Timestamp, K::Timestamp),
        (QType::Month, |x| K::Month(x as i32)),
        (QType::Date, |x| K::Date(x as i32)),
        (QType::Timespan, K::Timespan),
        (QType::Minute, |x| K::Minute(x as i32)),
        (QType::Second, |x| K::Second(x as i32)),
        (QType::Time, |x| K::Time(x as i32)),
    ];
    for (t, atom) in temporal {
        let (n, inf) = match null(t) {
            Cell::I64(x) => (x, i64::MAX),
            Cell::I32(x) => (i64::from(x), i64::from(i32::MAX)),
            c => panic!("{t:?}: {c:?}"),
        };
        ours.extend([atom(n), atom(inf)]);
    }
    let (Cell::Guid(g), Cell::Sym(s), Cell::U8(c)) =
        (null(QType::Guid), null(QType::Symbol), null(QType::Char))
    else {
        panic!("guid, symbol, char nulls")
    };
    ours.extend([K::Guid(g), K::sym(s.as_ref()), K::Char(c)]);

    let built = oracle("build", b"");
    let pykx = built["specials"].as_str().expect("hex");
    assert_eq!(
        hex::encode(encode_message(&K::list(ours), MsgType::Async)),
        pykx
    );
}

#[test]
fn pykx_reads_the_captured_compressed_messages_as_we_do() {
    let text =
        std::fs::read_to_string(common::vectors_dir().join("compressed.txt")).expect("vectors");
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut messages = Vec::new();
    let mut ours = Vec::new();
    for pair in lines.chunks(2) {
        let body = hex::decode(pair[1].trim()).expect("hex");
        let mut msg = vec![1, 0, 1, 0];
        msg.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
        msg.extend_from_slice(&body);
        let (_, v) = decode_message(&msg).unwrap_or_else(|e| panic!("{}: {e}", pair[0]));
        ours.push(encode_message(&v, MsgType::Async));
        messages.push(msg);
    }
    assert_eq!(messages.len(), 2);
    let pykx = pykx_reserializes(&messages);
    for ((expr, mine), theirs) in lines.iter().step_by(2).zip(&ours).zip(&pykx) {
        assert_eq!(theirs, &json!(hex::encode(mine)), "{expr}");
    }
}

/// Generated values (no attributes, no errors): PyKX writes what it reads
/// from our bytes back to exactly our bytes.
#[test]
fn pykx_writes_generated_values_back_to_our_bytes() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(proptest::test_runner::RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = kgen::value(true);
    let values: Vec<K> = (0..400)
        .map(|_| strategy.new_tree(&mut runner).expect("a value").current())
        .collect();
    let messages: Vec<Vec<u8>> = values
        .iter()
        .map(|v| encode_message(v, MsgType::Async))
        .collect();
    let pykx = pykx_reserializes(&messages);
    for ((v, msg), theirs) in values.iter().zip(&messages).zip(&pykx) {
        assert_eq!(theirs, &json!(hex::encode(msg)), "value {v:?}");
    }
}
