//! The fast path for what the bridge sends most: `(`.u.upd; `t; (c1; c2; …))`.
//!
//! Column builders hold flat typed vectors (symbols as ids into a per-batch
//! interner); the message is sized exactly, then written into one buffer with
//! no intermediate tree of boxed values.

use rustc_hash::FxHashMap;

use super::encode::{push_sym, sym_len, write_vector_body};
use super::message::{push_header, MsgType, HEADER_LEN};
use super::types::*;
use super::value::{Vector, K};

/// Symbols seen in one batch, each stored once; columns hold ids.
#[derive(Default, Debug, Clone)]
pub struct SymbolTable {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl SymbolTable {
    pub fn new() -> SymbolTable {
        SymbolTable::default()
    }

    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.names.len() as u32;
        let owned: Box<str> = s.into();
        self.names.push(owned.clone());
        self.ids.insert(owned, id);
        id
    }

    /// The symbol for `id`; an id from another table reads as the null symbol.
    pub fn get(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |s| s)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn clear(&mut self) {
        self.ids.clear();
        self.names.clear();
    }
}

/// One column of an update, as the schema decoder builds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Any simple vector type. Symbol columns should use `Symbols`.
    Simple(Vector),
    /// Ids into the batch's `SymbolTable`.
    Symbols(Vec<u32>),
    /// A list of q strings (char vectors), stored end to end; `ends[i]` is
    /// where string `i` ends in `bytes`.
    Strings { ends: Vec<u32>, bytes: Vec<u8> },
}

impl Column {
    /// An empty builder for a column of q type `t` (`CHAR` with `strings`
    /// set means a list of strings, q's `()` of char vectors).
    pub fn for_type(t: i8, strings: bool) -> Option<Column> {
        if t == CHAR && strings {
            return Some(Column::Strings {
                ends: Vec::new(),
                bytes: Vec::new(),
            });
        }
        if t == SYMBOL {
            return Some(Column::Symbols(Vec::new()));
        }
        Vector::empty(t).map(Column::Simple)
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Simple(v) => v.len(),
            Column::Symbols(ids) => ids.len(),
            Column::Strings { ends, .. } => ends.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The q type of the column as `type` would report it (0 for strings).
    pub fn type_code(&self) -> i8 {
        match self {
            Column::Simple(v) => v.type_code(),
            Column::Symbols(_) => SYMBOL,
            Column::Strings { .. } => MIXED,
        }
    }

    pub fn push_string(&mut self, s: &[u8]) -> bool {
        match self {
            Column::Strings { ends, bytes } => {
                bytes.extend_from_slice(s);
                ends.push(bytes.len() as u32);
                true
            }
            _ => false,
        }
    }

    fn encoded_len(&self, syms: &SymbolTable) -> usize {
        match self {
            Column::Simple(Vector::Symbol(s)) => 6 + s.iter().map(|x| sym_len(x)).sum::<usize>(),
            Column::Simple(v) => 6 + v.len() * fixed_width(v.type_code()).unwrap_or(0),
            Column::Symbols(ids) => 6 + ids.iter().map(|&id| sym_len(syms.get(id))).sum::<usize>(),
            // Counted as `write` slices, not as `bytes.len()`: the fields are
            // public, and ends that are out of order or short of the bytes
            // must still give a true length.
            Column::Strings { ends, bytes } => {
                6 + string_slices(ends, bytes)
                    .map(|s| 6 + s.len())
                    .sum::<usize>()
            }
        }
    }

    fn write(&self, syms: &SymbolTable, out: &mut Vec<u8>) {
        match self {
            Column::Simple(v) => {
                out.extend_from_slice(&[v.type_code() as u8, 0]);
                out.extend_from_slice(&(v.len() as u32).to_le_bytes());
                write_vector_body(v, out);
            }
            Column::Symbols(ids) => {
                out.extend_from_slice(&[SYMBOL as u8, 0]);
                out.extend_from_slice(&(ids.len() as u32).to_le_bytes());
                for &id in ids {
                    push_sym(out, syms.get(id));
                }
            }
            Column::Strings { ends, bytes } => {
                out.extend_from_slice(&[MIXED as u8, 0]);
                out.extend_from_slice(&(ends.len() as u32).to_le_bytes());
                for s in string_slices(ends, bytes) {
                    out.extend_from_slice(&[CHAR as u8, 0]);
                    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                    out.extend_from_slice(s);
                }
            }
        }
    }

    /// The same column as a general value (for tests, rendering and the
    /// stand-in's tables).
    pub fn to_k(&self, syms: &SymbolTable) -> K {
        match self {
            Column::Simple(v) => K::vector(v.clone()),
            Column::Symbols(ids) => K::vector(Vector::Symbol(
                ids.iter().map(|&id| syms.get(id).to_string()).collect(),
            )),
            Column::Strings { ends, bytes } => {
                K::list(string_slices(ends, bytes).map(K::string).collect())
            }
        }
    }
}

/// The strings of a `Column::Strings`, one per end; an end that is out of
/// order or past the bytes reads as an empty string (never a panic).
fn string_slices<'a>(ends: &'a [u32], bytes: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut start = 0usize;
    ends.iter().map(move |&end| {
        let s = bytes.get(start..end as usize).unwrap_or(&[]);
        start = end as usize;
        s
    })
}

/// Exact size of the whole `.u.upd` message, header included. `func` and
/// `table` are symbols: a NUL cuts them, as the general encoder does.
pub fn upd_len(func: &str, table: &str, columns: &[Column], syms: &SymbolTable) -> usize {
    HEADER_LEN
        + 6
        + (1 + sym_len(func))
        + (1 + sym_len(table))
        + 6
        + columns.iter().map(|c| c.encoded_len(syms)).sum::<usize>()
}

/// Appends the whole message `(func; table; columns)` to `out`. `func` is
/// sent as a symbol, as tick feeds do (`` `.u.upd ``).
pub fn encode_upd(
    func: &str,
    table: &str,
    columns: &[Column],
    syms: &SymbolTable,
    msg_type: MsgType,
    out: &mut Vec<u8>,
) {
    let len = upd_len(func, table, columns, syms);
    out.reserve(len);
    push_header(out, msg_type, false, len);
    out.extend_from_slice(&[MIXED as u8, 0, 3, 0, 0, 0]);
    out.push((-SYMBOL) as u8);
    push_sym(out, func);
    out.push((-SYMBOL) as u8);
    push_sym(out, table);
    out.extend_from_slice(&[MIXED as u8, 0]);
    out.extend_from_slice(&(columns.len() as u32).to_le_bytes());
    for c in columns {
        c.write(syms, out);
    }
}

/// The same update as a general value, for comparing with the fast path.
pub fn upd_to_k(func: &str, table: &str, columns: &[Column], syms: &SymbolTable) -> K {
    K::list(vec![
        K::sym(func),
        K::sym(table),
        K::list(columns.iter().map(|c| c.to_k(syms)).collect()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdb::encode::encode_message;

    #[test]
    fn fast_path_matches_general_encoder() {
        let mut syms = SymbolTable::new();
        let ids = vec![
            syms.intern("AAPL"),
            syms.intern("MSFT"),
            syms.intern("AAPL"),
        ];
        let mut strings = Column::for_type(CHAR, true).expect("strings");
        for s in [&b"buy"[..], b"", b"sell"] {
            strings.push_string(s);
        }
        let cols = vec![
            Column::Simple(Vector::Timespan(vec![1, 2, 3])),
            Column::Symbols(ids),
            Column::Simple(Vector::Float(vec![1.5, null_float(), 3.0])),
            Column::Simple(Vector::Long(vec![100, NULL_LONG, 300])),
            Column::Simple(Vector::Char(b"BSB".to_vec())),
            strings,
            Column::Simple(Vector::Guid(vec![[7; 16]; 3])),
        ];
        let mut fast = Vec::new();
        encode_upd(".u.upd", "trade", &cols, &syms, MsgType::Async, &mut fast);
        let general = encode_message(&upd_to_k(".u.upd", "trade", &cols, &syms), MsgType::Async);
        assert_eq!(fast, general);
        assert_eq!(fast.len(), upd_len(".u.upd", "trade", &cols, &syms));
        assert_eq!(syms.len(), 2);
    }
}
