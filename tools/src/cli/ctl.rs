//! `tickbridge ctl`: the deployed function's event source mappings and
//! concurrency (see [`tickbridge::ctl`]).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use tickbridge::ctl::{Ctl, Status, Wait};

#[derive(Args, Debug)]
pub struct CtlArgs {
    /// The function's name or ARN with the alias its mappings invoke (the
    /// template's mappings invoke `live`); concurrency applies to the
    /// function itself.
    #[arg(long, global = true, default_value = "tickbridge:live")]
    pub function: String,
    /// An endpoint instead of AWS (LocalStack, moto); `AWS_ENDPOINT_URL`
    /// is honoured too.
    #[arg(long, global = true)]
    pub endpoint_url: Option<String>,
    /// Print the resulting status as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: CtlCommand,
}

#[derive(Subcommand, Debug)]
pub enum CtlCommand {
    /// The mappings (state, batch size, source) and reserved concurrency.
    Status,
    /// Disable every mapping (for tickerplant maintenance); records wait in
    /// the stream and queue.
    Pause {
        /// Also set reserved concurrency to 0 (resume restores it).
        #[arg(long)]
        throttle: bool,
        /// Seconds to wait for the mappings to report Disabled (0: don't).
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Re-enable every mapping, restoring concurrency after `pause --throttle`.
    Resume {
        /// Seconds to wait for the mappings to report Enabled (0: don't).
        #[arg(long, default_value_t = 120)]
        wait: u64,
    },
    /// Set reserved concurrency: a number (0 throttles), or `none` to
    /// remove the reservation.
    Concurrency { value: String },
}

/// `N` or `none`.
pub fn parse_concurrency(value: &str) -> anyhow::Result<Option<i32>> {
    if value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let n: i32 = value
        .parse()
        .map_err(|_| anyhow::anyhow!("concurrency {value:?} is not a whole number or `none`"))?;
    anyhow::ensure!(n >= 0, "concurrency {n} is negative");
    Ok(Some(n))
}

fn wait(secs: u64) -> Wait {
    Wait {
        limit: Duration::from_secs(secs),
        every: Duration::from_secs(2),
    }
}

fn print(status: &Status, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
    } else {
        print!("{}", status.render());
    }
    Ok(())
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let concurrency = match &args.cmd {
        CtlCommand::Concurrency { value } => parse_concurrency(value)?,
        _ => None,
    };
    super::runtime()?.block_on(async {
        let sdk = tickbridge::aws::sdk_config(args.endpoint_url.as_deref()).await;
        let ctl = Ctl::new(&sdk, args.function.clone());
        let status = match args.cmd {
            CtlCommand::Status => ctl.status().await?,
            CtlCommand::Pause { throttle, wait: w } => ctl.pause(throttle, wait(w)).await?,
            CtlCommand::Resume { wait: w } => ctl.resume(wait(w)).await?,
            CtlCommand::Concurrency { .. } => {
                ctl.set_concurrency(concurrency).await?;
                ctl.status().await?
            }
        };
        print(&status, args.json)?;
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::parse_concurrency;

    #[test]
    fn concurrency_is_a_count_or_none() {
        assert_eq!(parse_concurrency("5").unwrap(), Some(5));
        assert_eq!(parse_concurrency("0").unwrap(), Some(0));
        assert_eq!(parse_concurrency("None").unwrap(), None);
        assert!(parse_concurrency("-1").is_err());
        assert!(parse_concurrency("many").is_err());
    }
}
