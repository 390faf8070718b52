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
    /// Replay throughput from an SQS FIFO dead-letter queue on moto (messages/s).
    Replay(bench::replay::Args),
    /// Records/s through Kinesis → `tickbridge run` → the stand-in, with
    /// DynamoDB requests per 1,000 records.
    Run(bench::run::Args),
    /// Write a realistic Kinesis or SQS FIFO event file.
    Events(bench::events::Args),
    /// The whole bridge on a 10,000-record Kinesis event: records/s, handler
    /// time per batch, init time and peak RSS of the Lambda binary.
    Bridge(bench::bridge::Args),
    /// A generated CSV object (default 1 GB) streamed from moto S3 through
    /// the object path to the stand-in: rows/s, MB/s, peak RSS.
    S3(bench::s3::Args),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Encode(a) => bench::encode::run(a),
        BenchCommand::Latency(a) => bench::latency::run(a),
        BenchCommand::Decode(a) => bench::decode::run(a),
        BenchCommand::Tp(a) => bench::tp::run(a),
        BenchCommand::Replay(a) => bench::replay::run(a),
        BenchCommand::Events(a) => bench::events::run(a),
        BenchCommand::Bridge(a) => bench::bridge::run(a),
        BenchCommand::Run(a) => bench::run::run(a),
        BenchCommand::S3(a) => bench::s3::run(a),
    }
}
