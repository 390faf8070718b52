//! `replay kinesis` of an on-failure range that holds KPL aggregates (from
//! the third-party producer `aws-kinesis-agg`): kinesis-local, moto, the
//! stand-in over TCP.

mod kpl_support;
mod replay_support;

use std::time::Duration;

use replay_support::*;
use tickbridge::replay::kinesis::KinesisReplay;
use tickbridge::replay::Options;

fn users(ns: std::ops::RangeInclusive<i64>, sym: &str) -> Vec<(String, Vec<u8>)> {
    ns.map(|n| (format!("user-{n}"), trade(n, sym).into_bytes()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_failure_range_with_aggregates_is_replayed_user_record_by_user_record() {
    let tp = tp().await;
    let sqs = sqs_client().await;
    let kinesis = KinesisLocal::shared().client().await;
    let stream = unique_name("kplreplay");
    let arn = create_stream(&kinesis, &stream, 1).await;
    let sym = "P";
    let put_list = vec![
        ("p0".to_string(), trade(0, sym).into_bytes()),
        (
            "a1".to_string(),
            kpl_support::aggregate(&users(1..=10, sym), None),
        ),
        ("p11".to_string(), trade(11, sym).into_bytes()),
        (
            "a2".to_string(),
            kpl_support::aggregate(&users(12..=21, sym), None),
        ),
        ("p22".to_string(), trade(22, sym).into_bytes()),
    ];
    let seqs = kpl_support::put(&kinesis, &stream, &put_list).await;
    // The mapping gave up on Kinesis records 1..=3: two aggregates and the
    // plain record between them.
    let queue = standard_queue(&sqs, "onfail").await;
    let record = on_failure(&arn, "shardId-000000000000", &seqs[1], &seqs[3], 3);
    send_bodies(&sqs, &queue, std::slice::from_ref(&record)).await;

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
    // Each user record has its own key (`shard#seq#sub`): none of an
    // aggregate's records is mistaken for another's duplicate.
    assert_eq!(
        (report.forwarded, report.duplicates, report.deleted),
        (21, 0, 1),
        "{report}"
    );
    assert_eq!(sizes_of(&tp, sym), (1..=21).collect::<Vec<i64>>());
    assert_eq!(depth(&sqs, &queue).await, (0, 0));

    // The same failure reported again: every user record a duplicate.
    send_bodies(&sqs, &queue, std::slice::from_ref(&record)).await;
    let mut rep = replayer(
        Bridge::on_table(tp.local_addr(), Opts::default(), ddb, table),
        Options::default(),
    );
    source.run(&mut rep).await.unwrap();
    let report = rep.finish();
    assert!(report.succeeded(), "{report}");
    assert_eq!((report.forwarded, report.duplicates), (0, 21), "{report}");
    assert_eq!(sizes_of(&tp, sym), (1..=21).collect::<Vec<i64>>());
    tp.shutdown().await;
}
