//! Encode benchmark: a trade table of `rows` rows (time timespan, sym
//! symbol, price float, size long, side char) as one `.u.upd` message,
//! written by the fast path (column builders straight into one buffer) and
//! by the general encoder (from a tree of `K` values).
//!
//! Shared by `tickbridge bench encode` and `cargo bench --bench encode`,
//! which also times the `kdbplus` crate on the same message.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tickbridge::kdb::message::MsgType;
use tickbridge::kdb::upd::{encode_upd, upd_to_k, Column, SymbolTable};
use tickbridge::kdb::{encode_message, Vector, K};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Rows in the table.
    #[arg(long, default_value_t = 10_000)]
    pub rows: usize,
    /// Encodes per round: enough that a round takes milliseconds.
    #[arg(long, default_value_t = 200)]
    pub repeat: usize,
    /// Rounds; the best is reported.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            rows: 10_000,
            repeat: 200,
            rounds: 7,
        }
    }
}

const SYMS: [&str; 8] = [
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM",
];

/// The benchmark's trade table, as the schema decoder's column builders
/// hold it. Plain values, so every encoder writes the same bytes.
pub struct TradeTable {
    pub columns: Vec<Column>,
    pub syms: SymbolTable,
}

impl TradeTable {
    pub fn new(rows: usize) -> TradeTable {
        let mut syms = SymbolTable::new();
        let ids = (0..rows)
            .map(|i| syms.intern(SYMS[i % SYMS.len()]))
            .collect();
        let time = (0..rows as i64)
            .map(|i| 34_200_000_000_000 + i * 1_000_017)
            .collect();
        let price = (0..rows).map(|i| 100.0 + (i % 4000) as f64 / 8.0).collect();
        let size = (0..rows as i64).map(|i| (i % 50 + 1) * 100).collect();
        let side = (0..rows)
            .map(|i| if i % 3 == 0 { b'S' } else { b'B' })
            .collect();
        TradeTable {
            columns: vec![
                Column::Simple(Vector::Timespan(time)),
                Column::Symbols(ids),
                Column::Simple(Vector::Float(price)),
                Column::Simple(Vector::Long(size)),
                Column::Simple(Vector::Char(side)),
            ],
            syms,
        }
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// `(`.u.upd; `trade; (columns))` as a general value.
    pub fn to_k(&self) -> K {
        upd_to_k(".u.upd", "trade", &self.columns, &self.syms)
    }

    pub fn encode_fast(&self, out: &mut Vec<u8>) {
        encode_upd(
            ".u.upd",
            "trade",
            &self.columns,
            &self.syms,
            MsgType::Async,
            out,
        );
    }
}

/// Best time of one encode over `rounds` rounds of `repeat` encodes.
pub fn best_time(rounds: usize, repeat: usize, mut once: impl FnMut()) -> Duration {
    once();
    (0..rounds.max(1))
        .map(|_| {
            let t0 = Instant::now();
            for _ in 0..repeat.max(1) {
                once();
            }
            t0.elapsed() / repeat.max(1) as u32
        })
        .min()
        .unwrap_or_default()
}

/// One encoder's figure.
#[derive(Clone, Debug)]
pub struct Line {
    pub name: String,
    pub per_message: Duration,
}

#[derive(Clone, Debug)]
pub struct Figures {
    pub rows: usize,
    pub message_bytes: usize,
    pub lines: Vec<Line>,
}

impl Figures {
    pub fn rows_per_sec(&self, l: &Line) -> f64 {
        self.rows as f64 / l.per_message.as_secs_f64().max(1e-12)
    }

    pub fn mb_per_sec(&self, l: &Line) -> f64 {
        self.message_bytes as f64 / 1e6 / l.per_message.as_secs_f64().max(1e-12)
    }
}

/// Times the fast path and the general encoder; checks first that both
/// write the same bytes, so the figures compare like with like.
pub fn measure(args: &Args) -> anyhow::Result<(Figures, TradeTable)> {
    let table = TradeTable::new(args.rows);
    let tree = table.to_k();
    let mut fast = Vec::new();
    table.encode_fast(&mut fast);
    anyhow::ensure!(
        fast == encode_message(&tree, MsgType::Async),
        "the fast path and the general encoder disagree"
    );
    let mut out = Vec::with_capacity(fast.len());
    let fast_time = best_time(args.rounds, args.repeat, || {
        out.clear();
        table.encode_fast(&mut out);
        black_box(&out);
    });
    let general_time = best_time(args.rounds, args.repeat, || {
        black_box(encode_message(black_box(&tree), MsgType::Async));
    });
    let figures = Figures {
        rows: table.rows(),
        message_bytes: fast.len(),
        lines: vec![
            Line {
                name: "tickbridge fast path (column builders)".into(),
                per_message: fast_time,
            },
            Line {
                name: "tickbridge general encoder (K tree)".into(),
                per_message: general_time,
            },
        ],
    };
    Ok((figures, table))
}

pub fn report(f: &Figures) -> String {
    let mut s = format!(
        "encode: .u.upd of a {}-row trade table (timespan, symbol, float, long, char), {} bytes\n",
        f.rows, f.message_bytes
    );
    for l in &f.lines {
        s += &format!(
            "  {:<42} {:>9.1} us  {:>12.0} rows/s  {:>8.1} MB/s\n",
            l.name,
            l.per_message.as_secs_f64() * 1e6,
            f.rows_per_sec(l),
            f.mb_per_sec(l)
        );
    }
    if let Some(base) = f.lines.first() {
        for l in &f.lines[1..] {
            s += &format!(
                "  {} takes {:.2}x the fast path's time\n",
                l.name,
                l.per_message.as_secs_f64() / base.per_message.as_secs_f64().max(1e-12),
            );
        }
    }
    s += "  (one core, best round)\n";
    s
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (f, _) = measure(&args)?;
    print!("{}", report(&f));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_table_decodes_to_its_columns() {
        let t = TradeTable::new(10);
        let mut out = Vec::new();
        t.encode_fast(&mut out);
        let (_, v) = tickbridge::kdb::decode_message(&out).expect("decodes");
        assert_eq!(v, t.to_k());
        assert_eq!(t.rows(), 10);
    }
}
