//! `cargo bench --bench handler`: two groups on the 10,000-record Kinesis
//! trade event of `tickbridge bench bridge`:
//! - **event parse**: `parse_event` from the event's bytes to records (the
//!   one-pass reader), and the lenient reader it falls back to, timed
//!   apart so a regression in either shows;
//! - **handler**: the whole handler in process (`App::handle` from the
//!   bytes to the batch response, memory store, the stand-in over loopback
//!   TCP), as the in-process level of `bench bridge`.
//!
//! TICKBRIDGE_BENCH_ITERATIONS overrides the iteration count.

use std::process::ExitCode;
use std::time::Instant;

use tickbridge::source::event::{parse_event, SourceOptions};
use tickbridge_tools::bench::bridge::{event, handler_only, Args, Spread};

// What ships: the binaries' allocator and its settings.
#[global_allocator]
static ALLOCATOR: tickbridge::allocator::Allocator = tickbridge::allocator::Allocator {};

fn main() -> ExitCode {
    tickbridge::allocator::configure();
    let iterations = std::env::var("TICKBRIDGE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    if let Err(e) = parse_group(iterations) {
        eprintln!("event parse bench failed: {e:#}");
        return ExitCode::FAILURE;
    }
    let args = Args {
        records: 10_000,
        iterations,
        init_runs: 0,
        no_payload_keys: false,
        mixed: false,
        kpl: false,
        sqs: false,
        compare_async: false,
        bootstrap: None,
    };
    match handler_only(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("handler bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_group(iterations: usize) -> anyhow::Result<()> {
    let records = 10_000;
    let text = event(records, 0)?;
    // The same records with one escaped slash in the last one: the
    // one-pass reader declines it and the lenient reader reads it all.
    let last = text
        .rfind("stream/")
        .ok_or_else(|| anyhow::anyhow!("no stream ARN in the event"))?;
    let escaped = format!("{}stream\\/{}", &text[..last], &text[last + 7..]);
    let opts = SourceOptions::default();
    println!(
        "event parse: {records} Kinesis records, {:.1} MB of JSON, {iterations} iterations after a warm-up",
        text.len() as f64 / 1e6
    );
    for (name, bytes) in [
        ("one-pass", text.as_bytes()),
        ("lenient", escaped.as_bytes()),
    ] {
        let mut ms = Vec::with_capacity(iterations);
        for i in 0..=iterations {
            let start = Instant::now();
            let recs = parse_event(bytes, &opts)?;
            let elapsed = start.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(recs.len() == records, "{name}: {} records", recs.len());
            drop(recs);
            if i > 0 {
                ms.push(elapsed);
            }
        }
        let s = Spread::of(&ms);
        println!(
            "  {name:<9} median {:>7.2} ms  p99 {:>7.2} ms  {:>10.0} records/s  {:>6.0} MB/s",
            s.median,
            s.p99,
            records as f64 / (s.median / 1000.0),
            bytes.len() as f64 / 1e6 / (s.median / 1000.0)
        );
    }
    Ok(())
}
