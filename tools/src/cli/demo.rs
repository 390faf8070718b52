//! `tickbridge demo`: the whole bridge on an embedded default, with nothing
//! installed beyond the build. A tickerplant stand-in runs in-process, dedupe
//! state lives in memory, and sample batches show the guarantees: producer
//! duplicates skipped, a redelivered batch forwarding nothing twice, bad
//! records quarantined with their reason, a KPL aggregate split into its
//! user records, SQS message groups kept apart.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::bench::events::{kinesis_event, kinesis_event_bytes, sqs_event};
use tickbridge::app::{App, Invocation, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::memory::MemoryStore;
use tickbridge::kdb::{render, K};
use tickbridge::pipeline::{BatchContext, RecordState, SchemaDecoder};
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::source::kpl;
use tickbridge::tp::{spawn, TickerplantConfig};
use tickbridge::tplink::TpLink;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Also print each batch response as JSON.
    #[arg(long)]
    pub json: bool,
}

fn trade(id: &str, sym: &str, price: f64, size: i64, side: &str) -> String {
    serde_json::json!({"type": "trade", "id": id, "sym": sym, "price": price, "size": size, "side": side})
        .to_string()
}

fn quote(id: &str, sym: &str, bid: f64, ask: f64) -> String {
    serde_json::json!({"type": "quote", "id": id, "sym": sym, "bid": bid, "ask": ask, "bsize": 100, "asize": 200})
        .to_string()
}

fn report(title: &str, inv: &Invocation, json: bool) {
    let s = &inv.summary;
    println!("\n== {title}");
    println!(
        "   records {}  forwarded {}  duplicates {}  quarantined {}  failed {}  rows {:?}  dedupe requests {}",
        s.records, s.forwarded, s.duplicates, s.quarantined, s.failed, s.rows_per_table, s.dedupe_requests
    );
    for st in &inv.states {
        if let RecordState::Quarantined { reason } = st {
            println!("   quarantined: {reason}");
        }
    }
    let failures: Vec<&str> = inv
        .response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    println!(
        "   batch response: {} item failure(s) {:?}",
        failures.len(),
        failures
    );
    if json {
        println!("   {}", inv.response_json());
    }
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    super::runtime()?.block_on(async move {
        let schemas = tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?;
        let tp = spawn(TickerplantConfig::new(schemas)).await?;
        let addr = tp.local_addr();
        println!("tickbridge demo: tickerplant stand-in on {addr}, dedupe state in memory");

        let config = Config::from_vars([
            ("TICKBRIDGE_TP".to_string(), addr.to_string()),
            ("TICKBRIDGE_STORE".to_string(), "memory".to_string()),
        ])?;
        let catalog = Arc::new(tickbridge::app::load_catalog(&config)?);
        let link = TpLink::from_config(&config)?;
        let app = App::with_parts(
            config,
            Store::Memory(MemoryStore::new()),
            link,
            Quarantine::Log(LogQuarantine),
            SchemaDecoder::new(catalog, true),
        );
        let ctx = || BatchContext::with_budget("demo", Duration::from_secs(30));

        let first = vec![
            trade("t-1", "AAPL", 187.25, 300, "B"),
            quote("q-1", "AAPL", 187.20, 187.30),
            trade("t-2", "MSFT", 411.10, 100, "S"),
            trade("t-1", "AAPL", 187.25, 300, "B"),
            r#"{"type":"trade","id":"t-bad","sym":"IBM","price":"n/a","size":100,"side":"B"}"#
                .to_string(),
            trade("t-3", "AAPL", 187.30, 200, "B"),
            quote("q-2", "MSFT", 411.00, 411.20),
        ];
        let event = kinesis_event(&first, 1, "trades").to_string();
        let inv = app.handle(event.as_bytes(), &ctx()).await?;
        report(
            "1. Kinesis batch: 7 records, one producer duplicate (t-1 again), one bad record",
            &inv,
            args.json,
        );

        let mut again = first.clone();
        again.push(trade("t-4", "IBM", 150.05, 500, "S"));
        let event = kinesis_event(&again, 1, "trades").to_string();
        let inv = app.handle(event.as_bytes(), &ctx()).await?;
        report(
            "2. The same batch redelivered by Lambda, plus one new record: only t-4 is forwarded",
            &inv,
            args.json,
        );

        // A KPL producer packs many user records into one Kinesis record.
        let users = [
            trade("k-1", "NVDA", 140.10, 10, "B"),
            trade("k-2", "NVDA", 140.20, 20, "S"),
            trade("k-3", "TSLA", 251.00, 30, "B"),
            quote("kq-1", "NVDA", 140.15, 140.25),
        ];
        let aggregated = kpl::aggregate(users.iter().map(|u| kpl::UserRecord {
            partition_key: "NVDA",
            explicit_hash_key: None,
            data: u.as_bytes(),
        }));
        let split = match kpl::deaggregate(kpl::Bytes::from(aggregated.clone())) {
            kpl::Aggregation::Aggregate(a) => a.len(),
            kpl::Aggregation::Plain { .. } => 0,
        };
        let plain = trade("k-0", "TSLA", 250.90, 5, "S");
        let event = kinesis_event_bytes(&[plain.as_bytes(), &aggregated], 1, "ticks").to_string();
        let inv = app.handle(event.as_bytes(), &ctx()).await?;
        report(
            "3. Kinesis batch from a KPL producer: one plain record and one aggregate",
            &inv,
            args.json,
        );
        println!("   1 KPL aggregate → {split} user records, each forwarded in order");

        let sqs = vec![
            trade("s-1", "GOOG", 171.00, 10, "B"),
            trade("s-2", "AMZN", 181.50, 20, "S"),
            "{not json".to_string(),
            trade("s-3", "GOOG", 171.10, 30, "B"),
            trade("s-4", "AMZN", 181.40, 40, "B"),
            trade("s-5", "NVDA", 140.00, 50, "S"),
        ];
        let event = sqs_event(&sqs, 3, "trades.fifo").to_string();
        let inv = app.handle(event.as_bytes(), &ctx()).await?;
        report(
            "4. SQS FIFO batch: 3 message groups, one message is not JSON",
            &inv,
            args.json,
        );
        let inv = app.handle(event.as_bytes(), &ctx()).await?;
        report(
            "5. The SQS batch delivered again: every message is a duplicate",
            &inv,
            args.json,
        );

        println!(
            "\n== What the tickerplant received (.u.i = {} updates)",
            tp.msg_count()
        );
        for name in ["trade", "quote"] {
            if let Some(t) = tp.table(name) {
                println!("\n{name}\n{}", render(&K::Table(t)));
            }
        }
        tp.shutdown().await;
        Ok(ExitCode::SUCCESS)
    })
}
