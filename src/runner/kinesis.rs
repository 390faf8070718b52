//! `tickbridge run kinesis`: every shard polled on its own task, as an
//! event source mapping does it.
//!
//! - One batch in flight per shard, so a shard's records reach the
//!   pipeline in order; shards run concurrently and share the App's single
//!   tickerplant connection (order holds per connection, DESIGN §4).
//! - Resharding: a child shard starts only after every parent still in the
//!   stream has been read to its end.
//! - Where a shard starts: after its lane checkpoint when the store has one
//!   (DynamoDB survives restarts), else at the starting position.
//! - A batch whose response names a failed record is retried from that
//!   record with bounded, jittered backoff, bisected when set; past the
//!   retry limit its coordinates go to the on-failure queue and the shard
//!   moves on.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::{Record as KRecord, Shard, ShardIteratorType};
use tokio::task::JoinSet;

use super::sdk_err;
use super::shutdown::Shutdown;
use super::Stats;
use crate::app::App;
use crate::dedupe::DedupeStore;
use crate::metrics::MetricsSink;
use crate::pipeline::BatchContext;
use crate::source::event::EventError;
use crate::source::on_failure::{
    rfc3339_ms, KinesisBatchInfo, OnFailureRecord, RequestContext, ResponseContext,
    RETRIES_EXHAUSTED,
};
use crate::source::{kinesis, Record, SourceOptions};
use crate::telemetry::{
    AwsRetry, FunctionError, OnFailureSent, PollDone, PollStarted, ShardFinished, ShardStarted,
};

/// Where a shard with no checkpoint starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
    /// Seconds since the Unix epoch.
    AtTimestamp(f64),
}

#[derive(Clone, Debug)]
pub struct KinesisSettings {
    pub stream: String,
    /// GetRecords limit (1..=10000), Lambda's BatchSize.
    pub batch_size: i32,
    pub starting_position: StartingPosition,
    /// Wait after an empty GetRecords (Lambda polls idle shards once a second).
    pub idle_wait: Duration,
    /// How often the shard list is read again to find new shards.
    pub discovery_interval: Duration,
    /// Retries of a failing batch before it goes to the on-failure queue;
    /// `None` retries until it succeeds (Lambda's -1).
    pub max_retries: Option<u32>,
    /// Split a failing batch in two and retry each half.
    pub bisect_on_error: bool,
    /// SQS queue URL for the batch metadata of exhausted batches.
    pub on_failure_queue: Option<String>,
    /// Time one invocation of the pipeline may take.
    pub batch_timeout: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// What `functionArn` says in on-failure messages.
    pub function_name: String,
    /// Where each batch's metrics go (EMF on stdout, as the Lambda, or off).
    pub metrics: MetricsSink,
}

impl KinesisSettings {
    pub fn new(stream: impl Into<String>) -> KinesisSettings {
        KinesisSettings {
            stream: stream.into(),
            batch_size: 100,
            starting_position: StartingPosition::TrimHorizon,
            idle_wait: Duration::from_secs(1),
            discovery_interval: Duration::from_secs(10),
            max_retries: None,
            bisect_on_error: false,
            on_failure_queue: None,
            batch_timeout: Duration::from_secs(60),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            function_name: "tickbridge-run".into(),
            metrics: MetricsSink::Off,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("Kinesis {op} on stream {stream}: {reason}")]
    Kinesis {
        op: &'static str,
        stream: String,
        reason: String,
    },
    #[error(transparent)]
    Sqs(#[from] crate::aws::sqs::SqsError),
}

/// What the shard poller knows about the stream, shared by its tasks.
struct Ctx {
    app: Arc<App>,
    kinesis: aws_sdk_kinesis::Client,
    sqs: Option<aws_sdk_sqs::Client>,
    settings: KinesisSettings,
    stream_arn: String,
    stats: Arc<Stats>,
}

/// How a shard task ended.
#[derive(Debug, PartialEq, Eq)]
enum ShardEnd {
    /// Read to its end (closed by resharding): children may start.
    Finished,
    /// Stopped by shutdown.
    Stopped,
}

/// Polls every shard of the stream until `shutdown`; returns when each
/// shard task has finished its batch in flight.
pub async fn run(
    app: Arc<App>,
    kinesis: aws_sdk_kinesis::Client,
    sqs: Option<aws_sdk_sqs::Client>,
    settings: KinesisSettings,
    stats: Arc<Stats>,
    mut shutdown: Shutdown,
) -> Result<(), RunError> {
    let err = |op: &'static str, reason: String| RunError::Kinesis {
        op,
        stream: settings.stream.clone(),
        reason,
    };
    let summary = kinesis
        .describe_stream_summary()
        .stream_name(&settings.stream)
        .send()
        .await
        .map_err(|e| err("DescribeStreamSummary", sdk_err(e)))?;
    let stream_arn = summary
        .stream_description_summary()
        .map(|s| s.stream_arn().to_string())
        .ok_or_else(|| err("DescribeStreamSummary", "no stream description".into()))?;
    let ctx = Arc::new(Ctx {
        app,
        kinesis,
        sqs,
        settings,
        stream_arn,
        stats,
    });
    PollStarted {
        source: "kinesis",
        source_arn: &ctx.stream_arn,
    }
    .emit();

    let mut started: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut tasks: JoinSet<(String, ShardEnd)> = JoinSet::new();
    let mut first_listing = true;
    let mut next_listing = Instant::now();
    loop {
        if Instant::now() >= next_listing {
            match list_shards(&ctx).await {
                Ok(shards) => {
                    let known: HashSet<&str> = shards.iter().map(|s| s.shard_id()).collect();
                    for shard in &shards {
                        let id = shard.shard_id().to_string();
                        if started.contains(&id) {
                            continue;
                        }
                        // A parent gone from the listing is past retention:
                        // nothing of it is left to read first.
                        let parents: Vec<&str> =
                            [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                                .into_iter()
                                .flatten()
                                .filter(|p| known.contains(p))
                                .collect();
                        if parents.iter().all(|p| finished.contains(*p)) {
                            // A child of a shard read here starts at its
                            // beginning; at first sight the setting decides.
                            let from_start = !first_listing || !parents.is_empty();
                            started.insert(id.clone());
                            let ctx = ctx.clone();
                            let stop = shutdown.clone();
                            tasks.spawn(async move {
                                let end = poll_shard(&ctx, &id, from_start, stop).await;
                                (id, end)
                            });
                        }
                    }
                    first_listing = false;
                }
                Err(e) if first_listing => return Err(e),
                Err(e) => AwsRetry {
                    op: "ListShards",
                    resource: &ctx.settings.stream,
                    error: &e.to_string(),
                }
                .emit(),
            }
            next_listing = Instant::now() + ctx.settings.discovery_interval;
        }
        let wait = next_listing.saturating_duration_since(Instant::now());
        tokio::select! {
            done = tasks.join_next(), if !tasks.is_empty() => {
                match done {
                    Some(Ok((id, ShardEnd::Finished))) => {
                        ShardFinished { shard: &id }.emit();
                        finished.insert(id);
                        // Its children may be waiting: look now.
                        next_listing = Instant::now();
                    }
                    Some(Ok((_, ShardEnd::Stopped))) | None => {}
                    Some(Err(e)) => tracing::error!(error = %e, "shard task failed"),
                }
            }
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait() => break,
        }
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "shard task failed");
        }
    }
    Ok(())
}

async fn list_shards(ctx: &Ctx) -> Result<Vec<Shard>, RunError> {
    let mut shards = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = match &token {
            // With a token, the stream must not be named.
            Some(t) => ctx.kinesis.list_shards().next_token(t),
            None => ctx.kinesis.list_shards().stream_name(&ctx.settings.stream),
        };
        let out = req.send().await.map_err(|e| RunError::Kinesis {
            op: "ListShards",
            stream: ctx.settings.stream.clone(),
            reason: sdk_err(e),
        })?;
        shards.extend(out.shards().iter().cloned());
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(shards),
        }
    }
}

/// Where to (re)open a shard iterator.
#[derive(Clone, Debug)]
enum From {
    After(String),
    /// A checkpoint partway through a KPL aggregate (`seq:sub`): the
    /// aggregate is read again and the pipeline's checkpoint skips the
    /// user records already done.
    At(String),
    Start(StartingPosition),
}

impl From {
    /// Where a lane checkpoint says to resume (DESIGN §3): after a bare
    /// sequence number, at one partway through an aggregate.
    fn after_checkpoint(cp: String) -> From {
        match cp.split_once(':') {
            Some((seq, _)) => From::At(seq.to_string()),
            None => From::After(cp),
        }
    }
}

async fn iterator(ctx: &Ctx, shard: &str, from: &From) -> Result<Option<String>, String> {
    let mut req = ctx
        .kinesis
        .get_shard_iterator()
        .stream_name(&ctx.settings.stream)
        .shard_id(shard);
    req = match from {
        From::After(seq) => req
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(seq),
        From::At(seq) => req
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(seq),
        From::Start(StartingPosition::TrimHorizon) => {
            req.shard_iterator_type(ShardIteratorType::TrimHorizon)
        }
        From::Start(StartingPosition::Latest) => req.shard_iterator_type(ShardIteratorType::Latest),
        From::Start(StartingPosition::AtTimestamp(t)) => req
            .shard_iterator_type(ShardIteratorType::AtTimestamp)
            .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs_f64(*t)),
    };
    req.send().await.map(|o| o.shard_iterator).map_err(sdk_err)
}

async fn poll_shard(ctx: &Ctx, shard: &str, from_start: bool, mut stop: Shutdown) -> ShardEnd {
    let lane = format!("{}/{shard}", ctx.stream_arn);
    let mut delays = super::retry_delays(ctx.settings.retry_min, ctx.settings.retry_max);
    let mut from = if ctx.app.config.source.lanes_by_partition_key {
        // Lanes are per partition key: there is no one checkpoint to start after.
        None
    } else {
        loop {
            match ctx.app.store().checkpoint(&lane).await {
                Ok(cp) => break cp.map(From::after_checkpoint),
                Err(e) => {
                    AwsRetry {
                        op: "read lane checkpoint",
                        resource: &lane,
                        error: &e.to_string(),
                    }
                    .emit();
                    if !stop
                        .sleep(delays.next().unwrap_or(ctx.settings.retry_max))
                        .await
                    {
                        return ShardEnd::Stopped;
                    }
                }
            }
        }
    }
    .unwrap_or(From::Start(if from_start {
        StartingPosition::TrimHorizon
    } else {
        ctx.settings.starting_position
    }));
    let (from_name, at) = match &from {
        From::After(seq) => ("after", Some(seq.clone())),
        From::At(seq) => ("at", Some(seq.clone())),
        From::Start(StartingPosition::TrimHorizon) => ("trim_horizon", None),
        From::Start(StartingPosition::Latest) => ("latest", None),
        From::Start(StartingPosition::AtTimestamp(t)) => ("at_timestamp", Some(t.to_string())),
    };
    ShardStarted {
        shard,
        from: from_name,
        at: at.as_deref(),
    }
    .emit();
    let mut it: Option<String> = None;
    let mut invocation = 0u64;
    loop {
        if stop.requested() {
            return ShardEnd::Stopped;
        }
        let current = match it.take() {
            Some(i) => i,
            None => match iterator(ctx, shard, &from).await {
                Ok(Some(i)) => i,
                Ok(None) => return ShardEnd::Finished,
                Err(e) => {
                    AwsRetry {
                        op: "GetShardIterator",
                        resource: shard,
                        error: &e,
                    }
                    .emit();
                    if !stop
                        .sleep(delays.next().unwrap_or(ctx.settings.retry_max))
                        .await
                    {
                        return ShardEnd::Stopped;
                    }
                    continue;
                }
            },
        };
        let out = ctx
            .kinesis
            .get_records()
            .shard_iterator(&current)
            .limit(ctx.settings.batch_size)
            .send()
            .await;
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                // Expired iterators and throttling alike: reopen from the
                // last handled position after a pause.
                AwsRetry {
                    op: "GetRecords",
                    resource: shard,
                    error: &sdk_err(e),
                }
                .emit();
                if !stop
                    .sleep(delays.next().unwrap_or(ctx.settings.retry_max))
                    .await
                {
                    return ShardEnd::Stopped;
                }
                continue;
            }
        };
        delays = super::retry_delays(ctx.settings.retry_min, ctx.settings.retry_max);
        let records = out.records;
        let behind = out.millis_behind_latest.unwrap_or(0);
        if let Some(last) = records.last() {
            invocation += 1;
            let end = handle_with_retries(ctx, shard, records.clone(), invocation, &mut stop).await;
            if end == Handled::Stopped {
                return ShardEnd::Stopped;
            }
            from = From::After(last.sequence_number().to_string());
        }
        match out.next_shard_iterator {
            Some(next) => it = Some(next),
            None => return ShardEnd::Finished,
        }
        if records.is_empty() && behind == 0 && !stop.sleep(ctx.settings.idle_wait).await {
            return ShardEnd::Stopped;
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Handled {
    /// Every record done, or the rest handed to the on-failure queue.
    Done,
    /// Stopped with records unconfirmed; they are read again on restart.
    Stopped,
}

/// One GetRecords batch through the pipeline, retried as the mapping would.
async fn handle_with_retries(
    ctx: &Ctx,
    shard: &str,
    records: Vec<KRecord>,
    invocation: u64,
    stop: &mut Shutdown,
) -> Handled {
    let mut queue: VecDeque<Vec<KRecord>> = VecDeque::from([records]);
    let mut attempts: u32 = 0;
    let mut delays = super::retry_delays(ctx.settings.retry_min, ctx.settings.retry_max);
    while let Some(chunk) = queue.pop_front() {
        attempts += 1;
        let request_id = format!("{shard}-{invocation}-{attempts}");
        let bctx = BatchContext::with_budget(&request_id, ctx.settings.batch_timeout);
        let handled = match records_of(&chunk, &ctx.stream_arn, shard, &ctx.app.config.source) {
            Ok(records) => ctx.app.handle_records(&records, &bctx).await,
            Err(e) => Err(e.into()),
        };
        let (failed_from, function_error) = match handled {
            Ok(inv) => {
                ctx.stats.add(&inv);
                inv.done(&ctx.settings.metrics);
                (first_failed(&chunk, &inv.response), false)
            }
            Err(e) => {
                FunctionError {
                    source: "kinesis",
                    request_id: &request_id,
                    records: chunk.len(),
                    error: &e,
                }
                .emit();
                (Some(0), true)
            }
        };
        PollDone {
            source: "kinesis",
            request_id: &request_id,
            records: chunk.len(),
            left: failed_from.map_or(0, |from| chunk.len() - from),
            deleted: None,
        }
        .emit();
        let Some(from) = failed_from else {
            attempts = 0;
            delays = super::retry_delays(ctx.settings.retry_min, ctx.settings.retry_max);
            continue;
        };
        let rest: Vec<KRecord> = chunk[from..].to_vec();
        if ctx.settings.max_retries.is_some_and(|m| attempts > m) {
            let msg = on_failure_message(ctx, shard, &rest, &request_id, attempts, function_error);
            if !send_on_failure(ctx, &msg, stop).await {
                left_pending(ctx, rest.len(), &queue);
                return Handled::Stopped;
            }
            ctx.stats
                .sent_to_on_failure
                .fetch_add(rest.len() as u64, std::sync::atomic::Ordering::Relaxed);
            attempts = 0;
            continue;
        }
        if stop.requested()
            || !stop
                .sleep(delays.next().unwrap_or(ctx.settings.retry_max))
                .await
        {
            left_pending(ctx, rest.len(), &queue);
            return Handled::Stopped;
        }
        if ctx.settings.bisect_on_error && rest.len() > 1 {
            // Each half gets its own retries, so bisection narrows a poison
            // record down to itself before it is given up on.
            attempts = 0;
            let mut first = rest;
            let second = first.split_off(first.len() / 2);
            queue.push_front(second);
            queue.push_front(first);
        } else {
            queue.push_front(rest);
        }
    }
    Handled::Done
}

/// Counts the records a stop leaves unconfirmed: the failed rest of this
/// chunk and the chunks not yet tried.
fn left_pending(ctx: &Ctx, rest: usize, queue: &VecDeque<Vec<KRecord>>) {
    let n = rest + queue.iter().map(Vec::len).sum::<usize>();
    ctx.stats
        .left_pending
        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
}

/// The index of the lowest sequence number the response names: the mapping
/// retries from there. A name not in the batch means the whole batch.
fn first_failed(
    chunk: &[KRecord],
    response: &crate::pipeline::response::BatchResponse,
) -> Option<usize> {
    let index: HashMap<&str, usize> = chunk
        .iter()
        .enumerate()
        .map(|(i, r)| (r.sequence_number(), i))
        .collect();
    response
        .batch_item_failures
        .iter()
        .map(|f| index.get(f.item_identifier.as_str()).copied().unwrap_or(0))
        .min()
}

fn arrival_secs(r: &KRecord) -> f64 {
    r.approximate_arrival_timestamp()
        .map_or(0.0, |t| t.as_secs_f64())
}

/// The batch as `Record`s, through the same constructor as the Lambda
/// path (a KPL aggregate splits into its user records). A record the
/// response could not name fails the whole batch, as a malformed event does.
fn records_of(
    chunk: &[KRecord],
    stream_arn: &str,
    shard: &str,
    opts: &SourceOptions,
) -> Result<Vec<Record>, EventError> {
    let mut out = Vec::with_capacity(chunk.len());
    for (index, r) in chunk.iter().enumerate() {
        kinesis::from_sdk(r, stream_arn, shard, opts, &mut out).map_err(|e| {
            EventError::Malformed {
                index,
                reason: e.to_string(),
            }
        })?;
    }
    Ok(out)
}

fn on_failure_message(
    ctx: &Ctx,
    shard: &str,
    rest: &[KRecord],
    request_id: &str,
    attempts: u32,
    function_error: bool,
) -> OnFailureRecord {
    let ms =
        |r: Option<&KRecord>| rfc3339_ms(r.map_or(0.0, arrival_secs).mul_add(1000.0, 0.0) as i64);
    OnFailureRecord {
        request_context: Some(RequestContext {
            request_id: Some(request_id.to_string()),
            function_arn: Some(ctx.settings.function_name.clone()),
            condition: Some(RETRIES_EXHAUSTED.into()),
            approximate_invoke_count: Some(attempts.into()),
        }),
        response_context: Some(ResponseContext {
            status_code: Some(200),
            executed_version: Some("$LATEST".into()),
            function_error: Some(if function_error {
                "Unhandled".into()
            } else {
                String::new()
            }),
        }),
        version: Some("1.0".into()),
        timestamp: Some(rfc3339_ms(crate::clock::now_ms())),
        kinesis_batch_info: KinesisBatchInfo {
            shard_id: shard.to_string(),
            start_sequence_number: rest
                .first()
                .map(|r| r.sequence_number().to_string())
                .unwrap_or_default(),
            end_sequence_number: rest
                .last()
                .map(|r| r.sequence_number().to_string())
                .unwrap_or_default(),
            approximate_arrival_of_first_record: Some(ms(rest.first())),
            approximate_arrival_of_last_record: Some(ms(rest.last())),
            batch_size: Some(rest.len() as u64),
            stream_arn: ctx.stream_arn.clone(),
        },
    }
}

/// Sends until SQS takes it; false when stopped first (the batch then
/// stays unconfirmed and is read again on restart: nothing lost).
async fn send_on_failure(ctx: &Ctx, msg: &OnFailureRecord, stop: &mut Shutdown) -> bool {
    let body = match serde_json::to_string(msg) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "cannot serialise the on-failure message");
            return false;
        }
    };
    let (Some(sqs), Some(url)) = (&ctx.sqs, &ctx.settings.on_failure_queue) else {
        // Lambda without a destination discards the batch; say so loudly.
        on_failure_event(msg, None).emit();
        return true;
    };
    let mut delays = super::retry_delays(ctx.settings.retry_min, ctx.settings.retry_max);
    loop {
        let mut req = sqs.send_message().queue_url(url).message_body(&body);
        if url.ends_with(".fifo") {
            let info = &msg.kinesis_batch_info;
            req = req
                .message_group_id(&info.shard_id)
                .message_deduplication_id(crate::aws::fnv1a64_hex(&[
                    info.stream_arn.as_bytes(),
                    info.shard_id.as_bytes(),
                    info.start_sequence_number.as_bytes(),
                ]));
        }
        match req.send().await {
            Ok(_) => {
                on_failure_event(msg, Some(url)).emit();
                return true;
            }
            Err(e) => {
                AwsRetry {
                    op: "SendMessage",
                    resource: url,
                    error: &sdk_err(e),
                }
                .emit();
                if !stop
                    .sleep(delays.next().unwrap_or(ctx.settings.retry_max))
                    .await
                {
                    return false;
                }
            }
        }
    }
}

/// The event for an exhausted batch: sent to `queue`, or skipped.
fn on_failure_event<'a>(msg: &'a OnFailureRecord, queue: Option<&'a str>) -> OnFailureSent<'a> {
    let info = &msg.kinesis_batch_info;
    OnFailureSent {
        shard: &info.shard_id,
        start_sequence_number: &info.start_sequence_number,
        end_sequence_number: &info.end_sequence_number,
        records: info.batch_size.unwrap_or(0),
        attempts: msg
            .request_context
            .as_ref()
            .and_then(|c| c.approximate_invoke_count)
            .unwrap_or(0),
        queue,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::event::parse_event;

    fn rec(seq: &str, data: &[u8], pk: &str) -> KRecord {
        KRecord::builder()
            .sequence_number(seq)
            .partition_key(pk)
            .data(aws_sdk_kinesis::primitives::Blob::new(data))
            .approximate_arrival_timestamp(aws_sdk_kinesis::primitives::DateTime::from_millis(
                1_764_000_000_250,
            ))
            .build()
            .unwrap()
    }

    #[test]
    fn batches_become_the_records_the_lambda_path_builds() {
        let arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s";
        let shard = "shardId-000000000003";
        let chunk = [rec("10", br#"{"a":1}"#, "k"), rec("9", b"\xff", "k")];
        // The event the mapping delivers for this chunk, as Lambda writes it.
        let ev = format!(
            r#"{{"Records":[
              {{"kinesis":{{"partitionKey":"k","sequenceNumber":"10","data":"eyJhIjoxfQ==","approximateArrivalTimestamp":1764000000.25}},"eventSource":"aws:kinesis","eventID":"{shard}:10","eventSourceARN":"{arn}"}},
              {{"kinesis":{{"partitionKey":"k","sequenceNumber":"9","data":"/w==","approximateArrivalTimestamp":1764000000.25}},"eventSource":"aws:kinesis","eventID":"{shard}:9","eventSourceARN":"{arn}"}}]}}"#
        );
        let opts = SourceOptions::default();
        let recs = records_of(&chunk, arn, shard, &opts).unwrap();
        assert_eq!(recs, parse_event(ev.as_bytes(), &opts).unwrap());
        assert_eq!(&*recs[0].lane, format!("{arn}/{shard}"));
        assert_eq!(&*recs[0].position, "10");
        assert_eq!(recs[0].arrival_ms, 1_764_000_000_250);
        assert_eq!(recs[1].payload, b"\xff");
        assert!(recs[1].defect.is_none());
        // A sequence number the response could not name fails the batch.
        let bad = records_of(&[rec("x1", b"", "k")], arn, shard, &opts);
        assert!(matches!(bad, Err(EventError::Malformed { index: 0, .. })));
    }

    #[test]
    fn retries_start_at_the_lowest_reported_sequence() {
        use crate::pipeline::response::{BatchResponse, ItemFailure};
        let chunk = vec![rec("1", b"", "a"), rec("2", b"", "b"), rec("3", b"", "a")];
        let resp = |ids: &[&str]| BatchResponse {
            batch_item_failures: ids
                .iter()
                .map(|i| ItemFailure {
                    item_identifier: i.to_string(),
                })
                .collect(),
        };
        assert_eq!(first_failed(&chunk, &resp(&[])), None);
        assert_eq!(first_failed(&chunk, &resp(&["3", "2"])), Some(1));
        assert_eq!(first_failed(&chunk, &resp(&["99"])), Some(0));
    }
}
