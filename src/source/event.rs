//! Lambda events into `Record`s: the thin dispatcher. The records
//! themselves are made by `source::kinesis` and `source::sqs`, the same
//! constructors the runner and replay use for SDK responses.
//!
//! Each record is parsed on its own, leniently: one record with bad base64
//! must become one bad record (quarantined with its reason), not a failed
//! parse of the whole event that would block the shard. The strict typed
//! events of `aws_lambda_events` fail as a whole on such input, so only the
//! responses and the event generator use them.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::kinesis::{self, Data, KinesisParts};
use super::sqs::{self, SqsParts};
use super::{Record, SourceKind, SourceRecordError};

pub use super::SourceOptions;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("not a Kinesis or SQS event: {0}")]
    Unrecognised(String),
    /// A record the response could not name: the whole batch is retried.
    #[error("record {index}: {reason}")]
    Malformed { index: usize, reason: String },
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "eventSource", default, borrow)]
    event_source: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisRaw {
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    kinesis: KinesisData,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KinesisData {
    sequence_number: Option<String>,
    partition_key: Option<String>,
    data: Option<String>,
    approximate_arrival_timestamp: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsRaw {
    message_id: Option<String>,
    body: Option<String>,
    #[serde(default)]
    attributes: HashMap<String, String>,
    #[serde(default)]
    message_attributes: HashMap<String, SqsAttribute>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
}

/// A message attribute in a Lambda SQS event (`stringValue`, `dataType`…).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SqsAttribute {
    string_value: Option<String>,
}

/// Whether a Lambda event is an S3 notification delivered directly
/// (`Records[0].eventSource` `aws:s3`, or S3's test event) or by
/// EventBridge (`source` `aws.s3`): those name objects to ingest
/// (`s3::notify`), not records.
pub fn is_s3_event(event: &[u8]) -> bool {
    // A stream event says what it is in its first record: no need to read
    // the megabytes after it (they are read once, by `parse_event`).
    if fast::first_event_source(event).is_some_and(|s| s == "aws:kinesis" || s == "aws:sqs") {
        return false;
    }
    #[derive(Deserialize)]
    struct Top<'a> {
        #[serde(rename = "Records", borrow, default)]
        records: Option<Vec<Probe<'a>>>,
        #[serde(borrow, default)]
        source: Option<&'a str>,
        #[serde(rename = "Event", borrow, default)]
        event: Option<&'a str>,
    }
    match serde_json::from_slice::<Top>(event) {
        Ok(t) => {
            t.source == Some("aws.s3")
                || t.event == Some("s3:TestEvent")
                || t.records
                    .as_deref()
                    .and_then(<[Probe]>::first)
                    .and_then(|p| p.event_source)
                    == Some("aws:s3")
        }
        Err(_) => false,
    }
}

/// Parses a Lambda event. An empty batch is `Ok(vec![])`.
pub fn parse_event(event: &[u8], opts: &SourceOptions) -> Result<Vec<Record>, EventError> {
    // The common case in one pass; anything unusual (a missing field, an
    // escaped string, another source, bad JSON) takes the lenient path
    // below, which gives the same records and names each bad one.
    if let Some(records) = fast::kinesis(event, opts) {
        return records;
    }
    parse_lenient(event, opts)
}

/// The lenient reader alone: every event [`parse_event`] reads, read with
/// serde, each bad record named.
fn parse_lenient(event: &[u8], opts: &SourceOptions) -> Result<Vec<Record>, EventError> {
    let env: Envelope = serde_json::from_slice(event)
        .map_err(|e| EventError::Unrecognised(format!("not a JSON object with Records ({e})")))?;
    let raws = env
        .records
        .ok_or_else(|| EventError::Unrecognised("no \"Records\" array".into()))?;
    let Some(first) = raws.first() else {
        return Ok(Vec::new());
    };
    let kind = match serde_json::from_str::<Probe>(first.get())
        .ok()
        .and_then(|p| p.event_source)
    {
        Some("aws:kinesis") => SourceKind::Kinesis,
        Some("aws:sqs") => SourceKind::SqsFifo,
        other => {
            return Err(EventError::Unrecognised(format!(
                "eventSource {other:?} (expected \"aws:kinesis\" or \"aws:sqs\")"
            )))
        }
    };
    let mut out = Vec::with_capacity(raws.len());
    for (index, raw) in raws.iter().enumerate() {
        match kind {
            // One Kinesis record may be a KPL aggregate of many.
            SourceKind::Kinesis => kinesis_record(index, raw, opts, &mut out)?,
            SourceKind::SqsFifo => out.push(sqs_record(index, raw, opts)?),
        }
    }
    Ok(out)
}

/// The one-pass Kinesis reader alone: `None` when the event is not one it
/// reads (then [`parse_event`] reads it leniently). For the tests that
/// hold it to `aws_lambda_events`' typed events; the bridge calls
/// [`parse_event`].
#[doc(hidden)]
pub fn parse_kinesis_one_pass(
    event: &[u8],
    opts: &SourceOptions,
) -> Option<Result<Vec<Record>, EventError>> {
    fast::kinesis(event, opts)
}

fn malformed(index: usize, reason: impl Into<String>) -> EventError {
    EventError::Malformed {
        index,
        reason: reason.into(),
    }
}

fn kinesis_record(
    index: usize,
    raw: &RawValue,
    opts: &SourceOptions,
    out: &mut Vec<Record>,
) -> Result<(), EventError> {
    let r: KinesisRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not a Kinesis record: {e}")))?;
    kinesis_from_event(
        index,
        r.event_source_arn.as_deref().unwrap_or_default(),
        r.event_id.as_deref().unwrap_or_default(),
        r.kinesis.sequence_number.as_deref().unwrap_or_default(),
        r.kinesis.partition_key.as_deref().unwrap_or_default(),
        r.kinesis.data.as_deref().unwrap_or_default(),
        r.kinesis.approximate_arrival_timestamp,
        opts,
        out,
    )
}

/// A Kinesis record of an event: the shard comes from `eventID`
/// (`shardId-…:<sequence>`), the data is base64.
#[allow(clippy::too_many_arguments)]
fn kinesis_from_event(
    index: usize,
    arn: &str,
    event_id: &str,
    seq: &str,
    partition_key: &str,
    data: &str,
    arrival_s: Option<f64>,
    opts: &SourceOptions,
    out: &mut Vec<Record>,
) -> Result<(), EventError> {
    let shard_id = event_id.split_once(':').map_or("", |(s, _)| s);
    let parts = KinesisParts {
        stream_arn: arn,
        shard_id,
        sequence_number: seq,
        partition_key,
        data: Data::Base64(data),
        arrival_ms: kinesis::arrival_ms_of_secs(arrival_s),
    };
    kinesis::records(parts, opts, out).map_err(|e| kinesis_error(index, event_id, e))
}

fn kinesis_error(index: usize, event_id: &str, e: SourceRecordError) -> EventError {
    match e {
        SourceRecordError::NoShard => {
            malformed(index, format!("no shard id in eventID {event_id:?}"))
        }
        e => malformed(index, e.to_string()),
    }
}

fn sqs_record(index: usize, raw: &RawValue, opts: &SourceOptions) -> Result<Record, EventError> {
    let r: SqsRaw = serde_json::from_str(raw.get())
        .map_err(|e| malformed(index, format!("not an SQS message: {e}")))?;
    let attr = |name: &str| r.attributes.get(name).map(String::as_str);
    let parts = SqsParts {
        queue_arn: r.event_source_arn.as_deref().unwrap_or_default(),
        message_id: r.message_id.as_deref().unwrap_or_default(),
        body: r.body.as_deref().unwrap_or_default(),
        group_id: attr("MessageGroupId"),
        sequence_number: attr("SequenceNumber"),
        sent_timestamp: attr("SentTimestamp"),
        pointer_attribute: sqs::pointer_attribute(|name| {
            r.message_attributes
                .get(name)
                .map(|a| a.string_value.as_deref())
        }),
    };
    sqs::record(parts, opts).map_err(|e| malformed(index, e.to_string()))
}

/// The one-pass reader of the common Kinesis event: `{"Records":[…]}` as
/// Lambda writes it, every field of the bridge present and no string
/// escaped. It reads the event's bytes once, borrowing every field, and
/// decodes each record's base64 `data` straight from them. It answers
/// `None` for anything it was not built for (another source, an escape, a
/// missing or repeated field, bad JSON, an empty batch, a record without
/// a shard or a valid sequence number): the lenient path
/// then reads the event, so the records, and the errors, are what that
/// path gives. It is stricter than JSON, never looser: what it accepts
/// serde_json accepts too, with the same meaning.
mod fast {
    use super::{kinesis, EventError, KinesisParts, Record, SourceOptions};
    use crate::bytes_eq::{bytes_eq, repeats_string, str_eq};
    use crate::schema::json::string_stop;

    // Records read by a layout on this thread, for the tests to see that
    // the layout path was taken.
    #[cfg(test)]
    thread_local! {
        pub(super) static LAID_OUT: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Containers nested deeper than this inside a skipped value send the
    /// event to the lenient path (serde_json's own limit is 128).
    const MAX_DEPTH: usize = 64;

    pub(super) fn kinesis(
        event: &[u8],
        opts: &SourceOptions,
    ) -> Option<Result<Vec<Record>, EventError>> {
        let mut s = Scan::new(event)?;
        s.eat(b'{')?;
        if s.str()? != "Records" {
            return None;
        }
        s.eat(b':')?;
        s.eat(b'[')?;
        // About 500 bytes of event per record in Lambda's layout.
        let mut out = Vec::with_capacity(event.len() / 512 + 1);
        // Consecutive records of one shard share a lane: its text is made
        // once and shared.
        let mut lane: Option<(&str, &str, &str, std::sync::Arc<str>)> = None;
        let mut seen = Seen::default();
        let mut layout: Option<Layout<'_>> = None;
        let mut index = 0;
        loop {
            s.peek()?;
            let start = s.i;
            // A record laid out as the one the layout was taken from is
            // read by it; any other is read member by member, and its
            // layout is taken for the records after it.
            let r = match layout.as_ref().and_then(|l| l.read(&mut s)) {
                Some(r) => {
                    #[cfg(test)]
                    LAID_OUT.with(|n| n.set(n.get() + 1));
                    r
                }
                None => {
                    let r = s.record(&mut seen)?;
                    layout = Layout::of(s.b, start, s.i, &r);
                    r
                }
            };
            if index == 0 && r.event_source != Some("aws:kinesis") {
                return None;
            }
            let shard_id = memchr::memchr(b':', r.event_id.as_bytes())
                .and_then(|at| r.event_id.get(..at))
                .unwrap_or("");
            let parts = KinesisParts {
                stream_arn: r.arn,
                shard_id,
                sequence_number: r.seq,
                partition_key: r.partition_key,
                data: kinesis::Data::Bytes(&[]),
                arrival_ms: kinesis::arrival_ms_of_secs(r.arrival_s),
            };
            let pk = if opts.lanes_by_partition_key {
                r.partition_key
            } else {
                ""
            };
            let same = lane.as_ref().is_some_and(|(a, sh, k, _)| {
                str_eq(a, r.arn) && str_eq(sh, shard_id) && str_eq(k, pk)
            });
            let lane_text = if same && super::super::seqno::is_valid_seq(r.seq) {
                lane.as_ref().map(|l| l.3.clone()).unwrap_or_default()
            } else {
                match kinesis::lane_of(&parts, opts) {
                    Ok(text) => {
                        let text: std::sync::Arc<str> = text.into();
                        lane = Some((r.arn, shard_id, pk, text.clone()));
                        text
                    }
                    // The lenient path names the record, after checking the
                    // whole event (bad JSON further on is the error then).
                    Err(_) => return None,
                }
            };
            let payload = match kinesis::decode_data(r.data) {
                Ok(bytes) => Ok(bytes),
                // Not base64: a defect of this record, if the text is what
                // the JSON string holds (no escape, valid UTF-8).
                Err(_) => Err(plain_text(r.data)?),
            };
            kinesis::records_of(parts, payload, lane_text, &mut out);
            index += 1;
            match s.next_byte()? {
                b',' => continue,
                b']' => break,
                _ => return None,
            }
        }
        s.eat(b'}')?;
        s.end()?;
        Some(Ok(out))
    }

    /// `Records[0].eventSource` when the event starts as a Lambda stream
    /// event does; `None` when it does not (or that field comes too late
    /// or escaped): the caller then reads the whole event.
    pub(super) fn first_event_source(event: &[u8]) -> Option<&str> {
        // The first record is near the start: only that much is checked.
        let head = event.get(..event.len().min(64 * 1024))?;
        let text = match std::str::from_utf8(head) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(head.get(..e.valid_up_to())?).ok()?,
        };
        let mut s = Scan {
            text,
            b: text.as_bytes(),
            i: 0,
        };
        s.eat(b'{')?;
        if s.str()? != "Records" {
            return None;
        }
        s.eat(b':')?;
        s.eat(b'[')?;
        s.eat(b'{')?;
        loop {
            let key = s.str()?;
            s.eat(b':')?;
            if key == "eventSource" {
                return s.str();
            }
            s.skip(0)?;
            if s.next_byte()? != b',' {
                return None;
            }
        }
    }

    /// A string's raw text if it is exactly the string's value (no
    /// backslash, no control character, valid UTF-8).
    fn plain_text(raw: &[u8]) -> Option<&str> {
        if raw.iter().any(|&c| c == b'\\' || c < 0x20) {
            return None;
        }
        std::str::from_utf8(raw).ok()
    }

    /// Members of a record object, or of its `kinesis` object, that the
    /// previous record's strings are remembered for, by place.
    const REMEMBERED: usize = 16;

    /// The previous record's plain strings (keys, and values that were
    /// strings), by member place; `""` where there was none. Records of an
    /// event repeat their layout, their keys and most of their values (the
    /// ARNs, the region, the event name): a string whose bytes are the
    /// previous one's at its place, closing quote included, is that plain
    /// string again and is compared rather than scanned.
    #[derive(Default)]
    struct Seen<'a> {
        record: Strings<'a>,
        kinesis: Strings<'a>,
    }

    #[derive(Default)]
    struct Strings<'a> {
        keys: [&'a str; REMEMBERED],
        values: [&'a str; REMEMBERED],
    }

    /// The fields of one record the bridge reads.
    struct Fields<'a> {
        event_source: Option<&'a str>,
        event_id: &'a str,
        arn: &'a str,
        seq: &'a str,
        partition_key: &'a str,
        data: &'a [u8],
        arrival_s: Option<f64>,
        /// The arrival time's number as written (`None` for `null`).
        arrival_text: Option<&'a str>,
    }

    /// The values of a record that differ from one record to the next.
    #[derive(Clone, Copy)]
    enum Varying {
        EventId,
        Seq,
        PartitionKey,
        Data,
        Arrival,
    }

    /// A record's text with its varying values cut out: what comes before
    /// each of them, in order, and after the last. Lambda writes every
    /// record of an event the same way, so after the first record all
    /// that differs is those five values: a record whose text around them
    /// is this text, byte for byte, has the members, the order, the
    /// constant values (ARN, region, event source) and the validity of
    /// the record the layout was taken from, and only those five values
    /// need reading. Strings among them must be plain (no escape, no
    /// control character) and the arrival time a number; anything else
    /// makes the record one to read member by member. `data` alone is
    /// read up to the next quote, as the member-by-member reader reads it:
    /// its base64 decoding checks every byte, and a backslash in it sends
    /// the whole event to the lenient reader.
    struct Layout<'a> {
        parts: [(&'a [u8], Varying); 5],
        tail: &'a [u8],
        event_source: Option<&'a str>,
        arn: &'a str,
    }

    impl<'a> Layout<'a> {
        /// The layout of record `r`, read from `b[start..end]`; `None` when
        /// it has no arrival time to find again (`null`).
        fn of(b: &'a [u8], start: usize, end: usize, r: &Fields<'a>) -> Option<Layout<'a>> {
            // Every field is a slice of `b`: its place is its offset.
            let span = |s: &[u8]| {
                let at = (s.as_ptr() as usize).checked_sub(b.as_ptr() as usize)?;
                (at + s.len() <= b.len()).then_some((at, s.len()))
            };
            let mut varying = [
                (span(r.event_id.as_bytes())?, Varying::EventId),
                (span(r.seq.as_bytes())?, Varying::Seq),
                (span(r.partition_key.as_bytes())?, Varying::PartitionKey),
                (span(r.data)?, Varying::Data),
                (span(r.arrival_text?.as_bytes())?, Varying::Arrival),
            ];
            varying.sort_unstable_by_key(|((at, _), _)| *at);
            let mut parts = [(&b[..0], Varying::EventId); 5];
            let mut from = start;
            for (part, ((at, len), what)) in parts.iter_mut().zip(varying) {
                *part = (b.get(from..at)?, what);
                from = at + len;
            }
            Some(Layout {
                parts,
                tail: b.get(from..end)?,
                event_source: r.event_source,
                arn: r.arn,
            })
        }

        /// The record at `s` if it is laid out as this one (`s` is then
        /// past it); else `None`, and `s` is where it was.
        #[inline]
        fn read(&self, s: &mut Scan<'a>) -> Option<Fields<'a>> {
            let start = s.i;
            let fields = self.read_at(s);
            if fields.is_none() {
                s.i = start;
            }
            fields
        }

        #[inline]
        fn read_at(&self, s: &mut Scan<'a>) -> Option<Fields<'a>> {
            let mut f = Fields {
                event_source: self.event_source,
                arn: self.arn,
                event_id: "",
                seq: "",
                partition_key: "",
                data: &[],
                arrival_s: None,
                arrival_text: None,
            };
            for &(text, what) in &self.parts {
                s.literal(text)?;
                match what {
                    Varying::EventId => f.event_id = s.plain()?,
                    Varying::Seq => f.seq = s.plain()?,
                    Varying::PartitionKey => f.partition_key = s.plain()?,
                    Varying::Data => f.data = s.up_to_quote()?,
                    Varying::Arrival => {
                        let text = s.number()?;
                        f.arrival_s = Some(f64_of(text)?);
                        f.arrival_text = Some(text);
                    }
                }
            }
            s.literal(self.tail)?;
            Some(f)
        }
    }

    /// A cursor over the event, checked to be UTF-8 once as a whole (so a
    /// string between two quotes is valid UTF-8 without a look per string).
    struct Scan<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Scan<'a> {
        fn new(event: &'a [u8]) -> Option<Scan<'a>> {
            let text = simdutf8::basic::from_utf8(event).ok()?;
            Some(Scan {
                text,
                b: event,
                i: 0,
            })
        }
    }

    impl<'a> Scan<'a> {
        #[inline]
        fn peek(&mut self) -> Option<u8> {
            while let Some(&c) = self.b.get(self.i) {
                if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                    return Some(c);
                }
                self.i += 1;
            }
            None
        }

        #[inline]
        fn next_byte(&mut self) -> Option<u8> {
            let c = self.peek()?;
            self.i += 1;
            Some(c)
        }

        #[inline]
        fn eat(&mut self, want: u8) -> Option<()> {
            (self.next_byte()? == want).then_some(())
        }

        /// Nothing but whitespace left.
        fn end(&mut self) -> Option<()> {
            self.peek().is_none().then_some(())
        }

        /// A string with no escape: its text.
        #[inline]
        fn str(&mut self) -> Option<&'a str> {
            self.eat(b'"')?;
            let text = self.plain()?;
            self.i += 1;
            Some(text)
        }

        /// A string with no escape, as [`Scan::str`]; `seen` is the string
        /// at this place in the previous record, and becomes this one.
        #[inline]
        fn str_seen(&mut self, seen: Option<&mut &'a str>) -> Option<&'a str> {
            let Some(seen) = seen else {
                return self.str();
            };
            self.eat(b'"')?;
            let start = self.i;
            let rest = self.b.get(start..)?;
            let n = seen.len();
            if repeats_string(rest, seen.as_bytes()) {
                self.i += n + 1;
                return self.text.get(start..start + n);
            }
            self.i -= 1;
            let text = self.str()?;
            *seen = text;
            Some(text)
        }

        /// Any value, as [`Scan::skip`]; a plain string that is the
        /// previous record's at this place is compared, not scanned.
        #[inline]
        fn skip_seen(&mut self, seen: Option<&mut &'a str>, depth: usize) -> Option<()> {
            if let Some(seen) = seen {
                if self.peek()? == b'"' {
                    let at = self.i;
                    if self.str_seen(Some(seen)).is_some() {
                        return Some(());
                    }
                    // Not a plain string (an escape): checked in full.
                    self.i = at;
                }
            }
            self.skip(depth)
        }

        /// The text of a plain string (no escape, no control character)
        /// whose opening quote was just passed, up to its closing quote,
        /// which is left to read.
        #[inline]
        fn plain(&mut self) -> Option<&'a str> {
            let start = self.i;
            let rest = self.b.get(start..)?;
            let len = string_stop(rest);
            if rest.get(len) != Some(&b'"') {
                return None;
            }
            self.i += len;
            self.text.get(start..start + len)
        }

        /// The bytes from here to the next quote, unchecked; the quote is
        /// left to read. How `data` is read, by [`Scan::raw_str`] and by
        /// layouts alike.
        #[inline]
        fn up_to_quote(&mut self) -> Option<&'a [u8]> {
            let rest = self.b.get(self.i..)?;
            let len = memchr::memchr(b'"', rest)?;
            self.i += len;
            rest.get(..len)
        }

        /// A string's raw bytes up to its closing quote, unchecked: for
        /// `data`, whose base64 decoding checks every byte (an escape, a
        /// control character or a non-ASCII byte is not base64).
        #[inline]
        fn raw_str(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let bytes = self.up_to_quote()?;
            self.i += 1;
            Some(bytes)
        }

        /// A string or null.
        fn opt_str(&mut self) -> Option<Option<&'a str>> {
            if self.peek()? == b'n' {
                self.literal(b"null")?;
                return Some(None);
            }
            self.str().map(Some)
        }

        /// `word` exactly, next: a JSON literal, or the text of a layout.
        #[inline]
        fn literal(&mut self, word: &[u8]) -> Option<()> {
            let end = self.i.checked_add(word.len())?;
            bytes_eq(self.b.get(self.i..end)?, word).then_some(())?;
            self.i = end;
            Some(())
        }

        /// A JSON number's text (RFC 8259 grammar).
        fn number(&mut self) -> Option<&'a str> {
            self.peek()?;
            let start = self.i;
            let digits = |s: &mut Self| {
                let from = s.i;
                while s.b.get(s.i).is_some_and(u8::is_ascii_digit) {
                    s.i += 1;
                }
                (s.i > from).then_some(())
            };
            if self.b.get(self.i) == Some(&b'-') {
                self.i += 1;
            }
            match self.b.get(self.i)? {
                b'0' => self.i += 1,
                b'1'..=b'9' => digits(self)?,
                _ => return None,
            }
            if self.b.get(self.i) == Some(&b'.') {
                self.i += 1;
                digits(self)?;
            }
            if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                digits(self)?;
            }
            self.text.get(start..self.i)
        }

        /// A number or null, as serde_json reads it into an `f64`, and
        /// the number's text.
        fn opt_f64(&mut self) -> Option<Option<(f64, &'a str)>> {
            if self.peek()? == b'n' {
                self.literal(b"null")?;
                return Some(None);
            }
            let text = self.number()?;
            Some(Some((f64_of(text)?, text)))
        }

        /// Any JSON value, checked and passed over.
        fn skip(&mut self, depth: usize) -> Option<()> {
            match self.peek()? {
                b'"' => self.skip_str(),
                b'{' | b'[' => {
                    if depth >= MAX_DEPTH {
                        return None;
                    }
                    let object = self.next_byte()? == b'{';
                    let close = if object { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        if object {
                            self.skip_str()?;
                            self.eat(b':')?;
                        }
                        self.skip(depth + 1)?;
                        match self.next_byte()? {
                            b',' => continue,
                            c if c == close => return Some(()),
                            _ => return None,
                        }
                    }
                }
                b't' => self.literal(b"true"),
                b'f' => self.literal(b"false"),
                b'n' => self.literal(b"null"),
                _ => self.number().map(drop),
            }
        }

        /// A string with any valid escapes, passed over.
        fn skip_str(&mut self) -> Option<()> {
            self.eat(b'"')?;
            loop {
                let rest = self.b.get(self.i..)?;
                let len = string_stop(rest);
                self.i += len + 1;
                match rest.get(len)? {
                    b'"' => return Some(()),
                    b'\\' => {}
                    _ => return None,
                }
                match *self.b.get(self.i)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                    b'u' => {
                        let hex = self.b.get(self.i + 1..self.i + 5)?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return None;
                        }
                        self.i += 5;
                    }
                    _ => return None,
                }
            }
        }

        /// A non-empty object: `each` reads the value of every member, the
        /// parser positioned after its `key:`.
        #[inline]
        fn members(
            &mut self,
            seen: &mut Strings<'a>,
            mut each: impl FnMut(&mut Self, &'a str, Option<&mut &'a str>) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            let mut place = 0;
            loop {
                let key = self.str_seen(seen.keys.get_mut(place))?;
                self.eat(b':')?;
                each(self, key, seen.values.get_mut(place))?;
                place += 1;
                match self.next_byte()? {
                    b',' => continue,
                    b'}' => return Some(()),
                    _ => return None,
                }
            }
        }

        /// One record object; the fields the bridge reads must each be
        /// there once.
        fn record(&mut self, seen: &mut Seen<'a>) -> Option<Fields<'a>> {
            let (mut source, mut id, mut arn, mut kin) = (None, None, None, None);
            let Seen { record, kinesis } = seen;
            self.members(record, |p, key, value| match key {
                "eventSource" => once(&mut source, p.opt_str()?),
                "eventID" => once(&mut id, p.str()?),
                "eventSourceARN" => once(&mut arn, p.str_seen(value)?),
                "kinesis" => once(&mut kin, p.kinesis(kinesis)?),
                _ => p.skip_seen(value, 1),
            })?;
            let (seq, partition_key, data, arrival) = kin?;
            Some(Fields {
                event_source: source.flatten(),
                event_id: id?,
                arn: arn?,
                seq,
                partition_key,
                data,
                arrival_s: arrival.map(|(v, _)| v),
                arrival_text: arrival.map(|(_, text)| text),
            })
        }

        /// The `kinesis` object of a record.
        #[allow(clippy::type_complexity)]
        fn kinesis(
            &mut self,
            seen: &mut Strings<'a>,
        ) -> Option<(&'a str, &'a str, &'a [u8], Option<(f64, &'a str)>)> {
            let (mut seq, mut pk, mut data, mut arrival) = (None, None, None, None);
            self.members(seen, |p, key, value| match key {
                "sequenceNumber" => once(&mut seq, p.str()?),
                "partitionKey" => once(&mut pk, p.str_seen(value)?),
                "data" => once(&mut data, p.raw_str()?),
                "approximateArrivalTimestamp" => once(&mut arrival, p.opt_f64()?),
                _ => p.skip_seen(value, 2),
            })?;
            Some((seq?, pk?, data?, arrival.flatten()))
        }
    }

    /// A JSON number's text as serde_json reads it into an `f64`.
    fn f64_of(text: &str) -> Option<f64> {
        match exact_f64(text) {
            Some(v) => Some(v),
            None => serde_json::from_str::<f64>(text).ok(),
        }
    }

    /// Sets a field seen for the first time (serde rejects a repeated one).
    #[inline]
    fn once<T>(slot: &mut Option<T>, value: T) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        Some(())
    }

    /// Powers of ten a double holds exactly.
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];

    /// A plain decimal (`-?digits(.digits)?`) whose digits fit in 53 bits,
    /// as one correctly rounded division: what serde_json computes for it
    /// (with or without its `float_roundtrip` feature), without the call.
    fn exact_f64(text: &str) -> Option<f64> {
        let (negative, body) = match text.as_bytes().split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, text.as_bytes()),
        };
        // One pass (every record's arrival time comes here): fifteen
        // digits and a point at most.
        if body.len() > 16 {
            return None;
        }
        let mut m: u64 = 0;
        let mut point = None;
        for (i, &c) in body.iter().enumerate() {
            if c.is_ascii_digit() {
                m = m * 10 + u64::from(c - b'0');
            } else if c == b'.' && point.is_none() {
                point = Some(i);
            } else {
                return None;
            }
        }
        let digits = body.len() - usize::from(point.is_some());
        if digits > 15 {
            return None;
        }
        let frac = point.map_or(0, |p| body.len() - p - 1);
        let v = m as f64 / POW10.get(frac)?;
        Some(if negative { -v } else { v })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn plain_decimals_read_as_serde_json_reads_them() {
            for text in [
                "1545084650.987",
                "1764000000.123",
                "0",
                "-0",
                "-12.5",
                "0.1",
                "1764000000.1239",
                "999999999999999",
                "123456789.123456",
                "1e3",
                "1545084650.98700000000000000001",
                "9999999999999999",
                "1234567890.12345",
                "0.000000000000001",
                "-0.00000000000001",
                "12345678901234.5",
            ] {
                let serde: f64 = serde_json::from_str(text).unwrap();
                let mut s = Scan::new(text.as_bytes()).unwrap();
                let ours = s.opt_f64().unwrap().unwrap();
                assert_eq!(ours.0.to_bits(), serde.to_bits(), "{text}");
            }
        }

        #[test]
        fn skipped_values_are_checked() {
            let ok = [
                r#"{"a":[1,2.5e-3,true,false,null,"x\u00e9\n"],"b":{}}"#,
                "[]",
                r#""caf\u00e9 \"q\" \\ \/""#,
                "-0.0E+1",
            ];
            for text in ok {
                serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap();
                let mut s = Scan::new(text.as_bytes()).unwrap();
                assert!(s.skip(0).is_some() && s.end().is_some(), "{text}");
            }
            let bad = [
                "[1,]",
                "{\"a\"}",
                "01",
                "1.",
                "\"\\x\"",
                "tru",
                "[",
                "\"a\u{1}\"",
                "-",
                "1e",
                "\"\\u12g4\"",
            ];
            for text in bad {
                let mut s = Scan::new(text.as_bytes()).unwrap();
                assert!(s.skip(0).is_none() || s.end().is_none(), "{text}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEQ1: &str = "49590338271490256608559692538361571095921575989136588898";
    const SEQ2: &str = "49590338271490256608559692540925702759324208523137515618";

    fn kinesis_event(data: &[&str]) -> String {
        let recs: Vec<String> = data
            .iter()
            .zip([SEQ1, SEQ2])
            .map(|(d, s)| {
                format!(
                    r#"{{"kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"AAPL","sequenceNumber":"{s}","data":"{d}","approximateArrivalTimestamp":1545084650.987}},"eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:{s}","eventName":"aws:kinesis:record","invokeIdentityArn":"arn:aws:iam::123456789012:role/lambda-role","awsRegion":"us-east-2","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/trades"}}"#
                )
            })
            .collect();
        format!(r#"{{"Records":[{}]}}"#, recs.join(","))
    }

    #[test]
    fn kinesis_records_decode_base64_and_keep_bad_ones_as_defects() {
        let ev = kinesis_event(&["eyJhIjoxfQ==", "!!!not base64"]);
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].payload, br#"{"a":1}"#);
        assert_eq!(
            &*recs[0].lane,
            "arn:aws:kinesis:us-east-2:123456789012:stream/trades/shardId-000000000006"
        );
        assert_eq!(&*recs[0].failure_id, SEQ1);
        assert_eq!(recs[0].arrival_ms, 1_545_084_650_987);
        assert!(recs[0].defect.is_none());
        assert!(recs[1].defect.as_deref().unwrap_or("").contains("base64"));
        let by_key = SourceOptions {
            lanes_by_partition_key: true,
            ..SourceOptions::default()
        };
        let recs = parse_event(ev.as_bytes(), &by_key).unwrap();
        assert!(recs[0].lane.ends_with("shardId-000000000006#AAPL"));
    }

    #[test]
    fn unusual_kinesis_events_parse_to_the_same_records_on_the_lenient_path() {
        let plain = kinesis_event(&["eyJhIjoxfQ==", "e30="]);
        let want = parse_event(plain.as_bytes(), &SourceOptions::default()).unwrap();
        // An escaped slash, or a record without a partition key, is not for
        // the one-pass reader; the records must come out the same.
        let escaped = plain.replace("stream/trades", "stream\\/trades");
        assert_ne!(escaped, plain);
        let no_pk = plain.replacen(r#""partitionKey":"AAPL","#, "", 1);
        assert_ne!(no_pk, plain);
        assert_eq!(
            parse_event(escaped.as_bytes(), &SourceOptions::default()).unwrap(),
            want
        );
        let got = parse_event(no_pk.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(got, want);
    }

    /// The one-pass reader compares strings with the previous record's at
    /// the same place: strings that are longer or shorter versions of
    /// those, escaped ones, empty ones and moved members must all read as
    /// the lenient reader reads them.
    #[test]
    fn strings_like_the_previous_records_read_as_the_lenient_reader_reads_them() {
        let rec = |arn: &str,
                   region: &str,
                   role: &str,
                   pk: &str,
                   name: &str,
                   kinesis_first: bool| {
            let kinesis = format!(
                r#""kinesis":{{"kinesisSchemaVersion":"1.0","partitionKey":"{pk}","sequenceNumber":"{SEQ1}","data":"e30=","approximateArrivalTimestamp":1545084650.987}}"#
            );
            let rest = format!(
                r#""eventSource":"aws:kinesis","eventVersion":"1.0","eventID":"shardId-000000000006:{SEQ1}","eventName":"{name}","invokeIdentityArn":"{role}","awsRegion":"{region}","eventSourceARN":"{arn}""#
            );
            if kinesis_first {
                format!("{{{kinesis},{rest}}}")
            } else {
                format!("{{{rest},{kinesis}}}")
            }
        };
        let arn = "arn:aws:kinesis:us-east-2:123456789012:stream/trades";
        let role = "arn:aws:iam::123456789012:role/lambda-role";
        let records = [
            rec(arn, "us-east-2", role, "AAPL", "aws:kinesis:record", true),
            rec(
                &format!("{arn}2"),
                "us-east-2x",
                r"\u0061rn:aws:iam::1:role/r",
                "AAPL",
                "",
                true,
            ),
            rec(arn, "us-east", role, "AAP", "aws:kinesis:record", false),
            rec(&arn[..arn.len() - 1], "", role, "", "x", false),
            rec(arn, "us-east-2", role, "AAPL", "aws:kinesis:record", true),
        ];
        let plain = format!(r#"{{"Records":[{}]}}"#, records.join(","));
        let opts = SourceOptions::default();
        let one_pass = parse_kinesis_one_pass(plain.as_bytes(), &opts)
            .expect("the one-pass reader reads it")
            .unwrap();
        // An escaped slash in the last record's ARN sends the whole event to
        // the lenient reader, and unescapes to the same text.
        let last = plain.rfind("stream/").unwrap();
        let escaped = format!("{}stream\\/{}", &plain[..last], &plain[last + 7..]);
        assert!(parse_kinesis_one_pass(escaped.as_bytes(), &opts).is_none());
        let lenient = parse_event(escaped.as_bytes(), &opts).unwrap();
        assert_eq!(one_pass, lenient);
        assert_eq!(one_pass.len(), 5);
        let arns: Vec<&str> = one_pass.iter().map(|r| &*r.source_arn).collect();
        assert_eq!(
            arns,
            [arn, &format!("{arn}2"), arn, &arn[..arn.len() - 1], arn]
        );
    }

    /// After the first record, a record laid out as the one before it is
    /// read by that layout (only its five varying values are scanned).
    /// Every form those values take, and records that differ anywhere
    /// else, must read as the lenient reader reads them; a record that
    /// differs makes the layout its own for the records after it.
    #[test]
    fn records_laid_out_alike_read_as_the_lenient_reader_reads_them() {
        let rec = |region: &str, pk: &str, seq: &str, data: &str, arrival: &str| {
            format!(
                r#"{{"awsRegion":"{region}","eventID":"shardId-000000000006:{seq}","eventName":"aws:kinesis:record","eventSource":"aws:kinesis","eventSourceARN":"arn:aws:kinesis:us-east-2:123456789012:stream/trades","kinesis":{{"approximateArrivalTimestamp":{arrival},"data":"{data}","partitionKey":"{pk}","sequenceNumber":"{seq}"}}}}"#
            )
        };
        let first = rec("us-east-2", "AAPL", SEQ1, "e30=", "1545084650.987");
        // Laid out as `first`: only the varying values differ.
        let alike = [
            rec("us-east-2", "MSFT", SEQ2, "eyJhIjoxfQ==", "1545084650.988"),
            rec("us-east-2", "", "7", "", "1545084650"),
            rec("us-east-2", "日本株 \u{e9}", SEQ1, "!!!not base64", "-0"),
            rec("us-east-2", "AAPL", SEQ2, "e30=", "1.545084650987e9"),
            rec(
                "us-east-2",
                "AAPL",
                SEQ2,
                "e30=",
                "1545084650.98700000000000000001",
            ),
        ];
        // Read member by member: a varying value the layout does not take,
        // or a difference anywhere else.
        let unlike = [
            rec("us-east-1", "AAPL", SEQ2, "e30=", "1545084650.987"),
            rec("us-east-2", "AAPL", SEQ2, "e30=", "1545084650.987 "),
            first.replace(r#""eventName""#, r#" "eventName""#),
            first.replace(r#""awsRegion":"us-east-2","#, ""),
            first.replace(r#""awsRegion""#, r#""extra":[1,{"a":null}],"awsRegion""#),
            first.replace(
                r#""data":"e30=","partitionKey":"AAPL","#,
                r#""partitionKey":"AAPL","data":"e30=","#,
            ),
        ];
        let opts = SourceOptions::default();
        let read = |records: &[&String]| {
            let joined: Vec<&str> = records.iter().map(|r| r.as_str()).collect();
            let event = format!(r#"{{"Records":[{}]}}"#, joined.join(","));
            let before = fast::LAID_OUT.with(|n| n.get());
            let one_pass = parse_kinesis_one_pass(event.as_bytes(), &opts)
                .unwrap_or_else(|| panic!("the one-pass reader declined {event}"))
                .unwrap();
            let lenient = parse_lenient(event.as_bytes(), &opts).unwrap();
            assert_eq!(one_pass, lenient, "{event}");
            assert_eq!(one_pass.len(), records.len());
            fast::LAID_OUT.with(|n| n.get()) - before
        };
        for r in &alike {
            assert_eq!(read(&[&first, r, r, &first]), 3, "{r}");
        }
        for r in &unlike {
            assert_ne!(r, &first);
            // Not read by the first one's layout; the third record is laid
            // out as the second, and the fourth is unlike the third.
            assert_eq!(read(&[&first, r, r, &first]), 1, "{r}");
        }
        // A record without an arrival time has no layout: the one after it
        // is read member by member too.
        let no_arrival = rec("us-east-2", "AAPL", SEQ2, "e30=", "null");
        assert_eq!(read(&[&first, &no_arrival, &no_arrival, &first]), 0);
        // Data with an escaped quote (with text like the rest of the layout
        // after it, or not): the whole event goes to the lenient reader.
        let by_key = SourceOptions {
            lanes_by_partition_key: true,
            ..SourceOptions::default()
        };
        for (data, json) in [(r#"x\"y"#, true), (r#"x\","partitionKey":"EVIL"#, false)] {
            let forged = rec("us-east-2", "AAPL", SEQ2, data, "1545084650.987");
            let event = format!(r#"{{"Records":[{first},{forged}]}}"#);
            assert!(parse_kinesis_one_pass(event.as_bytes(), &by_key).is_none());
            let read = parse_lenient(event.as_bytes(), &by_key);
            assert_eq!(read.is_ok(), json, "{event}");
            match read {
                Ok(records) => {
                    assert!(records[1].lane.ends_with("#AAPL"), "{}", records[1].lane);
                    assert!(records[1].defect.is_some());
                }
                // Not JSON: the text after the escaped quote is outside
                // the string.
                Err(e) => assert!(e.to_string().contains("not a JSON object"), "{e}"),
            }
        }
        // One layout for a whole event of alike records.
        let mut all = vec![&first];
        all.extend(alike.iter());
        all.extend(alike.iter());
        assert_eq!(read(&all), 10);
    }

    #[test]
    fn sqs_fifo_lanes_are_message_groups() {
        let ev = r#"{"Records":[
          {"messageId":"m1","receiptHandle":"h","body":"{\"x\":1}","attributes":{"MessageGroupId":"g1","SequenceNumber":"18849496460467696128","SentTimestamp":"1545082649183","MessageDeduplicationId":"d1"},"messageAttributes":{},"md5OfBody":"x","eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:q.fifo","awsRegion":"us-east-2"},
          {"messageId":"m2","body":"b","attributes":{},"eventSource":"aws:sqs","eventSourceARN":"arn:aws:sqs:us-east-2:123456789012:std"}]}"#;
        let recs = parse_event(ev.as_bytes(), &SourceOptions::default()).unwrap();
        assert_eq!(
            &*recs[0].lane,
            "arn:aws:sqs:us-east-2:123456789012:q.fifo/g1"
        );
        assert_eq!(recs[0].message_key.as_deref(), Some("msg#m1"));
        assert_eq!(&*recs[0].failure_id, "m1");
        assert_eq!(recs[0].arrival_ms, 1_545_082_649_183);
        assert_eq!(&*recs[1].lane, "arn:aws:sqs:us-east-2:123456789012:std/m2");
    }

    #[test]
    fn unknown_and_unnameable_events_are_errors() {
        assert!(matches!(
            parse_event(
                br#"{"Records":[{"eventSource":"aws:s3"}]}"#,
                &SourceOptions::default()
            ),
            Err(EventError::Unrecognised(_))
        ));
        assert!(matches!(
            parse_event(b"[1,2]", &SourceOptions::default()),
            Err(EventError::Unrecognised(_))
        ));
        assert_eq!(
            parse_event(br#"{"Records":[]}"#, &SourceOptions::default()),
            Ok(vec![])
        );
        let no_seq = r#"{"Records":[{"eventSource":"aws:kinesis","eventID":"shardId-1:1","kinesis":{"data":""}}]}"#;
        assert!(matches!(
            parse_event(no_seq.as_bytes(), &SourceOptions::default()),
            Err(EventError::Malformed { index: 0, .. })
        ));
    }
}
