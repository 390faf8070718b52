//! `tickbridge kdb …`. Not built yet.

use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum KdbCommand {}

pub fn run(_: KdbCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
