//! `tickbridge`: the command line around the bridge library (demo, invoke,
//! tp, schema, kdb, replay, run, ctl, bench). It lives outside the
//! library's module tree so the library carries no CLI or benchmark code
//! and no clap or anyhow.

use std::process::ExitCode;

use clap::Parser;
use tickbridge_tools::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
