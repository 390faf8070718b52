//! Throughput of the tickerplant stand-in: one publisher sends the trade
//! table in fixed-size async updates, one subscriber receives every row, a
//! sync chaser ends the run. Prints rows/s and peak memory.
//!
//! Everything runs in this process (stand-in, publisher, subscriber), so the
//! peak memory figure covers all three, and the stand-in's tables keep every
//! row, as its `t` query requires.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use tickbridge::kdb::io::read_frame;
use tickbridge::kdb::upd::encode_upd;
use tickbridge::kdb::{decode_message, encode_message, Column, MsgType, SymbolTable, Vector, K};
use tickbridge::schema::Schema;
use tickbridge::tp::{spawn, TickerplantConfig};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Rows to publish.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Rows per `.u.upd`.
    #[arg(long, default_value_t = 1_000)]
    pub batch: usize,
    /// Subscribers, each receiving every row.
    #[arg(long, default_value_t = 1)]
    pub subscribers: usize,
    /// Journal into a temporary directory as well.
    #[arg(long)]
    pub journal: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            rows: 1_000_000,
            batch: 1_000,
            subscribers: 1,
            journal: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Report {
    pub rows: usize,
    pub updates: usize,
    pub elapsed: Duration,
    pub rows_per_sec: f64,
    pub peak_rss_kb: Option<u64>,
    pub received: Vec<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = crate::cli::runtime()?.block_on(measure(args.clone()))?;
    println!(
        "tp throughput: {} rows in {} updates of {} -> {} subscriber(s){}",
        report.rows,
        report.updates,
        args.batch,
        args.subscribers,
        if args.journal { ", journaled" } else { "" }
    );
    println!(
        "  elapsed {:.3} s, {:.0} rows/s ({:.2} M rows/s)",
        report.elapsed.as_secs_f64(),
        report.rows_per_sec,
        report.rows_per_sec / 1e6
    );
    println!("  rows received per subscriber: {:?}", report.received);
    match report.peak_rss_kb {
        Some(kb) => println!(
            "  peak memory (VmHWM, whole process): {:.1} MB",
            kb as f64 / 1024.0
        ),
        None => println!("  peak memory: unavailable (no /proc/self/status)"),
    }
    Ok(ExitCode::SUCCESS)
}

fn trade_schema() -> anyhow::Result<Schema> {
    Ok(serde_json::from_str(
        r#"{"table":"trade","columns":[
            {"name":"time","type":"timespan"},
            {"name":"sym","type":"symbol"},
            {"name":"price","type":"float"},
            {"name":"size","type":"long"},
            {"name":"side","type":"char"}]}"#,
    )?)
}

/// Runs the benchmark and returns its figures.
pub async fn measure(args: Args) -> anyhow::Result<Report> {
    anyhow::ensure!(
        args.batch > 0 && args.rows > 0,
        "rows and batch must be positive"
    );
    let dir = if args.journal {
        Some(tempfile_dir()?)
    } else {
        None
    };
    let mut config = TickerplantConfig::new(vec![trade_schema()?]);
    config.journal_dir = dir.clone();
    let tp = spawn(config).await?;
    let addr = tp.local_addr();

    let mut subs = Vec::new();
    for _ in 0..args.subscribers {
        let mut s = connect(addr).await?;
        let sub = K::list(vec![K::sym(".u.sub"), K::sym("trade"), K::sym("")]);
        s.write_all(&encode_message(&sub, MsgType::Sync)).await?;
        let (_, answer) = read_frame(&mut s, usize::MAX).await?;
        let (_, answer) = decode_message(&answer)?;
        anyhow::ensure!(
            !matches!(answer, K::Error(_)),
            "subscribe failed: {answer:?}"
        );
        let want = args.rows;
        subs.push(tokio::spawn(async move {
            let mut rd = BufReader::with_capacity(1 << 20, s);
            let mut got = 0usize;
            while got < want {
                let (_, msg) = read_frame(&mut rd, usize::MAX).await?;
                got += rows_in(&decode_message(&msg)?.1);
            }
            Ok::<usize, anyhow::Error>(got)
        }));
    }

    let mut publisher = connect(addr).await?;
    let updates = args.rows.div_ceil(args.batch);
    let start = Instant::now();
    let mut syms = SymbolTable::new();
    let names = ["AAPL", "MSFT", "GOOG", "AMZN", "IBM", "KX", "TSLA", "NVDA"];
    let ids: Vec<u32> = names.iter().map(|n| syms.intern(n)).collect();
    let mut buf = Vec::new();
    let mut sent = 0usize;
    let mut seq = 0u64;
    while sent < args.rows {
        let n = args.batch.min(args.rows - sent);
        let mut sym = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut size = Vec::with_capacity(n);
        let mut side = Vec::with_capacity(n);
        for _ in 0..n {
            seq += 1;
            sym.push(ids.get(seq as usize % ids.len()).copied().unwrap_or(0));
            price.push(100.0 + (seq % 1000) as f64 / 100.0);
            size.push((seq % 500) as i64 * 100);
            side.push(if seq.is_multiple_of(2) { b'B' } else { b'S' });
        }
        // The time column is left out, so the stand-in stamps every update.
        let cols = [
            Column::Symbols(sym),
            Column::Simple(Vector::Float(price)),
            Column::Simple(Vector::Long(size)),
            Column::Simple(Vector::Char(side)),
        ];
        buf.clear();
        encode_upd(".u.upd", "trade", &cols, &syms, MsgType::Async, &mut buf);
        publisher.write_all(&buf).await?;
        sent += n;
    }
    publisher
        .write_all(&encode_message(&K::string(""), MsgType::Sync))
        .await?;
    let (_, chaser) = read_frame(&mut publisher, usize::MAX).await?;
    anyhow::ensure!(
        matches!(decode_message(&chaser)?.1, K::Identity),
        "chaser did not return ::"
    );
    let mut received = Vec::new();
    for s in subs {
        received.push(s.await??);
    }
    let elapsed = start.elapsed();
    anyhow::ensure!(
        tp.row_count("trade") == Some(args.rows),
        "the stand-in holds {:?} rows, not {}",
        tp.row_count("trade"),
        args.rows
    );
    tp.shutdown().await;
    if let Some(d) = dir {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(Report {
        rows: args.rows,
        updates,
        elapsed,
        rows_per_sec: args.rows as f64 / elapsed.as_secs_f64().max(1e-9),
        peak_rss_kb: peak_rss_kb(),
        received,
    })
}

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(b"bench:\x03\x00").await?;
    let mut cap = [0u8; 1];
    s.read_exact(&mut cap).await?;
    Ok(s)
}

/// Rows in a published `(`upd; `t; table)`.
fn rows_in(msg: &K) -> usize {
    match msg {
        K::List(_, items) => items.get(2).map_or(0, K::count),
        _ => 0,
    }
}

/// Peak resident memory of this process, from Linux's `/proc`.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("tickbridge-bench-tp-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
