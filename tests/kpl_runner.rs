//! `tickbridge run kinesis` on KPL aggregates: the real binary polling
//! kinesis-local, DynamoDB on moto, the stand-in over TCP. Aggregates come
//! from the third-party producer (`aws-kinesis-agg`).

mod kpl_support;
// Its re-exports serve runner_e2e too.
#[allow(unused_imports)]
mod runner_support;

use std::time::Duration;

use runner_support::*;
use tickbridge::dedupe::dynamodb::ensure_table;
use tickbridge::dedupe::DedupeStore;
use tickbridge::pipeline::{now_ms, Decoder};
use tickbridge::source::kinesis::{records, Data, KinesisParts};
use tickbridge::source::SourceOptions;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runner_killed_partway_through_an_aggregate_resumes_inside_it() {
    let emu = emulators().await;
    let stream = unique_name("kplkill");
    let arn = create_stream(&emu.kinesis, &stream, 1).await;
    let table = unique_name("ckpt");
    ensure_table(&emu.ddb, &table).await.unwrap();
    let tp = bridge::tp().await;
    let sym = "A";

    // Plain records between aggregates of 25 user records: sizes 0..=207
    // in stream order.
    let mut put_list: Vec<(String, Vec<u8>)> = Vec::new();
    let mut n = 0i64;
    let mut aggregates = Vec::new();
    for a in 0..8 {
        put_list.push((format!("plain-{a}"), trade(n, sym).into_bytes()));
        n += 1;
        let users: Vec<(String, Vec<u8>)> = (n..n + 25)
            .map(|k| (format!("user-{k}"), trade(k, sym).into_bytes()))
            .collect();
        n += 25;
        aggregates.push(put_list.len());
        put_list.push((format!("agg-{a}"), kpl_support::aggregate(&users, None)));
    }
    let seqs = kpl_support::put(&emu.kinesis, &stream, &put_list).await;
    let want: Vec<i64> = (0..n).collect();

    // Another invocation holds user record 10 of the fourth aggregate, so
    // the runner stops there, again and again, until it is killed.
    let bridge = bridge::Bridge::on_table(
        tp.local_addr(),
        bridge::Opts::default(),
        emu.ddb.clone(),
        table.clone(),
    );
    let stuck = aggregates[3];
    let mut users = Vec::new();
    let parts = KinesisParts {
        stream_arn: &arn,
        shard_id: "shardId-000000000000",
        sequence_number: &seqs[stuck],
        partition_key: &put_list[stuck].0,
        data: Data::Bytes(&put_list[stuck].1),
        arrival_ms: 0,
    };
    records(parts, &SourceOptions::default(), &mut users).unwrap();
    let held = bridge
        .app
        .decoder()
        .payload_key(&users[10])
        .unwrap()
        .unwrap();
    let now = now_ms();
    bridge
        .app
        .store()
        .claim(std::slice::from_ref(&held), now, now + 600_000)
        .await
        .unwrap();

    let env = [
        ("TICKBRIDGE_STORE", "dynamodb"),
        ("TICKBRIDGE_DEDUPE_TABLE", table.as_str()),
        ("TICKBRIDGE_BAD_RECORDS", "fail"),
    ];
    // Two Kinesis records per batch: a plain one and an aggregate.
    let args = [
        "kinesis",
        "--stream",
        &stream,
        "--batch-size",
        "2",
        "--idle-ms",
        "100",
        "--batch-timeout-ms",
        "3000",
        "--retry-min-ms",
        "50",
        "--retry-max-ms",
        "300",
    ];
    let lane = format!("{arn}/shardId-000000000000");
    let partway = format!("{}:9", seqs[stuck]);
    let first = runner(&emu, tp.local_addr(), &env, &args);
    let mut at = None;
    for _ in 0..600 {
        at = bridge.checkpoint(&lane).await;
        if at.as_deref() == Some(partway.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(at, Some(partway.clone()), "{}", first.logs());
    // A few more retries of the cut batch, then no chance to finish anything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let first_logs = first.kill();
    let upto = (aggregates[3] as i64 / 2) * 26 + 1 + 10;
    assert_eq!(
        sizes_of(&tp, sym),
        (0..upto).collect::<Vec<i64>>(),
        "{first_logs}"
    );
    assert_eq!(bridge.checkpoint(&lane).await, Some(partway.clone()));

    // The claim is given up; the restarted runner reads the checkpoint
    // `seq:9`, opens the shard AT that sequence number and skips user
    // records 0..=9 of it.
    bridge
        .app
        .store()
        .release(std::slice::from_ref(&held), now + 600_000)
        .await
        .unwrap();
    let second = runner(&emu, tp.local_addr(), &env, &args);
    let done = wait_until(Duration::from_secs(120), || {
        sizes_of(&tp, sym).len() >= want.len()
    })
    .await;
    assert!(done, "not everything arrived:\n{}", second.logs());
    tokio::time::sleep(Duration::from_millis(800)).await;
    let (status, summary, logs) = second.terminate();
    assert!(status.success(), "{status}\n{logs}");
    // Every user record exactly once, in stream order.
    assert_eq!(sizes_of(&tp, sym), want, "{logs}");
    let resumed = logs
        .lines()
        .find(|l| l.contains("shard poller started"))
        .unwrap_or_default();
    assert!(resumed.contains(&seqs[stuck]), "{resumed}");
    assert!(resumed.contains("at"), "{resumed}");
    // User records 0..=9 are skipped on every attempt (claims the killed
    // process had taken behind the cut hold the retry up until they
    // expire with its batch timeout).
    assert!(total(&summary, "duplicates") >= 10, "{summary}");
    assert_eq!(total(&summary, "forwarded"), (n - upto) as u64, "{summary}");
    assert_eq!(bridge.checkpoint(&lane).await, seqs.last().cloned());
    tp.shutdown().await;
}
