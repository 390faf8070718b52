//! `tickbridge invoke`: one event file through the same handler code the
//! Lambda runs; prints the batch response.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tickbridge::app::{log_summary, App};
use tickbridge::config::Config;
use tickbridge::pipeline::BatchContext;

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
    /// Schema directory (default: the embedded examples).
    #[arg(long)]
    pub schemas: Option<PathBuf>,
    /// Time the handler may take, as the Lambda timeout would allow.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
}

/// Settings as the Lambda would read them, with the flags on top.
pub fn config_with(overrides: &[(&str, Option<String>)]) -> anyhow::Result<Config> {
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    for (k, v) in overrides {
        if let Some(v) = v {
            vars.push((k.to_string(), v.clone()));
        }
    }
    Ok(Config::from_vars(vars)?)
}

pub fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let event = std::fs::read(&args.event)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.event.display()))?;
    let config = config_with(&[
        ("TICKBRIDGE_TP", args.tp.clone()),
        ("TICKBRIDGE_STORE", Some(args.store.clone())),
        ("TICKBRIDGE_DEDUPE_TABLE", args.dedupe_table.clone()),
        (
            "TICKBRIDGE_SCHEMAS",
            args.schemas.as_ref().map(|p| p.display().to_string()),
        ),
    ])?;
    super::runtime()?.block_on(async move {
        let app = App::init(config).await?;
        let ctx = BatchContext::with_budget("invoke", Duration::from_secs(args.timeout_secs));
        let inv = app.handle(&event, &ctx).await?;
        log_summary(&inv);
        println!("{}", serde_json::to_string_pretty(&inv.response_json())?);
        Ok(ExitCode::SUCCESS)
    })
}
