//! The events a batch writes through `App`, whatever the mode: one
//! `BadRecord` line per bad record, and nothing else about it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::app::{load_catalog, App, Store};
use crate::config::Config;
use crate::dedupe::memory::MemoryStore;
use crate::pipeline::{BadRecords, BatchContext, SchemaDecoder};
use crate::quarantine::{LogQuarantine, Quarantine};
use crate::tplink::TpLink;

use super::capture::{assert_no_debug, lines_async};

/// An app whose tickerplant is a closed port: bad records are decided
/// before publishing, so nothing else matters here.
fn app(bad_records: BadRecords) -> App {
    let mut config = Config::from_vars([
        ("TICKBRIDGE_TP".to_string(), "127.0.0.1:9".to_string()),
        ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
    ])
    .expect("settings");
    config.pipeline.bad_records = bad_records;
    config.tp_connect_timeout = Duration::from_millis(50);
    config.pipeline.deadline_margin = Duration::from_millis(10);
    let catalog = Arc::new(load_catalog(&config).expect("schemas"));
    let link = TpLink::from_config(&config).expect("link");
    App::with_parts(
        config,
        Store::Memory(MemoryStore::new()),
        link,
        Quarantine::Log(LogQuarantine),
        SchemaDecoder::new(catalog, false),
    )
}

fn sqs_event(bodies: &[(&str, &str, String)]) -> Vec<u8> {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, (group, id, body))| {
            json!({"messageId": id, "receiptHandle": "rh", "body": body,
                "attributes": {"MessageGroupId": group, "SequenceNumber": format!("{}", 100 + i),
                    "SentTimestamp": "1764000000000"},
                "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:q.fifo"})
        })
        .collect();
    json!({ "Records": records }).to_string().into_bytes()
}

fn trade(n: i64) -> String {
    json!({"type": "trade", "id": format!("t-{n}"), "sym": "AAPL",
        "price": 100.5, "size": n, "side": "B"})
    .to_string()
}

#[test]
fn one_line_per_bad_record_in_both_modes() {
    let huge = format!("{{\"type\":\"trade\",\"pad\":\"{}", "x".repeat(10 << 20));
    let event = sqs_event(&[
        ("g1", "m1", "not json".into()),
        ("g1", "m2", trade(2)),
        ("g2", "m3", huge.clone()),
        ("g3", "m4", trade(4)),
    ]);
    for mode in [BadRecords::Quarantine, BadRecords::Fail] {
        let app = app(mode);
        let ctx = BatchContext::with_budget("req-1", Duration::from_millis(1500));
        let (inv, logs) = lines_async(app.handle(&event, &ctx));
        let inv = inv.expect("an invocation");
        // The parse is a stage of its own, and the handler's time covers
        // every stage (they run one after another inside it).
        let (t, all) = (&inv.summary.stage_ms, inv.summary.handler_ms);
        assert!(t.parse > 0.0, "{t:?}");
        let stages = t.parse + t.dedupe + t.decode + t.quarantine + t.publish + t.commit;
        assert!(all >= stages - 0.01, "handler {all} ms, stages {t:?}");
        let warnings: Vec<&Value> = logs.iter().filter(|l| l["level"] == "WARN").collect();
        let bad: Vec<&Value> = warnings
            .iter()
            .copied()
            .filter(|l| l["message"].as_str().unwrap().starts_with("bad record"))
            .collect();
        let positions: Vec<&str> = bad
            .iter()
            .map(|l| l["position"].as_str().unwrap())
            .collect();
        assert_eq!(positions, ["m1", "m3"], "{mode:?}: {logs:#?}");
        // No other warning names a bad record (the log sink writes none).
        for w in &warnings {
            let text = w.to_string();
            assert!(
                !text.contains("not json") || w["position"] == "m1",
                "{mode:?}: a second line about m1: {w}"
            );
        }
        for l in &bad {
            assert_eq!(l["request_id"], "req-1");
            assert_eq!(l["source"], "sqs");
            assert_eq!(l["source_arn"], "arn:aws:sqs:us-east-1:000000000000:q.fifo");
            assert!(l["lane"].as_str().unwrap().ends_with("/g1") || l["position"] == "m3");
            assert!(l["sequence_number"].is_string(), "{l}");
            assert!(!l["reason"].as_str().unwrap().is_empty());
            assert!(l["payload_preview"].as_str().unwrap().len() <= 260, "{l}");
            assert_no_debug(l);
        }
        assert_eq!(bad[1]["payload_bytes"], huge.len());
        let expected = match mode {
            BadRecords::Quarantine => "quarantine",
            BadRecords::Fail => "fail",
        };
        assert!(bad.iter().all(|l| l["bad_records"] == expected), "{bad:#?}");
        assert_eq!(
            inv.summary.quarantined,
            if mode == BadRecords::Quarantine { 2 } else { 0 }
        );
        for l in &logs {
            assert!(serde_json::to_string(l).unwrap().len() < 4_000, "{l}");
        }
    }
}
