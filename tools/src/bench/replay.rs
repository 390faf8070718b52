//! `tickbridge bench replay`: replay throughput from an SQS FIFO dead-letter
//! queue on moto (started here, like the tests do, unless `--endpoint`
//! names one) into the in-process tickerplant stand-in, with DynamoDB
//! dedupe on the same moto. Prints messages/s for a first replay (every
//! message forwarded) and a second one over the same messages (every
//! message a duplicate).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};

use super::child::start_moto;
use tickbridge::app::{load_catalog, App, Store};
use tickbridge::config::Config;
use tickbridge::dedupe::dynamodb::{ensure_table, DynamoStore};
use tickbridge::pipeline::SchemaDecoder;
use tickbridge::quarantine::{LogQuarantine, Quarantine};
use tickbridge::replay::sqs::{KeyFrom, SqsReplay};
use tickbridge::replay::{Options, Replayer};
use tickbridge::tp::{spawn, TickerplantConfig};
use tickbridge::tplink::TpLink;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Messages in the dead-letter queue.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// Message groups (a FIFO queue hands out a group's next messages only
    /// once the ones in flight are deleted, so groups bound the batch size).
    #[arg(long, default_value_t = 50)]
    pub groups: usize,
    /// An SQS + DynamoDB endpoint to use instead of starting moto.
    #[arg(long)]
    pub endpoint: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (moto, endpoint) = match &args.endpoint {
        Some(e) => (None, e.clone()),
        None => {
            let (m, e) = start_moto()?;
            (Some(m), e)
        }
    };
    let result = crate::cli::runtime()?.block_on(measure(&args, &endpoint));
    drop(moto);
    result?;
    Ok(ExitCode::SUCCESS)
}

async fn measure(args: &Args, endpoint: &str) -> anyhow::Result<()> {
    let sdk = tickbridge::aws::local_config(endpoint).await;
    let sqs = tickbridge::aws::sqs_client(&sdk);
    let ddb = tickbridge::aws::dynamodb_client(&sdk);
    let tag = format!("bench-replay-{}", std::process::id());
    ensure_table(&ddb, &tag).await?;
    let tp = spawn(TickerplantConfig::new(
        tickbridge::schema::embedded::schemas().map_err(anyhow::Error::msg)?,
    ))
    .await?;
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{tag}.fifo"))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .send()
        .await?
        .queue_url
        .unwrap_or_default();
    for pass in [
        "first replay (all forwarded)",
        "second replay (all duplicates)",
    ] {
        fill(&sqs, &dlq, args, pass.starts_with("second")).await?;
        let app = app(&tp.local_addr().to_string(), &ddb, &tag)?;
        let mut rep = Replayer::new(app, Options::default());
        let source = SqsReplay {
            client: sqs.clone(),
            dlq_url: dlq.clone(),
            redrive_to: None,
            visibility_timeout: Duration::from_secs(60),
            key_from: KeyFrom::Auto,
        };
        let t = Instant::now();
        source.run(&mut rep).await.map_err(anyhow::Error::msg)?;
        let secs = t.elapsed().as_secs_f64();
        let report = rep.finish();
        println!(
            "{pass}: {} messages in {secs:.2} s = {:.0} messages/s (forwarded {}, duplicates {}, failed {}; {} groups)",
            report.messages,
            report.messages as f64 / secs,
            report.forwarded,
            report.duplicates,
            report.failed.len(),
            args.groups,
        );
    }
    println!(
        "tickerplant trade rows: {}",
        tp.row_count("trade").unwrap_or(0)
    );
    tp.shutdown().await;
    Ok(())
}

fn app(tp: &str, ddb: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<App> {
    let config = Config::from_vars([
        ("TICKBRIDGE_TP".to_string(), tp.to_string()),
        ("TICKBRIDGE_STORE".to_string(), "dynamodb".to_string()),
        ("TICKBRIDGE_DEDUPE_TABLE".to_string(), table.to_string()),
    ])?;
    let catalog = Arc::new(load_catalog(&config)?);
    let link = TpLink::from_config(&config)?;
    Ok(App::with_parts(
        config,
        Store::Dynamo(DynamoStore::new(ddb.clone(), table, 16)),
        link,
        Quarantine::Log(LogQuarantine),
        SchemaDecoder::new(catalog, true),
    ))
}

/// The DLQ as SQS leaves it: the original message id in the deduplication
/// id. The second fill uses new deduplication ids for the queue but the
/// same business ids, so every message is a payload-key duplicate.
async fn fill(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    args: &Args,
    again: bool,
) -> anyhow::Result<()> {
    let mut rng = crate::bench::events::Rng::new(7);
    let bodies: Vec<String> = (0..args.messages)
        .map(|i| crate::bench::events::payload("trade", i, &mut rng))
        .collect();
    for (c, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(k, body)| {
                let i = c * 10 + k;
                SendMessageBatchRequestEntry::builder()
                    .id(k.to_string())
                    .message_body(body)
                    .message_group_id(format!("g{}", i % args.groups.max(1)))
                    .message_deduplication_id(format!(
                        "orig-{i}{}",
                        if again { "-again" } else { "" }
                    ))
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        sqs.send_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(())
}
