//! `tickbridge invoke`: one event file through the same handler code the
//! Lambda runs; prints the batch response. Exits 1 when any record failed
//! (it would be retried by Lambda), 0 when every record was forwarded,
//! skipped as a duplicate or quarantined.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tickbridge::app::{App, Invocation};
use tickbridge::config::StoreKind;
use tickbridge::pipeline::BatchContext;

use super::preflight::{self, Needs};
use super::settings::Settings;

#[derive(clap::Args, Debug)]
pub struct InvokeArgs {
    /// The event JSON (a Kinesis or SQS event, as Lambda delivers it).
    #[arg(long)]
    pub event: PathBuf,
    /// Tickerplant (`host:port`, `tls://host:port`, `unix:///path`);
    /// default `TICKBRIDGE_TP` or 127.0.0.1:5010.
    #[arg(long)]
    pub tp: Option<String>,
    /// Where dedupe state lives. `memory` lasts for this one run.
    #[arg(long, value_parser = ["memory", "dynamodb"], default_value = "memory")]
    pub store: String,
    /// The DynamoDB table (with `--store dynamodb`).
    #[arg(long)]
    pub dedupe_table: Option<String>,
    /// SQS queue for bad records; default `TICKBRIDGE_QUARANTINE_QUEUE_URL`
    /// (none: bad records are logged).
    #[arg(long)]
    pub quarantine_queue_url: Option<String>,
    /// Schema directory (default: the embedded examples).
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// Time the handler may take, as the Lambda timeout would allow.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    #[command(flatten)]
    pub aws: super::AwsArgs,
}

/// The `--tp`, `--store`, `--dedupe-table`, `--quarantine-queue-url` and
/// `--schemas` every bridge command shares, as settings.
pub fn bridge_settings(
    tp: Option<String>,
    store: Option<String>,
    dedupe_table: Option<String>,
    quarantine_queue_url: Option<String>,
    schemas: Option<String>,
) -> Settings {
    Settings::new()
        .flag("TICKBRIDGE_TP", "--tp", tp)
        .flag("TICKBRIDGE_STORE", "--store", store)
        .flag("TICKBRIDGE_DEDUPE_TABLE", "--dedupe-table", dedupe_table)
        .flag(
            "TICKBRIDGE_QUARANTINE_QUEUE_URL",
            "--quarantine-queue-url",
            quarantine_queue_url,
        )
        .flag("TICKBRIDGE_SCHEMAS", "--schemas", schemas)
}

/// What a bridge command's settings name in AWS, for the preflight.
pub fn needs(config: &tickbridge::config::Config, settings: &Settings) -> Needs {
    let flag = |var: &'static str, flag: &'static str| {
        if settings.was_given(var) {
            flag
        } else {
            var
        }
    };
    Needs {
        table: match (config.store, &config.dedupe_table) {
            (StoreKind::DynamoDb, Some(t)) => {
                Some((flag("TICKBRIDGE_DEDUPE_TABLE", "--dedupe-table"), t.clone()))
            }
            _ => None,
        },
        queues: config
            .quarantine_queue_url
            .iter()
            .map(|q| {
                (
                    flag("TICKBRIDGE_QUARANTINE_QUEUE_URL", "--quarantine-queue-url"),
                    q.clone(),
                )
            })
            .collect(),
        stream: None,
    }
}

/// Logs the invocation's summary line, as the Lambda writes it
/// (`telemetry::BatchDone`: WARN with the reasons when a record failed,
/// times rounded to microseconds); no metrics on a terminal.
/// The App for `invoke` and `ingest`: the table and quarantine queue the
/// settings name are checked first (one cheap call each), and init errors
/// blame the flag the user typed rather than the variable it set.
pub async fn start_app(
    settings: &Settings,
    config: tickbridge::config::Config,
) -> anyhow::Result<App> {
    if config.store == StoreKind::DynamoDb || config.quarantine_queue_url.is_some() {
        let sdk = tickbridge::aws::sdk_config(None).await;
        preflight::check(&sdk, &needs(&config, settings)).await?;
    }
    App::init(config)
        .await
        .map_err(|e| settings.blame(e.into()))
}

pub fn log_invocation(inv: &Invocation) {
    inv.done(&tickbridge::metrics::MetricsSink::Off);
}

pub fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let event = std::fs::read(&args.event)
        .map_err(|e| anyhow::anyhow!("--event {}: {e}", args.event.display()))?;
    args.aws.apply();
    let settings = bridge_settings(
        args.tp.clone(),
        Some(args.store.clone()),
        args.dedupe_table.clone(),
        args.quarantine_queue_url.clone(),
        args.schemas.as_ref().map(|p| p.display().to_string()),
    );
    let config = settings.config()?;
    super::validate_tp(&settings, &config)?;
    super::runtime()?.block_on(async move {
        let app = start_app(&settings, config).await?;
        let ctx = BatchContext::with_budget("invoke", Duration::from_secs(args.timeout_secs));
        let inv = app.handle(&event, &ctx).await?;
        log_invocation(&inv);
        println!("{}", serde_json::to_string_pretty(&inv.response_json())?);
        Ok(if inv.summary.failed > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        })
    })
}
