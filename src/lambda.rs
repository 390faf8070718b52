//! The Lambda adapter (`provided.al2023`): init once, then turn each
//! invocation's event into a batch for [`App::handle`] and its outcome into
//! the response Lambda expects. Everything on stdout is structured JSON:
//! tracing logs and CloudWatch EMF metric lines. `src/bin/bootstrap.rs` only
//! calls [`run`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

use crate::app::{emit_metrics, log_summary, App};
use crate::config::Config;
use crate::pipeline::{now_ms, BatchContext};

/// Reads the settings, builds the [`App`] and serves invocations until the
/// runtime stops the process.
pub async fn run() -> Result<(), Error> {
    let started = Instant::now();
    init_json_logging();
    let config = Config::from_env().inspect_err(|e| tracing::error!(error = %e, "bad settings"))?;
    let app = Arc::new(
        App::init(config)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "init failed"))?,
    );
    tracing::info!(
        init_ms = started.elapsed().as_secs_f64() * 1000.0,
        "tickbridge ready"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Box<RawValue>>| {
        let app = app.clone();
        async move { handle(&app, event).await }
    }))
    .await
}

/// One invocation: the event's bytes through the bridge, the batch
/// response back (or an error, so Lambda retries the whole batch).
pub async fn handle(
    app: &App,
    event: LambdaEvent<Box<RawValue>>,
) -> Result<serde_json::Value, Error> {
    let now = now_ms();
    let (deadline_ms, budget) = deadline(event.context.deadline, now);
    let ctx = BatchContext {
        request_id: event.context.request_id.clone(),
        deadline: Instant::now() + budget,
        now_ms: now,
        deadline_ms,
    };
    match app.handle(event.payload.get().as_bytes(), &ctx).await {
        Ok(inv) => {
            log_summary(&inv);
            emit_metrics(&app.config.metrics_namespace, &inv);
            Ok(inv.response_json())
        }
        Err(e) => {
            tracing::error!(request_id = %ctx.request_id, error = %e, "batch failed as a whole; Lambda retries it");
            Err(e.into())
        }
    }
}

/// The invocation's deadline (epoch ms) and the time left. Lambda sends the
/// deadline as epoch milliseconds; runtime emulators (`cargo lambda watch`)
/// send the function timeout in milliseconds instead. A value too small to
/// be an epoch time after 2001 is taken as that timeout, counted from now,
/// rather than as a deadline long past that would fail every record.
pub fn deadline(header_ms: u64, now_ms: i64) -> (i64, Duration) {
    const EPOCH_2001_MS: i64 = 1_000_000_000_000;
    let header = i64::try_from(header_ms).unwrap_or(i64::MAX);
    let deadline_ms = if header < EPOCH_2001_MS {
        now_ms.saturating_add(header)
    } else {
        header
    };
    let left = deadline_ms.saturating_sub(now_ms).max(0) as u64;
    (deadline_ms, Duration::from_millis(left))
}

/// Lambda logging: JSON events on stdout (CloudWatch Logs reads stdout),
/// level from `TICKBRIDGE_LOG`.
pub fn init_json_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TICKBRIDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::deadline;
    use std::time::Duration;

    #[test]
    fn epoch_deadlines_are_kept_and_emulator_timeouts_count_from_now() {
        let now = 1_796_190_158_155;
        assert_eq!(
            deadline(1_796_190_161_155, now),
            (1_796_190_161_155, Duration::from_secs(3))
        );
        assert_eq!(deadline(1_796_190_000_000, now).1, Duration::ZERO);
        assert_eq!(
            deadline(600_000, now),
            (now + 600_000, Duration::from_secs(600))
        );
    }
}
