//! `tickbridge`: the command line around the bridge library (demo, invoke,
//! tp, schema, kdb, replay, run, ctl, bench). It lives outside the
//! library's module tree so the library carries no CLI or benchmark code
//! and no clap or anyhow.
//!
//! Exit status: 0 done, 1 some records failed or were left pending (or the
//! command failed), 2 a usage or settings error.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use tickbridge_tools::cli::{self, errors};

/// `0.1.0 (commit abc1234)`: the crate version and the git commit it was
/// built from (build.rs; "unknown" outside a git checkout). Set here, not
/// in the library's `Cli`, so a new commit rebuilds only this file.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("TICKBRIDGE_GIT_COMMIT"),
    ")"
);

// The Lambda binary's allocator and settings (tickbridge::allocator), so
// `bench` times the bridge in process as it runs in Lambda, and `run` and
// `replay` serve batches the same way.
#[global_allocator]
static ALLOCATOR: tickbridge::allocator::Allocator = tickbridge::allocator::Allocator {};

fn main() -> ExitCode {
    tickbridge::allocator::configure();
    let matches = cli::Cli::command().version(VERSION).get_matches();
    let cli = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickbridge: {}", errors::render(&e));
            ExitCode::from(errors::exit_status(&e))
        }
    }
}
