//! Schemas compiled once and checked as a whole: the [`Catalog`] the bridge
//! decodes records with.
//!
//! Checks: unique table names; table and column names valid q identifiers
//! (and not q reserved words); known types; source paths that parse; sane
//! routes (each table has one, at most one default, no two alike); key and
//! payload-key fields that exist; time formats only on temporal columns;
//! `allow_non_finite` only on real/float; defaults that convert; boolean and
//! byte columns (which have no q null) not nullable without a default; the
//! tickerplant stamp only on a leading timespan column; CSV mappings (a
//! one-character separator, header names only on tables that take CSV,
//! CSV tables routed by source or default).

use std::fmt;
use std::path::{Path, PathBuf};

use super::convert::{self, Cell, Input, Rules};
use super::model::{self, QType, Schema, Stamp, TimeFormat};
use super::path::FieldPath;

/// Bounds on one record; anything beyond is a per-record error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Deepest JSON nesting accepted (the record object itself is level 1).
    pub max_depth: usize,
    /// Largest payload accepted, in bytes.
    pub max_record_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 64,
            max_record_bytes: 1 << 20,
        }
    }
}

/// One problem found while loading or checking schemas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    pub file: Option<String>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        if let Some(t) = &self.table {
            write!(f, "table {t}: ")?;
        }
        if let Some(c) = &self.column {
            write!(f, "column {c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found, not just the first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CatalogError {
    pub issues: Vec<Issue>,
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for i in &self.issues {
            if !first {
                f.write_str("\n")?;
            }
            first = false;
            write!(f, "{i}")?;
        }
        Ok(())
    }
}

/// A column as the decoder uses it.
#[derive(Clone, Debug)]
pub(crate) struct ColumnPlan {
    pub name: String,
    pub qtype: QType,
    pub path: FieldPath,
    pub rules: Rules,
    /// What a missing value becomes: the default, else the typed null if
    /// nullable, else `None` (required).
    pub missing: Option<Cell<'static>>,
    /// Position of the field in a delimited header.
    pub header_index: Option<usize>,
    /// CSV header names to look for, in order (see `schema::csv`).
    pub csv_names: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct RoutePlan {
    pub source: Option<String>,
    pub field: Option<(FieldPath, String)>,
    pub default: bool,
}

#[derive(Clone, Debug)]
pub(crate) struct DelimitedPlan {
    /// `None` means runs of blanks.
    pub separator: Option<u8>,
    pub header: Vec<String>,
}

/// A compiled table.
#[derive(Clone, Debug)]
pub struct Table {
    pub(crate) schema: Schema,
    /// The columns the bridge sends (all but a tickerplant-stamped one).
    pub(crate) sent: Vec<ColumnPlan>,
    pub(crate) route: RoutePlan,
    pub(crate) payload_key: Vec<FieldPath>,
    /// Payload-key fields' positions in a delimited header.
    pub(crate) payload_key_index: Vec<usize>,
    pub(crate) delimited: Option<DelimitedPlan>,
    /// The CSV separator, when the table takes CSV objects.
    pub(crate) csv: Option<u8>,
    /// The top-level keys that JSON rows' columns and payload key read.
    pub(crate) top: TopFields,
}

/// A table's fields that are top-level keys of a JSON row (most are),
/// found in one pass over the row's members; other paths are followed
/// one by one.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopFields {
    /// The keys, in the order of `Tape::get_many`'s answer.
    pub(crate) keys: Vec<String>,
    /// For each sent column, and for each payload-key field: its key's
    /// place in `keys`, or `None` for a deeper path.
    pub(crate) columns: Vec<Option<usize>>,
    pub(crate) payload_key: Vec<Option<usize>>,
}

impl TopFields {
    fn new<'a>(
        columns: impl Iterator<Item = &'a FieldPath>,
        payload_key: impl Iterator<Item = &'a FieldPath>,
    ) -> TopFields {
        let mut keys: Vec<String> = Vec::new();
        let mut place = |path: &FieldPath| {
            let key = path.single_key()?;
            Some(keys.iter().position(|k| k == key).unwrap_or_else(|| {
                keys.push(key.to_string());
                keys.len() - 1
            }))
        };
        let columns = columns.map(&mut place).collect();
        let payload_key = payload_key.map(&mut place).collect();
        TopFields {
            keys,
            columns,
            payload_key,
        }
    }
}

impl Table {
    pub fn name(&self) -> &str {
        &self.schema.table
    }

    /// The schema as written.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Whether the leading `time` column is left for the tickerplant to stamp.
    pub fn tickerplant_stamps_time(&self) -> bool {
        self.schema.columns.len() != self.sent.len()
    }

    /// Names of the columns each update carries, in order.
    pub fn sent_columns(&self) -> impl Iterator<Item = &str> {
        self.sent.iter().map(|c| c.name.as_str())
    }

    pub fn takes_delimited_text(&self) -> bool {
        self.delimited.is_some()
    }

    pub fn takes_csv(&self) -> bool {
        self.csv.is_some()
    }
}

/// Every table, compiled, plus the limits records are held to.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) tables: Vec<Table>,
    /// Table indices in the order routes are tried (most specific first;
    /// the default table is not in here).
    pub(crate) route_order: Vec<usize>,
    pub(crate) default_table: Option<usize>,
    pub(crate) limits: Limits,
}

impl Catalog {
    /// Loads and checks every schema file in `dir` (see [`model::load_dir`]).
    pub fn load(dir: &Path) -> Result<Catalog, CatalogError> {
        let files = model::schema_files(dir).map_err(|e| CatalogError {
            issues: vec![issue(None, None, None, e.to_string())],
        })?;
        let mut issues = Vec::new();
        let mut schemas = Vec::new();
        for path in files {
            match model::load_file(&path) {
                Ok(s) => schemas.push((Some(path), s)),
                Err(model::SchemaError::File { path, reason }) => {
                    issues.push(issue(Some(path), None, None, reason))
                }
            }
        }
        compile(schemas, issues)
    }

    /// Checks and compiles schemas built in code.
    pub fn from_schemas(schemas: Vec<Schema>) -> Result<Catalog, CatalogError> {
        compile(schemas.into_iter().map(|s| (None, s)).collect(), Vec::new())
    }

    pub fn with_limits(mut self, limits: Limits) -> Catalog {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn tables(&self) -> &[Table] {
        &self.tables
    }

    pub fn table(&self, index: usize) -> Option<&Table> {
        self.tables.get(index)
    }

    pub fn table_index(&self, name: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name() == name)
    }
}

fn issue(
    file: Option<String>,
    table: Option<&str>,
    column: Option<&str>,
    message: impl Into<String>,
) -> Issue {
    Issue {
        file,
        table: table.map(str::to_string),
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// q's reserved words: names a table or column must not take.
const Q_RESERVED: &[&str] = &[
    "abs",
    "acos",
    "aj",
    "aj0",
    "ajf",
    "ajf0",
    "all",
    "and",
    "any",
    "asc",
    "asin",
    "asof",
    "atan",
    "attr",
    "avg",
    "avgs",
    "bin",
    "binr",
    "by",
    "ceiling",
    "cols",
    "cor",
    "cos",
    "count",
    "cov",
    "cross",
    "csv",
    "cut",
    "delete",
    "deltas",
    "desc",
    "dev",
    "differ",
    "distinct",
    "div",
    "do",
    "dsave",
    "each",
    "ej",
    "ema",
    "enlist",
    "eval",
    "except",
    "exec",
    "exit",
    "exp",
    "fby",
    "fills",
    "first",
    "fkeys",
    "flip",
    "floor",
    "from",
    "get",
    "getenv",
    "group",
    "gtime",
    "hclose",
    "hcount",
    "hdel",
    "hopen",
    "hsym",
    "iasc",
    "idesc",
    "if",
    "ij",
    "ijf",
    "in",
    "insert",
    "inter",
    "inv",
    "key",
    "keys",
    "last",
    "like",
    "lj",
    "ljf",
    "load",
    "log",
    "lower",
    "lsq",
    "ltime",
    "ltrim",
    "mavg",
    "max",
    "maxs",
    "mcount",
    "md5",
    "mdev",
    "med",
    "meta",
    "min",
    "mins",
    "mmax",
    "mmin",
    "mmu",
    "mod",
    "msum",
    "neg",
    "next",
    "not",
    "null",
    "or",
    "over",
    "parse",
    "peach",
    "pj",
    "prd",
    "prds",
    "prev",
    "prior",
    "rand",
    "rank",
    "ratios",
    "raze",
    "read0",
    "read1",
    "reciprocal",
    "reval",
    "reverse",
    "rload",
    "rotate",
    "rsave",
    "rtrim",
    "save",
    "scan",
    "scov",
    "sdev",
    "select",
    "set",
    "setenv",
    "show",
    "signum",
    "sin",
    "sqrt",
    "ss",
    "ssr",
    "string",
    "sublist",
    "sum",
    "sums",
    "sv",
    "svar",
    "system",
    "tables",
    "tan",
    "til",
    "trim",
    "type",
    "uj",
    "ujf",
    "ungroup",
    "union",
    "update",
    "upper",
    "upsert",
    "value",
    "var",
    "view",
    "views",
    "vs",
    "wavg",
    "where",
    "while",
    "within",
    "wj",
    "wj1",
    "wsum",
    "xasc",
    "xbar",
    "xcol",
    "xcols",
    "xdesc",
    "xexp",
    "xgroup",
    "xkey",
    "xlog",
    "xprev",
    "xrank",
];

/// A plain q name: a letter, then letters, digits or underscores; not a
/// reserved word.
pub fn check_q_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(format!(
            "{name:?} is not a q name (a letter, then letters, digits or _)"
        ));
    }
    if Q_RESERVED.contains(&name) {
        return Err(format!("{name:?} is a q reserved word"));
    }
    Ok(())
}

/// A default from the schema file as a record value would be.
fn default_input(v: &serde_json::Value) -> (Input<'_>, String) {
    use serde_json::Value as J;
    match v {
        J::Null => (Input::Missing, "null".into()),
        J::Bool(b) => (Input::Bool(*b), b.to_string()),
        J::Number(n) => (Input::Missing, n.to_string()),
        J::String(s) => (Input::Str(s.as_str().into()), s.clone()),
        J::Array(_) => (Input::Compound("array"), "an array".into()),
        J::Object(_) => (Input::Compound("object"), "an object".into()),
    }
}

fn compile(
    schemas: Vec<(Option<PathBuf>, Schema)>,
    mut issues: Vec<Issue>,
) -> Result<Catalog, CatalogError> {
    let mut tables = Vec::new();
    let mut default_table: Option<usize> = None;
    for (path, schema) in schemas {
        let file = path.map(|p| p.display().to_string());
        let before = issues.len();
        let table = compile_table(&schema, file.clone(), &mut issues);
        let name = schema.table.clone();
        if tables.iter().any(|t: &Table| t.name() == name) {
            issues.push(issue(
                file.clone(),
                Some(&name),
                None,
                "table name used by another schema",
            ));
        }
        if let Some(t) = table.filter(|_| issues.len() == before) {
            let idx = tables.len();
            if t.route.default {
                if let Some(d) = default_table.and_then(|d: usize| tables.get(d)) {
                    let other: &Table = d;
                    issues.push(issue(
                        file.clone(),
                        Some(&name),
                        None,
                        format!("route: table {} is already the default", other.name()),
                    ));
                }
                default_table = Some(idx);
            }
            for other in &tables {
                let o: &Table = other;
                if !t.route.default
                    && o.route.source == t.route.source
                    && o.route.field.as_ref().map(|(p, v)| (&p.text, v))
                        == t.route.field.as_ref().map(|(p, v)| (&p.text, v))
                {
                    issues.push(issue(
                        file.clone(),
                        Some(&name),
                        None,
                        format!("route: same rule as table {}", o.name()),
                    ));
                }
            }
            tables.push(t);
        }
    }
    if !issues.is_empty() {
        return Err(CatalogError { issues });
    }
    // Two conditions beat one; file order breaks ties.
    let mut route_order: Vec<usize> = (0..tables.len())
        .filter(|&i| tables.get(i).is_some_and(|t| !t.route.default))
        .collect();
    route_order.sort_by_key(|&i| {
        std::cmp::Reverse(tables.get(i).map_or(0, |t| {
            usize::from(t.route.source.is_some()) + usize::from(t.route.field.is_some())
        }))
    });
    Ok(Catalog {
        tables,
        route_order,
        default_table,
        limits: Limits::default(),
    })
}

fn compile_table(schema: &Schema, file: Option<String>, issues: &mut Vec<Issue>) -> Option<Table> {
    let tname = schema.table.as_str();
    let mut err = |column: Option<&str>, message: String| {
        issues.push(issue(file.clone(), Some(tname), column, message))
    };
    if let Err(m) = check_q_name(tname) {
        err(None, format!("table name: {m}"));
    }
    if schema.columns.is_empty() {
        err(None, "no columns".into());
    }
    let delimited = schema.delimited.as_ref().map(|d| {
        let separator = match d.separator.as_bytes() {
            [b' '] => None,
            [c] if c.is_ascii() && *c != b'\n' && *c != b'\r' => Some(*c),
            _ => {
                err(
                    None,
                    format!(
                        "delimited: separator must be one ASCII character, got {:?}",
                        d.separator
                    ),
                );
                None
            }
        };
        if d.header.is_empty() {
            err(None, "delimited: header is empty".into());
        }
        for (i, h) in d.header.iter().enumerate() {
            if h.is_empty() || d.header.iter().take(i).any(|x| x == h) {
                err(
                    None,
                    format!("delimited: header name {h:?} is empty or repeated"),
                );
            }
        }
        DelimitedPlan {
            separator,
            header: d.header.clone(),
        }
    });

    let csv = schema.csv.as_ref().and_then(|c| match c.separator.as_bytes() {
        [b] if b.is_ascii() && !matches!(*b, b'\n' | b'\r' | b'"') => Some(*b),
        _ => {
            err(
                None,
                format!(
                    "csv: separator must be one ASCII character other than a quote or line break, got {:?}",
                    c.separator
                ),
            );
            None
        }
    });

    let mut sent = Vec::new();
    for (i, c) in schema.columns.iter().enumerate() {
        let cname = Some(c.name.as_str());
        if let Err(m) = check_q_name(&c.name) {
            err(cname, m);
        }
        if schema.columns.iter().take(i).any(|o| o.name == c.name) {
            err(cname, "column name repeated".into());
        }
        if let Some(Stamp::Tickerplant) = c.stamp {
            if i != 0 || c.qtype != QType::Timespan {
                err(
                    cname,
                    "stamp \"tickerplant\" is only for the first column, of type timespan (tick.q)"
                        .into(),
                );
            }
            if c.source.is_some()
                || c.default.is_some()
                || c.time_format.is_some()
                || c.csv.is_some()
            {
                err(
                    cname,
                    "a tickerplant-stamped column takes no source, default, time_format or csv"
                        .into(),
                );
            }
            continue;
        }
        match c.time_format {
            Some(_) if !c.qtype.is_temporal() => err(
                cname,
                format!(
                    "time_format is only for temporal columns, not {}",
                    c.qtype.name()
                ),
            ),
            Some(TimeFormat::EpochDays) if c.qtype != QType::Date => err(
                cname,
                "time_format epoch_days is only for date columns".into(),
            ),
            _ => {}
        }
        if c.allow_non_finite && !matches!(c.qtype, QType::Real | QType::Float) {
            err(
                cname,
                "allow_non_finite is only for real and float columns".into(),
            );
        }
        let source = c.source.clone().unwrap_or_else(|| c.name.clone());
        let path = match FieldPath::parse(&source) {
            Ok(p) => p,
            Err(m) => {
                err(cname, format!("source: {m}"));
                continue;
            }
        };
        let header_index = match &delimited {
            Some(d) => {
                let idx = path
                    .single_key()
                    .and_then(|k| d.header.iter().position(|h| h == k));
                if idx.is_none() {
                    err(
                        cname,
                        format!("source {source:?} is not a name in the delimited header"),
                    );
                }
                idx
            }
            None => None,
        };
        let csv_names = match &c.csv {
            Some(h) => {
                if schema.csv.is_none() {
                    err(
                        cname,
                        "csv names a header field, but the table has no csv section".into(),
                    );
                }
                if h.is_empty() {
                    err(cname, "csv: empty header name".into());
                }
                vec![h.clone()]
            }
            None => {
                let mut names = vec![c.name.clone()];
                if let Some(last) = path.last_key().filter(|k| *k != c.name) {
                    names.push(last.to_string());
                }
                names
            }
        };
        let rules = Rules {
            time_format: c.time_format,
            allow_non_finite: c.allow_non_finite,
        };
        let missing = match &c.default {
            Some(v) => {
                let (input, shown) = default_input(v);
                let converted = match (v, input) {
                    (serde_json::Value::Number(_), _) => {
                        convert::convert(c.qtype, rules, Input::Num(&shown)).map(Cell::into_owned)
                    }
                    (_, Input::Missing) => {
                        convert::null_cell(c.qtype).ok_or(convert::ConvError::Missing)
                    }
                    (_, input) => convert::convert(c.qtype, rules, input).map(Cell::into_owned),
                };
                match converted {
                    Ok(cell) => Some(cell),
                    Err(e) => {
                        err(
                            cname,
                            format!(
                                "default {shown} does not convert to {}: {e}",
                                c.qtype.name()
                            ),
                        );
                        None
                    }
                }
            }
            None if c.nullable => match convert::null_cell(c.qtype) {
                Some(cell) => Some(cell),
                None => {
                    err(
                        cname,
                        format!(
                            "{} has no null in q: give a default or make it required",
                            c.qtype.name()
                        ),
                    );
                    None
                }
            },
            None => None,
        };
        sent.push(ColumnPlan {
            name: c.name.clone(),
            qtype: c.qtype,
            path,
            rules,
            missing,
            header_index,
            csv_names,
        });
    }
    if !schema.columns.is_empty() && sent.is_empty() {
        err(
            None,
            "no columns besides the tickerplant-stamped time".into(),
        );
    }

    for (i, k) in schema.key.iter().enumerate() {
        if !schema.columns.iter().any(|c| &c.name == k) {
            err(None, format!("key column {k:?} is not a column"));
        }
        if schema.key.iter().take(i).any(|x| x == k) {
            err(None, format!("key column {k:?} repeated"));
        }
    }

    let mut payload_key = Vec::new();
    let mut payload_key_index = Vec::new();
    for f in &schema.payload_key {
        match FieldPath::parse(f) {
            Ok(p) => {
                if let Some(d) = &delimited {
                    match p
                        .single_key()
                        .and_then(|k| d.header.iter().position(|h| h == k))
                    {
                        Some(i) => payload_key_index.push(i),
                        None => err(
                            None,
                            format!(
                                "payload_key field {f:?} is not a name in the delimited header"
                            ),
                        ),
                    }
                }
                payload_key.push(p);
            }
            Err(m) => err(None, format!("payload_key: {m}")),
        }
    }

    let route = match &schema.route {
        None => {
            err(
                None,
                "route: missing (give source, field and equals, or default)".into(),
            );
            RoutePlan::default()
        }
        Some(r) => {
            let field = match (&r.field, &r.equals) {
                (Some(f), Some(v)) => match FieldPath::parse(f) {
                    Ok(p) => Some((p, v.clone())),
                    Err(m) => {
                        err(None, format!("route field: {m}"));
                        None
                    }
                },
                (None, None) => None,
                _ => {
                    err(None, "route: field and equals go together".into());
                    None
                }
            };
            if r.default && (r.source.is_some() || field.is_some()) {
                err(None, "route: default takes no other condition".into());
            }
            if !r.default && r.source.is_none() && r.field.is_none() {
                err(
                    None,
                    "route: give source, field and equals, or default".into(),
                );
            }
            if schema.csv.is_some() && field.is_some() {
                err(
                    None,
                    "route: CSV objects are routed by source (or default), not by field".into(),
                );
            }
            if delimited.is_some() && field.is_some() {
                err(
                    None,
                    "route: delimited text is routed by source (or default), not by field".into(),
                );
            }
            RoutePlan {
                source: r.source.clone(),
                field,
                default: r.default,
            }
        }
    };

    let top = TopFields::new(sent.iter().map(|c| &c.path), payload_key.iter());
    Some(Table {
        schema: schema.clone(),
        sent,
        route,
        payload_key,
        payload_key_index,
        delimited,
        csv,
        top,
    })
}
