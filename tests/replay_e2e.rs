//! `tickbridge replay` end to end: DLQs and on-failure queues on moto,
//! streams on kinesis-local, DynamoDB dedupe on moto, the tickerplant
//! stand-in over TCP; the kill test runs the real binary.

mod replay_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use replay_support::*;
use tickbridge::replay::kinesis::KinesisReplay;
use tickbridge::replay::sqs::{KeyFrom, SqsReplay};
use tickbridge::replay::Options;

fn sqs_replay(client: &aws_sdk_sqs::Client, dlq: &str) -> SqsReplay {
    SqsReplay {
        client: client.clone(),
        dlq_url: dlq.to_string(),
        redrive_to: None,
        visibility_timeout: Duration::from_secs(30),
        key_from: KeyFrom::Auto,
    }
}

/// `n` messages over `groups` groups, interleaved; group `g` carries sym
/// `G<g>` and message `n` a trade of size `n`.
fn dlq_messages(n: usize, groups: usize, tag: &str) -> Vec<DlqMsg> {
    (0..n)
        .map(|i| DlqMsg {
            group: format!("G{}", i % groups),
            original_id: format!("{tag}-orig-{i}"),
            body: trade(i as i64, &format!("G{}", i % groups)),
        })
        .collect()
}

fn sizes_in_group(n: usize, groups: usize, g: usize) -> Vec<i64> {
    (0..n)
        .filter(|i| i % groups == g)
        .map(|i| i as i64)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_forwards_only_what_had_not_arrived_in_group_order() {
    let tp = tp().await;
    let sqs = sqs_client().await;
    let msgs = dlq_messages(500, 5, "a");
    // The bridge forwarded the first 40 of each group before the failure
    // that sent everything to the DLQ.
    let first = Bridge::new(tp.local_addr(), Opts::default()).await;
    let early: Vec<&DlqMsg> = msgs
        .iter()
        .filter(|m| {
            let n: usize = m.original_id.rsplit('-').next().unwrap().parse().unwrap();
            n < 200
        })
        .collect();
    for chunk in early.chunks(10) {
        let inv = first.run(&first_delivery("source.fifo", chunk)).await;
        assert_eq!(forwarded(&inv), chunk.len());
    }
    assert_eq!(tp.row_count("trade"), Some(200));
    let dlq = fifo_queue(&sqs, "dlq").await;
    fill_fifo_dlq(&sqs, &dlq, &msgs).await;
    assert_eq!(depth(&sqs, &dlq).await, (500, 0));

    let again = Bridge::on_table(
        tp.local_addr(),
        Opts::default(),
        first.ddb.clone(),
        first.table.clone(),
    );
    let mut rep = replayer(again, Options::default());
    sqs_replay(&sqs, &dlq).run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!(report.messages, 500, "{report}");
    assert_eq!(report.forwarded, 300, "{report}");
    assert_eq!(report.duplicates, 200, "{report}");
    assert_eq!(report.deleted, 500, "{report}");
    assert_eq!(depth(&sqs, &dlq).await, (0, 0));
    assert_eq!(tp.row_count("trade"), Some(500));
    for g in 0..5 {
        assert_eq!(
            sizes_of(&tp, &format!("G{g}")),
            sizes_in_group(500, 5, g),
            "group G{g}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_and_reports_what_it_would_do() {
    let tp = tp().await;
    let sqs = sqs_client().await;
    // A group per message: a FIFO queue shows a group's later messages
    // only once its earlier ones are deleted, which a dry run never does.
    let mut msgs = dlq_messages(18, 18, "d");
    msgs[4].body = bad_trade(4, "G4");
    msgs[11].body = "{not json".into();
    let bridge = Bridge::new(tp.local_addr(), Opts::default()).await;
    let early: Vec<&DlqMsg> = msgs[..3].iter().collect();
    let inv = bridge.run(&first_delivery("source.fifo", &early)).await;
    assert_eq!(forwarded(&inv), 3);
    let dlq = fifo_queue(&sqs, "dry").await;
    fill_fifo_dlq(&sqs, &dlq, &msgs).await;
    let items_before = bridge.scan_count().await;
    let (ddb, table) = (bridge.ddb.clone(), bridge.table.clone());

    let opts = Options {
        dry_run: true,
        ..Options::default()
    };
    let mut rep = replayer(bridge, opts);
    sqs_replay(&sqs, &dlq).run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert_eq!(report.messages, 18, "{report}");
    assert_eq!(report.duplicates, 3, "{report}");
    assert_eq!(report.quarantined, 2, "{report}");
    assert_eq!(report.forwarded, 13, "{report}");
    assert_eq!(report.deleted, 0, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("would forward") && text.contains("would quarantine"),
        "{text}"
    );
    assert!(
        text.contains("d-orig-4") && text.contains("price"),
        "{text}"
    );
    assert!(text.contains("d-orig-11"), "{text}");
    // Nothing changed: all messages visible again, no rows, no items.
    assert_eq!(depth(&sqs, &dlq).await, (18, 0));
    assert_eq!(tp.row_count("trade"), Some(3));
    let after = Bridge::on_table(tp.local_addr(), Opts::default(), ddb, table);
    assert_eq!(after.scan_count().await, items_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_on_failure_range_is_read_back_exactly_and_only_once() {
    let tp = tp().await;
    let sqs = sqs_client().await;
    let kl = KinesisLocal::shared();
    let kinesis = kl.client().await;
    let stream = unique_name("replay");
    let arn = create_stream(&kinesis, &stream, 1).await;
    let seqs = put_trades(&kinesis, &stream, 0, 1300, "K").await;
    let (from, to) = (150usize, 1149usize);
    let queue = standard_queue(&sqs, "onfail").await;
    let record = on_failure(&arn, "shardId-000000000000", &seqs[from], &seqs[to], 1000);
    send_bodies(&sqs, &queue, &[sns_wrapped(&record)]).await;

    let bridge = Bridge::new(tp.local_addr(), Opts::default()).await;
    let (ddb, table) = (bridge.ddb.clone(), bridge.table.clone());
    let source = KinesisReplay {
        sqs: sqs.clone(),
        kinesis: kinesis.clone(),
        queue_url: queue.clone(),
        visibility_timeout: Duration::from_secs(30),
        page_limit: 300,
    };
    let mut rep = replayer(bridge, Options::default());
    source.run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        (report.forwarded, report.duplicates, report.deleted),
        (1000, 0, 1),
        "{report}"
    );
    assert_eq!(depth(&sqs, &queue).await, (0, 0));
    let expected: Vec<i64> = (from as i64..=to as i64).collect();
    assert_eq!(sizes_of(&tp, "K"), expected);

    // The same failure reported again: all duplicates, nothing forwarded.
    send_bodies(&sqs, &queue, std::slice::from_ref(&record)).await;
    let mut rep = replayer(
        Bridge::on_table(tp.local_addr(), Opts::default(), ddb.clone(), table.clone()),
        Options::default(),
    );
    source.run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!((report.forwarded, report.duplicates), (0, 1000), "{report}");
    assert_eq!(sizes_of(&tp, "K"), expected);

    // A range whose start is not in the shard (trimmed, past retention): a
    // clear error naming the message, and the message kept.
    let gone = on_failure(
        &arn,
        "shardId-000000000000",
        &format!("{}1", &seqs[0][..seqs[0].len() - 1]),
        &seqs[5],
        6,
    );
    send_bodies(&sqs, &queue, &[gone]).await;
    let mut rep = replayer(
        Bridge::on_table(tp.local_addr(), Opts::default(), ddb, table),
        Options::default(),
    );
    source.run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert_eq!(report.failed.len(), 1, "{report}");
    let (what, why) = &report.failed[0];
    assert!(what.starts_with("on-failure message "), "{what}");
    assert!(
        why.contains("retention") || why.contains("not the start"),
        "{why}"
    );
    assert_eq!(report.kept, 1, "{report}");
    assert_eq!(depth(&sqs, &queue).await, (1, 0));
    assert_eq!(sizes_of(&tp, "K"), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_replay_and_run_again_loses_and_duplicates_nothing() {
    let tp = tp().await;
    let sqs = sqs_client().await;
    let msgs = dlq_messages(240, 4, "k");
    let dlq = fifo_queue(&sqs, "kill").await;
    fill_fifo_dlq(&sqs, &dlq, &msgs).await;
    let quarantine = standard_queue(&sqs, "kq").await;
    let bridge = Bridge::new(tp.local_addr(), Opts::default()).await;
    let table = bridge.table.clone();
    // The replay's fourth chaser is the last thing to reach the stand-in.
    let proxy = FreezingProxy::start(tp.local_addr(), 4).await;
    let log = std::env::temp_dir().join(unique_name("replay-kill-stderr"));
    let run = |tp_addr: String| {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        Command::new(common::tickbridge_exe())
            .args(["replay", "sqs", "--dlq", &dlq, "--yes", "--tp", &tp_addr])
            .args(["--store", "dynamodb", "--dedupe-table", &table])
            .args([
                "--quarantine-queue-url",
                &quarantine,
                "--visibility-timeout",
                "8",
            ])
            .args(["--endpoint", &MotoServer::shared().endpoint()])
            .envs(common::EMULATOR_AWS_ENV)
            .env("TICKBRIDGE_TP_READ_TIMEOUT_MS", "20000")
            // The proxy freezes the link right after a chaser, a batch
            // boundary only in async mode (one chaser per batch); without
            // the preflight's queries every sync message is a chaser. What
            // a kill leaves behind does not depend on how runs are sent.
            .env("TICKBRIDGE_PUBLISH", "async")
            .env("TICKBRIDGE_PREFLIGHT", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap()
    };
    let mut child = run(proxy.addr.to_string());
    let held = proxy.held.clone();
    assert!(
        wait_until(Duration::from_secs(25), || held
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0)
        .await,
        "the replay never got past the fourth chaser: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(proxy.is_frozen());
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let arrived = tp.row_count("trade").unwrap_or(0);
    assert!(
        arrived > 0 && arrived < 240,
        "{arrived} rows before the kill"
    );
    let (visible, in_flight) = depth(&sqs, &dlq).await;
    assert!(in_flight > 0, "the killed batch is in flight");
    assert_eq!(
        visible + in_flight + arrived as u64,
        240,
        "each message forwarded or still queued"
    );

    // Its messages come back after the visibility timeout, its claims
    // expired a little before.
    tokio::time::sleep(Duration::from_secs(9)).await;
    let out = run(tp.local_addr().to_string()).wait_with_output().unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{summary}\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(summary.contains("replay summary"), "{summary}");
    assert_eq!(depth(&sqs, &dlq).await, (0, 0));
    assert_eq!(tp.row_count("trade"), Some(240));
    // Every message exactly once. Order inside a group is not asserted
    // here: when several in-flight messages of a group time out together,
    // moto hands out the group's last one first (SQS hands out the first);
    // group order across rounds is shown by the DLQ test above.
    for g in 0..4 {
        let mut got = sizes_of(&tp, &format!("G{g}"));
        got.sort_unstable();
        assert_eq!(got, sizes_in_group(240, 4, g), "group G{g}");
    }
    let _ = std::fs::remove_file(&log);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_moves_messages_back_keeping_group_and_dedup_ids() {
    let sqs = sqs_client().await;
    let msgs = dlq_messages(12, 2, "r");
    let dlq = fifo_queue(&sqs, "rdlq").await;
    let source = fifo_queue(&sqs, "rsrc").await;
    fill_fifo_dlq(&sqs, &dlq, &msgs).await;
    let tp = tp().await;
    let bridge = Bridge::new(tp.local_addr(), Opts::default()).await;
    let mut rep = replayer(bridge, Options::default());
    let mut r = sqs_replay(&sqs, &dlq);
    r.redrive_to = Some(source.clone());
    r.run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!((report.redriven, report.deleted), (12, 12), "{report}");
    assert_eq!(depth(&sqs, &dlq).await, (0, 0));
    assert_eq!(tp.row_count("trade").unwrap_or(0), 0);
    let mut got_all = Vec::new();
    loop {
        let got = tickbridge::aws::sqs::receive(
            &sqs,
            &source,
            10,
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
        .unwrap();
        if got.is_empty() {
            break;
        }
        let refs: Vec<&aws_sdk_sqs::types::Message> = got.iter().collect();
        assert!(tickbridge::aws::sqs::delete(&sqs, &source, &refs)
            .await
            .is_empty());
        got_all.extend(got);
    }
    assert_eq!(got_all.len(), 12);
    use aws_sdk_sqs::types::MessageSystemAttributeName as A;
    for m in &got_all {
        let attrs = m.attributes().unwrap();
        let dedup = &attrs[&A::MessageDeduplicationId];
        let original = msgs.iter().find(|x| &x.original_id == dedup).unwrap();
        assert_eq!(attrs[&A::MessageGroupId], original.group);
        assert_eq!(m.body().unwrap(), original.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_event_file_replays_once() {
    let tp = tp().await;
    let stream = unique_name("file");
    let kinesis_event = kinesis_shard0(
        &stream,
        &(0..5)
            .map(|n| (n, trade(n as i64, "F")))
            .collect::<Vec<_>>(),
    );
    let sqs_event = sqs(
        "cap.fifo",
        &[
            msg("g", "cap-1", trade(5, "F")),
            msg("g", "cap-2", bad_trade(6, "F")),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, format!("{kinesis_event}\n\n{sqs_event}\n")).unwrap();
    let bridge = Bridge::new(tp.local_addr(), Opts::default()).await;
    let (ddb, table) = (bridge.ddb.clone(), bridge.table.clone());
    let mut rep = replayer(bridge, Options::default());
    tickbridge::replay::file::run(&mut rep, &path)
        .await
        .unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        (report.messages, report.forwarded, report.quarantined),
        (2, 6, 1),
        "{report}"
    );
    assert_eq!(sizes_of(&tp, "F"), vec![0, 1, 2, 3, 4, 5]);
    // Again: the Kinesis records by shard#sequence, the SQS ones by id (the
    // quarantined one too: it is done).
    let mut rep = replayer(
        Bridge::on_table(tp.local_addr(), Opts::default(), ddb, table),
        Options::default(),
    );
    tickbridge::replay::file::run(&mut rep, &path)
        .await
        .unwrap();
    let report = rep.finish();
    assert_eq!((report.forwarded, report.duplicates), (0, 7), "{report}");
    assert_eq!(sizes_of(&tp, "F"), vec![0, 1, 2, 3, 4, 5]);
}

#[test]
fn refuses_without_yes_when_stdin_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    std::fs::write(&path, "{\"Records\":[]}\n").unwrap();
    let out = Command::new(common::tickbridge_exe())
        .args(["replay", "file"])
        .arg(&path)
        .args(["--store", "memory", "--tp", "127.0.0.1:1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("stdin is not a terminal") && err.contains("--yes"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
