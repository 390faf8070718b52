//! `tickbridge tp`: run the tickerplant stand-in, or read one of its journals.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use tickbridge::kdb::K;
use tickbridge::tp::{self, journal, TickerplantConfig, Users};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TpArgs {
    #[command(subcommand)]
    pub cmd: Option<TpSub>,
    /// TCP port (0: pick a free one and log it).
    #[arg(long, default_value_t = 5010)]
    pub port: u16,
    /// Address to listen on; 0.0.0.0 for every interface.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Directory of table schema files (default: the embedded examples,
    /// as the bridge).
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// Journal directory (kdb+ log format, one file per UTC day).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// File of `user:password` lines; other clients are refused.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Also listen on this Unix socket.
    #[arg(long)]
    pub unix: Option<PathBuf>,
    /// Bytes queued for one client (publications and sync answers it has
    /// not read yet, plus 64 bytes per message) before it is dropped with a
    /// log line: a subscriber that cannot keep up, or a client that never
    /// reads its answers. One message larger than this still goes to a
    /// client with nothing queued. Default 64 MiB.
    #[arg(long, default_value_t = tp::DEFAULT_QUEUE_BYTES, value_parser = at_least_one)]
    pub queue_bytes: usize,
    /// Largest message a client may send, in bytes, both as sent and once
    /// decompressed; checked before anything is allocated. Larger ones get
    /// `'limit`: a too-long frame closes the connection, a compressed one
    /// claiming too much is refused and the connection kept. Default 64 MiB.
    #[arg(long, default_value_t = tp::DEFAULT_MAX_MESSAGE, value_parser = message_bytes)]
    pub max_message_bytes: usize,
    /// Client connections open at once (handshakes in progress included);
    /// more are closed on accept with a log line.
    #[arg(long, default_value_t = tp::DEFAULT_MAX_CONNECTIONS, value_parser = at_least_one)]
    pub max_connections: usize,
    /// Once the first byte of a message has arrived, the whole message must
    /// arrive within this many ms or the connection is closed with a log
    /// line. Idle time between messages is not limited.
    #[arg(long, default_value_t = tp::DEFAULT_READ_TIMEOUT.as_millis() as u64, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_timeout_ms: u64,
    /// How often buffered journal writes are handed to the OS, in ms (also
    /// on every sync message and at shutdown).
    #[arg(long, default_value_t = 100)]
    pub flush_ms: u64,
}

#[derive(Subcommand, Debug)]
pub enum TpSub {
    /// Read a journal: one JSON line per chunk, then a summary line.
    /// Exits 1 when the journal has a corrupt tail.
    Replay {
        file: PathBuf,
        /// Print only the summary.
        #[arg(long)]
        count: bool,
    },
}

pub fn run(args: TpArgs) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Some(TpSub::Replay { file, count }) => replay(&file, count),
        None => serve(args),
    }
}

fn serve(args: TpArgs) -> anyhow::Result<ExitCode> {
    let schemas = match &args.schemas {
        Some(dir) => {
            let schemas =
                tickbridge::schema::load_dir(dir).map_err(|e| anyhow::anyhow!("--schemas: {e}"))?;
            anyhow::ensure!(
                !schemas.is_empty(),
                "--schemas: no schema files (*.json) in {}",
                dir.display()
            );
            schemas
        }
        None => tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?,
    };
    let users = match &args.users {
        Some(p) => Some(Users::load(p).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let mut config = TickerplantConfig::new(schemas);
    config.listen = SocketAddr::new(args.bind, args.port);
    config.unix = args.unix;
    config.journal_dir = args.journal;
    config.users = users;
    config.queue_bytes = args.queue_bytes;
    config.max_msg = args.max_message_bytes;
    config.max_connections = args.max_connections;
    config.read_timeout = std::time::Duration::from_millis(args.read_timeout_ms);
    config.flush_every = std::time::Duration::from_millis(args.flush_ms);
    crate::cli::runtime()?.block_on(async move {
        let running = tp::spawn(config).await?;
        wait_for_signal().await?;
        tracing::info!("signal received; shutting down");
        running.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(unix)]
async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> anyhow::Result<()> {
    tokio::signal::ctrl_c().await?;
    Ok(())
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("not a whole number: {e}")),
    }
}

/// A kdb+ header's length is a u32; below a kilobyte even a chaser's
/// answer to a small table would not fit.
fn message_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1024..=u32::MAX as usize).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is not between 1024 and {}", u32::MAX)),
        Err(e) => Err(format!("not a whole number of bytes: {e}")),
    }
}

fn replay(file: &std::path::Path, count_only: bool) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let bytes = std::fs::read(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err = None;
    let scan = journal::scan(&bytes, |n, chunk| {
        if count_only || write_err.is_some() {
            return;
        }
        if let Err(e) = writeln!(out, "{}", chunk_summary(n, &chunk)) {
            write_err = Some(e);
        }
    })
    .ok_or_else(|| anyhow::anyhow!("{}: not a kdb+ log file", file.display()))?;
    if let Some(e) = write_err {
        return Err(e.into());
    }
    let summary = serde_json::json!({
        "file": file.display().to_string(),
        "chunks": scan.chunks,
        "good_bytes": scan.good_len,
        "file_bytes": scan.file_len,
        "corrupt": scan.corrupt,
    });
    writeln!(out, "{summary}")?;
    out.flush()?;
    if let Some(why) = &scan.corrupt {
        tracing::warn!(file = %file.display(), good_chunks = scan.chunks, why, "journal has a corrupt tail");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `{"chunk":0,"fn":"upd","table":"trade","rows":1000}`
fn chunk_summary(n: u64, chunk: &K) -> serde_json::Value {
    let items: &[K] = match chunk {
        K::List(_, items) => items,
        _ => &[],
    };
    let text = |i: usize| items.get(i).and_then(K::as_text);
    let rows = match items.get(2) {
        Some(K::List(_, x)) => match x.first() {
            Some(first) if first.is_atom() => 1,
            Some(first) => first.count(),
            None => 0,
        },
        Some(other) => other.count(),
        None => 0,
    };
    serde_json::json!({"chunk": n, "fn": text(0), "table": text(1), "rows": rows})
}
