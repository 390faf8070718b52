//! `tickbridge replay` (DESIGN §8): what landed in a dead-letter queue, a
//! Kinesis on-failure destination or a file of captured events goes through
//! the same pipeline again. Replay keys every record on its own (the
//! original SQS message id, `shard#sequence` for Kinesis, plus payload
//! keys), so what was already forwarded is skipped, and a source message is
//! deleted only once all its records are confirmed or quarantined.
//!
//! Records reach the pipeline as `Record`s built from what the queue or
//! stream returned (or parsed once from a captured event), through
//! [`App::handle_records`]: replay runs exactly the code the Lambda runs. A
//! dry run is that same pipeline with a read-only store, a link that sends
//! nothing and a quarantine that only notes ([`App::dry_run_records`]).

use std::time::{Duration, Instant};

use crate::app::App;
use crate::pipeline::{BatchContext, RecordState};
use crate::source::Record;
use crate::telemetry::ReplayDone;

pub mod error;
pub mod file;
pub mod kinesis;
pub use crate::source::on_failure;
pub mod progress;
pub mod report;
pub mod sqs;

pub use error::ReplayError;
pub use report::Report;

use progress::{Progress, RateLimit};

#[derive(Clone, Debug)]
pub struct Options {
    /// Decode, validate and check dedupe state; forward, claim and delete nothing.
    pub dry_run: bool,
    /// Stop after this many source messages (DLQ messages, on-failure
    /// records, event lines).
    pub max: Option<usize>,
    /// At most this many records per second.
    pub rate: Option<f64>,
    /// Time one pipeline batch may take. Claims in DynamoDB live this long,
    /// so it must stay below the queue's visibility timeout: a message that
    /// reappears after a crash then finds its claims expired.
    pub batch_budget: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dry_run: false,
            max: None,
            rate: None,
            batch_budget: Duration::from_secs(25),
        }
    }
}

/// The pipeline as replay drives it, with the running report.
pub struct Replayer {
    app: App,
    opts: Options,
    pub report: Report,
    progress: Progress,
    limit: RateLimit,
    batches: u64,
    started: Instant,
}

impl Replayer {
    /// Takes the app and switches it to replay mode (per-record keys, no
    /// lane checkpoints).
    pub fn new(mut app: App, opts: Options) -> Self {
        app.config.pipeline.replay = true;
        Replayer {
            app,
            report: Report::new(opts.dry_run),
            progress: Progress::new("replay", None),
            limit: RateLimit::new(opts.rate),
            opts,
            batches: 0,
            started: Instant::now(),
        }
    }

    pub fn options(&self) -> &Options {
        &self.opts
    }

    pub fn app(&self) -> &App {
        &self.app
    }

    /// Restarts the progress display with what is expected, when known.
    pub fn expect(&mut self, label: &str, total: Option<u64>) {
        self.progress = Progress::new(label, total);
    }

    pub fn advance(&mut self, n: u64) {
        self.progress.advance(n);
    }

    /// Ends the progress display and logs the counts; returns the report.
    pub fn finish(mut self) -> Report {
        self.progress.finish();
        ReplayDone {
            report: &self.report,
            elapsed: self.started.elapsed(),
        }
        .emit();
        self.report
    }

    /// Whether `--max` stops further source messages.
    pub fn at_max(&self) -> bool {
        self.opts.max.is_some_and(|m| self.report.messages >= m)
    }

    /// Room left under `--max`.
    pub fn room(&self) -> usize {
        self.opts
            .max
            .map_or(usize::MAX, |m| m.saturating_sub(self.report.messages))
    }

    /// Runs records through the pipeline (in a dry run, through the
    /// pipeline with nothing written or sent) and returns each record's
    /// state, in order.
    pub async fn run_records(&mut self, records: &[Record]) -> Vec<RecordState> {
        if records.is_empty() {
            return Vec::new();
        }
        self.limit.take(records.len()).await;
        self.batches += 1;
        let ctx = BatchContext::with_budget(
            format!("replay-{}-{}", std::process::id(), self.batches),
            self.opts.batch_budget,
        );
        let inv = if self.opts.dry_run {
            self.app.dry_run_records(records, &ctx).await
        } else {
            self.app.handle_records(records, &ctx).await
        };
        match inv {
            Ok(inv) => inv.states,
            Err(e) => vec![
                RecordState::Pending {
                    reason: e.to_string()
                };
                records.len()
            ],
        }
    }
}
