//! The stand-in's answers to preflight's queries, read by PyKX (unlicensed,
//! `no_ctx=True`) as a q client would: `meta` is a keyed table whose bytes
//! equal PyKX's own serialization of the keyed table q documents
//! (`c | t f a`), `type .u.upd` a short, unknown names q errors naming them.
//! Fails, never skips, when PyKX is missing.

mod tp_support;

use std::process::Stdio;

use tp_support::common::python;
use tp_support::{upd, Client, Tp};

use tickbridge::kdb::K;

/// Asks over a raw socket (so the reply's bytes are exactly what the
/// stand-in wrote) and over `kx.SyncQConnection`, then prints a verdict.
const SCRIPT: &str = r#"
import json, socket, struct, sys
import numpy as np, pandas as pd, pykx as kx

port = int(sys.argv[1])
failures = []

def check(ok, what):
    if not ok:
        failures.append(what)

def raw_query(expr):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"\x03\x00")
    assert s.recv(1) == b"\x03"
    body = b"\x0a\x00" + struct.pack("<I", len(expr)) + expr.encode()
    s.sendall(struct.pack("<BBBBI", 1, 1, 0, 0, 8 + len(body)) + body)
    head = b""
    while len(head) < 8:
        head += s.recv(8 - len(head))
    n = struct.unpack("<I", head[4:])[0]
    rest = b""
    while len(rest) < n - 8:
        rest += s.recv(n - 8 - len(rest))
    s.close()
    return head, rest

def keyed_meta(cols, letters, attrs):
    # q's documented meta: key column c (symbols); t (a char vector), f, a (symbols).
    df = pd.DataFrame({"f": [""] * len(cols), "a": attrs}, index=pd.Index(cols, name="c"))
    df.insert(0, "t", np.array([bytes([b]) for b in letters.encode()], dtype="S1"))
    return kx.toq(df)

cols = ["time", "sym", "price", "size", "side"]
want = keyed_meta(cols, "nsfjc", ["", "g", "", "", ""])
head, body = raw_query("meta `trade")
check(head[1] == 2, "reply is a response message")
check(body == bytes(kx.serialize(want))[8:], "meta `trade bytes: %s" % body.hex())

conn = kx.SyncQConnection("127.0.0.1", port, no_ctx=True)
m = conn("meta `trade")
check(isinstance(m, kx.KeyedTable), "meta is a KeyedTable: %s" % type(m))
d = m.pd()
check(d.index.name == "c" and list(d.index) == cols, "key column c")
check(list(d.columns) == ["t", "f", "a"], "value columns t f a")
check(b"".join(d["t"].tolist()) == b"nsfjc", "type letters")
check(list(d["a"]) == ["", "g", "", "", ""], "attributes")
p = conn("0!meta `trade")
check(isinstance(p, kx.Table) and not isinstance(p, kx.KeyedTable), "0!meta is a plain table")
check(list(p.pd().columns) == ["c", "t", "f", "a"], "0!meta columns")

# A string column declared () shows a space until it has rows, then C.
letters = b"".join(conn("meta `alltypes").pd()["t"].tolist())
want_letters = b"nsgbxhijefcsCppmdznuvt" if len(sys.argv) > 2 else b"nsgbxhijefcs ppmdznuvt"
check(letters == want_letters, "alltypes letters: %r" % letters)

t = conn("type .u.upd")
check(isinstance(t, kx.ShortAtom) and t.py() == 100, "type .u.upd is 100h")
check(conn("type .u.i").py() == -7, "type .u.i is -7h")
for q, err in [("type .u.nope", ".u.nope"), ("meta `nope", "nope")]:
    try:
        conn(q)
        failures.append("%s did not fail" % q)
    except kx.QError as e:
        check(str(e) == err, "%s: q error %r" % (q, str(e)))
tables = conn("tables[]")
check(isinstance(tables, kx.SymbolVector), "tables[] is a symbol vector")
check(tables.py() == ["alltypes", "optinput", "quote", "trade"], "tables[]: %s" % tables.py())

conn.close()
print(json.dumps({"ok": not failures, "failures": failures}))
"#;

fn run(port: u16, extra: &[&str]) -> serde_json::Value {
    let out = python()
        .arg("-c")
        .arg(SCRIPT)
        .arg(port.to_string())
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| {
        panic!(
            "no verdict from python: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn pykx_reads_meta_type_and_errors_as_q_sends_them() {
    let tp = Tp::start(None, &[]);
    let v = run(tp.port, &[]);
    assert_eq!(v["ok"], true, "{v:#}");

    // One alltypes row with a string: meta now shows C for it.
    let mut feed = Client::connect(tp.port);
    let cells = vec![
        K::Timespan(1),
        K::sym("A"),
        K::Guid([1; 16]),
        K::Bool(true),
        K::Byte(1),
        K::Short(1),
        K::Int(1),
        K::Long(1),
        K::Real(1.0),
        K::Float(1.0),
        K::Char(b'x'),
        K::sym("s"),
        K::string("hi"),
        K::Timestamp(1),
        K::Timestamp(1),
        K::Month(1),
        K::Date(1),
        K::Datetime(1.0),
        K::Timespan(1),
        K::Minute(1),
        K::Second(1),
        K::Time(1),
    ];
    let answer = feed.sync(&upd(K::sym(".u.upd"), "alltypes", K::list(cells)));
    assert_eq!(answer, K::Identity);
    assert_eq!(feed.query("count alltypes"), K::Long(1));
    assert!(matches!(feed.query("meta `alltypes"), K::Dict { .. }));
    let v = run(tp.port, &["with-rows"]);
    assert_eq!(v["ok"], true, "{v:#}");
}
