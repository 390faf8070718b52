//! Replay of a Kinesis event source's on-failure destination: each queue
//! message names a failed batch (`KinesisBatchInfo`), whose records are
//! read back from the stream and put through the pipeline with per-record
//! keys (`shard#sequence`). A message is deleted only when every record of
//! its range is confirmed, a duplicate or quarantined; a range that cannot
//! be read whole (past retention, trimmed, stream gone) is an error naming
//! the message, and the message stays.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_kinesis::error::{DisplayErrorContext, SdkError};
use aws_sdk_kinesis::operation::get_records::GetRecordsError;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_sqs::types::Message;
use base64::Engine;
use serde_json::json;

use super::on_failure::{parse_body, KinesisBatchInfo};
use super::{Fate, Replayer};
use crate::aws::sqs;
use crate::source::seqno::cmp_seq;

/// Records per pipeline batch.
const CHUNK: usize = 500;
/// Throttled `GetRecords` calls retried before the range is given up.
const THROTTLE_ATTEMPTS: u32 = 8;
/// Empty pages in a row tolerated before the range is called unreadable.
const EMPTY_PAGES: u32 = 100;

pub struct KinesisReplay {
    pub sqs: aws_sdk_sqs::Client,
    pub kinesis: aws_sdk_kinesis::Client,
    pub queue_url: String,
    pub visibility_timeout: Duration,
    /// `GetRecords` limit per page (at most 10,000).
    pub page_limit: i32,
}

/// One record read back from the stream.
#[derive(Clone, Debug)]
pub struct StreamRecord {
    pub sequence_number: String,
    pub partition_key: String,
    pub data: Vec<u8>,
    pub arrival_s: f64,
}

impl KinesisReplay {
    pub async fn run(&self, rep: &mut Replayer) -> Result<(), String> {
        let (visible, _) = sqs::depth(&self.sqs, &self.queue_url).await?;
        rep.expect("replay kinesis (records)", None);
        tracing::info!(queue = %self.queue_url, messages = visible, "on-failure records to replay");
        let mut held: Vec<Message> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let result = self.messages(rep, &mut held, &mut seen).await;
        sqs::release(&self.sqs, &self.queue_url, &held).await;
        rep.report.kept += held.len();
        result
    }

    async fn messages(
        &self,
        rep: &mut Replayer,
        held: &mut Vec<Message>,
        seen: &mut HashSet<String>,
    ) -> Result<(), String> {
        loop {
            if rep.at_max() {
                return Ok(());
            }
            let batch = sqs::receive(
                &self.sqs,
                &self.queue_url,
                rep.room().min(10),
                self.visibility_timeout,
                Duration::from_secs(1),
            )
            .await?;
            let batch: Vec<Message> = batch
                .into_iter()
                .filter(|m| seen.insert(m.message_id().unwrap_or_default().to_string()))
                .collect();
            if batch.is_empty() {
                return Ok(());
            }
            for m in batch {
                rep.report.messages += 1;
                let done = self.one(rep, &m).await;
                if done && !rep.options().dry_run {
                    let failed = sqs::delete(&self.sqs, &self.queue_url, &[&m]).await;
                    if failed.is_empty() {
                        rep.report.deleted += 1;
                    }
                    for (id, why) in failed {
                        rep.report
                            .fail_message(&format!("on-failure message {id}"), why);
                    }
                } else {
                    held.push(m);
                }
            }
        }
    }

    /// Replays one on-failure message; true when all of its range is done.
    async fn one(&self, rep: &mut Replayer, m: &Message) -> bool {
        let what = format!("on-failure message {}", m.message_id().unwrap_or("?"));
        let info = match parse_body(m.body().unwrap_or_default()) {
            Ok(r) => r.kinesis_batch_info,
            Err(e) => {
                rep.report.fail_message(&what, e);
                return false;
            }
        };
        let records = match self.read_range(&info).await {
            Ok(r) => r,
            Err(e) => {
                rep.report.fail_message(
                    &what,
                    format!(
                        "{} {} {}..={}: {e}",
                        info.stream_arn,
                        info.shard_id,
                        info.start_sequence_number,
                        info.end_sequence_number
                    ),
                );
                return false;
            }
        };
        for chunk in records.chunks(CHUNK) {
            let event = kinesis_event(&info, chunk);
            let fates = match rep.run_event(event.to_string().as_bytes()).await {
                Ok(r) => r.into_iter().map(|(_, f)| f).collect::<Vec<_>>(),
                Err(e) => vec![Fate::Failed(e); chunk.len()],
            };
            let mut all_done = true;
            for (r, fate) in chunk.iter().zip(&fates) {
                rep.report
                    .add(&format!("{} {}", info.shard_id, r.sequence_number), fate);
                all_done &= fate.is_done();
            }
            rep.advance(chunk.len() as u64);
            // Later chunks would overtake the failed record in its shard.
            if !all_done {
                return false;
            }
        }
        true
    }

    /// Reads `start..=end` of the shard, across pages and throttling.
    pub async fn read_range(&self, info: &KinesisBatchInfo) -> Result<Vec<StreamRecord>, String> {
        let stream = info
            .stream_name()
            .ok_or_else(|| format!("no stream name in {}", info.stream_arn))?;
        let start = &info.start_sequence_number;
        let end = &info.end_sequence_number;
        let it = self
            .kinesis
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&info.shard_id)
            .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
            .starting_sequence_number(start)
            .send()
            .await
            .map_err(|e| {
                let hint = match e.as_service_error() {
                    Some(s) if s.is_invalid_argument_exception() => {
                        " (the start is not in the shard: past the stream's retention, or not of this shard)"
                    }
                    // Kinesis says this for a start sequence number that is
                    // no longer (or never was) in the shard, as well as for
                    // a missing stream or shard.
                    Some(s) if s.is_resource_not_found_exception() => {
                        " (the start is past the stream's retention, or the stream or shard is gone)"
                    }
                    _ => "",
                };
                format!("GetShardIterator: {}{hint}", DisplayErrorContext(e))
            })?;
        let mut iterator = it.shard_iterator;
        let mut out: Vec<StreamRecord> = Vec::new();
        let mut empty = 0u32;
        while let Some(current) = iterator.take() {
            let page = self.page(&current).await?;
            iterator = page.next_shard_iterator().map(str::to_string);
            if page.records().is_empty() {
                if page.millis_behind_latest() == Some(0) {
                    break;
                }
                empty += 1;
                if empty > EMPTY_PAGES {
                    return Err(format!("{EMPTY_PAGES} empty pages without reaching {end}"));
                }
                continue;
            }
            empty = 0;
            for r in page.records() {
                let seq = r.sequence_number();
                if out.is_empty() && seq != start.as_str() {
                    return Err(format!(
                        "the first record read is {seq}, not the start {start}: the start is past the stream's retention (trimmed)"
                    ));
                }
                if cmp_seq(seq, end).is_gt() {
                    return Ok(out);
                }
                out.push(StreamRecord {
                    sequence_number: seq.to_string(),
                    partition_key: r.partition_key().unwrap_or_default().to_string(),
                    data: r.data().as_ref().to_vec(),
                    arrival_s: r
                        .approximate_arrival_timestamp()
                        .map_or(0.0, |t| t.secs() as f64 + f64::from(t.subsec_nanos()) / 1e9),
                });
                if seq == end.as_str() {
                    return Ok(out);
                }
            }
        }
        match out.last() {
            None => Err(format!(
                "no records at or after {start}: past the stream's retention (trimmed)"
            )),
            Some(last) => Err(format!(
                "the shard ends at {} before the range's end {end}",
                last.sequence_number
            )),
        }
    }

    async fn page(
        &self,
        iterator: &str,
    ) -> Result<aws_sdk_kinesis::operation::get_records::GetRecordsOutput, String> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 0;
        loop {
            let res = self
                .kinesis
                .get_records()
                .shard_iterator(iterator)
                .limit(self.page_limit.clamp(1, 10_000))
                .send()
                .await;
            match res {
                Ok(page) => return Ok(page),
                Err(e) if throttled(&e) && attempt < THROTTLE_ATTEMPTS => {
                    attempt += 1;
                    tracing::debug!(attempt, ?delay, "GetRecords throttled; backing off");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => return Err(format!("GetRecords: {}", DisplayErrorContext(e))),
            }
        }
    }
}

fn throttled<R>(e: &SdkError<GetRecordsError, R>) -> bool {
    e.as_service_error().is_some_and(|s| {
        s.is_provisioned_throughput_exceeded_exception() || s.is_kms_throttling_exception()
    })
}

/// The records as the Lambda event the mapping would have delivered.
pub fn kinesis_event(info: &KinesisBatchInfo, records: &[StreamRecord]) -> serde_json::Value {
    let recs: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrival_s,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", info.shard_id, r.sequence_number),
                "eventName": "aws:kinesis:record",
                "eventSourceARN": info.stream_arn,
            })
        })
        .collect();
    json!({ "Records": recs })
}
