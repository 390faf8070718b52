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
//! pass them all). `generation` says how one generation is laid out.

use std::hash::BuildHasher;

use super::generation::Generation;

/// Seeded fast hash (foldhash): SipHash was a tenth of the handler's time
/// with payload keys on. Each key is hashed once per call and the hash
/// used for both generations.
type Hasher = foldhash::fast::RandomState;

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

impl<V> KeyTable<V> {
    /// A table that remembers at least the last `generation_len` keys.
    pub(super) fn new(generation_len: usize) -> KeyTable<V> {
        KeyTable {
            current: Generation::default(),
            previous: Generation::default(),
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

    /// Asks the CPU for the places a key of hash `h` is searched at, in
    /// both generations: call it a few keys ahead of their updates.
    pub(super) fn prefetch(&self, h: u64) {
        self.current.prefetch(h);
        self.previous.prefetch(h);
    }

    pub(super) fn get(&self, key: &str) -> Option<&V> {
        let h = self.hash(key);
        // The current generation shadows the previous one.
        self.current
            .get(h, key)
            .or_else(|| self.previous.get(h, key))
    }

    /// Sets `key` to what `decide` makes of its value (`None`: leave it as
    /// it is). A key set goes to the current generation.
    pub(super) fn update(&mut self, key: &str, decide: impl FnOnce(Option<&V>) -> Option<V>) {
        self.update_hashed(self.hash(key), key, decide)
    }

    /// [`KeyTable::update`] of a key whose [`KeyTable::hash`] is `h`.
    pub(super) fn update_hashed(
        &mut self,
        h: u64,
        key: &str,
        decide: impl FnOnce(Option<&V>) -> Option<V>,
    ) {
        if let Some(held) = self.current.get_mut(h, key) {
            if let Some(value) = decide(Some(held)) {
                *held = value;
            }
            return;
        }
        if let Some(value) = decide(self.previous.get(h, key)) {
            self.current.insert(h, key, value);
        }
    }

    pub(super) fn remove(&mut self, key: &str) {
        let h = self.hash(key);
        self.current.remove(h, key);
        self.previous.remove(h, key);
    }

    /// Whether the current generation has taken its keys: the next
    /// [`KeyTable::rotate_if_full`] starts a new one.
    pub(super) fn is_full(&self) -> bool {
        self.current.taken() >= self.generation_len + self.carried
    }

    /// Gives every value of the current generation to `f`.
    pub(super) fn for_each_current(&mut self, f: impl FnMut(&mut V)) {
        self.current.values_mut().for_each(f);
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
        // Emptied, its capacity kept.
        let live = forgotten.empty_keeping(keep);
        let newer = &self.previous;
        let mut carried = 0;
        for (h, key, value) in live {
            if newer.get(h, &key).is_none() {
                forgotten.insert(h, &key, value);
                carried += 1;
            }
        }
        self.carried = carried;
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
