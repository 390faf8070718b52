//! proptest strategies for kdb+ values: every simple type as atom and
//! vector (with nulls, infinities and arbitrary bit patterns), general
//! lists, dictionaries, tables and keyed tables, errors, `::`.
#![allow(dead_code)]

use proptest::collection::vec;
use proptest::prelude::*;
use tickbridge::kdb::{Attr, Table, Vector, K};

/// Symbols are NUL-terminated on the wire, so they hold no NUL byte.
fn symbol() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9_.]{1,8}", "[^\u{0}]{0,6}",]
}

fn special_i64() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MIN),
        Just(i64::MAX),
        Just(-i64::MAX),
        any::<i64>()
    ]
}

fn special_i32() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MIN),
        Just(i32::MAX),
        Just(-i32::MAX),
        any::<i32>()
    ]
}

fn special_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        any::<f64>(),
        any::<u64>().prop_map(f64::from_bits),
    ]
}

fn special_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::NAN),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        any::<u32>().prop_map(f32::from_bits),
    ]
}

/// A simple vector of `len` items of a random type.
pub fn vector_of(len: usize) -> impl Strategy<Value = Vector> {
    let n = len..=len;
    prop_oneof![
        vec(any::<bool>(), n.clone()).prop_map(Vector::Bool),
        vec(any::<[u8; 16]>(), n.clone()).prop_map(Vector::Guid),
        vec(any::<u8>(), n.clone()).prop_map(Vector::Byte),
        vec(any::<i16>(), n.clone()).prop_map(Vector::Short),
        vec(special_i32(), n.clone()).prop_map(Vector::Int),
        vec(special_i64(), n.clone()).prop_map(Vector::Long),
        vec(special_f32(), n.clone()).prop_map(Vector::Real),
        vec(special_f64(), n.clone()).prop_map(Vector::Float),
        vec(any::<u8>(), n.clone()).prop_map(Vector::Char),
        vec(symbol(), n.clone()).prop_map(Vector::Symbol),
        vec(special_i64(), n.clone()).prop_map(Vector::Timestamp),
        vec(special_i32(), n.clone()).prop_map(Vector::Month),
        vec(special_i32(), n.clone()).prop_map(Vector::Date),
        vec(special_f64(), n.clone()).prop_map(Vector::Datetime),
        vec(special_i64(), n.clone()).prop_map(Vector::Timespan),
        vec(special_i32(), n.clone()).prop_map(Vector::Minute),
        vec(special_i32(), n.clone()).prop_map(Vector::Second),
        vec(special_i32(), n).prop_map(Vector::Time),
    ]
}

pub fn atom() -> impl Strategy<Value = K> {
    prop_oneof![
        any::<bool>().prop_map(K::Bool),
        any::<[u8; 16]>().prop_map(K::Guid),
        any::<u8>().prop_map(K::Byte),
        any::<i16>().prop_map(K::Short),
        special_i32().prop_map(K::Int),
        special_i64().prop_map(K::Long),
        special_f32().prop_map(K::Real),
        special_f64().prop_map(K::Float),
        any::<u8>().prop_map(K::Char),
        symbol().prop_map(K::Symbol),
        special_i64().prop_map(K::Timestamp),
        special_i32().prop_map(K::Month),
        special_i32().prop_map(K::Date),
        special_f64().prop_map(K::Datetime),
        special_i64().prop_map(K::Timespan),
        special_i32().prop_map(K::Minute),
        special_i32().prop_map(K::Second),
        special_i32().prop_map(K::Time),
    ]
}

fn attr() -> impl Strategy<Value = Attr> {
    prop_oneof![
        4 => Just(Attr::None),
        1 => Just(Attr::Sorted),
        1 => Just(Attr::Unique),
        1 => Just(Attr::Parted),
        1 => Just(Attr::Grouped),
    ]
}

/// A table of `cols` distinct column names and `rows` rows: simple vectors,
/// or a general list of strings (a q string column).
pub fn table(rows: usize) -> impl Strategy<Value = Table> {
    let column = prop_oneof![
        4 => vector_of(rows).prop_map(K::vector),
        1 => vec(vec(any::<u8>(), 0..6), rows..=rows)
            .prop_map(|ss| K::list(ss.into_iter().map(K::string).collect())),
    ];
    (
        proptest::collection::btree_set("[a-z][a-z0-9]{0,5}", 1..5),
        vec(column, 4),
    )
        .prop_map(|(names, cols)| {
            let names: Vec<String> = names.into_iter().collect();
            let columns = cols.into_iter().take(names.len()).collect::<Vec<_>>();
            let names = names.into_iter().take(columns.len()).collect();
            Table::new(names, columns)
        })
}

/// Any value the codec carries. With `oracle`, only what kdb+ itself
/// round-trips as data: no attributes (kdb+ may refuse one the data does
/// not have) and no error objects (a reader raises them).
pub fn value(oracle: bool) -> impl Strategy<Value = K> {
    let attr = move || {
        if !oracle {
            attr().boxed()
        } else {
            Just(Attr::None).boxed()
        }
    };
    let leaf = prop_oneof![
        4 => atom(),
        4 => (attr(), (0usize..12).prop_flat_map(vector_of)).prop_map(|(a, v)| K::Vector(a, v)),
        1 => (0usize..6).prop_flat_map(table).prop_map(K::Table),
        1 => Just(K::Identity),
        if oracle { 0 } else { 1 } => "[a-z]{1,8}".prop_map(K::Error),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            (attr(), vec(inner.clone(), 0..6)).prop_map(|(a, items)| K::List(a, items)),
            (1usize..5)
                .prop_flat_map(move |n| (vector_of(n), vec(inner.clone(), n..=n)))
                .prop_map(|(keys, vals)| K::dict(K::vector(keys), K::list(vals))),
            (1usize..5, any::<bool>())
                .prop_flat_map(|(n, sorted)| (vector_of(n), vector_of(n), Just(sorted)))
                .prop_map(|(keys, vals, sorted)| K::Dict {
                    keys: Box::new(K::vector(keys)),
                    values: Box::new(K::vector(vals)),
                    sorted,
                }),
            (0usize..4)
                .prop_flat_map(|rows| (table(rows), table(rows)))
                .prop_map(|(k, v)| K::dict(K::Table(k), K::Table(v))),
        ]
    })
}
