//! CSV lines (RFC 4180) to typed rows, for tables whose schema has a `csv`
//! section (S3 objects, DESIGN §7a).
//!
//! The object's first line is its header. [`Catalog::csv_header`] maps each
//! sent column to a field position by header name: the column's `csv` name
//! when given, else its own name, else the last segment of its `source`
//! (`/trade/px` → `px`). A column whose name is not in the header takes its
//! default (or typed null when nullable); a required one makes the header
//! refused, since every line would fail. Each later line is one record
//! ([`Catalog::decode_csv_line`]), its values converted exactly as JSON
//! values are (`schema::convert`): an unquoted empty field is missing, a
//! quoted one (`""`) is the empty string.
//!
//! Quoting: a field may be quoted with `"`, a quote inside written `""`; a
//! quote inside an unquoted field, text after a closing quote, or a quote
//! left open are errors for that line. Line breaks inside quoted fields are
//! not supported (the object is read line by line, each line a unit of
//! checkpointing): such a line is reported as a bad line.

use std::borrow::Cow;

use super::batch::{BatchBuilder, RecordRows};
use super::catalog::Catalog;
use super::convert::Input;
use super::decode::{column_error, push};
use super::error::{shown, RecordError};

/// Why a CSV line (or the header) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("CSV header (line {line}): {reason}")]
    Header { line: u64, reason: String },
    #[error("CSV line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    /// A value that does not convert; the error names table, column and field.
    #[error("CSV line {line}: {error}")]
    Value { line: u64, error: RecordError },
}

impl CsvError {
    pub fn line(&self) -> u64 {
        match self {
            CsvError::Header { line, .. }
            | CsvError::Malformed { line, .. }
            | CsvError::Value { line, .. } => *line,
        }
    }

    /// The column at fault, when one is.
    pub fn column(&self) -> Option<&str> {
        let CsvError::Value { error, .. } = self else {
            return None;
        };
        match error {
            RecordError::MissingField { at }
            | RecordError::WrongType { at, .. }
            | RecordError::NotIntegral { at, .. }
            | RecordError::OutOfRange { at, .. }
            | RecordError::NonFinite { at, .. }
            | RecordError::BadTemporal { at, .. }
            | RecordError::BadGuid { at, .. }
            | RecordError::BadChar { at, .. }
            | RecordError::Unrepresentable { at, .. } => Some(at.column.as_str()),
            _ => None,
        }
    }
}

/// One object's header, mapped onto a table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvHeader {
    table: usize,
    separator: u8,
    /// Fields a line must have.
    fields: usize,
    /// Per sent column, the field position (`None`: not in the header).
    map: Vec<Option<usize>>,
}

impl CsvHeader {
    pub fn table(&self) -> usize {
        self.table
    }

    pub fn fields(&self) -> usize {
        self.fields
    }
}

impl Catalog {
    /// The CSV table for objects from `source` (a table with a `csv`
    /// section routed by that source, else a default one with `csv`).
    pub fn csv_table(&self, source: &str) -> Option<usize> {
        self.route_order
            .iter()
            .copied()
            .find(|&i| {
                self.tables.get(i).is_some_and(|t| {
                    t.csv.is_some()
                        && t.route.field.is_none()
                        && t.route.source.as_deref() == Some(source)
                })
            })
            .or_else(|| {
                self.default_table
                    .filter(|&d| self.tables.get(d).is_some_and(|t| t.csv.is_some()))
            })
    }

    /// Maps a header line (line `line`, normally 1) onto table `table`.
    pub fn csv_header(&self, table: usize, text: &str, line: u64) -> Result<CsvHeader, CsvError> {
        let bad = |reason: String| CsvError::Header { line, reason };
        let t = self
            .tables
            .get(table)
            .ok_or_else(|| bad(format!("no table {table}")))?;
        let separator = t
            .csv
            .ok_or_else(|| bad(format!("table {} takes no CSV", t.name())))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let names = split_fields(text, separator).map_err(bad)?;
        for (i, n) in names.iter().enumerate() {
            if names.iter().take(i).any(|m| m.text() == n.text()) {
                return Err(bad(format!("header name {:?} repeated", shown(n.text()))));
            }
        }
        let mut map = Vec::with_capacity(t.sent.len());
        for plan in &t.sent {
            let at = plan
                .csv_names
                .iter()
                .find_map(|want| names.iter().position(|n| n == want));
            if at.is_none() && plan.missing.is_none() {
                return Err(bad(format!(
                    "table {}: required column {} has no field (looked for {})",
                    t.name(),
                    plan.name,
                    plan.csv_names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                )));
            }
            map.push(at);
        }
        Ok(CsvHeader {
            table,
            separator,
            fields: names.len(),
            map,
        })
    }

    /// Decodes one CSV line (number `line`, for messages) as one record of
    /// one row, appending it to `out`; on error `out` is as it was.
    pub fn decode_csv_line(
        &self,
        header: &CsvHeader,
        text: &str,
        line: u64,
        out: &mut BatchBuilder,
    ) -> Result<RecordRows, CsvError> {
        let malformed = |reason: String| CsvError::Malformed { line, reason };
        let table = self
            .tables
            .get(header.table)
            .ok_or_else(|| malformed(format!("no table {}", header.table)))?;
        let fields = split_fields(text, header.separator).map_err(malformed)?;
        if fields.len() != header.fields {
            return Err(malformed(format!(
                "expected {} fields (as the header), got {}",
                header.fields,
                fields.len()
            )));
        }
        let (run_idx, mark) = out.begin(header.table, table);
        let BatchBuilder { runs, syms, .. } = out;
        let result = (|| {
            let columns = &mut runs
                .get_mut(run_idx)
                .ok_or_else(|| malformed("internal: run vanished".into()))?
                .columns;
            for ((plan, col), at) in table.sent.iter().zip(columns.iter_mut()).zip(&header.map) {
                let field = at.and_then(|i| fields.get(i));
                let input = match field {
                    None | Some(Field::Plain("")) => Input::Missing,
                    Some(f) => Input::Text(f.text()),
                };
                if let Err(e) = push(plan, input, col, syms) {
                    let value =
                        field.map_or_else(String::new, |f| format!("{:?}", shown(f.text())));
                    return Err(CsvError::Value {
                        line,
                        error: column_error(table, plan, None, e, value),
                    });
                }
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                out.commit(run_idx, 1);
                Ok(RecordRows {
                    table: header.table,
                    run: run_idx,
                    rows: 1,
                    key: None,
                })
            }
            Err(e) => {
                out.rollback(mark);
                Err(e)
            }
        }
    }
}

/// One field: as written, or unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Field<'a> {
    Plain(&'a str),
    Quoted(Cow<'a, str>),
}

impl Field<'_> {
    fn text(&self) -> &str {
        match self {
            Field::Plain(s) => s,
            Field::Quoted(s) => s,
        }
    }
}

impl PartialEq<str> for Field<'_> {
    fn eq(&self, other: &str) -> bool {
        self.text() == other
    }
}

impl PartialEq<String> for Field<'_> {
    fn eq(&self, other: &String) -> bool {
        self.text() == other.as_str()
    }
}

/// Splits one line into fields (RFC 4180, one line).
fn split_fields(line: &str, sep: u8) -> Result<Vec<Field<'_>>, String> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        if bytes.get(i) == Some(&b'"') {
            // Quoted: up to a quote not doubled.
            let open = i;
            let mut j = i + 1;
            let mut escaped = false;
            let close = loop {
                match bytes.get(j) {
                    None => return Err(format!("quoted field at byte {open} is not closed")),
                    Some(b'"') if bytes.get(j + 1) == Some(&b'"') => {
                        escaped = true;
                        j += 2;
                    }
                    Some(b'"') => break j,
                    Some(_) => j += 1,
                }
            };
            let inner = line.get(open + 1..close).unwrap_or("");
            out.push(Field::Quoted(if escaped {
                Cow::Owned(inner.replace("\"\"", "\""))
            } else {
                Cow::Borrowed(inner)
            }));
            match bytes.get(close + 1) {
                None => return Ok(out),
                Some(&b) if b == sep => i = close + 2,
                Some(_) => {
                    return Err(format!(
                        "text after the closing quote at byte {close} (quote the whole field)"
                    ))
                }
            }
        } else {
            let end = bytes
                .get(i..)
                .and_then(|r| r.iter().position(|&b| b == sep))
                .map_or(bytes.len(), |p| i + p);
            let s = line.get(i..end).unwrap_or("");
            if let Some(q) = s.find('"') {
                return Err(format!(
                    "quote inside an unquoted field at byte {} (quote the whole field)",
                    i + q
                ));
            }
            out.push(Field::Plain(s));
            if end >= bytes.len() {
                return Ok(out);
            }
            i = end + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Schema;

    fn texts(line: &str) -> Vec<String> {
        split_fields(line, b',')
            .unwrap()
            .iter()
            .map(|f| f.text().to_string())
            .collect()
    }

    #[test]
    fn rfc4180_fields() {
        assert_eq!(texts("a,b,,c"), ["a", "b", "", "c"]);
        assert_eq!(
            texts(r#""a,1","say ""hi""",x"#),
            ["a,1", r#"say "hi""#, "x"]
        );
        assert_eq!(texts(r#""",a,"#), ["", "a", ""]);
        assert_eq!(texts(""), [""]);
        assert!(split_fields(r#""open,a"#, b',')
            .unwrap_err()
            .contains("not closed"));
        assert!(split_fields(r#""a"b,c"#, b',')
            .unwrap_err()
            .contains("after the closing quote"));
        assert!(split_fields(r#"a"b,c"#, b',')
            .unwrap_err()
            .contains("unquoted"));
        assert_eq!(split_fields("a;b", b';').unwrap().len(), 2);
    }

    fn catalog() -> Catalog {
        let s: Schema = serde_json::from_str(
            r#"{"table":"trade","route":{"source":"ticks"},"csv":{},
                "columns":[
                  {"name":"time","type":"timespan","stamp":"tickerplant"},
                  {"name":"sym","type":"symbol","csv":"Ticker"},
                  {"name":"price","type":"float","source":"/trade/px"},
                  {"name":"size","type":"long"},
                  {"name":"venue","type":"symbol","nullable":true},
                  {"name":"note","type":"string","nullable":true}]}"#,
        )
        .unwrap();
        Catalog::from_schemas(vec![s]).unwrap()
    }

    #[test]
    fn header_maps_by_name_and_lines_convert() {
        let c = catalog();
        let t = c.csv_table("ticks").unwrap();
        assert_eq!(c.csv_table("other"), None);
        let h = c.csv_header(t, "\u{feff}size,px,Ticker,note", 1).unwrap();
        let mut b = BatchBuilder::new();
        let rows = c
            .decode_csv_line(&h, r#"100,1.5,IBM,"a, ""quoted"" note""#, 2, &mut b)
            .unwrap();
        assert_eq!(rows.rows, 1);
        c.decode_csv_line(&h, "7,2,MSFT,", 3, &mut b).unwrap();
        assert_eq!(b.rows(), 2);
        let k = b.run_to_k(0, ".u.upd").unwrap();
        let shown = format!("{k:?}");
        assert!(shown.contains("IBM") && shown.contains("MSFT"), "{shown}");
        let note = format!("{:?}", "a, \"quoted\" note".as_bytes());
        assert!(shown.contains(&note), "{shown}");

        let e = c.decode_csv_line(&h, "x,1.5,IBM,", 4, &mut b).unwrap_err();
        assert_eq!(e.line(), 4);
        assert_eq!(e.column(), Some("size"));
        assert!(
            e.to_string()
                .contains("CSV line 4: table trade, column size"),
            "{e}"
        );
        let e = c.decode_csv_line(&h, "1,2", 5, &mut b).unwrap_err();
        assert!(e.to_string().contains("expected 4 fields"), "{e}");
        let e = c.decode_csv_line(&h, ",2,IBM,", 6, &mut b).unwrap_err();
        assert!(
            matches!(
                &e,
                CsvError::Value {
                    error: RecordError::MissingField { .. },
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(b.rows(), 2, "failed lines leave no rows");
    }

    #[test]
    fn header_without_a_required_column_is_refused() {
        let c = catalog();
        let e = c.csv_header(0, "size,price,note", 1).unwrap_err();
        assert!(e.to_string().contains("required column sym"), "{e}");
        assert!(e.to_string().contains("\"Ticker\""), "{e}");
        let e = c.csv_header(0, "Ticker,price,size,size", 1).unwrap_err();
        assert!(e.to_string().contains("repeated"), "{e}");
        // The column name wins over the source's last segment.
        let h = c.csv_header(0, "Ticker,price,size", 1).unwrap();
        assert_eq!(h.map, vec![Some(0), Some(1), Some(2), None, None]);
    }

    #[test]
    fn catalog_checks_csv_mappings() {
        let bad: Schema = serde_json::from_str(
            r#"{"table":"t","route":{"field":"k","equals":"v"},"csv":{"separator":"ab"},
                "columns":[{"name":"a","type":"long","csv":""}]}"#,
        )
        .unwrap();
        let e = Catalog::from_schemas(vec![bad]).unwrap_err().to_string();
        assert!(e.contains("csv: separator"), "{e}");
        assert!(e.contains("empty header name"), "{e}");
        assert!(e.contains("routed by source"), "{e}");
        let no_section: Schema = serde_json::from_str(
            r#"{"table":"t","route":{"default":true},"columns":[{"name":"a","type":"long","csv":"A"}]}"#,
        )
        .unwrap();
        let e = Catalog::from_schemas(vec![no_section])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no csv section"), "{e}");
    }
}
