//! The pipeline's claim-check edge over S3 (DESIGN §2): fetches the object
//! a pointer record names, with the size bound, and deletes committed
//! objects when the settings say so.
//!
//! The S3 client is built on first use ([`LazyS3`]), not at init: pointers
//! are recognised without any I/O (by the SQS size attribute, or the
//! pointer shape on Kinesis), so a function that never receives one never
//! loads an S3 client, and one that does pays once per execution
//! environment. No setting has to be remembered to turn claim checks on,
//! and a pointer is never quarantined only because such a setting was
//! forgotten. Object ingestion shares the same client.

use std::sync::Arc;

use aws_sdk_s3::Client;
use serde::Serialize;
use tokio::sync::OnceCell;

use super::pointer::{delete_object, fetch_object, FetchOptions, Pointer};
use super::S3Error;
use crate::pipeline::ClaimCheck;

/// When a claim-checked object is deleted (`TICKBRIDGE_CLAIM_CHECK_DELETE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteMode {
    /// Left to a lifecycle rule (the default): a redelivered or replayed
    /// pointer still finds its object.
    Never,
    /// Once its record is forwarded and committed. A duplicate delivered
    /// later finds the object gone; its message key makes it a duplicate
    /// before any fetch, unless that key has expired.
    AfterCommit,
}

/// An S3 client made on first use and then shared.
#[derive(Clone, Default)]
pub struct LazyS3 {
    cell: Arc<OnceCell<Client>>,
}

impl LazyS3 {
    pub fn new() -> LazyS3 {
        LazyS3::default()
    }

    /// A client given up front (tests, the CLI with `--endpoint-url`).
    pub fn with_client(client: Client) -> LazyS3 {
        LazyS3 {
            cell: Arc::new(OnceCell::new_with(Some(client))),
        }
    }

    /// The client, built from the environment the first time.
    pub async fn get(&self) -> &Client {
        self.cell
            .get_or_init(|| async { s3_client(&crate::aws::sdk_config(None).await) })
            .await
    }
}

/// An S3 client for the shared SDK configuration; path-style addressing
/// when an endpoint is configured (emulators do not resolve
/// `bucket.host` names).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> Client {
    let emulated =
        sdk.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(emulated)
            .build(),
    )
}

#[derive(Clone)]
pub struct S3ClaimCheck {
    s3: LazyS3,
    fetch: FetchOptions,
    delete: DeleteMode,
    concurrency: usize,
}

impl S3ClaimCheck {
    /// `concurrency` objects at once, each at most `max_bytes`.
    pub fn new(s3: LazyS3, max_bytes: u64, delete: DeleteMode, concurrency: usize) -> S3ClaimCheck {
        S3ClaimCheck {
            s3,
            fetch: FetchOptions { max_bytes },
            delete,
            concurrency: concurrency.max(1),
        }
    }

    /// The same fetches, never deleting (dry runs).
    pub fn without_delete(&self) -> S3ClaimCheck {
        S3ClaimCheck {
            delete: DeleteMode::Never,
            ..self.clone()
        }
    }
}

impl ClaimCheck for S3ClaimCheck {
    async fn fetch(&self, pointer: &Pointer) -> Result<Vec<u8>, S3Error> {
        fetch_object(self.s3.get().await, pointer, self.fetch).await
    }

    /// Deletes after commit, when set. A failed delete is logged, not
    /// retried: the record is already in the tickerplant, and the object
    /// is left to the lifecycle rule.
    async fn committed(&self, pointers: &[Pointer]) {
        if self.delete != DeleteMode::AfterCommit {
            return;
        }
        let client = self.s3.get().await;
        for chunk in pointers.chunks(self.concurrency.max(1)) {
            let results = futures_util::future::join_all(
                chunk.iter().map(|p| delete_object(client, &p.object)),
            )
            .await;
            for (p, r) in chunk.iter().zip(results) {
                if let Err(e) = r {
                    crate::telemetry::ClaimCheckNotDeleted {
                        object: &p.object,
                        error: &e,
                    }
                    .emit();
                }
            }
        }
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }
}
