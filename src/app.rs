//! The runtime-agnostic bridge: one process-wide `App`, built once per
//! execution environment (settings, AWS clients, schemas, the tickerplant
//! link) and reused by every batch. The Lambda adapter (`crate::lambda`),
//! `tickbridge invoke` and the demo call `App::handle` with event bytes;
//! the polling runner and replay call `App::handle_records` with the
//! records they read; all run the same code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use tokio::sync::Mutex;

use crate::config::{Config, ConfigError, StoreKind};
use crate::dedupe::dynamodb::DynamoStore;
use crate::dedupe::memory::MemoryStore;
use crate::dedupe::ReadOnly;
use crate::dedupe::{Claim, DedupeStore, StoreError};
use crate::metrics::{Metrics, MetricsSink};
use crate::pipeline::dry_run::{DryLink, DryQuarantine};
use crate::pipeline::response::{batch_response, BatchResponse, Unnameable};
use crate::pipeline::{
    process_batch_with_claims, BatchContext, ClaimCheck, LinkError, QuarantineSink, RecordState,
    SchemaDecoder, Summary, TickerplantLink,
};
use crate::quarantine::{LogQuarantine, Quarantine, SqsQuarantine};
use crate::s3::claim_check::{LazyS3, S3ClaimCheck};
use crate::s3::ingest::IngestOptions;
use crate::s3::notify;
use crate::schema::Catalog;
use crate::source::event::{parse_event, EventError};
use crate::source::{Record, SourceKind};
use crate::telemetry::{
    BadRecord, BadRecordOutcome, BatchDone, RecordsLeft, TpUnavailable, TpUnavailableNext,
};
use crate::tplink::{Preflight, TpLink};

/// The dedupe store chosen by `TICKBRIDGE_STORE`.
pub enum Store {
    Memory(MemoryStore),
    Dynamo(DynamoStore),
}

impl DedupeStore for Store {
    async fn checkpoint(&self, lane: &str) -> Result<Option<String>, StoreError> {
        match self {
            Store::Memory(s) => s.checkpoint(lane).await,
            Store::Dynamo(s) => s.checkpoint(lane).await,
        }
    }
    async fn advance_checkpoint(
        &self,
        lane: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => s.advance_checkpoint(lane, old, new).await,
            Store::Dynamo(s) => s.advance_checkpoint(lane, old, new).await,
        }
    }
    async fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        match self {
            Store::Memory(s) => s.claim(keys, now_ms, until_ms).await,
            Store::Dynamo(s) => s.claim(keys, now_ms, until_ms).await,
        }
    }
    async fn complete(&self, keys: &[String], expires_at_s: i64) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => s.complete(keys, expires_at_s).await,
            Store::Dynamo(s) => s.complete(keys, expires_at_s).await,
        }
    }
    async fn release(&self, keys: &[String], claimed_until_ms: i64) -> Result<(), StoreError> {
        match self {
            Store::Memory(s) => s.release(keys, claimed_until_ms).await,
            Store::Dynamo(s) => s.release(keys, claimed_until_ms).await,
        }
    }
    async fn peek(&self, keys: &[String], now_ms: i64) -> Result<Vec<Claim>, StoreError> {
        match self {
            Store::Memory(s) => s.peek(keys, now_ms).await,
            Store::Dynamo(s) => s.peek(keys, now_ms).await,
        }
    }
    fn requests(&self) -> u64 {
        match self {
            Store::Memory(s) => s.requests(),
            Store::Dynamo(s) => s.requests(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("schemas: {0}")]
    Schemas(String),
    /// The password secret could not be read; never holds the value.
    #[error("TICKBRIDGE_TP_PASSWORD_SECRET_ARN: {0}")]
    Secret(String),
    /// The tickerplant answered the preflight with tables or an update
    /// function that differ from the schemas (`TICKBRIDGE_PREFLIGHT=error`).
    #[error("TICKBRIDGE_PREFLIGHT: {0}")]
    Preflight(String),
}

/// Why a whole invocation failed (Lambda then retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{0}")]
    Event(#[from] EventError),
    #[error("{0}")]
    Unnameable(#[from] Unnameable),
    /// An S3 notification delivered directly (or by EventBridge) left an
    /// object pending: failing the invocation makes Lambda retry it.
    #[error("S3 notification not finished: {0}")]
    Ingest(String),
}

/// The result of one invocation.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub source: &'static str,
    pub response: BatchResponse,
    pub states: Vec<RecordState>,
    pub summary: Summary,
}

impl Invocation {
    /// The response as Lambda expects it for the source, built with the
    /// `aws_lambda_events` response types.
    pub fn response_json(&self) -> serde_json::Value {
        let ids = self
            .response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone());
        let value = if self.source == "kinesis" {
            let mut r = KinesisEventResponse::default();
            r.batch_item_failures = ids
                .map(|id| {
                    let mut f = KinesisBatchItemFailure::default();
                    f.item_identifier = Some(id);
                    f
                })
                .collect();
            serde_json::to_value(r)
        } else {
            let mut r = SqsBatchResponse::default();
            r.batch_item_failures = ids
                .map(|id| {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = id;
                    f
                })
                .collect();
            serde_json::to_value(r)
        };
        value.unwrap_or_else(|_| serde_json::json!({ "batchItemFailures": [] }))
    }
}

pub struct App {
    pub config: Config,
    store: Store,
    link: Arc<Mutex<TpLink>>,
    quarantine: Quarantine,
    decoder: SchemaDecoder,
    /// S3 (claim checks and objects): a client made on first use.
    s3: LazyS3,
    claims: S3ClaimCheck,
}

/// Loads the schema catalog: `TICKBRIDGE_SCHEMAS` or the embedded examples.
pub fn load_catalog(config: &Config) -> Result<Catalog, InitError> {
    let catalog = match &config.schemas_dir {
        Some(dir) => Catalog::load(dir),
        None => {
            let schemas = crate::schema::embedded::schemas().map_err(InitError::Schemas)?;
            Catalog::from_schemas(schemas)
        }
    };
    catalog.map_err(|e| InitError::Schemas(e.to_string()))
}

impl App {
    /// Builds everything from settings. AWS clients are created only for
    /// what the settings use; the tickerplant connection is opened in the
    /// background so a tickerplant that is down does not hold up init.
    pub async fn init(mut config: Config) -> Result<App, InitError> {
        let catalog = Arc::new(load_catalog(&config)?);
        let decoder = SchemaDecoder::new(catalog, true);
        let needs_aws = config.store == StoreKind::DynamoDb
            || config.quarantine_queue_url.is_some()
            || config.tp_password_secret.is_some();
        let sdk = if needs_aws {
            Some(crate::aws::sdk_config(None).await)
        } else {
            None
        };
        if let Some(sdk) = &sdk {
            resolve_tp_password(&mut config, sdk).await?;
        }
        let store = match (&config.store, &sdk, &config.dedupe_table) {
            (StoreKind::DynamoDb, Some(sdk), Some(table)) => {
                let dynamo = aws_sdk_dynamodb::config::Builder::from(sdk)
                    .timeout_config(
                        aws_config::timeout::TimeoutConfig::builder()
                            .operation_attempt_timeout(Duration::from_secs(2))
                            .operation_timeout(Duration::from_secs(6))
                            .build(),
                    )
                    .build();
                Store::Dynamo(DynamoStore::new(
                    aws_sdk_dynamodb::Client::from_conf(dynamo),
                    table.clone(),
                    config.dynamodb_concurrency,
                ))
            }
            _ => Store::Memory(MemoryStore::new()),
        };
        let quarantine = match (&config.quarantine_queue_url, &sdk) {
            (Some(url), Some(sdk)) => {
                Quarantine::Sqs(SqsQuarantine::new(crate::aws::sqs_client(sdk), url.clone()))
            }
            _ => {
                if config.store == StoreKind::DynamoDb
                    && config.pipeline.bad_records == crate::pipeline::BadRecords::Quarantine
                {
                    return Err(InitError::Config(ConfigError {
                        var: "TICKBRIDGE_QUARANTINE_QUEUE_URL",
                        reason:
                            "required when TICKBRIDGE_BAD_RECORDS is quarantine (or set it to fail)"
                                .into(),
                    }));
                }
                Quarantine::Log(LogQuarantine)
            }
        };
        let link = TpLink::from_config(&config)?;
        let app = App::with_parts(config, store, link, quarantine, decoder);
        // A tickerplant that answers and differs from the schemas stops
        // start-up; one that is slow or down does not hold it up longer
        // than the connect timeout (the first batch retries).
        let warm = app.warm_up_in_background();
        let wait = app.config.tp_connect_timeout * 2;
        if let Ok(Ok(Err(LinkError::Mismatch(findings)))) = tokio::time::timeout(wait, warm).await {
            return Err(InitError::Preflight(format!(
                "the tickerplant does not match the schemas: {findings}"
            )));
        }
        Ok(app)
    }

    pub fn with_parts(
        config: Config,
        store: Store,
        link: TpLink,
        quarantine: Quarantine,
        decoder: SchemaDecoder,
    ) -> App {
        let mut config = config;
        if let Store::Memory(_) = store {
            // Claims are chunked so a store call in flight at the deadline
            // margin ends soon after; the memory store's end at once, and
            // one claim of the whole batch is one entry of its claim log
            // (`dedupe::claim_log`) instead of one per chunk.
            config.pipeline.claim_chunk = usize::MAX;
        }
        let mut link = link;
        link.set_preflight(Preflight {
            schemas: decoder
                .catalog()
                .tables()
                .iter()
                .map(|t| t.schema().clone())
                .collect(),
            upd_func: config.pipeline.upd_func.clone(),
            mode: config.preflight,
        });
        let s3 = LazyS3::new();
        let claims = S3ClaimCheck::new(
            s3.clone(),
            config.s3.claim_check_max_bytes,
            config.s3.claim_check_delete,
            config.s3.claim_check_concurrency,
        );
        App {
            config,
            store,
            link: Arc::new(Mutex::new(link)),
            quarantine,
            decoder,
            s3,
            claims,
        }
    }

    /// Uses this S3 client instead of one made from the environment.
    pub fn with_s3_client(mut self, client: aws_sdk_s3::Client) -> App {
        self.s3 = LazyS3::with_client(client);
        self.claims = S3ClaimCheck::new(
            self.s3.clone(),
            self.config.s3.claim_check_max_bytes,
            self.config.s3.claim_check_delete,
            self.config.s3.claim_check_concurrency,
        );
        self
    }

    /// The S3 client (made from the environment on first use).
    pub async fn s3_client(&self) -> &aws_sdk_s3::Client {
        self.s3.get().await
    }

    /// How objects are read and sent, from the settings.
    pub fn ingest_options(&self) -> IngestOptions {
        IngestOptions {
            flush_rows: self.config.s3.flush_rows,
            flush_bytes: self.config.s3.flush_bytes,
            max_line: self.config.s3.max_line_bytes,
            ..IngestOptions::from_pipeline(&self.config.pipeline)
        }
    }

    /// Streams objects (`tickbridge ingest`, tests) through the bridge's
    /// link, store and quarantine, or, with `dry_run`, through the dry-run
    /// edges (nothing sent, nothing checkpointed). One report per object.
    pub async fn ingest_object(
        &self,
        object: &crate::s3::ObjectRef,
        ctx: &BatchContext,
        dry_run: bool,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> crate::s3::ingest::ObjectReport {
        use crate::s3::ingest::{ingest_object, Sinks};
        let s3 = self.s3.get().await;
        let options = self.ingest_options();
        let catalog = self.decoder.catalog();
        if dry_run {
            let store = ReadOnly::new(&self.store);
            let sinks = Sinks {
                store: &store,
                link: &mut DryLink,
                quarantine: &DryQuarantine::default(),
            };
            return ingest_object(s3, catalog, sinks, object, &options, ctx, progress).await;
        }
        let mut link = self.link.lock().await;
        let sinks = Sinks {
            store: &self.store,
            link: &mut *link,
            quarantine: &self.quarantine,
        };
        ingest_object(s3, catalog, sinks, object, &options, ctx, progress).await
    }

    /// Opens the tickerplant connection on a task; the first invocation
    /// waits for it through the link's lock.
    /// The preflight runs here too; the handle says how it went.
    pub fn warm_up_in_background(&self) -> tokio::task::JoinHandle<Result<(), LinkError>> {
        let link = self.link.clone();
        let budget = self.config.tp_connect_timeout * 2;
        tokio::spawn(async move {
            let mut link = link.lock().await;
            let r = link.warm_up(Instant::now() + budget).await;
            match &r {
                Err(LinkError::Mismatch(_)) => {}
                Err(e) => TpUnavailable {
                    tp: link.target(),
                    error: &e.reason(),
                    next: TpUnavailableNext::FirstBatch,
                }
                .emit(),
                Ok(()) => {}
            }
            r
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn decoder(&self) -> &SchemaDecoder {
        &self.decoder
    }

    /// Runs one Lambda event through the pipeline: parsed once, then
    /// [`App::handle_records`].
    pub async fn handle(
        &self,
        event: &[u8],
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        if crate::source::event::is_s3_event(event) {
            // Boxed: the object path is deep, and callers' futures need not
            // carry its layout.
            return Box::pin(self.handle_s3_event(event, ctx)).await;
        }
        let started = Instant::now();
        let parse_began_ms = crate::pipeline::epoch_ms();
        let records = parse_event(event, &self.config.source)?;
        let parse_ms = crate::pipeline::ms_since(started);
        let mut inv = self.handle_records(&records, ctx).await?;
        inv.summary.stage_ms.parse = parse_ms;
        inv.summary.stage_start_ms.parse = parse_began_ms;
        // From the event's bytes, and dropping the records is part of it.
        drop(records);
        inv.summary.handler_ms = crate::pipeline::ms_since(started);
        Ok(inv)
    }

    /// An S3 notification delivered directly or by EventBridge.
    async fn handle_s3_event(
        &self,
        event: &[u8],
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        let options = self.ingest_options();
        let mut link = self.link.lock().await;
        let mut parts = notify::Parts {
            s3: self.s3.get().await,
            catalog: self.decoder.catalog(),
            store: &self.store,
            link: &mut *link,
            quarantine: &self.quarantine,
            options: &options,
        };
        let summary = notify::handle_event(&mut parts, event, ctx)
            .await
            .map_err(HandlerError::Ingest)?;
        Ok(Invocation {
            source: "s3",
            response: BatchResponse::default(),
            states: Vec::new(),
            summary,
        })
    }

    /// SQS messages whose bodies are S3 notifications.
    async fn handle_s3_messages(
        &self,
        records: &[Record],
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        let options = self.ingest_options();
        let mut link = self.link.lock().await;
        let mut parts = notify::Parts {
            s3: self.s3.get().await,
            catalog: self.decoder.catalog(),
            store: &self.store,
            link: &mut *link,
            quarantine: &self.quarantine,
            options: &options,
        };
        let (states, summary) = notify::handle_sqs(&mut parts, records, ctx).await;
        drop(link);
        let response = batch_response(records, &states)?;
        Ok(Invocation {
            source: "sqs",
            response,
            states,
            summary,
        })
    }

    /// Runs one batch of records (from an event, or from the SDK in the
    /// runner and replay) through the pipeline.
    pub async fn handle_records(
        &self,
        records: &[Record],
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        if records.first().map(|r| r.kind) == Some(SourceKind::SqsFifo)
            && notify::is_notification_batch(records)
        {
            return Box::pin(self.handle_s3_messages(records, ctx)).await;
        }
        let started = Instant::now();
        let mut link = self.link.lock().await;
        let inv = self
            .run_batch(
                records,
                &self.store,
                &mut *link,
                &self.quarantine,
                &self.claims,
                ctx,
            )
            .await;
        drop(link);
        let mut inv = inv?;
        let kept_in_log = matches!(self.quarantine, Quarantine::Log(_));
        record_events(records, &inv, kept_in_log);
        inv.summary.handler_ms = crate::pipeline::ms_since(started);
        Ok(inv)
    }

    /// The pipeline's own decisions for a batch, with nothing changed
    /// anywhere: the store is only read ([`ReadOnly`]), no update is sent
    /// ([`DryLink`]) and bad records are only noted ([`DryQuarantine`]).
    /// What a real run would do on the store as it is now.
    pub async fn dry_run_records(
        &self,
        records: &[Record],
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        let store = ReadOnly::new(&self.store);
        let quarantine = DryQuarantine::default();
        // Objects are read; none is deleted.
        let claims = self.claims.without_delete();
        self.run_batch(records, &store, &mut DryLink, &quarantine, &claims, ctx)
            .await
    }

    async fn run_batch<S: DedupeStore, L: TickerplantLink, Q: QuarantineSink, C: ClaimCheck>(
        &self,
        records: &[Record],
        store: &S,
        link: &mut L,
        quarantine: &Q,
        claims: &C,
        ctx: &BatchContext,
    ) -> Result<Invocation, HandlerError> {
        let source = match records.first().map(|r| r.kind) {
            Some(SourceKind::Kinesis) => "kinesis",
            Some(SourceKind::SqsFifo) => "sqs",
            None => "empty",
        };
        let result = process_batch_with_claims(
            records,
            store,
            link,
            quarantine,
            &self.decoder,
            claims,
            &self.config.pipeline,
            ctx,
        )
        .await;
        let response = batch_response(records, &result.states)?;
        Ok(Invocation {
            source,
            response,
            states: result.states,
            summary: result.summary,
        })
    }
}

/// Fills `tp_password` from the Secrets Manager secret the settings name,
/// if any: once per execution environment, so no invocation pays for it.
/// The secret is the password itself, or a JSON object with a `password`
/// field (the shape of a generated CloudFormation secret).
pub async fn resolve_tp_password(
    config: &mut Config,
    sdk: &aws_config::SdkConfig,
) -> Result<(), InitError> {
    let Some(id) = config.tp_password_secret.clone() else {
        return Ok(());
    };
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .map_err(|e| {
            InitError::Secret(format!(
                "cannot read secret {id}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ))
        })?;
    let raw = match (out.secret_string(), out.secret_binary()) {
        (Some(s), _) => s.to_string(),
        (None, Some(b)) => String::from_utf8(b.as_ref().to_vec())
            .map_err(|_| InitError::Secret(format!("secret {id} is binary, not UTF-8 text")))?,
        (None, None) => String::new(),
    };
    let password = password_from_secret(&raw)
        .ok_or_else(|| InitError::Secret(format!("secret {id} holds no password")))?;
    config.tp_password = Some(crate::config::Secret(password));
    Ok(())
}

/// The password in a secret's text: a JSON object's `password` field, or
/// the whole text. `None` when empty.
pub fn password_from_secret(raw: &str) -> Option<String> {
    let password = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(serde_json::Value::Object(map)) => map.get("password")?.as_str()?.to_string(),
        _ => raw.to_string(),
    };
    (!password.is_empty()).then_some(password)
}

/// The events of a batch's records, after it: one `BadRecord` line per bad
/// record (quarantined, or failed in `fail` mode) and, at debug level, one
/// `RecordsLeft` line per lane with records left for redelivery. Not for
/// dry runs: nothing happened to those records.
///
/// Read from the final states, so a line says what became of the record:
/// a bad record sent to the quarantine behind a record of its lane that
/// then failed ends pending (the lane is cut before it) and is logged when
/// its redelivery settles it.
fn record_events(records: &[Record], inv: &Invocation, kept_in_log: bool) {
    let request_id = inv.summary.request_id.as_str();
    for (r, s) in records.iter().zip(&inv.states) {
        let (reason, outcome) = match s {
            RecordState::Quarantined { reason } if kept_in_log => {
                (reason.as_str(), BadRecordOutcome::QuarantinedToLog)
            }
            RecordState::Quarantined { reason } => (reason.as_str(), BadRecordOutcome::Quarantined),
            s => match crate::telemetry::failed_as_bad(s) {
                Some(reason) => (reason, BadRecordOutcome::LaneCut),
                None => continue,
            },
        };
        BadRecord {
            request_id,
            record: r,
            reason,
            outcome,
        }
        .emit();
    }
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // Per lane: how many are left, from where, and why the first one was.
    let mut left: Vec<(&str, std::borrow::Cow<'_, str>, usize, &str)> = Vec::new();
    for (r, s) in records.iter().zip(&inv.states) {
        let RecordState::Pending { reason } = s else {
            continue;
        };
        match left.iter_mut().find(|(lane, ..)| *lane == &*r.lane) {
            Some((_, _, n, _)) => *n += 1,
            None => left.push((&r.lane, crate::telemetry::position(r), 1, reason)),
        }
    }
    for (lane, first_position, records, reason) in left {
        RecordsLeft {
            request_id,
            lane,
            first_position: &first_position,
            records,
            reason,
        }
        .emit();
    }
}

impl Invocation {
    /// The invocation's summary line (DESIGN §11) and its metrics, as
    /// `sink` says ([`BatchDone`]).
    pub fn done(&self, sink: &MetricsSink) -> Metrics {
        BatchDone {
            source: self.source,
            summary: &self.summary,
        }
        .emit(sink)
    }
}
