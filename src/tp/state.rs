//! The tickerplant's state: tables so far, `.u.i`, subscribers, the journal.
//!
//! One lock guards it. Decoding happens outside the lock; inside, an update
//! is checked, stamped, journaled, published and stored, so the journal, the
//! publication order and `.u.i` always agree.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustc_hash::{FxHashMap, FxHashSet};
use tokio::sync::watch;

use crate::kdb::compress::maybe_compress;
use crate::kdb::encode::{encode_into, encoded_len, push_sym};
use crate::kdb::message::{push_header, HEADER_LEN};
use crate::kdb::types::{KDB_EPOCH_DAYS, MIXED, NANOS_PER_DAY, SYMBOL, TABLE};
use crate::kdb::{encode_message, MsgType, Table, Vector, K};
use crate::schema::Schema;

use super::journal::{self, Journal, JournalError, LogScan};
pub use super::outbox::Outbound;
use super::outbox::{Outbox, Refused};
use super::upd::{append_column, prepare, take_rows, TableSchema, Update};

/// The tables the stand-in serves, fixed at start.
#[derive(Debug)]
pub struct Catalog {
    pub tables: Vec<TableSchema>,
    index: FxHashMap<String, usize>,
}

impl Catalog {
    pub fn new(schemas: &[Schema]) -> Result<Catalog, String> {
        let mut index = FxHashMap::default();
        let mut tables = Vec::with_capacity(schemas.len());
        for s in schemas {
            if index.insert(s.table.clone(), tables.len()).is_some() {
                return Err(format!("table {} is defined twice", s.table));
            }
            tables.push(TableSchema::from_schema(s));
        }
        Ok(Catalog { tables, index })
    }

    pub fn find(&self, name: &str) -> Option<(usize, &TableSchema)> {
        let i = *self.index.get(name)?;
        Some((i, self.tables.get(i)?))
    }

    /// Names in q's `tables[]` order (sorted).
    pub fn sorted_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.tables.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names
    }
}

/// The current UTC day and time of day, read once per update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Days since 1970.01.01.
    pub unix_day: i64,
    /// Nanoseconds since midnight: the `time` stamp.
    pub tod: i64,
}

impl Now {
    pub fn read() -> Now {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        Now {
            unix_day: nanos.div_euclid(NANOS_PER_DAY),
            tod: nanos.rem_euclid(NANOS_PER_DAY),
        }
    }
}

/// How the state reaches one client connection.
#[derive(Clone, Debug)]
pub struct ConnLink {
    pub id: u64,
    /// Who, in log lines: the peer address (or `unix`).
    pub peer: Arc<str>,
    pub out: Outbox,
    /// Set to true to make the connection's tasks close it.
    pub kill: Arc<watch::Sender<bool>>,
    /// Loopback or Unix socket: large messages go uncompressed.
    pub local: bool,
}

/// What is being queued, for the log line when it does not fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sending {
    /// An update (or `.u.end`) for a subscriber.
    Publication,
    /// The answer to a sync request.
    Answer,
}

impl ConnLink {
    /// Queues `msg`. A connection whose queue would pass its bytes bound
    /// cannot keep up (or never reads): it is dropped with a log line rather
    /// than let it pin memory or stall the feed. Returns false when dropped
    /// or already closing.
    pub fn send(&self, msg: Outbound, what: Sending) -> bool {
        match self.out.push(msg) {
            Ok(()) => true,
            Err(Refused::Full { queued, limit }) => {
                let why = match what {
                    Sending::Publication => {
                        "subscriber too slow: its queue would pass --queue-bytes; dropping it"
                    }
                    Sending::Answer => {
                        "client does not read its answers: its queue would pass --queue-bytes; dropping it"
                    }
                };
                tracing::warn!(
                    conn = self.id,
                    peer = %self.peer,
                    queued_bytes = queued,
                    limit_bytes = limit,
                    "{why}"
                );
                let _ = self.kill.send(true);
                false
            }
            Err(Refused::Closed) => false,
        }
    }
}

struct Sub {
    link: ConnLink,
    /// `None`: every sym.
    syms: Option<FxHashSet<String>>,
}

pub struct State {
    catalog: Arc<Catalog>,
    columns: Vec<Vec<K>>,
    subs: Vec<Vec<Sub>>,
    /// `.u.i`: updates accepted today (journaled ones, when journaling).
    pub i: i64,
    /// Updates refused (type, length, unknown table) over the process life.
    pub rejected: u64,
    journal_dir: Option<PathBuf>,
    journal: Option<Journal>,
    unix_day: i64,
    scratch: Vec<u8>,
}

/// Why an update was not taken, as a q error name.
pub type QError = String;

impl State {
    /// Fresh tables, then today's journal (when journaling) replayed into
    /// them to restore `.u.i` and the tables so far.
    pub fn open(
        catalog: Arc<Catalog>,
        journal_dir: Option<PathBuf>,
        now: Now,
    ) -> Result<(State, Option<LogScan>), JournalError> {
        let mut st = State {
            columns: catalog.tables.iter().map(|t| t.empty_columns()).collect(),
            subs: catalog.tables.iter().map(|_| Vec::new()).collect(),
            catalog,
            i: 0,
            rejected: 0,
            journal_dir,
            journal: None,
            unix_day: now.unix_day,
            scratch: Vec::new(),
        };
        let scan = st.open_journal()?;
        Ok((st, scan))
    }

    fn open_journal(&mut self) -> Result<Option<LogScan>, JournalError> {
        let Some(dir) = &self.journal_dir else {
            return Ok(None);
        };
        let path = journal::file_for_day(dir, self.unix_day);
        let catalog = self.catalog.clone();
        let columns = &mut self.columns;
        let mut restored = 0i64;
        let (j, scan) = Journal::open(&path, |n, chunk| {
            restored += 1;
            if let Err(why) = restore_chunk(&catalog, columns, chunk) {
                tracing::warn!(journal = %path.display(), chunk = n, why, "journal chunk not applied to the tables");
            }
        })?;
        self.i = restored;
        match &scan.corrupt {
            Some(why) => tracing::warn!(
                journal = %j.path().display(),
                good_chunks = scan.chunks,
                good_bytes = scan.good_len,
                file_bytes = scan.file_len,
                why,
                "journal has a corrupt tail; it was cut after the last good chunk"
            ),
            None => {
                tracing::info!(journal = %j.path().display(), chunks = scan.chunks, "journal opened")
            }
        }
        self.journal = Some(j);
        Ok(Some(scan))
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// `.u.upd[t;x]`.
    pub fn upd(&mut self, table: &str, x: K, now: Now) -> Result<(), QError> {
        self.roll_day(now);
        let catalog = self.catalog.clone();
        let Some((idx, schema)) = catalog.find(table) else {
            self.rejected += 1;
            return Err(table.to_string());
        };
        let update = prepare(schema, x, now.tod).map_err(|e| {
            self.rejected += 1;
            e.q_name().to_string()
        })?;
        if let Some(j) = &mut self.journal {
            self.scratch.clear();
            journal::encode_chunk(table, &update, &mut self.scratch);
            if let Err(e) = j.append(&self.scratch) {
                tracing::error!(journal = %j.path().display(), error = %e, "journal write failed; update refused");
                self.rejected += 1;
                return Err("journal".into());
            }
        }
        self.i += 1;
        self.publish(idx, schema, &update);
        if let Some(cols) = self.columns.get_mut(idx) {
            for (dst, src) in cols.iter_mut().zip(update.columns) {
                append_column(dst, src);
            }
        }
        Ok(())
    }

    fn publish(&mut self, idx: usize, schema: &TableSchema, update: &Update) {
        let Some(subs) = self.subs.get_mut(idx) else {
            return;
        };
        if subs.is_empty() {
            return;
        }
        let mut plain: Option<Outbound> = None;
        let mut packed: Option<Outbound> = None;
        subs.retain(|sub| {
            let msg = match &sub.syms {
                None if sub.link.local => plain
                    .get_or_insert_with(|| {
                        Arc::new(encode_pub(&schema.name, &schema.names, &update.columns))
                    })
                    .clone(),
                None => packed
                    .get_or_insert_with(|| {
                        let bytes = encode_pub(&schema.name, &schema.names, &update.columns);
                        Arc::new(maybe_compress(bytes, false))
                    })
                    .clone(),
                Some(wanted) => {
                    let Some(rows) = matching_rows(schema, &update.columns, wanted) else {
                        return true;
                    };
                    let cols: Vec<K> = update.columns.iter().map(|c| take_rows(c, &rows)).collect();
                    let bytes = encode_pub(&schema.name, &schema.names, &cols);
                    Arc::new(maybe_compress(bytes, sub.link.local))
                }
            };
            sub.link.send(msg, Sending::Publication)
        });
    }

    /// `.u.sub[t;s]`. On success the answer is queued here, under the lock,
    /// so that it reaches the client before any update published after it.
    pub fn subscribe(
        &mut self,
        link: &ConnLink,
        table: &str,
        syms: &K,
        reply: bool,
    ) -> Result<(), QError> {
        let wanted = match syms {
            K::Symbol(s) if s.is_empty() => None,
            K::Symbol(s) => Some(std::iter::once(s.clone()).collect()),
            K::Vector(_, Vector::Symbol(v)) => Some(v.iter().cloned().collect()),
            _ => return Err("type".into()),
        };
        let catalog = self.catalog.clone();
        let targets: Vec<usize> = if table.is_empty() {
            (0..catalog.tables.len()).collect()
        } else {
            vec![catalog.find(table).ok_or_else(|| table.to_string())?.0]
        };
        let mut answers = Vec::with_capacity(targets.len());
        for &idx in &targets {
            let (Some(subs), Some(schema)) = (self.subs.get_mut(idx), catalog.tables.get(idx))
            else {
                continue;
            };
            subs.retain(|s| s.link.id != link.id);
            subs.push(Sub {
                link: link.clone(),
                syms: wanted.clone(),
            });
            answers.push(K::list(vec![
                K::sym(schema.name.clone()),
                K::Table(Table::new(schema.names.clone(), schema.empty_columns())),
            ]));
        }
        tracing::info!(
            conn = link.id,
            table,
            filtered = wanted.is_some(),
            "subscribed"
        );
        if reply {
            let answer = if table.is_empty() {
                K::list(answers)
            } else {
                answers.pop().unwrap_or(K::Identity)
            };
            let msg = Arc::new(maybe_compress(
                encode_message(&answer, MsgType::Response),
                link.local,
            ));
            if !link.send(msg, Sending::Answer) {
                self.drop_conn(link.id);
            }
        }
        Ok(())
    }

    /// Forgets a connection's subscriptions (it closed or was dropped).
    pub fn drop_conn(&mut self, id: u64) {
        for subs in &mut self.subs {
            subs.retain(|s| s.link.id != id);
        }
    }

    pub fn subscriber_count(&self) -> usize {
        let ids: FxHashSet<u64> = self.subs.iter().flatten().map(|s| s.link.id).collect();
        ids.len()
    }

    pub fn row_count(&self, table: &str) -> Option<usize> {
        let (idx, _) = self.catalog.find(table)?;
        Some(self.columns.get(idx)?.first().map_or(0, K::count))
    }

    pub fn table(&self, table: &str) -> Option<Table> {
        let (idx, schema) = self.catalog.find(table)?;
        Some(Table::new(
            schema.names.clone(),
            self.columns.get(idx)?.clone(),
        ))
    }

    pub fn table_names(&self) -> K {
        K::vector(Vector::Symbol(self.catalog.sorted_names()))
    }

    /// Hands journaled updates to the OS.
    pub fn flush(&mut self) {
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.flush() {
                tracing::error!(journal = %j.path().display(), error = %e, "journal flush failed");
            }
        }
    }

    /// Flushes and syncs the journal to disk.
    pub fn sync(&mut self) {
        if let Some(j) = &mut self.journal {
            if let Err(e) = j.sync() {
                tracing::error!(journal = %j.path().display(), error = %e, "journal sync failed");
            }
        }
    }

    /// At UTC midnight, as tick.q's end of day: subscribers get
    /// `.u.end[date]`, the tables empty, `.u.i` restarts with the new day's
    /// journal.
    fn roll_day(&mut self, now: Now) {
        if now.unix_day <= self.unix_day {
            return;
        }
        let ended = (self.unix_day - KDB_EPOCH_DAYS) as i32;
        tracing::info!(day = self.unix_day, "end of day");
        self.sync();
        let end = Arc::new(encode_message(
            &K::list(vec![K::sym(".u.end"), K::Date(ended)]),
            MsgType::Async,
        ));
        let mut told = FxHashSet::default();
        for subs in &mut self.subs {
            subs.retain(|s| {
                !told.insert(s.link.id) || s.link.send(end.clone(), Sending::Publication)
            });
        }
        self.unix_day = now.unix_day;
        self.columns = self
            .catalog
            .tables
            .iter()
            .map(|t| t.empty_columns())
            .collect();
        self.i = 0;
        self.journal = None;
        if let Err(e) = self.open_journal() {
            tracing::error!(error = %e, "cannot open the new day's journal; updates are not journaled");
        }
    }
}

fn matching_rows(
    schema: &TableSchema,
    cols: &[K],
    wanted: &FxHashSet<String>,
) -> Option<Vec<usize>> {
    let col = cols.get(schema.sym_col?)?;
    let K::Vector(_, Vector::Symbol(syms)) = col else {
        return None;
    };
    let rows: Vec<usize> = syms
        .iter()
        .enumerate()
        .filter(|(_, s)| wanted.contains(s.as_str()))
        .map(|(i, _)| i)
        .collect();
    (!rows.is_empty()).then_some(rows)
}

/// `(`upd; `t; table)` as one async message, written straight from the
/// update's columns.
pub fn encode_pub(table: &str, names: &[String], cols: &[K]) -> Vec<u8> {
    let table_len = 3
        + 6
        + names.iter().map(|n| n.len() + 1).sum::<usize>()
        + 6
        + cols.iter().map(encoded_len).sum::<usize>();
    let len = HEADER_LEN + 6 + 5 + (2 + table.len()) + table_len;
    let mut out = Vec::with_capacity(len);
    push_header(&mut out, MsgType::Async, false, len);
    out.extend_from_slice(&[MIXED as u8, 0, 3, 0, 0, 0]);
    out.push((-SYMBOL) as u8);
    push_sym(&mut out, "upd");
    out.push((-SYMBOL) as u8);
    push_sym(&mut out, table);
    out.extend_from_slice(&[TABLE as u8, 0, 99, SYMBOL as u8, 0]);
    out.extend_from_slice(&(names.len() as u32).to_le_bytes());
    for n in names {
        push_sym(&mut out, n);
    }
    out.extend_from_slice(&[MIXED as u8, 0]);
    out.extend_from_slice(&(cols.len() as u32).to_le_bytes());
    for c in cols {
        encode_into(c, &mut out);
    }
    out
}

fn restore_chunk(catalog: &Catalog, columns: &mut [Vec<K>], chunk: K) -> Result<(), String> {
    let K::List(_, items) = chunk else {
        return Err("not a list".into());
    };
    let mut items = items.into_iter();
    let (Some(K::Symbol(f)), Some(K::Symbol(t)), Some(x), None) =
        (items.next(), items.next(), items.next(), items.next())
    else {
        return Err("not (`upd;`t;x)".into());
    };
    if f != "upd" {
        return Err(format!("function {f} is not upd"));
    }
    let (idx, schema) = catalog
        .find(&t)
        .ok_or_else(|| format!("unknown table {t}"))?;
    // Journaled updates were stamped when taken, so the clock is not read.
    let update = prepare(schema, x, 0).map_err(|e| format!("{t}: '{}", e.q_name()))?;
    let cols = columns.get_mut(idx).ok_or("no such table")?;
    for (dst, src) in cols.iter_mut().zip(update.columns) {
        append_column(dst, src);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kdb::{decode_message, Attr};

    #[test]
    fn publication_matches_the_general_encoder() {
        let names = vec!["a".to_string(), "b".to_string()];
        let cols = vec![
            K::vector(Vector::Long(vec![1, 2])),
            K::list(vec![K::string("x"), K::string("yz")]),
        ];
        let fast = encode_pub("t", &names, &cols);
        let general = encode_message(
            &K::list(vec![
                K::sym("upd"),
                K::sym("t"),
                K::Table(Table::new(names.clone(), cols.clone())),
            ]),
            MsgType::Async,
        );
        assert_eq!(fast, general);
        let (_, back) = decode_message(&fast).unwrap();
        let K::List(Attr::None, items) = back else {
            panic!("not a list")
        };
        assert_eq!(items[2], K::Table(Table::new(names, cols)));
    }

    fn trade_schema() -> Schema {
        serde_json::from_str(
            r#"{"table":"trade","columns":[{"name":"time","type":"timespan"},
                {"name":"sym","type":"symbol"},{"name":"price","type":"float"}]}"#,
        )
        .unwrap()
    }

    fn row(sym: &str) -> K {
        K::list(vec![K::sym(sym), K::Float(1.0)])
    }

    #[test]
    fn midnight_ends_the_day_and_starts_a_new_journal() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Arc::new(Catalog::new(&[trade_schema()]).unwrap());
        let day = 20_000;
        let (mut st, _) = State::open(
            catalog,
            Some(dir.path().to_path_buf()),
            Now {
                unix_day: day,
                tod: 5,
            },
        )
        .unwrap();
        let (out, mut rx) = crate::tp::outbox::outbox(1 << 20);
        let (kill, _) = watch::channel(false);
        let link = ConnLink {
            id: 1,
            peer: "test".into(),
            out,
            kill: Arc::new(kill),
            local: true,
        };
        st.subscribe(&link, "", &K::sym(""), true).unwrap();
        assert!(rx.try_recv().is_some(), "the .u.sub answer");
        st.upd(
            "trade",
            row("A"),
            Now {
                unix_day: day,
                tod: 10,
            },
        )
        .unwrap();
        st.upd(
            "trade",
            row("B"),
            Now {
                unix_day: day,
                tod: 20,
            },
        )
        .unwrap();
        assert_eq!(st.i, 2);
        st.upd(
            "trade",
            row("C"),
            Now {
                unix_day: day + 1,
                tod: 1,
            },
        )
        .unwrap();
        assert_eq!(st.i, 1, ".u.i restarts with the new day");
        assert_eq!(st.row_count("trade"), Some(1));
        let mut published = Vec::new();
        while let Some(m) = rx.try_recv() {
            published.push(crate::kdb::decode_message(&m).unwrap().1);
        }
        assert_eq!(published.len(), 4);
        assert_eq!(
            published[2],
            K::list(vec![
                K::sym(".u.end"),
                K::Date((day - KDB_EPOCH_DAYS) as i32)
            ])
        );
        st.sync();
        let old = std::fs::read(journal::file_for_day(dir.path(), day)).unwrap();
        let new = std::fs::read(journal::file_for_day(dir.path(), day + 1)).unwrap();
        assert_eq!(journal::scan(&old, |_, _| {}).unwrap().chunks, 2);
        assert_eq!(journal::scan(&new, |_, _| {}).unwrap().chunks, 1);
        assert_eq!(
            st.upd(
                "nosuch",
                row("D"),
                Now {
                    unix_day: day + 1,
                    tod: 2
                }
            ),
            Err("nosuch".into())
        );
        assert_eq!(st.rejected, 1);
    }
}
