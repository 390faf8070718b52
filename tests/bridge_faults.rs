//! The bridge under faults, against a real moto server (DynamoDB, SQS) and
//! the tickerplant stand-in over TCP: the tickerplant down, stopped between
//! batches and killed in the middle of one, the deadline margin, and the
//! shape of the Kinesis response under every failure. The invariant: every
//! record reaches the tickerplant once, in lane order, or is reported for
//! redelivery with nothing committed for it.

mod bridge_support;

use std::time::Duration;

use bridge_support::*;
use tickbridge::app::Invocation;
use tickbridge::dedupe::DedupeStore;
use tickbridge::pipeline::{now_ms, BadRecords, Decoder, RecordState};
use tickbridge::quarantine::{Quarantine, SqsQuarantine};
use tickbridge::source::event::{parse_event, SourceOptions};

use RecordState::Forwarded as F;

fn trades_0(range: std::ops::Range<usize>, sym: &str) -> Vec<(usize, String)> {
    range.map(|n| (n, trade(n as i64, sym))).collect()
}

fn six_in_three_groups() -> Vec<Msg> {
    let mut out = Vec::new();
    for k in 1..=2i64 {
        for (g, base) in [("A", 100), ("B", 200), ("C", 300)] {
            out.push(msg(
                g,
                &format!("{}{k}", g.to_lowercase()),
                trade(base + k, g),
            ));
        }
    }
    out
}

const SHORT: Duration = Duration::from_millis(1200);

#[tokio::test]
async fn tickerplant_down_reports_everything_and_commits_nothing() {
    let addr = closed_addr();
    let b = Bridge::new(addr, Opts::default()).await;
    let stream = unique_name("trades");
    let kin = kinesis_shard0(&stream, &trades_0(0..5, "K"));
    let fifo = sqs(
        &format!("{}.fifo", unique_name("q")),
        &six_in_three_groups(),
    );

    let inv = b.handle(&kin, SHORT).await;
    assert_eq!(failures(&inv), vec![seq(0, 0)]);
    assert_eq!(pending(&inv), 5);
    let inv = b.handle(&fifo, SHORT).await;
    // Every message, grouped by lane in order of first appearance.
    assert_eq!(failures(&inv), vec!["a1", "a2", "b1", "b2", "c1", "c2"]);
    assert!(inv.summary.failure_reasons[0].contains("tickerplant unavailable"));
    // No checkpoint, no key left behind: claims were released.
    assert_eq!(b.checkpoint(&shard_lane(&stream, 0)).await, None);
    assert_eq!(b.scan_count().await, 0);

    // The tickerplant comes up where the bridge looks for it.
    let tp = tp_on(addr).await;
    let inv = b.run(&kin).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 5);
    let inv = b.run(&fifo).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 6);
    assert_eq!(sizes_of(&tp, "K"), vec![0, 1, 2, 3, 4]);
    for (g, base) in [("A", 100), ("B", 200), ("C", 300)] {
        assert_eq!(sizes_of(&tp, g), vec![base + 1, base + 2]);
    }
    assert_eq!(b.checkpoint(&shard_lane(&stream, 0)).await, Some(seq(0, 4)));
    assert_eq!(b.key_status("msg#c2").await.as_deref(), Some("COMPLETED"));
    // Both redelivered again: nothing twice.
    assert_eq!(duplicates(&b.run(&kin).await), 5);
    assert_eq!(duplicates(&b.run(&fifo).await), 6);
    assert_eq!(trades(&tp).len(), 11);
    tp.shutdown().await;
}

#[tokio::test]
async fn tickerplant_restarted_between_batches_gets_the_retry_exactly_once() {
    let tp1 = tp().await;
    let addr = tp1.local_addr();
    let b = Bridge::new(addr, Opts::default()).await;
    let stream = unique_name("trades");
    let lane = shard_lane(&stream, 0);
    let first = kinesis_shard0(&stream, &trades_0(0..10, "K"));
    let second = kinesis_shard0(&stream, &trades_0(10..20, "K"));

    let inv = b.run(&first).await;
    assert_eq!(forwarded(&inv), 10);
    assert_eq!(sizes_of(&tp1, "K"), (0..10).collect::<Vec<i64>>());
    // The bridge still holds its connection to the stopped tickerplant.
    tp1.shutdown().await;

    let inv = b.handle(&second, SHORT).await;
    assert_eq!(failures(&inv), vec![seq(0, 10)]);
    assert_eq!(pending(&inv), 10);
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 9)));

    let tp2 = tp_on(addr).await;
    let inv = b.run(&second).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 10);
    assert_eq!(sizes_of(&tp2, "K"), (10..20).collect::<Vec<i64>>());
    assert_eq!(tp2.msg_count(), 1);
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 19)));
    // Lambda replaying both batches changes nothing.
    let both = trades_0(0..20, "K");
    let inv = b.run(&kinesis_shard0(&stream, &both)).await;
    assert_eq!(duplicates(&inv), 20);
    assert_eq!(tp2.msg_count(), 1);
    tp2.shutdown().await;
}

/// Trades (even n, `size` = n) and quotes (odd n, `bsize` = n) alternate,
/// so every record is its own run and its own `.u.upd` message.
fn alternating(range: std::ops::Range<usize>) -> Vec<(usize, String)> {
    range
        .map(|n| {
            let p = if n % 2 == 0 {
                trade(n as i64, "M")
            } else {
                serde_json::json!({"type": "quote", "id": format!("q-{n}"), "sym": "M",
                    "bid": 1.0, "ask": 2.0, "bsize": n, "asize": 1})
                .to_string()
            };
            (n, p)
        })
        .collect()
}

fn quote_bsizes(tp: &tickbridge::tp::RunningTp) -> Vec<i64> {
    let Some(t) = tp.table("quote") else {
        return Vec::new();
    };
    let i = t.names.iter().position(|n| n == "bsize").unwrap();
    match &t.columns[i] {
        tickbridge::kdb::K::Vector(_, tickbridge::kdb::Vector::Long(v)) => v.clone(),
        other => panic!("bsize: {other:?}"),
    }
}

/// What arrived, merged back into record order (trade sizes are even,
/// quote bsizes odd, each increasing within its table).
fn arrived(tp: &tickbridge::tp::RunningTp) -> Vec<i64> {
    let mut all = sizes_of(tp, "M");
    all.extend(quote_bsizes(tp));
    all.sort_unstable();
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickerplant_killed_mid_batch_loses_nothing_and_repeats_nothing_confirmed() {
    let n = 4000;
    let tp1 = tp().await;
    let addr = tp1.local_addr();
    // A chaser after every message: confirmation advances record by record.
    let opts = Opts {
        chase_every_bytes: 1,
        payload_keys: false,
        ..Opts::default()
    };
    let b = Bridge::new(addr, opts).await;
    let stream = unique_name("trades");
    let event = kinesis_shard0(&stream, &alternating(0..n));

    // Kill the tickerplant once some of the batch has arrived.
    let killer = tokio::spawn(async move {
        let start = std::time::Instant::now();
        while tp1.row_count("trade").unwrap_or(0) < 100 {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "batch never started"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let before = arrived(&tp1);
        tp1.shutdown().await;
        before
    });
    let inv = b.handle(&event, Duration::from_secs(5)).await;
    let before_kill = killer.await.unwrap();

    // A confirmed prefix, then everything pending from the first
    // unconfirmed record on; the response names that record.
    let confirmed = forwarded(&inv);
    assert!(
        confirmed >= 1 && confirmed < n,
        "killed mid-batch: {confirmed} of {n}"
    );
    assert_eq!(inv.states[..confirmed], vec![F; confirmed][..]);
    assert_eq!(pending(&inv), n - confirmed);
    assert_eq!(failures(&inv), vec![seq(0, confirmed)]);
    assert_eq!(
        b.checkpoint(&shard_lane(&stream, 0)).await,
        Some(seq(0, confirmed - 1))
    );
    // The dying tickerplant had received a prefix of the batch, in order.
    let expect: Vec<i64> = (0..n as i64).collect();
    assert_eq!(before_kill[..], expect[..before_kill.len()]);

    // Restarted on the same port, Lambda retries the batch: exactly the
    // unconfirmed records arrive, once each, in order.
    let tp2 = tp_on(addr).await;
    let inv = b.run(&event).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(duplicates(&inv), confirmed);
    assert_eq!(forwarded(&inv), n - confirmed);
    assert_eq!(arrived(&tp2), expect[confirmed..]);
    tp2.shutdown().await;
}

#[tokio::test]
async fn no_time_left_under_the_margin_reports_everything_untouched() {
    let tp = tp().await;
    let opts = Opts {
        margin: Duration::from_millis(1500),
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let stream = unique_name("trades");
    let kin = kinesis_shard0(&stream, &trades_0(0..5, "K"));
    let fifo = sqs(
        &format!("{}.fifo", unique_name("q")),
        &six_in_three_groups(),
    );

    let budget = Duration::from_millis(1000);
    let inv = b.handle(&kin, budget).await;
    assert_eq!(failures(&inv), vec![seq(0, 0)]);
    assert_eq!(pending(&inv), 5);
    assert_eq!(inv.summary.dedupe_requests, 0);
    let inv = b.handle(&fifo, budget).await;
    assert_eq!(failures(&inv), vec!["a1", "a2", "b1", "b2", "c1", "c2"]);
    assert_eq!(inv.summary.dedupe_requests, 0);
    assert!(inv.summary.failure_reasons[0].contains("deadline"));
    assert_eq!(tp.msg_count(), 0);
    assert_eq!(b.scan_count().await, 0);

    // With time, the same batches go through once.
    assert_eq!(forwarded(&b.run(&kin).await), 5);
    assert_eq!(forwarded(&b.run(&fifo).await), 6);
    assert_eq!(trades(&tp).len(), 11);
    tp.shutdown().await;
}

/// An endpoint that accepts connections and never answers.
async fn black_hole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    (url, task)
}

#[tokio::test]
async fn the_margin_running_out_part_way_stops_before_publishing() {
    let tp = tp().await;
    // A quarantine queue that never answers: its send takes 1.5 s to time
    // out, after dedupe claimed the keys and before publishing starts.
    let (url, hole) = black_hole().await;
    let sdk = tickbridge::aws::local_config(&url).await;
    let sqs_conf = aws_sdk_sqs::config::Builder::from(&sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(1500))
                .build(),
        )
        .build();
    let slow_queue = SqsQuarantine::new(
        aws_sdk_sqs::Client::from_conf(sqs_conf),
        format!("{url}/123456789012/quarantine"),
    );
    let opts = Opts {
        margin: Duration::from_millis(1000),
        quarantine: Some(Quarantine::Sqs(slow_queue)),
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let mut msgs = six_in_three_groups();
    msgs[1].body = bad_trade(201, "B");
    let fifo = sqs(&format!("{}.fifo", unique_name("q")), &msgs);

    // 2 s budget, 1 s margin: time enough to start, gone after the send.
    let inv = b.handle(&fifo, Duration::from_millis(2000)).await;
    assert_eq!(failures(&inv), vec!["a1", "a2", "b1", "b2", "c1", "c2"]);
    assert!(inv.summary.dedupe_requests > 0, "dedupe ran");
    let reasons = inv.summary.failure_reasons.join("\n");
    assert!(reasons.contains("quarantine send failed"), "{reasons}");
    assert!(
        reasons.contains("deadline: no time left to publish"),
        "{reasons}"
    );
    assert_eq!(tp.msg_count(), 0);
    // Every claim taken before the deadline was released.
    assert_eq!(b.scan_count().await, 0);
    hole.abort();

    // Redelivered to a healthy bridge on the same table: once each, the
    // bad record quarantined (to the log).
    let b2 = Bridge::on_table(
        tp.local_addr(),
        Opts::default(),
        b.ddb.clone(),
        b.table.clone(),
    );
    let inv = b2.run(&fifo).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(inv.summary.quarantined, 1);
    assert_eq!(forwarded(&inv), 5);
    assert_eq!(sizes_of(&tp, "B"), vec![202]);
    assert_eq!(trades(&tp).len(), 5);
    tp.shutdown().await;
}

/// Every identifier is a 56-digit sequence number of the batch, at most one
/// per lane, and it is that lane's first record not done.
fn check_kinesis_response(event: &serde_json::Value, inv: &Invocation) {
    let records = parse_event(event.to_string().as_bytes(), &SourceOptions::default()).unwrap();
    let ids = failures(inv);
    let json = inv.response_json();
    let listed: Vec<&str> = json["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    let mut lanes_seen = std::collections::HashSet::new();
    for id in &ids {
        assert_eq!(id.len(), 56, "{id:?}");
        assert!(id.bytes().all(|c| c.is_ascii_digit()), "{id:?}");
        let i = records.iter().position(|r| *r.failure_id == **id).unwrap();
        let lane = &records[i].lane;
        assert!(
            lanes_seen.insert(lane.clone()),
            "two identifiers for {lane}"
        );
        let first_pending = records
            .iter()
            .zip(&inv.states)
            .find(|(r, s)| &r.lane == lane && !s.is_done())
            .map(|(r, _)| r.failure_id.to_string());
        assert_eq!(first_pending.as_deref(), Some(id.as_str()));
    }
    // A lane with anything not done is named.
    for (r, s) in records.iter().zip(&inv.states) {
        if !s.is_done() {
            let named = ids.iter().any(|id| {
                records
                    .iter()
                    .any(|q| *q.failure_id == **id && q.lane == r.lane)
            });
            assert!(
                named,
                "lane {} has pending records but no identifier",
                r.lane
            );
        }
    }
}

/// Three shards, four records each: shard s gets sizes s*10+k and the sym
/// `<stream>/S<s>`; business ids `<stream>-<size>`.
fn three_shards(stream: &str, bad_at: Option<(usize, usize)>) -> serde_json::Value {
    let mut recs = Vec::new();
    for k in 0..4usize {
        for s in 0..3usize {
            let n = (s * 10 + k) as i64;
            let sym = format!("{stream}/S{s}");
            let p = if bad_at == Some((s, k)) {
                bad_trade(n, &sym)
            } else {
                trade(n, &sym)
            };
            // Business ids unique to the stream, so scenarios do not see
            // each other's records as producer duplicates.
            let mut v: serde_json::Value = serde_json::from_str(&p).unwrap();
            v["id"] = format!("{stream}-{n}").into();
            recs.push((s, k, v.to_string()));
        }
    }
    kinesis(stream, &recs)
}

#[tokio::test]
async fn kinesis_responses_only_name_real_first_unfinished_sequence_numbers() {
    let tp = tp().await;
    let addr = tp.local_addr();
    let fail_mode = || Opts {
        bad_records: BadRecords::Fail,
        ..Opts::default()
    };
    let b = Bridge::new(addr, fail_mode()).await;

    // All good.
    let ev = three_shards(&unique_name("s"), None);
    let inv = b.run(&ev).await;
    check_kinesis_response(&ev, &inv);
    assert!(failures(&inv).is_empty());

    // A bad record cuts its shard; the retry stops at the same place.
    let stream = unique_name("s");
    let ev = three_shards(&stream, Some((1, 2)));
    for _ in 0..2 {
        let inv = b.run(&ev).await;
        check_kinesis_response(&ev, &inv);
        assert_eq!(failures(&inv), vec![seq(1, 2)]);
    }
    assert_eq!(sizes_of(&tp, &format!("{stream}/S1")), vec![10, 11]);
    assert_eq!(sizes_of(&tp, &format!("{stream}/S2")), vec![20, 21, 22, 23]);

    // A payload key held by a concurrent invocation cuts its shard there.
    let ev = three_shards(&unique_name("s"), None);
    let records = parse_event(ev.to_string().as_bytes(), &SourceOptions::default()).unwrap();
    let held = records
        .iter()
        .find(|r| *r.failure_id == seq(2, 1))
        .map(|r| b.app.decoder().payload_key(r).unwrap().unwrap())
        .unwrap();
    let now = now_ms();
    b.app
        .store()
        .claim(std::slice::from_ref(&held), now, now + 60_000)
        .await
        .unwrap();
    let inv = b.run(&ev).await;
    check_kinesis_response(&ev, &inv);
    assert_eq!(failures(&inv), vec![seq(2, 1)]);

    // No time: every shard from its first record.
    let ev = three_shards(&unique_name("s"), None);
    let inv = b.handle(&ev, Duration::from_millis(100)).await;
    check_kinesis_response(&ev, &inv);
    assert_eq!(failures(&inv), vec![seq(0, 0), seq(1, 0), seq(2, 0)]);

    // Tickerplant unreachable, with a bad record in one shard as well.
    let down = Bridge::on_table(closed_addr(), fail_mode(), b.ddb.clone(), b.table.clone());
    let ev = three_shards(&unique_name("s"), Some((0, 3)));
    let inv = down.handle(&ev, SHORT).await;
    check_kinesis_response(&ev, &inv);
    assert_eq!(failures(&inv), vec![seq(0, 0), seq(1, 0), seq(2, 0)]);

    // The tickerplant stopped under an open connection, records of earlier
    // batches redelivered alongside: the duplicates are never named.
    let ev = three_shards(&unique_name("s"), None);
    assert!(failures(&b.run(&ev).await).is_empty());
    tp.shutdown().await;
    let inv = b.handle(&ev, SHORT).await;
    check_kinesis_response(&ev, &inv);
    assert!(failures(&inv).is_empty());
    assert_eq!(duplicates(&inv), 12);
    let stream = unique_name("s");
    let ev = three_shards(&stream, None);
    let inv = b.handle(&ev, SHORT).await;
    check_kinesis_response(&ev, &inv);
    assert_eq!(failures(&inv), vec![seq(0, 0), seq(1, 0), seq(2, 0)]);
}

#[tokio::test]
async fn dynamodb_unreachable_sends_nothing_and_reports_everything() {
    let tp = tp().await;
    // A DynamoDB endpoint where nothing listens, no SDK retries.
    let sdk = tickbridge::aws::local_config(&format!("http://{}", closed_addr())).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(Duration::from_millis(500))
                .build(),
        )
        .build();
    let ddb = aws_sdk_dynamodb::Client::from_conf(conf);
    let b = Bridge::on_table(tp.local_addr(), Opts::default(), ddb, unique_name("gone"));
    let stream = unique_name("trades");
    let kin = kinesis_shard0(&stream, &trades_0(0..5, "K"));
    let fifo = sqs(
        &format!("{}.fifo", unique_name("q")),
        &six_in_three_groups(),
    );

    let inv = b.run(&kin).await;
    check_kinesis_response(&kin, &inv);
    assert_eq!(failures(&inv), vec![seq(0, 0)]);
    assert_eq!(pending(&inv), 5);
    assert!(
        inv.summary.failure_reasons[0].contains("dedupe store unavailable"),
        "{:?}",
        inv.summary.failure_reasons
    );
    let inv = b.run(&fifo).await;
    assert_eq!(failures(&inv), vec!["a1", "a2", "b1", "b2", "c1", "c2"]);
    assert_eq!(inv.summary.messages_sent, 0);
    assert_eq!(tp.msg_count(), 0);
    tp.shutdown().await;
}

/// A DynamoDB endpoint in front of moto that refuses every `PutItem` (the
/// lane checkpoint write) and passes everything else through: the bridge
/// dies, as far as DynamoDB can tell, between confirm and commit.
async fn refusing_put_item(upstream: std::net::SocketAddr) -> String {
    use common::http_proxy::{spawn, Action};
    spawn(upstream, |head| {
        if head.contains("x-amz-target: dynamodb_20120810.putitem") {
            Action::Refuse(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"injected: no commit"}"#,
            )
        } else {
            Action::Forward
        }
    })
    .await
}

#[tokio::test]
async fn a_commit_lost_after_confirmation_is_the_documented_duplicate_window() {
    let tp = tp().await;
    let moto = std::net::SocketAddr::from(([127, 0, 0, 1], MotoServer::shared().port()));
    let healthy = tickbridge::aws::dynamodb_client(&sdk().await);
    let table = unique_name("window");
    tickbridge::dedupe::dynamodb::ensure_table(&healthy, &table)
        .await
        .unwrap();
    let sdk = tickbridge::aws::local_config(&refusing_put_item(moto).await).await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let opts = || Opts {
        payload_keys: false,
        ..Opts::default()
    };
    let b = Bridge::on_table(
        tp.local_addr(),
        opts(),
        aws_sdk_dynamodb::Client::from_conf(conf),
        table.clone(),
    );
    let stream = unique_name("trades");
    let event = kinesis_shard0(&stream, &trades_0(0..5, "W"));

    // Confirmed by the tickerplant, so reported done: a failed commit is
    // logged, never turned into a retry of records that already arrived.
    let inv = b.run(&event).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(forwarded(&inv), 5);
    assert_eq!(sizes_of(&tp, "W"), vec![0, 1, 2, 3, 4]);
    // The checkpoint read went through; its write did not.
    assert_eq!(inv.summary.dedupe_requests, 2);
    let b2 = Bridge::on_table(tp.local_addr(), opts(), healthy, table);
    assert_eq!(b2.checkpoint(&shard_lane(&stream, 0)).await, None);

    // Should Lambda deliver the batch again, it arrives twice: the window
    // the README documents, which keyed tables downstream absorb.
    let inv = b2.run(&event).await;
    assert_eq!(forwarded(&inv), 5);
    assert_eq!(sizes_of(&tp, "W"), vec![0, 1, 2, 3, 4, 0, 1, 2, 3, 4]);
    assert_eq!(
        b2.checkpoint(&shard_lane(&stream, 0)).await,
        Some(seq(0, 4))
    );
    tp.shutdown().await;
}
