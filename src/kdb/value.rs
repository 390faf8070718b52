//! The kdb+ value model: everything a kdb+ peer can send us.
//!
//! Floats compare by bit pattern so that a decoded `0n` equals the `0n` that
//! was encoded (IEEE equality would make every null unequal to itself).

use super::types::*;

/// Vector and list attributes (`` `s#`u#`p#`g# ``), kept so re-encoding is exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Attr {
    #[default]
    None = 0,
    Sorted = 1,
    Unique = 2,
    Parted = 3,
    Grouped = 4,
}

impl Attr {
    pub fn from_byte(b: u8) -> Option<Attr> {
        Some(match b {
            0 => Attr::None,
            1 => Attr::Sorted,
            2 => Attr::Unique,
            3 => Attr::Parted,
            4 => Attr::Grouped,
            _ => return None,
        })
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Attr::None => "",
            Attr::Sorted => "`s#",
            Attr::Unique => "`u#",
            Attr::Parted => "`p#",
            Attr::Grouped => "`g#",
        }
    }
}

/// A simple (uniform) vector. Temporal types hold kdb+'s raw counts since
/// 2000.01.01 in the unit of the type.
#[derive(Clone, Debug)]
pub enum Vector {
    Bool(Vec<bool>),
    Guid(Vec<[u8; 16]>),
    Byte(Vec<u8>),
    Short(Vec<i16>),
    Int(Vec<i32>),
    Long(Vec<i64>),
    Real(Vec<f32>),
    Float(Vec<f64>),
    /// A q string: bytes, not necessarily UTF-8.
    Char(Vec<u8>),
    Symbol(Vec<String>),
    Timestamp(Vec<i64>),
    Month(Vec<i32>),
    Date(Vec<i32>),
    Datetime(Vec<f64>),
    Timespan(Vec<i64>),
    Minute(Vec<i32>),
    Second(Vec<i32>),
    Time(Vec<i32>),
}

macro_rules! for_each_vector {
    ($v:expr, $x:ident => $body:expr) => {
        match $v {
            Vector::Bool($x) => $body,
            Vector::Guid($x) => $body,
            Vector::Byte($x) => $body,
            Vector::Short($x) => $body,
            Vector::Int($x) => $body,
            Vector::Long($x) => $body,
            Vector::Real($x) => $body,
            Vector::Float($x) => $body,
            Vector::Char($x) => $body,
            Vector::Symbol($x) => $body,
            Vector::Timestamp($x) => $body,
            Vector::Month($x) => $body,
            Vector::Date($x) => $body,
            Vector::Datetime($x) => $body,
            Vector::Timespan($x) => $body,
            Vector::Minute($x) => $body,
            Vector::Second($x) => $body,
            Vector::Time($x) => $body,
        }
    };
}

impl Vector {
    pub fn type_code(&self) -> i8 {
        match self {
            Vector::Bool(_) => BOOL,
            Vector::Guid(_) => GUID,
            Vector::Byte(_) => BYTE,
            Vector::Short(_) => SHORT,
            Vector::Int(_) => INT,
            Vector::Long(_) => LONG,
            Vector::Real(_) => REAL,
            Vector::Float(_) => FLOAT,
            Vector::Char(_) => CHAR,
            Vector::Symbol(_) => SYMBOL,
            Vector::Timestamp(_) => TIMESTAMP,
            Vector::Month(_) => MONTH,
            Vector::Date(_) => DATE,
            Vector::Datetime(_) => DATETIME,
            Vector::Timespan(_) => TIMESPAN,
            Vector::Minute(_) => MINUTE,
            Vector::Second(_) => SECOND,
            Vector::Time(_) => TIME,
        }
    }

    pub fn len(&self) -> usize {
        for_each_vector!(self, x => x.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty vector of the given simple type code (1..=19, not 3).
    pub fn empty(t: i8) -> Option<Vector> {
        Some(match t {
            BOOL => Vector::Bool(vec![]),
            GUID => Vector::Guid(vec![]),
            BYTE => Vector::Byte(vec![]),
            SHORT => Vector::Short(vec![]),
            INT => Vector::Int(vec![]),
            LONG => Vector::Long(vec![]),
            REAL => Vector::Real(vec![]),
            FLOAT => Vector::Float(vec![]),
            CHAR => Vector::Char(vec![]),
            SYMBOL => Vector::Symbol(vec![]),
            TIMESTAMP => Vector::Timestamp(vec![]),
            MONTH => Vector::Month(vec![]),
            DATE => Vector::Date(vec![]),
            DATETIME => Vector::Datetime(vec![]),
            TIMESPAN => Vector::Timespan(vec![]),
            MINUTE => Vector::Minute(vec![]),
            SECOND => Vector::Second(vec![]),
            TIME => Vector::Time(vec![]),
            _ => return None,
        })
    }

    /// Element `i` as an atom.
    pub fn get(&self, i: usize) -> Option<K> {
        Some(match self {
            Vector::Bool(v) => K::Bool(*v.get(i)?),
            Vector::Guid(v) => K::Guid(*v.get(i)?),
            Vector::Byte(v) => K::Byte(*v.get(i)?),
            Vector::Short(v) => K::Short(*v.get(i)?),
            Vector::Int(v) => K::Int(*v.get(i)?),
            Vector::Long(v) => K::Long(*v.get(i)?),
            Vector::Real(v) => K::Real(*v.get(i)?),
            Vector::Float(v) => K::Float(*v.get(i)?),
            Vector::Char(v) => K::Char(*v.get(i)?),
            Vector::Symbol(v) => K::Symbol(v.get(i)?.clone()),
            Vector::Timestamp(v) => K::Timestamp(*v.get(i)?),
            Vector::Month(v) => K::Month(*v.get(i)?),
            Vector::Date(v) => K::Date(*v.get(i)?),
            Vector::Datetime(v) => K::Datetime(*v.get(i)?),
            Vector::Timespan(v) => K::Timespan(*v.get(i)?),
            Vector::Minute(v) => K::Minute(*v.get(i)?),
            Vector::Second(v) => K::Second(*v.get(i)?),
            Vector::Time(v) => K::Time(*v.get(i)?),
        })
    }

    /// Appends `other` when both are of the same type; returns false otherwise.
    pub fn extend_from(&mut self, other: &Vector) -> bool {
        match (self, other) {
            (Vector::Bool(a), Vector::Bool(b)) => a.extend_from_slice(b),
            (Vector::Guid(a), Vector::Guid(b)) => a.extend_from_slice(b),
            (Vector::Byte(a), Vector::Byte(b)) => a.extend_from_slice(b),
            (Vector::Short(a), Vector::Short(b)) => a.extend_from_slice(b),
            (Vector::Int(a), Vector::Int(b)) => a.extend_from_slice(b),
            (Vector::Long(a), Vector::Long(b)) => a.extend_from_slice(b),
            (Vector::Real(a), Vector::Real(b)) => a.extend_from_slice(b),
            (Vector::Float(a), Vector::Float(b)) => a.extend_from_slice(b),
            (Vector::Char(a), Vector::Char(b)) => a.extend_from_slice(b),
            (Vector::Symbol(a), Vector::Symbol(b)) => a.extend_from_slice(b),
            (Vector::Timestamp(a), Vector::Timestamp(b)) => a.extend_from_slice(b),
            (Vector::Month(a), Vector::Month(b)) => a.extend_from_slice(b),
            (Vector::Date(a), Vector::Date(b)) => a.extend_from_slice(b),
            (Vector::Datetime(a), Vector::Datetime(b)) => a.extend_from_slice(b),
            (Vector::Timespan(a), Vector::Timespan(b)) => a.extend_from_slice(b),
            (Vector::Minute(a), Vector::Minute(b)) => a.extend_from_slice(b),
            (Vector::Second(a), Vector::Second(b)) => a.extend_from_slice(b),
            (Vector::Time(a), Vector::Time(b)) => a.extend_from_slice(b),
            _ => return false,
        }
        true
    }
}

fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn same_f32(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl PartialEq for Vector {
    fn eq(&self, other: &Vector) -> bool {
        match (self, other) {
            (Vector::Real(a), Vector::Real(b)) => same_f32(a, b),
            (Vector::Float(a), Vector::Float(b)) | (Vector::Datetime(a), Vector::Datetime(b)) => {
                same_f64(a, b)
            }
            (Vector::Bool(a), Vector::Bool(b)) => a == b,
            (Vector::Guid(a), Vector::Guid(b)) => a == b,
            (Vector::Byte(a), Vector::Byte(b)) | (Vector::Char(a), Vector::Char(b)) => a == b,
            (Vector::Short(a), Vector::Short(b)) => a == b,
            (Vector::Int(a), Vector::Int(b))
            | (Vector::Month(a), Vector::Month(b))
            | (Vector::Date(a), Vector::Date(b))
            | (Vector::Minute(a), Vector::Minute(b))
            | (Vector::Second(a), Vector::Second(b))
            | (Vector::Time(a), Vector::Time(b)) => a == b,
            (Vector::Long(a), Vector::Long(b))
            | (Vector::Timestamp(a), Vector::Timestamp(b))
            | (Vector::Timespan(a), Vector::Timespan(b)) => a == b,
            (Vector::Symbol(a), Vector::Symbol(b)) => a == b,
            _ => false,
        }
    }
}

/// A table: `flip` of a dictionary from column names to equal-length columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub attr: Attr,
    pub names: Vec<String>,
    pub columns: Vec<K>,
}

impl Table {
    pub fn new(names: Vec<String>, columns: Vec<K>) -> Table {
        Table {
            attr: Attr::None,
            names,
            columns,
        }
    }

    /// Rows, taken from the first column (0 for a table with no columns).
    pub fn row_count(&self) -> usize {
        self.columns.first().map_or(0, |c| c.count())
    }

    pub fn column(&self, name: &str) -> Option<&K> {
        self.names
            .iter()
            .position(|n| n == name)
            .and_then(|i| self.columns.get(i))
    }
}

/// Any kdb+ value.
#[derive(Clone, Debug)]
pub enum K {
    Bool(bool),
    Guid([u8; 16]),
    Byte(u8),
    Short(i16),
    Int(i32),
    Long(i64),
    Real(f32),
    Float(f64),
    Char(u8),
    Symbol(String),
    Timestamp(i64),
    Month(i32),
    Date(i32),
    Datetime(f64),
    Timespan(i64),
    Minute(i32),
    Second(i32),
    Time(i32),
    Vector(Attr, Vector),
    /// A general list (type 0).
    List(Attr, Vec<K>),
    /// A dictionary; `sorted` is the `` `s# `` dictionary (type 127).
    /// A keyed table is a dictionary from a table to a table.
    Dict {
        keys: Box<K>,
        values: Box<K>,
        sorted: bool,
    },
    Table(Table),
    /// The generic null `(::)`.
    Identity,
    /// An error object (type -128), e.g. `'type`.
    Error(String),
    /// Functions and other types 100..=111, carried as opaque bytes (`body`
    /// excludes the type byte) so they can be forwarded unchanged.
    Function {
        type_code: i8,
        body: Vec<u8>,
    },
}

impl PartialEq for K {
    fn eq(&self, other: &K) -> bool {
        use K::*;
        match (self, other) {
            (Real(a), Real(b)) => a.to_bits() == b.to_bits(),
            (Float(a), Float(b)) | (Datetime(a), Datetime(b)) => a.to_bits() == b.to_bits(),
            (Bool(a), Bool(b)) => a == b,
            (Guid(a), Guid(b)) => a == b,
            (Byte(a), Byte(b)) | (Char(a), Char(b)) => a == b,
            (Short(a), Short(b)) => a == b,
            (Int(a), Int(b))
            | (Month(a), Month(b))
            | (Date(a), Date(b))
            | (Minute(a), Minute(b))
            | (Second(a), Second(b))
            | (Time(a), Time(b)) => a == b,
            (Long(a), Long(b)) | (Timestamp(a), Timestamp(b)) | (Timespan(a), Timespan(b)) => {
                a == b
            }
            (Symbol(a), Symbol(b)) => a == b,
            (Vector(aa, a), Vector(ba, b)) => aa == ba && a == b,
            (List(aa, a), List(ba, b)) => aa == ba && a == b,
            (
                Dict {
                    keys: ak,
                    values: av,
                    sorted: asorted,
                },
                Dict {
                    keys: bk,
                    values: bv,
                    sorted: bsorted,
                },
            ) => asorted == bsorted && ak == bk && av == bv,
            (Table(a), Table(b)) => a == b,
            (Identity, Identity) => true,
            (Error(a), Error(b)) => a == b,
            (
                Function {
                    type_code: at,
                    body: ab,
                },
                Function {
                    type_code: bt,
                    body: bb,
                },
            ) => at == bt && ab == bb,
            _ => false,
        }
    }
}

impl K {
    /// kdb+'s type number: negative for atoms, as `type x` returns it.
    pub fn type_code(&self) -> i8 {
        match self {
            K::Bool(_) => -BOOL,
            K::Guid(_) => -GUID,
            K::Byte(_) => -BYTE,
            K::Short(_) => -SHORT,
            K::Int(_) => -INT,
            K::Long(_) => -LONG,
            K::Real(_) => -REAL,
            K::Float(_) => -FLOAT,
            K::Char(_) => -CHAR,
            K::Symbol(_) => -SYMBOL,
            K::Timestamp(_) => -TIMESTAMP,
            K::Month(_) => -MONTH,
            K::Date(_) => -DATE,
            K::Datetime(_) => -DATETIME,
            K::Timespan(_) => -TIMESPAN,
            K::Minute(_) => -MINUTE,
            K::Second(_) => -SECOND,
            K::Time(_) => -TIME,
            K::Vector(_, v) => v.type_code(),
            K::List(..) => MIXED,
            K::Dict { sorted: false, .. } => DICT,
            K::Dict { sorted: true, .. } => SORTED_DICT,
            K::Table(_) => TABLE,
            K::Identity => UNARY_PRIMITIVE,
            K::Error(_) => ERROR,
            K::Function { type_code, .. } => *type_code,
        }
    }

    /// `count x`: atoms count 1, dictionaries count their keys, tables their rows.
    pub fn count(&self) -> usize {
        match self {
            K::Vector(_, v) => v.len(),
            K::List(_, l) => l.len(),
            K::Dict { keys, .. } => keys.count(),
            K::Table(t) => t.row_count(),
            _ => 1,
        }
    }

    pub fn is_atom(&self) -> bool {
        self.type_code() < 0 && !matches!(self, K::Error(_))
    }

    pub fn sym(s: impl Into<String>) -> K {
        K::Symbol(s.into())
    }

    pub fn string(s: impl AsRef<[u8]>) -> K {
        K::Vector(Attr::None, Vector::Char(s.as_ref().to_vec()))
    }

    pub fn vector(v: Vector) -> K {
        K::Vector(Attr::None, v)
    }

    pub fn list(items: Vec<K>) -> K {
        K::List(Attr::None, items)
    }

    pub fn dict(keys: K, values: K) -> K {
        K::Dict {
            keys: Box::new(keys),
            values: Box::new(values),
            sorted: false,
        }
    }

    /// The text of a char vector or symbol, for reading names out of messages.
    pub fn as_text(&self) -> Option<String> {
        match self {
            K::Symbol(s) => Some(s.clone()),
            K::Vector(_, Vector::Char(c)) => Some(String::from_utf8_lossy(c).into_owned()),
            K::Char(c) => Some((*c as char).to_string()),
            _ => None,
        }
    }
}
