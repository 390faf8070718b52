//! `cargo bench -p tickbridge-tools --bench kpl`: KPL deaggregation alone.
//! 10,000 trade-like user records in 100 aggregates (the shape issue 13's
//! `bench bridge` uses), split over and over; prints user records/s and
//! MB/s of aggregate bytes, for the zero-copy split and for a split that
//! copies each record's data into its own `Vec` (what a `Vec<u8>` payload
//! in `Record` would cost).

use std::hint::black_box;
use std::time::{Duration, Instant};
use tickbridge::source::kpl::{self, Aggregation, Bytes, UserRecord};

const AGGREGATES: usize = 100;
const PER_AGGREGATE: usize = 100;
const MIN_TIME: Duration = Duration::from_secs(2);

fn aggregates() -> Vec<Bytes> {
    let syms = [
        "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM",
    ];
    (0..AGGREGATES)
        .map(|a| {
            let rows: Vec<(String, Vec<u8>)> = (0..PER_AGGREGATE)
                .map(|i| {
                    let n = a * PER_AGGREGATE + i;
                    let sym = syms[n % syms.len()];
                    let row = format!(
                        r#"{{"time":"2024-05-01T12:00:{:02}.{:06}Z","sym":"{sym}","price":{}.{:02},"size":{},"side":"{}"}}"#,
                        n % 60,
                        n,
                        100 + n % 400,
                        n % 100,
                        1 + n % 1000,
                        if n.is_multiple_of(2) { "B" } else { "S" }
                    );
                    (sym.to_owned(), row.into_bytes())
                })
                .collect();
            let packed = kpl::aggregate(rows.iter().map(|(pk, data)| UserRecord {
                partition_key: pk,
                explicit_hash_key: None,
                data,
            }));
            Bytes::from(packed)
        })
        .collect()
}

/// Splits every aggregate once; `copy` also copies each record's data out.
/// Returns (user records, data bytes) so the work cannot be optimised away.
fn split_all(aggs: &[Bytes], copy: bool) -> (usize, usize) {
    let (mut records, mut bytes) = (0, 0);
    for agg in aggs {
        match kpl::deaggregate(agg.clone()) {
            Aggregation::Aggregate(a) => {
                for sub in a.sub_records() {
                    let Ok(sub) = sub else { continue };
                    records += 1;
                    bytes += sub.partition_key.len();
                    if copy {
                        bytes += black_box(sub.data.to_vec()).len();
                    } else {
                        bytes += black_box(&sub.data).len();
                    }
                }
            }
            Aggregation::Plain { why, .. } => panic!("bench aggregate read as plain: {why}"),
        }
    }
    (records, bytes)
}

fn measure(label: &str, aggs: &[Bytes], copy: bool) {
    let total_bytes: usize = aggs.iter().map(Bytes::len).sum();
    let (expect, _) = split_all(aggs, copy); // warm-up, and the count to check
    assert_eq!(expect, AGGREGATES * PER_AGGREGATE);
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < MIN_TIME {
        let (n, _) = black_box(split_all(black_box(aggs), copy));
        assert_eq!(n, expect);
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    let per_round = secs / f64::from(rounds);
    println!(
        "{label:<28} {:>12.0} user records/s {:>9.1} MB/s {:>8.3} ms per batch  ({rounds} rounds)",
        expect as f64 / per_round,
        total_bytes as f64 / per_round / 1e6,
        per_round * 1e3,
    );
}

fn main() {
    let aggs = aggregates();
    let total: usize = aggs.iter().map(Bytes::len).sum();
    println!(
        "kpl: {} user records in {AGGREGATES} aggregates, {:.2} MB ({} bytes per aggregate on average)",
        AGGREGATES * PER_AGGREGATE,
        total as f64 / 1e6,
        total / AGGREGATES
    );
    measure("split (zero-copy data)", &aggs, false);
    measure("split + copy data to Vec", &aggs, true);
}
