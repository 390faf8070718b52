//! `cargo bench --bench handler`: the whole handler in process
//! (`App::handle` from the bytes of a 10,000-record Kinesis event to the
//! batch response, memory store, the stand-in over loopback TCP), as the
//! in-process level of `tickbridge bench bridge`. TICKBRIDGE_BENCH_ITERATIONS
//! overrides the iteration count.

use std::process::ExitCode;

use tickbridge_tools::bench::bridge::{handler_only, Args};

fn main() -> ExitCode {
    let iterations = std::env::var("TICKBRIDGE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let args = Args {
        records: 10_000,
        iterations,
        init_runs: 0,
        no_payload_keys: false,
        mixed: false,
        kpl: false,
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
