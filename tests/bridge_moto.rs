//! The bridge end to end against a real moto server (DynamoDB, SQS) and the
//! tickerplant stand-in over TCP: dedupe of redeliveries and producer
//! retries, SQS FIFO lane cuts, claims held by a concurrent invocation,
//! DynamoDB request costs, and quarantine to a real queue. Each test has
//! its own table and queue on one shared moto server; what reached the
//! tickerplant is read back from the stand-in's tables, in order.

mod bridge_support;

use base64::Engine;
use bridge_support::*;
use tickbridge::dedupe::DedupeStore;
use tickbridge::pipeline::{now_ms, BadRecords, RecordState};
use tickbridge::quarantine::{Quarantine, SqsQuarantine};

use RecordState::{Duplicate as D, Forwarded as F};

fn trades_0(range: std::ops::Range<usize>, sym: &str) -> Vec<(usize, String)> {
    range.map(|n| (n, trade(n as i64, sym))).collect()
}

#[tokio::test]
async fn redelivered_kinesis_batch_forwards_nothing_twice() {
    let tp = tp().await;
    let b = Bridge::new(tp.local_addr(), Opts::default()).await;
    let stream = unique_name("trades");
    let lane = shard_lane(&stream, 0);

    let first = trades_0(0..20, "K");
    let inv = b.run(&kinesis_shard0(&stream, &first)).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 20);
    assert_eq!(sizes_of(&tp, "K"), (0..20).collect::<Vec<i64>>());
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 19)));

    // Lambda redelivers the same records, now followed by new ones.
    let mut again = first.clone();
    again.extend(trades_0(20..30, "K"));
    let inv = b.run(&kinesis_shard0(&stream, &again)).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(inv.states[..20], vec![D; 20][..]);
    assert_eq!(inv.states[20..], vec![F; 10][..]);
    assert_eq!(sizes_of(&tp, "K"), (0..30).collect::<Vec<i64>>());
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 29)));
    // One `.u.upd` per batch: the duplicates were never encoded.
    assert_eq!(tp.msg_count(), 2);

    // And once more, all of it: nothing is sent.
    let inv = b.run(&kinesis_shard0(&stream, &again)).await;
    assert_eq!(duplicates(&inv), 30);
    assert_eq!(inv.summary.messages_sent, 0);
    assert_eq!(tp.msg_count(), 2);
    // The checkpoint alone decided: one consistent read, no writes.
    assert_eq!(inv.summary.dedupe_requests, 1);
    tp.shutdown().await;
}

#[tokio::test]
async fn producer_duplicates_with_the_same_payload_key_are_skipped() {
    let tp = tp().await;
    let b = Bridge::new(tp.local_addr(), Opts::default()).await;
    let stream = unique_name("trades");

    // Producer retries: the same business id under a new sequence number,
    // within the batch and in a later one.
    let first = vec![
        (0, trade(1, "P")),
        (1, trade(2, "P")),
        (2, trade(1, "P")),
        (3, trade(3, "P")),
        (4, trade(2, "P")),
    ];
    let inv = b.run(&kinesis_shard0(&stream, &first)).await;
    assert!(failures(&inv).is_empty());
    assert_eq!(inv.states, vec![F, F, D, F, D]);
    assert_eq!(sizes_of(&tp, "P"), vec![1, 2, 3]);

    let later = vec![(5, trade(3, "P")), (6, trade(4, "P")), (7, trade(1, "P"))];
    let inv = b.run(&kinesis_shard0(&stream, &later)).await;
    assert!(failures(&inv).is_empty());
    assert_eq!(inv.states, vec![D, F, D]);
    assert_eq!(sizes_of(&tp, "P"), vec![1, 2, 3, 4]);
    // Duplicates by payload key still move the lane checkpoint.
    assert_eq!(b.checkpoint(&shard_lane(&stream, 0)).await, Some(seq(0, 7)));
    tp.shutdown().await;
}

/// Three interleaved FIFO groups A, B, C of three messages each; sizes
/// 101.., 201.., 301.. name them; `bad` replaces B's second message.
fn three_groups(bad: bool) -> Vec<Msg> {
    let mut out = Vec::new();
    for k in 1..=3i64 {
        for (g, base) in [("A", 100), ("B", 200), ("C", 300)] {
            let id = format!("{}{k}", g.to_lowercase());
            let body = if bad && g == "B" && k == 2 {
                bad_trade(base + k, g)
            } else {
                trade(base + k, g)
            };
            out.push(msg(g, &id, body));
        }
    }
    out
}

#[tokio::test]
async fn sqs_group_cut_at_a_bad_record_leaves_the_other_groups_complete() {
    let tp = tp().await;
    let opts = Opts {
        bad_records: BadRecords::Fail,
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let event = sqs(
        &format!("{}.fifo", unique_name("trades")),
        &three_groups(true),
    );

    let inv = b.run(&event).await;
    assert_eq!(failures(&inv), vec!["b2", "b3"]);
    assert_eq!(sizes_of(&tp, "A"), vec![101, 102, 103]);
    assert_eq!(sizes_of(&tp, "B"), vec![201]);
    assert_eq!(sizes_of(&tp, "C"), vec![301, 302, 303]);
    for id in ["a1", "a2", "a3", "b1", "c1", "c2", "c3"] {
        assert_eq!(
            b.key_status(&format!("msg#{id}")).await.as_deref(),
            Some("COMPLETED"),
            "{id}"
        );
    }
    // Claims of the cut messages were given back, not left to expire.
    for id in ["b2", "b3"] {
        assert_eq!(b.key_status(&format!("msg#{id}")).await, None, "{id}");
    }

    // SQS redelivers only b2 and b3, but a whole redelivery is no worse:
    // everything done is a duplicate, B stays cut at its bad message.
    let inv = b.run(&event).await;
    assert_eq!(failures(&inv), vec!["b2", "b3"]);
    assert_eq!(duplicates(&inv), 7);
    assert_eq!(inv.summary.messages_sent, 0);
    assert_eq!(trades(&tp).len(), 7);
    tp.shutdown().await;
}

#[tokio::test]
async fn a_live_claim_of_another_invocation_cuts_its_group_only() {
    let tp = tp().await;
    let b = Bridge::new(tp.local_addr(), Opts::default()).await;
    let event = sqs(
        &format!("{}.fifo", unique_name("trades")),
        &three_groups(false),
    );

    // A concurrent invocation holds b2 for the next minute.
    let now = now_ms();
    let held = vec!["msg#b2".to_string()];
    let claims = b.app.store().claim(&held, now, now + 60_000).await.unwrap();
    assert_eq!(claims, vec![tickbridge::dedupe::Claim::New]);

    let inv = b.run(&event).await;
    assert_eq!(failures(&inv), vec!["b2", "b3"]);
    assert_eq!(sizes_of(&tp, "A"), vec![101, 102, 103]);
    assert_eq!(sizes_of(&tp, "B"), vec![201]);
    assert_eq!(sizes_of(&tp, "C"), vec![301, 302, 303]);
    // The other invocation's claim is untouched; b3 was never claimed.
    assert_eq!(b.key_status("msg#b2").await.as_deref(), Some("INPROGRESS"));
    assert_eq!(b.key_status("msg#b3").await, None);

    // It gives up; SQS redelivers the rest of the group.
    b.app.store().release(&held, now + 60_000).await.unwrap();
    let inv = b.run(&event).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 2);
    assert_eq!(duplicates(&inv), 7);
    assert_eq!(sizes_of(&tp, "B"), vec![201, 202, 203]);
    assert_eq!(trades(&tp).len(), 9);
    tp.shutdown().await;
}

fn emf_requests(inv: &tickbridge::app::Invocation) -> f64 {
    let lines = tickbridge::metrics::emf_lines("tickbridge", inv.source, &inv.summary, now_ms());
    let main: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let declared = main["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["Name"] == "DynamoDbRequests");
    assert!(declared, "DynamoDbRequests is declared in the EMF document");
    main["DynamoDbRequests"].as_f64().unwrap()
}

#[tokio::test]
async fn dynamodb_requests_per_batch_follow_the_cost_model() {
    let tp = tp().await;
    let n = 1000;

    // Transport dedupe only: a checkpoint read and one conditional write,
    // whatever the batch size.
    let b = Bridge::new(
        tp.local_addr(),
        Opts {
            payload_keys: false,
            ..Opts::default()
        },
    )
    .await;
    let stream = unique_name("trades");
    let batch = trades_0(0..n, "R");
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert!(failures(&inv).is_empty());
    assert_eq!(forwarded(&inv), n);
    assert_eq!(inv.summary.dedupe_requests, 2);
    assert!(inv.summary.dedupe_requests <= 3);
    assert_eq!(emf_requests(&inv), 2.0);
    // A redelivery costs the read only.
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert_eq!(duplicates(&inv), n);
    assert_eq!(inv.summary.dedupe_requests, 1);
    assert_eq!(emf_requests(&inv), 1.0);

    // Payload keys: one conditional write per distinct new key (producer
    // duplicates inside the batch cost nothing), completions batched 25 to
    // a BatchWriteItem, plus the checkpoint read and write.
    let b = Bridge::new(tp.local_addr(), Opts::default()).await;
    let stream = unique_name("trades");
    let distinct = 900usize;
    let batch: Vec<(usize, String)> = (0..n)
        .map(|i| (i, trade((10_000 + i % distinct) as i64, "Q")))
        .collect();
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert!(failures(&inv).is_empty());
    assert_eq!(forwarded(&inv), distinct);
    assert_eq!(duplicates(&inv), n - distinct);
    let expected = distinct + distinct.div_ceil(25) + 2;
    assert_eq!(inv.summary.dedupe_requests, expected as u64);
    assert_eq!(emf_requests(&inv), expected as f64);
    assert_eq!(
        sizes_of(&tp, "Q"),
        (10_000..10_000 + distinct as i64).collect::<Vec<i64>>()
    );
    tp.shutdown().await;
}

#[tokio::test]
async fn bad_records_go_to_a_real_quarantine_queue_and_the_lane_goes_on() {
    let tp = tp().await;
    let sqs_client = tickbridge::aws::sqs_client(&sdk().await);
    let url = sqs_client
        .create_queue()
        .queue_name(unique_name("quarantine"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let opts = Opts {
        quarantine: Some(Quarantine::Sqs(SqsQuarantine::new(
            sqs_client.clone(),
            url.clone(),
        ))),
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let stream = unique_name("trades");
    let not_json = "{\"type\":\"trade\",\"sym\":".to_string();
    let batch = vec![
        (0, trade(0, "Z")),
        (1, trade(1, "Z")),
        (2, bad_trade(2, "Z")),
        (3, trade(3, "Z")),
        (4, not_json.clone()),
        (5, trade(5, "Z")),
    ];
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(inv.summary.quarantined, 2);
    assert_eq!(sizes_of(&tp, "Z"), vec![0, 1, 3, 5]);
    let lane = shard_lane(&stream, 0);
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 5)));

    let mut bodies = Vec::new();
    for _ in 0..20 {
        let out = sqs_client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            bodies.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap());
        }
        if bodies.len() >= 2 {
            break;
        }
    }
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    bodies.sort_by_key(|v| v["position"].as_str().unwrap().to_string());
    let b64 = base64::engine::general_purpose::STANDARD;
    for (body, (n, raw)) in bodies.iter().zip([(2, bad_trade(2, "Z")), (4, not_json)]) {
        assert_eq!(body["position"], seq(0, n));
        assert_eq!(body["failure_id"], seq(0, n));
        assert_eq!(body["lane"], lane);
        assert_eq!(body["source_arn"], stream_arn(&stream));
        assert_eq!(
            b64.decode(body["payload"].as_str().unwrap()).unwrap(),
            raw.as_bytes()
        );
        assert_eq!(body["payload_truncated"], false);
        assert!(!body["reason"].as_str().unwrap().is_empty());
    }
    assert!(
        bodies[0]["reason"].as_str().unwrap().contains("price"),
        "{}",
        bodies[0]["reason"]
    );
    // Quarantined records are done: a redelivery sends nothing anywhere.
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert_eq!(duplicates(&inv), 6);
    assert_eq!(inv.summary.quarantined, 0);
    tp.shutdown().await;
}

#[tokio::test]
async fn sync_publishing_confirms_each_run_and_dedupes_the_same() {
    let tp = tp().await;
    let opts = Opts {
        publish: tickbridge::pipeline::PublishMode::Sync,
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let stream = unique_name("trades");
    let quote = |n: i64| {
        serde_json::json!({"type": "quote", "id": format!("q-{n}"), "sym": "Y",
            "bid": 1.0, "ask": 2.0, "bsize": n, "asize": 1})
        .to_string()
    };
    // Runs: trades 0-1, quote 2, trades 3-4.
    let batch = vec![
        (0, trade(0, "Y")),
        (1, trade(1, "Y")),
        (2, quote(2)),
        (3, trade(3, "Y")),
        (4, trade(4, "Y")),
    ];
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(inv.summary.messages_sent, 3);
    assert_eq!(tp.msg_count(), 3);
    assert_eq!(sizes_of(&tp, "Y"), vec![0, 1, 3, 4]);
    assert_eq!(tp.row_count("quote"), Some(1));
    let inv = b.run(&kinesis_shard0(&stream, &batch)).await;
    assert_eq!(duplicates(&inv), 5);
    assert_eq!(tp.msg_count(), 3);
    tp.shutdown().await;
}

#[tokio::test]
async fn a_failed_quarantine_send_cuts_only_the_bad_records_group() {
    let tp = tp().await;
    let sqs_client = tickbridge::aws::sqs_client(&sdk().await);
    // A queue that does not exist: SQS refuses the send.
    let missing = format!(
        "{}/123456789012/{}",
        MotoServer::shared().endpoint(),
        unique_name("no-such-queue")
    );
    let opts = Opts {
        quarantine: Some(Quarantine::Sqs(SqsQuarantine::new(sqs_client, missing))),
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let event = sqs(
        &format!("{}.fifo", unique_name("trades")),
        &three_groups(true),
    );

    let inv = b.run(&event).await;
    assert_eq!(failures(&inv), vec!["b2", "b3"]);
    assert_eq!(inv.summary.quarantined, 0);
    assert!(
        inv.summary.failure_reasons[0].contains("quarantine send failed"),
        "{:?}",
        inv.summary.failure_reasons
    );
    // b3 decoded fine but follows the unsent bad record: not forwarded.
    assert_eq!(sizes_of(&tp, "A"), vec![101, 102, 103]);
    assert_eq!(sizes_of(&tp, "B"), vec![201]);
    assert_eq!(sizes_of(&tp, "C"), vec![301, 302, 303]);
    assert_eq!(b.key_status("msg#b1").await.as_deref(), Some("COMPLETED"));
    assert_eq!(b.key_status("msg#b2").await, None);
    assert_eq!(b.key_status("msg#b3").await, None);
    tp.shutdown().await;
}
