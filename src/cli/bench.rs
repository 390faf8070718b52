//! `tickbridge bench …`: benchmarks that print figures.

use std::process::ExitCode;

use clap::Subcommand;

use crate::bench;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Encode a trade table: fast path vs general encoder (rows/s, MB/s).
    Encode(bench::encode::Args),
    /// Publish latency: one 1-row update plus chaser on loopback.
    Latency(bench::latency::Args),
    /// JSON trade records to encoded `.u.upd` bytes (records/s, MB/s).
    Decode(bench::decode::Args),
    /// Tickerplant stand-in throughput with a subscriber (rows/s, peak memory).
    Tp(bench::tp::Args),
    /// Records/s through Kinesis → `tickbridge run` → the stand-in, with
    /// DynamoDB requests per 1,000 records.
    Run(bench::run::Args),
    /// Write a realistic Kinesis or SQS FIFO event file.
    Events(bench::events::Args),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Encode(a) => bench::encode::run(a),
        BenchCommand::Latency(a) => bench::latency::run(a),
        BenchCommand::Decode(a) => bench::decode::run(a),
        BenchCommand::Tp(a) => bench::tp::run(a),
        BenchCommand::Events(a) => bench::events::run(a),
        BenchCommand::Run(a) => bench::run::run(a),
    }
}
