//! `tickbridge run` end to end: the real binary polling kinesis-local and
//! moto SQS, DynamoDB on moto, the tickerplant stand-in over TCP, with
//! faults (tickerplant killed, runner SIGKILLed, a poison FIFO message).

mod runner_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName as QA;
use runner_support::*;
use tickbridge::dedupe::dynamodb::ensure_table;

/// Records for `shards` shards: trades whose `sym` names the shard and
/// whose `size` is unique and increasing within it. Every 100th is bad
/// (a wrong type); every 50th good one is put again a few records later by
/// "the producer" (same id, same payload).
struct Workload {
    recs: Vec<(usize, String)>,
    /// The good sizes per sym, in put order, each once.
    expected: HashMap<String, Vec<i64>>,
    bad: usize,
    producer_duplicates: usize,
}

fn workload(total: usize, shards: usize) -> Workload {
    let mut recs: Vec<(usize, String)> = Vec::with_capacity(total);
    let mut expected: HashMap<String, Vec<i64>> = HashMap::new();
    let mut again: Vec<(usize, usize, String)> = Vec::new();
    let (mut bad, mut producer_duplicates) = (0, 0);
    let mut n = 0usize;
    while recs.len() < total {
        let shard = n % shards;
        let sym = format!("S{shard}");
        let size = (shard * 1_000_000 + n / shards) as i64;
        if let Some(pos) = again.iter().position(|(at, _, _)| *at <= n) {
            let (_, s, payload) = again.remove(pos);
            recs.push((s, payload));
            producer_duplicates += 1;
            if recs.len() >= total {
                break;
            }
        }
        if n % 100 == 99 {
            recs.push((shard, bad_trade(size, &sym)));
            bad += 1;
        } else {
            let payload = trade(size, &sym);
            if n % 50 == 7 {
                again.push((n + 4 * shards + 1, shard, payload.clone()));
            }
            recs.push((shard, payload));
            expected.entry(sym).or_default().push(size);
        }
        n += 1;
    }
    Workload {
        recs,
        expected,
        bad,
        producer_duplicates,
    }
}

fn good(w: &Workload) -> usize {
    w.expected.values().map(Vec::len).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_records_over_four_shards_arrive_once_in_order() {
    let emu = emulators().await;
    let stream = unique_name("e2e");
    create_stream(&emu.kinesis, &stream, 4).await;
    let quarantine = queue(&emu.sqs, &unique_name("quarantine"), &[]).await;
    let w = workload(20_000, 4);
    assert_eq!(w.recs.len(), 20_000);
    let tp = bridge::tp().await;
    let started = Instant::now();
    let r = runner(
        &emu,
        tp.local_addr(),
        &[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_QUARANTINE_QUEUE_URL", &quarantine),
        ],
        &[
            "kinesis",
            "--stream",
            &stream,
            "--batch-size",
            "1000",
            "--idle-ms",
            "200",
            "--progress-secs",
            "5",
        ],
    );
    // The runner polls while the producer writes (kinesis-local takes
    // about 1.5 ms per record, so producing is most of this test's time).
    put(&emu.kinesis, &stream, &w.recs).await;
    eprintln!("20000 records put in {:?}", started.elapsed());
    let want = good(&w);
    let arrived = wait_until(Duration::from_secs(240), || {
        tp.row_count("trade").unwrap_or(0) >= want
    })
    .await;
    assert!(
        arrived,
        "only {:?} of {want} rows arrived:\n{}",
        tp.row_count("trade"),
        r.logs()
    );
    eprintln!("{want} rows in {:?}", started.elapsed());
    let quarantined = drain(&emu.sqs, &quarantine, w.bad, Duration::from_secs(90)).await;
    // Anything extra would show up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, summary, logs) = r.terminate();
    assert!(status.success(), "{status}\n{logs}");

    let got = sizes_by_sym(&tp);
    for (sym, sizes) in &w.expected {
        assert_eq!(
            got.get(sym),
            Some(sizes),
            "rows of {sym} missing, repeated or out of order"
        );
    }
    assert_eq!(tp.row_count("trade"), Some(want));
    assert_eq!(quarantined.len(), w.bad);
    for m in &quarantined {
        let body: serde_json::Value = serde_json::from_str(m.body().unwrap()).unwrap();
        let reason = body["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("price"), "reason names the field: {body}");
        assert!(
            body["lane"].as_str().unwrap_or_default().contains(&stream),
            "{body}"
        );
    }
    // The counts add up: every record once, in exactly one outcome.
    assert_eq!(total(&summary, "records"), 20_000, "{summary}");
    assert_eq!(total(&summary, "forwarded"), want as u64, "{summary}");
    assert_eq!(
        total(&summary, "duplicates"),
        w.producer_duplicates as u64,
        "{summary}"
    );
    assert_eq!(total(&summary, "quarantined"), w.bad as u64, "{summary}");
    assert_eq!(total(&summary, "retried"), 0, "{summary}");
    assert!(logs.contains("progress"), "a progress line:\n{logs}");
    tp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_killed_mid_run_resumes_from_lane_checkpoints() {
    let emu = emulators().await;
    let stream = unique_name("kill");
    create_stream(&emu.kinesis, &stream, 4).await;
    let table = unique_name("ckpt");
    ensure_table(&emu.ddb, &table).await.unwrap();
    let w = workload(1_600, 4);
    put(&emu.kinesis, &stream, &w.recs).await;
    let quarantine = queue(&emu.sqs, &unique_name("quarantine"), &[]).await;
    let tp = bridge::tp().await;
    let env = [
        ("TICKBRIDGE_STORE", "dynamodb"),
        ("TICKBRIDGE_DEDUPE_TABLE", table.as_str()),
        ("TICKBRIDGE_QUARANTINE_QUEUE_URL", quarantine.as_str()),
    ];
    // Claims expire with the batch timeout, so a claim held by the killed
    // process is taken over within seconds.
    let args = [
        "kinesis",
        "--stream",
        &stream,
        "--batch-size",
        "100",
        "--idle-ms",
        "100",
        "--batch-timeout-ms",
        "3000",
        "--retry-min-ms",
        "50",
        "--retry-max-ms",
        "500",
    ];
    let first = runner(&emu, tp.local_addr(), &env, &args);
    let want = good(&w);
    // Kill once every shard is past its first batch (each shard's batches
    // run one after another, so its first is committed by then).
    let partway = wait_until(Duration::from_secs(180), || {
        let got = sizes_by_sym(&tp);
        (0..4).all(|i| got.get(&format!("S{i}")).is_some_and(|g| g.len() > 110))
    })
    .await;
    assert!(partway, "no progress before the kill:\n{}", first.logs());
    let at_kill = tp.row_count("trade").unwrap_or(0);
    first.kill();
    eprintln!("SIGKILL after {at_kill} of {want} rows");

    let second = runner(&emu, tp.local_addr(), &env, &args);
    let done = wait_until(Duration::from_secs(240), || {
        let got = sizes_by_sym(&tp);
        w.expected.iter().all(|(sym, sizes)| {
            got.get(sym)
                .is_some_and(|g| sizes.iter().all(|s| g.contains(s)))
        })
    })
    .await;
    assert!(
        done,
        "not everything arrived after the restart:\n{}",
        second.logs()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, summary, logs) = second.terminate();
    assert!(status.success(), "{status}\n{logs}");

    // The restart began after each shard's checkpoint: every shard says so,
    // and the records it settled (each counted once, whatever its outcome)
    // are far fewer than the stream holds. `records` counts retries too.
    let resumed = logs
        .lines()
        .filter(|l| l.contains("shard poller started") && l.contains("from=\"after\""))
        .count();
    assert_eq!(resumed, 4, "shards resumed after a checkpoint:\n{logs}");
    let settled = total(&summary, "forwarded")
        + total(&summary, "duplicates")
        + total(&summary, "quarantined");
    assert!(
        settled < w.recs.len() as u64 - at_kill as u64 / 2,
        "settled {settled}: {summary}"
    );
    eprintln!("after the restart: {summary}");
    // Nothing lost, order kept, and a record repeats only inside the window:
    // confirmed by the stand-in but not yet committed when the kill came,
    // at most the one batch each shard had in flight.
    let got = sizes_by_sym(&tp);
    let mut repeated = 0;
    for (sym, sizes) in &w.expected {
        let g = &got[sym];
        let mut dedup = g.clone();
        dedup.dedup();
        let mut seen = std::collections::HashSet::new();
        let firsts: Vec<i64> = g.iter().copied().filter(|s| seen.insert(*s)).collect();
        assert_eq!(&firsts, sizes, "{sym}: lost or out of order");
        let extra = g.len() - sizes.len();
        assert!(extra <= 100, "{sym}: {extra} repeats, more than one batch");
        repeated += extra;
    }
    eprintln!("{repeated} rows repeated across the kill (the documented window)");
    tp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickerplant_killed_mid_run_and_restarted_loses_nothing() {
    let emu = emulators().await;
    let stream = unique_name("tpkill");
    create_stream(&emu.kinesis, &stream, 4).await;
    let mut w = workload(2_000, 4);
    // Clean records only: this test is about the tickerplant.
    w.recs.retain(|(_, p)| !p.contains("n/a"));
    let tp = bridge::tp().await;
    let addr = tp.local_addr();
    let r = runner(
        &emu,
        addr,
        &[("TICKBRIDGE_STORE", "memory")],
        &[
            "kinesis",
            "--stream",
            &stream,
            "--batch-size",
            "50",
            "--idle-ms",
            "50",
            "--retry-min-ms",
            "50",
            "--retry-max-ms",
            "300",
        ],
    );
    put(&emu.kinesis, &stream, &w.recs).await;
    let want = good(&w);
    let partway = wait_until(Duration::from_secs(180), || {
        tp.row_count("trade").unwrap_or(0) >= want / 3
    })
    .await;
    assert!(partway, "no progress:\n{}", r.logs());
    let before = sizes_by_sym(&tp);
    let at_kill: usize = before.values().map(Vec::len).sum();
    tp.shutdown().await;
    eprintln!("tickerplant killed after {at_kill} of {want} rows");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let tp2 = bridge::tp_on(addr).await;
    let rest: usize = want.saturating_sub(at_kill);
    let done = wait_until(Duration::from_secs(180), || {
        tp2.row_count("trade").unwrap_or(0) >= rest
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = sizes_by_sym(&tp2);
    let (status, summary, logs) = r.terminate();
    assert!(
        done,
        "not everything arrived after the restart: {summary}\n{logs}"
    );
    assert!(status.success(), "{status}\n{logs}");
    let mut repeated = 0;
    for (sym, sizes) in &w.expected {
        let a = before.get(sym).cloned().unwrap_or_default();
        let b = after.get(sym).cloned().unwrap_or_default();
        // Each instance saw its rows once and in order.
        assert!(a.windows(2).all(|p| p[0] < p[1]), "{sym} before: {a:?}");
        assert!(b.windows(2).all(|p| p[0] < p[1]), "{sym} after: {b:?}");
        // Together they hold everything; a repeat is the batch the old
        // tickerplant took but never confirmed (its chaser got no reply),
        // so it is resent: the tail of one is the head of the other.
        let overlap = a.iter().filter(|s| b.contains(s)).count();
        assert!(
            overlap <= 50,
            "{sym}: {overlap} repeats, more than the batch in flight"
        );
        assert_eq!(
            &a[a.len() - overlap..],
            &b[..overlap],
            "{sym}: repeats not at the seam"
        );
        let mut all = a.clone();
        all.extend_from_slice(&b[overlap..]);
        assert_eq!(&all, sizes, "{sym}: lost or out of order");
        repeated += overlap;
    }
    eprintln!(
        "{repeated} rows repeated at the seam; retried {}",
        total(&summary, "retried")
    );
    assert!(
        total(&summary, "retried") > 0,
        "the kill was noticed: {summary}"
    );
    tp2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_fifo_message_reaches_the_dlq_and_holds_only_its_group() {
    let emu = emulators().await;
    let dlq = queue(&emu.sqs, &format!("{}.fifo", unique_name("dlq")), &[]).await;
    let dlq_arn = queue_arn(&emu.sqs, &dlq).await;
    let redrive = serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"});
    let main = queue(
        &emu.sqs,
        &format!("{}.fifo", unique_name("orders")),
        &[
            (QA::VisibilityTimeout, "2".into()),
            (QA::RedrivePolicy, redrive.to_string()),
            (QA::ContentBasedDeduplication, "true".into()),
        ],
    )
    .await;
    let send = |group: &'static str, body: String| {
        let sqs = emu.sqs.clone();
        let main = main.clone();
        async move {
            sqs.send_message()
                .queue_url(&main)
                .message_group_id(group)
                .message_body(body)
                .send()
                .await
                .unwrap();
        }
    };
    send("A", bad_trade(1, "A")).await;
    for n in 2..=4 {
        send("A", trade(n, "A")).await;
    }
    // Ids are payload keys: the groups' must differ.
    for n in 11..=15 {
        send("B", trade(n, "B")).await;
    }
    let tp = bridge::tp().await;
    let r = runner(
        &emu,
        tp.local_addr(),
        &[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_BAD_RECORDS", "fail"),
        ],
        // One message per receive: moto, unlike SQS, hands out a FIFO
        // group's later messages out of order once several of them time out
        // together (it checks the group's in-flight state per message while
        // it releases them). With one in flight per group the queue behaves
        // as SQS does; the failure response listing the rest of a group is
        // covered by the bridge tests.
        &[
            "sqs",
            "--queue",
            &main,
            "--wait-secs",
            "1",
            "--batch-size",
            "1",
            "--metrics",
            "emf",
        ],
    );
    let start = Instant::now();
    let b_flowed = wait_until(Duration::from_secs(60), || sizes_of(&tp, "B").len() == 5).await;
    assert!(b_flowed, "group B is held up:\n{}", r.logs());
    assert_eq!(sizes_of(&tp, "B"), vec![11, 12, 13, 14, 15]);
    // Group A waits behind its poison message while it is being retried.
    assert!(
        sizes_of(&tp, "A").is_empty(),
        "A went past its poison message"
    );
    let a_flowed = wait_until(Duration::from_secs(90), || sizes_of(&tp, "A").len() == 3).await;
    let waited = start.elapsed();
    let dead = drain(&emu.sqs, &dlq, 1, Duration::from_secs(30)).await;
    let (status, summary, logs, stdout) = r.terminate_with_stdout();
    assert!(a_flowed, "group A never resumed: {summary}\n{logs}");
    assert!(status.success(), "{status}\n{logs}");
    assert_eq!(sizes_of(&tp, "A"), vec![2, 3, 4]);
    assert_eq!(dead.len(), 1, "the poison message is in the DLQ");
    assert_eq!(dead[0].body(), Some(bad_trade(1, "A").as_str()));
    // Two receives by the runner, each a failure; then the redrive policy.
    assert!(
        waited >= Duration::from_secs(4),
        "A resumed after {waited:?}: too early for two visibility timeouts"
    );
    // A `poll done` line is INFO only when messages were left (else DEBUG).
    let poison_attempts = logs
        .lines()
        .filter(|l| l.contains("poll done") && !l.contains("left=0"))
        .count();
    assert!(
        poison_attempts >= 2,
        "poison received {poison_attempts} times:\n{logs}"
    );
    assert_eq!(total(&summary, "forwarded"), 8, "{summary}");
    assert_eq!(total(&summary, "deleted"), 8, "{summary}");
    // `--metrics emf`: each batch's EMF document, as the Lambda writes it,
    // next to its `batch done` line.
    let batches = logs.lines().filter(|l| l.contains("batch done")).count();
    let emf: Vec<serde_json::Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("_aws").is_some() && v.get("Table").is_none())
        .collect();
    assert!(batches >= 10, "a batch done line per batch:\n{logs}");
    assert_eq!(emf.len(), batches, "an EMF document per batch:\n{stdout}");
    assert!(emf.iter().all(|v| v["Source"] == "sqs"), "{stdout}");
    let forwarded: f64 = emf.iter().filter_map(|v| v["Forwarded"].as_f64()).sum();
    assert_eq!(forwarded, 8.0, "{stdout}");
    tp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_run_prints_records_per_second_and_dynamodb_cost() {
    let emu = emulators().await;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(common::tickbridge_exe())
            // The in-memory store counts the requests DynamoDB would serve
            // (moto's own speed, ~150 records/s here, would be the figure).
            .args([
                "bench",
                "run",
                "--records",
                "4000",
                "--shards",
                "4",
                "--batch-size",
                "1000",
            ])
            .args(["--kinesis-endpoint", &emu.kinesis_endpoint])
            .env("TICKBRIDGE_LOG", "warn")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("a JSON report line");
    assert_eq!(report["records"], 4000);
    assert_eq!(report["store"], "memory, counted");
    assert!(report["records_per_s"].as_f64().unwrap() > 0.0, "{report}");
    // Every record reached the stand-in, none twice.
    assert_eq!(report["rows_at_tickerplant"], 4000, "{report}");
    // Payload keys cost about one claim per record plus batched completes
    // and two checkpoint requests per shard batch: well under 2 per record.
    let per_1000 = report["dynamodb_requests_per_1000"].as_f64().unwrap();
    assert!(per_1000 > 1000.0 && per_1000 < 2000.0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_batches_go_to_the_on_failure_queue_in_lambdas_shape() {
    let emu = emulators().await;
    let stream = unique_name("onfail");
    let arn = create_stream(&emu.kinesis, &stream, 1).await;
    let dest = queue(&emu.sqs, &unique_name("onfailure"), &[]).await;
    // 0..10 good, 10 bad (fails under `fail`), 11..20 good.
    let recs: Vec<(usize, String)> = (0..20)
        .map(|n| {
            (
                0,
                if n == 10 {
                    bad_trade(n, "F")
                } else {
                    trade(n, "F")
                },
            )
        })
        .collect();
    put(&emu.kinesis, &stream, &recs).await;
    let tp = bridge::tp().await;
    let r = runner(
        &emu,
        tp.local_addr(),
        &[
            ("TICKBRIDGE_STORE", "memory"),
            ("TICKBRIDGE_BAD_RECORDS", "fail"),
        ],
        &[
            "kinesis",
            "--stream",
            &stream,
            "--batch-size",
            "100",
            "--idle-ms",
            "100",
            "--max-retries",
            "2",
            "--bisect-on-error",
            "--on-failure-queue",
            &dest,
            "--retry-min-ms",
            "20",
            "--retry-max-ms",
            "100",
        ],
    );
    let msgs = drain(&emu.sqs, &dest, 1, Duration::from_secs(90)).await;
    let flowed = wait_until(Duration::from_secs(60), || sizes_of(&tp, "F").len() == 19).await;
    let (status, summary, logs) = r.terminate();
    // `run` exits 1 when a batch went to the on-failure queue (records
    // were given up on), even when stopped by a signal.
    assert_eq!(status.code(), Some(1), "{status}\n{logs}");
    assert!(
        flowed,
        "records around the bad one: {:?}\n{logs}",
        sizes_of(&tp, "F")
    );
    let want: Vec<i64> = (0..20).filter(|n| *n != 10).collect();
    assert_eq!(sizes_of(&tp, "F"), want);
    assert_eq!(msgs.len(), 1, "{summary}\n{logs}");
    // The replay tool reads what the runner writes.
    let m = tickbridge::source::on_failure::parse_body(msgs[0].body().unwrap()).unwrap();
    let info = &m.kinesis_batch_info;
    assert_eq!(info.stream_arn, arn);
    assert_eq!(info.shard_id, "shardId-000000000000");
    // Bisection narrowed the failing half down to the bad record alone.
    assert_eq!(info.batch_size, Some(1), "{info:?}");
    assert_eq!(info.start_sequence_number, info.end_sequence_number);
    let rc = m.request_context.as_ref().expect("requestContext");
    assert_eq!(rc.condition.as_deref(), Some("RetryAttemptsExhausted"));
    assert_eq!(rc.approximate_invoke_count, Some(3));
    let raw: serde_json::Value = serde_json::from_str(msgs[0].body().unwrap()).unwrap();
    for field in [
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "KinesisBatchInfo",
    ] {
        assert!(raw.get(field).is_some(), "{field} missing: {raw}");
    }
    assert_eq!(total(&summary, "sent_to_on_failure"), 1, "{summary}");
    tp.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_shard_is_read_to_its_end_before_its_children() {
    let emu = emulators().await;
    let stream = unique_name("split");
    create_stream(&emu.kinesis, &stream, 1).await;
    let before: Vec<(usize, String)> = (0..300).map(|n| (0, trade(n, "P"))).collect();
    put(&emu.kinesis, &stream, &before).await;
    let keys = shard_hash_keys(&emu.kinesis, &stream).await;
    // Split the one shard in the middle of the hash key space (2^127).
    emu.kinesis
        .split_shard()
        .stream_name(&stream)
        .shard_to_split(&keys[0].0)
        .new_starting_hash_key("170141183460469231731687303715884105728")
        .send()
        .await
        .unwrap();
    let mut children = Vec::new();
    for _ in 0..100 {
        let out = emu
            .kinesis
            .list_shards()
            .stream_name(&stream)
            .send()
            .await
            .unwrap();
        children = out
            .shards()
            .iter()
            .filter(|s| s.parent_shard_id().is_some())
            .map(|s| s.hash_key_range().unwrap().starting_hash_key().to_string())
            .collect();
        if children.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(children.len(), 2, "the split made two children");
    let tp = bridge::tp().await;
    let r = runner(
        &emu,
        tp.local_addr(),
        &[("TICKBRIDGE_STORE", "memory")],
        &[
            "kinesis",
            "--stream",
            &stream,
            "--batch-size",
            "50",
            "--idle-ms",
            "100",
            "--discovery-ms",
            "500",
        ],
    );
    // Records on the children, put while the parent is being read.
    for (c, key) in children.iter().enumerate() {
        for n in 0..20 {
            emu.kinesis
                .put_record()
                .stream_name(&stream)
                .partition_key("x")
                .explicit_hash_key(key)
                .data(aws_sdk_kinesis::primitives::Blob::new(trade(
                    1000 * (c as i64 + 1) + n,
                    "P",
                )))
                .send()
                .await
                .unwrap();
        }
    }
    let done = wait_until(Duration::from_secs(120), || sizes_of(&tp, "P").len() == 340).await;
    let (status, _summary, logs) = r.terminate();
    assert!(done, "{:?}\n{logs}", sizes_of(&tp, "P").len());
    assert!(status.success());
    let got = sizes_of(&tp, "P");
    // Every parent record first, in order; then each child in its order.
    assert_eq!(&got[..300], &(0..300).collect::<Vec<i64>>()[..]);
    for c in 1..=2i64 {
        let child: Vec<i64> = got.iter().copied().filter(|s| s / 1000 == c).collect();
        assert_eq!(child, (0..20).map(|n| 1000 * c + n).collect::<Vec<_>>());
    }
    assert!(logs.contains("shard read to its end"), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_finishes_the_batch_in_flight_and_repeats_nothing() {
    let emu = emulators().await;
    let stream = unique_name("term");
    create_stream(&emu.kinesis, &stream, 2).await;
    let table = unique_name("term");
    ensure_table(&emu.ddb, &table).await.unwrap();
    let quarantine = queue(&emu.sqs, &unique_name("quarantine"), &[]).await;
    let w = workload(800, 2);
    put(&emu.kinesis, &stream, &w.recs).await;
    let tp = bridge::tp().await;
    let env = [
        ("TICKBRIDGE_STORE", "dynamodb"),
        ("TICKBRIDGE_DEDUPE_TABLE", table.as_str()),
        ("TICKBRIDGE_QUARANTINE_QUEUE_URL", quarantine.as_str()),
    ];
    let args = [
        "kinesis",
        "--stream",
        &stream,
        "--batch-size",
        "50",
        "--idle-ms",
        "100",
    ];
    let want = good(&w);
    let first = runner(&emu, tp.local_addr(), &env, &args);
    let partway = wait_until(Duration::from_secs(180), || {
        tp.row_count("trade").unwrap_or(0) >= want / 4
    })
    .await;
    assert!(partway, "no progress:\n{}", first.logs());
    let (status, summary, logs) = first.terminate();
    let at_stop = tp.row_count("trade").unwrap_or(0);
    eprintln!("SIGTERM after {at_stop} of {want} rows: {summary}");
    assert!(status.success(), "{status}\n{logs}");
    assert!(logs.contains("stop requested"), "{logs}");
    assert!(at_stop < want, "stopped too late to show anything");

    let second = runner(&emu, tp.local_addr(), &env, &args);
    let done = wait_until(Duration::from_secs(180), || {
        tp.row_count("trade").unwrap_or(0) >= want
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _, logs) = second.terminate();
    assert!(done && status.success(), "{status}\n{logs}");
    // A graceful stop commits what it confirmed: nothing lost, nothing twice.
    let got = sizes_by_sym(&tp);
    for (sym, sizes) in &w.expected {
        assert_eq!(got.get(sym), Some(sizes), "{sym}");
    }
    tp.shutdown().await;
}
