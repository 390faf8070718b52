//! KPL aggregates through the whole bridge (`App::handle`, as `invoke` and
//! the Lambda run it): aggregates from the third-party producer
//! (`aws-kinesis-agg`) mixed with plain records, DynamoDB and the
//! quarantine queue on moto, the tickerplant stand-in over TCP.

mod bridge_support;
mod kpl_support;

use base64::Engine;
use bridge_support::*;
use tickbridge::dedupe::DedupeStore;
use tickbridge::pipeline::{now_ms, Decoder};
use tickbridge::quarantine::{Quarantine, SqsQuarantine};
use tickbridge::source::event::parse_event;
use tickbridge::source::SourceOptions;

/// User records `ns` as trades of `sym`, each under its own partition key.
fn users(ns: &[i64], sym: &str, bad: &[i64]) -> Vec<(String, Vec<u8>)> {
    ns.iter()
        .map(|&n| {
            let body = if bad.contains(&n) {
                bad_trade(n, sym)
            } else {
                trade(n, sym)
            };
            (format!("user-{n}"), body.into_bytes())
        })
        .collect()
}

fn plain(n: i64, sym: &str) -> Vec<u8> {
    trade(n, sym).into_bytes()
}

async fn quarantine_bodies(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            bodies.push(serde_json::from_str::<serde_json::Value>(m.body().unwrap()).unwrap());
        }
        if bodies.len() >= n {
            break;
        }
    }
    bodies
}

#[tokio::test]
async fn aggregated_and_plain_records_arrive_in_order_and_bad_ones_are_quarantined_alone() {
    let tp = tp().await;
    let sqs = tickbridge::aws::sqs_client(&sdk().await);
    let url = sqs
        .create_queue()
        .queue_name(unique_name("quarantine"))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let opts = Opts {
        quarantine: Some(Quarantine::Sqs(SqsQuarantine::new(
            sqs.clone(),
            url.clone(),
        ))),
        ..Opts::default()
    };
    let b = Bridge::new(tp.local_addr(), opts).await;
    let stream = unique_name("kpl");
    let arn = stream_arn(&stream);
    let sym = "M";
    let mut damaged = kpl_support::aggregate(&users(&[7, 8], sym, &[]), None);
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    let data: Vec<Vec<u8>> = vec![
        plain(0, sym),
        kpl_support::aggregate(&users(&[1, 2, 3, 4, 5], sym, &[]), None),
        plain(6, sym),
        // The MD5 trailer damaged: a plain record, undecodable.
        damaged.clone(),
        // User record 1 (trade 10) points past the key table.
        kpl_support::aggregate(&users(&[9, 10, 11], sym, &[]), Some((1, 7))),
        plain(12, sym),
        // User record 1 (trade 14) has a wrong type in `price`.
        kpl_support::aggregate(&users(&[13, 14, 15], sym, &[14]), None),
    ];
    let records: Vec<(String, String, Vec<u8>)> = data
        .iter()
        .enumerate()
        .map(|(i, d)| (seq(0, i), format!("agg-{i}"), d.clone()))
        .collect();
    let ev = kpl_support::event(&arn, &records);

    let inv = b.run(&ev).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!(
        inv.summary.records, 15,
        "7 Kinesis records, 15 user records"
    );
    assert_eq!(inv.summary.quarantined, 3);
    assert_eq!(inv.summary.forwarded, 12);
    assert_eq!(
        sizes_of(&tp, sym),
        vec![0, 1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 15],
        "every good user record once, in stream order"
    );
    let lane = shard_lane(&stream, 0);
    assert_eq!(b.checkpoint(&lane).await, Some(seq(0, 6)));

    let mut bodies = quarantine_bodies(&sqs, &url, 3).await;
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    bodies.sort_by_key(|v| v["position"].as_str().unwrap().to_string());
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = |v: &serde_json::Value| b64.decode(v["payload"].as_str().unwrap()).unwrap();
    let reason = |v: &serde_json::Value| v["reason"].as_str().unwrap().to_string();
    // The damaged aggregate: whole, as a plain record, saying why it was not
    // read as an aggregate.
    assert_eq!(bodies[0]["position"], seq(0, 3));
    assert_eq!(payload(&bodies[0]), damaged);
    assert!(reason(&bodies[0]).contains("MD5"), "{}", reason(&bodies[0]));
    // The bad user record: alone, named by sequence and subsequence.
    assert_eq!(bodies[1]["position"], format!("{}:1", seq(0, 4)));
    assert_eq!(bodies[1]["failure_id"], seq(0, 4));
    assert_eq!(payload(&bodies[1]), plain(10, sym));
    let r = reason(&bodies[1]);
    for part in ["sub-record 1", &seq(0, 4), "partition_key_index 7"] {
        assert!(r.contains(part), "{r:?} names {part}");
    }
    assert_eq!(bodies[2]["position"], format!("{}:1", seq(0, 6)));
    assert_eq!(payload(&bodies[2]), bad_trade(14, sym).into_bytes());
    assert!(
        reason(&bodies[2]).contains("price"),
        "{}",
        reason(&bodies[2])
    );
    assert!(bodies.iter().all(|v| v["lane"] == lane));

    // The same event again: every user record a duplicate, nothing sent.
    let inv = b.run(&ev).await;
    assert_eq!((duplicates(&inv), forwarded(&inv)), (15, 0));
    assert_eq!(inv.summary.dedupe_requests, 1, "one checkpoint read");
    assert_eq!(sizes_of(&tp, sym).len(), 12);
    tp.shutdown().await;
}

#[tokio::test]
async fn a_redelivered_aggregate_skips_the_user_records_done_before_the_failure() {
    let tp = tp().await;
    let b = Bridge::new(tp.local_addr(), Opts::default()).await;
    let stream = unique_name("kpl");
    let arn = stream_arn(&stream);
    let sym = "R";
    let agg = kpl_support::aggregate(&users(&[20, 21, 22, 23, 24, 25], sym, &[]), None);
    let records = vec![
        (seq(0, 0), "a".to_string(), plain(19, sym)),
        (seq(0, 1), "a".to_string(), agg),
        (seq(0, 2), "a".to_string(), plain(26, sym)),
    ];
    let ev = kpl_support::event(&arn, &records);
    // Another invocation holds the payload key of user record 3 (trade 23).
    let parsed = parse_event(ev.to_string().as_bytes(), &SourceOptions::default()).unwrap();
    let held = parsed
        .iter()
        .find(|r| r.sub.as_ref().is_some_and(|s| s.index == 3))
        .map(|r| b.app.decoder().payload_key(r).unwrap().unwrap())
        .unwrap();
    let now = now_ms();
    b.app
        .store()
        .claim(std::slice::from_ref(&held), now, now + 60_000)
        .await
        .unwrap();

    let inv = b.run(&ev).await;
    // Lambda can only be told the aggregate's sequence number ...
    assert_eq!(failures(&inv), vec![seq(0, 1)]);
    assert_eq!(sizes_of(&tp, sym), vec![19, 20, 21, 22]);
    // ... so the checkpoint remembers how far into it the lane got.
    let lane = shard_lane(&stream, 0);
    assert_eq!(b.checkpoint(&lane).await, Some(format!("{}:2", seq(0, 1))));

    // The other invocation gives the key up; Lambda redelivers from the
    // aggregate. The retry runs where payload keys are off, so only the
    // lane checkpoint can keep user records 0..=2 from going again.
    b.app
        .store()
        .release(std::slice::from_ref(&held), now + 60_000)
        .await
        .unwrap();
    let no_keys = Opts {
        payload_keys: false,
        ..Opts::default()
    };
    let retry = Bridge::on_table(tp.local_addr(), no_keys, b.ddb.clone(), b.table.clone());
    let inv = retry.run(&kpl_support::event(&arn, &records[1..])).await;
    assert!(failures(&inv).is_empty(), "{:?}", inv.summary);
    assert_eq!((duplicates(&inv), forwarded(&inv)), (3, 4));
    assert_eq!(
        inv.summary.dedupe_requests, 2,
        "one read, one conditional write"
    );
    assert_eq!(sizes_of(&tp, sym), (19..=26).collect::<Vec<i64>>());
    assert_eq!(retry.checkpoint(&lane).await, Some(seq(0, 2)));
    tp.shutdown().await;
}
