//! X-Ray through the Lambda adapter's `handle` (what `bootstrap` runs for
//! each invocation): with a sampled trace header and
//! `AWS_XRAY_DAEMON_ADDRESS` pointing at a UDP listener on loopback, every
//! log line the invocation writes carries the trace id, and one
//! subsegment per stage reaches the listener under the header's root and
//! parent, placed in time within the invocation.

mod bridge_support;

use std::io::Write;
use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bridge_support::{bad_trade, kinesis_shard0, trade};
use lambda_runtime::Context;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::pipeline::{SchemaDecoder, TickerplantLink};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::tp::RunningTp;
use tickbridge::tplink::TpLink;

const ROOT: &str = "1-67890abc-0123456789abcdef01234567";
const PARENT: &str = "53995c3f42cd8ad8";
const STAGES: [&str; 6] = [
    "parse",
    "dedupe",
    "decode",
    "quarantine",
    "publish",
    "commit",
];

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

/// The keys of one JSON object in order, repeats kept (a `Value` would
/// keep only the last of two).
fn keys(line: &str) -> Vec<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Vec<String>, A::Error> {
            let mut out = Vec::new();
            while let Some((k, _)) = m.next_entry::<String, IgnoredAny>()? {
                out.push(k);
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(line);
    de.deserialize_map(Keys)
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"))
}

fn epoch_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

async fn app(tp: &RunningTp) -> App {
    let config = Config::from_vars([
        ("TICKBRIDGE_TP".to_string(), tp.local_addr().to_string()),
        ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
    ])
    .unwrap();
    let catalog = Arc::new(load_catalog(&config).unwrap());
    let mut link = TpLink::from_config(&config).unwrap();
    link.ensure_connected(Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    App::with_parts(
        config,
        Store::Memory(MemoryStore::new()),
        link,
        Quarantine::Log(LogQuarantine),
        SchemaDecoder::new(catalog, true),
    )
}

fn context(request_id: &str, header: &str) -> Context {
    let mut c = Context::default();
    c.request_id = request_id.to_string();
    c.deadline = (epoch_s() * 1000.0) as u64 + 30_000;
    c.xray_trace_id = Some(header.to_string());
    c
}

/// Runs one invocation with the Lambda's log subscriber on this thread;
/// returns its log lines.
fn invoke(rt: &tokio::runtime::Runtime, app: &App, event: &Value, ctx: &Context) -> Vec<String> {
    let buf = Buf::default();
    let out = buf.clone();
    let sub =
        tickbridge::xray::log::subscriber(tracing_subscriber::EnvFilter::new("debug"), move || {
            out.clone()
        });
    let body = event.to_string().into_bytes();
    let response = tracing::subscriber::with_default(sub, || {
        rt.block_on(tickbridge::lambda::handle(app, &body, ctx))
    });
    let response = serde_json::to_value(response.expect("the invocation succeeds")).unwrap();
    assert_eq!(response, serde_json::json!({"batchItemFailures": []}));
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    text.lines().map(str::to_string).collect()
}

#[test]
fn an_invocation_logs_its_trace_id_and_sends_one_subsegment_per_stage() {
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The only test in this binary: nothing else reads the variable.
    std::env::set_var(
        tickbridge::xray::DAEMON_ADDRESS_VAR,
        daemon.local_addr().unwrap().to_string(),
    );

    // The stand-in runs on its own runtime, so only the invocation's
    // lines reach the captured subscriber.
    let tp_rt = tokio::runtime::Runtime::new().unwrap();
    let tp = tp_rt.block_on(bridge_support::tp());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(app(&tp));

    // A bad record in the middle: quarantined (a WARN line), so every
    // stage has work.
    let header = format!("Root={ROOT};Parent={PARENT};Sampled=1;Lineage=a87bd80c:0");
    let event = kinesis_shard0(
        "xray",
        &[
            (1, trade(1, "A")),
            (2, bad_trade(2, "B")),
            (3, trade(3, "C")),
        ],
    );
    let before = epoch_s();
    let lines = invoke(&rt, &app, &event, &context("req-xray", &header));
    let after = epoch_s();

    assert!(lines.len() >= 2, "{lines:?}");
    for line in &lines {
        let k = keys(line);
        let mut unique = k.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), k.len(), "a key twice: {line}");
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["xray_trace_id"], header.as_str(), "{line}");
        assert!(
            v.as_object().unwrap().values().all(|x| !x.is_object()),
            "not flat: {line}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"WARN\"")),
        "the bad record's line is there: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"request_id\":\"req-xray\"")),
        "the summary line is there: {lines:?}"
    );

    let mut subs = Vec::new();
    let mut datagram = [0u8; 65_536];
    for _ in STAGES {
        let n = daemon.recv(&mut datagram).expect("a subsegment within 5 s");
        let text = std::str::from_utf8(&datagram[..n]).unwrap();
        let (head, body) = text
            .split_once('\n')
            .expect("header line, then the document");
        assert_eq!(
            serde_json::from_str::<Value>(head).unwrap(),
            serde_json::json!({"format": "json", "version": 1})
        );
        subs.push(serde_json::from_str::<Value>(body).unwrap());
    }
    let names: Vec<&str> = subs.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, STAGES);
    let mut ids = std::collections::HashSet::new();
    for s in &subs {
        assert_eq!(s["type"], "subsegment");
        assert_eq!(s["trace_id"], ROOT);
        assert_eq!(s["parent_id"], PARENT);
        let id = s["id"].as_str().unwrap();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{s}"
        );
        assert!(ids.insert(id.to_string()), "id {id} twice");
        let (start, end) = (
            s["start_time"].as_f64().unwrap(),
            s["end_time"].as_f64().unwrap(),
        );
        assert!(
            before <= start && start <= end && end <= after,
            "{s} not within [{before}, {after}]"
        );
    }
    let start = |i: usize| subs[i]["start_time"].as_f64().unwrap();
    let end = |i: usize| subs[i]["end_time"].as_f64().unwrap();
    for i in 1..subs.len() {
        assert!(
            start(i - 1) <= start(i),
            "{} starts before {}",
            names[i],
            names[i - 1]
        );
    }
    // Quarantine, publish and commit run one after the other (dedupe and
    // decode interleave when tables have payload keys). A millisecond of
    // slack: starts are wall-clock times, lengths monotonic-clock ones.
    for i in 3..subs.len() {
        assert!(
            start(i) >= end(i - 1) - 0.001,
            "{} overlaps {}",
            names[i],
            names[i - 1]
        );
    }

    // Not sampled: the lines still carry the id, nothing is sent.
    let header = format!("Root={ROOT};Parent={PARENT};Sampled=0");
    let event = kinesis_shard0("xray", &[(4, trade(4, "D"))]);
    let lines = invoke(&rt, &app, &event, &context("req-unsampled", &header));
    assert!(!lines.is_empty());
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["xray_trace_id"], header.as_str(), "{line}");
    }
    daemon
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(
        daemon.recv(&mut datagram).is_err(),
        "a subsegment was sent for an unsampled trace"
    );
    drop(tp);
}
