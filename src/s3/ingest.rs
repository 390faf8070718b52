//! S3 objects streamed into the tickerplant (DESIGN §7a): one object at a
//! time, line by line, through the schemas into ordered `.u.upd` runs.
//!
//! Every `flush_rows` rows or `flush_bytes` bytes read, the bad lines found
//! so far go to the quarantine, the rows are sent and confirmed (the
//! pipeline's publish modes: a refused run stops the object), and only then
//! does the object's checkpoint move to the cursor after the last line
//! read. The checkpoint is a lane checkpoint of the dedupe store, lane
//! [`ObjectRef::lane`] (bucket, key, version or ETag), value
//! [`Cursor::checkpoint`]; a finished object's checkpoint is [`DONE`],
//! which compares above every cursor, so a duplicate notification costs a
//! read and no GET. While an invocation works on an object it holds a
//! claim on the lane's name (the message-key protocol of DESIGN §3), so a
//! notification delivered twice at once is read by one invocation only.
//!
//! Memory is bounded by one flush's rows plus the line reader's buffer,
//! whatever the object's size.
//!
//! The format comes from the key: `.csv` / `.csv.gz` (any case) is CSV
//! with a header line mapped by the schemas (`schema::csv`); anything else
//! is JSON lines through the same decoder as queue records. Records are
//! routed with the bucket name as their source.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::Client;
use base64::Engine;

use super::error::S3Error;
use super::lines::{Cursor, Item};
use super::object::{open_lines, ObjectLines, ObjectOptions};
use super::ObjectRef;
use crate::dedupe::{bounded, release_own, Claim, DedupeStore};
use crate::kdb::MsgType;
use crate::pipeline::{
    BadRecords, BatchContext, LinkError, PipelineConfig, PublishMode, QuarantineItem,
    QuarantineSink, TickerplantLink,
};
use crate::schema::csv::CsvHeader;
use crate::schema::{BatchBuilder, Catalog};

/// The checkpoint of a finished object: 48 nines, longer than any cursor
/// (at most 20 + 20 digits), so it compares above all of them.
pub const DONE: &str = "999999999999999999999999999999999999999999999999";

/// The most bytes of a bad line kept in its quarantine message.
const BAD_LINE_KEEP: usize = 64 << 10;
/// Bad lines held before a flush sends them.
const BAD_LINES_PER_FLUSH: usize = 100;

/// How objects are read and sent.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    pub upd_func: String,
    pub publish: PublishMode,
    pub bad_records: BadRecords,
    pub deadline_margin: Duration,
    pub key_ttl: Duration,
    /// A flush at least every this many rows…
    pub flush_rows: usize,
    /// …and every this many bytes of the object read.
    pub flush_bytes: u64,
    /// Longer lines are bad lines.
    pub max_line: usize,
}

pub const DEFAULT_FLUSH_ROWS: usize = 100_000;
pub const DEFAULT_FLUSH_BYTES: u64 = 8 << 20;

impl IngestOptions {
    pub fn from_pipeline(cfg: &PipelineConfig) -> IngestOptions {
        IngestOptions {
            upd_func: cfg.upd_func.clone(),
            publish: cfg.publish,
            bad_records: cfg.bad_records,
            deadline_margin: cfg.deadline_margin,
            key_ttl: cfg.key_ttl,
            flush_rows: DEFAULT_FLUSH_ROWS,
            flush_bytes: DEFAULT_FLUSH_BYTES,
            max_line: super::lines::DEFAULT_MAX_LINE,
        }
    }
}

/// How an object ended for this delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectStatus {
    /// Every line is in the tickerplant or the quarantine; marked done.
    Done,
    /// Marked done by an earlier delivery: nothing was read.
    AlreadyDone,
    /// The whole object is bad (missing, changed since it was named, a
    /// header the schemas cannot map, broken gzip): quarantined and marked
    /// done. What was confirmed before stays.
    Bad { reason: String },
    /// Stopped with its checkpoint saved: retry the notification (the
    /// deadline, S3, DynamoDB or the tickerplant unavailable, a refused
    /// update, a bad line with `TICKBRIDGE_BAD_RECORDS=fail`).
    Pending { reason: String },
}

impl ObjectStatus {
    pub fn is_done(&self) -> bool {
        !matches!(self, ObjectStatus::Pending { .. })
    }
}

/// What one delivery did with one object.
#[derive(Clone, Debug)]
pub struct ObjectReport {
    pub object: ObjectRef,
    pub status: ObjectStatus,
    /// The line the read resumed after (0: from the start).
    pub resumed_after: u64,
    /// Rows confirmed by the tickerplant in this delivery.
    pub rows: usize,
    pub rows_per_table: BTreeMap<String, usize>,
    /// Lines (and whole objects) quarantined in this delivery.
    pub quarantined: usize,
    /// Bytes of the object read in this delivery.
    pub bytes: u64,
    pub messages_sent: usize,
}

/// Where the object's rows and bad lines go, and its checkpoint lives.
pub struct Sinks<'a, S, L, Q> {
    pub store: &'a S,
    pub link: &'a mut L,
    pub quarantine: &'a Q,
}

/// Whether the key names a CSV object (`.csv`, `.csv.gz`, any case).
pub fn is_csv(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with(".csv") || k.ends_with(".csv.gz")
}

/// Streams one object into the tickerplant from its checkpoint. Never
/// fails as a whole: the report says how it ended. `progress` is called
/// with the bytes read as they are read.
#[allow(clippy::too_many_arguments)]
pub async fn ingest_object<S, L, Q>(
    s3: &Client,
    catalog: &Catalog,
    sinks: Sinks<'_, S, L, Q>,
    object: &ObjectRef,
    opts: &IngestOptions,
    ctx: &BatchContext,
    progress: &mut (dyn FnMut(u64) + Send),
) -> ObjectReport
where
    S: DedupeStore,
    L: TickerplantLink,
    Q: QuarantineSink,
{
    let lane = object.lane();
    let mut run = Run {
        s3,
        catalog,
        store: sinks.store,
        link: sinks.link,
        quarantine: sinks.quarantine,
        object,
        lane: lane.clone(),
        opts,
        ctx,
        checkpoint: None,
        builder: BatchBuilder::new(),
        bad: Vec::new(),
        connected: false,
        report: ObjectReport {
            object: object.clone(),
            status: ObjectStatus::Done,
            resumed_after: 0,
            rows: 0,
            rows_per_table: BTreeMap::new(),
            quarantined: 0,
            bytes: 0,
            messages_sent: 0,
        },
    };
    if ctx.remaining() < opts.deadline_margin {
        run.report.status = ObjectStatus::Pending {
            reason: "deadline: no time left to start".into(),
        };
        return run.report;
    }
    let keys = [lane];
    let claim = bounded(
        ctx.deadline,
        sinks.store.claim(&keys, ctx.now_ms, ctx.deadline_ms),
    )
    .await;
    let status = match claim.as_deref() {
        Err(e) => ObjectStatus::Pending {
            reason: e.to_string(),
        },
        Ok([Claim::Completed]) => return run.done_report(ObjectStatus::AlreadyDone),
        Ok([Claim::InProgress]) => ObjectStatus::Pending {
            reason: format!("{object} is being read by another invocation"),
        },
        Ok(_) => run.read(progress).await,
    };
    // Our claim: completed with the object, else given back for the
    // retry. A claim another invocation holds is not ours to give back:
    // releasing it would let a third read the object alongside it.
    let ours = matches!(claim.as_deref(), Ok([Claim::New]));
    let ttl_end_s = ctx.now_ms / 1000 + opts.key_ttl.as_secs() as i64;
    let end = match (ours, status.is_done()) {
        (true, true) => bounded(ctx.deadline, sinks.store.complete(&keys, ttl_end_s)).await,
        (true, false) => release_own(sinks.store, &keys, ctx.deadline, ctx.deadline_ms).await,
        (false, _) => Ok(()),
    };
    if let Err(e) = end {
        crate::telemetry::ObjectClaimUnsettled { object, error: &e }.emit();
    }
    run.done_report(status)
}

/// Why reading stopped early.
enum Stop {
    Pending(String),
    /// Permanent, about the whole object.
    Bad(String),
}

impl From<S3Error> for Stop {
    fn from(e: S3Error) -> Stop {
        if e.is_transient() {
            Stop::Pending(e.to_string())
        } else {
            Stop::Bad(e.to_string())
        }
    }
}

struct Run<'a, S, L, Q> {
    s3: &'a Client,
    catalog: &'a Catalog,
    store: &'a S,
    link: &'a mut L,
    quarantine: &'a Q,
    object: &'a ObjectRef,
    lane: String,
    opts: &'a IngestOptions,
    ctx: &'a BatchContext,
    /// The checkpoint as stored (what the next advance starts from).
    checkpoint: Option<String>,
    builder: BatchBuilder,
    bad: Vec<QuarantineItem>,
    connected: bool,
    report: ObjectReport,
}

/// A decoded line's fate.
enum LineFate {
    Skip,
    Rows,
    Header(String),
    Bad(String, Vec<u8>),
}

impl<S: DedupeStore, L: TickerplantLink, Q: QuarantineSink> Run<'_, S, L, Q> {
    fn done_report(mut self, status: ObjectStatus) -> ObjectReport {
        self.report.status = status;
        self.report
    }

    /// Reads from the checkpoint to the end (or a stop) and says how it ended.
    async fn read(&mut self, progress: &mut (dyn FnMut(u64) + Send)) -> ObjectStatus {
        match self.read_inner(progress).await {
            Ok(true) => ObjectStatus::Done,
            Ok(false) => ObjectStatus::AlreadyDone,
            Err(Stop::Pending(reason)) => ObjectStatus::Pending { reason },
            Err(Stop::Bad(reason)) => self.bad_object(reason).await,
        }
    }

    /// The whole object is bad: quarantined (one message naming it) and
    /// marked done, or, with `fail`, left pending.
    async fn bad_object(&mut self, reason: String) -> ObjectStatus {
        if self.opts.bad_records == BadRecords::Fail {
            return ObjectStatus::Pending {
                reason: format!("bad object: {reason}"),
            };
        }
        self.bad.clear();
        self.bad.push(self.item("object", reason.clone(), &[]));
        if let Err(Stop::Pending(r) | Stop::Bad(r)) = self.send_bad().await {
            return ObjectStatus::Pending { reason: r };
        }
        if let Err(Stop::Pending(r) | Stop::Bad(r)) = self.advance(DONE.to_string()).await {
            return ObjectStatus::Pending { reason: r };
        }
        crate::telemetry::ObjectQuarantined {
            object: self.object,
            reason: &reason,
        }
        .emit();
        ObjectStatus::Bad { reason }
    }

    /// `Ok(false)`: already done.
    async fn read_inner(&mut self, progress: &mut (dyn FnMut(u64) + Send)) -> Result<bool, Stop> {
        self.checkpoint = bounded(self.ctx.deadline, self.store.checkpoint(&self.lane))
            .await
            .map_err(|e| Stop::Pending(e.to_string()))?;
        let resume = match self.checkpoint.as_deref() {
            Some(DONE) => return Ok(false),
            Some(cp) => Cursor::from_checkpoint(cp)
                .map_err(|e| Stop::Bad(format!("{}: {e}", self.object)))?,
            None => Cursor::START,
        };
        self.report.resumed_after = resume.line;
        let csv = is_csv(&self.object.key);
        let table = if csv {
            Some(self.catalog.csv_table(&self.object.bucket).ok_or_else(|| {
                Stop::Bad(format!(
                    "{}: no schema takes CSV from source {:?}",
                    self.object, self.object.bucket
                ))
            })?)
        } else {
            None
        };
        let options = ObjectOptions {
            max_line: self.opts.max_line,
        };
        // A ranged resume starts after the header: read line 1 first
        // (the first chunk of a second GET, dropped after it). Otherwise
        // read from the start and skip the confirmed lines.
        let ranged = resume.offset.is_some();
        let mut header: Option<CsvHeader> = None;
        if let (true, Some(t)) = (ranged, table) {
            let mut first = open_lines(self.s3, self.object, Cursor::START, options).await?;
            let text = match first.next().await? {
                Some(Item::Line(l)) => String::from_utf8_lossy(l.text).into_owned(),
                _ => String::new(),
            };
            header = Some(self.header(t, &text)?);
        }
        let mut lines = open_lines(
            self.s3,
            self.object,
            if ranged { resume } else { Cursor::START },
            options,
        )
        .await?;
        let skip_through = if ranged { 0 } else { resume.line };
        let mut read_to = resume.offset.unwrap_or(0);
        let mut flushed_at = read_to;
        loop {
            if self.ctx.remaining() < self.opts.deadline_margin {
                return Err(Stop::Pending(format!(
                    "deadline: stopped at the checkpoint after line {} of {}",
                    lines.cursor().line,
                    self.object
                )));
            }
            let before = lines.cursor();
            let Some((number, end, fate)) = self
                .next_line(&mut lines, header.as_ref(), skip_through)
                .await?
            else {
                break;
            };
            self.report.bytes += end.saturating_sub(read_to);
            progress(end.saturating_sub(read_to));
            read_to = end;
            match fate {
                LineFate::Skip if number <= skip_through => continue,
                LineFate::Skip | LineFate::Rows => {}
                LineFate::Header(text) => {
                    if header.is_none() {
                        let t = table.unwrap_or_default();
                        header = Some(self.header(t, &text)?);
                    }
                    continue;
                }
                LineFate::Bad(reason, text) => {
                    if self.opts.bad_records == BadRecords::Fail {
                        self.flush(before, false).await?;
                        return Err(Stop::Pending(format!("bad line: {reason}")));
                    }
                    let item = self.item(&number.to_string(), reason, &text);
                    self.bad.push(item);
                }
            }
            if self.builder.rows() >= self.opts.flush_rows
                || end.saturating_sub(flushed_at) >= self.opts.flush_bytes
                || self.bad.len() >= BAD_LINES_PER_FLUSH
            {
                self.flush(lines.cursor(), false).await?;
                flushed_at = end;
            }
        }
        if csv && header.is_none() {
            return Err(Stop::Bad(format!("{}: no header line", self.object)));
        }
        self.flush(lines.cursor(), true).await?;
        Ok(true)
    }

    fn header(&self, table: usize, text: &str) -> Result<CsvHeader, Stop> {
        self.catalog
            .csv_header(table, text, 1)
            .map_err(|e| Stop::Bad(format!("{}: {e}", self.object)))
    }

    /// The next line, decoded into the builder unless it is at or before
    /// `skip_through`: (number, end offset, fate).
    async fn next_line(
        &mut self,
        lines: &mut ObjectLines,
        header: Option<&CsvHeader>,
        skip_through: u64,
    ) -> Result<Option<(u64, u64, LineFate)>, S3Error> {
        let csv = is_csv(&self.object.key);
        let max_line = self.opts.max_line;
        let Some(item) = lines.next().await? else {
            return Ok(None);
        };
        let (number, end) = (item.number(), item.end());
        let line = match item {
            Item::TooLong { .. } => {
                let reason = format!("line {number}: longer than {max_line} bytes");
                return Ok(Some((number, end, LineFate::Bad(reason, Vec::new()))));
            }
            Item::Line(l) => l,
        };
        if csv && number == 1 && header.is_none() {
            let text = String::from_utf8_lossy(line.text).into_owned();
            return Ok(Some((number, end, LineFate::Header(text))));
        }
        // Confirmed by an earlier delivery (a resume that re-reads).
        if number <= skip_through || line.text.trim_ascii().is_empty() {
            return Ok(Some((number, end, LineFate::Skip)));
        }
        let keep = || line.text.get(..BAD_LINE_KEEP).unwrap_or(line.text).to_vec();
        let fate = match (header, std::str::from_utf8(line.text)) {
            (_, Err(e)) => LineFate::Bad(format!("line {number}: not UTF-8 ({e})"), keep()),
            (Some(h), Ok(text)) => {
                match self
                    .catalog
                    .decode_csv_line(h, text, number, &mut self.builder)
                {
                    Ok(_) => LineFate::Rows,
                    Err(e) => LineFate::Bad(e.to_string(), keep()),
                }
            }
            (None, Ok(_)) => {
                match self
                    .catalog
                    .decode_record(line.text, &self.object.bucket, &mut self.builder)
                {
                    Ok(_) => LineFate::Rows,
                    Err(e) => LineFate::Bad(format!("line {number}: {e}"), keep()),
                }
            }
        };
        Ok(Some((number, end, fate)))
    }

    fn item(&self, position: &str, reason: String, text: &[u8]) -> QuarantineItem {
        QuarantineItem {
            source_arn: format!("s3://{}/{}", self.object.bucket, self.object.key),
            lane: self.lane.clone(),
            position: position.to_string(),
            failure_id: format!("{}#{position}", self.object),
            reason,
            payload: base64::engine::general_purpose::STANDARD.encode(text),
        }
    }

    async fn send_bad(&mut self) -> Result<(), Stop> {
        if self.bad.is_empty() {
            return Ok(());
        }
        let results = self.quarantine.send(&self.bad).await;
        if let Some(e) = results.iter().find_map(|r| r.as_ref().err()) {
            return Err(Stop::Pending(format!("quarantine send failed: {e}")));
        }
        if results.len() != self.bad.len() {
            return Err(Stop::Pending("quarantine send failed: no result".into()));
        }
        self.report.quarantined += self.bad.len();
        self.bad.clear();
        Ok(())
    }

    /// Bad lines to the quarantine, rows to the tickerplant (confirmed),
    /// then the checkpoint to `cursor` (or [`DONE`] at the end): the
    /// checkpoint never passes a line whose fate is not confirmed.
    async fn flush(&mut self, cursor: Cursor, last: bool) -> Result<(), Stop> {
        self.send_bad().await?;
        if self.builder.rows() > 0 {
            self.publish().await?;
        }
        let next = if last {
            DONE.to_string()
        } else {
            cursor.checkpoint()
        };
        self.advance(next).await
    }

    async fn advance(&mut self, next: String) -> Result<(), Stop> {
        if self.checkpoint.as_deref() == Some(next.as_str())
            || (next == "0" && self.checkpoint.is_none())
        {
            return Ok(());
        }
        let r = bounded(
            self.ctx.deadline,
            self.store
                .advance_checkpoint(&self.lane, self.checkpoint.as_deref(), &next),
        )
        .await;
        match r {
            Ok(()) => {
                self.checkpoint = Some(next);
                Ok(())
            }
            // The rows are in the tickerplant; a retry from the old
            // checkpoint sends them again (the documented window).
            Err(e) => Err(Stop::Pending(format!("checkpoint not saved: {e}"))),
        }
    }

    async fn publish(&mut self) -> Result<(), Stop> {
        let opts = self.opts;
        if !self.connected {
            let until = self
                .ctx
                .deadline
                .checked_sub(opts.deadline_margin)
                .unwrap_or(self.ctx.deadline);
            self.link
                .ensure_connected(until)
                .await
                .map_err(|e| Stop::Pending(e.reason()))?;
            self.connected = true;
        }
        let msg_type = match opts.publish {
            PublishMode::Async => MsgType::Async,
            PublishMode::Sync | PublishMode::Pipelined => MsgType::Sync,
        };
        let runs: Vec<(String, usize, Vec<u8>)> = (0..self.builder.runs().len())
            .filter_map(|i| {
                let run = self.builder.runs().get(i)?;
                let mut bytes = Vec::new();
                self.builder
                    .encode_run(i, &opts.upd_func, msg_type, &mut bytes)?;
                Some((run.name.clone(), run.rows, bytes))
            })
            .collect();
        let object = self.object;
        let refused = |table: &str, rows: usize, e: LinkError| match e {
            LinkError::Remote(q) => {
                crate::telemetry::ObjectUpdateRefused {
                    object,
                    table,
                    rows,
                    q_error: &q,
                }
                .emit();
                Stop::Pending(format!("tickerplant refused {rows} rows of {table}: '{q}"))
            }
            e => Stop::Pending(e.reason()),
        };
        let mut result = Ok(());
        match opts.publish {
            PublishMode::Sync => {
                for (table, rows, bytes) in &runs {
                    if let Err(e) = self.link.send_sync(bytes).await {
                        result = Err(refused(table, *rows, e));
                        break;
                    }
                    self.report.messages_sent += 1;
                }
            }
            PublishMode::Pipelined => {
                let msgs: Vec<&[u8]> = runs.iter().map(|r| r.2.as_slice()).collect();
                let results = self.link.send_sync_all(&msgs).await;
                for ((table, rows, _), r) in runs.iter().zip(results) {
                    if let Err(e) = r {
                        result = Err(refused(table, *rows, e));
                        break;
                    }
                    self.report.messages_sent += 1;
                }
            }
            PublishMode::Async => {
                for (table, rows, bytes) in &runs {
                    if let Err(e) = self.link.send_async(bytes).await {
                        result = Err(refused(table, *rows, e));
                        break;
                    }
                    self.report.messages_sent += 1;
                }
                if result.is_ok() {
                    if let Err(e) = self.link.chase().await {
                        result = Err(Stop::Pending(e.reason()));
                    }
                }
            }
        }
        if result.is_err() {
            // A broken link is re-checked before the next object's rows.
            self.connected = false;
            return result;
        }
        for (table, rows, _) in runs {
            self.report.rows += rows;
            *self.report.rows_per_table.entry(table).or_default() += rows;
        }
        self.builder.reset();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::seqno::cmp_seq;

    #[test]
    fn done_compares_above_every_cursor() {
        let furthest = Cursor {
            line: u64::MAX,
            offset: Some(u64::MAX),
        };
        for c in [
            Cursor::START,
            furthest,
            Cursor {
                line: 7,
                offset: None,
            },
        ] {
            assert!(cmp_seq(DONE, &c.checkpoint()).is_gt(), "{c:?}");
        }
    }

    #[test]
    fn csv_by_key() {
        assert!(is_csv("a/b.CSV"));
        assert!(is_csv("b.csv.gz"));
        assert!(!is_csv("b.jsonl.gz"));
        assert!(!is_csv("csv"));
    }
}
