//! The Lambda entry point (`provided.al2023`): init once, then handle
//! Kinesis and SQS batches. Everything on stdout is structured JSON: tracing
//! logs and CloudWatch EMF metric lines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;
use tickbridge::config::Config;
use tickbridge::lambda::{emit_metrics, init_json_logging, log_summary, App};
use tickbridge::pipeline::{now_ms, BatchContext};

#[tokio::main]
async fn main() -> Result<(), Error> {
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

async fn handle(app: &App, event: LambdaEvent<Box<RawValue>>) -> Result<serde_json::Value, Error> {
    let now = now_ms();
    let deadline_ms = i64::try_from(event.context.deadline).unwrap_or(i64::MAX);
    let budget = Duration::from_millis(deadline_ms.saturating_sub(now).max(0) as u64);
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
