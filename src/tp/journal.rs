//! The journal in kdb+ log format, one file per UTC day.
//!
//! A log file is what q's `` `:log set () `` creates and `h enlist x`
//! appends to: `ff 01` then an empty general list (`00 00 00000000`), then
//! each appended object serialized without a message header. `-11!` reads
//! it back by decoding objects one after the other; so do we.

use crate::clock::civil_from_days;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::kdb::encode::{encode_into, encoded_len, push_sym};
use crate::kdb::types::{MIXED, SYMBOL};
use crate::kdb::{decode_prefix, K};

use super::upd::Update;

pub const LOG_HEADER: [u8; 8] = [0xff, 0x01, 0, 0, 0, 0, 0, 0];

/// Writes are buffered; a flush hands them to the OS. This much unflushed
/// data at most sits in memory.
const WRITE_BUFFER: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not a kdb+ log file (bad header)")]
    NotALog(String),
}

/// What reading a log found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogScan {
    /// Whole, well-formed chunks.
    pub chunks: u64,
    /// Bytes of the file up to the end of the last good chunk (header
    /// included; 0 when even the header is incomplete).
    pub good_len: usize,
    pub file_len: usize,
    /// Why reading stopped before the end of the file, if it did.
    pub corrupt: Option<String>,
}

/// Reads a log image, calling `on_chunk` for each good chunk in order.
/// A chunk must be a general list whose first item is a symbol (a function
/// name such as `` `upd ``); anything else, or bytes that do not decode,
/// ends the good part of the log.
pub fn scan(bytes: &[u8], mut on_chunk: impl FnMut(u64, K)) -> Option<LogScan> {
    let file_len = bytes.len();
    if bytes.len() < LOG_HEADER.len() {
        // A crash while the header was being written leaves a prefix of it.
        return LOG_HEADER.starts_with(bytes).then(|| LogScan {
            chunks: 0,
            good_len: 0,
            file_len,
            corrupt: (!bytes.is_empty()).then(|| "incomplete header".to_string()),
        });
    }
    if bytes.get(..LOG_HEADER.len()) != Some(&LOG_HEADER[..]) {
        return None;
    }
    let mut pos = LOG_HEADER.len();
    let mut chunks = 0u64;
    let mut corrupt = None;
    while let Some(rest) = bytes.get(pos..).filter(|r| !r.is_empty()) {
        match decode_prefix(rest) {
            Ok((k, used)) if is_chunk(&k) => {
                on_chunk(chunks, k);
                chunks += 1;
                pos += used;
            }
            Ok(_) => {
                corrupt = Some(format!("object at byte {pos} is not a function call"));
                break;
            }
            Err(e) => {
                corrupt = Some(format!("at byte {pos}: {e}"));
                break;
            }
        }
    }
    Some(LogScan {
        chunks,
        good_len: pos,
        file_len,
        corrupt,
    })
}

fn is_chunk(k: &K) -> bool {
    matches!(k, K::List(_, items) if matches!(items.first(), Some(K::Symbol(_))))
}

/// Appends `(`upd; `t; x)` for an accepted update. `x` keeps the shape the
/// publisher sent (a row of atoms or a list of columns), stamped.
pub fn encode_chunk(table: &str, upd: &Update, out: &mut Vec<u8>) {
    let items: Vec<K>;
    let x: &[K] = if upd.row_mode {
        items = upd.columns.iter().filter_map(first_item).collect();
        &items
    } else {
        &upd.columns
    };
    out.reserve(6 + 5 + 2 + table.len() + 6 + x.iter().map(encoded_len).sum::<usize>());
    out.extend_from_slice(&[MIXED as u8, 0, 3, 0, 0, 0]);
    out.push((-SYMBOL) as u8);
    push_sym(out, "upd");
    out.push((-SYMBOL) as u8);
    push_sym(out, table);
    out.extend_from_slice(&[MIXED as u8, 0]);
    out.extend_from_slice(&(x.len() as u32).to_le_bytes());
    for item in x {
        encode_into(item, out);
    }
}

fn first_item(col: &K) -> Option<K> {
    match col {
        K::Vector(_, v) => v.get(0),
        K::List(_, items) => items.first().cloned(),
        _ => None,
    }
}

/// `tp2026.11.25`: the day's file in `dir` (`unix_day` counts from 1970).
pub fn file_for_day(dir: &Path, unix_day: i64) -> PathBuf {
    let (y, m, d) = civil_from_days(unix_day);
    dir.join(format!("tp{y:04}.{m:02}.{d:02}"))
}

/// One day's log, open for appending.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Journal {
    /// Opens (or creates) the log at `path`, replaying its good chunks into
    /// `on_chunk`. A corrupt tail is cut off before appending: chunks written
    /// after garbage could never be read back, since a reader stops at the
    /// first object it cannot decode. The cut is reported in the scan.
    pub fn open(
        path: &Path,
        on_chunk: impl FnMut(u64, K),
    ) -> Result<(Journal, LogScan), JournalError> {
        let io = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let existing = match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let scan_result = match &existing {
            Some(bytes) => scan(bytes, on_chunk)
                .ok_or_else(|| JournalError::NotALog(path.display().to_string()))?,
            None => LogScan {
                chunks: 0,
                good_len: 0,
                file_len: 0,
                corrupt: None,
            },
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if scan_result.good_len < scan_result.file_len {
            file.set_len(scan_result.good_len as u64).map_err(io)?;
        }
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        if scan_result.good_len == 0 {
            out.write_all(&LOG_HEADER).map_err(io)?;
            out.flush().map_err(io)?;
        }
        Ok((
            Journal {
                path: path.to_path_buf(),
                out,
            },
            scan_result,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.out.write_all(chunk)
    }

    /// Hands buffered chunks to the OS: they survive the process dying.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    /// Flushes and asks the OS to put the file on disk (shutdown, day roll).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdb::{encode, Vector};

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(20_516), (2026, 3, 4));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn scan_stops_at_a_torn_chunk() {
        let chunk = encode(&K::list(vec![
            K::sym("upd"),
            K::sym("trade"),
            K::list(vec![K::vector(Vector::Long(vec![1, 2]))]),
        ]));
        let mut log = LOG_HEADER.to_vec();
        log.extend_from_slice(&chunk);
        log.extend_from_slice(&chunk);
        let whole = scan(&log, |_, _| {}).unwrap();
        assert_eq!(whole.chunks, 2);
        assert_eq!(whole.corrupt, None);
        log.extend_from_slice(&chunk[..chunk.len() - 3]);
        let torn = scan(&log, |_, _| {}).unwrap();
        assert_eq!(torn.chunks, 2);
        assert_eq!(torn.good_len, 8 + 2 * chunk.len());
        assert!(torn.corrupt.is_some());
        assert!(scan(b"not a log file", |_, _| {}).is_none());
        assert_eq!(scan(&LOG_HEADER[..3], |_, _| {}).unwrap().good_len, 0);
    }
}
