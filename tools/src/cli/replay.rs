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
use tickbridge::replay::report::Report;
use tickbridge::replay::sqs::{KeyFrom, SqsReplay};
use tickbridge::replay::{file, Options, Replayer};

use super::errors::one_line;
use super::invoke::{bridge_settings, needs};

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
    /// Stop after this many source messages: DLQ messages (`replay sqs`),
    /// on-failure records, each naming a range of a shard (`replay
    /// kinesis`), or event lines (`replay file`). Not records: one message,
    /// range or line can hold many (`--rate` counts records).
    #[arg(long)]
    pub max: Option<usize>,
    /// At most this many records per second (`200`, `200/s`, `600/m`),
    /// counted from the start; a batch waits until its last record's turn,
    /// so the first batch is paced too.
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
    #[arg(long, alias = "quarantine-queue")]
    pub quarantine_queue_url: Option<String>,
    /// Schema directory; default `TICKBRIDGE_SCHEMAS` or the embedded examples.
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// How long received messages stay hidden while replayed (seconds). A
    /// batch's DynamoDB claims expire a little before, so a message that
    /// comes back after a crash is replayed at once.
    #[arg(long, default_value_t = 60)]
    pub visibility_timeout: u64,
    #[command(flatten)]
    pub aws: super::AwsArgs,
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
    super::progress::install_replay_bars();
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
    // Before any thread starts: App::init builds its DynamoDB and SQS
    // clients from the environment, and so does everything else here.
    common.aws.apply();
    let settings = bridge_settings(
        common.tp.clone(),
        store,
        common.dedupe_table.clone(),
        common.quarantine_queue_url.clone(),
        common.schemas.as_ref().map(|p| p.display().to_string()),
    );
    let mut config = settings.config()?;
    if !redrive {
        super::validate_tp(&settings, &config)?;
    }
    let mut wanted = needs(&config, &settings);
    if let ReplayCommand::Sqs(SqsArgs {
        redrive_to: Some(to),
        ..
    }) = &cmd
    {
        wanted.queues.push(("--redrive-to", to.clone()));
    }
    config.pipeline.replay = true;
    let opts = common.options();
    let yes = common.yes;
    let visibility = Duration::from_secs(common.visibility_timeout.max(2));
    super::runtime()?.block_on(async move {
        let sdk = tickbridge::aws::sdk_config(None).await;
        let sqs = tickbridge::aws::sqs_client(&sdk);
        let depth_of = |flag: &'static str, url: String| {
            let sqs = sqs.clone();
            async move {
                depth(&sqs, &url)
                    .await
                    // The flag names the queue; the error need not again.
                    .map_err(|e| {
                        super::errors::usage(anyhow::anyhow!(
                            "{flag} {url}: SQS {} failed: {}",
                            e.op,
                            one_line(&e.cause)
                        ))
                    })
            }
        };
        let plan = match &cmd {
            ReplayCommand::Sqs(a) => {
                let (visible, in_flight) = depth_of("--dlq", a.dlq.clone()).await?;
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
                let (visible, _) = depth_of("--queue", a.queue.clone()).await?;
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
        super::preflight::check(&sdk, &wanted).await?;
        let max_note = opts.max.map(|m| format!(", at most {m} messages")).unwrap_or_default();
        let plan = format!("{plan}; {store_note}{max_note}");
        if opts.dry_run {
            eprintln!("dry run: would {plan}");
        } else if !confirm(&plan, yes)? {
            eprintln!("nothing done");
            return Ok(ExitCode::from(2));
        }
        let app = App::init(config).await.map_err(|e| settings.blame(e.into()))?;
        let mut rep = Replayer::new(app, opts);
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
            report.fail_message("replay", one_line(&e.to_string()));
        }
        print!("{}", render_report(&report));
        let _ = std::io::stdout().flush();
        Ok(if report.succeeded() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// At most this many reasons per list are printed; the counts are exact.
const SHOWN: usize = 20;

/// The summary table, worded for what happened: a dry run says what it
/// would do and that every message stays where it is.
pub fn render_report(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let rows: Vec<(&str, usize)> = if r.dry_run {
        vec![
            ("messages read", r.messages),
            ("records", r.records),
            ("would forward", r.forwarded),
            ("duplicates to skip", r.duplicates),
            ("would quarantine", r.quarantined),
            ("would fail", r.failed.len()),
            ("would redrive", r.redriven),
            ("messages left as they were", r.messages.max(r.kept)),
        ]
    } else {
        vec![
            ("messages read", r.messages),
            ("records", r.records),
            ("forwarded", r.forwarded),
            ("duplicates skipped", r.duplicates),
            ("quarantined", r.quarantined),
            ("failed", r.failed.len()),
            ("deleted", r.deleted),
            ("redriven", r.redriven),
            ("messages kept", r.kept),
        ]
    };
    let title = if r.dry_run {
        "replay summary (dry run: nothing forwarded, claimed, moved or deleted)"
    } else {
        "replay summary"
    };
    let _ = writeln!(out, "{title}");
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, n) in rows {
        let _ = writeln!(out, "  {name:<width$} {n:>10}");
    }
    let quarantine_label = if r.dry_run {
        "would quarantine"
    } else {
        "quarantined"
    };
    for (label, list) in [("failed", &r.failed), (quarantine_label, &r.bad)] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{label}:");
        for (what, reason) in list.iter().take(SHOWN) {
            let _ = writeln!(out, "  {what}: {}", one_line(reason));
        }
        if list.len() > SHOWN {
            let _ = writeln!(out, "  … and {} more", list.len() - SHOWN);
        }
    }
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
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
