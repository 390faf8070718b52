//! What a client asked for: the few calls and queries the stand-in knows.

use crate::kdb::K;

#[derive(Debug, PartialEq)]
pub enum Request {
    /// `.u.upd[t;x]`, the function named by a symbol or a string.
    Upd { table: String, x: K },
    /// `.u.sub[t;s]`; `t` is `` ` `` for every table.
    Sub { table: String, syms: K },
    /// `""` or `::`: answered `::` once everything before it is done.
    Chaser,
    /// `.u.i`
    MsgCount,
    /// `count t`
    Count(String),
    /// `t`
    Table(String),
    /// `tables[]`
    Tables,
    /// `meta `t` or `meta t` (keyed, as q answers), `0!meta `t` (plain).
    Meta { table: String, keyed: bool },
    /// `type name`, e.g. `type .u.upd` (a dotted name allowed).
    TypeOf(String),
    /// A call of a namespaced function the stand-in does not define: q
    /// answers with the name as its error (`'.u.nope`).
    Undefined(String),
    /// Refused with this q error (`nyi`, `rank`, `type`).
    Refuse(&'static str),
}

pub fn classify(msg: K) -> Request {
    match msg {
        K::Identity => Request::Chaser,
        K::List(_, items) => call(items),
        other => match text_of(&other) {
            Some(text) => expression(text.trim()),
            None => Request::Refuse("nyi"),
        },
    }
}

/// A symbol or a string: how q clients name functions and send queries.
fn text_of(k: &K) -> Option<String> {
    match k {
        K::Symbol(_) | K::Vector(_, crate::kdb::Vector::Char(_)) => k.as_text(),
        _ => None,
    }
}

fn call(items: Vec<K>) -> Request {
    let mut it = items.into_iter();
    let Some(f) = it.next().as_ref().and_then(text_of) else {
        return Request::Refuse("nyi");
    };
    let args: Vec<K> = it.collect();
    let is_upd = f == ".u.upd";
    if !is_upd && f != ".u.sub" {
        // A name in a namespace is q's undefined-name error; a bare name
        // may be one of q's own (`exit`, `system`), which the stand-in
        // does not run.
        return if f.starts_with('.') && is_dotted_name(&f) {
            Request::Undefined(f)
        } else {
            Request::Refuse("nyi")
        };
    }
    let mut args = args.into_iter();
    let (Some(t), Some(second), None) = (args.next(), args.next(), args.next()) else {
        return Request::Refuse("rank");
    };
    // tick.q's `t` is a symbol; a string is not a table name there.
    let K::Symbol(table) = t else {
        return Request::Refuse("type");
    };
    if is_upd {
        Request::Upd { table, x: second }
    } else {
        Request::Sub {
            table,
            syms: second,
        }
    }
}

fn expression(text: &str) -> Request {
    match text {
        "" | "::" => Request::Chaser,
        ".u.i" => Request::MsgCount,
        "tables[]" | "tables()" | "tables`." | "tables`" => Request::Tables,
        _ => {
            if let Some(r) = meta_or_type(text) {
                return r;
            }
            if let Some(name) = text.strip_prefix("count ").map(str::trim) {
                let name = name.strip_prefix('`').unwrap_or(name);
                if is_name(name) {
                    return Request::Count(name.to_string());
                }
            }
            if is_name(text) {
                Request::Table(text.to_string())
            } else {
                Request::Refuse("nyi")
            }
        }
    }
}

/// `meta `t`, `meta t`, `0!meta `t`, `0!meta t`, `type name`.
fn meta_or_type(text: &str) -> Option<Request> {
    if let Some(name) = text.strip_prefix("type ").map(str::trim) {
        return is_dotted_name(name).then(|| Request::TypeOf(name.to_string()));
    }
    let (keyed, rest) = match text.strip_prefix("0!") {
        Some(rest) => (false, rest.trim_start()),
        None => (true, text),
    };
    let name = rest.strip_prefix("meta ")?.trim();
    let name = name.strip_prefix('`').unwrap_or(name);
    is_name(name).then(|| Request::Meta {
        table: name.to_string(),
        keyed,
    })
}

/// A q name, optionally in a namespace: `.u.upd`, `upd`, `.q.x1`.
fn is_dotted_name(s: &str) -> bool {
    let body = s.strip_prefix('.').unwrap_or(s);
    !body.is_empty() && body.split('.').all(is_name)
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_calls_and_queries() {
        let upd = K::list(vec![K::string(".u.upd"), K::sym("trade"), K::Long(1)]);
        assert_eq!(
            classify(upd),
            Request::Upd {
                table: "trade".into(),
                x: K::Long(1)
            }
        );
        let sub = K::list(vec![K::sym(".u.sub"), K::sym(""), K::sym("")]);
        assert!(matches!(classify(sub), Request::Sub { .. }));
        assert_eq!(classify(K::Identity), Request::Chaser);
        assert_eq!(classify(K::string("")), Request::Chaser);
        assert_eq!(classify(K::string(" .u.i ")), Request::MsgCount);
        assert_eq!(
            classify(K::string("count trade")),
            Request::Count("trade".into())
        );
        assert_eq!(classify(K::string("trade")), Request::Table("trade".into()));
        assert_eq!(classify(K::string("tables[]")), Request::Tables);
        assert_eq!(classify(K::string("exit 0")), Request::Refuse("nyi"));
        for (q, table, keyed) in [
            ("meta `trade", "trade", true),
            ("meta trade", "trade", true),
            (" 0!meta `quote ", "quote", false),
            ("0!meta quote", "quote", false),
        ] {
            assert_eq!(
                classify(K::string(q)),
                Request::Meta {
                    table: table.into(),
                    keyed
                },
                "{q}"
            );
        }
        assert_eq!(
            classify(K::string("type .u.upd")),
            Request::TypeOf(".u.upd".into())
        );
        assert_eq!(
            classify(K::string("type upd")),
            Request::TypeOf("upd".into())
        );
        assert_eq!(classify(K::string("type .u..x")), Request::Refuse("nyi"));
        assert_eq!(classify(K::string("meta 1+1")), Request::Refuse("nyi"));
        let unknown = K::list(vec![K::sym("foo"), K::Long(1)]);
        assert_eq!(classify(unknown), Request::Refuse("nyi"));
        let nope = K::list(vec![K::sym(".u.nope"), K::sym("trade"), K::Long(1)]);
        assert_eq!(classify(nope), Request::Undefined(".u.nope".into()));
        let junk = K::list(vec![K::sym("1+"), K::Long(1)]);
        assert_eq!(classify(junk), Request::Refuse("nyi"));
        let rank = K::list(vec![K::sym(".u.upd"), K::sym("trade")]);
        assert_eq!(classify(rank), Request::Refuse("rank"));
        assert_eq!(classify(K::Long(3)), Request::Refuse("nyi"));
    }
}
