//! CloudWatch Embedded Metric Format: one JSON line per invocation that
//! CloudWatch turns into metrics without any API call (no cost, no latency).

use serde_json::{json, Map, Value};

use crate::pipeline::Summary;

/// The EMF documents for one batch: the batch counters, and one per table
/// with its row count (dimension `Table`).
pub fn emf_lines(
    namespace: &str,
    source: &str,
    summary: &Summary,
    timestamp_ms: i64,
) -> Vec<String> {
    let counters: [(&str, f64, &str); 16] = [
        ("Records", summary.records as f64, "Count"),
        ("Lanes", summary.lanes as f64, "Count"),
        ("Forwarded", summary.forwarded as f64, "Count"),
        ("Duplicates", summary.duplicates as f64, "Count"),
        ("Quarantined", summary.quarantined as f64, "Count"),
        ("Failed", summary.failed as f64, "Count"),
        ("MessagesSent", summary.messages_sent as f64, "Count"),
        ("BytesSent", summary.bytes_sent as f64, "Bytes"),
        ("RefusedUpdates", summary.refused_updates as f64, "Count"),
        (
            "AcceptedBehindRefusal",
            summary.accepted_behind_refusal as f64,
            "Count",
        ),
        ("DynamoDbRequests", summary.dedupe_requests as f64, "Count"),
        ("DedupeMs", summary.stage_ms.dedupe, "Milliseconds"),
        ("DecodeMs", summary.stage_ms.decode, "Milliseconds"),
        ("QuarantineMs", summary.stage_ms.quarantine, "Milliseconds"),
        ("PublishMs", summary.stage_ms.publish, "Milliseconds"),
        ("CommitMs", summary.stage_ms.commit, "Milliseconds"),
    ];
    let mut doc = Map::new();
    doc.insert("Source".into(), json!(source));
    let mut defs = Vec::new();
    for (name, value, unit) in counters {
        doc.insert(name.into(), json!(value));
        defs.push(json!({"Name": name, "Unit": unit}));
    }
    doc.insert("RequestId".into(), json!(summary.request_id));
    doc.insert(
        "_aws".into(),
        aws_meta(namespace, timestamp_ms, &["Source"], defs),
    );
    let mut lines = vec![Value::Object(doc).to_string()];
    for (table, rows) in &summary.rows_per_table {
        let meta = aws_meta(
            namespace,
            timestamp_ms,
            &["Source", "Table"],
            vec![json!({"Name": "Rows", "Unit": "Count"})],
        );
        lines.push(
            json!({"_aws": meta, "Source": source, "Table": table, "Rows": rows}).to_string(),
        );
    }
    lines
}

fn aws_meta(namespace: &str, timestamp_ms: i64, dims: &[&str], metrics: Vec<Value>) -> Value {
    json!({
        "Timestamp": timestamp_ms,
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [dims],
            "Metrics": metrics,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_documents_declare_every_metric_they_carry() {
        let mut s = Summary {
            request_id: "r1".into(),
            records: 10,
            forwarded: 8,
            duplicates: 2,
            dedupe_requests: 2,
            ..Summary::default()
        };
        s.rows_per_table.insert("trade".into(), 8);
        let lines = emf_lines("tickbridge", "kinesis", &s, 1_700_000_000_000);
        assert_eq!(lines.len(), 2);
        let main: Value = serde_json::from_str(&lines[0]).unwrap();
        let defs = main["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        for d in defs {
            let name = d["Name"].as_str().unwrap();
            assert!(main[name].is_number(), "{name} declared but missing");
        }
        assert_eq!(main["Forwarded"], json!(8.0));
        assert_eq!(
            main["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Source"]])
        );
        let table: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(table["Table"], "trade");
        assert_eq!(table["Rows"], 8);
    }
}
