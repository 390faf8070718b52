//! The in-memory store's idempotency keys, bounded: keys are kept in two
//! generations. A key set (new, or its value changed) goes to the current
//! one; when that one has taken `generation_len` keys it becomes the
//! previous one, and the old previous one is forgotten, but for claims
//! still live there. So the store remembers at least the last
//! `generation_len` keys and holds about twice that at most, besides live
//! claims (DynamoDB is the durable store; this one lives as long as its
//! process).
//!
//! The forgotten generation's table is emptied and reused as the new
//! current one: after the first two generations no table grows (growing
//! means rehashing, which stalled a batch for milliseconds) or faults in
//! new pages, and no table fills with the tombstones that forgetting keys
//! one by one would leave (a search for a new key, the common one, has to
//! pass them all).

use std::hash::BuildHasher;

use hashbrown::HashTable;

/// Seeded fast hash (foldhash): SipHash was a tenth of the handler's time
/// with payload keys on. Each key is hashed once per call and the hash
/// used for both generations (a map per generation hashed it up to three
/// times per claim: a claim of 10,000 new keys took 1.05 ms that way,
/// 0.78 ms this way, timed standalone).
type Hasher = foldhash::fast::RandomState;

/// One generation: a key's text and its value.
type Generation<V> = HashTable<(Box<str>, V)>;

/// Keys and their values in two generations (module doc).
pub(super) struct KeyTable<V> {
    current: Generation<V>,
    previous: Generation<V>,
    hasher: Hasher,
    /// Keys a generation takes before the next one starts.
    generation_len: usize,
    /// Live claims carried into the current generation at its start: they
    /// do not count towards filling it.
    carried: usize,
}

fn is<V>(key: &str) -> impl Fn(&(Box<str>, V)) -> bool + '_ {
    move |(k, _)| crate::bytes_eq::str_eq(k, key)
}

impl<V> KeyTable<V> {
    /// A table that remembers at least the last `generation_len` keys.
    pub(super) fn new(generation_len: usize) -> KeyTable<V> {
        KeyTable {
            current: HashTable::new(),
            previous: HashTable::new(),
            hasher: Hasher::default(),
            generation_len: generation_len.max(1),
            carried: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// The hash a key is found by; [`KeyTable::update_hashed`] takes it.
    pub(super) fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        let h = self.hasher.hash_one(key);
        // The current generation shadows the previous one.
        self.current
            .find(h, is(key))
            .or_else(|| self.previous.find(h, is(key)))
            .map(|(_, v)| v)
    }

    /// Sets `key` to what `decide` makes of its value (`None`: leave it as
    /// it is). A key set goes to the current generation.
    pub(super) fn update(&mut self, key: &str, decide: impl FnOnce(Option<&V>) -> Option<V>) {
        self.update_hashed(self.hasher.hash_one(key), key, decide)
    }

    /// [`KeyTable::update`] of a key whose [`KeyTable::hash`] is `h`.
    pub(super) fn update_hashed(
        &mut self,
        h: u64,
        key: &str,
        decide: impl FnOnce(Option<&V>) -> Option<V>,
    ) {
        if let Some((_, held)) = self.current.find_mut(h, is(key)) {
            if let Some(value) = decide(Some(held)) {
                *held = value;
            }
            return;
        }
        let old = self.previous.find(h, is(key)).map(|(_, v)| v);
        if let Some(value) = decide(old) {
            let hasher = &self.hasher;
            self.current
                .insert_unique(h, (key.into(), value), |(k, _)| hasher.hash_one(&**k));
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        let h = self.hasher.hash_one(key);
        for generation in [&mut self.current, &mut self.previous] {
            if let Ok(entry) = generation.find_entry(h, is(key)) {
                entry.remove();
            }
        }
    }

    /// Whether the current generation has taken its keys: the next
    /// [`KeyTable::rotate_if_full`] starts a new one.
    pub(super) fn is_full(&self) -> bool {
        self.current.len() >= self.generation_len + self.carried
    }

    /// Gives every value of the current generation to `f`.
    pub(super) fn for_each_current(&mut self, f: impl FnMut(&mut V)) {
        self.current.iter_mut().map(|(_, v)| v).for_each(f);
    }

    /// Starts a new generation if the current one is full. Of the keys
    /// forgotten then, those `keep` names (live claims) are carried into
    /// the new one, unless a newer value shadows them.
    pub(super) fn rotate_if_full(&mut self, keep: impl Fn(&V) -> bool) {
        if !self.is_full() {
            return;
        }
        let full = std::mem::take(&mut self.current);
        let mut forgotten = std::mem::replace(&mut self.previous, full);
        let (hasher, newer) = (&self.hasher, &self.previous);
        let live: Vec<(u64, (Box<str>, V))> = forgotten
            .drain()
            .filter(|(_, v)| keep(v))
            .map(|entry| (hasher.hash_one(&*entry.0), entry))
            .filter(|(h, (k, _))| newer.find(*h, is(k)).is_none())
            .collect();
        self.carried = live.len();
        // Emptied by the drain, its capacity kept.
        for (h, entry) in live {
            forgotten.insert_unique(h, entry, |(k, _)| hasher.hash_one(&**k));
        }
        self.current = forgotten;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_and_set() {
        let mut t = KeyTable::new(100);
        let long = "k".repeat(100);
        for (n, k) in ["", "a", "trade#t-00012345", long.as_str()]
            .iter()
            .enumerate()
        {
            t.update(k, |old| {
                assert!(old.is_none());
                Some(n)
            });
        }
        assert_eq!(t.get(""), Some(&0));
        assert_eq!(t.get("a"), Some(&1));
        assert_eq!(t.get("trade#t-00012345"), Some(&2));
        assert_eq!(t.get(&long), Some(&3));
        assert_eq!(t.get(&"k".repeat(99)), None);
        t.update("a", |old| old.map(|v| v + 10));
        assert_eq!(t.get("a"), Some(&11));
        t.update("a", |_| None);
        assert_eq!(t.get("a"), Some(&11), "None leaves the value");
        t.remove(&long);
        assert_eq!(t.get(&long), None);
    }

    #[test]
    fn generations_bound_the_table_and_keep_live_claims() {
        // Values: (key number, live claim).
        let mut t = KeyTable::new(4);
        let key = |n: usize| format!("key-{n}");
        for n in 0..4 {
            t.update(&key(n), |_| Some((n, n == 1)));
        }
        t.rotate_if_full(|v| v.1);
        // The first generation is the previous one now: still remembered.
        assert_eq!(t.get(&key(0)), Some(&(0, false)));
        // A key set again is renewed: it belongs to the new generation.
        t.update(&key(2), |old| old.map(|v| (v.0 + 100, false)));
        for n in 4..7 {
            t.update(&key(n), |_| Some((n, false)));
        }
        t.rotate_if_full(|v| v.1);
        // Forgotten, but for the live claim (kept) and key 2 (renewed).
        assert_eq!(t.get(&key(0)), None);
        assert_eq!(t.get(&key(3)), None);
        assert_eq!(t.get(&key(1)), Some(&(1, true)));
        assert_eq!(t.get(&key(2)), Some(&(102, false)));
        assert_eq!(t.get(&key(6)), Some(&(6, false)));
        // A key looked at but left as it is is not renewed.
        t.update(&key(6), |_| None);
        for n in 7..11 {
            t.update(&key(n), |_| Some((n, false)));
        }
        t.rotate_if_full(|v| v.1);
        assert_eq!(t.get(&key(6)), None);
        // Never more than two generations (and the live claim), and always
        // the last four keys.
        for n in 11..1000 {
            t.rotate_if_full(|v| v.1);
            t.update(&key(n), |_| Some((n, false)));
            assert!(t.len() <= 2 * 4 + 1, "{} keys at {n}", t.len());
            for back in 0..4 {
                assert!(t.get(&key(n - back)).is_some(), "{} at {n}", n - back);
            }
        }
        assert_eq!(t.get(&key(1)), Some(&(1, true)));
    }
}
