//! `tickbridge replay` (DESIGN §8): what landed in a dead-letter queue, a
//! Kinesis on-failure destination or a file of captured events goes through
//! the same pipeline again. Replay keys every record on its own (the
//! original SQS message id, `shard#sequence` for Kinesis, plus payload
//! keys), so what was already forwarded is skipped, and a source message is
//! deleted only once all its records are confirmed or quarantined.
//!
//! Records reach the pipeline as Lambda events built from what the queue or
//! stream returned, through [`App::handle`]: replay runs exactly the code
//! the Lambda runs.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::app::{App, Store};
use crate::pipeline::{
    now_ms, replay_key, BadRecords, BatchContext, Decoder, LaneRows, RecordState,
};
use crate::source::event::parse_event;
use crate::source::Record;

pub mod file;
pub mod kinesis;
pub use crate::source::on_failure;
pub mod progress;
pub mod report;
pub mod sqs;

pub use report::{Fate, Report};

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
    /// Read-only look-ups of dedupe keys for dry runs.
    peek: Option<aws_sdk_dynamodb::Client>,
    pub report: Report,
    progress: Progress,
    limit: RateLimit,
    batches: u64,
}

impl Replayer {
    /// Takes the app and switches it to replay mode (per-record keys, no
    /// lane checkpoints). `dynamodb` serves dry runs' read-only checks when
    /// the store is DynamoDB.
    pub fn new(mut app: App, opts: Options, dynamodb: Option<aws_sdk_dynamodb::Client>) -> Self {
        app.config.pipeline.replay = true;
        Replayer {
            app,
            report: Report::new(opts.dry_run),
            progress: Progress::new("replay", None),
            limit: RateLimit::new(opts.rate),
            peek: dynamodb,
            opts,
            batches: 0,
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

    /// Ends the progress display; returns the report.
    pub fn finish(mut self) -> Report {
        self.progress.finish();
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

    /// Runs one Lambda event through the pipeline (or, in a dry run, through
    /// the checks) and returns each record's fate in event order. A record
    /// is named in the report by `names[i]` when given, else its failure id.
    pub async fn run_event(&mut self, event: &[u8]) -> Result<Vec<(Record, Fate)>, String> {
        let records = parse_event(event, &self.app.config.source).map_err(|e| e.to_string())?;
        if records.is_empty() {
            return Ok(Vec::new());
        }
        self.limit.take(records.len()).await;
        let fates = if self.opts.dry_run {
            self.inspect(&records).await
        } else {
            self.batches += 1;
            let ctx = BatchContext::with_budget(
                format!("replay-{}-{}", std::process::id(), self.batches),
                self.opts.batch_budget,
            );
            match self.app.handle(event, &ctx).await {
                Ok(inv) => inv.states.into_iter().map(fate_of).collect(),
                Err(e) => vec![Fate::Failed(e.to_string()); records.len()],
            }
        };
        Ok(records.into_iter().zip(fates).collect())
    }

    /// A dry run's view of a batch: each record decoded and its keys looked
    /// up, nothing written anywhere.
    async fn inspect(&self, records: &[Record]) -> Vec<Fate> {
        let decoder = self.app.decoder();
        let mode = self.app.config.pipeline.bad_records;
        let bad = |reason: String| match mode {
            BadRecords::Quarantine => Fate::Quarantined(reason),
            BadRecords::Fail => Fate::Failed(format!("bad record: {reason}")),
        };
        let now = now_ms();
        let mut seen_payload: HashSet<String> = HashSet::new();
        let mut out = Vec::with_capacity(records.len());
        for (i, r) in records.iter().enumerate() {
            if let Some(reason) = &r.defect {
                out.push(bad(reason.clone()));
                continue;
            }
            let key = r.message_key.clone().or_else(|| replay_key(r));
            if let Some(key) = key {
                match self.key_state(&key, now).await {
                    Ok(KeyState::Completed) => {
                        out.push(Fate::Duplicate);
                        continue;
                    }
                    Ok(KeyState::InProgress) => {
                        out.push(Fate::Failed(format!(
                            "key {key} is claimed by a live invocation or replay"
                        )));
                        continue;
                    }
                    Ok(KeyState::Free) => {}
                    Err(e) => {
                        out.push(Fate::Failed(e));
                        continue;
                    }
                }
            }
            if decoder.has_payload_keys() {
                match decoder.payload_key(r) {
                    Err(reason) => {
                        out.push(bad(reason.to_string()));
                        continue;
                    }
                    Ok(Some(k)) => {
                        if !seen_payload.insert(k.clone()) {
                            out.push(Fate::Duplicate);
                            continue;
                        }
                        match self.key_state(&k, now).await {
                            Ok(KeyState::Completed) => {
                                out.push(Fate::Duplicate);
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                out.push(Fate::Failed(e));
                                continue;
                            }
                        }
                    }
                    Ok(None) => {}
                }
            }
            let mut lane = decoder.lane();
            match lane.push(i, r) {
                Ok(_) => out.push(Fate::Forwarded),
                Err(reason) => out.push(bad(reason.to_string())),
            }
        }
        out
    }

    /// A dedupe key's state, read consistently and never written.
    async fn key_state(&self, key: &str, now_ms: i64) -> Result<KeyState, String> {
        match (self.app.store(), &self.peek) {
            (Store::Memory(m), _) => Ok(if m.is_completed(key) {
                KeyState::Completed
            } else {
                KeyState::Free
            }),
            (Store::Dynamo(d), Some(client)) => {
                peek_dynamo(client, d.table_name(), key, now_ms).await
            }
            (Store::Dynamo(_), None) => Err("dry run has no DynamoDB client to check keys".into()),
        }
    }
}

enum KeyState {
    Free,
    Completed,
    InProgress,
}

/// The item layout of `dedupe::dynamodb` (`key#<key>`, `status`,
/// `expiration` in s, `in_progress_expiration` in ms), read only. Keys over
/// 1 KiB are stored there under a digest; replay keys are far shorter.
async fn peek_dynamo(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    key: &str,
    now_ms: i64,
) -> Result<KeyState, String> {
    let out = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("key#{key}")))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| {
            format!(
                "DynamoDB GetItem on {table}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            )
        })?;
    let Some(item) = out.item else {
        return Ok(KeyState::Free);
    };
    let num = |name: &str| match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
        _ => None,
    };
    if num("expiration").is_some_and(|exp| exp <= now_ms / 1000) {
        return Ok(KeyState::Free);
    }
    Ok(match item.get("status") {
        Some(AttributeValue::S(s)) if s == "COMPLETED" => KeyState::Completed,
        Some(AttributeValue::S(s)) if s == "INPROGRESS" => {
            if num("in_progress_expiration").is_some_and(|t| t > now_ms) {
                KeyState::InProgress
            } else {
                KeyState::Free
            }
        }
        _ => KeyState::Free,
    })
}

fn fate_of(state: RecordState) -> Fate {
    match state {
        RecordState::Forwarded => Fate::Forwarded,
        RecordState::Duplicate => Fate::Duplicate,
        RecordState::Quarantined { reason } => Fate::Quarantined(reason),
        RecordState::Pending { reason } => Fate::Failed(reason),
    }
}
