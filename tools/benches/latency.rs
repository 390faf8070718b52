//! `cargo bench --bench latency`: the same measurement as
//! `tickbridge bench latency`. TICKBRIDGE_BENCH_ITERATIONS overrides the
//! iteration count.

use std::process::ExitCode;

fn main() -> ExitCode {
    let iterations = std::env::var("TICKBRIDGE_BENCH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    match tickbridge_tools::bench::latency::run(tickbridge_tools::bench::latency::Args {
        iterations,
    }) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("latency bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
