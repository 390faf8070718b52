//! Every length the encoders write is true for any text, NULs included.
//!
//! kdb+ symbols (atoms, symbol vectors, table column names, error texts,
//! the function and table names of an update) are NUL-terminated, so a
//! text with a NUL cannot travel whole. The encoders write such a text up
//! to its first NUL and count it the same way; these properties check that
//! `encoded_len` equals the bytes written, that the header's length is the
//! message's length, and that decoding gives exactly the cut texts (what
//! kdb+ itself would read from those bytes).

use proptest::collection::vec;
use proptest::prelude::*;
use tickbridge::kdb::encode::{encode_into, encoded_len};
use tickbridge::kdb::upd::{upd_len, upd_to_k};
use tickbridge::kdb::{
    decode, decode_message, encode_message, encode_upd, Column, MsgType, SymbolTable, Table,
    Vector, K,
};

/// Text that often holds NULs, at the start, middle or end, next to
/// multi-byte characters.
fn text() -> impl Strategy<Value = String> {
    vec(
        prop_oneof![
            3 => Just('\0'),
            3 => proptest::char::range('a', 'e'),
            1 => Just('é'),
            1 => Just('😀'),
            1 => any::<char>(),
        ],
        0..10,
    )
    .prop_map(String::from_iter)
}

/// A text as kdb+ reads it back from our bytes: up to its first NUL.
fn cut(s: &str) -> String {
    s.split('\0').next().unwrap_or_default().to_string()
}

/// `v` with every symbol-like text cut as the wire cuts it.
fn as_read(v: &K) -> K {
    match v {
        K::Symbol(s) => K::Symbol(cut(s)),
        K::Error(e) => K::Error(cut(e)),
        K::Vector(a, Vector::Symbol(s)) => {
            K::Vector(*a, Vector::Symbol(s.iter().map(|x| cut(x)).collect()))
        }
        K::List(a, items) => K::List(*a, items.iter().map(as_read).collect()),
        K::Dict {
            keys,
            values,
            sorted,
        } => K::Dict {
            keys: Box::new(as_read(keys)),
            values: Box::new(as_read(values)),
            sorted: *sorted,
        },
        K::Table(t) => K::Table(Table {
            attr: t.attr,
            names: t.names.iter().map(|n| cut(n)).collect(),
            columns: t.columns.iter().map(as_read).collect(),
        }),
        other => other.clone(),
    }
}

fn value() -> impl Strategy<Value = K> {
    let leaf = prop_oneof![
        text().prop_map(K::Symbol),
        text().prop_map(K::Error),
        vec(text(), 0..5).prop_map(|s| K::vector(Vector::Symbol(s))),
        vec(any::<u8>(), 0..6).prop_map(K::string),
        any::<i64>().prop_map(K::Long),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(K::list),
            (vec(text(), 0..4), vec(inner.clone(), 0..4)).prop_map(|(k, v)| {
                let n = k.len().min(v.len());
                K::Dict {
                    keys: Box::new(K::vector(Vector::Symbol(k[..n].to_vec()))),
                    values: Box::new(K::list(v[..n].to_vec())),
                    sorted: false,
                }
            }),
            // A table: column names with NULs, symbol columns with NULs.
            (vec(text(), 1..4), 0usize..4)
                .prop_flat_map(|(names, rows)| {
                    let n = names.len();
                    (Just(names), vec(vec(text(), rows..=rows), n..=n))
                })
                .prop_map(|(names, cols)| {
                    K::Table(Table::new(
                        names,
                        cols.into_iter()
                            .map(|c| K::vector(Vector::Symbol(c)))
                            .collect(),
                    ))
                }),
        ]
    })
}

/// One update column of any of the fast path's shapes, symbols with NULs.
fn column(rows: usize) -> impl Strategy<Value = (Column, Vec<String>)> {
    prop_oneof![
        vec(text(), rows..=rows).prop_map(|s| (Column::Symbols(Vec::new()), s)),
        vec(text(), rows..=rows).prop_map(|s| (Column::Simple(Vector::Symbol(s)), Vec::new())),
        vec(any::<i64>(), rows..=rows).prop_map(|x| (Column::Simple(Vector::Long(x)), Vec::new())),
        // Strings hold NULs whole (they are counted); ends may even be out
        // of order or short of the bytes, and the length must still be true.
        (vec(any::<u8>(), 0..12), vec(0u32..16, rows..=rows))
            .prop_map(|(bytes, ends)| (Column::Strings { ends, bytes }, Vec::new())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn encoded_len_is_the_bytes_written(v in value()) {
        let mut body = Vec::new();
        encode_into(&v, &mut body);
        prop_assert_eq!(encoded_len(&v), body.len());
        prop_assert_eq!(decode(&body).expect("our own bytes decode"), as_read(&v));
        let msg = encode_message(&v, MsgType::Async);
        let declared = u32::from_le_bytes([msg[4], msg[5], msg[6], msg[7]]) as usize;
        prop_assert_eq!(declared, msg.len());
        prop_assert_eq!(decode_message(&msg).expect("message decodes").1, as_read(&v));
    }

    #[test]
    fn fast_path_length_is_the_bytes_written(
        func in text(),
        table in text(),
        cols in (0usize..4).prop_flat_map(|rows| vec(column(rows), 0..4)),
    ) {
        let mut syms = SymbolTable::new();
        let columns: Vec<Column> = cols
            .into_iter()
            .map(|(c, texts)| match c {
                Column::Symbols(_) => {
                    Column::Symbols(texts.iter().map(|t| syms.intern(t)).collect())
                }
                other => other,
            })
            .collect();
        let mut out = Vec::new();
        encode_upd(&func, &table, &columns, &syms, MsgType::Async, &mut out);
        prop_assert_eq!(upd_len(&func, &table, &columns, &syms), out.len());
        let declared = u32::from_le_bytes([out[4], out[5], out[6], out[7]]) as usize;
        prop_assert_eq!(declared, out.len());
        let general = upd_to_k(&func, &table, &columns, &syms);
        prop_assert_eq!(&out, &encode_message(&general, MsgType::Async));
        prop_assert_eq!(decode_message(&out).expect("update decodes").1, as_read(&general));
    }
}

/// The case from the issue: one NUL inside a symbol column value.
#[test]
fn a_nul_inside_a_symbol_is_cut_and_counted_alike() {
    let mut syms = SymbolTable::new();
    let cols = vec![Column::Symbols(vec![
        syms.intern("a\0b"),
        syms.intern("ok"),
    ])];
    let mut out = Vec::new();
    encode_upd(".u.upd", "trade", &cols, &syms, MsgType::Async, &mut out);
    assert_eq!(out.len(), upd_len(".u.upd", "trade", &cols, &syms));
    let (_, v) = decode_message(&out).expect("decodes");
    assert_eq!(
        v,
        K::list(vec![
            K::sym(".u.upd"),
            K::sym("trade"),
            K::list(vec![K::vector(Vector::Symbol(vec![
                "a".into(),
                "ok".into()
            ]))]),
        ])
    );
}
