//! Decode benchmark: JSON trade records → typed columns → `.u.upd` bytes.
//!
//! Shared by `tickbridge bench decode` and `cargo bench --bench decode`.
//! Records look like a feed's (about 120 bytes):
//! `{"type":"trade","time":"2026-11-25T14:30:00.123456789Z","sym":"AAPL",
//! "price":187.25,"size":300,"side":"B","id":"t-000000001"}`, decoded with
//! a trade schema that also reads `time` (RFC 3339 → timespan, time of day)
//! and builds the payload key from `id`, so every field is touched.
//!
//! Profile note (release build, 2-core shared VM, `perf record -g` of
//! `tickbridge bench decode`): about 2.8–2.9 M records/s, ~350 ns a record,
//! ~360 MB/s of input; the encode of the one 3 MB `.u.upd` is ~0.4 ms (1%).
//! Per record, roughly:
//! - ~27%: UTF-8 check and JSON reading (string scanning ~half of it; the
//!   benchmark times this stage alone and prints it);
//! - ~15%: field lookup — a linear scan of the object's keys per column
//!   (`Tape::get` plus `memcmp`), cheap because records have few keys;
//! - ~25%: conversion and column pushes (RFC 3339 parsing ~5%, exact
//!   decimal integers ~3%, float parsing, symbol interning ~2%);
//! - ~5%: building the payload key string (one allocation per record);
//! - the rest: routing, record bookkeeping, the benchmark loop.
//!
//! Nothing dominates; the next steps, if ever needed, would be a SIMD scan
//! for string ends and a per-table key→column index to replace the scans.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tickbridge::kdb::message::MsgType;
use tickbridge::schema::{BatchBuilder, Catalog, Schema};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Records per round.
    #[arg(long, default_value_t = 100_000)]
    pub records: usize,
    /// Records per batch (one builder, then one `.u.upd` per run).
    #[arg(long, default_value_t = 100_000)]
    pub batch: usize,
    /// Rounds; the best is reported.
    #[arg(long, default_value_t = 7)]
    pub rounds: usize,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            records: 100_000,
            batch: 100_000,
            rounds: 7,
        }
    }
}

/// The schema the benchmark decodes with.
pub const BENCH_SCHEMA: &str = r#"{
  "table": "trade",
  "route": {"field": "/type", "equals": "trade"},
  "payload_key": ["/id"],
  "columns": [
    {"name": "time", "type": "timespan"},
    {"name": "sym", "type": "symbol"},
    {"name": "price", "type": "float"},
    {"name": "size", "type": "long"},
    {"name": "side", "type": "char"}
  ]
}"#;

pub fn catalog() -> anyhow::Result<Catalog> {
    let schema: Schema = serde_json::from_str(BENCH_SCHEMA)?;
    Ok(Catalog::from_schemas(vec![schema])?)
}

/// `n` distinct trade records.
pub fn records(n: usize) -> Vec<Vec<u8>> {
    const SYMS: [&str; 8] = [
        "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM",
    ];
    (0..n)
        .map(|i| {
            let ns = 123_456_789 + i as u64 * 1_000;
            let secs = 14 * 3600 + 30 * 60 + ns / 1_000_000_000;
            format!(
                r#"{{"type":"trade","time":"2026-11-25T{:02}:{:02}:{:02}.{:09}Z","sym":"{}","price":{}.{:02},"size":{},"side":"{}","id":"t-{:09}"}}"#,
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                ns % 1_000_000_000,
                SYMS[i % SYMS.len()],
                100 + i % 400,
                i % 100,
                (i % 50 + 1) * 100,
                if i % 2 == 0 { 'B' } else { 'S' },
                i
            )
            .into_bytes()
        })
        .collect()
}

/// One round's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub records: usize,
    pub input_bytes: usize,
    pub output_bytes: usize,
    pub messages: usize,
    pub decode: Duration,
    pub encode: Duration,
    /// UTF-8 check plus JSON reading alone, measured in a separate pass.
    pub read_only: Duration,
}

impl Figures {
    pub fn total(&self) -> Duration {
        self.decode + self.encode
    }

    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.total().as_secs_f64().max(1e-12)
    }

    pub fn mb_per_sec(&self) -> f64 {
        self.input_bytes as f64 / 1e6 / self.total().as_secs_f64().max(1e-12)
    }
}

/// Decodes and encodes `recs` once, in batches of `batch` records.
pub fn round(
    cat: &Catalog,
    recs: &[Vec<u8>],
    batch: usize,
    builder: &mut BatchBuilder,
    out: &mut Vec<u8>,
) -> anyhow::Result<Figures> {
    let mut f = Figures::default();
    for chunk in recs.chunks(batch.max(1)) {
        builder.reset();
        out.clear();
        let t0 = Instant::now();
        for r in chunk {
            let rows = cat.decode_record(r, "trades", builder)?;
            black_box(&rows);
            f.input_bytes += r.len();
        }
        let t1 = Instant::now();
        for i in 0..builder.runs().len() {
            builder.encode_run(i, ".u.upd", MsgType::Async, out);
            f.messages += 1;
        }
        black_box(&out);
        let t2 = Instant::now();
        f.records += chunk.len();
        f.output_bytes += out.len();
        f.decode += t1 - t0;
        f.encode += t2 - t1;
    }
    Ok(f)
}

/// Time to check and read the JSON of every record, nothing else.
pub fn read_only(recs: &[Vec<u8>], max_depth: usize) -> Duration {
    let mut tape = tickbridge::schema::json::Tape::new();
    let t0 = Instant::now();
    for r in recs {
        if let Ok(text) = std::str::from_utf8(r) {
            black_box(tape.parse(text, max_depth).is_ok());
        }
    }
    t0.elapsed()
}

/// The best of `args.rounds` rounds.
pub fn measure(args: &Args) -> anyhow::Result<Figures> {
    let cat = catalog()?;
    let recs = records(args.records);
    let mut builder = BatchBuilder::new();
    let mut out = Vec::new();
    // Warm-up: sizes the buffers and the caches.
    round(&cat, &recs, args.batch, &mut builder, &mut out)?;
    let mut best: Option<Figures> = None;
    for _ in 0..args.rounds.max(1) {
        let f = round(&cat, &recs, args.batch, &mut builder, &mut out)?;
        if best.is_none_or(|b| f.total() < b.total()) {
            best = Some(f);
        }
    }
    let mut best = best.ok_or_else(|| anyhow::anyhow!("no rounds"))?;
    best.read_only = (0..args.rounds.max(1))
        .map(|_| read_only(&recs, cat.limits().max_depth))
        .min()
        .unwrap_or_default();
    Ok(best)
}

pub fn report(f: &Figures) -> String {
    format!(
        "decode: {} JSON trade records ({:.1} bytes each) -> {} .u.upd message(s), {} bytes\n\
         decode {:.2} ms + encode {:.2} ms = {:.2} ms \
         (UTF-8 check + JSON reading alone: {:.2} ms)\n\
         {:.0} records/s, {:.1} MB/s of input (one core, best round)\n",
        f.records,
        f.input_bytes as f64 / f.records.max(1) as f64,
        f.messages,
        f.output_bytes,
        f.decode.as_secs_f64() * 1e3,
        f.encode.as_secs_f64() * 1e3,
        f.total().as_secs_f64() * 1e3,
        f.read_only.as_secs_f64() * 1e3,
        f.records_per_sec(),
        f.mb_per_sec(),
    )
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let f = measure(&args)?;
    print!("{}", report(&f));
    Ok(ExitCode::SUCCESS)
}
