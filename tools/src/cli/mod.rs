//! The `tickbridge` command line. Each subcommand lives in its own module
//! with its clap arguments and a `run` function; the binary only dispatches.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod bench;
pub mod completions;
pub mod ctl;
pub mod demo;
pub mod errors;
pub mod ingest;
pub mod invoke;
pub mod kdb;
pub mod preflight;
pub mod progress;
pub mod replay;
pub mod run;
pub mod schema;
pub mod settings;
pub mod tp;

#[derive(Parser, Debug)]
#[command(
    name = "tickbridge",
    version,
    about = "AWS Kinesis / SQS FIFO records into a kdb+ tickerplant: typed, deduplicated, in order",
    after_help = "Exit status: 0 done; 1 some records failed or were left pending, or the command failed; 2 a usage or settings error (a bad flag or variable, a table, queue or stream that does not exist)."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole bridge on an embedded default: a tickerplant stand-in, the
    /// in-memory store, sample Kinesis and SQS FIFO batches (with
    /// duplicates, a redelivery and bad records), and what arrived.
    Demo(demo::DemoArgs),
    /// Run one Lambda event file through the handler; print the batch response.
    Invoke(invoke::InvokeArgs),
    /// Stream S3 objects (s3://bucket/prefix, in key order) into the
    /// tickerplant with the Lambda's object path and checkpoints.
    Ingest(ingest::IngestArgs),
    /// kdb+ IPC tools: decode captured bytes, query a kdb+ process.
    #[command(subcommand)]
    Kdb(kdb::KdbCommand),
    /// Run the tickerplant stand-in (a kdb+tick-compatible server), or read its journal.
    Tp(tp::TpArgs),
    /// Check schema files, or print them as a q schema file for tick.q.
    #[command(subcommand)]
    Schema(schema::SchemaCommand),
    /// Re-drive a dead-letter queue, a Kinesis on-failure destination or
    /// captured events through the pipeline, skipping what already arrived.
    #[command(subcommand)]
    Replay(replay::ReplayCommand),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The deployed function: mapping status, pause/resume, reserved concurrency.
    Ctl(ctl::CtlArgs),
    /// Poll Kinesis or SQS directly, with the event source mapping's semantics.
    Run(run::RunArgs),
    /// Print a shell completion script (bash, zsh, fish).
    Completions(completions::CompletionsArgs),
}

/// Logs go to stderr so stdout stays for the command's own output; colours
/// only when stderr is a terminal (a redirected log stays plain text). A
/// `TICKBRIDGE_LOG` that does not parse is an error naming it, not a
/// silent fall back to the default.
pub fn init_logging(format: &str, default_filter: &str) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let filter = match std::env::var("TICKBRIDGE_LOG") {
        Ok(raw) if !raw.trim().is_empty() => tracing_subscriber::EnvFilter::builder()
            .parse(raw.trim())
            .map_err(|e| {
                errors::usage(anyhow::anyhow!(
                    "TICKBRIDGE_LOG: {raw:?} is not a log filter like `info` or `tickbridge=debug,warn` ({e})"
                ))
            })?,
        _ => tracing_subscriber::EnvFilter::new(default_filter),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        // Above any progress bar (cli::progress).
        .with_writer(|| progress::LogWriter);
    let _ = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}

/// How the commands that talk to a kdb+ process (`kdb query`, `schema
/// diff`) connect: the password comes from a variable named here, never a
/// flag, so it stays out of shell history.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnArgs {
    /// User for the `user:password` handshake.
    #[arg(long)]
    pub user: Option<String>,
    /// Name of the environment variable holding the password.
    #[arg(long, requires = "user")]
    pub password_env: Option<String>,
    /// Extra CA certificates (PEM) for a tls:// target, trusted besides the
    /// public roots.
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Bound on connecting, the handshake and waiting for each reply.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

impl ConnArgs {
    /// The client settings for `target` with these flags.
    pub fn client_config(
        &self,
        target: &str,
    ) -> anyhow::Result<tickbridge::kdb::client::ClientConfig> {
        use anyhow::Context;
        use tickbridge::kdb::client::{ClientConfig, Credentials, Target};
        let target = Target::parse(target)?.with_ca_file(self.ca_file.clone());
        let credentials = match (&self.user, &self.password_env) {
            (Some(user), Some(var)) => {
                let pw = std::env::var(var).with_context(|| {
                    format!("environment variable {var} (the password) is not set")
                })?;
                Some(Credentials::new(user.clone(), pw))
            }
            (Some(user), None) => Some(Credentials::new(user.clone(), "")),
            _ => None,
        };
        let t = std::time::Duration::from_millis(self.timeout_ms.max(1));
        let mut config = ClientConfig::new(target).with_credentials(credentials);
        config.connect_timeout = t;
        config.handshake_timeout = t;
        config.read_timeout = t;
        Ok(config)
    }
}

/// Where the AWS SDK sends requests, for every command that talks to AWS.
#[derive(clap::Args, Debug, Clone)]
pub struct AwsArgs {
    /// AWS endpoint for every service (LocalStack, moto); default
    /// `AWS_ENDPOINT_URL[_SERVICE]`, else AWS itself.
    #[arg(long, alias = "endpoint")]
    pub endpoint_url: Option<String>,
}

impl AwsArgs {
    /// Must run before any thread starts: the bridge builds its clients
    /// from the environment, so the flag becomes `AWS_ENDPOINT_URL`.
    pub fn apply(&self) {
        if let Some(url) = &self.endpoint_url {
            std::env::set_var("AWS_ENDPOINT_URL", url);
        }
    }
}

/// The tickerplant address parses, or the error names `--tp` (or
/// `TICKBRIDGE_TP` when that is where it came from).
pub fn validate_tp(
    settings: &settings::Settings,
    config: &tickbridge::config::Config,
) -> anyhow::Result<()> {
    tickbridge::kdb::client::Target::parse(&config.tp)
        .map(|_| ())
        .map_err(|e| errors::usage(settings.blame(anyhow::anyhow!("TICKBRIDGE_TP: {e}"))))
}

/// A runtime for the subcommands that do I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // The demo's story is on stdout; its logs show only what went wrong
    // (quarantined records) unless TICKBRIDGE_LOG asks for more.
    let default_filter = match cli.command {
        Command::Demo(_) => "warn",
        _ => "info",
    };
    init_logging(&cli.log_format, default_filter)?;
    match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Invoke(a) => invoke::run(a),
        Command::Ingest(a) => ingest::run(a),
        Command::Kdb(c) => kdb::run(c),
        Command::Tp(a) => tp::run(a),
        Command::Schema(c) => schema::run(c),
        Command::Replay(c) => replay::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Ctl(a) => ctl::run(a),
        Command::Run(a) => run::run(a),
        Command::Completions(a) => completions::run(a),
    }
}
