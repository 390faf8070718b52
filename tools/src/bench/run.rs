//! `tickbridge bench run`: records/s through Kinesis → `tickbridge run`'s
//! shard pollers → the pipeline → the tickerplant stand-in, with the
//! DynamoDB requests the dedupe store made per 1,000 records.
//!
//! It needs a Kinesis endpoint (kinesis-local, or AWS: it creates and
//! deletes its own stream). The stand-in runs in this process. The store is
//! DynamoDB when `--dynamodb-endpoint` is given (a fresh table), else the
//! in-memory store, which counts the requests DynamoDB would have served.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{PutRecordsRequestEntry, StreamStatus};

use crate::bench::events::{payload, Rng};
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::dynamodb::{ensure_table, DynamoStore};
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::pipeline::SchemaDecoder;
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::runner::kinesis::KinesisSettings;
use tickbridge::runner::{shutdown, Stats};
use tickbridge::tp::{spawn, TickerplantConfig};
use tickbridge::tplink::TpLink;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Kinesis endpoint (e.g. kinesis-local's `http://127.0.0.1:4567`);
    /// default: the AWS configuration.
    #[arg(long)]
    pub kinesis_endpoint: Option<String>,
    /// DynamoDB endpoint for the dedupe table (moto, DynamoDB Local);
    /// without it the in-memory store counts the requests instead.
    #[arg(long)]
    pub dynamodb_endpoint: Option<String>,
    #[arg(long, default_value_t = 20_000)]
    pub records: usize,
    #[arg(long, default_value_t = 4)]
    pub shards: i32,
    /// GetRecords limit per shard.
    #[arg(long, default_value_t = 1_000)]
    pub batch_size: i32,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub records: usize,
    pub shards: i32,
    pub batch_size: i32,
    pub store: &'static str,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub dynamodb_requests: u64,
    pub dynamodb_requests_per_1000: f64,
    pub rows_at_tickerplant: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = crate::cli::runtime()?.block_on(measure(args))?;
    println!(
        "bench run: {} records over {} shards (batch {}) in {:.2} s: {:.0} records/s; \
         {} DynamoDB requests ({}), {:.1} per 1,000 records",
        report.records,
        report.shards,
        report.batch_size,
        report.elapsed_s,
        report.records_per_s,
        report.dynamodb_requests,
        report.store,
        report.dynamodb_requests_per_1000
    );
    println!("{}", serde_json::to_string(&report)?);
    Ok(ExitCode::SUCCESS)
}

async fn sdk(endpoint: &Option<String>) -> aws_config::SdkConfig {
    match endpoint {
        Some(e) => tickbridge::aws::local_config(e).await,
        None => tickbridge::aws::sdk_config(None).await,
    }
}

pub async fn measure(args: Args) -> anyhow::Result<Report> {
    let kinesis = tickbridge::aws::kinesis_client(&sdk(&args.kinesis_endpoint).await);
    let stamp = tickbridge::pipeline::now_ms();
    let stream = format!("tickbridge-bench-{}-{stamp}", std::process::id());
    kinesis
        .create_stream()
        .stream_name(&stream)
        .shard_count(args.shards)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("create stream {stream}: {e:?}"))?;
    let started = Instant::now();
    loop {
        let d = kinesis
            .describe_stream_summary()
            .stream_name(&stream)
            .send()
            .await?;
        if d.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active)
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "stream {stream} not active"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = bench_on(&args, &kinesis, &stream).await;
    let _ = kinesis
        .delete_stream()
        .stream_name(&stream)
        .enforce_consumer_deletion(true)
        .send()
        .await;
    result
}

async fn bench_on(
    args: &Args,
    kinesis: &aws_sdk_kinesis::Client,
    stream: &str,
) -> anyhow::Result<Report> {
    // Produce first, so the figure is the runner's, not the producer's.
    let mut rng = Rng::new(11);
    let payloads: Vec<String> = (0..args.records)
        .map(|n| payload("trade", n, &mut rng))
        .collect();
    for (c, chunk) in payloads.chunks(500).enumerate() {
        let mut entries: Vec<PutRecordsRequestEntry> = chunk
            .iter()
            .enumerate()
            .map(|(i, p)| {
                PutRecordsRequestEntry::builder()
                    .data(Blob::new(p.as_bytes()))
                    .partition_key(format!("k{}", c * 500 + i))
                    .build()
            })
            .collect::<Result<_, _>>()?;
        for _ in 0..20 {
            let out = kinesis
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries.clone()))
                .send()
                .await?;
            match out.records().iter().position(|r| r.error_code().is_some()) {
                None => break,
                Some(i) => {
                    entries = entries.split_off(i);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    let tp = spawn(TickerplantConfig::new(
        tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?,
    ))
    .await?;
    let mut vars = vec![
        ("TICKBRIDGE_TP".to_string(), tp.local_addr().to_string()),
        ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
    ];
    let (store, store_kind) = match &args.dynamodb_endpoint {
        Some(endpoint) => {
            let ddb =
                tickbridge::aws::dynamodb_client(&tickbridge::aws::local_config(endpoint).await);
            let table = format!("tickbridge-bench-{}", tickbridge::pipeline::now_ms());
            ensure_table(&ddb, &table).await?;
            vars.push(("TICKBRIDGE_DEDUPE_TABLE".into(), table.clone()));
            (Store::Dynamo(DynamoStore::new(ddb, table, 16)), "dynamodb")
        }
        None => (Store::Memory(MemoryStore::new()), "memory, counted"),
    };
    let config = Config::from_vars(vars)?;
    let catalog = Arc::new(load_catalog(&config)?);
    let link = TpLink::from_config(&config)?;
    let app = Arc::new(App::with_parts(
        config,
        store,
        link,
        Quarantine::Log(LogQuarantine),
        SchemaDecoder::new(catalog, true),
    ));
    let stats = Arc::new(Stats::default());
    let (trigger, stop) = shutdown::channel();
    let mut settings = KinesisSettings::new(stream);
    settings.batch_size = args.batch_size;
    settings.idle_wait = Duration::from_millis(50);
    let started = Instant::now();
    let runner = tokio::spawn(tickbridge::runner::kinesis::run(
        app.clone(),
        kinesis.clone(),
        None,
        settings,
        stats.clone(),
        stop,
    ));
    let limit = Duration::from_secs(args.timeout_secs);
    let settled = |s: &Stats| {
        s.forwarded.load(Ordering::Relaxed)
            + s.duplicates.load(Ordering::Relaxed)
            + s.quarantined.load(Ordering::Relaxed)
    };
    while settled(&stats) < args.records as u64
        && started.elapsed() < limit
        && !runner.is_finished()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    trigger.trigger();
    runner.await??;
    let done = settled(&stats);
    anyhow::ensure!(
        done >= args.records as u64,
        "only {done} of {} records settled within {limit:?}",
        args.records
    );
    let requests = stats.dynamodb_requests.load(Ordering::Relaxed);
    let rows = tp.row_count("trade").unwrap_or(0);
    tp.shutdown().await;
    let secs = elapsed.as_secs_f64();
    Ok(Report {
        records: args.records,
        shards: args.shards,
        batch_size: args.batch_size,
        store: store_kind,
        elapsed_s: secs,
        records_per_s: args.records as f64 / secs,
        dynamodb_requests: requests,
        dynamodb_requests_per_1000: requests as f64 * 1000.0 / args.records as f64,
        rows_at_tickerplant: rows,
    })
}
