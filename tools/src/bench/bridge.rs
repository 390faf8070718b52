//! `tickbridge bench bridge`: the whole bridge on a 10,000-record Kinesis
//! event with the in-memory store and the tickerplant stand-in over
//! loopback TCP.
//!
//! Two parts, both against one stand-in that runs on its own thread:
//! - **In process, one core**: `App::handle` on a current-thread runtime,
//!   timed from the raw event bytes to the batch response (parse, dedupe,
//!   decode, publish, chaser, commit). Each iteration gets a fresh store
//!   and a freshly connected link (set up outside the timing), so no record
//!   is a duplicate of an earlier iteration. Besides wall-clock time, the
//!   bridge thread's own on-CPU time per batch is read from
//!   `/proc/thread-self/schedstat`: on a shared machine it leaves out the
//!   time spent waiting for a CPU (other tenants still slow it through
//!   shared caches).
//! - **The real `bootstrap` binary**: started against a small Lambda
//!   runtime API stub served here. Init is the time from spawning the
//!   process to its first `GET /runtime/invocation/next`, i.e. ready for
//!   the first event (settings, schemas, store; the tickerplant connection
//!   opens in the background, as in production). The same process then
//!   handles a few 10,000-record events (fresh sequence numbers and ids)
//!   through the runtime API, and its peak RSS (VmHWM) is read from /proc
//!   before it is stopped: the figure a Lambda's memory size must cover.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

use crate::bench::events::{kinesis_event, payload, sequence_number, Rng};
use crate::bench::tp::peak_rss_kb;
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::pipeline::{BatchContext, SchemaDecoder, StageTimes, TickerplantLink};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::source::event::parse_event;
use tickbridge::tp::{spawn, RunningTp, TickerplantConfig};
use tickbridge::tplink::TpLink;

const TARGET_RECORDS_PER_SEC: f64 = 250_000.0;
const TARGET_INIT_MS: f64 = 50.0;
const TARGET_RSS_MB: f64 = 64.0;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Records in the Kinesis event (one shard, trade payloads).
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Timed in-process iterations (after one untimed warm-up).
    #[arg(long, default_value_t = 50)]
    pub iterations: usize,
    /// Times the bootstrap binary is started to measure init.
    #[arg(long, default_value_t = 10)]
    pub init_runs: usize,
    /// Turn payload-key dedupe off (on by default, as the trade schema
    /// defines one), to see what it costs.
    #[arg(long)]
    pub no_payload_keys: bool,
    /// Events the bootstrap process handles through the runtime API.
    #[arg(long, default_value_t = 5)]
    pub invocations: usize,
    /// Alternate trades and quotes in the event (every record its own run)
    /// instead of trades only; the Lambda binary part is skipped.
    #[arg(long)]
    pub mixed: bool,
    /// Also time the handler with `TICKBRIDGE_PUBLISH=pipelined` and `async`
    /// beside the default `sync`, to show what proving acceptance costs.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub compare_async: bool,
    /// The Lambda binary (default: `bootstrap` next to this executable;
    /// build it with `cargo build --release --bin bootstrap`).
    #[arg(long)]
    pub bootstrap: Option<PathBuf>,
}

/// Median and 99th percentile of a sample, in its unit.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(sample: &[f64]) -> Spread {
        let mut s = sample.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len().max(1)) - 1;
            s.get(i).copied().unwrap_or(f64::NAN)
        };
        Spread {
            min: s.first().copied().unwrap_or(f64::NAN),
            median: at(0.5),
            p99: at(0.99),
            max: s.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// A Kinesis event of `records` trades whose sequence numbers and business
/// ids start at `first`, so events with different `first` share nothing.
pub fn event(records: usize, first: usize) -> anyhow::Result<String> {
    event_of(records, first, false)
}

/// As [`event`]; with `mixed`, trades and quotes alternate record by record,
/// so every record is a run of its own: the worst case for sync publishing,
/// which confirms a lane's runs one round trip at a time.
pub fn event_of(records: usize, first: usize, mixed: bool) -> anyhow::Result<String> {
    let mut rng = Rng::new(7 + first as u64);
    let payloads: Vec<String> = (0..records)
        .map(|i| {
            let table = if mixed && i % 2 == 1 {
                "quote"
            } else {
                "trade"
            };
            payload(table, first + i, &mut rng)
        })
        .collect();
    let mut ev = kinesis_event(&payloads, 1, "bench-trades");
    let recs = ev
        .get_mut("Records")
        .and_then(|r| r.as_array_mut())
        .ok_or_else(|| anyhow::anyhow!("generated event has no Records"))?;
    for (i, r) in recs.iter_mut().enumerate() {
        let seq = sequence_number(0, first + i);
        r["eventID"] = format!("shardId-{:012}:{seq}", 0).into();
        r["kinesis"]["sequenceNumber"] = seq.into();
    }
    Ok(ev.to_string())
}

/// The in-process figures.
pub struct InProcess {
    pub event_bytes: usize,
    pub handler_ms: Vec<f64>,
    pub stages: Vec<StageTimes>,
    /// `parse_event` alone, timed apart from the handler.
    pub parse_ms: Vec<f64>,
    /// On-CPU time of the bridge's thread per batch (waits excluded).
    pub cpu_ms: Vec<f64>,
    pub peak_rss_kb: Option<u64>,
}

/// The real binary's figures.
pub struct Binary {
    pub path: PathBuf,
    pub init_ms: Vec<f64>,
    pub invoke_ms: Vec<f64>,
    pub peak_rss_kb: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.records > 0 && args.iterations > 0,
        "records and iterations must be positive"
    );
    // The stand-in on its own thread: in a deployment it is another host.
    let tp_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("stand-in")
        .enable_all()
        .build()?;
    let schemas = tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?;
    let tp = tp_rt.block_on(spawn(TickerplantConfig::new(schemas)))?;
    // The bridge on one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let inproc = rt.block_on(in_process(&args, &tp, "sync"))?;
    print_in_process(&args, &inproc);
    let mut timed_runs = 1;
    if args.compare_async {
        let rate =
            |r: &InProcess| args.records as f64 / (Spread::of(&r.handler_ms).median / 1000.0);
        let publish = |r: &InProcess| {
            Spread::of(&r.stages.iter().map(|t| t.publish).collect::<Vec<_>>()).median
        };
        println!("  publish modes side by side (median per batch; TICKBRIDGE_PUBLISH):");
        let line = |mode: &str, what: &str, r: &InProcess| {
            println!(
                "    {mode:<9} {what:<44} {:>8.2} ms  publish stage {:>7.2} ms  {:>8.0} records/s",
                Spread::of(&r.handler_ms).median,
                publish(r),
                rate(r),
            );
        };
        line("sync", "accepted, one run per lane in flight", &inproc);
        for (mode, what) in [
            ("pipelined", "accepted, every run in flight"),
            ("async", "received only (chaser)"),
        ] {
            let other = rt.block_on(in_process(&args, &tp, mode))?;
            timed_runs += 1;
            line(mode, what, &other);
        }
    }

    let path = match &args.bootstrap {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("bootstrap"),
    };
    let binary = if args.mixed {
        None
    } else if path.is_file() {
        warn_if_stale(&path);
        Some(rt.block_on(real_binary(&args, &path, tp.local_addr()))?)
    } else {
        println!(
            "\nbootstrap binary: not found at {} (build it: cargo build --release --bin bootstrap); \
             init and process RSS not measured",
            path.display()
        );
        None
    };
    if let Some(b) = &binary {
        print_binary(&args, b);
    }

    let expected =
        args.records * (args.iterations + 1) * timed_runs + args.records * args.invocations;
    let got = tp.row_count("trade").unwrap_or(0) + tp.row_count("quote").unwrap_or(0);
    let expected = if binary.is_some() {
        expected
    } else {
        expected - args.records * args.invocations
    };
    anyhow::ensure!(
        got == expected && tp.rejected() == 0,
        "the stand-in holds {got} rows (expected {expected}), {} updates refused",
        tp.rejected()
    );
    println!("\nchecked: the stand-in holds all {got} rows, none refused");
    tp_rt.block_on(tp.shutdown());
    Ok(if binary.is_some() || args.mixed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn in_process(args: &Args, tp: &RunningTp, publish: &str) -> anyhow::Result<InProcess> {
    let config = Config::from_vars([
        ("TICKBRIDGE_TP".to_string(), tp.local_addr().to_string()),
        ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
        ("TICKBRIDGE_PUBLISH".to_string(), publish.to_string()),
    ])?;
    let catalog = Arc::new(load_catalog(&config)?);
    let event = event_of(args.records, 0, args.mixed)?;
    let mut handler_ms = Vec::with_capacity(args.iterations);
    let mut stages = Vec::with_capacity(args.iterations);
    let mut parse_ms = Vec::with_capacity(args.iterations);
    let mut cpu_ms = Vec::with_capacity(args.iterations);
    for iteration in 0..=args.iterations {
        let mut link = TpLink::from_config(&config)?;
        link.ensure_connected(Instant::now() + Duration::from_secs(5))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let app = App::with_parts(
            config.clone(),
            Store::Memory(MemoryStore::new()),
            link,
            Quarantine::Log(LogQuarantine),
            SchemaDecoder::new(catalog.clone(), !args.no_payload_keys),
        );
        // The event parse alone, for the stage breakdown (untimed below).
        let start = Instant::now();
        let parsed = parse_event(event.as_bytes(), &config.source)?;
        let parse = start.elapsed().as_secs_f64() * 1000.0;
        drop(parsed);
        let ctx = BatchContext::with_budget(format!("bench-{iteration}"), Duration::from_secs(60));
        let cpu_before = thread_cpu_ns();
        let start = Instant::now();
        let inv = app.handle(event.as_bytes(), &ctx).await?;
        let elapsed = start.elapsed().as_secs_f64() * 1000.0;
        let cpu = match (cpu_before, thread_cpu_ns()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
            _ => None,
        };
        anyhow::ensure!(
            inv.response.batch_item_failures.is_empty() && inv.summary.forwarded == args.records,
            "iteration {iteration}: {} forwarded, failures {:?}",
            inv.summary.forwarded,
            inv.summary.failure_reasons
        );
        // The first run pays for lazily built state; it is not counted.
        if iteration > 0 {
            handler_ms.push(elapsed);
            stages.push(inv.summary.stage_ms.clone());
            parse_ms.push(parse);
            cpu_ms.extend(cpu);
        }
    }
    Ok(InProcess {
        event_bytes: event.len(),
        handler_ms,
        stages,
        parse_ms,
        cpu_ms,
        peak_rss_kb: peak_rss_kb(),
    })
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_in_process(args: &Args, r: &InProcess) {
    let h = Spread::of(&r.handler_ms);
    let total_ms: f64 = r.handler_ms.iter().sum();
    let rate = args.records as f64 / (h.median / 1000.0);
    let overall = (args.records * r.handler_ms.len()) as f64 / (total_ms / 1000.0);
    println!(
        "bridge: {} {} records per Kinesis event ({:.1} MB of JSON), one shard, \
         in-memory store, payload keys {}, stand-in over loopback TCP",
        args.records,
        if args.mixed {
            "alternating trade/quote"
        } else {
            "trade"
        },
        r.event_bytes as f64 / 1e6,
        if args.no_payload_keys { "off" } else { "on" }
    );
    println!(
        "in process, one core (current-thread runtime), {} iterations after a warm-up:",
        r.handler_ms.len()
    );
    println!(
        "  handler time per batch (wall clock): median {:.2} ms, p99 {:.2} ms, min {:.2} ms, max {:.2} ms",
        h.median, h.p99, h.min, h.max
    );
    println!(
        "  records/s end to end: {:.0} at the median ({:.0} over all iterations); target >= {:.0}: {}",
        rate,
        overall,
        TARGET_RECORDS_PER_SEC,
        verdict(rate >= TARGET_RECORDS_PER_SEC)
    );
    if !r.cpu_ms.is_empty() {
        let c = Spread::of(&r.cpu_ms);
        let cpu_rate = args.records as f64 / (c.median / 1000.0);
        println!(
            "  on-CPU time of the bridge thread per batch: median {:.2} ms, min {:.2} ms -> \
             {:.0} records per CPU-second (waits for the CPU and the stand-in excluded); target: {}",
            c.median,
            c.min,
            cpu_rate,
            verdict(cpu_rate >= TARGET_RECORDS_PER_SEC)
        );
    }
    let med =
        |f: fn(&StageTimes) -> f64| Spread::of(&r.stages.iter().map(f).collect::<Vec<_>>()).median;
    let (dedupe, decode, publish, commit) = (
        med(|s| s.dedupe),
        med(|s| s.decode),
        med(|s| s.publish),
        med(|s| s.commit),
    );
    let parse = Spread::of(&r.parse_ms).median;
    println!(
        "  stages (median ms): event parse {parse:.2} (timed alone), dedupe {dedupe:.2}, \
         decode {decode:.2}, publish+confirm {publish:.2}, commit {commit:.2}, the rest {:.2}",
        (h.median - parse - dedupe - decode - publish - commit).max(0.0)
    );
    if let Some(kb) = r.peak_rss_kb {
        println!(
            "  peak RSS of this process (bridge, stand-in holding every row, events): {:.1} MB",
            kb as f64 / 1024.0
        );
    }
}

fn print_binary(args: &Args, b: &Binary) {
    let init = Spread::of(&b.init_ms);
    println!(
        "\nthe Lambda binary ({}) through a runtime API stub:",
        b.path.display()
    );
    println!(
        "  init, process start to first GET /next ({} starts): median {:.1} ms, max {:.1} ms; \
         target < {TARGET_INIT_MS} ms: {}",
        b.init_ms.len(),
        init.median,
        init.max,
        verdict(init.median < TARGET_INIT_MS)
    );
    if !b.invoke_ms.is_empty() {
        let inv = Spread::of(&b.invoke_ms);
        println!(
            "  invocation, event served to response received ({} events of {}): median {:.1} ms \
             ({:.0} records/s incl. the runtime API round trip)",
            b.invoke_ms.len(),
            args.records,
            inv.median,
            args.records as f64 / (inv.median / 1000.0)
        );
    }
    match b.peak_rss_kb {
        Some(kb) => {
            let mb = kb as f64 / 1024.0;
            println!(
                "  peak RSS of the bootstrap process (VmHWM) after those events: {mb:.1} MB; \
                 target < {TARGET_RSS_MB} MB: {}",
                verdict(mb < TARGET_RSS_MB)
            );
        }
        None => println!("  peak RSS: unavailable (no /proc)"),
    }
}

fn warn_if_stale(path: &Path) {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let me = std::env::current_exe().ok();
    if let (Some(b), Some(t)) = (modified(path), me.as_deref().and_then(modified)) {
        if b < t {
            println!(
                "\nnote: {} is older than this executable; rebuild it for current figures",
                path.display()
            );
        }
    }
}

/// Time this thread has spent on a CPU, in ns (Linux schedstat).
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Peak resident memory of another process, from Linux's `/proc`.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The bootstrap process; killed when dropped. Keeps its last log lines
/// for the error message when it misbehaves.
struct Function {
    child: Child,
    tail: Arc<Mutex<VecDeque<String>>>,
}

impl Function {
    fn start(path: &Path, api: SocketAddr, tp: SocketAddr) -> anyhow::Result<Function> {
        let mut child = Command::new(path)
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://{api}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "tickbridge-bench")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("TICKBRIDGE_TP", tp.to_string())
            .env("TICKBRIDGE_STORE", "memory")
            .env("TICKBRIDGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", path.display()))?;
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let pipes: [Option<Box<dyn std::io::Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        ];
        for pipe in pipes.into_iter().flatten() {
            let tail = tail.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut t) = tail.lock() {
                        if t.len() == 20 {
                            t.pop_front();
                        }
                        t.push_back(line);
                    }
                }
            });
        }
        Ok(Function { child, tail })
    }

    fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn real_binary(args: &Args, path: &Path, tp: SocketAddr) -> anyhow::Result<Binary> {
    let mut init_ms = Vec::new();
    let mut invoke_ms = Vec::new();
    let mut peak = None;
    let runs = args.init_runs.max(1);
    for run in 0..runs {
        let mut api = RuntimeApi::bind().await?;
        let start = Instant::now();
        let function = Function::start(path, api.addr, tp)?;
        api.wait_ready(Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", function.tail()))?;
        init_ms.push(start.elapsed().as_secs_f64() * 1000.0);
        if run + 1 < runs {
            continue;
        }
        // The last process also handles events, then is measured.
        for k in 0..args.invocations {
            let body = event(args.records, (k + 1) * 1_000_000_000)?;
            let start = Instant::now();
            let response = api
                .invoke(&format!("bench-{k}"), body, Duration::from_secs(60))
                .await
                .map_err(|e| anyhow::anyhow!("{e}\n{}", function.tail()))?;
            invoke_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            let v: serde_json::Value = serde_json::from_slice(&response)?;
            anyhow::ensure!(
                v == serde_json::json!({"batchItemFailures": []}),
                "invocation {k} answered {v}\n{}",
                function.tail()
            );
        }
        peak = vm_hwm_kb(function.child.id());
    }
    Ok(Binary {
        path: path.to_path_buf(),
        init_ms,
        invoke_ms,
        peak_rss_kb: peak,
    })
}

/// A minimal Lambda runtime API (the three calls a runtime makes): hands
/// out queued events on `GET /next`, collects responses and errors.
struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<ApiState>,
    outcomes: mpsc::UnboundedReceiver<Outcome>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ApiState {
    queue: Mutex<VecDeque<(String, String)>>,
    queued: Notify,
}

enum Outcome {
    /// The first `GET /next` of the process.
    Ready,
    Response(String, Vec<u8>),
    Error(String),
}

impl RuntimeApi {
    async fn bind() -> anyhow::Result<RuntimeApi> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(ApiState::default());
        let (tx, outcomes) = mpsc::unbounded_channel();
        let state = shared.clone();
        let task = tokio::spawn(async move {
            let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
            while let Ok((stream, _)) = listener.accept().await {
                let (state, tx, ready) = (state.clone(), tx.clone(), ready.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, state, tx, ready).await;
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            shared,
            outcomes,
            task,
        })
    }

    async fn next_outcome(&mut self, limit: Duration) -> anyhow::Result<Outcome> {
        match tokio::time::timeout(limit, self.outcomes.recv()).await {
            Ok(Some(o)) => Ok(o),
            Ok(None) => anyhow::bail!("runtime API stub stopped"),
            Err(_) => anyhow::bail!("the function said nothing within {limit:?}"),
        }
    }

    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        match self.next_outcome(limit).await? {
            Outcome::Ready => Ok(()),
            Outcome::Error(e) => anyhow::bail!("the function reported an error: {e}"),
            Outcome::Response(..) => anyhow::bail!("a response before any event"),
        }
    }

    async fn invoke(
        &mut self,
        id: &str,
        event: String,
        limit: Duration,
    ) -> anyhow::Result<Vec<u8>> {
        if let Ok(mut q) = self.shared.queue.lock() {
            q.push_back((id.to_string(), event));
        }
        self.shared.queued.notify_one();
        loop {
            match self.next_outcome(limit).await? {
                Outcome::Ready => continue,
                Outcome::Response(rid, body) if rid == id => return Ok(body),
                Outcome::Response(rid, _) => anyhow::bail!("a response for {rid}, not {id}"),
                Outcome::Error(e) => anyhow::bail!("the function reported an error: {e}"),
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection of the runtime client (keep-alive: many requests).
async fn serve(
    stream: TcpStream,
    state: Arc<ApiState>,
    tx: mpsc::UnboundedSender<Outcome>,
    ready: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let Some((method, path, body)) = read_request(&mut rd).await? else {
            return Ok(());
        };
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            if !ready.swap(true, std::sync::atomic::Ordering::SeqCst) {
                let _ = tx.send(Outcome::Ready);
            }
            let (id, event) = loop {
                let next = state.queue.lock().ok().and_then(|mut q| q.pop_front());
                match next {
                    Some(item) => break item,
                    None => state.queued.notified().await,
                }
            };
            let deadline = tickbridge::pipeline::now_ms() + 60_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                 Lambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:tickbridge-bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n",
                event.len()
            );
            wr.write_all(head.as_bytes()).await?;
            wr.write_all(event.as_bytes()).await?;
        } else if method == "POST" {
            let parts: Vec<&str> = path.split('/').collect();
            let outcome = match parts.as_slice() {
                [.., "invocation", id, "response"] => Outcome::Response(id.to_string(), body),
                _ => Outcome::Error(format!("{path}: {}", String::from_utf8_lossy(&body))),
            };
            let _ = tx.send(outcome);
            wr.write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                .await?;
        } else {
            wr.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await?;
        }
    }
}

/// Reads one HTTP/1.1 request: method, path, body (plain or chunked).
/// `None` when the client closed the connection.
async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
) -> anyhow::Result<Option<(String, String, Vec<u8>)>> {
    let mut line = String::new();
    if rd.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or_default().to_string();
    let path = words.next().unwrap_or_default().to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 {
            anyhow::bail!("connection closed inside a request");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse()?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            rd.read_line(&mut line).await?;
            let size_text = line.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text, 16)?;
            if size == 0 {
                // Trailers, then the blank line.
                loop {
                    line.clear();
                    if rd.read_line(&mut line).await? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size + 2, 0);
            rd.read_exact(&mut body[start..]).await?;
            body.truncate(start + size);
        }
    } else {
        body.resize(length, 0);
        rd.read_exact(&mut body).await?;
    }
    Ok(Some((method, path, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickbridge::source::event::{parse_event, SourceOptions};

    #[test]
    fn events_with_different_starts_share_no_position_or_id() {
        let a = parse_event(event(50, 0).unwrap().as_bytes(), &SourceOptions::default()).unwrap();
        let b = parse_event(
            event(50, 1_000).unwrap().as_bytes(),
            &SourceOptions::default(),
        )
        .unwrap();
        assert_eq!((a.len(), b.len()), (50, 50));
        assert!(a
            .iter()
            .all(|r| r.position.len() == 56 && r.defect.is_none()));
        assert_eq!(a[0].lane, b[0].lane);
        assert!(a.iter().all(|r| b.iter().all(|s| s.position != r.position)));
        let id = |p: &[u8]| -> String {
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            v["id"].as_str().unwrap().to_string()
        };
        assert_eq!(id(&a[0].payload), "t-00000000");
        assert_eq!(id(&b[0].payload), "t-00001000");
    }

    #[test]
    fn spread_takes_nearest_rank_percentiles() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Spread::of(&sample);
        assert_eq!((s.min, s.median, s.p99, s.max), (1.0, 50.0, 99.0, 100.0));
        let s = Spread::of(&[3.0]);
        assert_eq!((s.median, s.p99), (3.0, 3.0));
    }

    #[tokio::test]
    async fn reads_plain_and_chunked_requests() {
        let raw: &[u8] = b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\n\
            content-length: 5\r\n\r\nhello\
            POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut rd = BufReader::new(raw);
        let (m, p, b) = read_request(&mut rd).await.unwrap().unwrap();
        assert_eq!(
            (m.as_str(), p.as_str(), b.as_slice()),
            (
                "POST",
                "/2018-06-01/runtime/invocation/r1/response",
                &b"hello"[..]
            )
        );
        let (_, p, b) = read_request(&mut rd).await.unwrap().unwrap();
        assert_eq!((p.as_str(), b.as_slice()), ("/x", &b"abcde"[..]));
        assert!(read_request(&mut rd).await.unwrap().is_none());
    }
}
