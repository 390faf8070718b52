//! `tickbridge tp`. Not built yet.

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct TpArgs {}

pub fn run(_: TpArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("not built yet")
}
