//! The Lambda adapter (`src/lambda.rs`) through the real `bootstrap` binary
//! and a runtime API on loopback (the one `bench bridge` uses): the body the
//! runtime receives reaches `App::handle` intact (the runtime no longer
//! parses it, so nothing may be lost or re-encoded on the way), and a body
//! that is not an event is that invocation's error, not the process's end.

mod bridge_support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge_support::{kinesis_shard0, msg, sqs};
use serde_json::{json, Value};
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::kdb::Table;
use tickbridge::pipeline::{BatchContext, SchemaDecoder, TickerplantLink};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::tp::RunningTp;
use tickbridge::tplink::TpLink;
use tickbridge_tools::bench::lambda_process::Function;
use tickbridge_tools::bench::runtime_api::{Answer, RuntimeApi};

const STEP: Duration = Duration::from_secs(30);

/// Trades whose text needs every kind of JSON escape: quotes, backslashes,
/// control characters, `\u` escapes of BMP characters and of a surrogate
/// pair, and raw UTF-8. The id is the payload key; sym reaches the rows.
fn tricky_trade(n: i64) -> String {
    // Built by hand, not by serde_json, so the escapes are ours: `\u00fc`
    // and `\ud83d\ude80` stay escaped in the payload, `☃` stays raw.
    format!(
        r#"{{"type":"trade","id":"t-{n}-\u00e9\"q\"\\","sym":"Z\u00fcrich ☃ \"q\" \\ \t \ud83d\ude80 {n}","price":{}.25,"size":{n},"side":"B"}}"#,
        100 + n
    )
}

/// Every column of a table but the time the stand-in stamped on arrival.
fn without_time(t: Option<Table>) -> Vec<(String, String)> {
    let t = t.expect("the table reached the stand-in");
    t.names
        .iter()
        .zip(&t.columns)
        .filter(|(name, _)| name.as_str() != "time")
        .map(|(name, col)| (name.clone(), format!("{col:?}")))
        .collect()
}

async fn in_process_app(tp: &RunningTp) -> App {
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

fn response(answer: Answer) -> Value {
    match answer {
        Answer::Response(body) => serde_json::from_slice(&body).expect("a JSON response"),
        Answer::Error(e) => panic!("invocation error: {}", String::from_utf8_lossy(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_reaches_the_bridge_intact_and_a_bad_one_is_an_invocation_error() {
    let lambda_tp = bridge_support::tp().await;
    let reference_tp = bridge_support::tp().await;
    let mut api = RuntimeApi::bind().await.unwrap();
    let bootstrap = Path::new(env!("CARGO_BIN_EXE_bootstrap"));
    let mut function = Function::start(
        bootstrap,
        api.addr,
        lambda_tp.local_addr(),
        &[("TICKBRIDGE_LOG", "info")],
        true,
    )
    .unwrap();
    api.wait_ready(STEP)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", function.tail()));
    let reference = in_process_app(&reference_tp).await;

    // Not an event: this invocation fails, with a reason; the process lives on.
    for (id, body) in [
        ("not-json", &b"this is not JSON"[..]),
        ("truncated", &br#"{"Records":[{"kinesis":"#[..]),
        ("not-utf8", &b"{\"Records\":\"\xff\xfe\"}"[..]),
    ] {
        let got = api.invoke(id, Arc::from(body), STEP).await.unwrap();
        let Answer::Error(doc) = got.answer else {
            panic!("{id}: answered as if it were an event\n{}", function.tail());
        };
        let doc: Value = serde_json::from_slice(&doc).expect("the error document is JSON");
        let message = doc["errorMessage"].as_str().unwrap_or_default();
        assert!(
            !message.is_empty(),
            "{id}: an error without a reason: {doc}"
        );
        assert!(
            !message.contains("panicked"),
            "{id}: the handler panicked: {doc}"
        );
        assert!(function.running(), "{id}: bootstrap exited");
    }

    // Real events whose text is full of escapes: the same bytes through
    // the binary and through `App::handle` in process give the same
    // response and the same rows (sym carries the unescaped text).
    let events = [
        sqs(
            "adapter.fifo",
            &[
                msg("G1", "m-1", tricky_trade(1)),
                msg("G☃", "m-2\u{e9}", tricky_trade(2)),
                msg("G1", "m-3", tricky_trade(1)), // payload-key duplicate of m-1
            ],
        ),
        kinesis_shard0(
            "adapter-\u{fc}",
            &[(1, tricky_trade(3)), (2, tricky_trade(4))],
        ),
    ];
    for (k, event) in events.iter().enumerate() {
        let bytes = event.to_string().into_bytes();
        let id = format!("tricky-{k}");
        let got = api
            .invoke(&id, Arc::from(bytes.clone()), STEP)
            .await
            .unwrap_or_else(|e| panic!("{e}\n{}", function.tail()));
        let from_binary = response(got.answer);
        let ctx = BatchContext::with_budget(id.clone(), Duration::from_secs(30));
        let inv = reference.handle(&bytes, &ctx).await.unwrap();
        assert_eq!(
            from_binary,
            serde_json::to_value(&inv.response).unwrap(),
            "{id}"
        );
        assert_eq!(from_binary, json!({"batchItemFailures": []}), "{id}");
    }
    let rows = without_time(lambda_tp.table("trade"));
    assert_eq!(rows, without_time(reference_tp.table("trade")));
    let sym = |n: i64| format!("Z\u{fc}rich \u{2603} \"q\" \\ \t \u{1f680} {n}");
    assert_eq!(
        bridge_support::trades(&lambda_tp),
        [(sym(1), 1), (sym(2), 2), (sym(3), 3), (sym(4), 4)]
    );
    assert_eq!(lambda_tp.rejected(), 0);

    // Everything on stdout is JSON; the failed invocations were logged
    // with their request id, and each good one has its summary line.
    let lines: Vec<Value> = function
        .stdout_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON on stdout: {l}")))
        .collect();
    let said = |message: &str| {
        lines
            .iter()
            .filter(|v| v["message"] == message)
            .collect::<Vec<_>>()
    };
    let failed = said("batch failed as a whole; Lambda retries it");
    let ids: Vec<&str> = failed
        .iter()
        .filter_map(|v| v["request_id"].as_str())
        .collect();
    assert_eq!(ids, ["not-json", "truncated", "not-utf8"]);
    assert_eq!(said("batch done").len(), events.len());

    drop(function);
    lambda_tp.shutdown().await;
    reference_tp.shutdown().await;
}
