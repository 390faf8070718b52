//! `tickbridge run kinesis|sqs`: the polling runner (see `runner`). Settings
//! come from the same `TICKBRIDGE_*` variables as the Lambda, with the
//! flags below on top; AWS endpoints from `--endpoint-url` or the usual AWS
//! variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_KINESIS`, …).
//!
//! Exit status: 0 when stopped by a signal with nothing failed or left, 1
//! when a batch went to the on-failure queue, records were left pending at
//! the stop (SIGTERM/Ctrl-C while a batch was being retried), or the runner
//! stopped on an error, 2 for a usage or settings error.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use super::invoke::{bridge_settings, needs};
use super::preflight;
use tickbridge::app::App;
use tickbridge::metrics::MetricsSink;
use tickbridge::runner::kinesis::{KinesisSettings, StartingPosition};
use tickbridge::runner::sqs::SqsSettings;
use tickbridge::runner::{shutdown, Stats, Totals};

#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 stopped (SIGTERM, Ctrl-C) with every record through; 1 records were sent to the on-failure queue or left pending at the stop (they are read again next run: `left_pending` in the summary), or the runner failed; 2 a usage or settings error."
)]
pub struct RunArgs {
    #[command(subcommand)]
    pub source: RunSource,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Subcommand, Debug)]
pub enum RunSource {
    /// Poll every shard of a Kinesis stream.
    Kinesis(KinesisArgs),
    /// Long-poll an SQS queue (FIFO or standard).
    Sqs(SqsArgs),
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Tickerplant; default `TICKBRIDGE_TP`.
    #[arg(long, global = true)]
    pub tp: Option<String>,
    /// Dedupe store; default `TICKBRIDGE_STORE`.
    #[arg(long, global = true, value_parser = ["memory", "dynamodb"])]
    pub store: Option<String>,
    /// DynamoDB table; default `TICKBRIDGE_DEDUPE_TABLE`.
    #[arg(long, global = true)]
    pub dedupe_table: Option<String>,
    /// Quarantine queue URL; default `TICKBRIDGE_QUARANTINE_QUEUE_URL`.
    #[arg(long, global = true, alias = "quarantine-queue")]
    pub quarantine_queue_url: Option<String>,
    /// AWS endpoint for every service (LocalStack, moto); default
    /// `AWS_ENDPOINT_URL[_SERVICE]`, else AWS itself.
    #[arg(long, global = true, alias = "endpoint")]
    pub endpoint_url: Option<String>,
    /// `quarantine` or `fail`; default `TICKBRIDGE_BAD_RECORDS`.
    #[arg(long, global = true, value_parser = ["quarantine", "fail"])]
    pub bad_records: Option<String>,
    /// Schema directory; default `TICKBRIDGE_SCHEMAS` or the embedded examples.
    #[arg(long, global = true)]
    pub schemas: Option<String>,
    /// Time one batch may take in the pipeline (the Lambda timeout).
    #[arg(long, global = true, default_value_t = 60_000)]
    pub batch_timeout_ms: u64,
    /// Smallest and largest pause between retries.
    #[arg(long, global = true, default_value_t = 100)]
    pub retry_min_ms: u64,
    #[arg(long, global = true, default_value_t = 5_000)]
    pub retry_max_ms: u64,
    /// A progress line every this many seconds (0: none).
    #[arg(long, global = true, default_value_t = 10)]
    pub progress_secs: u64,
    /// Each batch's metrics as CloudWatch EMF lines on stdout, as the
    /// Lambda writes them (`emf`, for a CloudWatch agent), or none (`off`:
    /// a terminal shows log lines only).
    #[arg(long, global = true, default_value = "off", value_parser = ["emf", "off"])]
    pub metrics: String,
}

#[derive(Args, Debug)]
pub struct KinesisArgs {
    /// The stream's name.
    #[arg(long)]
    pub stream: String,
    /// Records per GetRecords (Lambda's BatchSize).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub batch_size: i32,
    /// Where shards without a checkpoint start.
    #[arg(long, default_value = "trim-horizon", value_parser = ["trim-horizon", "latest", "at-timestamp"])]
    pub starting_position: String,
    /// With `at-timestamp`: seconds since the Unix epoch, or RFC 3339.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Retries of a failing batch before its metadata goes to the
    /// on-failure queue; -1 retries until it succeeds (Lambda's default).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
    pub max_retries: i64,
    /// Split a failing batch in two and retry each half.
    #[arg(long)]
    pub bisect_on_error: bool,
    /// SQS queue URL for exhausted batches (Lambda's on-failure destination).
    #[arg(long)]
    pub on_failure_queue: Option<String>,
    /// Pause after an empty read of a shard.
    #[arg(long, default_value_t = 1000)]
    pub idle_ms: u64,
    /// How often the shard list is read again (resharding).
    #[arg(long, default_value_t = 10_000)]
    pub discovery_ms: u64,
}

#[derive(Args, Debug)]
pub struct SqsArgs {
    /// The queue's URL.
    #[arg(long)]
    pub queue: String,
    /// Messages per receive (1..=10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(1..=10))]
    pub batch_size: i32,
    /// Long polling wait (0..=20 s).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(0..=20))]
    pub wait_secs: u64,
}

fn parse_timestamp(raw: &str) -> anyhow::Result<f64> {
    if let Ok(secs) = raw.trim().parse::<f64>() {
        return Ok(secs);
    }
    let ns = tickbridge::schema::time::parse_rfc3339(raw.trim())
        .map_err(|e| anyhow::anyhow!("--timestamp {raw:?}: not epoch seconds or RFC 3339 ({e})"))?;
    Ok(ns as f64 / 1e9)
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    super::AwsArgs {
        endpoint_url: c.endpoint_url.clone(),
    }
    .apply();
    let settings = bridge_settings(
        c.tp.clone(),
        c.store.clone(),
        c.dedupe_table.clone(),
        c.quarantine_queue_url.clone(),
        c.schemas.clone(),
    )
    .flag(
        "TICKBRIDGE_BAD_RECORDS",
        "--bad-records",
        c.bad_records.clone(),
    );
    let config = settings.config()?;
    let metrics = MetricsSink::parse(&c.metrics, &config.metrics_namespace)?;
    super::validate_tp(&settings, &config)?;
    let mut wanted = needs(&config, &settings);
    match &args.source {
        RunSource::Kinesis(k) => {
            wanted.stream = Some(("--stream", k.stream.clone()));
            if let Some(q) = &k.on_failure_queue {
                wanted.queues.push(("--on-failure-queue", q.clone()));
            }
        }
        RunSource::Sqs(q) => wanted.queues.push(("--queue", q.queue.clone())),
    }
    let batch_timeout = Duration::from_millis(c.batch_timeout_ms);
    let retry_min = Duration::from_millis(c.retry_min_ms);
    let retry_max = Duration::from_millis(c.retry_max_ms.max(c.retry_min_ms));
    let progress = Duration::from_secs(c.progress_secs);
    super::runtime()?.block_on(async move {
        let sdk = tickbridge::aws::sdk_config(None).await;
        preflight::check(&sdk, &wanted).await?;
        let app = Arc::new(
            App::init(config)
                .await
                .map_err(|e| settings.blame(e.into()))?,
        );
        let stats = Arc::new(Stats::default());
        let (trigger, stop) = shutdown::channel();
        trigger.on_signals();
        let started = Instant::now();
        let what = match &args.source {
            RunSource::Kinesis(_) => "kinesis",
            RunSource::Sqs(_) => "sqs",
        };
        // A bar on a terminal; the periodic `progress` lines otherwise.
        let progress_task = if super::progress::on_terminal() {
            Some(spawn_bar(stats.clone(), what))
        } else {
            tickbridge::runner::spawn_progress(stats.clone(), progress, what)
        };
        let result = match args.source {
            RunSource::Kinesis(k) => {
                let starting_position = match k.starting_position.as_str() {
                    "latest" => StartingPosition::Latest,
                    "at-timestamp" => StartingPosition::AtTimestamp(parse_timestamp(
                        k.timestamp.as_deref().ok_or_else(|| {
                            anyhow::anyhow!("--starting-position at-timestamp needs --timestamp")
                        })?,
                    )?),
                    _ => StartingPosition::TrimHorizon,
                };
                let mut s = KinesisSettings::new(k.stream);
                s.batch_size = k.batch_size;
                s.starting_position = starting_position;
                s.idle_wait = Duration::from_millis(k.idle_ms);
                s.discovery_interval = Duration::from_millis(k.discovery_ms.max(100));
                s.max_retries = u32::try_from(k.max_retries).ok();
                s.bisect_on_error = k.bisect_on_error;
                s.on_failure_queue = k.on_failure_queue;
                s.batch_timeout = batch_timeout;
                s.retry_min = retry_min;
                s.retry_max = retry_max;
                s.metrics = metrics;
                let sqs = s
                    .on_failure_queue
                    .as_ref()
                    .map(|_| tickbridge::aws::sqs_client(&sdk));
                tickbridge::runner::kinesis::run(
                    app.clone(),
                    tickbridge::aws::kinesis_client(&sdk),
                    sqs,
                    s,
                    stats.clone(),
                    stop,
                )
                .await
            }
            RunSource::Sqs(q) => {
                let mut s = SqsSettings::new(q.queue);
                s.batch_size = q.batch_size;
                s.wait_time = Duration::from_secs(q.wait_secs);
                s.batch_timeout = batch_timeout;
                s.retry_min = retry_min;
                s.retry_max = retry_max;
                s.metrics = metrics;
                tickbridge::runner::sqs::run(
                    app.clone(),
                    tickbridge::aws::sqs_client(&sdk),
                    s,
                    stats.clone(),
                    stop,
                )
                .await
            }
        };
        if let Some(t) = progress_task {
            t.abort();
            // The summary follows on stdout: no bar left on its line.
            let _ = super::progress::bars().clear();
        }
        let totals = stats.totals();
        tickbridge::runner::print_summary(what, &totals, started.elapsed());
        result.map_err(|e| anyhow::anyhow!(super::errors::one_line(&e.to_string())))?;
        Ok(exit_code(&totals))
    })
}

/// A spinner with the running totals, redrawn a few times a second.
fn spawn_bar(stats: Arc<Stats>, what: &'static str) -> tokio::task::JoinHandle<()> {
    let bar = super::progress::bar(what, None);
    tokio::spawn(async move {
        loop {
            let t = stats.totals();
            bar.set_position(t.records);
            bar.set_message(format!(
                "records: {} forwarded, {} duplicates, {} quarantined, {} retried",
                t.forwarded, t.duplicates, t.quarantined, t.retried
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

/// 1 when some records were given up on (sent to the on-failure queue) or
/// left pending at the stop: the next run reads those again (their
/// checkpoint did not move, their messages were not deleted), but this
/// run did not get them through.
fn exit_code(totals: &Totals) -> ExitCode {
    if totals.sent_to_on_failure > 0 || totals.left_pending > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;
    use tickbridge::telemetry::significant;

    #[test]
    fn rates_keep_three_significant_digits() {
        assert_eq!(significant(0.0), 0.0);
        assert_eq!(significant(0.123456), 0.123);
        assert_eq!(significant(2.5), 2.5);
        assert_eq!(significant(12345.6), 12300.0);
    }

    #[test]
    fn timestamps_are_epoch_seconds_or_rfc3339() {
        assert_eq!(parse_timestamp("1764000000.5").unwrap(), 1_764_000_000.5);
        assert_eq!(
            parse_timestamp("2025-11-24T16:00:00Z").unwrap(),
            1_764_000_000.0
        );
        let err = parse_timestamp("yesterday").unwrap_err().to_string();
        assert!(err.contains("--timestamp"), "{err}");
    }
}
