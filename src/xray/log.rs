//! Flat JSON log lines that carry the fields of the bridge's spans.
//!
//! `tracing_subscriber`'s JSON format can flatten an event's fields into
//! the line, but span fields only go into nested `span`/`spans` objects.
//! CloudWatch Logs Insights and the operators' queries want one flat
//! object: [`FlatJson`] writes `timestamp`, `level`, the event's fields,
//! `target`, then the fields of the enclosing spans of this crate (such as
//! the invocation's `xray_trace_id`), each key once: a key already written
//! is not written again (an event's own field wins over a span's).
//!
//! Spans of other crates are left out: `lambda_runtime`'s own invocation
//! span carries `requestId` and `xrayTraceId`, the same facts the bridge's
//! lines already name in its own words.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Spans whose target starts with this are flattened into lines.
const OWN_TARGET: &str = "tickbridge";

/// The event formatter; use it with the JSON field formatter
/// (`fmt().json()…event_format(FlatJson)`, as [`subscriber`] does) so
/// span fields are stored as JSON.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlatJson;

/// The Lambda's subscriber: flat JSON lines, no colours, into `writer`.
pub fn subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .event_format(FlatJson)
        .finish()
}

/// A line's keys in order, each once.
#[derive(Default)]
struct Line {
    pairs: Vec<(String, Value)>,
    seen: HashSet<String>,
}

impl Line {
    fn put(&mut self, key: &str, value: Value) {
        if self.seen.insert(key.to_string()) {
            self.pairs.push((key.to_string(), value));
        }
    }

    fn write(&self, w: &mut Writer<'_>) -> fmt::Result {
        w.write_char('{')?;
        for (n, (k, v)) in self.pairs.iter().enumerate() {
            if n > 0 {
                w.write_char(',')?;
            }
            let k = serde_json::to_string(k).map_err(|_| fmt::Error)?;
            let v = serde_json::to_string(v).map_err(|_| fmt::Error)?;
            w.write_str(&k)?;
            w.write_char(':')?;
            w.write_str(&v)?;
        }
        w.write_str("}\n")
    }
}

impl Visit for Line {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON number; their text says more than null.
        let v = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.put(field.name(), v);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field.name(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field.name(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field.name(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field.name(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field.name(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // The message is `format_args!`, whose Debug is its text.
        self.put(field.name(), format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Line::default();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.put("timestamp", timestamp.into());
        line.put("level", meta.level().as_str().into());
        event.record(&mut line);
        line.put("target", meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            // Innermost first: a nested span's field wins over an outer one's.
            for span in scope {
                if !span.metadata().target().starts_with(OWN_TARGET) {
                    continue;
                }
                let ext = span.extensions();
                let Some(fields) = ext.get::<FormattedFields<N>>() else {
                    continue;
                };
                // Stored as a JSON object by the JSON field formatter; any
                // other formatter's text is not flattened.
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&fields.fields) {
                    let map: Map<String, Value> = map;
                    for (k, v) in map {
                        line.put(&k, v);
                    }
                }
            }
        }
        line.write(&mut writer)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn capture(f: impl FnOnce()) -> Vec<String> {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = subscriber(EnvFilter::new("debug"), move || out.clone());
        tracing::subscriber::with_default(sub, f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_string).collect()
    }

    #[test]
    fn span_fields_are_flat_and_keys_appear_once() {
        let lines = capture(|| {
            let span = crate::xray::invocation_span(Some("Root=1-a-b;Parent=c;Sampled=1"));
            let _g = span.enter();
            tracing::info!(records = 3, ratio = 0.5, ok = true, "batch done");
            // An event field named like a span field keeps its own value.
            tracing::warn!(xray_trace_id = "mine", "odd");
            let other = tracing::info_span!(target: "lambda_runtime", "rt", requestId = "r1");
            let _o = other.enter();
            tracing::debug!(error = %"x\ny", "inner");
        });
        assert_eq!(lines.len(), 3, "{lines:?}");
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(first["xray_trace_id"], "Root=1-a-b;Parent=c;Sampled=1");
        assert_eq!(first["message"], "batch done");
        assert_eq!(first["records"], 3);
        assert_eq!(first["ratio"], 0.5);
        assert_eq!(first["ok"], true);
        assert_eq!(first["level"], "INFO");
        assert!(first.get("span").is_none() && first.get("spans").is_none());
        assert_eq!(
            lines[1].matches("\"xray_trace_id\"").count(),
            1,
            "{}",
            lines[1]
        );
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["xray_trace_id"], "mine");
        let third: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!(third["xray_trace_id"], "Root=1-a-b;Parent=c;Sampled=1");
        assert!(third.get("requestId").is_none(), "{}", lines[2]);
        assert_eq!(third["error"], "x\ny");
    }

    #[test]
    fn lines_outside_an_invocation_have_no_trace_id() {
        let lines = capture(|| tracing::info!("ready"));
        let v: Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(v.get("xray_trace_id").is_none());
        assert_eq!(v["message"], "ready");
    }
}
