//! The batch algorithm. Every record ends in exactly one state; a lane stops
//! at its first record that is not done, and nothing after it in that lane
//! is sent, quarantined or committed.

use std::collections::HashMap;
use std::time::Instant;

use base64::Engine;
use futures_util::future::join_all;

use super::{
    BadRecords, BatchContext, BatchResult, Decoder, EncodedRun, LaneRows, LinkError,
    PipelineConfig, PublishMode, QuarantineItem, QuarantineSink, RecordState, Summary,
    TickerplantLink,
};
use crate::dedupe::{Claim, DedupeStore, StoreError};
use crate::kdb::MsgType;
use crate::source::seqno::cmp_seq;
use crate::source::{lanes, Lane, Record, SourceKind};

/// Work state while the batch is in flight.
#[derive(Clone, Debug, PartialEq)]
enum Work {
    Todo,
    Duplicate,
    Bad(String),
    Quarantined(String),
    Forwarded,
    Pending(String),
}

struct Slots {
    work: Vec<Work>,
    message_key: Vec<Option<String>>,
    payload_key: Vec<Option<String>>,
}

impl Slots {
    /// Everything after a lane's first pending record is pending too, as
    /// the batch response will say (see `pipeline::response`).
    fn settle_cuts(&mut self, lanes: &[Lane]) {
        for lane in lanes {
            let mut cut: Option<String> = None;
            for &i in &lane.records {
                match (&cut, &self.work[i]) {
                    (None, Work::Pending(reason)) => cut = Some(reason.clone()),
                    (Some(_), Work::Pending(_)) | (None, _) => {}
                    (Some(reason), _) => {
                        self.work[i] = Work::Pending(format!("after a pending record ({reason})"))
                    }
                }
            }
        }
    }

    fn pend_all_todo(&mut self, reason: &str) {
        for w in &mut self.work {
            if matches!(w, Work::Todo | Work::Bad(_)) {
                *w = Work::Pending(reason.to_string());
            }
        }
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// Processes one batch. Never fails as a whole: every problem becomes a
/// record state, so the caller can always build an exact batch response.
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
    let n = records.len();
    let lanes = lanes(records);
    let requests_before = store.requests();
    let mut summary = Summary {
        request_id: ctx.request_id.clone(),
        records: n,
        lanes: lanes.len(),
        ..Summary::default()
    };
    let mut slots = Slots {
        work: vec![Work::Todo; n],
        message_key: vec![None; n],
        payload_key: vec![None; n],
    };
    let out_of_time = |ctx: &BatchContext| ctx.remaining() < cfg.deadline_margin;
    for (i, r) in records.iter().enumerate() {
        if let Some(reason) = &r.defect {
            slots.work[i] = bad(reason.clone(), cfg.bad_records);
        }
    }

    // Transport dedupe.
    let t = Instant::now();
    let mut checkpoints: HashMap<String, Option<String>> = HashMap::new();
    if out_of_time(ctx) {
        slots.pend_all_todo("deadline: no time left to start");
    } else if cfg.transport_dedupe || cfg.replay {
        // Replay always keys records one by one: its records are behind
        // their lane checkpoints by definition (DESIGN §3).
        let by_checkpoint =
            !cfg.replay && records.first().map(|r| r.kind) == Some(SourceKind::Kinesis);
        if by_checkpoint {
            let reads = join_all(lanes.iter().map(|l| store.checkpoint(&l.id))).await;
            for (lane, read) in lanes.iter().zip(reads) {
                match read {
                    Ok(cp) => {
                        if let Some(cp) = &cp {
                            for &i in &lane.records {
                                if cmp_seq(&records[i].position, cp).is_le() {
                                    slots.work[i] = Work::Duplicate;
                                }
                            }
                        }
                        checkpoints.insert(lane.id.clone(), cp);
                    }
                    Err(e) => {
                        for &i in &lane.records {
                            slots.work[i] = Work::Pending(e.to_string());
                        }
                    }
                }
            }
        } else {
            let wanted: Vec<(usize, String)> = (0..n)
                .filter_map(|i| {
                    let r = &records[i];
                    let key = match (&r.message_key, cfg.replay) {
                        (Some(k), _) => Some(k.clone()),
                        (None, true) => replay_key(r),
                        (None, false) => None,
                    };
                    key.map(|k| (i, k))
                })
                .collect();
            claim_into(store, &mut slots, &wanted, ctx, cfg, KeyKind::Message).await;
        }
        slots.settle_cuts(&lanes);
    }

    // Payload keys: producer retries and replays carry the same business id.
    // The key comes out of the decode itself, so with keys on, lanes are
    // decoded first and a lane is decoded again only when a claim turned one
    // of its decoded records into a duplicate or a cut (rare): one JSON
    // parse per record in the common case instead of two.
    let mut lane_rows: Vec<D::Lane> = Vec::with_capacity(lanes.len());
    if decoder.has_payload_keys() && !out_of_time(ctx) {
        let mut decoded: Vec<Vec<usize>> = Vec::with_capacity(lanes.len());
        let mut keyed: Vec<(usize, String)> = Vec::new();
        let td = Instant::now();
        for lane in &lanes {
            let (rows, pushed) = decode_lane(
                decoder,
                records,
                lane,
                &mut slots,
                cfg.bad_records,
                Some(&mut keyed),
            );
            lane_rows.push(rows);
            decoded.push(pushed);
        }
        summary.stage_ms.decode = ms_since(td);
        slots.settle_cuts(&lanes);
        let mut first_with: HashMap<String, usize> = HashMap::new();
        let mut wanted = Vec::new();
        for (i, key) in keyed {
            if slots.work[i] != Work::Todo {
                continue;
            }
            // A second record with a key already in this batch is a
            // duplicate: the first carries the same business data, and is
            // retried if it does not get through.
            if first_with.insert(key.clone(), i).is_some() {
                slots.work[i] = Work::Duplicate;
            } else {
                wanted.push((i, key));
            }
        }
        claim_into(store, &mut slots, &wanted, ctx, cfg, KeyKind::Payload).await;
        slots.settle_cuts(&lanes);
        let td = Instant::now();
        for (l, lane) in lanes.iter().enumerate() {
            if decoded[l].iter().any(|&i| slots.work[i] != Work::Todo) {
                lane_rows[l] =
                    decode_lane(decoder, records, lane, &mut slots, cfg.bad_records, None).0;
            }
        }
        summary.stage_ms.decode += ms_since(td);
        summary.stage_ms.dedupe = ms_since(t) - summary.stage_ms.decode;
    } else {
        summary.stage_ms.dedupe = ms_since(t);
        // Decode, lane by lane, so each lane's runs stay in its order.
        let t = Instant::now();
        for lane in &lanes {
            lane_rows
                .push(decode_lane(decoder, records, lane, &mut slots, cfg.bad_records, None).0);
        }
        summary.stage_ms.decode = ms_since(t);
    }

    // Quarantine bad records before publishing: if a send fails the lane is
    // cut there, and nothing after it may reach the tickerplant.
    let t = Instant::now();
    let bad: Vec<usize> = (0..n)
        .filter(|&i| matches!(slots.work[i], Work::Bad(_)))
        .collect();
    if !bad.is_empty() {
        let items: Vec<QuarantineItem> = bad
            .iter()
            .map(|&i| quarantine_item(&records[i], &slots.work[i]))
            .collect();
        let results = quarantine.send(&items).await;
        let mut cut_lanes = Vec::new();
        for (k, &i) in bad.iter().enumerate() {
            let reason = match &slots.work[i] {
                Work::Bad(r) => r.clone(),
                _ => continue,
            };
            match results.get(k) {
                Some(Ok(())) => slots.work[i] = Work::Quarantined(reason),
                other => {
                    let why = match other {
                        Some(Err(e)) => e.to_string(),
                        _ => "no result".into(),
                    };
                    slots.work[i] = Work::Pending(format!("quarantine send failed: {why}"));
                    cut_lanes.push(records[i].lane.clone());
                }
            }
        }
        if !cut_lanes.is_empty() {
            slots.settle_cuts(&lanes);
            for (l, lane) in lanes.iter().enumerate() {
                if cut_lanes.contains(&lane.id) {
                    lane_rows[l] =
                        decode_lane(decoder, records, lane, &mut slots, cfg.bad_records, None).0;
                }
            }
        }
    }
    summary.stage_ms.quarantine = ms_since(t);

    // Publish.
    let t = Instant::now();
    if out_of_time(ctx) {
        slots.pend_all_todo("deadline: no time left to publish");
    } else {
        publish(
            records,
            link,
            &lane_rows,
            &lanes,
            &mut slots,
            cfg,
            ctx,
            &mut summary,
        )
        .await;
    }
    summary.stage_ms.publish = ms_since(t);

    slots.settle_cuts(&lanes);

    // Commit what is done; release what is not.
    let t = Instant::now();
    commit(store, records, &lanes, &slots, &checkpoints, cfg, ctx).await;
    summary.stage_ms.commit = ms_since(t);

    let states: Vec<RecordState> = slots
        .work
        .into_iter()
        .map(|w| match w {
            Work::Forwarded => RecordState::Forwarded,
            Work::Duplicate => RecordState::Duplicate,
            Work::Quarantined(reason) => RecordState::Quarantined { reason },
            Work::Pending(reason) => RecordState::Pending { reason },
            Work::Todo | Work::Bad(_) => RecordState::Pending {
                reason: "not processed".into(),
            },
        })
        .collect();
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
                        .push(format!("{}: {reason}", records[i].failure_id));
                }
            }
        }
    }
    summary.dedupe_requests = store.requests().saturating_sub(requests_before);
    BatchResult { states, summary }
}

/// The per-record key of a replayed Kinesis record: `kin#<stream
/// ARN>/<shard>#<sequence>`. The lane is `<ARN>/<shard>` or, with lanes by
/// partition key, `<ARN>/<shard>#<key>`; shard ids hold no `#`, so the key
/// is the same whichever way the lanes were formed.
pub fn replay_key(r: &Record) -> Option<String> {
    if r.kind != SourceKind::Kinesis || r.position.is_empty() {
        return None;
    }
    let shard = r
        .lane
        .strip_prefix(r.source_arn.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|rest| rest.split('#').next().unwrap_or(rest))
        .unwrap_or(r.lane.as_str());
    Some(format!("kin#{}/{shard}#{}", r.source_arn, r.position))
}

#[derive(Clone, Copy)]
enum KeyKind {
    Message,
    Payload,
}

/// How long before our claims expire releasing them stops: more than the
/// clock skew between two Lambda hosts (milliseconds with Amazon Time Sync).
const RELEASE_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_millis(250);

/// Claims keys in chunks. No chunk starts once the deadline margin is
/// reached, and a chunk in flight is abandoned at the deadline itself: its
/// records stay pending (claims it may have taken expire at the deadline).
async fn claim_into<S: DedupeStore>(
    store: &S,
    slots: &mut Slots,
    wanted: &[(usize, String)],
    ctx: &BatchContext,
    cfg: &PipelineConfig,
    kind: KeyKind,
) {
    for chunk in wanted.chunks(cfg.claim_chunk.max(1)) {
        let outcome = if ctx.remaining() < cfg.deadline_margin {
            Err("deadline: key claims stopped before this record".to_string())
        } else {
            let keys: Vec<String> = chunk.iter().map(|(_, k)| k.clone()).collect();
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
                for (i, _) in chunk {
                    slots.work[*i] = Work::Pending(reason.clone());
                }
                continue;
            }
        };
        for ((i, key), claim) in chunk.iter().zip(claims) {
            match claim {
                Claim::New => match kind {
                    KeyKind::Message => slots.message_key[*i] = Some(key.clone()),
                    KeyKind::Payload => slots.payload_key[*i] = Some(key.clone()),
                },
                Claim::Completed => slots.work[*i] = Work::Duplicate,
                Claim::InProgress => {
                    slots.work[*i] =
                        Work::Pending(format!("key {key} is in progress in another invocation"))
                }
            }
        }
    }
}

/// Decodes a lane's records that are still to do, in order, stopping at a
/// cut. Returns the rows and the records whose rows they hold; with `keys`,
/// each such record's payload key is added to it.
fn decode_lane<D: Decoder>(
    decoder: &D,
    records: &[Record],
    lane: &Lane,
    slots: &mut Slots,
    bad_records: BadRecords,
    mut keys: Option<&mut Vec<(usize, String)>>,
) -> (D::Lane, Vec<usize>) {
    let mut rows = decoder.lane();
    let mut pushed = Vec::new();
    for &i in &lane.records {
        match &slots.work[i] {
            Work::Pending(_) => break,
            Work::Todo => {}
            _ => continue,
        }
        match rows.push(i, &records[i]) {
            Ok(key) => {
                pushed.push(i);
                if let (Some(keys), Some(key)) = (keys.as_deref_mut(), key) {
                    keys.push((i, key));
                }
            }
            Err(reason) => {
                slots.work[i] = bad(reason.to_string(), bad_records);
                if bad_records == BadRecords::Fail {
                    break;
                }
            }
        }
    }
    (rows, pushed)
}

/// A record that cannot be decoded: quarantined, or the lane's cut.
fn bad(reason: String, mode: BadRecords) -> Work {
    match mode {
        BadRecords::Quarantine => Work::Bad(reason),
        BadRecords::Fail => Work::Pending(format!("bad record: {reason}")),
    }
}

fn quarantine_item(r: &Record, work: &Work) -> QuarantineItem {
    QuarantineItem {
        source_arn: r.source_arn.clone(),
        lane: r.lane.clone(),
        position: r.position.clone(),
        failure_id: r.failure_id.clone(),
        reason: match work {
            Work::Bad(reason) => reason.clone(),
            _ => String::new(),
        },
        payload: base64::engine::general_purpose::STANDARD.encode(&r.payload),
    }
}

/// One ERROR line per refused update: an operator must see which table,
/// lane and records, and what q said, without digging.
fn log_refused(records: &[Record], lane: &Lane, run: &EncodedRun, q_error: &str) {
    let first = run.records.first().map(|&i| records[i].position.as_str());
    let last = run.records.last().map(|&i| records[i].position.as_str());
    tracing::error!(
        table = %run.table,
        lane = %lane.id,
        first_position = first.unwrap_or(""),
        last_position = last.unwrap_or(""),
        rows = run.rows,
        q_error = %q_error,
        "tickerplant refused an update; its lane is cut and retried"
    );
}

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
                slots.work[i] = Work::Forwarded;
            }
        }
    }
    if runs.iter().all(|r| r.is_empty()) {
        return;
    }
    let mut confirmed: Vec<Vec<bool>> = runs.iter().map(|r| vec![false; r.len()]).collect();
    // Why a lane's unconfirmed runs were not confirmed: a lane-local remote
    // error (sync mode), else the reason the whole send stopped.
    let mut lane_error: Vec<Option<String>> = vec![None; runs.len()];
    let mut stopped: Option<String> = None;
    let until = ctx
        .deadline
        .checked_sub(cfg.deadline_margin)
        .unwrap_or(ctx.deadline);
    if let Err(e) = link.ensure_connected(until).await {
        stopped = Some(e.to_string());
    }
    match cfg.publish {
        _ if stopped.is_some() => {}
        PublishMode::Async => {
            let mut in_flight: Vec<(usize, usize)> = Vec::new();
            let mut unchased = 0usize;
            'send: for (l, lane_runs) in runs.iter().enumerate() {
                for (k, run) in lane_runs.iter().enumerate() {
                    if ctx.remaining() < cfg.deadline_margin {
                        stopped = Some("deadline: stopped publishing".into());
                        break 'send;
                    }
                    match link.send_async(&run.bytes).await {
                        Ok(()) => {}
                        Err(e @ LinkError::Local(_)) => {
                            lane_error[l] = Some(e.to_string());
                            continue 'send;
                        }
                        Err(e) => {
                            stopped = Some(e.to_string());
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
                            stopped = Some(e.to_string());
                            break 'send;
                        }
                        in_flight
                            .drain(..)
                            .for_each(|(l, k)| confirmed[l][k] = true);
                    }
                }
            }
            if stopped.is_none() && !in_flight.is_empty() {
                match link.chase().await {
                    Ok(()) => in_flight
                        .drain(..)
                        .for_each(|(l, k)| confirmed[l][k] = true),
                    Err(e) => stopped = Some(e.to_string()),
                }
            }
        }
        PublishMode::Sync | PublishMode::Pipelined => {
            // Rounds of sync runs written back to back, then their replies.
            // Sync: the next run of every lane still going, so a lane never
            // has a run in flight behind an unanswered one and a refused
            // run is the last of its lane the tickerplant sees. Pipelined:
            // every run left (up to the byte bound), so a lane's later runs
            // may already be in when an earlier one is refused.
            let per_lane = match cfg.publish {
                PublishMode::Sync => 1,
                _ => usize::MAX,
            };
            let mut next = vec![0usize; runs.len()];
            'rounds: loop {
                let mut round: Vec<(usize, usize)> = Vec::new();
                let mut round_bytes = 0usize;
                'fill: for (l, lane_runs) in runs.iter().enumerate() {
                    if lane_error[l].is_some() {
                        continue;
                    }
                    for k in (next[l]..lane_runs.len()).take(per_lane) {
                        if !round.is_empty() && round_bytes >= cfg.chase_every_bytes {
                            break 'fill;
                        }
                        round_bytes += lane_runs[k].bytes.len();
                        round.push((l, k));
                    }
                }
                if round.is_empty() {
                    break;
                }
                if ctx.remaining() < cfg.deadline_margin {
                    stopped = Some("deadline: stopped publishing".into());
                    break;
                }
                let msgs: Vec<&[u8]> = round
                    .iter()
                    .map(|&(l, k)| runs[l][k].bytes.as_slice())
                    .collect();
                let results = link.send_sync_all(&msgs).await;
                for (&(l, k), r) in round.iter().zip(results) {
                    let run = &runs[l][k];
                    let behind_refusal = lane_error[l].is_some();
                    match r {
                        Ok(()) if behind_refusal => {
                            summary.messages_sent += 1;
                            summary.bytes_sent += run.bytes.len();
                            summary.accepted_behind_refusal += 1;
                        }
                        Ok(()) => {
                            confirmed[l][k] = true;
                            next[l] = k + 1;
                            summary.messages_sent += 1;
                            summary.bytes_sent += run.bytes.len();
                        }
                        // Deterministic for this run: cut its lane, go on
                        // with the other lanes.
                        Err(LinkError::Remote(e)) => {
                            summary.messages_sent += 1;
                            summary.bytes_sent += run.bytes.len();
                            summary.refused_updates += 1;
                            if !behind_refusal {
                                log_refused(records, &lanes[l], run, &e);
                                lane_error[l] = Some(format!(
                                    "tickerplant refused {} rows of {}: '{e}",
                                    run.rows, run.table
                                ));
                            }
                        }
                        Err(e @ LinkError::Local(_)) => {
                            if !behind_refusal {
                                lane_error[l] = Some(e.to_string());
                            }
                        }
                        Err(e) => {
                            stopped = Some(e.to_string());
                            break 'rounds;
                        }
                    }
                }
            }
            if summary.accepted_behind_refusal > 0 {
                tracing::warn!(
                    runs = summary.accepted_behind_refusal,
                    "TICKBRIDGE_PUBLISH=pipelined: updates sent behind a refused one were accepted; \
                     they are reported failed with it and will be sent again on the retry"
                );
            }
        }
    }
    let stopped = stopped.unwrap_or_else(|| "not sent".into());
    for (l, lane_runs) in runs.iter().enumerate() {
        for (k, run) in lane_runs.iter().enumerate() {
            if confirmed[l][k] {
                *summary.rows_per_table.entry(run.table.clone()).or_default() += run.rows;
                continue;
            }
            let reason = lane_error[l].as_deref().unwrap_or(&stopped);
            for &i in &run.records {
                if slots.work[i] == Work::Todo {
                    slots.work[i] = Work::Pending(reason.to_string());
                }
            }
        }
    }
    // Whatever is still to do was carried only by confirmed runs.
    for run in runs.iter().flatten() {
        for &i in &run.records {
            if slots.work[i] == Work::Todo {
                slots.work[i] = Work::Forwarded;
            }
        }
    }
}

/// A store call cut off at `until`; its writes may or may not have landed.
async fn bounded<T>(
    until: Instant,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    tokio::time::timeout_at(until.into(), call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Transient(
                "deadline: stopped waiting for DynamoDB".into(),
            ))
        })
}

async fn commit<S: DedupeStore>(
    store: &S,
    records: &[Record],
    lanes: &[Lane],
    slots: &Slots,
    checkpoints: &HashMap<String, Option<String>>,
    cfg: &PipelineConfig,
    ctx: &BatchContext,
) {
    let done = |i: usize| {
        matches!(
            slots.work[i],
            Work::Forwarded | Work::Duplicate | Work::Quarantined(_)
        )
    };
    // Lane checkpoints move to the last record of the lane's done prefix.
    let mut moves = Vec::new();
    for lane in lanes {
        let Some(old) = checkpoints.get(&lane.id) else {
            continue;
        };
        let last = lane
            .records
            .iter()
            .take_while(|&&i| done(i))
            .last()
            .map(|&i| records[i].position.as_str());
        if let Some(new) = last {
            if old.as_deref().is_none_or(|o| cmp_seq(new, o).is_gt()) {
                moves.push((lane.id.as_str(), old.as_deref(), new));
            }
        }
    }
    let ttl_end_s = ctx.now_ms / 1000 + cfg.key_ttl.as_secs() as i64;
    let mut complete = Vec::new();
    let mut release = Vec::new();
    for i in 0..slots.work.len() {
        let finished = done(i);
        let payload_done = matches!(slots.work[i], Work::Forwarded);
        if let Some(k) = &slots.message_key[i] {
            if finished {
                complete.push(k.clone())
            } else {
                release.push(k.clone())
            }
        }
        if let Some(k) = &slots.payload_key[i] {
            if payload_done {
                complete.push(k.clone())
            } else {
                release.push(k.clone())
            }
        }
    }
    let cp_writes = async {
        let all = join_all(
            moves
                .iter()
                .map(|(lane, old, new)| store.advance_checkpoint(lane, *old, new)),
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
    // A release deletes a key while it is in progress; past our claims'
    // expiry that claim may be another invocation's. So releases stop
    // short of the expiry by more than any clock skew between invocations,
    // and what is not released by then simply expires at the deadline.
    let release_until = ctx.deadline.checked_sub(RELEASE_BEFORE_EXPIRY);
    let key_writes = async {
        let c = if complete.is_empty() {
            Ok(())
        } else {
            bounded(ctx.deadline, store.complete(&complete, ttl_end_s)).await
        };
        let r = match release_until {
            _ if release.is_empty() => Ok(()),
            Some(until) if Instant::now() < until => bounded(until, store.release(&release)).await,
            _ => Err(StoreError::Transient(
                "deadline: left to expire at the invocation deadline".into(),
            )),
        };
        (c, r)
    };
    let (cp_results, (c, r)) = futures_util::future::join(cp_writes, key_writes).await;
    // The records are already in the tickerplant: a failed commit is logged,
    // not turned into a retry that would send them twice.
    for ((lane, _, new), res) in moves.iter().zip(cp_results) {
        if let Err(e) = res {
            tracing::warn!(lane = %lane, checkpoint = %new, error = %e, "lane checkpoint not advanced");
        }
    }
    if let Err(e) = c {
        tracing::warn!(keys = complete.len(), error = %e, "completed keys not written; a redelivery may be forwarded again");
    }
    if let Err(e) = r {
        tracing::warn!(keys = release.len(), error = %e, "claims not released; they expire at the invocation deadline");
    }
}
