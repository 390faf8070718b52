//! Decoding kdb+ IPC bytes into values.
//!
//! Input is untrusted: every length is checked against the bytes that are
//! really there before anything is allocated, nesting is bounded, and every
//! failure is an error naming the offset.

use super::types::*;
use super::value::{Attr, Table, Vector, K};

/// Deeper nesting than this is refused: it would only come from a hostile or
/// corrupt message and would otherwise exhaust the stack.
pub const MAX_DEPTH: usize = 256;

/// Most items reserved up front for a general list or a symbol vector.
/// Their counts are checked against the bytes left, but one item in memory
/// (a `K`, a `String`) is many times its smallest wire size, so reserving
/// a hostile count outright could still ask for gigabytes; past this the
/// vector grows as items really arrive.
const MAX_RESERVE: usize = 1 << 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated: {need} more byte(s) needed at offset {at}")]
    Truncated { at: usize, need: usize },
    #[error("unknown or unsupported type {type_code} at offset {at}")]
    UnknownType { type_code: i8, at: usize },
    #[error("bad attribute byte {attr} at offset {at}")]
    BadAttr { attr: u8, at: usize },
    #[error("nesting deeper than {MAX_DEPTH} at offset {at}")]
    TooDeep { at: usize },
    #[error("bad message header: {0}")]
    BadHeader(String),
    #[error("malformed {what} at offset {at}")]
    Malformed { what: &'static str, at: usize },
    #[error("{0} trailing byte(s) after the value")]
    Trailing(usize),
    #[error("bad compressed message: {0}")]
    Compression(String),
    /// A compressed message claims more uncompressed bytes (header
    /// included) than the caller allows; refused before allocating.
    #[error("compressed message claims {claimed} uncompressed bytes, over the limit of {max}")]
    TooLarge { claimed: usize, max: usize },
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                at: self.pos,
                need: n.saturating_sub(self.b.len() - self.pos),
            }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn count(&mut self) -> Result<usize, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    fn sym(&mut self) -> Result<String, DecodeError> {
        let rest = &self.b[self.pos..];
        let end = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or(DecodeError::Truncated {
                at: self.b.len(),
                need: 1,
            })?;
        let s = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.pos += end + 1;
        Ok(s)
    }

    fn attr(&mut self) -> Result<Attr, DecodeError> {
        let at = self.pos;
        let a = self.u8()?;
        Attr::from_byte(a).ok_or(DecodeError::BadAttr { attr: a, at })
    }

    /// Checks `n` elements of `width` bytes are present before allocating.
    fn check_room(&self, n: usize, width: usize) -> Result<(), DecodeError> {
        let need = n.saturating_mul(width);
        if need > self.remaining() {
            return Err(DecodeError::Truncated {
                at: self.pos,
                need: need - self.remaining(),
            });
        }
        Ok(())
    }
}

macro_rules! read_le {
    ($r:expr, $n:expr, $t:ty) => {{
        const W: usize = std::mem::size_of::<$t>();
        $r.check_room($n, W)?;
        let bytes = $r.take($n * W)?;
        bytes
            .chunks_exact(W)
            .map(|c| {
                let mut a = [0u8; W];
                a.copy_from_slice(c);
                <$t>::from_le_bytes(a)
            })
            .collect::<Vec<$t>>()
    }};
}

/// Decodes a body (no header) that must hold exactly one value.
pub fn decode(b: &[u8]) -> Result<K, DecodeError> {
    let (v, used) = decode_prefix(b)?;
    if used != b.len() {
        return Err(DecodeError::Trailing(b.len() - used));
    }
    Ok(v)
}

/// Decodes one value from the start of `b`; returns it and the bytes it used.
/// Journals are sequences of such values.
pub fn decode_prefix(b: &[u8]) -> Result<(K, usize), DecodeError> {
    let mut r = Reader { b, pos: 0 };
    let v = value(&mut r, 0)?;
    Ok((v, r.pos))
}

fn value(r: &mut Reader, depth: usize) -> Result<K, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(DecodeError::TooDeep { at: r.pos });
    }
    let at = r.pos;
    let t = r.u8()? as i8;
    Ok(match t {
        -1 => K::Bool(r.u8()? != 0),
        -2 => K::Guid(r.array()?),
        -4 => K::Byte(r.u8()?),
        -5 => K::Short(i16::from_le_bytes(r.array()?)),
        -6 => K::Int(i32::from_le_bytes(r.array()?)),
        -7 => K::Long(i64::from_le_bytes(r.array()?)),
        -8 => K::Real(f32::from_le_bytes(r.array()?)),
        -9 => K::Float(f64::from_le_bytes(r.array()?)),
        -10 => K::Char(r.u8()?),
        -11 => K::Symbol(r.sym()?),
        -12 => K::Timestamp(i64::from_le_bytes(r.array()?)),
        -13 => K::Month(i32::from_le_bytes(r.array()?)),
        -14 => K::Date(i32::from_le_bytes(r.array()?)),
        -15 => K::Datetime(f64::from_le_bytes(r.array()?)),
        -16 => K::Timespan(i64::from_le_bytes(r.array()?)),
        -17 => K::Minute(i32::from_le_bytes(r.array()?)),
        -18 => K::Second(i32::from_le_bytes(r.array()?)),
        -19 => K::Time(i32::from_le_bytes(r.array()?)),
        ERROR => K::Error(r.sym()?),
        MIXED => {
            let attr = r.attr()?;
            let n = r.count()?;
            // Every item takes at least two bytes.
            r.check_room(n, 2)?;
            let mut items = Vec::with_capacity(n.min(MAX_RESERVE));
            for _ in 0..n {
                items.push(value(r, depth + 1)?);
            }
            K::List(attr, items)
        }
        1..=19 if t != 3 => {
            let attr = r.attr()?;
            let n = r.count()?;
            K::Vector(attr, vector(r, t, n)?)
        }
        TABLE => {
            let attr = r.attr()?;
            let dict_at = r.pos;
            if r.u8()? as i8 != DICT {
                return Err(DecodeError::Malformed {
                    what: "table (flip of a non-dictionary)",
                    at: dict_at,
                });
            }
            let keys = value(r, depth + 1)?;
            let values = value(r, depth + 1)?;
            match (keys, values) {
                (K::Vector(_, Vector::Symbol(names)), K::List(_, columns))
                    if names.len() == columns.len() =>
                {
                    K::Table(Table {
                        attr,
                        names,
                        columns,
                    })
                }
                _ => {
                    return Err(DecodeError::Malformed {
                        what: "table (names and columns do not match)",
                        at: dict_at,
                    })
                }
            }
        }
        DICT | SORTED_DICT => {
            let keys = value(r, depth + 1)?;
            let values = value(r, depth + 1)?;
            K::Dict {
                keys: Box::new(keys),
                values: Box::new(values),
                sorted: t == SORTED_DICT,
            }
        }
        UNARY_PRIMITIVE => {
            let b = r.u8()?;
            if b == 0 {
                K::Identity
            } else {
                K::Function {
                    type_code: t,
                    body: vec![b],
                }
            }
        }
        100 | 102..=111 => {
            let start = r.pos;
            skip_function(r, t, depth)?;
            K::Function {
                type_code: t,
                body: r.b[start..r.pos].to_vec(),
            }
        }
        _ => return Err(DecodeError::UnknownType { type_code: t, at }),
    })
}

fn vector(r: &mut Reader, t: i8, n: usize) -> Result<Vector, DecodeError> {
    Ok(match t {
        BOOL => {
            r.check_room(n, 1)?;
            Vector::Bool(r.take(n)?.iter().map(|&b| b != 0).collect())
        }
        GUID => {
            r.check_room(n, 16)?;
            Vector::Guid(
                r.take(n * 16)?
                    .chunks_exact(16)
                    .map(|c| {
                        let mut g = [0u8; 16];
                        g.copy_from_slice(c);
                        g
                    })
                    .collect(),
            )
        }
        BYTE => {
            r.check_room(n, 1)?;
            Vector::Byte(r.take(n)?.to_vec())
        }
        CHAR => {
            r.check_room(n, 1)?;
            Vector::Char(r.take(n)?.to_vec())
        }
        SHORT => Vector::Short(read_le!(r, n, i16)),
        INT => Vector::Int(read_le!(r, n, i32)),
        LONG => Vector::Long(read_le!(r, n, i64)),
        REAL => Vector::Real(read_le!(r, n, f32)),
        FLOAT => Vector::Float(read_le!(r, n, f64)),
        TIMESTAMP => Vector::Timestamp(read_le!(r, n, i64)),
        MONTH => Vector::Month(read_le!(r, n, i32)),
        DATE => Vector::Date(read_le!(r, n, i32)),
        DATETIME => Vector::Datetime(read_le!(r, n, f64)),
        TIMESPAN => Vector::Timespan(read_le!(r, n, i64)),
        MINUTE => Vector::Minute(read_le!(r, n, i32)),
        SECOND => Vector::Second(read_le!(r, n, i32)),
        TIME => Vector::Time(read_le!(r, n, i32)),
        SYMBOL => {
            // Each symbol takes at least its terminator.
            r.check_room(n, 1)?;
            let mut syms = Vec::with_capacity(n.min(MAX_RESERVE));
            for _ in 0..n {
                syms.push(r.sym()?);
            }
            Vector::Symbol(syms)
        }
        _ => {
            return Err(DecodeError::UnknownType {
                type_code: t,
                at: r.pos,
            })
        }
    })
}

/// Walks over a function's serialization to find where it ends.
fn skip_function(r: &mut Reader, t: i8, depth: usize) -> Result<(), DecodeError> {
    match t {
        LAMBDA => {
            r.sym()?; // context
            value(r, depth + 1)?; // source text
        }
        102 | 103 => {
            r.u8()?;
        }
        PROJECTION | COMPOSITION => {
            let n = r.count()?;
            r.check_room(n, 2)?;
            for _ in 0..n {
                value(r, depth + 1)?;
            }
        }
        _ => {
            value(r, depth + 1)?;
        }
    }
    Ok(())
}
