//! Replay of a Kinesis event source's on-failure destination: each queue
//! message names a failed batch (`KinesisBatchInfo`), whose records are
//! read back from the stream and put through the pipeline with per-record
//! keys (`shard#sequence`). A message is deleted only when every record of
//! its range is confirmed, a duplicate or quarantined; a range that cannot
//! be read whole (past retention, trimmed, stream gone) is an error naming
//! the message, and the message stays.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_kinesis::error::SdkError;
use aws_sdk_kinesis::operation::get_records::GetRecordsError;
use aws_sdk_kinesis::types::Record as KRecord;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_sqs::types::Message;

use super::on_failure::{parse_body, KinesisBatchInfo};
use super::{ReplayError, Replayer};
use crate::aws::sqs;
use crate::pipeline::RecordState;
use crate::source::seqno::cmp_seq;
use crate::source::{kinesis, Record};
use crate::telemetry::ReplayStarted;

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

impl KinesisReplay {
    pub async fn run(&self, rep: &mut Replayer) -> Result<(), ReplayError> {
        let (visible, _) = sqs::depth(&self.sqs, &self.queue_url).await?;
        rep.expect("replay kinesis (records)", None);
        ReplayStarted {
            queue: &self.queue_url,
            messages: visible,
        }
        .emit();
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
    ) -> Result<(), ReplayError> {
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
                rep.report
                    .fail_message(&what, ReplayError::OnFailure(e).to_string());
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
            // A KPL aggregate is many records, each reported as `seq:sub`.
            let (names, states): (Vec<String>, _) = match self.records_of(rep, &info, chunk) {
                Ok(records) => {
                    let states = rep.run_records(&records).await;
                    let names = records
                        .iter()
                        .map(|r| format!("{} {}", info.shard_id, r.position_text()))
                        .collect();
                    (names, states)
                }
                Err(e) => {
                    let names = chunk
                        .iter()
                        .map(|r| format!("{} {}", info.shard_id, r.sequence_number()))
                        .collect();
                    (names, vec![RecordState::Pending { reason: e }; chunk.len()])
                }
            };
            let mut all_done = true;
            for (name, state) in names.iter().zip(&states) {
                rep.report.add(name, state);
                all_done &= state.is_done();
            }
            rep.advance(chunk.len() as u64);
            // Later chunks would overtake the failed record in its shard.
            if !all_done {
                return false;
            }
        }
        true
    }

    /// The records as the pipeline takes them, through the constructor the
    /// Lambda path uses (a KPL aggregate splits into its user records);
    /// each is keyed `shard#sequence[#subsequence]` by replay mode.
    fn records_of(
        &self,
        rep: &Replayer,
        info: &KinesisBatchInfo,
        chunk: &[KRecord],
    ) -> Result<Vec<Record>, String> {
        let opts = &rep.app().config.source;
        let mut out = Vec::with_capacity(chunk.len());
        for r in chunk {
            kinesis::from_sdk(r, &info.stream_arn, &info.shard_id, opts, &mut out)
                .map_err(|e| format!("record {}: {e}", r.sequence_number()))?;
        }
        Ok(out)
    }

    /// Reads `start..=end` of the shard, across pages and throttling.
    pub async fn read_range(&self, info: &KinesisBatchInfo) -> Result<Vec<KRecord>, ReplayError> {
        let stream = info
            .stream_name()
            .ok_or_else(|| ReplayError::Range(format!("no stream name in {}", info.stream_arn)))?;
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
                ReplayError::Kinesis {
                    op: "GetShardIterator",
                    reason: format!("{}{hint}", crate::aws::error::error_text(&e)),
                }
            })?;
        let mut iterator = it.shard_iterator;
        let mut out: Vec<KRecord> = Vec::new();
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
                    return Err(ReplayError::Range(format!(
                        "{EMPTY_PAGES} empty pages without reaching {end}"
                    )));
                }
                continue;
            }
            empty = 0;
            for r in page.records() {
                let seq = r.sequence_number();
                if out.is_empty() && seq != start.as_str() {
                    return Err(ReplayError::Range(format!(
                        "the first record read is {seq}, not the start {start}: the start is past the stream's retention (trimmed)"
                    )));
                }
                if cmp_seq(seq, end).is_gt() {
                    return Ok(out);
                }
                let last = seq == end.as_str();
                out.push(r.clone());
                if last {
                    return Ok(out);
                }
            }
        }
        Err(ReplayError::Range(match out.last() {
            None => {
                format!("no records at or after {start}: past the stream's retention (trimmed)")
            }
            Some(last) => format!(
                "the shard ends at {} before the range's end {end}",
                last.sequence_number()
            ),
        }))
    }

    async fn page(
        &self,
        iterator: &str,
    ) -> Result<aws_sdk_kinesis::operation::get_records::GetRecordsOutput, ReplayError> {
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
                    tracing::debug!(
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        "GetRecords throttled; backing off"
                    );
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(ReplayError::Kinesis {
                        op: "GetRecords",
                        reason: crate::aws::error::error_text(&e),
                    })
                }
            }
        }
    }
}

fn throttled<R>(e: &SdkError<GetRecordsError, R>) -> bool {
    e.as_service_error().is_some_and(|s| {
        s.is_provisioned_throughput_exceeded_exception() || s.is_kms_throttling_exception()
    })
}
