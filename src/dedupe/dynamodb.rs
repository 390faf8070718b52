//! The DynamoDB store (DESIGN §3): one table, partition key `pk` (string),
//! TTL on `expiration` (epoch seconds). Same semantics as
//! [`super::memory::MemoryStore`], which is the reference.
//!
//! Items:
//! - `ckpt#<lane>`: `seq` (string), the last confirmed Kinesis sequence
//!   number of a lane, and `expiration` [`CHECKPOINT_TTL_S`] after its last
//!   move. A checkpoint only matters while records at or below it can be
//!   redelivered, which ends with the stream's retention (at most 365 days);
//!   a lane idle for longer may lose its checkpoint safely, and the items of
//!   closed shards clean themselves up instead of piling up forever.
//! - `key#<key>`: `status` INPROGRESS with `in_progress_expiration` (ms) and
//!   `expiration` a day after it, so abandoned claims are removed; or
//!   COMPLETED with `expiration` set by the caller.
//!
//! Expiry is decided in the condition expressions from the caller's clock,
//! not by DynamoDB's TTL sweeper (which may lag by days), so an expired but
//! not yet deleted item behaves as absent, exactly as in the memory store.

use std::collections::HashMap;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, KeySchemaElement, KeyType,
    KeysAndAttributes, PutRequest, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use futures_util::stream::{self, StreamExt};

use super::{Claim, DedupeStore, StoreError, RELEASE_CHUNK};

const PK: &str = "pk";
const SEQ: &str = "seq";
const STATUS: &str = "status";
const IN_PROGRESS_EXPIRATION: &str = "in_progress_expiration";
const EXPIRATION: &str = "expiration";
const INPROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// How long a checkpoint outlives its last move: beyond Kinesis' longest
/// retention (365 days), so no redeliverable record can outlive it.
pub const CHECKPOINT_TTL_S: i64 = 400 * 86_400;
/// How long an abandoned in-progress claim stays before TTL removes it.
const CLAIM_TTL_AFTER_S: i64 = 86_400;
/// DynamoDB's `BatchWriteItem` limit.
const BATCH_WRITE_MAX: usize = 25;
/// Transactions tried per release chunk (each drops the keys that were not
/// in progress).
const RELEASE_ATTEMPTS: u32 = 3;
/// Attempts at a chunk's unprocessed items before giving up.
const BATCH_WRITE_ATTEMPTS: u32 = 5;
/// DynamoDB's `BatchGetItem` limit.
const BATCH_GET_MAX: usize = 100;
/// Keys longer than this are stored by prefix and digest: DynamoDB limits a
/// partition key to 2048 bytes.
const MAX_KEY_BYTES: usize = 1024;

/// The claim condition: absent, expired by TTL (not yet swept), or an
/// in-progress claim past its own expiry.
const CLAIM_CONDITION: &str = "attribute_not_exists(#pk) OR #exp <= :now_s \
     OR (#s = :inprogress AND #ipe <= :now_ms)";

pub struct DynamoStore {
    client: Client,
    table: String,
    concurrency: usize,
    requests: AtomicU64,
}

impl DynamoStore {
    /// `concurrency` bounds the requests in flight for one call (at least 1).
    pub fn new(client: Client, table_name: impl Into<String>, concurrency: usize) -> DynamoStore {
        DynamoStore {
            client,
            table: table_name.into(),
            concurrency: concurrency.max(1),
            requests: AtomicU64::new(0),
        }
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Counts one API call, made or attempted.
    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn transient(&self, op: &str, err: impl std::error::Error) -> StoreError {
        StoreError::Transient(format!(
            "DynamoDB {op} on table {}: {}",
            self.table,
            DisplayErrorContext(err)
        ))
    }

    async fn claim_one(
        &self,
        key: &str,
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> Result<Claim, StoreError> {
        let pk = key_pk(key);
        let ttl_s = in_progress_until_ms.div_euclid(1000) + CLAIM_TTL_AFTER_S;
        self.count();
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&pk))
            .item(STATUS, s(INPROGRESS))
            .item(IN_PROGRESS_EXPIRATION, n(in_progress_until_ms))
            .item(EXPIRATION, n(ttl_s))
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#s", STATUS)
            .expression_attribute_names("#exp", EXPIRATION)
            .expression_attribute_names("#ipe", IN_PROGRESS_EXPIRATION)
            .expression_attribute_values(":now_s", n(now_ms.div_euclid(1000)))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":inprogress", s(INPROGRESS))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match res {
            Ok(_) => return Ok(Claim::New),
            Err(err) => err,
        };
        if let Some(PutItemError::ConditionalCheckFailedException(ccf)) = err.as_service_error() {
            if let Some(item) = ccf.item() {
                return Ok(classify(key, item));
            }
            // DynamoDB returns the blocking item with ALL_OLD; an emulator
            // that does not costs one consistent read for this key only.
            return self.read_blocker(key, &pk).await;
        }
        Err(self.transient("PutItem (claim)", err))
    }

    async fn read_blocker(&self, key: &str, pk: &str) -> Result<Claim, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.transient("GetItem (claim)", e))?;
        Ok(match out.item() {
            Some(item) => classify(key, item),
            // Released between our write and this read: leave it to the
            // retry rather than race the owner again here.
            None => Claim::InProgress,
        })
    }

    /// One `BatchWriteItem` chunk, resubmitting unprocessed items with a
    /// short backoff.
    async fn write_chunk(
        &self,
        op: &'static str,
        mut writes: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        for attempt in 0..BATCH_WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25u64 << attempt)).await;
            }
            self.count();
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, writes)
                .send()
                .await
                .map_err(|e| self.transient(op, e))?;
            writes = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if writes.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Transient(format!(
            "DynamoDB {op} on table {}: {} items still unprocessed after {} attempts",
            self.table,
            writes.len(),
            BATCH_WRITE_ATTEMPTS
        )))
    }

    /// One transaction of conditional deletes; see `release`.
    async fn release_chunk(
        &self,
        mut pks: Vec<String>,
        claimed_until_ms: i64,
    ) -> Result<(), StoreError> {
        for _ in 0..RELEASE_ATTEMPTS {
            let mut items = Vec::with_capacity(pks.len());
            for pk in &pks {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key(PK, s(pk))
                    .condition_expression("#s = :inprogress AND #ipe = :ours")
                    .expression_attribute_names("#s", STATUS)
                    .expression_attribute_names("#ipe", IN_PROGRESS_EXPIRATION)
                    .expression_attribute_values(":inprogress", s(INPROGRESS))
                    .expression_attribute_values(":ours", n(claimed_until_ms))
                    .build()
                    .map_err(|e| self.transient("TransactWriteItems (release) request", e))?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
            self.count();
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let not_ours: Option<Vec<bool>> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(tc))
                    if tc.cancellation_reasons().len() == pks.len() =>
                {
                    Some(
                        tc.cancellation_reasons()
                            .iter()
                            .map(|r| r.code() == Some("ConditionalCheckFailed"))
                            .collect(),
                    )
                }
                _ => None,
            };
            match not_ours {
                Some(flags) if flags.iter().any(|f| *f) => {
                    // Completed, gone, or claimed by another invocation
                    // since ours expired: nothing of ours to release.
                    pks = pks
                        .into_iter()
                        .zip(flags)
                        .filter(|(_, not_ours)| !not_ours)
                        .map(|(pk, _)| pk)
                        .collect();
                    if pks.is_empty() {
                        return Ok(());
                    }
                }
                _ => return Err(self.transient("TransactWriteItems (release)", err)),
            }
        }
        Err(StoreError::Transient(format!(
            "DynamoDB TransactWriteItems (release) on table {}: {} keys still contended after {RELEASE_ATTEMPTS} attempts; they expire with the claim",
            self.table,
            pks.len()
        )))
    }

    /// Reads one `BatchGetItem` chunk of distinct partition keys,
    /// consistently, asking again for what DynamoDB left unprocessed.
    async fn read_chunk(
        &self,
        pks: Vec<String>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::with_capacity(pks.len());
        let mut keys: Vec<HashMap<String, AttributeValue>> = pks
            .iter()
            .map(|pk| HashMap::from([(PK.to_string(), s(pk))]))
            .collect();
        for attempt in 0..BATCH_WRITE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(25u64 << attempt)).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(|e| self.transient("BatchGetItem (peek) request", e))?;
            self.count();
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.transient("BatchGetItem (peek)", e))?;
            if let Some(mut got) = out.responses {
                items.extend(got.remove(&self.table).unwrap_or_default());
            }
            keys = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
            if keys.is_empty() {
                return Ok(items);
            }
        }
        Err(StoreError::Transient(format!(
            "DynamoDB BatchGetItem (peek) on table {}: {} keys still unprocessed after {} attempts",
            self.table,
            keys.len(),
            BATCH_WRITE_ATTEMPTS
        )))
    }

    /// Writes in `BatchWriteItem` chunks of 25, chunks concurrently (bounded).
    async fn write_batched(
        &self,
        op: &'static str,
        writes: Vec<WriteRequest>,
    ) -> Result<(), StoreError> {
        let mut chunks = Vec::with_capacity(writes.len().div_ceil(BATCH_WRITE_MAX));
        let mut rest = writes.into_iter().peekable();
        while rest.peek().is_some() {
            chunks.push(rest.by_ref().take(BATCH_WRITE_MAX).collect::<Vec<_>>());
        }
        let writes: Vec<_> = chunks
            .into_iter()
            .map(|chunk| self.write_chunk(op, chunk))
            .collect();
        let results: Vec<Result<(), StoreError>> = stream::iter(writes)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

impl DedupeStore for DynamoStore {
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn checkpoint(&self, lane: &str) -> Result<Option<String>, StoreError> {
        self.count();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(&checkpoint_pk(lane)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.transient("GetItem (checkpoint)", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        match item.get(SEQ) {
            Some(AttributeValue::S(seq)) => Ok(Some(seq.clone())),
            _ => Err(StoreError::Transient(format!(
                "DynamoDB table {}: checkpoint item for lane {lane} has no string `{SEQ}`",
                self.table
            ))),
        }
    }

    async fn advance_checkpoint(
        &self,
        lane: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), StoreError> {
        let expires_s = crate::clock::now_ms().div_euclid(1000) + CHECKPOINT_TTL_S;
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(&checkpoint_pk(lane)))
            .item(SEQ, s(new))
            .item(EXPIRATION, n(expires_s));
        put = match old {
            None => put
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK),
            Some(old) => put
                .condition_expression("#seq = :old")
                .expression_attribute_names("#seq", SEQ)
                .expression_attribute_values(":old", s(old)),
        };
        self.count();
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::CheckpointConflict {
                    lane: lane.to_string(),
                })
            }
            Err(e) => Err(self.transient("PutItem (checkpoint)", e)),
        }
    }

    async fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        // Futures built up front (they are lazy): a closure inside the
        // stream would make the returned future fail the `Send` check.
        let writes: Vec<_> = keys
            .iter()
            .map(|k| self.claim_one(k, now_ms, in_progress_until_ms))
            .collect();
        let results: Vec<Result<Claim, StoreError>> = stream::iter(writes)
            .buffered(self.concurrency)
            .collect()
            .await;
        let Some(first_err) = results.iter().find_map(|r| r.as_ref().err()).cloned() else {
            return Ok(results.into_iter().flatten().collect());
        };
        // The caller treats the whole call as failed and will not release
        // what we did take; give those back now so a quick retry (Kinesis
        // retries at once) is not blocked by our own claims until they expire.
        let taken: Vec<String> = keys
            .iter()
            .zip(&results)
            .filter(|(_, r)| matches!(r, Ok(Claim::New)))
            .map(|(k, _)| k.clone())
            .collect();
        if !taken.is_empty() {
            if let Err(e) = self.release(&taken, in_progress_until_ms).await {
                tracing::warn!(error = %e, keys = taken.len(), "could not release claims after a failed claim");
            }
        }
        Err(first_err)
    }

    /// `BatchGetItem`, 100 keys to a request, chunks concurrently
    /// (bounded); each item judged by the claim condition at `now_ms`.
    async fn peek(&self, keys: &[String], now_ms: i64) -> Result<Vec<Claim>, StoreError> {
        // One BatchGetItem may not name a key twice.
        let mut seen = HashSet::new();
        let pks: Vec<String> = keys
            .iter()
            .map(|k| key_pk(k))
            .filter(|pk| seen.insert(pk.clone()))
            .collect();
        let reads: Vec<_> = pks
            .chunks(BATCH_GET_MAX)
            .map(|c| self.read_chunk(c.to_vec()))
            .collect();
        let results: Vec<_> = stream::iter(reads)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut found: HashMap<String, HashMap<String, AttributeValue>> = HashMap::new();
        for items in results {
            for item in items? {
                if let Some(AttributeValue::S(pk)) = item.get(PK) {
                    found.insert(pk.clone(), item);
                }
            }
        }
        Ok(keys
            .iter()
            .map(|k| match found.get(&key_pk(k)) {
                Some(item) if !claimable(item, now_ms) => classify(k, item),
                _ => Claim::New,
            })
            .collect())
    }

    async fn complete(&self, keys: &[String], expires_at_s: i64) -> Result<(), StoreError> {
        // One BatchWriteItem may not name a key twice.
        let mut seen = HashSet::new();
        let mut writes = Vec::with_capacity(keys.len());
        for key in keys {
            let pk = key_pk(key);
            if !seen.insert(pk.clone()) {
                continue;
            }
            let put = PutRequest::builder()
                .item(PK, s(&pk))
                .item(STATUS, s(COMPLETED))
                .item(EXPIRATION, n(expires_at_s))
                .build()
                .map_err(|e| self.transient("BatchWriteItem (complete) request", e))?;
            writes.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_batched("BatchWriteItem (complete)", writes)
            .await
    }

    /// Conditional deletes (`status = INPROGRESS` and our claim's
    /// `in_progress_expiration`, so neither a completed key nor another
    /// invocation's claim is removed), [`RELEASE_CHUNK`] to a `TransactWriteItems`: one
    /// request per 100 keys instead of one each. The pipeline releases only
    /// claims it took and still holds, so a transaction normally succeeds
    /// whole; one cancelled because some keys were not in progress goes
    /// again without them.
    async fn release(&self, keys: &[String], claimed_until_ms: i64) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        let pks: Vec<String> = keys
            .iter()
            .map(|k| key_pk(k))
            .filter(|pk| seen.insert(pk.clone()))
            .collect();
        let chunks: Vec<_> = pks
            .chunks(RELEASE_CHUNK)
            .map(|c| self.release_chunk(c.to_vec(), claimed_until_ms))
            .collect();
        let results: Vec<Result<(), StoreError>> = stream::iter(chunks)
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        results.into_iter().collect()
    }
}

/// Creates the table (on demand, `pk` string) when missing and enables TTL
/// on `expiration`, for local runs and tests; production tables come from
/// infrastructure code. A TTL the emulator cannot set is only logged.
pub async fn ensure_table(client: &Client, name: &str) -> Result<(), StoreError> {
    let transient = |op: &str, e: &dyn std::error::Error| {
        StoreError::Transient(format!(
            "DynamoDB {op} on table {name}: {}",
            DisplayErrorContext(e)
        ))
    };
    let exists = match client.describe_table().table_name(name).send().await {
        Ok(_) => true,
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(DescribeTableError::ResourceNotFoundException(_))
            ) =>
        {
            false
        }
        Err(e) => return Err(transient("DescribeTable", &e)),
    };
    if !exists {
        let key = KeySchemaElement::builder()
            .attribute_name(PK)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| transient("CreateTable request", &e))?;
        let attr = AttributeDefinition::builder()
            .attribute_name(PK)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| transient("CreateTable request", &e))?;
        let created = client
            .create_table()
            .table_name(name)
            .key_schema(key)
            .attribute_definitions(attr)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(e) = created {
            // Someone else created it meanwhile: fine.
            if e.as_service_error()
                .map(|s| s.is_resource_in_use_exception())
                != Some(true)
            {
                return Err(transient("CreateTable", &e));
            }
        }
        wait_active(client, name).await?;
    }
    enable_ttl(client, name).await;
    Ok(())
}

async fn wait_active(client: &Client, name: &str) -> Result<(), StoreError> {
    for _ in 0..120 {
        let out = client.describe_table().table_name(name).send().await;
        if let Ok(out) = out {
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(StoreError::Transient(format!(
        "DynamoDB table {name} did not become ACTIVE within 30 s"
    )))
}

async fn enable_ttl(client: &Client, name: &str) {
    let status = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.time_to_live_description)
        .and_then(|d| d.time_to_live_status);
    if matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        return;
    }
    let spec = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRATION)
        .enabled(true)
        .build();
    let res = match spec {
        Ok(spec) => client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DisplayErrorContext(e).to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = res {
        tracing::warn!(table = name, error = %e, "could not enable TTL on `expiration`");
    }
}

/// Whether [`CLAIM_CONDITION`] holds for an existing item at `now_ms`:
/// expired by TTL, or an in-progress claim past its own expiry.
fn claimable(item: &HashMap<String, AttributeValue>, now_ms: i64) -> bool {
    let num = |name: &str| match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse::<i64>().ok(),
        _ => None,
    };
    let expired = num(EXPIRATION).is_some_and(|exp| exp <= now_ms.div_euclid(1000));
    let stale = matches!(item.get(STATUS), Some(AttributeValue::S(st)) if st == INPROGRESS)
        && num(IN_PROGRESS_EXPIRATION).is_some_and(|t| t <= now_ms);
    expired || stale
}

fn classify(key: &str, item: &HashMap<String, AttributeValue>) -> Claim {
    match item.get(STATUS) {
        Some(AttributeValue::S(st)) if st == COMPLETED => Claim::Completed,
        Some(AttributeValue::S(st)) if st == INPROGRESS => Claim::InProgress,
        other => {
            // Not written by us; holding off is the safe reading.
            tracing::warn!(key, status = ?other, "dedupe item with an unknown status");
            Claim::InProgress
        }
    }
}

fn checkpoint_pk(lane: &str) -> String {
    format!("ckpt#{lane}")
}

/// `key#<key>`; a key too long for a partition key keeps a readable prefix
/// and gains its length and digest, so distinct long keys stay distinct.
fn key_pk(key: &str) -> String {
    if key.len() <= MAX_KEY_BYTES {
        return format!("key#{key}");
    }
    let mut cut = MAX_KEY_BYTES;
    while !key.is_char_boundary(cut) {
        cut -= 1;
    }
    let prefix = key.get(..cut).unwrap_or("");
    let digest = crate::aws::fnv1a64_hex(&[key.as_bytes()]);
    format!("key#{prefix}#{}#{digest}", key.len())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_fit_a_partition_key_and_stay_distinct() {
        let a = "é".repeat(3000);
        let b = format!("{}x", "é".repeat(2999));
        let (pa, pb) = (key_pk(&a), key_pk(&b));
        assert!(pa.len() < 2048, "{}", pa.len());
        assert!(pa.starts_with("key#é"));
        assert_ne!(pa, pb);
        assert_eq!(key_pk("m1"), "key#m1");
    }
}
