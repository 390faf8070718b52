//! Preflight: does the tickerplant hold the tables the schemas describe?
//!
//! [`fetch`] asks the tickerplant what plain q answers (`tables[]`,
//! `meta `t` for each schema table present, `type <update function>`);
//! [`compare`] (pure) holds the answer against the schemas and lists every
//! difference as a [`Finding`] naming table, column and both types.
//! A drifted schema then fails loudly at deploy, not record by record: kdb+
//! updates are positional lists of columns, so a column missing, extra or
//! out of order puts values in the wrong columns or fails every update.
//!
//! Type letters are q's (`meta`'s `t` column, `.Q.t`). One rule is looser
//! than equality: a schema `string` column (a list of char vectors, `C`)
//! also matches a tickerplant column whose letter is a space. tick.q schema
//! files declare string columns as `()`, an empty general list, which
//! `meta` shows as `" "` until it has rows, and a real-time tick.q never
//! inserts, so that is what a healthy tickerplant shows; q gives such a
//! column the shape of its first insert, a list of strings for our updates.
//! A space against any other schema type is a mismatch: the column was left
//! untyped, so nothing downstream would check what goes in.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

use crate::kdb::client::{ClientError, Connection, Publisher};
use crate::kdb::types::LAMBDA;
use crate::kdb::{Table, Vector, K};
use crate::schema::{QType, Schema};

/// A connection preflight can ask questions on: [`Connection`] (the CLI)
/// or [`Publisher`] (the bridge at init).
pub trait TpQuery {
    fn query_str(&mut self, expr: &str) -> impl Future<Output = Result<K, ClientError>> + Send;
}

impl TpQuery for Connection {
    fn query_str(&mut self, expr: &str) -> impl Future<Output = Result<K, ClientError>> + Send {
        Connection::query_str(self, expr)
    }
}

impl TpQuery for Publisher {
    fn query_str(&mut self, expr: &str) -> impl Future<Output = Result<K, ClientError>> + Send {
        Publisher::query_str(self, expr)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The query could not be asked or answered (connection, timeout, or a
    /// q error where none was expected).
    #[error("preflight query {query:?} to the tickerplant failed: {source}")]
    Query {
        query: String,
        #[source]
        source: ClientError,
    },
    /// The answer is not the shape plain q gives.
    #[error("preflight query {query:?}: unexpected answer: {reason}")]
    Reply { query: String, reason: String },
    /// A table or function name that is not a q name: it is never sent,
    /// since the query is q text evaluated by the tickerplant.
    #[error("preflight: {0:?} is not a q name")]
    BadName(String),
}

/// One tickerplant column as `meta` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpColumn {
    pub name: String,
    /// `meta`'s type letter (`' '` for a general list).
    pub type_char: char,
    /// The attribute (`"g"`, …; empty for none).
    pub attr: String,
}

/// What `type <update function>` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpdFunc {
    /// 100h..111h: a lambda, primitive, projection, composition or derived
    /// function: callable as `f[t;x]`.
    Function { type_code: i16 },
    /// Defined, but not something q can call with two arguments.
    NotFunction { type_code: i16 },
    /// q's error for the name (`'.u.upd` when undefined).
    Undefined { error: String },
}

/// What the tickerplant holds, as far as preflight asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TpShape {
    /// `tables[]`.
    pub tables: Vec<String>,
    /// `meta` of each asked table that `tables[]` listed, in column order.
    pub columns: BTreeMap<String, Vec<TpColumn>>,
    pub upd: UpdFunc,
}

/// Asks the tickerplant for `tables[]`, then `meta `t` for each of `tables`
/// it lists, then `type <upd_func>`. A table it does not list is left out
/// of [`TpShape::columns`] (and [`compare`] reports it missing).
pub async fn fetch<Q: TpQuery>(
    tp: &mut Q,
    tables: &[&str],
    upd_func: &str,
) -> Result<TpShape, PreflightError> {
    for t in tables {
        if !is_q_name(t) || t.contains('.') {
            return Err(PreflightError::BadName(t.to_string()));
        }
    }
    if !is_q_name(upd_func) {
        return Err(PreflightError::BadName(upd_func.to_string()));
    }
    let q = "tables[]";
    let listed = symbols(&ask(tp, q).await?).ok_or_else(|| reply_err(q, "not a symbol list"))?;
    let mut columns = BTreeMap::new();
    for t in tables.iter().filter(|t| listed.iter().any(|l| l == *t)) {
        let q = format!("meta `{t}");
        let answer = ask(tp, &q).await?;
        columns.insert(
            t.to_string(),
            meta_columns(&answer).map_err(|r| reply_err(&q, &r))?,
        );
    }
    let q = format!("type {upd_func}");
    let upd = match tp.query_str(&q).await {
        Ok(K::Short(code)) if (i16::from(LAMBDA)..=111).contains(&code) => {
            UpdFunc::Function { type_code: code }
        }
        Ok(K::Short(code)) => UpdFunc::NotFunction { type_code: code },
        Ok(other) => {
            return Err(reply_err(
                &q,
                &format!("not a short (type {}h)", other.type_code()),
            ))
        }
        Err(ClientError::Remote(error)) => UpdFunc::Undefined { error },
        Err(source) => return Err(PreflightError::Query { query: q, source }),
    };
    Ok(TpShape {
        tables: listed,
        columns,
        upd,
    })
}

async fn ask<Q: TpQuery>(tp: &mut Q, query: &str) -> Result<K, PreflightError> {
    tp.query_str(query)
        .await
        .map_err(|source| PreflightError::Query {
            query: query.to_string(),
            source,
        })
}

fn reply_err(query: &str, reason: &str) -> PreflightError {
    PreflightError::Reply {
        query: query.to_string(),
        reason: reason.to_string(),
    }
}

/// A q name, optionally dotted (`.u.upd`).
fn is_q_name(s: &str) -> bool {
    let body = s.strip_prefix('.').unwrap_or(s);
    !body.is_empty()
        && body.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A symbol vector (q gives `` `symbol$() `` for none; `()` is taken too).
fn symbols(k: &K) -> Option<Vec<String>> {
    match k {
        K::Vector(_, Vector::Symbol(s)) => Some(s.clone()),
        K::List(_, l) if l.is_empty() => Some(Vec::new()),
        _ => None,
    }
}

/// The columns of a `meta` answer: the keyed table `c | t f a` q returns,
/// or the same unkeyed (`0!meta`).
pub fn meta_columns(answer: &K) -> Result<Vec<TpColumn>, String> {
    let merged;
    let table: &Table = match answer {
        K::Table(t) => t,
        K::Dict { keys, values, .. } => match (keys.as_ref(), values.as_ref()) {
            (K::Table(k), K::Table(v)) => {
                merged = Table::new(
                    k.names.iter().chain(&v.names).cloned().collect(),
                    k.columns.iter().chain(&v.columns).cloned().collect(),
                );
                &merged
            }
            _ => return Err("a dictionary that is not a keyed table".into()),
        },
        other => return Err(format!("not a table (type {}h)", other.type_code())),
    };
    let names = table
        .column("c")
        .and_then(symbols)
        .ok_or("no symbol column c")?;
    let letters: Vec<char> = match table.column("t") {
        Some(K::Vector(_, Vector::Char(t))) => t.iter().map(|&b| b as char).collect(),
        _ => return Err("no char column t".into()),
    };
    let attrs = match table.column("a") {
        Some(a) => symbols(a).ok_or("column a is not symbols")?,
        None => vec![String::new(); names.len()],
    };
    if letters.len() != names.len() || attrs.len() != names.len() {
        return Err("columns c, t and a differ in length".into());
    }
    Ok(names
        .into_iter()
        .zip(letters)
        .zip(attrs)
        .map(|((name, type_char), attr)| TpColumn {
            name,
            type_char,
            attr,
        })
        .collect())
}

/// One difference between the schemas and the tickerplant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `None` for the update function.
    pub table: Option<String>,
    pub column: Option<String>,
    pub what: What,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum What {
    /// The schema's table is not in the tickerplant's `tables[]`.
    MissingTable,
    /// The schema's column is not in the tickerplant's table.
    MissingColumn {
        schema: char,
    },
    /// The tickerplant's table has a column the schema has not.
    ExtraColumn {
        tickerplant: char,
    },
    /// Both have the column, at other places among their shared columns
    /// (1-based positions in each table).
    Order {
        schema: usize,
        tickerplant: usize,
    },
    TypeMismatch {
        schema: char,
        tickerplant: char,
    },
    /// `type <f>` raised this q error (`'.u.upd`: undefined).
    UpdMissing {
        function: String,
        error: String,
    },
    UpdNotFunction {
        function: String,
        type_code: i16,
    },
}

/// The q type a `meta` letter stands for, for people.
pub fn type_letter_name(c: char) -> String {
    if c == ' ' {
        return "untyped list".into();
    }
    if c == 'C' {
        return QType::String.name().into();
    }
    let base = c.to_ascii_lowercase();
    let name = QType::ALL
        .iter()
        .find(|t| **t != QType::String && t.meta_char() == base)
        .map_or("unknown type", |t| t.name());
    if c.is_ascii_uppercase() {
        format!("list of {name} vectors")
    } else {
        name.to_string()
    }
}

fn typed(c: char) -> String {
    format!("{} '{c}'", type_letter_name(c))
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.table, &self.column) {
            (Some(t), Some(c)) => write!(f, "table {t}, column {c}: ")?,
            (Some(t), None) => write!(f, "table {t}: ")?,
            _ => {}
        }
        match &self.what {
            What::MissingTable => f.write_str("missing on the tickerplant (not in tables[])"),
            What::MissingColumn { schema } => write!(
                f,
                "missing on the tickerplant (schema {}); updates would carry one column too many",
                typed(*schema)
            ),
            What::ExtraColumn { tickerplant } => write!(
                f,
                "extra on the tickerplant (tickerplant {}), not in the schema; updates would carry one column too few",
                typed(*tickerplant)
            ),
            What::Order {
                schema,
                tickerplant,
            } => write!(
                f,
                "order differs: schema column {schema}, tickerplant column {tickerplant}; updates are positional"
            ),
            What::TypeMismatch {
                schema,
                tickerplant,
            } => write!(
                f,
                "type mismatch: schema {} vs tickerplant {}",
                typed(*schema),
                typed(*tickerplant)
            ),
            What::UpdMissing { function, error } => write!(
                f,
                "update function {function}: missing on the tickerplant (type {function} failed with '{error})"
            ),
            What::UpdNotFunction {
                function,
                type_code,
            } => write!(
                f,
                "update function {function}: not a function on the tickerplant (type {function} is {type_code}h)"
            ),
        }
    }
}

/// Whether a tickerplant column of `meta` letter `tp` takes this schema
/// type (see the module notes for the one loose rule).
pub fn compatible(schema: QType, tp: char) -> bool {
    tp == schema.meta_char() || (schema == QType::String && tp == ' ')
}

/// Every difference between `schemas` and `shape`, table by table in
/// schema order, then the update function. Empty: they match.
pub fn compare<'a>(
    schemas: impl IntoIterator<Item = &'a Schema>,
    shape: &TpShape,
    upd_func: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for s in schemas {
        let finding = |column: Option<&str>, what: What| Finding {
            table: Some(s.table.clone()),
            column: column.map(str::to_string),
            what,
        };
        let Some(tp_cols) = shape.columns.get(&s.table) else {
            out.push(finding(None, What::MissingTable));
            continue;
        };
        let on_tp = |name: &str| tp_cols.iter().find(|c| c.name == name);
        for c in &s.columns {
            match on_tp(&c.name) {
                None => out.push(finding(
                    Some(&c.name),
                    What::MissingColumn {
                        schema: c.qtype.meta_char(),
                    },
                )),
                Some(t) if !compatible(c.qtype, t.type_char) => out.push(finding(
                    Some(&c.name),
                    What::TypeMismatch {
                        schema: c.qtype.meta_char(),
                        tickerplant: t.type_char,
                    },
                )),
                Some(_) => {}
            }
        }
        for t in tp_cols {
            if !s.columns.iter().any(|c| c.name == t.name) {
                out.push(finding(
                    Some(&t.name),
                    What::ExtraColumn {
                        tickerplant: t.type_char,
                    },
                ));
            }
        }
        // Order among the shared columns only, so one missing column does
        // not make every later one look moved.
        let shared_tp: Vec<&str> = tp_cols
            .iter()
            .map(|t| t.name.as_str())
            .filter(|n| s.columns.iter().any(|c| c.name == *n))
            .collect();
        let shared_schema = s
            .columns
            .iter()
            .filter(|c| on_tp(&c.name).is_some())
            .map(|c| c.name.as_str());
        for (i, name) in shared_schema.enumerate() {
            if shared_tp.get(i) != Some(&name) {
                let pos_schema = s.columns.iter().position(|c| c.name == name);
                let pos_tp = tp_cols.iter().position(|c| c.name == name);
                if let (Some(a), Some(b)) = (pos_schema, pos_tp) {
                    out.push(finding(
                        Some(name),
                        What::Order {
                            schema: a + 1,
                            tickerplant: b + 1,
                        },
                    ));
                }
            }
        }
    }
    match &shape.upd {
        UpdFunc::Function { .. } => {}
        UpdFunc::Undefined { error } => out.push(Finding {
            table: None,
            column: None,
            what: What::UpdMissing {
                function: upd_func.to_string(),
                error: error.clone(),
            },
        }),
        UpdFunc::NotFunction { type_code } => out.push(Finding {
            table: None,
            column: None,
            what: What::UpdNotFunction {
                function: upd_func.to_string(),
                type_code: *type_code,
            },
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn schema(table: &str, cols: &[(&str, &str)]) -> Schema {
        let cols: Vec<String> = cols
            .iter()
            .map(|(n, t)| format!(r#"{{"name":"{n}","type":"{t}"}}"#))
            .collect();
        serde_json::from_str(&format!(
            r#"{{"table":"{table}","columns":[{}]}}"#,
            cols.join(",")
        ))
        .expect("schema")
    }

    fn trade() -> Schema {
        schema(
            "trade",
            &[
                ("time", "timespan"),
                ("sym", "symbol"),
                ("price", "float"),
                ("size", "long"),
                ("note", "string"),
            ],
        )
    }

    fn tp_cols(cols: &[(&str, char)]) -> Vec<TpColumn> {
        cols.iter()
            .map(|(n, c)| TpColumn {
                name: n.to_string(),
                type_char: *c,
                attr: String::new(),
            })
            .collect()
    }

    fn shape(tables: &[(&str, &[(&str, char)])], upd: UpdFunc) -> TpShape {
        TpShape {
            tables: tables.iter().map(|(t, _)| t.to_string()).collect(),
            columns: tables
                .iter()
                .map(|(t, c)| (t.to_string(), tp_cols(c)))
                .collect(),
            upd,
        }
    }

    const LAMBDA_FN: UpdFunc = UpdFunc::Function { type_code: 100 };
    const TRADE_OK: &[(&str, char)] = &[
        ("time", 'n'),
        ("sym", 's'),
        ("price", 'f'),
        ("size", 'j'),
        ("note", ' '),
    ];

    fn lines(f: &[Finding]) -> Vec<String> {
        f.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_matching_tickerplant_has_no_findings() {
        let s = shape(&[("trade", TRADE_OK), ("other", &[("x", 'j')])], LAMBDA_FN);
        assert_eq!(compare([&trade()], &s, ".u.upd"), vec![]);
        // A string column with rows shows C: also fine.
        let mut with_rows = TRADE_OK.to_vec();
        with_rows[4].1 = 'C';
        let s = shape(&[("trade", &with_rows)], LAMBDA_FN);
        assert_eq!(compare([&trade()], &s, ".u.upd"), vec![]);
    }

    #[test]
    fn a_type_mismatch_names_table_column_and_both_types() {
        let mut cols = TRADE_OK.to_vec();
        cols[2].1 = 'e';
        let f = compare([&trade()], &shape(&[("trade", &cols)], LAMBDA_FN), ".u.upd");
        assert_eq!(
            f,
            vec![Finding {
                table: Some("trade".into()),
                column: Some("price".into()),
                what: What::TypeMismatch {
                    schema: 'f',
                    tickerplant: 'e'
                }
            }]
        );
        assert_eq!(
            lines(&f),
            ["table trade, column price: type mismatch: schema float 'f' vs tickerplant real 'e'"]
        );
    }

    #[test]
    fn untyped_and_char_columns() {
        // An untyped list where the schema has a long: a mismatch.
        let mut cols = TRADE_OK.to_vec();
        cols[3].1 = ' ';
        // A char vector where the schema has strings: a mismatch.
        cols[4].1 = 'c';
        let f = lines(&compare(
            [&trade()],
            &shape(&[("trade", &cols)], LAMBDA_FN),
            ".u.upd",
        ));
        assert_eq!(
            f,
            [
                "table trade, column size: type mismatch: schema long 'j' vs tickerplant untyped list ' '",
                "table trade, column note: type mismatch: schema string 'C' vs tickerplant char 'c'",
            ]
        );
        // And the other way: strings where the schema has one char per row.
        let chars = schema("t", &[("c", "char")]);
        let f = compare([&chars], &shape(&[("t", &[("c", 'C')])], LAMBDA_FN), "f");
        assert_eq!(
            lines(&f),
            ["table t, column c: type mismatch: schema char 'c' vs tickerplant string 'C'"]
        );
        let f = compare([&chars], &shape(&[("t", &[("c", ' ')])], LAMBDA_FN), "f");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn missing_extra_and_moved_columns() {
        let cols: &[(&str, char)] = &[
            ("time", 'n'),
            ("sym", 's'),
            ("size", 'j'),
            ("price", 'f'),
            ("venue", 's'),
        ];
        let f = lines(&compare(
            [&trade()],
            &shape(&[("trade", cols)], LAMBDA_FN),
            ".u.upd",
        ));
        assert_eq!(
            f,
            [
                "table trade, column note: missing on the tickerplant (schema string 'C'); updates would carry one column too many",
                "table trade, column venue: extra on the tickerplant (tickerplant symbol 's'), not in the schema; updates would carry one column too few",
                "table trade, column price: order differs: schema column 3, tickerplant column 4; updates are positional",
                "table trade, column size: order differs: schema column 4, tickerplant column 3; updates are positional",
            ]
        );
    }

    #[test]
    fn a_missing_column_does_not_make_later_ones_moved() {
        let f = compare(
            [&trade()],
            &shape(&[("trade", &TRADE_OK[..2])], LAMBDA_FN),
            ".u.upd",
        );
        assert_eq!(f.len(), 3);
        assert!(f
            .iter()
            .all(|f| matches!(f.what, What::MissingColumn { .. })));
    }

    #[test]
    fn missing_table_and_update_function() {
        let s = shape(
            &[],
            UpdFunc::Undefined {
                error: ".u.nope".into(),
            },
        );
        assert_eq!(
            lines(&compare([&trade()], &s, ".u.nope")),
            [
                "table trade: missing on the tickerplant (not in tables[])",
                "update function .u.nope: missing on the tickerplant (type .u.nope failed with '.u.nope)",
            ]
        );
        let s = shape(
            &[("trade", TRADE_OK)],
            UpdFunc::NotFunction { type_code: -7 },
        );
        assert_eq!(
            lines(&compare([&trade()], &s, ".u.i")),
            ["update function .u.i: not a function on the tickerplant (type .u.i is -7h)"]
        );
    }

    #[test]
    fn letters_name_their_types() {
        assert_eq!(type_letter_name('j'), "long");
        assert_eq!(type_letter_name('C'), "string");
        assert_eq!(type_letter_name('J'), "list of long vectors");
        assert_eq!(type_letter_name(' '), "untyped list");
        for t in QType::ALL {
            assert!(compatible(t, t.meta_char()), "{t:?}");
        }
    }

    /// Answers queries from a table, as a tickerplant would.
    struct Fake(HashMap<String, Result<K, String>>, Vec<String>);

    impl TpQuery for Fake {
        fn query_str(&mut self, expr: &str) -> impl Future<Output = Result<K, ClientError>> + Send {
            self.1.push(expr.to_string());
            let r = match self.0.get(expr) {
                Some(Ok(k)) => Ok(k.clone()),
                Some(Err(e)) => Err(ClientError::Remote(e.clone())),
                None => Err(ClientError::Closed),
            };
            async move { r }
        }
    }

    fn syms(v: &[&str]) -> K {
        K::vector(Vector::Symbol(v.iter().map(|s| s.to_string()).collect()))
    }

    fn keyed_meta(names: &[&str], letters: &str) -> K {
        K::Dict {
            keys: Box::new(K::Table(Table::new(vec!["c".into()], vec![syms(names)]))),
            values: Box::new(K::Table(Table::new(
                vec!["t".into(), "f".into(), "a".into()],
                vec![
                    K::string(letters),
                    syms(&vec![""; names.len()]),
                    syms(&vec![""; names.len()]),
                ],
            ))),
            sorted: false,
        }
    }

    fn run<T>(f: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn fetch_asks_what_q_answers() {
        let answers = HashMap::from([
            ("tables[]".to_string(), Ok(syms(&["quote", "trade"]))),
            (
                "meta `trade".to_string(),
                Ok(keyed_meta(&["time", "sym", "price"], "nsf")),
            ),
            ("type .u.upd".to_string(), Ok(K::Short(104))),
        ]);
        let mut fake = Fake(answers, Vec::new());
        let got = run(fetch(&mut fake, &["trade", "gone"], ".u.upd")).expect("fetch");
        assert_eq!(fake.1, ["tables[]", "meta `trade", "type .u.upd"]);
        assert_eq!(got.tables, ["quote", "trade"]);
        assert_eq!(
            got.columns
                .get("trade")
                .map(|c| c.iter().map(|c| c.type_char).collect::<String>()),
            Some("nsf".to_string())
        );
        assert!(!got.columns.contains_key("gone"));
        assert_eq!(got.upd, UpdFunc::Function { type_code: 104 });

        // An undefined function is a finding, not an error; a lost
        // connection is an error naming the query.
        let answers = HashMap::from([
            ("tables[]".to_string(), Ok(syms(&[]))),
            ("type .u.upd".to_string(), Err(".u.upd".to_string())),
        ]);
        let got = run(fetch(&mut Fake(answers, Vec::new()), &["trade"], ".u.upd")).expect("fetch");
        assert_eq!(
            got.upd,
            UpdFunc::Undefined {
                error: ".u.upd".into()
            }
        );
        let e = run(fetch(
            &mut Fake(HashMap::new(), Vec::new()),
            &["trade"],
            ".u.upd",
        ))
        .unwrap_err();
        assert!(e.to_string().contains("\"tables[]\""), "{e}");
    }

    #[test]
    fn fetch_never_sends_what_is_not_a_name() {
        for (tables, f) in [
            (&["t;exit 0"][..], ".u.upd"),
            (&["t"][..], ".u.upd;exit 0"),
            (&[".u.t"][..], "f"),
        ] {
            let mut fake = Fake(HashMap::new(), Vec::new());
            let e = run(fetch(&mut fake, tables, f)).unwrap_err();
            assert!(matches!(e, PreflightError::BadName(_)), "{e}");
            assert!(fake.1.is_empty());
        }
    }

    #[test]
    fn meta_answers_keyed_or_plain() {
        let keyed = keyed_meta(&["a", "b"], "j ");
        let cols = meta_columns(&keyed).expect("keyed");
        assert_eq!(cols, tp_cols(&[("a", 'j'), ("b", ' ')]));
        let K::Dict { keys, values, .. } = keyed else {
            unreachable!()
        };
        let (K::Table(k), K::Table(v)) = (*keys, *values) else {
            unreachable!()
        };
        let plain = K::Table(Table::new(
            k.names.into_iter().chain(v.names).collect(),
            k.columns.into_iter().chain(v.columns).collect(),
        ));
        assert_eq!(meta_columns(&plain).expect("plain"), cols);
        assert!(meta_columns(&K::Long(1))
            .unwrap_err()
            .contains("not a table"));
    }
}
