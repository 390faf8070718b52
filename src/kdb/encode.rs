//! Encoding values into kdb+ IPC bytes (little-endian).
//!
//! The size of a value is computed first so each message is written into one
//! exactly-sized buffer; [`encoded_len`] must equal the bytes
//! [`encode_into`] writes for every value, or the header would lie.
//!
//! Symbols (atoms, vectors, table column names, errors) are NUL-terminated
//! on the wire and q cannot hold a NUL in one. A text with a NUL is written
//! up to its first NUL and counted the same way ([`sym_bytes`]): that is
//! exactly the symbol kdb+ reads from those bytes, and it keeps every
//! length true. Records never get here with one: the schema decoder refuses
//! a NUL in a symbol column as a per-record error, so truncation only ever
//! applies to values built in code (errors, names).

use super::message::{MsgType, HEADER_LEN};
use super::types::*;
use super::value::{Vector, K};

/// Bytes `v` takes on the wire, without a message header.
pub fn encoded_len(v: &K) -> usize {
    match v {
        K::Bool(_) | K::Byte(_) | K::Char(_) => 2,
        K::Short(_) => 3,
        K::Int(_)
        | K::Real(_)
        | K::Month(_)
        | K::Date(_)
        | K::Minute(_)
        | K::Second(_)
        | K::Time(_) => 5,
        K::Long(_) | K::Float(_) | K::Timestamp(_) | K::Datetime(_) | K::Timespan(_) => 9,
        K::Guid(_) => 17,
        K::Symbol(s) => 2 + sym_bytes(s).len(),
        K::Vector(_, vec) => 6 + vector_body_len(vec),
        K::List(_, items) => 6 + items.iter().map(encoded_len).sum::<usize>(),
        K::Dict { keys, values, .. } => 1 + encoded_len(keys) + encoded_len(values),
        K::Table(t) => {
            // 98 attr 99 (11 0 n names) (0 0 n columns)
            3 + 6
                + t.names.iter().map(|n| sym_len(n)).sum::<usize>()
                + 6
                + t.columns.iter().map(encoded_len).sum::<usize>()
        }
        K::Identity => 2,
        K::Error(e) => 2 + sym_bytes(e).len(),
        K::Function { body, .. } => 1 + body.len(),
    }
}

fn vector_body_len(v: &Vector) -> usize {
    match v {
        Vector::Symbol(s) => s.iter().map(|x| sym_len(x)).sum(),
        other => other.len() * fixed_width(other.type_code()).unwrap_or(0),
    }
}

/// Appends the serialization of `v` (no message header) to `out`.
pub fn encode_into(v: &K, out: &mut Vec<u8>) {
    match v {
        K::Bool(b) => out.extend_from_slice(&[(-BOOL) as u8, *b as u8]),
        K::Guid(g) => {
            out.push((-GUID) as u8);
            out.extend_from_slice(g);
        }
        K::Byte(b) => out.extend_from_slice(&[(-BYTE) as u8, *b]),
        K::Short(x) => atom(out, -SHORT, &x.to_le_bytes()),
        K::Int(x) => atom(out, -INT, &x.to_le_bytes()),
        K::Long(x) => atom(out, -LONG, &x.to_le_bytes()),
        K::Real(x) => atom(out, -REAL, &x.to_le_bytes()),
        K::Float(x) => atom(out, -FLOAT, &x.to_le_bytes()),
        K::Char(c) => out.extend_from_slice(&[(-CHAR) as u8, *c]),
        K::Symbol(s) => {
            out.push((-SYMBOL) as u8);
            push_sym(out, s);
        }
        K::Timestamp(x) => atom(out, -TIMESTAMP, &x.to_le_bytes()),
        K::Month(x) => atom(out, -MONTH, &x.to_le_bytes()),
        K::Date(x) => atom(out, -DATE, &x.to_le_bytes()),
        K::Datetime(x) => atom(out, -DATETIME, &x.to_le_bytes()),
        K::Timespan(x) => atom(out, -TIMESPAN, &x.to_le_bytes()),
        K::Minute(x) => atom(out, -MINUTE, &x.to_le_bytes()),
        K::Second(x) => atom(out, -SECOND, &x.to_le_bytes()),
        K::Time(x) => atom(out, -TIME, &x.to_le_bytes()),
        K::Vector(attr, vec) => {
            out.push(vec.type_code() as u8);
            out.push(*attr as u8);
            out.extend_from_slice(&(vec.len() as u32).to_le_bytes());
            write_vector_body(vec, out);
        }
        K::List(attr, items) => {
            out.push(MIXED as u8);
            out.push(*attr as u8);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for item in items {
                encode_into(item, out);
            }
        }
        K::Dict {
            keys,
            values,
            sorted,
        } => {
            out.push(if *sorted { SORTED_DICT } else { DICT } as u8);
            encode_into(keys, out);
            encode_into(values, out);
        }
        K::Table(t) => {
            out.extend_from_slice(&[TABLE as u8, t.attr as u8, DICT as u8]);
            out.extend_from_slice(&[SYMBOL as u8, 0]);
            out.extend_from_slice(&(t.names.len() as u32).to_le_bytes());
            for n in &t.names {
                push_sym(out, n);
            }
            out.extend_from_slice(&[MIXED as u8, 0]);
            out.extend_from_slice(&(t.columns.len() as u32).to_le_bytes());
            for c in &t.columns {
                encode_into(c, out);
            }
        }
        K::Identity => out.extend_from_slice(&[UNARY_PRIMITIVE as u8, 0]),
        K::Error(e) => {
            out.push(ERROR as u8);
            push_sym(out, e);
        }
        K::Function { type_code, body } => {
            out.push(*type_code as u8);
            out.extend_from_slice(body);
        }
    }
}

fn atom(out: &mut Vec<u8>, t: i8, bytes: &[u8]) {
    out.push(t as u8);
    out.extend_from_slice(bytes);
}

/// The bytes of `s` that go on the wire as a symbol: everything before its
/// first NUL (see the module comment). Writers and sizers both use it.
pub(crate) fn sym_bytes(s: &str) -> &[u8] {
    let bytes = s.as_bytes();
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.get(..end).unwrap_or(bytes)
}

/// Wire size of `s` as a symbol, terminator included.
pub(crate) fn sym_len(s: &str) -> usize {
    sym_bytes(s).len() + 1
}

/// Writes `s` as a NUL-terminated symbol (cut at a NUL, as [`sym_len`] counts).
pub(crate) fn push_sym(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(sym_bytes(s));
    out.push(0);
}

macro_rules! le_all {
    ($out:expr, $xs:expr) => {{
        let xs = $xs;
        $out.reserve(xs.len() * std::mem::size_of_val(&xs[0..0]).max(1));
        for x in xs.iter() {
            $out.extend_from_slice(&x.to_le_bytes());
        }
    }};
}

pub(crate) fn write_vector_body(v: &Vector, out: &mut Vec<u8>) {
    match v {
        Vector::Bool(b) => out.extend(b.iter().map(|&x| x as u8)),
        Vector::Guid(g) => {
            for x in g {
                out.extend_from_slice(x);
            }
        }
        Vector::Byte(b) | Vector::Char(b) => out.extend_from_slice(b),
        Vector::Short(x) => le_all!(out, x),
        Vector::Int(x)
        | Vector::Month(x)
        | Vector::Date(x)
        | Vector::Minute(x)
        | Vector::Second(x)
        | Vector::Time(x) => le_all!(out, x),
        Vector::Long(x) | Vector::Timestamp(x) | Vector::Timespan(x) => le_all!(out, x),
        Vector::Real(x) => le_all!(out, x),
        Vector::Float(x) | Vector::Datetime(x) => le_all!(out, x),
        Vector::Symbol(s) => {
            for x in s {
                push_sym(out, x);
            }
        }
    }
}

/// The body of `v` (no header), in a buffer of exactly the right size.
pub fn encode(v: &K) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(v));
    encode_into(v, &mut out);
    out
}

/// A whole uncompressed IPC message: header then body.
pub fn encode_message(v: &K, msg_type: MsgType) -> Vec<u8> {
    let len = HEADER_LEN + encoded_len(v);
    let mut out = Vec::with_capacity(len);
    super::message::push_header(&mut out, msg_type, false, len);
    encode_into(v, &mut out);
    out
}
