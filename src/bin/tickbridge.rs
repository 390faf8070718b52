use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = tickbridge::cli::Cli::parse();
    match tickbridge::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tickbridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
