//! `tickbridge`: the command line around the bridge library (demo, invoke,
//! tp, schema, kdb, replay, run, ctl, bench). It lives outside the
//! library's module tree so the library carries no CLI or benchmark code
//! and no clap or anyhow.
//!
//! Exit status: 0 done, 1 some records failed or were left pending (or the
//! command failed), 2 a usage or settings error.

use std::process::ExitCode;

use clap::Parser;
use tickbridge_tools::cli::{self, errors};

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickbridge: {}", errors::render(&e));
            ExitCode::from(errors::exit_status(&e))
        }
    }
}
