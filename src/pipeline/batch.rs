//! The batch algorithm. Every record ends in exactly one state; a lane stops
//! at its first record that is not done, and nothing after it in that lane
//! is sent, quarantined or committed.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use base64::Engine;
use futures_util::future::join_all;

use super::{
    BadRecords, BatchContext, BatchResult, ClaimCheck, Decoder, EncodedRun, LaneRows, LinkError,
    NoClaimCheck, PipelineConfig, PublishMode, QuarantineItem, QuarantineSink, RecordState,
    Summary, TickerplantLink,
};
use crate::dedupe::{bounded, release_own, Claim, DedupeStore, StoreError};
use crate::kdb::MsgType;
use crate::source::seqno::Position;
use crate::source::{lanes, Lane, Record, SourceKind};
use crate::telemetry::{position, CommitIncomplete, PipelinedRefusal, RefusedRun, FAILED_AS_BAD};

/// A record's state while the batch is in flight: decided, in the
/// pipeline's one vocabulary (`RecordState`), or one of the two states that
/// exist only mid-batch. Kept apart from `RecordState` so that neither can
/// leak into a response: a batch never ends with a record to do or a bad
/// record the quarantine has not taken (both end as `Pending`).
#[derive(Clone, Debug, PartialEq)]
enum Work {
    /// Not decided: to decode and publish.
    Todo,
    /// Undecodable; waiting for the quarantine to take it.
    Bad(String),
    /// Decided. A later cut of its lane may still make it `Pending`.
    Done(RecordState),
}

impl Work {
    fn pending(reason: impl Into<String>) -> Work {
        Work::Done(RecordState::Pending {
            reason: reason.into(),
        })
    }

    fn pending_reason(&self) -> Option<&str> {
        match self {
            Work::Done(RecordState::Pending { reason }) => Some(reason),
            _ => None,
        }
    }

    /// Done for good: its keys complete and its lane's checkpoint may pass it.
    fn is_done(&self) -> bool {
        matches!(self, Work::Done(s) if s.is_done())
    }

    fn into_state(self) -> RecordState {
        match self {
            Work::Done(state) => state,
            Work::Todo | Work::Bad(_) => RecordState::Pending {
                reason: "not processed".into(),
            },
        }
    }
}

struct Slots {
    work: Vec<Work>,
    message_key: Vec<Option<String>>,
    payload_key: Vec<Option<String>>,
}

impl Slots {
    /// Every record to do, except those known bad before decoding.
    fn new(records: &[Record], bad_records: BadRecords) -> Slots {
        let n = records.len();
        Slots {
            work: records
                .iter()
                .map(|r| match &r.defect {
                    Some(reason) => bad(reason.clone(), bad_records),
                    None => Work::Todo,
                })
                .collect(),
            message_key: vec![None; n],
            payload_key: vec![None; n],
        }
    }

    /// Everything after a lane's first pending record is pending too, as
    /// the batch response will say (see `pipeline::response`).
    fn settle_cuts(&mut self, lanes: &[Lane]) {
        for lane in lanes {
            let mut cut: Option<String> = None;
            for &i in &lane.records {
                match (&cut, self.work[i].pending_reason()) {
                    (None, Some(reason)) => cut = Some(reason.to_string()),
                    (Some(_), Some(_)) | (None, None) => {}
                    (Some(reason), None) => {
                        self.work[i] = Work::pending(format!("after a pending record ({reason})"))
                    }
                }
            }
        }
    }

    fn pend_all_todo(&mut self, reason: &str) {
        for w in &mut self.work {
            if matches!(w, Work::Todo | Work::Bad(_)) {
                *w = Work::pending(reason);
            }
        }
    }
}

pub(crate) fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Now as epoch milliseconds, fractional: when a stage began.
pub(crate) fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Processes one batch without claim checks (a pointer record is bad);
/// see [`process_batch_with_claims`].
pub async fn process_batch<S, L, Q, D>(
    records: &[Record],
    store: &S,
    link: &mut L,
    quarantine: &Q,
    decoder: &D,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
) -> BatchResult
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
    D: Decoder,
{
    process_batch_with_claims(
        records,
        store,
        link,
        quarantine,
        decoder,
        &NoClaimCheck,
        cfg,
        ctx,
    )
    .await
}

/// Processes one batch. Never fails as a whole: every problem becomes a
/// record state, so the caller can always build an exact batch response.
///
/// The stages, in order: transport dedupe, claim checks (pointer records
/// replaced by their objects' bytes), decoding (with payload keys when a
/// table defines them), quarantine, publish, commit. Each stage leaves
/// every record it stops in a state, and settles the lane cuts before the
/// next one looks.
#[allow(clippy::too_many_arguments)]
pub async fn process_batch_with_claims<S, L, Q, D, C>(
    records: &[Record],
    store: &S,
    link: &mut L,
    quarantine: &Q,
    decoder: &D,
    claims: &C,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
) -> BatchResult
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
    D: Decoder,
    C: ClaimCheck,
{
    let requests_before = store.requests();
    let mut b = Batch {
        records,
        lanes: lanes(records),
        decoder,
        cfg,
        ctx,
        slots: Slots::new(records, cfg.bad_records),
        summary: Summary::default(),
        resolved: Vec::new(),
    };
    b.summary.request_id = ctx.request_id.clone();
    b.summary.records = records.len();
    b.summary.lanes = b.lanes.len();

    let t = Instant::now();
    b.summary.stage_start_ms.dedupe = epoch_ms();
    let checkpoints = b.transport_dedupe(store).await;
    b.resolve_pointers(claims).await;
    let mut lane_rows = if decoder.has_payload_keys() && !b.out_of_time() {
        let rows = b.decode_with_payload_keys(store).await;
        b.summary.stage_ms.dedupe = ms_since(t) - b.summary.stage_ms.decode;
        rows
    } else {
        b.summary.stage_ms.dedupe = ms_since(t);
        let t = Instant::now();
        b.summary.stage_start_ms.decode = epoch_ms();
        let rows = b.decode_all();
        b.summary.stage_ms.decode = ms_since(t);
        rows
    };

    let t = Instant::now();
    b.summary.stage_start_ms.quarantine = epoch_ms();
    b.quarantine_bad(quarantine, &mut lane_rows).await;
    b.summary.stage_ms.quarantine = ms_since(t);

    let t = Instant::now();
    b.summary.stage_start_ms.publish = epoch_ms();
    if b.out_of_time() {
        b.slots.pend_all_todo("deadline: no time left to publish");
    } else {
        publish(
            records,
            link,
            &lane_rows,
            &b.lanes,
            &mut b.slots,
            cfg,
            ctx,
            &mut b.summary,
        )
        .await;
    }
    b.summary.stage_ms.publish = ms_since(t);
    b.slots.settle_cuts(&b.lanes);

    // Commit what is done; release what is not.
    let t = Instant::now();
    b.summary.stage_start_ms.commit = epoch_ms();
    commit(
        store,
        records,
        &b.lanes,
        &mut b.slots,
        &checkpoints,
        cfg,
        ctx,
    )
    .await;
    b.summary.stage_ms.commit = ms_since(t);
    let committed: Vec<crate::s3::Pointer> = b
        .resolved
        .iter()
        .enumerate()
        .filter(|(i, _)| b.slots.work[*i] == Work::Done(RecordState::Forwarded))
        .filter_map(|(_, r)| r.as_ref().map(|(p, _)| p.clone()))
        .collect();
    if !committed.is_empty() {
        claims.committed(&committed).await;
    }

    b.summary.dedupe_requests = store.requests().saturating_sub(requests_before);
    b.finish()
}

/// One batch in flight: what every stage reads, and the states it changes.
struct Batch<'a, D> {
    records: &'a [Record],
    lanes: Vec<Lane>,
    decoder: &'a D,
    cfg: &'a PipelineConfig,
    ctx: &'a BatchContext,
    slots: Slots,
    summary: Summary,
    /// Claim checks: per record (empty when the batch has no pointer), the
    /// pointer and the record with the object's bytes as its payload.
    resolved: Vec<Option<(crate::s3::Pointer, Record)>>,
}

/// One claim-check fetch, given up at `until`. `Err(Ok(e))`: what S3
/// said; `Err(Err(reason))`: out of time (transient).
async fn fetch_until<C: ClaimCheck>(
    claims: &C,
    pointer: &crate::s3::Pointer,
    until: Instant,
) -> Result<Vec<u8>, Result<crate::s3::S3Error, String>> {
    if Instant::now() >= until {
        return Err(Err("deadline: claim-check object not fetched".to_string()));
    }
    match tokio::time::timeout_at(until.into(), claims.fetch(pointer)).await {
        Ok(r) => r.map_err(Ok),
        Err(_) => Err(Err(
            "deadline: claim-check fetch did not finish in time".to_string()
        )),
    }
}

/// The S3 pointer a record holds, if any (DESIGN §2): on SQS marked by the
/// size attribute, on Kinesis by its shape alone (`s3::pointer`).
fn pointer_of(r: &Record) -> Result<Option<crate::s3::Pointer>, crate::s3::PointerError> {
    use crate::s3::pointer::{kinesis_pointer, sqs_pointer};
    match r.kind {
        SourceKind::Kinesis => Ok(kinesis_pointer(&r.payload)),
        SourceKind::SqsFifo => sqs_pointer(
            &r.payload,
            r.pointer_attribute.iter().map(|a| (a.0, a.1.as_deref())),
        ),
    }
}

impl<D: Decoder> Batch<'_, D> {
    /// Claim checks: each pointer record still to do (in lane order, up to
    /// a cut) gets its object's bytes as its payload. Its position, failure
    /// id and dedupe keys stay the message's; payload keys come from the
    /// fetched bytes. Fetches run concurrently (bounded) and end at the
    /// deadline margin; results are applied in lane order.
    async fn resolve_pointers<C: ClaimCheck>(&mut self, claims: &C) {
        let bad_records = self.cfg.bad_records;
        let mut wanted: Vec<(usize, crate::s3::Pointer)> = Vec::new();
        for lane in &self.lanes {
            for &i in &lane.records {
                match &self.slots.work[i] {
                    w if w.pending_reason().is_some() => break,
                    Work::Todo => {}
                    _ => continue,
                }
                match pointer_of(&self.records[i]) {
                    Ok(None) => {}
                    Ok(Some(p)) => wanted.push((i, p)),
                    Err(e) => self.slots.work[i] = bad(format!("claim check: {e}"), bad_records),
                }
            }
        }
        if wanted.is_empty() {
            self.slots.settle_cuts(&self.lanes);
            return;
        }
        let until = self
            .ctx
            .deadline
            .checked_sub(self.cfg.deadline_margin)
            .unwrap_or(self.ctx.deadline);
        // In chunks of the concurrency: a stream of closures' futures
        // would not be `Send` for every lifetime, which spawned callers need.
        let mut fetched = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(claims.concurrency().max(1)) {
            fetched
                .extend(join_all(chunk.iter().map(|(_, p)| fetch_until(claims, p, until))).await);
        }
        self.resolved = vec![None; self.records.len()];
        for ((i, pointer), result) in wanted.into_iter().zip(fetched) {
            match result {
                Ok(payload) => {
                    let record = Record {
                        payload,
                        ..self.records[i].clone()
                    };
                    self.resolved[i] = Some((pointer, record));
                }
                Err(Ok(e)) if !e.is_transient() => {
                    self.slots.work[i] = bad(format!("claim check: {e}"), bad_records)
                }
                Err(Ok(e)) => self.slots.work[i] = Work::pending(format!("claim check: {e}")),
                Err(Err(reason)) => self.slots.work[i] = Work::pending(reason),
            }
        }
        self.slots.settle_cuts(&self.lanes);
    }

    fn out_of_time(&self) -> bool {
        self.ctx.remaining() < self.cfg.deadline_margin
    }

    /// Lane checkpoints (Kinesis) or message keys (SQS, and every replayed
    /// record). Returns the checkpoints read, which commit moves on.
    async fn transport_dedupe<S: DedupeStore>(
        &mut self,
        store: &S,
    ) -> HashMap<String, Option<String>> {
        let mut checkpoints = HashMap::new();
        let cfg = self.cfg;
        if self.out_of_time() {
            self.slots.pend_all_todo("deadline: no time left to start");
            return checkpoints;
        }
        if !cfg.transport_dedupe && !cfg.replay {
            return checkpoints;
        }
        // Replay always keys records one by one: its records are behind
        // their lane checkpoints by definition (DESIGN §3).
        let by_checkpoint =
            !cfg.replay && self.records.first().map(|r| r.kind) == Some(SourceKind::Kinesis);
        if by_checkpoint {
            self.skip_behind_checkpoints(store, &mut checkpoints).await;
        } else {
            let wanted: Vec<(usize, String)> = self
                .records
                .iter()
                .enumerate()
                .filter_map(|(i, r)| {
                    let key = match (&r.message_key, cfg.replay) {
                        (Some(k), _) => Some(k.clone()),
                        (None, true) => replay_key(r),
                        (None, false) => None,
                    };
                    key.map(|k| (i, k))
                })
                .collect();
            claim_into(
                store,
                &mut self.slots,
                wanted,
                self.ctx,
                cfg,
                KeyKind::Message,
            )
            .await;
        }
        self.slots.settle_cuts(&self.lanes);
        checkpoints
    }

    /// One consistent read per lane; records at or below the checkpoint
    /// are duplicates, and a lane whose read failed is pending whole.
    async fn skip_behind_checkpoints<S: DedupeStore>(
        &mut self,
        store: &S,
        checkpoints: &mut HashMap<String, Option<String>>,
    ) {
        let reads = join_all(self.lanes.iter().map(|l| store.checkpoint(&l.id))).await;
        for (lane, read) in self.lanes.iter().zip(reads) {
            match read {
                Ok(cp) => {
                    if let Some(cp) = &cp {
                        // `seq` or `seq:sub` (partway through a KPL aggregate).
                        let cp = Position::parse_checkpoint(cp);
                        for &i in &lane.records {
                            if self.records[i].shard_position().order(&cp).is_le() {
                                self.slots.work[i] = Work::Done(RecordState::Duplicate);
                            }
                        }
                    }
                    checkpoints.insert(lane.id.clone(), cp);
                }
                Err(e) => {
                    for &i in &lane.records {
                        self.slots.work[i] = Work::pending(e.to_string());
                    }
                }
            }
        }
    }

    /// Decodes, lane by lane, so each lane's runs stay in its order.
    fn decode_all(&mut self) -> Vec<D::Lane> {
        (0..self.lanes.len())
            .map(|l| self.decode_lane(l, None).0)
            .collect()
    }

    /// Payload keys: producer retries and replays carry the same business
    /// id. The key comes out of the decode itself, so lanes are decoded
    /// first and a lane is decoded again only when a claim turned one of
    /// its decoded records into a duplicate or a cut (rare): one JSON
    /// parse per record in the common case instead of two.
    async fn decode_with_payload_keys<S: DedupeStore>(&mut self, store: &S) -> Vec<D::Lane> {
        let td = Instant::now();
        self.summary.stage_start_ms.decode = epoch_ms();
        let mut lane_rows = Vec::with_capacity(self.lanes.len());
        let mut decoded: Vec<Vec<usize>> = Vec::with_capacity(self.lanes.len());
        let mut keyed: Vec<(usize, String)> = Vec::with_capacity(self.records.len());
        for l in 0..self.lanes.len() {
            let (rows, pushed) = self.decode_lane(l, Some(&mut keyed));
            lane_rows.push(rows);
            decoded.push(pushed);
        }
        self.summary.stage_ms.decode = ms_since(td);
        self.slots.settle_cuts(&self.lanes);
        // Keys are producers' business ids: a seeded hash (foldhash), as
        // fast as Fx on short strings and not open to chosen collisions.
        let mut seen: HashSet<&str, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(keyed.len(), Default::default());
        let mut first = Vec::with_capacity(keyed.len());
        for (i, key) in &keyed {
            if self.slots.work[*i] != Work::Todo {
                first.push(false);
                continue;
            }
            // A second record with a key already in this batch is a
            // duplicate: the first carries the same business data, and is
            // retried if it does not get through.
            let new = seen.insert(key.as_str());
            if !new {
                self.slots.work[*i] = Work::Done(RecordState::Duplicate);
            }
            first.push(new);
        }
        drop(seen);
        let wanted: Vec<(usize, String)> = keyed
            .into_iter()
            .zip(first)
            .filter_map(|(k, first)| first.then_some(k))
            .collect();
        claim_into(
            store,
            &mut self.slots,
            wanted,
            self.ctx,
            self.cfg,
            KeyKind::Payload,
        )
        .await;
        self.slots.settle_cuts(&self.lanes);
        let td = Instant::now();
        for (l, rows) in lane_rows.iter_mut().enumerate() {
            if decoded[l].iter().any(|&i| self.slots.work[i] != Work::Todo) {
                *rows = self.decode_lane(l, None).0;
            }
        }
        self.summary.stage_ms.decode += ms_since(td);
        lane_rows
    }

    /// Sends bad records to the quarantine before publishing: if a send
    /// fails the lane is cut there, and nothing after it may reach the
    /// tickerplant, so those lanes are decoded again up to the cut.
    async fn quarantine_bad<Q: QuarantineSink>(
        &mut self,
        quarantine: &Q,
        lane_rows: &mut [D::Lane],
    ) {
        let bad: Vec<(usize, String)> = self
            .slots
            .work
            .iter()
            .enumerate()
            .filter_map(|(i, w)| match w {
                Work::Bad(reason) => Some((i, reason.clone())),
                _ => None,
            })
            .collect();
        if bad.is_empty() {
            return;
        }
        let items: Vec<QuarantineItem> = bad
            .iter()
            .map(|(i, reason)| quarantine_item(&self.records[*i], reason))
            .collect();
        let results = quarantine.send(&items).await;
        let mut cut_lanes = Vec::new();
        for (k, (i, reason)) in bad.into_iter().enumerate() {
            match results.get(k) {
                Some(Ok(())) => {
                    self.slots.work[i] = Work::Done(RecordState::Quarantined { reason })
                }
                other => {
                    let why = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => "no result".into(),
                    };
                    self.slots.work[i] = Work::pending(format!("quarantine send failed: {why}"));
                    cut_lanes.push(self.records[i].lane.to_string());
                }
            }
        }
        if cut_lanes.is_empty() {
            return;
        }
        self.slots.settle_cuts(&self.lanes);
        for (l, rows) in lane_rows.iter_mut().enumerate() {
            if cut_lanes.contains(&self.lanes[l].id) {
                *rows = self.decode_lane(l, None).0;
            }
        }
    }

    /// Decodes lane `l`'s records that are still to do, in order, stopping
    /// at a cut. Returns the rows and the records whose rows they hold;
    /// with `keys`, each such record's payload key is added to it.
    fn decode_lane(
        &mut self,
        l: usize,
        mut keys: Option<&mut Vec<(usize, String)>>,
    ) -> (D::Lane, Vec<usize>) {
        let bad_records = self.cfg.bad_records;
        let mut rows = self.decoder.lane();
        let mut pushed = Vec::with_capacity(self.lanes[l].records.len());
        for &i in &self.lanes[l].records {
            match &self.slots.work[i] {
                w if w.pending_reason().is_some() => break,
                Work::Todo => {}
                _ => continue,
            }
            let record = match self.resolved.get(i) {
                Some(Some((_, resolved))) => resolved,
                _ => &self.records[i],
            };
            match rows.push(i, record) {
                Ok(key) => {
                    pushed.push(i);
                    if let (Some(keys), Some(key)) = (keys.as_deref_mut(), key) {
                        keys.push((i, key));
                    }
                }
                Err(reason) => {
                    let reason = match &record.kpl_note {
                        Some(note) => format!("{reason} ({note})"),
                        None => reason.to_string(),
                    };
                    self.slots.work[i] = bad(reason, bad_records);
                    if bad_records == BadRecords::Fail {
                        break;
                    }
                }
            }
        }
        (rows, pushed)
    }

    /// The final states, counted into the summary.
    fn finish(self) -> BatchResult {
        let mut summary = self.summary;
        let states: Vec<RecordState> = self.slots.work.into_iter().map(Work::into_state).collect();
        for (i, s) in states.iter().enumerate() {
            match s {
                RecordState::Forwarded => summary.forwarded += 1,
                RecordState::Duplicate => summary.duplicates += 1,
                RecordState::Quarantined { .. } => summary.quarantined += 1,
                RecordState::Pending { reason } => {
                    summary.failed += 1;
                    if summary.failure_reasons.len() < 5 {
                        summary
                            .failure_reasons
                            .push(format!("{}: {reason}", self.records[i].failure_id));
                    }
                }
            }
        }
        BatchResult { states, summary }
    }
}

/// The per-record key of a replayed Kinesis record: `kin#<stream
/// ARN>/<shard>#<sequence>`, and `#<subsequence>` after it for a user
/// record of a KPL aggregate. The lane is `<ARN>/<shard>` or, with lanes by
/// partition key, `<ARN>/<shard>#<key>`; shard ids hold no `#`, so the key
/// is the same whichever way the lanes were formed.
pub fn replay_key(r: &Record) -> Option<String> {
    if r.kind != SourceKind::Kinesis || r.position.is_empty() {
        return None;
    }
    let shard = r
        .lane
        .strip_prefix(&*r.source_arn)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.split('#').next().unwrap_or(rest))
        .unwrap_or(&r.lane);
    Some(match &r.sub {
        None => format!("kin#{}/{shard}#{}", r.source_arn, r.position),
        Some(sub) => format!("kin#{}/{shard}#{}#{}", r.source_arn, r.position, sub.index),
    })
}

#[derive(Clone, Copy)]
enum KeyKind {
    Message,
    Payload,
}

/// Claims keys in chunks. No chunk starts once the deadline margin is
/// reached, and a chunk in flight is abandoned at the deadline itself: its
/// records stay pending (claims it may have taken expire at the deadline).
async fn claim_into<S: DedupeStore>(
    store: &S,
    slots: &mut Slots,
    wanted: Vec<(usize, String)>,
    ctx: &BatchContext,
    cfg: &PipelineConfig,
    kind: KeyKind,
) {
    // The keys move into the store's request and from there into the
    // slots: no copy per key.
    let mut wanted = wanted.into_iter().peekable();
    let chunk_len = cfg.claim_chunk.max(1);
    while wanted.peek().is_some() {
        let (records, keys): (Vec<usize>, Vec<String>) = wanted.by_ref().take(chunk_len).unzip();
        let outcome = if ctx.remaining() < cfg.deadline_margin {
            Err("deadline: key claims stopped before this record".to_string())
        } else {
            let claims = store.claim(&keys, ctx.now_ms, ctx.deadline_ms);
            match tokio::time::timeout_at(ctx.deadline.into(), claims).await {
                Ok(Ok(claims)) => Ok(claims),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("deadline: key claim did not finish in time".to_string()),
            }
        };
        let claims = match outcome {
            Ok(claims) => claims,
            Err(reason) => {
                for i in records {
                    slots.work[i] = Work::pending(reason.clone());
                }
                continue;
            }
        };
        for ((i, key), claim) in records.into_iter().zip(keys).zip(claims) {
            match claim {
                Claim::New => match kind {
                    KeyKind::Message => slots.message_key[i] = Some(key),
                    KeyKind::Payload => slots.payload_key[i] = Some(key),
                },
                Claim::Completed => slots.work[i] = Work::Done(RecordState::Duplicate),
                Claim::InProgress => {
                    slots.work[i] =
                        Work::pending(format!("key {key} is in progress in another invocation"))
                }
            }
        }
    }
}

/// A record that cannot be decoded: quarantined, or the lane's cut.
fn bad(reason: String, mode: BadRecords) -> Work {
    match mode {
        BadRecords::Quarantine => Work::Bad(reason),
        BadRecords::Fail => Work::pending(format!("{FAILED_AS_BAD}{reason}")),
    }
}

fn quarantine_item(r: &Record, reason: &str) -> QuarantineItem {
    QuarantineItem {
        source_arn: r.source_arn.to_string(),
        lane: r.lane.to_string(),
        // `seq:sub` for a KPL user record: it tells them apart, also in
        // the FIFO quarantine's deduplication id.
        position: r.position_text().into_owned(),
        failure_id: r.failure_id.to_string(),
        reason: reason.to_string(),
        payload: base64::engine::general_purpose::STANDARD.encode(&r.payload),
    }
}

/// One ERROR line per refused update: an operator must see which table,
/// lane and records, and what q said, without digging.
fn log_refused(records: &[Record], lane: &Lane, run: &EncodedRun, q_error: &str) {
    let at = |i: Option<&usize>| i.map(|&i| position(&records[i])).unwrap_or_default();
    RefusedRun {
        table: &run.table,
        lane: &lane.id,
        first_position: &at(run.records.first()),
        last_position: &at(run.records.last()),
        rows: run.rows,
        q_error,
    }
    .emit();
}

/// What sending the runs found out, per lane and run.
struct Sent {
    confirmed: Vec<Vec<bool>>,
    /// Why a lane's unconfirmed runs were not confirmed: a lane-local
    /// error (refused by q, or built wrong here).
    lane_error: Vec<Option<String>>,
    /// Why the whole send stopped (link down, deadline), if it did.
    stopped: Option<String>,
}

/// Encodes each lane's runs, sends them in the configured mode, and
/// decides the records they carry: forwarded when every run carrying
/// them is confirmed, else pending with the reason.
#[allow(clippy::too_many_arguments)]
async fn publish<L: TickerplantLink, R: LaneRows>(
    records: &[Record],
    link: &mut L,
    lane_rows: &[R],
    lanes: &[Lane],
    slots: &mut Slots,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
    summary: &mut Summary,
) {
    let msg_type = match cfg.publish {
        PublishMode::Async => MsgType::Async,
        PublishMode::Sync | PublishMode::Pipelined => MsgType::Sync,
    };
    let runs: Vec<Vec<EncodedRun>> = lane_rows
        .iter()
        .map(|r| r.encode(&cfg.upd_func, msg_type))
        .collect();
    let mut carried = vec![false; slots.work.len()];
    for run in runs.iter().flatten() {
        for &i in &run.records {
            carried[i] = true;
        }
    }
    // Records that decoded to no rows need no confirmation.
    for lane in lanes {
        for &i in &lane.records {
            if slots.work[i] == Work::Todo && !carried[i] {
                slots.work[i] = Work::Done(RecordState::Forwarded);
            }
        }
    }
    if runs.iter().all(|r| r.is_empty()) {
        return;
    }
    let mut sent = Sent {
        confirmed: runs.iter().map(|r| vec![false; r.len()]).collect(),
        lane_error: vec![None; runs.len()],
        stopped: None,
    };
    let until = ctx
        .deadline
        .checked_sub(cfg.deadline_margin)
        .unwrap_or(ctx.deadline);
    match link.ensure_connected(until).await {
        Err(e) => sent.stopped = Some(e.reason()),
        Ok(()) => match cfg.publish {
            PublishMode::Async => send_async(link, &runs, &mut sent, cfg, ctx, summary).await,
            PublishMode::Sync | PublishMode::Pipelined => {
                send_sync_rounds(records, link, &runs, lanes, &mut sent, cfg, ctx, summary).await
            }
        },
    }
    settle_runs(&runs, &sent, slots, summary);
}

/// Async messages, a sync chaser every `chase_every_bytes` and at the end:
/// a run is confirmed by the first chaser answered after it.
async fn send_async<L: TickerplantLink>(
    link: &mut L,
    runs: &[Vec<EncodedRun>],
    sent: &mut Sent,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
    summary: &mut Summary,
) {
    let mut in_flight: Vec<(usize, usize)> = Vec::new();
    let mut unchased = 0usize;
    'send: for (l, lane_runs) in runs.iter().enumerate() {
        for (k, run) in lane_runs.iter().enumerate() {
            if ctx.remaining() < cfg.deadline_margin {
                sent.stopped = Some("deadline: stopped publishing".into());
                break 'send;
            }
            match link.send_async(&run.bytes).await {
                Ok(()) => {}
                Err(e @ LinkError::Local(_)) => {
                    sent.lane_error[l] = Some(e.reason());
                    continue 'send;
                }
                Err(e) => {
                    sent.stopped = Some(e.reason());
                    break 'send;
                }
            }
            summary.messages_sent += 1;
            summary.bytes_sent += run.bytes.len();
            unchased += run.bytes.len();
            in_flight.push((l, k));
            if unchased >= cfg.chase_every_bytes {
                unchased = 0;
                if let Err(e) = link.chase().await {
                    sent.stopped = Some(e.reason());
                    break 'send;
                }
                in_flight
                    .drain(..)
                    .for_each(|(l, k)| sent.confirmed[l][k] = true);
            }
        }
    }
    if sent.stopped.is_none() && !in_flight.is_empty() {
        match link.chase().await {
            Ok(()) => in_flight
                .drain(..)
                .for_each(|(l, k)| sent.confirmed[l][k] = true),
            Err(e) => sent.stopped = Some(e.reason()),
        }
    }
}

/// Rounds of sync runs written back to back, then their replies. Sync: the
/// next run of every lane still going, so a lane never has a run in flight
/// behind an unanswered one and a refused run is the last of its lane the
/// tickerplant sees. Pipelined: every run left (up to the byte bound), so a
/// lane's later runs may already be in when an earlier one is refused.
#[allow(clippy::too_many_arguments)]
async fn send_sync_rounds<L: TickerplantLink>(
    records: &[Record],
    link: &mut L,
    runs: &[Vec<EncodedRun>],
    lanes: &[Lane],
    sent: &mut Sent,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
    summary: &mut Summary,
) {
    let per_lane = match cfg.publish {
        PublishMode::Sync => 1,
        _ => usize::MAX,
    };
    let mut next = vec![0usize; runs.len()];
    'rounds: loop {
        let round = next_round(
            runs,
            &next,
            &sent.lane_error,
            per_lane,
            cfg.chase_every_bytes,
        );
        if round.is_empty() {
            break;
        }
        if ctx.remaining() < cfg.deadline_margin {
            sent.stopped = Some("deadline: stopped publishing".into());
            break;
        }
        let msgs: Vec<&[u8]> = round
            .iter()
            .map(|&(l, k)| runs[l][k].bytes.as_slice())
            .collect();
        let results = link.send_sync_all(&msgs).await;
        for (&(l, k), r) in round.iter().zip(results) {
            let run = &runs[l][k];
            let behind_refusal = sent.lane_error[l].is_some();
            match r {
                Ok(()) if behind_refusal => {
                    summary.messages_sent += 1;
                    summary.bytes_sent += run.bytes.len();
                    summary.accepted_behind_refusal += 1;
                }
                Ok(()) => {
                    sent.confirmed[l][k] = true;
                    next[l] = k + 1;
                    summary.messages_sent += 1;
                    summary.bytes_sent += run.bytes.len();
                }
                // Deterministic for this run: cut its lane, go on with the
                // other lanes.
                Err(LinkError::Remote(e)) => {
                    summary.messages_sent += 1;
                    summary.bytes_sent += run.bytes.len();
                    summary.refused_updates += 1;
                    if !behind_refusal {
                        log_refused(records, &lanes[l], run, &e);
                        sent.lane_error[l] = Some(format!(
                            "tickerplant refused {} rows of {}: '{e}",
                            run.rows, run.table
                        ));
                    }
                }
                Err(e @ LinkError::Local(_)) => {
                    if !behind_refusal {
                        sent.lane_error[l] = Some(e.reason());
                    }
                }
                Err(e) => {
                    sent.stopped = Some(e.reason());
                    break 'rounds;
                }
            }
        }
    }
    if summary.accepted_behind_refusal > 0 {
        PipelinedRefusal {
            runs: summary.accepted_behind_refusal,
        }
        .emit();
    }
}

/// The next round: up to `per_lane` runs of each lane still going, from
/// `next`, ending at about `max_bytes` (one run at least).
fn next_round(
    runs: &[Vec<EncodedRun>],
    next: &[usize],
    lane_error: &[Option<String>],
    per_lane: usize,
    max_bytes: usize,
) -> Vec<(usize, usize)> {
    let mut round: Vec<(usize, usize)> = Vec::new();
    let mut round_bytes = 0usize;
    for (l, lane_runs) in runs.iter().enumerate() {
        if lane_error[l].is_some() {
            continue;
        }
        for k in (next[l]..lane_runs.len()).take(per_lane) {
            if !round.is_empty() && round_bytes >= max_bytes {
                return round;
            }
            round_bytes += lane_runs[k].bytes.len();
            round.push((l, k));
        }
    }
    round
}

/// Records carried by an unconfirmed run are pending with its lane's
/// reason (or why the send stopped); the rest that were still to do were
/// carried only by confirmed runs, and are forwarded.
fn settle_runs(runs: &[Vec<EncodedRun>], sent: &Sent, slots: &mut Slots, summary: &mut Summary) {
    let stopped = sent.stopped.as_deref().unwrap_or("not sent");
    for (l, lane_runs) in runs.iter().enumerate() {
        for (k, run) in lane_runs.iter().enumerate() {
            if sent.confirmed[l][k] {
                *summary.rows_per_table.entry(run.table.clone()).or_default() += run.rows;
                continue;
            }
            let reason = sent.lane_error[l].as_deref().unwrap_or(stopped);
            for &i in &run.records {
                if slots.work[i] == Work::Todo {
                    slots.work[i] = Work::pending(reason);
                }
            }
        }
    }
    for run in runs.iter().flatten() {
        for &i in &run.records {
            if slots.work[i] == Work::Todo {
                slots.work[i] = Work::Done(RecordState::Forwarded);
            }
        }
    }
}

async fn commit<S: DedupeStore>(
    store: &S,
    records: &[Record],
    lanes: &[Lane],
    slots: &mut Slots,
    checkpoints: &HashMap<String, Option<String>>,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
) {
    let done = |i: usize| slots.work[i].is_done();
    // Lane checkpoints move to the last record of the lane's done prefix.
    let mut moves = Vec::new();
    for lane in lanes {
        let Some(old) = checkpoints.get(&lane.id) else {
            continue;
        };
        // `seq:sub` when it ends partway through a KPL aggregate, so a
        // redelivery of the aggregate skips the sub-records already done.
        let last = lane
            .records
            .iter()
            .take_while(|&&i| done(i))
            .last()
            .map(|&i| records[i].checkpoint_after());
        if let Some(new) = last {
            let newer = old
                .as_deref()
                .is_none_or(|o| new.order(&Position::parse_checkpoint(o)).is_gt());
            if newer {
                moves.push((lane.id.as_str(), old.as_deref(), new.checkpoint_text()));
            }
        }
    }
    let ttl_end_s = ctx.now_ms / 1000 + cfg.key_ttl.as_secs() as i64;
    let mut complete = Vec::new();
    let mut release = Vec::new();
    // The keys move out of the slots: nothing reads them after the commit.
    // They go in the order they were claimed (message keys by record, then
    // payload keys lane by lane), which lets the memory store complete a
    // whole claim at once (`dedupe::claim_log`).
    let Slots {
        work,
        message_key,
        payload_key,
    } = slots;
    for (i, w) in work.iter().enumerate() {
        if let Some(k) = message_key.get_mut(i).and_then(Option::take) {
            if w.is_done() {
                complete.push(k)
            } else {
                release.push(k)
            }
        }
    }
    for &i in lanes.iter().flat_map(|l| &l.records) {
        if let Some(k) = payload_key.get_mut(i).and_then(Option::take) {
            if work[i] == Work::Done(RecordState::Forwarded) {
                complete.push(k)
            } else {
                release.push(k)
            }
        }
    }
    let cp_writes = async {
        let all = join_all(
            moves
                .iter()
                .map(|(lane, old, new)| store.advance_checkpoint(lane, *old, new.as_str())),
        );
        match tokio::time::timeout_at(ctx.deadline.into(), all).await {
            Ok(results) => results,
            Err(_) => moves
                .iter()
                .map(|_| {
                    Err(StoreError::Transient(
                        "deadline: stopped waiting for DynamoDB".into(),
                    ))
                })
                .collect(),
        }
    };
    let key_writes = async {
        let c = if complete.is_empty() {
            Ok(())
        } else {
            bounded(ctx.deadline, store.complete(&complete, ttl_end_s)).await
        };
        let r = release_own(store, &release, ctx.deadline, ctx.deadline_ms).await;
        (c, r)
    };
    let (cp_results, (c, r)) = futures_util::future::join(cp_writes, key_writes).await;
    // The records are already in the tickerplant: a failed commit is logged,
    // not turned into a retry that would send them twice.
    for ((lane, _, new), res) in moves.iter().zip(cp_results) {
        if let Err(e) = res {
            CommitIncomplete::Checkpoint {
                lane,
                checkpoint: &new.to_string(),
                error: &e.to_string(),
            }
            .emit();
        }
    }
    if let Err(e) = c {
        CommitIncomplete::Complete {
            keys: complete.len(),
            error: &e.to_string(),
        }
        .emit();
    }
    if let Err(e) = r {
        CommitIncomplete::Release {
            keys: release.len(),
            error: &e.to_string(),
        }
        .emit();
    }
}
