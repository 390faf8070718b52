//! `cargo bench --bench tp`: the stand-in's throughput with one subscriber
//! (1,000,000 trade rows in 1,000-row updates). Prints rows/s and peak memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    match tickbridge_tools::bench::tp::run(tickbridge_tools::bench::tp::Args::default()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bench tp: {e:#}");
            ExitCode::FAILURE
        }
    }
}
