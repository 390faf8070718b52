//! The batch algorithm against in-process fakes: every rule of DESIGN §3–§6
//! that does not need a real server. Payloads are `table:value[#key]`;
//! `bad` fails to decode.

use std::sync::Mutex;
use std::time::Duration;

use super::response::batch_response;
use super::*;
use crate::dedupe::memory::MemoryStore;
use crate::dedupe::DedupeStore;
use crate::source::{Record, SourceKind};

struct FakeDecoder;

#[derive(Default)]
struct FakeLane {
    runs: Vec<(String, Vec<usize>, Vec<String>)>,
}

fn parse(payload: &[u8]) -> Result<(String, String, Option<String>), String> {
    let text = std::str::from_utf8(payload).map_err(|_| "bad utf-8".to_string())?;
    let (table, rest) = text
        .split_once(':')
        .ok_or_else(|| format!("no table in {text:?}"))?;
    let (value, key) = match rest.split_once('#') {
        Some((v, k)) => (v, Some(k.to_string())),
        None => (rest, None),
    };
    Ok((table.to_string(), value.to_string(), key))
}

impl LaneRows for FakeLane {
    type Error = String;

    fn push(&mut self, index: usize, record: &Record) -> Result<Option<String>, String> {
        let (table, value, key) = parse(&record.payload)?;
        match self.runs.last_mut() {
            Some((t, recs, vals)) if *t == table => {
                recs.push(index);
                vals.push(value);
            }
            _ => self.runs.push((table.clone(), vec![index], vec![value])),
        }
        Ok(key.map(|k| format!("{table}#{k}")))
    }

    fn encode(&self, _func: &str, _msg_type: MsgType) -> Vec<EncodedRun> {
        self.runs
            .iter()
            .map(|(t, recs, vals)| EncodedRun {
                table: t.clone(),
                rows: vals.len(),
                records: recs.clone(),
                bytes: format!("{t}:{}", vals.join(",")).into_bytes(),
            })
            .collect()
    }
}

impl Decoder for FakeDecoder {
    type Lane = FakeLane;
    fn lane(&self) -> FakeLane {
        FakeLane::default()
    }
    fn has_payload_keys(&self) -> bool {
        true
    }
    fn payload_key(&self, record: &Record) -> Result<Option<String>, String> {
        parse(&record.payload).map(|(t, _, k)| k.map(|k| format!("{t}#{k}")))
    }
}

#[derive(Default)]
struct FakeLink {
    down: bool,
    /// Sends succeed this many times, then the connection breaks.
    break_after_sends: Option<usize>,
    /// In sync mode, runs of this table are rejected with 'type.
    reject_table: Option<String>,
    /// Runs of this table are refused before any I/O, as a malformed
    /// message is.
    malformed_table: Option<String>,
    sent: Vec<String>,
    /// What the tickerplant has processed for sure (confirmed by a chaser).
    confirmed: Vec<String>,
    /// Messages per `send_sync_all` call.
    rounds: Vec<usize>,
}

impl TickerplantLink for FakeLink {
    async fn ensure_connected(&mut self, _until: Instant) -> Result<(), LinkError> {
        if self.down {
            return Err(LinkError::unavailable("connection refused"));
        }
        Ok(())
    }
    async fn send_async(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        if self.break_after_sends == Some(self.sent.len()) {
            return Err(LinkError::unavailable("broken pipe"));
        }
        self.sent.push(String::from_utf8_lossy(msg).into_owned());
        Ok(())
    }
    async fn send_sync(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        let text = String::from_utf8_lossy(msg).into_owned();
        if let Some(t) = &self.malformed_table {
            if text.starts_with(&format!("{t}:")) {
                return Err(LinkError::local("bad length"));
            }
        }
        if let Some(t) = &self.reject_table {
            if text.starts_with(&format!("{t}:")) {
                return Err(LinkError::Remote("type".into()));
            }
        }
        self.send_async(msg).await?;
        self.confirmed = self.sent.clone();
        Ok(())
    }
    async fn chase(&mut self) -> Result<(), LinkError> {
        self.ensure_connected(Instant::now()).await?;
        self.confirmed = self.sent.clone();
        Ok(())
    }
    async fn send_sync_all(&mut self, msgs: &[&[u8]]) -> Vec<Result<(), LinkError>> {
        self.rounds.push(msgs.len());
        let mut out = Vec::new();
        for m in msgs {
            out.push(self.send_sync(m).await);
        }
        out
    }
}

#[derive(Default)]
struct FakeQuarantine {
    fail: bool,
    items: Mutex<Vec<QuarantineItem>>,
}

impl QuarantineSink for FakeQuarantine {
    async fn send(&self, items: &[QuarantineItem]) -> Vec<Result<(), QuarantineError>> {
        if self.fail {
            return items
                .iter()
                .map(|_| Err(QuarantineError::Send("queue unavailable".into())))
                .collect();
        }
        if let Ok(mut q) = self.items.lock() {
            q.extend_from_slice(items);
        }
        items.iter().map(|_| Ok(())).collect()
    }
}

fn kinesis(shard: &str, seq: u64, payload: &str) -> Record {
    let seq = format!("{:056}", 49_000_000_000u64 + seq);
    Record {
        kind: SourceKind::Kinesis,
        source_arn: "arn:aws:kinesis:eu-west-1:1:stream/trades".into(),
        lane: shard.into(),
        position: seq.clone().into(),
        failure_id: seq.into(),
        message_key: None,
        payload: payload.as_bytes().to_vec(),
        arrival_ms: 0,
        defect: None,
        pointer_attribute: None,
        sub: None,
        kpl_note: None,
    }
}

fn sqs(group: &str, id: &str, payload: &str) -> Record {
    Record {
        kind: SourceKind::SqsFifo,
        source_arn: "arn:aws:sqs:eu-west-1:1:trades.fifo".into(),
        lane: group.into(),
        position: "".into(),
        failure_id: id.into(),
        message_key: Some(id.into()),
        payload: payload.as_bytes().to_vec(),
        arrival_ms: 0,
        defect: None,
        pointer_attribute: None,
        sub: None,
        kpl_note: None,
    }
}

fn ctx() -> BatchContext {
    BatchContext::with_budget("req-1", Duration::from_secs(60))
}

struct Run {
    result: BatchResult,
    failures: Vec<String>,
}

async fn run(
    records: &[Record],
    store: &MemoryStore,
    link: &mut FakeLink,
    quarantine: &FakeQuarantine,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
) -> Run {
    let result = process_batch(records, store, link, quarantine, &FakeDecoder, cfg, ctx).await;

    let failures = batch_response(records, &result.states)
        .expect("nameable")
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    Run { result, failures }
}

fn pending(states: &[RecordState]) -> Vec<usize> {
    (0..states.len())
        .filter(|&i| !states[i].is_done())
        .collect()
}

#[tokio::test]
async fn kinesis_batch_forwards_in_order_and_costs_two_requests_per_lane() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..1000)
        .map(|i| kinesis("shard-0", i, &format!("trade:{i}")))
        .collect();
    let cfg = PipelineConfig::default();
    let mut cfg_nokeys = cfg.clone();
    cfg_nokeys.transport_dedupe = true;
    let r = run(&recs, &store, &mut link, &q, &cfg_nokeys, &ctx()).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(r.result.summary.forwarded, 1000);
    assert_eq!(link.confirmed.len(), 1, "one run, one message");
    let want: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
    assert_eq!(link.confirmed[0], format!("trade:{}", want.join(",")));
    // One checkpoint read and one conditional write for the whole batch.
    assert_eq!(r.result.summary.dedupe_requests, 2);
    assert_eq!(
        store.checkpoint("shard-0").await.unwrap().as_deref(),
        Some(recs[999].position.as_ref())
    );
    assert_eq!(r.result.summary.rows_per_table.get("trade"), Some(&1000));
}

#[tokio::test]
async fn redelivered_kinesis_batch_forwards_nothing_twice() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..10)
        .map(|i| kinesis("s", i, &format!("trade:{i}")))
        .collect();
    let cfg = PipelineConfig::default();
    run(&recs[..6], &store, &mut link, &q, &cfg, &ctx()).await;
    // Lambda redelivers an overlapping batch (retry after a partial failure).
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(r.result.summary.duplicates, 6);
    assert_eq!(r.result.summary.forwarded, 4);
    assert_eq!(link.sent, vec!["trade:0,1,2,3,4,5", "trade:6,7,8,9"]);
}

#[tokio::test]
async fn sqs_group_failing_in_the_middle_reports_it_and_its_later_messages_only() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("B", "b1", "trade:2"),
        sqs("C", "c1", "quote:3"),
        sqs("B", "b2", "bad"),
        sqs("A", "a2", "trade:4"),
        sqs("B", "b3", "trade:5"),
        sqs("C", "c2", "quote:6"),
    ];
    let cfg = PipelineConfig {
        bad_records: BadRecords::Fail,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(r.failures, vec!["b2", "b3"]);
    assert_eq!(link.confirmed, vec!["trade:1,4", "trade:2", "quote:3,6"]);
    // Done messages are remembered; the failed group's claims are released.
    assert!(store.is_completed("a1") && store.is_completed("b1") && store.is_completed("c2"));
    assert!(!store.is_completed("b2") && !store.is_completed("b3"));
    // The retry of the failed tail (fixed upstream) takes the keys at once.
    let retry = vec![sqs("B", "b2", "trade:7"), sqs("B", "b3", "trade:5")];
    let r = run(&retry, &store, &mut link, &q, &cfg, &ctx()).await;
    assert!(r.failures.is_empty());
    assert_eq!(link.confirmed.last().map(String::as_str), Some("trade:7,5"));
}

#[tokio::test]
async fn tickerplant_down_fails_every_record_and_commits_nothing() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        down: true,
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..5).map(|i| kinesis("s", i, "trade:1")).collect();
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(pending(&r.result.states), vec![0, 1, 2, 3, 4]);
    assert_eq!(r.failures, vec![recs[0].position.to_string()]);
    assert_eq!(store.checkpoint("s").await.unwrap(), None);

    let sq = vec![sqs("A", "m1", "trade:1"), sqs("A", "m2", "trade:2")];
    let r = run(
        &sq,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(r.failures, vec!["m1", "m2"]);
    assert!(!store.is_completed("m1"));
    // Released, not left in progress: the next delivery claims them at once.
    link.down = false;
    let r = run(
        &sq,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert!(r.failures.is_empty());
}

#[tokio::test]
async fn broken_connection_mid_batch_leaves_the_unconfirmed_tail_pending() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        break_after_sends: Some(1),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1"),
        kinesis("s", 2, "quote:2"),
        kinesis("s", 3, "trade:3"),
    ];
    let cfg = PipelineConfig {
        publish: PublishMode::Async,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    // The first run was written but never confirmed: all three are retried.
    assert_eq!(pending(&r.result.states), vec![0, 1, 2]);
    assert_eq!(r.failures, vec![recs[0].position.to_string()]);
    assert!(link.confirmed.is_empty());
}

#[tokio::test]
async fn sync_mode_broken_connection_keeps_what_was_accepted() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        break_after_sends: Some(1),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1"),
        kinesis("s", 2, "quote:2"),
        kinesis("s", 3, "trade:3"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    // The first run's reply accepted it; the rest is retried from record 1.
    assert_eq!(pending(&r.result.states), vec![1, 2]);
    assert_eq!(r.failures, vec![recs[1].position.to_string()]);
    assert_eq!(link.confirmed, vec!["trade:1"]);
    assert_eq!(
        store.checkpoint("s").await.unwrap().as_deref(),
        Some(recs[0].position.as_ref())
    );
}

#[tokio::test]
async fn live_in_progress_key_cuts_the_lane() {
    let store = MemoryStore::new();
    let c = ctx();
    store.hold("m2", c.deadline_ms + 10_000);
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "m1", "trade:1"),
        sqs("A", "m2", "trade:2"),
        sqs("A", "m3", "trade:3"),
        sqs("B", "m4", "trade:4"),
    ];
    let r = run(&recs, &store, &mut link, &q, &PipelineConfig::default(), &c).await;
    assert_eq!(r.failures, vec!["m2", "m3"]);
    assert_eq!(link.confirmed, vec!["trade:1", "trade:4"]);
}

#[tokio::test]
async fn deadline_margin_reports_the_unfinished_batch() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..3).map(|i| kinesis("s", i, "trade:1")).collect();
    let c = BatchContext::with_budget("req", Duration::from_millis(500));
    let r = run(&recs, &store, &mut link, &q, &PipelineConfig::default(), &c).await;
    assert_eq!(pending(&r.result.states), vec![0, 1, 2]);
    assert!(link.sent.is_empty());
    assert!(r.result.summary.failure_reasons[0].contains("deadline"));
}

#[tokio::test]
async fn bad_record_is_quarantined_and_the_lane_goes_on() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1"),
        kinesis("s", 2, "bad"),
        kinesis("s", 3, "trade:3"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert!(r.failures.is_empty());
    assert_eq!(r.result.summary.quarantined, 1);
    assert_eq!(link.confirmed, vec!["trade:1,3"]);
    let items = q.items.lock().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].position, recs[1].position.to_string());
    assert!(items[0].reason.contains("no table"), "{}", items[0].reason);
}

#[tokio::test]
async fn failed_quarantine_cuts_the_lane_before_anything_after_it_is_sent() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine {
        fail: true,
        ..FakeQuarantine::default()
    };
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "bad"),
        sqs("A", "a3", "trade:3"),
        sqs("B", "b1", "trade:4"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(r.failures, vec!["a2", "a3"]);
    assert_eq!(link.confirmed, vec!["trade:1", "trade:4"]);
}

#[tokio::test]
async fn producer_duplicates_with_the_same_payload_key_are_skipped() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1#t-1"),
        kinesis("s", 2, "trade:1#t-1"),
        kinesis("s", 3, "trade:2#t-2"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(r.result.summary.duplicates, 1);
    assert_eq!(link.confirmed, vec!["trade:1,2"]);
    // The producer retries t-2 later with a new sequence number.
    let later = vec![
        kinesis("s", 4, "trade:2#t-2"),
        kinesis("s", 5, "trade:3#t-3"),
    ];
    let r = run(
        &later,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(r.result.summary.duplicates, 1);
    assert_eq!(link.sent.last().map(String::as_str), Some("trade:3"));
    // One conditional write per new key, completions batched.
    assert!(r.result.summary.dedupe_requests <= 2 + 2 + 1);
}

/// Payload keys come out of the lane's one decode; a lane whose decoded
/// records turn out duplicates or cut by their claims is decoded again
/// without them, so its runs hold exactly what is still to send, in order.
#[tokio::test]
async fn payload_key_claims_reshape_the_decoded_lane() {
    let store = MemoryStore::new();
    let c = ctx();
    store
        .claim(&["quote#b".to_string()], c.now_ms, c.deadline_ms)
        .await
        .expect("claim");
    store
        .complete(&["quote#b".to_string()], i64::MAX)
        .await
        .expect("complete");
    store.hold("trade#d", c.deadline_ms + 10_000);
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1#a"),
        kinesis("s", 2, "quote:2#b"),
        kinesis("s", 3, "trade:3#c"),
        kinesis("s", 4, "trade:4#d"),
        kinesis("s", 5, "trade:5#e"),
        kinesis("t", 6, "quote:6#f"),
    ];
    let r = run(&recs, &store, &mut link, &q, &PipelineConfig::default(), &c).await;
    // quote:2 was forwarded before: the trades around it are one run now.
    // trade:4 is claimed by a live invocation: shard s stops there.
    assert_eq!(link.confirmed, vec!["trade:1,3", "quote:6"]);
    assert_eq!(r.result.states[1], RecordState::Duplicate);
    assert!(
        matches!(&r.result.states[3], RecordState::Pending { reason } if reason.contains("trade#d"))
    );
    assert!(matches!(r.result.states[4], RecordState::Pending { .. }));
    assert_eq!(r.failures, vec![format!("{:056}", 49_000_000_004u64)]);
}

#[tokio::test]
async fn sync_mode_remote_error_cuts_only_its_lane() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        reject_table: Some("quote".into()),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "quote:2"),
        sqs("A", "a3", "trade:3"),
        sqs("B", "b1", "trade:4"),
    ];
    let cfg = PipelineConfig {
        publish: PublishMode::Sync,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(r.failures, vec!["a2", "a3"]);
    assert_eq!(link.confirmed, vec!["trade:1", "trade:4"]);
    // Nothing of lane A went out after the refused run.
    assert_eq!(link.sent, vec!["trade:1", "trade:4"]);
    assert!(r.result.summary.failure_reasons[0].contains("'type"));
    assert_eq!(r.result.summary.refused_updates, 1);
    assert_eq!(r.result.summary.forwarded, 2);
}

#[tokio::test]
async fn default_mode_reports_a_refused_update_failed() {
    // The default must prove acceptance: an update the tickerplant refuses
    // is never reported done.
    assert_eq!(PipelineConfig::default().publish, PublishMode::Sync);
    let store = MemoryStore::new();
    let mut link = FakeLink {
        reject_table: Some("trade".into()),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![kinesis("s", 1, "trade:1"), kinesis("s", 2, "trade:2")];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(pending(&r.result.states), vec![0, 1]);
    assert_eq!(r.failures, vec![recs[0].position.to_string()]);
    assert_eq!(store.checkpoint("s").await.unwrap(), None);
}

#[tokio::test]
async fn sync_rounds_send_one_run_per_lane_at_a_time_in_lane_order() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "quote:2"),
        sqs("B", "b1", "trade:3"),
        sqs("A", "a3", "trade:4"),
        sqs("B", "b2", "quote:5"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert!(r.failures.is_empty());
    // Round 1: A's first run and B's first; round 2: the second of each; round 3: A's last.
    assert_eq!(
        link.sent,
        vec!["trade:1", "trade:3", "quote:2", "quote:5", "trade:4"]
    );
    assert_eq!(link.rounds, vec![2, 2, 1]);
}

#[tokio::test]
async fn chaser_every_few_bytes_confirms_a_prefix() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        break_after_sends: Some(2),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        kinesis("s", 1, "trade:1"),
        kinesis("s", 2, "quote:2"),
        kinesis("s", 3, "trade:3"),
    ];
    let cfg = PipelineConfig {
        publish: PublishMode::Async,
        chase_every_bytes: 1,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(pending(&r.result.states), vec![2]);
    assert_eq!(r.failures, vec![recs[2].position.to_string()]);
    assert_eq!(
        store.checkpoint("s").await.unwrap().as_deref(),
        Some(recs[1].position.as_ref())
    );
}

#[test]
fn replayed_kinesis_records_are_keyed_by_shard_and_sequence() {
    let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/trades";
    let rec = |lane: String| Record {
        kind: SourceKind::Kinesis,
        source_arn: arn.into(),
        lane: lane.into(),
        position: "4959".into(),
        failure_id: "4959".into(),
        message_key: None,
        payload: Vec::new(),
        arrival_ms: 0,
        defect: None,
        pointer_attribute: None,
        sub: None,
        kpl_note: None,
    };
    let by_shard = rec(format!("{arn}/shardId-000000000001"));
    let by_key = rec(format!("{arn}/shardId-000000000001#AAPL#x"));
    let want = format!("kin#{arn}/shardId-000000000001#4959");
    assert_eq!(batch::replay_key(&by_shard), Some(want.clone()));
    assert_eq!(batch::replay_key(&by_key), Some(want));
    let mut sqs = rec("q/g".into());
    sqs.kind = SourceKind::SqsFifo;
    assert_eq!(batch::replay_key(&sqs), None);
}

/// The memory store behind a slow network: every call takes `delay`.
struct SlowStore {
    inner: MemoryStore,
    delay: Duration,
    released: Mutex<usize>,
}

impl DedupeStore for SlowStore {
    async fn checkpoint(&self, lane: &str) -> Result<Option<String>, crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.checkpoint(lane).await
    }
    async fn advance_checkpoint(
        &self,
        lane: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.advance_checkpoint(lane, old, new).await
    }
    async fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<crate::dedupe::Claim>, crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.claim(keys, now_ms, until_ms).await
    }
    async fn complete(&self, keys: &[String], exp: i64) -> Result<(), crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.complete(keys, exp).await
    }
    async fn release(
        &self,
        keys: &[String],
        claimed_until_ms: i64,
    ) -> Result<(), crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        if let Ok(mut n) = self.released.lock() {
            *n += keys.len();
        }
        self.inner.release(keys, claimed_until_ms).await
    }
    async fn peek(
        &self,
        keys: &[String],
        now_ms: i64,
    ) -> Result<Vec<crate::dedupe::Claim>, crate::dedupe::StoreError> {
        tokio::time::sleep(self.delay).await;
        self.inner.peek(keys, now_ms).await
    }
    fn requests(&self) -> u64 {
        self.inner.requests()
    }
}

#[tokio::test]
async fn key_claims_stop_at_the_deadline() {
    let store = SlowStore {
        inner: MemoryStore::new(),
        delay: Duration::from_millis(250),
        released: Mutex::new(0),
    };
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..1000)
        .map(|i| sqs(&format!("g{i}"), &format!("m{i}"), "trade:1"))
        .collect();
    let cfg = PipelineConfig {
        deadline_margin: Duration::from_millis(200),
        ..PipelineConfig::default()
    };
    let budget = Duration::from_millis(600);
    let c = BatchContext::with_budget("req-slow", budget);
    let started = std::time::Instant::now();
    let result = process_batch(&recs, &store, &mut link, &q, &FakeDecoder, &cfg, &c).await;
    let took = started.elapsed();
    // 4 chunks of claims at 250 ms each would take a second: the pipeline
    // stops starting them at the margin and returns by the deadline.
    assert!(took < budget + Duration::from_millis(150), "took {took:?}");
    assert!(pending(&result.states).len() == recs.len());
    let reasons = result.summary.failure_reasons.join("; ");
    assert!(reasons.contains("deadline"), "{reasons}");
    assert!(link.sent.is_empty());
    // Claims taken before the deadline are not released after the margin:
    // they expire with the invocation instead.
    assert_eq!(*store.released.lock().unwrap(), 0);
}

#[tokio::test]
async fn releases_are_made_while_the_claims_are_live() {
    let store = SlowStore {
        inner: MemoryStore::new(),
        delay: Duration::from_millis(1),
        released: Mutex::new(0),
    };
    let mut link = FakeLink {
        down: true,
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs: Vec<Record> = (0..300)
        .map(|i| sqs("g", &format!("m{i}"), "trade:1"))
        .collect();
    let result = process_batch(
        &recs,
        &store,
        &mut link,
        &q,
        &FakeDecoder,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(pending(&result.states).len(), 300);
    assert_eq!(*store.released.lock().unwrap(), 300);
    // Released claims can be taken again at once by the retry.
    let again = store
        .inner
        .claim(&["m7".to_string()], 0, i64::MAX)
        .await
        .unwrap();
    assert_eq!(again, vec![crate::dedupe::Claim::New]);
}

#[tokio::test]
async fn pipelined_mode_sends_every_run_in_one_round_trip() {
    let store = MemoryStore::new();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "quote:2"),
        sqs("B", "b1", "trade:3"),
        sqs("A", "a3", "trade:4"),
        sqs("B", "b2", "quote:5"),
    ];
    let cfg = PipelineConfig {
        publish: PublishMode::Pipelined,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert!(r.failures.is_empty());
    assert_eq!(link.rounds, vec![5]);
    assert_eq!(
        link.sent,
        vec!["trade:1", "quote:2", "trade:4", "trade:3", "quote:5"]
    );
}

#[tokio::test]
async fn pipelined_mode_reports_runs_behind_a_refusal_failed() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        reject_table: Some("quote".into()),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "quote:2"),
        sqs("A", "a3", "trade:3"),
        sqs("B", "b1", "trade:4"),
    ];
    let cfg = PipelineConfig {
        publish: PublishMode::Pipelined,
        ..PipelineConfig::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    // a3 went out behind the refused a2 and was accepted: it is still
    // reported failed with its group, to come back in order.
    assert_eq!(r.failures, vec!["a2", "a3"]);
    assert_eq!(link.confirmed, vec!["trade:1", "trade:3", "trade:4"]);
    assert_eq!(r.result.summary.refused_updates, 1);
    assert_eq!(r.result.summary.accepted_behind_refusal, 1);
    assert_eq!(r.result.summary.forwarded, 2);
}

#[tokio::test]
async fn a_message_built_wrong_here_cuts_only_its_lane() {
    let store = MemoryStore::new();
    let mut link = FakeLink {
        malformed_table: Some("quote".into()),
        ..FakeLink::default()
    };
    let q = FakeQuarantine::default();
    let recs = vec![
        sqs("A", "a1", "trade:1"),
        sqs("A", "a2", "quote:2"),
        sqs("B", "b1", "trade:3"),
        sqs("B", "b2", "trade:4"),
    ];
    let r = run(
        &recs,
        &store,
        &mut link,
        &q,
        &PipelineConfig::default(),
        &ctx(),
    )
    .await;
    assert_eq!(r.failures, vec!["a2"]);
    assert_eq!(link.confirmed, vec!["trade:1", "trade:3,4"]);
    let reasons = r.result.summary.failure_reasons.join("; ");
    assert!(reasons.contains("update not sent"), "{reasons}");
    assert!(!reasons.contains("unavailable"), "{reasons}");
}

/// A store holding a live claim on `m5`, as another invocation would.
fn store_with_live_claim() -> MemoryStore {
    let store = MemoryStore::new();
    store.hold("m5", crate::clock::now_ms() + 600_000);
    store
}

#[tokio::test]
async fn dry_run_decides_as_the_pipeline_does_and_changes_nothing() {
    use super::dry_run::{DryLink, DryQuarantine};
    use crate::dedupe::{Claim, ReadOnly};
    let recs = vec![
        sqs("g1", "m1", "trade:1#k1"),
        // The same payload key in the batch: a duplicate of m1.
        sqs("g1", "m2", "trade:2#k1"),
        // Bad: quarantined, and its lane goes on.
        sqs("g2", "m3", "no table"),
        sqs("g2", "m4", "trade:4"),
        // Claimed by a live invocation: its lane is cut here.
        sqs("g3", "m5", "trade:5"),
        sqs("g3", "m6", "trade:6"),
    ];
    let cfg = PipelineConfig::default();
    let keys: Vec<String> = ["m1", "m2", "m3", "m4", "m5", "m6", "trade#k1"]
        .map(String::from)
        .to_vec();

    let store = store_with_live_claim();
    let before = store.peek(&keys, crate::clock::now_ms()).await.unwrap();
    let dry_q = DryQuarantine::default();
    let dry = process_batch(
        &recs,
        &ReadOnly::new(&store),
        &mut DryLink,
        &dry_q,
        &FakeDecoder,
        &cfg,
        &ctx(),
    )
    .await;
    // Nothing was taken, completed or released.
    assert_eq!(
        store.peek(&keys, crate::clock::now_ms()).await.unwrap(),
        before
    );
    assert_eq!(
        dry_q
            .items()
            .iter()
            .map(|i| i.failure_id.as_str())
            .collect::<Vec<_>>(),
        vec!["m3"]
    );

    // A real run on a store in the same state decides the same.
    let real_store = store_with_live_claim();
    let mut link = FakeLink::default();
    let q = FakeQuarantine::default();
    let real = run(&recs, &real_store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(dry.states, real.result.states);
    assert_eq!(
        (
            dry.summary.forwarded,
            dry.summary.duplicates,
            dry.summary.quarantined,
            dry.summary.failed
        ),
        (2, 1, 1, 2)
    );
    assert_eq!(link.sent, vec!["trade:1", "trade:4"]);

    // After the real run, a dry run finds what it did: duplicates, and the
    // lane still held.
    let after = process_batch(
        &recs,
        &ReadOnly::new(&real_store),
        &mut DryLink,
        &DryQuarantine::default(),
        &FakeDecoder,
        &cfg,
        &ctx(),
    )
    .await;
    let dup = RecordState::Duplicate;
    assert_eq!(
        after.states[..4],
        [dup.clone(), dup.clone(), dup.clone(), dup]
    );
    assert!(pending(&after.states) == vec![4, 5], "{:?}", after.states);
    assert_eq!(
        real_store
            .peek(&keys[4..5], crate::clock::now_ms())
            .await
            .unwrap(),
        vec![Claim::InProgress]
    );
}

/// A shard's records as the source builds them: plain payloads, or a KPL
/// aggregate of several (`kpl::aggregate`) under one sequence number.
fn shard_records(items: &[(u64, &[&str])]) -> Vec<Record> {
    use crate::source::kinesis::{records, Data, KinesisParts};
    use crate::source::kpl;
    let mut out = Vec::new();
    for (seq, payloads) in items {
        let data = match payloads {
            [one] => one.as_bytes().to_vec(),
            many => kpl::aggregate(many.iter().map(|p| kpl::UserRecord {
                partition_key: "user-key",
                explicit_hash_key: None,
                data: p.as_bytes(),
            })),
        };
        let seq = seq.to_string();
        let parts = KinesisParts {
            stream_arn: "arn:aws:kinesis:eu-west-1:1:stream/trades",
            shard_id: "shardId-0",
            sequence_number: &seq,
            partition_key: "agg-key",
            data: Data::Bytes(&data),
            arrival_ms: 0,
        };
        records(parts, &crate::source::SourceOptions::default(), &mut out).expect("valid");
    }
    out
}

#[tokio::test]
async fn a_failure_inside_an_aggregate_checkpoints_the_sub_records_before_it() {
    let store = MemoryStore::new();
    let q = FakeQuarantine::default();
    let cfg = PipelineConfig::default();
    let recs = shard_records(&[
        (10, &["trade:a"]),
        (11, &["trade:0", "trade:1", "trade:2", "quote:3", "trade:4"]),
        (12, &["trade:b"]),
    ]);
    let lane = recs[0].lane.clone();
    assert_eq!(recs.len(), 7);
    // The tickerplant refuses sub-record 3 (its own run).
    let mut link = FakeLink {
        reject_table: Some("quote".into()),
        ..FakeLink::default()
    };
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    // Lambda can only be told the aggregate's sequence number.
    assert_eq!(r.failures, vec!["11"]);
    assert_eq!(pending(&r.result.states), vec![4, 5, 6]);
    assert_eq!(link.confirmed, vec!["trade:a,0,1,2"]);
    // The checkpoint stops at the last done sub-record, in the same two
    // requests as a batch of plain records.
    assert_eq!(
        store.checkpoint(&lane).await.unwrap().as_deref(),
        Some("11:2")
    );
    assert_eq!(r.result.summary.dedupe_requests, 2);

    // Lambda redelivers from 11, whole aggregate included.
    let mut link = FakeLink::default();
    let r = run(&recs[1..], &store, &mut link, &q, &cfg, &ctx()).await;
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert_eq!(
        r.result.summary.duplicates, 3,
        "sub-records 0..=2 not sent again"
    );
    assert_eq!(link.sent, vec!["quote:3", "trade:4,b"]);
    assert_eq!(
        store.checkpoint(&lane).await.unwrap().as_deref(),
        Some("12")
    );
}

#[tokio::test]
async fn an_aggregate_done_to_its_last_sub_record_checkpoints_the_bare_sequence() {
    let store = MemoryStore::new();
    let q = FakeQuarantine::default();
    let cfg = PipelineConfig::default();
    let recs = shard_records(&[(10, &["trade:a"]), (11, &["trade:0", "trade:1"])]);
    let lane = recs[0].lane.clone();
    // A failure at sub-record 0 leaves the checkpoint at the record before.
    let mut down = FakeLink {
        reject_table: Some("trade".into()),
        ..FakeLink::default()
    };
    let recs0 = shard_records(&[(9, &["quote:z"]), (11, &["trade:0", "trade:1"])]);
    let r = run(&recs0, &store, &mut down, &q, &cfg, &ctx()).await;
    assert_eq!(r.failures, vec!["11"]);
    assert_eq!(store.checkpoint(&lane).await.unwrap().as_deref(), Some("9"));
    let mut link = FakeLink::default();
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert!(r.failures.is_empty());
    assert_eq!(link.sent, vec!["trade:a,0,1"]);
    assert_eq!(
        store.checkpoint(&lane).await.unwrap().as_deref(),
        Some("11")
    );
    // A bare checkpoint (also every one written before KPL support)
    // covers every sub-record of its sequence number.
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert_eq!(r.result.summary.duplicates, 3);
    assert_eq!(link.sent.len(), 1);
}

#[tokio::test]
async fn bad_sub_records_are_quarantined_one_by_one_and_the_rest_flows() {
    let store = MemoryStore::new();
    let q = FakeQuarantine::default();
    let cfg = PipelineConfig::default();
    let mut recs = shard_records(&[(11, &["trade:0", "bad", "trade:2", "bad"])]);
    // A defect from the source (an out-of-range key index) on sub-record 3.
    recs[3].defect = Some("KPL sub-record 3 of sequence number 11: index".into());
    let lane = recs[0].lane.clone();
    let mut link = FakeLink::default();
    let r = run(&recs, &store, &mut link, &q, &cfg, &ctx()).await;
    assert!(r.failures.is_empty());
    assert_eq!(link.sent, vec!["trade:0,2"]);
    let items = q.items.lock().unwrap().clone();
    let positions: Vec<&str> = items.iter().map(|i| i.position.as_str()).collect();
    // Distinct positions: a FIFO quarantine deduplicates on them.
    assert_eq!(positions, vec!["11:1", "11:3"]);
    assert!(items.iter().all(|i| i.failure_id == "11"));
    // Quarantined sub-records count as done.
    assert_eq!(
        store.checkpoint(&lane).await.unwrap().as_deref(),
        Some("11")
    );
}

#[test]
fn replayed_sub_records_are_keyed_by_subsequence() {
    let recs = shard_records(&[(11, &["trade:0", "trade:1"]), (12, &["trade:2"])]);
    let keys: Vec<Option<String>> = recs.iter().map(batch::replay_key).collect();
    let base = "kin#arn:aws:kinesis:eu-west-1:1:stream/trades/shardId-0";
    assert_eq!(
        keys,
        vec![
            Some(format!("{base}#11#0")),
            Some(format!("{base}#11#1")),
            Some(format!("{base}#12")),
        ]
    );
}
