//! Not built yet.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this benchmark is not built yet")
}
