//! Every type conversion: values, nulls, limits, and each error.

use tickbridge::kdb::types::{
    null_float, null_real, KDB_EPOCH_DAYS, KDB_EPOCH_NANOS, NANOS_PER_DAY, NULL_INT, NULL_LONG,
    NULL_SHORT,
};
use tickbridge::kdb::upd::Column;
use tickbridge::kdb::value::Vector;
use tickbridge::schema::{BatchBuilder, Catalog, RecordError, Schema};

/// A one-column table `t` whose column `v` is described by `spec` (the
/// JSON members after the name), routed by default.
fn catalog(spec: &str) -> Catalog {
    let text =
        format!(r#"{{"table":"t","route":{{"default":true}},"columns":[{{"name":"v",{spec}}}]}}"#);
    let schema: Schema = serde_json::from_str(&text).unwrap();
    Catalog::from_schemas(vec![schema]).unwrap()
}

/// Decodes `{"v": value}` (or `{}` when value is empty) and returns the column.
fn dec(spec: &str, value: &str) -> Result<Column, RecordError> {
    let cat = catalog(spec);
    let rec = if value.is_empty() {
        "{}".to_string()
    } else {
        format!(r#"{{"v":{value}}}"#)
    };
    let mut b = BatchBuilder::new();
    cat.decode_record(rec.as_bytes(), "src", &mut b)?;
    assert_eq!(b.runs().len(), 1);
    Ok(b.runs()[0].columns[0].clone())
}

fn simple(spec: &str, value: &str) -> Vector {
    match dec(spec, value) {
        Ok(Column::Simple(v)) => v,
        other => panic!("{spec} {value}: {other:?}"),
    }
}

fn err(spec: &str, value: &str) -> RecordError {
    match dec(spec, value) {
        Err(e) => e,
        Ok(c) => panic!("{spec} {value}: expected an error, got {c:?}"),
    }
}

macro_rules! assert_err {
    ($spec:expr, $value:expr, $pat:pat) => {{
        let e = err($spec, $value);
        assert!(matches!(e, $pat), "{} {}: got {e:?}", $spec, $value);
    }};
}

const BOOL: &str = r#""type":"boolean""#;
const BYTE: &str = r#""type":"byte""#;
const SHORT: &str = r#""type":"short","nullable":true"#;
const INT: &str = r#""type":"int","nullable":true"#;
const LONG: &str = r#""type":"long","nullable":true"#;
const REAL: &str = r#""type":"real","nullable":true"#;
const FLOAT: &str = r#""type":"float","nullable":true"#;
const FLOAT_NF: &str = r#""type":"float","nullable":true,"allow_non_finite":true"#;
const REAL_NF: &str = r#""type":"real","allow_non_finite":true"#;

#[test]
fn boolean() {
    assert_eq!(simple(BOOL, "true"), Vector::Bool(vec![true]));
    assert_eq!(simple(BOOL, "false"), Vector::Bool(vec![false]));
    assert_eq!(simple(BOOL, "1"), Vector::Bool(vec![true]));
    assert_eq!(simple(BOOL, "0"), Vector::Bool(vec![false]));
    assert_eq!(simple(BOOL, "1.0"), Vector::Bool(vec![true]));
    assert_err!(BOOL, "2", RecordError::OutOfRange { .. });
    assert_err!(BOOL, "-1", RecordError::OutOfRange { .. });
    assert_err!(BOOL, "0.5", RecordError::OutOfRange { .. });
    assert_err!(BOOL, r#""true""#, RecordError::WrongType { .. });
    assert_err!(BOOL, "", RecordError::MissingField { .. });
    assert_err!(BOOL, "null", RecordError::MissingField { .. });
    let with_default = r#""type":"boolean","default":true"#;
    assert_eq!(simple(with_default, ""), Vector::Bool(vec![true]));
    assert_eq!(simple(with_default, "null"), Vector::Bool(vec![true]));
}

#[test]
fn byte() {
    assert_eq!(simple(BYTE, "0"), Vector::Byte(vec![0]));
    assert_eq!(simple(BYTE, "255"), Vector::Byte(vec![255]));
    assert_err!(BYTE, "256", RecordError::OutOfRange { .. });
    assert_err!(BYTE, "-1", RecordError::OutOfRange { .. });
    assert_err!(BYTE, "1.5", RecordError::NotIntegral { .. });
    assert_err!(BYTE, r#""1""#, RecordError::WrongType { .. });
    assert_err!(BYTE, "", RecordError::MissingField { .. });
    assert_eq!(
        simple(r#""type":"byte","default":7"#, ""),
        Vector::Byte(vec![7])
    );
}

#[test]
fn short_int_long_limits_and_nulls() {
    assert_eq!(simple(SHORT, "32767"), Vector::Short(vec![i16::MAX]));
    assert_eq!(simple(SHORT, "-32767"), Vector::Short(vec![-32767]));
    assert_err!(SHORT, "-32768", RecordError::OutOfRange { .. });
    assert_err!(SHORT, "32768", RecordError::OutOfRange { .. });
    assert_eq!(simple(SHORT, ""), Vector::Short(vec![NULL_SHORT]));
    assert_eq!(simple(SHORT, "null"), Vector::Short(vec![NULL_SHORT]));

    assert_eq!(simple(INT, "2147483647"), Vector::Int(vec![i32::MAX]));
    assert_eq!(simple(INT, "-2147483647"), Vector::Int(vec![-i32::MAX]));
    assert_err!(INT, "-2147483648", RecordError::OutOfRange { .. });
    assert_err!(INT, "2147483648", RecordError::OutOfRange { .. });
    assert_eq!(simple(INT, ""), Vector::Int(vec![NULL_INT]));

    assert_eq!(
        simple(LONG, "9223372036854775807"),
        Vector::Long(vec![i64::MAX])
    );
    assert_eq!(
        simple(LONG, "-9223372036854775807"),
        Vector::Long(vec![-i64::MAX])
    );
    assert_err!(LONG, "-9223372036854775808", RecordError::OutOfRange { .. });
    assert_err!(LONG, "9223372036854775808", RecordError::OutOfRange { .. });
    assert_err!(LONG, "1e30", RecordError::OutOfRange { .. });
    assert_err!(
        LONG,
        "1e999999999999999999999",
        RecordError::OutOfRange { .. }
    );
    assert_err!(
        LONG,
        "123456789012345678901234567890123456789012",
        RecordError::OutOfRange { .. }
    );
    assert_eq!(simple(LONG, ""), Vector::Long(vec![NULL_LONG]));
    assert_eq!(simple(LONG, "null"), Vector::Long(vec![NULL_LONG]));
    // Exactly integral numbers in other spellings are fine; fractions are not.
    assert_eq!(simple(LONG, "300.0"), Vector::Long(vec![300]));
    assert_eq!(simple(LONG, "3e2"), Vector::Long(vec![300]));
    assert_eq!(simple(LONG, "3.5E1"), Vector::Long(vec![35]));
    assert_eq!(simple(LONG, "-0"), Vector::Long(vec![0]));
    assert_eq!(simple(LONG, "0e-5"), Vector::Long(vec![0]));
    assert_err!(LONG, "1.5", RecordError::NotIntegral { .. });
    assert_err!(LONG, "1e-1", RecordError::NotIntegral { .. });
    assert_err!(LONG, "9007199254740993.5", RecordError::NotIntegral { .. });
    // Exact, not via f64: 2^53 + 1 survives.
    assert_eq!(
        simple(LONG, "9007199254740993"),
        Vector::Long(vec![9_007_199_254_740_993])
    );
    assert_err!(LONG, r#""5""#, RecordError::WrongType { .. });
    assert_err!(LONG, "true", RecordError::WrongType { .. });
    assert_err!(LONG, "{}", RecordError::WrongType { .. });
    assert_err!(LONG, "[1]", RecordError::WrongType { .. });
    assert_err!(r#""type":"long""#, "", RecordError::MissingField { .. });
}

#[test]
fn real_and_float() {
    assert_eq!(simple(REAL, "1.5"), Vector::Real(vec![1.5]));
    assert_eq!(simple(REAL, "-3.4e38"), Vector::Real(vec![-3.4e38]));
    assert_err!(REAL, "3.5e38", RecordError::OutOfRange { .. });
    assert_err!(REAL, "1e400", RecordError::OutOfRange { .. });
    match simple(REAL, "") {
        Vector::Real(v) => assert_eq!(v[0].to_bits(), null_real().to_bits()),
        v => panic!("{v:?}"),
    }
    assert_eq!(simple(FLOAT, "187.25"), Vector::Float(vec![187.25]));
    assert_eq!(simple(FLOAT, "1e308"), Vector::Float(vec![1e308]));
    assert_eq!(simple(FLOAT, "12"), Vector::Float(vec![12.0]));
    assert_eq!(simple(FLOAT, "1e-400"), Vector::Float(vec![0.0]));
    assert_err!(FLOAT, "1e309", RecordError::OutOfRange { .. });
    assert_err!(FLOAT, r#""1.5""#, RecordError::WrongType { .. });
    assert_err!(FLOAT, r#""NaN""#, RecordError::NonFinite { .. });
    assert_err!(FLOAT, r#""Infinity""#, RecordError::NonFinite { .. });
    assert_err!(FLOAT, "false", RecordError::WrongType { .. });
    // kdb+'s float null is exactly 0x7ff8000000000000 (kdb-vectors: `0n`).
    for missing in ["", "null"] {
        match simple(FLOAT, missing) {
            Vector::Float(v) => assert_eq!(v[0].to_bits(), 0x7ff8_0000_0000_0000),
            v => panic!("{v:?}"),
        }
    }
    match simple(FLOAT_NF, r#""NaN""#) {
        Vector::Float(v) => assert_eq!(v[0].to_bits(), null_float().to_bits()),
        v => panic!("{v:?}"),
    }
    assert_eq!(
        simple(FLOAT_NF, r#""Infinity""#),
        Vector::Float(vec![f64::INFINITY])
    );
    assert_eq!(
        simple(FLOAT_NF, r#""-Infinity""#),
        Vector::Float(vec![f64::NEG_INFINITY])
    );
    assert_eq!(
        simple(REAL_NF, r#""-Infinity""#),
        Vector::Real(vec![f32::NEG_INFINITY])
    );
    match simple(REAL_NF, r#""NaN""#) {
        Vector::Real(v) => assert_eq!(v[0].to_bits(), null_real().to_bits()),
        v => panic!("{v:?}"),
    }
    assert_err!(FLOAT_NF, r#""nope""#, RecordError::WrongType { .. });
}

#[test]
fn char_symbol_string() {
    let ch = r#""type":"char","nullable":true"#;
    assert_eq!(simple(ch, r#""B""#), Vector::Char(b"B".to_vec()));
    assert_eq!(simple(ch, r#""\n""#), Vector::Char(b"\n".to_vec()));
    assert_eq!(simple(ch, ""), Vector::Char(b" ".to_vec()));
    assert_err!(ch, r#""""#, RecordError::BadChar { .. });
    assert_err!(ch, r#""AB""#, RecordError::BadChar { .. });
    assert_err!(ch, r#""é""#, RecordError::BadChar { .. });
    assert_err!(ch, "1", RecordError::WrongType { .. });

    let sym = r#""type":"symbol","nullable":true"#;
    let syms = |value: &str| {
        let cat = catalog(sym);
        let mut b = BatchBuilder::new();
        cat.decode_record(format!(r#"{{"v":{value}}}"#).as_bytes(), "s", &mut b)
            .unwrap();
        b.runs()[0].columns[0].to_k(b.symbols())
    };
    use tickbridge::kdb::value::K;
    let symv = |s: &str| K::vector(Vector::Symbol(vec![s.to_string()]));
    assert_eq!(syms(r#""AAPL""#), symv("AAPL"));
    assert_eq!(syms(r#""\u0041\u00e9 x""#), symv("Aé x"));
    assert_eq!(syms("null"), symv(""));
    assert_err!(sym, "12", RecordError::WrongType { .. });
    assert_err!(sym, "true", RecordError::WrongType { .. });
    assert_err!(r#""type":"symbol""#, "", RecordError::MissingField { .. });

    let st = r#""type":"string","nullable":true"#;
    let strings = |value: &str| match dec(st, value).unwrap() {
        Column::Strings { ends, bytes } => (ends, bytes),
        c => panic!("{c:?}"),
    };
    assert_eq!(strings(r#""hello""#), (vec![5], b"hello".to_vec()));
    assert_eq!(strings(r#""""#), (vec![0], vec![]));
    assert_eq!(strings("null"), (vec![0], vec![]));
    assert_eq!(strings(r#""é\"""#), (vec![3], "é\"".as_bytes().to_vec()));
    assert_err!(st, "[]", RecordError::WrongType { .. });
}

#[test]
fn guid() {
    let g = r#""type":"guid","nullable":true"#;
    let expect: [u8; 16] = [
        0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];
    assert_eq!(
        simple(g, r#""01234567-89ab-cdef-0123-456789abcdef""#),
        Vector::Guid(vec![expect])
    );
    assert_eq!(
        simple(g, r#""01234567-89AB-CDEF-0123-456789ABCDEF""#),
        Vector::Guid(vec![expect])
    );
    assert_eq!(simple(g, ""), Vector::Guid(vec![[0; 16]]));
    for bad in [
        r#""0123456789abcdef0123456789abcdef""#,
        r#""01234567-89ab-cdef-0123-456789abcde""#,
        r#""01234567-89ab-cdef-0123-456789abcdeg""#,
        r#""01234567+89ab-cdef-0123-456789abcdef""#,
        r#""""#,
    ] {
        assert_err!(g, bad, RecordError::BadGuid { .. });
    }
    assert_err!(g, "1", RecordError::WrongType { .. });
}

/// kdb+ nanoseconds for a Unix-epoch second count plus nanoseconds.
fn kdb_ns(unix_secs: i64, ns: i64) -> i64 {
    unix_secs * 1_000_000_000 + ns - KDB_EPOCH_NANOS
}

const T_2025: i64 = 1_764_081_000; // 2025-11-25T14:30:00Z

#[test]
fn timestamp() {
    let ts = r#""type":"timestamp","nullable":true"#;
    let p = |s: &str| simple(ts, s);
    assert_eq!(
        p(r#""2025-11-25T14:30:00Z""#),
        Vector::Timestamp(vec![kdb_ns(T_2025, 0)])
    );
    assert_eq!(
        p(r#""2025-11-25T14:30:00.123456789Z""#),
        Vector::Timestamp(vec![kdb_ns(T_2025, 123_456_789)])
    );
    assert_eq!(
        p(r#""2025-11-25T16:30:00.5+02:00""#),
        Vector::Timestamp(vec![kdb_ns(T_2025, 500_000_000)])
    );
    assert_eq!(p(r#""2000-01-01T00:00:00Z""#), Vector::Timestamp(vec![0]));
    assert_eq!(p(r#""2000-01-02""#), Vector::Timestamp(vec![NANOS_PER_DAY]));
    assert_eq!(p(""), Vector::Timestamp(vec![NULL_LONG]));
    assert_eq!(p("null"), Vector::Timestamp(vec![NULL_LONG]));
    // kdb+ timestamps span about 1707..2292.
    assert_err!(
        ts,
        r#""2300-01-01T00:00:00Z""#,
        RecordError::OutOfRange { .. }
    );
    assert_err!(
        ts,
        r#""1700-01-01T00:00:00Z""#,
        RecordError::OutOfRange { .. }
    );
    assert_eq!(
        p(r#""2292-04-10T23:47:16.854775807Z""#),
        Vector::Timestamp(vec![i64::MAX])
    );
    assert_err!(
        ts,
        r#""2292-04-10T23:47:16.854775808Z""#,
        RecordError::OutOfRange { .. }
    );
    assert_eq!(
        p(r#""1707-09-22T00:12:43.145224193Z""#),
        Vector::Timestamp(vec![i64::MIN + 1])
    );
    // The null sentinel itself is not a value a record can give.
    assert_err!(
        ts,
        r#""1707-09-22T00:12:43.145224192Z""#,
        RecordError::OutOfRange { .. }
    );
    for bad in [
        r#""2025-11-25T14:30:00""#,
        r#""2025-11-25 14:30""#,
        r#""2025-02-29T00:00:00Z""#,
        r#""2025-11-25T14:30:00.1234567891Z""#,
        r#""yesterday""#,
        r#""""#,
    ] {
        assert_err!(ts, bad, RecordError::BadTemporal { .. });
    }
    // Numbers need an epoch unit.
    assert_err!(ts, "1764081000", RecordError::WrongType { .. });
    let unit =
        |fmt: &str, v: &str| simple(&format!(r#""type":"timestamp","time_format":"{fmt}""#), v);
    let want = Vector::Timestamp(vec![kdb_ns(T_2025, 0)]);
    assert_eq!(unit("epoch_s", "1764081000"), want);
    assert_eq!(unit("epoch_ms", "1764081000000"), want);
    assert_eq!(unit("epoch_us", "1764081000000000"), want);
    assert_eq!(unit("epoch_ns", "1764081000000000000"), want);
    assert_eq!(
        unit("epoch_s", "1764081000.123456789"),
        Vector::Timestamp(vec![kdb_ns(T_2025, 123_456_789)])
    );
    assert_eq!(
        unit("epoch_ms", "1.5"),
        Vector::Timestamp(vec![kdb_ns(0, 1_500_000)])
    );
    assert_eq!(
        unit("epoch_s", "0"),
        Vector::Timestamp(vec![-KDB_EPOCH_NANOS])
    );
    assert_eq!(
        unit("epoch_s", "-1"),
        Vector::Timestamp(vec![kdb_ns(-1, 0)])
    );
    // Still RFC 3339 strings in an epoch column.
    assert_eq!(unit("epoch_ms", r#""2025-11-25T14:30:00Z""#), want);
    assert_err!(
        r#""type":"timestamp","time_format":"epoch_s""#,
        "1e12",
        RecordError::OutOfRange { .. }
    );
    assert_err!(
        r#""type":"timestamp","time_format":"epoch_ns""#,
        "-9223372036854775808",
        RecordError::OutOfRange { .. }
    );
}

#[test]
fn month_date_datetime() {
    let m = r#""type":"month","nullable":true"#;
    assert_eq!(simple(m, r#""2000-01""#), Vector::Month(vec![0]));
    assert_eq!(simple(m, r#""2024-01""#), Vector::Month(vec![288]));
    assert_eq!(simple(m, r#""1999-12""#), Vector::Month(vec![-1]));
    assert_eq!(simple(m, r#""2024-02-15""#), Vector::Month(vec![289]));
    assert_eq!(
        simple(m, r#""2024-02-29T23:00:00-02:00""#),
        Vector::Month(vec![290])
    );
    assert_eq!(simple(m, ""), Vector::Month(vec![NULL_INT]));
    assert_err!(m, r#""2024-13""#, RecordError::BadTemporal { .. });
    assert_err!(m, r#""2024-1""#, RecordError::BadTemporal { .. });
    assert_err!(m, "288", RecordError::WrongType { .. });
    assert_eq!(
        simple(r#""type":"month","time_format":"epoch_s""#, "1706745600"),
        Vector::Month(vec![289])
    );

    let d = r#""type":"date","nullable":true"#;
    assert_eq!(simple(d, r#""2000-01-01""#), Vector::Date(vec![0]));
    assert_eq!(simple(d, r#""1999-12-31""#), Vector::Date(vec![-1]));
    assert_eq!(simple(d, r#""2024-01-31""#), Vector::Date(vec![8796]));
    assert_eq!(simple(d, r#""2024-02-29""#), Vector::Date(vec![8825]));
    // A date-time gives its UTC date.
    assert_eq!(
        simple(d, r#""2024-01-31T23:30:00-01:00""#),
        Vector::Date(vec![8797])
    );
    assert_eq!(simple(d, ""), Vector::Date(vec![NULL_INT]));
    for bad in [
        r#""2023-02-29""#,
        r#""2024-00-10""#,
        r#""2024-1-10""#,
        r#""31/01/2024""#,
    ] {
        assert_err!(d, bad, RecordError::BadTemporal { .. });
    }
    assert_err!(d, "8796", RecordError::WrongType { .. });
    assert_eq!(
        simple(r#""type":"date","time_format":"epoch_days""#, "10957"),
        Vector::Date(vec![0])
    );
    assert_eq!(
        simple(r#""type":"date","time_format":"epoch_days""#, "0"),
        Vector::Date(vec![-(KDB_EPOCH_DAYS as i32)])
    );
    assert_eq!(
        simple(r#""type":"date","time_format":"epoch_ms""#, "-1"),
        Vector::Date(vec![-(KDB_EPOCH_DAYS as i32) - 1])
    );
    assert_err!(
        r#""type":"date","time_format":"epoch_days""#,
        "1e12",
        RecordError::OutOfRange { .. }
    );

    let z = r#""type":"datetime","nullable":true"#;
    assert_eq!(
        simple(z, r#""2000-01-02T12:00:00Z""#),
        Vector::Datetime(vec![1.5])
    );
    assert_eq!(
        simple(z, r#""1999-12-31T18:00:00Z""#),
        Vector::Datetime(vec![-0.25])
    );
    match simple(z, "") {
        Vector::Datetime(v) => assert_eq!(v[0].to_bits(), null_float().to_bits()),
        v => panic!("{v:?}"),
    }
    assert_err!(z, r#""2000-01-02T12:00""#, RecordError::BadTemporal { .. });
}

#[test]
fn timespan_minute_second_time() {
    let n = r#""type":"timespan","nullable":true"#;
    let tod = (14 * 3600 + 30 * 60) * 1_000_000_000i64;
    assert_eq!(simple(n, r#""14:30:00""#), Vector::Timespan(vec![tod]));
    assert_eq!(simple(n, r#""14:30""#), Vector::Timespan(vec![tod]));
    assert_eq!(
        simple(n, r#""14:30:00.123456789""#),
        Vector::Timespan(vec![tod + 123_456_789])
    );
    assert_eq!(
        simple(n, r#""00:00:00.5""#),
        Vector::Timespan(vec![500_000_000])
    );
    // From a date-time: the UTC time of day.
    assert_eq!(
        simple(n, r#""2025-11-25T16:30:00.000000001+02:00""#),
        Vector::Timespan(vec![tod + 1])
    );
    assert_eq!(simple(n, "5"), Vector::Timespan(vec![5]));
    assert_eq!(simple(n, "-5"), Vector::Timespan(vec![-5]));
    assert_eq!(simple(n, ""), Vector::Timespan(vec![NULL_LONG]));
    for bad in [
        r#""24:00:00""#,
        r#""12:60""#,
        r#""12:00:60""#,
        r#""1:00""#,
        r#""12:00:00.""#,
        r#""noon""#,
    ] {
        assert_err!(n, bad, RecordError::BadTemporal { .. });
    }
    assert_err!(n, "1.5", RecordError::NotIntegral { .. });
    assert_eq!(
        simple(
            r#""type":"timespan","time_format":"epoch_ms""#,
            "1764081000250"
        ),
        Vector::Timespan(vec![tod + 250_000_000])
    );

    let u = r#""type":"minute","nullable":true"#;
    assert_eq!(simple(u, r#""14:30""#), Vector::Minute(vec![870]));
    assert_eq!(simple(u, r#""14:30:59.9""#), Vector::Minute(vec![870]));
    assert_eq!(simple(u, "870"), Vector::Minute(vec![870]));
    assert_eq!(simple(u, ""), Vector::Minute(vec![NULL_INT]));
    assert_err!(u, "-2147483648", RecordError::OutOfRange { .. });

    let v = r#""type":"second","nullable":true"#;
    assert_eq!(simple(v, r#""14:30:15""#), Vector::Second(vec![52_215]));
    assert_eq!(simple(v, "52215"), Vector::Second(vec![52_215]));
    assert_eq!(simple(v, ""), Vector::Second(vec![NULL_INT]));
    assert_err!(v, "2147483648", RecordError::OutOfRange { .. });

    let t = r#""type":"time","nullable":true"#;
    assert_eq!(
        simple(t, r#""14:30:15.123""#),
        Vector::Time(vec![52_215_123])
    );
    assert_eq!(
        simple(t, r#""14:30:15.1239""#),
        Vector::Time(vec![52_215_123])
    );
    assert_eq!(simple(t, "52215123"), Vector::Time(vec![52_215_123]));
    assert_eq!(simple(t, ""), Vector::Time(vec![NULL_INT]));
    assert_eq!(
        simple(r#""type":"time","time_format":"epoch_s""#, "1764081015"),
        Vector::Time(vec![52_215_000])
    );
    assert_err!(t, r#""25:00""#, RecordError::BadTemporal { .. });
}

#[test]
fn defaults_convert_like_values() {
    assert_eq!(
        simple(r#""type":"long","default":42"#, ""),
        Vector::Long(vec![42])
    );
    assert_eq!(
        simple(r#""type":"float","default":1.25"#, "null"),
        Vector::Float(vec![1.25])
    );
    assert_eq!(
        simple(r#""type":"date","default":"2024-01-31""#, ""),
        Vector::Date(vec![8796])
    );
    assert_eq!(
        simple(r#""type":"char","default":"N""#, ""),
        Vector::Char(b"N".to_vec())
    );
    assert_eq!(
        simple(r#""type":"long","default":42"#, "7"),
        Vector::Long(vec![7])
    );
}

#[test]
fn error_messages_name_table_column_field_and_value() {
    let e = err(r#""type":"long","source":"/a/b""#, "").to_string();
    assert!(
        e.contains("table t") && e.contains("column v") && e.contains("/a/b"),
        "{e}"
    );

    let cat = catalog(r#""type":"long","source":"/x""#);
    let mut b = BatchBuilder::new();
    let e = cat
        .decode_record(br#"{"x":"twelve"}"#, "s", &mut b)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        r#"table t, column v, field /x: expected an integer, got "twelve""#
    );
    let e = cat
        .decode_record(br#"{"x":1e30}"#, "s", &mut b)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "table t, column v, field /x: 1e30 is out of range for long"
    );
    let e = cat
        .decode_record(br#"{"x":2.5}"#, "s", &mut b)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "table t, column v, field /x: 2.5 is not a whole number (long column)"
    );

    // Long values are cut in messages.
    let long = "x".repeat(500);
    let e = err(r#""type":"char""#, &format!("\"{long}\"")).to_string();
    assert!(e.contains('…') && e.len() < 200, "{e}");
    let e = err(r#""type":"timestamp""#, r#""2025-13-01T00:00:00Z""#).to_string();
    assert!(
        e.contains("bad timestamp") && e.contains("month out of range"),
        "{e}"
    );
    let e = err(r#""type":"guid""#, r#""nope""#).to_string();
    assert!(e.contains("bad GUID \"nope\""), "{e}");
    let e = err(r#""type":"float""#, r#""NaN""#).to_string();
    assert!(e.contains("non-finite") && e.contains("NaN"), "{e}");
}
