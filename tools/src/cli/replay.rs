//! `tickbridge replay …`: re-drive what landed in a dead-letter queue, a
//! Kinesis on-failure destination or a file of captured events (DESIGN §8).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use tickbridge::app::App;
use tickbridge::aws::sqs::depth;
use tickbridge::config::StoreKind;
use tickbridge::replay::kinesis::KinesisReplay;
use tickbridge::replay::progress::parse_rate;
use tickbridge::replay::sqs::{KeyFrom, SqsReplay};
use tickbridge::replay::{file, Options, Replayer};

#[derive(Subcommand, Debug)]
pub enum ReplayCommand {
    /// Replay an SQS dead-letter queue (FIFO or standard) through the
    /// pipeline, or move its messages back with --redrive-to.
    Sqs(SqsArgs),
    /// Replay the Kinesis ranges named by Lambda on-failure records in an
    /// SQS queue (plain or SNS-wrapped).
    Kinesis(KinesisArgs),
    /// Replay captured Lambda events, one JSON event per line.
    File(FileArgs),
}

#[derive(clap::Args, Debug)]
pub struct SqsArgs {
    /// The dead-letter queue URL.
    #[arg(long)]
    pub dlq: String,
    /// Move the messages to this queue (keeping group and deduplication
    /// ids) instead of replaying them.
    #[arg(long)]
    pub redrive_to: Option<String>,
    /// Where a message's original id is: `auto` takes the deduplication id
    /// of a FIFO DLQ (SQS puts the original id there) and the message id of
    /// a standard one.
    #[arg(long, default_value = "auto")]
    pub key_from: KeyFrom,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Debug)]
pub struct KinesisArgs {
    /// The SQS queue holding the on-failure records.
    #[arg(long)]
    pub queue: String,
    /// Records per GetRecords page.
    #[arg(long, default_value_t = 1000)]
    pub page_limit: i32,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Debug)]
pub struct FileArgs {
    /// Events, one Lambda event (Kinesis or SQS) per line.
    pub events: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Decode, validate and check dedupe state; forward, claim and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stop after this many source messages (DLQ messages, on-failure
    /// records, event lines).
    #[arg(long)]
    pub max: Option<usize>,
    /// At most this many records per second (`200`, `200/s`, `600/m`).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    /// Tickerplant; default `TICKBRIDGE_TP`.
    #[arg(long)]
    pub tp: Option<String>,
    /// Dedupe store; default `TICKBRIDGE_STORE` (dynamodb).
    #[arg(long, value_parser = ["memory", "dynamodb"])]
    pub store: Option<String>,
    /// DynamoDB table; default `TICKBRIDGE_DEDUPE_TABLE`.
    #[arg(long)]
    pub dedupe_table: Option<String>,
    /// Quarantine queue; default `TICKBRIDGE_QUARANTINE_QUEUE_URL`.
    #[arg(long)]
    pub quarantine_queue_url: Option<String>,
    /// Schema directory; default `TICKBRIDGE_SCHEMAS` or the embedded examples.
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// How long received messages stay hidden while replayed (seconds). A
    /// batch's DynamoDB claims expire a little before, so a message that
    /// comes back after a crash is replayed at once.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout: u64,
    /// AWS endpoint for every service (an emulator); default
    /// `AWS_ENDPOINT_URL[_SERVICE]`.
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl CommonArgs {
    fn options(&self) -> Options {
        let vis = self.visibility_timeout.max(2);
        Options {
            dry_run: self.dry_run,
            max: self.max,
            rate: self.rate,
            // Claims end before the message reappears.
            batch_budget: Duration::from_millis(vis * 1000 - (vis * 1000 / 10).max(1000)),
        }
    }
}

pub fn run(cmd: ReplayCommand) -> anyhow::Result<ExitCode> {
    let common = match &cmd {
        ReplayCommand::Sqs(a) => &a.common,
        ReplayCommand::Kinesis(a) => &a.common,
        ReplayCommand::File(a) => &a.common,
    };
    // Redrive moves messages only: no store or tickerplant is used.
    let redrive = matches!(&cmd, ReplayCommand::Sqs(a) if a.redrive_to.is_some());
    let store = if redrive {
        Some("memory".to_string())
    } else {
        common.store.clone()
    };
    if let Some(url) = &common.endpoint {
        // Before any thread starts: App::init builds its DynamoDB and SQS
        // clients from the environment, and so does everything else here.
        std::env::set_var("AWS_ENDPOINT_URL", url);
    }
    let mut config = super::invoke::config_with(&[
        ("TICKBRIDGE_TP", common.tp.clone()),
        ("TICKBRIDGE_STORE", store),
        ("TICKBRIDGE_DEDUPE_TABLE", common.dedupe_table.clone()),
        (
            "TICKBRIDGE_QUARANTINE_QUEUE_URL",
            common.quarantine_queue_url.clone(),
        ),
        (
            "TICKBRIDGE_SCHEMAS",
            common.schemas.as_ref().map(|p| p.display().to_string()),
        ),
    ])?;
    config.pipeline.replay = true;
    let opts = common.options();
    let yes = common.yes;
    let visibility = Duration::from_secs(common.visibility_timeout.max(2));
    super::runtime()?.block_on(async move {
        let sdk = tickbridge::aws::sdk_config(None).await;
        let sqs = tickbridge::aws::sqs_client(&sdk);
        let plan = match &cmd {
            ReplayCommand::Sqs(a) => {
                let (visible, in_flight) = depth(&sqs, &a.dlq).await.map_err(anyhow::Error::msg)?;
                match &a.redrive_to {
                    Some(t) => format!(
                        "move about {visible} messages ({in_flight} in flight) from {} to {t}",
                        a.dlq
                    ),
                    None => format!(
                        "replay about {visible} messages ({in_flight} in flight) of {} into the tickerplant at {}",
                        a.dlq, config.tp
                    ),
                }
            }
            ReplayCommand::Kinesis(a) => {
                let (visible, _) = depth(&sqs, &a.queue).await.map_err(anyhow::Error::msg)?;
                format!(
                    "replay the Kinesis ranges of about {visible} on-failure records in {} into the tickerplant at {}",
                    a.queue, config.tp
                )
            }
            ReplayCommand::File(a) => format!(
                "replay the events of {} into the tickerplant at {}",
                a.events.display(),
                config.tp
            ),
        };
        let store_note = match (config.store, &config.dedupe_table) {
            (StoreKind::DynamoDb, Some(t)) => format!("dedupe table {t}"),
            _ => "in-memory dedupe (nothing already forwarded is known)".to_string(),
        };
        let max_note = opts.max.map(|m| format!(", at most {m} messages")).unwrap_or_default();
        let plan = format!("{plan}; {store_note}{max_note}");
        if opts.dry_run {
            eprintln!("dry run: would {plan}");
        } else if !confirm(&plan, yes)? {
            eprintln!("nothing done");
            return Ok(ExitCode::from(2));
        }
        let ddb = (config.store == StoreKind::DynamoDb).then(|| tickbridge::aws::dynamodb_client(&sdk));
        let app = App::init(config).await?;
        let mut rep = Replayer::new(app, opts, ddb);
        let result = match &cmd {
            ReplayCommand::Sqs(a) => {
                SqsReplay {
                    client: sqs.clone(),
                    dlq_url: a.dlq.clone(),
                    redrive_to: a.redrive_to.clone(),
                    visibility_timeout: visibility,
                    key_from: a.key_from,
                }
                .run(&mut rep)
                .await
            }
            ReplayCommand::Kinesis(a) => {
                KinesisReplay {
                    sqs: sqs.clone(),
                    kinesis: aws_sdk_kinesis::Client::new(&sdk),
                    queue_url: a.queue.clone(),
                    visibility_timeout: visibility,
                    page_limit: a.page_limit,
                }
                .run(&mut rep)
                .await
            }
            ReplayCommand::File(a) => file::run(&mut rep, &a.events).await,
        };
        let mut report = rep.finish();
        if let Err(e) = &result {
            report.fail_message("replay", e.clone());
        }
        print!("{report}");
        let _ = std::io::stdout().flush();
        Ok(if report.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// Asks on the terminal; refuses when there is no terminal to ask on.
fn confirm(plan: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        eprintln!("will {plan}");
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "refusing to replay without confirmation: stdin is not a terminal; pass --yes to {plan}"
        );
    }
    eprint!("will {plan}.\nProceed? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}
