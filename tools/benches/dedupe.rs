//! `cargo bench --bench dedupe`: the in-memory store's part of a batch
//! with payload keys on, in steady state: a claim of 10,000 new keys
//! (`trade#<id>`, as the trade schema makes them), then their completion,
//! per batch, once the store holds two full generations (so every claim
//! searches both, and generations are forgotten and reused as in a
//! long-lived process). A duplicate batch (the same keys claimed again)
//! is timed apart: its claims all find completed keys.
//!
//! TICKBRIDGE_BENCH_ITERATIONS overrides the iteration count.

use std::time::Instant;

use tickbridge::dedupe::memory::{MemoryStore, KEYS_REMEMBERED};
use tickbridge::dedupe::{Claim, DedupeStore};
use tickbridge_tools::bench::bridge::Spread;

#[global_allocator]
static ALLOCATOR: tickbridge::allocator::Allocator = tickbridge::allocator::Allocator {};

const KEYS: usize = 10_000;

fn batch(n: usize) -> Vec<String> {
    (n * KEYS..(n + 1) * KEYS)
        .map(|id| format!("trade#T{id:012}"))
        .collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    tickbridge::allocator::configure();
    let iterations = std::env::var("TICKBRIDGE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let store = MemoryStore::new();
    // Two generations' worth first, so the timed batches run in steady state.
    let warm = 2 * KEYS_REMEMBERED / KEYS + 1;
    for n in 0..warm {
        let keys = batch(n);
        store.claim(&keys, 0, 1_000).await?;
        store.complete(&keys, 1_000_000).await?;
    }
    let (mut claim_ms, mut complete_ms, mut again_ms) = (vec![], vec![], vec![]);
    for n in warm..warm + iterations {
        let keys = batch(n);
        let t = Instant::now();
        let claims = store.claim(&keys, 0, 1_000).await?;
        claim_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(claims.iter().all(|c| *c == Claim::New), "batch {n}");
        let t = Instant::now();
        store.complete(&keys, 1_000_000).await?;
        complete_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let again = store.claim(&keys, 0, 1_000).await?;
        again_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            again.iter().all(|c| *c == Claim::Completed),
            "batch {n} again"
        );
    }
    println!(
        "dedupe (memory store, steady state): {KEYS} payload keys per batch, {iterations} batches"
    );
    for (name, ms) in [
        ("claim, new keys", &claim_ms),
        ("complete", &complete_ms),
        ("claim, all done", &again_ms),
    ] {
        let s = Spread::of(ms);
        println!(
            "  {name:<16} median {:>6.3} ms  p99 {:>6.3} ms  {:>5.0} ns/key",
            s.median,
            s.p99,
            s.median * 1e6 / KEYS as f64
        );
    }
    Ok(())
}
