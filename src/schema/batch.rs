//! Typed rows of one batch, as runs of one table in record order, ready to
//! encode as `.u.upd` messages with the kdb+ fast path.

use super::catalog::Table;
use super::convert::{empty_column, truncate_column};
use super::json::Tape;
use crate::kdb::message::MsgType;
use crate::kdb::upd::{encode_upd, upd_to_k, Column, SymbolTable};
use crate::kdb::value::K;

/// Consecutive records of one table: one `.u.upd` message.
#[derive(Clone, Debug)]
pub struct Run {
    /// Index of the table in the catalog.
    pub table: usize,
    pub name: String,
    /// The columns sent, in schema order (a tickerplant-stamped `time` is
    /// not among them).
    pub columns: Vec<Column>,
    /// Records decoded into this run.
    pub records: usize,
    pub rows: usize,
}

/// What one record added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRows {
    /// Index of the table in the catalog.
    pub table: usize,
    /// Index of the run (in [`BatchBuilder::runs`]) the rows went into.
    pub run: usize,
    pub rows: usize,
    /// The payload idempotency key, when the table defines one:
    /// `<table>#<field>#<field>` with `#`, `,` and `\` escaped by `\`;
    /// rows of a multi-row record are joined by `,`.
    pub key: Option<String>,
}

/// Where to cut back to when a record fails half way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mark {
    runs: usize,
    rows: usize,
}

/// Where a route field was found on a tape of a given layout.
#[derive(Debug, Default)]
pub(crate) struct RouteFound {
    pub(crate) layout: u64,
    /// The route field's path, as written.
    pub(crate) path: String,
    pub(crate) node: Option<usize>,
}

/// Builds one batch. Reuse it across batches: [`BatchBuilder::reset`]
/// keeps the column buffers.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    pub(crate) runs: Vec<Run>,
    pub(crate) syms: SymbolTable,
    pub(crate) tape: Tape,
    pub(crate) row_nodes: Vec<usize>,
    /// A row's top-level fields (`Tape::get_many`), reused row to row.
    pub(crate) found: Vec<Option<usize>>,
    /// What `found` was looked up for: the tape's layout and the keys. A
    /// record shaped as the last one (same keys in the same places) finds
    /// the same keys at the same nodes, so the lookup is not repeated.
    /// The keys are compared by content, not by table: a builder may serve
    /// more than one catalog.
    pub(crate) found_for: Option<(u64, Vec<String>)>,
    /// The same for the route field of a single flat row.
    pub(crate) route_found: Option<RouteFound>,
    spare: Vec<(usize, Vec<Column>)>,
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::default()
    }

    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    pub fn symbols(&self) -> &SymbolTable {
        &self.syms
    }

    pub fn records(&self) -> usize {
        self.runs.iter().map(|r| r.records).sum()
    }

    pub fn rows(&self) -> usize {
        self.runs.iter().map(|r| r.rows).sum()
    }

    /// Appends run `run` as one message `(func; `table; columns)` to `out`;
    /// returns the bytes written, or `None` when there is no such run.
    pub fn encode_run(
        &self,
        run: usize,
        func: &str,
        msg_type: MsgType,
        out: &mut Vec<u8>,
    ) -> Option<usize> {
        let r = self.runs.get(run)?;
        let before = out.len();
        encode_upd(func, &r.name, &r.columns, &self.syms, msg_type, out);
        Some(out.len() - before)
    }

    /// Run `run` as a general value (tests, the stand-in, rendering).
    pub fn run_to_k(&self, run: usize, func: &str) -> Option<K> {
        let r = self.runs.get(run)?;
        Some(upd_to_k(func, &r.name, &r.columns, &self.syms))
    }

    /// Empties the batch, keeping buffers for the next one.
    pub fn reset(&mut self) {
        for mut run in self.runs.drain(..) {
            for c in &mut run.columns {
                truncate_column(c, 0);
            }
            self.spare.push((run.table, run.columns));
        }
        self.syms.clear();
        self.found_for = None;
        self.route_found = None;
    }

    /// Hands over the runs and the symbols they refer to, leaving the
    /// builder empty.
    pub fn take(&mut self) -> (Vec<Run>, SymbolTable) {
        (
            std::mem::take(&mut self.runs),
            std::mem::take(&mut self.syms),
        )
    }

    /// The run a record of `table` goes into: the last one if it is of
    /// that table, else a new one.
    pub(crate) fn begin(&mut self, index: usize, table: &Table) -> (usize, Mark) {
        let mark = Mark {
            runs: self.runs.len(),
            rows: self.runs.last().map_or(0, |r| r.rows),
        };
        if let Some(last) = self.runs.last() {
            if last.table == index {
                return (self.runs.len() - 1, mark);
            }
        }
        let columns = match self.spare.iter().position(|(t, _)| *t == index) {
            Some(i) => self.spare.swap_remove(i).1,
            None => table.sent.iter().map(|c| empty_column(c.qtype)).collect(),
        };
        self.runs.push(Run {
            table: index,
            name: table.name().to_string(),
            columns,
            records: 0,
            rows: 0,
        });
        (self.runs.len() - 1, mark)
    }

    pub(crate) fn commit(&mut self, run: usize, rows: usize) {
        if let Some(r) = self.runs.get_mut(run) {
            r.records += 1;
            r.rows += rows;
        }
    }

    /// Undoes everything since `mark`.
    pub(crate) fn rollback(&mut self, mark: Mark) {
        while self.runs.len() > mark.runs {
            if let Some(mut run) = self.runs.pop() {
                for c in &mut run.columns {
                    truncate_column(c, 0);
                }
                self.spare.push((run.table, run.columns));
            }
        }
        if let Some(last) = self.runs.last_mut() {
            for c in &mut last.columns {
                truncate_column(c, mark.rows);
            }
        }
    }
}
