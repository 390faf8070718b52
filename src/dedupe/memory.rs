//! An in-memory store with the same semantics as the DynamoDB one, for the
//! demo, `invoke --store memory`, and tests. It counts the requests the
//! DynamoDB store would make so cost assertions can run without AWS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use super::claim_log::ClaimLog;
use super::key_table::KeyTable;
use super::{Claim, DedupeStore, StoreError, RELEASE_CHUNK};

#[derive(Clone, Debug, PartialEq, Eq)]
enum KeyState {
    InProgress {
        until_ms: i64,
    },
    Completed {
        expires_at_s: i64,
    },
    /// Taken by claim `number` of the claim log until `until_ms`:
    /// completed once that claim is completed whole (`claim_log`).
    Claimed {
        number: u32,
        until_ms: i64,
    },
}

/// The keys and the claims that took them.
struct Keys {
    /// Boxed: the store sits in `app::Store` beside the DynamoDB one.
    table: Box<KeyTable<KeyState>>,
    log: ClaimLog,
}

impl Keys {
    fn get(&self, key: &str) -> Option<KeyState> {
        self.table.get(key).map(|s| settled(&self.log, s))
    }

    /// Starts a new generation when the current one is full, and empties
    /// the claim log when it is: the keys are settled first, so none
    /// names a claim the log has forgotten.
    fn make_room(&mut self, now_ms: i64) {
        if self.table.is_full() || self.log.is_full() {
            let log = &self.log;
            self.table.for_each_current(|s| *s = settled(log, s));
            self.log.clear();
        }
        // Claims of other invocations still live are never forgotten.
        self.table.rotate_if_full(
            |s| matches!(s, KeyState::InProgress { until_ms } if *until_ms > now_ms),
        );
    }
}

/// A key is about to be set to something else or removed: if it held a
/// claim's number, that claim is no longer whole.
fn let_go(log: &mut ClaimLog, held: Option<&KeyState>) {
    if let Some(KeyState::Claimed { number, .. }) = held {
        log.touched(*number);
    }
}

/// A key's own state: a claim's number gives way to what it stands for.
fn settled(log: &ClaimLog, state: &KeyState) -> KeyState {
    match *state {
        KeyState::Claimed { number, until_ms } => match log.completed(number) {
            Some(expires_at_s) => KeyState::Completed { expires_at_s },
            None => KeyState::InProgress { until_ms },
        },
        ref s => s.clone(),
    }
}

/// The keys a store remembers at least (and holds about twice as many,
/// plus live claims), so that a process holding the memory store stays
/// bounded (`key_table` says how): 131,072 keys, thirteen batches of
/// 10,000. A generation is at most 2^18 slots of 8 bytes, an entry per key
/// (its hash, where its text is, its state) and the key text: about 10 MB
/// for keys of 16 bytes.
pub const KEYS_REMEMBERED: usize = 1 << 17;

/// How many keys ahead of its update a claim prefetches a key's slots:
/// enough for the cache miss to end before the key's turn. Timed on the
/// table alone (10,000 new keys against two full generations): none 0.96
/// to 1.22 ms, 4 ahead 0.60 ms, 16 ahead 0.52 to 0.60 ms, 64 ahead 0.60 ms.
const PREFETCH_AHEAD: usize = 16;

pub struct MemoryStore {
    checkpoints: Mutex<HashMap<String, String>>,
    keys: Mutex<Keys>,
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
            keys: Mutex::new(Keys {
                table: Box::new(KeyTable::new(keys)),
                log: ClaimLog::default(),
            }),
            requests: AtomicU64::new(0),
        }
    }

    fn count(&self, n: usize) {
        self.requests.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Plants a live claim, as a concurrent invocation would hold it.
    pub fn hold(&self, key: &str, until_ms: i64) {
        if let Ok(mut keys) = self.keys.lock() {
            let Keys { table, log } = &mut *keys;
            table.update(key, |held| {
                let_go(log, held);
                Some(KeyState::InProgress { until_ms })
            });
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
        let mut guard = self.keys.lock().map_err(|_| poisoned())?;
        guard.make_room(now_ms);
        let Keys { table, log } = &mut *guard;
        let taken = KeyState::Claimed {
            number: log.next_number(),
            until_ms: in_progress_until_ms,
        };
        let hashes: Vec<u64> = keys.iter().map(|k| table.hash(k)).collect();
        let claims: Vec<Claim> = keys
            .iter()
            .zip(&hashes)
            .enumerate()
            .map(|(i, (k, &h))| {
                if let Some(&ahead) = hashes.get(i + PREFETCH_AHEAD) {
                    table.prefetch(ahead);
                }
                let mut claim = Claim::New;
                table.update_hashed(h, k, |held| {
                    claim = claim_of(held.map(|s| settled(log, s)).as_ref(), now_ms);
                    let new = claim == Claim::New;
                    if new {
                        let_go(log, held);
                    }
                    new.then(|| taken.clone())
                });
                claim
            })
            .collect();
        let hasher = |k: &str| table.hash(k);
        log.record(
            keys.iter()
                .zip(&claims)
                .filter(|(_, c)| **c == Claim::New)
                .map(|(k, _)| k.as_str()),
            hasher,
        );
        Ok(claims)
    }

    /// Counted as DynamoDB's `BatchGetItem`: one request per 100 keys.
    async fn peek(&self, keys: &[String], now_ms: i64) -> Result<Vec<Claim>, StoreError> {
        self.count(keys.len().div_ceil(100));
        let state = self.keys.lock().map_err(|_| poisoned())?;
        Ok(keys
            .iter()
            .map(|k| claim_of(state.get(k).as_ref(), now_ms))
            .collect())
    }

    async fn complete(&self, keys: &[String], expires_at_s: i64) -> Result<(), StoreError> {
        self.count(keys.len().div_ceil(25));
        let mut guard = self.keys.lock().map_err(|_| poisoned())?;
        let Keys { table, log } = &mut *guard;
        let mut rest = keys;
        while let Some(first) = rest.first() {
            let h = table.hash(first);
            // A whole claim in one write; any other key by itself.
            let done = match log.complete_claim(h, rest, expires_at_s) {
                Some(n) => n,
                None => {
                    table.update_hashed(h, first, |held| {
                        let_go(log, held);
                        Some(KeyState::Completed { expires_at_s })
                    });
                    1
                }
            };
            rest = rest.get(done..).unwrap_or_default();
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
                    matches!(state.get(k), Some(KeyState::InProgress { until_ms }) if until_ms == claimed_until_ms)
                })
                .count();
            // One transaction; when it held keys that are not in progress
            // it is cancelled, and the rest go again in a second one.
            self.count(if ours > 0 && ours < chunk.len() { 2 } else { 1 });
            for k in chunk {
                if matches!(state.get(k), Some(KeyState::InProgress { until_ms }) if until_ms == claimed_until_ms)
                {
                    let Keys { table, log } = &mut *state;
                    let_go(log, table.get(k));
                    table.remove(k);
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
    async fn claims_completed_whole_or_key_by_key_end_the_same() {
        // A thousand keys: every fifth one done before, every seventh held
        // by another invocation.
        let all: Vec<String> = (0..1000).map(|n| format!("trade#t-{n:08}")).collect();
        let (done, held): (Vec<usize>, Vec<usize>) = (
            (0..1000).filter(|n| n % 5 == 0).collect(),
            (0..1000).filter(|n| n % 7 == 0 && n % 5 != 0).collect(),
        );
        let expect: Vec<Claim> = (0..1000)
            .map(|n| match n {
                n if n % 5 == 0 => Claim::Completed,
                n if n % 7 == 0 => Claim::InProgress,
                _ => Claim::New,
            })
            .collect();
        let new: Vec<String> = (0..1000)
            .filter(|n| expect[*n] == Claim::New)
            .map(|n| all[n].clone())
            .collect();
        // Whole (one claim of everything), whole in chunks, reversed (one
        // by one), and all but the last (one by one, the last released).
        for way in 0..4 {
            let s = MemoryStore::new();
            let before: Vec<String> = done.iter().map(|&n| all[n].clone()).collect();
            s.claim(&before, 0, 500).await.unwrap();
            s.complete(&before, 100).await.unwrap();
            for &n in &held {
                s.hold(&all[n], 5000);
            }
            let claims = if way == 1 {
                let mut claims = Vec::new();
                for chunk in all.chunks(300) {
                    claims.extend(s.claim(chunk, 10, 1000).await.unwrap());
                }
                claims
            } else {
                s.claim(&all, 10, 1000).await.unwrap()
            };
            assert_eq!(claims, expect, "way {way}");
            // Claimed and not completed: in progress to anyone else.
            assert_eq!(
                s.peek(&new[..1], 20).await.unwrap(),
                vec![Claim::InProgress]
            );
            match way {
                2 => {
                    let reversed: Vec<String> = new.iter().rev().cloned().collect();
                    s.complete(&reversed, 100).await.unwrap();
                }
                3 => {
                    let (last, rest) = new.split_last().unwrap();
                    s.complete(rest, 100).await.unwrap();
                    s.release(std::slice::from_ref(last), 1000).await.unwrap();
                }
                _ => s.complete(&new, 100).await.unwrap(),
            }
            // Whole claims were completed in the log, the rest key by key.
            let by_log = matches!(
                s.keys.lock().unwrap().table.get(&new[0]),
                Some(KeyState::Claimed { .. })
            );
            assert_eq!(by_log, way < 2, "way {way}");
            let after = s.peek(&all, 20).await.unwrap();
            for n in 0..1000 {
                let want = match expect[n] {
                    Claim::InProgress => Claim::InProgress,
                    _ if way == 3 && all[n] == *new.last().unwrap() => Claim::New,
                    _ => Claim::Completed,
                };
                assert_eq!(after[n], want, "way {way}, key {n}");
                assert_eq!(s.is_completed(&all[n]), want == Claim::Completed);
            }
            // Completed keys expire with their TTL, however completed.
            let later = s.peek(&new, 100_001).await.unwrap();
            assert!(later.iter().all(|c| *c == Claim::New), "way {way}");
        }
    }

    #[tokio::test]
    async fn claims_outlive_the_claim_log_and_the_generation() {
        // Generations of four keys: the log is emptied at each rotation.
        let s = MemoryStore::remembering(4);
        let k = keys(&["a", "b", "c", "d", "e", "f", "g", "h"]);
        s.claim(&k[..2], 0, 1000).await.unwrap();
        s.complete(&k[..2], 100).await.unwrap();
        // "c" and "d" claimed and left in progress, by a claim never completed.
        s.claim(&k[2..4], 0, 1_000_000).await.unwrap();
        // The generation is full: the next claim settles it and starts
        // another, then the one after that forgets it but for live claims.
        s.claim(&k[4..6], 10, 2000).await.unwrap();
        s.complete(&k[4..6], 100).await.unwrap();
        s.claim(&k[6..], 10, 2000).await.unwrap();
        s.complete(&k[6..], 100).await.unwrap();
        let found = s.peek(&k, 20).await.unwrap();
        assert_eq!(found[..2], vec![Claim::Completed; 2]);
        assert_eq!(found[2..4], vec![Claim::InProgress; 2]);
        assert_eq!(found[4..], vec![Claim::Completed; 4]);
        // Released by the claim that took them, they are free again.
        s.release(&k[2..4], 1_000_000).await.unwrap();
        assert_eq!(s.peek(&k[2..4], 20).await.unwrap(), vec![Claim::New; 2]);
    }

    /// Random scripts of claims, completions (of whole claims, as the
    /// pipeline makes them, and of any keys), releases and planted claims,
    /// run on the store and on a map written key by key: both answer the
    /// same at every step.
    #[tokio::test]
    async fn claims_completed_whole_answer_as_keys_written_one_by_one() {
        use std::collections::HashMap;
        let mut whole = 0;
        for seed in 1..=200u64 {
            let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut next = move |m: u64| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng % m
            };
            let pool: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
            let s = MemoryStore::new();
            let mut model: HashMap<String, KeyState> = HashMap::new();
            let mut now_ms = 0i64;
            // Claims made: their expiry and the keys they took, in order.
            let mut taken: Vec<(i64, Vec<String>)> = vec![(1, Vec::new())];
            for step in 0..80 {
                now_ms += 100 * next(8) as i64;
                let mut picked: Vec<String> =
                    pool.iter().filter(|_| next(3) == 0).cloned().collect();
                if next(2) == 0 {
                    picked.reverse();
                }
                match next(5) {
                    0 | 1 => {
                        let until = now_ms + 300 * next(5) as i64;
                        let got = s.claim(&picked, now_ms, until).await.unwrap();
                        let mut want = Vec::new();
                        let mut took = Vec::new();
                        for k in &picked {
                            let c = claim_of(model.get(k), now_ms);
                            if c == Claim::New {
                                model.insert(k.clone(), KeyState::InProgress { until_ms: until });
                                took.push(k.clone());
                            }
                            want.push(c);
                        }
                        assert_eq!(got, want, "seed {seed} step {step}: claim {picked:?}");
                        taken.push((until, took));
                    }
                    2 => {
                        // A whole claim, mostly the last one, or any keys.
                        let keys = match next(3) {
                            0 => picked,
                            1 => taken[next(taken.len() as u64) as usize].1.clone(),
                            _ => taken.last().map(|t| t.1.clone()).unwrap_or_default(),
                        };
                        let exp_s = now_ms / 1000 + next(3) as i64;
                        s.complete(&keys, exp_s).await.unwrap();
                        for k in &keys {
                            model.insert(
                                k.clone(),
                                KeyState::Completed {
                                    expires_at_s: exp_s,
                                },
                            );
                        }
                    }
                    3 => {
                        let until = taken[next(taken.len() as u64) as usize].0;
                        s.release(&picked, until).await.unwrap();
                        for k in &picked {
                            if model.get(k) == Some(&KeyState::InProgress { until_ms: until }) {
                                model.remove(k);
                            }
                        }
                    }
                    _ => {
                        if let Some(k) = picked.first() {
                            let until_ms = now_ms + 200 * next(4) as i64;
                            s.hold(k, until_ms);
                            model.insert(k.clone(), KeyState::InProgress { until_ms });
                        }
                    }
                }
                let want: Vec<Claim> = pool
                    .iter()
                    .map(|k| claim_of(model.get(k), now_ms))
                    .collect();
                let got = s.peek(&pool, now_ms).await.unwrap();
                assert_eq!(got, want, "seed {seed} step {step}");
            }
            let keys = s.keys.lock().unwrap();
            whole += pool
                .iter()
                .filter(|k| {
                    matches!(keys.table.get(k), Some(KeyState::Claimed { number, .. }) if keys.log.completed(*number).is_some())
                })
                .count();
        }
        // The scripts did complete claims whole, not only key by key.
        assert!(whole > 50, "only {whole} keys completed by their claim");
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
