//! Replay of an SQS dead-letter queue (FIFO or standard), or a redrive of
//! its messages back to a source queue.
//!
//! Each message is keyed by its original message id, as the bridge keyed it
//! when it first saw it (`msg#<id>`): a standard DLQ keeps the id when SQS
//! moves a message; a FIFO DLQ gives the moved message a new id and puts the
//! original one in `MessageDeduplicationId` (SQS developer guide, DLQ
//! redrive). moto keeps id and deduplication id unchanged, so tests that
//! fill a FIFO DLQ by hand set the deduplication id as SQS would.
//!
//! Order: a FIFO queue returns no more messages of a group while some are
//! in flight, so a group's messages come in order across receives, and a
//! message that fails stays in flight (its group held) until the end of
//! the run, when everything not done is made visible again. Held messages
//! have their visibility extended while the run goes on; one that comes
//! back anyway (its visibility lapsed) stops the run rather than let later
//! messages of its group overtake it.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;

use super::{ReplayError, Replayer};
use crate::aws::sqs::{delete, depth, queue_arn, receive, release, set_visibility, SQS_BATCH};
use crate::pipeline::RecordState;
use crate::source::sqs::{record, SqsParts};

/// Messages gathered before one pipeline batch.
const ROUND: usize = 100;

/// Where a DLQ message's original message id is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFrom {
    /// FIFO queues: the deduplication id; standard queues: the message id.
    Auto,
    MessageId,
    DedupId,
}

impl std::str::FromStr for KeyFrom {
    type Err = ReplayError;
    fn from_str(s: &str) -> Result<KeyFrom, ReplayError> {
        match s {
            "auto" => Ok(KeyFrom::Auto),
            "message-id" => Ok(KeyFrom::MessageId),
            "dedup-id" => Ok(KeyFrom::DedupId),
            other => Err(ReplayError::KeyFrom(other.to_string())),
        }
    }
}

pub struct SqsReplay {
    pub client: Client,
    pub dlq_url: String,
    /// Move messages here instead of replaying them.
    pub redrive_to: Option<String>,
    /// How long received messages stay hidden from other consumers.
    pub visibility_timeout: Duration,
    pub key_from: KeyFrom,
}

fn system_attr(m: &Message, a: MessageSystemAttributeName) -> Option<&str> {
    m.attributes().and_then(|x| x.get(&a)).map(String::as_str)
}

impl SqsReplay {
    fn is_fifo(&self) -> bool {
        self.dlq_url.ends_with(".fifo")
    }

    /// The original message id the bridge keyed this message by.
    fn original_id<'m>(&self, m: &'m Message) -> Option<&'m str> {
        let dedup = system_attr(m, MessageSystemAttributeName::MessageDeduplicationId);
        let id = m.message_id();
        match (self.key_from, self.is_fifo()) {
            (KeyFrom::MessageId, _) | (KeyFrom::Auto, false) => id,
            (KeyFrom::DedupId, _) | (KeyFrom::Auto, true) => dedup,
        }
        .filter(|s| !s.is_empty())
    }

    pub async fn run(&self, rep: &mut Replayer) -> Result<(), ReplayError> {
        let arn = queue_arn(&self.client, &self.dlq_url).await?;
        let (visible, in_flight) = depth(&self.client, &self.dlq_url).await?;
        let expected = rep.options().max.map_or(visible, |m| visible.min(m as u64));
        rep.expect("replay sqs", Some(expected));
        if in_flight > 0 {
            rep.report.notes.push(format!(
                "{in_flight} messages of {} were in flight at the start (another consumer, or a replay that stopped); they are replayed once visible again",
                self.dlq_url
            ));
        }
        let mut held: Vec<Message> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let result = self.rounds(rep, &arn, &mut held, &mut seen).await;
        if rep.options().dry_run && !rep.at_max() {
            if let Ok((left, _)) = depth(&self.client, &self.dlq_url).await {
                if left > 0 {
                    rep.report.notes.push(format!(
                        "about {left} messages were not inspected: a FIFO queue hides a group's later messages while its first ones are held, and a dry run deletes nothing"
                    ));
                }
            }
        }
        release(&self.client, &self.dlq_url, &held).await;
        rep.report.kept += held.len();
        result
    }

    async fn rounds(
        &self,
        rep: &mut Replayer,
        arn: &str,
        held: &mut Vec<Message>,
        seen: &mut HashSet<String>,
    ) -> Result<(), ReplayError> {
        let mut extended = std::time::Instant::now();
        loop {
            // Failed messages stay hidden for the whole run: were one to
            // reappear, a FIFO queue would hand out the rest of its group.
            if !held.is_empty() && extended.elapsed() >= self.visibility_timeout / 2 {
                set_visibility(&self.client, &self.dlq_url, held, self.visibility_timeout).await;
                extended = std::time::Instant::now();
            }
            let mut batch: Vec<Message> = Vec::new();
            let want = ROUND.min(rep.room());
            while batch.len() < want {
                // A short wait on the first receive of a round only: an
                // empty answer after that means what is visible is taken.
                let wait = if batch.is_empty() {
                    Duration::from_secs(1)
                } else {
                    Duration::ZERO
                };
                let got = receive(
                    &self.client,
                    &self.dlq_url,
                    want - batch.len(),
                    self.visibility_timeout,
                    wait,
                )
                .await?;
                if got.is_empty() {
                    break;
                }
                batch.extend(got);
            }
            if batch.is_empty() {
                return Ok(());
            }
            // A message seen before is back: its visibility lapsed while it
            // was held, so later messages of its group may be in this batch
            // too. Replaying them now would overtake it.
            if let Some(m) = batch
                .iter()
                .find(|m| seen.contains(m.message_id().unwrap_or_default()))
            {
                let id = m.message_id().unwrap_or("?").to_string();
                release(&self.client, &self.dlq_url, &batch).await;
                return Err(ReplayError::CameBack { id });
            }
            for m in &batch {
                seen.insert(m.message_id().unwrap_or_default().to_string());
            }
            rep.report.messages += batch.len();
            let n = batch.len() as u64;
            tracing::debug!(messages = n, "replay round received");
            if let Some(target) = &self.redrive_to {
                self.redrive(rep, target, batch, held).await;
            } else {
                self.replay(rep, arn, batch, held).await;
            }
            rep.advance(n);
            tracing::debug!(messages = n, "replay round done");
        }
    }

    async fn replay(
        &self,
        rep: &mut Replayer,
        arn: &str,
        batch: Vec<Message>,
        held: &mut Vec<Message>,
    ) {
        let mut keyed: Vec<Message> = Vec::new();
        let mut records = Vec::new();
        for m in batch {
            let Some(id) = self.original_id(&m).map(str::to_string) else {
                let what = format!("message {}", m.message_id().unwrap_or("?"));
                rep.report.fail_message(
                    &what,
                    format!(
                        "no original message id ({} is empty); see --key-from",
                        if self.is_fifo() {
                            "MessageDeduplicationId"
                        } else {
                            "MessageId"
                        }
                    ),
                );
                held.push(m);
                continue;
            };
            // Keyed by the original id, as the bridge keyed the message
            // when it first saw it.
            let mut parts = SqsParts::from_message(&m, arn);
            parts.message_id = &id;
            records.push(record(parts, &rep.app().config.source));
            keyed.push(m);
        }
        if keyed.is_empty() {
            return;
        }
        // A message the response could not name fails the batch, as a
        // malformed event does.
        let states = match records.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(records) => rep.run_records(&records).await,
            Err(e) => vec![
                RecordState::Pending {
                    reason: e.to_string()
                };
                keyed.len()
            ],
        };
        let mut done: Vec<&Message> = Vec::new();
        for (m, state) in keyed.iter().zip(&states) {
            let what = format!(
                "message {} (original {})",
                m.message_id().unwrap_or("?"),
                self.original_id(m).unwrap_or("?")
            );
            rep.report.add(&what, state);
            if state.is_done() && !rep.options().dry_run {
                done.push(m);
            }
        }
        let not_deleted = delete(&self.client, &self.dlq_url, &done).await;
        rep.report.deleted += done.len() - not_deleted.len();
        for (id, why) in not_deleted {
            rep.report.fail_message(&format!("message {id}"), why);
        }
        for (m, state) in keyed.into_iter().zip(&states) {
            if !state.is_done() || rep.options().dry_run {
                held.push(m);
            }
        }
    }

    /// Sends each message to `target` with its body, attributes, group and
    /// deduplication id, then deletes it from the DLQ.
    async fn redrive(
        &self,
        rep: &mut Replayer,
        target: &str,
        batch: Vec<Message>,
        held: &mut Vec<Message>,
    ) {
        if rep.options().dry_run {
            // Counted as what would move; the summary says it is a dry run.
            rep.report.redriven += batch.len();
            held.extend(batch);
            return;
        }
        let fifo_target = target.ends_with(".fifo");
        for chunk in batch.chunks(SQS_BATCH) {
            let entries: Vec<SendMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, m)| {
                    let mut e = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(m.body().unwrap_or_default())
                        .set_message_attributes(m.message_attributes().cloned());
                    if fifo_target {
                        e = e
                            .set_message_group_id(
                                system_attr(m, MessageSystemAttributeName::MessageGroupId)
                                    .map(str::to_string),
                            )
                            .set_message_deduplication_id(
                                system_attr(m, MessageSystemAttributeName::MessageDeduplicationId)
                                    .map(str::to_string),
                            );
                    }
                    e.build().ok()
                })
                .collect();
            let sent: Vec<usize> = match self
                .client
                .send_message_batch()
                .queue_url(target)
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(out) => {
                    for f in &out.failed {
                        let m = f.id.parse::<usize>().ok().and_then(|i| chunk.get(i));
                        rep.report.fail_message(
                            &format!("message {}", m.and_then(|m| m.message_id()).unwrap_or("?")),
                            format!(
                                "not sent to {target}: {} {}",
                                f.code,
                                f.message.as_deref().unwrap_or("")
                            ),
                        );
                    }
                    out.successful
                        .iter()
                        .filter_map(|s| s.id.parse().ok())
                        .collect()
                }
                Err(e) => {
                    let why = format!(
                        "not sent to {target}: {}",
                        crate::aws::error::error_text(&e)
                    );
                    for m in chunk {
                        rep.report.fail_message(
                            &format!("message {}", m.message_id().unwrap_or("?")),
                            why.clone(),
                        );
                    }
                    Vec::new()
                }
            };
            let moved: Vec<&Message> = sent.iter().filter_map(|&i| chunk.get(i)).collect();
            let not_deleted = delete(&self.client, &self.dlq_url, &moved).await;
            rep.report.redriven += moved.len();
            rep.report.deleted += moved.len() - not_deleted.len();
            for (id, why) in not_deleted {
                rep.report
                    .fail_message(&format!("message {id} (already sent to {target})"), why);
            }
            for (i, m) in chunk.iter().enumerate() {
                if !sent.contains(&i) {
                    held.push(m.clone());
                }
            }
        }
    }
}
