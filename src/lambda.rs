//! The Lambda adapter (`provided.al2023`): init once, then hand each
//! invocation's body to [`App::handle`] and its outcome back as the
//! response Lambda expects. Everything on stdout is structured JSON:
//! tracing logs and CloudWatch EMF metric lines. `src/bin/bootstrap.rs` only
//! calls [`run`].
//!
//! The body is read once: `lambda_runtime` would otherwise deserialize the
//! whole event before the bridge parses it again; [`body`] takes the bytes
//! out of its way (see there).

mod body;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lambda_runtime::layers::TracingLayer;
use lambda_runtime::{service_fn, Context, Error, LambdaEvent, Runtime};
use serde::de::IgnoredAny;
use serde::Serialize;

pub use body::{Bodies, Invocation, TakeBodyLayer};

use crate::app::App;
use crate::config::Config;
use crate::metrics::MetricsSink;
use crate::pipeline::response::BatchResponse;
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
    serve(move |body, context| {
        let app = app.clone();
        async move { handle(&app, &body, &context).await }
    })
    .await
}

/// Serves invocations from the runtime API (`AWS_LAMBDA_RUNTIME_API`) with
/// `handler`, which gets each body exactly as received. As
/// `lambda_runtime::run` does: a span with the request id around each
/// invocation, a handler error or panic posted as that invocation's error.
pub async fn serve<F, Fut, R>(handler: F) -> Result<(), Error>
where
    F: Fn(Bytes, Context) -> Fut,
    Fut: Future<Output = Result<R, Error>>,
    R: Serialize,
{
    let bodies = Bodies::default();
    let waiting = bodies.clone();
    // The runtime deserializes the placeholder `TakeBodyLayer` left in
    // place of the body; the payload type skips it.
    let service = service_fn(move |event: LambdaEvent<IgnoredAny>| {
        let call = waiting
            .take(&event.context.request_id)
            .map(|body| handler(body, event.context));
        async move {
            match call {
                Some(call) => call.await,
                None => Err(Error::from(
                    "the invocation body was not handed over (lambda adapter bug)",
                )),
            }
        }
    });
    Runtime::new(service)
        .layer(TakeBodyLayer::new(bodies))
        .layer(TracingLayer::new())
        .run()
        .await
}

/// One invocation: the event's bytes through the bridge, the batch
/// response back (or an error, so Lambda retries the whole batch). Its log
/// lines carry the X-Ray trace id; its stages go to X-Ray when sampled.
pub async fn handle(app: &App, event: &[u8], context: &Context) -> Result<BatchResponse, Error> {
    use tracing::Instrument;
    let span = crate::xray::invocation_span(context.xray_trace_id.as_deref());
    handle_in_span(app, event, context).instrument(span).await
}

async fn handle_in_span(
    app: &App,
    event: &[u8],
    context: &Context,
) -> Result<BatchResponse, Error> {
    let now = now_ms();
    let (deadline_ms, budget) = deadline(context.deadline, now);
    let ctx = BatchContext {
        request_id: context.request_id.clone(),
        deadline: Instant::now() + budget,
        now_ms: now,
        deadline_ms,
    };
    match app.handle(event, &ctx).await {
        Ok(inv) => {
            // The summary line and the EMF metrics (telemetry::BatchDone).
            inv.done(&MetricsSink::Emf {
                namespace: app.config.metrics_namespace.clone(),
            });
            crate::xray::send_stages(context.xray_trace_id.as_deref(), &inv.summary);
            // The same JSON for both sources: `{"batchItemFailures":
            // [{"itemIdentifier": ..}]}` (tested against the
            // `aws_lambda_events` response types).
            Ok(inv.response)
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
    // Flat lines with the invocation span's `xray_trace_id` (see xray::log).
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = crate::xray::log::subscriber(filter, std::io::stdout).try_init();
}

#[cfg(test)]
mod tests {
    use super::deadline;
    use crate::app::Invocation;
    use crate::pipeline::response::{BatchResponse, ItemFailure};
    use std::time::Duration;

    /// The adapter answers with the pipeline's own `BatchResponse`; Lambda
    /// must read it as the `aws_lambda_events` response of either source.
    #[test]
    fn the_typed_response_is_the_json_of_either_sources_response_type() {
        for failures in [vec![], vec!["4959\u{e9}\"1", "b-2"]] {
            let response = BatchResponse {
                batch_item_failures: failures
                    .iter()
                    .map(|id| ItemFailure {
                        item_identifier: id.to_string(),
                    })
                    .collect(),
            };
            for source in ["kinesis", "sqs"] {
                let inv = Invocation {
                    source,
                    response: response.clone(),
                    states: Vec::new(),
                    summary: Default::default(),
                };
                assert_eq!(
                    serde_json::to_value(&inv.response).unwrap(),
                    inv.response_json(),
                    "{source} {failures:?}"
                );
            }
        }
    }

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
