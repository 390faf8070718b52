//! What kdb+tick's `tick.q` would refuse or break on, checked on the schema
//! files before anyone loads `schema q` output into it.
//!
//! `.u.tick` (run once at start) does
//! `if[not min(`time`sym~2#key flip value@)each t;'`timesym]` and then
//! ``@[;`sym;`g#]each t``; its `.u.upd` stamps a timespan when the first
//! column of an update is not one, then publishes `flip (key flip value t)!x`.
//! So every table must be a plain (unkeyed) table whose first two columns
//! are `time` (a timespan) and `sym` (a symbol). These rules are not part of
//! [`Catalog::load`](super::Catalog::load): the bridge can also feed a q
//! process that is not tick.q, where they are only advice.

use super::catalog::{Catalog, Issue};
use super::model::{QType, Schema};

/// What the schemas are held to by `schema check`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Target {
    /// kdb+tick's tick.q: its rules are errors.
    #[default]
    Tick,
    /// Another q process: tick.q's rules are only warnings.
    Other,
}

/// One table's breaches of tick.q's rules (empty when it would load).
pub fn tick_q_issues(schema: &Schema, file: Option<String>) -> Vec<Issue> {
    let table = Some(schema.table.clone());
    let mut issues = Vec::new();
    let mut push = |column: Option<&str>, message: String| {
        issues.push(Issue {
            file: file.clone(),
            table: table.clone(),
            column: column.map(str::to_string),
            message,
        })
    };
    let names: Vec<&str> = schema.columns.iter().map(|c| c.name.as_str()).collect();
    if names.get(..2) != Some(&["time", "sym"][..]) {
        push(
            None,
            format!(
                "tick.q needs the first two columns to be time and sym (it fails with 'timesym at start); columns are {}",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        );
    }
    if let Some(c) = schema.columns.iter().find(|c| c.name == "time") {
        if c.qtype != QType::Timespan {
            push(
                Some("time"),
                format!(
                    "tick.q needs time to be a timespan (n), not {}: its .u.upd prepends a timespan \
                     to every update whose first column is not one, so each update would carry one \
                     column too many and fail with 'length",
                    c.qtype.name()
                ),
            );
        }
    }
    if let Some(c) = schema.columns.iter().find(|c| c.name == "sym") {
        if c.qtype != QType::Symbol {
            push(
                Some("sym"),
                format!(
                    "tick.q needs sym to be a symbol (s), not {}: it applies `g# to sym, and \
                     .u.sub[t;syms] selects rows with `sym in syms` on a symbol list, which would \
                     match no row",
                    c.qtype.name()
                ),
            );
        }
    }
    if !schema.key.is_empty() {
        push(
            None,
            format!(
                "tick.q holds unkeyed tables only: .u.tick and .u.upd read the columns with \
                 `key flip value t`, which fails on a keyed table (key {}); key the table \
                 downstream (e.g. in the RDB) instead",
                schema.key.join(", ")
            ),
        );
    }
    issues
}

impl Catalog {
    /// Every table's breaches of tick.q's rules, in catalog order.
    pub fn tick_q_issues(&self) -> Vec<Issue> {
        self.tables()
            .iter()
            .flat_map(|t| tick_q_issues(t.schema(), None))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(text: &str) -> Schema {
        serde_json::from_str(text).expect("schema")
    }

    fn messages(text: &str) -> Vec<String> {
        tick_q_issues(&schema(text), None)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_tick_table_passes() {
        let ok = r#"{"table":"t","columns":[{"name":"time","type":"timespan"},{"name":"sym","type":"symbol"},{"name":"x","type":"long"}]}"#;
        assert!(messages(ok).is_empty());
    }

    #[test]
    fn each_rule_names_table_and_why() {
        let no_sym = r#"{"table":"t","columns":[{"name":"time","type":"timespan"},{"name":"px","type":"float"}]}"#;
        assert_eq!(
            messages(no_sym),
            ["table t: tick.q needs the first two columns to be time and sym (it fails with 'timesym at start); columns are time, px"]
        );
        let swapped = r#"{"table":"t","columns":[{"name":"sym","type":"symbol"},{"name":"time","type":"timespan"}]}"#;
        assert!(messages(swapped)[0].contains("columns are sym, time"));
        let stamp = r#"{"table":"t","columns":[{"name":"time","type":"timestamp"},{"name":"sym","type":"symbol"}]}"#;
        let m = messages(stamp);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].starts_with(
            "table t: column time: tick.q needs time to be a timespan (n), not timestamp"
        ));
        let text_sym = r#"{"table":"t","columns":[{"name":"time","type":"timespan"},{"name":"sym","type":"string"}]}"#;
        let m = messages(text_sym);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0]
            .starts_with("table t: column sym: tick.q needs sym to be a symbol (s), not string"));
        let keyed = r#"{"table":"t","key":["sym"],"columns":[{"name":"time","type":"timespan"},{"name":"sym","type":"symbol"}]}"#;
        let m = messages(keyed);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(m[0].contains("unkeyed tables only") && m[0].contains("(key sym)"));
    }

    #[test]
    fn the_embedded_examples_load_in_tick_q() {
        let schemas = crate::schema::embedded::schemas().expect("embedded");
        let c = Catalog::from_schemas(schemas).expect("catalog");
        assert_eq!(c.tick_q_issues(), Vec::<Issue>::new());
    }
}
