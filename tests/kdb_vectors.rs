//! Ground truth: byte-exact serializations captured from a real kdb+ process
//! (`../shared/kdb-vectors/`). Every body decodes, and re-encoding gives the
//! same bytes.

mod common;

use tickbridge::kdb::{
    compress, decode, decode_message, encode, encode_message, Attr, MsgType, SymbolTable, Table,
    Vector, K,
};
use tickbridge::schema::convert::{empty_column, null_cell, Cell};
use tickbridge::schema::QType;

fn pairs(file: &str) -> Vec<(String, Vec<u8>)> {
    let path = common::vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len().is_multiple_of(2), "{file}: odd number of lines");
    lines
        .chunks(2)
        .map(|c| (c[0].to_string(), hex::decode(c[1].trim()).expect("hex")))
        .collect()
}

#[test]
fn every_expression_decodes_and_reencodes_byte_exact() {
    let all = pairs("expressions.txt");
    assert!(
        all.len() >= 60,
        "expected the full vector set, got {}",
        all.len()
    );
    for (expr, body) in &all {
        let v = decode(body).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(&encode(&v), body, "{expr}: re-encoding differs");
        // As a whole message too.
        let msg = encode_message(&v, MsgType::Async);
        let (h, back) = decode_message(&msg).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(h.msg_type, MsgType::Async);
        assert_eq!(back, v, "{expr}");
    }
}

#[test]
fn selected_expressions_have_the_right_values() {
    let all = pairs("expressions.txt");
    let get = |e: &str| {
        let (_, b) = all
            .iter()
            .find(|(x, _)| x == e)
            .unwrap_or_else(|| panic!("no {e}"));
        decode(b).expect("decodes")
    };
    assert_eq!(get("1+`"), K::Error("type".into()));
    assert_eq!(get("-234h"), K::Short(-234));
    assert_eq!(get("89421099511627575j"), K::Long(89421099511627575));
    assert_eq!(get("0Nj"), K::Long(i64::MIN));
    // kdb+ reads any NaN as null; the captured `0n` is the quiet NaN 0x7ff8….
    assert!(matches!(get("0n"), K::Float(f) if f.to_bits() == 0x7ff8_0000_0000_0000));
    assert_eq!(get("2000.05.01"), K::Date(121));
    assert_eq!(get("12:04:59.123"), K::Time(43_499_123));
    assert_eq!(
        get("2000.01.04D05:36:57.600"),
        K::Timestamp(279_417_600_000_000)
    );
    assert_eq!(
        get("``quick``fox"),
        K::vector(Vector::Symbol(vec![
            "".into(),
            "quick".into(),
            "".into(),
            "fox".into()
        ]))
    );
    assert_eq!(
        get("(1;`bcd;\"0bc\";5.5e)"),
        K::list(vec![
            K::Long(1),
            K::sym("bcd"),
            K::string("0bc"),
            K::Real(5.5)
        ])
    );
    assert!(matches!(get("{x+y}"), K::Function { type_code: 100, .. }));
}

#[test]
fn compressed_vectors_decompress_to_their_values() {
    let all = pairs("compressed.txt");
    assert_eq!(all.len(), 2);
    let syms = K::vector(Vector::Symbol(vec!["q".to_string(); 1000]));
    let table = K::Table(Table {
        attr: Attr::None,
        names: vec!["q".into()],
        columns: vec![syms.clone()],
    });
    for ((expr, body), want) in all.iter().zip([syms, table]) {
        let mut msg = vec![1, 0, 1, 0];
        msg.extend_from_slice(&((body.len() + 8) as u32).to_le_bytes());
        msg.extend_from_slice(body);
        let (h, v) = decode_message(&msg).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert!(h.compressed);
        assert_eq!(v, want, "{expr}");
        // Our compressor's output is read back by the decompressor, and is
        // no larger than kdb+'s own for the same message.
        let plain = encode_message(&v, MsgType::Async);
        let ours = compress::compress(&plain).expect("compressible");
        assert!(
            ours.len() <= msg.len() + 8,
            "{expr}: {} vs kdb+ {}",
            ours.len(),
            msg.len()
        );
        assert_eq!(decode_message(&ours).expect("ours decodes").1, want);
    }
}

/// The q atom holding a schema cell of type `t` (the bridge's own value).
fn atom_of(t: QType, cell: Cell) -> K {
    match (t, cell) {
        (QType::Guid, Cell::Guid(g)) => K::Guid(g),
        (QType::Short, Cell::I16(x)) => K::Short(x),
        (QType::Int, Cell::I32(x)) => K::Int(x),
        (QType::Long, Cell::I64(x)) => K::Long(x),
        (QType::Real, Cell::F32(x)) => K::Real(x),
        (QType::Float, Cell::F64(x)) => K::Float(x),
        (QType::Char, Cell::U8(x)) => K::Char(x),
        (QType::Symbol, Cell::Sym(s)) => K::sym(s.as_ref()),
        (QType::Timestamp, Cell::I64(x)) => K::Timestamp(x),
        (QType::Month, Cell::I32(x)) => K::Month(x),
        (QType::Date, Cell::I32(x)) => K::Date(x),
        (QType::Datetime, Cell::F64(x)) => K::Datetime(x),
        (QType::Timespan, Cell::I64(x)) => K::Timespan(x),
        (QType::Minute, Cell::I32(x)) => K::Minute(x),
        (QType::Second, Cell::I32(x)) => K::Second(x),
        (QType::Time, Cell::I32(x)) => K::Time(x),
        (t, c) => panic!("no atom for {t:?} {c:?}"),
    }
}

/// The typed null a missing nullable field becomes is, byte for byte, what
/// real kdb+ writes for that null (`0n` is 0x7ff8…, not 0xfff8…). Types
/// with no atom in the captured set (0Nh, 0Ne, 0Np, 0Nn, 0Ng) are checked
/// against PyKX in kdb_pykx_oracle.
#[test]
fn schema_nulls_are_the_bytes_kdb_writes() {
    let all = pairs("expressions.txt");
    let bytes_of = |e: &str| {
        all.iter()
            .find(|(x, _)| x == e)
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("no {e} in the vectors"))
    };
    let cases = [
        (QType::Int, "0Ni"),
        (QType::Long, "0Nj"),
        (QType::Float, "0n"),
        (QType::Char, "\" \""),
        (QType::Symbol, "`"),
        (QType::Month, "0Nm"),
        (QType::Date, "0Nd"),
        (QType::Datetime, "0Nz"),
        (QType::Minute, "0Nu"),
        (QType::Second, "0Nv"),
        (QType::Time, "0Nt"),
    ];
    for (t, expr) in cases {
        let cell = null_cell(t).unwrap_or_else(|| panic!("{t:?} has a null"));
        assert_eq!(
            hex::encode(encode(&atom_of(t, cell))),
            hex::encode(bytes_of(expr)),
            "{t:?} null vs kdb+'s {expr}"
        );
    }
    // And inside a vector, as the fast path sends a column: `3.23 0n`.
    let mut syms = SymbolTable::new();
    let mut col = empty_column(QType::Float);
    assert!(Cell::F64(3.23).push(&mut col, &mut syms));
    assert!(null_cell(QType::Float)
        .expect("float null")
        .push(&mut col, &mut syms));
    assert_eq!(
        hex::encode(encode(&col.to_k(&syms))),
        hex::encode(bytes_of("3.23 0n"))
    );
}
