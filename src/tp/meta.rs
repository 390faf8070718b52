//! The stand-in's answers to the queries a client asks before publishing
//! (`tickbridge schema diff`, the bridge's preflight), shaped as kdb+
//! answers them:
//!
//! - `meta `t` is a keyed table `c | t f a`: column names (symbols), the
//!   type letter (a char vector: `.Q.t`, a space for a general list, an
//!   upper-case letter for a list of vectors taken from its first item), the
//!   foreign key (none here: `` ` ``) and the attribute (`` `g `` on sym).
//!   `0!meta `t` is the same as a plain table.
//! - `type name` is a short: 100h for a lambda (`.u.upd`, `.u.sub`), -7h for
//!   `.u.i`, 98h for a table.
//! - an unknown name is q's error naming it (`'nope`), as `value` raises.

use crate::kdb::types::{LAMBDA, LONG, MIXED, TABLE};
use crate::kdb::{Table, Vector, K};
use crate::schema::model::type_char;

use super::state::State;

/// The functions the stand-in defines: the ones its clients call.
const LAMBDAS: &[&str] = &[".u.upd", ".u.sub"];

/// `meta `table` (keyed) or `0!meta `table` (unkeyed).
pub fn meta(state: &State, table: &str, keyed: bool) -> K {
    let catalog = state.catalog();
    let Some((_, schema)) = catalog.find(table) else {
        return K::Error(table.to_string());
    };
    let rows = state.row_count(table).unwrap_or(0);
    let letters: Vec<u8> = schema
        .types
        .iter()
        .map(|&t| match t {
            // The stand-in's general lists hold strings only (its `.u.upd`
            // checks that): q takes the letter from the first item.
            MIXED if rows > 0 => b'C',
            t => type_char(t).map_or(b' ', |c| c as u8),
        })
        .collect();
    let attrs: Vec<String> = (0..schema.names.len())
        .map(|i| {
            if Some(i) == schema.sym_col {
                "g".to_string()
            } else {
                String::new()
            }
        })
        .collect();
    let names = K::vector(Vector::Symbol(schema.names.clone()));
    let t = K::vector(Vector::Char(letters));
    let f = K::vector(Vector::Symbol(vec![String::new(); schema.names.len()]));
    let a = K::vector(Vector::Symbol(attrs));
    if keyed {
        K::Dict {
            keys: Box::new(K::Table(Table::new(vec!["c".into()], vec![names]))),
            values: Box::new(K::Table(Table::new(
                vec!["t".into(), "f".into(), "a".into()],
                vec![t, f, a],
            ))),
            sorted: false,
        }
    } else {
        K::Table(Table::new(
            vec!["c".into(), "t".into(), "f".into(), "a".into()],
            vec![names, t, f, a],
        ))
    }
}

/// `type name`.
pub fn type_of(state: &State, name: &str) -> K {
    if LAMBDAS.contains(&name) {
        return K::Short(LAMBDA.into());
    }
    if name == ".u.i" {
        return K::Short(-i16::from(LONG));
    }
    if state.catalog().find(name).is_some() {
        return K::Short(TABLE.into());
    }
    K::Error(name.to_string())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::tp::state::{Catalog, Now};

    fn state() -> State {
        let schemas = crate::schema::embedded::schemas().expect("embedded");
        let catalog = Arc::new(Catalog::new(&schemas).expect("catalog"));
        State::open(catalog, None, Now::read()).expect("state").0
    }

    #[test]
    fn meta_is_the_keyed_table_q_returns() {
        let s = state();
        let K::Dict {
            keys,
            values,
            sorted,
        } = meta(&s, "trade", true)
        else {
            panic!("not a dictionary");
        };
        assert!(!sorted);
        let K::Table(k) = *keys else { panic!("keys") };
        let K::Table(v) = *values else {
            panic!("values")
        };
        assert_eq!(k.names, ["c"]);
        assert_eq!(
            k.columns,
            [K::vector(Vector::Symbol(
                ["time", "sym", "price", "size", "side"]
                    .map(String::from)
                    .to_vec()
            ))]
        );
        assert_eq!(v.names, ["t", "f", "a"]);
        assert_eq!(v.columns[0], K::string("nsfjc"));
        assert_eq!(
            v.columns[2],
            K::vector(Vector::Symbol(
                ["", "g", "", "", ""].map(String::from).to_vec()
            ))
        );
        let K::Table(plain) = meta(&s, "trade", false) else {
            panic!("0!meta is a table")
        };
        assert_eq!(plain.names, ["c", "t", "f", "a"]);
        assert_eq!(meta(&s, "nope", true), K::Error("nope".into()));
    }

    #[test]
    fn an_empty_string_column_is_a_general_list() {
        let s = state();
        let K::Table(t) = meta(&s, "alltypes", false) else {
            panic!("table")
        };
        let K::Vector(_, Vector::Char(letters)) = &t.columns[1] else {
            panic!("letters")
        };
        // `str` is a list of strings declared `()`: a space until it has rows.
        assert_eq!(letters.as_slice(), b"nsgbxhijefcs ppmdznuvt");
    }

    #[test]
    fn type_answers_like_q() {
        let s = state();
        assert_eq!(type_of(&s, ".u.upd"), K::Short(100));
        assert_eq!(type_of(&s, ".u.i"), K::Short(-7));
        assert_eq!(type_of(&s, "quote"), K::Short(98));
        assert_eq!(type_of(&s, ".u.nope"), K::Error(".u.nope".into()));
    }
}
