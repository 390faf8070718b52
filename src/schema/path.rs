//! Where a column's value lives in a record: a JSON pointer (`/a/b/0`,
//! RFC 6901 with `~0` and `~1` escapes) or a dotted path (`a.b.0`). A
//! segment that is a decimal number also indexes arrays.

use super::json::{Kind, Tape};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    /// As written in the schema, for messages.
    pub text: String,
    segments: Vec<Segment>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    key: String,
    index: Option<usize>,
}

impl FieldPath {
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let raw: Vec<String> = if let Some(rest) = text.strip_prefix('/') {
            rest.split('/')
                .map(|s| {
                    if s.replace("~0", "").replace("~1", "").contains('~') {
                        Err(format!(
                            "bad escape in JSON pointer {text:?} (use ~0 or ~1)"
                        ))
                    } else {
                        Ok(s.replace("~1", "/").replace("~0", "~"))
                    }
                })
                .collect::<Result<_, _>>()?
        } else {
            if text.is_empty() {
                return Err("empty field path".into());
            }
            let parts: Vec<String> = text.split('.').map(str::to_string).collect();
            if parts.iter().any(String::is_empty) {
                return Err(format!("empty segment in dotted path {text:?}"));
            }
            parts
        };
        let segments = raw
            .into_iter()
            .map(|key| Segment {
                index: (!key.is_empty()
                    && key.bytes().all(|b| b.is_ascii_digit())
                    && (key == "0" || !key.starts_with('0')))
                .then(|| key.parse().ok())
                .flatten(),
                key,
            })
            .collect();
        Ok(FieldPath {
            text: text.to_string(),
            segments,
        })
    }

    /// A single-segment path's key (delimited text looks fields up by name).
    pub fn single_key(&self) -> Option<&str> {
        match self.segments.as_slice() {
            [s] => Some(&s.key),
            _ => None,
        }
    }

    /// The last segment's key (a CSV column's default header name).
    pub fn last_key(&self) -> Option<&str> {
        self.segments.last().map(|s| s.key.as_str())
    }

    /// Follows the path from node `at`; `None` when any step is missing.
    pub fn find(&self, tape: &Tape, text: &str, at: usize) -> Option<usize> {
        let mut cur = at;
        for seg in &self.segments {
            let node = tape.node(cur)?;
            cur = match node.kind {
                Kind::Object => tape.get(text, cur, &seg.key)?,
                Kind::Array => tape.index(cur, seg.index?)?,
                _ => return None,
            };
        }
        Some(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_and_dotted_forms() {
        let text = r#"{"a":{"b/c":[1,{"d":2}],"e~f":3},"x.y":4}"#;
        let mut t = Tape::new();
        t.parse(text, 64).unwrap();
        let at = |p: &str| {
            FieldPath::parse(p)
                .unwrap()
                .find(&t, text, 0)
                .map(|i| t.raw(text, i))
        };
        assert_eq!(at("/a/b~1c/1/d"), Some("2"));
        assert_eq!(at("/a/e~0f"), Some("3"));
        assert_eq!(at("a.b/c.0"), Some("1"));
        assert_eq!(at("/x.y"), Some("4"));
        assert_eq!(at("/a/b~1c/2"), None);
        assert_eq!(at("/a/b~1c/01"), None);
        assert_eq!(at("/nope"), None);
        assert!(FieldPath::parse("a..b").is_err());
        assert!(FieldPath::parse("/a~2").is_err());
        assert!(FieldPath::parse("").is_err());
    }
}
