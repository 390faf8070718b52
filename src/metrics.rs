//! CloudWatch Embedded Metric Format: one JSON line per batch that
//! CloudWatch turns into metrics without any API call (no cost, no latency).
//!
//! A [`Metrics`] is the counter set of one batch (one Lambda invocation, or
//! one batch of the polling runner); the events of `crate::telemetry` fill
//! it and a [`MetricsSink`] writes it out, or not.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Map, Value};

use crate::pipeline::Summary;

/// A CloudWatch unit, as EMF spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Bytes,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Bytes => "Bytes",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// The counters of one batch, in the order they were first counted, and
/// the rows sent per table (each its own document, dimension `Table`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    source: String,
    request_id: String,
    counters: Vec<(&'static str, Unit, f64)>,
    rows_per_table: BTreeMap<String, usize>,
}

impl Metrics {
    pub fn new(source: &str, request_id: &str) -> Metrics {
        Metrics {
            source: source.to_string(),
            request_id: request_id.to_string(),
            ..Metrics::default()
        }
    }

    /// Adds `value` to the counter `name` (created at zero).
    pub fn count(&mut self, name: &'static str, unit: Unit, value: f64) {
        match self.counters.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, v)) => *v += value,
            None => self.counters.push((name, unit, value)),
        }
    }

    pub fn rows(&mut self, table: &str, rows: usize) {
        *self.rows_per_table.entry(table.to_string()).or_default() += rows;
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.counters
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| *v)
    }

    /// Every counter a batch summary holds (the names the dashboards use).
    pub fn of_batch(source: &str, s: &Summary) -> Metrics {
        let mut m = Metrics::new(source, &s.request_id);
        let counts: [(&'static str, f64, Unit); 11] = [
            ("Records", s.records as f64, Unit::Count),
            ("Lanes", s.lanes as f64, Unit::Count),
            ("Forwarded", s.forwarded as f64, Unit::Count),
            ("Duplicates", s.duplicates as f64, Unit::Count),
            ("Quarantined", s.quarantined as f64, Unit::Count),
            ("Failed", s.failed as f64, Unit::Count),
            ("MessagesSent", s.messages_sent as f64, Unit::Count),
            ("BytesSent", s.bytes_sent as f64, Unit::Bytes),
            ("RefusedUpdates", s.refused_updates as f64, Unit::Count),
            (
                "AcceptedBehindRefusal",
                s.accepted_behind_refusal as f64,
                Unit::Count,
            ),
            ("DynamoDbRequests", s.dedupe_requests as f64, Unit::Count),
        ];
        for (name, value, unit) in counts {
            m.count(name, unit, value);
        }
        let t = &s.stage_ms;
        for (name, ms) in [
            ("HandlerMs", s.handler_ms),
            ("ParseMs", t.parse),
            ("DedupeMs", t.dedupe),
            ("DecodeMs", t.decode),
            ("QuarantineMs", t.quarantine),
            ("PublishMs", t.publish),
            ("CommitMs", t.commit),
        ] {
            m.count(name, Unit::Milliseconds, crate::telemetry::ms3(ms));
        }
        for (table, rows) in &s.rows_per_table {
            m.rows(table, *rows);
        }
        m
    }

    /// The EMF documents: the counters (dimension `Source`), then one per
    /// table with its row count (dimensions `Source`, `Table`).
    pub fn emf_lines(&self, namespace: &str, timestamp_ms: i64) -> Vec<String> {
        let mut doc = Map::new();
        doc.insert("Source".into(), json!(self.source));
        let mut defs = Vec::new();
        for (name, unit, value) in &self.counters {
            doc.insert((*name).into(), json!(value));
            defs.push(json!({"Name": name, "Unit": unit.as_str()}));
        }
        doc.insert("RequestId".into(), json!(self.request_id));
        doc.insert(
            "_aws".into(),
            aws_meta(namespace, timestamp_ms, &["Source"], defs),
        );
        let mut lines = vec![Value::Object(doc).to_string()];
        for (table, rows) in &self.rows_per_table {
            let meta = aws_meta(
                namespace,
                timestamp_ms,
                &["Source", "Table"],
                vec![json!({"Name": "Rows", "Unit": "Count"})],
            );
            lines.push(
                json!({"_aws": meta, "Source": self.source, "Table": table, "Rows": rows})
                    .to_string(),
            );
        }
        lines
    }
}

/// The EMF documents for one batch summary.
pub fn emf_lines(
    namespace: &str,
    source: &str,
    summary: &Summary,
    timestamp_ms: i64,
) -> Vec<String> {
    Metrics::of_batch(source, summary).emf_lines(namespace, timestamp_ms)
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

/// Where a batch's metrics go. The Lambda always writes EMF (CloudWatch
/// reads its stdout); `tickbridge run` writes EMF only when asked
/// (`--metrics emf`), so a terminal shows log lines, not metric documents.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MetricsSink {
    #[default]
    Off,
    /// EMF lines on stdout, in this CloudWatch namespace.
    Emf { namespace: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metrics {0:?}: expected emf or off")]
pub struct MetricsSinkError(String);

impl MetricsSink {
    /// `emf` or `off` (a setting's or flag's value).
    pub fn parse(value: &str, namespace: &str) -> Result<MetricsSink, MetricsSinkError> {
        match value.trim() {
            "emf" => Ok(MetricsSink::Emf {
                namespace: namespace.to_string(),
            }),
            "off" => Ok(MetricsSink::Off),
            other => Err(MetricsSinkError(other.to_string())),
        }
    }

    /// Writes the documents to stdout, all in one write so lines from
    /// concurrent writers (shard tasks, log lines) never interleave.
    pub fn write(&self, metrics: &Metrics) {
        let MetricsSink::Emf { namespace } = self else {
            return;
        };
        let mut text = String::new();
        for line in metrics.emf_lines(namespace, crate::clock::now_ms()) {
            text.push_str(&line);
            text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
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
        s.stage_ms.publish = 1.234_567_8;
        s.stage_ms.parse = 2.5;
        s.handler_ms = 9.0;
        s.rows_per_table.insert("trade".into(), 8);
        let lines = emf_lines("tickbridge", "kinesis", &s, 1_700_000_000_000);
        assert_eq!(lines.len(), 2);
        let main: Value = serde_json::from_str(&lines[0]).unwrap();
        let defs = main["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap();
        assert_eq!(defs.len(), 18);
        for d in defs {
            let name = d["Name"].as_str().unwrap();
            assert!(main[name].is_number(), "{name} declared but missing");
        }
        assert_eq!(main["Forwarded"], json!(8.0));
        assert_eq!(main["PublishMs"], json!(1.235));
        assert_eq!(main["ParseMs"], json!(2.5));
        assert_eq!(main["HandlerMs"], json!(9.0));
        assert_eq!(main["RequestId"], "r1");
        assert_eq!(main["_aws"]["Timestamp"], json!(1_700_000_000_000i64));
        assert_eq!(
            main["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Source"]])
        );
        let table: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(table["Table"], "trade");
        assert_eq!(table["Rows"], 8);
        assert_eq!(
            table["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Source", "Table"]])
        );
    }

    #[test]
    fn counters_add_up_and_keep_their_first_unit() {
        let mut m = Metrics::new("sqs", "r");
        m.count("Failed", Unit::Count, 1.0);
        m.count("Failed", Unit::Count, 2.0);
        assert_eq!(m.get("Failed"), Some(3.0));
        assert_eq!(m.get("Nope"), None);
    }

    #[test]
    fn the_sink_is_emf_or_off() {
        assert_eq!(MetricsSink::parse("off", "ns"), Ok(MetricsSink::Off));
        assert_eq!(
            MetricsSink::parse("emf", "ns"),
            Ok(MetricsSink::Emf {
                namespace: "ns".into()
            })
        );
        let e = MetricsSink::parse("json", "ns").unwrap_err().to_string();
        assert_eq!(e, "metrics \"json\": expected emf or off");
    }
}
