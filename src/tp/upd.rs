//! Checking one `.u.upd[t;x]` against its table's schema and stamping it.
//!
//! tick.q prepends the time of day when the first item of `x` is not a
//! timespan, then publishes and journals. Real-time tick.q checks nothing
//! else; the stand-in also rejects the wrong column types and lengths the
//! RDB's `insert` would refuse, so a bridge bug shows up where it happens.

use crate::kdb::types::{MIXED, SYMBOL, TIMESPAN};
use crate::kdb::{Vector, K};
use crate::schema::Schema;

/// A table as the stand-in needs it: column names and vector types.
#[derive(Clone, Debug)]
pub struct TableSchema {
    pub name: String,
    pub names: Vec<String>,
    /// Vector type code per column; `MIXED` (0) is a list of strings.
    pub types: Vec<i8>,
    /// The first column is a timespan named `time`, stamped when an update
    /// leaves it out.
    pub stamps_time: bool,
    /// The `sym` column that subscriptions filter on.
    pub sym_col: Option<usize>,
}

impl TableSchema {
    pub fn from_schema(s: &Schema) -> TableSchema {
        let names: Vec<String> = s.columns.iter().map(|c| c.name.clone()).collect();
        let types: Vec<i8> = s.columns.iter().map(|c| c.qtype.type_code()).collect();
        let stamps_time = names.first().is_some_and(|n| n == "time")
            && types.first().is_some_and(|&t| t == TIMESPAN);
        let sym_col = names
            .iter()
            .zip(&types)
            .position(|(n, &t)| n == "sym" && t == SYMBOL);
        TableSchema {
            name: s.table.clone(),
            names,
            types,
            stamps_time,
            sym_col,
        }
    }

    /// The table with no rows, `` `g# `` on `sym` as tick.q's `.u.sub`
    /// answer has it (its schema file declares it so).
    pub fn empty_columns(&self) -> Vec<K> {
        self.types
            .iter()
            .enumerate()
            .map(|(i, &t)| match Vector::empty(t) {
                Some(v) if Some(i) == self.sym_col => K::Vector(crate::kdb::Attr::Grouped, v),
                Some(v) => K::vector(v),
                None => K::list(Vec::new()),
            })
            .collect()
    }
}

/// An accepted update: every column of the table, in schema order, as a
/// vector (or a list of strings), with the time column stamped.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// `x` was one row of atoms: the journal keeps that shape, as tick.q does.
    pub row_mode: bool,
    pub columns: Vec<K>,
    pub rows: usize,
}

/// Why an update was refused, as q names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdError {
    Type,
    Length,
}

impl UpdError {
    pub fn q_name(self) -> &'static str {
        match self {
            UpdError::Type => "type",
            UpdError::Length => "length",
        }
    }
}

/// Checks `x` against `schema`; `now` is the time of day in nanoseconds
/// used when the update leaves the time column out.
pub fn prepare(schema: &TableSchema, x: K, now: i64) -> Result<Update, UpdError> {
    let mut items = match x {
        K::List(_, items) => items,
        // One row whose atoms all have one type arrives as a simple vector.
        K::Vector(_, v) => (0..v.len()).filter_map(|i| v.get(i)).collect(),
        _ => return Err(UpdError::Type),
    };
    let first = items.first().ok_or(UpdError::Length)?;
    let row_mode = first.is_atom();
    let first_is_timespan =
        matches!(first, K::Timespan(_)) || matches!(first, K::Vector(_, Vector::Timespan(_)));
    if schema.stamps_time && !first_is_timespan {
        let stamp = if row_mode {
            K::Timespan(now)
        } else {
            K::vector(Vector::Timespan(vec![now; first.count()]))
        };
        items.insert(0, stamp);
    }
    if items.len() != schema.types.len() {
        return Err(UpdError::Length);
    }
    if row_mode {
        let columns = items
            .into_iter()
            .zip(&schema.types)
            .map(|(item, &t)| row_item_to_column(item, t))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Update {
            row_mode,
            columns,
            rows: 1,
        });
    }
    let mut rows = None;
    let columns = items
        .into_iter()
        .zip(&schema.types)
        .map(|(item, &t)| {
            let col = column_item(item, t)?;
            let n = col.count();
            if *rows.get_or_insert(n) != n {
                return Err(UpdError::Length);
            }
            Ok(col)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Update {
        row_mode,
        columns,
        rows: rows.unwrap_or(0),
    })
}

fn is_string(k: &K) -> bool {
    matches!(k, K::Vector(_, Vector::Char(_)))
}

fn row_item_to_column(item: K, t: i8) -> Result<K, UpdError> {
    if t == MIXED {
        return if is_string(&item) {
            Ok(K::list(vec![item]))
        } else {
            Err(UpdError::Type)
        };
    }
    if item.type_code() != -t {
        return Err(UpdError::Type);
    }
    atom_to_vector(item).map(K::vector).ok_or(UpdError::Type)
}

fn column_item(item: K, t: i8) -> Result<K, UpdError> {
    match item {
        K::Vector(_, v) if v.type_code() == t => Ok(K::vector(v)),
        K::List(_, items) if t == MIXED && items.iter().all(is_string) => Ok(K::list(items)),
        _ => Err(UpdError::Type),
    }
}

fn atom_to_vector(k: K) -> Option<Vector> {
    Some(match k {
        K::Bool(x) => Vector::Bool(vec![x]),
        K::Guid(x) => Vector::Guid(vec![x]),
        K::Byte(x) => Vector::Byte(vec![x]),
        K::Short(x) => Vector::Short(vec![x]),
        K::Int(x) => Vector::Int(vec![x]),
        K::Long(x) => Vector::Long(vec![x]),
        K::Real(x) => Vector::Real(vec![x]),
        K::Float(x) => Vector::Float(vec![x]),
        K::Char(x) => Vector::Char(vec![x]),
        K::Symbol(x) => Vector::Symbol(vec![x]),
        K::Timestamp(x) => Vector::Timestamp(vec![x]),
        K::Month(x) => Vector::Month(vec![x]),
        K::Date(x) => Vector::Date(vec![x]),
        K::Datetime(x) => Vector::Datetime(vec![x]),
        K::Timespan(x) => Vector::Timespan(vec![x]),
        K::Minute(x) => Vector::Minute(vec![x]),
        K::Second(x) => Vector::Second(vec![x]),
        K::Time(x) => Vector::Time(vec![x]),
        _ => return None,
    })
}

/// Appends `src` to `dst` (same shape), moving the values.
pub fn append_column(dst: &mut K, src: K) -> bool {
    macro_rules! move_all {
        ($a:expr, $b:expr, $($v:ident),*) => {
            match ($a, $b) {
                $((Vector::$v(a), Vector::$v(mut b)) => a.append(&mut b),)*
                _ => return false,
            }
        };
    }
    match (dst, src) {
        (K::Vector(_, a), K::Vector(_, b)) => {
            move_all!(
                a, b, Bool, Guid, Byte, Short, Int, Long, Real, Float, Char, Symbol, Timestamp,
                Month, Date, Datetime, Timespan, Minute, Second, Time
            );
            true
        }
        (K::List(_, a), K::List(_, mut b)) => {
            a.append(&mut b);
            true
        }
        _ => false,
    }
}

/// The rows of a column at `idx` (indices from the same column).
pub fn take_rows(col: &K, idx: &[usize]) -> K {
    macro_rules! pick {
        ($v:expr, $($var:ident),*) => {
            match $v {
                $(Vector::$var(x) => Vector::$var(idx.iter().filter_map(|&i| x.get(i).cloned()).collect()),)*
            }
        };
    }
    match col {
        K::Vector(attr, v) => K::Vector(
            *attr,
            pick!(
                v, Bool, Guid, Byte, Short, Int, Long, Real, Float, Char, Symbol, Timestamp, Month,
                Date, Datetime, Timespan, Minute, Second, Time
            ),
        ),
        K::List(attr, items) => K::List(
            *attr,
            idx.iter().filter_map(|&i| items.get(i).cloned()).collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ColumnSpec, QType};

    fn trade() -> TableSchema {
        let col = |name: &str, qtype| ColumnSpec {
            name: name.into(),
            qtype,
            ..ColumnSpec::default()
        };
        TableSchema::from_schema(&Schema {
            table: "trade".into(),
            columns: vec![
                col("time", QType::Timespan),
                col("sym", QType::Symbol),
                col("price", QType::Float),
                col("size", QType::Long),
                col("note", QType::String),
            ],
            ..Schema::default()
        })
    }

    #[test]
    fn columns_without_time_are_stamped() {
        let x = K::list(vec![
            K::vector(Vector::Symbol(vec!["A".into(), "B".into()])),
            K::vector(Vector::Float(vec![1.0, 2.0])),
            K::vector(Vector::Long(vec![1, 2])),
            K::list(vec![K::string("x"), K::string("")]),
        ]);
        let u = prepare(&trade(), x, 42).unwrap();
        assert!(!u.row_mode);
        assert_eq!(u.rows, 2);
        assert_eq!(u.columns[0], K::vector(Vector::Timespan(vec![42, 42])));
    }

    #[test]
    fn a_row_of_atoms_with_time_is_kept() {
        let x = K::list(vec![
            K::Timespan(7),
            K::sym("A"),
            K::Float(1.5),
            K::Long(3),
            K::string("hi"),
        ]);
        let u = prepare(&trade(), x, 42).unwrap();
        assert!(u.row_mode);
        assert_eq!(u.columns[0], K::vector(Vector::Timespan(vec![7])));
        assert_eq!(u.columns[4], K::list(vec![K::string("hi")]));
    }

    #[test]
    fn wrong_types_and_lengths_are_refused() {
        let t = trade();
        let wrong_type = K::list(vec![K::sym("A"), K::Long(1), K::Long(3), K::string("")]);
        assert_eq!(prepare(&t, wrong_type, 0), Err(UpdError::Type));
        let short = K::list(vec![K::sym("A"), K::Float(1.0)]);
        assert_eq!(prepare(&t, short, 0), Err(UpdError::Length));
        let ragged = K::list(vec![
            K::vector(Vector::Symbol(vec!["A".into()])),
            K::vector(Vector::Float(vec![1.0, 2.0])),
            K::vector(Vector::Long(vec![1])),
            K::list(vec![K::string("")]),
        ]);
        assert_eq!(prepare(&t, ragged, 0), Err(UpdError::Length));
        assert_eq!(prepare(&t, K::Long(1), 0), Err(UpdError::Type));
        assert_eq!(prepare(&t, K::list(vec![]), 0), Err(UpdError::Length));
    }

    #[test]
    fn append_and_take() {
        let mut a = K::vector(Vector::Long(vec![1, 2]));
        assert!(append_column(&mut a, K::vector(Vector::Long(vec![3]))));
        assert!(!append_column(&mut a, K::vector(Vector::Float(vec![3.0]))));
        assert_eq!(
            take_rows(&a, &[0, 2, 9]),
            K::vector(Vector::Long(vec![1, 3]))
        );
    }
}
