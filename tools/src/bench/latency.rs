//! Publish latency on loopback: one 1-row trade `.u.upd` sent async on the
//! fast path, then the sync chaser that confirms it, against a minimal
//! in-process IPC server. Shared by `tickbridge bench latency` and
//! `cargo bench --bench latency`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use tickbridge::kdb::client::{ClientConfig, Connection, Target};
use tickbridge::kdb::encode::encode_message;
use tickbridge::kdb::io::{read_frame, DEFAULT_MAX_FRAME};
use tickbridge::kdb::upd::{encode_upd, Column, SymbolTable};
use tickbridge::kdb::value::{Vector, K};
use tickbridge::kdb::MsgType;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Measured round trips (after a warm-up of a tenth as many, at least 100).
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
}

/// Latency figures in microseconds.
#[derive(Debug, Clone)]
pub struct Report {
    /// How the update was confirmed.
    pub mode: &'static str,
    pub iterations: usize,
    pub message_bytes: usize,
    pub median_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "publish latency, {} (1-row trade .u.upd, loopback TCP, {} B message)",
            self.mode, self.message_bytes
        )?;
        writeln!(f, "  iterations  {}", self.iterations)?;
        writeln!(f, "  median      {:.1} us", self.median_us)?;
        writeln!(f, "  p99         {:.1} us", self.p99_us)?;
        writeln!(f, "  max         {:.1} us", self.max_us)?;
        write!(f, "  mean        {:.1} us", self.mean_us)
    }
}

/// Accepts clients until dropped: handshake, ignore async messages, answer
/// each sync message with `::`, as a tickerplant answers the chaser.
async fn serve(listener: TcpListener) {
    while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(async move {
            // A failed client just ends its own task.
            let _ = serve_one(sock).await;
        });
    }
}

async fn serve_one(mut sock: TcpStream) -> anyhow::Result<()> {
    sock.set_nodelay(true)?;
    let mut byte = [0u8; 1];
    let mut hello_len = 0usize;
    loop {
        sock.read_exact(&mut byte).await?;
        hello_len += 1;
        if byte[0] == 0 || hello_len > 1024 {
            break;
        }
    }
    sock.write_all(&[3]).await?;
    let reply = encode_message(&K::Identity, MsgType::Response);
    loop {
        let (header, _) = read_frame(&mut sock, DEFAULT_MAX_FRAME).await?;
        if header.msg_type == MsgType::Sync {
            sock.write_all(&reply).await?;
        }
    }
}

/// How one update is confirmed (DESIGN §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Confirm {
    /// Sent sync: its reply proves the tickerplant accepted it (the default).
    Accepted,
    /// Sent async, then a sync chaser: proves receipt only.
    Received,
}

impl Confirm {
    fn label(self) -> &'static str {
        match self {
            Confirm::Accepted => "sync: accepted (TICKBRIDGE_PUBLISH=sync)",
            Confirm::Received => "async + chaser: received (TICKBRIDGE_PUBLISH=async)",
        }
    }

    fn msg_type(self) -> MsgType {
        match self {
            Confirm::Accepted => MsgType::Sync,
            Confirm::Received => MsgType::Async,
        }
    }
}

async fn publish_one(conn: &mut Connection, msg: &[u8], confirm: Confirm) -> anyhow::Result<()> {
    match confirm {
        Confirm::Accepted => {
            conn.query_raw(msg).await?;
        }
        Confirm::Received => {
            conn.send_raw(msg).await?;
            conn.chase().await?;
        }
    }
    Ok(())
}

/// Builds the 1-row trade update the bridge sends most.
fn trade_update(out: &mut Vec<u8>, syms: &mut SymbolTable, i: usize, msg_type: MsgType) {
    syms.clear();
    let sym = syms.intern("AAPL");
    let columns = [
        Column::Simple(Vector::Timespan(vec![i as i64 * 1_000])),
        Column::Symbols(vec![sym]),
        Column::Simple(Vector::Float(vec![189.25 + (i % 100) as f64 * 0.01])),
        Column::Simple(Vector::Long(vec![100 + (i % 7) as i64])),
        Column::Simple(Vector::Char(vec![b'B'])),
    ];
    out.clear();
    encode_upd(".u.upd", "trade", &columns, syms, msg_type, out);
}

/// Runs the measurement on the current runtime.
pub async fn measure(iterations: usize, confirm: Confirm) -> anyhow::Result<Report> {
    let iterations = iterations.max(1);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(serve(listener));

    let config = ClientConfig::new(Target::Tcp {
        host: "127.0.0.1".into(),
        port,
    });
    let mut conn = Connection::connect(&config).await?;
    let mut syms = SymbolTable::new();
    let mut msg = Vec::with_capacity(256);

    let warmup = (iterations / 10).max(100);
    for i in 0..warmup {
        trade_update(&mut msg, &mut syms, i, confirm.msg_type());
        publish_one(&mut conn, &msg, confirm).await?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        trade_update(&mut msg, &mut syms, i, confirm.msg_type());
        let start = Instant::now();
        publish_one(&mut conn, &msg, confirm).await?;
        samples.push(start.elapsed());
    }
    conn.close().await;
    server.abort();
    Ok(summarise(confirm.label(), samples, msg.len()))
}

fn summarise(mode: &'static str, mut samples: Vec<Duration>, message_bytes: usize) -> Report {
    samples.sort_unstable();
    let us = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
    let n = samples.len();
    let at = |q: f64| {
        let idx = ((n as f64 * q).ceil() as usize).saturating_sub(1);
        us(samples.get(idx.min(n.saturating_sub(1))))
    };
    let total: Duration = samples.iter().sum();
    Report {
        mode,
        iterations: n,
        message_bytes,
        median_us: at(0.5),
        p99_us: at(0.99),
        max_us: us(samples.last()),
        mean_us: if n == 0 {
            0.0
        } else {
            total.as_secs_f64() * 1e6 / n as f64
        },
    }
}

/// Measures on a fresh runtime and prints the figures.
pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    // Both ways side by side: the price of proving acceptance.
    let rt = crate::cli::runtime()?;
    let accepted = rt.block_on(measure(a.iterations, Confirm::Accepted))?;
    let received = rt.block_on(measure(a.iterations, Confirm::Received))?;
    println!("{accepted}\n\n{received}");
    println!(
        "\nmedian: sync {:.1} us, async + chaser {:.1} us (one round trip each; sync also proves acceptance)",
        accepted.median_us, received.median_us
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let samples: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        let r = summarise("test", samples, 10);
        assert_eq!(r.median_us.round(), 50.0);
        assert_eq!(r.p99_us.round(), 99.0);
        assert_eq!(r.max_us.round(), 100.0);
        assert_eq!(r.mean_us.round(), 51.0);
    }

    #[test]
    fn the_update_is_a_valid_upd_message() {
        let mut msg = Vec::new();
        let mut syms = SymbolTable::new();
        trade_update(&mut msg, &mut syms, 3, MsgType::Async);
        let (h, v) = tickbridge::kdb::decode_message(&msg).unwrap();
        assert_eq!(h.msg_type, MsgType::Async);
        let K::List(_, items) = v else {
            panic!("not a list")
        };
        assert_eq!(items[0], K::sym(".u.upd"));
        assert_eq!(items[1], K::sym("trade"));
        assert_eq!(items[2].count(), 5);
    }
}
