//! `tickbridge bench bridge`: the whole bridge on a 10,000-record Kinesis
//! event with the in-memory store and the tickerplant stand-in over
//! loopback TCP, at two levels, side by side:
//! - **In process, one core**: `App::handle` on a current-thread runtime,
//!   timed from the raw event bytes to the batch response (parse, dedupe,
//!   decode, publish, chaser, commit). One `App` handles every event, as
//!   one Lambda process does; each event has fresh sequence numbers and
//!   ids (built before the timing), so no record is a duplicate of an
//!   earlier one, and both levels see the same events. Besides wall-clock time, the
//!   bridge thread's own on-CPU time per batch is read from
//!   `/proc/thread-self/schedstat`: on a shared machine it leaves out the
//!   time spent waiting for a CPU.
//! - **The Lambda process**: the real `bootstrap` binary polling this
//!   bench's runtime API ([`RuntimeApi`]) over loopback HTTP, timed from
//!   `GET /next` handing out the event to the `POST` of its response having
//!   been read: what Lambda bills for.
//!
//! The two levels take turns, iteration by iteration, so that load from
//! other tenants of a shared machine falls on both alike; their ratio is
//! the adapter's overhead. Init (process start to the first
//! `GET /runtime/invocation/next`: settings, schemas, store; the
//! tickerplant connection opens in the background, as in production) is
//! taken over several starts, and the peak RSS (VmHWM) of the process that
//! handled the events is read from /proc before it is stopped: the figure a
//! Lambda's memory size must cover.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bench::events::{
    kinesis_event, kinesis_event_bytes, payload, sequence_number, sqs_event, Rng,
};
use crate::bench::lambda_process::Function;
use crate::bench::runtime_api::{Answer, RuntimeApi};
use crate::bench::tp::peak_rss_kb;
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::pipeline::{BatchContext, SchemaDecoder, StageTimes, TickerplantLink};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::tp::{spawn, RunningTp, TickerplantConfig};
use tickbridge::tplink::TpLink;

/// Issue 15's targets, on one core: in process, and the Lambda process
/// from `GET /next` to the response.
const TARGET_RECORDS_PER_SEC: f64 = 1_000_000.0;
const TARGET_LAMBDA_RECORDS_PER_SEC: f64 = 600_000.0;
const TARGET_INIT_MS: f64 = 10.0;
const TARGET_RSS_MB: f64 = 64.0;
/// The first business id and position of the events: both levels' events
/// have ids and positions of the same width (8 digits), hence the same
/// size in bytes, whatever the iteration.
const FIRST: usize = 10_000_000;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Records in the Kinesis event (one shard, trade payloads).
    #[arg(long, default_value_t = 10_000)]
    pub records: usize,
    /// Timed iterations of each level (after one untimed warm-up each).
    #[arg(long, default_value_t = 50)]
    pub iterations: usize,
    /// Times the bootstrap binary is started to measure init.
    #[arg(long, default_value_t = 10)]
    pub init_runs: usize,
    /// Turn payload-key dedupe off (on by default, as the trade schema
    /// defines one), to see what it costs.
    #[arg(long)]
    pub no_payload_keys: bool,
    /// Alternate trades and quotes in the event (every record its own run)
    /// instead of trades only; the Lambda process level is skipped.
    #[arg(long)]
    pub mixed: bool,
    /// Pack the records (user records, then) into KPL aggregates of 100,
    /// as a KPL producer does: `--records` / 100 Kinesis records. Rates
    /// stay per user record; the Lambda process level is skipped.
    #[arg(long)]
    pub kpl: bool,
    /// An SQS FIFO workload instead: events of `--records` messages (SQS
    /// hands a function at most 10: use `--records 10 --iterations 1000`
    /// for 10,000 messages), one message group, trade bodies. Per-event
    /// costs dominate there.
    #[arg(long)]
    pub sqs: bool,
    /// Also time the handler in process with `TICKBRIDGE_PUBLISH=pipelined`
    /// and `async` beside the default `sync`, to show what proving
    /// acceptance costs.
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

/// An SQS FIFO event of `records` trade messages in one group, message
/// ids and business ids starting at `first` (fresh for every event, so
/// no message is a duplicate of an earlier one).
pub fn sqs_event_of(records: usize, first: usize) -> anyhow::Result<String> {
    let mut rng = Rng::new(7 + first as u64);
    let payloads: Vec<String> = (0..records)
        .map(|i| payload("trade", first + i, &mut rng))
        .collect();
    let mut ev = sqs_event(&payloads, 1, "bench-trades.fifo");
    let recs = ev
        .get_mut("Records")
        .and_then(|r| r.as_array_mut())
        .ok_or_else(|| anyhow::anyhow!("generated event has no Records"))?;
    for (i, r) in recs.iter_mut().enumerate() {
        r["messageId"] = format!("00000000-0000-4000-8000-{:012}", first + i).into();
        r["attributes"]["SequenceNumber"] = format!(
            "{:020}",
            18_849_496_460_467_696_128u128 + (first + i) as u128
        )
        .into();
    }
    Ok(ev.to_string())
}

/// The event of an iteration, of the workload `args` names.
fn workload_event(args: &Args, first: usize) -> anyhow::Result<String> {
    if args.sqs {
        sqs_event_of(args.records, first)
    } else if args.kpl {
        kpl_event(args.records, first)
    } else {
        event_of(args.records, first, args.mixed)
    }
}

/// As [`event`], the records packed into KPL aggregates of 100 user
/// records each (`kpl::aggregate`), one Kinesis record per aggregate.
pub fn kpl_event(records: usize, first: usize) -> anyhow::Result<String> {
    use tickbridge::source::kpl;
    const PER_AGGREGATE: usize = 100;
    let mut rng = Rng::new(7 + first as u64);
    let payloads: Vec<String> = (0..records)
        .map(|i| payload("trade", first + i, &mut rng))
        .collect();
    let aggregates: Vec<Vec<u8>> = payloads
        .chunks(PER_AGGREGATE)
        .map(|users| {
            kpl::aggregate(users.iter().enumerate().map(|(i, p)| kpl::UserRecord {
                partition_key: PARTITION_KEYS[i % PARTITION_KEYS.len()],
                explicit_hash_key: None,
                data: p.as_bytes(),
            }))
        })
        .collect();
    let data: Vec<&[u8]> = aggregates.iter().map(Vec::as_slice).collect();
    let mut ev = kinesis_event_bytes(&data, 1, "bench-trades");
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

/// User records' partition keys in the KPL events (the key table of each
/// aggregate holds them once).
const PARTITION_KEYS: [&str; 8] = [
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "META", "TSLA", "IBM",
];

/// The in-process figures.
#[derive(Default)]
pub struct InProcess {
    pub event_bytes: usize,
    pub handler_ms: Vec<f64>,
    pub stages: Vec<StageTimes>,
    /// On-CPU time of the bridge's thread per batch (waits excluded).
    pub cpu_ms: Vec<f64>,
    pub peak_rss_kb: Option<u64>,
}

/// The Lambda process's figures.
pub struct Binary {
    pub path: PathBuf,
    pub init_ms: Vec<f64>,
    /// GET /next handing out the event → its response read.
    pub invoke_ms: Vec<f64>,
    /// Of that, the bridge's own handler (`App::handle`, from the
    /// function's `batch done` log line); the rest is the runtime's.
    pub handler_ms: Vec<f64>,
    /// CPU time of the whole process (every thread) per invocation.
    pub cpu_ms: Vec<f64>,
    /// Peak RSS after its first event, and after all of them (the
    /// in-memory store keeps every confirmed key, so it grows with the
    /// number of events; DynamoDB holds them in production).
    pub first_rss_kb: Option<u64>,
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
    // The bridge (and the runtime API, idle while the function works) on
    // one core.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    let path = match &args.bootstrap {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("bootstrap"),
    };
    let measure_binary = !args.mixed && !args.kpl && path.is_file();
    if !args.mixed && !args.kpl && !measure_binary {
        println!(
            "bootstrap binary: not found at {} (build it: cargo build --release --bin bootstrap); \
             the Lambda process level, init and process RSS are not measured\n",
            path.display()
        );
    }
    if measure_binary {
        warn_if_stale(&path);
    }
    let (inproc, binary) =
        rt.block_on(side_by_side(&args, &tp, measure_binary.then_some(&path)))?;
    print_levels(&args, &inproc, binary.as_ref());

    let mut timed_runs = 1;
    if args.compare_async {
        let rate =
            |r: &InProcess| args.records as f64 / (Spread::of(&r.handler_ms).median / 1000.0);
        let publish = |r: &InProcess| {
            Spread::of(&r.stages.iter().map(|t| t.publish).collect::<Vec<_>>()).median
        };
        println!(
            "\npublish modes side by side, in process (median per batch; TICKBRIDGE_PUBLISH):"
        );
        let line = |mode: &str, what: &str, r: &InProcess| {
            println!(
                "  {mode:<9} {what:<44} {:>8.2} ms  publish stage {:>7.2} ms  {:>8.0} records/s",
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
            let other = rt.block_on(in_process_only(&args, &tp, mode))?;
            timed_runs += 1;
            line(mode, what, &other);
        }
    }

    // Every iteration, warm-ups included, put the whole event in.
    let per_level = args.records * (args.iterations + 1);
    let expected = per_level * timed_runs + if binary.is_some() { per_level } else { 0 };
    let got = tp.row_count("trade").unwrap_or(0) + tp.row_count("quote").unwrap_or(0);
    anyhow::ensure!(
        got == expected && tp.rejected() == 0,
        "the stand-in holds {got} rows (expected {expected}), {} updates refused",
        tp.rejected()
    );
    println!("\nchecked: the stand-in holds all {got} rows, none refused");
    tp_rt.block_on(tp.shutdown());
    Ok(if binary.is_some() || args.mixed || args.kpl {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The in-process level: one long-lived `App`, as in the Lambda process
/// (its store remembers the keys it confirmed, its link stays connected).
struct Bench {
    app: App,
    args: Args,
    records: usize,
}

impl Bench {
    async fn new(args: &Args, tp: &RunningTp, publish: &str) -> anyhow::Result<Bench> {
        let config = Config::from_vars([
            ("TICKBRIDGE_TP".to_string(), tp.local_addr().to_string()),
            ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
            ("TICKBRIDGE_PUBLISH".to_string(), publish.to_string()),
        ])?;
        let catalog = Arc::new(load_catalog(&config)?);
        let mut link = TpLink::from_config(&config)?;
        link.ensure_connected(Instant::now() + Duration::from_secs(5))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let app = App::with_parts(
            config.clone(),
            Store::Memory(MemoryStore::new()),
            link,
            Quarantine::Log(LogQuarantine),
            SchemaDecoder::new(catalog, !args.no_payload_keys),
        );
        Ok(Bench {
            app,
            args: args.clone(),
            records: args.records,
        })
    }

    /// One in-process iteration on an event of fresh records (built before
    /// the timing), recorded in `into` unless it is the warm-up (the first
    /// run pays for lazily built state).
    async fn iteration(&self, iteration: usize, into: &mut InProcess) -> anyhow::Result<()> {
        let first = FIRST + (iteration + 1) * self.records;
        let event = workload_event(&self.args, first)?;
        let app = &self.app;
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
            inv.response.batch_item_failures.is_empty() && inv.summary.forwarded == self.records,
            "iteration {iteration}: {} forwarded, failures {:?}",
            inv.summary.forwarded,
            inv.summary.failure_reasons
        );
        into.event_bytes = event.len();
        if iteration > 0 {
            into.handler_ms.push(elapsed);
            into.stages.push(inv.summary.stage_ms.clone());
            into.cpu_ms.extend(cpu);
        }
        Ok(())
    }
}

/// `cargo bench --bench handler`: the whole handler in process (no Lambda
/// process, no publish-mode comparison): median and p99 per batch.
pub fn handler_only(args: &Args) -> anyhow::Result<()> {
    let tp_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("stand-in")
        .enable_all()
        .build()?;
    let schemas = tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?;
    let tp = tp_rt.block_on(spawn(TickerplantConfig::new(schemas)))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let r = rt.block_on(in_process_only(args, &tp, "sync"))?;
    print_levels(args, &r, None);
    tp_rt.block_on(tp.shutdown());
    Ok(())
}

async fn in_process_only(args: &Args, tp: &RunningTp, publish: &str) -> anyhow::Result<InProcess> {
    let bench = Bench::new(args, tp, publish).await?;
    let mut r = InProcess::default();
    for iteration in 0..=args.iterations {
        bench.iteration(iteration, &mut r).await?;
    }
    r.peak_rss_kb = peak_rss_kb();
    Ok(r)
}

/// Both levels, taking turns; the Lambda process level only with a binary.
async fn side_by_side(
    args: &Args,
    tp: &RunningTp,
    bootstrap: Option<&PathBuf>,
) -> anyhow::Result<(InProcess, Option<Binary>)> {
    let bench = Bench::new(args, tp, "sync").await?;
    let mut lambda = match bootstrap {
        Some(path) => Some(Lambda::start(args, path, tp.local_addr()).await?),
        None => None,
    };
    let mut inproc = InProcess::default();
    for iteration in 0..=args.iterations {
        bench.iteration(iteration, &mut inproc).await?;
        if let Some(l) = lambda.as_mut() {
            l.invocation(args, iteration).await?;
        }
    }
    inproc.peak_rss_kb = peak_rss_kb();
    Ok((inproc, lambda.map(Lambda::finish)))
}

/// The bootstrap process that handles the events, and its runtime API.
struct Lambda {
    api: RuntimeApi,
    function: Function,
    figures: Binary,
    /// Stdout lines already searched for `batch done`.
    lines_seen: usize,
}

impl Lambda {
    /// Starts the binary `init_runs` times for the init figure; the last
    /// process stays to handle the events.
    async fn start(args: &Args, path: &Path, tp: SocketAddr) -> anyhow::Result<Lambda> {
        let mut init_ms = Vec::new();
        let runs = args.init_runs.max(1);
        for run in 0..runs {
            let mut api = RuntimeApi::bind().await?;
            let start = Instant::now();
            // Info, as deployed: the handler's time comes from its
            // `batch done` line.
            let function =
                Function::start(path, api.addr, tp, &[("TICKBRIDGE_LOG", "info")], true)?;
            api.wait_ready(Duration::from_secs(10))
                .await
                .map_err(|e| anyhow::anyhow!("{e}\n{}", function.tail()))?;
            init_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            if run + 1 == runs {
                return Ok(Lambda {
                    lines_seen: 0,
                    api,
                    function,
                    figures: Binary {
                        path: path.to_path_buf(),
                        init_ms,
                        invoke_ms: Vec::new(),
                        handler_ms: Vec::new(),
                        cpu_ms: Vec::new(),
                        first_rss_kb: None,
                        peak_rss_kb: None,
                    },
                });
            }
        }
        anyhow::bail!("no bootstrap process started")
    }

    /// One event of fresh records through the runtime API, recorded unless
    /// it is the warm-up.
    async fn invocation(&mut self, args: &Args, iteration: usize) -> anyhow::Result<()> {
        // Built and copied before it is queued: not part of the timing.
        let body: Arc<[u8]> =
            Arc::from(workload_event(args, FIRST + (iteration + 1) * args.records)?.into_bytes());
        let cpu_before = self.function.cpu_ns();
        let got = self
            .api
            .invoke(&format!("bench-{iteration}"), body, Duration::from_secs(60))
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n{}", self.function.tail()))?;
        let cpu = match (cpu_before, self.function.cpu_ns()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e6),
            _ => None,
        };
        let response = match got.answer {
            Answer::Response(body) => body,
            Answer::Error(e) => anyhow::bail!(
                "invocation {iteration} failed: {}\n{}",
                String::from_utf8_lossy(&e),
                self.function.tail()
            ),
        };
        let v: serde_json::Value = serde_json::from_slice(&response)?;
        anyhow::ensure!(
            v == serde_json::json!({"batchItemFailures": []}),
            "invocation {iteration} answered {v}\n{}",
            self.function.tail()
        );
        if iteration == 0 {
            self.figures.first_rss_kb = self.function.peak_rss_kb();
        } else {
            self.figures
                .invoke_ms
                .push(got.elapsed.as_secs_f64() * 1000.0);
            self.figures.cpu_ms.extend(cpu);
            let handler = self.handler_ms(&format!("bench-{iteration}"))?;
            self.figures.handler_ms.push(handler);
        }
        Ok(())
    }

    /// `handler_ms` of invocation `request_id`'s `batch done` line. The
    /// line is written before the response is posted, but comes through
    /// another pipe: it may still be on its way (bounded wait).
    fn handler_ms(&mut self, request_id: &str) -> anyhow::Result<f64> {
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let lines = self.function.stdout_lines();
            for line in &lines[self.lines_seen.min(lines.len())..] {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if v["request_id"] == request_id && v["message"] == "batch done" {
                    self.lines_seen = lines.len();
                    return v["handler_ms"].as_f64().ok_or_else(|| {
                        anyhow::anyhow!("batch done line without handler_ms: {line}")
                    });
                }
            }
            anyhow::ensure!(
                Instant::now() < until,
                "no `batch done` line for {request_id} from the function\n{}",
                self.function.tail()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn finish(mut self) -> Binary {
        self.figures.peak_rss_kb = self.function.peak_rss_kb();
        self.figures
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

fn print_levels(args: &Args, r: &InProcess, b: Option<&Binary>) {
    let h = Spread::of(&r.handler_ms);
    let rate = |median_ms: f64| args.records as f64 / (median_ms / 1000.0);
    println!(
        "bridge: {} {} records per {} ({:.2} MB of JSON), \
         in-memory store, payload keys {}, stand-in over loopback TCP; \
         {} iterations of each level after a warm-up, taking turns",
        args.records,
        if args.mixed {
            "alternating trade/quote"
        } else {
            "trade"
        },
        if args.sqs {
            "SQS FIFO event, one message group"
        } else {
            "Kinesis event, one shard"
        },
        r.event_bytes as f64 / 1e6,
        if args.no_payload_keys { "off" } else { "on" },
        r.handler_ms.len()
    );
    println!(
        "  {:<58} {:>9} {:>9} {:>12}",
        "per batch (wall clock)", "median", "p99", "records/s"
    );
    let row = |what: &str, s: &Spread| {
        println!(
            "  {what:<58} {:>6.2} ms {:>6.2} ms {:>12.0}",
            s.median,
            s.p99,
            rate(s.median)
        );
    };
    row("in process: App::handle from event bytes, one core", &h);
    let lambda = b
        .filter(|b| !b.invoke_ms.is_empty())
        .map(|b| Spread::of(&b.invoke_ms));
    if let Some(l) = &lambda {
        row("Lambda process: GET /next served -> response POSTed", l);
        if let Some(b) = b.filter(|b| !b.handler_ms.is_empty()) {
            // Per invocation, so the split adds up where the medians
            // would not.
            let outside: Vec<f64> = b
                .invoke_ms
                .iter()
                .zip(&b.handler_ms)
                .map(|(all, handler)| all - handler)
                .collect();
            let (inside, outside) = (Spread::of(&b.handler_ms), Spread::of(&outside));
            println!(
                "    of which App::handle in the function {:.2} ms (p99 {:.2}); the runtime's \
                 part (event over HTTP, runtime client, response) {:.2} ms (p99 {:.2})",
                inside.median, inside.p99, outside.median, outside.p99
            );
        }
        println!(
            "  the Lambda process runs at {:.0}% of the in-process rate (medians; p99 {:.0}%)",
            h.median / l.median * 100.0,
            h.p99 / l.p99 * 100.0,
        );
        if let Some(b) = b.filter(|b| b.invoke_ms.len() == r.handler_ms.len()) {
            // The levels take turns, so iteration i of each ran under the
            // same load: the median of the ratios of such pairs is steadier
            // on a shared machine than the ratio of two medians.
            let paired = |lambda: &[f64]| {
                let ratios: Vec<f64> = r
                    .handler_ms
                    .iter()
                    .zip(lambda)
                    .map(|(inproc, lambda)| inproc / lambda * 100.0)
                    .collect();
                Spread::of(&ratios).median
            };
            print!(
                "  paired by iteration (median of the ratios): the Lambda process at {:.0}%",
                paired(&b.invoke_ms)
            );
            if b.handler_ms.len() == r.handler_ms.len() {
                print!(
                    "; App::handle in the function at {:.0}% of the in-process rate",
                    paired(&b.handler_ms)
                );
            }
            println!();
        }
    }
    println!(
        "  in process: {:.0} records/s at the median; target >= {:.0}: {}",
        rate(h.median),
        TARGET_RECORDS_PER_SEC,
        verdict(rate(h.median) >= TARGET_RECORDS_PER_SEC)
    );
    if let Some(l) = &lambda {
        println!(
            "  Lambda process: {:.0} records/s at the median; target >= {:.0}: {}",
            rate(l.median),
            TARGET_LAMBDA_RECORDS_PER_SEC,
            verdict(rate(l.median) >= TARGET_LAMBDA_RECORDS_PER_SEC)
        );
    }
    if !r.cpu_ms.is_empty() {
        let c = Spread::of(&r.cpu_ms);
        print!(
            "  on-CPU time per batch (waits for a CPU excluded): in process (bridge thread) \
             median {:.2} ms",
            c.median
        );
        match b.filter(|b| !b.cpu_ms.is_empty()) {
            Some(b) => println!(
                ", Lambda process (all its threads) median {:.2} ms",
                Spread::of(&b.cpu_ms).median
            ),
            None => println!(),
        }
    }
    let spread =
        |f: fn(&StageTimes) -> f64| Spread::of(&r.stages.iter().map(f).collect::<Vec<_>>());
    let (parse, dedupe, decode, publish, commit) = (
        spread(|s| s.parse),
        spread(|s| s.dedupe),
        spread(|s| s.decode),
        spread(|s| s.publish),
        spread(|s| s.commit),
    );
    println!(
        "  stages in process (median ms): event parse {:.2}, dedupe {:.2}, \
         decode {:.2}, publish+confirm {:.2}, commit {:.2}, the rest {:.2}",
        parse.median,
        dedupe.median,
        decode.median,
        publish.median,
        commit.median,
        (h.median - parse.median - dedupe.median - decode.median - publish.median - commit.median)
            .max(0.0)
    );
    println!(
        "  stages in process (p99 ms):    event parse {:.2}, dedupe {:.2}, decode {:.2}, \
         publish+confirm {:.2}, commit {:.2}",
        parse.p99, dedupe.p99, decode.p99, publish.p99, commit.p99,
    );
    if let Some(kb) = r.peak_rss_kb {
        println!(
            "  peak RSS of this process (bridge, stand-in holding every row, events): {:.1} MB",
            kb as f64 / 1024.0
        );
    }
    let Some(b) = b else { return };
    let init = Spread::of(&b.init_ms);
    println!("\nthe Lambda binary ({}):", b.path.display());
    println!(
        "  init, process start to first GET /next ({} starts): median {:.1} ms, max {:.1} ms; \
         target < {TARGET_INIT_MS} ms: {}",
        b.init_ms.len(),
        init.median,
        init.max,
        verdict(init.median < TARGET_INIT_MS)
    );
    match (b.first_rss_kb, b.peak_rss_kb) {
        (Some(first), Some(all)) => {
            let mb = |kb: u64| kb as f64 / 1024.0;
            println!(
                "  peak RSS of the bootstrap process (VmHWM): {:.1} MB after one event of {:.1} MB \
                 (target < {TARGET_RSS_MB} MB: {}); {:.1} MB after all {} (the in-memory store \
                 holds up to about twice its {} keys remembered)",
                mb(first),
                r.event_bytes as f64 / 1e6,
                verdict(mb(first) < TARGET_RSS_MB),
                mb(all),
                b.invoke_ms.len() + 1,
                tickbridge::dedupe::memory::KEYS_REMEMBERED,
            );
        }
        _ => println!("  peak RSS: unavailable (no /proc)"),
    }
}

fn warn_if_stale(path: &Path) {
    // One `cargo build --release --bins` links the two binaries a little
    // apart (`bootstrap` first): only a gap longer than any such build is
    // a stale binary.
    const ONE_BUILD: std::time::Duration = std::time::Duration::from_secs(15 * 60);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let me = std::env::current_exe().ok();
    if let (Some(b), Some(t)) = (modified(path), me.as_deref().and_then(modified)) {
        if t.duration_since(b).is_ok_and(|gap| gap > ONE_BUILD) {
            println!(
                "note: {} is older than this executable; rebuild it for current figures\n",
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
    fn kpl_events_carry_the_same_user_records_in_aggregates_of_100() {
        let opts = SourceOptions::default();
        let plain = parse_event(event(250, 0).unwrap().as_bytes(), &opts).unwrap();
        let text = kpl_event(250, 0).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["Records"].as_array().map(Vec::len), Some(3));
        let users = parse_event(text.as_bytes(), &opts).unwrap();
        assert_eq!(users.len(), 250);
        for (u, p) in users.iter().zip(&plain) {
            assert_eq!(u.payload, p.payload);
            assert!(u.defect.is_none());
        }
        let subs: Vec<u32> = users
            .iter()
            .filter_map(|u| u.sub.as_ref().map(|s| s.index))
            .collect();
        assert_eq!(subs.len(), 250);
        assert_eq!((subs[99], subs[100], subs[249]), (99, 0, 49));
    }

    #[test]
    fn spread_takes_nearest_rank_percentiles() {
        let sample: Vec<f64> = (1..=100).map(f64::from).collect();
        let s = Spread::of(&sample);
        assert_eq!((s.min, s.median, s.p99, s.max), (1.0, 50.0, 99.0, 100.0));
        let s = Spread::of(&[3.0]);
        assert_eq!((s.median, s.p99), (3.0, 3.0));
    }
}
