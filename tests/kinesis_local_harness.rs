//! The kinesis-local harness the runner and replay tests stand on: it
//! starts, takes records on several shards and gives them back with real
//! 56-digit sequence numbers, which the bridge compares as strings.

mod common;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::ShardIteratorType;
use common::kinesis_local::{create_stream, KinesisLocal};
use common::moto::unique_name;
use tickbridge::source::seqno::cmp_seq;

#[tokio::test]
async fn records_come_back_in_shard_order_with_56_digit_sequence_numbers() {
    let kl = KinesisLocal::shared();
    let client = kl.client().await;
    let name = unique_name("harness");
    let arn = create_stream(&client, &name, 2).await;
    assert!(arn.ends_with(&format!("stream/{name}")), "{arn}");

    for i in 0..10 {
        client
            .put_record()
            .stream_name(&name)
            .partition_key(format!("k{}", i % 3))
            .data(Blob::new(format!("{{\"n\":{i}}}")))
            .send()
            .await
            .expect("put record");
    }
    let shards = client
        .list_shards()
        .stream_name(&name)
        .send()
        .await
        .expect("list shards");
    assert_eq!(shards.shards().len(), 2);
    let mut total = 0;
    for shard in shards.shards() {
        let it = client
            .get_shard_iterator()
            .stream_name(&name)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .expect("iterator")
            .shard_iterator
            .expect("an iterator");
        let got = client
            .get_records()
            .shard_iterator(it)
            .send()
            .await
            .expect("get records");
        let seqs: Vec<&str> = got.records().iter().map(|r| r.sequence_number()).collect();
        for s in &seqs {
            assert_eq!(s.len(), 56, "sequence number {s}");
        }
        for pair in seqs.windows(2) {
            assert!(cmp_seq(pair[0], pair[1]).is_lt(), "{pair:?} out of order");
        }
        total += seqs.len();
    }
    assert_eq!(total, 10);
}
