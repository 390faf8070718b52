//! An object's bytes as numbered lines, with memory bounded by the longest
//! line allowed, whatever the object's size.
//!
//! Bytes arrive in chunks from a [`ChunkSource`] (an S3 body, or a test's
//! slices), are inflated when gzip, and are split at `\n` (a `\r` before it
//! is dropped). A line longer than [`LineOptions::max_line`] is reported as
//! [`Item::TooLong`] with its number and skipped without being held: its
//! bytes are dropped as they arrive. Lines are numbered from 1; every `\n`
//! ends one, so empty lines count (and are returned, for the caller to
//! skip) and numbers match `sed -n Np`.
//!
//! A [`Cursor`] is where a confirmed prefix of the object ends: the number
//! of the last confirmed line and, for an object read as stored (not
//! inflated), the byte offset just after it, so a resume can ask S3 for the
//! rest only (a `Range`). A gzip object is re-read from the start and the
//! confirmed lines skipped.

use std::future::Future;

use super::error::{ErrorKind, S3Error};
use super::gzip::GzipDecoder;
use super::ObjectRef;

/// The most bytes one fill adds to the line buffer.
const FILL: usize = 64 << 10;

/// Decimal digits of the offset in a packed checkpoint (`u64::MAX` has 20).
const OFFSET_DIGITS: usize = 20;

/// Where a confirmed prefix of an object ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The last confirmed line (0: none).
    pub line: u64,
    /// The byte offset just after that line, when the object is read as
    /// stored (so a resume can start there); `None` for gzip objects.
    pub offset: Option<u64>,
}

impl Cursor {
    pub const START: Cursor = Cursor {
        line: 0,
        offset: None,
    };

    /// The cursor as one decimal string, so the dedupe store's lane
    /// checkpoint (compared with `source::seqno::cmp_seq`, numerically)
    /// keeps it: the line number, then the offset in 20 digits (0 for
    /// none). Lines and offsets grow together, so numeric order is cursor
    /// order. `0` is the start.
    pub fn checkpoint(&self) -> String {
        if self.line == 0 {
            return "0".into();
        }
        format!(
            "{}{:0width$}",
            self.line,
            self.offset.unwrap_or(0),
            width = OFFSET_DIGITS
        )
    }

    /// Reads [`Cursor::checkpoint`]'s form; a plain number of up to 20
    /// digits is a line number without offset.
    pub fn from_checkpoint(s: &str) -> Result<Cursor, String> {
        let bad = || format!("checkpoint {s:?} is not a line cursor");
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if s.len() <= OFFSET_DIGITS {
            return Ok(Cursor {
                line: s.parse().map_err(|_| bad())?,
                offset: None,
            });
        }
        let (line, offset) = s.split_at(s.len() - OFFSET_DIGITS);
        let offset: u64 = offset.parse().map_err(|_| bad())?;
        Ok(Cursor {
            line: line.parse().map_err(|_| bad())?,
            offset: (offset > 0).then_some(offset),
        })
    }
}

/// Where an object's bytes come from, chunk by chunk.
pub trait ChunkSource: Send {
    type Chunk: AsRef<[u8]> + Send;
    /// The next chunk; `None` at the end.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Self::Chunk>, S3Error>> + Send;
}

/// Chunks from memory (tests, and objects already in hand).
pub struct SliceChunks<T> {
    chunks: std::vec::IntoIter<T>,
}

impl<T: AsRef<[u8]> + Send> SliceChunks<T> {
    pub fn new(chunks: Vec<T>) -> SliceChunks<T> {
        SliceChunks {
            chunks: chunks.into_iter(),
        }
    }
}

impl<T: AsRef<[u8]> + Send> ChunkSource for SliceChunks<T> {
    type Chunk = T;
    async fn next_chunk(&mut self) -> Result<Option<T>, S3Error> {
        Ok(self.chunks.next())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineOptions {
    /// The longest line accepted, in bytes (without its terminator).
    pub max_line: usize,
    pub gzip: bool,
}

/// The default longest line: 1 MiB, the schema catalog's default record
/// limit (a longer line could not decode anyway).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

impl Default for LineOptions {
    fn default() -> LineOptions {
        LineOptions {
            max_line: DEFAULT_MAX_LINE,
            gzip: false,
        }
    }
}

/// One line: its number, where it starts and ends in the (inflated)
/// stream, and its text without the terminator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Line<'a> {
    pub number: u64,
    pub start: u64,
    /// Just after the terminator.
    pub end: u64,
    pub text: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item<'a> {
    Line(Line<'a>),
    /// A line over the limit, skipped: its number and byte range.
    TooLong {
        number: u64,
        start: u64,
        end: u64,
    },
}

impl Item<'_> {
    pub fn number(&self) -> u64 {
        match self {
            Item::Line(l) => l.number,
            Item::TooLong { number, .. } => *number,
        }
    }

    pub fn end(&self) -> u64 {
        match self {
            Item::Line(l) => l.end,
            Item::TooLong { end, .. } => *end,
        }
    }
}

/// Lines from a chunk source.
pub struct LineReader<S: ChunkSource> {
    source: S,
    object: ObjectRef,
    gzip: Option<GzipDecoder>,
    pending: Option<S::Chunk>,
    pending_pos: usize,
    /// Undelivered bytes of the stream; `buf[0]` is at stream offset `base`.
    buf: Vec<u8>,
    base: u64,
    /// Start of the next line in `buf`.
    pos: usize,
    /// Where the search for `\n` resumes.
    scan: usize,
    /// The number of the last line ended.
    number: u64,
    /// Lines up to this number are skipped (a gzip resume).
    skip_through: u64,
    max_line: usize,
    /// Start offset of an over-long line being dropped.
    discarding: Option<u64>,
    eof: bool,
    last: Cursor,
}

impl<S: ChunkSource> LineReader<S> {
    /// Reads from the start of the stream; lines up to `resume.line` are
    /// read and skipped.
    pub fn new(source: S, object: ObjectRef, options: LineOptions, resume: Cursor) -> Self {
        LineReader::build(source, object, options, 0, 0, resume.line)
    }

    /// Reads a stream that starts at byte `cursor.offset` of the object
    /// (a ranged read), just after line `cursor.line`. Not for gzip.
    pub fn resumed_at(source: S, object: ObjectRef, max_line: usize, cursor: Cursor) -> Self {
        let options = LineOptions {
            max_line,
            gzip: false,
        };
        LineReader::build(
            source,
            object,
            options,
            cursor.offset.unwrap_or(0),
            cursor.line,
            0,
        )
    }

    fn build(
        source: S,
        object: ObjectRef,
        options: LineOptions,
        base: u64,
        number: u64,
        skip_through: u64,
    ) -> Self {
        let gzip = options.gzip.then(GzipDecoder::new);
        let offsets = !options.gzip;
        LineReader {
            source,
            object,
            gzip,
            pending: None,
            pending_pos: 0,
            buf: Vec::new(),
            base,
            pos: 0,
            scan: 0,
            number,
            skip_through,
            max_line: options.max_line,
            discarding: None,
            eof: false,
            last: Cursor {
                line: number,
                offset: (offsets && number > 0).then_some(base),
            },
        }
    }

    /// The cursor just after the last item returned (confirm it once the
    /// rows of every line up to there are confirmed).
    pub fn cursor(&self) -> Cursor {
        self.last
    }

    /// Bytes held for lines not yet returned (for memory checks).
    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }

    /// The next line, or `None` at the end of the object.
    pub async fn next(&mut self) -> Result<Option<Item<'_>>, S3Error> {
        let (text_start, text_end, number, start, end) = loop {
            if let Some(found) = self.take_line() {
                let (ts, te, number, start, end) = found;
                self.last = Cursor {
                    line: number,
                    offset: self.gzip.is_none().then_some(end),
                };
                if number <= self.skip_through {
                    continue;
                }
                if te.saturating_sub(ts) > self.max_line || ts == usize::MAX {
                    return Ok(Some(Item::TooLong { number, start, end }));
                }
                break found;
            }
            if self.eof {
                return Ok(None);
            }
            self.make_room();
            if !self.fill().await? {
                self.eof = true;
            }
        };
        let text = self.buf.get(text_start..text_end).unwrap_or(&[]);
        Ok(Some(Item::Line(Line {
            number,
            start,
            end,
            text,
        })))
    }

    /// The next complete line in the buffer (or the last, unterminated one
    /// at the end): (text start, text end, number, stream start, stream
    /// end). A dropped over-long line has text start `usize::MAX`.
    fn take_line(&mut self) -> Option<(usize, usize, u64, u64, u64)> {
        let tail = self.buf.get(self.scan..).unwrap_or(&[]);
        let nl = match tail.iter().position(|&b| b == b'\n') {
            Some(i) => Some(self.scan + i),
            None => {
                self.scan = self.buf.len();
                None
            }
        };
        let (line_end, next) = match nl {
            Some(i) => (i, i + 1),
            None if self.eof && (self.pos < self.buf.len() || self.discarding.is_some()) => {
                (self.buf.len(), self.buf.len())
            }
            None => return None,
        };
        self.number += 1;
        let start_idx = self.pos;
        let start = self
            .discarding
            .take()
            .unwrap_or(self.base + start_idx as u64);
        let end = self.base + next as u64;
        self.pos = next;
        self.scan = next;
        let mut text_end = line_end;
        if nl.is_some() && text_end > start_idx && self.buf.get(text_end - 1) == Some(&b'\r') {
            text_end -= 1;
        }
        let dropped = start < self.base + start_idx as u64;
        let ts = if dropped { usize::MAX } else { start_idx };
        Some((ts, text_end, self.number, start, end))
    }

    /// Drops delivered bytes, and the held part of an over-long line.
    fn make_room(&mut self) {
        // +1: a `\r` before the `\n` is not part of the line.
        if self.buf.len() - self.pos > self.max_line + 1 {
            if self.discarding.is_none() {
                self.discarding = Some(self.base + self.pos as u64);
            }
            self.base += self.buf.len() as u64;
            self.buf.clear();
            self.pos = 0;
            self.scan = 0;
            return;
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.scan -= self.pos;
            self.pos = 0;
        }
    }

    /// Adds up to [`FILL`] bytes to the buffer; false at the end.
    async fn fill(&mut self) -> Result<bool, S3Error> {
        loop {
            let exhausted = self
                .pending
                .as_ref()
                .is_none_or(|c| self.pending_pos >= c.as_ref().len());
            if exhausted {
                match self.source.next_chunk().await? {
                    Some(c) => {
                        self.pending = Some(c);
                        self.pending_pos = 0;
                        continue;
                    }
                    None => {
                        self.pending = None;
                        return self.drain_gzip();
                    }
                }
            }
            let input = self
                .pending
                .as_ref()
                .and_then(|c| c.as_ref().get(self.pending_pos..))
                .unwrap_or(&[]);
            match &mut self.gzip {
                None => {
                    let n = input.len().min(FILL);
                    self.buf.extend_from_slice(input.get(..n).unwrap_or(&[]));
                    self.pending_pos += n;
                    return Ok(true);
                }
                Some(gz) => {
                    let before = self.buf.len();
                    let used = gz
                        .decode(input, &mut self.buf, FILL)
                        .map_err(|m| S3Error::new(&self.object, ErrorKind::BadObject, m))?;
                    self.pending_pos += used;
                    if self.buf.len() > before {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// At the end of the input: what the inflater still holds, then the
    /// check that the gzip data ended cleanly.
    fn drain_gzip(&mut self) -> Result<bool, S3Error> {
        let Some(gz) = &mut self.gzip else {
            return Ok(false);
        };
        let bad = |m| S3Error::new(&self.object, ErrorKind::BadObject, m);
        let before = self.buf.len();
        gz.decode(&[], &mut self.buf, FILL).map_err(bad)?;
        if self.buf.len() > before {
            return Ok(true);
        }
        gz.finish().map_err(bad)?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj() -> ObjectRef {
        ObjectRef::new("b", "k")
    }

    async fn collect(
        chunks: Vec<Vec<u8>>,
        options: LineOptions,
        resume: Cursor,
    ) -> Result<Vec<(u64, Option<String>, u64)>, S3Error> {
        let mut r = LineReader::new(SliceChunks::new(chunks), obj(), options, resume);
        let mut out = Vec::new();
        while let Some(item) = r.next().await? {
            out.push(match item {
                Item::Line(l) => (
                    l.number,
                    Some(String::from_utf8_lossy(l.text).into_owned()),
                    l.end,
                ),
                Item::TooLong { number, end, .. } => (number, None, end),
            });
        }
        Ok(out)
    }

    fn split(data: &[u8], n: usize) -> Vec<Vec<u8>> {
        data.chunks(n).map(<[u8]>::to_vec).collect()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    #[test]
    fn numbers_offsets_and_terminators() {
        let data = b"a,b\r\n\nlong line here\nlast";
        for n in [1, 2, 5, 100] {
            let got = rt()
                .block_on(collect(
                    split(data, n),
                    LineOptions {
                        max_line: 9,
                        gzip: false,
                    },
                    Cursor::START,
                ))
                .unwrap();
            assert_eq!(
                got,
                vec![
                    (1, Some("a,b".into()), 5),
                    (2, Some("".into()), 6),
                    (3, None, 21),
                    (4, Some("last".into()), 25),
                ],
                "chunk size {n}"
            );
        }
    }

    #[test]
    fn too_long_lines_are_not_held() {
        let mut data = vec![b'x'; 1 << 20];
        data.extend_from_slice(b"\nok\n");
        rt().block_on(async {
            let mut r = LineReader::new(
                SliceChunks::new(split(&data, 4096)),
                obj(),
                LineOptions {
                    max_line: 100,
                    gzip: false,
                },
                Cursor::START,
            );
            let first = r.next().await.unwrap().unwrap();
            assert_eq!(
                first,
                Item::TooLong {
                    number: 1,
                    start: 0,
                    end: (1 << 20) + 1
                }
            );
            assert!(r.buffered() < 3 * 4096, "held {}", r.buffered());
            let Some(Item::Line(l)) = r.next().await.unwrap() else {
                panic!("line 2")
            };
            assert_eq!((l.number, l.text), (2, &b"ok"[..]));
            assert!(r.next().await.unwrap().is_none());
        });
    }

    #[test]
    fn gzip_lines_and_resume_by_skipping() {
        use flate2::write::GzEncoder;
        use std::io::Write;
        let text: String = (1..=1000).map(|i| format!("row{i}\n")).collect();
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        let z = e.finish().unwrap();
        let opts = LineOptions {
            max_line: 64,
            gzip: true,
        };
        let all = rt()
            .block_on(collect(split(&z, 100), opts, Cursor::START))
            .unwrap();
        assert_eq!(all.len(), 1000);
        assert_eq!(all[999].1.as_deref(), Some("row1000"));
        let rest = rt()
            .block_on(collect(
                split(&z, 100),
                opts,
                Cursor {
                    line: 990,
                    offset: None,
                },
            ))
            .unwrap();
        assert_eq!(rest.first().map(|r| r.0), Some(991));
        assert_eq!(
            rest.first().and_then(|r| r.1.clone()).as_deref(),
            Some("row991")
        );
        assert_eq!(rest.len(), 10);
        let err = rt()
            .block_on(collect(split(&z[..z.len() / 2], 100), opts, Cursor::START))
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadObject);
    }

    #[test]
    fn ranged_resume_continues_numbering() {
        let data = b"l1\nl2\nl3\nl4\n";
        let cursor = Cursor {
            line: 2,
            offset: Some(6),
        };
        rt().block_on(async {
            let src = SliceChunks::new(split(&data[6..], 3));
            let mut r = LineReader::resumed_at(src, obj(), 10, cursor);
            assert_eq!(r.cursor(), cursor);
            let Some(Item::Line(l)) = r.next().await.unwrap() else {
                panic!()
            };
            assert_eq!((l.number, l.text, l.start, l.end), (3, &b"l3"[..], 6, 9));
            assert_eq!(
                r.cursor(),
                Cursor {
                    line: 3,
                    offset: Some(9)
                }
            );
        });
    }

    #[test]
    fn checkpoints_order_as_cursors() {
        use crate::source::seqno::cmp_seq;
        let a = Cursor {
            line: 9,
            offset: Some(900),
        };
        let b = Cursor {
            line: 10,
            offset: Some(1000),
        };
        let g = Cursor {
            line: 12,
            offset: None,
        };
        for c in [Cursor::START, a, b, g] {
            assert_eq!(Cursor::from_checkpoint(&c.checkpoint()), Ok(c));
        }
        assert_eq!(
            cmp_seq(&a.checkpoint(), &b.checkpoint()),
            std::cmp::Ordering::Less
        );
        assert_eq!(cmp_seq("0", &a.checkpoint()), std::cmp::Ordering::Less);
        assert_eq!(
            Cursor::from_checkpoint("17"),
            Ok(Cursor {
                line: 17,
                offset: None
            })
        );
        assert!(Cursor::from_checkpoint("x1").is_err());
    }
}
