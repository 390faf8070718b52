//! X-Ray segment documents: the UDP datagram the daemon reads is a JSON
//! header line, `{"format": "json", "version": 1}`, then the document.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use serde::Serialize;

/// One stage of an invocation, placed in time (epoch seconds, as X-Ray
/// wants them, fractional).
#[derive(Clone, Debug, PartialEq)]
pub struct Subsegment {
    pub name: &'static str,
    pub start_time: f64,
    pub end_time: f64,
}

#[derive(Serialize)]
struct Document<'a> {
    name: &'a str,
    id: String,
    trace_id: &'a str,
    parent_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    start_time: f64,
    end_time: f64,
}

/// The datagram for `sub` under the segment `parent_id` of trace `root`.
pub fn subsegment_document(sub: &Subsegment, root: &str, parent_id: &str) -> String {
    let doc = Document {
        name: sub.name,
        id: new_id(),
        trace_id: root,
        parent_id,
        kind: "subsegment",
        start_time: sub.start_time,
        end_time: sub.end_time,
    };
    // Serializing plain strings and finite floats cannot fail; a NaN time
    // would become null, which the daemon rejects without harm.
    let body = serde_json::to_string(&doc).unwrap_or_default();
    format!("{{\"format\": \"json\", \"version\": 1}}\n{body}")
}

/// A fresh 64-bit id as 16 lowercase hex digits. Ids only need to be
/// unique within a trace: the standard library's per-process random
/// SipHash keys over a counter give that without a random-number crate.
pub fn new_id() -> String {
    static KEYS: OnceLock<RandomState> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = KEYS.get_or_init(RandomState::new).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_the_header_line_and_the_fields_x_ray_reads() {
        let sub = Subsegment {
            name: "publish",
            start_time: 1_700_000_000.25,
            end_time: 1_700_000_000.5,
        };
        let doc = subsegment_document(
            &sub,
            "1-5759e988-bd862e3fe1be46a994272793",
            "53995c3f42cd8ad8",
        );
        let (head, body) = doc.split_once('\n').unwrap();
        assert_eq!(head, r#"{"format": "json", "version": 1}"#);
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["type"], "subsegment");
        assert_eq!(v["name"], "publish");
        assert_eq!(v["trace_id"], "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!(v["parent_id"], "53995c3f42cd8ad8");
        assert_eq!(v["start_time"], 1_700_000_000.25);
        assert_eq!(v["end_time"], 1_700_000_000.5);
        let id = v["id"].as_str().unwrap();
        assert_eq!(id.len(), 16);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    }

    #[test]
    fn ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
