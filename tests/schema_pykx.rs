//! What PyKX (the real kdb+ decoder) reads from a decoded, encoded batch.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use tickbridge::kdb::message::MsgType;
use tickbridge::schema::{BatchBuilder, Catalog};

const READ: &str = r#"
import sys, json
import pykx as kx
func, table, cols = list(kx.deserialize(sys.stdin.buffer.read()))
def show(c):
    raw = isinstance(c, kx.DatetimeVector)
    return {"type": type(c).__name__, "values": [repr(v) for v in c.py(raw=raw)]}
print(json.dumps({"func": func.py(), "table": table.py(), "cols": [show(c) for c in cols]}))
"#;

fn pykx_reads(bytes: &[u8]) -> serde_json::Value {
    let mut child = common::python()
        .args(["-c", READ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python with pykx");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn pykx_reads_every_type() {
    let c = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")).unwrap();
    let full = r#"{"type":"alltypes","v":{"time":"14:30:00.5","sym":"AAPL","id":"01234567-89ab-cdef-0123-456789abcdef","flag":true,"b":255,"h":-7,"i":70000,"j":-5,"e":1.5,"f":"Infinity","c":"x","s":"a b","str":"hi","p":"2025-11-25T14:30:00.123456789Z","pms":1764081000123,"m":"2025-11","d":"2025-11-25","z":"2025-11-25T12:00:00Z","n":"01:02:03","u":"14:30","v":"14:30:15","t":"14:30:15.123"}}"#;
    let sparse = r#"{"type":"alltypes","v":{"time":"00:00","sym":"X","id":"00000000-0000-0000-0000-000000000001"}}"#;
    let mut b = BatchBuilder::new();
    c.decode_record(full.as_bytes(), "s", &mut b).unwrap();
    c.decode_record(sparse.as_bytes(), "s", &mut b).unwrap();
    let mut bytes = Vec::new();
    b.encode_run(0, ".u.upd", MsgType::Async, &mut bytes)
        .unwrap();
    let v = pykx_reads(&bytes);
    assert_eq!(v["func"], ".u.upd");
    assert_eq!(v["table"], "alltypes");
    let want: &[(&str, [&str; 2])] = &[
        (
            "TimespanVector",
            [
                "datetime.timedelta(seconds=52200, microseconds=500000)",
                "datetime.timedelta(0)",
            ],
        ),
        ("SymbolVector", ["'AAPL'", "'X'"]),
        (
            "GUIDVector",
            [
                "UUID('01234567-89ab-cdef-0123-456789abcdef')",
                "UUID('00000000-0000-0000-0000-000000000001')",
            ],
        ),
        ("BooleanVector", ["True", "False"]),
        ("ByteVector", ["255", "0"]),
        ("ShortVector", ["-7", "<NA>"]),
        ("IntVector", ["70000", "<NA>"]),
        ("LongVector", ["-5", "<NA>"]),
        ("RealVector", ["1.5", "nan"]),
        ("FloatVector", ["inf", "nan"]),
        ("CharVector", ["120", "32"]),
        ("SymbolVector", ["'a b'", "''"]),
        ("List", ["b'hi'", "b''"]),
        (
            "TimestampVector",
            ["datetime.datetime(2025, 11, 25, 14, 30, 0, 123456)", "NaT"],
        ),
        (
            "TimestampVector",
            ["datetime.datetime(2025, 11, 25, 14, 30, 0, 123000)", "NaT"],
        ),
        ("MonthVector", ["datetime.date(2025, 11, 1)", "NaT"]),
        ("DateVector", ["datetime.date(2025, 11, 25)", "NaT"]),
        ("DatetimeVector", ["9460.5", "nan"]),
        (
            "TimespanVector",
            ["datetime.timedelta(seconds=3723)", "NaT"],
        ),
        ("MinuteVector", ["datetime.timedelta(seconds=52200)", "NaT"]),
        ("SecondVector", ["datetime.timedelta(seconds=52215)", "NaT"]),
        (
            "TimeVector",
            [
                "datetime.timedelta(seconds=52215, microseconds=123000)",
                "NaT",
            ],
        ),
    ];
    let cols = v["cols"].as_array().unwrap();
    assert_eq!(cols.len(), want.len());
    for (i, (col, (ty, vals))) in cols.iter().zip(want).enumerate() {
        assert_eq!(col["type"], *ty, "column {i}");
        assert_eq!(col["values"], serde_json::json!(vals), "column {i}");
    }
}
