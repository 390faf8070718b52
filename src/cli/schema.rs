//! `tickbridge schema …`. Not built yet.

use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum SchemaCommand {}

pub fn run(_: SchemaCommand) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
