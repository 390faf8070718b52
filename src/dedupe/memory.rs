//! An in-memory store with the same semantics as the DynamoDB one, for the
//! demo, `invoke --store memory`, and tests. It counts the requests the
//! DynamoDB store would make so cost assertions can run without AWS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::key_table::KeyTable;
use super::{Claim, DedupeStore, StoreError, RELEASE_CHUNK};

#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyState {
    InProgress { until_ms: i64 },
    Completed { expires_at_s: i64 },
}

/// The keys a store remembers at least (and holds about twice as many,
/// plus live claims), so that a process holding the memory store stays
/// bounded (`key_table` says how): 131,072 keys, thirteen batches of
/// 10,000, in about 30 MB at most (two tables of 2^18 buckets and the key
/// strings).
pub const KEYS_REMEMBERED: usize = 1 << 17;

pub struct MemoryStore {
    checkpoints: Mutex<HashMap<String, String>>,
    keys: Mutex<KeyTable<KeyState>>,
    requests: AtomicU64,
}

impl Default for MemoryStore {
    fn default() -> MemoryStore {
        MemoryStore::remembering(KEYS_REMEMBERED)
    }
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// A store that remembers at least the last `keys` keys.
    pub fn remembering(keys: usize) -> MemoryStore {
        MemoryStore {
            checkpoints: Mutex::default(),
            keys: Mutex::new(KeyTable::new(keys)),
            requests: AtomicU64::new(0),
        }
    }

    fn count(&self, n: usize) {
        self.requests.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Plants a live claim, as a concurrent invocation would hold it.
    pub fn hold(&self, key: &str, until_ms: i64) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.update(key, |_| Some(KeyState::InProgress { until_ms }));
        }
    }

    pub fn is_completed(&self, key: &str) -> bool {
        self.keys
            .lock()
            .map(|k| matches!(k.get(key), Some(KeyState::Completed { .. })))
            .unwrap_or(false)
    }
}

/// What a claim of a key in `state` at `now_ms` finds.
fn claim_of(state: Option<&KeyState>, now_ms: i64) -> Claim {
    match state {
        Some(KeyState::Completed { expires_at_s })
            if expires_at_s.saturating_mul(1000) > now_ms =>
        {
            Claim::Completed
        }
        Some(KeyState::InProgress { until_ms }) if *until_ms > now_ms => Claim::InProgress,
        _ => Claim::New,
    }
}

fn poisoned() -> StoreError {
    StoreError::Transient("memory store lock poisoned".into())
}

impl DedupeStore for MemoryStore {
    /// Requests DynamoDB would have served: one per checkpoint read or
    /// write, one per claimed key, one per 25 completed keys (batched), one
    /// transaction per 100 released keys (two when some were not ours).
    fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    async fn checkpoint(&self, lane: &str) -> Result<Option<String>, StoreError> {
        self.count(1);
        Ok(self
            .checkpoints
            .lock()
            .map_err(|_| poisoned())?
            .get(lane)
            .cloned())
    }

    async fn advance_checkpoint(
        &self,
        lane: &str,
        old: Option<&str>,
        new: &str,
    ) -> Result<(), StoreError> {
        self.count(1);
        let mut cps = self.checkpoints.lock().map_err(|_| poisoned())?;
        if cps.get(lane).map(String::as_str) != old {
            return Err(StoreError::CheckpointConflict {
                lane: lane.to_string(),
            });
        }
        cps.insert(lane.to_string(), new.to_string());
        Ok(())
    }

    async fn claim(
        &self,
        keys: &[String],
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        self.count(keys.len());
        let mut state = self.keys.lock().map_err(|_| poisoned())?;
        let taken = KeyState::InProgress {
            until_ms: in_progress_until_ms,
        };
        // Claims of other invocations still live are never forgotten.
        state.rotate_if_full(
            |s| matches!(s, KeyState::InProgress { until_ms } if *until_ms > now_ms),
        );
        Ok(keys
            .iter()
            .map(|k| {
                let mut claim = Claim::New;
                state.update(k, |held| {
                    claim = claim_of(held, now_ms);
                    (claim == Claim::New).then(|| taken.clone())
                });
                claim
            })
            .collect())
    }

    /// Counted as DynamoDB's `BatchGetItem`: one request per 100 keys.
    async fn peek(&self, keys: &[String], now_ms: i64) -> Result<Vec<Claim>, StoreError> {
        self.count(keys.len().div_ceil(100));
        let state = self.keys.lock().map_err(|_| poisoned())?;
        Ok(keys
            .iter()
            .map(|k| claim_of(state.get(k), now_ms))
            .collect())
    }

    async fn complete(&self, keys: &[String], expires_at_s: i64) -> Result<(), StoreError> {
        self.count(keys.len().div_ceil(25));
        let mut state = self.keys.lock().map_err(|_| poisoned())?;
        for k in keys {
            state.update(k, |_| Some(KeyState::Completed { expires_at_s }));
        }
        Ok(())
    }

    async fn release(&self, keys: &[String], claimed_until_ms: i64) -> Result<(), StoreError> {
        let mut state = self.keys.lock().map_err(|_| poisoned())?;
        let mut seen = std::collections::HashSet::new();
        let unique: Vec<&String> = keys.iter().filter(|k| seen.insert(*k)).collect();
        for chunk in unique.chunks(RELEASE_CHUNK) {
            let ours = chunk
                .iter()
                .filter(|k| {
                    matches!(state.get(k), Some(KeyState::InProgress { until_ms }) if *until_ms == claimed_until_ms)
                })
                .count();
            // One transaction; when it held keys that are not in progress
            // it is cancelled, and the rest go again in a second one.
            self.count(if ours > 0 && ours < chunk.len() { 2 } else { 1 });
            for k in chunk {
                if matches!(state.get(k), Some(KeyState::InProgress { until_ms }) if *until_ms == claimed_until_ms)
                {
                    state.remove(k);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[&str]) -> Vec<String> {
        k.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn claim_complete_release_cycle() {
        let s = MemoryStore::new();
        let k = keys(&["m1", "m2"]);
        assert_eq!(
            s.claim(&k, 0, 1000).await.unwrap(),
            vec![Claim::New, Claim::New]
        );
        // A second invocation while ours is live sees them in progress.
        assert_eq!(
            s.claim(&k, 10, 2000).await.unwrap(),
            vec![Claim::InProgress, Claim::InProgress]
        );
        // What the second one "releases" is not its own: nothing moves.
        s.release(&k, 2000).await.unwrap();
        assert_eq!(
            s.claim(&k, 15, 2500).await.unwrap(),
            vec![Claim::InProgress, Claim::InProgress]
        );
        s.complete(&k[..1], 100).await.unwrap();
        s.release(&k[1..], 1000).await.unwrap();
        assert_eq!(
            s.claim(&k, 20, 3000).await.unwrap(),
            vec![Claim::Completed, Claim::New]
        );
        // Past its expiry an in-progress claim is taken over; completed
        // items expire with their TTL.
        assert_eq!(
            s.claim(&k[1..], 3001, 4000).await.unwrap(),
            vec![Claim::New]
        );
        assert_eq!(
            s.claim(&k[..1], 100_001, 200_000).await.unwrap(),
            vec![Claim::New]
        );
    }

    #[tokio::test]
    async fn peek_answers_as_a_claim_would_and_takes_nothing() {
        let s = MemoryStore::new();
        let k = keys(&["done", "held", "stale", "free"]);
        s.claim(&k[..1], 0, 1000).await.unwrap();
        s.complete(&k[..1], 100).await.unwrap();
        s.hold("held", 5000);
        s.hold("stale", 10);
        let peeked = s.peek(&k, 20).await.unwrap();
        assert_eq!(
            peeked,
            vec![Claim::Completed, Claim::InProgress, Claim::New, Claim::New]
        );
        // Peeking took nothing: a claim now finds the same.
        assert_eq!(s.claim(&k, 20, 3000).await.unwrap(), peeked);
    }

    #[tokio::test]
    async fn old_completed_keys_are_forgotten_but_live_claims_are_not() {
        let s = MemoryStore::remembering(2);
        let k = keys(&["a", "b", "c", "d", "e", "f"]);
        // "a" is claimed by a long-running invocation and never completed.
        s.claim(&k[..1], 0, 1_000_000).await.unwrap();
        for chunk in k[1..].chunks(2) {
            s.claim(chunk, 10, 1000).await.unwrap();
            s.complete(chunk, 100).await.unwrap();
        }
        // Two generations of two: "b" and "c" are forgotten, the rest held.
        let found = s.claim(&k, 20, 3000).await.unwrap();
        assert_eq!(
            found,
            vec![
                Claim::InProgress,
                Claim::New,
                Claim::New,
                Claim::Completed,
                Claim::Completed,
                Claim::Completed
            ]
        );
    }

    #[tokio::test]
    async fn checkpoint_moves_only_from_the_expected_value() {
        let s = MemoryStore::new();
        assert_eq!(s.checkpoint("shard-1").await.unwrap(), None);
        s.advance_checkpoint("shard-1", None, "5").await.unwrap();
        assert!(matches!(
            s.advance_checkpoint("shard-1", None, "9").await,
            Err(StoreError::CheckpointConflict { .. })
        ));
        s.advance_checkpoint("shard-1", Some("5"), "9")
            .await
            .unwrap();
        assert_eq!(s.checkpoint("shard-1").await.unwrap().as_deref(), Some("9"));
        assert_eq!(s.requests(), 5);
    }
}
